/* Unit tests for the 82077AA floppy controller, through its ports and a
 * fake 8237 channel 2 that moves data as soon as DREQ is held. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "block/block.h"
#include "devices/fdc.h"
#include "irq.h"
#include "ioport.h"

/* ---- a fake ISA DMA controller with the 8237 interface's functions ---- */

typedef int (*isa_dma_transfer_fn)(void *opaque, int channel, int position, int size);
void isa_dma_register_channel(struct isa_dma *dma, int channel, isa_dma_transfer_fn fn,
                              void *opaque);
void isa_dma_hold_dreq(struct isa_dma *dma, int channel);
void isa_dma_release_dreq(struct isa_dma *dma, int channel);
int isa_dma_read_memory(struct isa_dma *dma, int channel, void *buf, int position, int len);
int isa_dma_write_memory(struct isa_dma *dma, int channel, const void *buf, int position, int len);

struct isa_dma {
    uint8_t *ram;
    isa_dma_transfer_fn fn;
    void *opaque;
    int channel;
    uint32_t address;
    int size;
    int position;
    bool dreq;
    bool terminal_count;
};

void isa_dma_register_channel(struct isa_dma *dma, int channel, isa_dma_transfer_fn fn,
                              void *opaque)
{
    dma->channel = channel;
    dma->fn = fn;
    dma->opaque = opaque;
}

void isa_dma_hold_dreq(struct isa_dma *dma, int channel)
{
    g_assert_cmpint(channel, ==, dma->channel);
    dma->dreq = true;
    /* Serve the request at once, as a channel that is unmasked would. */
    while (dma->dreq && dma->position < dma->size)
        dma->position = dma->fn(dma->opaque, channel, dma->position, dma->size);
    if (dma->position >= dma->size)
        dma->terminal_count = true;
}

void isa_dma_release_dreq(struct isa_dma *dma, int channel)
{
    g_assert_cmpint(channel, ==, dma->channel);
    dma->dreq = false;
}

int isa_dma_read_memory(struct isa_dma *dma, int channel, void *buf, int position, int len)
{
    (void)channel;
    memcpy(buf, dma->ram + dma->address + position, (size_t)len);
    return len;
}

int isa_dma_write_memory(struct isa_dma *dma, int channel, const void *buf, int position, int len)
{
    (void)channel;
    memcpy(dma->ram + dma->address + position, buf, (size_t)len);
    return len;
}

static void dma_program(struct isa_dma *dma, uint32_t address, int size)
{
    dma->address = address;
    dma->size = size;
    dma->position = 0;
    dma->terminal_count = false;
}

/* ---- fixture ---- */

#define DOR  0x3f2
#define MSR  0x3f4
#define FIFO 0x3f5
#define DIR  0x3f7
#define CCR  0x3f7

struct fixture {
    struct ioport_bus io;
    struct isa_dma dma;
    uint8_t ram[1 << 20];
    struct fdc *fdc;
    struct irq_line irq;
    bool level;
    int raised;
    char *dir;
    char *path144;
    char *path720;
};

static void irq_cb(void *opaque, int n, bool level)
{
    struct fixture *f = opaque;
    (void)n;
    if (level && !f->level)
        f->raised++;
    f->level = level;
}

static uint8_t pattern_byte(uint64_t offset)
{
    return (uint8_t)(offset ^ (offset >> 9) * 37);
}

static char *make_image(const char *dir, const char *name, size_t size)
{
    char *path = g_build_filename(dir, name, NULL);
    g_autofree uint8_t *data = g_malloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = pattern_byte(i);
    g_assert_true(g_file_set_contents(path, (char *)data, (gssize)size, NULL));
    return path;
}

static void fixture_setup(struct fixture *f, gconstpointer data)
{
    (void)data;
    ioport_bus_init(&f->io);
    f->dma.ram = f->ram;
    f->irq = (struct irq_line){.handler = irq_cb, .opaque = f, .n = 6};
    f->fdc = fdc_create(&f->io, &f->irq, &f->dma);
    f->dir = g_dir_make_tmp("vivarium-fdc-XXXXXX", NULL);
    f->path144 = make_image(f->dir, "a.img", 1474560);
    f->path720 = make_image(f->dir, "b.img", 737280);
    GError *error = NULL;
    struct block_device *bd = block_open(f->path144, false, &error);
    g_assert_no_error(error);
    g_assert_true(fdc_insert(f->fdc, 0, bd, &error));
    g_assert_no_error(error);
}

static void fixture_teardown(struct fixture *f, gconstpointer data)
{
    (void)data;
    fdc_destroy(f->fdc);
    g_unlink(f->path144);
    g_unlink(f->path720);
    g_rmdir(f->dir);
    g_free(f->path144);
    g_free(f->path720);
    g_free(f->dir);
}

static uint8_t inb(struct fixture *f, uint16_t port)
{
    return (uint8_t)ioport_read(&f->io, port, 1);
}

static void outb(struct fixture *f, uint16_t port, uint8_t v)
{
    ioport_write(&f->io, port, 1, v);
}

static void command(struct fixture *f, const uint8_t *bytes, unsigned len)
{
    for (unsigned i = 0; i < len; i++) {
        g_assert_cmphex(inb(f, MSR) & 0xc0, ==, 0x80); /* ready for a command byte */
        outb(f, FIFO, bytes[i]);
    }
}

static unsigned results(struct fixture *f, uint8_t *out, unsigned max)
{
    unsigned n = 0;
    while ((inb(f, MSR) & 0xd0) == 0xd0) {
        g_assert_cmpuint(n, <, max);
        out[n++] = inb(f, FIFO);
    }
    return n;
}

static void sense_interrupt(struct fixture *f, uint8_t *st0, uint8_t *cylinder)
{
    uint8_t r[2];
    command(f, (const uint8_t[]){0x08}, 1);
    g_assert_cmpuint(results(f, r, 2), ==, 2);
    *st0 = r[0];
    *cylinder = r[1];
}

static void test_reset_and_info(struct fixture *f, gconstpointer data)
{
    (void)data;
    outb(f, DOR, 0x00);
    g_assert_cmphex(inb(f, MSR), ==, 0); /* held in reset */
    int before = f->raised;
    outb(f, DOR, 0x0c);
    g_assert_cmpint(f->raised, ==, before + 1);
    for (uint8_t drive = 0; drive < 4; drive++) {
        uint8_t st0, cyl;
        sense_interrupt(f, &st0, &cyl);
        g_assert_cmphex(st0, ==, 0xc0 | drive);
    }
    g_assert_false(f->level);

    uint8_t r[10];
    command(f, (const uint8_t[]){0x10}, 1); /* VERSION */
    g_assert_cmpuint(results(f, r, 10), ==, 1);
    g_assert_cmphex(r[0], ==, 0x90);

    command(f, (const uint8_t[]){0x03, 0xaf, 0x02}, 3); /* SPECIFY: no result phase */
    g_assert_cmphex(inb(f, MSR), ==, 0x80);
    command(f, (const uint8_t[]){0x13, 0x00, 0x57, 0x00}, 4); /* CONFIGURE */
    g_assert_cmphex(inb(f, MSR), ==, 0x80);
    command(f, (const uint8_t[]){0x94}, 1); /* LOCK */
    g_assert_cmpuint(results(f, r, 10), ==, 1);
    g_assert_cmphex(r[0], ==, 0x10);
    command(f, (const uint8_t[]){0x12, 0x80}, 2); /* PERPENDICULAR MODE */
    command(f, (const uint8_t[]){0x0e}, 1);       /* DUMPREG */
    g_assert_cmpuint(results(f, r, 10), ==, 10);
    g_assert_cmphex(r[4], ==, 0xaf);
    g_assert_cmphex(r[5], ==, 0x02);
    g_assert_cmphex(r[7] & 0x80, ==, 0x80);
    g_assert_cmphex(r[8], ==, 0x57);

    /* An unknown command answers ST0 = invalid. */
    command(f, (const uint8_t[]){0x1f}, 1);
    g_assert_cmpuint(results(f, r, 10), ==, 1);
    g_assert_cmphex(r[0], ==, 0x80);
}

static void test_seek_and_disk_change(struct fixture *f, gconstpointer data)
{
    (void)data;
    uint8_t st0, cyl;
    outb(f, DOR, 0x1c);                            /* drive 0, motor on */
    g_assert_cmphex(inb(f, DIR) & 0x80, ==, 0x80); /* a new disk */

    int before = f->raised;
    command(f, (const uint8_t[]){0x0f, 0x04, 5}, 3); /* SEEK head 1 to cylinder 5 */
    g_assert_cmpint(f->raised, ==, before + 1);
    sense_interrupt(f, &st0, &cyl);
    g_assert_cmphex(st0, ==, 0x24);
    g_assert_cmpuint(cyl, ==, 5);
    g_assert_false(f->level);
    g_assert_cmphex(inb(f, DIR) & 0x80, ==, 0); /* the step cleared it */

    command(f, (const uint8_t[]){0x07, 0x00}, 2); /* RECALIBRATE */
    sense_interrupt(f, &st0, &cyl);
    g_assert_cmphex(st0, ==, 0x20);
    g_assert_cmpuint(cyl, ==, 0);

    /* Nothing pending: invalid. */
    uint8_t r[2];
    command(f, (const uint8_t[]){0x08}, 1);
    g_assert_cmpuint(results(f, r, 2), ==, 1);
    g_assert_cmphex(r[0], ==, 0x80);

    command(f, (const uint8_t[]){0x04, 0x00}, 2); /* SENSE DRIVE STATUS */
    g_assert_cmpuint(results(f, r, 2), ==, 1);
    g_assert_cmphex(r[0] & 0x30, ==, 0x30); /* ready, track 0 */

    /* A disk change sets the line again. */
    GError *error = NULL;
    struct block_device *bd = block_open(f->path720, true, &error);
    g_assert_true(fdc_insert(f->fdc, 0, bd, &error));
    g_assert_cmphex(inb(f, DIR) & 0x80, ==, 0x80);
    g_assert_cmpuint(fdc_cmos_drive_type(f->fdc, 0), ==, 3);

    /* Sizes that match no format are refused. */
    g_autofree char *odd = make_image(f->dir, "odd.img", 1000000);
    bd = block_open(odd, true, &error);
    g_assert_false(fdc_insert(f->fdc, 1, bd, &error));
    g_assert_nonnull(error);
    g_clear_error(&error);
    block_close(bd);
    g_unlink(odd);
}

static void read_data_command(struct fixture *f, uint8_t opcode, uint8_t c, uint8_t h, uint8_t r,
                              uint8_t eot)
{
    command(f, (const uint8_t[]){opcode, (uint8_t)(h << 2), c, h, r, 2, eot, 0x1b, 0xff}, 9);
}

static void test_read_dma(struct fixture *f, gconstpointer data)
{
    (void)data;
    uint8_t r[7];
    outb(f, CCR, 0x00); /* 500 kbit/s: the 1.44 MiB rate */
    dma_program(&f->dma, 0x10000, 1024);
    int before = f->raised;
    /* Multi-track READ DATA from C1 H1 R17: sectors 17 and 18, terminal
     * count after two. */
    read_data_command(f, 0xe6, 1, 1, 17, 18);
    g_assert_true(f->dma.terminal_count);
    g_assert_cmpint(f->raised, ==, before + 1);
    g_assert_cmpuint(results(f, r, 7), ==, 7);
    g_assert_cmphex(r[0] & 0xc0, ==, 0); /* normal termination */
    g_assert_cmpuint(r[1], ==, 0);
    /* The next sector after the end of side 1 with MT: cylinder 2, head 0,
     * sector 1. */
    g_assert_cmpuint(r[3], ==, 2);
    g_assert_cmpuint(r[4], ==, 0);
    g_assert_cmpuint(r[5], ==, 1);
    uint64_t lba = (1 * 2 + 1) * 18 + 16;
    for (int i = 0; i < 1024; i++)
        g_assert_cmphex(f->ram[0x10000 + i], ==, pattern_byte(lba * 512 + (uint64_t)i));

    /* Across the heads with MT: C0 H0 R18 then C0 H1 R1. */
    dma_program(&f->dma, 0x20000, 1024);
    read_data_command(f, 0xe6, 0, 0, 18, 18);
    results(f, r, 7);
    for (int i = 0; i < 1024; i++)
        g_assert_cmphex(f->ram[0x20000 + i], ==, pattern_byte(17 * 512 + (uint64_t)i));

    /* The wrong data rate finds no address mark. */
    outb(f, CCR, 0x02);
    dma_program(&f->dma, 0x10000, 512);
    read_data_command(f, 0x66, 0, 0, 1, 18);
    g_assert_cmpuint(results(f, r, 7), ==, 7);
    g_assert_cmphex(r[0] & 0xc0, ==, 0x40);
    g_assert_cmphex(r[1], ==, 0x01);

    /* A sector past the track's end: no data. */
    outb(f, CCR, 0x00);
    read_data_command(f, 0x66, 0, 0, 19, 19);
    g_assert_cmpuint(results(f, r, 7), ==, 7);
    g_assert_cmphex(r[1], ==, 0x04);

    /* READ ID reports where the head is. */
    command(f, (const uint8_t[]){0x0f, 0x00, 7}, 3);
    uint8_t st0, cyl;
    sense_interrupt(f, &st0, &cyl);
    command(f, (const uint8_t[]){0x4a, 0x00}, 2);
    g_assert_cmpuint(results(f, r, 7), ==, 7);
    g_assert_cmphex(r[0] & 0xc0, ==, 0);
    g_assert_cmpuint(r[3], ==, 7);
    g_assert_cmpuint(r[6], ==, 2);
}

static void test_write_and_format_dma(struct fixture *f, gconstpointer data)
{
    (void)data;
    uint8_t r[7];
    outb(f, CCR, 0x00);
    for (int i = 0; i < 1024; i++)
        f->ram[0x30000 + i] = (uint8_t)(i * 3);
    dma_program(&f->dma, 0x30000, 1024);
    command(f, (const uint8_t[]){0x45, 0x00, 3, 0, 5, 2, 18, 0x1b, 0xff}, 9); /* WRITE DATA */
    g_assert_cmpuint(results(f, r, 7), ==, 7);
    g_assert_cmphex(r[0] & 0xc0, ==, 0);
    g_assert_cmpuint(r[5], ==, 7);

    /* FORMAT TRACK of cylinder 2, head 1: IDs from memory, 0xf6 fill. */
    command(f, (const uint8_t[]){0x0f, 0x04, 2}, 3);
    uint8_t st0, cyl;
    sense_interrupt(f, &st0, &cyl);
    for (int s = 0; s < 18; s++) {
        uint8_t *id = &f->ram[0x40000 + s * 4];
        id[0] = 2;
        id[1] = 1;
        id[2] = (uint8_t)(s + 1);
        id[3] = 2;
    }
    dma_program(&f->dma, 0x40000, 18 * 4);
    command(f, (const uint8_t[]){0x4d, 0x04, 2, 18, 0x54, 0xf6}, 6);
    g_assert_cmpuint(results(f, r, 7), ==, 7);
    g_assert_cmphex(r[0] & 0xc0, ==, 0);

    int fd = open(f->path144, O_RDONLY);
    uint8_t buf[1024];
    g_assert_cmpint(pread(fd, buf, 1024, (3 * 2 * 18 + 4) * 512), ==, 1024);
    for (int i = 0; i < 1024; i++)
        g_assert_cmphex(buf[i], ==, (uint8_t)(i * 3));
    uint8_t track[18 * 512];
    g_assert_cmpint(pread(fd, track, sizeof(track), (2 * 2 + 1) * 18 * 512), ==, sizeof(track));
    for (size_t i = 0; i < sizeof(track); i++)
        g_assert_cmphex(track[i], ==, 0xf6);
    /* Neighbouring tracks are untouched. */
    g_assert_cmpint(pread(fd, buf, 512, (2 * 2 + 0) * 18 * 512), ==, 512);
    g_assert_cmphex(buf[0], ==, pattern_byte((2 * 2 + 0) * 18 * 512));
    close(fd);
}

static void test_read_pio(struct fixture *f, gconstpointer data)
{
    (void)data;
    uint8_t r[7];
    GError *error = NULL;
    struct block_device *bd = block_open(f->path720, true, &error);
    g_assert_true(fdc_insert(f->fdc, 1, bd, &error));
    outb(f, CCR, 0x02);                                 /* 250 kbit/s: 720 KiB */
    command(f, (const uint8_t[]){0x03, 0xdf, 0x03}, 3); /* SPECIFY with ND: no DMA */
    int before = f->raised;
    command(f, (const uint8_t[]){0x46, 0x01, 4, 0, 8, 2, 9, 0x1b, 0xff}, 9); /* drive 1 */
    g_assert_cmpint(f->raised, ==, before + 1);
    uint8_t buf[1024];
    for (int i = 0; i < 1024; i++) {
        g_assert_cmphex(inb(f, MSR) & 0xe0, ==, 0xe0); /* RQM, DIO, non-DMA */
        buf[i] = inb(f, FIFO);
    }
    g_assert_cmpuint(results(f, r, 7), ==, 7);
    g_assert_cmphex(r[0], ==, 0x01);
    g_assert_cmpuint(r[3], ==, 5); /* after sector 9 of cylinder 4: cylinder 5 */
    uint64_t lba = 4 * 2 * 9 + 7;
    for (int i = 0; i < 1024; i++)
        g_assert_cmphex(buf[i], ==, pattern_byte(lba * 512 + (uint64_t)i));

    /* Writing to a read-only image. */
    command(f, (const uint8_t[]){0x45, 0x01, 0, 0, 1, 2, 9, 0x1b, 0xff}, 9);
    g_assert_cmpuint(results(f, r, 7), ==, 7);
    g_assert_cmphex(r[0] & 0xc0, ==, 0x40);
    g_assert_cmphex(r[1], ==, 0x02);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, struct fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/fdc/reset-and-info", test_reset_and_info);
    ADD("/fdc/seek-and-disk-change", test_seek_and_disk_change);
    ADD("/fdc/read-dma", test_read_dma);
    ADD("/fdc/write-and-format-dma", test_write_and_format_dma);
    ADD("/fdc/read-pio", test_read_pio);
    return g_test_run();
}
