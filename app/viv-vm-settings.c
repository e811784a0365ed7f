#include "config.h"

#include "viv-vm-settings.h"

#include <glib/gi18n.h>

struct _VivVmSettings {
    GtkDialog parent_instance;

    GtkWidget *name_entry;
    GtkWidget *memory_spin;
    GtkWidget *hard_disk_entry;
    GtkWidget *cdrom_entry;
    GtkWidget *floppy_entry;
    GtkWidget *boot_combo;
    GtkWidget *backend_combo;
    GtkWidget *scaling_combo;
    GtkWidget *sound_switch;
    GtkWidget *running_note;

    VivVm *vm;
};

G_DEFINE_FINAL_TYPE(VivVmSettings, viv_vm_settings, GTK_TYPE_DIALOG)

static void viv_vm_settings_set_entry(GtkWidget *entry, const char *text)
{
    gtk_entry_set_text(GTK_ENTRY(entry), text != NULL ? text : "");
}

static void viv_vm_settings_set_combo(GtkWidget *combo, const char *id)
{
    /* A value written by a newer Vivarium that this one does not offer stays
     * visible as itself rather than silently becoming the first choice. */
    if (!gtk_combo_box_set_active_id(GTK_COMBO_BOX(combo), id)) {
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(combo), id, id);
        gtk_combo_box_set_active_id(GTK_COMBO_BOX(combo), id);
    }
}

static void viv_vm_settings_load(VivVmSettings *self)
{
    VivVmState state = viv_vm_get_state(self->vm);

    viv_vm_settings_set_entry(self->name_entry, viv_vm_get_name(self->vm));
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(self->memory_spin), viv_vm_get_memory(self->vm));
    viv_vm_settings_set_entry(self->hard_disk_entry, viv_vm_get_hard_disk(self->vm));
    viv_vm_settings_set_entry(self->cdrom_entry, viv_vm_get_cdrom(self->vm));
    viv_vm_settings_set_entry(self->floppy_entry, viv_vm_get_floppy(self->vm));
    viv_vm_settings_set_combo(self->boot_combo, viv_vm_get_boot_order(self->vm));
    viv_vm_settings_set_combo(self->backend_combo, viv_vm_get_backend(self->vm));
    viv_vm_settings_set_combo(self->scaling_combo, viv_vm_get_scaling(self->vm));
    gtk_switch_set_active(GTK_SWITCH(self->sound_switch), viv_vm_get_sound(self->vm));
    gtk_widget_set_visible(self->running_note,
                           state != VIV_VM_STATE_STOPPED && state != VIV_VM_STATE_FAILED);
}

static gboolean viv_vm_settings_store(VivVmSettings *self, GError **error)
{
    g_autofree char *name = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(self->name_entry))));

    if (*name == '\0') {
        g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            _("A machine needs a name."));
        return FALSE;
    }
    viv_vm_set_name(self->vm, name);
    viv_vm_set_memory(self->vm,
                      gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(self->memory_spin)));
    viv_vm_set_hard_disk(self->vm, gtk_entry_get_text(GTK_ENTRY(self->hard_disk_entry)));
    viv_vm_set_cdrom(self->vm, gtk_entry_get_text(GTK_ENTRY(self->cdrom_entry)));
    viv_vm_set_floppy(self->vm, gtk_entry_get_text(GTK_ENTRY(self->floppy_entry)));
    viv_vm_set_boot_order(self->vm, gtk_combo_box_get_active_id(GTK_COMBO_BOX(self->boot_combo)));
    viv_vm_set_backend(self->vm, gtk_combo_box_get_active_id(GTK_COMBO_BOX(self->backend_combo)));
    viv_vm_set_scaling(self->vm, gtk_combo_box_get_active_id(GTK_COMBO_BOX(self->scaling_combo)));
    viv_vm_set_sound(self->vm, gtk_switch_get_active(GTK_SWITCH(self->sound_switch)));
    return viv_vm_save(self->vm, error);
}

static void viv_vm_settings_response_cb(GtkDialog *dialog, int response)
{
    VivVmSettings *self = VIV_VM_SETTINGS(dialog);

    if (response == GTK_RESPONSE_OK) {
        g_autoptr(GError) error = NULL;
        if (!viv_vm_settings_store(self, &error)) {
            GtkWidget *message = gtk_message_dialog_new(
                GTK_WINDOW(self), GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                GTK_MESSAGE_ERROR, GTK_BUTTONS_CLOSE, "%s", _("The settings could not be saved"));
            gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(message), "%s",
                                                     error->message);
            g_signal_connect(message, "response", G_CALLBACK(gtk_widget_destroy), NULL);
            gtk_widget_show(message);
            return;
        }
    }
    gtk_widget_destroy(GTK_WIDGET(dialog));
}

static void viv_vm_settings_file_chosen_cb(GtkNativeDialog *chooser, int response, GtkEntry *entry)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        g_autofree char *path = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(chooser));
        gtk_entry_set_text(entry, path != NULL ? path : "");
    }
    g_object_unref(entry);
    g_object_unref(chooser);
}

static void viv_vm_settings_browse_clicked_cb(GtkEntry *entry, GtkButton *button)
{
    GtkWindow *window = GTK_WINDOW(gtk_widget_get_toplevel(GTK_WIDGET(button)));
    GtkFileChooserNative *chooser = gtk_file_chooser_native_new(
        _("Choose an Image"), window, GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));

    g_signal_connect(chooser, "response", G_CALLBACK(viv_vm_settings_file_chosen_cb),
                     g_object_ref(entry));
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(chooser));
}

static void viv_vm_settings_dispose(GObject *object)
{
    g_clear_object(&VIV_VM_SETTINGS(object)->vm);
    G_OBJECT_CLASS(viv_vm_settings_parent_class)->dispose(object);
}

static void viv_vm_settings_class_init(VivVmSettingsClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    G_OBJECT_CLASS(klass)->dispose = viv_vm_settings_dispose;
    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/vivarium/Vivarium/ui/viv-vm-settings.ui");
    gtk_widget_class_bind_template_child(widget_class, VivVmSettings, name_entry);
    gtk_widget_class_bind_template_child(widget_class, VivVmSettings, memory_spin);
    gtk_widget_class_bind_template_child(widget_class, VivVmSettings, hard_disk_entry);
    gtk_widget_class_bind_template_child(widget_class, VivVmSettings, cdrom_entry);
    gtk_widget_class_bind_template_child(widget_class, VivVmSettings, floppy_entry);
    gtk_widget_class_bind_template_child(widget_class, VivVmSettings, boot_combo);
    gtk_widget_class_bind_template_child(widget_class, VivVmSettings, backend_combo);
    gtk_widget_class_bind_template_child(widget_class, VivVmSettings, scaling_combo);
    gtk_widget_class_bind_template_child(widget_class, VivVmSettings, sound_switch);
    gtk_widget_class_bind_template_child(widget_class, VivVmSettings, running_note);
    gtk_widget_class_bind_template_callback(widget_class, viv_vm_settings_response_cb);
    gtk_widget_class_bind_template_callback(widget_class, viv_vm_settings_browse_clicked_cb);
}

static void viv_vm_settings_init(VivVmSettings *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
}

GtkWidget *viv_vm_settings_new(VivVm *vm, GtkWindow *parent)
{
    VivVmSettings *self =
        g_object_new(VIV_TYPE_VM_SETTINGS, "transient-for", parent, "use-header-bar", 1, NULL);

    self->vm = g_object_ref(vm);
    viv_vm_settings_load(self);
    return GTK_WIDGET(self);
}
