/* Control transfers: near and far JMP/CALL/RET with call gates and task
 * gates, Jcc, LOOP/JCXZ, INT/INTO/INT3/INT1, IRET (to the same or an outer
 * level, to virtual-8086 mode, or back to a nested task), ENTER/LEAVE,
 * BOUND and HLT (Intel SDM vol. 2 and vol. 3, sections 5.8 and 7.3). */
#include "interp_priv.h"

static uint32_t target_mask(const struct insn *i)
{
    return i->opsize == 4 ? 0xffffffffu : 0xffffu;
}

/* A near transfer within CS: the target must lie inside the limit. */
static void jump_near(struct interp *in, uint32_t target)
{
    struct x86_state *s = &in->state;
    if (target > s->sregs[S_CS].limit)
        raise_gp(in, 0);
    s->eip = target;
}

static void exec_jmp(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    switch (i->op[0].kind) {
    case OPK_REL:
        jump_near(in, (s->eip + i->imm) & target_mask(i));
        return;
    case OPK_FAR:
        far_jump(in, (uint16_t)i->imm2, i->imm, i->opsize);
        return;
    case OPK_MEM:
        if (i->opcode == 0xff && i->modrm_reg == 5) {
            uint32_t ea = insn_ea(in, i);
            uint32_t offset = mem_read(in, i->seg, ea, i->opsize);
            uint32_t sel_ea = ea + i->opsize;
            if (i->addrsize == 2)
                sel_ea &= 0xffff;
            uint16_t sel = (uint16_t)mem_read(in, i->seg, sel_ea, 2);
            far_jump(in, sel, offset, i->opsize);
            return;
        }
        jump_near(in, op_read(in, i, 0) & target_mask(i));
        return;
    case OPK_REG:
        jump_near(in, op_read(in, i, 0) & target_mask(i));
        return;
    default:
        raise_ud(in);
    }
}

static void exec_call(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t ret = s->eip;
    uint32_t target;
    switch (i->op[0].kind) {
    case OPK_REL:
        target = (s->eip + i->imm) & target_mask(i);
        break;
    case OPK_FAR:
        far_call(in, (uint16_t)i->imm2, i->imm, i->opsize, ret);
        return;
    case OPK_MEM:
        if (i->opcode == 0xff && i->modrm_reg == 3) {
            uint32_t ea = insn_ea(in, i);
            uint32_t offset = mem_read(in, i->seg, ea, i->opsize);
            uint32_t sel_ea = ea + i->opsize;
            if (i->addrsize == 2)
                sel_ea &= 0xffff;
            uint16_t sel = (uint16_t)mem_read(in, i->seg, sel_ea, 2);
            far_call(in, sel, offset, i->opsize, ret);
            return;
        }
        target = op_read(in, i, 0) & target_mask(i);
        break;
    case OPK_REG:
        target = op_read(in, i, 0) & target_mask(i);
        break;
    default:
        raise_ud(in);
    }
    if (target > s->sregs[S_CS].limit)
        raise_gp(in, 0);
    push(in, i->opsize, ret);
    s->eip = target;
}

static void exec_ret(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t extra = i->nops && i->op[0].kind == OPK_IMM ? (i->imm & 0xffff) : 0;
    if (i->opcode == 0xca || i->opcode == 0xcb) {
        far_return(in, i->opsize, extra);
        return;
    }
    uint32_t target = stack_peek(in, 0, i->opsize) & target_mask(i);
    if (target > s->sregs[S_CS].limit)
        raise_gp(in, 0);
    pop(in, i->opsize);
    if (stack_size(s) == 4)
        s->regs[R_ESP] += extra;
    else
        s->regs[R_ESP] = (s->regs[R_ESP] & 0xffff0000u) | ((s->regs[R_ESP] + extra) & 0xffff);
    s->eip = target;
}

static void exec_jcc(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    if (condition_holds(s, i->opcode & 0xf))
        jump_near(in, (s->eip + i->imm) & target_mask(i));
}

static void exec_loop(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t count;
    if (i->addrsize == 2) {
        count = (s->regs[R_ECX] - 1) & 0xffff;
        reg_set(s, R_ECX, 2, false, count);
    } else {
        count = --s->regs[R_ECX];
    }
    bool take = count != 0;
    if (i->mnemonic == ZYDIS_MNEMONIC_LOOPE)
        take = take && (s->eflags & X86_FLAG_ZF);
    else if (i->mnemonic == ZYDIS_MNEMONIC_LOOPNE)
        take = take && !(s->eflags & X86_FLAG_ZF);
    if (take)
        jump_near(in, (s->eip + i->imm) & target_mask(i));
}

static void exec_jcxz(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t count = i->addrsize == 2 ? s->regs[R_ECX] & 0xffff : s->regs[R_ECX];
    if (count == 0)
        jump_near(in, (s->eip + i->imm) & target_mask(i));
}

static void exec_int(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    switch (i->mnemonic) {
    case ZYDIS_MNEMONIC_INT:
        /* Without VME, INT n in virtual-8086 mode needs IOPL 3. */
        if (in_v86(s) && iopl_of(s) < 3)
            raise_gp(in, 0);
        deliver_event(in, i->imm & 0xff, EVENT_SOFTWARE, NO_ERROR_CODE, s->eip);
        return;
    case ZYDIS_MNEMONIC_INT3:
        deliver_event(in, X86_EXC_BP, EVENT_SOFTWARE, NO_ERROR_CODE, s->eip);
        return;
    case ZYDIS_MNEMONIC_INTO:
        if (s->eflags & X86_FLAG_OF)
            deliver_event(in, X86_EXC_OF, EVENT_SOFTWARE, NO_ERROR_CODE, s->eip);
        return;
    case ZYDIS_MNEMONIC_INT1:
        deliver_event(in, X86_EXC_DB, EVENT_ICEBP, NO_ERROR_CODE, s->eip);
        return;
    default:
        raise_ud(in);
    }
}

static void exec_iret(struct interp *in, const struct insn *i)
{
    interrupt_return(in, i->opsize);
}

static void exec_enter(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->opsize;
    uint32_t alloc = i->imm & 0xffff;
    unsigned level = i->imm2 & 0x1f;
    uint32_t smask = stack_size(s) == 4 ? 0xffffffffu : 0xffffu;
    push(in, size, s->regs[R_EBP]);
    uint32_t frame = s->regs[R_ESP] & smask;
    if (level > 0) {
        uint32_t bp = s->regs[R_EBP];
        for (unsigned n = 1; n < level; n++) {
            bp -= size;
            push(in, size, mem_read(in, S_SS, bp & smask, size));
        }
        push(in, size, frame);
    }
    /* The new ESP must be writable before anything is committed. */
    uint32_t new_sp = (s->regs[R_ESP] - alloc) & smask;
    if (alloc)
        seg_linear(in, S_SS, new_sp, 1, true);
    reg_set(s, R_EBP, size, false, frame);
    s->regs[R_ESP] = smask == 0xffffu ? (s->regs[R_ESP] & 0xffff0000u) | new_sp : new_sp;
}

static void exec_leave(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    if (stack_size(s) == 4)
        s->regs[R_ESP] = s->regs[R_EBP];
    else
        reg_set(s, R_ESP, 2, false, s->regs[R_EBP]);
    reg_set(s, R_EBP, i->opsize, false, pop(in, i->opsize));
}

static void exec_bound(struct interp *in, const struct insn *i)
{
    if (i->op[1].kind != OPK_MEM)
        raise_ud(in);
    unsigned size = i->op[0].size;
    int32_t index = (int32_t)sign_extend(op_read(in, i, 0), size);
    uint32_t ea = insn_ea(in, i);
    uint32_t upper_ea = ea + size;
    if (i->addrsize == 2)
        upper_ea &= 0xffff;
    int32_t lower = (int32_t)sign_extend(mem_read(in, i->seg, ea, size), size);
    int32_t upper = (int32_t)sign_extend(mem_read(in, i->seg, upper_ea, size), size);
    if (index < lower || index > upper)
        raise_exception(in, X86_EXC_BR, NO_ERROR_CODE);
}

static void exec_hlt(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    if (in_pmode(s) && cpl_of(s) != 0)
        raise_gp(in, 0);
    s->halted = true;
}

void ops_flow_register(insn_fn *t)
{
    static const struct insn_handler handlers[] = {
        {ZYDIS_MNEMONIC_JMP, exec_jmp},     {ZYDIS_MNEMONIC_CALL, exec_call},
        {ZYDIS_MNEMONIC_RET, exec_ret},     {ZYDIS_MNEMONIC_LOOP, exec_loop},
        {ZYDIS_MNEMONIC_LOOPE, exec_loop},  {ZYDIS_MNEMONIC_LOOPNE, exec_loop},
        {ZYDIS_MNEMONIC_JCXZ, exec_jcxz},   {ZYDIS_MNEMONIC_JECXZ, exec_jcxz},
        {ZYDIS_MNEMONIC_INT, exec_int},     {ZYDIS_MNEMONIC_INT3, exec_int},
        {ZYDIS_MNEMONIC_INTO, exec_int},    {ZYDIS_MNEMONIC_INT1, exec_int},
        {ZYDIS_MNEMONIC_IRET, exec_iret},   {ZYDIS_MNEMONIC_IRETD, exec_iret},
        {ZYDIS_MNEMONIC_ENTER, exec_enter}, {ZYDIS_MNEMONIC_LEAVE, exec_leave},
        {ZYDIS_MNEMONIC_BOUND, exec_bound}, {ZYDIS_MNEMONIC_HLT, exec_hlt},
    };
    for (size_t n = 0; n < G_N_ELEMENTS(handlers); n++)
        t[handlers[n].mnemonic] = handlers[n].exec;
    static const uint16_t jcc[] = {
        ZYDIS_MNEMONIC_JO, ZYDIS_MNEMONIC_JNO, ZYDIS_MNEMONIC_JB,  ZYDIS_MNEMONIC_JNB,
        ZYDIS_MNEMONIC_JZ, ZYDIS_MNEMONIC_JNZ, ZYDIS_MNEMONIC_JBE, ZYDIS_MNEMONIC_JNBE,
        ZYDIS_MNEMONIC_JS, ZYDIS_MNEMONIC_JNS, ZYDIS_MNEMONIC_JP,  ZYDIS_MNEMONIC_JNP,
        ZYDIS_MNEMONIC_JL, ZYDIS_MNEMONIC_JNL, ZYDIS_MNEMONIC_JLE, ZYDIS_MNEMONIC_JNLE,
    };
    for (size_t n = 0; n < 16; n++)
        t[jcc[n]] = exec_jcc;
}
