/* Machine snapshots.
 *
 * File layout, all little-endian:
 *   header   64 bytes: magic "VIVSNAP1", u32 format version, u32 section
 *            count, i64 creation time (us), u64 RAM size, char backend[16],
 *            12 reserved bytes, u32 CRC-32 of the 60 bytes before it
 *   section  u32 kind, u32 version, u8 name length, name, u64 payload
 *            length, payload, u32 CRC-32 of all the section's bytes before it
 * Sections: "DSK " per hard disk (which image layer holds the disk's
 * contents at this instant: see snapshot_store.c), "CPU " (struct x86_state
 * through its state table), "CLK " (the virtual time), one "DEV " per device
 * (its state table), "MEM " per block of device memory (video memory),
 * "MED " per removable drive (the medium in it and, for a writable floppy,
 * its contents), "RAM " (guest RAM). Memory is compressed with Zstandard in
 * independent frames of 4 MiB, made and unpacked by several threads at
 * once (older files: one Zstandard frame, or deflated with zlib). Disk
 * sections come first, so a listing reads them without inflating anything. Unknown
 * section kinds are refused: a reader that cannot restore part of a machine
 * must not pretend it restored all of it.
 */
#include "snapshot.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "block/block.h"
#include "machine.h"

#define SNAPSHOT_MAGIC          "VIVSNAP1"
#define SNAPSHOT_FORMAT_VERSION 1
#define SNAPSHOT_HEADER_SIZE    64
#define SNAPSHOT_RAM_CHUNK      (1u << 20)

#define SECTION_CPU   0x20555043u /* "CPU " */
#define SECTION_CLOCK 0x204b4c43u /* "CLK " */
#define SECTION_DEV   0x20564544u /* "DEV " */
#define SECTION_RAM   0x204d4152u /* "RAM " */
#define SECTION_MEM   0x204d454du /* "MEM " */
#define SECTION_DISK  0x204b5344u /* "DSK " */

#define SECTION_MEDIA 0x2044454du /* "MED " */

/* Version 1 of the RAM and MEM sections is deflated (zlib); version 2 is one
 * Zstandard frame: four to five times faster to make from a busy guest's
 * memory, at a similar size. Version 3, what this engine writes, cuts the
 * memory into frames of MEMORY_FRAME_SIZE bytes each compressed on its own,
 * behind a table of their sizes:
 *   u32 frame size, u32 frame count, u32 compressed size of each frame,
 *   the frames
 * so that threads make and unpack them side by side, and a loader can check
 * the table and every frame's header without unpacking anything. */
#define RAM_SECTION_VERSION   3
#define CLOCK_SECTION_VERSION 1
#define MEM_SECTION_VERSION   3
#define SNAPSHOT_ZSTD_LEVEL   1
#define DISK_SECTION_VERSION  1
#define MEDIA_SECTION_VERSION 1
#define MEMORY_FRAME_SIZE     (4u << 20)
#define MEMORY_MAX_THREADS    4

/* A "MED " section's flag: the floppy's contents follow. */
#define MEDIA_HAS_CONTENTS 1u
/* Floppies are 2.88 MiB at most; anything larger is not one. */
#define MEDIA_MAX_CONTENTS (4u << 20)

/* The removable drives, by machine_media_path()'s names. */
#define MEDIA_DRIVES 3
static const char *const media_drives[MEDIA_DRIVES] = {"fda", "fdb", "cdrom"};

/* A fuzzing build accepts bad checksums, so that the fuzzer reaches the
 * parsers behind them; every other build refuses them. */
static bool skip_checksums(void)
{
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    return true;
#else
    return false;
#endif
}

static void put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void append_le(GByteArray *out, uint64_t v, unsigned bytes)
{
    uint8_t b[8];
    put_le(b, v, bytes);
    g_byte_array_append(out, b, bytes);
}

static void append_section(GByteArray *out, uint32_t kind, uint32_t version, const char *name,
                           const uint8_t *payload, size_t len)
{
    size_t name_len = strlen(name);
    size_t start = out->len;
    append_le(out, kind, 4);
    append_le(out, version, 4);
    append_le(out, name_len, 1);
    g_byte_array_append(out, (const guint8 *)name, (guint)name_len);
    append_le(out, len, 8);
    g_byte_array_append(out, payload, (guint)len);
    append_le(out, crc32_z(0, out->data + start, out->len - start), 4);
}

/* Work shared by the threads that compress or decompress the frames of one
 * memory section: each takes the next frame number until none is left. */
struct frame_job {
    uint8_t *memory; /* the memory (compressing: read; decompressing: written) */
    uint64_t size;
    uint32_t frame_count;
    gint next_frame;
    /* Compressing: frame i goes to out + i * slot, its size to sizes[i].
     * Decompressing: frame i is at frames + offsets[i], sizes[i] long. */
    uint8_t *out;
    size_t slot;
    const uint8_t *frames;
    uint64_t *offsets;
    uint32_t *sizes;
    uint32_t *crcs; /* CRC-32 of each compressed frame */
    gint failed;    /* a frame failed (set by any thread) */
};

static size_t frame_length(const struct frame_job *job, uint32_t i)
{
    uint64_t start = (uint64_t)i * MEMORY_FRAME_SIZE;
    return (size_t)MIN((uint64_t)MEMORY_FRAME_SIZE, job->size - start);
}

static gpointer compress_frames(gpointer data)
{
    struct frame_job *job = data;
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    for (;;) {
        uint32_t i = (uint32_t)g_atomic_int_add(&job->next_frame, 1);
        if (i >= job->frame_count)
            break;
        size_t n = cctx ? ZSTD_compressCCtx(cctx, job->out + (size_t)i * job->slot, job->slot,
                                            job->memory + (uint64_t)i * MEMORY_FRAME_SIZE,
                                            frame_length(job, i), SNAPSHOT_ZSTD_LEVEL)
                        : (size_t)-1;
        if (!cctx || ZSTD_isError(n)) {
            g_atomic_int_set(&job->failed, 1);
            break;
        }
        job->sizes[i] = (uint32_t)n;
        /* The section's checksum is put together from the frames', each
         * taken while its frame is still in this core's cache. */
        job->crcs[i] = (uint32_t)crc32_z(0, job->out + (size_t)i * job->slot, n);
    }
    ZSTD_freeCCtx(cctx);
    return NULL;
}

/* Decompressing a frame the check has passed cannot fail for a file that
 * was not forged with its checksums right; if one was, its frame reads as
 * zeros rather than leaving half a frame. */
static gpointer decompress_frames(gpointer data)
{
    struct frame_job *job = data;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    for (;;) {
        uint32_t i = (uint32_t)g_atomic_int_add(&job->next_frame, 1);
        if (i >= job->frame_count)
            break;
        uint8_t *dest = job->memory + (uint64_t)i * MEMORY_FRAME_SIZE;
        size_t want = frame_length(job, i);
        size_t n = dctx ? ZSTD_decompressDCtx(dctx, dest, want, job->frames + job->offsets[i],
                                              job->sizes[i])
                        : (size_t)-1;
        if (!dctx || ZSTD_isError(n) || n != want) {
            memset(dest, 0, want);
            g_atomic_int_set(&job->failed, 1);
        }
    }
    ZSTD_freeDCtx(dctx);
    return NULL;
}

static gpointer checksum_frames(gpointer data)
{
    struct frame_job *job = data;
    for (;;) {
        uint32_t i = (uint32_t)g_atomic_int_add(&job->next_frame, 1);
        if (i >= job->frame_count)
            break;
        job->crcs[i] = (uint32_t)crc32_z(0, job->frames + job->offsets[i], job->sizes[i]);
    }
    return NULL;
}

/* The CRC-32 of table and frames in a row, from the frames' own. */
static uint32_t combine_frame_crcs(uint32_t crc, const struct frame_job *job)
{
    for (uint32_t i = 0; i < job->frame_count; i++)
        crc = (uint32_t)crc32_combine(crc, job->crcs[i], (z_off_t)job->sizes[i]);
    return crc;
}

/* Runs fn on the calling thread and on up to MEMORY_MAX_THREADS - 1 more,
 * as many as the host has cores and the job has frames. */
static void run_frame_job(struct frame_job *job, GThreadFunc fn)
{
    unsigned threads = MIN(MIN(g_get_num_processors(), MEMORY_MAX_THREADS), job->frame_count);
    GThread *helpers[MEMORY_MAX_THREADS];
    unsigned started = 0;
    for (unsigned t = 1; t < threads; t++) {
        helpers[started] = g_thread_try_new("snapshot", fn, job, NULL);
        if (helpers[started])
            started++;
    }
    fn(job);
    for (unsigned t = 0; t < started; t++)
        g_thread_join(helpers[t]);
}

static uint32_t frame_count_for(uint64_t size)
{
    return (uint32_t)((size + MEMORY_FRAME_SIZE - 1) / MEMORY_FRAME_SIZE);
}

/* Appends a version 3 memory payload to out, and its CRC-32 to *crc.
 * Every frame gets room for its worst case, and the frames close up behind
 * the table afterwards: a copy of the compressed bytes, far cheaper than
 * compressing them. */
static bool compress_memory(const uint8_t *host, uint64_t size, GByteArray *out, uint32_t *crc,
                            GError **error)
{
    struct frame_job job = {.memory = (uint8_t *)host, .size = size};
    job.frame_count = frame_count_for(size);
    job.slot = ZSTD_compressBound(MEMORY_FRAME_SIZE);
    guint start = out->len;
    size_t table = 8 + 4 * (size_t)job.frame_count;
    g_byte_array_set_size(out, start + (guint)(table + job.slot * job.frame_count));
    job.out = out->data + start + table;
    job.sizes = g_new0(uint32_t, MAX(job.frame_count, 1u));
    job.crcs = g_new0(uint32_t, MAX(job.frame_count, 1u));
    run_frame_job(&job, compress_frames);
    if (job.failed) {
        g_free(job.sizes);
        g_free(job.crcs);
        g_byte_array_set_size(out, start);
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot compress memory");
        return false;
    }
    uint8_t *p = out->data + start;
    put_le(p, MEMORY_FRAME_SIZE, 4);
    put_le(p + 4, job.frame_count, 4);
    size_t end = table;
    for (uint32_t i = 0; i < job.frame_count; i++) {
        put_le(p + 8 + 4 * (size_t)i, job.sizes[i], 4);
        memmove(p + end, job.out + (size_t)i * job.slot, job.sizes[i]);
        end += job.sizes[i];
    }
    *crc = combine_frame_crcs((uint32_t)crc32_z(0, p, table), &job);
    g_free(job.sizes);
    g_free(job.crcs);
    g_byte_array_set_size(out, start + (guint)end);
    return true;
}

/* A memory section is compressed straight into out: at hundreds of MiB, a
 * copy of its payload would cost as much as writing it. */
static bool append_memory_section(GByteArray *out, uint32_t kind, uint32_t version,
                                  const char *name, const uint8_t *host, uint64_t size,
                                  GError **error)
{
    size_t name_len = strlen(name);
    size_t start = out->len;
    append_le(out, kind, 4);
    append_le(out, version, 4);
    append_le(out, name_len, 1);
    g_byte_array_append(out, (const guint8 *)name, (guint)name_len);
    size_t length_at = out->len;
    append_le(out, 0, 8);
    uint32_t payload_crc;
    if (!compress_memory(host, size, out, &payload_crc, error))
        return false;
    size_t payload_len = out->len - length_at - 8;
    put_le(out->data + length_at, payload_len, 8);
    uint32_t crc = (uint32_t)crc32_z(0, out->data + start, length_at + 8 - start);
    append_le(out, crc32_combine(crc, payload_crc, (z_off_t)payload_len), 4);
    return true;
}

static void encode_disk(GByteArray *out, const struct snapshot_disk *disk)
{
    size_t drive_len = strlen(disk->drive), layer_len = strlen(disk->layer);
    append_le(out, drive_len, 1);
    g_byte_array_append(out, (const guint8 *)disk->drive, (guint)drive_len);
    append_le(out, disk->length, 8);
    append_le(out, layer_len, 2);
    g_byte_array_append(out, (const guint8 *)disk->layer, (guint)layer_len);
}

/* The medium in a removable drive as a file name that still means the
 * same file from another working folder. */
static char *medium_path(const char *path)
{
    char *real = realpath(path, NULL);
    if (!real)
        return g_canonicalize_filename(path, NULL);
    char *copy = g_strdup(real);
    free(real);
    return copy;
}

/* A "MED " payload: u8 flags, u64 the medium's length, u16 path length,
 * path ("" for an empty drive), then with MEDIA_HAS_CONTENTS one Zstandard
 * frame of the whole medium. A writable floppy's contents are part of the
 * machine, as a hard disk's are; they travel in the snapshot itself rather
 * than in a layer on the image, because a floppy taken out of the drive is
 * a file anyone may change, and a layer resting on it would silently go
 * wrong. A CD and a write-protected floppy are named only. */
static bool encode_media(struct machine *m, unsigned drive, GByteArray *payload, GError **error)
{
    const char *name = media_drives[drive];
    const char *path = machine_media_path(m, name);
    struct block_device *bd = drive < 2 ? machine_floppy_device(m, name) : NULL;
    g_autofree char *canonical = *path ? medium_path(path) : g_strdup("");
    bool contents = bd && !block_is_readonly(bd) && block_length(bd) <= MEDIA_MAX_CONTENTS;
    uint64_t length = bd ? block_length(bd) : 0;
    append_le(payload, contents ? MEDIA_HAS_CONTENTS : 0, 1);
    append_le(payload, length, 8);
    append_le(payload, strlen(canonical), 2);
    g_byte_array_append(payload, (const guint8 *)canonical, (guint)strlen(canonical));
    if (!contents)
        return true;
    g_autofree uint8_t *data = g_malloc(length);
    int ret = block_read(bd, 0, data, length);
    if (ret < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-ret),
                    "cannot read the floppy in %s (%s): %s", name, canonical, g_strerror(-ret));
        return false;
    }
    guint at = payload->len;
    size_t bound = ZSTD_compressBound(length);
    g_byte_array_set_size(payload, at + (guint)bound);
    size_t n = ZSTD_compress(payload->data + at, bound, data, length, SNAPSHOT_ZSTD_LEVEL);
    if (ZSTD_isError(n)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot compress the floppy in %s",
                    name);
        return false;
    }
    g_byte_array_set_size(payload, at + (guint)n);
    return true;
}

static GByteArray *encode_machine(struct machine *m, const struct snapshot_disk *disks,
                                  unsigned disk_count, GError **error)
{
    GByteArray *out = g_byte_array_new();
    g_byte_array_set_size(out, SNAPSHOT_HEADER_SIZE);
    uint32_t sections = 0;
    GByteArray *payload = g_byte_array_new();

    for (unsigned i = 0; i < disk_count; i++) {
        g_byte_array_set_size(payload, 0);
        encode_disk(payload, &disks[i]);
        append_section(out, SECTION_DISK, DISK_SECTION_VERSION, disks[i].drive, payload->data,
                       payload->len);
        sections++;
    }

    for (unsigned i = 0; i < MEDIA_DRIVES; i++) {
        if (!machine_media_path(m, media_drives[i]))
            continue;
        g_byte_array_set_size(payload, 0);
        if (!encode_media(m, i, payload, error)) {
            g_byte_array_unref(payload);
            g_byte_array_unref(out);
            return NULL;
        }
        append_section(out, SECTION_MEDIA, MEDIA_SECTION_VERSION, media_drives[i], payload->data,
                       payload->len);
        sections++;
    }

    struct x86_state cpu;
    m->cpu.backend->get_state(&m->cpu, &cpu);
    g_byte_array_set_size(payload, 0);
    vmstate_save(payload, &x86_state_vmstate, &cpu);
    append_section(out, SECTION_CPU, x86_state_vmstate.version, "cpu", payload->data, payload->len);
    sections++;

    g_byte_array_set_size(payload, 0);
    append_le(payload, (uint64_t)vclock_now(&m->clock), 8);
    append_section(out, SECTION_CLOCK, CLOCK_SECTION_VERSION, "clock", payload->data, payload->len);
    sections++;

    for (guint i = 0; i < m->devices->len; i++) {
        const struct machine_device *dev = &g_array_index(m->devices, struct machine_device, i);
        if (!dev->vmstate)
            continue;
        g_byte_array_set_size(payload, 0);
        vmstate_save(payload, dev->vmstate, dev->state);
        append_section(out, SECTION_DEV, dev->vmstate->version, dev->name, payload->data,
                       payload->len);
        sections++;
    }

    g_byte_array_unref(payload);
    for (guint i = 0; i < m->memory_blocks->len; i++) {
        const struct machine_memory_block *block =
            &g_array_index(m->memory_blocks, struct machine_memory_block, i);
        if (!append_memory_section(out, SECTION_MEM, MEM_SECTION_VERSION, block->name, block->host,
                                   block->size, error)) {
            g_byte_array_unref(out);
            return NULL;
        }
        sections++;
    }
    if (!append_memory_section(out, SECTION_RAM, RAM_SECTION_VERSION, "ram", m->mem.ram,
                               m->mem.ram_size, error)) {
        g_byte_array_unref(out);
        return NULL;
    }
    sections++;

    uint8_t *h = out->data;
    memset(h, 0, SNAPSHOT_HEADER_SIZE);
    memcpy(h, SNAPSHOT_MAGIC, 8);
    put_le(h + 8, SNAPSHOT_FORMAT_VERSION, 4);
    put_le(h + 12, sections, 4);
    put_le(h + 16, (uint64_t)g_get_real_time(), 8);
    put_le(h + 24, m->mem.ram_size, 8);
    g_strlcpy((char *)h + 32, m->cpu.backend->name, 16);
    put_le(h + 60, crc32(0, h, 60), 4);
    return out;
}

static bool write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

bool snapshot_save(struct machine *m, const char *path, GError **error)
{
    return snapshot_save_with_disks(m, path, NULL, 0, error);
}

bool snapshot_save_with_disks(struct machine *m, const char *path,
                              const struct snapshot_disk *disks, unsigned disk_count,
                              GError **error)
{
    GByteArray *image = encode_machine(m, disks, disk_count, error);
    if (!image)
        return false;
    gchar *tmp = g_strdup_printf("%s.tmp-%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && write_all(fd, image->data, image->len) && fsync(fd) == 0;
    int saved_errno = errno;
    if (fd >= 0)
        close(fd);
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        saved_errno = errno;
    }
    if (!ok) {
        unlink(tmp);
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved_errno),
                    "cannot write the snapshot %s: %s", path, g_strerror(saved_errno));
    } else {
        /* The rename itself must reach the disk too. */
        gchar *dir = g_path_get_dirname(path);
        int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd >= 0) {
            fsync(dir_fd);
            close(dir_fd);
        }
        g_free(dir);
    }
    g_free(tmp);
    g_byte_array_unref(image);
    return ok;
}

/* One parsed section, pointing into the file's bytes. */
struct section {
    uint32_t kind;
    uint32_t version;
    char name[256];
    const uint8_t *payload;
    uint64_t len;
    /* Set when the checksum is left to the memory check, which takes it
     * frame by frame on several threads: the section's bytes before the
     * payload, and the checksum stored. */
    const uint8_t *start;
    uint32_t stored_crc;
};

static bool refuse(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool refuse(GError **error, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    gchar *message = g_strdup_vprintf(fmt, args);
    va_end(args);
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s", message);
    g_free(message);
    return false;
}

static bool parse_header(const uint8_t *data, size_t len, struct snapshot_info *info,
                         uint32_t *sections, GError **error)
{
    if (len < SNAPSHOT_HEADER_SIZE || memcmp(data, SNAPSHOT_MAGIC, 8) != 0)
        return refuse(error, "this is not a Vivarium snapshot");
    if (get_le(data + 60, 4) != crc32(0, data, 60) && !skip_checksums())
        return refuse(error, "the snapshot's header is damaged (checksum mismatch)");
    info->format_version = (uint32_t)get_le(data + 8, 4);
    if (info->format_version != SNAPSHOT_FORMAT_VERSION)
        return refuse(error, "the snapshot has format version %u; this engine reads version %u",
                      info->format_version, SNAPSHOT_FORMAT_VERSION);
    *sections = (uint32_t)get_le(data + 12, 4);
    info->created_us = (int64_t)get_le(data + 16, 8);
    info->ram_size = get_le(data + 24, 8);
    memcpy(info->backend, data + 32, 16);
    info->backend[15] = 0;
    return true;
}

/* Parses the section at *pos; verify checks its checksum (a second walk
 * over an already checked file skips that). */
static bool parse_section(const uint8_t *data, size_t len, size_t *pos, struct section *s,
                          bool verify, GError **error)
{
    size_t start = *pos, p = *pos;
    if (len - p < 9)
        return refuse(error, "the snapshot is truncated (in a section header)");
    s->kind = (uint32_t)get_le(data + p, 4);
    s->version = (uint32_t)get_le(data + p + 4, 4);
    size_t name_len = data[p + 8];
    p += 9;
    if (len - p < name_len + 8)
        return refuse(error, "the snapshot is truncated (in a section header)");
    memcpy(s->name, data + p, name_len);
    s->name[name_len] = 0;
    p += name_len;
    s->len = get_le(data + p, 8);
    p += 8;
    if (s->len > len - p || len - p - s->len < 4)
        return refuse(error, "the snapshot is truncated (section %s)", s->name);
    s->payload = data + p;
    p += s->len;
    s->start = NULL;
    bool framed = (s->kind == SECTION_RAM || s->kind == SECTION_MEM) && s->version >= 3;
    if (verify && !skip_checksums() && framed) {
        s->start = data + start;
        s->stored_crc = (uint32_t)get_le(data + p, 4);
    } else if (verify && !skip_checksums() &&
               get_le(data + p, 4) != crc32_z(0, data + start, p - start)) {
        return refuse(error, "the snapshot's section %s is damaged (checksum mismatch)", s->name);
    }
    *pos = p + 4;
    return true;
}

static struct machine_device *find_device(struct machine *m, const char *name)
{
    for (guint i = 0; i < m->devices->len; i++) {
        struct machine_device *dev = &g_array_index(m->devices, struct machine_device, i);
        if (dev->vmstate && strcmp(dev->name, name) == 0)
            return dev;
    }
    return NULL;
}

/* Inflates a memory section into dest (size bytes), or, with dest NULL,
 * only checks that it inflates to exactly size bytes. */
static bool inflate_memory(const struct section *s, uint8_t *dest, uint64_t size, GError **error)
{
    z_stream z = {0};
    if (inflateInit(&z) != Z_OK)
        return refuse(error, "cannot start decompressing %s", s->name);
    uint8_t *scratch = g_malloc(SNAPSHOT_RAM_CHUNK);
    uint64_t in_done = 0, out_done = 0;
    bool ok = true;
    int rc;
    do {
        if (z.avail_in == 0 && in_done < s->len) {
            uint64_t left = s->len - in_done;
            z.avail_in = left > SNAPSHOT_RAM_CHUNK ? SNAPSHOT_RAM_CHUNK : (uInt)left;
            z.next_in = (Bytef *)s->payload + in_done;
            in_done += z.avail_in;
        }
        /* Once the destination is full, inflate into scratch: any byte that
         * arrives there means the image is larger than the machine's. */
        uint64_t room = size - out_done;
        bool into_dest = dest && room > 0;
        z.next_out = into_dest ? dest + out_done : scratch;
        z.avail_out = room > SNAPSHOT_RAM_CHUNK || room == 0 ? SNAPSHOT_RAM_CHUNK : (uInt)room;
        uInt before = z.avail_out;
        rc = inflate(&z, Z_NO_FLUSH);
        out_done += before - z.avail_out;
        if ((rc != Z_OK && rc != Z_STREAM_END) || out_done > size) {
            ok = false;
            break;
        }
    } while (rc != Z_STREAM_END);
    inflateEnd(&z);
    g_free(scratch);
    if (!ok)
        return refuse(error, "the snapshot's %s image is damaged", s->name);
    if (out_done != size || in_done != s->len || z.avail_in != 0)
        return refuse(error, "the snapshot's %s image has the wrong size", s->name);
    return true;
}

/* The same for a Zstandard frame. */
static bool decompress_memory(const struct section *s, uint8_t *dest, uint64_t size, GError **error)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx)
        return refuse(error, "cannot start decompressing %s", s->name);
    uint8_t *scratch = g_malloc(SNAPSHOT_RAM_CHUNK);
    ZSTD_inBuffer input = {s->payload, (size_t)s->len, 0};
    uint64_t out_done = 0;
    size_t rc = 1;
    bool ok = true;
    while (rc != 0) {
        uint64_t room = size - out_done;
        bool into_dest = dest && room > 0;
        ZSTD_outBuffer output = {
            into_dest ? dest + out_done : scratch,
            room > SNAPSHOT_RAM_CHUNK || room == 0 ? SNAPSHOT_RAM_CHUNK : (size_t)room, 0};
        size_t in_before = input.pos;
        rc = ZSTD_decompressStream(dctx, &output, &input);
        out_done += output.pos;
        if (ZSTD_isError(rc) || out_done > size ||
            (rc != 0 && output.pos == 0 && input.pos == in_before)) {
            ok = false;
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    g_free(scratch);
    if (!ok)
        return refuse(error, "the snapshot's %s image is damaged", s->name);
    if (out_done != size || input.pos != input.size)
        return refuse(error, "the snapshot's %s image has the wrong size", s->name);
    return true;
}

/* Reads a version 3 payload's table into job and checks it against size
 * bytes of memory, with every frame's header: the memory it holds and the
 * bytes it takes. With the section's checksum right, that is the whole
 * file checked without decompressing anything. job->offsets and
 * job->sizes are the caller's to free, also on failure. */
static bool parse_frames(const struct section *s, uint64_t size, struct frame_job *job,
                         GError **error)
{
    memset(job, 0, sizeof(*job));
    job->size = size;
    if (s->len < 8)
        return refuse(error, "the snapshot's %s image is malformed", s->name);
    uint32_t frame_size = (uint32_t)get_le(s->payload, 4);
    uint32_t count = (uint32_t)get_le(s->payload + 4, 4);
    if (frame_size != MEMORY_FRAME_SIZE || count != frame_count_for(size))
        return refuse(error, "the snapshot's %s image has the wrong size", s->name);
    uint64_t table = 8 + 4 * (uint64_t)count;
    if (table > s->len)
        return refuse(error, "the snapshot's %s image is truncated", s->name);
    job->frame_count = count;
    job->frames = s->payload + table;
    job->offsets = g_new(uint64_t, MAX(count, 1u));
    job->sizes = g_new(uint32_t, MAX(count, 1u));
    uint64_t left = s->len - table, offset = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t n = (uint32_t)get_le(s->payload + 8 + 4 * (size_t)i, 4);
        if (n > left)
            return refuse(error, "the snapshot's %s image is truncated", s->name);
        const uint8_t *frame = job->frames + offset;
        if (ZSTD_getFrameContentSize(frame, n) != frame_length(job, i) ||
            ZSTD_findFrameCompressedSize(frame, n) != n)
            return refuse(error, "the snapshot's %s image is damaged", s->name);
        job->offsets[i] = offset;
        job->sizes[i] = n;
        offset += n;
        left -= n;
    }
    if (left != 0)
        return refuse(error, "the snapshot's %s image has trailing bytes", s->name);
    return true;
}

/* Checks a memory section (dest NULL) or restores it into dest. */
static bool restore_memory(const struct section *s, uint8_t *dest, uint64_t size, GError **error)
{
    if (s->version < 3) {
        /* Older files hold one stream whose only check is unpacking it, so
         * the check unpacks it once and the restore again. */
        return s->version == 2 ? decompress_memory(s, dest, size, error)
                               : inflate_memory(s, dest, size, error);
    }
    struct frame_job job;
    bool ok = parse_frames(s, size, &job, error);
    if (ok && s->start) {
        job.crcs = g_new0(uint32_t, MAX(job.frame_count, 1u));
        run_frame_job(&job, checksum_frames);
        job.next_frame = 0;
        size_t table = (size_t)(job.frames - s->payload);
        uint32_t crc = (uint32_t)crc32_z(0, s->start, (size_t)(s->payload - s->start) + table);
        if (combine_frame_crcs(crc, &job) != s->stored_crc)
            ok = refuse(error, "the snapshot's section %s is damaged (checksum mismatch)", s->name);
    }
    uint8_t *scratch = NULL;
    if (ok && !dest && skip_checksums()) {
        /* A fuzzing build takes files whose checksums are wrong, so a
         * frame with a right header may still not unpack: the check
         * unpacks everything, and the restore stays unable to fail. */
        scratch = g_malloc(MEMORY_FRAME_SIZE);
        ZSTD_DCtx *dctx = ZSTD_createDCtx();
        for (uint32_t i = 0; ok && i < job.frame_count; i++) {
            size_t n = ZSTD_decompressDCtx(dctx, scratch, MEMORY_FRAME_SIZE,
                                           job.frames + job.offsets[i], job.sizes[i]);
            if (ZSTD_isError(n) || n != frame_length(&job, i))
                ok = refuse(error, "the snapshot's %s image is damaged", s->name);
        }
        ZSTD_freeDCtx(dctx);
    }
    if (ok && dest) {
        job.memory = dest;
        run_frame_job(&job, decompress_frames);
        if (job.failed)
            g_warning("the snapshot's %s image has a frame that does not decompress although its "
                      "checksum is right; that part of memory reads as zeros",
                      s->name);
    }
    g_free(scratch);
    g_free(job.offsets);
    g_free(job.sizes);
    g_free(job.crcs);
    return ok;
}

static struct machine_memory_block *find_memory_block(struct machine *m, const char *name)
{
    for (guint i = 0; i < m->memory_blocks->len; i++) {
        struct machine_memory_block *block =
            &g_array_index(m->memory_blocks, struct machine_memory_block, i);
        if (strcmp(block->name, name) == 0)
            return block;
    }
    return NULL;
}

static bool decode_disk(const struct section *s, struct snapshot_disk *disk, GError **error)
{
    const uint8_t *p = s->payload, *end = s->payload + s->len;
    memset(disk, 0, sizeof(*disk));
    if (end - p < 1)
        return refuse(error, "the snapshot's disk section %s is malformed", s->name);
    size_t drive_len = *p++;
    if (drive_len == 0 || drive_len >= sizeof(disk->drive) || (size_t)(end - p) < drive_len + 10)
        return refuse(error, "the snapshot's disk section %s is malformed", s->name);
    memcpy(disk->drive, p, drive_len);
    p += drive_len;
    disk->length = get_le(p, 8);
    size_t layer_len = (size_t)get_le(p + 8, 2);
    p += 10;
    if (layer_len != (size_t)(end - p) || layer_len >= sizeof(disk->layer))
        return refuse(error, "the snapshot's disk section %s is malformed", s->name);
    memcpy(disk->layer, p, layer_len);
    /* Names come back as file names in the snapshot folder: nothing that
     * could point outside it. */
    if (strlen(disk->drive) != drive_len || strlen(disk->layer) != layer_len ||
        strchr(disk->drive, '/') || strchr(disk->layer, '/') || disk->layer[0] == '.')
        return refuse(error, "the snapshot's disk section %s is malformed", s->name);
    return true;
}

/* What a restore does to one removable drive, prepared by the check. */
struct media_plan {
    bool present;            /* the snapshot has a section for the drive */
    bool keep;               /* the snapshot's medium is the one in the drive now */
    char *path;              /* the snapshot's medium, "" for an empty drive */
    struct block_device *bd; /* opened by the check, for the restore to insert */
    uint8_t *contents;       /* the floppy's contents to write back, or NULL */
    uint64_t length;
};

struct snapshot_image {
    uint8_t *data; /* owned when read from a file */
    const uint8_t *bytes;
    size_t len;
    uint32_t sections;
    struct snapshot_info info;
    GArray *disks; /* struct snapshot_disk */
    struct media_plan media[MEDIA_DRIVES];
};

static int media_drive_index(const char *name)
{
    for (int i = 0; i < MEDIA_DRIVES; i++) {
        if (strcmp(name, media_drives[i]) == 0)
            return i;
    }
    return -1;
}

static bool same_medium(const char *current, const char *path)
{
    if (!*current || !*path)
        return !*current && !*path;
    g_autofree char *canonical = medium_path(current);
    return strcmp(canonical, path) == 0;
}

/* Checks a "MED " section against the machine and the files, and prepares
 * its restore in plan: opens the snapshot's medium when it is not the one
 * in the drive now, and unpacks the floppy's contents. Changes nothing. */
static bool prepare_media(struct machine *m, const struct section *s, struct media_plan *plan,
                          GError **error)
{
    const uint8_t *p = s->payload;
    if (s->len < 11)
        return refuse(error, "the snapshot's media section %s is malformed", s->name);
    unsigned flags = p[0];
    plan->length = get_le(p + 1, 8);
    size_t path_len = (size_t)get_le(p + 9, 2);
    if ((flags & ~MEDIA_HAS_CONTENTS) || path_len > s->len - 11)
        return refuse(error, "the snapshot's media section %s is malformed", s->name);
    plan->path = g_strndup((const char *)p + 11, path_len);
    const uint8_t *frame = p + 11 + path_len;
    size_t frame_len = s->len - 11 - path_len;
    bool contents = flags & MEDIA_HAS_CONTENTS;
    bool cdrom = strcmp(s->name, "cdrom") == 0;
    if (strlen(plan->path) != path_len || (path_len && !g_path_is_absolute(plan->path)) ||
        (contents && (!path_len || cdrom || plan->length > MEDIA_MAX_CONTENTS)) ||
        (!contents && frame_len != 0))
        return refuse(error, "the snapshot's media section %s is malformed", s->name);
    if (contents) {
        plan->contents = g_malloc(MAX(plan->length, 1u));
        size_t n = ZSTD_decompress(plan->contents, plan->length, frame, frame_len);
        if (ZSTD_isError(n) || n != plan->length)
            return refuse(error, "the snapshot's copy of the floppy in %s is damaged", s->name);
    }
    const char *current = machine_media_path(m, s->name);
    if (!current)
        return refuse(error, "the snapshot has a drive %s that this machine does not have",
                      s->name);
    plan->keep = same_medium(current, plan->path);
    struct block_device *target = NULL;
    if (plan->keep) {
        target = cdrom ? NULL : machine_floppy_device(m, s->name);
    } else if (*plan->path) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
        /* A fuzzer's invented file names must not open, let alone write,
         * the files of the machine it runs on. */
        return refuse(error, "a fuzzing build opens no media");
#endif
        if (!g_file_test(plan->path, G_FILE_TEST_EXISTS))
            return refuse(error,
                          "the image %s that was in drive %s when the snapshot was taken no "
                          "longer exists",
                          plan->path, s->name);
        GError *local = NULL;
        plan->bd = block_open(plan->path, cdrom || !contents, &local);
        if (!plan->bd) {
            bool r = refuse(error, "drive %s: %s", s->name, local->message);
            g_error_free(local);
            return r;
        }
        target = plan->bd;
    }
    if (target && plan->length && block_length(target) != plan->length)
        return refuse(error,
                      "the image %s in drive %s now has %" G_GUINT64_FORMAT
                      " bytes; it had %" G_GUINT64_FORMAT " when the snapshot was taken",
                      plan->path, s->name, block_length(target), plan->length);
    if (contents && (!target || block_is_readonly(target)))
        return refuse(error,
                      "the floppy %s in drive %s cannot be written now, so its contents cannot "
                      "be restored",
                      plan->path, s->name);
    plan->present = true;
    return true;
}

static void media_plan_clear(struct media_plan *plan)
{
    block_close(plan->bd);
    g_free(plan->path);
    g_free(plan->contents);
    memset(plan, 0, sizeof(*plan));
}

/* Writes a floppy's saved contents back, only the 4 KiB pieces that differ:
 * most of a floppy is usually as it was. */
static int write_back(struct block_device *bd, const uint8_t *contents, uint64_t length)
{
    uint8_t now[4096];
    for (uint64_t offset = 0; offset < length; offset += sizeof(now)) {
        size_t n = (size_t)MIN((uint64_t)sizeof(now), length - offset);
        int ret = block_read(bd, offset, now, n);
        if (ret == 0 && memcmp(now, contents + offset, n) != 0)
            ret = block_write(bd, offset, contents + offset, n);
        if (ret < 0)
            return ret;
    }
    return block_flush(bd);
}

/* Puts the snapshot's media in the drives. Runs before the devices' state
 * is restored, which then overwrites the disk-change signals the insertion
 * raised with the snapshot's own. */
static void apply_media(struct machine *m, struct snapshot_image *image)
{
    for (unsigned i = 0; i < MEDIA_DRIVES; i++) {
        struct media_plan *plan = &image->media[i];
        if (!plan->present)
            continue;
        const char *name = media_drives[i];
        if (!plan->keep) {
            GError *error = NULL;
            if (machine_insert_media(m, name, *plan->path ? plan->path : NULL, plan->bd, true,
                                     &error))
                plan->bd = NULL;
            else {
                g_warning("drive %s: cannot put back %s: %s", name, plan->path, error->message);
                g_error_free(error);
                continue;
            }
        }
        if (plan->contents) {
            struct block_device *bd = machine_floppy_device(m, name);
            int ret = bd ? write_back(bd, plan->contents, plan->length) : -ENOMEDIUM;
            if (ret < 0)
                g_warning("drive %s: cannot write the snapshot's contents back into %s: %s", name,
                          plan->path, g_strerror(-ret));
        }
    }
}

/* Walks every section; with apply false it only checks that everything can
 * be restored (and collects the disk sections and the media plans into
 * image), with apply true it restores (media are apply_media()'s). */
static bool process_sections(struct machine *m, const uint8_t *data, size_t len, uint32_t count,
                             bool apply, struct snapshot_image *image, GError **error)
{
    size_t pos = SNAPSHOT_HEADER_SIZE;
    bool have_cpu = false, have_ram = false;
    for (uint32_t i = 0; i < count; i++) {
        struct section s;
        if (!parse_section(data, len, &pos, &s, !apply, error))
            return false;
        switch (s.kind) {
        case SECTION_DISK: {
            struct snapshot_disk disk;
            if (s.version > DISK_SECTION_VERSION)
                return refuse(error, "the disk state comes from a newer Vivarium");
            if (!decode_disk(&s, &disk, error))
                return false;
            if (image)
                g_array_append_val(image->disks, disk);
            break;
        }
        case SECTION_MEDIA: {
            if (apply)
                break;
            int drive = media_drive_index(s.name);
            if (s.version > MEDIA_SECTION_VERSION)
                return refuse(error, "the state of drive %s comes from a newer Vivarium", s.name);
            if (drive < 0 || image->media[drive].present)
                return refuse(error, "the snapshot's media section %s is malformed", s.name);
            if (!prepare_media(m, &s, &image->media[drive], error))
                return false;
            break;
        }
        case SECTION_CPU: {
            if (s.version > x86_state_vmstate.version)
                return refuse(error, "the CPU state comes from a newer Vivarium");
            struct x86_state cpu;
            m->cpu.backend->get_state(&m->cpu, &cpu);
            if (!vmstate_load(s.payload, s.len, &x86_state_vmstate, apply ? &cpu : NULL, error))
                return false;
            if (apply)
                m->cpu.backend->set_state(&m->cpu, &cpu);
            have_cpu = true;
            break;
        }
        case SECTION_CLOCK:
            if (s.len != 8)
                return refuse(error, "the snapshot's clock section is malformed");
            if (apply)
                vclock_jump(&m->clock, (int64_t)get_le(s.payload, 8));
            break;
        case SECTION_DEV: {
            struct machine_device *dev = find_device(m, s.name);
            if (!dev)
                return refuse(error,
                              "the snapshot has state for a device \"%s\" that this "
                              "machine does not have",
                              s.name);
            if (s.version > dev->vmstate->version)
                return refuse(error, "the state of %s comes from a newer Vivarium", s.name);
            if (!vmstate_load(s.payload, s.len, dev->vmstate, apply ? dev->state : NULL, error))
                return false;
            break;
        }
        case SECTION_MEM: {
            struct machine_memory_block *block = find_memory_block(m, s.name);
            if (!block)
                return refuse(error,
                              "the snapshot has device memory \"%s\" that this machine does "
                              "not have",
                              s.name);
            if (s.version > MEM_SECTION_VERSION)
                return refuse(error, "the snapshot's %s comes from a newer Vivarium", s.name);
            if (!restore_memory(&s, apply ? block->host : NULL, block->size, error))
                return false;
            break;
        }
        case SECTION_RAM:
            if (s.version > RAM_SECTION_VERSION)
                return refuse(error, "the snapshot's RAM comes from a newer Vivarium");
            if (!restore_memory(&s, apply ? m->mem.ram : NULL, m->mem.ram_size, error))
                return false;
            have_ram = true;
            break;
        default:
            return refuse(error, "the snapshot has a section of unknown kind %#x", s.kind);
        }
    }
    if (pos != len)
        return refuse(error, "the snapshot has trailing bytes after its last section");
    if (!have_cpu || !have_ram)
        return refuse(error, "the snapshot lacks its CPU or RAM section");
    return true;
}

static struct snapshot_image *check_image(struct machine *m, const uint8_t *data, size_t len,
                                          GError **error)
{
    struct snapshot_image *image = g_new0(struct snapshot_image, 1);
    image->bytes = data;
    image->len = len;
    image->disks = g_array_new(FALSE, TRUE, sizeof(struct snapshot_disk));
    bool ok = parse_header(data, len, &image->info, &image->sections, error);
    if (ok && image->info.ram_size != m->mem.ram_size)
        ok = refuse(error,
                    "the snapshot is of a machine with %" G_GUINT64_FORMAT
                    " MiB of RAM; this one has %" G_GUINT64_FORMAT " MiB",
                    image->info.ram_size >> 20, m->mem.ram_size >> 20);
    if (ok)
        ok = process_sections(m, data, len, image->sections, false, image, error);
    if (!ok) {
        snapshot_image_free(image);
        return NULL;
    }
    return image;
}

struct snapshot_image *snapshot_image_read(struct machine *m, const char *path, GError **error)
{
    gchar *data;
    gsize len;
    if (!g_file_get_contents(path, &data, &len, error))
        return NULL;
    GError *local = NULL;
    struct snapshot_image *image = check_image(m, (const uint8_t *)data, len, &local);
    if (!image) {
        g_free(data);
        g_set_error(error, local->domain, local->code, "%s: %s", path, local->message);
        g_error_free(local);
        return NULL;
    }
    image->data = (uint8_t *)data;
    return image;
}

const struct snapshot_disk *snapshot_image_disks(const struct snapshot_image *image,
                                                 unsigned *count)
{
    *count = image->disks->len;
    return (const struct snapshot_disk *)(void *)image->disks->data;
}

void snapshot_image_apply(struct machine *m, struct snapshot_image *image)
{
    /* Everything is checked: restore, starting from a clean reset so that
     * state a section does not mention is the power-on state. */
    for (guint i = 0; i < m->devices->len; i++) {
        struct machine_device *dev = &g_array_index(m->devices, struct machine_device, i);
        if (dev->reset)
            dev->reset(dev->state);
    }
    apply_media(m, image);
    GError *error = NULL;
    if (!process_sections(m, image->bytes, image->len, image->sections, true, NULL, &error))
        g_error("snapshot restore failed after its check: %s", error->message);
    /* Everything in RAM is new: drop decoded code, redraw the screen. */
    memory_note_write(&m->mem, 0, m->mem.ram_size);
    for (guint i = 0; i < m->devices->len; i++) {
        struct machine_device *dev = &g_array_index(m->devices, struct machine_device, i);
        if (dev->post_load)
            dev->post_load(dev->state);
    }
}

void snapshot_image_free(struct snapshot_image *image)
{
    if (!image)
        return;
    g_array_unref(image->disks);
    for (unsigned i = 0; i < MEDIA_DRIVES; i++)
        media_plan_clear(&image->media[i]);
    g_free(image->data);
    g_free(image);
}

bool snapshot_load_buffer(struct machine *m, const uint8_t *data, size_t len, GError **error)
{
    struct snapshot_image *image = check_image(m, data, len, error);
    if (!image)
        return false;
    snapshot_image_apply(m, image);
    snapshot_image_free(image);
    return true;
}

bool snapshot_load(struct machine *m, const char *path, GError **error)
{
    struct snapshot_image *image = snapshot_image_read(m, path, error);
    if (!image)
        return false;
    snapshot_image_apply(m, image);
    snapshot_image_free(image);
    return true;
}

bool snapshot_read_info(const char *path, struct snapshot_info *info, GError **error)
{
    uint8_t header[SNAPSHOT_HEADER_SIZE];
    FILE *f = fopen(path, "rb");
    if (!f) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        return false;
    }
    size_t got = fread(header, 1, sizeof(header), f);
    uint32_t count;
    bool ok = parse_header(header, got, info, &count, error);
    info->file_size = 0;
    if (ok && fseek(f, 0, SEEK_END) == 0)
        info->file_size = (uint64_t)ftell(f);
    fclose(f);
    return ok;
}

bool snapshot_read_disks(const char *path, GArray *disks, GError **error)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        return false;
    }
    uint8_t header[SNAPSHOT_HEADER_SIZE];
    struct snapshot_info info;
    uint32_t count;
    bool ok = parse_header(header, fread(header, 1, sizeof(header), f), &info, &count, error);
    /* Disk sections lead; the first other section ends the walk. */
    for (uint32_t i = 0; ok && i < count; i++) {
        uint8_t head[9 + 255 + 8];
        if (fread(head, 1, 9, f) != 9 || get_le(head, 4) != SECTION_DISK)
            break;
        size_t name_len = head[8];
        if (fread(head + 9, 1, name_len + 8, f) != name_len + 8) {
            ok = refuse(error, "%s: the snapshot is truncated", path);
            break;
        }
        uint64_t payload_len = get_le(head + 9 + name_len, 8);
        if (payload_len > 4096) {
            ok = refuse(error, "%s: the snapshot's disk section is malformed", path);
            break;
        }
        size_t total = 9 + name_len + 8 + (size_t)payload_len + 4;
        uint8_t *bytes = g_malloc(total);
        memcpy(bytes, head, 9 + name_len + 8);
        if (fread(bytes + 9 + name_len + 8, 1, payload_len + 4, f) != payload_len + 4) {
            g_free(bytes);
            ok = refuse(error, "%s: the snapshot is truncated", path);
            break;
        }
        struct section s;
        size_t pos = 0;
        struct snapshot_disk disk;
        ok = parse_section(bytes, total, &pos, &s, true, error) && decode_disk(&s, &disk, error);
        if (ok)
            g_array_append_val(disks, disk);
        g_free(bytes);
    }
    fclose(f);
    return ok;
}
