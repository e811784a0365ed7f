/* The engine's D-Bus face (data/dbus/org.vivarium.Engine.xml) on the private
 * connection the app opened with --dbus-fd. */
#ifndef VIVARIUM_SERVICE_H
#define VIVARIUM_SERVICE_H

#include <glib.h>

struct machine;
struct service;
struct snapshot_store;

/* Serves the machine on fd, a connected socket. Snapshots live in the
 * store (NULL: snapshot calls are refused), which must outlive the
 * service. Call on the main thread, before the vCPU thread starts. */
struct service *service_create(struct machine *m, int fd, struct snapshot_store *snapshots,
                               GError **error);
void service_destroy(struct service *service);

#endif
