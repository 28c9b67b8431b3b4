/*
 * GPU runner (issue 4): for each case and batch, in one run on one device,
 *   - the dense fp32 baseline: cuBLAS SGEMM (and SGEMV at batch 1, the faster counts) of the reconstructed W,
 *     or cuDNN's best forward algorithm for the reconstructed K (cudnnFindConvolutionForwardAlgorithmEx with
 *     CUDNN_FMA_MATH: no tensor cores), plus the same with TF32 tensor cores as an extra column;
 *   - every libttl CUDA algorithm (a plan that answers UNSUPPORTED is an n/a row), then AUTO, then AUTO with
 *     autotuning; for convs the same again with the TT steps on tensor cores in 3xTF32;
 * each checked before timing against the dense output (whole batch) and the CPU reference (first samples),
 * then timed with CUDA events after warm-up, median of repeats, inputs and outputs rotating through pools
 * larger than twice the L2 cache. Ceilings measured at start: a device-to-device copy (bytes read + written)
 * and an 8192^3 SGEMM; roofline time = max(2 macs / SGEMM rate, bytes / copy rate), bytes = input + output +
 * weights once. Rows carry issue 4's targets, met or missed by how much.
 */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "cuda/gpu_util.h"
#include "data.h"
#include "report.h"
#include "runners.h"
#include "ttl/ttl_cuda.h"

#define CHECK_TOLERANCE 1e-4
#define MAX_REPEATS 100
#define MIN_REPEATS 10
#define WARMUP_CALLS 3
#define TARGET_TIMING_MS 25.0 // timed calls per row add up to about this much
#define SLOW_CALL_MS 20.0     // calls slower than this are timed only SLOW_REPEATS times
#define SLOW_REPEATS 3
#define SLICE_ALIGN ((size_t)256) // every rotated buffer starts 256-byte aligned
#define MAX_SLICES 65536
#define CUDNN_WS_BYTES ((size_t)1 << 30)
#define COPY_BYTES ((size_t)1 << 30)
#define PEAK_GEMM_N 8192

// ---- error checks -----------------------------------------------------------------------------------------------

#define BENCH_CUBLAS(call)                                                                                         \
    do {                                                                                                           \
        cublasStatus_t bench_st_ = (call);                                                                         \
        if (bench_st_ != CUBLAS_STATUS_SUCCESS) {                                                                  \
            fprintf(stderr, "ttl-bench: %s:%d: %s: %s\n", __FILE__, __LINE__, #call,                               \
                    cublasGetStatusString(bench_st_));                                                             \
            exit(1);                                                                                               \
        }                                                                                                          \
    } while (0)

#define BENCH_CUDNN(call)                                                                                          \
    do {                                                                                                           \
        cudnnStatus_t bench_st_ = (call);                                                                          \
        if (bench_st_ != CUDNN_STATUS_SUCCESS) {                                                                   \
            fprintf(stderr, "ttl-bench: %s:%d: %s: %s\n", __FILE__, __LINE__, #call,                               \
                    cudnnGetErrorString(bench_st_));                                                               \
            exit(1);                                                                                               \
        }                                                                                                          \
    } while (0)

// ---- device state -----------------------------------------------------------------------------------------------

typedef struct gpu {
    cudaStream_t stream;
    cublasHandle_t blas;
    cudnnHandle_t dnn;
    ttl_cuda_handle_t *ttl;
    cudaEvent_t start[MAX_REPEATS], stop[MAX_REPEATS];
    size_t l2_bytes;
    double sgemm_flops, tf32_flops, copy_bytes_per_s; // measured ceilings, per second
    void *dnn_ws;
} gpu_t;

// One case at one batch, with everything a timed call needs.
typedef struct gpu_problem {
    gpu_t *g;
    const bench_case_t *c;
    const char *only_algo; // --algo: the one libttl row to run, or NULL
    int is_fc;
    ttl_fc_desc_t fc;
    ttl_conv_desc_t conv;
    ttl_conv_shape_t shape;
    int64_t batch, x_sample, y_sample, M, N;
    size_t x_bytes, y_bytes, x_stride, y_stride; // stride: bytes between rotated slices
    char *x_pool, *y_pool;
    int nx, ny;
    int next_slice; /* where timing continues: slices rotate across rows, so no row finds its inputs in L2 */
    float *d_dense; // W [M, N] or K [S, C, kh, kw]
    // dense baseline
    int use_gemv;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgo_t dnn_algo;
    size_t dnn_algo_ws;
    // libttl plan under test
    const ttl_cuda_fc_plan_t *fc_plan;
    const ttl_cuda_conv_plan_t *conv_plan;
    void *ws;
    size_t ws_bytes;
    ttl_status_t status;
} gpu_problem_t;

static float *x_slice(const gpu_problem_t *p, int i) {
    return (float *)(p->x_pool + (size_t)(i % p->nx) * p->x_stride);
}
static float *y_slice(const gpu_problem_t *p, int i) {
    return (float *)(p->y_pool + (size_t)(i % p->ny) * p->y_stride);
}

// ---- timing -----------------------------------------------------------------------------------------------------

typedef int (*gpu_call_fn)(gpu_problem_t *p, int iter);

// Median event-timed milliseconds of fn after warm-up. Calls are queued back to back (no host sync between
// them), each between its own pair of events, so the time is the device's and launch gaps count only when the
// host cannot keep ahead.
static int gpu_time(double *median_ms, int *repeats, gpu_call_fn fn, gpu_problem_t *p) {
    gpu_t *g = p->g;
    int iter = p->next_slice;
    for (int i = 0; i < WARMUP_CALLS; ++i)
        if (fn(p, iter++)) return 1;
    BENCH_CUDA(cudaEventRecord(g->start[0], g->stream));
    for (int i = 0; i < WARMUP_CALLS; ++i)
        if (fn(p, iter++)) return 1;
    BENCH_CUDA(cudaEventRecord(g->stop[0], g->stream));
    BENCH_CUDA(cudaEventSynchronize(g->stop[0]));
    float est = 0.0f;
    BENCH_CUDA(cudaEventElapsedTime(&est, g->start[0], g->stop[0]));
    est /= WARMUP_CALLS;
    int n = est > 0.0f ? (int)(TARGET_TIMING_MS / est) : MAX_REPEATS;
    if (n < MIN_REPEATS)
        n = est > SLOW_CALL_MS ? SLOW_REPEATS : MIN_REPEATS; /* a slow path must not eat the suite */
    if (n > MAX_REPEATS) n = MAX_REPEATS;

    for (int i = 0; i < n; ++i) {
        BENCH_CUDA(cudaEventRecord(g->start[i], g->stream));
        if (fn(p, iter++)) return 1;
        BENCH_CUDA(cudaEventRecord(g->stop[i], g->stream));
    }
    BENCH_CUDA(cudaStreamSynchronize(g->stream));
    BENCH_CUDA(cudaGetLastError());
    p->next_slice = iter % p->nx; /* the next row goes on from here: no row finds its inputs in L2 */
    double samples[MAX_REPEATS];
    for (int i = 0; i < n; ++i) {
        float ms = 0.0f;
        BENCH_CUDA(cudaEventElapsedTime(&ms, g->start[i], g->stop[i]));
        samples[i] = ms;
    }
    // Insertion sort: n <= MAX_REPEATS.
    for (int i = 1; i < n; ++i)
        for (int j = i; j > 0 && samples[j - 1] > samples[j]; --j) {
            const double t = samples[j];
            samples[j] = samples[j - 1];
            samples[j - 1] = t;
        }
    *median_ms = n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
    *repeats = n;
    return 0;
}

// ---- ceilings ---------------------------------------------------------------------------------------------------

static double time_copy(gpu_t *g, void *dst, const void *src, size_t bytes) {
    float best = INFINITY;
    for (int i = 0; i < 8; ++i) {
        float ms;
        BENCH_CUDA(cudaEventRecord(g->start[0], g->stream));
        BENCH_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g->stream));
        BENCH_CUDA(cudaEventRecord(g->stop[0], g->stream));
        BENCH_CUDA(cudaEventSynchronize(g->stop[0]));
        BENCH_CUDA(cudaEventElapsedTime(&ms, g->start[0], g->stop[0]));
        if (i > 0 && ms < best) best = ms; // the first is warm-up
    }
    return best;
}

static double time_peak_gemm(gpu_t *g, const float *a, const float *b, float *c, cublasMath_t math) {
    const float one = 1.0f, zero = 0.0f;
    const int n = PEAK_GEMM_N;
    BENCH_CUBLAS(cublasSetMathMode(g->blas, math));
    float best = INFINITY;
    for (int i = 0; i < 6; ++i) {
        float ms;
        BENCH_CUDA(cudaEventRecord(g->start[0], g->stream));
        BENCH_CUBLAS(cublasSgemm(g->blas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, n, b, n, &zero, c, n));
        BENCH_CUDA(cudaEventRecord(g->stop[0], g->stream));
        BENCH_CUDA(cudaEventSynchronize(g->stop[0]));
        BENCH_CUDA(cudaEventElapsedTime(&ms, g->start[0], g->stop[0]));
        if (i > 0 && ms < best) best = ms;
    }
    BENCH_CUBLAS(cublasSetMathMode(g->blas, CUBLAS_DEFAULT_MATH));
    return 2.0 * (double)n * n * n / (best * 1e-3);
}

// The best of a few runs: a ceiling is what the device can reach.
static void measure_ceilings(gpu_t *g) {
    void *a, *b;
    BENCH_CUDA(cudaMalloc(&a, COPY_BYTES));
    BENCH_CUDA(cudaMalloc(&b, COPY_BYTES));
    bench_gpu_fill_random(a, (int64_t)(COPY_BYTES / sizeof(float)), 1, 1.0f, g->stream);
    g->copy_bytes_per_s = 2.0 * (double)COPY_BYTES / (time_copy(g, b, a, COPY_BYTES) * 1e-3);

    const size_t mat = (size_t)PEAK_GEMM_N * PEAK_GEMM_N * sizeof(float); // 256 MiB: three fit in the buffers
    char *ca = a, *cb = b;
    bench_gpu_fill_random((float *)cb, (int64_t)(mat / sizeof(float)), 2, 1.0f, g->stream);
    g->sgemm_flops = time_peak_gemm(g, (float *)ca, (float *)cb, (float *)(cb + mat), CUBLAS_DEFAULT_MATH);
    g->tf32_flops = time_peak_gemm(g, (float *)ca, (float *)cb, (float *)(cb + mat), CUBLAS_TF32_TENSOR_OP_MATH);
    BENCH_CUDA(cudaFree(a));
    BENCH_CUDA(cudaFree(b));
}

// ---- dense baselines --------------------------------------------------------------------------------------------

static int dense_fc_call(gpu_problem_t *p, int iter) {
    const float one = 1.0f, zero = 0.0f;
    const float *x = x_slice(p, iter);
    float *y = y_slice(p, iter);
    const int M = (int)p->M, N = (int)p->N, B = (int)p->batch;
    // Row-major y[B, M] = x[B, N] W^T is column-major y^T = W^T' x^T with W seen as column-major [N, M].
    if (p->use_gemv)
        BENCH_CUBLAS(cublasSgemv(p->g->blas, CUBLAS_OP_T, N, M, &one, p->d_dense, N, x, 1, &zero, y, 1));
    else
        BENCH_CUBLAS(
            cublasSgemm(p->g->blas, CUBLAS_OP_T, CUBLAS_OP_N, M, B, N, &one, p->d_dense, N, x, N, &zero, y, M));
    return 0;
}

static int dense_conv_call(gpu_problem_t *p, int iter) {
    const float one = 1.0f, zero = 0.0f;
    BENCH_CUDNN(cudnnConvolutionForward(p->g->dnn, &one, p->xd, x_slice(p, iter), p->wd, p->d_dense, p->cd,
                                        p->dnn_algo, p->g->dnn_ws, p->dnn_algo_ws, &zero, p->yd, y_slice(p, iter)));
    return 0;
}

static const char *dnn_algo_name(cudnnConvolutionFwdAlgo_t a) {
    switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return "implicit_gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return "implicit_precomp_gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return "gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return "direct";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return "fft";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return "fft_tiling";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return "winograd";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return "winograd_nonfused";
    default: return "unknown";
    }
}

// cuDNN's fastest algorithm under `math`. For the strict fp32 column the descriptor stays CUDNN_FMA_MATH (no
// tensor cores) and results reporting tensor-op math are skipped; for TF32 it takes the math type found.
static void find_dnn_algo(gpu_problem_t *p, cudnnMathType_t math) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int found = 0;
    BENCH_CUDNN(cudnnSetConvolutionMathType(p->cd, math));
    BENCH_CUDNN(cudnnFindConvolutionForwardAlgorithmEx(p->g->dnn, p->xd, x_slice(p, 0), p->wd, p->d_dense, p->cd,
                                                       p->yd, y_slice(p, 0), CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                       &found, perf, p->g->dnn_ws, CUDNN_WS_BYTES));
    const int strict = math == CUDNN_FMA_MATH;
    for (int i = 0; i < found; ++i) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
        if (perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue; /* fp16 inputs: neither column */
        if (strict && perf[i].mathType == CUDNN_TENSOR_OP_MATH) continue;
        p->dnn_algo = perf[i].algo;
        p->dnn_algo_ws = perf[i].memory;
        if (!strict) BENCH_CUDNN(cudnnSetConvolutionMathType(p->cd, perf[i].mathType));
        return;
    }
    fprintf(stderr, "ttl-bench: %s: cuDNN found no forward algorithm\n", p->c->name);
    exit(1);
}

// ---- libttl plans -----------------------------------------------------------------------------------------------

static int plan_call(gpu_problem_t *p, int iter) {
    p->status = p->fc_plan
                    ? ttl_cuda_fc_forward(p->fc_plan, y_slice(p, iter), x_slice(p, iter), p->ws, p->ws_bytes)
                    : ttl_cuda_conv_forward(p->conv_plan, y_slice(p, iter), x_slice(p, iter), p->ws, p->ws_bytes);
    return p->status != TTL_STATUS_SUCCESS;
}

typedef struct gpu_algo {
    const char *name;
    ttl_cuda_plan_opts_t opts;
} gpu_algo_t;

// Named algorithms first, AUTO last: AUTO's rows are judged against the fastest of the named rows above them.
// The rows with TF32 tensor cores in 3xTF32 (ttl_cuda_plan_opts_t.allow_3xtf32) come after the fp32 AUTO rows, so
// that those are judged against FFMA algorithms only and auto_3xtf32 against every algorithm.
static const gpu_algo_t k_fc_algos[] = {
    {"fused", {TTL_ALGO_FUSED, TTL_ORDER_AUTO, 0, 0, 0, 0}},
    {"sequential", {TTL_ALGO_SEQUENTIAL, TTL_ORDER_AUTO, 0, 0, 0, 0}},
    {"sequential_blas", {TTL_ALGO_SEQUENTIAL_BLAS, TTL_ORDER_AUTO, 0, 0, 0, 0}},
    {"dense", {TTL_ALGO_DENSE, TTL_ORDER_AUTO, 0, 0, 0, 0}},
    {"auto", {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, 0, 0, 0}},
    {"auto_tuned", {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 1, 0, 0, 0}},
    {"fused_3xtf32", {TTL_ALGO_FUSED, TTL_ORDER_AUTO, 0, 0, 0, 1}},
    {"sequential_3xtf32", {TTL_ALGO_SEQUENTIAL, TTL_ORDER_AUTO, 0, 0, 0, 1}},
    {"auto_3xtf32", {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, 0, 0, 1}},
    {"auto_tuned_3xtf32", {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 1, 0, 0, 1}},
};
static const gpu_algo_t k_conv_algos[] = {
    {"spatial_first", {TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 0, 0, 0}},
    {"channels_first", {TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 0, 0, 0, 0}},
    {"dense", {TTL_ALGO_DENSE, TTL_ORDER_AUTO, 0, 0, 0, 0}},
    {"auto", {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, 0, 0, 0}},
    {"auto_tuned", {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 1, 0, 0, 0}},
    {"spatial_first_3xtf32", {TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 0, 0, 1}},
    {"channels_first_3xtf32", {TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 0, 0, 0, 1}},
    {"auto_3xtf32", {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, 0, 0, 1}},
    {"auto_tuned_3xtf32", {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 1, 0, 0, 1}},
};

// ---- checks and rows --------------------------------------------------------------------------------------------

typedef struct gpu_case_data {
    const float *ref_y; // CPU reference of the first ref_samples samples
    int64_t ref_samples;
    float *h_y, *h_dense_y; // host copies of the whole batch's output
} gpu_case_data_t;

// Errors of slice 0's output against the dense output and the reference; counts a failure.
static void check_output(bench_row_t *row, const gpu_problem_t *p, const gpu_case_data_t *d, int is_dense,
                         int *failures) {
    BENCH_CUDA(cudaStreamSynchronize(p->g->stream));
    float *dst = is_dense ? d->h_dense_y : d->h_y;
    BENCH_CUDA(cudaMemcpy(dst, y_slice(p, 0), p->y_bytes, cudaMemcpyDeviceToHost));
    const int64_t n = d->ref_samples < p->batch ? d->ref_samples : p->batch;
    row->rel_err = bench_rel_err(dst, d->ref_y, n * p->y_sample);
    if (!is_dense) row->rel_err_dense = bench_rel_err(dst, d->h_dense_y, p->batch * p->y_sample);
    const int ok = row->rel_err <= CHECK_TOLERANCE && (is_dense || row->rel_err_dense <= CHECK_TOLERANCE);
    snprintf(row->check, sizeof row->check, "%sref %lld/%lld%s", ok ? "" : "FAIL ", (long long)n,
             (long long)p->batch, is_dense ? "" : ", dense all");
    if (!ok) ++*failures;
}

static void row_common(bench_row_t *row, const gpu_problem_t *p, const ttl_fc_stats_t *fs,
                       const ttl_conv_stats_t *cs) {
    bench_row_init(row);
    row->case_name = p->c->name;
    row->op = p->is_fc ? "fc" : "conv";
    bench_case_shape_text(row->shape, (int)sizeof row->shape, p->c);
    row->batch = p->batch;
    row->params = p->is_fc ? fs->params : cs->params;
    row->compression = p->is_fc ? fs->compression : cs->compression;
}

// Time-derived columns: GFLOP/s, GB/s, roofline.
static void derive(bench_row_t *row, const gpu_problem_t *p) {
    const double flops = 2.0 * (double)row->macs;
    const double bytes = (double)(p->x_bytes + p->y_bytes + row->weight_bytes);
    row->gflops = flops / (row->ms * 1e6);
    row->gbs = bytes / (row->ms * 1e6);
    const double t_flops = flops / p->g->sgemm_flops, t_bytes = bytes / p->g->copy_bytes_per_s;
    row->roofline_ms = 1e3 * (t_flops > t_bytes ? t_flops : t_bytes);
    row->speedup = row->dense_ms / row->ms;
}

// Issue 4's targets for an AUTO row (best_ms: the fastest named libttl algorithm of the row).
static void auto_targets(bench_row_t *row, const gpu_problem_t *p, double best_ms) {
    bench_row_target(row, "auto<=1.05xdense", 1.05, row->ms / row->dense_ms, 0);
    if (isfinite(best_ms)) bench_row_target(row, "auto<=1.10xbest", 1.10, row->ms / best_ms, 0);
    const char *name = p->c->name;
    if (strcmp(name, "vgg_fc6_tt4") == 0 && p->batch == 1)
        bench_row_target(row, "x_dense>=15", 15.0, row->speedup, 1);
    if (strcmp(name, "vgg_fc6_tt4") == 0 && p->batch == 1024) {
        bench_row_target(row, "x_dense>=10", 10.0, row->speedup, 1);
        bench_row_target(row, "ms<=2xroofline", 2.0, row->ms / row->roofline_ms, 0);
    }
    if (strcmp(name, "vgg_conv5_512_r8") == 0 && p->batch == 128)
        bench_row_target(row, "x_cudnn>=1.5", 1.5, row->speedup, 1);
    if (strcmp(name, "vgg_conv5_512_r4") == 0 && p->batch == 128)
        bench_row_target(row, "x_cudnn>=4", 4.0, row->speedup, 1);
}

// Short names of the core orders for the algorithm column.
static const char *order_abbrev(ttl_order_t order) {
    return order == TTL_ORDER_FIRST_TO_LAST ? "f2l" : order == TTL_ORDER_LAST_TO_FIRST ? "l2f" : "auto";
}

// ---- one batch --------------------------------------------------------------------------------------------------

static void alloc_pools(gpu_problem_t *p, uint64_t seed, const float *ref_x, int64_t ref_samples) {
    const size_t rotate = 2 * p->g->l2_bytes;
    p->x_stride = (p->x_bytes + SLICE_ALIGN - 1) / SLICE_ALIGN * SLICE_ALIGN;
    p->y_stride = (p->y_bytes + SLICE_ALIGN - 1) / SLICE_ALIGN * SLICE_ALIGN;
    p->nx = (int)((rotate + p->x_stride - 1) / p->x_stride);
    p->ny = (int)((rotate + p->y_stride - 1) / p->y_stride);
    p->nx = p->nx < 2 ? 2 : p->nx > MAX_SLICES ? MAX_SLICES : p->nx;
    p->ny = p->ny < 2 ? 2 : p->ny > MAX_SLICES ? MAX_SLICES : p->ny;
    p->next_slice = 1; /* slice 0 holds the checked samples (reading it again while timing is harmless) */
    BENCH_CUDA(cudaMalloc((void **)&p->x_pool, (size_t)p->nx * p->x_stride));
    BENCH_CUDA(cudaMalloc((void **)&p->y_pool, (size_t)p->ny * p->y_stride));
    bench_gpu_fill_random((float *)p->x_pool, (int64_t)((size_t)p->nx * p->x_stride / sizeof(float)), seed, 1.0f,
                          p->g->stream);
    BENCH_CUDA(cudaStreamSynchronize(p->g->stream));
    const int64_t n = ref_samples < p->batch ? ref_samples : p->batch;
    BENCH_CUDA(cudaMemcpy(x_slice(p, 0), ref_x, (size_t)(n * p->x_sample) * sizeof(float), cudaMemcpyHostToDevice));
    BENCH_CUDA(cudaDeviceSynchronize()); // a pageable upload may still be in flight; the stream does not wait
}

static void setup_dnn(gpu_problem_t *p, int64_t out_h, int64_t out_w) {
    const ttl_conv_desc_t *d = &p->conv;
    BENCH_CUDNN(cudnnCreateTensorDescriptor(&p->xd));
    BENCH_CUDNN(cudnnCreateTensorDescriptor(&p->yd));
    BENCH_CUDNN(cudnnCreateFilterDescriptor(&p->wd));
    BENCH_CUDNN(cudnnCreateConvolutionDescriptor(&p->cd));
    BENCH_CUDNN(cudnnSetTensor4dDescriptor(p->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)p->batch,
                                           (int)d->in_channels, (int)p->shape.height, (int)p->shape.width));
    BENCH_CUDNN(cudnnSetTensor4dDescriptor(p->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)p->batch,
                                           (int)d->out_channels, (int)out_h, (int)out_w));
    BENCH_CUDNN(cudnnSetFilter4dDescriptor(p->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)d->out_channels,
                                           (int)d->in_channels, (int)d->kernel_h, (int)d->kernel_w));
    BENCH_CUDNN(cudnnSetConvolution2dDescriptor(p->cd, (int)d->pad_h, (int)d->pad_w, (int)d->stride_h,
                                                (int)d->stride_w, (int)d->dilation_h, (int)d->dilation_w,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
}

static void destroy_dnn(gpu_problem_t *p) {
    BENCH_CUDNN(cudnnDestroyTensorDescriptor(p->xd));
    BENCH_CUDNN(cudnnDestroyTensorDescriptor(p->yd));
    BENCH_CUDNN(cudnnDestroyFilterDescriptor(p->wd));
    BENCH_CUDNN(cudnnDestroyConvolutionDescriptor(p->cd));
}

// Dense baseline row: fp32 time (the row's dense_ms), the TF32 column, checked against the reference.
static void dense_row(bench_row_t *base, gpu_problem_t *p, const gpu_case_data_t *d, int64_t dense_macs,
                      int *failures) {
    gpu_call_fn fn = p->is_fc ? dense_fc_call : dense_conv_call;
    double ms = 0.0, tf32 = 0.0;
    snprintf(base->algo, sizeof base->algo, "%s", p->is_fc ? "cublas" : "cudnn");
    if (p->is_fc) {
        BENCH_CUBLAS(cublasSetMathMode(p->g->blas, CUBLAS_DEFAULT_MATH));
        p->use_gemv = 0;
        fn(p, 0);
        check_output(base, p, d, 1, failures);
        if (gpu_time(&ms, &base->repeats, fn, p)) exit(1);
        snprintf(base->chosen, sizeof base->chosen, "sgemm");
        if (p->batch == 1) { // the faster of SGEMM and SGEMV is the baseline
            double gemv_ms = 0.0;
            int reps = 0;
            p->use_gemv = 1;
            if (gpu_time(&gemv_ms, &reps, fn, p)) exit(1);
            if (gemv_ms < ms) {
                ms = gemv_ms, base->repeats = reps;
                snprintf(base->chosen, sizeof base->chosen, "sgemv");
                fn(p, 0); // the output the libttl rows are compared to comes from the baseline timed
                check_output(base, p, d, 1, failures);
            }
            p->use_gemv = 0;
        }
        BENCH_CUBLAS(cublasSetMathMode(p->g->blas, CUBLAS_TF32_TENSOR_OP_MATH));
        int reps = 0;
        if (gpu_time(&tf32, &reps, fn, p)) exit(1);
        BENCH_CUBLAS(cublasSetMathMode(p->g->blas, CUBLAS_DEFAULT_MATH));
    } else {
        find_dnn_algo(p, CUDNN_TENSOR_OP_MATH);
        int reps = 0;
        if (gpu_time(&tf32, &reps, fn, p)) exit(1);
        find_dnn_algo(p, CUDNN_FMA_MATH);
        snprintf(base->chosen, sizeof base->chosen, "%s", dnn_algo_name(p->dnn_algo));
        fn(p, 0);
        check_output(base, p, d, 1, failures);
        if (gpu_time(&ms, &base->repeats, fn, p)) exit(1);
    }
    base->ms = base->dense_ms = ms;
    base->tf32_ms = tf32;
    base->macs = dense_macs;
    base->weight_bytes = (size_t)(p->M * p->N) * sizeof(float);
    base->workspace_bytes = p->is_fc ? 0 : p->dnn_algo_ws;
    derive(base, p);
}

static ttl_status_t plan_create(gpu_problem_t *p, void *layer, const ttl_cuda_plan_opts_t *o,
                                ttl_plan_info_t *info) {
    ttl_status_t st;
    if (p->is_fc) {
        ttl_cuda_fc_plan_t *plan = NULL;
        st = ttl_cuda_fc_plan_create(&plan, layer, p->batch, o);
        if (st == TTL_STATUS_SUCCESS) st = ttl_cuda_fc_plan_info(plan, info);
        p->fc_plan = plan;
    } else {
        ttl_cuda_conv_plan_t *plan = NULL;
        st = ttl_cuda_conv_plan_create(&plan, layer, &p->shape, o);
        if (st == TTL_STATUS_SUCCESS) st = ttl_cuda_conv_plan_info(plan, info);
        p->conv_plan = plan;
    }
    return st;
}

static void plan_destroy(gpu_problem_t *p) {
    if (p->fc_plan) ttl_cuda_fc_plan_destroy((ttl_cuda_fc_plan_t *)p->fc_plan);
    if (p->conv_plan) ttl_cuda_conv_plan_destroy((ttl_cuda_conv_plan_t *)p->conv_plan);
    if (p->ws) BENCH_CUDA(cudaFree(p->ws));
    p->fc_plan = NULL, p->conv_plan = NULL, p->ws = NULL, p->ws_bytes = 0;
}

static int run_batch(gpu_problem_t *p, void *layer, const gpu_case_data_t *d, const ttl_fc_stats_t *fs,
                     const ttl_conv_stats_t *cs, int64_t dense_macs, bench_report_t *report) {
    int failures = 0;
    bench_row_t base;
    row_common(&base, p, fs, cs);
    dense_row(&base, p, d, dense_macs, &failures);
    bench_report_row(report, &base);

    const gpu_algo_t *algos = p->is_fc ? k_fc_algos : k_conv_algos;
    const int num_algos = p->is_fc ? (int)(sizeof k_fc_algos / sizeof k_fc_algos[0])
                                   : (int)(sizeof k_conv_algos / sizeof k_conv_algos[0]);
    const size_t act_bytes = p->x_bytes > p->y_bytes ? p->x_bytes : p->y_bytes;
    double best_ms = INFINITY;
    for (int a = 0; a < num_algos; ++a) {
        if (p->only_algo != NULL && strcmp(algos[a].name, p->only_algo) != 0) continue;
        bench_row_t row;
        row_common(&row, p, fs, cs);
        snprintf(row.algo, sizeof row.algo, "%s", algos[a].name);
        row.dense_ms = base.ms;
        row.tf32_ms = base.tf32_ms;
        ttl_plan_info_t info;
        const ttl_status_t st = plan_create(p, layer, &algos[a].opts, &info);
        if (st != TTL_STATUS_SUCCESS) {
            row.supported = 0;
            if (st != TTL_STATUS_UNSUPPORTED) {
                snprintf(row.check, sizeof row.check, "FAIL plan: %s", ttl_status_string(st));
                ++failures;
            }
            bench_report_row(report, &row);
            plan_destroy(p);
            continue;
        }
        if (algos[a].opts.algo == TTL_ALGO_AUTO || info.order != TTL_ORDER_AUTO)
            snprintf(row.chosen, sizeof row.chosen, "%s%s%s",
                     algos[a].opts.algo == TTL_ALGO_AUTO ? ttl_algo_name(info.algo) : "",
                     algos[a].opts.algo == TTL_ALGO_AUTO && info.order != TTL_ORDER_AUTO ? "/" : "",
                     info.order != TTL_ORDER_AUTO ? order_abbrev(info.order) : "");
        row.reason = info.reason;
        row.macs = info.macs;
        row.model_ms = info.estimated_us > 0 ? info.estimated_us / 1000.0 : NAN;
        row.workspace_bytes = info.workspace_bytes;
        row.persistent_bytes = info.persistent_bytes;
        row.weight_bytes = info.algo == TTL_ALGO_DENSE ? (size_t)(p->M * p->N) * sizeof(float)
                                                       : (size_t)row.params * sizeof(float);
        p->ws_bytes = info.workspace_bytes;
        if (p->ws_bytes) BENCH_CUDA(cudaMalloc(&p->ws, p->ws_bytes));

        if (plan_call(p, 0)) {
            row.supported = 0;
            snprintf(row.check, sizeof row.check, "FAIL forward: %s", ttl_status_string(p->status));
            ++failures;
        } else {
            check_output(&row, p, d, 0, &failures);
            if (gpu_time(&row.ms, &row.repeats, plan_call, p)) {
                row.supported = 0;
                snprintf(row.check, sizeof row.check, "FAIL forward: %s", ttl_status_string(p->status));
                ++failures;
            } else {
                derive(&row, p);
                const int is_auto = algos[a].opts.algo == TTL_ALGO_AUTO;
                const int checked_ok = strncmp(row.check, "FAIL", 4) != 0;
                if (!is_auto && checked_ok && row.ms < best_ms) best_ms = row.ms;
                if (is_auto && !algos[a].opts.autotune) auto_targets(&row, p, best_ms);
                if (info.algo != TTL_ALGO_DENSE && (!is_auto || !algos[a].opts.autotune))
                    bench_row_target(&row, "ws<=2xact", 2.0, (double)info.workspace_bytes / (double)act_bytes, 0);
            }
        }
        bench_report_row(report, &row);
        plan_destroy(p);
    }
    return failures;
}

// ---- one case ---------------------------------------------------------------------------------------------------

static int run_case(gpu_t *g, const bench_case_t *c, const bench_options_t *opt, bench_report_t *report) {
    gpu_problem_t p;
    memset(&p, 0, sizeof p);
    p.g = g;
    p.c = c;
    p.is_fc = c->op == BENCH_OP_FC;
    p.only_algo = opt->algo;
    const uint64_t seed = bench_seed_of(c->name);
    ttl_fc_stats_t fs;
    ttl_conv_stats_t cs;
    memset(&fs, 0, sizeof fs);
    memset(&cs, 0, sizeof cs);
    int64_t dense_params, macs_per_sample;
    float *cores, *dense;
    void *layer = NULL;
    if (p.is_fc) {
        bench_case_fc_desc(&p.fc, c);
        bench_check(ttl_fc_stats(&fs, &p.fc, 1), "ttl_fc_stats");
        dense_params = fs.dense_params, macs_per_sample = fs.macs_dense;
        p.M = p.fc.out_features, p.N = p.fc.in_features;
        p.x_sample = p.N, p.y_sample = p.M;
        cores = bench_fc_cores(&p.fc, seed);
        dense = bench_alloc((size_t)dense_params * sizeof(float));
        bench_check(ttl_fc_reconstruct(dense, &p.fc, cores), "ttl_fc_reconstruct");
        ttl_cuda_fc_layer_t *l = NULL;
        bench_check(ttl_cuda_fc_layer_create(&l, g->ttl, &p.fc, cores, NULL), "ttl_cuda_fc_layer_create");
        layer = l;
    } else {
        bench_case_conv_desc(&p.conv, c);
        p.shape = (ttl_conv_shape_t){.batch = 1, .height = c->height, .width = c->width, .layout = TTL_LAYOUT_NCHW};
        bench_check(ttl_conv_stats(&cs, &p.conv, &p.shape), "ttl_conv_stats");
        dense_params = cs.dense_params, macs_per_sample = cs.macs_dense;
        p.M = p.conv.out_channels, p.N = p.conv.in_channels * p.conv.kernel_h * p.conv.kernel_w;
        p.x_sample = p.conv.in_channels * c->height * c->width;
        p.y_sample = p.conv.out_channels * cs.out_h * cs.out_w;
        cores = bench_conv_cores(&p.conv, seed);
        dense = bench_alloc((size_t)dense_params * sizeof(float));
        bench_check(ttl_conv_reconstruct(dense, &p.conv, cores), "ttl_conv_reconstruct");
        ttl_cuda_conv_layer_t *l = NULL;
        bench_check(ttl_cuda_conv_layer_create(&l, g->ttl, &p.conv, cores, NULL), "ttl_cuda_conv_layer_create");
        layer = l;
    }
    BENCH_CUDA(cudaMalloc((void **)&p.d_dense, (size_t)dense_params * sizeof(float)));
    BENCH_CUDA(cudaMemcpy(p.d_dense, dense, (size_t)dense_params * sizeof(float), cudaMemcpyHostToDevice));
    BENCH_CUDA(cudaDeviceSynchronize());

    // CPU reference of the first samples, once per case.
    gpu_case_data_t d;
    memset(&d, 0, sizeof d);
    const bench_reference_t ref = bench_reference(p.is_fc ? &p.fc : NULL, &p.conv, &p.shape, cores, p.x_sample,
                                                  p.y_sample, macs_per_sample, seed);
    float *ref_x = ref.x, *ref_y = ref.y;
    d.ref_samples = ref.samples;
    d.ref_y = ref_y;

    int failures = 0;
    const int64_t single[2] = {opt->batch, 0};
    const int64_t *batches = opt->batch > 0 ? single : c->gpu_batches;
    for (int i = 0; i < BENCH_MAX_BATCHES && batches[i] > 0; ++i) {
        p.batch = p.shape.batch = batches[i];
        p.x_bytes = (size_t)(p.batch * p.x_sample) * sizeof(float);
        p.y_bytes = (size_t)(p.batch * p.y_sample) * sizeof(float);
        d.h_y = bench_alloc(p.y_bytes);
        d.h_dense_y = bench_alloc(p.y_bytes);
        alloc_pools(&p, seed + (uint64_t)p.batch, ref_x, d.ref_samples);
        if (!p.is_fc) setup_dnn(&p, cs.out_h, cs.out_w);
        failures += run_batch(&p, layer, &d, &fs, &cs, macs_per_sample * p.batch, report);
        if (!p.is_fc) destroy_dnn(&p);
        BENCH_CUDA(cudaFree(p.x_pool));
        BENCH_CUDA(cudaFree(p.y_pool));
        free(d.h_y);
        free(d.h_dense_y);
    }
    if (p.is_fc)
        ttl_cuda_fc_layer_destroy(layer);
    else
        ttl_cuda_conv_layer_destroy(layer);
    BENCH_CUDA(cudaFree(p.d_dense));
    free(ref_x);
    free(ref_y);
    free(dense);
    free(cores);
    return failures;
}

// ---- entry points -----------------------------------------------------------------------------------------------

int bench_gpu_available(void) {
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

int bench_gpu_run(const bench_options_t *opt, bench_report_t *report) {
    gpu_t g;
    memset(&g, 0, sizeof g);
    struct cudaDeviceProp prop;
    BENCH_CUDA(cudaSetDevice(0));
    BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
    g.l2_bytes = (size_t)prop.l2CacheSize;
    BENCH_CUDA(cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking));
    BENCH_CUBLAS(cublasCreate(&g.blas));
    BENCH_CUBLAS(cublasSetStream(g.blas, g.stream));
    BENCH_CUDNN(cudnnCreate(&g.dnn));
    BENCH_CUDNN(cudnnSetStream(g.dnn, g.stream));
    bench_check(ttl_cuda_create(&g.ttl, 0), "ttl_cuda_create");
    bench_check(ttl_cuda_set_stream(g.ttl, g.stream), "ttl_cuda_set_stream");
    for (int i = 0; i < MAX_REPEATS; ++i) {
        BENCH_CUDA(cudaEventCreate(&g.start[i]));
        BENCH_CUDA(cudaEventCreate(&g.stop[i]));
    }
    BENCH_CUDA(cudaMalloc(&g.dnn_ws, CUDNN_WS_BYTES));
    measure_ceilings(&g);

    int runtime = 0;
    BENCH_CUDA(cudaRuntimeGetVersion(&runtime));
    bench_report_set_string(report, "gpu", prop.name);
    bench_report_set_number(report, "gpu_l2_mib", (double)g.l2_bytes / 1048576.0);
    bench_report_set_number(report, "cuda_runtime", runtime);
    bench_report_set_number(report, "cudnn_version", (double)cudnnGetVersion());
    bench_report_set_number(report, "copy_tb_s", g.copy_bytes_per_s * 1e-12);
    bench_report_set_number(report, "sgemm_tflop_s", g.sgemm_flops * 1e-12);
    bench_report_set_number(report, "tf32_tflop_s", g.tf32_flops * 1e-12);
    bench_report_begin_table(report);

    int count, failures = 0;
    const bench_case_t *cases = bench_cases(&count);
    for (int i = 0; i < count; ++i)
        if (bench_case_selected(&cases[i], opt->suite_flag, opt->patterns, opt->num_patterns))
            failures += run_case(&g, &cases[i], opt, report);

    BENCH_CUDA(cudaFree(g.dnn_ws));
    for (int i = 0; i < MAX_REPEATS; ++i) {
        BENCH_CUDA(cudaEventDestroy(g.start[i]));
        BENCH_CUDA(cudaEventDestroy(g.stop[i]));
    }
    ttl_cuda_destroy(g.ttl);
    BENCH_CUDNN(cudnnDestroy(g.dnn));
    BENCH_CUBLAS(cublasDestroy(g.blas));
    BENCH_CUDA(cudaStreamDestroy(g.stream));
    return failures;
}

int bench_gpu_algo_known(const char *name) {
    for (size_t i = 0; i < sizeof k_fc_algos / sizeof k_fc_algos[0]; ++i)
        if (strcmp(k_fc_algos[i].name, name) == 0) return 1;
    for (size_t i = 0; i < sizeof k_conv_algos / sizeof k_conv_algos[0]; ++i)
        if (strcmp(k_conv_algos[i].name, name) == 0) return 1;
    return 0;
}
