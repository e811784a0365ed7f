#ifndef VIVARIUM_DEBUG_EXIT_H
#define VIVARIUM_DEBUG_EXIT_H

struct machine;
struct debug_exit;

struct debug_exit *debug_exit_create(struct machine *m);
void debug_exit_destroy(struct debug_exit *dev);

#endif
