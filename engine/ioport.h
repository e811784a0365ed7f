/* The port I/O bus: 65536 ports, each dispatched to at most one device. */
#ifndef VIVARIUM_IOPORT_H
#define VIVARIUM_IOPORT_H

#include <stdint.h>

/* size is 1, 2 or 4. A device that does not handle a size sees it split into
 * byte accesses only if it registered with the split flag. */
typedef uint32_t (*ioport_read_fn)(void *opaque, uint16_t port, unsigned size);
typedef void (*ioport_write_fn)(void *opaque, uint16_t port, unsigned size, uint32_t value);

struct ioport_handler {
    ioport_read_fn read;
    ioport_write_fn write;
    void *opaque;
    const char *owner;
};

struct ioport_bus {
    struct ioport_handler handlers[65536];
    /* Accesses to unclaimed ports are counted, and logged when this is set. */
    int log_unhandled;
};

void ioport_bus_init(struct ioport_bus *bus);

/* Claims count ports starting at first. Returns 0, or -1 (and claims
 * nothing) if any of them is taken. */
int ioport_register(struct ioport_bus *bus, uint16_t first, unsigned count, const char *owner,
                    ioport_read_fn read, ioport_write_fn write, void *opaque);
void ioport_unregister(struct ioport_bus *bus, uint16_t first, unsigned count);

/* Unclaimed ports read as all ones and ignore writes. A wide access is routed
 * by its first port. */
uint32_t ioport_read(struct ioport_bus *bus, uint16_t port, unsigned size);
void ioport_write(struct ioport_bus *bus, uint16_t port, unsigned size, uint32_t value);

#endif
