/* Exceptions and interrupts: unwinding a faulting instruction, the
 * double-fault rules, and delivery through the real-mode IVT or the
 * protected-mode IDT with its gates and stack switches (Intel SDM vol. 3,
 * chapter 6 "Interrupt and Exception Handling", sections 6.12-6.15 and
 * 20.3 for virtual-8086 mode). */
#include "interp_priv.h"

_Noreturn void raise_exception(struct interp *in, int vector, int32_t error)
{
    in->fault_vector = vector;
    in->fault_error = error;
    __builtin_longjmp(in->fault_jmp, 1);
}

static bool contributory(int vector)
{
    return vector == X86_EXC_DE || (vector >= X86_EXC_TS && vector <= X86_EXC_GP);
}

static bool has_error_code(int vector)
{
    return vector == X86_EXC_DF || (vector >= X86_EXC_TS && vector <= X86_EXC_PF) ||
           vector == X86_EXC_AC;
}

void handle_raised_exception(struct interp *in)
{
    struct x86_state *s = &in->state;
    const struct interp_snapshot *snap = &in->snapshot;
    for (int r = 0; r < X86_NR_REGS; r++)
        s->regs[r] = snap->regs[r];
    s->eip = snap->eip;
    s->eflags = snap->eflags;
    for (int r = 0; r < X86_NR_SREGS; r++)
        s->sregs[r] = snap->sregs[r];

    int vector = in->fault_vector;
    int32_t error = in->fault_error;
    int first = in->delivering;
    if (first >= 0) {
        if (first == X86_EXC_DF) {
            /* A fault while delivering a double fault: triple fault. */
            in->delivering = -1;
            s->shutdown = true;
            return;
        }
        if ((contributory(first) && contributory(vector)) ||
            (first == X86_EXC_PF && (contributory(vector) || vector == X86_EXC_PF))) {
            vector = X86_EXC_DF;
            error = 0;
        }
    }
    if (!has_error_code(vector))
        error = NO_ERROR_CODE;
    /* A fault's EFLAGS image has RF set, so that the restarted instruction
     * does not report its instruction breakpoint again; #DB's does not
     * (Intel SDM vol. 3, 17.3.1.1). Delivery clears RF again. */
    if (vector != X86_EXC_DB)
        s->eflags |= X86_FLAG_RF;
    in->delivering = vector;
    deliver_event(in, vector, EVENT_EXCEPTION, error, s->eip);
    in->delivering = -1;
}

static void deliver_real(struct interp *in, int vector, uint32_t return_eip)
{
    struct x86_state *s = &in->state;
    uint32_t offset = (uint32_t)vector * 4;
    if (offset + 3 > s->idtr.limit)
        raise_gp(in, (uint32_t)vector * 8 + 2);
    uint16_t ip = (uint16_t)linear_read(in, s->idtr.base + offset, 2, true);
    uint16_t cs = (uint16_t)linear_read(in, s->idtr.base + offset + 2, 2, true);
    push(in, 2, s->eflags);
    push(in, 2, s->sregs[S_CS].selector);
    push(in, 2, return_eip);
    s->eflags &= ~(X86_FLAG_IF | X86_FLAG_TF | X86_FLAG_AC | X86_FLAG_RF);
    load_segment_real(in, S_CS, cs);
    s->eip = ip;
}

/* Reads the stack pointer for privilege level dpl from the current TSS. */
void tss_stack(struct interp *in, unsigned dpl, uint16_t *ss, uint32_t *esp, int ext)
{
    struct x86_state *s = &in->state;
    unsigned type = s->tr.attrib & X86_DESC_TYPE_MASK;
    uint32_t error = (s->tr.selector & 0xfffc) | (uint32_t)ext;
    if (type == 0x9 || type == 0xb) {
        uint32_t off = 4 + dpl * 8;
        if (off + 5 > s->tr.limit)
            raise_exception(in, X86_EXC_TS, (int32_t)error);
        *esp = linear_read(in, s->tr.base + off, 4, true);
        *ss = (uint16_t)linear_read(in, s->tr.base + off + 4, 2, true);
    } else {
        uint32_t off = 2 + dpl * 4;
        if (off + 3 > s->tr.limit)
            raise_exception(in, X86_EXC_TS, (int32_t)error);
        *esp = linear_read(in, s->tr.base + off, 2, true);
        *ss = (uint16_t)linear_read(in, s->tr.base + off + 2, 2, true);
    }
}

void check_new_stack(struct interp *in, uint16_t ss_sel, unsigned dpl, int ext,
                     struct x86_segment *out)
{
    uint32_t error = (ss_sel & 0xfffc) | (uint32_t)ext;
    if ((ss_sel & ~3u) == 0)
        raise_exception(in, X86_EXC_TS, ext);
    uint32_t lo, hi;
    if (!descriptor_try_read(in, ss_sel, &lo, &hi))
        raise_exception(in, X86_EXC_TS, (int32_t)error);
    unsigned type = (hi >> 8) & 0x1f;
    if ((ss_sel & 3) != dpl || ((hi >> 13) & 3) != dpl || (type & 0x1a) != 0x12)
        raise_exception(in, X86_EXC_TS, (int32_t)error);
    if (!(hi & 0x8000))
        raise_exception(in, X86_EXC_SS, (int32_t)error);
    descriptor_set_accessed(in, ss_sel, hi);
    descriptor_to_segment(out, ss_sel, lo, hi | 0x100);
}

static void deliver_protected(struct interp *in, int vector, enum event_kind kind, int32_t error,
                              uint32_t return_eip)
{
    struct x86_state *s = &in->state;
    int ext = (kind == EVENT_EXTERNAL || kind == EVENT_EXCEPTION) ? 1 : 0;
    uint32_t idt_error = (uint32_t)vector * 8 + 2 + (uint32_t)ext;
    if ((uint32_t)vector * 8 + 7 > s->idtr.limit)
        raise_gp(in, idt_error);
    uint32_t glo = linear_read(in, s->idtr.base + (uint32_t)vector * 8, 4, true);
    uint32_t ghi = linear_read(in, s->idtr.base + (uint32_t)vector * 8 + 4, 4, true);
    unsigned gtype = (ghi >> 8) & 0x1f;
    unsigned gdpl = (ghi >> 13) & 3;
    int cpl = cpl_of(s);
    if (gtype != 0x05 && gtype != 0x06 && gtype != 0x07 && gtype != 0x0e && gtype != 0x0f)
        raise_gp(in, idt_error);
    if (kind == EVENT_SOFTWARE && gdpl < (unsigned)cpl)
        raise_gp(in, idt_error);
    if (!(ghi & 0x8000))
        raise_exception(in, X86_EXC_NP, (int32_t)idt_error);

    if (gtype == 0x05) {
        uint16_t tss_sel = (uint16_t)(glo >> 16);
        uint32_t lo, hi;
        if (tss_sel & 4)
            raise_exception(in, X86_EXC_TS, (tss_sel & 0xfffc) | ext);
        descriptor_read(in, tss_sel, &lo, &hi, X86_EXC_TS);
        task_switch(in, tss_sel, lo, hi, TASK_INT, kind == EVENT_EXCEPTION ? error : NO_ERROR_CODE,
                    return_eip);
        return;
    }

    bool gate32 = gtype & 0x8;
    bool trap_gate = gtype & 0x1;
    uint16_t sel = (uint16_t)(glo >> 16);
    uint32_t offset = (glo & 0xffff) | (gate32 ? (ghi & 0xffff0000u) : 0);
    uint32_t sel_error = (sel & 0xfffc) | (uint32_t)ext;
    if ((sel & ~3u) == 0)
        raise_gp(in, (uint32_t)ext);
    uint32_t lo, hi;
    if (!descriptor_try_read(in, sel, &lo, &hi))
        raise_gp(in, sel_error);
    unsigned type = (hi >> 8) & 0x1f;
    unsigned dpl = (hi >> 13) & 3;
    if ((type & 0x18) != 0x18 || dpl > (unsigned)cpl)
        raise_gp(in, sel_error);
    if (!(hi & 0x8000))
        raise_exception(in, X86_EXC_NP, (int32_t)sel_error);
    bool conforming = type & 0x4;
    bool v86 = s->eflags & X86_FLAG_VM;
    unsigned size = gate32 ? 4 : 2;
    uint32_t flags = s->eflags;
    bool push_error = kind == EVENT_EXCEPTION && error >= 0;

    struct x86_segment new_cs;
    descriptor_to_segment(&new_cs, sel, lo, hi | 0x100);
    if (!conforming && dpl < (unsigned)cpl) {
        if (v86 && dpl != 0)
            raise_gp(in, sel_error);
        uint16_t ss_sel;
        uint32_t esp;
        tss_stack(in, dpl, &ss_sel, &esp, ext);
        struct x86_segment new_ss;
        check_new_stack(in, ss_sel, dpl, ext, &new_ss);
        int32_t ss_error = (int32_t)((ss_sel & 0xfffc) | (uint32_t)ext);
        if (v86) {
            stack_push_at(in, &new_ss, &esp, size, s->sregs[S_GS].selector, ss_error);
            stack_push_at(in, &new_ss, &esp, size, s->sregs[S_FS].selector, ss_error);
            stack_push_at(in, &new_ss, &esp, size, s->sregs[S_DS].selector, ss_error);
            stack_push_at(in, &new_ss, &esp, size, s->sregs[S_ES].selector, ss_error);
        }
        stack_push_at(in, &new_ss, &esp, size, s->sregs[S_SS].selector, ss_error);
        stack_push_at(in, &new_ss, &esp, size, s->regs[R_ESP], ss_error);
        stack_push_at(in, &new_ss, &esp, size, flags, ss_error);
        stack_push_at(in, &new_ss, &esp, size, s->sregs[S_CS].selector, ss_error);
        stack_push_at(in, &new_ss, &esp, size, return_eip, ss_error);
        if (push_error)
            stack_push_at(in, &new_ss, &esp, size, (uint32_t)error, ss_error);
        if (offset > new_cs.limit)
            raise_gp(in, 0);
        if (v86) {
            for (int r = 0; r < X86_NR_SREGS; r++) {
                if (r != S_CS && r != S_SS)
                    s->sregs[r] = (struct x86_segment){.selector = 0};
            }
        }
        s->sregs[S_SS] = new_ss;
        s->regs[R_ESP] = esp;
        new_cs.selector = (uint16_t)((sel & ~3u) | dpl);
    } else {
        if (v86)
            raise_gp(in, sel_error);
        uint32_t esp = s->regs[R_ESP];
        struct x86_segment ss = s->sregs[S_SS];
        stack_push_at(in, &ss, &esp, size, flags, 0);
        stack_push_at(in, &ss, &esp, size, s->sregs[S_CS].selector, 0);
        stack_push_at(in, &ss, &esp, size, return_eip, 0);
        if (push_error)
            stack_push_at(in, &ss, &esp, size, (uint32_t)error, 0);
        if (offset > new_cs.limit)
            raise_gp(in, 0);
        s->regs[R_ESP] = esp;
        new_cs.selector = (uint16_t)((sel & ~3u) | (unsigned)cpl);
    }
    descriptor_set_accessed(in, sel, hi);
    s->sregs[S_CS] = new_cs;
    s->eip = offset;
    s->eflags &= ~(X86_FLAG_TF | X86_FLAG_NT | X86_FLAG_VM | X86_FLAG_RF);
    if (!trap_gate)
        s->eflags &= ~X86_FLAG_IF;
}

void deliver_event(struct interp *in, int vector, enum event_kind kind, int32_t error,
                   uint32_t return_eip)
{
    struct x86_state *s = &in->state;
    s->halted = false;
    in->event_delivered = true;
    if (!(s->cr0 & X86_CR0_PE))
        deliver_real(in, vector, return_eip);
    else
        deliver_protected(in, vector, kind, error, return_eip);
}
