#include "config.h"

#include "viv-vnc-dialog.h"

#include "viv-vm-window.h"
#include "viv-vnc-source.h"

#include <glib/gi18n.h>

struct _VivVncDialog {
    GtkDialog parent_instance;

    GtkWidget *host_entry;
    GtkWidget *port_spin;
    GtkWidget *password_entry;
    GtkWidget *spinner;
    GtkWidget *status_label;
    GtkWidget *connect_button;

    VivApplication *app;
    GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE(VivVncDialog, viv_vnc_dialog, GTK_TYPE_DIALOG)

static void viv_vnc_dialog_set_busy(VivVncDialog *self, gboolean busy)
{
    if (busy)
        gtk_spinner_start(GTK_SPINNER(self->spinner));
    else
        gtk_spinner_stop(GTK_SPINNER(self->spinner));
    gtk_widget_set_sensitive(self->connect_button, !busy);
    gtk_widget_set_sensitive(self->host_entry, !busy);
    gtk_widget_set_sensitive(self->port_spin, !busy);
    gtk_widget_set_sensitive(self->password_entry, !busy);
}

static void viv_vnc_dialog_connected_cb(GObject *source, GAsyncResult *result, gpointer data)
{
    g_autoptr(VivVncDialog) self = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(VivVncSource) vnc = viv_vnc_source_connect_finish(result, &error);

    if (g_cancellable_is_cancelled(self->cancellable))
        return;
    viv_vnc_dialog_set_busy(self, FALSE);
    if (vnc == NULL) {
        gtk_label_set_text(GTK_LABEL(self->status_label), error->message);
        if (g_error_matches(error, VIV_VNC_ERROR, VIV_VNC_ERROR_AUTHENTICATION)) {
            gtk_entry_set_text(GTK_ENTRY(self->password_entry), "");
            gtk_widget_grab_focus(self->password_entry);
        }
        return;
    }
    gtk_window_present(GTK_WINDOW(viv_vm_window_new_remote(self->app, vnc)));
    gtk_widget_destroy(GTK_WIDGET(self));
}

static void viv_vnc_dialog_connect(VivVncDialog *self)
{
    g_autofree char *host = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(self->host_entry))));
    int port = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(self->port_spin));
    GSettings *settings = viv_application_get_settings(self->app);

    if (*host == '\0') {
        gtk_label_set_text(GTK_LABEL(self->status_label), _("Enter the server's address."));
        gtk_widget_grab_focus(self->host_entry);
        return;
    }
    g_settings_set_string(settings, "last-vnc-host", host);
    g_settings_set_int(settings, "last-vnc-port", port);
    gtk_label_set_text(GTK_LABEL(self->status_label), _("Connecting…"));
    viv_vnc_dialog_set_busy(self, TRUE);
    viv_vnc_source_connect_async(host, port, gtk_entry_get_text(GTK_ENTRY(self->password_entry)),
                                 self->cancellable, viv_vnc_dialog_connected_cb,
                                 g_object_ref(self));
}

static void viv_vnc_dialog_response_cb(GtkDialog *dialog, int response)
{
    VivVncDialog *self = VIV_VNC_DIALOG(dialog);

    if (response == GTK_RESPONSE_OK) {
        viv_vnc_dialog_connect(self);
        return;
    }
    g_cancellable_cancel(self->cancellable);
    gtk_widget_destroy(GTK_WIDGET(dialog));
}

static void viv_vnc_dialog_finalize(GObject *object)
{
    g_clear_object(&VIV_VNC_DIALOG(object)->cancellable);
    G_OBJECT_CLASS(viv_vnc_dialog_parent_class)->finalize(object);
}

static void viv_vnc_dialog_class_init(VivVncDialogClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    G_OBJECT_CLASS(klass)->finalize = viv_vnc_dialog_finalize;
    gtk_widget_class_set_template_from_resource(widget_class,
                                                "/org/vivarium/Vivarium/ui/viv-vnc-dialog.ui");
    gtk_widget_class_bind_template_child(widget_class, VivVncDialog, host_entry);
    gtk_widget_class_bind_template_child(widget_class, VivVncDialog, port_spin);
    gtk_widget_class_bind_template_child(widget_class, VivVncDialog, password_entry);
    gtk_widget_class_bind_template_child(widget_class, VivVncDialog, spinner);
    gtk_widget_class_bind_template_child(widget_class, VivVncDialog, status_label);
    gtk_widget_class_bind_template_child(widget_class, VivVncDialog, connect_button);
    gtk_widget_class_bind_template_callback(widget_class, viv_vnc_dialog_response_cb);
}

static void viv_vnc_dialog_init(VivVncDialog *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    self->cancellable = g_cancellable_new();
}

GtkWidget *viv_vnc_dialog_new(VivApplication *app, GtkWindow *parent)
{
    VivVncDialog *self =
        g_object_new(VIV_TYPE_VNC_DIALOG, "transient-for", parent, "use-header-bar", 1, NULL);
    GSettings *settings = viv_application_get_settings(app);
    g_autofree char *host = g_settings_get_string(settings, "last-vnc-host");

    self->app = app;
    gtk_entry_set_text(GTK_ENTRY(self->host_entry), host);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(self->port_spin),
                              g_settings_get_int(settings, "last-vnc-port"));
    return GTK_WIDGET(self);
}
