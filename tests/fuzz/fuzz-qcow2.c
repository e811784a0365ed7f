/* libFuzzer target: any bytes as a qcow2 image must be refused cleanly or
 * read (and written) without a crash, a hang or a sanitizer report.
 * Build: CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/fuzz-qcow2-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        abort();
    if (write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);

    /* The last input byte picks writable or read-only, so both paths are
     * explored. */
    bool writable = size > 0 && (data[size - 1] & 1);
    struct block_device *bd = block_open_qcow2(path, !writable, NULL);
    if (bd) {
        static uint8_t buf[256 * 1024];
        uint64_t length = block_length(bd);
        /* A few reads spread over the disk, and the same places written. */
        for (unsigned i = 0; i < 8 && length > 0; i++) {
            uint64_t offset = (length / 8) * i;
            size_t len = (size_t)MIN((uint64_t)sizeof(buf), length - offset);
            block_read(bd, offset, buf, len);
            if (writable)
                block_write(bd, offset, buf, MIN(len, (size_t)4096));
        }
        block_close(bd);
    }
    unlink(path);
    return 0;
}
