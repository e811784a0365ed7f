/* Unit tests for machine snapshots and state tables. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

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

static uint64_t le(const guint8 *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void append_le(GByteArray *out, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) {
        guint8 b = (guint8)(v >> (8 * i));
        g_byte_array_append(out, &b, 1);
    }
}

/* Rewrites a snapshot file as an older engine wrote it: every memory
 * section ("RAM ", "MEM ") in version 1 (deflated with zlib) or version 2
 * (one Zstandard frame), made from the machine's memory, which must still
 * be what the snapshot holds. Other sections are copied. */
static GByteArray *with_old_memory_sections(struct machine *m, const guint8 *file, gsize len,
                                            unsigned version)
{
    GByteArray *out = g_byte_array_new();
    g_byte_array_append(out, file, 64);
    uint32_t count = (uint32_t)le(file + 12, 4);
    gsize pos = 64;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t kind = (uint32_t)le(file + pos, 4);
        size_t name_len = file[pos + 8];
        g_autofree char *name = g_strndup((const char *)file + pos + 9, name_len);
        uint64_t payload_len = le(file + pos + 9 + name_len, 8);
        gsize end = pos + 9 + name_len + 8 + payload_len + 4;
        g_assert_cmpuint(end, <=, len);
        if (kind != 0x204d4152u && kind != 0x204d454du) { /* "RAM ", "MEM " */
            g_byte_array_append(out, file + pos, (guint)(end - pos));
            pos = end;
            continue;
        }
        const guint8 *memory = NULL;
        size_t size = 0;
        if (kind == 0x204d4152u) {
            memory = m->mem.ram;
            size = m->mem.ram_size;
        }
        for (guint b = 0; b < m->memory_blocks->len && !memory; b++) {
            const struct machine_memory_block *block =
                &g_array_index(m->memory_blocks, struct machine_memory_block, b);
            if (strcmp(block->name, name) == 0) {
                memory = block->host;
                size = block->size;
            }
        }
        g_assert_nonnull(memory);
        size_t bound = version == 1 ? compressBound(size) : ZSTD_compressBound(size);
        g_autofree guint8 *packed = g_malloc(bound);
        size_t packed_len = bound;
        if (version == 1) {
            uLongf n = bound;
            g_assert_cmpint(compress2(packed, &n, memory, size, 6), ==, Z_OK);
            packed_len = n;
        } else {
            packed_len = ZSTD_compress(packed, bound, memory, size, 3);
            g_assert_false(ZSTD_isError(packed_len));
        }
        gsize start = out->len;
        append_le(out, kind, 4);
        append_le(out, version, 4);
        append_le(out, name_len, 1);
        g_byte_array_append(out, (const guint8 *)name, (guint)name_len);
        append_le(out, packed_len, 8);
        g_byte_array_append(out, packed, (guint)packed_len);
        append_le(out, crc32(0, out->data + start, (uInt)(out->len - start)), 4);
        pos = end;
    }
    g_assert_cmpuint(pos, ==, len);
    guint8 *h = out->data;
    uint32_t crc = (uint32_t)crc32(0, h, 60);
    for (unsigned i = 0; i < 4; i++)
        h[60 + i] = (guint8)(crc >> (8 * i));
    return out;
}

/* Snapshots from older engines, with memory deflated by zlib (version 1)
 * or in one Zstandard frame (version 2), still load; damaged ones are
 * still refused. */
static void test_old_memory_encodings(struct fixture *f, gconstpointer data)
{
    (void)data;
    gchar *path = g_build_filename(f->dir, "s.snap", NULL);
    for (unsigned i = 0; i < f->m->mem.ram_size; i += 4096)
        f->m->mem.ram[i] = (guint8)(i >> 12);
    memset(f->m->mem.ram + 0x3000, 0x5c, 5000);
    GError *error = NULL;
    g_assert_true(snapshot_save(f->m, path, &error));
    g_assert_no_error(error);
    gchar *file;
    gsize len;
    g_assert_true(g_file_get_contents(path, &file, &len, NULL));
    GByteArray *old[2];
    for (unsigned v = 1; v <= 2; v++)
        old[v - 1] = with_old_memory_sections(f->m, (guint8 *)file, len, v);

    for (unsigned v = 1; v <= 2; v++) {
        memset(f->m->mem.ram, 0, f->m->mem.ram_size);
        f->widget.counter = 77;
        g_assert_true(snapshot_load_buffer(f->m, old[v - 1]->data, old[v - 1]->len, &error));
        g_assert_no_error(error);
        for (unsigned i = 0; i < f->m->mem.ram_size; i += 4096) {
            if (i != 0x3000 && i != 0x4000)
                g_assert_cmphex(f->m->mem.ram[i], ==, (guint8)(i >> 12));
        }
        g_assert_cmphex(f->m->mem.ram[0x3000 + 4999], ==, 0x5c);
        g_assert_cmpuint(f->widget.counter, ==, 2);

        /* Damage in the compressed memory is found before anything changes. */
        GByteArray *bad = old[v - 1];
        bad->data[bad->len - 100] ^= 0x01;
        f->m->mem.ram[0x3000] = 0x99;
        g_assert_false(snapshot_load_buffer(f->m, bad->data, bad->len, &error));
        g_assert_nonnull(error);
        g_clear_error(&error);
        g_assert_cmphex(f->m->mem.ram[0x3000], ==, 0x99);
        g_byte_array_unref(bad);
    }
    g_free(file);
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
    g_test_add("/snapshot/old-memory-encodings", struct fixture, NULL, fixture_set_up,
               test_old_memory_encodings, fixture_tear_down);
    return g_test_run();
}
