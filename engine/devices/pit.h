/* The 8254 programmable interval timer (ports 0x40-0x43) and system control
 * port B (0x61), which carries channel 2's gate and the speaker data bit. */
#ifndef VIVARIUM_PIT_H
#define VIVARIUM_PIT_H

#include <stdbool.h>
#include <stdint.h>

#include "irq.h"
#include "vmstate.h"

struct ioport_bus;
struct vclock;
struct pit;

/* The 8254's input clock on a PC: 14.31818 MHz / 12. */
#define PIT_FREQ_HZ 1193182

/* Channel 2 as the PC speaker sees it. */
struct pit_speaker_state {
    unsigned mode;   /* 0-5 */
    uint32_t reload; /* the count the channel restarts from, 1-65536 (1-10000 in BCD) */
    bool counting;   /* a count has been loaded and the channel runs */
    bool gate;       /* port 0x61 bit 0 */
    bool data;       /* port 0x61 bit 1: the speaker follows OUT2 only when set */
    bool out;        /* OUT2 at the time of the query */
};

typedef void (*pit_speaker_fn)(void *opaque);

/* Claims ports 0x40-0x43 and 0x61. irq0 receives channel 0's OUT. */
struct pit *pit_create(struct ioport_bus *io, struct vclock *clock, const struct irq_line *irq0);
void pit_destroy(struct pit *pit);

/* Power-on state; also the machine reset hook. */
void pit_reset(void *pit);
/* After a snapshot restore: re-arms the timer of the next IRQ 0 edge. */
void pit_post_load(void *pit);

/* Sets a channel's GATE input; channels 0 and 1 are tied high on a PC and
 * channel 2's gate is port 0x61 bit 0. */
void pit_set_gate(struct pit *pit, int channel, bool level);

/* The OUT pin of a channel now. */
bool pit_get_out(struct pit *pit, int channel);

void pit_speaker_state(struct pit *pit, struct pit_speaker_state *state);

/* Called on the vCPU thread whenever channel 2's mode, count, gate or the
 * speaker data bit changes; one hook, NULL to remove it. */
void pit_set_speaker_hook(struct pit *pit, pit_speaker_fn fn, void *opaque);

extern const struct vmstate_desc pit_vmstate;

#endif
