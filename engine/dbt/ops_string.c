/* String instructions with their REP prefixes, and port I/O (IN, OUT, INS,
 * OUTS) with the IOPL and TSS I/O-permission-bitmap checks (Intel SDM
 * vol. 1, 19.5 "Protected-Mode I/O"). */
#include "interp_priv.h"
#include "../ioport.h"

/* Iterations of a REP instruction per step; the rest continues in the next
 * step, so interrupts and the run loop's deadline are not held off. */
#define REP_BURST 4096

void check_io_permission(struct interp *in, uint16_t port, unsigned size)
{
    struct x86_state *s = &in->state;
    if (!in_pmode(s) || (!in_v86(s) && cpl_of(s) <= iopl_of(s)))
        return;
    unsigned type = s->tr.attrib & X86_DESC_TYPE_MASK;
    if ((type != 0x9 && type != 0xb) || s->tr.limit < 103)
        raise_gp(in, 0);
    uint32_t base = linear_read(in, s->tr.base + 102, 2, true);
    uint32_t offset = base + port / 8;
    if (offset + 1 > s->tr.limit)
        raise_gp(in, 0);
    uint32_t bits = linear_read(in, s->tr.base + offset, 2, true);
    uint32_t mask = ((1u << size) - 1) << (port & 7);
    if (bits & mask)
        raise_gp(in, 0);
}

static uint32_t port_in(struct interp *in, uint16_t port, unsigned size)
{
    check_io_permission(in, port, size);
    if (unlikely(in->debug_io))
        debug_check_io(in, port, size);
    return ioport_read(in->cpu->io, port, size);
}

static void port_out(struct interp *in, uint16_t port, unsigned size, uint32_t value)
{
    check_io_permission(in, port, size);
    if (unlikely(in->debug_io))
        debug_check_io(in, port, size);
    ioport_write(in->cpu->io, port, size, value & size_mask(size));
}

static void exec_in(struct interp *in, const struct insn *i)
{
    uint16_t port = (uint16_t)op_read(in, i, 1);
    unsigned size = i->op[0].size;
    op_write(in, i, 0, port_in(in, port, size));
}

static void exec_out(struct interp *in, const struct insn *i)
{
    uint16_t port = (uint16_t)op_read(in, i, 0);
    unsigned size = i->op[1].size;
    port_out(in, port, size, op_read(in, i, 1));
}

enum string_kind { STR_MOVS, STR_CMPS, STR_STOS, STR_LODS, STR_SCAS, STR_INS, STR_OUTS };

static unsigned string_size(const struct insn *i)
{
    switch (i->mnemonic) {
    case ZYDIS_MNEMONIC_MOVSB:
    case ZYDIS_MNEMONIC_CMPSB:
    case ZYDIS_MNEMONIC_STOSB:
    case ZYDIS_MNEMONIC_LODSB:
    case ZYDIS_MNEMONIC_SCASB:
    case ZYDIS_MNEMONIC_INSB:
    case ZYDIS_MNEMONIC_OUTSB:
        return 1;
    case ZYDIS_MNEMONIC_MOVSW:
    case ZYDIS_MNEMONIC_CMPSW:
    case ZYDIS_MNEMONIC_STOSW:
    case ZYDIS_MNEMONIC_LODSW:
    case ZYDIS_MNEMONIC_SCASW:
    case ZYDIS_MNEMONIC_INSW:
    case ZYDIS_MNEMONIC_OUTSW:
        return 2;
    default:
        return 4;
    }
}

static enum string_kind string_kind(const struct insn *i)
{
    switch (i->mnemonic) {
    case ZYDIS_MNEMONIC_MOVSB:
    case ZYDIS_MNEMONIC_MOVSW:
    case ZYDIS_MNEMONIC_MOVSD:
        return STR_MOVS;
    case ZYDIS_MNEMONIC_CMPSB:
    case ZYDIS_MNEMONIC_CMPSW:
    case ZYDIS_MNEMONIC_CMPSD:
        return STR_CMPS;
    case ZYDIS_MNEMONIC_STOSB:
    case ZYDIS_MNEMONIC_STOSW:
    case ZYDIS_MNEMONIC_STOSD:
        return STR_STOS;
    case ZYDIS_MNEMONIC_LODSB:
    case ZYDIS_MNEMONIC_LODSW:
    case ZYDIS_MNEMONIC_LODSD:
        return STR_LODS;
    case ZYDIS_MNEMONIC_SCASB:
    case ZYDIS_MNEMONIC_SCASW:
    case ZYDIS_MNEMONIC_SCASD:
        return STR_SCAS;
    case ZYDIS_MNEMONIC_INSB:
    case ZYDIS_MNEMONIC_INSW:
    case ZYDIS_MNEMONIC_INSD:
        return STR_INS;
    default:
        return STR_OUTS;
    }
}

/* A word string access at offset FFFF on the 80286 in real mode raises
 * #GP, as every word access there does, but not before the microcode has
 * moved on: the data show the pointer of the faulting access already
 * stepped, the other one stepped if its access came first, and CX
 * decremented once or twice under REP. Per kind and faulting access (the
 * 286's CMPS reads ES:DI before DS:SI): how far SI and DI stepped and how
 * often CX was decremented, as the SingleStepTests vectors record. */
static void string_fault_286(struct interp *in, enum string_kind kind, bool rep, uint32_t si,
                             uint32_t di, int32_t delta)
{
    struct x86_state *s = &in->state;
    bool src = kind == STR_MOVS || kind == STR_CMPS || kind == STR_LODS || kind == STR_OUTS;
    bool dst = kind != STR_LODS && kind != STR_OUTS;
    bool src_fault = src && si == 0xffff, dst_fault = dst && di == 0xffff;
    if (!src_fault && !dst_fault)
        return;
    unsigned si_steps, di_steps, cx_decs;
    switch (kind) {
    case STR_MOVS:
        si_steps = 1, di_steps = src_fault ? 0 : 1, cx_decs = src_fault ? 1 : 2;
        break;
    case STR_CMPS:
        si_steps = dst_fault ? 0 : 1, di_steps = 1, cx_decs = dst_fault ? 0 : 1;
        break;
    case STR_LODS:
    case STR_OUTS:
        si_steps = 1, di_steps = 0, cx_decs = 1;
        break;
    case STR_SCAS:
        si_steps = 0, di_steps = 1, cx_decs = 1;
        break;
    default: /* STOS, INS */
        si_steps = 0, di_steps = 1, cx_decs = 2;
        break;
    }
    uint32_t *regs = s->regs;
    regs[R_ESI] = (regs[R_ESI] & 0xffff0000u) | ((si + si_steps * (uint32_t)delta) & 0xffff);
    regs[R_EDI] = (regs[R_EDI] & 0xffff0000u) | ((di + di_steps * (uint32_t)delta) & 0xffff);
    if (rep)
        regs[R_ECX] = (regs[R_ECX] & 0xffff0000u) | ((regs[R_ECX] - cx_decs) & 0xffff);
    in->snapshot.regs[R_ESI] = regs[R_ESI];
    in->snapshot.regs[R_EDI] = regs[R_EDI];
    in->snapshot.regs[R_ECX] = regs[R_ECX];
    raise_gp(in, 0);
}

/* The flags of CMPS/SCAS: those of SUB. */
static void compare_flags(struct x86_state *s, uint32_t a, uint32_t b, unsigned size)
{
    uint32_t mask = size_mask(size);
    uint32_t r = (a - b) & mask;
    uint32_t f = __builtin_parity(r & 0xff) ? 0 : X86_FLAG_PF;
    f |= (a ^ b ^ r) & X86_FLAG_AF;
    if (r == 0)
        f |= X86_FLAG_ZF;
    if (r & sign_bit(size))
        f |= X86_FLAG_SF;
    if (a < b)
        f |= X86_FLAG_CF;
    if ((a ^ b) & (a ^ r) & sign_bit(size))
        f |= X86_FLAG_OF;
    s->eflags = (s->eflags & ~FLAGS_ARITH) | f;
}

static void exec_string(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    if (i->opcode_map != ZYDIS_OPCODE_MAP_DEFAULT)
        raise_ud(in);
    enum string_kind kind = string_kind(i);
    unsigned size = string_size(i);
    uint32_t amask = i->addrsize == 2 ? 0xffffu : 0xffffffffu;
    int32_t delta = (s->eflags & X86_FLAG_DF) ? -(int32_t)size : (int32_t)size;
    bool rep = i->rep != REP_NONE;
    uint32_t count = s->regs[R_ECX] & amask;
    if (rep && count == 0)
        return;
    int sseg = i->prefix_seg;
    for (unsigned burst = 0;; burst++) {
        uint32_t si = s->regs[R_ESI] & amask, di = s->regs[R_EDI] & amask;
        if (unlikely(size == 2 && (si == 0xffff || di == 0xffff)) && model_286(in) && !in_pmode(s))
            string_fault_286(in, kind, rep, si, di, delta);
        switch (kind) {
        case STR_MOVS:
            mem_write(in, S_ES, di, size, mem_read(in, sseg, si, size));
            break;
        case STR_CMPS:
            compare_flags(s, mem_read(in, sseg, si, size), mem_read(in, S_ES, di, size), size);
            break;
        case STR_STOS:
            mem_write(in, S_ES, di, size, s->regs[R_EAX]);
            break;
        case STR_LODS:
            reg_set(s, R_EAX, size, false, mem_read(in, sseg, si, size));
            break;
        case STR_SCAS:
            compare_flags(s, reg_get(s, R_EAX, size, false), mem_read(in, S_ES, di, size), size);
            break;
        case STR_INS: {
            /* The destination is checked before the port is read, so a
             * faulting INS does not consume device data. */
            uint32_t lin = seg_linear(in, S_ES, di, size, true);
            linear_probe_write(in, lin, size, false);
            linear_write(in, lin, size, port_in(in, s->regs[R_EDX] & 0xffff, size), false);
            break;
        }
        case STR_OUTS:
            port_out(in, s->regs[R_EDX] & 0xffff, size, mem_read(in, sseg, si, size));
            break;
        }
        if (kind != STR_STOS && kind != STR_SCAS && kind != STR_INS)
            s->regs[R_ESI] = (s->regs[R_ESI] & ~amask) | ((si + (uint32_t)delta) & amask);
        if (kind != STR_LODS && kind != STR_OUTS)
            s->regs[R_EDI] = (s->regs[R_EDI] & ~amask) | ((di + (uint32_t)delta) & amask);
        if (!rep)
            return;
        count = (count - 1) & amask;
        s->regs[R_ECX] = (s->regs[R_ECX] & ~amask) | count;
        /* A fault in a later iteration must keep this one's progress. */
        in->snapshot.regs[R_ESI] = s->regs[R_ESI];
        in->snapshot.regs[R_EDI] = s->regs[R_EDI];
        in->snapshot.regs[R_ECX] = s->regs[R_ECX];
        in->snapshot.regs[R_EAX] = s->regs[R_EAX];
        in->snapshot.eflags = s->eflags;
        if (count == 0)
            return;
        if (kind == STR_CMPS || kind == STR_SCAS) {
            bool zf = s->eflags & X86_FLAG_ZF;
            if ((i->rep == REP_E && !zf) || (i->rep == REP_NE && zf))
                return;
        }
        /* A breakpoint hit ends the step after this iteration, its trap
         * pointing at the instruction (Intel SDM vol. 3, 17.3.1.2). */
        if (burst + 1 >= REP_BURST || unlikely(in->debug_hits)) {
            /* Continue in the next step, restarting this instruction. */
            s->eip = in->snapshot.eip;
            return;
        }
    }
}

void ops_string_register(insn_fn *t)
{
    static const uint16_t strings[] = {
        ZYDIS_MNEMONIC_MOVSB, ZYDIS_MNEMONIC_MOVSW, ZYDIS_MNEMONIC_MOVSD, ZYDIS_MNEMONIC_CMPSB,
        ZYDIS_MNEMONIC_CMPSW, ZYDIS_MNEMONIC_CMPSD, ZYDIS_MNEMONIC_STOSB, ZYDIS_MNEMONIC_STOSW,
        ZYDIS_MNEMONIC_STOSD, ZYDIS_MNEMONIC_LODSB, ZYDIS_MNEMONIC_LODSW, ZYDIS_MNEMONIC_LODSD,
        ZYDIS_MNEMONIC_SCASB, ZYDIS_MNEMONIC_SCASW, ZYDIS_MNEMONIC_SCASD, ZYDIS_MNEMONIC_INSB,
        ZYDIS_MNEMONIC_INSW,  ZYDIS_MNEMONIC_INSD,  ZYDIS_MNEMONIC_OUTSB, ZYDIS_MNEMONIC_OUTSW,
        ZYDIS_MNEMONIC_OUTSD,
    };
    for (size_t n = 0; n < G_N_ELEMENTS(strings); n++)
        t[strings[n]] = exec_string;
    t[ZYDIS_MNEMONIC_IN] = exec_in;
    t[ZYDIS_MNEMONIC_OUT] = exec_out;
}
