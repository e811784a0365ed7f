/* The i8042 keyboard controller, a PS/2 keyboard and a PS/2 mouse.
 *
 * Sources: IBM Personal System/2 Hardware Interface Technical Reference
 * (1991), "Keyboard/Auxiliary Device Controller" (status register, command
 * byte, controller commands 0x20-0xff, output port), "Keyboard" (commands
 * 0xed-0xff, scan code sets 1-3, typematic rate and delay) and "Pointing
 * Device" (commands 0xe6-0xff, status bytes, 3-byte packets); Microsoft's
 * IntelliMouse PS/2 protocol notes (the 200/100/80 sample-rate sequence
 * switches to ID 3 with a 4-byte packet carrying the wheel, 200/200/80
 * then to ID 4 with buttons 4 and 5).
 *
 * The keyboard speaks scan code set 2 by default. When bit 6 of the command
 * byte is set, the controller translates what it receives to set 1 before
 * the CPU sees it, folding each 0xf0 break prefix into bit 7 of the next
 * code: the translation table below is the controller's.
 */
#include "i8042.h"

#include <string.h>

#include <glib.h>

#define I8042_DATA_PORT    0x60
#define I8042_COMMAND_PORT 0x64

/* Status register. */
#define STAT_OBF      0x01 /* output buffer full */
#define STAT_IBF      0x02 /* input buffer full: never, writes finish at once */
#define STAT_SYS      0x04 /* system flag, from the command byte */
#define STAT_CMD      0x08 /* last write went to the command port */
#define STAT_UNLOCKED 0x10 /* keyboard lock switch open */
#define STAT_AUX_OBF  0x20 /* the output buffer holds mouse data */

/* Command byte (controller RAM byte 0). */
#define CB_KBD_INT     0x01
#define CB_AUX_INT     0x02
#define CB_SYS         0x04
#define CB_KBD_DISABLE 0x10
#define CB_AUX_DISABLE 0x20
#define CB_XLATE       0x40

/* Output port. */
#define OUT_RESET   0x01 /* low: system reset */
#define OUT_A20     0x02
#define OUT_KBD_OBF 0x10
#define OUT_AUX_OBF 0x20
#define OUT_DEFAULT 0xcf /* reset high, A20 open, clock and data lines high */

/* Replies of the keyboard and mouse. */
#define PS2_ACK      0xfa
#define PS2_RESEND   0xfe
#define PS2_BAT_OK   0xaa
#define PS2_ECHO     0xee
#define KBD_ID_MF2_1 0xab
#define KBD_ID_MF2_2 0x83

/* A keyboard buffers 16 bytes of key data (IBM PS/2 reference); command
 * replies go out even when it is full. */
#define KBD_BUFFER     16
#define PS2_QUEUE_SIZE 32
#define MOUSE_BUFFER   16
#define CTRL_QUEUE     4

#define TYPEMATIC_DEFAULT 0x2b /* 10.9 characters per second after 500 ms */

/* Key presses and releases from the host that wait for room in the
 * keyboard's buffer (see kbd_take_host_keys). */
#define HOST_KEY_QUEUE 128

struct ps2_queue {
    uint8_t data[PS2_QUEUE_SIZE];
    uint8_t head;
    uint8_t count;
};

/* A press or release from the host, not yet turned into scan codes. */
struct host_key {
    uint8_t qnum;
    bool down;
};

struct ps2_keyboard {
    struct ps2_queue queue;
    uint8_t pending_command; /* waiting for this command's argument, or 0 */
    uint8_t scancode_set;
    uint8_t leds;
    uint8_t typematic;
    bool scanning;
    uint8_t last_sent;      /* for the resend command */
    uint8_t modifiers;      /* held Ctrl/Shift/Alt, for Pause and Print Screen */
    uint16_t repeating_key; /* qnum + 1 of the key that repeats, or 0 */
};

struct ps2_mouse {
    struct ps2_queue queue;
    uint8_t pending_command;
    uint8_t sample_rate;
    uint8_t resolution;
    bool scaling_2to1;
    bool remote;
    bool reporting;
    bool wrap;
    uint8_t id; /* 0 PS/2, 3 IntelliMouse, 4 IntelliMouse Explorer */
    uint8_t rate_history[3];
    uint8_t last_sent;
    uint8_t buttons;
    bool buttons_changed;
    int32_t dx, dy, dz; /* motion not sent yet; dy up-positive as on the wire */
};

struct i8042 {
    uint8_t status;
    uint8_t output;
    uint8_t ram[32]; /* ram[0] is the command byte */
    uint8_t output_port;
    uint8_t pending_command; /* a controller command waiting for its data byte */
    bool xlate_break;        /* translation saw 0xf0: the next code is a break */
    struct ps2_queue ctrl;   /* the controller's own replies, first in line */
    bool kbd_irq_level;
    bool mouse_irq_level;
    struct ps2_keyboard kbd;
    struct ps2_mouse mouse;

    /* Host input, not guest-visible state: left out of snapshots. */
    struct host_key host_keys[HOST_KEY_QUEUE];
    unsigned host_head, host_count;

    struct i8042_lines lines;
    struct ioport_bus *io;
    struct vclock *clock;
    struct vtimer typematic_timer;
};

static const struct vmstate_field ps2_queue_fields[] = {
    VMSTATE_U8_ARRAY(struct ps2_queue, data),
    VMSTATE_U8(struct ps2_queue, head),
    VMSTATE_U8(struct ps2_queue, count),
    VMSTATE_END,
};

static const struct vmstate_desc ps2_queue_vmstate = {
    .name = "ps2-queue",
    .version = 1,
    .fields = ps2_queue_fields,
};

static const struct vmstate_field ps2_keyboard_fields[] = {
    VMSTATE_STRUCT(struct ps2_keyboard, queue, ps2_queue_vmstate),
    VMSTATE_U8(struct ps2_keyboard, pending_command),
    VMSTATE_U8(struct ps2_keyboard, scancode_set),
    VMSTATE_U8(struct ps2_keyboard, leds),
    VMSTATE_U8(struct ps2_keyboard, typematic),
    VMSTATE_BOOL(struct ps2_keyboard, scanning),
    VMSTATE_U8(struct ps2_keyboard, last_sent),
    VMSTATE_U8(struct ps2_keyboard, modifiers),
    VMSTATE_U16(struct ps2_keyboard, repeating_key),
    VMSTATE_END,
};

static const struct vmstate_desc ps2_keyboard_vmstate = {
    .name = "ps2-keyboard",
    .version = 1,
    .fields = ps2_keyboard_fields,
};

static const struct vmstate_field ps2_mouse_fields[] = {
    VMSTATE_STRUCT(struct ps2_mouse, queue, ps2_queue_vmstate),
    VMSTATE_U8(struct ps2_mouse, pending_command),
    VMSTATE_U8(struct ps2_mouse, sample_rate),
    VMSTATE_U8(struct ps2_mouse, resolution),
    VMSTATE_BOOL(struct ps2_mouse, scaling_2to1),
    VMSTATE_BOOL(struct ps2_mouse, remote),
    VMSTATE_BOOL(struct ps2_mouse, reporting),
    VMSTATE_BOOL(struct ps2_mouse, wrap),
    VMSTATE_U8(struct ps2_mouse, id),
    VMSTATE_U8_ARRAY(struct ps2_mouse, rate_history),
    VMSTATE_U8(struct ps2_mouse, last_sent),
    VMSTATE_U8(struct ps2_mouse, buttons),
    VMSTATE_BOOL(struct ps2_mouse, buttons_changed),
    VMSTATE_I32(struct ps2_mouse, dx),
    VMSTATE_I32(struct ps2_mouse, dy),
    VMSTATE_I32(struct ps2_mouse, dz),
    VMSTATE_END,
};

static const struct vmstate_desc ps2_mouse_vmstate = {
    .name = "ps2-mouse",
    .version = 1,
    .fields = ps2_mouse_fields,
};

static const struct vmstate_field i8042_fields[] = {
    VMSTATE_U8(struct i8042, status),
    VMSTATE_U8(struct i8042, output),
    VMSTATE_U8_ARRAY(struct i8042, ram),
    VMSTATE_U8(struct i8042, output_port),
    VMSTATE_U8(struct i8042, pending_command),
    VMSTATE_BOOL(struct i8042, xlate_break),
    VMSTATE_STRUCT(struct i8042, ctrl, ps2_queue_vmstate),
    VMSTATE_BOOL(struct i8042, kbd_irq_level),
    VMSTATE_BOOL(struct i8042, mouse_irq_level),
    VMSTATE_STRUCT(struct i8042, kbd, ps2_keyboard_vmstate),
    VMSTATE_STRUCT(struct i8042, mouse, ps2_mouse_vmstate),
    VMSTATE_END,
};

const struct vmstate_desc i8042_vmstate = {
    .name = "i8042",
    .version = 1,
    .fields = i8042_fields,
};

/* ---- scan codes ---- */

/* The controller's set 2 to set 1 translation of codes 0x00-0x7f. Above
 * 0x7f codes pass unchanged, except F7 (0x83) and Alt+SysRq (0x84). */
static const uint8_t xlate_set2_to_set1[128] = {
    0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
    0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
    0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
    0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
    0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
    0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
};

#define SET2_F7     0x83
#define SET2_SYSRQ  0x84
#define SET1_F7     0x41
#define SET1_SYSRQ  0x54
#define SET1_LCTRL  0x1d
#define SET1_LSHIFT 0x2a
#define SET1_RSHIFT 0x36
#define SET1_LALT   0x38
#define QNUM_RCTRL  0x9d
#define QNUM_RALT   0xb8
#define QNUM_PRINT  0xb7
#define QNUM_PAUSE  0xc6

static uint8_t translate_to_set1(uint8_t code)
{
    if (code < 0x80)
        return xlate_set2_to_set1[code];
    if (code == SET2_F7)
        return SET1_F7;
    if (code == SET2_SYSRQ)
        return SET1_SYSRQ;
    return code;
}

/* Set 1 to set 2 is the translation run backwards; it is one-to-one over
 * 0x01-0x7f except that F7 and SysRq have 8-bit set-2 codes. */
static uint8_t set1_to_set2[128];

static void build_set2_table(void)
{
    for (unsigned code = 1; code < 128; code++)
        set1_to_set2[xlate_set2_to_set1[code]] = (uint8_t)code;
    set1_to_set2[SET1_F7] = SET2_F7;
    set1_to_set2[SET1_SYSRQ] = SET2_SYSRQ;
}

/* Set 3 gives every key one code, without prefixes; 0: the key has none. */
static const uint8_t set3_plain[0x59] = {
    0x00, 0x08, 0x16, 0x1e, 0x26, 0x25, 0x2e, 0x36, 0x3d, 0x3e, 0x46, 0x45, 0x4e, 0x55, 0x66,
    0x0d, 0x15, 0x1d, 0x24, 0x2d, 0x2c, 0x35, 0x3c, 0x43, 0x44, 0x4d, 0x54, 0x5b, 0x5a, 0x11,
    0x1c, 0x1b, 0x23, 0x2b, 0x34, 0x33, 0x3b, 0x42, 0x4b, 0x4c, 0x52, 0x0e, 0x12, 0x5c, 0x1a,
    0x22, 0x21, 0x2a, 0x32, 0x31, 0x3a, 0x41, 0x49, 0x4a, 0x59, 0x7e, 0x19, 0x29, 0x14, 0x07,
    0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x76, 0x5f, 0x6c, 0x75, 0x7d, 0x84,
    0x6b, 0x73, 0x74, 0x7c, 0x69, 0x72, 0x7a, 0x70, 0x71, 0x57, 0x00, 0x13, 0x56, 0x5e,
};

static uint8_t set3_code(unsigned qnum)
{
    if (qnum < sizeof(set3_plain))
        return set3_plain[qnum];
    switch (qnum) {
    case 0x9c: /* keypad Enter */
        return 0x79;
    case QNUM_RCTRL:
        return 0x58;
    case 0xb5: /* keypad / */
        return 0x77;
    case QNUM_PRINT:
        return 0x57;
    case QNUM_RALT:
        return 0x39;
    case QNUM_PAUSE:
        return 0x62;
    case 0xc7: /* Home */
        return 0x6e;
    case 0xc8: /* Up */
        return 0x63;
    case 0xc9: /* Page Up */
        return 0x6f;
    case 0xcb: /* Left */
        return 0x61;
    case 0xcd: /* Right */
        return 0x6a;
    case 0xcf: /* End */
        return 0x65;
    case 0xd0: /* Down */
        return 0x60;
    case 0xd1: /* Page Down */
        return 0x6d;
    case 0xd2: /* Insert */
        return 0x67;
    case 0xd3: /* Delete */
        return 0x64;
    case 0xdb: /* left Windows */
        return 0x8b;
    case 0xdc: /* right Windows */
        return 0x8c;
    case 0xdd: /* Menu */
        return 0x8d;
    default:
        return 0;
    }
}

/* ---- queues ---- */

static bool queue_push(struct ps2_queue *q, uint8_t byte, unsigned limit)
{
    if (q->count >= limit || q->count >= PS2_QUEUE_SIZE)
        return false;
    q->data[(q->head + q->count) % PS2_QUEUE_SIZE] = byte;
    q->count++;
    return true;
}

static uint8_t queue_pop(struct ps2_queue *q)
{
    uint8_t byte = q->data[q->head];
    q->head = (uint8_t)((q->head + 1) % PS2_QUEUE_SIZE);
    q->count--;
    return byte;
}

static void queue_clear(struct ps2_queue *q)
{
    q->head = 0;
    q->count = 0;
}

/* ---- the controller: output buffer and interrupts ---- */

static void update_irqs(struct i8042 *kbc)
{
    bool full = kbc->status & STAT_OBF;
    bool aux = kbc->status & STAT_AUX_OBF;
    bool kbd_level = full && !aux && (kbc->ram[0] & CB_KBD_INT);
    bool mouse_level = full && aux && (kbc->ram[0] & CB_AUX_INT);
    if (kbd_level != kbc->kbd_irq_level) {
        kbc->kbd_irq_level = kbd_level;
        irq_set(kbc->lines.kbd_irq, kbd_level);
    }
    if (mouse_level != kbc->mouse_irq_level) {
        kbc->mouse_irq_level = mouse_level;
        irq_set(kbc->lines.mouse_irq, mouse_level);
    }
}

static void mouse_flush(struct i8042 *kbc);

static void fill_output(struct i8042 *kbc, uint8_t byte, bool aux)
{
    kbc->output = byte;
    kbc->status |= STAT_OBF;
    if (aux)
        kbc->status |= STAT_AUX_OBF;
    else
        kbc->status &= (uint8_t)~STAT_AUX_OBF;
}

static void kbd_take_host_keys(struct i8042 *kbc);

/* Moves the next byte into an empty output buffer: the controller's own
 * replies first, then the keyboard's, then the mouse's, each only while its
 * interface is enabled in the command byte. */
static void refill_output(struct i8042 *kbc)
{
    kbd_take_host_keys(kbc);
    if (!(kbc->status & STAT_OBF) && kbc->ctrl.count)
        fill_output(kbc, queue_pop(&kbc->ctrl), false);

    struct ps2_queue *kq = &kbc->kbd.queue;
    while (!(kbc->status & STAT_OBF) && !(kbc->ram[0] & CB_KBD_DISABLE) && kq->count) {
        uint8_t byte = queue_pop(kq);
        kbc->kbd.last_sent = byte;
        if (kbc->ram[0] & CB_XLATE) {
            if (byte == 0xf0) {
                kbc->xlate_break = true;
                continue;
            }
            byte = translate_to_set1(byte);
            if (kbc->xlate_break)
                byte |= 0x80;
            kbc->xlate_break = false;
        }
        fill_output(kbc, byte, false);
    }
    /* Whatever the pop made room for. */
    kbd_take_host_keys(kbc);

    struct ps2_queue *mq = &kbc->mouse.queue;
    if (!(kbc->status & STAT_OBF) && !(kbc->ram[0] & CB_AUX_DISABLE) && mq->count) {
        uint8_t byte = queue_pop(mq);
        kbc->mouse.last_sent = byte;
        fill_output(kbc, byte, true);
        mouse_flush(kbc);
    }
    update_irqs(kbc);
}

static void controller_reply(struct i8042 *kbc, uint8_t byte)
{
    queue_push(&kbc->ctrl, byte, CTRL_QUEUE);
    refill_output(kbc);
}

/* ---- the keyboard ---- */

static void kbd_stop_repeat(struct i8042 *kbc)
{
    kbc->kbd.repeating_key = 0;
    if (kbc->clock)
        vtimer_cancel(kbc->clock, &kbc->typematic_timer);
}

/* The keyboard empties its buffer (reset, enable, disable): key events the
 * host has not handed over yet go with it. */
static void kbd_clear_buffer(struct i8042 *kbc)
{
    queue_clear(&kbc->kbd.queue);
    kbc->host_count = 0;
}

static void kbd_set_defaults(struct i8042 *kbc)
{
    kbc->kbd.scancode_set = 2;
    kbc->kbd.typematic = TYPEMATIC_DEFAULT;
    kbc->kbd.pending_command = 0;
    kbd_stop_repeat(kbc);
}

static void kbd_reply(struct i8042 *kbc, uint8_t byte)
{
    queue_push(&kbc->kbd.queue, byte, PS2_QUEUE_SIZE);
}

/* Key data may fill the 16-byte buffer only up to one free byte. */
static bool kbd_codes_fit(const struct ps2_keyboard *kbd, unsigned n)
{
    return kbd->queue.count + n <= KBD_BUFFER - 1;
}

/* Queues a key's codes; when they do not fit, the free byte takes the
 * overrun code instead. */
static void kbd_queue_keys(struct i8042 *kbc, const uint8_t *bytes, unsigned n)
{
    struct ps2_queue *q = &kbc->kbd.queue;
    if (kbd_codes_fit(&kbc->kbd, n)) {
        for (unsigned i = 0; i < n; i++)
            queue_push(q, bytes[i], KBD_BUFFER);
    } else {
        uint8_t overrun = kbc->kbd.scancode_set == 1 ? 0xff : 0x00;
        uint8_t last = q->count ? q->data[(q->head + q->count - 1) % PS2_QUEUE_SIZE] : 0x01;
        if (last != overrun)
            queue_push(q, overrun, KBD_BUFFER);
    }
    refill_output(kbc);
}

/* Turns a set-1 sequence into the current set's bytes (sets 1 and 2);
 * returns their number. */
static unsigned kbd_set1_to_current(const struct ps2_keyboard *kbd, const uint8_t *seq, unsigned n,
                                    uint8_t *out)
{
    unsigned len = 0;
    for (unsigned i = 0; i < n; i++) {
        uint8_t code = seq[i];
        if (kbd->scancode_set == 1 || code == 0xe0 || code == 0xe1) {
            out[len++] = code;
        } else {
            if (code & 0x80)
                out[len++] = 0xf0;
            out[len++] = set1_to_set2[code & 0x7f];
        }
    }
    return len;
}

enum { MOD_CTRL = 1, MOD_SHIFT = 2, MOD_ALT = 4 };

static unsigned modifier_of(unsigned qnum)
{
    switch (qnum) {
    case SET1_LCTRL:
    case QNUM_RCTRL:
        return MOD_CTRL;
    case SET1_LSHIFT:
    case SET1_RSHIFT:
        return MOD_SHIFT;
    case SET1_LALT:
    case QNUM_RALT:
        return MOD_ALT;
    default:
        return 0;
    }
}

#define KBD_MAX_CODES 12 /* Pause in set 2: e1 14 77 e1 f0 14 f0 77 */

/* The bytes one key transition sends in the current scan code set, given
 * the modifiers held (for Pause and Print Screen); returns their number. */
static unsigned kbd_encode_key(const struct ps2_keyboard *kbd, unsigned qnum, bool down,
                               uint8_t out[KBD_MAX_CODES])
{
    if (kbd->scancode_set == 3) {
        uint8_t code = set3_code(qnum);
        if (!code)
            return 0;
        if (down) {
            out[0] = code;
            return 1;
        }
        out[0] = 0xf0;
        out[1] = code;
        return 2;
    }
    uint8_t seq[8];
    unsigned n = 0;
    if (qnum == QNUM_PAUSE) {
        /* Pause has no break code; with Ctrl held it is Break. */
        if (!down)
            return 0;
        if (kbd->modifiers & MOD_CTRL) {
            static const uint8_t ctrl_break[] = {0xe0, 0x46, 0xe0, 0xc6};
            return kbd_set1_to_current(kbd, ctrl_break, sizeof(ctrl_break), out);
        }
        static const uint8_t pause[] = {0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5};
        return kbd_set1_to_current(kbd, pause, sizeof(pause), out);
    }
    if (qnum == QNUM_PRINT) {
        if (kbd->modifiers & MOD_ALT) {
            /* Alt+Print Screen is SysRq. */
            seq[n++] = down ? SET1_SYSRQ : SET1_SYSRQ | 0x80;
        } else if (kbd->modifiers & (MOD_CTRL | MOD_SHIFT)) {
            seq[n++] = 0xe0;
            seq[n++] = down ? 0x37 : 0xb7;
        } else if (down) {
            /* Alone, the key pretends a shift press first. */
            static const uint8_t make[] = {0xe0, 0x2a, 0xe0, 0x37};
            memcpy(seq, make, sizeof(make));
            n = sizeof(make);
        } else {
            static const uint8_t brk[] = {0xe0, 0xb7, 0xe0, 0xaa};
            memcpy(seq, brk, sizeof(brk));
            n = sizeof(brk);
        }
        return kbd_set1_to_current(kbd, seq, n, out);
    }
    if (qnum & 0x80)
        seq[n++] = 0xe0;
    seq[n++] = (uint8_t)((qnum & 0x7f) | (down ? 0 : 0x80));
    return kbd_set1_to_current(kbd, seq, n, out);
}

/* Sends one key transition made by the keyboard itself (typematic repeat). */
static void kbd_send_key(struct i8042 *kbc, unsigned qnum, bool down)
{
    uint8_t codes[KBD_MAX_CODES];
    unsigned n = kbd_encode_key(&kbc->kbd, qnum, down, codes);
    if (n)
        kbd_queue_keys(kbc, codes, n);
}

/* Turns the host's waiting key events into scan codes, oldest first, while
 * each one's codes fit whole in the keyboard's buffer.
 *
 * A real keyboard scans its keys as they move, and overruns its 16-byte
 * buffer when the CPU does not read for the time of several keystrokes. The
 * host, though, can stall a guest for that long (a loaded host, or nested
 * virtualisation, where a guest busy with timer interrupts takes hundreds of
 * milliseconds to read IRQ1's byte): keys the user typed must not be lost to
 * that, so they wait here, in order, and reach the buffer as it drains. */
static void kbd_take_host_keys(struct i8042 *kbc)
{
    struct ps2_keyboard *kbd = &kbc->kbd;
    while (kbc->host_count) {
        const struct host_key *key = &kbc->host_keys[kbc->host_head];
        uint8_t held = kbd->modifiers;
        unsigned mod = modifier_of(key->qnum);
        kbd->modifiers = (uint8_t)(key->down ? held | mod : held & ~mod);
        uint8_t codes[KBD_MAX_CODES];
        unsigned n = kbd_encode_key(kbd, key->qnum, key->down, codes);
        if (!kbd_codes_fit(kbd, n)) {
            kbd->modifiers = held;
            return;
        }
        for (unsigned i = 0; i < n; i++)
            queue_push(&kbd->queue, codes[i], KBD_BUFFER);
        kbc->host_head = (kbc->host_head + 1) % HOST_KEY_QUEUE;
        kbc->host_count--;
    }
}

static int64_t typematic_delay_ns(uint8_t typematic)
{
    return (int64_t)(((typematic >> 5) & 3) + 1) * 250 * 1000000;
}

/* Period = (8 + A) * 2^B * 4.17 ms, A in bits 0-2 and B in bits 3-4:
 * 30 characters per second at 0x00 down to 2 at 0x1f. */
static int64_t typematic_period_ns(uint8_t typematic)
{
    int64_t a = typematic & 7, b = (typematic >> 3) & 3;
    return (8 + a) * (1 << b) * NS_PER_SEC / 240;
}

static void typematic_fire(void *opaque)
{
    struct i8042 *kbc = opaque;
    struct ps2_keyboard *kbd = &kbc->kbd;
    if (!kbd->repeating_key || !kbd->scanning)
        return;
    /* While the host's events wait, the guest is behind: repeats now would
     * come before keystrokes typed earlier. */
    if (!kbc->host_count)
        kbd_send_key(kbc, kbd->repeating_key - 1u, true);
    vtimer_arm(kbc->clock, &kbc->typematic_timer,
               vclock_now(kbc->clock) + typematic_period_ns(kbd->typematic));
}

void i8042_key_event(struct i8042 *kbc, unsigned qnum, bool down)
{
    struct ps2_keyboard *kbd = &kbc->kbd;
    if (qnum == 0 || qnum > 0xff)
        return;
    /* A disabled keyboard does not scan at all, but the modifiers stay
     * held or released for later keys. */
    if (!kbd->scanning) {
        unsigned mod = modifier_of(qnum);
        kbd->modifiers = (uint8_t)(down ? kbd->modifiers | mod : kbd->modifiers & ~mod);
        return;
    }
    if (kbc->host_count < HOST_KEY_QUEUE) {
        unsigned tail = (kbc->host_head + kbc->host_count) % HOST_KEY_QUEUE;
        kbc->host_keys[tail] = (struct host_key){.qnum = (uint8_t)qnum, .down = down};
        kbc->host_count++;
        refill_output(kbc);
    } else {
        /* The guest has stopped reading its keyboard altogether: the
         * keyboard overruns, as a real one would. */
        unsigned mod = modifier_of(qnum);
        kbd->modifiers = (uint8_t)(down ? kbd->modifiers | mod : kbd->modifiers & ~mod);
        kbd_send_key(kbc, qnum, down);
    }

    /* Typematic repeat follows the keys as they are held on the host. */
    if (down && qnum != QNUM_PAUSE) {
        kbd->repeating_key = (uint16_t)(qnum + 1);
        if (kbc->clock)
            vtimer_arm(kbc->clock, &kbc->typematic_timer,
                       vclock_now(kbc->clock) + typematic_delay_ns(kbd->typematic));
    } else if (!down && kbd->repeating_key == qnum + 1) {
        kbd_stop_repeat(kbc);
    }
}

/* A byte the CPU sent to the keyboard through port 0x60. */
static void kbd_write(struct i8042 *kbc, uint8_t byte)
{
    struct ps2_keyboard *kbd = &kbc->kbd;
    uint8_t pending = kbd->pending_command;

    /* A command byte where an argument was expected starts that command
     * instead (argument bytes of these commands are all below 0xed). */
    if (pending && byte < 0xed) {
        switch (pending) {
        case 0xed:
            kbd->leds = byte & 7;
            kbd->pending_command = 0;
            break;
        case 0xf3:
            kbd->typematic = byte & 0x7f;
            kbd->pending_command = 0;
            break;
        case 0xf0:
            kbd->pending_command = 0;
            if (byte == 0) {
                kbd_reply(kbc, PS2_ACK);
                kbd_reply(kbc, kbd->scancode_set);
                refill_output(kbc);
                return;
            }
            if (byte > 3) {
                kbd_reply(kbc, PS2_RESEND);
                refill_output(kbc);
                return;
            }
            kbd->scancode_set = byte;
            break;
        default:
            /* 0xfb-0xfd take a list of set-3 keys, ended by the next
             * command. Per-key modes are acknowledged, not modelled. */
            break;
        }
        kbd_reply(kbc, PS2_ACK);
        refill_output(kbc);
        return;
    }
    kbd->pending_command = 0;

    switch (byte) {
    case 0xed: /* set LEDs */
    case 0xf0: /* get or set the scan code set */
    case 0xf3: /* set typematic rate and delay */
    case 0xfb: /* set-3 keys: typematic only */
    case 0xfc: /* set-3 keys: make and break */
    case 0xfd: /* set-3 keys: make only */
        kbd->pending_command = byte;
        kbd_reply(kbc, PS2_ACK);
        break;
    case 0xee:
        kbd_reply(kbc, PS2_ECHO);
        break;
    case 0xf2:
        kbd_reply(kbc, PS2_ACK);
        kbd_reply(kbc, KBD_ID_MF2_1);
        kbd_reply(kbc, KBD_ID_MF2_2);
        break;
    case 0xf4: /* enable scanning; the buffer is cleared */
        kbd_clear_buffer(kbc);
        kbd->scanning = true;
        kbd_reply(kbc, PS2_ACK);
        break;
    case 0xf5: /* defaults, and stop scanning */
        kbd_clear_buffer(kbc);
        kbd_set_defaults(kbc);
        kbd->scanning = false;
        kbd_reply(kbc, PS2_ACK);
        break;
    case 0xf6: /* defaults, and scan */
        kbd_clear_buffer(kbc);
        kbd_set_defaults(kbc);
        kbd->scanning = true;
        kbd_reply(kbc, PS2_ACK);
        break;
    case 0xf7: /* set-3 all keys typematic, make/break, make, or all */
    case 0xf8:
    case 0xf9:
    case 0xfa:
        kbd_reply(kbc, PS2_ACK);
        break;
    case 0xfe:
        kbd_reply(kbc, kbd->last_sent);
        break;
    case 0xff: /* reset: acknowledge, then pass the basic assurance test */
        kbd_clear_buffer(kbc);
        kbd_set_defaults(kbc);
        kbd->leds = 0;
        kbd->scanning = true;
        kbd_reply(kbc, PS2_ACK);
        kbd_reply(kbc, PS2_BAT_OK);
        break;
    default:
        kbd_reply(kbc, PS2_RESEND);
        break;
    }
    refill_output(kbc);
}

/* ---- the mouse ---- */

static void mouse_set_defaults(struct ps2_mouse *mouse)
{
    mouse->sample_rate = 100;
    mouse->resolution = 2; /* 4 counts per millimetre */
    mouse->scaling_2to1 = false;
    mouse->remote = false;
    mouse->reporting = false;
    mouse->dx = mouse->dy = mouse->dz = 0;
    mouse->buttons_changed = false;
}

static void mouse_reply(struct i8042 *kbc, uint8_t byte)
{
    queue_push(&kbc->mouse.queue, byte, PS2_QUEUE_SIZE);
}

static int clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* 2:1 scaling as the mouse applies it to stream reports. */
static int scale_2to1(int v)
{
    static const int small[6] = {0, 1, 1, 3, 6, 9};
    int mag = v < 0 ? -v : v;
    int scaled = mag < 6 ? small[mag] : 2 * mag;
    return v < 0 ? -scaled : scaled;
}

/* Queues one packet from the pending motion; false if it does not fit. */
static bool mouse_send_packet(struct i8042 *kbc, bool stream, unsigned limit)
{
    struct ps2_mouse *mouse = &kbc->mouse;
    unsigned len = mouse->id >= 3 ? 4 : 3;
    if (mouse->queue.count + len > limit)
        return false;
    int dx = clamp(mouse->dx, -256, 255);
    int dy = clamp(mouse->dy, -256, 255);
    int dz = clamp(mouse->dz, -8, 7);
    mouse->dx -= dx;
    mouse->dy -= dy;
    mouse->dz -= dz;
    if (stream && mouse->scaling_2to1) {
        dx = clamp(scale_2to1(dx), -256, 255);
        dy = clamp(scale_2to1(dy), -256, 255);
    }
    uint8_t head = 0x08 | (mouse->buttons & 7) | (dx < 0 ? 0x10 : 0) | (dy < 0 ? 0x20 : 0);
    mouse_reply(kbc, head);
    mouse_reply(kbc, (uint8_t)dx);
    mouse_reply(kbc, (uint8_t)dy);
    if (mouse->id == 3)
        mouse_reply(kbc, (uint8_t)dz);
    else if (mouse->id == 4)
        mouse_reply(kbc, (uint8_t)((dz & 0x0f) | ((mouse->buttons & 0x18) << 1)));
    mouse->buttons_changed = false;
    return true;
}

/* In stream mode, sends what the mouse has to report while there is room. */
static void mouse_flush(struct i8042 *kbc)
{
    struct ps2_mouse *mouse = &kbc->mouse;
    if (mouse->remote || !mouse->reporting)
        return;
    while (mouse->dx || mouse->dy || mouse->dz || mouse->buttons_changed) {
        if (!mouse_send_packet(kbc, true, MOUSE_BUFFER))
            break;
    }
}

void i8042_mouse_event(struct i8042 *kbc, int dx, int dy, int dz, unsigned buttons)
{
    struct ps2_mouse *mouse = &kbc->mouse;
    /* A disabled mouse in stream mode keeps nothing to report later. */
    if (!mouse->remote && !mouse->reporting)
        return;
    /* Keep the pending motion far from overflow whatever the host sends. */
    mouse->dx = clamp(mouse->dx + clamp(dx, -65536, 65536), -65536, 65536);
    mouse->dy = clamp(mouse->dy - clamp(dy, -65536, 65536), -65536, 65536);
    mouse->dz = clamp(mouse->dz + clamp(dz, -256, 256), -256, 256);
    if ((buttons & 0x1f) != mouse->buttons) {
        mouse->buttons = (uint8_t)(buttons & 0x1f);
        mouse->buttons_changed = true;
    }
    mouse_flush(kbc);
    refill_output(kbc);
}

/* The IntelliMouse knocks: sample rates 200, 100, 80 unlock the wheel;
 * then 200, 200, 80 unlock the fourth and fifth buttons. */
static void mouse_note_sample_rate(struct ps2_mouse *mouse, uint8_t rate)
{
    mouse->rate_history[0] = mouse->rate_history[1];
    mouse->rate_history[1] = mouse->rate_history[2];
    mouse->rate_history[2] = rate;
    const uint8_t *h = mouse->rate_history;
    if (mouse->id == 0 && h[0] == 200 && h[1] == 100 && h[2] == 80)
        mouse->id = 3;
    else if (mouse->id == 3 && h[0] == 200 && h[1] == 200 && h[2] == 80)
        mouse->id = 4;
}

/* A byte the CPU sent to the mouse (controller command 0xd4). */
static void mouse_write(struct i8042 *kbc, uint8_t byte)
{
    struct ps2_mouse *mouse = &kbc->mouse;
    if (mouse->pending_command) {
        if (mouse->pending_command == 0xe8) {
            mouse->resolution = byte & 3;
        } else {
            mouse->sample_rate = byte;
            mouse_note_sample_rate(mouse, byte);
        }
        mouse->pending_command = 0;
        mouse_reply(kbc, PS2_ACK);
        refill_output(kbc);
        return;
    }
    /* In wrap mode the mouse echoes everything but its way out. */
    if (mouse->wrap && byte != 0xec && byte != 0xff) {
        mouse_reply(kbc, byte);
        refill_output(kbc);
        return;
    }
    /* Commands that change what is being reported drop the packets not
     * read yet, so the replies are not mixed with stale motion. */
    if (byte == 0xea || byte == 0xf0 || byte == 0xf5 || byte == 0xf6 || byte == 0xff)
        queue_clear(&mouse->queue);

    switch (byte) {
    case 0xe6:
        mouse->scaling_2to1 = false;
        mouse_reply(kbc, PS2_ACK);
        break;
    case 0xe7:
        mouse->scaling_2to1 = true;
        mouse_reply(kbc, PS2_ACK);
        break;
    case 0xe8: /* set resolution */
    case 0xf3: /* set sample rate */
        mouse->pending_command = byte;
        mouse_reply(kbc, PS2_ACK);
        break;
    case 0xe9: { /* status request */
        uint8_t status = (uint8_t)((mouse->remote ? 0x40 : 0) | (mouse->reporting ? 0x20 : 0) |
                                   (mouse->scaling_2to1 ? 0x10 : 0) |
                                   (mouse->buttons & I8042_BUTTON_LEFT ? 0x04 : 0) |
                                   (mouse->buttons & I8042_BUTTON_MIDDLE ? 0x02 : 0) |
                                   (mouse->buttons & I8042_BUTTON_RIGHT ? 0x01 : 0));
        mouse_reply(kbc, PS2_ACK);
        mouse_reply(kbc, status);
        mouse_reply(kbc, mouse->resolution);
        mouse_reply(kbc, mouse->sample_rate);
        break;
    }
    case 0xea: /* stream mode */
        mouse->remote = false;
        mouse->dx = mouse->dy = mouse->dz = 0;
        mouse_reply(kbc, PS2_ACK);
        break;
    case 0xeb: /* read data: one packet, whatever the mode */
        mouse_reply(kbc, PS2_ACK);
        mouse_send_packet(kbc, false, PS2_QUEUE_SIZE);
        break;
    case 0xec:
        mouse->wrap = false;
        mouse_reply(kbc, PS2_ACK);
        break;
    case 0xee:
        mouse->wrap = true;
        mouse_reply(kbc, PS2_ACK);
        break;
    case 0xf0: /* remote mode */
        mouse->remote = true;
        mouse_reply(kbc, PS2_ACK);
        break;
    case 0xf2:
        mouse_reply(kbc, PS2_ACK);
        mouse_reply(kbc, mouse->id);
        break;
    case 0xf4:
        mouse->reporting = true;
        mouse->dx = mouse->dy = mouse->dz = 0;
        mouse_reply(kbc, PS2_ACK);
        break;
    case 0xf5:
        mouse->reporting = false;
        mouse_reply(kbc, PS2_ACK);
        break;
    case 0xf6:
        mouse_set_defaults(mouse);
        mouse_reply(kbc, PS2_ACK);
        break;
    case 0xfe:
        mouse_reply(kbc, mouse->last_sent);
        break;
    case 0xff: /* reset: acknowledge, self-test passed, device ID */
        mouse_set_defaults(mouse);
        mouse->wrap = false;
        mouse->id = 0;
        memset(mouse->rate_history, 0, sizeof(mouse->rate_history));
        mouse_reply(kbc, PS2_ACK);
        mouse_reply(kbc, PS2_BAT_OK);
        mouse_reply(kbc, 0x00);
        break;
    default:
        mouse_reply(kbc, PS2_RESEND);
        break;
    }
    refill_output(kbc);
}

/* ---- controller commands ---- */

static void write_output_port(struct i8042 *kbc, uint8_t value)
{
    uint8_t old = kbc->output_port;
    kbc->output_port = value;
    if ((old ^ value) & OUT_A20)
        irq_set(kbc->lines.a20, value & OUT_A20);
    /* The reset line is active low; the machine resets every device,
     * this controller included, so the line need not be raised again. */
    if (!(value & OUT_RESET))
        irq_pulse(kbc->lines.reset);
}

static uint8_t read_output_port(struct i8042 *kbc)
{
    uint8_t value = kbc->output_port & (uint8_t) ~(OUT_KBD_OBF | OUT_AUX_OBF);
    if (kbc->status & STAT_OBF)
        value |= (kbc->status & STAT_AUX_OBF) ? OUT_AUX_OBF : OUT_KBD_OBF;
    return value;
}

static void write_command_byte(struct i8042 *kbc, uint8_t value)
{
    kbc->ram[0] = value;
    if (value & CB_SYS)
        kbc->status |= STAT_SYS;
    else
        kbc->status &= (uint8_t)~STAT_SYS;
    /* Enabling an interface may let waiting data through; the interrupt
     * enables change the lines at once. */
    refill_output(kbc);
}

static void controller_command(struct i8042 *kbc, uint8_t cmd)
{
    kbc->pending_command = 0;
    if (cmd >= 0x20 && cmd <= 0x3f) {
        controller_reply(kbc, kbc->ram[cmd & 0x1f]);
        return;
    }
    if (cmd >= 0x60 && cmd <= 0x7f) {
        kbc->pending_command = cmd;
        return;
    }
    if (cmd >= 0xf0) {
        /* Pulse output port bits 0-3 low where cmd has a zero: only bit 0,
         * the reset line, is connected. */
        if (!(cmd & 1))
            irq_pulse(kbc->lines.reset);
        return;
    }
    switch (cmd) {
    case 0xa4: /* is a password installed? no */
        controller_reply(kbc, 0xf1);
        break;
    case 0xa5: /* load a password: a NUL-terminated string follows */
        kbc->pending_command = cmd;
        break;
    case 0xa7:
        write_command_byte(kbc, kbc->ram[0] | CB_AUX_DISABLE);
        break;
    case 0xa8:
        write_command_byte(kbc, kbc->ram[0] & (uint8_t)~CB_AUX_DISABLE);
        break;
    case 0xa9: /* auxiliary interface test: no fault */
    case 0xab: /* keyboard interface test: no fault */
        controller_reply(kbc, 0x00);
        break;
    case 0xaa: /* self-test: passed, and the system flag is set */
        kbc->status |= STAT_SYS;
        controller_reply(kbc, 0x55);
        break;
    case 0xad:
        write_command_byte(kbc, kbc->ram[0] | CB_KBD_DISABLE);
        break;
    case 0xae:
        write_command_byte(kbc, kbc->ram[0] & (uint8_t)~CB_KBD_DISABLE);
        break;
    case 0xc0: /* input port: keyboard not inhibited, colour display */
        controller_reply(kbc, 0x80);
        break;
    case 0xd0:
        controller_reply(kbc, read_output_port(kbc));
        break;
    case 0xd1: /* write output port */
    case 0xd2: /* write keyboard output buffer */
    case 0xd3: /* write auxiliary output buffer */
    case 0xd4: /* write to the auxiliary device */
        kbc->pending_command = cmd;
        break;
    case 0xdd: /* A20 off and on, as on many AT-compatible controllers */
        write_output_port(kbc, kbc->output_port & (uint8_t)~OUT_A20);
        break;
    case 0xdf:
        write_output_port(kbc, kbc->output_port | OUT_A20);
        break;
    case 0xe0: /* test inputs: keyboard clock and data low */
        controller_reply(kbc, 0x00);
        break;
    default:
        /* Vendor commands (passwords, diagnostics) are ignored. */
        break;
    }
}

static void controller_data(struct i8042 *kbc, uint8_t cmd, uint8_t value)
{
    if (cmd >= 0x60 && cmd <= 0x7f) {
        if (cmd == 0x60)
            write_command_byte(kbc, value);
        else
            kbc->ram[cmd & 0x1f] = value;
        return;
    }
    switch (cmd) {
    case 0xa5: /* password bytes are swallowed up to the NUL; none is kept */
        if (value != 0)
            kbc->pending_command = cmd;
        break;
    case 0xd1:
        write_output_port(kbc, value);
        break;
    case 0xd2:
        queue_push(&kbc->kbd.queue, value, PS2_QUEUE_SIZE);
        refill_output(kbc);
        break;
    case 0xd3:
        queue_push(&kbc->mouse.queue, value, PS2_QUEUE_SIZE);
        refill_output(kbc);
        break;
    case 0xd4:
        mouse_write(kbc, value);
        break;
    }
}

/* ---- ports ---- */

static uint32_t i8042_read(void *opaque, uint16_t port, unsigned size)
{
    struct i8042 *kbc = opaque;
    (void)size;
    if (port == I8042_COMMAND_PORT)
        return kbc->status;
    /* Without new data the last byte reads again (EMM386 relies on it). */
    uint8_t value = kbc->output;
    if (kbc->status & STAT_OBF) {
        kbc->status &= (uint8_t) ~(STAT_OBF | STAT_AUX_OBF);
        update_irqs(kbc);
        refill_output(kbc);
    }
    return value;
}

static void i8042_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct i8042 *kbc = opaque;
    uint8_t byte = (uint8_t)value;
    (void)size;
    if (port == I8042_COMMAND_PORT) {
        kbc->status |= STAT_CMD;
        controller_command(kbc, byte);
        return;
    }
    kbc->status &= (uint8_t)~STAT_CMD;
    if (kbc->pending_command) {
        uint8_t cmd = kbc->pending_command;
        kbc->pending_command = 0;
        controller_data(kbc, cmd, byte);
    } else {
        kbd_write(kbc, byte);
    }
}

void i8042_reset(void *opaque)
{
    struct i8042 *kbc = opaque;
    kbc->status = STAT_UNLOCKED;
    kbc->output = 0;
    memset(kbc->ram, 0, sizeof(kbc->ram));
    /* Interrupts on and translation to set 1, as PC BIOSes program it;
     * the system flag stays clear until a self-test: a cold boot. */
    kbc->ram[0] = CB_KBD_INT | CB_AUX_INT | CB_XLATE;
    kbc->output_port = OUT_DEFAULT;
    kbc->pending_command = 0;
    kbc->xlate_break = false;
    queue_clear(&kbc->ctrl);

    kbd_clear_buffer(kbc);
    kbd_set_defaults(kbc);
    kbc->kbd.leds = 0;
    kbc->kbd.scanning = true;
    kbc->kbd.modifiers = 0;
    kbc->kbd.last_sent = 0;

    struct ps2_mouse *mouse = &kbc->mouse;
    queue_clear(&mouse->queue);
    mouse->pending_command = 0;
    mouse_set_defaults(mouse);
    mouse->wrap = false;
    mouse->id = 0;
    memset(mouse->rate_history, 0, sizeof(mouse->rate_history));
    mouse->buttons = 0;
    mouse->last_sent = 0;
    update_irqs(kbc);
}

struct i8042 *i8042_create(struct ioport_bus *io, struct vclock *clock,
                           const struct i8042_lines *lines)
{
    build_set2_table();
    struct i8042 *kbc = g_new0(struct i8042, 1);
    kbc->io = io;
    kbc->clock = clock;
    if (lines)
        kbc->lines = *lines;
    vtimer_init(&kbc->typematic_timer, typematic_fire, kbc);
    i8042_reset(kbc);
    ioport_register(io, I8042_DATA_PORT, 1, "i8042-data", i8042_read, i8042_write, kbc);
    ioport_register(io, I8042_COMMAND_PORT, 1, "i8042-command", i8042_read, i8042_write, kbc);
    return kbc;
}

void i8042_destroy(struct i8042 *kbc)
{
    if (!kbc)
        return;
    if (kbc->clock)
        vtimer_cancel(kbc->clock, &kbc->typematic_timer);
    ioport_unregister(kbc->io, I8042_DATA_PORT, 1);
    ioport_unregister(kbc->io, I8042_COMMAND_PORT, 1);
    g_free(kbc);
}

void i8042_post_load(void *opaque)
{
    struct i8042 *kbc = opaque;
    kbd_stop_repeat(kbc);
    /* Keys waiting on the host belong to the machine that ran before. */
    kbc->host_count = 0;
}
