/* Disk images behind the disk controllers.
 *
 * A struct block_device is an open image of some format (raw, qcow2) seen
 * as a flat array of bytes of a fixed length. The controllers address it in
 * 512- or 2048-byte sectors through the sector helpers; the formats work in
 * bytes. Every call runs on the vCPU thread and blocks until the host file
 * has answered; the image formats keep no threads of their own.
 *
 * I/O calls return 0 or a negative errno. A damaged image is refused at open
 * with a GError; damage found later (a table pointing outside the file) fails
 * the request with -EIO and logs one warning naming the problem, so the guest
 * sees a disk error and the engine never crashes.
 */
#ifndef VIVARIUM_BLOCK_H
#define VIVARIUM_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define BLOCK_SECTOR_SIZE 512

/* Errors of block_open() and qcow2_create(). */
#define BLOCK_ERROR (block_error_quark())
enum block_error {
    BLOCK_ERROR_IO,          /* the host file could not be opened, read or written */
    BLOCK_ERROR_CORRUPT,     /* the image is damaged or truncated */
    BLOCK_ERROR_UNSUPPORTED, /* a valid image using a feature Vivarium lacks */
    BLOCK_ERROR_IN_USE,      /* another process holds the image open for writing */
    BLOCK_ERROR_INVALID,     /* a bad argument (size, backing file name) */
};
GQuark block_error_quark(void);

struct block_device;

/* What a format implements. Offsets and lengths are already checked against
 * the device length and read-only flag when these are called. */
struct block_ops {
    const char *format_name;
    int (*read)(struct block_device *bd, uint64_t offset, void *buf, size_t len);
    int (*write)(struct block_device *bd, uint64_t offset, const void *buf, size_t len);
    int (*flush)(struct block_device *bd);
    void (*close)(struct block_device *bd);
    /* Optional (formats without backing files leave it NULL: everything is
     * allocated). See block_allocated(). */
    int (*allocated)(struct block_device *bd, uint64_t offset, uint64_t len, bool *allocated,
                     uint64_t *run);
};

struct block_device {
    const struct block_ops *ops;
    char *path;
    uint64_t length; /* bytes the guest sees */
    bool readonly;
};

/* Opens an image, choosing the format from its first bytes: qcow2 by its
 * magic, anything else as raw. Backing files of a qcow2 image are opened
 * read-only and closed with it. */
struct block_device *block_open(const char *path, bool readonly, GError **error);
/* Opens a file as raw bytes whatever it holds. An ISO image is a read-only
 * raw device that the CD-ROM reads in 2048-byte sectors. */
struct block_device *block_open_raw(const char *path, bool readonly, GError **error);
struct block_device *block_open_qcow2(const char *path, bool readonly, GError **error);
void block_close(struct block_device *bd);

int block_read(struct block_device *bd, uint64_t offset, void *buf, size_t len);
int block_write(struct block_device *bd, uint64_t offset, const void *buf, size_t len);
/* Makes every completed write durable (a guest's FLUSH CACHE). */
int block_flush(struct block_device *bd);

static inline uint64_t block_length(const struct block_device *bd)
{
    return bd->length;
}

static inline bool block_is_readonly(const struct block_device *bd)
{
    return bd->readonly;
}

static inline const char *block_format_name(const struct block_device *bd)
{
    return bd->ops->format_name;
}

/* Whole sectors of sector_size bytes (512 for disks and floppies, 2048 for
 * CDs). A trailing partial sector of the image is not addressable. */
static inline uint64_t block_sector_count(const struct block_device *bd, unsigned sector_size)
{
    return bd->length / sector_size;
}
int block_read_sectors(struct block_device *bd, uint64_t sector, unsigned sector_size, void *buf,
                       unsigned count);
int block_write_sectors(struct block_device *bd, uint64_t sector, unsigned sector_size,
                        const void *buf, unsigned count);

/* Whether the bytes at offset are stored in this image itself rather than
 * read through to its backing file (zero and compressed clusters count as
 * stored). *run is how many bytes from offset, at most len, share the
 * answer. 0 or a negative errno. */
int block_allocated(struct block_device *bd, uint64_t offset, uint64_t len, bool *allocated,
                    uint64_t *run);

/* A stand-in device whose image can be exchanged under it: the controllers
 * keep one pointer while snapshots move the machine's disks from one image
 * to another. Its length and read-only flag are those of the first image;
 * while it holds none (block_proxy_swap with NULL), I/O fails with -EIO.
 * Closing it closes the image it holds. */
struct block_device *block_proxy_new(struct block_device *inner);
/* Puts inner in and returns the image held before (flushed), for the caller
 * to close. inner must have the proxy's length. */
struct block_device *block_proxy_swap(struct block_device *proxy, struct block_device *inner);
struct block_device *block_proxy_inner(struct block_device *proxy);

/* Opens a qcow2 image without its backing file: reads of clusters it does
 * not store give zeros. For merging layers, with block_allocated(). */
struct block_device *block_open_qcow2_alone(const char *path, bool readonly, GError **error);

/* Creates a qcow2 overlay without opening its backing file, whose format
 * ("raw" or "qcow2") and length the caller knows: the backing file may be
 * held open for writing by this very process. */
bool qcow2_create_overlay(const char *path, const char *backing_file, const char *backing_format,
                          uint64_t size, GError **error);

/* Points a closed qcow2 image at another backing file (a layer below has
 * been merged into it, so its contents do not change). The header is
 * rewritten in one write of its first sector(s) and synced. */
bool qcow2_set_backing(const char *path, const char *backing_file, const char *backing_format,
                       GError **error);

/* Creates a new qcow2 version 3 image with 64 KiB clusters. With a backing
 * file, unwritten clusters read through to it; its name is stored as given
 * (a relative name is relative to the new image's folder) and size 0 takes
 * the backing file's length. Refuses to overwrite an existing file. */
bool qcow2_create(const char *path, uint64_t size, const char *backing_file, GError **error);

/* Internal to engine/block: used by the formats. */
struct block_device *block_open_backing(const char *path, const char *format, unsigned depth,
                                        GError **error);
#define BLOCK_MAX_BACKING_DEPTH 16

#endif
