#include "Prologue.h"

#include "CPUFeatures.h"

// The preprocessing of a row as the products' prologue: z-score (x - mean[j]) / divisor[j], or
// x * factor then + offset. Division and the separate multiply and add are correctly rounded at
// any vector width, so each version gives the values of the engine's Swift loop; contraction
// into a fused multiply-add (which rounds once) is turned off.

#define PREPROCESS_ROW(NAME, ATTRIBUTES)                                                                \
    ATTRIBUTES static void NAME(const nn_prologue *p, const float *x, size_t k, float *out) { \
        _Pragma("clang fp contract(off)")                                                              \
        if (p->mean) {                                                                                  \
            for (size_t j = 0; j < k; j++) out[j] = (x[j] - p->mean[j]) / p->divisor[j];              \
        } else if (p->offset != 0) {                                                                    \
            for (size_t j = 0; j < k; j++) out[j] = x[j] * p->factor + p->offset;                       \
        } else {                                                                                        \
            for (size_t j = 0; j < k; j++) out[j] = x[j] * p->factor;                                   \
        }                                                                                               \
    }

#if defined(__x86_64__)
PREPROCESS_ROW(preprocess_avx512, __attribute__((target("avx512f,avx512vl,avx2,fma"))))
PREPROCESS_ROW(preprocess_avx2, __attribute__((target("avx2,fma"))))
#endif
PREPROCESS_ROW(preprocess_portable, )

static void preprocess_floats(const nn_prologue *prologue, const float *x, size_t k, float *out) {
#if defined(__x86_64__)
    unsigned features = nn_cpu_features();
    if (features & nn_cpu_avx512) {
        preprocess_avx512(prologue, x, k, out);
        return;
    }
    if (features & nn_cpu_avx2_fma) {
        preprocess_avx2(prologue, x, k, out);
        return;
    }
#endif
    preprocess_portable(prologue, x, k, out);
}

void nn_preprocess_rows(const nn_prologue *prologue, const float *x, size_t rows, size_t k, float *out) {
    for (size_t r = 0; r < rows; r++) preprocess_floats(prologue, x + r * k, k, out + r * k);
}

void nn_preprocess_row(const nn_prologue *prologue, const void *row, size_t k, float *out) {
    if (!prologue->bytes) {
        preprocess_floats(prologue, row, k, out);
        return;
    }
    // Bytes: widened a chunk at a time into a buffer of our own, then preprocessed from it (in
    // place, x and out would alias, and the vector loops would fall back to scalar code).
    enum { chunk = 256 };
    _Alignas(64) float widened[chunk];
    nn_prologue part = *prologue;
    const uint8_t *bytes = row;
    for (size_t done = 0; done < k; done += chunk) {
        size_t n = k - done < chunk ? k - done : chunk;
        nn_widen_u8(bytes + done, n, prologue->byte_scale, widened);
        if (prologue->mean) {
            part.mean = prologue->mean + done;
            part.divisor = prologue->divisor + done;
        }
        preprocess_floats(&part, widened, n, out + done);
    }
}
