#include "config.h"

#include "viv-vm-window.h"

#include "viv-display.h"
#include "viv-keymap.h"
#include "viv-snapshots-popover.h"

#include <glib/gi18n.h>

struct _VivVmWindow {
    GtkApplicationWindow parent_instance;

    GtkWidget *header_bar;
    GtkWidget *machine_controls;
    GtkWidget *pause_button;
    GtkWidget *media_button;
    GtkWidget *snapshots_button;
    GtkWidget *snapshots_popover;
    GtkWidget *info_bar;
    GtkWidget *info_label;
    GtkWidget *overlay;
    GtkWidget *display;
    GtkWidget *grab_hint;

    VivApplication *app;
    VivVm *vm;            /* NULL for a remote screen */
    VivVncSource *remote; /* NULL for a VM */
    gboolean fullscreen;
};

G_DEFINE_FINAL_TYPE(VivVmWindow, viv_vm_window, GTK_TYPE_APPLICATION_WINDOW)

static void viv_vm_window_show_message(VivVmWindow *self, GtkMessageType type, const char *message)
{
    gtk_info_bar_set_message_type(GTK_INFO_BAR(self->info_bar), type);
    gtk_label_set_text(GTK_LABEL(self->info_label), message);
    gtk_widget_show(self->info_bar);
}

static void viv_vm_window_info_bar_response_cb(VivVmWindow *self, int response)
{
    gtk_widget_hide(self->info_bar);
}

static void viv_vm_window_enable(VivVmWindow *self, const char *action, gboolean enabled)
{
    GAction *found = g_action_map_lookup_action(G_ACTION_MAP(self), action);

    g_simple_action_set_enabled(G_SIMPLE_ACTION(found), enabled);
}

static void viv_vm_window_update_state(VivVmWindow *self)
{
    VivVmState state = viv_vm_get_state(self->vm);
    gboolean live = state == VIV_VM_STATE_RUNNING || state == VIV_VM_STATE_PAUSED;

    VivEngine *engine = viv_vm_get_engine(self->vm);
    VivDbusMachine *machine = engine != NULL ? viv_engine_get_machine(engine) : NULL;
    const char *backend = machine != NULL ? viv_dbus_machine_get_backend(machine) : NULL;
    g_autofree char *subtitle =
        live && backend != NULL && *backend != '\0'
            /* Translators: the machine's state and the CPU backend running it,
             * e.g. "Running · kvm". */
            ? g_strdup_printf(_("%s · %s"), viv_vm_describe_state(self->vm), backend)
            : g_strdup(viv_vm_describe_state(self->vm));

    gtk_header_bar_set_subtitle(GTK_HEADER_BAR(self->header_bar), subtitle);
    gtk_button_set_label(GTK_BUTTON(self->pause_button),
                         state == VIV_VM_STATE_PAUSED ? _("Resume") : _("Pause"));
    viv_vm_window_enable(self, "pause", live);
    viv_vm_window_enable(self, "reset", live);
    viv_vm_window_enable(self, "power-off", live || state == VIV_VM_STATE_STARTING);
    viv_vm_window_enable(self, "send-key", live);
    viv_vm_window_enable(self, "insert-media", live);
    viv_vm_window_enable(self, "eject-media", live);
    gtk_widget_set_sensitive(self->snapshots_button, live);

    switch (state) {
    case VIV_VM_STATE_FAILED:
        /* The last frame stays on screen; the window stays until closed, so the
         * person can read what happened. */
        viv_display_release_grab(VIV_DISPLAY(self->display));
        viv_vm_window_show_message(self, GTK_MESSAGE_ERROR, viv_vm_get_error_message(self->vm));
        break;
    case VIV_VM_STATE_STOPPED:
        gtk_widget_destroy(GTK_WIDGET(self));
        break;
    case VIV_VM_STATE_RUNNING:
        if (gtk_info_bar_get_message_type(GTK_INFO_BAR(self->info_bar)) == GTK_MESSAGE_ERROR)
            gtk_widget_hide(self->info_bar);
        break;
    default:
        break;
    }
}

static void viv_vm_window_engine_ready_cb(VivVmWindow *self)
{
    viv_display_set_source(VIV_DISPLAY(self->display), viv_vm_get_display_source(self->vm));
    viv_snapshots_popover_set_engine(VIV_SNAPSHOTS_POPOVER(self->snapshots_popover),
                                     viv_vm_get_engine(self->vm));
}

static void viv_vm_window_engine_error_cb(VivVmWindow *self, const char *message)
{
    viv_vm_window_show_message(self, GTK_MESSAGE_WARNING, message);
}

static void viv_vm_window_grabbed_cb(VivVmWindow *self)
{
    gboolean grabbed = viv_display_get_grabbed(VIV_DISPLAY(self->display));

    gtk_widget_set_visible(self->grab_hint, grabbed);
    gtk_revealer_set_reveal_child(GTK_REVEALER(self->grab_hint), grabbed);
}

static void viv_vm_window_pause_action(GSimpleAction *action, GVariant *parameter, gpointer data)
{
    VivVmWindow *self = data;
    VivEngine *engine = viv_vm_get_engine(self->vm);

    if (engine == NULL)
        return;
    if (viv_vm_get_state(self->vm) == VIV_VM_STATE_PAUSED)
        viv_engine_resume(engine);
    else
        viv_engine_pause(engine);
}

static void viv_vm_window_reset_action(GSimpleAction *action, GVariant *parameter, gpointer data)
{
    VivVmWindow *self = data;

    if (viv_vm_get_engine(self->vm) != NULL)
        viv_engine_reset(viv_vm_get_engine(self->vm));
}

static void viv_vm_window_power_off_action(GSimpleAction *action, GVariant *parameter,
                                           gpointer data)
{
    viv_vm_stop(VIV_VM_WINDOW(data)->vm);
}

static void viv_vm_window_send_key_action(GSimpleAction *action, GVariant *parameter, gpointer data)
{
    VivVmWindow *self = data;
    const char *combination = g_variant_get_string(parameter, NULL);
    guint keys[3] = {VIV_QNUM_LEFT_CTRL, VIV_QNUM_LEFT_ALT, 0};
    guint function_key;

    if (g_str_equal(combination, "ctrl-alt-delete"))
        keys[2] = VIV_QNUM_DELETE;
    else if (g_str_equal(combination, "ctrl-alt-backspace"))
        keys[2] = VIV_QNUM_BACKSPACE;
    else if (sscanf(combination, "ctrl-alt-f%u", &function_key) == 1)
        keys[2] = viv_keymap_function_key(function_key);
    if (keys[2] == 0) {
        g_warning("Unknown key combination %s", combination);
        return;
    }
    viv_display_send_keys(VIV_DISPLAY(self->display), keys, G_N_ELEMENTS(keys));
}

typedef struct {
    VivVmWindow *window;
    char *drive;
} MediaRequest;

static void viv_vm_window_media_chosen_cb(GtkNativeDialog *chooser, int response,
                                          MediaRequest *request)
{
    VivVmWindow *self = request->window;

    if (response == GTK_RESPONSE_ACCEPT && self->vm != NULL &&
        viv_vm_get_engine(self->vm) != NULL) {
        g_autofree char *path = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(chooser));
        if (path != NULL)
            viv_engine_change_media(viv_vm_get_engine(self->vm), request->drive, path);
    }
    g_object_unref(request->window);
    g_free(request->drive);
    g_free(request);
    g_object_unref(chooser);
}

static void viv_vm_window_insert_media_action(GSimpleAction *action, GVariant *parameter,
                                              gpointer data)
{
    VivVmWindow *self = data;
    const char *drive = g_variant_get_string(parameter, NULL);
    gboolean cdrom = g_str_equal(drive, "cdrom");
    GtkFileChooserNative *chooser = gtk_file_chooser_native_new(
        cdrom ? _("Insert a CD Image") : _("Insert a Floppy Image"), GTK_WINDOW(self),
        GTK_FILE_CHOOSER_ACTION_OPEN, _("_Insert"), _("_Cancel"));
    MediaRequest *request = g_new0(MediaRequest, 1);

    request->window = g_object_ref(self);
    request->drive = g_strdup(drive);
    g_signal_connect(chooser, "response", G_CALLBACK(viv_vm_window_media_chosen_cb), request);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(chooser));
}

static void viv_vm_window_eject_media_action(GSimpleAction *action, GVariant *parameter,
                                             gpointer data)
{
    VivVmWindow *self = data;

    if (viv_vm_get_engine(self->vm) != NULL)
        viv_engine_eject_media(viv_vm_get_engine(self->vm), g_variant_get_string(parameter, NULL));
}

static VivDisplayScaling viv_vm_window_parse_scaling(const char *scaling)
{
    if (g_strcmp0(scaling, "integer") == 0)
        return VIV_DISPLAY_SCALING_INTEGER;
    if (g_strcmp0(scaling, "none") == 0)
        return VIV_DISPLAY_SCALING_NONE;
    return VIV_DISPLAY_SCALING_FIT;
}

static void viv_vm_window_scaling_action(GSimpleAction *action, GVariant *parameter, gpointer data)
{
    VivVmWindow *self = data;
    const char *scaling = g_variant_get_string(parameter, NULL);

    g_simple_action_set_state(action, parameter);
    viv_display_set_scaling(VIV_DISPLAY(self->display), viv_vm_window_parse_scaling(scaling));
    if (self->vm != NULL && g_strcmp0(viv_vm_get_scaling(self->vm), scaling) != 0) {
        viv_vm_set_scaling(self->vm, scaling);
        viv_vm_save(self->vm, NULL);
    }
}

static void viv_vm_window_fullscreen_action(GSimpleAction *action, GVariant *parameter,
                                            gpointer data)
{
    VivVmWindow *self = data;

    if (self->fullscreen)
        gtk_window_unfullscreen(GTK_WINDOW(self));
    else
        gtk_window_fullscreen(GTK_WINDOW(self));
}

static gboolean viv_vm_window_state_event(GtkWidget *widget, GdkEventWindowState *event)
{
    VivVmWindow *self = VIV_VM_WINDOW(widget);

    self->fullscreen = (event->new_window_state & GDK_WINDOW_STATE_FULLSCREEN) != 0;
    return GTK_WIDGET_CLASS(viv_vm_window_parent_class)->window_state_event(widget, event);
}

static const GActionEntry window_actions[] = {
    {"pause", viv_vm_window_pause_action, NULL, NULL, NULL, {0}},
    {"reset", viv_vm_window_reset_action, NULL, NULL, NULL, {0}},
    {"power-off", viv_vm_window_power_off_action, NULL, NULL, NULL, {0}},
    {"send-key", viv_vm_window_send_key_action, "s", NULL, NULL, {0}},
    {"insert-media", viv_vm_window_insert_media_action, "s", NULL, NULL, {0}},
    {"eject-media", viv_vm_window_eject_media_action, "s", NULL, NULL, {0}},
    {"scaling", viv_vm_window_scaling_action, "s", "'fit'", NULL, {0}},
    {"fullscreen", viv_vm_window_fullscreen_action, NULL, NULL, NULL, {0}},
};

/* While the display has the keyboard, every key is the guest's: window
 * shortcuts and mnemonics must not eat Ctrl+Q or Alt+F. The one exception is F11
 * without the grab, which toggles fullscreen; with the grab, F11 is the guest's. */
static gboolean viv_vm_window_key_event(GtkWidget *widget, GdkEventKey *event)
{
    VivVmWindow *self = VIV_VM_WINDOW(widget);
    VivDisplay *display = VIV_DISPLAY(self->display);

    if (event->keyval == GDK_KEY_F11 && !viv_display_get_grabbed(display)) {
        if (event->type == GDK_KEY_PRESS)
            g_action_group_activate_action(G_ACTION_GROUP(self), "fullscreen", NULL);
        return TRUE;
    }
    if (gtk_widget_has_focus(self->display) && viv_display_get_source(display))
        return gtk_widget_event(self->display, (GdkEvent *)event);
    if (event->type == GDK_KEY_PRESS)
        return GTK_WIDGET_CLASS(viv_vm_window_parent_class)->key_press_event(widget, event);
    return GTK_WIDGET_CLASS(viv_vm_window_parent_class)->key_release_event(widget, event);
}

static void viv_vm_window_dispose(GObject *object)
{
    VivVmWindow *self = VIV_VM_WINDOW(object);

    if (self->vm != NULL)
        g_signal_handlers_disconnect_by_data(self->vm, self);
    if (self->remote != NULL)
        g_signal_handlers_disconnect_by_data(self->remote, self);
    g_clear_object(&self->vm);
    g_clear_object(&self->remote);
    G_OBJECT_CLASS(viv_vm_window_parent_class)->dispose(object);
}

static void viv_vm_window_class_init(VivVmWindowClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    G_OBJECT_CLASS(klass)->dispose = viv_vm_window_dispose;
    widget_class->key_press_event = viv_vm_window_key_event;
    widget_class->key_release_event = viv_vm_window_key_event;
    widget_class->window_state_event = viv_vm_window_state_event;

    g_type_ensure(VIV_TYPE_DISPLAY);
    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/vivarium/Vivarium/ui/viv-vm-window.ui");
    gtk_widget_class_bind_template_child(widget_class, VivVmWindow, header_bar);
    gtk_widget_class_bind_template_child(widget_class, VivVmWindow, machine_controls);
    gtk_widget_class_bind_template_child(widget_class, VivVmWindow, pause_button);
    gtk_widget_class_bind_template_child(widget_class, VivVmWindow, media_button);
    gtk_widget_class_bind_template_child(widget_class, VivVmWindow, snapshots_button);
    gtk_widget_class_bind_template_child(widget_class, VivVmWindow, info_bar);
    gtk_widget_class_bind_template_child(widget_class, VivVmWindow, info_label);
    gtk_widget_class_bind_template_child(widget_class, VivVmWindow, overlay);
    gtk_widget_class_bind_template_child(widget_class, VivVmWindow, display);
    gtk_widget_class_bind_template_child(widget_class, VivVmWindow, grab_hint);
    gtk_widget_class_bind_template_callback(widget_class, viv_vm_window_info_bar_response_cb);
}

static void viv_vm_window_init(VivVmWindow *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    g_action_map_add_action_entries(G_ACTION_MAP(self), window_actions,
                                    G_N_ELEMENTS(window_actions), self);
    gtk_overlay_set_overlay_pass_through(GTK_OVERLAY(self->overlay), self->grab_hint, TRUE);
    gtk_widget_set_visible(self->grab_hint, FALSE);
    self->snapshots_popover = viv_snapshots_popover_new();
    gtk_menu_button_set_popover(GTK_MENU_BUTTON(self->snapshots_button), self->snapshots_popover);
    g_signal_connect_swapped(self->display, "notify::grabbed", G_CALLBACK(viv_vm_window_grabbed_cb),
                             self);
}

static void viv_vm_window_apply_scaling(VivVmWindow *self, const char *scaling)
{
    /* Activation, not change_action_state: the action has no change-state
     * handler, and activating it both records the state and applies it. */
    g_action_group_activate_action(G_ACTION_GROUP(self), "scaling", g_variant_new_string(scaling));
}

VivVmWindow *viv_vm_window_new(VivApplication *app, VivVm *vm)
{
    VivVmWindow *self = g_object_new(VIV_TYPE_VM_WINDOW, "application", app, NULL);
    GSettings *settings = viv_application_get_settings(app);

    self->app = app;
    self->vm = g_object_ref(vm);
    gtk_window_set_title(GTK_WINDOW(self), viv_vm_get_name(vm));
    gtk_header_bar_set_title(GTK_HEADER_BAR(self->header_bar), viv_vm_get_name(vm));
    viv_display_set_smooth(VIV_DISPLAY(self->display),
                           g_settings_get_boolean(settings, "smooth-scaling"));
    viv_vm_window_apply_scaling(self, viv_vm_get_scaling(vm));
    g_signal_connect_swapped(vm, "notify::state", G_CALLBACK(viv_vm_window_update_state), self);
    g_signal_connect_swapped(vm, "engine-ready", G_CALLBACK(viv_vm_window_engine_ready_cb), self);
    g_signal_connect_swapped(vm, "engine-error", G_CALLBACK(viv_vm_window_engine_error_cb), self);
    if (viv_vm_get_display_source(vm) != NULL)
        viv_vm_window_engine_ready_cb(self);
    viv_vm_window_update_state(self);
    gtk_widget_grab_focus(self->display);
    return self;
}

static void viv_vm_window_remote_disconnected_cb(VivVmWindow *self)
{
    viv_display_release_grab(VIV_DISPLAY(self->display));
    gtk_header_bar_set_subtitle(GTK_HEADER_BAR(self->header_bar), _("Disconnected"));
    viv_vm_window_show_message(self, GTK_MESSAGE_ERROR,
                               _("The remote machine closed the connection."));
}

VivVmWindow *viv_vm_window_new_remote(VivApplication *app, VivVncSource *source)
{
    VivVmWindow *self = g_object_new(VIV_TYPE_VM_WINDOW, "application", app, NULL);
    const char *desktop = viv_vnc_source_get_desktop_name(source);
    const char *title = *desktop != '\0' ? desktop : viv_vnc_source_get_address(source);

    self->app = app;
    self->remote = g_object_ref(source);
    gtk_window_set_title(GTK_WINDOW(self), title);
    gtk_header_bar_set_title(GTK_HEADER_BAR(self->header_bar), title);
    gtk_header_bar_set_subtitle(GTK_HEADER_BAR(self->header_bar),
                                viv_vnc_source_get_address(source));
    gtk_widget_hide(self->machine_controls);
    gtk_widget_hide(self->media_button);
    gtk_widget_hide(self->snapshots_button);
    viv_vm_window_enable(self, "pause", FALSE);
    viv_vm_window_enable(self, "reset", FALSE);
    viv_vm_window_enable(self, "power-off", FALSE);
    viv_vm_window_enable(self, "insert-media", FALSE);
    viv_vm_window_enable(self, "eject-media", FALSE);
    viv_display_set_source(VIV_DISPLAY(self->display), VIV_DISPLAY_SOURCE(source));
    g_signal_connect_swapped(source, "disconnected",
                             G_CALLBACK(viv_vm_window_remote_disconnected_cb), self);
    gtk_widget_grab_focus(self->display);
    return self;
}

VivVm *viv_vm_window_get_vm(VivVmWindow *self)
{
    return self->vm;
}
