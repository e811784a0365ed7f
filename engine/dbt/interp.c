/* The interpreter backend: the step (interrupt acceptance, fetch, execute,
 * fault unwinding) and the run loop around it.
 *
 * Faults are precise by unwinding: the registers, EIP, EFLAGS and segment
 * registers are copied at every instruction boundary, a fault longjmps back
 * to the step, which restores the copy and delivers the exception. Handlers
 * may therefore update state as they go. */
#include "interp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp_priv.h"
#include "../memory.h"
#include "../vclock.h"

/* How many instructions run between looks at the clock and stop requests. */
#define INTERP_SLICE 1024

static struct interp *interp_of(struct cpu *cpu)
{
    return cpu->backend_data;
}

static void snapshot_take(struct interp *in)
{
    struct interp_snapshot *snap = &in->snapshot;
    const struct x86_state *s = &in->state;
    memcpy(snap->regs, s->regs, sizeof(snap->regs));
    snap->eip = s->eip;
    snap->eflags = s->eflags;
    memcpy(snap->sregs, s->sregs, sizeof(snap->sregs));
}

/* Delivers a pending NMI or external interrupt if one may be taken now.
 * Returns true if one was. */
static bool accept_interrupt(struct interp *in)
{
    struct x86_state *s = &in->state;
    if (s->nmi_pending && !s->nmi_blocked) {
        s->nmi_pending = false;
        s->nmi_blocked = true;
        deliver_event(in, X86_EXC_NMI, EVENT_EXTERNAL, NO_ERROR_CODE, s->eip);
        return true;
    }
    if (in->irq_line && (s->eflags & X86_FLAG_IF)) {
        int vector = in->cpu->intr_ack ? in->cpu->intr_ack(in->cpu->intr_opaque) : -1;
        if (vector >= 0) {
            deliver_event(in, vector & 0xff, EVENT_EXTERNAL, NO_ERROR_CODE, s->eip);
            return true;
        }
    }
    return false;
}

static void execute_one(struct interp *in)
{
    struct x86_state *s = &in->state;
    snapshot_take(in);
    in->event_delivered = false;
    bool shadow = s->irq_inhibited;
    s->irq_inhibited = false;
    if (unlikely((s->nmi_pending || in->irq_line) && !shadow) && accept_interrupt(in))
        return;
    if (s->halted)
        return;

    /* Instruction breakpoints are faults of the instruction, taken after
     * pending interrupts (Intel SDM vol. 3, table 6-2); RF suppresses them
     * for one instruction, which clears it by completing. */
    if (unlikely(in->debug_code))
        debug_check_code(in, s->sregs[S_CS].base + s->eip);
    if (unlikely(s->eflags & X86_FLAG_RF))
        s->eflags &= ~X86_FLAG_RF;
    in->debug_hits = 0;

    struct insn scratch;
    const struct insn *i = fetch_insn(in, &scratch);
    if (unlikely(in->cpu->trace))
        trace_insn(in, i);
    bool single_step = s->eflags & X86_FLAG_TF;
    uint32_t next = s->eip + i->length;
    s->eip = i->code32 ? next : next & 0xffff;
    i->exec(in, i);
    in->instructions++;
    if (unlikely(single_step || in->debug_hits) && !in->event_delivered) {
        /* The single-step and data-breakpoint trap comes after the
         * instruction completed, so a fault while delivering it must not
         * undo the instruction. */
        snapshot_take(in);
        debug_trap(in, single_step);
    }
}

bool interp_step(struct interp *in)
{
    struct x86_state *s = &in->state;
    if (s->shutdown)
        return false;
    if (__builtin_setjmp(in->fault_jmp))
        handle_raised_exception(in);
    else
        execute_one(in);
    if (s->shutdown)
        return false;
    return !s->halted;
}

/* A page's place in the map changed (a PCI BAR moved, VGA memory went from
 * MMIO to RAM or back): the TLB's cached "writable RAM" permission and page
 * pointers describe the old map. */
static void map_changed(void *opaque)
{
    struct interp *in = opaque;
    tlb_flush(in, true);
    if (in->next_map_changed)
        in->next_map_changed(in->next_map_changed_opaque);
}

void interp_setup(struct interp *in, struct cpu *cpu)
{
    in->cpu = cpu;
    in->delivering = -1;
    tlb_flush(in, true);
    code_cache_init(in);
    debug_update(in);
    if (cpu->mem) {
        in->next_map_changed = cpu->mem->map_changed;
        in->next_map_changed_opaque = cpu->mem->map_changed_opaque;
        cpu->mem->map_changed = map_changed;
        cpu->mem->map_changed_opaque = in;
    }
}

void interp_teardown(struct interp *in)
{
    struct memory *mem = in->cpu->mem;
    if (mem && mem->map_changed == map_changed && mem->map_changed_opaque == in) {
        mem->map_changed = in->next_map_changed;
        mem->map_changed_opaque = in->next_map_changed_opaque;
    }
    code_cache_destroy(in);
}

void interp_state_changed(struct interp *in)
{
    tlb_flush(in, true);
    in->delivering = -1;
    debug_update(in);
}

uint64_t read_tsc(struct interp *in)
{
    if (in->cpu->clock)
        return (uint64_t)(vclock_now(in->cpu->clock) + in->tsc_offset);
    return in->instructions + (uint64_t)in->tsc_offset;
}

static bool interp_init(struct cpu *cpu, GError **error)
{
    struct interp *in = g_new0(struct interp, 1);
    interp_setup(in, cpu);
    if (!in->code) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOMEM, "cannot allocate the code cache");
        g_free(in);
        return false;
    }
    x86_state_reset(&in->state);
    cpu->backend_data = in;
    return true;
}

static void interp_destroy(struct cpu *cpu)
{
    struct interp *in = interp_of(cpu);
    if (in)
        interp_teardown(in);
    g_free(in);
    cpu->backend_data = NULL;
}

static enum cpu_exit interp_run(struct cpu *cpu, int64_t deadline_ns)
{
    struct interp *in = interp_of(cpu);
    struct x86_state *s = &in->state;
    for (;;) {
        for (int n = 0; n < INTERP_SLICE; n++) {
            if (likely(interp_step(in)))
                continue;
            if (s->shutdown)
                return CPU_EXIT_SHUTDOWN;
            /* Halted: keep going only if an interrupt is waiting to wake
             * the CPU (it is taken by the next step). */
            if (!((s->nmi_pending && !s->nmi_blocked) ||
                  (in->irq_line && (s->eflags & X86_FLAG_IF))))
                return CPU_EXIT_HALT;
        }
        if (cpu->stop_requested)
            return CPU_EXIT_STOP;
        if (deadline_ns != INT64_MAX && cpu->clock && vclock_now(cpu->clock) >= deadline_ns)
            return CPU_EXIT_STOP;
    }
}

static void interp_get_state(struct cpu *cpu, struct x86_state *state)
{
    struct interp *in = interp_of(cpu);
    *state = in->state;
    state->msr.tsc = read_tsc(in);
}

static void interp_set_state(struct cpu *cpu, const struct x86_state *state)
{
    struct interp *in = interp_of(cpu);
    in->state = *state;
    in->tsc_offset = 0;
    in->tsc_offset = (int64_t)(state->msr.tsc - read_tsc(in));
    interp_state_changed(in);
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
