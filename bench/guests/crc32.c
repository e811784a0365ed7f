/* Table-driven CRC-32 (IEEE) over a 64 KiB buffer: shifts, xors, lookups. */
#include "runtime.h"

const char workload_name[] = "crc32";
const uint32_t workload_default_scale = 200;

static uint32_t table[256];
static uint8_t buffer[65536];

uint32_t workload(uint32_t scale)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    for (uint32_t i = 0; i < sizeof(buffer); i++)
        buffer[i] = (uint8_t)(i * 2654435761u >> 24);
    uint32_t crc = 0xffffffffu;
    for (uint32_t round = 0; round < scale; round++) {
        for (uint32_t i = 0; i < sizeof(buffer); i++)
            crc = table[(crc ^ buffer[i]) & 0xff] ^ (crc >> 8);
    }
    return ~crc;
}
