#include "NNKernels.h"

#include "CPUFeatures.h"

// CRC-32 (the reflected 0x04C11DB7 polynomial of zlib) by carry-less multiplication: four
// 128-bit lanes, each moved 512 bits forward per step (x^(512+64) and x^512 mod P, bit-reflected),
// so one step costs eight multiplications for 64 bytes. What is left is not reduced here: the
// 64-byte block has the same CRC remainder as the bytes it replaces, and the caller finishes it,
// with the tail, by table (zlib), which keeps this file free of the final Barrett reduction.

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("pclmul,sse4.1")))
static size_t fold_pclmul(uint32_t crc, const uint8_t *data, size_t length, uint8_t block[64]) {
    const __m128i k = _mm_set_epi64x(0x154442bd4LL, 0x1c6e41596LL);
    __m128i x0 = _mm_loadu_si128((const __m128i *)data);
    __m128i x1 = _mm_loadu_si128((const __m128i *)(data + 16));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(data + 32));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(data + 48));
    // A running CRC is the same as XORing its register (the complement) into the first 4 bytes.
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)~crc));
    size_t done = 64;
    for (; done + 64 <= length; done += 64) {
        const uint8_t *p = data + done;
#define NN_FOLD(x, offset)                                                                 \
        x = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x01), _mm_clmulepi64_si128(x, k, 0x10)), \
                          _mm_loadu_si128((const __m128i *)(p + offset)))
        NN_FOLD(x0, 0);
        NN_FOLD(x1, 16);
        NN_FOLD(x2, 32);
        NN_FOLD(x3, 48);
#undef NN_FOLD
    }
    _mm_storeu_si128((__m128i *)block, x0);
    _mm_storeu_si128((__m128i *)(block + 16), x1);
    _mm_storeu_si128((__m128i *)(block + 32), x2);
    _mm_storeu_si128((__m128i *)(block + 48), x3);
    return done;
}

#endif

size_t nn_crc32_fold(uint32_t crc, const void *data, size_t length, uint8_t block[64]) {
#if defined(__x86_64__)
    if ((nn_cpu_features() & nn_cpu_pclmul) && length >= 128) return fold_pclmul(crc, (const uint8_t *)data, length, block);
#else
    (void)crc; (void)data; (void)block;
#endif
    (void)length;
    return 0;
}
