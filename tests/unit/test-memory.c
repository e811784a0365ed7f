/* Unit tests for the guest-physical memory map. */
#include <glib.h>
#include <string.h>

#include "memory.h"

struct mmio_probe {
    uint64_t last_offset;
    unsigned last_size;
    uint32_t last_value;
    unsigned writes;
};

static uint32_t probe_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque;
    return (uint32_t)(0xa0 + offset) & (size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1);
}

static void probe_write(void *opaque, uint64_t offset, unsigned size, uint32_t value)
{
    struct mmio_probe *probe = opaque;
    probe->last_offset = offset;
    probe->last_size = size;
    probe->last_value = value;
    probe->writes++;
}

static const struct mmio_ops probe_ops = {.read = probe_read, .write = probe_write};

static void test_ram_little_endian(void)
{
    struct memory mem;
    g_assert_true(memory_init(&mem, 1 << 20));
    struct memory_region ram = {
        .name = "ram", .base = 0, .size = 1 << 20, .enabled = true, .host = mem.ram};
    memory_add_region(&mem, &ram);

    memory_write(&mem, 0x1000, 4, 0x11223344);
    g_assert_cmphex(memory_read(&mem, 0x1000, 1), ==, 0x44);
    g_assert_cmphex(memory_read(&mem, 0x1001, 2), ==, 0x2233);
    /* A dword that straddles two pages. */
    memory_write(&mem, 0x1ffe, 4, 0xdeadbeef);
    g_assert_cmphex(memory_read(&mem, 0x1ffe, 4), ==, 0xdeadbeef);
    g_assert_cmphex(mem.ram[0x2000], ==, 0xad);
    /* Beyond RAM nothing answers: reads float high, writes vanish. */
    g_assert_cmphex(memory_read(&mem, 0x200000, 2), ==, 0xffff);
    memory_write(&mem, 0x200000, 1, 0);
    memory_destroy(&mem);
}

static void test_overlay_priority_and_rom(void)
{
    struct memory mem;
    struct mmio_probe probe = {0};
    g_assert_true(memory_init(&mem, 1 << 20));
    struct memory_region ram = {
        .name = "ram", .base = 0, .size = 1 << 20, .enabled = true, .host = mem.ram};
    uint8_t rom_bytes[4096];
    memset(rom_bytes, 0x5a, sizeof(rom_bytes));
    struct memory_region rom = {.name = "rom",
                                .base = 0xf0000,
                                .size = 4096,
                                .priority = 1,
                                .enabled = true,
                                .host = rom_bytes,
                                .readonly = true};
    struct memory_region mmio = {.name = "mmio",
                                 .base = 0xa0000,
                                 .size = 0x20000,
                                 .priority = 1,
                                 .enabled = true,
                                 .ops = &probe_ops,
                                 .opaque = &probe};
    memory_add_region(&mem, &ram);
    memory_add_region(&mem, &rom);
    memory_add_region(&mem, &mmio);

    g_assert_cmphex(memory_read(&mem, 0xf0010, 1), ==, 0x5a);
    memory_write(&mem, 0xf0010, 1, 0x00);
    g_assert_cmphex(memory_read(&mem, 0xf0010, 1), ==, 0x5a);
    memory_load(&mem, 0xf0010, "\x01", 1);
    g_assert_cmphex(memory_read(&mem, 0xf0010, 1), ==, 0x01);

    memory_write(&mem, 0xa0004, 2, 0xbeef);
    g_assert_cmpuint(probe.writes, ==, 1);
    g_assert_cmphex(probe.last_offset, ==, 4);
    g_assert_cmpuint(probe.last_size, ==, 2);
    g_assert_cmphex(memory_read(&mem, 0xa0003, 1), ==, 0xa3);

    /* Disabling the overlay uncovers the RAM below it. */
    mmio.enabled = false;
    memory_update(&mem);
    memory_write(&mem, 0xa0004, 1, 0x77);
    g_assert_cmpuint(probe.writes, ==, 1);
    g_assert_cmphex(mem.ram[0xa0004], ==, 0x77);
    memory_destroy(&mem);
}

struct code_watch {
    uint64_t addr;
    unsigned calls;
};

static void code_written(void *opaque, uint64_t addr, unsigned len)
{
    struct code_watch *watch = opaque;
    (void)len;
    watch->addr = addr;
    watch->calls++;
}

static void test_dirty_and_code_tracking(void)
{
    struct memory mem;
    struct code_watch watch = {0};
    g_assert_true(memory_init(&mem, 1 << 20));
    struct memory_region ram = {
        .name = "ram", .base = 0, .size = 1 << 20, .enabled = true, .host = mem.ram};
    memory_add_region(&mem, &ram);
    mem.code_written = code_written;
    mem.code_written_opaque = &watch;

    g_assert_false(memory_test_and_clear_dirty(&mem, 0x3000, 0x2000, MEMORY_DIRTY_DISPLAY));
    memory_write(&mem, 0x4100, 1, 1);
    g_assert_true(memory_test_and_clear_dirty(&mem, 0x3000, 0x2000, MEMORY_DIRTY_DISPLAY));
    g_assert_false(memory_test_and_clear_dirty(&mem, 0x3000, 0x2000, MEMORY_DIRTY_DISPLAY));
    /* Each client has its own bit. */
    g_assert_true(memory_test_and_clear_dirty(&mem, 0x4000, 1, MEMORY_DIRTY_SNAPSHOT));

    memory_set_code_page(&mem, 0x8000, true);
    memory_write(&mem, 0x7000, 4, 0);
    g_assert_cmpuint(watch.calls, ==, 0);
    memory_write(&mem, 0x8010, 4, 0);
    g_assert_cmpuint(watch.calls, ==, 1);
    g_assert_cmphex(watch.addr, ==, 0x8010);
    uint8_t buf[16] = {0};
    memory_write_buf(&mem, 0x8ff8, buf, sizeof(buf));
    g_assert_cmpuint(watch.calls, ==, 2);
    memory_destroy(&mem);
}

/* Updating a range leaves its pages as a full update would, whatever the
 * priorities and order of the regions over them. */
static void test_update_range_matches_full_update(void)
{
    struct memory mem;
    struct mmio_probe probe = {0};
    g_assert_true(memory_init(&mem, 1 << 20));
    static uint8_t bytes[4][0x10000] __attribute__((aligned(4096)));
    struct memory_region ram = {
        .name = "ram", .base = 0, .size = 1 << 20, .enabled = true, .host = mem.ram};
    struct memory_region mmio = {.name = "mmio",
                                 .base = 0xa0000,
                                 .size = 0x20000,
                                 .priority = 1,
                                 .enabled = true,
                                 .ops = &probe_ops,
                                 .opaque = &probe};
    struct memory_region over[4];
    memory_add_region(&mem, &ram);
    memory_add_region(&mem, &mmio);
    for (unsigned i = 0; i < 4; i++) {
        over[i] = (struct memory_region){.name = "over",
                                         .base = 0xa0000,
                                         .size = 0x10000,
                                         .priority = i < 2 ? 2 : 1,
                                         .host = bytes[i],
                                         .readonly = i == 3};
        memory_add_region(&mem, &over[i]);
    }
    struct memory_page expect[0x20];
    uint32_t seed = 7;
    for (unsigned round = 0; round < 200; round++) {
        for (unsigned i = 0; i < 4; i++) {
            seed = seed * 1103515245u + 12345u;
            over[i].enabled = (seed >> 16) & 1;
            over[i].base = 0xa0000 + ((seed >> 20) & 0x1f) * 0x1000;
            over[i].size = (((seed >> 25) & 0xf) + 1) * 0x1000;
        }
        memory_update_range(&mem, 0xa0000, 0x40000);
        memcpy(expect, &mem.pages[0xa0], sizeof(expect));
        memory_update(&mem);
        for (unsigned p = 0; p < 0x20; p++) {
            g_assert_true(expect[p].region == mem.pages[0xa0 + p].region);
            g_assert_true(expect[p].host == mem.pages[0xa0 + p].host);
            g_assert_cmpuint(expect[p].flags, ==, mem.pages[0xa0 + p].flags);
        }
    }
    memory_destroy(&mem);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/memory/ram-little-endian", test_ram_little_endian);
    g_test_add_func("/memory/overlay-priority-and-rom", test_overlay_priority_and_rom);
    g_test_add_func("/memory/dirty-and-code-tracking", test_dirty_and_code_tracking);
    g_test_add_func("/memory/update-range-matches-full-update",
                    test_update_range_matches_full_update);
    return g_test_run();
}
