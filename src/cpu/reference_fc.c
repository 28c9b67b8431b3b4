/*
 * CPU reference of the TT-FC layer: THIS FILE IS THE SPECIFICATION every faster path is tested against.
 *
 *     W[i, j] = G_1[:, i_1, j_1, :] . G_2[:, i_2, j_2, :] ... G_d[:, i_d, j_d, :]     W is [M, N]
 *     y[b, i] = sum_j W[i, j] x[b, j] + bias[i]                                       x is [B, N], y is [B, M]
 *
 * with row-major multi-indices i <-> (i_1..i_d), j <-> (j_1..j_d) (docs/tt-layers.md, section 1). Plain loops,
 * every product and sum in double, rounded to float once per output element. Each y[b, i] sums j = 0..N-1 in
 * increasing order and adds the bias last.
 *
 * W is never held whole in double: rows come from the row builder (reference_rows.c) a tile of ROW_TILE rows at a
 * time, stored transposed so that the innermost loop runs over independent rows of the tile (no reassociated
 * sums, and it vectorises). Memory is O(N (r + ROW_TILE) + B ROW_TILE) doubles whatever M is.
 *
 * Arguments: reconstruction needs a valid descriptor and non-NULL W and cores. Forward validates the descriptor
 * first, then batch (< 0 is BAD_ARGUMENT); batch 0 returns SUCCESS without reading or writing anything, so y, x
 * and cores may then be NULL. Otherwise y, x and cores must be non-NULL; bias may be NULL (no bias). All checks and
 * allocations come before the first write, so on any error the output is untouched.
 */
#include <stdlib.h>

#include "common/check.h"
#include "cpu/reference_rows.h"

/* Rows of W per tile (the accumulators of one sample stay in registers), and columns per pass (the tile's slice
 * of those columns stays in L1 while every sample of the batch goes through it). */
#define ROW_TILE 16
#define COL_TILE 256

// ---------------------------------------------------------------------------------------------------------------
// Reconstruction
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t ttl_fc_reconstruct(float *W, const ttl_fc_desc_t *desc, const float *cores) {
    TTL_TRY(ttl_fc_desc_check(desc));
    if (W == NULL || cores == NULL) return TTL_STATUS_NULL_POINTER;
    ttl_ref_rows_t rows;
    TTL_TRY(ttl_ref_rows_init(&rows, desc, cores));
    const int64_t M = desc->out_features, N = desc->in_features;
    for (int64_t i = 0; i < M; ++i) {
        const double *row = ttl_ref_rows_get(&rows, i);
        for (int64_t j = 0; j < N; ++j) W[i * N + j] = (float)row[j];
    }
    ttl_ref_rows_free(&rows);
    return TTL_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------------------------------

/* y[:, i0 .. i0 + rt) for the whole batch. tile is W[i0 .. i0 + ROW_TILE, :] transposed, [N, ROW_TILE], rows past
 * rt zero; acc is [B, ROW_TILE]. Each acc[b, r] runs over j in increasing order, one column pass at a time. */
static void forward_tile(float *y, const double *tile, const float *x, const float *bias, double *acc, int64_t M,
                         int64_t N, int64_t B, int64_t i0, int64_t rt) {
    for (int64_t t = 0; t < B * ROW_TILE; ++t) acc[t] = 0.0;
    for (int64_t j0 = 0; j0 < N; j0 += COL_TILE) {
        const int64_t j1 = ttl_min_i64(j0 + COL_TILE, N);
        for (int64_t b = 0; b < B; ++b) {
            double a[ROW_TILE];
            for (int r = 0; r < ROW_TILE; ++r) a[r] = acc[b * ROW_TILE + r];
            const float *xb = x + b * N;
            for (int64_t j = j0; j < j1; ++j) {
                const double xv = (double)xb[j];
                const double *w = tile + j * ROW_TILE;
                for (int r = 0; r < ROW_TILE; ++r) a[r] += w[r] * xv;
            }
            for (int r = 0; r < ROW_TILE; ++r) acc[b * ROW_TILE + r] = a[r];
        }
    }
    for (int64_t b = 0; b < B; ++b)
        for (int64_t r = 0; r < rt; ++r) {
            const double bias_i = bias != NULL ? (double)bias[i0 + r] : 0.0;
            y[b * M + i0 + r] = (float)(acc[b * ROW_TILE + r] + bias_i);
        }
}

ttl_status_t ttl_fc_forward_ref(float *y, const ttl_fc_desc_t *desc, const float *cores, const float *bias,
                                const float *x, int64_t batch) {
    TTL_TRY(ttl_fc_desc_check(desc));
    if (batch < 0) return TTL_STATUS_BAD_ARGUMENT;
    if (batch == 0) return TTL_STATUS_SUCCESS;
    if (y == NULL || x == NULL || cores == NULL) return TTL_STATUS_NULL_POINTER;
    const int64_t M = desc->out_features, N = desc->in_features;
    int64_t x_count, y_count, tile_count, acc_count;
    TTL_TRY(ttl_mul_i64(&x_count, batch, N));
    TTL_TRY(ttl_mul_i64(&y_count, batch, M));
    TTL_TRY(ttl_mul_i64(&tile_count, N, ROW_TILE));
    TTL_TRY(ttl_mul_i64(&acc_count, batch, ROW_TILE));
    size_t tile_bytes, acc_bytes;
    TTL_TRY(ttl_bytes(&tile_bytes, tile_count, sizeof(double)));
    TTL_TRY(ttl_bytes(&acc_bytes, acc_count, sizeof(double)));

    ttl_ref_rows_t rows;
    TTL_TRY(ttl_ref_rows_init(&rows, desc, cores));
    double *tile = malloc(tile_bytes);
    double *acc = malloc(acc_bytes);
    if (tile == NULL || acc == NULL) {
        free(tile);
        free(acc);
        ttl_ref_rows_free(&rows);
        return TTL_STATUS_OUT_OF_MEMORY;
    }

    for (int64_t i0 = 0; i0 < M; i0 += ROW_TILE) {
        const int64_t rt = ttl_min_i64(ROW_TILE, M - i0);
        for (int64_t r = 0; r < ROW_TILE; ++r) {
            const double *row = r < rt ? ttl_ref_rows_get(&rows, i0 + r) : NULL;
            for (int64_t j = 0; j < N; ++j) tile[j * ROW_TILE + r] = row != NULL ? row[j] : 0.0;
        }
        forward_tile(y, tile, x, bias, acc, M, N, batch, i0, rt);
    }

    free(acc);
    free(tile);
    ttl_ref_rows_free(&rows);
    return TTL_STATUS_SUCCESS;
}
