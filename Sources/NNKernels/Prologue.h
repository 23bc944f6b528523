#ifndef NN_KERNELS_PROLOGUE_H
#define NN_KERNELS_PROLOGUE_H

#include "NNKernels.h"

/// One row of k values through `prologue` into `out` (GEMM.c packs it, LowPrecisionGEMM.c
/// quantizes it): the engine's preprocessing, the same values, on the widest vectors the CPU has.
void nn_preprocess_row(const nn_prologue *prologue, const float *x, size_t k, float *out);

#endif
