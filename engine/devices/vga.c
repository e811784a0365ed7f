/* VGA registers, video memory access and display timing.
 *
 * Follows the IBM VGA register set as documented in the IBM Personal
 * System/2 Hardware Interface Technical Reference (VGA chapter) and the
 * FreeVGA register descriptions: sequencer, CRT controller, graphics
 * controller (read modes 0-1, write modes 0-3, set/reset, rotate, logical
 * operations, bit mask), attribute controller and the 6-bit DAC. Scan-out
 * lives in vga_render.c and the Bochs VBE extension in vga_vbe.c.
 */
#include "vga.h"

#include <stdlib.h>
#include <sys/mman.h>

#include "../display/framebuffer.h"
#include "../ioport.h"
#include "vga_internal.h"

#define MAX_ROM_SIZE (128 * 1024)

/* Register values of the 80x25 colour text mode (BIOS mode 3, 400 lines),
 * the state a VGA BIOS leaves after POST. Starting there lets a guest that
 * never runs a VGA BIOS still write text at 0xb8000 and see it (with the
 * glyphs it loads into plane 2). */
static const uint8_t mode3_sr[VGA_SR_COUNT] = {0x03, 0x00, 0x03, 0x00, 0x02};
static const uint8_t mode3_gr[VGA_GR_COUNT] = {0x00, 0x00, 0x00, 0x00, 0x00,
                                               0x10, 0x0e, 0x00, 0xff};
static const uint8_t mode3_cr[VGA_CR_COUNT] = {0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00,
                                               0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
                                               0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff};
static const uint8_t mode3_ar[VGA_AR_COUNT] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14,
                                               0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d,
                                               0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08, 0x00};

/* Writable bits of each register. */
static const uint8_t sr_mask[VGA_SR_COUNT] = {0x03, 0x3d, 0x0f, 0x3f, 0x0e};
static const uint8_t gr_mask[VGA_GR_COUNT] = {0x0f, 0x0f, 0x0f, 0x1f, 0x03, 0x7b, 0x0f, 0x0f, 0xff};

/* ---- Display timing ---- */

struct vga_timing {
    int64_t line_ns;
    unsigned total_lines;
    unsigned display_lines;
    unsigned retrace_start;
    unsigned retrace_lines;
    unsigned htotal, hdisplay; /* character clocks */
};

static void vga_get_timing(const struct vga *vga, struct vga_timing *t)
{
    if (vga_vbe_enabled(vga)) {
        /* No CRTC timing behind a VBE mode: refresh at 60 Hz with a
         * blanking interval of about 5% of the lines. */
        unsigned yres = vga->vbe[VBE_INDEX_YRES] ? vga->vbe[VBE_INDEX_YRES] : 1;
        t->display_lines = yres;
        t->total_lines = yres + yres / 20 + 4;
        t->line_ns = NS_PER_SEC / 60 / t->total_lines;
        t->retrace_start = yres + 1;
        t->retrace_lines = 2;
        t->htotal = 100;
        t->hdisplay = 80;
        return;
    }
    const uint8_t *cr = vga->cr;
    int64_t dot_hz = ((vga->misc >> 2) & 3) == 1 ? 28322000 : 25175000;
    unsigned char_width = (vga->sr[1] & 0x01) ? 8 : 9;
    if (vga->sr[1] & 0x08)
        dot_hz /= 2;
    t->htotal = cr[0x00] + 5u;
    t->hdisplay = cr[0x01] + 1u;
    t->total_lines = (cr[0x06] | (cr[0x07] & 0x01) << 8 | (cr[0x07] & 0x20) << 4) + 2u;
    t->display_lines = (cr[0x12] | (cr[0x07] & 0x02) << 7 | (cr[0x07] & 0x40) << 3) + 1u;
    t->retrace_start = cr[0x10] | (cr[0x07] & 0x04) << 6 | (cr[0x07] & 0x80) << 2;
    /* The retrace ends at the first line whose low four bits match. */
    t->retrace_lines = ((cr[0x11] & 0x0f) - (t->retrace_start & 0x0f)) & 0x0f;
    if (t->retrace_lines == 0)
        t->retrace_lines = 16;
    t->line_ns = (int64_t)t->htotal * char_width * NS_PER_SEC / dot_hz;

    /* Half-programmed or nonsensical timing (mid mode switch): fall back to
     * the 70 Hz, 449-line timing of the text modes. */
    int64_t frame_ns = t->line_ns * t->total_lines;
    if (t->total_lines < 64 || frame_ns < NS_PER_SEC / 200 || frame_ns > NS_PER_SEC / 25) {
        t->total_lines = 449;
        t->line_ns = 31778;
        if (t->display_lines > 449)
            t->display_lines = 400;
        t->retrace_start = 412;
        t->retrace_lines = 2;
    }
}

static int64_t vga_frame_ns(const struct vga *vga)
{
    struct vga_timing t;
    vga_get_timing(vga, &t);
    return t.line_ns * t.total_lines;
}

uint64_t vga_frame_number(const struct vga *vga)
{
    int64_t now = vclock_now(vga->clock);
    return now > 0 ? (uint64_t)(now / vga_frame_ns(vga)) : 0;
}

/* Input status 1: bit 3 vertical retrace, bit 0 "display disabled" (either
 * blanking interval), both following the beam position on the virtual
 * clock. */
static uint8_t vga_input_status1(const struct vga *vga)
{
    struct vga_timing t;
    vga_get_timing(vga, &t);
    int64_t now = vclock_now(vga->clock);
    if (now < 0)
        now = 0;
    int64_t frame_ns = t.line_ns * t.total_lines;
    int64_t in_frame = now % frame_ns;
    unsigned line = (unsigned)(in_frame / t.line_ns);
    int64_t in_line = in_frame % t.line_ns;
    bool retrace = line >= t.retrace_start && line < t.retrace_start + t.retrace_lines;
    bool hblank = in_line * t.htotal >= (int64_t)t.hdisplay * t.line_ns;
    bool blank = line >= t.display_lines || hblank;
    return (retrace ? 0x08 : 0) | (blank || retrace ? 0x01 : 0);
}

static void vga_refresh(void *opaque)
{
    struct vga *vga = opaque;
    if (vga->display)
        display_update(vga->display);
    int64_t period = vga_frame_ns(vga);
    if (period < NS_PER_SEC / 60)
        period = NS_PER_SEC / 60;
    vtimer_arm(vga->clock, &vga->refresh_timer, vclock_now(vga->clock) + period);
}

/* ---- Video memory through the 0xa0000 window ---- */

static bool vga_memory_enabled(const struct vga *vga)
{
    return (vga->misc & 0x02) && (vga->vga_enable & 0x01);
}

/* Turns an offset into the 128 KiB window into a CPU address within the
 * selected memory map (graphics controller register 6, bits 2-3). */
static bool vga_window_decode(const struct vga *vga, uint32_t offset, uint32_t *addr)
{
    /* As on Bochs, the packed-pixel VBE modes bank 64 KiB at 0xa0000 no
     * matter what the graphics controller selects. */
    if (vga_vbe_enabled(vga) && vga_vbe_bpp(vga) > 4) {
        if (offset >= 0x10000)
            return false;
        *addr = offset + ((uint32_t)vga->vbe[VBE_INDEX_BANK] << 16);
        return true;
    }
    switch ((vga->gr[6] >> 2) & 3) {
    case 0: /* 0xa0000-0xbffff */
        *addr = offset;
        break;
    case 1: /* 0xa0000-0xaffff */
        if (offset >= 0x10000)
            return false;
        *addr = offset;
        break;
    case 2: /* 0xb0000-0xb7fff */
        if (offset < 0x10000 || offset >= 0x18000)
            return false;
        *addr = offset - 0x10000;
        break;
    default: /* 0xb8000-0xbffff */
        if (offset < 0x18000)
            return false;
        *addr = offset - 0x18000;
        break;
    }
    if (vga_vbe_enabled(vga))
        *addr += (uint32_t)vga->vbe[VBE_INDEX_BANK] << 16;
    return true;
}

/* VBE modes above 4 bits per pixel see video memory as plain bytes. */
static bool vga_vbe_linear(const struct vga *vga)
{
    return vga_vbe_enabled(vga) && vga_vbe_bpp(vga) > 4;
}

static uint32_t vga_plane_addr_mask(const struct vga *vga)
{
    return vga_vbe_enabled(vga) ? VGA_VRAM_SIZE / 4 - 1 : VGA_PLANE_SIZE - 1;
}

/* One byte per plane set in the low four bits of planes: each bit is
 * carried to bit 0 of its byte (shifts of 0, 7, 14 and 21) and widened. */
static inline uint32_t expand_planes(unsigned planes)
{
    return ((planes & 0x0f) * 0x00204081u & 0x01010101u) * 0xffu;
}

static inline uint8_t rotate_right(uint8_t v, unsigned n)
{
    n &= 7;
    return (uint8_t)((v >> n) | (v << ((8 - n) & 7)));
}

/* One byte at CPU address addr of the selected memory map: video memory
 * through the planes (or as bytes in VBE packed-pixel modes). */
static uint8_t vga_mem_readb(struct vga *vga, uint32_t addr)
{
    if (vga_vbe_linear(vga))
        return addr < VGA_VRAM_SIZE ? vga->vram[addr] : 0xff;

    unsigned plane;
    if (vga->sr[4] & 0x08) { /* chain 4: address bits 0-1 pick the plane */
        plane = addr & 3;
        addr &= ~3u;
    } else if (vga->gr[5] & 0x10) { /* odd/even: bit 0 picks plane 0/1 or 2/3 */
        plane = (vga->gr[4] & 2) | (addr & 1);
        addr &= ~1u;
    } else {
        plane = vga->gr[4] & 3;
    }
    addr &= vga_plane_addr_mask(vga);
    vga->latch = vga_vram_load32(vga, addr);

    if (!(vga->gr[5] & 0x08))
        return (uint8_t)(vga->latch >> (8 * plane));
    /* Read mode 1: a bit is set where every plane not masked out by the
     * colour don't-care register matches the colour compare register. */
    uint32_t diff = (vga->latch ^ expand_planes(vga->gr[2])) & expand_planes(vga->gr[7]);
    diff |= diff >> 16;
    diff |= diff >> 8;
    return (uint8_t)~diff;
}

/* The graphics controller's write data path for one CPU byte, giving the
 * four plane bytes to store. */
static uint32_t vga_write_pipeline(const struct vga *vga, uint8_t value)
{
    const uint8_t *gr = vga->gr;
    uint32_t data;
    uint8_t bit_mask = gr[8];

    switch (gr[5] & 3) {
    case 0: {
        data = rotate_right(value, gr[3]) * 0x01010101u;
        uint32_t sr_enable = expand_planes(gr[1]);
        data = (data & ~sr_enable) | (expand_planes(gr[0]) & sr_enable);
        break;
    }
    case 1: /* The latches, unchanged: a fast plane-to-plane copy. */
        return vga->latch;
    case 2:
        data = expand_planes(value);
        break;
    default: /* 3: the rotated byte ANDed with the bit mask is the mask. */
        bit_mask &= rotate_right(value, gr[3]);
        data = expand_planes(gr[0]);
        break;
    }

    switch ((gr[3] >> 3) & 3) {
    case 1:
        data &= vga->latch;
        break;
    case 2:
        data |= vga->latch;
        break;
    case 3:
        data ^= vga->latch;
        break;
    default:
        break;
    }
    uint32_t mask = bit_mask * 0x01010101u;
    return (data & mask) | (vga->latch & ~mask);
}

static void vga_mem_writeb(struct vga *vga, uint32_t addr, uint8_t value)
{
    if (vga_vbe_linear(vga)) {
        if (addr < VGA_VRAM_SIZE) {
            vga->vram[addr] = value;
            vga_mark_dirty(vga, addr);
        }
        return;
    }

    unsigned planes = vga->sr[2] & 0x0f;
    if (vga->sr[4] & 0x08) {
        planes &= 1u << (addr & 3);
        addr &= ~3u;
    } else if (!(vga->sr[4] & 0x04)) { /* odd/even */
        planes &= (addr & 1) ? 0x0a : 0x05;
        addr &= ~1u;
    }
    addr &= vga_plane_addr_mask(vga);
    if (!planes)
        return;

    uint32_t data = vga_write_pipeline(vga, value);
    uint32_t keep = ~expand_planes(planes);
    uint32_t offset = vga_vram_offset(addr);
    uint32_t old;
    memcpy(&old, vga->vram + offset, 4);
    uint32_t new = (old & keep) | (data & ~keep);
    memcpy(vga->vram + offset, &new, 4);
    vga_mark_dirty(vga, offset);
    if (planes & 4)
        vga->font_dirty = true;
}

/* Decodes a window access of size bytes at once when all of them land in
 * the selected memory map, one after the other (every access but one that
 * straddles the map's end); the bus hands over words and doublewords whole,
 * so a "rep stosw" costs one decode per word. */
static bool vga_window_decode_access(const struct vga *vga, uint32_t offset, unsigned size,
                                     uint32_t *addr)
{
    uint32_t last;
    return vga_memory_enabled(vga) && vga_window_decode(vga, offset, addr) &&
           vga_window_decode(vga, offset + size - 1, &last) && last == *addr + size - 1;
}

static uint32_t vga_window_read(void *opaque, uint64_t offset, unsigned size)
{
    struct vga *vga = opaque;
    uint32_t v = 0, addr;
    if (vga_window_decode_access(vga, (uint32_t)offset, size, &addr)) {
        for (unsigned i = 0; i < size; i++)
            v |= (uint32_t)vga_mem_readb(vga, addr + i) << (8 * i);
        return v;
    }
    for (unsigned i = 0; i < size; i++) {
        uint8_t byte = 0xff;
        if (vga_window_decode_access(vga, (uint32_t)offset + i, 1, &addr))
            byte = vga_mem_readb(vga, addr);
        v |= (uint32_t)byte << (8 * i);
    }
    return v;
}

static void vga_window_write(void *opaque, uint64_t offset, unsigned size, uint32_t value)
{
    struct vga *vga = opaque;
    uint32_t addr;
    if (vga_window_decode_access(vga, (uint32_t)offset, size, &addr)) {
        for (unsigned i = 0; i < size; i++)
            vga_mem_writeb(vga, addr + i, (uint8_t)(value >> (8 * i)));
        return;
    }
    for (unsigned i = 0; i < size; i++) {
        if (vga_window_decode_access(vga, (uint32_t)offset + i, 1, &addr))
            vga_mem_writeb(vga, addr, (uint8_t)(value >> (8 * i)));
    }
}

static const struct mmio_ops vga_window_ops = {.read = vga_window_read, .write = vga_window_write};

/* ---- Direct mapping of the window ----
 *
 * Through the handlers every access costs a call and a decode. In the two
 * ways software most often fills the screen, the window is plain bytes of
 * video memory, and it is then mapped onto video memory as RAM over the
 * handlers, which the CPU backends (and KVM) write without leaving guest
 * code:
 * - chain 4 (mode 13h) with write mode 0, no set/reset, no rotation or
 *   logical operation, bit mask 0xff and all four planes in the map mask,
 *   and read mode 0: a byte written at n goes unchanged into plane n & 3 at
 *   plane address n & ~3, which is video memory byte n (vga_internal.h), and
 *   reading n returns it;
 * - the bank of a packed-pixel VBE mode, which is video memory bytes.
 * The memory map's dirty pages (KVM's dirty log under KVM) say what the
 * guest wrote there; the renderer takes them as damage. Any register write
 * that ends the condition maps the handlers back before the next access.
 *
 * Not modelled while mapped: a chain-4 read through the mapping does not
 * load the latches (as in QEMU). Only a program that reads in this mode and
 * then, without reading again, switches to a write mode that uses the
 * latches could tell; the handlers load them on every read otherwise. */

struct direct_target {
    uint32_t base, size;
    uint32_t vram_offset;
};

static unsigned vga_direct_targets(const struct vga *vga, struct direct_target *t)
{
    const uint8_t *gr = vga->gr;
    if (!vga_memory_enabled(vga))
        return 0;
    if (vga_vbe_linear(vga)) {
        /* The bank register is kept within video memory (vga_vbe.c). */
        t[0] = (struct direct_target){VGA_WINDOW_BASE, 0x10000,
                                      (uint32_t)vga->vbe[VBE_INDEX_BANK] << 16};
        return 1;
    }
    if (vga_vbe_enabled(vga) || !(vga->sr[4] & 0x08) || (vga->sr[2] & 0x0f) != 0x0f ||
        (gr[5] & 0x0b) != 0 || (gr[1] & 0x0f) != 0 || (gr[3] & 0x1f) != 0 || gr[8] != 0xff)
        return 0;
    /* Chain-4 plane addresses wrap at 64 KiB: the 128 KiB map shows the
     * same memory twice. */
    switch ((gr[6] >> 2) & 3) {
    case 0:
        t[0] = (struct direct_target){0xa0000, 0x10000, 0};
        t[1] = (struct direct_target){0xb0000, 0x10000, 0};
        return 2;
    case 1:
        t[0] = (struct direct_target){0xa0000, 0x10000, 0};
        return 1;
    case 2:
        t[0] = (struct direct_target){0xb0000, 0x8000, 0};
        return 1;
    default:
        t[0] = (struct direct_target){0xb8000, 0x8000, 0};
        return 1;
    }
}

void vga_update_direct_mapping(struct vga *vga)
{
    struct direct_target t[2] = {{0}};
    unsigned n = vga_direct_targets(vga, t);
    bool same = true;
    for (unsigned i = 0; i < 2; i++) {
        const struct memory_region *r = &vga->direct[i];
        if (r->enabled != (i < n) || (i < n && (r->base != t[i].base || r->size != t[i].size ||
                                                r->host != vga->vram + t[i].vram_offset)))
            same = false;
    }
    if (same)
        return;
    /* What the guest wrote through the old mapping is still to be drawn. */
    vga_collect_direct_dirty(vga);
    for (unsigned i = 0; i < 2; i++) {
        struct memory_region *r = &vga->direct[i];
        r->enabled = i < n;
        r->base = i < n ? t[i].base : VGA_WINDOW_BASE;
        r->size = i < n ? t[i].size : 0x10000;
        r->host = vga->vram + (i < n ? t[i].vram_offset : 0);
    }
    memory_update_range(vga->mem, VGA_WINDOW_BASE, VGA_WINDOW_SIZE);
}

void vga_collect_direct_dirty(struct vga *vga)
{
    for (unsigned i = 0; i < 2; i++) {
        const struct memory_region *r = &vga->direct[i];
        if (!r->enabled)
            continue;
        memory_sync_dirty(vga->mem, r->base, r->size);
        uint32_t vram_offset = (uint32_t)(r->host - vga->vram);
        for (uint32_t off = 0; off < r->size; off += GUEST_PAGE_SIZE) {
            if (memory_test_and_clear_dirty(vga->mem, r->base + off, GUEST_PAGE_SIZE,
                                            MEMORY_DIRTY_DISPLAY)) {
                vga->page_dirty[(vram_offset + off) / GUEST_PAGE_SIZE] = 1;
                /* Chain-4 bytes n with n & 3 == 2 are plane 2's. */
                vga->font_dirty = true;
            }
        }
    }
}

/* ---- Ports ---- */

static bool vga_crtc_port(const struct vga *vga, uint16_t port)
{
    return (port & 0xfff0) == (vga_colour_io(vga) ? 0x3d0 : 0x3b0);
}

static uint8_t vga_dac_read_data(struct vga *vga)
{
    uint8_t v = vga->dac[vga->dac_read_index * 3 + vga->dac_component];
    if (++vga->dac_component == 3) {
        vga->dac_component = 0;
        vga->dac_read_index++;
    }
    return v;
}

/* The DAC takes a colour in three writes and stores it after the third. */
static void vga_dac_write_data(struct vga *vga, uint8_t value)
{
    bool wide = vga->vbe[VBE_INDEX_ENABLE] & VBE_8BIT_DAC;
    vga->dac_staging[vga->dac_component] = wide ? value : (value & 0x3f);
    if (++vga->dac_component == 3) {
        memcpy(&vga->dac[vga->dac_write_index * 3], vga->dac_staging, 3);
        vga->dac_component = 0;
        vga->dac_write_index++;
    }
}

static uint8_t vga_port_readb(struct vga *vga, uint16_t port)
{
    switch (port) {
    case 0x3c0:
        return vga->ar_index;
    case 0x3c1: {
        unsigned i = vga->ar_index & 0x1f;
        return i < VGA_AR_COUNT ? vga->ar[i] : 0;
    }
    case 0x3c2: /* input status 0: no switch sense, no pending interrupt */
        return 0x00;
    case 0x3c3:
        return vga->vga_enable;
    case 0x3c4:
        return vga->sr_index;
    case 0x3c5:
        return vga->sr[vga->sr_index & 7];
    case 0x3c6:
        return vga->pel_mask;
    case 0x3c7:
        return vga->dac_state;
    case 0x3c8:
        return vga->dac_write_index;
    case 0x3c9:
        return vga_dac_read_data(vga);
    case 0x3ca:
        return vga->feature;
    case 0x3cc:
        return vga->misc;
    case 0x3ce:
        return vga->gr_index;
    case 0x3cf:
        return vga->gr[vga->gr_index & 0x0f];
    case 0x3b4:
    case 0x3d4:
        return vga_crtc_port(vga, port) ? vga->cr_index : 0xff;
    case 0x3b5:
    case 0x3d5:
        if (!vga_crtc_port(vga, port))
            return 0xff;
        return vga->cr_index < VGA_CR_COUNT ? vga->cr[vga->cr_index] : 0;
    case 0x3ba:
    case 0x3da:
        if (!vga_crtc_port(vga, port))
            return 0xff;
        /* Reading input status 1 puts the attribute flip-flop in index state. */
        vga->ar_flipflop = false;
        return vga_input_status1(vga);
    default:
        return 0xff;
    }
}

static void vga_attr_write(struct vga *vga, uint8_t value)
{
    if (!vga->ar_flipflop) {
        vga->ar_index = value & 0x3f;
        vga->ar_flipflop = true;
        return;
    }
    vga->ar_flipflop = false;
    unsigned i = vga->ar_index & 0x1f;
    if (i < 0x10)
        vga->ar[i] = value & 0x3f;
    else if (i == 0x10)
        vga->ar[i] = value & 0xef;
    else if (i == 0x11)
        vga->ar[i] = value;
    else if (i == 0x12)
        vga->ar[i] = value & 0x3f;
    else if (i == 0x13 || i == 0x14)
        vga->ar[i] = value & 0x0f;
}

static void vga_crtc_write(struct vga *vga, uint8_t value)
{
    unsigned i = vga->cr_index;
    if (i >= VGA_CR_COUNT)
        return;
    /* Register 0x11 bit 7 write-protects the horizontal and vertical timing
     * registers 0-7, except the line compare bit in the overflow register. */
    if ((vga->cr[0x11] & 0x80) && i <= 7) {
        if (i == 7)
            vga->cr[7] = (vga->cr[7] & ~0x10) | (value & 0x10);
        return;
    }
    vga->cr[i] = value;
}

static void vga_port_writeb(struct vga *vga, uint16_t port, uint8_t value)
{
    switch (port) {
    case 0x3c0:
        vga_attr_write(vga, value);
        break;
    case 0x3c2:
        vga->misc = value;
        break;
    case 0x3c3:
        vga->vga_enable = value & 0x01;
        break;
    case 0x3c4:
        vga->sr_index = value & 0x07;
        break;
    case 0x3c5:
        vga->sr[vga->sr_index & 7] = value & sr_mask[vga->sr_index & 7];
        break;
    case 0x3c6:
        vga->pel_mask = value;
        break;
    case 0x3c7:
        vga->dac_read_index = value;
        vga->dac_component = 0;
        vga->dac_state = 3;
        break;
    case 0x3c8:
        vga->dac_write_index = value;
        vga->dac_component = 0;
        vga->dac_state = 0;
        break;
    case 0x3c9:
        vga_dac_write_data(vga, value);
        break;
    case 0x3ce:
        vga->gr_index = value & 0x0f;
        break;
    case 0x3cf:
        vga->gr[vga->gr_index] = value & gr_mask[vga->gr_index];
        break;
    case 0x3b4:
    case 0x3d4:
        if (vga_crtc_port(vga, port))
            vga->cr_index = value;
        break;
    case 0x3b5:
    case 0x3d5:
        if (vga_crtc_port(vga, port))
            vga_crtc_write(vga, value);
        break;
    case 0x3ba:
    case 0x3da:
        if (vga_crtc_port(vga, port))
            vga->feature = value & 0x03;
        break;
    default:
        break;
    }
    /* Memory enable, the map mask, memory mode and the graphics
     * controller's data path decide whether the window can be RAM. */
    if (port == 0x3c2 || port == 0x3c3 || port == 0x3c5 || port == 0x3cf)
        vga_update_direct_mapping(vga);
}

/* Word and dword accesses reach consecutive ports, as on the ISA bus: the
 * common "out dx, ax" to 0x3c4 writes an index and then its data. */
static uint32_t vga_ioport_read(void *opaque, uint16_t port, unsigned size)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint32_t)vga_port_readb(opaque, (uint16_t)(port + i)) << (8 * i);
    return v;
}

static void vga_ioport_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    for (unsigned i = 0; i < size; i++)
        vga_port_writeb(opaque, (uint16_t)(port + i), (uint8_t)(value >> (8 * i)));
}

/* ---- Life cycle ---- */

/* The 64 colours of the EGA palette: each of red, green and blue has a
 * primary (2/3 intensity) bit and a secondary (1/3) bit, rgbRGB. */
static void vga_load_ega_palette(struct vga *vga)
{
    memset(vga->dac, 0, sizeof(vga->dac));
    for (unsigned i = 0; i < 64; i++) {
        static const unsigned primary[3] = {0x04, 0x02, 0x01};
        static const unsigned secondary[3] = {0x20, 0x10, 0x08};
        for (unsigned c = 0; c < 3; c++)
            vga->dac[i * 3 + c] =
                (uint8_t)(((i & primary[c]) ? 0x2a : 0) + ((i & secondary[c]) ? 0x15 : 0));
    }
}

void vga_reset(void *opaque)
{
    struct vga *vga = opaque;
    vga->misc = 0x67;
    vga->feature = 0;
    vga->vga_enable = 0x01;
    vga->sr_index = vga->gr_index = vga->cr_index = 0;
    memcpy(vga->sr, mode3_sr, sizeof(vga->sr));
    memcpy(vga->gr, mode3_gr, sizeof(vga->gr));
    memcpy(vga->cr, mode3_cr, sizeof(vga->cr));
    memcpy(vga->ar, mode3_ar, sizeof(vga->ar));
    vga->ar_index = 0x20;
    vga->ar_flipflop = false;
    vga->pel_mask = 0xff;
    vga->dac_read_index = vga->dac_write_index = 0;
    vga->dac_component = 0;
    vga->dac_state = 0;
    vga_load_ega_palette(vga);
    vga->latch = 0;
    vga_vbe_reset(vga);
    /* The BIOS's own data lives in its writable copy; a reset brings the
     * pristine image back. */
    if (vga->rom_shadow)
        memcpy(vga->rom_shadow, vga->rom_image, vga->rom_size);
    vga->force_full = true;
    vga_update_direct_mapping(vga);
}

struct vga *vga_create(struct memory *mem, struct ioport_bus *io, struct vclock *clock,
                       struct display *display)
{
    struct vga *vga = g_new0(struct vga, 1);
    vga->mem = mem;
    vga->io = io;
    vga->clock = clock;
    vga->display = display;
    /* Untouched pages of an anonymous mapping cost no host memory, and most
     * guests use a small part of the 16 MiB. */
    vga->vram = mmap(NULL, VGA_VRAM_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (vga->vram == MAP_FAILED) {
        g_free(vga);
        return NULL;
    }
    vga->render = vga_render_state_new();

    vga->window = (struct memory_region){.name = "vga-window",
                                         .base = VGA_WINDOW_BASE,
                                         .size = VGA_WINDOW_SIZE,
                                         .priority = 1,
                                         .enabled = true,
                                         .ops = &vga_window_ops,
                                         .opaque = vga};
    memory_add_region(mem, &vga->window);
    for (unsigned i = 0; i < 2; i++) {
        vga->direct[i] = (struct memory_region){.name = "vga-window-direct",
                                                .base = VGA_WINDOW_BASE,
                                                .size = 0x10000,
                                                .priority = 2,
                                                .enabled = false,
                                                .host = vga->vram,
                                                .log_dirty = true};
        memory_add_region(mem, &vga->direct[i]);
    }
    vga->lfb = (struct memory_region){.name = "vga-lfb",
                                      .base = VGA_LFB_DEFAULT_ADDRESS,
                                      .size = VGA_VRAM_SIZE,
                                      .priority = 1,
                                      .enabled = true,
                                      .host = vga->vram,
                                      .log_dirty = true};
    vga->lfb_address = VGA_LFB_DEFAULT_ADDRESS;
    memory_add_region(mem, &vga->lfb);

    ioport_register(io, 0x3b4, 2, "vga", vga_ioport_read, vga_ioport_write, vga);
    ioport_register(io, 0x3ba, 1, "vga", vga_ioport_read, vga_ioport_write, vga);
    ioport_register(io, 0x3c0, 16, "vga", vga_ioport_read, vga_ioport_write, vga);
    ioport_register(io, 0x3d4, 2, "vga", vga_ioport_read, vga_ioport_write, vga);
    ioport_register(io, 0x3da, 1, "vga", vga_ioport_read, vga_ioport_write, vga);
    vga_vbe_init(vga);

    vga_reset(vga);

    vtimer_init(&vga->refresh_timer, vga_refresh, vga);
    if (display) {
        struct display_source source = {.render = vga_render, .opaque = vga};
        display_set_source(display, &source);
        vtimer_arm(clock, &vga->refresh_timer, vclock_now(clock) + NS_PER_SEC / 60);
    }
    return vga;
}

void vga_destroy(struct vga *vga)
{
    if (!vga)
        return;
    vtimer_cancel(vga->clock, &vga->refresh_timer);
    if (vga->display)
        display_set_source(vga->display, &(struct display_source){0});
    /* The memory map still points at the regions inside this struct: it is
     * torn down with the machine, after the devices, and never used again.
     * Rebuilding it here could call back into a CPU backend already gone. */
    ioport_unregister(vga->io, 0x3b4, 2);
    ioport_unregister(vga->io, 0x3ba, 1);
    ioport_unregister(vga->io, 0x3c0, 16);
    ioport_unregister(vga->io, 0x3d4, 2);
    ioport_unregister(vga->io, 0x3da, 1);
    ioport_unregister(vga->io, 0x1ce, 3);
    vga_render_state_free(vga->render);
    munmap(vga->vram, VGA_VRAM_SIZE);
    g_free(vga->rom_image);
    g_aligned_free(vga->rom_shadow);
    g_free(vga);
}

/* The ROM is mapped as a writable copy rather than read-only: SeaBIOS's VGA
 * BIOS keeps variables in its own segment (whether the VBE interface was
 * found, the LFB address) and is built to run from shadow RAM, where the
 * system BIOS would have copied it. Read-only, those writes would be lost. */
bool vga_load_rom(struct vga *vga, const char *path, GError **error)
{
    gchar *contents;
    gsize length;
    if (!g_file_get_contents(path, &contents, &length, error))
        return false;
    const uint8_t *bytes = (const uint8_t *)contents;
    if (length < 3 || length > MAX_ROM_SIZE || bytes[0] != 0x55 || bytes[1] != 0xaa) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: not a VGA BIOS image (no 0x55 0xaa signature, or larger than "
                    "128 KiB)",
                    path);
        g_free(contents);
        return false;
    }
    size_t size = (length + GUEST_PAGE_SIZE - 1) & ~(size_t)(GUEST_PAGE_SIZE - 1);
    g_free(vga->rom_image);
    g_aligned_free(vga->rom_shadow);
    vga->rom_image = g_malloc0(size);
    memcpy(vga->rom_image, contents, length);
    g_free(contents);
    /* Guest memory must be page-aligned host memory (KVM maps it by pages). */
    vga->rom_shadow = g_aligned_alloc(1, size, GUEST_PAGE_SIZE);
    memcpy(vga->rom_shadow, vga->rom_image, size);
    vga->rom_size = size;

    bool added = vga->rom.name != NULL;
    vga->rom = (struct memory_region){.name = "vga-rom",
                                      .base = VGA_ROM_ADDRESS,
                                      .size = size,
                                      .priority = 1,
                                      .enabled = true,
                                      .host = vga->rom_shadow};
    if (added)
        memory_update(vga->mem);
    else
        memory_add_region(vga->mem, &vga->rom);
    return true;
}

const uint8_t *vga_rom_image(struct vga *vga, size_t *size)
{
    if (size)
        *size = vga->rom_size;
    return vga->rom_image;
}

void vga_set_lfb_address(struct vga *vga, uint32_t base)
{
    bool enabled = base != 0;
    if (vga->lfb_address == base && vga->lfb.enabled == enabled)
        return;
    vga->lfb_address = base;
    vga->lfb.base = base;
    vga->lfb.enabled = enabled;
    memory_update(vga->mem);
}

void vga_post_load(void *opaque)
{
    struct vga *vga = opaque;
    vga->lfb.base = vga->lfb_address;
    vga->lfb.enabled = vga->lfb_address != 0;
    memory_update(vga->mem);
    vga_update_direct_mapping(vga);
    memset(vga->page_dirty, 1, sizeof(vga->page_dirty));
    vga->font_dirty = true;
    vga->force_full = true;
}

uint8_t *vga_vram(struct vga *vga)
{
    return vga->vram;
}

uint8_t *vga_rom_shadow(struct vga *vga, size_t *size)
{
    *size = vga->rom_size;
    return vga->rom_shadow;
}

void vga_invalidate(struct vga *vga)
{
    vga->force_full = true;
}

struct memory_region *vga_lfb_region(struct vga *vga)
{
    return &vga->lfb;
}

const struct vmstate_desc vga_vmstate = {
    .name = "vga",
    .version = 1,
    .fields =
        (const struct vmstate_field[]){
            VMSTATE_U8(struct vga, misc),
            VMSTATE_U8(struct vga, feature),
            VMSTATE_U8(struct vga, vga_enable),
            VMSTATE_U8(struct vga, sr_index),
            VMSTATE_U8_ARRAY(struct vga, sr),
            VMSTATE_U8(struct vga, gr_index),
            VMSTATE_U8_ARRAY(struct vga, gr),
            VMSTATE_U8(struct vga, cr_index),
            VMSTATE_U8_ARRAY(struct vga, cr),
            VMSTATE_U8(struct vga, ar_index),
            VMSTATE_BOOL(struct vga, ar_flipflop),
            VMSTATE_U8_ARRAY(struct vga, ar),
            VMSTATE_U8(struct vga, pel_mask),
            VMSTATE_U8(struct vga, dac_read_index),
            VMSTATE_U8(struct vga, dac_write_index),
            VMSTATE_U8(struct vga, dac_component),
            VMSTATE_U8(struct vga, dac_state),
            VMSTATE_U8_ARRAY(struct vga, dac_staging),
            VMSTATE_U8_ARRAY(struct vga, dac),
            VMSTATE_U32(struct vga, latch),
            VMSTATE_U16(struct vga, vbe_index),
            VMSTATE_U16_ARRAY(struct vga, vbe),
            VMSTATE_U32(struct vga, lfb_address),
            VMSTATE_END,
        },
};

/* The IBM PC's 8x16 glyphs for characters 0 (blank) and 1 (the smiley), by
 * which the font is recognised inside a VGA BIOS image. */
static const uint8_t rom_font_signature[32] = {
    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
    0x00, 0x00, 0x7e, 0x81, 0xa5, 0x81, 0x81, 0xbd, 0x99, 0x81, 0x81, 0x7e, 0x00, 0x00, 0x00, 0x00,
};

bool vga_load_rom_font(struct vga *vga)
{
    const size_t font_size = 256 * 16;
    if (!vga->rom_image || vga->rom_size < font_size)
        return false;
    for (size_t at = 0; at + font_size <= vga->rom_size; at++) {
        if (memcmp(vga->rom_image + at, rom_font_signature, sizeof(rom_font_signature)) != 0)
            continue;
        /* Plane 2 holds 32 bytes per character, of which 16 are used. */
        for (unsigned c = 0; c < 256; c++) {
            for (unsigned row = 0; row < 32; row++) {
                uint8_t bits = row < 16 ? vga->rom_image[at + c * 16 + row] : 0;
                vga->vram[vga_vram_offset(c * 32 + row) + 2] = bits;
            }
        }
        vga->font_dirty = true;
        return true;
    }
    return false;
}
