/* The debug-exit port, as QEMU's isa-debug-exit with iobase=0xf4: a write of
 * value V ends the run with exit status (V << 1) | 1, so a guest test program
 * can report its result to the process that started the engine. */
#include "debug_exit.h"

#include <glib.h>

#include "../machine.h"

#define DEBUG_EXIT_PORT 0xf4

struct debug_exit {
    struct machine *machine;
};

static void debug_exit_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct debug_exit *dev = opaque;
    (void)port;
    if (size == 1)
        value &= 0xff;
    else if (size == 2)
        value &= 0xffff;
    machine_request_exit(dev->machine, (int)((value << 1) | 1));
}

static uint32_t debug_exit_read(void *opaque, uint16_t port, unsigned size)
{
    (void)opaque;
    (void)port;
    (void)size;
    return 0xffffffffu;
}

struct debug_exit *debug_exit_create(struct machine *m)
{
    struct debug_exit *dev = g_new0(struct debug_exit, 1);
    dev->machine = m;
    ioport_register(&m->io, DEBUG_EXIT_PORT, 1, "debug-exit", debug_exit_read, debug_exit_write,
                    dev);
    return dev;
}

void debug_exit_destroy(struct debug_exit *dev)
{
    g_free(dev);
}
