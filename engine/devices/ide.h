/* The PIIX3 IDE controller: two legacy ATA channels with a master and a
 * slave each (ATA disks and ATAPI CD-ROMs) and PCI bus-master DMA.
 *
 * Primary channel: ports 0x1f0-0x1f7 and 0x3f6, IRQ 14. Secondary channel:
 * ports 0x170-0x177 and 0x376, IRQ 15. The bus-master registers (BMIDE, 16
 * ports) live at the I/O base the guest programs into BAR4 of the PIIX3 IDE
 * function; the PCI side of that function belongs to the PCI code, which
 * tells this file where BAR4 points with ide_bmdma_set_base().
 */
#ifndef VIVARIUM_IDE_H
#define VIVARIUM_IDE_H

#include <stdbool.h>
#include <stdint.h>

struct machine;
struct irq_line;
struct block_device;
struct ide_controller;

enum ide_drive_kind { IDE_NONE, IDE_DISK, IDE_CDROM };

/* unit numbers: 0 primary master, 1 primary slave, 2 secondary master,
 * 3 secondary slave (hda..hdd). */
#define IDE_UNITS 4

/* Claims the legacy ports and registers the controller with the machine
 * (reset, state table). The irq lines are copied. */
struct ide_controller *ide_create(struct machine *m, const struct irq_line *primary_irq,
                                  const struct irq_line *secondary_irq);
/* Closes every attached block device. */
void ide_destroy(struct ide_controller *ide);

/* Attaches a drive before the machine runs. The controller owns bd from
 * then on; a CD-ROM may start without a disc (bd NULL). A disk needs a
 * block device. Returns false if the unit is taken or the arguments are
 * unusable. */
bool ide_attach_drive(struct ide_controller *ide, unsigned unit, enum ide_drive_kind kind,
                      struct block_device *bd);

/* The engine's "change disc" command, on the vCPU thread: closes the old
 * disc, inserts bd (or leaves the drive empty if NULL) and tells the guest
 * through a unit attention and a media event. Refused (false) for units
 * that are not CD-ROMs or whose tray the guest has locked — unless force. */
bool ide_change_media(struct ide_controller *ide, unsigned unit, struct block_device *bd,
                      bool force);

/* Bus-master DMA registers (BMIDE), for the PCI glue of the PIIX3 IDE
 * function (00:01.1, 8086:7010, class 01.01.80, BAR4 a 16-port I/O BAR).
 * The handlers decode the register from the low four bits of the port, so
 * they work wherever BAR4 points. Either register them as BAR4's I/O
 * handlers (pci_register_io_bar(dev, 4, 16, ide_bmdma_read, ide_bmdma_write,
 * ide)), or call ide_bmdma_set_base() whenever BAR4 or the command
 * register's I/O enable changes, with the decoded base (BAR4 & ~0xf) or 0
 * when decoding is off, and this file claims the 16 ports itself. */
uint32_t ide_bmdma_read(void *ide, uint16_t port, unsigned size);
void ide_bmdma_write(void *ide, uint16_t port, unsigned size, uint32_t value);
void ide_bmdma_set_base(struct ide_controller *ide, uint16_t io_base);

#endif
