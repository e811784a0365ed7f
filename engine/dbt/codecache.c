/* The translator's code cache: one executable buffer of bounded size filled
 * from the start, the table of translated blocks, and the per-page records
 * that detect self-modifying code.
 *
 * Blocks are keyed by guest-physical address plus the mode bits that
 * change their meaning, so two linear aliases of one page share a block and
 * paging changes need no flush. When the buffer or the block table fills,
 * everything is dropped at once (no block outlives a flush, so nothing
 * points into freed code).
 *
 * Each page holding translated code keeps a bitmap of the guest bytes its
 * blocks cover and carries the memory map's MEMORY_PAGE_CODE bit. Every
 * write to such a page, by the CPU, DMA or a loader, reaches the
 * code_written hook; writes to data that merely shares a page with code
 * leave the blocks alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <glib.h>

#include "dbt.h"
#include "emit.h"
#include "../memory.h"

struct dbt_page {
    uint32_t phys;
    struct dbt_block *blocks;
    uint8_t covered[GUEST_PAGE_SIZE / 8]; /* one bit per guest byte */
};

static unsigned hash_of(uint32_t eip, uint32_t phys)
{
    uint32_t h = (phys ^ (eip << 7)) * 0x9e3779b1u;
    return h >> (32 - DBT_HASH_BITS);
}

/* The room of the trampoline and epilogue at the start of the buffer. */
#define DBT_TRAMPOLINE_SIZE 128

/* The trampoline every block is entered through: saves the callee-saved
 * registers translated code uses, loads RBX with the interpreter pointer,
 * EBP and R15D with the shift counts of the fast TLB lookup (12 and 22),
 * RFLAGS with the guest's arithmetic flags, and jumps to the block; blocks
 * leave through the epilogue. Six pushes and the RSP adjustment leave the
 * stack 16-byte aligned for the helper calls. */
static void emit_trampoline(struct dbt *d)
{
    struct emitter e = {.p = d->buffer, .end = d->buffer + DBT_TRAMPOLINE_SIZE};
    d->enter = e.p;
    emit8(&e, 0x53); /* push rbx */
    emit8(&e, 0x55); /* push rbp */
    emit8(&e, 0x41); /* push r12 */
    emit8(&e, 0x54);
    emit8(&e, 0x41); /* push r13 */
    emit8(&e, 0x55);
    emit8(&e, 0x41); /* push r14 */
    emit8(&e, 0x56);
    emit8(&e, 0x41); /* push r15 */
    emit8(&e, 0x57);
    emit8(&e, 0x48); /* sub rsp, 8 */
    emit8(&e, 0x83);
    emit8(&e, 0xec);
    emit8(&e, 8);
    emit8(&e, 0x48); /* mov rbx, rdi */
    emit8(&e, 0x89);
    emit8(&e, 0xfb);
    emit_mov_imm(&e, H_RBP, 12);
    emit_mov_imm(&e, H_R15, 22);
    /* Blocks are entered with the guest's arithmetic flags in RFLAGS (only
     * those: the host's DF, TF and AC stay clear). */
    emit_load(&e, H_R11, (int32_t)offsetof(struct interp, state.eflags), 4);
    emit8(&e, 0x41); /* and r11d, arithmetic flags */
    emit8(&e, 0x81);
    emit8(&e, 0xe3);
    emit32(&e, X86_FLAG_CF | X86_FLAG_PF | X86_FLAG_AF | X86_FLAG_ZF | X86_FLAG_SF | X86_FLAG_OF);
    emit8(&e, 0x41); /* push r11 */
    emit8(&e, 0x53);
    emit8(&e, 0x9d); /* popfq */
    emit8(&e, 0xff); /* jmp rsi */
    emit8(&e, 0xe6);
    d->epilogue = e.p;
    emit8(&e, 0x48); /* add rsp, 8 */
    emit8(&e, 0x83);
    emit8(&e, 0xc4);
    emit8(&e, 8);
    emit8(&e, 0x41); /* pop r15 */
    emit8(&e, 0x5f);
    emit8(&e, 0x41); /* pop r14 */
    emit8(&e, 0x5e);
    emit8(&e, 0x41); /* pop r13 */
    emit8(&e, 0x5d);
    emit8(&e, 0x41); /* pop r12 */
    emit8(&e, 0x5c);
    emit8(&e, 0x5d); /* pop rbp */
    emit8(&e, 0x5b); /* pop rbx */
    emit8(&e, 0xc3); /* ret */
    if (e.full)
        g_error("dbt: the trampoline outgrew its room");
    d->buffer_used = d->buffer + DBT_TRAMPOLINE_SIZE;
}

static void code_written(void *opaque, uint64_t addr, unsigned len)
{
    struct dbt *d = opaque;
    if (d->next_code_written)
        d->next_code_written(d->next_code_written_opaque, addr, len);
    uint64_t end = addr + (len ? len : 1);
    for (uint64_t page = addr & GUEST_PAGE_MASK; page < end; page += GUEST_PAGE_SIZE) {
        struct dbt_page *p = g_hash_table_lookup(d->pages, GUINT_TO_POINTER((uint32_t)page));
        if (!p)
            continue;
        uint64_t from = addr > page ? addr : page;
        uint64_t to = end < page + GUEST_PAGE_SIZE ? end : page + GUEST_PAGE_SIZE;
        bool hit = false;
        for (uint64_t a = from; a < to && !hit; a++) {
            unsigned off = (unsigned)(a - page);
            hit = p->covered[off / 8] & (1u << (off % 8));
        }
        if (hit) {
            if ((uint32_t)page == d->running_page)
                d->smc_hit = 1;
            dbt_cache_invalidate_page(d, (uint32_t)page);
        } else {
            /* The interpreter's hook clears the page's code bit; our
             * blocks there still need to hear of writes. */
            memory_set_code_page(d->in.cpu->mem, page, true);
        }
    }
}

bool dbt_cache_init(struct dbt *d)
{
    d->buffer_size = DBT_CODE_BUFFER_SIZE;
    void *buf = mmap(NULL, d->buffer_size, PROT_READ | PROT_WRITE | PROT_EXEC,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (buf == MAP_FAILED)
        return false;
    d->buffer = buf;
    d->blocks = calloc(DBT_MAX_BLOCKS, sizeof(*d->blocks));
    if (!d->blocks) {
        munmap(buf, d->buffer_size);
        return false;
    }
    d->pages = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    emit_trampoline(d);

    struct memory *mem = d->in.cpu->mem;
    d->next_code_written = mem->code_written;
    d->next_code_written_opaque = mem->code_written_opaque;
    mem->code_written = code_written;
    mem->code_written_opaque = d;
    return true;
}

void dbt_cache_destroy(struct dbt *d)
{
    if (!d->buffer)
        return;
    dbt_cache_flush(d);
    struct memory *mem = d->in.cpu->mem;
    if (mem->code_written == code_written) {
        mem->code_written = d->next_code_written;
        mem->code_written_opaque = d->next_code_written_opaque;
    }
    g_hash_table_destroy(d->pages);
    free(d->blocks);
    munmap(d->buffer, d->buffer_size);
    d->buffer = NULL;
}

void dbt_cache_flush(struct dbt *d)
{
    /* Pages keep their code bit: the interpreter's decode cache may still
     * need it, and a stale bit costs one call of the hook on the next
     * write, which then clears it. */
    g_hash_table_remove_all(d->pages);
    memset(d->hash, 0, sizeof(d->hash));
    d->nr_blocks = 0;
    d->buffer_used = d->buffer + DBT_TRAMPOLINE_SIZE;
    d->chain_site = 0;
    dbt_jc_flush(d);
    d->flush_count++;
    d->stats.flushes++;
}

struct dbt_block *dbt_cache_lookup(struct dbt *d, uint32_t eip, uint32_t cs_base, uint32_t cs_limit,
                                   uint32_t phys, uint32_t flags)
{
    for (struct dbt_block *b = d->hash[hash_of(eip, phys)]; b; b = b->hash_next) {
        if (b->eip == eip && b->phys == phys && b->cs_base == cs_base && b->cs_limit == cs_limit &&
            b->flags == flags)
            return b;
    }
    return NULL;
}

struct dbt_block *dbt_cache_new_block(struct dbt *d)
{
    if (d->nr_blocks >= DBT_MAX_BLOCKS)
        return NULL;
    struct dbt_block *b = &d->blocks[d->nr_blocks++];
    memset(b, 0, sizeof(*b));
    return b;
}

void dbt_cache_insert(struct dbt *d, struct dbt_block *b)
{
    unsigned h = hash_of(b->eip, b->phys);
    b->hash_next = d->hash[h];
    d->hash[h] = b;

    uint32_t page = b->phys & ~(GUEST_PAGE_SIZE - 1);
    struct dbt_page *p = g_hash_table_lookup(d->pages, GUINT_TO_POINTER(page));
    if (!p) {
        p = g_new0(struct dbt_page, 1);
        p->phys = page;
        g_hash_table_insert(d->pages, GUINT_TO_POINTER(page), p);
        /* Writes to the page must now reach code_written: no fast TLB
         * entry may write it directly any more. */
        const struct memory_page *mp = memory_page(d->in.cpu->mem, page);
        if (!mp || !(mp->flags & MEMORY_PAGE_CODE))
            dbt_ftlb_flush(d, true);
    }
    b->page_next = p->blocks;
    p->blocks = b;
    unsigned start = b->phys & (GUEST_PAGE_SIZE - 1);
    for (unsigned off = start; off < start + b->guest_bytes && off < GUEST_PAGE_SIZE; off++)
        p->covered[off / 8] |= (uint8_t)(1u << (off % 8));
    memory_set_code_page(d->in.cpu->mem, page, true);
}

void dbt_cache_invalidate_page(struct dbt *d, uint32_t page)
{
    struct dbt_page *p = g_hash_table_lookup(d->pages, GUINT_TO_POINTER(page));
    if (!p)
        return;
    for (struct dbt_block *b = p->blocks; b; b = b->page_next) {
        struct dbt_block **link = &d->hash[hash_of(b->eip, b->phys)];
        while (*link && *link != b)
            link = &(*link)->hash_next;
        if (*link)
            *link = b->hash_next;
    }
    /* The blocks' code stays in the buffer (a block being run may be
     * among them) until the next flush reclaims it. */
    g_hash_table_remove(d->pages, GUINT_TO_POINTER(page));
    dbt_jc_flush(d);
    d->stats.invalidations++;
}

void dbt_cache_chain(struct dbt *d, uint32_t site, const struct dbt_block *to)
{
    uint8_t *jump = d->buffer + site;
    int32_t rel = (int32_t)(to->code - (jump + 5));
    memcpy(jump + 1, &rel, 4);
    d->stats.chains++;
}

size_t dbt_cache_bytes_used(const struct dbt *d)
{
    return (size_t)(d->buffer_used - d->buffer);
}
