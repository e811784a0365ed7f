/* The block device front: format probing, range checks, sector helpers, and
 * the raw format (the image file is the disk, byte for byte). */
#include "block.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block_internal.h"

G_DEFINE_QUARK(vivarium - block - error - quark, block_error)

int block_host_open(const char *path, bool readonly, GError **error)
{
    int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(errno));
        return -1;
    }
    /* Two writers, or a writer and a reader, of one image would see each
     * other's half-done updates: an exclusive lock for writing and a shared
     * one for reading keep that from happening between engines. */
    if (flock(fd, (readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
            g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IN_USE,
                        "%s: the image is in use by another program", path);
            close(fd);
            return -1;
        }
        /* File systems without locks (some network ones) are still usable. */
    }
    return fd;
}

bool block_host_size(int fd, const char *path, uint64_t *size, GError **error)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(errno));
        return false;
    }
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(fd, 0, SEEK_END);
        if (end < 0) {
            g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(errno));
            return false;
        }
        *size = (uint64_t)end;
        return true;
    }
    if (!S_ISREG(st.st_mode)) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_INVALID,
                    "%s: not a regular file or block device", path);
        return false;
    }
    *size = (uint64_t)st.st_size;
    return true;
}

int block_host_pread(int fd, void *buf, size_t len, uint64_t offset)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0) {
            /* Past the end of the file: a sparse tail reads as zeros. */
            memset(p, 0, len);
            return 0;
        }
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

int block_host_pwrite(int fd, const void *buf, size_t len, uint64_t offset)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

int block_host_sync(int fd)
{
    while (fdatasync(fd) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

/* ---- raw ---- */

struct raw_image {
    struct block_device bd;
    int fd;
};

static int raw_read(struct block_device *bd, uint64_t offset, void *buf, size_t len)
{
    struct raw_image *raw = (struct raw_image *)bd;
    return block_host_pread(raw->fd, buf, len, offset);
}

static int raw_write(struct block_device *bd, uint64_t offset, const void *buf, size_t len)
{
    struct raw_image *raw = (struct raw_image *)bd;
    return block_host_pwrite(raw->fd, buf, len, offset);
}

static int raw_flush(struct block_device *bd)
{
    struct raw_image *raw = (struct raw_image *)bd;
    return bd->readonly ? 0 : block_host_sync(raw->fd);
}

static void raw_close(struct block_device *bd)
{
    struct raw_image *raw = (struct raw_image *)bd;
    close(raw->fd);
}

static const struct block_ops raw_ops = {
    .format_name = "raw",
    .read = raw_read,
    .write = raw_write,
    .flush = raw_flush,
    .close = raw_close,
};

struct block_device *block_open_raw(const char *path, bool readonly, GError **error)
{
    int fd = block_host_open(path, readonly, error);
    if (fd < 0)
        return NULL;
    uint64_t size;
    if (!block_host_size(fd, path, &size, error)) {
        close(fd);
        return NULL;
    }
    struct raw_image *raw = g_new0(struct raw_image, 1);
    raw->bd.ops = &raw_ops;
    raw->bd.path = g_strdup(path);
    raw->bd.length = size;
    raw->bd.readonly = readonly;
    raw->fd = fd;
    return &raw->bd;
}

/* ---- probing and the common entry points ---- */

static bool probe_is_qcow2(const char *path, GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(errno));
        return false;
    }
    uint8_t magic[4] = {0};
    int ret = block_host_pread(fd, magic, sizeof(magic), 0);
    close(fd);
    if (ret < 0) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_IO, "%s: %s", path, g_strerror(-ret));
        return false;
    }
    return memcmp(magic, QCOW2_MAGIC_BYTES, 4) == 0;
}

struct block_device *block_open(const char *path, bool readonly, GError **error)
{
    GError *probe_error = NULL;
    bool qcow2 = probe_is_qcow2(path, &probe_error);
    if (probe_error) {
        g_propagate_error(error, probe_error);
        return NULL;
    }
    return qcow2 ? block_open_qcow2(path, readonly, error) : block_open_raw(path, readonly, error);
}

struct block_device *block_open_backing(const char *path, const char *format, unsigned depth,
                                        GError **error)
{
    if (format && strcmp(format, "raw") == 0)
        return block_open_raw(path, true, error);
    if (format && strcmp(format, "qcow2") != 0) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_UNSUPPORTED,
                    "%s: backing file format '%s' is not supported", path, format);
        return NULL;
    }
    GError *probe_error = NULL;
    bool qcow2 = probe_is_qcow2(path, &probe_error);
    if (probe_error) {
        g_propagate_error(error, probe_error);
        return NULL;
    }
    if (!qcow2) {
        if (format) {
            g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_CORRUPT,
                        "%s: the backing file is not a qcow2 image", path);
            return NULL;
        }
        return block_open_raw(path, true, error);
    }
    return qcow2_open_chain(path, true, depth, error);
}

struct block_device *block_open_qcow2(const char *path, bool readonly, GError **error)
{
    return qcow2_open_chain(path, readonly, 0, error);
}

void block_close(struct block_device *bd)
{
    if (!bd)
        return;
    if (!bd->readonly)
        bd->ops->flush(bd);
    bd->ops->close(bd);
    g_free(bd->path);
    g_free(bd);
}

static bool range_ok(const struct block_device *bd, uint64_t offset, size_t len)
{
    return offset <= bd->length && len <= bd->length - offset;
}

int block_read(struct block_device *bd, uint64_t offset, void *buf, size_t len)
{
    if (!range_ok(bd, offset, len))
        return -EINVAL;
    if (len == 0)
        return 0;
    return bd->ops->read(bd, offset, buf, len);
}

int block_write(struct block_device *bd, uint64_t offset, const void *buf, size_t len)
{
    if (bd->readonly)
        return -EROFS;
    if (!range_ok(bd, offset, len))
        return -EINVAL;
    if (len == 0)
        return 0;
    return bd->ops->write(bd, offset, buf, len);
}

int block_flush(struct block_device *bd)
{
    return bd->ops->flush(bd);
}

static bool sector_range(const struct block_device *bd, uint64_t sector, unsigned sector_size,
                         unsigned count, uint64_t *offset)
{
    uint64_t total = block_sector_count(bd, sector_size);
    if (sector > total || count > total - sector)
        return false;
    *offset = sector * sector_size;
    return true;
}

int block_read_sectors(struct block_device *bd, uint64_t sector, unsigned sector_size, void *buf,
                       unsigned count)
{
    uint64_t offset;
    if (!sector_range(bd, sector, sector_size, count, &offset))
        return -EINVAL;
    return block_read(bd, offset, buf, (size_t)count * sector_size);
}

int block_write_sectors(struct block_device *bd, uint64_t sector, unsigned sector_size,
                        const void *buf, unsigned count)
{
    uint64_t offset;
    if (!sector_range(bd, sector, sector_size, count, &offset))
        return -EINVAL;
    return block_write(bd, offset, buf, (size_t)count * sector_size);
}

int block_allocated(struct block_device *bd, uint64_t offset, uint64_t len, bool *allocated,
                    uint64_t *run)
{
    if (!range_ok(bd, offset, len))
        return -EINVAL;
    if (!bd->ops->allocated) {
        *allocated = true;
        *run = len;
        return 0;
    }
    return bd->ops->allocated(bd, offset, len, allocated, run);
}

/* ---- the proxy ---- */

struct block_proxy {
    struct block_device bd;
    struct block_device *inner;
};

static int proxy_read(struct block_device *bd, uint64_t offset, void *buf, size_t len)
{
    struct block_proxy *proxy = (struct block_proxy *)bd;
    return proxy->inner ? block_read(proxy->inner, offset, buf, len) : -EIO;
}

static int proxy_write(struct block_device *bd, uint64_t offset, const void *buf, size_t len)
{
    struct block_proxy *proxy = (struct block_proxy *)bd;
    return proxy->inner ? block_write(proxy->inner, offset, buf, len) : -EIO;
}

static int proxy_flush(struct block_device *bd)
{
    struct block_proxy *proxy = (struct block_proxy *)bd;
    return proxy->inner ? block_flush(proxy->inner) : 0;
}

static void proxy_close(struct block_device *bd)
{
    struct block_proxy *proxy = (struct block_proxy *)bd;
    block_close(proxy->inner);
}

static int proxy_allocated(struct block_device *bd, uint64_t offset, uint64_t len, bool *allocated,
                           uint64_t *run)
{
    struct block_proxy *proxy = (struct block_proxy *)bd;
    return proxy->inner ? block_allocated(proxy->inner, offset, len, allocated, run) : -EIO;
}

static const struct block_ops proxy_ops = {
    .format_name = "proxy",
    .read = proxy_read,
    .write = proxy_write,
    .flush = proxy_flush,
    .close = proxy_close,
    .allocated = proxy_allocated,
};

struct block_device *block_proxy_new(struct block_device *inner)
{
    struct block_proxy *proxy = g_new0(struct block_proxy, 1);
    proxy->bd.ops = &proxy_ops;
    proxy->bd.path = g_strdup(inner->path);
    proxy->bd.length = inner->length;
    /* The proxy's own flush must always reach the image, so the proxy is
     * writable whenever its image is. */
    proxy->bd.readonly = inner->readonly;
    proxy->inner = inner;
    return &proxy->bd;
}

struct block_device *block_proxy_swap(struct block_device *proxy_bd, struct block_device *inner)
{
    struct block_proxy *proxy = (struct block_proxy *)proxy_bd;
    g_assert(proxy_bd->ops == &proxy_ops);
    g_assert(!inner || inner->length == proxy_bd->length);
    struct block_device *old = proxy->inner;
    if (old)
        block_flush(old);
    proxy->inner = inner;
    if (inner) {
        g_free(proxy->bd.path);
        proxy->bd.path = g_strdup(inner->path);
    }
    return old;
}

struct block_device *block_proxy_inner(struct block_device *proxy_bd)
{
    g_assert(proxy_bd->ops == &proxy_ops);
    return ((struct block_proxy *)proxy_bd)->inner;
}
