/* Unit tests for the x87 unit. Real instruction bytes are decoded by Zydis and
 * run through x87_execute() over a small fake memory. The main oracle is the
 * host's own x87: the very same instruction bytes run on the host (the memory
 * forms address [eax], which is [rax] in 64-bit mode) from the same register
 * stack, control word and memory, and the two resulting states must agree bit
 * for bit. Hand-worked values cover what the host cannot show: the 16-bit and
 * real-mode environment images, and faulting memory. */
#include <glib.h>

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#include "dbt/x87.h"

#define MEM_SIZE 128

/* ------------------------------------------------------------------------
 * The emulated side. */

struct fake_memory {
    uint8_t bytes[MEM_SIZE];
    bool fault; /* every access faults */
};

static bool fake_read(void *opaque, uint32_t delta, void *buf, unsigned len)
{
    struct fake_memory *mem = opaque;
    if (mem->fault || delta + len > MEM_SIZE)
        return false;
    memcpy(buf, mem->bytes + delta, len);
    return true;
}

static bool fake_write(void *opaque, uint32_t delta, const void *buf, unsigned len)
{
    struct fake_memory *mem = opaque;
    if (mem->fault || delta + len > MEM_SIZE)
        return false;
    memcpy(mem->bytes + delta, buf, len);
    return true;
}

struct machine_state {
    struct x86_fpu fpu;
    struct fake_memory mem;
    uint32_t eax;
    uint32_t eflags;
    struct x87_env env;
};

static void machine_init(struct machine_state *m)
{
    memset(m, 0, sizeof(*m));
    x87_init(&m->fpu);
    m->eflags = 0x2;
    m->env = (struct x87_env){
        .fpu = &m->fpu,
        .read = fake_read,
        .write = fake_write,
        .opaque = &m->mem,
        .eax = &m->eax,
        .eflags = &m->eflags,
        .protected_mode = true,
        .operand32 = true,
        .cs = 0x08,
        .ip = 0x1000,
        .ds = 0x10,
        .dp = 0x2000,
    };
}

struct decoded {
    ZydisDecodedInstruction insn;
    ZydisDecodedOperand operands[ZYDIS_MAX_OPERAND_COUNT];
};

static void decode(const uint8_t *bytes, unsigned len, struct decoded *out)
{
    ZydisDecoder decoder;
    ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
    ZyanStatus status = ZydisDecoderDecodeFull(&decoder, bytes, len, &out->insn, out->operands);
    g_assert_true(ZYAN_SUCCESS(status));
    g_assert_cmpuint(out->insn.length, ==, len);
}

static enum x87_result run_decoded(struct machine_state *m, struct decoded *d)
{
    return x87_execute(&m->env, &d->insn, d->operands);
}

static enum x87_result run_bytes(struct machine_state *m, const uint8_t *bytes, unsigned len)
{
    struct decoded d;
    decode(bytes, len, &d);
    return run_decoded(m, &d);
}

#define RUN(m, ...)                                                                                \
    ({                                                                                             \
        const uint8_t bytes_[] = {__VA_ARGS__};                                                    \
        run_bytes((m), bytes_, sizeof(bytes_));                                                    \
    })

static unsigned top_of(const struct x86_fpu *fpu)
{
    return (fpu->status >> 11) & 7;
}

/* Pushes an 80-bit value as FLD would, without running an instruction. */
static void push_value(struct x86_fpu *fpu, const uint8_t value[10])
{
    unsigned top = (top_of(fpu) - 1) & 7;
    fpu->status = (uint16_t)((fpu->status & ~0x3800) | top << 11);
    memcpy(fpu->st[top], value, 10);
    /* The tag is set by the code under test elsewhere; here it is derived
     * independently from the SDM's classification. */
    uint16_t exponent = (uint16_t)((value[8] | value[9] << 8) & 0x7fff);
    uint64_t significand;
    memcpy(&significand, value, 8);
    unsigned tag = 0;
    if (exponent == 0)
        tag = significand ? 2 : 1;
    else if (exponent == 0x7fff || !(significand >> 63))
        tag = 2;
    fpu->tag = (uint16_t)((fpu->tag & ~(3u << (2 * top))) | tag << (2 * top));
}

static const uint8_t *st_bytes(const struct x86_fpu *fpu, unsigned i)
{
    return fpu->st[(top_of(fpu) + i) & 7];
}

static long double st_value(const struct x86_fpu *fpu, unsigned i)
{
    long double v = 0;
    memcpy(&v, st_bytes(fpu, i), 10);
    return v;
}

static void push_long_double(struct x86_fpu *fpu, long double v)
{
    uint8_t bytes[16] = {0};
    memcpy(bytes, &v, 10);
    push_value(fpu, bytes);
}

/* ------------------------------------------------------------------------
 * The host oracle: a little code generated at run time that loads the host
 * x87 like the emulated one, runs the instruction bytes and saves the whole
 * state with FNSAVE (non-waiting, so an unmasked exception stays pending
 * and is discarded by FNSAVE's reinitialisation). */

struct oracle_block {
    uint16_t control;
    uint16_t pad;
    uint32_t eflags_in;
    uint32_t eflags_out;
    uint32_t eax_out;
    uint8_t stack[8][16]; /* stack[0] is pushed last: ST(0) */
    uint8_t mem[MEM_SIZE];
    uint8_t save[112];
};

static uint8_t *oracle_code;

static void emit(uint8_t **p, const uint8_t *bytes, unsigned len)
{
    memcpy(*p, bytes, len);
    *p += len;
}

static void emit_disp(uint8_t **p, const uint8_t *prefix, unsigned len, size_t disp)
{
    emit(p, prefix, len);
    uint32_t d = (uint32_t)disp;
    emit(p, (const uint8_t *)&d, 4);
}

static void oracle_build(const uint8_t *insn, unsigned len, unsigned depth)
{
    uint8_t *p = oracle_code;
    emit(&p, (const uint8_t[]){0xdb, 0xe3}, 2); /* fninit */
    emit(&p, (const uint8_t[]){0xd9, 0x2f}, 2); /* fldcw [rdi] */
    for (unsigned i = depth; i-- > 0;)
        emit_disp(&p, (const uint8_t[]){0xdb, 0xaf}, 2, /* fld tword [rdi+disp] */
                  offsetof(struct oracle_block, stack) + 16 * i);
    emit_disp(&p, (const uint8_t[]){0x8b, 0x8f}, 2, /* mov ecx, [rdi+disp] */
              offsetof(struct oracle_block, eflags_in));
    emit(&p, (const uint8_t[]){0x51, 0x9d}, 2);           /* push rcx; popfq */
    emit_disp(&p, (const uint8_t[]){0x48, 0x8d, 0x87}, 3, /* lea rax, [rdi+disp] */
              offsetof(struct oracle_block, mem));
    emit(&p, insn, len);
    emit(&p, (const uint8_t[]){0x9c, 0x59}, 2); /* pushfq; pop rcx */
    emit_disp(&p, (const uint8_t[]){0x89, 0x8f}, 2, offsetof(struct oracle_block, eflags_out));
    emit_disp(&p, (const uint8_t[]){0x89, 0x87}, 2, offsetof(struct oracle_block, eax_out));
    emit_disp(&p, (const uint8_t[]){0xdd, 0xb7}, 2, /* fnsave [rdi+disp] */
              offsetof(struct oracle_block, save));
    emit(&p, (const uint8_t[]){0xc3}, 1);
}

static void oracle_run(struct oracle_block *block)
{
    ((void (*)(struct oracle_block *))(void *)oracle_code)(block);
}

static void oracle_setup(void)
{
    if (oracle_code)
        return;
    void *page =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_assert_true(page != MAP_FAILED);
    oracle_code = page;
}

/* ------------------------------------------------------------------------
 * Operand values. */

static void ld_bytes(long double v, uint8_t out[16])
{
    memset(out, 0, 16);
    memcpy(out, &v, 10);
}

static void raw_bytes(uint64_t significand, uint16_t sign_exponent, uint8_t out[16])
{
    memset(out, 0, 16);
    memcpy(out, &significand, 8);
    memcpy(out + 8, &sign_exponent, 2);
}

#define NR_VALUES 40
static uint8_t values[NR_VALUES][16];
static unsigned nr_values;

static void values_setup(void)
{
    if (nr_values)
        return;
    static const long double plain[] = {
        0.0L,
        -0.0L,
        1.0L,
        -1.0L,
        1.0L / 3.0L,
        -2.0L / 3.0L,
        3.0L,
        2.5L,
        -1.5L,
        1e10L,
        123456789.123L,
        3.14159265358979323846264338327950288L,
        -7.25e-3L,
        LDBL_MAX,
        LDBL_MIN,
        LDBL_MIN / 3.0L, /* a denormal */
        1e4000L,
        -1e-4000L,
        INFINITY,
        -INFINITY,
        9.223372036854775808e18L, /* 2^63 */
        1e18L,
        -99999.5L,
        32767.5L,
        -32768.0L,
        2147483648.0L,
        1e300L,
        1e-300L,
        6.0e38L,
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(plain); i++)
        ld_bytes(plain[i], values[nr_values++]);
    raw_bytes(0xc000000000000000ull, 0x7fff, values[nr_values++]); /* QNaN */
    raw_bytes(0xa000000000000001ull, 0x7fff, values[nr_values++]); /* SNaN */
    raw_bytes(0xc000000000000000ull, 0xffff, values[nr_values++]); /* indefinite */
    raw_bytes(0x4000000000000000ull, 0x4000, values[nr_values++]); /* unnormal */
    raw_bytes(0x8000000000000001ull, 0x0000, values[nr_values++]); /* pseudo-denormal */
    /* A few values with full 64-bit significands, so rounding matters. */
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    while (nr_values < NR_VALUES) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t significand = seed | 1ull << 63;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint16_t exponent = (uint16_t)(16383 - 40 + (seed >> 58));
        raw_bytes(significand, (uint16_t)(exponent | ((seed >> 40) & 1) << 15),
                  values[nr_values++]);
    }
}

/* ------------------------------------------------------------------------
 * The comparison. */

enum mem_format { MEM_NONE, MEM_F32, MEM_F64, MEM_F80, MEM_I16, MEM_I32, MEM_I64, MEM_BCD };

/* Converts a value to a memory format on the host, rounding to nearest. */
static void host_convert(enum mem_format format, const uint8_t *value, uint8_t *out)
{
    long double v;
    memcpy(&v, value, 16);
    memset(out, 0, 16);
    switch (format) {
    case MEM_NONE:
        break;
    case MEM_F32:
        __asm__ volatile("fldt %1\n\tfstps %0" : "=m"(*(uint32_t *)out) : "m"(v));
        break;
    case MEM_F64:
        __asm__ volatile("fldt %1\n\tfstpl %0" : "=m"(*(uint64_t *)out) : "m"(v));
        break;
    case MEM_F80:
        memcpy(out, value, 10);
        break;
    case MEM_I16:
        __asm__ volatile("fldt %1\n\tfistps %0" : "=m"(*(uint16_t *)out) : "m"(v));
        break;
    case MEM_I32:
        __asm__ volatile("fldt %1\n\tfistpl %0" : "=m"(*(uint32_t *)out) : "m"(v));
        break;
    case MEM_I64:
        __asm__ volatile("fldt %1\n\tfistpll %0" : "=m"(*(uint64_t *)out) : "m"(v));
        break;
    case MEM_BCD:
        __asm__ volatile("fldt %1\n\tfbstp %0" : "=m"(*(uint8_t(*)[10])out) : "m"(v));
        break;
    }
    /* Converting a NaN or an out-of-range value above may have raised a
     * masked exception on the host; that is of no interest here. */
    __asm__ volatile("fnclex");
}

struct x87_case {
    const char *name;
    uint8_t bytes[3];
    unsigned len;
    enum mem_format format;
    bool uses_eflags;
};

#define REG(name, a, b)                                                                            \
    {                                                                                              \
        name, {a, b}, 2, MEM_NONE, false                                                           \
    }
#define FLAGS(name, a, b)                                                                          \
    {                                                                                              \
        name, {a, b}, 2, MEM_NONE, true                                                            \
    }
#define MEM(name, a, b, f)                                                                         \
    {                                                                                              \
        name, {a, b}, 2, f, false                                                                  \
    }

static const struct x87_case cases[] = {
    REG("fadd st0,st1", 0xd8, 0xc1),
    REG("fadd st0,st0", 0xd8, 0xc0),
    REG("fmul st0,st1", 0xd8, 0xc9),
    REG("fcom st1", 0xd8, 0xd1),
    REG("fcomp st1", 0xd8, 0xd9),
    REG("fsub st0,st1", 0xd8, 0xe1),
    REG("fsubr st0,st1", 0xd8, 0xe9),
    REG("fdiv st0,st1", 0xd8, 0xf1),
    REG("fdivr st0,st1", 0xd8, 0xf9),
    REG("fadd st1,st0", 0xdc, 0xc1),
    REG("fmul st1,st0", 0xdc, 0xc9),
    REG("fcom2 st1", 0xdc, 0xd1),
    REG("fcomp3 st1", 0xdc, 0xd9),
    REG("fsubr st1,st0", 0xdc, 0xe1),
    REG("fsub st1,st0", 0xdc, 0xe9),
    REG("fdivr st1,st0", 0xdc, 0xf1),
    REG("fdiv st1,st0", 0xdc, 0xf9),
    REG("faddp", 0xde, 0xc1),
    REG("fmulp", 0xde, 0xc9),
    REG("fcomp5 st1", 0xde, 0xd1),
    REG("fcompp", 0xde, 0xd9),
    REG("fsubrp", 0xde, 0xe1),
    REG("fsubp", 0xde, 0xe9),
    REG("fdivrp", 0xde, 0xf1),
    REG("fdivp", 0xde, 0xf9),
    REG("fld st1", 0xd9, 0xc1),
    REG("fxch st1", 0xd9, 0xc9),
    REG("fnop", 0xd9, 0xd0),
    REG("fstp1 st1", 0xd9, 0xd9),
    REG("fchs", 0xd9, 0xe0),
    REG("fabs", 0xd9, 0xe1),
    REG("ftst", 0xd9, 0xe4),
    REG("fxam", 0xd9, 0xe5),
    REG("fld1", 0xd9, 0xe8),
    REG("fldl2t", 0xd9, 0xe9),
    REG("fldl2e", 0xd9, 0xea),
    REG("fldpi", 0xd9, 0xeb),
    REG("fldlg2", 0xd9, 0xec),
    REG("fldln2", 0xd9, 0xed),
    REG("fldz", 0xd9, 0xee),
    REG("f2xm1", 0xd9, 0xf0),
    REG("fyl2x", 0xd9, 0xf1),
    REG("fptan", 0xd9, 0xf2),
    REG("fpatan", 0xd9, 0xf3),
    REG("fxtract", 0xd9, 0xf4),
    REG("fprem1", 0xd9, 0xf5),
    REG("fdecstp", 0xd9, 0xf6),
    REG("fincstp", 0xd9, 0xf7),
    REG("fprem", 0xd9, 0xf8),
    REG("fyl2xp1", 0xd9, 0xf9),
    REG("fsqrt", 0xd9, 0xfa),
    REG("fsincos", 0xd9, 0xfb),
    REG("frndint", 0xd9, 0xfc),
    REG("fscale", 0xd9, 0xfd),
    REG("fsin", 0xd9, 0xfe),
    REG("fcos", 0xd9, 0xff),
    FLAGS("fcmovb", 0xda, 0xc1),
    FLAGS("fcmove", 0xda, 0xc9),
    FLAGS("fcmovbe", 0xda, 0xd1),
    FLAGS("fcmovu", 0xda, 0xd9),
    REG("fucompp", 0xda, 0xe9),
    FLAGS("fcmovnb", 0xdb, 0xc1),
    FLAGS("fcmovne", 0xdb, 0xc9),
    FLAGS("fcmovnbe", 0xdb, 0xd1),
    FLAGS("fcmovnu", 0xdb, 0xd9),
    REG("fneni", 0xdb, 0xe0),
    REG("fndisi", 0xdb, 0xe1),
    REG("fnclex", 0xdb, 0xe2),
    REG("fninit", 0xdb, 0xe3),
    REG("fnsetpm", 0xdb, 0xe4),
    FLAGS("fucomi", 0xdb, 0xe9),
    FLAGS("fcomi", 0xdb, 0xf1),
    REG("ffree st1", 0xdd, 0xc1),
    REG("fxch4 st1", 0xdd, 0xc9),
    REG("fst st1", 0xdd, 0xd1),
    REG("fstp st1", 0xdd, 0xd9),
    REG("fstp st0", 0xdd, 0xd8),
    REG("fucom st1", 0xdd, 0xe1),
    REG("fucomp st1", 0xdd, 0xe9),
    REG("ffreep st1", 0xdf, 0xc1),
    REG("fxch7 st1", 0xdf, 0xc9),
    REG("fstp8 st1", 0xdf, 0xd1),
    REG("fstp9 st1", 0xdf, 0xd9),
    REG("fnstsw ax", 0xdf, 0xe0),
    FLAGS("fucomip", 0xdf, 0xe9),
    FLAGS("fcomip", 0xdf, 0xf1),
    MEM("fadd m32", 0xd8, 0x00, MEM_F32),
    MEM("fmul m32", 0xd8, 0x08, MEM_F32),
    MEM("fcom m32", 0xd8, 0x10, MEM_F32),
    MEM("fcomp m32", 0xd8, 0x18, MEM_F32),
    MEM("fsub m32", 0xd8, 0x20, MEM_F32),
    MEM("fsubr m32", 0xd8, 0x28, MEM_F32),
    MEM("fdiv m32", 0xd8, 0x30, MEM_F32),
    MEM("fdivr m32", 0xd8, 0x38, MEM_F32),
    MEM("fadd m64", 0xdc, 0x00, MEM_F64),
    MEM("fmul m64", 0xdc, 0x08, MEM_F64),
    MEM("fcom m64", 0xdc, 0x10, MEM_F64),
    MEM("fcomp m64", 0xdc, 0x18, MEM_F64),
    MEM("fsub m64", 0xdc, 0x20, MEM_F64),
    MEM("fsubr m64", 0xdc, 0x28, MEM_F64),
    MEM("fdiv m64", 0xdc, 0x30, MEM_F64),
    MEM("fdivr m64", 0xdc, 0x38, MEM_F64),
    MEM("fiadd m32", 0xda, 0x00, MEM_I32),
    MEM("fimul m32", 0xda, 0x08, MEM_I32),
    MEM("ficom m32", 0xda, 0x10, MEM_I32),
    MEM("ficomp m32", 0xda, 0x18, MEM_I32),
    MEM("fisub m32", 0xda, 0x20, MEM_I32),
    MEM("fisubr m32", 0xda, 0x28, MEM_I32),
    MEM("fidiv m32", 0xda, 0x30, MEM_I32),
    MEM("fidivr m32", 0xda, 0x38, MEM_I32),
    MEM("fiadd m16", 0xde, 0x00, MEM_I16),
    MEM("fimul m16", 0xde, 0x08, MEM_I16),
    MEM("ficom m16", 0xde, 0x10, MEM_I16),
    MEM("ficomp m16", 0xde, 0x18, MEM_I16),
    MEM("fisub m16", 0xde, 0x20, MEM_I16),
    MEM("fisubr m16", 0xde, 0x28, MEM_I16),
    MEM("fidiv m16", 0xde, 0x30, MEM_I16),
    MEM("fidivr m16", 0xde, 0x38, MEM_I16),
    MEM("fld m32", 0xd9, 0x00, MEM_F32),
    MEM("fst m32", 0xd9, 0x10, MEM_F32),
    MEM("fstp m32", 0xd9, 0x18, MEM_F32),
    MEM("fldcw", 0xd9, 0x28, MEM_I16),
    MEM("fnstcw", 0xd9, 0x38, MEM_I16),
    MEM("fild m32", 0xdb, 0x00, MEM_I32),
    MEM("fist m32", 0xdb, 0x10, MEM_I32),
    MEM("fistp m32", 0xdb, 0x18, MEM_I32),
    MEM("fld m80", 0xdb, 0x28, MEM_F80),
    MEM("fstp m80", 0xdb, 0x38, MEM_F80),
    MEM("fld m64", 0xdd, 0x00, MEM_F64),
    MEM("fst m64", 0xdd, 0x10, MEM_F64),
    MEM("fstp m64", 0xdd, 0x18, MEM_F64),
    MEM("fnstsw m16", 0xdd, 0x38, MEM_I16),
    MEM("fild m16", 0xdf, 0x00, MEM_I16),
    MEM("fist m16", 0xdf, 0x10, MEM_I16),
    MEM("fistp m16", 0xdf, 0x18, MEM_I16),
    MEM("fbld", 0xdf, 0x20, MEM_BCD),
    MEM("fild m64", 0xdf, 0x28, MEM_I64),
    MEM("fbstp", 0xdf, 0x30, MEM_BCD),
    MEM("fistp m64", 0xdf, 0x38, MEM_I64),
};

static unsigned mismatches;

/* Runs one case on both sides; returns false (after printing why) when they
 * disagree. */
static bool compare_one(const struct x87_case *c, struct decoded *d, uint16_t control,
                        unsigned depth, const uint8_t *a, const uint8_t *b, uint32_t eflags)
{
    static struct oracle_block block;
    memset(&block, 0, sizeof(block));
    block.control = control;
    block.eflags_in = eflags | 0x202;
    /* ST(0) is a, ST(1) is b, deeper registers repeat values. */
    for (unsigned i = 0; i < depth; i++)
        memcpy(block.stack[i], i == 0 ? a : i == 1 ? b : values[(i * 7) % nr_values], 16);
    host_convert(c->format, b, block.mem);

    struct machine_state m;
    machine_init(&m);
    m.fpu.control = (uint16_t)((control & 0x1f3f) | 0x40);
    for (unsigned i = depth; i-- > 0;)
        push_value(&m.fpu, block.stack[i]);
    memcpy(m.mem.bytes, block.mem, MEM_SIZE);
    m.eflags = block.eflags_in;
    m.eax = (uint32_t)(uintptr_t)block.mem;

    oracle_run(&block);
    enum x87_result result = run_decoded(&m, d);

    bool same = result == X87_DONE;
    uint16_t host_control, host_status, host_tag;
    memcpy(&host_control, block.save + 0, 2);
    memcpy(&host_status, block.save + 4, 2);
    memcpy(&host_tag, block.save + 8, 2);
    same = same && host_control == m.fpu.control && host_status == m.fpu.status &&
           host_tag == m.fpu.tag;
    for (unsigned i = 0; same && i < 8; i++) {
        unsigned reg = (top_of(&m.fpu) + i) & 7;
        if (((m.fpu.tag >> (2 * reg)) & 3) != 3)
            same = memcmp(block.save + 28 + 10 * i, st_bytes(&m.fpu, i), 10) == 0;
    }
    same = same && memcmp(block.mem, m.mem.bytes, MEM_SIZE) == 0;
    const uint32_t arith_flags = 0x8d5; /* OF SF ZF AF PF CF */
    same = same && (block.eflags_out & arith_flags) == (m.eflags & arith_flags);
    same = same && block.eax_out == m.eax;
    if (!same && mismatches++ < (g_getenv("X87_VERBOSE") ? 100000u : 20u)) {
        g_printerr("MISMATCH %s cw=%04x depth=%u result=%d\n", c->name, control, depth, result);
        g_printerr("  host: sw=%04x tag=%04x eflags=%03x  emu: sw=%04x tag=%04x eflags=%03x\n",
                   host_status, host_tag, block.eflags_out & arith_flags, m.fpu.status, m.fpu.tag,
                   m.eflags & arith_flags);
        g_printerr("  a=");
        for (int k = 9; k >= 0; k--)
            g_printerr("%02x", a[k]);
        g_printerr(" b=");
        for (int k = 9; k >= 0; k--)
            g_printerr("%02x", b[k]);
        g_printerr("\n  host st0=");
        for (int k = 9; k >= 0; k--)
            g_printerr("%02x", block.save[28 + k]);
        g_printerr(" emu st0=");
        for (int k = 9; k >= 0; k--)
            g_printerr("%02x", st_bytes(&m.fpu, 0)[k]);
        g_printerr("\n  host mem=");
        for (int k = 0; k < 10; k++)
            g_printerr("%02x", block.mem[k]);
        g_printerr(" emu mem=");
        for (int k = 0; k < 10; k++)
            g_printerr("%02x", m.mem.bytes[k]);
        g_printerr("\n");
    }
    return same;
}

/* Every case, with every pair of operands, under every rounding and precision
 * control with all exceptions masked. */
static void test_matches_host_masked(void)
{
    oracle_setup();
    values_setup();
    mismatches = 0;
    static const uint16_t controls[] = {
        0x037f, 0x077f, 0x0b7f, 0x0f7f, /* 64-bit precision, each rounding */
        0x027f, 0x067f, 0x0a7f, 0x0e7f, /* 53-bit precision */
        0x007f, 0x047f, 0x087f, 0x0c7f, /* 24-bit precision */
    };
    unsigned runs = 0;
    for (unsigned k = 0; k < G_N_ELEMENTS(cases); k++) {
        const struct x87_case *c = &cases[k];
        struct decoded d;
        decode(c->bytes, c->len, &d);
        oracle_build(c->bytes, c->len, 2);
        for (unsigned ci = 0; ci < G_N_ELEMENTS(controls); ci++)
            for (unsigned i = 0; i < nr_values; i++)
                for (unsigned j = 0; j < nr_values; j++) {
                    uint32_t eflags = c->uses_eflags ? (i + j) % 8 * 0x20 : 0;
                    /* Spread CF, ZF and PF over the cases for FCMOVcc. */
                    eflags = (eflags & 0x20 ? 0x01 : 0) | (eflags & 0x40 ? 0x40 : 0) |
                             (eflags & 0x80 ? 0x04 : 0);
                    compare_one(c, &d, controls[ci], 2, values[i], values[j], eflags);
                    runs++;
                }
    }
    g_test_message("%u runs, %u mismatches", runs, mismatches);
    g_assert_cmpuint(mismatches, ==, 0);
}

/* The same with exceptions unmasked, one at a time and all together:
 * suppressed results, biased results of overflow and underflow, ES and B. */
static void test_matches_host_unmasked(void)
{
    oracle_setup();
    values_setup();
    mismatches = 0;
    static const uint16_t controls[] = {
        0x0340, 0x037e, 0x037d, 0x037b, 0x0377, 0x036f, 0x035f, 0x0b40, 0x0040, 0x0240,
    };
    for (unsigned k = 0; k < G_N_ELEMENTS(cases); k++) {
        const struct x87_case *c = &cases[k];
        struct decoded d;
        decode(c->bytes, c->len, &d);
        oracle_build(c->bytes, c->len, 2);
        for (unsigned ci = 0; ci < G_N_ELEMENTS(controls); ci++)
            for (unsigned i = 0; i < nr_values; i++)
                for (unsigned j = 0; j < nr_values; j++)
                    compare_one(c, &d, controls[ci], 2, values[i], values[j], 0x41);
    }
    g_assert_cmpuint(mismatches, ==, 0);
}

/* Stack underflow (depth 0 and 1) and overflow (depth 8), masked and not. */
static void test_matches_host_stack_faults(void)
{
    oracle_setup();
    values_setup();
    mismatches = 0;
    static const unsigned depths[] = {0, 1, 7, 8};
    static const uint16_t controls[] = {0x037f, 0x037e, 0x0340};
    for (unsigned k = 0; k < G_N_ELEMENTS(cases); k++) {
        const struct x87_case *c = &cases[k];
        struct decoded d;
        decode(c->bytes, c->len, &d);
        for (unsigned di = 0; di < G_N_ELEMENTS(depths); di++) {
            oracle_build(c->bytes, c->len, depths[di]);
            for (unsigned ci = 0; ci < G_N_ELEMENTS(controls); ci++)
                for (unsigned i = 0; i < 6; i++)
                    compare_one(c, &d, controls[ci], depths[di], values[i * 5], values[i + 2],
                                0x01);
        }
    }
    g_assert_cmpuint(mismatches, ==, 0);
}

/* ------------------------------------------------------------------------
 * Hand-worked cases. */

/* Guards against an oracle that agrees for the wrong reason: known results
 * of the reversed forms. */
static void test_known_results(void)
{
    struct machine_state m;
    machine_init(&m);
    push_long_double(&m.fpu, 3.0L);                     /* ST(1) */
    push_long_double(&m.fpu, 5.0L);                     /* ST(0) */
    g_assert_cmpint(RUN(&m, 0xdc, 0xe9), ==, X87_DONE); /* fsub st1, st0: 3 - 5 */
    g_assert_true(st_value(&m.fpu, 1) == -2.0L);
    g_assert_cmpint(RUN(&m, 0xdc, 0xe1), ==, X87_DONE); /* fsubr st1, st0: 5 - -2 */
    g_assert_true(st_value(&m.fpu, 1) == 7.0L);
    g_assert_cmpint(RUN(&m, 0xde, 0xf9), ==, X87_DONE); /* fdivp: 7 / 5 */
    g_assert_cmpuint(top_of(&m.fpu), ==, 7);
    g_assert_true(st_value(&m.fpu, 0) == 7.0L / 5.0L);
    g_assert_cmpuint(m.fpu.tag, ==, 0x3fff);

    /* FIADD m16 adds the integer -300. */
    int16_t minus300 = -300;
    memcpy(m.mem.bytes, &minus300, 2);
    g_assert_cmpint(RUN(&m, 0xde, 0x00), ==, X87_DONE);
    g_assert_true(st_value(&m.fpu, 0) == 7.0L / 5.0L - 300.0L);
    g_assert_cmpuint(m.fpu.last_opcode, ==, 0x600);
    g_assert_cmpuint(m.fpu.last_cs, ==, 0x08);
    g_assert_cmpuint(m.fpu.last_ip, ==, 0x1000);
    g_assert_cmpuint(m.fpu.last_ds, ==, 0x10);
    g_assert_cmpuint(m.fpu.last_dp, ==, 0x2000);
}

/* Precision control rounds the significand; rounding control picks the
 * direction. 1 + 2^-30 fits 53 bits but not 24. */
static void test_precision_and_rounding(void)
{
    static const struct {
        uint16_t control;
        long double expected;
        bool inexact;
    } table[] = {
        {0x037f, 1.0L + 0x1p-30L, false},
        {0x027f, 1.0L + 0x1p-30L, false},
        {0x007f, 1.0L, true},
        {0x087f, 1.0L + 0x1p-23L, true},
        {0x0c7f, 1.0L, true},
        {0x047f, 1.0L, true},
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(table); i++) {
        struct machine_state m;
        machine_init(&m);
        m.fpu.control = table[i].control;
        push_long_double(&m.fpu, 0x1p-30L);
        push_long_double(&m.fpu, 1.0L);
        g_assert_cmpint(RUN(&m, 0xd8, 0xc1), ==, X87_DONE);
        g_assert_true(st_value(&m.fpu, 0) == table[i].expected);
        g_assert_cmpuint(m.fpu.status & 0x20, ==, table[i].inexact ? 0x20 : 0);
        /* C1 tells that the inexact result was rounded up. */
        g_assert_cmpuint(m.fpu.status & 0x200, ==, table[i].control == 0x087f ? 0x200 : 0);
    }
}

static void test_stack_overflow_and_underflow(void)
{
    struct machine_state m;
    machine_init(&m);
    for (int i = 0; i < 8; i++)
        g_assert_cmpint(RUN(&m, 0xd9, 0xe8), ==, X87_DONE); /* fld1 */
    g_assert_cmpuint(m.fpu.status & 0x41, ==, 0);
    g_assert_cmpint(RUN(&m, 0xd9, 0xeb), ==, X87_DONE);  /* fldpi on a full stack */
    g_assert_cmpuint(m.fpu.status & 0x0241, ==, 0x0241); /* IE, SF, C1=1 */
    g_assert_cmpuint(st_bytes(&m.fpu, 0)[9], ==, 0xff);  /* the indefinite */
    g_assert_cmpuint(st_bytes(&m.fpu, 0)[7], ==, 0xc0);

    machine_init(&m);
    g_assert_cmpint(RUN(&m, 0xdb, 0xe2), ==, X87_DONE); /* fnclex, no effect */
    m.fpu.control = 0x037e;                             /* IE unmasked */
    g_assert_cmpint(RUN(&m, 0xd9, 0xe1), ==, X87_DONE); /* fabs of an empty ST(0) */
    g_assert_cmpuint(m.fpu.status, ==, 0x80c1);         /* B, ES, SF, IE; C1=0 */
    g_assert_cmpuint(m.fpu.tag, ==, 0xffff);            /* nothing written */
    g_assert_true(x87_exception_pending(&m.fpu));
    g_assert_cmpint(RUN(&m, 0xdb, 0xe2), ==, X87_DONE); /* fnclex */
    g_assert_cmpuint(m.fpu.status, ==, 0);
    g_assert_false(x87_exception_pending(&m.fpu));
}

static void test_masked_and_unmasked_zero_divide(void)
{
    struct machine_state m;
    machine_init(&m);
    push_long_double(&m.fpu, 0.0L);
    push_long_double(&m.fpu, -4.0L);
    g_assert_cmpint(RUN(&m, 0xd8, 0xf1), ==, X87_DONE); /* fdiv st0, st1 */
    g_assert_true(isinf(st_value(&m.fpu, 0)) && st_value(&m.fpu, 0) < 0);
    g_assert_cmpuint(m.fpu.status & 0xff, ==, 0x04);

    machine_init(&m);
    m.fpu.control = 0x037b; /* ZE unmasked */
    push_long_double(&m.fpu, -4.0L);
    push_long_double(&m.fpu, 0.0L);
    g_assert_cmpint(RUN(&m, 0xde, 0xf9), ==, X87_DONE); /* fdivp: ST(1) / ST(0) */
    g_assert_true(st_value(&m.fpu, 1) == -4.0L);        /* unchanged, not popped */
    g_assert_cmpuint(top_of(&m.fpu), ==, 6);
    g_assert_cmpuint(m.fpu.status & 0x80ff, ==, 0x8084);
    /* Masking it again with FLDCW clears the summary bits. */
    uint16_t control = 0x037f;
    memcpy(m.mem.bytes, &control, 2);
    g_assert_cmpint(RUN(&m, 0xd9, 0x28), ==, X87_DONE);
    g_assert_false(x87_exception_pending(&m.fpu));
}

static void test_bcd(void)
{
    struct machine_state m;
    machine_init(&m);
    /* -123456789012345678 in packed BCD: nine digit pairs, then the sign. */
    static const uint8_t bcd[10] = {0x78, 0x56, 0x34, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x80};
    memcpy(m.mem.bytes, bcd, 10);
    g_assert_cmpint(RUN(&m, 0xdf, 0x20), ==, X87_DONE); /* fbld */
    g_assert_true(st_value(&m.fpu, 0) == -123456789012345678.0L);
    g_assert_cmpint(RUN(&m, 0xd9, 0xe8), ==, X87_DONE); /* fld1 */
    g_assert_cmpint(RUN(&m, 0xde, 0xe9), ==, X87_DONE); /* fsubp: ... - 1 */
    memset(m.mem.bytes, 0, 10);
    g_assert_cmpint(RUN(&m, 0xdf, 0x30), ==, X87_DONE); /* fbstp */
    static const uint8_t expected[10] = {0x79, 0x56, 0x34, 0x12, 0x90,
                                         0x78, 0x56, 0x34, 0x12, 0x80};
    g_assert_cmpmem(m.mem.bytes, 10, expected, 10);
    g_assert_cmpuint(m.fpu.tag, ==, 0xffff);

    /* 10^18 does not fit: IE, and the masked response is the BCD indefinite. */
    push_long_double(&m.fpu, 1e18L);
    g_assert_cmpint(RUN(&m, 0xdf, 0x30), ==, X87_DONE);
    static const uint8_t indefinite[10] = {0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff};
    g_assert_cmpmem(m.mem.bytes, 10, indefinite, 10);
    g_assert_cmpuint(m.fpu.status & 1, ==, 1);
}

static void test_transcendental_sanity(void)
{
    struct machine_state m;
    machine_init(&m);
    push_long_double(&m.fpu, 3.14159265358979323846264338327950288L / 6.0L);
    g_assert_cmpint(RUN(&m, 0xd9, 0xfb), ==, X87_DONE); /* fsincos */
    g_assert_cmpfloat(fabsl(st_value(&m.fpu, 1) - 0.5L), <, 1e-18);
    g_assert_cmpfloat(fabsl(st_value(&m.fpu, 0) - sqrtl(3.0L) / 2.0L), <, 1e-18);
    g_assert_cmpint(RUN(&m, 0xd9, 0xf3), ==, X87_DONE); /* fpatan: atan(sin/cos) */
    g_assert_cmpfloat(fabsl(st_value(&m.fpu, 0) - 3.14159265358979323846L / 6.0L), <, 1e-18);

    /* FPTAN pushes 1.0 above tan(x); FYL2X computes 3 * log2(8). */
    machine_init(&m);
    push_long_double(&m.fpu, 0.25L);
    g_assert_cmpint(RUN(&m, 0xd9, 0xf2), ==, X87_DONE);
    g_assert_true(st_value(&m.fpu, 0) == 1.0L);
    g_assert_cmpfloat(fabsl(st_value(&m.fpu, 1) - tanl(0.25L)), <, 1e-18);
    machine_init(&m);
    push_long_double(&m.fpu, 3.0L);
    push_long_double(&m.fpu, 8.0L);
    g_assert_cmpint(RUN(&m, 0xd9, 0xf1), ==, X87_DONE);
    g_assert_true(st_value(&m.fpu, 0) == 9.0L);
    g_assert_cmpuint(top_of(&m.fpu), ==, 7);

    /* An operand beyond 2^63 sets C2 and leaves ST(0) alone. */
    machine_init(&m);
    push_long_double(&m.fpu, 0x1p70L);
    g_assert_cmpint(RUN(&m, 0xd9, 0xfe), ==, X87_DONE);
    g_assert_cmpuint(m.fpu.status & 0x400, ==, 0x400);
    g_assert_true(st_value(&m.fpu, 0) == 0x1p70L);
}

/* FCOMI writes ZF, PF, CF; a comparison with a NaN is unordered. */
static void test_fcomi_flags(void)
{
    struct machine_state m;
    machine_init(&m);
    push_long_double(&m.fpu, 2.0L);
    push_long_double(&m.fpu, 1.0L);
    m.eflags = 0x8d5 | 0x2;
    g_assert_cmpint(RUN(&m, 0xdb, 0xf1), ==, X87_DONE); /* 1 < 2: CF */
    g_assert_cmphex(m.eflags, ==, 0x3);
    push_long_double(&m.fpu, NAN);
    g_assert_cmpint(RUN(&m, 0xdf, 0xe9), ==, X87_DONE); /* fucomip with a QNaN */
    g_assert_cmphex(m.eflags, ==, 0x47);
    g_assert_cmpuint(m.fpu.status & 1, ==, 0);
}

/* A faulting memory operand leaves every register as it was. */
static void test_memory_fault_changes_nothing(void)
{
    for (unsigned k = 0; k < G_N_ELEMENTS(cases); k++) {
        if (cases[k].format == MEM_NONE)
            continue;
        struct machine_state m;
        machine_init(&m);
        push_long_double(&m.fpu, 2.0L);
        push_long_double(&m.fpu, 1.5L);
        m.mem.fault = true;
        struct x86_fpu before = m.fpu;
        g_assert_cmpint(run_bytes(&m, cases[k].bytes, cases[k].len), ==, X87_MEMORY_FAULT);
        g_assert_cmpmem(&before, sizeof(before), &m.fpu, sizeof(m.fpu));
    }
    static const uint8_t state_ops[][2] = {{0xd9, 0x20}, {0xd9, 0x30}, {0xdd, 0x20}, {0xdd, 0x30}};
    for (unsigned k = 0; k < G_N_ELEMENTS(state_ops); k++) {
        struct machine_state m;
        machine_init(&m);
        push_long_double(&m.fpu, 2.0L);
        m.mem.fault = true;
        struct x86_fpu before = m.fpu;
        g_assert_cmpint(run_bytes(&m, state_ops[k], 2), ==, X87_MEMORY_FAULT);
        g_assert_cmpmem(&before, sizeof(before), &m.fpu, sizeof(m.fpu));
    }
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return get16(p) | (uint32_t)get16(p + 2) << 16;
}

/* A state with every pointer field set, for the image layouts. */
static void prepare_state(struct machine_state *m)
{
    machine_init(m);
    push_long_double(&m->fpu, -0.0L);
    push_long_double(&m->fpu, 42.5L);
    push_long_double(&m->fpu, 1e-4940L);
    m->fpu.control = 0x0b72;
    m->fpu.status |= 0x4021;
    m->fpu.last_opcode = 0x5d9;
    m->fpu.last_cs = 0x1234;
    m->fpu.last_ip = 0x5678;
    m->fpu.last_ds = 0x2345;
    m->fpu.last_dp = 0x6789;
}

/* FNSAVE then FRSTOR in the four layouts: the saved fields sit where SDM
 * figures 8-9 to 8-12 put them, FNSAVE reinitialises the unit, and FRSTOR
 * brings back the state (real mode folds the selectors into linear
 * addresses). */
static void test_save_restore_layouts(void)
{
    for (unsigned layout = 0; layout < 4; layout++) {
        bool protected_mode = layout & 1, operand32 = layout & 2;
        struct machine_state m;
        prepare_state(&m);
        m.env.protected_mode = protected_mode;
        m.env.operand32 = operand32;
        struct x86_fpu saved = m.fpu;
        memset(m.mem.bytes, 0xee, MEM_SIZE);
        g_assert_cmpint(RUN(&m, 0xdd, 0x30), ==, X87_DONE); /* fnsave [eax] */
        g_assert_cmphex(m.fpu.control, ==, 0x037f);
        g_assert_cmphex(m.fpu.tag, ==, 0xffff);
        g_assert_cmphex(m.fpu.status, ==, 0);

        const uint8_t *img = m.mem.bytes;
        uint32_t linear_ip = (0x1234u << 4) + 0x5678, linear_dp = (0x2345u << 4) + 0x6789;
        unsigned regs;
        if (operand32) {
            regs = 28;
            g_assert_cmphex(get32(img + 0), ==, 0xffff0b72);
            g_assert_cmphex(get16(img + 4), ==, saved.status);
            g_assert_cmphex(get16(img + 8), ==, saved.tag);
            if (protected_mode) {
                g_assert_cmphex(get32(img + 12), ==, 0x5678);
                g_assert_cmphex(get32(img + 16), ==, 0x05d91234);
                g_assert_cmphex(get32(img + 20), ==, 0x6789);
                g_assert_cmphex(get16(img + 24), ==, 0x2345);
            } else {
                g_assert_cmphex(get16(img + 12), ==, linear_ip & 0xffff);
                g_assert_cmphex(get32(img + 16), ==, (linear_ip >> 16) << 12 | 0x5d9);
                g_assert_cmphex(get16(img + 20), ==, linear_dp & 0xffff);
                g_assert_cmphex(get32(img + 24), ==, (linear_dp >> 16) << 12);
            }
        } else {
            regs = 14;
            g_assert_cmphex(get16(img + 0), ==, 0x0b72);
            g_assert_cmphex(get16(img + 2), ==, saved.status);
            g_assert_cmphex(get16(img + 4), ==, saved.tag);
            if (protected_mode) {
                g_assert_cmphex(get16(img + 6), ==, 0x5678);
                g_assert_cmphex(get16(img + 8), ==, 0x1234);
                g_assert_cmphex(get16(img + 10), ==, 0x6789);
                g_assert_cmphex(get16(img + 12), ==, 0x2345);
            } else {
                g_assert_cmphex(get16(img + 6), ==, linear_ip & 0xffff);
                g_assert_cmphex(get16(img + 8), ==, (linear_ip >> 16) << 12 | 0x5d9);
                g_assert_cmphex(get16(img + 10), ==, linear_dp & 0xffff);
                g_assert_cmphex(get16(img + 12), ==, (linear_dp >> 16) << 12);
            }
        }
        for (unsigned i = 0; i < 8; i++)
            g_assert_cmpmem(img + regs + 10 * i, 10, st_bytes(&saved, i), 10);
        g_assert_cmpuint(img[regs + 80], ==, 0xee);

        g_assert_cmpint(RUN(&m, 0xdd, 0x20), ==, X87_DONE); /* frstor [eax] */
        if (!protected_mode) {
            saved.last_ip = linear_ip;
            saved.last_cs = 0;
            saved.last_dp = linear_dp;
            saved.last_ds = 0;
        }
        if (protected_mode && !operand32)
            saved.last_opcode = 0;
        /* IE and PE are pending and IE is now unmasked: ES and B follow. */
        saved.status |= 0x8080;
        g_assert_cmpmem(&saved, sizeof(saved), &m.fpu, sizeof(m.fpu));

        /* FNSTENV masks all exceptions; FLDENV brings the old masks back. */
        g_assert_cmpint(RUN(&m, 0xd9, 0x30), ==, X87_DONE);
        g_assert_cmphex(m.fpu.control, ==, 0x0b7f);
        g_assert_cmpint(RUN(&m, 0xd9, 0x20), ==, X87_DONE);
        g_assert_cmpmem(&saved, sizeof(saved), &m.fpu, sizeof(m.fpu));
    }
}

/* The 32-bit protected-mode FNSTENV and FNSAVE images match the host's for
 * the words the host can be made to hold. */
static void test_env_matches_host(void)
{
    struct machine_state m;
    prepare_state(&m);
    m.fpu.status &= ~0x3800; /* TOP 0 below: three values pushed from 3 */
    m.fpu.status |= 5 << 11;
    uint8_t host_env[28];
    long double values3[3] = {-0.0L, 42.5L, 1e-4940L};
    uint16_t control = 0x0b72;
    __asm__ volatile("fninit\n\t"
                     "fldt %2\n\t"
                     "fldt %3\n\t"
                     "fldt %4\n\t"
                     "fldcw %1\n\t"
                     "fnstenv %0\n\t"
                     "fninit"
                     : "=m"(host_env)
                     : "m"(control), "m"(values3[0]), "m"(values3[1]), "m"(values3[2]));
    m.fpu.status = get16(host_env + 4);
    g_assert_cmpint(RUN(&m, 0xd9, 0x30), ==, X87_DONE);
    g_assert_cmpmem(m.mem.bytes, 12, host_env, 12);
    g_assert_cmpmem(m.mem.bytes + 26, 2, host_env + 26, 2);
}

static void test_non_x87_is_invalid(void)
{
    struct machine_state m;
    machine_init(&m);
    g_assert_cmpint(RUN(&m, 0x90), ==, X87_INVALID);
    g_assert_cmpint(RUN(&m, 0x9b), ==, X87_INVALID);       /* FWAIT is the interpreter's */
    g_assert_cmpint(RUN(&m, 0xdb, 0x08), ==, X87_INVALID); /* FISTTP is SSE3 */
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/x87/known-results", test_known_results);
    g_test_add_func("/x87/precision-and-rounding", test_precision_and_rounding);
    g_test_add_func("/x87/stack-faults", test_stack_overflow_and_underflow);
    g_test_add_func("/x87/zero-divide", test_masked_and_unmasked_zero_divide);
    g_test_add_func("/x87/bcd", test_bcd);
    g_test_add_func("/x87/transcendental", test_transcendental_sanity);
    g_test_add_func("/x87/fcomi", test_fcomi_flags);
    g_test_add_func("/x87/memory-fault", test_memory_fault_changes_nothing);
    g_test_add_func("/x87/save-restore-layouts", test_save_restore_layouts);
    g_test_add_func("/x87/env-matches-host", test_env_matches_host);
    g_test_add_func("/x87/non-x87", test_non_x87_is_invalid);
    g_test_add_func("/x87/host/masked", test_matches_host_masked);
    g_test_add_func("/x87/host/unmasked", test_matches_host_unmasked);
    g_test_add_func("/x87/host/stack-faults", test_matches_host_stack_faults);
    return g_test_run();
}
