/* Unit tests for fw_cfg, driven through its ports as SeaBIOS drives it. */
#include <glib.h>
#include <string.h>

#include "devices/fw_cfg.h"
#include "ioport.h"
#include "memory.h"

#define RAM_SIZE (1u << 20)

struct fixture {
    struct ioport_bus *io;
    struct memory mem;
    struct memory_region ram;
    struct fw_cfg *fw;
};

static void fixture_init(struct fixture *f)
{
    f->io = g_new0(struct ioport_bus, 1);
    ioport_bus_init(f->io);
    g_assert_true(memory_init(&f->mem, RAM_SIZE));
    f->ram = (struct memory_region){
        .name = "ram", .base = 0, .size = RAM_SIZE, .enabled = true, .host = f->mem.ram};
    memory_add_region(&f->mem, &f->ram);
    f->fw = fw_cfg_create(f->io, &f->mem);
}

static void fixture_destroy(struct fixture *f)
{
    fw_cfg_destroy(f->fw);
    memory_destroy(&f->mem);
    g_free(f->io);
}

static void read_item(struct fixture *f, uint16_t key, void *buf, size_t len)
{
    ioport_write(f->io, 0x510, 2, key);
    uint8_t *out = buf;
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)ioport_read(f->io, 0x511, 1);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Builds a DMA descriptor at desc and starts it the way SeaBIOS does: only
 * the low half of the address, as a big-endian dword. Returns the control
 * word the device stored back. */
static uint32_t dma(struct fixture *f, uint32_t desc, uint32_t control, uint32_t length,
                    uint32_t address)
{
    uint8_t d[16] = {0};
    put_be32(d, control);
    put_be32(d + 4, length);
    put_be32(d + 12, address);
    memory_write_buf(&f->mem, desc, d, sizeof(d));
    ioport_write(f->io, 0x518, 4, GUINT32_SWAP_LE_BE(desc));
    uint8_t back[4];
    memory_read_buf(&f->mem, desc, back, 4);
    return be32(back);
}

/* Finds a file's key and size in the directory. */
static bool find_file(struct fixture *f, const char *name, uint16_t *key, uint32_t *size)
{
    uint8_t count[4];
    read_item(f, FW_CFG_FILE_DIR, count, 4);
    for (uint32_t i = 0; i < be32(count); i++) {
        uint8_t e[64];
        for (int j = 0; j < 64; j++)
            e[j] = (uint8_t)ioport_read(f->io, 0x511, 1);
        if (strncmp((const char *)e + 8, name, 56) == 0) {
            *size = be32(e);
            *key = (uint16_t)(e[4] << 8 | e[5]);
            return true;
        }
    }
    return false;
}

static void test_signature_and_id(void)
{
    struct fixture f;
    fixture_init(&f);
    char sig[5] = {0};
    read_item(&f, FW_CFG_SIGNATURE, sig, 4);
    g_assert_cmpstr(sig, ==, "QEMU");
    /* Past the end, and for a key with no item, the data port reads 0. */
    g_assert_cmphex(ioport_read(f.io, 0x511, 1), ==, 0);
    uint8_t id[4];
    read_item(&f, FW_CFG_ID, id, 4);
    g_assert_cmphex(id[0] & FW_CFG_ID_DMA, !=, 0);
    uint8_t none[2] = {0xaa, 0xaa};
    read_item(&f, 0x7f, none, 2);
    g_assert_cmphex(none[0] | none[1], ==, 0);
    /* Reselecting rewinds. */
    read_item(&f, FW_CFG_SIGNATURE, sig, 2);
    g_assert_cmpint(sig[0], ==, 'Q');
    /* The DMA ports read as "QEMU CFG". */
    g_assert_cmphex(ioport_read(f.io, 0x514, 4), ==, 0x554d4551); /* "QEMU" */
    g_assert_cmphex(ioport_read(f.io, 0x518, 4), ==, 0x47464320); /* " CFG" */
    fixture_destroy(&f);
}

static void test_numbered_items(void)
{
    struct fixture f;
    fixture_init(&f);
    fw_cfg_add_u64(f.fw, FW_CFG_RAM_SIZE, 0x12345678abcdull);
    fw_cfg_add_u16(f.fw, FW_CFG_NB_CPUS, 3);
    fw_cfg_add_u32(f.fw, FW_CFG_E820_TABLE + 0x10, 0xdeadbeef); /* an arch-local key */
    uint8_t ram[8];
    read_item(&f, FW_CFG_RAM_SIZE, ram, 8);
    g_assert_cmphex(ram[0], ==, 0xcd);
    g_assert_cmphex(ram[5], ==, 0x12);
    /* Wide data port reads return consecutive bytes. */
    ioport_write(f.io, 0x510, 2, FW_CFG_NB_CPUS);
    g_assert_cmphex(ioport_read(f.io, 0x511, 2), ==, 3);
    /* The arch-local key space is separate from the generic one. */
    uint8_t v[4];
    read_item(&f, FW_CFG_E820_TABLE + 0x10, v, 4);
    g_assert_cmphex(v[0], ==, 0xef);
    read_item(&f, 0x13, v, 4);
    g_assert_cmphex(v[0], ==, 0);
    fixture_destroy(&f);
}

static void test_file_directory(void)
{
    struct fixture f;
    fixture_init(&f);
    g_assert_cmpint(fw_cfg_add_file(f.fw, "zzz/last", "z", 1), >=, FW_CFG_FILE_FIRST);
    int key = fw_cfg_add_file(f.fw, "etc/test", "hello", 5);
    g_assert_cmpint(key, >=, FW_CFG_FILE_FIRST);
    char long_name[80];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[79] = 0;
    g_assert_cmpint(fw_cfg_add_file(f.fw, long_name, "", 0), ==, -1);

    uint8_t count[4];
    read_item(&f, FW_CFG_FILE_DIR, count, 4);
    g_assert_cmpuint(be32(count), ==, 2);
    /* Sorted by name: etc/test comes first. */
    uint8_t e[64];
    for (int j = 0; j < 64; j++)
        e[j] = (uint8_t)ioport_read(f.io, 0x511, 1);
    g_assert_cmpstr((const char *)e + 8, ==, "etc/test");
    g_assert_cmpuint(be32(e), ==, 5);
    g_assert_cmpuint((unsigned)(e[4] << 8 | e[5]), ==, (unsigned)key);

    char data[6] = {0};
    read_item(&f, (uint16_t)key, data, 5);
    g_assert_cmpstr(data, ==, "hello");

    /* Replacing keeps the key and updates the size. */
    g_assert_cmpint(fw_cfg_add_file(f.fw, "etc/test", "hi", 2), ==, key);
    uint16_t k;
    uint32_t size;
    g_assert_true(find_file(&f, "etc/test", &k, &size));
    g_assert_cmpuint(size, ==, 2);
    fixture_destroy(&f);
}

static void test_dma_read_e820(void)
{
    struct fixture f;
    fixture_init(&f);
    fw_cfg_add_e820(f.fw, 0, 0xa0000, E820_RAM);
    fw_cfg_add_e820(f.fw, 0x100000, 0x7f00000, E820_RAM);
    fw_cfg_add_e820(f.fw, 0xfeffc000, 0x4000, E820_RESERVED);
    uint16_t key;
    uint32_t size;
    g_assert_true(find_file(&f, "etc/e820", &key, &size));
    g_assert_cmpuint(size, ==, 3 * 20);

    /* SeaBIOS's read: select and read in one descriptor. */
    memset(f.mem.ram + 0x8000, 0xcc, 0x100);
    uint32_t ctl =
        dma(&f, 0x7000, (uint32_t)key << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ, size,
            0x8000);
    g_assert_cmphex(ctl, ==, 0);
    const uint8_t *t = f.mem.ram + 0x8000;
    uint64_t addr, len;
    uint32_t type;
    memcpy(&addr, t + 20, 8);
    memcpy(&len, t + 28, 8);
    memcpy(&type, t + 36, 4);
    g_assert_cmphex(addr, ==, 0x100000);
    g_assert_cmphex(len, ==, 0x7f00000);
    g_assert_cmpuint(type, ==, E820_RAM);
    memcpy(&addr, t + 40, 8);
    memcpy(&type, t + 56, 4);
    g_assert_cmphex(addr, ==, 0xfeffc000);
    g_assert_cmpuint(type, ==, E820_RESERVED);
    g_assert_cmphex(t[60], ==, 0xcc); /* nothing beyond the length */

    /* The legacy table lists only the reservation. */
    uint8_t count[4];
    read_item(&f, FW_CFG_E820_TABLE, count, 4);
    g_assert_cmpuint(count[0], ==, 1);
    fixture_destroy(&f);
}

static void test_dma_skip_zero_fill_and_errors(void)
{
    struct fixture f;
    fixture_init(&f);
    int key = fw_cfg_add_file(f.fw, "etc/abc", "abcdef", 6);

    /* Select, skip two, read the rest and beyond: zeros past the end. */
    ioport_write(f.io, 0x510, 2, (uint32_t)key);
    g_assert_cmphex(dma(&f, 0x7000, FW_CFG_DMA_CTL_SKIP, 2, 0), ==, 0);
    memset(f.mem.ram + 0x9000, 0xee, 16);
    g_assert_cmphex(dma(&f, 0x7000, FW_CFG_DMA_CTL_READ, 8, 0x9000), ==, 0);
    g_assert_cmpmem(f.mem.ram + 0x9000, 8, "cdef\0\0\0\0", 8);
    g_assert_cmphex(f.mem.ram[0x9008], ==, 0xee);

    /* Writing a read-only item fails with the error bit. */
    g_assert_cmphex(dma(&f, 0x7000,
                        (uint32_t)key << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_WRITE, 2,
                        0x9000),
                    ==, FW_CFG_DMA_CTL_ERROR);

    /* A writable file takes the guest's bytes. */
    int wkey = fw_cfg_add_file_writable(f.fw, "etc/wr", "....", 4);
    memcpy(f.mem.ram + 0x9100, "WXYZ", 4);
    g_assert_cmphex(dma(&f, 0x7000,
                        (uint32_t)wkey << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_WRITE, 4,
                        0x9100),
                    ==, 0);
    size_t len;
    const uint8_t *data = fw_cfg_file_data(f.fw, "etc/wr", &len);
    g_assert_cmpuint(len, ==, 4);
    g_assert_cmpmem(data, 4, "WXYZ", 4);

    /* The address is big-endian in two halves: the high half is kept
     * until the low half starts the transfer. An address past the end of
     * the 32-bit space writes nothing and does not crash. */
    ioport_write(f.io, 0x514, 4, GUINT32_SWAP_LE_BE(1));
    ioport_write(f.io, 0x518, 4, GUINT32_SWAP_LE_BE(0x7000));
    fixture_destroy(&f);
}

static void test_boot_order(void)
{
    struct fixture f;
    fixture_init(&f);
    g_assert_cmpint(fw_cfg_set_boot_order(f.fw, "dcxa"), ==, 3);
    size_t len;
    const char *text = fw_cfg_file_data(f.fw, "bootorder", &len);
    g_assert_nonnull(text);
    g_assert_cmpstr(text, ==,
                    "/pci@i0cf8/ide@1,1/drive@1/disk@0\n"
                    "/pci@i0cf8/ide@1,1/drive@0/disk@0\n"
                    "/pci@i0cf8/isa@1/fdc@03f0/floppy@0");
    g_assert_cmpuint(len, ==, strlen(text) + 1);
    fixture_destroy(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/fw_cfg/signature-and-id", test_signature_and_id);
    g_test_add_func("/fw_cfg/numbered-items", test_numbered_items);
    g_test_add_func("/fw_cfg/file-directory", test_file_directory);
    g_test_add_func("/fw_cfg/dma-read-e820", test_dma_read_e820);
    g_test_add_func("/fw_cfg/dma-skip-zero-fill-errors", test_dma_skip_zero_fill_and_errors);
    g_test_add_func("/fw_cfg/boot-order", test_boot_order);
    return g_test_run();
}
