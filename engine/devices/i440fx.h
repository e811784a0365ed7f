/* The Intel 82441FX PCI and memory controller (i440FX host bridge) at
 * 00:00.0: its PCI identity, the PAM registers that decide whether
 * 0xc0000-0xfffff reads and writes reach RAM or the BIOS ROM, and the SMRAM
 * register's open window onto the RAM behind 0xa0000-0xbffff. */
#ifndef VIVARIUM_I440FX_H
#define VIVARIUM_I440FX_H

#include "pci.h"

struct i440fx;

/* Registers 00:00.0 on the bus. The PAM and SMRAM windows are regions over
 * mem->ram at priority 2, above RAM (0) and the BIOS ROM (1). */
struct i440fx *i440fx_create(struct pci_bus *bus, struct memory *mem);
void i440fx_destroy(struct i440fx *host);

extern const struct vmstate_desc i440fx_vmstate;
void i440fx_reset(void *host);
/* Re-derives the PAM and SMRAM windows and BARs from the restored config. */
void i440fx_post_load(void *host);

#endif
