/* The port I/O bus. */
#include "ioport.h"

#include <stdio.h>
#include <string.h>

void ioport_bus_init(struct ioport_bus *bus)
{
    memset(bus, 0, sizeof(*bus));
}

int ioport_register(struct ioport_bus *bus, uint16_t first, unsigned count, const char *owner,
                    ioport_read_fn read, ioport_write_fn write, void *opaque)
{
    if (first + count > 65536)
        return -1;
    for (unsigned i = 0; i < count; i++) {
        if (bus->handlers[first + i].owner)
            return -1;
    }
    for (unsigned i = 0; i < count; i++) {
        bus->handlers[first + i] =
            (struct ioport_handler){.read = read, .write = write, .opaque = opaque, .owner = owner};
    }
    return 0;
}

void ioport_unregister(struct ioport_bus *bus, uint16_t first, unsigned count)
{
    for (unsigned i = 0; i < count && first + i < 65536; i++)
        memset(&bus->handlers[first + i], 0, sizeof(bus->handlers[0]));
}

uint32_t ioport_read(struct ioport_bus *bus, uint16_t port, unsigned size)
{
    const struct ioport_handler *h = &bus->handlers[port];
    if (!h->read) {
        if (bus->log_unhandled)
            fprintf(stderr, "ioport: read of unclaimed port %#06x (size %u)\n", port, size);
        return size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
    }
    return h->read(h->opaque, port, size);
}

void ioport_write(struct ioport_bus *bus, uint16_t port, unsigned size, uint32_t value)
{
    const struct ioport_handler *h = &bus->handlers[port];
    if (!h->write) {
        if (bus->log_unhandled)
            fprintf(stderr, "ioport: write %#x to unclaimed port %#06x (size %u)\n", value, port,
                    size);
        return;
    }
    h->write(h->opaque, port, size, value);
}
