/* Unit tests for the IDE controller, driven through its ports as a guest
 * driver would: ATA disks (IDENTIFY, PIO in LBA28, LBA48 and CHS, READ
 * MULTIPLE, bus-master DMA) and the ATAPI CD-ROM (packet protocol with
 * byte-count limits, media change). */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "block/block.h"
#include "devices/ide.h"
#include "irq.h"
#include "machine.h"

#define PRI        0x1f0
#define PRI_CTL    0x3f6
#define SEC        0x170
#define SEC_CTL    0x376
#define BMDMA_BASE 0xc000

#define ST_ERR  0x01
#define ST_DRQ  0x08
#define ST_DRDY 0x40
#define ST_BSY  0x80

struct fixture {
    struct machine *m;
    struct ide_controller *ide;
    struct irq_line irq[2];
    bool level[2];
    int raised[2];
    char *dir;
    char *disk_path;
    char *cd_path;
};

static void irq_cb(void *opaque, int n, bool level)
{
    struct fixture *f = opaque;
    if (level && !f->level[n])
        f->raised[n]++;
    f->level[n] = level;
}

static struct machine *test_machine_new(void)
{
    struct machine *m = g_new0(struct machine, 1);
    m->devices = g_array_new(FALSE, TRUE, sizeof(struct machine_device));
    ioport_bus_init(&m->io);
    g_assert_true(memory_init(&m->mem, 16 << 20));
    m->ram_region = (struct memory_region){
        .name = "ram", .base = 0, .size = 16 << 20, .enabled = true, .host = m->mem.ram};
    memory_add_region(&m->mem, &m->ram_region);
    return m;
}

static void test_machine_free(struct machine *m)
{
    memory_destroy(&m->mem);
    g_array_free(m->devices, TRUE);
    g_free(m);
}

static uint8_t pattern_byte(uint64_t offset)
{
    return (uint8_t)((offset * 7 + (offset >> 9) * 13) ^ (offset >> 17));
}

static void fixture_setup(struct fixture *f, gconstpointer data)
{
    (void)data;
    f->dir = g_dir_make_tmp("vivarium-ide-XXXXXX", NULL);
    f->m = test_machine_new();
    for (int i = 0; i < 2; i++)
        f->irq[i] = (struct irq_line){.handler = irq_cb, .opaque = f, .n = i};
    f->ide = ide_create(f->m, &f->irq[0], &f->irq[1]);

    /* A sparse 200 GiB disk: LBA48 territory. */
    f->disk_path = g_build_filename(f->dir, "disk.img", NULL);
    int fd = open(f->disk_path, O_RDWR | O_CREAT, 0644);
    g_assert_cmpint(ftruncate(fd, 200ll << 30), ==, 0);
    uint8_t sector[512];
    for (uint64_t lba = 1000; lba < 1010; lba++) {
        for (int i = 0; i < 512; i++)
            sector[i] = pattern_byte(lba * 512 + i);
        g_assert_cmpint(pwrite(fd, sector, 512, (off_t)(lba * 512)), ==, 512);
    }
    close(fd);

    /* An ISO-like file of 100 2048-byte sectors. */
    f->cd_path = g_build_filename(f->dir, "disc.iso", NULL);
    g_autofree uint8_t *iso = g_malloc(100 * 2048);
    for (int i = 0; i < 100 * 2048; i++)
        iso[i] = pattern_byte((uint64_t)i + 12345);
    g_assert_true(g_file_set_contents(f->cd_path, (char *)iso, 100 * 2048, NULL));

    GError *error = NULL;
    struct block_device *disk = block_open(f->disk_path, false, &error);
    g_assert_no_error(error);
    g_assert_true(ide_attach_drive(f->ide, 0, IDE_DISK, disk));
    struct block_device *cd = block_open(f->cd_path, true, &error);
    g_assert_no_error(error);
    g_assert_true(ide_attach_drive(f->ide, 2, IDE_CDROM, cd));
    /* Units are taken once. */
    g_assert_false(ide_attach_drive(f->ide, 2, IDE_CDROM, NULL));
    ide_bmdma_set_base(f->ide, BMDMA_BASE);
}

static void fixture_teardown(struct fixture *f, gconstpointer data)
{
    (void)data;
    ide_destroy(f->ide);
    test_machine_free(f->m);
    g_unlink(f->disk_path);
    g_unlink(f->cd_path);
    g_rmdir(f->dir);
    g_free(f->disk_path);
    g_free(f->cd_path);
    g_free(f->dir);
}

static uint8_t inb(struct fixture *f, uint16_t port)
{
    return (uint8_t)ioport_read(&f->m->io, port, 1);
}

static uint16_t inw(struct fixture *f, uint16_t port)
{
    return (uint16_t)ioport_read(&f->m->io, port, 2);
}

static void outb(struct fixture *f, uint16_t port, uint8_t v)
{
    ioport_write(&f->m->io, port, 1, v);
}

static void outw(struct fixture *f, uint16_t port, uint16_t v)
{
    ioport_write(&f->m->io, port, 2, v);
}

static void outl(struct fixture *f, uint16_t port, uint32_t v)
{
    ioport_write(&f->m->io, port, 4, v);
}

static void read_words(struct fixture *f, uint16_t base, uint8_t *buf, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i += 2) {
        uint16_t w = inw(f, base);
        buf[i] = (uint8_t)w;
        buf[i + 1] = (uint8_t)(w >> 8);
    }
}

static void set_lba28(struct fixture *f, uint16_t base, uint8_t dev, uint32_t lba, uint8_t count)
{
    outb(f, base + 6, (uint8_t)(0xe0 | dev << 4 | (lba >> 24 & 0xf)));
    outb(f, base + 2, count);
    outb(f, base + 3, (uint8_t)lba);
    outb(f, base + 4, (uint8_t)(lba >> 8));
    outb(f, base + 5, (uint8_t)(lba >> 16));
}

static void set_lba48(struct fixture *f, uint16_t base, uint64_t lba, uint16_t count)
{
    outb(f, base + 6, 0x40);
    outb(f, base + 2, (uint8_t)(count >> 8));
    outb(f, base + 3, (uint8_t)(lba >> 24));
    outb(f, base + 4, (uint8_t)(lba >> 32));
    outb(f, base + 5, (uint8_t)(lba >> 40));
    outb(f, base + 2, (uint8_t)count);
    outb(f, base + 3, (uint8_t)lba);
    outb(f, base + 4, (uint8_t)(lba >> 8));
    outb(f, base + 5, (uint8_t)(lba >> 16));
}

static void test_identify(struct fixture *f, gconstpointer data)
{
    (void)data;
    outb(f, PRI + 6, 0xa0);
    outb(f, PRI + 7, 0xec);
    g_assert_cmpint(f->raised[0], ==, 1);
    g_assert_true(f->level[0]);
    uint8_t st = inb(f, PRI + 7);
    g_assert_cmphex(st & (ST_BSY | ST_DRDY | ST_DRQ | ST_ERR), ==, ST_DRDY | ST_DRQ);
    g_assert_false(f->level[0]); /* acknowledged by reading the status */

    uint16_t w[256];
    for (int i = 0; i < 256; i++)
        w[i] = inw(f, PRI);
    g_assert_cmphex(inb(f, PRI + 7) & ST_DRQ, ==, 0);

    uint64_t total = (200ull << 30) / 512;
    g_assert_cmphex(w[0], ==, 0x0040);
    g_assert_cmpuint(w[1], ==, 16383); /* capped for a big disk */
    g_assert_cmpuint(w[3], ==, 16);
    g_assert_cmpuint(w[6], ==, 63);
    g_assert_cmpuint(w[49] & 0x0300, ==, 0x0300); /* LBA and DMA */
    g_assert_cmpuint((uint32_t)w[60] | (uint32_t)w[61] << 16, ==, 0x0fffffff);
    g_assert_cmpuint(w[83] & (1 << 10), !=, 0); /* LBA48 */
    g_assert_cmpuint(w[86] & (1 << 10), !=, 0);
    uint64_t lba48 =
        (uint64_t)w[100] | (uint64_t)w[101] << 16 | (uint64_t)w[102] << 32 | (uint64_t)w[103] << 48;
    g_assert_cmpuint(lba48, ==, total);
    char model[41];
    for (int i = 0; i < 20; i++) {
        model[i * 2] = (char)(w[27 + i] >> 8);
        model[i * 2 + 1] = (char)w[27 + i];
    }
    model[40] = 0;
    g_assert_true(g_str_has_prefix(model, "Vivarium HARDDISK "));

    /* The absent slave: status reads 0 and commands are ignored. */
    outb(f, PRI + 6, 0xb0);
    g_assert_cmphex(inb(f, PRI + 7), ==, 0);
    /* A channel without drives floats. The third channel? There are two:
     * here the secondary has only a master, the primary only a master. */
}

static void test_pio_lba28(struct fixture *f, gconstpointer data)
{
    (void)data;
    uint8_t buf[1024];
    set_lba28(f, PRI, 0, 1000, 2);
    outb(f, PRI + 7, 0x20); /* READ SECTORS */
    g_assert_cmpint(f->raised[0], ==, 1);
    g_assert_cmphex(inb(f, PRI + 7) & ST_DRQ, ==, ST_DRQ);
    read_words(f, PRI, buf, 512);
    /* Second block: another interrupt. */
    g_assert_cmpint(f->raised[0], ==, 2);
    read_words(f, PRI, buf + 512, 512);
    g_assert_cmpint(f->raised[0], ==, 2); /* none after the last block */
    g_assert_cmphex(inb(f, PRI + 7), ==, ST_DRDY | 0x10);
    for (int i = 0; i < 1024; i++)
        g_assert_cmphex(buf[i], ==, pattern_byte(1000 * 512 + (uint64_t)i));
    /* The task file holds the last sector read. */
    g_assert_cmphex(inb(f, PRI + 3), ==, (1001 & 0xff));

    /* WRITE SECTORS: the first block needs no interrupt. */
    set_lba28(f, PRI, 0, 5000, 3);
    outb(f, PRI + 7, 0x30);
    g_assert_cmphex(inb(f, PRI + 7) & ST_DRQ, ==, ST_DRQ);
    int before = f->raised[0];
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < 512; i += 4) /* 32-bit PIO */
            outl(f, PRI, 0x01020304u * (uint32_t)(s + 1) + (uint32_t)i);
        g_assert_cmpint(f->raised[0], ==, before + s + 1);
        inb(f, PRI + 7); /* acknowledge, so the next block's interrupt is an edge */
    }
    g_assert_cmphex(inb(f, PRI + 7), ==, ST_DRDY | 0x10);
    outb(f, PRI + 7, 0xe7); /* FLUSH CACHE */
    g_assert_cmphex(inb(f, PRI + 7) & ST_ERR, ==, 0);

    int fd = open(f->disk_path, O_RDONLY);
    uint8_t sector[512];
    for (int s = 0; s < 3; s++) {
        g_assert_cmpint(pread(fd, sector, 512, (5000 + s) * 512), ==, 512);
        for (int i = 0; i < 512; i += 4) {
            uint32_t v = 0x01020304u * (uint32_t)(s + 1) + (uint32_t)i;
            uint32_t got;
            memcpy(&got, sector + i, 4);
            g_assert_cmphex(got, ==, v);
        }
    }
    close(fd);

    /* Beyond the end of the disk is refused with IDNF. */
    set_lba48(f, PRI, (200ull << 30) / 512 - 1, 2);
    outb(f, PRI + 7, 0x24);
    uint8_t st = inb(f, PRI + 7);
    g_assert_cmphex(st & (ST_ERR | ST_DRQ), ==, ST_ERR);
}

static void test_pio_lba48(struct fixture *f, gconstpointer data)
{
    (void)data;
    const uint64_t lba = 0x12345678; /* above the 28-bit limit */
    uint8_t out[1024], in[1024];
    for (int i = 0; i < 1024; i++)
        out[i] = (uint8_t)(i * 31 + 7);
    set_lba48(f, PRI, lba, 2);
    outb(f, PRI + 7, 0x34); /* WRITE SECTORS EXT */
    for (int i = 0; i < 1024; i += 2)
        outw(f, PRI, (uint16_t)(out[i] | out[i + 1] << 8));
    g_assert_cmphex(inb(f, PRI + 7) & (ST_ERR | ST_DRQ), ==, 0);

    /* The high-order bytes read back with HOB set. */
    outb(f, PRI_CTL, 0x80);
    g_assert_cmphex(inb(f, PRI + 3), ==, (uint8_t)((lba + 1) >> 24));
    outb(f, PRI_CTL, 0x00);
    g_assert_cmphex(inb(f, PRI + 3), ==, (uint8_t)(lba + 1));

    set_lba48(f, PRI, lba, 2);
    outb(f, PRI + 7, 0x24); /* READ SECTORS EXT */
    read_words(f, PRI, in, 1024);
    g_assert_cmpmem(in, 1024, out, 1024);

    int fd = open(f->disk_path, O_RDONLY);
    g_assert_cmpint(pread(fd, in, 1024, (off_t)(lba * 512)), ==, 1024);
    close(fd);
    g_assert_cmpmem(in, 1024, out, 1024);
}

static void test_chs_and_multiple(struct fixture *f, gconstpointer data)
{
    (void)data;
    /* INITIALIZE DEVICE PARAMETERS: 8 heads, 32 sectors per track. */
    outb(f, PRI + 6, 0xa0 | 7);
    outb(f, PRI + 2, 32);
    outb(f, PRI + 7, 0x91);
    g_assert_cmphex(inb(f, PRI + 7) & ST_ERR, ==, 0);
    /* LBA 1000 = cylinder 3, head 7, sector 9 (1000 = (3*8+7)*32+8). */
    outb(f, PRI + 6, 0xa0 | 7);
    outb(f, PRI + 2, 1);
    outb(f, PRI + 3, 9);
    outb(f, PRI + 4, 3);
    outb(f, PRI + 5, 0);
    outb(f, PRI + 7, 0x20);
    uint8_t buf[512 * 8];
    read_words(f, PRI, buf, 512);
    for (int i = 0; i < 512; i++)
        g_assert_cmphex(buf[i], ==, pattern_byte(1000 * 512 + (uint64_t)i));

    /* READ MULTIPLE without SET MULTIPLE MODE aborts. */
    set_lba28(f, PRI, 0, 1000, 8);
    outb(f, PRI + 7, 0xc4);
    g_assert_cmphex(inb(f, PRI + 7) & ST_ERR, ==, ST_ERR);
    g_assert_cmphex(inb(f, PRI + 1), ==, 0x04);

    outb(f, PRI + 2, 4);
    outb(f, PRI + 7, 0xc6); /* SET MULTIPLE MODE: 4 sectors per block */
    g_assert_cmphex(inb(f, PRI + 7) & ST_ERR, ==, 0);
    set_lba28(f, PRI, 0, 1000, 8);
    int before = f->raised[0];
    outb(f, PRI + 7, 0xc4);
    inb(f, PRI + 7);
    read_words(f, PRI, buf, 2048);
    g_assert_cmpint(f->raised[0], ==, before + 2); /* one per 4-sector block */
    read_words(f, PRI, buf + 2048, 2048);
    for (int i = 0; i < 4096; i++)
        g_assert_cmphex(buf[i], ==, pattern_byte(1000 * 512 + (uint64_t)i));
    g_assert_cmphex(inb(f, PRI + 7) & ST_DRQ, ==, 0);
}

static void test_soft_reset(struct fixture *f, gconstpointer data)
{
    (void)data;
    outb(f, SEC_CTL, 0x04); /* SRST */
    g_assert_cmphex(inb(f, SEC_CTL) & ST_BSY, ==, ST_BSY);
    outb(f, SEC_CTL, 0x00);
    /* The CD-ROM's signature, and no DRDY for a packet device. */
    g_assert_cmphex(inb(f, SEC + 2), ==, 0x01);
    g_assert_cmphex(inb(f, SEC + 3), ==, 0x01);
    g_assert_cmphex(inb(f, SEC + 4), ==, 0x14);
    g_assert_cmphex(inb(f, SEC + 5), ==, 0xeb);
    g_assert_cmphex(inb(f, SEC + 7), ==, 0x00);
    g_assert_cmphex(inb(f, SEC + 1), ==, 0x01);

    outb(f, PRI_CTL, 0x04);
    outb(f, PRI_CTL, 0x00);
    g_assert_cmphex(inb(f, PRI + 4), ==, 0x00);
    g_assert_cmphex(inb(f, PRI + 5), ==, 0x00);
    g_assert_cmphex(inb(f, PRI + 7) & ST_DRDY, ==, ST_DRDY);

    /* nIEN masks the interrupt line. */
    outb(f, PRI_CTL, 0x02);
    int before = f->raised[0];
    outb(f, PRI + 6, 0xa0);
    outb(f, PRI + 7, 0xe5); /* CHECK POWER MODE */
    g_assert_cmpint(f->raised[0], ==, before);
    outb(f, PRI_CTL, 0x00); /* pending interrupt shows once unmasked */
    g_assert_cmpint(f->raised[0], ==, before + 1);
}

/* Sends a 12-byte packet to the secondary master with a byte count limit. */
static void send_packet(struct fixture *f, const uint8_t *packet, uint16_t limit, bool dma)
{
    outb(f, SEC + 6, 0xa0);
    outb(f, SEC + 1, dma ? 1 : 0);
    outb(f, SEC + 4, (uint8_t)limit);
    outb(f, SEC + 5, (uint8_t)(limit >> 8));
    outb(f, SEC + 7, 0xa0);
    g_assert_cmphex(inb(f, SEC + 7) & ST_DRQ, ==, ST_DRQ);
    g_assert_cmphex(inb(f, SEC + 2) & 3, ==, 1); /* C/D: waiting for the command */
    for (int i = 0; i < 12; i += 2)
        outw(f, SEC, (uint16_t)(packet[i] | packet[i + 1] << 8));
}

/* Reads a PIO data-in phase following the byte count of each DRQ block;
 * returns the bytes read and the number of blocks. */
static unsigned read_atapi_data(struct fixture *f, uint8_t *buf, unsigned max, unsigned *blocks)
{
    unsigned total = 0;
    *blocks = 0;
    for (;;) {
        uint8_t st = inb(f, SEC + 7);
        if (!(st & ST_DRQ))
            break;
        g_assert_cmphex(inb(f, SEC + 2) & 3, ==, 2); /* I/O: data to the host */
        unsigned count = inb(f, SEC + 4) | inb(f, SEC + 5) << 8;
        g_assert_cmpuint(total + count, <=, max);
        read_words(f, SEC, buf + total, count);
        total += count;
        (*blocks)++;
    }
    return total;
}

static void atapi_expect_ok(struct fixture *f)
{
    uint8_t st = inb(f, SEC + 7);
    g_assert_cmphex(st & (ST_ERR | ST_DRQ | ST_BSY), ==, 0);
    g_assert_cmphex(inb(f, SEC + 2) & 3, ==, 3);
}

static void test_atapi(struct fixture *f, gconstpointer data)
{
    (void)data;
    /* IDENTIFY DEVICE aborts and leaves the packet signature. */
    outb(f, SEC + 6, 0xa0);
    outb(f, SEC + 7, 0xec);
    g_assert_cmphex(inb(f, SEC + 7) & ST_ERR, ==, ST_ERR);
    g_assert_cmphex(inb(f, SEC + 4), ==, 0x14);
    g_assert_cmphex(inb(f, SEC + 5), ==, 0xeb);

    outb(f, SEC + 7, 0xa1); /* IDENTIFY PACKET DEVICE */
    uint16_t w[256];
    for (int i = 0; i < 256; i++)
        w[i] = inw(f, SEC);
    g_assert_cmphex(w[0], ==, 0x85c0);

    uint8_t buf[16384];
    unsigned blocks;
    const uint8_t inquiry[12] = {0x12, 0, 0, 0, 36, 0};
    send_packet(f, inquiry, 0xfffe, false);
    g_assert_cmpuint(read_atapi_data(f, buf, sizeof(buf), &blocks), ==, 36);
    atapi_expect_ok(f);
    g_assert_cmphex(buf[0], ==, 0x05);
    g_assert_cmphex(buf[1], ==, 0x80);
    g_assert_cmpmem(buf + 8, 8, "VIVARIUM", 8);

    const uint8_t capacity[12] = {0x25};
    send_packet(f, capacity, 0xfffe, false);
    g_assert_cmpuint(read_atapi_data(f, buf, sizeof(buf), &blocks), ==, 8);
    g_assert_cmpuint((uint32_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3], ==, 99);
    g_assert_cmpuint((uint32_t)buf[4] << 24 | buf[5] << 16 | buf[6] << 8 | buf[7], ==, 2048);

    /* READ(10) of 3 sectors from LBA 10 with a 2048-byte limit: one DRQ
     * block per sector. */
    const uint8_t read10[12] = {0x28, 0, 0, 0, 0, 10, 0, 0, 3};
    send_packet(f, read10, 2048, false);
    g_assert_cmpuint(read_atapi_data(f, buf, sizeof(buf), &blocks), ==, 3 * 2048);
    g_assert_cmpuint(blocks, ==, 3);
    atapi_expect_ok(f);
    for (int i = 0; i < 3 * 2048; i++)
        g_assert_cmphex(buf[i], ==, pattern_byte(10 * 2048 + (uint64_t)i + 12345));

    /* A limit smaller than a sector splits sectors across blocks. */
    send_packet(f, read10, 1000, false);
    g_assert_cmpuint(read_atapi_data(f, buf, sizeof(buf), &blocks), ==, 3 * 2048);
    g_assert_cmpuint(blocks, >=, 7);
    for (int i = 0; i < 3 * 2048; i++)
        g_assert_cmphex(buf[i], ==, pattern_byte(10 * 2048 + (uint64_t)i + 12345));

    /* Reading past the end: ILLEGAL REQUEST, then REQUEST SENSE. */
    const uint8_t read_past[12] = {0x28, 0, 0, 0, 0, 98, 0, 0, 5};
    send_packet(f, read_past, 0xfffe, false);
    g_assert_cmphex(inb(f, SEC + 7) & ST_ERR, ==, ST_ERR);
    g_assert_cmphex(inb(f, SEC + 1) >> 4, ==, 0x05);
    const uint8_t sense[12] = {0x03, 0, 0, 0, 18};
    send_packet(f, sense, 0xfffe, false);
    g_assert_cmpuint(read_atapi_data(f, buf, sizeof(buf), &blocks), ==, 18);
    g_assert_cmphex(buf[2], ==, 0x05);
    g_assert_cmphex(buf[12], ==, 0x21);

    /* READ TOC format 0: track 1 and the lead-out at LBA 100. */
    const uint8_t toc[12] = {0x43, 0, 0, 0, 0, 0, 0, 0, 100};
    send_packet(f, toc, 0xfffe, false);
    g_assert_cmpuint(read_atapi_data(f, buf, sizeof(buf), &blocks), ==, 20);
    g_assert_cmphex(buf[6], ==, 1);
    g_assert_cmphex(buf[14], ==, 0xaa);
    g_assert_cmpuint((uint32_t)buf[16] << 24 | buf[17] << 16 | buf[18] << 8 | buf[19], ==, 100);

    /* MODE SENSE(10) of the capabilities page. */
    const uint8_t mode_sense[12] = {0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 28};
    send_packet(f, mode_sense, 0xfffe, false);
    g_assert_cmpuint(read_atapi_data(f, buf, sizeof(buf), &blocks), ==, 28);
    g_assert_cmphex(buf[8], ==, 0x2a);
    g_assert_cmphex(buf[9], ==, 0x12);
}

static void test_atapi_media_change(struct fixture *f, gconstpointer data)
{
    (void)data;
    uint8_t buf[64];
    unsigned blocks;
    const uint8_t tur[12] = {0x00};
    const uint8_t sense[12] = {0x03, 0, 0, 0, 18};
    const uint8_t events[12] = {0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8};
    const uint8_t lock[12] = {0x1e, 0, 0, 0, 1};
    const uint8_t eject[12] = {0x1b, 0, 0, 0, 2};

    /* The disc present at power-on is reported once as new media. */
    send_packet(f, events, 0xfffe, false);
    read_atapi_data(f, buf, sizeof(buf), &blocks);
    g_assert_cmphex(buf[4], ==, 2);
    send_packet(f, tur, 0xfffe, false);
    atapi_expect_ok(f);

    /* The guest locks the tray: a change is refused unless forced. */
    send_packet(f, lock, 0xfffe, false);
    atapi_expect_ok(f);
    GError *error = NULL;
    struct block_device *other = block_open(f->cd_path, true, &error);
    g_assert_no_error(error);
    g_assert_false(ide_change_media(f->ide, 2, other, false));
    send_packet(f, eject, 0xfffe, false);
    g_assert_cmphex(inb(f, SEC + 7) & ST_ERR, ==, ST_ERR);
    g_assert_true(ide_change_media(f->ide, 2, other, true));

    /* Unit attention once, with its sense, then ready again. */
    send_packet(f, tur, 0xfffe, false);
    g_assert_cmphex(inb(f, SEC + 7) & ST_ERR, ==, ST_ERR);
    g_assert_cmphex(inb(f, SEC + 1) >> 4, ==, 0x06);
    send_packet(f, sense, 0xfffe, false);
    read_atapi_data(f, buf, sizeof(buf), &blocks);
    g_assert_cmphex(buf[2], ==, 0x06);
    g_assert_cmphex(buf[12], ==, 0x28);
    send_packet(f, tur, 0xfffe, false);
    atapi_expect_ok(f);
    send_packet(f, events, 0xfffe, false);
    read_atapi_data(f, buf, sizeof(buf), &blocks);
    g_assert_cmphex(buf[4], ==, 2);
    g_assert_cmphex(buf[5], ==, 2);

    /* Ejected by the engine: no medium. */
    g_assert_true(ide_change_media(f->ide, 2, NULL, true));
    send_packet(f, tur, 0xfffe, false); /* the attention first */
    send_packet(f, tur, 0xfffe, false);
    g_assert_cmphex(inb(f, SEC + 1) >> 4, ==, 0x02);
    send_packet(f, sense, 0xfffe, false);
    read_atapi_data(f, buf, sizeof(buf), &blocks);
    g_assert_cmphex(buf[12], ==, 0x3a);
}

static void write_prd(struct fixture *f, uint32_t table, unsigned index, uint32_t addr,
                      uint32_t count, bool last)
{
    memory_write(&f->m->mem, table + index * 8, 4, addr);
    memory_write(&f->m->mem, table + index * 8 + 4, 4, (count & 0xffff) | (last ? 1u << 31 : 0));
}

static void test_bus_master_dma(struct fixture *f, gconstpointer data)
{
    (void)data;
    const uint32_t table = 0x1000;
    write_prd(f, table, 0, 0x20000, 512, false);
    write_prd(f, table, 1, 0x30000, 1024, true);
    outl(f, BMDMA_BASE + 4, table);
    g_assert_cmphex(ioport_read(&f->m->io, BMDMA_BASE + 4, 4), ==, table);

    /* READ DMA of 3 sectors into two regions; the engine starts after the
     * command, as Linux does it. */
    set_lba28(f, PRI, 0, 1000, 3);
    outb(f, PRI + 7, 0xc8);
    int before = f->raised[0];
    outb(f, BMDMA_BASE, 0x09); /* start, to memory */
    g_assert_cmpint(f->raised[0], ==, before + 1);
    uint8_t bm_status = inb(f, BMDMA_BASE + 2);
    g_assert_cmphex(bm_status & 0x07, ==, 0x04); /* interrupt, not active, no error */
    g_assert_cmphex(inb(f, PRI + 7) & (ST_ERR | ST_DRQ), ==, 0);
    outb(f, BMDMA_BASE + 2, 0x04); /* acknowledge */
    g_assert_cmphex(inb(f, BMDMA_BASE + 2) & 0x04, ==, 0);
    outb(f, BMDMA_BASE, 0x00);
    uint8_t *ram = f->m->mem.ram;
    for (int i = 0; i < 512; i++)
        g_assert_cmphex(ram[0x20000 + i], ==, pattern_byte(1000 * 512 + (uint64_t)i));
    for (int i = 0; i < 1024; i++)
        g_assert_cmphex(ram[0x30000 + i], ==, pattern_byte(1001 * 512 + (uint64_t)i));

    /* WRITE DMA with the engine started first. */
    for (int i = 0; i < 1536; i++)
        ram[(i < 512 ? 0x20000 + i : 0x30000 + i - 512)] = (uint8_t)(i ^ 0x5a);
    outb(f, BMDMA_BASE, 0x01); /* start, from memory */
    set_lba28(f, PRI, 0, 7000, 3);
    outb(f, PRI + 7, 0xca);
    g_assert_cmphex(inb(f, BMDMA_BASE + 2) & 0x07, ==, 0x04);
    outb(f, BMDMA_BASE, 0x00);
    int fd = open(f->disk_path, O_RDONLY);
    uint8_t disk[1536];
    g_assert_cmpint(pread(fd, disk, sizeof(disk), 7000 * 512), ==, sizeof(disk));
    close(fd);
    for (int i = 0; i < 1536; i++)
        g_assert_cmphex(disk[i], ==, (uint8_t)(i ^ 0x5a));

    /* A PRD table shorter than the transfer: error. */
    write_prd(f, table, 0, 0x20000, 512, true);
    set_lba28(f, PRI, 0, 1000, 3);
    outb(f, PRI + 7, 0xc8);
    outb(f, BMDMA_BASE + 2, 0x06);
    outb(f, BMDMA_BASE, 0x09);
    g_assert_cmphex(inb(f, BMDMA_BASE + 2) & 0x02, ==, 0x02);
    g_assert_cmphex(inb(f, PRI + 7) & ST_ERR, ==, ST_ERR);
    outb(f, BMDMA_BASE, 0x00);

    /* ATAPI READ(10) by DMA on the secondary channel (registers at +8). */
    write_prd(f, table, 0, 0x40000, 4096, true);
    outl(f, BMDMA_BASE + 8 + 4, table);
    const uint8_t read10[12] = {0x28, 0, 0, 0, 0, 20, 0, 0, 2};
    send_packet(f, read10, 0xfffe, true);
    outb(f, BMDMA_BASE + 8, 0x09);
    atapi_expect_ok(f);
    g_assert_cmphex(inb(f, BMDMA_BASE + 8 + 2) & 0x07, ==, 0x04);
    for (int i = 0; i < 4096; i++)
        g_assert_cmphex(ram[0x40000 + i], ==, pattern_byte(20 * 2048 + (uint64_t)i + 12345));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, struct fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/ide/identify", test_identify);
    ADD("/ide/pio-lba28", test_pio_lba28);
    ADD("/ide/pio-lba48", test_pio_lba48);
    ADD("/ide/chs-and-multiple", test_chs_and_multiple);
    ADD("/ide/soft-reset", test_soft_reset);
    ADD("/ide/atapi", test_atapi);
    ADD("/ide/atapi-media-change", test_atapi_media_change);
    ADD("/ide/bus-master-dma", test_bus_master_dma);
    return g_test_run();
}
