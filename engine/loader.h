#ifndef VIVARIUM_LOADER_H
#define VIVARIUM_LOADER_H

#include <stdbool.h>

#include <glib.h>

#include "cpu.h"

struct machine;

/* Loads config->kernel_path (a multiboot kernel or a Linux bzImage), with
 * its initrd and command line, into guest memory and fills state with the
 * CPU state its boot protocol starts it in. */
bool loader_boot_kernel(struct machine *m, struct x86_state *state, GError **error);

#endif
