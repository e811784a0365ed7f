/* Register-level tests of the 16550A UART. */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#include <unistd.h>

#include "devices/serial.h"
#include "ioport.h"
#include "serial_input.h"
#include "vclock.h"

#define COM1 SERIAL_COM1_BASE

enum { THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct fixture {
    struct ioport_bus io;
    struct vclock clock;
    struct serial *serial;
    char *output;
    size_t output_len;
    FILE *out;
    bool irq_level;
    int rx_ready_calls;
};

static void irq_changed(void *opaque, int n, bool level)
{
    struct fixture *f = opaque;
    (void)n;
    f->irq_level = level;
}

static void rx_ready(void *opaque)
{
    struct fixture *f = opaque;
    f->rx_ready_calls++;
}

static struct fixture *fixture_new(void)
{
    struct fixture *f = g_new0(struct fixture, 1);
    ioport_bus_init(&f->io);
    vclock_init(&f->clock);
    f->out = open_memstream(&f->output, &f->output_len);
    struct irq_line irq = {.handler = irq_changed, .opaque = f};
    f->serial = serial_create(&f->io, COM1, &f->clock, &irq, f->out);
    serial_set_rx_ready_callback(f->serial, rx_ready, f);
    return f;
}

static void fixture_free(struct fixture *f)
{
    serial_destroy(f->serial);
    fclose(f->out);
    free(f->output);
    g_free(f);
}

static void out8(struct fixture *f, int reg, uint8_t value)
{
    ioport_write(&f->io, COM1 + reg, 1, value);
}

static uint8_t in8(struct fixture *f, int reg)
{
    return (uint8_t)ioport_read(&f->io, COM1 + reg, 1);
}

static void receive(struct fixture *f, const char *text, size_t expected_taken)
{
    size_t len = strlen(text);
    g_assert_cmpuint(serial_receive(f->serial, (const uint8_t *)text, len), ==, expected_taken);
}

static void test_registers_and_divisor_latch(void)
{
    struct fixture *f = fixture_new();
    out8(f, SCR, 0x5a);
    g_assert_cmphex(in8(f, SCR), ==, 0x5a);
    out8(f, LCR, 0x80);
    out8(f, THR, 0x01); /* 115200 baud */
    out8(f, IER, 0x00);
    g_assert_cmphex(in8(f, THR), ==, 0x01);
    g_assert_cmphex(in8(f, IER), ==, 0x00);
    out8(f, LCR, 0x03);
    g_assert_cmphex(in8(f, LCR), ==, 0x03);
    g_assert_cmphex(in8(f, IER), ==, 0x00);
    g_assert_cmphex(in8(f, IIR), ==, 0x01);
    g_assert_cmphex(in8(f, LSR), ==, 0x60);
    g_assert_cmphex(in8(f, MSR) & 0xf0, ==, 0xb0); /* CTS, DSR, DCD */
    fixture_free(f);
}

static void test_transmit_and_thre_interrupt(void)
{
    struct fixture *f = fixture_new();
    out8(f, LCR, 0x03);
    out8(f, MCR, 0x08); /* OUT2: interrupts reach the bus */
    out8(f, THR, 'h');
    out8(f, THR, 'i');
    fflush(f->out);
    g_assert_cmpuint(f->output_len, ==, 2);
    g_assert_cmpmem(f->output, 2, "hi", 2);
    g_assert_false(f->irq_level);

    /* Enabling the THRE interrupt with THR empty raises it; reading IIR
     * acknowledges it; a write brings it back. */
    out8(f, IER, 0x02);
    g_assert_true(f->irq_level);
    g_assert_cmphex(in8(f, IIR), ==, 0x02);
    g_assert_false(f->irq_level);
    g_assert_cmphex(in8(f, IIR), ==, 0x01);
    out8(f, THR, '!');
    g_assert_true(f->irq_level);

    /* Without OUT2 the line stays low whatever is pending. */
    out8(f, MCR, 0x00);
    g_assert_false(f->irq_level);
    g_assert_cmphex(in8(f, IIR), ==, 0x02);
    fixture_free(f);
}

static void test_receive_without_fifo(void)
{
    struct fixture *f = fixture_new();
    out8(f, LCR, 0x03);
    out8(f, MCR, 0x08);
    out8(f, IER, 0x01);
    /* The holding register takes one byte; the rest waits on the host. */
    receive(f, "ab", 1);
    g_assert_true(f->irq_level);
    g_assert_cmphex(in8(f, IIR), ==, 0x04);
    g_assert_cmphex(in8(f, LSR) & 0x01, ==, 0x01);
    g_assert_cmphex(in8(f, THR), ==, 'a');
    g_assert_false(f->irq_level);
    g_assert_cmpint(f->rx_ready_calls, ==, 1);
    g_assert_cmphex(in8(f, LSR) & 0x01, ==, 0x00);
    fixture_free(f);
}

static void test_fifo_trigger_and_timeout(void)
{
    struct fixture *f = fixture_new();
    out8(f, LCR, 0x03);
    out8(f, MCR, 0x08);
    out8(f, FCR, 0xc7); /* enable and clear FIFOs, trigger at 14 */
    out8(f, IER, 0x01);
    g_assert_cmphex(in8(f, IIR), ==, 0xc1);

    receive(f, "0123456789abc", 13);
    g_assert_false(f->irq_level); /* below the trigger level */
    /* Four character times (10 bits at 9600 baud each) later the FIFO
     * timeout fires. */
    int64_t char_ns = 10 * 12 * 16 * NS_PER_SEC / 1843200;
    vclock_set(&f->clock, 4 * char_ns - 1000);
    vclock_run_timers(&f->clock);
    g_assert_false(f->irq_level);
    vclock_set(&f->clock, 4 * char_ns + 1000);
    vclock_run_timers(&f->clock);
    g_assert_true(f->irq_level);
    g_assert_cmphex(in8(f, IIR), ==, 0xcc);

    /* Reaching the trigger level is a data-available interrupt. */
    receive(f, "defg", 3);
    g_assert_cmphex(in8(f, IIR), ==, 0xc4);
    char text[17] = {0};
    for (int i = 0; i < 16; i++)
        text[i] = (char)in8(f, THR);
    g_assert_cmpstr(text, ==, "0123456789abcdef");
    g_assert_cmpint(f->rx_ready_calls, ==, 1);
    g_assert_cmphex(in8(f, IIR), ==, 0xc1);
    g_assert_cmphex(in8(f, LSR) & 0x01, ==, 0x00);

    /* Trigger level 4. */
    out8(f, FCR, 0x41);
    receive(f, "xyz", 3);
    g_assert_cmphex(in8(f, IIR), ==, 0xc1);
    receive(f, "w", 1);
    g_assert_cmphex(in8(f, IIR), ==, 0xc4);
    /* Clearing the receive FIFO empties it. */
    out8(f, FCR, 0x43);
    g_assert_cmphex(in8(f, LSR) & 0x01, ==, 0x00);
    g_assert_cmphex(in8(f, IIR), ==, 0xc1);
    fixture_free(f);
}

static void test_loopback_and_interrupt_priorities(void)
{
    struct fixture *f = fixture_new();
    out8(f, LCR, 0x03);
    out8(f, IER, 0x0f);
    out8(f, MCR, 0x10 | 0x08); /* loopback; OUT2 loops to DCD */
    fflush(f->out);
    g_assert_cmpuint(f->output_len, ==, 0);

    /* Two bytes into a one-byte holding register: overrun. */
    out8(f, THR, 'A');
    out8(f, THR, 'B');
    fflush(f->out);
    g_assert_cmpuint(f->output_len, ==, 0); /* nothing leaves in loopback */
    g_assert_cmphex(in8(f, IIR), ==, 0x06); /* line status first */
    g_assert_cmphex(in8(f, LSR), ==, 0x63);
    g_assert_cmphex(in8(f, IIR), ==, 0x04); /* then received data */
    g_assert_cmphex(in8(f, THR), ==, 'B');
    g_assert_cmphex(in8(f, IIR), ==, 0x02); /* then THR empty */
    /* Then modem status: entering loopback changed CTS, DSR (now low) and
     * kept DCD (OUT2) high. */
    g_assert_cmphex(in8(f, IIR), ==, 0x00);
    g_assert_cmphex(in8(f, MSR), ==, 0x80 | 0x03);
    g_assert_cmphex(in8(f, IIR), ==, 0x01);

    /* The modem outputs loop back to the inputs. */
    out8(f, MCR, 0x10 | 0x08 | 0x04 | 0x02 | 0x01);
    g_assert_cmphex(in8(f, MSR), ==, 0xf0 | 0x03);
    out8(f, MCR, 0x10 | 0x08);
    g_assert_cmphex(in8(f, MSR), ==, 0x80 | 0x07); /* RI's trailing edge */

    /* Host input is disconnected in loopback. */
    receive(f, "zz", 2);
    g_assert_cmphex(in8(f, LSR) & 0x01, ==, 0x00);
    fixture_free(f);
}

/* --- host input: bytes from the engine's stdin or monitor into RBR ------ */

struct host_input {
    struct fixture *f;
    struct serial_input *input;
    int wakes; /* drains asked for and not yet run */
};

static void host_input_wake(void *opaque)
{
    struct host_input *h = opaque;
    h->wakes++;
}

/* What the engine's posted work does on the vCPU thread. */
static void run_posted_drains(struct host_input *h)
{
    while (h->wakes > 0) {
        h->wakes--;
        serial_input_drain(h->input);
    }
}

/* The guest's receive loop, as Linux's 8250 driver runs it from the RX
 * interrupt: read RBR while LSR says data is ready. */
static size_t guest_read_all(struct fixture *f, uint8_t *buf, size_t size)
{
    size_t n = 0;
    while (n < size && (in8(f, LSR) & 0x01))
        buf[n++] = in8(f, THR);
    return n;
}

static void test_host_input_through_fifo(void)
{
    struct fixture *f = fixture_new();
    struct host_input h = {.f = f};
    h.input = serial_input_create(f->serial, host_input_wake, &h);
    out8(f, LCR, 0x03);
    out8(f, MCR, 0x08);
    out8(f, FCR, 0x81); /* FIFOs on, trigger at 8 */
    out8(f, IER, 0x01);

    /* Pushes before the vCPU thread runs ask for one drain only. */
    const char *text = "echo vivarium-$((6*7)) && uname -a && cat /proc/cpuinfo\n";
    size_t len = strlen(text);
    serial_input_push(h.input, (const uint8_t *)text, 10);
    serial_input_push(h.input, (const uint8_t *)text + 10, len - 10);
    g_assert_cmpint(h.wakes, ==, 1);
    g_assert_false(f->irq_level);
    run_posted_drains(&h);
    /* The FIFO took 16 and raised the data-available interrupt; the rest
     * waits on the host side. */
    g_assert_true(f->irq_level);
    g_assert_cmphex(in8(f, IIR), ==, 0xc4);
    g_assert_cmpuint(serial_input_queued(h.input), ==, len - 16);

    /* Reading RBR refills the FIFO from the queue, so one receive loop
     * takes the whole line, in order. */
    uint8_t got[128];
    size_t n = guest_read_all(f, got, sizeof(got));
    g_assert_cmpuint(n, ==, len);
    g_assert_cmpmem(got, n, text, len);
    g_assert_cmpuint(serial_input_queued(h.input), ==, 0);
    g_assert_false(f->irq_level);
    g_assert_cmphex(in8(f, IIR), ==, 0xc1);
    g_assert_cmphex(in8(f, LSR) & 0x03, ==, 0x00); /* no overrun */

    /* Without FIFOs each byte waits in the holding register. */
    out8(f, FCR, 0x00);
    serial_input_push(h.input, (const uint8_t *)"xyz", 3);
    run_posted_drains(&h);
    g_assert_true(f->irq_level);
    g_assert_cmpuint(serial_input_queued(h.input), ==, 2);
    n = guest_read_all(f, got, sizeof(got));
    g_assert_cmpmem(got, n, "xyz", 3);
    g_assert_cmphex(in8(f, LSR) & 0x02, ==, 0x00);

    serial_input_destroy(h.input);
    fixture_free(f);
}

static void iterate_main_context(void)
{
    while (g_main_context_iteration(NULL, FALSE))
        ;
}

static void test_host_input_from_fd_pauses_when_full(void)
{
    struct fixture *f = fixture_new();
    struct host_input h = {.f = f};
    h.input = serial_input_create(f->serial, host_input_wake, &h);
    out8(f, LCR, 0x03);
    out8(f, FCR, 0x01);
    int fds[2];
    g_assert_cmpint(pipe(fds), ==, 0);
    g_assert_false(serial_input_watch_fd(h.input, fds[0]));

    /* Three queues' worth arrive at once (a pipe holds 64 KiB). */
    size_t total = 3 * SERIAL_INPUT_QUEUE_LIMIT;
    uint8_t *sent = g_malloc(total);
    for (size_t i = 0; i < total; i++)
        sent[i] = (uint8_t)(i * 7 + i / 256);
    g_assert_cmpint(write(fds[1], sent, total), ==, (ssize_t)total);

    /* The engine reads until the queue is full, then leaves the rest in
     * the pipe while the guest does not read. */
    iterate_main_context();
    size_t queued = serial_input_queued(h.input);
    g_assert_cmpuint(queued, >=, SERIAL_INPUT_QUEUE_LIMIT);
    g_assert_cmpuint(queued, <, total);
    iterate_main_context();
    g_assert_cmpuint(serial_input_queued(h.input), ==, queued);

    /* As the guest reads, the reading resumes; every byte arrives once
     * and in order. */
    uint8_t *got = g_malloc(total);
    size_t n = 0;
    for (int rounds = 0; n < total && rounds < 100000; rounds++) {
        run_posted_drains(&h);
        n += guest_read_all(f, got + n, total - n);
        iterate_main_context();
    }
    g_assert_cmpuint(n, ==, total);
    g_assert_cmpmem(got, total, sent, total);
    g_assert_cmphex(in8(f, LSR) & 0x03, ==, 0x00);

    close(fds[1]);
    iterate_main_context(); /* end of file: the watch goes away */
    serial_input_destroy(h.input);
    close(fds[0]);
    g_free(sent);
    g_free(got);
    fixture_free(f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/serial/registers-and-divisor-latch", test_registers_and_divisor_latch);
    g_test_add_func("/serial/transmit-and-thre-interrupt", test_transmit_and_thre_interrupt);
    g_test_add_func("/serial/receive-without-fifo", test_receive_without_fifo);
    g_test_add_func("/serial/fifo-trigger-and-timeout", test_fifo_trigger_and_timeout);
    g_test_add_func("/serial/loopback-and-interrupt-priorities",
                    test_loopback_and_interrupt_priorities);
    g_test_add_func("/serial/host-input-through-fifo", test_host_input_through_fifo);
    g_test_add_func("/serial/host-input-from-fd-pauses-when-full",
                    test_host_input_from_fd_pauses_when_full);
    return g_test_run();
}
