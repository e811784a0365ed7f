/* Machine snapshots: the whole machine at an instruction boundary in one
 * versioned, checksummed file.
 *
 * Both functions run on the vCPU thread, between instructions, with the
 * machine stopped or paused by the caller for as long as they take.
 */
#ifndef VIVARIUM_SNAPSHOT_H
#define VIVARIUM_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

struct machine;

struct snapshot_info {
    uint32_t format_version;
    int64_t created_us; /* wall clock, microseconds since the Unix epoch */
    uint64_t ram_size;
    char backend[16];
    uint64_t file_size; /* snapshot_read_info only */
};

/* What a snapshot says about one hard disk: which image layer in the
 * snapshot folder holds its contents as they were ("" for the disk's own
 * image), and its length in bytes. See snapshot_store.h. */
struct snapshot_disk {
    char drive[8]; /* "hda" .. "hdd" */
    char layer[64];
    uint64_t length;
};

/* A snapshot file read into memory and checked whole against a machine. */
struct snapshot_image;

/* Writes the machine's state to path: to a temporary name first, synced,
 * then renamed over path, so a crash never leaves half a snapshot. */
bool snapshot_save(struct machine *m, const char *path, GError **error);
/* The same with the disks' sections. */
bool snapshot_save_with_disks(struct machine *m, const char *path,
                              const struct snapshot_disk *disks, unsigned disk_count,
                              GError **error);

/* Restores the machine from path. The whole file is checked first (format,
 * version, checksums, that every section fits this machine); a damaged,
 * truncated or foreign file is refused with a message and the machine is
 * left exactly as it was. */
bool snapshot_load(struct machine *m, const char *path, GError **error);

/* The same from a buffer (for the fuzzer and tests). */
bool snapshot_load_buffer(struct machine *m, const uint8_t *data, size_t len, GError **error);

/* Loading in two steps, for callers that must prepare something (the
 * disks) between the check and the restore: read checks everything and
 * changes nothing; apply cannot fail. */
struct snapshot_image *snapshot_image_read(struct machine *m, const char *path, GError **error);
const struct snapshot_disk *snapshot_image_disks(const struct snapshot_image *image,
                                                 unsigned *count);
void snapshot_image_apply(struct machine *m, struct snapshot_image *image);
void snapshot_image_free(struct snapshot_image *image);

/* Reads and checks the header only. */
bool snapshot_read_info(const char *path, struct snapshot_info *info, GError **error);
/* Appends the snapshot's disk sections (struct snapshot_disk) to disks,
 * without reading the rest of the file. */
bool snapshot_read_disks(const char *path, GArray *disks, GError **error);

#endif
