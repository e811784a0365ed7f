/* System instructions: control and debug registers, descriptor-table
 * registers, LLDT/LTR, the selector checks LAR/LSL/VERR/VERW/ARPL, cache and
 * TLB control, CPUID, time-stamp counter, model-specific registers,
 * SYSENTER/SYSEXIT, and the gate to the x87 unit (Intel SDM vol. 2 and
 * vol. 3, chapters 2 "System Architecture Overview" and 4 "Paging"). */
#include <string.h>

#include "interp_priv.h"
#include "x87.h"
#include "../vclock.h"

#define MSR_TSC           0x010
#define MSR_PLATFORM_ID   0x017
#define MSR_APIC_BASE     0x01b
#define MSR_BIOS_SIGN     0x08b
#define MSR_SYSENTER_CS   0x174
#define MSR_SYSENTER_ESP  0x175
#define MSR_SYSENTER_EIP  0x176
#define MSR_PAT           0x277
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_EFER          0xc0000080u

/* CPUID leaf 1 EDX bits this CPU implements. */
#define CPUID_FPU  (1u << 0)
#define CPUID_PSE  (1u << 3)
#define CPUID_TSC  (1u << 4)
#define CPUID_MSR  (1u << 5)
#define CPUID_PAE  (1u << 6)
#define CPUID_CX8  (1u << 8)
#define CPUID_SEP  (1u << 11)
#define CPUID_PGE  (1u << 13)
#define CPUID_CMOV (1u << 15)
#define CPUID_PAT  (1u << 16)
#define CPUID_NX   (1u << 20) /* leaf 80000001h */

#define CR0_VALID                                                                                  \
    (X86_CR0_PE | X86_CR0_MP | X86_CR0_EM | X86_CR0_TS | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP |    \
     X86_CR0_AM | X86_CR0_NW | X86_CR0_CD | X86_CR0_PG)
#define CR4_VALID (X86_CR4_TSD | X86_CR4_DE | X86_CR4_PSE | X86_CR4_PAE | X86_CR4_PGE | X86_CR4_PCE)

/* The x87 unit (x87.c) executes every x87 instruction, so CPUID reports an
 * FPU; were it absent, ESC opcodes would raise #UD after the #NM checks. */
static const bool x87_available = true;

void exec_invalid(struct interp *in, const struct insn *i)
{
    raise_ud(in);
}

/* Instructions that need CPL 0 in protected mode (and fault in v86). */
static void require_cpl0(struct interp *in)
{
    const struct x86_state *s = &in->state;
    if (in_pmode(s) && cpl_of(s) != 0)
        raise_gp(in, 0);
}

/* Instructions that only exist in protected mode proper. */
static void require_protected(struct interp *in)
{
    const struct x86_state *s = &in->state;
    if (!in_pmode(s) || in_v86(s))
        raise_ud(in);
}

static void write_cr0(struct interp *in, uint32_t value)
{
    struct x86_state *s = &in->state;
    if ((value & X86_CR0_PG) && !(value & X86_CR0_PE))
        raise_gp(in, 0);
    if ((value & X86_CR0_NW) && !(value & X86_CR0_CD))
        raise_gp(in, 0);
    if ((value & X86_CR0_PG) && (s->cr4 & X86_CR4_PAE) && (s->msr.efer & 0x100))
        raise_gp(in, 0);
    uint32_t old = s->cr0;
    s->cr0 = (value & CR0_VALID) | X86_CR0_ET;
    if ((old ^ s->cr0) & (X86_CR0_PG | X86_CR0_WP | X86_CR0_PE))
        tlb_flush(in, true);
}

static void write_cr4(struct interp *in, uint32_t value)
{
    struct x86_state *s = &in->state;
    if (value & ~CR4_VALID)
        raise_gp(in, 0);
    uint32_t old = s->cr4;
    s->cr4 = value;
    debug_update(in);
    if ((old ^ value) & (X86_CR4_PSE | X86_CR4_PAE | X86_CR4_PGE))
        tlb_flush(in, true);
}

void exec_mov_cr_dr(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    const struct insn_operand *dst = &i->op[0], *src = &i->op[1];
    if (dst->kind == OPK_OTHER || src->kind == OPK_OTHER)
        raise_ud(in);
    bool to_reg = dst->kind == OPK_REG;
    const struct insn_operand *special = to_reg ? src : dst;
    unsigned n = special->reg;
    if (special->kind == OPK_CR) {
        if (n == 1 || n > 4)
            raise_ud(in);
    } else if (n > 7 || ((n == 4 || n == 5) && (s->cr4 & X86_CR4_DE))) {
        raise_ud(in);
    }
    require_cpl0(in);
    if (in_v86(s))
        raise_gp(in, 0);
    if (special->kind == OPK_CR) {
        uint32_t *crs[5] = {&s->cr0, NULL, &s->cr2, &s->cr3, &s->cr4};
        if (to_reg) {
            reg_set(s, dst->reg, 4, false, *crs[n]);
            return;
        }
        uint32_t v = reg_get(s, src->reg, 4, false);
        switch (n) {
        case 0:
            write_cr0(in, v);
            break;
        case 2:
            s->cr2 = v;
            break;
        case 3:
            s->cr3 = v;
            tlb_flush(in, false);
            break;
        default:
            write_cr4(in, v);
            break;
        }
        return;
    }
    /* Debug registers (debugreg.c). DR4/DR5 alias DR6/DR7 while CR4.DE
     * is clear. */
    debug_check_access_to_dr(in);
    if (n == 4 || n == 5)
        n += 2;
    if (to_reg) {
        reg_set(s, dst->reg, 4, false, s->dr[n]);
        return;
    }
    uint32_t v = reg_get(s, src->reg, 4, false);
    if (n == 6)
        v = (v & 0x0000e00fu) | 0xffff0ff0u;
    else if (n == 7)
        v = (v & 0xffff2fffu) | 0x400u;
    s->dr[n] = v;
    debug_update(in);
}

static void exec_descriptor_table(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    if (i->op[0].kind != OPK_MEM)
        raise_ud(in);
    bool idt = i->mnemonic == ZYDIS_MNEMONIC_LIDT || i->mnemonic == ZYDIS_MNEMONIC_SIDT;
    struct x86_table_register *reg = idt ? &s->idtr : &s->gdtr;
    uint32_t ea = insn_ea(in, i);
    uint32_t base_ea = i->addrsize == 2 ? (ea + 2) & 0xffff : ea + 2;
    if (i->mnemonic == ZYDIS_MNEMONIC_LGDT || i->mnemonic == ZYDIS_MNEMONIC_LIDT) {
        require_cpl0(in);
        if (in_v86(s))
            raise_gp(in, 0);
        uint16_t limit = (uint16_t)mem_read(in, i->seg, ea, 2);
        uint32_t base = mem_read(in, i->seg, base_ea, 4);
        if (i->opsize == 2)
            base &= 0x00ffffff;
        reg->limit = limit;
        reg->base = base;
    } else {
        mem_write(in, i->seg, ea, 2, reg->limit);
        mem_write(in, i->seg, base_ea, 4, reg->base);
    }
}

static void exec_lldt(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    require_protected(in);
    require_cpl0(in);
    uint16_t sel = (uint16_t)op_read(in, i, 0);
    if ((sel & ~3u) == 0) {
        s->ldtr = (struct x86_segment){.selector = sel};
        return;
    }
    if (sel & 4)
        raise_gp(in, sel & 0xfffc);
    uint32_t lo, hi;
    descriptor_read(in, sel, &lo, &hi, X86_EXC_GP);
    if (((hi >> 8) & 0x1f) != 0x02)
        raise_gp(in, sel & 0xfffc);
    if (!(hi & 0x8000))
        raise_exception(in, X86_EXC_NP, sel & 0xfffc);
    descriptor_to_segment(&s->ldtr, sel, lo, hi);
}

static void exec_ltr(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    require_protected(in);
    require_cpl0(in);
    uint16_t sel = (uint16_t)op_read(in, i, 0);
    if ((sel & ~3u) == 0)
        raise_gp(in, 0);
    if (sel & 4)
        raise_gp(in, sel & 0xfffc);
    uint32_t lo, hi;
    descriptor_read(in, sel, &lo, &hi, X86_EXC_GP);
    unsigned type = (hi >> 8) & 0x1f;
    if (type != 0x01 && type != 0x09)
        raise_gp(in, sel & 0xfffc);
    if (!(hi & 0x8000))
        raise_exception(in, X86_EXC_NP, sel & 0xfffc);
    hi |= 0x200; /* busy */
    linear_write(in, s->gdtr.base + (sel & ~7u) + 4, 4, hi, true);
    descriptor_to_segment(&s->tr, sel, lo, hi);
}

static void exec_store_selector(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    require_protected(in);
    uint16_t sel = i->mnemonic == ZYDIS_MNEMONIC_SLDT ? s->ldtr.selector : s->tr.selector;
    op_write(in, i, 0, sel);
}

static void exec_lmsw(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    require_cpl0(in);
    if (in_v86(s))
        raise_gp(in, 0);
    uint32_t v = op_read(in, i, 0) & 0xf;
    /* LMSW can set PE but never clear it. */
    uint32_t cr0 = (s->cr0 & ~0xeu) | v | (s->cr0 & X86_CR0_PE);
    write_cr0(in, cr0);
}

static void exec_smsw(struct interp *in, const struct insn *i)
{
    op_write(in, i, 0, in->state.cr0);
}

static void exec_clts(struct interp *in, const struct insn *i)
{
    require_cpl0(in);
    if (in_v86(&in->state))
        raise_gp(in, 0);
    in->state.cr0 &= ~X86_CR0_TS;
}

/* LAR, LSL, VERR and VERW: ZF says whether the selector passes. */
static void exec_selector_check(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    require_protected(in);
    bool verify = i->mnemonic == ZYDIS_MNEMONIC_VERR || i->mnemonic == ZYDIS_MNEMONIC_VERW;
    uint16_t sel = (uint16_t)op_read(in, i, verify ? 0 : 1);
    uint32_t lo, hi;
    bool ok = (sel & ~3u) != 0 && descriptor_try_read(in, sel, &lo, &hi);
    if (ok) {
        unsigned type = (hi >> 8) & 0x1f;
        unsigned dpl = (hi >> 13) & 3;
        bool code = (type & 0x18) == 0x18;
        bool conforming = code && (type & 0x4);
        if (!(type & 0x10)) {
            static const bool lar_ok[16] = {
                [1] = 1, [2] = 1, [3] = 1, [4] = 1, [5] = 1, [9] = 1, [11] = 1, [12] = 1};
            static const bool lsl_ok[16] = {[1] = 1, [2] = 1, [3] = 1, [9] = 1, [11] = 1};
            if (verify || (i->mnemonic == ZYDIS_MNEMONIC_LAR ? !lar_ok[type] : !lsl_ok[type]))
                ok = false;
        }
        if (ok && !conforming && (dpl < (unsigned)cpl_of(s) || dpl < (sel & 3u)))
            ok = false;
        if (ok && i->mnemonic == ZYDIS_MNEMONIC_VERR && code && !(type & 0x2))
            ok = false;
        if (ok && i->mnemonic == ZYDIS_MNEMONIC_VERW && (code || !(type & 0x2)))
            ok = false;
    }
    if (!ok) {
        s->eflags &= ~X86_FLAG_ZF;
        return;
    }
    s->eflags |= X86_FLAG_ZF;
    if (i->mnemonic == ZYDIS_MNEMONIC_LAR) {
        op_write(in, i, 0, hi & 0x00f0ff00u); /* bits 16-19 are undefined: cleared */
    } else if (i->mnemonic == ZYDIS_MNEMONIC_LSL) {
        uint32_t limit = (lo & 0xffff) | (hi & 0xf0000);
        if (hi & 0x00800000u)
            limit = (limit << 12) | 0xfff;
        op_write(in, i, 0, limit);
    }
}

static void exec_arpl(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    require_protected(in);
    uint16_t dest = (uint16_t)op_read(in, i, 0);
    uint16_t src = (uint16_t)op_read(in, i, 1);
    if ((dest & 3) < (src & 3)) {
        op_write(in, i, 0, (dest & ~3u) | (src & 3u));
        s->eflags |= X86_FLAG_ZF;
    } else {
        s->eflags &= ~X86_FLAG_ZF;
    }
}

static void exec_cache_control(struct interp *in, const struct insn *i)
{
    require_cpl0(in);
    if (in_v86(&in->state))
        raise_gp(in, 0);
    /* Caches are not modelled: INVD and WBINVD have nothing to do. */
}

static void exec_invlpg(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    if (i->op[0].kind != OPK_MEM)
        raise_ud(in);
    require_cpl0(in);
    if (in_v86(s))
        raise_gp(in, 0);
    tlb_flush_page(in, s->sregs[i->seg].base + insn_ea(in, i));
}

static void cpuid_string(uint32_t *regs, const char *text)
{
    memcpy(regs, text, 16);
}

static void exec_cpuid(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t leaf = s->regs[R_EAX];
    uint32_t a = 0, b = 0, c = 0, d = 0;
    switch (leaf) {
    case 0:
        a = 1;
        memcpy(&b, "Genu", 4);
        memcpy(&d, "ineI", 4);
        memcpy(&c, "ntel", 4);
        break;
    case 1:
        /* Family 6, model 3, stepping 3: a P6 past the Pentium Pro's
         * SYSENTER erratum, as Linux checks. */
        a = 0x00000633;
        d = CPUID_PSE | CPUID_TSC | CPUID_MSR | CPUID_PAE | CPUID_CX8 | CPUID_SEP | CPUID_PGE |
            CPUID_CMOV | CPUID_PAT;
        if (x87_available)
            d |= CPUID_FPU;
        break;
    case 0x80000000u:
        a = 0x80000008u;
        break;
    case 0x80000001u:
        d = CPUID_NX;
        break;
    case 0x80000002u:
    case 0x80000003u:
    case 0x80000004u: {
        static const char brand[49] = "Vivarium x86 interpreter                        ";
        uint32_t regs[4];
        cpuid_string(regs, brand + (leaf - 0x80000002u) * 16);
        a = regs[0];
        b = regs[1];
        c = regs[2];
        d = regs[3];
        break;
    }
    case 0x80000008u:
        a = 0x00002024; /* 36 physical, 32 linear address bits */
        break;
    default:
        break;
    }
    s->regs[R_EAX] = a;
    s->regs[R_EBX] = b;
    s->regs[R_ECX] = c;
    s->regs[R_EDX] = d;
}

static void exec_rdtsc(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    if ((s->cr4 & X86_CR4_TSD) && in_pmode(s) && cpl_of(s) != 0)
        raise_gp(in, 0);
    uint64_t tsc = read_tsc(in);
    s->regs[R_EAX] = (uint32_t)tsc;
    s->regs[R_EDX] = (uint32_t)(tsc >> 32);
}

static void exec_rdmsr(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    require_cpl0(in);
    if (in_v86(s))
        raise_gp(in, 0);
    uint64_t v;
    switch (s->regs[R_ECX]) {
    case MSR_TSC:
        v = read_tsc(in);
        break;
    case MSR_PLATFORM_ID:
    case MSR_BIOS_SIGN:
        v = 0;
        break;
    case MSR_APIC_BASE:
        v = s->msr.apic_base;
        break;
    case MSR_SYSENTER_CS:
        v = s->msr.sysenter_cs;
        break;
    case MSR_SYSENTER_ESP:
        v = s->msr.sysenter_esp;
        break;
    case MSR_SYSENTER_EIP:
        v = s->msr.sysenter_eip;
        break;
    case MSR_PAT:
        v = s->msr.pat;
        break;
    case MSR_MTRR_DEF_TYPE:
        v = s->msr.mtrr_def_type;
        break;
    case MSR_EFER:
        v = s->msr.efer;
        break;
    default:
        raise_gp(in, 0);
    }
    s->regs[R_EAX] = (uint32_t)v;
    s->regs[R_EDX] = (uint32_t)(v >> 32);
}

static void exec_wrmsr(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    require_cpl0(in);
    if (in_v86(s))
        raise_gp(in, 0);
    uint64_t v = ((uint64_t)s->regs[R_EDX] << 32) | s->regs[R_EAX];
    switch (s->regs[R_ECX]) {
    case MSR_TSC:
        in->tsc_offset += (int64_t)(v - read_tsc(in));
        break;
    case MSR_BIOS_SIGN:
        break;
    case MSR_APIC_BASE:
        s->msr.apic_base = v & 0xfffff900ull;
        break;
    case MSR_SYSENTER_CS:
        s->msr.sysenter_cs = (uint32_t)v;
        break;
    case MSR_SYSENTER_ESP:
        s->msr.sysenter_esp = (uint32_t)v;
        break;
    case MSR_SYSENTER_EIP:
        s->msr.sysenter_eip = (uint32_t)v;
        break;
    case MSR_PAT:
        s->msr.pat = v;
        break;
    case MSR_MTRR_DEF_TYPE:
        s->msr.mtrr_def_type = v & 0xcff;
        break;
    case MSR_EFER:
        if (v & ~(uint64_t)X86_EFER_NXE)
            raise_gp(in, 0);
        if ((s->msr.efer ^ v) & X86_EFER_NXE)
            tlb_flush(in, true);
        s->msr.efer = v;
        break;
    default:
        raise_gp(in, 0);
    }
}

/* The flat segments SYSENTER and SYSEXIT load (Intel SDM vol. 2). */
static struct x86_segment flat_segment(uint16_t selector, unsigned dpl, bool code)
{
    return (struct x86_segment){
        .selector = selector,
        .base = 0,
        .limit = 0xffffffffu,
        .attrib = (uint16_t)(X86_DESC_G | X86_DESC_DB | X86_DESC_P | X86_DESC_S |
                             (dpl << X86_DESC_DPL_SHIFT) | (code ? 0xb : 0x3)),
    };
}

static void exec_sysenter(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    if (!in_pmode(s))
        raise_gp(in, 0);
    uint16_t cs = (uint16_t)s->msr.sysenter_cs;
    if ((cs & ~3u) == 0)
        raise_gp(in, 0);
    s->eflags &= ~(X86_FLAG_VM | X86_FLAG_IF | X86_FLAG_RF);
    s->sregs[S_CS] = flat_segment(cs & 0xfffc, 0, true);
    s->sregs[S_SS] = flat_segment((cs & 0xfffc) + 8, 0, false);
    s->regs[R_ESP] = s->msr.sysenter_esp;
    s->eip = s->msr.sysenter_eip;
}

static void exec_sysexit(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint16_t cs = (uint16_t)s->msr.sysenter_cs;
    if (!in_pmode(s) || in_v86(s) || cpl_of(s) != 0 || (cs & ~3u) == 0)
        raise_gp(in, 0);
    s->sregs[S_CS] = flat_segment((uint16_t)((cs + 16) | 3), 3, true);
    s->sregs[S_SS] = flat_segment((uint16_t)((cs + 24) | 3), 3, false);
    s->regs[R_ESP] = s->regs[R_ECX];
    s->eip = s->regs[R_EDX];
}

static void exec_rdpmc(struct interp *in, const struct insn *i)
{
    /* No performance counters are modelled (CPUID reports none). */
    raise_gp(in, 0);
}

/* --- x87 gate ----------------------------------------------------------- */

struct x87_access {
    struct interp *in;
    int sreg;
    uint32_t ea;
    uint32_t amask;
};

static bool x87_read(void *opaque, uint32_t delta, void *buf, unsigned len)
{
    struct x87_access *a = opaque;
    uint8_t *out = buf;
    /* Check the whole operand first so a fault leaves nothing half read. */
    seg_linear(a->in, a->sreg, a->ea + delta, len, false);
    for (unsigned n = 0; n < len; n++)
        out[n] = (uint8_t)mem_read(a->in, a->sreg, (a->ea + delta + n) & a->amask, 1);
    return true;
}

static bool x87_write(void *opaque, uint32_t delta, const void *buf, unsigned len)
{
    struct x87_access *a = opaque;
    const uint8_t *in_bytes = buf;
    uint32_t lin = seg_linear(a->in, a->sreg, a->ea + delta, len, true);
    linear_probe_write(a->in, lin, len, false);
    for (unsigned n = 0; n < len; n++)
        mem_write(a->in, a->sreg, (a->ea + delta + n) & a->amask, 1, in_bytes[n]);
    return true;
}

void exec_x87(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    bool wait = i->mnemonic == ZYDIS_MNEMONIC_FWAIT;
    if (wait) {
        if ((s->cr0 & X86_CR0_TS) && (s->cr0 & X86_CR0_MP))
            raise_exception(in, X86_EXC_NM, NO_ERROR_CODE);
    } else if (s->cr0 & (X86_CR0_EM | X86_CR0_TS)) {
        raise_exception(in, X86_EXC_NM, NO_ERROR_CODE);
    }
    if (!x87_available) {
        if (wait)
            return;
        raise_ud(in);
    }
    ZydisDecoder decoder;
    ZydisDecoderInit(&decoder,
                     i->code32 ? ZYDIS_MACHINE_MODE_LEGACY_32 : ZYDIS_MACHINE_MODE_LEGACY_16,
                     i->code32 ? ZYDIS_STACK_WIDTH_32 : ZYDIS_STACK_WIDTH_16);
    ZydisDecodedInstruction z;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, i->bytes, i->length, &z, ops)))
        raise_ud(in);
    /* Control instructions without FN (and FWAIT) first raise #MF for a
     * pending unmasked exception; with CR0.NE clear the error goes to
     * FERR#, which this machine does not wire, so it is left pending. */
    bool no_wait = z.mnemonic == ZYDIS_MNEMONIC_FNINIT || z.mnemonic == ZYDIS_MNEMONIC_FNCLEX ||
                   z.mnemonic == ZYDIS_MNEMONIC_FNSTSW || z.mnemonic == ZYDIS_MNEMONIC_FNSTCW ||
                   z.mnemonic == ZYDIS_MNEMONIC_FNSTENV || z.mnemonic == ZYDIS_MNEMONIC_FNSAVE;
    if (!no_wait && x87_exception_pending(&s->fpu) && (s->cr0 & X86_CR0_NE))
        raise_exception(in, X86_EXC_MF, NO_ERROR_CODE);
    if (wait)
        return;
    struct x87_access access = {
        .in = in,
        .sreg = i->seg,
        .ea = i->mem_size || i->base != NO_REG || i->index != NO_REG ? insn_ea(in, i) : 0,
        .amask = i->addrsize == 2 ? 0xffffu : 0xffffffffu,
    };
    struct x87_env env = {
        .fpu = &s->fpu,
        .read = x87_read,
        .write = x87_write,
        .opaque = &access,
        .eax = &s->regs[R_EAX],
        .eflags = &s->eflags,
        .protected_mode = in_pmode(s) && !in_v86(s),
        .operand32 = i->opsize == 4,
        .cs = s->sregs[S_CS].selector,
        .ip = in->snapshot.eip,
        .ds = s->sregs[i->seg].selector,
        .dp = access.ea,
    };
    if (x87_execute(&env, &z, ops) == X87_INVALID)
        raise_ud(in);
}

void ops_system_register(insn_fn *t)
{
    static const struct insn_handler handlers[] = {
        {ZYDIS_MNEMONIC_LGDT, exec_descriptor_table},
        {ZYDIS_MNEMONIC_LIDT, exec_descriptor_table},
        {ZYDIS_MNEMONIC_SGDT, exec_descriptor_table},
        {ZYDIS_MNEMONIC_SIDT, exec_descriptor_table},
        {ZYDIS_MNEMONIC_LLDT, exec_lldt},
        {ZYDIS_MNEMONIC_LTR, exec_ltr},
        {ZYDIS_MNEMONIC_SLDT, exec_store_selector},
        {ZYDIS_MNEMONIC_STR, exec_store_selector},
        {ZYDIS_MNEMONIC_LMSW, exec_lmsw},
        {ZYDIS_MNEMONIC_SMSW, exec_smsw},
        {ZYDIS_MNEMONIC_CLTS, exec_clts},
        {ZYDIS_MNEMONIC_LAR, exec_selector_check},
        {ZYDIS_MNEMONIC_LSL, exec_selector_check},
        {ZYDIS_MNEMONIC_VERR, exec_selector_check},
        {ZYDIS_MNEMONIC_VERW, exec_selector_check},
        {ZYDIS_MNEMONIC_ARPL, exec_arpl},
        {ZYDIS_MNEMONIC_INVD, exec_cache_control},
        {ZYDIS_MNEMONIC_WBINVD, exec_cache_control},
        {ZYDIS_MNEMONIC_INVLPG, exec_invlpg},
        {ZYDIS_MNEMONIC_CPUID, exec_cpuid},
        {ZYDIS_MNEMONIC_RDTSC, exec_rdtsc},
        {ZYDIS_MNEMONIC_RDMSR, exec_rdmsr},
        {ZYDIS_MNEMONIC_WRMSR, exec_wrmsr},
        {ZYDIS_MNEMONIC_RDPMC, exec_rdpmc},
        {ZYDIS_MNEMONIC_SYSENTER, exec_sysenter},
        {ZYDIS_MNEMONIC_SYSEXIT, exec_sysexit},
        {ZYDIS_MNEMONIC_FWAIT, exec_x87},
    };
    for (size_t n = 0; n < G_N_ELEMENTS(handlers); n++)
        t[handlers[n].mnemonic] = handlers[n].exec;
}
