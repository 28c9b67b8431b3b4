/*
 * The one contraction every libttl TT-FC kernel is made of, computed for one CTA tile:
 *
 *     Out[l, p, r] = sum_q A[p, q] In[l, q, r] (+ bias)      In [L, Q, R], A [P, Q] stored as At[q * lda + p]
 *
 * Seen as a GEMM it is C[p, c] = sum_q A[p, q] B[q, c] over the columns c = l * R + r, with B[q, c] at
 * In[l * Q * R + q * R + r]. A CTA tile is ROWS = tp * wp values of p by COLS = (FC_WARPS / wp) * 32 * tc
 * columns. The q range is walked in chunks of kc (fc_tile_kc): the chunk of A (ROWS x kc) and of B (kc x COLS) is
 * staged in shared memory, then each thread accumulates a tp x tc register tile: its rows are consecutive
 * (one vector load of At, the same address for the whole warp), its columns are lane + 32 t (consecutive across
 * the warp, so the B reads hit 32 different banks). In and Out may live in device or shared memory (generic
 * pointers), which lets the sequential kernel (one tile per CTA) and the fused kernel (a loop over tiles inside
 * one CTA) share this code.
 *
 * Output map: element (l, p, r) goes to out[(l / lps) * bs + base + e * es] with e = ((l % lps) * P + p) * R + r,
 * and bias[base + e * es] is added when bias is not NULL. An intermediate uses lps = L, bs = 0, base = 0, es = 1
 * (plain [L, P, R]); the last step maps into y (see fc_fused.cu for the strided variants).
 *
 * Bounds: columns c >= L R and rows p >= P are staged as zeros and never stored; a chunk reads In at
 * colbase(c) + q R <= (L - 1) Q R + (R - 1) + (Q - 1) R = L Q R - 1, and At at q lda + p < Q lda.
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

/* Values of q per staged chunk: the largest power of two FC_TILE_SMEM_MAX holds (narrow tiles take long chunks,
 * so a CTA that streams a long reduction from memory waits for it in few round trips), at least FC_KC. A power
 * of two, so that the q-fastest B stage splits its index with a shift (only a last, shorter chunk is padded). */
__host__ __device__ static inline int fc_tile_kc(int tp, int tc, int wp) {
    const size_t rows = (size_t)fc_tile_rows(tp, wp), cols = (size_t)fc_tile_cols(tc, wp);
    const size_t fit = (FC_TILE_SMEM_MAX - cols * sizeof(int64_t)) / ((rows + cols + 1) * sizeof(float));
    return fit < FC_KC ? FC_KC : fit >= FC_KC_MAX ? FC_KC_MAX : 1 << fc_floor_log2((int)fit);
}

/* Shared memory of one tile: column offsets (int64), the A chunk, the B chunk (rows padded by one float);
 * at most FC_TILE_SMEM_MAX. */
__host__ __device__ static inline size_t fc_tile_smem_bytes(int tp, int tc, int wp) {
    const size_t rows = (size_t)fc_tile_rows(tp, wp), cols = (size_t)fc_tile_cols(tc, wp);
    const size_t kc = (size_t)fc_tile_kc(tp, tc, wp);
    return cols * sizeof(int64_t) + kc * rows * sizeof(float) + kc * (cols + 1) * sizeof(float);
}

/* A contraction as the tile routine sees it. `small`: the columns L R and lps fit int32, and div_r / div_lps
 * divide by R and lps (fc_contraction_prepare); otherwise the tile divides in int64. */
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
};

/* Sets `small` and the dividers from L, R and lps (host). */
static inline void fc_contraction_prepare(fc_contraction &k) {
    k.small = k.R > 0 && k.L <= INT32_MAX / k.R && k.lps <= INT32_MAX;
    k.div_r = fc_divider_make(k.small ? (uint32_t)k.R : 1u);
    k.div_lps = fc_divider_make(k.small && k.lps > 0 ? (uint32_t)k.lps : 1u);
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

/* Computes the tile of rows [row0, row0 + ROWS) and columns [col0, col0 + COLS) of the contraction. Every thread
 * of the CTA must call it with the same arguments (it holds barriers). `stage` is 16-byte aligned shared memory
 * of fc_tile_smem_bytes(TP, TC, wp) bytes. On return the tile is stored; the stage may still be read by threads
 * that have not returned, so the caller must not reuse it before the next barrier (the routine itself starts
 * with one before its first stage write). */
template <int TP, int TC>
__host__ __device__ void fc_tile_gemm(const fc_contraction &k, int wp_count, int64_t row0, int64_t col0,
                                      unsigned char *stage) {
    const int rows = TP * wp_count;
    const int cols = (FC_WARPS / wp_count) * 32 * TC;
    const int rows_log = fc_floor_log2(rows), cols_log = fc_floor_log2(cols);
    const int ldb = cols + 1;
    const int kch = fc_tile_kc(TP, TC, wp_count);
    int64_t *colbase = reinterpret_cast<int64_t *>(stage);
    float *As = reinterpret_cast<float *>(colbase + cols);
    float *Bs = As + kch * rows;

    const int tid = CTA_TID(), lane = tid & 31, warp = tid >> 5;
    const int wp = warp % wp_count, wc = warp / wp_count;
    const int64_t C = k.L * k.R;

    float acc[TP][TC];
    CTA_UNROLL
    for (int i = 0; i < TP; ++i) {
        CTA_UNROLL
        for (int t = 0; t < TC; ++t) acc[i][t] = 0.0f;
    }

    CTA_SYNC(); /* the previous tile's threads are done with the stage */
    for (int cc = tid; cc < cols; cc += FC_THREADS) {
        const int64_t c = col0 + cc;
        int64_t off = -1;
        if (c < C) {
            const int64_t l = k.small ? (int64_t)fc_div((uint32_t)c, k.div_r) : c / k.R, r = c - l * k.R;
            off = l * k.Q * k.R + r;
        }
        colbase[cc] = off;
    }

    for (int64_t q0 = 0; q0 < k.Q; q0 += kch) {
        const int kc = (int)(k.Q - q0 < kch ? k.Q - q0 : kch);
        CTA_SYNC(); /* colbase written; the previous chunk is consumed */
        fc_stage(
            kc * rows,
            [&](int i) {
                const int qq = i >> rows_log, pp = i & (rows - 1);
                return row0 + pp < k.P ? k.at[(q0 + qq) * k.lda + row0 + pp] : 0.0f;
            },
            [&](int i, float v) { As[i] = v; });
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
        CTA_SYNC();
        const float *arow = As + wp * TP;
        const float *bcol = Bs + wc * 32 * TC + lane;
        for (int qq = 0; qq < kc; ++qq) {
            float a[TP], b[TC];
            fc_load_rows<TP>(a, arow + qq * rows);
            CTA_UNROLL
            for (int t = 0; t < TC; ++t) b[t] = bcol[qq * ldb + 32 * t];
            CTA_UNROLL
            for (int i = 0; i < TP; ++i) {
                CTA_UNROLL
                for (int t = 0; t < TC; ++t) acc[i][t] = fmaf(a[i], b[t], acc[i][t]);
            }
        }
    }

    CTA_UNROLL
    for (int t = 0; t < TC; ++t) {
        const int64_t c = col0 + wc * 32 * TC + lane + 32 * t;
        if (c >= C) continue;
        int64_t l, lb;
        if (k.small) {
            l = fc_div((uint32_t)c, k.div_r);
            lb = fc_div((uint32_t)l, k.div_lps);
        } else {
            l = c / k.R;
            lb = l / k.lps;
        }
        const int64_t r = c - l * k.R, lw = l - lb * k.lps;
        CTA_UNROLL
        for (int i = 0; i < TP; ++i) {
            const int64_t p = row0 + wp * TP + i;
            if (p >= k.P) continue;
            const int64_t e = (lw * k.P + p) * k.R + r;
            float v = acc[i][t];
            if (k.bias != NULL) v += k.bias[k.base + e * k.es];
            k.out[lb * k.bs + k.base + e * k.es] = v;
        }
    }
}

/* Runs fn<TP, TC>() for the tile configuration; returns false for one that is not instantiated. */
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
