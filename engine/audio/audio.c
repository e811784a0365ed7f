/* The mixer and the ring buffer between the vCPU thread and the host audio
 * thread. */
#include "audio.h"

#include <stdio.h>
#include <string.h>

#include "../vclock.h"
#include "pulse.h"

/* 10 ms mixing steps; the ring holds half a second, but the consumer never
 * lets more than AUDIO_MAX_DELAY_FRAMES wait in it. Two mixing steps are
 * enough to ride out the phase between mixer and server; with the server's
 * 30 ms that keeps the whole delay under 60 ms (docs/PERFORMANCE.md). */
#define AUDIO_MIX_PERIOD_NS    (10 * 1000 * 1000)
#define AUDIO_RING_FRAMES      (AUDIO_RATE / 2)
#define AUDIO_MAX_DELAY_FRAMES (AUDIO_RATE * 20 / 1000)

struct audio {
    struct vclock *clock;
    struct audio_source *sources;
    int64_t mixed_until_ns; /* virtual time of the next frame to render */
    int32_t *mix;
    unsigned mix_frames;

    int16_t *ring; /* AUDIO_RING_FRAMES stereo frames */
    /* Frame counters, only ever increasing; the producer writes head, the
     * consumer writes tail. */
    volatile gint64 head;
    volatile gint64 tail;

    struct pulse_output *pulse;
};

int64_t audio_mix_period_ns(void)
{
    return AUDIO_MIX_PERIOD_NS;
}

struct audio *audio_create(struct vclock *clock, const char *output, const char *stream_name,
                           GError **error)
{
    if (strcmp(output, "none") != 0 && strcmp(output, "pulse") != 0) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "unknown audio output '%s' (use pulse or none)", output);
        return NULL;
    }
    struct audio *audio = g_new0(struct audio, 1);
    audio->clock = clock;
    audio->ring = g_new0(int16_t, AUDIO_RING_FRAMES * AUDIO_CHANNELS);
    audio->mixed_until_ns = vclock_now(clock);
    if (strcmp(output, "pulse") == 0) {
        GError *pulse_error = NULL;
        audio->pulse = pulse_output_create(audio, stream_name, &pulse_error);
        if (!audio->pulse) {
            fprintf(stderr, "vivarium-engine: no sound: %s\n", pulse_error->message);
            g_error_free(pulse_error);
        }
    }
    return audio;
}

void audio_destroy(struct audio *audio)
{
    if (!audio)
        return;
    pulse_output_destroy(audio->pulse);
    g_free(audio->mix);
    g_free(audio->ring);
    g_free(audio);
}

bool audio_has_output(const struct audio *audio)
{
    return audio->pulse != NULL;
}

void audio_add_source(struct audio *audio, struct audio_source *source)
{
    source->next = audio->sources;
    audio->sources = source;
}

static int16_t clip16(int32_t v)
{
    return (int16_t)(v > INT16_MAX ? INT16_MAX : v < INT16_MIN ? INT16_MIN : v);
}

void audio_mix(struct audio *audio)
{
    int64_t now = vclock_now(audio->clock);
    int64_t frames64 = (now - audio->mixed_until_ns) * AUDIO_RATE / NS_PER_SEC;
    if (frames64 <= 0)
        return;
    /* After a long pause in host time (a stopped machine is frozen, so this is
     * only a host hiccup), render no more than the ring can hold. */
    if (frames64 > AUDIO_RING_FRAMES / 2) {
        audio->mixed_until_ns = now - (int64_t)(AUDIO_RING_FRAMES / 2) * NS_PER_SEC / AUDIO_RATE;
        frames64 = AUDIO_RING_FRAMES / 2;
    }
    unsigned frames = (unsigned)frames64;
    if (frames > audio->mix_frames) {
        g_free(audio->mix);
        audio->mix = g_new(int32_t, (gsize)frames * AUDIO_CHANNELS);
        audio->mix_frames = frames;
    }
    memset(audio->mix, 0, (size_t)frames * AUDIO_CHANNELS * sizeof(int32_t));
    for (struct audio_source *s = audio->sources; s; s = s->next)
        s->render(s->opaque, audio->mix, frames, audio->mixed_until_ns);
    audio->mixed_until_ns += (int64_t)frames * NS_PER_SEC / AUDIO_RATE;

    gint64 head, tail;
    __atomic_load(&audio->tail, &tail, __ATOMIC_ACQUIRE);
    __atomic_load(&audio->head, &head, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < frames; i++) {
        if (head - tail >= AUDIO_RING_FRAMES)
            break; /* the consumer is gone or stalled: drop the newest */
        int16_t *slot = &audio->ring[(head % AUDIO_RING_FRAMES) * AUDIO_CHANNELS];
        slot[0] = clip16(audio->mix[i * 2]);
        slot[1] = clip16(audio->mix[i * 2 + 1]);
        head++;
    }
    __atomic_store(&audio->head, &head, __ATOMIC_RELEASE);
}

unsigned audio_take(struct audio *audio, int16_t *out, unsigned frames)
{
    gint64 head, tail;
    __atomic_load(&audio->head, &head, __ATOMIC_ACQUIRE);
    __atomic_load(&audio->tail, &tail, __ATOMIC_RELAXED);
    /* Bounded latency: whatever waits beyond the limit is old and skipped. */
    if (head - tail > AUDIO_MAX_DELAY_FRAMES)
        tail = head - AUDIO_MAX_DELAY_FRAMES;
    unsigned n = 0;
    for (; n < frames && tail < head; n++, tail++) {
        const int16_t *slot = &audio->ring[(tail % AUDIO_RING_FRAMES) * AUDIO_CHANNELS];
        out[n * 2] = slot[0];
        out[n * 2 + 1] = slot[1];
    }
    __atomic_store(&audio->tail, &tail, __ATOMIC_RELEASE);
    return n;
}

unsigned audio_queued_frames(struct audio *audio)
{
    gint64 head, tail;
    __atomic_load(&audio->head, &head, __ATOMIC_ACQUIRE);
    __atomic_load(&audio->tail, &tail, __ATOMIC_RELAXED);
    return (unsigned)MIN(head - tail, (gint64)AUDIO_MAX_DELAY_FRAMES);
}
