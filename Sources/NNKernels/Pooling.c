#include "Pooling.h"

#include "CPUFeatures.h"
#include "Helper.h"

// Max pooling of f32 HWC samples for inference, vectorized over the channels (a 2x2 pool over 8
// channels is 4 vector maxima per output cell instead of 32 scalar ones), the samples shared
// with the helper thread. The same windows and the same order as the engine's Swift version
// (SpatialKernels.maxPool): each window clipped to the input, its first cell taken as it is, then
// every other cell in row-major order through v > best ? v : best. That is what max_ps computes
// (it returns its second operand, best, for NaN and for equal zeros), so a NaN in a window's
// first cell stays the result.

typedef struct {
    const float *input;
    float *output;
    nn_spatial g;
} pool_job;

/// The clipped window of output cell (oy, ox): its first input cell, rows and columns.
static inline const float *window(const pool_job *job, const float *sample, size_t oy, size_t ox, size_t *rows, size_t *columns) {
    ptrdiff_t y0 = (ptrdiff_t)(oy * job->g.sh) - (ptrdiff_t)job->g.top, x0 = (ptrdiff_t)(ox * job->g.sw) - (ptrdiff_t)job->g.left;
    ptrdiff_t y1 = y0 + (ptrdiff_t)job->g.kh, x1 = x0 + (ptrdiff_t)job->g.kw;
    size_t r0 = y0 < 0 ? 0 : (size_t)y0, c0 = x0 < 0 ? 0 : (size_t)x0;
    *rows = ((size_t)y1 < job->g.h ? (size_t)y1 : job->g.h) - r0;
    *columns = ((size_t)x1 < job->g.w ? (size_t)x1 : job->g.w) - c0;
    return sample + (r0 * job->g.w + c0) * job->g.c;
}

/// Channels [from, c) of one window.
static void pool_plain(const float *first, size_t rows, size_t columns, size_t w, size_t c, size_t from, float *best) {
    for (size_t k = from; k < c; k++) best[k] = first[k];
    for (size_t y = 0; y < rows; y++) {
        for (size_t x = 0; x < columns; x++) {
            if (y == 0 && x == 0) continue;
            const float *cell = first + (y * w + x) * c;
            for (size_t k = from; k < c; k++) best[k] = cell[k] > best[k] ? cell[k] : best[k];
        }
    }
}

static void pool_sample_plain(const pool_job *job, const float *sample, float *out) {
    for (size_t oy = 0; oy < job->g.oh; oy++) {
        for (size_t ox = 0; ox < job->g.ow; ox++, out += job->g.c) {
            size_t rows, columns;
            const float *cell = window(job, sample, oy, ox, &rows, &columns);
            pool_plain(cell, rows, columns, job->g.w, job->g.c, 0, out);
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2"))) static void pool_sample_avx2(const pool_job *job, const float *sample, float *out) {
    size_t w = job->g.w, c = job->g.c;
    for (size_t oy = 0; oy < job->g.oh; oy++) {
        for (size_t ox = 0; ox < job->g.ow; ox++, out += c) {
            size_t rows, columns;
            const float *cell = window(job, sample, oy, ox, &rows, &columns);
            size_t k = 0;
            if (rows == 2 && columns == 2) {
                // The common 2x2 window inside the input, unrolled: the same cells in the same order.
                for (; k + 8 <= c; k += 8) {
                    __m256 m = _mm256_loadu_ps(cell + k);
                    m = _mm256_max_ps(_mm256_loadu_ps(cell + c + k), m);
                    m = _mm256_max_ps(_mm256_loadu_ps(cell + w * c + k), m);
                    m = _mm256_max_ps(_mm256_loadu_ps(cell + (w + 1) * c + k), m);
                    _mm256_storeu_ps(out + k, m);
                }
            }
            for (; k + 8 <= c; k += 8) {
                __m256 m = _mm256_loadu_ps(cell + k);
                for (size_t y = 0; y < rows; y++) {
                    for (size_t x = 0; x < columns; x++) {
                        if (y == 0 && x == 0) continue;
                        m = _mm256_max_ps(_mm256_loadu_ps(cell + (y * w + x) * c + k), m);
                    }
                }
                _mm256_storeu_ps(out + k, m);
            }
            if (k < c) pool_plain(cell, rows, columns, w, c, k, out);
        }
    }
}
#endif

/// One sample on the widest code for its channels: vectors of 8 from 8 channels with AVX2.
static void pool_sample(const pool_job *job, const float *sample, float *out) {
#if defined(__x86_64__)
    if ((nn_cpu_features() & nn_cpu_avx2_fma) && job->g.c >= 8) {
        pool_sample_avx2(job, sample, out);
        return;
    }
#endif
    pool_sample_plain(job, sample, out);
}

static void pool_samples(const void *context, size_t first, size_t end) {
    const pool_job *job = context;
    size_t in = job->g.h * job->g.w * job->g.c, out = job->g.oh * job->g.ow * job->g.c;
    for (size_t n = first; n < end; n++) pool_sample(job, job->input + n * in, job->output + n * out);
}

void nn_max_pool_sample(const nn_spatial *g, const float *sample, float *output) {
    pool_job job = {.input = sample, .output = output, .g = *g};
    pool_sample(&job, sample, output);
}

void nn_max_pool(const float *input, size_t count, const nn_spatial *g, float *output, int threads) {
    pool_job job = {.input = input, .output = output, .g = *g};
    nn_task task = pool_samples;
    // Worth the helper from a few hundred thousand values read.
    bool alone = threads < 2 || count < 2 || (double)count * (double)(g->h * g->w * g->c) < 1 << 18;
    if (alone || !nn_helper_run(task, &job, count / 2, count)) task(&job, 0, count);
}
