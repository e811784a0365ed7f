#ifndef VIVARIUM_DEBUGCON_H
#define VIVARIUM_DEBUGCON_H

#include <stdio.h>

struct machine;
struct debugcon;

/* out may be NULL: the port still answers, and output is dropped. */
struct debugcon *debugcon_create(struct machine *m, FILE *out);
void debugcon_destroy(struct debugcon *dev);

#endif
