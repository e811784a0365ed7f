/* Unit tests for machine snapshots and state tables. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "machine.h"
#include "snapshot.h"

struct widget {
    uint8_t mode;
    uint16_t counter;
    uint32_t words[3];
    bool enabled;
    uint64_t big;
};

static const struct vmstate_field widget_fields[] = {
    VMSTATE_U8(struct widget, mode),         VMSTATE_U16(struct widget, counter),
    VMSTATE_U32_ARRAY(struct widget, words), VMSTATE_BOOL(struct widget, enabled),
    VMSTATE_U64(struct widget, big),         VMSTATE_END,
};

static const struct vmstate_desc widget_vmstate = {
    .name = "widget", .version = 1, .fields = widget_fields};

/* The same device in an older version, without 'big' and with a field that
 * was later removed. */
struct old_widget {
    uint8_t mode;
    uint16_t counter;
    uint32_t words[3];
    bool enabled;
    uint32_t removed;
};

static const struct vmstate_field old_widget_fields[] = {
    VMSTATE_U8(struct old_widget, mode),         VMSTATE_U16(struct old_widget, counter),
    VMSTATE_U32_ARRAY(struct old_widget, words), VMSTATE_BOOL(struct old_widget, enabled),
    VMSTATE_U32(struct old_widget, removed),     VMSTATE_END,
};

static const struct vmstate_desc old_widget_vmstate = {
    .name = "widget", .version = 1, .fields = old_widget_fields};

static void test_vmstate_round_trip_and_tolerance(void)
{
    struct widget w = {3, 0xbeef, {1, 2, 3}, true, 0x1122334455667788ull}, back = {0};
    GByteArray *buf = g_byte_array_new();
    vmstate_save(buf, &widget_vmstate, &w);
    g_assert_true(vmstate_load(buf->data, buf->len, &widget_vmstate, &back, NULL));
    g_assert_cmpuint(back.mode, ==, w.mode);
    g_assert_cmpuint(back.counter, ==, w.counter);
    g_assert_cmpmem(back.words, sizeof(back.words), w.words, sizeof(w.words));
    g_assert_true(back.enabled);
    g_assert_cmphex(back.big, ==, w.big);

    /* Old data: an unknown field is skipped, a missing one keeps its value. */
    struct old_widget old = {7, 9, {4, 5, 6}, false, 0xdead};
    g_byte_array_set_size(buf, 0);
    vmstate_save(buf, &old_widget_vmstate, &old);
    struct widget newer = {.big = 42};
    g_assert_true(vmstate_load(buf->data, buf->len, &widget_vmstate, &newer, NULL));
    g_assert_cmpuint(newer.mode, ==, 7);
    g_assert_cmpuint(newer.words[2], ==, 6);
    g_assert_cmpuint(newer.big, ==, 42);

    /* Every truncation is refused, never read past. */
    g_byte_array_set_size(buf, 0);
    vmstate_save(buf, &widget_vmstate, &w);
    for (guint len = 0; len < buf->len; len++) {
        GError *error = NULL;
        g_assert_false(vmstate_load(buf->data, len, &widget_vmstate, NULL, &error));
        g_assert_nonnull(error);
        g_error_free(error);
    }
    g_byte_array_unref(buf);
}

struct fixture {
    gchar *dir;
    gchar *bios;
    struct machine_config config;
    struct machine *m;
    struct widget widget;
};

static void fixture_set_up(struct fixture *f, gconstpointer data)
{
    (void)data;
    f->dir = g_dir_make_tmp("vivarium-snapshot-XXXXXX", NULL);
    f->bios = g_build_filename(f->dir, "bios.bin", NULL);
    /* A 4 KiB firmware of HLT instructions is enough: nothing runs. */
    gchar rom[4096];
    memset(rom, 0xf4, sizeof(rom));
    g_assert_true(g_file_set_contents(f->bios, rom, sizeof(rom), NULL));
    f->config =
        (struct machine_config){.ram_size = 2 << 20, .accel = "interp", .bios_path = f->bios};
    GError *error = NULL;
    f->m = machine_create(&f->config, &error);
    g_assert_no_error(error);
    f->widget = (struct widget){1, 2, {3, 4, 5}, true, 6};
    machine_add_device(f->m, "widget", &f->widget, &widget_vmstate, NULL);
}

static void fixture_tear_down(struct fixture *f, gconstpointer data)
{
    (void)data;
    machine_destroy(f->m);
    gchar *snap = g_build_filename(f->dir, "s.snap", NULL);
    g_unlink(snap);
    g_free(snap);
    g_unlink(f->bios);
    g_rmdir(f->dir);
    g_free(f->bios);
    g_free(f->dir);
}

static void test_save_and_restore(struct fixture *f, gconstpointer data)
{
    (void)data;
    gchar *path = g_build_filename(f->dir, "s.snap", NULL);
    struct x86_state cpu;
    f->m->cpu.backend->get_state(&f->m->cpu, &cpu);
    cpu.regs[R_EAX] = 0x12345678;
    f->m->cpu.backend->set_state(&f->m->cpu, &cpu);
    memset(f->m->mem.ram + 0x1000, 0xab, 4096);

    GError *error = NULL;
    g_assert_true(snapshot_save(f->m, path, &error));
    g_assert_no_error(error);

    memset(f->m->mem.ram + 0x1000, 0x00, 4096);
    f->m->mem.ram[0x100000] = 0x77;
    f->widget.counter = 999;
    cpu.regs[R_EAX] = 0;
    f->m->cpu.backend->set_state(&f->m->cpu, &cpu);

    g_assert_true(snapshot_load(f->m, path, &error));
    g_assert_no_error(error);
    f->m->cpu.backend->get_state(&f->m->cpu, &cpu);
    g_assert_cmphex(cpu.regs[R_EAX], ==, 0x12345678);
    g_assert_cmphex(f->m->mem.ram[0x1000], ==, 0xab);
    g_assert_cmphex(f->m->mem.ram[0x1fff], ==, 0xab);
    g_assert_cmphex(f->m->mem.ram[0x100000], ==, 0x00);
    g_assert_cmpuint(f->widget.counter, ==, 2);

    struct snapshot_info info;
    g_assert_true(snapshot_read_info(path, &info, &error));
    g_assert_cmpuint(info.ram_size, ==, 2 << 20);
    g_assert_cmpstr(info.backend, ==, "interp");
    g_free(path);
}

static void test_damaged_files_change_nothing(struct fixture *f, gconstpointer data)
{
    (void)data;
    gchar *path = g_build_filename(f->dir, "s.snap", NULL);
    f->m->mem.ram[0x2000] = 0x11;
    g_assert_true(snapshot_save(f->m, path, NULL));
    gchar *good;
    gsize len;
    g_assert_true(g_file_get_contents(path, &good, &len, NULL));

    f->m->mem.ram[0x2000] = 0x22;
    f->widget.counter = 333;
    /* Flip one byte at many places, and cut the file at many lengths: every
     * such file is refused and the machine keeps its current state. */
    for (gsize at = 0; at < len; at += 1 + len / 97) {
        for (int cut = 0; cut < 2; cut++) {
            gchar *bad = g_memdup2(good, len);
            gsize bad_len = len;
            if (cut)
                bad_len = at;
            else
                bad[at] ^= 0x40;
            GError *error = NULL;
            g_assert_false(snapshot_load_buffer(f->m, (guint8 *)bad, bad_len, &error));
            g_assert_nonnull(error);
            g_error_free(error);
            g_assert_cmphex(f->m->mem.ram[0x2000], ==, 0x22);
            g_assert_cmpuint(f->widget.counter, ==, 333);
            g_free(bad);
        }
    }
    GError *error = NULL;
    g_assert_false(snapshot_load_buffer(f->m, (const guint8 *)"hello", 5, &error));
    g_assert_nonnull(strstr(error->message, "not a Vivarium snapshot"));
    g_error_free(error);
    g_free(good);
    g_free(path);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vmstate/round-trip-and-tolerance", test_vmstate_round_trip_and_tolerance);
    g_test_add("/snapshot/save-and-restore", struct fixture, NULL, fixture_set_up,
               test_save_and_restore, fixture_tear_down);
    g_test_add("/snapshot/damaged-files-change-nothing", struct fixture, NULL, fixture_set_up,
               test_damaged_files_change_nothing, fixture_tear_down);
    return g_test_run();
}
