#ifndef NN_KERNELS_H
#define NN_KERNELS_H

// One-sample products for the inference engine: y = x W for a single input row, the case where
// BLAS's gemv leaves most of the time on the table (it reads W in the wrong order for a row
// vector, or splits it over threads that each stream half of W through a cache it shares).
//
// The weight is repacked once into column panels stored input by input, so the product reads
// it front to back exactly once; with two threads each thread always computes the same panels,
// so each core keeps its half of W in its own L2 cache from one call to the next.

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/// Whether this CPU runs the vector kernels (AVX2 and FMA). Without them the packed product
/// still works, on plain C loops.
bool nn_packed_vector_kernels(void);

/// Number of floats `nn_pack_weights` writes for a weight of `inputs` x `outputs`.
size_t nn_packed_size(size_t inputs, size_t outputs);

/// Packs a row-major weight W[inputs][outputs] into panels of up to 32 columns (the last one
/// 8, 16, 24 or 32 wide, zero-padded to a multiple of 8); each panel is stored input by input.
void nn_pack_weights(const float *weights, size_t inputs, size_t outputs, float *packed);

/// y[0 ..< outputs] = x[0 ..< inputs] W + bias, with W packed by `nn_pack_weights`; `bias`
/// may be NULL; with `relu`, max(y, 0) (NaN becomes 0).
///
/// With `threads` >= 2 and at least 32,768 weights, the panels are split between the calling
/// thread and one helper thread shared by the process. The helper spins for a short while after each product and then
/// sleeps; the caller never waits for a helper that has not started: it computes the helper's
/// panels itself. When another thread is using the helper, the caller computes everything.
void nn_packed_product(const float *packed, size_t inputs, size_t outputs, const float *bias, bool relu,
                       const float *x, float *y, int threads);

/// As `nn_packed_product` for a row-major W[inputs][outputs] as stored, on the calling thread,
/// reading W front to back: for a first product, before a packed copy exists (no copy, and no
/// thread woken up).
void nn_row_product(const float *weights, size_t inputs, size_t outputs, const float *bias, bool relu,
                    const float *x, float *y);

/// Folds the front of `data` for a CRC-32 (zlib's) continuing from `crc` (zlib's convention:
/// 0 to start). Returns how many bytes it consumed, a multiple of 64, and writes to `block` 64
/// bytes whose CRC-32 started from 0xFFFFFFFF, continued over `data[consumed...]`, is the CRC-32
/// of all of `data` from `crc`. Returns 0 (and writes nothing) without PCLMULQDQ or for fewer
/// than 128 bytes.
size_t nn_crc32_fold(uint32_t crc, const void *data, size_t length, uint8_t block[64]);

#endif
