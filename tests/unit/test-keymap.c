/* The evdev -> PC set-1 ("qnum") key table of the app. */
#include "viv-keymap.h"

#include <glib.h>

static void test_keymap_evdev(void)
{
    static const struct {
        guint evdev;
        guint qnum;
    } cases[] = {
        {1, 0x01},   /* Esc */
        {14, 0x0e},  /* Backspace */
        {29, 0x1d},  /* Left Ctrl */
        {30, 0x1e},  /* A */
        {56, 0x38},  /* Left Alt */
        {83, 0x53},  /* Keypad . */
        {86, 0x56},  /* the 102nd key */
        {87, 0x57},  /* F11 */
        {88, 0x58},  /* F12 */
        {96, 0x9c},  /* Keypad Enter: E0 1C */
        {97, 0x9d},  /* Right Ctrl: E0 1D */
        {98, 0xb5},  /* Keypad /: E0 35 */
        {100, 0xb8}, /* Right Alt: E0 38 */
        {102, 0xc7}, /* Home */
        {103, 0xc8}, /* Up */
        {105, 0xcb}, /* Left */
        {106, 0xcd}, /* Right */
        {108, 0xd0}, /* Down */
        {111, 0xd3}, /* Delete */
        {119, 0xc6}, /* Pause */
        {125, 0xdb}, /* Left Super */
        {127, 0xdd}, /* Menu */
        {0, 0},      /* KEY_RESERVED */
        {84, 0},     /* unassigned */
        {101, 0},    /* KEY_LINEFEED: no PC key */
        {200, 0},    /* KEY_PLAYCD: not on a PC AT keyboard */
        {100000, 0}, /* nonsense */
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
        g_assert_cmphex(viv_keymap_evdev_to_qnum(cases[i].evdev), ==, cases[i].qnum);
}

static void test_keymap_hardware(void)
{
    /* X11 and Wayland key codes are evdev codes + 8. */
    g_assert_cmphex(viv_keymap_hardware_to_qnum(38), ==, 0x1e);
    g_assert_cmphex(viv_keymap_hardware_to_qnum(9), ==, 0x01);
    g_assert_cmphex(viv_keymap_hardware_to_qnum(7), ==, 0);
    g_assert_cmphex(viv_keymap_hardware_to_qnum(0), ==, 0);
}

static void test_keymap_function_keys(void)
{
    static const guint expected[] = {0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40,
                                     0x41, 0x42, 0x43, 0x44, 0x57, 0x58};

    for (guint n = 1; n <= 12; n++)
        g_assert_cmphex(viv_keymap_function_key(n), ==, expected[n - 1]);
    g_assert_cmphex(viv_keymap_function_key(0), ==, 0);
    g_assert_cmphex(viv_keymap_function_key(13), ==, 0);
}

static void test_keymap_keysyms(void)
{
    g_assert_cmphex(viv_keymap_qnum_to_keysym(VIV_QNUM_LEFT_CTRL), ==, 0xffe3);
    g_assert_cmphex(viv_keymap_qnum_to_keysym(VIV_QNUM_LEFT_ALT), ==, 0xffe9);
    g_assert_cmphex(viv_keymap_qnum_to_keysym(VIV_QNUM_DELETE), ==, 0xffff);
    g_assert_cmphex(viv_keymap_qnum_to_keysym(VIV_QNUM_BACKSPACE), ==, 0xff08);
    /* F1..F12 are consecutive keysyms although their scan codes are not. */
    for (guint n = 1; n <= 12; n++)
        g_assert_cmphex(viv_keymap_qnum_to_keysym(viv_keymap_function_key(n)), ==, 0xffbe + n - 1);
    g_assert_cmphex(viv_keymap_qnum_to_keysym(0x1e), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/keymap/evdev", test_keymap_evdev);
    g_test_add_func("/keymap/hardware", test_keymap_hardware);
    g_test_add_func("/keymap/function-keys", test_keymap_function_keys);
    g_test_add_func("/keymap/keysyms", test_keymap_keysyms);
    return g_test_run();
}
