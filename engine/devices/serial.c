/* The 16550A UART, following the National Semiconductor PC16550D data
 * sheet: receive and transmit holding registers with 16-byte FIFOs and
 * receive trigger levels, the interrupt enable and identification
 * registers with their four priority levels plus the FIFO character
 * timeout, line and modem control and status, the divisor latch, the
 * scratch register and local loopback.
 *
 * Transmission is instantaneous: a byte written to THR leaves at once, so
 * the transmitter is always empty and the transmit FIFO never fills. The
 * divisor still sets the receive character time, which the FIFO timeout
 * interrupt counts in. */
#include "serial.h"

#include <glib.h>

#include "ioport.h"
#include "vclock.h"

#define UART_CLOCK_HZ 1843200

enum serial_register {
    UART_RBR_THR_DLL = 0,
    UART_IER_DLM = 1,
    UART_IIR_FCR = 2,
    UART_LCR = 3,
    UART_MCR = 4,
    UART_LSR = 5,
    UART_MSR = 6,
    UART_SCR = 7,
};

#define IER_RDA  0x01
#define IER_THRE 0x02
#define IER_RLS  0x04
#define IER_MSR  0x08

#define IIR_NONE       0x01
#define IIR_RLS        0x06
#define IIR_RDA        0x04
#define IIR_TIMEOUT    0x0c
#define IIR_THRE       0x02
#define IIR_MSR        0x00
#define IIR_FIFO_FLAGS 0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02

#define LCR_STOP_BITS 0x04
#define LCR_PARITY    0x08
#define LCR_DLAB      0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR         0x01
#define LSR_OE         0x02
#define LSR_PE         0x04
#define LSR_FE         0x08
#define LSR_BI         0x10
#define LSR_THRE       0x20
#define LSR_TEMT       0x40
#define LSR_ERROR_BITS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS  0x01
#define MSR_DDSR  0x02
#define MSR_TERI  0x04
#define MSR_DDCD  0x08
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80
#define MSR_DELTA 0x0f

/* With nothing attached but a host stream, the modem inputs say that a
 * peer is present and ready, as they do for a null-modem cable. */
#define MSR_INPUTS_ATTACHED (MSR_CTS | MSR_DSR | MSR_DCD)

struct serial {
    uint8_t rx_fifo[SERIAL_FIFO_SIZE];
    uint8_t rx_head;
    uint8_t rx_count;
    uint8_t ier;
    uint8_t fcr;
    uint8_t lcr;
    uint8_t mcr;
    uint8_t lsr_errors; /* OE, PE, FE, BI: set until LSR is read */
    uint8_t msr;
    uint8_t scr;
    uint16_t divisor;
    bool thre_pending;    /* cleared by reading IIR (when shown) or writing THR */
    bool timeout_pending; /* receive FIFO character timeout */
    bool irq_level;
    bool rx_blocked; /* serial_receive refused bytes since the last read */

    uint16_t base;
    FILE *out;
    struct vclock *clock;
    struct irq_line irq;
    struct vtimer timeout_timer;
    void (*rx_ready)(void *opaque);
    void *rx_ready_opaque;
};

static const struct vmstate_field serial_fields[] = {
    VMSTATE_U8_ARRAY(struct serial, rx_fifo),
    VMSTATE_U8(struct serial, rx_head),
    VMSTATE_U8(struct serial, rx_count),
    VMSTATE_U8(struct serial, ier),
    VMSTATE_U8(struct serial, fcr),
    VMSTATE_U8(struct serial, lcr),
    VMSTATE_U8(struct serial, mcr),
    VMSTATE_U8(struct serial, lsr_errors),
    VMSTATE_U8(struct serial, msr),
    VMSTATE_U8(struct serial, scr),
    VMSTATE_U16(struct serial, divisor),
    VMSTATE_BOOL(struct serial, thre_pending),
    VMSTATE_BOOL(struct serial, timeout_pending),
    VMSTATE_BOOL(struct serial, irq_level),
    VMSTATE_BOOL(struct serial, rx_blocked),
    VMSTATE_END,
};

const struct vmstate_desc serial_vmstate = {
    .name = "serial",
    .version = 1,
    .fields = serial_fields,
};

static bool serial_fifo_enabled(const struct serial *s)
{
    return s->fcr & FCR_ENABLE;
}

static unsigned serial_rx_capacity(const struct serial *s)
{
    return serial_fifo_enabled(s) ? SERIAL_FIFO_SIZE : 1;
}

static unsigned serial_rx_trigger(const struct serial *s)
{
    static const uint8_t levels[4] = {1, 4, 8, 14};
    return serial_fifo_enabled(s) ? levels[s->fcr >> 6] : 1;
}

/* The highest-priority pending interrupt, as IIR bits 3-0. */
static uint8_t serial_pending_interrupt(const struct serial *s)
{
    if ((s->ier & IER_RLS) && (s->lsr_errors & LSR_ERROR_BITS))
        return IIR_RLS;
    if ((s->ier & IER_RDA) && s->rx_count >= serial_rx_trigger(s))
        return IIR_RDA;
    if ((s->ier & IER_RDA) && s->timeout_pending)
        return IIR_TIMEOUT;
    if ((s->ier & IER_THRE) && s->thre_pending)
        return IIR_THRE;
    if ((s->ier & IER_MSR) && (s->msr & MSR_DELTA))
        return IIR_MSR;
    return IIR_NONE;
}

/* The INTRPT pin reaches the ISA bus through a driver that OUT2 enables. */
static void serial_update_irq(struct serial *s)
{
    bool level = serial_pending_interrupt(s) != IIR_NONE && (s->mcr & MCR_OUT2);
    if (level != s->irq_level) {
        s->irq_level = level;
        irq_set(&s->irq, level);
    }
}

/* Time for one character at the programmed divisor and frame. */
static int64_t serial_char_time_ns(const struct serial *s)
{
    int bits =
        1 + 5 + (s->lcr & 3) + ((s->lcr & LCR_PARITY) ? 1 : 0) + ((s->lcr & LCR_STOP_BITS) ? 2 : 1);
    int64_t divisor = s->divisor ? s->divisor : 0x10000;
    return bits * divisor * 16 * NS_PER_SEC / UART_CLOCK_HZ;
}

/* The FIFO timeout fires when characters sit in the receive FIFO and none
 * has arrived or been read for four character times. */
static void serial_restart_timeout(struct serial *s)
{
    s->timeout_pending = false;
    if (serial_fifo_enabled(s) && s->rx_count > 0)
        vtimer_arm(s->clock, &s->timeout_timer, vclock_now(s->clock) + 4 * serial_char_time_ns(s));
    else
        vtimer_cancel(s->clock, &s->timeout_timer);
}

static void serial_timeout_fired(void *opaque)
{
    struct serial *s = opaque;
    if (serial_fifo_enabled(s) && s->rx_count > 0) {
        s->timeout_pending = true;
        serial_update_irq(s);
    }
}

static void serial_clear_rx(struct serial *s)
{
    s->rx_head = 0;
    s->rx_count = 0;
    s->timeout_pending = false;
    vtimer_cancel(s->clock, &s->timeout_timer);
}

/* A character completed in the receive shift register. */
static void serial_rx_byte(struct serial *s, uint8_t byte)
{
    if (s->rx_count == serial_rx_capacity(s)) {
        s->lsr_errors |= LSR_OE;
        /* Without FIFOs the new character overwrites the holding register;
         * with them, the one in the shift register is lost. */
        if (!serial_fifo_enabled(s))
            s->rx_fifo[s->rx_head] = byte;
        return;
    }
    s->rx_fifo[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = byte;
    s->rx_count++;
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
    if (s->mcr & MCR_LOOP)
        return len;
    size_t taken = 0;
    while (taken < len && s->rx_count < serial_rx_capacity(s))
        serial_rx_byte(s, buf[taken++]);
    if (taken < len)
        s->rx_blocked = true;
    if (taken > 0) {
        serial_restart_timeout(s);
        serial_update_irq(s);
    }
    return taken;
}

void serial_set_rx_ready_callback(struct serial *s, void (*fn)(void *opaque), void *opaque)
{
    s->rx_ready = fn;
    s->rx_ready_opaque = opaque;
}

static uint8_t serial_read_rbr(struct serial *s)
{
    uint8_t byte = s->rx_fifo[s->rx_head];
    if (s->rx_count > 0) {
        s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
        s->rx_count--;
    }
    serial_restart_timeout(s);
    serial_update_irq(s);
    if (s->rx_blocked && s->rx_count < serial_rx_capacity(s)) {
        s->rx_blocked = false;
        if (s->rx_ready)
            s->rx_ready(s->rx_ready_opaque);
    }
    return byte;
}

static void serial_transmit(struct serial *s, uint8_t byte)
{
    if (s->mcr & MCR_LOOP) {
        serial_rx_byte(s, byte);
        serial_restart_timeout(s);
    } else if (s->out) {
        fputc(byte, s->out);
        fflush(s->out);
    }
    /* The byte left at once: THR is empty again. */
    s->thre_pending = true;
    serial_update_irq(s);
}

/* The modem inputs: the host side in normal operation, the modem control
 * outputs in loopback. Changes set the delta bits. */
static void serial_update_msr(struct serial *s)
{
    uint8_t inputs = MSR_INPUTS_ATTACHED;
    if (s->mcr & MCR_LOOP) {
        inputs = ((s->mcr & MCR_RTS) ? MSR_CTS : 0) | ((s->mcr & MCR_DTR) ? MSR_DSR : 0) |
                 ((s->mcr & MCR_OUT1) ? MSR_RI : 0) | ((s->mcr & MCR_OUT2) ? MSR_DCD : 0);
    }
    uint8_t old = s->msr;
    uint8_t changed = (old ^ inputs) & 0xf0;
    uint8_t deltas = old & MSR_DELTA;
    if (changed & MSR_CTS)
        deltas |= MSR_DCTS;
    if (changed & MSR_DSR)
        deltas |= MSR_DDSR;
    if (changed & MSR_DCD)
        deltas |= MSR_DDCD;
    if ((old & MSR_RI) && !(inputs & MSR_RI))
        deltas |= MSR_TERI; /* the trailing edge of RI */
    s->msr = inputs | deltas;
}

static void serial_write_fcr(struct serial *s, uint8_t value)
{
    /* Changing the FIFO enable clears both FIFOs; the other bits take
     * effect only while bit 0 is written as one. */
    if ((value ^ s->fcr) & FCR_ENABLE)
        serial_clear_rx(s);
    if (!(value & FCR_ENABLE)) {
        s->fcr = 0;
        return;
    }
    if (value & FCR_CLEAR_RX)
        serial_clear_rx(s);
    s->fcr = value & 0xc9; /* trigger level, DMA mode, enable */
    serial_restart_timeout(s);
}

static void serial_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct serial *s = opaque;
    (void)size;
    uint8_t byte = value & 0xff;
    switch (port - s->base) {
    case UART_RBR_THR_DLL:
        if (s->lcr & LCR_DLAB) {
            s->divisor = (s->divisor & 0xff00) | byte;
            return;
        }
        s->thre_pending = false;
        serial_transmit(s, byte);
        return;
    case UART_IER_DLM:
        if (s->lcr & LCR_DLAB) {
            s->divisor = (uint16_t)((s->divisor & 0x00ff) | byte << 8);
            return;
        }
        /* Enabling the THRE interrupt while THR is empty raises it. */
        if ((byte & IER_THRE) && !(s->ier & IER_THRE))
            s->thre_pending = true;
        s->ier = byte & 0x0f;
        break;
    case UART_IIR_FCR:
        serial_write_fcr(s, byte);
        break;
    case UART_LCR:
        s->lcr = byte;
        return;
    case UART_MCR:
        s->mcr = byte & 0x1f;
        serial_update_msr(s);
        break;
    case UART_LSR:
    case UART_MSR:
        return; /* the status registers are read-only here */
    case UART_SCR:
        s->scr = byte;
        return;
    }
    serial_update_irq(s);
}

static uint32_t serial_read(void *opaque, uint16_t port, unsigned size)
{
    struct serial *s = opaque;
    (void)size;
    switch (port - s->base) {
    case UART_RBR_THR_DLL:
        if (s->lcr & LCR_DLAB)
            return s->divisor & 0xff;
        return serial_read_rbr(s);
    case UART_IER_DLM:
        if (s->lcr & LCR_DLAB)
            return s->divisor >> 8;
        return s->ier;
    case UART_IIR_FCR: {
        uint8_t id = serial_pending_interrupt(s);
        /* Reading IIR while it shows THRE acknowledges that interrupt. */
        if (id == IIR_THRE) {
            s->thre_pending = false;
            serial_update_irq(s);
        }
        return id | (serial_fifo_enabled(s) ? IIR_FIFO_FLAGS : 0);
    }
    case UART_LCR:
        return s->lcr;
    case UART_MCR:
        return s->mcr;
    case UART_LSR: {
        uint8_t value = LSR_THRE | LSR_TEMT | s->lsr_errors;
        if (s->rx_count > 0)
            value |= LSR_DR;
        s->lsr_errors = 0;
        serial_update_irq(s);
        return value;
    }
    case UART_MSR: {
        uint8_t value = s->msr;
        s->msr &= ~MSR_DELTA;
        serial_update_irq(s);
        return value;
    }
    default:
        return s->scr;
    }
}

void serial_reset(void *opaque)
{
    struct serial *s = opaque;
    serial_clear_rx(s);
    s->ier = 0;
    s->fcr = 0;
    s->lcr = 0;
    s->mcr = 0;
    s->lsr_errors = 0;
    s->msr = MSR_INPUTS_ATTACHED;
    s->thre_pending = false;
    s->rx_blocked = false;
    serial_update_irq(s);
}

struct serial *serial_create(struct ioport_bus *io, uint16_t base, struct vclock *clock,
                             const struct irq_line *irq, FILE *out)
{
    struct serial *s = g_new0(struct serial, 1);
    s->base = base;
    s->out = out;
    s->clock = clock;
    if (irq)
        s->irq = *irq;
    s->divisor = 12; /* 9600 baud */
    vtimer_init(&s->timeout_timer, serial_timeout_fired, s);
    serial_reset(s);
    ioport_register(io, base, 8, "serial", serial_read, serial_write, s);
    return s;
}

void serial_destroy(struct serial *s)
{
    if (!s)
        return;
    vtimer_cancel(s->clock, &s->timeout_timer);
    if (s->out)
        fflush(s->out);
    g_free(s);
}

void serial_post_load(void *opaque)
{
    struct serial *s = opaque;
    if (serial_fifo_enabled(s) && s->rx_count > 0 && !s->timeout_pending)
        vtimer_arm(s->clock, &s->timeout_timer, vclock_now(s->clock) + 4 * serial_char_time_ns(s));
}
