/* The PIIX3 IDE controller: two ATA channels, ATA disks, ATAPI CD-ROMs and
 * bus-master DMA.
 *
 * Follows ATA/ATAPI-6 (T13/1410D rev 3b): the task file (section 7), the
 * PIO data-in, PIO data-out, DMA and PACKET protocols (section 9), the
 * commands of section 8 and IDENTIFY DEVICE / IDENTIFY PACKET DEVICE word
 * layouts; SFF-8020i / MMC-3 for the packet commands of the CD-ROM; the
 * Intel 82371SB (PIIX3) datasheet, 290550-002, section 2.7 (bus master IDE
 * registers) and 5.6 (the physical region descriptor table).
 *
 * Every command completes at once, within the port write that starts it:
 * the data is ready when the guest sees DRQ, and the interrupt is raised
 * right away. Guests wait for the interrupt or poll BSY, so none of them
 * can tell, and this keeps the device free of timers.
 */
#include "ide.h"

#include <errno.h>
#include <string.h>

#include <glib.h>

#include "../block/block.h"
#include "../irq.h"
#include "../machine.h"

#define IDE_BUFFER_SIZE   65536
#define IDE_MAX_MULTIPLE  16 /* sectors per DRQ block of READ/WRITE MULTIPLE */
#define ATAPI_SECTOR_SIZE 2048
#define ATAPI_PACKET_SIZE 12
#define BMDMA_PORTS       16
#define BMDMA_MAX_PRDS    8192 /* a PRD table may not cross a 64 KiB boundary */

/* Status register. */
#define ATA_STATUS_ERR  0x01
#define ATA_STATUS_DRQ  0x08
#define ATA_STATUS_DSC  0x10 /* seek complete */
#define ATA_STATUS_DF   0x20
#define ATA_STATUS_DRDY 0x40
#define ATA_STATUS_BSY  0x80

/* Error register. */
#define ATA_ERROR_ABRT 0x04
#define ATA_ERROR_IDNF 0x10
#define ATA_ERROR_UNC  0x40

/* Device control register. */
#define ATA_DEVCTL_NIEN 0x02
#define ATA_DEVCTL_SRST 0x04
#define ATA_DEVCTL_HOB  0x80

/* Device/head register. */
#define ATA_SELECT_DEV 0x10
#define ATA_SELECT_LBA 0x40

/* Interrupt reason (the sector count register during PACKET). */
#define ATAPI_REASON_COD 0x01
#define ATAPI_REASON_IO  0x02

/* Bus master registers. */
#define BM_CMD_START     0x01
#define BM_CMD_TO_MEMORY 0x08 /* the device writes to memory (a read command) */
#define BM_STATUS_ACTIVE 0x01
#define BM_STATUS_ERROR  0x02
#define BM_STATUS_IRQ    0x04
#define BM_STATUS_CAPS   0x60 /* drive 0/1 DMA capable: software-set bits */

/* SCSI sense keys and additional sense codes. */
#define SENSE_NONE            0x00
#define SENSE_NOT_READY       0x02
#define SENSE_MEDIUM_ERROR    0x03
#define SENSE_ILLEGAL_REQUEST 0x05
#define SENSE_UNIT_ATTENTION  0x06
#define ASC_INVALID_OPCODE    0x20
#define ASC_LBA_OUT_OF_RANGE  0x21
#define ASC_INVALID_FIELD     0x24
#define ASC_MEDIUM_CHANGED    0x28
#define ASC_NO_MEDIUM         0x3a
#define ASC_REMOVAL_PREVENTED 0x53
#define ASC_READ_ERROR        0x11

/* Media event codes of GET EVENT STATUS NOTIFICATION. */
#define MEDIA_EVENT_NONE    0
#define MEDIA_EVENT_NEW     2
#define MEDIA_EVENT_REMOVAL 3

/* Profiles of GET CONFIGURATION. */
#define PROFILE_CDROM  0x0008
#define PROFILE_DVDROM 0x0010
#define CD_MAX_SECTORS (80 * 60 * 75) /* an 80-minute CD */

enum ide_transfer {
    XFER_NONE,
    XFER_PIO_IN,  /* device to host through the data port */
    XFER_PIO_OUT, /* host to device through the data port */
    XFER_PACKET,  /* the host writes a 12-byte ATAPI command */
    XFER_DMA_IN,  /* waiting for the bus master: device to memory */
    XFER_DMA_OUT, /* waiting for the bus master: memory to device */
};

/* What to do when a PIO block is done. */
enum ide_continuation {
    CONT_NONE,
    CONT_ATA_READ,
    CONT_ATA_WRITE,
    CONT_ATAPI_DATA,
};

struct ide_drive {
    uint8_t kind;
    uint8_t status;
    uint8_t error;

    /* Geometry: the default one reported by IDENTIFY, and the one set by
     * INITIALIZE DEVICE PARAMETERS that CHS addresses use. */
    uint16_t cylinders, heads, sectors;
    uint16_t cur_cylinders, cur_heads, cur_sectors;
    uint8_t multiple_count; /* 0: READ/WRITE MULTIPLE disabled */
    bool write_cache;
    uint8_t transfer_mode; /* the SET FEATURES 03h value */

    /* The command in progress. */
    uint8_t transfer;
    uint8_t continuation;
    uint8_t command;
    bool lba48;
    uint64_t lba;          /* next sector to read or write */
    uint32_t sectors_left; /* after the sectors in the buffer */
    uint32_t block_sectors;
    uint32_t buffer_pos;
    uint32_t block_end;  /* where the current DRQ block ends */
    uint32_t buffer_end; /* valid data in the buffer (ATAPI) */

    /* ATAPI. */
    bool atapi_dma; /* the packet asked for its data phase by DMA */
    uint16_t byte_count_limit;
    uint8_t sense_key, asc, ascq;
    bool unit_attention;
    bool locked;
    bool tray_open;
    uint8_t media_event;

    uint8_t buffer[IDE_BUFFER_SIZE];

    /* Not part of the snapshot: the image is reattached by the machine. */
    struct block_device *bd;
};

struct ide_channel {
    uint8_t feature, nsector, sector, lcyl, hcyl, select, devctl;
    uint8_t hob_feature, hob_nsector, hob_sector, hob_lcyl, hob_hcyl;
    bool irq_pending;
    bool irq_level;

    uint8_t bm_command, bm_status;
    uint32_t bm_prd_address;

    struct ide_drive drives[2];

    struct irq_line irq;
    struct ide_controller *ide;
};

struct ide_controller {
    struct ide_channel channels[2];
    struct machine *machine;
    uint16_t bmdma_base;
};

static const struct vmstate_field ide_drive_fields[] = {
    VMSTATE_U8(struct ide_drive, kind),
    VMSTATE_U8(struct ide_drive, status),
    VMSTATE_U8(struct ide_drive, error),
    VMSTATE_U16(struct ide_drive, cylinders),
    VMSTATE_U16(struct ide_drive, heads),
    VMSTATE_U16(struct ide_drive, sectors),
    VMSTATE_U16(struct ide_drive, cur_cylinders),
    VMSTATE_U16(struct ide_drive, cur_heads),
    VMSTATE_U16(struct ide_drive, cur_sectors),
    VMSTATE_U8(struct ide_drive, multiple_count),
    VMSTATE_BOOL(struct ide_drive, write_cache),
    VMSTATE_U8(struct ide_drive, transfer_mode),
    VMSTATE_U8(struct ide_drive, transfer),
    VMSTATE_U8(struct ide_drive, continuation),
    VMSTATE_U8(struct ide_drive, command),
    VMSTATE_BOOL(struct ide_drive, lba48),
    VMSTATE_U64(struct ide_drive, lba),
    VMSTATE_U32(struct ide_drive, sectors_left),
    VMSTATE_U32(struct ide_drive, block_sectors),
    VMSTATE_U32(struct ide_drive, buffer_pos),
    VMSTATE_U32(struct ide_drive, block_end),
    VMSTATE_U32(struct ide_drive, buffer_end),
    VMSTATE_BOOL(struct ide_drive, atapi_dma),
    VMSTATE_U16(struct ide_drive, byte_count_limit),
    VMSTATE_U8(struct ide_drive, sense_key),
    VMSTATE_U8(struct ide_drive, asc),
    VMSTATE_U8(struct ide_drive, ascq),
    VMSTATE_BOOL(struct ide_drive, unit_attention),
    VMSTATE_BOOL(struct ide_drive, locked),
    VMSTATE_BOOL(struct ide_drive, tray_open),
    VMSTATE_U8(struct ide_drive, media_event),
    VMSTATE_U8_ARRAY(struct ide_drive, buffer),
    VMSTATE_END,
};

static const struct vmstate_desc ide_drive_vmstate = {
    .name = "ide-drive",
    .version = 1,
    .fields = ide_drive_fields,
};

static const struct vmstate_field ide_channel_fields[] = {
    VMSTATE_U8(struct ide_channel, feature),
    VMSTATE_U8(struct ide_channel, nsector),
    VMSTATE_U8(struct ide_channel, sector),
    VMSTATE_U8(struct ide_channel, lcyl),
    VMSTATE_U8(struct ide_channel, hcyl),
    VMSTATE_U8(struct ide_channel, select),
    VMSTATE_U8(struct ide_channel, devctl),
    VMSTATE_U8(struct ide_channel, hob_feature),
    VMSTATE_U8(struct ide_channel, hob_nsector),
    VMSTATE_U8(struct ide_channel, hob_sector),
    VMSTATE_U8(struct ide_channel, hob_lcyl),
    VMSTATE_U8(struct ide_channel, hob_hcyl),
    VMSTATE_BOOL(struct ide_channel, irq_pending),
    VMSTATE_BOOL(struct ide_channel, irq_level),
    VMSTATE_U8(struct ide_channel, bm_command),
    VMSTATE_U8(struct ide_channel, bm_status),
    VMSTATE_U32(struct ide_channel, bm_prd_address),
    VMSTATE_STRUCT_ARRAY(struct ide_channel, drives, ide_drive_vmstate),
    VMSTATE_END,
};

static const struct vmstate_desc ide_channel_vmstate = {
    .name = "ide-channel",
    .version = 1,
    .fields = ide_channel_fields,
};

static const struct vmstate_field ide_fields[] = {
    VMSTATE_STRUCT_ARRAY(struct ide_controller, channels, ide_channel_vmstate),
    VMSTATE_U16(struct ide_controller, bmdma_base),
    VMSTATE_END,
};

static const struct vmstate_desc ide_vmstate = {
    .name = "ide",
    .version = 1,
    .fields = ide_fields,
};

static const uint16_t channel_command_ports[2] = {0x1f0, 0x170};
static const uint16_t channel_control_ports[2] = {0x3f6, 0x376};

/* ---- interrupts and status ---- */

static void channel_update_irq(struct ide_channel *ch)
{
    bool level = ch->irq_pending && !(ch->devctl & ATA_DEVCTL_NIEN);
    if (level != ch->irq_level) {
        ch->irq_level = level;
        irq_set(&ch->irq, level);
    }
}

static void channel_raise_irq(struct ide_channel *ch)
{
    ch->irq_pending = true;
    /* The bus master's interrupt bit follows the drive's INTRQ. */
    ch->bm_status |= BM_STATUS_IRQ;
    channel_update_irq(ch);
}

static struct ide_drive *selected(struct ide_channel *ch)
{
    return &ch->drives[(ch->select & ATA_SELECT_DEV) ? 1 : 0];
}

static bool channel_has_drives(const struct ide_channel *ch)
{
    return ch->drives[0].kind != IDE_NONE || ch->drives[1].kind != IDE_NONE;
}

static bool medium_present(const struct ide_drive *d)
{
    return d->bd && !d->tray_open;
}

/* ---- task file addressing ---- */

static uint64_t taskfile_lba(struct ide_channel *ch, struct ide_drive *d, bool lba48)
{
    if (lba48) {
        return (uint64_t)ch->hob_hcyl << 40 | (uint64_t)ch->hob_lcyl << 32 |
               (uint64_t)ch->hob_sector << 24 | (uint64_t)ch->hcyl << 16 | (uint64_t)ch->lcyl << 8 |
               ch->sector;
    }
    if (ch->select & ATA_SELECT_LBA) {
        return (uint64_t)(ch->select & 0x0f) << 24 | (uint64_t)ch->hcyl << 16 |
               (uint64_t)ch->lcyl << 8 | ch->sector;
    }
    /* CHS through the current translation; sector numbers start at 1. */
    uint32_t cylinder = (uint32_t)ch->hcyl << 8 | ch->lcyl;
    uint32_t head = ch->select & 0x0f;
    if (ch->sector == 0 || d->cur_sectors == 0 || head >= d->cur_heads)
        return UINT64_MAX;
    return ((uint64_t)cylinder * d->cur_heads + head) * d->cur_sectors + (ch->sector - 1);
}

/* Leaves the address of the last sector transferred in the task file, as
 * a drive does, so that a guest can see where an error happened. */
static void taskfile_set_lba(struct ide_channel *ch, struct ide_drive *d, uint64_t lba)
{
    if (d->lba48) {
        ch->sector = (uint8_t)lba;
        ch->lcyl = (uint8_t)(lba >> 8);
        ch->hcyl = (uint8_t)(lba >> 16);
        ch->hob_sector = (uint8_t)(lba >> 24);
        ch->hob_lcyl = (uint8_t)(lba >> 32);
        ch->hob_hcyl = (uint8_t)(lba >> 40);
    } else if (ch->select & ATA_SELECT_LBA) {
        ch->sector = (uint8_t)lba;
        ch->lcyl = (uint8_t)(lba >> 8);
        ch->hcyl = (uint8_t)(lba >> 16);
        ch->select = (uint8_t)((ch->select & 0xf0) | ((lba >> 24) & 0x0f));
    } else if (d->cur_heads && d->cur_sectors) {
        uint32_t per_cylinder = (uint32_t)d->cur_heads * d->cur_sectors;
        uint32_t cylinder = (uint32_t)(lba / per_cylinder);
        uint32_t rest = (uint32_t)(lba % per_cylinder);
        ch->hcyl = (uint8_t)(cylinder >> 8);
        ch->lcyl = (uint8_t)cylinder;
        ch->select = (uint8_t)((ch->select & 0xf0) | (rest / d->cur_sectors));
        ch->sector = (uint8_t)(rest % d->cur_sectors + 1);
    }
}

static void set_signature(struct ide_channel *ch, struct ide_drive *d)
{
    ch->nsector = 1;
    ch->sector = 1;
    if (d->kind == IDE_CDROM) {
        ch->lcyl = 0x14;
        ch->hcyl = 0xeb;
    } else {
        ch->lcyl = 0;
        ch->hcyl = 0;
    }
    ch->select &= ATA_SELECT_DEV;
    ch->select |= 0xa0; /* the obsolete bits read as one */
}

/* ---- command completion ---- */

static void transfer_stop(struct ide_drive *d)
{
    d->transfer = XFER_NONE;
    d->continuation = CONT_NONE;
    d->buffer_pos = d->block_end = d->buffer_end = 0;
}

static void ata_complete(struct ide_channel *ch, struct ide_drive *d)
{
    transfer_stop(d);
    d->status = ATA_STATUS_DRDY | ATA_STATUS_DSC;
    d->error = 0;
    channel_raise_irq(ch);
}

static void ata_abort_error(struct ide_channel *ch, struct ide_drive *d, uint8_t error)
{
    transfer_stop(d);
    d->status = ATA_STATUS_DRDY | ATA_STATUS_ERR;
    d->error = error;
    channel_raise_irq(ch);
}

static void ata_abort(struct ide_channel *ch, struct ide_drive *d)
{
    ata_abort_error(ch, d, ATA_ERROR_ABRT);
}

/* Starts a PIO data-in block of len bytes already in the buffer. */
static void pio_in_start(struct ide_channel *ch, struct ide_drive *d, uint32_t len,
                         enum ide_continuation cont)
{
    d->transfer = XFER_PIO_IN;
    d->continuation = cont;
    d->buffer_pos = 0;
    d->block_end = len;
    d->status = ATA_STATUS_DRDY | ATA_STATUS_DSC | ATA_STATUS_DRQ;
    channel_raise_irq(ch);
}

/* ---- ATA disks ---- */

static void put_string(uint16_t *words, const char *text, unsigned nwords)
{
    /* ATA strings put the first character of each pair in the high byte. */
    for (unsigned i = 0; i < nwords * 2; i++) {
        size_t len = strlen(text);
        uint8_t c = i < len ? (uint8_t)text[i] : ' ';
        if (i % 2 == 0)
            words[i / 2] = (uint16_t)(c << 8);
        else
            words[i / 2] |= c;
    }
}

static void identify_finish(struct ide_drive *d, uint16_t *words)
{
    uint8_t *out = d->buffer;
    for (int i = 0; i < 256; i++) {
        out[i * 2] = (uint8_t)words[i];
        out[i * 2 + 1] = (uint8_t)(words[i] >> 8);
    }
}

static uint16_t identify_dma_words(const struct ide_drive *d, uint16_t *mwdma)
{
    /* Word 63 (multiword DMA) and word 88 (Ultra DMA): supported modes in
     * the low byte, the selected one in the high byte. */
    uint16_t udma = 0x3f;
    *mwdma = 0x07;
    if ((d->transfer_mode & 0xf8) == 0x20)
        *mwdma |= (uint16_t)(0x100 << (d->transfer_mode & 7));
    if ((d->transfer_mode & 0xf8) == 0x40)
        udma |= (uint16_t)(0x100 << (d->transfer_mode & 7));
    return udma;
}

static void ata_identify(struct ide_channel *ch, struct ide_drive *d, unsigned unit)
{
    uint16_t w[256] = {0};
    uint64_t total = block_sector_count(d->bd, BLOCK_SECTOR_SIZE);
    char serial[21];
    g_snprintf(serial, sizeof(serial), "VIVARIUM-HD%u", unit);

    w[0] = 0x0040; /* fixed, non-removable ATA device */
    w[1] = d->cylinders;
    w[3] = d->heads;
    w[6] = d->sectors;
    put_string(&w[10], serial, 10);
    put_string(&w[23], "0.1", 4);
    put_string(&w[27], "Vivarium HARDDISK", 20);
    w[47] = 0x8000 | IDE_MAX_MULTIPLE;
    w[48] = 1;      /* 32-bit PIO */
    w[49] = 0x0b00; /* LBA, DMA, IORDY */
    w[50] = 0x4000;
    w[51] = 0x0200; /* PIO timing mode 2 */
    w[52] = 0x0200;
    w[53] = 0x0007; /* words 54-58, 64-70 and 88 are valid */
    w[54] = d->cur_cylinders;
    w[55] = d->cur_heads;
    w[56] = d->cur_sectors;
    uint32_t chs_capacity = (uint32_t)d->cur_cylinders * d->cur_heads * d->cur_sectors;
    w[57] = (uint16_t)chs_capacity;
    w[58] = (uint16_t)(chs_capacity >> 16);
    if (d->multiple_count)
        w[59] = 0x0100 | d->multiple_count;
    uint32_t lba28 = (uint32_t)MIN(total, (uint64_t)0x0fffffff);
    w[60] = (uint16_t)lba28;
    w[61] = (uint16_t)(lba28 >> 16);
    uint16_t mwdma;
    uint16_t udma = identify_dma_words(d, &mwdma);
    w[63] = mwdma;
    w[64] = 0x0003; /* PIO modes 3 and 4 */
    w[65] = 120;
    w[66] = 120;
    w[67] = 120;
    w[68] = 120;
    w[80] = 0x007e; /* ATA-1 to ATA-6 */
    w[81] = 0x0000;
    w[82] = 0x4020; /* write cache */
    w[83] = 0x7400; /* FLUSH CACHE (EXT), LBA48 */
    w[84] = 0x4000;
    w[85] = (uint16_t)(0x4000 | (d->write_cache ? 0x20 : 0)); /* enabled set */
    w[86] = 0x3400;
    w[87] = 0x4000;
    w[88] = udma;
    /* Hardware reset result, with an 80-conductor cable detected so that
     * guests use Ultra DMA modes above 2. */
    w[93] = (uint16_t)(0x6000 | ((unit & 1) ? 0x0100 : 0x0001));
    w[100] = (uint16_t)total;
    w[101] = (uint16_t)(total >> 16);
    w[102] = (uint16_t)(total >> 32);
    w[103] = (uint16_t)(total >> 48);
    identify_finish(d, w);
    pio_in_start(ch, d, 512, CONT_NONE);
}

/* Loads the next DRQ block of a read into the buffer; false on failure,
 * with the error reported. */
static bool ata_read_block(struct ide_channel *ch, struct ide_drive *d)
{
    uint32_t n = MIN(d->sectors_left, d->block_sectors);
    int ret = block_read_sectors(d->bd, d->lba, BLOCK_SECTOR_SIZE, d->buffer, n);
    if (ret < 0) {
        taskfile_set_lba(ch, d, d->lba);
        ata_abort_error(ch, d, ret == -EINVAL ? ATA_ERROR_IDNF : ATA_ERROR_UNC);
        return false;
    }
    d->lba += n;
    d->sectors_left -= n;
    taskfile_set_lba(ch, d, d->lba - 1);
    pio_in_start(ch, d, n * BLOCK_SECTOR_SIZE, CONT_ATA_READ);
    return true;
}

static void ata_write_block_start(struct ide_drive *d)
{
    uint32_t n = MIN(d->sectors_left, d->block_sectors);
    d->transfer = XFER_PIO_OUT;
    d->continuation = CONT_ATA_WRITE;
    d->buffer_pos = 0;
    d->block_end = n * BLOCK_SECTOR_SIZE;
    d->status = ATA_STATUS_DRDY | ATA_STATUS_DSC | ATA_STATUS_DRQ;
}

static bool ata_decode_rw(struct ide_channel *ch, struct ide_drive *d, bool lba48,
                          uint32_t block_sectors)
{
    d->lba48 = lba48;
    d->lba = taskfile_lba(ch, d, lba48);
    if (lba48)
        d->sectors_left = ((uint32_t)ch->hob_nsector << 8 | ch->nsector) ?: 65536;
    else
        d->sectors_left = ch->nsector ?: 256;
    d->block_sectors = block_sectors;
    uint64_t total = block_sector_count(d->bd, BLOCK_SECTOR_SIZE);
    if (d->lba >= total || d->sectors_left > total - d->lba) {
        ata_abort_error(ch, d, ATA_ERROR_IDNF | ATA_ERROR_ABRT);
        return false;
    }
    return true;
}

static void ata_read_verify(struct ide_channel *ch, struct ide_drive *d, bool lba48)
{
    if (!ata_decode_rw(ch, d, lba48, 1))
        return;
    /* The medium is a file: reading it back proves the sectors readable. */
    while (d->sectors_left) {
        uint32_t n = MIN(d->sectors_left, (uint32_t)(IDE_BUFFER_SIZE / BLOCK_SECTOR_SIZE));
        if (block_read_sectors(d->bd, d->lba, BLOCK_SECTOR_SIZE, d->buffer, n) < 0) {
            taskfile_set_lba(ch, d, d->lba);
            ata_abort_error(ch, d, ATA_ERROR_UNC);
            return;
        }
        d->lba += n;
        d->sectors_left -= n;
    }
    taskfile_set_lba(ch, d, d->lba - 1);
    ata_complete(ch, d);
}

static void dma_try_start(struct ide_channel *ch);

static void ata_dma_command(struct ide_channel *ch, struct ide_drive *d, bool lba48, bool write)
{
    if (!ata_decode_rw(ch, d, lba48, 0))
        return;
    d->transfer = write ? XFER_DMA_OUT : XFER_DMA_IN;
    d->status = ATA_STATUS_DRDY | ATA_STATUS_DSC | ATA_STATUS_DRQ;
    dma_try_start(ch);
}

static void ata_set_features(struct ide_channel *ch, struct ide_drive *d)
{
    switch (ch->feature) {
    case 0x02: /* enable write cache */
    case 0x82: /* disable write cache */
        d->write_cache = ch->feature == 0x02;
        break;
    case 0x03: /* set transfer mode */
        switch (ch->nsector & 0xf8) {
        case 0x00:
        case 0x08: /* PIO modes */
        case 0x20: /* multiword DMA */
        case 0x40: /* Ultra DMA */
            if ((ch->nsector & 0xf8) == 0x20 && (ch->nsector & 7) > 2)
                goto abort;
            if ((ch->nsector & 0xf8) == 0x40 && (ch->nsector & 7) > 5)
                goto abort;
            d->transfer_mode = ch->nsector;
            break;
        default:
            goto abort;
        }
        break;
    case 0x55: /* read look-ahead off/on, reverting to defaults: harmless */
    case 0xaa:
    case 0x66:
    case 0xcc:
    case 0x05: /* advanced power management */
    case 0x85:
        break;
    default:
        goto abort;
    }
    ata_complete(ch, d);
    return;
abort:
    ata_abort(ch, d);
}

static void ata_flush(struct ide_channel *ch, struct ide_drive *d)
{
    if (d->bd && block_flush(d->bd) < 0)
        ata_abort(ch, d);
    else
        ata_complete(ch, d);
}

static void ata_execute_device_diagnostic(struct ide_channel *ch)
{
    for (int i = 0; i < 2; i++) {
        struct ide_drive *d = &ch->drives[i];
        if (d->kind == IDE_NONE)
            continue;
        transfer_stop(d);
        d->error = 0x01; /* passed */
        d->status = d->kind == IDE_CDROM ? 0 : ATA_STATUS_DRDY | ATA_STATUS_DSC;
    }
    set_signature(ch, selected(ch));
    channel_raise_irq(ch);
}

static void atapi_packet_command(struct ide_channel *ch, struct ide_drive *d);
static void atapi_identify(struct ide_channel *ch, struct ide_drive *d, unsigned unit);

static void ide_command(struct ide_channel *ch, uint8_t command)
{
    struct ide_drive *d = selected(ch);
    unsigned unit = (unsigned)(ch - ch->ide->channels) * 2 + (unsigned)(d - ch->drives);

    if (d->kind == IDE_NONE)
        return; /* no drive answers; the guest times out */
    /* A new command ends whatever was in progress. */
    transfer_stop(d);
    d->command = command;
    ch->irq_pending = false;
    channel_update_irq(ch);

    if (command == 0x90) {
        ata_execute_device_diagnostic(ch);
        return;
    }
    if (d->kind == IDE_CDROM) {
        switch (command) {
        case 0xa0:
            atapi_packet_command(ch, d);
            return;
        case 0xa1:
            atapi_identify(ch, d, unit);
            return;
        case 0x08: /* DEVICE RESET */
            transfer_stop(d);
            set_signature(ch, d);
            d->status = 0;
            d->error = 0x01;
            return;
        case 0xef:
            ata_set_features(ch, d);
            return;
        case 0xe0:
        case 0xe1:
        case 0xe2:
        case 0xe3:
        case 0xe6:
        case 0xe7:
        case 0xea:
            ata_complete(ch, d);
            return;
        case 0xe5:
            ch->nsector = 0xff;
            ata_complete(ch, d);
            return;
        default:
            /* ATA commands to a packet device abort with the signature in
             * the task file: that is how guests tell a CD-ROM from a disk. */
            set_signature(ch, d);
            ata_abort(ch, d);
            return;
        }
    }

    switch (command) {
    case 0xec: /* IDENTIFY DEVICE */
        ata_identify(ch, d, unit);
        break;
    case 0x20: /* READ SECTORS (with and without retry) */
    case 0x21:
    case 0x24: /* READ SECTORS EXT */
        if (ata_decode_rw(ch, d, command == 0x24, 1))
            ata_read_block(ch, d);
        break;
    case 0xc4: /* READ MULTIPLE */
    case 0x29: /* READ MULTIPLE EXT */
        if (!d->multiple_count)
            ata_abort(ch, d);
        else if (ata_decode_rw(ch, d, command == 0x29, d->multiple_count))
            ata_read_block(ch, d);
        break;
    case 0x30: /* WRITE SECTORS */
    case 0x31:
    case 0x34: /* WRITE SECTORS EXT */
        if (ata_decode_rw(ch, d, command == 0x34, 1))
            ata_write_block_start(d);
        break;
    case 0xc5: /* WRITE MULTIPLE */
    case 0x39: /* WRITE MULTIPLE EXT */
        if (!d->multiple_count)
            ata_abort(ch, d);
        else if (ata_decode_rw(ch, d, command == 0x39, d->multiple_count))
            ata_write_block_start(d);
        break;
    case 0xc8: /* READ DMA */
    case 0xc9:
    case 0x25: /* READ DMA EXT */
        ata_dma_command(ch, d, command == 0x25, false);
        break;
    case 0xca: /* WRITE DMA */
    case 0xcb:
    case 0x35: /* WRITE DMA EXT */
        ata_dma_command(ch, d, command == 0x35, true);
        break;
    case 0x40: /* READ VERIFY SECTORS */
    case 0x41:
    case 0x42: /* READ VERIFY SECTORS EXT */
        ata_read_verify(ch, d, command == 0x42);
        break;
    case 0xc6: /* SET MULTIPLE MODE */
        if (ch->nsector > IDE_MAX_MULTIPLE || (ch->nsector & (ch->nsector - 1))) {
            ata_abort(ch, d);
        } else {
            d->multiple_count = ch->nsector;
            ata_complete(ch, d);
        }
        break;
    case 0x91: /* INITIALIZE DEVICE PARAMETERS */
        if (ch->nsector == 0) {
            ata_abort(ch, d);
            break;
        }
        d->cur_sectors = ch->nsector;
        d->cur_heads = (uint16_t)((ch->select & 0x0f) + 1);
        d->cur_cylinders = (uint16_t)MIN(block_sector_count(d->bd, BLOCK_SECTOR_SIZE) /
                                             (d->cur_heads * d->cur_sectors),
                                         (uint64_t)65535);
        ata_complete(ch, d);
        break;
    case 0xe7: /* FLUSH CACHE */
    case 0xea: /* FLUSH CACHE EXT */
        ata_flush(ch, d);
        break;
    case 0xef:
        ata_set_features(ch, d);
        break;
    case 0xf8: /* READ NATIVE MAX ADDRESS */
    case 0x27: /* READ NATIVE MAX ADDRESS EXT */
        d->lba48 = command == 0x27;
        taskfile_set_lba(ch, d, block_sector_count(d->bd, BLOCK_SECTOR_SIZE) - 1);
        ata_complete(ch, d);
        break;
    case 0x70: /* SEEK */
    case 0xe0: /* STANDBY IMMEDIATE, IDLE IMMEDIATE, STANDBY, IDLE, SLEEP */
    case 0xe1:
    case 0xe2:
    case 0xe3:
    case 0xe6:
    case 0xde: /* DOOR LOCK / UNLOCK */
    case 0xdf:
        ata_complete(ch, d);
        break;
    case 0xe5: /* CHECK POWER MODE: active or idle */
        ch->nsector = 0xff;
        ata_complete(ch, d);
        break;
    default:
        if (command >= 0x10 && command <= 0x1f) { /* RECALIBRATE */
            ata_complete(ch, d);
            break;
        }
        ata_abort(ch, d);
        break;
    }
}

/* ---- PIO data movement ---- */

static void ata_read_block_done(struct ide_channel *ch, struct ide_drive *d)
{
    if (d->sectors_left == 0) {
        /* The last block of a read ends without an interrupt. */
        transfer_stop(d);
        d->status = ATA_STATUS_DRDY | ATA_STATUS_DSC;
        return;
    }
    ata_read_block(ch, d);
}

static void ata_write_block_done(struct ide_channel *ch, struct ide_drive *d)
{
    uint32_t n = d->block_end / BLOCK_SECTOR_SIZE;
    int ret = block_write_sectors(d->bd, d->lba, BLOCK_SECTOR_SIZE, d->buffer, n);
    if (ret < 0) {
        taskfile_set_lba(ch, d, d->lba);
        ata_abort_error(ch, d, ret == -EINVAL ? ATA_ERROR_IDNF : ATA_ERROR_ABRT);
        return;
    }
    d->lba += n;
    d->sectors_left -= n;
    taskfile_set_lba(ch, d, d->lba - 1);
    if (d->sectors_left == 0) {
        ata_complete(ch, d);
        return;
    }
    ata_write_block_start(d);
    channel_raise_irq(ch);
}

static void atapi_data_block_done(struct ide_channel *ch, struct ide_drive *d);
static void atapi_execute(struct ide_channel *ch, struct ide_drive *d);

static void pio_block_done(struct ide_channel *ch, struct ide_drive *d)
{
    if (d->transfer == XFER_PACKET) {
        atapi_execute(ch, d);
        return;
    }
    switch (d->continuation) {
    case CONT_ATA_READ:
        ata_read_block_done(ch, d);
        break;
    case CONT_ATA_WRITE:
        ata_write_block_done(ch, d);
        break;
    case CONT_ATAPI_DATA:
        atapi_data_block_done(ch, d);
        break;
    default:
        transfer_stop(d);
        d->status = (uint8_t)(d->status & ~ATA_STATUS_DRQ);
        break;
    }
}

static uint32_t data_read(struct ide_channel *ch, unsigned size)
{
    struct ide_drive *d = selected(ch);
    if (d->transfer != XFER_PIO_IN)
        return 0xffffffffu >> (32 - 8 * size);
    uint32_t value = 0;
    for (unsigned i = 0; i < size && d->buffer_pos < d->block_end; i++)
        value |= (uint32_t)d->buffer[d->buffer_pos++] << (8 * i);
    if (d->buffer_pos >= d->block_end)
        pio_block_done(ch, d);
    return value;
}

static void data_write(struct ide_channel *ch, unsigned size, uint32_t value)
{
    struct ide_drive *d = selected(ch);
    if (d->transfer != XFER_PIO_OUT && d->transfer != XFER_PACKET)
        return;
    for (unsigned i = 0; i < size && d->buffer_pos < d->block_end; i++)
        d->buffer[d->buffer_pos++] = (uint8_t)(value >> (8 * i));
    if (d->buffer_pos >= d->block_end)
        pio_block_done(ch, d);
}

/* ---- ATAPI ---- */

static void atapi_identify(struct ide_channel *ch, struct ide_drive *d, unsigned unit)
{
    uint16_t w[256] = {0};
    char serial[21];
    g_snprintf(serial, sizeof(serial), "VIVARIUM-CD%u", unit);
    /* ATAPI, CD-ROM device type, removable, DRQ within 50 us, 12-byte
     * packets. */
    w[0] = 0x85c0;
    put_string(&w[10], serial, 10);
    put_string(&w[23], "0.1", 4);
    put_string(&w[27], "Vivarium DVD-ROM", 20);
    w[48] = 1;
    w[49] = 0x0b00; /* LBA, DMA, IORDY */
    w[50] = 0x4000;
    w[53] = 0x0007;
    uint16_t mwdma;
    uint16_t udma = identify_dma_words(d, &mwdma);
    w[62] = 0x0007;
    w[63] = mwdma;
    w[64] = 0x0003;
    w[65] = 0x00b4;
    w[66] = 0x00b4;
    w[67] = 0x012c;
    w[68] = 0x00b4;
    w[71] = 30;
    w[72] = 30;
    w[80] = 0x001e; /* ATA/ATAPI-1 to 4 */
    w[82] = 0x4014; /* packet, removable media, NOP */
    w[83] = 0x4000;
    w[84] = 0x4000;
    w[85] = 0x4014;
    w[86] = 0x0000;
    w[87] = 0x4000;
    w[88] = udma;
    w[93] = (uint16_t)(0x6000 | ((unit & 1) ? 0x0100 : 0x0001));
    identify_finish(d, w);
    pio_in_start(ch, d, 512, CONT_NONE);
}

static void atapi_packet_command(struct ide_channel *ch, struct ide_drive *d)
{
    /* Features bit 0 asks for the data phase by DMA. The byte count limit
     * bounds each PIO DRQ block; zero and odd values are rounded as drives
     * do. */
    d->byte_count_limit = (uint16_t)(ch->hcyl << 8 | ch->lcyl);
    if (d->byte_count_limit == 0 || d->byte_count_limit == 0xffff)
        d->byte_count_limit = 0xfffe;
    d->byte_count_limit &= (uint16_t)~1u;
    d->atapi_dma = (ch->feature & 1) != 0;
    d->transfer = XFER_PACKET;
    d->buffer_pos = 0;
    d->block_end = ATAPI_PACKET_SIZE;
    ch->nsector = ATAPI_REASON_COD;
    d->status = ATA_STATUS_DRDY | ATA_STATUS_DSC | ATA_STATUS_DRQ;
}

static void atapi_set_sense(struct ide_drive *d, uint8_t key, uint8_t asc, uint8_t ascq)
{
    d->sense_key = key;
    d->asc = asc;
    d->ascq = ascq;
}

static void atapi_ok(struct ide_channel *ch, struct ide_drive *d)
{
    transfer_stop(d);
    atapi_set_sense(d, SENSE_NONE, 0, 0);
    d->error = 0;
    d->status = ATA_STATUS_DRDY | ATA_STATUS_DSC;
    ch->nsector = ATAPI_REASON_IO | ATAPI_REASON_COD;
    channel_raise_irq(ch);
}

static void atapi_error(struct ide_channel *ch, struct ide_drive *d, uint8_t key, uint8_t asc)
{
    transfer_stop(d);
    atapi_set_sense(d, key, asc, 0);
    d->error = (uint8_t)(key << 4 | ATA_ERROR_ABRT);
    d->status = ATA_STATUS_DRDY | ATA_STATUS_ERR;
    ch->nsector = ATAPI_REASON_IO | ATAPI_REASON_COD;
    channel_raise_irq(ch);
}

/* Offers the next piece of buffered data as one DRQ block, refilling the
 * buffer from the disc for reads, or ends the command. */
static void atapi_next_block(struct ide_channel *ch, struct ide_drive *d)
{
    if (d->buffer_pos >= d->buffer_end) {
        if (d->sectors_left == 0) {
            atapi_ok(ch, d);
            return;
        }
        uint32_t n = MIN(d->sectors_left, (uint32_t)(IDE_BUFFER_SIZE / ATAPI_SECTOR_SIZE));
        if (!medium_present(d)) {
            atapi_error(ch, d, SENSE_NOT_READY, ASC_NO_MEDIUM);
            return;
        }
        if (block_read_sectors(d->bd, d->lba, ATAPI_SECTOR_SIZE, d->buffer, n) < 0) {
            atapi_error(ch, d, SENSE_MEDIUM_ERROR, ASC_READ_ERROR);
            return;
        }
        d->lba += n;
        d->sectors_left -= n;
        d->buffer_pos = 0;
        d->buffer_end = n * ATAPI_SECTOR_SIZE;
    }
    uint32_t len = MIN(d->buffer_end - d->buffer_pos, (uint32_t)d->byte_count_limit);
    d->transfer = XFER_PIO_IN;
    d->continuation = CONT_ATAPI_DATA;
    d->block_end = d->buffer_pos + len;
    ch->lcyl = (uint8_t)len;
    ch->hcyl = (uint8_t)(len >> 8);
    ch->nsector = ATAPI_REASON_IO;
    d->status = ATA_STATUS_DRDY | ATA_STATUS_DSC | ATA_STATUS_DRQ;
    channel_raise_irq(ch);
}

static void atapi_data_block_done(struct ide_channel *ch, struct ide_drive *d)
{
    atapi_next_block(ch, d);
}

/* Starts the data-in phase of a reply already in the buffer (len bytes),
 * or of sectors read from the disc (len 0, sectors_left set). */
static void atapi_send(struct ide_channel *ch, struct ide_drive *d, uint32_t len)
{
    d->buffer_pos = 0;
    d->buffer_end = len;
    if (d->buffer_end == 0 && d->sectors_left == 0) {
        atapi_ok(ch, d);
        return;
    }
    if (d->atapi_dma) {
        d->transfer = XFER_DMA_IN;
        d->status = ATA_STATUS_DRDY | ATA_STATUS_DSC | ATA_STATUS_DRQ;
        dma_try_start(ch);
        return;
    }
    atapi_next_block(ch, d);
}

static uint32_t allocation_length(uint32_t reply, uint32_t allocation)
{
    return MIN(reply, allocation);
}

static void put_be16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t be16_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A logical block address as minutes, seconds and frames, counting the
 * two-second pregap. */
static void put_msf(uint8_t *p, uint32_t lba)
{
    lba += 150;
    p[0] = 0;
    p[1] = (uint8_t)(lba / (60 * 75));
    p[2] = (uint8_t)(lba / 75 % 60);
    p[3] = (uint8_t)(lba % 75);
}

static void put_address(uint8_t *p, uint32_t lba, bool msf)
{
    if (msf)
        put_msf(p, lba);
    else
        put_be32(p, lba);
}

static uint32_t disc_sectors(const struct ide_drive *d)
{
    return (uint32_t)MIN(block_sector_count(d->bd, ATAPI_SECTOR_SIZE), (uint64_t)UINT32_MAX);
}

static bool atapi_read_toc(struct ide_drive *d, const uint8_t *packet, uint32_t *len)
{
    bool msf = packet[1] & 2;
    unsigned format = packet[2] & 0x0f;
    if (format == 0)
        format = packet[9] >> 6; /* the older place for it */
    unsigned start_track = packet[6];
    uint32_t leadout = disc_sectors(d);
    uint8_t *out = d->buffer;
    memset(out, 0, 64);
    uint32_t n;

    switch (format) {
    case 0: /* TOC: one data track and the lead-out */
        if (start_track > 1 && start_track != 0xaa)
            return false;
        out[2] = 1;
        out[3] = 1;
        n = 4;
        if (start_track <= 1) {
            out[n + 1] = 0x14; /* ADR 1, data track */
            out[n + 2] = 1;
            put_address(out + n + 4, 0, msf);
            n += 8;
        }
        out[n + 1] = 0x14;
        out[n + 2] = 0xaa;
        put_address(out + n + 4, leadout, msf);
        n += 8;
        break;
    case 1: /* multi-session information: one session */
        out[2] = 1;
        out[3] = 1;
        out[5] = 0x14;
        out[6] = 1;
        put_address(out + 8, 0, msf);
        n = 12;
        break;
    case 2: { /* raw TOC: the A0, A1, A2 points and track 1 */
        out[2] = 1;
        out[3] = 1;
        n = 4;
        static const uint8_t points[] = {0xa0, 0xa1, 0xa2, 0x01};
        for (unsigned i = 0; i < G_N_ELEMENTS(points); i++) {
            uint8_t *e = out + n;
            e[0] = 1;    /* session */
            e[1] = 0x14; /* ADR 1, data */
            e[3] = points[i];
            if (points[i] == 0xa0 || points[i] == 0xa1) {
                e[8] = 1; /* first and last track number */
            } else if (points[i] == 0xa2) {
                uint8_t msf_buf[4];
                put_msf(msf_buf, leadout);
                memcpy(e + 8, msf_buf + 1, 3);
            } else {
                uint8_t msf_buf[4];
                put_msf(msf_buf, 0);
                memcpy(e + 8, msf_buf + 1, 3);
            }
            n += 11;
        }
        break;
    }
    default:
        return false;
    }
    put_be16(out, n - 2);
    *len = n;
    return true;
}

static uint32_t atapi_mode_sense(struct ide_drive *d, unsigned page, unsigned control)
{
    uint8_t *out = d->buffer;
    memset(out, 0, 64);
    uint32_t n = 8;
    out[2] = medium_present(d) ? 0x01 : 0x70; /* 120 mm data disc, or no disc */
    if (page == 0x01 || page == 0x3f) {       /* read error recovery */
        out[n] = 0x01;
        out[n + 1] = 0x06;
        out[n + 3] = 5; /* read retry count */
        n += 8;
    }
    if (page == 0x2a || page == 0x3f) { /* CD/DVD capabilities and mechanical status */
        uint8_t *c = out + n;
        c[0] = 0x2a;
        c[1] = 0x12;
        c[2] = 0x3b; /* reads CD-R, CD-RW, DVD-ROM, DVD-R, method 2 */
        c[3] = 0x00; /* writes nothing */
        c[4] = 0x71; /* multi-session, mode 2 forms 1 and 2, audio play */
        c[5] = 0x5f; /* CD-DA, accurate stream, R-W, C2 pointers, ISRC, UPC */
        /* Lock supported, lock state, eject supported, tray loading. */
        c[6] = (uint8_t)(0x29 | (d->locked ? 0x02 : 0));
        put_be16(c + 8, 4 * 176);  /* maximum speed: 4x */
        put_be16(c + 10, 256);     /* volume levels */
        put_be16(c + 12, 512);     /* buffer size in KiB */
        put_be16(c + 14, 4 * 176); /* current speed */
        n += 20;
    }
    (void)control; /* current, changeable, default and saved values coincide */
    put_be16(out, n - 2);
    return n;
}

static uint32_t atapi_get_configuration(struct ide_drive *d, const uint8_t *packet)
{
    unsigned rt = packet[1] & 3;
    unsigned start = be16_at(packet + 2);
    bool dvd = medium_present(d) && disc_sectors(d) > CD_MAX_SECTORS;
    uint8_t *out = d->buffer;
    memset(out, 0, 64);
    uint16_t current = !medium_present(d) ? 0 : dvd ? PROFILE_DVDROM : PROFILE_CDROM;
    put_be16(out + 6, current);
    uint32_t n = 8;

    if ((rt == 2 && start == 0x0000) || (rt != 2 && start <= 0x0000)) {
        uint8_t *f = out + n; /* profile list */
        f[2] = 0x03;          /* persistent, current */
        f[3] = 8;
        put_be16(f + 4, PROFILE_DVDROM);
        f[6] = current == PROFILE_DVDROM;
        put_be16(f + 8, PROFILE_CDROM);
        f[10] = current == PROFILE_CDROM;
        n += 12;
    }
    if ((rt == 2 && start == 0x0001) || (rt != 2 && start <= 0x0001)) {
        uint8_t *f = out + n; /* core: ATAPI */
        put_be16(f, 0x0001);
        f[2] = 0x0b; /* version 2, persistent, current */
        f[3] = 8;
        put_be32(f + 4, 2);
        f[8] = 1; /* device busy event */
        n += 12;
    }
    if ((rt == 2 && start == 0x0003) || (rt != 2 && start <= 0x0003)) {
        uint8_t *f = out + n; /* removable medium: tray, eject, lock */
        put_be16(f, 0x0003);
        f[2] = 0x03;
        f[3] = 4;
        f[4] = (uint8_t)(0x29 | (d->locked ? 0x04 : 0));
        n += 8;
    }
    put_be32(out, n - 4);
    return n;
}

static uint32_t atapi_event_status(struct ide_drive *d, const uint8_t *packet)
{
    uint8_t *out = d->buffer;
    memset(out, 0, 8);
    unsigned classes = packet[4];
    out[3] = 0x10; /* supports the media class only */
    if (!(classes & 0x10)) {
        out[2] = 0x80; /* no event available */
        put_be16(out, 2);
        return 4;
    }
    out[2] = 0x04; /* media class */
    out[4] = d->media_event;
    d->media_event = MEDIA_EVENT_NONE;
    out[5] = (uint8_t)((medium_present(d) ? 0x02 : 0) | (d->tray_open ? 0x01 : 0));
    put_be16(out, 6);
    return 8;
}

static void atapi_start_stop(struct ide_channel *ch, struct ide_drive *d, const uint8_t *packet)
{
    bool load_eject = packet[4] & 2, start = packet[4] & 1;
    if (load_eject && !start) {
        if (d->locked) {
            atapi_error(ch, d, SENSE_NOT_READY, ASC_REMOVAL_PREVENTED);
            return;
        }
        if (!d->tray_open)
            d->media_event = MEDIA_EVENT_REMOVAL;
        d->tray_open = true;
    } else if (load_eject && start) {
        if (d->tray_open && d->bd) {
            d->unit_attention = true;
            d->media_event = MEDIA_EVENT_NEW;
        }
        d->tray_open = false;
    }
    atapi_ok(ch, d);
}

static bool atapi_needs_medium(uint8_t op)
{
    switch (op) {
    case 0x00: /* TEST UNIT READY */
    case 0x25: /* READ CAPACITY */
    case 0x28: /* READ(10) */
    case 0xa8: /* READ(12) */
    case 0xbe: /* READ CD */
    case 0x43: /* READ TOC */
    case 0x51: /* READ DISC INFORMATION */
    case 0x2b: /* SEEK */
        return true;
    default:
        return false;
    }
}

/* Commands that report instead of failing on a pending unit attention. */
static bool atapi_ignores_attention(uint8_t op)
{
    return op == 0x03 || op == 0x12 || op == 0x46 || op == 0x4a;
}

static void atapi_read(struct ide_channel *ch, struct ide_drive *d, uint32_t lba, uint32_t count)
{
    uint64_t total = disc_sectors(d);
    if (lba > total || count > total - lba) {
        atapi_error(ch, d, SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
        return;
    }
    d->lba = lba;
    d->sectors_left = count;
    atapi_send(ch, d, 0);
}

static void atapi_execute(struct ide_channel *ch, struct ide_drive *d)
{
    uint8_t packet[ATAPI_PACKET_SIZE];
    memcpy(packet, d->buffer, sizeof(packet));
    uint8_t op = packet[0];
    uint32_t len;
    d->sectors_left = 0;

    if (d->unit_attention && !atapi_ignores_attention(op)) {
        /* The guest hears once that the disc may have changed. */
        d->unit_attention = false;
        atapi_error(ch, d, SENSE_UNIT_ATTENTION, ASC_MEDIUM_CHANGED);
        return;
    }
    if (atapi_needs_medium(op) && !medium_present(d)) {
        atapi_error(ch, d, SENSE_NOT_READY, ASC_NO_MEDIUM);
        return;
    }

    switch (op) {
    case 0x00: /* TEST UNIT READY */
    case 0x2b: /* SEEK(10) */
    case 0xbb: /* SET CD SPEED */
        atapi_ok(ch, d);
        return;
    case 0x03: { /* REQUEST SENSE */
        uint8_t *out = d->buffer;
        memset(out, 0, 18);
        out[0] = 0x70; /* current error, fixed format */
        out[2] = d->sense_key;
        out[7] = 10;
        out[12] = d->asc;
        out[13] = d->ascq;
        if (d->sense_key == SENSE_UNIT_ATTENTION)
            d->unit_attention = false;
        len = allocation_length(18, packet[4]);
        atapi_set_sense(d, SENSE_NONE, 0, 0);
        atapi_send(ch, d, len);
        return;
    }
    case 0x12: { /* INQUIRY */
        uint8_t *out = d->buffer;
        memset(out, 0, 36);
        out[0] = 0x05; /* CD/DVD device */
        out[1] = 0x80; /* removable */
        out[2] = 0x00;
        out[3] = 0x21; /* ATAPI, response data format 1 */
        out[4] = 31;
        memcpy(out + 8, "VIVARIUM", 8);
        memcpy(out + 16, "DVD-ROM         ", 16);
        memcpy(out + 32, "0.1 ", 4);
        atapi_send(ch, d, allocation_length(36, packet[4]));
        return;
    }
    case 0x1b: /* START STOP UNIT */
        atapi_start_stop(ch, d, packet);
        return;
    case 0x1e: /* PREVENT ALLOW MEDIUM REMOVAL */
        d->locked = packet[4] & 1;
        atapi_ok(ch, d);
        return;
    case 0x25: { /* READ CAPACITY */
        put_be32(d->buffer, disc_sectors(d) - 1);
        put_be32(d->buffer + 4, ATAPI_SECTOR_SIZE);
        atapi_send(ch, d, 8);
        return;
    }
    case 0x28: /* READ(10) */
        atapi_read(ch, d, be32_at(packet + 2), be16_at(packet + 7));
        return;
    case 0xa8: /* READ(12) */
        atapi_read(ch, d, be32_at(packet + 2), be32_at(packet + 6));
        return;
    case 0xbe: /* READ CD: user data of data sectors only */
        if (packet[9] == 0) {
            atapi_ok(ch, d);
        } else if ((packet[9] & 0xf8) == 0x10) {
            atapi_read(ch, d, be32_at(packet + 2),
                       (uint32_t)packet[6] << 16 | (uint32_t)packet[7] << 8 | packet[8]);
        } else {
            atapi_error(ch, d, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
        }
        return;
    case 0x43: /* READ TOC/PMA/ATIP */
        if (!atapi_read_toc(d, packet, &len)) {
            atapi_error(ch, d, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
            return;
        }
        atapi_send(ch, d, allocation_length(len, be16_at(packet + 7)));
        return;
    case 0x46: /* GET CONFIGURATION */
        len = atapi_get_configuration(d, packet);
        atapi_send(ch, d, allocation_length(len, be16_at(packet + 7)));
        return;
    case 0x4a: /* GET EVENT STATUS NOTIFICATION: only polled operation */
        if (!(packet[1] & 1)) {
            atapi_error(ch, d, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
            return;
        }
        len = atapi_event_status(d, packet);
        atapi_send(ch, d, allocation_length(len, be16_at(packet + 7)));
        return;
    case 0x51: { /* READ DISC INFORMATION */
        if (packet[1] & 7) {
            atapi_error(ch, d, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
            return;
        }
        uint8_t *out = d->buffer;
        memset(out, 0, 34);
        put_be16(out, 32);
        out[2] = 0x0e; /* complete disc, complete last session */
        out[3] = 1;    /* first track */
        out[4] = 1;    /* sessions */
        out[5] = 1;    /* first and last track of the last session */
        out[6] = 1;
        out[7] = 0x20; /* unrestricted use */
        out[8] = 0x00; /* CD-ROM or DVD-ROM */
        atapi_send(ch, d, allocation_length(34, be16_at(packet + 7)));
        return;
    }
    case 0x5a: { /* MODE SENSE(10) */
        unsigned page = packet[2] & 0x3f;
        if (page != 0x01 && page != 0x2a && page != 0x3f) {
            atapi_error(ch, d, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
            return;
        }
        len = atapi_mode_sense(d, page, packet[2] >> 6);
        atapi_send(ch, d, allocation_length(len, be16_at(packet + 7)));
        return;
    }
    case 0xbd: { /* MECHANISM STATUS */
        uint8_t *out = d->buffer;
        memset(out, 0, 8);
        out[5] = 1; /* one slot */
        atapi_send(ch, d, allocation_length(8, be16_at(packet + 8)));
        return;
    }
    default:
        atapi_error(ch, d, SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
        return;
    }
}

/* ---- bus-master DMA ---- */

struct prd_walk {
    uint32_t table;
    uint32_t index;
    uint32_t address; /* of the current region */
    uint32_t left;    /* bytes left in it */
    bool last;        /* the current region is the table's last */
};

static bool prd_next(struct ide_controller *ide, struct prd_walk *walk)
{
    while (walk->left == 0) {
        if (walk->last || walk->index >= BMDMA_MAX_PRDS)
            return false;
        uint8_t prd[8];
        memory_read_buf(&ide->machine->mem, walk->table + walk->index * 8, prd, 8);
        walk->index++;
        walk->address =
            (uint32_t)(prd[0] | prd[1] << 8 | prd[2] << 16 | (uint32_t)prd[3] << 24) & ~1u;
        uint32_t count = (uint32_t)(prd[4] | prd[5] << 8) & ~1u;
        walk->left = count ? count : 0x10000;
        walk->last = prd[7] & 0x80;
    }
    return true;
}

/* Moves len bytes between buf and the memory the PRD table describes.
 * Returns false when the table ends first. */
static bool prd_transfer(struct ide_controller *ide, struct prd_walk *walk, uint8_t *buf,
                         uint32_t len, bool to_memory)
{
    while (len) {
        if (!prd_next(ide, walk))
            return false;
        uint32_t n = MIN(len, walk->left);
        if (to_memory)
            memory_write_buf(&ide->machine->mem, walk->address, buf, n);
        else
            memory_read_buf(&ide->machine->mem, walk->address, buf, n);
        walk->address += n;
        walk->left -= n;
        buf += n;
        len -= n;
    }
    return true;
}

static void dma_run(struct ide_channel *ch, struct ide_drive *d)
{
    struct ide_controller *ide = ch->ide;
    struct prd_walk walk = {.table = ch->bm_prd_address & ~3u};
    bool to_memory = d->transfer == XFER_DMA_IN;
    bool fits = true;
    int io_error = 0;

    /* A transfer in the wrong direction for the command is the guest's
     * mistake: the drive sees no data and the bus master stops with an
     * error. */
    if (!!(ch->bm_command & BM_CMD_TO_MEMORY) != to_memory) {
        ch->bm_status = (uint8_t)((ch->bm_status & ~BM_STATUS_ACTIVE) | BM_STATUS_ERROR);
        if (d->kind == IDE_CDROM)
            atapi_error(ch, d, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
        else
            ata_abort(ch, d);
        return;
    }

    if (d->kind == IDE_CDROM) {
        /* The reply in the buffer, then any sectors still to read. */
        fits = prd_transfer(ide, &walk, d->buffer, d->buffer_end, true);
        while (fits && d->sectors_left) {
            uint32_t n = MIN(d->sectors_left, (uint32_t)(IDE_BUFFER_SIZE / ATAPI_SECTOR_SIZE));
            if (!medium_present(d) ||
                block_read_sectors(d->bd, d->lba, ATAPI_SECTOR_SIZE, d->buffer, n) < 0) {
                io_error = -EIO;
                break;
            }
            fits = prd_transfer(ide, &walk, d->buffer, n * ATAPI_SECTOR_SIZE, true);
            d->lba += n;
            d->sectors_left -= n;
        }
    } else {
        while (fits && d->sectors_left) {
            uint32_t n = MIN(d->sectors_left, (uint32_t)(IDE_BUFFER_SIZE / BLOCK_SECTOR_SIZE));
            if (to_memory) {
                io_error = block_read_sectors(d->bd, d->lba, BLOCK_SECTOR_SIZE, d->buffer, n);
                if (io_error < 0)
                    break;
                fits = prd_transfer(ide, &walk, d->buffer, n * BLOCK_SECTOR_SIZE, true);
            } else {
                fits = prd_transfer(ide, &walk, d->buffer, n * BLOCK_SECTOR_SIZE, false);
                if (!fits)
                    break;
                io_error = block_write_sectors(d->bd, d->lba, BLOCK_SECTOR_SIZE, d->buffer, n);
                if (io_error < 0)
                    break;
            }
            d->lba += n;
            d->sectors_left -= n;
        }
        taskfile_set_lba(ch, d, d->lba - 1);
    }

    /* The engine stays active if the PRD table describes more memory than
     * the drive moved; it stops when the table ran out exactly or early. */
    uint8_t status = ch->bm_status;
    bool table_left = fits && (walk.left > 0 || !walk.last);
    if (!table_left)
        status &= (uint8_t)~BM_STATUS_ACTIVE;
    if (!fits || io_error < 0)
        status |= BM_STATUS_ERROR;
    ch->bm_status = status;

    if (d->kind == IDE_CDROM) {
        if (io_error < 0)
            atapi_error(ch, d, SENSE_MEDIUM_ERROR, ASC_READ_ERROR);
        else if (!fits)
            atapi_error(ch, d, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
        else
            atapi_ok(ch, d);
    } else if (io_error < 0) {
        ata_abort_error(ch, d, to_memory ? ATA_ERROR_UNC : ATA_ERROR_ABRT);
    } else if (!fits) {
        ata_abort(ch, d);
    } else {
        ata_complete(ch, d);
    }
}

/* Runs a DMA command once both the drive has one and the guest has started
 * the bus master, in whichever order they come. */
static void dma_try_start(struct ide_channel *ch)
{
    if (!(ch->bm_command & BM_CMD_START))
        return;
    struct ide_drive *d = selected(ch);
    if (d->transfer != XFER_DMA_IN && d->transfer != XFER_DMA_OUT)
        return;
    dma_run(ch, d);
}

uint32_t ide_bmdma_read(void *opaque, uint16_t port, unsigned size)
{
    struct ide_controller *ide = opaque;
    unsigned offset = port & 0xf;
    struct ide_channel *ch = &ide->channels[offset >> 3];
    uint32_t value = 0;
    for (unsigned i = 0; i < size && (offset & 7) + i < 8; i++) {
        uint8_t byte;
        switch ((offset & 7) + i) {
        case 0:
            byte = ch->bm_command;
            break;
        case 2:
            byte = ch->bm_status;
            break;
        case 4:
        case 5:
        case 6:
        case 7:
            byte = (uint8_t)(ch->bm_prd_address >> (8 * ((offset & 7) + i - 4)));
            break;
        default:
            byte = 0;
            break;
        }
        value |= (uint32_t)byte << (8 * i);
    }
    return value;
}

void ide_bmdma_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct ide_controller *ide = opaque;
    unsigned offset = port & 0xf;
    struct ide_channel *ch = &ide->channels[offset >> 3];
    for (unsigned i = 0; i < size && (offset & 7) + i < 8; i++) {
        uint8_t byte = (uint8_t)(value >> (8 * i));
        unsigned reg = (offset & 7) + i;
        switch (reg) {
        case 0: {
            bool was_started = ch->bm_command & BM_CMD_START;
            /* The direction bit only changes while the engine is stopped. */
            if (was_started)
                byte = (uint8_t)((byte & BM_CMD_START) | (ch->bm_command & BM_CMD_TO_MEMORY));
            ch->bm_command = byte & (BM_CMD_START | BM_CMD_TO_MEMORY);
            if (!(byte & BM_CMD_START)) {
                ch->bm_status &= (uint8_t)~BM_STATUS_ACTIVE;
            } else if (!was_started) {
                ch->bm_status |= BM_STATUS_ACTIVE;
                dma_try_start(ch);
            }
            break;
        }
        case 2:
            /* Interrupt and error clear when written with one; the two
             * capability bits are plain storage. */
            ch->bm_status = (uint8_t)((ch->bm_status & ~(byte & (BM_STATUS_IRQ | BM_STATUS_ERROR)) &
                                       ~BM_STATUS_CAPS) |
                                      (byte & BM_STATUS_CAPS));
            break;
        case 4:
        case 5:
        case 6:
        case 7: {
            unsigned shift = 8 * (reg - 4);
            ch->bm_prd_address =
                (ch->bm_prd_address & ~(0xffu << shift)) | ((uint32_t)byte << shift);
            ch->bm_prd_address &= ~3u;
            break;
        }
        default:
            break;
        }
    }
}

void ide_bmdma_set_base(struct ide_controller *ide, uint16_t io_base)
{
    io_base &= (uint16_t)~0xfu;
    if (io_base == ide->bmdma_base)
        return;
    if (ide->bmdma_base)
        ioport_unregister(&ide->machine->io, ide->bmdma_base, BMDMA_PORTS);
    ide->bmdma_base = 0;
    if (io_base && ioport_register(&ide->machine->io, io_base, BMDMA_PORTS, "ide-bmdma",
                                   ide_bmdma_read, ide_bmdma_write, ide) == 0)
        ide->bmdma_base = io_base;
}

/* ---- task file ports ---- */

static void drive_reset(struct ide_channel *ch, struct ide_drive *d)
{
    transfer_stop(d);
    d->error = 0x01;
    d->status = d->kind == IDE_DISK ? ATA_STATUS_DRDY | ATA_STATUS_DSC : 0;
    d->multiple_count = 0;
    d->lba48 = false;
    if (d->kind == IDE_DISK) {
        d->cur_cylinders = d->cylinders;
        d->cur_heads = d->heads;
        d->cur_sectors = d->sectors;
    }
    (void)ch;
}

static void channel_soft_reset(struct ide_channel *ch)
{
    ch->select = 0xa0;
    for (int i = 0; i < 2; i++)
        drive_reset(ch, &ch->drives[i]);
    set_signature(ch, &ch->drives[0]);
    ch->feature = ch->hob_feature = ch->hob_nsector = 0;
    ch->hob_sector = ch->hob_lcyl = ch->hob_hcyl = 0;
    ch->irq_pending = false;
    channel_update_irq(ch);
}

static uint32_t ide_command_read(void *opaque, uint16_t port, unsigned size)
{
    struct ide_channel *ch = opaque;
    unsigned reg = port & 7;
    if (reg == 0)
        return data_read(ch, size);
    if (!channel_has_drives(ch))
        return 0xff; /* nothing drives the bus */
    struct ide_drive *d = selected(ch);
    bool hob = ch->devctl & ATA_DEVCTL_HOB;
    switch (reg) {
    case 1:
        return hob ? ch->hob_feature : d->kind == IDE_NONE ? 0 : d->error;
    case 2:
        return hob ? ch->hob_nsector : ch->nsector;
    case 3:
        return hob ? ch->hob_sector : ch->sector;
    case 4:
        return hob ? ch->hob_lcyl : ch->lcyl;
    case 5:
        return hob ? ch->hob_hcyl : ch->hcyl;
    case 6:
        return ch->select;
    default: /* status: reading it acknowledges the interrupt */
        if (d->kind == IDE_NONE)
            return 0;
        ch->irq_pending = false;
        channel_update_irq(ch);
        return d->status;
    }
}

static void ide_command_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct ide_channel *ch = opaque;
    unsigned reg = port & 7;
    if (reg == 0) {
        data_write(ch, size, value);
        return;
    }
    uint8_t byte = (uint8_t)value;
    /* Writing any task file register clears HOB; the previous value of
     * the 48-bit registers moves to their "previous content" half. */
    ch->devctl &= (uint8_t)~ATA_DEVCTL_HOB;
    switch (reg) {
    case 1:
        ch->hob_feature = ch->feature;
        ch->feature = byte;
        break;
    case 2:
        ch->hob_nsector = ch->nsector;
        ch->nsector = byte;
        break;
    case 3:
        ch->hob_sector = ch->sector;
        ch->sector = byte;
        break;
    case 4:
        ch->hob_lcyl = ch->lcyl;
        ch->lcyl = byte;
        break;
    case 5:
        ch->hob_hcyl = ch->hcyl;
        ch->hcyl = byte;
        break;
    case 6:
        ch->select = byte | 0xa0;
        break;
    default:
        ide_command(ch, byte);
        break;
    }
}

static uint32_t ide_control_read(void *opaque, uint16_t port, unsigned size)
{
    struct ide_channel *ch = opaque;
    (void)port;
    (void)size;
    if (!channel_has_drives(ch))
        return 0xff;
    struct ide_drive *d = selected(ch);
    return d->kind == IDE_NONE ? 0 : d->status; /* alternate status: no acknowledge */
}

static void ide_control_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct ide_channel *ch = opaque;
    (void)port;
    (void)size;
    uint8_t old = ch->devctl;
    ch->devctl = (uint8_t)value;
    if ((value & ATA_DEVCTL_SRST) && !(old & ATA_DEVCTL_SRST)) {
        /* Reset asserted: the drives are busy until it is released. */
        for (int i = 0; i < 2; i++) {
            transfer_stop(&ch->drives[i]);
            if (ch->drives[i].kind != IDE_NONE)
                ch->drives[i].status = ATA_STATUS_BSY;
        }
    } else if (!(value & ATA_DEVCTL_SRST) && (old & ATA_DEVCTL_SRST)) {
        uint8_t devctl = ch->devctl;
        channel_soft_reset(ch);
        ch->devctl = devctl;
    }
    channel_update_irq(ch);
}

/* ---- setup ---- */

static void ide_reset(void *opaque)
{
    struct ide_controller *ide = opaque;
    for (int c = 0; c < 2; c++) {
        struct ide_channel *ch = &ide->channels[c];
        ch->devctl = 0;
        ch->bm_command = 0;
        ch->bm_status = 0;
        ch->bm_prd_address = 0;
        channel_soft_reset(ch);
        for (int i = 0; i < 2; i++) {
            struct ide_drive *d = &ch->drives[i];
            d->write_cache = true;
            d->transfer_mode = 0;
            d->locked = false;
            if (d->kind == IDE_CDROM) {
                /* A disc present at power on is announced as a media
                 * event, without a unit attention (as QEMU does, which
                 * guests' drivers are used to). */
                d->tray_open = false;
                d->unit_attention = false;
                atapi_set_sense(d, SENSE_NONE, 0, 0);
                d->media_event = d->bd ? MEDIA_EVENT_NEW : MEDIA_EVENT_NONE;
            }
        }
    }
}

struct ide_controller *ide_create(struct machine *m, const struct irq_line *primary_irq,
                                  const struct irq_line *secondary_irq)
{
    struct ide_controller *ide = g_new0(struct ide_controller, 1);
    ide->machine = m;
    const struct irq_line *irqs[2] = {primary_irq, secondary_irq};
    for (int c = 0; c < 2; c++) {
        struct ide_channel *ch = &ide->channels[c];
        ch->ide = ide;
        if (irqs[c])
            ch->irq = *irqs[c];
        ioport_register(&m->io, channel_command_ports[c], 8, "ide", ide_command_read,
                        ide_command_write, ch);
        ioport_register(&m->io, channel_control_ports[c], 1, "ide", ide_control_read,
                        ide_control_write, ch);
    }
    ide_reset(ide);
    machine_add_device(m, "ide", ide, &ide_vmstate, ide_reset);
    return ide;
}

void ide_destroy(struct ide_controller *ide)
{
    if (!ide)
        return;
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < 2; i++)
            block_close(ide->channels[c].drives[i].bd);
    }
    g_free(ide);
}

/* The geometry a BIOS expects of an ATA disk: 16 heads and 63 sectors per
 * track, as many cylinders as fit (at most 16383). Small disks keep fewer
 * heads so DOS-era CHS guests see the whole disk. */
static void disk_geometry(struct ide_drive *d)
{
    uint64_t total = block_sector_count(d->bd, BLOCK_SECTOR_SIZE);
    d->heads = 16;
    d->sectors = 63;
    uint64_t cylinders = total / (16 * 63);
    d->cylinders = (uint16_t)CLAMP(cylinders, 1, 16383);
    d->cur_cylinders = d->cylinders;
    d->cur_heads = d->heads;
    d->cur_sectors = d->sectors;
}

bool ide_attach_drive(struct ide_controller *ide, unsigned unit, enum ide_drive_kind kind,
                      struct block_device *bd)
{
    if (unit >= IDE_UNITS || kind == IDE_NONE)
        return false;
    struct ide_channel *ch = &ide->channels[unit / 2];
    struct ide_drive *d = &ch->drives[unit % 2];
    if (d->kind != IDE_NONE)
        return false;
    if (kind == IDE_DISK && (!bd || block_sector_count(bd, BLOCK_SECTOR_SIZE) == 0))
        return false;
    d->kind = (uint8_t)kind;
    d->bd = bd;
    if (kind == IDE_DISK)
        disk_geometry(d);
    ide_reset(ide);
    return true;
}

bool ide_change_media(struct ide_controller *ide, unsigned unit, struct block_device *bd,
                      bool force)
{
    if (unit >= IDE_UNITS)
        return false;
    struct ide_channel *ch = &ide->channels[unit / 2];
    struct ide_drive *d = &ch->drives[unit % 2];
    if (d->kind != IDE_CDROM || (d->locked && !force))
        return false;
    block_close(d->bd);
    d->bd = bd;
    d->tray_open = false;
    d->unit_attention = true;
    atapi_set_sense(d, SENSE_UNIT_ATTENTION, ASC_MEDIUM_CHANGED, 0);
    d->media_event = bd ? MEDIA_EVENT_NEW : MEDIA_EVENT_REMOVAL;
    /* A transfer from the old disc cannot go on. */
    if (d->transfer != XFER_NONE && d->transfer != XFER_PACKET) {
        atapi_error(ch, d, SENSE_UNIT_ATTENTION, ASC_MEDIUM_CHANGED);
        d->unit_attention = true;
    }
    return true;
}
