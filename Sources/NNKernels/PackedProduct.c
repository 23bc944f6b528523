#include "NNKernels.h"

#include <string.h>

#include "CPUFeatures.h"
#include "Helper.h"

enum { panel_width = 32 };

// Below this many weights a product takes well under a microsecond on one core, about what
// handing half of it to the helper and waiting for it back costs.
enum { parallel_minimum = 1 << 15 };

static size_t padded_outputs(size_t outputs) { return (outputs + 7) / 8 * 8; }

size_t nn_packed_size(size_t inputs, size_t outputs) { return inputs * padded_outputs(outputs); }

void nn_pack_weights(const float *weights, size_t inputs, size_t outputs, float *packed) {
    size_t padded = padded_outputs(outputs);
    float *to = packed;
    for (size_t first = 0; first < padded; first += panel_width) {
        size_t width = padded - first < panel_width ? padded - first : panel_width;
        for (size_t i = 0; i < inputs; i++) {
            const float *row = weights + i * outputs;
            for (size_t j = 0; j < width; j++) *to++ = first + j < outputs ? row[first + j] : 0.0f;
        }
    }
}

// One panel of `width` (8, 16, 24 or 32) columns: y[0 ..< width] = x P (+ bias, then ReLU when
// asked), where row i of the panel starts at p + i * stride (stride = width when packed). Two
// inputs per step into separate accumulators, so consecutive FMAs do not wait on each other.
// Bias and ReLU are applied in registers, by the thread that computed the sums: the next layer
// then reads each half from the core that wrote it, once.
#if defined(__x86_64__)
#include <immintrin.h>

#define NN_PANEL_KERNEL(W)                                                                       \
    __attribute__((target("avx2,fma")))                                                          \
    static void panel##W##_avx2(const float *p, size_t stride, size_t inputs, const float *x,    \
                                const float *bias, bool relu, float *y) {                        \
        __m256 even[W / 8], odd[W / 8];                                                          \
        for (int j = 0; j < W / 8; j++) even[j] = odd[j] = _mm256_setzero_ps();                  \
        size_t i = 0;                                                                            \
        for (; i + 1 < inputs; i += 2, p += 2 * stride) {                                        \
            __m256 a = _mm256_broadcast_ss(x + i), b = _mm256_broadcast_ss(x + i + 1);           \
            for (int j = 0; j < W / 8; j++) {                                                    \
                even[j] = _mm256_fmadd_ps(a, _mm256_loadu_ps(p + 8 * j), even[j]);               \
                odd[j] = _mm256_fmadd_ps(b, _mm256_loadu_ps(p + stride + 8 * j), odd[j]);        \
            }                                                                                    \
        }                                                                                        \
        if (i < inputs) {                                                                        \
            __m256 a = _mm256_broadcast_ss(x + i);                                               \
            for (int j = 0; j < W / 8; j++) even[j] = _mm256_fmadd_ps(a, _mm256_loadu_ps(p + 8 * j), even[j]); \
        }                                                                                        \
        for (int j = 0; j < W / 8; j++) {                                                        \
            __m256 v = _mm256_add_ps(even[j], odd[j]);                                           \
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + 8 * j));                       \
            /* max(v, 0) returns the second operand for NaN, so NaN becomes 0 as in ReLU */      \
            if (relu) v = _mm256_max_ps(v, _mm256_setzero_ps());                                 \
            _mm256_storeu_ps(y + 8 * j, v);                                                      \
        }                                                                                        \
    }
NN_PANEL_KERNEL(8)
NN_PANEL_KERNEL(16)
NN_PANEL_KERNEL(24)
NN_PANEL_KERNEL(32)

#endif

static void panel_plain(const float *p, size_t stride, size_t width, size_t inputs, const float *x,
                        const float *bias, bool relu, float *y) {
    float sum[panel_width] = {0};
    for (size_t i = 0; i < inputs; i++, p += stride) {
        float xi = x[i];
        for (size_t j = 0; j < width; j++) sum[j] += xi * p[j];
    }
    for (size_t j = 0; j < width; j++) {
        float v = bias ? sum[j] + bias[j] : sum[j];
        y[j] = relu ? (v > 0 ? v : 0) : v;
    }
}

bool nn_packed_vector_kernels(void) { return nn_cpu_features() & nn_cpu_avx2_fma; }

static void panel(const float *p, size_t stride, size_t width, size_t inputs, const float *x,
                  const float *bias, bool relu, float *y) {
#if defined(__x86_64__)
    if (nn_packed_vector_kernels()) {
        switch (width) {
        case 32: panel32_avx2(p, stride, inputs, x, bias, relu, y); return;
        case 24: panel24_avx2(p, stride, inputs, x, bias, relu, y); return;
        case 16: panel16_avx2(p, stride, inputs, x, bias, relu, y); return;
        case 8: panel8_avx2(p, stride, inputs, x, bias, relu, y); return;
        }
    }
#endif
    panel_plain(p, stride, width, inputs, x, bias, relu, y);
}

void nn_product_panels(const nn_product *job, size_t first_panel, size_t end_panel) {
    size_t padded = padded_outputs(job->outputs);
    for (size_t index = first_panel; index < end_panel; index++) {
        size_t first = index * panel_width;
        size_t width = padded - first < panel_width ? padded - first : panel_width;
        const float *p = job->packed + first * job->inputs;
        const float *bias = job->bias ? job->bias + first : NULL;
        if (first + width <= job->outputs) {
            panel(p, width, width, job->inputs, job->x, bias, job->relu, job->y + first);
        } else {
            // The zero-padded columns of the last panel must not land in y, nor read the bias.
            size_t real = job->outputs - first;
            float tail[panel_width];
            panel(p, width, width, job->inputs, job->x, NULL, false, tail);
            for (size_t j = 0; j < real; j++) {
                float v = bias ? tail[j] + bias[j] : tail[j];
                job->y[first + j] = job->relu ? (v > 0 ? v : 0) : v;
            }
        }
    }
}

static void product_task(const void *context, size_t first, size_t end) {
    nn_product_panels((const nn_product *)context, first, end);
}

void nn_packed_product(const float *packed, size_t inputs, size_t outputs, const float *bias, bool relu,
                       const float *x, float *y, int threads) {
    nn_product job = {packed, inputs, outputs, bias, relu, x, y};
    size_t panels = (padded_outputs(outputs) + panel_width - 1) / panel_width;
    bool alone = threads < 2 || panels < 2 || inputs * outputs < parallel_minimum;
    if (alone || !nn_helper_run(product_task, &job, (panels + 1) / 2, panels)) {
        nn_product_panels(&job, 0, panels);
    }
}

// Rows of the stored W, two at a time: y[0 ..< width] += x[i] W[i, :] + x[i + 1] W[i + 1, :].
// W is read front to back within each row; y (at most `row_chunk` values) stays in L1.
#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void accumulate_rows_avx2(const float *w, size_t stride, size_t inputs, size_t width, const float *x, float *y) {
    size_t vectors = width / 8 * 8, i = 0;
    for (; i + 1 < inputs; i += 2) {
        const float *r0 = w + i * stride, *r1 = r0 + stride;
        __m256 a = _mm256_broadcast_ss(x + i), b = _mm256_broadcast_ss(x + i + 1);
        for (size_t j = 0; j < vectors; j += 8) {
            __m256 v = _mm256_fmadd_ps(a, _mm256_loadu_ps(r0 + j), _mm256_loadu_ps(y + j));
            _mm256_storeu_ps(y + j, _mm256_fmadd_ps(b, _mm256_loadu_ps(r1 + j), v));
        }
        for (size_t j = vectors; j < width; j++) y[j] += x[i] * r0[j] + x[i + 1] * r1[j];
    }
    if (i < inputs) {
        const float *r0 = w + i * stride;
        for (size_t j = 0; j < width; j++) y[j] += x[i] * r0[j];
    }
}
#endif

static void accumulate_rows(const float *w, size_t stride, size_t inputs, size_t width, const float *x, float *y) {
#if defined(__x86_64__)
    if (nn_packed_vector_kernels()) {
        accumulate_rows_avx2(w, stride, inputs, width, x, y);
        return;
    }
#endif
    for (size_t i = 0; i < inputs; i++) {
        const float *r = w + i * stride;
        for (size_t j = 0; j < width; j++) y[j] += x[i] * r[j];
    }
}

enum { row_chunk = 1024 };

void nn_row_product(const float *weights, size_t inputs, size_t outputs, const float *bias, bool relu,
                    const float *x, float *y) {
    // Columns in chunks that fit in L1, each chunk a pass down the rows.
    for (size_t first = 0; first < outputs; first += row_chunk) {
        size_t width = outputs - first < row_chunk ? outputs - first : row_chunk;
        float *out = y + first;
        memset(out, 0, width * sizeof(float));
        accumulate_rows(weights + first, outputs, inputs, width, x, out);
        for (size_t j = 0; j < width; j++) {
            float v = bias ? out[j] + bias[first + j] : out[j];
            out[j] = relu ? (v > 0 ? v : 0) : v;
        }
    }
}
