#include "viv-display-source.h"

G_DEFINE_INTERFACE(VivDisplaySource, viv_display_source, G_TYPE_OBJECT)

enum { SIGNAL_INVALIDATE, SIGNAL_RESIZED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void viv_display_source_default_init(VivDisplaySourceInterface *iface)
{
    /* Pixels in (x, y, width, height), in surface coordinates and within the
     * surface, changed. */
    signals[SIGNAL_INVALIDATE] =
        g_signal_new("invalidate", G_TYPE_FROM_INTERFACE(iface), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 4, G_TYPE_INT, G_TYPE_INT, G_TYPE_INT, G_TYPE_INT);
    /* The surface was replaced (new size, or the first picture arrived). */
    signals[SIGNAL_RESIZED] = g_signal_new("resized", G_TYPE_FROM_INTERFACE(iface),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

cairo_surface_t *viv_display_source_get_surface(VivDisplaySource *self)
{
    return VIV_DISPLAY_SOURCE_GET_IFACE(self)->get_surface(self);
}

gboolean viv_display_source_get_absolute_pointer(VivDisplaySource *self)
{
    return VIV_DISPLAY_SOURCE_GET_IFACE(self)->get_absolute_pointer(self);
}

void viv_display_source_send_key(VivDisplaySource *self, guint qnum, guint keyval, gboolean down)
{
    VIV_DISPLAY_SOURCE_GET_IFACE(self)->send_key(self, qnum, keyval, down);
}

void viv_display_source_send_pointer_motion(VivDisplaySource *self, int dx, int dy)
{
    VivDisplaySourceInterface *iface = VIV_DISPLAY_SOURCE_GET_IFACE(self);

    if (iface->send_pointer_motion != NULL)
        iface->send_pointer_motion(self, dx, dy);
}

void viv_display_source_send_pointer_position(VivDisplaySource *self, int x, int y)
{
    VivDisplaySourceInterface *iface = VIV_DISPLAY_SOURCE_GET_IFACE(self);

    if (iface->send_pointer_position != NULL)
        iface->send_pointer_position(self, x, y);
}

void viv_display_source_send_pointer_button(VivDisplaySource *self, guint button, gboolean down)
{
    VIV_DISPLAY_SOURCE_GET_IFACE(self)->send_pointer_button(self, button, down);
}

void viv_display_source_send_wheel(VivDisplaySource *self, int delta)
{
    VIV_DISPLAY_SOURCE_GET_IFACE(self)->send_wheel(self, delta);
}

void viv_display_source_emit_invalidate(VivDisplaySource *self, int x, int y, int width, int height)
{
    g_signal_emit(self, signals[SIGNAL_INVALIDATE], 0, x, y, width, height);
}

void viv_display_source_emit_resized(VivDisplaySource *self)
{
    g_signal_emit(self, signals[SIGNAL_RESIZED], 0);
}
