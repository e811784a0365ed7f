/* The guest's physical memory map as the BIOS E820 call, fw_cfg's etc/e820
 * and the direct kernel loaders report it. */
#ifndef VIVARIUM_E820_H
#define VIVARIUM_E820_H

#include <stdint.h>

enum e820_type { E820_RAM = 1, E820_RESERVED = 2 };

struct e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
};

#define E820_MAX_ENTRIES 8

/* Fills entries for a PC with ram_size bytes of RAM from address 0; returns
 * how many. The 640 KiB-1 MiB hole and the firmware below 4 GiB are reserved. */
unsigned e820_build(uint64_t ram_size, struct e820_entry *entries);

#endif
