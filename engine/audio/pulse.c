/* PulseAudio output through libpulse's threaded main loop. The stream asks
 * for data from its own thread; we hand it what the mixer has produced and
 * silence for the rest, so a slow guest causes gaps, never a growing delay. */
#include "pulse.h"

#include <stdio.h>
#include <string.h>

#include <gio/gio.h>
#include <pulse/pulseaudio.h>

#include "audio.h"

/* Target latency: 30 ms in the server's buffer, refilled every 10 ms. */
#define PULSE_TARGET_MS 30
#define PULSE_MINREQ_MS 10

/* The delay from a sample being mixed to it leaving the server, sampled at
 * every refill when VIVARIUM_AUDIO_STATS is set and printed at exit: the
 * figure behind docs/PERFORMANCE.md's sound latency. */
struct latency_stats {
    bool enabled;
    unsigned count;
    double sum_ms, min_ms, max_ms;
    double first_second_ms, last_second_ms; /* means, to show any drift */
    unsigned first_count, last_count;
    pa_usec_t started, last_window;
};

struct pulse_output {
    struct audio *audio;
    pa_threaded_mainloop *loop;
    pa_context *context;
    pa_stream *stream;
    struct latency_stats stats;
};

static void sample_latency(struct pulse_output *out)
{
    struct latency_stats *st = &out->stats;
    pa_usec_t server_us;
    int negative;
    if (pa_stream_get_latency(out->stream, &server_us, &negative) < 0)
        return;
    double ms =
        (negative ? 0 : server_us / 1000.0) + audio_queued_frames(out->audio) * 1000.0 / AUDIO_RATE;
    pa_usec_t now = pa_rtclock_now();
    if (st->count == 0) {
        st->started = st->last_window = now;
        st->min_ms = st->max_ms = ms;
    }
    st->count++;
    st->sum_ms += ms;
    st->min_ms = MIN(st->min_ms, ms);
    st->max_ms = MAX(st->max_ms, ms);
    if (now - st->started < PA_USEC_PER_SEC) {
        st->first_second_ms += ms;
        st->first_count++;
    }
    if (now - st->last_window >= PA_USEC_PER_SEC) {
        st->last_window = now;
        st->last_second_ms = 0;
        st->last_count = 0;
    }
    st->last_second_ms += ms;
    st->last_count++;
}

static void print_latency(const struct latency_stats *st)
{
    if (!st->enabled || st->count == 0)
        return;
    fprintf(stderr,
            "vivarium-engine: sound latency (ring + server), %u refills: mean %.1f ms, "
            "min %.1f, max %.1f; first second %.1f ms, last second %.1f ms\n",
            st->count, st->sum_ms / st->count, st->min_ms, st->max_ms,
            st->first_count ? st->first_second_ms / st->first_count : 0,
            st->last_count ? st->last_second_ms / st->last_count : 0);
}

static void context_state_cb(pa_context *context, void *userdata)
{
    struct pulse_output *out = userdata;
    (void)context;
    pa_threaded_mainloop_signal(out->loop, 0);
}

static void stream_state_cb(pa_stream *stream, void *userdata)
{
    struct pulse_output *out = userdata;
    (void)stream;
    pa_threaded_mainloop_signal(out->loop, 0);
}

static void stream_write_cb(pa_stream *stream, size_t nbytes, void *userdata)
{
    struct pulse_output *out = userdata;
    void *data;
    if (pa_stream_begin_write(stream, &data, &nbytes) < 0 || !data)
        return;
    const size_t frame_bytes = AUDIO_CHANNELS * sizeof(int16_t);
    unsigned frames = (unsigned)(nbytes / frame_bytes);
    unsigned got = audio_take(out->audio, data, frames);
    memset((uint8_t *)data + got * frame_bytes, 0, (frames - got) * frame_bytes);
    pa_stream_write(stream, data, frames * frame_bytes, NULL, 0, PA_SEEK_RELATIVE);
    if (out->stats.enabled)
        sample_latency(out);
}

static bool wait_ready(struct pulse_output *out, GError **error)
{
    for (;;) {
        pa_context_state_t cs = pa_context_get_state(out->context);
        if (!PA_CONTEXT_IS_GOOD(cs)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "cannot connect to the PulseAudio server (%s)",
                        pa_strerror(pa_context_errno(out->context)));
            return false;
        }
        if (out->stream) {
            pa_stream_state_t ss = pa_stream_get_state(out->stream);
            if (!PA_STREAM_IS_GOOD(ss)) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                            "PulseAudio refused the playback stream (%s)",
                            pa_strerror(pa_context_errno(out->context)));
                return false;
            }
            if (ss == PA_STREAM_READY)
                return true;
        } else if (cs == PA_CONTEXT_READY) {
            return true;
        }
        pa_threaded_mainloop_wait(out->loop);
    }
}

struct pulse_output *pulse_output_create(struct audio *audio, const char *stream_name,
                                         GError **error)
{
    struct pulse_output *out = g_new0(struct pulse_output, 1);
    out->audio = audio;
    out->stats.enabled = g_getenv("VIVARIUM_AUDIO_STATS") != NULL;
    out->loop = pa_threaded_mainloop_new();
    out->context = pa_context_new(pa_threaded_mainloop_get_api(out->loop), "Vivarium");
    pa_context_set_state_callback(out->context, context_state_cb, out);
    if (pa_context_connect(out->context, NULL, PA_CONTEXT_NOAUTOSPAWN, NULL) < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "cannot connect to the PulseAudio server (%s)",
                    pa_strerror(pa_context_errno(out->context)));
        pa_context_unref(out->context);
        pa_threaded_mainloop_free(out->loop);
        g_free(out);
        return NULL;
    }
    pa_threaded_mainloop_lock(out->loop);
    pa_threaded_mainloop_start(out->loop);
    bool ok = wait_ready(out, error);
    if (ok) {
        const pa_sample_spec spec = {
            .format = PA_SAMPLE_S16LE, .rate = AUDIO_RATE, .channels = AUDIO_CHANNELS};
        const pa_buffer_attr attr = {
            .maxlength = (uint32_t)-1,
            .tlength = (uint32_t)pa_usec_to_bytes(PULSE_TARGET_MS * 1000, &spec),
            .prebuf = 0,
            .minreq = (uint32_t)pa_usec_to_bytes(PULSE_MINREQ_MS * 1000, &spec),
            .fragsize = (uint32_t)-1};
        out->stream = pa_stream_new(out->context, stream_name, &spec, NULL);
        pa_stream_set_state_callback(out->stream, stream_state_cb, out);
        pa_stream_set_write_callback(out->stream, stream_write_cb, out);
        pa_stream_connect_playback(out->stream, NULL, &attr,
                                   PA_STREAM_ADJUST_LATENCY | PA_STREAM_AUTO_TIMING_UPDATE |
                                       PA_STREAM_INTERPOLATE_TIMING,
                                   NULL, NULL);
        ok = wait_ready(out, error);
    }
    pa_threaded_mainloop_unlock(out->loop);
    if (!ok) {
        pulse_output_destroy(out);
        return NULL;
    }
    return out;
}

void pulse_output_destroy(struct pulse_output *out)
{
    if (!out)
        return;
    pa_threaded_mainloop_stop(out->loop);
    print_latency(&out->stats);
    if (out->stream) {
        pa_stream_disconnect(out->stream);
        pa_stream_unref(out->stream);
    }
    pa_context_disconnect(out->context);
    pa_context_unref(out->context);
    pa_threaded_mainloop_free(out->loop);
    g_free(out);
}
