/* A VM's snapshot folder: named machine snapshots with their thumbnails,
 * and the disk image layers that keep each snapshot's disk contents.
 *
 * Disks follow QEMU's external snapshots. Taking a snapshot freezes the
 * image each writable hard disk was writing to and moves the disk to a new
 * qcow2 overlay backed by it; the snapshot file names the frozen layer.
 * Reverting puts a fresh overlay on the snapshot's frozen layer and drops
 * the overlay it leaves. Deleting a snapshot merges the layers nobody needs
 * any more into their one child, and when no snapshot is left the last
 * overlay is written back into the disk's own image. The folder's
 * disks.ini records, per disk, its own image and the layer it writes to, so
 * a restarted engine goes on where the last one stopped.
 *
 * Every function taking a machine runs on the vCPU thread, between
 * instructions; the machine stands still for as long as it takes.
 */
#ifndef VIVARIUM_SNAPSHOT_STORE_H
#define VIVARIUM_SNAPSHOT_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

struct machine;
struct machine_config;
struct snapshot_store;

/* Opens a snapshot folder, creating it if needed, and reads its index;
 * refuses a damaged index. */
struct snapshot_store *snapshot_store_open(const char *dir, GError **error);
void snapshot_store_free(struct snapshot_store *store);
const char *snapshot_store_dir(const struct snapshot_store *store);

/* Before machine_create(): points the config's writable hard disks at the
 * layers they write to. Refuses when the folder keeps layers of another
 * image than the one configured for a drive. The config then refers to
 * strings of the store, which must outlive the machine. */
bool snapshot_store_prepare(struct snapshot_store *store, struct machine_config *config,
                            GError **error);

/* Save, load (revert) and delete by name. Names follow
 * viv_dbus_snapshot_name_valid(). Load and delete fail with
 * G_FILE_ERROR_NOENT for a name that does not exist; a snapshot that cannot
 * be restored is refused with the reason and changes nothing. */
bool snapshot_store_save(struct snapshot_store *store, struct machine *m, const char *name,
                         GError **error);
bool snapshot_store_load(struct snapshot_store *store, struct machine *m, const char *name,
                         GError **error);
bool snapshot_store_delete(struct snapshot_store *store, struct machine *m, const char *name,
                           GError **error);

struct snapshot_entry {
    char *name;
    int64_t created_us; /* 0 when the file's header is unreadable */
    uint64_t file_size;
    char *thumbnail; /* path of its PNG, or NULL */
    char *problem;   /* why the file cannot be used, or NULL */
};

/* The snapshots in a folder, oldest first (struct snapshot_entry, freed by
 * the array). Reads only the files' headers; any thread. */
GPtrArray *snapshot_store_list(const char *dir);

/* One listing line for an entry: name, date and size, or why it is unusable,
 * separated by tabs (the monitor's `info snapshots` and --list-snapshots). */
char *snapshot_entry_describe(const struct snapshot_entry *entry);

#endif
