/*
 * Rows of a TT-matrix built one at a time in double precision: the common core of the CPU reference
 * (reference_fc.c, reference_conv.c). The TT-matrix may have a left rank r_0 > 1, as the channel part of a
 * TT-conv does; row i is then the [r_0, N] block
 *
 *     T_i[a, j] = G_1[a, i_1, j_1, :] . G_2[:, i_2, j_2, :] ... G_d[:, i_d, j_d, 0]
 *
 * (docs/tt-layers.md, 1-based there, 0-based in the code). Rows are built left to right over the cores, and
 * the partial product of the first k cores is kept, so consecutive rows only redo the cores whose row digit
 * changed. Memory is sum_k r_0 (n_1..n_k) r_k doubles, independent of M.
 */
#ifndef TTL_CPU_REFERENCE_ROWS_H
#define TTL_CPU_REFERENCE_ROWS_H

#include <stdint.h>

#include "ttl/ttl.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ttl_ref_rows {
    const ttl_fc_desc_t *desc;         /* validated by the caller; must outlive the builder */
    const float *core[TTL_MAX_CORES];  /* core k is [r_k, m_k, n_k, r_{k+1}] */
    double *level[TTL_MAX_CORES];      /* level k is [r_0, n_0..n_k, r_{k+1}], cores 0..k multiplied */
    int64_t level_size[TTL_MAX_CORES]; /* elements of level k */
    int64_t digit[TTL_MAX_CORES];      /* row digit i_k level k was built for; -1 when not built */
    double *storage;                   /* one allocation holding every level */
} ttl_ref_rows_t;

/* Prepares a builder for a TT-matrix whose ranks[0] may exceed 1 (checked by the caller with
 * ttl_fc_desc_check or ttl_fc_desc_check_left_rank). OVERFLOW when the levels do not fit size_t,
 * OUT_OF_MEMORY when their allocation fails; nothing to free then. */
ttl_status_t ttl_ref_rows_init(ttl_ref_rows_t *rows, const ttl_fc_desc_t *desc, const float *cores);

/* Row i (0 <= i < M) as [r_0, N] doubles, valid until the next call. Cheapest for increasing i. */
const double *ttl_ref_rows_get(ttl_ref_rows_t *rows, int64_t i);

void ttl_ref_rows_free(ttl_ref_rows_t *rows);

#ifdef __cplusplus
}
#endif

#endif /* TTL_CPU_REFERENCE_ROWS_H */
