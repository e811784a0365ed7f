/* --monitor stdio: commands on standard input (see monitor.c). */
#ifndef VIVARIUM_MONITOR_H
#define VIVARIUM_MONITOR_H

struct machine;
struct monitor;

/* Reads commands from file descriptor 0 on the main loop. */
struct monitor *monitor_create(struct machine *m);
void monitor_destroy(struct monitor *mon);

#endif
