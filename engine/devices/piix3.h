/* The Intel 82371SB PIIX3 PCI-to-ISA bridge at 00:01.0, with the PCI
 * interrupt (PIRQ) router and the reset control register at port 0xcf9, and
 * the PCI identity of its IDE function at 00:01.1.
 *
 * The IDE controller itself (engine/devices/ide.c) owns the IDE function: it
 * embeds a struct pci_device, calls piix3_ide_pci_init() on it and then
 * pci_register_device(). See piix3_ide_pci_init() below.
 */
#ifndef VIVARIUM_PIIX3_H
#define VIVARIUM_PIIX3_H

#include "../irq.h"
#include "pci.h"

#define PIIX3_ISA_DEVFN PCI_DEVFN(1, 0)
#define PIIX3_IDE_DEVFN PCI_DEVFN(1, 1)

/* PIIX3 IDE timing registers; bit 15 of each IDETIM enables decoding of
 * that channel's legacy ports (0x1f0-0x1f7/0x3f6 and 0x170-0x177/0x376). */
#define PIIX3_IDE_IDETIM_PRIMARY   0x40
#define PIIX3_IDE_IDETIM_SECONDARY 0x42
#define PIIX3_IDE_IDETIM_DECODE    0x8000
#define PIIX3_IDE_BMDMA_BAR        4
#define PIIX3_IDE_BMDMA_SIZE       16

struct piix3;

/* isa_irqs: the 16 ISA interrupt inputs of the PIC (IRQ0-15), which PCI
 * interrupts are steered to; NULL leaves PCI interrupts unconnected until
 * the PIC is wired. reset: pulsed when the guest asks for a system reset
 * through port 0xcf9. Registers 00:01.0 and claims port 0xcf9. */
struct piix3 *piix3_create(struct pci_bus *bus, struct ioport_bus *io,
                           const struct irq_line *isa_irqs, const struct irq_line *reset);
void piix3_destroy(struct piix3 *isa);

extern const struct vmstate_desc piix3_vmstate;
void piix3_reset(void *isa);
/* Re-drives the ISA interrupt lines from the restored routing. */
void piix3_post_load(void *isa);

/* Gives dev the PIIX3 IDE function's identity (8086:7010, class 01.01.80:
 * IDE in legacy mode on both channels, bus-master capable), its writable
 * timing registers and the 16-port bus-master DMA BAR 4 served by
 * bmdma_read/bmdma_write (port numbers as on the bus; subtract the BAR's
 * base, which dev->bar_mapped reports, to find the register). The legacy
 * command and control ports and IRQ14/15 are not BARs: the IDE controller
 * claims them itself. Call pci_register_device() afterwards. */
void piix3_ide_pci_init(struct pci_device *dev, ioport_read_fn bmdma_read,
                        ioport_write_fn bmdma_write, void *opaque);

#endif
