/* The VGA adapter with the Bochs VBE extensions, modelled on QEMU's "stdvga".
 *
 * It claims the VGA ports (0x3b4/5, 0x3ba, 0x3c0-0x3cf, 0x3d4/5, 0x3da), the
 * Bochs VBE ports (0x1ce/0x1cf, and 0x1d0 as an alias of the data port), the
 * legacy memory window 0xa0000-0xbffff, and its 16 MiB of video memory as a
 * linear framebuffer (LFB). It paints the display given to vga_create() at
 * the guest's refresh rate (at most 60 Hz) from a virtual-clock timer.
 *
 * PCI identity for the PCI glue (QEMU stdvga, so guest drivers and the
 * SeaBIOS VGA BIOS recognise it):
 *   vendor 0x1234, device 0x1111, revision 2, class 0x030000 (VGA-compatible
 *   display controller), subsystem vendor 0x1af4, subsystem 0x1100;
 *   BAR0: the LFB, 32-bit prefetchable memory, VGA_VRAM_SIZE (16 MiB) —
 *         call vga_set_lfb_address() whenever the guest moves it (and with
 *         0 when memory decoding is turned off);
 *   BAR2: QEMU's 4 KiB MMIO register BAR (VGA ports at 0x400, VBE registers
 *         at 0x500) — optional, not implemented: leave BAR2 unimplemented;
 *   ROM BAR: the VGA BIOS image, vga_rom_image() (vgabios-stdvga.bin).
 * Before PCI enumeration the LFB sits at VGA_LFB_DEFAULT_ADDRESS. Without a
 * PCI function (the VGA BIOS found through fw_cfg only), SeaBIOS's VGA BIOS
 * assumes the Bochs ISA address instead: move it to VGA_LFB_ISA_ADDRESS.
 */
#ifndef VIVARIUM_DEVICES_VGA_H
#define VIVARIUM_DEVICES_VGA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "../vmstate.h"

struct memory;
struct memory_region;
struct ioport_bus;
struct vclock;
struct display;
struct framebuffer;
struct vga;

#define VGA_VRAM_SIZE           (16u * 1024 * 1024)
#define VGA_LFB_DEFAULT_ADDRESS 0xfd000000u
#define VGA_LFB_ISA_ADDRESS     0xe0000000u
#define VGA_ROM_ADDRESS         0xc0000u

#define VGA_PCI_VENDOR_ID           0x1234
#define VGA_PCI_DEVICE_ID           0x1111
#define VGA_PCI_REVISION            0x02
#define VGA_PCI_CLASS               0x030000
#define VGA_PCI_SUBSYSTEM_VENDOR_ID 0x1af4
#define VGA_PCI_SUBSYSTEM_ID        0x1100

extern const struct vmstate_desc vga_vmstate;

/* Creates the adapter in its power-on state (80x25 colour text registers)
 * and maps it: ports on io, the legacy window and the LFB on mem. display
 * may be NULL (no refresh timer then; tests call vga_render themselves). */
struct vga *vga_create(struct memory *mem, struct ioport_bus *io, struct vclock *clock,
                       struct display *display);
void vga_destroy(struct vga *vga);
/* Reset handler for machine_add_device. */
void vga_reset(void *vga);
/* After a snapshot restore: maps the LFB where the restored state says and
 * redraws everything. */
void vga_post_load(void *vga);
/* Memory that snapshots save whole: video memory, and the copy of the VGA
 * BIOS that the BIOS writes its variables into (NULL without a BIOS). */
uint8_t *vga_vram(struct vga *vga);
uint8_t *vga_rom_shadow(struct vga *vga, size_t *size);

/* Loads a VGA BIOS image (0x55 0xaa signature, at most 128 KiB) and maps a
 * writable copy at VGA_ROM_ADDRESS; see vga.c for why it is writable. */
bool vga_load_rom(struct vga *vga, const char *path, GError **error);
/* The pristine image, for a PCI ROM BAR or a fw_cfg "vgaroms/" file; NULL
 * if none was loaded. */
const uint8_t *vga_rom_image(struct vga *vga, size_t *size);

/* Moves the LFB (PCI BAR0); base 0 unmaps it. */
void vga_set_lfb_address(struct vga *vga, uint32_t base);
/* The LFB's RAM-like region: host = the whole video memory. */
struct memory_region *vga_lfb_region(struct vga *vga);

/* Forces the next frame to be drawn whole, e.g. after a snapshot restored
 * video memory behind the renderer's back. */
void vga_invalidate(struct vga *vga);

/* Puts the VGA BIOS's 8x16 font into plane 2, as the BIOS's start-up code
 * would: for kernels booted directly (--kernel), which find the adapter in
 * text mode and expect a font. Returns false when no VGA BIOS image is loaded
 * or no font is found in it. */
bool vga_load_rom_font(struct vga *vga);

/* Appends the text on screen, one line per character row, when the adapter
 * is in a text mode; returns false in graphics modes. */
bool vga_text_screen(struct vga *vga, GString *out);

/* Renders what changed into fb and records damage; the display source. */
void vga_render(void *vga, struct framebuffer *fb);

#endif
