/* Key codes from the front ends to the guest's keyboard. Everything inside
 * the engine speaks "qnum": the PC AT scan code set 1 make code, with keys
 * that carry an 0xE0 prefix as 0x80 | code (the numbering QEMU uses, and the
 * app's D-Bus input interface). */
#ifndef VIVARIUM_KEYMAP_H
#define VIVARIUM_KEYMAP_H

#include <stdint.h>

#define QNUM_LEFT_CTRL  0x1d
#define QNUM_LEFT_SHIFT 0x2a
#define QNUM_LEFT_ALT   0x38
#define QNUM_RIGHT_CTRL 0x9d
#define QNUM_RIGHT_ALT  0xb8
#define QNUM_DELETE     0xd3
#define QNUM_PAUSE      0xc6

/* The qnum of an X11 keysym (as VNC clients send them), for a US layout;
 * shifted and unshifted symbols map to the same key. 0 when unknown. */
unsigned keymap_qnum_from_keysym(uint32_t keysym);

/* The qnum of a USB HID usage (the numbering of SDL_Scancode). 0 when
 * unknown. */
unsigned keymap_qnum_from_usb_hid(unsigned usage);

#endif
