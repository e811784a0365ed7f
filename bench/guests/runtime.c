/* The benchmark kernels' runtime and main. */
#include "runtime.h"

static const char *command_line = "";

void print(const char *s)
{
    while (*s)
        outb(0xe9, (uint8_t)*s++);
}

void print_u64(uint64_t v)
{
    /* Long division by ten with 32-bit steps: a freestanding 32-bit kernel
     * has no libgcc for 64-bit division. */
    char digits[21];
    int n = 0;
    do {
        uint32_t hi = (uint32_t)(v >> 32), lo = (uint32_t)v;
        uint32_t qhi = hi / 10, rhi = hi % 10;
        uint64_t rest = (uint64_t)rhi << 32 | lo;
        uint32_t qlo = 0, r = 0;
        /* rest < 10 << 32, so shift-subtract over 36 bits is enough. */
        for (int bit = 35; bit >= 0; bit--) {
            r = (r << 1) | (uint32_t)((rest >> bit) & 1);
            if (r >= 10) {
                r -= 10;
                if (bit < 32)
                    qlo |= 1u << bit;
            }
        }
        digits[n++] = (char)('0' + r);
        v = (uint64_t)qhi << 32 | qlo;
    } while (v);
    char out[22];
    for (int i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    out[n] = 0;
    print(out);
}

uint32_t cmdline_uint(const char *name, uint32_t fallback)
{
    size_t len = strlen(name);
    for (const char *p = command_line; *p; p++) {
        if ((p == command_line || p[-1] == ' ') && memcmp(p, name, len) == 0 && p[len] == '=') {
            uint32_t v = 0;
            for (p += len + 1; *p >= '0' && *p <= '9'; p++)
                v = v * 10 + (uint32_t)(*p - '0');
            return v;
        }
    }
    return fallback;
}

void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    while (n--)
        *d++ = (uint8_t)c;
    return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++) {
        if (*x != *y)
            return *x - *y;
    }
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

struct multiboot_info {
    uint32_t flags;
    uint32_t mem_lower, mem_upper;
    uint32_t boot_device;
    uint32_t cmdline;
};

uint32_t bench_main(const struct multiboot_info *info);

uint32_t bench_main(const struct multiboot_info *info)
{
    if (info->flags & (1u << 2))
        command_line = (const char *)(uintptr_t)info->cmdline;
    uint32_t scale = cmdline_uint("scale", workload_default_scale);
    uint64_t start = rdtsc();
    uint32_t checksum = workload(scale);
    uint64_t ticks = rdtsc() - start;
    /* One line the bench script parses. */
    print("bench ");
    print(workload_name);
    print(" scale=");
    print_u64(scale);
    print(" tsc=");
    print_u64(ticks);
    print(" checksum=");
    print_u64(checksum);
    print("\n");
    return 0;
}
