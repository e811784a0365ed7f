/* String handling: building, copying, searching and comparing text. */
#include "runtime.h"

const char workload_name[] = "strings";
const uint32_t workload_default_scale = 200;

static char text[16384];
static char copy[16384];

static const char *find(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        if (*hay == *needle && memcmp(hay, needle, n) == 0)
            return hay;
    }
    return NULL;
}

uint32_t workload(uint32_t scale)
{
    static const char *const words[] = {"vivarium ", "engine ", "guest ", "translate ",
                                        "block ",    "cache ",  "page ",  "interrupt "};
    uint32_t check = 0;
    for (uint32_t round = 0; round < scale; round++) {
        size_t len = 0;
        uint32_t seed = round;
        while (len + 16 < sizeof(text)) {
            seed = seed * 1664525u + 1013904223u;
            const char *w = words[seed >> 29];
            size_t wl = strlen(w);
            memcpy(text + len, w, wl);
            len += wl;
        }
        text[len] = 0;
        memcpy(copy, text, len + 1);
        const char *p = find(copy, "interrupt page");
        check += p ? (uint32_t)(p - copy) : 1;
        check += (uint32_t)memcmp(text, copy, len) + (uint32_t)strlen(copy);
    }
    return check;
}
