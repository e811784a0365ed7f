/* Every call to the engine is asynchronous; the list is fetched again whenever
 * the popover opens and after each change, so it always shows what the engine
 * has rather than what the app believes. Rows are kept across refreshes (only
 * the snapshots that came or went change), so the list does not flicker.
 *
 * Reverting first takes a snapshot of the present, unless the person turned
 * that off: a revert cannot be undone otherwise. */
#include "config.h"

#include "viv-snapshots-popover.h"

#include "viv-protocol.h"

#include <glib/gi18n.h>

struct _VivSnapshotsPopover {
    GtkPopover parent_instance;

    GtkWidget *name_entry;
    GtkWidget *list;
    GtkWidget *status_label;
    GtkWidget *save_before_revert;

    char *reverting_to; /* the snapshot a revert waits to load, after its safety snapshot */

    VivEngine *engine;
    GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE(VivSnapshotsPopover, viv_snapshots_popover, GTK_TYPE_POPOVER)

static void viv_snapshots_popover_refresh(VivSnapshotsPopover *self);

static void viv_snapshots_popover_clear(VivSnapshotsPopover *self)
{
    g_autoptr(GList) rows = gtk_container_get_children(GTK_CONTAINER(self->list));

    for (GList *row = rows; row != NULL; row = row->next)
        gtk_widget_destroy(row->data);
}

static void viv_snapshots_popover_set_status(VivSnapshotsPopover *self, const char *message)
{
    gtk_label_set_text(GTK_LABEL(self->status_label), message != NULL ? message : "");
    gtk_widget_set_visible(self->status_label, message != NULL);
}

static VivDbusSnapshots *viv_snapshots_popover_proxy(VivSnapshotsPopover *self)
{
    return self->engine != NULL ? viv_engine_get_snapshots(self->engine) : NULL;
}

/* Finishes a Save, Load or Delete call: the popover when it succeeded, or
 * NULL when it was cancelled or failed (the failure shown in the status). */
static VivSnapshotsPopover *viv_snapshots_popover_finish_call(GObject *source, GAsyncResult *result,
                                                              gpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), result, &error);
    VivSnapshotsPopover *self;

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return NULL;
    self = data;
    if (reply == NULL) {
        g_autofree char *message = viv_engine_describe_error(error);
        viv_snapshots_popover_set_status(self, message);
        return NULL;
    }
    viv_snapshots_popover_set_status(self, NULL);
    return self;
}

static void viv_snapshots_popover_changed_cb(GObject *source, GAsyncResult *result, gpointer data)
{
    VivSnapshotsPopover *self = viv_snapshots_popover_finish_call(source, result, data);

    if (self != NULL)
        viv_snapshots_popover_refresh(self);
}

/* Load leaves the machine paused; reverting means going on from that moment. */
static void viv_snapshots_popover_loaded_cb(GObject *source, GAsyncResult *result, gpointer data)
{
    VivSnapshotsPopover *self = viv_snapshots_popover_finish_call(source, result, data);

    if (self == NULL)
        return;
    viv_engine_resume(self->engine);
    viv_snapshots_popover_refresh(self);
}

static void viv_snapshots_popover_call(VivSnapshotsPopover *self, const char *method,
                                       const char *name, GAsyncReadyCallback done)
{
    VivDbusSnapshots *proxy = viv_snapshots_popover_proxy(self);

    if (proxy == NULL)
        return;
    g_dbus_proxy_call(G_DBUS_PROXY(proxy), method, g_variant_new("(s)", name),
                      G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable, done, self);
}

static void viv_snapshots_popover_take_cb(VivSnapshotsPopover *self)
{
    g_autofree char *name = g_strstrip(g_strdup(gtk_entry_get_text(GTK_ENTRY(self->name_entry))));

    if (*name == '\0') {
        g_autoptr(GDateTime) now = g_date_time_new_now_local();
        g_free(name);
        name = g_date_time_format(now, "%Y-%m-%d %H.%M.%S");
    }
    if (!viv_dbus_snapshot_name_valid(name)) {
        viv_snapshots_popover_set_status(
            self, _("A snapshot name has up to 64 letters, digits, spaces, “-”, “_” and “.”."));
        return;
    }
    gtk_entry_set_text(GTK_ENTRY(self->name_entry), "");
    viv_snapshots_popover_set_status(self, _("Taking a snapshot…"));
    viv_snapshots_popover_call(self, "Save", name, viv_snapshots_popover_changed_cb);
}

/* The safety snapshot is taken: now the revert itself. */
static void viv_snapshots_popover_saved_before_revert_cb(GObject *source, GAsyncResult *result,
                                                         gpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), result, &error);
    VivSnapshotsPopover *self;
    g_autofree char *target = NULL;

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    self = data;
    target = g_steal_pointer(&self->reverting_to);
    if (reply == NULL) {
        g_autofree char *reason = viv_engine_describe_error(error);
        g_autofree char *message =
            g_strdup_printf(_("Not reverted: the snapshot of the present failed: %s"), reason);
        viv_snapshots_popover_set_status(self, message);
        return;
    }
    viv_snapshots_popover_call(self, "Load", target, viv_snapshots_popover_loaded_cb);
}

static void viv_snapshots_popover_revert_clicked_cb(GtkButton *button, VivSnapshotsPopover *self)
{
    const char *name = g_object_get_data(G_OBJECT(button), "snapshot-name");

    viv_snapshots_popover_set_status(self, _("Reverting…"));
    if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(self->save_before_revert))) {
        g_autoptr(GDateTime) now = g_date_time_new_now_local();
        g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%d %H.%M.%S");
        /* Not translated: snapshot names allow ASCII letters only. */
        g_autofree char *safety = g_strconcat("Before revert ", stamp, NULL);

        g_free(self->reverting_to);
        self->reverting_to = g_strdup(name);
        viv_snapshots_popover_call(self, "Save", safety,
                                   viv_snapshots_popover_saved_before_revert_cb);
        return;
    }
    viv_snapshots_popover_call(self, "Load", name, viv_snapshots_popover_loaded_cb);
}

static void viv_snapshots_popover_delete_clicked_cb(GtkButton *button, VivSnapshotsPopover *self)
{
    viv_snapshots_popover_call(self, "Delete", g_object_get_data(G_OBJECT(button), "snapshot-name"),
                               viv_snapshots_popover_changed_cb);
}

#define THUMBNAIL_WIDTH  96
#define THUMBNAIL_HEIGHT 72

/* The screen when the snapshot was taken, small; a blank frame without one. */
static GtkWidget *viv_snapshots_popover_thumbnail(const char *path)
{
    g_autoptr(GdkPixbuf) pixbuf = NULL;
    GtkWidget *image;

    if (path != NULL && *path != '\0')
        pixbuf =
            gdk_pixbuf_new_from_file_at_scale(path, THUMBNAIL_WIDTH, THUMBNAIL_HEIGHT, TRUE, NULL);
    image = pixbuf != NULL ? gtk_image_new_from_pixbuf(pixbuf) : gtk_image_new();
    gtk_widget_set_size_request(image, THUMBNAIL_WIDTH, THUMBNAIL_HEIGHT);
    return image;
}

static GtkWidget *viv_snapshots_popover_row(VivSnapshotsPopover *self, const char *name,
                                            gint64 time_us, const char *thumbnail)
{
    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *labels = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    GtkWidget *name_label = gtk_label_new(name);
    g_autoptr(GDateTime) time = g_date_time_new_from_unix_local(time_us / G_USEC_PER_SEC);
    g_autofree char *when = time != NULL ? g_date_time_format(time, "%x %X") : g_strdup("");
    GtkWidget *time_label = gtk_label_new(when);
    GtkWidget *revert = gtk_button_new_with_label(_("Revert"));
    GtkWidget *delete = gtk_button_new_with_label(_("Delete"));

    gtk_container_set_border_width(GTK_CONTAINER(row), 6);
    gtk_label_set_xalign(GTK_LABEL(name_label), 0);
    gtk_label_set_xalign(GTK_LABEL(time_label), 0);
    gtk_label_set_ellipsize(GTK_LABEL(name_label), PANGO_ELLIPSIZE_END);
    gtk_label_set_width_chars(GTK_LABEL(name_label), 24);
    gtk_style_context_add_class(gtk_widget_get_style_context(time_label), "dim-label");
    gtk_container_add(GTK_CONTAINER(labels), name_label);
    gtk_container_add(GTK_CONTAINER(labels), time_label);
    gtk_widget_set_hexpand(labels, TRUE);
    gtk_container_add(GTK_CONTAINER(row), viv_snapshots_popover_thumbnail(thumbnail));
    gtk_container_add(GTK_CONTAINER(row), labels);
    gtk_container_add(GTK_CONTAINER(row), revert);
    gtk_container_add(GTK_CONTAINER(row), delete);
    g_object_set_data_full(G_OBJECT(revert), "snapshot-name", g_strdup(name), g_free);
    g_object_set_data_full(G_OBJECT(delete), "snapshot-name", g_strdup(name), g_free);
    g_signal_connect(revert, "clicked", G_CALLBACK(viv_snapshots_popover_revert_clicked_cb), self);
    g_signal_connect(delete, "clicked", G_CALLBACK(viv_snapshots_popover_delete_clicked_cb), self);
    /* Assistive technologies find a row, and its buttons, by the snapshot's name. */
    atk_object_set_name(gtk_widget_get_accessible(row), name);
    g_object_set_data_full(G_OBJECT(row), "snapshot-name", g_strdup(name), g_free);
    gtk_widget_show_all(row);
    return row;
}

static void viv_snapshots_popover_list_cb(GObject *source, GAsyncResult *result, gpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) snapshots = NULL;
    VivSnapshotsPopover *self;
    GVariantIter iter;
    const char *name, *thumbnail;
    gint64 time_us;

    if (!viv_dbus_snapshots_call_list_finish(VIV_DBUS_SNAPSHOTS(source), &snapshots, result,
                                             &error)) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            return;
        self = data;
        g_autofree char *message = viv_engine_describe_error(error);
        viv_snapshots_popover_set_status(self, message);
        return;
    }
    self = data;
    /* Rows of snapshots that are gone go; new snapshots get rows. */
    g_autoptr(GHashTable) shown = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) present = g_hash_table_new(g_str_hash, g_str_equal);
    g_variant_iter_init(&iter, snapshots);
    while (g_variant_iter_next(&iter, "(&sx&s)", &name, &time_us, &thumbnail))
        g_hash_table_add(present, (gpointer)name);
    g_autoptr(GList) rows = gtk_container_get_children(GTK_CONTAINER(self->list));
    for (GList *l = rows; l != NULL; l = l->next) {
        GtkWidget *box = gtk_bin_get_child(GTK_BIN(l->data));
        const char *row_name =
            box != NULL ? g_object_get_data(G_OBJECT(box), "snapshot-name") : NULL;

        if (row_name == NULL || !g_hash_table_contains(present, row_name))
            gtk_widget_destroy(l->data);
        else
            g_hash_table_add(shown, (gpointer)row_name);
    }
    g_variant_iter_init(&iter, snapshots);
    while (g_variant_iter_next(&iter, "(&sx&s)", &name, &time_us, &thumbnail)) {
        if (!g_hash_table_contains(shown, name))
            gtk_container_add(GTK_CONTAINER(self->list),
                              viv_snapshots_popover_row(self, name, time_us, thumbnail));
    }
    if (g_variant_n_children(snapshots) == 0)
        viv_snapshots_popover_set_status(self, _("No snapshots yet."));
}

static void viv_snapshots_popover_refresh(VivSnapshotsPopover *self)
{
    VivDbusSnapshots *proxy = viv_snapshots_popover_proxy(self);

    if (proxy == NULL) {
        viv_snapshots_popover_set_status(self, _("The machine is not running."));
        return;
    }
    viv_dbus_snapshots_call_list(proxy, self->cancellable, viv_snapshots_popover_list_cb, self);
}

void viv_snapshots_popover_set_engine(VivSnapshotsPopover *self, VivEngine *engine)
{
    g_cancellable_cancel(self->cancellable);
    g_clear_object(&self->cancellable);
    self->cancellable = g_cancellable_new();
    g_set_object(&self->engine, engine);
    viv_snapshots_popover_clear(self);
}

static void viv_snapshots_popover_dispose(GObject *object)
{
    VivSnapshotsPopover *self = VIV_SNAPSHOTS_POPOVER(object);

    g_cancellable_cancel(self->cancellable);
    g_clear_object(&self->cancellable);
    g_clear_object(&self->engine);
    g_clear_pointer(&self->reverting_to, g_free);
    G_OBJECT_CLASS(viv_snapshots_popover_parent_class)->dispose(object);
}

static void viv_snapshots_popover_class_init(VivSnapshotsPopoverClass *klass)
{
    GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

    G_OBJECT_CLASS(klass)->dispose = viv_snapshots_popover_dispose;
    gtk_widget_class_set_template_from_resource(
        widget_class, "/org/vivarium/Vivarium/ui/viv-snapshots-popover.ui");
    gtk_widget_class_bind_template_child(widget_class, VivSnapshotsPopover, name_entry);
    gtk_widget_class_bind_template_child(widget_class, VivSnapshotsPopover, list);
    gtk_widget_class_bind_template_child(widget_class, VivSnapshotsPopover, status_label);
    gtk_widget_class_bind_template_child(widget_class, VivSnapshotsPopover, save_before_revert);
    gtk_widget_class_bind_template_callback(widget_class, viv_snapshots_popover_refresh);
    gtk_widget_class_bind_template_callback(widget_class, viv_snapshots_popover_take_cb);
}

static void viv_snapshots_popover_init(VivSnapshotsPopover *self)
{
    gtk_widget_init_template(GTK_WIDGET(self));
    self->cancellable = g_cancellable_new();
}

GtkWidget *viv_snapshots_popover_new(void)
{
    return g_object_new(VIV_TYPE_SNAPSHOTS_POPOVER, NULL);
}
