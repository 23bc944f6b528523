#ifndef NN_KERNELS_H
#define NN_KERNELS_H

// Kernels of the inference engine and the trainer: CPU feature detection, f32 GEMM (with its
// one-row form), products with bf16 and int8 weights, CRC-32 folding.

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/// Instruction-set extensions the kernels choose by, as bits of `nn_cpu_features()`. A bit is
/// set only when CPUID reports the instructions and XGETBV reports that the operating system
/// saves the registers they use (YMM for AVX2, also ZMM and the mask registers for AVX-512).
enum {
    nn_cpu_avx2_fma = 1,        // AVX2 and FMA: the f32 GEMM's AVX2 kernel and its one-row form
    nn_cpu_pclmul = 2,          // CRC-32 folding (PCLMULQDQ with SSE4.1)
    nn_cpu_avx512 = 4,          // AVX-512 F, BW, VL (with AVX2 and FMA): the GEMM's AVX-512 kernel
    nn_cpu_avx512_vnni = 8,     // AVX512_VNNI (vpdpbusd on ZMM)
    nn_cpu_avx_vnni = 16,       // AVX-VNNI (vpdpbusd on YMM, VEX encoded)
    nn_cpu_avx512_bf16 = 32,    // AVX512_BF16 (vdpbf16ps)
    nn_cpu_amx_int8 = 64,       // AMX-TILE and AMX-INT8 (tdpbusd), with AVX512-VNNI, the tile state
                                // enabled in XCR0 and Linux's permission to use it (arch_prctl)
    nn_cpu_amx_bf16 = 128,      // AMX-BF16 (tdpbf16ps), with AVX512_BF16 and the same conditions
};

/// The features above that this CPU has, detected on first use.
unsigned nn_cpu_features(void);

/// The CPUs this process may run on (its affinity mask; else the CPUs online).
int nn_available_cpus(void);

/// One unit of a job that `nn_run_units` shares: `upcoming` is the unit this thread runs next
/// (SIZE_MAX when none), so that it can prefetch that unit's data; `thread` is 0 on the calling
/// thread, 1 on the helper thread (to pick that thread's scratch memory).
typedef void (*nn_unit_body)(void *context, size_t unit, size_t upcoming, size_t thread);

/// Calls body(context, unit, upcoming, thread) for every unit in 0..<units, and returns when all
/// are done: with `threads` >= 2 and at least two units, on the calling thread and the helper
/// thread together, each taking units from a shared counter one ahead of the one it runs (a
/// thread that is late, or shares its CPU with another process, leaves the others to the other
/// thread); else, or when the helper is busy with another caller, all on the calling thread. The
/// engine runs its blocks of samples so, each through every layer on one thread.
void nn_run_units(size_t units, nn_unit_body body, void *context, int threads);

/// The geometry of a convolution or pooling layer over HWC samples, as the kernels take it.
typedef struct {
    size_t h, w, c;     // input height, width, channels
    size_t oh, ow;      // output height, width
    size_t kh, kw;      // window height, width
    size_t sh, sw;      // strides (rows, columns)
    size_t top, left;   // padding before
} nn_spatial;

/// Max pooling of `count` f32 HWC samples for inference (Pooling.c): each window clipped to the
/// input, its first cell taken, then the others in row-major order through v > best ? v : best
/// (a NaN in the first cell stays); output [count][oh][ow][c]. With `threads` >= 2 and enough
/// samples the helper thread takes half of them.
void nn_max_pool(const float *input, size_t count, const nn_spatial *g, float *output, int threads);

/// Folds the front of `data` for a CRC-32 (zlib's) continuing from `crc` (zlib's convention:
/// 0 to start). Returns how many bytes it consumed, a multiple of 64, and writes to `block` 64
/// bytes whose CRC-32 started from 0xFFFFFFFF, continued over `data[consumed...]`, is the CRC-32
/// of all of `data` from `crc`. Returns 0 (and writes nothing) without PCLMULQDQ or for fewer
/// than 128 bytes.
size_t nn_crc32_fold(uint32_t crc, const void *data, size_t length, uint8_t block[64]);

/// dst[i] = (float)src[i] * scale for `count` bytes (Widen.c): the values of the scalar loop, on
/// the widest vectors the CPU has. How IDX images become a model's input.
void nn_widen_u8(const uint8_t *src, size_t count, float scale, float *dst);

/// A model's preprocessing, applied to each row of A as it is read (the products of a first
/// layer, so that the preprocessed rows are never written out): z-score, (x - mean[j]) /
/// divisor[j], when `mean` is not NULL; else x * factor, then + offset when offset != 0; in f32,
/// the operations of the engine's own preprocessing (no fused multiply-add), so the same values.
/// With `bytes`, A holds u8 values (its row stride `lda` counted in bytes), each read as
/// (float)byte * byte_scale before the preprocessing: an IDX file's pixels go into the first
/// product without ever being written out as floats.
typedef struct {
    const float *mean, *divisor;
    float factor, offset;
    bool bytes;
    float byte_scale;
} nn_prologue;

/// `rows` rows of k floats through `prologue` (not `bytes`) into `out`, on the widest vectors the
/// CPU has: what the engine runs before a first layer that does not take the prologue itself (a
/// one-sample f32 product, a convolution). `out` must not overlap `x` unless it is `x` (in place
/// runs the scalar loop).
void nn_preprocess_rows(const nn_prologue *prologue, const float *x, size_t rows, size_t k, float *out);

// f32 matrix products for batches (GEMM.c): C = A B (+ bias, then ReLU), row-major, with B
// packed once. Micro-kernels for AVX-512 and AVX2/FMA, chosen only when CPUID and XGETBV say
// the CPU and the operating system support them, and a portable one.

/// The GEMM kernels: `nn_gemm_scalar` (plain C, any CPU), `nn_gemm_avx2` (AVX2 + FMA, 6 x 16
/// tiles), `nn_gemm_avx512` (AVX-512F, 12 x 32 tiles).
enum { nn_gemm_scalar = 0, nn_gemm_avx2 = 1, nn_gemm_avx512 = 2 };

/// Whether this CPU (and OS) runs `kernel`.
bool nn_gemm_supported(int kernel);

/// The fastest kernel this CPU runs.
int nn_gemm_best(void);

/// Number of floats `nn_gemm_pack` writes for a k x n matrix packed for `kernel`.
size_t nn_gemm_packed_size(int kernel, size_t k, size_t n);

/// Packs a row-major B[k][n] (row stride `ldb`) for `kernel`: panels of 16 (AVX-512: 32)
/// columns, the last one zero-padded, each stored row by row.
void nn_gemm_pack(int kernel, const float *b, size_t ldb, size_t k, size_t n, float *packed);

/// C[m][n] (row stride `ldc`) = A[m][k] (row stride `lda`) B (+ bias[n] when not NULL; then
/// max(., 0) with `relu`, NaN becoming 0), with B packed by `nn_gemm_pack` for the same
/// `kernel`; each row of A preprocessed by `prologue` as it is packed when that is not NULL
/// (only for products wider than `nn_gemm_narrow_width`: narrower ones return false); A holds
/// floats, or bytes when the prologue says so. A kernel this CPU lacks is never run: its packing is then multiplied by the
/// portable kernel. With `threads` >= 2 and enough work, the calling thread and the process's
/// helper thread share the rows. Returns false, having written nothing, when the packing
/// buffers (about 120 KiB per thread) cannot be allocated.
/// `then_a` (or NULL): `then_rows` rows of A, with the same row stride and prologue, that the
/// calling thread multiplies next by a product on one thread; while this product's last unit
/// computes, its kernels prefetch the first of them into L2, as each unit prefetches the rows of
/// the next within a product.
bool nn_gemm(int kernel, size_t m, size_t n, size_t k, const void *a, size_t lda, const nn_prologue *prologue,
             const float *packed, float *c, size_t ldc, const float *bias, bool relu, int threads, const void *then_a,
             size_t then_rows);

/// The convolution of `count` HWC samples with geometry `g` as `nn_gemm` of its im2col rows (one
/// per output position, the window's values row by row, padding zeros) by B[kh * kw * c][filters]
/// packed by `nn_gemm_pack`, into output[count][oh][ow][filters] (+ bias, then ReLU): the same
/// values to the bit, with each window gathered from the samples as its rows are packed instead
/// of written out first. False, with nothing written, for `filters` within
/// `nn_gemm_narrow_width` (whose form reads windows itself) or when memory cannot be allocated.
bool nn_conv_gemm(int kernel, size_t count, const nn_spatial *g, const float *input, const float *packed, size_t filters,
                  const float *bias, bool relu, float *output, int threads);

/// y[n] = x[k] B (+ bias, then ReLU) for one row, bit for bit what `nn_gemm` computes for that
/// row with the same `kernel` and packing, in whatever batch the row would be (a sample's outputs
/// do not depend on its batch). Reads B once, 128 (AVX2: 64) columns at a time; with `threads` >= 2 and at
/// least 32,768 weights the calling thread and the helper thread each take half the columns
/// (always the same half, so each core keeps its half of B in its own L2 cache). Allocates nothing.
void nn_gemm_row(int kernel, size_t n, size_t k, const float *x, const float *packed, float *y, const float *bias,
                 bool relu, int threads);

/// The widest product (columns) `kernel` runs in its narrow form, one vector: 16 (AVX-512), 8
/// (AVX2), 0 (the portable kernel, or one this CPU lacks).
size_t nn_gemm_narrow_width(int kernel);

/// A convolution of `count` HWC samples as `nn_gemm` would compute it on their im2col rows
/// (windows in row, column, channel order; zeros for the padding) times B packed for `kernel`
/// (`filters` columns), bit for bit, without writing the rows: for products one vector wide
/// (at most 16 filters on the AVX-512 kernel, 8 on AVX2). Output: [count][oh][ow][filters].
/// With `pool` (NULL: none), max pooling of geometry `pool` (input [oh][ow][filters]) follows,
/// as `nn_max_pool` does it, on each sample as soon as it is convolved, so the convolution's
/// output is never written out: output [count][pool oh][pool ow][filters].
/// False, with nothing written, when the product is not that narrow, `pool` does not take the
/// convolution's output, or memory cannot be allocated.
bool nn_conv_skinny(int kernel, size_t count, const nn_spatial *g, const float *input, const float *packed,
                    size_t filters, const float *bias, bool relu, const nn_spatial *pool, float *output, int threads);

/// BLAS's sgemm on our kernels, for row-major matrices: C = alpha op(A) op(B) + beta C, op(A)
/// m x k and op(B) k x n, each as stored or transposed. alpha is applied to B as it is packed
/// (into a temporary copy); beta first, as BLAS does (beta 0: C is not read, only written).
/// False, with C untouched, when the copy cannot be allocated.
bool nn_sgemm(int kernel, bool transpose_a, bool transpose_b, size_t m, size_t n, size_t k, float alpha, const float *a,
              size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc, int threads);

/// The f32 multiply-add peak in GFLOP/s of `threads` threads each running `iterations` steps of
/// 12 independent vector FMAs on registers (`nn_gemm_avx2`: 8 lanes, `nn_gemm_avx512`: 16).
/// 0 for the scalar kernel or one this CPU lacks.
double nn_fma_peak(int kernel, int threads, long iterations);

// Products with low-precision weights (LowPrecisionGEMM.c): C = A B (+ bias, then ReLU) for f32
// rows of A and a B packed once as bf16 or as int8 with one scale per column.

/// The bf16 kernels: portable C, AVX512_BF16 (`vdpbf16ps`, 12 x 32 tiles), or AMX-BF16
/// (`tdpbf16ps`, 32 x 32 blocks; one-row products on the tiles too, so that a row's sums are
/// added in the order of its batch).
enum { nn_bf16_scalar = 0, nn_bf16_avx512 = 1, nn_bf16_amx = 2 };

/// The int8 kernels: portable C, AVX2 (`vpmaddwd` on int16 pairs, the weights widened
/// from int8 as they are loaded, exact; 6 x 16 tiles),
/// AVX512-VNNI (`vpdpbusd` on ZMM, u8 x s8 quads; 12 x 32 tiles), or AVX-VNNI (`vpdpbusd` on YMM,
/// VEX encoded, for CPUs without AVX-512; 6 x 16 tiles), or AMX (`tdpbusd` on 16 x 64-byte
/// tiles, 32 x 32 tiles of C; one-row products on AVX512-VNNI), or AVX2 on bytes (`vpmaddubsw`
/// on u8 x s8 quads, then `vpmaddwd` by ones; 6 x 16 tiles, the AVX-VNNI packing), exact only for
/// weights that `nn_i8_maddubs_exact` accepts (7-bit weights); on Zen 4 1.3x (batches) to 1.7x
/// (one row) the speed of the AVX2 pairs kernel.
enum { nn_i8_scalar = 0, nn_i8_avx2 = 1, nn_i8_vnni = 2, nn_i8_avx_vnni = 3, nn_i8_amx = 4, nn_i8_avx2_maddubs = 5 };

/// Whether `nn_i8_avx2_maddubs` sums the k x n int8 matrix B (row stride `ldb`) exactly: its
/// `vpmaddubsw` adds two u8 x s8 products into int16 with saturation, so each pair of depths
/// (2p, 2p + 1) of every column must have |w0| + |w1| <= 128 (255 * 128 = 32,640 <= 32,767).
/// True for every weight in -64...64, as `nnconv quantize --weight-bits 7` writes.
bool nn_i8_maddubs_exact(const int8_t *b, size_t ldb, size_t k, size_t n);

/// The bits of the activations that multiply the int8 weights b[count]: 7 when every weight lies
/// in -63...63 (`nnconv quantize --weight-bits 7`), else 8. With 7-bit activations (0...127)
/// four products sum to at most 4 * 127 * 63 = 32,004, so `nn_i8_avx2_maddubs` adds two steps'
/// int16 pair sums before widening them (exact; a sixth fewer instructions). Every kernel
/// quantizes such a layer's inputs to 7 bits, so that every CPU computes the same values.
int nn_i8_activation_bits(const int8_t *b, size_t count);

/// The deepest int8 product whose int32 sums cannot overflow (255 * 127 * 65,536 < 2^31).
enum { nn_i8_max_depth = 65536 };

/// Whether this CPU (and OS) runs the bf16 / int8 `kernel`.
bool nn_bf16_supported(int kernel);
bool nn_i8_supported(int kernel);

/// Number of bf16 values `nn_bf16_pack` writes for a k x n matrix packed for `kernel`.
size_t nn_bf16_packed_count(int kernel, size_t k, size_t n);

/// Packs a row-major f32 B[k][n] (row stride `ldb`), rounded to bf16 (nearest even): panels of
/// 32 columns, pairs of depths of a column adjacent, zero-padded.
void nn_bf16_pack(int kernel, const float *b, size_t ldb, size_t k, size_t n, uint16_t *packed);

/// C = bf16(A) B (+ bias, then ReLU, NaN becoming 0): each row of A is rounded to bf16 as it is
/// packed, products are exact and summed in f32. A kernel this CPU lacks is never run (the
/// portable one is). False, with nothing written, when scratch memory cannot be allocated.
bool nn_bf16_gemm(int kernel, size_t m, size_t n, size_t k, const float *a, size_t lda, const uint16_t *packed,
                  float *c, size_t ldc, const float *bias, bool relu, int threads);

/// Bytes `nn_i8_pack` writes for a k x n int8 matrix packed for `kernel`.
size_t nn_i8_packed_bytes(int kernel, size_t k, size_t n);

/// Packs a row-major int8 B[k][n] (values in -127...127) for `kernel`, with its column sums.
void nn_i8_pack(int kernel, const int8_t *b, size_t ldb, size_t k, size_t n, void *packed);

/// A calibrated quantization of activations (format 1.4's `input_quantization`): every row
/// becomes q = clamp(round(x / scale) + zero, 0, 255), values past the calibrated range clipped.
typedef struct {
    float scale;   // finite, > 0
    int32_t zero;  // 0...255
} nn_i8_input;

/// C = dequantized (quantize(A) B): each row of A is preprocessed by `prologue` when it is not
/// NULL (A's values bytes when it says so), then quantized to u8, with `input`'s scale and
/// zero point or, when `input` is NULL, with its own (`nn_i8_quantize_row` with `bits`, 8 or 7:
/// `nn_i8_activation_bits`); the products are summed exactly in int32, and each sum is
/// dequantized with the row's and the column's (`scales[n]`) scales, the bias added and ReLU
/// applied in the same pass. False when k > nn_i8_max_depth, `bits` is neither 8 nor 7 (or 7
/// with `input`, calibrated for 8), or memory cannot be allocated.
bool nn_i8_gemm(int kernel, int bits, size_t m, size_t n, size_t k, const void *a, size_t lda, const void *packed,
                const float *scales, const nn_i8_input *input, const nn_prologue *prologue, float *c, size_t ldc,
                const float *bias, bool relu, int threads);

/// The int32 sums alone, C[i][j] = sum_p a[i][p] b[p][j], for u8 rows of A (each value at most
/// 127 when `bits` is 7, the weights then in -63...63): what the tests compare exactly against a
/// reference.
bool nn_i8_gemm_s32(int kernel, int bits, size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed,
                    int32_t *c, size_t ldc, int threads);

/// As `nn_i8_gemm` for rows of A already quantized to u8 with 8 bits (a convolution's im2col rows
/// of samples quantized once each, `nn_i8_quantize_samples`): row i with the scale row_scales[i /
/// rows_per_scale] and zero point row_zeros[i / rows_per_scale]. False when k > nn_i8_max_depth,
/// rows_per_scale is 0 or memory cannot be allocated.
bool nn_i8_gemm_u8(int kernel, size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed,
                   const float *scales, const float *row_scales, const int32_t *row_zeros, size_t rows_per_scale, float *c, size_t ldc,
                   const float *bias, bool relu, int threads);

/// Quantizes `count` samples of `size` values (x[count][size]) to u8, each as a whole: with
/// `input`'s calibrated scale and zero point, or (NULL) its own range as `nn_i8_quantize_row`
/// with 8 bits; on the vector width of `kernel`'s family (every width gives the same bytes).
void nn_i8_quantize_samples(int kernel, const float *x, size_t count, size_t size, const nn_i8_input *input, uint8_t *q,
                            float *scales, int32_t *zeros);

/// The im2col rows (windows in row, column, channel order) of `count` HWC samples of bytes with
/// geometry `g` into `out` (count * oh * ow rows of kh * kw * c bytes); a position in the padding
/// holds its sample's zero point (zero_points[sample]).
void nn_im2col_u8(const nn_spatial *g, const uint8_t *input, size_t count, const int32_t *zero_points, uint8_t *out);

/// Bytes `nn_i8_conv_pack` writes for an int8 convolution of one input channel with a kh x kw
/// window (kw at most 8) and at most 16 filters; 0 for other shapes, which the direct kernel
/// does not take.
size_t nn_i8_conv_packed_bytes(size_t kh, size_t kw, size_t filters);

/// Packs an int8 convolution weight [kh][kw][1][filters] (cross-correlation form, values in
/// -127...127) for `nn_i8_conv`, with each filter's sum.
void nn_i8_conv_pack(const int8_t *w, size_t kh, size_t kw, size_t filters, void *packed);

/// Whether this CPU runs `nn_i8_conv` with `kernel` for `filters` filters: `nn_i8_vnni`
/// (AVX512-VNNI with AVX-512 F, BW, VL; at most 16 filters), `nn_i8_avx2_maddubs` (AVX2; at
/// most 8 filters, and only for weights `nn_i8_conv_maddubs_exact` accepts) or `nn_i8_avx2`
/// (AVX2, int16 pairs, any int8 weights; at most 8 filters).
bool nn_i8_conv_supported(int kernel, size_t filters);

/// Whether `nn_i8_avx2_maddubs` convolves with the weight [kh][kw][1][filters] exactly: each pair
/// of columns (2c, 2c + 1) of a window row has |w0| + |w1| <= 128 for every filter (true for
/// 7-bit weights, -64...64), so `vpmaddubsw`'s int16 pair sums cannot saturate.
bool nn_i8_conv_maddubs_exact(const int8_t *w, size_t kh, size_t kw, size_t filters);

/// A direct int8 convolution of `count` one-channel samples (stride 1; any padding), each sample
/// quantized to u8 as a whole, with `input`'s scale and zero point or (NULL) its own range
/// (`nn_i8_quantize_row` over the sample), the padding as the zero point; with `nn_i8_vnni` per
/// output two pixels x 8 filters (or one x 16) in a vector, one `vpdpbusd` per window row and four
/// window columns; with `nn_i8_avx2_maddubs` one pixel x 8 filters, `vpmaddubsw` and `vpmaddwd`
/// instead (the caller checks `nn_i8_conv_maddubs_exact`); with `nn_i8_avx2` one pixel x 8
/// filters, `vpmaddwd` on the sample widened to u16 and two window columns; sums exact in int32, dequantized with `scales[filters]`, the bias added, ReLU applied; HWC
/// output. With `pool`, each sample is max-pooled right after (`nn_max_pool_sample`) and only the
/// pooled values are written. False, with nothing written, when the CPU, the geometry or memory
/// does not allow it.
bool nn_i8_conv(int kernel, size_t count, const nn_spatial *g, const float *samples, const void *packed, size_t filters,
                const float *scales, const nn_i8_input *input, const float *bias, bool relu, const nn_spatial *pool,
                float *output, int threads);

/// The activation quantization of `nn_i8_gemm` with `bits` (8 or 7) bits: [min(x, 0), max(x, 0)]
/// onto 0...top (255, or 127), q = clamp(round(x / scale) + zero, 0, top); NaN becomes 0 (the low
/// end of the range); on the vector width `kernel`'s products quantize with (every width gives
/// the same bytes).
void nn_i8_quantize_row(int kernel, int bits, const float *x, size_t k, uint8_t *q, float *scale, int32_t *zero);

#endif
