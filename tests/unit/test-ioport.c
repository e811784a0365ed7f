/* Unit tests for the port I/O bus. */
#include <glib.h>

#include "ioport.h"

static uint32_t echo_read(void *opaque, uint16_t port, unsigned size)
{
    (void)size;
    return *(uint32_t *)opaque + port;
}

static void store_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    (void)port;
    (void)size;
    *(uint32_t *)opaque = value;
}

static void test_dispatch_and_conflicts(void)
{
    static struct ioport_bus bus;
    uint32_t cell = 0x100;
    ioport_bus_init(&bus);
    g_assert_cmpint(ioport_register(&bus, 0x60, 5, "kbd", echo_read, store_write, &cell), ==, 0);
    /* Overlapping claims are refused whole. */
    g_assert_cmpint(ioport_register(&bus, 0x64, 2, "other", echo_read, store_write, &cell), ==, -1);
    g_assert_null(bus.handlers[0x65].owner);
    g_assert_cmphex(ioport_read(&bus, 0x61, 1), ==, 0x161);
    ioport_write(&bus, 0x64, 1, 0xd1);
    g_assert_cmphex(cell, ==, 0xd1);
    /* Unclaimed ports float high. */
    g_assert_cmphex(ioport_read(&bus, 0x300, 1), ==, 0xff);
    g_assert_cmphex(ioport_read(&bus, 0x300, 2), ==, 0xffff);
    g_assert_cmphex(ioport_read(&bus, 0x300, 4), ==, 0xffffffff);
    ioport_unregister(&bus, 0x60, 5);
    g_assert_cmphex(ioport_read(&bus, 0x61, 1), ==, 0xff);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ioport/dispatch-and-conflicts", test_dispatch_and_conflicts);
    return g_test_run();
}
