/* The PIIX3 IDE function. Intel 82371FB/SB datasheet, 2.4 (IDE configuration
 * registers). The legacy command and control ports and IRQ 14/15 are the IDE
 * controller's own; only the bus-master block moves with BAR 4. */
#include "ide_pci.h"

#include "ide.h"
#include "pci.h"
#include "piix3.h"

struct ide_pci {
    struct pci_device pci;
};

struct ide_pci *ide_pci_create(struct pci_bus *bus, struct ide_controller *ide, GError **error)
{
    struct ide_pci *dev = g_new0(struct ide_pci, 1);
    piix3_ide_pci_init(&dev->pci, ide_bmdma_read, ide_bmdma_write, ide);
    if (pci_register_device(bus, &dev->pci) != 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST, "PCI function 00:01.1 is taken");
        g_free(dev);
        return NULL;
    }
    return dev;
}

void ide_pci_destroy(struct ide_pci *dev)
{
    g_free(dev);
}

void ide_pci_reset(void *opaque)
{
    struct ide_pci *dev = opaque;
    pci_device_reset(&dev->pci);
}

void ide_pci_post_load(void *opaque)
{
    struct ide_pci *dev = opaque;
    pci_device_update_mappings(&dev->pci);
}

const struct vmstate_desc ide_pci_vmstate = {
    .name = "ide-pci",
    .version = 1,
    .fields =
        (const struct vmstate_field[]){
            VMSTATE_STRUCT(struct ide_pci, pci, pci_device_vmstate),
            VMSTATE_END,
        },
};
