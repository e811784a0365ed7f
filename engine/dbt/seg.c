/* Segmentation: descriptor tables, segment register loads with their
 * protection checks, limit and type checks on every access, and the stack
 * (Intel SDM vol. 3, chapter 3 "Protected-Mode Memory Management" and
 * chapter 5 "Protection"). */
#include "interp_priv.h"

#define TYPE_CODE       0x8u
#define TYPE_CONFORMING 0x4u /* code */
#define TYPE_READABLE   0x2u /* code */
#define TYPE_EXPAND_DN  0x4u /* data */
#define TYPE_WRITABLE   0x2u /* data */

static _Noreturn void segment_fault(struct interp *in, int sreg)
{
    /* In real mode the 286 reports every segment overrun, the stack's
     * included, as interrupt 13 (80286 Programmer's Reference Manual,
     * real-address-mode exceptions); the 386 made the stack's #SS. */
    if (sreg == S_SS && !(model_286(in) && !in_pmode(&in->state)))
        raise_exception(in, X86_EXC_SS, 0);
    raise_exception(in, X86_EXC_GP, 0);
}

uint32_t seg_linear(struct interp *in, int sreg, uint32_t offset, unsigned size, bool write)
{
    const struct x86_state *s = &in->state;
    const struct x86_segment *seg = &s->sregs[sreg];
    uint64_t last = (uint64_t)offset + size - 1;
    if (likely(!(s->cr0 & X86_CR0_PE) || (s->eflags & X86_FLAG_VM))) {
        /* Real and virtual-8086 mode check only the limit (which real mode
         * may have inherited from protected mode: "unreal" mode). */
        if (unlikely(last > seg->limit))
            segment_fault(in, sreg);
        return seg->base + offset;
    }
    uint16_t attrib = seg->attrib;
    if (unlikely(!(attrib & X86_DESC_P)))
        segment_fault(in, sreg);
    unsigned type = attrib & X86_DESC_TYPE_MASK;
    if (type & TYPE_CODE) {
        if (write || !(type & TYPE_READABLE))
            segment_fault(in, sreg);
    } else if (write && !(type & TYPE_WRITABLE)) {
        segment_fault(in, sreg);
    }
    if (!(type & TYPE_CODE) && (type & TYPE_EXPAND_DN)) {
        uint64_t upper = (attrib & X86_DESC_DB) ? 0xffffffffu : 0xffffu;
        if (offset <= seg->limit || last > upper)
            segment_fault(in, sreg);
    } else if (last > seg->limit) {
        segment_fault(in, sreg);
    }
    return seg->base + offset;
}

uint32_t mem_read(struct interp *in, int sreg, uint32_t offset, unsigned size)
{
    return linear_read(in, seg_linear(in, sreg, offset, size, false), size, false);
}

void mem_write(struct interp *in, int sreg, uint32_t offset, unsigned size, uint32_t value)
{
    linear_write(in, seg_linear(in, sreg, offset, size, true), size, value, false);
}

bool descriptor_try_read(struct interp *in, uint16_t selector, uint32_t *lo, uint32_t *hi)
{
    const struct x86_state *s = &in->state;
    uint32_t base, limit;
    if (selector & 4) {
        if ((s->ldtr.selector & ~3u) == 0 || !(s->ldtr.attrib & X86_DESC_P))
            return false;
        base = s->ldtr.base;
        limit = s->ldtr.limit;
    } else {
        base = s->gdtr.base;
        limit = s->gdtr.limit;
    }
    uint32_t offset = selector & ~7u;
    if (offset + 7 > limit)
        return false;
    *lo = linear_read(in, base + offset, 4, true);
    *hi = linear_read(in, base + offset + 4, 4, true);
    return true;
}

void descriptor_read(struct interp *in, uint16_t selector, uint32_t *lo, uint32_t *hi, int vector)
{
    if (!descriptor_try_read(in, selector, lo, hi))
        raise_exception(in, vector, selector & 0xfffc);
}

void descriptor_set_accessed(struct interp *in, uint16_t selector, uint32_t hi)
{
    if (hi & 0x100)
        return;
    const struct x86_state *s = &in->state;
    uint32_t base = (selector & 4) ? s->ldtr.base : s->gdtr.base;
    linear_write(in, base + (selector & ~7u) + 4, 4, hi | 0x100, true);
}

void descriptor_to_segment(struct x86_segment *seg, uint16_t selector, uint32_t lo, uint32_t hi)
{
    seg->selector = selector;
    seg->base = (lo >> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000u);
    uint32_t limit = (lo & 0xffff) | (hi & 0xf0000);
    if (hi & 0x00800000u)
        limit = (limit << 12) | 0xfff;
    seg->limit = limit;
    seg->attrib = (hi >> 8) & 0xf0ff;
}

void load_segment_real(struct interp *in, int sreg, uint16_t selector)
{
    struct x86_segment *seg = &in->state.sregs[sreg];
    seg->selector = selector;
    seg->base = (uint32_t)selector << 4;
    if (in->state.eflags & X86_FLAG_VM) {
        seg->limit = 0xffff;
        seg->attrib =
            X86_DESC_P | X86_DESC_S | (3 << X86_DESC_DPL_SHIFT) | (sreg == S_CS ? 0xb : 0x3);
    } else if (sreg == S_CS) {
        /* A far transfer in real mode makes CS a present, readable code
         * segment again, whatever protected mode left in its cache. */
        seg->attrib = (seg->attrib & ~(X86_DESC_TYPE_MASK | X86_DESC_DPL_MASK)) | X86_DESC_P |
                      X86_DESC_S | 0xb;
    }
}

/* The checks shared by MOV/POP to a segment register and task switches;
 * vector is #GP for the former and #TS for the latter. */
static void load_segment_checked(struct interp *in, int sreg, uint16_t selector, int vector)
{
    struct x86_state *s = &in->state;
    int cpl = cpl_of(s);
    unsigned rpl = selector & 3;
    uint32_t lo, hi;
    if ((selector & ~3u) == 0) {
        if (sreg == S_SS)
            raise_exception(in, vector, 0);
        /* A null selector loads an unusable segment that faults on use. */
        s->sregs[sreg] = (struct x86_segment){.selector = selector};
        return;
    }
    descriptor_read(in, selector, &lo, &hi, vector);
    uint32_t error = selector & 0xfffc;
    unsigned type = (hi >> 8) & 0xf;
    unsigned dpl = (hi >> 13) & 3;
    bool present = hi & 0x8000;
    if (!(hi & 0x1000))
        raise_exception(in, vector, (int32_t)error);
    if (sreg == S_SS) {
        if (rpl != (unsigned)cpl || dpl != (unsigned)cpl || (type & TYPE_CODE) ||
            !(type & TYPE_WRITABLE))
            raise_exception(in, vector, (int32_t)error);
        if (!present)
            raise_exception(in, X86_EXC_SS, (int32_t)error);
    } else {
        if ((type & TYPE_CODE) && !(type & TYPE_READABLE))
            raise_exception(in, vector, (int32_t)error);
        bool conforming_code = (type & TYPE_CODE) && (type & TYPE_CONFORMING);
        if (!conforming_code && (rpl > dpl || (unsigned)cpl > dpl))
            raise_exception(in, vector, (int32_t)error);
        if (!present)
            raise_exception(in, X86_EXC_NP, (int32_t)error);
    }
    descriptor_set_accessed(in, selector, hi);
    descriptor_to_segment(&s->sregs[sreg], selector, lo, hi | 0x100);
}

void load_segment(struct interp *in, int sreg, uint16_t selector)
{
    const struct x86_state *s = &in->state;
    if (!(s->cr0 & X86_CR0_PE) || (s->eflags & X86_FLAG_VM))
        load_segment_real(in, sreg, selector);
    else
        load_segment_checked(in, sreg, selector, X86_EXC_GP);
}

void load_segment_for_task(struct interp *in, int sreg, uint16_t selector)
{
    load_segment_checked(in, sreg, selector, X86_EXC_TS);
}

void invalidate_segments_for_cpl(struct interp *in)
{
    struct x86_state *s = &in->state;
    static const int data_sregs[] = {S_ES, S_DS, S_FS, S_GS};
    unsigned cpl = (unsigned)cpl_of(s);
    for (unsigned n = 0; n < 4; n++) {
        struct x86_segment *seg = &s->sregs[data_sregs[n]];
        unsigned type = seg->attrib & X86_DESC_TYPE_MASK;
        unsigned dpl = (seg->attrib & X86_DESC_DPL_MASK) >> X86_DESC_DPL_SHIFT;
        bool conforming_code = (type & TYPE_CODE) && (type & TYPE_CONFORMING);
        if ((seg->attrib & X86_DESC_P) && !conforming_code && dpl < cpl)
            *seg = (struct x86_segment){.selector = 0};
    }
}

void stack_push_at(struct interp *in, const struct x86_segment *ss, uint32_t *esp, unsigned size,
                   uint32_t value, int32_t fault_error)
{
    bool big = ss->attrib & X86_DESC_DB;
    uint32_t sp = (*esp - size) & (big ? 0xffffffffu : 0xffffu);
    bool expand_down = (ss->attrib & (TYPE_CODE | TYPE_EXPAND_DN)) == TYPE_EXPAND_DN &&
                       (in->state.cr0 & X86_CR0_PE) && !(in->state.eflags & X86_FLAG_VM);
    uint64_t last = (uint64_t)sp + size - 1;
    bool bad =
        expand_down ? (sp <= ss->limit || last > (big ? 0xffffffffu : 0xffffu)) : last > ss->limit;
    if (bad)
        raise_exception(in, X86_EXC_SS, fault_error);
    unsigned dpl = (ss->attrib & X86_DESC_DPL_MASK) >> X86_DESC_DPL_SHIFT;
    bool system = (in->state.cr0 & X86_CR0_PE) && !(in->state.eflags & X86_FLAG_VM) && dpl < 3;
    linear_write(in, ss->base + sp, size, value, system);
    *esp = big ? sp : (*esp & 0xffff0000u) | sp;
}

void push(struct interp *in, unsigned size, uint32_t value)
{
    struct x86_state *s = &in->state;
    uint32_t esp = s->regs[R_ESP];
    if (stack_size(s) == 4) {
        mem_write(in, S_SS, esp - size, size, value);
        s->regs[R_ESP] = esp - size;
    } else {
        uint32_t sp = (esp - size) & 0xffff;
        mem_write(in, S_SS, sp, size, value);
        s->regs[R_ESP] = (esp & 0xffff0000u) | sp;
    }
}

uint32_t pop(struct interp *in, unsigned size)
{
    struct x86_state *s = &in->state;
    uint32_t esp = s->regs[R_ESP];
    if (stack_size(s) == 4) {
        uint32_t v = mem_read(in, S_SS, esp, size);
        s->regs[R_ESP] = esp + size;
        return v;
    }
    uint32_t v = mem_read(in, S_SS, esp & 0xffff, size);
    s->regs[R_ESP] = (esp & 0xffff0000u) | ((esp + size) & 0xffff);
    return v;
}

uint32_t stack_peek(struct interp *in, uint32_t offset, unsigned size)
{
    struct x86_state *s = &in->state;
    if (stack_size(s) == 4)
        return mem_read(in, S_SS, s->regs[R_ESP] + offset, size);
    return mem_read(in, S_SS, (s->regs[R_ESP] + offset) & 0xffff, size);
}
