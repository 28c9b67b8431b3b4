/*
 * Internal pieces of the TT-conv GPU path, shared by conv_layer.cu (device-resident layer and re-laid-out
 * cores), conv_tt.cu (SPATIAL_FIRST / CHANNELS_FIRST kernels), conv_dense.cu (reconstruct K + cuDNN) and
 * conv_plan.cu (plans, AUTO, autotune, forward dispatch).
 *
 * The channel part of a TT-conv is run as a TT-matrix with left rank 1 after merging r_0 into the first mode:
 *  - spatial first: r_0 is an INPUT index, first core [1, s_1, (r_0 c_1), r_1] (a copy re-laid out),
 *  - channels first: r_0 is an OUTPUT index, first core [1, (r_0 s_1), c_1, r_1] (the same memory as G_1).
 * Each contraction step k of either core order is then one small matrix product per pixel,
 *     out[l][o][r] = sum_i A_k[o][i] in[l][i][r]      (docs/tt-layers.md, section 1)
 * with (l, o, i, r) ranging over
 *     first to last: l = (m_1..m_{k-1}), i = (r_{k-1}, n_k), o = (m_k, r_k), r = (n_{k+1}..n_d)
 *     last to first: l = (n_1..n_{k-1}), i = (n_k, r_k),     o = (r_{k-1}, m_k), r = (m_{k+1}..m_d)
 * so that the state starts as the input vector and ends as the output vector, both row-major. A_k is stored
 * transposed and zero-padded, At_k[i][o] with o < Opad (a multiple of TTL_CONV_OPAD, and 8 mod 16 so that the
 * tensor-core step's lanes read its rows on distinct banks), so that a thread loads TO consecutive o with vector
 * loads. Pixels are the fastest index of every state: [l][i][r][pixel]. A fused tensor-core chain permutes the
 * 8-float blocks of some states' rows (ttl_conv_state_layout_t) so that its B fragment loads avoid bank conflicts.
 */
#ifndef TTL_CUDA_CONV_INTERNAL_H
#define TTL_CUDA_CONV_INTERNAL_H

#include <cudnn.h>

#include "cuda/cuda_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------------------------------------------------------
// constants
// ---------------------------------------------------------------------------------------------------------------

#define TTL_CONV_THREADS 256    /* threads per block of every TT-conv kernel */
#define TTL_CONV_TN 4           /* consecutive pixel-minor outputs per thread (one float4) */
#define TTL_CONV_OPAD 8         /* At rows padded to a multiple of the largest register tile height */
#define TTL_CONV_R0_BLOCK 4     /* spatial core padded to [kh kw][r0pad], r0pad a multiple of this */
#define TTL_CONV_MAX_TILE_PX 64 /* most pixels one fused block holds (<= TTL_CONV_THREADS) */

enum { TTL_CONV_VARIANT_SF = 0, TTL_CONV_VARIANT_CF = 1, TTL_CONV_VARIANTS = 2 };
/* Forms of the fused kernel a plan may ask for: the planner's default (the largest tile, or a smaller one that
 * fits two blocks per SM at the same work per pixel), always the largest tile, or the sliced chain (SF only). */
enum { TTL_CONV_FUSED_DEFAULT = 0, TTL_CONV_FUSED_LARGEST_TILE = 1, TTL_CONV_FUSED_SLICED = 2 };
enum { TTL_CONV_ORDER_F2L = 0, TTL_CONV_ORDER_L2F = 1, TTL_CONV_ORDERS = 2 };

// ---------------------------------------------------------------------------------------------------------------
// the channel TT-matrix as a chain of per-pixel matrix products
// ---------------------------------------------------------------------------------------------------------------

/* How a fused tensor-core chain lays out a step's input state, so that the step's B fragments read it without
 * bank conflicts, and how the state's writer (the producer, or the step before) finds its elements there
 * (conv_tt.cuh, "swizzled states"). All zero elsewhere: plain rows. */
enum { TTL_CONV_SWIZZLE_NONE = 0, TTL_CONV_SWIZZLE_4 = 1, TTL_CONV_SWIZZLE_2 = 2 };
typedef struct ttl_conv_state_layout {
    int32_t swizzle;   /* TTL_CONV_SWIZZLE_*: how a row's 8-float blocks are permuted by the row's index */
    int32_t split;     /* > 0: the reader's rows per row of the writer; 0: the writer's rows per reader row (div) */
    int32_t l_rows;    /* reader rows per l of the writing step (its O rows) */
    ttl_divider_t div; /* split: by the reader's row length in floats; else by the writer's rows per reader row */
} ttl_conv_state_layout_t;

typedef struct ttl_conv_tt_step {
    int32_t L, I, O, Opad, R; /* state in is [L][I][R], out is [L][O][R] per pixel */
    int32_t to;               /* register tile height (8, 4 or 2), chosen by the plan */
    int64_t at_offset;        /* floats from the start of the chain's At buffer to At_k [I][Opad] */
    int32_t a_rows;           /* rows of At_k from one i to the next: 1, or n_d in a sliced chain's last step */
    int16_t mma_mt, mma_nt;   /* 3xTF32 tensor-core step: 16-row by 8-column tiles per warp; 0: the FFMA step */
    ttl_conv_state_layout_t in_layout; /* the fused chain's layout of this step's input (tensor-core chains) */
} ttl_conv_tt_step_t;

/* A sliced chain (spatial first, first to last, d >= 2) runs once per value j of the last input mode n_d: n_d is
 * the fastest column index of every step before the last, so those steps run on R / n_d columns per pixel, and
 * the last step contracts (r_{d-1}, j) only, rows j, j + n_d, ... of At_d, adding into an accumulator that the
 * sink reads after the last slice. The working state shrinks n_d-fold for the same multiply-adds. */
typedef struct ttl_conv_tt_chain {
    int32_t num_steps;         /* d, in execution order */
    int32_t slices;            /* 1, or n_d for a sliced chain (fused spatial first only) */
    int32_t in_size, out_size; /* per-pixel input (r_0 C or C) and output (S or r_0 S) */
    int32_t max_state;         /* largest per-pixel state of the chain (sliced: of one slice, not the sum) */
    int64_t at_floats;         /* size of the At buffer, a multiple of TTL_CONV_OPAD */
    int64_t macs;              /* multiply-adds per pixel (unpadded) */
    ttl_conv_tt_step_t steps[TTL_MAX_CORES];
} ttl_conv_tt_chain_t;

// ---------------------------------------------------------------------------------------------------------------
// geometry passed to kernels
// ---------------------------------------------------------------------------------------------------------------

typedef struct ttl_conv_geom {
    int64_t B, C, H, W, S, OH, OW;
    int32_t kh, kw, sh, sw, ph, pw, dh, dw;
    int32_t r0, r0pad;
    int32_t nhwc;
} ttl_conv_geom_t;

/* One piece of channels-first work: images [b0, b0 + bc), output rows [oh0, oh0 + rb) and columns
 * [ow0, ow0 + cw) of each, which read input rows [ih_lo, ih_lo + nrows) and columns [iw_lo, iw_lo + ncols).
 * U holds the channel TT of exactly those input pixels: [bi][row][col][r_0][S]. */
typedef struct ttl_conv_cf_chunk {
    int64_t b0, bc;
    int64_t oh0, rb;
    int64_t ow0, cw;
    int64_t ih_lo, nrows;
    int64_t iw_lo, ncols;
    int64_t npix; /* bc * nrows * ncols */
} ttl_conv_cf_chunk_t;

// ---------------------------------------------------------------------------------------------------------------
// layer and plan
// ---------------------------------------------------------------------------------------------------------------

struct ttl_cuda_conv_layer {
    ttl_cuda_handle_t *handle;
    ttl_conv_desc_t desc;
    int64_t param_count;
    float *d_cores; /* packed as given: spatial core [kh, kw, r_0], then G_1..G_d */
    float *d_bias;  /* [S] or NULL */
    float *d_g0;    /* spatial core padded to [kh kw][r0pad], zeros for a >= r_0 */
    int32_t r0pad;
    int32_t tt_ok; /* the chains below exist (every per-pixel size fits int32) */
    ttl_conv_tt_chain_t chain[TTL_CONV_VARIANTS][TTL_CONV_ORDERS];
    float *d_at[TTL_CONV_VARIANTS][TTL_CONV_ORDERS];
};

typedef struct ttl_conv_dense {
    float *d_K; /* [S, C, kh, kw] (NCHW) or [S, kh, kw, C] (NHWC) */
    cudnnTensorDescriptor_t x_desc, y_desc;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv_desc;
    cudnnConvolutionFwdAlgo_t algo;
    size_t ws_bytes;
    int32_t ready; /* descriptors made and an algorithm found (batch > 0) */
} ttl_conv_dense_t;

struct ttl_cuda_conv_plan {
    ttl_cuda_conv_layer_t *layer;
    ttl_conv_shape_t shape;
    ttl_conv_geom_t geom;
    ttl_plan_info_t info;
    size_t ws_limit; /* ttl_cuda_plan_opts_t.workspace_limit */
    /* TT algorithms */
    int32_t variant, order_idx;
    ttl_conv_tt_chain_t chain; /* the layer's chain with the register tiles chosen for this plan */
    const float *d_at;
    int32_t fused_form;          /* planner input, TTL_CONV_FUSED_*: the default, or one of autotune's others */
    int32_t mma;                 /* planner input: 1 runs the TT steps in 3xTF32 on the tensor cores */
    int32_t fused;               /* 1: one kernel per pixel tile; 0: produce / steps / sink kernels over chunks */
    int32_t tile_px;             /* fused: pixels per block tile (multiple of TTL_CONV_TN) */
    int32_t max_blocks;          /* fused: resident blocks on the device (persistent grid size cap) */
    size_t fused_smem;           /* fused: dynamic shared memory bytes */
    int64_t chunk_px;            /* unfused: pixels per chunk (multiple of TTL_CONV_TN) */
    size_t buf_bytes;            /* unfused: bytes of each of the two state buffers */
    int64_t cf_bc, cf_rb, cf_cw; /* channels first: images, output rows and output columns per chunk */
    size_t u_bytes;              /* channels first: bytes of U */
    int64_t cf_tt_px;            /* channels first: input pixels the chain runs over, summed over chunks */
    int64_t cf_chunks;           /* channels first: chunks per forward */
    /* DENSE */
    ttl_conv_dense_t dense;
};

// ---------------------------------------------------------------------------------------------------------------
// internal entry points
// ---------------------------------------------------------------------------------------------------------------

/* conv_plan.cu: the kernels' geometry of a layer and activation shape (stats from ttl_conv_stats); UNSUPPORTED
 * when a filter parameter exceeds int32 (the kernels index filters with int). */
ttl_status_t ttl_conv_make_geom(ttl_conv_geom_t *geom, const ttl_cuda_conv_layer_t *layer,
                                const ttl_conv_shape_t *shape, const ttl_conv_stats_t *stats);

/* conv_tt.cu: decides fused/unfused, tiles, chunks and workspace for SPATIAL_FIRST or CHANNELS_FIRST with the
 * given core order (AUTO: fewer multiply-adds); fills plan->info. UNSUPPORTED when the chains do not exist. */
ttl_status_t ttl_conv_tt_setup(ttl_cuda_conv_plan_t *plan, ttl_algo_t algo, ttl_order_t order);
/* The same planning with the fused kernel's occupancy supplied by the caller: resident blocks per multiprocessor
 * of the plan's fused kernel (its variant and step form) for `smem` bytes of dynamic shared memory (0: the kernel
 * cannot run with it). ttl_conv_tt_setup passes the device's answer; the CPU emulation test
 * (tests/cpu/test_cuda_conv_emulation.cpp) plans without a device. */
typedef ttl_status_t (*ttl_conv_fused_occupancy_fn)(const ttl_cuda_conv_plan_t *plan, size_t smem,
                                                    int *blocks_per_sm);
ttl_status_t ttl_conv_tt_plan(ttl_cuda_conv_plan_t *plan, ttl_algo_t algo, ttl_order_t order,
                              ttl_conv_fused_occupancy_fn occupancy);
/* Enqueues a TT forward on `stream`; ws holds plan->info.workspace_bytes (16-byte aligned). */
ttl_status_t ttl_conv_tt_forward(const ttl_cuda_conv_plan_t *plan, cudaStream_t stream, float *y, const float *x,
                                 void *ws);
/* Test hooks, read at plan creation only (zero: normal planning): force_unfused makes SPATIAL_FIRST and
 * CHANNELS_FIRST use the chunked kernels; tile_px fixes the fused tile (the padded state rows of 16-pixel
 * multiples, which small test images would not otherwise reach). Not part of the API; tests set it single-threaded.
 * (Small chunks come from a small ttl_cuda_plan_opts_t.workspace_limit.) */
typedef struct ttl_conv_tt_overrides {
    int32_t force_unfused;
    int32_t tile_px;    /* > 0: fused tiles of this many pixels (a multiple of TTL_CONV_TN) where they fit */
    int32_t fused_form; /* TTL_CONV_FUSED_*: the form a plan of the default form asks for instead */
} ttl_conv_tt_overrides_t;
extern ttl_conv_tt_overrides_t ttl_conv_tt_test_overrides;

/* conv_dense.cu: reconstructs K and, for batch > 0, finds cuDNN's best forward algorithm; fills plan->info. */
ttl_status_t ttl_conv_dense_setup(ttl_cuda_conv_plan_t *plan, int32_t allow_tf32);
ttl_status_t ttl_conv_dense_forward(const ttl_cuda_conv_plan_t *plan, float *y, const float *x, void *ws);
void ttl_conv_dense_release(ttl_conv_dense_t *dense);

/* conv_layer.cu: the host re-layouts a layer uploads (also what the CPU emulation test runs on).
 * ttl_conv_host_g0: the spatial core padded to [kh kw][r0pad] (malloc'd; *g0 NULL when a filter size does not
 * fit int32, and the TT algorithms are then unavailable). ttl_conv_host_chains: the chains of both variants and
 * orders with their At buffers (malloc'd); every at[v][o] NULL when a per-pixel size does not fit int32. */
ttl_status_t ttl_conv_host_g0(float **g0, int32_t *r0pad, const ttl_conv_desc_t *desc, const float *cores);
ttl_status_t ttl_conv_host_chains(ttl_conv_tt_chain_t chain[TTL_CONV_VARIANTS][TTL_CONV_ORDERS],
                                  float *at[TTL_CONV_VARIANTS][TTL_CONV_ORDERS], const ttl_conv_desc_t *desc,
                                  const float *cores);

#ifdef __cplusplus
}
#endif

#endif /* TTL_CUDA_CONV_INTERNAL_H */
