#ifndef NN_KERNELS_CPU_FEATURES_H
#define NN_KERNELS_CPU_FEATURES_H

/// Instruction-set extensions the kernels choose by, as bits of `nn_cpu_features()`.
enum {
    nn_cpu_avx2_fma = 1,  // the one-sample product kernels
    nn_cpu_pclmul = 2,    // CRC-32 folding (PCLMULQDQ with SSE4.1)
};

/// The features above that this CPU has, detected on first use.
unsigned nn_cpu_features(void);

#endif
