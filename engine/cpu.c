/* Backend lookup and the architectural reset state. */
#include "cpu.h"

#include <stddef.h>
#include <string.h>

#include "vmstate.h"

const struct cpu_backend *cpu_backend_by_name(const char *name)
{
    static const struct cpu_backend *const backends[] = {
        &cpu_backend_interp,
        &cpu_backend_dbt,
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

static const struct vmstate_field x86_segment_fields[] = {
    VMSTATE_U16(struct x86_segment, selector),
    VMSTATE_U16(struct x86_segment, attrib),
    VMSTATE_U32(struct x86_segment, base),
    VMSTATE_U32(struct x86_segment, limit),
    VMSTATE_END,
};

static const struct vmstate_desc x86_segment_vmstate = {
    .name = "x86-segment",
    .version = 1,
    .fields = x86_segment_fields,
};

static const struct vmstate_field x86_table_register_fields[] = {
    VMSTATE_U32(struct x86_table_register, base),
    VMSTATE_U16(struct x86_table_register, limit),
    VMSTATE_END,
};

static const struct vmstate_desc x86_table_register_vmstate = {
    .name = "x86-table-register",
    .version = 1,
    .fields = x86_table_register_fields,
};

static const struct vmstate_field x86_msrs_fields[] = {
    VMSTATE_U64(struct x86_msrs, tsc),
    VMSTATE_U64(struct x86_msrs, apic_base),
    VMSTATE_U64(struct x86_msrs, efer),
    VMSTATE_U32(struct x86_msrs, sysenter_cs),
    VMSTATE_U32(struct x86_msrs, sysenter_esp),
    VMSTATE_U32(struct x86_msrs, sysenter_eip),
    VMSTATE_U64(struct x86_msrs, mtrr_def_type),
    VMSTATE_U64(struct x86_msrs, pat),
    VMSTATE_END,
};

static const struct vmstate_desc x86_msrs_vmstate = {
    .name = "x86-msrs",
    .version = 1,
    .fields = x86_msrs_fields,
};

/* The x87 registers are raw bytes: the array of ten-byte registers is
 * described as one flat byte array. */
static const struct vmstate_field x86_fpu_fields[] = {
    VMSTATE_U16(struct x86_fpu, control),
    VMSTATE_U16(struct x86_fpu, status),
    VMSTATE_U16(struct x86_fpu, tag),
    VMSTATE_U16(struct x86_fpu, last_opcode),
    VMSTATE_U32(struct x86_fpu, last_ip),
    VMSTATE_U16(struct x86_fpu, last_cs),
    VMSTATE_U32(struct x86_fpu, last_dp),
    VMSTATE_U16(struct x86_fpu, last_ds),
    {"st", VMSTATE_TYPE_U8, offsetof(struct x86_fpu, st), sizeof(((struct x86_fpu *)0)->st), 1,
     NULL},
    VMSTATE_END,
};

static const struct vmstate_desc x86_fpu_vmstate = {
    .name = "x87",
    .version = 1,
    .fields = x86_fpu_fields,
};

static const struct vmstate_field x86_state_fields[] = {
    VMSTATE_U32_ARRAY(struct x86_state, regs),
    VMSTATE_U32(struct x86_state, eip),
    VMSTATE_U32(struct x86_state, eflags),
    VMSTATE_STRUCT_ARRAY(struct x86_state, sregs, x86_segment_vmstate),
    VMSTATE_STRUCT(struct x86_state, ldtr, x86_segment_vmstate),
    VMSTATE_STRUCT(struct x86_state, tr, x86_segment_vmstate),
    VMSTATE_STRUCT(struct x86_state, gdtr, x86_table_register_vmstate),
    VMSTATE_STRUCT(struct x86_state, idtr, x86_table_register_vmstate),
    VMSTATE_U32(struct x86_state, cr0),
    VMSTATE_U32(struct x86_state, cr2),
    VMSTATE_U32(struct x86_state, cr3),
    VMSTATE_U32(struct x86_state, cr4),
    VMSTATE_U32_ARRAY(struct x86_state, dr),
    VMSTATE_STRUCT(struct x86_state, msr, x86_msrs_vmstate),
    VMSTATE_STRUCT(struct x86_state, fpu, x86_fpu_vmstate),
    VMSTATE_U32(struct x86_state, a20_mask),
    VMSTATE_BOOL(struct x86_state, halted),
    VMSTATE_BOOL(struct x86_state, shutdown),
    VMSTATE_BOOL(struct x86_state, nmi_pending),
    VMSTATE_BOOL(struct x86_state, nmi_blocked),
    VMSTATE_BOOL(struct x86_state, irq_inhibited),
    VMSTATE_END,
};

const struct vmstate_desc x86_state_vmstate = {
    .name = "cpu",
    .version = 1,
    .fields = x86_state_fields,
};
