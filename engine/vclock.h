/* The virtual clock every device timer runs on.
 *
 * It follows host time while the machine runs and stands still while it is
 * paused, so a paused machine is frozen whole. Only the vCPU thread arms,
 * cancels and fires timers; any thread may read the time.
 */
#ifndef VIVARIUM_VCLOCK_H
#define VIVARIUM_VCLOCK_H

#include <stdbool.h>
#include <stdint.h>

#define NS_PER_SEC 1000000000LL

struct vtimer;
typedef void (*vtimer_fn)(void *opaque);

struct vtimer {
    int64_t deadline_ns;
    vtimer_fn fire;
    void *opaque;
    bool armed;
    struct vtimer *next;
};

struct vclock {
    int64_t offset_ns; /* virtual = host monotonic + offset while running */
    int64_t frozen_ns; /* the time shown while stopped */
    bool running;
    struct vtimer *timers; /* armed timers, soonest first */
};

void vclock_init(struct vclock *clock);
int64_t vclock_now(const struct vclock *clock);
void vclock_start(struct vclock *clock);
void vclock_stop(struct vclock *clock);
/* Jumps to a given time (restoring a snapshot). */
void vclock_set(struct vclock *clock, int64_t now_ns);
/* The same, moving armed timers with the clock, so that each keeps its
 * distance from now (restoring a snapshot). */
void vclock_jump(struct vclock *clock, int64_t now_ns);

/* The guest's time-stamp counter rate: the host's TSC rate, measured once,
 * so that a guest reading RDTSC sees the same rate under the software
 * backends as under KVM (and as under QEMU's TCG, for benchmarks). */
uint64_t vclock_tsc_hz(void);
/* Virtual time expressed in TSC ticks. */
uint64_t vclock_tsc(const struct vclock *clock);

void vtimer_init(struct vtimer *timer, vtimer_fn fire, void *opaque);
void vtimer_arm(struct vclock *clock, struct vtimer *timer, int64_t deadline_ns);
void vtimer_cancel(struct vclock *clock, struct vtimer *timer);

/* The soonest deadline, or INT64_MAX when no timer is armed. */
int64_t vclock_next_deadline(const struct vclock *clock);
/* Fires every timer whose deadline has passed; returns how many fired. */
int vclock_run_timers(struct vclock *clock);

#endif
