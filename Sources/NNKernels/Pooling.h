#ifndef NN_KERNELS_POOLING_H
#define NN_KERNELS_POOLING_H

#include "NNKernels.h"

/// Max pooling of one f32 HWC sample as `nn_max_pool` pools each of its samples (the same
/// windows, cells and order), on the calling thread: what a convolution followed by max pooling
/// runs on each sample it has just computed (`nn_conv_skinny` with a pool).
void nn_max_pool_sample(const nn_spatial *g, const float *sample, float *output);

#endif
