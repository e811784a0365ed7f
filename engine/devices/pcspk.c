/* The PC speaker. The cone follows (port 0x61 bit 1) AND (8254 OUT2); with
 * bit 0 opening channel 2's gate, a mode 3 count makes a square wave of
 * 1193182 / count Hz, and programs that toggle bit 1 themselves make
 * whatever wave they like. IBM PC AT Technical Reference, "Speaker".
 *
 * The speaker has no state of its own worth saving: everything that shapes
 * the sound lives in the PIT, so this is an audio source, not a device with
 * a state table. Changes are timestamped on the virtual clock as they
 * happen and replayed sample by sample when the mixer asks, so the sound is
 * in step with the guest whatever the size of the mixing steps.
 */
#include "pcspk.h"

#include <glib.h>

#include "../audio/audio.h"
#include "../vclock.h"
#include "pit.h"

#define PCSPK_EVENTS    1024
#define PCSPK_AMPLITUDE 6000

/* One change of what drives the cone, from the given virtual time on. */
struct pcspk_event {
    int64_t time_ns;
    bool tone;        /* a square wave from channel 2 */
    double frequency; /* of the tone */
    bool level;       /* otherwise: the cone's position */
};

struct pcspk {
    struct pit *pit;
    struct vclock *clock;
    struct audio_source source;
    struct pcspk_event events[PCSPK_EVENTS];
    unsigned head, count; /* queued events not yet reached by the mixer */
    struct pcspk_event current;
    double phase; /* of the tone, in cycles */
    double dc;    /* the high-pass filter's running mean */
};

static struct pcspk_event event_from_pit(struct pcspk *spk)
{
    struct pit_speaker_state st;
    pit_speaker_state(spk->pit, &st);
    struct pcspk_event e = {.time_ns = vclock_now(spk->clock)};
    /* Modes 3 (and 2, a narrow pulse train) with the gate open and the
     * data bit set are tones; anything else is a level. Counts that give
     * tones above hearing are a silent level, as on a real speaker. */
    double frequency = st.reload ? (double)PIT_FREQ_HZ / st.reload : 0;
    if (st.gate && st.data && st.counting && (st.mode == 3 || st.mode == 2) && frequency >= 20 &&
        frequency <= 20000) {
        e.tone = true;
        e.frequency = frequency;
    } else {
        e.level = st.data && st.out;
    }
    return e;
}

static void speaker_changed(void *opaque)
{
    struct pcspk *spk = opaque;
    if (spk->count == PCSPK_EVENTS) {
        /* The mixer is not draining (no audio output): keep the newest. */
        spk->head = (spk->head + 1) % PCSPK_EVENTS;
        spk->count--;
    }
    spk->events[(spk->head + spk->count) % PCSPK_EVENTS] = event_from_pit(spk);
    spk->count++;
}

static void pcspk_render(void *opaque, int32_t *mix, unsigned frames, int64_t start_ns)
{
    struct pcspk *spk = opaque;
    const double step_ns = (double)NS_PER_SEC / AUDIO_RATE;
    for (unsigned i = 0; i < frames; i++) {
        int64_t t = start_ns + (int64_t)(i * step_ns);
        while (spk->count && spk->events[spk->head].time_ns <= t) {
            spk->current = spk->events[spk->head];
            spk->head = (spk->head + 1) % PCSPK_EVENTS;
            spk->count--;
        }
        double value;
        if (spk->current.tone) {
            value = spk->phase < 0.5 ? 1.0 : -1.0;
            spk->phase += spk->current.frequency / AUDIO_RATE;
            spk->phase -= (int)spk->phase;
        } else {
            value = spk->current.level ? 1.0 : 0.0;
        }
        /* A slow high-pass filter removes the DC of a cone held in one
         * place, so silence is silent whichever way the guest left it. */
        spk->dc += (value - spk->dc) * 0.001;
        int32_t sample = (int32_t)((value - spk->dc) * PCSPK_AMPLITUDE);
        mix[i * 2] += sample;
        mix[i * 2 + 1] += sample;
    }
}

struct pcspk *pcspk_create(struct pit *pit, struct vclock *clock, struct audio *audio)
{
    struct pcspk *spk = g_new0(struct pcspk, 1);
    spk->pit = pit;
    spk->clock = clock;
    spk->source =
        (struct audio_source){.name = "pc-speaker", .render = pcspk_render, .opaque = spk};
    pit_set_speaker_hook(pit, speaker_changed, spk);
    audio_add_source(audio, &spk->source);
    return spk;
}

void pcspk_destroy(struct pcspk *spk)
{
    if (!spk)
        return;
    pit_set_speaker_hook(spk->pit, NULL, NULL);
    g_free(spk);
}
