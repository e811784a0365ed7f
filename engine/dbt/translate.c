/* The translator: decodes a block of guest instructions (Zydis) and emits
 * host x86-64 code for it.
 *
 * A block runs from its entry to the first control transfer, the end of
 * its page, the end of CS or DBT_MAX_BLOCK_INSNS instructions. Guest
 * registers and EFLAGS live in struct x86_state, addressed from RBX, and
 * R12-R14 cache guest registers within a block (see "Register cache").
 *
 * Flags. Guest and host compute the arithmetic flags the same way, so an
 * ALU instruction is emitted as the same host instruction and its flags are
 * left in the host's RFLAGS ("dirty") rather than stored. They reach the
 * guest's EFLAGS only when something needs them there: a helper call (which
 * may fault, so the state must be exact), a block exit, or an instruction
 * reading flags that RFLAGS no longer holds. An instruction that overwrites
 * every dirty flag before any of that simply drops the old ones, so
 * "add; sub; jnz" stores nothing until the branch, and the branch tests the
 * host flags directly. Blocks are entered with the guest's arithmetic
 * flags in RFLAGS (all counted as dirty), and exits into another block
 * (chained jumps, the jump cache) leave them there, so only exits to the
 * dispatch loop store them.
 *
 * Precise exceptions. Only helpers fault: memory accesses and the
 * interpreter fallback. An instruction's first helper call records the
 * instruction's EIP and the state as the fault-restore point (DBT_INFO_SYNC)
 * and every translated instruction makes its first access before changing
 * any guest state, so a fault anywhere in a block delivers from exactly the
 * state the interpreter would have had.
 *
 * Memory is reached through the interpreter's segmentation, paging, TLB
 * and MMIO paths (the helpers), which also report writes to pages holding
 * translated code; a store that hits the running block's code leaves the
 * block right after the writing instruction.
 *
 * Instructions not translated here are executed by the interpreter, one at
 * a time, from inside the block (dbt_helper_interp). */
#include <stdio.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "dbt.h"
#include "emit.h"
#include "interp_priv.h"
#include "../memory.h"

#define DBT_MAX_BLOCK_INSNS 64
/* Room one guest instruction's host code never exceeds. */
#define DBT_MAX_INSN_CODE 512

#define OFF_REG(r)       ((int32_t)(offsetof(struct interp, state.regs) + 4 * (r)))
#define OFF_EIP          ((int32_t)offsetof(struct interp, state.eip))
#define OFF_EFLAGS       ((int32_t)offsetof(struct interp, state.eflags))
#define OFF_BUDGET       ((int32_t)offsetof(struct dbt, budget))
#define OFF_CHAIN        ((int32_t)offsetof(struct dbt, chain_site))
#define OFF_RUNNING_PAGE ((int32_t)offsetof(struct dbt, running_page))
#define OFF_TLB          ((int32_t)offsetof(struct interp, tlb))
#define TLB_LINEAR       ((int32_t)offsetof(struct interp_tlb_entry, linear))
#define TLB_PHYS         ((int32_t)offsetof(struct interp_tlb_entry, phys))
#define TLB_PAGE         ((int32_t)offsetof(struct interp_tlb_entry, page))
#define TLB_PERMS        ((int32_t)offsetof(struct interp_tlb_entry, perms))
#define OFF_SEG_BASE(s)                                                                            \
    ((int32_t)(offsetof(struct interp, state.sregs) + (s) * sizeof(struct x86_segment) +           \
               offsetof(struct x86_segment, base)))
#define OFF_SEG_END(w, s) ((int32_t)(offsetof(struct dbt, seg_end) + ((w)*X86_NR_SREGS + (s)) * 8))

#define OFF_FTLB(field)                                                                            \
    ((int32_t)(offsetof(struct dbt, ftlb) + offsetof(struct dbt_ftlb_entry, field)))

#define OFF_JC(field) ((int32_t)(offsetof(struct dbt, jc) + offsetof(struct dbt_jc_entry, field)))
#define OFF_JC_CS     ((int32_t)offsetof(struct dbt, jc_cs_base))
_Static_assert(sizeof(struct dbt_jc_entry) == 16, "the jump cache is indexed by 16");
_Static_assert(offsetof(struct dbt, jc_cs_limit) == offsetof(struct dbt, jc_cs_base) + 4,
               "one compare tests the jump cache's CS base and limit");

_Static_assert(sizeof(struct dbt_ftlb_entry) == 32, "the fast path indexes 32-byte entries");
_Static_assert(DBT_FTLB_BITS == 32 - 22, "R15D holds 32 - DBT_FTLB_BITS");
_Static_assert(DBT_JC_SIZE == 1u << (32 - 22), "the jump cache is indexed with R15D");
_Static_assert(sizeof(struct interp_tlb_entry) == 24, "the fast path indexes 24-byte TLB entries");

#define FLAGS_ALL                                                                                  \
    (X86_FLAG_CF | X86_FLAG_PF | X86_FLAG_AF | X86_FLAG_ZF | X86_FLAG_SF | X86_FLAG_OF)

/* Where a store that hit the running block's code leaves the block to:
 * the instruction's end, which for PUSH and CALL also moves ESP (the
 * store is their last access, made before ESP moves), and for CALL is
 * its target (an immediate, or R13D for indirect calls). */
struct store_exit {
    int32_t esp_delta;
    bool to_r13;
    uint32_t eip;
};

/* The slow path of a flat access, emitted after the block's code so the
 * fast path runs straight on: what it does and the translation state it
 * starts from. */
enum slow_kind { SLOW_LOAD, SLOW_STORE, SLOW_STORE_R14 };

struct slow_path {
    enum slow_kind kind;
    uint8_t *jump;         /* the fast path's jump to patch */
    const uint8_t *resume; /* where the fast path goes on */
    uint32_t info, eip, next;
    uint32_t host_valid, dirty;
    bool has_exit;
    struct store_exit exit;
};

#define DBT_MAX_SLOW_PATHS 256

struct tctx {
    struct dbt *d;
    struct emitter e;
    const ZydisDecodedInstruction *z;
    const ZydisDecodedOperand *ops;
    uint32_t eip, next;
    uint32_t block_eip;
    uint32_t flags; /* the block's DBT_MODE_* */
    /* Guest flags RFLAGS holds, and those of them EFLAGS in memory does not
     * (dirty is always a subset of host_valid). */
    uint32_t host_valid;
    uint32_t dirty;
    /* The register cache: the host register (R12-R14) that also holds
     * guest register r's whole value, or 0; host registers reserved as
     * temporaries (a bit per host register); the next one to evict. */
    uint8_t cache_host[8];
    uint16_t reserved;
    unsigned victim;
    struct slow_path *slow;
    unsigned nr_slow;
};

static struct {
    bool ready;
    ZydisDecoder dec16, dec32;
} decoders;

static void emit_fallback(struct tctx *t, bool last);

/* --- Flags ------------------------------------------------------------------ */

/* Merges the dirty flags of the host flags image in R10 into the guest's
 * EFLAGS (the clean ones stay as stored), using R11. */
static void fold_dirty_flags_from_r10(struct tctx *t)
{
    struct emitter *e = &t->e;
    emit8(e, 0x41); /* and r10d, dirty */
    emit8(e, 0x81);
    emit8(e, 0xe2);
    emit32(e, t->dirty);
    emit_load(e, H_R11, OFF_EFLAGS, 4);
    emit8(e, 0x41); /* and r11d, ~dirty */
    emit8(e, 0x81);
    emit8(e, 0xe3);
    emit32(e, ~t->dirty);
    emit8(e, 0x45); /* or r11d, r10d */
    emit8(e, 0x09);
    emit8(e, 0xd3);
    emit_store(e, H_R11, OFF_EFLAGS, 4);
}

/* Stores the dirty flags from RFLAGS into the guest's EFLAGS, using R10
 * and R11 only. */
static void flush_flags(struct tctx *t)
{
    struct emitter *e = &t->e;
    if (!t->dirty)
        return;
    emit8(e, 0x9c); /* pushfq */
    emit8(e, 0x41); /* pop r10 */
    emit8(e, 0x5a);
    fold_dirty_flags_from_r10(t);
    t->dirty = 0;
    t->host_valid = 0;
}

/* Makes RFLAGS hold the guest flags in need. */
static void need_host_flags(struct tctx *t, uint32_t need)
{
    struct emitter *e = &t->e;
    if (!(need & ~t->host_valid))
        return;
    flush_flags(t);
    if (need == X86_FLAG_CF) {
        emit8(e, 0x0f); /* bt dword [rbx + eflags], 0 */
        emit8(e, 0xba);
        emit_modrm_rbx(e, 4, OFF_EFLAGS);
        emit8(e, 0);
        t->host_valid = X86_FLAG_CF;
        return;
    }
    /* Only the arithmetic flags are loaded: the host's DF, TF and AC must
     * stay clear. */
    emit_load(e, H_R11, OFF_EFLAGS, 4);
    emit8(e, 0x41); /* and r11d, FLAGS_ALL */
    emit8(e, 0x81);
    emit8(e, 0xe3);
    emit32(e, FLAGS_ALL);
    emit8(e, 0x41); /* push r11 */
    emit8(e, 0x53);
    emit8(e, 0x9d); /* popfq */
    t->host_valid = FLAGS_ALL;
}

/* Records that the host instruction just emitted computed the guest flags
 * in written (and kept the others). */
static void flags_written(struct tctx *t, uint32_t written)
{
    t->host_valid |= written;
    t->dirty |= written;
}

/* Host code clobbered RFLAGS (a helper call, a test of its result). */
static void flags_clobbered(struct tctx *t)
{
    /* Callers flush before anything that clobbers. */
    t->host_valid = 0;
}

static uint32_t cc_flags(unsigned cc)
{
    static const uint32_t needs[8] = {
        X86_FLAG_OF,
        X86_FLAG_CF,
        X86_FLAG_ZF,
        X86_FLAG_CF | X86_FLAG_ZF,
        X86_FLAG_SF,
        X86_FLAG_PF,
        X86_FLAG_SF | X86_FLAG_OF,
        X86_FLAG_ZF | X86_FLAG_SF | X86_FLAG_OF,
    };
    return needs[(cc >> 1) & 7];
}

/* Makes a host condition code test guest condition cc. When RFLAGS does
 * not hold the flags cc reads, they are tested in EFLAGS in memory with
 * ordinary instructions (loading them into RFLAGS with POPF is slow), and
 * the host condition becomes "not zero" (or "zero" for the odd, negated
 * conditions). */
static unsigned host_condition(struct tctx *t, unsigned cc)
{
    struct emitter *e = &t->e;
    uint32_t need = cc_flags(cc);
    if (!(need & ~t->host_valid))
        return cc;
    flush_flags(t);
    switch (cc >> 1) {
    case 6: /* L/GE: SF != OF */
    case 7: /* LE/G: ZF or SF != OF */
        emit_load(e, H_R11, OFF_EFLAGS, 4);
        emit_mov_reg(e, H_R10, H_R11);
        emit8(e, 0x41); /* shr r10d, 4: OF onto SF's bit */
        emit8(e, 0xc1);
        emit8(e, 0xea);
        emit8(e, 4);
        emit8(e, 0x45); /* xor r10d, r11d */
        emit8(e, 0x31);
        emit8(e, 0xda);
        emit8(e, 0x41); /* and r10d, SF */
        emit8(e, 0x81);
        emit8(e, 0xe2);
        emit32(e, X86_FLAG_SF);
        if (cc >> 1 == 7) {
            emit8(e, 0x41); /* and r11d, ZF */
            emit8(e, 0x81);
            emit8(e, 0xe3);
            emit32(e, X86_FLAG_ZF);
            emit8(e, 0x45); /* or r10d, r11d */
            emit8(e, 0x09);
            emit8(e, 0xda);
        }
        break;
    default:
        emit8(e, 0xf7); /* test dword [rbx + eflags], need */
        emit_modrm_rbx(e, 0, OFF_EFLAGS);
        emit32(e, need);
        break;
    }
    t->host_valid = 0;
    return (cc & 1) ? CC_E : CC_NE;
}

/* --- Operands ----------------------------------------------------------------- */

/* Where a general register lives in struct x86_state. */
static bool gpr_location(ZydisRegister r, int32_t *off, unsigned *size)
{
    *off = 0;
    *size = 4;
    if (r >= ZYDIS_REGISTER_AL && r <= ZYDIS_REGISTER_BL) {
        *off = OFF_REG(r - ZYDIS_REGISTER_AL);
        *size = 1;
    } else if (r >= ZYDIS_REGISTER_AH && r <= ZYDIS_REGISTER_BH) {
        *off = OFF_REG(r - ZYDIS_REGISTER_AH) + 1;
        *size = 1;
    } else if (r >= ZYDIS_REGISTER_AX && r <= ZYDIS_REGISTER_DI) {
        *off = OFF_REG(r - ZYDIS_REGISTER_AX);
        *size = 2;
    } else if (r >= ZYDIS_REGISTER_EAX && r <= ZYDIS_REGISTER_EDI) {
        *off = OFF_REG(r - ZYDIS_REGISTER_EAX);
        *size = 4;
    } else {
        return false;
    }
    return true;
}

static int32_t reg32_offset(ZydisRegister r)
{
    int32_t off;
    unsigned size;
    if (!gpr_location(r, &off, &size))
        return -1;
    return off & ~3;
}

static bool is_gpr(const ZydisDecodedOperand *o)
{
    int32_t off;
    unsigned size;
    return o->type == ZYDIS_OPERAND_TYPE_REGISTER && gpr_location(o->reg.value, &off, &size);
}

static bool is_mem(const ZydisDecodedOperand *o)
{
    return o->type == ZYDIS_OPERAND_TYPE_MEMORY && o->mem.type == ZYDIS_MEMOP_TYPE_MEM;
}

static bool is_imm(const ZydisDecodedOperand *o)
{
    return o->type == ZYDIS_OPERAND_TYPE_IMMEDIATE && !o->imm.is_relative;
}

static uint32_t mask_of(unsigned size)
{
    return size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
}

/* Whether a memory operand's address can be formed from general registers
 * (not, e.g., a 16-bit form with an unusual register). */
static bool mem_ok(const ZydisDecodedOperand *o)
{
    if (o->mem.base != ZYDIS_REGISTER_NONE && reg32_offset(o->mem.base) < 0)
        return false;
    if (o->mem.index != ZYDIS_REGISTER_NONE && reg32_offset(o->mem.index) < 0)
        return false;
    return o->mem.segment >= ZYDIS_REGISTER_ES && o->mem.segment <= ZYDIS_REGISTER_GS;
}

/* --- Register cache ----------------------------------------------------------
 *
 * Within a block, guest registers are also kept in R12, R13 and R14, so an
 * instruction reads its register operands from host registers instead of
 * loading them (and waiting for the store of the instruction before).
 * The cache is write-through: every write of a guest register still goes
 * to struct x86_state, so memory always holds the exact guest state and
 * nothing is written back at exits, helper calls or faults. R12-R14 are
 * callee-saved, so memory helpers keep them; after a helper that may
 * change guest registers (the interpreter, the stack helpers) the cache is
 * forgotten. The three also serve as temporaries of a few instructions:
 * using one as a temporary first forgets what it cached, and one that must
 * survive other operand accesses is reserved meanwhile. The cache is empty
 * at every block entry, and wherever code paths join (each path keeps
 * memory and its cached registers equal, so the mappings both paths share
 * stay valid). */

static const uint8_t cache_regs[] = {H_R12, H_R13, H_R14};
#define NR_CACHE_REGS ((unsigned)sizeof(cache_regs))

static void cache_reset(struct tctx *t)
{
    memset(t->cache_host, 0, sizeof(t->cache_host));
}

/* Host register host is about to be overwritten by something else. */
static void cache_clobber(struct tctx *t, unsigned host)
{
    for (unsigned r = 0; r < 8; r++) {
        if (t->cache_host[r] == host)
            t->cache_host[r] = 0;
    }
}

static void cache_reserve(struct tctx *t, unsigned host)
{
    cache_clobber(t, host);
    t->reserved |= (uint16_t)(1u << host);
}

static void cache_release(struct tctx *t, unsigned host)
{
    t->reserved &= (uint16_t) ~(1u << host);
}

/* Keeps only the mappings both paths of a join have (saved is the other
 * path's cache). */
static void cache_join(struct tctx *t, const uint8_t *saved)
{
    for (unsigned r = 0; r < 8; r++) {
        if (t->cache_host[r] != saved[r])
            t->cache_host[r] = 0;
    }
}

/* A host register for a new cache entry, or 0 if all are reserved. */
static unsigned cache_alloc(struct tctx *t)
{
    for (unsigned i = 0; i < NR_CACHE_REGS; i++) {
        unsigned host = cache_regs[i];
        if (t->reserved & (1u << host))
            continue;
        bool used = false;
        for (unsigned r = 0; r < 8; r++)
            used |= t->cache_host[r] == host;
        if (!used)
            return host;
    }
    for (unsigned k = 0; k < NR_CACHE_REGS; k++) {
        unsigned i = (t->victim + k) % NR_CACHE_REGS;
        unsigned host = cache_regs[i];
        if (t->reserved & (1u << host))
            continue;
        t->victim = i + 1;
        cache_clobber(t, host);
        return host;
    }
    return 0;
}

/* The host register holding guest register r's 32-bit value: its cache
 * register (loaded now if need be), or scratch if none is free. */
static unsigned emit_greg_use(struct tctx *t, unsigned r, unsigned scratch)
{
    unsigned c = t->cache_host[r];
    if (c)
        return c;
    c = cache_alloc(t);
    if (!c) {
        emit_load(&t->e, scratch, OFF_REG(r), 4);
        return scratch;
    }
    emit_load(&t->e, c, OFF_REG(r), 4);
    t->cache_host[r] = c;
    return c;
}

/* Loads size bytes of guest register r, from byte high (1 for AH-BH),
 * into host, zero-extended. */
static void emit_greg_read(struct tctx *t, unsigned r, unsigned high, unsigned size, unsigned host)
{
    if (size == 4) {
        unsigned c = emit_greg_use(t, r, host);
        if (c != host)
            emit_mov_reg(&t->e, host, c);
        return;
    }
    unsigned c = t->cache_host[r];
    if (c && !high)
        emit_movzx_reg(&t->e, size, host, c);
    else
        emit_load(&t->e, host, OFF_REG(r) + (int32_t)high, size);
}

/* Writes the low size bytes of host into guest register r at byte high. */
static void emit_greg_write(struct tctx *t, unsigned r, unsigned high, unsigned size, unsigned host)
{
    emit_store(&t->e, host, OFF_REG(r) + (int32_t)high, size);
    unsigned c = t->cache_host[r];
    if (high) {
        t->cache_host[r] = 0;
    } else if (size == 4) {
        if (!c) {
            c = cache_alloc(t);
            if (!c)
                return;
            t->cache_host[r] = (uint8_t)c;
        }
        emit_mov_reg(&t->e, c, host);
    } else if (c) {
        emit_mov_low(&t->e, size, c, host);
    }
}

static unsigned greg_number(ZydisRegister r)
{
    return (unsigned)(reg32_offset(r) - OFF_REG(0)) / 4;
}

/* Computes a memory operand's offset into ESI (no flags touched). */
static void emit_ea(struct tctx *t, const ZydisDecodedOperand *o)
{
    struct emitter *e = &t->e;
    int32_t disp = o->mem.disp.has_displacement ? (int32_t)o->mem.disp.value : 0;
    bool base = o->mem.base != ZYDIS_REGISTER_NONE;
    bool index = o->mem.index != ZYDIS_REGISTER_NONE;
    unsigned scale = o->mem.scale ? o->mem.scale : 1;
    unsigned b = H_RSI;
    if (base)
        b = emit_greg_use(t, greg_number(o->mem.base), H_RSI);
    else if (!index)
        emit_mov_imm(e, H_RSI, (uint32_t)disp);
    if (index && !base) {
        unsigned i = emit_greg_use(t, greg_number(o->mem.index), H_RCX);
        emit_lea_index(e, H_RSI, i, scale, disp);
    } else if (index) {
        /* The base's cache register must survive the index's load. */
        uint16_t reserved = t->reserved;
        t->reserved |= (uint16_t)(1u << b);
        unsigned i = emit_greg_use(t, greg_number(o->mem.index), H_RCX);
        t->reserved = reserved;
        emit_lea_sib(e, H_RSI, b, i, scale, disp);
    } else if (base && disp) {
        emit_lea_disp(e, H_RSI, b, disp);
    } else if (base && b != H_RSI) {
        emit_mov_reg(e, H_RSI, b);
    }
    if (t->z->address_width == 16)
        emit_movzx16(e, H_RSI, H_RSI);
}

/* The segment of a memory operand: the last segment prefix if there is
 * one (Zydis reads a lone 3Eh before a branch as NOTRACK rather than DS),
 * else the operand's default. */
static unsigned operand_segment(const ZydisDecodedInstruction *z, const ZydisDecodedOperand *o)
{
    for (int p = z->raw.prefix_count - 1; p >= 0; p--) {
        switch (z->raw.prefixes[p].value) {
        case 0x26:
            return S_ES;
        case 0x2e:
            return S_CS;
        case 0x36:
            return S_SS;
        case 0x3e:
            return S_DS;
        case 0x64:
            return S_FS;
        case 0x65:
            return S_GS;
        default:
            break;
        }
    }
    return (unsigned)(o->mem.segment - ZYDIS_REGISTER_ES);
}

static uint32_t mem_info(const ZydisDecodedInstruction *z, const ZydisDecodedOperand *o,
                         unsigned size)
{
    /* Every helper records the instruction's start state: translated
     * instructions change no guest state before their last access (see
     * end_rmw), so the state at any access is the state at the start. */
    return operand_segment(z, o) | (size << 4) | DBT_INFO_SYNC;
}

/* [rbx + index*8 + disp32] */
static void emit_modrm_rbx_index8(struct emitter *e, unsigned reg, unsigned index, int32_t disp)
{
    emit8(e, (uint8_t)(0x84 | ((reg & 7) << 3)));
    emit8(e, (uint8_t)(0xc0 | ((index & 7) << 3) | H_RBX));
    emit32(e, (uint32_t)disp);
}

/* The inline fast path of a memory access at offset ESI: the segment's
 * limit and rights (precomputed as the end of the offsets a plain access
 * may use), then the interpreter's TLB entry for the page (its linear tag,
 * rights and RAM host pointer; for writes also that the page holds no
 * code, and the dirty bit). Leaves the host address in RCX + RAX and
 * returns the jump to patch to the slow path; RFLAGS is clobbered. */
static void emit_fast_lookup(struct tctx *t, unsigned seg, unsigned size, bool write,
                             uint8_t **slow)
{
    struct emitter *e = &t->e;
    const struct dbt *d = t->d;
    /* lea rcx, [rsi + size]; cmp rcx, [rbx + seg_end]; ja slow */
    emit8(e, 0x48);
    emit8(e, 0x8d);
    emit8(e, 0x4e);
    emit8(e, (uint8_t)size);
    emit8(e, 0x48);
    emit8(e, 0x3b);
    emit_modrm_rbx(e, H_RCX, OFF_SEG_END(write, seg));
    slow[0] = emit_jcc_fwd(e, CC_A);
    /* eax = linear = base + offset; ecx = page of the last byte */
    emit_load(e, H_RAX, OFF_SEG_BASE(seg), 4);
    emit8(e, 0x01); /* add eax, esi */
    emit8(e, 0xf0);
    emit8(e, 0x8d); /* lea ecx, [rax + size - 1] */
    emit8(e, 0x48);
    emit8(e, (uint8_t)(size - 1));
    emit8(e, 0x81); /* and ecx, ~0xfff */
    emit8(e, 0xe1);
    emit32(e, ~0xfffu);
    /* edx = TLB index * 3 (entries are 24 bytes) */
    emit_mov_reg(e, H_RDX, H_RAX);
    emit8(e, 0xc1); /* shr edx, 12 */
    emit8(e, 0xea);
    emit8(e, 12);
    emit8(e, 0x81); /* and edx, INTERP_TLB_SIZE - 1 */
    emit8(e, 0xe2);
    emit32(e, INTERP_TLB_SIZE - 1);
    emit8(e, 0x8d); /* lea edx, [rdx + rdx*2] */
    emit8(e, 0x14);
    emit8(e, 0x52);
    /* A page-crossing access has a last-byte page unlike the entry's. */
    emit8(e, 0x3b); /* cmp ecx, [entry.linear] */
    emit_modrm_rbx_index8(e, H_RCX, H_RDX, OFF_TLB + TLB_LINEAR);
    slow[1] = emit_jcc_fwd(e, CC_NE);
    bool user = t->flags & DBT_MODE_USER;
    uint32_t need = write ? ((user ? TLB_WRITE_USER : TLB_WRITE_SUP) | TLB_RAM_WRITE)
                          : (user ? TLB_READ_USER : TLB_READ_SUP);
    emit8(e, 0x0f); /* movzx ecx, word [entry.perms] */
    emit8(e, 0xb7);
    emit_modrm_rbx_index8(e, H_RCX, H_RDX, OFF_TLB + TLB_PERMS);
    emit8(e, 0x81); /* and ecx, need */
    emit8(e, 0xe1);
    emit32(e, need);
    emit8(e, 0x81); /* cmp ecx, need */
    emit8(e, 0xf9);
    emit32(e, need);
    slow[2] = emit_jcc_fwd(e, CC_NE);
    emit8(e, 0x48); /* mov rcx, [entry.page] */
    emit8(e, 0x8b);
    emit_modrm_rbx_index8(e, H_RCX, H_RDX, OFF_TLB + TLB_PAGE);
    if (write) {
        emit8(e, 0xf6); /* test byte [rcx + flags], MEMORY_PAGE_CODE */
        emit8(e, 0x41);
        emit8(e, (uint8_t)offsetof(struct memory_page, flags));
        emit8(e, MEMORY_PAGE_CODE);
        slow[3] = emit_jcc_fwd(e, CC_NE);
    } else {
        slow[3] = NULL;
    }
    emit8(e, 0x48); /* mov rcx, [rcx + host] */
    emit8(e, 0x8b);
    emit8(e, 0x49);
    emit8(e, (uint8_t)offsetof(struct memory_page, host));
    emit8(e, 0x48); /* test rcx, rcx */
    emit8(e, 0x85);
    emit8(e, 0xc9);
    slow[4] = emit_jcc_fwd(e, CC_E);
    if (write) {
        /* The dirty bits, as memory_write sets them. */
        emit8(e, 0x44); /* mov r10d, [entry.phys] */
        emit8(e, 0x8b);
        emit_modrm_rbx_index8(e, H_R10, H_RDX, OFF_TLB + TLB_PHYS);
        emit8(e, 0x41); /* shr r10d, 12 */
        emit8(e, 0xc1);
        emit8(e, 0xea);
        emit8(e, 12);
        emit_mov_imm64(e, H_R11, (uint64_t)(uintptr_t)d->in.cpu->mem->dirty);
        emit8(e, 0x43); /* mov byte [r11 + r10], MEMORY_DIRTY_ALL */
        emit8(e, 0xc6);
        emit8(e, 0x04);
        emit8(e, 0x13);
        emit8(e, MEMORY_DIRTY_ALL);
    }
    emit8(e, 0x25); /* and eax, 0xfff */
    emit32(e, 0xfff);
}

static void patch_slow(struct tctx *t, uint8_t **slow)
{
    for (int k = 0; k < 5; k++)
        emit_patch(&t->e, slow[k], t->e.p);
}

/* Whether an access through segment seg may take the flat fast path: the
 * block runs with ES, SS and DS flat (DBT_MODE_FLAT), so the offset is the
 * linear address and no limit or rights check applies. */
static bool flat_access(const struct tctx *t, unsigned seg)
{
    return (t->flags & DBT_MODE_FLAT) && (seg == S_ES || seg == S_SS || seg == S_DS);
}

/* The flat fast path of an access at offset ESI (the linear address),
 * written without an instruction that changes the host's flags, so dirty
 * guest flags stay in RFLAGS across it: the fast TLB entry of the first
 * byte's page must carry the last byte's page as its tag (the tag check
 * is a subtraction by NOT and LEA, a shift by SHRX and JRCXZ). Leaves the
 * host address in RCX + RSI and returns the jump to patch to the slow
 * path. */
static uint8_t *emit_flat_lookup(struct tctx *t, unsigned size, bool write)
{
    struct emitter *e = &t->e;
    emit8(e, 0x8d); /* lea ecx, [rsi + size - 1]: the last byte */
    emit8(e, 0x4e);
    emit8(e, (uint8_t)(size - 1));
    /* edx = index = (linear >> 12) % DBT_FTLB_SIZE; ebp = 12, r15d = 22 */
    emit_shiftx(e, false, false, H_RDX, H_RSI, H_RBP);
    emit_shiftx(e, true, false, H_RDX, H_RDX, H_R15);
    emit_shiftx(e, false, false, H_RDX, H_RDX, H_R15);
    emit8(e, 0x8d); /* lea edx, [rdx * 4]: entries are 32 bytes, indexed * 8 */
    emit8(e, 0x14);
    emit8(e, 0x95);
    emit32(e, 0);
    emit8(e, 0x4c); /* mov r10, [entry.tag] */
    emit8(e, 0x8b);
    emit_modrm_rbx_index8(e, H_R10, H_RDX, write ? OFF_FTLB(write_tag) : OFF_FTLB(read_tag));
    emit8(e, 0x49); /* not r10 */
    emit8(e, 0xf7);
    emit8(e, 0xd2);
    emit8(e, 0x4a); /* lea rcx, [rcx + r10 + 1]: last - tag */
    emit8(e, 0x8d);
    emit8(e, 0x4c);
    emit8(e, 0x11);
    emit8(e, 0x01);
    emit_shiftx(e, false, true, H_RCX, H_RCX, H_RBP);
    emit8(e, 0xe3); /* jrcxz hit */
    emit8(e, 5);
    uint8_t *slow = emit_jmp_fwd(e);
    emit8(e, 0x48); /* mov rcx, [entry.addend] */
    emit8(e, 0x8b);
    emit_modrm_rbx_index8(e, H_RCX, H_RDX, OFF_FTLB(addend));
    if (write) {
        emit8(e, 0x4c); /* mov r10, [entry.dirty] */
        emit8(e, 0x8b);
        emit_modrm_rbx_index8(e, H_R10, H_RDX, OFF_FTLB(dirty));
        emit8(e, 0x41); /* mov byte [r10], MEMORY_DIRTY_ALL */
        emit8(e, 0xc6);
        emit8(e, 0x02);
        emit8(e, MEMORY_DIRTY_ALL);
    }
    return slow;
}

/* The slow path's call of a helper from flat code: the guest flags RFLAGS
 * holds survive the call (saved on the host stack, the dirty ones also
 * stored to EFLAGS so a fault sees them). Emits the part before the call
 * (returning whether flags were saved); emit_flat_helper_end the part
 * after. */
static bool emit_flat_helper_begin(struct tctx *t)
{
    struct emitter *e = &t->e;
    if (!t->host_valid)
        return false;
    emit8(e, 0x9c); /* pushfq */
    if (t->dirty) {
        emit8(e, 0x4c); /* mov r10, [rsp] */
        emit8(e, 0x8b);
        emit8(e, 0x14);
        emit8(e, 0x24);
        fold_dirty_flags_from_r10(t);
    }
    emit8(e, 0x48); /* sub rsp, 8 */
    emit8(e, 0x83);
    emit8(e, 0xec);
    emit8(e, 8);
    return true;
}

static void emit_flat_helper_end(struct tctx *t, bool saved)
{
    struct emitter *e = &t->e;
    if (!saved)
        return;
    emit8(e, 0x48); /* add rsp, 8 */
    emit8(e, 0x83);
    emit8(e, 0xc4);
    emit8(e, 8);
    emit8(e, 0x9d); /* popfq */
}

/* The slow path of a flat access: the helper call, with the guest flags
 * RFLAGS holds kept (see emit_flat_helper_begin); a store that hit the
 * running block's code leaves the block (SLOW_STORE, see struct
 * store_exit) or notes it in R14D (SLOW_STORE_R14). Ends with the jump
 * back to the fast path's continuation, or, if that is not known yet
 * (NULL), a jump whose rel32 field it returns. */
static uint8_t *emit_slow_path(struct tctx *t, const struct slow_path *sp)
{
    struct emitter *e = &t->e;
    emit_patch(e, sp->jump, e->p);
    t->host_valid = sp->host_valid;
    t->dirty = sp->dirty;
    bool saved = sp->kind != SLOW_STORE_R14 && emit_flat_helper_begin(t);
    emit_mov_imm(e, H_RDX, sp->info);
    emit_mov_imm(e, H_RCX, sp->eip);
    emit_arg_interp(e);
    if (sp->kind == SLOW_LOAD) {
        emit_call(e, (const void *)dbt_helper_load);
    } else {
        emit_call(e, (const void *)dbt_helper_store);
    }
    if (sp->kind == SLOW_STORE_R14) {
        emit_mov_reg(e, H_R14, H_RAX);
    } else if (sp->kind == SLOW_STORE) {
        const struct store_exit *x = sp->has_exit ? &sp->exit : NULL;
        emit_test_eax(e);
        uint8_t *stay = emit_jcc_fwd(e, CC_E);
        if (saved) {
            emit8(e, 0x48); /* add rsp, 16 */
            emit8(e, 0x83);
            emit8(e, 0xc4);
            emit8(e, 16);
        }
        if (x && x->esp_delta) {
            /* The cache is not looked at on this way out: memory is exact. */
            emit_load(e, H_RAX, OFF_REG(R_ESP), 4);
            emit_lea_disp(e, H_RAX, H_RAX, x->esp_delta);
            emit_store(e, H_RAX, OFF_REG(R_ESP), 4);
        }
        if (x && x->to_r13)
            emit_store(e, H_R13, OFF_EIP, 4);
        else
            emit_store_imm32(e, OFF_EIP, x ? x->eip : sp->next);
        emit_jmp_to(e, t->d->epilogue);
        emit_patch(e, stay, e->p);
    }
    emit_flat_helper_end(t, saved);
    if (!sp->resume)
        return emit_jmp_fwd(e);
    emit_jmp_to(e, sp->resume);
    return NULL;
}

/* Records the slow path of the access just emitted (its fast path's jump
 * to it is slow), to be emitted after the block; emitted in place if the
 * record is full. */
static void defer_slow_path(struct tctx *t, enum slow_kind kind, uint8_t *slow, uint32_t info,
                            const struct store_exit *x)
{
    struct slow_path sp = {
        .kind = kind,
        .jump = slow,
        .info = info,
        .eip = t->eip,
        .next = t->next,
        .host_valid = t->host_valid,
        .dirty = t->dirty,
        .has_exit = x != NULL,
    };
    if (x)
        sp.exit = *x;
    if (t->nr_slow < DBT_MAX_SLOW_PATHS) {
        sp.resume = t->e.p;
        t->slow[t->nr_slow++] = sp;
        return;
    }
    /* In place, jumped over. */
    uint8_t *over = emit_jmp_fwd(&t->e);
    sp.resume = NULL;
    uint8_t *back = emit_slow_path(t, &sp);
    emit_patch(&t->e, over, t->e.p);
    emit_patch(&t->e, back, t->e.p);
}

static void emit_flat_load(struct tctx *t, uint32_t info, unsigned size)
{
    struct emitter *e = &t->e;
    uint8_t *slow = emit_flat_lookup(t, size, false);
    if (size == 4) {
        emit8(e, 0x8b); /* mov eax, [rcx + rsi] */
    } else {
        emit8(e, 0x0f); /* movzx eax, byte/word [rcx + rsi] */
        emit8(e, size == 2 ? 0xb7 : 0xb6);
    }
    emit8(e, 0x04);
    emit8(e, 0x31);
    defer_slow_path(t, SLOW_LOAD, slow, info, NULL);
}

/* Stores R8D; leaves the block after the instruction (see struct
 * store_exit; NULL: the next instruction) if the slow path's store hit the
 * running block's code or changed the memory map. */
static void emit_flat_store_to(struct tctx *t, uint32_t info, unsigned size,
                               const struct store_exit *x)
{
    struct emitter *e = &t->e;
    uint8_t *slow = emit_flat_lookup(t, size, true);
    emit_opsize(e, size);
    emit8(e, 0x44); /* mov [rcx + rsi], r8d/r8w/r8b */
    emit8(e, size == 1 ? 0x88 : 0x89);
    emit8(e, 0x04);
    emit8(e, 0x31);
    defer_slow_path(t, SLOW_STORE, slow, info, x);
}

static void emit_flat_store(struct tctx *t, uint32_t info, unsigned size)
{
    emit_flat_store_to(t, info, size, NULL);
}

/* Stores R8D like emit_flat_store, for an instruction that changes
 * registers after its store: rather than leaving the block, it sets R14D
 * (reserved) to whether the store hit the running block's code, for
 * emit_exit_if_smc once the instruction is complete. RFLAGS must hold no
 * guest flags. */
static void emit_flat_store_r14(struct tctx *t, uint32_t info, unsigned size)
{
    struct emitter *e = &t->e;
    cache_reserve(t, H_R14);
    uint8_t *slow = emit_flat_lookup(t, size, true);
    emit_opsize(e, size);
    emit8(e, 0x44); /* mov [rcx + rsi], r8d/r8w/r8b */
    emit8(e, size == 1 ? 0x88 : 0x89);
    emit8(e, 0x04);
    emit8(e, 0x31);
    emit_mov_imm(e, H_R14, 0);
    defer_slow_path(t, SLOW_STORE_R14, slow, info, NULL);
}

/* Loads the memory operand whose offset is in ESI into EAX. */
static void emit_mem_load(struct tctx *t, const ZydisDecodedOperand *o, unsigned size)
{
    struct emitter *e = &t->e;
    if (flat_access(t, operand_segment(t->z, o))) {
        emit_flat_load(t, mem_info(t->z, o, size), size);
        return;
    }
    flush_flags(t);
    uint8_t *slow[5];
    emit_fast_lookup(t, operand_segment(t->z, o), size, false, slow);
    if (size == 4) {
        emit8(e, 0x8b); /* mov eax, [rcx + rax] */
    } else {
        emit8(e, 0x0f); /* movzx eax, byte/word [rcx + rax] */
        emit8(e, size == 2 ? 0xb7 : 0xb6);
    }
    emit8(e, 0x04);
    emit8(e, 0x01);
    uint8_t *done = emit_jmp_fwd(e);
    patch_slow(t, slow);
    emit_mov_imm(e, H_RDX, mem_info(t->z, o, size));
    emit_mov_imm(e, H_RCX, t->eip);
    emit_arg_interp(e);
    emit_call(e, (const void *)dbt_helper_load);
    emit_patch(e, done, e->p);
    flags_clobbered(t);
}

/* Stores R8D to the memory operand at offset ESI. Leaves in R14D whether
 * the write hit the running block's code (see emit_exit_if_smc). */
static void emit_mem_store_only(struct tctx *t, const ZydisDecodedOperand *o, unsigned size)
{
    struct emitter *e = &t->e;
    flush_flags(t);
    cache_clobber(t, H_R14);
    uint8_t *slow[5];
    emit_fast_lookup(t, operand_segment(t->z, o), size, true, slow);
    emit_opsize(e, size);
    emit8(e, 0x44); /* mov [rcx + rax], r8d/r8w/r8b */
    emit8(e, size == 1 ? 0x88 : 0x89);
    emit8(e, 0x04);
    emit8(e, 0x01);
    emit_mov_imm(e, H_R14, 0);
    uint8_t *done = emit_jmp_fwd(e);
    patch_slow(t, slow);
    emit_mov_imm(e, H_RDX, mem_info(t->z, o, size));
    emit_mov_imm(e, H_RCX, t->eip);
    emit_arg_interp(e);
    emit_call(e, (const void *)dbt_helper_store);
    emit_mov_reg(e, H_R14, H_RAX);
    emit_patch(e, done, e->p);
    flags_clobbered(t);
}

/* Leaves the block at the current instruction's end if R14D is non-zero
 * (a write hit the running block's code). */
static void emit_exit_if_smc(struct tctx *t)
{
    struct emitter *e = &t->e;
    emit8(e, 0x45); /* test r14d, r14d */
    emit8(e, 0x85);
    emit8(e, 0xf6);
    uint8_t *skip = emit_jcc_fwd(e, CC_E);
    emit_store_imm32(e, OFF_EIP, t->next);
    emit_jmp_to(e, t->d->epilogue);
    emit_patch(e, skip, e->p);
    flags_clobbered(t);
}

/* Leaves the block at the current instruction's end if the helper just
 * called returned non-zero. */
static void emit_exit_if_eax(struct tctx *t)
{
    cache_clobber(t, H_R14);
    emit_mov_reg(&t->e, H_R14, H_RAX);
    emit_exit_if_smc(t);
}

static void emit_mem_store(struct tctx *t, const ZydisDecodedOperand *o, unsigned size)
{
    if (flat_access(t, operand_segment(t->z, o))) {
        emit_flat_store(t, mem_info(t->z, o, size), size);
        return;
    }
    emit_mem_store_only(t, o, size);
    emit_exit_if_smc(t);
}

/* Whether the stack may be reached by the flat fast path: SS flat and
 * 32 bits wide, so ESP is the linear address. */
static bool flat_stack(const struct tctx *t)
{
    return flat_access(t, S_SS) && (t->flags & DBT_MODE_STACK32);
}

/* ESP += delta, without touching the host's flags (RAX is clobbered). */
static void emit_adjust_esp(struct tctx *t, int32_t delta)
{
    unsigned esp = emit_greg_use(t, R_ESP, H_RAX);
    emit_lea_disp(&t->e, H_RAX, esp, delta);
    emit_greg_write(t, R_ESP, 0, 4, H_RAX);
}

/* PUSH of R8D on a flat stack: the store comes first (a fault leaves ESP
 * alone), then ESP moves. A CALL passes its target (to_r13 or eip) for
 * the way out after a store into the running block's code. */
static void emit_flat_push(struct tctx *t, unsigned size, bool to_r13, uint32_t eip)
{
    struct store_exit x = {.esp_delta = -(int32_t)size, .to_r13 = to_r13, .eip = eip};
    unsigned esp = emit_greg_use(t, R_ESP, H_RSI);
    emit_lea_disp(&t->e, H_RSI, esp, -(int32_t)size);
    emit_flat_store_to(t, S_SS | (size << 4) | DBT_INFO_SYNC, size, &x);
    emit_adjust_esp(t, -(int32_t)size);
}

/* POP into EAX from a flat stack, ESP moved past it (and release more). */
static void emit_flat_pop(struct tctx *t, unsigned size, uint32_t release)
{
    emit_greg_read(t, R_ESP, 0, 4, H_RSI);
    emit_flat_load(t, S_SS | (size << 4) | DBT_INFO_SYNC, size);
    emit_mov_reg(&t->e, H_RDX, H_RAX);
    emit_adjust_esp(t, (int32_t)(size + release));
    emit_mov_reg(&t->e, H_RAX, H_RDX);
}

/* Loads a register or immediate operand into a host register. */
static void emit_operand(struct tctx *t, const ZydisDecodedOperand *o, unsigned size, unsigned host)
{
    if (is_imm(o)) {
        emit_mov_imm(&t->e, host, (uint32_t)o->imm.value.u & mask_of(size));
    } else {
        int32_t off;
        unsigned sz;
        gpr_location(o->reg.value, &off, &sz);
        off -= OFF_REG(0);
        emit_greg_read(t, (unsigned)off / 4, (unsigned)off % 4, sz, host);
    }
}

static void emit_reg_store(struct tctx *t, const ZydisDecodedOperand *o, unsigned host)
{
    int32_t off;
    unsigned size;
    gpr_location(o->reg.value, &off, &size);
    off -= OFF_REG(0);
    emit_greg_write(t, (unsigned)off / 4, (unsigned)off % 4, size, host);
}

/* Leaves the block for eip. */
static void emit_exit(struct tctx *t, uint32_t eip)
{
    flush_flags(t);
    emit_store_imm32(&t->e, OFF_EIP, eip);
    emit_jmp_to(&t->e, t->d->epilogue);
}

/* Leaves the block for eip, by a jump the dispatch loop may later point
 * straight at the block for eip. Only targets in the block's own page
 * qualify: they share its translation, so the link holds as long as both
 * blocks do, and both go when the page is invalidated. */
static void emit_exit_chain(struct tctx *t, uint32_t eip)
{
    struct emitter *e = &t->e;
    uint32_t cs_base = t->d->in.state.sregs[S_CS].base;
    if (((cs_base + eip) >> GUEST_PAGE_SHIFT) != ((cs_base + t->block_eip) >> GUEST_PAGE_SHIFT)) {
        emit_exit(t, eip);
        return;
    }
    /* Blocks are entered with the flags in RFLAGS; the way to the
     * dispatch loop stores them. */
    need_host_flags(t, FLAGS_ALL);
    uint8_t *site = e->p;
    emit8(e, 0xe9); /* jmp rel32, falling through until chained */
    emit32(e, 0);
    flush_flags(t);
    emit_store_imm32(e, OFF_EIP, eip);
    emit_store_imm32(e, OFF_CHAIN, (uint32_t)(site - t->d->buffer));
    emit_jmp_to(e, t->d->epilogue);
}

/* Jumps to the rel32 field returned unless RCX is zero, without touching
 * RFLAGS. */
static uint8_t *emit_jump_unless_rcx_zero(struct emitter *e)
{
    emit8(e, 0xe3); /* jrcxz over the jmp */
    emit8(e, 5);
    return emit_jmp_fwd(e);
}

/* RCX -= the 64-bit value at [rbx + rax*8 + disp] (or [rbx + disp] when
 * !indexed), without touching RFLAGS: R10 = ~value, RCX += R10 + 1. */
static void emit_sub_rcx_noflags(struct emitter *e, bool indexed, int32_t disp)
{
    emit8(e, 0x4c); /* mov r10, [...] */
    emit8(e, 0x8b);
    if (indexed) {
        emit8(e, 0x94);
        emit8(e, 0xc3);
        emit32(e, (uint32_t)disp);
    } else {
        emit_modrm_rbx(e, H_R10, disp);
    }
    emit8(e, 0x49); /* not r10 */
    emit8(e, 0xf7);
    emit8(e, 0xd2);
    emit8(e, 0x4a); /* lea rcx, [rcx + r10 + 1] */
    emit8(e, 0x8d);
    emit8(e, 0x4c);
    emit8(e, 0x11);
    emit8(e, 0x01);
}

/* Leaves the block for the EIP in R13D: straight into the block the jump
 * cache holds for it in this block's mode, with the flags in RFLAGS as
 * blocks expect them, else through the dispatch loop. The lookup leaves
 * RFLAGS alone, so flags computed before an indirect jump or a return
 * need not be stored. */
static void emit_jump_cache(struct tctx *t)
{
    struct emitter *e = &t->e;
    need_host_flags(t, FLAGS_ALL);
    emit_store(e, H_R13, OFF_EIP, 4);
    /* The jump cache holds blocks of one CS base and limit: this block's. */
    const struct x86_segment *cs = &t->d->in.state.sregs[S_CS];
    emit_mov_imm64(e, H_RCX, cs->base | (uint64_t)cs->limit << 32);
    emit_sub_rcx_noflags(e, false, OFF_JC_CS);
    uint8_t *miss_cs = emit_jump_unless_rcx_zero(e);
    /* rax = (eip % DBT_JC_SIZE) * 2, to index 16-byte entries by 8 */
    emit_shiftx(e, true, false, H_RAX, H_R13, H_R15);
    emit_shiftx(e, false, false, H_RAX, H_RAX, H_R15);
    emit8(e, 0x8d); /* lea eax, [rax + rax] */
    emit8(e, 0x04);
    emit8(e, 0x00);
    emit_mov_imm64(e, H_RCX, (uint64_t)t->flags << 32);
    emit8(e, 0x4a); /* lea rcx, [rcx + r13]: the key */
    emit8(e, 0x8d);
    emit8(e, 0x0c);
    emit8(e, 0x29);
    emit_sub_rcx_noflags(e, true, OFF_JC(key));
    uint8_t *miss_key = emit_jump_unless_rcx_zero(e);
    emit8(e, 0xff); /* jmp [rbx + rax*8 + jc.code] */
    emit8(e, 0xa4);
    emit8(e, 0xc3);
    emit32(e, (uint32_t)OFF_JC(code));
    emit_patch(e, miss_cs, e->p);
    emit_patch(e, miss_key, e->p);
    flush_flags(t);
    emit_jmp_to(e, t->d->epilogue);
}

/* --- Instructions ------------------------------------------------------------- */

static int alu_number(ZydisMnemonic m)
{
    switch (m) {
    case ZYDIS_MNEMONIC_ADD:
        return 0;
    case ZYDIS_MNEMONIC_OR:
        return 1;
    case ZYDIS_MNEMONIC_ADC:
        return 2;
    case ZYDIS_MNEMONIC_SBB:
        return 3;
    case ZYDIS_MNEMONIC_AND:
        return 4;
    case ZYDIS_MNEMONIC_SUB:
        return 5;
    case ZYDIS_MNEMONIC_XOR:
        return 6;
    case ZYDIS_MNEMONIC_CMP:
        return 7;
    case ZYDIS_MNEMONIC_TEST:
        return 8;
    default:
        return -1;
    }
}

/* A read-modify-write or read-only operation on ops[0]: loads it into EAX
 * (its memory offset kept in R12), lets op emit the host operation on EAX,
 * then writes EAX back unless read_only. Returns false if the operand
 * kinds are not handled. */
static bool begin_rmw(struct tctx *t, const ZydisDecodedOperand *dst, unsigned size)
{
    if (is_mem(dst)) {
        if (!mem_ok(dst))
            return false;
        /* end_rmw's store must find EFLAGS as it was before the
         * instruction, should it fault. */
        flush_flags(t);
        emit_ea(t, dst);
        cache_reserve(t, H_R12);
        emit_mov_reg(&t->e, H_R12, H_RSI);
        emit_mem_load(t, dst, size);
        return true;
    }
    if (!is_gpr(dst))
        return false;
    emit_operand(t, dst, size, H_RAX);
    return true;
}

static void end_rmw(struct tctx *t, const ZydisDecodedOperand *dst, unsigned size)
{
    struct emitter *e = &t->e;
    if (is_mem(dst)) {
        /* The store may fault, and must find the flags as they were: the
         * new ones wait in R13 until it is done. */
        uint32_t dirty = t->dirty;
        cache_clobber(t, H_R13);
        if (dirty) {
            emit8(e, 0x9c); /* pushfq */
            emit8(e, 0x41); /* pop r13 */
            emit8(e, 0x5d);
            t->dirty = 0;
        }
        emit_mov_reg(e, H_R8, H_RAX);
        emit_mov_reg(e, H_RSI, H_R12);
        cache_release(t, H_R12);
        emit_mem_store_only(t, dst, size);
        if (dirty) {
            emit8(e, 0x41); /* and r13d, dirty */
            emit8(e, 0x81);
            emit8(e, 0xe5);
            emit32(e, dirty);
            emit_load(e, H_R11, OFF_EFLAGS, 4);
            emit8(e, 0x41); /* and r11d, ~dirty */
            emit8(e, 0x81);
            emit8(e, 0xe3);
            emit32(e, ~dirty);
            emit8(e, 0x45); /* or r11d, r13d */
            emit8(e, 0x09);
            emit8(e, 0xeb);
            emit_store(e, H_R11, OFF_EFLAGS, 4);
        }
        emit_exit_if_smc(t);
    } else {
        emit_reg_store(t, dst, H_RAX);
    }
}

static bool tr_alu(struct tctx *t, int alu)
{
    const ZydisDecodedOperand *dst = &t->ops[0], *src = &t->ops[1];
    unsigned size = dst->size / 8;
    if (is_mem(src)) {
        if (!is_gpr(dst) || !mem_ok(src))
            return false;
        emit_ea(t, src);
        emit_mem_load(t, src, size);
        emit_mov_reg(&t->e, H_RDX, H_RAX);
        emit_operand(t, dst, size, H_RAX);
    } else {
        if (!is_gpr(src) && !is_imm(src))
            return false;
        if (!begin_rmw(t, dst, size))
            return false;
        emit_operand(t, src, size, H_RDX);
    }
    if (alu == 2 || alu == 3)
        need_host_flags(t, X86_FLAG_CF);
    if (alu == 8)
        emit_test_reg(&t->e, size, H_RAX, H_RDX);
    else
        emit_alu_reg(&t->e, (unsigned)alu, size, H_RAX, H_RDX);
    flags_written(t, FLAGS_ALL);
    if (alu != 7 && alu != 8) {
        if (is_mem(src))
            emit_reg_store(t, dst, H_RAX);
        else
            end_rmw(t, dst, size);
    }
    return true;
}

static bool tr_unary(struct tctx *t, ZydisMnemonic m)
{
    const ZydisDecodedOperand *dst = &t->ops[0];
    unsigned size = dst->size / 8;
    if (!begin_rmw(t, dst, size))
        return false;
    switch (m) {
    case ZYDIS_MNEMONIC_INC:
        emit_unary(&t->e, 0xff, 0, size, H_RAX);
        flags_written(t, FLAGS_ALL & ~X86_FLAG_CF);
        break;
    case ZYDIS_MNEMONIC_DEC:
        emit_unary(&t->e, 0xff, 1, size, H_RAX);
        flags_written(t, FLAGS_ALL & ~X86_FLAG_CF);
        break;
    case ZYDIS_MNEMONIC_NEG:
        emit_unary(&t->e, 0xf7, 3, size, H_RAX);
        flags_written(t, FLAGS_ALL);
        break;
    default: /* NOT */
        emit_unary(&t->e, 0xf7, 2, size, H_RAX);
        break;
    }
    end_rmw(t, dst, size);
    return true;
}

static bool tr_shift(struct tctx *t, unsigned ext)
{
    const ZydisDecodedOperand *dst = &t->ops[0], *cnt = &t->ops[1];
    unsigned size = dst->size / 8;
    uint32_t written = (ext == 0 || ext == 1) ? (X86_FLAG_CF | X86_FLAG_OF) : FLAGS_ALL;
    if (is_imm(cnt)) {
        unsigned count = (unsigned)cnt->imm.value.u & 31;
        if (count == 0 && is_mem(dst))
            return false; /* still accesses memory: the interpreter does it */
        if (count == 0)
            return true; /* changes nothing, not even flags */
        if (!begin_rmw(t, dst, size))
            return false;
        emit_shift(&t->e, ext, size, H_RAX, (int)count);
        flags_written(t, written);
        end_rmw(t, dst, size);
        return true;
    }
    if (cnt->type != ZYDIS_OPERAND_TYPE_REGISTER || cnt->reg.value != ZYDIS_REGISTER_CL)
        return false;
    /* A zero count leaves the flags alone, so they must be in EFLAGS
     * whichever way the count goes. */
    if (!begin_rmw(t, dst, size))
        return false;
    flush_flags(t);
    emit_greg_read(t, R_ECX, 0, 1, H_RCX);
    emit8(&t->e, 0xf6); /* test cl, 31 */
    emit8(&t->e, 0xc1);
    emit8(&t->e, 31);
    uint8_t saved[8];
    memcpy(saved, t->cache_host, sizeof(saved));
    uint8_t *skip = emit_jcc_fwd(&t->e, CC_E);
    emit_shift(&t->e, ext, size, H_RAX, -1);
    t->host_valid = 0;
    flags_written(t, written);
    end_rmw(t, dst, size);
    flush_flags(t);
    emit_patch(&t->e, skip, t->e.p);
    cache_join(t, saved);
    t->host_valid = 0;
    return true;
}

static bool tr_mov(struct tctx *t)
{
    const ZydisDecodedOperand *dst = &t->ops[0], *src = &t->ops[1];
    unsigned size = dst->size / 8;
    if (is_gpr(dst)) {
        if (is_mem(src)) {
            if (!mem_ok(src))
                return false;
            emit_ea(t, src);
            emit_mem_load(t, src, size);
        } else if (is_gpr(src) || is_imm(src)) {
            emit_operand(t, src, size, H_RAX);
        } else {
            return false;
        }
        emit_reg_store(t, dst, H_RAX);
        return true;
    }
    if (is_mem(dst) && mem_ok(dst) && (is_gpr(src) || is_imm(src))) {
        emit_ea(t, dst);
        emit_operand(t, src, size, H_R8);
        emit_mem_store(t, dst, size);
        return true;
    }
    return false;
}

/* MOVZX, MOVSX: the source is loaded zero-extended, then sign-extended if
 * asked. */
static bool tr_movx(struct tctx *t, bool sign)
{
    const ZydisDecodedOperand *dst = &t->ops[0], *src = &t->ops[1];
    unsigned from = src->size / 8;
    if (!is_gpr(dst))
        return false;
    if (is_mem(src)) {
        if (!mem_ok(src))
            return false;
        emit_ea(t, src);
        emit_mem_load(t, src, from);
    } else if (is_gpr(src)) {
        emit_operand(t, src, from, H_RAX);
    } else {
        return false;
    }
    if (sign)
        emit_movsx(&t->e, from, H_RAX, H_RAX);
    emit_reg_store(t, dst, H_RAX);
    return true;
}

static bool tr_lea(struct tctx *t)
{
    const ZydisDecodedOperand *dst = &t->ops[0], *src = &t->ops[1];
    if (!is_gpr(dst) || src->type != ZYDIS_OPERAND_TYPE_MEMORY || !mem_ok(src))
        return false;
    emit_ea(t, src);
    emit_reg_store(t, dst, H_RSI);
    return true;
}

static bool tr_xchg(struct tctx *t)
{
    const ZydisDecodedOperand *a = &t->ops[0], *b = &t->ops[1];
    if (!is_gpr(a) || !is_gpr(b))
        return false;
    unsigned size = a->size / 8;
    emit_operand(t, a, size, H_RAX);
    emit_operand(t, b, size, H_RDX);
    emit_reg_store(t, a, H_RDX);
    emit_reg_store(t, b, H_RAX);
    return true;
}

static bool tr_imul(struct tctx *t)
{
    if (t->z->operand_count_visible < 2)
        return false;
    const ZydisDecodedOperand *dst = &t->ops[0];
    const ZydisDecodedOperand *src = &t->ops[1];
    unsigned size = dst->size / 8;
    if (!is_gpr(dst))
        return false;
    if (is_mem(src)) {
        if (!mem_ok(src))
            return false;
        emit_ea(t, src);
        emit_mem_load(t, src, size);
        emit_mov_reg(&t->e, H_RDX, H_RAX);
    } else if (is_gpr(src)) {
        emit_operand(t, src, size, H_RDX);
    } else {
        return false;
    }
    if (t->z->operand_count_visible >= 3) {
        if (!is_imm(&t->ops[2]))
            return false;
        emit_operand(t, &t->ops[2], size, H_RAX);
    } else {
        emit_operand(t, dst, size, H_RAX);
    }
    emit_imul_reg(&t->e, size, H_RAX, H_RDX);
    flags_written(t, FLAGS_ALL);
    emit_reg_store(t, dst, H_RAX);
    return true;
}

static bool tr_push(struct tctx *t)
{
    const ZydisDecodedOperand *src = &t->ops[0];
    unsigned size = t->z->operand_width / 8;
    struct emitter *e = &t->e;
    if (is_mem(src)) {
        if (!mem_ok(src))
            return false;
        emit_ea(t, src);
        emit_mem_load(t, src, size);
        emit_mov_reg(e, H_RSI, H_RAX);
    } else if (is_gpr(src) || is_imm(src)) {
        emit_operand(t, src, size, H_RSI);
    } else {
        return false;
    }
    if (flat_stack(t)) {
        emit_mov_reg(e, H_R8, H_RSI);
        emit_flat_push(t, size, false, t->next);
        return true;
    }
    flush_flags(t);
    emit_mov_imm(e, H_RDX, (size << 4) | DBT_INFO_SYNC);
    emit_mov_imm(e, H_RCX, t->eip);
    emit_arg_interp(e);
    emit_call(e, (const void *)dbt_helper_push);
    cache_reset(t);
    flags_clobbered(t);
    emit_exit_if_eax(t);
    return true;
}

static bool tr_pop(struct tctx *t)
{
    const ZydisDecodedOperand *dst = &t->ops[0];
    unsigned size = t->z->operand_width / 8;
    struct emitter *e = &t->e;
    if (!is_gpr(dst))
        return false;
    if (flat_stack(t)) {
        emit_flat_pop(t, size, 0);
        emit_reg_store(t, dst, H_RAX);
        return true;
    }
    flush_flags(t);
    emit_mov_imm(e, H_RSI, (size << 4) | DBT_INFO_SYNC);
    emit_mov_imm(e, H_RDX, t->eip);
    emit_arg_interp(e);
    emit_call(e, (const void *)dbt_helper_pop);
    cache_reset(t);
    flags_clobbered(t);
    emit_reg_store(t, dst, H_RAX);
    return true;
}

static bool tr_setcc(struct tctx *t, unsigned cc)
{
    const ZydisDecodedOperand *dst = &t->ops[0];
    if (is_mem(dst) && !mem_ok(dst))
        return false;
    if (!is_mem(dst) && !is_gpr(dst))
        return false;
    emit_setcc(&t->e, host_condition(t, cc), H_RAX);
    if (is_gpr(dst)) {
        emit_reg_store(t, dst, H_RAX);
        return true;
    }
    emit_mov_reg(&t->e, H_R8, H_RAX);
    emit_ea(t, dst);
    emit_mem_store(t, dst, 1);
    return true;
}

static bool tr_cmov(struct tctx *t, unsigned cc)
{
    const ZydisDecodedOperand *dst = &t->ops[0], *src = &t->ops[1];
    unsigned size = dst->size / 8;
    if (!is_gpr(dst))
        return false;
    if (is_mem(src)) {
        /* The source is read (and may fault) whatever the condition. */
        if (!mem_ok(src))
            return false;
        emit_ea(t, src);
        emit_mem_load(t, src, size);
        emit_mov_reg(&t->e, H_RDX, H_RAX);
    } else if (is_gpr(src)) {
        emit_operand(t, src, size, H_RDX);
    } else {
        return false;
    }
    emit_operand(t, dst, size, H_RAX);
    emit_cmovcc(&t->e, host_condition(t, cc), H_RAX, H_RDX);
    emit_reg_store(t, dst, H_RAX);
    return true;
}

/* CBW, CWDE, CWD, CDQ: sign extensions that leave the flags alone. */
static void tr_extend(struct tctx *t, ZydisMnemonic m)
{
    struct emitter *e = &t->e;
    switch (m) {
    case ZYDIS_MNEMONIC_CBW:
        emit_greg_read(t, R_EAX, 0, 1, H_RAX);
        emit_movsx(e, 1, H_RAX, H_RAX);
        emit_greg_write(t, R_EAX, 0, 2, H_RAX);
        break;
    case ZYDIS_MNEMONIC_CWDE:
        emit_greg_read(t, R_EAX, 0, 2, H_RAX);
        emit_movsx(e, 2, H_RAX, H_RAX);
        emit_greg_write(t, R_EAX, 0, 4, H_RAX);
        break;
    case ZYDIS_MNEMONIC_CWD:
        emit_greg_read(t, R_EAX, 0, 2, H_RAX);
        emit8(e, 0x66); /* cwd */
        emit8(e, 0x99);
        emit_greg_write(t, R_EDX, 0, 2, H_RDX);
        break;
    default: /* CDQ */
        emit_greg_read(t, R_EAX, 0, 4, H_RAX);
        emit8(e, 0x99); /* cdq */
        emit_greg_write(t, R_EDX, 0, 4, H_RDX);
        break;
    }
}

/* MOVS, STOS and LODS without a repeat prefix, on flat segments with
 * 32-bit addresses: the load, then the store, then ESI and EDI move by the
 * operand size, down when DF is set. */
static bool tr_string(struct tctx *t)
{
    const ZydisDecodedInstruction *z = t->z;
    struct emitter *e = &t->e;
    if (z->opcode_map != ZYDIS_OPCODE_MAP_DEFAULT || z->address_width != 32 ||
        (z->attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE)))
        return false;
    unsigned op = z->opcode & ~1u;
    if (op != 0xa4 && op != 0xaa && op != 0xac)
        return false;
    unsigned size = (z->opcode & 1) ? z->operand_width / 8 : 1;
    bool loads = op != 0xaa, stores = op != 0xac;
    /* The source's segment may be overridden; the destination is ES. */
    unsigned src_seg = S_DS;
    if (loads) {
        const ZydisDecodedOperand *src = NULL;
        for (unsigned k = 0; k < z->operand_count; k++) {
            if (is_mem(&t->ops[k]) && t->ops[k].mem.base == ZYDIS_REGISTER_ESI)
                src = &t->ops[k];
        }
        if (!src)
            return false;
        src_seg = operand_segment(z, src);
    }
    if ((loads && !flat_access(t, src_seg)) || (stores && !flat_access(t, S_ES)))
        return false;
    flush_flags(t);
    if (loads) {
        emit_greg_read(t, R_ESI, 0, 4, H_RSI);
        emit_flat_load(t, src_seg | (size << 4) | DBT_INFO_SYNC, size);
    }
    if (stores) {
        if (loads)
            emit_mov_reg(e, H_R8, H_RAX);
        else
            emit_greg_read(t, R_EAX, 0, size, H_R8);
        emit_greg_read(t, R_EDI, 0, 4, H_RSI);
        emit_flat_store_r14(t, S_ES | (size << 4) | DBT_INFO_SYNC, size);
    }
    if (op == 0xac)
        emit_greg_write(t, R_EAX, 0, size, H_RAX);
    /* edx = DF ? -size : size */
    emit_mov_imm(e, H_RDX, size);
    emit_mov_imm(e, H_RCX, (uint32_t) - (int32_t)size);
    emit8(e, 0xf7); /* test dword [rbx + eflags], DF */
    emit_modrm_rbx(e, 0, OFF_EFLAGS);
    emit32(e, X86_FLAG_DF);
    emit_cmovcc(e, CC_NE, H_RDX, H_RCX);
    flags_clobbered(t);
    if (loads) {
        unsigned esi = emit_greg_use(t, R_ESI, H_RAX);
        emit_lea_sib(e, H_RAX, esi, H_RDX, 1, 0);
        emit_greg_write(t, R_ESI, 0, 4, H_RAX);
    }
    if (stores) {
        unsigned edi = emit_greg_use(t, R_EDI, H_RAX);
        emit_lea_sib(e, H_RAX, edi, H_RDX, 1, 0);
        emit_greg_write(t, R_EDI, 0, 4, H_RAX);
        emit_exit_if_smc(t);
    }
    return true;
}

/* The target of a relative branch, or false if it lies outside CS (the
 * interpreter then raises the #GP). */
static bool branch_target(struct tctx *t, uint32_t *target)
{
    const ZydisDecodedOperand *o = &t->ops[0];
    if (o->type != ZYDIS_OPERAND_TYPE_IMMEDIATE || !o->imm.is_relative)
        return false;
    uint32_t v = t->next + (uint32_t)o->imm.value.s;
    if (t->z->operand_width == 16)
        v &= 0xffff;
    if (v > t->d->in.state.sregs[S_CS].limit)
        return false;
    *target = v;
    return true;
}

static bool tr_jcc(struct tctx *t, unsigned cc)
{
    uint32_t target;
    if (!branch_target(t, &target))
        return false;
    /* Both exits want the flags in RFLAGS (blocks are entered so). */
    need_host_flags(t, FLAGS_ALL);
    unsigned host_cc = host_condition(t, cc);
    uint32_t host_valid = t->host_valid, dirty = t->dirty;
    uint8_t *taken = emit_jcc_fwd(&t->e, host_cc);
    emit_exit_chain(t, t->next);
    emit_patch(&t->e, taken, t->e.p);
    t->host_valid = host_valid;
    t->dirty = dirty;
    emit_exit_chain(t, target);
    return true;
}

static bool tr_call(struct tctx *t)
{
    uint32_t target;
    if (!branch_target(t, &target))
        return false;
    unsigned size = t->z->operand_width / 8;
    struct emitter *e = &t->e;
    if (flat_stack(t)) {
        emit_mov_imm(e, H_R8, t->next);
        emit_flat_push(t, size, false, target);
        emit_exit_chain(t, target);
        return true;
    }
    flush_flags(t);
    emit_mov_imm(e, H_RSI, t->next);
    emit_mov_imm(e, H_RDX, (size << 4) | DBT_INFO_SYNC);
    emit_mov_imm(e, H_RCX, t->eip);
    emit_arg_interp(e);
    emit_call(e, (const void *)dbt_helper_push);
    cache_reset(t);
    flags_clobbered(t);
    emit_exit_chain(t, target);
    return true;
}

/* Moves an indirect target from EAX to R13D (reserved) and checks it
 * against the CS limit the block was translated for (part of its key):
 * returns the jump to patch to the code for a target beyond it (the
 * interpreter then raises the #GP), or NULL under a 4 GiB limit, which
 * needs no check (and keeps the flags in RFLAGS). */
static uint8_t *emit_check_target(struct tctx *t)
{
    struct emitter *e = &t->e;
    uint32_t limit = t->d->in.state.sregs[S_CS].limit;
    if (limit != 0xffffffffu)
        flush_flags(t);
    cache_reserve(t, H_R13);
    emit_mov_reg(e, H_R13, H_RAX);
    if (limit == 0xffffffffu)
        return NULL;
    emit8(e, 0x41); /* cmp r13d, cs_limit */
    emit8(e, 0x81);
    emit8(e, 0xfd);
    emit32(e, limit);
    flags_clobbered(t);
    return emit_jcc_fwd(e, CC_A);
}

static bool tr_ret(struct tctx *t)
{
    const ZydisDecodedInstruction *z = t->z;
    struct emitter *e = &t->e;
    if (z->opcode != 0xc3 && z->opcode != 0xc2)
        return false; /* far returns */
    uint32_t release = z->opcode == 0xc2 ? (uint32_t)t->ops[0].imm.value.u & 0xffff : 0;
    if (flat_stack(t) && z->operand_width == 32) {
        /* The target is checked against CS before ESP moves: a target
         * beyond the limit has the interpreter raise the #GP. */
        emit_greg_read(t, R_ESP, 0, 4, H_RSI);
        emit_flat_load(t, S_SS | (4 << 4) | DBT_INFO_SYNC, 4);
        uint8_t *bad = emit_check_target(t);
        emit_adjust_esp(t, (int32_t)(4 + release));
        emit_jump_cache(t);
        if (bad) {
            t->host_valid = t->dirty = 0;
            emit_patch(e, bad, e->p);
            emit_fallback(t, true);
        }
        return true;
    }
    flush_flags(t);
    emit_mov_imm(e, H_RSI, release);
    emit_mov_imm(e, H_RDX, z->operand_width / 8);
    emit_mov_imm(e, H_RCX, t->eip);
    emit_arg_interp(e);
    emit_call(e, (const void *)dbt_helper_ret);
    cache_reset(t);
    emit_jmp_to(e, t->d->epilogue);
    return true;
}

static void emit_fallback(struct tctx *t, bool last);

/* Near JMP and CALL through a register or memory: the target is checked
 * against the CS limit the block was translated for (part of its key); a
 * target outside it has the interpreter raise the #GP. */
static bool tr_indirect(struct tctx *t, bool call)
{
    const ZydisDecodedOperand *o = &t->ops[0];
    struct emitter *e = &t->e;
    unsigned size = t->z->operand_width / 8;
    if (is_mem(o)) {
        if (!mem_ok(o) || o->size / 8 != size)
            return false;
        emit_ea(t, o);
        emit_mem_load(t, o, size);
    } else if (is_gpr(o)) {
        emit_operand(t, o, size, H_RAX);
    } else {
        return false;
    }
    if (call && !flat_stack(t))
        flush_flags(t);
    uint8_t *bad = emit_check_target(t);
    uint32_t host_valid = t->host_valid, dirty = t->dirty;
    if (call && flat_stack(t)) {
        emit_mov_imm(e, H_R8, t->next);
        emit_flat_push(t, size, true, 0);
    } else if (call) {
        emit_mov_imm(e, H_RSI, t->next);
        emit_mov_imm(e, H_RDX, (size << 4) | DBT_INFO_SYNC);
        emit_mov_imm(e, H_RCX, t->eip);
        emit_arg_interp(e);
        emit_call(e, (const void *)dbt_helper_push);
        cache_reset(t);
        flags_clobbered(t);
    }
    emit_jump_cache(t);
    if (bad) {
        t->host_valid = host_valid;
        t->dirty = dirty;
        emit_patch(e, bad, e->p);
        emit_fallback(t, true);
    }
    return true;
}

enum tr_result { TR_NEXT, TR_END, TR_FALLBACK };

static enum tr_result translate_insn(struct tctx *t)
{
    const ZydisDecodedInstruction *z = t->z;
    ZydisMnemonic m = z->mnemonic;
    if (z->attributes & ZYDIS_ATTRIB_HAS_LOCK)
        return TR_FALLBACK;
    int alu = alu_number(m);
    if (alu >= 0)
        return tr_alu(t, alu) ? TR_NEXT : TR_FALLBACK;
    switch (m) {
    case ZYDIS_MNEMONIC_NOP:
        return TR_NEXT;
    case ZYDIS_MNEMONIC_MOV:
        return tr_mov(t) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_MOVZX:
        return tr_movx(t, false) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_MOVSX:
        return tr_movx(t, true) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_LEA:
        return tr_lea(t) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_XCHG:
        return tr_xchg(t) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_INC:
    case ZYDIS_MNEMONIC_DEC:
    case ZYDIS_MNEMONIC_NEG:
    case ZYDIS_MNEMONIC_NOT:
        return tr_unary(t, m) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_ROL:
        return tr_shift(t, 0) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_ROR:
        return tr_shift(t, 1) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_SHL:
        return tr_shift(t, 4) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_SHR:
        return tr_shift(t, 5) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_SAR:
        return tr_shift(t, 7) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_IMUL:
        return tr_imul(t) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_PUSH:
        return tr_push(t) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_POP:
        return tr_pop(t) ? TR_NEXT : TR_FALLBACK;
    case ZYDIS_MNEMONIC_CBW:
    case ZYDIS_MNEMONIC_CWDE:
    case ZYDIS_MNEMONIC_CWD:
    case ZYDIS_MNEMONIC_CDQ:
        tr_extend(t, m);
        return TR_NEXT;
    case ZYDIS_MNEMONIC_JMP: {
        if (t->z->opcode == 0xff && t->z->raw.modrm.reg == 4)
            return tr_indirect(t, false) ? TR_END : TR_FALLBACK;
        uint32_t target;
        if (!branch_target(t, &target))
            return TR_FALLBACK;
        emit_exit_chain(t, target);
        return TR_END;
    }
    case ZYDIS_MNEMONIC_CALL:
        if (t->ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
            return tr_call(t) ? TR_END : TR_FALLBACK;
        if (t->z->opcode == 0xff && t->z->raw.modrm.reg == 2)
            return tr_indirect(t, true) ? TR_END : TR_FALLBACK;
        return TR_FALLBACK;
    case ZYDIS_MNEMONIC_RET:
        return tr_ret(t) ? TR_END : TR_FALLBACK;
    case ZYDIS_MNEMONIC_MOVSB:
    case ZYDIS_MNEMONIC_MOVSW:
    case ZYDIS_MNEMONIC_MOVSD:
    case ZYDIS_MNEMONIC_STOSB:
    case ZYDIS_MNEMONIC_STOSW:
    case ZYDIS_MNEMONIC_STOSD:
    case ZYDIS_MNEMONIC_LODSB:
    case ZYDIS_MNEMONIC_LODSW:
    case ZYDIS_MNEMONIC_LODSD:
        return tr_string(t) ? TR_NEXT : TR_FALLBACK;
    default:
        break;
    }
    if (z->opcode_map == ZYDIS_OPCODE_MAP_DEFAULT && (z->opcode & 0xf0) == 0x70 &&
        z->meta.category == ZYDIS_CATEGORY_COND_BR)
        return tr_jcc(t, z->opcode & 15) ? TR_END : TR_FALLBACK;
    if (z->opcode_map == ZYDIS_OPCODE_MAP_0F && (z->opcode & 0xf0) == 0x80 &&
        z->meta.category == ZYDIS_CATEGORY_COND_BR)
        return tr_jcc(t, z->opcode & 15) ? TR_END : TR_FALLBACK;
    if (z->opcode_map == ZYDIS_OPCODE_MAP_0F && (z->opcode & 0xf0) == 0x90 &&
        z->meta.category == ZYDIS_CATEGORY_SETCC)
        return tr_setcc(t, z->opcode & 15) ? TR_NEXT : TR_FALLBACK;
    if (z->opcode_map == ZYDIS_OPCODE_MAP_0F && (z->opcode & 0xf0) == 0x40 &&
        z->meta.category == ZYDIS_CATEGORY_CMOV)
        return tr_cmov(t, z->opcode & 15) ? TR_NEXT : TR_FALLBACK;
    return TR_FALLBACK;
}

/* Whether an interpreted instruction always ends the block (control
 * transfers, system instructions). Others end it only when the
 * interpreter's result says so. */
static bool ends_block(const ZydisDecodedInstruction *z)
{
    switch (z->meta.category) {
    case ZYDIS_CATEGORY_COND_BR:
    case ZYDIS_CATEGORY_UNCOND_BR:
    case ZYDIS_CATEGORY_CALL:
    case ZYDIS_CATEGORY_RET:
    case ZYDIS_CATEGORY_INTERRUPT:
    case ZYDIS_CATEGORY_SYSCALL:
    case ZYDIS_CATEGORY_SYSRET:
    case ZYDIS_CATEGORY_SYSTEM:
    case ZYDIS_CATEGORY_IO:
    case ZYDIS_CATEGORY_IOSTRINGOP:
        /* I/O may remap memory (PAM, A20), so the dispatch loop must look
         * at the page again. */
        return true;
    default:
        return false;
    }
}

static void emit_fallback(struct tctx *t, bool last)
{
    struct emitter *e = &t->e;
    if (g_getenv("VIVARIUM_DBT_LOG_FALLBACK"))
        fprintf(stderr, "dbt: interpreting %s at %08x\n", ZydisMnemonicGetString(t->z->mnemonic),
                t->eip);
    flush_flags(t);
    emit_mov_imm(e, H_RSI, t->eip);
    emit_mov_imm(e, H_RDX, t->next);
    emit_arg_interp(e);
    emit_call(e, (const void *)dbt_helper_interp);
    cache_reset(t);
    flags_clobbered(t);
    if (last) {
        emit_jmp_to(e, t->d->epilogue);
    } else {
        emit_test_eax(e);
        uint8_t *out = emit_jcc_fwd(e, CC_E);
        emit_patch(e, out, t->d->epilogue);
    }
}

struct dbt_block *dbt_translate(struct dbt *d, uint32_t eip, uint32_t phys,
                                const uint8_t *page_host, uint32_t flags)
{
    if (!decoders.ready) {
        ZydisDecoderInit(&decoders.dec16, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16);
        ZydisDecoderInit(&decoders.dec32, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
        decoders.ready = true;
    }
    const struct x86_state *s = &d->in.state;
    bool code32 = flags & DBT_MODE_CODE32;
    const ZydisDecoder *dec = code32 ? &decoders.dec32 : &decoders.dec16;
    uint32_t cs_limit = s->sregs[S_CS].limit;
    unsigned off = phys & (GUEST_PAGE_SIZE - 1);

    /* Room for a whole block, or start over with an empty cache. */
    size_t need = (size_t)DBT_MAX_BLOCK_INSNS * DBT_MAX_INSN_CODE;
    if ((size_t)(d->buffer + d->buffer_size - d->buffer_used) < need ||
        d->nr_blocks >= DBT_MAX_BLOCKS)
        dbt_cache_flush(d);
    struct dbt_block *b = dbt_cache_new_block(d);
    if (!b)
        return NULL;

    struct slow_path slow[DBT_MAX_SLOW_PATHS];
    struct tctx t = {
        .d = d, .e = {.p = d->buffer_used, .end = d->buffer + d->buffer_size}, .slow = slow};
    t.block_eip = eip;
    t.flags = flags;
    /* Blocks are entered (from the dispatch loop, a chained exit or the
     * jump cache) with the guest's arithmetic flags in RFLAGS, where
     * EFLAGS in memory may be behind: all of them count as dirty. Every
     * entry counts down the budget, without touching RFLAGS, and returns
     * to the loop when it ran out, through the exit before the entry. */
    t.host_valid = t.dirty = FLAGS_ALL;
    const uint8_t *out_of_budget = t.e.p;
    flush_flags(&t);
    emit_store_imm32(&t.e, OFF_EIP, eip);
    emit_jmp_to(&t.e, d->epilogue);
    const uint8_t *code = t.e.p;
    emit_load(&t.e, H_RCX, OFF_BUDGET, 4);
    emit8(&t.e, 0x44); /* lea r10d, [rcx - 1] */
    emit8(&t.e, 0x8d);
    emit8(&t.e, 0x51);
    emit8(&t.e, 0xff);
    emit_store(&t.e, H_R10, OFF_BUDGET, 4);
    ptrdiff_t back = out_of_budget - (t.e.p + 2);
    if (back < -128)
        g_error("dbt: a block's budget exit is out of reach");
    emit8(&t.e, 0xe3); /* jrcxz out_of_budget */
    emit8(&t.e, (uint8_t)(int8_t)back);
    t.host_valid = t.dirty = FLAGS_ALL;
    /* Blocks are also entered from other pages (through the jump cache):
     * each says which page runs, for self-modifying code detection. */
    emit_store_imm32(&t.e, OFF_RUNNING_PAGE, phys & ~0xfffu);
    uint32_t cur = eip;
    unsigned pos = off;
    unsigned count = 0;
    bool ended = false;
    while (!ended) {
        ZydisDecodedInstruction z;
        ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
        unsigned avail = GUEST_PAGE_SIZE - pos;
        if (avail > ZYDIS_MAX_INSTRUCTION_LENGTH)
            avail = ZYDIS_MAX_INSTRUCTION_LENGTH;
        ZyanStatus st = ZydisDecoderDecodeFull(dec, page_host + pos, avail, &z, ops);
        /* Instructions that cross the page, run past CS or wrap IP, and
         * undecodable bytes, are left to the interpreter as a block of
         * their own. */
        bool fits = ZYAN_SUCCESS(st) && (uint64_t)cur + z.length - 1 <= cs_limit &&
                    (code32 || cur + z.length <= 0x10000);
        if (!fits) {
            if (count == 0) {
                d->nr_blocks--;
                return NULL;
            }
            emit_exit_chain(&t, cur);
            break;
        }
        t.z = &z;
        t.ops = ops;
        t.eip = cur;
        t.next = cur + z.length;
        t.reserved = 0;
        enum tr_result r = translate_insn(&t);
        count++;
        pos += z.length;
        bool last_room = count >= DBT_MAX_BLOCK_INSNS || pos >= GUEST_PAGE_SIZE;
        if (r == TR_FALLBACK) {
            bool last = ends_block(&z);
            emit_fallback(&t, last);
            ended = last;
        } else {
            ended = r == TR_END;
        }
        cur = t.next;
        if (!ended && last_room) {
            emit_exit_chain(&t, cur);
            ended = true;
        }
    }
    for (unsigned k = 0; k < t.nr_slow; k++)
        emit_slow_path(&t, &t.slow[k]);
    if (t.e.full) {
        /* Cannot happen with the room reserved above; be safe anyway. */
        d->nr_blocks--;
        return NULL;
    }
    b->eip = eip;
    b->cs_base = s->sregs[S_CS].base;
    b->cs_limit = cs_limit;
    b->phys = phys;
    b->flags = flags;
    b->page_host = page_host;
    b->guest_bytes = (uint16_t)(pos - off);
    b->guest_insns = (uint16_t)count;
    b->code = code;
    d->buffer_used = t.e.p;
    d->stats.blocks_translated++;
    dbt_cache_insert(d, b);
    return b;
}
