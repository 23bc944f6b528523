#include "NNKernels.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "CPUFeatures.h"
#include "Helper.h"
#include "Pooling.h"
#include "Prologue.h"

// C = A B (+ bias, then ReLU) in f32, the way BLIS and OpenBLAS do it: B is packed once into
// panels of NR columns stored row by row; a block of A (up to `block_rows` rows and `kc` of its
// columns) is packed into groups of MR rows (`a_chunk` steps of each row side by side); a
// micro-kernel keeps an MR x NR tile of C in registers while it walks kc steps down one group
// and one panel. The loops around it keep a panel's kc x NR slice in L1 (16 KiB for AVX2,
// 24 KiB for AVX-512) while the packed block of A (about 120 KiB) is read from L2.
//
// A is read from memory once, by the packing, which the micro-kernels wait for: about 15 % of
// a product of 10,000 x 784 by 784 x 256 on one core. So while a unit of work computes, its
// micro-kernels prefetch, one cache line every `prefetch_steps` steps, the rows of A of the unit
// this thread will probably take next, into L2, where its packing then finds them (one thread:
// 79 -> 86 % of the FMA peak on that product, in blocks of 668 rows as the engine runs it).
//
// Threads: the rows are cut into blocks that the calling thread and the helper thread
// (Helper.c) take one at a time from a shared counter, so a helper that is late, or shares its
// CPU with another process, leaves its blocks to the caller instead of holding it up.

enum { flag_accumulate = 1, flag_bias = 2, flag_relu = 4 };

enum { max_mr = 12, max_nr = 32, max_kc = 256 };

/// Adds the MR x NR tile A B over kc steps into C (see the flags); prefetches one cache line
/// from `ahead` on, every `a_chunk` steps. `a` is a group of MR rows packed as `pack_a` does.
typedef void (*micro_kernel)(size_t kc, const float *a, const float *b, float *c, size_t ldc, int flags, const float *bias,
                             const char *ahead);

// The micro-kernels run in groups of this many steps, and a group of MR rows of packed A holds
// each row's values for a group of steps together, row after row: value p of row r is at
// `packed_a_index(p, r, MR)`. A group's MR x 8 values are then at fixed offsets from one
// pointer, which the broadcasts take as memory operands, and packing a row is a copy of 8
// floats at a time, with no transposes. Each group issues one prefetch: 98 lines per 784 steps,
// enough for A's rows of the next unit when a row block meets at least six panels (as 784 x 256
// products do), and too few to fill the line fill buffers the kernel's own loads need.
enum { a_chunk = 8 };

static inline size_t packed_a_index(size_t p, size_t r, size_t mr) {
    return p / a_chunk * a_chunk * mr + r * a_chunk + p % a_chunk;
}

/// Floats of a packed group of `mr` rows over kc steps (the last group of steps padded to
/// `a_chunk`).
static inline size_t packed_a_group(size_t kc, size_t mr) {
    return (kc + a_chunk - 1) / a_chunk * a_chunk * mr;
}

/// A stretch of a kc block of a convolution's windows: `count` values of window row `row` from
/// its value `column` on (its columns and their channels), adjacent in the sample: `offset`
/// values past the window's first value when the window lies inside its sample.
typedef struct {
    size_t row, column, count, offset;
} window_stretch;

/// The output position after (sample, oy, ox) in a convolution's windows, row by row.
static inline void next_window(const nn_spatial *g, size_t *sample, size_t *oy, size_t *ox) {
    if (++*ox == g->ow) {
        *ox = 0;
        if (++*oy == g->oh) {
            *oy = 0;
            ++*sample;
        }
    }
}

/// The stretches of kc block [pc, pc + kc) of a window of `g` (`window_stretch`), in order;
/// returns how many (at most kc).
static size_t window_stretches(const nn_spatial *g, size_t pc, size_t kc, window_stretch *out) {
    size_t row_values = g->kw * g->c, count = 0;
    for (size_t u = pc / row_values; u < g->kh && u * row_values < pc + kc; u++) {
        size_t start = u * row_values, from = pc > start ? pc - start : 0;
        size_t to = pc + kc - start < row_values ? pc + kc - start : row_values;
        out[count++] = (window_stretch){u, from, to - from, u * g->w * g->c + from};
    }
    return count;
}

/// As `micro_kernel` for MR windows read where they are (`rows`: each window's first value in its
/// sample) over the stretches of a kc block, in order: the same FMAs in the same order as on the
/// windows packed, so the same bits.
typedef void (*window_kernel)(const float *const *rows, const window_stretch *stretches, size_t count, const float *b, float *c,
                              size_t ldc, int flags, const float *bias);

typedef struct {
    size_t mr, nr, kc_max;
    micro_kernel kernel;
    micro_kernel kernel4;  // the first 4 rows of a packed group of MR, for edge tiles of 4 rows or fewer (or NULL)
    window_kernel windows; // MR windows read in place (or NULL)
    size_t window_rows;    // rows (windows) per block of a convolution read in place: at most `block_rows`
} kernel_shape;

// Rows per block of A: a multiple of 6 and of 12; with kc <= 256, at most 120 KiB packed.
enum { block_rows = 120 };

// Below this many multiply-adds a product takes a few microseconds on one core, about what
// waking the helper and handing it work costs.
enum { parallel_minimum = 1 << 18 };

// Units of work a product shared by two threads is cut into, at least: the thread that takes the
// last unit finishes up to one unit after the other, so with nine units of 120 rows (nn-infer's
// batches of 1,024) the caller waited for the helper about a tenth of each product.
enum { parallel_units = 16 };

/// Rows per unit of work for `m` rows: at most `largest`, a multiple of `multiple`, small enough
/// for `parallel_units` units when the product is shared.
static size_t rows_per_unit(size_t m, size_t largest, size_t multiple, bool parallel) {
    size_t wanted = parallel ? (m + parallel_units - 1) / parallel_units : largest;
    if (wanted > largest) wanted = largest;
    return (wanted + multiple - 1) / multiple * multiple;
}

// The portable kernel: the same blocking on plain C loops (what a CPU without AVX2 runs, and
// the tests' "scalar" path). MR = 4; NR is the packing's (16, or 32 for the AVX-512 layout).
#define SCALAR_KERNEL(NR)                                                                          \
    static void scalar_kernel_##NR(size_t kc, const float *a, const float *b, float *c, size_t ldc, \
                                   int flags, const float *bias, const char *ahead) {              \
        (void)ahead;                                                                               \
        float acc[4][NR] = {{0}};                                                                  \
        for (size_t p = 0; p < kc; p++, b += NR) {                                                 \
            for (int r = 0; r < 4; r++) {                                                          \
                float x = a[packed_a_index(p, r, 4)];                                              \
                for (int j = 0; j < NR; j++) acc[r][j] += x * b[j];                                \
            }                                                                                      \
        }                                                                                          \
        for (int r = 0; r < 4; r++) {                                                              \
            float *row = c + r * ldc;                                                              \
            for (int j = 0; j < NR; j++) {                                                         \
                float v = acc[r][j];                                                               \
                if (flags & flag_accumulate) v += row[j];                                          \
                if (flags & flag_bias) v += bias[j];                                               \
                if (flags & flag_relu) v = v > 0 ? v : 0;                                          \
                row[j] = v;                                                                        \
            }                                                                                      \
        }                                                                                          \
    }
SCALAR_KERNEL(16)
SCALAR_KERNEL(32)

#if defined(__x86_64__)
#include <immintrin.h>

// One micro-kernel body for both vector widths: MR rows of NV vectors each. Every step loads NV
// vectors of the B panel, broadcasts MR values of A and issues MR * NV independent FMAs
// (AVX2 6 x 2 = 12, AVX-512 12 x 2 = 24 accumulators: enough to cover the FMA latency on two
// pipes). Bias and ReLU are applied to the tile in registers after the last kc block. The steps
// run in groups of `a_chunk`, each with one prefetch into L2 (hint T1).
// max(v, 0) returns its second operand for NaN, so NaN becomes 0, as in the engine's ReLU.
// The MR x NV accumulators live in registers only if every loop over them is unrolled (clang
// left the 12-row AVX-512 loop rolled, keeping the tile in memory: 76 instead of 150+ GFLOP/s).
// The tile's sums into C (rows `ldc` apart): added to what C holds (`flag_accumulate`), then the
// bias and ReLU (`flag_bias`, `flag_relu`: after the last kc block).
#define TILE_STORE(VEC, LANES, MR, NV, ZERO, LOAD, STORE, ADD, MAX)                                \
    UNROLL for (int r = 0; r < MR; r++) {                                                          \
        UNROLL for (int v = 0; v < NV; v++) {                                                      \
            float *to = c + r * ldc + v * LANES;                                                   \
            VEC t = acc[r][v];                                                                     \
            if (flags & flag_accumulate) t = ADD(t, LOAD(to));                                     \
            if (flags & flag_bias) t = ADD(t, LOAD(bias + v * LANES));                             \
            if (flags & flag_relu) t = MAX(t, ZERO());                                             \
            STORE(to, t);                                                                          \
        }                                                                                          \
    }
#define VECTOR_STEP(VEC, LANES, MR, NV, LOAD, SET1, FMADD)                                         \
    VEC bv[NV];                                                                                    \
    UNROLL for (int v = 0; v < NV; v++) bv[v] = LOAD(b + v * LANES);                               \
    UNROLL for (int r = 0; r < MR; r++) {                                                          \
        VEC x = SET1(a[r * a_chunk + u]);                                                          \
        UNROLL for (int v = 0; v < NV; v++) acc[r][v] = FMADD(x, bv[v], acc[r][v]);                \
    }
#define VECTOR_KERNEL(NAME, TARGET, VEC, LANES, MR, GROUP, NV, ZERO, LOAD, STORE, SET1, FMADD, ADD, MAX) \
    __attribute__((target(TARGET))) static void NAME(size_t kc, const float *a, const float *b,    \
                                                     float *c, size_t ldc, int flags,              \
                                                     const float *bias, const char *ahead) {       \
        VEC acc[MR][NV];                                                                           \
        UNROLL for (int r = 0; r < MR; r++)                                                        \
            UNROLL for (int v = 0; v < NV; v++) acc[r][v] = ZERO();                                \
        size_t p = 0;                                                                              \
        for (; p + a_chunk <= kc; ahead += 64) {                                                   \
            __builtin_prefetch(ahead, 0, 2);                                                       \
            UNROLL for (int u = 0; u < a_chunk; u++, p++, b += NV * LANES) {                       \
                VECTOR_STEP(VEC, LANES, MR, NV, LOAD, SET1, FMADD)                                 \
            }                                                                                      \
            a += a_chunk * GROUP;                                                                  \
        }                                                                                          \
        for (int u = 0; p < kc; p++, u++, b += NV * LANES) {                                       \
            VECTOR_STEP(VEC, LANES, MR, NV, LOAD, SET1, FMADD)                                     \
        }                                                                                          \
        TILE_STORE(VEC, LANES, MR, NV, ZERO, LOAD, STORE, ADD, MAX)                                \
    }

// The same tiles for a convolution's windows read in place (`window_kernel`): per stretch, each
// of the MR rows' values are adjacent, so a step broadcasts from MR pointers instead of from a
// packed group. Used for groups of windows that lie inside their sample (no padding); the others
// are packed.
#define WINDOW_KERNEL(NAME, TARGET, VEC, LANES, MR, NV, ZERO, LOAD, STORE, SET1, FMADD, ADD, MAX)                          \
    __attribute__((target(TARGET))) static void NAME(const float *const *rows, const window_stretch *stretches,          \
                                                     size_t count, const float *b, float *c, size_t ldc, int flags,       \
                                                     const float *bias) {                                                 \
        VEC acc[MR][NV];                                                                                                  \
        UNROLL for (int r = 0; r < MR; r++)                                                                               \
            UNROLL for (int v = 0; v < NV; v++) acc[r][v] = ZERO();                                                       \
        for (size_t s = 0; s < count; s++) {                                                                              \
            const float *x[MR];                                                                                           \
            UNROLL for (int r = 0; r < MR; r++) x[r] = rows[r] + stretches[s].offset;                                     \
            for (size_t p = 0; p < stretches[s].count; p++, b += NV * LANES) {                                            \
                VEC bv[NV];                                                                                               \
                UNROLL for (int v = 0; v < NV; v++) bv[v] = LOAD(b + v * LANES);                                          \
                UNROLL for (int r = 0; r < MR; r++) {                                                                     \
                    VEC xr = SET1(x[r][p]);                                                                               \
                    UNROLL for (int v = 0; v < NV; v++) acc[r][v] = FMADD(xr, bv[v], acc[r][v]);                          \
                }                                                                                                         \
            }                                                                                                             \
        }                                                                                                                 \
        TILE_STORE(VEC, LANES, MR, NV, ZERO, LOAD, STORE, ADD, MAX)                                                       \
    }
WINDOW_KERNEL(avx2_windows, "avx2,fma", __m256, 8, 6, 2, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps,
              _mm256_fmadd_ps, _mm256_add_ps, _mm256_max_ps)
WINDOW_KERNEL(avx512_windows, "avx512f,avx512bw,avx512vl,avx2,fma", __m512, 16, 12, 2, _mm512_setzero_ps, _mm512_loadu_ps,
              _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_max_ps)

// MR rows of a packed group of GROUP rows: the full tile (MR = GROUP), and the first 4 rows for
// edge tiles of 4 rows or fewer (a batch of 64 in training is 5 groups of 12 rows and one of 4,
// which the full kernel computed as 12).
VECTOR_KERNEL(avx2_kernel, "avx2,fma", __m256, 8, 6, 6, 2, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps,
              _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_max_ps)
VECTOR_KERNEL(avx2_kernel4, "avx2,fma", __m256, 8, 4, 6, 2, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps,
              _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_max_ps)
VECTOR_KERNEL(avx512_kernel, "avx512f,avx512bw,avx512vl,avx2,fma", __m512, 16, 12, 12, 2, _mm512_setzero_ps, _mm512_loadu_ps,
              _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_max_ps)
VECTOR_KERNEL(avx512_kernel4, "avx512f,avx512bw,avx512vl,avx2,fma", __m512, 16, 4, 12, 2, _mm512_setzero_ps, _mm512_loadu_ps,
              _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_max_ps)
#endif

// Narrow products (n at most one vector: 16 columns with AVX-512, 8 with AVX2): a convolution
// with few filters (im2col rows of 9 values times 8 filters) or a last layer of 10 classes. The
// tiled kernel would pack A and spend most of each 32-column tile on padding; here rows are read
// as they are and each of SKINNY_ROWS rows keeps one vector of sums, with the arithmetic of the
// tiled kernel (one FMA chain per output and kc block, blocks added in order, then bias, ReLU).
// Row r's value p is a[r * lda + at[p]]: `at` is 0, 1, 2... for a matrix, and the offsets of a
// convolution window's values in the input for `nn_conv_skinny`, which then reads no im2col rows.
enum { skinny_rows = 12 };
// MASK is the type of a mask of the first n lanes; LOADM/STOREM load and store those lanes only
// (the bias has n values, C rows n columns). PASS is the most rows one pass over the depth keeps
// in registers: 12 with AVX-512's 32 registers; 6 with AVX2's 16, where 12 accumulators, the B
// vector, a broadcast and the window offsets' addresses did not fit and clang kept accumulators
// on the stack (skinny_avx2 was 1.4x skinny_avx512's samples for the same convolution). Each row
// has its own chain either way, so the bits do not depend on it.
#define SKINNY_KERNEL(NAME, TARGET, PASS, VEC, MASK, MAKEMASK, ZERO, BROADCAST, LOAD, LOADM, STOREM, STORE, FMADD, ADD, MAX) \
    __attribute__((target(TARGET), always_inline)) static inline void NAME##_rows(                             \
        int rows, const skinny_step *step, const float *a, const size_t *at, float *sums) {                      \
        VEC acc[skinny_rows];                                                                                    \
        UNROLL for (int r = 0; r < skinny_rows; r++) if (r < rows) acc[r] = ZERO();                              \
        for (size_t p = 0; p < step->kc; p++) {                                                                  \
            VEC w = LOAD(step->b + p * step->nr);                                                                \
            UNROLL for (int r = 0; r < skinny_rows; r++) {                                                       \
                if (r < rows) acc[r] = FMADD(BROADCAST(a[r * step->lda + at[p]]), w, acc[r]);                    \
            }                                                                                                    \
        }                                                                                                        \
        /* A whole vector of columns (8 filters on AVX2) is loaded and stored without a mask: AMD's    */  \
        /* vmaskmovps stores are microcoded and slow (a tile of 12 rows stores 12 rows of C).          */  \
        bool full = step->n == sizeof(VEC) / sizeof(float);                                                      \
        MASK mask = MAKEMASK(step->n);                                                                           \
        VEC bias = !step->bias ? ZERO() : full ? LOAD(step->bias) : LOADM(step->bias, mask);                    \
        UNROLL for (int r = 0; r < skinny_rows; r++) {                                                           \
            if (r < rows) {                                                                                      \
                VEC t = acc[r];                                                                                  \
                if (step->add) t = ADD(t, LOAD(sums + r * max_nr));                                              \
                if (!step->last) {                                                                               \
                    STORE(sums + r * max_nr, t);                                                                 \
                    continue;                                                                                    \
                }                                                                                                \
                float *row = step->c + (size_t)r * step->ldc;                                                    \
                if (step->accumulate) t = ADD(t, full ? LOAD(row) : LOADM(row, mask));                           \
                if (step->bias) t = ADD(t, bias);                                                                \
                if (step->relu) t = MAX(t, ZERO());                                                              \
                if (full) STORE(row, t);                                                                         \
                else STOREM(row, mask, t);                                                                       \
            }                                                                                                    \
        }                                                                                                        \
    }                                                                                                            \
    __attribute__((target(TARGET))) static void NAME##_pass(int rows, const skinny_step *step, const float *a,  \
                                                            const size_t *at, float *sums) {                     \
        switch (rows) {                                                                                          \
        case 12: NAME##_rows(12, step, a, at, sums); break;                                                      \
        case 11: NAME##_rows(11, step, a, at, sums); break;                                                      \
        case 10: NAME##_rows(10, step, a, at, sums); break;                                                      \
        case 9: NAME##_rows(9, step, a, at, sums); break;                                                        \
        case 8: NAME##_rows(8, step, a, at, sums); break;                                                        \
        case 7: NAME##_rows(7, step, a, at, sums); break;                                                        \
        case 6: NAME##_rows(6, step, a, at, sums); break;                                                        \
        case 5: NAME##_rows(5, step, a, at, sums); break;                                                        \
        case 4: NAME##_rows(4, step, a, at, sums); break;                                                        \
        case 3: NAME##_rows(3, step, a, at, sums); break;                                                        \
        case 2: NAME##_rows(2, step, a, at, sums); break;                                                        \
        default: NAME##_rows(1, step, a, at, sums); break;                                                       \
        }                                                                                                        \
    }                                                                                                            \
    __attribute__((target(TARGET))) static void NAME(int rows, const skinny_step *step, const float *a,         \
                                                     const size_t *at, float *sums) {                            \
        if (rows <= PASS) {                                                                                      \
            NAME##_pass(rows, step, a, at, sums);                                                                \
            return;                                                                                              \
        }                                                                                                        \
        NAME##_pass(PASS, step, a, at, sums);                                                                    \
        skinny_step rest = *step;                                                                                \
        rest.c = step->c + (size_t)PASS * step->ldc;                                                             \
        NAME##_pass(rows - PASS, &rest, a + (size_t)PASS * step->lda, at, sums + PASS * max_nr);                 \
    }

/// One kc block of a skinny tile: B's rows for it, and where the sums go after the last block
/// (added to what C holds with `accumulate`).
typedef struct {
    size_t kc, nr, lda, n, ldc;
    const float *b, *bias;
    float *c;
    bool add, last, relu, accumulate;
} skinny_step;

#if defined(__x86_64__)
__attribute__((target("avx2"))) static inline __m256 avx2_load_mask(const float *p, __m256i m) { return _mm256_maskload_ps(p, m); }
__attribute__((target("avx2"))) static inline void avx2_store_mask(float *p, __m256i m, __m256 v) { _mm256_maskstore_ps(p, m, v); }
__attribute__((target("avx512f"))) static inline __m512 avx512_load_mask(const float *p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
__attribute__((target("avx512f"))) static inline void avx512_store_mask(float *p, __mmask16 m, __m512 v) { _mm512_mask_storeu_ps(p, m, v); }

SKINNY_KERNEL(skinny_avx2, "avx2,fma", 6, __m256, __m256i, nn_avx2_lanes, _mm256_setzero_ps, _mm256_set1_ps, _mm256_loadu_ps,
              avx2_load_mask, avx2_store_mask, _mm256_storeu_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_max_ps)
SKINNY_KERNEL(skinny_avx512, "avx512f,avx512bw,avx512vl,avx2,fma", 12, __m512, __mmask16, nn_avx512_lanes, _mm512_setzero_ps,
              _mm512_set1_ps, _mm512_loadu_ps, avx512_load_mask, avx512_store_mask, _mm512_storeu_ps, _mm512_fmadd_ps,
              _mm512_add_ps, _mm512_max_ps)
#endif

static const kernel_shape scalar16 = {4, 16, 256, scalar_kernel_16, NULL, NULL, block_rows};
static const kernel_shape scalar32 = {4, 32, 192, scalar_kernel_32, NULL, NULL, block_rows};
#if defined(__x86_64__)
// A convolution read in place on AVX2 runs blocks of 48 windows instead of 120: a block's windows
// then come from fewer input rows, which stay in L1 beside the panel's kc x 16 slice (the
// PyTorch MNIST CNN's second convolution, kc 144: 9.2 KiB of B and 7 input rows of 26 x 32
// floats, 23 KiB, for 120 windows of 24 a row). On a Zen 3, one thread, that CNN over 10k images
// took 3.50-4.11 s against 3.87-4.93 s in 6 alternating runs. Not measured on AVX-512.
static const kernel_shape avx2_shape = {6, 16, 256, avx2_kernel, avx2_kernel4, avx2_windows, 48};
static const kernel_shape avx512_shape = {12, 32, 192, avx512_kernel, avx512_kernel4, avx512_windows, block_rows};
#endif

bool nn_gemm_supported(int kernel) {
    switch (kernel) {
    case nn_gemm_scalar: return true;
    case nn_gemm_avx2: return nn_cpu_features() & nn_cpu_avx2_fma;
    case nn_gemm_avx512: return nn_cpu_features() & nn_cpu_avx512;
    default: return false;
    }
}

int nn_gemm_best(void) {
    if (nn_gemm_supported(nn_gemm_avx512)) return nn_gemm_avx512;
    if (nn_gemm_supported(nn_gemm_avx2)) return nn_gemm_avx2;
    return nn_gemm_scalar;
}

/// Panel width of the packing for `kernel`: 32 for AVX-512, else 16.
static size_t panel_width(int kernel) { return kernel == nn_gemm_avx512 ? 32 : 16; }

/// The kernel that runs for a packing made for `kernel`: that one when this CPU has it (the
/// caller normally asks only for supported kernels), else the portable one of the same width, so
/// no instruction the CPU lacks is ever executed.
static const kernel_shape *shape_for(int kernel) {
#if defined(__x86_64__)
    if (kernel == nn_gemm_avx512 && nn_gemm_supported(nn_gemm_avx512)) return &avx512_shape;
    if (kernel == nn_gemm_avx2 && nn_gemm_supported(nn_gemm_avx2)) return &avx2_shape;
#endif
    return panel_width(kernel) == 32 ? &scalar32 : &scalar16;
}

/// Lanes of one vector of the kernel of shape `s` (16 AVX-512, 8 AVX2), 0 for the portable
/// kernels: the width of the narrow (skinny) products and of the one-row kernel's chains.
static size_t vector_lanes(const kernel_shape *s) {
#if defined(__x86_64__)
    if (s == &avx512_shape) return 16;
    if (s == &avx2_shape) return 8;
#endif
    (void)s;
    return 0;
}

/// The depth of the kc blocks for `k`: equal blocks of at most kc_max (784 = 4 x 196, not
/// 3 x 256 + 16). The row product must use the same blocks as the batch product.
static size_t kc_for(const kernel_shape *s, size_t k) {
    size_t blocks = (k + s->kc_max - 1) / s->kc_max;
    return (k + blocks - 1) / blocks;
}

size_t nn_gemm_packed_size(int kernel, size_t k, size_t n) {
    size_t nr = panel_width(kernel);
    return (n + nr - 1) / nr * nr * k;
}

/// op(B) (k x n) to be packed into panels of nr columns, each stored row by row (the last
/// zero-padded), each value times alpha: B as stored (row p at b + p * ldb) or transposed
/// (op(B)[p][j] at b[j * ldb + p]). The engine's weights are packed so once (alpha 1, exact).
typedef struct {
    const float *b;
    size_t ldb, k, n, nr;
    bool transposed;
    float alpha;
    float *packed;
} b_packing;

/// Rows [pc, pc + kc) of panel `panel` of op(B), times alpha, into `to` (kc x nr, the columns
/// past n zero): a slice of the packing.
static void copy_b_slice(const b_packing *b, size_t panel, size_t pc, size_t kc, float *to) {
    size_t nr = b->nr, col0 = panel * nr, cols = b->n - col0 < nr ? b->n - col0 : nr;
    if (b->transposed) {
        // Column j of the panel is row col0 + j of b: read along it.
        for (size_t j = 0; j < cols; j++) {
            const float *row = b->b + (col0 + j) * b->ldb + pc;
            for (size_t p = 0; p < kc; p++) to[p * nr + j] = b->alpha * row[p];
        }
        for (size_t p = 0; p < kc; p++) {
            for (size_t j = cols; j < nr; j++) to[p * nr + j] = 0;
        }
        return;
    }
    for (size_t p = 0; p < kc; p++) {
        const float *row = b->b + (pc + p) * b->ldb + col0;
        for (size_t j = 0; j < cols; j++) to[p * nr + j] = b->alpha * row[j];
        for (size_t j = cols; j < nr; j++) to[p * nr + j] = 0;
    }
}

/// Panels [first, end) of a `b_packing`, whole.
static void pack_b_panels(const void *context, size_t first, size_t end) {
    const b_packing *job = context;
    for (size_t panel = first; panel < end; panel++) copy_b_slice(job, panel, 0, job->k, job->packed + panel * job->k * job->nr);
}

void nn_gemm_pack(int kernel, const float *b, size_t ldb, size_t k, size_t n, float *packed) {
    b_packing job = {.b = b, .ldb = ldb, .k = k, .n = n, .nr = panel_width(kernel), .alpha = 1, .packed = packed};
    pack_b_panels(&job, 0, (n + job.nr - 1) / job.nr);
}

typedef struct {
    const kernel_shape *shape;
    size_t m, n, k, lda, ldc;
    const void *a;                // floats, or bytes under a prologue that says so
    const float *packed, *bias;
    const nn_prologue *prologue;  // the preprocessing of A's rows as they are packed, or NULL
    const void *then_a;           // rows of A the caller multiplies next (then_rows of them), or NULL
    size_t then_rows;
    float *c;
    bool relu;
    bool transposed_a;  // A stored k x m: op(A)[i][p] at a[p * lda + i]
    bool accumulate;    // C += A B instead of C = A B
    const nn_spatial *windows;  // A is the windows of a convolution of the samples at `a` (row i: window i), or NULL
    size_t rows_per_block, panels, panels_per_group, groups, units;
    size_t threads;    // taking units: 1, or 2 with the helper
    size_t kc;         // the kc blocks' length (the last may be shorter)
    float *buffers;    // one packed-A block per thread
    size_t buffer_floats;
    _Atomic size_t next;
} gemm_job;

/// rows x kc of A (row stride lda) into groups of MR rows, each group's values chunk after chunk
/// of `a_chunk` steps, the rows' chunks side by side (`packed_a_index`); rows past `rows` in the
/// last group are zeros. With a prologue, a row is preprocessed first (`column0`: the column of
/// A's first value here; A's values are bytes when the prologue says so).
static void pack_a(const void *a, size_t lda, size_t rows, size_t kc, size_t mr, float *to, const nn_prologue *prologue,
                   size_t column0) {
    nn_prologue slice;  // the prologue of columns column0...
    if (prologue) {
        slice = *prologue;
        if (slice.mean) {
            slice.mean += column0;
            slice.divisor += column0;
        }
    }
    size_t whole = kc / a_chunk * a_chunk, group = packed_a_group(kc, mr);
    _Alignas(64) float preprocessed[max_kc];
    for (size_t g = 0; g < rows; g += mr, to += group) {
        for (size_t r = 0; r < mr; r++) {
            if (g + r >= rows) {
                for (size_t p = 0; p < kc; p += a_chunk) memset(to + packed_a_index(p, r, mr), 0, a_chunk * sizeof(float));
                continue;
            }
            const float *from = (const float *)a + (g + r) * lda;
            if (prologue) {
                nn_preprocess_row(&slice, nn_prologue_element(prologue, a, lda, g + r, 0), kc, preprocessed);
                from = preprocessed;
            }
            for (size_t p = 0; p < whole; p += a_chunk) memcpy(to + packed_a_index(p, r, mr), from + p, a_chunk * sizeof(float));
            if (whole < kc) memcpy(to + packed_a_index(whole, r, mr), from + whole, (kc - whole) * sizeof(float));
        }
    }
}

/// `NAME_values`: the values of a kc block (its `stretches`) of the window at output position
/// (oy, ox) of a convolution with geometry `g` over the HWC sample `x` (its values row by row of
/// the window, each row's columns and their channels adjacent, as `im2col` writes them), into
/// `out`: each stretch inside the sample one copy, positions in the padding zeros.
/// `NAME`: as `pack_a` for the windows [row0, row0 + rows) of a convolution of the samples at
/// `input` (window i: sample i / (oh * ow), then its output position): the values im2col would
/// have written, gathered from the samples while packing, so that the im2col rows (9 copies of
/// every value for a 3 x 3 window) are never written and read back.
/// The copies are loops the compiler vectorizes, not memcpy, which clang would otherwise call
/// for them (stretches are tens of values; the calls took 7 % of the PyTorch MNIST CNN's f32
/// time); an AVX2 form for the CPUs with it (the SSE2 loops took 12 %). Writing the stretches
/// straight into the packed chunks instead of through `values` took twice as long.
#define PACK_WINDOWS(NAME, ATTRIBUTES)                                                                                       \
    ATTRIBUTES static void NAME##_values(const nn_spatial *g, const float *x, size_t oy, size_t ox,                        \
                                         const window_stretch *stretches, size_t count, float *out) {                       \
        ptrdiff_t ix0 = (ptrdiff_t)(ox * g->sw) - (ptrdiff_t)g->left;                                                       \
        bool inside = ix0 >= 0 && ix0 + (ptrdiff_t)g->kw <= (ptrdiff_t)g->w;                                                \
        float *o = out;                                                                                                     \
        for (size_t s = 0; s < count; s++) {                                                                                \
            size_t from = stretches[s].column, to = from + stretches[s].count;                                              \
            ptrdiff_t iy = (ptrdiff_t)(oy * g->sh + stretches[s].row) - (ptrdiff_t)g->top;                                  \
            if (iy < 0 || iy >= (ptrdiff_t)g->h) {                                                                          \
                for (size_t q = from; q < to; q++) *o++ = 0;                                                                \
                continue;                                                                                                   \
            }                                                                                                               \
            const float *line = x + (size_t)iy * g->w * g->c;                                                               \
            if (inside) {                                                                                                   \
                const float *in = line + (size_t)ix0 * g->c;                                                                \
                for (size_t q = from; q < to; q++) *o++ = in[q];                                                            \
                continue;                                                                                                   \
            }                                                                                                               \
            for (size_t q = from; q < to; q++) {                                                                            \
                ptrdiff_t ix = ix0 + (ptrdiff_t)(q / g->c);                                                                 \
                *o++ = ix < 0 || ix >= (ptrdiff_t)g->w ? 0 : line[(size_t)ix * g->c + q % g->c];                            \
            }                                                                                                               \
        }                                                                                                                   \
    }                                                                                                                       \
    ATTRIBUTES static void NAME(const nn_spatial *g, const float *input, size_t row0, size_t rows,                          \
                                const window_stretch *stretches, size_t count, size_t kc, size_t mr, float *to) {          \
        size_t group = packed_a_group(kc, mr), padded = (kc + a_chunk - 1) / a_chunk * a_chunk;                             \
        size_t positions = g->oh * g->ow, sample = row0 / positions, position = row0 % positions;                           \
        size_t oy = position / g->ow, ox = position % g->ow;                                                                \
        _Alignas(64) float values[max_kc + a_chunk];                                                                        \
        for (size_t gr = 0; gr < rows; gr += mr, to += group) {                                                             \
            for (size_t r = 0; r < mr; r++) {                                                                               \
                if (gr + r >= rows) {                                                                                       \
                    for (size_t p = 0; p < padded; p++) to[packed_a_index(p, r, mr)] = 0;                                   \
                    continue;                                                                                               \
                }                                                                                                           \
                NAME##_values(g, input + sample * g->h * g->w * g->c, oy, ox, stretches, count, values);                    \
                for (size_t p = kc; p < padded; p++) values[p] = 0;                                                         \
                for (size_t p = 0; p < padded; p += a_chunk) {                                                              \
                    float *chunk = to + packed_a_index(p, r, mr);                                                           \
                    for (size_t q = 0; q < a_chunk; q++) chunk[q] = values[p + q];                                          \
                }                                                                                                           \
                next_window(g, &sample, &oy, &ox);                                                                          \
            }                                                                                                               \
        }                                                                                                                   \
    }
#if defined(__x86_64__)
PACK_WINDOWS(pack_windows_avx2, __attribute__((target("avx2"), no_builtin("memcpy", "memset"))))
#endif
PACK_WINDOWS(pack_windows_portable, __attribute__((no_builtin("memcpy", "memset"))))

static void pack_windows(const nn_spatial *g, const float *input, size_t row0, size_t rows, const window_stretch *stretches,
                         size_t count, size_t kc, size_t mr, float *to) {
#if defined(__x86_64__)
    if (nn_cpu_features() & nn_cpu_avx2_fma) {
        pack_windows_avx2(g, input, row0, rows, stretches, count, kc, mr, to);
        return;
    }
#endif
    pack_windows_portable(g, input, row0, rows, stretches, count, kc, mr, to);
}

#if defined(__x86_64__)
/// Rows `from[u * lda + r]` (8 steps u of 8 rows r) as `to[r * a_chunk + u]`: one 8 x 8
/// transposition in registers instead of 64 scalar copies.
__attribute__((target("avx2"))) static void transpose_8x8(const float *from, size_t lda, float *to) {
    __m256 r[8], t[8];
    for (int u = 0; u < 8; u++) r[u] = _mm256_loadu_ps(from + u * lda);
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    __m256 s[8];
    for (int h = 0; h < 2; h++) {
        s[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        s[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
        s[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        s[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(to + i * a_chunk, _mm256_permute2f128_ps(s[i], s[i + 4], 0x20));
        _mm256_storeu_ps(to + (i + 4) * a_chunk, _mm256_permute2f128_ps(s[i], s[i + 4], 0x31));
    }
}

/// The same for 4 rows: two 4 x 4 transpositions.
__attribute__((target("avx2"))) static void transpose_8x4(const float *from, size_t lda, float *to) {
    for (int half = 0; half < 2; half++, from += 4 * lda) {
        __m128 r0 = _mm_loadu_ps(from), r1 = _mm_loadu_ps(from + lda), r2 = _mm_loadu_ps(from + 2 * lda),
               r3 = _mm_loadu_ps(from + 3 * lda);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        _mm_storeu_ps(to + 4 * half, r0);
        _mm_storeu_ps(to + a_chunk + 4 * half, r1);
        _mm_storeu_ps(to + 2 * a_chunk + 4 * half, r2);
        _mm_storeu_ps(to + 3 * a_chunk + 4 * half, r3);
    }
}
#endif

/// As `pack_a` (no prologue) for A stored transposed: value p of row r at a[p * lda + r] (the
/// weight gradient's X^T). A chunk of a group is then a transposition of `a_chunk` rows of
/// memory, each read along; whole chunks of 8 steps are transposed
/// 8 or 4 rows at a time in registers when the CPU has AVX2 (it only moves values: the packing
/// is the same).
static void pack_a_transposed(const float *a, size_t lda, size_t rows, size_t kc, size_t mr, float *to) {
    size_t group = packed_a_group(kc, mr);
#if defined(__x86_64__)
    bool vector = nn_cpu_features() & nn_cpu_avx2_fma;
#else
    bool vector = false;
#endif
    for (size_t g = 0; g < rows; g += mr, to += group) {
        size_t real = rows - g < mr ? rows - g : mr;
        for (size_t p0 = 0; p0 < kc; p0 += a_chunk) {
            size_t steps = kc - p0 < a_chunk ? kc - p0 : a_chunk;
            float *chunk = to + packed_a_index(p0, 0, mr);
            const float *from = a + p0 * lda + g;
            if (steps < a_chunk || real < mr) memset(chunk, 0, a_chunk * mr * sizeof(float));
            size_t r0 = 0;
#if defined(__x86_64__)
            if (vector && steps == a_chunk) {
                for (; r0 + 8 <= real; r0 += 8) transpose_8x8(from + r0, lda, chunk + r0 * a_chunk);
                for (; r0 + 4 <= real; r0 += 4) transpose_8x4(from + r0, lda, chunk + r0 * a_chunk);
            }
#endif
            for (size_t u = 0; u < steps; u++, from += lda) {
                for (size_t r = r0; r < real; r++) chunk[r * a_chunk + u] = from[r];
            }
        }
    }
}

/// The rows of A that the unit this thread will probably run after `unit` reads: returns their
/// first byte and sets `*end` past their last, when that unit starts a new row block and A's rows
/// lie back to back (a batch as the engine hands it over); else NULL, with `*end` NULL. Units
/// are claimed in order, each thread taking one in turn, so that unit is `unit` plus the threads
/// times the panel groups of a block. After the last unit of a product on one thread, the first
/// block of rows the caller said it multiplies next (`then_a`).
static const char *rows_ahead(const gemm_job *job, size_t unit, const char **end) {
    size_t later = unit + job->threads * job->groups;
    *end = NULL;
    if (job->lda != job->k || job->transposed_a || job->windows) return NULL;
    if (later == job->units && job->then_a && job->threads == 1) {
        size_t rows = job->then_rows < job->rows_per_block ? job->then_rows : job->rows_per_block;
        *end = nn_prologue_element(job->prologue, job->then_a, job->lda, rows, 0);
        return nn_prologue_element(job->prologue, job->then_a, job->lda, 0, 0);
    }
    if (later >= job->units || later % job->groups != 0) return NULL;
    size_t row0 = later / job->groups * job->rows_per_block;
    size_t rows = job->m - row0 < job->rows_per_block ? job->m - row0 : job->rows_per_block;
    const char *first = nn_prologue_element(job->prologue, job->a, job->lda, row0, 0);
    *end = nn_prologue_element(job->prologue, job->a, job->lda, row0 + rows, 0);
    return first;
}

/// Where a tile's rows of A come from: a packed group of MR rows (`packed`), or MR windows of a
/// convolution read in place (`windows`, their first values, over `stretches`).
typedef struct {
    const float *packed;
    const float *const *windows;
    const window_stretch *stretches;
    size_t stretch_count;
} tile_rows;

/// The kernel on one tile of `real` rows and `cols` columns of C (at most MR x NR).
static void run_tile_from(const kernel_shape *s, size_t kc, const tile_rows *a, const float *b, float *c, size_t ldc, size_t real,
                          size_t cols, int flags, const float *bias, const char *prefetch) {
    size_t mr = s->mr, nr = s->nr;
    if (real == mr && cols == nr) {
        if (a->packed) s->kernel(kc, a->packed, b, c, ldc, flags, bias, prefetch);
        else s->windows(a->windows, a->stretches, a->stretch_count, b, c, ldc, flags, bias);
        return;
    }
    // An edge tile: computed into a full tile, then its real part copied out (the bias is
    // applied here because it has only `cols` values).
    _Alignas(64) float tile[max_mr * max_nr];
    memset(tile, 0, sizeof tile);
    if (flags & flag_accumulate) {
        for (size_t r = 0; r < real; r++) memcpy(tile + r * nr, c + r * ldc, cols * sizeof(float));
    }
    if (a->packed) {
        micro_kernel kernel = real <= 4 && s->kernel4 ? s->kernel4 : s->kernel;
        kernel(kc, a->packed, b, tile, nr, flags & flag_accumulate, NULL, prefetch);
    } else {
        s->windows(a->windows, a->stretches, a->stretch_count, b, tile, nr, flags & flag_accumulate, NULL);
    }
    for (size_t r = 0; r < real; r++) {
        for (size_t j = 0; j < cols; j++) {
            float v = tile[r * nr + j];
            if (flags & flag_bias) v += bias[j];
            if (flags & flag_relu) v = v > 0 ? v : 0;
            c[r * ldc + j] = v;
        }
    }
}

static void run_tile(const kernel_shape *s, size_t kc, const float *a, const float *b, float *c, size_t ldc, size_t real,
                     size_t cols, int flags, const float *bias, const char *prefetch) {
    tile_rows rows = {.packed = a};
    run_tile_from(s, kc, &rows, b, c, ldc, real, cols, flags, bias, prefetch);
}

/// The windows [row0, row0 + rows) of a convolution (`g`) over the samples at `input` whose
/// groups of MR lie inside their samples (no padding): each such window's first value in `at`
/// (by row of the block), `in_place[group]` true; returns whether any group is. Only for a
/// kernel with a window form (else nothing is in place). Short window rows (one channel: 3
/// values) cost a few pointer additions a stretch, which run beside the FMAs: the PyTorch MNIST
/// CNN's first convolution took 6 % of its time packed, 4.6 % in place.
static bool windows_in_place(const kernel_shape *s, const nn_spatial *g, const float *input, size_t row0, size_t rows,
                             const float **at, bool *in_place) {
    size_t mr = s->mr, groups = (rows + mr - 1) / mr;
    bool any = false;
    for (size_t group = 0; group < groups; group++) in_place[group] = false;
    if (!s->windows) return false;
    size_t positions = g->oh * g->ow, sample = row0 / positions, position = row0 % positions;
    size_t oy = position / g->ow, ox = position % g->ow;
    for (size_t group = 0; group < groups; group++) {
        bool inside = group * mr + mr <= rows;
        for (size_t r = 0; r < mr && group * mr + r < rows; r++) {
            ptrdiff_t iy = (ptrdiff_t)(oy * g->sh) - (ptrdiff_t)g->top, ix = (ptrdiff_t)(ox * g->sw) - (ptrdiff_t)g->left;
            bool here = iy >= 0 && iy + (ptrdiff_t)g->kh <= (ptrdiff_t)g->h && ix >= 0 && ix + (ptrdiff_t)g->kw <= (ptrdiff_t)g->w;
            inside = inside && here;
            at[group * mr + r] = here ? input + (sample * g->h * g->w + (size_t)iy * g->w + (size_t)ix) * g->c : NULL;
            next_window(g, &sample, &oy, &ox);
        }
        in_place[group] = inside;
        any = any || inside;
    }
    return any;
}

/// One unit of work: a block of rows times a group of panels, over the whole depth k.
static void run_unit(const gemm_job *job, size_t unit, float *buffer) {
    const kernel_shape *s = job->shape;
    size_t mr = s->mr, nr = s->nr;
    size_t block = unit / job->groups, group = unit % job->groups;
    size_t row0 = block * job->rows_per_block;
    size_t rows = job->m - row0 < job->rows_per_block ? job->m - row0 : job->rows_per_block;
    size_t panel0 = group * job->panels_per_group;
    size_t panel_end = panel0 + job->panels_per_group < job->panels ? panel0 + job->panels_per_group : job->panels;
    const char *ahead_end, *ahead = rows_ahead(job, unit, &ahead_end);
    // A convolution's groups of windows inside their samples are read in place, the others packed;
    // both walk the stretches of each kc block.
    const float *windows[block_rows];
    bool in_place[block_rows];
    window_stretch stretches[max_kc];  // at most one a value
    size_t stretch_count = 0;
    bool any_in_place = job->windows && windows_in_place(s, job->windows, job->a, row0, rows, windows, in_place);
    for (size_t pc = 0; pc < job->k; pc += job->kc) {
        size_t kc = job->k - pc < job->kc ? job->k - pc : job->kc;
        bool last = pc + kc == job->k;
        if (job->transposed_a) {
            pack_a_transposed((const float *)job->a + pc * job->lda + row0, job->lda, rows, kc, mr, buffer);
        } else if (job->windows) {
            stretch_count = window_stretches(job->windows, pc, kc, stretches);
            for (size_t g = 0; g < rows; g += mr) {
                size_t real = rows - g < mr ? rows - g : mr;
                if (in_place[g / mr]) continue;
                pack_windows(job->windows, job->a, row0 + g, real, stretches, stretch_count, kc, mr, buffer + g / mr * packed_a_group(kc, mr));
            }
        } else {
            pack_a(nn_prologue_element(job->prologue, job->a, job->lda, row0, pc), job->lda, rows, kc, mr, buffer, job->prologue,
                   pc);
        }
        int flags = (pc || job->accumulate ? flag_accumulate : 0) | (last && job->bias ? flag_bias : 0) |
                    (last && job->relu ? flag_relu : 0);
        for (size_t panel = panel0; panel < panel_end; panel++) {
            const float *b = job->packed + panel * job->k * nr + pc * nr;
            size_t col0 = panel * nr, cols = job->n - col0 < nr ? job->n - col0 : nr;
            const float *bias = job->bias ? job->bias + col0 : NULL;
            for (size_t g = 0; g < rows; g += mr) {
                size_t real = rows - g < mr ? rows - g : mr;
                float *c = job->c + (row0 + g) * job->ldc + col0;
                const float *a = buffer + g / mr * packed_a_group(kc, mr);
                // Past the rows ahead, the kernel prefetches its own panel, already in L1.
                bool more = ahead != NULL && ahead < ahead_end;
                const char *prefetch = more ? ahead : (const char *)b;
                if (more) {
                    size_t bytes = kc / a_chunk * 64;  // what the kernel prefetches
                    ahead = (size_t)(ahead_end - ahead) > bytes ? ahead + bytes : ahead_end;
                }
                tile_rows from = {.packed = a};
                if (any_in_place && in_place[g / mr]) {
                    from = (tile_rows){.windows = windows + g, .stretches = stretches, .stretch_count = stretch_count};
                }
                run_tile_from(s, kc, &from, b, c, job->ldc, real, cols, flags, bias, prefetch);
            }
        }
    }
}

/// The work loop of one thread: units from the shared counter until none is left. `first` is
/// the thread's index (0 the caller, 1 the helper), which picks its packing buffer.
static void gemm_task(const void *context, size_t first, size_t end) {
    (void)end;
    gemm_job *job = (gemm_job *)context;
    NN_DRAIN_UNITS(job, run_unit, job->buffers + first * job->buffer_floats);
}

/// A narrow product for the skinny kernels: a matrix A (`m` rows), or the windows of a
/// convolution over `count` samples (`conv`), times B packed for the kernel of `shape`.
typedef struct {
    const kernel_shape *shape;  // the AVX-512 or the AVX2 kernel's
    size_t n, k, kc;
    const float *packed, *bias;
    bool relu;
    const size_t *identity; // 0, step, ... (k - 1) * step: the offsets of a row's values (of an im2col row: step 1)
    // A matrix: C[m][n] (row stride ldc) = A[m][k] B, value p of row i at a[i * lda + p * step]
    // (step 1; A stored transposed: lda 1, step its row stride); added to C with `accumulate`
    size_t m, lda, ldc, step;
    const float *a;
    float *c;
    bool accumulate;
    // A convolution (HWC samples, windows in (row, column, channel) order as im2col's rows)
    bool conv;
    nn_spatial g;
    const float *input;
    float *output;
    const size_t *window;   // offsets of a window's k values from its first, inside the input
    bool pooled;            // max pooling (`pool`) follows: each sample's convolution goes to the
    nn_spatial pool;        // thread's buffer, then pooled into `output`
    float *buffers;         // per thread: skinny_rows windows at the border, as im2col rows; then
    size_t buffer_floats;   // with a pool, one sample's convolution
    size_t block;           // matrix rows per unit
    size_t units;
    _Atomic size_t next;
} skinny_job;

enum { skinny_block = 20 * skinny_rows };  // matrix rows per unit of work, at most

/// Up to skinny_rows rows, row r's value p at a[r * lda + at[p]], over all kc blocks, into C's
/// rows at c (stride ldc): the sums, then bias and ReLU as `nn_gemm` applies them.
static void skinny_tile(const skinny_job *job, int rows, const float *a, size_t lda, const size_t *at, float *c, size_t ldc) {
    size_t nr = job->shape->nr;
    _Alignas(64) float sums[skinny_rows * max_nr];
    for (size_t pc = 0; pc < job->k; pc += job->kc) {
        size_t kc = job->k - pc < job->kc ? job->k - pc : job->kc;
        skinny_step step = {.kc = kc, .nr = nr, .lda = lda, .n = job->n, .ldc = ldc, .b = job->packed + pc * nr,
                            .bias = job->bias, .c = c, .add = pc > 0, .last = pc + kc == job->k, .relu = job->relu,
                            .accumulate = job->accumulate};
#if defined(__x86_64__)
        if (job->shape == &avx512_shape) skinny_avx512(rows, &step, a, at + pc, sums);
        else skinny_avx2(rows, &step, a, at + pc, sums);
#endif
    }
}

/// One unit: `block` rows of the matrix, or one sample of the convolution. Windows wholly
/// inside the input are read where they are; a tile that touches the padding is first copied
/// out as im2col rows (zeros for the padding) into the thread's buffer.
static void skinny_unit(const skinny_job *job, size_t unit, float *buffer) {
    if (!job->conv) {
        size_t end = (unit + 1) * job->block < job->m ? (unit + 1) * job->block : job->m;
        for (size_t row = unit * job->block; row < end; row += skinny_rows) {
            int rows = (int)(end - row < skinny_rows ? end - row : skinny_rows);
            skinny_tile(job, rows, job->a + row * job->lda, job->lda, job->identity, job->c + row * job->ldc, job->ldc);
        }
        return;
    }
    const float *sample = job->input + unit * job->g.h * job->g.w * job->g.c;
    size_t border = skinny_rows * job->k;  // floats of the border rows in the thread's buffer
    float *convolved = job->pooled ? buffer + (border + 15) / 16 * 16 : job->output + unit * job->g.oh * job->g.ow * job->n;
    for (size_t oy = 0; oy < job->g.oh; oy++) {
        float *out = convolved + oy * job->g.ow * job->n;
        ptrdiff_t iy0 = (ptrdiff_t)(oy * job->g.sh) - (ptrdiff_t)job->g.top;
        bool rows_inside = iy0 >= 0 && (size_t)iy0 + job->g.kh <= job->g.h;
        for (size_t ox = 0; ox < job->g.ow; ox += skinny_rows) {
            int rows = (int)(job->g.ow - ox < skinny_rows ? job->g.ow - ox : skinny_rows);
            ptrdiff_t ix0 = (ptrdiff_t)(ox * job->g.sw) - (ptrdiff_t)job->g.left;
            ptrdiff_t ix_end = (ptrdiff_t)((ox + (size_t)rows - 1) * job->g.sw) - (ptrdiff_t)job->g.left + (ptrdiff_t)job->g.kw;
            if (rows_inside && ix0 >= 0 && ix_end <= (ptrdiff_t)job->g.w) {
                skinny_tile(job, rows, sample + ((size_t)iy0 * job->g.w + (size_t)ix0) * job->g.c, job->g.sw * job->g.c, job->window,
                            out + ox * job->n, job->n);
                continue;
            }
            for (int r = 0; r < rows; r++) {
                float *to = buffer + (size_t)r * job->k;
                ptrdiff_t x0 = (ptrdiff_t)((ox + (size_t)r) * job->g.sw) - (ptrdiff_t)job->g.left;
                for (size_t u = 0; u < job->g.kh; u++) {
                    ptrdiff_t iy = iy0 + (ptrdiff_t)u;
                    for (size_t v = 0; v < job->g.kw; v++, to += job->g.c) {
                        ptrdiff_t ix = x0 + (ptrdiff_t)v;
                        if (iy < 0 || iy >= (ptrdiff_t)job->g.h || ix < 0 || ix >= (ptrdiff_t)job->g.w) {
                            memset(to, 0, job->g.c * sizeof(float));
                        } else {
                            memcpy(to, sample + ((size_t)iy * job->g.w + (size_t)ix) * job->g.c, job->g.c * sizeof(float));
                        }
                    }
                }
            }
            skinny_tile(job, rows, buffer, job->k, job->identity, out + ox * job->n, job->n);
        }
    }
    // Pooled while the sample's convolution is in this core's L1 and L2.
    if (job->pooled) nn_max_pool_sample(&job->pool, convolved, job->output + unit * job->pool.oh * job->pool.ow * job->pool.c);
}

static void skinny_task(const void *context, size_t first, size_t end) {
    (void)end;
    skinny_job *job = (skinny_job *)context;
    NN_DRAIN_UNITS(job, skinny_unit, job->buffers + first * job->buffer_floats);
}

size_t nn_gemm_narrow_width(int kernel) { return vector_lanes(shape_for(kernel)); }

/// Runs `job` (units set) on one or two threads, which pays from `work` multiply-adds of
/// whole vectors; false when memory cannot be allocated.
static bool skinny_run(skinny_job *job, double work, int threads) {
    size_t *tables = malloc(2 * job->k * sizeof(size_t));
    if (!tables) return false;
    for (size_t p = 0; p < job->k; p++) tables[p] = p * job->step;
    job->identity = tables;
    if (job->conv) {
        size_t *window = tables + job->k;
        for (size_t u = 0, p = 0; u < job->g.kh; u++) {
            for (size_t v = 0; v < job->g.kw; v++) {
                for (size_t ch = 0; ch < job->g.c; ch++) window[p++] = (u * job->g.w + v) * job->g.c + ch;
            }
        }
        job->window = window;
    }
    bool parallel = threads >= 2 && job->units >= 2 && work >= parallel_minimum;
    size_t count = parallel ? 2 : 1;
    job->buffer_floats = job->conv ? (skinny_rows * job->k + 15) / 16 * 16 : 0;
    if (job->pooled) job->buffer_floats += (job->g.oh * job->g.ow * job->n + 15) / 16 * 16;
    job->buffers = job->conv ? aligned_alloc(64, count * job->buffer_floats * sizeof(float)) : NULL;
    if (job->conv && !job->buffers) {
        free(tables);
        return false;
    }
    job->kc = kc_for(job->shape, job->k);
    atomic_init(&job->next, 0);
    if (!parallel || !nn_helper_run(skinny_task, job, 1, 2)) skinny_task(job, 0, 1);
    free(job->buffers);
    free(tables);
    return true;
}

bool nn_conv_skinny(int kernel, size_t count, const nn_spatial *g, const float *input, const float *packed,
                    size_t filters, const float *bias, bool relu, const nn_spatial *pool, float *output, int threads) {
    const kernel_shape *s = shape_for(kernel);
    size_t k = g->kh * g->kw * g->c;
    if (filters > vector_lanes(s) || count == 0 || k == 0) return false;
    if (pool && (pool->h != g->oh || pool->w != g->ow || pool->c != filters)) return false;
    skinny_job job = {.shape = s, .n = filters, .k = k, .packed = packed, .bias = bias, .relu = relu, .step = 1, .conv = true,
                      .g = *g, .input = input, .output = output, .units = count, .pooled = pool != NULL};
    if (pool) job.pool = *pool;
    double work = (double)count * (double)(g->oh * g->ow) * (double)vector_lanes(s) * (double)k;
    return skinny_run(&job, work, threads);
}

/// What `nn_gemm` and `nn_sgemm` multiply: A as stored (`transposed_a` false; with `prologue`
/// when it has one) or transposed, and whether the products are added to C.
typedef struct {
    const void *a;
    size_t lda;
    bool transposed_a;
    const nn_prologue *prologue;
    bool accumulate;
    const nn_spatial *windows;  // A is the windows of a convolution of the samples at `a`
} gemm_operand;

static bool gemm_run(int kernel, size_t m, size_t n, size_t k, gemm_operand op, const float *packed, float *c, size_t ldc,
                     const float *bias, bool relu, int threads, const void *then_a, size_t then_rows);

bool nn_gemm(int kernel, size_t m, size_t n, size_t k, const void *a, size_t lda, const nn_prologue *prologue,
             const float *packed, float *c, size_t ldc, const float *bias, bool relu, int threads, const void *then_a,
             size_t then_rows) {
    gemm_operand op = {.a = a, .lda = lda, .prologue = prologue};
    return gemm_run(kernel, m, n, k, op, packed, c, ldc, bias, relu, threads, then_a, then_rows);
}

bool nn_conv_gemm(int kernel, size_t count, const nn_spatial *g, const float *input, const float *packed, size_t filters,
                  const float *bias, bool relu, float *output, int threads) {
    size_t k = g->kh * g->kw * g->c;
    if (filters <= vector_lanes(shape_for(kernel)) || k == 0) return false;  // the narrow form reads windows itself
    gemm_operand op = {.a = input, .lda = k, .windows = g};
    return gemm_run(kernel, count * g->oh * g->ow, filters, k, op, packed, output, filters, bias, relu, threads, NULL, 0);
}

static bool gemm_run(int kernel, size_t m, size_t n, size_t k, gemm_operand op, const float *packed, float *c, size_t ldc,
                     const float *bias, bool relu, int threads, const void *then_a, size_t then_rows) {
    if (m == 0 || n == 0) return true;
    const void *a = op.a;
    size_t lda = op.lda;
    const nn_prologue *prologue = op.prologue;
    const kernel_shape *s = shape_for(kernel);
    if (prologue && n <= vector_lanes(s)) return false;  // the narrow products read A in place
    if (k == 0) {
        // No products: C = bias (then ReLU), as BLAS with beta = 0 would leave it plus the bias.
        for (size_t i = 0; i < m; i++) {
            for (size_t j = 0; j < n; j++) {
                float v = (op.accumulate ? c[i * ldc + j] : 0) + (bias ? bias[j] : 0);
                c[i * ldc + j] = relu ? (v > 0 ? v : 0) : v;
            }
        }
        return true;
    }
    if (n <= vector_lanes(s)) {
        skinny_job job = {.shape = s, .n = n, .k = k, .packed = packed, .bias = bias, .relu = relu, .m = m,
                          .lda = op.transposed_a ? 1 : lda, .step = op.transposed_a ? lda : 1, .ldc = ldc, .a = a, .c = c,
                          .accumulate = op.accumulate};
        double work = (double)m * (double)vector_lanes(s) * (double)k;
        job.block = rows_per_unit(m, skinny_block, skinny_rows, threads >= 2 && work >= parallel_minimum);
        job.units = (m + job.block - 1) / job.block;
        return skinny_run(&job, work, threads);
    }
    gemm_job job = {
        .shape = s, .m = m, .n = n, .k = k, .lda = lda, .ldc = ldc,
        .a = a, .prologue = prologue, .packed = packed, .bias = bias, .c = c, .relu = relu,
        .transposed_a = op.transposed_a, .accumulate = op.accumulate, .windows = op.windows, .then_a = then_a, .then_rows = then_rows,
    };
    job.kc = kc_for(s, k);
    bool parallel = threads >= 2 && (double)m * (double)n * (double)k >= parallel_minimum;
    // Row blocks of about equal size, a multiple of MR.
    size_t cap = op.windows ? s->window_rows : block_rows;
    size_t blocks = (m + cap - 1) / cap;
    job.rows_per_block = rows_per_unit(m, (m + blocks - 1) / blocks, s->mr, parallel);
    blocks = (m + job.rows_per_block - 1) / job.rows_per_block;
    job.panels = (n + s->nr - 1) / s->nr;
    // With fewer than four row blocks for two threads, the panels are cut into groups too.
    job.groups = 1;
    if (parallel && blocks < 4) {
        size_t want = (4 + blocks - 1) / blocks;
        job.groups = want < job.panels ? want : job.panels;
    }
    job.panels_per_group = (job.panels + job.groups - 1) / job.groups;
    job.groups = (job.panels + job.panels_per_group - 1) / job.panels_per_group;
    job.units = blocks * job.groups;
    if (job.units < 2) parallel = false;
    size_t count = parallel ? 2 : 1;
    job.threads = count;
    job.buffer_floats = job.rows_per_block / s->mr * packed_a_group(job.kc, s->mr);
    job.buffers = aligned_alloc(64, count * job.buffer_floats * sizeof(float));
    if (!job.buffers) return false;
    atomic_init(&job.next, 0);
    if (!parallel || !nn_helper_run(gemm_task, &job, 1, 2)) gemm_task(&job, 0, 1);
    free(job.buffers);
    return true;
}

// One row: y = x B (+ bias, then ReLU) with exactly the arithmetic `nn_gemm` does for that
// row, so that a sample's outputs do not depend on how many samples it was batched with
// (nn-infer reading a pipe answers whatever has arrived; a cluster cuts a file into partitions).
// Per output, `nn_gemm` sums each kc block in one chain from zero (an FMA per step on the
// vector kernels, a multiply then an add on the portable one), adds the block to what the
// earlier blocks left in C, then the bias, then ReLU. The lanes of a vector FMA are independent,
// so 8-lane FMAs reproduce the 16-lane AVX-512 kernel as well as the AVX2 one; what must match is
// the kc blocks, taken from the same kernel shape. Instead of rows, the chains run side by side
// over 8 vectors of columns (128 with AVX-512, 64 with AVX2), enough independent FMAs to cover
// their latency; the portable form takes 128 columns at a time.
enum { row_group = 128 };

// Below this many weights a row takes about a microsecond on one core, about what handing half of
// it to the helper and waiting for it back costs.
enum { row_parallel_minimum = 1 << 15 };

typedef struct {
    const kernel_shape *shape;
    size_t n, k, kc;
    size_t lanes;  // of the vector form: 16 (AVX-512), 8 (AVX2), 1 (portable)
    size_t group;  // columns per group: 8 vectors, or `row_group`
    const float *x, *packed, *bias;
    float *y;
    bool relu;
} row_job;

/// B[p][column] in `nn_gemm_pack`'s layout: panels of nr columns, each stored row by row.
static const float *packed_column(const row_job *job, size_t column) {
    size_t nr = job->shape->nr;
    return job->packed + column / nr * job->k * nr + column % nr;
}

/// The sums of columns [first, first + width) of one kc block at depth pc, in the portable
/// kernel's arithmetic (not fused), added to `sums` when pc > 0.
static void row_block_plain(const row_job *job, size_t first, size_t width, size_t pc, size_t kc, float *sums) {
    size_t nr = job->shape->nr;
    float acc[row_group] = {0};
    for (size_t j = 0; j < width; j++) {
        const float *b = packed_column(job, first + j) + pc * nr;
        for (size_t p = 0; p < kc; p++) acc[j] += job->x[pc + p] * b[p * nr];
    }
    for (size_t j = 0; j < width; j++) sums[j] = pc ? acc[j] + sums[j] : acc[j];
}

#if defined(__x86_64__)
/// As `row_block_plain` with one FMA chain per column, a vector of LANES columns per chain,
/// `vectors` (1...8, a constant after inlining) chains; columns past the matrix's n read the
/// packing's zero padding. The AVX-512 form is for the AVX-512 packing (panels of 32 columns,
/// two vectors each), the AVX2 form for the AVX2 one (16 columns).
#define ROW_KERNEL(NAME, TARGET, VEC, LANES, ZERO, BROADCAST, LOAD, STORE, FMADD, ADD)                          \
    __attribute__((target(TARGET), always_inline)) static inline void NAME##_chains(                           \
        const row_job *job, size_t first, int vectors, size_t pc, size_t kc, float *sums) {                      \
        size_t nr = job->shape->nr;                                                                              \
        const float *b[8];                                                                                       \
        VEC acc[8];                                                                                              \
        UNROLL for (int v = 0; v < 8; v++) {                                                                     \
            if (v < vectors) {                                                                                   \
                b[v] = packed_column(job, first + LANES * (size_t)v) + pc * nr;                                  \
                acc[v] = ZERO();                                                                                 \
            }                                                                                                    \
        }                                                                                                        \
        const float *x = job->x + pc;                                                                            \
        for (size_t p = 0; p < kc; p++) {                                                                        \
            VEC xp = BROADCAST(x[p]);                                                                            \
            UNROLL for (int v = 0; v < 8; v++) {                                                                 \
                if (v < vectors) acc[v] = FMADD(xp, LOAD(b[v] + p * nr), acc[v]);                                \
            }                                                                                                    \
        }                                                                                                        \
        UNROLL for (int v = 0; v < 8; v++) {                                                                     \
            if (v < vectors) {                                                                                   \
                VEC t = acc[v];                                                                                  \
                if (pc) t = ADD(t, LOAD(sums + LANES * v));                                                      \
                STORE(sums + LANES * v, t);                                                                      \
            }                                                                                                    \
        }                                                                                                        \
    }                                                                                                            \
    __attribute__((target(TARGET))) static void NAME(const row_job *job, size_t first, int vectors, size_t pc,  \
                                                     size_t kc, float *sums) {                                   \
        switch (vectors) {                                                                                       \
        case 8: NAME##_chains(job, first, 8, pc, kc, sums); break;                                               \
        case 7: NAME##_chains(job, first, 7, pc, kc, sums); break;                                               \
        case 6: NAME##_chains(job, first, 6, pc, kc, sums); break;                                               \
        case 5: NAME##_chains(job, first, 5, pc, kc, sums); break;                                               \
        case 4: NAME##_chains(job, first, 4, pc, kc, sums); break;                                               \
        case 3: NAME##_chains(job, first, 3, pc, kc, sums); break;                                               \
        case 2: NAME##_chains(job, first, 2, pc, kc, sums); break;                                               \
        default: NAME##_chains(job, first, 1, pc, kc, sums); break;                                              \
        }                                                                                                        \
    }
ROW_KERNEL(row_block_avx2, "avx2,fma", __m256, 8, _mm256_setzero_ps, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps,
           _mm256_fmadd_ps, _mm256_add_ps)
ROW_KERNEL(row_block_avx512, "avx512f,avx512bw,avx512vl,avx2,fma", __m512, 16, _mm512_setzero_ps, _mm512_set1_ps,
           _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps, _mm512_add_ps)
#endif

/// Column groups [first, end) of the row: all kc blocks, then bias and ReLU as `nn_gemm` applies
/// them (after the last block, NaN becoming 0), into y.
static void row_groups(const void *context, size_t first, size_t end) {
    const row_job *job = (const row_job *)context;
    size_t lanes = job->lanes;
    for (size_t group = first; group < end; group++) {
        size_t column = group * job->group, width = job->n - column < job->group ? job->n - column : job->group;
        _Alignas(64) float sums[row_group];
        for (size_t pc = 0; pc < job->k; pc += job->kc) {
            size_t kc = job->k - pc < job->kc ? job->k - pc : job->kc;
            int vectors = (int)((width + lanes - 1) / lanes);
#if defined(__x86_64__)
            if (lanes == 16) {
                row_block_avx512(job, column, vectors, pc, kc, sums);
                continue;
            }
            if (lanes == 8) {
                row_block_avx2(job, column, vectors, pc, kc, sums);
                continue;
            }
#endif
            row_block_plain(job, column, width, pc, kc, sums);
        }
        for (size_t j = 0; j < width; j++) {
            float v = job->bias ? sums[j] + job->bias[column + j] : sums[j];
            job->y[column + j] = job->relu ? (v > 0 ? v : 0) : v;
        }
    }
}

void nn_gemm_row(int kernel, size_t n, size_t k, const float *x, const float *packed, float *y, const float *bias,
                 bool relu, int threads) {
    if (n == 0) return;
    if (k == 0) {
        nn_gemm(kernel, 1, n, 0, x, 0, NULL, packed, y, n, bias, relu, 1, NULL, 0);
        return;
    }
    const kernel_shape *s = shape_for(kernel);
    size_t lanes = vector_lanes(s) ? vector_lanes(s) : 1;
    row_job job = {.shape = s, .n = n, .k = k, .kc = kc_for(s, k), .lanes = lanes, .group = lanes > 1 ? 8 * lanes : row_group,
                   .x = x, .packed = packed, .bias = bias, .y = y, .relu = relu};
    size_t groups = (n + job.group - 1) / job.group;
    bool alone = threads < 2 || groups < 2 || n * k < row_parallel_minimum;
    if (alone || !nn_helper_run(row_groups, &job, (groups + 1) / 2, groups)) row_groups(&job, 0, groups);
}


// A small A with fewer rows than B has columns (the trainer's forward pass: 64 samples times a
// 784 x 256 weight; and its deltas times a transposed weight) is packed once,
// whole, and shared by both threads, and each unit of work is one panel of columns, whose slice
// of op(B) for a depth block its thread copies (times alpha) into a buffer in L1 right before
// the kernels read it. Packing all of B first wrote a copy as large as the weight and read it
// back, often from the other core's cache.
enum { streamed_a_limit = 1 << 17 };  // values of A: 512 KiB, well inside a core's L2

typedef struct {
    const kernel_shape *shape;
    size_t m, n, k, kc, ldc;
    const float *packed_a;  // depth block after depth block, each the groups of MR rows `pack_a` writes
    b_packing b;            // op(B) and alpha (`packed` unused)
    float *c;
    bool accumulate;
    size_t units;
    _Atomic size_t next;
} streamed_job;

/// Floats of A packed whole for `streamed_product`.
static size_t streamed_a_floats(const kernel_shape *s, size_t m, size_t k) {
    size_t kc = kc_for(s, k), groups = (m + s->mr - 1) / s->mr, floats = 0;
    for (size_t pc = 0; pc < k; pc += kc) floats += groups * packed_a_group(k - pc < kc ? k - pc : kc, s->mr);
    return floats;
}

/// Panel `panel` of C over the whole depth, with `slice` (max_kc x max_nr floats) for op(B)'s.
static void streamed_unit(const streamed_job *job, size_t panel, float *slice) {
    const kernel_shape *s = job->shape;
    size_t mr = s->mr, nr = s->nr, col0 = panel * nr, cols = job->n - col0 < nr ? job->n - col0 : nr;
    const float *a = job->packed_a;
    for (size_t pc = 0; pc < job->k; pc += job->kc) {
        size_t kc = job->k - pc < job->kc ? job->k - pc : job->kc;
        copy_b_slice(&job->b, panel, pc, kc, slice);
        int flags = pc || job->accumulate ? flag_accumulate : 0;
        size_t group = packed_a_group(kc, mr);
        for (size_t g = 0; g < job->m; g += mr, a += group) {
            size_t real = job->m - g < mr ? job->m - g : mr;
            run_tile(s, kc, a, slice, job->c + g * job->ldc + col0, job->ldc, real, cols, flags, NULL, (const char *)slice);
        }
    }
}

static void streamed_task(const void *context, size_t first, size_t end) {
    (void)first;
    (void)end;
    streamed_job *job = (streamed_job *)context;
    _Alignas(64) float slice[max_kc * max_nr];
    NN_DRAIN_UNITS(job, streamed_unit, slice);
}

typedef struct {
    const kernel_shape *shape;
    const float *a;
    size_t lda, m, k, kc;
    float *packed_a;
} a_packing;

/// Depth blocks [first, end) of A into a whole packing (`streamed_a_floats`'s layout: every
/// block but the last is kc deep).
static void pack_a_blocks(const void *context, size_t first, size_t end) {
    const a_packing *job = context;
    size_t mr = job->shape->mr, groups = (job->m + mr - 1) / mr;
    float *to = job->packed_a + first * groups * packed_a_group(job->kc, mr);
    for (size_t block = first; block < end; block++) {
        size_t pc = block * job->kc, kc = job->k - pc < job->kc ? job->k - pc : job->kc;
        pack_a(job->a + pc, job->lda, job->m, kc, mr, to, NULL, 0);
        to += groups * packed_a_group(kc, mr);
    }
}

/// C (+)= op(A) alpha op(B) for a small A (`streamed_a_limit`) and more than one vector of
/// columns, A packed into `packed_a` (`streamed_a_floats`), its depth blocks shared by the threads.
static void streamed_product(const kernel_shape *s, size_t m, size_t n, size_t k, const float *a, size_t lda, b_packing b,
                             bool accumulate, float *c, size_t ldc, int threads, float *packed_a) {
    size_t kc = kc_for(s, k), blocks = (k + kc - 1) / kc;
    streamed_job job = {.shape = s, .m = m, .n = n, .k = k, .kc = kc, .ldc = ldc, .packed_a = packed_a, .b = b, .c = c,
                        .accumulate = accumulate, .units = (n + s->nr - 1) / s->nr};
    bool parallel = threads >= 2 && job.units >= 2 && (double)m * (double)n * (double)k >= parallel_minimum;
    a_packing packing = {.shape = s, .a = a, .lda = lda, .m = m, .k = k, .kc = kc, .packed_a = packed_a};
    if (!parallel || blocks < 2 || !nn_helper_run(pack_a_blocks, &packing, blocks / 2, blocks)) pack_a_blocks(&packing, 0, blocks);
    atomic_init(&job.next, 0);
    if (!parallel || !nn_helper_run(streamed_task, &job, 1, 2)) streamed_task(&job, 0, 1);
}

bool nn_sgemm(int kernel, bool transpose_a, bool transpose_b, size_t m, size_t n, size_t k, float alpha, const float *a,
              size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc, int threads) {
    if (m == 0 || n == 0) return true;
    const kernel_shape *s = shape_for(kernel);
    bool products = k > 0 && alpha != 0;
    bool streamed = products && !transpose_a && n > vector_lanes(s) && m <= n && (double)m * (double)k <= streamed_a_limit;
    // The packing's memory (A whole, or B), allocated before C is touched.
    size_t floats = !products ? 0 : streamed ? streamed_a_floats(s, m, k) : nn_gemm_packed_size(kernel, k, n);
    float *packed = products ? aligned_alloc(64, (floats + 16) / 16 * 16 * sizeof(float)) : NULL;
    if (products && !packed) return false;
    // beta C first, as BLAS does. With beta 0, C is not read (a NaN in it does not survive), and
    // the kernels only write it: zeros are needed only when no products follow. (Scaling each
    // tile of C as the kernels first add to it instead of in this pass cost more: 8.2 against
    // 6.6 % of a blog epoch's samples in the packing and edge code around the kernels.)
    if (beta != 1) {
        for (size_t i = 0; i < m; i++) {
            float *row = c + i * ldc;
            if (beta != 0) for (size_t j = 0; j < n; j++) row[j] *= beta;
            else if (!products) memset(row, 0, n * sizeof(float));
        }
    }
    if (!products) return true;
    b_packing packing = {.b = b, .ldb = ldb, .k = k, .n = n, .nr = panel_width(kernel), .transposed = transpose_b, .alpha = alpha};
    if (streamed) {
        streamed_product(s, m, n, k, a, lda, packing, beta != 0, c, ldc, threads, packed);
        free(packed);
        return true;
    }
    packing.packed = packed;
    size_t panels = (n + packing.nr - 1) / packing.nr;
    // The packing is a copy: shared from about as many values as a product shares its work.
    bool alone = threads < 2 || panels < 2 || (double)k * (double)n < 1 << 16;
    if (alone || !nn_helper_run(pack_b_panels, &packing, panels / 2, panels)) pack_b_panels(&packing, 0, panels);
    gemm_operand op = {.a = a, .lda = lda, .transposed_a = transpose_a, .accumulate = beta != 0};
    if (!gemm_run(kernel, m, n, k, op, packed, c, ldc, NULL, false, threads, NULL, 0)) {
        // The kernels' scratch could not be allocated, and C already holds beta C: finish in
        // plain loops on the packing, which needs none.
        size_t nr = panel_width(kernel);
        for (size_t i = 0; i < m; i++) {
            for (size_t j = 0; j < n; j++) {
                const float *column = packed + j / nr * k * nr + j % nr;
                float sum = 0;
                for (size_t p = 0; p < k; p++) sum += (transpose_a ? a[p * lda + i] : a[i * lda + p]) * column[p * nr];
                c[i * ldc + j] = beta != 0 ? c[i * ldc + j] + sum : sum;
            }
        }
    }
    free(packed);
    return true;
}
