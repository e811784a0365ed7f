/* The Intel 82077AA floppy disk controller in PC-AT mode: ports 0x3f0-0x3f5
 * and 0x3f7 (0x3f6 belongs to the IDE controller), IRQ 6, ISA DMA channel
 * 2, up to two drives (A: and B:). */
#ifndef VIVARIUM_FDC_H
#define VIVARIUM_FDC_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

struct ioport_bus;
struct vmstate_desc;
struct irq_line;
struct isa_dma;
struct block_device;
struct fdc;

#define FDC_DRIVES 2

/* dma may be NULL: the controller then only works in non-DMA (PIO) mode.
 * Registers with the machine and claims DMA channel 2. */
struct fdc *fdc_create(struct ioport_bus *io, const struct irq_line *irq, struct isa_dma *dma);
void fdc_reset(void *fdc);
extern const struct vmstate_desc fdc_vmstate;
/* Closes the inserted disks. */
void fdc_destroy(struct fdc *fdc);

/* Inserts a disk image (the controller owns bd from then on), or ejects
 * with bd NULL; sets the drive's disk-change line. The geometry follows
 * from the image size: 160/180/320/360 KiB, 720 KiB, 1.2 MiB, 1.44 MiB,
 * 1.68 MiB (DMF) or 2.88 MiB; any other size is refused with *error set
 * and bd left to the caller. */
bool fdc_insert(struct fdc *fdc, unsigned drive, struct block_device *bd, GError **error);

/* The image in the drive, NULL when empty; the controller keeps owning it. */
struct block_device *fdc_disk(struct fdc *fdc, unsigned drive);

/* The CMOS drive type (register 0x10 nibble) for the drive: 1 = 360 KiB,
 * 2 = 1.2 MiB, 3 = 720 KiB, 4 = 1.44 MiB, 5 = 2.88 MiB, 0 = none. A drive
 * with a disk reports the type that reads it; an empty drive A: reports a
 * 1.44 MiB drive. For the machine to store in the RTC's CMOS. */
uint8_t fdc_cmos_drive_type(struct fdc *fdc, unsigned drive);

#endif
