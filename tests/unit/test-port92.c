/* Tests of system control port A (0x92). */
#include <glib.h>

#include "devices/port92.h"
#include "ioport.h"

struct outputs_log {
    int a20_calls;
    bool a20;
    int resets;
};

static void log_a20(void *opaque, bool enabled)
{
    struct outputs_log *log = opaque;
    log->a20_calls++;
    log->a20 = enabled;
}

static void log_reset(void *opaque)
{
    struct outputs_log *log = opaque;
    log->resets++;
}

static void test_fast_a20_and_reset(void)
{
    struct ioport_bus io;
    struct outputs_log log = {0};
    ioport_bus_init(&io);
    struct port92_outputs outputs = {.set_a20 = log_a20, .reset = log_reset, .opaque = &log};
    struct port92 *port = port92_create(&io, &outputs);

    /* Power-on: A20 open, matching the CPU's reset state. */
    g_assert_cmphex(ioport_read(&io, 0x92, 1), ==, 0x02);
    ioport_write(&io, 0x92, 1, 0x00);
    g_assert_cmpint(log.a20_calls, ==, 1);
    g_assert_false(log.a20);
    ioport_write(&io, 0x92, 1, 0x00); /* no change, no call */
    g_assert_cmpint(log.a20_calls, ==, 1);
    ioport_write(&io, 0x92, 1, 0x02);
    g_assert_true(log.a20);
    g_assert_cmpint(log.resets, ==, 0);

    /* Reset on the rising edge of bit 0 only. */
    ioport_write(&io, 0x92, 1, 0x03);
    g_assert_cmpint(log.resets, ==, 1);
    ioport_write(&io, 0x92, 1, 0x03);
    g_assert_cmpint(log.resets, ==, 1);
    g_assert_cmphex(ioport_read(&io, 0x92, 1), ==, 0x03);
    port92_reset(port);
    g_assert_cmphex(ioport_read(&io, 0x92, 1), ==, 0x02);
    ioport_write(&io, 0x92, 1, 0x03);
    g_assert_cmpint(log.resets, ==, 2);
    g_assert_cmpint(log.a20_calls, ==, 2);
    port92_destroy(port);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/port92/fast-a20-and-reset", test_fast_a20_and_reset);
    return g_test_run();
}
