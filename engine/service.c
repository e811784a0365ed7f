/* The D-Bus face of the engine: the interfaces of data/dbus/org.vivarium.Engine.xml,
 * served on a private peer-to-peer connection over the socketpair fd the app
 * passed with --dbus-fd.
 *
 * Method handlers run on the main thread; whatever touches the machine is
 * posted to the vCPU thread with machine_post() and replies from there (GDBus
 * method invocations may be completed from any thread). Property changes go
 * back to the main thread, where the interface skeletons live.
 */
#include "service.h"

#include <gio/gio.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "display/framebuffer.h"
#include "machine.h"
#include "snapshot_store.h"
#include "viv-dbus-generated.h"
#include "viv-protocol.h"

struct service {
    struct machine *machine;
    struct display *display;
    struct snapshot_store *snapshots; /* NULL: snapshot calls are refused */
    GMainContext *context;
    GDBusConnection *connection;
    VivDbusMachine *machine_iface;
    VivDbusDisplay *display_iface;
    VivDbusInput *input_iface;
    VivDbusSnapshots *snapshots_iface;
    struct machine_command_binding *bindings; /* one per machine command */
    unsigned buttons;                         /* mouse buttons held, main thread */
    uint64_t announced_generation;            /* framebuffer the app was last told of */
};

struct machine_command;

/* What a machine command's signal handler gets: the service and the command. */
struct machine_command_binding {
    struct service *service;
    const struct machine_command *command;
};

/* One method call on its way to the vCPU thread. */
struct service_call {
    struct service *service;
    GDBusMethodInvocation *invocation;
    const struct machine_command *command;
    guint32 arg_u;
    gint32 arg_x, arg_y;
    gboolean arg_b;
    gchar *arg_s1, *arg_s2;
};

static const char *run_state_name(enum machine_run_state state)
{
    switch (state) {
    case MACHINE_RUNNING:
        return VIV_MACHINE_STATE_RUNNING;
    case MACHINE_PAUSED:
        return VIV_MACHINE_STATE_PAUSED;
    case MACHINE_STOPPED:
        break;
    }
    return VIV_MACHINE_STATE_STOPPED;
}

static struct service_call *call_new(struct service *service, GDBusMethodInvocation *invocation)
{
    struct service_call *call = g_new0(struct service_call, 1);
    call->service = service;
    call->invocation = g_object_ref(invocation);
    return call;
}

static void call_free(struct service_call *call)
{
    g_object_unref(call->invocation);
    g_free(call->arg_s1);
    g_free(call->arg_s2);
    g_free(call);
}

static void call_return_ok(struct service_call *call)
{
    g_dbus_method_invocation_return_value(call->invocation, NULL);
    call->invocation = g_object_ref(call->invocation); /* the return took one reference */
    call_free(call);
}

static void call_return_error(struct service_call *call, VivDbusError code, const char *message)
{
    g_dbus_method_invocation_return_error_literal(call->invocation, VIV_DBUS_ERROR, (gint)code,
                                                  message);
    call->invocation = g_object_ref(call->invocation);
    call_free(call);
}

/* --- org.vivarium.Machine ------------------------------------------------ */

#define STATE_BIT(state) (1u << (state))

/* A machine control method: the run states it is valid in, what it does on
 * the vCPU thread, what it answers in any other state, and whether the engine
 * exits once the reply is on its way (Quit). */
struct machine_command {
    const char *signal;
    unsigned valid_states;
    void (*act)(struct machine *m);
    const char *refusal;
    bool exits;
};

static const struct machine_command machine_commands[] = {
    {"handle-start", STATE_BIT(MACHINE_STOPPED), machine_power_on, "The machine is already on.",
     false},
    {"handle-pause", STATE_BIT(MACHINE_RUNNING), machine_pause, "The machine is not running.",
     false},
    {"handle-resume", STATE_BIT(MACHINE_PAUSED), machine_resume, "The machine is not paused.",
     false},
    {"handle-reset", STATE_BIT(MACHINE_RUNNING) | STATE_BIT(MACHINE_PAUSED), machine_request_reset,
     "The machine is powered off.", false},
    {"handle-power-off", STATE_BIT(MACHINE_RUNNING) | STATE_BIT(MACHINE_PAUSED), machine_power_off,
     "The machine is already off.", false},
    {"handle-quit", ~0u, machine_power_off, NULL, true},
};

static void do_machine_command(struct machine *m, void *data)
{
    struct service_call *call = data;
    const struct machine_command *command = call->command;
    if (!(command->valid_states & STATE_BIT(m->run_state))) {
        call_return_error(call, VIV_DBUS_ERROR_INVALID_STATE, command->refusal);
        return;
    }
    command->act(m);
    call_return_ok(call);
    /* The reply is queued first; service_destroy() flushes it before it
     * closes the connection. */
    if (command->exits)
        machine_request_exit(m, MACHINE_EXIT_POWER_OFF);
}

static gboolean handle_machine_command(VivDbusMachine *iface, GDBusMethodInvocation *inv,
                                       gpointer data)
{
    (void)iface;
    const struct machine_command_binding *binding = data;
    struct service_call *call = call_new(binding->service, inv);
    call->command = binding->command;
    machine_post(binding->service->machine, do_machine_command, call);
    return TRUE;
}

static GVariant *media_variant(struct machine *m);

struct media_update {
    struct service *service;
    GVariant *media;
};

static gboolean apply_media_update(gpointer data)
{
    struct media_update *update = data;
    viv_dbus_machine_set_media(update->service->machine_iface, update->media);
    g_variant_unref(update->media);
    g_free(update);
    return G_SOURCE_REMOVE;
}

static void do_change_media(struct machine *m, void *data)
{
    struct service_call *call = data;
    GError *error = NULL;
    if (machine_change_media(m, call->arg_s1, call->arg_s2, &error)) {
        /* The Media property follows, on the main thread. */
        struct media_update *update = g_new(struct media_update, 1);
        update->service = call->service;
        update->media = g_variant_ref_sink(media_variant(m));
        g_main_context_invoke(call->service->context, apply_media_update, update);
        call_return_ok(call);
        return;
    }
    call_return_error(call,
                      g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                          ? VIV_DBUS_ERROR_NOT_FOUND
                          : VIV_DBUS_ERROR_FAILED,
                      error->message);
    g_error_free(error);
}

static gboolean handle_change_media(VivDbusMachine *iface, GDBusMethodInvocation *inv,
                                    const gchar *drive, const gchar *path, gpointer data)
{
    (void)iface;
    if (!viv_dbus_drive_name_valid(drive)) {
        g_dbus_method_invocation_return_error(inv, VIV_DBUS_ERROR, VIV_DBUS_ERROR_INVALID_ARGUMENT,
                                              "\"%s\" is not a drive name (fda, fdb, cdrom).",
                                              drive);
        return TRUE;
    }
    if (path && !g_path_is_absolute(path)) {
        g_dbus_method_invocation_return_error_literal(inv, VIV_DBUS_ERROR,
                                                      VIV_DBUS_ERROR_INVALID_ARGUMENT,
                                                      "The path of an image must be absolute.");
        return TRUE;
    }
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_dbus_method_invocation_return_error(inv, VIV_DBUS_ERROR, VIV_DBUS_ERROR_NOT_FOUND,
                                              "There is no file %s.", path);
        return TRUE;
    }
    struct service_call *call = call_new(data, inv);
    call->arg_s1 = g_strdup(drive);
    call->arg_s2 = g_strdup(path);
    machine_post(call->service->machine, do_change_media, call);
    return TRUE;
}

static gboolean handle_eject_media(VivDbusMachine *iface, GDBusMethodInvocation *inv,
                                   const gchar *drive, gpointer data)
{
    (void)iface;
    if (!viv_dbus_drive_name_valid(drive)) {
        g_dbus_method_invocation_return_error(inv, VIV_DBUS_ERROR, VIV_DBUS_ERROR_INVALID_ARGUMENT,
                                              "\"%s\" is not a drive name (fda, fdb, cdrom).",
                                              drive);
        return TRUE;
    }
    struct service_call *call = call_new(data, inv);
    call->arg_s1 = g_strdup(drive);
    call->arg_s2 = NULL; /* no path: eject */
    machine_post(call->service->machine, do_change_media, call);
    return TRUE;
}

static GVariant *media_variant(struct machine *m)
{
    static const char *const drives[] = {"fda", "fdb", "cdrom"};
    GVariantBuilder builder;
    g_variant_builder_init(&builder, G_VARIANT_TYPE("a(ss)"));
    for (size_t i = 0; i < G_N_ELEMENTS(drives); i++) {
        const char *path = machine_media_path(m, drives[i]);
        if (path)
            g_variant_builder_add(&builder, "(ss)", drives[i], path);
    }
    return g_variant_builder_end(&builder);
}

/* Run-state changes arrive on the vCPU thread; the skeleton lives on the main
 * thread. */
struct state_update {
    struct service *service;
    enum machine_run_state state;
};

static gboolean apply_state_update(gpointer data)
{
    struct state_update *update = data;
    viv_dbus_machine_set_state(update->service->machine_iface, run_state_name(update->state));
    g_dbus_interface_skeleton_flush(G_DBUS_INTERFACE_SKELETON(update->service->machine_iface));
    g_free(update);
    return G_SOURCE_REMOVE;
}

static void run_state_changed(struct machine *m, enum machine_run_state state, void *opaque)
{
    (void)m;
    struct service *service = opaque;
    struct state_update *update = g_new(struct state_update, 1);
    update->service = service;
    update->state = state;
    g_main_context_invoke(service->context, apply_state_update, update);
}

/* --- org.vivarium.Input -------------------------------------------------- */

static gboolean reply_invalid(GDBusMethodInvocation *inv, const char *message)
{
    g_dbus_method_invocation_return_error_literal(inv, VIV_DBUS_ERROR,
                                                  VIV_DBUS_ERROR_INVALID_ARGUMENT, message);
    return TRUE;
}

static gboolean queue_key(struct service *service, GDBusMethodInvocation *inv, guint scancode,
                          gboolean down)
{
    if (scancode == 0 || scancode > VIV_QNUM_MAX)
        return reply_invalid(inv, "A key code lies between 0x01 and 0xff.");
    machine_post_key_event(service->machine, scancode, down);
    g_dbus_method_invocation_return_value(inv, NULL);
    return TRUE;
}

static gboolean handle_key_press(VivDbusInput *iface, GDBusMethodInvocation *inv, guint scancode,
                                 gpointer data)
{
    (void)iface;
    return queue_key(data, inv, scancode, TRUE);
}

static gboolean handle_key_release(VivDbusInput *iface, GDBusMethodInvocation *inv, guint scancode,
                                   gpointer data)
{
    (void)iface;
    return queue_key(data, inv, scancode, FALSE);
}

/* Whether -limit <= value <= limit; unlike abs(), right for G_MININT32 too. */
static bool within(gint value, gint limit)
{
    return value >= -limit && value <= limit;
}

static gboolean handle_pointer_motion(VivDbusInput *iface, GDBusMethodInvocation *inv, gint dx,
                                      gint dy, gpointer data)
{
    (void)iface;
    struct service *service = data;
    if (!within(dx, VIV_POINTER_MAX_MOTION) || !within(dy, VIV_POINTER_MAX_MOTION))
        return reply_invalid(inv, "A pointer motion lies within -4096..4096 each way.");
    machine_post_pointer_event(service->machine, dx, dy, 0, service->buttons);
    g_dbus_method_invocation_return_value(inv, NULL);
    return TRUE;
}

static gboolean handle_pointer_button(VivDbusInput *iface, GDBusMethodInvocation *inv, guint button,
                                      gboolean down, gpointer data)
{
    (void)iface;
    struct service *service = data;
    /* X11/GDK numbering (1 left, 2 middle, 3 right) to the PS/2 bits. */
    static const unsigned bits[4] = {0, MOUSE_BUTTON_LEFT, MOUSE_BUTTON_MIDDLE, MOUSE_BUTTON_RIGHT};
    if (button < 1 || button > 3)
        return reply_invalid(inv, "Buttons are 1 (left), 2 (middle) and 3 (right).");
    if (down)
        service->buttons |= bits[button];
    else
        service->buttons &= ~bits[button];
    machine_post_pointer_event(service->machine, 0, 0, 0, service->buttons);
    g_dbus_method_invocation_return_value(inv, NULL);
    return TRUE;
}

static gboolean handle_wheel(VivDbusInput *iface, GDBusMethodInvocation *inv, gint delta,
                             gpointer data)
{
    (void)iface;
    struct service *service = data;
    if (delta == 0 || !within(delta, VIV_WHEEL_MAX_DELTA))
        return reply_invalid(inv, "A wheel movement is 1 to 127 detents either way.");
    machine_post_pointer_event(service->machine, 0, 0, delta, service->buttons);
    g_dbus_method_invocation_return_value(inv, NULL);
    return TRUE;
}

/* --- org.vivarium.Display ------------------------------------------------ */

static gboolean handle_get_framebuffer(VivDbusDisplay *iface, GDBusMethodInvocation *inv,
                                       GUnixFDList *in_fds, gpointer data)
{
    (void)in_fds;
    struct service *service = data;
    struct framebuffer *fb = service->display->fb;
    framebuffer_lock(fb);
    int fd = fcntl(fb->fd, F_DUPFD_CLOEXEC, 3);
    unsigned width = fb->width, height = fb->height, stride = fb->stride;
    service->announced_generation = fb->generation;
    framebuffer_unlock(fb);
    if (fd < 0) {
        g_dbus_method_invocation_return_error(inv, VIV_DBUS_ERROR, VIV_DBUS_ERROR_FAILED,
                                              "Cannot share the framebuffer: %s.",
                                              g_strerror(errno));
        return TRUE;
    }
    GUnixFDList *fds = g_unix_fd_list_new_from_array(&fd, 1);
    viv_dbus_display_complete_get_framebuffer(iface, inv, fds, g_variant_new_handle(0), width,
                                              height, stride, VIV_FORMAT_XRGB8888);
    g_object_unref(fds);
    return TRUE;
}

static void do_screenshot(struct machine *m, void *data)
{
    struct service_call *call = data;
    GError *error = NULL;
    gchar *tmp = g_strdup_printf("%s.tmp-%d", call->arg_s1, (int)getpid());
    if (display_screenshot_png(m->display->fb, tmp, &error) && g_rename(tmp, call->arg_s1) != 0)
        g_set_error_literal(&error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            g_strerror(errno));
    if (!error) {
        call_return_ok(call);
    } else {
        g_unlink(tmp);
        /* The writer's message names the temporary file: the person hears
         * of the file they asked for, and the cause (after the last colon). */
        const char *colon = strrchr(error->message, ':');
        gchar *cause = g_strstrip(g_strdup(colon ? colon + 1 : error->message));
        gchar *message =
            g_strdup_printf("Cannot write the screenshot %s: %s.", call->arg_s1, cause);
        call_return_error(call, VIV_DBUS_ERROR_FAILED, message);
        g_free(message);
        g_free(cause);
        g_clear_error(&error);
    }
    g_free(tmp);
}

static gboolean handle_screenshot(VivDbusDisplay *iface, GDBusMethodInvocation *inv,
                                  const gchar *path, gpointer data)
{
    (void)iface;
    if (!g_path_is_absolute(path))
        return reply_invalid(inv, "The path of a screenshot must be absolute.");
    struct service_call *call = call_new(data, inv);
    call->arg_s1 = g_strdup(path);
    machine_post(call->service->machine, do_screenshot, call);
    return TRUE;
}

/* A frame's damage, on its way from the vCPU thread to the main thread. */
struct frame_update {
    struct service *service;
    uint64_t generation;
    unsigned width, height, stride;
    GVariant *rects;
};

static gboolean emit_frame_update(gpointer data)
{
    struct frame_update *update = data;
    struct service *service = update->service;
    if (update->generation != service->announced_generation) {
        /* A new framebuffer: the app asks for it, and is then fully drawn. */
        service->announced_generation = update->generation;
        viv_dbus_display_emit_resized(service->display_iface, update->width, update->height,
                                      update->stride);
        g_variant_unref(update->rects);
    } else {
        viv_dbus_display_emit_invalidate(service->display_iface, update->rects);
    }
    g_free(update);
    return G_SOURCE_REMOVE;
}

static void display_frame(void *opaque, struct display *display, const struct fb_rect *rects,
                          unsigned count)
{
    struct service *service = opaque;
    struct framebuffer *fb = display->fb;
    GVariantBuilder builder;
    g_variant_builder_init(&builder, G_VARIANT_TYPE("a(iiii)"));
    if (count > VIV_INVALIDATE_MAX_RECTS) {
        /* Too many to list: their bounding box. */
        unsigned x0 = rects[0].x, y0 = rects[0].y, x1 = 0, y1 = 0;
        for (unsigned i = 0; i < count; i++) {
            x0 = MIN(x0, rects[i].x);
            y0 = MIN(y0, rects[i].y);
            x1 = MAX(x1, rects[i].x + rects[i].width);
            y1 = MAX(y1, rects[i].y + rects[i].height);
        }
        g_variant_builder_add(&builder, "(iiii)", (gint)x0, (gint)y0, (gint)(x1 - x0),
                              (gint)(y1 - y0));
    } else {
        for (unsigned i = 0; i < count; i++)
            g_variant_builder_add(&builder, "(iiii)", (gint)rects[i].x, (gint)rects[i].y,
                                  (gint)rects[i].width, (gint)rects[i].height);
    }
    struct frame_update *update = g_new(struct frame_update, 1);
    update->service = service;
    update->generation = fb->generation;
    update->width = fb->width;
    update->height = fb->height;
    update->stride = fb->stride;
    update->rects = g_variant_ref_sink(g_variant_builder_end(&builder));
    g_main_context_invoke(service->context, emit_frame_update, update);
}

/* --- org.vivarium.Snapshots ---------------------------------------------- */

static bool check_snapshot_store(struct service *service, GDBusMethodInvocation *inv)
{
    if (service->snapshots)
        return true;
    g_dbus_method_invocation_return_error_literal(
        inv, VIV_DBUS_ERROR, VIV_DBUS_ERROR_NOT_SUPPORTED,
        "This engine was started without a folder for snapshots (--snapshot-dir).");
    return false;
}

/* The store's messages are clauses, as the monitor prints them after
 * "error: "; D-Bus errors are read by a person as sentences. */
static void return_store_error(struct service_call *call, GError *error)
{
    const char *clause = error->message;
    gchar *sentence =
        g_strdup_printf("%c%s%s", g_ascii_toupper(clause[0]), clause[0] ? clause + 1 : "",
                        g_str_has_suffix(clause, ".") ? "" : ".");
    call_return_error(call,
                      g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                          ? VIV_DBUS_ERROR_NOT_FOUND
                          : VIV_DBUS_ERROR_FAILED,
                      sentence);
    g_free(sentence);
    g_error_free(error);
}

static void do_snapshot_save(struct machine *m, void *data)
{
    struct service_call *call = data;
    if (m->run_state == MACHINE_STOPPED) {
        call_return_error(call, VIV_DBUS_ERROR_INVALID_STATE,
                          "A machine that is off has no state to save.");
        return;
    }
    GError *error = NULL;
    /* Running on the vCPU thread, between instructions: the machine is
     * still for as long as this takes. */
    if (snapshot_store_save(call->service->snapshots, m, call->arg_s1, &error))
        call_return_ok(call);
    else
        return_store_error(call, error);
}

static void do_snapshot_load(struct machine *m, void *data)
{
    struct service_call *call = data;
    GError *error = NULL;
    if (snapshot_store_load(call->service->snapshots, m, call->arg_s1, &error)) {
        if (m->run_state == MACHINE_STOPPED)
            machine_power_on(m);
        machine_pause(m);
        call_return_ok(call);
    } else {
        return_store_error(call, error);
    }
}

static void do_snapshot_delete(struct machine *m, void *data)
{
    struct service_call *call = data;
    GError *error = NULL;
    if (snapshot_store_delete(call->service->snapshots, m, call->arg_s1, &error))
        call_return_ok(call);
    else
        return_store_error(call, error);
}

/* Whether a snapshot call may go on: a valid name and a folder to keep
 * snapshots in. Otherwise the call has its error reply. */
static bool snapshot_request_valid(struct service *service, GDBusMethodInvocation *inv,
                                   const char *name)
{
    if (!viv_dbus_snapshot_name_valid(name)) {
        reply_invalid(inv, "That is not a valid snapshot name.");
        return false;
    }
    return check_snapshot_store(service, inv);
}

static gboolean post_snapshot_call(struct service *service, GDBusMethodInvocation *inv,
                                   const gchar *name, machine_work_fn fn)
{
    if (!snapshot_request_valid(service, inv, name))
        return TRUE;
    struct service_call *call = call_new(service, inv);
    call->arg_s1 = g_strdup(name);
    machine_post(service->machine, fn, call);
    return TRUE;
}

static gboolean handle_snapshot_save(VivDbusSnapshots *iface, GDBusMethodInvocation *inv,
                                     const gchar *name, gpointer data)
{
    (void)iface;
    return post_snapshot_call(data, inv, name, do_snapshot_save);
}

static gboolean handle_snapshot_load(VivDbusSnapshots *iface, GDBusMethodInvocation *inv,
                                     const gchar *name, gpointer data)
{
    (void)iface;
    return post_snapshot_call(data, inv, name, do_snapshot_load);
}

/* Deleting may merge disk layers, which the vCPU thread owns. */
static gboolean handle_snapshot_delete(VivDbusSnapshots *iface, GDBusMethodInvocation *inv,
                                       const gchar *name, gpointer data)
{
    (void)iface;
    return post_snapshot_call(data, inv, name, do_snapshot_delete);
}

static gboolean handle_snapshot_list(VivDbusSnapshots *iface, GDBusMethodInvocation *inv,
                                     gpointer data)
{
    struct service *service = data;
    if (!check_snapshot_store(service, inv))
        return TRUE;
    GPtrArray *entries = snapshot_store_list(snapshot_store_dir(service->snapshots));
    GVariantBuilder builder;
    g_variant_builder_init(&builder, G_VARIANT_TYPE("a(sxs)"));
    for (guint i = 0; i < entries->len; i++) {
        const struct snapshot_entry *entry = g_ptr_array_index(entries, i);
        g_variant_builder_add(&builder, "(sxs)", entry->name, (gint64)entry->created_us,
                              entry->thumbnail ? entry->thumbnail : "");
    }
    viv_dbus_snapshots_complete_list(iface, inv, g_variant_builder_end(&builder));
    g_ptr_array_unref(entries);
    return TRUE;
}

/* --- the connection ----------------------------------------------------- */

static void connection_closed(GDBusConnection *connection, gboolean remote_peer_vanished,
                              GError *error, gpointer data)
{
    (void)connection;
    (void)remote_peer_vanished;
    (void)error;
    struct service *service = data;
    /* The app is gone: nobody can see or drive this machine any more, so it
     * powers off, flushing its disks, and the engine exits. */
    machine_post(service->machine, machine_work_quit, NULL);
}

static bool export(struct service *service, gpointer iface, GError **error)
{
    return g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(iface), service->connection,
                                            VIV_DBUS_OBJECT_PATH, error);
}

struct service *service_create(struct machine *m, int fd, struct snapshot_store *snapshots,
                               GError **error)
{
    GSocket *socket = g_socket_new_from_fd(fd, error);
    if (!socket)
        return NULL;
    GSocketConnection *stream = g_socket_connection_factory_create_connection(socket);
    g_object_unref(socket);
    gchar *guid = g_dbus_generate_guid();
    GDBusConnection *connection =
        g_dbus_connection_new_sync(G_IO_STREAM(stream), guid,
                                   G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_SERVER |
                                       G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING,
                                   NULL, NULL, error);
    g_free(guid);
    g_object_unref(stream);
    if (!connection)
        return NULL;

    struct service *service = g_new0(struct service, 1);
    service->machine = m;
    service->display = m->display;
    service->snapshots = snapshots;
    service->context = g_main_context_ref_thread_default();
    service->connection = connection;
    service->announced_generation = m->display->fb->generation;

    service->machine_iface = viv_dbus_machine_skeleton_new();
    viv_dbus_machine_set_state(service->machine_iface, run_state_name(m->run_state));
    viv_dbus_machine_set_backend(service->machine_iface, m->cpu.backend->name);
    viv_dbus_machine_set_name(service->machine_iface,
                              m->config->name ? m->config->name : "Vivarium");
    viv_dbus_machine_set_media(service->machine_iface, media_variant(m));
    service->bindings = g_new(struct machine_command_binding, G_N_ELEMENTS(machine_commands));
    for (size_t i = 0; i < G_N_ELEMENTS(machine_commands); i++) {
        service->bindings[i] = (struct machine_command_binding){service, &machine_commands[i]};
        g_signal_connect(service->machine_iface, machine_commands[i].signal,
                         G_CALLBACK(handle_machine_command), &service->bindings[i]);
    }
    g_signal_connect(service->machine_iface, "handle-change-media", G_CALLBACK(handle_change_media),
                     service);
    g_signal_connect(service->machine_iface, "handle-eject-media", G_CALLBACK(handle_eject_media),
                     service);

    service->display_iface = viv_dbus_display_skeleton_new();
    g_signal_connect(service->display_iface, "handle-get-framebuffer",
                     G_CALLBACK(handle_get_framebuffer), service);
    g_signal_connect(service->display_iface, "handle-screenshot", G_CALLBACK(handle_screenshot),
                     service);

    service->input_iface = viv_dbus_input_skeleton_new();
    g_signal_connect(service->input_iface, "handle-key-press", G_CALLBACK(handle_key_press),
                     service);
    g_signal_connect(service->input_iface, "handle-key-release", G_CALLBACK(handle_key_release),
                     service);
    g_signal_connect(service->input_iface, "handle-pointer-motion",
                     G_CALLBACK(handle_pointer_motion), service);
    g_signal_connect(service->input_iface, "handle-pointer-button",
                     G_CALLBACK(handle_pointer_button), service);
    g_signal_connect(service->input_iface, "handle-wheel", G_CALLBACK(handle_wheel), service);

    service->snapshots_iface = viv_dbus_snapshots_skeleton_new();
    g_signal_connect(service->snapshots_iface, "handle-save", G_CALLBACK(handle_snapshot_save),
                     service);
    g_signal_connect(service->snapshots_iface, "handle-load", G_CALLBACK(handle_snapshot_load),
                     service);
    g_signal_connect(service->snapshots_iface, "handle-delete", G_CALLBACK(handle_snapshot_delete),
                     service);
    g_signal_connect(service->snapshots_iface, "handle-list", G_CALLBACK(handle_snapshot_list),
                     service);

    if (!export(service, service->machine_iface, error) ||
        !export(service, service->display_iface, error) ||
        !export(service, service->input_iface, error) ||
        !export(service, service->snapshots_iface, error)) {
        service_destroy(service);
        return NULL;
    }
    m->run_state_changed = run_state_changed;
    m->run_state_opaque = service;
    display_add_listener(m->display, display_frame, service);
    g_signal_connect(connection, "closed", G_CALLBACK(connection_closed), service);
    g_dbus_connection_start_message_processing(connection);
    return service;
}

void service_destroy(struct service *service)
{
    if (!service)
        return;
    display_remove_listener(service->display, display_frame, service);
    service->machine->run_state_changed = NULL;
    g_clear_object(&service->machine_iface);
    g_clear_object(&service->display_iface);
    g_clear_object(&service->input_iface);
    g_clear_object(&service->snapshots_iface);
    if (service->connection) {
        /* A close overtakes messages still queued (GDBus writes a pending
         * close before them), so replies such as Quit's go out first. */
        g_dbus_connection_flush_sync(service->connection, NULL, NULL);
        g_dbus_connection_close_sync(service->connection, NULL, NULL);
        g_object_unref(service->connection);
    }
    g_main_context_unref(service->context);
    g_free(service->bindings);
    g_free(service);
}
