/* Linear-to-physical translation: the two-level 32-bit page walk with 4 KiB
 * and 4 MiB pages, the three-level PAE walk with NX, and a direct-mapped TLB
 * in front of both (Intel SDM vol. 3, chapter 4 "Paging"). The A20 mask
 * applies to every physical address, page-table reads included. */
#include <string.h>

#include "interp_priv.h"
#include "../memory.h"

#define PTE_P   0x001u
#define PTE_RW  0x002u
#define PTE_US  0x004u
#define PTE_A   0x020u
#define PTE_D   0x040u
#define PTE_PS  0x080u
#define PTE_G   0x100u
#define PTE_NX  (1ull << 63)
#define PF_P    0x01u
#define PF_W    0x02u
#define PF_U    0x04u
#define PF_RSVD 0x08u
#define PF_I    0x10u

/* Physical address bits this CPU reports (CPUID 80000008h): 36. Bits above
 * them in PAE entries are reserved. */
#define PAE_ADDR_MASK 0x0000000ffffff000ull

uint32_t phys_read(struct interp *in, uint32_t addr, unsigned size)
{
    return memory_read(in->cpu->mem, addr & in->state.a20_mask, size);
}

void phys_write(struct interp *in, uint32_t addr, unsigned size, uint32_t value)
{
    memory_write(in->cpu->mem, addr & in->state.a20_mask, size, value);
}

static uint64_t phys_read64(struct interp *in, uint64_t addr)
{
    if (addr >> 32)
        return ~0ull;
    uint32_t lo = phys_read(in, (uint32_t)addr, 4);
    uint32_t hi = phys_read(in, (uint32_t)addr + 4, 4);
    return ((uint64_t)hi << 32) | lo;
}

void tlb_flush(struct interp *in, bool include_global)
{
    for (unsigned i = 0; i < INTERP_TLB_SIZE; i++) {
        if (include_global || !in->tlb[i].global)
            in->tlb[i].linear = 1;
    }
    if (in->tlb_changed)
        in->tlb_changed(in, 0, true);
}

void tlb_flush_page(struct interp *in, uint32_t linear)
{
    struct interp_tlb_entry *e = &in->tlb[(linear >> 12) & (INTERP_TLB_SIZE - 1)];
    if (e->linear == (linear & ~0xfffu))
        e->linear = 1;
    if (in->tlb_changed)
        in->tlb_changed(in, linear, false);
}

static _Noreturn void page_fault(struct interp *in, uint32_t linear, uint32_t error)
{
    in->state.cr2 = linear;
    raise_exception(in, X86_EXC_PF, (int32_t)error);
}

static uint32_t access_error_bits(const struct x86_state *s, enum access_kind kind, bool user)
{
    uint32_t error = 0;
    if (kind == ACCESS_WRITE)
        error |= PF_W;
    if (user)
        error |= PF_U;
    if (kind == ACCESS_EXEC && (s->cr4 & X86_CR4_PAE) && (s->msr.efer & X86_EFER_NXE))
        error |= PF_I;
    return error;
}

/* Permission bits for a translation whose combined entries allow writes
 * (rw), user access (us) and execution (!nx); dirty says whether writes may
 * skip the walk that sets the D bit. */
static uint16_t perms_for(const struct x86_state *s, bool rw, bool us, bool nx, bool dirty)
{
    uint16_t p = TLB_READ_SUP;
    if (us)
        p |= TLB_READ_USER;
    if (!nx) {
        p |= TLB_EXEC_SUP;
        if (us)
            p |= TLB_EXEC_USER;
    }
    if (dirty) {
        if (rw || !(s->cr0 & X86_CR0_WP))
            p |= TLB_WRITE_SUP;
        if (rw && us)
            p |= TLB_WRITE_USER;
    }
    return p;
}

static bool allowed(const struct x86_state *s, enum access_kind kind, bool user, bool rw, bool us,
                    bool nx)
{
    if (user && !us)
        return false;
    if (kind == ACCESS_WRITE && !rw && (user || (s->cr0 & X86_CR0_WP)))
        return false;
    if (kind == ACCESS_EXEC && nx)
        return false;
    return true;
}

/* The 32-bit two-level walk. Returns the physical page address. */
static uint32_t walk_legacy(struct interp *in, uint32_t linear, enum access_kind kind, bool user,
                            uint16_t *perms, bool *global)
{
    struct x86_state *s = &in->state;
    uint32_t error = access_error_bits(s, kind, user);
    uint32_t pde_addr = (s->cr3 & ~0xfffu) | ((linear >> 20) & 0xffc);
    uint32_t pde = phys_read(in, pde_addr, 4);
    if (!(pde & PTE_P))
        page_fault(in, linear, error);
    if ((pde & PTE_PS) && (s->cr4 & X86_CR4_PSE)) {
        bool rw = pde & PTE_RW, us = pde & PTE_US;
        if (!allowed(s, kind, user, rw, us, false))
            page_fault(in, linear, error | PF_P);
        uint32_t updated = pde | PTE_A | (kind == ACCESS_WRITE ? PTE_D : 0);
        if (updated != pde)
            phys_write(in, pde_addr, 4, updated);
        *perms = perms_for(s, rw, us, false, updated & PTE_D);
        *global = (pde & PTE_G) && (s->cr4 & X86_CR4_PGE);
        return (pde & 0xffc00000u) | (linear & 0x003ff000u);
    }
    uint32_t pte_addr = (pde & ~0xfffu) | ((linear >> 10) & 0xffc);
    uint32_t pte = phys_read(in, pte_addr, 4);
    if (!(pte & PTE_P))
        page_fault(in, linear, error);
    bool rw = (pde & PTE_RW) && (pte & PTE_RW);
    bool us = (pde & PTE_US) && (pte & PTE_US);
    if (!allowed(s, kind, user, rw, us, false))
        page_fault(in, linear, error | PF_P);
    if (!(pde & PTE_A))
        phys_write(in, pde_addr, 4, pde | PTE_A);
    uint32_t updated = pte | PTE_A | (kind == ACCESS_WRITE ? PTE_D : 0);
    if (updated != pte)
        phys_write(in, pte_addr, 4, updated);
    *perms = perms_for(s, rw, us, false, updated & PTE_D);
    *global = (pte & PTE_G) && (s->cr4 & X86_CR4_PGE);
    return pte & ~0xfffu;
}

/* The PAE walk: PDPTE, PDE (2 MiB pages), PTE, with the NX bit. */
static uint32_t walk_pae(struct interp *in, uint32_t linear, enum access_kind kind, bool user,
                         uint16_t *perms, bool *global)
{
    struct x86_state *s = &in->state;
    uint32_t error = access_error_bits(s, kind, user);
    bool nxe = s->msr.efer & X86_EFER_NXE;
    uint64_t reserved_nx = nxe ? 0 : PTE_NX;

    uint64_t pdpte = phys_read64(in, (s->cr3 & ~0x1fu) + ((linear >> 30) & 3) * 8);
    if (!(pdpte & PTE_P))
        page_fault(in, linear, error);
    if (pdpte & (0x1e6ull | (~PAE_ADDR_MASK & ~0xfffull)))
        page_fault(in, linear, error | PF_P | PF_RSVD);

    uint64_t pde_addr = (pdpte & PAE_ADDR_MASK) + ((linear >> 21) & 0x1ff) * 8;
    uint64_t pde = phys_read64(in, pde_addr);
    if (!(pde & PTE_P))
        page_fault(in, linear, error);
    if ((pde & reserved_nx) || (pde & ~PAE_ADDR_MASK & ~0xfffull & ~PTE_NX))
        page_fault(in, linear, error | PF_P | PF_RSVD);
    if (pde & PTE_PS) {
        if (pde & 0x1fe000ull)
            page_fault(in, linear, error | PF_P | PF_RSVD);
        bool rw = pde & PTE_RW, us = pde & PTE_US, nx = nxe && (pde & PTE_NX);
        if (!allowed(s, kind, user, rw, us, nx))
            page_fault(in, linear, error | PF_P);
        uint32_t low = (uint32_t)pde;
        uint32_t updated = low | PTE_A | (kind == ACCESS_WRITE ? PTE_D : 0);
        if (updated != low)
            phys_write(in, (uint32_t)pde_addr, 4, updated);
        *perms = perms_for(s, rw, us, nx, updated & PTE_D);
        *global = (pde & PTE_G) && (s->cr4 & X86_CR4_PGE);
        return (uint32_t)((pde & 0xfffe00000ull) | (linear & 0x001ff000u));
    }
    uint64_t pte_addr = (pde & PAE_ADDR_MASK) + ((linear >> 12) & 0x1ff) * 8;
    uint64_t pte = phys_read64(in, pte_addr);
    if (!(pte & PTE_P))
        page_fault(in, linear, error);
    if ((pte & reserved_nx) || (pte & ~PAE_ADDR_MASK & ~0xfffull & ~PTE_NX))
        page_fault(in, linear, error | PF_P | PF_RSVD);
    bool rw = (pde & PTE_RW) && (pte & PTE_RW);
    bool us = (pde & PTE_US) && (pte & PTE_US);
    bool nx = nxe && ((pde | pte) & PTE_NX);
    if (!allowed(s, kind, user, rw, us, nx))
        page_fault(in, linear, error | PF_P);
    if (!(pde & PTE_A))
        phys_write(in, (uint32_t)pde_addr, 4, (uint32_t)pde | PTE_A);
    uint32_t low = (uint32_t)pte;
    uint32_t updated = low | PTE_A | (kind == ACCESS_WRITE ? PTE_D : 0);
    if (updated != low)
        phys_write(in, (uint32_t)pte_addr, 4, updated);
    *perms = perms_for(s, rw, us, nx, updated & PTE_D);
    *global = (pte & PTE_G) && (s->cr4 & X86_CR4_PGE);
    return (uint32_t)(pte & PAE_ADDR_MASK);
}

struct interp_tlb_entry *tlb_fill(struct interp *in, uint32_t linear, enum access_kind kind,
                                  bool user)
{
    struct x86_state *s = &in->state;
    uint32_t page = linear & ~0xfffu;
    uint32_t phys;
    uint16_t perms;
    bool global = false;
    if ((s->cr0 & X86_CR0_PG) && (s->cr0 & X86_CR0_PE)) {
        if (s->cr4 & X86_CR4_PAE)
            phys = walk_pae(in, linear, kind, user, &perms, &global);
        else
            phys = walk_legacy(in, linear, kind, user, &perms, &global);
    } else {
        phys = page;
        perms = TLB_READ_SUP | TLB_READ_USER | TLB_WRITE_SUP | TLB_WRITE_USER | TLB_EXEC_SUP |
                TLB_EXEC_USER;
    }
    phys &= s->a20_mask;
    struct interp_tlb_entry *e = &in->tlb[(linear >> 12) & (INTERP_TLB_SIZE - 1)];
    e->linear = page;
    e->phys = phys;
    e->page = memory_page(in->cpu->mem, phys);
    if (e->page && e->page->host && !(e->page->flags & MEMORY_PAGE_READONLY))
        perms |= TLB_RAM_WRITE;
    e->perms = perms;
    e->global = global;
    return e;
}

static inline bool user_access(const struct x86_state *s, bool system)
{
    return !system && cpl_of(s) == 3;
}

static inline struct interp_tlb_entry *tlb_lookup(struct interp *in, uint32_t linear,
                                                  enum access_kind kind, bool user)
{
    static const uint16_t need[3][2] = {
        [ACCESS_READ] = {TLB_READ_SUP, TLB_READ_USER},
        [ACCESS_WRITE] = {TLB_WRITE_SUP, TLB_WRITE_USER},
        [ACCESS_EXEC] = {TLB_EXEC_SUP, TLB_EXEC_USER},
    };
    struct interp_tlb_entry *e = &in->tlb[(linear >> 12) & (INTERP_TLB_SIZE - 1)];
    if (likely(e->linear == (linear & ~0xfffu) && (e->perms & need[kind][user])))
        return e;
    return tlb_fill(in, linear, kind, user);
}

static uint32_t read_translated(struct interp *in, const struct interp_tlb_entry *e,
                                uint32_t linear, unsigned size)
{
    uint32_t off = linear & 0xfff;
    if (likely(e->page && e->page->host)) {
        uint32_t v = 0;
        memcpy(&v, e->page->host + off, size);
        return v;
    }
    return memory_read(in->cpu->mem, e->phys | off, size);
}

static void write_translated(struct interp *in, const struct interp_tlb_entry *e, uint32_t linear,
                             unsigned size, uint32_t value)
{
    uint32_t off = linear & 0xfff;
    struct memory *mem = in->cpu->mem;
    if (likely(e->perms & TLB_RAM_WRITE)) {
        /* The fast path does what memory_write does for RAM: mark the page
         * dirty and tell the code cache about writes to code pages. */
        memcpy(e->page->host + off, &value, size);
        mem->dirty[e->phys >> GUEST_PAGE_SHIFT] = MEMORY_DIRTY_ALL;
        if (unlikely(e->page->flags & MEMORY_PAGE_CODE))
            memory_note_write(mem, e->phys | off, size);
        return;
    }
    memory_write(mem, e->phys | off, size, value);
}

/* The checks of a data access beside paging: alignment (#AC at CPL 3
 * with CR0.AM and EFLAGS.AC, Intel SDM vol. 3, 6.15 "Alignment Check
 * Exception") and data breakpoints. */
static inline void check_data_access(struct interp *in, uint32_t linear, unsigned size, bool write,
                                     bool user)
{
    const struct x86_state *s = &in->state;
    if (unlikely(s->eflags & X86_FLAG_AC) && user && (s->cr0 & X86_CR0_AM) && (linear & (size - 1)))
        raise_exception(in, X86_EXC_AC, 0);
    if (unlikely(in->debug_data))
        debug_check_data(in, linear, size, write);
}

uint32_t linear_read(struct interp *in, uint32_t linear, unsigned size, bool system)
{
    bool user = user_access(&in->state, system);
    check_data_access(in, linear, size, false, user);
    if (likely((linear & 0xfff) + size <= GUEST_PAGE_SIZE))
        return read_translated(in, tlb_lookup(in, linear, ACCESS_READ, user), linear, size);
    /* Crossing a page: translate both pages before reading either. */
    struct interp_tlb_entry first = *tlb_lookup(in, linear, ACCESS_READ, user);
    uint32_t second_linear = (linear | 0xfff) + 1;
    struct interp_tlb_entry second = *tlb_lookup(in, second_linear, ACCESS_READ, user);
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        uint32_t a = linear + i;
        const struct interp_tlb_entry *e = (a & ~0xfffu) == first.linear ? &first : &second;
        v |= read_translated(in, e, a, 1) << (8 * i);
    }
    return v;
}

void linear_write(struct interp *in, uint32_t linear, unsigned size, uint32_t value, bool system)
{
    bool user = user_access(&in->state, system);
    check_data_access(in, linear, size, true, user);
    if (likely((linear & 0xfff) + size <= GUEST_PAGE_SIZE)) {
        write_translated(in, tlb_lookup(in, linear, ACCESS_WRITE, user), linear, size, value);
        return;
    }
    struct interp_tlb_entry first = *tlb_lookup(in, linear, ACCESS_WRITE, user);
    uint32_t second_linear = (linear | 0xfff) + 1;
    struct interp_tlb_entry second = *tlb_lookup(in, second_linear, ACCESS_WRITE, user);
    for (unsigned i = 0; i < size; i++) {
        uint32_t a = linear + i;
        const struct interp_tlb_entry *e = (a & ~0xfffu) == first.linear ? &first : &second;
        write_translated(in, e, a, 1, (value >> (8 * i)) & 0xff);
    }
}

void linear_probe_write(struct interp *in, uint32_t linear, unsigned size, bool system)
{
    bool user = user_access(&in->state, system);
    tlb_lookup(in, linear, ACCESS_WRITE, user);
    if ((linear & 0xfff) + size > GUEST_PAGE_SIZE)
        tlb_lookup(in, (linear | 0xfff) + 1, ACCESS_WRITE, user);
}

uint32_t linear_fetch_phys(struct interp *in, uint32_t linear)
{
    bool user = cpl_of(&in->state) == 3;
    struct interp_tlb_entry *e = tlb_lookup(in, linear, ACCESS_EXEC, user);
    return e->phys | (linear & 0xfff);
}
