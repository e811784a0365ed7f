/* Hardware task switching through 16- and 32-bit TSSs, for JMP, CALL, INT
 * (task gates) and IRET with NT set (Intel SDM vol. 3, 7.3 "Task
 * Switching", table 7-1 for the checks and their order). */
#include "interp_priv.h"

#define TSS_BUSY 0x200u

struct tss_image {
    uint32_t cr3, eip, eflags;
    uint32_t regs[X86_NR_REGS];
    uint16_t sregs[X86_NR_SREGS];
    uint16_t ldt;
};

static bool tss_is_32(uint32_t hi)
{
    return (hi >> 8) & 0x8;
}

static void set_busy(struct interp *in, uint16_t sel, bool busy)
{
    uint32_t addr = in->state.gdtr.base + (sel & ~7u) + 4;
    uint32_t hi = linear_read(in, addr, 4, true);
    hi = busy ? hi | TSS_BUSY : hi & ~TSS_BUSY;
    linear_write(in, addr, 4, hi, true);
}

static void save_state(struct interp *in, uint32_t eflags, uint32_t eip)
{
    struct x86_state *s = &in->state;
    uint32_t base = s->tr.base;
    bool big = tss_is_32((uint32_t)s->tr.attrib << 8);
    if (big) {
        linear_write(in, base + 0x20, 4, eip, true);
        linear_write(in, base + 0x24, 4, eflags, true);
        for (int r = 0; r < X86_NR_REGS; r++)
            linear_write(in, base + 0x28 + 4 * (uint32_t)r, 4, s->regs[r], true);
        for (int r = 0; r < X86_NR_SREGS; r++)
            linear_write(in, base + 0x48 + 4 * (uint32_t)r, 2, s->sregs[r].selector, true);
    } else {
        linear_write(in, base + 0x0e, 2, eip, true);
        linear_write(in, base + 0x10, 2, eflags, true);
        for (int r = 0; r < X86_NR_REGS; r++)
            linear_write(in, base + 0x12 + 2 * (uint32_t)r, 2, s->regs[r], true);
        for (int r = 0; r < 4; r++)
            linear_write(in, base + 0x22 + 2 * (uint32_t)r, 2, s->sregs[r].selector, true);
    }
}

static void load_image(struct interp *in, uint32_t base, bool big, struct tss_image *t)
{
    if (big) {
        t->cr3 = linear_read(in, base + 0x1c, 4, true);
        t->eip = linear_read(in, base + 0x20, 4, true);
        t->eflags = linear_read(in, base + 0x24, 4, true);
        for (int r = 0; r < X86_NR_REGS; r++)
            t->regs[r] = linear_read(in, base + 0x28 + 4 * (uint32_t)r, 4, true);
        for (int r = 0; r < X86_NR_SREGS; r++)
            t->sregs[r] = (uint16_t)linear_read(in, base + 0x48 + 4 * (uint32_t)r, 2, true);
        t->ldt = (uint16_t)linear_read(in, base + 0x60, 2, true);
    } else {
        const struct x86_state *s = &in->state;
        t->cr3 = s->cr3;
        t->eip = linear_read(in, base + 0x0e, 2, true);
        t->eflags = linear_read(in, base + 0x10, 2, true);
        for (int r = 0; r < X86_NR_REGS; r++)
            t->regs[r] = 0xffff0000u | linear_read(in, base + 0x12 + 2 * (uint32_t)r, 2, true);
        for (int r = 0; r < 4; r++)
            t->sregs[r] = (uint16_t)linear_read(in, base + 0x22 + 2 * (uint32_t)r, 2, true);
        t->sregs[S_FS] = t->sregs[S_GS] = 0;
        t->ldt = (uint16_t)linear_read(in, base + 0x2a, 2, true);
    }
}

static void load_ldt_for_task(struct interp *in, uint16_t sel)
{
    struct x86_state *s = &in->state;
    if ((sel & ~3u) == 0) {
        s->ldtr = (struct x86_segment){.selector = sel};
        return;
    }
    uint32_t lo, hi;
    if ((sel & 4) || !descriptor_try_read(in, sel, &lo, &hi) || ((hi >> 8) & 0x1f) != 0x02)
        raise_exception(in, X86_EXC_TS, sel & 0xfffc);
    if (!(hi & 0x8000))
        raise_exception(in, X86_EXC_TS, sel & 0xfffc);
    descriptor_to_segment(&s->ldtr, sel, lo, hi);
}

static void load_cs_for_task(struct interp *in, uint16_t sel)
{
    struct x86_state *s = &in->state;
    uint32_t lo, hi;
    if ((sel & ~3u) == 0)
        raise_exception(in, X86_EXC_TS, sel & 0xfffc);
    descriptor_read(in, sel, &lo, &hi, X86_EXC_TS);
    unsigned type = (hi >> 8) & 0x1f;
    unsigned dpl = (hi >> 13) & 3;
    if ((type & 0x18) != 0x18)
        raise_exception(in, X86_EXC_TS, sel & 0xfffc);
    if ((type & 0x4) ? dpl > (sel & 3u) : dpl != (sel & 3u))
        raise_exception(in, X86_EXC_TS, sel & 0xfffc);
    if (!(hi & 0x8000))
        raise_exception(in, X86_EXC_NP, sel & 0xfffc);
    descriptor_set_accessed(in, sel, hi);
    descriptor_to_segment(&s->sregs[S_CS], sel, lo, hi | 0x100);
}

void task_switch(struct interp *in, uint16_t selector, uint32_t desc_lo, uint32_t desc_hi,
                 enum task_switch_reason reason, int32_t error, uint32_t return_eip)
{
    struct x86_state *s = &in->state;
    unsigned type = (desc_hi >> 8) & 0x1f;
    bool busy = type == 0x03 || type == 0x0b;
    if (type != 0x01 && type != 0x03 && type != 0x09 && type != 0x0b)
        raise_gp(in, selector & 0xfffc);
    if (reason == TASK_IRET ? !busy : busy)
        raise_gp(in, selector & 0xfffc);
    if (!(desc_hi & 0x8000))
        raise_exception(in, X86_EXC_NP, selector & 0xfffc);
    struct x86_segment new_tr;
    descriptor_to_segment(&new_tr, selector, desc_lo, desc_hi);
    bool big = tss_is_32(desc_hi);
    if (new_tr.limit < (big ? 0x67u : 0x2bu))
        raise_exception(in, X86_EXC_TS, selector & 0xfffc);

    /* Make sure both TSSs are writable before anything changes. */
    uint32_t old_size = tss_is_32((uint32_t)s->tr.attrib << 8) ? 0x68 : 0x2c;
    linear_probe_write(in, s->tr.base, old_size, true);
    linear_probe_write(in, new_tr.base, big ? 0x68 : 0x2c, true);

    struct tss_image t;
    load_image(in, new_tr.base, big, &t);

    uint32_t old_flags = s->eflags;
    if (reason == TASK_IRET)
        old_flags &= ~X86_FLAG_NT;
    save_state(in, old_flags, return_eip);
    if (reason == TASK_JMP || reason == TASK_IRET)
        set_busy(in, s->tr.selector, false);
    if (reason == TASK_CALL || reason == TASK_INT) {
        linear_write(in, new_tr.base, 2, s->tr.selector, true);
        t.eflags |= X86_FLAG_NT;
    }
    if (reason != TASK_IRET)
        set_busy(in, selector, true);
    new_tr.attrib |= TSS_BUSY >> 8;
    s->tr = new_tr;
    s->cr0 |= X86_CR0_TS;

    /* The commit point: from here on, faults belong to the new task. */
    if (big && (s->cr0 & X86_CR0_PG)) {
        s->cr3 = t.cr3;
        tlb_flush(in, false);
    }
    set_eflags_raw(s, big ? t.eflags : (s->eflags & 0xffff0000u) | (t.eflags & 0xffff));
    s->eip = big ? t.eip : t.eip & 0xffff;
    for (int r = 0; r < X86_NR_REGS; r++)
        s->regs[r] = big ? t.regs[r] : (s->regs[r] & 0xffff0000u) | (t.regs[r] & 0xffff);
    for (int r = 0; r < X86_NR_SREGS; r++)
        s->sregs[r].selector = t.sregs[r];
    s->ldtr.selector = t.ldt;
    /* Until validated, the new task's segments are unusable, with the
     * privilege level its CS selector gives. */
    unsigned cpl = t.sregs[S_CS] & 3;
    for (int r = 0; r < X86_NR_SREGS; r++) {
        s->sregs[r].attrib = r == S_SS ? (uint16_t)(cpl << X86_DESC_DPL_SHIFT) : 0;
        s->sregs[r].base = 0;
        s->sregs[r].limit = 0;
    }
    in->snapshot.eip = s->eip;
    in->snapshot.eflags = s->eflags;
    for (int r = 0; r < X86_NR_REGS; r++)
        in->snapshot.regs[r] = s->regs[r];
    for (int r = 0; r < X86_NR_SREGS; r++)
        in->snapshot.sregs[r] = s->sregs[r];

    load_ldt_for_task(in, t.ldt);
    if (s->eflags & X86_FLAG_VM) {
        for (int r = 0; r < X86_NR_SREGS; r++)
            load_segment_real(in, r, t.sregs[r]);
    } else {
        load_cs_for_task(in, t.sregs[S_CS]);
        load_segment_for_task(in, S_SS, t.sregs[S_SS]);
        load_segment_for_task(in, S_DS, t.sregs[S_DS]);
        load_segment_for_task(in, S_ES, t.sregs[S_ES]);
        load_segment_for_task(in, S_FS, t.sregs[S_FS]);
        load_segment_for_task(in, S_GS, t.sregs[S_GS]);
    }
    if (s->eip > s->sregs[S_CS].limit)
        raise_gp(in, 0);
    if (error >= 0)
        push(in, big ? 4 : 2, (uint32_t)error);
    for (int r = 0; r < X86_NR_SREGS; r++)
        in->snapshot.sregs[r] = s->sregs[r];
}
