/* The x87 floating-point unit of the 387/486/P6, after the Intel 64 and IA-32
 * Architectures Software Developer's Manual: volume 1 chapter 8 (the x87 FPU,
 * its status, control and tag words, the FSTENV/FSAVE image layouts of
 * figures 8-9 to 8-12) and section 4.9 (floating-point exception conditions
 * and their masked responses), and the volume 2 page of each instruction for
 * its condition codes.
 *
 * Every arithmetic result, rounding, precision control, condition code of a
 * computation, exception flag and masked or unmasked response comes from the
 * host's own x87 unit: the operation runs there on the same 80-bit operands
 * under the guest's control word, and its state is then saved with the
 * non-waiting FNSAVE, so an unmasked exception stays pending on the host only
 * until FNSAVE reinitialises the unit. The host thus supplies even the biased
 * exponent an unmasked overflow or underflow delivers. This unit adds what
 * the host cannot do for us: the guest register stack with its tags and stack
 * faults, memory operands through the caller, and the environment images.
 *
 * FDP and FDS keep their value across instructions without a memory operand.
 */
#include "x87.h"

#if !defined(__x86_64__) && !defined(__i386__)
#error "the x87 unit runs guest operations on the host's x87 and needs an x86 host"
#endif

#include <stddef.h>
#include <string.h>

/* Status word. */
#define FSW_IE         0x0001
#define FSW_DE         0x0002
#define FSW_ZE         0x0004
#define FSW_OE         0x0008
#define FSW_UE         0x0010
#define FSW_PE         0x0020
#define FSW_SF         0x0040
#define FSW_ES         0x0080
#define FSW_C0         0x0100
#define FSW_C1         0x0200
#define FSW_C2         0x0400
#define FSW_TOP        0x3800
#define FSW_C3         0x4000
#define FSW_B          0x8000
#define FSW_TOP_SHIFT  11
#define FSW_EXCEPTIONS (FSW_IE | FSW_DE | FSW_ZE | FSW_OE | FSW_UE | FSW_PE)
#define FSW_CC         (FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)

/* Control word: the exception masks share bit positions with the flags. */
#define FCW_MASKS      0x003f
#define FCW_PC_RC      0x0f00
#define FCW_WRITABLE   0x1f3f /* bit 6 reads as one, bits 13-15 as zero */
#define FCW_ALWAYS_ONE 0x0040
#define FCW_INIT       0x037f

enum {
    TAG_VALID = 0,
    TAG_ZERO = 1,
    TAG_SPECIAL = 2,
    TAG_EMPTY = 3,
};

/* An 80-bit extended-precision value as it sits in memory. */
typedef struct {
    uint8_t bytes[10];
} fp80;

static const fp80 fp80_indefinite = {{0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff}};

static uint16_t fp80_exponent(const fp80 *v)
{
    return (uint16_t)((v->bytes[8] | v->bytes[9] << 8) & 0x7fff);
}

static uint64_t fp80_significand(const fp80 *v)
{
    uint64_t s;
    memcpy(&s, v->bytes, 8);
    return s;
}

static bool fp80_sign(const fp80 *v)
{
    return v->bytes[9] & 0x80;
}

static unsigned fp80_tag(const fp80 *v)
{
    uint16_t exponent = fp80_exponent(v);
    uint64_t significand = fp80_significand(v);
    if (exponent == 0)
        return significand == 0 ? TAG_ZERO : TAG_SPECIAL;
    if (exponent == 0x7fff || !(significand >> 63))
        return TAG_SPECIAL; /* NaN, infinity, or an unnormal */
    return TAG_VALID;
}

/* ------------------------------------------------------------------------
 * The host x87 unit.
 *
 * Each operation is one asm statement that saves the host control word,
 * resets the host unit (FNINIT also clears the condition codes, which FNCLEX
 * would leave undefined), loads the guest's control word, loads in1 and then
 * in0 (so in0 is ST(0) and in1 is ST(1)), runs the instruction, and stores the
 * status word and the whole state with FNSTSW and FNSAVE. Both are
 * non-waiting, and FNSAVE reinitialises the unit, so an unmasked exception
 * the instruction raised never reaches a waiting host instruction. The x86-64
 * ABI keeps the x87 stack empty across calls, so the helper (never inlined)
 * starts with all eight registers free.
 */

enum host_op {
    HOST_ADD,  /* in0 + in1 */
    HOST_MUL,  /* in0 * in1 */
    HOST_SUB,  /* in0 - in1 */
    HOST_SUBR, /* in1 - in0 */
    HOST_DIV,  /* in0 / in1 */
    HOST_DIVR, /* in1 / in0 */
    HOST_COM,
    HOST_UCOM,
    HOST_TST,
    HOST_XAM,
    HOST_SQRT,
    HOST_RNDINT,
    HOST_SCALE,
    HOST_PREM,
    HOST_PREM1,
    HOST_XTRACT,
    HOST_F2XM1,
    HOST_YL2X,
    HOST_YL2XP1,
    HOST_PTAN,
    HOST_PATAN,
    HOST_SIN,
    HOST_COS,
    HOST_SINCOS,
    HOST_LD1,
    HOST_LDL2T,
    HOST_LDL2E,
    HOST_LDPI,
    HOST_LDLG2,
    HOST_LDLN2,
    HOST_LDZ,
    HOST_LD_M32,
    HOST_LD_M64,
    HOST_ILD_M16,
    HOST_ILD_M32,
    HOST_ILD_M64,
    HOST_BLD,
    HOST_ST_M32,
    HOST_ST_M64,
    HOST_IST_M16,
    HOST_IST_M32,
    HOST_IST_M64,
    HOST_BST,
};

struct host_frame {
    uint16_t control;       /* 0 */
    uint16_t saved_control; /* 2 */
    uint16_t status;        /* 4 */
    uint8_t pad[10];
    fp80 in0; /* 16 */
    uint8_t pad0[6];
    fp80 in1; /* 32 */
    uint8_t pad1[6];
    uint8_t mem[16];   /* 48: the memory form of a load or store */
    uint8_t save[108]; /* 64: the FNSAVE image, ST(0) at byte 28 */
    fp80 out0;         /* ST(0) and ST(1) after the operation */
    fp80 out1;
};

_Static_assert(offsetof(struct host_frame, in0) == 16, "host frame layout");
_Static_assert(offsetof(struct host_frame, in1) == 32, "host frame layout");
_Static_assert(offsetof(struct host_frame, mem) == 48, "host frame layout");
_Static_assert(offsetof(struct host_frame, save) == 64, "host frame layout");

#define HOST_RUN(insn)                                                                             \
    __asm__ volatile("fnstcw 2(%0)\n\t"                                                            \
                     "fninit\n\t"                                                                  \
                     "fldcw 0(%0)\n\t"                                                             \
                     "fldt 32(%0)\n\t"                                                             \
                     "fldt 16(%0)\n\t" insn "\n\t"                                                 \
                     "fnstsw 4(%0)\n\t"                                                            \
                     "fnsave 64(%0)\n\t"                                                           \
                     "fldcw 2(%0)"                                                                 \
                     :                                                                             \
                     : "r"(frame)                                                                  \
                     : "memory")

static __attribute__((noinline)) void host_run(enum host_op op, struct host_frame *frame)
{
    switch (op) {
    case HOST_ADD:
        HOST_RUN("fadd %%st(1), %%st");
        break;
    case HOST_MUL:
        HOST_RUN("fmul %%st(1), %%st");
        break;
    case HOST_SUB:
        HOST_RUN("fsub %%st(1), %%st");
        break;
    case HOST_SUBR:
        HOST_RUN("fsubr %%st(1), %%st");
        break;
    case HOST_DIV:
        HOST_RUN("fdiv %%st(1), %%st");
        break;
    case HOST_DIVR:
        HOST_RUN("fdivr %%st(1), %%st");
        break;
    case HOST_COM:
        HOST_RUN("fcom %%st(1)");
        break;
    case HOST_UCOM:
        HOST_RUN("fucom %%st(1)");
        break;
    case HOST_TST:
        HOST_RUN("ftst");
        break;
    case HOST_XAM:
        HOST_RUN("fxam");
        break;
    case HOST_SQRT:
        HOST_RUN("fsqrt");
        break;
    case HOST_RNDINT:
        HOST_RUN("frndint");
        break;
    case HOST_SCALE:
        HOST_RUN("fscale");
        break;
    case HOST_PREM:
        HOST_RUN("fprem");
        break;
    case HOST_PREM1:
        HOST_RUN("fprem1");
        break;
    case HOST_XTRACT:
        HOST_RUN("fxtract");
        break;
    case HOST_F2XM1:
        HOST_RUN("f2xm1");
        break;
    case HOST_YL2X:
        HOST_RUN("fyl2x");
        break;
    case HOST_YL2XP1:
        HOST_RUN("fyl2xp1");
        break;
    case HOST_PTAN:
        HOST_RUN("fptan");
        break;
    case HOST_PATAN:
        HOST_RUN("fpatan");
        break;
    case HOST_SIN:
        HOST_RUN("fsin");
        break;
    case HOST_COS:
        HOST_RUN("fcos");
        break;
    case HOST_SINCOS:
        HOST_RUN("fsincos");
        break;
    case HOST_LD1:
        HOST_RUN("fld1");
        break;
    case HOST_LDL2T:
        HOST_RUN("fldl2t");
        break;
    case HOST_LDL2E:
        HOST_RUN("fldl2e");
        break;
    case HOST_LDPI:
        HOST_RUN("fldpi");
        break;
    case HOST_LDLG2:
        HOST_RUN("fldlg2");
        break;
    case HOST_LDLN2:
        HOST_RUN("fldln2");
        break;
    case HOST_LDZ:
        HOST_RUN("fldz");
        break;
    case HOST_LD_M32:
        HOST_RUN("flds 48(%0)");
        break;
    case HOST_LD_M64:
        HOST_RUN("fldl 48(%0)");
        break;
    case HOST_ILD_M16:
        HOST_RUN("filds 48(%0)");
        break;
    case HOST_ILD_M32:
        HOST_RUN("fildl 48(%0)");
        break;
    case HOST_ILD_M64:
        HOST_RUN("fildll 48(%0)");
        break;
    case HOST_BLD:
        HOST_RUN("fbld 48(%0)");
        break;
    case HOST_ST_M32:
        HOST_RUN("fsts 48(%0)");
        break;
    case HOST_ST_M64:
        HOST_RUN("fstl 48(%0)");
        break;
    case HOST_IST_M16:
        HOST_RUN("fists 48(%0)");
        break;
    case HOST_IST_M32:
        HOST_RUN("fistl 48(%0)");
        break;
    case HOST_IST_M64:
        HOST_RUN("fistpll 48(%0)");
        break;
    case HOST_BST:
        HOST_RUN("fbstp 48(%0)");
        break;
    }
}

/* Runs op on the host under the guest control word and returns the host's
 * status word; out0 and out1 receive ST(0) and ST(1). */
static uint16_t host_exec(enum host_op op, uint16_t guest_control, struct host_frame *frame)
{
    frame->control = guest_control;
    host_run(op, frame);
    memcpy(frame->out0.bytes, frame->save + 28, 10);
    memcpy(frame->out1.bytes, frame->save + 38, 10);
    return frame->status;
}

/* ------------------------------------------------------------------------
 * The guest register stack. */

struct x87 {
    struct x87_env *env;
    struct x86_fpu *fpu;
    unsigned modrm_reg; /* the /digit or, for register forms, the operation */
    unsigned rm;        /* ST(i) of a register form */
};

static unsigned stack_top(const struct x86_fpu *fpu)
{
    return (fpu->status & FSW_TOP) >> FSW_TOP_SHIFT;
}

static void set_top(struct x86_fpu *fpu, unsigned top)
{
    fpu->status = (uint16_t)((fpu->status & ~FSW_TOP) | (top & 7) << FSW_TOP_SHIFT);
}

static unsigned physical(const struct x86_fpu *fpu, unsigned i)
{
    return (stack_top(fpu) + i) & 7;
}

static unsigned physical_tag(const struct x86_fpu *fpu, unsigned reg)
{
    return (fpu->tag >> (2 * reg)) & 3;
}

static void set_physical_tag(struct x86_fpu *fpu, unsigned reg, unsigned tag)
{
    fpu->tag = (uint16_t)((fpu->tag & ~(3u << (2 * reg))) | tag << (2 * reg));
}

static bool st_empty(const struct x86_fpu *fpu, unsigned i)
{
    return physical_tag(fpu, physical(fpu, i)) == TAG_EMPTY;
}

static fp80 st_get(const struct x86_fpu *fpu, unsigned i)
{
    fp80 v;
    memcpy(v.bytes, fpu->st[physical(fpu, i)], 10);
    return v;
}

static void st_set(struct x86_fpu *fpu, unsigned i, const fp80 *v)
{
    unsigned reg = physical(fpu, i);
    memcpy(fpu->st[reg], v->bytes, 10);
    set_physical_tag(fpu, reg, fp80_tag(v));
}

static void stack_pop(struct x86_fpu *fpu)
{
    set_physical_tag(fpu, physical(fpu, 0), TAG_EMPTY);
    set_top(fpu, stack_top(fpu) + 1);
}

/* Decrements TOP and stores v in the new ST(0). */
static void stack_push(struct x86_fpu *fpu, const fp80 *v)
{
    set_top(fpu, stack_top(fpu) - 1);
    st_set(fpu, 0, v);
}

static void set_condition(struct x86_fpu *fpu, uint16_t mask, uint16_t value)
{
    fpu->status = (uint16_t)((fpu->status & ~mask) | (value & mask));
}

/* Records exception flags. An unmasked one sets ES and B, so the next waiting
 * instruction raises #MF. */
static void raise_flags(struct x86_fpu *fpu, uint16_t flags)
{
    fpu->status |= flags;
    if (fpu->status & ~fpu->control & FCW_MASKS)
        fpu->status |= FSW_ES | FSW_B;
}

/* After FLDCW, FLDENV or FRSTOR, ES and B follow the unmasked pending flags. */
static void recompute_summary(struct x86_fpu *fpu)
{
    if (fpu->status & ~fpu->control & FCW_MASKS)
        fpu->status |= FSW_ES | FSW_B;
    else
        fpu->status &= (uint16_t) ~(FSW_ES | FSW_B);
}

static bool masked(const struct x86_fpu *fpu, uint16_t flag)
{
    return fpu->control & flag;
}

/* Stack overflow (a push onto a full stack) or underflow (an empty operand):
 * IE with SF, C1 telling which. Returns true when the exception is masked and
 * the instruction goes on with the masked response. */
static bool stack_fault(struct x86_fpu *fpu, bool overflow)
{
    set_condition(fpu, FSW_C1, overflow ? FSW_C1 : 0);
    raise_flags(fpu, FSW_IE | FSW_SF);
    return masked(fpu, FSW_IE);
}

/* ------------------------------------------------------------------------
 * Exception resolution for an operation the host ran. */

/* Records the exceptions of an operation the host ran. Returns false when an
 * unmasked invalid operation, denormal operand or zero divide (found before
 * the computation) stops the instruction: nothing is stored or popped. An
 * unmasked overflow or underflow still delivers the result, which the host
 * has biased. */
static bool resolve(struct x86_fpu *fpu, uint16_t host_status)
{
    uint16_t raised = host_status & FSW_EXCEPTIONS;
    if (raised & ~fpu->control & (FSW_IE | FSW_DE | FSW_ZE)) {
        raise_flags(fpu, raised);
        return false;
    }
    set_condition(fpu, FSW_C1, host_status);
    raise_flags(fpu, raised);
    return true;
}

/* ------------------------------------------------------------------------
 * Memory operands. */

static bool mem_read(struct x87 *x, uint32_t delta, void *buf, unsigned len)
{
    return x->env->read(x->env->opaque, delta, buf, len);
}

static bool mem_write(struct x87 *x, uint32_t delta, const void *buf, unsigned len)
{
    return x->env->write(x->env->opaque, delta, buf, len);
}

/* ------------------------------------------------------------------------
 * Arithmetic. */

/* The operation of a D8/DC/DE register form or of a D8/DA/DC/DE memory form
 * by its /digit, with ST(0) as in0 and the other operand as in1: the
 * reversed forms DC/DE E0-FF only change the destination, not this. */
static const enum host_op arith_ops[8] = {
    HOST_ADD, HOST_MUL, HOST_COM, HOST_COM, HOST_SUB, HOST_SUBR, HOST_DIV, HOST_DIVR,
};

/* Runs op on (ST(0), in1) and stores the result to ST(dest), popping when
 * asked. in1_status carries exceptions from converting a memory operand. */
static void arith(struct x86_fpu *fpu, enum host_op op, const fp80 *in1, uint16_t in1_status,
                  unsigned dest, bool pop)
{
    struct host_frame frame = {0};
    frame.in0 = st_get(fpu, 0);
    frame.in1 = *in1;
    uint16_t status = host_exec(op, fpu->control, &frame) | (in1_status & FSW_EXCEPTIONS);
    fp80 result = frame.out0;
    if (!resolve(fpu, status))
        return;
    st_set(fpu, dest, &result);
    if (pop)
        stack_pop(fpu);
}

/* The masked response to an empty operand of a register-result operation. */
static void arith_underflow(struct x86_fpu *fpu, unsigned dest, bool pop)
{
    if (!stack_fault(fpu, false))
        return;
    st_set(fpu, dest, &fp80_indefinite);
    if (pop)
        stack_pop(fpu);
}

/* Reads and converts a memory operand to extended precision. Returns false
 * when the read faulted. */
static bool load_memory_operand(struct x87 *x, enum host_op convert, unsigned len, fp80 *value,
                                uint16_t *status)
{
    struct host_frame frame = {0};
    if (!mem_read(x, 0, frame.mem, len))
        return false;
    *status = host_exec(convert, x->fpu->control, &frame);
    *value = frame.out0;
    return true;
}

/* Sets C3, C2, C0 from a host comparison (they have the same meaning there),
 * or EFLAGS ZF, PF, CF for FCOMI. The result is set even when an exception is
 * unmasked, as hardware does; returns false when that exception stops the
 * popping forms from popping. */
static bool compare_result(struct x87 *x, uint16_t host_status, bool to_eflags)
{
    struct x86_fpu *fpu = x->fpu;
    uint16_t raised = host_status & (FSW_IE | FSW_DE);
    bool stopped = raised & ~fpu->control & FCW_MASKS;
    raise_flags(fpu, raised);
    if (to_eflags) {
        uint32_t flags = *x->env->eflags & ~(X86_FLAG_ZF | X86_FLAG_PF | X86_FLAG_CF | X86_FLAG_OF |
                                             X86_FLAG_SF | X86_FLAG_AF);
        if (host_status & FSW_C3)
            flags |= X86_FLAG_ZF;
        if (host_status & FSW_C2)
            flags |= X86_FLAG_PF;
        if (host_status & FSW_C0)
            flags |= X86_FLAG_CF;
        *x->env->eflags = flags;
        set_condition(fpu, FSW_C1, 0);
    } else {
        set_condition(fpu, FSW_CC, host_status & (FSW_C0 | FSW_C2 | FSW_C3));
    }
    return !stopped;
}

/* FCOM, FUCOM, FCOMI and their popping forms with ST(0) and in1. */
static void compare(struct x87 *x, enum host_op op, const fp80 *in1, uint16_t in1_status,
                    bool to_eflags, unsigned pops)
{
    struct host_frame frame = {0};
    frame.in0 = st_get(x->fpu, 0);
    frame.in1 = *in1;
    uint16_t status = host_exec(op, x->fpu->control, &frame) | (in1_status & FSW_EXCEPTIONS);
    if (!compare_result(x, status, to_eflags))
        return;
    while (pops--)
        stack_pop(x->fpu);
}

/* An empty operand of a comparison: unordered, even when the exception is
 * unmasked, but then nothing is popped. */
static void compare_underflow(struct x87 *x, bool to_eflags, unsigned pops)
{
    bool go_on = stack_fault(x->fpu, false);
    if (to_eflags)
        *x->env->eflags |= X86_FLAG_ZF | X86_FLAG_PF | X86_FLAG_CF;
    else
        set_condition(x->fpu, FSW_C0 | FSW_C2 | FSW_C3, FSW_C0 | FSW_C2 | FSW_C3);
    while (go_on && pops--)
        stack_pop(x->fpu);
}

static void compare_registers(struct x87 *x, enum host_op op, unsigned i, bool to_eflags,
                              unsigned pops)
{
    if (st_empty(x->fpu, 0) || st_empty(x->fpu, i)) {
        compare_underflow(x, to_eflags, pops);
        return;
    }
    fp80 other = st_get(x->fpu, i);
    compare(x, op, &other, 0, to_eflags, pops);
}

/* D8, DA, DC, DE with a memory operand: ST(0) op= m32fp/m32int/m64fp/m16int. */
static enum x87_result arith_memory(struct x87 *x, enum host_op convert, unsigned len)
{
    struct x86_fpu *fpu = x->fpu;
    fp80 operand;
    uint16_t status;
    if (!load_memory_operand(x, convert, len, &operand, &status))
        return X87_MEMORY_FAULT;
    enum host_op op = arith_ops[x->modrm_reg];
    bool is_compare = x->modrm_reg == 2 || x->modrm_reg == 3;
    unsigned pops = x->modrm_reg == 3;
    if (st_empty(fpu, 0)) {
        if (is_compare)
            compare_underflow(x, false, pops);
        else
            arith_underflow(fpu, 0, false);
        return X87_DONE;
    }
    if (is_compare)
        compare(x, op, &operand, status, false, pops);
    else
        arith(fpu, op, &operand, status, 0, false);
    return X87_DONE;
}

/* D8 (dest ST(0)), DC (dest ST(i)) and DE (dest ST(i), pop) register forms. */
static void arith_registers(struct x87 *x, bool to_sti, bool pop)
{
    struct x86_fpu *fpu = x->fpu;
    unsigned dest = to_sti ? x->rm : 0;
    enum host_op op = arith_ops[x->modrm_reg];
    if (x->modrm_reg == 2 || x->modrm_reg == 3) {
        compare_registers(x, HOST_COM, x->rm, false, x->modrm_reg == 3);
        return;
    }
    if (st_empty(fpu, 0) || st_empty(fpu, x->rm)) {
        arith_underflow(fpu, dest, pop);
        return;
    }
    fp80 other = st_get(fpu, x->rm);
    arith(fpu, op, &other, 0, dest, pop);
}

/* ------------------------------------------------------------------------
 * Loads and stores. */

/* Pushes a value a host load produced (or fails on a full stack). */
static void push_loaded(struct x86_fpu *fpu, const fp80 *value, uint16_t host_status)
{
    if (!st_empty(fpu, 7)) {
        if (stack_fault(fpu, true))
            stack_push(fpu, &fp80_indefinite);
        return;
    }
    if (resolve(fpu, host_status))
        stack_push(fpu, value);
}

static enum x87_result load_memory(struct x87 *x, enum host_op convert, unsigned len)
{
    fp80 value;
    uint16_t status;
    if (!load_memory_operand(x, convert, len, &value, &status))
        return X87_MEMORY_FAULT;
    push_loaded(x->fpu, &value, status);
    return X87_DONE;
}

static enum x87_result load_extended(struct x87 *x)
{
    fp80 value;
    if (!mem_read(x, 0, value.bytes, 10))
        return X87_MEMORY_FAULT;
    /* An extended-precision load copies the bits: no exception, not even
     * for a signaling NaN. */
    push_loaded(x->fpu, &value, 0);
    return X87_DONE;
}

static void load_constant(struct x86_fpu *fpu, enum host_op op)
{
    struct host_frame frame = {0};
    uint16_t status = host_exec(op, fpu->control, &frame);
    push_loaded(fpu, &frame.out0, status);
}

/* The masked response to storing an empty ST(0): the indefinite of the
 * destination format, which the host produces from the extended indefinite. */
static const uint8_t *indefinite_image(enum host_op op, uint8_t *buf)
{
    struct host_frame frame = {0};
    frame.in0 = fp80_indefinite;
    host_exec(op, FCW_INIT, &frame);
    memcpy(buf, frame.mem, sizeof(frame.mem));
    return buf;
}

/* FST/FSTP/FIST/FISTP/FBSTP to memory in the format of op. */
static enum x87_result store_memory(struct x87 *x, enum host_op op, unsigned len, bool pop)
{
    struct x86_fpu *fpu = x->fpu;
    uint8_t buf[16];
    if (st_empty(fpu, 0)) {
        if (!masked(fpu, FSW_IE)) {
            stack_fault(fpu, false);
            return X87_DONE;
        }
        if (!mem_write(x, 0, indefinite_image(op, buf), len))
            return X87_MEMORY_FAULT;
        stack_fault(fpu, false);
        if (pop)
            stack_pop(fpu);
        return X87_DONE;
    }
    struct host_frame frame = {0};
    frame.in0 = st_get(fpu, 0);
    uint16_t status = host_exec(op, fpu->control, &frame);
    if (status & ~fpu->control & (FSW_IE | FSW_DE | FSW_OE | FSW_UE)) {
        /* An unmasked exception leaves the memory operand and the stack as
         * they were (the host did not store either). */
        raise_flags(fpu, status & FSW_EXCEPTIONS);
        return X87_DONE;
    }
    if (!mem_write(x, 0, frame.mem, len))
        return X87_MEMORY_FAULT;
    set_condition(fpu, FSW_C1, status);
    raise_flags(fpu, status & FSW_EXCEPTIONS);
    if (pop)
        stack_pop(fpu);
    return X87_DONE;
}

static enum x87_result store_extended(struct x87 *x)
{
    struct x86_fpu *fpu = x->fpu;
    if (st_empty(fpu, 0)) {
        if (!masked(fpu, FSW_IE)) {
            stack_fault(fpu, false);
            return X87_DONE;
        }
        if (!mem_write(x, 0, fp80_indefinite.bytes, 10))
            return X87_MEMORY_FAULT;
        stack_fault(fpu, false);
        stack_pop(fpu);
        return X87_DONE;
    }
    fp80 value = st_get(fpu, 0);
    if (!mem_write(x, 0, value.bytes, 10))
        return X87_MEMORY_FAULT;
    set_condition(fpu, FSW_C1, 0);
    stack_pop(fpu);
    return X87_DONE;
}

/* FST ST(i) and FSTP ST(i) (and the FSTP aliases D9 D8, DF D0, DF D8). */
static void store_register(struct x86_fpu *fpu, unsigned i, bool pop)
{
    if (st_empty(fpu, 0)) {
        if (!stack_fault(fpu, false))
            return;
        st_set(fpu, i, &fp80_indefinite);
    } else {
        fp80 value = st_get(fpu, 0);
        st_set(fpu, i, &value);
        set_condition(fpu, FSW_C1, 0);
    }
    if (pop)
        stack_pop(fpu);
}

/* D9 D8+i, an alias of FSTP ST(i) that P6 and later processors run without
 * the stack-underflow check: ST(0) is copied with its tag, even when empty. */
static void store_register_no_fault(struct x86_fpu *fpu, unsigned i)
{
    unsigned tag = physical_tag(fpu, physical(fpu, 0));
    memcpy(fpu->st[physical(fpu, i)], fpu->st[physical(fpu, 0)], 10);
    set_physical_tag(fpu, physical(fpu, i), tag);
    set_condition(fpu, FSW_C1, 0);
    stack_pop(fpu);
}

static void load_register(struct x86_fpu *fpu, unsigned i)
{
    if (st_empty(fpu, i)) {
        /* Underflow: the masked response pushes the indefinite. */
        if (!st_empty(fpu, 7)) {
            if (stack_fault(fpu, true))
                stack_push(fpu, &fp80_indefinite);
            return;
        }
        if (stack_fault(fpu, false))
            stack_push(fpu, &fp80_indefinite);
        return;
    }
    fp80 value = st_get(fpu, i);
    push_loaded(fpu, &value, 0);
}

static void exchange(struct x86_fpu *fpu, unsigned i)
{
    if (st_empty(fpu, 0) || st_empty(fpu, i)) {
        /* Masked, an empty register reads as the indefinite. */
        if (!stack_fault(fpu, false))
            return;
        fp80 a = st_empty(fpu, 0) ? fp80_indefinite : st_get(fpu, 0);
        fp80 b = st_empty(fpu, i) ? fp80_indefinite : st_get(fpu, i);
        st_set(fpu, 0, &b);
        st_set(fpu, i, &a);
        return;
    }
    fp80 a = st_get(fpu, 0);
    fp80 b = st_get(fpu, i);
    st_set(fpu, 0, &b);
    st_set(fpu, i, &a);
    set_condition(fpu, FSW_C1, 0);
}

/* FCMOVcc: DA C0-DF and DB C0-DF, conditions on CF, ZF, CF|ZF and PF. */
static void conditional_move(struct x87 *x, bool negate)
{
    struct x86_fpu *fpu = x->fpu;
    uint32_t flags = *x->env->eflags;
    bool condition;
    switch (x->modrm_reg & 3) {
    case 0:
        condition = flags & X86_FLAG_CF;
        break;
    case 1:
        condition = flags & X86_FLAG_ZF;
        break;
    case 2:
        condition = flags & (X86_FLAG_CF | X86_FLAG_ZF);
        break;
    default:
        condition = flags & X86_FLAG_PF;
        break;
    }
    if (negate)
        condition = !condition;
    if (st_empty(fpu, 0) || st_empty(fpu, x->rm)) {
        if (stack_fault(fpu, false))
            st_set(fpu, 0, &fp80_indefinite);
        return;
    }
    set_condition(fpu, FSW_C1, 0);
    if (condition) {
        fp80 value = st_get(fpu, x->rm);
        st_set(fpu, 0, &value);
    }
}

/* ------------------------------------------------------------------------
 * The D9 register forms: constants, unary and transcendental operations. */

/* An operation on ST(0) alone, its result replacing ST(0). cc is the set of
 * condition codes the host's instruction defines. */
static void unary(struct x86_fpu *fpu, enum host_op op, uint16_t cc)
{
    if (st_empty(fpu, 0)) {
        arith_underflow(fpu, 0, false);
        return;
    }
    struct host_frame frame = {0};
    frame.in0 = st_get(fpu, 0);
    uint16_t status = host_exec(op, fpu->control, &frame);
    fp80 result = frame.out0;
    if (!resolve(fpu, status))
        return;
    if (cc != FSW_C1) /* C1 came with the result; FPREM defines all four */
        set_condition(fpu, cc, status);
    st_set(fpu, 0, &result);
}

/* FSIN, FCOS, FPTAN, FSINCOS: an operand outside +-2^63 sets C2 and leaves
 * the stack as it was. */
static void trigonometric(struct x86_fpu *fpu, enum host_op op)
{
    bool two_results = op == HOST_PTAN || op == HOST_SINCOS;
    if (st_empty(fpu, 0)) {
        if (!stack_fault(fpu, false))
            return;
        st_set(fpu, 0, &fp80_indefinite);
        if (two_results)
            stack_push(fpu, &fp80_indefinite);
        return;
    }
    if (two_results && !st_empty(fpu, 7)) {
        if (!stack_fault(fpu, true))
            return;
        st_set(fpu, 0, &fp80_indefinite);
        stack_push(fpu, &fp80_indefinite);
        return;
    }
    struct host_frame frame = {0};
    frame.in0 = st_get(fpu, 0);
    uint16_t status = host_exec(op, fpu->control, &frame);
    if (status & FSW_C2) {
        set_condition(fpu, FSW_C1 | FSW_C2, FSW_C2);
        return;
    }
    /* For two results, out0 is the new ST(0) and out1 replaces the operand. */
    fp80 first = two_results ? frame.out1 : frame.out0;
    if (!resolve(fpu, status))
        return;
    set_condition(fpu, FSW_C2, 0);
    st_set(fpu, 0, &first);
    if (two_results)
        stack_push(fpu, &frame.out0);
}

/* FXTRACT: ST(0) becomes the exponent and the significand is pushed. */
static void extract(struct x86_fpu *fpu)
{
    if (st_empty(fpu, 0)) {
        if (stack_fault(fpu, false)) {
            st_set(fpu, 0, &fp80_indefinite);
            stack_push(fpu, &fp80_indefinite);
        }
        return;
    }
    if (!st_empty(fpu, 7)) {
        if (stack_fault(fpu, true)) {
            st_set(fpu, 0, &fp80_indefinite);
            stack_push(fpu, &fp80_indefinite);
        }
        return;
    }
    struct host_frame frame = {0};
    frame.in0 = st_get(fpu, 0);
    uint16_t status = host_exec(HOST_XTRACT, fpu->control, &frame);
    if (!resolve(fpu, status))
        return;
    st_set(fpu, 0, &frame.out1);
    stack_push(fpu, &frame.out0);
}

/* FPREM, FPREM1, FSCALE: ST(0) op ST(1) into ST(0). FYL2X, FYL2XP1, FPATAN:
 * ST(1) op ST(0) into ST(1), then pop. */
static void binary_stack_op(struct x86_fpu *fpu, enum host_op op, bool into_st1, uint16_t cc)
{
    if (st_empty(fpu, 0) || st_empty(fpu, 1)) {
        arith_underflow(fpu, into_st1 ? 1 : 0, into_st1);
        return;
    }
    struct host_frame frame = {0};
    frame.in0 = st_get(fpu, 0);
    frame.in1 = st_get(fpu, 1);
    uint16_t status = host_exec(op, fpu->control, &frame);
    fp80 result = frame.out0;
    if (!resolve(fpu, status))
        return;
    if (cc != FSW_C1) /* C1 came with the result; FPREM defines all four */
        set_condition(fpu, cc, status);
    st_set(fpu, into_st1 ? 1 : 0, &result);
    if (into_st1)
        stack_pop(fpu);
}

/* FXAM: the class of ST(0) in C3, C2, C0 and its sign in C1. */
static void examine(struct x86_fpu *fpu)
{
    fp80 value = st_get(fpu, 0);
    if (st_empty(fpu, 0)) {
        set_condition(fpu, FSW_CC, FSW_C3 | FSW_C0 | (fp80_sign(&value) ? FSW_C1 : 0));
        return;
    }
    struct host_frame frame = {0};
    frame.in0 = value;
    uint16_t status = host_exec(HOST_XAM, fpu->control, &frame);
    set_condition(fpu, FSW_CC, status);
}

static void test_zero(struct x87 *x)
{
    if (st_empty(x->fpu, 0)) {
        compare_underflow(x, false, 0);
        return;
    }
    struct host_frame frame = {0};
    frame.in0 = st_get(x->fpu, 0);
    compare_result(x, host_exec(HOST_TST, x->fpu->control, &frame), false);
}

static void change_sign(struct x86_fpu *fpu, bool absolute)
{
    if (st_empty(fpu, 0)) {
        arith_underflow(fpu, 0, false);
        return;
    }
    fp80 value = st_get(fpu, 0);
    if (absolute)
        value.bytes[9] &= 0x7f;
    else
        value.bytes[9] ^= 0x80;
    st_set(fpu, 0, &value);
    set_condition(fpu, FSW_C1, 0);
}

static enum x87_result d9_register(struct x87 *x)
{
    struct x86_fpu *fpu = x->fpu;
    switch (x->modrm_reg) {
    case 0:
        load_register(fpu, x->rm);
        return X87_DONE;
    case 1:
        exchange(fpu, x->rm);
        return X87_DONE;
    case 2:
        return x->rm == 0 ? X87_DONE : X87_INVALID; /* FNOP */
    case 3:
        store_register_no_fault(fpu, x->rm);
        return X87_DONE;
    }
    static const enum host_op constants[8] = {
        HOST_LD1, HOST_LDL2T, HOST_LDL2E, HOST_LDPI, HOST_LDLG2, HOST_LDLN2, HOST_LDZ, HOST_LD1,
    };
    switch (0xe0 | (x->modrm_reg - 4) << 3 | x->rm) {
    case 0xe0:
        change_sign(fpu, false);
        return X87_DONE;
    case 0xe1:
        change_sign(fpu, true);
        return X87_DONE;
    case 0xe4:
        test_zero(x);
        return X87_DONE;
    case 0xe5:
        examine(fpu);
        return X87_DONE;
    case 0xe8:
    case 0xe9:
    case 0xea:
    case 0xeb:
    case 0xec:
    case 0xed:
    case 0xee:
        load_constant(fpu, constants[x->rm]);
        return X87_DONE;
    case 0xf0:
        unary(fpu, HOST_F2XM1, FSW_C1);
        return X87_DONE;
    case 0xf1:
        binary_stack_op(fpu, HOST_YL2X, true, FSW_C1);
        return X87_DONE;
    case 0xf2:
        trigonometric(fpu, HOST_PTAN);
        return X87_DONE;
    case 0xf3:
        binary_stack_op(fpu, HOST_PATAN, true, FSW_C1);
        return X87_DONE;
    case 0xf4:
        extract(fpu);
        return X87_DONE;
    case 0xf5:
        binary_stack_op(fpu, HOST_PREM1, false, FSW_CC);
        return X87_DONE;
    case 0xf6:
    case 0xf7:
        set_top(fpu, stack_top(fpu) + (x->rm == 6 ? -1u : 1u));
        set_condition(fpu, FSW_C1, 0);
        return X87_DONE;
    case 0xf8:
        binary_stack_op(fpu, HOST_PREM, false, FSW_CC);
        return X87_DONE;
    case 0xf9:
        binary_stack_op(fpu, HOST_YL2XP1, true, FSW_C1);
        return X87_DONE;
    case 0xfa:
        unary(fpu, HOST_SQRT, FSW_C1);
        return X87_DONE;
    case 0xfb:
        trigonometric(fpu, HOST_SINCOS);
        return X87_DONE;
    case 0xfc:
        unary(fpu, HOST_RNDINT, FSW_C1);
        return X87_DONE;
    case 0xfd:
        binary_stack_op(fpu, HOST_SCALE, false, FSW_C1);
        return X87_DONE;
    case 0xfe:
        trigonometric(fpu, HOST_SIN);
        return X87_DONE;
    case 0xff:
        trigonometric(fpu, HOST_COS);
        return X87_DONE;
    default:
        return X87_INVALID;
    }
}

/* ------------------------------------------------------------------------
 * Environment and state images (SDM volume 1, figures 8-9 to 8-12). */

#define ENV_SIZE_16 14
#define ENV_SIZE_32 28

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static unsigned env_size(const struct x87_env *env)
{
    return env->operand32 ? ENV_SIZE_32 : ENV_SIZE_16;
}

/* In real mode the image holds the linear instruction and operand addresses
 * in place of selector and offset. */
static void build_env(const struct x87_env *env, const struct x86_fpu *fpu, uint8_t *image)
{
    uint32_t ip = fpu->last_ip, dp = fpu->last_dp;
    uint16_t opcode = fpu->last_opcode & 0x7ff;
    if (!env->protected_mode) {
        ip += (uint32_t)fpu->last_cs << 4;
        dp += (uint32_t)fpu->last_ds << 4;
    }
    if (env->operand32) {
        /* The processor fills the reserved upper halves with ones. */
        memset(image, 0xff, ENV_SIZE_32);
        put16(image + 0, fpu->control);
        put16(image + 4, fpu->status);
        put16(image + 8, fpu->tag);
        if (env->protected_mode) {
            put32(image + 12, ip);
            put16(image + 16, fpu->last_cs);
            put16(image + 18, opcode);
            put32(image + 20, dp);
            put16(image + 24, fpu->last_ds);
        } else {
            put16(image + 12, (uint16_t)ip);
            put32(image + 16, (ip >> 16) << 12 | opcode);
            put16(image + 20, (uint16_t)dp);
            put32(image + 24, (dp >> 16) << 12);
        }
    } else {
        put16(image + 0, fpu->control);
        put16(image + 2, fpu->status);
        put16(image + 4, fpu->tag);
        if (env->protected_mode) {
            put16(image + 6, (uint16_t)ip);
            put16(image + 8, fpu->last_cs);
            put16(image + 10, (uint16_t)dp);
            put16(image + 12, fpu->last_ds);
        } else {
            put16(image + 6, (uint16_t)ip);
            put16(image + 8, (uint16_t)(((ip >> 16) & 0xf) << 12 | opcode));
            put16(image + 10, (uint16_t)dp);
            put16(image + 12, (uint16_t)(((dp >> 16) & 0xf) << 12));
        }
    }
}

/* Loads an environment image. The tag of each non-empty register is
 * recomputed from its contents; only "empty" is taken from the image. */
static void load_env(const struct x87_env *env, struct x86_fpu *fpu, const uint8_t *image)
{
    uint16_t tag;
    if (env->operand32) {
        fpu->control = get16(image + 0);
        fpu->status = get16(image + 4);
        tag = get16(image + 8);
        if (env->protected_mode) {
            fpu->last_ip = get32(image + 12);
            fpu->last_cs = get16(image + 16);
            fpu->last_opcode = get16(image + 18) & 0x7ff;
            fpu->last_dp = get32(image + 20);
            fpu->last_ds = get16(image + 24);
        } else {
            uint32_t word = get32(image + 16);
            fpu->last_ip = get16(image + 12) | ((word >> 12) & 0xffff) << 16;
            fpu->last_cs = 0;
            fpu->last_opcode = word & 0x7ff;
            fpu->last_dp = get16(image + 20) | ((get32(image + 24) >> 12) & 0xffff) << 16;
            fpu->last_ds = 0;
        }
    } else {
        fpu->control = get16(image + 0);
        fpu->status = get16(image + 2);
        tag = get16(image + 4);
        if (env->protected_mode) {
            fpu->last_ip = get16(image + 6);
            fpu->last_cs = get16(image + 8);
            fpu->last_opcode = 0; /* not part of the 16-bit protected image */
            fpu->last_dp = get16(image + 10);
            fpu->last_ds = get16(image + 12);
        } else {
            uint16_t word = get16(image + 8);
            fpu->last_ip = get16(image + 6) | (uint32_t)(word >> 12) << 16;
            fpu->last_cs = 0;
            fpu->last_opcode = word & 0x7ff;
            fpu->last_dp = get16(image + 10) | (uint32_t)(get16(image + 12) >> 12) << 16;
            fpu->last_ds = 0;
        }
    }
    fpu->control = (uint16_t)((fpu->control & FCW_WRITABLE) | FCW_ALWAYS_ONE);
    for (unsigned reg = 0; reg < 8; reg++) {
        fp80 value;
        memcpy(value.bytes, fpu->st[reg], 10);
        unsigned t = (tag >> (2 * reg)) & 3;
        set_physical_tag(fpu, reg, t == TAG_EMPTY ? TAG_EMPTY : fp80_tag(&value));
    }
    recompute_summary(fpu);
}

static enum x87_result store_env(struct x87 *x)
{
    uint8_t image[ENV_SIZE_32];
    build_env(x->env, x->fpu, image);
    if (!mem_write(x, 0, image, env_size(x->env)))
        return X87_MEMORY_FAULT;
    /* FNSTENV masks every exception after storing the environment. */
    x->fpu->control |= FCW_MASKS;
    return X87_DONE;
}

static enum x87_result restore_env(struct x87 *x)
{
    uint8_t image[ENV_SIZE_32];
    if (!mem_read(x, 0, image, env_size(x->env)))
        return X87_MEMORY_FAULT;
    load_env(x->env, x->fpu, image);
    return X87_DONE;
}

static enum x87_result save_state(struct x87 *x)
{
    uint8_t image[ENV_SIZE_32 + 80];
    unsigned size = env_size(x->env);
    build_env(x->env, x->fpu, image);
    for (unsigned i = 0; i < 8; i++)
        memcpy(image + size + 10 * i, x->fpu->st[physical(x->fpu, i)], 10);
    if (!mem_write(x, 0, image, size + 80))
        return X87_MEMORY_FAULT;
    x87_init(x->fpu);
    return X87_DONE;
}

static enum x87_result restore_state(struct x87 *x)
{
    uint8_t image[ENV_SIZE_32 + 80];
    unsigned size = env_size(x->env);
    if (!mem_read(x, 0, image, size + 80))
        return X87_MEMORY_FAULT;
    struct x86_fpu *fpu = x->fpu;
    uint16_t status = env_size(x->env) == ENV_SIZE_32 ? get16(image + 4) : get16(image + 2);
    unsigned top = (status & FSW_TOP) >> FSW_TOP_SHIFT;
    for (unsigned i = 0; i < 8; i++)
        memcpy(fpu->st[(top + i) & 7], image + size + 10 * i, 10);
    load_env(x->env, fpu, image);
    return X87_DONE;
}

/* ------------------------------------------------------------------------
 * Dispatch by opcode byte. */

static enum x87_result d9_memory(struct x87 *x)
{
    struct x86_fpu *fpu = x->fpu;
    uint8_t buf[2];
    switch (x->modrm_reg) {
    case 0:
        return load_memory(x, HOST_LD_M32, 4);
    case 2:
    case 3:
        return store_memory(x, HOST_ST_M32, 4, x->modrm_reg == 3);
    case 4:
        return restore_env(x);
    case 5:
        if (!mem_read(x, 0, buf, 2))
            return X87_MEMORY_FAULT;
        fpu->control = (uint16_t)((get16(buf) & FCW_WRITABLE) | FCW_ALWAYS_ONE);
        recompute_summary(fpu);
        return X87_DONE;
    case 6:
        return store_env(x);
    case 7:
        put16(buf, fpu->control);
        return mem_write(x, 0, buf, 2) ? X87_DONE : X87_MEMORY_FAULT;
    default:
        return X87_INVALID;
    }
}

static enum x87_result da_register(struct x87 *x)
{
    if (x->modrm_reg < 4) {
        conditional_move(x, false);
        return X87_DONE;
    }
    if (x->modrm_reg == 5 && x->rm == 1) { /* FUCOMPP */
        compare_registers(x, HOST_UCOM, 1, false, 2);
        return X87_DONE;
    }
    return X87_INVALID;
}

static enum x87_result db_register(struct x87 *x)
{
    switch (x->modrm_reg) {
    case 0:
    case 1:
    case 2:
    case 3:
        conditional_move(x, true);
        return X87_DONE;
    case 4:
        switch (x->rm) {
        case 0: /* FNENI, FNDISI and FNSETPM do nothing after the 287 */
        case 1:
        case 4:
            return X87_DONE;
        case 2:
            x->fpu->status &= (uint16_t) ~(FSW_EXCEPTIONS | FSW_SF | FSW_ES | FSW_B);
            return X87_DONE;
        case 3:
            x87_init(x->fpu);
            return X87_DONE;
        default:
            return X87_INVALID;
        }
    case 5:
        compare_registers(x, HOST_UCOM, x->rm, true, 0);
        return X87_DONE;
    case 6:
        compare_registers(x, HOST_COM, x->rm, true, 0);
        return X87_DONE;
    default:
        return X87_INVALID;
    }
}

static enum x87_result db_memory(struct x87 *x)
{
    switch (x->modrm_reg) {
    case 0:
        return load_memory(x, HOST_ILD_M32, 4);
    case 2:
    case 3:
        return store_memory(x, HOST_IST_M32, 4, x->modrm_reg == 3);
    case 5:
        return load_extended(x);
    case 7:
        return store_extended(x);
    default:
        return X87_INVALID; /* FISTTP (SSE3) and undefined encodings */
    }
}

static enum x87_result dd_register(struct x87 *x)
{
    struct x86_fpu *fpu = x->fpu;
    switch (x->modrm_reg) {
    case 0: /* FFREE */
        set_physical_tag(fpu, physical(fpu, x->rm), TAG_EMPTY);
        return X87_DONE;
    case 1: /* FXCH4, an alias */
        exchange(fpu, x->rm);
        return X87_DONE;
    case 2:
    case 3:
        store_register(fpu, x->rm, x->modrm_reg == 3);
        return X87_DONE;
    case 4:
    case 5:
        compare_registers(x, HOST_UCOM, x->rm, false, x->modrm_reg == 5);
        return X87_DONE;
    default:
        return X87_INVALID;
    }
}

static enum x87_result dd_memory(struct x87 *x)
{
    uint8_t buf[2];
    switch (x->modrm_reg) {
    case 0:
        return load_memory(x, HOST_LD_M64, 8);
    case 2:
    case 3:
        return store_memory(x, HOST_ST_M64, 8, x->modrm_reg == 3);
    case 4:
        return restore_state(x);
    case 6:
        return save_state(x);
    case 7:
        put16(buf, x->fpu->status);
        return mem_write(x, 0, buf, 2) ? X87_DONE : X87_MEMORY_FAULT;
    default:
        return X87_INVALID;
    }
}

static enum x87_result de_register(struct x87 *x)
{
    if (x->modrm_reg == 3) {
        if (x->rm != 1)
            return X87_INVALID;
        compare_registers(x, HOST_COM, 1, false, 2); /* FCOMPP */
        return X87_DONE;
    }
    if (x->modrm_reg == 2) { /* FCOMP5, an alias of FCOMP */
        compare_registers(x, HOST_COM, x->rm, false, 1);
        return X87_DONE;
    }
    arith_registers(x, true, true);
    return X87_DONE;
}

static enum x87_result df_register(struct x87 *x)
{
    struct x86_fpu *fpu = x->fpu;
    switch (x->modrm_reg) {
    case 0: /* FFREEP */
        set_physical_tag(fpu, physical(fpu, x->rm), TAG_EMPTY);
        stack_pop(fpu);
        return X87_DONE;
    case 1: /* FXCH7 */
        exchange(fpu, x->rm);
        return X87_DONE;
    case 2: /* FSTP8 and FSTP9 */
    case 3:
        store_register(fpu, x->rm, true);
        return X87_DONE;
    case 4:
        if (x->rm != 0)
            return X87_INVALID;
        *x->env->eax = (*x->env->eax & 0xffff0000u) | fpu->status;
        return X87_DONE;
    case 5:
        compare_registers(x, HOST_UCOM, x->rm, true, 1);
        return X87_DONE;
    case 6:
        compare_registers(x, HOST_COM, x->rm, true, 1);
        return X87_DONE;
    default:
        return X87_INVALID;
    }
}

static enum x87_result df_memory(struct x87 *x)
{
    switch (x->modrm_reg) {
    case 0:
        return load_memory(x, HOST_ILD_M16, 2);
    case 2:
    case 3:
        return store_memory(x, HOST_IST_M16, 2, x->modrm_reg == 3);
    case 4:
        return load_memory(x, HOST_BLD, 10);
    case 5:
        return load_memory(x, HOST_ILD_M64, 8);
    case 6:
        return store_memory(x, HOST_BST, 10, true);
    case 7:
        return store_memory(x, HOST_IST_M64, 8, true);
    default:
        return X87_INVALID;
    }
}

/* The control instructions, which leave FIP, FDP and FOP alone. */
static bool is_control(unsigned opcode, bool memory, unsigned reg, unsigned rm)
{
    if (memory)
        return (opcode == 0xd9 && reg >= 4) || (opcode == 0xdd && (reg == 4 || reg >= 6));
    return (opcode == 0xdb && reg == 4) || (opcode == 0xdf && reg == 4 && rm == 0);
}

enum x87_result x87_execute(struct x87_env *env, const ZydisDecodedInstruction *insn,
                            const ZydisDecodedOperand *operands)
{
    (void)operands;
    if (insn->opcode_map != ZYDIS_OPCODE_MAP_DEFAULT || insn->opcode < 0xd8 ||
        insn->opcode > 0xdf || !(insn->attributes & ZYDIS_ATTRIB_HAS_MODRM))
        return X87_INVALID;

    struct x87 x = {
        .env = env,
        .fpu = env->fpu,
        .modrm_reg = insn->raw.modrm.reg,
        .rm = insn->raw.modrm.rm,
    };
    unsigned opcode = insn->opcode;
    bool memory = insn->raw.modrm.mod != 3;
    enum x87_result result;

    switch (opcode) {
    case 0xd8:
        if (memory) {
            result = arith_memory(&x, HOST_LD_M32, 4);
        } else {
            arith_registers(&x, false, false);
            result = X87_DONE;
        }
        break;
    case 0xd9:
        result = memory ? d9_memory(&x) : d9_register(&x);
        break;
    case 0xda:
        result = memory ? arith_memory(&x, HOST_ILD_M32, 4) : da_register(&x);
        break;
    case 0xdb:
        result = memory ? db_memory(&x) : db_register(&x);
        break;
    case 0xdc:
        if (memory) {
            result = arith_memory(&x, HOST_LD_M64, 8);
        } else if (x.modrm_reg == 2 || x.modrm_reg == 3) { /* FCOM2, FCOMP3 aliases */
            compare_registers(&x, HOST_COM, x.rm, false, x.modrm_reg == 3);
            result = X87_DONE;
        } else {
            arith_registers(&x, true, false);
            result = X87_DONE;
        }
        break;
    case 0xdd:
        result = memory ? dd_memory(&x) : dd_register(&x);
        break;
    case 0xde:
        result = memory ? arith_memory(&x, HOST_ILD_M16, 2) : de_register(&x);
        break;
    case 0xdf:
        result = memory ? df_memory(&x) : df_register(&x);
        break;
    default:
        return X87_INVALID;
    }

    if (result == X87_DONE && !is_control(opcode, memory, x.modrm_reg, x.rm)) {
        struct x86_fpu *fpu = env->fpu;
        fpu->last_opcode =
            (uint16_t)((opcode & 7) << 8 | insn->raw.modrm.mod << 6 | x.modrm_reg << 3 | x.rm);
        fpu->last_cs = env->cs;
        fpu->last_ip = env->ip;
        if (memory) {
            fpu->last_ds = env->ds;
            fpu->last_dp = env->dp;
        }
    }
    return result;
}

bool x87_exception_pending(const struct x86_fpu *fpu)
{
    return (fpu->status & FSW_ES) != 0;
}

void x87_init(struct x86_fpu *fpu)
{
    fpu->control = FCW_INIT;
    fpu->status = 0;
    fpu->tag = 0xffff;
    fpu->last_opcode = 0;
    fpu->last_ip = 0;
    fpu->last_cs = 0;
    fpu->last_dp = 0;
    fpu->last_ds = 0;
}
