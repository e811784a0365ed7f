#include "config.h"

#include "viv-library.h"

#include <glib/gi18n.h>
#include <errno.h>
#include <glib/gstdio.h>

struct _VivLibrary {
    GObject parent_instance;

    GListStore *vms;
};

G_DEFINE_FINAL_TYPE(VivLibrary, viv_library, G_TYPE_OBJECT)

char *viv_library_config_dir(void)
{
    return g_build_filename(g_get_user_config_dir(), "vivarium", NULL);
}

char *viv_library_images_dir(void)
{
    return g_build_filename(g_get_user_data_dir(), "vivarium", "images", NULL);
}

static int viv_library_compare_names(gconstpointer a, gconstpointer b, gpointer unused)
{
    g_autofree char *key_a = g_utf8_collate_key(viv_vm_get_name(VIV_VM((gpointer)a)), -1);
    g_autofree char *key_b = g_utf8_collate_key(viv_vm_get_name(VIV_VM((gpointer)b)), -1);

    return strcmp(key_a, key_b);
}

void viv_library_load(VivLibrary *self)
{
    g_autofree char *directory = viv_library_config_dir();
    g_autoptr(GDir) dir = g_dir_open(directory, 0, NULL);
    const char *entry;

    g_list_store_remove_all(self->vms);
    if (dir == NULL)
        return;
    while ((entry = g_dir_read_name(dir)) != NULL) {
        g_autofree char *path = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(VivVm) vm = NULL;

        if (!g_str_has_suffix(entry, ".vm"))
            continue;
        path = g_build_filename(directory, entry, NULL);
        vm = viv_vm_load(path, &error);
        if (vm == NULL) {
            g_warning("Skipping %s: %s", path, error->message);
            continue;
        }
        g_list_store_insert_sorted(self->vms, vm, viv_library_compare_names, NULL);
    }
}

GListModel *viv_library_get_model(VivLibrary *self)
{
    return G_LIST_MODEL(self->vms);
}

/* A file name from the VM's name: lower-case ASCII letters and digits, other
 * runs as one '-', then a number if that name is taken. */
static char *viv_library_unique_id(const char *name)
{
    g_autofree char *ascii = g_str_to_ascii(name, NULL);
    g_autoptr(GString) id = g_string_new(NULL);
    g_autofree char *config = viv_library_config_dir();
    g_autofree char *images = viv_library_images_dir();

    for (const char *c = ascii; *c != '\0'; c++) {
        if (g_ascii_isalnum(*c))
            g_string_append_c(id, g_ascii_tolower(*c));
        else if (id->len > 0 && id->str[id->len - 1] != '-')
            g_string_append_c(id, '-');
    }
    while (id->len > 0 && id->str[id->len - 1] == '-')
        g_string_truncate(id, id->len - 1);
    if (id->len == 0)
        g_string_assign(id, "vm");
    for (int n = 1;; n++) {
        g_autofree char *candidate =
            n == 1 ? g_strdup(id->str) : g_strdup_printf("%s-%d", id->str, n);
        g_autofree char *vm_name = g_strconcat(candidate, ".vm", NULL);
        g_autofree char *img_name = g_strconcat(candidate, ".qcow2", NULL);
        g_autofree char *vm_path = g_build_filename(config, vm_name, NULL);
        g_autofree char *img_path = g_build_filename(images, img_name, NULL);
        if (!g_file_test(vm_path, G_FILE_TEST_EXISTS) && !g_file_test(img_path, G_FILE_TEST_EXISTS))
            return g_steal_pointer(&candidate);
    }
}

const char *viv_library_disk_tool(void)
{
    const char *chosen = g_getenv("VIVARIUM_IMG");

    if (chosen != NULL && *chosen != '\0')
        return chosen;
    if (!g_file_test(VIVARIUM_IMG_PATH, G_FILE_TEST_IS_EXECUTABLE) &&
        g_file_test(VIVARIUM_IMG_BUILD_PATH, G_FILE_TEST_IS_EXECUTABLE))
        return VIVARIUM_IMG_BUILD_PATH;
    return VIVARIUM_IMG_PATH;
}

/* The app never links the engine's image code: it runs vivarium-img, which
 * writes the qcow2 header and tables in a few milliseconds. */
gboolean viv_library_create_disk_image(const char *path, guint64 size_bytes, GError **error)
{
    g_autofree char *parent = g_path_get_dirname(path);
    g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, size_bytes);
    g_autoptr(GSubprocess) tool = NULL;
    g_autoptr(GError) tool_error = NULL;
    g_autofree char *output = NULL;

    if (g_mkdir_with_parents(parent, 0700) < 0) {
        int saved_errno = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved_errno),
                    _("Cannot make the folder %s: %s"), parent, g_strerror(saved_errno));
        return FALSE;
    }
    tool = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                            &tool_error, viv_library_disk_tool(), "create", path, size, NULL);
    if (tool == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("The disk image tool %s cannot be run: %s"), viv_library_disk_tool(),
                    tool_error->message);
        return FALSE;
    }
    if (!g_subprocess_communicate_utf8(tool, NULL, NULL, NULL, &output, error))
        return FALSE;
    if (!g_subprocess_get_if_exited(tool) || g_subprocess_get_exit_status(tool) != 0) {
        g_strstrip(output);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, _("The disk image was not created: %s"),
                    *output != '\0' ? output : _("the disk image tool failed"));
        return FALSE;
    }
    return TRUE;
}

VivVm *viv_library_create(VivLibrary *self, const char *name, VivInstallSource source,
                          const char *path, int memory_mib, int disk_size_gib, GError **error)
{
    g_autofree char *id = viv_library_unique_id(name);
    g_autofree char *config = viv_library_config_dir();
    g_autofree char *images = viv_library_images_dir();
    g_autofree char *vm_name = g_strconcat(id, ".vm", NULL);
    g_autofree char *img_name = g_strconcat(id, ".qcow2", NULL);
    g_autofree char *vm_path = g_build_filename(config, vm_name, NULL);
    g_autofree char *disk_path = g_build_filename(images, img_name, NULL);
    g_autoptr(VivVm) vm = viv_vm_new(vm_path, name);

    if (source != VIV_INSTALL_EMPTY &&
        (path == NULL || !g_file_test(path, G_FILE_TEST_IS_REGULAR))) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, _("The image %s does not exist."),
                    path != NULL ? path : "");
        return NULL;
    }
    viv_vm_set_memory(vm, memory_mib);
    switch (source) {
    case VIV_INSTALL_FROM_CDROM:
        viv_vm_set_cdrom(vm, path);
        viv_vm_set_boot_order(vm, "dca");
        break;
    case VIV_INSTALL_FROM_FLOPPY:
        viv_vm_set_floppy(vm, path);
        viv_vm_set_boot_order(vm, "acd");
        break;
    case VIV_INSTALL_FROM_DISK_IMAGE:
        viv_vm_set_hard_disk(vm, path);
        viv_vm_set_boot_order(vm, "cda");
        break;
    case VIV_INSTALL_EMPTY:
        viv_vm_set_boot_order(vm, "cda");
        break;
    }
    if (source != VIV_INSTALL_FROM_DISK_IMAGE) {
        if (!viv_library_create_disk_image(disk_path, (guint64)disk_size_gib << 30, error))
            return NULL;
        viv_vm_set_hard_disk(vm, disk_path);
    }
    if (!viv_vm_save(vm, error)) {
        if (source != VIV_INSTALL_FROM_DISK_IMAGE)
            g_unlink(disk_path);
        return NULL;
    }
    g_list_store_insert_sorted(self->vms, vm, viv_library_compare_names, NULL);
    return g_steal_pointer(&vm);
}

gboolean viv_library_owns_disk(VivVm *vm)
{
    g_autofree char *images = viv_library_images_dir();
    const char *disk = viv_vm_get_hard_disk(vm);
    g_autofree char *prefix = g_strconcat(images, G_DIR_SEPARATOR_S, NULL);

    return disk != NULL && g_str_has_prefix(disk, prefix);
}

/* Deletes @path and everything under it; a missing folder is not an error. */
static gboolean viv_library_delete_tree(GFile *file, GError **error)
{
    g_autoptr(GFileEnumerator) children = g_file_enumerate_children(
        file, G_FILE_ATTRIBUTE_STANDARD_NAME, G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
    g_autoptr(GError) delete_error = NULL;

    while (children != NULL) {
        GFile *child;
        if (!g_file_enumerator_iterate(children, NULL, &child, NULL, error))
            return FALSE;
        if (child == NULL)
            break;
        if (!viv_library_delete_tree(child, error))
            return FALSE;
    }
    if (!g_file_delete(file, NULL, &delete_error) &&
        !g_error_matches(delete_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&delete_error));
        return FALSE;
    }
    return TRUE;
}

gboolean viv_library_delete(VivLibrary *self, VivVm *vm, gboolean keep_disk, GError **error)
{
    guint position;
    g_autofree char *thumbnail_name = g_strconcat(viv_vm_get_id(vm), ".png", NULL);
    g_autofree char *thumbnail =
        g_build_filename(g_get_user_cache_dir(), "vivarium", "thumbnails", thumbnail_name, NULL);
    const char *disk = viv_vm_get_hard_disk(vm);

    viv_vm_stop(vm);
    if (g_unlink(viv_vm_get_path(vm)) < 0 && errno != ENOENT) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), _("Cannot delete %s: %s"),
                    viv_vm_get_path(vm), g_strerror(errno));
        return FALSE;
    }
    g_unlink(thumbnail);
    if (g_list_store_find(self->vms, vm, &position))
        g_list_store_remove(self->vms, position);
    if (keep_disk)
        return TRUE;
    if (disk != NULL && g_unlink(disk) < 0 && errno != ENOENT) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    _("The machine is deleted, but its disk image %s is not: %s"), disk,
                    g_strerror(errno));
        return FALSE;
    }
    /* Snapshots hold copy-on-write overlays of the disk: they go with it. */
    g_autofree char *snapshot_path = viv_vm_snapshot_dir(vm);
    g_autoptr(GFile) snapshots = g_file_new_for_path(snapshot_path);
    return viv_library_delete_tree(snapshots, error);
}

static void viv_library_dispose(GObject *object)
{
    g_clear_object(&VIV_LIBRARY(object)->vms);
    G_OBJECT_CLASS(viv_library_parent_class)->dispose(object);
}

static void viv_library_class_init(VivLibraryClass *klass)
{
    G_OBJECT_CLASS(klass)->dispose = viv_library_dispose;
}

static void viv_library_init(VivLibrary *self)
{
    self->vms = g_list_store_new(VIV_TYPE_VM);
}

VivLibrary *viv_library_new(void)
{
    return g_object_new(VIV_TYPE_LIBRARY, NULL);
}
