#include "config.h"

#include "viv-window.h"

#include "viv-vm-card.h"

struct _VivWindow {
    GtkApplicationWindow parent_instance;

    GtkWidget *search_button;
    GtkWidget *search_bar;
    GtkWidget *search_entry;
    GtkWidget *stack;
    GtkWidget *flow_box;

    VivApplication *app;
    GListModel *vms;
};

G_DEFINE_FINAL_TYPE(VivWindow, viv_window, GTK_TYPE_APPLICATION_WINDOW)

static gboolean viv_window_card_matches(VivWindow *self, GtkFlowBoxChild *child)
{
    const char *query = gtk_entry_get_text(GTK_ENTRY(self->search_entry));
    VivVmCard *card = VIV_VM_CARD(gtk_bin_get_child(GTK_BIN(child)));
    g_autofree char *name = NULL;
    g_autofree char *needle = NULL;

    if (query == NULL || *query == '\0')
        return TRUE;
    name = g_utf8_casefold(viv_vm_get_name(viv_vm_card_get_vm(card)), -1);
    needle = g_utf8_casefold(query, -1);
    return strstr(name, needle) != NULL;
}

static void viv_window_update_page(VivWindow *self)
{
    guint visible = 0;

    if (g_list_model_get_n_items(self->vms) == 0) {
        gtk_stack_set_visible_child_name(GTK_STACK(self->stack), "empty");
        return;
    }
    /* A GtkFlowBox bound to a model ignores filter functions, so the search
     * hides non-matching children itself. */
    for (int i = 0;; i++) {
        GtkFlowBoxChild *child = gtk_flow_box_get_child_at_index(GTK_FLOW_BOX(self->flow_box), i);
        if (child == NULL)
            break;
        gboolean matches = viv_window_card_matches(self, child);
        gtk_widget_set_visible(GTK_WIDGET(child), matches);
        visible += matches;
    }
    gtk_stack_set_visible_child_name(GTK_STACK(self->stack), visible > 0 ? "library" : "no-match");
}

static void viv_window_search_changed_cb(VivWindow *self)
{
    viv_window_update_page(self);
}

static GtkWidget *viv_window_create_card_cb(gpointer item, gpointer data)
{
    VivWindow *self = data;

    return viv_vm_card_new(self->app, VIV_VM(item));
}

static void viv_window_items_changed_cb(GListModel *model, guint position, guint removed,
                                        guint added, VivWindow *self)
{
    viv_window_update_page(self);
}

static void viv_window_save_size(VivWindow *self)
{
    GSettings *settings = viv_application_get_settings(self->app);
    int width, height;

    gtk_window_get_size(GTK_WINDOW(self), &width, &height);
    g_settings_set_boolean(settings, "window-maximized", gtk_window_is_maximized(GTK_WINDOW(self)));
    if (!gtk_window_is_maximized(GTK_WINDOW(self))) {
        g_settings_set_int(settings, "window-width", width);
        g_settings_set_int(settings, "window-height", height);
    }
}

/* Typing anywhere in the library starts a search, as in GNOME's own apps. */
static gboolean viv_window_key_press_event(GtkWidget *widget, GdkEventKey *event)
{
    VivWindow *self = VIV_WINDOW(widget);

    if (GTK_WIDGET_CLASS(viv_window_parent_class)->key_press_event(widget, event))
        return GDK_EVENT_STOP;
    return gtk_search_bar_handle_event(GTK_SEARCH_BAR(self->search_bar), (GdkEvent *)event);
}

static void viv_window_destroy(GtkWidget *widget)
{
    VivWindow *self = VIV_WINDOW(widget);

    if (self->vms != NULL) {
        viv_window_save_size(self);
        g_signal_handlers_disconnect_by_data(self->vms, self);
        self->vms = NULL;
    }
    GTK_WIDGET_CLASS(viv_window_parent_class)->destroy(widget);
}

static void viv_window_class_init(VivWindowClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    widget_class->destroy = viv_window_destroy;
    widget_class->key_press_event = viv_window_key_press_event;
    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/vivarium/Vivarium/ui/viv-window.ui");
    gtk_widget_class_bind_template_child(widget_class, VivWindow, search_button);
    gtk_widget_class_bind_template_child(widget_class, VivWindow, search_bar);
    gtk_widget_class_bind_template_child(widget_class, VivWindow, search_entry);
    gtk_widget_class_bind_template_child(widget_class, VivWindow, stack);
    gtk_widget_class_bind_template_child(widget_class, VivWindow, flow_box);
    gtk_widget_class_bind_template_callback(widget_class, viv_window_search_changed_cb);
}

static void viv_window_init(VivWindow *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    g_object_bind_property(self->search_button, "active", self->search_bar, "search-mode-enabled",
                           G_BINDING_BIDIRECTIONAL);
    gtk_search_bar_connect_entry(GTK_SEARCH_BAR(self->search_bar), GTK_ENTRY(self->search_entry));
}

GtkWidget *viv_window_new(VivApplication *app)
{
    VivWindow *self = g_object_new(VIV_TYPE_WINDOW, "application", app, NULL);
    GSettings *settings = viv_application_get_settings(app);

    self->app = app;
    self->vms = viv_library_get_model(viv_application_get_library(app));
    gtk_window_set_default_size(GTK_WINDOW(self), g_settings_get_int(settings, "window-width"),
                                g_settings_get_int(settings, "window-height"));
    if (g_settings_get_boolean(settings, "window-maximized"))
        gtk_window_maximize(GTK_WINDOW(self));
    gtk_flow_box_bind_model(GTK_FLOW_BOX(self->flow_box), self->vms, viv_window_create_card_cb,
                            self, NULL);
    g_signal_connect(self->vms, "items-changed", G_CALLBACK(viv_window_items_changed_cb), self);
    viv_window_update_page(self);
    return GTK_WIDGET(self);
}
