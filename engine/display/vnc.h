/* The engine's VNC server: --vnc HOST:PORT. */
#ifndef VIVARIUM_VNC_H
#define VIVARIUM_VNC_H

#include <glib.h>

struct machine;
struct display;
struct vnc_server;

/* Serves the display on address ("HOST:PORT", IPv4; loopback when HOST is
 * empty) with an optional password (VNC authentication: at most eight
 * characters count). Call on the vCPU thread, or before it starts. */
struct vnc_server *vnc_server_create(struct machine *m, struct display *display,
                                     const char *address, const char *password, GError **error);
void vnc_server_destroy(struct vnc_server *vnc);

#endif
