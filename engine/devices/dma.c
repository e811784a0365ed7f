/* The 8237A DMA controller pair, following the Intel 8237A datasheet
 * (231466-005) and the PC/AT wiring in the PIIX 82371SB datasheet
 * (section 4.3, DMA registers): base and current address and count
 * registers behind a byte pointer flip-flop, mode, command, request, mask
 * and status registers, and the page registers that supply address bits
 * 16-23. The second controller's channels move 16-bit words: their address
 * registers count words and the page register's bit 0 is ignored.
 *
 * The controller does not time individual bus cycles. A device moves as
 * much as it wants per call of its transfer function, so single, demand
 * and block modes behave alike. Not implemented: memory-to-memory
 * transfers (command bit 0) and the cascade of channels 0-3 through
 * channel 4, which is treated as always open. */
#include "dma.h"

#include <glib.h>
#include <string.h>

#include "ioport.h"
#include "memory.h"
#include "vclock.h"

#define DMA1_PORT      0x00
#define DMA2_PORT      0xc0
#define DMA_PAGE_PORT  0x80
#define DMA_PAGE_PORTS 16

/* Controller register offsets (in bytes on the first controller, in words
 * on the second). */
enum dma_register {
    DMA_REG_STATUS_COMMAND = 0x8,
    DMA_REG_REQUEST = 0x9,
    DMA_REG_SINGLE_MASK = 0xa,
    DMA_REG_MODE = 0xb,
    DMA_REG_CLEAR_FLIP_FLOP = 0xc,
    DMA_REG_TEMP_MASTER_CLEAR = 0xd,
    DMA_REG_CLEAR_MASK = 0xe,
    DMA_REG_ALL_MASK = 0xf,
};

#define DMA_COMMAND_DISABLE 0x04

#define DMA_MODE_TYPE_SHIFT 2
#define DMA_MODE_AUTO_INIT  0x10
#define DMA_MODE_DECREMENT  0x20

/* While a device holds DREQ its transfer function is called this often;
 * a device paces itself by how much it moves per call. */
#define DMA_POLL_INTERVAL_NS 1000000

struct dma_channel {
    uint16_t base_address;
    uint16_t base_count;
    uint8_t mode;
    bool dreq;
    bool software_request;
    int32_t position; /* bytes moved in the current block */
};

struct dma_controller {
    struct dma_channel channels[4];
    uint8_t command;
    uint8_t mask;   /* bit n set: channel n masked */
    uint8_t status; /* terminal count bits 0-3 */
    bool flip_flop; /* the next address/count access is the high byte */
};

struct dma_device {
    isa_dma_transfer_fn fn;
    void *opaque;
};

struct isa_dma {
    struct dma_controller controllers[2];
    uint8_t page_registers[DMA_PAGE_PORTS];

    struct memory *mem;
    struct vclock *clock;
    struct vtimer timer;
    struct dma_device devices[ISA_DMA_CHANNELS];
};

/* Which page register (port 0x80 + index) holds each channel's page; the
 * others are plain scratch bytes (port 0x80 is the POST code port). */
static const uint8_t dma_page_index[ISA_DMA_CHANNELS] = {0x7, 0x3, 0x1, 0x2, 0xf, 0xb, 0x9, 0xa};

static const struct vmstate_field dma_channel_fields[] = {
    VMSTATE_U16(struct dma_channel, base_address),
    VMSTATE_U16(struct dma_channel, base_count),
    VMSTATE_U8(struct dma_channel, mode),
    VMSTATE_BOOL(struct dma_channel, dreq),
    VMSTATE_BOOL(struct dma_channel, software_request),
    VMSTATE_I32(struct dma_channel, position),
    VMSTATE_END,
};

static const struct vmstate_desc dma_channel_vmstate = {
    .name = "dma-channel",
    .version = 1,
    .fields = dma_channel_fields,
};

static const struct vmstate_field dma_controller_fields[] = {
    VMSTATE_STRUCT_ARRAY(struct dma_controller, channels, dma_channel_vmstate),
    VMSTATE_U8(struct dma_controller, command),
    VMSTATE_U8(struct dma_controller, mask),
    VMSTATE_U8(struct dma_controller, status),
    VMSTATE_BOOL(struct dma_controller, flip_flop),
    VMSTATE_END,
};

static const struct vmstate_desc dma_controller_vmstate = {
    .name = "dma-controller",
    .version = 1,
    .fields = dma_controller_fields,
};

static const struct vmstate_field isa_dma_fields[] = {
    VMSTATE_STRUCT_ARRAY(struct isa_dma, controllers, dma_controller_vmstate),
    VMSTATE_U8_ARRAY(struct isa_dma, page_registers),
    VMSTATE_END,
};

const struct vmstate_desc isa_dma_vmstate = {
    .name = "dma",
    .version = 1,
    .fields = isa_dma_fields,
};

static bool valid_channel(int channel)
{
    return channel >= 0 && channel < ISA_DMA_CHANNELS;
}

static struct dma_controller *controller_of(struct isa_dma *dma, int channel)
{
    return &dma->controllers[channel >> 2];
}

static struct dma_channel *channel_of(struct isa_dma *dma, int channel)
{
    return &controller_of(dma, channel)->channels[channel & 3];
}

/* log2 of the bytes moved per transfer cycle. */
static int unit_shift(int channel)
{
    return channel >= 4 ? 1 : 0;
}

static int32_t block_size(struct isa_dma *dma, int channel)
{
    return ((int32_t)channel_of(dma, channel)->base_count + 1) << unit_shift(channel);
}

/* The current address register after units transfers of the block. */
static uint16_t address_after(const struct dma_channel *ch, int64_t units)
{
    if (ch->mode & DMA_MODE_DECREMENT)
        return (uint16_t)(ch->base_address - units);
    return (uint16_t)(ch->base_address + units);
}

static uint16_t current_address(struct isa_dma *dma, int channel)
{
    const struct dma_channel *ch = channel_of(dma, channel);
    return address_after(ch, ch->position >> unit_shift(channel));
}

/* The count register counts down past zero to 0xffff at terminal count. */
static uint16_t current_count(struct isa_dma *dma, int channel)
{
    const struct dma_channel *ch = channel_of(dma, channel);
    return (uint16_t)(ch->base_count - (ch->position >> unit_shift(channel)));
}

static uint64_t physical_address(struct isa_dma *dma, int channel, uint16_t address)
{
    uint8_t page = dma->page_registers[dma_page_index[channel]];
    if (channel >= 4)
        return ((uint64_t)(page & 0xfe) << 16) | ((uint32_t)address << 1);
    return ((uint64_t)page << 16) | address;
}

bool isa_dma_channel_enabled(struct isa_dma *dma, int channel)
{
    if (!valid_channel(channel))
        return false;
    const struct dma_controller *c = controller_of(dma, channel);
    return !(c->mask & (1u << (channel & 3))) && !(c->command & DMA_COMMAND_DISABLE);
}

static bool channel_wants_service(struct isa_dma *dma, int channel)
{
    const struct dma_channel *ch = channel_of(dma, channel);
    return (ch->dreq || ch->software_request) && dma->devices[channel].fn &&
           isa_dma_channel_enabled(dma, channel);
}

/* Lets every channel with a request move data, then polls again while a
 * request stays up. */
static void isa_dma_run(struct isa_dma *dma)
{
    for (int n = 0; n < ISA_DMA_CHANNELS; n++) {
        if (!channel_wants_service(dma, n))
            continue;
        struct dma_channel *ch = channel_of(dma, n);
        struct dma_controller *c = controller_of(dma, n);
        int32_t size = block_size(dma, n);
        int position = dma->devices[n].fn(dma->devices[n].opaque, n, ch->position, size);
        if (position < 0)
            position = 0;
        ch->position = position < size ? position : size;
        if (ch->position == size) {
            c->status |= 1u << (n & 3);
            ch->software_request = false;
            if (ch->mode & DMA_MODE_AUTO_INIT)
                ch->position = 0;
            else
                c->mask |= 1u << (n & 3);
        }
    }
    bool busy = false;
    for (int n = 0; n < ISA_DMA_CHANNELS; n++)
        busy = busy || channel_wants_service(dma, n);
    if (busy)
        vtimer_arm(dma->clock, &dma->timer, vclock_now(dma->clock) + DMA_POLL_INTERVAL_NS);
    else
        vtimer_cancel(dma->clock, &dma->timer);
}

static void isa_dma_timer_fired(void *opaque)
{
    isa_dma_run(opaque);
}

/* Transfers happen from the timer rather than inside the caller, so a
 * device asserting DREQ from its own handler is never re-entered. */
static void isa_dma_schedule(struct isa_dma *dma)
{
    for (int n = 0; n < ISA_DMA_CHANNELS; n++) {
        if (channel_wants_service(dma, n)) {
            int64_t now = vclock_now(dma->clock);
            if (!dma->timer.armed || dma->timer.deadline_ns > now)
                vtimer_arm(dma->clock, &dma->timer, now);
            return;
        }
    }
}

void isa_dma_register_channel(struct isa_dma *dma, int channel, isa_dma_transfer_fn fn,
                              void *opaque)
{
    if (!valid_channel(channel))
        return;
    dma->devices[channel] = (struct dma_device){.fn = fn, .opaque = opaque};
}

void isa_dma_hold_dreq(struct isa_dma *dma, int channel)
{
    if (!valid_channel(channel))
        return;
    channel_of(dma, channel)->dreq = true;
    isa_dma_schedule(dma);
}

void isa_dma_release_dreq(struct isa_dma *dma, int channel)
{
    if (!valid_channel(channel))
        return;
    channel_of(dma, channel)->dreq = false;
}

/* Calls copy for each run of guest memory that the bytes [position,
 * position + len) of the channel's block occupy, in block order. */
typedef void (*dma_copy_fn)(struct memory *mem, uint64_t addr, uint8_t *buf, size_t len);

static void dma_copy(struct isa_dma *dma, int channel, uint8_t *buf, int position, int len,
                     dma_copy_fn copy)
{
    const struct dma_channel *ch = channel_of(dma, channel);
    int shift = unit_shift(channel);
    int unit = 1 << shift;
    bool decrement = ch->mode & DMA_MODE_DECREMENT;
    while (len > 0) {
        int64_t units = position >> shift;
        int offset = position & (unit - 1);
        uint16_t address = address_after(ch, units);
        /* Incrementing, the run goes on until the address register wraps;
         * decrementing, each unit lies below the previous one. */
        int run = decrement ? unit - offset : (int)((0x10000 - address) << shift) - offset;
        if (run > len)
            run = len;
        copy(dma->mem, physical_address(dma, channel, address) + offset, buf, run);
        buf += run;
        position += run;
        len -= run;
    }
}

static void copy_to_device(struct memory *mem, uint64_t addr, uint8_t *buf, size_t len)
{
    memory_read_buf(mem, addr, buf, len);
}

static void copy_to_memory(struct memory *mem, uint64_t addr, uint8_t *buf, size_t len)
{
    memory_write_buf(mem, addr, buf, len);
}

int isa_dma_read_memory(struct isa_dma *dma, int channel, void *buf, int position, int len)
{
    if (!valid_channel(channel) || len <= 0 || position < 0)
        return 0;
    dma_copy(dma, channel, buf, position, len, copy_to_device);
    return len;
}

int isa_dma_write_memory(struct isa_dma *dma, int channel, const void *buf, int position, int len)
{
    if (!valid_channel(channel) || len <= 0 || position < 0)
        return 0;
    /* A verify transfer runs the cycles without touching memory. */
    if (isa_dma_transfer_type(dma, channel) == ISA_DMA_VERIFY)
        return len;
    dma_copy(dma, channel, (uint8_t *)buf, position, len, copy_to_memory);
    return len;
}

enum isa_dma_transfer_type isa_dma_transfer_type(struct isa_dma *dma, int channel)
{
    if (!valid_channel(channel))
        return ISA_DMA_VERIFY;
    return (enum isa_dma_transfer_type)((channel_of(dma, channel)->mode >> DMA_MODE_TYPE_SHIFT) &
                                        3);
}

bool isa_dma_auto_init(struct isa_dma *dma, int channel)
{
    return valid_channel(channel) && (channel_of(dma, channel)->mode & DMA_MODE_AUTO_INIT);
}

static void controller_master_clear(struct dma_controller *c)
{
    c->command = 0;
    c->status = 0;
    c->flip_flop = false;
    c->mask = 0x0f;
    for (int i = 0; i < 4; i++)
        c->channels[i].software_request = false;
}

/* Address and count registers: the flip-flop selects the byte. Writing
 * sets both the base and the current register, so the block restarts. */
static void write_address_or_count(struct isa_dma *dma, int controller, int reg, uint8_t value)
{
    struct dma_controller *c = &dma->controllers[controller];
    struct dma_channel *ch = &c->channels[reg >> 1];
    uint16_t *target = (reg & 1) ? &ch->base_count : &ch->base_address;
    if (c->flip_flop)
        *target = (uint16_t)((*target & 0x00ff) | value << 8);
    else
        *target = (uint16_t)((*target & 0xff00) | value);
    c->flip_flop = !c->flip_flop;
    ch->position = 0;
}

static uint8_t read_address_or_count(struct isa_dma *dma, int controller, int reg)
{
    struct dma_controller *c = &dma->controllers[controller];
    int channel = controller * 4 + (reg >> 1);
    uint16_t value = (reg & 1) ? current_count(dma, channel) : current_address(dma, channel);
    uint8_t byte = c->flip_flop ? value >> 8 : value & 0xff;
    c->flip_flop = !c->flip_flop;
    return byte;
}

static void controller_write(struct isa_dma *dma, int controller, int reg, uint8_t value)
{
    struct dma_controller *c = &dma->controllers[controller];
    if (reg < 8) {
        write_address_or_count(dma, controller, reg, value);
        return;
    }
    switch (reg) {
    case DMA_REG_STATUS_COMMAND:
        c->command = value;
        break;
    case DMA_REG_REQUEST:
        c->channels[value & 3].software_request = value & 4;
        break;
    case DMA_REG_SINGLE_MASK:
        if (value & 4)
            c->mask |= 1u << (value & 3);
        else
            c->mask &= ~(1u << (value & 3));
        break;
    case DMA_REG_MODE:
        c->channels[value & 3].mode = value & 0xfc;
        break;
    case DMA_REG_CLEAR_FLIP_FLOP:
        c->flip_flop = false;
        break;
    case DMA_REG_TEMP_MASTER_CLEAR:
        controller_master_clear(c);
        break;
    case DMA_REG_CLEAR_MASK:
        c->mask = 0;
        break;
    case DMA_REG_ALL_MASK:
        c->mask = value & 0x0f;
        break;
    }
    isa_dma_schedule(dma);
}

static uint8_t controller_read(struct isa_dma *dma, int controller, int reg)
{
    struct dma_controller *c = &dma->controllers[controller];
    if (reg < 8)
        return read_address_or_count(dma, controller, reg);
    switch (reg) {
    case DMA_REG_STATUS_COMMAND: {
        /* Terminal count bits clear on read; bits 4-7 show requests. */
        uint8_t value = c->status & 0x0f;
        for (int i = 0; i < 4; i++) {
            if (c->channels[i].dreq || c->channels[i].software_request)
                value |= 0x10u << i;
        }
        c->status = 0;
        return value;
    }
    case DMA_REG_TEMP_MASTER_CLEAR:
        return 0; /* the temporary register, used only memory to memory */
    case DMA_REG_ALL_MASK:
        return 0xf0 | c->mask;
    default:
        return 0xff;
    }
}

static void dma1_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    (void)size;
    controller_write(opaque, 0, port - DMA1_PORT, value & 0xff);
}

static uint32_t dma1_read(void *opaque, uint16_t port, unsigned size)
{
    (void)size;
    return controller_read(opaque, 0, port - DMA1_PORT);
}

/* The second controller sits on even addresses only. */
static void dma2_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    (void)size;
    if (!(port & 1))
        controller_write(opaque, 1, (port - DMA2_PORT) >> 1, value & 0xff);
}

static uint32_t dma2_read(void *opaque, uint16_t port, unsigned size)
{
    (void)size;
    if (port & 1)
        return 0xff;
    return controller_read(opaque, 1, (port - DMA2_PORT) >> 1);
}

static void page_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct isa_dma *dma = opaque;
    (void)size;
    dma->page_registers[port - DMA_PAGE_PORT] = value & 0xff;
}

static uint32_t page_read(void *opaque, uint16_t port, unsigned size)
{
    struct isa_dma *dma = opaque;
    (void)size;
    return dma->page_registers[port - DMA_PAGE_PORT];
}

void isa_dma_reset(void *opaque)
{
    struct isa_dma *dma = opaque;
    for (int i = 0; i < 2; i++)
        controller_master_clear(&dma->controllers[i]);
    vtimer_cancel(dma->clock, &dma->timer);
}

struct isa_dma *isa_dma_create(struct ioport_bus *io, struct memory *mem, struct vclock *clock)
{
    struct isa_dma *dma = g_new0(struct isa_dma, 1);
    dma->mem = mem;
    dma->clock = clock;
    vtimer_init(&dma->timer, isa_dma_timer_fired, dma);
    isa_dma_reset(dma);
    ioport_register(io, DMA1_PORT, 16, "dma1", dma1_read, dma1_write, dma);
    ioport_register(io, DMA2_PORT, 32, "dma2", dma2_read, dma2_write, dma);
    ioport_register(io, DMA_PAGE_PORT, DMA_PAGE_PORTS, "dma-page", page_read, page_write, dma);
    return dma;
}

void isa_dma_destroy(struct isa_dma *dma)
{
    if (!dma)
        return;
    vtimer_cancel(dma->clock, &dma->timer);
    g_free(dma);
}

void isa_dma_post_load(void *opaque)
{
    isa_dma_schedule(opaque);
}
