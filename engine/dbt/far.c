/* Far control transfers: JMP and CALL to code segments, call gates, task
 * gates and TSSs; far RET and IRET to the same or an outer privilege level,
 * to virtual-8086 mode or to a nested task (Intel SDM vol. 2, the
 * operation sections of JMP, CALL, RET and IRET; vol. 3, 5.8 "Privilege
 * Level Checking When Transferring Program Control Between Code Segments"). */
#include "interp_priv.h"

#define DESC_TYPE(hi) (((hi) >> 8) & 0x1f) /* with the S bit as bit 4 */
#define DESC_DPL(hi)  (((hi) >> 13) & 3)
#define DESC_P(hi)    ((hi)&0x8000)

enum {
    SYS_TSS16_AVAIL = 0x01,
    SYS_CALL_GATE16 = 0x04,
    SYS_TASK_GATE = 0x05,
    SYS_TSS32_AVAIL = 0x09,
    SYS_CALL_GATE32 = 0x0c,
};

static bool is_code(uint32_t hi)
{
    return (DESC_TYPE(hi) & 0x18) == 0x18;
}

static bool is_conforming(uint32_t hi)
{
    return hi & 0x400;
}

static bool real_or_v86(const struct x86_state *s)
{
    return !(s->cr0 & X86_CR0_PE) || (s->eflags & X86_FLAG_VM);
}

/* Loads CS for a transfer at the current privilege level and jumps. */
static void commit_cs(struct interp *in, uint16_t sel, uint32_t lo, uint32_t hi, unsigned rpl,
                      uint32_t offset)
{
    struct x86_state *s = &in->state;
    struct x86_segment cs;
    descriptor_to_segment(&cs, (uint16_t)((sel & ~3u) | rpl), lo, hi | 0x100);
    if (offset > cs.limit)
        raise_gp(in, 0);
    descriptor_set_accessed(in, sel, hi);
    s->sregs[S_CS] = cs;
    s->eip = offset;
}

/* Checks for a direct transfer to a code segment (JMP/CALL ptr). */
static void check_direct_code(struct interp *in, uint16_t sel, uint32_t hi)
{
    unsigned cpl = (unsigned)cpl_of(&in->state);
    if (is_conforming(hi)) {
        if (DESC_DPL(hi) > cpl)
            raise_gp(in, sel & 0xfffc);
    } else if ((sel & 3u) > cpl || DESC_DPL(hi) != cpl) {
        raise_gp(in, sel & 0xfffc);
    }
    if (!DESC_P(hi))
        raise_exception(in, X86_EXC_NP, sel & 0xfffc);
}

/* Reads and checks the code segment a call gate points to. */
static void gate_target(struct interp *in, uint32_t glo, uint16_t *tsel, uint32_t *lo, uint32_t *hi)
{
    *tsel = (uint16_t)(glo >> 16);
    if ((*tsel & ~3u) == 0)
        raise_gp(in, 0);
    descriptor_read(in, *tsel, lo, hi, X86_EXC_GP);
    if (!is_code(*hi) || DESC_DPL(*hi) > (unsigned)cpl_of(&in->state))
        raise_gp(in, *tsel & 0xfffc);
    if (!DESC_P(*hi))
        raise_exception(in, X86_EXC_NP, *tsel & 0xfffc);
}

static void check_gate(struct interp *in, uint16_t sel, uint32_t hi)
{
    unsigned cpl = (unsigned)cpl_of(&in->state);
    if (DESC_DPL(hi) < cpl || DESC_DPL(hi) < (sel & 3u))
        raise_gp(in, sel & 0xfffc);
    if (!DESC_P(hi))
        raise_exception(in, X86_EXC_NP, sel & 0xfffc);
}

static void switch_to_task(struct interp *in, uint16_t sel, uint32_t hi, uint32_t lo,
                           enum task_switch_reason reason, uint32_t return_eip)
{
    unsigned type = DESC_TYPE(hi);
    if (type == SYS_TASK_GATE) {
        uint16_t tss_sel = (uint16_t)(lo >> 16);
        if (tss_sel & 4)
            raise_gp(in, tss_sel & 0xfffc);
        uint32_t tlo, thi;
        descriptor_read(in, tss_sel, &tlo, &thi, X86_EXC_GP);
        unsigned ttype = DESC_TYPE(thi);
        if (ttype != SYS_TSS16_AVAIL && ttype != SYS_TSS32_AVAIL)
            raise_gp(in, tss_sel & 0xfffc);
        if (!DESC_P(thi))
            raise_exception(in, X86_EXC_NP, tss_sel & 0xfffc);
        task_switch(in, tss_sel, tlo, thi, reason, NO_ERROR_CODE, return_eip);
    } else {
        if (sel & 4)
            raise_gp(in, sel & 0xfffc);
        task_switch(in, sel, lo, hi, reason, NO_ERROR_CODE, return_eip);
    }
}

void far_jump(struct interp *in, uint16_t selector, uint32_t offset, unsigned opsize)
{
    struct x86_state *s = &in->state;
    if (opsize == 2)
        offset &= 0xffff;
    if (real_or_v86(s)) {
        if (offset > 0xffff && (s->eflags & X86_FLAG_VM))
            raise_gp(in, 0);
        load_segment_real(in, S_CS, selector);
        if (offset > s->sregs[S_CS].limit)
            raise_gp(in, 0);
        s->eip = offset;
        return;
    }
    if ((selector & ~3u) == 0)
        raise_gp(in, 0);
    uint32_t lo, hi;
    descriptor_read(in, selector, &lo, &hi, X86_EXC_GP);
    int cpl = cpl_of(s);
    if (is_code(hi)) {
        check_direct_code(in, selector, hi);
        commit_cs(in, selector, lo, hi, (unsigned)cpl, offset);
        return;
    }
    switch (DESC_TYPE(hi)) {
    case SYS_CALL_GATE16:
    case SYS_CALL_GATE32: {
        check_gate(in, selector, hi);
        uint16_t tsel;
        uint32_t tlo, thi;
        gate_target(in, lo, &tsel, &tlo, &thi);
        if (!is_conforming(thi) && DESC_DPL(thi) != (unsigned)cpl)
            raise_gp(in, tsel & 0xfffc);
        uint32_t target = (lo & 0xffff) | (DESC_TYPE(hi) == SYS_CALL_GATE32 ? hi & 0xffff0000u : 0);
        commit_cs(in, tsel, tlo, thi, (unsigned)cpl, target);
        return;
    }
    case SYS_TASK_GATE:
    case SYS_TSS16_AVAIL:
    case SYS_TSS32_AVAIL:
        check_gate(in, selector, hi);
        switch_to_task(in, selector, hi, lo, TASK_JMP, s->eip);
        return;
    default:
        raise_gp(in, selector & 0xfffc);
    }
}

void far_call(struct interp *in, uint16_t selector, uint32_t offset, unsigned opsize,
              uint32_t return_eip)
{
    struct x86_state *s = &in->state;
    if (opsize == 2)
        offset &= 0xffff;
    if (real_or_v86(s)) {
        uint16_t old_cs = s->sregs[S_CS].selector;
        push(in, opsize, old_cs);
        push(in, opsize, return_eip);
        load_segment_real(in, S_CS, selector);
        if (offset > s->sregs[S_CS].limit)
            raise_gp(in, 0);
        s->eip = offset;
        return;
    }
    if ((selector & ~3u) == 0)
        raise_gp(in, 0);
    uint32_t lo, hi;
    descriptor_read(in, selector, &lo, &hi, X86_EXC_GP);
    int cpl = cpl_of(s);
    if (is_code(hi)) {
        check_direct_code(in, selector, hi);
        uint16_t old_cs = s->sregs[S_CS].selector;
        push(in, opsize, old_cs);
        push(in, opsize, return_eip);
        commit_cs(in, selector, lo, hi, (unsigned)cpl, offset);
        return;
    }
    switch (DESC_TYPE(hi)) {
    case SYS_CALL_GATE16:
    case SYS_CALL_GATE32:
        break;
    case SYS_TASK_GATE:
    case SYS_TSS16_AVAIL:
    case SYS_TSS32_AVAIL:
        check_gate(in, selector, hi);
        switch_to_task(in, selector, hi, lo, TASK_CALL, return_eip);
        return;
    default:
        raise_gp(in, selector & 0xfffc);
    }

    check_gate(in, selector, hi);
    uint16_t tsel;
    uint32_t tlo, thi;
    gate_target(in, lo, &tsel, &tlo, &thi);
    bool gate32 = DESC_TYPE(hi) == SYS_CALL_GATE32;
    unsigned size = gate32 ? 4 : 2;
    uint32_t target = (lo & 0xffff) | (gate32 ? hi & 0xffff0000u : 0);
    unsigned dpl = DESC_DPL(thi);
    struct x86_segment cs;
    descriptor_to_segment(&cs, tsel, tlo, thi | 0x100);
    if (target > cs.limit)
        raise_gp(in, 0);

    if (!is_conforming(thi) && dpl < (unsigned)cpl) {
        /* A call to an inner privilege level switches to the stack the
         * TSS holds for it and copies the gate's parameter count. */
        uint16_t ss_sel;
        uint32_t esp;
        tss_stack(in, dpl, &ss_sel, &esp, 0);
        struct x86_segment new_ss;
        check_new_stack(in, ss_sel, dpl, 0, &new_ss);
        int32_t ss_error = ss_sel & 0xfffc;
        unsigned params = hi & 0x1f;
        uint32_t old_esp = s->regs[R_ESP];
        uint16_t old_ss = s->sregs[S_SS].selector;
        stack_push_at(in, &new_ss, &esp, size, old_ss, ss_error);
        stack_push_at(in, &new_ss, &esp, size, old_esp, ss_error);
        for (unsigned n = params; n > 0; n--) {
            uint32_t v = stack_peek(in, (n - 1) * size, size);
            stack_push_at(in, &new_ss, &esp, size, v, ss_error);
        }
        stack_push_at(in, &new_ss, &esp, size, s->sregs[S_CS].selector, ss_error);
        stack_push_at(in, &new_ss, &esp, size, return_eip, ss_error);
        s->sregs[S_SS] = new_ss;
        s->regs[R_ESP] = esp;
        cs.selector = (uint16_t)((tsel & ~3u) | dpl);
    } else {
        push(in, size, s->sregs[S_CS].selector);
        push(in, size, return_eip);
        cs.selector = (uint16_t)((tsel & ~3u) | (unsigned)cpl);
    }
    descriptor_set_accessed(in, tsel, thi);
    s->sregs[S_CS] = cs;
    s->eip = target;
}

/* Checks the CS selector a RET or IRET returns to; returns its RPL. */
static unsigned check_return_cs(struct interp *in, uint16_t sel, uint32_t *lo, uint32_t *hi)
{
    unsigned cpl = (unsigned)cpl_of(&in->state);
    unsigned rpl = sel & 3;
    if ((sel & ~3u) == 0)
        raise_gp(in, 0);
    descriptor_read(in, sel, lo, hi, X86_EXC_GP);
    if (rpl < cpl || !is_code(*hi))
        raise_gp(in, sel & 0xfffc);
    if (is_conforming(*hi) ? DESC_DPL(*hi) > rpl : DESC_DPL(*hi) != rpl)
        raise_gp(in, sel & 0xfffc);
    if (!DESC_P(*hi))
        raise_exception(in, X86_EXC_NP, sel & 0xfffc);
    return rpl;
}

/* Checks the SS a return to an outer level loads. */
static void check_return_ss(struct interp *in, uint16_t sel, unsigned rpl, struct x86_segment *out)
{
    uint32_t lo, hi;
    if ((sel & ~3u) == 0)
        raise_gp(in, 0);
    descriptor_read(in, sel, &lo, &hi, X86_EXC_GP);
    if ((sel & 3u) != rpl || DESC_DPL(hi) != rpl || (DESC_TYPE(hi) & 0x1a) != 0x12)
        raise_gp(in, sel & 0xfffc);
    if (!DESC_P(hi))
        raise_exception(in, X86_EXC_SS, sel & 0xfffc);
    descriptor_set_accessed(in, sel, hi);
    descriptor_to_segment(out, sel, lo, hi | 0x100);
}

static void add_esp(struct x86_state *s, uint32_t n)
{
    if (stack_size(s) == 4)
        s->regs[R_ESP] += n;
    else
        s->regs[R_ESP] = (s->regs[R_ESP] & 0xffff0000u) | ((s->regs[R_ESP] + n) & 0xffff);
}

void far_return(struct interp *in, unsigned opsize, uint32_t extra)
{
    struct x86_state *s = &in->state;
    uint32_t offset = stack_peek(in, 0, opsize);
    uint16_t sel = (uint16_t)stack_peek(in, opsize, 2);
    if (real_or_v86(s)) {
        if (opsize == 2)
            offset &= 0xffff;
        load_segment_real(in, S_CS, sel);
        if (offset > s->sregs[S_CS].limit)
            raise_gp(in, 0);
        s->eip = offset;
        add_esp(s, 2 * opsize + extra);
        return;
    }
    uint32_t lo, hi;
    unsigned rpl = check_return_cs(in, sel, &lo, &hi);
    if (opsize == 2)
        offset &= 0xffff;
    if (rpl == (unsigned)cpl_of(s)) {
        commit_cs(in, sel, lo, hi, rpl, offset);
        add_esp(s, 2 * opsize + extra);
        return;
    }
    uint32_t new_esp = stack_peek(in, 2 * opsize + extra, opsize);
    uint16_t ss_sel = (uint16_t)stack_peek(in, 3 * opsize + extra, 2);
    struct x86_segment new_ss;
    check_return_ss(in, ss_sel, rpl, &new_ss);
    commit_cs(in, sel, lo, hi, rpl, offset);
    s->sregs[S_SS] = new_ss;
    if (new_ss.attrib & X86_DESC_DB)
        s->regs[R_ESP] = new_esp + extra;
    else
        s->regs[R_ESP] = (s->regs[R_ESP] & 0xffff0000u) | ((new_esp + extra) & 0xffff);
    invalidate_segments_for_cpl(in);
}

/* IRET from protected mode back to a virtual-8086 task (Intel SDM vol. 2,
 * IRET, "RETURN-TO-VIRTUAL-8086-MODE"). */
static void return_to_v86(struct interp *in, uint32_t eip, uint16_t cs, uint32_t flags)
{
    struct x86_state *s = &in->state;
    uint32_t esp = stack_peek(in, 12, 4);
    uint16_t ss = (uint16_t)stack_peek(in, 16, 4);
    uint16_t es = (uint16_t)stack_peek(in, 20, 4);
    uint16_t ds = (uint16_t)stack_peek(in, 24, 4);
    uint16_t fs = (uint16_t)stack_peek(in, 28, 4);
    uint16_t gs = (uint16_t)stack_peek(in, 32, 4);
    set_eflags_raw(s, flags);
    load_segment_real(in, S_CS, cs);
    load_segment_real(in, S_SS, ss);
    load_segment_real(in, S_ES, es);
    load_segment_real(in, S_DS, ds);
    load_segment_real(in, S_FS, fs);
    load_segment_real(in, S_GS, gs);
    s->regs[R_ESP] = esp;
    s->eip = eip & 0xffff;
}

void interrupt_return(struct interp *in, unsigned opsize)
{
    struct x86_state *s = &in->state;
    uint32_t fmask = opsize == 4 ? 0xffffffffu : 0xffffu;
    if (!(s->cr0 & X86_CR0_PE)) {
        uint32_t eip = stack_peek(in, 0, opsize);
        uint16_t cs = (uint16_t)stack_peek(in, opsize, 2);
        uint32_t flags = stack_peek(in, 2 * opsize, opsize);
        if (opsize == 2)
            eip &= 0xffff;
        load_segment_real(in, S_CS, cs);
        if (eip > s->sregs[S_CS].limit)
            raise_gp(in, 0);
        add_esp(s, 3 * opsize);
        /* Real mode IRET may change every flag but VM, VIF and VIP. */
        uint32_t keep = X86_FLAG_VM | X86_FLAG_VIF | X86_FLAG_VIP | ~fmask;
        /* The 286 in real mode keeps IOPL, NT and bit 15 clear. */
        if (model_286(in))
            flags &= ~0xf000u;
        set_eflags_raw(s, (s->eflags & keep) | (flags & ~keep));
        s->eip = eip;
        s->nmi_blocked = false;
        return;
    }
    if (s->eflags & X86_FLAG_VM) {
        if (iopl_of(s) < 3)
            raise_gp(in, 0);
        uint32_t eip = stack_peek(in, 0, opsize);
        uint16_t cs = (uint16_t)stack_peek(in, opsize, 2);
        uint32_t flags = stack_peek(in, 2 * opsize, opsize);
        if (opsize == 2)
            eip &= 0xffff;
        if (eip > 0xffff)
            raise_gp(in, 0);
        load_segment_real(in, S_CS, cs);
        add_esp(s, 3 * opsize);
        uint32_t keep = X86_FLAG_VM | X86_FLAG_IOPL | X86_FLAG_VIF | X86_FLAG_VIP | ~fmask;
        set_eflags_raw(s, (s->eflags & keep) | (flags & ~keep));
        s->eip = eip;
        s->nmi_blocked = false;
        return;
    }
    if (s->eflags & X86_FLAG_NT) {
        /* Return to the task that called or interrupted this one. */
        uint16_t link = (uint16_t)linear_read(in, s->tr.base, 2, true);
        uint32_t lo, hi;
        if (link & 4)
            raise_exception(in, X86_EXC_TS, link & 0xfffc);
        descriptor_read(in, link, &lo, &hi, X86_EXC_TS);
        unsigned type = DESC_TYPE(hi);
        if (type != 0x03 && type != 0x0b)
            raise_exception(in, X86_EXC_TS, link & 0xfffc);
        if (!DESC_P(hi))
            raise_exception(in, X86_EXC_NP, link & 0xfffc);
        task_switch(in, link, lo, hi, TASK_IRET, NO_ERROR_CODE, s->eip);
        s->nmi_blocked = false;
        return;
    }
    uint32_t eip = stack_peek(in, 0, opsize);
    uint16_t sel = (uint16_t)stack_peek(in, opsize, 2);
    uint32_t flags = stack_peek(in, 2 * opsize, opsize);
    int cpl = cpl_of(s);
    if (opsize == 4 && (flags & X86_FLAG_VM) && cpl == 0) {
        return_to_v86(in, eip, sel, flags);
        s->nmi_blocked = false;
        return;
    }
    if (opsize == 2)
        eip &= 0xffff;
    uint32_t lo, hi;
    unsigned rpl = check_return_cs(in, sel, &lo, &hi);
    uint32_t changeable = FLAGS_ARITH | X86_FLAG_TF | X86_FLAG_DF | X86_FLAG_NT | X86_FLAG_RF |
                          X86_FLAG_AC | X86_FLAG_ID;
    if (cpl == 0)
        changeable |= X86_FLAG_IOPL | X86_FLAG_VIF | X86_FLAG_VIP;
    if (cpl <= iopl_of(s))
        changeable |= X86_FLAG_IF;
    changeable &= fmask;
    uint32_t new_flags = (s->eflags & ~changeable) | (flags & changeable);
    if (rpl == (unsigned)cpl) {
        commit_cs(in, sel, lo, hi, rpl, eip);
        add_esp(s, 3 * opsize);
    } else {
        uint32_t new_esp = stack_peek(in, 3 * opsize, opsize);
        uint16_t ss_sel = (uint16_t)stack_peek(in, 4 * opsize, 2);
        struct x86_segment new_ss;
        check_return_ss(in, ss_sel, rpl, &new_ss);
        commit_cs(in, sel, lo, hi, rpl, eip);
        s->sregs[S_SS] = new_ss;
        if (new_ss.attrib & X86_DESC_DB)
            s->regs[R_ESP] = new_esp;
        else
            s->regs[R_ESP] = (s->regs[R_ESP] & 0xffff0000u) | (new_esp & 0xffff);
        invalidate_segments_for_cpl(in);
    }
    set_eflags_raw(s, new_flags);
    s->nmi_blocked = false;
}
