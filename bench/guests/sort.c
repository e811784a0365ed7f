/* Quicksort of pseudo-random 32-bit keys: compares, branches, recursion. */
#include "runtime.h"

const char workload_name[] = "sort";
const uint32_t workload_default_scale = 20;

#define SORT_COUNT 65536
static uint32_t keys[SORT_COUNT];

static void quicksort(uint32_t *a, int lo, int hi)
{
    while (lo < hi) {
        uint32_t pivot = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                uint32_t t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        /* Recurse into the smaller half to bound the stack. */
        if (j - lo < hi - i) {
            quicksort(a, lo, j);
            lo = i;
        } else {
            quicksort(a, i, hi);
            hi = j;
        }
    }
}

uint32_t workload(uint32_t scale)
{
    uint32_t seed = 12345, check = 0;
    for (uint32_t round = 0; round < scale; round++) {
        for (uint32_t i = 0; i < SORT_COUNT; i++) {
            seed = seed * 1103515245u + 12345u;
            keys[i] = seed;
        }
        quicksort(keys, 0, SORT_COUNT - 1);
        for (uint32_t i = 1; i < SORT_COUNT; i++) {
            if (keys[i - 1] > keys[i])
                return 0xbad;
        }
        check += keys[SORT_COUNT / 2];
    }
    return check;
}
