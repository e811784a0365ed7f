/* A VM's snapshot folder (see snapshot_store.h).
 *
 * Folder layout:
 *   NAME.vivsnap          the machine (snapshot.c), naming per disk the
 *                         layer that holds its contents
 *   NAME.png              the screen when it was taken
 *   hdX-<random>.qcow2    disk layers: qcow2 overlays, each backed by its
 *                         parent layer or, at the bottom, the disk's image
 *   disks.ini             the index: per drive its own image, that image's
 *                         format and the layer written to now; per layer
 *                         its drive and parent
 *
 * Layers form one tree per disk, rooted at the disk's own image. A layer is
 * needed while it is the active one, a snapshot names it, or it has two or
 * more children. Every change writes its files first and the index last
 * (to a temporary name, synced, renamed), and deletes files only after the
 * index no longer names them: an engine killed in between leaves at worst
 * an unused file, never an index naming a layer that is gone.
 */
#include "snapshot_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "block/block.h"
#include "display/framebuffer.h"
#include "machine.h"
#include "snapshot.h"
#include "viv-protocol.h"

#define INDEX_FILE       "disks.ini"
#define SNAPSHOT_SUFFIX  ".vivsnap"
#define THUMBNAIL_SUFFIX ".png"
#define STORE_DRIVES     4
#define MERGE_CHUNK      (1u << 20)

static const char *const drive_names[STORE_DRIVES] = {"hda", "hdb", "hdc", "hdd"};

struct store_drive {
    char *image;     /* the disk's own image, canonical path; NULL: not known */
    char *format;    /* its format: "raw" or "qcow2" */
    char *active;    /* the layer written to; NULL: the image itself */
    char *open_path; /* what the machine opened at start (in config) */
};

struct store_layer {
    char *name;
    char *parent; /* "" for the disk's own image */
    unsigned drive;
};

struct snapshot_store {
    char *dir;
    struct store_drive drives[STORE_DRIVES];
    GPtrArray *layers; /* struct store_layer */
};

static void layer_free(gpointer data)
{
    struct store_layer *layer = data;
    g_free(layer->name);
    g_free(layer->parent);
    g_free(layer);
}

static int drive_index(const char *name)
{
    for (int i = 0; i < STORE_DRIVES; i++) {
        if (strcmp(name, drive_names[i]) == 0)
            return i;
    }
    return -1;
}

static bool layer_name_valid(const char *name)
{
    return name[0] != '.' && !strchr(name, '/') && g_str_has_suffix(name, ".qcow2") &&
           strlen(name) < sizeof(((struct snapshot_disk *)0)->layer);
}

static struct store_layer *find_layer(struct snapshot_store *store, const char *name)
{
    for (guint i = 0; i < store->layers->len; i++) {
        struct store_layer *layer = g_ptr_array_index(store->layers, i);
        if (strcmp(layer->name, name) == 0)
            return layer;
    }
    return NULL;
}

static char *in_dir(const struct snapshot_store *store, const char *file)
{
    return g_build_filename(store->dir, file, NULL);
}

static char *snapshot_file(const struct snapshot_store *store, const char *name, const char *suffix)
{
    g_autofree char *file = g_strconcat(name, suffix, NULL);
    return in_dir(store, file);
}

/* ---- the index ---- */

static bool refuse(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool refuse(GError **error, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    g_autofree gchar *message = g_strdup_vprintf(fmt, args);
    va_end(args);
    g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, message);
    return false;
}

static bool read_index(struct snapshot_store *store, GError **error)
{
    g_autofree char *path = in_dir(store, INDEX_FILE);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    GError *local = NULL;
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local)) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            g_error_free(local);
            return true;
        }
        bool r =
            refuse(error, "%s: the snapshot folder's index is damaged: %s", path, local->message);
        g_error_free(local);
        return r;
    }
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    for (char **g = groups; *g; g++) {
        int d = drive_index(*g);
        if (d >= 0) {
            struct store_drive *drive = &store->drives[d];
            drive->image = g_key_file_get_string(kf, *g, "image", NULL);
            drive->format = g_key_file_get_string(kf, *g, "format", NULL);
            drive->active = g_key_file_get_string(kf, *g, "active", NULL);
            if (drive->active && !*drive->active)
                g_clear_pointer(&drive->active, g_free);
            if (!drive->image || !g_path_is_absolute(drive->image) || !drive->format ||
                (strcmp(drive->format, "raw") != 0 && strcmp(drive->format, "qcow2") != 0) ||
                (drive->active && !layer_name_valid(drive->active)))
                return refuse(error, "%s: the snapshot folder's index is damaged (drive %s)", path,
                              *g);
        } else if (g_str_has_prefix(*g, "layer ")) {
            struct store_layer *layer = g_new0(struct store_layer, 1);
            layer->name = g_strdup(*g + strlen("layer "));
            layer->parent = g_key_file_get_string(kf, *g, "parent", NULL);
            g_autofree char *drive = g_key_file_get_string(kf, *g, "drive", NULL);
            g_ptr_array_add(store->layers, layer);
            int di = drive ? drive_index(drive) : -1;
            if (di < 0 || !layer->parent || !layer_name_valid(layer->name) ||
                (*layer->parent && !layer_name_valid(layer->parent)))
                return refuse(error, "%s: the snapshot folder's index is damaged (%s)", path, *g);
            layer->drive = (unsigned)di;
        }
    }
    /* Every name must lead somewhere known. */
    for (guint i = 0; i < store->layers->len; i++) {
        struct store_layer *layer = g_ptr_array_index(store->layers, i);
        if (*layer->parent && !find_layer(store, layer->parent))
            return refuse(error, "%s: the snapshot folder's index is damaged (%s has no parent)",
                          path, layer->name);
    }
    for (int d = 0; d < STORE_DRIVES; d++) {
        if (store->drives[d].active && !find_layer(store, store->drives[d].active))
            return refuse(error, "%s: the snapshot folder's index is damaged (%s)", path,
                          drive_names[d]);
    }
    return true;
}

static bool write_file_durably(const char *path, const char *contents, size_t len, GError **error)
{
    g_autofree char *tmp = g_strdup_printf("%s.tmp-%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0;
    size_t done = 0;
    while (ok && done < len) {
        ssize_t n = write(fd, contents + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0;
        done += ok ? (size_t)n : 0;
    }
    ok = ok && fsync(fd) == 0;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        unlink(tmp);
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "cannot write %s: %s",
                    path, g_strerror(saved));
        return false;
    }
    g_autofree char *dir = g_path_get_dirname(path);
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        fsync(dir_fd);
        close(dir_fd);
    }
    return true;
}

static bool write_index(struct snapshot_store *store, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    for (int d = 0; d < STORE_DRIVES; d++) {
        const struct store_drive *drive = &store->drives[d];
        /* A drive without layers needs no entry: its image is the disk. */
        if (!drive->image || !drive->active)
            continue;
        g_key_file_set_string(kf, drive_names[d], "image", drive->image);
        g_key_file_set_string(kf, drive_names[d], "format", drive->format);
        g_key_file_set_string(kf, drive_names[d], "active", drive->active);
    }
    for (guint i = 0; i < store->layers->len; i++) {
        const struct store_layer *layer = g_ptr_array_index(store->layers, i);
        g_autofree char *group = g_strconcat("layer ", layer->name, NULL);
        g_key_file_set_string(kf, group, "drive", drive_names[layer->drive]);
        g_key_file_set_string(kf, group, "parent", layer->parent);
    }
    gsize len;
    g_autofree char *data = g_key_file_to_data(kf, &len, NULL);
    g_autofree char *path = in_dir(store, INDEX_FILE);
    return write_file_durably(path, data, len, error);
}

/* ---- opening ---- */

struct snapshot_store *snapshot_store_open(const char *dir, GError **error)
{
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "cannot create the snapshot folder %s: %s", dir, g_strerror(errno));
        return NULL;
    }
    struct snapshot_store *store = g_new0(struct snapshot_store, 1);
    store->dir = g_strdup(dir);
    store->layers = g_ptr_array_new_with_free_func(layer_free);
    if (!read_index(store, error)) {
        snapshot_store_free(store);
        return NULL;
    }
    return store;
}

void snapshot_store_free(struct snapshot_store *store)
{
    if (!store)
        return;
    for (int d = 0; d < STORE_DRIVES; d++) {
        g_free(store->drives[d].image);
        g_free(store->drives[d].format);
        g_free(store->drives[d].active);
        g_free(store->drives[d].open_path);
    }
    g_ptr_array_unref(store->layers);
    g_free(store->dir);
    g_free(store);
}

const char *snapshot_store_dir(const struct snapshot_store *store)
{
    return store->dir;
}

bool snapshot_store_prepare(struct snapshot_store *store, struct machine_config *config,
                            GError **error)
{
    for (unsigned i = 0; i < config->nr_drives; i++) {
        struct drive_config *dc = &config->drives[i];
        if (dc->kind != DRIVE_DISK || dc->readonly || dc->unit >= STORE_DRIVES)
            continue;
        struct store_drive *drive = &store->drives[dc->unit];
        char *canonical = realpath(dc->path, NULL);
        if (!canonical)
            continue; /* machine_create() says what is wrong with it */
        if (drive->active) {
            if (strcmp(drive->image, canonical) != 0) {
                refuse(error,
                       "%s: the snapshot folder %s keeps snapshots of the disk image %s, not "
                       "%s; give that image, or another snapshot folder",
                       drive_names[dc->unit], store->dir, drive->image, canonical);
                free(canonical);
                return false;
            }
            drive->open_path = in_dir(store, drive->active);
            dc->path = drive->open_path;
        } else {
            g_free(drive->image);
            drive->image = g_strdup(canonical);
        }
        free(canonical);
    }
    return true;
}

/* ---- moving a disk between images ---- */

static char *new_layer_name(unsigned drive)
{
    return g_strdup_printf("%s-%08x%08x.qcow2", drive_names[drive], g_random_int(), g_random_int());
}

/* The backing file name and format an overlay on parent ("" for the disk's
 * own image) records. Layers name each other relative to the folder. */
static void backing_of(const struct snapshot_store *store, unsigned d, const char *parent,
                       const char **name, const char **format)
{
    *name = *parent ? parent : store->drives[d].image;
    *format = *parent ? "qcow2" : store->drives[d].format;
}

static struct block_device *open_writable(const char *path, uint64_t length, GError **error)
{
    struct block_device *bd = block_open(path, false, error);
    if (bd && block_length(bd) != length) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s has %" G_GUINT64_FORMAT " bytes; the disk has %" G_GUINT64_FORMAT, path,
                    block_length(bd), length);
        block_close(bd);
        return NULL;
    }
    return bd;
}

/* Creates a layer on parent and opens it for writing. */
static struct block_device *create_layer(struct snapshot_store *store, unsigned d,
                                         const char *parent, uint64_t length, char **name_out,
                                         GError **error)
{
    const char *backing, *format;
    backing_of(store, d, parent, &backing, &format);
    g_autofree char *name = new_layer_name(d);
    g_autofree char *path = in_dir(store, name);
    if (!qcow2_create_overlay(path, backing, format, length, error))
        return NULL;
    struct block_device *bd = open_writable(path, length, error);
    if (!bd) {
        g_unlink(path);
        return NULL;
    }
    *name_out = g_steal_pointer(&name);
    return bd;
}

static char *active_path(const struct snapshot_store *store, unsigned d)
{
    const struct store_drive *drive = &store->drives[d];
    return drive->active ? in_dir(store, drive->active) : g_strdup(drive->image);
}

/* Closes the images a disk writes to, so that layers may be opened,
 * merged and renamed by themselves. */
static void detach_disk(struct machine *m, unsigned d)
{
    if (m->disks[d])
        block_close(block_proxy_swap(m->disks[d], NULL));
}

static bool attach_disk(struct snapshot_store *store, struct machine *m, unsigned d, GError **error)
{
    if (!m->disks[d])
        return true;
    g_autofree char *path = active_path(store, d);
    struct block_device *bd = open_writable(path, block_length(m->disks[d]), error);
    if (!bd) {
        /* The guest now sees a disk whose every request fails; the person
         * sees why. */
        g_warning("%s: cannot reopen its image: %s", drive_names[d],
                  error && *error ? (*error)->message : "");
        return false;
    }
    block_proxy_swap(m->disks[d], bd);
    return true;
}

static void add_layer(struct snapshot_store *store, const char *name, const char *parent,
                      unsigned d)
{
    struct store_layer *layer = g_new0(struct store_layer, 1);
    layer->name = g_strdup(name);
    layer->parent = g_strdup(parent);
    layer->drive = d;
    g_ptr_array_add(store->layers, layer);
}

static void remove_layer(struct snapshot_store *store, const char *name)
{
    for (guint i = 0; i < store->layers->len; i++) {
        struct store_layer *layer = g_ptr_array_index(store->layers, i);
        if (strcmp(layer->name, name) == 0) {
            g_ptr_array_remove_index(store->layers, i);
            return;
        }
    }
}

/* ---- merging layers nobody needs ---- */

/* Copies into dest every range that src stores itself and that dest does
 * not (only_where_unallocated), or every range src stores. Reads go through
 * read_from, which sees src's data at those ranges. */
static int copy_allocated(struct block_device *src, struct block_device *read_from,
                          struct block_device *dest, bool only_where_unallocated)
{
    uint64_t length = block_length(src), offset = 0;
    uint8_t *buf = g_malloc(MERGE_CHUNK);
    int ret = 0;
    while (offset < length && ret == 0) {
        bool in_src;
        uint64_t run;
        ret = block_allocated(src, offset, MIN(length - offset, MERGE_CHUNK), &in_src, &run);
        if (ret < 0)
            break;
        if (in_src && only_where_unallocated) {
            bool in_dest;
            ret = block_allocated(dest, offset, run, &in_dest, &run);
            if (ret < 0)
                break;
            in_src = !in_dest;
        }
        if (in_src) {
            ret = block_read(read_from, offset, buf, run);
            if (ret == 0)
                ret = block_write(dest, offset, buf, run);
        }
        offset += run;
    }
    g_free(buf);
    if (ret == 0)
        ret = block_flush(dest);
    return ret;
}

/* The layer's only child takes over what the layer stores, then skips it:
 * the child's contents, and those of everything above it, stay the same at
 * every step. */
static bool stream_into_child(struct snapshot_store *store, struct store_layer *layer,
                              struct store_layer *child, GError **error)
{
    g_autofree char *child_path = in_dir(store, child->name);
    g_autofree char *layer_path = in_dir(store, layer->name);
    struct block_device *dest = block_open(child_path, false, error);
    if (!dest)
        return false;
    struct block_device *src = block_open_qcow2_alone(layer_path, true, error);
    if (!src) {
        block_close(dest);
        return false;
    }
    /* Reading through the child gives the layer's data wherever the child
     * stores nothing. */
    int ret = copy_allocated(src, dest, dest, true);
    block_close(src);
    block_close(dest);
    if (ret < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-ret), "merging %s: %s",
                    layer->name, g_strerror(-ret));
        return false;
    }
    const char *backing, *format;
    backing_of(store, layer->drive, layer->parent, &backing, &format);
    if (!qcow2_set_backing(child_path, backing, format, error))
        return false;
    g_free(child->parent);
    child->parent = g_strdup(layer->parent);
    g_autofree char *gone = g_strdup(layer->name);
    remove_layer(store, gone);
    if (!write_index(store, error))
        return false;
    g_unlink(layer_path);
    return true;
}

/* With no snapshot left on a disk, its one layer goes back into the disk's
 * own image, which becomes the disk again. While this runs, the layer
 * still covers every range written into the image, so the disk's contents
 * never change. */
static bool commit_into_image(struct snapshot_store *store, unsigned d, GError **error)
{
    struct store_drive *drive = &store->drives[d];
    g_autofree char *layer_path = in_dir(store, drive->active);
    struct block_device *image = block_open(drive->image, false, error);
    if (!image)
        return false;
    struct block_device *layer = block_open_qcow2_alone(layer_path, true, error);
    if (!layer) {
        block_close(image);
        return false;
    }
    int ret = copy_allocated(layer, layer, image, false);
    block_close(layer);
    block_close(image);
    if (ret < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-ret), "writing back %s: %s",
                    drive->active, g_strerror(-ret));
        return false;
    }
    g_autofree char *gone = g_steal_pointer(&drive->active);
    remove_layer(store, gone);
    if (!write_index(store, error))
        return false;
    g_unlink(layer_path);
    return true;
}

/* Layers named by some snapshot, as "drive/layer" strings ("drive/" for a
 * disk's own image). False when a snapshot cannot be read: then nothing
 * may be merged, since that snapshot may need anything. */
static bool collect_references(struct snapshot_store *store, GHashTable *refs)
{
    GDir *dir = g_dir_open(store->dir, 0, NULL);
    if (!dir)
        return false;
    bool ok = true;
    const char *file;
    while (ok && (file = g_dir_read_name(dir))) {
        if (!g_str_has_suffix(file, SNAPSHOT_SUFFIX))
            continue;
        g_autofree char *path = in_dir(store, file);
        g_autoptr(GArray) disks = g_array_new(FALSE, TRUE, sizeof(struct snapshot_disk));
        if (!snapshot_read_disks(path, disks, NULL)) {
            ok = false;
            break;
        }
        for (guint i = 0; i < disks->len; i++) {
            const struct snapshot_disk *disk = &g_array_index(disks, struct snapshot_disk, i);
            g_hash_table_add(refs, g_strconcat(disk->drive, "/", disk->layer, NULL));
        }
    }
    g_dir_close(dir);
    return ok;
}

static bool referenced(GHashTable *refs, unsigned d, const char *layer)
{
    g_autofree char *key = g_strconcat(drive_names[d], "/", layer, NULL);
    return g_hash_table_contains(refs, key);
}

static unsigned count_children(struct snapshot_store *store, unsigned d, const char *name,
                               struct store_layer **only)
{
    unsigned n = 0;
    for (guint i = 0; i < store->layers->len; i++) {
        struct store_layer *layer = g_ptr_array_index(store->layers, i);
        if (layer->drive == d && strcmp(layer->parent, name) == 0) {
            n++;
            *only = layer;
        }
    }
    return n;
}

/* Removes and merges layers until every one left is needed. */
static bool collect_garbage(struct snapshot_store *store, struct machine *m, GError **error)
{
    g_autoptr(GHashTable) refs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (!collect_references(store, refs))
        return true; /* keep everything; deleting the unreadable file lets it go */
    bool ok = true;
    for (unsigned d = 0; d < STORE_DRIVES && ok; d++) {
        bool detached = false, changed = true;
        while (changed && ok) {
            changed = false;
            for (guint i = 0; i < store->layers->len && !changed && ok; i++) {
                struct store_layer *layer = g_ptr_array_index(store->layers, i);
                if (layer->drive != d || referenced(refs, d, layer->name) ||
                    g_strcmp0(layer->name, store->drives[d].active) == 0)
                    continue;
                struct store_layer *child = NULL;
                unsigned children = count_children(store, d, layer->name, &child);
                if (children > 1)
                    continue;
                if (!detached) {
                    detach_disk(m, d);
                    detached = true;
                }
                if (children == 0) {
                    g_autofree char *path = in_dir(store, layer->name);
                    remove_layer(store, layer->name);
                    ok = write_index(store, error);
                    if (ok)
                        g_unlink(path);
                } else {
                    ok = stream_into_child(store, layer, child, error);
                }
                changed = true;
            }
        }
        /* The disk's own image, no longer needed as it was, takes back
         * the one layer above it. */
        struct store_layer *child = NULL;
        if (ok && store->drives[d].active && !referenced(refs, d, "") &&
            count_children(store, d, "", &child) == 1 &&
            strcmp(child->name, store->drives[d].active) == 0 &&
            count_children(store, d, child->name, &child) == 0) {
            if (!detached) {
                detach_disk(m, d);
                detached = true;
            }
            ok = commit_into_image(store, d, error);
        }
        if (detached && !attach_disk(store, m, d, ok ? error : NULL))
            ok = false;
    }
    return ok;
}

/* ---- save, load, delete ---- */

static bool name_valid(const char *name, GError **error)
{
    if (viv_dbus_snapshot_name_valid(name))
        return true;
    return refuse(error,
                  "\"%s\" is not a valid snapshot name (1 to 64 of A-Z a-z 0-9 space - _ ., "
                  "not starting with a dot)",
                  name);
}

bool snapshot_store_save(struct snapshot_store *store, struct machine *m, const char *name,
                         GError **error)
{
    if (!name_valid(name, error))
        return false;
    struct snapshot_disk disks[STORE_DRIVES];
    unsigned disk_count = 0;
    bool ok = true;

    /* Freeze what each disk holds now, and move it to a new layer. */
    for (unsigned d = 0; d < STORE_DRIVES && ok; d++) {
        if (!m->disks[d])
            continue;
        struct store_drive *drive = &store->drives[d];
        if (!drive->image) {
            ok = refuse(error, "%s: its image's place is unknown, so it cannot be snapshotted",
                        drive_names[d]);
            break;
        }
        if (!drive->format) {
            struct block_device *inner = block_proxy_inner(m->disks[d]);
            drive->format =
                g_strdup(inner && strcmp(block_format_name(inner), "qcow2") == 0 ? "qcow2" : "raw");
        }
        uint64_t length = block_length(m->disks[d]);
        g_autofree char *frozen = g_strdup(drive->active ? drive->active : "");
        /* The frozen image is closed first: this process must not hold it
         * for writing while the new layer opens it for reading. */
        detach_disk(m, d);
        char *layer_name = NULL;
        struct block_device *bd = create_layer(store, d, frozen, length, &layer_name, error);
        if (!bd) {
            attach_disk(store, m, d, NULL);
            ok = false;
            break;
        }
        block_proxy_swap(m->disks[d], bd);
        add_layer(store, layer_name, frozen, d);
        g_free(drive->active);
        drive->active = layer_name;
        struct snapshot_disk *disk = &disks[disk_count++];
        memset(disk, 0, sizeof(*disk));
        g_strlcpy(disk->drive, drive_names[d], sizeof(disk->drive));
        g_strlcpy(disk->layer, frozen, sizeof(disk->layer));
        disk->length = length;
    }
    /* Disks moved to new layers stay there even when another failed: the
     * index must say so, or a restarted engine would lose their writes. */
    if (disk_count > 0) {
        GError *index_error = NULL;
        if (!write_index(store, ok ? error : &index_error))
            ok = false;
        g_clear_error(&index_error);
    }
    g_autofree char *path = snapshot_file(store, name, SNAPSHOT_SUFFIX);
    if (ok)
        ok = snapshot_save_with_disks(m, path, disks, disk_count, error);
    if (ok && m->display) {
        g_autofree char *thumbnail = snapshot_file(store, name, THUMBNAIL_SUFFIX);
        display_screenshot_png(m->display->fb, thumbnail, NULL);
    }
    /* A snapshot replaced under the same name, or a failed save, may have
     * left layers nobody needs. */
    GError *gc_error = NULL;
    if (!collect_garbage(store, m, &gc_error)) {
        g_warning("snapshot folder %s: %s", store->dir, gc_error->message);
        g_error_free(gc_error);
    }
    return ok;
}

bool snapshot_store_load(struct snapshot_store *store, struct machine *m, const char *name,
                         GError **error)
{
    if (!name_valid(name, error))
        return false;
    g_autofree char *path = snapshot_file(store, name, SNAPSHOT_SUFFIX);
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "there is no snapshot named \"%s\"",
                    name);
        return false;
    }
    struct snapshot_image *image = snapshot_image_read(m, path, error);
    if (!image)
        return false;

    /* Check every disk and open its new layer before anything changes. */
    unsigned count;
    const struct snapshot_disk *disks = snapshot_image_disks(image, &count);
    struct block_device *fresh[STORE_DRIVES] = {0};
    char *fresh_names[STORE_DRIVES] = {0};
    bool covered[STORE_DRIVES] = {0};
    bool ok = true;
    for (unsigned i = 0; i < count && ok; i++) {
        const struct snapshot_disk *disk = &disks[i];
        int d = drive_index(disk->drive);
        if (d < 0 || !m->disks[d] || covered[d]) {
            ok = refuse(error, "%s: the snapshot has a disk %s that this machine does not have",
                        name, disk->drive);
            break;
        }
        covered[d] = true;
        if (disk->length != block_length(m->disks[d])) {
            ok = refuse(error,
                        "%s: the snapshot's disk %s has %" G_GUINT64_FORMAT
                        " bytes; this machine's has %" G_GUINT64_FORMAT,
                        name, disk->drive, disk->length, block_length(m->disks[d]));
            break;
        }
        if (*disk->layer) {
            struct store_layer *layer = find_layer(store, disk->layer);
            g_autofree char *layer_path = in_dir(store, disk->layer);
            if (!layer || layer->drive != (unsigned)d ||
                !g_file_test(layer_path, G_FILE_TEST_EXISTS)) {
                ok = refuse(error, "%s: the layer %s that holds its disk %s is missing", name,
                            disk->layer, disk->drive);
                break;
            }
        } else if (!store->drives[d].image || !store->drives[d].format) {
            ok = refuse(error, "%s: the snapshot folder does not know the image of disk %s", name,
                        disk->drive);
            break;
        }
        fresh[d] =
            create_layer(store, (unsigned)d, disk->layer, disk->length, &fresh_names[d], error);
        ok = fresh[d] != NULL;
    }
    for (unsigned d = 0; d < STORE_DRIVES && ok; d++) {
        if (m->disks[d] && !covered[d])
            ok = refuse(error, "%s: the snapshot does not hold the contents of disk %s", name,
                        drive_names[d]);
    }
    if (!ok) {
        for (unsigned d = 0; d < STORE_DRIVES; d++) {
            if (!fresh[d])
                continue;
            block_close(fresh[d]);
            g_autofree char *fresh_path = in_dir(store, fresh_names[d]);
            g_unlink(fresh_path);
            g_free(fresh_names[d]);
        }
        snapshot_image_free(image);
        return false;
    }

    snapshot_image_apply(m, image);
    for (unsigned i = 0; i < count; i++) {
        const struct snapshot_disk *disk = &disks[i];
        unsigned d = (unsigned)drive_index(disk->drive);
        block_close(block_proxy_swap(m->disks[d], fresh[d]));
        add_layer(store, fresh_names[d], disk->layer, d);
        g_free(store->drives[d].active);
        store->drives[d].active = fresh_names[d];
    }
    snapshot_image_free(image);
    /* The machine is restored; an index that cannot be written only means
     * a restarted engine would go on from before the revert. */
    GError *late = NULL;
    if (!write_index(store, &late) || !collect_garbage(store, m, &late)) {
        g_warning("snapshot folder %s: %s", store->dir, late->message);
        g_error_free(late);
    }
    return true;
}

bool snapshot_store_delete(struct snapshot_store *store, struct machine *m, const char *name,
                           GError **error)
{
    if (!name_valid(name, error))
        return false;
    g_autofree char *path = snapshot_file(store, name, SNAPSHOT_SUFFIX);
    g_autofree char *thumbnail = snapshot_file(store, name, THUMBNAIL_SUFFIX);
    if (g_unlink(path) != 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "there is no snapshot named \"%s\"",
                    name);
        return false;
    }
    g_unlink(thumbnail);
    return collect_garbage(store, m, error);
}

/* ---- listing ---- */

static void entry_free(gpointer data)
{
    struct snapshot_entry *entry = data;
    g_free(entry->name);
    g_free(entry->thumbnail);
    g_free(entry->problem);
    g_free(entry);
}

static gint compare_entries(gconstpointer a, gconstpointer b)
{
    const struct snapshot_entry *ea = *(struct snapshot_entry *const *)a;
    const struct snapshot_entry *eb = *(struct snapshot_entry *const *)b;
    if (ea->created_us != eb->created_us)
        return ea->created_us < eb->created_us ? -1 : 1;
    return strcmp(ea->name, eb->name);
}

char *snapshot_entry_describe(const struct snapshot_entry *entry)
{
    if (entry->problem)
        return g_strdup_printf("%s\tunusable: %s", entry->name, entry->problem);
    GDateTime *when = g_date_time_new_from_unix_local(entry->created_us / 1000000);
    char *date = g_date_time_format(when, "%Y-%m-%d %H:%M:%S");
    char *line = g_strdup_printf("%s\t%s\t%" G_GUINT64_FORMAT " KiB", entry->name, date,
                                 entry->file_size >> 10);
    g_free(date);
    g_date_time_unref(when);
    return line;
}

GPtrArray *snapshot_store_list(const char *dir_path)
{
    GPtrArray *entries = g_ptr_array_new_with_free_func(entry_free);
    GDir *dir = g_dir_open(dir_path, 0, NULL);
    const char *file;
    while (dir && (file = g_dir_read_name(dir))) {
        if (!g_str_has_suffix(file, SNAPSHOT_SUFFIX) || file[0] == '.')
            continue;
        struct snapshot_entry *entry = g_new0(struct snapshot_entry, 1);
        entry->name = g_strndup(file, strlen(file) - strlen(SNAPSHOT_SUFFIX));
        g_autofree char *path = g_build_filename(dir_path, file, NULL);
        g_autofree char *png = g_strconcat(entry->name, THUMBNAIL_SUFFIX, NULL);
        entry->thumbnail = g_build_filename(dir_path, png, NULL);
        if (!g_file_test(entry->thumbnail, G_FILE_TEST_EXISTS))
            g_clear_pointer(&entry->thumbnail, g_free);
        struct snapshot_info info;
        GError *error = NULL;
        /* Damaged files are listed too, so the person can delete them; a
         * load of one is refused with the reason. */
        if (snapshot_read_info(path, &info, &error)) {
            entry->created_us = info.created_us;
            entry->file_size = info.file_size;
        } else {
            entry->problem = g_strdup(error->message);
            g_error_free(error);
        }
        g_ptr_array_add(entries, entry);
    }
    if (dir)
        g_dir_close(dir);
    g_ptr_array_sort(entries, compare_entries);
    return entries;
}
