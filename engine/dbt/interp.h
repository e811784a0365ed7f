/* The reference interpreter: executes one x86 instruction at a time on a
 * struct x86_state, decoding with Zydis. The binary translator falls back on
 * it for rare instructions. */
#ifndef VIVARIUM_INTERP_H
#define VIVARIUM_INTERP_H

#include <stdbool.h>
#include <stdint.h>

#include "../cpu.h"

struct interp {
    struct cpu *cpu;
    struct x86_state state;
    volatile bool irq_line; /* INTR from the interrupt controller */
    uint64_t instructions;  /* retired, for --trace and benchmarks */
};

/* Executes one instruction, or delivers one pending interrupt or exception.
 * Returns false once the CPU halts or shuts down. */
bool interp_step(struct interp *in);

#endif
