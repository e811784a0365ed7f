/* The VGA's PCI function (00:02.0), as QEMU's "VGA" device presents it: the
 * identity guest drivers know, the linear framebuffer as BAR 0 and the VGA
 * BIOS as the expansion ROM, which is where SeaBIOS finds and runs it. */
#ifndef VIVARIUM_VGA_PCI_H
#define VIVARIUM_VGA_PCI_H

#include <glib.h>

struct pci_bus;
struct vga;
struct vga_pci;
struct vmstate_desc;

struct vga_pci *vga_pci_create(struct pci_bus *bus, struct vga *vga, GError **error);
void vga_pci_destroy(struct vga_pci *dev);

extern const struct vmstate_desc vga_pci_vmstate;
void vga_pci_reset(void *dev);
void vga_pci_post_load(void *dev);

#endif
