#ifndef NN_KERNELS_PROLOGUE_H
#define NN_KERNELS_PROLOGUE_H

#include "NNKernels.h"

/// One row of k values through `prologue` into `out` (GEMM.c packs it, LowPrecisionGEMM.c
/// quantizes it): the engine's preprocessing, the same values, on the widest vectors the CPU has.
/// `x` points to floats, or to bytes when the prologue says `bytes`.
void nn_preprocess_row(const nn_prologue *prologue, const void *x, size_t k, float *out);

/// Where row `row`, column `column` of A starts: floats, or bytes under a prologue that says so.
static inline const void *nn_prologue_element(const nn_prologue *prologue, const void *a, size_t lda, size_t row, size_t column) {
    size_t size = prologue && prologue->bytes ? 1 : sizeof(float);
    return (const char *)a + (row * lda + column) * size;
}

#endif
