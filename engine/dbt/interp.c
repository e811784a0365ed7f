/* The interpreter backend: the run loop around interp_step(). */
#include "interp.h"

#include <stdio.h>
#include <stdlib.h>

#include "../memory.h"
#include "../vclock.h"

/* How many instructions run between looks at the clock and stop requests. */
#define INTERP_SLICE 1024

static struct interp *interp_of(struct cpu *cpu)
{
    return cpu->backend_data;
}

static bool interp_init(struct cpu *cpu, GError **error)
{
    (void)error;
    struct interp *in = g_new0(struct interp, 1);
    in->cpu = cpu;
    x86_state_reset(&in->state);
    cpu->backend_data = in;
    return true;
}

static void interp_destroy(struct cpu *cpu)
{
    g_free(cpu->backend_data);
    cpu->backend_data = NULL;
}

static enum cpu_exit interp_run(struct cpu *cpu, int64_t deadline_ns)
{
    struct interp *in = interp_of(cpu);
    for (;;) {
        for (int i = 0; i < INTERP_SLICE; i++) {
            if (!interp_step(in)) {
                if (in->state.shutdown)
                    return CPU_EXIT_SHUTDOWN;
                return CPU_EXIT_HALT;
            }
        }
        if (cpu->stop_requested)
            return CPU_EXIT_STOP;
        if (deadline_ns != INT64_MAX && cpu->clock && vclock_now(cpu->clock) >= deadline_ns)
            return CPU_EXIT_STOP;
    }
}

static void interp_get_state(struct cpu *cpu, struct x86_state *state)
{
    *state = interp_of(cpu)->state;
}

static void interp_set_state(struct cpu *cpu, const struct x86_state *state)
{
    interp_of(cpu)->state = *state;
}

static void interp_set_irq(struct cpu *cpu, bool level)
{
    interp_of(cpu)->irq_line = level;
}

static void interp_nmi(struct cpu *cpu)
{
    interp_of(cpu)->state.nmi_pending = true;
}

static void interp_kick(struct cpu *cpu)
{
    cpu->stop_requested = 1;
}

const struct cpu_backend cpu_backend_interp = {
    .name = "interp",
    .init = interp_init,
    .destroy = interp_destroy,
    .run = interp_run,
    .get_state = interp_get_state,
    .set_state = interp_set_state,
    .set_irq = interp_set_irq,
    .nmi = interp_nmi,
    .kick = interp_kick,
};
