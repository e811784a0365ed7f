/* A stand-in for vivarium-engine that serves the app <-> engine D-Bus contract
 * (data/dbus/org.vivarium.Engine.xml) on the socket given with --dbus-fd, so that
 * the app can be tested before, and independently of, the real engine service.
 *
 * It follows the contract exactly: the same state machine, the same argument
 * checks and error names. Its "guest" shows a known picture: for 0.3 s after Start
 * a 720x400 "text mode" screen, then a 640x480 screen whose upper half holds
 * eight 80-pixel colour bars (white, yellow, cyan, green, magenta, red, blue,
 * black) and whose lower half is grey with a 64x64 white square moving right.
 *
 * Everything it receives is appended to a log file (--log or the environment
 * variable VIVARIUM_FAKE_ENGINE_LOG), one event a line, for tests to read:
 *   pid 1234 / args ... / start / pause / resume / reset / poweroff / quit /
 *   key-press 0x1e / key-release 0x1e / motion 3 -2 / button 1 down / wheel 1 /
 *   media cdrom /path / eject fda / screenshot /path / snapshot-save name ...
 *
 * Command line: the engine's options as the app passes them; unknown ones are
 * ignored. --fail-start MESSAGE makes it exit with status 1 after printing
 * MESSAGE on stderr, like an engine that cannot open a disk image. --hostile
 * breaks the contract on purpose, to test that the app survives a buggy engine:
 * the first GetFramebuffer claims a framebuffer ten times taller than its memfd,
 * and every Invalidate carries rectangles outside the framebuffer (negative,
 * past the edge, overflowing int). --silent never answers on the socket. */
#include "viv-dbus-generated.h"
#include "viv-protocol.h"

#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TEXT_MODE_WIDTH  720
#define TEXT_MODE_HEIGHT 400
#define GRAPHICS_WIDTH   640
#define GRAPHICS_HEIGHT  480
#define SQUARE_SIZE      64
#define SQUARE_TOP       300

struct framebuffer {
    int fd;
    guint32 *pixels;
    guint width, height, stride;
};

struct fake_engine {
    GMainLoop *loop;
    GDBusConnection *connection;
    VivDbusMachine *machine;
    VivDbusDisplay *display;
    VivDbusInput *input;
    VivDbusSnapshots *snapshots;
    FILE *log;

    struct framebuffer framebuffer;
    guint frame_timer;
    guint mode_switch_timer;
    int square_x;

    char *media[3]; /* fda, fdb, cdrom */
    gboolean hostile;
    guint framebuffer_calls;
    GPtrArray *snapshot_names;
    GArray *snapshot_times;
};

static const char *const drive_names[] = {"fda", "fdb", "cdrom"};

static const guint32 colour_bars[8] = {
    0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000,
};

static void log_event(struct fake_engine *engine, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void log_event(struct fake_engine *engine, const char *format, ...)
{
    va_list args;

    if (engine->log == NULL)
        return;
    va_start(args, format);
    vfprintf(engine->log, format, args);
    va_end(args);
    fputc('\n', engine->log);
    fflush(engine->log);
}

/* The memfd is sealed against shrinking and growing as the contract promises,
 * so that the app's read-only mapping can never fault. */
static gboolean framebuffer_create(struct framebuffer *fb, guint width, guint height,
                                   GError **error)
{
    guint stride = width * 4;
    size_t size = (size_t)stride * height;
    int fd = memfd_create("vivarium-framebuffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0 || ftruncate(fd, size) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "Cannot create the framebuffer: %s", g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return FALSE;
    }
    void *pixels = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (pixels == MAP_FAILED) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "Cannot map the framebuffer: %s", g_strerror(errno));
        close(fd);
        return FALSE;
    }
    fb->fd = fd;
    fb->pixels = pixels;
    fb->width = width;
    fb->height = height;
    fb->stride = stride;
    return TRUE;
}

static void framebuffer_destroy(struct framebuffer *fb)
{
    if (fb->pixels != NULL) {
        munmap(fb->pixels, (size_t)fb->stride * fb->height);
        close(fb->fd);
    }
    memset(fb, 0, sizeof(*fb));
}

static void fill_rect(struct framebuffer *fb, guint x, guint y, guint w, guint h, guint32 colour)
{
    for (guint row = y; row < y + h && row < fb->height; row++) {
        guint32 *line = fb->pixels + (size_t)row * (fb->stride / 4);
        for (guint col = x; col < x + w && col < fb->width; col++)
            line[col] = colour;
    }
}

static void draw_text_mode(struct framebuffer *fb)
{
    /* A blue screen with one light grey "line of text" of block characters. */
    fill_rect(fb, 0, 0, fb->width, fb->height, 0x0000aa);
    for (guint i = 0; i < 20; i++)
        fill_rect(fb, 9 * i, 0, 8, 16, 0xaaaaaa);
}

static void draw_graphics_mode(struct fake_engine *engine)
{
    struct framebuffer *fb = &engine->framebuffer;

    for (guint i = 0; i < 8; i++)
        fill_rect(fb, i * (GRAPHICS_WIDTH / 8), 0, GRAPHICS_WIDTH / 8, GRAPHICS_HEIGHT / 2,
                  colour_bars[i]);
    fill_rect(fb, 0, GRAPHICS_HEIGHT / 2, fb->width, GRAPHICS_HEIGHT / 2, 0x404040);
    fill_rect(fb, engine->square_x, SQUARE_TOP, SQUARE_SIZE, SQUARE_SIZE, 0xffffff);
}

static void emit_invalidate(struct fake_engine *engine, int x, int y, int w, int h)
{
    GVariantBuilder rects;

    g_variant_builder_init(&rects, G_VARIANT_TYPE("a(iiii)"));
    if (engine->hostile) {
        g_variant_builder_add(&rects, "(iiii)", -50, -50, 100, 100);
        g_variant_builder_add(&rects, "(iiii)", G_MAXINT - 5, 10, 100, 10);
        g_variant_builder_add(&rects, "(iiii)", 10, 10, G_MAXINT, G_MAXINT);
        g_variant_builder_add(&rects, "(iiii)", 5000, 5000, 10, 10);
        g_variant_builder_add(&rects, "(iiii)", 20, 20, -10, 5);
        g_variant_builder_add(&rects, "(iiii)", 0, 0, 0, 0);
    }
    g_variant_builder_add(&rects, "(iiii)", x, y, w, h);
    viv_dbus_display_emit_invalidate(engine->display, g_variant_builder_end(&rects));
}

static void switch_mode(struct fake_engine *engine, guint width, guint height)
{
    g_autoptr(GError) error = NULL;
    struct framebuffer fb;

    if (!framebuffer_create(&fb, width, height, &error))
        g_error("%s", error->message);
    framebuffer_destroy(&engine->framebuffer);
    engine->framebuffer = fb;
    viv_dbus_display_emit_resized(engine->display, fb.width, fb.height, fb.stride);
}

static gboolean animate_frame(gpointer data)
{
    struct fake_engine *engine = data;
    struct framebuffer *fb = &engine->framebuffer;
    int old_x = engine->square_x;

    if (fb->width != GRAPHICS_WIDTH)
        return G_SOURCE_CONTINUE;
    engine->square_x = (engine->square_x + 4) % (GRAPHICS_WIDTH - SQUARE_SIZE);
    fill_rect(fb, old_x, SQUARE_TOP, SQUARE_SIZE, SQUARE_SIZE, 0x404040);
    fill_rect(fb, engine->square_x, SQUARE_TOP, SQUARE_SIZE, SQUARE_SIZE, 0xffffff);
    if (engine->square_x > old_x) {
        emit_invalidate(engine, old_x, SQUARE_TOP, engine->square_x + SQUARE_SIZE - old_x,
                        SQUARE_SIZE);
    } else {
        emit_invalidate(engine, 0, SQUARE_TOP, GRAPHICS_WIDTH, SQUARE_SIZE);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean enter_graphics_mode(gpointer data)
{
    struct fake_engine *engine = data;

    engine->mode_switch_timer = 0;
    switch_mode(engine, GRAPHICS_WIDTH, GRAPHICS_HEIGHT);
    draw_graphics_mode(engine);
    return G_SOURCE_REMOVE;
}

static void stop_timers(struct fake_engine *engine)
{
    g_clear_handle_id(&engine->frame_timer, g_source_remove);
    g_clear_handle_id(&engine->mode_switch_timer, g_source_remove);
}

static void power_on(struct fake_engine *engine)
{
    stop_timers(engine);
    switch_mode(engine, TEXT_MODE_WIDTH, TEXT_MODE_HEIGHT);
    draw_text_mode(&engine->framebuffer);
    engine->square_x = 0;
    engine->mode_switch_timer = g_timeout_add(300, enter_graphics_mode, engine);
    engine->frame_timer = g_timeout_add(33, animate_frame, engine);
}

static gboolean require_state(GDBusMethodInvocation *invocation, const char *state, gboolean wanted,
                              const char *message)
{
    if (wanted)
        return TRUE;
    g_dbus_method_invocation_return_error(invocation, VIV_DBUS_ERROR, VIV_DBUS_ERROR_INVALID_STATE,
                                          message, state);
    return FALSE;
}

static gboolean handle_start(VivDbusMachine *machine, GDBusMethodInvocation *invocation,
                             struct fake_engine *engine)
{
    const char *state = viv_dbus_machine_get_state(machine);

    if (!require_state(invocation, state, g_str_equal(state, VIV_MACHINE_STATE_STOPPED),
                       "The machine cannot be started while it is %s."))
        return TRUE;
    log_event(engine, "start");
    power_on(engine);
    viv_dbus_machine_set_state(machine, VIV_MACHINE_STATE_RUNNING);
    viv_dbus_machine_complete_start(machine, invocation);
    return TRUE;
}

static gboolean handle_pause(VivDbusMachine *machine, GDBusMethodInvocation *invocation,
                             struct fake_engine *engine)
{
    const char *state = viv_dbus_machine_get_state(machine);

    if (!require_state(invocation, state, g_str_equal(state, VIV_MACHINE_STATE_RUNNING),
                       "The machine cannot be paused while it is %s."))
        return TRUE;
    log_event(engine, "pause");
    g_clear_handle_id(&engine->frame_timer, g_source_remove);
    viv_dbus_machine_set_state(machine, VIV_MACHINE_STATE_PAUSED);
    viv_dbus_machine_complete_pause(machine, invocation);
    return TRUE;
}

static gboolean handle_resume(VivDbusMachine *machine, GDBusMethodInvocation *invocation,
                              struct fake_engine *engine)
{
    const char *state = viv_dbus_machine_get_state(machine);

    if (!require_state(invocation, state, g_str_equal(state, VIV_MACHINE_STATE_PAUSED),
                       "The machine cannot be resumed while it is %s."))
        return TRUE;
    log_event(engine, "resume");
    engine->frame_timer = g_timeout_add(33, animate_frame, engine);
    viv_dbus_machine_set_state(machine, VIV_MACHINE_STATE_RUNNING);
    viv_dbus_machine_complete_resume(machine, invocation);
    return TRUE;
}

static gboolean handle_reset(VivDbusMachine *machine, GDBusMethodInvocation *invocation,
                             struct fake_engine *engine)
{
    const char *state = viv_dbus_machine_get_state(machine);
    gboolean paused = g_str_equal(state, VIV_MACHINE_STATE_PAUSED);

    if (!require_state(invocation, state, !g_str_equal(state, VIV_MACHINE_STATE_STOPPED),
                       "The machine cannot be reset while it is %s."))
        return TRUE;
    log_event(engine, "reset");
    power_on(engine);
    if (paused)
        g_clear_handle_id(&engine->frame_timer, g_source_remove);
    viv_dbus_machine_complete_reset(machine, invocation);
    return TRUE;
}

static gboolean handle_power_off(VivDbusMachine *machine, GDBusMethodInvocation *invocation,
                                 struct fake_engine *engine)
{
    const char *state = viv_dbus_machine_get_state(machine);

    if (!require_state(invocation, state, !g_str_equal(state, VIV_MACHINE_STATE_STOPPED),
                       "The machine cannot be powered off while it is %s."))
        return TRUE;
    log_event(engine, "poweroff");
    stop_timers(engine);
    viv_dbus_machine_set_state(machine, VIV_MACHINE_STATE_STOPPED);
    viv_dbus_machine_complete_power_off(machine, invocation);
    return TRUE;
}

static gboolean handle_quit(VivDbusMachine *machine, GDBusMethodInvocation *invocation,
                            struct fake_engine *engine)
{
    log_event(engine, "quit");
    stop_timers(engine);
    viv_dbus_machine_complete_quit(machine, invocation);
    g_dbus_connection_flush_sync(engine->connection, NULL, NULL);
    g_main_loop_quit(engine->loop);
    return TRUE;
}

static int drive_index(GDBusMethodInvocation *invocation, const char *drive)
{
    for (guint i = 0; i < G_N_ELEMENTS(drive_names); i++) {
        if (g_str_equal(drive, drive_names[i]))
            return i;
    }
    g_dbus_method_invocation_return_error(invocation, VIV_DBUS_ERROR,
                                          VIV_DBUS_ERROR_INVALID_ARGUMENT,
                                          "“%s” is not a drive; use fda, fdb or cdrom.", drive);
    return -1;
}

static void publish_media(struct fake_engine *engine)
{
    GVariantBuilder media;

    g_variant_builder_init(&media, G_VARIANT_TYPE("a(ss)"));
    for (guint i = 0; i < G_N_ELEMENTS(drive_names); i++)
        g_variant_builder_add(&media, "(ss)", drive_names[i],
                              engine->media[i] != NULL ? engine->media[i] : "");
    viv_dbus_machine_set_media(engine->machine, g_variant_builder_end(&media));
}

static gboolean handle_change_media(VivDbusMachine *machine, GDBusMethodInvocation *invocation,
                                    const char *drive, const char *path, struct fake_engine *engine)
{
    int index = drive_index(invocation, drive);

    if (index < 0)
        return TRUE;
    if (!g_path_is_absolute(path)) {
        g_dbus_method_invocation_return_error(invocation, VIV_DBUS_ERROR,
                                              VIV_DBUS_ERROR_INVALID_ARGUMENT,
                                              "The image path “%s” is not absolute.", path);
        return TRUE;
    }
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
        g_dbus_method_invocation_return_error(invocation, VIV_DBUS_ERROR, VIV_DBUS_ERROR_NOT_FOUND,
                                              "The image “%s” does not exist.", path);
        return TRUE;
    }
    log_event(engine, "media %s %s", drive, path);
    g_free(engine->media[index]);
    engine->media[index] = g_strdup(path);
    publish_media(engine);
    viv_dbus_machine_complete_change_media(machine, invocation);
    return TRUE;
}

static gboolean handle_eject_media(VivDbusMachine *machine, GDBusMethodInvocation *invocation,
                                   const char *drive, struct fake_engine *engine)
{
    int index = drive_index(invocation, drive);

    if (index < 0)
        return TRUE;
    log_event(engine, "eject %s", drive);
    g_clear_pointer(&engine->media[index], g_free);
    publish_media(engine);
    viv_dbus_machine_complete_eject_media(machine, invocation);
    return TRUE;
}

static gboolean handle_get_framebuffer(VivDbusDisplay *display, GDBusMethodInvocation *invocation,
                                       GUnixFDList *unused, struct fake_engine *engine)
{
    struct framebuffer *fb = &engine->framebuffer;
    g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
    g_autoptr(GError) error = NULL;
    int index = g_unix_fd_list_append(fds, fb->fd, &error);

    if (index < 0) {
        g_dbus_method_invocation_return_error(invocation, VIV_DBUS_ERROR, VIV_DBUS_ERROR_FAILED,
                                              "Cannot pass the framebuffer: %s", error->message);
        return TRUE;
    }
    guint height = fb->height;
    if (engine->hostile && engine->framebuffer_calls++ == 0)
        height *= 10; /* a lie: the memfd holds a tenth of that */
    viv_dbus_display_complete_get_framebuffer(display, invocation, fds, g_variant_new_handle(index),
                                              fb->width, height, fb->stride, VIV_FORMAT_XRGB8888);
    return TRUE;
}

static gboolean handle_screenshot(VivDbusDisplay *display, GDBusMethodInvocation *invocation,
                                  const char *path, struct fake_engine *engine)
{
    struct framebuffer *fb = &engine->framebuffer;

    if (!g_path_is_absolute(path)) {
        g_dbus_method_invocation_return_error(invocation, VIV_DBUS_ERROR,
                                              VIV_DBUS_ERROR_INVALID_ARGUMENT,
                                              "The screenshot path “%s” is not absolute.", path);
        return TRUE;
    }
    g_autofree char *temporary = g_strconcat(path, ".tmp", NULL);
    cairo_surface_t *surface = cairo_image_surface_create_for_data(
        (unsigned char *)fb->pixels, CAIRO_FORMAT_RGB24, fb->width, fb->height, fb->stride);
    cairo_status_t status = cairo_surface_write_to_png(surface, temporary);
    cairo_surface_destroy(surface);
    if (status != CAIRO_STATUS_SUCCESS || rename(temporary, path) < 0) {
        unlink(temporary);
        g_dbus_method_invocation_return_error(invocation, VIV_DBUS_ERROR, VIV_DBUS_ERROR_FAILED,
                                              "Cannot write the screenshot “%s”.", path);
        return TRUE;
    }
    log_event(engine, "screenshot %s", path);
    viv_dbus_display_complete_screenshot(display, invocation);
    return TRUE;
}

static gboolean check_scancode(GDBusMethodInvocation *invocation, guint scancode)
{
    if (scancode != 0 && scancode <= VIV_QNUM_MAX)
        return TRUE;
    g_dbus_method_invocation_return_error(invocation, VIV_DBUS_ERROR,
                                          VIV_DBUS_ERROR_INVALID_ARGUMENT,
                                          "0x%x is not a key code (1 to 0xff).", scancode);
    return FALSE;
}

static gboolean handle_key_press(VivDbusInput *input, GDBusMethodInvocation *invocation,
                                 guint scancode, struct fake_engine *engine)
{
    if (!check_scancode(invocation, scancode))
        return TRUE;
    log_event(engine, "key-press 0x%02x", scancode);
    viv_dbus_input_complete_key_press(input, invocation);
    return TRUE;
}

static gboolean handle_key_release(VivDbusInput *input, GDBusMethodInvocation *invocation,
                                   guint scancode, struct fake_engine *engine)
{
    if (!check_scancode(invocation, scancode))
        return TRUE;
    log_event(engine, "key-release 0x%02x", scancode);
    viv_dbus_input_complete_key_release(input, invocation);
    return TRUE;
}

static gboolean handle_pointer_motion(VivDbusInput *input, GDBusMethodInvocation *invocation,
                                      int dx, int dy, struct fake_engine *engine)
{
    if (ABS(dx) > VIV_POINTER_MAX_MOTION || ABS(dy) > VIV_POINTER_MAX_MOTION) {
        g_dbus_method_invocation_return_error(
            invocation, VIV_DBUS_ERROR, VIV_DBUS_ERROR_INVALID_ARGUMENT,
            "Pointer motion (%d, %d) is out of range (-%d to %d).", dx, dy, VIV_POINTER_MAX_MOTION,
            VIV_POINTER_MAX_MOTION);
        return TRUE;
    }
    log_event(engine, "motion %d %d", dx, dy);
    viv_dbus_input_complete_pointer_motion(input, invocation);
    return TRUE;
}

static gboolean handle_pointer_button(VivDbusInput *input, GDBusMethodInvocation *invocation,
                                      guint button, gboolean down, struct fake_engine *engine)
{
    if (button < 1 || button > 3) {
        g_dbus_method_invocation_return_error(invocation, VIV_DBUS_ERROR,
                                              VIV_DBUS_ERROR_INVALID_ARGUMENT,
                                              "Button %u does not exist (1 to 3).", button);
        return TRUE;
    }
    log_event(engine, "button %u %s", button, down ? "down" : "up");
    viv_dbus_input_complete_pointer_button(input, invocation);
    return TRUE;
}

static gboolean handle_wheel(VivDbusInput *input, GDBusMethodInvocation *invocation, int delta,
                             struct fake_engine *engine)
{
    if (delta == 0 || ABS(delta) > VIV_WHEEL_MAX_DELTA) {
        g_dbus_method_invocation_return_error(invocation, VIV_DBUS_ERROR,
                                              VIV_DBUS_ERROR_INVALID_ARGUMENT,
                                              "Wheel delta %d is out of range (-%d to %d, not 0).",
                                              delta, VIV_WHEEL_MAX_DELTA, VIV_WHEEL_MAX_DELTA);
        return TRUE;
    }
    log_event(engine, "wheel %d", delta);
    viv_dbus_input_complete_wheel(input, invocation);
    return TRUE;
}

static int find_snapshot(struct fake_engine *engine, const char *name)
{
    for (guint i = 0; i < engine->snapshot_names->len; i++) {
        if (g_str_equal(g_ptr_array_index(engine->snapshot_names, i), name))
            return i;
    }
    return -1;
}

/* Checks the name; returns the snapshot's index, -1 for a valid but unknown name
 * (when @must_exist is false), or -2 after replying with an error. */
static int lookup_snapshot(struct fake_engine *engine, GDBusMethodInvocation *invocation,
                           const char *name, gboolean must_exist)
{
    int index;

    if (!viv_dbus_snapshot_name_valid(name)) {
        g_dbus_method_invocation_return_error(invocation, VIV_DBUS_ERROR,
                                              VIV_DBUS_ERROR_INVALID_ARGUMENT,
                                              "“%s” is not a valid snapshot name.", name);
        return -2;
    }
    index = find_snapshot(engine, name);
    if (index < 0 && must_exist) {
        g_dbus_method_invocation_return_error(invocation, VIV_DBUS_ERROR, VIV_DBUS_ERROR_NOT_FOUND,
                                              "There is no snapshot named “%s”.", name);
        return -2;
    }
    return index;
}

static gboolean handle_snapshot_save(VivDbusSnapshots *snapshots, GDBusMethodInvocation *invocation,
                                     const char *name, struct fake_engine *engine)
{
    const char *state = viv_dbus_machine_get_state(engine->machine);
    int index = lookup_snapshot(engine, invocation, name, FALSE);
    gint64 now = g_get_real_time();

    if (index == -2)
        return TRUE;
    if (!require_state(invocation, state, !g_str_equal(state, VIV_MACHINE_STATE_STOPPED),
                       "A snapshot cannot be taken while the machine is %s."))
        return TRUE;
    if (index >= 0) {
        g_ptr_array_remove_index(engine->snapshot_names, index);
        g_array_remove_index(engine->snapshot_times, index);
    }
    g_ptr_array_add(engine->snapshot_names, g_strdup(name));
    g_array_append_val(engine->snapshot_times, now);
    log_event(engine, "snapshot-save %s", name);
    viv_dbus_snapshots_complete_save(snapshots, invocation);
    return TRUE;
}

static gboolean handle_snapshot_load(VivDbusSnapshots *snapshots, GDBusMethodInvocation *invocation,
                                     const char *name, struct fake_engine *engine)
{
    if (lookup_snapshot(engine, invocation, name, TRUE) < 0)
        return TRUE;
    log_event(engine, "snapshot-load %s", name);
    g_clear_handle_id(&engine->frame_timer, g_source_remove);
    viv_dbus_machine_set_state(engine->machine, VIV_MACHINE_STATE_PAUSED);
    viv_dbus_snapshots_complete_load(snapshots, invocation);
    return TRUE;
}

static gboolean handle_snapshot_delete(VivDbusSnapshots *snapshots,
                                       GDBusMethodInvocation *invocation, const char *name,
                                       struct fake_engine *engine)
{
    int index = lookup_snapshot(engine, invocation, name, TRUE);

    if (index < 0)
        return TRUE;
    log_event(engine, "snapshot-delete %s", name);
    g_ptr_array_remove_index(engine->snapshot_names, index);
    g_array_remove_index(engine->snapshot_times, index);
    viv_dbus_snapshots_complete_delete(snapshots, invocation);
    return TRUE;
}

static gboolean handle_snapshot_list(VivDbusSnapshots *snapshots, GDBusMethodInvocation *invocation,
                                     struct fake_engine *engine)
{
    GVariantBuilder list;

    g_variant_builder_init(&list, G_VARIANT_TYPE("a(sxs)"));
    for (guint i = 0; i < engine->snapshot_names->len; i++)
        g_variant_builder_add(&list, "(sxs)", g_ptr_array_index(engine->snapshot_names, i),
                              g_array_index(engine->snapshot_times, gint64, i), "");
    viv_dbus_snapshots_complete_list(snapshots, invocation, g_variant_builder_end(&list));
    return TRUE;
}

static void on_connection_closed(GDBusConnection *connection, gboolean remote_peer_vanished,
                                 GError *error, struct fake_engine *engine)
{
    /* The app went away without Quit; an engine never outlives its app. */
    log_event(engine, "closed");
    g_main_loop_quit(engine->loop);
}

static void export_interfaces(struct fake_engine *engine)
{
    g_autoptr(GError) error = NULL;

    engine->machine = viv_dbus_machine_skeleton_new();
    engine->display = viv_dbus_display_skeleton_new();
    engine->input = viv_dbus_input_skeleton_new();
    engine->snapshots = viv_dbus_snapshots_skeleton_new();

    g_signal_connect(engine->machine, "handle-start", G_CALLBACK(handle_start), engine);
    g_signal_connect(engine->machine, "handle-pause", G_CALLBACK(handle_pause), engine);
    g_signal_connect(engine->machine, "handle-resume", G_CALLBACK(handle_resume), engine);
    g_signal_connect(engine->machine, "handle-reset", G_CALLBACK(handle_reset), engine);
    g_signal_connect(engine->machine, "handle-power-off", G_CALLBACK(handle_power_off), engine);
    g_signal_connect(engine->machine, "handle-quit", G_CALLBACK(handle_quit), engine);
    g_signal_connect(engine->machine, "handle-change-media", G_CALLBACK(handle_change_media),
                     engine);
    g_signal_connect(engine->machine, "handle-eject-media", G_CALLBACK(handle_eject_media), engine);
    g_signal_connect(engine->display, "handle-get-framebuffer", G_CALLBACK(handle_get_framebuffer),
                     engine);
    g_signal_connect(engine->display, "handle-screenshot", G_CALLBACK(handle_screenshot), engine);
    g_signal_connect(engine->input, "handle-key-press", G_CALLBACK(handle_key_press), engine);
    g_signal_connect(engine->input, "handle-key-release", G_CALLBACK(handle_key_release), engine);
    g_signal_connect(engine->input, "handle-pointer-motion", G_CALLBACK(handle_pointer_motion),
                     engine);
    g_signal_connect(engine->input, "handle-pointer-button", G_CALLBACK(handle_pointer_button),
                     engine);
    g_signal_connect(engine->input, "handle-wheel", G_CALLBACK(handle_wheel), engine);
    g_signal_connect(engine->snapshots, "handle-save", G_CALLBACK(handle_snapshot_save), engine);
    g_signal_connect(engine->snapshots, "handle-load", G_CALLBACK(handle_snapshot_load), engine);
    g_signal_connect(engine->snapshots, "handle-delete", G_CALLBACK(handle_snapshot_delete),
                     engine);
    g_signal_connect(engine->snapshots, "handle-list", G_CALLBACK(handle_snapshot_list), engine);

    GDBusInterfaceSkeleton *skeletons[] = {
        G_DBUS_INTERFACE_SKELETON(engine->machine),
        G_DBUS_INTERFACE_SKELETON(engine->display),
        G_DBUS_INTERFACE_SKELETON(engine->input),
        G_DBUS_INTERFACE_SKELETON(engine->snapshots),
    };
    for (guint i = 0; i < G_N_ELEMENTS(skeletons); i++) {
        if (!g_dbus_interface_skeleton_export(skeletons[i], engine->connection,
                                              VIV_DBUS_OBJECT_PATH, &error))
            g_error("Cannot export an interface: %s", error->message);
    }
}

int main(int argc, char **argv)
{
    struct fake_engine engine = {0};
    g_autoptr(GError) error = NULL;
    g_autofree char *args = g_strjoinv(" ", argv);
    int dbus_fd = -1;
    int memory_mib = 128;
    g_autofree char *name = NULL;
    g_autofree char *accel = NULL;
    g_autofree char *log_path = NULL;
    g_autofree char *fail_start = NULL;
    gboolean silent = FALSE;
    g_autofree char *hda = NULL;
    g_autofree char *cdrom = NULL;
    g_autofree char *fda = NULL;
    GOptionEntry entries[] = {
        {"dbus-fd", 0, 0, G_OPTION_ARG_INT, &dbus_fd, "Serve D-Bus on this fd", "FD"},
        {"name", 0, 0, G_OPTION_ARG_STRING, &name, "The VM's name", "NAME"},
        {"memory", 'm', 0, G_OPTION_ARG_INT, &memory_mib, "Guest RAM in MiB", "MIB"},
        {"accel", 0, 0, G_OPTION_ARG_STRING, &accel, "CPU backend", "NAME"},
        {"hda", 0, 0, G_OPTION_ARG_FILENAME, &hda, "Hard disk image", "PATH"},
        {"cdrom", 0, 0, G_OPTION_ARG_FILENAME, &cdrom, "CD image", "PATH"},
        {"fda", 0, 0, G_OPTION_ARG_FILENAME, &fda, "Floppy image", "PATH"},
        {"log", 0, 0, G_OPTION_ARG_FILENAME, &log_path, "Append events to this file", "PATH"},
        {"fail-start", 0, 0, G_OPTION_ARG_STRING, &fail_start, "Fail with this message", "MSG"},
        {"hostile", 0, 0, G_OPTION_ARG_NONE, &engine.hostile, "Break the contract", NULL},
        {"silent", 0, 0, G_OPTION_ARG_NONE, &silent, "Never answer on the D-Bus socket", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) context = g_option_context_new("- fake Vivarium engine");

    g_option_context_add_main_entries(context, entries, NULL);
    g_option_context_set_ignore_unknown_options(context, TRUE);
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        g_printerr("fake-engine: %s\n", error->message);
        return 2;
    }
    if (log_path == NULL)
        log_path = g_strdup(g_getenv("VIVARIUM_FAKE_ENGINE_LOG"));
    if (log_path != NULL && (engine.log = fopen(log_path, "a")) == NULL) {
        g_printerr("fake-engine: cannot open %s: %s\n", log_path, g_strerror(errno));
        return 2;
    }
    log_event(&engine, "pid %d", (int)getpid());
    log_event(&engine, "args %s", args);
    if (fail_start == NULL)
        fail_start = g_strdup(g_getenv("VIVARIUM_FAKE_ENGINE_FAIL"));
    if (fail_start != NULL && *fail_start != '\0') {
        g_printerr("%s\n", fail_start);
        return 2;
    }
    if (hda != NULL && !g_file_test(hda, G_FILE_TEST_EXISTS)) {
        g_printerr("vivarium-engine: cannot open disk image %s: %s\n", hda, g_strerror(ENOENT));
        return 2;
    }
    if (silent) {
        /* Like a program that is not an engine at all: the socket stays open,
         * nobody answers. */
        for (;;)
            pause();
    }
    if (dbus_fd < 0) {
        g_printerr("fake-engine: --dbus-fd is required\n");
        return 2;
    }

    g_autoptr(GSocket) socket = g_socket_new_from_fd(dbus_fd, &error);
    if (socket == NULL) {
        g_printerr("fake-engine: fd %d is not a socket: %s\n", dbus_fd, error->message);
        return 1;
    }
    g_autoptr(GSocketConnection) stream = g_socket_connection_factory_create_connection(socket);
    g_autofree char *guid = g_dbus_generate_guid();
    engine.connection =
        g_dbus_connection_new_sync(G_IO_STREAM(stream), guid,
                                   G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_SERVER |
                                       G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING,
                                   NULL, NULL, &error);
    if (engine.connection == NULL) {
        g_printerr("fake-engine: D-Bus handshake failed: %s\n", error->message);
        return 1;
    }
    g_dbus_connection_set_exit_on_close(engine.connection, FALSE);

    engine.loop = g_main_loop_new(NULL, FALSE);
    engine.snapshot_names = g_ptr_array_new_with_free_func(g_free);
    engine.snapshot_times = g_array_new(FALSE, FALSE, sizeof(gint64));
    engine.media[0] = g_strdup(fda);
    engine.media[2] = g_strdup(cdrom);
    if (!framebuffer_create(&engine.framebuffer, TEXT_MODE_WIDTH, TEXT_MODE_HEIGHT, &error)) {
        g_printerr("fake-engine: %s\n", error->message);
        return 1;
    }
    export_interfaces(&engine);
    viv_dbus_machine_set_state(engine.machine, VIV_MACHINE_STATE_STOPPED);
    viv_dbus_machine_set_backend(engine.machine, "interp");
    viv_dbus_machine_set_name(engine.machine, name != NULL ? name : "");
    publish_media(&engine);
    g_signal_connect(engine.connection, "closed", G_CALLBACK(on_connection_closed), &engine);
    g_dbus_connection_start_message_processing(engine.connection);

    g_main_loop_run(engine.loop);

    stop_timers(&engine);
    framebuffer_destroy(&engine.framebuffer);
    return 0;
}
