/* The engine's framebuffer arrives once as a sealed memfd (GetFramebuffer) and is
 * mapped read-only; after that only damaged rectangles travel (Invalidate). A
 * Resized signal makes the old mapping stale: until the new GetFramebuffer
 * replies, damage is ignored, because it describes a surface we do not have. */
#include "config.h"

#include "viv-engine-source.h"

#include "viv-protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib/gi18n.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct _VivEngineSource {
    GObject parent_instance;

    VivEngine *engine;
    VivDbusDisplay *display;
    VivDbusInput *input;
    GCancellable *cancellable;

    /* The mapping the surface draws from. */
    void *pixels;
    size_t mapped_size;
    cairo_surface_t *surface;
    /* True between Resized and the reply of the next GetFramebuffer. */
    gboolean framebuffer_pending;
};

static void viv_engine_source_display_source_init(VivDisplaySourceInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(VivEngineSource, viv_engine_source, G_TYPE_OBJECT,
                              G_IMPLEMENT_INTERFACE(VIV_TYPE_DISPLAY_SOURCE,
                                                    viv_engine_source_display_source_init))

gboolean viv_engine_source_framebuffer_valid(int fd, guint width, guint height, guint stride,
                                             guint format, GError **error)
{
    struct stat info;
    int seals;

    if (format != VIV_FORMAT_XRGB8888) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    _("The engine uses an unknown framebuffer format (0x%08x)."), format);
        return FALSE;
    }
    if (width == 0 || height == 0 || width > VIV_FRAMEBUFFER_MAX_SIDE ||
        height > VIV_FRAMEBUFFER_MAX_SIDE || stride < width * 4 || stride % 4 != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("The engine described an impossible framebuffer (%u×%u, stride %u)."), width,
                    height, stride);
        return FALSE;
    }
    if (fstat(fd, &info) < 0 || (guint64)info.st_size < (guint64)stride * height) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("The engine's framebuffer is smaller than it says."));
        return FALSE;
    }
    /* Without the shrink seal the engine could truncate the file under our
     * mapping, and drawing would die of SIGBUS. */
    seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("The engine's framebuffer is not sealed against shrinking."));
        return FALSE;
    }
    return TRUE;
}

static void viv_engine_source_unmap(VivEngineSource *self)
{
    if (self->surface != NULL) {
        cairo_surface_finish(self->surface);
        g_clear_pointer(&self->surface, cairo_surface_destroy);
    }
    if (self->pixels != NULL) {
        munmap(self->pixels, self->mapped_size);
        self->pixels = NULL;
        self->mapped_size = 0;
    }
}

static void viv_engine_source_report(VivEngineSource *self, const char *message)
{
    g_signal_emit_by_name(self->engine, "error", message);
}

static void viv_engine_source_framebuffer_cb(GObject *source, GAsyncResult *result, gpointer data)
{
    VivEngineSource *self;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) handle = NULL;
    g_autoptr(GUnixFDList) fds = NULL;
    guint width, height, stride, format;

    if (!viv_dbus_display_call_get_framebuffer_finish(VIV_DBUS_DISPLAY(source), &handle, &width,
                                                      &height, &stride, &format, &fds, result,
                                                      &error)) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            return;
        self = data;
        g_autofree char *message = viv_engine_describe_error(error);
        viv_engine_source_report(self, message);
        return;
    }
    self = data;

    int index = g_variant_get_handle(handle);
    int fd = fds != NULL ? g_unix_fd_list_get(fds, index, &error) : -1;
    if (fd < 0) {
        viv_engine_source_report(self, _("The engine did not pass its framebuffer."));
        return;
    }
    if (!viv_engine_source_framebuffer_valid(fd, width, height, stride, format, &error)) {
        close(fd);
        viv_engine_source_report(self, error->message);
        return;
    }
    size_t size = (size_t)stride * height;
    void *pixels = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (pixels == MAP_FAILED) {
        g_autofree char *message =
            g_strdup_printf(_("Cannot map the engine's framebuffer: %s"), g_strerror(errno));
        viv_engine_source_report(self, message);
        return;
    }

    viv_engine_source_unmap(self);
    self->pixels = pixels;
    self->mapped_size = size;
    /* Cairo only reads from a surface used as a source, so the read-only mapping
     * is safe to wrap. */
    self->surface =
        cairo_image_surface_create_for_data(pixels, CAIRO_FORMAT_RGB24, width, height, stride);
    self->framebuffer_pending = FALSE;
    viv_display_source_emit_resized(VIV_DISPLAY_SOURCE(self));
}

static void viv_engine_source_fetch_framebuffer(VivEngineSource *self)
{
    self->framebuffer_pending = TRUE;
    viv_dbus_display_call_get_framebuffer(self->display, NULL, self->cancellable,
                                          viv_engine_source_framebuffer_cb, self);
}

static void viv_engine_source_invalidate_cb(VivDbusDisplay *display, GVariant *rects,
                                            VivEngineSource *self)
{
    GVariantIter iter;
    int x, y, w, h;

    if (self->surface == NULL || self->framebuffer_pending)
        return;
    int width = cairo_image_surface_get_width(self->surface);
    int height = cairo_image_surface_get_height(self->surface);
    /* Rectangles are clipped here so that nothing downstream has to trust them. */
    g_variant_iter_init(&iter, rects);
    while (g_variant_iter_next(&iter, "(iiii)", &x, &y, &w, &h)) {
        int x0 = CLAMP(x, 0, width), y0 = CLAMP(y, 0, height);
        int x1 = CLAMP((gint64)x + w, 0, width), y1 = CLAMP((gint64)y + h, 0, height);
        if (x1 > x0 && y1 > y0) {
            cairo_surface_mark_dirty_rectangle(self->surface, x0, y0, x1 - x0, y1 - y0);
            viv_display_source_emit_invalidate(VIV_DISPLAY_SOURCE(self), x0, y0, x1 - x0, y1 - y0);
        }
    }
}

static void viv_engine_source_resized_cb(VivDbusDisplay *display, guint width, guint height,
                                         guint stride, VivEngineSource *self)
{
    viv_engine_source_fetch_framebuffer(self);
}

static cairo_surface_t *viv_engine_source_get_surface(VivDisplaySource *source)
{
    return VIV_ENGINE_SOURCE(source)->surface;
}

static gboolean viv_engine_source_get_absolute_pointer(VivDisplaySource *source)
{
    return FALSE;
}

/* Input calls are fired in order on the one connection and not waited for; a
 * failure (the engine died, a bad code) is logged, not shown: the next event
 * would fail the same way, and a dead engine is reported by the child watch. */
static void viv_engine_source_input_done_cb(GObject *source, GAsyncResult *result, gpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), result, &error);

    if (reply == NULL && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
        !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED))
        g_debug("input event failed: %s", error->message);
}

static void viv_engine_source_send_input(VivEngineSource *self, const char *method,
                                         GVariant *parameters)
{
    g_dbus_proxy_call(G_DBUS_PROXY(self->input), method, parameters, G_DBUS_CALL_FLAGS_NONE, -1,
                      self->cancellable, viv_engine_source_input_done_cb, NULL);
}

static void viv_engine_source_send_key(VivDisplaySource *source, guint qnum, guint keyval,
                                       gboolean down)
{
    if (qnum == 0 || qnum > VIV_QNUM_MAX)
        return;
    viv_engine_source_send_input(VIV_ENGINE_SOURCE(source), down ? "KeyPress" : "KeyRelease",
                                 g_variant_new("(u)", qnum));
}

static void viv_engine_source_send_pointer_motion(VivDisplaySource *source, int dx, int dy)
{
    dx = CLAMP(dx, -VIV_POINTER_MAX_MOTION, VIV_POINTER_MAX_MOTION);
    dy = CLAMP(dy, -VIV_POINTER_MAX_MOTION, VIV_POINTER_MAX_MOTION);
    if (dx != 0 || dy != 0)
        viv_engine_source_send_input(VIV_ENGINE_SOURCE(source), "PointerMotion",
                                     g_variant_new("(ii)", dx, dy));
}

static void viv_engine_source_send_pointer_button(VivDisplaySource *source, guint button,
                                                  gboolean down)
{
    if (button >= 1 && button <= 3)
        viv_engine_source_send_input(VIV_ENGINE_SOURCE(source), "PointerButton",
                                     g_variant_new("(ub)", button, down));
}

static void viv_engine_source_send_wheel(VivDisplaySource *source, int delta)
{
    delta = CLAMP(delta, -VIV_WHEEL_MAX_DELTA, VIV_WHEEL_MAX_DELTA);
    if (delta != 0)
        viv_engine_source_send_input(VIV_ENGINE_SOURCE(source), "Wheel",
                                     g_variant_new("(i)", delta));
}

static void viv_engine_source_display_source_init(VivDisplaySourceInterface *iface)
{
    iface->get_surface = viv_engine_source_get_surface;
    iface->get_absolute_pointer = viv_engine_source_get_absolute_pointer;
    iface->send_key = viv_engine_source_send_key;
    iface->send_pointer_motion = viv_engine_source_send_pointer_motion;
    iface->send_pointer_button = viv_engine_source_send_pointer_button;
    iface->send_wheel = viv_engine_source_send_wheel;
}

static void viv_engine_source_dispose(GObject *object)
{
    VivEngineSource *self = VIV_ENGINE_SOURCE(object);

    g_cancellable_cancel(self->cancellable);
    if (self->display != NULL)
        g_signal_handlers_disconnect_by_data(self->display, self);
    g_clear_object(&self->display);
    g_clear_object(&self->input);
    g_clear_object(&self->engine);
    viv_engine_source_unmap(self);
    G_OBJECT_CLASS(viv_engine_source_parent_class)->dispose(object);
}

static void viv_engine_source_finalize(GObject *object)
{
    g_clear_object(&VIV_ENGINE_SOURCE(object)->cancellable);
    G_OBJECT_CLASS(viv_engine_source_parent_class)->finalize(object);
}

static void viv_engine_source_class_init(VivEngineSourceClass *klass)
{
    G_OBJECT_CLASS(klass)->dispose = viv_engine_source_dispose;
    G_OBJECT_CLASS(klass)->finalize = viv_engine_source_finalize;
}

static void viv_engine_source_init(VivEngineSource *self)
{
    self->cancellable = g_cancellable_new();
}

VivEngineSource *viv_engine_source_new(VivEngine *engine)
{
    VivEngineSource *self = g_object_new(VIV_TYPE_ENGINE_SOURCE, NULL);

    g_return_val_if_fail(viv_engine_is_ready(engine), self);
    self->engine = g_object_ref(engine);
    /* The source keeps its own references: the mapping stays drawable after the
     * engine dies, so the window can still show the last frame. */
    self->display = g_object_ref(viv_engine_get_display(engine));
    self->input = g_object_ref(viv_engine_get_input(engine));
    g_signal_connect(self->display, "invalidate", G_CALLBACK(viv_engine_source_invalidate_cb),
                     self);
    g_signal_connect(self->display, "resized", G_CALLBACK(viv_engine_source_resized_cb), self);
    viv_engine_source_fetch_framebuffer(self);
    return self;
}
