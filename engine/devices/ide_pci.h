/* The PIIX3 IDE function (00:01.1): the PCI identity of the IDE controller,
 * with its bus-master DMA registers as BAR 4. */
#ifndef VIVARIUM_IDE_PCI_H
#define VIVARIUM_IDE_PCI_H

#include <glib.h>

struct pci_bus;
struct ide_controller;
struct ide_pci;
struct vmstate_desc;

struct ide_pci *ide_pci_create(struct pci_bus *bus, struct ide_controller *ide, GError **error);
void ide_pci_destroy(struct ide_pci *dev);

extern const struct vmstate_desc ide_pci_vmstate;
void ide_pci_reset(void *dev);
void ide_pci_post_load(void *dev);

#endif
