#include "config.h"

#include "viv-vm-card.h"

#include <glib/gi18n.h>

struct _VivVmCard {
    GtkBox parent_instance;

    GtkWidget *thumbnail;
    GtkWidget *name_label;
    GtkWidget *state_label;
    GtkWidget *error_label;
    GtkWidget *start_button;
    GtkWidget *stop_button;

    VivApplication *app;
    VivVm *vm;
};

G_DEFINE_FINAL_TYPE(VivVmCard, viv_vm_card, GTK_TYPE_BOX)

static void viv_vm_card_update(VivVmCard *self)
{
    VivVmState state = viv_vm_get_state(self->vm);
    gboolean active = state == VIV_VM_STATE_RUNNING || state == VIV_VM_STATE_PAUSED ||
                      state == VIV_VM_STATE_STARTING;
    const char *error = viv_vm_get_error_message(self->vm);
    GdkPixbuf *thumbnail = viv_vm_get_thumbnail(self->vm);

    gtk_label_set_text(GTK_LABEL(self->name_label), viv_vm_get_name(self->vm));
    gtk_label_set_text(GTK_LABEL(self->state_label), viv_vm_describe_state(self->vm));
    gtk_label_set_text(GTK_LABEL(self->error_label), error != NULL ? error : "");
    gtk_widget_set_visible(self->error_label, error != NULL);
    gtk_button_set_label(GTK_BUTTON(self->start_button), active ? _("Show") : _("Start"));
    gtk_widget_set_sensitive(self->start_button, state != VIV_VM_STATE_STOPPING);
    gtk_widget_set_sensitive(self->stop_button, active);
    if (thumbnail != NULL)
        gtk_image_set_from_pixbuf(GTK_IMAGE(self->thumbnail), thumbnail);
    else
        gtk_image_set_from_icon_name(GTK_IMAGE(self->thumbnail), "computer-symbolic",
                                     GTK_ICON_SIZE_DIALOG);
    /* Assistive technologies find a card by its machine's name. */
    atk_object_set_name(gtk_widget_get_accessible(GTK_WIDGET(self)), viv_vm_get_name(self->vm));
}

static void viv_vm_card_start_clicked_cb(VivVmCard *self)
{
    if (viv_vm_get_engine(self->vm) != NULL)
        viv_application_show_vm(self->app, self->vm);
    else
        viv_application_start_vm(self->app, self->vm);
}

static void viv_vm_card_stop_clicked_cb(VivVmCard *self)
{
    viv_vm_stop(self->vm);
}

static GtkWindow *viv_vm_card_window(VivVmCard *self)
{
    return GTK_WINDOW(gtk_widget_get_toplevel(GTK_WIDGET(self)));
}

static void viv_vm_card_settings_clicked_cb(VivVmCard *self)
{
    viv_application_edit_vm(self->app, self->vm, viv_vm_card_window(self));
}

static void viv_vm_card_delete_clicked_cb(VivVmCard *self)
{
    viv_application_confirm_delete(self->app, self->vm, viv_vm_card_window(self));
}

static void viv_vm_card_dispose(GObject *object)
{
    VivVmCard *self = VIV_VM_CARD(object);

    if (self->vm != NULL)
        g_signal_handlers_disconnect_by_data(self->vm, self);
    g_clear_object(&self->vm);
    G_OBJECT_CLASS(viv_vm_card_parent_class)->dispose(object);
}

static void viv_vm_card_class_init(VivVmCardClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    G_OBJECT_CLASS(klass)->dispose = viv_vm_card_dispose;
    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/vivarium/Vivarium/ui/viv-vm-card.ui");
    gtk_widget_class_bind_template_child(widget_class, VivVmCard, thumbnail);
    gtk_widget_class_bind_template_child(widget_class, VivVmCard, name_label);
    gtk_widget_class_bind_template_child(widget_class, VivVmCard, state_label);
    gtk_widget_class_bind_template_child(widget_class, VivVmCard, error_label);
    gtk_widget_class_bind_template_child(widget_class, VivVmCard, start_button);
    gtk_widget_class_bind_template_child(widget_class, VivVmCard, stop_button);
    gtk_widget_class_bind_template_callback(widget_class, viv_vm_card_start_clicked_cb);
    gtk_widget_class_bind_template_callback(widget_class, viv_vm_card_stop_clicked_cb);
    gtk_widget_class_bind_template_callback(widget_class, viv_vm_card_settings_clicked_cb);
    gtk_widget_class_bind_template_callback(widget_class, viv_vm_card_delete_clicked_cb);
    gtk_widget_class_set_accessible_role(widget_class, ATK_ROLE_PANEL);
}

static void viv_vm_card_init(VivVmCard *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
}

GtkWidget *viv_vm_card_new(VivApplication *app, VivVm *vm)
{
    VivVmCard *self = g_object_new(VIV_TYPE_VM_CARD, NULL);

    self->app = app;
    self->vm = g_object_ref(vm);
    g_signal_connect_swapped(vm, "notify", G_CALLBACK(viv_vm_card_update), self);
    g_signal_connect_swapped(vm, "changed", G_CALLBACK(viv_vm_card_update), self);
    viv_vm_card_update(self);
    gtk_widget_show(GTK_WIDGET(self));
    return GTK_WIDGET(self);
}

VivVm *viv_vm_card_get_vm(VivVmCard *self)
{
    return self->vm;
}
