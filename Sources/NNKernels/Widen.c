#include "NNKernels.h"

#include "CPUFeatures.h"

// Bytes to scaled floats, dst[i] = (float)src[i] * scale: the conversion is exact and the product
// rounds once at any vector width, so every version writes what the scalar loop writes. Swift
// compiles its loop for the x86-64 baseline (SSE2, 4 floats an instruction), and clang does not
// vectorize the byte loop by itself (the bytes may alias the floats); nn-infer widens every
// image it reads, about 800,000 bytes a batch.

static void widen_portable(const uint8_t *src, size_t count, float scale, float *dst) {
    for (size_t i = 0; i < count; i++) dst[i] = (float)src[i] * scale;
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static void widen_avx512(const uint8_t *src, size_t count, float scale, float *dst) {
    const __m512 s = _mm512_set1_ps(scale);
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512i wide = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm512_storeu_ps(dst + i, _mm512_mul_ps(_mm512_cvtepi32_ps(wide), s));
    }
    widen_portable(src + i, count - i, scale, dst + i);
}

__attribute__((target("avx2"))) static void widen_avx2(const uint8_t *src, size_t count, float scale, float *dst) {
    const __m256 s = _mm256_set1_ps(scale);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256i wide = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(src + i)));
        _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_cvtepi32_ps(wide), s));
    }
    widen_portable(src + i, count - i, scale, dst + i);
}
#endif

void nn_widen_u8(const uint8_t *src, size_t count, float scale, float *dst) {
#if defined(__x86_64__)
    unsigned features = nn_cpu_features();
    if (features & nn_cpu_avx512) {
        widen_avx512(src, count, scale, dst);
        return;
    }
    if (features & nn_cpu_avx2_fma) {
        widen_avx2(src, count, scale, dst);
        return;
    }
#endif
    widen_portable(src, count, scale, dst);
}
