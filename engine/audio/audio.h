/* Sound out of the machine: sound devices render into a mixer on the vCPU
 * thread, in step with the virtual clock; the mixed 48 kHz stereo stream
 * crosses to the host's audio thread through a lock-free ring buffer. */
#ifndef VIVARIUM_AUDIO_H
#define VIVARIUM_AUDIO_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#define AUDIO_RATE     48000
#define AUDIO_CHANNELS 2

struct vclock;
struct audio;

/* A sound device's voice. render() adds frames of interleaved stereo samples
 * (16-bit range) to mix; start_ns is the virtual time of the first frame. */
struct audio_source {
    const char *name;
    void (*render)(void *opaque, int32_t *mix, unsigned frames, int64_t start_ns);
    void *opaque;
    struct audio_source *next;
};

/* Creates the mixer. output is "pulse" or "none"; stream_name names the
 * PulseAudio stream (the VM's name). When the audio server cannot be
 * reached the mixer still runs, silently, and says so once on stderr. */
struct audio *audio_create(struct vclock *clock, const char *output, const char *stream_name,
                           GError **error);
void audio_destroy(struct audio *audio);

/* Whether the mixed sound goes anywhere (a PulseAudio stream is open). */
bool audio_has_output(const struct audio *audio);

void audio_add_source(struct audio *audio, struct audio_source *source);

/* The mixer's periodic step, run on the vCPU thread by the machine: renders
 * every source up to the present virtual time. */
void audio_mix(struct audio *audio);
/* How often audio_mix() should run, in virtual nanoseconds. */
int64_t audio_mix_period_ns(void);

/* The consumer side, for output back ends (any thread, one consumer): takes
 * up to frames frames; returns how many were available. Frames beyond the
 * latency bound are dropped here, so delay cannot grow over time. */
unsigned audio_take(struct audio *audio, int16_t *out, unsigned frames);
/* Frames mixed but not yet taken (consumer side, for latency figures). */
unsigned audio_queued_frames(struct audio *audio);

#endif
