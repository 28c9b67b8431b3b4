/*
 * Dense reconstruction in float for the DENSE algorithms: W[M, N] of a TT-matrix, or a TT-conv kernel as
 * [S, kh kw, C], by a left-to-right chain of GEMMs (the reference ttl_*_reconstruct is the double-precision
 * specification; this is the fast version).
 *
 * The partial product after k cores is P[l, I, J, r_k] (l the lead row, I = i_1..i_k, J = j_1..j_k). Step k:
 * P[(l I J), r_{k-1}] G_k[r_{k-1}, (i_k j_k r_k)] gives [l, I, J, i_k, (j_k r_k)], and swapping J with i_k gives
 * P[l, (I i_k), (J j_k), r_k] (out_span and in_span below are the extents of I and J). The GEMMs cost exactly the
 * macs_reconstruct formula of the stats. With a lead matrix the finished [l, M, N] is then swapped to [M, l, N]
 * (K[S, kh kw, C], the row order of the dense conv's single GEMM), through the chain's own scratch.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "cpu/cpu_internal.h"

// ---------------------------------------------------------------------------------------------------------------
// sizes
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t ttl_tt_chain_scratch(int64_t *elems, const ttl_fc_desc_t *d, int64_t lead) {
    /* Two buffers, each as large as the biggest step output lead (I J)_k r_{k+1}. */
    int64_t size = lead, best = 0;
    for (int32_t k = 0; k < d->num_cores; ++k) {
        int64_t out;
        TTL_TRY(ttl_mul_i64(&size, size, d->out_modes[k]));
        TTL_TRY(ttl_mul_i64(&size, size, d->in_modes[k]));
        TTL_TRY(ttl_mul_i64(&out, size, d->ranks[k + 1]));
        best = ttl_max_i64(best, out);
    }
    /* each buffer is rounded up to the workspace alignment */
    int64_t aligned = best + (int64_t)(TTL_WS_ALIGN / sizeof(float));
    TTL_TRY(ttl_mul_i64(elems, aligned, 2));
    return TTL_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// chain
// ---------------------------------------------------------------------------------------------------------------

void ttl_tt_chain_run(float *dst, const ttl_fc_desc_t *d, const float *cores, const float *lead_mat, int64_t lead,
                      float *scratch) {
    const int32_t n = d->num_cores;
    /* TT-conv: l moves between I and J at the end, so the last step finishes in scratch (a plain copy when l or M
     * is 1) */
    const int move_lead = lead_mat != NULL && lead > 1 && d->out_features > 1;
    int64_t best = 0, size = lead;
    for (int32_t k = 0; k < n; ++k) {
        size *= d->out_modes[k] * d->in_modes[k];
        best = ttl_max_i64(best, size * d->ranks[k + 1]);
    }
    const int64_t stride = (int64_t)ttl_align_up((size_t)best * sizeof(float)) / (int64_t)sizeof(float);
    float *buf[2] = {scratch, scratch + stride};

    /* P starts as [lead, 1, 1, r_0] (lead_mat) or, for a plain TT-matrix, as G_1 = [1, m_1, n_1, r_1]. */
    const float *cur = lead_mat;
    int cur_buf = -1;
    int64_t out_span = 1, in_span = 1;
    int32_t k0 = 0;
    if (lead_mat == NULL) {
        cur = cores;
        out_span = d->out_modes[0];
        in_span = d->in_modes[0];
        cores += d->out_modes[0] * d->in_modes[0] * d->ranks[1];
        k0 = 1;
        if (n == 1) {
            memcpy(dst, cur, (size_t)(out_span * in_span) * sizeof(float));
            return;
        }
    }
    for (int32_t k = k0; k < n; ++k) {
        const int64_t ra = d->ranks[k], m = d->out_modes[k], nk = d->in_modes[k], rb = d->ranks[k + 1];
        const int last = k == n - 1;
        const int spare = cur_buf == 0 ? 1 : 0;
        const int in_place = in_span == 1 || m == 1;
        const int to_dst = last && !move_lead;
        float *out = in_place && to_dst ? dst : buf[spare];
        const int64_t rows = lead * out_span * in_span, cols = m * nk * rb;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)cols, (int)ra, 1.0f, cur, (int)ra,
                    cores, (int)cols, 0.0f, out, (int)cols);
        if (in_place) {
            cur = out;
            cur_buf = spare;
        } else {
            const int next_buf = cur_buf >= 0 ? cur_buf : 1 - spare;
            float *next = to_dst ? dst : buf[next_buf];
            ttl_swap_middle(next, out, lead * out_span, in_span, m, nk * rb);
            cur = next;
            cur_buf = next_buf;
        }
        out_span *= m;
        in_span *= nk;
        cores += ra * m * nk * rb;
    }
    if (move_lead) ttl_swap_middle(dst, cur, 1, lead, out_span, in_span);
}

// ---------------------------------------------------------------------------------------------------------------
// into new memory (plans that bind their weights)
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t ttl_tt_chain_build(float **dst, const ttl_fc_desc_t *d, const float *cores, const float *lead_mat,
                                int64_t lead) {
    int64_t elems, scratch_elems = 0;
    TTL_TRY(ttl_mul_i64(&elems, lead, d->out_features));
    TTL_TRY(ttl_mul_i64(&elems, elems, d->in_features));
    /* a plain TT-matrix of one core is W itself: nothing to chain */
    if (lead_mat != NULL || d->num_cores > 1) TTL_TRY(ttl_tt_chain_scratch(&scratch_elems, d, lead));
    size_t bytes, scratch_bytes;
    TTL_TRY(ttl_bytes(&bytes, elems, sizeof(float)));
    TTL_TRY(ttl_bytes(&scratch_bytes, scratch_elems, sizeof(float)));
    float *out = malloc(bytes);
    float *scratch = scratch_bytes > 0 ? malloc(scratch_bytes) : NULL;
    if (out == NULL || (scratch_bytes > 0 && scratch == NULL)) {
        free(out);
        free(scratch);
        return TTL_STATUS_OUT_OF_MEMORY;
    }
    ttl_tt_chain_run(out, d, cores, lead_mat, lead, scratch);
    free(scratch);
    *dst = out;
    return TTL_STATUS_SUCCESS;
}
