#ifndef NN_KERNELS_CPU_FEATURES_H
#define NN_KERNELS_CPU_FEATURES_H

// The feature bits and `nn_cpu_features` are declared in the public header, for reports.
#include "NNKernels.h"

/// Fully unrolls the loop that follows: the vector kernels' loops over their accumulators must
/// be, or clang keeps the tile in memory instead of registers (GEMM.c measured 76 instead of
/// 150+ GFLOP/s with the 12-row AVX-512 loop left rolled).
#define UNROLL _Pragma("clang loop unroll(full)")

#endif
