// Cycles of one product on our kernels, without the engine around it: the fewest and the median
// TSC cycles over many calls (the fewest is what a busy VM disturbs least). For kernel work; `make bench` is
// the benchmark of record.
//
//     clang -O2 -I Sources/NNKernels/include Sources/NNKernels/*.c Benchmarks/Support/kernel_cycles.c \
//         -lpthread -lm -o /tmp/kernel_cycles
//     /tmp/kernel_cycles i8 KERNEL M N K [THREADS]    # nn_i8_gemm: KERNEL 0 portable, 1 avx2, 2 avx512_vnni, 3 avx_vnni, 4 amx,
//                                                     # 5 avx2_maddubs (with W7=1 in the environment: 7-bit weights, which it needs;
//                                                     # their activations get 7 bits, as in the engine)
//     /tmp/kernel_cycles f32 KERNEL N K [THREADS]     # nn_gemm_row: KERNEL 0 portable, 1 avx2, 2 avx512
#include "NNKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

static void *zeroed(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) exit(2);
    memset(p, 0, (bytes + 63) / 64 * 64);
    return p;
}

static int by_value(const void *x, const void *y) {
    unsigned long a = *(const unsigned long *)x, b = *(const unsigned long *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    int i8 = argc >= 6 && strcmp(argv[1], "i8") == 0, f32 = argc >= 5 && strcmp(argv[1], "f32") == 0;
    if (!i8 && !f32) {
        fprintf(stderr, "usage: kernel_cycles i8 KERNEL M N K [THREADS] | f32 KERNEL N K [THREADS]\n");
        return 2;
    }
    int kernel = atoi(argv[2]);
    size_t m = i8 ? (size_t)atol(argv[3]) : 1, n = (size_t)atol(argv[i8 ? 4 : 3]), k = (size_t)atol(argv[i8 ? 5 : 4]);
    int threads = argc > (i8 ? 6 : 5) ? atoi(argv[i8 ? 6 : 5]) : 1;
    if ((i8 && !nn_i8_supported(kernel)) || m == 0 || n == 0 || k == 0) {
        fprintf(stderr, "kernel_cycles: kernel %d is not supported here, or a size is 0\n", kernel);
        return 2;
    }
    float *a = zeroed(m * k * sizeof(float)), *c = zeroed(m * n * sizeof(float)), *bias = zeroed(n * sizeof(float));
    for (size_t i = 0; i < m * k; i++) a[i] = (float)rand() / (float)RAND_MAX;
    void *packed;
    int bits = 8;
    float *scales = zeroed(n * sizeof(float));
    for (size_t j = 0; j < n; j++) scales[j] = 0.01f;
    if (i8) {
        int8_t *b = zeroed(k * n);
        int seven_bit = getenv("W7") != NULL;
        for (size_t i = 0; i < k * n; i++) b[i] = (int8_t)(seven_bit ? rand() % 127 - 63 : rand() % 255 - 127);
        packed = zeroed(nn_i8_packed_bytes(kernel, k, n));
        nn_i8_pack(kernel, b, n, k, n, packed);
        bits = nn_i8_activation_bits(b, k * n);
    } else {
        float *b = zeroed(k * n * sizeof(float));
        for (size_t i = 0; i < k * n; i++) b[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        packed = zeroed(nn_gemm_packed_size(kernel, k, n) * sizeof(float));
        nn_gemm_pack(kernel, b, n, k, n, packed);
    }
    enum { calls_max = 20000 };
    static unsigned long times[calls_max];
    int calls = m == 1 ? calls_max : 50;
    for (int r = 0; r < calls; r++) {
        unsigned long t0 = __rdtsc();
        if (i8) nn_i8_gemm(kernel, bits, m, n, k, a, k, packed, scales, NULL, NULL, c, n, bias, true, threads);
        else nn_gemm_row(kernel, n, k, a, packed, c, bias, true, threads);
        times[r] = __rdtsc() - t0;
    }
    qsort(times, (size_t)calls, sizeof times[0], by_value);
    printf("%lu %lu\n", times[0], times[calls / 2]);  // the fewest, the median
    return 0;
}
