/* Integer matrix multiply, 96x96: multiplies and strided loads. */
#include "runtime.h"

const char workload_name[] = "matmul";
const uint32_t workload_default_scale = 100;

#define N 96
static int32_t a[N][N], b[N][N], c[N][N];

uint32_t workload(uint32_t scale)
{
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
            a[i][j] = (i * 7 + j * 3) % 17 - 8;
            b[i][j] = (i * 5 + j * 11) % 13 - 6;
        }
    }
    uint32_t check = 0;
    for (uint32_t round = 0; round < scale; round++) {
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < N; j++) {
                int32_t sum = 0;
                for (int k = 0; k < N; k++)
                    sum += a[i][k] * b[k][j];
                c[i][j] = sum;
            }
        }
        check += (uint32_t)c[round % N][(round * 7) % N];
        a[round % N][0]++;
    }
    return check;
}
