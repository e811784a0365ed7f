/* The counting loop of the issue: every iteration goes through memory. */
#include "runtime.h"

const char workload_name[] = "count";
const uint32_t workload_default_scale = 50000000;

uint32_t workload(uint32_t scale)
{
    uint32_t sum = 0;
    for (uint32_t i = 0; i < scale; i++) {
        int volatile t = (int)sum;
        t++;
        sum = (uint32_t)t;
    }
    return sum;
}
