/*
 * The one re-layout the CPU fast paths need: swapping the two middle axes of a row-major [outer, a, b, inner]
 * tensor. Moving a mode to the end of the working tensor of a sequential contraction, interleaving rows and
 * columns while rebuilding W, and NCHW <-> pixel-major staging are all this operation with different extents.
 */
#include <string.h>

#include "cpu/cpu_internal.h"

/* Square tiles keep both the reads and the writes of a transpose within a few cache lines. */
#define TILE 16

// ---- inner == 1: blocked transpose of each [a, b] matrix ------------------------------------------------------

static void transpose_tiled(float *dst, const float *src, int64_t a, int64_t b) {
    if (a == 1 || b == 1) {
        memcpy(dst, src, (size_t)(a * b) * sizeof(float));
        return;
    }
    /* Few rows: one pass down the columns, reading `a` streams at once. */
    if (a <= 8) {
        for (int64_t j = 0; j < b; ++j)
            for (int64_t i = 0; i < a; ++i) dst[j * a + i] = src[i * b + j];
        return;
    }
    for (int64_t i0 = 0; i0 < a; i0 += TILE) {
        const int64_t i1 = i0 + TILE < a ? i0 + TILE : a;
        for (int64_t j0 = 0; j0 < b; j0 += TILE) {
            const int64_t j1 = j0 + TILE < b ? j0 + TILE : b;
            for (int64_t j = j0; j < j1; ++j)
                for (int64_t i = i0; i < i1; ++i) dst[j * a + i] = src[i * b + j];
        }
    }
}

/* Copies the [a, b] runs of `run` floats of one outer block s into d transposed. */
#define SWAP_RUNS(run)                                                                                             \
    for (int64_t i = 0; i < a; ++i)                                                                                \
        for (int64_t j = 0; j < b; ++j)                                                                            \
    memcpy(d + (j * a + i) * (run), s + (i * b + j) * (run), (size_t)(run) * sizeof(float))

// ---------------------------------------------------------------------------------------------------------------
// entry points
// ---------------------------------------------------------------------------------------------------------------

void ttl_swap_middle(float *dst, const float *src, int64_t outer, int64_t a, int64_t b, int64_t inner) {
    const int64_t block = a * b * inner;
    if (a == 1 || b == 1) {
        memcpy(dst, src, (size_t)(outer * block) * sizeof(float));
        return;
    }
    for (int64_t o = 0; o < outer; ++o) {
        const float *s = src + o * block;
        float *d = dst + o * block;
        if (inner == 1) {
            transpose_tiled(d, s, a, b);
            continue;
        }
        switch (inner) { /* short runs: fixed-size copies the compiler inlines */
        case 2: SWAP_RUNS(2); break;
        case 3: SWAP_RUNS(3); break;
        case 4: SWAP_RUNS(4); break;
        case 8: SWAP_RUNS(8); break;
        case 16: SWAP_RUNS(16); break;
        default: SWAP_RUNS(inner); break;
        }
    }
}

void ttl_add_bias_rows(float *y, const float *bias, int64_t rows, int64_t n) {
    if (bias == NULL) return;
    for (int64_t r = 0; r < rows; ++r) {
        float *row = y + r * n;
        for (int64_t i = 0; i < n; ++i) row[i] += bias[i];
    }
}
