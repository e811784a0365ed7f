#ifndef VIVARIUM_DEBUGCON_H
#define VIVARIUM_DEBUGCON_H

#include <stdint.h>
#include <stdio.h>

struct machine;
struct debugcon;

/* The Bochs/QEMU debug console: every byte written to the port goes to out.
 * Guests use port 0xe9; SeaBIOS writes its log to 0x402. out may be NULL:
 * the port still answers, and the output is dropped. */
#define DEBUGCON_PORT          0xe9
#define DEBUGCON_FIRMWARE_PORT 0x402

struct debugcon *debugcon_create(struct machine *m, uint16_t port, FILE *out);
void debugcon_destroy(struct debugcon *dev);

#endif
