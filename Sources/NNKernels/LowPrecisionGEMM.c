#include "NNKernels.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "CPUFeatures.h"
#include "Helper.h"
#include "Pooling.h"
#include "Prologue.h"

// Products of f32 activations with bf16 or int8 weights, C = A B (+ bias, then ReLU).
//
// B is packed once into panels of NR columns in which `kstep` consecutive depths of one column
// are adjacent (what vdpbf16ps, vpdpbusd and vpmaddwd multiply and add in one lane). A block of
// rows of A is converted per call (to bf16; or quantized per row to u8 with its own scale and
// zero point) and packed into groups of MR rows, `kstep` depths of a row adjacent. A
// micro-kernel computes an MR x NR tile over the whole depth into a tile of 32-bit
// accumulators, which the epilogue turns into C: bf16 adds the bias; int8 dequantizes
//
//     c[i][j] = sa[i] * sw[j] * (acc[i][j] - zp[i] * colsum[j]) + bias[j]
//
// (acc = sum_p qa[i][p] qw[p][j] with qa = round(a / sa) + zp in 0...255 and qw in -127...127,
// colsum[j] = sum_p qw[p][j]), then ReLU, in the same pass over the tile while it is in L1.
// int32 sums are exact for depths up to 65,536 (255 * 127 * 65,536 < 2^31).
//
// Threads and units of work: as GEMM.c (blocks of rows times groups of panels from an atomic
// counter shared by the caller and the helper thread).

enum { lp_block_rows = 48 };         // a multiple of every MR but AMX's (4, 6, 12)
enum { lp_amx_block_rows = 64 };     // AMX: two groups of 32 rows
enum { lp_max_block_rows = 64 };
enum { lp_parallel_minimum = 1 << 18 };
enum { lp_max_mr = 32, lp_max_nr = 32 };

typedef void (*lp_micro_kernel)(size_t steps, const void *a, const void *b, void *tile);
// `half`: one panel whose columns past the first vector's are padding (a layer of at most 16
// outputs on AVX-512): only its first vector is computed, the second stored as zeros.
typedef void (*lp_row_kernel)(int panels, bool half, size_t steps, const uint32_t *a, const void *b, size_t panel_elements,
                              void *tiles);

typedef struct {
    size_t mr, nr, kstep;
    size_t a_bytes, b_bytes;  // bytes of one packed element of A and of B
    lp_micro_kernel kernel;
    lp_row_kernel row;        // one row against up to 4 panels, or NULL (the portable kernels)
    // The tile kernel for a panel whose columns past the first vector's are all padding (the last
    // of a layer of at most 16 outputs): its first vector of sums only, or NULL.
    lp_micro_kernel half_kernel;
    bool avx512_epilogue;     // tiles of 32 columns dequantized with AVX-512 (the AVX-512 and AMX kernels')
    // AMX only (zero for the others): depths padded to a multiple of `kalign` (64, one tile row
    // of bytes) in both packings; A's rows stored whole, one after another (what a tile load
    // reads), instead of MR rows interleaved; `enter` before and `leave` after a thread's run of
    // kernel calls (the tile configuration, the release of the tile state).
    size_t kalign;
    bool rows_whole;
    void (*enter)(void);
    void (*leave)(void);
} lp_shape;

static size_t shape_kalign(const lp_shape *s) { return s->kalign ? s->kalign : s->kstep; }
static size_t shape_block_rows(const lp_shape *s) { return s->rows_whole ? lp_amx_block_rows : lp_block_rows; }

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

// ---- bf16 -------------------------------------------------------------------------------------

static inline uint16_t to_bf16(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if (x != x) return (uint16_t)((bits >> 16) | 0x40);
    bits += 0x7FFF + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

static inline float from_bf16(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

// Portable bf16 kernel (MR 4, NR 32, pairs of depths): the products of bf16 values are exact in
// f32; the sums are rounded as in any f32 loop.
static void bf16_scalar_kernel(size_t steps, const void *av, const void *bv, void *tilev) {
    const uint16_t *a = av, *b = bv;
    float *tile = tilev;
    float acc[4][32] = {{0}};
    for (size_t s = 0; s < steps; s++, a += 8, b += 64) {
        for (int r = 0; r < 4; r++) {
            float x0 = from_bf16(a[2 * r]), x1 = from_bf16(a[2 * r + 1]);
            for (int j = 0; j < 32; j++) acc[r][j] += x0 * from_bf16(b[2 * j]) + x1 * from_bf16(b[2 * j + 1]);
        }
    }
    memcpy(tile, acc, sizeof acc);
}

// ---- int8 -------------------------------------------------------------------------------------

// Portable int8 kernels on every packing (MR 4): quads of depths in panels of 32 columns (the
// AVX512-VNNI layout) or of 16 (the AVX-VNNI layout), and pairs of depths (NR 16, the AVX2
// layout: A's pairs int16, B's int8).
static inline void i8_scalar_quads_nr(size_t steps, const uint8_t *a, const int8_t *b, int32_t *tile, int nr) {
    int32_t acc[4][32] = {{0}};
    for (size_t s = 0; s < steps; s++, a += 16, b += 4 * nr) {
        for (int r = 0; r < 4; r++) {
            const uint8_t *x = a + 4 * r;
            for (int j = 0; j < nr; j++) {
                const int8_t *w = b + 4 * j;
                acc[r][j] += x[0] * w[0] + x[1] * w[1] + x[2] * w[2] + x[3] * w[3];
            }
        }
    }
    for (int r = 0; r < 4; r++) memcpy(tile + r * nr, acc[r], (size_t)nr * sizeof(int32_t));
}

static void i8_scalar_kernel_quads(size_t steps, const void *a, const void *b, void *tile) { i8_scalar_quads_nr(steps, a, b, tile, 32); }
static void i8_scalar_kernel_quads16(size_t steps, const void *a, const void *b, void *tile) { i8_scalar_quads_nr(steps, a, b, tile, 16); }

static void i8_scalar_kernel_pairs(size_t steps, const void *av, const void *bv, void *tilev) {
    const int16_t *a = av;
    const int8_t *b = bv;
    int32_t *tile = tilev;
    int32_t acc[4][16] = {{0}};
    for (size_t s = 0; s < steps; s++, a += 8, b += 32) {
        for (int r = 0; r < 4; r++) {
            for (int j = 0; j < 16; j++) acc[r][j] += a[2 * r] * b[2 * j] + a[2 * r + 1] * b[2 * j + 1];
        }
    }
    memcpy(tile, acc, sizeof acc);
}

#if defined(__x86_64__)
#include <immintrin.h>

// AVX-512 BF16: 12 rows x 2 vectors of 16 columns; per step (two depths) 2 loads of the panel,
// 12 broadcasts of a row's bf16 pair and 24 vdpbf16ps into f32 accumulators.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static void bf16_avx512_kernel(size_t steps, const void *av,
                                                                                              const void *bv, void *tilev) {
    const uint32_t *a = av;
    const uint16_t *b = bv;
    float *tile = tilev;
    __m512 acc[12][2];
    for (int r = 0; r < 12; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (size_t s = 0; s < steps; s++, a += 12, b += 64) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 32);
        for (int r = 0; r < 12; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
        }
    }
    for (int r = 0; r < 12; r++) {
        _mm512_storeu_ps(tile + r * 32, acc[r][0]);
        _mm512_storeu_ps(tile + r * 32 + 16, acc[r][1]);
    }
}

// AVX512-VNNI: 12 rows x 2 vectors of 16 columns; per step (four depths) 2 loads, 12
// broadcasts of a row's four u8 and 24 vpdpbusd (u8 x s8, four products per lane, no
// saturation) into int32 accumulators.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static void i8_vnni_kernel(size_t steps, const void *av,
                                                                                         const void *bv, void *tilev) {
    const uint32_t *a = av;
    const int8_t *b = bv;
    int32_t *tile = tilev;
    __m512i acc[12][2];
    for (int r = 0; r < 12; r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (size_t s = 0; s < steps; s++, a += 12, b += 128) {
        __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 64);
        for (int r = 0; r < 12; r++) {
            __m512i x = _mm512_set1_epi32((int)a[r]);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x, b0);
            acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x, b1);
        }
    }
    for (int r = 0; r < 12; r++) {
        _mm512_storeu_si512(tile + r * 32, acc[r][0]);
        _mm512_storeu_si512(tile + r * 32 + 16, acc[r][1]);
    }
}

// The same for the first 16 columns alone (a panel of a layer with at most 16 outputs, whose
// other 16 are padding): 12 accumulators, one load and 12 vpdpbusd a step. The tile's second
// half is left as it was; the epilogue writes only the panel's real columns.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static void i8_vnni_kernel_half(size_t steps, const void *av,
                                                                                              const void *bv, void *tilev) {
    const uint32_t *a = av;
    const int8_t *b = bv;
    int32_t *tile = tilev;
    __m512i acc[12];
    for (int r = 0; r < 12; r++) acc[r] = _mm512_setzero_si512();
    for (size_t s = 0; s < steps; s++, a += 12, b += 128) {
        __m512i b0 = _mm512_loadu_si512(b);
        for (int r = 0; r < 12; r++) acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_set1_epi32((int)a[r]), b0);
    }
    for (int r = 0; r < 12; r++) _mm512_storeu_si512(tile + r * 32, acc[r]);
}

// AMX: tdpbusd multiplies a tile of 16 rows x 64 u8 of A by a tile of 16 rows (quads of depths) x
// 16 columns of s8 of B into 16 x 16 int32 sums, the same u8 x s8 quads as vpdpbusd; tdpbf16ps
// 16 rows x 32 bf16 by 16 rows (pairs) x 16 columns into f32 sums. Tiles 0-3 hold a 32 x 32 block
// of C, 4-5 two row halves of A (rows whole, stride = the padded row's bytes), 6-7 two column
// halves of the panel (32 columns x 4 bytes = 128 bytes a step, for both: the half's 64 bytes at
// stride 128). The configuration is loaded once per run of calls (`enter`).
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
} amx_tile_config;

__attribute__((target("amx-tile"))) static void amx_enter(void) {
    static const amx_tile_config config = {.palette = 1, .bytes_per_row = {64, 64, 64, 64, 64, 64, 64, 64},
                                           .rows = {16, 16, 16, 16, 16, 16, 16, 16}};
    _tile_loadconfig(&config);
}

__attribute__((target("amx-tile"))) static void amx_leave(void) { _tile_release(); }

// The AMX kernels of both precisions: the same addressing (a step is 4 bytes of a row of A, 128
// of the panel), the dot-product instruction a parameter.
#define AMX_KERNEL(NAME, TARGET, TYPE, DOT)                                                              \
    __attribute__((target(TARGET))) static void NAME(size_t steps, const void *av, const void *bv, void *tilev) { \
        const uint8_t *a = av, *b = bv;                                                                   \
        TYPE *tile = tilev;                                                                               \
        size_t row_bytes = steps * 4; /* a multiple of 64 */                                              \
        _tile_zero(0);                                                                                    \
        _tile_zero(1);                                                                                    \
        _tile_zero(2);                                                                                    \
        _tile_zero(3);                                                                                    \
        for (size_t k = 0; k < row_bytes; k += 64) {                                                      \
            _tile_loadd(4, a + k, row_bytes);                                                             \
            _tile_loadd(5, a + 16 * row_bytes + k, row_bytes);                                            \
            _tile_loadd(6, b + k * 32, 128);                                                              \
            _tile_loadd(7, b + k * 32 + 64, 128);                                                         \
            DOT(0, 4, 6);                                                                                 \
            DOT(1, 4, 7);                                                                                 \
            DOT(2, 5, 6);                                                                                 \
            DOT(3, 5, 7);                                                                                 \
        }                                                                                                 \
        _tile_stored(0, tile, 128);                                                                       \
        _tile_stored(1, tile + 16, 128);                                                                  \
        _tile_stored(2, tile + 16 * 32, 128);                                                             \
        _tile_stored(3, tile + 16 * 32 + 16, 128);                                                        \
    }
AMX_KERNEL(i8_amx_kernel, "amx-tile,amx-int8", int32_t, _tile_dpbusd)
AMX_KERNEL(bf16_amx_kernel, "amx-tile,amx-bf16", float, _tile_dpbf16ps)

// One bf16 row on the tiles (its sums must come from the instruction of the batch, which adds a
// pair in its own order): tiles configured one row high for A and C, so that no padding rows
// are packed; each element is computed as in a full tile. Configures and releases the tiles itself.
__attribute__((target("amx-tile,amx-bf16"))) static void bf16_amx_row_panels(int panels, bool half, size_t steps, const uint32_t *a,
                                                                            const void *bv, size_t panel_elements, void *tilesv) {
    (void)half;  // the tiles compute both vectors alike
    static const amx_tile_config one_row = {.palette = 1, .bytes_per_row = {64, 64, 0, 0, 64, 0, 64, 64},
                                            .rows = {1, 1, 0, 0, 1, 0, 16, 16}};
    _tile_loadconfig(&one_row);
    const uint8_t *row = (const uint8_t *)a;
    float *tiles = tilesv;
    size_t row_bytes = steps * 4;
    for (int v = 0; v < panels; v++) {
        const uint8_t *b = (const uint8_t *)bv + (size_t)v * panel_elements * 2;
        _tile_zero(0);
        _tile_zero(1);
        for (size_t k = 0; k < row_bytes; k += 64) {
            _tile_loadd(4, row + k, row_bytes);
            _tile_loadd(6, b + k * 32, 128);
            _tile_loadd(7, b + k * 32 + 64, 128);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
        }
        _tile_stored(0, tiles + v * 32, 64);
        _tile_stored(1, tiles + v * 32 + 16, 64);
    }
    _tile_release();
}
#endif

#if defined(__x86_64__)
// One row of A times up to 4 panels at once (`panels`, a constant after inlining): per step one
// broadcast 32-bit lane of the row's depths and the same instruction per lane as the kernels
// above, so the same sums (exact for int8; for bf16 the same f32 roundings in the same order),
// with 8 independent accumulators where the batch kernels have 12 rows. `tiles` gets each
// panel's sums, NR values apiece.
// A row of one or two panels (a layer of a few outputs, or half of a layer on each thread) would
// leave 2 or 4 accumulators, each a chain through every step: `vpdpbusd` waits for the previous
// one's result (5 cycles on Zen 4), so a 1352 x 10 row took 1.6 k cycles for 338 steps.
// CHAINS(panels) of them then take turns by step and are added at the end: exact int32 sums do
// not depend on the order; bf16 passes 1, keeping its roundings.
// NR: sums per panel (two vectors); STEP: B elements per depth step of a panel; HALF: B elements
// to the step's second vector; ACCUMULATE(acc, x, b): the tile kernel's instructions for a lane;
// ADD: the sum of two accumulators.
#define LP_ROW_KERNEL(NAME, TARGET, VEC, BVEC, B, TILE, NR, STEP, HALF, ZERO, SET1, LOAD, ACCUMULATE, STORE, CHAINS, ADD) \
    __attribute__((target(TARGET), always_inline)) static inline void NAME(int panels, bool half, size_t steps, \
        const uint32_t *a, const B *b, size_t panel_elements, TILE *tiles) {                                      \
        const int chains = CHAINS(panels);                                                                        \
        VEC acc[4][4][2];                                                                                         \
        UNROLL for (int c = 0; c < 4; c++) {                                                                      \
            UNROLL for (int v = 0; v < 4; v++) if (c < chains && v < panels) acc[c][v][0] = acc[c][v][1] = ZERO(); \
        }                                                                                                         \
        size_t s = 0;                                                                                             \
        for (; s + (size_t)chains <= steps; s += (size_t)chains) {                                                \
            UNROLL for (int c = 0; c < 4; c++) {                                                                  \
                if (c >= chains) continue;                                                                        \
                BVEC x = SET1((int)a[s + (size_t)c]);                                                             \
                UNROLL for (int v = 0; v < 4; v++) {                                                              \
                    if (v < panels) {                                                                             \
                        const B *p = b + v * panel_elements + (s + (size_t)c) * STEP;                             \
                        acc[c][v][0] = ACCUMULATE(acc[c][v][0], x, LOAD(p));                                      \
                        if (!half) acc[c][v][1] = ACCUMULATE(acc[c][v][1], x, LOAD(p + HALF));                    \
                    }                                                                                             \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
        for (; s < steps; s++) {                                                                                  \
            BVEC x = SET1((int)a[s]);                                                                             \
            UNROLL for (int v = 0; v < 4; v++) {                                                                  \
                if (v < panels) {                                                                                 \
                    const B *p = b + v * panel_elements + s * STEP;                                               \
                    acc[0][v][0] = ACCUMULATE(acc[0][v][0], x, LOAD(p));                                          \
                    if (!half) acc[0][v][1] = ACCUMULATE(acc[0][v][1], x, LOAD(p + HALF));                        \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
        UNROLL for (int c = 1; c < 4; c++) {                                                                      \
            UNROLL for (int v = 0; v < 4; v++) {                                                                  \
                if (c < chains && v < panels) {                                                                   \
                    acc[0][v][0] = ADD(acc[0][v][0], acc[c][v][0]);                                               \
                    if (!half) acc[0][v][1] = ADD(acc[0][v][1], acc[c][v][1]);                                    \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
        UNROLL for (int v = 0; v < 4; v++) {                                                                      \
            if (v < panels) {                                                                                     \
                STORE(tiles + NR * v, acc[0][v][0]);                                                              \
                STORE(tiles + NR * v + NR / 2, half ? ZERO() : acc[0][v][1]);                                     \
            }                                                                                                     \
        }                                                                                                         \
    }
/// Independent chains for a row of int32 sums: 8 accumulators in all (4 on one panel, 2 on two).
#define LP_INT_CHAINS(panels) ((panels) == 1 ? 4 : (panels) == 2 ? 2 : 1)
#define LP_ONE_CHAIN(panels) 1

#define VNNI "avx512f,avx512bw,avx512vl,avx512vnni"
#define BF16 "avx512f,avx512bw,avx512vl,avx512bf16"
__attribute__((target(VNNI))) static inline __m512i vnni_load(const int8_t *p) { return _mm512_loadu_si512(p); }
__attribute__((target(VNNI))) static inline void vnni_store(int32_t *p, __m512i v) { _mm512_storeu_si512(p, v); }
// 16 int8 weights widened to int16 as they are loaded (vpmovsxbw from memory): the panel holds
// one byte a weight, half what the int16 operands of vpmaddwd take, which halves the bytes a
// row's product reads from L2 (a batch-1 product is bound by them).
__attribute__((target("avx2"))) static inline __m256i avx2_load_widened(const int8_t *p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
}
__attribute__((target("avx2"))) static inline void avx2_store(int32_t *p, __m256i v) { _mm256_storeu_si256((__m256i *)p, v); }
#define AVXVNNI "avx2,avxvnni"
__attribute__((target(AVXVNNI))) static inline __m256i avxvnni_load(const int8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
__attribute__((target(AVXVNNI))) static inline __m256i avxvnni_dpbusd(__m256i acc, __m256i x, __m256i b) {
    return _mm256_dpbusd_avx_epi32(acc, x, b);
}

// The 256-bit int8 tile kernels: 6 rows x 2 vectors of 8 columns; per step (a 32-bit lane of each
// row against the step's STEP bytes of the panel) 2 loads, 6 broadcasts and 12 ACCUMULATE.
// - AVX2: vpmaddubsw (u8 x s8) would saturate its 16-bit pair sums (255 * 127 * 2 > 32767), so
//   both operands are int16 (two depths a lane; the weights widened from int8 as they are
//   loaded) and vpmaddwd sums each pair exactly into 32 bits, then vpaddd.
// - AVX-VNNI (VEX-encoded vpdpbusd on YMM, for CPUs with it and without AVX-512): four u8 x s8
//   depths a lane, the VNNI arithmetic on 16 registers.
#define YMM_TILE_KERNEL(NAME, TARGET, STEP, LOAD, ACCUMULATE)                                                             \
    __attribute__((target(TARGET))) static void NAME(size_t steps, const void *av, const void *bv, void *tilev) { \
        const uint32_t *a = av;                                                                              \
        const int8_t *b = bv;                                                                                \
        int32_t *tile = tilev;                                                                               \
        __m256i acc[6][2];                                                                                   \
        for (int r = 0; r < 6; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();                         \
        for (size_t s = 0; s < steps; s++, a += 6, b += STEP) {                                              \
            __m256i b0 = LOAD(b), b1 = LOAD(b + STEP / 2);                                                   \
            for (int r = 0; r < 6; r++) {                                                                    \
                __m256i x = _mm256_set1_epi32((int)a[r]);                                                    \
                acc[r][0] = ACCUMULATE(acc[r][0], x, b0);                                                    \
                acc[r][1] = ACCUMULATE(acc[r][1], x, b1);                                                    \
            }                                                                                                \
        }                                                                                                    \
        for (int r = 0; r < 6; r++) {                                                                        \
            _mm256_storeu_si256((__m256i *)(tile + r * 16), acc[r][0]);                                      \
            _mm256_storeu_si256((__m256i *)(tile + r * 16 + 8), acc[r][1]);                                  \
        }                                                                                                    \
    }
__attribute__((target("avx2"))) static inline __m256i avx2_madd_add(__m256i acc, __m256i x, __m256i b) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(x, b));
}
YMM_TILE_KERNEL(i8_avx2_kernel, "avx2", 32, avx2_load_widened, avx2_madd_add)
YMM_TILE_KERNEL(i8_avxvnni_kernel, AVXVNNI, 64, avxvnni_load, avxvnni_dpbusd)
// AVX2 on bytes, for weights whose pairs `nn_i8_maddubs_exact` accepts: vpmaddubsw multiplies
// four u8 x s8 depths a lane and adds them in pairs into int16 (exact, as no pair sum reaches
// 32,767), vpmaddwd by ones adds the pairs into int32, then vpaddd: three instructions per 32
// products where the pairs kernel spends four and the weights' widening.
__attribute__((target("avx2"))) static inline __m256i avx2_load(const int8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
__attribute__((target("avx2"))) static inline __m256i avx2_maddubs_add(__m256i acc, __m256i x, __m256i b) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, b), _mm256_set1_epi16(1)));
}
YMM_TILE_KERNEL(i8_avx2_maddubs_kernel, "avx2", 64, avx2_load, avx2_maddubs_add)

// The same for 7-bit activations (0...127) and weights (-63...63): four products then stay
// within 4 * 127 * 63 = 32,004, so the int16 pair sums of two steps are added (vpaddw) before
// one vpmaddwd by ones widens them: 5 instructions per 64 products instead of 6. The kernel is
// bound by the vector pipes (Zen 4 under the AVX2 mask: 14 cycles per two steps of a 6 x 16
// tile, for 60 instructions on 4 pipes), so this is what makes it faster; an odd last step
// runs as in the kernel above.
__attribute__((target("avx2"))) static inline __m256i avx2_maddubs7_add(__m256i acc, __m256i x0, __m256i b0, __m256i x1, __m256i b1) {
    __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(x0, b0), _mm256_maddubs_epi16(x1, b1));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}
__attribute__((target("avx2"))) static void i8_avx2_maddubs7_kernel(size_t steps, const void *av, const void *bv, void *tilev) {
    const uint32_t *a = av;
    const int8_t *b = bv;
    int32_t *tile = tilev;
    __m256i acc[6][2];
    for (int r = 0; r < 6; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    size_t s = 0;
    for (; s + 2 <= steps; s += 2, a += 12, b += 128) {
        for (int r = 0; r < 6; r++) {
            __m256i x0 = _mm256_set1_epi32((int)a[r]), x1 = _mm256_set1_epi32((int)a[6 + r]);
            acc[r][0] = avx2_maddubs7_add(acc[r][0], x0, avx2_load(b), x1, avx2_load(b + 64));
            acc[r][1] = avx2_maddubs7_add(acc[r][1], x0, avx2_load(b + 32), x1, avx2_load(b + 96));
        }
    }
    if (s < steps) {
        for (int r = 0; r < 6; r++) {
            __m256i x = _mm256_set1_epi32((int)a[r]);
            acc[r][0] = avx2_maddubs_add(acc[r][0], x, avx2_load(b));
            acc[r][1] = avx2_maddubs_add(acc[r][1], x, avx2_load(b + 32));
        }
    }
    for (int r = 0; r < 6; r++) {
        _mm256_storeu_si256((__m256i *)(tile + r * 16), acc[r][0]);
        _mm256_storeu_si256((__m256i *)(tile + r * 16 + 8), acc[r][1]);
    }
}

/// One row of 7-bit activations against up to 4 panels, two steps at a time as the tile kernel.
__attribute__((target("avx2"), always_inline)) static inline void i8_avx2_maddubs7_row(int panels, bool half, size_t steps, const uint32_t *a,
                                                                                       const int8_t *b, size_t panel_elements, int32_t *tiles) {
    __m256i acc[4][2];
    UNROLL for (int v = 0; v < 4; v++) if (v < panels) acc[v][0] = acc[v][1] = _mm256_setzero_si256();
    size_t s = 0;
    for (; s + 2 <= steps; s += 2) {
        __m256i x0 = _mm256_set1_epi32((int)a[s]), x1 = _mm256_set1_epi32((int)a[s + 1]);
        UNROLL for (int v = 0; v < 4; v++) {
            if (v < panels) {
                const int8_t *p = b + v * panel_elements + s * 64;
                acc[v][0] = avx2_maddubs7_add(acc[v][0], x0, avx2_load(p), x1, avx2_load(p + 64));
                if (!half) acc[v][1] = avx2_maddubs7_add(acc[v][1], x0, avx2_load(p + 32), x1, avx2_load(p + 96));
            }
        }
    }
    if (s < steps) {
        __m256i x = _mm256_set1_epi32((int)a[s]);
        UNROLL for (int v = 0; v < 4; v++) {
            if (v < panels) {
                const int8_t *p = b + v * panel_elements + s * 64;
                acc[v][0] = avx2_maddubs_add(acc[v][0], x, avx2_load(p));
                if (!half) acc[v][1] = avx2_maddubs_add(acc[v][1], x, avx2_load(p + 32));
            }
        }
    }
    UNROLL for (int v = 0; v < 4; v++) {
        if (v < panels) {
            avx2_store(tiles + 16 * v, acc[v][0]);
            avx2_store(tiles + 16 * v + 8, half ? _mm256_setzero_si256() : acc[v][1]);
        }
    }
}
__attribute__((target(BF16))) static inline __m512bh bf16_set1(int x) { return (__m512bh)_mm512_set1_epi32(x); }
__attribute__((target(BF16))) static inline __m512bh bf16_load(const uint16_t *p) { return (__m512bh)_mm512_loadu_si512(p); }

LP_ROW_KERNEL(i8_vnni_row, VNNI, __m512i, __m512i, int8_t, int32_t, 32, 128, 64, _mm512_setzero_si512, _mm512_set1_epi32,
              vnni_load, _mm512_dpbusd_epi32, vnni_store, LP_INT_CHAINS, _mm512_add_epi32)
LP_ROW_KERNEL(i8_avx2_row, "avx2", __m256i, __m256i, int8_t, int32_t, 16, 32, 16, _mm256_setzero_si256, _mm256_set1_epi32,
              avx2_load_widened, avx2_madd_add, avx2_store, LP_INT_CHAINS, _mm256_add_epi32)
LP_ROW_KERNEL(i8_avx2_maddubs_row, "avx2", __m256i, __m256i, int8_t, int32_t, 16, 64, 32, _mm256_setzero_si256, _mm256_set1_epi32,
              avx2_load, avx2_maddubs_add, avx2_store, LP_INT_CHAINS, _mm256_add_epi32)
LP_ROW_KERNEL(i8_avxvnni_row, AVXVNNI, __m256i, __m256i, int8_t, int32_t, 16, 64, 32, _mm256_setzero_si256, _mm256_set1_epi32,
              avxvnni_load, avxvnni_dpbusd, avx2_store, LP_INT_CHAINS, _mm256_add_epi32)
LP_ROW_KERNEL(bf16_avx512_row, BF16, __m512, __m512bh, uint16_t, float, 32, 64, 32, _mm512_setzero_ps, bf16_set1, bf16_load,
              _mm512_dpbf16_ps, _mm512_storeu_ps, LP_ONE_CHAIN, _mm512_add_ps)

/// The row kernels with `panels` (1...4) and `half` as constants, so their accumulators stay in
/// registers.
#define LP_ROW_DISPATCH(NAME, TARGET, B, TILE)                                                                   \
    __attribute__((target(TARGET))) static void NAME##_panels(int panels, bool half, size_t steps,             \
                                                              const uint32_t *a, const void *b,                  \
                                                              size_t panel_elements, void *tiles) {              \
        const B *w = b;                                                                                          \
        TILE *t = tiles;                                                                                         \
        switch (panels) {                                                                                        \
        case 4: NAME(4, false, steps, a, w, panel_elements, t); break;                                           \
        case 3: NAME(3, false, steps, a, w, panel_elements, t); break;                                           \
        case 2: NAME(2, false, steps, a, w, panel_elements, t); break;                                           \
        default:                                                                                                 \
            if (half) NAME(1, true, steps, a, w, panel_elements, t);                                             \
            else NAME(1, false, steps, a, w, panel_elements, t);                                                 \
            break;                                                                                               \
        }                                                                                                        \
    }
LP_ROW_DISPATCH(i8_vnni_row, VNNI, int8_t, int32_t)
LP_ROW_DISPATCH(i8_avx2_row, "avx2", int8_t, int32_t)
LP_ROW_DISPATCH(i8_avxvnni_row, AVXVNNI, int8_t, int32_t)
LP_ROW_DISPATCH(i8_avx2_maddubs_row, "avx2", int8_t, int32_t)
LP_ROW_DISPATCH(i8_avx2_maddubs7_row, "avx2", int8_t, int32_t)
LP_ROW_DISPATCH(bf16_avx512_row, BF16, uint16_t, float)
#endif
static const lp_shape bf16_scalar_shape = {4, 32, 2, 2, 2, bf16_scalar_kernel};
static const lp_shape i8_scalar_quads = {4, 32, 4, 1, 1, i8_scalar_kernel_quads};
static const lp_shape i8_scalar_pairs = {4, 16, 2, 2, 1, i8_scalar_kernel_pairs};
static const lp_shape i8_scalar_quads16 = {4, 16, 4, 1, 1, i8_scalar_kernel_quads16};
#if defined(__x86_64__)
static const lp_shape bf16_avx512_shape = {12, 32, 2, 2, 2, bf16_avx512_kernel, bf16_avx512_row_panels, NULL, true};
static const lp_shape i8_vnni_shape = {12, 32, 4, 1, 1, i8_vnni_kernel, i8_vnni_row_panels, i8_vnni_kernel_half, true};
static const lp_shape i8_avx2_shape = {6, 16, 2, 2, 1, i8_avx2_kernel, i8_avx2_row_panels};
static const lp_shape i8_avxvnni_shape = {6, 16, 4, 1, 1, i8_avxvnni_kernel, i8_avxvnni_row_panels};
static const lp_shape i8_avx2_maddubs_shape = {6, 16, 4, 1, 1, i8_avx2_maddubs_kernel, i8_avx2_maddubs_row_panels};
// The same packing for 7-bit activations and weights (`nn_i8_gemm` with 7 bits).
static const lp_shape i8_avx2_maddubs7_shape = {6, 16, 4, 1, 1, i8_avx2_maddubs7_kernel, i8_avx2_maddubs7_row_panels};
// One-row products on the same packing through the AVX512-VNNI row kernel (the padded depths are zeros).
static const lp_shape i8_amx_shape = {32, 32, 4, 1, 1, i8_amx_kernel, i8_vnni_row_panels, NULL, true, 64, true, amx_enter, amx_leave};
// One row runs on the tiles too (vdpbf16ps would add its pairs in another order).
static const lp_shape bf16_amx_shape = {32, 32, 2, 2, 2, bf16_amx_kernel, bf16_amx_row_panels, NULL, true, 32, true, amx_enter, amx_leave};
#endif

bool nn_bf16_supported(int kernel) {
    switch (kernel) {
    case nn_bf16_scalar: return true;
    case nn_bf16_avx512: return (nn_cpu_features() & (nn_cpu_avx512 | nn_cpu_avx512_bf16)) == (nn_cpu_avx512 | nn_cpu_avx512_bf16);
    case nn_bf16_amx: return nn_cpu_features() & nn_cpu_amx_bf16;
    default: return false;
    }
}

bool nn_i8_supported(int kernel) {
    switch (kernel) {
    case nn_i8_scalar: return true;
    case nn_i8_avx2: case nn_i8_avx2_maddubs: return nn_cpu_features() & nn_cpu_avx2_fma;
    case nn_i8_vnni: return (nn_cpu_features() & (nn_cpu_avx512 | nn_cpu_avx512_vnni)) == (nn_cpu_avx512 | nn_cpu_avx512_vnni);
    case nn_i8_avx_vnni: return nn_cpu_features() & nn_cpu_avx_vnni;
    case nn_i8_amx: return nn_cpu_features() & nn_cpu_amx_int8;
    default: return false;
    }
}

/// The shape that runs a packing made for `kernel`: that kernel when the CPU has it, else the
/// portable one of the same layout (so no instruction the CPU lacks is executed).
static const lp_shape *bf16_shape_for(int kernel) {
#if defined(__x86_64__)
    if (kernel == nn_bf16_avx512 && nn_bf16_supported(kernel)) return &bf16_avx512_shape;
    if (kernel == nn_bf16_amx && nn_bf16_supported(kernel)) return &bf16_amx_shape;
#endif
    (void)kernel;
    return &bf16_scalar_shape;
}

static const lp_shape *i8_shape_for(int kernel) {
#if defined(__x86_64__)
    if (kernel == nn_i8_vnni && nn_i8_supported(kernel)) return &i8_vnni_shape;
    if (kernel == nn_i8_avx2 && nn_i8_supported(kernel)) return &i8_avx2_shape;
    if (kernel == nn_i8_avx_vnni && nn_i8_supported(kernel)) return &i8_avxvnni_shape;
    if (kernel == nn_i8_avx2_maddubs && nn_i8_supported(kernel)) return &i8_avx2_maddubs_shape;
    if (kernel == nn_i8_amx && nn_i8_supported(kernel)) return &i8_amx_shape;
#endif
    switch (kernel) {
    case nn_i8_avx2: return &i8_scalar_pairs;
    case nn_i8_avx_vnni: case nn_i8_avx2_maddubs: return &i8_scalar_quads16;
    default: return &i8_scalar_quads;
    }
}

// ---- packing B ---------------------------------------------------------------------------------

bool nn_i8_maddubs_exact(const int8_t *b, size_t ldb, size_t k, size_t n) {
    for (size_t p = 0; p < k; p += 2) {
        const int8_t *row = b + p * ldb, *next = p + 1 < k ? row + ldb : NULL;
        for (size_t j = 0; j < n; j++) {
            if (abs(row[j]) + (next ? abs(next[j]) : 0) > 128) return false;
        }
    }
    return true;
}

size_t nn_bf16_packed_count(int kernel, size_t k, size_t n) { return round_up(n, 32) * round_up(k, shape_kalign(bf16_shape_for(kernel))); }

void nn_bf16_pack(int kernel, const float *b, size_t ldb, size_t k, size_t n, uint16_t *packed) {
    size_t kpad = round_up(k, shape_kalign(bf16_shape_for(kernel)));
    for (size_t first = 0; first < n; first += 32) {
        for (size_t p = 0; p < kpad; p += 2) {
            for (size_t j = 0; j < 32; j++) {
                for (size_t d = 0; d < 2; d++) {
                    size_t row = p + d, col = first + j;
                    *packed++ = row < k && col < n ? to_bf16(b[row * ldb + col]) : 0;
                }
            }
        }
    }
}

/// Layout of an int8 packing: panels, then the column sums (int32, padded to the panel width).
static size_t i8_panel_bytes(const lp_shape *s, size_t k) { return round_up(k, shape_kalign(s)) * s->nr * s->b_bytes; }

size_t nn_i8_packed_bytes(int kernel, size_t k, size_t n) {
    const lp_shape *s = i8_shape_for(kernel);
    size_t panels = (n + s->nr - 1) / s->nr;
    return panels * i8_panel_bytes(s, k) + panels * s->nr * sizeof(int32_t);
}

/// Where the column sums of a k x n packing for shape `s` start: after its panels.
static int32_t *i8_column_sums(const lp_shape *s, const void *packed, size_t k, size_t n) {
    size_t panels = (n + s->nr - 1) / s->nr;
    return (int32_t *)((const uint8_t *)packed + panels * i8_panel_bytes(s, k));
}

void nn_i8_pack(int kernel, const int8_t *b, size_t ldb, size_t k, size_t n, void *packed) {
    const lp_shape *s = i8_shape_for(kernel);
    size_t panels = (n + s->nr - 1) / s->nr, kpad = round_up(k, shape_kalign(s));
    int32_t *sums = i8_column_sums(s, packed, k, n);
    int8_t *to = packed;  // every int8 packing holds one byte a weight
    for (size_t panel = 0; panel < panels; panel++) {
        size_t first = panel * s->nr;
        for (size_t p = 0; p < kpad; p += s->kstep) {
            for (size_t j = 0; j < s->nr; j++) {
                for (size_t d = 0; d < s->kstep; d++) {
                    size_t row = p + d, col = first + j;
                    *to++ = row < k && col < n ? b[row * ldb + col] : 0;
                }
            }
        }
        for (size_t j = 0; j < s->nr; j++) {
            int32_t sum = 0;
            if (first + j < n) for (size_t p = 0; p < k; p++) sum += b[p * ldb + first + j];
            sums[first + j] = sum;
        }
    }
}

// ---- quantizing and packing A ------------------------------------------------------------------

/// Quantizes one row of k floats to u8 with its own scale and zero point: the range [min(x, 0),
/// max(x, 0)] of the finite values mapped onto 0...top (255, or 127 for 7-bit activations; 0
/// exactly representable); NaN becomes 0 (the range's low end), infinities are clamped to it.
/// The three versions below (portable, AVX2, AVX-512) compute the same bytes (round to nearest
/// even, the same clamps); each kernel family quantizes with its own width (`quantize_lanes`),
/// so the tests of a kernel cover it.
static void quantize_scale(float lo, float hi, int top, float *scale, int32_t *zero, float *inverse) {
    float s = (hi - lo) / (float)top;
    if (!(s > 0) || !isfinite(s)) s = 1;
    float z = nearbyintf(-lo / s);
    z = z < 0 ? 0 : (z > top ? top : z);
    *scale = s;
    *zero = (int32_t)z;
    *inverse = 1.0f / s;
}

/// q = clamp(round(x * inverse) + zero, 0, top) (round to nearest even; NaN -> 0).
static void quantize_values_portable(const float *x, size_t k, uint8_t *q, float inverse, int32_t zero, int top) {
    float z = (float)zero, t = (float)top;
    for (size_t p = 0; p < k; p++) {
        float v = nearbyintf(x[p] * inverse) + z;
        v = v > 0 ? v : 0;  // NaN -> 0
        v = v < t ? v : t;
        q[p] = (uint8_t)v;
    }
}

/// [min(x, 0), max(x, 0)] over the finite values of x.
static void finite_range_portable(const float *x, size_t k, float *lo, float *hi) {
    for (size_t p = 0; p < k; p++) {
        float v = x[p];
        if (v < *lo && v != -INFINITY) *lo = v;
        if (v > *hi && v != INFINITY) *hi = v;
    }
}

#if defined(__x86_64__)
/// The finite values of `v`, the others (NaN, infinities) 0: |v| < inf is false for them.
__attribute__((target("avx2"))) static inline __m256 finite8(__m256 v) {
    __m256 finite = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v), _mm256_set1_ps(INFINITY), _CMP_LT_OQ);
    return _mm256_and_ps(v, finite);
}

/// [min(x, 0), max(x, 0)] over the finite values: two pairs of running minima and maxima over 16
/// values at a time (one pair would wait on its own latency every step), then 8 at a time, then
/// the portable loop for the rest.
__attribute__((target("avx2,fma,sse4.1"))) static void finite_range_avx2(const float *x, size_t k, float *lo_out, float *hi_out) {
    __m256 lo = _mm256_setzero_ps(), hi = lo, lo1 = lo, hi1 = lo;
    size_t p = 0;
    for (; p + 16 <= k; p += 16) {
        __m256 v = finite8(_mm256_loadu_ps(x + p)), v1 = finite8(_mm256_loadu_ps(x + p + 8));
        lo = _mm256_min_ps(lo, v), lo1 = _mm256_min_ps(lo1, v1);
        hi = _mm256_max_ps(hi, v), hi1 = _mm256_max_ps(hi1, v1);
    }
    lo = _mm256_min_ps(lo, lo1);
    hi = _mm256_max_ps(hi, hi1);
    for (; p + 8 <= k; p += 8) {
        __m256 v = finite8(_mm256_loadu_ps(x + p));
        lo = _mm256_min_ps(lo, v);
        hi = _mm256_max_ps(hi, v);
    }
    float l[8], h[8];
    _mm256_storeu_ps(l, lo);
    _mm256_storeu_ps(h, hi);
    float lmin = 0, hmax = 0;
    for (int i = 0; i < 8; i++) {
        lmin = l[i] < lmin ? l[i] : lmin;
        hmax = h[i] > hmax ? h[i] : hmax;
    }
    finite_range_portable(x + p, k - p, &lmin, &hmax);
    *lo_out = lmin;
    *hi_out = hmax;
}

/// Each lane's integer in 0...top, as 32 bits: round(x * inverse) + zero, clamped; one body for
/// 8 lanes (AVX2) and 16 (AVX-512).
#define QUANTIZE_LANES(NAME, TARGET, VEC, VECI, ROUND, MUL, ADD, MAX, MIN, ZERO, CVT)                  \
    __attribute__((target(TARGET))) static inline VECI NAME(VEC x, VEC inv, VEC z, VEC top) {          \
        VEC v = ADD(ROUND(MUL(x, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), z);           \
        v = MAX(v, ZERO()); /* NaN -> 0 (max returns its second operand) */                          \
        return CVT(MIN(v, top));                                                                     \
    }
QUANTIZE_LANES(quantize8, "avx2,fma,sse4.1", __m256, __m256i, _mm256_round_ps, _mm256_mul_ps, _mm256_add_ps, _mm256_max_ps,
               _mm256_min_ps, _mm256_setzero_ps, _mm256_cvttps_epi32)
QUANTIZE_LANES(quantize16, "avx512f", __m512, __m512i, _mm512_roundscale_ps, _mm512_mul_ps, _mm512_add_ps, _mm512_max_ps,
               _mm512_min_ps, _mm512_setzero_ps, _mm512_cvttps_epi32)

/// 32 values at a time narrowed to bytes by two rounds of packs (per 128-bit lane, so a
/// permutation of 32-bit groups puts them back in order): 4 shuffles instead of 12 when each
/// vector of 8 is narrowed on its own, which the tail still is (blog int8 on AVX-VNNI, one
/// thread: 7.0 -> 5.0 % of the samples).
__attribute__((target("avx2,fma,sse4.1"))) static void quantize_values_avx2(const float *x, size_t k, uint8_t *q, float inverse,
                                                                             int32_t zero, int top) {
    const __m256 inv = _mm256_set1_ps(inverse), z = _mm256_set1_ps((float)zero), t = _mm256_set1_ps((float)top);
    // After the packs, 128-bit lane L holds 4 bytes of each of the four vectors: group 4L + j is
    // vector j's values 4L...4L+3, which go to group 2j + L.
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t p = 0;
    for (; p + 32 <= k; p += 32) {
        __m256i i0 = quantize8(_mm256_loadu_ps(x + p), inv, z, t), i1 = quantize8(_mm256_loadu_ps(x + p + 8), inv, z, t);
        __m256i i2 = quantize8(_mm256_loadu_ps(x + p + 16), inv, z, t), i3 = quantize8(_mm256_loadu_ps(x + p + 24), inv, z, t);
        __m256i bytes = _mm256_packus_epi16(_mm256_packus_epi32(i0, i1), _mm256_packus_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)(q + p), _mm256_permutevar8x32_epi32(bytes, order));
    }
    for (; p + 8 <= k; p += 8) {
        __m256i i = quantize8(_mm256_loadu_ps(x + p), inv, z, t);
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
        _mm_storel_epi64((__m128i *)(q + p), _mm_packus_epi16(w, w));
    }
    quantize_values_portable(x + p, k - p, q + p, inverse, zero, top);
}

/// The finite values of `v`, the others (NaN, infinities) 0.
__attribute__((target("avx512f"))) static inline __m512 finite16(__m512 v) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_abs_ps(v), _mm512_set1_ps(INFINITY), _CMP_LT_OQ), v);
}

/// As `finite_range_avx2`, 16 lanes: four pairs of running minima and maxima over 64 values at a
/// time (one pair would wait on its own latency every step), then the tail 16 at a time, its
/// missing lanes loaded as 0, which the range holds.
__attribute__((target("avx512f"))) static void finite_range_avx512(const float *x, size_t k, float *lo_out, float *hi_out) {
    __m512 lo0 = _mm512_setzero_ps(), lo1 = lo0, lo2 = lo0, lo3 = lo0, hi0 = lo0, hi1 = lo0, hi2 = lo0, hi3 = lo0;
    size_t p = 0;
    for (; p + 64 <= k; p += 64) {
        __m512 v0 = finite16(_mm512_loadu_ps(x + p)), v1 = finite16(_mm512_loadu_ps(x + p + 16));
        __m512 v2 = finite16(_mm512_loadu_ps(x + p + 32)), v3 = finite16(_mm512_loadu_ps(x + p + 48));
        lo0 = _mm512_min_ps(lo0, v0), lo1 = _mm512_min_ps(lo1, v1), lo2 = _mm512_min_ps(lo2, v2), lo3 = _mm512_min_ps(lo3, v3);
        hi0 = _mm512_max_ps(hi0, v0), hi1 = _mm512_max_ps(hi1, v1), hi2 = _mm512_max_ps(hi2, v2), hi3 = _mm512_max_ps(hi3, v3);
    }
    for (; p < k; p += 16) {
        __m512 v = finite16(_mm512_maskz_loadu_ps(nn_avx512_lanes(k - p), x + p));
        lo0 = _mm512_min_ps(lo0, v);
        hi0 = _mm512_max_ps(hi0, v);
    }
    *lo_out = _mm512_reduce_min_ps(_mm512_min_ps(_mm512_min_ps(lo0, lo1), _mm512_min_ps(lo2, lo3)));
    *hi_out = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(hi0, hi1), _mm512_max_ps(hi2, hi3)));
}

/// As `quantize_values_avx2`: 64 values at a time narrowed to bytes by two rounds of packs (per
/// 128-bit lane, so a permutation of 32-bit groups puts them back in order), four times fewer
/// shuffles than narrowing each vector on its own; the tail 16 at a time through a mask.
__attribute__((target("avx512f,avx512bw"))) static void quantize_values_avx512(const float *x, size_t k, uint8_t *q, float inverse,
                                                                                int32_t zero, int top) {
    const __m512 inv = _mm512_set1_ps(inverse), z = _mm512_set1_ps((float)zero), t = _mm512_set1_ps((float)top);
    // After the packs, 128-bit lane L holds 4 bytes of each of the four vectors: group 4L + j is
    // vector j's values 4L...4L+3, which go to group 4j + L.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    size_t p = 0;
    for (; p + 64 <= k; p += 64) {
        __m512i i0 = quantize16(_mm512_loadu_ps(x + p), inv, z, t), i1 = quantize16(_mm512_loadu_ps(x + p + 16), inv, z, t);
        __m512i i2 = quantize16(_mm512_loadu_ps(x + p + 32), inv, z, t), i3 = quantize16(_mm512_loadu_ps(x + p + 48), inv, z, t);
        __m512i bytes = _mm512_packus_epi16(_mm512_packus_epi32(i0, i1), _mm512_packus_epi32(i2, i3));
        _mm512_storeu_si512(q + p, _mm512_permutexvar_epi32(order, bytes));
    }
    for (; p < k; p += 16) {
        __mmask16 lanes = nn_avx512_lanes(k - p);
        _mm512_mask_cvtepi32_storeu_epi8(q + p, lanes, quantize16(_mm512_maskz_loadu_ps(lanes, x + p), inv, z, t));
    }
}
#endif

/// The vector width the rows for a kernel of shape `s` are quantized with: 16 for the AVX-512
/// family (VNNI, AMX), 8 for the AVX2 one (AVX2, AVX-VNNI), 1 (portable C) for the portable
/// kernels, which alone have no row kernel.
static int quantize_lanes(const lp_shape *s) { return s->avx512_epilogue ? 16 : s->row ? 8 : 1; }

static void quantize_values(int lanes, const float *x, size_t k, uint8_t *q, float inverse, int32_t zero, int top) {
#if defined(__x86_64__)
    if (lanes == 16) {
        quantize_values_avx512(x, k, q, inverse, zero, top);
        return;
    }
    if (lanes == 8) {
        quantize_values_avx2(x, k, q, inverse, zero, top);
        return;
    }
#endif
    quantize_values_portable(x, k, q, inverse, zero, top);
}

/// Per row: the row's own range, then its values in 0...top, on `lanes`-wide vectors
/// (`quantize_lanes`).
static void quantize_row(int lanes, const float *x, size_t k, uint8_t *q, int top, float *scale, int32_t *zero) {
    float lo = 0, hi = 0, inverse;
#if defined(__x86_64__)
    if (lanes == 16) finite_range_avx512(x, k, &lo, &hi); else
    if (lanes == 8) finite_range_avx2(x, k, &lo, &hi); else
#endif
    finite_range_portable(x, k, &lo, &hi);
    quantize_scale(lo, hi, top, scale, zero, &inverse);
    quantize_values(lanes, x, k, q, inverse, *zero, top);
}

/// The largest quantized activation for `bits` (8 or 7) bits.
static int activation_top(int bits) { return bits == 7 ? 127 : 255; }

/// One sample (or row) of k values quantized as a whole: with `input`'s calibrated scale and zero
/// point (8 bits), or (NULL) its own range onto 0...top.
static void quantize_sample(int lanes, const nn_i8_input *input, const float *x, size_t k, uint8_t *q, int top, float *scale,
                            int32_t *zero) {
    if (input) {
        *scale = input->scale;
        *zero = input->zero;
        quantize_values(lanes, x, k, q, 1.0f / input->scale, input->zero, 255);
    } else {
        quantize_row(lanes, x, k, q, top, scale, zero);
    }
}

typedef struct {
    const lp_shape *shape;
    int mode;  // mode_bf16, mode_i8, mode_i8_raw, mode_i8_bytes
    size_t m, n, k, lda, ldc, steps;
    const void *a;  // float rows, or u8 rows (mode_i8_raw, mode_i8_bytes)
    // mode_i8_bytes: row i was quantized with row_scales[i / rows_per_scale] and row_zeros[...]
    const float *row_scales;
    const int32_t *row_zeros;
    size_t rows_per_scale;
    const void *packed;
    const float *scales;      // int8: per column
    const nn_i8_input *input; // int8: the rows' calibrated quantization, or NULL (per row)
    int top;                  // int8 per row: the largest quantized value (255, or 127 for 7-bit activations)
    const nn_prologue *prologue;  // int8: the preprocessing of A's rows, or NULL
    const int32_t *sums;      // int8: column sums
    const float *bias;
    bool relu;
    void *c;                  // float, or int32 (mode_i8_raw)
    size_t panels, panels_per_group, groups, units;
    size_t buffer_bytes;
    uint8_t *buffers;         // per thread: packed A block, then a u8 row, row scales, zero points
    _Atomic size_t next;
} lp_job;

enum { mode_bf16 = 0, mode_i8 = 1, mode_i8_raw = 2, mode_i8_bytes = 3 };

/// u8 values widened to uint16 (the compiler vectorizes the loop).
static void widen_u8(const uint8_t *restrict q, size_t count, uint16_t *restrict wide) {
    for (size_t i = 0; i < count; i++) wide[i] = q[i];
}

#if defined(__x86_64__)
/// The first `full` steps (4 bytes each) of the `mr` (6 or 12) byte rows at `a` (row stride
/// `lda`) into a packed group (`to[step * mr + row]`), 8 steps of 8 rows at a time transposed
/// in registers (the last 4 or 6 rows of a group as 8 with padding, stored in part) instead of
/// one 4-byte copy per step and row, which took 18 % of the PyTorch MNIST CNN's int8 time.
__attribute__((target("avx2"))) static void transpose_byte_rows(const uint8_t *a, size_t lda, size_t mr, size_t full, uint32_t *to) {
    size_t s = 0;
    for (; s + 8 <= full; s += 8) {
        for (size_t base = 0; base < mr; base += 8) {
            size_t n = mr - base < 8 ? mr - base : 8;
            __m256i r[8], t[8];
            for (size_t i = 0; i < 8; i++) {
                r[i] = i < n ? _mm256_loadu_si256((const __m256i *)(a + (base + i) * lda + 4 * s)) : _mm256_setzero_si256();
            }
            for (int i = 0; i < 4; i++) {
                t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
            }
            __m256i u[8];
            for (int h = 0; h < 2; h++) {
                u[4 * h + 0] = _mm256_unpacklo_epi64(t[4 * h], t[4 * h + 2]);
                u[4 * h + 1] = _mm256_unpackhi_epi64(t[4 * h], t[4 * h + 2]);
                u[4 * h + 2] = _mm256_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);
                u[4 * h + 3] = _mm256_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);
            }
            for (int i = 0; i < 4; i++) {
                // Step i (and i + 4): rows 0-3 from u[i], rows 4-7 from u[i + 4].
                __m256i lo = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20), hi = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
                uint32_t *d0 = to + (s + i) * mr + base, *d1 = to + (s + i + 4) * mr + base;
                if (n == 8) {
                    _mm256_storeu_si256((__m256i *)d0, lo);
                    _mm256_storeu_si256((__m256i *)d1, hi);
                } else {
                    _mm_storeu_si128((__m128i *)d0, _mm256_castsi256_si128(lo));
                    _mm_storeu_si128((__m128i *)d1, _mm256_castsi256_si128(hi));
                    if (n == 6) {
                        _mm_storel_epi64((__m128i *)(d0 + 4), _mm256_extracti128_si256(lo, 1));
                        _mm_storel_epi64((__m128i *)(d1 + 4), _mm256_extracti128_si256(hi, 1));
                    }
                }
            }
        }
    }
    for (; s < full; s++) {
        for (size_t i = 0; i < mr; i++) memcpy(to + s * mr + i, a + i * lda + 4 * s, 4);
    }
}

/// `to_bf16` of count floats (the same bits: rounded to nearest even, NaN kept quiet), 16 at a
/// time: the conversion of a bf16 product's rows before `transpose_byte_rows` groups them.
__attribute__((target("avx2"))) static void bf16_row_avx2(const float *x, size_t count, uint16_t *to) {
    const __m256i one = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7FFF), quiet = _mm256_set1_epi32(0x40);
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m256i h[2];
        for (int v = 0; v < 2; v++) {
            __m256 f = _mm256_loadu_ps(x + i + 8 * v);
            __m256i bits = _mm256_castps_si256(f), upper = _mm256_srli_epi32(bits, 16);
            __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, half), _mm256_and_si256(upper, one)), 16);
            __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
            h[v] = _mm256_blendv_epi8(rounded, _mm256_or_si256(upper, quiet), nan);
        }
        // packus works within 128-bit lanes: 64-bit groups 0, 2, 1, 3 put the 16 values in order.
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(h[0], h[1]), 0xD8);
        _mm256_storeu_si256((__m256i *)(to + i), packed);
    }
    for (; i < count; i++) to[i] = to_bf16(x[i]);
}
#endif

// A whole group of 6 or 12 float rows of an int8 product (`mode_i8`) is quantized row by row into
// a buffer of its own (each row widened to int16 after it for the AVX2 pairs layout) and then
// transposed in registers like rows of bytes, instead of copied into the group 4 bytes a step
// and row (7 % of a 10,000 x 784 x 256 product on AVX2, one thread).
enum { lp_group_rows = 12 };

/// Bytes of the rows buffer `pack_a` takes: a group's quantized rows, then the same widened.
static size_t group_rows_bytes(size_t k) { return lp_group_rows * (round_up(k, 64) + round_up(2 * k, 64)); }

/// Float row `row` of the job's A quantized into `q` (its scale and zero point to `scale` and
/// `zero`), preprocessed into `floats` (k values) first when the job has a prologue.
static void quantize_a_row(const lp_job *job, size_t row, uint8_t *q, float *floats, float *scale, int32_t *zero) {
    const void *from = nn_prologue_element(job->prologue, job->a, job->lda, row, 0);
    const float *x = from;
    if (job->prologue) {
        nn_preprocess_row(job->prologue, from, job->k, floats);
        x = floats;
    }
    quantize_sample(quantize_lanes(job->shape), job->input, x, job->k, q, job->top, scale, zero);
}

/// Packs `rows` rows starting at `row0` into groups of MR rows, kstep depths of a row adjacent
/// (zero rows and depths past the edge); int8 rows are preprocessed (into `floats`, k values)
/// when the job has a prologue and quantized (their scale and zero point go to `scale`/`zero`),
/// into `row_buffer` (`group_rows_bytes`, or k bytes when mr is 1).
static void pack_a(const lp_job *job, size_t row0, size_t rows, size_t mr, uint8_t *to, uint8_t *row_buffer, float *floats,
                   float *scale, int32_t *zero) {
    const lp_shape *s = job->shape;
    size_t ks = s->kstep, kpad = job->steps * ks;
    size_t group_bytes = kpad * mr * s->a_bytes;
    // mode_i8_bytes: the scale of row row0 + r is number `sample`, for `left` more rows (counted
    // along instead of two divisions a row, which took about 5 % of a convolution's int8 time).
    size_t sample = 0, left = 0;
    if (job->mode == mode_i8_bytes) {
        sample = row0 / job->rows_per_scale;
        left = job->rows_per_scale - row0 % job->rows_per_scale;
    }
#if defined(__x86_64__)
    bool avx2 = nn_cpu_features() & nn_cpu_avx2_fma;
#endif
    for (size_t r = 0; r < round_up(rows, mr); r++) {
        uint8_t *group = to + (r / mr) * group_bytes;
        size_t lane = r % mr;
        // Whether this row's group is a whole one of 6 or 12 rows, which the grouped forms below
        // convert or quantize at once and transpose in registers.
        bool whole = false;
#if defined(__x86_64__)
        whole = avx2 && (mr == 6 || mr == 12) && r - lane + mr <= rows;
#endif
        if (job->mode == mode_bf16) {
            // A pair of depths (32 bits, one kernel lane) per step; zeros past the edge. A whole
            // group of 6 or 12 rows is converted row by row into the rows buffer and transposed
            // in registers when its first row comes (as the grouped int8 rows below), instead of
            // one conversion and 4-byte store per step and row: that took as long as the bf16
            // kernel itself on a 784-256-10 batch (12 % of the profile each, Zen 5, one thread).
            uint32_t *to = (uint32_t *)group + lane;
            const float *x = (const float *)job->a + (row0 + r) * job->lda;
            size_t full = r < rows ? job->k / 2 : 0;
#if defined(__x86_64__)
            if (whole && lane == 0) {
                size_t stride = round_up(2 * job->k, 64);
                for (size_t i = 0; i < mr; i++) bf16_row_avx2(x + i * job->lda, 2 * full, (uint16_t *)(row_buffer + i * stride));
                transpose_byte_rows(row_buffer, stride, mr, full, (uint32_t *)group);
            }
#endif
            if (!whole) {
                for (size_t step = 0; step < full; step++) to[step * mr] = (uint32_t)to_bf16(x[2 * step]) | (uint32_t)to_bf16(x[2 * step + 1]) << 16;
            }
            for (size_t step = full; step < job->steps; step++) {
                uint32_t lo = r < rows && 2 * step < job->k ? to_bf16(x[2 * step]) : 0;
                uint32_t hi = r < rows && 2 * step + 1 < job->k ? to_bf16(x[2 * step + 1]) : 0;
                to[step * mr] = lo | hi << 16;
            }
            continue;
        }
        // Rows of bytes already (im2col rows of quantized samples; the tests' raw sums), or a
        // group of float rows quantized together (`lp_group_rows`): a whole group of 6 or 12 of
        // four-byte steps is transposed at once when this row starts it.
        bool transposed = false, grouped = false;
        size_t row_stride = round_up(job->k, 64);
#if defined(__x86_64__)
        transposed = whole && job->mode != mode_i8 && s->a_bytes == 1;
        if (transposed && lane == 0) {
            transpose_byte_rows((const uint8_t *)job->a + (row0 + r) * job->lda, job->lda, mr, job->k / ks, (uint32_t *)group);
        }
        grouped = whole && job->mode == mode_i8 && s->kstep * s->a_bytes == 4;
        if (grouped && lane == 0) {
            for (size_t i = 0; i < mr; i++) quantize_a_row(job, row0 + r + i, row_buffer + i * row_stride, floats, &scale[r + i], &zero[r + i]);
            const uint8_t *steps = row_buffer;
            size_t stride = row_stride, full = job->k / ks;
            if (s->a_bytes == 2) {
                uint16_t *wide = (uint16_t *)(row_buffer + lp_group_rows * row_stride);
                stride = round_up(2 * job->k, 64);
                for (size_t i = 0; i < mr; i++) widen_u8(row_buffer + i * row_stride, 2 * full, wide + i * stride / 2);
                steps = (const uint8_t *)wide;
            }
            transpose_byte_rows(steps, stride, mr, full, (uint32_t *)group);
        }
#endif
        const uint8_t *q = row_buffer;
        if (r >= rows) {
            memset(row_buffer, 0, job->k);
        } else if (grouped) {
            q = row_buffer + lane * row_stride;  // quantized with its group, above
        } else if (job->mode == mode_i8) {
            quantize_a_row(job, row0 + r, row_buffer, floats, &scale[r], &zero[r]);
        } else {
            q = (const uint8_t *)job->a + (row0 + r) * job->lda;
            if (job->mode == mode_i8_bytes) {
                if (left == 0) {
                    sample++;
                    left = job->rows_per_scale;
                }
                left--;
                scale[r] = job->row_scales[sample];
                zero[r] = job->row_zeros[sample];
            }
        }
        // The row's values step by step, 32 bits (one kernel lane) per step: four u8 (VNNI
        // layout) or two u8 widened to int16 (AVX2 layout, widened in one vectorized pass into
        // the packed row itself when it is contiguous, else into `floats`, free once the row is
        // quantized); the padded tail reads zeros.
        uint32_t *to = (uint32_t *)group + lane;
        size_t full = job->k / ks;
        const uint8_t *stream = q;  // the full steps, 4 bytes a step
        if (s->a_bytes == 2 && !grouped) {
            uint16_t *wide = mr == 1 ? (uint16_t *)to : (uint16_t *)floats;
            widen_u8(q, 2 * full, wide);
            stream = (const uint8_t *)wide;
        }
        if (mr == 1) {
            if (stream != (const uint8_t *)to) memcpy(to, stream, 4 * full);
        } else if (!transposed && !grouped) {
            for (size_t step = 0; step < full; step++) memcpy(to + step * mr, stream + step * 4, 4);
        }
        for (size_t step = full; step < job->steps; step++) {
            uint32_t v = 0;
            for (size_t d = 0; d < ks; d++) {
                uint32_t x = step * ks + d < job->k ? q[step * ks + d] : 0;
                v |= x << (s->a_bytes == 1 ? 8 * d : 16 * d);
            }
            to[step * mr] = v;
        }
    }
}

/// Writes the real part (rows x cols) of a tile to C at (row0 + g, col0).
static void epilogue(const lp_job *job, const void *tilev, size_t row, size_t rows, size_t col0, size_t cols,
                     const float *scale, const int32_t *zero) {
    size_t nr = job->shape->nr;
    for (size_t r = 0; r < rows; r++) {
        if (job->mode == mode_i8_raw) {
            memcpy((int32_t *)job->c + (row + r) * job->ldc + col0, (const int32_t *)tilev + r * nr, cols * sizeof(int32_t));
            continue;
        }
        float *out = (float *)job->c + (row + r) * job->ldc + col0;
        if (job->mode == mode_bf16) {
            const float *t = (const float *)tilev + r * nr;
            for (size_t j = 0; j < cols; j++) {
                float v = t[j] + (job->bias ? job->bias[col0 + j] : 0);
                out[j] = job->relu ? (v > 0 ? v : 0) : v;
            }
        } else {
            const int32_t *t = (const int32_t *)tilev + r * nr;
            const int32_t *sums = job->sums + col0;
            const float *sw = job->scales + col0;
            float sa = scale[r];
            int32_t zp = zero[r];
            for (size_t j = 0; j < cols; j++) {
                float v = (float)(t[j] - zp * sums[j]) * (sa * sw[j]) + (job->bias ? job->bias[col0 + j] : 0);
                out[j] = job->relu ? (v > 0 ? v : 0) : v;
            }
        }
    }
}

#if defined(__x86_64__)
/// `epilogue` for the AVX-512 kernels' tiles (32 columns), 16 columns per step with masks at the
/// edge: the same operations in the same order (int32 correction, convert, multiply by the
/// two scales, add the bias, ReLU).
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void epilogue_avx512(const lp_job *job, const void *tilev, size_t row,
                                                                                 size_t rows, size_t col0, size_t cols,
                                                                                 const float *scale, const int32_t *zero) {
    const __m512 none = _mm512_setzero_ps();
    for (size_t r = 0; r < rows; r++) {
        float *out = (float *)job->c + (row + r) * job->ldc + col0;
        for (size_t j = 0; j < cols; j += 16) {
            __mmask16 mask = nn_avx512_lanes(cols - j);
            __m512 v;
            if (job->mode == mode_bf16) {
                v = _mm512_maskz_loadu_ps(mask, (const float *)tilev + r * 32 + j);
            } else {
                __m512i t = _mm512_maskz_loadu_epi32(mask, (const int32_t *)tilev + r * 32 + j);
                __m512i sums = _mm512_maskz_loadu_epi32(mask, job->sums + col0 + j);
                t = _mm512_sub_epi32(t, _mm512_mullo_epi32(_mm512_set1_epi32(zero[r]), sums));
                __m512 sw = _mm512_maskz_loadu_ps(mask, job->scales + col0 + j);
                v = _mm512_mul_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(_mm512_set1_ps(scale[r]), sw));
            }
            if (job->bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, job->bias + col0 + j));
            if (job->relu) v = _mm512_max_ps(v, none);  // NaN -> 0
            _mm512_mask_storeu_ps(out + j, mask, v);
        }
    }
}

/// `epilogue` for the AVX2 int8 kernels' tiles (16 columns), 8 columns per step with masks at
/// the edge only (AMD's vmaskmovps stores are microcoded and slow): the same operations in the
/// same order as `epilogue_avx512`.
__attribute__((target("avx2"))) static void epilogue_avx2(const lp_job *job, const void *tilev, size_t row, size_t rows,
                                                           size_t col0, size_t cols, const float *scale, const int32_t *zero) {
    const __m256 none = _mm256_setzero_ps();
    for (size_t r = 0; r < rows; r++) {
        float *out = (float *)job->c + (row + r) * job->ldc + col0;
        const int32_t *tile = (const int32_t *)tilev + r * job->shape->nr;
        for (size_t j = 0; j < cols; j += 8) {
            bool full = cols - j >= 8;
            __m256i mask = nn_avx2_lanes(cols - j);
            __m256i t = full ? _mm256_loadu_si256((const __m256i *)(tile + j)) : _mm256_maskload_epi32(tile + j, mask);
            __m256i sums = full ? _mm256_loadu_si256((const __m256i *)(job->sums + col0 + j)) : _mm256_maskload_epi32(job->sums + col0 + j, mask);
            t = _mm256_sub_epi32(t, _mm256_mullo_epi32(_mm256_set1_epi32(zero[r]), sums));
            __m256 sw = full ? _mm256_loadu_ps(job->scales + col0 + j) : _mm256_maskload_ps(job->scales + col0 + j, mask);
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(_mm256_set1_ps(scale[r]), sw));
            if (job->bias) v = _mm256_add_ps(v, full ? _mm256_loadu_ps(job->bias + col0 + j) : _mm256_maskload_ps(job->bias + col0 + j, mask));
            if (job->relu) v = _mm256_max_ps(v, none);  // NaN -> 0
            if (full) _mm256_storeu_ps(out + j, v);
            else _mm256_maskstore_ps(out + j, mask, v);
        }
    }
}
#endif

/// The epilogue for the job's kernel: AVX-512 for the shapes that say so (the AVX-512 and AMX tiles
/// of 32 columns), AVX2 for the other int8 kernels with vector code (16 columns), else the
/// portable one; never for raw int32 sums.
static void write_tile(const lp_job *job, const void *tile, size_t row, size_t rows, size_t col0, size_t cols,
                       const float *scale, const int32_t *zero) {
#if defined(__x86_64__)
    if (job->shape->avx512_epilogue && job->mode != mode_i8_raw) {
        epilogue_avx512(job, tile, row, rows, col0, cols, scale, zero);
        return;
    }
    if (job->shape->row && (job->mode == mode_i8 || job->mode == mode_i8_bytes)) {
        epilogue_avx2(job, tile, row, rows, col0, cols, scale, zero);
        return;
    }
#endif
    epilogue(job, tile, row, rows, col0, cols, scale, zero);
}

static void lp_run_unit(const lp_job *job, size_t unit, uint8_t *buffer) {
    const lp_shape *s = job->shape;
    size_t mr = s->mr, nr = s->nr;
    size_t block = unit / job->groups, group = unit % job->groups, block_rows = shape_block_rows(s);
    size_t row0 = block * block_rows;
    size_t rows = job->m - row0 < block_rows ? job->m - row0 : block_rows;
    size_t kpad = job->steps * s->kstep;
    size_t a_bytes = round_up(lp_max_block_rows * kpad * s->a_bytes, 64);
    uint8_t *row_buffer = buffer + a_bytes;
    float *scale = (float *)(row_buffer + group_rows_bytes(job->k));
    int32_t *zero = (int32_t *)(scale + lp_max_block_rows);
    float *floats = (float *)(zero + lp_max_block_rows);
    pack_a(job, row0, rows, s->rows_whole ? 1 : mr, buffer, row_buffer, floats, scale, zero);
    // Whole rows (AMX): zeros in the last group's rows past the edge, which its tiles load.
    if (s->rows_whole) memset(buffer + rows * kpad * s->a_bytes, 0, (round_up(rows, mr) - rows) * kpad * s->a_bytes);
    size_t panel0 = group * job->panels_per_group;
    size_t panel_end = panel0 + job->panels_per_group < job->panels ? panel0 + job->panels_per_group : job->panels;
    size_t panel_bytes = kpad * nr * s->b_bytes;
    _Alignas(64) int32_t tile[lp_max_mr * lp_max_nr];
    for (size_t panel = panel0; panel < panel_end; panel++) {
        const uint8_t *b = (const uint8_t *)job->packed + panel * panel_bytes;
        size_t col0 = panel * nr, cols = job->n - col0 < nr ? job->n - col0 : nr;
        lp_micro_kernel kernel = cols <= nr / 2 && s->half_kernel ? s->half_kernel : s->kernel;
        for (size_t g = 0; g < rows; g += mr) {
            size_t real = rows - g < mr ? rows - g : mr;
            kernel(job->steps, buffer + g * kpad * s->a_bytes, b, tile);
            write_tile(job, tile, row0 + g, real, col0, cols, scale + g, zero + g);
        }
    }
}

static void lp_task(const void *context, size_t first, size_t end) {
    (void)end;
    lp_job *job = (lp_job *)context;
    if (job->shape->enter) job->shape->enter();
    NN_DRAIN_UNITS(job, lp_run_unit, job->buffers + first * job->buffer_bytes);
    if (job->shape->leave) job->shape->leave();
}

// One row (m = 1): the row packed (one 32-bit lane of depths per step), then groups of up to 4
// panels through the shape's row kernel and the same epilogue as the batch; the caller takes
// the first half of the groups, the helper thread the second. Each of them packs the row into a
// buffer of its own (the same bytes), so that the helper starts when the product is posted
// instead of waiting while the caller quantizes the row (a third of a 784 x 256 int8 row on two
// threads).
enum { lp_row_panels = 4 };

// Below this many weights a row takes about a microsecond on one core, about what handing half of
// it to the helper and waiting for it back costs: twice GEMM.c's f32 threshold, as the int8
// kernels take about half the time per weight (256 x 128 on AVX2, kernel_cycles.c: 1.95 k cycles
// on one thread, 2.16 k on two; on AVX512-VNNI 0.87 k and 0.91 k).
enum { lp_row_parallel_minimum = 1 << 16 };
enum { lp_row_stack_bytes = 32 << 10 };

/// Where a thread's row buffer keeps the packed row, its scale and zero point, the quantized row
/// pack_a works from and the preprocessed row.
typedef struct {
    size_t packed, scale, quantized, floats, bytes;
} lp_row_layout;

static lp_row_layout row_layout(const lp_job *job) {
    lp_row_layout l;
    l.packed = 0;
    l.scale = round_up(job->steps * job->shape->kstep * job->shape->a_bytes, 64);
    l.quantized = l.scale + 64;
    l.floats = l.quantized + round_up(job->k, 64);
    l.bytes = l.floats + round_up(job->k * sizeof(float), 64);
    return l;
}

/// Packs the row into the buffer of the thread running groups [first, end) (the caller's when
/// `first` is 0), then multiplies it by those groups.
static void lp_row_groups(const void *context, size_t first, size_t end) {
    const lp_job *job = (const lp_job *)context;
    const lp_shape *s = job->shape;
    size_t group_panels = job->panels_per_group;
    lp_row_layout l = row_layout(job);
    uint8_t *buffer = job->buffers + (first == 0 ? 0 : l.bytes);
    float *scale = (float *)(buffer + l.scale);
    int32_t *zero = (int32_t *)(scale + 1);
    pack_a(job, 0, 1, 1, buffer + l.packed, buffer + l.quantized, (float *)(buffer + l.floats), scale, zero);
    size_t panel_elements = job->steps * s->kstep * s->nr;
    _Alignas(64) int32_t tiles[lp_row_panels * lp_max_nr];
    for (size_t group = first; group < end; group++) {
        size_t panel0 = group * group_panels;
        size_t panels = job->panels - panel0 < group_panels ? job->panels - panel0 : group_panels;
        // One panel of at most a vector's columns: the second vector's are all padding.
        bool half = panels == 1 && job->n - panel0 * s->nr <= s->nr / 2;
        s->row((int)panels, half, job->steps, (const uint32_t *)(buffer + l.packed),
               (const uint8_t *)job->packed + panel0 * panel_elements * s->b_bytes, panel_elements, tiles);
        for (size_t v = 0; v < panels; v++) {
            size_t col0 = (panel0 + v) * s->nr, cols = job->n - col0 < s->nr ? job->n - col0 : s->nr;
            write_tile(job, tiles + v * s->nr, 0, 1, col0, cols, scale, zero);
        }
    }
}

static bool lp_row(lp_job *job, int threads) {
    const lp_shape *s = job->shape;
    job->panels = (job->n + s->nr - 1) / s->nr;
    bool alone = threads < 2 || job->panels < 2 || job->n * job->k < lp_row_parallel_minimum;
    // Groups of 4 panels (one broadcast of the row for 4), or of fewer when there would not be
    // two groups to share (a 784 x 128 row on AVX512-VNNI, 4 panels: 2.73 k cycles on one
    // thread, 1.95 k on two; kernel_cycles.c).
    size_t panels_for_two = (job->panels + 1) / 2;
    job->panels_per_group = alone || panels_for_two >= lp_row_panels ? lp_row_panels : panels_for_two;
    size_t groups = (job->panels + job->panels_per_group - 1) / job->panels_per_group;
    size_t bytes = (alone ? 1 : 2) * row_layout(job).bytes;
    // Rows up to about 2,000 values use the stack (a call in a loop then never reaches malloc,
    // which took about 1 % of a batch-1 loop); the helper reads it while this call waits.
    _Alignas(64) uint8_t stack[lp_row_stack_bytes];
    job->buffers = bytes <= sizeof stack ? stack : aligned_alloc(64, bytes);
    if (!job->buffers) return false;
    if (alone || !nn_helper_run(lp_row_groups, job, (groups + 1) / 2, groups)) lp_row_groups(job, 0, groups);
    if (job->buffers != stack) free(job->buffers);
    return true;
}

static bool lp_run(lp_job *job, int threads) {
    const lp_shape *s = job->shape;
    job->steps = round_up(job->k, shape_kalign(s)) / s->kstep;
    if (job->m == 1 && s->row) return lp_row(job, threads);
    size_t block_rows = shape_block_rows(s);
    size_t blocks = (job->m + block_rows - 1) / block_rows;
    job->panels = (job->n + s->nr - 1) / s->nr;
    bool parallel = threads >= 2 && (double)job->m * (double)job->n * (double)job->k >= lp_parallel_minimum;
    job->groups = 1;
    if (parallel && blocks < 4) {
        size_t want = (4 + blocks - 1) / blocks;
        job->groups = want < job->panels ? want : job->panels;
    }
    job->panels_per_group = (job->panels + job->groups - 1) / job->groups;
    job->groups = (job->panels + job->panels_per_group - 1) / job->panels_per_group;
    job->units = blocks * job->groups;
    if (job->units < 2) parallel = false;
    size_t count = parallel ? 2 : 1;
    job->buffer_bytes = round_up(lp_max_block_rows * job->steps * s->kstep * s->a_bytes, 64) + group_rows_bytes(job->k)
        + lp_max_block_rows * (sizeof(float) + sizeof(int32_t)) + job->k * sizeof(float);
    job->buffer_bytes = round_up(job->buffer_bytes, 64);
    job->buffers = aligned_alloc(64, count * job->buffer_bytes);
    if (!job->buffers) return false;
    atomic_init(&job->next, 0);
    if (!parallel || !nn_helper_run(lp_task, job, 1, 2)) lp_task(job, 0, 1);
    free(job->buffers);
    return true;
}

bool nn_bf16_gemm(int kernel, size_t m, size_t n, size_t k, const float *a, size_t lda, const uint16_t *packed,
                  float *c, size_t ldc, const float *bias, bool relu, int threads) {
    if (m == 0 || n == 0) return true;
    lp_job job = {.shape = bf16_shape_for(kernel), .mode = mode_bf16, .m = m, .n = n, .k = k, .lda = lda, .ldc = ldc,
                  .a = a, .packed = packed, .bias = bias, .relu = relu, .c = c};
    return lp_run(&job, threads);
}

int nn_i8_activation_bits(const int8_t *b, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (b[i] < -63 || b[i] > 63) return 8;
    }
    return 7;
}

/// The shape for `kernel` with activations of `bits` bits: the byte kernel's two-step form for
/// 7 bits (the same packing), else `i8_shape_for`.
static const lp_shape *i8_shape_for_bits(int kernel, int bits) {
    const lp_shape *s = i8_shape_for(kernel);
#if defined(__x86_64__)
    if (bits == 7 && s == &i8_avx2_maddubs_shape) return &i8_avx2_maddubs7_shape;
#endif
    return s;
}

bool nn_i8_gemm(int kernel, int bits, size_t m, size_t n, size_t k, const void *a, size_t lda, const void *packed,
                const float *scales, const nn_i8_input *input, const nn_prologue *prologue, float *c, size_t ldc,
                const float *bias, bool relu, int threads) {
    if (m == 0 || n == 0) return true;
    if (k > nn_i8_max_depth || (bits != 7 && bits != 8) || (bits == 7 && input)) return false;
    const lp_shape *s = i8_shape_for_bits(kernel, bits);
    lp_job job = {.shape = s, .mode = mode_i8, .m = m, .n = n, .k = k, .lda = lda, .ldc = ldc, .a = a, .packed = packed,
                  .scales = scales, .input = input, .top = activation_top(bits), .prologue = prologue,
                  .sums = i8_column_sums(s, packed, k, n), .bias = bias, .relu = relu, .c = c};
    return lp_run(&job, threads);
}

bool nn_i8_gemm_s32(int kernel, int bits, size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed,
                    int32_t *c, size_t ldc, int threads) {
    if (m == 0 || n == 0) return true;
    if (k > nn_i8_max_depth || (bits != 7 && bits != 8)) return false;
    lp_job job = {.shape = i8_shape_for_bits(kernel, bits), .mode = mode_i8_raw, .m = m, .n = n, .k = k, .lda = lda, .ldc = ldc,
                  .a = a, .packed = packed, .c = c};
    return lp_run(&job, threads);
}

bool nn_i8_gemm_u8(int kernel, size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed,
                   const float *scales, const float *row_scales, const int32_t *row_zeros, size_t rows_per_scale, float *c, size_t ldc,
                   const float *bias, bool relu, int threads) {
    if (m == 0 || n == 0) return true;
    if (k > nn_i8_max_depth || rows_per_scale == 0) return false;
    const lp_shape *s = i8_shape_for(kernel);
    lp_job job = {.shape = s, .mode = mode_i8_bytes, .m = m, .n = n, .k = k, .lda = lda, .ldc = ldc, .a = a, .packed = packed,
                  .row_scales = row_scales, .row_zeros = row_zeros, .rows_per_scale = rows_per_scale, .scales = scales,
                  .sums = i8_column_sums(s, packed, k, n), .bias = bias, .relu = relu, .c = c};
    return lp_run(&job, threads);
}

void nn_i8_quantize_samples(int kernel, const float *x, size_t count, size_t size, const nn_i8_input *input, uint8_t *q,
                            float *scales, int32_t *zeros) {
    int lanes = quantize_lanes(i8_shape_for(kernel));
    for (size_t i = 0; i < count; i++) quantize_sample(lanes, input, x + i * size, size, q + i * size, 255, &scales[i], &zeros[i]);
}

// The im2col rows of samples quantized to bytes: each window row inside the sample one copy,
// positions in the padding the sample's zero point. Loops the compiler vectorizes, not memcpy,
// which Swift's `update(from:)` called for every stretch (a window row of 3 x 32 channels is 96
// bytes): the calls and their closure took 15 % of the PyTorch MNIST CNN's int8 time.
#define IM2COL_BYTES(NAME, ATTRIBUTES)                                                                                      \
    ATTRIBUTES static void NAME(const nn_spatial *g, const uint8_t *input, size_t count, const int32_t *zero_points,       \
                                uint8_t *out) {                                                                            \
        size_t row_values = g->kw * g->c;                                                                                  \
        for (size_t n = 0; n < count; n++) {                                                                               \
            const uint8_t *sample = input + n * g->h * g->w * g->c;                                                        \
            uint8_t zero = (uint8_t)zero_points[n];                                                                        \
            for (size_t oy = 0; oy < g->oh; oy++) {                                                                        \
                for (size_t ox = 0; ox < g->ow; ox++) {                                                                    \
                    ptrdiff_t x0 = (ptrdiff_t)(ox * g->sw) - (ptrdiff_t)g->left;                                           \
                    bool inside = x0 >= 0 && x0 + (ptrdiff_t)g->kw <= (ptrdiff_t)g->w;                                     \
                    for (size_t u = 0; u < g->kh; u++, out += row_values) {                                                \
                        ptrdiff_t iy = (ptrdiff_t)(oy * g->sh + u) - (ptrdiff_t)g->top;                                    \
                        if (iy < 0 || iy >= (ptrdiff_t)g->h) {                                                             \
                            for (size_t q = 0; q < row_values; q++) out[q] = zero;                                         \
                            continue;                                                                                      \
                        }                                                                                                  \
                        const uint8_t *line = sample + (size_t)iy * g->w * g->c;                                           \
                        if (inside) {                                                                                      \
                            const uint8_t *in = line + (size_t)x0 * g->c;                                                  \
                            for (size_t q = 0; q < row_values; q++) out[q] = in[q];                                        \
                            continue;                                                                                      \
                        }                                                                                                  \
                        for (size_t v = 0; v < g->kw; v++) {                                                               \
                            ptrdiff_t ix = x0 + (ptrdiff_t)v;                                                              \
                            bool padded = ix < 0 || ix >= (ptrdiff_t)g->w;                                                 \
                            for (size_t ch = 0; ch < g->c; ch++) out[v * g->c + ch] = padded ? zero : line[(size_t)ix * g->c + ch]; \
                        }                                                                                                  \
                    }                                                                                                      \
                }                                                                                                          \
            }                                                                                                              \
        }                                                                                                                  \
    }
#if defined(__x86_64__)
IM2COL_BYTES(im2col_bytes_avx2, __attribute__((target("avx2"), no_builtin("memcpy", "memset"))))
#endif
IM2COL_BYTES(im2col_bytes_portable, __attribute__((no_builtin("memcpy", "memset"))))

void nn_im2col_u8(const nn_spatial *g, const uint8_t *input, size_t count, const int32_t *zero_points, uint8_t *out) {
#if defined(__x86_64__)
    if (nn_cpu_features() & nn_cpu_avx2_fma) {
        im2col_bytes_avx2(g, input, count, zero_points, out);
        return;
    }
#endif
    im2col_bytes_portable(g, input, count, zero_points, out);
}

void nn_i8_quantize_row(int kernel, int bits, const float *x, size_t k, uint8_t *q, float *scale, int32_t *zero) {
    quantize_row(quantize_lanes(i8_shape_for(kernel)), x, k, q, activation_top(bits), scale, zero);
}

// ---- direct int8 convolution of one input channel ---------------------------------------------
//
// A first convolution of a small CNN (one channel, 3 x 3, 8 filters) has 9 values per window:
// as an im2col product it is one tile of mostly padding per 12 windows, and quantizing each
// window on its own costs more than the products, so the GEMM path runs it in f32. Here the
// sample is quantized once, padded with its zero point, and each output vector holds 2 pixels x 8
// filters (or 1 x 16): per window row, the 16 bytes from the vector's first pixel are broadcast
// to the four 128-bit lanes and `vpshufb` gives every 32-bit lane the four bytes of its pixel
// and window columns (no VBMI needed), which one `vpdpbusd` multiplies by the four weights of its
// filter. The output is HWC as it is computed (pixel-major, filters adjacent). AVX2 has two forms
// of its own (`conv_unit_avx2`, below): on these bytes for weights `vpmaddubsw` takes exactly, and
// on int16 pairs for any int8 weights, which the packing also holds.

enum { conv_max_kw = 8, conv_margin = 16 };

/// Filters per pixel in a vector: 8 (two pixels) or 16 (one).
static size_t conv_lanes_per_pixel(size_t filters) { return filters <= 8 ? 8 : 16; }
static size_t conv_quads(size_t kw) { return (kw + 3) / 4; }

/// The packing: per window row and quad of its columns, 16 lanes of four weight bytes (one
/// filter's four columns; with at most 8 filters, lanes 8...15 repeat 0...7); the 16 filters'
/// sums (int32); then, for AVX2's pairs form, per window row and pair of columns, 8 lanes of two
/// int16 weights (filters 0...7). Columns past the window are zero weights.
static size_t conv_pairs_offset(size_t kh, size_t kw) { return kh * conv_quads(kw) * 64 + 16 * sizeof(int32_t); }

size_t nn_i8_conv_packed_bytes(size_t kh, size_t kw, size_t filters) {
    if (kh == 0 || kw == 0 || kw > conv_max_kw || filters == 0 || filters > 16 || kh > 64) return 0;
    return conv_pairs_offset(kh, kw) + kh * 2 * conv_quads(kw) * 8 * 2 * sizeof(int16_t);
}

void nn_i8_conv_pack(const int8_t *w, size_t kh, size_t kw, size_t filters, void *packed) {
    size_t fp = conv_lanes_per_pixel(filters), quads = conv_quads(kw);
    int8_t *to = packed;
    int32_t *sums = (int32_t *)(to + kh * quads * 64);
    for (size_t u = 0; u < kh; u++) {
        for (size_t q = 0; q < quads; q++, to += 64) {
            for (size_t lane = 0; lane < 16; lane++) {
                size_t f = lane % fp;
                for (size_t d = 0; d < 4; d++) {
                    size_t v = 4 * q + d;
                    to[4 * lane + d] = f < filters && v < kw ? w[(u * kw + v) * filters + f] : 0;
                }
            }
        }
    }
    for (size_t lane = 0; lane < 16; lane++) {
        size_t f = lane % fp;
        int32_t sum = 0;
        if (f < filters) for (size_t p = 0; p < kh * kw; p++) sum += w[p * filters + f];
        sums[lane] = sum;
    }
    int16_t *pairs = (int16_t *)((uint8_t *)packed + conv_pairs_offset(kh, kw));
    for (size_t u = 0; u < kh; u++) {
        for (size_t pair = 0; pair < 2 * quads; pair++) {
            for (size_t f = 0; f < 8; f++) {
                for (size_t d = 0; d < 2; d++) {
                    size_t v = 2 * pair + d;
                    *pairs++ = f < filters && v < kw ? w[(u * kw + v) * filters + f] : 0;
                }
            }
        }
    }
}

bool nn_i8_conv_supported(int kernel, size_t filters) {
    if (kernel == nn_i8_vnni) return nn_i8_supported(nn_i8_vnni) && filters <= 16;
    if (kernel == nn_i8_avx2_maddubs || kernel == nn_i8_avx2) return nn_i8_supported(kernel) && filters <= 8;
    return false;
}

bool nn_i8_conv_maddubs_exact(const int8_t *w, size_t kh, size_t kw, size_t filters) {
    // vpmaddubsw pairs columns (2c, 2c + 1) of one window row (`nn_i8_conv_pack` puts a row's
    // columns in quads): each row is a kw x filters matrix whose pairs of rows the GEMM's check
    // takes (a column past the window is a zero weight, as a depth past k is there).
    for (size_t u = 0; u < kh; u++) {
        if (!nn_i8_maddubs_exact(w + u * kw * filters, filters, kw, filters)) return false;
    }
    return true;
}

typedef struct {
    nn_spatial g;
    size_t filters, fp, quads, padded_w, padded_h;
    const float *samples;
    const int8_t *packed;
    const int32_t *sums;
    const int16_t *pairs;  // the weights as int16 pairs (AVX2's pairs form)
    size_t pixel_bytes;    // of the padded image: 1 (u8), or 2 (u16, for the pairs form)
    const float *scales, *bias;
    const nn_i8_input *input;
    bool relu, pooled;
    bool pool_in_registers;  // a 2 x 2, stride 2 pooling of at most 8 filters, done on the sums' vectors
    nn_spatial pool;
    float *output;
    size_t units, buffer_bytes;
    uint8_t *buffers;  // per thread: the quantized sample, the padded image, the convolved sample (with a pool)
    _Atomic size_t next;
} conv_job;

#if defined(__x86_64__)
#define CONV_TARGET "avx512f,avx512bw,avx512vl,avx512vnni"

/// An output vector's sums dequantized, the bias added, ReLU.
__attribute__((target(CONV_TARGET), always_inline)) static inline __m512 conv_value(const conv_job *job, __m512i acc, __m512i correction,
                                                                                  __m512 scale, __m512 bias) {
    __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, correction)), scale), bias);
    return job->relu ? _mm512_max_ps(v, _mm512_setzero_ps()) : v;  // NaN -> 0
}

/// One output vector (the pixels from `ox` of row `oy`) stored as HWC: whole when its lanes are
/// all real, else pixel by pixel.
__attribute__((target(CONV_TARGET), always_inline)) static inline void conv_write(const conv_job *job, __m512 v, float *out, size_t oy,
                                                                                size_t ox) {
    size_t filters = job->filters, per = 16 / job->fp, ow = job->g.ow;
    float *to = out + (oy * ow + ox) * filters;
    size_t pixels = ow - ox < per ? ow - ox : per;
    if (filters == 16 || (filters == 8 && pixels == 2)) {
        _mm512_storeu_ps(to, v);
        return;
    }
    __mmask16 lanes = (__mmask16)((1u << filters) - 1);
    _mm512_mask_storeu_ps(to, lanes, v);
    if (pixels == 2) _mm512_mask_storeu_ps(to + filters, lanes, _mm512_shuffle_f32x4(v, v, 0x4E));  // pixel 1's lanes to the front
}

/// The sums of `count` (a constant: 1 or 4) consecutive output vectors of one row, the first
/// window's top-left byte at `from`: independent chains of vpdpbusd, each window row's weights
/// loaded once for all of them.
__attribute__((target(CONV_TARGET), always_inline)) static inline void conv_sums(const conv_job *job, const uint8_t *from, __m512i q0,
                                                                               __m512i q1, __m512i *acc, int count) {
    size_t per = 16 / job->fp, pw = job->padded_w;
    for (int i = 0; i < count; i++) acc[i] = _mm512_setzero_si512();
    const int8_t *w = job->packed;
    for (size_t u = 0; u < job->g.kh; u++, from += pw) {
        __m512i chunk[4];
        for (int i = 0; i < count; i++) chunk[i] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(from + (size_t)i * per)));
        __m512i w0 = _mm512_loadu_si512(w);
        for (int i = 0; i < count; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_shuffle_epi8(chunk[i], q0), w0);
        w += 64;
        if (job->quads > 1) {
            __m512i w1 = _mm512_loadu_si512(w);
            for (int i = 0; i < count; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_shuffle_epi8(chunk[i], q1), w1);
            w += 64;
        }
    }
}

/// Sample `unit` quantized on `lanes`-wide vectors (with the calibrated scale, or its own), into
/// the padded image of the unit's `buffer`: zero points around the sample (the quantized 0.0),
/// `job->pixel_bytes` a pixel. Returns the image; `convolved` gets the buffer's space for an
/// unpooled convolution.
static uint8_t *conv_image(const conv_job *job, size_t unit, uint8_t *buffer, int lanes, float *scale, int32_t *zero, float **convolved) {
    const nn_spatial *g = &job->g;
    size_t hw = g->h * g->w, pw = job->padded_w, cells = job->padded_h * pw;
    uint8_t *quantized = buffer, *image = buffer + round_up(hw, 64);
    *convolved = (float *)(image + round_up(cells * job->pixel_bytes, 64));
    quantize_sample(lanes, job->input, job->samples + unit * hw, hw, quantized, 255, scale, zero);
    if (job->pixel_bytes == 1) {
        memset(image, (int)*zero, cells);
        for (size_t iy = 0; iy < g->h; iy++) memcpy(image + (iy + g->top) * pw + g->left, quantized + iy * g->w, g->w);
    } else {
        uint16_t *wide = (uint16_t *)image;
        for (size_t i = 0; i < cells; i++) wide[i] = (uint16_t)*zero;
        for (size_t iy = 0; iy < g->h; iy++) widen_u8(quantized + iy * g->w, g->w, wide + (iy + g->top) * pw + g->left);
    }
    return image;
}

__attribute__((target(CONV_TARGET))) static void conv_unit(const conv_job *job, size_t unit, uint8_t *buffer) {
    const nn_spatial *g = &job->g;
    size_t fp = job->fp, per = 16 / fp, filters = job->filters, pw = job->padded_w;
    float scale, *convolved;
    int32_t zero;
    const uint8_t *image = conv_image(job, unit, buffer, 16, &scale, &zero, &convolved);
    float *out = job->pooled ? convolved : job->output + unit * g->oh * g->ow * filters;
    // Lane j reads bytes j / fp + 4q ... + 3 of its 16: pixel j / fp of the vector, columns 4q...4q+3.
    __m512i pattern[2];
    for (size_t q = 0; q < job->quads; q++) {
        uint8_t bytes[64];
        for (int lane = 0; lane < 16; lane++) {
            for (int d = 0; d < 4; d++) bytes[4 * lane + d] = (uint8_t)((size_t)lane / fp + 4 * q + (size_t)d);
        }
        pattern[q] = _mm512_loadu_si512(bytes);
    }
    const __m512i correction = _mm512_mullo_epi32(_mm512_set1_epi32(zero), _mm512_loadu_si512(job->sums));
    float lane_scale[16], lane_bias[16];
    for (size_t lane = 0; lane < 16; lane++) {
        size_t f = lane % fp;
        lane_scale[lane] = f < filters ? scale * job->scales[f] : 0;
        lane_bias[lane] = f < filters && job->bias ? job->bias[f] : 0;
    }
    const __m512 s = _mm512_loadu_ps(lane_scale), b = _mm512_loadu_ps(lane_bias);
    const __m512i q0 = pattern[0], q1 = job->quads > 1 ? pattern[1] : pattern[0];
    if (job->pool_in_registers) {
        // 2 x 2 max pooling, stride 2: a vector holds one window's two columns (2 pixels x 8
        // filters); the window's two rows are two vectors. Only the pooled values are written.
        const nn_spatial *pool = &job->pool;
        float *pooled = job->output + unit * pool->oh * pool->ow * filters;
        const __mmask16 lanes = (__mmask16)((1u << filters) - 1);
        for (size_t py = 0; py < pool->oh; py++) {
            const uint8_t *top = image + 2 * py * pw, *bottom = top + pw;
            size_t px = 0;
            __m512i upper[4], lower[4];
            for (; px + 4 <= pool->ow; px += 4) {
                conv_sums(job, top + 2 * px, q0, q1, upper, 4);
                conv_sums(job, bottom + 2 * px, q0, q1, lower, 4);
                UNROLL for (int i = 0; i < 4; i++) {
                    __m512 m = _mm512_max_ps(conv_value(job, upper[i], correction, s, b), conv_value(job, lower[i], correction, s, b));
                    m = _mm512_max_ps(m, _mm512_shuffle_f32x4(m, m, 0x4E));
                    _mm512_mask_storeu_ps(pooled + (py * pool->ow + px + (size_t)i) * filters, lanes, m);
                }
            }
            for (; px < pool->ow; px++) {
                conv_sums(job, top + 2 * px, q0, q1, upper, 1);
                conv_sums(job, bottom + 2 * px, q0, q1, lower, 1);
                __m512 m = _mm512_max_ps(conv_value(job, upper[0], correction, s, b), conv_value(job, lower[0], correction, s, b));
                m = _mm512_max_ps(m, _mm512_shuffle_f32x4(m, m, 0x4E));
                _mm512_mask_storeu_ps(pooled + (py * pool->ow + px) * filters, lanes, m);
            }
        }
        return;
    }
    size_t vectors = (g->ow + per - 1) / per;
    for (size_t oy = 0; oy < g->oh; oy++) {
        const uint8_t *base = image + oy * pw;
        size_t v = 0;
        __m512i acc[4];
        for (; v + 4 <= vectors; v += 4) {
            conv_sums(job, base + v * per, q0, q1, acc, 4);
            UNROLL for (int i = 0; i < 4; i++) conv_write(job, conv_value(job, acc[i], correction, s, b), out, oy, (v + (size_t)i) * per);
        }
        for (; v < vectors; v++) {
            conv_sums(job, base + v * per, q0, q1, acc, 1);
            conv_write(job, conv_value(job, acc[0], correction, s, b), out, oy, v * per);
        }
    }
    if (job->pooled) nn_max_pool_sample(&job->pool, convolved, job->output + unit * job->pool.oh * job->pool.ow * job->pool.c);
}

static void conv_task(const void *context, size_t first, size_t end) {
    (void)end;
    conv_job *job = (conv_job *)context;
    NN_DRAIN_UNITS(job, conv_unit, job->buffers + first * job->buffer_bytes);
}

// AVX2, one pixel x 8 filters a vector, four pixels at a time for independent chains, in two
// forms. On bytes (`nn_i8_avx2_maddubs`, for weights `nn_i8_conv_maddubs_exact` accepts): per
// window row and quad of its columns, the pixel's four bytes are broadcast to every lane
// (vpbroadcastd) and vpmaddubsw multiplies them by each filter's four weights (the first 8 lanes
// of the packing above, whose filters repeat every 8 lanes), then vpmaddwd by ones and vpaddd.
// On int16 pairs (`nn_i8_avx2`, any int8 weights, exact as vpmaddwd's pair sums fit in int32):
// the image is widened to u16 once per sample, and per window row and pair of its columns the
// pixel's two values are broadcast and vpmaddwd multiplies them by the pair's int16 weights,
// then vpaddd; the same number of multiplies for a 3-wide window (two pairs against one quad).
#define CONV_AVX2 "avx2,fma"

/// The sums of `count` (a constant: 1, 2 or 4) consecutive pixels of one output row, the first
/// window's top-left pixel at index `at` of the padded `image`; `pairs` (a constant) picks the form.
__attribute__((target(CONV_AVX2), always_inline)) static inline void conv_sums_avx2(const conv_job *job, const uint8_t *image, size_t at,
                                                                                  __m256i *acc, int count, bool pairs) {
    const __m256i ones = _mm256_set1_epi16(1);
    size_t pw = job->padded_w;
    for (int i = 0; i < count; i++) acc[i] = _mm256_setzero_si256();
    if (pairs) {
        const uint16_t *from = (const uint16_t *)image + at;
        const int16_t *w = job->pairs;
        size_t used = (job->g.kw + 1) / 2, row_pairs = 2 * job->quads;
        for (size_t u = 0; u < job->g.kh; u++, from += pw, w += row_pairs * 16) {
            for (size_t p = 0; p < used; p++) {
                __m256i weights = _mm256_loadu_si256((const __m256i *)(w + 16 * p));
                for (int i = 0; i < count; i++) {
                    int32_t two;
                    memcpy(&two, from + (size_t)i + 2 * p, sizeof two);
                    acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_set1_epi32(two), weights));
                }
            }
        }
        return;
    }
    const uint8_t *from = image + at;
    const int8_t *w = job->packed;
    for (size_t u = 0; u < job->g.kh; u++, from += pw) {
        for (size_t q = 0; q < job->quads; q++, w += 64) {
            __m256i weights = _mm256_loadu_si256((const __m256i *)w);
            for (int i = 0; i < count; i++) {
                int32_t bytes;
                memcpy(&bytes, from + (size_t)i + 4 * q, sizeof bytes);
                __m256i x = _mm256_set1_epi32(bytes);
                acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(x, weights), ones));
            }
        }
    }
}

__attribute__((target(CONV_AVX2), always_inline)) static inline __m256 conv_value_avx2(const conv_job *job, __m256i acc, __m256i correction,
                                                                                     __m256 scale, __m256 bias) {
    __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc, correction)), scale), bias);
    return job->relu ? _mm256_max_ps(v, _mm256_setzero_ps()) : v;  // NaN -> 0
}

/// One pixel's `filters` (at most 8) values stored.
__attribute__((target(CONV_AVX2), always_inline)) static inline void conv_store_avx2(float *to, __m256 v, size_t filters) {
    if (filters == 8) {
        _mm256_storeu_ps(to, v);
        return;
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    memcpy(to, lanes, filters * sizeof(float));
}

__attribute__((target(CONV_AVX2), always_inline)) static inline void conv_unit_avx2(const conv_job *job, size_t unit, uint8_t *buffer,
                                                                                 bool pairs) {
    const nn_spatial *g = &job->g;
    size_t filters = job->filters, pw = job->padded_w;
    float scale, *convolved;
    int32_t zero;
    const uint8_t *image = conv_image(job, unit, buffer, 8, &scale, &zero, &convolved);
    float *out = job->pooled ? convolved : job->output + unit * g->oh * g->ow * filters;
    const __m256i correction = _mm256_mullo_epi32(_mm256_set1_epi32(zero), _mm256_loadu_si256((const __m256i *)job->sums));
    float lane_scale[8], lane_bias[8];
    for (size_t f = 0; f < 8; f++) {
        lane_scale[f] = f < filters ? scale * job->scales[f] : 0;
        lane_bias[f] = f < filters && job->bias ? job->bias[f] : 0;
    }
    const __m256 s = _mm256_loadu_ps(lane_scale), b = _mm256_loadu_ps(lane_bias);
    __m256i top[4], bottom[4];
    if (job->pool_in_registers) {
        // 2 x 2 max pooling, stride 2: the window's four pixels are four vectors; only the pooled
        // values are written. Two pooled pixels at a time (four sums of each row).
        const nn_spatial *pool = &job->pool;
        float *pooled = job->output + unit * pool->oh * pool->ow * filters;
        for (size_t py = 0; py < pool->oh; py++) {
            size_t upper = 2 * py * pw, lower = upper + pw;
            for (size_t px = 0; px < pool->ow; px += 2) {
                // Constant counts, so that each call's loops over the pixels unroll.
                int count = px + 2 <= pool->ow ? 4 : 2;
                if (count == 4) {
                    conv_sums_avx2(job, image, upper + 2 * px, top, 4, pairs);
                    conv_sums_avx2(job, image, lower + 2 * px, bottom, 4, pairs);
                } else {
                    conv_sums_avx2(job, image, upper + 2 * px, top, 2, pairs);
                    conv_sums_avx2(job, image, lower + 2 * px, bottom, 2, pairs);
                }
                for (int i = 0; i < count; i += 2) {
                    __m256 m = _mm256_max_ps(_mm256_max_ps(conv_value_avx2(job, top[i], correction, s, b),
                                                           conv_value_avx2(job, top[i + 1], correction, s, b)),
                                             _mm256_max_ps(conv_value_avx2(job, bottom[i], correction, s, b),
                                                           conv_value_avx2(job, bottom[i + 1], correction, s, b)));
                    conv_store_avx2(pooled + (py * pool->ow + px + (size_t)i / 2) * filters, m, filters);
                }
            }
        }
        return;
    }
    for (size_t oy = 0; oy < g->oh; oy++) {
        size_t row = oy * pw, ox = 0;
        for (; ox + 4 <= g->ow; ox += 4) {
            conv_sums_avx2(job, image, row + ox, top, 4, pairs);
            UNROLL for (int i = 0; i < 4; i++) {
                conv_store_avx2(out + (oy * g->ow + ox + (size_t)i) * filters, conv_value_avx2(job, top[i], correction, s, b), filters);
            }
        }
        for (; ox < g->ow; ox++) {
            conv_sums_avx2(job, image, row + ox, top, 1, pairs);
            conv_store_avx2(out + (oy * g->ow + ox) * filters, conv_value_avx2(job, top[0], correction, s, b), filters);
        }
    }
    if (job->pooled) nn_max_pool_sample(&job->pool, convolved, job->output + unit * job->pool.oh * job->pool.ow * job->pool.c);
}

__attribute__((target(CONV_AVX2))) static void conv_unit_avx2_bytes(const conv_job *job, size_t unit, uint8_t *buffer) {
    conv_unit_avx2(job, unit, buffer, false);
}
__attribute__((target(CONV_AVX2))) static void conv_unit_avx2_pairs(const conv_job *job, size_t unit, uint8_t *buffer) {
    conv_unit_avx2(job, unit, buffer, true);
}
static void conv_task_avx2(const void *context, size_t first, size_t end) {
    (void)end;
    conv_job *job = (conv_job *)context;
    // The pairs form reads the sample widened to u16, the byte form as bytes.
    void (*unit)(const conv_job *, size_t, uint8_t *) = job->pixel_bytes == 2 ? conv_unit_avx2_pairs : conv_unit_avx2_bytes;
    NN_DRAIN_UNITS(job, unit, job->buffers + first * job->buffer_bytes);
}
#endif

bool nn_i8_conv(int kernel, size_t count, const nn_spatial *g, const float *samples, const void *packed, size_t filters,
                const float *scales, const nn_i8_input *input, const float *bias, bool relu, const nn_spatial *pool,
                float *output, int threads) {
#if defined(__x86_64__)
    if (!nn_i8_conv_supported(kernel, filters) || count == 0 || g->c != 1 || g->sh != 1 || g->sw != 1) return false;
    if (nn_i8_conv_packed_bytes(g->kh, g->kw, filters) == 0) return false;
    if (pool && (pool->h != g->oh || pool->w != g->ow || pool->c != filters)) return false;
    conv_job job = {.g = *g, .filters = filters, .fp = conv_lanes_per_pixel(filters), .quads = conv_quads(g->kw),
                    .samples = samples, .packed = packed, .scales = scales, .bias = bias, .input = input, .relu = relu,
                    .pooled = pool != NULL, .output = output, .units = count};
    job.sums = (const int32_t *)(job.packed + g->kh * job.quads * 64);
    job.pairs = (const int16_t *)(job.packed + conv_pairs_offset(g->kh, g->kw));
    job.pixel_bytes = kernel == nn_i8_avx2 ? 2 : 1;
    if (pool) job.pool = *pool;
    job.pool_in_registers = pool && job.fp == 8 && pool->kh == 2 && pool->kw == 2 && pool->sh == 2 && pool->sw == 2 &&
                            pool->top == 0 && pool->left == 0 && 2 * pool->oh <= g->oh && 2 * pool->ow <= g->ow;
    // The padded image holds every row and column a window reads: the output's extent plus the
    // window, and a margin for the 16-byte loads; at least the sample itself with its padding.
    size_t rows = g->oh + g->kh - 1, cols = g->ow + g->kw - 1;
    if (rows < g->h + g->top) rows = g->h + g->top;
    if (cols < g->w + g->left) cols = g->w + g->left;
    job.padded_h = rows;
    job.padded_w = cols + conv_margin;
    job.buffer_bytes = round_up(g->h * g->w, 64) + round_up(job.padded_h * job.padded_w * job.pixel_bytes, 64)
        + (pool && !job.pool_in_registers ? round_up(g->oh * g->ow * filters * sizeof(float), 64) : 0);
    double work = (double)count * (double)(g->oh * g->ow) * (double)(g->kh * job.quads * 16);
    bool parallel = threads >= 2 && count >= 2 && work >= lp_parallel_minimum;
    size_t copies = parallel ? 2 : 1;
    job.buffers = aligned_alloc(64, copies * job.buffer_bytes);
    if (!job.buffers) return false;
    atomic_init(&job.next, 0);
    void (*task)(const void *, size_t, size_t) = kernel == nn_i8_vnni ? conv_task : conv_task_avx2;
    if (!parallel || !nn_helper_run(task, &job, 1, 2)) task(&job, 0, 1);
    free(job.buffers);
    return true;
#else
    (void)kernel, (void)count, (void)g, (void)samples, (void)packed, (void)filters, (void)scales, (void)input, (void)bias, (void)relu,
        (void)pool, (void)output, (void)threads;
    return false;
#endif
}
