/* qcow2 images, versions 2 and 3 (QEMU docs/interop/qcow2.txt).
 *
 * Guest offsets map through a two-level table (L1 -> L2 -> data cluster);
 * every host cluster in use has a reference count in refcount blocks found
 * through the refcount table. Vivarium reads standard, zero and compressed
 * clusters and reads unallocated ones from the backing file or as zeros; it
 * writes by allocating whole clusters at the end of the file.
 *
 * Crash safety comes from ordering: a new cluster's data and its refcount
 * are written first, and made durable (fdatasync) before any table that
 * points at the cluster reaches the disk. A process killed at any moment
 * therefore leaves at worst a leaked cluster (refcount without a reference),
 * which is harmless, and never a reference to unwritten data or a cluster
 * with a zero refcount. L2 tables are cached and written back at a guest
 * flush, on eviction and at close, each time after an fdatasync.
 *
 * Not supported, and refused at open with a message saying so: encryption,
 * external data files, extended L2 entries, compression other than zlib,
 * and writing to images with internal snapshots or with the dirty or corrupt
 * bit set (those open read-only; `qemu-img check -r all` repairs them).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "block.h"
#include "block_internal.h"

#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES     (32u * 1024 * 1024)
#define QCOW2_MAX_RT_BYTES     (8u * 1024 * 1024)
#define QCOW2_MAX_SIZE         (1ull << 56)
#define QCOW2_MAX_BACKING_NAME 1023

#define QCOW2_V2_HEADER_LENGTH 72
#define QCOW2_V3_HEADER_LENGTH 104
#define QCOW2_CREATE_HEADER    112 /* v3 header plus the compression type byte, padded */

#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)

#define QCOW2_EXT_END            0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_DATA_FILE      0x44415441u

/* Table entry bits. */
#define QCOW2_OFLAG_COPIED     (1ull << 63) /* refcount is exactly one: writable in place */
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull
#define QCOW2_L1_RESERVED      0x7f000000000001ffull
#define QCOW2_L2_RESERVED      0x3f000000000001feull
#define QCOW2_RT_RESERVED      0x00000000000001ffull

#define QCOW2_L2_CACHE_MAX_BYTES (8u * 1024 * 1024)
#define QCOW2_L2_CACHE_MIN_SLOTS 4
#define QCOW2_L2_CACHE_MAX_SLOTS 32

struct qcow2_l2_slot {
    uint64_t offset;   /* host offset of the table; 0 when the slot is empty */
    uint64_t *entries; /* host byte order */
    uint64_t last_use;
    bool dirty;
};

enum qcow2_cluster_kind {
    QCOW2_UNALLOCATED, /* read from the backing file, or zeros */
    QCOW2_ZERO,        /* reads as zeros; may still own a host cluster */
    QCOW2_NORMAL,
    QCOW2_COMPRESSED,
};

struct qcow2_mapping {
    enum qcow2_cluster_kind kind;
    uint64_t host_offset; /* NORMAL, or a ZERO cluster with a preallocated host cluster */
    bool copied;          /* the host cluster may be written in place */
    uint64_t entry;       /* the raw L2 entry (COMPRESSED needs its fields) */
};

struct qcow2_image {
    struct block_device bd;
    int fd;
    unsigned version;
    unsigned cluster_bits;
    uint64_t cluster_size;
    unsigned l2_bits;
    uint64_t file_size;  /* grows as clusters are appended */
    uint64_t end_offset; /* where the next cluster is allocated */

    uint64_t *l1; /* host byte order */
    uint32_t l1_size;
    uint64_t l1_offset;

    uint64_t *refcount_table;
    uint64_t refcount_table_offset;
    uint64_t refcount_table_entries;
    uint32_t refcount_table_clusters;
    unsigned refcount_order;
    uint64_t refcount_block_entries;
    uint64_t refcount_max;

    struct block_device *backing;

    struct qcow2_l2_slot *l2_cache;
    unsigned l2_cache_slots;
    uint64_t use_counter;

    /* Data written since the last fdatasync, which must reach the disk
     * before metadata pointing at it does. */
    bool unsynced;

    uint8_t *cluster_buf;
    uint8_t *compressed_buf; /* up to two clusters of deflate input */
    uint8_t *decompressed;   /* the last compressed cluster read, by its L2 entry */
    uint64_t decompressed_entry;
    bool decompressed_valid;

    bool reported_corruption;
    bool without_backing; /* opened alone: the backing file is not read */
};

static inline uint64_t be64_at(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return GUINT64_FROM_BE(v);
}

static inline uint32_t be32_at(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return GUINT32_FROM_BE(v);
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
    v = GUINT64_TO_BE(v);
    memcpy(p, &v, 8);
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    v = GUINT32_TO_BE(v);
    memcpy(p, &v, 4);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
    v = GUINT16_TO_BE(v);
    memcpy(p, &v, 2);
}

/* A relative backing file name is relative to the image's folder. */
static char *resolve_backing(const char *image_path, const char *name)
{
    if (g_path_is_absolute(name))
        return g_strdup(name);
    g_autofree char *dir = g_path_get_dirname(image_path);
    return g_build_filename(dir, name, NULL);
}

/* Damage found after open: the request fails and the user hears about it
 * once, instead of once per sector. */
static int qcow2_corrupt(struct qcow2_image *s, const char *what, uint64_t value)
{
    if (!s->reported_corruption) {
        g_warning("%s: damaged qcow2 image: %s (0x%" G_GINT64_MODIFIER "x); "
                  "`qemu-img check` can examine it",
                  s->bd.path, what, value);
        s->reported_corruption = true;
    }
    return -EIO;
}

static bool cluster_aligned(const struct qcow2_image *s, uint64_t offset)
{
    return (offset & (s->cluster_size - 1)) == 0;
}

static int host_write(struct qcow2_image *s, const void *buf, size_t len, uint64_t offset)
{
    int ret = block_host_pwrite(s->fd, buf, len, offset);
    if (ret == 0 && offset + len > s->file_size)
        s->file_size = offset + len;
    return ret;
}

static int sync_if_needed(struct qcow2_image *s)
{
    if (!s->unsynced)
        return 0;
    int ret = block_host_sync(s->fd);
    if (ret == 0)
        s->unsynced = false;
    return ret;
}

/* ---- refcounts ---- */

static uint64_t refcount_get_in(const uint8_t *word, unsigned bit, unsigned bits)
{
    if (bits >= 8) {
        uint64_t v = 0;
        for (unsigned i = 0; i < bits / 8; i++)
            v = (v << 8) | word[bit / 8 + i];
        return v;
    }
    /* Sub-byte refcounts fill each byte from its least significant bit. */
    return (word[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
}

static void refcount_set_in(uint8_t *word, unsigned bit, unsigned bits, uint64_t value)
{
    if (bits >= 8) {
        for (unsigned i = bits / 8; i-- > 0;) {
            word[bit / 8 + i] = (uint8_t)value;
            value >>= 8;
        }
        return;
    }
    uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
    word[bit / 8] = (uint8_t)((word[bit / 8] & ~mask) | ((value << (bit % 8)) & mask));
}

static int refcount_block_offset(struct qcow2_image *s, uint64_t rt_index, uint64_t *offset)
{
    uint64_t entry = s->refcount_table[rt_index];
    if (entry & QCOW2_RT_RESERVED)
        return qcow2_corrupt(s, "refcount table entry with reserved bits", entry);
    if (entry != 0 && (!cluster_aligned(s, entry) || entry >= s->end_offset))
        return qcow2_corrupt(s, "refcount block outside the image", entry);
    *offset = entry;
    return 0;
}

static int grow_refcount_table(struct qcow2_image *s, uint64_t needed_index);
static int allocate_refcount_block(struct qcow2_image *s, uint64_t rt_index);

/* Applies delta to the refcount of the host cluster at offset, or sets it
 * to value when absolute. */
static int refcount_update(struct qcow2_image *s, uint64_t offset, int64_t delta, bool absolute)
{
    uint64_t cluster = offset >> s->cluster_bits;
    uint64_t rt_index = cluster / s->refcount_block_entries;
    uint64_t index = cluster % s->refcount_block_entries;
    int ret;

    if (rt_index >= s->refcount_table_entries) {
        ret = grow_refcount_table(s, rt_index);
        if (ret < 0)
            return ret;
    }
    uint64_t block;
    ret = refcount_block_offset(s, rt_index, &block);
    if (ret < 0)
        return ret;
    if (block == 0) {
        if (!absolute && delta < 0)
            return qcow2_corrupt(s, "freeing a cluster without a refcount block", offset);
        ret = allocate_refcount_block(s, rt_index);
        if (ret < 0)
            return ret;
        block = s->refcount_table[rt_index];
    }

    unsigned bits = 1u << s->refcount_order;
    uint64_t bit = index * bits;
    uint64_t word_offset = block + (bit / 64) * 8;
    uint8_t word[8];
    ret = block_host_pread(s->fd, word, sizeof(word), word_offset);
    if (ret < 0)
        return ret;
    unsigned bit_in_word = (unsigned)(bit % 64);
    uint64_t value = refcount_get_in(word, bit_in_word, bits);
    if (absolute) {
        value = (uint64_t)delta;
    } else if (delta < 0) {
        if (value == 0)
            return qcow2_corrupt(s, "freeing a cluster whose refcount is zero", offset);
        value--;
    } else {
        if (value >= s->refcount_max)
            return qcow2_corrupt(s, "refcount overflow", offset);
        value++;
    }
    refcount_set_in(word, bit_in_word, bits, value);
    ret = host_write(s, word, sizeof(word), word_offset);
    if (ret == 0)
        s->unsynced = true;
    return ret;
}

static uint64_t allocate_clusters(struct qcow2_image *s, uint64_t count)
{
    uint64_t offset = s->end_offset;
    s->end_offset += count * s->cluster_size;
    return offset;
}

static int write_refcount_table_entry(struct qcow2_image *s, uint64_t rt_index, uint64_t block)
{
    uint8_t be[8];
    put_be64(be, block);
    int ret = host_write(s, be, sizeof(be), s->refcount_table_offset + rt_index * 8);
    if (ret == 0)
        s->refcount_table[rt_index] = block;
    return ret;
}

/* A new refcount block goes at the end of the file. It normally covers its
 * own cluster; when it does not, that cluster's refcount is set first, so
 * the table never points at a block that is not itself counted. */
static int allocate_refcount_block(struct qcow2_image *s, uint64_t rt_index)
{
    uint64_t block = allocate_clusters(s, 1);
    uint64_t own = block >> s->cluster_bits;
    uint8_t *buf = g_malloc0(s->cluster_size);
    int ret;
    if (own / s->refcount_block_entries == rt_index) {
        uint64_t bit = (own % s->refcount_block_entries) << s->refcount_order;
        refcount_set_in(buf + (bit / 64) * 8, (unsigned)(bit % 64), 1u << s->refcount_order, 1);
    } else {
        ret = refcount_update(s, block, 1, true);
        if (ret < 0)
            goto out;
    }
    ret = host_write(s, buf, s->cluster_size, block);
    if (ret < 0)
        goto out;
    s->unsynced = true;
    ret = sync_if_needed(s);
    if (ret < 0)
        goto out;
    ret = write_refcount_table_entry(s, rt_index, block);
out:
    g_free(buf);
    return ret;
}

/* Moves the refcount table to a bigger one at the end of the file. The new
 * table, and refcount blocks for the clusters it and they occupy, are
 * written and synced before the header points at them; the old table's
 * clusters are freed last. */
static int grow_refcount_table(struct qcow2_image *s, uint64_t needed_index)
{
    uint64_t per_cluster = s->cluster_size / 8;
    uint64_t old_entries = s->refcount_table_entries;
    uint64_t new_entries = MAX(needed_index + 1, old_entries * 2);
    uint64_t table_clusters, new_blocks, first_rt, last_rt;
    uint64_t start = s->end_offset;
    int ret;

    for (;;) {
        new_entries = (new_entries + per_cluster - 1) / per_cluster * per_cluster;
        if (new_entries * 8 > QCOW2_MAX_RT_BYTES)
            return -EFBIG;
        table_clusters = new_entries / per_cluster;
        /* The blocks covering the new clusters are placed after the table;
         * adding them can extend the area to cover, so iterate to a fixed
         * point. */
        new_blocks = 0;
        for (;;) {
            uint64_t end = start + (table_clusters + new_blocks) * s->cluster_size;
            first_rt = (start >> s->cluster_bits) / s->refcount_block_entries;
            last_rt = ((end - 1) >> s->cluster_bits) / s->refcount_block_entries;
            uint64_t missing = 0;
            for (uint64_t rt = first_rt; rt <= last_rt; rt++) {
                if (rt >= old_entries || s->refcount_table[rt] == 0)
                    missing++;
            }
            if (missing == new_blocks)
                break;
            new_blocks = missing;
        }
        if (last_rt < new_entries)
            break;
        new_entries = (last_rt + 1) * 2;
    }

    uint64_t table_offset = allocate_clusters(s, table_clusters + new_blocks);
    uint64_t end = s->end_offset;
    uint64_t *table = g_new0(uint64_t, new_entries);
    memcpy(table, s->refcount_table, old_entries * sizeof(uint64_t));
    uint8_t *block_buf = g_malloc(s->cluster_size);
    uint8_t *table_buf = NULL;

    /* Fill and write the new blocks. */
    uint64_t next_block = table_offset + table_clusters * s->cluster_size;
    for (uint64_t rt = first_rt; rt <= last_rt; rt++) {
        if (rt < old_entries && s->refcount_table[rt] != 0)
            continue;
        memset(block_buf, 0, s->cluster_size);
        for (uint64_t c = table_offset >> s->cluster_bits; c < end >> s->cluster_bits; c++) {
            if (c / s->refcount_block_entries != rt)
                continue;
            uint64_t bit = (c % s->refcount_block_entries) << s->refcount_order;
            refcount_set_in(block_buf + (bit / 64) * 8, (unsigned)(bit % 64),
                            1u << s->refcount_order, 1);
        }
        ret = host_write(s, block_buf, s->cluster_size, next_block);
        if (ret < 0)
            goto out;
        table[rt] = next_block;
        next_block += s->cluster_size;
    }
    /* Clusters of the new area that fall under existing blocks are counted
     * there; until the header switches they are merely leaked. */
    for (uint64_t c = table_offset >> s->cluster_bits; c < end >> s->cluster_bits; c++) {
        uint64_t rt = c / s->refcount_block_entries;
        if (rt < old_entries && s->refcount_table[rt] != 0) {
            ret = refcount_update(s, c << s->cluster_bits, 1, true);
            if (ret < 0)
                goto out;
        }
    }

    table_buf = g_malloc(new_entries * 8);
    for (uint64_t i = 0; i < new_entries; i++)
        put_be64(table_buf + i * 8, table[i]);
    ret = host_write(s, table_buf, new_entries * 8, table_offset);
    if (ret < 0)
        goto out;
    s->unsynced = true;
    ret = sync_if_needed(s);
    if (ret < 0)
        goto out;

    /* refcount_table_offset and refcount_table_clusters are adjacent, so
     * one small write switches both. */
    uint8_t header[12];
    put_be64(header, table_offset);
    put_be32(header + 8, (uint32_t)table_clusters);
    ret = host_write(s, header, sizeof(header), 48);
    if (ret < 0)
        goto out;
    s->unsynced = true;
    ret = sync_if_needed(s);
    if (ret < 0)
        goto out;

    uint64_t old_offset = s->refcount_table_offset;
    uint32_t old_clusters = s->refcount_table_clusters;
    g_free(s->refcount_table);
    s->refcount_table = table;
    table = NULL;
    s->refcount_table_offset = table_offset;
    s->refcount_table_entries = new_entries;
    s->refcount_table_clusters = (uint32_t)table_clusters;
    for (uint32_t i = 0; i < old_clusters; i++) {
        ret = refcount_update(s, old_offset + (uint64_t)i * s->cluster_size, -1, false);
        if (ret < 0)
            goto out;
    }
out:
    g_free(table);
    g_free(block_buf);
    g_free(table_buf);
    return ret;
}

/* ---- L2 tables ---- */

static int l2_write_back(struct qcow2_image *s, struct qcow2_l2_slot *slot)
{
    if (!slot->dirty)
        return 0;
    int ret = sync_if_needed(s);
    if (ret < 0)
        return ret;
    uint64_t entries = s->cluster_size / 8;
    uint8_t *buf = g_malloc(s->cluster_size);
    for (uint64_t i = 0; i < entries; i++)
        put_be64(buf + i * 8, slot->entries[i]);
    ret = host_write(s, buf, s->cluster_size, slot->offset);
    g_free(buf);
    if (ret == 0)
        slot->dirty = false;
    return ret;
}

static int l2_cache_get(struct qcow2_image *s, uint64_t offset, struct qcow2_l2_slot **out)
{
    struct qcow2_l2_slot *victim = NULL;
    for (unsigned i = 0; i < s->l2_cache_slots; i++) {
        struct qcow2_l2_slot *slot = &s->l2_cache[i];
        if (slot->offset == offset) {
            slot->last_use = ++s->use_counter;
            *out = slot;
            return 0;
        }
        if (!victim || slot->last_use < victim->last_use)
            victim = slot;
    }
    int ret = l2_write_back(s, victim);
    if (ret < 0)
        return ret;
    victim->offset = 0;
    if (!victim->entries)
        victim->entries = g_malloc(s->cluster_size);
    ret = block_host_pread(s->fd, victim->entries, s->cluster_size, offset);
    if (ret < 0)
        return ret;
    for (uint64_t i = 0; i < s->cluster_size / 8; i++)
        victim->entries[i] = GUINT64_FROM_BE(victim->entries[i]);
    victim->offset = offset;
    victim->last_use = ++s->use_counter;
    *out = victim;
    return 0;
}

/* Makes a new, empty L2 table for l1_index: the table is written and synced
 * before the L1 entry points at it. */
static int l2_allocate(struct qcow2_image *s, uint64_t l1_index, struct qcow2_l2_slot **out)
{
    uint64_t offset = allocate_clusters(s, 1);
    memset(s->cluster_buf, 0, s->cluster_size);
    int ret = host_write(s, s->cluster_buf, s->cluster_size, offset);
    if (ret < 0)
        return ret;
    s->unsynced = true;
    ret = refcount_update(s, offset, 1, true);
    if (ret < 0)
        return ret;
    ret = sync_if_needed(s);
    if (ret < 0)
        return ret;
    uint8_t be[8];
    uint64_t entry = offset | QCOW2_OFLAG_COPIED;
    put_be64(be, entry);
    ret = host_write(s, be, sizeof(be), s->l1_offset + l1_index * 8);
    if (ret < 0)
        return ret;
    s->unsynced = true;
    s->l1[l1_index] = entry;
    return l2_cache_get(s, offset, out);
}

/* Finds the L2 table covering guest_offset; *slot is NULL when there is none
 * and allocate is false. */
static int l2_lookup(struct qcow2_image *s, uint64_t guest_offset, bool allocate,
                     struct qcow2_l2_slot **slot)
{
    uint64_t l1_index = guest_offset >> (s->cluster_bits + s->l2_bits);
    *slot = NULL;
    if (l1_index >= s->l1_size)
        return qcow2_corrupt(s, "guest offset beyond the L1 table", guest_offset);
    uint64_t entry = s->l1[l1_index];
    if (entry & QCOW2_L1_RESERVED)
        return qcow2_corrupt(s, "L1 entry with reserved bits", entry);
    uint64_t offset = entry & QCOW2_OFFSET_MASK;
    if (offset == 0)
        return allocate ? l2_allocate(s, l1_index, slot) : 0;
    if (!cluster_aligned(s, offset) || offset >= s->end_offset)
        return qcow2_corrupt(s, "L2 table outside the image", entry);
    if (allocate && !(entry & QCOW2_OFLAG_COPIED))
        return qcow2_corrupt(s, "shared L2 table", entry);
    return l2_cache_get(s, offset, slot);
}

static int classify(struct qcow2_image *s, uint64_t entry, struct qcow2_mapping *map)
{
    *map = (struct qcow2_mapping){.kind = QCOW2_UNALLOCATED, .entry = entry};
    if (entry & QCOW2_OFLAG_COMPRESSED) {
        map->kind = QCOW2_COMPRESSED;
        return 0;
    }
    if (entry & QCOW2_L2_RESERVED)
        return qcow2_corrupt(s, "L2 entry with reserved bits", entry);
    uint64_t offset = entry & QCOW2_OFFSET_MASK;
    map->copied = (entry & QCOW2_OFLAG_COPIED) != 0;
    if (offset != 0 && (!cluster_aligned(s, offset) || offset >= s->end_offset))
        return qcow2_corrupt(s, "data cluster outside the image", entry);
    map->host_offset = offset;
    if (entry & QCOW2_OFLAG_ZERO) {
        if (s->version < 3)
            return qcow2_corrupt(s, "zero flag in a version 2 image", entry);
        map->kind = QCOW2_ZERO;
    } else if (offset != 0) {
        map->kind = QCOW2_NORMAL;
    }
    return 0;
}

static int lookup_cluster(struct qcow2_image *s, uint64_t guest_offset, struct qcow2_mapping *map)
{
    struct qcow2_l2_slot *slot;
    int ret = l2_lookup(s, guest_offset, false, &slot);
    if (ret < 0)
        return ret;
    if (!slot) {
        *map = (struct qcow2_mapping){.kind = QCOW2_UNALLOCATED};
        return 0;
    }
    uint64_t l2_index = (guest_offset >> s->cluster_bits) & ((1ull << s->l2_bits) - 1);
    return classify(s, slot->entries[l2_index], map);
}

/* ---- reading ---- */

/* The host range of a compressed cluster: the offset takes the low bits of
 * the entry and the count of extra 512-byte sectors the rest. */
static void compressed_range(const struct qcow2_image *s, uint64_t entry, uint64_t *offset,
                             uint64_t *length)
{
    unsigned offset_bits = 62 - (s->cluster_bits - 8);
    uint64_t host = entry & ((1ull << offset_bits) - 1);
    uint64_t sectors = ((entry >> offset_bits) & ((1ull << (s->cluster_bits - 8)) - 1)) + 1;
    *offset = host;
    *length = sectors * 512 - (host & 511);
}

static int read_compressed(struct qcow2_image *s, uint64_t entry)
{
    if (s->decompressed_valid && s->decompressed_entry == entry)
        return 0;
    uint64_t host, length;
    compressed_range(s, entry, &host, &length);
    if (host >= s->file_size)
        return qcow2_corrupt(s, "compressed cluster beyond the end of the file", entry);
    /* The last compressed cluster may end before its last sector does. */
    length = MIN(length, s->file_size - host);
    int ret = block_host_pread(s->fd, s->compressed_buf, length, host);
    if (ret < 0)
        return ret;

    z_stream z = {0};
    if (inflateInit2(&z, -15) != Z_OK)
        return -ENOMEM;
    z.next_in = s->compressed_buf;
    z.avail_in = (uInt)length;
    z.next_out = s->decompressed;
    z.avail_out = (uInt)s->cluster_size;
    int zret = inflate(&z, Z_FINISH);
    bool complete = z.avail_out == 0 && (zret == Z_STREAM_END || zret == Z_BUF_ERROR);
    inflateEnd(&z);
    s->decompressed_valid = false;
    if (!complete)
        return qcow2_corrupt(s, "compressed cluster does not decompress", entry);
    s->decompressed_entry = entry;
    s->decompressed_valid = true;
    return 0;
}

static int read_backing(struct qcow2_image *s, uint64_t offset, uint8_t *buf, size_t len)
{
    size_t have = 0;
    if (s->backing && offset < s->backing->length) {
        have = (size_t)MIN((uint64_t)len, s->backing->length - offset);
        int ret = block_read(s->backing, offset, buf, have);
        if (ret < 0)
            return ret;
    }
    memset(buf + have, 0, len - have);
    return 0;
}

static int read_mapped(struct qcow2_image *s, const struct qcow2_mapping *map,
                       uint64_t guest_offset, uint8_t *buf, size_t len)
{
    uint64_t in_cluster = guest_offset & (s->cluster_size - 1);
    int ret;
    switch (map->kind) {
    case QCOW2_UNALLOCATED:
        return read_backing(s, guest_offset, buf, len);
    case QCOW2_ZERO:
        memset(buf, 0, len);
        return 0;
    case QCOW2_NORMAL:
        return block_host_pread(s->fd, buf, len, map->host_offset + in_cluster);
    case QCOW2_COMPRESSED:
        ret = read_compressed(s, map->entry);
        if (ret < 0)
            return ret;
        memcpy(buf, s->decompressed + in_cluster, len);
        return 0;
    }
    return -EIO;
}

static int qcow2_read(struct block_device *bd, uint64_t offset, void *buf, size_t len)
{
    struct qcow2_image *s = (struct qcow2_image *)bd;
    uint8_t *p = buf;
    while (len > 0) {
        uint64_t in_cluster = offset & (s->cluster_size - 1);
        size_t chunk = (size_t)MIN((uint64_t)len, s->cluster_size - in_cluster);
        struct qcow2_mapping map;
        int ret = lookup_cluster(s, offset, &map);
        if (ret == 0)
            ret = read_mapped(s, &map, offset, p, chunk);
        if (ret < 0)
            return ret;
        p += chunk;
        offset += chunk;
        len -= chunk;
    }
    return 0;
}

/* ---- writing ---- */

/* The host clusters a compressed cluster's bytes touch each hold one
 * reference for it. */
static int free_compressed(struct qcow2_image *s, uint64_t entry)
{
    uint64_t host, length;
    compressed_range(s, entry, &host, &length);
    length = MIN(length, s->file_size - MIN(host, s->file_size));
    if (length == 0)
        return 0;
    uint64_t first = host >> s->cluster_bits;
    uint64_t last = (host + length - 1) >> s->cluster_bits;
    for (uint64_t c = first; c <= last; c++) {
        int ret = refcount_update(s, c << s->cluster_bits, -1, false);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* Writes part of one cluster. A cluster not writable in place is built
 * whole in a new host cluster: its old contents (backing file, zeros,
 * decompressed data or a shared cluster) around the new bytes. */
static int write_cluster(struct qcow2_image *s, uint64_t offset, const uint8_t *data, size_t len)
{
    struct qcow2_l2_slot *slot;
    int ret = l2_lookup(s, offset, true, &slot);
    if (ret < 0)
        return ret;
    uint64_t l2_index = (offset >> s->cluster_bits) & ((1ull << s->l2_bits) - 1);
    struct qcow2_mapping map;
    ret = classify(s, slot->entries[l2_index], &map);
    if (ret < 0)
        return ret;
    uint64_t in_cluster = offset & (s->cluster_size - 1);

    if (map.kind == QCOW2_NORMAL && map.copied) {
        ret = host_write(s, data, len, map.host_offset + in_cluster);
        if (ret == 0)
            s->unsynced = true;
        return ret;
    }

    uint64_t cluster_start = offset - in_cluster;
    size_t cluster_len = (size_t)MIN(s->cluster_size, s->bd.length - cluster_start);
    if (len < cluster_len) {
        if (map.kind == QCOW2_ZERO)
            memset(s->cluster_buf, 0, cluster_len);
        else
            ret = read_mapped(s, &map, cluster_start, s->cluster_buf, cluster_len);
        if (ret < 0)
            return ret;
    }
    memset(s->cluster_buf + cluster_len, 0, s->cluster_size - cluster_len);
    memcpy(s->cluster_buf + in_cluster, data, len);

    /* A zero cluster that still owns its host cluster is reused: until the
     * L2 entry loses the zero flag, the old contents stay zeros. */
    bool reuse = map.kind == QCOW2_ZERO && map.host_offset != 0 && map.copied;
    uint64_t host = reuse ? map.host_offset : allocate_clusters(s, 1);
    ret = host_write(s, s->cluster_buf, s->cluster_size, host);
    if (ret < 0)
        return ret;
    s->unsynced = true;
    if (!reuse) {
        ret = refcount_update(s, host, 1, true);
        if (ret < 0)
            return ret;
    }
    if (s->decompressed_valid && map.kind == QCOW2_COMPRESSED)
        s->decompressed_valid = false;
    slot->entries[l2_index] = host | QCOW2_OFLAG_COPIED;
    slot->dirty = true;

    /* A replaced cluster loses its reference only once the new entry is on
     * disk; freeing it first would leave a reference to a free cluster. */
    bool frees_old =
        map.kind == QCOW2_COMPRESSED || (map.host_offset != 0 && !map.copied && !reuse);
    if (frees_old) {
        ret = l2_write_back(s, slot);
        if (ret == 0) {
            s->unsynced = true;
            ret = sync_if_needed(s);
        }
        /* The guest's data is safe by now: a failure to free only leaks
         * the old cluster, and has been reported. */
        if (ret == 0 && map.kind == QCOW2_COMPRESSED)
            free_compressed(s, map.entry);
        else if (ret == 0)
            refcount_update(s, map.host_offset, -1, false);
    }
    return ret;
}

static int qcow2_write(struct block_device *bd, uint64_t offset, const void *buf, size_t len)
{
    struct qcow2_image *s = (struct qcow2_image *)bd;
    const uint8_t *p = buf;
    while (len > 0) {
        uint64_t in_cluster = offset & (s->cluster_size - 1);
        size_t chunk = (size_t)MIN((uint64_t)len, s->cluster_size - in_cluster);
        int ret = write_cluster(s, offset, p, chunk);
        if (ret < 0)
            return ret;
        p += chunk;
        offset += chunk;
        len -= chunk;
    }
    return 0;
}

static int qcow2_allocated(struct block_device *bd, uint64_t offset, uint64_t len, bool *allocated,
                           uint64_t *run)
{
    struct qcow2_image *s = (struct qcow2_image *)bd;
    uint64_t done = 0;
    while (done < len) {
        struct qcow2_mapping map;
        int ret = lookup_cluster(s, offset + done, &map);
        if (ret < 0)
            return ret;
        bool here = map.kind != QCOW2_UNALLOCATED;
        if (done == 0)
            *allocated = here;
        else if (here != *allocated)
            break;
        uint64_t in_cluster = (offset + done) & (s->cluster_size - 1);
        done += MIN(len - done, s->cluster_size - in_cluster);
    }
    *run = done;
    return 0;
}

static int qcow2_flush(struct block_device *bd)
{
    struct qcow2_image *s = (struct qcow2_image *)bd;
    if (bd->readonly)
        return 0;
    for (unsigned i = 0; i < s->l2_cache_slots; i++) {
        bool dirty = s->l2_cache[i].dirty;
        int ret = l2_write_back(s, &s->l2_cache[i]);
        if (ret < 0)
            return ret;
        /* Each write-back synced what came before it; the table itself
         * is synced below or by the next write-back. */
        if (dirty)
            s->unsynced = true;
    }
    return sync_if_needed(s);
}

static void qcow2_close(struct block_device *bd)
{
    struct qcow2_image *s = (struct qcow2_image *)bd;
    for (unsigned i = 0; s->l2_cache && i < s->l2_cache_slots; i++)
        g_free(s->l2_cache[i].entries);
    g_free(s->l2_cache);
    g_free(s->l1);
    g_free(s->refcount_table);
    g_free(s->cluster_buf);
    g_free(s->compressed_buf);
    g_free(s->decompressed);
    block_close(s->backing);
    if (s->fd >= 0)
        close(s->fd);
}

static const struct block_ops qcow2_ops = {
    .format_name = "qcow2",
    .read = qcow2_read,
    .write = qcow2_write,
    .flush = qcow2_flush,
    .close = qcow2_close,
    .allocated = qcow2_allocated,
};

/* ---- opening ---- */

#define CORRUPT(...)                                                                               \
    do {                                                                                           \
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_CORRUPT, __VA_ARGS__);                         \
        return false;                                                                              \
    } while (0)
#define UNSUPPORTED(...)                                                                           \
    do {                                                                                           \
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_UNSUPPORTED, __VA_ARGS__);                     \
        return false;                                                                              \
    } while (0)

/* Checks that a table of bytes bytes at offset lies in the file. */
static bool table_in_file(const struct qcow2_image *s, uint64_t offset, uint64_t bytes)
{
    return cluster_aligned(s, offset) && offset <= s->file_size && bytes <= s->file_size - offset;
}

static bool load_table(struct qcow2_image *s, uint64_t offset, uint64_t entries, uint64_t **table,
                       GError **error)
{
    *table = g_new0(uint64_t, MAX(entries, 1));
    int ret = block_host_pread(s->fd, *table, entries * 8, offset);
    if (ret < 0) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", s->bd.path, g_strerror(-ret));
        return false;
    }
    for (uint64_t i = 0; i < entries; i++)
        (*table)[i] = GUINT64_FROM_BE((*table)[i]);
    return true;
}

static bool parse_extensions(struct qcow2_image *s, const uint8_t *header, uint64_t start,
                             uint64_t limit, char **backing_format, GError **error)
{
    const char *path = s->bd.path;
    uint64_t pos = start;
    while (pos + 8 <= limit) {
        uint32_t type = be32_at(header + pos);
        uint32_t length = be32_at(header + pos + 4);
        if (type == QCOW2_EXT_END)
            return true;
        if (length > limit - pos - 8)
            CORRUPT("%s: qcow2 header extension 0x%x runs past the header cluster", path, type);
        const uint8_t *data = header + pos + 8;
        if (type == QCOW2_EXT_BACKING_FORMAT) {
            if (length == 0 || length > 16)
                CORRUPT("%s: bad backing file format name in the qcow2 header", path);
            g_free(*backing_format);
            *backing_format = g_strndup((const char *)data, length);
        } else if (type == QCOW2_EXT_DATA_FILE) {
            UNSUPPORTED("%s: qcow2 images with an external data file are not supported", path);
        }
        pos += 8 + (((uint64_t)length + 7) & ~7ull);
    }
    return true;
}

static bool qcow2_parse(struct qcow2_image *s, unsigned depth, GError **error)
{
    const char *path = s->bd.path;
    uint8_t fixed[QCOW2_V3_HEADER_LENGTH] = {0};
    if (s->file_size < QCOW2_V2_HEADER_LENGTH)
        CORRUPT("%s: the qcow2 image is truncated (%" G_GUINT64_FORMAT " bytes)", path,
                s->file_size);
    int ret = block_host_pread(s->fd, fixed, sizeof(fixed), 0);
    if (ret < 0) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(-ret));
        return false;
    }
    if (memcmp(fixed, QCOW2_MAGIC_BYTES, 4) != 0)
        CORRUPT("%s: not a qcow2 image", path);
    s->version = be32_at(fixed + 4);
    if (s->version != 2 && s->version != 3)
        UNSUPPORTED("%s: qcow2 version %u is not supported (only 2 and 3)", path, s->version);

    uint64_t backing_offset = be64_at(fixed + 8);
    uint32_t backing_size = be32_at(fixed + 16);
    s->cluster_bits = be32_at(fixed + 20);
    uint64_t size = be64_at(fixed + 24);
    uint32_t crypt_method = be32_at(fixed + 32);
    s->l1_size = be32_at(fixed + 36);
    s->l1_offset = be64_at(fixed + 40);
    s->refcount_table_offset = be64_at(fixed + 48);
    s->refcount_table_clusters = be32_at(fixed + 56);
    uint32_t nb_snapshots = be32_at(fixed + 60);
    uint64_t incompatible = 0, autoclear = 0;
    uint32_t header_length = QCOW2_V2_HEADER_LENGTH;
    s->refcount_order = 4;

    if (s->cluster_bits < QCOW2_MIN_CLUSTER_BITS || s->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
        CORRUPT("%s: qcow2 cluster size 2^%u is out of range (2^9 to 2^21)", path, s->cluster_bits);
    s->cluster_size = 1ull << s->cluster_bits;
    s->l2_bits = s->cluster_bits - 3;

    if (s->version == 3) {
        incompatible = be64_at(fixed + 72);
        autoclear = be64_at(fixed + 88);
        s->refcount_order = be32_at(fixed + 96);
        header_length = be32_at(fixed + 100);
        if (s->file_size < QCOW2_V3_HEADER_LENGTH)
            CORRUPT("%s: the qcow2 image is truncated", path);
        if (header_length < QCOW2_V3_HEADER_LENGTH || header_length > s->cluster_size ||
            header_length % 8 != 0)
            CORRUPT("%s: bad qcow2 header length %u", path, header_length);
        if (s->refcount_order > 6)
            CORRUPT("%s: bad qcow2 refcount order %u", path, s->refcount_order);
    }
    if (crypt_method != 0)
        UNSUPPORTED("%s: encrypted qcow2 images are not supported", path);

    /* The first cluster holds the header, its extensions and usually the
     * backing file name. */
    g_autofree uint8_t *header = g_malloc0(s->cluster_size);
    ret = block_host_pread(s->fd, header, (size_t)MIN(s->cluster_size, s->file_size), 0);
    if (ret < 0) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(-ret));
        return false;
    }

    if (incompatible & QCOW2_INCOMPAT_DATA_FILE)
        UNSUPPORTED("%s: qcow2 images with an external data file are not supported", path);
    if (incompatible & QCOW2_INCOMPAT_EXTL2)
        UNSUPPORTED("%s: qcow2 images with extended L2 entries (subclusters) are not supported",
                    path);
    if (incompatible & QCOW2_INCOMPAT_COMPRESSION) {
        uint8_t type = header_length > QCOW2_V3_HEADER_LENGTH ? header[104] : 0;
        if (type != 0)
            UNSUPPORTED("%s: qcow2 compression type %u (zstd) is not supported; only zlib", path,
                        type);
    }
    uint64_t known = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DATA_FILE |
                     QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_EXTL2;
    if (incompatible & ~known)
        UNSUPPORTED("%s: the qcow2 image uses unknown incompatible features (0x%" G_GINT64_MODIFIER
                    "x)",
                    path, incompatible & ~known);
    if (!s->bd.readonly) {
        if (incompatible & QCOW2_INCOMPAT_CORRUPT)
            UNSUPPORTED("%s: the qcow2 image is marked corrupt; repair it with "
                        "`qemu-img check -r all` or open it read-only",
                        path);
        if (incompatible & QCOW2_INCOMPAT_DIRTY)
            UNSUPPORTED("%s: the qcow2 image was not closed cleanly and its refcounts need a "
                        "check; run `qemu-img check -r all` or open it read-only",
                        path);
        if (nb_snapshots != 0)
            UNSUPPORTED("%s: the qcow2 image has internal snapshots, which Vivarium can only "
                        "read; open it read-only",
                        path);
    }

    if (size > QCOW2_MAX_SIZE)
        CORRUPT("%s: qcow2 virtual size %" G_GUINT64_FORMAT " is too large", path, size);
    s->bd.length = size;

    uint64_t l1_coverage = 1ull << (s->cluster_bits + s->l2_bits);
    uint64_t l1_needed = (size + l1_coverage - 1) / l1_coverage;
    if ((uint64_t)s->l1_size * 8 > QCOW2_MAX_L1_BYTES)
        CORRUPT("%s: the qcow2 L1 table is too large (%u entries)", path, s->l1_size);
    if (s->l1_size < l1_needed)
        CORRUPT("%s: the qcow2 L1 table is too small for the disk size", path);
    if (s->l1_size > 0 && !table_in_file(s, s->l1_offset, (uint64_t)s->l1_size * 8))
        CORRUPT("%s: the qcow2 L1 table lies outside the file", path);

    uint64_t rt_bytes = (uint64_t)s->refcount_table_clusters * s->cluster_size;
    if (s->refcount_table_clusters == 0 || rt_bytes > QCOW2_MAX_RT_BYTES)
        CORRUPT("%s: bad qcow2 refcount table size (%u clusters)", path,
                s->refcount_table_clusters);
    if (!table_in_file(s, s->refcount_table_offset, rt_bytes))
        CORRUPT("%s: the qcow2 refcount table lies outside the file", path);
    s->refcount_table_entries = rt_bytes / 8;
    s->refcount_block_entries = (s->cluster_size * 8) >> s->refcount_order;
    s->refcount_max = s->refcount_order == 6 ? UINT64_MAX : (1ull << (1u << s->refcount_order)) - 1;

    if (!load_table(s, s->l1_offset, s->l1_size, &s->l1, error) ||
        !load_table(s, s->refcount_table_offset, s->refcount_table_entries, &s->refcount_table,
                    error))
        return false;

    g_autofree char *backing_format = NULL;
    uint64_t ext_end = s->cluster_size;
    if (backing_offset != 0 && backing_offset < ext_end && backing_offset >= header_length)
        ext_end = backing_offset;
    if (!parse_extensions(s, header, header_length, ext_end, &backing_format, error))
        return false;

    if (backing_offset != 0 && !s->without_backing) {
        if (backing_size == 0 || backing_size > QCOW2_MAX_BACKING_NAME)
            CORRUPT("%s: bad qcow2 backing file name length %u", path, backing_size);
        if (backing_offset > s->file_size || backing_size > s->file_size - backing_offset)
            CORRUPT("%s: the qcow2 backing file name lies outside the file", path);
        char name[QCOW2_MAX_BACKING_NAME + 1];
        ret = block_host_pread(s->fd, name, backing_size, backing_offset);
        if (ret < 0) {
            g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(-ret));
            return false;
        }
        name[backing_size] = '\0';
        if (strlen(name) != backing_size)
            CORRUPT("%s: the qcow2 backing file name contains a NUL byte", path);
        if (depth + 1 >= BLOCK_MAX_BACKING_DEPTH)
            UNSUPPORTED("%s: the chain of backing files is deeper than %d images", path,
                        BLOCK_MAX_BACKING_DEPTH);
        g_autofree char *resolved = resolve_backing(path, name);
        GError *backing_error = NULL;
        s->backing = block_open_backing(resolved, backing_format, depth + 1, &backing_error);
        if (!s->backing) {
            g_set_error(error, BLOCK_ERROR, backing_error->code, "%s: backing file: %s", path,
                        backing_error->message);
            g_error_free(backing_error);
            return false;
        }
    }

    /* Autoclear bits describe data Vivarium does not keep up to date (such
     * as bitmaps); a writer that does not understand them clears them. */
    if (!s->bd.readonly && autoclear != 0) {
        uint8_t zero[8] = {0};
        ret = host_write(s, zero, sizeof(zero), 88);
        if (ret == 0)
            ret = block_host_sync(s->fd);
        if (ret < 0) {
            g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(-ret));
            return false;
        }
    }
    return true;
}

static struct block_device *qcow2_open(const char *path, bool readonly, unsigned depth,
                                       bool without_backing, GError **error)
{
    int fd = block_host_open(path, readonly, error);
    if (fd < 0)
        return NULL;
    struct qcow2_image *s = g_new0(struct qcow2_image, 1);
    s->bd.ops = &qcow2_ops;
    s->bd.path = g_strdup(path);
    s->bd.readonly = readonly;
    s->fd = fd;
    s->without_backing = without_backing;
    if (!block_host_size(fd, path, &s->file_size, error) || !qcow2_parse(s, depth, error)) {
        block_close(&s->bd);
        return NULL;
    }
    s->end_offset = (s->file_size + s->cluster_size - 1) & ~(s->cluster_size - 1);
    s->l2_cache_slots = (unsigned)CLAMP(QCOW2_L2_CACHE_MAX_BYTES / s->cluster_size,
                                        QCOW2_L2_CACHE_MIN_SLOTS, QCOW2_L2_CACHE_MAX_SLOTS);
    s->l2_cache = g_new0(struct qcow2_l2_slot, s->l2_cache_slots);
    s->cluster_buf = g_malloc(s->cluster_size);
    s->compressed_buf = g_malloc(2 * s->cluster_size);
    s->decompressed = g_malloc(s->cluster_size);
    return &s->bd;
}

struct block_device *qcow2_open_chain(const char *path, bool readonly, unsigned depth,
                                      GError **error)
{
    return qcow2_open(path, readonly, depth, false, error);
}

struct block_device *block_open_qcow2_alone(const char *path, bool readonly, GError **error)
{
    return qcow2_open(path, readonly, 0, true, error);
}

/* ---- creating ---- */

#define QCOW2_CREATE_CLUSTER_BITS 16

static bool write_all(int fd, const void *buf, size_t len, uint64_t offset, const char *path,
                      GError **error)
{
    int ret = block_host_pwrite(fd, buf, len, offset);
    if (ret < 0) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(-ret));
        return false;
    }
    return true;
}

bool qcow2_create(const char *path, uint64_t size, const char *backing_file, GError **error)
{
    const char *backing_format = NULL;
    if (backing_file) {
        size_t name_length = strlen(backing_file);
        if (name_length == 0 || name_length > QCOW2_MAX_BACKING_NAME) {
            g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_INVALID,
                        "backing file name must be 1 to %d bytes long", QCOW2_MAX_BACKING_NAME);
            return false;
        }
        g_autofree char *resolved = resolve_backing(path, backing_file);
        struct block_device *backing = block_open(resolved, true, error);
        if (!backing)
            return false;
        backing_format = g_strcmp0(block_format_name(backing), "qcow2") == 0 ? "qcow2" : "raw";
        if (size == 0)
            size = backing->length;
        block_close(backing);
    }
    return qcow2_create_overlay(path, backing_file, backing_format, size, error);
}

/* Writes the header cluster's variable part: the extensions from pos on
 * (a backing format if given, the end marker), then the backing file name,
 * whose offset and length go into the fixed header. Returns false when it
 * does not fit in the cluster. */
static bool put_backing(uint8_t *buf, uint64_t cluster_size, uint64_t pos, const char *backing_file,
                        const char *backing_format, uint64_t *end)
{
    size_t format_length = backing_format ? strlen(backing_format) : 0;
    size_t name_length = backing_file ? strlen(backing_file) : 0;
    if (pos + 16 + ((format_length + 7) & ~(size_t)7) + 8 + name_length > cluster_size)
        return false;
    if (backing_format) {
        put_be32(buf + pos, QCOW2_EXT_BACKING_FORMAT);
        put_be32(buf + pos + 4, (uint32_t)format_length);
        memcpy(buf + pos + 8, backing_format, format_length);
        pos += 8 + ((format_length + 7) & ~(size_t)7);
    }
    memset(buf + pos, 0, 8); /* the end-of-extensions marker */
    pos += 8;
    put_be64(buf + 8, backing_file ? pos : 0);
    put_be32(buf + 16, (uint32_t)name_length);
    if (backing_file)
        memcpy(buf + pos, backing_file, name_length);
    *end = pos + name_length;
    return true;
}

bool qcow2_create_overlay(const char *path, const char *backing_file, const char *backing_format,
                          uint64_t size, GError **error)
{
    const uint64_t cluster_size = 1ull << QCOW2_CREATE_CLUSTER_BITS;
    const uint64_t l1_coverage = 1ull << (2 * QCOW2_CREATE_CLUSTER_BITS - 3);

    if (backing_file &&
        (strlen(backing_file) == 0 || strlen(backing_file) > QCOW2_MAX_BACKING_NAME)) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_INVALID,
                    "backing file name must be 1 to %d bytes long", QCOW2_MAX_BACKING_NAME);
        return false;
    }
    if (size > QCOW2_MAX_SIZE / 256) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_INVALID, "disk size is too large");
        return false;
    }

    uint64_t l1_size = MAX((size + l1_coverage - 1) / l1_coverage, 1);
    uint64_t l1_clusters = (l1_size * 8 + cluster_size - 1) / cluster_size;
    /* Layout: header, refcount table, one refcount block, L1 table. */
    uint64_t rt_offset = cluster_size, rb_offset = 2 * cluster_size, l1_offset = 3 * cluster_size;
    uint64_t used_clusters = 3 + l1_clusters;

    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(errno));
        return false;
    }
    g_autofree uint8_t *buf = g_malloc0(cluster_size);
    bool ok = false;

    /* Header. */
    memcpy(buf, QCOW2_MAGIC_BYTES, 4);
    put_be32(buf + 4, 3);
    put_be32(buf + 20, QCOW2_CREATE_CLUSTER_BITS);
    put_be64(buf + 24, size);
    put_be32(buf + 36, (uint32_t)l1_size);
    put_be64(buf + 40, l1_offset);
    put_be64(buf + 48, rt_offset);
    put_be32(buf + 56, 1);
    put_be32(buf + 96, 4);
    put_be32(buf + 100, QCOW2_CREATE_HEADER);
    uint64_t end;
    put_backing(buf, cluster_size, QCOW2_CREATE_HEADER, backing_file,
                backing_file ? backing_format : NULL, &end);
    if (!write_all(fd, buf, cluster_size, 0, path, error))
        goto out;

    memset(buf, 0, cluster_size);
    put_be64(buf, rb_offset);
    if (!write_all(fd, buf, cluster_size, rt_offset, path, error))
        goto out;

    memset(buf, 0, cluster_size);
    for (uint64_t i = 0; i < used_clusters; i++)
        put_be16(buf + i * 2, 1);
    if (!write_all(fd, buf, cluster_size, rb_offset, path, error))
        goto out;

    if (ftruncate(fd, (off_t)(used_clusters * cluster_size)) < 0 || fsync(fd) < 0) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(errno));
        goto out;
    }
    ok = true;
out:
    close(fd);
    if (!ok)
        unlink(path);
    return ok;
}

bool qcow2_set_backing(const char *path, const char *backing_file, const char *backing_format,
                       GError **error)
{
    struct qcow2_image *s = (struct qcow2_image *)block_open_qcow2_alone(path, false, error);
    if (!s)
        return false;
    bool ok = false;
    g_autofree uint8_t *header = g_malloc0(s->cluster_size);
    int ret = block_host_pread(s->fd, header, s->cluster_size, 0);
    if (ret < 0) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(-ret));
        goto out;
    }
    /* Version 2 headers have no header length field and no room promised
     * for extensions beyond the fixed part. */
    uint64_t header_length = s->version == 3 ? be32_at(header + 100) : QCOW2_V2_HEADER_LENGTH;
    /* Other extensions are dropped: the images Vivarium rebases are its
     * own overlays, which carry none but the backing format. */
    uint64_t end;
    if (!put_backing(header, s->cluster_size, header_length, backing_file, backing_format, &end)) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_INVALID,
                    "%s: the backing file name does not fit in the header", path);
        goto out;
    }
    ret = host_write(s, header, (size_t)((end + 511) & ~511ull), 0);
    if (ret == 0)
        ret = block_host_sync(s->fd);
    if (ret < 0) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(-ret));
        goto out;
    }
    ok = true;
out:
    block_close(&s->bd);
    return ok;
}
