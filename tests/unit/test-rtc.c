/* Register-level tests of the MC146818 RTC on a virtual clock the test
 * moves by hand. */
#include <glib.h>

#include "devices/rtc.h"
#include "ioport.h"
#include "vclock.h"

/* 2024-02-29 23:59:58 UTC, a Thursday, two seconds before March. */
#define LEAP_DAY_EVENING 1709251198

#define MS (NS_PER_SEC / 1000)

struct fixture {
    struct ioport_bus io;
    struct vclock clock;
    struct rtc *rtc;
    bool irq_level;
};

static void irq8_changed(void *opaque, int n, bool level)
{
    struct fixture *f = opaque;
    (void)n;
    f->irq_level = level;
}

static struct fixture *fixture_new(void)
{
    struct fixture *f = g_new0(struct fixture, 1);
    ioport_bus_init(&f->io);
    vclock_init(&f->clock);
    struct irq_line irq8 = {.handler = irq8_changed, .opaque = f};
    f->rtc = rtc_create(&f->io, &f->clock, &irq8, LEAP_DAY_EVENING);
    return f;
}

static void fixture_free(struct fixture *f)
{
    rtc_destroy(f->rtc);
    g_free(f);
}

static uint8_t cmos_read(struct fixture *f, uint8_t index)
{
    ioport_write(&f->io, 0x70, 1, index);
    return (uint8_t)ioport_read(&f->io, 0x71, 1);
}

static void cmos_write(struct fixture *f, uint8_t index, uint8_t value)
{
    ioport_write(&f->io, 0x70, 1, index);
    ioport_write(&f->io, 0x71, 1, value);
}

/* Advances the clock to `until`, firing timers on the way; each time IRQ8
 * is high the handler reads register C, as an interrupt handler would.
 * Returns the number of interrupts taken. */
static int run_until(struct fixture *f, int64_t until, uint8_t *flags_seen)
{
    int interrupts = 0;
    for (;;) {
        if (f->irq_level) {
            uint8_t flags = cmos_read(f, 0x0c);
            if (flags_seen)
                *flags_seen |= flags;
            interrupts++;
            g_assert_false(f->irq_level);
        }
        int64_t next = vclock_next_deadline(&f->clock);
        if (next > until)
            break;
        vclock_set(&f->clock, next);
        vclock_run_timers(&f->clock);
    }
    vclock_set(&f->clock, until);
    return interrupts;
}

static void test_time_and_calendar(void)
{
    struct fixture *f = fixture_new();
    /* Power-on format: BCD, 24-hour. */
    g_assert_cmphex(cmos_read(f, 0x00), ==, 0x58);
    g_assert_cmphex(cmos_read(f, 0x02), ==, 0x59);
    g_assert_cmphex(cmos_read(f, 0x04), ==, 0x23);
    g_assert_cmphex(cmos_read(f, 0x06), ==, 5);
    g_assert_cmphex(cmos_read(f, 0x07), ==, 0x29);
    g_assert_cmphex(cmos_read(f, 0x08), ==, 0x02);
    g_assert_cmphex(cmos_read(f, 0x09), ==, 0x24);
    g_assert_cmphex(cmos_read(f, 0x32), ==, 0x20);
    g_assert_cmphex(cmos_read(f, 0x0d), ==, 0x80); /* valid RAM and time */

    /* The clock advances with virtual time, across the leap day. */
    vclock_set(&f->clock, 999 * MS);
    g_assert_cmphex(cmos_read(f, 0x00), ==, 0x58);
    vclock_set(&f->clock, 2 * NS_PER_SEC);
    g_assert_cmphex(cmos_read(f, 0x00), ==, 0x00);
    g_assert_cmphex(cmos_read(f, 0x04), ==, 0x00);
    g_assert_cmphex(cmos_read(f, 0x07), ==, 0x01);
    g_assert_cmphex(cmos_read(f, 0x08), ==, 0x03);
    g_assert_cmphex(cmos_read(f, 0x06), ==, 6);

    /* Binary, 12-hour: 1 PM is 0x81. */
    vclock_set(&f->clock, 2 * NS_PER_SEC + 13 * 3600 * NS_PER_SEC);
    cmos_write(f, 0x0b, 0x04);
    g_assert_cmphex(cmos_read(f, 0x04), ==, 0x81);
    g_assert_cmphex(cmos_read(f, 0x07), ==, 1);
    g_assert_cmphex(cmos_read(f, 0x09), ==, 24);
    fixture_free(f);
}

static void test_set_and_write_time(void)
{
    struct fixture *f = fixture_new();
    cmos_write(f, 0x0b, 0x82); /* SET, BCD, 24-hour */
    cmos_write(f, 0x00, 0x30);
    cmos_write(f, 0x02, 0x15);
    cmos_write(f, 0x04, 0x08);
    cmos_write(f, 0x07, 0x31);
    cmos_write(f, 0x08, 0x12);
    cmos_write(f, 0x09, 0x99);
    cmos_write(f, 0x32, 0x19);
    vclock_set(&f->clock, 5 * NS_PER_SEC);
    g_assert_cmphex(cmos_read(f, 0x00), ==, 0x30); /* SET holds the time */
    cmos_write(f, 0x0b, 0x02);
    vclock_set(&f->clock, 5 * NS_PER_SEC + 999 * MS);
    g_assert_cmphex(cmos_read(f, 0x00), ==, 0x30);
    vclock_set(&f->clock, 6 * NS_PER_SEC);
    g_assert_cmphex(cmos_read(f, 0x00), ==, 0x31);

    /* Into the next century. */
    cmos_write(f, 0x04, 0x23);
    cmos_write(f, 0x02, 0x59);
    cmos_write(f, 0x00, 0x59);
    vclock_set(&f->clock, 7 * NS_PER_SEC);
    g_assert_cmphex(cmos_read(f, 0x09), ==, 0x00);
    g_assert_cmphex(cmos_read(f, 0x32), ==, 0x20);
    g_assert_cmphex(cmos_read(f, 0x08), ==, 0x01);
    g_assert_cmphex(cmos_read(f, 0x07), ==, 0x01);
    fixture_free(f);
}

static void test_periodic_interrupt_rate(void)
{
    struct fixture *f = fixture_new();
    cmos_write(f, 0x0a, 0x26); /* 1024 Hz */
    cmos_write(f, 0x0b, 0x42); /* PIE */
    uint8_t flags = 0;
    int interrupts = run_until(f, NS_PER_SEC, &flags);
    g_assert_cmpint(interrupts, ==, 1024);
    g_assert_cmphex(flags & 0xc0, ==, 0xc0);

    cmos_write(f, 0x0a, 0x2f); /* 2 Hz */
    interrupts = run_until(f, 3 * NS_PER_SEC, NULL);
    g_assert_cmpint(interrupts, ==, 4);

    cmos_write(f, 0x0a, 0x23); /* 8192 Hz */
    interrupts = run_until(f, 3 * NS_PER_SEC + 100 * MS, NULL);
    g_assert_cmpint(interrupts, >=, 819);
    g_assert_cmpint(interrupts, <=, 820);

    /* Rate 0 stops it. */
    cmos_write(f, 0x0a, 0x20);
    interrupts = run_until(f, 4 * NS_PER_SEC, NULL);
    g_assert_cmpint(interrupts, ==, 0);
    fixture_free(f);
}

static void test_flags_without_interrupts(void)
{
    struct fixture *f = fixture_new();
    cmos_write(f, 0x0a, 0x26);
    cmos_write(f, 0x0b, 0x02);
    vclock_set(&f->clock, 2 * MS);
    /* The periodic flag is set even though its interrupt is off. */
    g_assert_cmphex(cmos_read(f, 0x0c), ==, 0x40);
    g_assert_cmphex(cmos_read(f, 0x0c), ==, 0x00);
    g_assert_false(f->irq_level);
    vclock_set(&f->clock, 1500 * MS);
    g_assert_cmphex(cmos_read(f, 0x0c), ==, 0x50); /* and the update flag */
    /* Enabling an interrupt whose flag is set raises IRQ8 at once. */
    vclock_set(&f->clock, 1600 * MS);
    cmos_write(f, 0x0b, 0x42);
    g_assert_true(f->irq_level);
    g_assert_cmphex(cmos_read(f, 0x0c), ==, 0xc0);
    g_assert_false(f->irq_level);
    fixture_free(f);
}

static void test_update_in_progress(void)
{
    struct fixture *f = fixture_new();
    vclock_set(&f->clock, 500 * MS);
    g_assert_cmphex(cmos_read(f, 0x0a) & 0x80, ==, 0);
    vclock_set(&f->clock, NS_PER_SEC - 2229 * 1000);
    g_assert_cmphex(cmos_read(f, 0x0a) & 0x80, ==, 0);
    vclock_set(&f->clock, NS_PER_SEC - 2227 * 1000);
    g_assert_cmphex(cmos_read(f, 0x0a) & 0x80, ==, 0x80);
    /* The seconds change when the update cycle ends. */
    g_assert_cmphex(cmos_read(f, 0x00), ==, 0x58);
    vclock_set(&f->clock, NS_PER_SEC);
    g_assert_cmphex(cmos_read(f, 0x0a) & 0x80, ==, 0);
    g_assert_cmphex(cmos_read(f, 0x00), ==, 0x59);
    /* SET stops updates, and UIP with them. */
    cmos_write(f, 0x0b, 0x82);
    vclock_set(&f->clock, 2 * NS_PER_SEC - MS);
    g_assert_cmphex(cmos_read(f, 0x0a) & 0x80, ==, 0);
    fixture_free(f);
}

static void test_update_and_alarm_interrupts(void)
{
    struct fixture *f = fixture_new();
    cmos_write(f, 0x0a, 0x20); /* no periodic flag */
    cmos_write(f, 0x0b, 0x12); /* UIE */
    uint8_t flags = 0;
    g_assert_cmpint(run_until(f, 5 * NS_PER_SEC + 1, &flags), ==, 5);
    /* Update-ended, and the alarm flag too: the zeroed alarm registers
     * match midnight, which passed at 2 s. */
    g_assert_cmphex(flags, ==, 0xb0);

    /* An alarm at 00:00:08 on March 1st, 10 s after the start. */
    cmos_write(f, 0x0b, 0x22); /* AIE */
    cmos_write(f, 0x01, 0x08);
    cmos_write(f, 0x03, 0x00);
    cmos_write(f, 0x05, 0x00);
    g_assert_cmpint(run_until(f, 7 * NS_PER_SEC + 1, NULL), ==, 0);
    flags = 0;
    g_assert_cmpint(run_until(f, 10 * NS_PER_SEC - 1, &flags), ==, 0);
    g_assert_cmpint(run_until(f, 10 * NS_PER_SEC, &flags), ==, 1);
    g_assert_cmphex(flags & 0xa0, ==, 0xa0);

    /* Don't-care in all three fields: every second. */
    cmos_write(f, 0x01, 0xc0);
    cmos_write(f, 0x03, 0xff);
    cmos_write(f, 0x05, 0xc0);
    g_assert_cmpint(run_until(f, 13 * NS_PER_SEC, NULL), ==, 3);

    /* The hour fixed, minutes and seconds free: nothing until 01:00. */
    cmos_write(f, 0x05, 0x01);
    g_assert_cmpint(run_until(f, 60 * NS_PER_SEC, NULL), ==, 0);
    fixture_free(f);
}

static void test_divider_reset(void)
{
    struct fixture *f = fixture_new();
    cmos_write(f, 0x0a, 0x76); /* divider held in reset */
    vclock_set(&f->clock, 10 * NS_PER_SEC);
    g_assert_cmphex(cmos_read(f, 0x00), ==, 0x58);
    cmos_write(f, 0x0a, 0x26);
    /* The first update comes half a second after the release. */
    vclock_set(&f->clock, 10 * NS_PER_SEC + 499 * MS);
    g_assert_cmphex(cmos_read(f, 0x00), ==, 0x58);
    vclock_set(&f->clock, 10 * NS_PER_SEC + 500 * MS);
    g_assert_cmphex(cmos_read(f, 0x00), ==, 0x59);
    fixture_free(f);
}

static void test_cmos_memory_and_nmi_mask(void)
{
    struct fixture *f = fixture_new();
    g_assert_false(rtc_nmi_masked(f->rtc));
    ioport_write(&f->io, 0x70, 1, 0x80 | 0x40);
    ioport_write(&f->io, 0x71, 1, 0xa5);
    g_assert_true(rtc_nmi_masked(f->rtc));
    g_assert_cmphex(cmos_read(f, 0x40), ==, 0xa5);
    g_assert_false(rtc_nmi_masked(f->rtc));
    rtc_set_cmos(f->rtc, 0x15, 0x80);
    g_assert_cmphex(cmos_read(f, 0x15), ==, 0x80);
    g_assert_cmphex(rtc_get_cmos(f->rtc, 0x40), ==, 0xa5);
    /* Register D and C are read-only; the index wraps at 128. */
    cmos_write(f, 0x0d, 0x00);
    g_assert_cmphex(cmos_read(f, 0x0d), ==, 0x80);
    ioport_write(&f->io, 0x70, 1, 0x7f);
    ioport_write(&f->io, 0x71, 1, 0x11);
    g_assert_cmphex(rtc_get_cmos(f->rtc, 0x7f), ==, 0x11);

    /* A machine reset keeps memory and clears interrupt enables. */
    cmos_write(f, 0x0b, 0x72);
    rtc_reset(f->rtc);
    g_assert_cmphex(cmos_read(f, 0x0b), ==, 0x02);
    g_assert_cmphex(cmos_read(f, 0x40), ==, 0xa5);
    fixture_free(f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/rtc/time-and-calendar", test_time_and_calendar);
    g_test_add_func("/rtc/set-and-write-time", test_set_and_write_time);
    g_test_add_func("/rtc/periodic-interrupt-rate", test_periodic_interrupt_rate);
    g_test_add_func("/rtc/flags-without-interrupts", test_flags_without_interrupts);
    g_test_add_func("/rtc/update-in-progress", test_update_in_progress);
    g_test_add_func("/rtc/update-and-alarm-interrupts", test_update_and_alarm_interrupts);
    g_test_add_func("/rtc/divider-reset", test_divider_reset);
    g_test_add_func("/rtc/cmos-memory-and-nmi-mask", test_cmos_memory_and_nmi_mask);
    return g_test_run();
}
