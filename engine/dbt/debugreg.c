/* The debug registers (Intel SDM vol. 3, chapter 17 "Debug, Branch
 * Profile, TSC, and Intel Resource Director Technology Features", 17.2-17.3):
 * DR0-DR3 breakpoint addresses, DR6 status, DR7 control.
 *
 * Instruction breakpoints are faults checked before an instruction runs
 * (suppressed by EFLAGS.RF); data and I/O breakpoints are traps: a
 * matching access records its breakpoint and #DB is delivered once the
 * instruction completes, together with a single-step trap if TF was set
 * (DR6 then reports both). The general-detect fault (DR7.GD) is raised by
 * MOV to or from a debug register. */
#include "interp_priv.h"

#define DR7_GD       0x2000u
#define DR6_BD       0x2000u
#define DR7_ENABLES  0xffu
#define RW_EXEC      0u
#define RW_WRITE     1u
#define RW_IO        2u /* with CR4.DE; undefined otherwise */
#define RW_READWRITE 3u

static unsigned bp_rw(uint32_t dr7, unsigned n)
{
    return (dr7 >> (16 + 4 * n)) & 3;
}

/* Length in bytes of breakpoint n (LEN 10 means eight bytes on the
 * processors that define it). */
static unsigned bp_len(uint32_t dr7, unsigned n)
{
    static const unsigned lengths[4] = {1, 2, 8, 4};
    return lengths[(dr7 >> (18 + 4 * n)) & 3];
}

void debug_update(struct interp *in)
{
    const struct x86_state *s = &in->state;
    uint32_t dr7 = s->dr[7];
    uint8_t code = 0, data = 0, io = 0;
    for (unsigned n = 0; n < 4; n++) {
        if (!((dr7 >> (2 * n)) & 3))
            continue;
        switch (bp_rw(dr7, n)) {
        case RW_EXEC:
            code |= 1u << n;
            break;
        case RW_IO:
            /* Undefined without CR4.DE: this CPU then ignores it. */
            if (s->cr4 & X86_CR4_DE)
                io |= 1u << n;
            break;
        default:
            data |= 1u << n;
            break;
        }
    }
    in->debug_code = code;
    in->debug_data = data;
    in->debug_io = io;
}

/* Whether [addr, addr + size) overlaps breakpoint n's range (the address
 * in DRn aligned down to its length). */
static bool bp_overlaps(const struct x86_state *s, unsigned n, uint32_t addr, unsigned size)
{
    unsigned len = bp_len(s->dr[7], n);
    uint32_t start = s->dr[n] & ~(uint32_t)(len - 1);
    return addr - start < len || start - addr < size;
}

void debug_check_code(struct interp *in, uint32_t linear)
{
    struct x86_state *s = &in->state;
    if (s->eflags & X86_FLAG_RF)
        return;
    uint32_t hits = 0;
    for (unsigned n = 0; n < 4; n++)
        if ((in->debug_code >> n) & 1 && s->dr[n] == linear)
            hits |= 1u << n;
    if (hits) {
        s->dr[6] = (s->dr[6] & ~0xfu) | hits;
        s->dr[7] &= ~DR7_GD;
        debug_update(in);
        raise_exception(in, X86_EXC_DB, NO_ERROR_CODE);
    }
}

void debug_check_data(struct interp *in, uint32_t linear, unsigned size, bool write)
{
    const struct x86_state *s = &in->state;
    for (unsigned n = 0; n < 4; n++) {
        if (!((in->debug_data >> n) & 1))
            continue;
        if (!write && bp_rw(s->dr[7], n) == RW_WRITE)
            continue;
        if (bp_overlaps(s, n, linear, size))
            in->debug_hits |= (uint8_t)(1u << n);
    }
}

void debug_check_io(struct interp *in, uint16_t port, unsigned size)
{
    for (unsigned n = 0; n < 4; n++)
        if ((in->debug_io >> n) & 1 && bp_overlaps(&in->state, n, port, size))
            in->debug_hits |= (uint8_t)(1u << n);
}

void debug_check_access_to_dr(struct interp *in)
{
    struct x86_state *s = &in->state;
    if (!(s->dr[7] & DR7_GD))
        return;
    /* The handler gets the debug registers free to use. */
    s->dr[6] |= DR6_BD;
    s->dr[7] &= ~DR7_GD;
    debug_update(in);
    raise_exception(in, X86_EXC_DB, NO_ERROR_CODE);
}

void debug_trap(struct interp *in, bool single_step)
{
    struct x86_state *s = &in->state;
    uint32_t status = in->debug_hits;
    in->debug_hits = 0;
    if (single_step)
        status |= 0x4000; /* BS */
    s->dr[6] = (s->dr[6] & ~0xfu) | status;
    s->dr[7] &= ~DR7_GD;
    debug_update(in);
    deliver_event(in, X86_EXC_DB, EVENT_EXCEPTION, NO_ERROR_CODE, s->eip);
}
