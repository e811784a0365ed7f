/* Sieve of Eratosthenes over 1 MiB of flags: byte loads, stores, strides. */
#include "runtime.h"

const char workload_name[] = "sieve";
const uint32_t workload_default_scale = 20;

#define SIEVE_SIZE (1u << 20)
static uint8_t composite[SIEVE_SIZE];

uint32_t workload(uint32_t scale)
{
    uint32_t total = 0;
    for (uint32_t round = 0; round < scale; round++) {
        memset(composite, 0, sizeof(composite));
        uint32_t primes = 0;
        for (uint32_t i = 2; i < SIEVE_SIZE; i++) {
            if (composite[i])
                continue;
            primes++;
            for (uint32_t j = i + i; j < SIEVE_SIZE; j += i)
                composite[j] = 1;
        }
        total += primes;
    }
    return total;
}
