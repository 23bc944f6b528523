#include "CPUFeatures.h"

enum { known = 1u << 31 };

static unsigned detect(void) {
    unsigned features = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) features |= nn_cpu_avx2_fma;
    if (__builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1")) features |= nn_cpu_pclmul;
#endif
    return features;
}

unsigned nn_cpu_features(void) {
    static unsigned cached;  // racing first calls store the same answer
    unsigned features = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!(features & known)) {
        features = detect() | known;
        __atomic_store_n(&cached, features, __ATOMIC_RELAXED);
    }
    return features & ~known;
}
