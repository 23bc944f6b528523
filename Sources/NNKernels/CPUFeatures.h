#ifndef NN_KERNELS_CPU_FEATURES_H
#define NN_KERNELS_CPU_FEATURES_H

// The feature bits and `nn_cpu_features` are declared in the public header, for reports.
#include "NNKernels.h"

/// Fully unrolls the loop that follows: the vector kernels' loops over their accumulators must
/// be, or clang keeps the tile in memory instead of registers (GEMM.c measured 76 instead of
/// 150+ GFLOP/s with the 12-row AVX-512 loop left rolled).
#define UNROLL _Pragma("clang loop unroll(full)")

#if defined(__x86_64__)
#include <immintrin.h>

/// A mask of the first `n` 32-bit lanes of an AVX2 vector of 8 (all of them from 8 on), for
/// maskload and maskstore: an edge of n columns, a row's tail.
__attribute__((target("avx2"))) static inline __m256i nn_avx2_lanes(size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// A mask of the first `n` lanes of an AVX-512 vector of 16 (all of them from 16 on).
__attribute__((target("avx512f"))) static inline __mmask16 nn_avx512_lanes(size_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}
#endif

#endif
