/* Not a timed workload: fills `scale` MiB of RAM above 8 MiB with data that
 * compresses about as well as a busy guest's memory does (six random bits
 * in every byte), prints "filled" and halts for good. bench/snapshot.py
 * snapshots the machine then. */
#include "runtime.h"

const char workload_name[] = "fill";
const uint32_t workload_default_scale = 256;

#define FILL_START (8u << 20)

uint32_t workload(uint32_t scale)
{
    uint32_t *p = (uint32_t *)FILL_START;
    uint32_t *end = p + ((size_t)scale << 20) / 4;
    uint32_t x = 2463534242u;
    for (; p < end; p++) {
        /* xorshift32 (Marsaglia) */
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *p = x & 0x3f3f3f3fu;
    }
    print("filled\n");
    for (;;)
        __asm__ volatile("cli; hlt");
    return 0;
}
