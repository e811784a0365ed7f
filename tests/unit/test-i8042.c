/* Unit tests for the i8042 controller, the PS/2 keyboard and the mouse,
 * driven through ports 0x60 and 0x64. */
#include <glib.h>
#include <string.h>

#include "devices/i8042.h"
#include "ioport.h"
#include "vclock.h"

enum { LINE_IRQ1, LINE_IRQ12, LINE_A20, LINE_RESET, NR_LINES };

struct fixture {
    struct ioport_bus *io;
    struct vclock clock;
    struct irq_line lines[NR_LINES];
    bool level[NR_LINES];
    unsigned rises[NR_LINES];
    struct i8042 *kbc;
};

static void line_changed(void *opaque, int n, bool level)
{
    struct fixture *f = opaque;
    if (level && !f->level[n])
        f->rises[n]++;
    f->level[n] = level;
}

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->io = g_new0(struct ioport_bus, 1);
    ioport_bus_init(f->io);
    vclock_init(&f->clock);
    for (int i = 0; i < NR_LINES; i++)
        f->lines[i] = (struct irq_line){.handler = line_changed, .opaque = f, .n = i};
    struct i8042_lines lines = {
        .kbd_irq = &f->lines[LINE_IRQ1],
        .mouse_irq = &f->lines[LINE_IRQ12],
        .a20 = &f->lines[LINE_A20],
        .reset = &f->lines[LINE_RESET],
    };
    f->kbc = i8042_create(f->io, &f->clock, &lines);
}

static void fixture_destroy(struct fixture *f)
{
    i8042_destroy(f->kbc);
    g_free(f->io);
}

static uint8_t status(struct fixture *f)
{
    return (uint8_t)ioport_read(f->io, 0x64, 1);
}

static void command(struct fixture *f, uint8_t cmd)
{
    ioport_write(f->io, 0x64, 1, cmd);
}

static void data(struct fixture *f, uint8_t byte)
{
    ioport_write(f->io, 0x60, 1, byte);
}

/* Reads every byte waiting in the output buffer (at most max). */
static unsigned drain(struct fixture *f, uint8_t *out, unsigned max)
{
    unsigned n = 0;
    while ((status(f) & 0x01) && n < max)
        out[n++] = (uint8_t)ioport_read(f->io, 0x60, 1);
    return n;
}

static void expect_bytes(struct fixture *f, const uint8_t *want, unsigned n)
{
    uint8_t got[64];
    unsigned count = drain(f, got, sizeof(got));
    g_assert_cmpmem(got, count, want, n);
}

#define EXPECT(f, ...)                                                                             \
    do {                                                                                           \
        static const uint8_t want_[] = {__VA_ARGS__};                                              \
        expect_bytes(f, want_, sizeof(want_));                                                     \
    } while (0)

static void test_controller_self_test_and_command_byte(void)
{
    struct fixture f;
    fixture_init(&f);
    g_assert_cmphex(status(&f) & 0x05, ==, 0x00); /* empty, cold boot */
    /* Keyboard and mouse interrupts on, translation on. */
    command(&f, 0x20);
    EXPECT(&f, 0x43);
    g_assert_cmpuint(f.rises[LINE_IRQ1], ==, 1);
    command(&f, 0x60);
    data(&f, 0x00);
    command(&f, 0xaa);
    g_assert_cmphex(status(&f) & 0x0d, ==, 0x0d); /* full, system flag, command */
    EXPECT(&f, 0x55);
    command(&f, 0xab);
    EXPECT(&f, 0x00);
    command(&f, 0xa9);
    EXPECT(&f, 0x00);

    /* The system flag follows the command byte. */
    command(&f, 0x60);
    data(&f, 0x04);
    g_assert_cmphex(status(&f) & 0x04, ==, 0x04);
    command(&f, 0x20);
    EXPECT(&f, 0x04);
    command(&f, 0x60);
    data(&f, 0x00);
    g_assert_cmphex(status(&f) & 0x04, ==, 0);
    /* Other controller RAM bytes. */
    command(&f, 0x65);
    data(&f, 0x5a);
    command(&f, 0x25);
    EXPECT(&f, 0x5a);
    /* 0xa7/0xa8 and 0xad/0xae flip the interface disable bits. */
    command(&f, 0xa7);
    command(&f, 0xad);
    command(&f, 0x20);
    EXPECT(&f, 0x30);
    command(&f, 0xa8);
    command(&f, 0xae);
    command(&f, 0x20);
    EXPECT(&f, 0x00);
    /* A password is swallowed up to its NUL, not sent to the keyboard. */
    command(&f, 0xa4);
    EXPECT(&f, 0xf1);
    command(&f, 0xa5);
    data(&f, 'p');
    data(&f, 'w');
    data(&f, 0x00);
    g_assert_cmphex(status(&f) & 0x01, ==, 0);
    data(&f, 0xee);
    EXPECT(&f, 0xee);
    /* With interrupts off the controller's replies raised nothing more. */
    g_assert_cmpuint(f.rises[LINE_IRQ1], ==, 1);
    fixture_destroy(&f);
}

static void test_output_port_a20_and_reset(void)
{
    struct fixture f;
    fixture_init(&f);
    command(&f, 0xd0);
    EXPECT(&f, 0xcf);
    /* Output port write: A20 closes, then opens again. */
    command(&f, 0xd1);
    data(&f, 0xdd);
    g_assert_false(f.level[LINE_A20]);
    g_assert_cmpuint(f.rises[LINE_RESET], ==, 0);
    command(&f, 0xd0);
    EXPECT(&f, 0xcd);
    command(&f, 0xd1);
    data(&f, 0xdf);
    g_assert_true(f.level[LINE_A20]);
    command(&f, 0xdd);
    g_assert_false(f.level[LINE_A20]);
    command(&f, 0xdf);
    g_assert_true(f.level[LINE_A20]);
    /* Pulsing bit 0 resets the system; 0xff pulses nothing. */
    command(&f, 0xff);
    g_assert_cmpuint(f.rises[LINE_RESET], ==, 0);
    command(&f, 0xfe);
    g_assert_cmpuint(f.rises[LINE_RESET], ==, 1);
    command(&f, 0xd1);
    data(&f, 0xce);
    g_assert_cmpuint(f.rises[LINE_RESET], ==, 2);
    fixture_destroy(&f);
}

static void test_keyboard_reset_leds_identify(void)
{
    struct fixture f;
    fixture_init(&f);
    data(&f, 0xff);
    g_assert_true(f.level[LINE_IRQ1]);
    g_assert_cmphex(status(&f) & 0x29, ==, 0x01); /* keyboard data, not mouse */
    EXPECT(&f, 0xfa, 0xaa);
    g_assert_false(f.level[LINE_IRQ1]);
    g_assert_cmphex(status(&f) & 0x08, ==, 0); /* last write went to the data port */

    data(&f, 0xed);
    EXPECT(&f, 0xfa);
    data(&f, 0x07);
    EXPECT(&f, 0xfa);
    data(&f, 0xee);
    EXPECT(&f, 0xee);
    /* Identify: ab 83, which translation turns into ab 41. */
    data(&f, 0xf2);
    EXPECT(&f, 0xfa, 0xab, 0x41);
    command(&f, 0x60);
    data(&f, 0x01);
    data(&f, 0xf2);
    EXPECT(&f, 0xfa, 0xab, 0x83);
    /* Unknown commands ask for a resend; resend repeats the last byte. */
    data(&f, 0x42);
    EXPECT(&f, 0xfe);
    data(&f, 0xee);
    EXPECT(&f, 0xee);
    data(&f, 0xfe);
    EXPECT(&f, 0xee);
    fixture_destroy(&f);
}

static void test_scancodes_and_translation(void)
{
    struct fixture f;
    fixture_init(&f);
    /* Translation on (the reset command byte): the CPU sees set 1. */
    i8042_key_event(f.kbc, 0x1e, true); /* A */
    i8042_key_event(f.kbc, 0x1e, false);
    EXPECT(&f, 0x1e, 0x9e);
    i8042_key_event(f.kbc, 0xc8, true); /* Up */
    i8042_key_event(f.kbc, 0xc8, false);
    EXPECT(&f, 0xe0, 0x48, 0xe0, 0xc8);
    i8042_key_event(f.kbc, 0x41, true); /* F7, 0x83 in set 2 */
    EXPECT(&f, 0x41);
    /* The scan code set as the CPU reads it through translation. */
    data(&f, 0xf0);
    data(&f, 0x00);
    EXPECT(&f, 0xfa, 0xfa, 0x41);

    /* Translation off: raw set 2 with f0 break prefixes. */
    command(&f, 0x60);
    data(&f, 0x01);
    i8042_key_event(f.kbc, 0x1e, true);
    i8042_key_event(f.kbc, 0x1e, false);
    EXPECT(&f, 0x1c, 0xf0, 0x1c);
    i8042_key_event(f.kbc, 0xc8, false);
    EXPECT(&f, 0xe0, 0xf0, 0x75);
    i8042_key_event(f.kbc, 0x41, false);
    EXPECT(&f, 0xf0, 0x83);
    i8042_key_event(f.kbc, 0xc6, true); /* Pause */
    i8042_key_event(f.kbc, 0xc6, false);
    EXPECT(&f, 0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77);
    i8042_key_event(f.kbc, 0xb7, true); /* Print Screen alone */
    EXPECT(&f, 0xe0, 0x12, 0xe0, 0x7c);

    /* Set 1: codes straight through. */
    data(&f, 0xf0);
    data(&f, 0x01);
    EXPECT(&f, 0xfa, 0xfa);
    i8042_key_event(f.kbc, 0x9d, true); /* right Ctrl */
    EXPECT(&f, 0xe0, 0x1d);
    /* Set 3: one code per key, no prefixes. */
    data(&f, 0xf0);
    data(&f, 0x03);
    EXPECT(&f, 0xfa, 0xfa);
    i8042_key_event(f.kbc, 0x9d, false);
    i8042_key_event(f.kbc, 0xc8, true);
    EXPECT(&f, 0xf0, 0x58, 0x63);
    data(&f, 0xf0);
    data(&f, 0x00);
    EXPECT(&f, 0xfa, 0xfa, 0x03);
    /* A set that does not exist is refused. */
    data(&f, 0xf0);
    data(&f, 0x07);
    EXPECT(&f, 0xfa, 0xfe);
    fixture_destroy(&f);
}

static void test_keyboard_buffer_and_disable(void)
{
    struct fixture f;
    fixture_init(&f);
    command(&f, 0x60);
    data(&f, 0x01); /* no translation: one byte per make */
    /* The controller holds one byte and the keyboard 15 more; keys typed on
     * the host beyond that wait for room, in order, rather than being
     * lost because the guest was slow to read. */
    for (unsigned key = 0x10; key < 0x30; key++)
        i8042_key_event(f.kbc, key, true);
    uint8_t got[256];
    unsigned n = drain(&f, got, sizeof(got));
    g_assert_cmpuint(n, ==, 32);
    g_assert_cmphex(got[0], ==, 0x15);  /* Q in set 2 */
    g_assert_cmphex(got[16], ==, 0x23); /* D */
    g_assert_cmphex(got[31], ==, 0x2a); /* V */
    for (unsigned key = 0x10; key < 0x30; key++)
        i8042_key_event(f.kbc, key, false);
    n = drain(&f, got, sizeof(got));
    g_assert_cmpuint(n, ==, 64);
    g_assert_cmphex(got[0], ==, 0xf0);
    g_assert_cmphex(got[1], ==, 0x15);

    /* A guest that does not read at all: once the host's 128 waiting
     * events are full too, the keyboard overruns, and the overrun code
     * takes the buffer's last byte. */
    for (unsigned i = 0; i < 150; i++)
        i8042_key_event(f.kbc, 0x1e, true);
    n = drain(&f, got, sizeof(got));
    g_assert_cmpuint(n, ==, 1 + 15 + 1 + 128);
    for (unsigned i = 0; i < n; i++)
        g_assert_cmphex(got[i], ==, i == 16 ? 0x00 : 0x1c);
    i8042_key_event(f.kbc, 0x1e, false);
    EXPECT(&f, 0xf0, 0x1c);

    /* The keyboard interface disabled in the command byte holds data back. */
    command(&f, 0xad);
    i8042_key_event(f.kbc, 0x1e, true);
    g_assert_cmphex(status(&f) & 0x01, ==, 0);
    command(&f, 0xae);
    EXPECT(&f, 0x1c);
    /* A keyboard told to stop scanning sends nothing. */
    data(&f, 0xf5);
    EXPECT(&f, 0xfa);
    i8042_key_event(f.kbc, 0x1e, false);
    g_assert_cmphex(status(&f) & 0x01, ==, 0);
    data(&f, 0xf4);
    EXPECT(&f, 0xfa);
    fixture_destroy(&f);
}

static void test_typematic_repeat(void)
{
    struct fixture f;
    fixture_init(&f);
    /* Fastest rate (30/s), shortest delay (250 ms). */
    data(&f, 0xf3);
    data(&f, 0x00);
    EXPECT(&f, 0xfa, 0xfa);
    vclock_set(&f.clock, 1000);
    i8042_key_event(f.kbc, 0x1e, true);
    EXPECT(&f, 0x1e);
    vclock_set(&f.clock, 1000 + 249 * 1000000LL);
    vclock_run_timers(&f.clock);
    g_assert_cmphex(status(&f) & 0x01, ==, 0);
    vclock_set(&f.clock, 1000 + 251 * 1000000LL);
    vclock_run_timers(&f.clock);
    EXPECT(&f, 0x1e);
    /* The next repeat comes one period (8/240 s) later. */
    vclock_set(&f.clock, 1000 + (251 + 34) * 1000000LL);
    vclock_run_timers(&f.clock);
    EXPECT(&f, 0x1e);
    i8042_key_event(f.kbc, 0x1e, false);
    EXPECT(&f, 0x9e);
    vclock_set(&f.clock, 2 * NS_PER_SEC);
    vclock_run_timers(&f.clock);
    g_assert_cmphex(status(&f) & 0x01, ==, 0);

    /* While keys typed earlier wait on the host, a held key does not
     * repeat ahead of them. */
    for (unsigned key = 0x10; key <= 0x20; key++)
        i8042_key_event(f.kbc, key, true);
    vclock_set(&f.clock, 3 * NS_PER_SEC);
    vclock_run_timers(&f.clock);
    uint8_t got[32];
    g_assert_cmpuint(drain(&f, got, sizeof(got)), ==, 17);
    g_assert_cmphex(got[16], ==, 0x20);
    vclock_set(&f.clock, 3 * NS_PER_SEC + 34 * 1000000LL);
    vclock_run_timers(&f.clock);
    EXPECT(&f, 0x20);
    fixture_destroy(&f);
}

static void mouse_cmd(struct fixture *f, uint8_t byte)
{
    command(f, 0xd4);
    data(f, byte);
}

static void test_mouse_packets(void)
{
    struct fixture f;
    fixture_init(&f);
    mouse_cmd(&f, 0xff);
    g_assert_true(f.level[LINE_IRQ12]);
    g_assert_false(f.level[LINE_IRQ1]);
    g_assert_cmphex(status(&f) & 0x21, ==, 0x21);
    EXPECT(&f, 0xfa, 0xaa, 0x00);
    g_assert_false(f.level[LINE_IRQ12]);

    /* Disabled: motion is not reported. */
    i8042_mouse_event(f.kbc, 5, 5, 0, 0);
    g_assert_cmphex(status(&f) & 0x01, ==, 0);
    mouse_cmd(&f, 0xf4);
    EXPECT(&f, 0xfa);
    /* Right and down on screen: +x, -y on the wire. */
    i8042_mouse_event(f.kbc, 5, 3, 0, I8042_BUTTON_LEFT);
    EXPECT(&f, 0x29, 0x05, 0xfd);
    i8042_mouse_event(f.kbc, -2, -1, 0, 0);
    EXPECT(&f, 0x18, 0xfe, 0x01);
    /* Large motion is split into packets of at most 255. */
    i8042_mouse_event(f.kbc, 300, 0, 0, 0);
    EXPECT(&f, 0x08, 0xff, 0x00, 0x08, 45, 0x00);

    /* Status request: stream, enabled, 1:1, defaults 4 counts/mm, 100/s. */
    mouse_cmd(&f, 0xe6);
    EXPECT(&f, 0xfa);
    mouse_cmd(&f, 0xe9);
    EXPECT(&f, 0xfa, 0x20, 0x02, 100);
    mouse_cmd(&f, 0xe8);
    mouse_cmd(&f, 0x03);
    EXPECT(&f, 0xfa, 0xfa);
    mouse_cmd(&f, 0xe7);
    mouse_cmd(&f, 0xe9);
    EXPECT(&f, 0xfa, 0xfa, 0x30, 0x03, 100);
    /* 2:1 scaling maps 3 to 3 and 4 to 6. */
    i8042_mouse_event(f.kbc, 4, -3, 0, 0);
    EXPECT(&f, 0x08, 0x06, 0x03);

    /* Remote mode: nothing until polled. */
    mouse_cmd(&f, 0xe6);
    mouse_cmd(&f, 0xf0);
    EXPECT(&f, 0xfa, 0xfa);
    i8042_mouse_event(f.kbc, 7, 0, 0, I8042_BUTTON_RIGHT);
    g_assert_cmphex(status(&f) & 0x01, ==, 0);
    mouse_cmd(&f, 0xeb);
    EXPECT(&f, 0xfa, 0x0a, 0x07, 0x00);

    /* Mouse data is held back while the auxiliary interface is off. */
    mouse_cmd(&f, 0xea);
    EXPECT(&f, 0xfa);
    command(&f, 0xa7);
    i8042_mouse_event(f.kbc, 1, 0, 0, I8042_BUTTON_RIGHT);
    g_assert_cmphex(status(&f) & 0x01, ==, 0);
    command(&f, 0xa8);
    EXPECT(&f, 0x0a, 0x01, 0x00);
    fixture_destroy(&f);
}

static void set_rate(struct fixture *f, uint8_t rate)
{
    mouse_cmd(f, 0xf3);
    mouse_cmd(f, rate);
    EXPECT(f, 0xfa, 0xfa);
}

static void test_intellimouse(void)
{
    struct fixture f;
    fixture_init(&f);
    mouse_cmd(&f, 0xf2);
    EXPECT(&f, 0xfa, 0x00);
    /* The wrong knock changes nothing. */
    set_rate(&f, 200);
    set_rate(&f, 80);
    set_rate(&f, 100);
    mouse_cmd(&f, 0xf2);
    EXPECT(&f, 0xfa, 0x00);
    set_rate(&f, 200);
    set_rate(&f, 100);
    set_rate(&f, 80);
    mouse_cmd(&f, 0xf2);
    EXPECT(&f, 0xfa, 0x03);
    mouse_cmd(&f, 0xf4);
    EXPECT(&f, 0xfa);
    /* Four-byte packets with the wheel, clamped to -8..7. */
    i8042_mouse_event(f.kbc, 1, 0, 2, 0);
    EXPECT(&f, 0x08, 0x01, 0x00, 0x02);
    i8042_mouse_event(f.kbc, 0, 0, -1, 0);
    EXPECT(&f, 0x08, 0x00, 0x00, 0xff);
    /* Then the Explorer knock adds buttons 4 and 5. */
    set_rate(&f, 200);
    set_rate(&f, 200);
    set_rate(&f, 80);
    mouse_cmd(&f, 0xf2);
    EXPECT(&f, 0xfa, 0x04);
    i8042_mouse_event(f.kbc, 0, 0, 1, I8042_BUTTON_SIDE);
    EXPECT(&f, 0x08, 0x00, 0x00, 0x11);
    /* Reset forgets it all. */
    mouse_cmd(&f, 0xff);
    EXPECT(&f, 0xfa, 0xaa, 0x00);
    mouse_cmd(&f, 0xf2);
    EXPECT(&f, 0xfa, 0x00);
    /* Wrap mode echoes until 0xec. */
    mouse_cmd(&f, 0xee);
    mouse_cmd(&f, 0x12);
    mouse_cmd(&f, 0xec);
    EXPECT(&f, 0xfa, 0x12, 0xfa);
    fixture_destroy(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/i8042/controller/self-test-command-byte",
                    test_controller_self_test_and_command_byte);
    g_test_add_func("/i8042/controller/output-port", test_output_port_a20_and_reset);
    g_test_add_func("/i8042/keyboard/reset-leds-identify", test_keyboard_reset_leds_identify);
    g_test_add_func("/i8042/keyboard/scancodes", test_scancodes_and_translation);
    g_test_add_func("/i8042/keyboard/buffer-and-disable", test_keyboard_buffer_and_disable);
    g_test_add_func("/i8042/keyboard/typematic", test_typematic_repeat);
    g_test_add_func("/i8042/mouse/packets", test_mouse_packets);
    g_test_add_func("/i8042/mouse/intellimouse", test_intellimouse);
    return g_test_run();
}
