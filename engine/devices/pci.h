/* The PCI bus: configuration mechanism #1 on ports 0xcf8/0xcfc-0xcff, the
 * devices behind it, their base address registers and their INTx pins.
 *
 * How a device joins the bus (the IDE controller, VGA and any later device):
 *
 *   1. Embed a struct pci_device in the device's state struct and call
 *      pci_device_init() with its slot/function, IDs and class code.
 *   2. Make device-specific registers writable by setting bits in
 *      dev->wmask (config[] bytes the guest may change) and give them their
 *      reset values in dev->config.
 *   3. Declare BARs with pci_register_io_bar(), pci_register_mem_bar() or
 *      pci_register_rom_bar(). The bus maps and unmaps them itself whenever
 *      the guest programs the BAR or the command register: I/O BARs by
 *      registering the given handlers on the port bus, memory and ROM BARs
 *      by moving the given memory region (base, enabled, memory_update()).
 *      Set dev->bar_mapped to learn where a BAR went.
 *   4. Optionally set dev->config_write to watch or veto config writes; it
 *      must call pci_default_config_write() for the standard behaviour.
 *   5. Call pci_register_device(). Raise and lower the interrupt pin named
 *      in config[PCI_INTERRUPT_PIN] with pci_set_irq().
 *   6. In the device's reset, call pci_device_reset(); in its state table,
 *      embed pci_device_vmstate with VMSTATE_STRUCT, and after restoring
 *      call pci_device_update_mappings() so the BARs follow the config.
 *
 * PCI Local Bus Specification 2.1, chapter 6 (configuration space) and
 * section 3.2.2.3.2 (configuration mechanism #1).
 */
#ifndef VIVARIUM_PCI_H
#define VIVARIUM_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "../ioport.h"
#include "../memory.h"
#include "../vmstate.h"

#define PCI_CONFIG_SPACE_SIZE 256
#define PCI_DEVFN(slot, fn)   ((uint8_t)(((slot) << 3) | (fn)))
#define PCI_SLOT(devfn)       ((devfn) >> 3)
#define PCI_FUNC(devfn)       ((devfn)&7)

/* Type 0 configuration header offsets. */
#define PCI_VENDOR_ID           0x00
#define PCI_DEVICE_ID           0x02
#define PCI_COMMAND             0x04
#define PCI_STATUS              0x06
#define PCI_REVISION_ID         0x08
#define PCI_CLASS_PROG          0x09
#define PCI_CLASS_DEVICE        0x0a
#define PCI_CACHE_LINE_SIZE     0x0c
#define PCI_LATENCY_TIMER       0x0d
#define PCI_HEADER_TYPE         0x0e
#define PCI_BASE_ADDRESS_0      0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID        0x2e
#define PCI_ROM_ADDRESS         0x30
#define PCI_INTERRUPT_LINE      0x3c
#define PCI_INTERRUPT_PIN       0x3d

#define PCI_COMMAND_IO           0x0001
#define PCI_COMMAND_MEMORY       0x0002
#define PCI_COMMAND_MASTER       0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400

#define PCI_STATUS_INTERRUPT 0x0008

#define PCI_HEADER_TYPE_MULTI_FUNCTION 0x80

#define PCI_BAR_SPACE_IO       0x01
#define PCI_BAR_MEM_PREFETCH   0x08
#define PCI_ROM_ADDRESS_ENABLE 0x01
#define PCI_NUM_BARS           6
#define PCI_ROM_SLOT           6 /* index of the expansion ROM in bars[] */

/* Interrupt pins, as in config[PCI_INTERRUPT_PIN]. */
enum pci_intx { PCI_INTX_NONE = 0, PCI_INTA = 1, PCI_INTB, PCI_INTC, PCI_INTD };

enum pci_bar_kind { PCI_BAR_UNUSED, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_ROM };

struct pci_bar {
    enum pci_bar_kind kind;
    uint32_t size; /* a power of two */
    /* Where the bar decodes now; derived from the config space. */
    bool mapped;
    uint32_t address;
    /* I/O BARs: claimed on the port bus while mapped. */
    ioport_read_fn io_read;
    ioport_write_fn io_write;
    void *io_opaque;
    /* Memory and ROM BARs: moved and enabled while mapped. */
    struct memory_region *region;
};

struct pci_bus;

struct pci_device {
    const char *name;
    uint8_t devfn;
    uint8_t config[PCI_CONFIG_SPACE_SIZE];
    uint8_t wmask[PCI_CONFIG_SPACE_SIZE];   /* bits the guest may write */
    uint8_t w1cmask[PCI_CONFIG_SPACE_SIZE]; /* bits a written one clears */
    struct pci_bar bars[PCI_NUM_BARS + 1];  /* six BARs and the ROM */
    bool irq_level;                         /* the device's INTx output */

    /* Optional hooks. config_read returns the value of an access of 1, 2
     * or 4 bytes (never crossing offset 256); without it the bytes of
     * config[] are returned. */
    uint32_t (*config_read)(struct pci_device *dev, unsigned offset, unsigned size);
    void (*config_write)(struct pci_device *dev, unsigned offset, unsigned size, uint32_t value);
    void (*bar_mapped)(struct pci_device *dev, int bar, bool mapped, uint32_t address);
    void *opaque;

    struct pci_bus *bus;
    /* The config bytes as they were at pci_device_init plus the device's own
     * defaults: what pci_device_reset() restores. Filled by
     * pci_register_device(). */
    uint8_t reset_config[PCI_CONFIG_SPACE_SIZE];
};

/* The state table of a struct pci_device, to embed in a device's own. */
extern const struct vmstate_desc pci_device_vmstate;

/* Creates the bus and claims 0xcf8 (dword accesses only; 0xcf9 is left to
 * the PIIX3 reset control register) and 0xcfc-0xcff. mem is where memory
 * BARs are mapped. */
struct pci_bus *pci_bus_create(struct ioport_bus *io, struct memory *mem);
void pci_bus_destroy(struct pci_bus *bus);
extern const struct vmstate_desc pci_bus_vmstate;
void pci_bus_reset(void *bus);

/* The PCI-to-ISA bridge routes the four PCI interrupt wires PIRQA-D; it
 * installs itself here. pirq is 0-3. */
typedef void (*pci_pirq_fn)(void *opaque, int pirq, bool level);
void pci_bus_set_pirq_router(struct pci_bus *bus, pci_pirq_fn set_pirq, void *opaque);
/* Which PIRQ wire a slot's pin is connected to: the i440FX/PIIX3 board
 * swizzle that SeaBIOS and QEMU also assume, (slot + pin - 2) mod 4. */
int pci_slot_pirq(uint8_t devfn, int pin);

/* Config space access as the host bridge performs it, also for tests.
 * Absent devices read as all ones. */
uint32_t pci_config_read(struct pci_bus *bus, uint8_t devfn, unsigned offset, unsigned size);
void pci_config_write(struct pci_bus *bus, uint8_t devfn, unsigned offset, unsigned size,
                      uint32_t value);

/* Sets identity and the standard writable bits (command, cache line size,
 * latency timer, interrupt line, status error bits) of a type 0 header.
 * class_code is class << 16 | subclass << 8 | programming interface. The
 * subsystem IDs are QEMU's (1af4:1100), which SeaBIOS checks on the host
 * bridge to decide it runs on QEMU-like hardware. */
void pci_device_init(struct pci_device *dev, const char *name, uint8_t devfn, uint16_t vendor,
                     uint16_t device, uint8_t revision, uint32_t class_code);

void pci_register_io_bar(struct pci_device *dev, int bar, uint32_t size, ioport_read_fn read,
                         ioport_write_fn write, void *opaque);
/* The region's size is the BAR's size; the bus owns its base and enabled
 * flag from now on and adds it to the memory map. The memory map works in
 * 4 KiB pages, so give memory BARs at least that size. */
void pci_register_mem_bar(struct pci_device *dev, int bar, struct memory_region *region,
                          bool prefetchable);
void pci_register_rom_bar(struct pci_device *dev, struct memory_region *region);

/* Returns 0, or -1 if the slot/function is taken. The device's config as it
 * is now becomes its reset state. */
int pci_register_device(struct pci_bus *bus, struct pci_device *dev);

/* The standard config write: honours wmask and w1cmask and remaps BARs and
 * the interrupt when the command register, a BAR or the ROM BAR changes. */
void pci_default_config_write(struct pci_device *dev, unsigned offset, unsigned size,
                              uint32_t value);

/* Back to the registered reset config; BARs unmapped, interrupt lowered. */
void pci_device_reset(struct pci_device *dev);
/* Makes the BAR mappings and interrupt follow config[] (after a restore). */
void pci_device_update_mappings(struct pci_device *dev);

/* Drives the device's INTx pin (the one in config[PCI_INTERRUPT_PIN]).
 * Level-triggered and shared: the wire is asserted while any device on it
 * asserts. Masked by PCI_COMMAND_INTX_DISABLE. */
void pci_set_irq(struct pci_device *dev, bool level);

static inline uint16_t pci_get_word(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t pci_get_long(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void pci_set_word(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void pci_set_long(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

#endif
