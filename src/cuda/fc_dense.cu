/*
 * DENSE TT-FC: reconstruct the dense weight on the device once, at plan time, then one cuBLAS SGEMM (SGEMV for
 * batch 1) per call.
 *
 * Reconstruction (dense_reconstruct.cuh) merges the cores left to right and permutes the result into W^T
 * [N, M] row-major, which is W in the column-major order cuBLAS reads: y^T (M x B) = W (M x N) x^T (N x B),
 * i.e. y = x W^T. Plan-time kernels are plain grid-stride loops (one output per thread).
 *
 * Forward: the bias is written into every row of y, then the GEMM (SGEMV for one sample) accumulates (beta = 1);
 * without a bias beta is 0. fp32 (CUBLAS_DEFAULT_MATH, as the bench's cuBLAS row: no TF32 for SGEMM) unless the
 * plan allows TF32 (CUBLAS_TF32_TENSOR_OP_MATH).
 *
 * Also here: the bias broadcast and a pattern fill (non-zero values for autotune inputs).
 */
#include <limits.h>

#include "cuda/dense_reconstruct.cuh"
#include "cuda/fc_internal.h"
#include "cuda/plan_common.h"

#define FC_DENSE_THREADS 256
/* Most blocks of a plan-time grid-stride kernel; the loops cover larger problems. */
#define FC_DENSE_MAX_BLOCKS 65536

// ---------------------------------------------------------------------------------------------------------------
// kernels
// ---------------------------------------------------------------------------------------------------------------

/* Thin kernels over the bodies of dense_reconstruct.cuh. */
static __global__ void fc_merge_core_kernel(float *out, const float *h, const float *g, int64_t rows, int64_t ra,
                                            int64_t cols) {
    fc_merge_core(out, h, g, rows, ra, cols, (int64_t)blockIdx.x * blockDim.x + threadIdx.x,
                  (int64_t)gridDim.x * blockDim.x);
}

static __global__ void fc_permute_kernel(float *wt, const float *h, const fc_permute_shape s) {
    fc_permute(wt, h, s, (int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x);
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

/* The reconstruction schedule's steps as launches on a stream. */
struct fc_stream_exec {
    cudaStream_t stream;
    ttl_status_t merge(float *out, const float *h, const float *g, int64_t rows, int64_t ra, int64_t cols) {
        fc_merge_core_kernel<<<grid_for(rows * cols), FC_DENSE_THREADS, 0, stream>>>(out, h, g, rows, ra, cols);
        TTL_CUDA_CHECK_LAUNCH();
        return TTL_STATUS_SUCCESS;
    }
    ttl_status_t permute(float *wt, const float *h, const fc_permute_shape &s) {
        fc_permute_kernel<<<grid_for(s.M * s.N), FC_DENSE_THREADS, 0, stream>>>(wt, h, s);
        TTL_CUDA_CHECK_LAUNCH();
        return TTL_STATUS_SUCCESS;
    }
};

// ---------------------------------------------------------------------------------------------------------------
// internal entry points
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t fc_dense_build(float **wt_out, const ttl_cuda_fc_layer_t *layer) {
    const ttl_fc_desc_t *d = &layer->desc;
    const int64_t M = d->out_features, N = d->in_features;
    if (M > INT_MAX || N > INT_MAX) return TTL_STATUS_UNSUPPORTED;
    int64_t tmp_elems;
    TTL_TRY(fc_reconstruct_tmp_elems(&tmp_elems, d));
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
    fc_stream_exec exec{stream};
    if (st == TTL_STATUS_SUCCESS)
        st = fc_reconstruct_schedule(wt, tmp0, tmp1, d, layer->cores, layer->core_offset, exec);
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
        cublasSetMathMode(handle->cublas, plan->allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    const float one = 1.0f;
    float beta = 0.0f;
    if (layer->bias != NULL) {
        TTL_TRY(fc_bias_fill(y, layer->bias, plan->batch, M, handle->stream));
        beta = 1.0f;
    }
    if (B == 1) /* one sample: the matrix-vector product (y = W x, W column-major M x N), as a dense layer runs */
        TTL_CUBLAS_TRY(cublasSgemv(handle->cublas, CUBLAS_OP_N, M, N, &one, plan->wt, M, x, 1, &beta, y, 1));
    else
        TTL_CUBLAS_TRY(
            cublasSgemm(handle->cublas, CUBLAS_OP_N, CUBLAS_OP_N, M, B, N, &one, plan->wt, M, x, N, &beta, y, M));
    return TTL_STATUS_SUCCESS;
}
