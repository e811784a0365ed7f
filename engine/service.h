/* The engine's D-Bus face (data/dbus/org.vivarium.Engine.xml) on the private
 * connection the app opened with --dbus-fd. */
#ifndef VIVARIUM_SERVICE_H
#define VIVARIUM_SERVICE_H

#include <glib.h>

struct machine;
struct service;

/* Serves the machine on fd, a connected socket. Snapshots live in
 * snapshot_dir (NULL: snapshot calls are refused). Call on the main thread,
 * before the vCPU thread starts. */
struct service *service_create(struct machine *m, int fd, const char *snapshot_dir, GError **error);
void service_destroy(struct service *service);

#endif
