/* The i440FX host bridge.
 *
 * Intel 82441FX PCI and Memory Controller (PMC) datasheet, order 290549-001:
 * section 3.2 (configuration registers), PAM0-PAM6 at 0x59-0x5f and SMRAM
 * at 0x72.
 *
 * Each PAM register holds two nibbles; each nibble governs one segment of
 * the upper memory area with RE (bit 0: reads reach DRAM) and WE (bit 1:
 * writes reach DRAM). PAM0's high nibble covers 0xf0000-0xfffff (64 KiB);
 * PAM1-PAM6 cover 0xc0000-0xeffff in 16 KiB pieces, low nibble first.
 * Accesses that do not reach DRAM go to PCI, where the BIOS ROM answers at
 * 0xe0000-0xfffff. SeaBIOS (src/fw/shadow.c) copies itself into RAM with
 * every segment at RE|WE (0x33, 0x30 for PAM0), then write-protects with RE
 * only (0x11, 0x10), so the shadow copy runs from RAM.
 */
#include "i440fx.h"

#include <string.h>

#include <glib.h>

#define I440FX_PAM0     0x59
#define I440FX_PAM_LAST 0x5f
#define I440FX_DRB0     0x60
#define I440FX_SMRAM    0x72

#define PAM_RE 0x1
#define PAM_WE 0x2

#define SMRAM_C_BASE_SEG 0x07 /* hardwired to 010: the window is at 0xa0000 */
#define SMRAM_G_SMRAME   0x08
#define SMRAM_D_LCK      0x10
#define SMRAM_D_CLS      0x20
#define SMRAM_D_OPEN     0x40
#define SMRAM_DEFAULT    0x02

#define PAM_SEGMENTS 13 /* twelve of 16 KiB at 0xc0000-0xeffff, one of 64 KiB at 0xf0000 */
#define SMRAM_BASE   0xa0000
#define SMRAM_SIZE   0x20000

struct pam_segment {
    struct i440fx *host;
    unsigned mode; /* RE/WE as last applied */
    struct memory_region window;
};

struct i440fx {
    struct pci_device pci;
    struct memory *mem;
    struct pam_segment pam[PAM_SEGMENTS];
    struct memory_region smram;
};

static const struct vmstate_field i440fx_fields[] = {
    VMSTATE_STRUCT(struct i440fx, pci, pci_device_vmstate),
    VMSTATE_END,
};

const struct vmstate_desc i440fx_vmstate = {
    .name = "i440fx",
    .version = 1,
    .fields = i440fx_fields,
};

static uint32_t pam_segment_base(int seg)
{
    return seg < 12 ? 0xc0000 + 0x4000 * (uint32_t)seg : 0xf0000;
}

static uint32_t pam_segment_size(int seg)
{
    return seg < 12 ? 0x4000 : 0x10000;
}

/* RE/WE bits of a segment from the PAM registers. */
static unsigned pam_segment_mode(const struct i440fx *host, int seg)
{
    if (seg == 12)
        return (host->pci.config[I440FX_PAM0] >> 4) & 3;
    uint8_t reg = host->pci.config[I440FX_PAM0 + 1 + seg / 2];
    return (seg & 1 ? reg >> 4 : reg) & 3;
}

/* What answers at addr with the PAM window out of the way: the
 * highest-priority enabled region below the windows (the BIOS ROM, a PCI
 * device, or RAM where nothing else is mapped). */
static struct memory_region *region_beneath(struct i440fx *host, uint64_t addr)
{
    struct memory_region *best = NULL;
    for (unsigned i = 0; i < host->mem->nr_regions; i++) {
        struct memory_region *r = host->mem->regions[i];
        if (!r->enabled || r->priority >= 2 || addr < r->base || addr >= r->base + r->size)
            continue;
        if (!best || r->priority > best->priority)
            best = r;
    }
    return best;
}

/* A write-only segment (WE without RE) is the one mode a plain RAM or ROM
 * region cannot express: reads go to PCI (what lies beneath), writes to
 * DRAM. Nothing SeaBIOS does needs it, so it may be slow. */
static uint32_t pam_write_only_read(void *opaque, uint64_t offset, unsigned size)
{
    struct pam_segment *seg = opaque;
    uint64_t addr = seg->window.base + offset;
    uint32_t value = 0;
    for (unsigned i = 0; i < size; i++) {
        struct memory_region *r = region_beneath(seg->host, addr + i);
        uint32_t byte = 0xff;
        if (r && r->host)
            byte = r->host[addr + i - r->base];
        else if (r && r->ops)
            byte = r->ops->read(r->opaque, addr + i - r->base, 1) & 0xff;
        value |= byte << (8 * i);
    }
    return value;
}

static void pam_write_only_write(void *opaque, uint64_t offset, unsigned size, uint32_t value)
{
    struct pam_segment *seg = opaque;
    uint64_t addr = seg->window.base + offset;
    for (unsigned i = 0; i < size; i++)
        seg->host->mem->ram[addr + i] = (uint8_t)(value >> (8 * i));
    memory_note_write(seg->host->mem, addr, size);
}

static const struct mmio_ops pam_write_only_ops = {
    .read = pam_write_only_read,
    .write = pam_write_only_write,
};

/* Points each window at what its RE/WE bits select; returns whether the
 * memory map changed. */
static bool pam_apply(struct i440fx *host)
{
    bool changed = false;
    for (int i = 0; i < PAM_SEGMENTS; i++) {
        struct pam_segment *seg = &host->pam[i];
        unsigned mode = pam_segment_mode(host, i);
        if (mode == seg->mode && seg->window.enabled == (mode != 0))
            continue;
        struct memory_region *w = &seg->window;
        seg->mode = mode;
        w->enabled = mode != 0;
        if (mode & PAM_RE) {
            /* RE|WE: plain RAM. RE alone: the same RAM, read-only. */
            w->host = host->mem->ram + w->base;
            w->readonly = !(mode & PAM_WE);
            w->ops = NULL;
        } else if (mode == PAM_WE) {
            w->host = NULL;
            w->readonly = false;
            w->ops = &pam_write_only_ops;
        }
        /* Neither: the window is disabled and what lies beneath shows:
         * the BIOS ROM at 0xe0000-0xfffff. At 0xc0000-0xdffff, where the
         * PCI side has nothing, the RAM beneath still shows instead of
         * all ones; SeaBIOS never reads there with the window off. */
        changed = true;
    }
    return changed;
}

/* With D_OPEN, the RAM behind the VGA window at 0xa0000-0xbffff becomes
 * visible so the firmware can load an SMM handler there. */
static bool smram_apply(struct i440fx *host)
{
    bool open = host->pci.config[I440FX_SMRAM] & SMRAM_D_OPEN;
    if (host->smram.enabled == open)
        return false;
    host->smram.enabled = open;
    return true;
}

static void i440fx_apply(struct i440fx *host)
{
    bool changed = pam_apply(host);
    changed |= smram_apply(host);
    if (changed)
        memory_update(host->mem);
}

/* Once D_LCK is set, D_OPEN is forced off and D_LCK stays set until a
 * reset; C_BASE_SEG never changes. */
static void smram_write(struct i440fx *host, uint8_t value)
{
    uint8_t old = host->pci.config[I440FX_SMRAM];
    uint8_t writable = SMRAM_D_OPEN | SMRAM_D_CLS | SMRAM_D_LCK | SMRAM_G_SMRAME;
    if (old & SMRAM_D_LCK)
        writable = SMRAM_D_CLS;
    uint8_t next = (uint8_t)((old & ~writable) | (value & writable));
    next = (uint8_t)((next & ~SMRAM_C_BASE_SEG) | SMRAM_DEFAULT);
    if (next & SMRAM_D_LCK)
        next &= (uint8_t)~SMRAM_D_OPEN;
    host->pci.config[I440FX_SMRAM] = next;
}

static void i440fx_config_write(struct pci_device *dev, unsigned offset, unsigned size,
                                uint32_t value)
{
    struct i440fx *host = dev->opaque;
    pci_default_config_write(dev, offset, size, value);
    if (offset <= I440FX_SMRAM && offset + size > I440FX_SMRAM)
        smram_write(host, (uint8_t)(value >> (8 * (I440FX_SMRAM - offset))));
    if (offset <= I440FX_PAM_LAST && offset + size > I440FX_PAM0)
        i440fx_apply(host);
    else if (offset <= I440FX_SMRAM && offset + size > I440FX_SMRAM)
        i440fx_apply(host);
}

struct i440fx *i440fx_create(struct pci_bus *bus, struct memory *mem)
{
    /* The windows alias the RAM below 1 MiB, which every PC has. */
    g_return_val_if_fail(mem->ram_size >= 0x100000, NULL);
    struct i440fx *host = g_new0(struct i440fx, 1);
    host->mem = mem;

    struct pci_device *dev = &host->pci;
    /* Revision 2 and class 06.00.00 (host bridge), as QEMU's i440FX. */
    pci_device_init(dev, "i440fx", PCI_DEVFN(0, 0), 0x8086, 0x1237, 0x02, 0x060000);
    dev->opaque = host;
    dev->config_write = i440fx_config_write;
    /* The host bridge always decodes memory and masters the bus. */
    pci_set_word(dev->config + PCI_COMMAND, 0x0006);
    pci_set_word(dev->config + PCI_STATUS, 0x0280); /* fast back-to-back, medium DEVSEL */
    /* Memory configuration registers: PMC, DRAM control and timing, the
     * PAM registers (reserved nibble of PAM0 read-only), the DRAM row
     * boundaries, fixed DRAM hole, MTT and CLT. */
    memset(dev->wmask + 0x50, 0xff, 0x59 - 0x50);
    dev->wmask[I440FX_PAM0] = 0x30;
    memset(dev->wmask + I440FX_PAM0 + 1, 0x33, I440FX_PAM_LAST - I440FX_PAM0);
    memset(dev->wmask + I440FX_DRB0, 0xff, 8);
    dev->wmask[0x68] = 0xff;
    dev->wmask[0x70] = 0xff;
    dev->wmask[0x71] = 0xff;
    dev->config[I440FX_SMRAM] = SMRAM_DEFAULT; /* written through smram_write() */

    for (int i = 0; i < PAM_SEGMENTS; i++) {
        struct pam_segment *seg = &host->pam[i];
        seg->host = host;
        seg->window = (struct memory_region){
            .name = "pam",
            .base = pam_segment_base(i),
            .size = pam_segment_size(i),
            .priority = 2,
            .enabled = false,
            .opaque = seg,
        };
        memory_add_region(mem, &seg->window);
    }
    host->smram = (struct memory_region){
        .name = "smram",
        .base = SMRAM_BASE,
        .size = SMRAM_SIZE,
        .priority = 2,
        .enabled = false,
        .host = mem->ram + SMRAM_BASE,
    };
    memory_add_region(mem, &host->smram);

    pci_register_device(bus, dev);
    return host;
}

void i440fx_destroy(struct i440fx *host)
{
    g_free(host);
}

void i440fx_reset(void *opaque)
{
    struct i440fx *host = opaque;
    pci_device_reset(&host->pci);
    i440fx_apply(host);
}

void i440fx_post_load(void *opaque)
{
    struct i440fx *host = opaque;
    pci_device_update_mappings(&host->pci);
    for (int i = 0; i < PAM_SEGMENTS; i++)
        host->pam[i].mode = ~0u;
    i440fx_apply(host);
}
