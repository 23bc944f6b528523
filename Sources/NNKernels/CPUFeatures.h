#ifndef NN_KERNELS_CPU_FEATURES_H
#define NN_KERNELS_CPU_FEATURES_H

// The feature bits and `nn_cpu_features` are declared in the public header, for reports.
#include "NNKernels.h"

#endif
