/* The guest's physical memory map. */
#include "e820.h"

/* The last KiB below 640 KiB is the extended BIOS data area on a PC. */
#define E820_EBDA_START 0x9fc00u
#define E820_LOW_END    0xa0000u
#define E820_BIOS_START 0xf0000u
#define E820_HIGH_START 0x100000u
#define E820_HIGH_BIOS  0xfffc0000u

unsigned e820_build(uint64_t ram_size, struct e820_entry *entries)
{
    unsigned n = 0;
    uint64_t low_end = ram_size < E820_EBDA_START ? ram_size : E820_EBDA_START;
    entries[n++] = (struct e820_entry){0, low_end, E820_RAM};
    entries[n++] =
        (struct e820_entry){E820_EBDA_START, E820_LOW_END - E820_EBDA_START, E820_RESERVED};
    entries[n++] =
        (struct e820_entry){E820_BIOS_START, E820_HIGH_START - E820_BIOS_START, E820_RESERVED};
    if (ram_size > E820_HIGH_START)
        entries[n++] = (struct e820_entry){E820_HIGH_START, ram_size - E820_HIGH_START, E820_RAM};
    entries[n++] =
        (struct e820_entry){E820_HIGH_BIOS, (1ull << 32) - E820_HIGH_BIOS, E820_RESERVED};
    return n;
}
