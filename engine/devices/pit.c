/* The 8254 programmable interval timer, following the Intel 8254 datasheet
 * (231164-005): six counting modes, binary and BCD counting, counter latch
 * and read-back commands, and LSB/MSB access. Port 0x61 (system control
 * port B, as in the PIIX 82371SB datasheet, NMI status and control register)
 * lives here too because it is mostly channel 2's gate and output.
 *
 * Nothing ticks. Each channel remembers the tick at which its counting
 * element held a known value, and every count and OUT level is computed
 * from the virtual clock when asked. A channel with an interrupt line (only
 * channel 0 on a PC) arms one timer for its next OUT transition. */
#include "pit.h"

#include <glib.h>

#include "ioport.h"
#include "vclock.h"

#define PIT_PORT_BASE    0x40
#define PIT_CONTROL_PORT 0x43
#define PORT61           0x61
#define PIT_CHANNELS     3

/* Timer edges closer together than this are delivered together: a guest
 * that programs channel 0 with a tiny divisor gets interrupts as fast as
 * the machine loop can take them rather than a timer per counter tick. */
#define PIT_MIN_IRQ_INTERVAL_NS 10000

/* DRAM refresh requests toggle port 0x61 bit 4 every 15.085 us. */
#define PORT61_REFRESH_PERIOD_NS 15085

#define PORT61_GATE2        0x01
#define PORT61_SPEAKER_DATA 0x02
#define PORT61_WRITABLE     0x0f
#define PORT61_REFRESH      0x10
#define PORT61_OUT2         0x20

/* Control word fields. */
#define PIT_CW_BCD          0x01
#define PIT_CW_MODE_SHIFT   1
#define PIT_CW_ACCESS_SHIFT 4
#define PIT_CW_SELECT_SHIFT 6

#define PIT_ACCESS_LATCH 0
#define PIT_ACCESS_LSB   1
#define PIT_ACCESS_MSB   2
#define PIT_ACCESS_WORD  3

/* Read-back command bits (the select field is 3). */
#define PIT_READBACK_NO_COUNT  0x20
#define PIT_READBACK_NO_STATUS 0x10

#define PIT_STATUS_OUT        0x80
#define PIT_STATUS_NULL_COUNT 0x40

#define TICK_NEVER INT64_MAX

struct pit_channel {
    uint8_t control; /* the channel's last control word, for read-back status */
    uint8_t mode;    /* effective mode 0-5 (6 and 7 alias 2 and 3) */
    uint8_t access;
    bool bcd;
    bool gate;
    uint16_t count_register; /* as written, BCD or binary; 0 means the maximum */

    /* The counting element held start_count (1 to the modulus) at
     * start_tick and has counted one per tick since, while counting. */
    bool armed; /* a count was written after the control word */
    bool counting;
    uint32_t start_count;
    int64_t start_tick;
    /* Modes 0 and 1: OUT was already high when counting (re)started.
     * Modes 4 and 5: the strobe has already happened. */
    bool out_done;

    /* Modes 2 and 3: a count written while counting replaces the running
     * one at the end of the current period. */
    bool reload_pending;
    int64_t reload_tick;

    int64_t count_loaded_tick; /* null count until this tick */

    bool count_latched;
    bool status_latched;
    uint16_t latched_count;
    uint8_t latched_status;
    bool read_msb_next;
    bool latch_msb_next;
    bool write_msb_next;
    uint8_t written_lsb;

    /* The interrupt output: the level last driven and the tick up to which
     * edges have been delivered. */
    bool irq_level;
    int64_t irq_checked_tick;
};

struct pit {
    struct pit_channel channels[PIT_CHANNELS];
    uint8_t port61;

    struct vclock *clock;
    struct irq_line irq0;
    struct vtimer irq_timer;
    pit_speaker_fn speaker_hook;
    void *speaker_opaque;
};

static const struct vmstate_field pit_channel_fields[] = {
    VMSTATE_U8(struct pit_channel, control),
    VMSTATE_U8(struct pit_channel, mode),
    VMSTATE_U8(struct pit_channel, access),
    VMSTATE_BOOL(struct pit_channel, bcd),
    VMSTATE_BOOL(struct pit_channel, gate),
    VMSTATE_U16(struct pit_channel, count_register),
    VMSTATE_BOOL(struct pit_channel, armed),
    VMSTATE_BOOL(struct pit_channel, counting),
    VMSTATE_U32(struct pit_channel, start_count),
    VMSTATE_I64(struct pit_channel, start_tick),
    VMSTATE_BOOL(struct pit_channel, out_done),
    VMSTATE_BOOL(struct pit_channel, reload_pending),
    VMSTATE_I64(struct pit_channel, reload_tick),
    VMSTATE_I64(struct pit_channel, count_loaded_tick),
    VMSTATE_BOOL(struct pit_channel, count_latched),
    VMSTATE_BOOL(struct pit_channel, status_latched),
    VMSTATE_U16(struct pit_channel, latched_count),
    VMSTATE_U8(struct pit_channel, latched_status),
    VMSTATE_BOOL(struct pit_channel, read_msb_next),
    VMSTATE_BOOL(struct pit_channel, latch_msb_next),
    VMSTATE_BOOL(struct pit_channel, write_msb_next),
    VMSTATE_U8(struct pit_channel, written_lsb),
    VMSTATE_BOOL(struct pit_channel, irq_level),
    VMSTATE_I64(struct pit_channel, irq_checked_tick),
    VMSTATE_END,
};

static const struct vmstate_desc pit_channel_vmstate = {
    .name = "pit-channel",
    .version = 1,
    .fields = pit_channel_fields,
};

static const struct vmstate_field pit_fields[] = {
    VMSTATE_STRUCT_ARRAY(struct pit, channels, pit_channel_vmstate),
    VMSTATE_U8(struct pit, port61),
    VMSTATE_END,
};

const struct vmstate_desc pit_vmstate = {
    .name = "pit",
    .version = 1,
    .fields = pit_fields,
};

static int64_t ns_to_tick(int64_t ns)
{
    return (int64_t)((__int128)ns * PIT_FREQ_HZ / NS_PER_SEC);
}

/* The first nanosecond at which the clock has reached tick. */
static int64_t tick_to_ns(int64_t tick)
{
    return (int64_t)(((__int128)tick * NS_PER_SEC + PIT_FREQ_HZ - 1) / PIT_FREQ_HZ);
}

static int64_t pit_now_tick(const struct pit *pit)
{
    return ns_to_tick(vclock_now(pit->clock));
}

static uint32_t channel_modulus(const struct pit_channel *ch)
{
    return ch->bcd ? 10000 : 65536;
}

static uint32_t bcd_to_binary(uint16_t bcd)
{
    return ((bcd >> 12) & 0xf) * 1000 + ((bcd >> 8) & 0xf) * 100 + ((bcd >> 4) & 0xf) * 10 +
           (bcd & 0xf);
}

static uint16_t binary_to_bcd(uint32_t value)
{
    return (uint16_t)((value / 1000 % 10) << 12 | (value / 100 % 10) << 8 | (value / 10 % 10) << 4 |
                      (value % 10));
}

/* The count register as a number of ticks: 0 stands for the modulus. */
static uint32_t channel_reload(const struct pit_channel *ch)
{
    uint32_t value = ch->bcd ? bcd_to_binary(ch->count_register) : ch->count_register;
    uint32_t modulus = channel_modulus(ch);
    value %= modulus;
    return value ? value : modulus;
}

/* Modes 2 and 3 take a pending count at the end of the period in which it
 * was written; everything before that tick follows the old count. */
static void channel_apply_reload(struct pit_channel *ch, int64_t now_tick)
{
    if (ch->reload_pending && now_tick >= ch->reload_tick) {
        ch->start_tick = ch->reload_tick;
        ch->start_count = channel_reload(ch);
        ch->reload_pending = false;
    }
}

/* The counting element's value at tick, as a binary number below the
 * modulus. */
static uint32_t channel_count_at(const struct pit_channel *ch, int64_t tick)
{
    uint32_t modulus = channel_modulus(ch);
    int64_t elapsed = tick - ch->start_tick;
    if (!ch->counting || elapsed < 0)
        return ch->start_count % modulus;
    uint32_t n = ch->start_count;
    switch (ch->mode) {
    case 2:
        return (n - (uint32_t)(elapsed % n)) % modulus;
    case 3: {
        /* The element counts down by two through each half period; an odd
         * count first loads one less. */
        uint32_t high_len = (n + 1) / 2;
        uint32_t phase = (uint32_t)(elapsed % n);
        uint32_t even = n & ~1u;
        uint32_t half_phase = phase < high_len ? phase : phase - high_len;
        return (even - 2 * half_phase) % modulus;
    }
    default:
        return (uint32_t)((((int64_t)n - elapsed) % modulus + modulus) % modulus);
    }
}

static bool channel_out_at(const struct pit_channel *ch, int64_t tick)
{
    int64_t elapsed = tick - ch->start_tick;
    uint32_t n = ch->start_count;
    if (!ch->counting)
        return ch->mode == 0 ? ch->out_done : true;
    switch (ch->mode) {
    case 0:
        return ch->out_done || elapsed >= n;
    case 1:
        return elapsed < 0 ? ch->out_done : elapsed >= n;
    case 2:
        /* OUT drops for the one tick in which the count is 1. A count of 1
         * is illegal in this mode; the output then simply stays high. */
        return elapsed < 0 || n < 2 || elapsed % n != n - 1;
    case 3:
        return elapsed < 0 || elapsed % n < (n + 1) / 2;
    default: /* modes 4 and 5: a one-tick strobe when the count reaches 0 */
        return ch->out_done || elapsed != n;
    }
}

/* The first tick after tick at which OUT changes, or TICK_NEVER. */
static int64_t channel_next_transition(const struct pit_channel *ch, int64_t tick)
{
    if (!ch->counting)
        return TICK_NEVER;
    int64_t start = ch->start_tick;
    int64_t n = ch->start_count;
    int64_t next = TICK_NEVER;
    switch (ch->mode) {
    case 0:
        if (!ch->out_done && start + n > tick)
            next = start + n;
        break;
    case 1:
        if (start > tick)
            next = start;
        else if (start + n > tick)
            next = start + n;
        break;
    case 2:
    case 3: {
        int64_t low_at = ch->mode == 2 ? n - 1 : (n + 1) / 2;
        if (n < 2)
            break;
        if (tick < start) {
            next = start + low_at;
            break;
        }
        int64_t phase = (tick - start) % n;
        int64_t period_start = tick - phase;
        next = phase < low_at ? period_start + low_at : period_start + n;
        break;
    }
    default:
        if (!ch->out_done) {
            if (start + n > tick)
                next = start + n;
            else if (start + n + 1 > tick)
                next = start + n + 1;
        }
        break;
    }
    if (ch->reload_pending && next > ch->reload_tick)
        next = ch->reload_tick;
    return next;
}

/* Whether OUT rose at some tick in (from, to]. Periodic modes alternate
 * edges, so looking at the next few transitions is enough. */
static bool channel_rose_between(const struct pit_channel *ch, int64_t from, int64_t to)
{
    int64_t tick = from;
    for (int i = 0; i < 3; i++) {
        tick = channel_next_transition(ch, tick);
        if (tick > to)
            return false;
        if (channel_out_at(ch, tick))
            return true;
    }
    return false;
}

static bool channel_null_count(const struct pit_channel *ch, int64_t now_tick)
{
    return now_tick < ch->count_loaded_tick;
}

static void channel_freeze(struct pit_channel *ch, int64_t now_tick)
{
    if (!ch->counting)
        return;
    uint32_t count = channel_count_at(ch, now_tick);
    ch->out_done = channel_out_at(ch, now_tick);
    if (ch->mode == 4 || ch->mode == 5)
        ch->out_done = now_tick - ch->start_tick >= (int64_t)ch->start_count;
    ch->start_count = count ? count : channel_modulus(ch);
    ch->counting = false;
}

static void pit_notify_speaker(struct pit *pit)
{
    if (pit->speaker_hook)
        pit->speaker_hook(pit->speaker_opaque);
}

/* Brings channel 0's interrupt line up to date and arms the timer for the
 * next rising edge of OUT. Only rising edges are timed: the PC's IRQ0 input
 * is edge triggered, so a falling edge between two rising ones is folded
 * into the next one (the line is pulsed low and high). Edges that come
 * faster than the machine loop turns are delivered as one. */
static void pit_update_irq(struct pit *pit)
{
    struct pit_channel *ch = &pit->channels[0];
    int64_t now_ns = vclock_now(pit->clock);
    int64_t now_tick = ns_to_tick(now_ns);
    bool rose = false;
    if (ch->reload_pending && ch->reload_tick <= now_tick) {
        /* The tick at which the pending count takes over is itself a
         * rising edge under both the old and the new count. */
        if (ch->irq_checked_tick < ch->reload_tick)
            rose = true;
        channel_apply_reload(ch, now_tick);
        if (ch->irq_checked_tick < ch->start_tick)
            ch->irq_checked_tick = ch->start_tick;
    }
    rose = rose || channel_rose_between(ch, ch->irq_checked_tick, now_tick);
    bool level = channel_out_at(ch, now_tick);
    if (rose) {
        if (ch->irq_level)
            irq_lower(&pit->irq0);
        irq_raise(&pit->irq0);
        ch->irq_level = true;
    }
    if (level != ch->irq_level) {
        irq_set(&pit->irq0, level);
        ch->irq_level = level;
    }
    ch->irq_checked_tick = now_tick;

    int64_t next = channel_next_transition(ch, now_tick);
    if (next != TICK_NEVER && !channel_out_at(ch, next))
        next = channel_next_transition(ch, next);
    if (next == TICK_NEVER || !pit->irq0.handler) {
        vtimer_cancel(pit->clock, &pit->irq_timer);
        return;
    }
    int64_t deadline = tick_to_ns(next);
    if (deadline < now_ns + PIT_MIN_IRQ_INTERVAL_NS)
        deadline = now_ns + PIT_MIN_IRQ_INTERVAL_NS;
    vtimer_arm(pit->clock, &pit->irq_timer, deadline);
}

static void pit_irq_timer_fired(void *opaque)
{
    pit_update_irq(opaque);
}

/* Delivers channel 0's edges up to now under its current programming,
 * before the guest changes it. */
static void pit_channel_will_change(struct pit *pit, int index)
{
    if (index == 0)
        pit_update_irq(pit);
}

static void pit_channel_changed(struct pit *pit, int index)
{
    if (index == 0)
        pit_update_irq(pit);
    else if (index == 2)
        pit_notify_speaker(pit);
}

static void channel_start(struct pit_channel *ch, int64_t now_tick)
{
    ch->start_count = channel_reload(ch);
    ch->start_tick = now_tick + 1;
    ch->count_loaded_tick = now_tick + 1;
    ch->reload_pending = false;
    ch->counting = true;
}

/* A complete count has been written to the count register. */
static void channel_count_written(struct pit_channel *ch, int64_t now_tick)
{
    bool was_armed = ch->armed;
    ch->armed = true;
    switch (ch->mode) {
    case 0:
    case 4:
        /* Loaded on the next tick; counting waits for GATE. */
        channel_start(ch, now_tick);
        ch->out_done = false;
        ch->counting = ch->gate;
        break;
    case 1:
    case 5:
        /* Loaded only by a trigger on GATE. */
        ch->count_loaded_tick = TICK_NEVER;
        break;
    case 2:
    case 3:
        if (was_armed && ch->counting && now_tick >= ch->start_tick) {
            int64_t elapsed = now_tick - ch->start_tick;
            int64_t period_end = now_tick - elapsed % ch->start_count + ch->start_count;
            ch->reload_pending = true;
            ch->reload_tick = period_end;
            ch->count_loaded_tick = period_end;
        } else if (ch->gate) {
            channel_start(ch, now_tick);
        } else {
            ch->count_loaded_tick = TICK_NEVER;
        }
        break;
    }
}

static void pit_write_count(struct pit *pit, int index, uint8_t value)
{
    struct pit_channel *ch = &pit->channels[index];
    pit_channel_will_change(pit, index);
    int64_t now_tick = pit_now_tick(pit);
    channel_apply_reload(ch, now_tick);
    switch (ch->access) {
    case PIT_ACCESS_LSB:
        ch->count_register = value;
        break;
    case PIT_ACCESS_MSB:
        ch->count_register = (uint16_t)(value << 8);
        break;
    default:
        if (!ch->write_msb_next) {
            ch->written_lsb = value;
            ch->write_msb_next = true;
            /* In mode 0 the first byte stops the count and drops OUT. */
            if (ch->mode == 0) {
                channel_freeze(ch, now_tick);
                ch->out_done = false;
                pit_channel_changed(pit, index);
            }
            return;
        }
        ch->count_register = (uint16_t)(ch->written_lsb | value << 8);
        ch->write_msb_next = false;
        break;
    }
    channel_count_written(ch, now_tick);
    pit_channel_changed(pit, index);
}

static uint16_t channel_encode(const struct pit_channel *ch, uint32_t value)
{
    return ch->bcd ? binary_to_bcd(value) : (uint16_t)value;
}

static void channel_latch_count(struct pit_channel *ch, int64_t now_tick)
{
    if (ch->count_latched)
        return;
    ch->latched_count = channel_encode(ch, channel_count_at(ch, now_tick));
    ch->count_latched = true;
    ch->latch_msb_next = ch->access == PIT_ACCESS_MSB;
}

static void channel_latch_status(struct pit_channel *ch, int64_t now_tick)
{
    if (ch->status_latched)
        return;
    ch->latched_status = (ch->control & 0x3f) |
                         (channel_out_at(ch, now_tick) ? PIT_STATUS_OUT : 0) |
                         (channel_null_count(ch, now_tick) ? PIT_STATUS_NULL_COUNT : 0);
    ch->status_latched = true;
}

static uint8_t pit_read_channel(struct pit *pit, int index)
{
    struct pit_channel *ch = &pit->channels[index];
    int64_t now_tick = pit_now_tick(pit);
    channel_apply_reload(ch, now_tick);
    if (ch->status_latched) {
        ch->status_latched = false;
        return ch->latched_status;
    }
    if (ch->count_latched) {
        uint8_t byte;
        if (ch->latch_msb_next) {
            byte = ch->latched_count >> 8;
            ch->count_latched = false;
        } else {
            byte = ch->latched_count & 0xff;
            if (ch->access == PIT_ACCESS_WORD)
                ch->latch_msb_next = true;
            else
                ch->count_latched = false;
        }
        return byte;
    }
    uint16_t count = channel_encode(ch, channel_count_at(ch, now_tick));
    switch (ch->access) {
    case PIT_ACCESS_LSB:
        return count & 0xff;
    case PIT_ACCESS_MSB:
        return count >> 8;
    default:
        ch->read_msb_next = !ch->read_msb_next;
        return ch->read_msb_next ? count & 0xff : count >> 8;
    }
}

static void pit_write_control(struct pit *pit, uint8_t value)
{
    int select = value >> PIT_CW_SELECT_SHIFT;
    int64_t now_tick = pit_now_tick(pit);
    if (select == 3) {
        for (int i = 0; i < PIT_CHANNELS; i++) {
            if (!(value & (2u << i)))
                continue;
            struct pit_channel *ch = &pit->channels[i];
            channel_apply_reload(ch, now_tick);
            /* The status is latched before the count so that it is read
             * first when both are requested. */
            if (!(value & PIT_READBACK_NO_STATUS))
                channel_latch_status(ch, now_tick);
            if (!(value & PIT_READBACK_NO_COUNT))
                channel_latch_count(ch, now_tick);
        }
        return;
    }
    struct pit_channel *ch = &pit->channels[select];
    int access = (value >> PIT_CW_ACCESS_SHIFT) & 3;
    if (access != PIT_ACCESS_LATCH)
        pit_channel_will_change(pit, select);
    channel_apply_reload(ch, now_tick);
    if (access == PIT_ACCESS_LATCH) {
        channel_latch_count(ch, now_tick);
        return;
    }
    int mode = (value >> PIT_CW_MODE_SHIFT) & 7;
    ch->control = value;
    ch->mode = mode > 5 ? mode - 4 : mode;
    ch->access = access;
    ch->bcd = value & PIT_CW_BCD;
    ch->armed = false;
    ch->counting = false;
    ch->reload_pending = false;
    ch->out_done = false; /* OUT goes low in mode 0, high in the others */
    ch->count_loaded_tick = TICK_NEVER;
    ch->read_msb_next = false;
    ch->write_msb_next = false;
    pit_channel_changed(pit, select);
}

void pit_set_gate(struct pit *pit, int index, bool level)
{
    if (index < 0 || index >= PIT_CHANNELS)
        return;
    struct pit_channel *ch = &pit->channels[index];
    if (ch->gate == level)
        return;
    pit_channel_will_change(pit, index);
    int64_t now_tick = pit_now_tick(pit);
    channel_apply_reload(ch, now_tick);
    ch->gate = level;
    if (ch->armed) {
        switch (ch->mode) {
        case 0:
        case 4:
            /* GATE low suspends counting; high resumes it. */
            if (level) {
                ch->start_tick = now_tick + 1;
                ch->counting = true;
            } else {
                channel_freeze(ch, now_tick);
            }
            break;
        case 1:
        case 5:
            /* A rising GATE triggers, reloading the count. */
            if (level) {
                bool out = channel_out_at(ch, now_tick);
                channel_start(ch, now_tick);
                ch->out_done = ch->mode == 1 ? out : false;
            }
            break;
        case 2:
        case 3:
            /* GATE low stops the count and forces OUT high; rising GATE
             * restarts from the count register. */
            if (level)
                channel_start(ch, now_tick);
            else
                ch->counting = false;
            ch->reload_pending = false;
            break;
        }
    }
    pit_channel_changed(pit, index);
}

bool pit_get_out(struct pit *pit, int index)
{
    if (index < 0 || index >= PIT_CHANNELS)
        return false;
    struct pit_channel *ch = &pit->channels[index];
    int64_t now_tick = pit_now_tick(pit);
    channel_apply_reload(ch, now_tick);
    return channel_out_at(ch, now_tick);
}

static uint32_t pit_read(void *opaque, uint16_t port, unsigned size)
{
    struct pit *pit = opaque;
    (void)size;
    int index = port - PIT_PORT_BASE;
    if (index >= PIT_CHANNELS)
        return 0xff; /* the control register is write-only */
    return pit_read_channel(pit, index);
}

static void pit_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct pit *pit = opaque;
    (void)size;
    int index = port - PIT_PORT_BASE;
    if (index >= PIT_CHANNELS)
        pit_write_control(pit, value & 0xff);
    else
        pit_write_count(pit, index, value & 0xff);
}

static uint32_t port61_read(void *opaque, uint16_t port, unsigned size)
{
    struct pit *pit = opaque;
    (void)port;
    (void)size;
    int64_t now = vclock_now(pit->clock);
    uint8_t value = pit->port61 & PORT61_WRITABLE;
    if ((now / PORT61_REFRESH_PERIOD_NS) & 1)
        value |= PORT61_REFRESH;
    if (pit_get_out(pit, 2))
        value |= PORT61_OUT2;
    return value;
}

static void port61_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct pit *pit = opaque;
    (void)port;
    (void)size;
    uint8_t old = pit->port61;
    pit->port61 = value & PORT61_WRITABLE;
    if ((old ^ pit->port61) & PORT61_GATE2)
        pit_set_gate(pit, 2, pit->port61 & PORT61_GATE2);
    else if ((old ^ pit->port61) & PORT61_SPEAKER_DATA)
        pit_notify_speaker(pit);
}

void pit_speaker_state(struct pit *pit, struct pit_speaker_state *state)
{
    struct pit_channel *ch = &pit->channels[2];
    int64_t now_tick = pit_now_tick(pit);
    channel_apply_reload(ch, now_tick);
    state->mode = ch->mode;
    state->reload = channel_reload(ch);
    state->counting = ch->armed && ch->counting;
    state->gate = ch->gate;
    state->data = pit->port61 & PORT61_SPEAKER_DATA;
    state->out = channel_out_at(ch, now_tick);
}

void pit_set_speaker_hook(struct pit *pit, pit_speaker_fn fn, void *opaque)
{
    pit->speaker_hook = fn;
    pit->speaker_opaque = opaque;
}

void pit_reset(void *opaque)
{
    struct pit *pit = opaque;
    int64_t now_tick = pit_now_tick(pit);
    for (int i = 0; i < PIT_CHANNELS; i++) {
        struct pit_channel *ch = &pit->channels[i];
        *ch = (struct pit_channel){0};
        ch->gate = i != 2;
        ch->start_count = 65536;
        ch->count_loaded_tick = TICK_NEVER;
        ch->irq_checked_tick = now_tick;
    }
    pit->port61 = 0;
    /* An unprogrammed channel 0 holds OUT low; the line is driven low
     * explicitly so the PIC's view matches after a machine reset. */
    irq_lower(&pit->irq0);
    pit_update_irq(pit);
    pit_notify_speaker(pit);
}

struct pit *pit_create(struct ioport_bus *io, struct vclock *clock, const struct irq_line *irq0)
{
    struct pit *pit = g_new0(struct pit, 1);
    pit->clock = clock;
    if (irq0)
        pit->irq0 = *irq0;
    vtimer_init(&pit->irq_timer, pit_irq_timer_fired, pit);
    pit_reset(pit);
    ioport_register(io, PIT_PORT_BASE, 4, "pit", pit_read, pit_write, pit);
    ioport_register(io, PORT61, 1, "port61", port61_read, port61_write, pit);
    return pit;
}

void pit_destroy(struct pit *pit)
{
    if (!pit)
        return;
    vtimer_cancel(pit->clock, &pit->irq_timer);
    g_free(pit);
}

void pit_post_load(void *opaque)
{
    pit_update_irq(opaque);
}
