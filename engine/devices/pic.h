/* The PC's pair of 8259A programmable interrupt controllers: the master on
 * ports 0x20/0x21 with the slave cascaded on its IR2, the slave on
 * 0xa0/0xa1, and the PIIX edge/level control registers on 0x4d0/0x4d1. */
#ifndef VIVARIUM_PIC_H
#define VIVARIUM_PIC_H

#include <stdbool.h>
#include <stdint.h>

#include "irq.h"
#include "vmstate.h"

struct ioport_bus;
struct pic;

#define PIC_NR_IRQS 16

/* Claims the PIC ports on io. intr is the CPU's INTR input, raised while an
 * unmasked request of sufficient priority is pending. */
struct pic *pic_create(struct ioport_bus *io, const struct irq_line *intr);
void pic_destroy(struct pic *pic);

/* Power-on state; also the machine reset hook. */
void pic_reset(void *pic);

/* The input line of IRQ n (0-15). As on the AT bus, line 2 is routed to
 * IRQ9, since the master's IR2 carries the cascade. */
const struct irq_line *pic_irq_line(struct pic *pic, int n);

/* The CPU's interrupt acknowledge cycle: returns the vector of the highest
 * priority pending request and moves it in service, a spurious IRQ7 or
 * IRQ15 vector when the request went away, or -1 if INTR is low. */
int pic_intr_ack(void *pic);

/* Whether the INTR output is high. */
bool pic_intr_pending(const struct pic *pic);

extern const struct vmstate_desc pic_vmstate;

#endif
