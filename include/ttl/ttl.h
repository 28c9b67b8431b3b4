/*
 * libttl: tensor-train (TT) compressed neural-network layers.
 *
 * This header is the host API: descriptors, validation, cost formulas, the CPU reference (the specification
 * every faster path is tested against), the CPU fast paths, and TT-SVD compression. GPU entry points that need
 * CUDA types live in ttl_cuda.h.
 *
 * Walk-through (TT-FC layer, y = W x + b on a batch):
 *
 *     ttl_fc_desc_t d = {.out_features = 4096, .in_features = 25088, .num_cores = 6,
 *                        .out_modes = {4, 4, 4, 4, 4, 4}, .in_modes = {2, 7, 8, 8, 7, 4},
 *                        .ranks = {1, 4, 4, 4, 4, 4, 1}};       // describe
 *     ttl_fc_plan_t *plan;
 *     ttl_fc_plan_create(&plan, &d, batch, NULL);               // plan (NULL options: AUTO)
 *     ttl_plan_info_t info;
 *     ttl_fc_plan_info(plan, &info);                            // query workspace (and the chosen algorithm)
 *     void *ws = malloc(info.workspace_bytes);
 *     ttl_fc_forward(plan, y, x, cores, bias, ws, info.workspace_bytes);   // run, as often as needed
 *     ttl_fc_plan_destroy(plan); free(ws);                      // destroy
 *
 * Serving fixed weights, bind them instead (see "Algorithms and plans"): DENSE then rebuilds W once, at plan time.
 *
 *     ttl_plan_opts_t opts = {.algo = TTL_ALGO_AUTO, .cores = cores};
 *     ttl_fc_plan_create(&plan, &d, batch, &opts);              // forward calls pass the same `cores`
 *
 * Conventions (the math is in docs/tt-layers.md of the source tree):
 *  - TT-FC: W is [M, N] (out x in, like torch.nn.Linear.weight). M = m_1..m_d, N = n_1..n_d; row and column
 *    multi-indices are row-major (index 1 most significant). Core k (0-based here, G_{k+1} in the math) is
 *    [r_k, m_k, n_k, r_{k+1}] row-major with ranks[0] = ranks[d] = 1. x is [B, N] row-major, y is [B, M].
 *  - TT-conv: K is [S, C, kh, kw] (OIHW, like PyTorch/cuDNN). The spatial core is [kh, kw, r_0]; channel core k
 *    is [r_k, s_k, c_k, r_{k+1}] with ranks[d] = 1 (ranks[0] = r_0 is the spatial rank). Convolution is
 *    cross-correlation; zero padding.
 *  - All cores of a layer are passed as ONE float buffer, packed back to back in order (conv: spatial core
 *    first). ttl_fc_core_offset()/ttl_conv_core_offset() give where each core starts; *_param_count the total.
 *  - Sizes are int64_t counted in elements unless a name ends in _bytes. Bias is [M] (or [S]) or NULL.
 *  - Every function returns a ttl_status_t; results come back through pointer arguments, which are left
 *    untouched when the status is not TTL_STATUS_SUCCESS. The library never prints, aborts or exits.
 */
#ifndef TTL_TTL_H
#define TTL_TTL_H

#include <stddef.h>
#include <stdint.h>

#include "ttl/ttl_export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TTL_VERSION_MAJOR 0
#define TTL_VERSION_MINOR 1
#define TTL_VERSION_PATCH 0
/* Most cores a TT-matrix or the channel part of a TT-conv may have. */
#define TTL_MAX_CORES 16

/* ------------------------------------------------------------------------------------------------------------
 * Status
 * ------------------------------------------------------------------------------------------------------------ */

typedef enum ttl_status {
    TTL_STATUS_SUCCESS = 0,
    TTL_STATUS_NULL_POINTER = 1,           /* a required pointer argument is NULL */
    TTL_STATUS_BAD_SIZE = 2,               /* a size, mode, rank, count or geometry value is out of range */
    TTL_STATUS_BAD_MODES = 3,              /* the product of the modes is not the stated dimension */
    TTL_STATUS_BAD_RANKS = 4,              /* ranks do not chain: boundary rank not 1, or core shapes disagree */
    TTL_STATUS_OVERFLOW = 5,               /* a size or product of sizes overflows int64_t or size_t */
    TTL_STATUS_BAD_ARGUMENT = 6,           /* unknown enum value, eps out of range, batch < 0, ... */
    TTL_STATUS_UNSUPPORTED = 7,            /* the requested algorithm cannot run this problem here */
    TTL_STATUS_INSUFFICIENT_WORKSPACE = 8, /* ws_bytes is smaller than the plan's workspace_bytes (or, at plan
                                            * time, a workspace_limit too small to run the shape in chunks) */
    TTL_STATUS_OUT_OF_MEMORY = 9,          /* an allocation the call documents failed */
    TTL_STATUS_NUMERICAL = 10,             /* LAPACK did not converge, or the input holds NaN/Inf */
    TTL_STATUS_IO_ERROR = 11,              /* a file could not be opened, read, written or renamed */
    TTL_STATUS_BAD_FILE = 12,              /* a file is malformed or contradicts itself */
    TTL_STATUS_NOT_FOUND = 13,             /* a named tensor or layer is not in the file */
    TTL_STATUS_CUDA_ERROR = 14,            /* a CUDA runtime call failed */
    TTL_STATUS_CUBLAS_ERROR = 15,          /* a cuBLAS call failed */
    TTL_STATUS_CUDNN_ERROR = 16,           /* a cuDNN call failed */
    TTL_STATUS_NO_DEVICE = 17,             /* no CUDA device, or libttl was built without CUDA */
} ttl_status_t;

/* A static, human-readable name for a status ("insufficient workspace"). Never NULL. */
TTL_API const char *ttl_status_string(ttl_status_t status);

/* "MAJOR.MINOR.PATCH" of the library actually linked. */
TTL_API const char *ttl_version(void);

/* 1 when this build of libttl has the CUDA paths (ttl_cuda.h), else 0. */
TTL_API int ttl_has_cuda(void);

/* Frees memory the library returned (compressed cores, strings). NULL is fine. */
TTL_API void ttl_free(void *ptr);

/* ------------------------------------------------------------------------------------------------------------
 * Descriptors: plain structs the caller fills. Unused array entries are ignored.
 * ------------------------------------------------------------------------------------------------------------ */

/* A TT-matrix: the weight of a TT-FC layer. Core k is [ranks[k], out_modes[k], in_modes[k], ranks[k+1]]. */
typedef struct ttl_fc_desc {
    int64_t out_features;             /* M = prod out_modes */
    int64_t in_features;              /* N = prod in_modes */
    int32_t num_cores;                /* d, 1..TTL_MAX_CORES */
    int64_t out_modes[TTL_MAX_CORES]; /* m_k >= 1 */
    int64_t in_modes[TTL_MAX_CORES];  /* n_k >= 1 */
    int64_t ranks[TTL_MAX_CORES + 1]; /* r_0..r_d, r_0 = r_d = 1, others >= 1 */
} ttl_fc_desc_t;

/* A TT-conv kernel K[S, C, kh, kw] = G_0[p, q, :] . G_1[:, s_1, c_1, :] ... G_d[:, s_d, c_d, :]. */
typedef struct ttl_conv_desc {
    int64_t out_channels;             /* S = prod out_modes */
    int64_t in_channels;              /* C = prod in_modes */
    int64_t kernel_h, kernel_w;       /* >= 1 */
    int64_t stride_h, stride_w;       /* >= 1 */
    int64_t pad_h, pad_w;             /* >= 0, zeros on both sides */
    int64_t dilation_h, dilation_w;   /* >= 1 */
    int32_t num_cores;                /* d channel cores, 1..TTL_MAX_CORES */
    int64_t out_modes[TTL_MAX_CORES]; /* s_k >= 1 */
    int64_t in_modes[TTL_MAX_CORES];  /* c_k >= 1 */
    int64_t ranks[TTL_MAX_CORES + 1]; /* r_0 (spatial rank, >= 1) .. r_d = 1 */
} ttl_conv_desc_t;

/* Activation layout of a convolution's input and output. */
typedef enum ttl_layout {
    TTL_LAYOUT_NCHW = 0, /* x is [B, C, H, W], y is [B, S, OH, OW] */
    TTL_LAYOUT_NHWC = 1, /* x is [B, H, W, C], y is [B, OH, OW, S] */
} ttl_layout_t;

/* The activation side of a convolution problem. */
typedef struct ttl_conv_shape {
    int64_t batch;  /* B >= 0 (0 is a no-op) */
    int64_t height; /* H >= 1 */
    int64_t width;  /* W >= 1 */
    ttl_layout_t layout;
} ttl_conv_shape_t;

/* Checks every field: sizes >= 1, modes multiply to the features/channels, boundary ranks, no overflow of any
 * product the library forms (parameter count, dense size). Returns the first problem found. */
TTL_API ttl_status_t ttl_fc_desc_check(const ttl_fc_desc_t *desc);
TTL_API ttl_status_t ttl_conv_desc_check(const ttl_conv_desc_t *desc);

/* Output spatial size of a convolution: OH = (H + 2 ph - dh (kh - 1) - 1) / sh + 1; BAD_SIZE when < 1. */
TTL_API ttl_status_t ttl_conv_output_size(int64_t *out_h, int64_t *out_w, const ttl_conv_desc_t *desc,
                                          int64_t height, int64_t width);

/* Parameters of the cores (bias excluded), i.e. the float count of the packed core buffer. */
TTL_API ttl_status_t ttl_fc_param_count(int64_t *count, const ttl_fc_desc_t *desc);
TTL_API ttl_status_t ttl_conv_param_count(int64_t *count, const ttl_conv_desc_t *desc);

/* Where core k starts in the packed buffer, in floats. FC: k = 0..d-1. Conv: k = 0 is the spatial core,
 * k = 1..d the channel cores G_1..G_d. */
TTL_API ttl_status_t ttl_fc_core_offset(int64_t *offset, const ttl_fc_desc_t *desc, int32_t k);
TTL_API ttl_status_t ttl_conv_core_offset(int64_t *offset, const ttl_conv_desc_t *desc, int32_t k);

/* Sizes and multiply-add counts of every schedule for one forward call. All counts are exact integers. */
typedef struct ttl_fc_stats {
    int64_t params;             /* TT parameters (cores only) */
    int64_t dense_params;       /* M * N */
    double compression;         /* dense_params / params */
    int64_t macs_first_to_last; /* sequential contraction k = 1..d: sum_k B r_{k-1} r_k (m_1..m_k)(n_k..n_d) */
    int64_t macs_last_to_first; /* sequential contraction k = d..1: sum_k B r_{k-1} r_k (n_1..n_k)(m_k..m_d) */
    int64_t macs_dense;         /* B * M * N, the dense GEMM */
    int64_t macs_reconstruct;   /* building W from the cores once (left to right), batch-independent */
} ttl_fc_stats_t;
TTL_API ttl_status_t ttl_fc_stats(ttl_fc_stats_t *stats, const ttl_fc_desc_t *desc, int64_t batch);

typedef struct ttl_conv_stats {
    int64_t params;              /* kh kw r_0 + sum_k r_{k-1} s_k c_k r_k */
    int64_t dense_params;        /* S C kh kw */
    double compression;          /* dense_params / params */
    int64_t out_h, out_w;        /* output spatial size */
    int64_t macs_spatial_first;  /* B OH OW (kh kw r_0 C + channel TT in its cheaper order) */
    int64_t macs_channels_first; /* B H W (channel TT in its cheaper order) + B OH OW kh kw r_0 S */
    int64_t macs_dense;          /* B OH OW S C kh kw, the direct convolution */
    int64_t macs_reconstruct;    /* building K from the cores once, batch-independent */
} ttl_conv_stats_t;
TTL_API ttl_status_t ttl_conv_stats(ttl_conv_stats_t *stats, const ttl_conv_desc_t *desc,
                                    const ttl_conv_shape_t *shape);

/* Proposes `count` modes whose product is `dim`, as balanced as the factorisation allows (the largest mode as
 * small as possible), ordered so that modes[0] is the smallest. Modes of 1 fill in when dim has too few
 * prime factors. E.g. 25088 into 6 -> {4, 4, 4, 7, 7, 8}; 4096 into 6 -> {4, 4, 4, 4, 4, 4}. */
TTL_API ttl_status_t ttl_factorize(int64_t *modes, int64_t dim, int32_t count);

/* ------------------------------------------------------------------------------------------------------------
 * Dense reconstruction and the CPU reference (the specification; plain loops, double accumulation).
 * They allocate their own scratch memory and return OUT_OF_MEMORY when that fails.
 * ------------------------------------------------------------------------------------------------------------ */

/* W is [M, N]. */
TTL_API ttl_status_t ttl_fc_reconstruct(float *W, const ttl_fc_desc_t *desc, const float *cores);
/* K is [S, C, kh, kw]. */
TTL_API ttl_status_t ttl_conv_reconstruct(float *K, const ttl_conv_desc_t *desc, const float *cores);

/* y[b, i] = sum_j W[i, j] x[b, j] + bias[i]; x is [B, N], y is [B, M]. */
TTL_API ttl_status_t ttl_fc_forward_ref(float *y, const ttl_fc_desc_t *desc, const float *cores, const float *bias,
                                        const float *x, int64_t batch);
/* y = conv(x, K) + bias in shape->layout; y's spatial size is ttl_conv_output_size(). */
TTL_API ttl_status_t ttl_conv_forward_ref(float *y, const ttl_conv_desc_t *desc, const float *cores,
                                          const float *bias, const float *x, const ttl_conv_shape_t *shape);

/* ------------------------------------------------------------------------------------------------------------
 * Algorithms and plans
 * ------------------------------------------------------------------------------------------------------------ */

typedef enum ttl_algo {
    TTL_ALGO_AUTO = 0,            /* the cost model picks (CPU: fewest multiply-adds, or with bound weights the
                                     shortest estimated time; see the CPU plans below) */
    TTL_ALGO_REFERENCE = 1,       /* plain loops, double accumulation (CPU only) */
    TTL_ALGO_SEQUENTIAL = 2,      /* FC: one contraction per core (CPU: BLAS; CUDA: libttl kernels) */
    TTL_ALGO_SEQUENTIAL_BLAS = 3, /* FC, CUDA: one cuBLAS strided-batched GEMM per core */
    TTL_ALGO_FUSED = 4,           /* FC, CUDA: all cores in one kernel, intermediates on chip */
    TTL_ALGO_SPATIAL_FIRST = 5,   /* conv: r_0 spatial filters per input channel, then the channel TT */
    TTL_ALGO_CHANNELS_FIRST = 6,  /* conv: channel TT per input pixel, then a kh x kw conv over r_0 */
    TTL_ALGO_DENSE = 7,           /* reconstruct W/K, then one GEMM / dense convolution */
} ttl_algo_t;

/* Core order of a sequential contraction. */
typedef enum ttl_order {
    TTL_ORDER_AUTO = 0,          /* the one with fewer multiply-adds */
    TTL_ORDER_FIRST_TO_LAST = 1, /* k = 1..d */
    TTL_ORDER_LAST_TO_FIRST = 2, /* k = d..1 */
} ttl_order_t;

/* Static names ("sequential", "first_to_last"); "unknown" for values out of range. */
TTL_API const char *ttl_algo_name(ttl_algo_t algo);
TTL_API const char *ttl_order_name(ttl_order_t order);

/* Options for plan creation; a NULL pointer means {TTL_ALGO_AUTO, TTL_ORDER_AUTO, NULL}, and so does a
 * zero-initialised struct. */
typedef struct ttl_plan_opts {
    ttl_algo_t algo;
    ttl_order_t order;
    const float *cores; /* weights to bind at plan time (packed as for forward), or NULL; see the plans below */
} ttl_plan_opts_t;

/* What a plan decided. */
typedef struct ttl_plan_info {
    ttl_algo_t algo;         /* never AUTO */
    ttl_order_t order;       /* the core order used (AUTO when the algorithm has none) */
    size_t workspace_bytes;  /* scratch a forward call needs, to pass as ws/ws_bytes */
    size_t persistent_bytes; /* memory the plan itself holds (e.g. a reconstructed W or K) */
    int64_t macs;            /* multiply-adds of one forward call, by the formulas of the stats structs */
    const char *reason;      /* static text saying why this algorithm was chosen */
    double estimated_us;     /* GPU plans: the cost model's time of one forward call in microseconds, the figure
                              * AUTO compares (0 where there is no model: CPU plans, batch 0) */
} ttl_plan_info_t;

/* CPU plans fix the shape and the algorithm; weights are passed to every forward call, and may also be bound
 * to the plan when it is created. A plan is immutable after creation, so one plan may serve concurrent calls
 * that use different workspaces.
 *
 * Binding weights (opts->cores non-NULL), for a layer whose weights stay fixed, as when serving:
 *  - DENSE (named, or chosen by AUTO) reads the cores at creation and rebuilds W (FC) or K (conv) once, into
 *    memory the plan owns (reported as persistent_bytes; OUT_OF_MEMORY when that allocation fails; nothing is
 *    built for batch 0). Its forward calls run only the dense product, and its workspace_bytes no longer include
 *    W/K or the scratch of rebuilding them. The other algorithms still read the cores on every call;
 *  - AUTO compares estimated times: multiply-adds weighted by the rate each kind of work runs at on the CPU (a
 *    dense GEMM runs about three times as fast per multiply-add as the TT contractions, sgemv at FC batch 1
 *    about two thirds as fast), and the dense estimate no longer counts the reconstruction. Without bound
 *    weights AUTO takes the fewest multiply-adds, the reconstruction included;
 *  - every forward call must pass the same cores pointer (a different one gives BAD_ARGUMENT, y untouched), and
 *    the values must not change while the plan lives: a plan that cached W/K does not see later changes. */
typedef struct ttl_fc_plan ttl_fc_plan_t;
typedef struct ttl_conv_plan ttl_conv_plan_t;

TTL_API ttl_status_t ttl_fc_plan_create(ttl_fc_plan_t **plan, const ttl_fc_desc_t *desc, int64_t batch,
                                        const ttl_plan_opts_t *opts);
TTL_API ttl_status_t ttl_fc_plan_info(const ttl_fc_plan_t *plan, ttl_plan_info_t *info);
TTL_API void ttl_fc_plan_destroy(ttl_fc_plan_t *plan);
/* y is [B, M], x is [B, N], B fixed by the plan; cores packed as described above (a bound plan's own pointer);
 * bias [M] or NULL. y, x and the workspace must not overlap (not in place): BAD_ARGUMENT. */
TTL_API ttl_status_t ttl_fc_forward(const ttl_fc_plan_t *plan, float *y, const float *x, const float *cores,
                                    const float *bias, void *ws, size_t ws_bytes);

TTL_API ttl_status_t ttl_conv_plan_create(ttl_conv_plan_t **plan, const ttl_conv_desc_t *desc,
                                          const ttl_conv_shape_t *shape, const ttl_plan_opts_t *opts);
TTL_API ttl_status_t ttl_conv_plan_info(const ttl_conv_plan_t *plan, ttl_plan_info_t *info);
TTL_API void ttl_conv_plan_destroy(ttl_conv_plan_t *plan);
/* x and y in shape->layout; y, x and the workspace must not overlap (BAD_ARGUMENT). */
TTL_API ttl_status_t ttl_conv_forward(const ttl_conv_plan_t *plan, float *y, const float *x, const float *cores,
                                      const float *bias, void *ws, size_t ws_bytes);

/* ------------------------------------------------------------------------------------------------------------
 * Compression: TT-SVD of dense weights and TT rounding (LAPACK SVDs in double precision).
 * ------------------------------------------------------------------------------------------------------------ */

typedef struct ttl_compress_opts {
    double eps;       /* target relative error, 0 <= eps < 1; 0 truncates nothing but max_rank */
    int64_t max_rank; /* cap on every inner rank; 0 for none */
} ttl_compress_opts_t;

typedef struct ttl_compress_report {
    double rel_err;   /* achieved ||A - TT||_F / ||A||_F (A is the input; its TT for rounding) */
    double norm;      /* ||A||_F */
    int64_t params;   /* parameters of the result (cores only) */
    int64_t max_rank; /* largest inner rank of the result */
} ttl_compress_report_t;

/* TT-SVD of W[M, N] with modes from `shape` (its ranks are ignored). On success *tt_desc has the ranks found,
 * *tt_cores is a new packed buffer (free with ttl_free) and *report (may be NULL) says what was achieved.
 * With eps > 0 the result satisfies ||W - TT||_F <= eps ||W||_F whatever max_rank is not capping. */
TTL_API ttl_status_t ttl_fc_compress(ttl_fc_desc_t *tt_desc, float **tt_cores, ttl_compress_report_t *report,
                                     const ttl_fc_desc_t *shape, const float *W, const ttl_compress_opts_t *opts);
/* TT-SVD of K[S, C, kh, kw] into TT-conv form (geometry, channel modes from `shape`; ranks ignored). */
TTL_API ttl_status_t ttl_conv_compress(ttl_conv_desc_t *tt_desc, float **tt_cores, ttl_compress_report_t *report,
                                       const ttl_conv_desc_t *shape, const float *K,
                                       const ttl_compress_opts_t *opts);

/* Re-compress existing cores to lower ranks (orthogonalise right to left, truncated SVDs left to right). */
TTL_API ttl_status_t ttl_fc_round(ttl_fc_desc_t *out_desc, float **out_cores, ttl_compress_report_t *report,
                                  const ttl_fc_desc_t *desc, const float *cores, const ttl_compress_opts_t *opts);
TTL_API ttl_status_t ttl_conv_round(ttl_conv_desc_t *out_desc, float **out_cores, ttl_compress_report_t *report,
                                    const ttl_conv_desc_t *desc, const float *cores,
                                    const ttl_compress_opts_t *opts);

#ifdef __cplusplus
}
#endif

#endif /* TTL_TTL_H */
