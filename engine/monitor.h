/* --monitor stdio: commands on standard input (see monitor.c). */
#ifndef VIVARIUM_MONITOR_H
#define VIVARIUM_MONITOR_H

struct machine;
struct monitor;
struct snapshot_store;
struct serial_input;

/* Reads commands from file descriptor 0 on the main loop. Snapshot commands
 * use the store (NULL: they are refused), which must outlive the monitor. */
struct monitor *monitor_create(struct machine *m, struct snapshot_store *snapshots);
/* Where the serial command sends its text (NULL: COM1 takes no input). */
void monitor_set_serial_input(struct monitor *mon, struct serial_input *serial);
void monitor_destroy(struct monitor *mon);

#endif
