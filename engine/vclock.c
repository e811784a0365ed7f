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

void vclock_jump(struct vclock *clock, int64_t now_ns)
{
    /* Timers still armed (ones the restored devices do not re-arm
     * themselves, such as the audio mixer's) keep their distance from now;
     * the list stays sorted. */
    int64_t shift = now_ns - vclock_now(clock);
    for (struct vtimer *t = clock->timers; t; t = t->next)
        t->deadline_ns += shift;
    vclock_set(clock, now_ns);
}

static uint64_t host_rdtsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    return (uint64_t)host_now_ns();
#endif
}

uint64_t vclock_tsc_hz(void)
{
    static uint64_t hz;
    if (hz)
        return hz;
    /* 20 ms against the monotonic clock gives the rate to well under 0.1%;
     * it is rounded to 1 MHz so that runs agree with each other. */
    int64_t t0 = host_now_ns();
    uint64_t c0 = host_rdtsc();
    int64_t t1;
    do {
        t1 = host_now_ns();
    } while (t1 - t0 < 20 * 1000 * 1000);
    uint64_t c1 = host_rdtsc();
    uint64_t measured = (c1 - c0) * (uint64_t)NS_PER_SEC / (uint64_t)(t1 - t0);
    uint64_t rounded = (measured + 500000) / 1000000 * 1000000;
    hz = rounded ? rounded : 1000000000;
    return hz;
}

uint64_t vclock_tsc(const struct vclock *clock)
{
    uint64_t ns = (uint64_t)vclock_now(clock);
    uint64_t hz = vclock_tsc_hz();
    /* ns * hz / 1e9 without overflow for centuries of virtual time. */
    return ns / NS_PER_SEC * hz + ns % NS_PER_SEC * hz / NS_PER_SEC;
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
