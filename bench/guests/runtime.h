/* The little runtime the benchmark kernels share: port I/O, the TSC, text
 * to the debug console (port 0xe9) and the command line. */
#ifndef BENCH_RUNTIME_H
#define BENCH_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

static inline void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

void print(const char *s);
void print_u64(uint64_t v);
/* The integer value of "name=N" on the multiboot command line, or fallback. */
uint32_t cmdline_uint(const char *name, uint32_t fallback);

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* Each workload: runs `scale` units of work and returns a checksum that
 * depends on all of it, so nothing can be optimised away or skipped. */
uint32_t workload(uint32_t scale);
extern const char workload_name[];
extern const uint32_t workload_default_scale;

#endif
