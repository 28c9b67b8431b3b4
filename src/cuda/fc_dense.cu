/*
 * DENSE TT-FC: reconstruct the dense weight on the device once, at plan time, then one cuBLAS SGEMM per call.
 *
 * Reconstruction merges the cores left to right (docs/tt-layers.md, macs_reconstruct):
 *     H_1 = G_0 as [(m_0 n_0), r_1];  H_{k+1}[(row, (i_k, j_k)), c] = sum_a H_k[row, a] G_k[a, (i_k, j_k), c]
 * so H_d is W with interleaved indices (i_0 j_0 i_1 j_1 ...). A permute kernel writes W^T [N, M] row-major,
 * which is W in the column-major order cuBLAS reads: y^T (M x B) = W (M x N) x^T (N x B), i.e. y = x W^T.
 * Plan-time kernels are plain grid-stride loops (one output per thread, fp32 sums of r_k terms).
 *
 * Forward: the bias is written into every row of y, then the GEMM accumulates (beta = 1); without a bias beta is
 * 0. fp32 (CUBLAS_PEDANTIC_MATH) unless the plan allows TF32 (CUBLAS_TF32_TENSOR_OP_MATH).
 *
 * Also here: the bias broadcast and a pattern fill (non-zero values for autotune inputs).
 */
#include <limits.h>

#include "cuda/fc_internal.h"
#include "cuda/plan_common.h"

#define FC_DENSE_THREADS 256
/* Most blocks of a plan-time grid-stride kernel; the loops cover larger problems. */
#define FC_DENSE_MAX_BLOCKS 65536

// ---------------------------------------------------------------------------------------------------------------
// kernels
// ---------------------------------------------------------------------------------------------------------------

/* out[row, col] = sum_a h[row, a] g[a, col]; h is [rows, ra], g is [ra, cols], out [rows, cols]. */
static __global__ void fc_merge_core_kernel(float *out, const float *h, const float *g, int64_t rows, int64_t ra,
                                            int64_t cols) {
    const int64_t total = rows * cols;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
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
static __global__ void fc_permute_kernel(float *wt, const float *h, const fc_permute_shape s) {
    const int64_t total = s.M * s.N;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
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

/* y[b, i] = bias[i]. */
static __global__ void fc_bias_fill_kernel(float *y, const float *bias, int64_t total, int64_t M) {
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x)
        y[e] = bias[e % M];
}

/* v[i] in [-1, -0.25] U [0.25, 1], never zero. */
static __global__ void fc_pattern_fill_kernel(float *v, int64_t count) {
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < count;
         e += (int64_t)gridDim.x * blockDim.x) {
        const float mag = 0.25f + 0.75f * (float)(((uint64_t)e * 2654435761ULL) & 1023u) / 1023.0f;
        v[e] = (e & 1) ? -mag : mag;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// launchers
// ---------------------------------------------------------------------------------------------------------------

static unsigned grid_for(int64_t total) {
    return (unsigned)ttl_cuda_grid_stride_blocks(total, FC_DENSE_THREADS, FC_DENSE_MAX_BLOCKS);
}

ttl_status_t fc_bias_fill(float *y, const float *bias, int64_t batch, int64_t M, cudaStream_t stream) {
    const int64_t total = batch * M;
    fc_bias_fill_kernel<<<grid_for(total), FC_DENSE_THREADS, 0, stream>>>(y, bias, total, M);
    TTL_CUDA_CHECK_LAUNCH();
    return TTL_STATUS_SUCCESS;
}

ttl_status_t fc_pattern_fill(float *v, int64_t count, cudaStream_t stream) {
    fc_pattern_fill_kernel<<<grid_for(count), FC_DENSE_THREADS, 0, stream>>>(v, count);
    TTL_CUDA_CHECK_LAUNCH();
    return TTL_STATUS_SUCCESS;
}

/* Runs the merge chain into the larger of two temporaries and the permute into `wt`. */
static ttl_status_t reconstruct(float *wt, float *tmp0, float *tmp1, const ttl_cuda_fc_layer_t *layer,
                                cudaStream_t stream) {
    const ttl_fc_desc_t *d = &layer->desc;
    const float *h = layer->cores; /* H_1 = G_0, [(m_0 n_0), r_1] */
    float *bufs[2] = {tmp0, tmp1};
    int64_t rows = d->out_modes[0] * d->in_modes[0];
    for (int32_t k = 1; k < d->num_cores; ++k) {
        const int64_t ra = d->ranks[k], cols = d->out_modes[k] * d->in_modes[k] * d->ranks[k + 1];
        float *out = bufs[k & 1];
        fc_merge_core_kernel<<<grid_for(rows * cols), FC_DENSE_THREADS, 0, stream>>>(
            out, h, layer->cores + layer->core_offset[k], rows, ra, cols);
        TTL_CUDA_CHECK_LAUNCH();
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
    fc_permute_kernel<<<grid_for(s.M * s.N), FC_DENSE_THREADS, 0, stream>>>(wt, h, s);
    TTL_CUDA_CHECK_LAUNCH();
    return TTL_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// internal entry points
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t fc_dense_build(float **wt_out, const ttl_cuda_fc_layer_t *layer) {
    const ttl_fc_desc_t *d = &layer->desc;
    const int64_t M = d->out_features, N = d->in_features;
    if (M > INT_MAX || N > INT_MAX) return TTL_STATUS_UNSUPPORTED;
    /* Largest merged H_{k+1} = prod_{j <= k}(m_j n_j) r_{k+1}, for k >= 1 (H_1 is the core itself). */
    int64_t tmp_elems = 1, lead = d->out_modes[0] * d->in_modes[0];
    for (int32_t k = 1; k < d->num_cores; ++k) {
        int64_t size;
        TTL_TRY(ttl_mul_i64(&lead, lead, d->out_modes[k] * d->in_modes[k]));
        TTL_TRY(ttl_mul_i64(&size, lead, d->ranks[k + 1]));
        tmp_elems = ttl_max_i64(tmp_elems, size);
    }
    size_t wt_bytes, tmp_bytes;
    TTL_TRY(ttl_bytes(&wt_bytes, M * N, sizeof(float)));
    TTL_TRY(ttl_bytes(&tmp_bytes, tmp_elems, sizeof(float)));
    cudaStream_t stream = layer->handle->stream;
    float *wt = NULL, *tmp0 = NULL, *tmp1 = NULL;
    ttl_status_t st = TTL_STATUS_SUCCESS;
    if (cudaMalloc((void **)&wt, wt_bytes) != cudaSuccess) st = TTL_STATUS_OUT_OF_MEMORY;
    if (st == TTL_STATUS_SUCCESS && d->num_cores > 1 &&
        (cudaMalloc((void **)&tmp0, tmp_bytes) != cudaSuccess ||
         cudaMalloc((void **)&tmp1, tmp_bytes) != cudaSuccess))
        st = TTL_STATUS_OUT_OF_MEMORY;
    if (st == TTL_STATUS_SUCCESS) st = reconstruct(wt, tmp0, tmp1, layer, stream);
    /* plan time: wait, so the temporaries can go and a failure is reported here */
    if (st == TTL_STATUS_SUCCESS && cudaStreamSynchronize(stream) != cudaSuccess) st = TTL_STATUS_CUDA_ERROR;
    if (tmp0 != NULL) (void)cudaFree(tmp0);
    if (tmp1 != NULL) (void)cudaFree(tmp1);
    if (st != TTL_STATUS_SUCCESS) {
        (void)cudaGetLastError(); /* a failed allocation must not stay the sticky "last error" of later launches */
        if (wt != NULL) (void)cudaFree(wt);
        return st;
    }
    *wt_out = wt;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t fc_dense_run(const ttl_cuda_fc_plan_t *plan, float *y, const float *x) {
    const ttl_cuda_fc_layer_t *layer = plan->layer;
    const ttl_cuda_handle_t *handle = layer->handle;
    const int M = (int)layer->desc.out_features, N = (int)layer->desc.in_features, B = (int)plan->batch;
    TTL_CUBLAS_TRY(
        cublasSetMathMode(handle->cublas, plan->allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
    const float one = 1.0f;
    float beta = 0.0f;
    if (layer->bias != NULL) {
        TTL_TRY(fc_bias_fill(y, layer->bias, plan->batch, M, handle->stream));
        beta = 1.0f;
    }
    TTL_CUBLAS_TRY(
        cublasSgemm(handle->cublas, CUBLAS_OP_N, CUBLAS_OP_N, M, B, N, &one, plan->wt, M, x, N, &beta, y, M));
    return TTL_STATUS_SUCCESS;
}
