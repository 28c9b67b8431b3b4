/*
 * Internal pieces of the CPU fast paths (every src/cpu file but the reference): the sequential TT-matrix
 * engine shared by TT-FC and both TT-conv orders, the float reconstruction chain used by the dense paths, the
 * axis swap every re-layout in these files reduces to, the conv algorithms the conv plan dispatches to, and the
 * rates AUTO's time model weighs multiply-adds with.
 */
#ifndef TTL_CPU_CPU_INTERNAL_H
#define TTL_CPU_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ttl/ttl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------------------- */
/* Re-layout                                                                                                    */
/* ---------------------------------------------------------------------------------------------------------- */

/* dst[o, j, i, t] = src[o, i, j, t]: swaps the two middle axes of a row-major [outer, a, b, inner] tensor.
 * dst and src must not overlap. */
void ttl_swap_middle(float *dst, const float *src, int64_t outer, int64_t a, int64_t b, int64_t inner);

/* y[r, :] += bias for r = 0..rows-1 (y is [rows, n]); nothing when bias is NULL. */
void ttl_add_bias_rows(float *y, const float *bias, int64_t rows, int64_t n);

/* ---------------------------------------------------------------------------------------------------------- */
/* Sequential TT-matrix engine (tt_sequential.c)                                                                */
/* ---------------------------------------------------------------------------------------------------------- */

/* How the left rank r_0 of the first core enters when it exceeds 1 (channel part of a TT-conv). */
typedef enum ttl_left_rank_role {
    TTL_LEFT_RANK_NONE = 0,   /* r_0 = 1: a plain TT-matrix */
    TTL_LEFT_RANK_INPUT = 1,  /* x rows are [r_0, N] (index (a, j)); y is [M] (spatial-first TT-conv) */
    TTL_LEFT_RANK_OUTPUT = 2, /* x rows are [N]; y rows are [r_0, M] (index (a, i)) (channels-first TT-conv) */
} ttl_left_rank_role_t;

/* A fixed schedule of y = W x (+ bias) by one GEMM per core, for up to max_batch rows, processed in chunks of
 * `chunk` rows so the intermediates stay in cache. The left rank is folded into the first mode, so the
 * schedule always runs a TT-matrix with r_0 = 1 (`merged`):
 *  - first to last keeps the working tensor as [r_{k-1}, n_k, n_{k+1}..n_d, b, m_1..m_{k-1}] (tt-layers.md):
 *    out[(r_k m_k), rest] = A_k[(r_k m_k), (r_{k-1} n_k)] T[(r_{k-1} n_k), rest], then m_k moves to the end;
 *  - last to first keeps it as [b, m_{k+1}..m_d, n_1..n_{k-1}, n_k, r_k]:
 *    out[rest, (m_k r_{k-1})] = T[rest, (n_k r_k)] A_k[(n_k r_k), (m_k r_{k-1})], then m_k moves after b.
 * Workspace: the re-laid-out cores A_k, then two buffers of chunk * buf_elems floats. */
typedef struct ttl_tt_seq {
    ttl_fc_desc_t merged;      /* ranks[0] == 1; mode 0 absorbs the original r_0 */
    ttl_left_rank_role_t role; /* how the original r_0 was merged */
    int64_t left_rank;         /* the original r_0 */
    ttl_order_t order;         /* FIRST_TO_LAST or LAST_TO_FIRST */
    int64_t max_batch;         /* rows the workspace is sized for */
    int64_t chunk;             /* rows per chunk */
    int64_t buf_elems;         /* floats of the largest intermediate of one row */
    int64_t core_elems;        /* floats of all re-laid-out cores */
    int64_t macs_per_row;      /* ttl_fc_macs_sequential of `merged` */
    size_t workspace_bytes;    /* exact scratch of ttl_tt_seq_run for max_batch rows */
} ttl_tt_seq_t;

/* Plans the schedule of `desc` (whose ranks[0] may exceed 1 when role is INPUT or OUTPUT) in `order`
 * (AUTO picks the one with fewer multiply-adds). */
ttl_status_t ttl_tt_seq_init(ttl_tt_seq_t *seq, const ttl_fc_desc_t *desc, ttl_left_rank_role_t role,
                             ttl_order_t order, int64_t max_batch);

/* y[b, :] = W x[b, :] (+ bias) for b < batch <= max_batch. x rows have seq->merged.in_features floats, y rows
 * seq->merged.out_features; bias (may be NULL) has seq->merged.out_features entries. ws holds at least
 * seq->workspace_bytes, 64-byte aligned or not. */
void ttl_tt_seq_run(const ttl_tt_seq_t *seq, float *y, const float *x, const float *cores, const float *bias,
                    int64_t batch, void *ws);

/* ---------------------------------------------------------------------------------------------------------- */
/* Float reconstruction chain (tt_reconstruct.c)                                                               */
/* ---------------------------------------------------------------------------------------------------------- */

/* Floats of scratch ttl_tt_chain_run needs (besides its destination). */
ttl_status_t ttl_tt_chain_scratch(int64_t *elems, const ttl_fc_desc_t *desc, int64_t lead);

/* dst[i, l, j] = sum_a lead_mat[l, a] (G_1[a, i_1, j_1, :] ... G_d[:, i_d, j_d, 0]) for l < lead, i.e. dst is
 * [M, lead, N]. With lead_mat NULL, lead must be 1 and ranks[0] 1 (TT-FC: dst is W[M, N]); otherwise lead_mat is
 * [lead, r_0] (TT-conv: the spatial core, giving K as [S, kh kw, C]). Multiply-adds: the macs_reconstruct
 * formula of ttl_fc_stats / ttl_conv_stats (plus one copy of dst when lead and M exceed 1). scratch holds
 * ttl_tt_chain_scratch floats. */
void ttl_tt_chain_run(float *dst, const ttl_fc_desc_t *desc, const float *cores, const float *lead_mat,
                      int64_t lead, float *scratch);

/* ttl_tt_chain_run into a new buffer: *dst = [M, lead, N] from malloc (the caller frees it), the scratch
 * allocated and freed here. OUT_OF_MEMORY (or OVERFLOW) leaves *dst untouched and nothing allocated. */
ttl_status_t ttl_tt_chain_build(float **dst, const ttl_fc_desc_t *desc, const float *cores, const float *lead_mat,
                                int64_t lead);

/* ---------------------------------------------------------------------------------------------------------- */
/* Conv algorithms (conv_*.c), dispatched by conv_plan.c                                                        */
/* ---------------------------------------------------------------------------------------------------------- */

/* The fixed geometry of a conv plan. */
typedef struct ttl_conv_geom {
    ttl_conv_desc_t desc;
    ttl_conv_shape_t shape;
    int64_t out_h, out_w;
} ttl_conv_geom_t;

/* Spatial first: Z[pixel, r_0, C] by r_0 filters per input channel, then the channel TT-matrix (left rank as an
 * input index) per output pixel, `chunk` output pixels at a time. */
typedef struct ttl_conv_sf {
    ttl_tt_seq_t seq;       /* channel TT for `chunk` rows */
    int64_t chunk;          /* output pixels per chunk */
    size_t workspace_bytes; /* Z, the NCHW staging rows, then seq's workspace */
} ttl_conv_sf_t;

ttl_status_t ttl_conv_sf_init(ttl_conv_sf_t *sf, const ttl_conv_geom_t *g, ttl_order_t order);
void ttl_conv_sf_run(const ttl_conv_sf_t *sf, const ttl_conv_geom_t *g, float *y, const float *x,
                     const float *cores, const float *bias, void *ws);

/* Channels first: Z[pixel, r_0, S] by the channel TT-matrix (left rank as an output index) at every input pixel
 * of a band of input rows, then a kh x kw convolution summing over r_0, `band_rows` output rows at a time. */
typedef struct ttl_conv_cf {
    ttl_tt_seq_t seq;       /* channel TT for one band of input pixels */
    int64_t band_rows;      /* output rows per band */
    int64_t band_in_rows;   /* input rows one band needs at most */
    size_t workspace_bytes; /* Z, the NCHW input staging, then seq's workspace */
} ttl_conv_cf_t;

ttl_status_t ttl_conv_cf_init(ttl_conv_cf_t *cf, const ttl_conv_geom_t *g, ttl_order_t order);
void ttl_conv_cf_run(const ttl_conv_cf_t *cf, const ttl_conv_geom_t *g, float *y, const float *x,
                     const float *cores, const float *bias, void *ws);

/* Dense: K as [S, kh kw, C] by the float chain, then one GEMM of inner size C kh kw per chunk of `chunk` output
 * pixels, over an im2col buffer of chunk C kh kw floats (none when x is read in place: 1x1 stride-1 unpadded
 * convolutions). K is rebuilt in the workspace on every call, or once at init into `kernel` when the plan binds
 * its weights. */
typedef struct ttl_conv_dense {
    int64_t chunk;          /* output pixels per GEMM (NHWC: over the whole batch; NCHW: within one image) */
    int64_t kernel_elems;   /* S C kh kw */
    int64_t chain_elems;    /* scratch of the chain */
    int64_t im2col_elems;   /* chunk C kh kw, or 0 when x is read in place */
    float *kernel;          /* K [S, kh kw, C] built at init from bound cores (owned), or NULL */
    size_t workspace_bytes; /* unbound: K (aligned), then max(chain scratch, im2col); bound: the im2col buffer */
} ttl_conv_dense_t;

/* bound_cores: the plan's bound weights, or NULL. With them (and batch > 0) K is built here; release it with
 * ttl_conv_dense_fini. On failure nothing is allocated. */
ttl_status_t ttl_conv_dense_init(ttl_conv_dense_t *dn, const ttl_conv_geom_t *g, const float *bound_cores);
void ttl_conv_dense_fini(ttl_conv_dense_t *dn);
/* cores are read only when dn->kernel is NULL. */
void ttl_conv_dense_run(const ttl_conv_dense_t *dn, const ttl_conv_geom_t *g, float *y, const float *x,
                        const float *cores, const float *bias, void *ws);

/* ---------------------------------------------------------------------------------------------------------- */
/* AUTO's time model (fc_plan.c, conv_plan.c)                                                                   */
/* ---------------------------------------------------------------------------------------------------------- */

/* Relative rates, in multiply-adds per unit of time, of the kinds of work the CPU algorithms do. With bound
 * weights AUTO estimates each algorithm's time as its multiply-adds over its rate and takes the shortest.
 * Measured with ttl-bench on the paper suite (bench/results/cpu-2026-11-27.json: 2-core AMD EPYC, OpenBLAS
 * 0.3.21, dense paths on W/K built once): the TT contractions (sequential FC and both conv orders: GEMMs whose
 * inner size is a rank times a mode) ran at a median 27 GFLOP/s (FC) and 32 (conv); the dense im2col GEMM of a
 * conv at 89 (middle half 79-124) and the FC sgemm at 131, so 3-5x; sgemv (FC at batch 1) streams W once per
 * call and ran at 18, about two thirds of the contractions. GEMM takes the low end (3x): an estimate that favours
 * DENSE slightly too little costs less than one that picks it where TT is faster. Only the ratios matter.
 * Unbound plans keep the multiply-add rule (the per-call reconstruction counted), so callers that bind nothing
 * keep the choices they had. On the bench's shapes this model (the reconstruction at the TT rate) would move six
 * unbound conv rows to DENSE (vgg_conv*_r16, the naive convs), none slower in that run: a candidate for a later,
 * deliberate change. */
#define TTL_CPU_RATE_TT 1.0   /* sequential TT-matrix contractions, spatial-first and channels-first conv */
#define TTL_CPU_RATE_GEMM 3.0 /* one dense sgemm (FC at batch > 1) or the im2col GEMMs of the dense conv */
#define TTL_CPU_RATE_GEMV 0.7 /* one dense sgemv (FC at batch 1) */

/* Estimated time of `macs` multiply-adds of work that runs at `rate`, in the units of the rates above. */
static inline double ttl_cpu_time(int64_t macs, double rate) { return (double)macs / rate; }

#ifdef __cplusplus
}
#endif

#endif /* TTL_CPU_CPU_INTERNAL_H */
