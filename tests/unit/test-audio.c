/* Unit tests for the audio mixer and its ring buffer. */
#include <glib.h>

#include "audio/audio.h"
#include "vclock.h"

struct counting_source {
    struct audio_source source;
    int32_t level;
    unsigned frames_rendered;
};

static void render_constant(void *opaque, int32_t *mix, unsigned frames, int64_t start_ns)
{
    struct counting_source *s = opaque;
    (void)start_ns;
    for (unsigned i = 0; i < frames * AUDIO_CHANNELS; i++)
        mix[i] += s->level;
    s->frames_rendered += frames;
}

static void test_mixes_sources_and_clips(void)
{
    struct vclock clock;
    vclock_init(&clock);
    struct audio *audio = audio_create(&clock, "none", "test", NULL);
    struct counting_source a = {.level = 20000}, b = {.level = 20000};
    a.source = (struct audio_source){.name = "a", .render = render_constant, .opaque = &a};
    b.source = (struct audio_source){.name = "b", .render = render_constant, .opaque = &b};
    audio_add_source(audio, &a.source);
    audio_add_source(audio, &b.source);

    /* 10 ms of virtual time is 480 frames at 48 kHz. */
    vclock_set(&clock, 10 * 1000 * 1000);
    audio_mix(audio);
    g_assert_cmpuint(a.frames_rendered, ==, 480);
    g_assert_cmpuint(b.frames_rendered, ==, 480);

    int16_t out[2 * 1000];
    unsigned got = audio_take(audio, out, 1000);
    g_assert_cmpuint(got, ==, 480);
    /* 20000 + 20000 saturates rather than wrapping. */
    g_assert_cmpint(out[0], ==, INT16_MAX);
    g_assert_cmpint(out[959], ==, INT16_MAX);
    g_assert_cmpuint(audio_take(audio, out, 1000), ==, 0);
    audio_destroy(audio);
}

static void test_delay_is_bounded(void)
{
    struct vclock clock;
    vclock_init(&clock);
    struct audio *audio = audio_create(&clock, "none", "test", NULL);
    struct counting_source a = {.level = 1};
    a.source = (struct audio_source){.name = "a", .render = render_constant, .opaque = &a};
    audio_add_source(audio, &a.source);
    /* A consumer that stalled for 200 ms must not then play 200 ms late. */
    for (int step = 1; step <= 20; step++) {
        vclock_set(&clock, (int64_t)step * 10 * 1000 * 1000);
        audio_mix(audio);
    }
    int16_t out[2 * 48000];
    unsigned got = audio_take(audio, out, 48000);
    g_assert_cmpuint(got, <=, 48000 * 40 / 1000);
    g_assert_cmpuint(got, >, 0);
    audio_destroy(audio);
}

static void test_rejects_unknown_output(void)
{
    struct vclock clock;
    GError *error = NULL;
    vclock_init(&clock);
    g_assert_null(audio_create(&clock, "alsa-please", "test", &error));
    g_assert_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);
    g_error_free(error);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/audio/mixes-sources-and-clips", test_mixes_sources_and_clips);
    g_test_add_func("/audio/delay-is-bounded", test_delay_is_bounded);
    g_test_add_func("/audio/rejects-unknown-output", test_rejects_unknown_output);
    return g_test_run();
}
