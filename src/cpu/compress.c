/*
 * Public compression entry points: TT-SVD of dense FC weights and conv kernels, and TT rounding of existing
 * cores (docs/tt-layers.md section 3). They validate, move the layer into the generic double-precision TT of
 * tt_svd.h, run TT-SVD or rounding there, and publish float cores only once everything has succeeded.
 *
 * Mode order: an FC weight W[M, N] is the tensor [m_1..m_d, n_1..n_d] permuted to [(m_1 n_1)..(m_d n_d)]; a
 * conv kernel K[S, C, kh, kw] is [s_1..s_d, c_1..c_d, kh, kw] permuted to [(kh kw), (s_1 c_1)..(s_d c_d)]. With
 * those modes a TT core [r_{k-1}, N_k, r_k] is byte for byte the packed layer core ([r_{k-1}, m_k, n_k, r_k]; the
 * spatial core [kh, kw, r_0] is the first TT core with r = 1 on its left).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "cpu/tt_svd.h"

/* A permuted dense tensor has at most 2 dims per channel core plus kh and kw. */
#define MAX_DENSE_DIMS (2 * TTL_MAX_CORES + 2)

// ---------------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------------

static ttl_status_t check_opts(const ttl_compress_opts_t *opts) {
    if (!(opts->eps >= 0.0 && opts->eps < 1.0)) return TTL_STATUS_BAD_ARGUMENT; /* NaN fails too */
    if (opts->max_rank < 0) return TTL_STATUS_BAD_ARGUMENT;
    return TTL_STATUS_SUCCESS;
}

/* `shape` with every rank set to 1, so that only its modes and sizes are checked. */
static ttl_status_t check_fc_shape(ttl_fc_desc_t *unit, const ttl_fc_desc_t *shape) {
    *unit = *shape;
    for (int32_t k = 0; k <= TTL_MAX_CORES; ++k) unit->ranks[k] = 1;
    return ttl_fc_desc_check(unit);
}

static ttl_status_t check_conv_shape(ttl_conv_desc_t *unit, const ttl_conv_desc_t *shape) {
    *unit = *shape;
    for (int32_t k = 0; k <= TTL_MAX_CORES; ++k) unit->ranks[k] = 1;
    return ttl_conv_desc_check(unit);
}

// ---------------------------------------------------------------------------------------------------------------
// Layer <-> generic TT
// ---------------------------------------------------------------------------------------------------------------

/* TT modes of a TT-matrix (ranks are the descriptor's). */
static void fc_tt_shape(ttl_tt_t *tt, const ttl_fc_desc_t *d) {
    memset(tt, 0, sizeof(*tt));
    tt->num_modes = d->num_cores;
    for (int32_t k = 0; k < d->num_cores; ++k) tt->modes[k] = d->out_modes[k] * d->in_modes[k];
    for (int32_t k = 0; k <= d->num_cores; ++k) tt->ranks[k] = d->ranks[k];
}

/* TT modes of a TT-conv kernel: the spatial core first, with a left rank of 1. */
static void conv_tt_shape(ttl_tt_t *tt, const ttl_conv_desc_t *d) {
    memset(tt, 0, sizeof(*tt));
    tt->num_modes = d->num_cores + 1;
    tt->modes[0] = d->kernel_h * d->kernel_w;
    tt->ranks[0] = 1;
    for (int32_t k = 0; k < d->num_cores; ++k) tt->modes[k + 1] = d->out_modes[k] * d->in_modes[k];
    for (int32_t k = 0; k <= d->num_cores; ++k) tt->ranks[k + 1] = d->ranks[k];
}

static int64_t tt_param_count(const ttl_tt_t *tt) {
    int64_t n = 0;
    for (int32_t k = 0; k < tt->num_modes; ++k) n += tt->ranks[k] * tt->modes[k] * tt->ranks[k + 1];
    return n;
}

static int64_t tt_max_inner_rank(const ttl_tt_t *tt) {
    int64_t r = 1;
    for (int32_t k = 1; k < tt->num_modes; ++k) r = ttl_max_i64(r, tt->ranks[k]);
    return r;
}

/* Packed float cores -> double cores of *tt (whose shape is set); NUMERICAL on NaN/Inf. */
static ttl_status_t load_cores(ttl_tt_t *tt, const float *packed) {
    for (int32_t k = 0; k < tt->num_modes; ++k) {
        const int64_t n = tt->ranks[k] * tt->modes[k] * tt->ranks[k + 1];
        double *c = malloc((size_t)n * sizeof(double));
        if (c == NULL) return TTL_STATUS_OUT_OF_MEMORY;
        tt->cores[k] = c;
        for (int64_t i = 0; i < n; ++i) {
            if (!isfinite(packed[i])) return TTL_STATUS_NUMERICAL;
            c[i] = packed[i];
        }
        packed += n;
    }
    return TTL_STATUS_SUCCESS;
}

/* Double cores -> a new packed float buffer; NUMERICAL when a value does not fit a float. */
static ttl_status_t pack_cores(float **packed, const ttl_tt_t *tt) {
    float *out = malloc((size_t)ttl_max_i64(tt_param_count(tt), 1) * sizeof(float));
    if (out == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    float *p = out;
    for (int32_t k = 0; k < tt->num_modes; ++k) {
        const int64_t n = tt->ranks[k] * tt->modes[k] * tt->ranks[k + 1];
        for (int64_t i = 0; i < n; ++i) {
            p[i] = (float)tt->cores[k][i];
            if (!isfinite(p[i])) {
                free(out);
                return TTL_STATUS_NUMERICAL;
            }
        }
        p += n;
    }
    *packed = out;
    return TTL_STATUS_SUCCESS;
}

static void fill_report(ttl_compress_report_t *report, const ttl_tt_t *tt, double norm, double err) {
    if (report == NULL) return;
    report->rel_err = norm > 0.0 ? err / norm : 0.0;
    report->norm = norm;
    report->params = tt_param_count(tt);
    report->max_rank = tt_max_inner_rank(tt);
}

// ---------------------------------------------------------------------------------------------------------------
// Dense tensor in TT mode order
// ---------------------------------------------------------------------------------------------------------------

/* dst (double) = src (row-major over src_dims) with its dims permuted: dst dim q is src dim perm[q]. An odometer
 * over dst tracks the src offset incrementally. NUMERICAL on NaN/Inf. */
static ttl_status_t permute_to_double(double *dst, const float *src, const int64_t *src_dims, const int32_t *perm,
                                      int32_t ndims, int64_t total) {
    int64_t src_stride[MAX_DENSE_DIMS], dims[MAX_DENSE_DIMS], step[MAX_DENSE_DIMS], idx[MAX_DENSE_DIMS];
    int64_t s = 1;
    for (int32_t i = ndims - 1; i >= 0; --i) {
        src_stride[i] = s;
        s *= src_dims[i];
    }
    for (int32_t q = 0; q < ndims; ++q) {
        dims[q] = src_dims[perm[q]];
        step[q] = src_stride[perm[q]];
        idx[q] = 0;
    }
    int64_t off = 0;
    for (int64_t t = 0; t < total; ++t) {
        const float v = src[off];
        if (!isfinite(v)) return TTL_STATUS_NUMERICAL;
        dst[t] = v;
        for (int32_t q = ndims - 1; q >= 0; --q) {
            off += step[q];
            if (++idx[q] < dims[q]) break;
            off -= step[q] * dims[q];
            idx[q] = 0;
        }
    }
    return TTL_STATUS_SUCCESS;
}

/* Source dims [m_1..m_n, n_1..n_n] and the permutation that interleaves them as (m_1, n_1, ..., m_n, n_n) at
 * destination positions first, first + 1, ... (the dense weight's row modes then column modes). */
static void interleave_modes(int64_t *src_dims, int32_t *perm, const int64_t *out_modes, const int64_t *in_modes,
                             int32_t n, int32_t first) {
    for (int32_t k = 0; k < n; ++k) {
        src_dims[k] = out_modes[k];
        src_dims[n + k] = in_modes[k];
        perm[first + 2 * k] = k;
        perm[first + 2 * k + 1] = n + k;
    }
}

/* TT-SVD of a dense float tensor given as src_dims/perm, into the shape of *tt (modes set, ranks replaced). */
static ttl_status_t compress_dense(ttl_tt_t *tt, double *norm, double *err, const float *src,
                                   const int64_t *src_dims, const int32_t *perm, int32_t ndims,
                                   const ttl_compress_opts_t *opts) {
    int64_t total;
    TTL_TRY(ttl_product(&total, src_dims, ndims));
    double *A = malloc((size_t)total * sizeof(double));
    if (A == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    ttl_status_t st = permute_to_double(A, src, src_dims, perm, ndims, total);
    if (st == TTL_STATUS_SUCCESS)
        st = ttl_tt_svd(tt, norm, err, A, tt->modes, tt->num_modes, opts->eps, opts->max_rank);
    free(A);
    return st;
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t ttl_fc_compress(ttl_fc_desc_t *tt_desc, float **tt_cores, ttl_compress_report_t *report,
                             const ttl_fc_desc_t *shape, const float *W, const ttl_compress_opts_t *opts) {
    if (tt_desc == NULL || tt_cores == NULL || shape == NULL || W == NULL || opts == NULL)
        return TTL_STATUS_NULL_POINTER;
    ttl_fc_desc_t d;
    TTL_TRY(check_fc_shape(&d, shape));
    TTL_TRY(check_opts(opts));

    /* W [m_1..m_d, n_1..n_d] -> [m_1, n_1, ..., m_d, n_d] */
    const int32_t n = d.num_cores;
    int64_t src_dims[MAX_DENSE_DIMS];
    int32_t perm[MAX_DENSE_DIMS];
    interleave_modes(src_dims, perm, d.out_modes, d.in_modes, n, 0);
    ttl_tt_t tt;
    fc_tt_shape(&tt, &d);
    double norm, err;
    TTL_TRY(compress_dense(&tt, &norm, &err, W, src_dims, perm, 2 * n, opts));
    float *packed;
    const ttl_status_t st = pack_cores(&packed, &tt);
    if (st == TTL_STATUS_SUCCESS) {
        for (int32_t k = 0; k <= n; ++k) d.ranks[k] = tt.ranks[k];
        fill_report(report, &tt, norm, err);
        *tt_desc = d;
        *tt_cores = packed;
    }
    ttl_tt_free(&tt);
    return st;
}

ttl_status_t ttl_conv_compress(ttl_conv_desc_t *tt_desc, float **tt_cores, ttl_compress_report_t *report,
                               const ttl_conv_desc_t *shape, const float *K, const ttl_compress_opts_t *opts) {
    if (tt_desc == NULL || tt_cores == NULL || shape == NULL || K == NULL || opts == NULL)
        return TTL_STATUS_NULL_POINTER;
    ttl_conv_desc_t d;
    TTL_TRY(check_conv_shape(&d, shape));
    TTL_TRY(check_opts(opts));

    /* K [s_1..s_d, c_1..c_d, kh, kw] -> [kh, kw, s_1, c_1, ..., s_d, c_d] */
    const int32_t n = d.num_cores;
    int64_t src_dims[MAX_DENSE_DIMS];
    int32_t perm[MAX_DENSE_DIMS];
    interleave_modes(src_dims, perm, d.out_modes, d.in_modes, n, 2);
    src_dims[2 * n] = d.kernel_h;
    src_dims[2 * n + 1] = d.kernel_w;
    perm[0] = 2 * n;
    perm[1] = 2 * n + 1;
    ttl_tt_t tt;
    conv_tt_shape(&tt, &d);
    double norm, err;
    TTL_TRY(compress_dense(&tt, &norm, &err, K, src_dims, perm, 2 * n + 2, opts));
    float *packed;
    const ttl_status_t st = pack_cores(&packed, &tt);
    if (st == TTL_STATUS_SUCCESS) {
        for (int32_t k = 0; k <= n; ++k) d.ranks[k] = tt.ranks[k + 1];
        fill_report(report, &tt, norm, err);
        *tt_desc = d;
        *tt_cores = packed;
    }
    ttl_tt_free(&tt);
    return st;
}

/* Load, round and pack; the shape of *tt is set by the caller. */
static ttl_status_t round_cores(ttl_tt_t *tt, float **packed, double *norm, double *err, const float *cores,
                                const ttl_compress_opts_t *opts) {
    ttl_status_t st = load_cores(tt, cores);
    if (st == TTL_STATUS_SUCCESS) st = ttl_tt_round(tt, norm, err, opts->eps, opts->max_rank);
    if (st == TTL_STATUS_SUCCESS) st = pack_cores(packed, tt);
    return st;
}

ttl_status_t ttl_fc_round(ttl_fc_desc_t *out_desc, float **out_cores, ttl_compress_report_t *report,
                          const ttl_fc_desc_t *desc, const float *cores, const ttl_compress_opts_t *opts) {
    if (out_desc == NULL || out_cores == NULL || desc == NULL || cores == NULL || opts == NULL)
        return TTL_STATUS_NULL_POINTER;
    TTL_TRY(ttl_fc_desc_check(desc));
    TTL_TRY(check_opts(opts));
    ttl_fc_desc_t d = *desc;
    ttl_tt_t tt;
    fc_tt_shape(&tt, &d);
    float *packed;
    double norm, err;
    const ttl_status_t st = round_cores(&tt, &packed, &norm, &err, cores, opts);
    if (st == TTL_STATUS_SUCCESS) {
        for (int32_t k = 0; k <= d.num_cores; ++k) d.ranks[k] = tt.ranks[k];
        fill_report(report, &tt, norm, err);
        *out_desc = d;
        *out_cores = packed;
    }
    ttl_tt_free(&tt);
    return st;
}

ttl_status_t ttl_conv_round(ttl_conv_desc_t *out_desc, float **out_cores, ttl_compress_report_t *report,
                            const ttl_conv_desc_t *desc, const float *cores, const ttl_compress_opts_t *opts) {
    if (out_desc == NULL || out_cores == NULL || desc == NULL || cores == NULL || opts == NULL)
        return TTL_STATUS_NULL_POINTER;
    TTL_TRY(ttl_conv_desc_check(desc));
    TTL_TRY(check_opts(opts));
    ttl_conv_desc_t d = *desc;
    ttl_tt_t tt;
    conv_tt_shape(&tt, &d);
    float *packed;
    double norm, err;
    const ttl_status_t st = round_cores(&tt, &packed, &norm, &err, cores, opts);
    if (st == TTL_STATUS_SUCCESS) {
        for (int32_t k = 0; k <= d.num_cores; ++k) d.ranks[k] = tt.ranks[k + 1];
        fill_report(report, &tt, norm, err);
        *out_desc = d;
        *out_cores = packed;
    }
    ttl_tt_free(&tt);
    return st;
}
