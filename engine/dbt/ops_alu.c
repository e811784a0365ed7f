/* Integer arithmetic and logic with their flags: ADD..CMP, INC/DEC, NEG,
 * MUL/DIV, shifts and rotates, double shifts, bit tests and scans, BCD
 * adjustments, XADD, CMPXCHG and CMPXCHG8B (Intel SDM vol. 2 and vol. 1,
 * appendix A "EFLAGS Cross-Reference"). Flags the manuals leave undefined
 * get the values a P6 produces where known, otherwise a consistent choice. */
#include "interp_priv.h"

static inline uint32_t parity(uint32_t r)
{
    return __builtin_parity(r & 0xff) ? 0 : X86_FLAG_PF;
}

/* ZF, SF and PF of a result. */
static inline uint32_t szp(uint32_t r, unsigned size)
{
    uint32_t f = parity(r);
    if ((r & size_mask(size)) == 0)
        f |= X86_FLAG_ZF;
    if (r & sign_bit(size))
        f |= X86_FLAG_SF;
    return f;
}

static inline void set_flags(struct x86_state *s, uint32_t mask, uint32_t value)
{
    s->eflags = (s->eflags & ~mask) | (value & mask);
}

static uint32_t alu_add(struct x86_state *s, uint32_t a, uint32_t b, uint32_t carry, unsigned size)
{
    uint32_t mask = size_mask(size);
    uint64_t wide = (uint64_t)a + b + carry;
    uint32_t r = (uint32_t)wide & mask;
    uint32_t f = szp(r, size) | ((a ^ b ^ r) & X86_FLAG_AF);
    if (wide > mask)
        f |= X86_FLAG_CF;
    if ((a ^ r) & (b ^ r) & sign_bit(size))
        f |= X86_FLAG_OF;
    set_flags(s, FLAGS_ARITH, f);
    return r;
}

static uint32_t alu_sub(struct x86_state *s, uint32_t a, uint32_t b, uint32_t borrow, unsigned size)
{
    uint32_t mask = size_mask(size);
    uint32_t r = (a - b - borrow) & mask;
    uint32_t f = szp(r, size) | ((a ^ b ^ r) & X86_FLAG_AF);
    if ((uint64_t)a < (uint64_t)b + borrow)
        f |= X86_FLAG_CF;
    if ((a ^ b) & (a ^ r) & sign_bit(size))
        f |= X86_FLAG_OF;
    set_flags(s, FLAGS_ARITH, f);
    return r;
}

static uint32_t alu_logic(struct x86_state *s, uint32_t r, unsigned size)
{
    r &= size_mask(size);
    set_flags(s, FLAGS_ARITH, szp(r, size));
    return r;
}

static inline unsigned carry_of(const struct x86_state *s)
{
    return s->eflags & X86_FLAG_CF;
}

static void exec_binary(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->op[0].size;
    uint32_t a = op_read(in, i, 0);
    uint32_t b = op_read(in, i, 1) & size_mask(size);
    uint32_t r;
    switch (i->mnemonic) {
    case ZYDIS_MNEMONIC_ADD:
        r = alu_add(s, a, b, 0, size);
        break;
    case ZYDIS_MNEMONIC_ADC:
        r = alu_add(s, a, b, carry_of(s), size);
        break;
    case ZYDIS_MNEMONIC_SUB:
        r = alu_sub(s, a, b, 0, size);
        break;
    case ZYDIS_MNEMONIC_SBB:
        r = alu_sub(s, a, b, carry_of(s), size);
        break;
    case ZYDIS_MNEMONIC_AND:
        r = alu_logic(s, a & b, size);
        break;
    case ZYDIS_MNEMONIC_OR:
        r = alu_logic(s, a | b, size);
        break;
    case ZYDIS_MNEMONIC_XOR:
        r = alu_logic(s, a ^ b, size);
        break;
    case ZYDIS_MNEMONIC_CMP:
        alu_sub(s, a, b, 0, size);
        return;
    case ZYDIS_MNEMONIC_TEST:
        alu_logic(s, a & b, size);
        return;
    default:
        raise_ud(in);
    }
    op_write(in, i, 0, r);
}

static void exec_inc_dec(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->op[0].size;
    uint32_t cf = s->eflags & X86_FLAG_CF;
    uint32_t a = op_read(in, i, 0);
    uint32_t r =
        i->mnemonic == ZYDIS_MNEMONIC_INC ? alu_add(s, a, 1, 0, size) : alu_sub(s, a, 1, 0, size);
    s->eflags = (s->eflags & ~X86_FLAG_CF) | cf;
    op_write(in, i, 0, r);
}

static void exec_neg(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t a = op_read(in, i, 0);
    op_write(in, i, 0, alu_sub(s, 0, a, 0, i->op[0].size));
}

static void exec_not(struct interp *in, const struct insn *i)
{
    op_write(in, i, 0, ~op_read(in, i, 0));
}

/* --- Multiplication and division ------------------------------------------ */

/* The flags MUL and IMUL leave undefined (SF, ZF, PF, AF), as the 80286
 * leaves them: SF, ZF and PF describe the upper half of the product (AH,
 * DX, or bits 16-31 of a two- and three-operand IMUL's product) and AF is
 * set, on every SingleStepTests vector. */
static uint32_t mul_flags_286(uint32_t high, unsigned size)
{
    return szp(high, size) | X86_FLAG_AF;
}

static void exec_mul(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->op[0].size;
    uint64_t src = op_read(in, i, 0);
    uint32_t f;
    if (size == 1) {
        uint32_t r = (s->regs[R_EAX] & 0xff) * (uint32_t)src;
        reg_set(s, R_EAX, 2, false, r);
        f = szp(r, 1) | ((r >> 8) ? X86_FLAG_CF | X86_FLAG_OF : 0);
        if (model_286(in))
            f = mul_flags_286(r >> 8, 1) | (f & (X86_FLAG_CF | X86_FLAG_OF));
    } else if (size == 2) {
        uint32_t r = (s->regs[R_EAX] & 0xffff) * (uint32_t)src;
        reg_set(s, R_EAX, 2, false, r);
        reg_set(s, R_EDX, 2, false, r >> 16);
        f = szp(r, 2) | ((r >> 16) ? X86_FLAG_CF | X86_FLAG_OF : 0);
        if (model_286(in))
            f = mul_flags_286(r >> 16, 2) | (f & (X86_FLAG_CF | X86_FLAG_OF));
    } else {
        uint64_t r = (uint64_t)s->regs[R_EAX] * src;
        s->regs[R_EAX] = (uint32_t)r;
        s->regs[R_EDX] = (uint32_t)(r >> 32);
        f = szp((uint32_t)r, 4) | ((r >> 32) ? X86_FLAG_CF | X86_FLAG_OF : 0);
    }
    set_flags(s, FLAGS_ARITH, f);
}

/* IMUL's one-, two- and three-operand forms. */
static void exec_imul(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t f;
    if (i->nops == 1) {
        unsigned size = i->op[0].size;
        int64_t src = (int32_t)sign_extend(op_read(in, i, 0), size);
        if (size == 1) {
            int32_t r = (int8_t)s->regs[R_EAX] * (int32_t)src;
            reg_set(s, R_EAX, 2, false, (uint32_t)r);
            f = szp((uint32_t)r, 1) | (r != (int8_t)r ? X86_FLAG_CF | X86_FLAG_OF : 0);
            if (model_286(in))
                f = mul_flags_286((uint32_t)r >> 8, 1) | (f & (X86_FLAG_CF | X86_FLAG_OF));
        } else if (size == 2) {
            int32_t r = (int16_t)s->regs[R_EAX] * (int32_t)src;
            reg_set(s, R_EAX, 2, false, (uint32_t)r);
            reg_set(s, R_EDX, 2, false, (uint32_t)r >> 16);
            f = szp((uint32_t)r, 2) | (r != (int16_t)r ? X86_FLAG_CF | X86_FLAG_OF : 0);
            if (model_286(in))
                f = mul_flags_286((uint32_t)r >> 16, 2) | (f & (X86_FLAG_CF | X86_FLAG_OF));
        } else {
            int64_t r = (int64_t)(int32_t)s->regs[R_EAX] * src;
            s->regs[R_EAX] = (uint32_t)r;
            s->regs[R_EDX] = (uint32_t)((uint64_t)r >> 32);
            f = szp((uint32_t)r, 4) | (r != (int32_t)r ? X86_FLAG_CF | X86_FLAG_OF : 0);
        }
    } else {
        unsigned size = i->op[0].size;
        int n1 = i->nops == 3 ? 1 : 0, n2 = i->nops == 3 ? 2 : 1;
        int64_t a = (int32_t)sign_extend(op_read(in, i, n1), size);
        int64_t b = (int32_t)sign_extend(op_read(in, i, n2), i->op[n2].size);
        int64_t r = a * b;
        bool overflow = r != (int64_t)(int32_t)sign_extend((uint32_t)r, size);
        f = szp((uint32_t)r, size) | (overflow ? X86_FLAG_CF | X86_FLAG_OF : 0);
        if (model_286(in))
            f = mul_flags_286((uint32_t)r >> 16, 2) | (f & (X86_FLAG_CF | X86_FLAG_OF));
        op_write(in, i, 0, (uint32_t)r);
    }
    set_flags(s, FLAGS_ARITH, f);
}

/* The flags DIV and IDIV leave undefined, as the 80286 leaves them after a
 * division that completes (SingleStepTests vectors): SF, ZF and PF describe
 * the remainder and AF is set. CF and OF are equal: for DIV, set unless the
 * last step of the shift-and-subtract loop subtracted without a borrow
 * (the quotient is odd and remainder + divisor fits the operand); for
 * IDIV, set when the divisor is not negative. */
static void div_flags_286(struct x86_state *s, uint32_t remainder, bool carry, unsigned size)
{
    uint32_t f = szp(remainder, size) | X86_FLAG_AF;
    if (carry)
        f |= X86_FLAG_CF | X86_FLAG_OF;
    set_flags(s, FLAGS_ARITH, f);
}

/* Makes the arithmetic flags of the state part of the snapshot a fault
 * restores, for the 286's divide errors, which push the flags the division
 * microcode left. */
static void set_snapshot_flags(struct interp *in)
{
    in->snapshot.eflags = (in->snapshot.eflags & ~FLAGS_ARITH) | (in->state.eflags & FLAGS_ARITH);
}

/* Raises the divide error of a DIV whose quotient does not fit (a zero
 * divisor included), leaving the flags as the 80286's microcode leaves them
 * (SingleStepTests vectors, all 645 such cases of F6.6 and F7.6). The 286
 * finds the overflow only after its shift-and-subtract loop: it first
 * subtracts the divisor from the high half of the dividend without a shift
 * (the comparison that fails on overflow), then shifts the partial
 * remainder left, taking in the low half's bits from the top, and subtracts
 * the divisor whenever the shift carried out or the remainder is not below
 * it. The flags are those of the subtraction of the eighth (sixteenth)
 * step, that is of the partial remainder after the seventh (fifteenth)
 * shift minus the divisor, the step the 286 is in when it gives up. */
static _Noreturn void div_overflow(struct interp *in, uint32_t high, uint32_t low, uint32_t divisor,
                                   unsigned size)
{
    if (model_286(in)) {
        uint32_t mask = size_mask(size), msb = sign_bit(size);
        uint32_t remainder = high;
        if (remainder >= divisor)
            remainder -= divisor;
        for (unsigned step = 1; step < size * 8; step++) {
            bool carry = remainder & msb;
            remainder = ((remainder << 1) | !!(low & msb)) & mask;
            low <<= 1;
            if (step == size * 8 - 1) {
                /* The fault unwinds to the snapshot taken at the instruction
                 * boundary: the flags go there to survive it. */
                alu_sub(&in->state, remainder, divisor, 0, size);
                set_snapshot_flags(in);
            } else if (carry || remainder >= divisor)
                remainder = (remainder - divisor) & mask;
        }
    }
    raise_exception(in, X86_EXC_DE, NO_ERROR_CODE);
}

static void exec_div(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->op[0].size;
    uint64_t divisor = op_read(in, i, 0);
    if (divisor == 0 && size == 4)
        raise_exception(in, X86_EXC_DE, NO_ERROR_CODE);
    if (size == 1) {
        uint32_t n = s->regs[R_EAX] & 0xffff;
        if ((n >> 8) >= divisor)
            div_overflow(in, n >> 8, n & 0xff, (uint32_t)divisor, 1);
        uint32_t q = n / (uint32_t)divisor, r = n % (uint32_t)divisor;
        reg_set(s, R_EAX, 2, false, (r << 8) | q);
        if (model_286(in))
            div_flags_286(s, r, !(q & 1) || r + divisor > 0xff, 1);
    } else if (size == 2) {
        uint32_t n = ((s->regs[R_EDX] & 0xffff) << 16) | (s->regs[R_EAX] & 0xffff);
        if ((n >> 16) >= divisor)
            div_overflow(in, n >> 16, n & 0xffff, (uint32_t)divisor, 2);
        uint32_t q = n / (uint32_t)divisor, r = n % (uint32_t)divisor;
        reg_set(s, R_EAX, 2, false, q);
        reg_set(s, R_EDX, 2, false, r);
        if (model_286(in))
            div_flags_286(s, r, !(q & 1) || r + divisor > 0xffff, 2);
    } else {
        uint64_t n = ((uint64_t)s->regs[R_EDX] << 32) | s->regs[R_EAX];
        uint64_t q = n / divisor, r = n % divisor;
        if (q > 0xffffffffu)
            raise_exception(in, X86_EXC_DE, NO_ERROR_CODE);
        s->regs[R_EAX] = (uint32_t)q;
        s->regs[R_EDX] = (uint32_t)r;
    }
}

/* Raises the divide error of an IDIV, with what is known of the flags the
 * 80286 leaves (SingleStepTests vectors, 741 cases of F6.7 and F7.7): AF is
 * always set; a zero divisor leaves SF, ZF and PF of the low half of the
 * dividend (AL, AX) with CF and OF clear. For a quotient out of range, CF
 * and OF are equal but no rule over the operands has been found for them
 * nor for SF, ZF and PF, which stay as they were (tests/conformance/
 * exceptions-286.txt masks them). */
static _Noreturn void idiv_overflow(struct interp *in, uint32_t low, uint32_t divisor,
                                    unsigned size)
{
    if (model_286(in)) {
        uint32_t f = in->state.eflags | X86_FLAG_AF;
        if (divisor == 0)
            f = szp(low, size) | X86_FLAG_AF;
        set_flags(&in->state, FLAGS_ARITH, f);
        set_snapshot_flags(in);
    }
    raise_exception(in, X86_EXC_DE, NO_ERROR_CODE);
}

static void exec_idiv(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->op[0].size;
    int64_t divisor = (int32_t)sign_extend(op_read(in, i, 0), size);
    if (divisor == 0 && size == 4)
        raise_exception(in, X86_EXC_DE, NO_ERROR_CODE);
    if (size == 1) {
        int64_t n = (int16_t)s->regs[R_EAX];
        if (divisor == 0)
            idiv_overflow(in, (uint32_t)n & 0xff, 0, 1);
        int64_t q = n / divisor, r = n % divisor;
        if (q != (int8_t)q)
            idiv_overflow(in, (uint32_t)n & 0xff, (uint32_t)divisor, 1);
        reg_set(s, R_EAX, 2, false, (((uint32_t)r & 0xff) << 8) | ((uint32_t)q & 0xff));
        if (model_286(in))
            div_flags_286(s, (uint32_t)r & 0xff, divisor >= 0, 1);
    } else if (size == 2) {
        int64_t n = (int32_t)(((s->regs[R_EDX] & 0xffff) << 16) | (s->regs[R_EAX] & 0xffff));
        if (divisor == 0)
            idiv_overflow(in, (uint32_t)n & 0xffff, 0, 2);
        int64_t q = n / divisor, r = n % divisor;
        if (q != (int16_t)q)
            idiv_overflow(in, (uint32_t)n & 0xffff, (uint32_t)divisor, 2);
        reg_set(s, R_EAX, 2, false, (uint32_t)q);
        reg_set(s, R_EDX, 2, false, (uint32_t)r);
        if (model_286(in))
            div_flags_286(s, (uint32_t)r & 0xffff, divisor >= 0, 2);
    } else {
        int64_t n = (int64_t)(((uint64_t)s->regs[R_EDX] << 32) | s->regs[R_EAX]);
        if (n == INT64_MIN && divisor == -1)
            raise_exception(in, X86_EXC_DE, NO_ERROR_CODE);
        int64_t q = n / divisor, r = n % divisor;
        if (q != (int32_t)q)
            raise_exception(in, X86_EXC_DE, NO_ERROR_CODE);
        s->regs[R_EAX] = (uint32_t)q;
        s->regs[R_EDX] = (uint32_t)r;
    }
}

/* --- Shifts and rotates ----------------------------------------------------- */

static void exec_shift(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->op[0].size;
    unsigned bits = size * 8;
    uint32_t mask = size_mask(size);
    uint32_t msb = sign_bit(size);
    uint32_t a = op_read(in, i, 0);
    unsigned count = (i->nops > 1 ? op_read(in, i, 1) : 1) & 0x1f;
    if (count == 0) {
        /* No flags change, but a memory operand is still checked for
         * writability. */
        op_write(in, i, 0, a);
        return;
    }
    uint32_t r, f = s->eflags;
    uint32_t cf = s->eflags & X86_FLAG_CF;
    switch (i->mnemonic) {
    case ZYDIS_MNEMONIC_ROL: {
        unsigned c = count % bits;
        r = c ? ((a << c) | (a >> (bits - c))) & mask : a;
        f = (f & ~(X86_FLAG_CF | X86_FLAG_OF)) | (r & 1 ? X86_FLAG_CF : 0);
        if (((r & msb) != 0) != ((r & 1) != 0))
            f |= X86_FLAG_OF;
        break;
    }
    case ZYDIS_MNEMONIC_ROR: {
        unsigned c = count % bits;
        r = c ? ((a >> c) | (a << (bits - c))) & mask : a;
        f = (f & ~(X86_FLAG_CF | X86_FLAG_OF)) | (r & msb ? X86_FLAG_CF : 0);
        if (((r & msb) != 0) != ((r & (msb >> 1)) != 0))
            f |= X86_FLAG_OF;
        break;
    }
    case ZYDIS_MNEMONIC_RCL: {
        unsigned c = count % (bits + 1);
        uint64_t wide = ((uint64_t)(cf ? 1 : 0) << bits) | a;
        if (c)
            wide = ((wide << c) | (wide >> (bits + 1 - c))) & ((2ull << bits) - 1);
        r = (uint32_t)wide & mask;
        bool newcf = (wide >> bits) & 1;
        f = (f & ~(X86_FLAG_CF | X86_FLAG_OF)) | (newcf ? X86_FLAG_CF : 0);
        if (((r & msb) != 0) != newcf)
            f |= X86_FLAG_OF;
        break;
    }
    case ZYDIS_MNEMONIC_RCR: {
        unsigned c = count % (bits + 1);
        uint64_t wide = ((uint64_t)(cf ? 1 : 0) << bits) | a;
        if (c)
            wide = ((wide >> c) | (wide << (bits + 1 - c))) & ((2ull << bits) - 1);
        r = (uint32_t)wide & mask;
        bool newcf = (wide >> bits) & 1;
        f = (f & ~(X86_FLAG_CF | X86_FLAG_OF)) | (newcf ? X86_FLAG_CF : 0);
        if (((r & msb) != 0) != ((r & (msb >> 1)) != 0))
            f |= X86_FLAG_OF;
        break;
    }
    /* AF, and OF after a count other than one, are undefined. The P6
     * clears AF and computes OF as for a count of one from the operand;
     * the 80286 leaves AF as bit 4 of SHL's result and set after SHR and
     * SAR, and OF as the last one-bit step would set it (SingleStepTests
     * vectors). */
    case ZYDIS_MNEMONIC_SHL: {
        uint64_t wide = (uint64_t)a << count;
        r = (uint32_t)wide & mask;
        f = (f & ~FLAGS_ARITH) | szp(r, size);
        if ((wide >> bits) & 1)
            f |= X86_FLAG_CF;
        if (((r & msb) != 0) != (((wide >> bits) & 1) != 0))
            f |= X86_FLAG_OF;
        if (model_286(in))
            f |= r & X86_FLAG_AF;
        break;
    }
    case ZYDIS_MNEMONIC_SHR: {
        r = (uint32_t)((uint64_t)a >> count);
        f = (f & ~FLAGS_ARITH) | szp(r, size);
        uint32_t last_in = (uint32_t)((uint64_t)a >> (count - 1));
        if (last_in & 1)
            f |= X86_FLAG_CF;
        if ((model_286(in) ? last_in : a) & msb)
            f |= X86_FLAG_OF;
        if (model_286(in))
            f |= X86_FLAG_AF;
        break;
    }
    case ZYDIS_MNEMONIC_SAR: {
        int64_t sa = (int32_t)sign_extend(a, size);
        r = (uint32_t)(sa >> count) & mask;
        f = (f & ~FLAGS_ARITH) | szp(r, size);
        if ((sa >> (count - 1)) & 1)
            f |= X86_FLAG_CF;
        if (model_286(in))
            f |= X86_FLAG_AF;
        break;
    }
    default:
        raise_ud(in);
    }
    op_write(in, i, 0, r);
    s->eflags = f;
}

static void exec_double_shift(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->op[0].size;
    unsigned bits = size * 8;
    uint32_t a = op_read(in, i, 0);
    uint32_t b = op_read(in, i, 1);
    unsigned count = op_read(in, i, 2) & 0x1f;
    if (count == 0) {
        op_write(in, i, 0, a);
        return;
    }
    uint64_t r;
    bool cf;
    if (i->mnemonic == ZYDIS_MNEMONIC_SHLD) {
        /* dest:src:dest for 16-bit operands, so counts above 16 behave as
         * on Intel processors. */
        uint64_t wide =
            size == 2 ? ((uint64_t)a << 32) | ((uint64_t)b << 16) | a : ((uint64_t)a << 32) | b;
        unsigned top = size == 2 ? 48 : 64;
        cf = (wide >> (top - count)) & 1;
        r = (wide << count) >> (top - bits);
    } else {
        uint64_t wide =
            size == 2 ? ((uint64_t)a << 32) | ((uint64_t)b << 16) | a : ((uint64_t)b << 32) | a;
        cf = (wide >> (count - 1)) & 1;
        r = wide >> count;
    }
    uint32_t res = (uint32_t)r & size_mask(size);
    uint32_t f = szp(res, size) | (cf ? X86_FLAG_CF : 0);
    if ((res ^ a) & sign_bit(size))
        f |= X86_FLAG_OF;
    op_write(in, i, 0, res);
    set_flags(s, FLAGS_ARITH, f);
}

/* --- Bit tests and scans ----------------------------------------------------- */

static void exec_bit_test(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->op[0].size;
    unsigned bits = size * 8;
    uint32_t offset = op_read(in, i, 1);
    uint32_t value, bit;
    uint32_t addr = 0;
    bool memory = i->op[0].kind == OPK_MEM;
    if (memory && i->op[1].kind == OPK_REG) {
        /* A register bit offset reaches beyond the operand: signed, in
         * units of the operand size. */
        int32_t so = (int32_t)sign_extend(offset, size);
        int32_t unit = so >= 0 ? so / (int32_t)bits : -((-so + (int32_t)bits - 1) / (int32_t)bits);
        addr = insn_ea(in, i) + (uint32_t)(unit * (int32_t)size);
        if (i->addrsize == 2)
            addr &= 0xffff;
        bit = (uint32_t)(so - unit * (int32_t)bits);
        value = mem_read(in, i->seg, addr, size);
    } else {
        bit = offset & (bits - 1);
        if (memory)
            addr = insn_ea(in, i);
        value = memory ? mem_read(in, i->seg, addr, size) : op_read(in, i, 0);
    }
    uint32_t m = 1u << bit;
    s->eflags = (s->eflags & ~X86_FLAG_CF) | ((value & m) ? X86_FLAG_CF : 0);
    uint32_t r;
    switch (i->mnemonic) {
    case ZYDIS_MNEMONIC_BTS:
        r = value | m;
        break;
    case ZYDIS_MNEMONIC_BTR:
        r = value & ~m;
        break;
    case ZYDIS_MNEMONIC_BTC:
        r = value ^ m;
        break;
    default:
        return;
    }
    if (memory)
        mem_write(in, i->seg, addr, size, r);
    else
        op_write(in, i, 0, r);
}

static void exec_bit_scan(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t v = op_read(in, i, 1) & size_mask(i->op[1].size);
    if (v == 0) {
        s->eflags |= X86_FLAG_ZF;
        return;
    }
    s->eflags &= ~X86_FLAG_ZF;
    bool forward = i->mnemonic == ZYDIS_MNEMONIC_BSF || i->mnemonic == ZYDIS_MNEMONIC_TZCNT;
    uint32_t r = forward ? (uint32_t)__builtin_ctz(v) : 31u - (uint32_t)__builtin_clz(v);
    op_write(in, i, 0, r);
}

/* --- BCD ------------------------------------------------------------------ */

static void exec_daa_das(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t al = s->regs[R_EAX] & 0xff, old_al = al;
    bool old_cf = s->eflags & X86_FLAG_CF;
    bool cf = false, af = false;
    bool add = i->mnemonic == ZYDIS_MNEMONIC_DAA;
    if ((al & 0xf) > 9 || (s->eflags & X86_FLAG_AF)) {
        cf = old_cf || (add ? al + 6 > 0xff : al < 6);
        al = (add ? al + 6 : al - 6) & 0xff;
        af = true;
    }
    if (old_al > 0x99 || old_cf) {
        al = (add ? al + 0x60 : al - 0x60) & 0xff;
        cf = true;
    }
    reg_set(s, R_EAX, 1, false, al);
    uint32_t f = szp(al, 1) | (cf ? X86_FLAG_CF : 0) | (af ? X86_FLAG_AF : 0);
    /* OF is undefined; a P6 reports the overflow of the adjustment. */
    if (add ? (!(old_al & 0x80) && (al & 0x80)) : ((old_al & 0x80) && !(al & 0x80)))
        f |= X86_FLAG_OF;
    set_flags(s, FLAGS_ARITH, f);
}

static void exec_aaa_aas(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t ax = s->regs[R_EAX] & 0xffff;
    uint32_t f = s->eflags & ~FLAGS_ARITH;
    bool adjust = (ax & 0xf) > 9 || (s->eflags & X86_FLAG_AF);
    if (model_286(in)) {
        /* The 286 leaves SF, ZF, PF and OF as the 8-bit addition (AAA) or
         * subtraction (AAS) of the adjustment to AL sets them. */
        uint32_t al = ax & 0xff, six = adjust ? 6 : 0;
        if (i->mnemonic == ZYDIS_MNEMONIC_AAA)
            alu_add(s, al, six, 0, 1);
        else
            alu_sub(s, al, six, 0, 1);
        f = s->eflags & ~(X86_FLAG_AF | X86_FLAG_CF);
    }
    if (adjust) {
        if (i->mnemonic == ZYDIS_MNEMONIC_AAA)
            ax = ax + 0x106;
        else
            ax = ax - 0x106;
        f |= X86_FLAG_AF | X86_FLAG_CF;
    }
    ax &= 0xff0f;
    reg_set(s, R_EAX, 2, false, ax);
    s->eflags = model_286(in) ? f : f | szp(ax & 0xff, 1);
}

static void exec_aam(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t base = i->imm & 0xff;
    if (base == 0)
        raise_exception(in, X86_EXC_DE, NO_ERROR_CODE);
    uint32_t al = s->regs[R_EAX] & 0xff;
    uint32_t r = ((al / base) << 8) | (al % base);
    reg_set(s, R_EAX, 2, false, r);
    set_flags(s, FLAGS_ARITH, szp(r & 0xff, 1));
}

static void exec_aad(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    uint32_t base = i->imm & 0xff;
    uint32_t al = s->regs[R_EAX] & 0xff, ah = (s->regs[R_EAX] >> 8) & 0xff;
    /* The flags are those of the addition AL + AH * base. */
    uint32_t r = alu_add(s, al, (ah * base) & 0xff, 0, 1);
    reg_set(s, R_EAX, 2, false, r);
    /* OF is undefined: the 286 leaves it equal to CF. */
    if (model_286(in))
        s->eflags = (s->eflags & ~X86_FLAG_OF) | ((s->eflags & X86_FLAG_CF) ? X86_FLAG_OF : 0);
}

/* --- Exchange-and-operate ----------------------------------------------------- */

static void exec_xadd(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->op[0].size;
    uint32_t a = op_read(in, i, 0);
    uint32_t b = op_read(in, i, 1);
    uint32_t sum = alu_add(s, a, b, 0, size);
    if (i->op[0].kind == OPK_MEM) {
        /* The register may be part of the address: write memory first. */
        op_write(in, i, 0, sum);
        op_write(in, i, 1, a);
    } else {
        op_write(in, i, 1, a);
        op_write(in, i, 0, sum);
    }
}

static void exec_cmpxchg(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    unsigned size = i->op[0].size;
    uint32_t dest = op_read(in, i, 0);
    uint32_t acc = reg_get(s, R_EAX, size, false);
    alu_sub(s, acc, dest, 0, size);
    if (acc == dest) {
        op_write(in, i, 0, op_read(in, i, 1));
    } else {
        /* The destination is written back unchanged, as the locked bus
         * cycle does; then the accumulator gets its value. */
        op_write(in, i, 0, dest);
        reg_set(s, R_EAX, size, false, dest);
    }
}

static void exec_cmpxchg8b(struct interp *in, const struct insn *i)
{
    struct x86_state *s = &in->state;
    if (i->op[0].kind != OPK_MEM)
        raise_ud(in);
    uint32_t ea = insn_ea(in, i);
    uint32_t lo = mem_read(in, i->seg, ea, 4);
    uint32_t hi = mem_read(in, i->seg, ea + 4, 4);
    if (lo == s->regs[R_EAX] && hi == s->regs[R_EDX]) {
        mem_write(in, i->seg, ea, 4, s->regs[R_EBX]);
        mem_write(in, i->seg, ea + 4, 4, s->regs[R_ECX]);
        s->eflags |= X86_FLAG_ZF;
    } else {
        mem_write(in, i->seg, ea, 4, lo);
        mem_write(in, i->seg, ea + 4, 4, hi);
        s->regs[R_EAX] = lo;
        s->regs[R_EDX] = hi;
        s->eflags &= ~X86_FLAG_ZF;
    }
}

bool condition_holds(const struct x86_state *s, unsigned cc)
{
    uint32_t f = s->eflags;
    bool r;
    switch (cc >> 1) {
    case 0: /* O */
        r = f & X86_FLAG_OF;
        break;
    case 1: /* B */
        r = f & X86_FLAG_CF;
        break;
    case 2: /* Z */
        r = f & X86_FLAG_ZF;
        break;
    case 3: /* BE */
        r = f & (X86_FLAG_CF | X86_FLAG_ZF);
        break;
    case 4: /* S */
        r = f & X86_FLAG_SF;
        break;
    case 5: /* P */
        r = f & X86_FLAG_PF;
        break;
    case 6: /* L */
        r = !(f & X86_FLAG_SF) != !(f & X86_FLAG_OF);
        break;
    default: /* LE */
        r = (f & X86_FLAG_ZF) || (!(f & X86_FLAG_SF) != !(f & X86_FLAG_OF));
        break;
    }
    return (cc & 1) ? !r : r;
}

void ops_alu_register(insn_fn *t)
{
    static const struct insn_handler handlers[] = {
        {ZYDIS_MNEMONIC_ADD, exec_binary},
        {ZYDIS_MNEMONIC_ADC, exec_binary},
        {ZYDIS_MNEMONIC_SUB, exec_binary},
        {ZYDIS_MNEMONIC_SBB, exec_binary},
        {ZYDIS_MNEMONIC_AND, exec_binary},
        {ZYDIS_MNEMONIC_OR, exec_binary},
        {ZYDIS_MNEMONIC_XOR, exec_binary},
        {ZYDIS_MNEMONIC_CMP, exec_binary},
        {ZYDIS_MNEMONIC_TEST, exec_binary},
        {ZYDIS_MNEMONIC_INC, exec_inc_dec},
        {ZYDIS_MNEMONIC_DEC, exec_inc_dec},
        {ZYDIS_MNEMONIC_NEG, exec_neg},
        {ZYDIS_MNEMONIC_NOT, exec_not},
        {ZYDIS_MNEMONIC_MUL, exec_mul},
        {ZYDIS_MNEMONIC_IMUL, exec_imul},
        {ZYDIS_MNEMONIC_DIV, exec_div},
        {ZYDIS_MNEMONIC_IDIV, exec_idiv},
        {ZYDIS_MNEMONIC_ROL, exec_shift},
        {ZYDIS_MNEMONIC_ROR, exec_shift},
        {ZYDIS_MNEMONIC_RCL, exec_shift},
        {ZYDIS_MNEMONIC_RCR, exec_shift},
        {ZYDIS_MNEMONIC_SHL, exec_shift},
        {ZYDIS_MNEMONIC_SHR, exec_shift},
        {ZYDIS_MNEMONIC_SAR, exec_shift},
        {ZYDIS_MNEMONIC_SHLD, exec_double_shift},
        {ZYDIS_MNEMONIC_SHRD, exec_double_shift},
        {ZYDIS_MNEMONIC_BT, exec_bit_test},
        {ZYDIS_MNEMONIC_BTS, exec_bit_test},
        {ZYDIS_MNEMONIC_BTR, exec_bit_test},
        {ZYDIS_MNEMONIC_BTC, exec_bit_test},
        {ZYDIS_MNEMONIC_BSF, exec_bit_scan},
        {ZYDIS_MNEMONIC_BSR, exec_bit_scan},
        /* F3 0F BC/BD decode as TZCNT/LZCNT, but a CPU without BMI1/LZCNT
         * (this one reports neither) ignores the F3 prefix and runs BSF/BSR:
         * compilers emit "rep bsf" counting on exactly that. */
        {ZYDIS_MNEMONIC_TZCNT, exec_bit_scan},
        {ZYDIS_MNEMONIC_LZCNT, exec_bit_scan},
        {ZYDIS_MNEMONIC_DAA, exec_daa_das},
        {ZYDIS_MNEMONIC_DAS, exec_daa_das},
        {ZYDIS_MNEMONIC_AAA, exec_aaa_aas},
        {ZYDIS_MNEMONIC_AAS, exec_aaa_aas},
        {ZYDIS_MNEMONIC_AAM, exec_aam},
        {ZYDIS_MNEMONIC_AAD, exec_aad},
        {ZYDIS_MNEMONIC_XADD, exec_xadd},
        {ZYDIS_MNEMONIC_CMPXCHG, exec_cmpxchg},
        {ZYDIS_MNEMONIC_CMPXCHG8B, exec_cmpxchg8b},
    };
    for (size_t n = 0; n < G_N_ELEMENTS(handlers); n++)
        t[handlers[n].mnemonic] = handlers[n].exec;
}
