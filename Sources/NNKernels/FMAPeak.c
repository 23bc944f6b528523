#include "NNKernels.h"

#include <pthread.h>
#include <time.h>

#include "CPUFeatures.h"

// The machine's f32 multiply-add peak, measured: per thread a loop of independent FMAs on
// registers only (12 accumulators, more than FMA latency x pipes on the CPUs we know), no
// memory traffic. The benchmark reports the GEMM as a fraction of this.

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct {
    int kernel;
    long iterations;
    double seconds;
    float sink;
} peak_job;

// The empty asm statements keep every accumulator live in a register across iterations, so
// the compiler can neither fold nor drop the FMAs.
#define KEEP(a) __asm__ volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]), "+x"(a[5]), \
                                 "+x"(a[6]), "+x"(a[7]), "+x"(a[8]), "+x"(a[9]), "+x"(a[10]), "+x"(a[11]))

#if defined(__x86_64__)
#include <immintrin.h>

// One loop per vector width, alike but for the vector type and its intrinsics.
#define FMA_LOOP(name, features, vec, set1, fmadd, add, first)        \
    __attribute__((target(features))) static float name(long iterations, float seed) { \
        vec a[12], m = set1(0.9999f), c = set1(seed * 1e-3f);        \
        for (int i = 0; i < 12; i++) a[i] = set1(seed + (float)i);   \
        for (long n = 0; n < iterations; n++) {                      \
            for (int i = 0; i < 12; i++) a[i] = fmadd(a[i], m, c);   \
            KEEP(a);                                                 \
        }                                                            \
        vec s = a[0];                                                \
        for (int i = 1; i < 12; i++) s = add(s, a[i]);               \
        return first(s);                                             \
    }

FMA_LOOP(loop_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_cvtss_f32)
FMA_LOOP(loop_avx512, "avx512f,avx2,fma", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_cvtss_f32)
#endif

static void *run(void *context) {
    peak_job *job = context;
    double start = now();
    float seed = (float)(job->iterations % 7);
#if defined(__x86_64__)
    if (job->kernel == nn_gemm_avx512) job->sink = loop_avx512(job->iterations, seed);
    else job->sink = loop_avx2(job->iterations, seed);
#endif
    job->seconds = now() - start;
    return NULL;
}

static int lanes(int kernel) { return kernel == nn_gemm_avx512 ? 16 : 8; }

double nn_fma_peak(int kernel, int threads, long iterations) {
    if (kernel == nn_gemm_scalar || !nn_gemm_supported(kernel) || threads < 1 || threads > 64) return 0;
    peak_job jobs[64];
    pthread_t ids[64];
    int started = 0;
    double start = now();
    for (int t = 0; t < threads; t++) {
        jobs[t] = (peak_job){kernel, iterations, 0, 0};
        if (t > 0 && pthread_create(&ids[t], NULL, run, &jobs[t]) == 0) started++;
        else if (t > 0) return 0;
    }
    run(&jobs[0]);
    for (int t = 1; t <= started; t++) pthread_join(ids[t], NULL);
    double seconds = now() - start;
    return (double)threads * (double)iterations * 12.0 * lanes(kernel) * 2.0 / seconds / 1e9;
}
