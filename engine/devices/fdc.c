/* The Intel 82077AA floppy disk controller, PC-AT mode.
 *
 * Follows the 82077AA datasheet (Intel 290166-007): the registers of
 * section 2 (DOR, MSR/DSR, FIFO, DIR/CCR), the command set of section 5
 * with its command, execution and result phases, status registers ST0-ST3
 * (section 5.2), and DMA or non-DMA execution (section 4.2).
 *
 * Seeks and transfers take no time: a SEEK interrupts at once, and a READ
 * DATA moves its bytes as fast as the DMA controller or the guest asks for
 * them. The data rate must match the medium's (as on real drives), which is
 * how BIOSes and Linux tell a 720 KiB disk from a 1.44 MiB one.
 */
#include "fdc.h"

#include <errno.h>
#include <string.h>

#include "../block/block.h"
#include "../irq.h"
#include "../ioport.h"
#include "../vmstate.h"
#include "dma.h"

#define FDC_BASE        0x3f0
#define FDC_DMA_CHANNEL 2
#define FDC_SECTOR_SIZE 512

/* Digital output register. */
#define DOR_SELECT   0x03
#define DOR_NRESET   0x04
#define DOR_DMA_IRQ  0x08 /* DMA and interrupt requests reach the bus */
#define DOR_MOTOR(n) (0x10 << (n))
/* Main status register. */
#define MSR_DRIVE_BUSY(n) (1 << (n))
#define MSR_CB            0x10 /* a command is in progress */
#define MSR_NDMA          0x20 /* execution phase in non-DMA mode */
#define MSR_DIO           0x40 /* the FIFO has data for the host */
#define MSR_RQM           0x80 /* the FIFO is ready */
/* Datarate select register. */
#define DSR_SW_RESET 0x80
#define DSR_RATE     0x03
/* Digital input register. */
#define DIR_DISK_CHANGE 0x80

/* ST0. */
#define ST0_ABNORMAL 0x40
#define ST0_INVALID  0x80
#define ST0_POLLED   0xc0 /* reset: drive ready changed */
#define ST0_SEEK_END 0x20
/* ST1. */
#define ST1_MISSING_ADDRESS 0x01
#define ST1_NOT_WRITABLE    0x02
#define ST1_NO_DATA         0x04
/* ST3. */
#define ST3_TWO_SIDED  0x08
#define ST3_TRACK0     0x10
#define ST3_READY      0x20
#define ST3_WRITE_PROT 0x40

enum fdc_rate { RATE_500K = 0, RATE_300K = 1, RATE_250K = 2, RATE_1M = 3 };

enum fdc_phase { PHASE_COMMAND, PHASE_EXECUTION, PHASE_RESULT };

enum fdc_operation { OP_NONE, OP_READ, OP_WRITE, OP_FORMAT };

struct floppy_format {
    uint32_t bytes;
    uint8_t tracks, heads, sectors;
    uint8_t rate;
    uint8_t cmos_type;
};

static const struct floppy_format floppy_formats[] = {
    {1474560, 80, 2, 18, RATE_500K, 4}, /* 1.44 MiB */
    {2949120, 80, 2, 36, RATE_1M, 5},   /* 2.88 MiB */
    {737280, 80, 2, 9, RATE_250K, 3},   /* 720 KiB */
    {1228800, 80, 2, 15, RATE_500K, 2}, /* 1.2 MiB */
    {1720320, 80, 2, 21, RATE_500K, 4}, /* 1.68 MiB DMF */
    {368640, 40, 2, 9, RATE_300K, 1},   /* 360 KiB */
    {327680, 40, 2, 8, RATE_300K, 1},   /* 320 KiB */
    {184320, 40, 1, 9, RATE_300K, 1},   /* 180 KiB */
    {163840, 40, 1, 8, RATE_300K, 1},   /* 160 KiB */
};

struct fdc_drive {
    uint8_t track; /* where the head is */
    uint8_t head;  /* last head used */
    bool disk_changed;
    /* The medium's format (all zero without a disk). */
    uint8_t tracks, heads, sectors, rate;
    struct block_device *bd; /* not in the snapshot */
};

struct fdc {
    uint8_t dor, tdr, dsr;
    uint8_t phase;
    uint8_t command[9];
    uint8_t command_len, command_pos;
    uint8_t result[10];
    uint8_t result_len, result_pos;

    /* SENSE INTERRUPT STATUS: the ST0 and cylinder of the last seek, and
     * after a reset one polled status per drive. */
    bool interrupt_pending;
    bool irq_level;
    uint8_t sense_st0, sense_cylinder;
    uint8_t reset_senses;

    /* SPECIFY, CONFIGURE, LOCK and PERPENDICULAR MODE settings. */
    uint8_t step_unload, load_dma; /* SRT/HUT and HLT/ND bytes */
    uint8_t config, pretrack, perpendicular;
    bool lock;

    /* The transfer in the execution phase. */
    uint8_t operation;
    uint8_t drive;
    uint8_t cyl, head, sector, size_code, end_of_track;
    bool multi_track;
    uint8_t format_sectors, format_fill, format_done;
    uint32_t data_pos, data_len;
    uint8_t data[FDC_SECTOR_SIZE];

    struct fdc_drive drives[FDC_DRIVES];

    struct irq_line irq;
    struct isa_dma *dma;
};

static const struct vmstate_field fdc_drive_fields[] = {
    VMSTATE_U8(struct fdc_drive, track),          VMSTATE_U8(struct fdc_drive, head),
    VMSTATE_BOOL(struct fdc_drive, disk_changed), VMSTATE_U8(struct fdc_drive, tracks),
    VMSTATE_U8(struct fdc_drive, heads),          VMSTATE_U8(struct fdc_drive, sectors),
    VMSTATE_U8(struct fdc_drive, rate),           VMSTATE_END,
};

static const struct vmstate_desc fdc_drive_vmstate = {
    .name = "fdc-drive",
    .version = 1,
    .fields = fdc_drive_fields,
};

static const struct vmstate_field fdc_fields[] = {
    VMSTATE_U8(struct fdc, dor),
    VMSTATE_U8(struct fdc, tdr),
    VMSTATE_U8(struct fdc, dsr),
    VMSTATE_U8(struct fdc, phase),
    VMSTATE_U8_ARRAY(struct fdc, command),
    VMSTATE_U8(struct fdc, command_len),
    VMSTATE_U8(struct fdc, command_pos),
    VMSTATE_U8_ARRAY(struct fdc, result),
    VMSTATE_U8(struct fdc, result_len),
    VMSTATE_U8(struct fdc, result_pos),
    VMSTATE_BOOL(struct fdc, interrupt_pending),
    VMSTATE_BOOL(struct fdc, irq_level),
    VMSTATE_U8(struct fdc, sense_st0),
    VMSTATE_U8(struct fdc, sense_cylinder),
    VMSTATE_U8(struct fdc, reset_senses),
    VMSTATE_U8(struct fdc, step_unload),
    VMSTATE_U8(struct fdc, load_dma),
    VMSTATE_U8(struct fdc, config),
    VMSTATE_U8(struct fdc, pretrack),
    VMSTATE_U8(struct fdc, perpendicular),
    VMSTATE_BOOL(struct fdc, lock),
    VMSTATE_U8(struct fdc, operation),
    VMSTATE_U8(struct fdc, drive),
    VMSTATE_U8(struct fdc, cyl),
    VMSTATE_U8(struct fdc, head),
    VMSTATE_U8(struct fdc, sector),
    VMSTATE_U8(struct fdc, size_code),
    VMSTATE_U8(struct fdc, end_of_track),
    VMSTATE_BOOL(struct fdc, multi_track),
    VMSTATE_U8(struct fdc, format_sectors),
    VMSTATE_U8(struct fdc, format_fill),
    VMSTATE_U8(struct fdc, format_done),
    VMSTATE_U32(struct fdc, data_pos),
    VMSTATE_U32(struct fdc, data_len),
    VMSTATE_U8_ARRAY(struct fdc, data),
    VMSTATE_STRUCT_ARRAY(struct fdc, drives, fdc_drive_vmstate),
    VMSTATE_END,
};

const struct vmstate_desc fdc_vmstate = {
    .name = "fdc",
    .version = 1,
    .fields = fdc_fields,
};

/* ---- interrupts ---- */

static void fdc_update_irq(struct fdc *fdc)
{
    bool level = fdc->interrupt_pending && (fdc->dor & DOR_DMA_IRQ);
    if (level != fdc->irq_level) {
        fdc->irq_level = level;
        irq_set(&fdc->irq, level);
    }
}

static void fdc_raise_irq(struct fdc *fdc)
{
    fdc->interrupt_pending = true;
    fdc_update_irq(fdc);
}

static void fdc_lower_irq(struct fdc *fdc)
{
    fdc->interrupt_pending = false;
    fdc_update_irq(fdc);
}

static bool dma_mode(const struct fdc *fdc)
{
    return !(fdc->load_dma & 1) && fdc->dma;
}

/* ---- phases ---- */

static void enter_command_phase(struct fdc *fdc)
{
    fdc->phase = PHASE_COMMAND;
    fdc->command_pos = 0;
    fdc->command_len = 0;
    fdc->operation = OP_NONE;
}

static void enter_result_phase(struct fdc *fdc, unsigned len)
{
    fdc->phase = PHASE_RESULT;
    fdc->result_len = (uint8_t)len;
    fdc->result_pos = 0;
}

static uint8_t drive_head_bits(const struct fdc *fdc)
{
    return (uint8_t)(fdc->head << 2 | fdc->drive);
}

/* Ends an execution phase with the seven standard result bytes and an
 * interrupt. */
static void finish_transfer(struct fdc *fdc, uint8_t st0, uint8_t st1, uint8_t st2)
{
    if (fdc->dma)
        isa_dma_release_dreq(fdc->dma, FDC_DMA_CHANNEL);
    fdc->result[0] = (uint8_t)(st0 | drive_head_bits(fdc));
    fdc->result[1] = st1;
    fdc->result[2] = st2;
    fdc->result[3] = fdc->cyl;
    fdc->result[4] = fdc->head;
    fdc->result[5] = fdc->sector;
    fdc->result[6] = fdc->size_code;
    fdc->operation = OP_NONE;
    enter_result_phase(fdc, 7);
    fdc_raise_irq(fdc);
}

static void finish_error(struct fdc *fdc, uint8_t st1, uint8_t st2)
{
    finish_transfer(fdc, ST0_ABNORMAL, st1, st2);
}

/* ---- media ---- */

static struct fdc_drive *current_drive(struct fdc *fdc)
{
    return &fdc->drives[fdc->drive];
}

/* The byte offset of C/H/R on the current drive, or -1 when no such sector
 * can be read at the current data rate. */
static int64_t sector_offset(struct fdc *fdc)
{
    struct fdc_drive *d = current_drive(fdc);
    if (!d->bd || (fdc->dsr & DSR_RATE) != d->rate)
        return -1;
    if (fdc->cyl >= d->tracks || fdc->head >= d->heads || fdc->sector == 0 ||
        fdc->sector > d->sectors || fdc->size_code != 2)
        return -1;
    uint64_t lba = ((uint64_t)fdc->cyl * d->heads + fdc->head) * d->sectors + fdc->sector - 1;
    return (int64_t)(lba * FDC_SECTOR_SIZE);
}

/* Moves C/H/R to the next sector of a multi-sector transfer; false at the
 * end of the track (or of both sides with MT). */
static bool advance_sector(struct fdc *fdc)
{
    if (fdc->sector < fdc->end_of_track) {
        fdc->sector++;
        return true;
    }
    fdc->sector = 1;
    if (fdc->multi_track && fdc->head == 0) {
        fdc->head = 1;
        return true;
    }
    /* Past the end of the cylinder the result names the next one. */
    if (fdc->multi_track)
        fdc->head = 0;
    fdc->cyl++;
    return false;
}

static bool load_sector(struct fdc *fdc)
{
    int64_t offset = sector_offset(fdc);
    if (offset < 0) {
        finish_error(fdc, ST1_NO_DATA, 0);
        return false;
    }
    /* An image shorter than its disk format (a lone boot sector, say) reads
     * as zeros past its end, as if the rest of the disk were blank. */
    struct block_device *bd = current_drive(fdc)->bd;
    uint64_t length = block_length(bd);
    size_t available = (uint64_t)offset >= length ? 0
                       : length - (uint64_t)offset < FDC_SECTOR_SIZE
                           ? (size_t)(length - (uint64_t)offset)
                           : FDC_SECTOR_SIZE;
    memset(fdc->data + available, 0, FDC_SECTOR_SIZE - available);
    if (available && block_read(bd, (uint64_t)offset, fdc->data, available) < 0) {
        finish_error(fdc, ST1_NO_DATA, 0x20 /* data error in the data field */);
        return false;
    }
    fdc->data_pos = 0;
    fdc->data_len = FDC_SECTOR_SIZE;
    return true;
}

static bool store_sector(struct fdc *fdc)
{
    int64_t offset = sector_offset(fdc);
    if (offset < 0) {
        finish_error(fdc, ST1_NO_DATA, 0);
        return false;
    }
    if (block_write(current_drive(fdc)->bd, (uint64_t)offset, fdc->data, FDC_SECTOR_SIZE) < 0) {
        finish_error(fdc, ST1_NOT_WRITABLE, 0);
        return false;
    }
    return true;
}

/* One formatted sector: its ID (C, H, R, N) came from the host. */
static bool format_sector(struct fdc *fdc)
{
    uint8_t saved_cyl = fdc->cyl, saved_head = fdc->head;
    fdc->cyl = fdc->data[0];
    fdc->head = fdc->data[1];
    fdc->sector = fdc->data[2];
    fdc->size_code = fdc->data[3];
    memset(fdc->data, fdc->format_fill, FDC_SECTOR_SIZE);
    bool ok = store_sector(fdc);
    if (ok) {
        fdc->cyl = saved_cyl;
        fdc->head = saved_head;
    }
    return ok;
}

/* A data byte or block has been used up: move on to the next sector or
 * finish. Returns false when the execution phase is over. */
static bool transfer_step(struct fdc *fdc)
{
    switch (fdc->operation) {
    case OP_READ:
        if (!advance_sector(fdc)) {
            finish_transfer(fdc, 0, 0, 0);
            return false;
        }
        return load_sector(fdc);
    case OP_WRITE:
        if (!store_sector(fdc))
            return false;
        if (!advance_sector(fdc)) {
            finish_transfer(fdc, 0, 0, 0);
            return false;
        }
        fdc->data_pos = 0;
        fdc->data_len = FDC_SECTOR_SIZE;
        return true;
    case OP_FORMAT:
        if (!format_sector(fdc))
            return false;
        if (++fdc->format_done >= fdc->format_sectors) {
            fdc->sector = fdc->format_sectors;
            finish_transfer(fdc, 0, 0, 0);
            return false;
        }
        fdc->data_pos = 0;
        fdc->data_len = 4;
        return true;
    default:
        return false;
    }
}

/* The 8237 calls this while DREQ is held: move bytes between the sector
 * buffer and memory. Terminal count ends the command at the point reached,
 * which is how a BIOS reads fewer sectors than the rest of the track. */
static int fdc_dma_transfer(void *opaque, int channel, int position, int size)
{
    struct fdc *fdc = opaque;
    (void)channel;
    while (position < size && fdc->phase == PHASE_EXECUTION && fdc->operation != OP_NONE) {
        int n = (int)MIN((uint32_t)(size - position), fdc->data_len - fdc->data_pos);
        if (fdc->operation == OP_READ)
            isa_dma_write_memory(fdc->dma, FDC_DMA_CHANNEL, fdc->data + fdc->data_pos, position, n);
        else
            isa_dma_read_memory(fdc->dma, FDC_DMA_CHANNEL, fdc->data + fdc->data_pos, position, n);
        position += n;
        fdc->data_pos += (uint32_t)n;
        if (fdc->data_pos < fdc->data_len)
            continue;
        if (position >= size) {
            /* Terminal count at a sector boundary: write the sector, name
             * the next one in the result, and stop. */
            if (fdc->operation == OP_WRITE && !store_sector(fdc))
                break;
            if (fdc->operation == OP_FORMAT) {
                if (!format_sector(fdc))
                    break;
                fdc->sector = (uint8_t)(fdc->format_done + 1);
            } else {
                advance_sector(fdc);
            }
            finish_transfer(fdc, 0, 0, 0);
            break;
        }
        if (!transfer_step(fdc))
            break;
    }
    if (position >= size && fdc->phase == PHASE_EXECUTION && fdc->operation != OP_NONE) {
        /* Terminal count in the middle of a sector. */
        advance_sector(fdc);
        finish_transfer(fdc, 0, 0, 0);
    }
    return position;
}

/* ---- commands ---- */

enum fdc_command {
    CMD_READ_TRACK = 0x02,
    CMD_SPECIFY = 0x03,
    CMD_SENSE_DRIVE_STATUS = 0x04,
    CMD_WRITE_DATA = 0x05,
    CMD_READ_DATA = 0x06,
    CMD_RECALIBRATE = 0x07,
    CMD_SENSE_INTERRUPT = 0x08,
    CMD_READ_ID = 0x0a,
    CMD_FORMAT_TRACK = 0x0d,
    CMD_DUMPREG = 0x0e,
    CMD_SEEK = 0x0f,
    CMD_VERSION = 0x10,
    CMD_PERPENDICULAR = 0x12,
    CMD_CONFIGURE = 0x13,
    CMD_LOCK = 0x14,
};

/* Total command length, with the opcode byte, by the opcode's low five
 * bits; 0 for commands the 82077AA does not have. */
static unsigned command_length(uint8_t opcode)
{
    switch (opcode & 0x1f) {
    case CMD_READ_DATA:
    case CMD_WRITE_DATA:
        return 9;
    case CMD_FORMAT_TRACK:
        return 6;
    case CMD_SPECIFY:
    case CMD_SEEK:
        return 3;
    case CMD_SENSE_DRIVE_STATUS:
    case CMD_RECALIBRATE:
    case CMD_READ_ID:
    case CMD_PERPENDICULAR:
        return 2;
    case CMD_CONFIGURE:
        return 4;
    case CMD_SENSE_INTERRUPT:
    case CMD_DUMPREG:
    case CMD_VERSION:
    case CMD_LOCK:
        return 1;
    default:
        return 0;
    }
}

static void select_drive(struct fdc *fdc, uint8_t hds_ds)
{
    /* Two drives are wired; the DOR and commands can name four. */
    fdc->drive = hds_ds & 1;
    fdc->head = (hds_ds >> 2) & 1;
}

static void seek_done(struct fdc *fdc, uint8_t cylinder)
{
    struct fdc_drive *d = current_drive(fdc);
    /* Stepping with a disk in the drive clears the change line. */
    if (cylinder != d->track && d->bd)
        d->disk_changed = false;
    d->track = cylinder;
    fdc->sense_st0 = (uint8_t)(ST0_SEEK_END | drive_head_bits(fdc));
    fdc->sense_cylinder = cylinder;
    enter_command_phase(fdc);
    fdc_raise_irq(fdc);
}

static void start_execution(struct fdc *fdc, enum fdc_operation op)
{
    fdc->operation = (uint8_t)op;
    fdc->phase = PHASE_EXECUTION;
    if (dma_mode(fdc))
        isa_dma_hold_dreq(fdc->dma, FDC_DMA_CHANNEL);
    else
        fdc_raise_irq(fdc); /* non-DMA: the host may now move the first byte */
}

static void command_read_write(struct fdc *fdc, bool write)
{
    const uint8_t *c = fdc->command;
    select_drive(fdc, c[1]);
    fdc->multi_track = c[0] & 0x80;
    fdc->cyl = c[2];
    fdc->head = c[3] & 1;
    fdc->sector = c[4];
    fdc->size_code = c[5];
    fdc->end_of_track = c[6];
    struct fdc_drive *d = current_drive(fdc);
    d->track = fdc->cyl; /* the implied seek QEMU and real BIOSes rely on */
    d->head = fdc->head;
    if (write && d->bd && block_is_readonly(d->bd)) {
        finish_error(fdc, ST1_NOT_WRITABLE, 0);
        return;
    }
    if (!d->bd || (fdc->dsr & DSR_RATE) != d->rate) {
        /* No disk, or the wrong data rate: no address mark is ever found. */
        finish_error(fdc, ST1_MISSING_ADDRESS, 0);
        return;
    }
    if (sector_offset(fdc) < 0) {
        finish_error(fdc, ST1_NO_DATA, 0);
        return;
    }
    if (write) {
        fdc->data_pos = 0;
        fdc->data_len = FDC_SECTOR_SIZE;
    } else if (!load_sector(fdc)) {
        return;
    }
    start_execution(fdc, write ? OP_WRITE : OP_READ);
}

static void command_format(struct fdc *fdc)
{
    const uint8_t *c = fdc->command;
    select_drive(fdc, c[1]);
    struct fdc_drive *d = current_drive(fdc);
    fdc->cyl = d->track;
    fdc->size_code = c[2];
    fdc->format_sectors = c[3];
    fdc->format_fill = c[5];
    fdc->format_done = 0;
    fdc->sector = 1;
    if (!d->bd || (fdc->dsr & DSR_RATE) != d->rate || fdc->format_sectors == 0) {
        finish_error(fdc, ST1_MISSING_ADDRESS, 0);
        return;
    }
    if (block_is_readonly(d->bd)) {
        finish_error(fdc, ST1_NOT_WRITABLE, 0);
        return;
    }
    fdc->data_pos = 0;
    fdc->data_len = 4;
    start_execution(fdc, OP_FORMAT);
}

static void execute_command(struct fdc *fdc)
{
    const uint8_t *c = fdc->command;
    switch (c[0] & 0x1f) {
    case CMD_READ_DATA:
        command_read_write(fdc, false);
        return;
    case CMD_WRITE_DATA:
        command_read_write(fdc, true);
        return;
    case CMD_FORMAT_TRACK:
        command_format(fdc);
        return;
    case CMD_SPECIFY:
        fdc->step_unload = c[1];
        fdc->load_dma = c[2];
        enter_command_phase(fdc);
        return;
    case CMD_SENSE_DRIVE_STATUS: {
        select_drive(fdc, c[1]);
        struct fdc_drive *d = current_drive(fdc);
        uint8_t st3 = (uint8_t)(ST3_READY | ST3_TWO_SIDED | drive_head_bits(fdc));
        if (d->track == 0)
            st3 |= ST3_TRACK0;
        if (d->bd && block_is_readonly(d->bd))
            st3 |= ST3_WRITE_PROT;
        fdc->result[0] = st3;
        enter_result_phase(fdc, 1);
        return;
    }
    case CMD_RECALIBRATE:
        select_drive(fdc, c[1] & 3);
        seek_done(fdc, 0);
        return;
    case CMD_SEEK:
        select_drive(fdc, c[1]);
        seek_done(fdc, c[2]);
        return;
    case CMD_SENSE_INTERRUPT:
        if (fdc->reset_senses) {
            /* After a reset, one polled status for each of four drives. */
            unsigned drive = 4 - fdc->reset_senses--;
            fdc->result[0] = (uint8_t)(ST0_POLLED | drive);
            fdc->result[1] = drive < FDC_DRIVES ? fdc->drives[drive].track : 0;
            enter_result_phase(fdc, 2);
        } else if (fdc->interrupt_pending) {
            fdc->result[0] = fdc->sense_st0;
            fdc->result[1] = fdc->sense_cylinder;
            enter_result_phase(fdc, 2);
        } else {
            fdc->result[0] = ST0_INVALID;
            enter_result_phase(fdc, 1);
        }
        fdc_lower_irq(fdc);
        return;
    case CMD_READ_ID: {
        select_drive(fdc, c[1]);
        struct fdc_drive *d = current_drive(fdc);
        fdc->cyl = d->track;
        fdc->sector = 1;
        fdc->size_code = 2;
        if (!d->bd || (fdc->dsr & DSR_RATE) != d->rate || d->track >= d->tracks ||
            fdc->head >= d->heads)
            finish_error(fdc, ST1_MISSING_ADDRESS, 0);
        else
            finish_transfer(fdc, 0, 0, 0);
        return;
    }
    case CMD_VERSION:
        fdc->result[0] = 0x90; /* 82077AA */
        enter_result_phase(fdc, 1);
        return;
    case CMD_CONFIGURE:
        fdc->config = c[2];
        fdc->pretrack = c[3];
        enter_command_phase(fdc);
        return;
    case CMD_LOCK:
        fdc->lock = c[0] & 0x80;
        fdc->result[0] = (uint8_t)(fdc->lock ? 0x10 : 0);
        enter_result_phase(fdc, 1);
        return;
    case CMD_PERPENDICULAR:
        /* Bit 7 (OW) lets the drive bits change; the gap bits always do. */
        if (c[1] & 0x80)
            fdc->perpendicular = c[1] & 0x3f;
        else
            fdc->perpendicular = (uint8_t)((fdc->perpendicular & 0x3c) | (c[1] & 0x03));
        enter_command_phase(fdc);
        return;
    case CMD_DUMPREG:
        for (int i = 0; i < 4; i++)
            fdc->result[i] = i < FDC_DRIVES ? fdc->drives[i].track : 0;
        fdc->result[4] = fdc->step_unload;
        fdc->result[5] = fdc->load_dma;
        fdc->result[6] = fdc->end_of_track;
        fdc->result[7] = (uint8_t)((fdc->lock ? 0x80 : 0) | (fdc->perpendicular & 0x3f));
        fdc->result[8] = fdc->config;
        fdc->result[9] = fdc->pretrack;
        enter_result_phase(fdc, 10);
        return;
    }
}

/* ---- registers ---- */

static uint8_t fdc_msr(const struct fdc *fdc)
{
    if (!(fdc->dor & DOR_NRESET))
        return 0;
    switch (fdc->phase) {
    case PHASE_RESULT:
        return MSR_RQM | MSR_DIO | MSR_CB;
    case PHASE_EXECUTION:
        if (dma_mode(fdc))
            return MSR_CB;
        return (uint8_t)(MSR_RQM | MSR_NDMA | MSR_CB | (fdc->operation == OP_READ ? MSR_DIO : 0));
    default:
        return (uint8_t)(MSR_RQM | (fdc->command_pos ? MSR_CB : 0));
    }
}

static uint8_t fifo_read(struct fdc *fdc)
{
    if (fdc->phase == PHASE_RESULT) {
        uint8_t v = fdc->result[fdc->result_pos++];
        if (fdc->result_pos >= fdc->result_len) {
            enter_command_phase(fdc);
            /* Reading the results of a transfer acknowledges it. */
            if (!fdc->reset_senses)
                fdc_lower_irq(fdc);
        }
        return v;
    }
    if (fdc->phase == PHASE_EXECUTION && !dma_mode(fdc) && fdc->operation == OP_READ) {
        fdc_lower_irq(fdc);
        uint8_t v = fdc->data[fdc->data_pos++];
        if (fdc->data_pos >= fdc->data_len && transfer_step(fdc))
            fdc_raise_irq(fdc);
        return v;
    }
    return 0xff;
}

static void fifo_write(struct fdc *fdc, uint8_t value)
{
    if (fdc->phase == PHASE_EXECUTION) {
        if (dma_mode(fdc) || fdc->operation == OP_READ || fdc->operation == OP_NONE)
            return;
        fdc_lower_irq(fdc);
        fdc->data[fdc->data_pos++] = value;
        if (fdc->data_pos >= fdc->data_len && transfer_step(fdc))
            fdc_raise_irq(fdc);
        return;
    }
    if (fdc->phase == PHASE_RESULT) {
        /* Writing while results wait is a protocol error: start over. */
        enter_command_phase(fdc);
    }
    if (fdc->command_pos == 0) {
        unsigned len = command_length(value);
        if (len == 0) {
            fdc->result[0] = ST0_INVALID;
            enter_result_phase(fdc, 1);
            return;
        }
        fdc->command_len = (uint8_t)len;
    }
    fdc->command[fdc->command_pos++] = value;
    if (fdc->command_pos >= fdc->command_len) {
        fdc->command_pos = 0;
        execute_command(fdc);
    }
}

/* The controller's reset (DOR bit 2 low, or DSR bit 7): everything but the
 * SPECIFY timings and, when locked, the CONFIGURE settings. */
static void controller_reset(struct fdc *fdc)
{
    if (fdc->dma && fdc->phase == PHASE_EXECUTION)
        isa_dma_release_dreq(fdc->dma, FDC_DMA_CHANNEL);
    enter_command_phase(fdc);
    fdc->result_len = fdc->result_pos = 0;
    fdc->dsr = RATE_250K;
    fdc->perpendicular &= 0x3c;
    if (!fdc->lock) {
        fdc->config = 0x20; /* FIFO disabled, implied seeks off */
        fdc->pretrack = 0;
    }
    fdc->reset_senses = 0;
    fdc_lower_irq(fdc);
}

/* Leaving reset interrupts, and four SENSE INTERRUPT STATUS commands then
 * report each drive's ready line. */
static void controller_reset_done(struct fdc *fdc)
{
    fdc->reset_senses = 4;
    fdc_raise_irq(fdc);
}

static uint32_t fdc_read(void *opaque, uint16_t port, unsigned size)
{
    struct fdc *fdc = opaque;
    (void)size;
    switch (port - FDC_BASE) {
    case 2:
        return fdc->dor;
    case 3:
        return fdc->tdr;
    case 4:
        return fdc_msr(fdc);
    case 5:
        return fifo_read(fdc);
    case 7: {
        struct fdc_drive *d = &fdc->drives[(fdc->dor & DOR_SELECT) & 1];
        return d->disk_changed ? DIR_DISK_CHANGE : 0;
    }
    default: /* status registers A and B exist only in PS/2 mode */
        return 0xff;
    }
}

static void fdc_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct fdc *fdc = opaque;
    uint8_t byte = (uint8_t)value;
    (void)size;
    switch (port - FDC_BASE) {
    case 2: {
        uint8_t old = fdc->dor;
        fdc->dor = byte;
        if (!(byte & DOR_NRESET)) {
            if (old & DOR_NRESET)
                controller_reset(fdc);
        } else if (!(old & DOR_NRESET)) {
            controller_reset_done(fdc);
        }
        fdc_update_irq(fdc);
        break;
    }
    case 3:
        fdc->tdr = byte & 3;
        break;
    case 4: /* data rate select */
        if (byte & DSR_SW_RESET) {
            controller_reset(fdc);
            controller_reset_done(fdc);
        }
        fdc->dsr = byte & 0x7f & ~DSR_SW_RESET;
        break;
    case 5:
        if (fdc->dor & DOR_NRESET)
            fifo_write(fdc, byte);
        break;
    case 7: /* configuration control: the data rate */
        fdc->dsr = (uint8_t)((fdc->dsr & ~DSR_RATE) | (byte & DSR_RATE));
        break;
    default:
        break;
    }
}

/* ---- setup ---- */

void fdc_reset(void *opaque)
{
    struct fdc *fdc = opaque;
    fdc->lock = false;
    fdc->step_unload = fdc->load_dma = 0;
    controller_reset(fdc);
    fdc->dor = DOR_NRESET | DOR_DMA_IRQ;
    fdc->tdr = 0;
    for (int i = 0; i < FDC_DRIVES; i++) {
        fdc->drives[i].track = 0;
        fdc->drives[i].head = 0;
    }
    fdc_update_irq(fdc);
}

struct fdc *fdc_create(struct ioport_bus *io, const struct irq_line *irq, struct isa_dma *dma)
{
    struct fdc *fdc = g_new0(struct fdc, 1);
    if (irq)
        fdc->irq = *irq;
    fdc->dma = dma;
    /* 0x3f6 is the IDE controller's; the floppy controller has the rest. */
    ioport_register(io, FDC_BASE, 6, "fdc", fdc_read, fdc_write, fdc);
    ioport_register(io, FDC_BASE + 7, 1, "fdc", fdc_read, fdc_write, fdc);
    if (dma)
        isa_dma_register_channel(dma, FDC_DMA_CHANNEL, fdc_dma_transfer, fdc);
    for (int i = 0; i < FDC_DRIVES; i++)
        fdc->drives[i].disk_changed = true; /* as a drive reports after power-up */
    fdc_reset(fdc);
    return fdc;
}

void fdc_destroy(struct fdc *fdc)
{
    if (!fdc)
        return;
    for (int i = 0; i < FDC_DRIVES; i++)
        block_close(fdc->drives[i].bd);
    g_free(fdc);
}

/* The format of an image by its size. An image smaller than every format
 * (boot-sector programs are 512 bytes) is taken as the beginning of a
 * 1.44 MiB disk, the drive type every BIOS assumes, as QEMU does. */
static const struct floppy_format *format_for_size(uint64_t bytes)
{
    for (size_t i = 0; i < G_N_ELEMENTS(floppy_formats); i++) {
        if (floppy_formats[i].bytes == bytes)
            return &floppy_formats[i];
    }
    if (bytes > 0 && bytes < floppy_formats[G_N_ELEMENTS(floppy_formats) - 1].bytes &&
        bytes % FDC_SECTOR_SIZE == 0)
        return &floppy_formats[0];
    return NULL;
}

bool fdc_insert(struct fdc *fdc, unsigned drive, struct block_device *bd, GError **error)
{
    if (drive >= FDC_DRIVES) {
        g_set_error(error, BLOCK_ERROR, BLOCK_ERROR_INVALID, "no floppy drive %u", drive);
        return false;
    }
    const struct floppy_format *format = NULL;
    if (bd) {
        format = format_for_size(block_length(bd));
        if (!format) {
            g_set_error(
                error, BLOCK_ERROR, BLOCK_ERROR_UNSUPPORTED,
                "%s: a floppy image of %" G_GUINT64_FORMAT
                " bytes matches no disk format (160 KiB to 2.88 MiB, or whole sectors below "
                "160 KiB)",
                bd->path, block_length(bd));
            return false;
        }
    }
    struct fdc_drive *d = &fdc->drives[drive];
    block_close(d->bd);
    d->bd = bd;
    d->tracks = format ? format->tracks : 0;
    d->heads = format ? format->heads : 0;
    d->sectors = format ? format->sectors : 0;
    d->rate = format ? format->rate : 0;
    d->disk_changed = true;
    return true;
}

struct block_device *fdc_disk(struct fdc *fdc, unsigned drive)
{
    return drive < FDC_DRIVES ? fdc->drives[drive].bd : NULL;
}

uint8_t fdc_cmos_drive_type(struct fdc *fdc, unsigned drive)
{
    if (drive >= FDC_DRIVES)
        return 0;
    struct fdc_drive *d = &fdc->drives[drive];
    if (d->bd) {
        const struct floppy_format *format = format_for_size(block_length(d->bd));
        /* A 720 KiB or 1.2 MiB disk reads in a 1.44 MiB drive too, but
         * DOS-era guests expect the drive type of the disk. */
        if (format)
            return format->cmos_type;
    }
    return drive == 0 ? 4 : 0;
}
