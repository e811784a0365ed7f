/* The guest-physical address space. */
#include "memory.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

bool memory_init(struct memory *mem, uint64_t ram_size)
{
    memset(mem, 0, sizeof(*mem));
    mem->pages = calloc(GUEST_PHYS_PAGES, sizeof(*mem->pages));
    mem->dirty = calloc(GUEST_PHYS_PAGES, 1);
    /* Anonymous mappings are zero-filled and only cost host memory for pages
     * the guest touches. */
    mem->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!mem->pages || !mem->dirty || mem->ram == MAP_FAILED) {
        if (mem->ram == MAP_FAILED)
            mem->ram = NULL;
        memory_destroy(mem);
        return false;
    }
    mem->ram_size = ram_size;
    return true;
}

void memory_destroy(struct memory *mem)
{
    if (mem->ram)
        munmap(mem->ram, mem->ram_size);
    free(mem->pages);
    free(mem->dirty);
    free(mem->regions);
    memset(mem, 0, sizeof(*mem));
}

void memory_add_region(struct memory *mem, struct memory_region *region)
{
    mem->regions = realloc(mem->regions, (mem->nr_regions + 1) * sizeof(*mem->regions));
    mem->regions[mem->nr_regions++] = region;
    memory_update(mem);
}

void memory_update(struct memory *mem)
{
    /* Rebuild the page table from scratch: regions change rarely (PAM
     * programming, PCI BAR moves), and a full pass over the table costs a
     * few milliseconds at most. Code flags are kept per page. */
    for (uint32_t i = 0; i < GUEST_PHYS_PAGES; i++) {
        mem->pages[i].host = NULL;
        mem->pages[i].region = NULL;
        mem->pages[i].flags &= MEMORY_PAGE_CODE;
    }
    for (int prio = -1; prio <= 2; prio++) {
        for (unsigned r = 0; r < mem->nr_regions; r++) {
            struct memory_region *region = mem->regions[r];
            int p = region->priority < -1 ? -1 : region->priority > 2 ? 2 : region->priority;
            if (p != prio || !region->enabled || region->base >> 32)
                continue;
            uint64_t end = region->base + region->size;
            if (end > (1ull << 32))
                end = 1ull << 32;
            for (uint64_t a = region->base; a < end; a += GUEST_PAGE_SIZE) {
                struct memory_page *page = &mem->pages[a >> GUEST_PAGE_SHIFT];
                page->region = region;
                page->host = region->host ? region->host + (a - region->base) : NULL;
                page->flags &= MEMORY_PAGE_CODE;
                if (region->host && region->readonly)
                    page->flags |= MEMORY_PAGE_READONLY;
            }
        }
    }
    if (mem->map_changed)
        mem->map_changed(mem->map_changed_opaque);
}

void memory_update_range(struct memory *mem, uint64_t base, uint64_t size)
{
    uint64_t end = base + size < (1ull << 32) ? base + size : 1ull << 32;
    for (uint64_t a = base & GUEST_PAGE_MASK; a < end; a += GUEST_PAGE_SIZE) {
        /* What memory_update's passes would leave here: the highest
         * priority wins, and among equals the region added last. */
        struct memory_region *top = NULL;
        int top_prio = -2;
        for (unsigned r = 0; r < mem->nr_regions; r++) {
            struct memory_region *region = mem->regions[r];
            int p = region->priority < -1 ? -1 : region->priority > 2 ? 2 : region->priority;
            if (!region->enabled || a < region->base || a >= region->base + region->size ||
                p < top_prio)
                continue;
            top = region;
            top_prio = p;
        }
        struct memory_page *page = &mem->pages[a >> GUEST_PAGE_SHIFT];
        page->region = top;
        page->host = top && top->host ? top->host + (a - top->base) : NULL;
        page->flags &= MEMORY_PAGE_CODE;
        if (top && top->host && top->readonly)
            page->flags |= MEMORY_PAGE_READONLY;
    }
    if (mem->map_changed)
        mem->map_changed(mem->map_changed_opaque);
}

static void note_page_write(struct memory *mem, struct memory_page *page, uint64_t addr,
                            unsigned len)
{
    mem->dirty[addr >> GUEST_PAGE_SHIFT] = MEMORY_DIRTY_ALL;
    if ((page->flags & MEMORY_PAGE_CODE) && mem->code_written)
        mem->code_written(mem->code_written_opaque, addr, len);
}

/* One access that does not cross a page boundary. */
static uint32_t read_in_page(struct memory *mem, uint64_t addr, unsigned size)
{
    struct memory_page *page = memory_page(mem, addr);
    if (!page || !page->region)
        return size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
    if (page->host) {
        const uint8_t *p = page->host + (addr & (GUEST_PAGE_SIZE - 1));
        uint32_t v = 0;
        memcpy(&v, p, size);
        return v;
    }
    return page->region->ops->read(page->region->opaque, addr - page->region->base, size);
}

static void write_in_page(struct memory *mem, uint64_t addr, unsigned size, uint32_t value)
{
    struct memory_page *page = memory_page(mem, addr);
    if (!page || !page->region)
        return;
    if (page->host) {
        if (page->flags & MEMORY_PAGE_READONLY)
            return;
        memcpy(page->host + (addr & (GUEST_PAGE_SIZE - 1)), &value, size);
        note_page_write(mem, page, addr, size);
        return;
    }
    page->region->ops->write(page->region->opaque, addr - page->region->base, size, value);
}

uint32_t memory_read(struct memory *mem, uint64_t addr, unsigned size)
{
    uint64_t last = addr + size - 1;
    if ((addr ^ last) >> GUEST_PAGE_SHIFT == 0) {
        struct memory_page *page = memory_page(mem, addr);
        if (page && page->host) {
            uint32_t v = 0;
            memcpy(&v, page->host + (addr & (GUEST_PAGE_SIZE - 1)), size);
            return v;
        }
        if (page && page->region && !page->host && last < page->region->base + page->region->size)
            return read_in_page(mem, addr, size);
    }
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= read_in_page(mem, addr + i, 1) << (8 * i);
    return v;
}

void memory_write(struct memory *mem, uint64_t addr, unsigned size, uint32_t value)
{
    uint64_t last = addr + size - 1;
    if ((addr ^ last) >> GUEST_PAGE_SHIFT == 0) {
        struct memory_page *page = memory_page(mem, addr);
        if (page &&
            (page->host || !page->region || last < page->region->base + page->region->size)) {
            write_in_page(mem, addr, size, value);
            return;
        }
    }
    for (unsigned i = 0; i < size; i++)
        write_in_page(mem, addr + i, 1, (value >> (8 * i)) & 0xff);
}

void memory_read_buf(struct memory *mem, uint64_t addr, void *buf, size_t len)
{
    uint8_t *out = buf;
    while (len > 0) {
        size_t chunk = GUEST_PAGE_SIZE - (addr & (GUEST_PAGE_SIZE - 1));
        if (chunk > len)
            chunk = len;
        uint8_t *host = memory_host_ptr(mem, addr);
        if (host) {
            memcpy(out, host, chunk);
        } else {
            for (size_t i = 0; i < chunk; i++)
                out[i] = read_in_page(mem, addr + i, 1);
        }
        addr += chunk;
        out += chunk;
        len -= chunk;
    }
}

static void write_buf(struct memory *mem, uint64_t addr, const void *buf, size_t len,
                      bool ignore_readonly)
{
    const uint8_t *in = buf;
    while (len > 0) {
        size_t chunk = GUEST_PAGE_SIZE - (addr & (GUEST_PAGE_SIZE - 1));
        if (chunk > len)
            chunk = len;
        struct memory_page *page = memory_page(mem, addr);
        if (page && page->host) {
            if (ignore_readonly || !(page->flags & MEMORY_PAGE_READONLY)) {
                memcpy(page->host + (addr & (GUEST_PAGE_SIZE - 1)), in, chunk);
                note_page_write(mem, page, addr, chunk);
            }
        } else {
            for (size_t i = 0; i < chunk; i++)
                write_in_page(mem, addr + i, 1, in[i]);
        }
        addr += chunk;
        in += chunk;
        len -= chunk;
    }
}

void memory_write_buf(struct memory *mem, uint64_t addr, const void *buf, size_t len)
{
    write_buf(mem, addr, buf, len, false);
}

void memory_load(struct memory *mem, uint64_t addr, const void *buf, size_t len)
{
    write_buf(mem, addr, buf, len, true);
}

void memory_note_write(struct memory *mem, uint64_t addr, uint64_t len)
{
    if (len == 0)
        return;
    uint64_t end = addr + len;
    for (uint64_t a = addr & GUEST_PAGE_MASK; a < end && !(a >> 32); a += GUEST_PAGE_SIZE) {
        uint64_t start = a > addr ? a : addr;
        uint64_t stop = a + GUEST_PAGE_SIZE < end ? a + GUEST_PAGE_SIZE : end;
        note_page_write(mem, &mem->pages[a >> GUEST_PAGE_SHIFT], start, (unsigned)(stop - start));
    }
}

void memory_sync_dirty(struct memory *mem, uint64_t addr, uint64_t len)
{
    if (mem->sync_dirty && len)
        mem->sync_dirty(mem->sync_dirty_opaque, addr, len);
}

bool memory_test_and_clear_dirty(struct memory *mem, uint64_t addr, uint64_t len,
                                 enum memory_dirty_client client)
{
    bool dirty = false;
    if (len == 0)
        return false;
    uint64_t end = addr + len;
    for (uint64_t a = addr & GUEST_PAGE_MASK; a < end && !(a >> 32); a += GUEST_PAGE_SIZE) {
        uint8_t *bits = &mem->dirty[a >> GUEST_PAGE_SHIFT];
        if (*bits & client) {
            dirty = true;
            *bits &= ~client;
        }
    }
    return dirty;
}

void memory_set_code_page(struct memory *mem, uint64_t addr, bool code)
{
    struct memory_page *page = memory_page(mem, addr);
    if (!page)
        return;
    if (code)
        page->flags |= MEMORY_PAGE_CODE;
    else
        page->flags &= ~MEMORY_PAGE_CODE;
}
