/* Linux evdev key codes to PC AT scan code set 1 ("qnum").
 *
 * The evdev numbering was made from set 1: KEY_ESC (1) to KEY_KPDOT (83) are the
 * set-1 make codes themselves. Above that the table follows the set-1 assignments
 * of the IBM PC AT / Microsoft "Keyboard Scan Code Specification" (rev. 1.3a),
 * with 0xe0-prefixed codes folded to 0x80 | code. Keysyms are never used: they
 * depend on the host layout, while the guest runs its own layout on raw keys. */
#include "viv-keymap.h"

static const guint8 evdev_above_kpdot[] = {
    [85 - 84] = 0x76,  /* KEY_ZENKAKUHANKAKU */
    [86 - 84] = 0x56,  /* KEY_102ND, the extra key left of Z */
    [87 - 84] = 0x57,  /* KEY_F11 */
    [88 - 84] = 0x58,  /* KEY_F12 */
    [89 - 84] = 0x73,  /* KEY_RO */
    [90 - 84] = 0x78,  /* KEY_KATAKANA */
    [91 - 84] = 0x77,  /* KEY_HIRAGANA */
    [92 - 84] = 0x79,  /* KEY_HENKAN */
    [93 - 84] = 0x70,  /* KEY_KATAKANAHIRAGANA */
    [94 - 84] = 0x7b,  /* KEY_MUHENKAN */
    [95 - 84] = 0x5c,  /* KEY_KPJPCOMMA */
    [96 - 84] = 0x9c,  /* KEY_KPENTER */
    [97 - 84] = 0x9d,  /* KEY_RIGHTCTRL */
    [98 - 84] = 0xb5,  /* KEY_KPSLASH */
    [99 - 84] = 0xb7,  /* KEY_SYSRQ (Print Screen) */
    [100 - 84] = 0xb8, /* KEY_RIGHTALT */
    [102 - 84] = 0xc7, /* KEY_HOME */
    [103 - 84] = 0xc8, /* KEY_UP */
    [104 - 84] = 0xc9, /* KEY_PAGEUP */
    [105 - 84] = 0xcb, /* KEY_LEFT */
    [106 - 84] = 0xcd, /* KEY_RIGHT */
    [107 - 84] = 0xcf, /* KEY_END */
    [108 - 84] = 0xd0, /* KEY_DOWN */
    [109 - 84] = 0xd1, /* KEY_PAGEDOWN */
    [110 - 84] = 0xd2, /* KEY_INSERT */
    [111 - 84] = 0xd3, /* KEY_DELETE */
    [113 - 84] = 0xa0, /* KEY_MUTE */
    [114 - 84] = 0xae, /* KEY_VOLUMEDOWN */
    [115 - 84] = 0xb0, /* KEY_VOLUMEUP */
    [116 - 84] = 0xde, /* KEY_POWER */
    [117 - 84] = 0x59, /* KEY_KPEQUAL */
    [119 - 84] = 0xc6, /* KEY_PAUSE: sent as E1 1D 45 by the engine */
    [121 - 84] = 0x7e, /* KEY_KPCOMMA */
    [124 - 84] = 0x7d, /* KEY_YEN */
    [125 - 84] = 0xdb, /* KEY_LEFTMETA */
    [126 - 84] = 0xdc, /* KEY_RIGHTMETA */
    [127 - 84] = 0xdd, /* KEY_COMPOSE (Menu) */
};

guint viv_keymap_evdev_to_qnum(guint evdev_code)
{
    if (evdev_code == 0)
        return 0;
    if (evdev_code <= 83)
        return evdev_code;
    if (evdev_code - 84 < G_N_ELEMENTS(evdev_above_kpdot))
        return evdev_above_kpdot[evdev_code - 84];
    return 0;
}

guint viv_keymap_hardware_to_qnum(guint hardware_keycode)
{
    if (hardware_keycode < 8)
        return 0;
    return viv_keymap_evdev_to_qnum(hardware_keycode - 8);
}

guint viv_keymap_function_key(guint n)
{
    if (n >= 1 && n <= 10)
        return VIV_QNUM_F1 + (n - 1);
    if (n == 11)
        return VIV_QNUM_F11;
    if (n == 12)
        return VIV_QNUM_F12;
    return 0;
}

guint viv_keymap_qnum_to_keysym(guint qnum)
{
    /* X11 keysyms (X11/keysymdef.h). */
    switch (qnum) {
    case VIV_QNUM_ESC:
        return 0xff1b; /* Escape */
    case VIV_QNUM_BACKSPACE:
        return 0xff08; /* BackSpace */
    case VIV_QNUM_LEFT_CTRL:
        return 0xffe3; /* Control_L */
    case VIV_QNUM_RIGHT_CTRL:
        return 0xffe4; /* Control_R */
    case VIV_QNUM_LEFT_ALT:
        return 0xffe9; /* Alt_L */
    case VIV_QNUM_RIGHT_ALT:
        return 0xffea; /* Alt_R */
    case VIV_QNUM_DELETE:
        return 0xffff; /* Delete */
    case VIV_QNUM_F11:
        return 0xffc8;
    case VIV_QNUM_F12:
        return 0xffc9;
    default:
        if (qnum >= VIV_QNUM_F1 && qnum <= VIV_QNUM_F10)
            return 0xffbe + (qnum - VIV_QNUM_F1); /* F1 to F10 */
        return 0;
    }
}
