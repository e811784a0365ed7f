/* The guest-physical address space: RAM, ROM and MMIO regions, looked up
 * through a flat table of 4 KiB pages covering the 32-bit space, plus
 * per-page dirty bits for the display, snapshots and the code cache.
 */
#ifndef VIVARIUM_MEMORY_H
#define VIVARIUM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_PAGE_SHIFT 12
#define GUEST_PAGE_SIZE  (1u << GUEST_PAGE_SHIFT)
#define GUEST_PAGE_MASK  (~(uint64_t)(GUEST_PAGE_SIZE - 1))
#define GUEST_PHYS_PAGES (1u << (32 - GUEST_PAGE_SHIFT))

/* Handlers of a memory-mapped device. Offsets are relative to the region's
 * base; size is 1, 2 or 4 and accesses never cross the region's end. */
struct mmio_ops {
    uint32_t (*read)(void *opaque, uint64_t offset, unsigned size);
    void (*write)(void *opaque, uint64_t offset, unsigned size, uint32_t value);
};

struct memory_region {
    const char *name;
    uint64_t base;
    uint64_t size;
    /* Higher priority wins where regions overlap (e.g. the VGA window over
     * low RAM). */
    int priority;
    bool enabled;
    /* RAM or ROM: the host bytes (page-aligned, as KVM maps them by pages),
     * and whether guest writes are dropped. */
    uint8_t *host;
    bool readonly;
    /* MMIO: used when host is NULL. */
    const struct mmio_ops *ops;
    void *opaque;
    /* RAM whose writes a client must see even when a backend lets the guest
     * write it directly (the KVM backend logs its dirty pages): the
     * framebuffer. memory_sync_dirty() brings those writes into the dirty
     * bits. */
    bool log_dirty;
};

/* Flags of one guest page. */
enum {
    MEMORY_PAGE_READONLY = 1u << 0, /* ROM: writes are ignored */
    MEMORY_PAGE_CODE = 1u << 1,     /* holds decoded or translated code */
};

/* Clients of the dirty bits; each clears only its own. */
enum memory_dirty_client {
    MEMORY_DIRTY_DISPLAY = 1u << 0,
    MEMORY_DIRTY_SNAPSHOT = 1u << 1,
    MEMORY_DIRTY_ALL = 0xffu,
};

struct memory_page {
    uint8_t *host; /* NULL: MMIO or unassigned */
    struct memory_region *region;
    uint8_t flags;
};

struct memory {
    struct memory_page *pages; /* GUEST_PHYS_PAGES entries */
    uint8_t *dirty;            /* GUEST_PHYS_PAGES bytes, one bit per client */
    struct memory_region **regions;
    unsigned nr_regions;
    uint8_t *ram;
    uint64_t ram_size;
    /* Called for every write that touches a page marked MEMORY_PAGE_CODE, so
     * the CPU backend can drop what it decoded or translated there. */
    void (*code_written)(void *opaque, uint64_t addr, unsigned len);
    void *code_written_opaque;
    /* Called whenever the map changes (a region added, moved, enabled),
     * e.g. so the KVM backend can update its memory slots. */
    void (*map_changed)(void *opaque);
    void *map_changed_opaque;
    /* Set by a backend that writes guest memory without memory_write (KVM):
     * folds the writes it logged in [addr, addr+len) into the dirty bits. */
    void (*sync_dirty)(void *opaque, uint64_t addr, uint64_t len);
    void *sync_dirty_opaque;
};

bool memory_init(struct memory *mem, uint64_t ram_size);
void memory_destroy(struct memory *mem);

/* Adds a region; the memory map keeps the pointer. */
void memory_add_region(struct memory *mem, struct memory_region *region);
/* Re-reads every region's base, size and enabled flag; call after changing
 * them. */
void memory_update(struct memory *mem);
/* The same for the pages of [base, base+size) only, when nothing changed
 * elsewhere: for a device that remaps a small window often (the VGA's
 * 0xa0000 window between MMIO and video memory as RAM). */
void memory_update_range(struct memory *mem, uint64_t base, uint64_t size);

static inline struct memory_page *memory_page(struct memory *mem, uint64_t addr)
{
    if (addr >> 32)
        return NULL;
    return &mem->pages[addr >> GUEST_PAGE_SHIFT];
}

/* Host address of a RAM/ROM byte, or NULL if addr is MMIO or unassigned. */
static inline uint8_t *memory_host_ptr(struct memory *mem, uint64_t addr)
{
    struct memory_page *page = memory_page(mem, addr);
    if (!page || !page->host)
        return NULL;
    return page->host + (addr & (GUEST_PAGE_SIZE - 1));
}

/* Single accesses of 1, 2 or 4 bytes, little-endian, any alignment.
 * Unassigned addresses read as all ones and ignore writes, as on a PC. */
uint32_t memory_read(struct memory *mem, uint64_t addr, unsigned size);
void memory_write(struct memory *mem, uint64_t addr, unsigned size, uint32_t value);

/* Block copies for DMA and loaders. memory_load ignores ROM protection. */
void memory_read_buf(struct memory *mem, uint64_t addr, void *buf, size_t len);
void memory_write_buf(struct memory *mem, uint64_t addr, const void *buf, size_t len);
void memory_load(struct memory *mem, uint64_t addr, const void *buf, size_t len);

/* Records that [addr, addr+len) was written by something other than
 * memory_write (a backend's own fast path): sets dirty bits and notifies the
 * code cache. */
void memory_note_write(struct memory *mem, uint64_t addr, uint64_t len);

/* Brings writes the CPU backend made directly into log_dirty regions within
 * [addr, addr+len) into the dirty bits; call before testing them. */
void memory_sync_dirty(struct memory *mem, uint64_t addr, uint64_t len);

/* Tests and clears one client's dirty bit for every page in the range;
 * returns whether any was set. */
bool memory_test_and_clear_dirty(struct memory *mem, uint64_t addr, uint64_t len,
                                 enum memory_dirty_client client);

void memory_set_code_page(struct memory *mem, uint64_t addr, bool code);

#endif
