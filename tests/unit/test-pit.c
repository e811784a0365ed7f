/* Register-level tests of the 8254 and port 0x61, on a virtual clock the
 * test sets tick by tick. */
#include <glib.h>

#include "devices/pit.h"
#include "ioport.h"
#include "vclock.h"

struct fixture {
    struct ioport_bus io;
    struct vclock clock;
    struct pit *pit;
    bool irq_level;
    int rising_edges;
    int speaker_changes;
};

static void irq0_changed(void *opaque, int n, bool level)
{
    struct fixture *f = opaque;
    (void)n;
    if (level && !f->irq_level)
        f->rising_edges++;
    f->irq_level = level;
}

static void speaker_changed(void *opaque)
{
    struct fixture *f = opaque;
    f->speaker_changes++;
}

static struct fixture *fixture_new(void)
{
    struct fixture *f = g_new0(struct fixture, 1);
    ioport_bus_init(&f->io);
    vclock_init(&f->clock);
    struct irq_line irq0 = {.handler = irq0_changed, .opaque = f};
    f->pit = pit_create(&f->io, &f->clock, &irq0);
    pit_set_speaker_hook(f->pit, speaker_changed, f);
    return f;
}

static void fixture_free(struct fixture *f)
{
    pit_destroy(f->pit);
    g_free(f);
}

static int64_t ns_of_tick(int64_t tick)
{
    return (tick * NS_PER_SEC + PIT_FREQ_HZ - 1) / PIT_FREQ_HZ;
}

/* Moves the clock to the given counter tick, firing due timers on the way
 * as the machine loop would. */
static void run_to_tick(struct fixture *f, int64_t tick)
{
    int64_t target = ns_of_tick(tick);
    while (vclock_next_deadline(&f->clock) <= target) {
        vclock_set(&f->clock, vclock_next_deadline(&f->clock));
        vclock_run_timers(&f->clock);
    }
    vclock_set(&f->clock, target);
    vclock_run_timers(&f->clock);
}

static void out8(struct fixture *f, uint16_t port, uint8_t value)
{
    ioport_write(&f->io, port, 1, value);
}

static uint8_t in8(struct fixture *f, uint16_t port)
{
    return (uint8_t)ioport_read(&f->io, port, 1);
}

static void write_count(struct fixture *f, int channel, uint16_t count)
{
    out8(f, 0x40 + channel, count & 0xff);
    out8(f, 0x40 + channel, count >> 8);
}

/* Counter latch command, then LSB and MSB. */
static uint16_t latch_count(struct fixture *f, int channel)
{
    out8(f, 0x43, (uint8_t)(channel << 6));
    uint8_t lsb = in8(f, 0x40 + channel);
    return (uint16_t)(lsb | in8(f, 0x40 + channel) << 8);
}

static void test_mode0_interrupt_on_terminal_count(void)
{
    struct fixture *f = fixture_new();
    out8(f, 0x43, 0x30); /* channel 0, LSB then MSB, mode 0, binary */
    g_assert_false(pit_get_out(f->pit, 0));
    write_count(f, 0, 100);
    /* The count is loaded on the next clock and counts down from there. */
    run_to_tick(f, 1);
    g_assert_cmpuint(latch_count(f, 0), ==, 100);
    run_to_tick(f, 51);
    g_assert_cmpuint(latch_count(f, 0), ==, 50);
    run_to_tick(f, 100);
    g_assert_false(pit_get_out(f->pit, 0));
    g_assert_cmpint(f->rising_edges, ==, 0);
    run_to_tick(f, 101);
    g_assert_true(pit_get_out(f->pit, 0));
    g_assert_cmpint(f->rising_edges, ==, 1);
    g_assert_true(f->irq_level);
    /* The counter wraps and goes on; OUT stays high. */
    run_to_tick(f, 103);
    g_assert_cmpuint(latch_count(f, 0), ==, 0xfffe);
    g_assert_true(pit_get_out(f->pit, 0));
    /* A new control word drops OUT. */
    out8(f, 0x43, 0x30);
    g_assert_false(f->irq_level);
    fixture_free(f);
}

static void test_mode2_rate_generator(void)
{
    struct fixture *f = fixture_new();
    out8(f, 0x43, 0x34); /* channel 0, mode 2 */
    /* Programming mode 2 raises OUT from mode 0's low: one edge. */
    g_assert_cmpint(f->rising_edges, ==, 1);
    f->rising_edges = 0;
    write_count(f, 0, 1000);
    run_to_tick(f, 1);
    g_assert_cmpuint(latch_count(f, 0), ==, 1000);
    run_to_tick(f, 2);
    g_assert_cmpuint(latch_count(f, 0), ==, 999);
    run_to_tick(f, 1000);
    g_assert_cmpuint(latch_count(f, 0), ==, 1);
    g_assert_false(pit_get_out(f->pit, 0)); /* low while the count is 1 */
    run_to_tick(f, 1001);
    g_assert_cmpuint(latch_count(f, 0), ==, 1000);
    g_assert_true(pit_get_out(f->pit, 0));
    g_assert_cmpint(f->rising_edges, ==, 1);
    run_to_tick(f, 1 + 10 * 1000);
    g_assert_cmpint(f->rising_edges, ==, 10);

    /* A new count takes effect at the end of the current period. */
    run_to_tick(f, 10001 + 300);
    write_count(f, 0, 500);
    run_to_tick(f, 10001 + 999);
    g_assert_cmpuint(latch_count(f, 0), ==, 1);
    run_to_tick(f, 11001);
    g_assert_cmpuint(latch_count(f, 0), ==, 500);
    g_assert_cmpint(f->rising_edges, ==, 11);
    run_to_tick(f, 11001 + 4 * 500);
    g_assert_cmpint(f->rising_edges, ==, 15);
    fixture_free(f);
}

static void test_mode3_square_wave(void)
{
    struct fixture *f = fixture_new();
    out8(f, 0x43, 0x36);
    f->rising_edges = 0;
    write_count(f, 0, 1000);
    run_to_tick(f, 1);
    g_assert_cmpuint(latch_count(f, 0), ==, 1000);
    run_to_tick(f, 2);
    g_assert_cmpuint(latch_count(f, 0), ==, 998); /* counts by two */
    g_assert_true(pit_get_out(f->pit, 0));
    run_to_tick(f, 500);
    g_assert_true(pit_get_out(f->pit, 0));
    run_to_tick(f, 501);
    g_assert_false(pit_get_out(f->pit, 0)); /* second half */
    g_assert_cmpuint(latch_count(f, 0), ==, 1000);
    run_to_tick(f, 1001);
    g_assert_true(pit_get_out(f->pit, 0));
    g_assert_cmpint(f->rising_edges, ==, 1);

    /* An odd count: high one tick longer than low. */
    out8(f, 0x43, 0x36);
    write_count(f, 0, 5);
    int64_t start = 1002;
    int high = 0;
    for (int t = 0; t < 5; t++) {
        run_to_tick(f, start + t);
        high += pit_get_out(f->pit, 0);
    }
    g_assert_cmpint(high, ==, 3);
    fixture_free(f);
}

static void test_read_back_and_null_count(void)
{
    struct fixture *f = fixture_new();
    out8(f, 0x43, 0x34);
    write_count(f, 0, 0x1234);
    /* Before the next clock the count is not in the counting element. */
    out8(f, 0x43, 0xc2); /* read-back: count and status of channel 0 */
    g_assert_cmphex(in8(f, 0x40), ==, 0x80 | 0x40 | 0x34);
    run_to_tick(f, 11);
    /* The latched count was taken at tick 0. */
    g_assert_cmphex(in8(f, 0x40), ==, 0x34);
    g_assert_cmphex(in8(f, 0x40), ==, 0x12);
    out8(f, 0x43, 0xc2);
    g_assert_cmphex(in8(f, 0x40), ==, 0x80 | 0x34); /* loaded: no null count */
    uint16_t count = in8(f, 0x40);
    count |= in8(f, 0x40) << 8;
    g_assert_cmphex(count, ==, 0x1234 - 10);

    /* Status only, leaving the count to read live. */
    out8(f, 0x43, 0xe2);
    g_assert_cmphex(in8(f, 0x40), ==, 0x80 | 0x34);
    run_to_tick(f, 21);
    count = in8(f, 0x40);
    count |= in8(f, 0x40) << 8;
    g_assert_cmphex(count, ==, 0x1234 - 20);

    /* A second latch before the first is read keeps the first. */
    out8(f, 0x43, 0x00);
    run_to_tick(f, 31);
    out8(f, 0x43, 0x00);
    count = in8(f, 0x40);
    count |= in8(f, 0x40) << 8;
    g_assert_cmphex(count, ==, 0x1234 - 20);
    fixture_free(f);
}

static void test_byte_access_and_bcd(void)
{
    struct fixture *f = fixture_new();
    out8(f, 0x43, 0x50); /* channel 1, LSB only, mode 0 */
    out8(f, 0x41, 0x50);
    run_to_tick(f, 1);
    g_assert_cmphex(in8(f, 0x41), ==, 0x50);
    g_assert_cmphex(in8(f, 0x41), ==, 0x50);

    out8(f, 0x43, 0x60); /* MSB only */
    out8(f, 0x41, 0x12);
    run_to_tick(f, 2);
    g_assert_cmphex(in8(f, 0x41), ==, 0x12);
    run_to_tick(f, 3);
    g_assert_cmphex(latch_count(f, 1) & 0xff, ==, 0x11); /* latched MSB of 0x11ff */

    out8(f, 0x43, 0x71); /* LSB/MSB, mode 0, BCD */
    write_count(f, 1, 0x1000);
    run_to_tick(f, 4 + 10);
    out8(f, 0x43, 0x40);
    g_assert_cmphex(in8(f, 0x41), ==, 0x90);
    g_assert_cmphex(in8(f, 0x41), ==, 0x09);
    /* BCD wraps through 0 to 9999. */
    run_to_tick(f, 4 + 1001);
    out8(f, 0x43, 0x40);
    g_assert_cmphex(in8(f, 0x41), ==, 0x99);
    g_assert_cmphex(in8(f, 0x41), ==, 0x99);
    fixture_free(f);
}

static void test_mode1_and_mode5_gate_triggered(void)
{
    struct fixture *f = fixture_new();
    out8(f, 0x43, 0xb2); /* channel 2, mode 1 */
    write_count(f, 2, 50);
    run_to_tick(f, 10);
    g_assert_true(pit_get_out(f->pit, 2)); /* waits for a trigger */
    out8(f, 0x61, 0x01);                   /* gate rises at tick 10 */
    run_to_tick(f, 11);
    g_assert_false(in8(f, 0x61) & 0x20);
    run_to_tick(f, 60);
    g_assert_false(in8(f, 0x61) & 0x20);
    run_to_tick(f, 61);
    g_assert_true(in8(f, 0x61) & 0x20);
    /* Retriggering restarts the one-shot. */
    out8(f, 0x61, 0x00);
    out8(f, 0x61, 0x01);
    run_to_tick(f, 62);
    g_assert_false(pit_get_out(f->pit, 2));

    out8(f, 0x43, 0xba); /* mode 5 */
    write_count(f, 2, 20);
    out8(f, 0x61, 0x00);
    run_to_tick(f, 100);
    out8(f, 0x61, 0x01);
    run_to_tick(f, 120);
    g_assert_true(pit_get_out(f->pit, 2));
    run_to_tick(f, 121);
    g_assert_false(pit_get_out(f->pit, 2)); /* the one-tick strobe */
    run_to_tick(f, 122);
    g_assert_true(pit_get_out(f->pit, 2));
    fixture_free(f);
}

static void test_mode4_software_strobe(void)
{
    struct fixture *f = fixture_new();
    out8(f, 0x43, 0x38);
    f->rising_edges = 0;
    write_count(f, 0, 30);
    run_to_tick(f, 30);
    g_assert_true(pit_get_out(f->pit, 0));
    run_to_tick(f, 31);
    g_assert_false(pit_get_out(f->pit, 0));
    run_to_tick(f, 32);
    g_assert_true(pit_get_out(f->pit, 0));
    g_assert_cmpint(f->rising_edges, ==, 1);
    run_to_tick(f, 100);
    g_assert_true(pit_get_out(f->pit, 0)); /* only once */
    g_assert_cmpint(f->rising_edges, ==, 1);
    fixture_free(f);
}

static void test_gate_suspends_mode0(void)
{
    struct fixture *f = fixture_new();
    out8(f, 0x43, 0xb0); /* channel 2, mode 0; gate low */
    write_count(f, 2, 100);
    run_to_tick(f, 50);
    g_assert_cmpuint(latch_count(f, 2), ==, 100);
    out8(f, 0x61, 0x01);
    run_to_tick(f, 81);
    g_assert_cmpuint(latch_count(f, 2), ==, 70);
    out8(f, 0x61, 0x00);
    run_to_tick(f, 500);
    g_assert_cmpuint(latch_count(f, 2), ==, 70);
    g_assert_false(in8(f, 0x61) & 0x20);
    out8(f, 0x61, 0x01);
    run_to_tick(f, 570);
    g_assert_false(in8(f, 0x61) & 0x20);
    run_to_tick(f, 571);
    g_assert_true(in8(f, 0x61) & 0x20);
    fixture_free(f);
}

static void test_speaker_state_and_port61(void)
{
    struct fixture *f = fixture_new();
    int changes = f->speaker_changes;
    out8(f, 0x43, 0xb6);
    write_count(f, 2, 1193); /* about 1 kHz */
    out8(f, 0x61, 0x03);
    g_assert_cmpint(f->speaker_changes, >, changes);
    struct pit_speaker_state state;
    pit_speaker_state(f->pit, &state);
    g_assert_cmpuint(state.mode, ==, 3);
    g_assert_cmpuint(state.reload, ==, 1193);
    g_assert_true(state.gate);
    g_assert_true(state.data);
    g_assert_true(state.counting);
    g_assert_cmphex(in8(f, 0x61) & 0x0f, ==, 0x03);

    changes = f->speaker_changes;
    out8(f, 0x61, 0x01);
    g_assert_cmpint(f->speaker_changes, ==, changes + 1);
    pit_speaker_state(f->pit, &state);
    g_assert_false(state.data);

    /* The refresh bit toggles with time. */
    bool refresh = in8(f, 0x61) & 0x10;
    vclock_set(&f->clock, vclock_now(&f->clock) + 15085);
    g_assert_cmpint(!!(in8(f, 0x61) & 0x10), !=, refresh);
    fixture_free(f);
}

static void test_edge_before_reprogramming_is_delivered(void)
{
    struct fixture *f = fixture_new();
    out8(f, 0x43, 0x34);
    write_count(f, 0, 1000);
    f->rising_edges = 0;
    /* The clock passes an edge but the timer has not run yet when the
     * guest reprograms the channel. */
    vclock_set(&f->clock, ns_of_tick(1500));
    out8(f, 0x43, 0x30);
    g_assert_cmpint(f->rising_edges, ==, 1);
    g_assert_false(f->irq_level);
    fixture_free(f);
}

static void test_small_divisor_is_bounded(void)
{
    struct fixture *f = fixture_new();
    out8(f, 0x43, 0x34);
    write_count(f, 0, 2);
    /* One millisecond at a divisor of 2 would be ~600 edges; timers fire
     * at most every 10 us. */
    int fired = 0;
    int64_t end = NS_PER_SEC / 1000;
    while (vclock_next_deadline(&f->clock) <= end) {
        vclock_set(&f->clock, vclock_next_deadline(&f->clock));
        fired += vclock_run_timers(&f->clock);
    }
    g_assert_cmpint(fired, <=, 101);
    g_assert_cmpint(f->rising_edges, >=, 90);
    fixture_free(f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/pit/mode0-interrupt-on-terminal-count",
                    test_mode0_interrupt_on_terminal_count);
    g_test_add_func("/pit/mode2-rate-generator", test_mode2_rate_generator);
    g_test_add_func("/pit/mode3-square-wave", test_mode3_square_wave);
    g_test_add_func("/pit/read-back-and-null-count", test_read_back_and_null_count);
    g_test_add_func("/pit/byte-access-and-bcd", test_byte_access_and_bcd);
    g_test_add_func("/pit/mode1-and-mode5-gate-triggered", test_mode1_and_mode5_gate_triggered);
    g_test_add_func("/pit/mode4-software-strobe", test_mode4_software_strobe);
    g_test_add_func("/pit/gate-suspends-mode0", test_gate_suspends_mode0);
    g_test_add_func("/pit/speaker-state-and-port61", test_speaker_state_and_port61);
    g_test_add_func("/pit/edge-before-reprogramming-is-delivered",
                    test_edge_before_reprogramming_is_delivered);
    g_test_add_func("/pit/small-divisor-is-bounded", test_small_divisor_is_bounded);
    return g_test_run();
}
