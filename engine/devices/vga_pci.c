/* The VGA's PCI function. PCI Local Bus Specification 2.1, 6.2.5.2
 * (expansion ROM base address register). */
#include "vga_pci.h"

#include <string.h>
#include <sys/mman.h>

#include "pci.h"
#include "vga.h"

#define VGA_PCI_DEVFN PCI_DEVFN(2, 0)

struct vga_pci {
    struct pci_device pci;
    struct vga *vga;
    struct memory_region rom;
    size_t rom_map_size;
};

/* The bus moves the framebuffer region itself; the VGA also needs to know
 * the address, for the VBE registers and its dirty tracking. */
static void vga_pci_bar_mapped(struct pci_device *pci, int bar, bool mapped, uint32_t address)
{
    struct vga_pci *dev = pci->opaque;
    if (bar == 0)
        vga_set_lfb_address(dev->vga, mapped ? address : 0);
}

static size_t round_up_power_of_two(size_t n)
{
    size_t p = 4096;
    while (p < n)
        p <<= 1;
    return p;
}

struct vga_pci *vga_pci_create(struct pci_bus *bus, struct vga *vga, GError **error)
{
    struct vga_pci *dev = g_new0(struct vga_pci, 1);
    dev->vga = vga;
    pci_device_init(&dev->pci, "vga", VGA_PCI_DEVFN, VGA_PCI_VENDOR_ID, VGA_PCI_DEVICE_ID,
                    VGA_PCI_REVISION, VGA_PCI_CLASS);
    pci_set_word(&dev->pci.config[PCI_SUBSYSTEM_VENDOR_ID], VGA_PCI_SUBSYSTEM_VENDOR_ID);
    pci_set_word(&dev->pci.config[PCI_SUBSYSTEM_ID], VGA_PCI_SUBSYSTEM_ID);
    dev->pci.opaque = dev;
    dev->pci.bar_mapped = vga_pci_bar_mapped;
    pci_register_mem_bar(&dev->pci, 0, vga_lfb_region(vga), true);

    size_t rom_size;
    const uint8_t *image = vga_rom_image(vga, &rom_size);
    if (image && rom_size) {
        /* A ROM BAR is a power of two in size; the memory behind it must be
         * page-aligned host memory. */
        dev->rom_map_size = round_up_power_of_two(rom_size);
        uint8_t *host = mmap(NULL, dev->rom_map_size, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (host == MAP_FAILED) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOMEM,
                        "cannot allocate the VGA BIOS's ROM");
            g_free(dev);
            return NULL;
        }
        memcpy(host, image, rom_size);
        dev->rom = (struct memory_region){.name = "vga-rom",
                                          .size = dev->rom_map_size,
                                          .priority = 1,
                                          .host = host,
                                          .readonly = true};
        pci_register_rom_bar(&dev->pci, &dev->rom);
    }
    if (pci_register_device(bus, &dev->pci) != 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST, "PCI slot 2 is taken");
        vga_pci_destroy(dev);
        return NULL;
    }
    return dev;
}

void vga_pci_destroy(struct vga_pci *dev)
{
    if (!dev)
        return;
    if (dev->rom.host)
        munmap(dev->rom.host, dev->rom_map_size);
    g_free(dev);
}

void vga_pci_reset(void *opaque)
{
    struct vga_pci *dev = opaque;
    pci_device_reset(&dev->pci);
}

void vga_pci_post_load(void *opaque)
{
    struct vga_pci *dev = opaque;
    pci_device_update_mappings(&dev->pci);
}

const struct vmstate_desc vga_pci_vmstate = {
    .name = "vga-pci",
    .version = 1,
    .fields =
        (const struct vmstate_field[]){
            VMSTATE_STRUCT(struct vga_pci, pci, pci_device_vmstate),
            VMSTATE_END,
        },
};
