/* The app <-> engine D-Bus contract, end to end: VivEngine spawns the engine
 * given in $VIVARIUM_ENGINE (the fake engine in this build, the real one once it
 * serves the interfaces) on a socketpair and these tests check the handshake,
 * the state machine, the error names for malformed and out-of-range calls, the
 * shared framebuffer, and how the death of the engine is reported. */
#include "viv-dbus-generated.h"
#include "viv-engine-source.h"
#include "viv-engine.h"
#include "viv-protocol.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#define WAIT_TIMEOUT_S 10

typedef struct {
    VivEngine *engine;
    gboolean ready;
    gboolean exited;
    gboolean unexpected;
    char *exit_message;
    char *last_error;
} Fixture;

static gboolean timeout_cb(gpointer data)
{
    g_error("timed out waiting for the engine");
    return G_SOURCE_REMOVE;
}

/* Spins the main loop until *flag is set. */
static void wait_for(gboolean *flag)
{
    guint timer = g_timeout_add_seconds(WAIT_TIMEOUT_S, timeout_cb, NULL);

    while (!*flag)
        g_main_context_iteration(NULL, TRUE);
    g_source_remove(timer);
}

static void ready_cb(VivEngine *engine, Fixture *fixture)
{
    fixture->ready = TRUE;
}

static void exited_cb(VivEngine *engine, gboolean unexpected, const char *message, Fixture *fixture)
{
    fixture->exited = TRUE;
    fixture->unexpected = unexpected;
    fixture->exit_message = g_strdup(message);
}

static void error_cb(VivEngine *engine, const char *message, Fixture *fixture)
{
    g_free(fixture->last_error);
    fixture->last_error = g_strdup(message);
}

static void spawn(Fixture *fixture, const char *const *options)
{
    g_autoptr(GError) error = NULL;

    fixture->engine = viv_engine_new();
    g_signal_connect(fixture->engine, "ready", G_CALLBACK(ready_cb), fixture);
    g_signal_connect(fixture->engine, "exited", G_CALLBACK(exited_cb), fixture);
    g_signal_connect(fixture->engine, "error", G_CALLBACK(error_cb), fixture);
    g_assert_true(viv_engine_spawn(fixture->engine, options, &error));
    g_assert_no_error(error);
}

static void fixture_set_up(Fixture *fixture, gconstpointer data)
{
    const char *options[] = {"--name", "Contract test", "--memory", "16", NULL};

    spawn(fixture, options);
    wait_for(&fixture->ready);
}

static void fixture_tear_down(Fixture *fixture, gconstpointer data)
{
    if (viv_engine_is_alive(fixture->engine)) {
        viv_engine_quit(fixture->engine);
        wait_for(&fixture->exited);
    }
    g_clear_object(&fixture->engine);
    g_free(fixture->exit_message);
    g_free(fixture->last_error);
}

/* Calls a method synchronously and returns its error (NULL on success). */
static GError *call(GDBusProxy *proxy, const char *method, GVariant *parameters)
{
    GError *error = NULL;
    g_autoptr(GVariant) reply = g_dbus_proxy_call_sync(proxy, method, parameters,
                                                       G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
    return error;
}

static void assert_error(GError *error, VivDbusError code, const char *name)
{
    g_autofree char *remote = NULL;

    g_assert_nonnull(error);
    remote = g_dbus_error_get_remote_error(error);
    g_assert_cmpstr(remote, ==, name);
    g_assert_error(error, VIV_DBUS_ERROR, (int)code);
    g_error_free(error);
}

static void assert_success(GError *error)
{
    g_assert_no_error(error);
}

static void test_properties(Fixture *fixture, gconstpointer data)
{
    VivDbusMachine *machine = viv_engine_get_machine(fixture->engine);
    const char *backend = viv_dbus_machine_get_backend(machine);

    g_assert_cmpstr(viv_dbus_machine_get_state(machine), ==, VIV_MACHINE_STATE_STOPPED);
    g_assert_cmpstr(viv_dbus_machine_get_name(machine), ==, "Contract test");
    g_assert_true(g_str_equal(backend, "kvm") || g_str_equal(backend, "dbt") ||
                  g_str_equal(backend, "interp"));
    g_assert_true(
        g_variant_is_of_type(viv_dbus_machine_get_media(machine), G_VARIANT_TYPE("a(ss)")));
}

static void test_state_machine(Fixture *fixture, gconstpointer data)
{
    GDBusProxy *machine = G_DBUS_PROXY(viv_engine_get_machine(fixture->engine));
    const char *invalid_state = "org.vivarium.Error.InvalidState";

    assert_error(call(machine, "Pause", NULL), VIV_DBUS_ERROR_INVALID_STATE, invalid_state);
    assert_error(call(machine, "Resume", NULL), VIV_DBUS_ERROR_INVALID_STATE, invalid_state);
    assert_error(call(machine, "Reset", NULL), VIV_DBUS_ERROR_INVALID_STATE, invalid_state);
    assert_error(call(machine, "PowerOff", NULL), VIV_DBUS_ERROR_INVALID_STATE, invalid_state);
    assert_success(call(machine, "Start", NULL));
    assert_error(call(machine, "Start", NULL), VIV_DBUS_ERROR_INVALID_STATE, invalid_state);
    assert_error(call(machine, "Resume", NULL), VIV_DBUS_ERROR_INVALID_STATE, invalid_state);
    assert_success(call(machine, "Pause", NULL));
    assert_error(call(machine, "Pause", NULL), VIV_DBUS_ERROR_INVALID_STATE, invalid_state);
    assert_success(call(machine, "Reset", NULL));
    assert_success(call(machine, "Resume", NULL));
    assert_success(call(machine, "PowerOff", NULL));
    assert_success(call(machine, "Start", NULL));
}

static void test_bad_input(Fixture *fixture, gconstpointer data)
{
    GDBusProxy *input = G_DBUS_PROXY(viv_engine_get_input(fixture->engine));
    const char *invalid = "org.vivarium.Error.InvalidArgument";
    GError *error;

    assert_success(call(input, "KeyPress", g_variant_new("(u)", 0x1e)));
    assert_success(call(input, "KeyRelease", g_variant_new("(u)", 0x1e)));
    assert_success(call(input, "KeyPress", g_variant_new("(u)", 0xc6)));
    assert_error(call(input, "KeyPress", g_variant_new("(u)", 0)), VIV_DBUS_ERROR_INVALID_ARGUMENT,
                 invalid);
    assert_error(call(input, "KeyRelease", g_variant_new("(u)", 0x100)),
                 VIV_DBUS_ERROR_INVALID_ARGUMENT, invalid);
    assert_success(call(input, "PointerMotion", g_variant_new("(ii)", -4096, 4096)));
    assert_error(call(input, "PointerMotion", g_variant_new("(ii)", 5000, 0)),
                 VIV_DBUS_ERROR_INVALID_ARGUMENT, invalid);
    assert_success(call(input, "PointerButton", g_variant_new("(ub)", 3, TRUE)));
    assert_error(call(input, "PointerButton", g_variant_new("(ub)", 4, TRUE)),
                 VIV_DBUS_ERROR_INVALID_ARGUMENT, invalid);
    assert_error(call(input, "PointerButton", g_variant_new("(ub)", 0, FALSE)),
                 VIV_DBUS_ERROR_INVALID_ARGUMENT, invalid);
    assert_success(call(input, "Wheel", g_variant_new("(i)", -1)));
    assert_error(call(input, "Wheel", g_variant_new("(i)", 0)), VIV_DBUS_ERROR_INVALID_ARGUMENT,
                 invalid);
    assert_error(call(input, "Wheel", g_variant_new("(i)", 128)), VIV_DBUS_ERROR_INVALID_ARGUMENT,
                 invalid);

    /* A call with the wrong signature never reaches the engine's code: GDBus
     * answers it with the standard error. */
    error = call(input, "KeyPress", g_variant_new("(s)", "A"));
    g_assert_error(error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS);
    g_error_free(error);
    error = call(input, "NoSuchMethod", NULL);
    g_assert_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD);
    g_error_free(error);
}

static void test_media(Fixture *fixture, gconstpointer data)
{
    GDBusProxy *machine = G_DBUS_PROXY(viv_engine_get_machine(fixture->engine));
    const char *invalid = "org.vivarium.Error.InvalidArgument";
    g_autofree char *image = NULL;
    g_autoptr(GError) error = NULL;
    int fd = g_file_open_tmp("viv-media-XXXXXX.iso", &image, &error);

    g_assert_no_error(error);
    close(fd);
    assert_error(call(machine, "ChangeMedia", g_variant_new("(ss)", "hdz", image)),
                 VIV_DBUS_ERROR_INVALID_ARGUMENT, invalid);
    assert_error(call(machine, "ChangeMedia", g_variant_new("(ss)", "cdrom", "relative.iso")),
                 VIV_DBUS_ERROR_INVALID_ARGUMENT, invalid);
    assert_error(call(machine, "ChangeMedia", g_variant_new("(ss)", "cdrom", "/nonexistent.iso")),
                 VIV_DBUS_ERROR_NOT_FOUND, "org.vivarium.Error.NotFound");
    assert_success(call(machine, "ChangeMedia", g_variant_new("(ss)", "cdrom", image)));
    assert_success(call(machine, "EjectMedia", g_variant_new("(s)", "cdrom")));
    assert_success(call(machine, "EjectMedia", g_variant_new("(s)", "cdrom")));
    assert_error(call(machine, "EjectMedia", g_variant_new("(s)", "")),
                 VIV_DBUS_ERROR_INVALID_ARGUMENT, invalid);
    unlink(image);
}

static void test_snapshots(Fixture *fixture, gconstpointer data)
{
    GDBusProxy *machine = G_DBUS_PROXY(viv_engine_get_machine(fixture->engine));
    GDBusProxy *snapshots = G_DBUS_PROXY(viv_engine_get_snapshots(fixture->engine));
    const char *invalid = "org.vivarium.Error.InvalidArgument";
    GError *error = NULL;
    g_autoptr(GVariant) list = NULL;

    assert_error(call(snapshots, "Save", g_variant_new("(s)", "early")),
                 VIV_DBUS_ERROR_INVALID_STATE, "org.vivarium.Error.InvalidState");
    assert_success(call(machine, "Start", NULL));
    assert_error(call(snapshots, "Save", g_variant_new("(s)", "../escape")),
                 VIV_DBUS_ERROR_INVALID_ARGUMENT, invalid);
    assert_error(call(snapshots, "Save", g_variant_new("(s)", "")), VIV_DBUS_ERROR_INVALID_ARGUMENT,
                 invalid);
    assert_error(call(snapshots, "Load", g_variant_new("(s)", "missing")), VIV_DBUS_ERROR_NOT_FOUND,
                 "org.vivarium.Error.NotFound");
    assert_success(call(snapshots, "Save", g_variant_new("(s)", "before install")));
    list =
        g_dbus_proxy_call_sync(snapshots, "List", NULL, G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(g_variant_is_of_type(list, G_VARIANT_TYPE("(a(sxs))")));
    g_autoptr(GVariant) entries = g_variant_get_child_value(list, 0);
    g_assert_cmpuint(g_variant_n_children(entries), ==, 1);
    const char *name;
    gint64 time;
    const char *thumbnail;
    g_variant_get_child(entries, 0, "(&sx&s)", &name, &time, &thumbnail);
    g_assert_cmpstr(name, ==, "before install");
    g_assert_cmpint(time, >, 0);
    assert_success(call(snapshots, "Load", g_variant_new("(s)", "before install")));
    assert_success(call(snapshots, "Delete", g_variant_new("(s)", "before install")));
    assert_error(call(snapshots, "Delete", g_variant_new("(s)", "before install")),
                 VIV_DBUS_ERROR_NOT_FOUND, "org.vivarium.Error.NotFound");
}

typedef struct {
    int resized;
    int invalidated;
} DisplayCounts;

static void count_resized_cb(VivDisplaySource *source, DisplayCounts *counts)
{
    counts->resized++;
}

static void count_invalidate_cb(VivDisplaySource *source, int x, int y, int w, int h,
                                DisplayCounts *counts)
{
    cairo_surface_t *surface = viv_display_source_get_surface(source);

    g_assert_cmpint(x, >=, 0);
    g_assert_cmpint(y, >=, 0);
    g_assert_cmpint(x + w, <=, cairo_image_surface_get_width(surface));
    g_assert_cmpint(y + h, <=, cairo_image_surface_get_height(surface));
    counts->invalidated++;
}

static guint32 surface_pixel(cairo_surface_t *surface, int x, int y)
{
    const guint8 *data = cairo_image_surface_get_data(surface);
    int stride = cairo_image_surface_get_stride(surface);

    return ((const guint32 *)(data + (gsize)y * stride))[x] & 0xffffff;
}

/* Needs the fake engine's picture: colour bars in a 640x480 mode. */
static void test_framebuffer(Fixture *fixture, gconstpointer data)
{
    g_autoptr(VivEngineSource) source = viv_engine_source_new(fixture->engine);
    DisplayCounts counts = {0};
    gboolean done = FALSE;
    cairo_surface_t *surface;

    if (g_getenv("VIVARIUM_ENGINE_IS_FAKE") == NULL) {
        g_test_skip("the picture is the fake engine's");
        return;
    }
    g_signal_connect(source, "resized", G_CALLBACK(count_resized_cb), &counts);
    g_signal_connect(source, "invalidate", G_CALLBACK(count_invalidate_cb), &counts);
    viv_engine_start(fixture->engine);
    /* The first framebuffer, then the switch to 640x480, then some frames. */
    guint timer = g_timeout_add_seconds(WAIT_TIMEOUT_S, timeout_cb, NULL);
    while (!done) {
        g_main_context_iteration(NULL, TRUE);
        surface = viv_display_source_get_surface(VIV_DISPLAY_SOURCE(source));
        done = counts.resized >= 2 && counts.invalidated >= 3 && surface != NULL &&
               cairo_image_surface_get_width(surface) == 640;
    }
    g_source_remove(timer);
    g_assert_cmpint(cairo_image_surface_get_height(surface), ==, 480);
    g_assert_cmphex(surface_pixel(surface, 40, 120), ==, 0xffffff);
    g_assert_cmphex(surface_pixel(surface, 120, 120), ==, 0xffff00);
    g_assert_cmphex(surface_pixel(surface, 440, 120), ==, 0xff0000);
    g_assert_cmphex(surface_pixel(surface, 600, 120), ==, 0x000000);
    g_assert_cmphex(surface_pixel(surface, 600, 460), ==, 0x404040);
    g_assert_null(fixture->last_error);
}

/* Needs the fake engine's --hostile mode: a lying GetFramebuffer and
 * out-of-bounds damage. The app refuses the first, clips the second, and goes on. */
static void test_hostile_engine(void)
{
    Fixture fixture = {0};
    const char *options[] = {"--hostile", NULL};
    DisplayCounts counts = {0};
    cairo_surface_t *surface = NULL;

    if (g_getenv("VIVARIUM_ENGINE_IS_FAKE") == NULL) {
        g_test_skip("--hostile is the fake engine's");
        return;
    }
    spawn(&fixture, options);
    wait_for(&fixture.ready);
    g_autoptr(VivEngineSource) source = viv_engine_source_new(fixture.engine);
    g_signal_connect(source, "resized", G_CALLBACK(count_resized_cb), &counts);
    g_signal_connect(source, "invalidate", G_CALLBACK(count_invalidate_cb), &counts);

    guint timer = g_timeout_add_seconds(WAIT_TIMEOUT_S, timeout_cb, NULL);
    while (fixture.last_error == NULL)
        g_main_context_iteration(NULL, TRUE);
    g_assert_nonnull(strstr(fixture.last_error, "smaller than it says"));
    g_assert_null(viv_display_source_get_surface(VIV_DISPLAY_SOURCE(source)));

    viv_engine_start(fixture.engine);
    while (counts.invalidated < 10 || surface == NULL ||
           cairo_image_surface_get_width(surface) != 640) {
        g_main_context_iteration(NULL, TRUE);
        surface = viv_display_source_get_surface(VIV_DISPLAY_SOURCE(source));
    }
    g_source_remove(timer);
    /* count_invalidate_cb asserted that every rectangle passed on was inside. */
    g_assert_cmphex(surface_pixel(surface, 40, 120), ==, 0xffffff);
    g_assert_true(viv_engine_is_alive(fixture.engine));
    fixture_tear_down(&fixture, NULL);
}

static int make_memfd(gsize size, unsigned seals)
{
    int fd = memfd_create("test-framebuffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, size), ==, 0);
    if (seals != 0)
        g_assert_cmpint(fcntl(fd, F_ADD_SEALS, seals), ==, 0);
    return fd;
}

static void test_framebuffer_validation(void)
{
    const unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW;
    int good = make_memfd(640 * 4 * 480, seals);
    int unsealed = make_memfd(640 * 4 * 480, 0);
    GError *error = NULL;

    g_assert_true(
        viv_engine_source_framebuffer_valid(good, 640, 480, 2560, VIV_FORMAT_XRGB8888, &error));
    g_assert_no_error(error);
    /* Each of these must be refused before anything is mapped. */
    g_assert_false(viv_engine_source_framebuffer_valid(good, 640, 480, 2560, 0x34325241, NULL));
    g_assert_false(
        viv_engine_source_framebuffer_valid(good, 640, 481, 2560, VIV_FORMAT_XRGB8888, NULL));
    g_assert_false(
        viv_engine_source_framebuffer_valid(good, 640, 480, 2556, VIV_FORMAT_XRGB8888, NULL));
    g_assert_false(
        viv_engine_source_framebuffer_valid(good, 640, 480, 2562, VIV_FORMAT_XRGB8888, NULL));
    g_assert_false(
        viv_engine_source_framebuffer_valid(good, 0, 480, 2560, VIV_FORMAT_XRGB8888, NULL));
    g_assert_false(
        viv_engine_source_framebuffer_valid(good, 20000, 1, 80000, VIV_FORMAT_XRGB8888, NULL));
    g_assert_false(
        viv_engine_source_framebuffer_valid(unsealed, 640, 480, 2560, VIV_FORMAT_XRGB8888, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
    g_error_free(error);
    close(good);
    close(unsealed);
}

static void test_engine_killed(Fixture *fixture, gconstpointer data)
{
    kill(viv_engine_get_pid(fixture->engine), SIGKILL);
    wait_for(&fixture->exited);
    g_assert_true(fixture->unexpected);
    g_assert_nonnull(strstr(fixture->exit_message, "signal 9"));
    g_assert_false(viv_engine_is_alive(fixture->engine));
    g_assert_false(viv_engine_is_ready(fixture->engine));
}

static void test_engine_quit(Fixture *fixture, gconstpointer data)
{
    viv_engine_quit(fixture->engine);
    wait_for(&fixture->exited);
    g_assert_false(fixture->unexpected);
    g_assert_null(fixture->exit_message);
}

static void test_engine_fails_to_start(void)
{
    Fixture fixture = {0};
    const char *options[] = {"--hda", "/nonexistent/disk.img", NULL};

    spawn(&fixture, options);
    wait_for(&fixture.exited);
    g_assert_true(fixture.unexpected);
    g_assert_false(fixture.ready);
    /* The message has both what happened and the engine's own last words. */
    g_assert_nonnull(strstr(fixture.exit_message, "exit status"));
    g_assert_nonnull(strstr(fixture.exit_message, "/nonexistent/disk.img"));
    fixture_tear_down(&fixture, NULL);
}

static void test_engine_silent(void)
{
    Fixture fixture = {0};
    const char *options[] = {"--silent", NULL};

    if (g_getenv("VIVARIUM_ENGINE_IS_FAKE") == NULL) {
        g_test_skip("--silent is the fake engine's");
        return;
    }
    fixture.engine = viv_engine_new();
    viv_engine_set_handshake_timeout(fixture.engine, 1);
    g_signal_connect(fixture.engine, "ready", G_CALLBACK(ready_cb), &fixture);
    g_signal_connect(fixture.engine, "exited", G_CALLBACK(exited_cb), &fixture);
    g_assert_true(viv_engine_spawn(fixture.engine, options, NULL));
    wait_for(&fixture.exited);
    g_assert_false(fixture.ready);
    g_assert_true(fixture.unexpected);
    g_assert_nonnull(strstr(fixture.exit_message, "did not answer in time"));
    fixture_tear_down(&fixture, NULL);
}

static void test_engine_missing(void)
{
    g_autoptr(VivEngine) engine = viv_engine_new();
    g_autoptr(GError) error = NULL;
    const char *saved = g_getenv("VIVARIUM_ENGINE");
    g_autofree char *copy = g_strdup(saved);

    g_setenv("VIVARIUM_ENGINE", "/nonexistent/vivarium-engine", TRUE);
    g_assert_false(viv_engine_spawn(engine, NULL, &error));
    g_assert_nonnull(error);
    g_setenv("VIVARIUM_ENGINE", copy, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (g_getenv("VIVARIUM_ENGINE") == NULL)
        g_error("set VIVARIUM_ENGINE to the engine to test");

#define ADD(path, func)                                                                            \
    g_test_add("/engine-protocol/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
    ADD("properties", test_properties);
    ADD("state-machine", test_state_machine);
    ADD("bad-input", test_bad_input);
    ADD("media", test_media);
    ADD("snapshots", test_snapshots);
    ADD("framebuffer", test_framebuffer);
    ADD("engine-killed", test_engine_killed);
    ADD("engine-quit", test_engine_quit);
#undef ADD
    g_test_add_func("/engine-protocol/framebuffer-validation", test_framebuffer_validation);
    g_test_add_func("/engine-protocol/engine-fails-to-start", test_engine_fails_to_start);
    g_test_add_func("/engine-protocol/engine-missing", test_engine_missing);
    g_test_add_func("/engine-protocol/hostile-engine", test_hostile_engine);
    g_test_add_func("/engine-protocol/engine-silent", test_engine_silent);
    return g_test_run();
}
