/* The Bochs VBE ("DISPI") extension: an index port at 0x1ce and a data port
 * at 0x1cf (0x1d0 is an alias) giving direct resolution, depth, bank and
 * panning control, as described in Bochs/QEMU's vbe_display_api.txt and
 * used by SeaBIOS's bochsvga.c. Pixels are stored linearly in video memory
 * from byte 0 (4 bits per pixel: planar, from plane address 0).
 */
#include <stdbool.h>

#include "../ioport.h"
#include "vga_internal.h"

#define VBE_PORT_INDEX 0x1ce
#define VBE_PORT_DATA  0x1cf

unsigned vga_vbe_bpp(const struct vga *vga)
{
    unsigned bpp = vga->vbe[VBE_INDEX_BPP];
    return bpp ? bpp : 8;
}

static unsigned vbe_bytes_per_pixel(unsigned bpp)
{
    return (bpp + 7) / 8;
}

static unsigned vbe_virt_width(const struct vga *vga)
{
    unsigned xres = vga->vbe[VBE_INDEX_XRES];
    unsigned virt = vga->vbe[VBE_INDEX_VIRT_WIDTH];
    return virt > xres ? virt : xres;
}

uint32_t vga_vbe_line_length(const struct vga *vga)
{
    unsigned bpp = vga_vbe_bpp(vga);
    if (bpp == 4)
        return vbe_virt_width(vga) / 8;
    return vbe_virt_width(vga) * vbe_bytes_per_pixel(bpp);
}

static unsigned vbe_virt_height(const struct vga *vga)
{
    uint32_t line = vga_vbe_line_length(vga);
    if (!line)
        return 0;
    uint32_t space = vga_vbe_bpp(vga) == 4 ? VGA_VRAM_SIZE / 4 : VGA_VRAM_SIZE;
    uint32_t lines = space / line;
    return lines > 0xffff ? 0xffff : lines;
}

uint32_t vga_vbe_start(const struct vga *vga)
{
    unsigned bpp = vga_vbe_bpp(vga);
    uint32_t line = vga_vbe_line_length(vga);
    uint32_t x = vga->vbe[VBE_INDEX_X_OFFSET], y = vga->vbe[VBE_INDEX_Y_OFFSET];
    if (bpp == 4)
        return y * line + x / 8;
    return y * line + x * vbe_bytes_per_pixel(bpp);
}

static uint16_t vbe_read_register(struct vga *vga, unsigned index)
{
    bool caps = vga->vbe[VBE_INDEX_ENABLE] & VBE_GETCAPS;
    switch (index) {
    case VBE_INDEX_XRES:
        return caps ? VBE_MAX_XRES : vga->vbe[index];
    case VBE_INDEX_YRES:
        return caps ? VBE_MAX_YRES : vga->vbe[index];
    case VBE_INDEX_BPP:
        return caps ? VBE_MAX_BPP : vga->vbe[index];
    case VBE_INDEX_VIRT_HEIGHT:
        return (uint16_t)vbe_virt_height(vga);
    case VBE_INDEX_VIDEO_MEMORY_64K:
        return VGA_VRAM_SIZE >> 16;
    default:
        return index < VBE_INDEX_COUNT ? vga->vbe[index] : 0;
    }
}

static void vbe_enable(struct vga *vga, uint16_t value)
{
    uint16_t old = vga->vbe[VBE_INDEX_ENABLE];
    vga->vbe[VBE_INDEX_ENABLE] = value;
    if ((value & VBE_ENABLED) && !(old & VBE_ENABLED)) {
        /* A new mode starts unpanned with the virtual width of the screen. */
        vga->vbe[VBE_INDEX_VIRT_WIDTH] = vga->vbe[VBE_INDEX_XRES];
        vga->vbe[VBE_INDEX_X_OFFSET] = 0;
        vga->vbe[VBE_INDEX_Y_OFFSET] = 0;
        if (!(value & VBE_NOCLEARMEM)) {
            uint64_t bytes = (uint64_t)vga_vbe_line_length(vga) * vga->vbe[VBE_INDEX_YRES];
            if (vga_vbe_bpp(vga) == 4)
                bytes *= 4;
            if (bytes > VGA_VRAM_SIZE)
                bytes = VGA_VRAM_SIZE;
            memset(vga->vram, 0, bytes);
        }
    } else if (!(value & VBE_ENABLED)) {
        vga->vbe[VBE_INDEX_BANK] = 0;
    }
    vga->force_full = true;
}

static void vbe_write_register(struct vga *vga, unsigned index, uint16_t value)
{
    switch (index) {
    case VBE_INDEX_ID:
        if (value >= VBE_ID0 && value <= VBE_ID5)
            vga->vbe[index] = value;
        break;
    case VBE_INDEX_XRES:
        if (value <= VBE_MAX_XRES)
            vga->vbe[index] = value;
        break;
    case VBE_INDEX_YRES:
        if (value <= VBE_MAX_YRES)
            vga->vbe[index] = value;
        break;
    case VBE_INDEX_BPP:
        if (value == 0)
            value = 8;
        if (value == 4 || value == 8 || value == 15 || value == 16 || value == 24 || value == 32)
            vga->vbe[index] = value;
        break;
    case VBE_INDEX_ENABLE:
        vbe_enable(vga, value);
        break;
    case VBE_INDEX_BANK: {
        /* Banks are 64 KiB of the CPU's view: bytes, or plane addresses in
         * the planar 4-bit modes. */
        uint32_t space = vga_vbe_bpp(vga) == 4 ? VGA_VRAM_SIZE / 4 : VGA_VRAM_SIZE;
        vga->vbe[index] = value & ((space >> 16) - 1);
        break;
    }
    case VBE_INDEX_VIRT_WIDTH:
    case VBE_INDEX_X_OFFSET:
    case VBE_INDEX_Y_OFFSET:
        vga->vbe[index] = value;
        break;
    default: /* VIRT_HEIGHT and the memory size are read-only */
        break;
    }
    if (index == VBE_INDEX_ENABLE || index == VBE_INDEX_BPP || index == VBE_INDEX_BANK)
        vga_update_direct_mapping(vga);
}

static uint32_t vbe_ioport_read(void *opaque, uint16_t port, unsigned size)
{
    struct vga *vga = opaque;
    uint32_t v = port == VBE_PORT_INDEX ? vga->vbe_index : vbe_read_register(vga, vga->vbe_index);
    return size == 1 ? v & 0xff : v;
}

static void vbe_ioport_write(void *opaque, uint16_t port, unsigned size, uint32_t value)
{
    struct vga *vga = opaque;
    (void)size;
    if (port == VBE_PORT_INDEX)
        vga->vbe_index = (uint16_t)value;
    else
        vbe_write_register(vga, vga->vbe_index, (uint16_t)value);
}

void vga_vbe_init(struct vga *vga)
{
    ioport_register(vga->io, VBE_PORT_INDEX, 3, "vga-vbe", vbe_ioport_read, vbe_ioport_write, vga);
}

void vga_vbe_reset(struct vga *vga)
{
    memset(vga->vbe, 0, sizeof(vga->vbe));
    vga->vbe[VBE_INDEX_ID] = VBE_ID5;
    vga->vbe[VBE_INDEX_BPP] = 8;
    vga->vbe[VBE_INDEX_XRES] = 640;
    vga->vbe[VBE_INDEX_YRES] = 480;
    vga->vbe_index = 0;
}
