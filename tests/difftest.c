/* Differential tester for the CPU backends.
 *
 * Generates random but valid x86 instruction sequences from a seed, runs each
 * one on Unicorn (the reference) and on a Vivarium CPU backend through the
 * public backend interface (engine/cpu.h), and compares the general
 * registers, EIP, EFLAGS and memory afterwards. Flags the Intel SDM (vol. 2)
 * calls undefined after an instruction are tracked while generating and left
 * out of the comparison; an instruction that reads a flag which is undefined
 * at that point is preceded by one that defines all status flags, so an
 * undefined value never leaks into a defined result.
 *
 * Every sequence runs in one of two environments:
 *   pm32    32-bit flat protected mode (CR0.PE, base 0, limit 4 GiB, D/B set)
 *   real16  real mode with CS = 1000h, DS = ES = FS = GS = 2000h, SS = 3000h
 * Both put the code at linear 10000h, a data page at 20000h and a stack page
 * at 30000h; every memory operand the generator makes lands in the data or
 * stack page, and each sequence ends with HLT.
 *
 * Usage: difftest [--seed N] [--count N] [--mode pm32|real16]
 *                 [--backend NAME|unicorn] [--verbose]
 * --count is the number of instructions to execute, counted on the reference
 * (each REP iteration once), in sequences of 10-60 generated instructions;
 * --backend unicorn compares Unicorn with a second Unicorn instance, to check
 * the tester itself.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <Zydis/Zydis.h>
#include <unicorn/unicorn.h>

#include "cpu.h"
#include "ioport.h"
#include "memory.h"
#include "vclock.h"

/* The guest-physical layout of every sequence. */
#define CODE_BASE   0x10000u
#define CODE_SIZE   0x2000u
#define DATA_BASE   0x20000u
#define STACK_BASE  0x30000u
#define PAGE_SIZE   0x1000u
#define STACK_START 0x800u /* initial (E)SP offset within the stack page */
#define RAM_SIZE    0x100000u
#define REF_SIZE    0x40000u /* what Unicorn maps */

/* Memory operands aim at offsets in [TARGET_LO, TARGET_HI) of a page, so a
 * displacement or a string of up to 16 dwords stays inside it. */
#define TARGET_LO 0x100u
#define TARGET_HI 0xf00u

#define MAX_STACK_DEPTH 0x200
#define MAX_INSNS       512
#define MAX_GROUPS      256

#define F_CF     0x001u
#define F_PF     0x004u
#define F_AF     0x010u
#define F_ZF     0x040u
#define F_SF     0x080u
#define F_DF     0x400u
#define F_OF     0x800u
#define F_STATUS (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)

enum { EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI };

/* ---- Random numbers (xorshift64*) ---- */

static uint64_t rng_state;

static uint64_t rnd64(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static uint32_t rnd(uint32_t below)
{
    return (uint32_t)((rnd64() >> 32) % below);
}

static bool chance(uint32_t one_in)
{
    return rnd(one_in) == 0;
}

/* A value of the given width, biased towards the edges where carry,
 * overflow and sign bugs hide. */
static uint32_t rnd_value(int bits)
{
    uint32_t mask = bits == 32 ? 0xffffffffu : (1u << bits) - 1;
    uint32_t sign = 1u << (bits - 1);
    switch (rnd(8)) {
    case 0: {
        static const uint32_t edges[] = {0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff};
        return edges[rnd(G_N_ELEMENTS(edges))] & mask;
    }
    case 1:
        return (sign - 1 + rnd(3)) & mask; /* around the largest positive */
    case 2:
        return (mask - rnd(3)) & mask; /* small negatives */
    default:
        return (uint32_t)rnd64() & mask;
    }
}

/* ---- The sequence generator ---- */

struct insn {
    uint8_t bytes[16];
    uint8_t len;
    int16_t jump_group;        /* the group a trailing rel8 jumps to, or -1 */
    uint32_t offset;           /* from CODE_BASE, set by layout */
    uint32_t undefined_before; /* status flags undefined when it starts */
};

struct pending_jump {
    int group;
    uint32_t undefined; /* the undefined flags on the path that jumps */
};

struct gen {
    bool pm32;
    struct insn insns[MAX_INSNS];
    int n;
    int group_start[MAX_GROUPS + 1];
    int groups;
    struct pending_jump jumps[16];
    int njumps;
    int stack_depth;    /* bytes pushed below STACK_START */
    uint32_t undefined; /* status flags currently undefined */
    bool df;
    struct insn *cur;
};

static struct insn *insn_begin(struct gen *g)
{
    struct insn *in = &g->insns[g->n++];
    memset(in, 0, sizeof(*in));
    in->jump_group = -1;
    in->undefined_before = g->undefined;
    g->cur = in;
    return in;
}

static void put8(struct gen *g, uint32_t v)
{
    g->cur->bytes[g->cur->len++] = (uint8_t)v;
}

static void put16(struct gen *g, uint32_t v)
{
    put8(g, v);
    put8(g, v >> 8);
}

static void put32(struct gen *g, uint32_t v)
{
    put16(g, v);
    put16(g, v >> 16);
}

static void put_imm(struct gen *g, int bits, uint32_t v)
{
    if (bits == 8)
        put8(g, v);
    else if (bits == 16)
        put16(g, v);
    else
        put32(g, v);
}

/* The operand-size prefix for a 16- or 32-bit operation. */
static void opsize(struct gen *g, int bits)
{
    if ((bits == 16 && g->pm32) || (bits == 32 && !g->pm32))
        put8(g, 0x66);
}

static int rnd_size(void)
{
    static const int sizes[] = {8, 16, 32};
    return sizes[rnd(3)];
}

static int rnd_size_wide(void)
{
    return chance(2) ? 16 : 32;
}

/* The full register behind an operand's register field. */
static int full_reg(int reg, int bits)
{
    return bits == 8 ? reg & 3 : reg;
}

/* A register operand: any register but ESP for 16/32-bit destinations and
 * none whose full register is in avoid (a mask of 1 << EAX...). */
static int pick_reg(int bits, uint32_t avoid, bool may_be_esp)
{
    for (;;) {
        int r = (int)rnd(8);
        if (bits != 8 && r == ESP && !may_be_esp)
            continue;
        if (avoid & (1u << full_reg(r, bits)))
            continue;
        return r;
    }
}

static void flags_effect(struct gen *g, uint32_t defined, uint32_t undefined)
{
    g->undefined = (g->undefined & ~defined) | undefined;
}

/* CMP reg, reg: defines every status flag and changes nothing else. */
static void emit_definer(struct gen *g)
{
    int bits = rnd_size_wide();
    insn_begin(g);
    opsize(g, bits);
    put8(g, 0x39);
    put8(g, 0xc0 | rnd(8) << 3 | rnd(8));
    flags_effect(g, F_STATUS, 0);
}

static void need_flags(struct gen *g, uint32_t read)
{
    if (g->undefined & read)
        emit_definer(g);
}

static void emit_mov_imm(struct gen *g, int reg, int bits, uint32_t value)
{
    insn_begin(g);
    if (bits == 8) {
        put8(g, 0xb0 + reg);
    } else {
        opsize(g, bits);
        put8(g, 0xb8 + reg);
    }
    put_imm(g, bits, value);
}

/* A ModRM operand: a register, or memory with everything after the ModRM
 * byte's reg field. */
struct rm {
    bool mem;
    int reg;
    uint8_t mod_rm; /* mod and r/m bits */
    bool has_sib;
    uint8_t sib;
    int disp_bits;
    uint32_t disp;
    uint8_t seg_prefix; /* 0: the default segment */
    bool addr32;        /* 32-bit addressing in real mode (67h prefix) */
};

static uint8_t rnd_seg_prefix(void)
{
    static const uint8_t prefixes[] = {0x26, 0x36, 0x3e, 0x64, 0x65};
    return chance(6) ? prefixes[rnd(G_N_ELEMENTS(prefixes))] : 0;
}

static uint32_t rnd_target(void)
{
    return TARGET_LO + rnd(TARGET_HI - TARGET_LO);
}

static int32_t rnd_disp8(void)
{
    return (int32_t)rnd(128) - 64;
}

/* Fills in a 32-bit addressing form whose effective address is 'address',
 * emitting the instructions that load its base and index registers. */
static void gen_address32(struct gen *g, struct rm *m, uint32_t address, uint32_t avoid)
{
    switch (rnd(4)) {
    case 0: /* [disp32] */
        m->mod_rm = 0x05;
        m->disp_bits = 32;
        m->disp = address;
        break;
    case 1: { /* [base + disp8] */
        int base = pick_reg(32, avoid, false);
        int32_t d = rnd_disp8();
        emit_mov_imm(g, base, 32, address - (uint32_t)d);
        m->mod_rm = (uint8_t)(0x40 | base);
        m->disp_bits = 8;
        m->disp = (uint32_t)d;
        break;
    }
    case 2: { /* [base + disp32] */
        int base = pick_reg(32, avoid, false);
        uint32_t d = (uint32_t)rnd64();
        emit_mov_imm(g, base, 32, address - d);
        m->mod_rm = (uint8_t)(0x80 | base);
        m->disp_bits = 32;
        m->disp = d;
        break;
    }
    default: { /* [base + index * scale + disp8] */
        int base = pick_reg(32, avoid, false);
        int index = pick_reg(32, avoid | 1u << base, false);
        int scale = (int)rnd(4);
        uint32_t index_value = rnd(16);
        int32_t d = rnd_disp8();
        emit_mov_imm(g, index, 32, index_value);
        emit_mov_imm(g, base, 32, address - (index_value << scale) - (uint32_t)d);
        m->mod_rm = 0x44;
        m->has_sib = true;
        m->sib = (uint8_t)(scale << 6 | index << 3 | base);
        m->disp_bits = 8;
        m->disp = (uint32_t)d;
        break;
    }
    }
}

/* Makes a memory operand addressing the data (or, through SS, the stack)
 * page, emitting the instructions that load its base and index registers.
 * Registers in avoid are not used for addressing. */
static struct rm gen_mem(struct gen *g, uint32_t avoid)
{
    struct rm m = {.mem = true, .seg_prefix = rnd_seg_prefix()};
    uint32_t target = rnd_target();
    avoid |= 1u << ESP;
    if (g->pm32) {
        gen_address32(g, &m, DATA_BASE + target, avoid);
        return m;
    }
    if (chance(4)) {
        /* Real mode with 32-bit addressing: the effective address must
         * stay within the 64 KiB limit. */
        m.addr32 = true;
        gen_address32(g, &m, target, avoid);
        return m;
    }
    /* 16-bit addressing: r/m 0-3 are base + index pairs, 4 SI, 5 DI,
     * 6 BP (or disp16 with mod 0), 7 BX. */
    static const int rm_base[8] = {EBX, EBX, EBP, EBP, ESI, EDI, EBP, EBX};
    static const int rm_index[8] = {ESI, EDI, ESI, EDI, -1, -1, -1, -1};
    int rm;
    do {
        rm = (int)rnd(8);
    } while ((avoid & (1u << rm_base[rm])) ||
             (rm_index[rm] >= 0 && (avoid & (1u << rm_index[rm]))));
    if (chance(5)) {
        m.mod_rm = 0x06; /* [disp16] */
        m.disp_bits = 16;
        m.disp = target;
        return m;
    }
    int mod = (int)rnd(3);
    if (rm == 6 && mod == 0)
        mod = 1;
    int32_t d = mod == 0 ? 0 : mod == 1 ? rnd_disp8() : (int32_t)rnd(0x10000);
    uint32_t index_value = 0;
    if (rm_index[rm] >= 0) {
        index_value = rnd(0x80);
        emit_mov_imm(g, rm_index[rm], 16, index_value);
    }
    emit_mov_imm(g, rm_base[rm], 16, (target - index_value - (uint32_t)d) & 0xffff);
    m.mod_rm = (uint8_t)(mod << 6 | rm);
    m.disp_bits = mod == 0 ? 0 : mod == 1 ? 8 : 16;
    m.disp = (uint32_t)d;
    return m;
}

/* A register or memory operand; registers in avoid are not chosen (as the
 * register, or for addressing). */
static struct rm gen_rm(struct gen *g, int bits, uint32_t avoid, bool may_be_esp)
{
    if (chance(2))
        return gen_mem(g, avoid);
    struct rm r = {.reg = pick_reg(bits, avoid, may_be_esp)};
    return r;
}

/* Segment and operand-size prefixes: call right after insn_begin. */
static void rm_prefixes(struct gen *g, const struct rm *m, int bits)
{
    if (m->mem && m->seg_prefix)
        put8(g, m->seg_prefix);
    if (m->mem && m->addr32)
        put8(g, 0x67);
    if (bits != 8)
        opsize(g, bits);
}

static void put_modrm(struct gen *g, int reg_field, const struct rm *m)
{
    if (!m->mem) {
        put8(g, 0xc0 | reg_field << 3 | m->reg);
        return;
    }
    put8(g, m->mod_rm | reg_field << 3);
    if (m->has_sib)
        put8(g, m->sib);
    if (m->disp_bits)
        put_imm(g, m->disp_bits, m->disp);
}

/* One whole instruction with a ModRM operand: prefixes, opcode bytes
 * (opcode_len of them), ModRM and the rest. */
static void emit_rm_insn(struct gen *g, int bits, const uint8_t *opcode, int opcode_len,
                         int reg_field, const struct rm *m)
{
    insn_begin(g);
    rm_prefixes(g, m, bits);
    for (int i = 0; i < opcode_len; i++)
        put8(g, opcode[i]);
    put_modrm(g, reg_field, m);
}

/* Stores a value into an operand (MOV r/m, imm). */
static void emit_store_imm(struct gen *g, int bits, const struct rm *m, uint32_t value)
{
    uint8_t op = bits == 8 ? 0xc6 : 0xc7;
    emit_rm_insn(g, bits, &op, 1, 0, m);
    put_imm(g, bits, value);
}

/* The status flags each condition code (Jcc/SETcc/CMOVcc low nibble)
 * reads. */
static uint32_t cond_flags(int cc)
{
    static const uint32_t flags[8] = {
        F_OF, F_CF, F_ZF, F_CF | F_ZF, F_SF, F_PF, F_SF | F_OF, F_SF | F_OF | F_ZF,
    };
    return flags[(cc >> 1) & 7];
}

/* -- Instruction classes. Each emits one group: setup, then one or a few
 * instructions tested. -- */

static void gen_alu(struct gen *g)
{
    int op = (int)rnd(8); /* ADD OR ADC SBB AND SUB XOR CMP */
    int bits = rnd_size();
    bool writes = op != 7;
    uint32_t reads = (op == 2 || op == 3) ? F_CF : 0;
    int form = (int)rnd(4);
    int w = bits == 8 ? 0 : 1;
    if (form == 0) { /* r/m, reg */
        struct rm m = gen_rm(g, bits, 0, !writes);
        int reg = pick_reg(bits, 0, true);
        need_flags(g, reads);
        uint8_t opc = (uint8_t)(op * 8 + w);
        emit_rm_insn(g, bits, &opc, 1, reg, &m);
    } else if (form == 1) { /* reg, r/m */
        struct rm m = gen_rm(g, bits, 0, true);
        int reg = pick_reg(bits, 0, !writes);
        need_flags(g, reads);
        uint8_t opc = (uint8_t)(op * 8 + 2 + w);
        emit_rm_insn(g, bits, &opc, 1, reg, &m);
    } else if (form == 2) { /* accumulator, imm */
        need_flags(g, reads);
        insn_begin(g);
        if (bits != 8)
            opsize(g, bits);
        put8(g, op * 8 + 4 + w);
        put_imm(g, bits, rnd_value(bits));
    } else { /* group 1: r/m, imm */
        struct rm m = gen_rm(g, bits, 0, !writes);
        need_flags(g, reads);
        bool sign_extended = bits != 8 && chance(2);
        uint8_t opc = bits == 8 ? 0x80 : sign_extended ? 0x83 : 0x81;
        emit_rm_insn(g, bits, &opc, 1, op, &m);
        put_imm(g, sign_extended ? 8 : bits, rnd_value(sign_extended ? 8 : bits));
    }
    bool logic = op == 1 || op == 4 || op == 6;
    flags_effect(g, logic ? F_STATUS & ~F_AF : F_STATUS, logic ? F_AF : 0);
}

static void gen_incdec(struct gen *g)
{
    int bits = rnd_size();
    int dec = (int)rnd(2);
    if (bits != 8 && chance(2)) {
        int reg = pick_reg(bits, 0, false);
        insn_begin(g);
        opsize(g, bits);
        put8(g, 0x40 + dec * 8 + reg);
    } else {
        struct rm m = gen_rm(g, bits, 0, false);
        uint8_t opc = bits == 8 ? 0xfe : 0xff;
        emit_rm_insn(g, bits, &opc, 1, dec, &m);
    }
    flags_effect(g, F_STATUS & ~F_CF, 0);
}

static void gen_unary(struct gen *g)
{
    int bits = rnd_size();
    bool neg = chance(2);
    struct rm m = gen_rm(g, bits, 0, false);
    uint8_t opc = bits == 8 ? 0xf6 : 0xf7;
    emit_rm_insn(g, bits, &opc, 1, neg ? 3 : 2, &m);
    if (neg)
        flags_effect(g, F_STATUS, 0);
}

static void gen_test(struct gen *g)
{
    int bits = rnd_size();
    int w = bits == 8 ? 0 : 1;
    switch (rnd(3)) {
    case 0: {
        struct rm m = gen_rm(g, bits, 0, true);
        uint8_t opc = (uint8_t)(0x84 + w);
        emit_rm_insn(g, bits, &opc, 1, pick_reg(bits, 0, true), &m);
        break;
    }
    case 1:
        insn_begin(g);
        if (bits != 8)
            opsize(g, bits);
        put8(g, 0xa8 + w);
        put_imm(g, bits, rnd_value(bits));
        break;
    default: {
        struct rm m = gen_rm(g, bits, 0, true);
        uint8_t opc = (uint8_t)(0xf6 + w);
        emit_rm_insn(g, bits, &opc, 1, 0, &m);
        put_imm(g, bits, rnd_value(bits));
        break;
    }
    }
    flags_effect(g, F_STATUS & ~F_AF, F_AF);
}

static void gen_shift(struct gen *g)
{
    static const int ops[] = {0, 1, 2, 3, 4, 5, 7}; /* ROL ROR RCL RCR SHL SHR SAR */
    int op = ops[rnd(G_N_ELEMENTS(ops))];
    int bits = rnd_size();
    int w = bits == 8 ? 0 : 1;
    int form = (int)rnd(3);
    unsigned count = form == 0 ? 1 : chance(4) ? rnd(256) : rnd(bits + 2);
    unsigned masked = count & 31;
    struct rm m;
    if (form == 2) {
        /* The count in CL, so the operand is neither CL nor addressed
         * through ECX. */
        m = gen_rm(g, bits, 1u << ECX, false);
        emit_mov_imm(g, ECX, 8, count);
    } else {
        m = gen_rm(g, bits, 0, false);
    }
    bool rotate = op < 4;
    bool through_carry = op == 2 || op == 3;
    need_flags(g, through_carry && masked ? F_CF : 0);
    uint8_t opc = (uint8_t)((form == 0 ? 0xd0 : form == 1 ? 0xc0 : 0xd2) + w);
    emit_rm_insn(g, bits, &opc, 1, op, &m);
    if (form == 1)
        put8(g, count);
    if (masked == 0)
        return;
    uint32_t of = masked == 1 ? 0 : F_OF;
    if (rotate) {
        flags_effect(g, (F_CF | F_OF) & ~of, of);
    } else {
        uint32_t cf = (op != 7 && masked >= (unsigned)bits) ? F_CF : 0;
        flags_effect(g, F_STATUS & ~(of | cf | F_AF), of | cf | F_AF);
    }
}

static void gen_double_shift(struct gen *g)
{
    int bits = rnd_size_wide();
    bool right = chance(2);
    bool by_cl = chance(2);
    /* A count above the operand size leaves the result undefined (16-bit
     * only, the count being masked to five bits). */
    unsigned count = bits == 32 ? rnd(40) : rnd(16) + (chance(4) ? 32 : 0);
    unsigned masked = count & 31;
    struct rm m = gen_rm(g, bits, by_cl ? 1u << ECX : 0, false);
    int reg = pick_reg(bits, by_cl ? 1u << ECX : 0, true);
    if (by_cl)
        emit_mov_imm(g, ECX, 8, count);
    uint8_t opc[2] = {0x0f, (uint8_t)((right ? 0xac : 0xa4) + by_cl)};
    emit_rm_insn(g, bits, opc, 2, reg, &m);
    if (!by_cl)
        put8(g, count);
    if (masked == 0)
        return;
    uint32_t of = masked == 1 ? 0 : F_OF;
    flags_effect(g, F_STATUS & ~(of | F_AF), of | F_AF);
}

static void gen_mul(struct gen *g)
{
    int bits = rnd_size();
    switch (rnd(3)) {
    case 0: { /* MUL/IMUL r/m: (E)DX:(E)AX or AX */
        struct rm m = gen_rm(g, bits, 0, true);
        uint8_t opc = bits == 8 ? 0xf6 : 0xf7;
        emit_rm_insn(g, bits, &opc, 1, 4 + (int)rnd(2), &m);
        break;
    }
    case 1: { /* IMUL reg, r/m */
        bits = rnd_size_wide();
        struct rm m = gen_rm(g, bits, 0, true);
        uint8_t opc[2] = {0x0f, 0xaf};
        emit_rm_insn(g, bits, opc, 2, pick_reg(bits, 0, false), &m);
        break;
    }
    default: { /* IMUL reg, r/m, imm */
        bits = rnd_size_wide();
        bool imm8 = chance(2);
        struct rm m = gen_rm(g, bits, 0, true);
        uint8_t opc = imm8 ? 0x6b : 0x69;
        emit_rm_insn(g, bits, &opc, 1, pick_reg(bits, 0, false), &m);
        put_imm(g, imm8 ? 8 : bits, rnd_value(imm8 ? 8 : bits));
        break;
    }
    }
    flags_effect(g, F_CF | F_OF, F_SF | F_ZF | F_AF | F_PF);
}

/* DIV and IDIV with operands that cannot raise #DE: an unsigned dividend
 * whose high half is below the divisor, or a sign-extended one and a divisor
 * other than 0 and -1. */
static void gen_div(struct gen *g)
{
    int bits = rnd_size();
    bool is_signed = chance(2);
    uint32_t mask = bits == 32 ? 0xffffffffu : (1u << bits) - 1;
    uint32_t divisor;
    do {
        divisor = rnd_value(bits);
    } while (divisor == 0 || (is_signed && divisor == mask));
    uint32_t avoid = 1u << EAX | 1u << EDX;
    struct rm m = gen_rm(g, bits, avoid, false);
    if (m.mem)
        emit_store_imm(g, bits, &m, divisor);
    else
        emit_mov_imm(g, m.reg, bits, divisor);
    if (is_signed) {
        emit_mov_imm(g, EAX, bits, rnd_value(bits));
        insn_begin(g); /* CBW, CWD or CDQ */
        if (bits == 8) {
            opsize(g, 16);
            put8(g, 0x98);
        } else {
            opsize(g, bits);
            put8(g, 0x99);
        }
    } else {
        uint32_t high = rnd64() % divisor;
        emit_mov_imm(g, bits == 8 ? 4 /* AH */ : EDX, bits, high);
    }
    uint8_t opc = bits == 8 ? 0xf6 : 0xf7;
    emit_rm_insn(g, bits, &opc, 1, is_signed ? 7 : 6, &m);
    flags_effect(g, 0, F_STATUS);
}

static void gen_mov(struct gen *g)
{
    int bits = rnd_size();
    int w = bits == 8 ? 0 : 1;
    switch (rnd(7)) {
    case 0: { /* MOV r/m, reg */
        struct rm m = gen_rm(g, bits, 0, false);
        uint8_t opc = (uint8_t)(0x88 + w);
        emit_rm_insn(g, bits, &opc, 1, pick_reg(bits, 0, true), &m);
        break;
    }
    case 1: { /* MOV reg, r/m */
        struct rm m = gen_rm(g, bits, 0, true);
        uint8_t opc = (uint8_t)(0x8a + w);
        emit_rm_insn(g, bits, &opc, 1, pick_reg(bits, 0, false), &m);
        break;
    }
    case 2: /* MOV reg, imm */
        emit_mov_imm(g, pick_reg(bits, 0, false), bits, rnd_value(bits));
        break;
    case 3: { /* MOV r/m, imm */
        struct rm m = gen_rm(g, bits, 0, false);
        emit_store_imm(g, bits, &m, rnd_value(bits));
        break;
    }
    case 4: { /* MOVZX/MOVSX */
        int dst_bits = rnd_size_wide();
        int src_bits = dst_bits == 32 && chance(2) ? 16 : 8;
        struct rm m = gen_rm(g, src_bits, 0, true);
        uint8_t opc[2] = {0x0f, (uint8_t)((chance(2) ? 0xb6 : 0xbe) + (src_bits == 16))};
        insn_begin(g);
        rm_prefixes(g, &m, 8);
        opsize(g, dst_bits);
        put8(g, opc[0]);
        put8(g, opc[1]);
        put_modrm(g, pick_reg(dst_bits, 0, false), &m);
        break;
    }
    case 5: { /* MOV accumulator, moffs and back */
        uint8_t seg = rnd_seg_prefix();
        insn_begin(g);
        if (seg)
            put8(g, seg);
        if (bits != 8)
            opsize(g, bits);
        put8(g, 0xa0 + rnd(2) * 2 + w);
        if (g->pm32)
            put32(g, DATA_BASE + rnd_target());
        else
            put16(g, rnd_target());
        break;
    }
    default: { /* LEA */
        bits = rnd_size_wide();
        struct rm m = gen_mem(g, 0);
        m.seg_prefix = 0;
        uint8_t opc = 0x8d;
        emit_rm_insn(g, bits, &opc, 1, pick_reg(bits, 0, false), &m);
        break;
    }
    }
}

static void gen_exchange(struct gen *g)
{
    int bits = rnd_size();
    int w = bits == 8 ? 0 : 1;
    switch (rnd(6)) {
    case 4: { /* CMPXCHG8B m64 */
        struct rm m = gen_mem(g, 1u << EAX | 1u << EDX | 1u << ECX | 1u << EBX);
        if (m.disp_bits && chance(2)) {
            /* Make the comparison succeed: EDX:EAX from memory. */
            struct rm high = m;
            high.disp += 4;
            uint8_t load = 0x8b;
            emit_rm_insn(g, 32, &load, 1, EAX, &m);
            emit_rm_insn(g, 32, &load, 1, EDX, &high);
        }
        uint8_t opc[2] = {0x0f, 0xc7};
        emit_rm_insn(g, 8, opc, 2, 1, &m);
        flags_effect(g, F_ZF, 0);
        break;
    }
    case 0:
        if (bits != 8) { /* XCHG eAX, reg */
            insn_begin(g);
            opsize(g, bits);
            put8(g, 0x90 + pick_reg(bits, 0, false));
            break;
        }
        /* fall through */
    case 1: { /* XCHG r/m, reg */
        struct rm m = gen_rm(g, bits, 0, false);
        uint8_t opc = (uint8_t)(0x86 + w);
        emit_rm_insn(g, bits, &opc, 1, pick_reg(bits, 0, false), &m);
        break;
    }
    case 2: { /* CMPXCHG r/m, reg */
        struct rm m = gen_rm(g, bits, 0, false);
        uint8_t opc[2] = {0x0f, (uint8_t)(0xb0 + w)};
        emit_rm_insn(g, bits, opc, 2, pick_reg(bits, 0, true), &m);
        flags_effect(g, F_STATUS, 0);
        break;
    }
    case 3: { /* XADD r/m, reg */
        struct rm m = gen_rm(g, bits, 0, false);
        uint8_t opc[2] = {0x0f, (uint8_t)(0xc0 + w)};
        emit_rm_insn(g, bits, opc, 2, pick_reg(bits, 0, false), &m);
        flags_effect(g, F_STATUS, 0);
        break;
    }
    case 5: /* BSWAP (32-bit only: 16-bit BSWAP is undefined) */
        insn_begin(g);
        opsize(g, 32);
        put8(g, 0x0f);
        put8(g, 0xc8 + pick_reg(32, 0, false));
        break;
    }
}

static void gen_bit(struct gen *g)
{
    int bits = rnd_size_wide();
    int op = (int)rnd(4); /* BT BTS BTR BTC */
    if (chance(2)) {      /* bit offset in a register */
        int offset_reg = pick_reg(bits, 0, false);
        struct rm m = gen_rm(g, bits, 1u << offset_reg, op == 0);
        if (m.mem)                                         /* keep the operand within the page */
            emit_mov_imm(g, offset_reg, bits, rnd(0x100)); /* 32 bytes ahead at most */
        uint8_t opc[2] = {0x0f, (uint8_t)(0xa3 + op * 8)};
        emit_rm_insn(g, bits, opc, 2, offset_reg, &m);
    } else {
        struct rm m = gen_rm(g, bits, 0, op == 0);
        uint8_t opc[2] = {0x0f, 0xba};
        emit_rm_insn(g, bits, opc, 2, 4 + op, &m);
        put8(g, rnd(256));
    }
    flags_effect(g, F_CF, F_OF | F_SF | F_AF | F_PF);
}

static void gen_bitscan(struct gen *g)
{
    int bits = rnd_size_wide();
    /* A zero source leaves the destination undefined: store a nonzero
     * one first. */
    uint32_t value;
    do {
        value = rnd_value(bits);
    } while (value == 0);
    struct rm m = gen_rm(g, bits, 0, false);
    if (m.mem)
        emit_store_imm(g, bits, &m, value);
    else
        emit_mov_imm(g, m.reg, bits, value);
    uint8_t opc[2] = {0x0f, (uint8_t)(0xbc + rnd(2))};
    emit_rm_insn(g, bits, opc, 2, pick_reg(bits, 0, false), &m);
    flags_effect(g, F_ZF, F_CF | F_OF | F_SF | F_AF | F_PF);
}

static void gen_setcc_cmovcc(struct gen *g)
{
    int cc = (int)rnd(16);
    if (chance(2)) {
        struct rm m = gen_rm(g, 8, 0, false);
        need_flags(g, cond_flags(cc));
        uint8_t opc[2] = {0x0f, (uint8_t)(0x90 + cc)};
        emit_rm_insn(g, 8, opc, 2, 0, &m);
    } else {
        int bits = rnd_size_wide();
        struct rm m = gen_rm(g, bits, 0, true);
        need_flags(g, cond_flags(cc));
        uint8_t opc[2] = {0x0f, (uint8_t)(0x40 + cc)};
        emit_rm_insn(g, bits, opc, 2, pick_reg(bits, 0, false), &m);
    }
}

/* A forward jump over the next 0-3 groups. */
static void gen_jump(struct gen *g)
{
    int kind = (int)rnd(6);
    int cc = (int)rnd(16);
    if (kind <= 2)
        need_flags(g, cond_flags(cc));
    else if (kind == 5)
        need_flags(g, F_ZF);
    struct insn *in = insn_begin(g);
    switch (kind) {
    case 0:
    case 1:
    case 2:
        put8(g, 0x70 + cc); /* Jcc rel8 */
        break;
    case 3:
        put8(g, 0xeb); /* JMP rel8 */
        break;
    case 4:
        put8(g, chance(2) ? 0xe3 : 0xe2); /* JCXZ or LOOP */
        break;
    default:
        put8(g, 0xe0 + rnd(2)); /* LOOPNE, LOOPE */
        break;
    }
    put8(g, 0);
    in->jump_group = (int16_t)(g->groups + 1 + rnd(4));
    if (g->njumps < (int)G_N_ELEMENTS(g->jumps))
        g->jumps[g->njumps++] = (struct pending_jump){in->jump_group, g->undefined};
    else
        in->jump_group = (int16_t)(g->groups + 1);
}

static bool can_push(struct gen *g, int bytes)
{
    return g->stack_depth + bytes <= MAX_STACK_DEPTH;
}

static void gen_push_pop(struct gen *g)
{
    int bits = rnd_size_wide();
    int bytes = bits / 8;
    switch (rnd(7)) {
    case 0: /* PUSH reg (ESP included) */
        if (!can_push(g, bytes))
            break;
        insn_begin(g);
        opsize(g, bits);
        put8(g, 0x50 + rnd(8));
        g->stack_depth += bytes;
        break;
    case 1: /* PUSH imm */
        if (!can_push(g, bytes))
            break;
        insn_begin(g);
        opsize(g, bits);
        if (chance(2)) {
            put8(g, 0x6a);
            put8(g, rnd_value(8));
        } else {
            put8(g, 0x68);
            put_imm(g, bits, rnd_value(bits));
        }
        g->stack_depth += bytes;
        break;
    case 2: { /* PUSH r/m */
        if (!can_push(g, bytes))
            break;
        struct rm m = gen_rm(g, bits, 0, true);
        uint8_t opc = 0xff;
        emit_rm_insn(g, bits, &opc, 1, 6, &m);
        g->stack_depth += bytes;
        break;
    }
    case 3: /* POP reg */
        if (g->stack_depth < bytes)
            break;
        insn_begin(g);
        opsize(g, bits);
        put8(g, 0x58 + pick_reg(bits, 0, false));
        g->stack_depth -= bytes;
        break;
    case 4: { /* POP r/m */
        if (g->stack_depth < bytes)
            break;
        struct rm m = gen_rm(g, bits, 0, false);
        uint8_t opc = 0x8f;
        emit_rm_insn(g, bits, &opc, 1, 0, &m);
        g->stack_depth -= bytes;
        break;
    }
    case 5: /* PUSHA */
        if (!can_push(g, 8 * bytes))
            break;
        insn_begin(g);
        opsize(g, bits);
        put8(g, 0x60);
        g->stack_depth += 8 * bytes;
        break;
    default: /* POPA */
        if (g->stack_depth < 8 * bytes)
            break;
        insn_begin(g);
        opsize(g, bits);
        put8(g, 0x61);
        g->stack_depth -= 8 * bytes;
        break;
    }
}

/* Groups that leave the stack as they found it. */
static void gen_stack_balanced(struct gen *g)
{
    int bits = g->pm32 ? 32 : 16;
    switch (rnd(4)) {
    case 0: { /* PUSH flags value; POPF */
        uint32_t value = (rnd64() & F_STATUS) | 2 | (g->df ? F_DF : 0);
        insn_begin(g);
        opsize(g, bits);
        put8(g, 0x68);
        put_imm(g, bits, value);
        insn_begin(g);
        opsize(g, bits);
        put8(g, 0x9d);
        flags_effect(g, F_STATUS, 0);
        break;
    }
    case 1: /* PUSHF; POP reg */
        need_flags(g, F_STATUS);
        insn_begin(g);
        opsize(g, bits);
        put8(g, 0x9c);
        insn_begin(g);
        opsize(g, bits);
        put8(g, 0x58 + pick_reg(bits, 0, false));
        break;
    case 2: { /* [PUSH imm;] CALL f; JMP over; f: RET [imm] */
        bool with_arg = chance(2);
        if (with_arg) {
            insn_begin(g);
            opsize(g, bits);
            put8(g, 0x68);
            put_imm(g, bits, rnd_value(bits));
        }
        insn_begin(g);
        put8(g, 0xe8);
        put_imm(g, bits, 2); /* over the JMP */
        insn_begin(g);
        put8(g, 0xeb);
        put8(g, with_arg ? 3 : 1); /* over the RET */
        insn_begin(g);
        if (with_arg) {
            put8(g, 0xc2);
            put16(g, bits / 8);
        } else {
            put8(g, 0xc3);
        }
        break;
    }
    default: /* ENTER n, 0; LEAVE */
        insn_begin(g);
        opsize(g, bits);
        put8(g, 0xc8);
        put16(g, rnd(64));
        put8(g, 0);
        insn_begin(g);
        opsize(g, bits);
        put8(g, 0xc9);
        break;
    }
}

static void gen_flag_ops(struct gen *g)
{
    switch (rnd(6)) {
    case 0: /* CLC, STC */
        insn_begin(g);
        put8(g, 0xf8 + rnd(2));
        flags_effect(g, F_CF, 0);
        break;
    case 1: /* CMC */
        need_flags(g, F_CF);
        insn_begin(g);
        put8(g, 0xf5);
        break;
    case 2: /* LAHF */
        need_flags(g, F_SF | F_ZF | F_AF | F_PF | F_CF);
        insn_begin(g);
        put8(g, 0x9f);
        break;
    case 3: /* SAHF */
        insn_begin(g);
        put8(g, 0x9e);
        flags_effect(g, F_SF | F_ZF | F_AF | F_PF | F_CF, 0);
        break;
    default: /* CLD, STD */
        g->df = chance(2);
        insn_begin(g);
        put8(g, g->df ? 0xfd : 0xfc);
        break;
    }
}

static void gen_string(struct gen *g)
{
    static const uint8_t ops[] = {0xa4, 0xa6, 0xaa, 0xac, 0xae}; /* MOVS CMPS STOS LODS SCAS */
    uint8_t op = ops[rnd(G_N_ELEMENTS(ops))];
    int bits = rnd_size();
    bool compares = op == 0xa6 || op == 0xae;
    int rep = (int)rnd(3); /* none, F3, F2 (compares only) */
    if (rep == 2 && !compares)
        rep = 1;
    unsigned count = rep ? rnd(17) : 1;
    unsigned span = count * (unsigned)bits / 8;
    int abits = g->pm32 ? 32 : 16;
    uint32_t base = g->pm32 ? DATA_BASE : 0;
    /* Start where the whole string, in either direction, stays inside the
     * page. */
    uint32_t src = g->df ? 0x800 + span + rnd(0x600) : TARGET_LO + rnd(0x600);
    uint32_t dst = g->df ? 0x800 + span + rnd(0x600) : TARGET_LO + rnd(0x600);
    emit_mov_imm(g, ESI, abits, base + src);
    emit_mov_imm(g, EDI, abits, base + dst);
    if (rep)
        emit_mov_imm(g, ECX, abits, count);
    uint8_t seg = rnd_seg_prefix();
    insn_begin(g);
    if (seg && op != 0xaa && op != 0xae) /* STOS and SCAS use ES only */
        put8(g, seg);
    if (rep)
        put8(g, rep == 1 ? 0xf3 : 0xf2);
    if (bits != 8)
        opsize(g, bits);
    put8(g, op + (bits != 8));
    if (compares && count > 0)
        flags_effect(g, F_STATUS, 0);
}

static void gen_convert(struct gen *g)
{
    switch (rnd(3)) {
    case 0: /* CBW/CWDE, CWD/CDQ */
        insn_begin(g);
        opsize(g, rnd_size_wide());
        put8(g, 0x98 + rnd(2));
        break;
    case 1: { /* XLAT */
        int abits = g->pm32 ? 32 : 16;
        emit_mov_imm(g, EBX, abits, (g->pm32 ? DATA_BASE : 0) + TARGET_LO + rnd(0xc00));
        uint8_t seg = rnd_seg_prefix();
        insn_begin(g);
        if (seg)
            put8(g, seg);
        put8(g, 0xd7);
        break;
    }
    default: /* MOVSX/MOVZX between registers */
        insn_begin(g);
        opsize(g, 32);
        put8(g, 0x0f);
        put8(g, 0xb6 + rnd(2) + 8 * rnd(2));
        put8(g, 0xc0 | pick_reg(32, 0, false) << 3 | rnd(8));
        break;
    }
}

static void gen_bcd(struct gen *g)
{
    switch (rnd(4)) {
    case 0: /* DAA, DAS */
        need_flags(g, F_AF | F_CF);
        insn_begin(g);
        put8(g, chance(2) ? 0x27 : 0x2f);
        flags_effect(g, F_STATUS & ~F_OF, F_OF);
        break;
    case 1: /* AAA, AAS */
        need_flags(g, F_AF);
        insn_begin(g);
        put8(g, chance(2) ? 0x37 : 0x3f);
        flags_effect(g, F_AF | F_CF, F_OF | F_SF | F_ZF | F_PF);
        break;
    case 2: /* AAM imm8, nonzero */
        insn_begin(g);
        put8(g, 0xd4);
        put8(g, chance(2) ? 10 : 1 + rnd(255));
        flags_effect(g, F_SF | F_ZF | F_PF, F_OF | F_AF | F_CF);
        break;
    default: /* AAD imm8 */
        insn_begin(g);
        put8(g, 0xd5);
        put8(g, chance(2) ? 10 : rnd(256));
        flags_effect(g, F_SF | F_ZF | F_PF, F_OF | F_AF | F_CF);
        break;
    }
}

/* Real mode only: segment register loads that keep every segment where it
 * was (DS = ES = FS = GS, SS apart), so memory operands stay valid. */
static void gen_segment_load(struct gen *g)
{
    static const uint8_t push_data[4][2] = {{0x06}, {0x1e}, {0x0f, 0xa0}, {0x0f, 0xa8}};
    static const uint8_t pop_data[4][2] = {{0x07}, {0x1f}, {0x0f, 0xa1}, {0x0f, 0xa9}};
    static const int data_sregs[4] = {0, 3, 4, 5}; /* ES DS FS GS */
    switch (rnd(4)) {
    case 0: { /* PUSH sreg; POP sreg */
        bool stack = chance(4);
        int from = (int)rnd(4), to = (int)rnd(4);
        insn_begin(g);
        if (stack) {
            put8(g, 0x16);
        } else {
            put8(g, push_data[from][0]);
            if (push_data[from][0] == 0x0f)
                put8(g, push_data[from][1]);
        }
        insn_begin(g);
        if (stack) {
            put8(g, 0x17);
        } else {
            put8(g, pop_data[to][0]);
            if (pop_data[to][0] == 0x0f)
                put8(g, pop_data[to][1]);
        }
        break;
    }
    case 1: { /* MOV sreg, reg */
        int reg = pick_reg(16, 0, false);
        bool stack = chance(4);
        emit_mov_imm(g, reg, 16, stack ? STACK_BASE >> 4 : DATA_BASE >> 4);
        insn_begin(g);
        put8(g, 0x8e);
        put8(g, 0xc0 | (stack ? 2 : data_sregs[rnd(4)]) << 3 | reg);
        break;
    }
    default: { /* LDS, LES, LFS, LGS with a far pointer in memory */
        int bits = rnd_size_wide();
        int reg = pick_reg(bits, 0, false);
        struct rm m = gen_mem(g, 1u << reg);
        if (!m.disp_bits)
            break; /* no room to address the selector half */
        struct rm selector = m;
        selector.disp += (uint32_t)bits / 8;
        emit_store_imm(g, bits, &m, rnd_value(bits));
        emit_store_imm(g, 16, &selector, DATA_BASE >> 4);
        static const uint8_t ops[4][2] = {{0xc4}, {0xc5}, {0x0f, 0xb4}, {0x0f, 0xb5}};
        int op = (int)rnd(4);
        emit_rm_insn(g, bits, ops[op], ops[op][0] == 0x0f ? 2 : 1, reg, &m);
        break;
    }
    }
}

static void gen_segment_read(struct gen *g)
{
    /* MOV r/m16, Sreg. Protected mode is skipped: Unicorn's flat selectors
     * are not architecturally meaningful there. */
    struct rm m = gen_rm(g, 16, 0, false);
    uint8_t opc = 0x8c;
    emit_rm_insn(g, 16, &opc, 1, (int)rnd(6), &m);
}

struct gen_class {
    void (*fn)(struct gen *g);
    int weight;
    bool jump_safe; /* may be skipped by a forward jump */
    bool real_only;
};

static const struct gen_class classes[] = {
    {gen_alu, 14, true, false},         {gen_incdec, 3, true, false},
    {gen_unary, 3, true, false},        {gen_test, 3, true, false},
    {gen_shift, 8, true, false},        {gen_double_shift, 3, true, false},
    {gen_mul, 4, true, false},          {gen_div, 4, true, false},
    {gen_mov, 8, true, false},          {gen_exchange, 5, true, false},
    {gen_bit, 4, true, false},          {gen_bitscan, 2, true, false},
    {gen_setcc_cmovcc, 5, true, false}, {gen_jump, 5, true, false},
    {gen_push_pop, 6, false, false},    {gen_stack_balanced, 4, true, false},
    {gen_flag_ops, 4, false, false},    {gen_string, 5, true, false},
    {gen_convert, 3, true, false},      {gen_bcd, 3, true, false},
    {gen_segment_read, 1, true, true},  {gen_segment_load, 2, true, true},
};

static void gen_group(struct gen *g)
{
    g->group_start[g->groups] = g->n;
    /* Where forward jumps land, a flag is undefined if it is on either
     * path. */
    for (int i = 0; i < g->njumps;) {
        if (g->jumps[i].group == g->groups) {
            g->undefined |= g->jumps[i].undefined;
            g->jumps[i] = g->jumps[--g->njumps];
        } else {
            i++;
        }
    }
    int total = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(classes); i++)
        total += classes[i].weight;
    for (;;) {
        int pick = (int)rnd((uint32_t)total);
        size_t i = 0;
        while (pick >= classes[i].weight)
            pick -= classes[i++].weight;
        if (g->njumps > 0 && !classes[i].jump_safe)
            continue;
        if (g->pm32 && classes[i].real_only)
            continue;
        classes[i].fn(g);
        break;
    }
    g->groups++;
}

/* Generates a sequence of about length instructions ending in HLT and lays
 * it out; returns the code size in bytes. */
static uint32_t generate(struct gen *g, bool pm32, int length, uint8_t *code)
{
    memset(g, 0, sizeof(*g));
    g->pm32 = pm32;
    while (g->n < length && g->groups < MAX_GROUPS - 1)
        gen_group(g);
    /* Jumps to groups past the end land on the HLT. */
    for (int i = 0; i < g->njumps; i++)
        g->undefined |= g->jumps[i].undefined;
    g->group_start[g->groups] = g->n;
    insn_begin(g);
    put8(g, 0xf4);
    uint32_t offset = 0;
    for (int i = 0; i < g->n; i++) {
        g->insns[i].offset = offset;
        memcpy(code + offset, g->insns[i].bytes, g->insns[i].len);
        offset += g->insns[i].len;
    }
    for (int i = 0; i < g->n; i++) {
        struct insn *in = &g->insns[i];
        if (in->jump_group < 0)
            continue;
        int group = in->jump_group > g->groups ? g->groups : in->jump_group;
        int32_t rel =
            (int32_t)g->insns[g->group_start[group]].offset - (int32_t)(in->offset + in->len);
        if (rel > 127) {
            /* Too far for rel8 (rare): jump to the next instruction. */
            rel = 0;
        }
        in->bytes[in->len - 1] = (uint8_t)rel;
        code[in->offset + in->len - 1] = (uint8_t)rel;
    }
    return offset;
}

/* ---- Running a sequence ---- */

/* Everything a run starts from and ends with. */
struct machine_state {
    uint32_t regs[8];
    uint32_t eip;
    uint32_t eflags;
    uint8_t code[CODE_SIZE];
    uint8_t data[PAGE_SIZE];
    uint8_t stack[PAGE_SIZE];
};

struct runner {
    const char *name;
    bool (*run)(struct runner *r, bool pm32, const struct machine_state *in,
                struct machine_state *out, char *error, size_t error_len);
    /* Unicorn */
    uc_engine *uc;
    uc_hook counter_hook;
    uint64_t executed; /* instructions Unicorn executed, HLT included */
    /* Vivarium */
    struct memory mem;
    struct memory_region ram;
    struct ioport_bus *io;
    struct vclock clock;
    struct cpu cpu;
};

static void segment_values(bool pm32, uint16_t *cs, uint16_t *ds, uint16_t *ss)
{
    *cs = pm32 ? 0 : CODE_BASE >> 4;
    *ds = pm32 ? 0 : DATA_BASE >> 4;
    *ss = pm32 ? 0 : STACK_BASE >> 4;
}

static bool unicorn_open(struct runner *r, bool pm32)
{
    if (r->uc)
        uc_close(r->uc);
    uc_err err = uc_open(UC_ARCH_X86, pm32 ? UC_MODE_32 : UC_MODE_16, &r->uc);
    if (err == UC_ERR_OK)
        err = uc_mem_map(r->uc, 0, REF_SIZE, UC_PROT_ALL);
    if (err != UC_ERR_OK) {
        fprintf(stderr, "difftest: unicorn: %s\n", uc_strerror(err));
        return false;
    }
    return true;
}

static void count_instruction(uc_engine *uc, uint64_t address, uint32_t size, void *opaque)
{
    (void)uc;
    (void)address;
    (void)size;
    struct runner *r = opaque;
    r->executed++;
}

/* Counts the instructions Unicorn executes (each REP iteration once), for
 * the summary. The hook matters for correctness too: without any code hook,
 * Unicorn 2.0.1 sometimes computes flags wrongly (seen with LOOPE, SBB and
 * PUSHFD after lazily evaluated flags); with one, it brings its lazy flags
 * up to date before every instruction. */
static bool unicorn_count_instructions(struct runner *r)
{
    uc_err err =
        uc_hook_add(r->uc, &r->counter_hook, UC_HOOK_CODE, (void *)count_instruction, r, 1, 0);
    if (err != UC_ERR_OK) {
        fprintf(stderr, "difftest: unicorn: %s\n", uc_strerror(err));
        return false;
    }
    return true;
}

static bool unicorn_run(struct runner *r, bool pm32, const struct machine_state *in,
                        struct machine_state *out, char *error, size_t error_len)
{
    uc_engine *uc = r->uc;
    static const int gprs[8] = {UC_X86_REG_EAX, UC_X86_REG_ECX, UC_X86_REG_EDX, UC_X86_REG_EBX,
                                UC_X86_REG_ESP, UC_X86_REG_EBP, UC_X86_REG_ESI, UC_X86_REG_EDI};
    uc_mem_write(uc, CODE_BASE, in->code, CODE_SIZE);
    uc_mem_write(uc, DATA_BASE, in->data, PAGE_SIZE);
    uc_mem_write(uc, STACK_BASE, in->stack, PAGE_SIZE);
    /* The code changed under the same addresses: drop stale translations. */
    uc_ctl_remove_cache(uc, CODE_BASE, CODE_BASE + CODE_SIZE);
    if (!pm32) {
        uint16_t cs, ds, ss;
        segment_values(pm32, &cs, &ds, &ss);
        int v = cs;
        uc_reg_write(uc, UC_X86_REG_CS, &v);
        v = ds;
        uc_reg_write(uc, UC_X86_REG_DS, &v);
        uc_reg_write(uc, UC_X86_REG_ES, &v);
        uc_reg_write(uc, UC_X86_REG_FS, &v);
        uc_reg_write(uc, UC_X86_REG_GS, &v);
        v = ss;
        uc_reg_write(uc, UC_X86_REG_SS, &v);
    }
    for (int i = 0; i < 8; i++)
        uc_reg_write(uc, gprs[i], &in->regs[i]);
    uc_reg_write(uc, UC_X86_REG_EFLAGS, &in->eflags);
    /* HLT ends the emulation; the end address is never reached. */
    uc_err err = uc_emu_start(uc, CODE_BASE + in->eip, CODE_BASE + CODE_SIZE, 0, 0);
    if (err != UC_ERR_OK) {
        uint32_t eip = 0;
        uc_reg_read(uc, UC_X86_REG_EIP, &eip);
        snprintf(error, error_len, "unicorn stopped at EIP %08x: %s", eip, uc_strerror(err));
        return false;
    }
    for (int i = 0; i < 8; i++)
        uc_reg_read(uc, gprs[i], &out->regs[i]);
    uc_reg_read(uc, UC_X86_REG_EIP, &out->eip);
    uc_reg_read(uc, UC_X86_REG_EFLAGS, &out->eflags);
    if (pm32)
        out->eip -= CODE_BASE;
    uc_mem_read(uc, CODE_BASE, out->code, CODE_SIZE);
    uc_mem_read(uc, DATA_BASE, out->data, PAGE_SIZE);
    uc_mem_read(uc, STACK_BASE, out->stack, PAGE_SIZE);
    return true;
}

static struct runner *watched_runner;

static void on_alarm(int sig)
{
    (void)sig;
    if (watched_runner)
        watched_runner->cpu.stop_requested = 1;
}

static bool vivarium_run(struct runner *r, bool pm32, const struct machine_state *in,
                         struct machine_state *out, char *error, size_t error_len)
{
    struct x86_state s;
    memory_write_buf(&r->mem, CODE_BASE, in->code, CODE_SIZE);
    memory_write_buf(&r->mem, DATA_BASE, in->data, PAGE_SIZE);
    memory_write_buf(&r->mem, STACK_BASE, in->stack, PAGE_SIZE);
    memory_test_and_clear_dirty(&r->mem, 0, RAM_SIZE, MEMORY_DIRTY_SNAPSHOT);
    x86_state_reset(&s);
    memcpy(s.regs, in->regs, sizeof(s.regs));
    s.eflags = in->eflags;
    uint16_t cs, ds, ss;
    segment_values(pm32, &cs, &ds, &ss);
    if (pm32) {
        s.cr0 |= X86_CR0_PE;
        for (int i = 0; i < X86_NR_SREGS; i++) {
            s.sregs[i] = (struct x86_segment){
                .selector = i == S_CS   ? cs
                            : i == S_SS ? ss
                                        : ds,
                .base = 0,
                .limit = 0xffffffff,
                .attrib =
                    X86_DESC_P | X86_DESC_S | X86_DESC_DB | X86_DESC_G | (i == S_CS ? 0xb : 0x3),
            };
        }
        s.eip = CODE_BASE + in->eip;
    } else {
        for (int i = 0; i < X86_NR_SREGS; i++) {
            uint16_t sel = i == S_CS ? cs : i == S_SS ? ss : ds;
            s.sregs[i].selector = sel;
            s.sregs[i].base = (uint32_t)sel << 4;
        }
        s.eip = in->eip;
    }
    r->cpu.stop_requested = 0;
    r->cpu.backend->set_state(&r->cpu, &s);
    watched_runner = r;
    alarm(5);
    enum cpu_exit exit = r->cpu.backend->run(&r->cpu, INT64_MAX);
    alarm(0);
    watched_runner = NULL;
    r->cpu.backend->get_state(&r->cpu, &s);
    memcpy(out->regs, s.regs, sizeof(out->regs));
    out->eip = pm32 ? s.eip - CODE_BASE : s.eip;
    out->eflags = s.eflags;
    memory_read_buf(&r->mem, CODE_BASE, out->code, CODE_SIZE);
    memory_read_buf(&r->mem, DATA_BASE, out->data, PAGE_SIZE);
    memory_read_buf(&r->mem, STACK_BASE, out->stack, PAGE_SIZE);
    /* Writes outside the compared pages show in the dirty bits, which every
     * backend keeps up to date (memory.h). */
    for (uint32_t page = 0; page < RAM_SIZE; page += PAGE_SIZE) {
        bool compared = (page >= CODE_BASE && page < CODE_BASE + CODE_SIZE) || page == DATA_BASE ||
                        page == STACK_BASE;
        if (!compared &&
            memory_test_and_clear_dirty(&r->mem, page, PAGE_SIZE, MEMORY_DIRTY_SNAPSHOT)) {
            snprintf(error, error_len, "%s: wrote outside the compared pages, at page %05x",
                     r->name, page);
            return false;
        }
    }
    if (exit != CPU_EXIT_HALT) {
        snprintf(error, error_len, "%s: run() ended with %s at EIP %08x", r->name,
                 exit == CPU_EXIT_SHUTDOWN ? "a shutdown (triple fault)"
                 : exit == CPU_EXIT_STOP   ? "a stop (no HLT within 5 s)"
                                           : "an error",
                 s.eip);
        return false;
    }
    return true;
}

static bool vivarium_open(struct runner *r, const char *backend)
{
    r->cpu.backend = cpu_backend_by_name(backend);
    if (!r->cpu.backend) {
        fprintf(stderr, "difftest: no CPU backend named '%s'\n", backend);
        return false;
    }
    if (!memory_init(&r->mem, RAM_SIZE)) {
        fprintf(stderr, "difftest: cannot allocate guest memory\n");
        return false;
    }
    r->ram = (struct memory_region){
        .name = "ram", .base = 0, .size = RAM_SIZE, .enabled = true, .host = r->mem.ram};
    memory_add_region(&r->mem, &r->ram);
    r->io = g_new0(struct ioport_bus, 1);
    ioport_bus_init(r->io);
    vclock_init(&r->clock);
    r->cpu.mem = &r->mem;
    r->cpu.io = r->io;
    r->cpu.clock = &r->clock;
    GError *error = NULL;
    if (!r->cpu.backend->init(&r->cpu, &error)) {
        fprintf(stderr, "difftest: backend '%s': %s\n", backend, error ? error->message : "?");
        g_clear_error(&error);
        return false;
    }
    r->name = r->cpu.backend->name;
    r->run = vivarium_run;
    return true;
}

/* ---- Comparing and reporting ---- */

static const char *const reg_names[8] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};

static void print_sequence(const struct gen *g, const uint8_t *code)
{
    ZydisMachineMode mode = g->pm32 ? ZYDIS_MACHINE_MODE_LEGACY_32 : ZYDIS_MACHINE_MODE_REAL_16;
    for (int i = 0; i < g->n; i++) {
        const struct insn *in = &g->insns[i];
        ZydisDisassembledInstruction dis;
        uint64_t address = g->pm32 ? CODE_BASE + in->offset : in->offset;
        char hex[40] = "";
        for (int b = 0; b < in->len && b < 12; b++)
            sprintf(hex + 3 * b, "%02x ", in->bytes[b]);
        if (ZYAN_SUCCESS(ZydisDisassembleIntel(mode, address, code + in->offset, in->len, &dis)))
            fprintf(stderr, "  %08" PRIx64 "  %-36s %s\n", address, hex, dis.text);
        else
            fprintf(stderr, "  %08" PRIx64 "  %-36s (undecodable)\n", address, hex);
    }
}

static void print_regs(const char *title, const struct machine_state *s)
{
    fprintf(stderr, "  %-10s", title);
    for (int i = 0; i < 8; i++)
        fprintf(stderr, " %s=%08x", reg_names[i], s->regs[i]);
    fprintf(stderr, " eip=%08x eflags=%08x\n", s->eip, s->eflags);
}

/* Compares one area; prints up to a few differing bytes. */
static bool compare_area(const char *name, uint32_t base, const uint8_t *ref, const uint8_t *got,
                         size_t len, bool print)
{
    bool same = true;
    int shown = 0;
    for (size_t i = 0; i < len; i++) {
        if (ref[i] == got[i])
            continue;
        same = false;
        if (print && shown++ < 8)
            fprintf(stderr, "  %s byte at %05zx: reference %02x, backend %02x\n", name, base + i,
                    ref[i], got[i]);
    }
    return same;
}

/* Returns whether the two final states agree, ignoring the undefined flags;
 * prints the differences when print is set. */
static bool compare(const struct machine_state *ref, const struct machine_state *got,
                    uint32_t flags_mask, bool print)
{
    bool same = true;
    for (int i = 0; i < 8; i++) {
        if (ref->regs[i] != got->regs[i]) {
            same = false;
            if (print)
                fprintf(stderr, "  %s: reference %08x, backend %08x\n", reg_names[i], ref->regs[i],
                        got->regs[i]);
        }
    }
    if (ref->eip != got->eip) {
        same = false;
        if (print)
            fprintf(stderr, "  eip: reference %08x, backend %08x\n", ref->eip, got->eip);
    }
    if ((ref->eflags ^ got->eflags) & flags_mask) {
        same = false;
        if (print)
            fprintf(stderr, "  eflags (compared bits %08x): reference %08x, backend %08x\n",
                    flags_mask, ref->eflags & flags_mask, got->eflags & flags_mask);
    }
    same &= compare_area("code", CODE_BASE, ref->code, got->code, CODE_SIZE, print);
    same &= compare_area("data", DATA_BASE, ref->data, got->data, PAGE_SIZE, print);
    same &= compare_area("stack", STACK_BASE, ref->stack, got->stack, PAGE_SIZE, print);
    return same;
}

/* The status flags undefined at the end of a prefix that stops after
 * instruction k: those on the straight path, and those of every jump out of
 * the prefix (a jump changes no flag, so what was undefined before it). */
static uint32_t prefix_undefined(const struct gen *g, int k)
{
    uint32_t undefined = g->insns[k + 1].undefined_before;
    for (int j = 0; j <= k; j++) {
        const struct insn *in = &g->insns[j];
        if (in->jump_group < 0)
            continue;
        int group = in->jump_group > g->groups ? g->groups : in->jump_group;
        if (g->group_start[group] > k)
            undefined |= in->undefined_before;
    }
    return undefined;
}

/* Narrows a difference down: runs ever longer prefixes of the sequence
 * (everything after the prefix replaced by HLTs, so forward jumps out of it
 * stop too) until the final states differ. Returns the index of the last
 * instruction of the first differing prefix, or -1. */
static int first_difference(const struct gen *g, bool pm32, struct runner *reference,
                            struct runner *tested, const struct machine_state *initial)
{
    static struct machine_state prefix, ref_out, got_out;
    char error[200];
    for (int k = 0; k < g->n - 1; k++) {
        prefix = *initial;
        uint32_t end = g->insns[k + 1].offset;
        memset(prefix.code + end, 0xf4, CODE_SIZE - end);
        uint32_t mask = 0x003fffffu & ~prefix_undefined(g, k);
        if (!reference->run(reference, pm32, &prefix, &ref_out, error, sizeof(error)))
            return -1;
        bool ran = tested->run(tested, pm32, &prefix, &got_out, error, sizeof(error));
        if (!ran || !compare(&ref_out, &got_out, mask, false)) {
            if (!ran)
                fprintf(stderr, "  %s\n", error);
            print_regs("reference", &ref_out);
            print_regs(tested->name, &got_out);
            compare(&ref_out, &got_out, mask, true);
            return k;
        }
    }
    return -1;
}

static void fill_random(uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = rnd64();
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: difftest [--seed N] [--count N] [--mode pm32|real16]\n"
                    "                [--backend NAME|unicorn] [--verbose]\n");
}

int main(int argc, char **argv)
{
    uint64_t seed = 1;
    uint64_t count = 100000;
    bool pm32 = true;
    bool verbose = false;
    const char *backend = "interp";
    static const struct option options[] = {
        {"seed", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'c'},
        {"mode", required_argument, NULL, 'm'},
        {"backend", required_argument, NULL, 'b'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "s:c:m:b:vh", options, NULL)) != -1) {
        switch (opt) {
        case 's':
            seed = strtoull(optarg, NULL, 0);
            break;
        case 'c':
            count = strtoull(optarg, NULL, 0);
            break;
        case 'm':
            if (strcmp(optarg, "pm32") == 0) {
                pm32 = true;
            } else if (strcmp(optarg, "real16") == 0) {
                pm32 = false;
            } else {
                usage();
                return 2;
            }
            break;
        case 'b':
            backend = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        default:
            usage();
            return opt == 'h' ? 0 : 2;
        }
    }

    struct runner reference = {.name = "unicorn", .run = unicorn_run};
    struct runner tested = {0};
    if (!unicorn_open(&reference, pm32) || !unicorn_count_instructions(&reference))
        return 2;
    if (strcmp(backend, "unicorn") == 0) {
        tested = (struct runner){.name = "unicorn (second instance)", .run = unicorn_run};
        if (!unicorn_open(&tested, pm32) || !unicorn_count_instructions(&tested))
            return 2;
    } else if (!vivarium_open(&tested, backend)) {
        return 2;
    }
    signal(SIGALRM, on_alarm);

    static struct gen g;
    static struct machine_state initial, ref_out, got_out;
    uint64_t instructions = 0;
    uint64_t sequences = 0;
    rng_state = seed * 0x9e3779b97f4a7c15ull + 0x1234567;
    if (!rng_state)
        rng_state = 1;
    while (instructions < count) {
        uint64_t sequence_seed = rnd64();
        uint64_t saved = rng_state;
        rng_state = sequence_seed ? sequence_seed : 1;

        memset(&initial, 0, sizeof(initial));
        uint32_t size = generate(&g, pm32, 10 + (int)rnd(51), initial.code);
        for (int i = 0; i < 8; i++)
            initial.regs[i] = rnd_value(32);
        initial.regs[ESP] =
            pm32 ? STACK_BASE + STACK_START : (initial.regs[ESP] & 0xffff0000u) | STACK_START;
        initial.eflags = 2 | ((uint32_t)rnd64() & F_STATUS);
        initial.eip = 0;
        fill_random(initial.data, PAGE_SIZE);
        fill_random(initial.stack, PAGE_SIZE);
        /* DF starts clear, as the generator assumed. Each sequence has its
         * own seed, drawn from the main one. */
        rng_state = saved;

        char error[200] = "";
        uint64_t executed_before = reference.executed;
        if (!reference.run(&reference, pm32, &initial, &ref_out, error, sizeof(error))) {
            fprintf(stderr, "difftest: reference failure in sequence %" PRIu64 ": %s\n", sequences,
                    error);
            print_sequence(&g, initial.code);
            return 2;
        }
        if (ref_out.eip != size) {
            fprintf(stderr,
                    "difftest: the reference stopped at %08x, not after the HLT at %08x "
                    "(sequence %" PRIu64 ")\n",
                    ref_out.eip, size - 1, sequences);
            print_sequence(&g, initial.code);
            return 2;
        }
        bool ran = tested.run(&tested, pm32, &initial, &got_out, error, sizeof(error));
        uint32_t flags_mask = 0x003fffffu & ~g.undefined;
        if (!ran || !compare(&ref_out, &got_out, flags_mask, false)) {
            fprintf(stderr,
                    "difftest: DIFFERENCE in sequence %" PRIu64 " (seed %" PRIu64
                    ", mode %s, after %" PRIu64 " instructions executed and compared)\n",
                    sequences, seed, pm32 ? "pm32" : "real16", instructions);
            if (!ran)
                fprintf(stderr, "  %s\n", error);
            fprintf(stderr, "sequence:\n");
            print_sequence(&g, initial.code);
            print_regs("initial", &initial);
            print_regs("reference", &ref_out);
            print_regs(tested.name, &got_out);
            fprintf(stderr, "  undefined flags at the end: %03x\n", g.undefined);
            compare(&ref_out, &got_out, flags_mask, true);
            fprintf(stderr, "narrowing down (prefixes of the sequence, ending in HLT):\n");
            int k = first_difference(&g, pm32, &reference, &tested, &initial);
            if (k >= 0) {
                fprintf(stderr, "the first prefix that differs ends with:\n");
                struct gen one = g;
                one.insns[0] = g.insns[k];
                one.n = 1;
                print_sequence(&one, initial.code);
            } else {
                fprintf(stderr, "  no prefix differs on its own\n");
            }
            return 1;
        }
        /* Not counting the HLT. */
        instructions += reference.executed - executed_before - 1;
        sequences++;
        if (verbose && sequences % 1000 == 0)
            fprintf(stderr, "difftest: %" PRIu64 " sequences\n", sequences);
    }
    printf("difftest: %s vs unicorn, mode %s, seed %" PRIu64 ": %" PRIu64
           " instructions executed in %" PRIu64 " sequences, no difference\n",
           tested.name, pm32 ? "pm32" : "real16", seed, instructions, sequences);
    return 0;
}
