/* Where VivDisplay gets its pixels and where it sends input: a running engine
 * (VivEngineSource) or a remote VNC server (VivVncSource). */
#pragma once

#include <cairo.h>
#include <glib-object.h>

G_BEGIN_DECLS

#define VIV_TYPE_DISPLAY_SOURCE (viv_display_source_get_type())
G_DECLARE_INTERFACE(VivDisplaySource, viv_display_source, VIV, DISPLAY_SOURCE, GObject)

struct _VivDisplaySourceInterface {
    GTypeInterface parent_iface;

    /* The current picture as an RGB24 image surface, or NULL before the first
     * one. Valid until the next "resized" signal. */
    cairo_surface_t *(*get_surface)(VivDisplaySource *self);
    /* True when the pointer is sent as absolute positions (VNC), false when as
     * relative motion that needs a pointer grab (a PS/2 mouse in the engine). */
    gboolean (*get_absolute_pointer)(VivDisplaySource *self);
    /* @qnum: the key's set-1 qnum code (0 if unknown); @keyval: its GDK keysym,
     * for protocols that want one. */
    void (*send_key)(VivDisplaySource *self, guint qnum, guint keyval, gboolean down);
    void (*send_pointer_motion)(VivDisplaySource *self, int dx, int dy);
    void (*send_pointer_position)(VivDisplaySource *self, int x, int y);
    /* @button: 1 left, 2 middle, 3 right. */
    void (*send_pointer_button)(VivDisplaySource *self, guint button, gboolean down);
    /* @delta: detents, positive towards the user. */
    void (*send_wheel)(VivDisplaySource *self, int delta);
};

cairo_surface_t *viv_display_source_get_surface(VivDisplaySource *self);
gboolean viv_display_source_get_absolute_pointer(VivDisplaySource *self);
void viv_display_source_send_key(VivDisplaySource *self, guint qnum, guint keyval, gboolean down);
void viv_display_source_send_pointer_motion(VivDisplaySource *self, int dx, int dy);
void viv_display_source_send_pointer_position(VivDisplaySource *self, int x, int y);
void viv_display_source_send_pointer_button(VivDisplaySource *self, guint button, gboolean down);
void viv_display_source_send_wheel(VivDisplaySource *self, int delta);

/* For implementations: announce changed pixels / a new surface. */
void viv_display_source_emit_invalidate(VivDisplaySource *self, int x, int y, int width,
                                        int height);
void viv_display_source_emit_resized(VivDisplaySource *self);

G_END_DECLS
