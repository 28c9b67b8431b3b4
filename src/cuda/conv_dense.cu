/*
 * DENSE TT-conv: reconstruct K from the cores once at plan time, then cuDNN's convolution.
 *
 *   K is [S, C, kh, kw] for NCHW activations, [S, kh, kw, C] for NHWC (cuDNN's filter layout matching the
 *   activations); x and y as in ttl.h.
 *
 * Reconstruction (dense_reconstruct.cuh) runs left to right over the channel cores, one thread per element
 * (double accumulation, fixed order); its temporaries live only during plan creation. The forward call is
 * cudnnConvolutionForward (cross-correlation, fp32; CUDNN_FMA_MATH unless TF32 is allowed) with the deterministic
 * algorithm cudnnFindConvolutionForwardAlgorithmEx timed fastest at plan time, then a bias kernel. The workspace is
 * cuDNN's for that algorithm; K is the plan's persistent memory.
 */
#include <stdint.h>

#include "cuda/conv_internal.h"
#include "cuda/dense_reconstruct.cuh"
#include "cuda/plan_common.h"

namespace {

// ---------------------------------------------------------------------------------------------------------------
// kernels
// ---------------------------------------------------------------------------------------------------------------

__global__ void reconstruct_step_kernel(float *__restrict__ out, const float *__restrict__ prev,
                                        const float *__restrict__ core, int64_t s_prev, int64_t c_prev, int64_t sk,
                                        int64_t ck, int64_t khkw, int64_t ra, int64_t rb, int krsc) {
    conv_reconstruct_step(out, prev, core, s_prev, c_prev, sk, ck, khkw, ra, rb, krsc,
                          (int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x);
}

// y[b, s, ...] += bias[s] over the whole output.
__global__ void add_bias_kernel(float *__restrict__ y, const float *__restrict__ bias, int64_t total, int64_t S,
                                int64_t ohw, int nhwc) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t s = nhwc ? i % S : (i / ohw) % S;
        y[i] += __ldg(bias + s);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// launchers
// ---------------------------------------------------------------------------------------------------------------

constexpr int kThreads = 256;

int blocks_for(int64_t n, int sm_count) { return ttl_cuda_grid_stride_blocks(n, kThreads, (int64_t)sm_count * 32); }

// The reconstruction schedule's steps as launches on a stream.
struct conv_stream_exec {
    cudaStream_t stream;
    int sm_count;
    ttl_status_t step(float *out, const float *prev, const float *core, int64_t s_prev, int64_t c_prev, int64_t sk,
                      int64_t ck, int64_t khkw, int64_t ra, int64_t rb, int krsc) {
        const int64_t n = s_prev * sk * c_prev * ck * khkw * rb;
        reconstruct_step_kernel<<<blocks_for(n, sm_count), kThreads, 0, stream>>>(out, prev, core, s_prev, c_prev,
                                                                                  sk, ck, khkw, ra, rb, krsc);
        return cudaGetLastError() == cudaSuccess ? TTL_STATUS_SUCCESS : TTL_STATUS_CUDA_ERROR;
    }
};

// Builds K into d_K on `stream` and waits for it (plan time).
ttl_status_t reconstruct(float *d_K, const ttl_cuda_conv_layer_t *l, int nhwc) {
    int64_t big = 0;
    TTL_TRY(conv_reconstruct_tmp_elems(&big, &l->desc));
    float *tmp[2] = {nullptr, nullptr};
    ttl_status_t st = TTL_STATUS_SUCCESS;
    if (big > 0) {
        size_t bytes;
        TTL_TRY(ttl_bytes(&bytes, big, sizeof(float)));
        if (cudaMalloc((void **)&tmp[0], bytes) != cudaSuccess ||
            cudaMalloc((void **)&tmp[1], bytes) != cudaSuccess) {
            (void)cudaGetLastError(); /* a failed allocation must not surface at a later launch check */
            st = TTL_STATUS_OUT_OF_MEMORY;
        }
    }
    conv_stream_exec exec{l->handle->stream, l->handle->sm_count};
    if (st == TTL_STATUS_SUCCESS)
        st = conv_reconstruct_schedule(d_K, tmp[0], tmp[1], &l->desc, l->d_cores, nhwc, exec);
    if (cudaStreamSynchronize(l->handle->stream) != cudaSuccess && st == TTL_STATUS_SUCCESS)
        st = TTL_STATUS_CUDA_ERROR;
    cudaFree(tmp[0]);
    cudaFree(tmp[1]);
    return st;
}

int as_int(int64_t v) { return (int)v; }

// Descriptors for x, y, K and the convolution; UNSUPPORTED beyond cuDNN's limits: int dimensions, and at most
// 2^31 - 1 elements in a tensor or filter.
ttl_status_t make_descriptors(ttl_conv_dense_t *dn, const ttl_conv_geom_t &g, int32_t allow_tf32) {
    const int64_t dims[] = {g.B, g.C, g.H, g.W, g.S, g.OH, g.OW};
    for (int64_t v : dims)
        if (v > INT32_MAX) return TTL_STATUS_UNSUPPORTED;
    const double elems[] = {(double)g.B * g.C * g.H * g.W, (double)g.B * g.S * g.OH * g.OW,
                            (double)g.S * g.C * g.kh * g.kw};
    for (double e : elems)
        if (e > (double)INT32_MAX) return TTL_STATUS_UNSUPPORTED;
    const cudnnTensorFormat_t fmt = g.nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    TTL_CUDNN_TRY(cudnnCreateTensorDescriptor(&dn->x_desc));
    TTL_CUDNN_TRY(cudnnCreateTensorDescriptor(&dn->y_desc));
    TTL_CUDNN_TRY(cudnnCreateFilterDescriptor(&dn->w_desc));
    TTL_CUDNN_TRY(cudnnCreateConvolutionDescriptor(&dn->conv_desc));
    TTL_CUDNN_TRY(cudnnSetTensor4dDescriptor(dn->x_desc, fmt, CUDNN_DATA_FLOAT, as_int(g.B), as_int(g.C),
                                             as_int(g.H), as_int(g.W)));
    TTL_CUDNN_TRY(cudnnSetTensor4dDescriptor(dn->y_desc, fmt, CUDNN_DATA_FLOAT, as_int(g.B), as_int(g.S),
                                             as_int(g.OH), as_int(g.OW)));
    TTL_CUDNN_TRY(
        cudnnSetFilter4dDescriptor(dn->w_desc, CUDNN_DATA_FLOAT, fmt, as_int(g.S), as_int(g.C), g.kh, g.kw));
    TTL_CUDNN_TRY(cudnnSetConvolution2dDescriptor(dn->conv_desc, g.ph, g.pw, g.sh, g.sw, g.dh, g.dw,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    TTL_CUDNN_TRY(cudnnSetConvolutionMathType(dn->conv_desc, allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    /* cuDNN must agree on the output size */
    int n = 0, c = 0, h = 0, w = 0;
    TTL_CUDNN_TRY(cudnnGetConvolution2dForwardOutputDim(dn->conv_desc, dn->x_desc, dn->w_desc, &n, &c, &h, &w));
    if (n != g.B || c != g.S || h != g.OH || w != g.OW) return TTL_STATUS_UNSUPPORTED;
    return TTL_STATUS_SUCCESS;
}

constexpr size_t kFindWorkspaceCap = (size_t)512 << 20; /* largest scratch offered to the algorithm search */

// Times cuDNN's algorithms on scratch buffers (x filled with a nonzero pattern) and keeps the fastest
// deterministic one whose workspace is at most `limit` bytes (0: no limit but the search's own cap).
ttl_status_t find_algorithm(ttl_conv_dense_t *dn, const ttl_cuda_conv_layer_t *l, const ttl_conv_geom_t &g,
                            int32_t allow_tf32, size_t limit) {
    cudnnHandle_t cudnn = l->handle->cudnn;
    size_t x_bytes, y_bytes, ws_cap = 0;
    TTL_TRY(ttl_bytes(&x_bytes, g.B * g.C * g.H * g.W, sizeof(float)));
    TTL_TRY(ttl_bytes(&y_bytes, g.B * g.S * g.OH * g.OW, sizeof(float)));
    const size_t cap = limit > 0 && limit < kFindWorkspaceCap ? limit : kFindWorkspaceCap;
    for (int a = 0; a < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; ++a) {
        size_t s = 0;
        if (cudnnGetConvolutionForwardWorkspaceSize(cudnn, dn->x_desc, dn->w_desc, dn->conv_desc, dn->y_desc,
                                                    (cudnnConvolutionFwdAlgo_t)a, &s) == CUDNN_STATUS_SUCCESS &&
            s <= cap && s > ws_cap)
            ws_cap = s;
    }
    void *x = nullptr, *y = nullptr, *ws = nullptr;
    ttl_status_t st = TTL_STATUS_SUCCESS;
    if (cudaMalloc(&x, x_bytes) != cudaSuccess || cudaMalloc(&y, y_bytes) != cudaSuccess) {
        (void)cudaGetLastError(); /* a failed allocation must not surface at a later launch check */
        st = TTL_STATUS_OUT_OF_MEMORY;
    }
    if (st == TTL_STATUS_SUCCESS && ws_cap > 0 && cudaMalloc(&ws, ws_cap) != cudaSuccess) {
        (void)cudaGetLastError(); /* search without scratch instead */
        ws = nullptr;
        ws_cap = 0;
    }
    if (st == TTL_STATUS_SUCCESS && cudaMemsetAsync(x, 0x3c, x_bytes, l->handle->stream) != cudaSuccess)
        st = TTL_STATUS_CUDA_ERROR;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned = 0;
    if (st == TTL_STATUS_SUCCESS &&
        cudnnFindConvolutionForwardAlgorithmEx(cudnn, dn->x_desc, x, dn->w_desc, dn->d_K, dn->conv_desc, dn->y_desc,
                                               y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf, ws,
                                               ws_cap) != CUDNN_STATUS_SUCCESS)
        st = TTL_STATUS_CUDNN_ERROR;
    if (cudaStreamSynchronize(l->handle->stream) != cudaSuccess && st == TTL_STATUS_SUCCESS)
        st = TTL_STATUS_CUDA_ERROR;
    cudaFree(x);
    cudaFree(y);
    cudaFree(ws);
    TTL_TRY(st);
    /* results come sorted by time */
    for (int i = 0; i < returned; ++i) {
        const cudnnConvolutionFwdAlgoPerf_t &r = perf[i];
        if (r.status != CUDNN_STATUS_SUCCESS || r.determinism != CUDNN_DETERMINISTIC || r.memory > ws_cap) continue;
        /* never CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION (fp16 inputs); TF32 tensor ops only when allowed */
        const bool fp32_math = r.mathType == CUDNN_FMA_MATH || r.mathType == CUDNN_DEFAULT_MATH;
        if (!fp32_math && !(allow_tf32 && r.mathType == CUDNN_TENSOR_OP_MATH)) continue;
        dn->algo = r.algo;
        if (allow_tf32) TTL_CUDNN_TRY(cudnnSetConvolutionMathType(dn->conv_desc, r.mathType));
        TTL_CUDNN_TRY(cudnnGetConvolutionForwardWorkspaceSize(cudnn, dn->x_desc, dn->w_desc, dn->conv_desc,
                                                              dn->y_desc, dn->algo, &dn->ws_bytes));
        if (dn->ws_bytes > ws_cap) continue; /* the math type changed what it needs */
        dn->ready = 1;
        return TTL_STATUS_SUCCESS;
    }
    return TTL_STATUS_UNSUPPORTED;
}

} // namespace

// ---------------------------------------------------------------------------------------------------------------
// internal entry points
// ---------------------------------------------------------------------------------------------------------------

extern "C" void ttl_conv_dense_release(ttl_conv_dense_t *dn) {
    if (dn->x_desc != nullptr) cudnnDestroyTensorDescriptor(dn->x_desc);
    if (dn->y_desc != nullptr) cudnnDestroyTensorDescriptor(dn->y_desc);
    if (dn->w_desc != nullptr) cudnnDestroyFilterDescriptor(dn->w_desc);
    if (dn->conv_desc != nullptr) cudnnDestroyConvolutionDescriptor(dn->conv_desc);
    cudaFree(dn->d_K);
    *dn = ttl_conv_dense_t{};
}

extern "C" ttl_status_t ttl_conv_dense_setup(ttl_cuda_conv_plan_t *p, int32_t allow_tf32) {
    const ttl_cuda_conv_layer_t *l = p->layer;
    const ttl_conv_geom_t &g = p->geom;
    ttl_conv_dense_t *dn = &p->dense;
    int64_t k_count;
    TTL_TRY(ttl_mul_i64(&k_count, g.S * g.C, (int64_t)g.kh * g.kw));
    size_t k_bytes;
    TTL_TRY(ttl_bytes(&k_bytes, k_count, sizeof(float)));
    if (cudaMalloc((void **)&dn->d_K, k_bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        return TTL_STATUS_OUT_OF_MEMORY;
    }
    TTL_TRY(reconstruct(dn->d_K, l, g.nhwc));
    if (g.B > 0) {
        TTL_TRY(make_descriptors(dn, g, allow_tf32));
        TTL_TRY(find_algorithm(dn, l, g, allow_tf32, p->ws_limit));
    }
    p->info.algo = TTL_ALGO_DENSE;
    p->info.order = TTL_ORDER_AUTO;
    p->info.workspace_bytes = dn->ready ? dn->ws_bytes : 0;
    p->info.persistent_bytes = k_bytes;
    int64_t macs;
    TTL_TRY(ttl_mul_i64(&macs, k_count, g.B * g.OH * g.OW));
    p->info.macs = macs;
    return TTL_STATUS_SUCCESS;
}

extern "C" ttl_status_t ttl_conv_dense_forward(const ttl_cuda_conv_plan_t *p, float *y, const float *x, void *ws) {
    const ttl_conv_dense_t *dn = &p->dense;
    const ttl_cuda_conv_layer_t *l = p->layer;
    const ttl_conv_geom_t &g = p->geom;
    if (!dn->ready) return TTL_STATUS_UNSUPPORTED;
    const float one = 1.0f, zero = 0.0f;
    TTL_CUDNN_TRY(cudnnConvolutionForward(l->handle->cudnn, &one, dn->x_desc, x, dn->w_desc, dn->d_K, dn->conv_desc,
                                          dn->algo, ws, dn->ws_bytes, &zero, dn->y_desc, y));
    if (l->d_bias != nullptr) {
        const int64_t ohw = g.OH * g.OW, total = g.B * g.S * ohw;
        add_bias_kernel<<<blocks_for(total, l->handle->sm_count), kThreads, 0, l->handle->stream>>>(
            y, l->d_bias, total, g.S, ohw, g.nhwc);
        TTL_CUDA_CHECK_LAUNCH();
    }
    return TTL_STATUS_SUCCESS;
}
