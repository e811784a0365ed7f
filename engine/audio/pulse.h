/* PulseAudio output: one playback stream per VM, fed from the mixer's ring. */
#ifndef VIVARIUM_PULSE_H
#define VIVARIUM_PULSE_H

#include <glib.h>

struct audio;
struct pulse_output;

struct pulse_output *pulse_output_create(struct audio *audio, const char *stream_name,
                                         GError **error);
void pulse_output_destroy(struct pulse_output *out);

#endif
