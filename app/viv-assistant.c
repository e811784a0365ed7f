#include "config.h"

#include "viv-assistant.h"

#include <glib/gi18n.h>

struct _VivAssistant {
    GtkAssistant parent_instance;

    GtkWidget *source_page;
    GtkWidget *details_page;
    GtkWidget *cdrom_radio;
    GtkWidget *floppy_radio;
    GtkWidget *disk_radio;
    GtkWidget *empty_radio;
    GtkWidget *file_box;
    GtkWidget *path_entry;
    GtkWidget *name_entry;
    GtkWidget *memory_spin;
    GtkWidget *disk_label;
    GtkWidget *disk_spin;
    GtkWidget *disk_note;
    GtkWidget *summary_label;

    VivApplication *app;
    /* The name the assistant suggested; replaced when the image changes, unless
     * the person typed their own. */
    char *suggested_name;
    /* Apply failed: the assistant stays open on its summary, so that the
     * person can go back and change what the error names. */
    gboolean apply_failed;
};

G_DEFINE_FINAL_TYPE(VivAssistant, viv_assistant, GTK_TYPE_ASSISTANT)

static VivInstallSource viv_assistant_source(VivAssistant *self)
{
    if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(self->floppy_radio)))
        return VIV_INSTALL_FROM_FLOPPY;
    if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(self->disk_radio)))
        return VIV_INSTALL_FROM_DISK_IMAGE;
    if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(self->empty_radio)))
        return VIV_INSTALL_EMPTY;
    return VIV_INSTALL_FROM_CDROM;
}

static const char *viv_assistant_path(VivAssistant *self)
{
    return gtk_entry_get_text(GTK_ENTRY(self->path_entry));
}

static void viv_assistant_source_changed_cb(VivAssistant *self)
{
    VivInstallSource source = viv_assistant_source(self);
    gboolean needs_file = source != VIV_INSTALL_EMPTY;
    const char *path = viv_assistant_path(self);

    gtk_widget_set_sensitive(self->file_box, needs_file);
    gtk_assistant_set_page_complete(
        GTK_ASSISTANT(self), self->source_page,
        !needs_file || (g_path_is_absolute(path) && g_file_test(path, G_FILE_TEST_IS_REGULAR)));
}

static void viv_assistant_details_changed_cb(VivAssistant *self)
{
    const char *name = gtk_entry_get_text(GTK_ENTRY(self->name_entry));
    g_autofree char *stripped = g_strstrip(g_strdup(name));

    gtk_assistant_set_page_complete(GTK_ASSISTANT(self), self->details_page, *stripped != '\0');
}

static void viv_assistant_file_chosen_cb(GtkNativeDialog *chooser, int response, VivAssistant *self)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        g_autofree char *path = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(chooser));
        gtk_entry_set_text(GTK_ENTRY(self->path_entry), path != NULL ? path : "");
    }
    g_object_unref(chooser);
}

static void viv_assistant_browse_clicked_cb(VivAssistant *self)
{
    GtkFileChooserNative *chooser =
        gtk_file_chooser_native_new(_("Choose an Image"), GTK_WINDOW(self),
                                    GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));
    GtkFileFilter *filter = gtk_file_filter_new();

    switch (viv_assistant_source(self)) {
    case VIV_INSTALL_FROM_CDROM:
        gtk_file_filter_set_name(filter, _("CD and DVD images"));
        gtk_file_filter_add_pattern(filter, "*.[iI][sS][oO]");
        break;
    case VIV_INSTALL_FROM_FLOPPY:
        gtk_file_filter_set_name(filter, _("Floppy images"));
        gtk_file_filter_add_pattern(filter, "*.[iI][mM][gG]");
        gtk_file_filter_add_pattern(filter, "*.[iI][mM][aA]");
        gtk_file_filter_add_pattern(filter, "*.[vV][fF][dD]");
        break;
    default:
        gtk_file_filter_set_name(filter, _("Disk images"));
        gtk_file_filter_add_pattern(filter, "*.[iI][mM][gG]");
        gtk_file_filter_add_pattern(filter, "*.[qQ][cC][oO][wW]2");
        gtk_file_filter_add_pattern(filter, "*.[rR][aA][wW]");
        break;
    }
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(chooser), filter);
    g_signal_connect(chooser, "response", G_CALLBACK(viv_assistant_file_chosen_cb), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(chooser));
}

static char *viv_assistant_name_from_path(const char *path)
{
    g_autofree char *base = g_path_get_basename(path);
    char *dot = strrchr(base, '.');

    if (dot != NULL && dot != base)
        *dot = '\0';
    return g_steal_pointer(&base);
}

static void viv_assistant_prepare_details(VivAssistant *self)
{
    VivInstallSource source = viv_assistant_source(self);
    const char *current = gtk_entry_get_text(GTK_ENTRY(self->name_entry));
    g_autofree char *suggestion = source == VIV_INSTALL_EMPTY
                                      ? g_strdup(_("New Machine"))
                                      : viv_assistant_name_from_path(viv_assistant_path(self));
    gboolean new_disk = source != VIV_INSTALL_FROM_DISK_IMAGE;

    if (*current == '\0' || g_strcmp0(current, self->suggested_name) == 0) {
        gtk_entry_set_text(GTK_ENTRY(self->name_entry), suggestion);
        g_free(self->suggested_name);
        self->suggested_name = g_steal_pointer(&suggestion);
    }
    gtk_widget_set_visible(self->disk_label, new_disk);
    gtk_widget_set_visible(self->disk_spin, new_disk);
    gtk_widget_set_visible(self->disk_note, new_disk);
    viv_assistant_details_changed_cb(self);
}

static void viv_assistant_prepare_summary(VivAssistant *self)
{
    VivInstallSource source = viv_assistant_source(self);
    g_autoptr(GString) summary = g_string_new(NULL);
    const char *name = gtk_entry_get_text(GTK_ENTRY(self->name_entry));
    int memory = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(self->memory_spin));
    int disk = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(self->disk_spin));

    g_string_append_printf(summary, _("Name: %s"), name);
    g_string_append_c(summary, '\n');
    g_string_append_printf(summary, _("Memory: %d MiB"), memory);
    g_string_append_c(summary, '\n');
    switch (source) {
    case VIV_INSTALL_FROM_CDROM:
        g_string_append_printf(summary, _("Starts from the CD image %s"), viv_assistant_path(self));
        break;
    case VIV_INSTALL_FROM_FLOPPY:
        g_string_append_printf(summary, _("Starts from the floppy image %s"),
                               viv_assistant_path(self));
        break;
    case VIV_INSTALL_FROM_DISK_IMAGE:
        g_string_append_printf(summary, _("Uses the disk image %s"), viv_assistant_path(self));
        break;
    case VIV_INSTALL_EMPTY:
        g_string_append(summary, _("Starts with an empty disk"));
        break;
    }
    if (source != VIV_INSTALL_FROM_DISK_IMAGE) {
        g_string_append_c(summary, '\n');
        g_string_append_printf(summary, _("New hard disk: %d GiB"), disk);
    }
    gtk_label_set_text(GTK_LABEL(self->summary_label), summary->str);
}

static void viv_assistant_prepare_cb(VivAssistant *self, GtkWidget *page)
{
    if (page == self->details_page)
        viv_assistant_prepare_details(self);
    else if (page == self->summary_label)
        viv_assistant_prepare_summary(self);
}

static void viv_assistant_apply_cb(VivAssistant *self)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *name = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(self->name_entry))));
    GSettings *settings = viv_application_get_settings(self->app);
    int memory = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(self->memory_spin));
    int disk = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(self->disk_spin));
    g_autoptr(VivVm) vm =
        viv_library_create(viv_application_get_library(self->app), name, viv_assistant_source(self),
                           viv_assistant_path(self), memory, disk, &error);

    if (vm == NULL) {
        self->apply_failed = TRUE;
        viv_application_show_error(GTK_WINDOW(self), _("The machine could not be created"),
                                   error->message);
        return;
    }
    g_settings_set_int(settings, "default-memory", memory);
    g_settings_set_int(settings, "default-disk-size", disk);
}

/* GtkAssistant closes itself after Apply on its last page; not after a
 * failed one. */
static void viv_assistant_close_cb(VivAssistant *self)
{
    if (self->apply_failed) {
        self->apply_failed = FALSE;
        return;
    }
    gtk_widget_destroy(GTK_WIDGET(self));
}

static void viv_assistant_finalize(GObject *object)
{
    g_free(VIV_ASSISTANT(object)->suggested_name);
    G_OBJECT_CLASS(viv_assistant_parent_class)->finalize(object);
}

static void viv_assistant_class_init(VivAssistantClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    G_OBJECT_CLASS(klass)->finalize = viv_assistant_finalize;
    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/vivarium/Vivarium/ui/viv-assistant.ui");
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, source_page);
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, details_page);
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, cdrom_radio);
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, floppy_radio);
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, disk_radio);
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, empty_radio);
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, file_box);
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, path_entry);
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, name_entry);
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, memory_spin);
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, disk_label);
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, disk_spin);
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, disk_note);
    gtk_widget_class_bind_template_child(widget_class, VivAssistant, summary_label);
    gtk_widget_class_bind_template_callback(widget_class, viv_assistant_source_changed_cb);
    gtk_widget_class_bind_template_callback(widget_class, viv_assistant_details_changed_cb);
    gtk_widget_class_bind_template_callback(widget_class, viv_assistant_browse_clicked_cb);
    gtk_widget_class_bind_template_callback(widget_class, viv_assistant_prepare_cb);
    gtk_widget_class_bind_template_callback(widget_class, viv_assistant_apply_cb);
    gtk_widget_class_bind_template_callback(widget_class, viv_assistant_close_cb);
    gtk_widget_class_bind_template_callback(widget_class, gtk_widget_destroy);
}

static void viv_assistant_init(VivAssistant *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    viv_assistant_source_changed_cb(self);
}

GtkWidget *viv_assistant_new(VivApplication *app, GtkWindow *parent)
{
    VivAssistant *self =
        g_object_new(VIV_TYPE_ASSISTANT, "transient-for", parent, "use-header-bar", 1, NULL);
    GSettings *settings = viv_application_get_settings(app);

    self->app = app;
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(self->memory_spin),
                              g_settings_get_int(settings, "default-memory"));
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(self->disk_spin),
                              g_settings_get_int(settings, "default-disk-size"));
    return GTK_WIDGET(self);
}
