/* Interrupt lines between devices and interrupt controllers. A device holds
 * a struct irq_line given to it by the machine and only ever raises or lowers
 * it; it never sees who is on the other end. */
#ifndef VIVARIUM_IRQ_H
#define VIVARIUM_IRQ_H

#include <stdbool.h>

typedef void (*irq_handler_fn)(void *opaque, int n, bool level);

struct irq_line {
    irq_handler_fn handler;
    void *opaque;
    int n;
};

static inline void irq_set(const struct irq_line *line, bool level)
{
    if (line && line->handler)
        line->handler(line->opaque, line->n, level);
}

static inline void irq_raise(const struct irq_line *line)
{
    irq_set(line, true);
}

static inline void irq_lower(const struct irq_line *line)
{
    irq_set(line, false);
}

/* An edge for an edge-triggered input. */
static inline void irq_pulse(const struct irq_line *line)
{
    irq_set(line, true);
    irq_set(line, false);
}

#endif
