/* The engine's own D-Bus contract test: a real vivarium-engine process, started
 * with one end of a socketpair (--dbus-fd) and a boot floppy (dbus-guest.asm)
 * that reports on the debug console what reaches it, driven through the
 * proxies gdbus-codegen makes from data/dbus/org.vivarium.Engine.xml.
 *
 * Signals are recorded with libglib-testing's GtSignalLogger and checked in
 * order: State changes (PropertiesChanged on the Machine proxy) and the
 * display's Resized and Invalidate. GtDBusQueue is libglib-testing's mock
 * *service*; the engine calls nothing, so there is nothing for it to stand in
 * for here.
 *
 * Bad calls (out-of-range values, calls in the wrong state, unknown names,
 * malformed messages) must each get a D-Bus error and change nothing: the
 * State stays, no State signal follows, the guest receives nothing, and the
 * engine still answers. Every test ends with Quit, which must be answered
 * before the engine exits with status 0.
 *
 * No pass condition depends on time: waits are for events, with a generous
 * limit that only turns a hang into a failure.
 *
 * Environment: VIVARIUM_ENGINE (the engine binary), VIVARIUM_DBUS_GUEST (the
 * guest floppy image). */
#include "viv-dbus-generated.h"
#include "viv-protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <libglib-testing/signal-logger.h>
#include <png.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Only a limit for hangs: nothing here takes more than seconds. */
#define EVENT_WAIT_S    120
#define CALL_TIMEOUT_MS 30000

/* The guest's keys (set-1 make codes, as int 16h returns them). */
#define SCAN_A  0x1e
#define SCAN_M  0x32
#define SCAN_T  0x14
#define QNUM_UP 0xc8 /* 0xe0 0x48 */
#define SCAN_UP 0x48

#define MACHINE_IFACE   "org.vivarium.Machine"
#define DISPLAY_IFACE   "org.vivarium.Display"
#define INPUT_IFACE     "org.vivarium.Input"
#define SNAPSHOTS_IFACE "org.vivarium.Snapshots"

typedef struct {
    char *workdir;
    char *image;    /* this test's copy of the guest floppy (the engine locks it) */
    char *debugcon; /* the guest's debug console */
    gsize debugcon_seen;
    GSubprocess *engine;
    gboolean exited;
    GDBusConnection *connection;
    VivDbusMachine *machine;
    VivDbusDisplay *display;
    VivDbusInput *input;
    VivDbusSnapshots *snapshots;
    GtSignalLogger *states; /* g-properties-changed on the Machine proxy */
    GtSignalLogger *screen; /* resized and invalidate on the Display proxy */
} Fixture;

/* --- waiting for events ------------------------------------------------- */

static gboolean set_flag_cb(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

static gboolean wake_cb(gpointer data)
{
    return G_SOURCE_CONTINUE;
}

typedef gboolean (*Condition)(Fixture *fixture, gconstpointer data);

/* Spins the main context until condition() holds. Files (the debug console)
 * give no events, so a short tick re-checks the condition too. */
static void wait_until(Fixture *fixture, Condition condition, gconstpointer data, const char *what)
{
    gboolean timed_out = FALSE;
    guint limit = g_timeout_add_seconds(EVENT_WAIT_S, set_flag_cb, &timed_out);
    guint tick = g_timeout_add(10, wake_cb, NULL);

    while (!condition(fixture, data)) {
        if (timed_out)
            g_error("no %s within %d s", what, EVENT_WAIT_S);
        g_main_context_iteration(NULL, TRUE);
    }
    g_source_remove(tick);
    if (!timed_out)
        g_source_remove(limit);
}

static gboolean has_exited(Fixture *fixture, gconstpointer data)
{
    return fixture->exited;
}

static gboolean has_emissions(Fixture *fixture, gconstpointer data)
{
    return gt_signal_logger_get_n_emissions((GtSignalLogger *)data) > 0;
}

/* --- the guest's debug console ------------------------------------------ */

/* The next whole line the guest wrote, or NULL if there is none yet. */
static char *try_read_guest_line(Fixture *fixture)
{
    g_autofree char *contents = NULL;
    gsize length = 0;

    if (!g_file_get_contents(fixture->debugcon, &contents, &length, NULL) ||
        length <= fixture->debugcon_seen)
        return NULL;
    const char *start = contents + fixture->debugcon_seen;
    const char *end = memchr(start, '\n', length - fixture->debugcon_seen);
    if (!end)
        return NULL;
    fixture->debugcon_seen += (gsize)(end - start) + 1;
    return g_strndup(start, (gsize)(end - start));
}

static gboolean guest_line_ready(Fixture *fixture, gconstpointer data)
{
    char **line = (char **)data;
    *line = try_read_guest_line(fixture);
    return *line != NULL;
}

static char *next_guest_line(Fixture *fixture)
{
    char *line = NULL;
    wait_until(fixture, guest_line_ready, &line, "line from the guest");
    return line;
}

/* The guest's next line must be @expected: whatever a bad call might have
 * sent it would come first. */
static void expect_guest_line(Fixture *fixture, const char *expected)
{
    g_autofree char *line = next_guest_line(fixture);
    g_assert_cmpstr(line, ==, expected);
}

/* Boot: the BIOS mouse is set up, then the keyboard loop waits. */
static void expect_guest_boot(Fixture *fixture)
{
    expect_guest_line(fixture, "mouse");
    expect_guest_line(fixture, "ready");
}

/* --- the engine --------------------------------------------------------- */

static void engine_exited_cb(GObject *source, GAsyncResult *result, gpointer data)
{
    Fixture *fixture = data;
    g_autoptr(GError) error = NULL;

    g_subprocess_wait_finish(G_SUBPROCESS(source), result, &error);
    g_assert_no_error(error);
    fixture->exited = TRUE;
}

static void fixture_set_up(Fixture *fixture, gconstpointer data)
{
    const char *engine_path = g_getenv("VIVARIUM_ENGINE");
    const char *guest = g_getenv("VIVARIUM_DBUS_GUEST");
    g_autoptr(GError) error = NULL;
    g_autofree char *contents = NULL;
    gsize length;
    int pair[2];

    fixture->workdir = g_dir_make_tmp("viv-engine-dbus-XXXXXX", &error);
    g_assert_no_error(error);
    fixture->image = g_build_filename(fixture->workdir, "guest.img", NULL);
    fixture->debugcon = g_build_filename(fixture->workdir, "debugcon.txt", NULL);
    g_autofree char *snapshot_dir = g_build_filename(fixture->workdir, "snapshots", NULL);
    g_assert_true(g_file_get_contents(guest, &contents, &length, &error));
    g_assert_true(g_file_set_contents(fixture->image, contents, (gssize)length, &error));
    g_assert_no_error(error);

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), ==, 0);
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
    g_subprocess_launcher_take_fd(launcher, pair[1], 3);
    /* --timeout only ends an engine a failed test left behind. */
    fixture->engine = g_subprocess_launcher_spawn(
        launcher, &error, engine_path, "--headless", "--dbus-fd", "3", "--name", "D-Bus test",
        "--memory", "16", "--audio", "none", "--serial", "none", "--debugcon", fixture->debugcon,
        "--fda", fixture->image, "--boot", "a", "--snapshot-dir", snapshot_dir, "--timeout", "300",
        NULL);
    g_assert_no_error(error);
    g_subprocess_wait_async(fixture->engine, NULL, engine_exited_cb, fixture);

    g_autoptr(GSocket) socket = g_socket_new_from_fd(pair[0], &error);
    g_assert_no_error(error);
    g_autoptr(GSocketConnection) stream = g_socket_connection_factory_create_connection(socket);
    fixture->connection = g_dbus_connection_new_sync(G_IO_STREAM(stream), NULL,
                                                     G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT,
                                                     NULL, NULL, &error);
    g_assert_no_error(error);
    /* A test that fails leaves with the engine still running; this process
     * must not die of SIGTERM for it. */
    g_dbus_connection_set_exit_on_close(fixture->connection, FALSE);

    fixture->machine = viv_dbus_machine_proxy_new_sync(fixture->connection, G_DBUS_PROXY_FLAGS_NONE,
                                                       NULL, VIV_DBUS_OBJECT_PATH, NULL, &error);
    g_assert_no_error(error);
    fixture->display = viv_dbus_display_proxy_new_sync(fixture->connection, G_DBUS_PROXY_FLAGS_NONE,
                                                       NULL, VIV_DBUS_OBJECT_PATH, NULL, &error);
    g_assert_no_error(error);
    fixture->input = viv_dbus_input_proxy_new_sync(fixture->connection, G_DBUS_PROXY_FLAGS_NONE,
                                                   NULL, VIV_DBUS_OBJECT_PATH, NULL, &error);
    g_assert_no_error(error);
    fixture->snapshots = viv_dbus_snapshots_proxy_new_sync(
        fixture->connection, G_DBUS_PROXY_FLAGS_NONE, NULL, VIV_DBUS_OBJECT_PATH, NULL, &error);
    g_assert_no_error(error);

    fixture->states = gt_signal_logger_new();
    gt_signal_logger_connect(fixture->states, fixture->machine, "g-properties-changed");
    fixture->screen = gt_signal_logger_new();
    gt_signal_logger_connect(fixture->screen, fixture->display, "resized");
    gt_signal_logger_connect(fixture->screen, fixture->display, "invalidate");
}

static gboolean engine_alive(Fixture *fixture)
{
    return !fixture->exited && g_subprocess_get_identifier(fixture->engine) != NULL;
}

/* Quit is answered (the reply comes before the engine closes the
 * connection), and the engine then exits with status 0. */
static void quit_engine(Fixture *fixture)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(viv_dbus_machine_call_quit_sync(fixture->machine, NULL, &error));
    g_assert_no_error(error);
    wait_until(fixture, has_exited, NULL, "exit after Quit");
    g_assert_true(g_subprocess_get_if_exited(fixture->engine));
    g_assert_cmpint(g_subprocess_get_exit_status(fixture->engine), ==, 0);
}

/* Removes a folder and everything in it. */
static void remove_tree(const char *path)
{
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *child = g_build_filename(path, name, NULL);
        if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
            remove_tree(child);
        else
            g_unlink(child);
    }
    g_rmdir(path);
}

static void fixture_tear_down(Fixture *fixture, gconstpointer data)
{
    if (engine_alive(fixture))
        quit_engine(fixture);
    g_clear_pointer(&fixture->states, gt_signal_logger_free);
    g_clear_pointer(&fixture->screen, gt_signal_logger_free);
    g_clear_object(&fixture->machine);
    g_clear_object(&fixture->display);
    g_clear_object(&fixture->input);
    g_clear_object(&fixture->snapshots);
    g_clear_object(&fixture->connection);
    g_clear_object(&fixture->engine);
    remove_tree(fixture->workdir);
    g_free(fixture->workdir);
    g_free(fixture->image);
    g_free(fixture->debugcon);
}

/* --- calls -------------------------------------------------------------- */

/* Calls a method with whatever parameters, as a raw message, and returns its
 * error (NULL on success). */
static GError *raw_call(Fixture *fixture, const char *path, const char *interface,
                        const char *method, GVariant *parameters)
{
    GError *error = NULL;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_sync(fixture->connection, NULL, path, interface, method, parameters,
                                    NULL, G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, &error);
    return error;
}

static GError *call(Fixture *fixture, const char *interface, const char *method,
                    GVariant *parameters)
{
    return raw_call(fixture, VIV_DBUS_OBJECT_PATH, interface, method, parameters);
}

static void assert_ok(GError *error)
{
    g_assert_no_error(error);
}

/* The engine's own error, with its name on the wire. */
static void assert_viv_error(GError *error, VivDbusError code)
{
    static const char *const names[] = {
        [VIV_DBUS_ERROR_INVALID_ARGUMENT] = "org.vivarium.Error.InvalidArgument",
        [VIV_DBUS_ERROR_INVALID_STATE] = "org.vivarium.Error.InvalidState",
        [VIV_DBUS_ERROR_NOT_FOUND] = "org.vivarium.Error.NotFound",
        [VIV_DBUS_ERROR_NOT_SUPPORTED] = "org.vivarium.Error.NotSupported",
        [VIV_DBUS_ERROR_FAILED] = "org.vivarium.Error.Failed",
    };
    g_assert_nonnull(error);
    g_autofree char *remote = g_dbus_error_get_remote_error(error);
    g_assert_cmpstr(remote, ==, names[code]);
    g_assert_error(error, VIV_DBUS_ERROR, (int)code);
    /* A full sentence for a person. */
    if (!g_str_has_suffix(error->message, "."))
        g_error("not a full sentence: \"%s\"", error->message);
    g_error_free(error);
}

/* The State as the engine says it now (not the proxy's cached copy). */
static char *engine_state(Fixture *fixture)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
        fixture->connection, NULL, VIV_DBUS_OBJECT_PATH, "org.freedesktop.DBus.Properties", "Get",
        g_variant_new("(ss)", MACHINE_IFACE, "State"), G_VARIANT_TYPE("(v)"),
        G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, &error);
    g_assert_no_error(error);
    g_autoptr(GVariant) value = NULL;
    g_variant_get(reply, "(v)", &value);
    return g_variant_dup_string(value, NULL);
}

/* After a bad call: the engine is alive, answers, and is in @state. */
static void assert_unchanged(Fixture *fixture, const char *state)
{
    g_assert_true(engine_alive(fixture));
    g_autofree char *now = engine_state(fixture);
    g_assert_cmpstr(now, ==, state);
}

/* The value of @property in the next PropertiesChanged that has it (others,
 * such as Media beside State, are passed over). */
static GVariant *next_property_change(Fixture *fixture, const char *property)
{
    for (;;) {
        g_autofree char *type_name = NULL;
        g_autofree char *signal_name = NULL;
        g_autoptr(GtSignalLoggerEmission) emission = NULL;
        g_autoptr(GVariant) changed = NULL;
        g_auto(GStrv) invalidated = NULL;
        gpointer object = NULL;

        wait_until(fixture, has_emissions, fixture->states, "PropertiesChanged");
        g_assert_true(gt_signal_logger_pop_emission(fixture->states, &object, &type_name,
                                                    &signal_name, &emission));
        g_assert_true(object == (gpointer)fixture->machine);
        gt_signal_logger_emission_get_params(emission, &changed, &invalidated);
        GVariant *value = g_variant_lookup_value(changed, property, NULL);
        if (value)
            return value;
    }
}

static void expect_state(Fixture *fixture, const char *state)
{
    g_autoptr(GVariant) value = next_property_change(fixture, "State");
    g_assert_cmpstr(g_variant_get_string(value, NULL), ==, state);
    g_assert_cmpstr(viv_dbus_machine_get_state(fixture->machine), ==, state);
}

static void start_guest(Fixture *fixture)
{
    assert_ok(call(fixture, MACHINE_IFACE, "Start", NULL));
    expect_state(fixture, VIV_MACHINE_STATE_RUNNING);
    expect_guest_boot(fixture);
}

static void press_key(Fixture *fixture, guint qnum)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(viv_dbus_input_call_key_press_sync(fixture->input, qnum, NULL, &error));
    g_assert_no_error(error);
    g_assert_true(viv_dbus_input_call_key_release_sync(fixture->input, qnum, NULL, &error));
    g_assert_no_error(error);
}

/* --- properties and the life cycle -------------------------------------- */

static void test_properties(Fixture *fixture, gconstpointer data)
{
    const char *backend = viv_dbus_machine_get_backend(fixture->machine);
    GVariant *media = viv_dbus_machine_get_media(fixture->machine);
    const char *path = NULL;

    g_assert_cmpstr(viv_dbus_machine_get_state(fixture->machine), ==, VIV_MACHINE_STATE_STOPPED);
    g_assert_true(g_strv_contains((const char *const[]){"kvm", "dbt", "interp", NULL}, backend));
    g_assert_cmpstr(viv_dbus_machine_get_name(fixture->machine), ==, "D-Bus test");
    g_assert_true(g_variant_is_of_type(media, G_VARIANT_TYPE("a(ss)")));
    /* The floppy it was started with, and the empty CD drive every machine has. */
    GVariantIter iter;
    const char *drive, *medium;
    gboolean has_cdrom = FALSE;
    g_variant_iter_init(&iter, media);
    while (g_variant_iter_next(&iter, "(&s&s)", &drive, &medium)) {
        if (g_str_equal(drive, "fda"))
            path = medium;
        else if (g_str_equal(drive, "cdrom"))
            has_cdrom = g_str_equal(medium, "");
    }
    g_assert_cmpstr(path, ==, fixture->image);
    g_assert_true(has_cdrom);
    /* Nothing was emitted for an engine that was only asked. */
    gt_signal_logger_assert_no_emissions(fixture->states);
}

/* Every control method in turn, its State signal in order, and the guest
 * really starting again after a reset and after a power cycle. */
static void test_life_cycle(Fixture *fixture, gconstpointer data)
{
    start_guest(fixture);

    assert_ok(call(fixture, MACHINE_IFACE, "Pause", NULL));
    expect_state(fixture, VIV_MACHINE_STATE_PAUSED);
    /* A paused machine stays paused through a reset, and boots afresh on
     * Resume. */
    assert_ok(call(fixture, MACHINE_IFACE, "Reset", NULL));
    assert_unchanged(fixture, VIV_MACHINE_STATE_PAUSED);
    assert_ok(call(fixture, MACHINE_IFACE, "Resume", NULL));
    expect_state(fixture, VIV_MACHINE_STATE_RUNNING);
    expect_guest_boot(fixture);

    /* A reset while running: no State change, and the guest boots again. */
    assert_ok(call(fixture, MACHINE_IFACE, "Reset", NULL));
    expect_guest_boot(fixture);

    assert_ok(call(fixture, MACHINE_IFACE, "PowerOff", NULL));
    expect_state(fixture, VIV_MACHINE_STATE_STOPPED);
    start_guest(fixture);
    /* The keyboard works in the new life too. */
    press_key(fixture, SCAN_A);
    expect_guest_line(fixture, "k 1e");
    gt_signal_logger_assert_no_emissions(fixture->states);
}

/* Methods in the wrong State: InvalidState, and nothing moves. */
static void test_wrong_state(Fixture *fixture, gconstpointer data)
{
    static const char *const not_when_stopped[] = {"Pause", "Resume", "Reset", "PowerOff"};

    for (size_t i = 0; i < G_N_ELEMENTS(not_when_stopped); i++) {
        assert_viv_error(call(fixture, MACHINE_IFACE, not_when_stopped[i], NULL),
                         VIV_DBUS_ERROR_INVALID_STATE);
        assert_unchanged(fixture, VIV_MACHINE_STATE_STOPPED);
    }
    assert_viv_error(call(fixture, SNAPSHOTS_IFACE, "Save", g_variant_new("(s)", "off")),
                     VIV_DBUS_ERROR_INVALID_STATE);
    assert_unchanged(fixture, VIV_MACHINE_STATE_STOPPED);

    start_guest(fixture);
    assert_viv_error(call(fixture, MACHINE_IFACE, "Start", NULL), VIV_DBUS_ERROR_INVALID_STATE);
    assert_unchanged(fixture, VIV_MACHINE_STATE_RUNNING);
    assert_viv_error(call(fixture, MACHINE_IFACE, "Resume", NULL), VIV_DBUS_ERROR_INVALID_STATE);
    assert_unchanged(fixture, VIV_MACHINE_STATE_RUNNING);

    assert_ok(call(fixture, MACHINE_IFACE, "Pause", NULL));
    expect_state(fixture, VIV_MACHINE_STATE_PAUSED);
    assert_viv_error(call(fixture, MACHINE_IFACE, "Pause", NULL), VIV_DBUS_ERROR_INVALID_STATE);
    assert_unchanged(fixture, VIV_MACHINE_STATE_PAUSED);
    assert_viv_error(call(fixture, MACHINE_IFACE, "Start", NULL), VIV_DBUS_ERROR_INVALID_STATE);
    assert_unchanged(fixture, VIV_MACHINE_STATE_PAUSED);

    /* The refused Start did not restart the guest behind the test's back:
     * after Resume the next thing it reports is the key, not a new boot. */
    assert_ok(call(fixture, MACHINE_IFACE, "Resume", NULL));
    expect_state(fixture, VIV_MACHINE_STATE_RUNNING);
    press_key(fixture, SCAN_A);
    expect_guest_line(fixture, "k 1e");
    gt_signal_logger_assert_no_emissions(fixture->states);
}

/* Out-of-range and unknown values, each refused with InvalidArgument,
 * NotFound or Failed; the guest receives nothing of them. */
static void test_bad_arguments(Fixture *fixture, gconstpointer data)
{
    const VivDbusError invalid = VIV_DBUS_ERROR_INVALID_ARGUMENT;
    const VivDbusError not_found = VIV_DBUS_ERROR_NOT_FOUND;
    g_autofree char *missing_file = g_build_filename(fixture->workdir, "missing.img", NULL);
    g_autofree char *unwritable = g_build_filename(fixture->workdir, "no-dir", "shot.png", NULL);
    g_autofree char *long_name = g_strnfill(VIV_SNAPSHOT_NAME_MAX + 1, 'x');
    g_autoptr(GVariant) media_before = NULL;

    start_guest(fixture);
    media_before = g_variant_ref(viv_dbus_machine_get_media(fixture->machine));

    static const guint32 bad_keys[] = {0, 0x100, 0x1e00, G_MAXUINT32};
    for (size_t i = 0; i < G_N_ELEMENTS(bad_keys); i++) {
        assert_viv_error(call(fixture, INPUT_IFACE, "KeyPress", g_variant_new("(u)", bad_keys[i])),
                         invalid);
        assert_viv_error(
            call(fixture, INPUT_IFACE, "KeyRelease", g_variant_new("(u)", bad_keys[i])), invalid);
    }
    static const gint32 bad_motions[][2] = {
        {VIV_POINTER_MAX_MOTION + 1, 0},
        {0, -VIV_POINTER_MAX_MOTION - 1},
        {G_MININT32, 0},
        {0, G_MININT32},
        {G_MAXINT32, G_MAXINT32},
        {G_MININT32, G_MAXINT32},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad_motions); i++)
        assert_viv_error(call(fixture, INPUT_IFACE, "PointerMotion",
                              g_variant_new("(ii)", bad_motions[i][0], bad_motions[i][1])),
                         invalid);
    static const guint32 bad_buttons[] = {0, 4, 8, G_MAXUINT32};
    for (size_t i = 0; i < G_N_ELEMENTS(bad_buttons); i++)
        assert_viv_error(call(fixture, INPUT_IFACE, "PointerButton",
                              g_variant_new("(ub)", bad_buttons[i], TRUE)),
                         invalid);
    static const gint32 bad_wheels[] = {0, VIV_WHEEL_MAX_DELTA + 1, -VIV_WHEEL_MAX_DELTA - 1,
                                        G_MININT32, G_MAXINT32};
    for (size_t i = 0; i < G_N_ELEMENTS(bad_wheels); i++)
        assert_viv_error(call(fixture, INPUT_IFACE, "Wheel", g_variant_new("(i)", bad_wheels[i])),
                         invalid);

    assert_viv_error(call(fixture, DISPLAY_IFACE, "Screenshot", g_variant_new("(s)", "shot.png")),
                     invalid);
    assert_viv_error(call(fixture, DISPLAY_IFACE, "Screenshot", g_variant_new("(s)", unwritable)),
                     VIV_DBUS_ERROR_FAILED);

    assert_viv_error(
        call(fixture, MACHINE_IFACE, "ChangeMedia", g_variant_new("(ss)", "hdz", fixture->image)),
        invalid);
    assert_viv_error(
        call(fixture, MACHINE_IFACE, "ChangeMedia", g_variant_new("(ss)", "fda", "guest.img")),
        invalid);
    assert_viv_error(
        call(fixture, MACHINE_IFACE, "ChangeMedia", g_variant_new("(ss)", "fda", missing_file)),
        not_found);
    /* This machine has no second floppy drive. */
    assert_viv_error(
        call(fixture, MACHINE_IFACE, "ChangeMedia", g_variant_new("(ss)", "fdb", fixture->image)),
        not_found);
    assert_viv_error(call(fixture, MACHINE_IFACE, "EjectMedia", g_variant_new("(s)", "")), invalid);
    assert_viv_error(call(fixture, MACHINE_IFACE, "EjectMedia", g_variant_new("(s)", "FDA")),
                     invalid);
    assert_viv_error(call(fixture, MACHINE_IFACE, "EjectMedia", g_variant_new("(s)", "fdb")),
                     not_found);

    static const char *const bad_names[] = {"", "../escape", ".hidden", "a/b", "tab\there"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad_names); i++) {
        assert_viv_error(call(fixture, SNAPSHOTS_IFACE, "Save", g_variant_new("(s)", bad_names[i])),
                         invalid);
        assert_viv_error(call(fixture, SNAPSHOTS_IFACE, "Load", g_variant_new("(s)", bad_names[i])),
                         invalid);
    }
    assert_viv_error(call(fixture, SNAPSHOTS_IFACE, "Save", g_variant_new("(s)", long_name)),
                     invalid);
    assert_viv_error(call(fixture, SNAPSHOTS_IFACE, "Load", g_variant_new("(s)", "no such one")),
                     not_found);
    assert_viv_error(call(fixture, SNAPSHOTS_IFACE, "Delete", g_variant_new("(s)", "no such one")),
                     not_found);

    /* Nothing changed: the State, the drives, and what the guest received
     * (its next line is the next good key, no mouse packet before it). */
    assert_unchanged(fixture, VIV_MACHINE_STATE_RUNNING);
    g_assert_true(g_variant_equal(viv_dbus_machine_get_media(fixture->machine), media_before));
    g_assert_false(g_file_test(missing_file, G_FILE_TEST_EXISTS));
    press_key(fixture, SCAN_A);
    expect_guest_line(fixture, "k 1e");
    gt_signal_logger_assert_no_emissions(fixture->states);
}

static void assert_dbus_error(GError *error, GDBusError code)
{
    g_assert_error(error, G_DBUS_ERROR, (int)code);
    g_error_free(error);
}

/* Messages that do not fit the interface at all: GDBus refuses them before
 * the engine's code, with the standard errors, and the engine goes on. */
static void test_malformed_calls(Fixture *fixture, gconstpointer data)
{
    const char *path = VIV_DBUS_OBJECT_PATH;
    const GDBusError args = G_DBUS_ERROR_INVALID_ARGS;

    start_guest(fixture);
    assert_dbus_error(call(fixture, MACHINE_IFACE, "Start", g_variant_new("(s)", "now")), args);
    assert_dbus_error(call(fixture, MACHINE_IFACE, "Pause", g_variant_new("(u)", 1)), args);
    assert_dbus_error(call(fixture, MACHINE_IFACE, "ChangeMedia", g_variant_new("(s)", "fda")),
                      args);
    assert_dbus_error(call(fixture, MACHINE_IFACE, "EjectMedia", g_variant_new("(u)", 0)), args);
    assert_dbus_error(call(fixture, INPUT_IFACE, "KeyPress", g_variant_new("(s)", "A")), args);
    assert_dbus_error(call(fixture, INPUT_IFACE, "KeyPress", NULL), args);
    assert_dbus_error(call(fixture, INPUT_IFACE, "KeyPress", g_variant_new("(uu)", 0x1e, 0x1e)),
                      args);
    assert_dbus_error(call(fixture, INPUT_IFACE, "KeyRelease", g_variant_new("(i)", SCAN_A)), args);
    assert_dbus_error(call(fixture, INPUT_IFACE, "PointerMotion", g_variant_new("(uu)", 1, 1)),
                      args);
    assert_dbus_error(call(fixture, INPUT_IFACE, "PointerMotion", g_variant_new("(i)", 1)), args);
    assert_dbus_error(call(fixture, INPUT_IFACE, "PointerButton", g_variant_new("(bu)", TRUE, 1)),
                      args);
    assert_dbus_error(call(fixture, INPUT_IFACE, "Wheel", g_variant_new("(x)", (gint64)1)), args);
    assert_dbus_error(call(fixture, DISPLAY_IFACE, "Screenshot", g_variant_new("(ay)", NULL)),
                      args);
    assert_dbus_error(call(fixture, SNAPSHOTS_IFACE, "Load", g_variant_new("(i)", 1)), args);

    /* Names that do not exist. */
    assert_dbus_error(call(fixture, MACHINE_IFACE, "Explode", NULL), G_DBUS_ERROR_UNKNOWN_METHOD);
    GError *error = call(fixture, "org.vivarium.Nothing", "Start", NULL);
    g_assert_true(g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_INTERFACE) ||
                  g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD));
    g_error_free(error);
    error = raw_call(fixture, "/org/vivarium/Nowhere", MACHINE_IFACE, "Start", NULL);
    g_assert_true(g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
                  g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD));
    g_error_free(error);

    /* The properties are read-only, and unknown ones do not exist. */
    error = raw_call(fixture, path, "org.freedesktop.DBus.Properties", "Set",
                     g_variant_new("(ssv)", MACHINE_IFACE, "State",
                                   g_variant_new_string(VIV_MACHINE_STATE_STOPPED)));
    g_assert_nonnull(error);
    g_error_free(error);
    error = raw_call(fixture, path, "org.freedesktop.DBus.Properties", "Set",
                     g_variant_new("(ssv)", MACHINE_IFACE, "Backend", g_variant_new_string("kvm")));
    g_assert_nonnull(error);
    g_error_free(error);
    error = raw_call(fixture, path, "org.freedesktop.DBus.Properties", "Get",
                     g_variant_new("(ss)", MACHINE_IFACE, "Temperature"));
    g_assert_nonnull(error);
    g_error_free(error);

    assert_unchanged(fixture, VIV_MACHINE_STATE_RUNNING);
    press_key(fixture, SCAN_A);
    expect_guest_line(fixture, "k 1e");
    gt_signal_logger_assert_no_emissions(fixture->states);
}

/* --- the display -------------------------------------------------------- */

typedef struct {
    guint width, height, stride;
    const guint8 *pixels;
    gsize size;
} Framebuffer;

/* GetFramebuffer: one sealed memfd in the reply's fd list, big enough for
 * what it says, in the one format there is. */
static void framebuffer_get(Fixture *fixture, Framebuffer *fb)
{
    const unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) handle = NULL;
    g_autoptr(GUnixFDList) fds = NULL;
    guint format;
    struct stat st;

    g_assert_true(viv_dbus_display_call_get_framebuffer_sync(fixture->display, NULL, &handle,
                                                             &fb->width, &fb->height, &fb->stride,
                                                             &format, &fds, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmphex(format, ==, VIV_FORMAT_XRGB8888);
    g_assert_cmpuint(fb->width, >=, 1);
    g_assert_cmpuint(fb->width, <=, VIV_FRAMEBUFFER_MAX_SIDE);
    g_assert_cmpuint(fb->height, >=, 1);
    g_assert_cmpuint(fb->height, <=, VIV_FRAMEBUFFER_MAX_SIDE);
    g_assert_cmpuint(fb->stride, >=, 4 * fb->width);
    g_assert_nonnull(fds);
    g_assert_cmpint(g_unix_fd_list_get_length(fds), ==, 1);
    int fd = g_unix_fd_list_get(fds, g_variant_get_handle(handle), &error);
    g_assert_no_error(error);

    g_assert_cmphex((unsigned)fcntl(fd, F_GET_SEALS) & seals, ==, seals);
    g_assert_cmpint(fstat(fd, &st), ==, 0);
    fb->size = (gsize)fb->stride * fb->height;
    g_assert_cmpint(st.st_size, >=, (off_t)fb->size);
    /* The seals hold: this process cannot change the size under the engine. */
    g_assert_cmpint(ftruncate(fd, st.st_size + 4096), ==, -1);
    g_assert_cmpint(errno, ==, EPERM);
    fb->pixels = mmap(NULL, fb->size, PROT_READ, MAP_SHARED, fd, 0);
    g_assert_true(fb->pixels != MAP_FAILED);
    close(fd);
}

static void framebuffer_unmap(Framebuffer *fb)
{
    munmap((void *)fb->pixels, fb->size);
    fb->pixels = NULL;
}

static guint32 framebuffer_pixel(const Framebuffer *fb, guint x, guint y)
{
    guint32 word;
    memcpy(&word, fb->pixels + (gsize)y * fb->stride + 4 * (gsize)x, 4);
    return word & 0xffffff;
}

/* What the display's signals said so far, checked as they are read: every
 * Invalidate has 1 to 64 rectangles inside the screen of the last Resized. */
typedef struct {
    guint width, height;
    guint resizes, frames;
} ScreenTrack;

static void screen_track_read(Fixture *fixture, ScreenTrack *track)
{
    while (gt_signal_logger_get_n_emissions(fixture->screen) > 0) {
        g_autofree char *type_name = NULL;
        g_autofree char *signal_name = NULL;
        g_autoptr(GtSignalLoggerEmission) emission = NULL;
        gpointer object = NULL;

        gt_signal_logger_pop_emission(fixture->screen, &object, &type_name, &signal_name,
                                      &emission);
        g_assert_true(object == (gpointer)fixture->display);
        if (g_str_equal(signal_name, "resized")) {
            guint stride;
            gt_signal_logger_emission_get_params(emission, &track->width, &track->height, &stride);
            g_assert_cmpuint(track->width, >=, 1);
            g_assert_cmpuint(track->width, <=, VIV_FRAMEBUFFER_MAX_SIDE);
            g_assert_cmpuint(track->height, >=, 1);
            g_assert_cmpuint(track->height, <=, VIV_FRAMEBUFFER_MAX_SIDE);
            g_assert_cmpuint(stride, >=, 4 * track->width);
            track->resizes++;
            continue;
        }
        g_assert_cmpstr(signal_name, ==, "invalidate");
        g_autoptr(GVariant) rects = NULL;
        gt_signal_logger_emission_get_params(emission, &rects);
        g_assert_true(g_variant_is_of_type(rects, G_VARIANT_TYPE("a(iiii)")));
        gsize n = g_variant_n_children(rects);
        g_assert_cmpuint(n, >=, 1);
        g_assert_cmpuint(n, <=, VIV_INVALIDATE_MAX_RECTS);
        for (gsize i = 0; i < n; i++) {
            gint32 x, y, w, h;
            g_variant_get_child(rects, i, "(iiii)", &x, &y, &w, &h);
            g_assert_cmpint(x, >=, 0);
            g_assert_cmpint(y, >=, 0);
            g_assert_cmpint(w, >, 0);
            g_assert_cmpint(h, >, 0);
            g_assert_cmpint((gint64)x + w, <=, (gint64)track->width);
            g_assert_cmpint((gint64)y + h, <=, (gint64)track->height);
        }
        track->frames++;
    }
}

typedef struct {
    ScreenTrack *track;
    guint width, height;
} ScreenSize;

static gboolean screen_has_size(Fixture *fixture, gconstpointer data)
{
    const ScreenSize *want = data;
    screen_track_read(fixture, want->track);
    return want->track->width == want->width && want->track->height == want->height;
}

/* The guest's eight stripes (colours 1 to 8, 40 pixels each, of 320) are on
 * the whole screen: eight different colours, none black, the same in every
 * row (the guest draws row by row; a frame may show it half done). */
static gboolean stripes_shown(Fixture *fixture, gconstpointer data)
{
    const Framebuffer *fb = data;
    guint32 colours[8];

    for (guint i = 0; i < 8; i++) {
        guint x = (20 + 40 * i) * fb->width / 320;
        colours[i] = framebuffer_pixel(fb, x, 0);
        if (colours[i] == 0)
            return FALSE;
        for (guint j = 0; j < i; j++) {
            if (colours[j] == colours[i])
                return FALSE;
        }
        for (guint y = 1; y < fb->height; y++) {
            if (framebuffer_pixel(fb, x, y) != colours[i])
                return FALSE;
        }
    }
    return TRUE;
}

/* The PNG from Screenshot holds exactly the framebuffer's pixels. */
static void assert_screenshot_matches(const char *path, const Framebuffer *fb)
{
    png_image image = {.version = PNG_IMAGE_VERSION};

    g_assert_true(png_image_begin_read_from_file(&image, path));
    g_assert_cmpuint(image.width, ==, fb->width);
    g_assert_cmpuint(image.height, ==, fb->height);
    image.format = PNG_FORMAT_RGB;
    g_autofree guint8 *rgb = g_malloc(PNG_IMAGE_SIZE(image));
    g_assert_true(png_image_finish_read(&image, NULL, rgb, 0, NULL));
    for (guint y = 0; y < fb->height; y++) {
        for (guint x = 0; x < fb->width; x++) {
            const guint8 *p = rgb + 3 * ((gsize)y * fb->width + x);
            guint32 png_pixel = (guint32)p[0] << 16 | (guint32)p[1] << 8 | p[2];
            if (png_pixel != framebuffer_pixel(fb, x, y))
                g_error("screenshot pixel (%u, %u) is %06x, the framebuffer's %06x", x, y,
                        png_pixel, framebuffer_pixel(fb, x, y));
        }
    }
}

/* The framebuffer, its damage signals, a mode change as Resized, the new
 * framebuffer with the guest's picture, and a screenshot of it. */
static void test_display(Fixture *fixture, gconstpointer data)
{
    Framebuffer first, graphics, text;
    ScreenTrack track = {0};
    g_autofree char *shot = g_build_filename(fixture->workdir, "shot.png", NULL);

    /* A stopped machine has a framebuffer too. */
    framebuffer_get(fixture, &first);
    track.width = first.width;
    track.height = first.height;
    start_guest(fixture);

    /* Mode 13h: 320x200 in 256 colours. */
    press_key(fixture, SCAN_M);
    expect_guest_line(fixture, "k 32");
    expect_guest_line(fixture, "mode 13");
    wait_until(fixture, screen_has_size, &(ScreenSize){&track, 320, 200}, "Resized to 320x200");
    framebuffer_get(fixture, &graphics);
    g_assert_cmpuint(graphics.width, ==, 320);
    g_assert_cmpuint(graphics.height, ==, 200);
    wait_until(fixture, stripes_shown, &graphics, "picture of the guest's stripes");

    assert_ok(call(fixture, DISPLAY_IFACE, "Screenshot", g_variant_new("(s)", shot)));
    assert_screenshot_matches(shot, &graphics);

    /* Back to 80x25 text in 9-dot characters: 720x400. */
    press_key(fixture, SCAN_T);
    expect_guest_line(fixture, "k 14");
    expect_guest_line(fixture, "mode 03");
    wait_until(fixture, screen_has_size, &(ScreenSize){&track, 720, 400}, "Resized to 720x400");
    framebuffer_get(fixture, &text);
    g_assert_cmpuint(text.width, ==, 720);
    g_assert_cmpuint(text.height, ==, 400);
    screen_track_read(fixture, &track);
    g_assert_cmpuint(track.resizes, >=, 2);
    /* The BIOS's text and the stripes came as frames. */
    g_assert_cmpuint(track.frames, >=, 1);

    framebuffer_unmap(&first);
    framebuffer_unmap(&graphics);
    framebuffer_unmap(&text);
}

/* --- input -------------------------------------------------------------- */

/* Keys by qnum code reach the guest as the scan codes the BIOS reports;
 * pointer motion and buttons reach it as PS/2 packets; the wheel is accepted
 * (the BIOS mouse speaks the 3-byte protocol, which has no wheel). */
static void test_input(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    start_guest(fixture);
    press_key(fixture, SCAN_A);
    expect_guest_line(fixture, "k 1e");
    press_key(fixture, QNUM_UP);
    expect_guest_line(fixture, "k 48");

    /* Status 0x28: bit 3 always set, bit 5 the Y sign: screen-down motion
     * is negative Y on PS/2. */
    g_assert_true(viv_dbus_input_call_pointer_motion_sync(fixture->input, 5, 3, NULL, &error));
    g_assert_no_error(error);
    expect_guest_line(fixture, "m 28 05 fd");
    g_assert_true(viv_dbus_input_call_pointer_button_sync(fixture->input, 1, TRUE, NULL, &error));
    expect_guest_line(fixture, "m 09 00 00");
    g_assert_true(viv_dbus_input_call_pointer_button_sync(fixture->input, 1, FALSE, NULL, &error));
    expect_guest_line(fixture, "m 08 00 00");
    g_assert_true(viv_dbus_input_call_pointer_button_sync(fixture->input, 3, TRUE, NULL, &error));
    expect_guest_line(fixture, "m 0a 00 00");
    g_assert_true(viv_dbus_input_call_pointer_button_sync(fixture->input, 3, FALSE, NULL, &error));
    expect_guest_line(fixture, "m 08 00 00");
    g_assert_no_error(error);

    g_assert_true(viv_dbus_input_call_wheel_sync(fixture->input, 1, NULL, &error));
    g_assert_true(
        viv_dbus_input_call_wheel_sync(fixture->input, -VIV_WHEEL_MAX_DELTA, NULL, &error));
    g_assert_no_error(error);
    /* A wheel step may come as an empty packet; nothing else may. */
    press_key(fixture, SCAN_A);
    for (;;) {
        g_autofree char *line = next_guest_line(fixture);
        if (g_str_equal(line, "k 1e"))
            break;
        g_assert_cmpstr(line, ==, "m 08 00 00");
    }
    gt_signal_logger_assert_no_emissions(fixture->states);
}

/* --- media -------------------------------------------------------------- */

static char *media_path(GVariant *media, const char *drive)
{
    GVariantIter iter;
    const char *name, *path;

    g_variant_iter_init(&iter, media);
    while (g_variant_iter_next(&iter, "(&s&s)", &name, &path)) {
        if (g_str_equal(name, drive))
            return g_strdup(path);
    }
    return NULL;
}

static void expect_media(Fixture *fixture, const char *drive, const char *path)
{
    g_autoptr(GVariant) media = next_property_change(fixture, "Media");
    g_autofree char *now = media_path(media, drive);
    g_assert_cmpstr(now, ==, path);
}

static void test_media(Fixture *fixture, gconstpointer data)
{
    g_autofree char *floppy = g_build_filename(fixture->workdir, "other.img", NULL);
    g_autofree char *disc = g_build_filename(fixture->workdir, "disc.iso", NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *zeros = g_malloc0(1474560);

    g_assert_true(g_file_set_contents(floppy, zeros, 1474560, &error));
    g_assert_true(g_file_set_contents(disc, zeros, 32 * 2048, &error));
    g_assert_no_error(error);
    start_guest(fixture);

    assert_ok(call(fixture, MACHINE_IFACE, "ChangeMedia", g_variant_new("(ss)", "fda", floppy)));
    expect_media(fixture, "fda", floppy);
    assert_ok(call(fixture, MACHINE_IFACE, "EjectMedia", g_variant_new("(s)", "fda")));
    expect_media(fixture, "fda", "");
    /* An empty drive is not an error. */
    assert_ok(call(fixture, MACHINE_IFACE, "EjectMedia", g_variant_new("(s)", "fda")));
    assert_ok(call(fixture, MACHINE_IFACE, "ChangeMedia", g_variant_new("(ss)", "cdrom", disc)));
    expect_media(fixture, "cdrom", disc);
    assert_ok(call(fixture, MACHINE_IFACE, "EjectMedia", g_variant_new("(s)", "cdrom")));
    expect_media(fixture, "cdrom", "");

    g_autofree char *fda = media_path(viv_dbus_machine_get_media(fixture->machine), "fda");
    g_assert_cmpstr(fda, ==, "");
    assert_unchanged(fixture, VIV_MACHINE_STATE_RUNNING);
    press_key(fixture, SCAN_A);
    expect_guest_line(fixture, "k 1e");
}

/* --- Quit --------------------------------------------------------------- */

static gboolean connection_closed(Fixture *fixture, gconstpointer data)
{
    return g_dbus_connection_is_closed(fixture->connection);
}

/* Quit in each State is answered before the engine goes (the teardown of
 * every other test quits too). */
static void test_quit_running(Fixture *fixture, gconstpointer data)
{
    start_guest(fixture);
    quit_engine(fixture);
    wait_until(fixture, connection_closed, NULL, "closed connection after Quit");
}

static void test_quit_paused(Fixture *fixture, gconstpointer data)
{
    start_guest(fixture);
    assert_ok(call(fixture, MACHINE_IFACE, "Pause", NULL));
    expect_state(fixture, VIV_MACHINE_STATE_PAUSED);
    quit_engine(fixture);
    wait_until(fixture, connection_closed, NULL, "closed connection after Quit");
}

static void test_quit_stopped(Fixture *fixture, gconstpointer data)
{
    quit_engine(fixture);
    wait_until(fixture, connection_closed, NULL, "closed connection after Quit");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (!g_getenv("VIVARIUM_ENGINE") || !g_getenv("VIVARIUM_DBUS_GUEST"))
        g_error("set VIVARIUM_ENGINE and VIVARIUM_DBUS_GUEST");
    /* Registers the org.vivarium.Error names, so replies map to VIV_DBUS_ERROR. */
    (void)viv_dbus_error_quark();

#define ADD(path, func)                                                                            \
    g_test_add("/engine-dbus/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
    ADD("properties", test_properties);
    ADD("life-cycle", test_life_cycle);
    ADD("wrong-state", test_wrong_state);
    ADD("bad-arguments", test_bad_arguments);
    ADD("malformed-calls", test_malformed_calls);
    ADD("display", test_display);
    ADD("input", test_input);
    ADD("media", test_media);
    ADD("quit-running", test_quit_running);
    ADD("quit-paused", test_quit_paused);
    ADD("quit-stopped", test_quit_stopped);
#undef ADD
    return g_test_run();
}
