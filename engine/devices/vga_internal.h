/* State shared by the VGA's three files: vga.c (registers, video memory
 * access, timing), vga_vbe.c (Bochs VBE) and vga_render.c (scan-out). */
#ifndef VIVARIUM_DEVICES_VGA_INTERNAL_H
#define VIVARIUM_DEVICES_VGA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../memory.h"
#include "../vclock.h"
#include "vga.h"

/* The classic adapter addresses 64 KiB per plane. Video memory is stored
 * as groups of four bytes, one per plane, so that the latches are one 32-bit
 * load: plane p of plane address a is byte 4 * vga_vram_group(a) + p.
 *
 * The groups are not in plane address order. In chain-4 mode (mode 13h) CPU
 * byte n goes to plane n & 3 at plane address n & ~3, so only every fourth
 * address of each plane is used. Within each 64 KiB of plane addresses, the
 * group of address a is therefore (a & 3) << 14 | a >> 2: the addresses a
 * chain-4 write can reach (a & 3 == 0) come first and in order, and CPU byte
 * n of a chain-4 window is video memory byte n. Like the address rotation of
 * SVGA chips, this lets the window be mapped straight onto video memory
 * (vga.c), and the doubleword-mode scan-out of mode 13h reads it linearly.
 * Above 64 KiB of plane addresses (VBE planar modes) the same is done per
 * 64 KiB; VBE packed-pixel modes use the bytes linearly, as their LFB. */
#define VGA_PLANE_SIZE  0x10000u
#define VGA_VRAM_PAGES  (VGA_VRAM_SIZE / GUEST_PAGE_SIZE)
#define VGA_WINDOW_BASE 0xa0000u
#define VGA_WINDOW_SIZE 0x20000u

/* Register counts. */
#define VGA_SR_COUNT  8
#define VGA_GR_COUNT  16
#define VGA_CR_COUNT  0x19
#define VGA_AR_COUNT  0x15
#define VGA_DAC_BYTES (256 * 3)

/* Bochs VBE "DISPI" registers (QEMU/Bochs vbe_display_api.txt). */
enum vbe_index {
    VBE_INDEX_ID = 0,
    VBE_INDEX_XRES = 1,
    VBE_INDEX_YRES = 2,
    VBE_INDEX_BPP = 3,
    VBE_INDEX_ENABLE = 4,
    VBE_INDEX_BANK = 5,
    VBE_INDEX_VIRT_WIDTH = 6,
    VBE_INDEX_VIRT_HEIGHT = 7,
    VBE_INDEX_X_OFFSET = 8,
    VBE_INDEX_Y_OFFSET = 9,
    VBE_INDEX_VIDEO_MEMORY_64K = 10,
    VBE_INDEX_COUNT = 11,
};

enum {
    VBE_ENABLED = 0x01,
    VBE_GETCAPS = 0x02,
    VBE_8BIT_DAC = 0x20,
    VBE_LFB_ENABLED = 0x40,
    VBE_NOCLEARMEM = 0x80,
};

#define VBE_ID0      0xb0c0
#define VBE_ID5      0xb0c5
#define VBE_MAX_XRES 2560
#define VBE_MAX_YRES 1600
#define VBE_MAX_BPP  32

struct vga {
    struct memory *mem;
    struct ioport_bus *io;
    struct vclock *clock;
    struct display *display;
    struct vtimer refresh_timer;

    uint8_t *vram; /* VGA_VRAM_SIZE bytes */
    struct memory_region window;
    /* Parts of the window mapped straight onto video memory as RAM while the
     * registers make its accesses plain bytes (vga.c, "direct mapping"). */
    struct memory_region direct[2];
    struct memory_region lfb;
    struct memory_region rom;
    uint8_t *rom_image;  /* pristine copy */
    uint8_t *rom_shadow; /* what the guest sees at VGA_ROM_ADDRESS */
    size_t rom_size;

    /* Guest-visible registers (saved in snapshots). */
    uint8_t misc;       /* miscellaneous output, 0x3c2 / 0x3cc */
    uint8_t feature;    /* feature control, 0x3ca / 0x3xa */
    uint8_t vga_enable; /* video subsystem enable, 0x3c3 */
    uint8_t sr_index;
    uint8_t sr[VGA_SR_COUNT];
    uint8_t gr_index;
    uint8_t gr[VGA_GR_COUNT];
    uint8_t cr_index;
    uint8_t cr[VGA_CR_COUNT];
    uint8_t ar_index; /* bits 0-4 index, bit 5 palette address source */
    bool ar_flipflop; /* true: the next 0x3c0 write is data */
    uint8_t ar[VGA_AR_COUNT];
    uint8_t pel_mask;
    uint8_t dac_read_index;
    uint8_t dac_write_index;
    uint8_t dac_component; /* 0-2: which of R, G, B comes next */
    uint8_t dac_state;     /* 0x3c7 read: 0 after a write index, 3 after a read index */
    uint8_t dac_staging[3];
    uint8_t dac[VGA_DAC_BYTES];
    uint32_t latch; /* plane p in bits 8p..8p+7 */
    uint16_t vbe_index;
    uint16_t vbe[VBE_INDEX_COUNT];
    uint32_t lfb_address;

    /* Render bookkeeping (not saved: a restore forces a full redraw). */
    uint8_t page_dirty[VGA_VRAM_PAGES]; /* video memory written since the last frame */
    bool font_dirty;                    /* plane 2 written since the last frame */
    bool force_full;
    struct vga_render_state *render;
};

/* Byte offset in video memory of plane 0 at plane address a. */
static inline uint32_t vga_vram_offset(uint32_t a)
{
    return ((a & ~0xffffu) | (a & 3) << 14 | (a & 0xffff) >> 2) * 4;
}

/* The four planes at plane address a, plane p in bits 8p..8p+7. */
static inline uint32_t vga_vram_load32(const struct vga *vga, uint32_t plane_addr)
{
    uint32_t v;
    memcpy(&v, vga->vram + vga_vram_offset(plane_addr), 4);
    return v;
}

static inline void vga_mark_dirty(struct vga *vga, uint32_t vram_offset)
{
    vga->page_dirty[vram_offset / GUEST_PAGE_SIZE] = 1;
}

static inline bool vga_vbe_enabled(const struct vga *vga)
{
    return vga->vbe[VBE_INDEX_ENABLE] & VBE_ENABLED;
}

/* Colour (0x3dx) or monochrome (0x3bx) CRTC and status port addresses. */
static inline bool vga_colour_io(const struct vga *vga)
{
    return vga->misc & 0x01;
}

/* vga_vbe.c */
void vga_vbe_init(struct vga *vga);
void vga_vbe_reset(struct vga *vga);
/* Plane addresses (4bpp) or bytes (other depths) from the start of video
 * memory to the first displayed pixel, and from one line to the next. */
uint32_t vga_vbe_start(const struct vga *vga);
uint32_t vga_vbe_line_length(const struct vga *vga);
unsigned vga_vbe_bpp(const struct vga *vga);

/* vga.c */
/* Call after a register that decides how the window reaches video memory
 * changed: maps it straight onto video memory or back to the handlers. */
void vga_update_direct_mapping(struct vga *vga);
/* Takes the guest's writes through the direct mapping since the last call
 * into page_dirty (and font_dirty). */
void vga_collect_direct_dirty(struct vga *vga);
/* Virtual-clock time of the frame in progress, for blinking. */
uint64_t vga_frame_number(const struct vga *vga);

/* vga_render.c */
struct vga_render_state *vga_render_state_new(void);
void vga_render_state_free(struct vga_render_state *state);

#endif
