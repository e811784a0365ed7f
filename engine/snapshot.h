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
};

/* Writes the machine's state to path: to a temporary name first, synced,
 * then renamed over path, so a crash never leaves half a snapshot. */
bool snapshot_save(struct machine *m, const char *path, GError **error);

/* Restores the machine from path. The whole file is checked first (format,
 * version, checksums, that every section fits this machine); a damaged,
 * truncated or foreign file is refused with a message and the machine is
 * left exactly as it was. */
bool snapshot_load(struct machine *m, const char *path, GError **error);

/* The same from a buffer (for the fuzzer and tests). */
bool snapshot_load_buffer(struct machine *m, const uint8_t *data, size_t len, GError **error);

/* Reads and checks the header only. */
bool snapshot_read_info(const char *path, struct snapshot_info *info, GError **error);

#endif
