/* VGA scan-out: turns video memory into XRGB pixels the way the CRT
 * controller, sequencer and attribute controller would (IBM VGA Technical
 * Reference; FreeVGA), one frame per call, and reports what changed.
 *
 * The CRT controller walks a memory address counter (MA) once per character
 * clock; the address mode (byte, word, doubleword), the CGA compatibility
 * substitutions of MA bits 13 and 14 by the row scan counter, the offset
 * register, the start address, line compare and panning decide which plane
 * address each clock fetches. All four plane bytes at that address then
 * become 8 pixels (planar, text, CGA interleave) or 4 (256 colours).
 *
 * Graphics modes are rendered at their logical resolution (mode 13h as
 * 320x200, not as the 640x400 the monitor scans), text modes at their dot
 * resolution (720x400 for 80x25).
 *
 * Only what changed is drawn: text cells are compared against a cache of
 * what each scanline showed (character, attribute, cursor and blink state);
 * graphics lines are redrawn when a video memory page they fetch from was
 * written. Anything that changes the whole picture (mode, palette, start
 * address, font) redraws everything. Changed lines become damage rectangles.
 */
#include <stddef.h>
#include <stdlib.h>

#include "../display/framebuffer.h"
#include "vga_internal.h"

enum scan_kind {
    SCAN_BLANK,
    SCAN_TEXT,
    SCAN_PLANAR,     /* 16 colours, one bit per plane */
    SCAN_CGA,        /* 4 colours, shift register interleave (modes 4 and 5) */
    SCAN_256,        /* 256 colours, a byte per plane (mode 13h, mode X) */
    SCAN_VBE_PACKED, /* VBE 8/15/16/24/32 bits per pixel, linear */
    SCAN_VBE_PLANAR, /* VBE 4 bits per pixel, planar */
};

/* Everything that decides how video memory maps to pixels. When any of it
 * changes between two frames, the whole picture is redrawn. */
struct vga_scanout {
    enum scan_kind kind;
    unsigned width, height;
    /* CRT controller */
    unsigned scan_lines;  /* scanlines displayed per frame */
    unsigned line_repeat; /* scanlines per output line (graphics) */
    unsigned double_scan; /* 1: every scanline shown twice */
    unsigned max_scan;    /* scanlines per character row, minus one */
    uint32_t start;
    uint32_t row_offset; /* MA advance per character row */
    unsigned line_compare;
    unsigned addr_mode; /* 0 byte, 1 word, 2 doubleword */
    bool word_bit15;
    bool cga_bit13, cga_bit14;
    unsigned columns; /* character clocks per line */
    unsigned pixel_pan;
    bool split_resets_pan;
    /* text */
    unsigned char_width, dot_double;
    uint32_t font_a, font_b;
    bool line_graphics, blink_enable, mono_underline;
    unsigned underline_row;
    bool cursor_enabled;
    unsigned cursor_start, cursor_end;
    /* VBE */
    unsigned bpp;
    uint32_t vbe_start, vbe_line;
    /* Last, outside the comparison that forces a full redraw: the text
     * renderer's cell cache notes which cell holds the cursor, so a cursor
     * that moves (every character a BIOS prints) redraws two cells. */
    uint32_t cursor_addr;
};

struct vga_render_state {
    struct vga_scanout last;
    bool have_last;
    uint32_t pal16[16];
    uint32_t pal256[256];
    uint32_t *text_cache; /* per scanline and column: what was drawn there */
    size_t text_cache_len;
    uint32_t *line_buf; /* one line of pixels before panning is applied */
    size_t line_buf_len;
    unsigned *span_x0, *span_x1; /* per output line: damaged columns */
    size_t spans_len;
};

struct vga_render_state *vga_render_state_new(void)
{
    return g_new0(struct vga_render_state, 1);
}

void vga_render_state_free(struct vga_render_state *state)
{
    if (!state)
        return;
    g_free(state->text_cache);
    g_free(state->line_buf);
    g_free(state->span_x0);
    g_free(state->span_x1);
    g_free(state);
}

/* ---- Parameters ---- */

/* Plane 2 offset of character map n (0-7) as selected by sequencer
 * register 3: maps 0-3 at 16 KiB steps, 4-7 in the 8 KiB between them. */
static uint32_t font_map_offset(unsigned n)
{
    return ((n & 3) << 14) | ((n & 4) << 11);
}

static void vga_build_scanout(const struct vga *vga, struct vga_scanout *s)
{
    memset(s, 0, sizeof(*s));
    if (vga_vbe_enabled(vga)) {
        s->bpp = vga_vbe_bpp(vga);
        s->kind = s->bpp == 4 ? SCAN_VBE_PLANAR : SCAN_VBE_PACKED;
        s->width = vga->vbe[VBE_INDEX_XRES];
        s->height = vga->vbe[VBE_INDEX_YRES];
        s->vbe_start = vga_vbe_start(vga);
        s->vbe_line = vga_vbe_line_length(vga);
        if (s->width == 0 || s->height == 0) {
            s->kind = SCAN_BLANK;
            s->width = 640;
            s->height = 480;
        }
        return;
    }

    const uint8_t *cr = vga->cr;
    s->scan_lines = (cr[0x12] | (cr[0x07] & 0x02) << 7 | (cr[0x07] & 0x40) << 3) + 1u;
    s->double_scan = cr[0x09] >> 7;
    s->max_scan = cr[0x09] & 0x1f;
    /* Byte panning (CR8 bits 5-6) delays the start by whole character
     * clocks. */
    s->start = ((uint32_t)cr[0x0c] << 8 | cr[0x0d]) + ((cr[0x08] >> 5) & 3);
    s->row_offset = cr[0x13] * 2u;
    s->line_compare = cr[0x18] | (cr[0x07] & 0x10) << 4 | (cr[0x09] & 0x40) << 3;
    if (cr[0x14] & 0x40)
        s->addr_mode = 2;
    else if (!(cr[0x17] & 0x40))
        s->addr_mode = 1;
    s->word_bit15 = cr[0x17] & 0x20;
    s->cga_bit13 = !(cr[0x17] & 0x01);
    s->cga_bit14 = !(cr[0x17] & 0x02);
    s->columns = cr[0x01] + 1u;
    s->split_resets_pan = vga->ar[0x10] & 0x20;
    unsigned pan = vga->ar[0x13] & 0x0f;

    if (!(vga->gr[6] & 0x01)) {
        s->kind = SCAN_TEXT;
        s->char_width = (vga->sr[1] & 0x01) ? 8 : 9;
        s->dot_double = (vga->sr[1] & 0x08) ? 2 : 1;
        /* Nine-dot characters pan one more dot than the register says, and
         * 8 means none. */
        if (s->char_width == 9)
            s->pixel_pan = pan >= 8 ? 0 : pan + 1;
        else
            s->pixel_pan = pan & 7;
        s->pixel_pan *= s->dot_double;
        s->width = s->columns * s->char_width * s->dot_double;
        s->height = s->scan_lines;
        uint8_t sr3 = vga->sr[3];
        s->font_a = font_map_offset(((sr3 >> 2) & 3) | ((sr3 >> 3) & 4));
        s->font_b = font_map_offset((sr3 & 3) | ((sr3 >> 2) & 4));
        s->line_graphics = vga->ar[0x10] & 0x04;
        s->blink_enable = vga->ar[0x10] & 0x08;
        s->mono_underline = vga->ar[0x10] & 0x02;
        s->underline_row = cr[0x14] & 0x1f;
        s->cursor_enabled = !(cr[0x0a] & 0x20);
        s->cursor_start = cr[0x0a] & 0x1f;
        s->cursor_end = cr[0x0b] & 0x1f;
        s->cursor_addr = (((uint32_t)cr[0x0e] << 8 | cr[0x0f]) + ((cr[0x0b] >> 5) & 3)) & 0xffff;
    } else {
        unsigned pixels_per_clock = 8;
        if (vga->gr[5] & 0x40) {
            s->kind = SCAN_256;
            pixels_per_clock = 4;
            /* The panning register counts half pixels of 256-colour modes. */
            s->pixel_pan = (pan & 7) >> 1;
        } else {
            s->kind = (vga->gr[5] & 0x20) ? SCAN_CGA : SCAN_PLANAR;
            s->pixel_pan = pan & 7;
        }
        s->width = s->columns * pixels_per_clock;
        /* Scanlines of one character row fetch the same addresses unless a
         * CGA substitution feeds the row scan counter into the address. */
        bool substituted = (s->cga_bit13 && s->max_scan >= 1) || (s->cga_bit14 && s->max_scan >= 2);
        s->line_repeat = (s->double_scan + 1) * (substituted ? 1 : s->max_scan + 1);
        s->height = (s->scan_lines + s->line_repeat - 1) / s->line_repeat;
    }

    bool blank = !(vga->ar_index & 0x20) || (vga->sr[1] & 0x20) || (vga->sr[0] & 3) != 3;
    if (blank)
        s->kind = SCAN_BLANK;
    if (s->width == 0 || s->height == 0 || s->width > FRAMEBUFFER_MAX_WIDTH ||
        s->height > FRAMEBUFFER_MAX_HEIGHT) {
        s->kind = SCAN_BLANK;
        s->width = 640;
        s->height = 480;
    }
}

static uint32_t dac_xrgb(const struct vga *vga, unsigned index)
{
    const uint8_t *c = &vga->dac[index * 3];
    if (vga->vbe[VBE_INDEX_ENABLE] & VBE_8BIT_DAC)
        return (uint32_t)c[0] << 16 | (uint32_t)c[1] << 8 | c[2];
    /* Six-bit components: replicate the top bits so 0x3f becomes 0xff. */
    uint32_t r = (c[0] & 0x3f) << 2 | (c[0] & 0x3f) >> 4;
    uint32_t g = (c[1] & 0x3f) << 2 | (c[1] & 0x3f) >> 4;
    uint32_t b = (c[2] & 0x3f) << 2 | (c[2] & 0x3f) >> 4;
    return r << 16 | g << 8 | b;
}

/* The 256 DAC colours as the pixel mask lets them through, and the 16
 * colours of 4-bit pixels through the colour plane enable register, the
 * attribute palette and the colour select register. */
static void vga_build_palettes(const struct vga *vga, uint32_t *pal256, uint32_t *pal16)
{
    for (unsigned i = 0; i < 256; i++)
        pal256[i] = dac_xrgb(vga, i & vga->pel_mask);
    const uint8_t *ar = vga->ar;
    for (unsigned i = 0; i < 16; i++) {
        uint8_t entry = ar[i & ar[0x12] & 0x0f];
        unsigned index;
        if (ar[0x10] & 0x80)
            index = (entry & 0x0f) | (ar[0x14] & 0x03) << 4;
        else
            index = entry & 0x3f;
        index |= (ar[0x14] & 0x0c) << 4;
        pal16[i] = pal256[index];
    }
}

/* The plane address the CRT controller fetches for memory address ma on
 * row scan line rs. */
static inline uint32_t crtc_address(const struct vga_scanout *s, uint32_t ma, unsigned rs)
{
    uint32_t a;
    ma &= 0xffff;
    switch (s->addr_mode) {
    case 2:
        a = (ma << 2) | ((ma >> 14) & 3);
        break;
    case 1:
        a = (ma << 1) | ((ma >> (s->word_bit15 ? 15 : 13)) & 1);
        break;
    default:
        a = ma;
        break;
    }
    if (s->cga_bit13)
        a = (a & ~0x2000u) | (rs & 1) << 13;
    if (s->cga_bit14)
        a = (a & ~0x4000u) | (rs & 2) << 13;
    return a & (VGA_PLANE_SIZE - 1);
}

/* Where scanline sl starts fetching: above the line compare it follows the
 * start address, below it the second screen starts at address 0. */
struct scan_position {
    uint32_t ma;
    unsigned rs;
    unsigned pan;
};

static struct scan_position scan_position(const struct vga_scanout *s, unsigned sl)
{
    struct scan_position p = {.ma = s->start, .pan = s->pixel_pan};
    unsigned line = sl;
    if (sl > s->line_compare) {
        p.ma = 0;
        line = sl - s->line_compare - 1;
        if (s->split_resets_pan)
            p.pan = 0;
    }
    unsigned vline = line >> s->double_scan;
    unsigned row = vline / (s->max_scan + 1);
    p.rs = vline % (s->max_scan + 1);
    p.ma += row * s->row_offset;
    return p;
}

static uint32_t *line_buffer(struct vga_render_state *st, size_t pixels)
{
    if (st->line_buf_len < pixels) {
        g_free(st->line_buf);
        st->line_buf = g_new0(uint32_t, pixels);
        st->line_buf_len = pixels;
    }
    return st->line_buf;
}

static void mark_span(struct vga_render_state *st, unsigned y, unsigned x0, unsigned x1)
{
    if (st->span_x1[y] == 0) {
        st->span_x0[y] = x0;
        st->span_x1[y] = x1;
        return;
    }
    st->span_x0[y] = MIN(st->span_x0[y], x0);
    st->span_x1[y] = MAX(st->span_x1[y], x1);
}

/* ---- Text ---- */

enum {
    CELL_VALID = 1u << 31,
    CELL_CURSOR = 1u << 16,
    CELL_HIDDEN = 1u << 17,
};

static void draw_text_cell(const struct vga *vga, const struct vga_scanout *s,
                           const uint32_t *pal16, uint32_t key, unsigned rs, uint32_t *out)
{
    uint8_t ch = key & 0xff, attr = (key >> 8) & 0xff;
    uint32_t font = (attr & 0x08) ? s->font_a : s->font_b;
    uint32_t glyph_addr = (font + ch * 32u + rs) & (VGA_PLANE_SIZE - 1);
    unsigned glyph = rs < 32 ? vga->vram[vga_vram_offset(glyph_addr) + 2] : 0;
    unsigned ninth = (s->line_graphics && ch >= 0xc0 && ch <= 0xdf) ? (glyph & 1) : 0;

    if (s->mono_underline && (attr & 0x77) == 0x01 && rs == s->underline_row)
        glyph = 0xff, ninth = 1;
    if (key & CELL_HIDDEN)
        glyph = 0, ninth = 0;
    if (key & CELL_CURSOR)
        glyph = 0xff, ninth = 1;

    uint32_t fg = pal16[attr & 0x0f];
    uint32_t bg = pal16[s->blink_enable ? (attr >> 4) & 7 : attr >> 4];
    unsigned d = s->dot_double;
    for (unsigned bit = 0; bit < 8; bit++) {
        uint32_t c = (glyph & (0x80 >> bit)) ? fg : bg;
        for (unsigned k = 0; k < d; k++)
            *out++ = c;
    }
    if (s->char_width == 9) {
        for (unsigned k = 0; k < d; k++)
            *out++ = ninth ? fg : bg;
    }
}

static void render_text(struct vga *vga, const struct vga_scanout *s, const uint32_t *pal16,
                        struct framebuffer *fb, bool full)
{
    struct vga_render_state *st = vga->render;
    unsigned cols = s->columns + 1; /* one more for panning */
    size_t cache_len = (size_t)s->height * cols;
    if (st->text_cache_len != cache_len) {
        g_free(st->text_cache);
        st->text_cache = g_new0(uint32_t, cache_len);
        st->text_cache_len = cache_len;
        full = true;
    }
    unsigned cell_px = s->char_width * s->dot_double;
    uint32_t *line = line_buffer(st, (size_t)cols * cell_px);

    uint64_t frame = vga_frame_number(vga);
    bool cursor_on = !((frame >> 3) & 1); /* blinks every 16 frames */
    bool chars_on = !((frame >> 4) & 1);  /* blinking characters every 32 */

    for (unsigned sl = 0; sl < s->height; sl++) {
        struct scan_position p = scan_position(s, sl);
        unsigned used = p.pan ? cols : s->columns;
        uint32_t *cache = st->text_cache + (size_t)sl * cols;
        int first = -1, last = -1;
        for (unsigned c = 0; c < used; c++) {
            uint32_t ma = (p.ma + c) & 0xffff;
            uint32_t planes = vga_vram_load32(vga, crtc_address(s, ma, p.rs));
            uint8_t attr = (uint8_t)(planes >> 8);
            uint32_t key = CELL_VALID | (planes & 0xffff);
            if (s->cursor_enabled && cursor_on && ma == s->cursor_addr && p.rs >= s->cursor_start &&
                p.rs <= s->cursor_end)
                key |= CELL_CURSOR;
            if (s->blink_enable && (attr & 0x80) && !chars_on)
                key |= CELL_HIDDEN;
            if (!full && cache[c] == key)
                continue;
            cache[c] = key;
            if (first < 0)
                first = (int)c;
            last = (int)c;
        }
        if (first < 0)
            continue;
        for (unsigned c = 0; c < used; c++)
            draw_text_cell(vga, s, pal16, cache[c], p.rs, line + c * cell_px);
        memcpy(framebuffer_row(fb, sl), line + p.pan, s->width * sizeof(uint32_t));
        if (p.pan)
            mark_span(st, sl, 0, s->width);
        else
            mark_span(st, sl, (unsigned)first * cell_px,
                      MIN((unsigned)(last + 1) * cell_px, s->width));
    }
}

/* ---- Graphics ---- */

static void decode_clock(enum scan_kind kind, uint32_t planes, const uint32_t *pal16,
                         const uint32_t *pal256, uint32_t *out)
{
    uint8_t b0 = planes & 0xff, b1 = (planes >> 8) & 0xff;
    uint8_t b2 = (planes >> 16) & 0xff, b3 = planes >> 24;
    switch (kind) {
    case SCAN_256:
        out[0] = pal256[b0];
        out[1] = pal256[b1];
        out[2] = pal256[b2];
        out[3] = pal256[b3];
        break;
    case SCAN_CGA:
        /* Two bits per pixel: four pixels from the even plane's byte, then
         * four from the odd plane's; planes 2 and 3 give the upper bits. */
        for (unsigned i = 0; i < 4; i++) {
            unsigned shift = 6 - 2 * i;
            out[i] = pal16[((b0 >> shift) & 3) | ((b2 >> shift) & 3) << 2];
            out[i + 4] = pal16[((b1 >> shift) & 3) | ((b3 >> shift) & 3) << 2];
        }
        break;
    default:
        for (unsigned i = 0; i < 8; i++) {
            unsigned bit = 7 - i;
            unsigned v = ((b0 >> bit) & 1) | ((b1 >> bit) & 1) << 1 | ((b2 >> bit) & 1) << 2 |
                         ((b3 >> bit) & 1) << 3;
            out[i] = pal16[v];
        }
        break;
    }
}

static void render_graphics(struct vga *vga, const struct vga_scanout *s, const uint32_t *pal16,
                            const uint32_t *pal256, struct framebuffer *fb, bool full)
{
    struct vga_render_state *st = vga->render;
    unsigned ppc = s->kind == SCAN_256 ? 4 : 8;
    unsigned clocks_max = s->columns + 1;
    uint32_t *line = line_buffer(st, (size_t)clocks_max * ppc);

    for (unsigned y = 0; y < s->height; y++) {
        struct scan_position p = scan_position(s, y * s->line_repeat);
        unsigned clocks = p.pan ? clocks_max : s->columns;
        bool dirty = full;
        for (unsigned i = 0; i < clocks && !dirty; i++) {
            uint32_t pa = crtc_address(s, p.ma + i, p.rs);
            dirty = vga->page_dirty[vga_vram_offset(pa) / GUEST_PAGE_SIZE];
        }
        if (!dirty)
            continue;
        for (unsigned i = 0; i < clocks; i++) {
            uint32_t planes = vga_vram_load32(vga, crtc_address(s, p.ma + i, p.rs));
            decode_clock(s->kind, planes, pal16, pal256, line + i * ppc);
        }
        memcpy(framebuffer_row(fb, y), line + p.pan, s->width * sizeof(uint32_t));
        mark_span(st, y, 0, s->width);
    }
}

/* ---- VBE ---- */

static bool vram_range_dirty(const struct vga *vga, uint64_t start, uint64_t len)
{
    if (len == 0)
        return false;
    uint64_t first = start / GUEST_PAGE_SIZE, last = (start + len - 1) / GUEST_PAGE_SIZE;
    for (uint64_t page = first; page <= last && page < VGA_VRAM_PAGES; page++) {
        if (vga->page_dirty[page])
            return true;
    }
    return false;
}

/* The same for count plane addresses from plane_addr, whose groups of
 * planes are spread over video memory (vga_internal.h). */
static bool planes_range_dirty(const struct vga *vga, uint32_t plane_addr, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        if (vga->page_dirty[vga_vram_offset(plane_addr + i) / GUEST_PAGE_SIZE])
            return true;
    }
    return false;
}

static void convert_vbe_line(const uint8_t *src, unsigned bpp, unsigned width,
                             const uint32_t *pal256, uint32_t *out)
{
    switch (bpp) {
    case 8:
        for (unsigned x = 0; x < width; x++)
            out[x] = pal256[src[x]];
        break;
    case 15:
        for (unsigned x = 0; x < width; x++) {
            unsigned v = src[2 * x] | src[2 * x + 1] << 8;
            unsigned r = (v >> 10) & 0x1f, g = (v >> 5) & 0x1f, b = v & 0x1f;
            out[x] = (r << 3 | r >> 2) << 16 | (g << 3 | g >> 2) << 8 | (b << 3 | b >> 2);
        }
        break;
    case 16:
        for (unsigned x = 0; x < width; x++) {
            unsigned v = src[2 * x] | src[2 * x + 1] << 8;
            unsigned r = (v >> 11) & 0x1f, g = (v >> 5) & 0x3f, b = v & 0x1f;
            out[x] = (r << 3 | r >> 2) << 16 | (g << 2 | g >> 4) << 8 | (b << 3 | b >> 2);
        }
        break;
    case 24:
        for (unsigned x = 0; x < width; x++)
            out[x] = (uint32_t)src[3 * x + 2] << 16 | src[3 * x + 1] << 8 | src[3 * x];
        break;
    default: /* 32: blue, green, red, unused in memory order */
        for (unsigned x = 0; x < width; x++)
            out[x] = (uint32_t)src[4 * x + 2] << 16 | src[4 * x + 1] << 8 | src[4 * x];
        break;
    }
}

static void render_vbe(struct vga *vga, const struct vga_scanout *s, const uint32_t *pal16,
                       const uint32_t *pal256, struct framebuffer *fb, bool full)
{
    struct vga_render_state *st = vga->render;
    bool planar = s->kind == SCAN_VBE_PLANAR;
    uint64_t line_bytes = planar ? (uint64_t)s->vbe_line * 4 : s->vbe_line;
    uint64_t start = planar ? (uint64_t)s->vbe_start * 4 : s->vbe_start;
    uint64_t used =
        planar ? (uint64_t)(s->width + 7) / 8 * 4 : (uint64_t)s->width * ((s->bpp + 7) / 8);

    for (unsigned y = 0; y < s->height; y++) {
        uint64_t offset = start + y * line_bytes;
        uint32_t *row = framebuffer_row(fb, y);
        if (offset + used > VGA_VRAM_SIZE) {
            /* Panned or sized past the end of video memory: nothing there. */
            if (full) {
                memset(row, 0, s->width * sizeof(uint32_t));
                mark_span(st, y, 0, s->width);
            }
            continue;
        }
        if (!full && !(planar ? planes_range_dirty(vga, (uint32_t)(offset / 4), used / 4)
                              : vram_range_dirty(vga, offset, used)))
            continue;
        if (planar) {
            uint32_t *line = line_buffer(st, (size_t)(s->width + 7) / 8 * 8);
            for (unsigned i = 0; i < (s->width + 7) / 8; i++) {
                uint32_t planes = vga_vram_load32(vga, (uint32_t)(offset / 4) + i);
                decode_clock(SCAN_PLANAR, planes, pal16, pal256, line + i * 8);
            }
            memcpy(row, line, s->width * sizeof(uint32_t));
        } else {
            convert_vbe_line(vga->vram + offset, s->bpp, s->width, pal256, row);
        }
        mark_span(st, y, 0, s->width);
    }
}

/* ---- Frame ---- */

/* Writes through the LFB go straight to video memory; the memory map noted
 * them in its per-page dirty bits (under KVM, once asked to collect them from
 * the kernel's dirty-page log). */
static void collect_lfb_dirty(struct vga *vga)
{
    if (!vga->lfb.enabled || vga->lfb.base + VGA_VRAM_SIZE > (1ull << 32))
        return;
    memory_sync_dirty(vga->mem, vga->lfb.base, VGA_VRAM_SIZE);
    for (uint32_t page = 0; page < VGA_VRAM_PAGES; page++) {
        uint64_t addr = vga->lfb.base + (uint64_t)page * GUEST_PAGE_SIZE;
        if (memory_test_and_clear_dirty(vga->mem, addr, GUEST_PAGE_SIZE, MEMORY_DIRTY_DISPLAY))
            vga->page_dirty[page] = 1;
    }
}

static void emit_damage(struct vga_render_state *st, struct framebuffer *fb, unsigned height)
{
    unsigned y = 0;
    while (y < height) {
        if (st->span_x1[y] == 0) {
            y++;
            continue;
        }
        unsigned y0 = y, x0 = st->span_x0[y], x1 = st->span_x1[y];
        while (++y < height && st->span_x1[y] != 0) {
            x0 = MIN(x0, st->span_x0[y]);
            x1 = MAX(x1, st->span_x1[y]);
        }
        framebuffer_add_damage(fb, x0, y0, x1 - x0, y - y0);
    }
}

void vga_render(void *opaque, struct framebuffer *fb)
{
    struct vga *vga = opaque;
    struct vga_render_state *st = vga->render;
    struct vga_scanout s;
    uint32_t pal256[256], pal16[16];

    collect_lfb_dirty(vga);
    vga_collect_direct_dirty(vga);
    vga_build_scanout(vga, &s);
    vga_build_palettes(vga, pal256, pal16);

    bool full = vga->force_full || !st->have_last ||
                memcmp(&s, &st->last, offsetof(struct vga_scanout, cursor_addr)) != 0 ||
                memcmp(pal256, st->pal256, sizeof(pal256)) != 0 ||
                memcmp(pal16, st->pal16, sizeof(pal16)) != 0;
    if (s.kind == SCAN_TEXT && vga->font_dirty)
        full = true;
    framebuffer_resize(fb, s.width, s.height);
    if (fb->width != s.width || fb->height != s.height) {
        /* The framebuffer could not take this size; draw nothing rather
         * than past its end. */
        return;
    }

    if (st->spans_len < s.height) {
        g_free(st->span_x0);
        g_free(st->span_x1);
        st->span_x0 = g_new0(unsigned, s.height);
        st->span_x1 = g_new0(unsigned, s.height);
        st->spans_len = s.height;
    } else {
        memset(st->span_x1, 0, s.height * sizeof(unsigned));
    }

    switch (s.kind) {
    case SCAN_BLANK:
        if (full) {
            for (unsigned y = 0; y < s.height; y++) {
                memset(framebuffer_row(fb, y), 0, s.width * sizeof(uint32_t));
                mark_span(st, y, 0, s.width);
            }
        }
        break;
    case SCAN_TEXT:
        render_text(vga, &s, pal16, fb, full);
        break;
    case SCAN_PLANAR:
    case SCAN_CGA:
    case SCAN_256:
        render_graphics(vga, &s, pal16, pal256, fb, full);
        break;
    case SCAN_VBE_PACKED:
    case SCAN_VBE_PLANAR:
        render_vbe(vga, &s, pal16, pal256, fb, full);
        break;
    }
    emit_damage(st, fb, s.height);

    memcpy(&st->last, &s, sizeof(s));
    st->have_last = true;
    memcpy(st->pal256, pal256, sizeof(pal256));
    memcpy(st->pal16, pal16, sizeof(pal16));
    memset(vga->page_dirty, 0, sizeof(vga->page_dirty));
    vga->font_dirty = false;
    vga->force_full = false;
}

/* ---- Text for people and tests ---- */

bool vga_text_screen(struct vga *vga, GString *out)
{
    struct vga_scanout s;
    vga_build_scanout(vga, &s);
    if (s.kind != SCAN_TEXT)
        return false;
    unsigned row_height = s.max_scan + 1;
    for (unsigned sl = 0; sl + row_height <= s.height; sl += row_height) {
        struct scan_position p = scan_position(&s, sl);
        GString *line = g_string_new(NULL);
        for (unsigned c = 0; c < s.columns; c++) {
            uint32_t ma = (p.ma + c) & 0xffff;
            uint8_t ch = (uint8_t)vga_vram_load32(vga, crtc_address(&s, ma, p.rs));
            /* Code page 437's printable ASCII as is; everything else (line
             * drawing, accents) as a space, so tests can match words. */
            g_string_append_c(line, ch >= 0x20 && ch < 0x7f ? (char)ch : ' ');
        }
        while (line->len && line->str[line->len - 1] == ' ')
            g_string_truncate(line, line->len - 1);
        g_string_append(out, line->str);
        g_string_append_c(out, '\n');
        g_string_free(line, TRUE);
    }
    return true;
}
