/* Unit tests for engine/block: raw and qcow2 images, backing files,
 * compressed clusters, and the refusal of damaged headers. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <zlib.h>

#include "block/block.h"

static char *tmp_dir;

static char *tmp_path(const char *name)
{
    char *path = g_build_filename(tmp_dir, name, NULL);
    g_unlink(path);
    return path;
}

static void fill_pattern(uint8_t *buf, size_t len, uint64_t offset, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(((offset + i) * 2654435761u >> 7) ^ seed);
}

static void write_file(const char *path, const void *data, size_t len)
{
    GError *error = NULL;
    g_assert_true(g_file_set_contents(path, data, (gssize)len, &error));
}

static void test_raw(void)
{
    g_autofree char *path = tmp_path("raw.img");
    g_autofree uint8_t *zeros = g_malloc0(8192 + 100);
    write_file(path, zeros, 8192 + 100); /* a partial trailing sector */
    GError *error = NULL;
    struct block_device *bd = block_open(path, false, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(block_format_name(bd), ==, "raw");
    g_assert_cmpuint(block_length(bd), ==, 8292);
    g_assert_cmpuint(block_sector_count(bd, 512), ==, 16);

    uint8_t out[1024], in[1024];
    fill_pattern(out, sizeof(out), 0, 1);
    g_assert_cmpint(block_write_sectors(bd, 3, 512, out, 2), ==, 0);
    g_assert_cmpint(block_read(bd, 3 * 512, in, sizeof(in)), ==, 0);
    g_assert_cmpmem(in, sizeof(in), out, sizeof(out));
    /* Past the end, whole or in part, is refused. */
    g_assert_cmpint(block_read_sectors(bd, 15, 512, in, 2), ==, -EINVAL);
    g_assert_cmpint(block_read(bd, 8292 - 10, in, 11), ==, -EINVAL);
    g_assert_cmpint(block_read(bd, UINT64_MAX - 1, in, 4), ==, -EINVAL);
    g_assert_cmpint(block_flush(bd), ==, 0);
    block_close(bd);

    bd = block_open_raw(path, true, &error);
    g_assert_no_error(error);
    g_assert_true(block_is_readonly(bd));
    g_assert_cmpint(block_write(bd, 0, out, 16), ==, -EROFS);
    memset(in, 0, sizeof(in));
    g_assert_cmpint(block_read_sectors(bd, 3, 512, in, 2), ==, 0);
    g_assert_cmpmem(in, sizeof(in), out, sizeof(out));
    block_close(bd);
}

static void test_raw_locking(void)
{
    g_autofree char *path = tmp_path("locked.img");
    uint8_t zeros[512] = {0};
    write_file(path, zeros, sizeof(zeros));
    GError *error = NULL;
    struct block_device *writer = block_open(path, false, &error);
    g_assert_no_error(error);
    struct block_device *second = block_open(path, true, &error);
    g_assert_null(second);
    g_assert_error(error, BLOCK_ERROR, BLOCK_ERROR_IN_USE);
    g_clear_error(&error);
    block_close(writer);
}

static const struct {
    uint64_t offset;
    size_t len;
} scattered[] = {
    {0, 512},          {1000, 70000},     {5 * 1024 * 1024, 131072},
    {300000000, 3000}, {536870000, 2000}, /* crosses into the second L2 table */
    {1073741823, 1},   {1234, 10},
};

static void test_qcow2_create_write_reopen(void)
{
    g_autofree char *path = tmp_path("new.qcow2");
    GError *error = NULL;
    g_assert_true(qcow2_create(path, 1ull << 30, NULL, &error));
    g_assert_no_error(error);
    /* No silent overwrite. */
    g_assert_false(qcow2_create(path, 1ull << 20, NULL, &error));
    g_clear_error(&error);

    struct block_device *bd = block_open(path, false, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(block_format_name(bd), ==, "qcow2");
    g_assert_cmpuint(block_length(bd), ==, 1ull << 30);
    /* A new image reads as zeros. */
    uint8_t probe[4096], zero[4096] = {0};
    g_assert_cmpint(block_read(bd, 777777, probe, sizeof(probe)), ==, 0);
    g_assert_cmpmem(probe, sizeof(probe), zero, sizeof(zero));

    for (unsigned i = 0; i < G_N_ELEMENTS(scattered); i++) {
        g_autofree uint8_t *buf = g_malloc(scattered[i].len);
        fill_pattern(buf, scattered[i].len, scattered[i].offset, i);
        g_assert_cmpint(block_write(bd, scattered[i].offset, buf, scattered[i].len), ==, 0);
    }
    block_close(bd);

    bd = block_open(path, true, &error);
    g_assert_no_error(error);
    for (unsigned i = 0; i < G_N_ELEMENTS(scattered); i++) {
        g_autofree uint8_t *buf = g_malloc(scattered[i].len);
        g_autofree uint8_t *expected = g_malloc(scattered[i].len);
        fill_pattern(expected, scattered[i].len, scattered[i].offset, i);
        /* The last write overlapped the second: its bytes win. */
        if (i == 1) {
            fill_pattern(expected + 234, 10, 1234, 6);
        }
        g_assert_cmpint(block_read(bd, scattered[i].offset, buf, scattered[i].len), ==, 0);
        g_assert_cmpmem(buf, scattered[i].len, expected, scattered[i].len);
    }
    /* Untouched space between writes is still zero. */
    g_assert_cmpint(block_read(bd, 400000000, probe, sizeof(probe)), ==, 0);
    g_assert_cmpmem(probe, sizeof(probe), zero, sizeof(zero));
    block_close(bd);
}

static void test_qcow2_backing_and_cow(void)
{
    g_autofree char *base = tmp_path("base.raw");
    g_autofree char *overlay = tmp_path("overlay.qcow2");
    size_t base_len = 256 * 1024;
    g_autofree uint8_t *base_data = g_malloc(base_len);
    fill_pattern(base_data, base_len, 0, 0x55);
    write_file(base, base_data, base_len);

    GError *error = NULL;
    /* Relative to the overlay's folder; size 0 takes the base's length. */
    g_assert_true(qcow2_create(overlay, 0, "base.raw", &error));
    g_assert_no_error(error);
    struct block_device *bd = block_open(overlay, false, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(block_length(bd), ==, base_len);

    g_autofree uint8_t *buf = g_malloc(base_len);
    g_assert_cmpint(block_read(bd, 0, buf, base_len), ==, 0);
    g_assert_cmpmem(buf, base_len, base_data, base_len);

    /* A 100-byte write in the middle of a 64 KiB cluster copies the rest of
     * the cluster from the base. */
    uint8_t patch[100];
    memset(patch, 0xee, sizeof(patch));
    g_assert_cmpint(block_write(bd, 70000, patch, sizeof(patch)), ==, 0);
    block_close(bd);

    bd = block_open(overlay, true, &error);
    g_assert_no_error(error);
    g_autofree uint8_t *expected = g_memdup2(base_data, base_len);
    memcpy(expected + 70000, patch, sizeof(patch));
    g_assert_cmpint(block_read(bd, 0, buf, base_len), ==, 0);
    g_assert_cmpmem(buf, base_len, expected, base_len);
    block_close(bd);

    /* The base itself is untouched. */
    g_autofree char *contents = NULL;
    gsize length;
    g_assert_true(g_file_get_contents(base, &contents, &length, NULL));
    g_assert_cmpmem(contents, length, base_data, base_len);

    /* A chain: a second overlay on the first. */
    g_autofree char *top = tmp_path("top.qcow2");
    g_assert_true(qcow2_create(top, 0, overlay, &error));
    bd = block_open(top, true, &error);
    g_assert_no_error(error);
    g_assert_cmpint(block_read(bd, 0, buf, base_len), ==, 0);
    g_assert_cmpmem(buf, base_len, expected, base_len);
    block_close(bd);
}

static uint64_t file_be64(int fd, off_t offset)
{
    uint64_t v;
    g_assert_cmpint(pread(fd, &v, 8, offset), ==, 8);
    return GUINT64_FROM_BE(v);
}

/* Builds a compressed cluster by hand, as qemu-img convert -c would: raw
 * deflate data at an unaligned file offset, found through an L2 entry with
 * the compressed flag and a sector count. */
static void test_qcow2_compressed_read(void)
{
    g_autofree char *path = tmp_path("compressed.qcow2");
    GError *error = NULL;
    g_assert_true(qcow2_create(path, 1 << 20, NULL, &error));
    struct block_device *bd = block_open(path, false, &error);
    g_assert_no_error(error);
    uint8_t one = 1;
    g_assert_cmpint(block_write(bd, 65536, &one, 1), ==, 0); /* creates the L2 table */
    block_close(bd);

    const size_t cluster = 65536;
    g_autofree uint8_t *plain = g_malloc(cluster);
    for (size_t i = 0; i < cluster; i++)
        plain[i] = "compressible text, "[i % 19];
    uLongf packed_len = compressBound(cluster);
    g_autofree uint8_t *packed = g_malloc(packed_len);
    z_stream z = {0};
    g_assert_cmpint(deflateInit2(&z, 9, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY), ==, Z_OK);
    z.next_in = plain;
    z.avail_in = cluster;
    z.next_out = packed;
    z.avail_out = packed_len;
    g_assert_cmpint(deflate(&z, Z_FINISH), ==, Z_STREAM_END);
    packed_len = z.total_out;
    deflateEnd(&z);

    int fd = open(path, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    uint64_t l1_offset = file_be64(fd, 40);
    uint64_t l2_offset = file_be64(fd, (off_t)l1_offset) & 0x00fffffffffffe00ull;
    g_assert_cmpuint(l2_offset, !=, 0);
    uint64_t host = (uint64_t)lseek(fd, 0, SEEK_END) + 100; /* deliberately unaligned */
    g_assert_cmpint(pwrite(fd, packed, packed_len, (off_t)host), ==, (ssize_t)packed_len);
    uint64_t sectors = (host + packed_len - 1) / 512 - host / 512 + 1;
    unsigned offset_bits = 62 - (16 - 8);
    uint64_t entry = (1ull << 62) | ((sectors - 1) << offset_bits) | host;
    uint64_t be = GUINT64_TO_BE(entry);
    g_assert_cmpint(pwrite(fd, &be, 8, (off_t)l2_offset), ==, 8); /* guest cluster 0 */
    close(fd);

    bd = block_open(path, true, &error);
    g_assert_no_error(error);
    g_autofree uint8_t *buf = g_malloc(cluster);
    g_assert_cmpint(block_read(bd, 0, buf, cluster), ==, 0);
    g_assert_cmpmem(buf, cluster, plain, cluster);
    /* A read in pieces goes through the decompressed-cluster cache. */
    g_assert_cmpint(block_read(bd, 1000, buf, 512), ==, 0);
    g_assert_cmpmem(buf, 512, plain + 1000, 512);
    block_close(bd);

    /* Writing into the compressed cluster rewrites it uncompressed. */
    bd = block_open(path, false, &error);
    g_assert_no_error(error);
    uint8_t patch[16];
    memset(patch, 0x77, sizeof(patch));
    g_assert_cmpint(block_write(bd, 4000, patch, sizeof(patch)), ==, 0);
    memcpy(plain + 4000, patch, sizeof(patch));
    g_assert_cmpint(block_read(bd, 0, buf, cluster), ==, 0);
    g_assert_cmpmem(buf, cluster, plain, cluster);
    block_close(bd);
}

/* Header fields to damage, at their qcow2 offsets. */
enum corrupt_field { FIELD_U32, FIELD_U64 };

static const struct corrupt_case {
    const char *name;
    unsigned offset;
    enum corrupt_field width;
    uint64_t value;
    bool readonly;
    int code;
} corrupt_cases[] = {
    {"bad-magic", 0, FIELD_U32, 0x51464900, true, BLOCK_ERROR_CORRUPT},
    {"version-1", 4, FIELD_U32, 1, true, BLOCK_ERROR_UNSUPPORTED},
    {"version-4", 4, FIELD_U32, 4, true, BLOCK_ERROR_UNSUPPORTED},
    {"cluster-bits-8", 20, FIELD_U32, 8, true, BLOCK_ERROR_CORRUPT},
    {"cluster-bits-22", 20, FIELD_U32, 22, true, BLOCK_ERROR_CORRUPT},
    {"huge-size", 24, FIELD_U64, 1ull << 62, true, BLOCK_ERROR_CORRUPT},
    {"encrypted", 32, FIELD_U32, 1, true, BLOCK_ERROR_UNSUPPORTED},
    {"l1-too-small", 36, FIELD_U32, 0, true, BLOCK_ERROR_CORRUPT},
    {"l1-huge", 36, FIELD_U32, 0x10000000, true, BLOCK_ERROR_CORRUPT},
    {"l1-past-eof", 40, FIELD_U64, 1ull << 40, true, BLOCK_ERROR_CORRUPT},
    {"l1-misaligned", 40, FIELD_U64, 3 * 65536 + 8, true, BLOCK_ERROR_CORRUPT},
    {"refcount-table-past-eof", 48, FIELD_U64, 1ull << 33, true, BLOCK_ERROR_CORRUPT},
    {"refcount-table-empty", 56, FIELD_U32, 0, true, BLOCK_ERROR_CORRUPT},
    {"snapshots-writable", 60, FIELD_U32, 1, false, BLOCK_ERROR_UNSUPPORTED},
    {"dirty-writable", 72, FIELD_U64, 1, false, BLOCK_ERROR_UNSUPPORTED},
    {"corrupt-bit-writable", 72, FIELD_U64, 2, false, BLOCK_ERROR_UNSUPPORTED},
    {"external-data-file", 72, FIELD_U64, 4, true, BLOCK_ERROR_UNSUPPORTED},
    {"extended-l2", 72, FIELD_U64, 16, true, BLOCK_ERROR_UNSUPPORTED},
    {"unknown-incompatible", 72, FIELD_U64, 1ull << 40, true, BLOCK_ERROR_UNSUPPORTED},
    {"refcount-order-7", 96, FIELD_U32, 7, true, BLOCK_ERROR_CORRUPT},
    {"header-length-small", 100, FIELD_U32, 64, true, BLOCK_ERROR_CORRUPT},
    {"backing-name-past-eof", 8, FIELD_U64, 1ull << 30, true, BLOCK_ERROR_CORRUPT},
};

static void patch_field(const char *path, unsigned offset, enum corrupt_field width, uint64_t value)
{
    int fd = open(path, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    if (width == FIELD_U32) {
        uint32_t be = GUINT32_TO_BE((uint32_t)value);
        g_assert_cmpint(pwrite(fd, &be, 4, offset), ==, 4);
    } else {
        uint64_t be = GUINT64_TO_BE(value);
        g_assert_cmpint(pwrite(fd, &be, 8, offset), ==, 8);
    }
    close(fd);
}

static void test_qcow2_corrupt_headers(void)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(corrupt_cases); i++) {
        const struct corrupt_case *c = &corrupt_cases[i];
        g_autofree char *path = tmp_path("corrupt.qcow2");
        GError *error = NULL;
        g_assert_true(qcow2_create(path, 16 << 20, NULL, &error));
        patch_field(path, c->offset, c->width, c->value);
        if (c->offset == 8)
            patch_field(path, 16, FIELD_U32, 10); /* a backing name length */
        struct block_device *bd = block_open_qcow2(path, c->readonly, &error);
        if (bd || !g_error_matches(error, BLOCK_ERROR, c->code))
            g_error("case %s: expected refusal with code %d, got %s", c->name, c->code,
                    error ? error->message : "success");
        g_test_message("%s: %s", c->name, error->message);
        g_clear_error(&error);
    }

    /* The dirty bit still allows reading. */
    g_autofree char *path = tmp_path("dirty.qcow2");
    GError *error = NULL;
    g_assert_true(qcow2_create(path, 16 << 20, NULL, &error));
    patch_field(path, 72, FIELD_U64, 1);
    struct block_device *bd = block_open(path, true, &error);
    g_assert_no_error(error);
    block_close(bd);

    /* A truncated image. */
    g_autofree char *short_path = tmp_path("short.qcow2");
    write_file(short_path, "QFI\xfb\0\0\0\3", 8);
    g_assert_null(block_open(short_path, true, &error));
    g_assert_error(error, BLOCK_ERROR, BLOCK_ERROR_CORRUPT);
    g_clear_error(&error);
}

/* An image whose backing file is itself must be refused, not recursed into
 * until the stack runs out. */
static void test_qcow2_backing_loop(void)
{
    g_autofree char *a = tmp_path("loop-a.qcow2");
    g_autofree char *b = tmp_path("loop-b.qcow2");
    GError *error = NULL;
    g_assert_true(qcow2_create(a, 1 << 20, NULL, &error));
    g_assert_true(qcow2_create(b, 0, "loop-a.qcow2", &error));
    g_assert_no_error(error);
    /* Point a at b: rewrite a's header with a backing name. */
    int fd = open(a, O_RDWR);
    const char name[] = "loop-b.qcow2";
    g_assert_cmpint(pwrite(fd, name, sizeof(name) - 1, 1024), ==, sizeof(name) - 1);
    close(fd);
    patch_field(a, 8, FIELD_U64, 1024);
    patch_field(a, 16, FIELD_U32, sizeof(name) - 1);
    g_assert_null(block_open(a, true, &error));
    g_assert_nonnull(error);
    g_test_message("%s", error->message);
    g_assert_nonnull(strstr(error->message, "deeper"));
    g_clear_error(&error);
}

/* Random damage to the metadata must never crash: every open either fails
 * with a message or gives a device whose reads succeed or fail cleanly. */
static void test_qcow2_random_damage(void)
{
    g_autofree char *pristine = tmp_path("pristine.qcow2");
    GError *error = NULL;
    g_assert_true(qcow2_create(pristine, 4 << 20, NULL, &error));
    struct block_device *bd = block_open(pristine, false, &error);
    uint8_t data[8192];
    fill_pattern(data, sizeof(data), 0, 3);
    g_assert_cmpint(block_write(bd, 60000, data, sizeof(data)), ==, 0);
    block_close(bd);
    g_autofree char *image = NULL;
    gsize image_len;
    g_assert_true(g_file_get_contents(pristine, &image, &image_len, NULL));

    g_autofree char *path = tmp_path("damaged.qcow2");
    GRand *rand = g_rand_new_with_seed(1234);
    g_autofree uint8_t *buf = g_malloc(1 << 20);
    for (unsigned round = 0; round < 300; round++) {
        g_autofree char *copy = g_memdup2(image, image_len);
        for (unsigned flips = 0; flips < 4; flips++) {
            /* Aim at the header, the tables' first entries and the L2. */
            static const unsigned areas[] = {0, 65536, 131072, 196608, 262144};
            unsigned at = areas[g_rand_int_range(rand, 0, G_N_ELEMENTS(areas))] +
                          (unsigned)g_rand_int_range(rand, 0, 128);
            copy[at] ^= (char)(1u << g_rand_int_range(rand, 0, 8));
        }
        g_unlink(path);
        write_file(path, copy, image_len);
        bd = block_open_qcow2(path, round & 1, &error);
        if (!bd) {
            g_clear_error(&error);
            continue;
        }
        uint64_t len = MIN(block_length(bd), (uint64_t)(1 << 20));
        block_read(bd, 0, buf, len);
        if (!block_is_readonly(bd))
            block_write(bd, 0, buf, 4096);
        block_close(bd);
    }
    g_rand_free(rand);
}

/* The proxy passes I/O to the image it holds, keeps its length and
 * read-only flag while images are exchanged under it, and fails I/O while
 * it holds none. */
static void test_proxy(void)
{
    g_autofree char *first = tmp_path("proxy-first.img");
    g_autofree char *second = tmp_path("proxy-second.img");
    uint8_t data[4096], back[4096];
    fill_pattern(data, sizeof(data), 0, 1);
    write_file(first, data, sizeof(data));
    fill_pattern(data, sizeof(data), 0, 2);
    write_file(second, data, sizeof(data));

    GError *error = NULL;
    struct block_device *inner = block_open(first, false, &error);
    g_assert_no_error(error);
    struct block_device *proxy = block_proxy_new(inner);
    g_assert_true(block_proxy_inner(proxy) == inner);
    g_assert_cmpuint(block_length(proxy), ==, sizeof(data));
    g_assert_false(block_is_readonly(proxy));
    memset(data, 0x5a, 512);
    g_assert_cmpint(block_write_sectors(proxy, 2, 512, data, 1), ==, 0);
    g_assert_cmpint(block_read(inner, 1024, back, 512), ==, 0);
    g_assert_cmpmem(back, 512, data, 512);

    /* Swapped out, the first image comes back to the caller with the
     * proxy's write in it; the proxy then fails every request. */
    struct block_device *old = block_proxy_swap(proxy, NULL);
    g_assert_true(old == inner);
    block_close(old);
    g_assert_cmpint(block_read(proxy, 0, back, 512), ==, -EIO);
    g_assert_cmpint(block_write(proxy, 0, back, 512), ==, -EIO);
    g_autofree char *contents = NULL;
    gsize length;
    g_assert_true(g_file_get_contents(first, &contents, &length, NULL));
    g_assert_cmpmem(contents + 1024, 512, data, 512);

    /* Another image of the same length goes in under the same pointer. */
    struct block_device *next = block_open(second, false, &error);
    g_assert_no_error(error);
    g_assert_null(block_proxy_swap(proxy, next));
    fill_pattern(data, sizeof(data), 0, 2);
    g_assert_cmpint(block_read(proxy, 0, back, sizeof(back)), ==, 0);
    g_assert_cmpmem(back, sizeof(back), data, sizeof(data));
    g_assert_cmpint(block_flush(proxy), ==, 0);
    /* Closing the proxy closes the image it holds: it can be opened again
     * for writing. */
    block_close(proxy);
    next = block_open(second, false, &error);
    g_assert_no_error(error);
    block_close(next);
}

/* block_allocated() tells a qcow2 image's own clusters from those read
 * through to the backing file, in runs; a raw image stores everything. */
static void test_qcow2_allocated(void)
{
    g_autofree char *base = tmp_path("alloc-base.raw");
    g_autofree char *overlay = tmp_path("alloc-overlay.qcow2");
    size_t len = 8 * 65536;
    g_autofree uint8_t *data = g_malloc(len);
    fill_pattern(data, len, 0, 7);
    write_file(base, data, len);
    GError *error = NULL;
    g_assert_true(qcow2_create(overlay, 0, "alloc-base.raw", &error));
    struct block_device *bd = block_open(overlay, false, &error);
    g_assert_no_error(error);
    uint8_t patch[100];
    memset(patch, 0xcc, sizeof(patch));
    /* Clusters 2 and 3 (one write across their border) and 6. */
    g_assert_cmpint(block_write(bd, 3 * 65536 - 50, patch, sizeof(patch)), ==, 0);
    g_assert_cmpint(block_write(bd, 6 * 65536 + 10, patch, sizeof(patch)), ==, 0);

    static const struct {
        uint64_t offset, len;
        bool allocated;
        uint64_t run;
    } cases[] = {
        {0, 8 * 65536, false, 2 * 65536},         {2 * 65536, 6 * 65536, true, 2 * 65536},
        {4 * 65536, 4 * 65536, false, 2 * 65536}, {6 * 65536 + 5, 100, true, 100},
        {7 * 65536, 65536, false, 65536},         {100, 1000, false, 1000},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        bool allocated = !cases[i].allocated;
        uint64_t run = 0;
        g_assert_cmpint(block_allocated(bd, cases[i].offset, cases[i].len, &allocated, &run), ==,
                        0);
        g_assert_cmpint(allocated, ==, cases[i].allocated);
        g_assert_cmpuint(run, ==, cases[i].run);
    }
    block_close(bd);

    /* Opened alone, the overlay reads zeros where it stores nothing. */
    bd = block_open_qcow2_alone(overlay, true, &error);
    g_assert_no_error(error);
    uint8_t back[200];
    g_assert_cmpint(block_read(bd, 3 * 65536 - 100, back, sizeof(back)), ==, 0);
    for (size_t i = 0; i < 50; i++)
        g_assert_cmphex(back[i], ==, data[3 * 65536 - 100 + i]); /* copied up with cluster 2 */
    g_assert_cmpmem(back + 50, 100, patch, 100);
    g_assert_cmpint(block_read(bd, 65536, back, sizeof(back)), ==, 0);
    for (size_t i = 0; i < sizeof(back); i++)
        g_assert_cmphex(back[i], ==, 0);
    block_close(bd);

    struct block_device *raw = block_open(base, true, &error);
    g_assert_no_error(error);
    bool allocated = false;
    uint64_t run = 0;
    g_assert_cmpint(block_allocated(raw, 4096, 65536, &allocated, &run), ==, 0);
    g_assert_true(allocated);
    g_assert_cmpuint(run, ==, 65536);
    block_close(raw);
}

/* qcow2_set_backing() points an image at another backing file: after the
 * middle layer of base <- middle <- top has been copied into top, top is
 * rebased onto base and reads the same, with middle gone. */
static void test_qcow2_set_backing(void)
{
    g_autofree char *base = tmp_path("rebase-base.raw");
    g_autofree char *middle = tmp_path("rebase-middle.qcow2");
    g_autofree char *top = tmp_path("rebase-top.qcow2");
    size_t len = 4 * 65536;
    g_autofree uint8_t *expected = g_malloc(len);
    fill_pattern(expected, len, 0, 9);
    write_file(base, expected, len);
    GError *error = NULL;
    g_assert_true(qcow2_create(middle, 0, "rebase-base.raw", &error));
    struct block_device *bd = block_open(middle, false, &error);
    g_assert_no_error(error);
    memset(expected + 65536, 0x11, 65536);
    g_assert_cmpint(block_write(bd, 65536, expected + 65536, 65536), ==, 0);
    block_close(bd);
    g_assert_true(qcow2_create_overlay(top, "rebase-middle.qcow2", "qcow2", len, &error));
    g_assert_no_error(error);
    bd = block_open(top, false, &error);
    g_assert_no_error(error);
    memset(expected + 3 * 65536, 0x33, 65536);
    g_assert_cmpint(block_write(bd, 3 * 65536, expected + 3 * 65536, 65536), ==, 0);
    /* What middle stores, top takes over. */
    g_assert_cmpint(block_write(bd, 65536, expected + 65536, 65536), ==, 0);
    block_close(bd);

    g_assert_true(qcow2_set_backing(top, base, "raw", &error));
    g_assert_no_error(error);
    g_unlink(middle);
    bd = block_open(top, true, &error);
    g_assert_no_error(error);
    g_autofree uint8_t *back = g_malloc(len);
    g_assert_cmpint(block_read(bd, 0, back, len), ==, 0);
    g_assert_cmpmem(back, len, expected, len);
    block_close(bd);

    /* A backing name too long for the header's room is refused, and the
     * image stays as it was. */
    g_autofree char *long_name = g_strnfill(70000, 'x');
    g_assert_false(qcow2_set_backing(top, long_name, "raw", &error));
    g_assert_nonnull(error);
    g_clear_error(&error);
    bd = block_open(top, true, &error);
    g_assert_no_error(error);
    g_assert_cmpint(block_read(bd, 0, back, len), ==, 0);
    g_assert_cmpmem(back, len, expected, len);
    block_close(bd);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL);
    tmp_dir = g_dir_make_tmp("vivarium-block-XXXXXX", NULL);
    g_test_add_func("/block/raw", test_raw);
    g_test_add_func("/block/raw-locking", test_raw_locking);
    g_test_add_func("/block/proxy", test_proxy);
    g_test_add_func("/block/qcow2/allocated", test_qcow2_allocated);
    g_test_add_func("/block/qcow2/set-backing", test_qcow2_set_backing);
    g_test_add_func("/block/qcow2/create-write-reopen", test_qcow2_create_write_reopen);
    g_test_add_func("/block/qcow2/backing-and-cow", test_qcow2_backing_and_cow);
    g_test_add_func("/block/qcow2/compressed-read", test_qcow2_compressed_read);
    g_test_add_func("/block/qcow2/corrupt-headers", test_qcow2_corrupt_headers);
    g_test_add_func("/block/qcow2/backing-loop", test_qcow2_backing_loop);
    g_test_add_func("/block/qcow2/random-damage", test_qcow2_random_damage);
    int status = g_test_run();
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp_dir);
    (void)!system(cmd);
    return status;
}
