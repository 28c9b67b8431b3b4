/*
 * TT rounding (Oseledets 2011, docs/tt-layers.md section 3): re-compress a TT to lower ranks without ever
 * forming the full tensor, in O(D N r^3).
 *
 * 1. Right-to-left orthogonalisation: core k, as [r_{k-1}, N_k r_k], is factored L Q with orthonormal rows
 *    (an LQ, done as the QR of its transpose); core k becomes Q and L moves into core k-1. Afterwards
 *    ||TT|| = ||core 0||.
 * 2. Left-to-right truncation: core k, as [r_{k-1} N_k, r_k], has a thin SVD U diag(s) V^T; core k becomes U
 *    (truncated) and diag(s) V^T moves into core k+1. The cores left of k are left-orthonormal and those right
 *    of k right-orthonormal, so each truncation error is exactly the dropped singular values and the errors of
 *    the steps are orthogonal.
 */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "cpu/tt_svd.h"

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

/* C [m, n] = A [m, k] B [k, n], all row-major, into a new buffer. */
static ttl_status_t matmul_new(double **C, const double *A, const double *B, int64_t m, int64_t k, int64_t n) {
    if (!ttl_fits_lapack_int(m) || !ttl_fits_lapack_int(k) || !ttl_fits_lapack_int(n))
        return TTL_STATUS_UNSUPPORTED;
    double *c = malloc((size_t)ttl_max_i64(m * n, 1) * sizeof(double));
    if (c == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, 1.0, A, (blasint)k,
                B, (blasint)n, 0.0, c, (blasint)n);
    *C = c;
    return TTL_STATUS_SUCCESS;
}

static int64_t core_size(const ttl_tt_t *tt, int32_t k) { return tt->ranks[k] * tt->modes[k] * tt->ranks[k + 1]; }

// ---------------------------------------------------------------------------------------------------------------
// Right-to-left orthogonalisation
// ---------------------------------------------------------------------------------------------------------------

/* Core k (k >= 1) = L Q; core k <- Q [r', N_k r_k] with orthonormal rows, core k-1 <- core k-1 L. */
static ttl_status_t orthogonalize_right(ttl_tt_t *tt, int32_t k) {
    const int64_t a = tt->ranks[k], b = tt->modes[k] * tt->ranks[k + 1], r = ttl_min_i64(a, b);
    if (!ttl_fits_lapack_int(a) || !ttl_fits_lapack_int(b)) return TTL_STATUS_UNSUPPORTED;
    double *g = tt->cores[k];
    double *tau = malloc((size_t)r * sizeof(double));
    double *L = calloc((size_t)(a * r), sizeof(double));
    ttl_status_t st = (tau != NULL && L != NULL) ? TTL_STATUS_SUCCESS : TTL_STATUS_OUT_OF_MEMORY;
    /* Row-major [a, b] is column-major G^T [b, a] = Q_c R_c, so G = R_c^T Q_c^T: L = R_c^T [a, r] and Q_c's
     * storage (b x r, column-major) is Q [r, b] row-major. */
    if (st == TTL_STATUS_SUCCESS)
        st = ttl_lapack_status(
            LAPACKE_dgeqrf(LAPACK_COL_MAJOR, (lapack_int)b, (lapack_int)a, g, (lapack_int)b, tau));
    if (st == TTL_STATUS_SUCCESS) {
        for (int64_t i = 0; i < a; ++i)
            for (int64_t j = 0; j <= i && j < r; ++j) L[i * r + j] = g[i * b + j]; /* R_c[j, i] */
        st = ttl_lapack_status(
            LAPACKE_dorgqr(LAPACK_COL_MAJOR, (lapack_int)b, (lapack_int)r, (lapack_int)r, g, (lapack_int)b, tau));
    }
    double *prev = NULL;
    if (st == TTL_STATUS_SUCCESS)
        st = matmul_new(&prev, tt->cores[k - 1], L, tt->ranks[k - 1] * tt->modes[k - 1], a, r);
    free(tau);
    free(L);
    if (st != TTL_STATUS_SUCCESS) return st;
    free(tt->cores[k - 1]);
    tt->cores[k - 1] = prev;
    if (r < a) { /* the rank shrank: keep only Q's r rows */
        double *q = realloc(g, (size_t)(r * b) * sizeof(double));
        if (q != NULL) tt->cores[k] = q;
    }
    tt->ranks[k] = r;
    return TTL_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// Left-to-right truncation
// ---------------------------------------------------------------------------------------------------------------

/* Core k = U diag(s) V^T; core k <- U (truncated), core k+1 <- diag(s) V^T core k+1. */
static ttl_status_t truncate_left(ttl_tt_t *tt, double *dropped_sq, int32_t k, double delta_sq, int64_t max_rank) {
    const int64_t m = tt->ranks[k] * tt->modes[k], n = tt->ranks[k + 1], p = ttl_min_i64(m, n);
    const int64_t next_cols = tt->modes[k + 1] * tt->ranks[k + 2];
    double *left = malloc((size_t)(m * p) * sizeof(double));
    double *s = malloc((size_t)p * sizeof(double));
    double *right = malloc((size_t)(p * n) * sizeof(double));
    double *next = NULL;
    ttl_status_t st = (left != NULL && s != NULL && right != NULL) ? TTL_STATUS_SUCCESS : TTL_STATUS_OUT_OF_MEMORY;
    if (st == TTL_STATUS_SUCCESS) st = ttl_svd_rowmajor(left, s, right, tt->cores[k], m, n);
    int64_t keep = 0;
    if (st == TTL_STATUS_SUCCESS) {
        keep = ttl_svd_keep(dropped_sq, s, p, delta_sq, max_rank);
        for (int64_t i = 0; i < keep; ++i)
            for (int64_t j = 0; j < n; ++j) right[i * n + j] *= s[i];
        st = matmul_new(&next, right, tt->cores[k + 1], keep, n, next_cols);
    }
    free(s);
    free(right);
    if (st != TTL_STATUS_SUCCESS) {
        free(left);
        return st;
    }
    for (int64_t i = 0; i < m; ++i) memmove(left + i * keep, left + i * p, (size_t)keep * sizeof(double));
    free(tt->cores[k]);
    tt->cores[k] = left;
    free(tt->cores[k + 1]);
    tt->cores[k + 1] = next;
    tt->ranks[k + 1] = keep;
    return TTL_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// Entry
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t ttl_tt_round(ttl_tt_t *tt, double *norm, double *err, double eps, int64_t max_rank) {
    const int32_t D = tt->num_modes;
    for (int32_t k = D - 1; k >= 1; --k) TTL_TRY(orthogonalize_right(tt, k));
    const double norm_sq = ttl_sum_squares(tt->cores[0], core_size(tt, 0));
    if (norm_sq == 0.0) { /* the zero tensor: ranks 1, zero cores */
        for (int32_t k = 0; k < D; ++k) {
            double *z = calloc((size_t)tt->modes[k], sizeof(double));
            if (z == NULL) return TTL_STATUS_OUT_OF_MEMORY;
            free(tt->cores[k]);
            tt->cores[k] = z;
            tt->ranks[k + 1] = 1;
        }
        *norm = 0.0;
        *err = 0.0;
        return TTL_STATUS_SUCCESS;
    }
    const double delta_sq = D > 1 ? eps * eps / (double)(D - 1) * norm_sq : 0.0;
    double err_sq = 0.0;
    for (int32_t k = 0; k + 1 < D; ++k) {
        double dropped;
        TTL_TRY(truncate_left(tt, &dropped, k, delta_sq, max_rank));
        err_sq += dropped;
    }
    *norm = sqrt(norm_sq);
    *err = sqrt(err_sq);
    return TTL_STATUS_SUCCESS;
}
