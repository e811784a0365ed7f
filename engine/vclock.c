/* The virtual clock. */
#include "vclock.h"

#include <time.h>

/* Bounds one call, so a timer that keeps re-arming itself in the past cannot
 * starve the CPU. */
#define VCLOCK_MAX_FIRES 1000

static int64_t host_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

void vclock_init(struct vclock *clock)
{
    clock->offset_ns = 0;
    clock->frozen_ns = 0;
    clock->running = false;
    clock->timers = NULL;
}

int64_t vclock_now(const struct vclock *clock)
{
    if (!clock->running)
        return clock->frozen_ns;
    return host_now_ns() + clock->offset_ns;
}

void vclock_start(struct vclock *clock)
{
    if (clock->running)
        return;
    clock->offset_ns = clock->frozen_ns - host_now_ns();
    clock->running = true;
}

void vclock_stop(struct vclock *clock)
{
    if (!clock->running)
        return;
    clock->frozen_ns = vclock_now(clock);
    clock->running = false;
}

void vclock_set(struct vclock *clock, int64_t now_ns)
{
    if (clock->running)
        clock->offset_ns = now_ns - host_now_ns();
    else
        clock->frozen_ns = now_ns;
}

void vtimer_init(struct vtimer *timer, vtimer_fn fire, void *opaque)
{
    timer->deadline_ns = 0;
    timer->fire = fire;
    timer->opaque = opaque;
    timer->armed = false;
    timer->next = NULL;
}

void vtimer_cancel(struct vclock *clock, struct vtimer *timer)
{
    if (!timer->armed)
        return;
    for (struct vtimer **link = &clock->timers; *link; link = &(*link)->next) {
        if (*link == timer) {
            *link = timer->next;
            break;
        }
    }
    timer->armed = false;
    timer->next = NULL;
}

void vtimer_arm(struct vclock *clock, struct vtimer *timer, int64_t deadline_ns)
{
    vtimer_cancel(clock, timer);
    struct vtimer **link = &clock->timers;
    while (*link && (*link)->deadline_ns <= deadline_ns)
        link = &(*link)->next;
    timer->deadline_ns = deadline_ns;
    timer->next = *link;
    timer->armed = true;
    *link = timer;
}

int64_t vclock_next_deadline(const struct vclock *clock)
{
    return clock->timers ? clock->timers->deadline_ns : INT64_MAX;
}

int vclock_run_timers(struct vclock *clock)
{
    int fired = 0;
    int64_t now = vclock_now(clock);
    /* A timer may re-arm itself from its callback; each is taken off the
     * list before it fires, so the loop always makes progress. */
    while (clock->timers && clock->timers->deadline_ns <= now && fired < VCLOCK_MAX_FIRES) {
        struct vtimer *timer = clock->timers;
        clock->timers = timer->next;
        timer->armed = false;
        timer->next = NULL;
        timer->fire(timer->opaque);
        fired++;
    }
    return fired;
}
