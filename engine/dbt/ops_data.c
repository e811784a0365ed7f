/* Data movement: MOV and its extending forms, exchanges, LEA and far-pointer
 * loads, the stack (PUSH/POP, PUSHA/POPA, PUSHF/POPF), flag transfers,
 * sign extensions of the accumulator, SETcc, CMOVcc and BSWAP (Intel SDM
 * vol. 2). */
#include "interp_priv.h"

void set_eflags_raw(struct x86_state *s, uint32_t value)
{
    /* Bits that exist on this CPU: the arithmetic flags, TF, IF, DF, IOPL,
     * NT, RF, VM, AC, VIF, VIP and ID. */
    s->eflags = (value & 0x003f7fd5u) | X86_FLAG_FIXED;
}

void write_eflags(struct interp *in, uint32_t value, unsigned size)
{
    struct x86_state *s = &in->state;
    uint32_t changeable =
        FLAGS_ARITH | X86_FLAG_TF | X86_FLAG_DF | X86_FLAG_NT | X86_FLAG_AC | X86_FLAG_ID;
    int cpl = cpl_of(s);
    if (cpl == 0 && !(s->eflags & X86_FLAG_VM))
        changeable |= X86_FLAG_IOPL;
    if (cpl <= iopl_of(s))
        changeable |= X86_FLAG_IF;
    if (size == 2)
        changeable &= 0xffff;
    /* The 286 in real mode keeps IOPL, NT and bit 15 clear. */
    if (model_286(in) && !in_pmode(s))
        changeable &= ~0xf000u;
    set_eflags_raw(s, (s->eflags & ~changeable) | (value & changeable));
}

static void exec_mov(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    if (unlikely(i->op[0].kind >= OPK_CR || i->op[1].kind >= OPK_CR)) {
        exec_mov_cr_dr(in, i);
        return;
    }
    if (i->op[0].kind == OPK_SREG) {
        if (i->op[0].reg == S_CS)
            raise_ud(in);
        uint16_t sel = (uint16_t)op_read(in, i, 1);
        load_segment(in, i->op[0].reg, sel);
        if (i->op[0].reg == S_SS)
            s->irq_inhibited = true;
        return;
    }
    op_write(in, i, 0, op_read(in, i, 1));
}

static void exec_movzx(struct interp *in, const struct insn *i)
{
    op_write(in, i, 0, op_read(in, i, 1));
}

static void exec_movsx(struct interp *in, const struct insn *i)
{
    op_write(in, i, 0, sign_extend(op_read(in, i, 1), i->op[1].size));
}

static void exec_xchg(struct interp *in, const struct insn *i)
{
    uint32_t a = op_read(in, i, 0);
    uint32_t b = op_read(in, i, 1);
    op_write(in, i, 0, b);
    op_write(in, i, 1, a);
}

static void exec_lea(struct interp *in, const struct insn *i)
{
    if (i->op[1].kind != OPK_MEM)
        raise_ud(in);
    op_write(in, i, 0, insn_ea(in, i));
}

static void exec_load_far_pointer(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    if (i->op[1].kind != OPK_MEM)
        raise_ud(in);
    unsigned size = i->op[0].size;
    uint32_t ea = insn_ea(in, i);
    uint32_t offset = mem_read(in, i->seg, ea, size);
    uint32_t sel_off = ea + size;
    if (i->addrsize == 2)
        sel_off &= 0xffff;
    uint16_t sel = (uint16_t)mem_read(in, i->seg, sel_off, 2);
    int sreg;
    switch (i->mnemonic) {
    case ZYDIS_MNEMONIC_LES:
        sreg = S_ES;
        break;
    case ZYDIS_MNEMONIC_LSS:
        sreg = S_SS;
        break;
    case ZYDIS_MNEMONIC_LFS:
        sreg = S_FS;
        break;
    case ZYDIS_MNEMONIC_LGS:
        sreg = S_GS;
        break;
    default:
        sreg = S_DS;
        break;
    }
    load_segment(in, sreg, sel);
    reg_set(s, i->op[0].reg, size, false, offset);
}

static void exec_push(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->opsize;
    if (i->op[0].kind == OPK_SREG && size == 4) {
        /* P6 processors write only the selector's 16 bits of the slot. */
        uint32_t sp = (s->regs[R_ESP] - 4) & (stack_size(s) == 4 ? 0xffffffffu : 0xffffu);
        mem_write(in, S_SS, sp, 2, s->sregs[i->op[0].reg].selector);
        s->regs[R_ESP] = stack_size(s) == 4 ? sp : (s->regs[R_ESP] & 0xffff0000u) | sp;
        return;
    }
    uint32_t v = op_read(in, i, 0);
    if (i->op[0].kind == OPK_IMM)
        v = sign_extend(v, i->op[0].size ? i->op[0].size : size);
    push(in, size, v);
}

static void exec_pop(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->opsize;
    if (i->op[0].kind == OPK_SREG) {
        if (i->op[0].reg == S_CS)
            raise_ud(in);
        uint16_t sel = (uint16_t)stack_peek(in, 0, 2);
        load_segment(in, i->op[0].reg, sel);
        pop(in, size);
        if (i->op[0].reg == S_SS)
            s->irq_inhibited = true;
        return;
    }
    uint32_t v = pop(in, size);
    /* A fault writing the destination leaves SP popped on the 286; the 386
     * and later restore it. */
    if (model_286(in) && i->op[0].kind == OPK_MEM)
        in->snapshot.regs[R_ESP] = s->regs[R_ESP];
    op_write(in, i, 0, v);
}

static void exec_pusha(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->mnemonic == ZYDIS_MNEMONIC_PUSHAD ? 4 : 2;
    uint32_t sp = s->regs[R_ESP];
    for (int r = R_EAX; r <= R_EDI; r++)
        push(in, size, r == R_ESP ? sp : s->regs[r]);
}

static void exec_popa(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->mnemonic == ZYDIS_MNEMONIC_POPAD ? 4 : 2;
    for (int r = R_EDI; r >= R_EAX; r--) {
        uint32_t v = pop(in, size);
        if (r != R_ESP)
            reg_set(s, (unsigned)r, size, false, v);
    }
}

static void exec_pushf(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    if (in_v86(s) && iopl_of(s) < 3)
        raise_gp(in, 0);
    unsigned size = i->mnemonic == ZYDIS_MNEMONIC_PUSHFD ? 4 : 2;
    push(in, size, s->eflags & ~(X86_FLAG_VM | X86_FLAG_RF));
}

static void exec_popf(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    if (in_v86(s) && iopl_of(s) < 3)
        raise_gp(in, 0);
    unsigned size = i->mnemonic == ZYDIS_MNEMONIC_POPFD ? 4 : 2;
    write_eflags(in, pop(in, size), size);
}

static void exec_lahf(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    reg_set(s, R_EAX, 1, true, (s->eflags & 0xd5) | X86_FLAG_FIXED);
}

static void exec_sahf(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t ah = (s->regs[R_EAX] >> 8) & 0xd5;
    s->eflags = (s->eflags & ~0xd5u) | ah;
}

static void exec_flag_op(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    switch (i->mnemonic) {
    case ZYDIS_MNEMONIC_CLC:
        s->eflags &= ~X86_FLAG_CF;
        break;
    case ZYDIS_MNEMONIC_STC:
        s->eflags |= X86_FLAG_CF;
        break;
    case ZYDIS_MNEMONIC_CMC:
        s->eflags ^= X86_FLAG_CF;
        break;
    case ZYDIS_MNEMONIC_CLD:
        s->eflags &= ~X86_FLAG_DF;
        break;
    case ZYDIS_MNEMONIC_STD:
        s->eflags |= X86_FLAG_DF;
        break;
    default:
        break;
    }
}

static void exec_cli_sti(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    /* Without VME/PVI, CLI and STI need CPL <= IOPL in protected mode
     * and IOPL 3 in virtual-8086 mode (cpl_of is 3 there). */
    if (in_pmode(s) && cpl_of(s) > iopl_of(s))
        raise_gp(in, 0);
    if (i->mnemonic == ZYDIS_MNEMONIC_CLI) {
        s->eflags &= ~X86_FLAG_IF;
    } else {
        if (!(s->eflags & X86_FLAG_IF))
            s->irq_inhibited = true;
        s->eflags |= X86_FLAG_IF;
    }
}

static void exec_convert(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t eax = s->regs[R_EAX];
    switch (i->mnemonic) {
    case ZYDIS_MNEMONIC_CBW:
        reg_set(s, R_EAX, 2, false, sign_extend(eax, 1));
        break;
    case ZYDIS_MNEMONIC_CWDE:
        s->regs[R_EAX] = sign_extend(eax, 2);
        break;
    case ZYDIS_MNEMONIC_CWD:
        reg_set(s, R_EDX, 2, false, (eax & 0x8000) ? 0xffff : 0);
        break;
    case ZYDIS_MNEMONIC_CDQ:
        s->regs[R_EDX] = (eax & 0x80000000u) ? 0xffffffffu : 0;
        break;
    default:
        raise_ud(in);
    }
}

static void exec_xlat(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t addr = s->regs[R_EBX] + (s->regs[R_EAX] & 0xff);
    if (i->addrsize == 2)
        addr &= 0xffff;
    reg_set(s, R_EAX, 1, false, mem_read(in, i->seg, addr, 1));
}

static void exec_setcc(struct interp *in, const struct insn *i)
{
    op_write(in, i, 0, condition_holds(&in->state, i->opcode & 0xf) ? 1 : 0);
}

static void exec_cmovcc(struct interp *in, const struct insn *i)
{
    /* The source is read (and may fault) whether or not the condition
     * holds; a 32-bit destination register is written either way. */
    uint32_t v = op_read(in, i, 1);
    if (condition_holds(&in->state, i->opcode & 0xf))
        op_write(in, i, 0, v);
}

static void exec_bswap(struct interp *in, const struct insn *i)
{
    uint32_t v = op_read(in, i, 0);
    if (i->op[0].size == 4)
        op_write(in, i, 0, __builtin_bswap32(v));
    else
        op_write(in, i, 0, 0); /* undefined; a P6 clears the register */
}

static void exec_salc(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    reg_set(s, R_EAX, 1, false, (s->eflags & X86_FLAG_CF) ? 0xff : 0);
}

static void exec_nop(struct interp *in, const struct insn *i)
{
}

void ops_data_register(insn_fn *t)
{
    static const struct insn_handler handlers[] = {
        {ZYDIS_MNEMONIC_MOV, exec_mov},
        {ZYDIS_MNEMONIC_MOVZX, exec_movzx},
        {ZYDIS_MNEMONIC_MOVSX, exec_movsx},
        {ZYDIS_MNEMONIC_XCHG, exec_xchg},
        {ZYDIS_MNEMONIC_LEA, exec_lea},
        {ZYDIS_MNEMONIC_LDS, exec_load_far_pointer},
        {ZYDIS_MNEMONIC_LES, exec_load_far_pointer},
        {ZYDIS_MNEMONIC_LFS, exec_load_far_pointer},
        {ZYDIS_MNEMONIC_LGS, exec_load_far_pointer},
        {ZYDIS_MNEMONIC_LSS, exec_load_far_pointer},
        {ZYDIS_MNEMONIC_PUSH, exec_push},
        {ZYDIS_MNEMONIC_POP, exec_pop},
        {ZYDIS_MNEMONIC_PUSHA, exec_pusha},
        {ZYDIS_MNEMONIC_PUSHAD, exec_pusha},
        {ZYDIS_MNEMONIC_POPA, exec_popa},
        {ZYDIS_MNEMONIC_POPAD, exec_popa},
        {ZYDIS_MNEMONIC_PUSHF, exec_pushf},
        {ZYDIS_MNEMONIC_PUSHFD, exec_pushf},
        {ZYDIS_MNEMONIC_POPF, exec_popf},
        {ZYDIS_MNEMONIC_POPFD, exec_popf},
        {ZYDIS_MNEMONIC_LAHF, exec_lahf},
        {ZYDIS_MNEMONIC_SAHF, exec_sahf},
        {ZYDIS_MNEMONIC_CLC, exec_flag_op},
        {ZYDIS_MNEMONIC_STC, exec_flag_op},
        {ZYDIS_MNEMONIC_CMC, exec_flag_op},
        {ZYDIS_MNEMONIC_CLD, exec_flag_op},
        {ZYDIS_MNEMONIC_STD, exec_flag_op},
        {ZYDIS_MNEMONIC_CLI, exec_cli_sti},
        {ZYDIS_MNEMONIC_STI, exec_cli_sti},
        {ZYDIS_MNEMONIC_CBW, exec_convert},
        {ZYDIS_MNEMONIC_CWDE, exec_convert},
        {ZYDIS_MNEMONIC_CWD, exec_convert},
        {ZYDIS_MNEMONIC_CDQ, exec_convert},
        {ZYDIS_MNEMONIC_XLAT, exec_xlat},
        {ZYDIS_MNEMONIC_BSWAP, exec_bswap},
        {ZYDIS_MNEMONIC_SALC, exec_salc},
        {ZYDIS_MNEMONIC_NOP, exec_nop},
        {ZYDIS_MNEMONIC_PAUSE, exec_nop},
        {ZYDIS_MNEMONIC_PREFETCHNTA, exec_nop},
        {ZYDIS_MNEMONIC_PREFETCHT0, exec_nop},
        {ZYDIS_MNEMONIC_PREFETCHT1, exec_nop},
        {ZYDIS_MNEMONIC_PREFETCHT2, exec_nop},
    };
    for (size_t n = 0; n < G_N_ELEMENTS(handlers); n++)
        t[handlers[n].mnemonic] = handlers[n].exec;
    static const uint16_t setcc[] = {
        ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETB,  ZYDIS_MNEMONIC_SETNB,
        ZYDIS_MNEMONIC_SETZ, ZYDIS_MNEMONIC_SETNZ, ZYDIS_MNEMONIC_SETBE, ZYDIS_MNEMONIC_SETNBE,
        ZYDIS_MNEMONIC_SETS, ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETP,  ZYDIS_MNEMONIC_SETNP,
        ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETLE, ZYDIS_MNEMONIC_SETNLE,
    };
    static const uint16_t cmovcc[] = {
        ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVB,  ZYDIS_MNEMONIC_CMOVNB,
        ZYDIS_MNEMONIC_CMOVZ, ZYDIS_MNEMONIC_CMOVNZ, ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVNBE,
        ZYDIS_MNEMONIC_CMOVS, ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVP,  ZYDIS_MNEMONIC_CMOVNP,
        ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVLE, ZYDIS_MNEMONIC_CMOVNLE,
    };
    for (size_t n = 0; n < 16; n++) {
        t[setcc[n]] = exec_setcc;
        t[cmovcc[n]] = exec_cmovcc;
    }
}
