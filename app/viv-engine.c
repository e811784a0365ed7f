/* Starting an engine, connecting to it, and noticing when it dies.
 *
 * The app never blocks on the engine: the handshake, the proxies and every call
 * are asynchronous with a timeout, so a hung engine freezes one VM's window at
 * worst, never the app. The process is watched with g_child_watch_add(); its
 * standard error is kept (the last lines) so that the message shown when it dies
 * says why. */
#include "config.h"

#include "viv-engine.h"

#include "viv-protocol.h"

#include <errno.h>
#include <gio/gunixinputstream.h>
#include <glib/gi18n.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Long enough for an engine to flush disks, short enough that a person waiting
 * for a stuck engine gets an answer. */
#define ENGINE_CALL_TIMEOUT_MS 10000
#define ENGINE_QUIT_GRACE_S    5
/* From spawning to a connected Machine proxy; an engine that does not speak the
 * protocol (an old binary, a wrong VIVARIUM_ENGINE) is stopped after this. */
#define ENGINE_HANDSHAKE_TIMEOUT_S 20
#define STDERR_LINES_KEPT          8
#define ENGINE_DBUS_FD             3

struct _VivEngine {
    GObject parent_instance;

    GPid pid;
    /* The pid for log messages, kept after the child is reaped. */
    int log_pid;
    guint child_watch;
    gboolean quitting;
    /* Start was called: from then on the guest runs, and may switch itself off. */
    gboolean started;
    guint kill_timer;
    guint handshake_timeout_s;
    guint handshake_timer;
    gboolean handshake_timed_out;
    GCancellable *cancellable;

    GDBusConnection *connection;
    VivDbusMachine *machine;
    VivDbusDisplay *display;
    VivDbusInput *input;
    VivDbusSnapshots *snapshots;

    GDataInputStream *stderr_stream;
    GCancellable *stderr_cancellable;
    GQueue stderr_lines;
    guint stderr_repeats;
    gboolean stderr_closed;

    /* Between the child's exit and the end of its stderr (whose last lines say
     * why it exited): the wait status, and a fallback in case a grandchild keeps
     * stderr open. */
    gboolean exit_pending;
    int exit_status;
    guint exit_timer;
};

G_DEFINE_FINAL_TYPE(VivEngine, viv_engine, G_TYPE_OBJECT)

enum { SIGNAL_READY, SIGNAL_STATE_CHANGED, SIGNAL_ERROR, SIGNAL_EXITED, N_SIGNALS };
static guint signals[N_SIGNALS];

const char *viv_engine_program(void)
{
    const char *program = g_getenv("VIVARIUM_ENGINE");

    if (program != NULL && *program != '\0')
        return program;
    return VIVARIUM_ENGINE_PATH;
}

char *viv_engine_describe_error(const GError *error)
{
    g_autoptr(GError) copy = g_error_copy(error);

    if (g_error_matches(copy, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        return g_strdup(_("The engine did not answer in time."));
    if (g_error_matches(copy, G_IO_ERROR, G_IO_ERROR_CLOSED))
        return g_strdup(_("The connection to the engine is closed."));
    g_dbus_error_strip_remote_error(copy);
    return g_strdup(copy->message);
}

static void viv_engine_report_error(VivEngine *self, const char *message)
{
    g_signal_emit(self, signals[SIGNAL_ERROR], 0, message);
}

static char *viv_engine_last_stderr_line(VivEngine *self)
{
    const char *line = g_queue_peek_tail(&self->stderr_lines);

    return line != NULL ? g_strdup(line) : NULL;
}

static char *viv_engine_describe_exit(VivEngine *self, int wait_status)
{
    g_autofree char *last_line = viv_engine_last_stderr_line(self);
    g_autofree char *what = NULL;

    if (self->handshake_timed_out) {
        what = g_strdup(_("The engine did not answer in time."));
    } else if (WIFSIGNALED(wait_status)) {
        what = g_strdup_printf(_("The engine stopped unexpectedly: it was killed by signal %d "
                                 "(%s)."),
                               WTERMSIG(wait_status), g_strsignal(WTERMSIG(wait_status)));
    } else if (self->started && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) % 2 == 1) {
        what = g_strdup_printf(_("The guest switched the machine off through the debug-exit port "
                                 "with the value %d."),
                               WEXITSTATUS(wait_status) >> 1);
    } else if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) != 0) {
        what =
            g_strdup_printf(_("The engine stopped with exit status %d."), WEXITSTATUS(wait_status));
    } else {
        what = g_strdup(_("The engine exited before it was asked to."));
    }
    if (last_line == NULL)
        return g_steal_pointer(&what);
    return g_strdup_printf("%s\n%s", what, last_line);
}

static void viv_engine_drop_connection(VivEngine *self)
{
    g_cancellable_cancel(self->cancellable);
    g_clear_object(&self->machine);
    g_clear_object(&self->display);
    g_clear_object(&self->input);
    g_clear_object(&self->snapshots);
    if (self->connection != NULL)
        g_dbus_connection_close(self->connection, NULL, NULL, NULL);
    g_clear_object(&self->connection);
}

static void viv_engine_finish_exit(VivEngine *self)
{
    /* The engine ends with (value << 1) | 1 when the guest writes a value to
     * the debug-exit port; 0 is how a guest without ACPI, such as the demo,
     * switches itself off. */
    gboolean guest_power_off =
        self->started && WIFEXITED(self->exit_status) && WEXITSTATUS(self->exit_status) == 1;
    gboolean expected = (self->quitting && WIFEXITED(self->exit_status)) || guest_power_off;
    g_autofree char *message = NULL;

    if (!self->exit_pending)
        return;
    self->exit_pending = FALSE;
    g_clear_handle_id(&self->exit_timer, g_source_remove);
    if (!expected)
        message = viv_engine_describe_exit(self, self->exit_status);
    g_signal_emit(self, signals[SIGNAL_EXITED], 0, !expected, message);
}

static gboolean viv_engine_exit_timeout_cb(gpointer data)
{
    VivEngine *self = data;

    self->exit_timer = 0;
    viv_engine_finish_exit(self);
    return G_SOURCE_REMOVE;
}

static void viv_engine_child_exited_cb(GPid pid, int wait_status, gpointer data)
{
    g_autoptr(VivEngine) self = g_object_ref(data);

    g_spawn_close_pid(pid);
    self->pid = 0;
    self->child_watch = 0;
    g_clear_handle_id(&self->kill_timer, g_source_remove);
    g_clear_handle_id(&self->handshake_timer, g_source_remove);
    viv_engine_drop_connection(self);
    self->exit_pending = TRUE;
    self->exit_status = wait_status;
    if (self->stderr_closed)
        viv_engine_finish_exit(self);
    else
        self->exit_timer = g_timeout_add(1000, viv_engine_exit_timeout_cb, self);
}

static void viv_engine_read_stderr_line_cb(GObject *source, GAsyncResult *result, gpointer data)
{
    VivEngine *self = data;
    g_autoptr(GError) error = NULL;
    g_autofree char *line = g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(source),
                                                                      result, NULL, &error);

    /* Cancelled means disposed: self must not be touched. */
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    if (line == NULL) {
        /* End of file: the engine closed its stderr, usually by exiting. */
        if (self->stderr_repeats > 0)
            g_printerr("vivarium-engine[%d]: (the last message repeated %u times)\n", self->log_pid,
                       self->stderr_repeats);
        self->stderr_closed = TRUE;
        viv_engine_finish_exit(self);
        return;
    }
    /* An engine stuck in a loop can print one line thousands of times a second:
     * repeats are counted rather than forwarded and kept. */
    if (g_strcmp0(line, g_queue_peek_tail(&self->stderr_lines)) == 0) {
        self->stderr_repeats++;
        goto read_next;
    }
    if (self->stderr_repeats > 0) {
        g_printerr("vivarium-engine[%d]: (the last message repeated %u times)\n", self->log_pid,
                   self->stderr_repeats);
        self->stderr_repeats = 0;
    }
    g_printerr("vivarium-engine[%d]: %s\n", self->log_pid, line);
    g_queue_push_tail(&self->stderr_lines, g_steal_pointer(&line));
    while (g_queue_get_length(&self->stderr_lines) > STDERR_LINES_KEPT)
        g_free(g_queue_pop_head(&self->stderr_lines));
read_next:
    g_data_input_stream_read_line_async(self->stderr_stream, G_PRIORITY_DEFAULT,
                                        self->stderr_cancellable, viv_engine_read_stderr_line_cb,
                                        self);
}

static void viv_engine_machine_state_cb(GObject *machine, GParamSpec *pspec, VivEngine *self)
{
    g_signal_emit(self, signals[SIGNAL_STATE_CHANGED], 0);
}

static void viv_engine_machine_error_cb(VivDbusMachine *machine, const char *message,
                                        VivEngine *self)
{
    viv_engine_report_error(self, message);
}

static void viv_engine_machine_proxy_cb(GObject *source, GAsyncResult *result, gpointer data)
{
    g_autoptr(VivEngine) self = data;
    g_autoptr(GError) error = NULL;
    VivDbusMachine *machine = viv_dbus_machine_proxy_new_finish(result, &error);

    if (machine == NULL) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            g_autofree char *message = viv_engine_describe_error(error);
            viv_engine_report_error(self, message);
        }
        return;
    }
    self->machine = machine;
    g_clear_handle_id(&self->handshake_timer, g_source_remove);
    g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(machine), ENGINE_CALL_TIMEOUT_MS);
    g_signal_connect_object(machine, "notify::state", G_CALLBACK(viv_engine_machine_state_cb), self,
                            0);
    g_signal_connect_object(machine, "error", G_CALLBACK(viv_engine_machine_error_cb), self, 0);
    g_signal_emit(self, signals[SIGNAL_READY], 0);
}

/* Proxies of interfaces without properties do no I/O while being created. */
#define NEW_PROXY(type, connection)                                                                \
    type##_proxy_new_sync(connection, G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES, NULL,             \
                          VIV_DBUS_OBJECT_PATH, NULL, NULL)

static void viv_engine_connection_cb(GObject *source, GAsyncResult *result, gpointer data)
{
    g_autoptr(VivEngine) self = data;
    g_autoptr(GError) error = NULL;
    GDBusConnection *connection = g_dbus_connection_new_finish(result, &error);

    if (connection == NULL) {
        /* An engine that dies during the handshake is reported by the child
         * watch, with its exit status; anything else is reported here. */
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) && self->pid != 0) {
            g_autofree char *message = viv_engine_describe_error(error);
            viv_engine_report_error(self, message);
        }
        return;
    }
    self->connection = connection;
    g_dbus_connection_set_exit_on_close(connection, FALSE);
    self->display = NEW_PROXY(viv_dbus_display, connection);
    self->input = NEW_PROXY(viv_dbus_input, connection);
    self->snapshots = NEW_PROXY(viv_dbus_snapshots, connection);
    g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(self->display), ENGINE_CALL_TIMEOUT_MS);
    g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(self->input), ENGINE_CALL_TIMEOUT_MS);
    g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(self->snapshots), ENGINE_CALL_TIMEOUT_MS);
    viv_dbus_machine_proxy_new(connection, G_DBUS_PROXY_FLAGS_GET_INVALIDATED_PROPERTIES, NULL,
                               VIV_DBUS_OBJECT_PATH, self->cancellable, viv_engine_machine_proxy_cb,
                               g_object_ref(self));
}

static gboolean viv_engine_handshake_timeout_cb(gpointer data)
{
    VivEngine *self = data;

    self->handshake_timer = 0;
    if (self->pid != 0) {
        g_message("vivarium-engine[%d] did not connect; killing it", self->log_pid);
        self->handshake_timed_out = TRUE;
        kill(self->pid, SIGKILL);
    }
    return G_SOURCE_REMOVE;
}

gboolean viv_engine_spawn(VivEngine *self, const char *const *options, GError **error)
{
    int sockets[2];
    g_autofree char *fd_text = g_strdup_printf("%d", ENGINE_DBUS_FD);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    int stderr_fd = -1;

    g_return_val_if_fail(self->pid == 0, FALSE);

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("Cannot create a socket for the engine: %s"), g_strerror(errno));
        return FALSE;
    }
    g_ptr_array_add(argv, (char *)viv_engine_program());
    g_ptr_array_add(argv, VIV_DBUS_FD_OPTION);
    g_ptr_array_add(argv, fd_text);
    for (const char *const *option = options; option != NULL && *option != NULL; option++)
        g_ptr_array_add(argv, (char *)*option);
    g_ptr_array_add(argv, NULL);

    int source_fds[] = {sockets[1]};
    int target_fds[] = {ENGINE_DBUS_FD};
    gboolean spawned = g_spawn_async_with_pipes_and_fds(
        NULL, (const char *const *)argv->pdata, NULL,
        G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH, NULL, NULL, -1, -1, -1, source_fds,
        target_fds, G_N_ELEMENTS(source_fds), &self->pid, NULL, NULL, &stderr_fd, error);
    close(sockets[1]);
    if (!spawned) {
        close(sockets[0]);
        return FALSE;
    }

    self->log_pid = (int)self->pid;
    self->child_watch = g_child_watch_add(self->pid, viv_engine_child_exited_cb, self);
    self->handshake_timer =
        g_timeout_add_seconds(self->handshake_timeout_s, viv_engine_handshake_timeout_cb, self);
    g_autoptr(GInputStream) stderr_stream = g_unix_input_stream_new(stderr_fd, TRUE);
    self->stderr_stream = g_data_input_stream_new(stderr_stream);
    g_data_input_stream_read_line_async(self->stderr_stream, G_PRIORITY_DEFAULT,
                                        self->stderr_cancellable, viv_engine_read_stderr_line_cb,
                                        self);

    g_autoptr(GSocket) socket = g_socket_new_from_fd(sockets[0], error);
    if (socket == NULL) {
        close(sockets[0]);
        viv_engine_quit(self);
        return FALSE;
    }
    g_autoptr(GSocketConnection) stream = g_socket_connection_factory_create_connection(socket);
    g_dbus_connection_new(G_IO_STREAM(stream), NULL, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT,
                          NULL, self->cancellable, viv_engine_connection_cb, g_object_ref(self));
    return TRUE;
}

void viv_engine_set_handshake_timeout(VivEngine *self, guint seconds)
{
    self->handshake_timeout_s = seconds;
}

VivDbusMachine *viv_engine_get_machine(VivEngine *self)
{
    return self->machine;
}

VivDbusDisplay *viv_engine_get_display(VivEngine *self)
{
    return self->machine != NULL ? self->display : NULL;
}

VivDbusInput *viv_engine_get_input(VivEngine *self)
{
    return self->machine != NULL ? self->input : NULL;
}

VivDbusSnapshots *viv_engine_get_snapshots(VivEngine *self)
{
    return self->machine != NULL ? self->snapshots : NULL;
}

gboolean viv_engine_is_ready(VivEngine *self)
{
    return self->machine != NULL;
}

gboolean viv_engine_is_alive(VivEngine *self)
{
    return self->pid != 0;
}

GPid viv_engine_get_pid(VivEngine *self)
{
    return self->pid;
}

const char *viv_engine_get_state(VivEngine *self)
{
    return self->machine != NULL ? viv_dbus_machine_get_state(self->machine) : NULL;
}

/* Every Machine method has the signature of g_dbus_proxy_call's reply; one
 * callback reports failures for all of them. */
static void viv_engine_call_done_cb(GObject *source, GAsyncResult *result, gpointer data)
{
    g_autoptr(VivEngine) self = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), result, &error);

    if (reply == NULL && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        g_autofree char *message = viv_engine_describe_error(error);
        viv_engine_report_error(self, message);
    }
}

static void viv_engine_call(VivEngine *self, const char *method, GVariant *parameters)
{
    if (self->machine == NULL) {
        if (parameters != NULL)
            g_variant_unref(g_variant_ref_sink(parameters));
        viv_engine_report_error(self, _("The engine is not running."));
        return;
    }
    g_dbus_proxy_call(G_DBUS_PROXY(self->machine), method, parameters, G_DBUS_CALL_FLAGS_NONE, -1,
                      self->cancellable, viv_engine_call_done_cb, g_object_ref(self));
}

void viv_engine_start(VivEngine *self)
{
    self->started = TRUE;
    viv_engine_call(self, "Start", NULL);
}

void viv_engine_pause(VivEngine *self)
{
    viv_engine_call(self, "Pause", NULL);
}

void viv_engine_resume(VivEngine *self)
{
    viv_engine_call(self, "Resume", NULL);
}

void viv_engine_reset(VivEngine *self)
{
    viv_engine_call(self, "Reset", NULL);
}

void viv_engine_power_off(VivEngine *self)
{
    viv_engine_call(self, "PowerOff", NULL);
}

void viv_engine_change_media(VivEngine *self, const char *drive, const char *path)
{
    viv_engine_call(self, "ChangeMedia", g_variant_new("(ss)", drive, path));
}

void viv_engine_eject_media(VivEngine *self, const char *drive)
{
    viv_engine_call(self, "EjectMedia", g_variant_new("(s)", drive));
}

static gboolean viv_engine_kill_cb(gpointer data)
{
    VivEngine *self = data;

    self->kill_timer = 0;
    if (self->pid != 0) {
        g_message("vivarium-engine[%d] did not quit; killing it", (int)self->pid);
        kill(self->pid, SIGKILL);
    }
    return G_SOURCE_REMOVE;
}

static void viv_engine_quit_done_cb(GObject *source, GAsyncResult *result, gpointer data)
{
    g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), result, NULL);

    /* Nothing to report: the child watch says how the engine ended. */
}

void viv_engine_quit(VivEngine *self)
{
    if (self->pid == 0 || self->quitting)
        return;
    self->quitting = TRUE;
    if (self->machine != NULL) {
        g_dbus_proxy_call(G_DBUS_PROXY(self->machine), "Quit", NULL, G_DBUS_CALL_FLAGS_NONE, -1,
                          NULL, viv_engine_quit_done_cb, NULL);
        self->kill_timer = g_timeout_add_seconds(ENGINE_QUIT_GRACE_S, viv_engine_kill_cb, self);
    } else {
        /* Not connected (yet): nobody to ask. SIGTERM is a request to quit too. */
        kill(self->pid, SIGTERM);
        self->kill_timer = g_timeout_add_seconds(ENGINE_QUIT_GRACE_S, viv_engine_kill_cb, self);
    }
}

static void viv_engine_dispose(GObject *object)
{
    VivEngine *self = VIV_ENGINE(object);

    if (self->pid != 0) {
        /* The app is going away with the engine still running; an engine never
         * outlives its app (it would also notice the closed socket). */
        kill(self->pid, SIGTERM);
        g_clear_handle_id(&self->child_watch, g_source_remove);
        g_spawn_close_pid(self->pid);
        self->pid = 0;
    }
    g_clear_handle_id(&self->kill_timer, g_source_remove);
    g_clear_handle_id(&self->handshake_timer, g_source_remove);
    g_clear_handle_id(&self->exit_timer, g_source_remove);
    self->exit_pending = FALSE;
    viv_engine_drop_connection(self);
    g_cancellable_cancel(self->stderr_cancellable);
    g_clear_object(&self->stderr_stream);
    G_OBJECT_CLASS(viv_engine_parent_class)->dispose(object);
}

static void viv_engine_finalize(GObject *object)
{
    VivEngine *self = VIV_ENGINE(object);

    g_queue_clear_full(&self->stderr_lines, g_free);
    g_clear_object(&self->cancellable);
    g_clear_object(&self->stderr_cancellable);
    G_OBJECT_CLASS(viv_engine_parent_class)->finalize(object);
}

static void viv_engine_class_init(VivEngineClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);

    object_class->dispose = viv_engine_dispose;
    object_class->finalize = viv_engine_finalize;

    /* Registers the org.vivarium.Error names before the first reply can carry
     * one, so engine errors arrive as VIV_DBUS_ERROR codes. */
    (void)VIV_DBUS_ERROR;

    /* The connection is up and the Machine properties are known. */
    signals[SIGNAL_READY] = g_signal_new("ready", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                         NULL, NULL, NULL, G_TYPE_NONE, 0);
    /* The Machine's State property changed. */
    signals[SIGNAL_STATE_CHANGED] =
        g_signal_new("state-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 0);
    /* A call failed or the engine signalled Error; the string is for a person. */
    signals[SIGNAL_ERROR] = g_signal_new("error", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                         NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
    /* The process ended: (unexpected, message) where message says why when the
     * end was unexpected, else NULL. */
    signals[SIGNAL_EXITED] =
        g_signal_new("exited", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 2, G_TYPE_BOOLEAN, G_TYPE_STRING);
}

static void viv_engine_init(VivEngine *self)
{
    self->cancellable = g_cancellable_new();
    self->handshake_timeout_s = ENGINE_HANDSHAKE_TIMEOUT_S;
    self->stderr_cancellable = g_cancellable_new();
    g_queue_init(&self->stderr_lines);
}

VivEngine *viv_engine_new(void)
{
    return g_object_new(VIV_TYPE_ENGINE, NULL);
}
