/* The VM library: key files under $XDG_CONFIG_HOME/vivarium/, disk images under
 * $XDG_DATA_HOME/vivarium/images/, and the engine command line made from them.
 * G_TEST_OPTION_ISOLATE_DIRS gives every test its own empty XDG directories. */
#include "viv-library.h"

#include <glib/gstdio.h>
#include <sys/stat.h>

static char *make_image(const char *name, gsize size)
{
    /* Somewhere outside Vivarium's own images folder, like a download. */
    g_autofree char *directory = g_build_filename(g_get_user_data_dir(), "downloads", NULL);
    char *path = g_build_filename(directory, name, NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *zeros = g_malloc0(size);

    g_assert_cmpint(g_mkdir_with_parents(directory, 0700), ==, 0);
    g_file_set_contents(path, zeros, size, &error);
    g_assert_no_error(error);
    return path;
}

static void test_library_create_from_disk_image(void)
{
    g_autoptr(VivLibrary) library = viv_library_new();
    g_autofree char *image = make_image("dos.img", 4096);
    g_autoptr(GError) error = NULL;
    g_autoptr(VivVm) vm =
        viv_library_create(library, "Test DOS", VIV_INSTALL_FROM_DISK_IMAGE, image, 64, 8, &error);
    g_autofree char *config = viv_library_config_dir();
    g_autofree char *expected_path = g_build_filename(config, "test-dos.vm", NULL);
    g_autofree char *content = NULL;

    g_assert_no_error(error);
    g_assert_cmpstr(viv_vm_get_path(vm), ==, expected_path);
    g_assert_cmpstr(viv_vm_get_id(vm), ==, "test-dos");
    g_assert_true(g_file_get_contents(expected_path, &content, NULL, NULL));
    g_assert_nonnull(strstr(content, "Name=Test DOS"));
    g_assert_nonnull(strstr(content, "Memory=64"));
    g_assert_cmpstr(viv_vm_get_hard_disk(vm), ==, image);
    g_assert_cmpstr(viv_vm_get_boot_order(vm), ==, "cda");
    /* The person's own image is used in place: nothing new in images/. */
    g_assert_false(viv_library_owns_disk(vm));
    g_assert_cmpuint(g_list_model_get_n_items(viv_library_get_model(library)), ==, 1);
}

static void test_library_create_empty(void)
{
    g_autoptr(VivLibrary) library = viv_library_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(VivVm) first =
        viv_library_create(library, "My PC", VIV_INSTALL_EMPTY, NULL, 256, 2, &error);
    g_assert_no_error(error);
    g_autoptr(VivVm) second =
        viv_library_create(library, "My PC", VIV_INSTALL_EMPTY, NULL, 256, 2, &error);
    struct stat info;

    g_assert_no_error(error);
    g_assert_cmpstr(viv_vm_get_id(first), ==, "my-pc");
    g_assert_cmpstr(viv_vm_get_id(second), ==, "my-pc-2");
    g_assert_true(viv_library_owns_disk(first));
    g_assert_true(g_str_has_suffix(viv_vm_get_hard_disk(first), "/my-pc.qcow2"));
    /* A qcow2 image (made by vivarium-img) whose header says 2 GiB, and which
     * holds only its tables: well under a megabyte. */
    g_autofree char *header = NULL;
    gsize length = 0;
    g_assert_true(g_file_get_contents(viv_vm_get_hard_disk(first), &header, &length, NULL));
    g_assert_cmpuint(length, >=, 32);
    g_assert_cmpmem(header, 4, "QFI\xfb", 4);
    g_assert_cmpuint(GUINT64_FROM_BE(*(guint64 *)(header + 24)), ==, (guint64)2 << 30);
    g_assert_cmpint(g_stat(viv_vm_get_hard_disk(first), &info), ==, 0);
    g_assert_cmpint(info.st_size, <, 1 << 20);
}

/* A disk the tool refuses (too large for qcow2) fails with the tool's own
 * words, and leaves neither a VM nor an image behind. */
static void test_library_create_disk_refused(void)
{
    g_autoptr(VivLibrary) library = viv_library_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(VivVm) vm =
        viv_library_create(library, "Huge", VIV_INSTALL_EMPTY, NULL, 256, 1 << 19, &error);
    g_autofree char *config = viv_library_config_dir();
    g_autofree char *images = viv_library_images_dir();
    g_autofree char *vm_path = g_build_filename(config, "huge.vm", NULL);
    g_autofree char *disk_path = g_build_filename(images, "huge.qcow2", NULL);

    g_assert_null(vm);
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_FAILED);
    g_assert_nonnull(strstr(error->message, "disk size is too large"));
    g_assert_false(g_file_test(vm_path, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(disk_path, G_FILE_TEST_EXISTS));
    g_assert_cmpuint(g_list_model_get_n_items(viv_library_get_model(library)), ==, 0);
}

/* A missing tool is named in the error. */
static void test_library_create_disk_tool_missing(void)
{
    g_autoptr(VivLibrary) library = viv_library_new();
    g_autoptr(GError) error = NULL;
    g_autofree char *saved = g_strdup(g_getenv("VIVARIUM_IMG"));

    g_setenv("VIVARIUM_IMG", "/nonexistent/vivarium-img", TRUE);
    g_autoptr(VivVm) vm =
        viv_library_create(library, "No Tool", VIV_INSTALL_EMPTY, NULL, 256, 1, &error);
    if (saved != NULL)
        g_setenv("VIVARIUM_IMG", saved, TRUE);
    else
        g_unsetenv("VIVARIUM_IMG");
    g_assert_null(vm);
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_FAILED);
    g_assert_nonnull(strstr(error->message, "/nonexistent/vivarium-img"));
}

static void test_library_create_missing_image(void)
{
    g_autoptr(VivLibrary) library = viv_library_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(VivVm) vm = viv_library_create(library, "Nope", VIV_INSTALL_FROM_CDROM,
                                             "/nonexistent/install.iso", 256, 8, &error);

    g_assert_null(vm);
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_assert_cmpuint(g_list_model_get_n_items(viv_library_get_model(library)), ==, 0);
}

static void test_library_engine_options(void)
{
    g_autoptr(VivLibrary) library = viv_library_new();
    g_autofree char *iso = make_image("install.iso", 2048);
    g_autoptr(GError) error = NULL;
    g_autoptr(VivVm) vm =
        viv_library_create(library, "Linux", VIV_INSTALL_FROM_CDROM, iso, 512, 1, &error);
    g_auto(GStrv) options = NULL;

    g_assert_no_error(error);
    viv_vm_set_sound(vm, FALSE);
    viv_vm_set_backend(vm, "dbt");
    options = viv_vm_build_engine_options(vm);
    g_autofree char *snapshot_dir =
        g_build_filename(g_get_user_data_dir(), "vivarium", "snapshots", "linux", NULL);
    /* clang-format off */
    const char *expected[] = {
        "--name", "Linux", "--memory", "512", "--accel", "dbt", "--boot", "dca",
        "--hda", viv_vm_get_hard_disk(vm), "--cdrom", iso, "--no-sound",
        "--snapshot-dir", snapshot_dir, NULL,
    };
    /* clang-format on */
    g_assert_cmpstrv(options, expected);
}

static void test_library_round_trip(void)
{
    g_autofree char *config = viv_library_config_dir();
    g_autofree char *path = g_build_filename(config, "old.vm", NULL);
    g_autofree char *broken = g_build_filename(config, "broken.vm", NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *content = NULL;

    g_mkdir_with_parents(config, 0700);
    g_file_set_contents(path,
                        "# kept comment\n[Machine]\nName=Old\nMemory=32\nFutureKey=42\n"
                        "[Drives]\nFloppy=/games/disk1.img\n",
                        -1, &error);
    g_file_set_contents(broken, "this is not a key file", -1, &error);
    g_assert_no_error(error);

    g_autoptr(VivLibrary) library = viv_library_new();
    g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, "Skipping*broken.vm*");
    viv_library_load(library);
    g_test_assert_expected_messages();
    g_assert_cmpuint(g_list_model_get_n_items(viv_library_get_model(library)), ==, 1);
    g_autoptr(VivVm) vm = g_list_model_get_item(viv_library_get_model(library), 0);
    g_assert_cmpstr(viv_vm_get_name(vm), ==, "Old");
    g_assert_cmpint(viv_vm_get_memory(vm), ==, 32);
    g_assert_cmpstr(viv_vm_get_floppy(vm), ==, "/games/disk1.img");
    g_assert_null(viv_vm_get_cdrom(vm));
    g_assert_cmpstr(viv_vm_get_backend(vm), ==, "auto");
    g_assert_true(viv_vm_get_sound(vm));

    viv_vm_set_memory(vm, 48);
    viv_vm_set_floppy(vm, NULL);
    g_assert_true(viv_vm_save(vm, &error));
    g_assert_true(g_file_get_contents(path, &content, NULL, NULL));
    g_assert_nonnull(strstr(content, "Memory=48"));
    g_assert_nonnull(strstr(content, "FutureKey=42"));
    g_assert_nonnull(strstr(content, "# kept comment"));
    g_assert_null(strstr(content, "Floppy="));
}

static void test_library_delete(void)
{
    g_autoptr(VivLibrary) library = viv_library_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(VivVm) kept =
        viv_library_create(library, "A", VIV_INSTALL_EMPTY, NULL, 16, 1, &error);
    g_autoptr(VivVm) gone =
        viv_library_create(library, "B", VIV_INSTALL_EMPTY, NULL, 16, 1, &error);
    g_autofree char *kept_disk = g_strdup(viv_vm_get_hard_disk(kept));
    g_autofree char *gone_disk = g_strdup(viv_vm_get_hard_disk(gone));

    g_assert_no_error(error);
    g_autofree char *kept_snapshots = viv_vm_snapshot_dir(kept);
    g_autofree char *gone_snapshots = viv_vm_snapshot_dir(gone);
    g_autofree char *gone_snapshot = g_build_filename(gone_snapshots, "s1", "ram.bin", NULL);
    g_autofree char *gone_snapshot_dir = g_path_get_dirname(gone_snapshot);
    g_assert_cmpint(g_mkdir_with_parents(kept_snapshots, 0700), ==, 0);
    g_assert_cmpint(g_mkdir_with_parents(gone_snapshot_dir, 0700), ==, 0);
    g_assert_true(g_file_set_contents(gone_snapshot, "x", 1, NULL));
    g_assert_true(viv_library_delete(library, kept, TRUE, &error));
    g_assert_true(viv_library_delete(library, gone, FALSE, &error));
    g_assert_no_error(error);
    g_assert_false(g_file_test(viv_vm_get_path(kept), G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(viv_vm_get_path(gone), G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(kept_disk, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(gone_disk, G_FILE_TEST_EXISTS));
    g_assert_cmpuint(g_list_model_get_n_items(viv_library_get_model(library)), ==, 0);
    g_assert_true(g_file_test(kept_snapshots, G_FILE_TEST_IS_DIR));
    g_assert_false(g_file_test(gone_snapshots, G_FILE_TEST_EXISTS));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
    g_test_add_func("/library/create-from-disk-image", test_library_create_from_disk_image);
    g_test_add_func("/library/create-empty", test_library_create_empty);
    g_test_add_func("/library/create-missing-image", test_library_create_missing_image);
    g_test_add_func("/library/create-disk-refused", test_library_create_disk_refused);
    g_test_add_func("/library/create-disk-tool-missing", test_library_create_disk_tool_missing);
    g_test_add_func("/library/engine-options", test_library_engine_options);
    g_test_add_func("/library/round-trip", test_library_round_trip);
    g_test_add_func("/library/delete", test_library_delete);
    return g_test_run();
}
