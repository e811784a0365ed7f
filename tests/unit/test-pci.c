/* Unit tests for the PCI bus, the i440FX host bridge and the PIIX3 bridge,
 * driven through ports 0xcf8/0xcfc as firmware drives them. */
#include <glib.h>
#include <string.h>

#include "devices/i440fx.h"
#include "devices/pci.h"
#include "devices/piix3.h"
#include "ioport.h"
#include "memory.h"

#define RAM_SIZE   (2u << 20)
#define ROM_BASE   0xe0000u
#define ROM_SIZE   0x20000u
#define ROM_FILLER 0xa5

struct fixture {
    struct ioport_bus *io;
    struct memory mem;
    struct memory_region ram;
    struct memory_region rom;
    uint8_t *rom_bytes;
    struct pci_bus *bus;
};

static void fixture_init(struct fixture *f)
{
    f->io = g_new0(struct ioport_bus, 1);
    ioport_bus_init(f->io);
    g_assert_true(memory_init(&f->mem, RAM_SIZE));
    f->ram = (struct memory_region){
        .name = "ram", .base = 0, .size = RAM_SIZE, .enabled = true, .host = f->mem.ram};
    memory_add_region(&f->mem, &f->ram);
    f->rom_bytes = g_malloc(ROM_SIZE);
    memset(f->rom_bytes, ROM_FILLER, ROM_SIZE);
    f->rom = (struct memory_region){.name = "isa-bios",
                                    .base = ROM_BASE,
                                    .size = ROM_SIZE,
                                    .priority = 1,
                                    .enabled = true,
                                    .host = f->rom_bytes,
                                    .readonly = true};
    memory_add_region(&f->mem, &f->rom);
    f->bus = pci_bus_create(f->io, &f->mem);
}

static void fixture_destroy(struct fixture *f)
{
    pci_bus_destroy(f->bus);
    memory_destroy(&f->mem);
    g_free(f->rom_bytes);
    g_free(f->io);
}

static uint32_t cfg_read(struct fixture *f, uint8_t devfn, unsigned offset, unsigned size)
{
    ioport_write(f->io, 0xcf8, 4, 0x80000000u | (uint32_t)devfn << 8 | (offset & 0xfc));
    return ioport_read(f->io, (uint16_t)(0xcfc + (offset & 3)), size);
}

static void cfg_write(struct fixture *f, uint8_t devfn, unsigned offset, unsigned size,
                      uint32_t value)
{
    ioport_write(f->io, 0xcf8, 4, 0x80000000u | (uint32_t)devfn << 8 | (offset & 0xfc));
    ioport_write(f->io, (uint16_t)(0xcfc + (offset & 3)), size, value);
}

/* ---- a test device with every kind of BAR ---- */

struct test_device {
    struct pci_device pci;
    struct memory_region mmio;
    struct memory_region rom;
    uint8_t rom_bytes[0x10000];
    unsigned io_reads;
    int last_bar;
    bool last_mapped;
    uint32_t last_address;
    unsigned notifications;
};

static uint32_t test_io_read(void *opaque, uint16_t port, unsigned size)
{
    struct test_device *dev = opaque;
    dev->io_reads++;
    return (0x1000u + port) & (size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1);
}

static void test_io_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    (void)opaque;
    (void)port;
    (void)size;
    (void)value;
}

static uint32_t test_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque;
    (void)size;
    return 0xbeef0000u | (uint32_t)(offset & 0xffff);
}

static void test_mmio_write(void *opaque, uint64_t offset, unsigned size, uint32_t value)
{
    (void)opaque;
    (void)offset;
    (void)size;
    (void)value;
}

static const struct mmio_ops test_mmio_ops = {.read = test_mmio_read, .write = test_mmio_write};

static void test_bar_mapped(struct pci_device *pci, int bar, bool mapped, uint32_t address)
{
    struct test_device *dev = pci->opaque;
    dev->last_bar = bar;
    dev->last_mapped = mapped;
    dev->last_address = address;
    dev->notifications++;
}

static void test_device_init(struct test_device *dev, uint8_t devfn, int pin)
{
    pci_device_init(&dev->pci, "test", devfn, 0x1234, 0x5678, 0x01, 0x030000);
    dev->pci.opaque = dev;
    dev->pci.bar_mapped = test_bar_mapped;
    dev->pci.config[PCI_INTERRUPT_PIN] = (uint8_t)pin;
    pci_register_io_bar(&dev->pci, 0, 32, test_io_read, test_io_write, dev);
    dev->mmio = (struct memory_region){
        .name = "test-mmio", .size = 1u << 20, .priority = 1, .ops = &test_mmio_ops};
    pci_register_mem_bar(&dev->pci, 1, &dev->mmio, true);
    memset(dev->rom_bytes, 0x55, sizeof(dev->rom_bytes));
    dev->rom = (struct memory_region){.name = "test-rom",
                                      .size = sizeof(dev->rom_bytes),
                                      .priority = 1,
                                      .host = dev->rom_bytes,
                                      .readonly = true};
    pci_register_rom_bar(&dev->pci, &dev->rom);
}

/* ---- tests ---- */

static void test_config_mechanism(void)
{
    struct fixture f;
    fixture_init(&f);
    struct i440fx *host = i440fx_create(f.bus, &f.mem);

    g_assert_cmphex(cfg_read(&f, 0, PCI_VENDOR_ID, 4), ==, 0x12378086);
    g_assert_cmphex(cfg_read(&f, 0, PCI_VENDOR_ID, 2), ==, 0x8086);
    g_assert_cmphex(cfg_read(&f, 0, PCI_DEVICE_ID, 2), ==, 0x1237);
    g_assert_cmphex(cfg_read(&f, 0, PCI_DEVICE_ID + 1, 1), ==, 0x12);
    g_assert_cmphex(cfg_read(&f, 0, PCI_CLASS_DEVICE, 2), ==, 0x0600);
    g_assert_cmphex(cfg_read(&f, 0, PCI_SUBSYSTEM_VENDOR_ID, 4), ==, 0x11001af4);
    /* Nothing at 00:05.0 or on bus 1: all ones. */
    g_assert_cmphex(cfg_read(&f, PCI_DEVFN(5, 0), 0, 4), ==, 0xffffffff);
    ioport_write(f.io, 0xcf8, 4, 0x80010000u);
    g_assert_cmphex(ioport_read(f.io, 0xcfc, 4), ==, 0xffffffff);
    /* With the enable bit clear no configuration cycle happens. */
    ioport_write(f.io, 0xcf8, 4, 0x00000000u);
    g_assert_cmphex(ioport_read(f.io, 0xcfc, 2), ==, 0xffff);
    /* CONFIG_ADDRESS keeps only its defined bits, and only dword accesses
     * reach it. */
    ioport_write(f.io, 0xcf8, 4, 0xff00ff07u);
    g_assert_cmphex(ioport_read(f.io, 0xcf8, 4), ==, 0x8000ff04u);
    ioport_write(f.io, 0xcf8, 1, 0x00);
    g_assert_cmphex(ioport_read(f.io, 0xcf8, 4), ==, 0x8000ff04u);
    /* Read-only identity: writes to the vendor ID are ignored. */
    cfg_write(&f, 0, PCI_VENDOR_ID, 2, 0xffff);
    g_assert_cmphex(cfg_read(&f, 0, PCI_VENDOR_ID, 2), ==, 0x8086);

    i440fx_destroy(host);
    fixture_destroy(&f);
}

static void test_bar_sizing_and_mapping(void)
{
    struct fixture f;
    fixture_init(&f);
    struct test_device *dev = g_new0(struct test_device, 1);
    test_device_init(dev, PCI_DEVFN(3, 0), PCI_INTA);
    g_assert_cmpint(pci_register_device(f.bus, &dev->pci), ==, 0);
    uint8_t devfn = PCI_DEVFN(3, 0);

    /* Sizing: write all ones, read back the size mask and the type bits. */
    cfg_write(&f, devfn, 0x10, 4, 0xffffffff);
    g_assert_cmphex(cfg_read(&f, devfn, 0x10, 4), ==, 0xffffffe1);
    cfg_write(&f, devfn, 0x14, 4, 0xffffffff);
    g_assert_cmphex(cfg_read(&f, devfn, 0x14, 4), ==, 0xfff00008);
    cfg_write(&f, devfn, PCI_ROM_ADDRESS, 4, 0xfffff800);
    g_assert_cmphex(cfg_read(&f, devfn, PCI_ROM_ADDRESS, 4), ==, 0xffff0000);
    /* Unused BARs read as zero and stay so. */
    cfg_write(&f, devfn, 0x18, 4, 0xffffffff);
    g_assert_cmphex(cfg_read(&f, devfn, 0x18, 4), ==, 0);
    g_assert_cmpuint(dev->notifications, ==, 0);

    /* Programmed but with decoding off in the command register: nothing. */
    cfg_write(&f, devfn, 0x10, 4, 0xc020);
    cfg_write(&f, devfn, 0x14, 4, 0xfe000000);
    cfg_write(&f, devfn, PCI_ROM_ADDRESS, 4, 0xfeb00001);
    g_assert_cmphex(ioport_read(f.io, 0xc020, 2), ==, 0xffff);
    g_assert_cmphex(memory_read(&f.mem, 0xfe000010, 4), ==, 0xffffffff);

    cfg_write(&f, devfn, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    g_assert_cmphex(ioport_read(f.io, 0xc020, 2), ==, 0x1000 + 0xc020);
    g_assert_cmphex(ioport_read(f.io, 0xc03f, 1), ==, (0x1000 + 0xc03f) & 0xff);
    g_assert_cmphex(ioport_read(f.io, 0xc040, 1), ==, 0xff);
    g_assert_cmphex(memory_read(&f.mem, 0xfe000010, 4), ==, 0xbeef0010);
    g_assert_cmphex(memory_read(&f.mem, 0xfeb00000, 1), ==, 0x55);
    g_assert_cmpuint(dev->notifications, ==, 3);

    /* Moving the memory BAR moves the region; the callback says where. */
    cfg_write(&f, devfn, 0x14, 4, 0xfd000000);
    g_assert_cmpint(dev->last_bar, ==, 1);
    g_assert_true(dev->last_mapped);
    g_assert_cmphex(dev->last_address, ==, 0xfd000000);
    g_assert_cmphex(dev->mmio.base, ==, 0xfd000000);
    g_assert_cmphex(memory_read(&f.mem, 0xfd000020, 4), ==, 0xbeef0020);
    g_assert_cmphex(memory_read(&f.mem, 0xfe000010, 4), ==, 0xffffffff);

    /* Sizing a live BAR unmaps it until it is programmed again. */
    cfg_write(&f, devfn, 0x10, 4, 0xffffffff);
    g_assert_cmphex(ioport_read(f.io, 0xc020, 2), ==, 0xffff);
    cfg_write(&f, devfn, 0x10, 4, 0xd000);
    g_assert_cmphex(ioport_read(f.io, 0xd004, 1), ==, (0x1000 + 0xd004) & 0xff);

    /* Disabling the ROM BAR's enable bit or memory decoding unmaps. */
    cfg_write(&f, devfn, PCI_ROM_ADDRESS, 4, 0xfeb00000);
    g_assert_cmphex(memory_read(&f.mem, 0xfeb00000, 1), ==, 0xff);
    cfg_write(&f, devfn, PCI_COMMAND, 2, PCI_COMMAND_IO);
    g_assert_cmphex(memory_read(&f.mem, 0xfd000020, 4), ==, 0xffffffff);
    g_assert_false(dev->last_mapped);

    /* Reset returns the config space and unmaps everything. */
    pci_device_reset(&dev->pci);
    g_assert_cmphex(cfg_read(&f, devfn, 0x10, 4), ==, 0x1);
    g_assert_cmphex(ioport_read(f.io, 0xd004, 1), ==, 0xff);

    fixture_destroy(&f);
    g_free(dev);
}

static void set_pam(struct fixture *f, unsigned reg, uint8_t value)
{
    cfg_write(f, 0, reg, 1, value);
}

static void test_pam_shadowing(void)
{
    struct fixture f;
    fixture_init(&f);
    struct i440fx *host = i440fx_create(f.bus, &f.mem);

    /* After reset the BIOS ROM answers at 0xf0000 and ignores writes. */
    g_assert_cmphex(memory_read(&f.mem, 0xf1234, 1), ==, ROM_FILLER);
    memory_write(&f.mem, 0xf1234, 1, 0x11);
    g_assert_cmphex(memory_read(&f.mem, 0xf1234, 1), ==, ROM_FILLER);

    /* SeaBIOS makes the shadow RAM readable and writable with dword
     * writes at 0x58 and 0x5c, copies itself, then makes it read-only. */
    uint32_t dw58 = cfg_read(&f, 0, 0x58, 4);
    cfg_write(&f, 0, 0x58, 4, (dw58 & 0x00ffffff) | 0x30u << 24 | 0x33u << 16 | 0x33u << 8);
    g_assert_cmphex(cfg_read(&f, 0, 0x59, 1), ==, 0x30);
    g_assert_cmphex(memory_read(&f.mem, 0xf1234, 1), ==, 0x00); /* RAM, still empty */
    memory_write(&f.mem, 0xf1234, 4, 0xcafef00d);
    g_assert_cmphex(memory_read(&f.mem, 0xf1234, 4), ==, 0xcafef00d);
    g_assert_cmphex(f.mem.ram[0xf1234], ==, 0x0d);

    set_pam(&f, 0x59, 0x10);
    memory_write(&f.mem, 0xf1234, 4, 0x12345678);
    g_assert_cmphex(memory_read(&f.mem, 0xf1234, 4), ==, 0xcafef00d);

    /* Neither bit: the ROM again, with the RAM copy kept behind it. */
    set_pam(&f, 0x59, 0x00);
    g_assert_cmphex(memory_read(&f.mem, 0xf1234, 1), ==, ROM_FILLER);
    set_pam(&f, 0x59, 0x10);
    g_assert_cmphex(memory_read(&f.mem, 0xf1234, 4), ==, 0xcafef00d);

    /* The reserved low nibble of PAM0 stays zero. */
    set_pam(&f, 0x59, 0xff);
    g_assert_cmphex(cfg_read(&f, 0, 0x59, 1), ==, 0x30);

    /* PAM6 covers 0xe8000 (low nibble) and 0xec000 (high nibble). */
    set_pam(&f, 0x5f, 0x03);
    memory_write(&f.mem, 0xe8000, 1, 0x42);
    memory_write(&f.mem, 0xec000, 1, 0x42);
    g_assert_cmphex(memory_read(&f.mem, 0xe8000, 1), ==, 0x42);
    g_assert_cmphex(memory_read(&f.mem, 0xec000, 1), ==, ROM_FILLER);

    /* Write-only: reads come from the ROM, writes land in RAM. */
    set_pam(&f, 0x5f, 0x20);
    memory_write(&f.mem, 0xec010, 2, 0xbeef);
    g_assert_cmphex(memory_read(&f.mem, 0xec010, 2), ==, ROM_FILLER * 0x101u);
    set_pam(&f, 0x5f, 0x10);
    g_assert_cmphex(memory_read(&f.mem, 0xec010, 2), ==, 0xbeef);

    /* A system reset puts every segment back on the ROM. */
    i440fx_reset(host);
    g_assert_cmphex(cfg_read(&f, 0, 0x59, 1), ==, 0x00);
    g_assert_cmphex(memory_read(&f.mem, 0xf1234, 1), ==, ROM_FILLER);

    i440fx_destroy(host);
    fixture_destroy(&f);
}

static uint32_t vga_probe_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque;
    (void)offset;
    (void)size;
    return 0x77;
}

static const struct mmio_ops vga_probe_ops = {.read = vga_probe_read, .write = test_mmio_write};

static void test_smram(void)
{
    struct fixture f;
    fixture_init(&f);
    struct memory_region vga = {.name = "vga",
                                .base = 0xa0000,
                                .size = 0x20000,
                                .priority = 1,
                                .enabled = true,
                                .ops = &vga_probe_ops};
    memory_add_region(&f.mem, &vga);
    struct i440fx *host = i440fx_create(f.bus, &f.mem);
    f.mem.ram[0xa8000] = 0x99;

    g_assert_cmphex(cfg_read(&f, 0, 0x72, 1), ==, 0x02);
    g_assert_cmphex(memory_read(&f.mem, 0xa8000, 1), ==, 0x77);
    /* D_OPEN | G_SMRAME: the RAM behind the VGA window shows. */
    cfg_write(&f, 0, 0x72, 1, 0x4a);
    g_assert_cmphex(cfg_read(&f, 0, 0x72, 1), ==, 0x4a);
    g_assert_cmphex(memory_read(&f.mem, 0xa8000, 1), ==, 0x99);
    /* C_BASE_SEG is hardwired; D_LCK closes and locks the window. */
    cfg_write(&f, 0, 0x72, 1, 0x5f);
    g_assert_cmphex(cfg_read(&f, 0, 0x72, 1), ==, 0x1a);
    g_assert_cmphex(memory_read(&f.mem, 0xa8000, 1), ==, 0x77);
    cfg_write(&f, 0, 0x72, 1, 0x4a);
    g_assert_cmphex(cfg_read(&f, 0, 0x72, 1), ==, 0x1a);
    i440fx_reset(host);
    g_assert_cmphex(cfg_read(&f, 0, 0x72, 1), ==, 0x02);

    i440fx_destroy(host);
    fixture_destroy(&f);
}

struct line_probe {
    bool level[16];
    unsigned edges[16];
    unsigned resets;
};

static void probe_irq(void *opaque, int n, bool level)
{
    struct line_probe *p = opaque;
    if (level && !p->level[n])
        p->edges[n]++;
    p->level[n] = level;
}

static void probe_reset(void *opaque, int n, bool level)
{
    struct line_probe *p = opaque;
    (void)n;
    if (level)
        p->resets++;
}

static void test_pirq_routing(void)
{
    struct fixture f;
    fixture_init(&f);
    struct line_probe probe = {0};
    struct irq_line isa_irqs[16];
    for (int i = 0; i < 16; i++)
        isa_irqs[i] = (struct irq_line){.handler = probe_irq, .opaque = &probe, .n = i};
    struct irq_line reset = {.handler = probe_reset, .opaque = &probe};
    struct piix3 *isa = piix3_create(f.bus, f.io, isa_irqs, &reset);

    g_assert_cmphex(cfg_read(&f, PIIX3_ISA_DEVFN, PCI_VENDOR_ID, 4), ==, 0x70008086);
    g_assert_cmphex(cfg_read(&f, PIIX3_ISA_DEVFN, PCI_HEADER_TYPE, 1), ==, 0x80);
    g_assert_cmphex(cfg_read(&f, PIIX3_ISA_DEVFN, 0x60, 4), ==, 0x80808080);

    /* Slot 3, INTA: wire (3 + 1 - 2) mod 4 = PIRQC. Slot 2, INTB too. */
    struct test_device *a = g_new0(struct test_device, 1);
    struct test_device *b = g_new0(struct test_device, 1);
    test_device_init(a, PCI_DEVFN(3, 0), PCI_INTA);
    test_device_init(b, PCI_DEVFN(2, 0), PCI_INTB);
    pci_register_device(f.bus, &a->pci);
    pci_register_device(f.bus, &b->pci);
    g_assert_cmpint(pci_slot_pirq(PCI_DEVFN(3, 0), PCI_INTA), ==, 2);

    /* Unrouted: nothing moves. */
    pci_set_irq(&a->pci, true);
    for (int i = 0; i < 16; i++)
        g_assert_false(probe.level[i]);
    g_assert_cmphex(cfg_read(&f, PCI_DEVFN(3, 0), PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, !=, 0);

    /* Routing PIRQC to IRQ 11 raises it; moving it to 10 moves the level. */
    cfg_write(&f, PIIX3_ISA_DEVFN, 0x62, 1, 11);
    g_assert_true(probe.level[11]);
    cfg_write(&f, PIIX3_ISA_DEVFN, 0x62, 1, 10);
    g_assert_false(probe.level[11]);
    g_assert_true(probe.level[10]);

    /* A shared wire stays asserted until the last device lets go. */
    pci_set_irq(&b->pci, true);
    pci_set_irq(&a->pci, false);
    g_assert_true(probe.level[10]);
    pci_set_irq(&b->pci, false);
    g_assert_false(probe.level[10]);

    /* INTx disable in the command register masks the device. */
    pci_set_irq(&a->pci, true);
    g_assert_true(probe.level[10]);
    cfg_write(&f, PCI_DEVFN(3, 0), PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
    g_assert_false(probe.level[10]);
    cfg_write(&f, PCI_DEVFN(3, 0), PCI_COMMAND, 2, 0);
    g_assert_true(probe.level[10]);

    /* Two PIRQs on one IRQ: the line is their OR. */
    cfg_write(&f, PIIX3_ISA_DEVFN, 0x61, 1, 10);
    pci_set_irq(&b->pci, true);
    pci_set_irq(&a->pci, false);
    g_assert_true(probe.level[10]);
    pci_set_irq(&b->pci, false);
    g_assert_false(probe.level[10]);

    /* IRQEN# off, or a reserved IRQ (2), routes nowhere. */
    pci_set_irq(&a->pci, true);
    cfg_write(&f, PIIX3_ISA_DEVFN, 0x62, 1, 0x8a);
    g_assert_false(probe.level[10]);
    cfg_write(&f, PIIX3_ISA_DEVFN, 0x62, 1, 0x02);
    g_assert_false(probe.level[2]);
    g_assert_cmphex(cfg_read(&f, PIIX3_ISA_DEVFN, 0x62, 1), ==, 0x02);

    /* A reset returns the routing to "none". */
    cfg_write(&f, PIIX3_ISA_DEVFN, 0x62, 1, 5);
    g_assert_true(probe.level[5]);
    piix3_reset(isa);
    g_assert_false(probe.level[5]);
    g_assert_cmphex(cfg_read(&f, PIIX3_ISA_DEVFN, 0x62, 1), ==, 0x80);

    piix3_destroy(isa);
    fixture_destroy(&f);
    g_free(a);
    g_free(b);
}

static void test_reset_control(void)
{
    struct fixture f;
    fixture_init(&f);
    struct line_probe probe = {0};
    struct irq_line reset = {.handler = probe_reset, .opaque = &probe};
    struct piix3 *isa = piix3_create(f.bus, f.io, NULL, &reset);

    /* SeaBIOS and Linux write SRST first, then SRST|RCPU. */
    ioport_write(f.io, 0xcf9, 1, 0x02);
    g_assert_cmpuint(probe.resets, ==, 0);
    g_assert_cmphex(ioport_read(f.io, 0xcf9, 1), ==, 0x02);
    ioport_write(f.io, 0xcf9, 1, 0x06);
    g_assert_cmpuint(probe.resets, ==, 1);
    /* Only a 0-to-1 transition of RCPU resets. */
    ioport_write(f.io, 0xcf9, 1, 0x06);
    g_assert_cmpuint(probe.resets, ==, 1);
    ioport_write(f.io, 0xcf9, 1, 0x00);
    ioport_write(f.io, 0xcf9, 1, 0x04);
    g_assert_cmpuint(probe.resets, ==, 2);
    /* CONFIG_ADDRESS at 0xcf8 is untouched by the byte at 0xcf9. */
    ioport_write(f.io, 0xcf8, 4, 0x80000800u);
    ioport_write(f.io, 0xcf9, 1, 0x00);
    g_assert_cmphex(ioport_read(f.io, 0xcf8, 4), ==, 0x80000800u);

    piix3_destroy(isa);
    fixture_destroy(&f);
}

static unsigned bmdma_reads;

static uint32_t bmdma_read(void *opaque, uint16_t port, unsigned size)
{
    (void)opaque;
    (void)size;
    bmdma_reads++;
    return port & 0xf;
}

static void test_ide_function(void)
{
    struct fixture f;
    fixture_init(&f);
    struct pci_device *ide = g_new0(struct pci_device, 1);
    piix3_ide_pci_init(ide, bmdma_read, test_io_write, NULL);
    g_assert_cmpint(pci_register_device(f.bus, ide), ==, 0);
    /* The slot is taken now. */
    g_assert_cmpint(pci_register_device(f.bus, ide), ==, -1);

    g_assert_cmphex(cfg_read(&f, PIIX3_IDE_DEVFN, PCI_VENDOR_ID, 4), ==, 0x70108086);
    g_assert_cmphex(cfg_read(&f, PIIX3_IDE_DEVFN, PCI_CLASS_PROG, 1), ==, 0x80);
    g_assert_cmphex(cfg_read(&f, PIIX3_IDE_DEVFN, PCI_CLASS_DEVICE, 2), ==, 0x0101);
    g_assert_cmphex(cfg_read(&f, PIIX3_IDE_DEVFN, PCI_INTERRUPT_PIN, 1), ==, 0);
    cfg_write(&f, PIIX3_IDE_DEVFN, 0x20, 4, 0xffffffff);
    g_assert_cmphex(cfg_read(&f, PIIX3_IDE_DEVFN, 0x20, 4), ==, 0xfffffff1);
    cfg_write(&f, PIIX3_IDE_DEVFN, 0x20, 4, 0xc000);
    cfg_write(&f, PIIX3_IDE_DEVFN, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MASTER);
    g_assert_cmphex(ioport_read(f.io, 0xc00a, 1), ==, 0xa);
    g_assert_cmpuint(bmdma_reads, ==, 1);
    cfg_write(&f, PIIX3_IDE_DEVFN, PIIX3_IDE_IDETIM_PRIMARY, 2, PIIX3_IDE_IDETIM_DECODE);
    g_assert_cmphex(cfg_read(&f, PIIX3_IDE_DEVFN, PIIX3_IDE_IDETIM_PRIMARY, 2), ==, 0x8000);

    fixture_destroy(&f);
    g_free(ide);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/pci/config-mechanism", test_config_mechanism);
    g_test_add_func("/pci/bar-sizing-and-mapping", test_bar_sizing_and_mapping);
    g_test_add_func("/pci/i440fx/pam-shadowing", test_pam_shadowing);
    g_test_add_func("/pci/i440fx/smram", test_smram);
    g_test_add_func("/pci/piix3/pirq-routing", test_pirq_routing);
    g_test_add_func("/pci/piix3/reset-control", test_reset_control);
    g_test_add_func("/pci/piix3/ide-function", test_ide_function);
    return g_test_run();
}
