/* --display sdl: the engine's own window. */
#ifndef VIVARIUM_SDL_H
#define VIVARIUM_SDL_H

#include <stdbool.h>

#include <glib.h>

struct machine;
struct display;
struct sdl_window;

/* Opens the window; call on the thread that runs the GLib main loop. */
struct sdl_window *sdl_window_create(struct machine *m, struct display *display,
                                     bool integer_scaling, GError **error);
void sdl_window_destroy(struct sdl_window *sdl);

#endif
