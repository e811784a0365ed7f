/* Host key codes to the "qnum" codes of the engine's org.vivarium.Input
 * interface (PC AT scan code set 1, 0xe0-prefixed keys as 0x80 | code). */
#pragma once

#include <glib.h>

/* Keys the app sends on its own (the send-key menu, releasing the grab). */
#define VIV_QNUM_ESC        0x01u
#define VIV_QNUM_BACKSPACE  0x0eu
#define VIV_QNUM_LEFT_CTRL  0x1du
#define VIV_QNUM_LEFT_ALT   0x38u
#define VIV_QNUM_F1         0x3bu
#define VIV_QNUM_F10        0x44u
#define VIV_QNUM_F11        0x57u
#define VIV_QNUM_F12        0x58u
#define VIV_QNUM_RIGHT_CTRL 0x9du
#define VIV_QNUM_RIGHT_ALT  0xb8u
#define VIV_QNUM_DELETE     0xd3u

/* Returns the qnum code of the Linux evdev key code @evdev_code (KEY_* of
 * linux/input-event-codes.h), or 0 for keys a PC keyboard does not have. */
guint viv_keymap_evdev_to_qnum(guint evdev_code);

/* Returns the qnum code of an X11/Wayland hardware key code as GDK reports it
 * (evdev code + 8 under both the evdev X driver, Xwayland and Wayland), or 0. */
guint viv_keymap_hardware_to_qnum(guint hardware_keycode);

/* Returns the qnum code of function key F@n (1 to 12), or 0. */
guint viv_keymap_function_key(guint n);

/* Returns the X11 keysym of the US-layout key @qnum, for protocols that want one
 * (VNC) when the app sends a key on its own: the send-key menu's keys (Ctrl,
 * Alt, Delete, Backspace, Esc, F1 to F12). 0 for other keys. */
guint viv_keymap_qnum_to_keysym(guint qnum);
