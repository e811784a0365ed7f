/* vivarium-img: makes and describes disk images with the engine's own image
 * code (engine/block), for the app, which never links the engine, and for
 * people at a shell.
 *
 *   vivarium-img create [--backing FILE] FILE SIZE   a new qcow2 image
 *   vivarium-img info FILE                           its format and size
 *
 * SIZE is a number of bytes with an optional binary suffix (K, M, G, T, also
 * written KiB, MiB, GiB, TiB), a whole number of 512-byte sectors. With
 * --backing, SIZE may be 0 for the backing file's size.
 *
 * Exit status: 0 done; 1 the image could not be made or read (one line on
 * standard error says why); 2 a wrong command line.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "block/block.h"

#define SECTOR_SIZE 512

static const char usage[] = "Usage: vivarium-img create [--backing FILE] FILE SIZE\n"
                            "       vivarium-img info FILE\n";

static int usage_error(const char *message)
{
    fprintf(stderr, "vivarium-img: %s\n%s", message, usage);
    return 2;
}

/* Parses "64M", "2GiB", "1048576". Returns false for anything else,
 * including a value that does not fit in 64 bits. */
static bool parse_size(const char *text, uint64_t *size)
{
    static const char suffixes[] = "KMGT";
    char *end = NULL;
    unsigned shift = 0;

    if (!g_ascii_isdigit(text[0]))
        return false;
    errno = 0;
    uint64_t value = g_ascii_strtoull(text, &end, 10);
    if (errno != 0)
        return false;
    if (*end != '\0') {
        const char *unit = strchr(suffixes, g_ascii_toupper(*end));
        if (unit == NULL)
            return false;
        shift = 10 * (unsigned)(unit - suffixes + 1);
        end++;
        if (g_ascii_strcasecmp(end, "iB") == 0)
            end += 2;
        if (*end != '\0')
            return false;
    }
    if (shift != 0 && value > (UINT64_MAX >> shift))
        return false;
    *size = value << shift;
    return true;
}

static int command_create(int argc, char **argv)
{
    const char *backing = NULL;
    uint64_t size;
    GError *error = NULL;

    if (argc >= 2 && strcmp(argv[0], "--backing") == 0) {
        backing = argv[1];
        argc -= 2;
        argv += 2;
    }
    if (argc != 2)
        return usage_error("create needs a file name and a size");
    if (!parse_size(argv[1], &size))
        return usage_error("the size must be a number of bytes, optionally with K, M, G or T");
    if (size == 0 && backing == NULL)
        return usage_error("the size must not be 0 without a backing file");
    if (size % SECTOR_SIZE != 0)
        return usage_error("the size must be a whole number of 512-byte sectors");
    if (!qcow2_create(argv[0], size, backing, &error)) {
        /* The host's errors already name the file. */
        if (g_error_matches(error, BLOCK_ERROR, BLOCK_ERROR_IO))
            fprintf(stderr, "vivarium-img: %s\n", error->message);
        else
            fprintf(stderr, "vivarium-img: cannot create %s: %s\n", argv[0], error->message);
        g_error_free(error);
        return 1;
    }
    return 0;
}

static int command_info(int argc, char **argv)
{
    GError *error = NULL;

    if (argc != 1)
        return usage_error("info needs one file name");
    struct block_device *bd = block_open(argv[0], true, &error);
    if (bd == NULL) {
        fprintf(stderr, "vivarium-img: %s\n", error->message);
        g_error_free(error);
        return 1;
    }
    printf("format: %s\nsize: %" PRIu64 "\n", block_format_name(bd), block_length(bd));
    block_close(bd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("no command given");
    if (strcmp(argv[1], "create") == 0)
        return command_create(argc - 2, argv + 2);
    if (strcmp(argv[1], "info") == 0)
        return command_info(argc - 2, argv + 2);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    return usage_error("unknown command (create, info)");
}
