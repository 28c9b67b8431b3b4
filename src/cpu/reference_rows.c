/*
 * Row builder of the CPU reference: rows of a TT-matrix (left rank r_0 >= 1) in double, one at a time, left to
 * right over the cores, reusing the partial products of the leading cores whose row digit did not change.
 * See reference_rows.h for the formula and the memory bound.
 */
#include "cpu/reference_rows.h"

#include <stdlib.h>
#include <string.h>

#include "common/check.h"

// ---------------------------------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t ttl_ref_rows_init(ttl_ref_rows_t *rows, const ttl_fc_desc_t *desc, const float *cores) {
    ttl_ref_rows_t r;
    memset(&r, 0, sizeof(r));
    r.desc = desc;
    const int32_t d = desc->num_cores;
    int64_t offset = 0, total = 0, cols = desc->ranks[0];
    for (int32_t k = 0; k < d; ++k) {
        r.core[k] = cores + offset;
        offset += desc->ranks[k] * desc->out_modes[k] * desc->in_modes[k] * desc->ranks[k + 1];
        // level k: [r_0, n_0..n_k, r_{k+1}]
        TTL_TRY(ttl_mul_i64(&cols, cols, desc->in_modes[k]));
        TTL_TRY(ttl_mul_i64(&r.level_size[k], cols, desc->ranks[k + 1]));
        TTL_TRY(ttl_add_i64(&total, total, r.level_size[k]));
        r.digit[k] = -1;
    }
    size_t bytes;
    TTL_TRY(ttl_bytes(&bytes, total, sizeof(double)));
    r.storage = malloc(bytes);
    if (r.storage == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    double *p = r.storage;
    for (int32_t k = 0; k < d; ++k) {
        r.level[k] = p;
        p += r.level_size[k];
    }
    *rows = r;
    return TTL_STATUS_SUCCESS;
}

void ttl_ref_rows_free(ttl_ref_rows_t *rows) {
    free(rows->storage);
    rows->storage = NULL;
}

// ---------------------------------------------------------------------------------------------------------------
// One level: cores 0..k for the row digits i_0..i_k
// ---------------------------------------------------------------------------------------------------------------

/* Level 0 is G_0[a, i_0, :, :] for every a: [r_0, n_0, r_1]. */
static void build_first_level(ttl_ref_rows_t *r, int64_t i0) {
    const ttl_fc_desc_t *d = r->desc;
    const int64_t r0 = d->ranks[0], m0 = d->out_modes[0], slice = d->in_modes[0] * d->ranks[1];
    double *dst = r->level[0];
    for (int64_t a = 0; a < r0; ++a) {
        const float *g = r->core[0] + (a * m0 + i0) * slice;
        for (int64_t t = 0; t < slice; ++t) dst[a * slice + t] = (double)g[t];
    }
}

/* Level k = level k-1 [P, r_k] times G_k[:, i_k, :, :] seen as [r_k, (n_k r_{k+1})]: [P, n_k, r_{k+1}],
 * summing over the rank index in increasing order. */
static void build_next_level(ttl_ref_rows_t *r, int32_t k, int64_t ik) {
    const ttl_fc_desc_t *d = r->desc;
    const int64_t ra = d->ranks[k], m = d->out_modes[k], slice = d->in_modes[k] * d->ranks[k + 1];
    const int64_t prefix = r->level_size[k - 1] / ra;
    const double *prev = r->level[k - 1];
    double *next = r->level[k];
    for (int64_t p = 0; p < prefix; ++p) {
        double *dst = next + p * slice;
        for (int64_t t = 0; t < slice; ++t) dst[t] = 0.0;
        for (int64_t b = 0; b < ra; ++b) {
            const double v = prev[p * ra + b];
            const float *g = r->core[k] + (b * m + ik) * slice;
            for (int64_t t = 0; t < slice; ++t) dst[t] += v * (double)g[t];
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// A row
// ---------------------------------------------------------------------------------------------------------------

const double *ttl_ref_rows_get(ttl_ref_rows_t *rows, int64_t i) {
    const ttl_fc_desc_t *d = rows->desc;
    const int32_t n = d->num_cores;
    int64_t digit[TTL_MAX_CORES];
    for (int32_t k = n - 1; k >= 0; --k) {
        digit[k] = i % d->out_modes[k];
        i /= d->out_modes[k];
    }
    // Levels before the first changed digit are still valid; rebuild the rest.
    int32_t first = 0;
    while (first < n && rows->digit[first] == digit[first]) ++first;
    for (int32_t k = first; k < n; ++k) {
        if (k == 0)
            build_first_level(rows, digit[0]);
        else
            build_next_level(rows, k, digit[k]);
        rows->digit[k] = digit[k];
    }
    return rows->level[n - 1];
}
