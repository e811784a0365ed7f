/* One vivarium-engine process and the peer-to-peer D-Bus connection to it. */
#pragma once

#include "viv-dbus-generated.h"

#include <gio/gio.h>

G_BEGIN_DECLS

#define VIV_TYPE_ENGINE (viv_engine_get_type())
G_DECLARE_FINAL_TYPE(VivEngine, viv_engine, VIV, ENGINE, GObject)

VivEngine *viv_engine_new(void);

/* The program that is started: $VIVARIUM_ENGINE if set, else the installed
 * vivarium-engine. */
const char *viv_engine_program(void);

/* Starts the engine with @options (its command line after the program name and
 * the --dbus-fd option) and begins the D-Bus handshake without waiting for it.
 * "ready" follows when the interfaces can be used, or "exited" if the engine
 * dies first. Fails only when the program cannot be started at all. */
gboolean viv_engine_spawn(VivEngine *self, const char *const *options, GError **error);

/* How long spawn may take to "ready" before the engine is killed and reported
 * as not answering (default 20 s). Call before viv_engine_spawn(). */
void viv_engine_set_handshake_timeout(VivEngine *self, guint seconds);

/* NULL until "ready". */
VivDbusMachine *viv_engine_get_machine(VivEngine *self);
VivDbusDisplay *viv_engine_get_display(VivEngine *self);
VivDbusInput *viv_engine_get_input(VivEngine *self);
VivDbusSnapshots *viv_engine_get_snapshots(VivEngine *self);

gboolean viv_engine_is_ready(VivEngine *self);
/* True while the process lives. */
gboolean viv_engine_is_alive(VivEngine *self);
GPid viv_engine_get_pid(VivEngine *self);
/* "running", "paused", "stopped", or NULL before "ready". */
const char *viv_engine_get_state(VivEngine *self);

/* Commands of org.vivarium.Machine, sent without waiting; a failure is reported
 * through the "error" signal with the engine's own message. */
void viv_engine_start(VivEngine *self);
void viv_engine_pause(VivEngine *self);
void viv_engine_resume(VivEngine *self);
void viv_engine_reset(VivEngine *self);
void viv_engine_power_off(VivEngine *self);
void viv_engine_change_media(VivEngine *self, const char *drive, const char *path);
void viv_engine_eject_media(VivEngine *self, const char *drive);
/* Asks the engine to quit; kills it if it has not exited a few seconds later. */
void viv_engine_quit(VivEngine *self);

/* Turns an error from an engine call into a message for a person. */
char *viv_engine_describe_error(const GError *error);

G_END_DECLS
