/* The binary-translator backend (--accel dbt): the dispatch loop that finds
 * or translates the block at CS:EIP and runs it, and the helpers translated
 * code calls for memory, the stack and interpreted instructions.
 *
 * Interrupts are taken between blocks (a block is short and always ends at
 * a branch, so "jmp $" comes back here every iteration). Anything unusual
 * at a block boundary (an interrupt to deliver, the STI/MOV SS shadow,
 * single-stepping, HLT, --trace) is left to the interpreter's step, which
 * shares this backend's state.
 *
 * Faults raised anywhere below run() (in a helper called from translated
 * code, or while translating) unwind to run() with __builtin_longjmp, which
 * restores the state recorded at the faulting instruction's start and
 * delivers the exception. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbt.h"
#include "interp_priv.h"
#include "../memory.h"
#include "../vclock.h"

/* How many blocks run between looks at the clock and stop requests:
 * counted by translated code across chained blocks, and by the loop. */
#define DBT_CLOCK_CHECK_BLOCKS 256

static struct dbt *dbt_of(struct cpu *cpu)
{
    return cpu->backend_data;
}

/* Records the state at the start of the instruction at eip as the point a
 * fault restores. */
static void sync_state(struct interp *in, uint32_t eip)
{
    struct x86_state *s = &in->state;
    struct interp_snapshot *snap = &in->snapshot;
    s->eip = eip;
    memcpy(snap->regs, s->regs, sizeof(snap->regs));
    snap->eip = eip;
    snap->eflags = s->eflags;
    memcpy(snap->sregs, s->sregs, sizeof(snap->sregs));
}

void dbt_ftlb_flush(struct dbt *d, bool write_only)
{
    for (unsigned i = 0; i < DBT_FTLB_SIZE; i++) {
        d->ftlb[i].write_tag = DBT_FTLB_EMPTY;
        if (!write_only)
            d->ftlb[i].read_tag = DBT_FTLB_EMPTY;
    }
}

void dbt_jc_flush(struct dbt *d)
{
    /* No mode has every bit set, so the empty key matches no lookup. */
    memset(d->jc, 0xff, sizeof(d->jc));
}

static void tlb_changed(struct interp *in, uint32_t linear, bool all)
{
    struct dbt *d = dbt_of_interp(in);
    if (all) {
        dbt_ftlb_flush(d, false);
        dbt_jc_flush(d);
        return;
    }
    struct dbt_ftlb_entry *f = &d->ftlb[(linear >> 12) & (DBT_FTLB_SIZE - 1)];
    f->read_tag = f->write_tag = DBT_FTLB_EMPTY;
    for (unsigned i = 0; i < DBT_JC_SIZE; i++) {
        if (((d->jc_cs_base + (uint32_t)d->jc[i].key) ^ linear) < GUEST_PAGE_SIZE)
            d->jc[i].key = UINT64_MAX;
    }
}

static void map_changed(void *opaque)
{
    struct dbt *d = opaque;
    dbt_ftlb_flush(d, false);
    dbt_jc_flush(d);
    /* A block running now must not go on with host pointers of the old
     * map. */
    d->state_changed = true;
    if (d->next_map_changed)
        d->next_map_changed(d->next_map_changed_opaque);
}

/* After a slow access to linear succeeded, copies what the interpreter's
 * TLB now says about its page into the fast TLB. */
static void ftlb_fill(struct dbt *d, uint32_t linear, unsigned size)
{
    struct interp *in = &d->in;
    uint32_t page = linear & ~0xfffu;
    if ((linear & 0xfff) + size > GUEST_PAGE_SIZE)
        return;
    const struct interp_tlb_entry *e = &in->tlb[(linear >> 12) & (INTERP_TLB_SIZE - 1)];
    if (e->linear != page || !e->page || !e->page->host)
        return;
    bool user = cpl_of(&in->state) == 3;
    if (user != d->ftlb_user)
        return;
    struct dbt_ftlb_entry *f = &d->ftlb[(linear >> 12) & (DBT_FTLB_SIZE - 1)];
    if (f->read_tag != page && f->write_tag != page)
        f->read_tag = f->write_tag = DBT_FTLB_EMPTY;
    f->addend = (uint64_t)(uintptr_t)e->page->host - page;
    f->dirty = &in->cpu->mem->dirty[e->phys >> GUEST_PAGE_SHIFT];
    if (e->perms & (user ? TLB_READ_USER : TLB_READ_SUP))
        f->read_tag = page;
    if ((e->perms & (user ? TLB_WRITE_USER : TLB_WRITE_SUP)) && (e->perms & TLB_RAM_WRITE) &&
        !(e->page->flags & MEMORY_PAGE_CODE))
        f->write_tag = page;
}

uint32_t dbt_helper_load(struct interp *in, uint32_t offset, uint32_t info, uint32_t eip)
{
    if (info & DBT_INFO_SYNC)
        sync_state(in, eip);
    struct dbt *d = dbt_of_interp(in);
    d->stats.slow_accesses++;
    unsigned seg = info & 7, size = (info >> 4) & 7;
    uint32_t v = mem_read(in, seg, offset, size);
    ftlb_fill(d, in->state.sregs[seg].base + offset, size);
    return v;
}

uint32_t dbt_helper_store(struct interp *in, uint32_t offset, uint32_t info, uint32_t eip,
                          uint32_t value)
{
    if (info & DBT_INFO_SYNC)
        sync_state(in, eip);
    struct dbt *d = dbt_of_interp(in);
    d->stats.slow_accesses++;
    unsigned seg = info & 7, size = (info >> 4) & 7;
    mem_write(in, seg, offset, size, value);
    ftlb_fill(d, in->state.sregs[seg].base + offset, size);
    return d->smc_hit || d->state_changed;
}

uint32_t dbt_helper_push(struct interp *in, uint32_t value, uint32_t info, uint32_t eip)
{
    if (info & DBT_INFO_SYNC)
        sync_state(in, eip);
    push(in, (info >> 4) & 7, value);
    return dbt_of_interp(in)->smc_hit;
}

uint32_t dbt_helper_pop(struct interp *in, uint32_t info, uint32_t eip)
{
    if (info & DBT_INFO_SYNC)
        sync_state(in, eip);
    return pop(in, (info >> 4) & 7);
}

void dbt_helper_ret(struct interp *in, uint32_t release, uint32_t size, uint32_t eip)
{
    struct x86_state *s = &in->state;
    sync_state(in, eip);
    uint32_t target = stack_peek(in, 0, size);
    if (size == 2)
        target &= 0xffff;
    if (target > s->sregs[S_CS].limit)
        raise_gp(in, 0);
    pop(in, size);
    if (stack_size(s) == 4)
        s->regs[R_ESP] += release;
    else
        s->regs[R_ESP] = (s->regs[R_ESP] & 0xffff0000u) | ((s->regs[R_ESP] + release) & 0xffff);
    s->eip = target;
}

/* Runs interp_step() from inside run(): the step arms its own fault
 * handler, so ours is put back afterwards. */
static bool step_interp(struct dbt *d)
{
    struct interp *in = &d->in;
    void *saved[5];
    memcpy(saved, in->fault_jmp, sizeof(saved));
    bool running = interp_step(in);
    memcpy(in->fault_jmp, saved, sizeof(saved));
    d->stats.insns_interpreted++;
    dbt_segments_changed(d);
    return running;
}

static bool interrupt_deliverable(const struct interp *in)
{
    const struct x86_state *s = &in->state;
    return (s->nmi_pending && !s->nmi_blocked) || (in->irq_line && (s->eflags & X86_FLAG_IF));
}

static uint32_t mode_flags(const struct dbt *d)
{
    const struct x86_state *s = &d->in.state;
    uint32_t flags = 0;
    bool flat = d->have_bmi2;
    static const int flat_sregs[] = {S_ES, S_SS, S_DS};
    for (unsigned k = 0; k < 3 && flat; k++) {
        int r = flat_sregs[k];
        flat = s->sregs[r].base == 0 && d->seg_end[0][r] == (1ull << 32) &&
               d->seg_end[1][r] == (1ull << 32);
    }
    if (flat)
        flags |= DBT_MODE_FLAT;
    if ((s->sregs[S_CS].attrib & X86_DESC_DB) && in_pmode(s) && !(s->eflags & X86_FLAG_VM))
        flags |= DBT_MODE_CODE32;
    if (stack_size(s) == 4)
        flags |= DBT_MODE_STACK32;
    if (cpl_of(s) == 3)
        flags |= DBT_MODE_USER;
    return flags;
}

/* The checks of seg_linear() (seg.c) that depend on the segment alone,
 * done once per change rather than per access. */
void dbt_segments_changed(struct dbt *d)
{
    const struct x86_state *s = &d->in.state;
    bool checked = in_pmode(s) && !(s->eflags & X86_FLAG_VM);
    for (int r = 0; r < X86_NR_SREGS; r++) {
        const struct x86_segment *seg = &s->sregs[r];
        uint64_t end = (uint64_t)seg->limit + 1;
        uint64_t read_end = end, write_end = end;
        if (checked) {
            unsigned type = seg->attrib & X86_DESC_TYPE_MASK;
            bool code = type & 0x8;
            if (!(seg->attrib & X86_DESC_P) || (!code && (type & 0x4))) {
                read_end = write_end = 0; /* not present, or expand-down */
            } else if (code) {
                write_end = 0;
                if (!(type & 0x2))
                    read_end = 0;
            } else if (!(type & 0x2)) {
                write_end = 0;
            }
        }
        d->seg_end[0][r] = read_end;
        d->seg_end[1][r] = write_end;
    }
}

uint32_t dbt_helper_interp(struct interp *in, uint32_t eip, uint32_t next)
{
    struct dbt *d = dbt_of_interp(in);
    struct x86_state *s = &in->state;
    s->eip = eip;
    uint32_t cr0 = s->cr0, cr3 = s->cr3, cr4 = s->cr4;
    struct x86_segment cs = s->sregs[S_CS];
    uint32_t flags = mode_flags(d);
    d->state_changed = false;
    bool running = step_interp(d);
    /* The block goes on only if the instruction did nothing a block
     * boundary must see: no jump or exception, no change of mode, paging
     * or code, no interrupt window opening. */
    return running && s->eip == next && !s->irq_inhibited && !(s->eflags & X86_FLAG_TF) &&
           !debug_armed(in) && !alignment_check_on(s) && s->cr0 == cr0 && s->cr3 == cr3 &&
           s->cr4 == cr4 && memcmp(&cs, &s->sregs[S_CS], sizeof(cs)) == 0 &&
           mode_flags(d) == flags && !d->state_changed && !d->smc_hit && !interrupt_deliverable(in);
}

/* Finds or makes the block at CS:EIP; NULL if the interpreter must run
 * the next instruction (code outside RAM/ROM, an untranslatable first
 * instruction). May fault (the fetch's page walk). */
static struct dbt_block *find_block(struct dbt *d)
{
    struct interp *in = &d->in;
    struct x86_state *s = &in->state;
    const struct x86_segment *cs = &s->sregs[S_CS];
    if (s->eip > cs->limit)
        return NULL;
    uint32_t linear = cs->base + s->eip;
    bool user = cpl_of(s) == 3;
    const struct interp_tlb_entry *e = &in->tlb[(linear >> 12) & (INTERP_TLB_SIZE - 1)];
    uint32_t phys;
    if (likely(e->linear == (linear & ~0xfffu) &&
               (e->perms & (user ? TLB_EXEC_USER : TLB_EXEC_SUP)))) {
        phys = e->phys | (linear & 0xfff);
    } else {
        sync_state(in, s->eip);
        phys = linear_fetch_phys(in, linear);
    }
    struct memory_page *mp = memory_page(in->cpu->mem, phys);
    if (!mp || !mp->host)
        return NULL;
    uint32_t flags = mode_flags(d);
    struct dbt_block *b = dbt_cache_lookup(d, s->eip, cs->base, cs->limit, phys, flags);
    if (b && unlikely(b->page_host != mp->host || !(mp->flags & MEMORY_PAGE_CODE))) {
        /* The page was remapped, or lost its code bit (so writes to it may
         * have gone unnoticed): translate it afresh. */
        dbt_cache_invalidate_page(d, phys & ~0xfffu);
        b = NULL;
    }
    if (!b)
        b = dbt_translate(d, s->eip, phys, mp->host, flags);
    if (b)
        d->running_page = phys & ~0xfffu;
    return b;
}

static enum cpu_exit __attribute__((noinline)) run_blocks(struct dbt *d, int64_t deadline_ns)
{
    struct interp *in = &d->in;
    struct x86_state *s = &in->state;
    struct cpu *cpu = in->cpu;
    typedef void (*enter_fn)(struct interp *, const void *);
    enter_fn enter = (enter_fn)(uintptr_t)d->enter;
    for (;;) {
        if (s->shutdown)
            return CPU_EXIT_SHUTDOWN;
        d->smc_hit = 0;
        d->state_changed = false;
        if (unlikely((cpl_of(s) == 3) != d->ftlb_user)) {
            /* The fast TLB holds one CPL's rights. */
            d->ftlb_user = cpl_of(s) == 3;
            dbt_ftlb_flush(d, false);
        }
        uint32_t site = d->chain_site;
        uint64_t epoch = d->flush_count;
        d->chain_site = 0;
        struct dbt_block *b = NULL;
        /* The translator knows the P6 model only, and neither
         * breakpoints nor alignment checks: another model, enabled
         * breakpoints, RF and #AC checking run in the interpreter. */
        bool step = s->halted || s->irq_inhibited || (s->eflags & X86_FLAG_TF) || cpu->trace ||
                    cpu->model != CPU_MODEL_P6 || debug_armed(in) || (s->eflags & X86_FLAG_RF) ||
                    alignment_check_on(s) || interrupt_deliverable(in);
        uint32_t from_page = d->running_page;
        const struct x86_segment *cs = &s->sregs[S_CS];
        if (!step)
            b = find_block(d);
        if (b) {
            /* The previous block left by a chainable exit straight to
             * this one, in the same page and mode: link them. */
            if (site && d->flush_count == epoch && (b->phys & ~0xfffu) == from_page)
                dbt_cache_chain(d, site, b);
            /* Indirect jumps and returns to this EIP may now go straight
             * to the block. */
            if (unlikely(cs->base != d->jc_cs_base || cs->limit != d->jc_cs_limit)) {
                dbt_jc_flush(d);
                d->jc_cs_base = cs->base;
                d->jc_cs_limit = cs->limit;
            }
            struct dbt_jc_entry *j = &d->jc[b->eip & (DBT_JC_SIZE - 1)];
            j->key = b->eip | (uint64_t)b->flags << 32;
            j->code = b->code;
            d->stats.blocks_executed++;
            in->instructions += b->guest_insns;
            enter(in, b->code);
        } else if (!step_interp(d)) {
            if (s->shutdown)
                return CPU_EXIT_SHUTDOWN;
            if (!interrupt_deliverable(in))
                return CPU_EXIT_HALT;
        }
        if (cpu->stop_requested)
            return CPU_EXIT_STOP;
        if (--d->budget <= 0) {
            d->budget = DBT_CLOCK_CHECK_BLOCKS;
            if (deadline_ns != INT64_MAX && cpu->clock && vclock_now(cpu->clock) >= deadline_ns)
                return CPU_EXIT_STOP;
        }
    }
}

static enum cpu_exit dbt_run(struct cpu *cpu, int64_t deadline_ns)
{
    struct dbt *d = dbt_of(cpu);
    struct interp *in = &d->in;
    /* Like the interpreter's slice: a run does some work before it first
     * looks at the clock (not again after each fault, so a guest faulting
     * in a loop still reaches the clock check). */
    d->budget = DBT_CLOCK_CHECK_BLOCKS;
    if (__builtin_setjmp(in->fault_jmp)) {
        handle_raised_exception(in);
        dbt_segments_changed(d);
        if (in->state.shutdown)
            return CPU_EXIT_SHUTDOWN;
    }
    return run_blocks(d, deadline_ns);
}

static bool dbt_init(struct cpu *cpu, GError **error)
{
    struct dbt *d = g_new0(struct dbt, 1);
    interp_setup(&d->in, cpu);
    if (!d->in.code || !dbt_cache_init(d)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOMEM,
                    "cannot allocate the translator's code cache");
        interp_teardown(&d->in);
        g_free(d);
        return false;
    }
    x86_state_reset(&d->in.state);
    dbt_segments_changed(d);
    dbt_ftlb_flush(d, false);
    dbt_jc_flush(d);
    d->in.tlb_changed = tlb_changed;
    __builtin_cpu_init();
    d->have_bmi2 = __builtin_cpu_supports("bmi2") && !g_getenv("VIVARIUM_DBT_NO_FLAT");
    struct memory *mem = cpu->mem;
    d->next_map_changed = mem->map_changed;
    d->next_map_changed_opaque = mem->map_changed_opaque;
    mem->map_changed = map_changed;
    mem->map_changed_opaque = d;
    cpu->backend_data = d;
    return true;
}

static void dbt_print_stats(const struct dbt *d, FILE *out)
{
    fprintf(out,
            "dbt: %" G_GUINT64_FORMAT " blocks translated, %" G_GUINT64_FORMAT
            " run, %" G_GUINT64_FORMAT " instructions interpreted, %" G_GUINT64_FORMAT
            " flushes, %" G_GUINT64_FORMAT " pages invalidated, %" G_GUINT64_FORMAT
            " exits chained, %" G_GUINT64_FORMAT
            " slow memory accesses; code cache %zu of %zu KiB, %u of %u blocks\n",
            d->stats.blocks_translated, d->stats.blocks_executed, d->stats.insns_interpreted,
            d->stats.flushes, d->stats.invalidations, d->stats.chains, d->stats.slow_accesses,
            dbt_cache_bytes_used(d) / 1024, d->buffer_size / 1024, d->nr_blocks, DBT_MAX_BLOCKS);
}

static void dbt_destroy(struct cpu *cpu)
{
    struct dbt *d = dbt_of(cpu);
    if (!d)
        return;
    if (g_getenv("VIVARIUM_DBT_STATS"))
        dbt_print_stats(d, stderr);
    const char *dump = g_getenv("VIVARIUM_DBT_DUMP");
    if (dump) {
        /* The code buffer, for profiling: the file name carries the
         * buffer's host address, so sampled addresses map into it. */
        char *name =
            g_strdup_printf("%s.%" G_GUINT64_FORMAT ".bin", dump, (uint64_t)(uintptr_t)d->buffer);
        g_file_set_contents(name, (const char *)d->buffer, (gssize)dbt_cache_bytes_used(d), NULL);
        g_free(name);
    }
    struct memory *mem = cpu->mem;
    if (mem->map_changed == map_changed) {
        mem->map_changed = d->next_map_changed;
        mem->map_changed_opaque = d->next_map_changed_opaque;
    }
    dbt_cache_destroy(d);
    interp_teardown(&d->in);
    g_free(d);
    cpu->backend_data = NULL;
}

static void dbt_get_state(struct cpu *cpu, struct x86_state *state)
{
    struct dbt *d = dbt_of(cpu);
    *state = d->in.state;
    state->msr.tsc = read_tsc(&d->in);
}

static void dbt_set_state(struct cpu *cpu, const struct x86_state *state)
{
    struct dbt *d = dbt_of(cpu);
    struct interp *in = &d->in;
    in->state = *state;
    in->tsc_offset = 0;
    in->tsc_offset = (int64_t)(state->msr.tsc - read_tsc(in));
    interp_state_changed(in);
    dbt_segments_changed(d);
    /* Blocks are keyed by physical address and mode, so they stay valid;
     * a block running now (this came from an I/O handler) must end. */
    d->state_changed = true;
}

static void dbt_set_irq(struct cpu *cpu, bool level)
{
    dbt_of(cpu)->in.irq_line = level;
}

static void dbt_nmi(struct cpu *cpu)
{
    dbt_of(cpu)->in.state.nmi_pending = true;
}

static void dbt_kick(struct cpu *cpu)
{
    cpu->stop_requested = 1;
}

const struct cpu_backend cpu_backend_dbt = {
    .name = "dbt",
    .init = dbt_init,
    .destroy = dbt_destroy,
    .run = dbt_run,
    .get_state = dbt_get_state,
    .set_state = dbt_set_state,
    .set_irq = dbt_set_irq,
    .nmi = dbt_nmi,
    .kick = dbt_kick,
};
