/* Register-level tests of the PC speaker: PIT channel 2 and port 0x61 as
 * the guest programs them, and the sound the mixer takes from it. */
#include <glib.h>
#include <stdlib.h>

#include "audio/audio.h"
#include "devices/pcspk.h"
#include "devices/pit.h"
#include "ioport.h"
#include "vclock.h"

#define MIX_STEP_NS (10 * 1000 * 1000) /* 480 frames at 48 kHz */

struct fixture {
    struct ioport_bus io;
    struct vclock clock;
    struct pit *pit;
    struct audio *audio;
    struct pcspk *spk;
};

static struct fixture *fixture_new(void)
{
    struct fixture *f = g_new0(struct fixture, 1);
    ioport_bus_init(&f->io);
    vclock_init(&f->clock);
    struct irq_line irq0 = {0};
    f->pit = pit_create(&f->io, &f->clock, &irq0);
    f->audio = audio_create(&f->clock, "none", "test", NULL);
    f->spk = pcspk_create(f->pit, &f->clock, f->audio);
    return f;
}

static void fixture_free(struct fixture *f)
{
    pcspk_destroy(f->spk);
    audio_destroy(f->audio);
    pit_destroy(f->pit);
    g_free(f);
}

/* Channel 2 in mode 3 (square wave) with the given count, as BIOSes and
 * games program a beep. */
static void program_tone(struct fixture *f, unsigned count)
{
    ioport_write(&f->io, 0x43, 1, 0xb6);
    ioport_write(&f->io, 0x42, 1, count & 0xff);
    ioport_write(&f->io, 0x42, 1, count >> 8);
}

/* Mixes the next steps of virtual time and returns the left channel's
 * samples (the speaker is mono: right must equal left). */
static GArray *play(struct fixture *f, unsigned steps)
{
    GArray *samples = g_array_new(FALSE, FALSE, sizeof(int16_t));
    int16_t out[2 * 480];
    for (unsigned i = 0; i < steps; i++) {
        vclock_set(&f->clock, vclock_now(&f->clock) + MIX_STEP_NS);
        audio_mix(f->audio);
        unsigned got = audio_take(f->audio, out, 480);
        for (unsigned j = 0; j < got; j++) {
            g_assert_cmpint(out[2 * j], ==, out[2 * j + 1]);
            g_array_append_val(samples, out[2 * j]);
        }
    }
    return samples;
}

static unsigned sign_changes(GArray *samples)
{
    unsigned changes = 0;
    for (guint i = 1; i < samples->len; i++) {
        int16_t a = g_array_index(samples, int16_t, i - 1);
        int16_t b = g_array_index(samples, int16_t, i);
        if ((a < 0) != (b < 0))
            changes++;
    }
    return changes;
}

static int peak(GArray *samples)
{
    int most = 0;
    for (guint i = 0; i < samples->len; i++)
        most = MAX(most, abs(g_array_index(samples, int16_t, i)));
    return most;
}

/* Counting without the speaker data bit (port 0x61 bit 1) makes no sound. */
static void test_silent_until_enabled(void)
{
    struct fixture *f = fixture_new();
    program_tone(f, 1193);               /* 1000 Hz */
    ioport_write(&f->io, 0x61, 1, 0x01); /* gate open, speaker off */
    GArray *samples = play(f, 10);
    g_assert_cmpuint(samples->len, ==, 4800);
    g_assert_cmpint(peak(samples), ==, 0);
    g_array_unref(samples);
    fixture_free(f);
}

/* Gate and data bits set: a square wave of 1193182 / count Hz. */
static void test_tone_frequency(void)
{
    struct fixture *f = fixture_new();
    program_tone(f, 1193); /* 1000.15 Hz */
    ioport_write(&f->io, 0x61, 1, 0x03);
    GArray *samples = play(f, 10); /* 100 ms: 100 cycles, 200 sign changes */
    g_assert_cmpint(peak(samples), >, 1000);
    g_assert_cmpuint(sign_changes(samples), >=, 198);
    g_assert_cmpuint(sign_changes(samples), <=, 202);
    g_array_unref(samples);

    program_tone(f, 2712); /* 440 Hz */
    samples = play(f, 10);
    g_assert_cmpuint(sign_changes(samples), >=, 86);
    g_assert_cmpuint(sign_changes(samples), <=, 90);
    g_array_unref(samples);

    /* Clearing the data bit ends the tone. */
    ioport_write(&f->io, 0x61, 1, 0x01);
    samples = play(f, 5);
    g_assert_cmpuint(sign_changes(samples), <=, 1);
    g_array_unref(samples);
    fixture_free(f);
}

/* A count above hearing is a silent level, as on a real cone. */
static void test_ultrasonic_is_silent(void)
{
    struct fixture *f = fixture_new();
    program_tone(f, 40); /* 29.8 kHz */
    ioport_write(&f->io, 0x61, 1, 0x03);
    GArray *samples = play(f, 5);
    g_assert_cmpuint(sign_changes(samples), <=, 1);
    g_array_unref(samples);
    fixture_free(f);
}

/* Programs that move the cone themselves (bit 1 toggled with the gate
 * closed, OUT2 held high in mode 0 terminal count) make their own wave:
 * toggling every 1 ms is a 500 Hz square wave. */
static void test_toggled_cone(void)
{
    struct fixture *f = fixture_new();
    ioport_write(&f->io, 0x43, 1, 0xb0); /* channel 2, mode 0 */
    ioport_write(&f->io, 0x42, 1, 1);
    ioport_write(&f->io, 0x42, 1, 0);
    ioport_write(&f->io, 0x61, 1, 0x01); /* let it reach terminal count */
    vclock_set(&f->clock, vclock_now(&f->clock) + 10 * 1000);
    while (vclock_next_deadline(&f->clock) <= vclock_now(&f->clock))
        vclock_run_timers(&f->clock);
    ioport_write(&f->io, 0x61, 1, 0x00);

    GArray *samples = g_array_new(FALSE, FALSE, sizeof(int16_t));
    int16_t out[2 * 480];
    for (int ms = 0; ms < 100; ms++) {
        ioport_write(&f->io, 0x61, 1, ms % 2 ? 0x02 : 0x00);
        vclock_set(&f->clock, vclock_now(&f->clock) + 1000 * 1000);
        if (ms % 10 == 9) {
            audio_mix(f->audio);
            unsigned got = audio_take(f->audio, out, 480);
            for (unsigned j = 0; j < got; j++)
                g_array_append_val(samples, out[2 * j]);
        }
    }
    /* 50 cycles, so about 100 crossings once the filter has settled. */
    g_assert_cmpint(peak(samples), >, 1000);
    g_assert_cmpuint(sign_changes(samples), >=, 90);
    g_assert_cmpuint(sign_changes(samples), <=, 101);
    g_array_unref(samples);
    fixture_free(f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/pcspk/silent-until-enabled", test_silent_until_enabled);
    g_test_add_func("/pcspk/tone-frequency", test_tone_frequency);
    g_test_add_func("/pcspk/ultrasonic-is-silent", test_ultrasonic_is_silent);
    g_test_add_func("/pcspk/toggled-cone", test_toggled_cone);
    return g_test_run();
}
