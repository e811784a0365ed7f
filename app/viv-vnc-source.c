/* The RFB protocol (RFC 6143) through libvncclient.
 *
 * The handshake (version, security, password, ServerInit) is blocking in
 * libvncclient, so it runs in a GTask worker thread; afterwards the client is
 * serviced in the main context from an fd watch, one server message at a time.
 * The pixel format is set to 32-bit 0x00RRGGBB so the client's framebuffer is a
 * Cairo RGB24 image as is. */
#include "config.h"

#include "viv-vnc-source.h"

#include <gdk/gdk.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <rfb/rfbclient.h>

struct _VivVncSource {
    GObject parent_instance;

    rfbClient *client;
    char *address;
    char *password;
    guint fd_watch;
    cairo_surface_t *surface;
    int pointer_x, pointer_y;
    int button_mask;
    gboolean closed;
};

static void viv_vnc_source_display_source_init(VivDisplaySourceInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(VivVncSource, viv_vnc_source, G_TYPE_OBJECT,
                              G_IMPLEMENT_INTERFACE(VIV_TYPE_DISPLAY_SOURCE,
                                                    viv_vnc_source_display_source_init))

G_DEFINE_QUARK(viv - vnc - error - quark, viv_vnc_error)

/* The tag under which the rfbClient remembers its VivVncSource. */
static int client_data_tag;

/* libvncclient reports the reason of a failed handshake only through its log
 * functions, some through the error one and some (a refused password) through the
 * info one; the worker keeps the last message of either in a thread-local buffer. */
static _Thread_local char last_client_message[256];

static void viv_vnc_log(const char *format, va_list args)
{
    g_vsnprintf(last_client_message, sizeof(last_client_message), format, args);
    g_strstrip(last_client_message);
    g_debug("libvncclient: %s", last_client_message);
}

static void viv_vnc_log_error(const char *format, ...)
{
    va_list args;

    va_start(args, format);
    viv_vnc_log(format, args);
    va_end(args);
}

static void viv_vnc_log_info(const char *format, ...)
{
    va_list args;

    va_start(args, format);
    viv_vnc_log(format, args);
    va_end(args);
}

static VivVncSource *viv_vnc_source_of(rfbClient *client)
{
    return rfbClientGetClientData(client, &client_data_tag);
}

static char *viv_vnc_get_password_cb(rfbClient *client)
{
    VivVncSource *self = viv_vnc_source_of(client);

    /* libvncclient frees the returned string with free(). */
    return strdup(self->password != NULL ? self->password : "");
}

static void viv_vnc_replace_surface(VivVncSource *self)
{
    rfbClient *client = self->client;

    g_clear_pointer(&self->surface, cairo_surface_destroy);
    self->surface = cairo_image_surface_create_for_data(
        client->frameBuffer, CAIRO_FORMAT_RGB24, client->width, client->height, client->width * 4);
}

/* Called by libvncclient on ServerInit (in the worker) and on a desktop resize
 * (in the main context). */
static rfbBool viv_vnc_malloc_framebuffer_cb(rfbClient *client)
{
    VivVncSource *self = viv_vnc_source_of(client);
    gsize size;

    if (client->width <= 0 || client->height <= 0 || client->width > 16384 ||
        client->height > 16384)
        return FALSE;
    size = (gsize)client->width * client->height * 4;
    g_clear_pointer(&self->surface, cairo_surface_destroy);
    free(client->frameBuffer);
    client->frameBuffer = calloc(1, size);
    if (client->frameBuffer == NULL)
        return FALSE;
    if (self->fd_watch != 0) {
        viv_vnc_replace_surface(self);
        viv_display_source_emit_resized(VIV_DISPLAY_SOURCE(self));
    }
    return TRUE;
}

static void viv_vnc_got_update_cb(rfbClient *client, int x, int y, int w, int h)
{
    VivVncSource *self = viv_vnc_source_of(client);
    int x0 = CLAMP(x, 0, client->width), y0 = CLAMP(y, 0, client->height);
    int x1 = CLAMP(x + w, 0, client->width), y1 = CLAMP(y + h, 0, client->height);

    if (self->surface == NULL || x1 <= x0 || y1 <= y0)
        return;
    cairo_surface_mark_dirty_rectangle(self->surface, x0, y0, x1 - x0, y1 - y0);
    viv_display_source_emit_invalidate(VIV_DISPLAY_SOURCE(self), x0, y0, x1 - x0, y1 - y0);
}

static void viv_vnc_source_close(VivVncSource *self)
{
    g_clear_handle_id(&self->fd_watch, g_source_remove);
    self->closed = TRUE;
}

static gboolean viv_vnc_readable_cb(int fd, GIOCondition condition, gpointer data)
{
    VivVncSource *self = data;

    /* libvncclient reads ahead into its own buffer, so one readable socket can
     * hold several messages: handle until the buffer is drained. */
    do {
        if (!HandleRFBServerMessage(self->client)) {
            self->fd_watch = 0;
            viv_vnc_source_close(self);
            g_signal_emit_by_name(self, "disconnected");
            return G_SOURCE_REMOVE;
        }
    } while (self->client->buffered > 0);
    return G_SOURCE_CONTINUE;
}

static void viv_vnc_connect_thread(GTask *task, gpointer object, gpointer task_data,
                                   GCancellable *cancellable)
{
    VivVncSource *self = task_data;
    rfbClient *client = self->client;

    last_client_message[0] = '\0';
    /* rfbInitClient frees the client when it fails. */
    if (!rfbInitClient(client, NULL, NULL)) {
        self->client = NULL;
        if (g_strstr_len(last_client_message, -1, "uthentication") != NULL ||
            g_strstr_len(last_client_message, -1, "password") != NULL) {
            g_task_return_new_error(task, VIV_VNC_ERROR, VIV_VNC_ERROR_AUTHENTICATION,
                                    _("The server refused the password."));
        } else {
            g_task_return_new_error(task, VIV_VNC_ERROR, VIV_VNC_ERROR_CONNECT,
                                    _("Cannot connect to %s: %s"), self->address,
                                    last_client_message[0] != '\0' ? last_client_message
                                                                   : _("no answer"));
        }
        return;
    }
    g_task_return_boolean(task, TRUE);
}

void viv_vnc_source_connect_async(const char *host, int port, const char *password,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data)
{
    VivVncSource *self = g_object_new(VIV_TYPE_VNC_SOURCE, NULL);
    g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
    rfbClient *client = rfbGetClient(8, 3, 4);

    rfbClientLog = viv_vnc_log_info;
    rfbClientErr = viv_vnc_log_error;
    self->client = client;
    self->address = g_strdup_printf("%s:%d", host, port);
    self->password = g_strdup(password);
    rfbClientSetClientData(client, &client_data_tag, self);
    client->serverHost = strdup(host);
    client->serverPort = port;
    client->connectTimeout = 10;
    client->readTimeout = 30;
    client->canHandleNewFBSize = TRUE;
    client->GetPassword = viv_vnc_get_password_cb;
    client->MallocFrameBuffer = viv_vnc_malloc_framebuffer_cb;
    client->GotFrameBufferUpdate = viv_vnc_got_update_cb;
    client->format.redShift = 16;
    client->format.greenShift = 8;
    client->format.blueShift = 0;
    client->format.redMax = client->format.greenMax = client->format.blueMax = 255;
    client->appData.encodingsString = "tight zrle ultra copyrect hextile zlib corre rre raw";

    g_task_set_task_data(task, self, g_object_unref);
    g_task_set_source_tag(task, viv_vnc_source_connect_async);
    g_task_run_in_thread(task, viv_vnc_connect_thread);
}

VivVncSource *viv_vnc_source_connect_finish(GAsyncResult *result, GError **error)
{
    GTask *task = G_TASK(result);
    VivVncSource *self = g_task_get_task_data(task);

    if (!g_task_propagate_boolean(task, error))
        return NULL;
    viv_vnc_replace_surface(self);
    self->fd_watch =
        g_unix_fd_add(self->client->sock, G_IO_IN | G_IO_HUP | G_IO_ERR, viv_vnc_readable_cb, self);
    SendFramebufferUpdateRequest(self->client, 0, 0, self->client->width, self->client->height,
                                 FALSE);
    return g_object_ref(self);
}

const char *viv_vnc_source_get_address(VivVncSource *self)
{
    return self->address;
}

const char *viv_vnc_source_get_desktop_name(VivVncSource *self)
{
    return self->client != NULL && self->client->desktopName != NULL ? self->client->desktopName
                                                                     : "";
}

static cairo_surface_t *viv_vnc_source_get_surface(VivDisplaySource *source)
{
    return VIV_VNC_SOURCE(source)->surface;
}

static gboolean viv_vnc_source_get_absolute_pointer(VivDisplaySource *source)
{
    return TRUE;
}

static void viv_vnc_source_send_key(VivDisplaySource *source, guint qnum, guint keyval,
                                    gboolean down)
{
    VivVncSource *self = VIV_VNC_SOURCE(source);

    if (self->closed || keyval == 0)
        return;
    /* Servers that understand QEMU's extended key event get the scan code and
     * apply their own layout; the others get the keysym alone. */
    if (qnum == 0 || !SendExtendedKeyEvent(self->client, keyval, qnum, down))
        SendKeyEvent(self->client, keyval, down);
}

static void viv_vnc_source_send_pointer_position(VivDisplaySource *source, int x, int y)
{
    VivVncSource *self = VIV_VNC_SOURCE(source);

    if (self->closed)
        return;
    self->pointer_x = CLAMP(x, 0, self->client->width - 1);
    self->pointer_y = CLAMP(y, 0, self->client->height - 1);
    SendPointerEvent(self->client, self->pointer_x, self->pointer_y, self->button_mask);
}

/* RFB button mask bits: 1 left, 2 middle, 4 right, 8 wheel up, 16 wheel down. */
static void viv_vnc_source_send_pointer_button(VivDisplaySource *source, guint button,
                                               gboolean down)
{
    VivVncSource *self = VIV_VNC_SOURCE(source);
    int bit;

    if (self->closed || button < 1 || button > 3)
        return;
    bit = 1 << (button - 1);
    self->button_mask = down ? (self->button_mask | bit) : (self->button_mask & ~bit);
    SendPointerEvent(self->client, self->pointer_x, self->pointer_y, self->button_mask);
}

static void viv_vnc_source_send_wheel(VivDisplaySource *source, int delta)
{
    VivVncSource *self = VIV_VNC_SOURCE(source);
    int bit = delta > 0 ? 16 : 8;

    if (self->closed)
        return;
    for (int i = 0; i < ABS(delta) && i < 16; i++) {
        SendPointerEvent(self->client, self->pointer_x, self->pointer_y, self->button_mask | bit);
        SendPointerEvent(self->client, self->pointer_x, self->pointer_y, self->button_mask);
    }
}

static void viv_vnc_source_display_source_init(VivDisplaySourceInterface *iface)
{
    iface->get_surface = viv_vnc_source_get_surface;
    iface->get_absolute_pointer = viv_vnc_source_get_absolute_pointer;
    iface->send_key = viv_vnc_source_send_key;
    iface->send_pointer_position = viv_vnc_source_send_pointer_position;
    iface->send_pointer_button = viv_vnc_source_send_pointer_button;
    iface->send_wheel = viv_vnc_source_send_wheel;
}

static void viv_vnc_source_finalize(GObject *object)
{
    VivVncSource *self = VIV_VNC_SOURCE(object);

    g_clear_handle_id(&self->fd_watch, g_source_remove);
    g_clear_pointer(&self->surface, cairo_surface_destroy);
    if (self->client != NULL) {
        free(self->client->frameBuffer);
        self->client->frameBuffer = NULL;
        rfbClientCleanup(self->client);
    }
    g_free(self->address);
    g_free(self->password);
    G_OBJECT_CLASS(viv_vnc_source_parent_class)->finalize(object);
}

static void viv_vnc_source_class_init(VivVncSourceClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = viv_vnc_source_finalize;

    /* The server closed the connection or sent something unreadable. */
    g_signal_new("disconnected", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                 G_TYPE_NONE, 0);
}

static void viv_vnc_source_init(VivVncSource *self)
{
}
