/*
 * TT-SVD (Oseledets 2011, docs/tt-layers.md section 3) of a dense tensor in double precision, and the LAPACK
 * SVD and truncation rule it shares with TT rounding (tt_round.c).
 *
 * For k = 1..D-1 the remainder is seen as the matrix [r_{k-1} N_k, rest]; its thin SVD U diag(s) V^T gives
 * core k = U (truncated to r_k columns) and the next remainder diag(s) V^T. Since every U is orthonormal, the
 * truncation errors of the steps are orthogonal and their squares add up: the reported error is exact.
 * Memory: two buffers the size of A (A itself and one more), plus the cores.
 */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "cpu/tt_svd.h"

// ---------------------------------------------------------------------------------------------------------------
// LAPACK helpers
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t ttl_svd_rowmajor(double *left, double *s, double *right, double *A, int64_t m, int64_t n) {
    if (!ttl_fits_lapack_int(m) || !ttl_fits_lapack_int(n)) return TTL_STATUS_UNSUPPORTED;
    const int64_t p = ttl_min_i64(m, n);
    /* LAPACK is column-major, so the row-major A [m, n] is the column-major A^T [n, m] = U S VT. Then
     * A = V S U^T: U's storage (n x p, column-major) is right [p, n] row-major, VT's (p x m) is left [m, p]. */
    const lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', (lapack_int)n, (lapack_int)m, A, (lapack_int)n, s,
                                           right, (lapack_int)n, left, (lapack_int)p);
    return ttl_lapack_status(info);
}

int64_t ttl_svd_keep(double *dropped_sq, const double *s, int64_t p, double delta_sq, int64_t max_rank) {
    int64_t keep = p;
    double dropped = 0.0;
    if (delta_sq > 0.0) {
        while (keep > 1 && dropped + s[keep - 1] * s[keep - 1] <= delta_sq) {
            dropped += s[keep - 1] * s[keep - 1];
            --keep;
        }
    }
    if (max_rank > 0 && keep > max_rank) {
        for (int64_t i = max_rank; i < keep; ++i) dropped += s[i] * s[i];
        keep = max_rank;
    }
    *dropped_sq = dropped;
    return keep;
}

// ---------------------------------------------------------------------------------------------------------------
// TT containers
// ---------------------------------------------------------------------------------------------------------------

void ttl_tt_free(ttl_tt_t *tt) {
    for (int32_t k = 0; k < TTL_TT_MAX_MODES; ++k) {
        free(tt->cores[k]);
        tt->cores[k] = NULL;
    }
}

double ttl_sum_squares(const double *a, int64_t n) {
    enum { BLOCK = 4096 };
    double total = 0.0;
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
        const int64_t i1 = ttl_min_i64(n, i0 + BLOCK);
        double part = 0.0;
        for (int64_t i = i0; i < i1; ++i) part += a[i] * a[i];
        total += part;
    }
    return total;
}

/* left [m, p] row-major keeps its first `keep` columns, packed in place as [m, keep]. */
static void keep_columns(double *left, int64_t m, int64_t p, int64_t keep) {
    if (keep == p) return;
    for (int64_t i = 0; i < m; ++i) memmove(left + i * keep, left + i * p, (size_t)keep * sizeof(double));
}

// ---------------------------------------------------------------------------------------------------------------
// TT-SVD
// ---------------------------------------------------------------------------------------------------------------

/* The zero tensor: every rank 1, every core zero. */
static ttl_status_t zero_tt(ttl_tt_t *tt) {
    for (int32_t k = 0; k < tt->num_modes; ++k) {
        tt->ranks[k + 1] = 1;
        tt->cores[k] = calloc((size_t)tt->modes[k], sizeof(double));
        if (tt->cores[k] == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    }
    return TTL_STATUS_SUCCESS;
}

/* The sweep proper; on failure the caller frees what was built in *tt. */
static ttl_status_t tt_svd_sweep(ttl_tt_t *tt, double *err_sq, double *A, double *spare, int64_t total,
                                 double delta_sq, int64_t max_rank) {
    const int32_t D = tt->num_modes;
    double *cur = A; /* the remainder, [r_{k-1} N_k, rest] */
    int64_t cur_size = total;
    double dropped_total = 0.0;
    for (int32_t k = 0; k + 1 < D; ++k) {
        const int64_t m = tt->ranks[k] * tt->modes[k], n = cur_size / m, p = ttl_min_i64(m, n);
        double *left = malloc((size_t)(m * p) * sizeof(double));
        double *s = malloc((size_t)p * sizeof(double));
        if (left == NULL || s == NULL) {
            free(left);
            free(s);
            return TTL_STATUS_OUT_OF_MEMORY;
        }
        const ttl_status_t st = ttl_svd_rowmajor(left, s, spare, cur, m, n);
        if (st != TTL_STATUS_SUCCESS) {
            free(left);
            free(s);
            return st;
        }
        double dropped;
        const int64_t keep = ttl_svd_keep(&dropped, s, p, delta_sq, max_rank);
        dropped_total += dropped;
        keep_columns(left, m, p, keep);
        double *core = realloc(left, (size_t)(m * keep) * sizeof(double));
        tt->cores[k] = core != NULL ? core : left; /* shrinking in place is only an economy */
        tt->ranks[k + 1] = keep;
        /* Next remainder diag(s) V^T: the first `keep` rows of `spare`, scaled. */
        for (int64_t i = 0; i < keep; ++i)
            for (int64_t j = 0; j < n; ++j) spare[i * n + j] *= s[i];
        free(s);
        double *old = cur;
        cur = spare;
        spare = old;
        cur_size = keep * n;
    }
    tt->cores[D - 1] = malloc((size_t)cur_size * sizeof(double));
    if (tt->cores[D - 1] == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    memcpy(tt->cores[D - 1], cur, (size_t)cur_size * sizeof(double));
    *err_sq = dropped_total;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_tt_svd(ttl_tt_t *tt, double *norm, double *err, double *A, const int64_t *modes, int32_t num_modes,
                        double eps, int64_t max_rank) {
    if (num_modes < 1 || num_modes > TTL_TT_MAX_MODES) return TTL_STATUS_BAD_SIZE;
    int64_t total;
    TTL_TRY(ttl_product(&total, modes, num_modes));

    ttl_tt_t res;
    memset(&res, 0, sizeof(res));
    res.num_modes = num_modes;
    memcpy(res.modes, modes, (size_t)num_modes * sizeof(int64_t));
    res.ranks[0] = 1;

    const double norm_sq = ttl_sum_squares(A, total);
    double err_sq = 0.0;
    ttl_status_t st;
    if (norm_sq == 0.0) {
        st = zero_tt(&res);
    } else {
        /* Each of the D - 1 steps may drop (eps ||A||)^2 / (D - 1). */
        const double delta_sq = num_modes > 1 ? eps * eps / (double)(num_modes - 1) * norm_sq : 0.0;
        double *spare = malloc((size_t)total * sizeof(double));
        st = spare != NULL ? tt_svd_sweep(&res, &err_sq, A, spare, total, delta_sq, max_rank)
                           : TTL_STATUS_OUT_OF_MEMORY;
        free(spare);
    }
    if (st != TTL_STATUS_SUCCESS) {
        ttl_tt_free(&res);
        return st;
    }
    res.ranks[num_modes] = 1;
    *tt = res;
    *norm = sqrt(norm_sq);
    *err = sqrt(err_sq);
    return TTL_STATUS_SUCCESS;
}
