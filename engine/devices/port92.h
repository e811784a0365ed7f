/* System control port A (0x92): the fast A20 gate and fast reset. */
#ifndef VIVARIUM_PORT92_H
#define VIVARIUM_PORT92_H

#include <stdbool.h>

#include "vmstate.h"

struct ioport_bus;
struct port92;

/* What the port drives: the A20 gate and the CPU's INIT (reset) line. */
struct port92_outputs {
    void (*set_a20)(void *opaque, bool enabled);
    void (*reset)(void *opaque);
    void *opaque;
};

struct port92 *port92_create(struct ioport_bus *io, const struct port92_outputs *outputs);
void port92_destroy(struct port92 *port);

/* The machine reset hook: the reset bit clears and the A20 bit reads as
 * open, matching the CPU's reset state. */
void port92_reset(void *port);

extern const struct vmstate_desc port92_vmstate;

#endif
