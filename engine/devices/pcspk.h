/* The PC speaker: PIT channel 2's output, gated by port 0x61, as sound. */
#ifndef VIVARIUM_PCSPK_H
#define VIVARIUM_PCSPK_H

struct pit;
struct audio;
struct vclock;
struct pcspk;

struct pcspk *pcspk_create(struct pit *pit, struct vclock *clock, struct audio *audio);
void pcspk_destroy(struct pcspk *spk);

#endif
