/*
 * Internal: tensor trains in double precision, the working form of compression (docs/tt-layers.md section 3).
 *
 * A TT here is the generic one of Oseledets 2011: D modes N_1..N_D and cores [r_{k-1}, N_k, r_k] (row-major)
 * with r_0 = r_D = 1. A TT-matrix is the TT with N_k = m_k n_k (indices interleaved (i_k, j_k)); a TT-conv
 * kernel is the TT with modes (kh kw, s_1 c_1, ..., s_d c_d), whose first core is the spatial core. In both
 * cases the cores' memory layout is exactly the packed float layout of the public API.
 */
#ifndef TTL_CPU_TT_SVD_H
#define TTL_CPU_TT_SVD_H

#include <lapacke.h>
#include <stdint.h>

#include "ttl/ttl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A TT-conv kernel has its spatial core in front of up to TTL_MAX_CORES channel cores. */
#define TTL_TT_MAX_MODES (TTL_MAX_CORES + 1)

typedef struct ttl_tt {
    int32_t num_modes;                   /* D, 1..TTL_TT_MAX_MODES */
    int64_t modes[TTL_TT_MAX_MODES];     /* N_k >= 1 */
    int64_t ranks[TTL_TT_MAX_MODES + 1]; /* r_0 = 1, ..., r_D = 1 */
    double *cores[TTL_TT_MAX_MODES];     /* core k is [ranks[k], modes[k], ranks[k + 1]], malloc'd (or NULL) */
} ttl_tt_t;

/* Frees every core and sets the pointers to NULL. */
void ttl_tt_free(ttl_tt_t *tt);

/* TT-SVD of the dense tensor A (row-major over modes[0..num_modes-1], overwritten: it serves as scratch).
 * Each step keeps the fewest singular values whose dropped squared sum is <= (eps / sqrt(D - 1) ||A||)^2, and
 * no more than max_rank (0: no cap); eps = 0 keeps every singular value. *norm = ||A||_F and *err = the exact
 * ||A - TT||_F (the dropped parts are orthogonal). A zero tensor gives ranks 1 and zero cores. On success *tt
 * owns new cores; on failure it is left untouched. */
ttl_status_t ttl_tt_svd(ttl_tt_t *tt, double *norm, double *err, double *A, const int64_t *modes, int32_t num_modes,
                        double eps, int64_t max_rank);

/* Rounds *tt in place: right-to-left QR orthogonalisation, then left-to-right truncated SVDs with the same
 * truncation rule as ttl_tt_svd (delta relative to ||TT||). *norm = ||TT||_F of the input and *err the exact
 * ||TT_in - TT_out||_F. On failure *tt still holds valid core pointers (for ttl_tt_free) but its content is
 * unspecified. */
ttl_status_t ttl_tt_round(ttl_tt_t *tt, double *norm, double *err, double eps, int64_t max_rank);

/* Whether a size can be passed to LAPACK/BLAS (32-bit integers unless built ILP64). */
static inline int ttl_fits_lapack_int(int64_t n) { return n >= 0 && (int64_t)(lapack_int)n == n; }

/* LAPACKE's info as a status: its own allocation failures are OUT_OF_MEMORY, anything else NUMERICAL. */
static inline ttl_status_t ttl_lapack_status(lapack_int info) {
    if (info == 0) return TTL_STATUS_SUCCESS;
    if (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR) return TTL_STATUS_OUT_OF_MEMORY;
    return TTL_STATUS_NUMERICAL;
}

/* Squared Frobenius norm of n doubles, summed in blocks so that rounding does not grow with n. */
double ttl_sum_squares(const double *a, int64_t n);

/* Thin SVD of A [m, n] row-major (overwritten): A = left diag(s) right, p = min(m, n), left [m, p] and right
 * [p, n] row-major, s descending. */
ttl_status_t ttl_svd_rowmajor(double *left, double *s, double *right, double *A, int64_t m, int64_t n);

/* How many of the p singular values s (descending) to keep: the fewest whose dropped tail has squared sum
 * <= delta_sq (all of them when delta_sq <= 0), at least 1, at most max_rank when max_rank > 0. *dropped_sq
 * gets the squared sum of the values left out. */
int64_t ttl_svd_keep(double *dropped_sq, const double *s, int64_t p, double delta_sq, int64_t max_rank);

#ifdef __cplusplus
}
#endif

#endif /* TTL_CPU_TT_SVD_H */
