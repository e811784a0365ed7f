/* The PIIX3 PCI-to-ISA bridge.
 *
 * Intel 82371FB (PIIX) and 82371SB (PIIX3) PCI ISA IDE Xcelerator
 * datasheet, order 290550-002: section 2.2 (PCI-to-ISA bridge configuration
 * registers, with their reset values), PIRQRC[A:D] at 0x60-0x63, the reset
 * control register at I/O 0xcf9, and section 2.3 (IDE configuration
 * registers).
 *
 * PCI interrupts are level-triggered and shareable: each of the four PIRQ
 * wires is asserted while any device on it asserts, and PIRQRC steers it to
 * one ISA IRQ (bit 7 set: not routed). Several PIRQs may share an IRQ, so an
 * ISA line is the OR of every PIRQ routed to it.
 */
#include "piix3.h"

#include <string.h>

#include <glib.h>

#define PIIX3_PIRQRC        0x60
#define PIIX3_PIRQRC_NONE   0x80 /* IRQEN# set: the PIRQ reaches no IRQ */
#define PIIX3_PIRQRC_IRQ    0x0f
#define PIIX3_NUM_PIRQS     4
#define PIIX3_RESET_CONTROL 0xcf9

#define RC_SYSTEM_RESET 0x02 /* SRST: a full reset rather than the CPU's only */
#define RC_RESET_CPU    0x04 /* RCPU: a 0-to-1 transition starts the reset */

/* IRQ0, 1, 2, 8 and 13 are reserved in PIRQRC and route nowhere. */
#define PIIX3_ROUTABLE_IRQS 0xdef8u

struct piix3 {
    struct pci_device pci;
    const struct irq_line *isa_irqs;
    const struct irq_line *reset_line;
    struct ioport_bus *io;
    bool pirq_level[PIIX3_NUM_PIRQS];
    uint16_t isa_levels; /* what the PIRQ router drives on each ISA IRQ */
    uint8_t reset_control;
};

static const struct vmstate_field piix3_fields[] = {
    VMSTATE_STRUCT(struct piix3, pci, pci_device_vmstate),
    VMSTATE_BOOL_ARRAY(struct piix3, pirq_level),
    VMSTATE_U16(struct piix3, isa_levels),
    VMSTATE_U8(struct piix3, reset_control),
    VMSTATE_END,
};

const struct vmstate_desc piix3_vmstate = {
    .name = "piix3",
    .version = 1,
    .fields = piix3_fields,
};

static void drive_isa_irq(struct piix3 *isa, int irq, bool level)
{
    if (isa->isa_irqs)
        irq_set(&isa->isa_irqs[irq], level);
}

/* Recomputes every ISA IRQ the router drives and signals the changes. */
static void route_pirqs(struct piix3 *isa, bool force)
{
    uint16_t levels = 0;
    for (int pirq = 0; pirq < PIIX3_NUM_PIRQS; pirq++) {
        uint8_t route = isa->pci.config[PIIX3_PIRQRC + pirq];
        int irq = route & PIIX3_PIRQRC_IRQ;
        if (isa->pirq_level[pirq] && !(route & PIIX3_PIRQRC_NONE) &&
            (PIIX3_ROUTABLE_IRQS >> irq & 1))
            levels |= (uint16_t)(1u << irq);
    }
    uint16_t changed = force ? 0xffff : levels ^ isa->isa_levels;
    isa->isa_levels = levels;
    for (int irq = 0; irq < 16; irq++) {
        if (changed >> irq & 1)
            drive_isa_irq(isa, irq, levels >> irq & 1);
    }
}

static void piix3_set_pirq(void *opaque, int pirq, bool level)
{
    struct piix3 *isa = opaque;
    isa->pirq_level[pirq] = level;
    route_pirqs(isa, false);
}

static void piix3_config_write(struct pci_device *dev, unsigned offset, unsigned size,
                               uint32_t value)
{
    struct piix3 *isa = dev->opaque;
    pci_default_config_write(dev, offset, size, value);
    if (offset < PIIX3_PIRQRC + PIIX3_NUM_PIRQS && offset + size > PIIX3_PIRQRC)
        route_pirqs(isa, false);
}

static uint32_t reset_control_read(void *opaque, uint16_t port, unsigned size)
{
    struct piix3 *isa = opaque;
    (void)port;
    return size == 1 ? isa->reset_control : 0xffffffffu >> (32 - 8 * size);
}

static void reset_control_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct piix3 *isa = opaque;
    (void)port;
    if (size != 1)
        return;
    uint8_t old = isa->reset_control;
    isa->reset_control = (uint8_t)(value & (RC_SYSTEM_RESET | RC_RESET_CPU));
    /* Both a CPU-only and a full reset restart the machine here: nothing
     * in it survives one but not the other. */
    if (!(old & RC_RESET_CPU) && (value & RC_RESET_CPU))
        irq_pulse(isa->reset_line);
}

struct piix3 *piix3_create(struct pci_bus *bus, struct ioport_bus *io,
                           const struct irq_line *isa_irqs, const struct irq_line *reset)
{
    struct piix3 *isa = g_new0(struct piix3, 1);
    isa->isa_irqs = isa_irqs;
    isa->reset_line = reset;
    isa->io = io;

    struct pci_device *dev = &isa->pci;
    pci_device_init(dev, "piix3", PIIX3_ISA_DEVFN, 0x8086, 0x7000, 0x00, 0x060100);
    dev->opaque = isa;
    dev->config_write = piix3_config_write;
    dev->config[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_MULTI_FUNCTION;
    /* Reset values from the datasheet's register table. */
    pci_set_word(dev->config + PCI_COMMAND, 0x0007);
    pci_set_word(dev->config + PCI_STATUS, 0x0200);
    dev->config[0x4c] = 0x4d; /* IORT: ISA I/O recovery timer */
    dev->config[0x4e] = 0x03; /* XBCS: X-bus chip select, BIOS decode */
    for (int i = 0; i < PIIX3_NUM_PIRQS; i++)
        dev->config[PIIX3_PIRQRC + i] = PIIX3_PIRQRC_NONE;
    dev->config[0x69] = 0x02; /* TOM: top of memory */
    dev->config[0x70] = 0x80; /* MBIRQ0: motherboard IRQ routing, disabled */
    dev->config[0x71] = 0x80;
    dev->config[0x76] = 0x0c; /* MBDMA: motherboard DMA, disabled */
    dev->config[0x77] = 0x0c;
    dev->config[0x78] = 0x02; /* PCSC: programmable chip select */
    dev->config[0xa0] = 0x08; /* SMICNTL */
    dev->config[0xa8] = 0x0f; /* FTMR: fast-off timer */

    dev->wmask[0x4c] = 0xff;
    dev->wmask[0x4e] = 0xff;
    dev->wmask[0x4f] = 0xff;
    memset(dev->wmask + PIIX3_PIRQRC, PIIX3_PIRQRC_NONE | PIIX3_PIRQRC_IRQ, PIIX3_NUM_PIRQS);
    memset(dev->wmask + 0x69, 0xff, 3);
    memset(dev->wmask + 0x70, 0xff, 2);
    memset(dev->wmask + 0x76, 0xff, 4);
    dev->wmask[0x80] = 0xff;
    dev->wmask[0x82] = 0xff;
    memset(dev->wmask + 0xa0, 0xff, 0xb0 - 0xa0);

    pci_register_device(bus, dev);
    pci_bus_set_pirq_router(bus, piix3_set_pirq, isa);
    ioport_register(io, PIIX3_RESET_CONTROL, 1, "piix3-reset-control", reset_control_read,
                    reset_control_write, isa);
    return isa;
}

void piix3_destroy(struct piix3 *isa)
{
    if (!isa)
        return;
    ioport_unregister(isa->io, PIIX3_RESET_CONTROL, 1);
    g_free(isa);
}

void piix3_reset(void *opaque)
{
    struct piix3 *isa = opaque;
    pci_device_reset(&isa->pci);
    isa->reset_control = 0;
    /* The PIRQ wires keep whatever the devices drive; only the routing
     * went back to "nowhere". */
    route_pirqs(isa, false);
}

void piix3_post_load(void *opaque)
{
    struct piix3 *isa = opaque;
    route_pirqs(isa, true);
}

void piix3_ide_pci_init(struct pci_device *dev, ioport_read_fn bmdma_read,
                        ioport_write_fn bmdma_write, void *opaque)
{
    pci_device_init(dev, "piix3-ide", PIIX3_IDE_DEVFN, 0x8086, 0x7010, 0x00, 0x010180);
    pci_set_word(dev->config + PCI_STATUS, 0x0280);
    /* IDETIM primary and secondary, SIDETIM: timing and decode enables. */
    memset(dev->wmask + PIIX3_IDE_IDETIM_PRIMARY, 0xff, 5);
    pci_register_io_bar(dev, PIIX3_IDE_BMDMA_BAR, PIIX3_IDE_BMDMA_SIZE, bmdma_read, bmdma_write,
                        opaque);
}
