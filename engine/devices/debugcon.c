/* The Bochs/QEMU debug console: bytes written to its port go straight to a
 * host file. Reading returns 0xe9, which is how guests (SeaBIOS among them)
 * detect that the port exists. */
#include "debugcon.h"

#include <glib.h>

#include "../machine.h"

struct debugcon {
    FILE *out;
};

static void debugcon_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct debugcon *dev = opaque;
    (void)port;
    (void)size;
    if (!dev->out)
        return;
    fputc((int)(value & 0xff), dev->out);
    if ((value & 0xff) == '\n')
        fflush(dev->out);
}

static uint32_t debugcon_read(void *opaque, uint16_t port, unsigned size)
{
    (void)opaque;
    (void)port;
    (void)size;
    return DEBUGCON_PORT;
}

struct debugcon *debugcon_create(struct machine *m, uint16_t port, FILE *out)
{
    struct debugcon *dev = g_new0(struct debugcon, 1);
    dev->out = out;
    ioport_register(&m->io, port, 1, "debugcon", debugcon_read, debugcon_write, dev);
    return dev;
}

void debugcon_destroy(struct debugcon *dev)
{
    if (dev && dev->out)
        fflush(dev->out);
    g_free(dev);
}
