/*
 * The one contraction every libttl TT-FC kernel is made of, computed for one CTA tile:
 *
 *     Out[l, p, r] = sum_q A[p, q] In[l, q, r] (+ bias)      In [L, Q, R], A [P, Q] stored as At[q * lda + p]
 *
 * Seen as a GEMM it is C[p, c] = sum_q A[p, q] B[q, c] over the columns c = l * R + r, with B[q, c] at
 * In[l * in_ls + q * R + r] (in_ls = Q R, or more for the padded rows of a fused intermediate). A CTA tile is
 * ROWS = tp * wp values of p by COLS = (FC_WARPS / wp) * 32 * tc columns. The q range is walked in chunks of kc
 * (fc_tile_kc): the chunk of A (ROWS x kc) is staged in shared memory, and so is the chunk of B (kc x COLS) unless
 * the tile is direct; then each thread accumulates a tp x tc register tile: its rows are consecutive (one vector
 * load of At, the same address for the whole warp), its columns are lane + 32 t (consecutive across the warp, so
 * the B reads hit 32 different banks). A direct tile reads B straight from In, which is then in shared memory with
 * its rows padded for the same property (fc_direct_pad): staging a value costs about ten instructions, more than
 * the multiply-adds a value of B feeds in a small tile. In and Out may live in device or shared memory (generic
 * pointers), which lets the sequential kernel (one tile per CTA) and the fused kernel (a loop over tiles inside
 * one CTA) share this code.
 *
 * Output map: element (l, p, r) goes to out[o + (o / out_row) * out_pad] with o = (l / lps) * bs + base + e * es
 * and e = ((l % lps) * P + p) * R + r, and bias[base + e * es] is added when bias is not NULL. An intermediate uses
 * lps = L, bs = 0, base = 0, es = 1 (plain [L, P, R], rows padded by out_pad when the next step reads it
 * directly); the last step maps into y (see fc_fused.cu for the strided variants) with out_pad = 0.
 *
 * Bounds: columns c >= L R and rows p >= P are staged as zeros (direct: read at column 0) and never stored; a
 * chunk reads In at colbase(c) + q R <= (L - 1) in_ls + (R - 1) + (Q - 1) R < L in_ls, and At at q lda + p < Q lda.
 */
#ifndef TTL_CUDA_FC_TILE_CUH
#define TTL_CUDA_FC_TILE_CUH

#include <stdint.h>

#include "cuda/cta.cuh"
#include "cuda/fc_internal.h"

#define FC_THREADS 256
#define FC_WARPS (FC_THREADS / 32)
#define FC_KC 16
#define FC_MAX_COLS 512
#define FC_MAX_ROWS 64

static_assert(FC_WARPS == 8, "tile shapes below assume 8 warps");
static_assert(FC_MAX_ROWS == 8 * FC_WARPS, "largest row tile is tp = 8 times wp = 8");

// ---------------------------------------------------------------------------------------------------------------
// tile geometry (host and device)
// ---------------------------------------------------------------------------------------------------------------

__host__ __device__ static inline int fc_tile_rows(int tp, int wp) { return tp * wp; }
__host__ __device__ static inline int fc_tile_cols(int tc, int wp) { return (FC_WARPS / wp) * 32 * tc; }

/* floor(log2 v) and ceil(log2 v), v >= 1. Tile rows and columns are powers of two (tp, tc, wp and FC_WARPS
 * are), so the staging loops split their flat index with a shift and a mask: a division by a runtime divisor
 * there cost more instructions per staged value than the tile's multiply-adds per value. */
__host__ __device__ static inline int fc_floor_log2(int v) {
#ifdef __CUDA_ARCH__
    return 31 - __clz(v);
#else
    return 31 - __builtin_clz((unsigned)v);
#endif
}
__host__ __device__ static inline int fc_ceil_log2(int v) { return v <= 1 ? 0 : fc_floor_log2(v - 1) + 1; }

/* Division of 0 <= n < 2^31 by a divisor 1 <= d < 2^31 fixed per contraction: a multiply-high, an add and a shift
 * (the round-up method of Granlund and Montgomery, as in PyTorch's IntDivider) instead of the division routine a
 * tile would otherwise run per column. m = floor(2^32 (2^s - d) / d) + 1 < 2^32 with 2^s >= d > 2^(s-1)
 * (fc_divider: fc_internal.h). */
__host__ __device__ static inline fc_divider fc_divider_make(uint32_t d) {
    const uint32_t s = (uint32_t)fc_ceil_log2((int)d);
    const uint64_t m = (((uint64_t)1 << 32) * (((uint64_t)1 << s) - d)) / d + 1;
    return fc_divider{(uint32_t)m, s};
}

__host__ __device__ static inline uint32_t fc_div(uint32_t n, fc_divider v) {
#ifdef __CUDA_ARCH__
    const uint32_t t = __umulhi(n, v.m);
#else
    const uint32_t t = (uint32_t)(((uint64_t)n * v.m) >> 32);
#endif
    return (t + n) >> v.shift; /* t <= n < 2^31: no overflow */
}

/* Upper bound of a tile's shared memory: every configuration fc_tile_choose may return (cols <= FC_MAX_COLS,
 * rows <= FC_MAX_ROWS) fits with chunks of at least FC_KC values of q. */
#define FC_TILE_SMEM_MAX                                                                                           \
    ((size_t)FC_MAX_COLS * sizeof(int64_t) + (size_t)FC_KC * FC_MAX_ROWS * sizeof(float) +                         \
     (size_t)FC_KC * (FC_MAX_COLS + 1) * sizeof(float))
/* Longest chunk of q staged at once. */
#define FC_KC_MAX 256

/* Columns whose B chunk and offsets a tile stages: none for a direct tile. */
__host__ __device__ static inline size_t fc_tile_staged_cols(int tc, int wp, int direct) {
    return direct ? 0 : (size_t)fc_tile_cols(tc, wp);
}

/* Values of q per staged chunk: the largest power of two FC_TILE_SMEM_MAX holds (narrow tiles take long chunks,
 * so a CTA that streams a long reduction from memory waits for it in few round trips), at least FC_KC. A power
 * of two, so that the q-fastest B stage splits its index with a shift (only a last, shorter chunk is padded). */
__host__ __device__ static inline int fc_tile_kc(int tp, int tc, int wp, int direct) {
    const size_t rows = (size_t)fc_tile_rows(tp, wp), cols = fc_tile_staged_cols(tc, wp, direct);
    const size_t fit =
        (FC_TILE_SMEM_MAX - cols * sizeof(int64_t)) / ((rows + cols + (direct ? 0 : 1)) * sizeof(float));
    return fit < FC_KC ? FC_KC : fit >= FC_KC_MAX ? FC_KC_MAX : 1 << fc_floor_log2((int)fit);
}

/* Shared memory of one tile: column offsets (int64), the A chunk, the B chunk (rows padded by one float); a
 * direct tile only the A chunk. At most FC_TILE_SMEM_MAX. */
__host__ __device__ static inline size_t fc_tile_smem_bytes(int tp, int tc, int wp, int direct) {
    const size_t rows = (size_t)fc_tile_rows(tp, wp), cols = fc_tile_staged_cols(tc, wp, direct);
    const size_t kc = (size_t)fc_tile_kc(tp, tc, wp, direct);
    return cols * sizeof(int64_t) + kc * rows * sizeof(float) + (cols > 0 ? kc * (cols + 1) * sizeof(float) : 0);
}

/* A contraction as the tile routine sees it. `small`: the columns L R and lps fit int32, and div_r / div_lps
 * divide by R and lps (fc_contraction_make); otherwise the tile divides in int64. in_ls: floats from one row l
 * of In to the next (Q R, or more when padded). out_pad > 0 (only for outputs in shared memory, all offsets below
 * 2^31): out_pad floats follow every out_row outputs, div_out_row divides by out_row. */
struct fc_contraction {
    const float *at;
    int64_t lda;
    const float *in;
    float *out;
    const float *bias;
    int64_t L, P, Q, R;
    int64_t lps, bs, base, es;
    fc_divider div_r, div_lps;
    int32_t small;
    int64_t in_ls;
    int32_t out_pad;
    fc_divider div_out_row;
};

/* A contraction of plain, unpadded tensors; `small` and the dividers are set from L, R and lps (host). */
static inline fc_contraction fc_contraction_make(const float *at, int64_t lda, const float *in, float *out,
                                                 const float *bias, int64_t L, int64_t P, int64_t Q, int64_t R,
                                                 int64_t lps, int64_t bs, int64_t base, int64_t es) {
    fc_contraction k;
    k.at = at, k.lda = lda, k.in = in, k.out = out, k.bias = bias;
    k.L = L, k.P = P, k.Q = Q, k.R = R;
    k.lps = lps, k.bs = bs, k.base = base, k.es = es;
    k.small = R > 0 && L <= INT32_MAX / R && lps <= INT32_MAX;
    k.div_r = fc_divider_make(k.small ? (uint32_t)R : 1u);
    k.div_lps = fc_divider_make(k.small && lps > 0 ? (uint32_t)lps : 1u);
    k.in_ls = Q * R;
    k.out_pad = 0;
    k.div_out_row = fc_divider_make(1u);
    return k;
}

/* fc_sequential.cu: the contraction one launch of a sequential plan computes (host). */
fc_contraction fc_seq_contraction(const ttl_cuda_fc_plan_t *plan, const fc_seq_launch_t &launch);

// ---------------------------------------------------------------------------------------------------------------
// device code
// ---------------------------------------------------------------------------------------------------------------

/* a[0..TP) = s[0..TP); s is aligned to TP floats (TP in 1, 2, 4, 8). */
template <int TP> __host__ __device__ __forceinline__ void fc_load_rows(float (&a)[TP], const float *s) {
    static_assert(TP == 1 || TP == 2 || TP == 4 || TP == 8, "row tile must be 1, 2, 4 or 8");
    if constexpr (TP == 1) {
        a[0] = s[0];
    } else if constexpr (TP == 2) {
        CTA_ASSERT_ALIGNED(s, 8);
        const float2 v = *reinterpret_cast<const float2 *>(s);
        a[0] = v.x, a[1] = v.y;
    } else {
        CTA_UNROLL
        for (int h = 0; h < TP / 4; ++h) {
            CTA_ASSERT_ALIGNED(s + 4 * h, 16);
            const float4 v = *reinterpret_cast<const float4 *>(s + 4 * h);
            a[4 * h + 0] = v.x, a[4 * h + 1] = v.y, a[4 * h + 2] = v.z, a[4 * h + 3] = v.w;
        }
    }
}

/* Copies n values into shared memory: store(i, load(i)) for i < n, spread over the CTA. Each thread issues
 * FC_STAGE_BATCH independent loads before its first store, so the loads overlap (a store in between would
 * serialise them: the compiler cannot tell that a generic source pointer does not alias the stage). */
#define FC_STAGE_BATCH 8
template <typename Load, typename Store>
__host__ __device__ __forceinline__ void fc_stage(int n, Load load, Store store) {
    for (int i0 = CTA_TID(); i0 < n; i0 += FC_THREADS * FC_STAGE_BATCH) {
        float v[FC_STAGE_BATCH];
        CTA_UNROLL
        for (int u = 0; u < FC_STAGE_BATCH; ++u) {
            const int i = i0 + u * FC_THREADS;
            v[u] = i < n ? load(i) : 0.0f;
        }
        CTA_UNROLL
        for (int u = 0; u < FC_STAGE_BATCH; ++u) {
            const int i = i0 + u * FC_THREADS;
            if (i < n) store(i, v[u]);
        }
    }
}

/* The row l of column c = l R + r: by the contraction's divider when `small`, in int64 otherwise. */
__host__ __device__ __forceinline__ int64_t fc_column_row(int64_t c, int32_t small, fc_divider div_r, int64_t R) {
    return small ? (int64_t)fc_div((uint32_t)c, div_r) : c / R;
}

/* Where output column c = l R + r goes (see the output map at the top of this file). */
struct fc_out_col {
    int64_t lb, lw, r;
};

/* The output map of a contraction with its fields read once: read through the contraction, they would be reloaded
 * after every store into `out`, which might alias them. */
struct fc_out_map {
    float *out;
    const float *bias;
    int64_t P, R, lps, bs, base, es;
    int32_t small, out_pad;
    fc_divider div_r, div_lps, div_out_row;

    __host__ __device__ explicit fc_out_map(const fc_contraction &k)
        : out(k.out), bias(k.bias), P(k.P), R(k.R), lps(k.lps), bs(k.bs), base(k.base), es(k.es), small(k.small),
          out_pad(k.out_pad), div_r(k.div_r), div_lps(k.div_lps), div_out_row(k.div_out_row) {}

    __host__ __device__ __forceinline__ fc_out_col column(int64_t c) const {
        const int64_t l = fc_column_row(c, small, div_r, R), lb = fc_column_row(l, small, div_lps, lps);
        return fc_out_col{lb, l - lb * lps, c - l * R};
    }

    /* Stores element (column, p), adding the bias. */
    __host__ __device__ __forceinline__ void store(const fc_out_col &col, int64_t p, float v) const {
        const int64_t e = (col.lw * P + p) * R + col.r, o = col.lb * bs + base + e * es;
        if (bias != NULL) v += bias[base + e * es];
        out[out_pad > 0 ? o + (int64_t)fc_div((uint32_t)o, div_out_row) * out_pad : o] = v;
    }
};

/* Stages a chunk of B (q in [q0, q0 + kc), the tile's columns) into Bs[qq * (cols + 1) + cc]. */
__host__ __device__ __forceinline__ void fc_stage_b(const fc_contraction &k, const int64_t *colbase, float *Bs,
                                                    int cols, int64_t q0, int kc) {
    const int cols_log = fc_floor_log2(cols), ldb = cols + 1;
    if (k.R >= 8) { /* runs of r are contiguous in memory: column index fastest */
        fc_stage(
            kc * cols,
            [&](int i) {
                const int qq = i >> cols_log, cc = i & (cols - 1);
                const int64_t base = colbase[cc];
                return base >= 0 ? k.in[base + (q0 + qq) * k.R] : 0.0f;
            },
            [&](int i, float v) { Bs[(i >> cols_log) * ldb + (i & (cols - 1))] = v; });
    } else { /* short runs of r: q fastest, which is contiguous when R == 1; a short last chunk is padded */
        const int kc_log = fc_ceil_log2(kc), kc_pad = 1 << kc_log;
        fc_stage(
            kc_pad * cols,
            [&](int i) {
                const int cc = i >> kc_log, qq = i & (kc_pad - 1);
                const int64_t base = colbase[cc];
                return base >= 0 && qq < kc ? k.in[base + (q0 + qq) * k.R] : 0.0f;
            },
            [&](int i, float v) {
                const int cc = i >> kc_log, qq = i & (kc_pad - 1);
                if (qq < kc) Bs[qq * ldb + cc] = v;
            });
    }
}

/* Computes the tile of rows [row0, row0 + ROWS) and columns [col0, col0 + COLS) of the contraction. Every thread
 * of the CTA must call it with the same arguments (it holds barriers). `stage` is 16-byte aligned shared memory
 * of fc_tile_smem_bytes(TP, TC, wp, DIRECT) bytes. DIRECT needs k.small and In in shared memory. On return the
 * tile is stored; the stage may still be read by threads that have not returned, so the caller must not reuse it
 * before the next barrier (the routine itself starts with one before its first stage write). */
template <int TP, int TC, bool DIRECT>
__host__ __device__ void fc_tile_gemm(const fc_contraction &k, int wp_count, int64_t row0, int64_t col0,
                                      unsigned char *stage) {
    const int rows = TP * wp_count;
    const int cols = (FC_WARPS / wp_count) * 32 * TC;
    const int rows_log = fc_floor_log2(rows);
    const int ldb = cols + 1;
    const int kch = fc_tile_kc(TP, TC, wp_count, DIRECT);
    int64_t *colbase = reinterpret_cast<int64_t *>(stage);
    float *As = DIRECT ? reinterpret_cast<float *>(stage) : reinterpret_cast<float *>(colbase + cols);
    float *Bs = As + kch * rows;

    const int tid = CTA_TID(), lane = tid & 31, warp = tid >> 5;
    const int wp = warp % wp_count, wc = warp / wp_count;
    const int64_t C = k.L * k.R;
    const int64_t col_thread = col0 + wc * 32 * TC + lane; /* this thread's first column */

    float acc[TP][TC];
    CTA_UNROLL
    for (int i = 0; i < TP; ++i) {
        CTA_UNROLL
        for (int t = 0; t < TC; ++t) acc[i][t] = 0.0f;
    }

    /* Direct: this thread's column offsets into In (shared memory, so they fit int32). Columns past the end read
     * column 0 and are never stored. */
    int boff[TC];
    if constexpr (DIRECT) {
        CTA_UNROLL
        for (int t = 0; t < TC; ++t) {
            const int64_t c = col_thread + 32 * t;
            const int64_t l = c < C ? fc_column_row(c, 1, k.div_r, k.R) : 0;
            boff[t] = c < C ? (int)(l * k.in_ls + (c - l * k.R)) : 0;
        }
    } else {
        CTA_SYNC(); /* the previous tile's threads are done with the stage */
        for (int cc = tid; cc < cols; cc += FC_THREADS) {
            const int64_t c = col0 + cc;
            int64_t off = -1;
            if (c < C) {
                const int64_t l = fc_column_row(c, k.small, k.div_r, k.R);
                off = l * k.in_ls + (c - l * k.R);
            }
            colbase[cc] = off;
        }
    }

    for (int64_t q0 = 0; q0 < k.Q; q0 += kch) {
        const int kc = (int)(k.Q - q0 < kch ? k.Q - q0 : kch);
        CTA_SYNC(); /* colbase written; the previous chunk (or tile) is consumed */
        fc_stage(
            kc * rows,
            [&](int i) {
                const int qq = i >> rows_log, pp = i & (rows - 1);
                return row0 + pp < k.P ? k.at[(q0 + qq) * k.lda + row0 + pp] : 0.0f;
            },
            [&](int i, float v) { As[i] = v; });
        if constexpr (!DIRECT) fc_stage_b(k, colbase, Bs, cols, q0, kc);
        CTA_SYNC();
        const float *arow = As + wp * TP;
        const float *bcol = Bs + wc * 32 * TC + lane;
        const float *bq = k.in + q0 * k.R; /* direct: row q of B, shifted by each column's offset */
#ifdef __CUDA_ARCH__
        if constexpr (DIRECT) __builtin_assume(__isShared(bq));
#endif
        const int bstride = DIRECT ? (int)k.R : ldb;
        CTA_UNROLL_BY_4
        for (int qq = 0; qq < kc; ++qq) {
            float a[TP], b[TC];
            fc_load_rows<TP>(a, arow + qq * rows);
            CTA_UNROLL
            for (int t = 0; t < TC; ++t) {
                if constexpr (DIRECT)
                    b[t] = bq[qq * bstride + boff[t]];
                else
                    b[t] = bcol[qq * bstride + 32 * t];
            }
            CTA_UNROLL
            for (int i = 0; i < TP; ++i) {
                CTA_UNROLL
                for (int t = 0; t < TC; ++t) acc[i][t] = fmaf(a[i], b[t], acc[i][t]);
            }
        }
    }

    CTA_UNROLL
    for (int t = 0; t < TC; ++t) {
        const int64_t c = col_thread + 32 * t;
        if (c >= C) continue;
        const fc_out_map map(k); /* per column, not per tile: held across the whole tile, its fields spilled */
        const fc_out_col col = map.column(c);
        CTA_UNROLL
        for (int i = 0; i < TP; ++i) {
            const int64_t p = row0 + wp * TP + i;
            if (p < map.P) map.store(col, p, acc[i][t]);
        }
    }
}

/* Runs CALL(TP, TC) for the tile configuration's register tile; nothing for one that is not instantiated. */
#define FC_TILE_DISPATCH(cfg, CALL)                                                                                \
    do {                                                                                                           \
        const int fc_key_ = (cfg).tp * 16 + (cfg).tc;                                                              \
        switch (fc_key_) {                                                                                         \
        case 1 * 16 + 1: CALL(1, 1); break;                                                                        \
        case 2 * 16 + 1: CALL(2, 1); break;                                                                        \
        case 4 * 16 + 1: CALL(4, 1); break;                                                                        \
        case 8 * 16 + 1: CALL(8, 1); break;                                                                        \
        case 1 * 16 + 4: CALL(1, 4); break;                                                                        \
        case 2 * 16 + 4: CALL(2, 4); break;                                                                        \
        case 4 * 16 + 4: CALL(4, 4); break;                                                                        \
        case 8 * 16 + 4: CALL(8, 4); break;                                                                        \
        default: break;                                                                                            \
        }                                                                                                          \
    } while (0)

#endif /* TTL_CUDA_FC_TILE_CUH */
