/* Unit tests for the VGA adapter: registers are programmed through the port
 * bus, video memory is written through the memory map, and the rendered
 * framebuffer pixels are checked.
 *
 * Set VIVARIUM_VGA_PNG_DIR to a directory to also get a PNG of each
 * rendered mode there, to look at.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "devices/vga.h"
#include "display/framebuffer.h"
#include "ioport.h"
#include "memory.h"
#include "vclock.h"

struct fixture {
    struct memory mem;
    struct memory_region ram;
    struct ioport_bus *io;
    struct vclock clock;
    struct framebuffer *fb;
    struct vga *vga;
};

static void fixture_set_up(struct fixture *f, gconstpointer data)
{
    (void)data;
    g_assert_true(memory_init(&f->mem, 1 << 20));
    f->ram = (struct memory_region){
        .name = "ram", .base = 0, .size = 1 << 20, .enabled = true, .host = f->mem.ram};
    memory_add_region(&f->mem, &f->ram);
    f->io = g_new0(struct ioport_bus, 1);
    ioport_bus_init(f->io);
    vclock_init(&f->clock);
    f->vga = vga_create(&f->mem, f->io, &f->clock, NULL);
    g_assert_nonnull(f->vga);
    f->fb = framebuffer_new(1, 1);
    g_assert_nonnull(f->fb);
}

static void fixture_tear_down(struct fixture *f, gconstpointer data)
{
    (void)data;
    framebuffer_free(f->fb);
    vga_destroy(f->vga);
    g_free(f->io);
    memory_destroy(&f->mem);
}

static void outb(struct fixture *f, uint16_t port, uint8_t v)
{
    ioport_write(f->io, port, 1, v);
}

static void outw(struct fixture *f, uint16_t port, uint16_t v)
{
    ioport_write(f->io, port, 2, v);
}

static uint8_t inb(struct fixture *f, uint16_t port)
{
    return (uint8_t)ioport_read(f->io, port, 1);
}

static uint16_t inw(struct fixture *f, uint16_t port)
{
    return (uint16_t)ioport_read(f->io, port, 2);
}

static void writeb(struct fixture *f, uint32_t addr, uint8_t v)
{
    memory_write(&f->mem, addr, 1, v);
}

static uint8_t readb(struct fixture *f, uint32_t addr)
{
    return (uint8_t)memory_read(&f->mem, addr, 1);
}

static void seq(struct fixture *f, uint8_t index, uint8_t v)
{
    outw(f, 0x3c4, (uint16_t)(v << 8 | index));
}

static void gc(struct fixture *f, uint8_t index, uint8_t v)
{
    outw(f, 0x3ce, (uint16_t)(v << 8 | index));
}

static void crtc(struct fixture *f, uint8_t index, uint8_t v)
{
    outw(f, 0x3d4, (uint16_t)(v << 8 | index));
}

static void dac_set(struct fixture *f, uint8_t index, uint8_t r, uint8_t g, uint8_t b)
{
    outb(f, 0x3c8, index);
    outb(f, 0x3c9, r);
    outb(f, 0x3c9, g);
    outb(f, 0x3c9, b);
}

static uint32_t pixel(struct fixture *f, unsigned x, unsigned y)
{
    g_assert_cmpuint(x, <, f->fb->width);
    g_assert_cmpuint(y, <, f->fb->height);
    return framebuffer_row(f->fb, y)[x];
}

static void render(struct fixture *f, const char *png_name)
{
    vga_render(f->vga, f->fb);
    const char *dir = g_getenv("VIVARIUM_VGA_PNG_DIR");
    if (dir && png_name) {
        gchar *path = g_build_filename(dir, png_name, NULL);
        GError *error = NULL;
        g_assert_true(display_screenshot_png(f->fb, path, &error));
        g_free(path);
    }
}

/* Takes the damage list; returns how many rectangles, and the first. */
static unsigned take_damage(struct fixture *f, struct fb_rect *first)
{
    GArray *rects = g_array_new(FALSE, FALSE, sizeof(struct fb_rect));
    unsigned n = framebuffer_take_damage(f->fb, rects);
    if (n && first)
        *first = g_array_index(rects, struct fb_rect, 0);
    g_array_free(rects, TRUE);
    return n;
}

/* ---- Mode programming, as a VGA BIOS does it ---- */

struct vga_mode_regs {
    uint8_t misc;
    uint8_t sr[4]; /* sequencer 1-4 */
    uint8_t cr[25];
    uint8_t ar[20];
    uint8_t gr[9];
};

/* Standard register values of BIOS modes 4, 12h and 13h. */
static const struct vga_mode_regs mode_04 = {
    0x63,
    {0x09, 0x03, 0x00, 0x02},
    {0x2d, 0x27, 0x28, 0x90, 0x2b, 0x80, 0xbf, 0x1f, 0x00, 0xc1, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x14, 0x00, 0x96, 0xb9, 0xa2, 0xff},
    {0x00, 0x13, 0x15, 0x17, 0x02, 0x04, 0x06, 0x07, 0x10, 0x11,
     0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x01, 0x00, 0x03, 0x00},
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x0f, 0x0f, 0xff},
};

static const struct vga_mode_regs mode_12 = {
    0xe3,
    {0x01, 0x0f, 0x00, 0x06},
    {0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0xea, 0x8c, 0xdf, 0x28, 0x00, 0xe7, 0x04, 0xe3, 0xff},
    {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39,
     0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x01, 0x00, 0x0f, 0x00},
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff},
};

static const struct vga_mode_regs mode_13 = {
    0x63,
    {0x01, 0x0f, 0x00, 0x0e},
    {0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x40, 0x96, 0xb9, 0xa3, 0xff},
    {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
     0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x41, 0x00, 0x0f, 0x00},
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff},
};

static void set_mode(struct fixture *f, const struct vga_mode_regs *m)
{
    outb(f, 0x3c2, m->misc);
    seq(f, 0, 0x01);
    for (unsigned i = 0; i < 4; i++)
        seq(f, (uint8_t)(i + 1), m->sr[i]);
    seq(f, 0, 0x03);
    crtc(f, 0x11, 0x00);
    for (unsigned i = 0; i < 25; i++)
        crtc(f, (uint8_t)i, m->cr[i]);
    inb(f, 0x3da);
    for (unsigned i = 0; i < 20; i++) {
        outb(f, 0x3c0, (uint8_t)i);
        outb(f, 0x3c0, m->ar[i]);
    }
    for (unsigned i = 0; i < 9; i++)
        gc(f, (uint8_t)i, m->gr[i]);
    outb(f, 0x3c0, 0x20);
}

/* Plane 2 access for loading fonts, and back to text-mode addressing. */
static void font_access(struct fixture *f, bool on)
{
    seq(f, 2, on ? 0x04 : 0x03);
    seq(f, 4, on ? 0x07 : 0x02);
    gc(f, 4, on ? 0x02 : 0x00);
    gc(f, 5, on ? 0x00 : 0x10);
    gc(f, 6, on ? 0x04 : 0x0e);
}

static void load_glyph(struct fixture *f, uint32_t map_offset, uint8_t ch, const uint8_t rows[16])
{
    for (unsigned r = 0; r < 16; r++)
        writeb(f, 0xa0000 + map_offset + ch * 32u + r, rows[r]);
}

/* ---- Tests ---- */

/* EGA palette colours as the default DAC and attribute palette give them. */
#define BLUE   0x0000aau
#define GREY   0xaaaaaau
#define YELLOW 0xffff55u
#define BLACK  0x000000u

static void test_text_glyph(struct fixture *f, gconstpointer data)
{
    (void)data;
    uint8_t glyph_a[16] = {0}, glyph_line[16] = {0}, glyph_alt[16] = {0};
    glyph_a[5] = 0x81;    /* leftmost and rightmost dot */
    glyph_line[8] = 0xff; /* a box-drawing horizontal line */
    glyph_alt[5] = 0x18;
    font_access(f, true);
    load_glyph(f, 0x0000, 'A', glyph_a);
    load_glyph(f, 0x0000, 0xc4, glyph_line);
    load_glyph(f, 0x4000, 'A', glyph_alt); /* character map 1 */
    font_access(f, false);

    /* 'A' yellow on blue, a line-drawing character grey on black. */
    writeb(f, 0xb8000, 'A');
    writeb(f, 0xb8001, 0x1e);
    writeb(f, 0xb8002, 0xc4);
    writeb(f, 0xb8003, 0x07);
    writeb(f, 0xb8000 + 160 + 1, 0x07); /* the cursor's cell: grey on black */
    crtc(f, 0x0e, 0x00);
    crtc(f, 0x0f, 80); /* cursor at row 1, column 0 */
    render(f, "text.png");

    g_assert_cmpuint(f->fb->width, ==, 720);
    g_assert_cmpuint(f->fb->height, ==, 400);
    g_assert_cmphex(pixel(f, 0, 5), ==, YELLOW);
    g_assert_cmphex(pixel(f, 1, 5), ==, BLUE);
    g_assert_cmphex(pixel(f, 7, 5), ==, YELLOW);
    g_assert_cmphex(pixel(f, 8, 5), ==, BLUE); /* 9th dot of a letter: background */
    g_assert_cmphex(pixel(f, 0, 4), ==, BLUE);
    /* Box-drawing characters (0xc0-0xdf) repeat their 8th dot in the 9th. */
    g_assert_cmphex(pixel(f, 9, 8), ==, GREY);
    g_assert_cmphex(pixel(f, 17, 8), ==, GREY);
    g_assert_cmphex(pixel(f, 17, 7), ==, BLACK);
    /* The cursor covers scanlines 13-14 of its cell (in the blink's on
     * phase at time 0), in the cell's foreground colour. */
    g_assert_cmphex(pixel(f, 3, 16 + 13), ==, GREY);
    g_assert_cmphex(pixel(f, 3, 16 + 12), ==, BLACK);

    /* 512 characters: with map A (attribute bit 3 set) = map 1 and map B =
     * map 0, a bright 'A' takes its glyph from map 1. */
    seq(f, 3, 0x04);
    render(f, NULL);
    g_assert_cmphex(pixel(f, 0, 5), ==, BLUE);
    g_assert_cmphex(pixel(f, 3, 5), ==, YELLOW);
    writeb(f, 0xb8001, 0x16); /* attribute bit 3 clear: map 0 again */
    render(f, NULL);
    g_assert_cmphex(pixel(f, 0, 5), !=, BLUE);

    /* A disabled cursor is not drawn. */
    crtc(f, 0x0a, 0x2d);
    render(f, NULL);
    g_assert_cmphex(pixel(f, 3, 16 + 13), ==, BLACK);
}

static void test_text_blink(struct fixture *f, gconstpointer data)
{
    (void)data;
    uint8_t glyph[16];
    memset(glyph, 0xff, sizeof(glyph));
    font_access(f, true);
    load_glyph(f, 0, 'X', glyph);
    font_access(f, false);
    writeb(f, 0xb8000, 'X');
    writeb(f, 0xb8001, 0x9e); /* blinking yellow on blue */
    crtc(f, 0x0a, 0x20);      /* no cursor */
    render(f, NULL);
    g_assert_cmphex(pixel(f, 2, 2), ==, YELLOW);
    /* 32 frames later (16 on, 16 off) the character is in its off phase. */
    vclock_set(&f->clock, 16 * (NS_PER_SEC / 70) + NS_PER_SEC / 140);
    take_damage(f, NULL);
    render(f, NULL);
    g_assert_cmphex(pixel(f, 2, 2), ==, BLUE);
    struct fb_rect r;
    g_assert_cmpuint(take_damage(f, &r), ==, 1);
    g_assert_cmpuint(r.y, ==, 0);
    g_assert_cmpuint(r.height, ==, 16);
    g_assert_cmpuint(r.width, ==, 9);
}

static void test_write_modes(struct fixture *f, gconstpointer data)
{
    (void)data;
    set_mode(f, &mode_12);
    const uint32_t a = 0xa0000;

    /* Write mode 0 with set/reset on every plane: planes get 0xff where
     * the set/reset value (0101) has a 1. */
    gc(f, 1, 0x0f);
    gc(f, 0, 0x05);
    writeb(f, a, 0x00);
    gc(f, 1, 0x00);
    for (unsigned p = 0; p < 4; p++) {
        gc(f, 4, (uint8_t)p);
        g_assert_cmphex(readb(f, a), ==, (p & 1) ? 0x00 : 0xff);
    }

    /* Bit mask: only bits 0-3 change; the others come from the latches
     * loaded by the read above. */
    gc(f, 8, 0x0f);
    writeb(f, a, 0xaa);
    gc(f, 8, 0xff);
    gc(f, 4, 0);
    g_assert_cmphex(readb(f, a), ==, 0xfa);
    gc(f, 4, 1);
    g_assert_cmphex(readb(f, a), ==, 0x0a);

    /* Rotate by one and XOR with the latches. */
    seq(f, 2, 0x02);    /* plane 1 only */
    gc(f, 3, 0x19);     /* XOR, rotate right 1 */
    readb(f, a);        /* latch plane 1 = 0x0a */
    writeb(f, a, 0x03); /* rotated: 0x81 */
    gc(f, 3, 0x00);
    seq(f, 2, 0x0f);
    gc(f, 4, 1);
    g_assert_cmphex(readb(f, a), ==, 0x8b);

    /* Write mode 1 copies the latches: offset 0 to offset 1. */
    gc(f, 5, 0x01);
    readb(f, a);
    writeb(f, a + 1, 0x00);
    gc(f, 5, 0x00);
    for (unsigned p = 0; p < 4; p++) {
        gc(f, 4, (uint8_t)p);
        g_assert_cmphex(readb(f, a + 1), ==, readb(f, a));
    }

    /* Write mode 2: the low nibble of the CPU byte is a colour. */
    gc(f, 5, 0x02);
    writeb(f, a + 2, 0x0a);
    gc(f, 5, 0x00);
    for (unsigned p = 0; p < 4; p++) {
        gc(f, 4, (uint8_t)p);
        g_assert_cmphex(readb(f, a + 2), ==, (p & 1) ? 0xff : 0x00);
    }

    /* Write mode 3: the rotated CPU byte masks the set/reset colour (1100);
     * masked-out bits keep the latches (just loaded from offset 2). */
    gc(f, 5, 0x03);
    gc(f, 0, 0x0c);
    readb(f, a + 2);
    writeb(f, a + 2, 0xf0);
    gc(f, 5, 0x00);
    const uint8_t expect3[4] = {0x00, 0x0f, 0xf0, 0xff};
    for (unsigned p = 0; p < 4; p++) {
        gc(f, 4, (uint8_t)p);
        g_assert_cmphex(readb(f, a + 2), ==, expect3[p]);
    }

    /* Read mode 1: bits whose four plane bits equal the colour compare
     * value, with plane 3 made a don't-care. */
    gc(f, 5, 0x08);
    gc(f, 2, 0x06); /* 0110 */
    gc(f, 7, 0x0f);
    g_assert_cmphex(readb(f, a + 2), ==, 0x00);
    gc(f, 2, 0x0c);
    g_assert_cmphex(readb(f, a + 2), ==, 0xf0);
    gc(f, 2, 0x02);
    gc(f, 7, 0x07);
    g_assert_cmphex(readb(f, a + 2), ==, 0x0f);
    gc(f, 5, 0x00);

    /* The rendered pixels. Offset 0 holds planes fa 8b fa 0a: bit 7 is
     * colour 0111 (grey), bit 3 colour 1111 (white). */
    render(f, "mode12.png");
    g_assert_cmpuint(f->fb->width, ==, 640);
    g_assert_cmpuint(f->fb->height, ==, 480);
    g_assert_cmphex(pixel(f, 0, 0), ==, GREY);
    g_assert_cmphex(pixel(f, 4, 0), ==, 0xffffffu);
    g_assert_cmphex(pixel(f, 5, 0), ==, BLACK);
    /* Offset 2, bit 0: planes 1, 3 set and bit 0 of planes 0, 2 from
     * write mode 3: 1010 = 10 -> palette 0x3a: bright green. */
    g_assert_cmphex(pixel(f, 23, 0), ==, 0x55ff55u);
}

static void test_mode13h(struct fixture *f, gconstpointer data)
{
    (void)data;
    set_mode(f, &mode_13);
    dac_set(f, 0x20, 0x3f, 0x00, 0x10);
    writeb(f, 0xa0000 + 10 * 320 + 7, 0x20);
    render(f, "mode13.png");
    g_assert_cmpuint(f->fb->width, ==, 320);
    g_assert_cmpuint(f->fb->height, ==, 200);
    g_assert_cmphex(pixel(f, 7, 10), ==, 0xff0041u);
    g_assert_cmphex(pixel(f, 7, 11), ==, BLACK);
    g_assert_cmphex(pixel(f, 8, 10), ==, BLACK);
    /* Chain 4 put the pixel in plane 3 (address 3207 & 3). */
    seq(f, 4, 0x06);
    gc(f, 5, 0x00);
    gc(f, 4, 3);
    g_assert_cmphex(readb(f, 0xa0000 + ((10 * 320 + 7) & ~3)), ==, 0x20);
    gc(f, 4, 0);
    g_assert_cmphex(readb(f, 0xa0000 + ((10 * 320 + 7) & ~3)), ==, 0x00);
}

static void test_mode_x(struct fixture *f, gconstpointer data)
{
    (void)data;
    set_mode(f, &mode_13);
    /* Unchain: sequential plane addressing, byte-mode CRTC. */
    seq(f, 4, 0x06);
    crtc(f, 0x14, 0x00);
    crtc(f, 0x17, 0xe3);
    dac_set(f, 0x30, 0x00, 0x3f, 0x00);
    seq(f, 2, 1 << 2); /* plane 2 */
    writeb(f, 0xa0000 + 5, 0x30);
    /* 240 lines: vertical display end 479. */
    crtc(f, 0x11, 0x2c);
    crtc(f, 0x06, 0x0d);
    crtc(f, 0x07, 0x3e);
    crtc(f, 0x10, 0xea);
    crtc(f, 0x11, 0xac);
    crtc(f, 0x12, 0xdf);
    crtc(f, 0x15, 0xe7);
    crtc(f, 0x16, 0x06);
    outb(f, 0x3c2, 0xe3);
    render(f, "modex.png");
    g_assert_cmpuint(f->fb->width, ==, 320);
    g_assert_cmpuint(f->fb->height, ==, 240);
    g_assert_cmphex(pixel(f, 5 * 4 + 2, 0), ==, 0x00ff00u);
    g_assert_cmphex(pixel(f, 5 * 4 + 1, 0), ==, BLACK);
    g_assert_cmphex(pixel(f, 5 * 4 + 3, 0), ==, BLACK);
    gc(f, 4, 2);
    g_assert_cmphex(readb(f, 0xa0000 + 5), ==, 0x30);
    gc(f, 4, 1);
    g_assert_cmphex(readb(f, 0xa0000 + 5), ==, 0x00);

    /* Page flipping: start address 80 shows memory row 1 at the top. */
    seq(f, 2, 0x0f);
    writeb(f, 0xa0000 + 80, 0x30);
    crtc(f, 0x0c, 0x00);
    crtc(f, 0x0d, 80);
    render(f, NULL);
    g_assert_cmphex(pixel(f, 0, 0), ==, 0x00ff00u);
    g_assert_cmphex(pixel(f, 3, 0), ==, 0x00ff00u);
    g_assert_cmphex(pixel(f, 4, 0), ==, BLACK);
}

static void test_split_screen(struct fixture *f, gconstpointer data)
{
    (void)data;
    set_mode(f, &mode_13);
    dac_set(f, 1, 0x3f, 0, 0);
    dac_set(f, 2, 0, 0, 0x3f);
    writeb(f, 0xa0000 + 0, 1);         /* memory line 0 */
    writeb(f, 0xa0000 + 100 * 320, 2); /* memory line 100 */
    /* Start at line 100 (MA counts doublewords: 8000 * 4 = 32000) and
     * split after scanline 199 of 400, i.e. output line 100. */
    crtc(f, 0x0c, 8000 >> 8);
    crtc(f, 0x0d, 8000 & 0xff);
    crtc(f, 0x18, 199);
    crtc(f, 0x07, 0x0f); /* line compare bit 8 clear */
    crtc(f, 0x09, 0x01); /* and bit 9 */
    render(f, "split.png");
    g_assert_cmphex(pixel(f, 0, 0), ==, 0x0000ffu);
    g_assert_cmphex(pixel(f, 0, 99), ==, BLACK);
    g_assert_cmphex(pixel(f, 0, 100), ==, 0xff0000u);
}

static void test_cga_mode4(struct fixture *f, gconstpointer data)
{
    (void)data;
    set_mode(f, &mode_04);
    /* Even lines at 0xb8000, odd lines at 0xba000, two bits per pixel. */
    writeb(f, 0xb8000, 0x1b); /* 00 01 10 11 */
    writeb(f, 0xba000, 0xc0); /* line 1: pixel 0 = 3 */
    writeb(f, 0xb8001, 0x40); /* pixel 4 = 1 */
    render(f, "mode4.png");
    g_assert_cmpuint(f->fb->width, ==, 320);
    g_assert_cmpuint(f->fb->height, ==, 200);
    /* The mode's attribute registers map 1, 2, 3 to the EGA colours 0x13,
     * 0x15, 0x17 (rgbRGB), which the default DAC holds. */
    g_assert_cmphex(pixel(f, 0, 0), ==, BLACK);
    g_assert_cmphex(pixel(f, 1, 0), ==, 0x00ffaau);
    g_assert_cmphex(pixel(f, 2, 0), ==, 0xaa55aau);
    g_assert_cmphex(pixel(f, 3, 0), ==, 0xaaffaau);
    g_assert_cmphex(pixel(f, 0, 1), ==, 0xaaffaau);
    g_assert_cmphex(pixel(f, 4, 0), ==, 0x00ffaau);
    g_assert_cmphex(pixel(f, 0, 2), ==, BLACK);
}

static void test_dac_indexes(struct fixture *f, gconstpointer data)
{
    (void)data;
    dac_set(f, 5, 0x3f, 0xff, 0x01);
    g_assert_cmphex(inb(f, 0x3c8), ==, 6); /* the write index moved on */
    g_assert_cmphex(inb(f, 0x3c7) & 3, ==, 0);
    outb(f, 0x3c7, 5);
    g_assert_cmphex(inb(f, 0x3c7) & 3, ==, 3);
    g_assert_cmphex(inb(f, 0x3c9), ==, 0x3f);
    g_assert_cmphex(inb(f, 0x3c9), ==, 0x3f); /* components are 6 bits */
    g_assert_cmphex(inb(f, 0x3c9), ==, 0x01);
    /* The read index moved on to entry 6 of the EGA palette (rgbRGB
     * 000110: red and green at 2/3). */
    g_assert_cmphex(inb(f, 0x3c9), ==, 0x2a);
    g_assert_cmphex(inb(f, 0x3c9), ==, 0x2a);
    g_assert_cmphex(inb(f, 0x3c9), ==, 0x00);

    /* A colour is stored only after its third component. */
    outb(f, 0x3c8, 7);
    outb(f, 0x3c9, 0x00);
    outb(f, 0x3c9, 0x00);
    outb(f, 0x3c7, 7);
    g_assert_cmphex(inb(f, 0x3c9), ==, 0x2a);
    g_assert_cmphex(inb(f, 0x3c8), ==, 7);

    /* The pixel mask reaches the picture. */
    set_mode(f, &mode_13);
    dac_set(f, 0x0f, 0x3f, 0x3f, 0x3f);
    dac_set(f, 0x07, 0x00, 0x3f, 0x00);
    writeb(f, 0xa0000, 0x0f);
    render(f, NULL);
    g_assert_cmphex(pixel(f, 0, 0), ==, 0xffffffu);
    outb(f, 0x3c6, 0x07);
    render(f, NULL);
    g_assert_cmphex(pixel(f, 0, 0), ==, 0x00ff00u);
}

static void test_attr_flipflop(struct fixture *f, gconstpointer data)
{
    (void)data;
    inb(f, 0x3da);
    outb(f, 0x3c0, 0x01); /* index */
    outb(f, 0x3c0, 0x15); /* data */
    outb(f, 0x3c0, 0x22); /* index again, with the palette source bit */
    g_assert_cmphex(inb(f, 0x3c0), ==, 0x22);
    outb(f, 0x3c0, 0x05);
    outb(f, 0x3c0, 0x21);
    g_assert_cmphex(inb(f, 0x3c1), ==, 0x15);
    /* The flip-flop now expects data; reading input status 1 puts it back
     * in index state. */
    inb(f, 0x3da);
    outb(f, 0x3c0, 0x22);
    g_assert_cmphex(inb(f, 0x3c0), ==, 0x22);
    g_assert_cmphex(inb(f, 0x3c1), ==, 0x05);
    outb(f, 0x3c0, 0x3f);
    outb(f, 0x3c0, 0x22);
    g_assert_cmphex(inb(f, 0x3c1), ==, 0x3f);
    /* With monochrome I/O addresses the colour status port is not decoded
     * and leaves the flip-flop alone; 0x3ba resets it. */
    outb(f, 0x3c2, 0x66);
    inb(f, 0x3da);
    outb(f, 0x3c0, 0x07); /* data for register 2 */
    inb(f, 0x3ba);
    outb(f, 0x3c0, 0x22);
    g_assert_cmphex(inb(f, 0x3c1), ==, 0x07);
}

static void test_input_status_timing(struct fixture *f, gconstpointer data)
{
    (void)data;
    /* Mode 3: 28.322 MHz, 100 character clocks of 9 dots: 31.78 us lines,
     * 449 lines (70 Hz), vertical retrace from line 412 for 2 lines. */
    const int64_t line_ns = 100 * 9 * NS_PER_SEC / 28322000;
    vclock_set(&f->clock, 10 * line_ns + 100);
    g_assert_cmphex(inb(f, 0x3da) & 0x09, ==, 0x00);
    vclock_set(&f->clock, 10 * line_ns + line_ns * 90 / 100);
    g_assert_cmphex(inb(f, 0x3da) & 0x09, ==, 0x01); /* horizontal blanking */
    vclock_set(&f->clock, 412 * line_ns + line_ns / 2);
    g_assert_cmphex(inb(f, 0x3da) & 0x09, ==, 0x09);
    vclock_set(&f->clock, 449 * line_ns * 3 + 412 * line_ns + 100);
    g_assert_cmphex(inb(f, 0x3da) & 0x08, ==, 0x08);
    vclock_set(&f->clock, 449 * line_ns * 3 + 415 * line_ns);
    g_assert_cmphex(inb(f, 0x3da) & 0x09, ==, 0x01);
}

static void vbe_write(struct fixture *f, uint16_t index, uint16_t value)
{
    outw(f, 0x1ce, index);
    outw(f, 0x1cf, value);
}

static uint16_t vbe_read(struct fixture *f, uint16_t index)
{
    outw(f, 0x1ce, index);
    return inw(f, 0x1cf);
}

static void test_vbe_lfb(struct fixture *f, gconstpointer data)
{
    (void)data;
    vbe_write(f, 0, 0xb0c0);
    g_assert_cmphex(vbe_read(f, 0), ==, 0xb0c0);
    vbe_write(f, 0, 0x1234);
    g_assert_cmphex(vbe_read(f, 0), ==, 0xb0c0);
    vbe_write(f, 0, 0xb0c5);
    g_assert_cmpuint(vbe_read(f, 10), ==, 256); /* 16 MiB in 64 KiB units */
    vbe_write(f, 4, 0x02);                      /* GETCAPS */
    g_assert_cmpuint(vbe_read(f, 1), >=, 1920);
    g_assert_cmpuint(vbe_read(f, 3), ==, 32);
    vbe_write(f, 4, 0x00);

    vbe_write(f, 3, 32);
    vbe_write(f, 1, 1024);
    vbe_write(f, 2, 768);
    vbe_write(f, 5, 0);
    vbe_write(f, 4, 0x41); /* enabled, LFB */
    g_assert_cmpuint(vbe_read(f, 6), ==, 1024);
    g_assert_cmpuint(vbe_read(f, 7), ==, VGA_VRAM_SIZE / 4096);

    memory_write(&f->mem, VGA_LFB_DEFAULT_ADDRESS + (100 * 1024 + 50) * 4, 4, 0x00123456);
    render(f, "vbe.png");
    g_assert_cmpuint(f->fb->width, ==, 1024);
    g_assert_cmpuint(f->fb->height, ==, 768);
    g_assert_cmphex(pixel(f, 50, 100), ==, 0x123456u);
    g_assert_cmphex(pixel(f, 51, 100), ==, BLACK);

    /* The banked window at 0xa0000 shows the same memory: bank 1 starts at
     * byte 64 KiB, pixel 16384 = (0, 16). */
    vbe_write(f, 5, 1);
    memory_write(&f->mem, 0xa0000, 4, 0x00ff8000);
    g_assert_cmphex(memory_read(&f->mem, VGA_LFB_DEFAULT_ADDRESS + 0x10000, 4), ==, 0x00ff8000);
    render(f, NULL);
    g_assert_cmphex(pixel(f, 0, 16), ==, 0xff8000u);

    /* The PCI glue moves the BAR. */
    vga_set_lfb_address(f->vga, 0xe0000000);
    g_assert_cmphex(memory_read(&f->mem, 0xe0000000 + (100 * 1024 + 50) * 4, 4), ==, 0x123456);
    g_assert_cmphex(memory_read(&f->mem, VGA_LFB_DEFAULT_ADDRESS, 4), ==, 0xffffffff);

    /* Y offset pans the visible area. */
    vbe_write(f, 9, 100);
    render(f, NULL);
    g_assert_cmphex(pixel(f, 50, 0), ==, 0x123456u);

    /* 16 bits per pixel, 640x480. */
    vbe_write(f, 4, 0x00);
    vbe_write(f, 3, 16);
    vbe_write(f, 1, 640);
    vbe_write(f, 2, 480);
    vbe_write(f, 4, 0x41);
    memory_write(&f->mem, 0xe0000000 + (2 * 640 + 3) * 2, 2, 0xf800); /* red */
    render(f, NULL);
    g_assert_cmpuint(f->fb->width, ==, 640);
    g_assert_cmphex(pixel(f, 3, 2), ==, 0xff0000u);

    /* Back to VGA: the text mode's geometry returns. */
    vbe_write(f, 4, 0x00);
    render(f, NULL);
    g_assert_cmpuint(f->fb->width, ==, 720);
}

static void test_dirty_tracking(struct fixture *f, gconstpointer data)
{
    (void)data;
    set_mode(f, &mode_13);
    dac_set(f, 9, 0x3f, 0x3f, 0x3f);
    render(f, NULL);
    struct fb_rect r;
    g_assert_cmpuint(take_damage(f, &r), >=, 1);

    /* Nothing changed: nothing to send. */
    render(f, NULL);
    g_assert_cmpuint(take_damage(f, NULL), ==, 0);

    writeb(f, 0xa0000 + 150 * 320 + 100, 9);
    render(f, NULL);
    g_assert_cmpuint(take_damage(f, &r), ==, 1);
    g_assert_cmpuint(r.x, <=, 100);
    g_assert_cmpuint(r.x + r.width, >, 100);
    g_assert_cmpuint(r.y, <=, 150);
    g_assert_cmpuint(r.y + r.height, >, 150);
    g_assert_cmpuint(r.height, <, 20); /* not the whole screen */
    g_assert_cmphex(pixel(f, 100, 150), ==, 0xffffffu);

    /* A palette change redraws everything. */
    dac_set(f, 9, 0x3f, 0, 0);
    render(f, NULL);
    g_assert_cmpuint(take_damage(f, &r), ==, 1);
    g_assert_cmpuint(r.width, ==, 320);
    g_assert_cmpuint(r.height, ==, 200);

    /* Text: one changed character damages its cell's scanlines only. */
    vga_reset(f->vga);
    render(f, NULL);
    take_damage(f, NULL);
    crtc(f, 0x0a, 0x20);
    render(f, NULL);
    take_damage(f, NULL);
    render(f, NULL);
    g_assert_cmpuint(take_damage(f, NULL), ==, 0);
    writeb(f, 0xb8000 + (3 * 80 + 10) * 2, 'x');
    render(f, NULL);
    g_assert_cmpuint(take_damage(f, &r), ==, 1);
    g_assert_cmpuint(r.x, ==, 90);
    g_assert_cmpuint(r.width, ==, 9);
    g_assert_cmpuint(r.y, ==, 48);
    g_assert_cmpuint(r.height, ==, 16);

    /* VBE: a write through the LFB is found through the memory map's dirty
     * pages. */
    vbe_write(f, 3, 32);
    vbe_write(f, 1, 800);
    vbe_write(f, 2, 600);
    vbe_write(f, 4, 0x41);
    render(f, NULL);
    take_damage(f, NULL);
    render(f, NULL);
    g_assert_cmpuint(take_damage(f, NULL), ==, 0);
    memory_write(&f->mem, VGA_LFB_DEFAULT_ADDRESS + (300 * 800 + 400) * 4, 4, 0x00abcdef);
    render(f, NULL);
    g_assert_cmpuint(take_damage(f, &r), ==, 1);
    g_assert_cmpuint(r.y, <=, 300);
    g_assert_cmpuint(r.y + r.height, >, 300);
    g_assert_cmpuint(r.height, <, 10);
    g_assert_cmphex(pixel(f, 400, 300), ==, 0xabcdefu);
}

/* With SeaBIOS's VGA BIOS installed, its 8x16 font renders real text. The
 * font is found by the IBM PC smiley face (character 1). */
static void test_text_with_vgabios_font(struct fixture *f, gconstpointer data)
{
    (void)data;
    gchar *rom;
    gsize len;
    if (!g_file_get_contents("/usr/share/seabios/vgabios-stdvga.bin", &rom, &len, NULL)) {
        g_test_skip("vgabios-stdvga.bin is not installed");
        return;
    }
    static const uint8_t smiley[] = {0x00, 0x00, 0x7e, 0x81, 0xa5, 0x81,
                                     0x81, 0xbd, 0x99, 0x81, 0x81, 0x7e};
    const uint8_t *font = NULL;
    for (gsize i = 16; i + 4096 <= len + 16; i++) {
        if (memcmp(rom + i, smiley, sizeof(smiley)) == 0) {
            font = (const uint8_t *)rom + i - 16;
            break;
        }
    }
    g_assert_nonnull(font);
    font_access(f, true);
    for (unsigned ch = 0; ch < 256; ch++)
        load_glyph(f, 0, (uint8_t)ch, font + ch * 16);
    font_access(f, false);
    crtc(f, 0x0a, 0x20); /* no cursor over the checked glyph */

    const char *text = "Vivarium VGA: \xc9\xcd\xcd\xbb text mode, 9-dot cells, 16 colours";
    for (unsigned i = 0; text[i]; i++) {
        writeb(f, 0xb8000 + i * 2, (uint8_t)text[i]);
        writeb(f, 0xb8000 + i * 2 + 1, 0x1f);
    }
    for (unsigned c = 0; c < 16; c++) {
        writeb(f, 0xb8000 + (2 * 80 + c * 2) * 2, 0xdb);
        writeb(f, 0xb8000 + (2 * 80 + c * 2) * 2 + 1, (uint8_t)c);
    }
    render(f, "text-font.png");
    /* Every dot of 'V' (column 0, scanlines 0-15) is as the font says. */
    for (unsigned y = 0; y < 16; y++) {
        for (unsigned x = 0; x < 8; x++) {
            bool on = font['V' * 16 + y] & (0x80 >> x);
            g_assert_cmphex(pixel(f, x, y), ==, on ? 0xffffffu : BLUE);
        }
    }
    g_free(rom);
}

static const struct vga_mode_regs mode_0d = {
    0x63,
    {0x09, 0x0f, 0x00, 0x06},
    {0x2d, 0x27, 0x28, 0x90, 0x2b, 0x80, 0xbf, 0x1f, 0x00, 0xc0, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x14, 0x00, 0x96, 0xb9, 0xe3, 0xff},
    {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x10, 0x11,
     0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x01, 0x00, 0x0f, 0x00},
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff},
};

static uint32_t dac_colour(uint8_t r, uint8_t g, uint8_t b)
{
    return (uint32_t)(r << 2 | r >> 4) << 16 | (uint32_t)(g << 2 | g >> 4) << 8 |
           (uint32_t)(b << 2 | b >> 4);
}

/* Whole pictures in each kind of mode, drawn the way programs draw them;
 * sampled pixels are checked against the formula that drew them. */
static void test_gallery(struct fixture *f, gconstpointer data)
{
    (void)data;
    /* Mode 13h: a diagonal gradient through a 256-entry ramp. */
    set_mode(f, &mode_13);
    for (unsigned i = 0; i < 256; i++)
        dac_set(f, (uint8_t)i, (uint8_t)(i & 0x3f), (uint8_t)((i >> 2) & 0x3f),
                (uint8_t)(63 - (i >> 2)));
    for (unsigned y = 0; y < 200; y++)
        for (unsigned x = 0; x < 320; x++)
            writeb(f, 0xa0000 + y * 320 + x, (uint8_t)(x + y));
    render(f, "gallery-13h.png");
    for (unsigned y = 0; y < 200; y += 37) {
        for (unsigned x = 0; x < 320; x += 29) {
            uint8_t i = (uint8_t)(x + y);
            g_assert_cmphex(pixel(f, x, y), ==,
                            dac_colour(i & 0x3f, (i >> 2) & 0x3f, 63 - (i >> 2)));
        }
    }

    /* Mode X, 320x240: the XOR pattern, one plane at a time. */
    crtc(f, 0x11, 0x2c);
    crtc(f, 0x06, 0x0d);
    crtc(f, 0x07, 0x3e);
    crtc(f, 0x10, 0xea);
    crtc(f, 0x11, 0xac);
    crtc(f, 0x12, 0xdf);
    crtc(f, 0x15, 0xe7);
    crtc(f, 0x16, 0x06);
    outb(f, 0x3c2, 0xe3);
    seq(f, 4, 0x06);
    crtc(f, 0x14, 0x00);
    crtc(f, 0x17, 0xe3);
    for (unsigned plane = 0; plane < 4; plane++) {
        seq(f, 2, (uint8_t)(1 << plane));
        for (unsigned y = 0; y < 240; y++)
            for (unsigned x = plane; x < 320; x += 4)
                writeb(f, 0xa0000 + y * 80 + x / 4, (uint8_t)(x ^ y));
    }
    render(f, "gallery-modex.png");
    g_assert_cmpuint(f->fb->height, ==, 240);
    for (unsigned y = 0; y < 240; y += 13) {
        for (unsigned x = 0; x < 320; x += 7) {
            uint8_t i = (uint8_t)(x ^ y);
            g_assert_cmphex(pixel(f, x, y), ==,
                            dac_colour(i & 0x3f, (i >> 2) & 0x3f, 63 - (i >> 2)));
        }
    }

    /* Mode 12h: 16 colour bars with write mode 2, a white frame with
     * set/reset and the bit mask. */
    vga_reset(f->vga);
    set_mode(f, &mode_12);
    gc(f, 5, 0x02);
    for (unsigned y = 0; y < 480; y++)
        for (unsigned x = 0; x < 640; x += 8)
            writeb(f, 0xa0000 + y * 80 + x / 8, (uint8_t)(x / 40));
    gc(f, 5, 0x00);
    gc(f, 1, 0x0f);
    gc(f, 0, 0x0f);
    for (unsigned x = 0; x < 640; x += 8) {
        writeb(f, 0xa0000 + 10 * 80 + x / 8, 0);
        writeb(f, 0xa0000 + 469 * 80 + x / 8, 0);
    }
    for (unsigned y = 10; y < 470; y++) {
        gc(f, 8, 0x20); /* x = 10 */
        readb(f, 0xa0000 + y * 80 + 1);
        writeb(f, 0xa0000 + y * 80 + 1, 0);
        gc(f, 8, 0x04); /* x = 629 */
        readb(f, 0xa0000 + y * 80 + 78);
        writeb(f, 0xa0000 + y * 80 + 78, 0);
    }
    gc(f, 8, 0xff);
    gc(f, 1, 0x00);
    render(f, "gallery-12h.png");
    /* Through the mode's attribute palette (6 is brown, 8-15 are 0x38-0x3f)
     * and the default DAC, each bar shows its EGA colour. */
    static const uint32_t ega16[16] = {0x000000, 0x0000aa, 0x00aa00, 0x00aaaa, 0xaa0000, 0xaa00aa,
                                       0xaa5500, 0xaaaaaa, 0x555555, 0x5555ff, 0x55ff55, 0x55ffff,
                                       0xff5555, 0xff55ff, 0xffff55, 0xffffff};
    for (unsigned c = 0; c < 16; c++) {
        g_assert_cmphex(pixel(f, c * 40 + 20, 100), ==, ega16[c]);
        g_assert_cmphex(pixel(f, c * 40 + 21, 300), ==, ega16[c]);
    }
    g_assert_cmphex(pixel(f, 10, 200), ==, 0xffffffu);
    g_assert_cmphex(pixel(f, 629, 200), ==, 0xffffffu);
    g_assert_cmphex(pixel(f, 300, 10), ==, 0xffffffu);
    g_assert_cmphex(pixel(f, 11, 200), ==, BLACK);
    g_assert_cmphex(pixel(f, 60, 200), ==, BLUE);

    /* Mode 0Dh, 320x200 16 colours: diagonal stripes. */
    set_mode(f, &mode_0d);
    gc(f, 5, 0x02);
    for (unsigned y = 0; y < 200; y++) {
        for (unsigned x = 0; x < 320; x++) {
            gc(f, 8, (uint8_t)(0x80 >> (x & 7)));
            readb(f, 0xa0000 + y * 40 + x / 8);
            writeb(f, 0xa0000 + y * 40 + x / 8, (uint8_t)(((x + y) / 16) & 15));
        }
    }
    gc(f, 8, 0xff);
    gc(f, 5, 0x00);
    render(f, "gallery-0dh.png");
    g_assert_cmpuint(f->fb->width, ==, 320);
    g_assert_cmpuint(f->fb->height, ==, 200);
    g_assert_cmphex(pixel(f, 0, 0), ==, BLACK);
    g_assert_cmphex(pixel(f, 16, 0), ==, BLUE);
    g_assert_cmphex(pixel(f, 0, 17), ==, BLUE);
    g_assert_cmphex(pixel(f, 8, 8), ==, BLUE);
    g_assert_cmphex(pixel(f, 7, 8), ==, BLACK);

    /* Mode 4: four colour bars on even lines, reversed on odd ones. */
    set_mode(f, &mode_04);
    for (unsigned y = 0; y < 200; y++) {
        uint32_t base = 0xb8000 + (y & 1) * 0x2000 + (y / 2) * 80;
        for (unsigned x = 0; x < 320; x += 4) {
            unsigned c = (y & 1) ? 3 - x / 80 : x / 80;
            writeb(f, base + x / 4, (uint8_t)(c * 0x55));
        }
    }
    render(f, "gallery-mode4.png");
    g_assert_cmphex(pixel(f, 100, 50), ==, 0x00ffaau);
    g_assert_cmphex(pixel(f, 100, 51), ==, 0xaa55aau);
    g_assert_cmphex(pixel(f, 300, 50), ==, 0xaaffaau);
    g_assert_cmphex(pixel(f, 300, 51), ==, BLACK);

    /* VBE 800x600 in 24 bits: a red-green gradient written through the
     * LFB. */
    outw(f, 0x1ce, 3);
    outw(f, 0x1cf, 24);
    outw(f, 0x1ce, 1);
    outw(f, 0x1cf, 800);
    outw(f, 0x1ce, 2);
    outw(f, 0x1cf, 600);
    outw(f, 0x1ce, 4);
    outw(f, 0x1cf, 0x41);
    for (unsigned y = 0; y < 600; y++) {
        for (unsigned x = 0; x < 800; x++) {
            uint32_t a = VGA_LFB_DEFAULT_ADDRESS + (y * 800 + x) * 3;
            writeb(f, a, (uint8_t)((x ^ y) & 0xff));
            writeb(f, a + 1, (uint8_t)(y * 255 / 599));
            writeb(f, a + 2, (uint8_t)(x * 255 / 799));
        }
    }
    render(f, "gallery-vbe24.png");
    for (unsigned y = 0; y < 600; y += 41)
        for (unsigned x = 0; x < 800; x += 53)
            g_assert_cmphex(pixel(f, x, y), ==,
                            (x * 255 / 799) << 16 | (y * 255 / 599) << 8 | ((x ^ y) & 0xff));
}

static const struct vga_mode_regs mode_07 = {
    0xa6,
    {0x00, 0x03, 0x00, 0x02},
    {0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4d, 0x0b, 0x0c, 0x00,
     0x00, 0x00, 0x00, 0x83, 0x85, 0x5d, 0x28, 0x0d, 0x63, 0xba, 0xa3, 0xff},
    {0x00, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x10, 0x18,
     0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x0e, 0x00, 0x0f, 0x08},
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0a, 0x0f, 0xff},
};

/* Monochrome text (mode 7): CRTC at 0x3b4, memory at 0xb0000, 14-line
 * cells and the underline attribute. */
static void test_mono_underline(struct fixture *f, gconstpointer data)
{
    (void)data;
    set_mode(f, &mode_07); /* its CRTC writes to 0x3d4 go nowhere */
    outw(f, 0x3b4, 0x0011);
    for (unsigned i = 0; i < 25; i++)
        outw(f, 0x3b4, (uint16_t)(mode_07.cr[i] << 8 | i));
    g_assert_cmphex(inb(f, 0x3d5), ==, 0xff);
    outb(f, 0x3b4, 0x14);
    g_assert_cmphex(inb(f, 0x3b5), ==, 0x0d);
    outw(f, 0x3b4, 0x200a); /* no cursor */
    dac_set(f, 0x08, 0x2a, 0x2a, 0x2a);
    writeb(f, 0xb0000, ' ');
    writeb(f, 0xb0001, 0x01); /* underlined */
    writeb(f, 0xb0002, ' ');
    writeb(f, 0xb0003, 0x07);                     /* normal */
    g_assert_cmphex(readb(f, 0xb8001), ==, 0xff); /* 0xb8000 is not decoded */
    render(f, "mode7.png");
    g_assert_cmpuint(f->fb->width, ==, 720);
    g_assert_cmpuint(f->fb->height, ==, 350);
    g_assert_cmphex(pixel(f, 0, 13), ==, GREY);
    g_assert_cmphex(pixel(f, 8, 13), ==, GREY);
    g_assert_cmphex(pixel(f, 0, 12), ==, BLACK);
    g_assert_cmphex(pixel(f, 9, 13), ==, BLACK);
}

/* Horizontal pixel panning and its reset below the split line. */
static void test_panning(struct fixture *f, gconstpointer data)
{
    (void)data;
    set_mode(f, &mode_12);
    /* Colour 15 at memory x = 3 on lines 0 and 479. */
    gc(f, 1, 0x0f);
    gc(f, 0, 0x0f);
    gc(f, 8, 0x10);
    writeb(f, 0xa0000, 0);
    writeb(f, 0xa0000 + 479 * 80, 0);
    gc(f, 8, 0xff);
    gc(f, 1, 0x00);
    render(f, NULL);
    g_assert_cmphex(pixel(f, 3, 0), ==, 0xffffffu);
    inb(f, 0x3da);
    outb(f, 0x3c0, 0x33); /* panning register, display on */
    outb(f, 0x3c0, 3);
    render(f, NULL);
    g_assert_cmphex(pixel(f, 0, 0), ==, 0xffffffu);
    g_assert_cmphex(pixel(f, 3, 0), ==, BLACK);
    g_assert_cmphex(pixel(f, 0, 479), ==, 0xffffffu);
    /* A split screen from line 400 with "pixel panning mode" set keeps its
     * lower part unpanned: memory line 79 shows at line 479. */
    crtc(f, 0x18, 0x8f);
    crtc(f, 0x09, 0x00); /* line compare bit 9 clear (bit 8 is set in CR7): 399 */
    inb(f, 0x3da);
    outb(f, 0x3c0, 0x30);
    outb(f, 0x3c0, 0x21);
    gc(f, 1, 0x0f);
    gc(f, 8, 0x10);
    readb(f, 0xa0000 + 79 * 80);
    writeb(f, 0xa0000 + 79 * 80, 0);
    gc(f, 8, 0xff);
    gc(f, 1, 0x00);
    render(f, NULL);
    g_assert_cmphex(pixel(f, 0, 0), ==, 0xffffffu);
    g_assert_cmphex(pixel(f, 3, 479), ==, 0xffffffu);
    g_assert_cmphex(pixel(f, 0, 479), ==, BLACK);
}

static void test_option_rom(struct fixture *f, gconstpointer data)
{
    (void)data;
    gchar *dir = g_dir_make_tmp("vga-XXXXXX", NULL);
    gchar *path = g_build_filename(dir, "rom.bin", NULL);
    uint8_t image[5000] = {0x55, 0xaa, 10, 0xcb};
    image[4999] = 0x42;
    g_assert_true(g_file_set_contents(path, (const gchar *)image, sizeof(image), NULL));
    GError *error = NULL;
    g_assert_true(vga_load_rom(f->vga, path, &error));
    g_assert_no_error(error);
    g_assert_cmphex(readb(f, 0xc0000), ==, 0x55);
    g_assert_cmphex(readb(f, 0xc0000 + 4999), ==, 0x42);
    /* The VGA BIOS keeps variables in its segment: the copy is writable,
     * and a reset brings back the pristine image. */
    writeb(f, 0xc0000 + 4999, 0x99);
    g_assert_cmphex(readb(f, 0xc0000 + 4999), ==, 0x99);
    vga_reset(f->vga);
    g_assert_cmphex(readb(f, 0xc0000 + 4999), ==, 0x42);
    size_t size;
    const uint8_t *rom = vga_rom_image(f->vga, &size);
    g_assert_cmpuint(size, ==, 8192);
    g_assert_cmphex(rom[1], ==, 0xaa);

    /* Anything without the signature is refused. */
    image[0] = 0;
    g_assert_true(g_file_set_contents(path, (const gchar *)image, sizeof(image), NULL));
    g_assert_false(vga_load_rom(f->vga, path, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
    g_clear_error(&error);
    g_remove(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
}

static const struct vga_mode_regs mode_06 = {
    0x63,
    {0x01, 0x01, 0x00, 0x06},
    {0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0xc1, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x00, 0x96, 0xb9, 0xc2, 0xff},
    {0x00, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
     0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x01, 0x00, 0x01, 0x00},
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x0f, 0xff},
};

/* Mode 6, 640x200 in two colours: plane 0 only, odd lines at 0xba000. */
static void test_cga_mode6(struct fixture *f, gconstpointer data)
{
    (void)data;
    set_mode(f, &mode_06);
    writeb(f, 0xb8000 + 80, 0x81); /* line 2 */
    writeb(f, 0xba000 + 80, 0x18); /* line 3 */
    render(f, NULL);
    g_assert_cmpuint(f->fb->width, ==, 640);
    g_assert_cmpuint(f->fb->height, ==, 200);
    g_assert_cmphex(pixel(f, 0, 2), ==, 0xaaffaau); /* attribute 0x17 */
    g_assert_cmphex(pixel(f, 7, 2), ==, 0xaaffaau);
    g_assert_cmphex(pixel(f, 1, 2), ==, BLACK);
    g_assert_cmphex(pixel(f, 3, 3), ==, 0xaaffaau);
    g_assert_cmphex(pixel(f, 0, 3), ==, BLACK);
    g_assert_cmphex(pixel(f, 0, 1), ==, BLACK);
}

/* VBE's 4-bit planar modes: the window writes planes as in mode 12h, banked
 * in 64 KiB of plane addresses, and the scan-out reads them back. */
static void test_vbe_planar(struct fixture *f, gconstpointer data)
{
    (void)data;
    vbe_write(f, 3, 4);
    vbe_write(f, 1, 1280);
    vbe_write(f, 2, 1024);
    vbe_write(f, 4, 0x01);
    g_assert_false(memory_host_ptr(&f->mem, 0xa0000));
    seq(f, 2, 0x0f);
    seq(f, 4, 0x06);
    gc(f, 5, 0x02); /* write mode 2: the byte is a colour */
    gc(f, 6, 0x05);
    gc(f, 8, 0x80);
    /* 160 plane addresses per line: (24, 100) is address 16003, bit 7. */
    writeb(f, 0xa0000 + 100 * 160 + 3, 0x0c);
    render(f, NULL);
    g_assert_cmpuint(f->fb->width, ==, 1280);
    g_assert_cmphex(pixel(f, 24, 100), ==, 0xff5555u);
    g_assert_cmphex(pixel(f, 25, 100), ==, BLACK);
    take_damage(f, NULL);
    render(f, NULL);
    g_assert_cmpuint(take_damage(f, NULL), ==, 0);

    /* Bank 1: plane address 65536 is line 409, byte 96, so x = 768. */
    vbe_write(f, 5, 1);
    writeb(f, 0xa0000, 0x09);
    render(f, NULL);
    struct fb_rect r;
    g_assert_cmpuint(take_damage(f, &r), ==, 1);
    g_assert_cmpuint(r.y, <=, 409);
    g_assert_cmpuint(r.y + r.height, >, 409);
    g_assert_cmphex(pixel(f, 768, 409), ==, 0x5555ffu);
    g_assert_cmphex(pixel(f, 769, 409), ==, BLACK);
    g_assert_cmphex(pixel(f, 24, 100), ==, 0xff5555u);
}

/* ---- The window mapped straight onto video memory ---- */

static bool window_is_ram(struct fixture *f, uint32_t addr)
{
    return memory_host_ptr(&f->mem, addr) != NULL;
}

/* A write through the direct mapping leaves video memory exactly as the
 * handlers would: fixture g stays in mode 13h but reads in read mode 1,
 * which keeps its window on the handlers and does not change writes. */
static void test_direct_matches_handlers(struct fixture *f, gconstpointer data)
{
    (void)data;
    struct fixture g;
    fixture_set_up(&g, NULL);
    set_mode(f, &mode_13);
    set_mode(&g, &mode_13);
    gc(&g, 5, 0x48);
    g_assert_true(window_is_ram(f, 0xa0000));
    g_assert_true(window_is_ram(f, 0xaffff));
    g_assert_false(window_is_ram(&g, 0xa0000));

    uint32_t seed = 12345;
    for (unsigned i = 0; i < 4000; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned size = 1u << ((seed >> 29) % 3);
        uint32_t addr = 0xa0000 + (seed >> 8) % (0x10000 - size + 1);
        uint32_t value = seed * 2654435761u;
        memory_write(&f->mem, addr, size, value);
        memory_write(&g.mem, addr, size, value);
    }
    /* A word straddling the end of the 64 KiB map: its second byte is not
     * video memory in either. */
    memory_write(&f->mem, 0xaffff, 2, 0x5a6b);
    memory_write(&g.mem, 0xaffff, 2, 0x5a6b);
    g_assert_cmpmem(vga_vram(f->vga), 0x40000, vga_vram(g.vga), 0x40000);

    /* Reads in read mode 0 agree too; the bit mask keeps g on the
     * handlers and only concerns writes. */
    gc(&g, 5, 0x40);
    gc(&g, 8, 0x7f);
    g_assert_false(window_is_ram(&g, 0xa0000));
    for (uint32_t a = 0xa0000; a < 0xb0000; a += 97)
        g_assert_cmphex(memory_read(&f->mem, a, 2), ==, memory_read(&g.mem, a, 2));
    render(f, NULL);
    render(&g, NULL);
    for (unsigned y = 0; y < 200; y += 7) {
        for (unsigned x = 0; x < 320; x += 3)
            g_assert_cmphex(pixel(f, x, y), ==, pixel(&g, x, y));
    }
    fixture_tear_down(&g, NULL);
}

/* Every register that the condition names turns the mapping off, the
 * handlers then do what that register says, and undoing it maps the window
 * again. */
static void test_direct_mapping_switches(struct fixture *f, gconstpointer data)
{
    (void)data;
    g_assert_false(window_is_ram(f, 0xa0000)); /* text mode */
    g_assert_false(window_is_ram(f, 0xb8000));
    set_mode(f, &mode_13);
    g_assert_true(window_is_ram(f, 0xa0000));
    g_assert_false(window_is_ram(f, 0xb0000)); /* map select 1: 64 KiB at 0xa0000 */

    static const struct {
        uint16_t port;
        uint8_t index, off, on;
    } breakers[] = {
        {0x3c4, 2, 0x0e, 0x0f}, /* a plane masked off */
        {0x3c4, 4, 0x06, 0x0e}, /* chain 4 off */
        {0x3ce, 1, 0x01, 0x00}, /* set/reset enabled */
        {0x3ce, 3, 0x08, 0x00}, /* logical AND */
        {0x3ce, 3, 0x01, 0x00}, /* rotate */
        {0x3ce, 5, 0x41, 0x40}, /* write mode 1 */
        {0x3ce, 5, 0x42, 0x40}, /* write mode 2 */
        {0x3ce, 5, 0x48, 0x40}, /* read mode 1 */
        {0x3ce, 8, 0x7f, 0xff}, /* bit mask */
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(breakers); i++) {
        outw(f, breakers[i].port, (uint16_t)(breakers[i].off << 8 | breakers[i].index));
        g_assert_false(window_is_ram(f, 0xa0000));
        outw(f, breakers[i].port, (uint16_t)(breakers[i].on << 8 | breakers[i].index));
        g_assert_true(window_is_ram(f, 0xa0000));
    }
    outb(f, 0x3c2, 0x61); /* memory access disabled in the misc register */
    g_assert_false(window_is_ram(f, 0xa0000));
    g_assert_cmphex(readb(f, 0xa0010), ==, 0xff);
    outb(f, 0x3c2, 0x63);
    outb(f, 0x3c3, 0x00); /* video subsystem disabled */
    g_assert_false(window_is_ram(f, 0xa0000));
    outb(f, 0x3c3, 0x01);
    g_assert_true(window_is_ram(f, 0xa0000));

    /* The memory maps: the 128 KiB map shows the same 64 KiB twice. */
    gc(f, 6, 0x01);
    g_assert_true(window_is_ram(f, 0xa0000));
    g_assert_true(window_is_ram(f, 0xb0000));
    writeb(f, 0xb0123, 0x77);
    g_assert_cmphex(readb(f, 0xa0123), ==, 0x77);
    gc(f, 6, 0x0d); /* 0xb8000-0xbffff */
    g_assert_false(window_is_ram(f, 0xa0000));
    g_assert_false(window_is_ram(f, 0xb0000));
    g_assert_true(window_is_ram(f, 0xb8000));
    g_assert_cmphex(readb(f, 0xb8123), ==, 0x77);
    g_assert_cmphex(readb(f, 0xa0123), ==, 0xff);
    gc(f, 6, 0x05);

    /* Back to planar writes: the handlers apply the map mask. Plane 1 at
     * plane address 8 is chain-4 byte 9. */
    writeb(f, 0xa0008, 0x11);
    writeb(f, 0xa0009, 0x22);
    seq(f, 4, 0x06);
    seq(f, 2, 0x02);
    writeb(f, 0xa0008, 0xaa);
    seq(f, 2, 0x0f);
    gc(f, 4, 0);
    g_assert_cmphex(readb(f, 0xa0008), ==, 0x11);
    seq(f, 4, 0x0e);
    g_assert_true(window_is_ram(f, 0xa0000));
    g_assert_cmphex(readb(f, 0xa0008), ==, 0x11);
    g_assert_cmphex(readb(f, 0xa0009), ==, 0xaa);

    /* A write through the handlers in chain 4 (set/reset, all ones) lands
     * where the mapping reads it. */
    gc(f, 0, 0x0f);
    gc(f, 1, 0x0f);
    writeb(f, 0xa0100, 0x00);
    gc(f, 1, 0x00);
    g_assert_true(window_is_ram(f, 0xa0000));
    g_assert_cmphex(readb(f, 0xa0100), ==, 0xff);
    g_assert_cmphex(readb(f, 0xa0101), ==, 0x00);

    /* A reset goes back to text mode and the handlers. */
    vga_reset(f->vga);
    g_assert_false(window_is_ram(f, 0xa0000));
}

/* Writes through the mapping are damage; the mapping comes back with the
 * registers after a snapshot restore. */
static void test_direct_mapping_damage_and_restore(struct fixture *f, gconstpointer data)
{
    (void)data;
    set_mode(f, &mode_13);
    dac_set(f, 9, 0x3f, 0x3f, 0x3f);
    render(f, NULL);
    take_damage(f, NULL);
    render(f, NULL);
    g_assert_cmpuint(take_damage(f, NULL), ==, 0);
    writeb(f, 0xa0000 + 150 * 320 + 100, 9);
    render(f, NULL);
    struct fb_rect r;
    g_assert_cmpuint(take_damage(f, &r), ==, 1);
    g_assert_cmpuint(r.y, <=, 150);
    g_assert_cmpuint(r.y + r.height, >, 150);
    g_assert_cmpuint(r.height, <, 20);
    g_assert_cmphex(pixel(f, 100, 150), ==, 0xffffffu);

    /* Written through the mapping, then the mapping goes before a frame:
     * the write is still drawn. */
    writeb(f, 0xa0000 + 20 * 320 + 5, 9);
    gc(f, 8, 0x0f);
    g_assert_false(window_is_ram(f, 0xa0000));
    render(f, NULL);
    g_assert_cmpuint(take_damage(f, NULL), ==, 1);
    g_assert_cmphex(pixel(f, 5, 20), ==, 0xffffffu);
    gc(f, 8, 0xff);

    GByteArray *saved = g_byte_array_new();
    vmstate_save(saved, &vga_vmstate, f->vga);
    vga_reset(f->vga);
    g_assert_false(window_is_ram(f, 0xa0000));
    GError *error = NULL;
    g_assert_true(vmstate_load(saved->data, saved->len, &vga_vmstate, f->vga, &error));
    g_assert_no_error(error);
    vga_post_load(f->vga);
    g_assert_true(window_is_ram(f, 0xa0000));
    g_assert_cmphex(readb(f, 0xa0000 + 150 * 320 + 100), ==, 9);
    g_byte_array_free(saved, TRUE);
}

/* The bank of a packed-pixel VBE mode is mapped onto its 64 KiB of video
 * memory and follows the bank register. */
static void test_direct_mapping_vbe_bank(struct fixture *f, gconstpointer data)
{
    (void)data;
    vbe_write(f, 3, 8);
    vbe_write(f, 1, 640);
    vbe_write(f, 2, 480);
    vbe_write(f, 4, 0x01);
    g_assert_true(window_is_ram(f, 0xa0000));
    g_assert_false(window_is_ram(f, 0xb0000));
    vbe_write(f, 5, 3);
    memory_write(&f->mem, 0xa0010, 4, 0x04030201);
    g_assert_cmphex(memory_read(&f->mem, VGA_LFB_DEFAULT_ADDRESS + 3 * 0x10000 + 0x10, 4), ==,
                    0x04030201);
    dac_set(f, 2, 0x3f, 0, 0);
    render(f, NULL);
    /* Byte 3 * 65536 + 17 is pixel (17 + 196608 - 307 * 640, 307). */
    g_assert_cmphex(pixel(f, 3 * 0x10000 + 0x11 - 307 * 640, 307), ==, 0xff0000u);
    vbe_write(f, 5, 0);
    g_assert_cmphex(memory_read(&f->mem, 0xa0010, 4), ==, 0);
    vbe_write(f, 4, 0x00);
    g_assert_false(window_is_ram(f, 0xa0000));
}

static void test_framebuffer_damage(void)
{
    struct framebuffer *fb = framebuffer_new(100, 80);
    g_assert_nonnull(fb);
    g_assert_cmpint(fb->fd, >=, 0);
    GArray *rects = g_array_new(FALSE, FALSE, sizeof(struct fb_rect));
    g_assert_cmpuint(framebuffer_take_damage(fb, rects), ==, 0);

    /* Stacked runs of the same columns join; a rectangle inside another
     * adds nothing; everything is clipped to the picture. */
    framebuffer_add_damage(fb, 10, 10, 5, 5);
    framebuffer_add_damage(fb, 10, 15, 5, 5);
    framebuffer_add_damage(fb, 11, 12, 2, 2);
    framebuffer_add_damage(fb, 95, 70, 20, 20);
    framebuffer_add_damage(fb, 100, 0, 5, 5);
    g_assert_cmpuint(framebuffer_take_damage(fb, rects), ==, 2);
    struct fb_rect *r = &g_array_index(rects, struct fb_rect, 0);
    g_assert_cmpuint(r[0].x, ==, 10);
    g_assert_cmpuint(r[0].y, ==, 10);
    g_assert_cmpuint(r[0].width, ==, 5);
    g_assert_cmpuint(r[0].height, ==, 10);
    g_assert_cmpuint(r[1].x, ==, 95);
    g_assert_cmpuint(r[1].width, ==, 5);
    g_assert_cmpuint(r[1].height, ==, 10);
    g_array_set_size(rects, 0);

    /* Too many small rectangles become their bounding box. */
    for (unsigned i = 0; i < 70; i++)
        framebuffer_add_damage(fb, i, i, 1, 1);
    g_assert_cmpuint(framebuffer_take_damage(fb, rects), <, 70);
    g_array_set_size(rects, 0);

    /* A resize brings a new memfd of the new size and damages it all. */
    uint64_t generation = fb->generation;
    g_assert_true(framebuffer_resize(fb, 320, 200));
    g_assert_false(framebuffer_resize(fb, 320, 200));
    g_assert_cmpuint(fb->generation, ==, generation + 1);
    g_assert_cmpuint(fb->stride, ==, 320 * 4);
    g_assert_cmpint(lseek(fb->fd, 0, SEEK_END), ==, 320 * 200 * 4);
    framebuffer_row(fb, 199)[319] = 0x123456;
    g_assert_cmpuint(framebuffer_take_damage(fb, rects), ==, 1);
    r = &g_array_index(rects, struct fb_rect, 0);
    g_assert_cmpuint(r->width, ==, 320);
    g_assert_cmpuint(r->height, ==, 200);
    g_array_free(rects, TRUE);
    framebuffer_free(fb);
}

static void test_screenshot_png(struct fixture *f, gconstpointer data)
{
    (void)data;
    set_mode(f, &mode_13);
    dac_set(f, 4, 0x3f, 0x20, 0x00);
    for (unsigned i = 0; i < 320; i++)
        writeb(f, 0xa0000 + 100 * 320 + i, 4);
    render(f, NULL);
    gchar *dir = g_dir_make_tmp("vga-XXXXXX", NULL);
    gchar *path = g_build_filename(dir, "shot.png", NULL);
    GError *error = NULL;
    g_assert_true(display_screenshot_png(f->fb, path, &error));
    g_assert_no_error(error);
    gchar *bytes;
    gsize len;
    g_assert_true(g_file_get_contents(path, &bytes, &len, NULL));
    g_assert_cmpuint(len, >, 33);
    g_assert_cmpmem(bytes, 8, "\x89PNG\r\n\x1a\n", 8);
    /* IHDR: width and height, big-endian. */
    g_assert_cmphex((uint8_t)bytes[19], ==, 320 & 0xff);
    g_assert_cmphex((uint8_t)bytes[23], ==, 200);
    g_free(bytes);
    g_remove(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
}

static void test_display_update(void)
{
    struct memory mem;
    g_assert_true(memory_init(&mem, 1 << 20));
    struct ioport_bus *io = g_new0(struct ioport_bus, 1);
    struct vclock clock;
    vclock_init(&clock);
    struct display *display = display_new();
    struct vga *vga = vga_create(&mem, io, &clock, display);
    /* The VGA is the display's source and refreshes it from its timer. */
    vclock_set(&clock, NS_PER_SEC);
    g_assert_cmpint(vclock_run_timers(&clock), ==, 1);
    g_assert_cmpuint(display->frames, ==, 1);
    g_assert_cmpuint(display->fb->width, ==, 720);
    g_assert_cmpint(vclock_next_deadline(&clock), >, NS_PER_SEC);
    g_assert_cmpint(vclock_next_deadline(&clock), <=, NS_PER_SEC + NS_PER_SEC / 60);
    vga_destroy(vga);
    display_free(display);
    g_free(io);
    memory_destroy(&mem);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn)                                                                              \
    g_test_add("/vga/" name, struct fixture, NULL, fixture_set_up, fn, fixture_tear_down)
    ADD("text-glyph", test_text_glyph);
    ADD("text-blink", test_text_blink);
    ADD("text-vgabios-font", test_text_with_vgabios_font);
    ADD("write-modes", test_write_modes);
    ADD("mode13h", test_mode13h);
    ADD("mode-x", test_mode_x);
    ADD("split-screen", test_split_screen);
    ADD("cga-mode4", test_cga_mode4);
    ADD("dac-indexes", test_dac_indexes);
    ADD("attr-flipflop", test_attr_flipflop);
    ADD("input-status-timing", test_input_status_timing);
    ADD("vbe-lfb", test_vbe_lfb);
    ADD("dirty-tracking", test_dirty_tracking);
    ADD("cga-mode6", test_cga_mode6);
    ADD("mono-underline", test_mono_underline);
    ADD("panning", test_panning);
    ADD("option-rom", test_option_rom);
    ADD("gallery", test_gallery);
    ADD("screenshot-png", test_screenshot_png);
    ADD("vbe-planar", test_vbe_planar);
    ADD("direct-matches-handlers", test_direct_matches_handlers);
    ADD("direct-mapping-switches", test_direct_mapping_switches);
    ADD("direct-mapping-damage-and-restore", test_direct_mapping_damage_and_restore);
    ADD("direct-mapping-vbe-bank", test_direct_mapping_vbe_bank);
#undef ADD
    g_test_add_func("/vga/display-update", test_display_update);
    g_test_add_func("/display/framebuffer-damage", test_framebuffer_damage);
    return g_test_run();
}
