/* Helpers shared by the image formats in engine/block; not for devices. */
#ifndef VIVARIUM_BLOCK_INTERNAL_H
#define VIVARIUM_BLOCK_INTERNAL_H

#include "block.h"

#define QCOW2_MAGIC_BYTES "QFI\xfb"

/* Opens path for reading (and writing unless readonly) and locks it against
 * other writers; -1 with *error set on failure. */
int block_host_open(const char *path, bool readonly, GError **error);
bool block_host_size(int fd, const char *path, uint64_t *size, GError **error);
/* Whole-buffer transfers; 0 or -errno. Reads past the end of the file give
 * zeros. */
int block_host_pread(int fd, void *buf, size_t len, uint64_t offset);
int block_host_pwrite(int fd, const void *buf, size_t len, uint64_t offset);
int block_host_sync(int fd);

/* depth counts the images above this one in a backing chain. */
struct block_device *qcow2_open_chain(const char *path, bool readonly, unsigned depth,
                                      GError **error);

#endif
