#include "config.h"

#include "viv-application.h"

#include "viv-assistant.h"
#include "viv-vm-settings.h"
#include "viv-vm-window.h"
#include "viv-vnc-dialog.h"
#include "viv-window.h"

#include <glib/gi18n.h>

struct _VivApplication {
    GtkApplication parent_instance;

    GSettings *settings;
    VivVm *demo_to_start; /* created on this first start, to start once a window shows */
    VivLibrary *library;
};

G_DEFINE_FINAL_TYPE(VivApplication, viv_application, GTK_TYPE_APPLICATION)

VivLibrary *viv_application_get_library(VivApplication *self)
{
    return self->library;
}

GSettings *viv_application_get_settings(VivApplication *self)
{
    return self->settings;
}

void viv_application_show_error(GtkWindow *parent, const char *primary, const char *secondary)
{
    GtkWidget *dialog =
        gtk_message_dialog_new(parent, GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                               GTK_MESSAGE_ERROR, GTK_BUTTONS_CLOSE, "%s", primary);

    if (secondary != NULL)
        gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(dialog), "%s", secondary);
    g_signal_connect(dialog, "response", G_CALLBACK(gtk_widget_destroy), NULL);
    gtk_widget_show(dialog);
}

static GtkWindow *viv_application_main_window(VivApplication *self)
{
    for (GList *l = gtk_application_get_windows(GTK_APPLICATION(self)); l != NULL; l = l->next) {
        if (VIV_IS_WINDOW(l->data))
            return l->data;
    }
    return NULL;
}

static VivVmWindow *viv_application_find_vm_window(VivApplication *self, VivVm *vm)
{
    for (GList *l = gtk_application_get_windows(GTK_APPLICATION(self)); l != NULL; l = l->next) {
        if (VIV_IS_VM_WINDOW(l->data) && viv_vm_window_get_vm(l->data) == vm)
            return l->data;
    }
    return NULL;
}

void viv_application_show_vm(VivApplication *self, VivVm *vm)
{
    VivVmWindow *window = viv_application_find_vm_window(self, vm);

    if (window == NULL)
        window = viv_vm_window_new(self, vm);
    gtk_window_present(GTK_WINDOW(window));
}

void viv_application_start_vm(VivApplication *self, VivVm *vm)
{
    g_autoptr(GError) error = NULL;

    if (!viv_vm_start(vm, &error)) {
        viv_application_show_error(viv_application_main_window(self),
                                   _("The machine could not be started"), error->message);
        return;
    }
    viv_application_show_vm(self, vm);
}

typedef struct {
    VivApplication *app;
    VivVm *vm;
    GtkWidget *keep_disk;
} DeleteRequest;

static void viv_application_delete_response_cb(GtkDialog *dialog, int response,
                                               DeleteRequest *request)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        g_autoptr(GError) error = NULL;
        gboolean keep_disk = request->keep_disk != NULL &&
                             gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(request->keep_disk));
        VivVmWindow *window = viv_application_find_vm_window(request->app, request->vm);

        if (window != NULL)
            gtk_widget_destroy(GTK_WIDGET(window));
        if (!viv_library_delete(request->app->library, request->vm, keep_disk, &error))
            viv_application_show_error(gtk_window_get_transient_for(GTK_WINDOW(dialog)),
                                       _("The machine could not be deleted completely"),
                                       error->message);
    }
    gtk_widget_destroy(GTK_WIDGET(dialog));
    g_object_unref(request->vm);
    g_free(request);
}

void viv_application_confirm_delete(VivApplication *self, VivVm *vm, GtkWindow *parent)
{
    GtkWidget *dialog = gtk_message_dialog_new(
        parent, GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT, GTK_MESSAGE_QUESTION,
        GTK_BUTTONS_NONE, _("Delete “%s”?"), viv_vm_get_name(vm));
    DeleteRequest *request = g_new0(DeleteRequest, 1);
    const char *disk = viv_vm_get_hard_disk(vm);

    request->app = self;
    request->vm = g_object_ref(vm);
    gtk_message_dialog_format_secondary_text(
        GTK_MESSAGE_DIALOG(dialog), "%s",
        viv_vm_get_state(vm) == VIV_VM_STATE_RUNNING || viv_vm_get_state(vm) == VIV_VM_STATE_PAUSED
            ? _("The machine is running; it will be powered off. Its settings are deleted.")
            : _("Its settings are deleted."));
    if (disk != NULL) {
        g_autofree char *basename = g_path_get_basename(disk);
        g_autofree char *label = g_strdup_printf(_("_Keep the disk image “%s”"), basename);
        GtkWidget *area = gtk_message_dialog_get_message_area(GTK_MESSAGE_DIALOG(dialog));

        request->keep_disk = gtk_check_button_new_with_mnemonic(label);
        gtk_widget_set_tooltip_text(request->keep_disk, disk);
        /* A disk the person brought along is kept unless they say otherwise;
         * one Vivarium created goes with its machine unless they say otherwise. */
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(request->keep_disk),
                                     !viv_library_owns_disk(vm));
        gtk_container_add(GTK_CONTAINER(area), request->keep_disk);
        gtk_widget_show(request->keep_disk);
    }
    gtk_dialog_add_button(GTK_DIALOG(dialog), _("_Cancel"), GTK_RESPONSE_CANCEL);
    GtkWidget *delete =
        gtk_dialog_add_button(GTK_DIALOG(dialog), _("_Delete"), GTK_RESPONSE_ACCEPT);
    gtk_style_context_add_class(gtk_widget_get_style_context(delete), "destructive-action");
    gtk_dialog_set_default_response(GTK_DIALOG(dialog), GTK_RESPONSE_CANCEL);
    g_signal_connect(dialog, "response", G_CALLBACK(viv_application_delete_response_cb), request);
    gtk_widget_show(dialog);
}

void viv_application_edit_vm(VivApplication *self, VivVm *vm, GtkWindow *parent)
{
    GtkWidget *dialog = viv_vm_settings_new(vm, parent);

    gtk_widget_show(dialog);
}

static void viv_application_new_vm_action(GSimpleAction *action, GVariant *parameter, gpointer data)
{
    VivApplication *self = data;
    GtkWidget *assistant = viv_assistant_new(self, viv_application_main_window(self));

    gtk_widget_show(assistant);
}

static void viv_application_connect_vnc_action(GSimpleAction *action, GVariant *parameter,
                                               gpointer data)
{
    VivApplication *self = data;
    GtkWidget *dialog = viv_vnc_dialog_new(self, viv_application_main_window(self));

    gtk_widget_show(dialog);
}

static void viv_application_about_action(GSimpleAction *action, GVariant *parameter, gpointer data)
{
    VivApplication *self = data;
    const char *authors[] = {_("The Vivarium developers"), NULL};

    gtk_show_about_dialog(viv_application_main_window(self), "program-name", "Vivarium",
                          "logo-icon-name", VIV_APPLICATION_ID, "version", PACKAGE_VERSION,
                          "comments", _("Create and run virtual PCs"), "license-type",
                          GTK_LICENSE_GPL_2_0, "authors", authors,
                          /* Translators: put your names here, one a line. */
                          "translator-credits", _("translator-credits"), NULL);
}

static void viv_application_quit_action(GSimpleAction *action, GVariant *parameter, gpointer data)
{
    VivApplication *self = data;
    GList *windows = g_list_copy(gtk_application_get_windows(GTK_APPLICATION(self)));

    for (GList *l = windows; l != NULL; l = l->next)
        gtk_widget_destroy(l->data);
    g_list_free(windows);
}

static const GActionEntry app_actions[] = {
    {"new-vm", viv_application_new_vm_action, NULL, NULL, NULL, {0}},
    {"connect-vnc", viv_application_connect_vnc_action, NULL, NULL, NULL, {0}},
    {"about", viv_application_about_action, NULL, NULL, NULL, {0}},
    {"quit", viv_application_quit_action, NULL, NULL, NULL, {0}},
};

/* The demo guest's floppy: VIVARIUM_DEMO_IMAGE (set and empty: no demo), else
 * the installed copy, else the one in the build tree. */
static const char *viv_application_demo_image(void)
{
    const char *candidates[] = {g_getenv("VIVARIUM_DEMO_IMAGE"), VIVARIUM_DEMO_IMAGE_PATH,
                                VIVARIUM_DEMO_IMAGE_BUILD_PATH};

    if (candidates[0] != NULL && *candidates[0] == '\0')
        return NULL;
    for (gsize i = 0; i < G_N_ELEMENTS(candidates); i++) {
        if (candidates[i] != NULL && g_file_test(candidates[i], G_FILE_TEST_IS_REGULAR))
            return candidates[i];
    }
    return NULL;
}

/* On the first start, an empty library gets a demo VM whose guest the project
 * builds from its own sources, so that a new user sees a machine work at once.
 * Its floppy is copied into the images folder: the guest may write to it. */
static void viv_application_add_demo_vm(VivApplication *self)
{
    const char *image = viv_application_demo_image();
    g_autofree char *images_dir = NULL;
    g_autofree char *copy = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GFile) source = NULL;
    g_autoptr(GFile) target = NULL;
    g_autoptr(VivVm) vm = NULL;

    if (g_settings_get_boolean(self->settings, "demo-created") ||
        g_list_model_get_n_items(viv_library_get_model(self->library)) > 0 || image == NULL)
        return;
    images_dir = viv_library_images_dir();
    g_mkdir_with_parents(images_dir, 0700);
    copy = g_build_filename(images_dir, "vivarium-demo.img", NULL);
    source = g_file_new_for_path(image);
    target = g_file_new_for_path(copy);
    if (!g_file_copy(source, target, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, &error)) {
        g_warning("Cannot copy the demo floppy: %s", error->message);
        return;
    }
    vm = viv_library_create(self->library, _("Vivarium demo"), VIV_INSTALL_FROM_FLOPPY, copy, 16, 1,
                            &error);
    if (vm == NULL) {
        g_warning("Cannot create the demo VM: %s", error->message);
        return;
    }
    g_settings_set_boolean(self->settings, "demo-created", TRUE);
    /* Started at once, so that the first thing a new user sees is a working
     * guest. */
    self->demo_to_start = g_steal_pointer(&vm);
}

static void viv_application_startup(GApplication *application)
{
    VivApplication *self = VIV_APPLICATION(application);
    const char *quit_accels[] = {"<Control>q", NULL};
    const char *new_accels[] = {"<Control>n", NULL};
    g_autoptr(GtkCssProvider) css = gtk_css_provider_new();

    G_APPLICATION_CLASS(viv_application_parent_class)->startup(application);

    g_action_map_add_action_entries(G_ACTION_MAP(self), app_actions, G_N_ELEMENTS(app_actions),
                                    self);
    gtk_application_set_accels_for_action(GTK_APPLICATION(self), "app.quit", quit_accels);
    gtk_application_set_accels_for_action(GTK_APPLICATION(self), "app.new-vm", new_accels);

    gtk_css_provider_load_from_resource(css, "/org/vivarium/Vivarium/style.css");
    gtk_style_context_add_provider_for_screen(gdk_screen_get_default(), GTK_STYLE_PROVIDER(css),
                                              GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
    gtk_icon_theme_add_resource_path(gtk_icon_theme_get_default(), "/org/vivarium/Vivarium/icons");
    gtk_window_set_default_icon_name(VIV_APPLICATION_ID);

    self->settings = g_settings_new(VIV_APPLICATION_ID);
    self->library = viv_library_new();
    viv_library_load(self->library);
    viv_application_add_demo_vm(self);
}

static void viv_application_activate(GApplication *application)
{
    VivApplication *self = VIV_APPLICATION(application);
    GtkWindow *window = viv_application_main_window(self);

    if (window == NULL)
        window = GTK_WINDOW(viv_window_new(self));
    gtk_window_present(window);
    if (self->demo_to_start != NULL) {
        g_autoptr(VivVm) demo = g_steal_pointer(&self->demo_to_start);
        viv_application_start_vm(self, demo);
    }
}

static void viv_application_shutdown(GApplication *application)
{
    VivApplication *self = VIV_APPLICATION(application);
    GListModel *vms = viv_library_get_model(self->library);

    /* Ask every engine to quit; one that does not will notice the closed socket. */
    for (guint i = 0; i < g_list_model_get_n_items(vms); i++) {
        g_autoptr(VivVm) vm = g_list_model_get_item(vms, i);
        viv_vm_stop(vm);
    }
    G_APPLICATION_CLASS(viv_application_parent_class)->shutdown(application);
}

static void viv_application_dispose(GObject *object)
{
    VivApplication *self = VIV_APPLICATION(object);

    g_clear_object(&self->library);
    g_clear_object(&self->settings);
    g_clear_object(&self->demo_to_start);
    G_OBJECT_CLASS(viv_application_parent_class)->dispose(object);
}

static void viv_application_class_init(VivApplicationClass *klass)
{
    G_OBJECT_CLASS(klass)->dispose = viv_application_dispose;
    G_APPLICATION_CLASS(klass)->startup = viv_application_startup;
    G_APPLICATION_CLASS(klass)->activate = viv_application_activate;
    G_APPLICATION_CLASS(klass)->shutdown = viv_application_shutdown;
}

static void viv_application_init(VivApplication *self)
{
}

VivApplication *viv_application_new(void)
{
    /* NON_UNIQUE: tests and screenshots run their own instance next to a
     * person's, each with its own XDG directories. */
    GApplicationFlags flags =
        g_getenv("VIVARIUM_NON_UNIQUE") != NULL ? G_APPLICATION_NON_UNIQUE : (GApplicationFlags)0;

    return g_object_new(VIV_TYPE_APPLICATION, "application-id", VIV_APPLICATION_ID, "flags", flags,
                        NULL);
}
