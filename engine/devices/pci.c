/* The PCI bus behind configuration mechanism #1.
 *
 * PCI Local Bus Specification 2.1: section 3.2.2.3.2 (CONFIG_ADDRESS at
 * 0xcf8, CONFIG_DATA at 0xcfc), section 6.2.5 (base address registers and
 * how software sizes them by writing all ones), section 6.3 (expansion ROM
 * base address register).
 */
#include "pci.h"

#include <stdio.h>
#include <string.h>

#include <glib.h>

#define PCI_CONFIG_ADDRESS_PORT 0xcf8
#define PCI_CONFIG_DATA_PORT    0xcfc
#define PCI_CONFIG_ENABLE       0x80000000u
/* Bits 30:24 are reserved and bits 1:0 read as zero. */
#define PCI_CONFIG_ADDRESS_MASK 0x80fffffcu

#define PCI_NUM_PIRQS 4

struct pci_bus {
    struct ioport_bus *io;
    struct memory *mem;
    struct pci_device *devices[256]; /* by devfn; bus 0 only */
    uint32_t config_address;
    /* How many devices assert each PIRQ wire. */
    unsigned pirq_count[PCI_NUM_PIRQS];
    pci_pirq_fn set_pirq;
    void *pirq_opaque;
};

static const struct vmstate_field pci_device_fields[] = {
    VMSTATE_U8_ARRAY(struct pci_device, config),
    VMSTATE_BOOL(struct pci_device, irq_level),
    VMSTATE_END,
};

const struct vmstate_desc pci_device_vmstate = {
    .name = "pci-device",
    .version = 1,
    .fields = pci_device_fields,
};

static const struct vmstate_field pci_bus_fields[] = {
    VMSTATE_U32(struct pci_bus, config_address),
    VMSTATE_END,
};

const struct vmstate_desc pci_bus_vmstate = {
    .name = "pci-bus",
    .version = 1,
    .fields = pci_bus_fields,
};

static uint32_t size_mask(unsigned size)
{
    return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

/* ---- interrupts ---- */

int pci_slot_pirq(uint8_t devfn, int pin)
{
    return (PCI_SLOT(devfn) + pin - 2) & 3;
}

static bool irq_output(const struct pci_device *dev)
{
    uint16_t command = pci_get_word(dev->config + PCI_COMMAND);
    return dev->irq_level && !(command & PCI_COMMAND_INTX_DISABLE);
}

static void pirq_change(struct pci_bus *bus, int pirq, int delta)
{
    unsigned before = bus->pirq_count[pirq];
    if (delta < 0 && before == 0)
        return;
    bus->pirq_count[pirq] = before + delta;
    bool was = before > 0, now = bus->pirq_count[pirq] > 0;
    if (was != now && bus->set_pirq)
        bus->set_pirq(bus->pirq_opaque, pirq, now);
}

/* Applies a change of the device's effective output (level or mask). */
static void update_irq_output(struct pci_device *dev, bool old_output)
{
    int pin = dev->config[PCI_INTERRUPT_PIN];
    bool new_output = irq_output(dev);
    if (!dev->bus || pin < PCI_INTA || pin > PCI_INTD || old_output == new_output)
        return;
    pirq_change(dev->bus, pci_slot_pirq(dev->devfn, pin), new_output ? 1 : -1);
}

void pci_set_irq(struct pci_device *dev, bool level)
{
    bool old_output = irq_output(dev);
    dev->irq_level = level;
    /* The status bit shows the device's own request, masked or not. */
    uint16_t status = pci_get_word(dev->config + PCI_STATUS);
    status = level ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT;
    pci_set_word(dev->config + PCI_STATUS, status);
    update_irq_output(dev, old_output);
}

void pci_bus_set_pirq_router(struct pci_bus *bus, pci_pirq_fn set_pirq, void *opaque)
{
    bus->set_pirq = set_pirq;
    bus->pirq_opaque = opaque;
}

/* ---- base address registers ---- */

static unsigned bar_offset(int bar)
{
    return bar == PCI_ROM_SLOT ? PCI_ROM_ADDRESS : PCI_BASE_ADDRESS_0 + 4 * (unsigned)bar;
}

/* Where the BAR decodes according to config[], or false if it does not
 * decode at all: its space is disabled in the command register, it is zero
 * (unprogrammed), or it runs past the top of its space (as while software
 * is sizing it with all ones). */
static bool bar_decode(const struct pci_device *dev, int bar, uint32_t *address)
{
    const struct pci_bar *b = &dev->bars[bar];
    uint16_t command = pci_get_word(dev->config + PCI_COMMAND);
    uint32_t value = pci_get_long(dev->config + bar_offset(bar));
    uint64_t limit;
    uint32_t addr;
    switch (b->kind) {
    case PCI_BAR_IO:
        if (!(command & PCI_COMMAND_IO))
            return false;
        addr = value & ~(b->size - 1) & ~3u;
        limit = 0x10000;
        break;
    case PCI_BAR_MEM32:
        if (!(command & PCI_COMMAND_MEMORY))
            return false;
        addr = value & ~(b->size - 1) & ~0xfu;
        limit = 0xffffffffull;
        break;
    case PCI_BAR_ROM:
        if (!(command & PCI_COMMAND_MEMORY) || !(value & PCI_ROM_ADDRESS_ENABLE))
            return false;
        addr = value & ~(b->size - 1) & ~0x7ffu;
        limit = 0xffffffffull;
        break;
    default:
        return false;
    }
    if (addr == 0 || (uint64_t)addr + b->size > limit)
        return false;
    *address = addr;
    return true;
}

static void bar_unmap(struct pci_device *dev, struct pci_bar *b, bool *map_changed)
{
    if (!b->mapped)
        return;
    if (b->kind == PCI_BAR_IO && (b->io_read || b->io_write)) {
        ioport_unregister(dev->bus->io, (uint16_t)b->address, b->size);
    } else if (b->region) {
        b->region->enabled = false;
        *map_changed = true;
    }
    b->mapped = false;
}

static void bar_map(struct pci_device *dev, struct pci_bar *b, uint32_t address, bool *map_changed)
{
    if (b->kind == PCI_BAR_IO && (b->io_read || b->io_write)) {
        /* Two devices programmed onto the same ports: the later one does
         * not decode, rather than stealing the ports. */
        if (ioport_register(dev->bus->io, (uint16_t)address, b->size, dev->name, b->io_read,
                            b->io_write, b->io_opaque) < 0) {
            fprintf(stderr, "pci: %s: I/O BAR at %#x overlaps claimed ports; not mapped\n",
                    dev->name, address);
            return;
        }
    } else if (b->region) {
        b->region->base = address;
        b->region->enabled = true;
        *map_changed = true;
    }
    b->mapped = true;
    b->address = address;
}

void pci_device_update_mappings(struct pci_device *dev)
{
    if (!dev->bus)
        return;
    bool map_changed = false;
    for (int i = 0; i <= PCI_ROM_SLOT; i++) {
        struct pci_bar *b = &dev->bars[i];
        if (b->kind == PCI_BAR_UNUSED)
            continue;
        uint32_t address = 0;
        bool decode = bar_decode(dev, i, &address);
        if (decode == b->mapped && (!decode || address == b->address))
            continue;
        bar_unmap(dev, b, &map_changed);
        if (decode)
            bar_map(dev, b, address, &map_changed);
        if (dev->bar_mapped)
            dev->bar_mapped(dev, i, b->mapped, b->mapped ? b->address : 0);
    }
    if (map_changed)
        memory_update(dev->bus->mem);
}

static void bar_declare(struct pci_device *dev, int bar, enum pci_bar_kind kind, uint32_t size,
                        uint32_t type_bits)
{
    g_assert(bar >= 0 && bar <= PCI_ROM_SLOT);
    g_assert(size >= (kind == PCI_BAR_IO ? 4u : 16u) && (size & (size - 1)) == 0);
    struct pci_bar *b = &dev->bars[bar];
    b->kind = kind;
    b->size = size;
    unsigned off = bar_offset(bar);
    pci_set_long(dev->config + off, type_bits);
    /* Address bits below the size read back as zero: that is what lets
     * software size the BAR by writing all ones. */
    uint32_t wmask;
    if (kind == PCI_BAR_IO)
        wmask = ~(size - 1) & ~3u;
    else if (kind == PCI_BAR_ROM)
        wmask = (~(size - 1) & ~0x7ffu) | PCI_ROM_ADDRESS_ENABLE;
    else
        wmask = ~(size - 1) & ~0xfu;
    pci_set_long(dev->wmask + off, wmask);
}

void pci_register_io_bar(struct pci_device *dev, int bar, uint32_t size, ioport_read_fn read,
                         ioport_write_fn write, void *opaque)
{
    g_assert(bar < PCI_NUM_BARS);
    bar_declare(dev, bar, PCI_BAR_IO, size, PCI_BAR_SPACE_IO);
    dev->bars[bar].io_read = read;
    dev->bars[bar].io_write = write;
    dev->bars[bar].io_opaque = opaque;
}

void pci_register_mem_bar(struct pci_device *dev, int bar, struct memory_region *region,
                          bool prefetchable)
{
    g_assert(bar < PCI_NUM_BARS);
    bar_declare(dev, bar, PCI_BAR_MEM32, (uint32_t)region->size,
                prefetchable ? PCI_BAR_MEM_PREFETCH : 0);
    dev->bars[bar].region = region;
}

void pci_register_rom_bar(struct pci_device *dev, struct memory_region *region)
{
    bar_declare(dev, PCI_ROM_SLOT, PCI_BAR_ROM, (uint32_t)region->size, 0);
    dev->bars[PCI_ROM_SLOT].region = region;
}

/* ---- config space ---- */

void pci_device_init(struct pci_device *dev, const char *name, uint8_t devfn, uint16_t vendor,
                     uint16_t device, uint8_t revision, uint32_t class_code)
{
    memset(dev, 0, sizeof(*dev));
    dev->name = name;
    dev->devfn = devfn;
    pci_set_word(dev->config + PCI_VENDOR_ID, vendor);
    pci_set_word(dev->config + PCI_DEVICE_ID, device);
    dev->config[PCI_REVISION_ID] = revision;
    dev->config[PCI_CLASS_PROG] = (uint8_t)class_code;
    pci_set_word(dev->config + PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
    pci_set_word(dev->config + PCI_SUBSYSTEM_VENDOR_ID, 0x1af4);
    pci_set_word(dev->config + PCI_SUBSYSTEM_ID, 0x1100);

    /* I/O, memory, bus master, parity and SERR enables, INTx disable. */
    pci_set_word(dev->wmask + PCI_COMMAND, 0x0547);
    dev->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
    dev->wmask[PCI_LATENCY_TIMER] = 0xff;
    dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
    /* The error bits of the status register are cleared by writing one. */
    pci_set_word(dev->w1cmask + PCI_STATUS, 0xf900);
}

int pci_register_device(struct pci_bus *bus, struct pci_device *dev)
{
    if (bus->devices[dev->devfn])
        return -1;
    bus->devices[dev->devfn] = dev;
    dev->bus = bus;
    memcpy(dev->reset_config, dev->config, sizeof(dev->config));
    for (int i = 0; i <= PCI_ROM_SLOT; i++) {
        struct pci_bar *b = &dev->bars[i];
        if (b->region) {
            b->region->enabled = false;
            memory_add_region(bus->mem, b->region);
        }
    }
    return 0;
}

void pci_device_reset(struct pci_device *dev)
{
    pci_set_irq(dev, false);
    memcpy(dev->config, dev->reset_config, sizeof(dev->config));
    pci_device_update_mappings(dev);
}

static bool ranges_overlap(unsigned a, unsigned alen, unsigned b, unsigned blen)
{
    return a < b + blen && b < a + alen;
}

void pci_default_config_write(struct pci_device *dev, unsigned offset, unsigned size,
                              uint32_t value)
{
    bool old_output = irq_output(dev);
    for (unsigned i = 0; i < size && offset + i < PCI_CONFIG_SPACE_SIZE; i++) {
        unsigned o = offset + i;
        uint8_t byte = (uint8_t)(value >> (8 * i));
        dev->config[o] = (uint8_t)((dev->config[o] & ~dev->wmask[o]) | (byte & dev->wmask[o]));
        dev->config[o] &= (uint8_t) ~(byte & dev->w1cmask[o]);
    }
    if (ranges_overlap(offset, size, PCI_COMMAND, 2)) {
        update_irq_output(dev, old_output);
        pci_device_update_mappings(dev);
    } else if (ranges_overlap(offset, size, PCI_BASE_ADDRESS_0, 4 * PCI_NUM_BARS) ||
               ranges_overlap(offset, size, PCI_ROM_ADDRESS, 4)) {
        pci_device_update_mappings(dev);
    }
}

uint32_t pci_config_read(struct pci_bus *bus, uint8_t devfn, unsigned offset, unsigned size)
{
    struct pci_device *dev = bus->devices[devfn];
    if (!dev || offset >= PCI_CONFIG_SPACE_SIZE)
        return size_mask(size);
    if (offset + size > PCI_CONFIG_SPACE_SIZE)
        size = PCI_CONFIG_SPACE_SIZE - offset;
    if (dev->config_read)
        return dev->config_read(dev, offset, size);
    uint32_t value = 0;
    for (unsigned i = 0; i < size; i++)
        value |= (uint32_t)dev->config[offset + i] << (8 * i);
    return value;
}

void pci_config_write(struct pci_bus *bus, uint8_t devfn, unsigned offset, unsigned size,
                      uint32_t value)
{
    struct pci_device *dev = bus->devices[devfn];
    if (!dev || offset >= PCI_CONFIG_SPACE_SIZE)
        return;
    if (offset + size > PCI_CONFIG_SPACE_SIZE)
        size = PCI_CONFIG_SPACE_SIZE - offset;
    value &= size_mask(size);
    if (dev->config_write)
        dev->config_write(dev, offset, size, value);
    else
        pci_default_config_write(dev, offset, size, value);
}

/* ---- configuration mechanism #1 ---- */

/* The device and register the current CONFIG_ADDRESS selects, or false if
 * configuration cycles are disabled or target another bus (there is none,
 * so nothing answers). */
static bool config_target(struct pci_bus *bus, uint16_t port, uint8_t *devfn, unsigned *offset)
{
    uint32_t addr = bus->config_address;
    if (!(addr & PCI_CONFIG_ENABLE) || ((addr >> 16) & 0xff) != 0)
        return false;
    *devfn = (uint8_t)(addr >> 8);
    *offset = (addr & 0xfc) + (port - PCI_CONFIG_DATA_PORT);
    return true;
}

static uint32_t config_data_read(void *opaque, uint16_t port, unsigned size)
{
    struct pci_bus *bus = opaque;
    uint8_t devfn;
    unsigned offset;
    if (!config_target(bus, port, &devfn, &offset))
        return size_mask(size);
    return pci_config_read(bus, devfn, offset, size);
}

static void config_data_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct pci_bus *bus = opaque;
    uint8_t devfn;
    unsigned offset;
    if (config_target(bus, port, &devfn, &offset))
        pci_config_write(bus, devfn, offset, size, value);
}

/* Only a dword access reaches CONFIG_ADDRESS; narrower ones pass through
 * to other devices on a real chipset and are ignored here. */
static uint32_t config_address_read(void *opaque, uint16_t port, unsigned size)
{
    struct pci_bus *bus = opaque;
    (void)port;
    return size == 4 ? bus->config_address : size_mask(size);
}

static void config_address_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct pci_bus *bus = opaque;
    (void)port;
    if (size == 4)
        bus->config_address = value & PCI_CONFIG_ADDRESS_MASK;
}

struct pci_bus *pci_bus_create(struct ioport_bus *io, struct memory *mem)
{
    struct pci_bus *bus = g_new0(struct pci_bus, 1);
    bus->io = io;
    bus->mem = mem;
    ioport_register(io, PCI_CONFIG_ADDRESS_PORT, 1, "pci-config-address", config_address_read,
                    config_address_write, bus);
    ioport_register(io, PCI_CONFIG_DATA_PORT, 4, "pci-config-data", config_data_read,
                    config_data_write, bus);
    return bus;
}

void pci_bus_destroy(struct pci_bus *bus)
{
    if (!bus)
        return;
    ioport_unregister(bus->io, PCI_CONFIG_ADDRESS_PORT, 1);
    ioport_unregister(bus->io, PCI_CONFIG_DATA_PORT, 4);
    g_free(bus);
}

void pci_bus_reset(void *opaque)
{
    struct pci_bus *bus = opaque;
    bus->config_address = 0;
}
