/* Instruction fetch and decoding with Zydis, the per-physical-page cache of
 * decoded instructions, operand access and --trace output.
 *
 * Decoded instructions are kept per 4 KiB physical page, so a loop is
 * decoded once. A page holding cached code is marked with the memory map's
 * code bit; any write to it (by the CPU, DMA or a loader) calls
 * code_written(), which empties that page's cache. Pages are also checked
 * against the memory map on use, so a remapped page (shadow RAM, PAM) is
 * never served stale code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp_priv.h"
#include "../memory.h"

#define CODE_BUCKETS   1024
#define CODE_MAX_PAGES 4096

struct code_page {
    uint32_t phys;
    uint8_t *host;       /* the page's host bytes when it was decoded */
    uint16_t slot[4096]; /* 1 + index into insns, or 0 */
    struct insn *insns;
    unsigned count, capacity;
    struct code_page *next;
};

struct code_cache {
    ZydisDecoder decoder16, decoder32;
    ZydisFormatter formatter;
    insn_fn handlers[ZYDIS_MNEMONIC_MAX_VALUE + 1];
    struct code_page *buckets[CODE_BUCKETS];
    struct code_page *recent;
    unsigned pages;
};

static unsigned bucket_of(uint32_t phys)
{
    return (phys >> GUEST_PAGE_SHIFT) & (CODE_BUCKETS - 1);
}

static struct code_page *code_page_find(struct code_cache *cc, uint32_t phys)
{
    if (cc->recent && cc->recent->phys == phys)
        return cc->recent;
    for (struct code_page *p = cc->buckets[bucket_of(phys)]; p; p = p->next) {
        if (p->phys == phys) {
            cc->recent = p;
            return p;
        }
    }
    return NULL;
}

static void code_page_clear(struct code_page *p)
{
    if (p->count) {
        memset(p->slot, 0, sizeof(p->slot));
        /* The array is kept: the instruction being executed may point into
         * it, and it is only overwritten by the next decode. */
        p->count = 0;
    }
}

static void code_written(void *opaque, uint64_t addr, unsigned len)
{
    struct interp *in = opaque;
    struct code_cache *cc = in->code;
    uint64_t end = addr + (len ? len : 1);
    for (uint64_t a = addr & GUEST_PAGE_MASK; a < end; a += GUEST_PAGE_SIZE) {
        struct code_page *p = code_page_find(cc, (uint32_t)a);
        if (p)
            code_page_clear(p);
        memory_set_code_page(in->cpu->mem, a, false);
    }
}

void code_cache_flush(struct interp *in)
{
    struct code_cache *cc = in->code;
    for (unsigned b = 0; b < CODE_BUCKETS; b++) {
        struct code_page *p = cc->buckets[b];
        while (p) {
            struct code_page *next = p->next;
            /* The page keeps its code bit: the binary translator may
             * still have blocks there. A stale bit costs one call of the
             * hook on the next write, which clears it. */
            free(p->insns);
            free(p);
            p = next;
        }
        cc->buckets[b] = NULL;
    }
    cc->recent = NULL;
    cc->pages = 0;
}

bool code_cache_init(struct interp *in)
{
    struct code_cache *cc = calloc(1, sizeof(*cc));
    if (!cc)
        return false;
    ZydisDecoderInit(&cc->decoder16, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16);
    ZydisDecoderInit(&cc->decoder32, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
    /* Prefixes mean what they meant on a P6: no CET NOTRACK, no MPX BND. */
    ZydisDecoderEnableMode(&cc->decoder16, ZYDIS_DECODER_MODE_CET, ZYAN_FALSE);
    ZydisDecoderEnableMode(&cc->decoder32, ZYDIS_DECODER_MODE_CET, ZYAN_FALSE);
    ZydisDecoderEnableMode(&cc->decoder16, ZYDIS_DECODER_MODE_MPX, ZYAN_FALSE);
    ZydisDecoderEnableMode(&cc->decoder32, ZYDIS_DECODER_MODE_MPX, ZYAN_FALSE);
    ZydisFormatterInit(&cc->formatter, ZYDIS_FORMATTER_STYLE_INTEL);
    for (unsigned m = 0; m <= ZYDIS_MNEMONIC_MAX_VALUE; m++)
        cc->handlers[m] = exec_invalid;
    ops_alu_register(cc->handlers);
    ops_data_register(cc->handlers);
    ops_flow_register(cc->handlers);
    ops_string_register(cc->handlers);
    ops_system_register(cc->handlers);
    in->code = cc;
    if (in->cpu && in->cpu->mem) {
        in->cpu->mem->code_written = code_written;
        in->cpu->mem->code_written_opaque = in;
    }
    return true;
}

void code_cache_destroy(struct interp *in)
{
    if (!in->code)
        return;
    code_cache_flush(in);
    if (in->cpu && in->cpu->mem && in->cpu->mem->code_written == code_written)
        in->cpu->mem->code_written = NULL;
    free(in->code);
    in->code = NULL;
}

/* --- Zydis to struct insn ------------------------------------------------ */

static uint8_t gpr_index(ZydisRegister r, bool *high)
{
    *high = false;
    if (r >= ZYDIS_REGISTER_AL && r <= ZYDIS_REGISTER_BL)
        return (uint8_t)(r - ZYDIS_REGISTER_AL);
    if (r >= ZYDIS_REGISTER_AH && r <= ZYDIS_REGISTER_BH) {
        *high = true;
        return (uint8_t)(r - ZYDIS_REGISTER_AH);
    }
    if (r >= ZYDIS_REGISTER_AX && r <= ZYDIS_REGISTER_DI)
        return (uint8_t)(r - ZYDIS_REGISTER_AX);
    if (r >= ZYDIS_REGISTER_EAX && r <= ZYDIS_REGISTER_EDI)
        return (uint8_t)(r - ZYDIS_REGISTER_EAX);
    return NO_REG;
}

static void convert_operand(struct insn *i, struct insn_operand *o, const ZydisDecodedOperand *z,
                            unsigned *immediates)
{
    o->size = (uint8_t)(z->size / 8);
    switch (z->type) {
    case ZYDIS_OPERAND_TYPE_REGISTER: {
        ZydisRegister r = z->reg.value;
        bool high;
        uint8_t g = gpr_index(r, &high);
        if (g != NO_REG) {
            o->kind = OPK_REG;
            o->reg = g;
            o->high = high;
        } else if (r >= ZYDIS_REGISTER_ES && r <= ZYDIS_REGISTER_GS) {
            o->kind = OPK_SREG;
            o->reg = (uint8_t)(r - ZYDIS_REGISTER_ES);
        } else if (r >= ZYDIS_REGISTER_CR0 && r <= ZYDIS_REGISTER_CR15) {
            o->kind = OPK_CR;
            o->reg = (uint8_t)(r - ZYDIS_REGISTER_CR0);
        } else if (r >= ZYDIS_REGISTER_DR0 && r <= ZYDIS_REGISTER_DR15) {
            o->kind = OPK_DR;
            o->reg = (uint8_t)(r - ZYDIS_REGISTER_DR0);
        } else {
            o->kind = OPK_OTHER;
        }
        break;
    }
    case ZYDIS_OPERAND_TYPE_MEMORY: {
        bool high;
        o->kind = OPK_MEM;
        i->mem_size = o->size;
        i->seg = z->mem.segment >= ZYDIS_REGISTER_ES && z->mem.segment <= ZYDIS_REGISTER_GS
                     ? (uint8_t)(z->mem.segment - ZYDIS_REGISTER_ES)
                     : S_DS;
        i->base = gpr_index(z->mem.base, &high);
        i->index = gpr_index(z->mem.index, &high);
        i->scale = z->mem.scale ? z->mem.scale : 1;
        i->disp = z->mem.disp.has_displacement ? (int32_t)z->mem.disp.value : 0;
        break;
    }
    case ZYDIS_OPERAND_TYPE_POINTER:
        o->kind = OPK_FAR;
        i->imm = z->ptr.offset;
        i->imm2 = z->ptr.segment;
        break;
    case ZYDIS_OPERAND_TYPE_IMMEDIATE:
        if (z->imm.is_relative) {
            o->kind = OPK_REL;
            i->imm = (uint32_t)z->imm.value.s;
        } else {
            o->kind = OPK_IMM;
            /* Signed immediates (imm8 of 83, 6B, 6A...) are kept
             * sign-extended; users mask them to their operand size. */
            uint32_t v = z->imm.is_signed ? (uint32_t)z->imm.value.s : (uint32_t)z->imm.value.u;
            o->reg = (uint8_t)*immediates;
            if ((*immediates)++ == 0)
                i->imm = v;
            else
                i->imm2 = v;
        }
        break;
    default:
        o->kind = OPK_NONE;
        break;
    }
}

static void convert(struct code_cache *cc, struct insn *i, const ZydisDecodedInstruction *z,
                    const ZydisDecodedOperand *ops, const uint8_t *bytes, bool code32)
{
    memset(i, 0, sizeof(*i));
    i->mnemonic = (uint16_t)z->mnemonic;
    i->exec = cc->handlers[z->mnemonic];
    i->length = z->length;
    i->opsize = (uint8_t)(z->operand_width / 8);
    i->addrsize = (uint8_t)(z->address_width / 8);
    i->code32 = code32;
    i->seg = S_DS;
    i->prefix_seg = S_DS;
    i->base = i->index = NO_REG;
    i->scale = 1;
    i->opcode = z->opcode;
    i->opcode_map = (uint8_t)z->opcode_map;
    i->modrm_reg = z->raw.modrm.reg;
    if (z->attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE))
        i->rep = REP_E;
    else if (z->attributes & ZYDIS_ATTRIB_HAS_REPNE)
        i->rep = REP_NE;
    i->lock = z->attributes & ZYDIS_ATTRIB_HAS_LOCK;
    /* Segment prefixes from the raw bytes: the last one counts, and Zydis
     * would read 3E before an indirect branch as CET's NOTRACK. */
    for (unsigned p = 0; p < z->raw.prefix_count; p++) {
        static const int8_t prefix_sreg[256] = {
            [0x26] = S_ES + 1, [0x2e] = S_CS + 1, [0x36] = S_SS + 1,
            [0x3e] = S_DS + 1, [0x64] = S_FS + 1, [0x65] = S_GS + 1};
        int8_t sr = prefix_sreg[z->raw.prefixes[p].value];
        if (sr) {
            i->seg_override = true;
            i->prefix_seg = (uint8_t)(sr - 1);
        }
    }
    unsigned immediates = 0;
    unsigned n = z->operand_count_visible < 3 ? z->operand_count_visible : 3;
    i->nops = (uint8_t)n;
    for (unsigned k = 0; k < n; k++)
        convert_operand(i, &i->op[k], &ops[k], &immediates);
    if (i->seg_override)
        i->seg = i->prefix_seg;
    if (z->opcode_map == ZYDIS_OPCODE_MAP_DEFAULT && z->opcode >= 0xd8 && z->opcode <= 0xdf)
        i->exec = exec_x87;
    memcpy(i->bytes, bytes, z->length);
}

/* Removes the LOCK prefixes (F0) from the prefixes at the start of an
 * instruction's bytes; returns how many there were. */
static unsigned drop_lock_prefixes(uint8_t *bytes, unsigned len)
{
    unsigned out = 0, n = 0;
    for (; n < len; n++) {
        uint8_t b = bytes[n];
        bool prefix = b == 0xf0 || b == 0xf2 || b == 0xf3 || b == 0x26 || b == 0x2e || b == 0x36 ||
                      b == 0x3e || b == 0x64 || b == 0x65 || b == 0x66 || b == 0x67;
        if (!prefix)
            break;
        if (b != 0xf0)
            bytes[out++] = b;
    }
    unsigned dropped = n - out;
    memmove(bytes + out, bytes + n, len - n);
    memset(bytes + len - dropped, 0, dropped);
    return dropped;
}

/* What the 80286 refuses that the P6 decodes (80286 Programmer's Reference
 * Manual, appendix B and the instruction set): instructions over 10 bytes
 * are #GP(0); the 386 prefixes 64-67, the segment registers FS and GS and
 * the 0F opcodes other than the protected-mode group (0F 00-03, 0F 06 CLTS)
 * are #UD. */
static void check_286_insn(struct interp *in, const ZydisDecodedInstruction *z,
                           const ZydisDecodedOperand *ops)
{
    /* C4 and C5 are always LES and LDS (#UD with a register operand). */
    if (z->encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY)
        raise_ud(in);
    if (z->length > 10)
        raise_gp(in, 0);
    for (unsigned p = 0; p < z->raw.prefix_count; p++) {
        uint8_t b = z->raw.prefixes[p].value;
        if (b >= 0x64 && b <= 0x67)
            raise_ud(in);
    }
    if (z->opcode_map != ZYDIS_OPCODE_MAP_DEFAULT &&
        (z->opcode_map != ZYDIS_OPCODE_MAP_0F || (z->opcode > 0x03 && z->opcode != 0x06)))
        raise_ud(in);
    for (unsigned k = 0; k < z->operand_count_visible; k++)
        if (ops[k].type == ZYDIS_OPERAND_TYPE_REGISTER &&
            (ops[k].reg.value == ZYDIS_REGISTER_FS || ops[k].reg.value == ZYDIS_REGISTER_GS))
            raise_ud(in);
}

/* Decodes at CS:EIP into out; returns true if the bytes all came from the
 * one page at phys (so the result may be cached). */
static bool decode_at(struct interp *in, uint32_t linear, uint32_t phys, bool code32,
                      struct insn *out)
{
    struct code_cache *cc = in->code;
    uint8_t bytes[16];
    unsigned first = GUEST_PAGE_SIZE - (phys & 0xfff);
    if (first > 15)
        first = 15;
    memory_read_buf(in->cpu->mem, phys, bytes, first);
    ZydisDecodedInstruction z;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    const ZydisDecoder *dec = code32 ? &cc->decoder32 : &cc->decoder16;
    unsigned avail = first;
    ZyanStatus st = ZydisDecoderDecodeFull(dec, bytes, avail, &z, ops);
    bool one_page = true;
    if (st == ZYDIS_STATUS_NO_MORE_DATA && first < 15) {
        /* The instruction continues on the next page, which may fault. */
        uint32_t next_phys = linear_fetch_phys(in, (linear | 0xfff) + 1);
        memory_read_buf(in->cpu->mem, next_phys, bytes + first, 15 - first);
        avail = 15;
        st = ZydisDecoderDecodeFull(dec, bytes, avail, &z, ops);
        one_page = false;
    }
    unsigned dropped_locks = 0;
    if (st == ZYDIS_STATUS_ILLEGAL_LOCK && model_286(in)) {
        /* The 286 ignores LOCK before an instruction that cannot be locked
         * where the 386 and later raise #UD: decode without it. */
        dropped_locks = drop_lock_prefixes(bytes, avail);
        st = ZydisDecoderDecodeFull(dec, bytes, avail - dropped_locks, &z, ops);
    }
    if (!ZYAN_SUCCESS(st)) {
        /* Longer than 15 bytes is #GP(0); anything else Zydis rejects is an
         * invalid opcode. */
        if (st == ZYDIS_STATUS_INSTRUCTION_TOO_LONG)
            raise_gp(in, 0);
        raise_ud(in);
    }
    z.length = (ZyanU8)(z.length + dropped_locks);
    if (unlikely(model_286(in)))
        check_286_insn(in, &z, ops);
    convert(cc, out, &z, ops, bytes, code32);
    return one_page && (phys & 0xfff) + z.length <= GUEST_PAGE_SIZE;
}

static struct code_page *code_page_get(struct interp *in, uint32_t page_phys, uint8_t *host)
{
    struct code_cache *cc = in->code;
    struct code_page *p = code_page_find(cc, page_phys);
    if (p) {
        if (p->host != host) {
            code_page_clear(p);
            p->host = host;
        }
        return p;
    }
    if (cc->pages >= CODE_MAX_PAGES)
        code_cache_flush(in);
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->phys = page_phys;
    p->host = host;
    p->next = cc->buckets[bucket_of(page_phys)];
    cc->buckets[bucket_of(page_phys)] = p;
    cc->pages++;
    cc->recent = p;
    return p;
}

const struct insn *fetch_insn(struct interp *in, struct insn *scratch)
{
    struct x86_state *s = &in->state;
    const struct x86_segment *cs = &s->sregs[S_CS];
    bool code32 = (cs->attrib & X86_DESC_DB) && (s->cr0 & X86_CR0_PE) && !(s->eflags & X86_FLAG_VM);
    if (unlikely(s->eip > cs->limit))
        raise_gp(in, 0);
    uint32_t linear = cs->base + s->eip;
    uint32_t phys = linear_fetch_phys(in, linear);
    struct memory_page *mp = memory_page(in->cpu->mem, phys);
    const struct insn *i = NULL;
    if (likely(mp && mp->host)) {
        struct code_page *p = code_page_get(in, phys & ~0xfffu, mp->host);
        if (p) {
            uint16_t slot = p->slot[phys & 0xfff];
            if (likely(slot && p->insns[slot - 1].code32 == code32)) {
                i = &p->insns[slot - 1];
            } else if (decode_at(in, linear, phys, code32, scratch)) {
                if (!slot) {
                    if (p->count == p->capacity) {
                        unsigned cap = p->capacity ? p->capacity * 2 : 64;
                        struct insn *grown = realloc(p->insns, cap * sizeof(*grown));
                        if (!grown)
                            goto uncached;
                        p->insns = grown;
                        p->capacity = cap;
                    }
                    slot = (uint16_t)(++p->count);
                    p->slot[phys & 0xfff] = slot;
                }
                p->insns[slot - 1] = *scratch;
                if (!(mp->flags & MEMORY_PAGE_CODE)) {
                    memory_set_code_page(in->cpu->mem, phys, true);
                    if (in->tlb_changed)
                        in->tlb_changed(in, 0, true);
                }
                i = &p->insns[slot - 1];
            } else {
                i = scratch;
            }
        }
    }
    if (!i) {
    uncached:
        decode_at(in, linear, phys, code32, scratch);
        i = scratch;
    }
    if (unlikely((uint64_t)s->eip + i->length - 1 > cs->limit))
        raise_gp(in, 0);
    return i;
}

/* --- Operands ------------------------------------------------------------- */

uint32_t insn_ea(struct interp *in, const struct insn *i)
{
    const uint32_t *r = in->state.regs;
    uint32_t a = (uint32_t)i->disp;
    if (i->base != NO_REG)
        a += r[i->base];
    if (i->index != NO_REG)
        a += r[i->index] * i->scale;
    return i->addrsize == 2 ? a & 0xffff : a;
}

uint32_t op_read(struct interp *in, const struct insn *i, int n)
{
    const struct insn_operand *o = &i->op[n];
    struct x86_state *s = &in->state;
    switch (o->kind) {
    case OPK_REG:
        return reg_get(s, o->reg, o->size, o->high);
    case OPK_MEM:
        return mem_read(in, i->seg, insn_ea(in, i), o->size);
    case OPK_IMM:
        return o->reg ? i->imm2 : i->imm;
    case OPK_SREG:
        return s->sregs[o->reg].selector;
    default:
        raise_ud(in);
    }
}

void op_write(struct interp *in, const struct insn *i, int n, uint32_t value)
{
    const struct insn_operand *o = &i->op[n];
    switch (o->kind) {
    case OPK_REG:
        reg_set(&in->state, o->reg, o->size, o->high, value);
        return;
    case OPK_MEM:
        mem_write(in, i->seg, insn_ea(in, i), o->size, value);
        return;
    default:
        raise_ud(in);
    }
}

/* --- Trace ---------------------------------------------------------------- */

void trace_insn(struct interp *in, const struct insn *i)
{
    struct code_cache *cc = in->code;
    const struct x86_state *s = &in->state;
    ZydisDecodedInstruction z;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    char text[96] = "?";
    if (ZYAN_SUCCESS(ZydisDecoderDecodeFull(i->code32 ? &cc->decoder32 : &cc->decoder16, i->bytes,
                                            i->length, &z, ops)))
        ZydisFormatterFormatInstruction(&cc->formatter, &z, ops, z.operand_count_visible, text,
                                        sizeof(text), s->eip, NULL);
    fprintf(stderr,
            "%04x:%08x %-36s EAX=%08x EBX=%08x ECX=%08x EDX=%08x ESI=%08x EDI=%08x EBP=%08x "
            "ESP=%08x FL=%08x\n",
            s->sregs[S_CS].selector, s->eip, text, s->regs[R_EAX], s->regs[R_EBX], s->regs[R_ECX],
            s->regs[R_EDX], s->regs[R_ESI], s->regs[R_EDI], s->regs[R_EBP], s->regs[R_ESP],
            s->eflags);
}
