/* Unit tests for the virtual clock and its timers. */
#include <glib.h>

#include "vclock.h"

struct fire_log {
    int order[4];
    int count;
};

struct tagged_timer {
    struct vtimer timer;
    struct fire_log *log;
    int tag;
};

static void record_fire(void *opaque)
{
    struct tagged_timer *t = opaque;
    t->log->order[t->log->count++] = t->tag;
}

static void test_stopped_clock_is_frozen(void)
{
    struct vclock clock;
    vclock_init(&clock);
    vclock_set(&clock, 5000);
    g_assert_cmpint(vclock_now(&clock), ==, 5000);
    g_usleep(2000);
    g_assert_cmpint(vclock_now(&clock), ==, 5000);
    vclock_start(&clock);
    g_usleep(2000);
    int64_t running = vclock_now(&clock);
    g_assert_cmpint(running, >=, 5000 + 2000 * 1000);
    vclock_stop(&clock);
    int64_t stopped = vclock_now(&clock);
    g_usleep(2000);
    g_assert_cmpint(vclock_now(&clock), ==, stopped);
}

static void test_timers_fire_in_deadline_order(void)
{
    struct vclock clock;
    struct fire_log log = {0};
    struct tagged_timer a = {.log = &log, .tag = 1}, b = {.log = &log, .tag = 2},
                        c = {.log = &log, .tag = 3};
    vclock_init(&clock);
    vtimer_init(&a.timer, record_fire, &a);
    vtimer_init(&b.timer, record_fire, &b);
    vtimer_init(&c.timer, record_fire, &c);
    vtimer_arm(&clock, &a.timer, 300);
    vtimer_arm(&clock, &b.timer, 100);
    vtimer_arm(&clock, &c.timer, 200);
    g_assert_cmpint(vclock_next_deadline(&clock), ==, 100);
    vtimer_cancel(&clock, &c.timer);
    vtimer_arm(&clock, &c.timer, 400);

    vclock_set(&clock, 250);
    g_assert_cmpint(vclock_run_timers(&clock), ==, 1);
    vclock_set(&clock, 1000);
    g_assert_cmpint(vclock_run_timers(&clock), ==, 2);
    g_assert_cmpint(log.count, ==, 3);
    g_assert_cmpint(log.order[0], ==, 2);
    g_assert_cmpint(log.order[1], ==, 1);
    g_assert_cmpint(log.order[2], ==, 3);
    g_assert_cmpint(vclock_next_deadline(&clock), ==, INT64_MAX);
}

struct rearming_timer {
    struct vtimer timer;
    struct vclock *clock;
    int fires;
};

static void rearm_in_past(void *opaque)
{
    struct rearming_timer *t = opaque;
    t->fires++;
    vtimer_arm(t->clock, &t->timer, 0);
}

static void test_runaway_timer_is_bounded(void)
{
    struct vclock clock;
    vclock_init(&clock);
    struct rearming_timer t = {.clock = &clock};
    vtimer_init(&t.timer, rearm_in_past, &t);
    vtimer_arm(&clock, &t.timer, 0);
    int fired = vclock_run_timers(&clock);
    g_assert_cmpint(fired, >, 0);
    g_assert_cmpint(fired, ==, t.fires);
    g_assert_cmpint(fired, <=, 1000);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vclock/stopped-clock-is-frozen", test_stopped_clock_is_frozen);
    g_test_add_func("/vclock/timers-fire-in-deadline-order", test_timers_fire_in_deadline_order);
    g_test_add_func("/vclock/runaway-timer-is-bounded", test_runaway_timer_is_bounded);
    return g_test_run();
}
