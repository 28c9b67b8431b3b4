/*
 * The plan-time reconstruction of W (TT-FC) and K (TT-conv) that the DENSE algorithms run once, written for both
 * the device and a host test (tests/cpu/test_cuda_dense_emulation.cpp): each kernel body is a __host__ __device__
 * loop over the elements e = tid, tid + nthr, ... and the order of the steps is a schedule over an executor,
 * so the launchers (fc_dense.cu, conv_dense.cu) and the test run the same index arithmetic and the same steps.
 *
 * TT-FC: the cores are merged left to right,
 *     H_1 = G_0 as [(m_0 n_0), r_1];  H_{k+1}[(row, (i_k, j_k)), c] = sum_a H_k[row, a] G_k[a, (i_k, j_k), c]
 * so H_d is W with interleaved indices (i_0 j_0 i_1 j_1 ...); a permute writes W^T [N, M] row-major, which is W
 * in the column-major order cuBLAS reads. fp32 sums of r_k terms.
 *
 * TT-conv: P_0 = G_0 as [1][1][kh kw][r_0] and
 *     P_k[(S_<k, s_k)][(C_<k, c_k)][pq][r_k] = sum_a P_{k-1}[S_<k][C_<k][pq][a] G_k[a][s_k][c_k][r_k],
 * so P_d = K [S][C][kh kw], written as [S][kh kw][C] instead for NHWC (cuDNN's filter layout matching the
 * activations). Double sums in a fixed order.
 */
#ifndef TTL_CUDA_DENSE_RECONSTRUCT_CUH
#define TTL_CUDA_DENSE_RECONSTRUCT_CUH

#include <stdint.h>

#include "cuda/cuda_internal.h"

// ---------------------------------------------------------------------------------------------------------------
// TT-FC
// ---------------------------------------------------------------------------------------------------------------

/* out[row, col] = sum_a h[row, a] g[a, col]; h is [rows, ra], g is [ra, cols], out [rows, cols]. */
__host__ __device__ inline void fc_merge_core(float *out, const float *h, const float *g, int64_t rows, int64_t ra,
                                              int64_t cols, int64_t tid, int64_t nthr) {
    const int64_t total = rows * cols;
    for (int64_t e = tid; e < total; e += nthr) {
        const int64_t row = e / cols, col = e - row * cols;
        float acc = 0.0f;
        for (int64_t a = 0; a < ra; ++a) acc = fmaf(h[row * ra + a], g[a * cols + col], acc);
        out[e] = acc;
    }
}

/* Shapes of the permute, by value. */
struct fc_permute_shape {
    int32_t d;
    int64_t m[TTL_MAX_CORES], n[TTL_MAX_CORES];
    int64_t stride[TTL_MAX_CORES]; /* of (i_k, j_k) in the interleaved index: prod_{j > k} m_j n_j */
    int64_t M, N;
};

/* wt[j * M + i] = h[interleave(i, j)]: i fastest, so the writes are coalesced. */
__host__ __device__ inline void fc_permute(float *wt, const float *h, const fc_permute_shape &s, int64_t tid,
                                           int64_t nthr) {
    const int64_t total = s.M * s.N;
    for (int64_t e = tid; e < total; e += nthr) {
        const int64_t j = e / s.M, i = e - j * s.M;
        int64_t ii = i, jj = j, src = 0;
        for (int k = s.d - 1; k >= 0; --k) {
            const int64_t ik = ii % s.m[k], jk = jj % s.n[k];
            ii /= s.m[k], jj /= s.n[k];
            src += (ik * s.n[k] + jk) * s.stride[k];
        }
        wt[e] = h[src];
    }
}

/* Floats of the larger merge temporary: prod_{j <= k}(m_j n_j) r_{k+1} over k >= 1 (H_1 is the core itself). */
inline ttl_status_t fc_reconstruct_tmp_elems(int64_t *elems, const ttl_fc_desc_t *d) {
    int64_t most = 1, lead = d->out_modes[0] * d->in_modes[0];
    for (int32_t k = 1; k < d->num_cores; ++k) {
        int64_t size;
        TTL_TRY(ttl_mul_i64(&lead, lead, d->out_modes[k] * d->in_modes[k]));
        TTL_TRY(ttl_mul_i64(&size, lead, d->ranks[k + 1]));
        most = ttl_max_i64(most, size);
    }
    *elems = most;
    return TTL_STATUS_SUCCESS;
}

/* W^T into wt: the merges into tmp0 / tmp1 (each fc_reconstruct_tmp_elems floats; unused when d = 1), then the
 * permute. cores are packed with core k at core_offset[k]. Exec provides
 *     ttl_status_t merge(float *out, const float *h, const float *g, int64_t rows, int64_t ra, int64_t cols);
 *     ttl_status_t permute(float *wt, const float *h, const fc_permute_shape &s);                              */
template <class Exec>
ttl_status_t fc_reconstruct_schedule(float *wt, float *tmp0, float *tmp1, const ttl_fc_desc_t *d,
                                     const float *cores, const int64_t *core_offset, Exec &exec) {
    const float *h = cores; /* H_1 = G_0, [(m_0 n_0), r_1] */
    float *bufs[2] = {tmp0, tmp1};
    int64_t rows = d->out_modes[0] * d->in_modes[0];
    for (int32_t k = 1; k < d->num_cores; ++k) {
        const int64_t ra = d->ranks[k], cols = d->out_modes[k] * d->in_modes[k] * d->ranks[k + 1];
        float *out = bufs[k & 1];
        TTL_TRY(exec.merge(out, h, cores + core_offset[k], rows, ra, cols));
        h = out;
        rows *= d->out_modes[k] * d->in_modes[k];
    }
    fc_permute_shape s;
    s.d = d->num_cores;
    s.M = d->out_features;
    s.N = d->in_features;
    int64_t stride = 1;
    for (int32_t k = d->num_cores - 1; k >= 0; --k) {
        s.m[k] = d->out_modes[k];
        s.n[k] = d->in_modes[k];
        s.stride[k] = stride;
        stride *= d->out_modes[k] * d->in_modes[k];
    }
    return exec.permute(wt, h, s);
}

// ---------------------------------------------------------------------------------------------------------------
// TT-conv
// ---------------------------------------------------------------------------------------------------------------

/* One step (see the top). out has s_prev*sk x c_prev*ck x khkw x rb elements; with krsc (last step only, rb = 1)
 * it is written as [S][kh kw][C] instead of [S][C][kh kw]. */
__host__ __device__ inline void conv_reconstruct_step(float *__restrict__ out, const float *__restrict__ prev,
                                                      const float *__restrict__ core, int64_t s_prev,
                                                      int64_t c_prev, int64_t sk, int64_t ck, int64_t khkw,
                                                      int64_t ra, int64_t rb, int krsc, int64_t tid, int64_t nthr) {
    const int64_t c_all = c_prev * ck;
    const int64_t total = s_prev * sk * c_all * khkw * rb;
    for (int64_t e = tid; e < total; e += nthr) {
        const int64_t r = e % rb;
        int64_t t = e / rb;
        const int64_t pq = t % khkw;
        t /= khkw;
        const int64_t cc = t % c_all;
        const int64_t ss = t / c_all;
        const int64_t sp = ss / sk, si = ss - sp * sk, cp = cc / ck, ci = cc - cp * ck;
        const float *pv = prev + ((sp * c_prev + cp) * khkw + pq) * ra;
        const float *gv = core + (si * ck + ci) * rb + r; /* G_k[a][si][ci][r] = gv[a sk ck rb] */
        double acc = 0.0;
        for (int64_t a = 0; a < ra; ++a) acc += (double)pv[a] * (double)gv[a * sk * ck * rb];
        out[krsc ? (ss * khkw + pq) * c_all + cc : e] = (float)acc;
    }
}

/* Floats of the larger temporary P_k, k < d (0 when d = 1). */
inline ttl_status_t conv_reconstruct_tmp_elems(int64_t *elems, const ttl_conv_desc_t *d) {
    const int64_t khkw = d->kernel_h * d->kernel_w;
    int64_t most = 0, sp = 1, cp = 1;
    for (int32_t k = 0; k + 1 < d->num_cores; ++k) {
        sp *= d->out_modes[k];
        cp *= d->in_modes[k];
        int64_t n;
        TTL_TRY(ttl_mul_i64(&n, sp * cp, khkw));
        TTL_TRY(ttl_mul_i64(&n, n, d->ranks[k + 1]));
        most = ttl_max_i64(most, n);
    }
    *elems = most;
    return TTL_STATUS_SUCCESS;
}

/* K into out_K (layout by nhwc) from the packed cores (spatial core first), through tmp0 / tmp1 (each
 * conv_reconstruct_tmp_elems floats). Exec provides
 *     ttl_status_t step(float *out, const float *prev, const float *core, int64_t s_prev, int64_t c_prev,
 *                       int64_t sk, int64_t ck, int64_t khkw, int64_t ra, int64_t rb, int krsc);             */
template <class Exec>
ttl_status_t conv_reconstruct_schedule(float *out_K, float *tmp0, float *tmp1, const ttl_conv_desc_t *d,
                                       const float *cores, int nhwc, Exec &exec) {
    const int64_t khkw = d->kernel_h * d->kernel_w;
    float *tmp[2] = {tmp0, tmp1};
    const float *prev = cores; /* G_0 [kh kw][r_0] */
    const float *core = cores + khkw * d->ranks[0];
    int64_t sp = 1, cp = 1;
    for (int32_t k = 0; k < d->num_cores; ++k) {
        const bool last = k + 1 == d->num_cores;
        float *out = last ? out_K : tmp[k % 2];
        const int64_t sk = d->out_modes[k], ck = d->in_modes[k], ra = d->ranks[k], rb = d->ranks[k + 1];
        TTL_TRY(exec.step(out, prev, core, sp, cp, sk, ck, khkw, ra, rb, last && nhwc ? 1 : 0));
        prev = out;
        core += ra * sk * ck * rb;
        sp *= sk;
        cp *= ck;
    }
    return TTL_STATUS_SUCCESS;
}

#endif /* TTL_CUDA_DENSE_RECONSTRUCT_CUH */
