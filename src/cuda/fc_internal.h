/*
 * TT-FC on the GPU: the layer and plan layouts and the launchers the plan dispatches to (one .cu per algorithm).
 *
 * Every algorithm but DENSE is a chain of contractions of one shape (fc_tile.cuh):
 *
 *     Out[l, p, r] = sum_q A[p, q] In[l, q, r]        In is [L, Q, R], Out is [L, P, R], A is [P, Q]
 *
 * With the working tensor kept in the layouts below no permutation is ever needed between steps (k 0-based,
 * M_<k = m_0..m_{k-1}, N_>k = n_{k+1}..n_{d-1}, and so on):
 *   first to last, step k: In = [B M_<k, r_k n_k, N_>k], Out = [B M_<k, m_k r_{k+1}, N_>k],
 *                          A[(i_k, a_{k+1}), (a_k, j_k)] = G_k[a_k, i_k, j_k, a_{k+1}]   (a re-laid core)
 *   last to first, step k: In = [B N_<k, n_k r_{k+1}, M_>k], Out = [B N_<k, r_k m_k, M_>k],
 *                          A[(a_k, i_k), (j_k, a_{k+1})] = G_k[a_k, i_k, j_k, a_{k+1}]   (the core as stored)
 * Step 0 of first-to-last reads x [B, N] and its last step writes y [B, M]; the same holds the other way round.
 * Both A are stored transposed, At[q * lda + p], lda = P rounded up to FC_AT_ALIGN with zero padding, so that a
 * thread's run of consecutive p is one aligned vector load.
 */
#ifndef TTL_CUDA_FC_INTERNAL_H
#define TTL_CUDA_FC_INTERNAL_H

#include "cuda/cuda_internal.h"

/* Padding of lda and alignment of every At matrix, in floats (two float4). */
#define FC_AT_ALIGN 8
/* Order index of per-order arrays. */
#define FC_FTL 0
#define FC_LTF 1

struct ttl_cuda_fc_layer {
    ttl_cuda_handle_t *handle;
    ttl_fc_desc_t desc;
    float *cores;                        /* device, packed as given */
    float *bias;                         /* device [M], or NULL */
    int64_t core_offset[TTL_MAX_CORES];  /* floats, into `cores` */
    float *at[2];                        /* device, At of every core for each order, concatenated */
    int64_t at_offset[2][TTL_MAX_CORES]; /* floats, multiples of FC_AT_ALIGN */
    int64_t at_lda[2][TTL_MAX_CORES];
};

/* Where a sequential step reads and writes: x, y, the two full-size ping-pong buffers, and the two per-chunk
 * buffers of a sliced schedule (fc_seq_schedule_t). */
enum fc_buffer { FC_BUF_X = 0, FC_BUF_Y, FC_BUF_WS0, FC_BUF_WS1, FC_BUF_SL0, FC_BUF_SL1, FC_NUM_BUFS };

/* Register tile of the libttl contraction kernels (fc_tile.cuh): each thread owns tp x tc outputs, warps are
 * arranged wp (along P) x FC_WARPS / wp (along the columns (l, r)). direct: B is read straight from In, which
 * must then be in shared memory with rows padded so that the reads are free of bank conflicts (fc_direct_pad,
 * fc_mma_layout_choose); otherwise each chunk of B is staged. mma: the tensor-core form (3xTF32): each warp owns tp
 * 16-row by tc 8-column tiles instead. kc: a staged tile's values of q per chunk, a power of two in
 * [FC_KC, FC_KC_MAX] (fc_tile_kc), 0 for the default, which keeps the stage within FC_TILE_SMEM_MAX. */
typedef struct fc_tile_cfg {
    int32_t tp, tc, wp;
    int32_t direct;
    int32_t mma;
    int32_t kc;
} fc_tile_cfg_t;

/* One contraction of a sequential plan. */
typedef struct fc_seq_step {
    int64_t L, P, Q, R; /* over the whole batch */
    int64_t unit_rows;  /* sliced steps: rows of L per leading unit (fc_seq_schedule_t); 0 otherwise */
    const float *at;    /* device At, lda */
    int64_t lda;
    int32_t in_buf, out_buf; /* enum fc_buffer */
    fc_tile_cfg_t tile;      /* SEQUENTIAL only; sliced steps: for the rows of one chunk */
} fc_seq_step_t;

/* The launches of SEQUENTIAL and SEQUENTIAL_BLAS. Intermediates grow by r_k m_k / n_k per step (or r_k n_k / m_k),
 * so running each step once over the whole batch can need far more workspace than the activations (VGG FC6 TT4,
 * first to last: 12x). A sliced schedule runs steps 0 .. num_sliced-1 once per chunk of the rows they share:
 * their rows are [units, unit_rows] with the leading `units` the samples (first to last) or the samples times the
 * not yet contracted leading in modes (last to first), always outermost, so a chunk of units is a contiguous
 * range of rows of every one of those steps. Step 0 reads its chunk of x, the steps in between use the per-chunk
 * buffers SL0 / SL1, step num_sliced-1 writes its chunk into the full buffer WS0 (or y); the remaining steps run
 * once, ping-ponging between WS0 and WS1. No multiply-add is repeated; the price is launches. */
typedef struct fc_seq_schedule {
    int32_t num_steps;
    fc_seq_step_t steps[TTL_MAX_CORES];
    int32_t num_sliced;            /* 0 (plain) or 2 .. num_steps */
    int64_t units, chunk_units;    /* leading units of the sliced steps; per chunk (the last chunk may be short) */
    size_t ws_offset[FC_NUM_BUFS]; /* bytes into the workspace, for the FC_BUF_WS* and FC_BUF_SL* buffers */
    size_t ws_bytes;
    int32_t mma; /* FC_MMA_*: whether the steps may (or must) take tensor-core tiles */
} fc_seq_schedule_t;

/* One launch of a schedule: a step on `L` rows (a chunk's, for sliced steps) from `in` to `out`. */
typedef struct fc_seq_launch {
    int32_t step;
    int64_t L;
    const float *in;
    float *out;
} fc_seq_launch_t;

/* FUSED: one step of the in-CTA chain. Sizes per CTA with `lps` rows of L per sample (L = samples * lps).
 * Every input but the first lives in shared memory with padding that makes the tile's direct reads
 * conflict-free: the step before writes its flat output index e to e + (e / row) pad, with out_pad and
 * div_out_row the next step's pad and row (0 and unused for the last step). For FFMA tiles row = Q R (rows of L
 * are in_ls = Q R + pad floats apart, q rows in_qs = R); a tensor-core step may instead pad every run of R
 * (row = R: in_qs = R + pad, in_ls = Q in_qs), see fc_mma_layout. */
typedef struct fc_fused_step {
    int32_t lps, P, Q, R;
    int32_t lda;
    int32_t a_is_merged; /* 1: A is the per-CTA merged core built in shared memory; 0: `at` in device memory */
    const float *at;
    fc_tile_cfg_t tile;
    ttl_divider_t div_r, div_lps; /* by R and by the output map's rows per sample (fc_fused_cta) */
    int64_t in_ls, in_qs;         /* floats from one row l of In to the next, and from one q to the next */
    int32_t out_pad;
    ttl_divider_t div_out_row;
    int32_t stream; /* 1: run by fc_stream_step (fc_fused.cuh) instead of tiles */
} fc_fused_step_t;

/* Everything the fused kernel needs; passed by value (about 1.5 KB, under the 4 KB parameter limit). */
typedef struct fc_fused_params {
    const float *x;
    float *y;
    const float *bias;
    const float *cores; /* packed cores, for building the merged core */
    int64_t batch, M, N;
    int32_t order;  /* FC_FTL or FC_LTF */
    int32_t merged; /* cores merged per CTA: the first `merged` (FTL) or the last `merged` (LTF); 0: none */
    int32_t nsplit; /* CTAs per sample tile = product of the merged cores' out modes */
    int32_t bt;     /* samples per CTA */
    int32_t num_steps;
    int32_t num_cores;
    /* Merged-core build: for each core k, its modes, ranks, offset and the divisor that extracts i_k from the
     * split index (product of the merged out modes after k). */
    int32_t m[TTL_MAX_CORES], n[TTL_MAX_CORES], r[TTL_MAX_CORES + 1];
    int64_t core_off[TTL_MAX_CORES];
    int64_t split_div[TTL_MAX_CORES];
    /* Output map of the last step: y[b, base + e * out_es] with base = split * split_mul. */
    int64_t split_mul, out_es;
    /* Shared-memory layout, in floats from the start of dynamic shared memory. */
    int32_t h_off, h_lda, x_off[2], stage_off;
    fc_fused_step_t steps[TTL_MAX_CORES + 1];
} fc_fused_params_t;

typedef struct fc_fused_config {
    fc_fused_params_t params;
    int64_t grid;      /* CTAs */
    size_t smem_bytes; /* dynamic shared memory per CTA */
    int64_t macs;      /* multiply-adds the kernel performs, recomputation included */
    double est_us;     /* cost-model estimate */
} fc_fused_config_t;

struct ttl_cuda_fc_plan {
    ttl_cuda_fc_layer_t *layer;
    int64_t batch;
    ttl_plan_info_t info;
    int32_t allow_tf32;
    int32_t mma_ok;  /* allow_3xtf32, on a device (and a build) with TF32 tensor cores */
    size_t ws_limit; /* ttl_cuda_plan_opts_t.workspace_limit */
    /* SEQUENTIAL and SEQUENTIAL_BLAS */
    fc_seq_schedule_t seq;
    /* FUSED */
    fc_fused_config_t fused;
    /* DENSE: W^T [N, M] row-major on the device (= W in column-major order for cuBLAS) */
    float *wt;
};

// ---------------------------------------------------------------------------------------------------------------
// launchers and helpers (fc_*.cu)
// ---------------------------------------------------------------------------------------------------------------

/* fc_layer.cu: offsets, leading dimensions and total floats of the At matrices of one order (FC_FTL, FC_LTF),
 * and filling them (host memory, zero padding expected) from the packed host cores. */
ttl_status_t fc_at_layout(int64_t *offset, int64_t *lda, int64_t *total, const ttl_fc_desc_t *d, int order);
void fc_at_fill(float *at, const int64_t *offset, const int64_t *lda, const ttl_fc_desc_t *d,
                const int64_t *core_offset, const float *cores, int order);

/* The `mma` input of the TT-FC planners: FFMA tiles only; tensor-core tiles where the cost model prefers them; or
 * every tiled step on the tensor cores (tests). */
#define FC_MMA_OFF 0
#define FC_MMA_ALLOWED 1
#define FC_MMA_FORCED 2

/* Test hook, like ttl_conv_tt_test_overrides: with force_mma, a named algorithm planned with allow_3xtf32 on a
 * device with TF32 tensor cores runs every tiled step on them (FC_MMA_FORCED), so that the GPU tests' small shapes
 * (the ones the sanitizers run) reach the tensor-core tiles of both kernels. Not part of the API; tests set it
 * single-threaded. */
typedef struct ttl_fc_test_overrides {
    int32_t force_mma;
} ttl_fc_test_overrides_t;
extern ttl_fc_test_overrides_t ttl_fc_test_overrides;

/* fc_sequential.cu: one libttl contraction kernel per launch; bias (may be NULL) added by the last step.
 * fc_tile_choose picks the cheapest tile of the given forms (FC_FORM_*) for a contraction, `ways` being the bank
 * conflicts of a tensor-core tile's direct reads (fc_mma_layout_t). fc_seq_schedule_plan picks the schedule with
 * the least estimated time whose workspace is at most `limit` bytes (0: twice the larger of x and y), or else the
 * one with the least workspace (`blas`: estimated for SEQUENTIAL_BLAS; `mma`: tensor-core tiles allowed);
 * fc_seq_schedule_fixed lays out a given slicing (tests; `tiles`: also choose the tiles). Host only. */
#define FC_FORM_FFMA 1u
#define FC_FORM_MMA 2u
#define FC_FORM_ANY (FC_FORM_FFMA | FC_FORM_MMA)
/* The tile forms a staged step may take under the planners' `mma` input. */
static inline unsigned fc_mma_forms(int32_t mma) {
    return mma == FC_MMA_FORCED ? FC_FORM_MMA : mma == FC_MMA_ALLOWED ? FC_FORM_ANY : FC_FORM_FFMA;
}
fc_tile_cfg_t fc_tile_choose(int64_t L, int64_t P, int64_t Q, int64_t R, int64_t parallel_ctas, int direct,
                             unsigned forms, int ways);
/* Tiles of a contraction under configuration t, and the estimated time of one of them on one SM (alone). */
int64_t fc_tile_count(int64_t L, int64_t P, int64_t R, fc_tile_cfg_t t);
double fc_tile_us(int64_t Q, int64_t R, fc_tile_cfg_t t, int ways);
ttl_status_t fc_seq_schedule_plan(fc_seq_schedule_t *s, const ttl_cuda_fc_layer_t *layer, int64_t batch,
                                  ttl_order_t order, int blas, size_t limit, int mma);
ttl_status_t fc_seq_schedule_fixed(fc_seq_schedule_t *s, const ttl_cuda_fc_layer_t *layer, int64_t batch,
                                   ttl_order_t order, int32_t num_sliced, int64_t chunk_units, int tiles, int mma);
double fc_seq_estimate(const fc_seq_schedule_t *s, const ttl_cuda_handle_t *handle, int blas);
int64_t fc_seq_num_launches(const fc_seq_schedule_t *s);
fc_seq_launch_t fc_seq_launch(const fc_seq_schedule_t *s, int64_t n, float *y, const float *x, unsigned char *ws);
ttl_status_t fc_sequential_check(const fc_seq_schedule_t *s);
ttl_status_t fc_sequential_run(const ttl_cuda_fc_plan_t *plan, float *y, const float *x, unsigned char *ws,
                               cudaStream_t stream);

/* fc_blas.cu: one cuBLAS (strided-batched) SGEMM per launch of the schedule. */
ttl_status_t fc_blas_check(const fc_seq_schedule_t *s, int64_t M);
ttl_status_t fc_blas_run(const ttl_cuda_fc_plan_t *plan, float *y, const float *x, unsigned char *ws);

/* fc_fused.cu: the least pad (0 .. 31 floats) after each row of Q R floats of a tensor [L, Q, R] in shared memory
 * for which every warp-wide read of the direct tile (32 consecutive columns c = l R + r from a multiple of 32, at
 * l (Q R + pad) + q R + r) touches 32 different banks. Host only. */
int32_t fc_direct_pad(int64_t Q, int64_t R);

/* fc_fused.cu: the layout of a tensor [L, Q, R] in shared memory for the direct reads of a tensor-core tile: a warp
 * reads 8 consecutive columns c = l R + r (from a multiple of 8) at 4 consecutive q, element (l, q, r) at
 * l ls + q qs + r. `ways`: the most distinct addresses any of those reads puts on one bank (1: conflict-free).
 * Padding after each run of R (row = R) or each row of Q R (row = Q R); the least ways, then the least pad. */
typedef struct fc_mma_layout {
    int64_t row, pad; /* the writer's output map: pad floats after every `row` */
    int64_t qs, ls;
    int32_t ways;
} fc_mma_layout_t;
fc_mma_layout_t fc_mma_layout_choose(int64_t Q, int64_t R);
int32_t fc_mma_read_ways(int64_t R, int64_t qs, int64_t ls);

/* fc_fused.cu: picks order (unless fixed), merged cores (unless merged_only >= 0), samples per CTA and the tiles
 * (tensor-core ones as `mma` says, FC_MMA_*); UNSUPPORTED when nothing fits.
 * fc_fused_plan is host only; fc_fused_configure also prepares the kernel. */
ttl_status_t fc_fused_plan(fc_fused_config_t *cfg, const ttl_cuda_fc_layer_t *layer, int64_t batch,
                           ttl_order_t order, int32_t merged_only, int32_t mma);
ttl_status_t fc_fused_configure(fc_fused_config_t *cfg, const ttl_cuda_fc_layer_t *layer, int64_t batch,
                                ttl_order_t order, int32_t mma);
ttl_status_t fc_fused_run(const fc_fused_config_t *cfg, float *y, const float *x, cudaStream_t stream);
/* Whether the TT-FC kernels can take tensor-core tiles on the handle's device (ttl_cuda_tf32_mma_usable). */
ttl_status_t fc_mma_usable(const ttl_cuda_handle_t *handle, int32_t *usable);

/* fc_dense.cu: builds W^T on the device (plan time, synchronises), and runs y = x W^T + bias. */
ttl_status_t fc_dense_build(float **wt, const ttl_cuda_fc_layer_t *layer);
ttl_status_t fc_dense_run(const ttl_cuda_fc_plan_t *plan, float *y, const float *x);
/* y[b, i] = bias[i] for b < batch. */
ttl_status_t fc_bias_fill(float *y, const float *bias, int64_t batch, int64_t M, cudaStream_t stream);
/* v[i] = a small non-zero pattern, for autotune inputs. */
ttl_status_t fc_pattern_fill(float *v, int64_t count, cudaStream_t stream);

#endif /* TTL_CUDA_FC_INTERNAL_H */
