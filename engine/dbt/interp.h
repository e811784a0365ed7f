/* The reference interpreter: executes one x86 instruction at a time on a
 * struct x86_state, decoding with Zydis. The binary translator falls back on
 * it for rare instructions. */
#ifndef VIVARIUM_INTERP_H
#define VIVARIUM_INTERP_H

#include <stdbool.h>
#include <stdint.h>

#include "../cpu.h"

struct memory_page;

/* Entries of the direct-mapped TLB in front of the page walker. */
#define INTERP_TLB_BITS 10
#define INTERP_TLB_SIZE (1u << INTERP_TLB_BITS)

/* One cached translation of a linear page. perms holds INTERP_TLB_* bits
 * saying which kinds of access may use it without a page walk. */
struct interp_tlb_entry {
    uint32_t linear;          /* page address, or 1 when the entry is empty */
    uint32_t phys;            /* page address */
    struct memory_page *page; /* the physical page's map entry */
    uint16_t perms;
    bool global;
};

/* The part of the state an instruction may change before it faults; it is
 * copied at every instruction boundary and restored when a fault unwinds. */
struct interp_snapshot {
    uint32_t regs[X86_NR_REGS];
    uint32_t eip;
    uint32_t eflags;
    struct x86_segment sregs[X86_NR_SREGS];
};

struct code_cache;

struct interp {
    struct cpu *cpu;
    struct x86_state state;
    volatile bool irq_line; /* INTR from the interrupt controller */
    uint64_t instructions;  /* retired, for --trace and benchmarks */

    /* Everything below is private to the interpreter's files. */
    struct interp_snapshot snapshot;
    void *fault_jmp[5]; /* __builtin_setjmp buffer of the running step */
    bool fault_armed;
    /* The exception being raised (set just before unwinding). */
    int fault_vector;
    int32_t fault_error; /* -1: no error code */
    /* Vector of the exception whose delivery is under way, for the
     * double-fault rules; -1 when none is. */
    int delivering;
    /* Set whenever an interrupt or exception is delivered, so the step
     * knows not to raise a single-step trap after it. */
    bool event_delivered;
    /* Breakpoints DR7 enables, by kind (bit n for DRn; debugreg.c), and
     * the data and I/O breakpoints the running instruction has hit. */
    uint8_t debug_code, debug_data, debug_io;
    uint8_t debug_hits;
    struct interp_tlb_entry tlb[INTERP_TLB_SIZE];
    struct code_cache *code;
    /* Called when cached page translations may have gone stale (a TLB
     * flush; all is set unless only linear's page went) or a page newly
     * holds decoded code, for a backend keeping its own copy of the TLB
     * (the translator's fast TLB). NULL when nobody listens. */
    void (*tlb_changed)(struct interp *in, uint32_t linear, bool all);
    int64_t tsc_offset; /* guest TSC = virtual nanoseconds + tsc_offset */
    /* The memory map's previous change listener, called after the TLB is
     * flushed for a change of the map. */
    void (*next_map_changed)(void *opaque);
    void *next_map_changed_opaque;
};

/* Executes one instruction, or delivers one pending interrupt or exception.
 * Returns false once the CPU halts or shuts down. */
bool interp_step(struct interp *in);

/* Sets up and tears down the interpreter's caches (the backend and the
 * translator's fallback use these around interp_step()). */
void interp_setup(struct interp *in, struct cpu *cpu);
void interp_teardown(struct interp *in);

/* Call after changing in->state from outside: drops cached translations. */
void interp_state_changed(struct interp *in);

#endif
