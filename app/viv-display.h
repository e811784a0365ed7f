/* The guest's (or a remote machine's) screen: draws a VivDisplaySource scaled
 * into the widget and sends it keyboard and pointer input. */
#pragma once

#include "viv-display-source.h"

#include <gtk/gtk.h>

G_BEGIN_DECLS

typedef enum {
    VIV_DISPLAY_SCALING_FIT,     /* as large as fits, keeping the aspect ratio */
    VIV_DISPLAY_SCALING_INTEGER, /* the largest whole multiple that fits */
    VIV_DISPLAY_SCALING_NONE,    /* one source pixel per device pixel */
} VivDisplayScaling;

#define VIV_TYPE_DISPLAY (viv_display_get_type())
G_DECLARE_FINAL_TYPE(VivDisplay, viv_display, VIV, DISPLAY, GtkDrawingArea)

GtkWidget *viv_display_new(void);

void viv_display_set_source(VivDisplay *self, VivDisplaySource *source);
VivDisplaySource *viv_display_get_source(VivDisplay *self);

void viv_display_set_scaling(VivDisplay *self, VivDisplayScaling scaling);
VivDisplayScaling viv_display_get_scaling(VivDisplay *self);

/* Smooth (bilinear) filtering for non-integer scale factors. */
void viv_display_set_smooth(VivDisplay *self, gboolean smooth);

/* True while keyboard and pointer are grabbed (after a click, until Ctrl+Alt). */
gboolean viv_display_get_grabbed(VivDisplay *self);
void viv_display_release_grab(VivDisplay *self);

/* Presses and releases @n_keys qnum codes as a chord: all down in order, then all
 * up in reverse order (the send-key menu). */
void viv_display_send_keys(VivDisplay *self, const guint *qnums, guint n_keys);

G_END_DECLS
