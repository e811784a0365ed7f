/* Register-level tests of the 8237 pair: a fake device moves data through
 * the channel interface while the test programs and reads the registers. */
#include <glib.h>
#include <string.h>

#include "devices/dma.h"
#include "ioport.h"
#include "memory.h"
#include "vclock.h"

#define RAM_SIZE (1u << 20)

struct fake_device {
    struct isa_dma *dma;
    int channel;
    int chunk; /* bytes moved per call */
    bool to_memory;
    uint8_t data[256];
    int calls;
    int last_size;
    bool release_at_end;
};

struct fixture {
    struct ioport_bus io;
    struct vclock clock;
    struct memory mem;
    struct memory_region ram;
    struct isa_dma *dma;
};

static int fake_transfer(void *opaque, int channel, int position, int size)
{
    struct fake_device *dev = opaque;
    g_assert_cmpint(channel, ==, dev->channel);
    dev->calls++;
    dev->last_size = size;
    int len = MIN(dev->chunk, size - position);
    uint8_t buf[256];
    if (dev->to_memory) {
        for (int i = 0; i < len; i++)
            buf[i] = dev->data[(position + i) % 256];
        g_assert_cmpint(isa_dma_write_memory(dev->dma, channel, buf, position, len), ==, len);
    } else {
        g_assert_cmpint(isa_dma_read_memory(dev->dma, channel, buf, position, len), ==, len);
        for (int i = 0; i < len; i++)
            dev->data[(position + i) % 256] = buf[i];
    }
    if (position + len == size && dev->release_at_end)
        isa_dma_release_dreq(dev->dma, channel);
    return position + len;
}

static struct fixture *fixture_new(void)
{
    struct fixture *f = g_new0(struct fixture, 1);
    ioport_bus_init(&f->io);
    vclock_init(&f->clock);
    g_assert_true(memory_init(&f->mem, RAM_SIZE));
    f->ram = (struct memory_region){
        .name = "ram", .base = 0, .size = RAM_SIZE, .enabled = true, .host = f->mem.ram};
    memory_add_region(&f->mem, &f->ram);
    f->dma = isa_dma_create(&f->io, &f->mem, &f->clock);
    return f;
}

static void fixture_free(struct fixture *f)
{
    isa_dma_destroy(f->dma);
    memory_destroy(&f->mem);
    g_free(f);
}

static void out8(struct fixture *f, uint16_t port, uint8_t value)
{
    ioport_write(&f->io, port, 1, value);
}

static uint8_t in8(struct fixture *f, uint16_t port)
{
    return (uint8_t)ioport_read(&f->io, port, 1);
}

/* Runs the transfer timer the given number of times, a millisecond apart. */
static void run_transfers(struct fixture *f, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        int64_t next = vclock_next_deadline(&f->clock);
        if (next == INT64_MAX)
            return;
        vclock_set(&f->clock, MAX(next, vclock_now(&f->clock)));
        vclock_run_timers(&f->clock);
    }
}

/* Programs an 8-bit channel the way a BIOS floppy driver does. */
static void program_channel8(struct fixture *f, int channel, uint8_t mode, uint8_t page,
                             uint16_t address, uint16_t count)
{
    static const uint16_t page_port[4] = {0x87, 0x83, 0x81, 0x82};
    out8(f, 0x0a, 0x04 | channel); /* mask */
    out8(f, 0x0c, 0);              /* clear flip-flop */
    out8(f, 0x0b, mode | channel);
    out8(f, channel * 2, address & 0xff);
    out8(f, channel * 2, address >> 8);
    out8(f, channel * 2 + 1, count & 0xff);
    out8(f, channel * 2 + 1, count >> 8);
    out8(f, page_port[channel], page);
    out8(f, 0x0a, channel); /* unmask */
}

static uint16_t read_word_register(struct fixture *f, uint16_t port, uint16_t flip_flop_port)
{
    out8(f, flip_flop_port, 0);
    uint8_t lsb = in8(f, port);
    return (uint16_t)(lsb | in8(f, port) << 8);
}

static void test_single_transfer_to_memory(void)
{
    struct fixture *f = fixture_new();
    struct fake_device dev = {
        .dma = f->dma, .channel = 2, .chunk = 128, .to_memory = true, .release_at_end = true};
    for (int i = 0; i < 256; i++)
        dev.data[i] = (uint8_t)(i ^ 0x5a);
    isa_dma_register_channel(f->dma, 2, fake_transfer, &dev);
    program_channel8(f, 2, 0x44, 0x02, 0x1000, 511); /* single, write to memory */
    g_assert_cmpint(isa_dma_transfer_type(f->dma, 2), ==, ISA_DMA_WRITE);

    isa_dma_hold_dreq(f->dma, 2);
    g_assert_cmpint(dev.calls, ==, 0);              /* not from inside hold_dreq */
    g_assert_cmphex(in8(f, 0x08) & 0x40, ==, 0x40); /* DREQ2 shows in status */
    run_transfers(f, 1);
    g_assert_cmpint(dev.calls, ==, 1);
    g_assert_cmpint(dev.last_size, ==, 512);
    g_assert_cmphex(read_word_register(f, 0x04, 0x0c), ==, 0x1080);
    g_assert_cmphex(read_word_register(f, 0x05, 0x0c), ==, 511 - 128);

    run_transfers(f, 10);
    g_assert_cmpint(dev.calls, ==, 4);
    g_assert_cmpmem(f->mem.ram + 0x21000, 256, dev.data, 256);
    g_assert_cmpmem(f->mem.ram + 0x21100, 256, dev.data, 256);
    g_assert_cmphex(f->mem.ram[0x21200], ==, 0);
    /* Terminal count: the count register has passed zero, the TC bit is
     * set until status is read, and the channel masked itself. */
    g_assert_cmphex(read_word_register(f, 0x05, 0x0c), ==, 0xffff);
    g_assert_cmphex(read_word_register(f, 0x04, 0x0c), ==, 0x1200);
    g_assert_cmphex(in8(f, 0x08), ==, 0x04);
    g_assert_cmphex(in8(f, 0x08), ==, 0x00);
    g_assert_cmphex(in8(f, 0x0f) & 0x04, ==, 0x04);
    g_assert_false(isa_dma_channel_enabled(f->dma, 2));
    fixture_free(f);
}

static void test_auto_init_read_from_memory(void)
{
    struct fixture *f = fixture_new();
    struct fake_device dev = {.dma = f->dma, .channel = 1, .chunk = 60};
    for (int i = 0; i < 100; i++)
        f->mem.ram[0x30000 + 0x500 + i] = (uint8_t)(200 - i);
    isa_dma_register_channel(f->dma, 1, fake_transfer, &dev);
    program_channel8(f, 1, 0x58, 0x03, 0x0500, 99); /* single, auto-init, read */
    g_assert_true(isa_dma_auto_init(f->dma, 1));
    isa_dma_hold_dreq(f->dma, 1);
    run_transfers(f, 1);
    g_assert_cmphex(read_word_register(f, 0x03, 0x0c), ==, 99 - 60);
    run_transfers(f, 1);
    /* The block ended and reloaded: registers show the base values, the
     * channel stays unmasked and TC is reported once. */
    g_assert_cmphex(read_word_register(f, 0x02, 0x0c), ==, 0x0500);
    g_assert_cmphex(read_word_register(f, 0x03, 0x0c), ==, 99);
    g_assert_cmphex(in8(f, 0x08) & 0x0f, ==, 0x02);
    g_assert_true(isa_dma_channel_enabled(f->dma, 1));
    for (int i = 0; i < 100; i++)
        g_assert_cmphex(dev.data[i], ==, (uint8_t)(200 - i));
    run_transfers(f, 1);
    g_assert_cmpint(dev.calls, ==, 3);
    g_assert_cmphex(read_word_register(f, 0x03, 0x0c), ==, 99 - 60);
    isa_dma_release_dreq(f->dma, 1);
    run_transfers(f, 5);
    g_assert_cmpint(dev.calls, ==, 3);
    fixture_free(f);
}

static void test_word_channel(void)
{
    struct fixture *f = fixture_new();
    struct fake_device dev = {
        .dma = f->dma, .channel = 5, .chunk = 256, .to_memory = true, .release_at_end = true};
    for (int i = 0; i < 256; i++)
        dev.data[i] = (uint8_t)i;
    isa_dma_register_channel(f->dma, 5, fake_transfer, &dev);
    out8(f, 0xd4, 0x05); /* mask channel 5 */
    out8(f, 0xd8, 0);
    out8(f, 0xd6, 0x45); /* single, write to memory, channel 5 */
    out8(f, 0xc4, 0x00); /* word address 0x0800 */
    out8(f, 0xc4, 0x08);
    out8(f, 0xc6, 9); /* ten words */
    out8(f, 0xc6, 0);
    out8(f, 0x8b, 0x03); /* bit 0 of a 16-bit channel's page is unused */
    out8(f, 0xd4, 0x01);
    isa_dma_hold_dreq(f->dma, 5);
    run_transfers(f, 1);
    g_assert_cmpint(dev.last_size, ==, 20);
    g_assert_cmpmem(f->mem.ram + 0x21000, 20, dev.data, 20);
    g_assert_cmphex(f->mem.ram[0x21014], ==, 0);
    g_assert_cmphex(read_word_register(f, 0xc4, 0xd8), ==, 0x080a);
    g_assert_cmphex(in8(f, 0xd0) & 0x0f, ==, 0x02);
    fixture_free(f);
}

static void test_decrement_and_wrap(void)
{
    struct fixture *f = fixture_new();
    struct fake_device dev = {
        .dma = f->dma, .channel = 3, .chunk = 4, .to_memory = true, .release_at_end = true};
    memcpy(dev.data, "ABCD", 4);
    isa_dma_register_channel(f->dma, 3, fake_transfer, &dev);
    program_channel8(f, 3, 0x64, 0x00, 0x2010, 3); /* decrement */
    isa_dma_hold_dreq(f->dma, 3);
    run_transfers(f, 1);
    g_assert_cmpmem(f->mem.ram + 0x200d, 4, "DCBA", 4);
    g_assert_cmphex(read_word_register(f, 0x06, 0x0c), ==, 0x200c);

    /* Incrementing past 0xffff wraps within the page. */
    memcpy(dev.data, "wxyz", 4);
    program_channel8(f, 3, 0x44, 0x04, 0xfffe, 3);
    isa_dma_hold_dreq(f->dma, 3);
    run_transfers(f, 1);
    g_assert_cmpmem(f->mem.ram + 0x4fffe, 2, "wx", 2);
    g_assert_cmpmem(f->mem.ram + 0x40000, 2, "yz", 2);
    g_assert_cmphex(f->mem.ram[0x50000], ==, 0);
    fixture_free(f);
}

static void test_masks_and_master_clear(void)
{
    struct fixture *f = fixture_new();
    struct fake_device dev = {.dma = f->dma, .channel = 0, .chunk = 1, .to_memory = true};
    isa_dma_register_channel(f->dma, 0, fake_transfer, &dev);
    out8(f, 0x01, 0xff); /* a 64 KiB block */
    out8(f, 0x01, 0xff);
    /* Everything is masked after reset: DREQ alone moves nothing. */
    g_assert_cmphex(in8(f, 0x0f) & 0x0f, ==, 0x0f);
    isa_dma_hold_dreq(f->dma, 0);
    run_transfers(f, 3);
    g_assert_cmpint(dev.calls, ==, 0);
    out8(f, 0x0e, 0); /* clear all masks */
    run_transfers(f, 1);
    g_assert_cmpint(dev.calls, ==, 1);
    /* Disabling the controller in the command register stops it too. */
    out8(f, 0x08, 0x04);
    run_transfers(f, 3);
    g_assert_cmpint(dev.calls, ==, 1);
    out8(f, 0x08, 0x00);
    run_transfers(f, 1);
    g_assert_cmpint(dev.calls, ==, 2);
    /* Write-all-mask, then master clear. */
    out8(f, 0x0f, 0x01);
    run_transfers(f, 3);
    g_assert_cmpint(dev.calls, ==, 2);
    out8(f, 0x0f, 0x00);
    out8(f, 0x0d, 0);
    g_assert_cmphex(in8(f, 0x0f) & 0x0f, ==, 0x0f);
    run_transfers(f, 3);
    g_assert_cmpint(dev.calls, ==, 2);

    /* The flip-flop alternates bytes and resets on master clear. */
    out8(f, 0x00, 0x34);
    out8(f, 0x00, 0x12);
    out8(f, 0x00, 0x78); /* a third write is a low byte again */
    out8(f, 0x0d, 0);
    g_assert_cmphex(in8(f, 0x00), ==, 0x78);
    g_assert_cmphex(in8(f, 0x00), ==, 0x12);
    /* Page registers read back, the unused ones as scratch. */
    out8(f, 0x80, 0x42);
    out8(f, 0x87, 0x0a);
    g_assert_cmphex(in8(f, 0x80), ==, 0x42);
    g_assert_cmphex(in8(f, 0x87), ==, 0x0a);
    fixture_free(f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dma/single-transfer-to-memory", test_single_transfer_to_memory);
    g_test_add_func("/dma/auto-init-read-from-memory", test_auto_init_read_from_memory);
    g_test_add_func("/dma/word-channel", test_word_channel);
    g_test_add_func("/dma/decrement-and-wrap", test_decrement_and_wrap);
    g_test_add_func("/dma/masks-and-master-clear", test_masks_and_master_clear);
    return g_test_run();
}
