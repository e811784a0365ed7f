/* Drawing: the source surface is painted centred, scaled by one factor for both
 * axes (square guest pixels), in device pixels so that HiDPI screens get sharp
 * integer scaling. Damage from the source becomes queue_draw_area() of just the
 * scaled rectangle, so a blinking cursor does not repaint the screen.
 *
 * Input: keys go to the source as PC scan codes made from the hardware key code,
 * never from the keysym, so the guest applies its own layout. For sources with a
 * relative pointer (a PS/2 mouse) a click grabs keyboard and pointer; motion is
 * measured from the window centre and the pointer is warped back there.
 * Ctrl+Alt releases the grab, on the release of the second key (like a press
 * that arms and a release that fires), and every key still held down is
 * released in the guest whenever focus or grab is lost, so no key sticks. */
#include "config.h"

#include "viv-display.h"

#include "viv-keymap.h"
#include "viv-protocol.h"

#include <math.h>

struct _VivDisplay {
    GtkDrawingArea parent_instance;

    VivDisplaySource *source;
    gulong invalidate_handler;
    gulong resized_handler;

    VivDisplayScaling scaling;
    gboolean smooth;

    /* Where the picture is, in device pixels of the widget, and its scale. */
    double scale;
    double offset_x, offset_y;

    gboolean grabbed;
    GdkSeat *grab_seat;
    /* Ctrl and Alt were both down during the grab: release it when one goes up. */
    gboolean release_armed;
    gboolean ctrl_down, alt_down;
    /* The warp target while grabbed, in root coordinates, and whether the next
     * motion event is the warp's own. */
    int centre_x, centre_y;
    gboolean warping;

    /* qnum codes the guest currently sees pressed, and the keysym each was
     * pressed with (VNC servers want the keysym on release too). */
    guint32 held_keys[(VIV_QNUM_MAX + 1) / 32];
    guint held_keyvals[VIV_QNUM_MAX + 1];
    guint held_buttons;
};

G_DEFINE_FINAL_TYPE(VivDisplay, viv_display, GTK_TYPE_DRAWING_AREA)

enum { PROP_0, PROP_GRABBED, PROP_SCALING, N_PROPS };
static GParamSpec *properties[N_PROPS];

static int viv_display_scale_factor(VivDisplay *self)
{
    return gtk_widget_get_scale_factor(GTK_WIDGET(self));
}

/* Computes scale and offsets for the current allocation and surface. */
static gboolean viv_display_update_geometry(VivDisplay *self)
{
    cairo_surface_t *surface = self->source ? viv_display_source_get_surface(self->source) : NULL;
    int factor = viv_display_scale_factor(self);
    double width, height, fit;
    int source_width, source_height;

    if (surface == NULL)
        return FALSE;
    source_width = cairo_image_surface_get_width(surface);
    source_height = cairo_image_surface_get_height(surface);
    width = (double)gtk_widget_get_allocated_width(GTK_WIDGET(self)) * factor;
    height = (double)gtk_widget_get_allocated_height(GTK_WIDGET(self)) * factor;
    fit = MIN(width / source_width, height / source_height);
    switch (self->scaling) {
    case VIV_DISPLAY_SCALING_INTEGER:
        /* A window smaller than the picture still shows all of it. */
        self->scale = fit >= 1.0 ? floor(fit) : fit;
        break;
    case VIV_DISPLAY_SCALING_NONE:
        self->scale = 1.0;
        break;
    case VIV_DISPLAY_SCALING_FIT:
    default:
        self->scale = fit;
        break;
    }
    self->offset_x = floor((width - source_width * self->scale) / 2);
    self->offset_y = floor((height - source_height * self->scale) / 2);
    return TRUE;
}

static gboolean viv_display_draw(GtkWidget *widget, cairo_t *cr)
{
    VivDisplay *self = VIV_DISPLAY(widget);
    int factor = viv_display_scale_factor(self);
    cairo_surface_t *surface;

    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_paint(cr);
    if (!viv_display_update_geometry(self))
        return TRUE;
    surface = viv_display_source_get_surface(self->source);

    cairo_save(cr);
    cairo_scale(cr, 1.0 / factor, 1.0 / factor);
    cairo_translate(cr, self->offset_x, self->offset_y);
    cairo_scale(cr, self->scale, self->scale);
    cairo_set_source_surface(cr, surface, 0, 0);
    gboolean integral = self->scale == floor(self->scale);
    cairo_pattern_set_filter(cairo_get_source(cr), integral || !self->smooth
                                                       ? CAIRO_FILTER_NEAREST
                                                       : CAIRO_FILTER_BILINEAR);
    cairo_rectangle(cr, 0, 0, cairo_image_surface_get_width(surface),
                    cairo_image_surface_get_height(surface));
    cairo_fill(cr);
    cairo_restore(cr);
    return TRUE;
}

static void viv_display_source_invalidate_cb(VivDisplaySource *source, int x, int y, int width,
                                             int height, VivDisplay *self)
{
    int factor = viv_display_scale_factor(self);

    if (!viv_display_update_geometry(self))
        return;
    /* Scaled edges land between device pixels; widen by one to cover them. */
    double left = (self->offset_x + x * self->scale) / factor;
    double top = (self->offset_y + y * self->scale) / factor;
    double right = (self->offset_x + (x + width) * self->scale) / factor;
    double bottom = (self->offset_y + (y + height) * self->scale) / factor;
    int x0 = (int)floor(left) - 1, y0 = (int)floor(top) - 1;
    gtk_widget_queue_draw_area(GTK_WIDGET(self), x0, y0, (int)ceil(right) + 1 - x0,
                               (int)ceil(bottom) + 1 - y0);
}

static void viv_display_source_resized_cb(VivDisplaySource *source, VivDisplay *self)
{
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void viv_display_set_key(VivDisplay *self, guint qnum, gboolean down)
{
    guint32 bit = 1u << (qnum % 32);

    if (down)
        self->held_keys[qnum / 32] |= bit;
    else
        self->held_keys[qnum / 32] &= ~bit;
}

static gboolean viv_display_key_held(VivDisplay *self, guint qnum)
{
    return (self->held_keys[qnum / 32] >> (qnum % 32)) & 1;
}

static void viv_display_release_all_input(VivDisplay *self)
{
    for (guint qnum = 1; qnum <= VIV_QNUM_MAX; qnum++) {
        if (viv_display_key_held(self, qnum)) {
            viv_display_set_key(self, qnum, FALSE);
            if (self->source != NULL)
                viv_display_source_send_key(self->source, qnum, self->held_keyvals[qnum], FALSE);
        }
    }
    for (guint button = 1; button <= 3; button++) {
        if ((self->held_buttons & (1u << button)) && self->source != NULL)
            viv_display_source_send_pointer_button(self->source, button, FALSE);
    }
    self->held_buttons = 0;
    self->ctrl_down = self->alt_down = self->release_armed = FALSE;
}

static void viv_display_centre_pointer(VivDisplay *self, GdkDevice *pointer)
{
    GtkWidget *widget = GTK_WIDGET(self);
    GdkWindow *window = gtk_widget_get_window(widget);
    int origin_x, origin_y;

    gdk_window_get_origin(window, &origin_x, &origin_y);
    self->centre_x = origin_x + gtk_widget_get_allocated_width(widget) / 2;
    self->centre_y = origin_y + gtk_widget_get_allocated_height(widget) / 2;
    self->warping = TRUE;
    gdk_device_warp(pointer, gtk_widget_get_screen(widget), self->centre_x, self->centre_y);
}

static void viv_display_take_grab(VivDisplay *self, const GdkEvent *event)
{
    GtkWidget *widget = GTK_WIDGET(self);
    GdkWindow *window = gtk_widget_get_window(widget);
    GdkSeat *seat = gdk_display_get_default_seat(gtk_widget_get_display(widget));
    g_autoptr(GdkCursor) blank = gdk_cursor_new_from_name(gtk_widget_get_display(widget), "none");

    if (self->grabbed)
        return;
    if (gdk_seat_grab(seat, window, GDK_SEAT_CAPABILITY_ALL, TRUE, blank, event, NULL, NULL) !=
        GDK_GRAB_SUCCESS) {
        g_debug("grab refused");
        return;
    }
    self->grabbed = TRUE;
    self->grab_seat = g_object_ref(seat);
    gtk_widget_grab_focus(widget);
    viv_display_centre_pointer(self, gdk_seat_get_pointer(seat));
    g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_GRABBED]);
}

void viv_display_release_grab(VivDisplay *self)
{
    if (!self->grabbed)
        return;
    viv_display_release_all_input(self);
    gdk_seat_ungrab(self->grab_seat);
    g_clear_object(&self->grab_seat);
    self->grabbed = FALSE;
    g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_GRABBED]);
}

static gboolean viv_display_is_ctrl(guint qnum)
{
    return qnum == VIV_QNUM_LEFT_CTRL || qnum == VIV_QNUM_RIGHT_CTRL;
}

static gboolean viv_display_is_alt(guint qnum)
{
    return qnum == VIV_QNUM_LEFT_ALT || qnum == VIV_QNUM_RIGHT_ALT;
}

static gboolean viv_display_key_event(GtkWidget *widget, GdkEventKey *event)
{
    VivDisplay *self = VIV_DISPLAY(widget);
    gboolean down = event->type == GDK_KEY_PRESS;
    guint qnum = viv_keymap_hardware_to_qnum(event->hardware_keycode);

    if (self->source == NULL)
        return FALSE;
    if (self->grabbed) {
        if (viv_display_is_ctrl(qnum))
            self->ctrl_down = down;
        if (viv_display_is_alt(qnum))
            self->alt_down = down;
        if (down && self->ctrl_down && self->alt_down)
            self->release_armed = TRUE;
    }
    if (qnum != 0) {
        /* A release of a key the guest never saw pressed (pressed before focus
         * arrived) is dropped. */
        if (!down && !viv_display_key_held(self, qnum))
            goto check_release;
        viv_display_set_key(self, qnum, down);
        if (down)
            self->held_keyvals[qnum] = event->keyval;
    }
    viv_display_source_send_key(self->source, qnum, event->keyval, down);

check_release:
    if (!down && self->release_armed)
        viv_display_release_grab(self);
    return TRUE;
}

static void viv_display_widget_to_source(VivDisplay *self, double x, double y, int *source_x,
                                         int *source_y)
{
    int factor = viv_display_scale_factor(self);

    *source_x = (int)floor((x * factor - self->offset_x) / self->scale);
    *source_y = (int)floor((y * factor - self->offset_y) / self->scale);
}

static gboolean viv_display_button_event(GtkWidget *widget, GdkEventButton *event)
{
    VivDisplay *self = VIV_DISPLAY(widget);
    gboolean down = event->type == GDK_BUTTON_PRESS;

    if (self->source == NULL ||
        (event->type != GDK_BUTTON_PRESS && event->type != GDK_BUTTON_RELEASE))
        return FALSE;
    gtk_widget_grab_focus(widget);
    if (!viv_display_source_get_absolute_pointer(self->source) && !self->grabbed) {
        /* The click that takes the grab is not the guest's. */
        if (down)
            viv_display_take_grab(self, (GdkEvent *)event);
        return TRUE;
    }
    if (event->button < 1 || event->button > 3)
        return TRUE;
    if (viv_display_source_get_absolute_pointer(self->source) &&
        viv_display_update_geometry(self)) {
        int x, y;
        viv_display_widget_to_source(self, event->x, event->y, &x, &y);
        viv_display_source_send_pointer_position(self->source, x, y);
    }
    if (down)
        self->held_buttons |= 1u << event->button;
    else if (!(self->held_buttons & (1u << event->button)))
        return TRUE;
    else
        self->held_buttons &= ~(1u << event->button);
    viv_display_source_send_pointer_button(self->source, event->button, down);
    return TRUE;
}

static gboolean viv_display_motion_event(GtkWidget *widget, GdkEventMotion *event)
{
    VivDisplay *self = VIV_DISPLAY(widget);

    if (self->source == NULL)
        return FALSE;
    if (viv_display_source_get_absolute_pointer(self->source)) {
        int x, y;
        if (viv_display_update_geometry(self)) {
            viv_display_widget_to_source(self, event->x, event->y, &x, &y);
            viv_display_source_send_pointer_position(self->source, x, y);
        }
        return TRUE;
    }
    if (!self->grabbed)
        return FALSE;
    int dx = (int)event->x_root - self->centre_x;
    int dy = (int)event->y_root - self->centre_y;
    if (self->warping && dx == 0 && dy == 0) {
        self->warping = FALSE;
        return TRUE;
    }
    if (dx != 0 || dy != 0) {
        viv_display_source_send_pointer_motion(self->source, dx, dy);
        viv_display_centre_pointer(self, gdk_event_get_device((GdkEvent *)event));
    }
    return TRUE;
}

static gboolean viv_display_scroll_event(GtkWidget *widget, GdkEventScroll *event)
{
    VivDisplay *self = VIV_DISPLAY(widget);

    if (self->source == NULL)
        return FALSE;
    if (!viv_display_source_get_absolute_pointer(self->source) && !self->grabbed)
        return FALSE;
    if (event->direction == GDK_SCROLL_UP)
        viv_display_source_send_wheel(self->source, -1);
    else if (event->direction == GDK_SCROLL_DOWN)
        viv_display_source_send_wheel(self->source, 1);
    return TRUE;
}

static gboolean viv_display_focus_out(GtkWidget *widget, GdkEventFocus *event)
{
    VivDisplay *self = VIV_DISPLAY(widget);

    viv_display_release_all_input(self);
    viv_display_release_grab(self);
    return FALSE;
}

static gboolean viv_display_grab_broken(GtkWidget *widget, GdkEventGrabBroken *event)
{
    viv_display_release_grab(VIV_DISPLAY(widget));
    return TRUE;
}

static void viv_display_size_allocate(GtkWidget *widget, GtkAllocation *allocation)
{
    GTK_WIDGET_CLASS(viv_display_parent_class)->size_allocate(widget, allocation);
    viv_display_update_geometry(VIV_DISPLAY(widget));
}

void viv_display_set_source(VivDisplay *self, VivDisplaySource *source)
{
    if (self->source == source)
        return;
    viv_display_release_grab(self);
    viv_display_release_all_input(self);
    if (self->source != NULL) {
        g_clear_signal_handler(&self->invalidate_handler, self->source);
        g_clear_signal_handler(&self->resized_handler, self->source);
        g_clear_object(&self->source);
    }
    if (source != NULL) {
        self->source = g_object_ref(source);
        self->invalidate_handler = g_signal_connect(
            source, "invalidate", G_CALLBACK(viv_display_source_invalidate_cb), self);
        self->resized_handler =
            g_signal_connect(source, "resized", G_CALLBACK(viv_display_source_resized_cb), self);
    }
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

VivDisplaySource *viv_display_get_source(VivDisplay *self)
{
    return self->source;
}

void viv_display_set_scaling(VivDisplay *self, VivDisplayScaling scaling)
{
    if (self->scaling == scaling)
        return;
    self->scaling = scaling;
    gtk_widget_queue_draw(GTK_WIDGET(self));
    g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_SCALING]);
}

VivDisplayScaling viv_display_get_scaling(VivDisplay *self)
{
    return self->scaling;
}

void viv_display_set_smooth(VivDisplay *self, gboolean smooth)
{
    self->smooth = smooth;
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

gboolean viv_display_get_grabbed(VivDisplay *self)
{
    return self->grabbed;
}

void viv_display_send_keys(VivDisplay *self, const guint *qnums, guint n_keys)
{
    if (self->source == NULL)
        return;
    for (guint i = 0; i < n_keys; i++)
        viv_display_source_send_key(self->source, qnums[i], viv_keymap_qnum_to_keysym(qnums[i]),
                                    TRUE);
    for (guint i = n_keys; i-- > 0;)
        viv_display_source_send_key(self->source, qnums[i], viv_keymap_qnum_to_keysym(qnums[i]),
                                    FALSE);
}

static void viv_display_get_property(GObject *object, guint prop_id, GValue *value,
                                     GParamSpec *pspec)
{
    VivDisplay *self = VIV_DISPLAY(object);

    switch (prop_id) {
    case PROP_GRABBED:
        g_value_set_boolean(value, self->grabbed);
        break;
    case PROP_SCALING:
        g_value_set_int(value, self->scaling);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    }
}

static void viv_display_set_property(GObject *object, guint prop_id, const GValue *value,
                                     GParamSpec *pspec)
{
    switch (prop_id) {
    case PROP_SCALING:
        viv_display_set_scaling(VIV_DISPLAY(object), g_value_get_int(value));
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    }
}

static void viv_display_dispose(GObject *object)
{
    VivDisplay *self = VIV_DISPLAY(object);

    viv_display_set_source(self, NULL);
    g_clear_object(&self->grab_seat);
    G_OBJECT_CLASS(viv_display_parent_class)->dispose(object);
}

static void viv_display_class_init(VivDisplayClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    object_class->dispose = viv_display_dispose;
    object_class->get_property = viv_display_get_property;
    object_class->set_property = viv_display_set_property;
    widget_class->draw = viv_display_draw;
    widget_class->key_press_event = viv_display_key_event;
    widget_class->key_release_event = viv_display_key_event;
    widget_class->button_press_event = viv_display_button_event;
    widget_class->button_release_event = viv_display_button_event;
    widget_class->motion_notify_event = viv_display_motion_event;
    widget_class->scroll_event = viv_display_scroll_event;
    widget_class->focus_out_event = viv_display_focus_out;
    widget_class->grab_broken_event = viv_display_grab_broken;
    widget_class->size_allocate = viv_display_size_allocate;

    properties[PROP_GRABBED] = g_param_spec_boolean("grabbed", NULL, NULL, FALSE,
                                                    G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
    properties[PROP_SCALING] =
        g_param_spec_int("scaling", NULL, NULL, VIV_DISPLAY_SCALING_FIT, VIV_DISPLAY_SCALING_NONE,
                         VIV_DISPLAY_SCALING_FIT, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
    g_object_class_install_properties(object_class, N_PROPS, properties);

    gtk_widget_class_set_css_name(widget_class, "vivdisplay");
    gtk_widget_class_set_accessible_role(widget_class, ATK_ROLE_CANVAS);
}

static void viv_display_init(VivDisplay *self)
{
    GtkWidget *widget = GTK_WIDGET(self);

    self->scale = 1.0;
    gtk_widget_set_can_focus(widget, TRUE);
    gtk_widget_set_focus_on_click(widget, TRUE);
    gtk_widget_add_events(widget, GDK_KEY_PRESS_MASK | GDK_KEY_RELEASE_MASK |
                                      GDK_BUTTON_PRESS_MASK | GDK_BUTTON_RELEASE_MASK |
                                      GDK_POINTER_MOTION_MASK | GDK_SCROLL_MASK |
                                      GDK_FOCUS_CHANGE_MASK);
    gtk_widget_set_hexpand(widget, TRUE);
    gtk_widget_set_vexpand(widget, TRUE);
    gtk_widget_set_size_request(widget, 320, 200);
}

GtkWidget *viv_display_new(void)
{
    return g_object_new(VIV_TYPE_DISPLAY, NULL);
}
