/* blocktool: drives engine/block from the command line so that test scripts
 * can cross-check Vivarium's image code against qemu-img.
 *
 *   blocktool create FILE SIZE [BACKING]      new qcow2 (SIZE 0 = backing's size)
 *   blocktool write-pattern FILE SEED OFFSET LENGTH
 *   blocktool check-pattern FILE SEED OFFSET LENGTH
 *   blocktool compare FILE1 FILE2             same length and bytes, read through engine/block
 *   blocktool info FILE                       format and length
 *
 * The pattern is a function of the seed and the absolute offset, so a range
 * written in pieces reads back the same as one written whole. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"

#define CHUNK (1024 * 1024 + 1536) /* not a power of two: exercises odd splits */

static uint8_t pattern_byte(uint32_t seed, uint64_t offset)
{
    uint64_t x = (offset + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)seed << 32 | seed);
    x ^= x >> 29;
    return (uint8_t)(x ^ (x >> 8));
}

static uint64_t parse_u64(const char *text)
{
    char *end;
    uint64_t v = g_ascii_strtoull(text, &end, 0);
    switch (*end) {
    case 'k':
    case 'K':
        v <<= 10;
        break;
    case 'm':
    case 'M':
        v <<= 20;
        break;
    case 'g':
    case 'G':
        v <<= 30;
        break;
    case '\0':
        break;
    default:
        fprintf(stderr, "blocktool: bad number '%s'\n", text);
        exit(2);
    }
    return v;
}

static struct block_device *open_or_die(const char *path, bool readonly)
{
    GError *error = NULL;
    struct block_device *bd = block_open(path, readonly, &error);
    if (!bd) {
        fprintf(stderr, "blocktool: %s\n", error->message);
        exit(1);
    }
    return bd;
}

static int pattern(const char *path, uint32_t seed, uint64_t offset, uint64_t length, bool write)
{
    struct block_device *bd = open_or_die(path, !write);
    uint8_t *buf = g_malloc(CHUNK);
    uint8_t *expected = g_malloc(CHUNK);
    int status = 0;
    for (uint64_t done = 0; done < length && status == 0;) {
        size_t n = (size_t)MIN((uint64_t)CHUNK, length - done);
        for (size_t i = 0; i < n; i++)
            expected[i] = pattern_byte(seed, offset + done + i);
        int ret = write ? block_write(bd, offset + done, expected, n)
                        : block_read(bd, offset + done, buf, n);
        if (ret < 0) {
            fprintf(stderr, "blocktool: %s at %" PRIu64 ": %s\n", write ? "write" : "read",
                    offset + done, g_strerror(-ret));
            status = 1;
        } else if (!write && memcmp(buf, expected, n) != 0) {
            size_t i = 0;
            while (buf[i] == expected[i])
                i++;
            fprintf(stderr, "blocktool: mismatch at %" PRIu64 "\n", offset + done + i);
            status = 1;
        }
        done += n;
    }
    if (write && block_flush(bd) < 0)
        status = 1;
    block_close(bd);
    g_free(buf);
    g_free(expected);
    return status;
}

static int compare(const char *path1, const char *path2)
{
    struct block_device *a = open_or_die(path1, true);
    struct block_device *b = open_or_die(path2, true);
    int status = 0;
    if (block_length(a) != block_length(b)) {
        fprintf(stderr, "blocktool: lengths differ: %" PRIu64 " and %" PRIu64 "\n", block_length(a),
                block_length(b));
        status = 1;
    }
    uint8_t *buf_a = g_malloc(CHUNK), *buf_b = g_malloc(CHUNK);
    for (uint64_t pos = 0; status == 0 && pos < block_length(a);) {
        size_t n = (size_t)MIN((uint64_t)CHUNK, block_length(a) - pos);
        int ret = block_read(a, pos, buf_a, n);
        if (ret == 0)
            ret = block_read(b, pos, buf_b, n);
        if (ret < 0) {
            fprintf(stderr, "blocktool: read at %" PRIu64 ": %s\n", pos, g_strerror(-ret));
            status = 1;
        } else if (memcmp(buf_a, buf_b, n) != 0) {
            size_t i = 0;
            while (buf_a[i] == buf_b[i])
                i++;
            fprintf(stderr, "blocktool: contents differ at %" PRIu64 "\n", pos + i);
            status = 1;
        }
        pos += n;
    }
    g_free(buf_a);
    g_free(buf_b);
    block_close(a);
    block_close(b);
    return status;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "create") == 0) {
        GError *error = NULL;
        if (!qcow2_create(argv[2], parse_u64(argv[3]), argc > 4 ? argv[4] : NULL, &error)) {
            fprintf(stderr, "blocktool: %s\n", error->message);
            return 1;
        }
        return 0;
    }
    if (argc == 6 &&
        (strcmp(argv[1], "write-pattern") == 0 || strcmp(argv[1], "check-pattern") == 0)) {
        return pattern(argv[2], (uint32_t)parse_u64(argv[3]), parse_u64(argv[4]),
                       parse_u64(argv[5]), argv[1][0] == 'w');
    }
    if (argc == 4 && strcmp(argv[1], "compare") == 0)
        return compare(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "info") == 0) {
        struct block_device *bd = open_or_die(argv[2], true);
        printf("%s %" PRIu64 "\n", block_format_name(bd), block_length(bd));
        block_close(bd);
        return 0;
    }
    fprintf(stderr, "usage: blocktool create FILE SIZE [BACKING]\n"
                    "       blocktool write-pattern|check-pattern FILE SEED OFFSET LENGTH\n"
                    "       blocktool compare FILE1 FILE2\n"
                    "       blocktool info FILE\n");
    return 2;
}
