/* The x87 floating-point unit, executed on struct x86_fpu with the host's
 * 80-bit long double. The interpreter (and the translator's fallback path)
 * decodes the instruction, checks CR0.EM/TS for #NM, raises #MF for a pending
 * unmasked exception before a waiting instruction, and then calls
 * x87_execute() with access to the instruction's memory operand. */
#ifndef VIVARIUM_X87_H
#define VIVARIUM_X87_H

#include <stdbool.h>
#include <stdint.h>

#include <Zydis/Zydis.h>

#include "../cpu.h"

struct x87_env {
    struct x86_fpu *fpu;
    /* Access len bytes of the memory operand, delta bytes past its effective
     * address. They return false when the access faulted; the caller has
     * then already recorded the exception and x87_execute must stop without
     * changing any state it has not already committed. */
    bool (*read)(void *opaque, uint32_t delta, void *buf, unsigned len);
    bool (*write)(void *opaque, uint32_t delta, const void *buf, unsigned len);
    void *opaque;
    uint32_t *eax;       /* FNSTSW AX writes the low 16 bits */
    uint32_t *eflags;    /* FCOMI/FUCOMI write ZF, PF, CF; FCMOVcc read them */
    bool protected_mode; /* FSTENV/FSAVE image layout: real or protected mode */
    bool operand32;      /* 32-bit or 16-bit FSTENV/FSAVE image */
    uint16_t cs;         /* of this instruction, for FIP/FCS */
    uint32_t ip;
    uint16_t ds; /* of its memory operand, for FDP/FDS */
    uint32_t dp;
};

enum x87_result {
    X87_DONE,         /* executed (possibly setting an exception flag in FSW) */
    X87_MEMORY_FAULT, /* a memory access faulted; the caller delivers it */
    X87_INVALID,      /* not an x87 instruction this unit implements: #UD */
};

/* Executes one x87 instruction (Zydis ISA set X87, FCMOV, FCOMI included). */
enum x87_result x87_execute(struct x87_env *env, const ZydisDecodedInstruction *insn,
                            const ZydisDecodedOperand *operands);

/* True when FSW.ES is set: an unmasked exception waits for the next waiting
 * x87 instruction (or FWAIT) to raise #MF, or FERR# (IRQ 13) when CR0.NE
 * is clear. */
bool x87_exception_pending(const struct x86_fpu *fpu);

/* FNINIT: the state after FINIT, which is also the power-on state. */
void x87_init(struct x86_fpu *fpu);

#endif
