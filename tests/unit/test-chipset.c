/* The chipset as machine_create() wires it: the host bridge, the ISA
 * bridge, fw_cfg and the keyboard controller on the machine's own buses,
 * and the A20 and reset signals reaching the machine. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "e820.h"
#include "machine.h"

#define RAM_MIB 16

struct fixture {
    char *bios_path;
    struct machine_config config;
    struct machine *m;
};

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    GError *error = NULL;
    int fd = g_file_open_tmp("vivarium-bios-XXXXXX", &f->bios_path, &error);
    g_assert_no_error(error);
    close(fd);
    /* A 64 KiB "firmware" of 0xf4 bytes, enough to be mapped. */
    guint8 *image = g_malloc(64 * 1024);
    memset(image, 0xf4, 64 * 1024);
    g_assert_true(g_file_set_contents(f->bios_path, (const char *)image, 64 * 1024, &error));
    g_free(image);
    f->config.ram_size = (uint64_t)RAM_MIB << 20;
    f->config.bios_path = f->bios_path;
    f->config.boot_order = (char *)"cd";
    f->config.accel = (char *)"interp";
    f->m = machine_create(&f->config, &error);
    g_assert_no_error(error);
    g_assert_nonnull(f->m);
}

static void fixture_destroy(struct fixture *f)
{
    machine_destroy(f->m);
    g_unlink(f->bios_path);
    g_free(f->bios_path);
}

static uint32_t cfg_read(struct machine *m, uint8_t devfn, unsigned offset)
{
    ioport_write(&m->io, 0xcf8, 4, 0x80000000u | (uint32_t)devfn << 8 | offset);
    return ioport_read(&m->io, 0xcfc, 4);
}

static uint32_t a20_mask(struct machine *m)
{
    struct x86_state state;
    m->cpu.backend->get_state(&m->cpu, &state);
    return state.a20_mask;
}

static void test_pci_devices_present(void)
{
    struct fixture f;
    fixture_init(&f);
    g_assert_cmphex(cfg_read(f.m, 0x00, 0), ==, 0x12378086);
    g_assert_cmphex(cfg_read(f.m, 0x08, 0), ==, 0x70008086);
    /* The BIOS shows at 0xf0000 until PAM0 maps the shadow RAM. */
    g_assert_cmphex(memory_read(&f.m->mem, 0xffff0, 1), ==, 0xf4);
    ioport_write(&f.m->io, 0xcf8, 4, 0x80000058u);
    ioport_write(&f.m->io, 0xcfd, 1, 0x30);
    g_assert_cmphex(memory_read(&f.m->mem, 0xffff0, 1), ==, 0x00);
    fixture_destroy(&f);
}

static void test_fw_cfg_ram_map(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ioport_bus *io = &f.m->io;
    ioport_write(io, 0x510, 2, 0x0000);
    char sig[5] = {0};
    for (int i = 0; i < 4; i++)
        sig[i] = (char)ioport_read(io, 0x511, 1);
    g_assert_cmpstr(sig, ==, "QEMU");
    ioport_write(io, 0x510, 2, 0x0003);
    uint64_t ram = 0;
    for (int i = 0; i < 8; i++)
        ram |= (uint64_t)ioport_read(io, 0x511, 1) << (8 * i);
    g_assert_cmphex(ram, ==, (uint64_t)RAM_MIB << 20);

    /* Walk the directory to etc/e820 and check the RAM above 1 MiB. */
    ioport_write(io, 0x510, 2, 0x0019);
    uint32_t count = 0;
    for (int i = 0; i < 4; i++)
        count = count << 8 | ioport_read(io, 0x511, 1);
    uint16_t e820_key = 0, bootorder_key = 0;
    for (uint32_t n = 0; n < count; n++) {
        uint8_t e[64];
        for (int i = 0; i < 64; i++)
            e[i] = (uint8_t)ioport_read(io, 0x511, 1);
        if (strcmp((const char *)e + 8, "etc/e820") == 0)
            e820_key = (uint16_t)(e[4] << 8 | e[5]);
        if (strcmp((const char *)e + 8, "bootorder") == 0)
            bootorder_key = (uint16_t)(e[4] << 8 | e[5]);
    }
    g_assert_cmpuint(e820_key, !=, 0);
    g_assert_cmpuint(bootorder_key, !=, 0);
    /* Conventional memory up to the EBDA, and RAM from 1 MiB up. */
    ioport_write(io, 0x510, 2, e820_key);
    uint8_t table[5 * 20];
    for (size_t i = 0; i < sizeof(table); i++)
        table[i] = (uint8_t)ioport_read(io, 0x511, 1);
    uint64_t base, length;
    uint32_t type;
    memcpy(&length, table + 8, 8);
    memcpy(&type, table + 16, 4);
    g_assert_cmphex(length, ==, 0x9fc00);
    g_assert_cmpuint(type, ==, E820_RAM);
    memcpy(&base, table + 60, 8);
    memcpy(&length, table + 68, 8);
    memcpy(&type, table + 76, 4);
    g_assert_cmphex(base, ==, 0x100000);
    g_assert_cmphex(length, ==, ((uint64_t)RAM_MIB << 20) - 0x100000);
    g_assert_cmpuint(type, ==, E820_RAM);
    fixture_destroy(&f);
}

static void test_a20_and_reset_signals(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ioport_bus *io = &f.m->io;
    g_assert_cmphex(a20_mask(f.m), ==, 0xffffffff);
    ioport_write(io, 0x64, 1, 0xd1);
    ioport_write(io, 0x60, 1, 0xdd);
    g_assert_cmphex(a20_mask(f.m), ==, ~(1u << 20));
    ioport_write(io, 0x64, 1, 0xdf);
    g_assert_cmphex(a20_mask(f.m), ==, 0xffffffff);

    g_assert_false(f.m->reset_requested);
    ioport_write(io, 0x64, 1, 0xfe);
    g_assert_true(f.m->reset_requested);
    f.m->reset_requested = false;
    ioport_write(io, 0xcf9, 1, 0x06);
    g_assert_true(f.m->reset_requested);
    fixture_destroy(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/chipset/pci-devices", test_pci_devices_present);
    g_test_add_func("/chipset/fw-cfg-ram-map", test_fw_cfg_ram_map);
    g_test_add_func("/chipset/a20-and-reset", test_a20_and_reset_signals);
    return g_test_run();
}
