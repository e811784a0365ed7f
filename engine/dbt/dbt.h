/* The dynamic binary translator (--accel dbt): guest x86 code translated
 * into host x86-64 code one block at a time, with the reference interpreter
 * executing whatever the translator does not handle itself.
 *
 * dbt.c is the backend (the dispatch loop and the helpers translated code
 * calls), codecache.c the code buffer and the table of translated blocks,
 * translate.c the translator. */
#ifndef VIVARIUM_DBT_H
#define VIVARIUM_DBT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "interp.h"

/* A translated block: guest code from one physical page, entered at eip
 * with the CPU in the mode its key records. */
struct dbt_block {
    /* The key. */
    uint32_t eip;
    uint32_t cs_base;
    uint32_t cs_limit;
    uint32_t phys;  /* of the first instruction */
    uint32_t flags; /* DBT_MODE_* */
    /* The page's host bytes when translated: a remapped page (shadow RAM,
     * a region moved) is never served stale code. */
    const uint8_t *page_host;
    uint16_t guest_bytes;
    uint16_t guest_insns;
    const uint8_t *code;
    struct dbt_block *hash_next;
    struct dbt_block *page_next;
};

/* Mode bits that change what a block's host code does. Everything else
 * (CPL, paging, segment bases and limits of data segments) is looked at by
 * the helpers when the code runs. */
enum {
    DBT_MODE_CODE32 = 1u << 0,  /* 32-bit code segment */
    DBT_MODE_STACK32 = 1u << 1, /* SS.B: ESP rather than SP */
    DBT_MODE_USER = 1u << 2,    /* CPL 3: user-mode page rights */
    /* ES, SS and DS have base 0 and a 4 GiB limit, readable and writable,
     * and the host has BMI2: their accesses take the flag-preserving
     * fast path through the fast TLB. */
    DBT_MODE_FLAT = 1u << 3
};

/* The fast TLB: what the interpreter's TLB says about a linear page,
 * reduced to what translated code can test without touching the host's
 * flags. A tag is the linear page address when the current CPL may read
 * (or write) the page through addend, or DBT_FTLB_EMPTY. Write tags are
 * never set for pages holding code, ROM or MMIO. Filled by the helpers
 * after slow accesses; flushed whenever the interpreter's TLB or the
 * memory map changes, the CPL changes or a page starts holding code. */
#define DBT_FTLB_BITS  10
#define DBT_FTLB_SIZE  (1u << DBT_FTLB_BITS)
#define DBT_FTLB_EMPTY (1ull << 63)

/* The jump cache: the block an indirect jump or return to a guest EIP
 * goes on in, for translated code to jump to without the dispatch loop.
 * key = eip | mode << 32; valid for one CS base and limit (jc_cs_*);
 * emptied whenever a block may have gone or a linear address may mean
 * another page (TLB or map changes, invalidations, flushes). */
#define DBT_JC_SIZE 1024u /* indexed in generated code by SHLX/SHRX 22 */

struct dbt_jc_entry {
    uint64_t key;
    const uint8_t *code;
};

struct dbt_ftlb_entry {
    uint64_t read_tag;
    uint64_t write_tag;
    uint64_t addend; /* host address of the page minus its linear address */
    uint8_t *dirty;  /* the physical page's byte of the memory's dirty map */
};

struct dbt_page;

/* Bounds of the code cache; when either fills, everything is flushed. */
#define DBT_CODE_BUFFER_SIZE (32u * 1024 * 1024)
#define DBT_MAX_BLOCKS       (128u * 1024)
#define DBT_HASH_BITS        15

struct dbt_stats {
    uint64_t blocks_translated;
    uint64_t blocks_executed;
    uint64_t insns_interpreted; /* by the fallback and interpreted steps */
    uint64_t flushes;
    uint64_t invalidations; /* pages dropped for self-modifying code */
    uint64_t chains;        /* block exits patched to jump straight on */
    uint64_t slow_accesses; /* memory accesses through the helpers */
};

struct dbt {
    /* The interpreter whose state and helpers the translated code uses; it
     * executes the instructions not translated. First, so translated code
     * reaches the guest registers at small offsets from RBX. */
    struct interp in;

    /* The code buffer: a trampoline at its start, then blocks. */
    uint8_t *buffer;
    size_t buffer_size;
    uint8_t *buffer_used;
    const uint8_t *enter;    /* void enter(struct interp *, const void *code) */
    const uint8_t *epilogue; /* translated code jumps here to return */

    struct dbt_block *blocks; /* DBT_MAX_BLOCKS */
    unsigned nr_blocks;
    struct dbt_block *hash[1u << DBT_HASH_BITS];
    GHashTable *pages; /* guest physical page -> struct dbt_page */

    /* The previous owner of the memory map's code_written hook (the
     * interpreter's decode cache); ours chains to it. */
    void (*next_code_written)(void *opaque, uint64_t addr, unsigned len);
    void *next_code_written_opaque;

    /* Set by the code_written hook when the page of the running block was
     * written: translated code leaves the block after the store. */
    volatile uint8_t smc_hit;
    uint32_t running_page; /* physical page of the block being run */
    /* set_state() was called (e.g. by an I/O handler flipping A20 while a
     * block ran): leave the block and revalidate the caches. */
    bool state_changed;

    /* Blocks left before translated code must return to the dispatch
     * loop (to look at the clock and stop requests); every block entry
     * counts it down. */
    int32_t budget;
    /* Set by a block exit that may be chained: the offset in the buffer
     * of the exit's jump, which the dispatch loop points at the next block
     * when that one is in the same page. */
    uint32_t chain_site;
    uint64_t flush_count; /* a chain site is only patched within one epoch */

    /* Per segment register, for reads [0] and writes [1]: one past the
     * last offset the inline fast path may access, or 0 when every access
     * must take the helper (expand-down, unusable or not present). Kept
     * current by dbt_segments_changed(). */
    uint64_t seg_end[2][X86_NR_SREGS];

    struct dbt_ftlb_entry ftlb[DBT_FTLB_SIZE];
    struct dbt_jc_entry jc[DBT_JC_SIZE];
    uint32_t jc_cs_base, jc_cs_limit;
    bool ftlb_user; /* the CPL the fast TLB's rights are for is 3 */
    bool have_bmi2; /* the host runs SHRX/SHLX: DBT_MODE_FLAT may be used */
    /* The previous listener of the memory map's changes (chained). */
    void (*next_map_changed)(void *opaque);
    void *next_map_changed_opaque;

    struct dbt_stats stats;
};

static inline struct dbt *dbt_of_interp(struct interp *in)
{
    return (struct dbt *)((char *)in - offsetof(struct dbt, in));
}

/* codecache.c */
bool dbt_cache_init(struct dbt *d);
void dbt_cache_destroy(struct dbt *d);
void dbt_cache_flush(struct dbt *d);
struct dbt_block *dbt_cache_lookup(struct dbt *d, uint32_t eip, uint32_t cs_base, uint32_t cs_limit,
                                   uint32_t phys, uint32_t flags);
/* Reserves a block and returns it, or NULL when the table is full. */
struct dbt_block *dbt_cache_new_block(struct dbt *d);
/* Makes a filled-in block findable and records the guest bytes it covers
 * for self-modifying code detection. */
void dbt_cache_insert(struct dbt *d, struct dbt_block *b);
/* Drops every block translated from the page. */
void dbt_cache_invalidate_page(struct dbt *d, uint32_t page);
/* Points the chainable exit at site (an offset in the buffer) at a block. */
void dbt_cache_chain(struct dbt *d, uint32_t site, const struct dbt_block *to);
size_t dbt_cache_bytes_used(const struct dbt *d);

/* translate.c: translates the block at CS:EIP, whose first byte is at
 * physical address phys (host bytes page_host). Returns NULL when the
 * first instruction cannot be translated (e.g. it crosses the page end);
 * the caller then interprets it. */
struct dbt_block *dbt_translate(struct dbt *d, uint32_t eip, uint32_t phys,
                                const uint8_t *page_host, uint32_t flags);

/* dbt.c: the helpers translated code calls. info packs a segment register
 * (bits 0-2), an access size (bits 4-6) and DBT_INFO_SYNC, which makes
 * the helper record eip and the state as the faulting instruction's start
 * (the first access of each instruction). */
#define DBT_INFO_SYNC 0x100u
uint32_t dbt_helper_load(struct interp *in, uint32_t offset, uint32_t info, uint32_t eip);
uint32_t dbt_helper_store(struct interp *in, uint32_t offset, uint32_t info, uint32_t eip,
                          uint32_t value);
uint32_t dbt_helper_push(struct interp *in, uint32_t value, uint32_t info, uint32_t eip);
uint32_t dbt_helper_pop(struct interp *in, uint32_t info, uint32_t eip);
uint32_t dbt_helper_interp(struct interp *in, uint32_t eip, uint32_t next);
/* A near RET: pops the target (checked against CS) and release bytes. */
void dbt_helper_ret(struct interp *in, uint32_t release, uint32_t size, uint32_t eip);
/* Recomputes seg_end after the segment registers or the mode changed. */
void dbt_segments_changed(struct dbt *d);
/* Empties the jump cache. */
void dbt_jc_flush(struct dbt *d);
/* Empties the fast TLB (write_only: just its write tags). */
void dbt_ftlb_flush(struct dbt *d, bool write_only);

#endif
