/* A small x86-64 machine-code emitter for the binary translator: just the
 * encodings the translator uses (Intel SDM vol. 2, chapter 2 "Instruction
 * Format" and the opcode tables of appendix A).
 *
 * Guest registers live in memory, in struct x86_state, reached through RBX
 * (which holds the struct interp pointer for the whole of a translated
 * block), so most encodings are "host register <-> [rbx + disp]". Host
 * registers 0-7 are the legacy ones; 8-15 need REX bits, which the helpers
 * add. Byte forms are only used with AL, CL and DL. */
#ifndef VIVARIUM_DBT_EMIT_H
#define VIVARIUM_DBT_EMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum host_reg {
    H_RAX,
    H_RCX,
    H_RDX,
    H_RBX,
    H_RSP,
    H_RBP,
    H_RSI,
    H_RDI,
    H_R8,
    H_R9,
    H_R10,
    H_R11,
    H_R12,
    H_R13,
    H_R14,
    H_R15,
};

/* Host condition codes, the low nibble of Jcc/SETcc/CMOVcc; the guest uses
 * the same numbering. */
enum {
    CC_O,
    CC_NO,
    CC_B,
    CC_AE,
    CC_E,
    CC_NE,
    CC_BE,
    CC_A,
    CC_S,
    CC_NS,
    CC_P,
    CC_NP,
    CC_L,
    CC_GE,
    CC_LE,
    CC_G
};

struct emitter {
    uint8_t *p;
    uint8_t *end;
    bool full; /* ran out of room: the caller discards the output */
};

static inline void emit8(struct emitter *e, uint8_t b)
{
    if (e->p < e->end)
        *e->p++ = b;
    else
        e->full = true;
}

static inline void emit16(struct emitter *e, uint16_t v)
{
    emit8(e, (uint8_t)v);
    emit8(e, (uint8_t)(v >> 8));
}

static inline void emit32(struct emitter *e, uint32_t v)
{
    emit16(e, (uint16_t)v);
    emit16(e, (uint16_t)(v >> 16));
}

static inline void emit64(struct emitter *e, uint64_t v)
{
    emit32(e, (uint32_t)v);
    emit32(e, (uint32_t)(v >> 32));
}

/* Operand-size prefix for 16-bit operations. */
static inline void emit_opsize(struct emitter *e, unsigned size)
{
    if (size == 2)
        emit8(e, 0x66);
}

/* REX prefix when any register is 8-15 (or w is wanted). */
static inline void emit_rex(struct emitter *e, bool w, unsigned reg, unsigned index, unsigned base)
{
    uint8_t rex = (uint8_t)(0x40 | (w ? 8 : 0) | ((reg & 8) ? 4 : 0) | ((index & 8) ? 2 : 0) |
                            ((base & 8) ? 1 : 0));
    if (rex != 0x40)
        emit8(e, rex);
}

/* ModRM for [rbx + disp] with reg in the reg field. */
static inline void emit_modrm_rbx(struct emitter *e, unsigned reg, int32_t disp)
{
    if (disp >= -128 && disp <= 127) {
        emit8(e, (uint8_t)(0x40 | ((reg & 7) << 3) | H_RBX));
        emit8(e, (uint8_t)disp);
    } else {
        emit8(e, (uint8_t)(0x80 | ((reg & 7) << 3) | H_RBX));
        emit32(e, (uint32_t)disp);
    }
}

static inline void emit_modrm_reg(struct emitter *e, unsigned reg, unsigned rm)
{
    emit8(e, (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7)));
}

/* Loads size bytes at [rbx + disp] into a host register, zero-extended. */
static inline void emit_load(struct emitter *e, unsigned reg, int32_t disp, unsigned size)
{
    emit_rex(e, false, reg, 0, 0);
    if (size == 4) {
        emit8(e, 0x8b);
    } else {
        emit8(e, 0x0f);
        emit8(e, size == 2 ? 0xb7 : 0xb6);
    }
    emit_modrm_rbx(e, reg, disp);
}

/* Stores the low size bytes of a host register at [rbx + disp]. For bytes
 * the register must be AL, CL, DL or BL, or R8-R15. */
static inline void emit_store(struct emitter *e, unsigned reg, int32_t disp, unsigned size)
{
    emit_opsize(e, size);
    emit_rex(e, false, reg, 0, 0);
    emit8(e, size == 1 ? 0x88 : 0x89);
    emit_modrm_rbx(e, reg, disp);
}

/* mov dword [rbx + disp], imm32 */
static inline void emit_store_imm32(struct emitter *e, int32_t disp, uint32_t imm)
{
    emit8(e, 0xc7);
    emit_modrm_rbx(e, 0, disp);
    emit32(e, imm);
}

/* mov r32, imm32 */
static inline void emit_mov_imm(struct emitter *e, unsigned reg, uint32_t imm)
{
    emit_rex(e, false, 0, 0, reg);
    emit8(e, (uint8_t)(0xb8 + (reg & 7)));
    emit32(e, imm);
}

/* mov r64, imm64 */
static inline void emit_mov_imm64(struct emitter *e, unsigned reg, uint64_t imm)
{
    emit_rex(e, true, 0, 0, reg);
    emit8(e, (uint8_t)(0xb8 + (reg & 7)));
    emit64(e, imm);
}

/* mov dst32, src32 */
static inline void emit_mov_reg(struct emitter *e, unsigned dst, unsigned src)
{
    emit_rex(e, false, src, 0, dst);
    emit8(e, 0x89);
    emit_modrm_reg(e, src, dst);
}

/* mov rdi, rbx: the first helper argument, the interpreter. */
static inline void emit_arg_interp(struct emitter *e)
{
    emit8(e, 0x48);
    emit8(e, 0x89);
    emit_modrm_reg(e, H_RBX, H_RDI);
}

/* Calls a C function (the stack is 16-byte aligned inside blocks). */
static inline void emit_call(struct emitter *e, const void *fn)
{
    emit_mov_imm64(e, H_RAX, (uint64_t)(uintptr_t)fn);
    emit8(e, 0xff);
    emit8(e, 0xd0); /* call rax */
}

/* Two-operand ALU op (group 1 number: ADD=0 OR=1 ADC=2 SBB=3 AND=4 SUB=5
 * XOR=6 CMP=7) on legacy registers: dst op= src. */
static inline void emit_alu_reg(struct emitter *e, unsigned alu, unsigned size, unsigned dst,
                                unsigned src)
{
    emit_opsize(e, size);
    emit8(e, (uint8_t)(alu * 8 + (size == 1 ? 0 : 1)));
    emit_modrm_reg(e, src, dst);
}

/* test dst, src */
static inline void emit_test_reg(struct emitter *e, unsigned size, unsigned dst, unsigned src)
{
    emit_opsize(e, size);
    emit8(e, size == 1 ? 0x84 : 0x85);
    emit_modrm_reg(e, src, dst);
}

/* Group 3/5 unary ops on a legacy register: F6/F7 /2 NOT, /3 NEG; FE/FF /0
 * INC, /1 DEC. */
static inline void emit_unary(struct emitter *e, uint8_t opcode32, unsigned ext, unsigned size,
                              unsigned reg)
{
    emit_opsize(e, size);
    emit8(e, (uint8_t)(size == 1 ? opcode32 - 1 : opcode32));
    emit_modrm_reg(e, ext, reg);
}

/* Group 2 shift/rotate (ROL=0 ROR=1 SHL=4 SHR=5 SAR=7) by an immediate
 * or (count < 0) by CL. */
static inline void emit_shift(struct emitter *e, unsigned ext, unsigned size, unsigned reg,
                              int count)
{
    emit_opsize(e, size);
    if (count < 0) {
        emit8(e, size == 1 ? 0xd2 : 0xd3);
        emit_modrm_reg(e, ext, reg);
    } else {
        emit8(e, size == 1 ? 0xc0 : 0xc1);
        emit_modrm_reg(e, ext, reg);
        emit8(e, (uint8_t)count);
    }
}

/* SHRX or SHLX dst, src, count (BMI2; flags untouched): a three-byte VEX
 * prefix, map 0F38, pp F2 (SHRX) or 66 (SHLX). */
static inline void emit_shiftx(struct emitter *e, bool left, bool w64, unsigned dst, unsigned src,
                               unsigned count)
{
    emit8(e, 0xc4);
    emit8(e, (uint8_t)(((dst & 8) ? 0 : 0x80) | 0x40 | ((src & 8) ? 0 : 0x20) | 0x02));
    emit8(e, (uint8_t)((w64 ? 0x80 : 0) | ((~count & 15) << 3) | (left ? 1 : 3)));
    emit8(e, 0xf7);
    emit_modrm_reg(e, dst, src);
}

/* imul dst, src (16 or 32 bits) */
static inline void emit_imul_reg(struct emitter *e, unsigned size, unsigned dst, unsigned src)
{
    emit_opsize(e, size);
    emit8(e, 0x0f);
    emit8(e, 0xaf);
    emit_modrm_reg(e, dst, src);
}

/* movsx dst32, src8/src16 */
static inline void emit_movsx(struct emitter *e, unsigned from_size, unsigned dst, unsigned src)
{
    emit8(e, 0x0f);
    emit8(e, from_size == 1 ? 0xbe : 0xbf);
    emit_modrm_reg(e, dst, src);
}

/* movzx dst32, src16 */
static inline void emit_movzx16(struct emitter *e, unsigned dst, unsigned src)
{
    emit8(e, 0x0f);
    emit8(e, 0xb7);
    emit_modrm_reg(e, dst, src);
}

/* movzx dst32, src8/src16 for any host registers (a REX prefix makes
 * registers 4-7 SPL-DIL rather than AH-BH). */
static inline void emit_movzx_reg(struct emitter *e, unsigned from_size, unsigned dst, unsigned src)
{
    emit8(e, (uint8_t)(0x40 | ((dst & 8) ? 4 : 0) | ((src & 8) ? 1 : 0)));
    emit8(e, 0x0f);
    emit8(e, from_size == 1 ? 0xb6 : 0xb7);
    emit_modrm_reg(e, dst, src);
}

/* mov dst8/dst16, src8/src16: replaces the low bytes of dst, keeping the
 * rest (with a REX prefix, as for emit_movzx_reg). */
static inline void emit_mov_low(struct emitter *e, unsigned size, unsigned dst, unsigned src)
{
    emit_opsize(e, size);
    emit8(e, (uint8_t)(0x40 | ((src & 8) ? 4 : 0) | ((dst & 8) ? 1 : 0)));
    emit8(e, size == 1 ? 0x88 : 0x89);
    emit_modrm_reg(e, src, dst);
}

/* lea dst32, [base64 + index64 * scale + disp32] */
static inline void emit_lea_sib(struct emitter *e, unsigned dst, unsigned base, unsigned index,
                                unsigned scale, int32_t disp)
{
    static const uint8_t ss[9] = {[1] = 0, [2] = 1, [4] = 2, [8] = 3};
    emit_rex(e, false, dst, index, base);
    emit8(e, 0x8d);
    emit8(e, (uint8_t)(0x84 | ((dst & 7) << 3))); /* mod=10, rm=SIB */
    emit8(e, (uint8_t)((ss[scale] << 6) | ((index & 7) << 3) | (base & 7)));
    emit32(e, (uint32_t)disp);
}

/* lea dst32, [index64 * scale + disp32] (no base) */
static inline void emit_lea_index(struct emitter *e, unsigned dst, unsigned index, unsigned scale,
                                  int32_t disp)
{
    static const uint8_t ss[9] = {[1] = 0, [2] = 1, [4] = 2, [8] = 3};
    emit_rex(e, false, dst, index, 0);
    emit8(e, 0x8d);
    emit8(e, (uint8_t)(0x04 | ((dst & 7) << 3)));                   /* mod=00, rm=SIB */
    emit8(e, (uint8_t)((ss[scale] << 6) | ((index & 7) << 3) | 5)); /* no base */
    emit32(e, (uint32_t)disp);
}

/* lea dst32, [base64 + disp32] */
static inline void emit_lea_disp(struct emitter *e, unsigned dst, unsigned base, int32_t disp)
{
    emit_rex(e, false, dst, 0, base);
    emit8(e, 0x8d);
    if ((base & 7) == H_RSP) {
        emit8(e, (uint8_t)(0x84 | ((dst & 7) << 3)));
        emit8(e, 0x24);
    } else {
        emit8(e, (uint8_t)(0x80 | ((dst & 7) << 3) | (base & 7)));
    }
    emit32(e, (uint32_t)disp);
}

/* setcc r8 (AL, CL or DL) */
static inline void emit_setcc(struct emitter *e, unsigned cc, unsigned reg)
{
    emit8(e, 0x0f);
    emit8(e, (uint8_t)(0x90 + cc));
    emit_modrm_reg(e, 0, reg);
}

/* cmovcc dst32, src32 */
static inline void emit_cmovcc(struct emitter *e, unsigned cc, unsigned dst, unsigned src)
{
    emit8(e, 0x0f);
    emit8(e, (uint8_t)(0x40 + cc));
    emit_modrm_reg(e, dst, src);
}

/* Forward branches: emit with a zero rel32 and patch once the target is
 * known. Return the address of the rel32 field. */
static inline uint8_t *emit_jcc_fwd(struct emitter *e, unsigned cc)
{
    emit8(e, 0x0f);
    emit8(e, (uint8_t)(0x80 + cc));
    uint8_t *field = e->p;
    emit32(e, 0);
    return field;
}

static inline uint8_t *emit_jmp_fwd(struct emitter *e)
{
    emit8(e, 0xe9);
    uint8_t *field = e->p;
    emit32(e, 0);
    return field;
}

/* Points a rel32 field at target. */
static inline void emit_patch(struct emitter *e, uint8_t *field, const uint8_t *target)
{
    if (e->full || !field || field + 4 > e->end)
        return;
    int32_t rel = (int32_t)(target - (field + 4));
    memcpy(field, &rel, 4);
}

/* jmp rel32 to a known address. */
static inline void emit_jmp_to(struct emitter *e, const uint8_t *target)
{
    uint8_t *field = emit_jmp_fwd(e);
    emit_patch(e, field, target);
}

/* test eax, eax */
static inline void emit_test_eax(struct emitter *e)
{
    emit8(e, 0x85);
    emit8(e, 0xc0);
}

#endif
