/* Backend lookup and the architectural reset state. */
#include "cpu.h"

#include <string.h>

const struct cpu_backend *cpu_backend_by_name(const char *name)
{
    static const struct cpu_backend *const backends[] = {
        &cpu_backend_interp,
        &cpu_backend_kvm,
    };
    for (size_t i = 0; i < G_N_ELEMENTS(backends); i++) {
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    }
    return NULL;
}

void x86_state_reset(struct x86_state *state)
{
    memset(state, 0, sizeof(*state));
    state->eip = 0xfff0;
    state->eflags = X86_FLAG_FIXED;
    /* EDX holds the processor signature after reset: family 6 (P6). */
    state->regs[R_EDX] = 0x00000633;
    for (int i = 0; i < X86_NR_SREGS; i++) {
        state->sregs[i] = (struct x86_segment){.selector = 0,
                                               .base = 0,
                                               .limit = 0xffff,
                                               .attrib = X86_DESC_P | X86_DESC_S |
                                                         0x3 /* read/write data, accessed */};
    }
    state->sregs[S_CS].selector = 0xf000;
    state->sregs[S_CS].base = 0xffff0000;
    state->sregs[S_CS].attrib = X86_DESC_P | X86_DESC_S | 0xb; /* execute/read code, accessed */
    state->ldtr = (struct x86_segment){.limit = 0xffff, .attrib = X86_DESC_P | 0x2};
    state->tr = (struct x86_segment){.limit = 0xffff, .attrib = X86_DESC_P | 0xb};
    state->gdtr.limit = 0xffff;
    state->idtr.limit = 0xffff;
    state->cr0 = X86_CR0_ET | X86_CR0_CD | X86_CR0_NW;
    state->dr[6] = 0xffff0ff0;
    state->dr[7] = 0x00000400;
    state->msr.apic_base = 0xfee00900; /* enabled, bootstrap processor */
    state->msr.pat = 0x0007040600070406ull;
    state->fpu.control = 0x0040;
    state->fpu.tag = 0xffff;
    state->a20_mask = 0xffffffff;
}
