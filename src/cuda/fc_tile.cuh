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
 * Tensor-core form (fc_tile_mma, plans with allow_3xtf32): the same tile walk, but each warp computes tp 16-row by
 * tc 8-column products with mma.sync in 3xTF32 (mma_tf32.cuh), 8 values of q at a time. A CTA tile is then
 * ROWS = 16 tp wp by COLS = (FC_WARPS / wp) * 8 tc. Its fragment loads read 8 columns at 4 values of q (or 8 rows
 * of A at 4 values of q), so the staged rows are padded to 8 (mod 32) floats, and a direct In needs the layout of
 * fc_mma_layout_choose; q rows of In are in_qs floats apart (R unless padded).
 *
 * Output map: element (l, p, r) goes to out[o + (o / out_row) * out_pad] with o = (l / lps) * bs + base + e * es
 * and e = ((l % lps) * P + p) * R + r, and bias[base + e * es] is added when bias is not NULL. An intermediate uses
 * lps = L, bs = 0, base = 0, es = 1 (plain [L, P, R], rows padded by out_pad when the next step reads it
 * directly); the last step maps into y (see fc_fused.cu for the strided variants) with out_pad = 0. Where the map
 * is plain, o = (l P + p) R + r, with no bias and every offset below 2^31 (fc_contraction.out_plain: every
 * intermediate, and every sequential launch without bias), it is computed in 32 bits, a handful of instructions per
 * output instead of about forty in int64 with the bias test (the epilogue of a short-q tile cost more than its
 * multiply-adds).
 *
 * Bounds: columns c >= L R and rows p >= P are staged as zeros (direct: read at column 0) and never stored; a
 * chunk reads In at colbase(c) + q in_qs <= (L - 1) in_ls + (R - 1) + (Q - 1) in_qs < L in_ls, and At at
 * q lda + p < Q lda. The tensor-core form reads q only below Q, and zeros past it.
 */
#ifndef TTL_CUDA_FC_TILE_CUH
#define TTL_CUDA_FC_TILE_CUH

#include <stdint.h>

#include "cuda/cta.cuh"
#include "cuda/fc_internal.h"
#include "cuda/int_div.cuh"
#include "cuda/mma_tf32.cuh"

#define FC_THREADS 256
#define FC_WARPS (FC_THREADS / 32)
#define FC_KC 16
#define FC_MAX_COLS 512
#define FC_MAX_ROWS 64

static_assert(FC_WARPS == 8, "tile shapes below assume 8 warps");
static_assert(FC_MAX_ROWS == 8 * FC_WARPS, "largest row tile is tp = 8 times wp = 8");
static_assert(FC_MAX_COLS <= 2 * FC_THREADS, "fc_stage_b gives a thread at most two columns");

// ---------------------------------------------------------------------------------------------------------------
// tile geometry (host and device)
// ---------------------------------------------------------------------------------------------------------------

/* Tile rows and columns are powers of two (tp, tc, wp and FC_WARPS are), so the staging loops split their flat
 * index with a shift and a mask (ttl_floor_log2): a division by a runtime divisor there cost more instructions per
 * staged value than the tile's multiply-adds per value. */
__host__ __device__ static inline int fc_tile_rows(const fc_tile_cfg_t &t) {
    return (t.mma ? 16 : 1) * t.tp * t.wp;
}
__host__ __device__ static inline int fc_tile_cols(const fc_tile_cfg_t &t) {
    return (FC_WARPS / t.wp) * (t.mma ? 8 : 32) * t.tc;
}

/* Upper bound of a tile's shared memory with its default chunks: every configuration fc_tile_choose may return
 * (cols <= FC_MAX_COLS, rows <= FC_MAX_ROWS) fits with chunks of at least FC_KC values of q. A tile given longer
 * chunks (fc_tile_cfg_t.kc, fused_long_chunks) takes more. */
#define FC_TILE_SMEM_MAX                                                                                           \
    ((size_t)FC_MAX_COLS * sizeof(int64_t) + (size_t)FC_KC * FC_MAX_ROWS * sizeof(float) +                         \
     (size_t)FC_KC * (FC_MAX_COLS + 1) * sizeof(float))
/* Longest chunk of q staged at once. */
#define FC_KC_MAX 256

/* Columns whose B chunk and offsets a tile stages: none for a direct tile. */
__host__ __device__ static inline int fc_tile_staged_cols(const fc_tile_cfg_t &t) {
    return t.direct ? 0 : fc_tile_cols(t);
}

/* Floats from one staged q row of A, and of B, to the next. The FFMA tile reads a row of A by broadcast and 32
 * consecutive columns of B, so only B's rows are padded (by one, for the q-fastest stage's stores). The
 * tensor-core tile reads 8 consecutive rows (columns) at each of 4 values of q: rows 8 (mod 32) floats apart put
 * those 32 reads on 32 banks. */
__host__ __device__ static inline int fc_tile_lda(const fc_tile_cfg_t &t) {
    return fc_tile_rows(t) + (t.mma ? 8 : 0);
}
__host__ __device__ static inline int fc_tile_ldb(const fc_tile_cfg_t &t) {
    const int cols = fc_tile_staged_cols(t);
    return t.mma ? cols + ((8 - cols) % 32 + 32) % 32 : cols + 1;
}
/* The B row stride a tile uses for a contraction with runs of R: the FFMA tile's padding serves only the q-fastest
 * stage of short runs (R < 8); down the columns (R >= 8) its rows stay whole 16-byte groups, as fc_stage_b's
 * 16-byte copies need. At most fc_tile_ldb (the stage's size). */
__host__ __device__ static inline int fc_tile_ldb_for(const fc_tile_cfg_t &t, int64_t R) {
    return !t.mma && R >= 8 ? fc_tile_staged_cols(t) : fc_tile_ldb(t);
}

/* Values of q per staged chunk: the tile's own kc where a planner set one, else the largest power of two
 * FC_TILE_SMEM_MAX holds (narrow tiles take long chunks, so a CTA that streams a long reduction from memory waits
 * for it in few round trips), at least FC_KC. A power
 * of two, so that the q-fastest B stage splits its index with a shift (only a last, shorter chunk is padded), and
 * a multiple of the tensor-core tile's 8. */
__host__ __device__ static inline int fc_tile_kc(const fc_tile_cfg_t &t) {
    if (t.kc > 0 && !t.direct) return t.kc; /* a planner's longer chunks (fc_fused_plan) */
    const size_t cols = (size_t)fc_tile_staged_cols(t);
    const size_t per_q = (size_t)fc_tile_lda(t) + (cols > 0 ? (size_t)fc_tile_ldb(t) : 0);
    const size_t fit = (FC_TILE_SMEM_MAX - cols * sizeof(int64_t)) / (per_q * sizeof(float));
    return fit < FC_KC ? FC_KC : fit >= FC_KC_MAX ? FC_KC_MAX : 1 << ttl_floor_log2((int)fit);
}

/* Shared memory of one tile: column offsets (int64), the A chunk, the B chunk; a direct tile only the A chunk. At
 * most FC_TILE_SMEM_MAX with the default chunks. */
__host__ __device__ static inline size_t fc_tile_smem_bytes(const fc_tile_cfg_t &t) {
    const size_t cols = (size_t)fc_tile_staged_cols(t), kc = (size_t)fc_tile_kc(t);
    return cols * sizeof(int64_t) + kc * (size_t)fc_tile_lda(t) * sizeof(float) +
           (cols > 0 ? kc * (size_t)fc_tile_ldb(t) * sizeof(float) : 0);
}

/* The parts of one tile's stage (fc_tile_smem_bytes): the staged columns' offsets into In, the A chunk (kc rows of
 * lda floats), the B chunk (kc rows of ldb floats; none for a direct tile). */
struct fc_tile_stage {
    int64_t *colbase;
    float *As, *Bs;
};

__host__ __device__ static inline fc_tile_stage fc_tile_stage_carve(const fc_tile_cfg_t &t, unsigned char *stage) {
    int64_t *colbase = reinterpret_cast<int64_t *>(stage);
    float *As = reinterpret_cast<float *>(colbase + fc_tile_staged_cols(t));
    return fc_tile_stage{colbase, As, As + fc_tile_kc(t) * fc_tile_lda(t)};
}

/* A contraction as the tile routine sees it. `small`: the columns L R and lps fit int32, and div_r / div_lps
 * divide by R and lps (fc_contraction_make); otherwise the tile divides in int64. in_ls, in_qs: floats from one
 * row l of In to the next (Q R, or more when padded), and from one q to the next (R, or more when padded).
 * out_pad > 0 (only for outputs in shared memory, all offsets below 2^31): out_pad floats follow every out_row
 * outputs, div_out_row divides by out_row. out_plain: the output map is plain (see the top of this file; implies
 * small, so that the tile divides by R with div_r). */
struct fc_contraction {
    const float *at;
    int64_t lda;
    const float *in;
    float *out;
    const float *bias;
    int64_t L, P, Q, R;
    int64_t lps, bs, base, es;
    ttl_divider_t div_r, div_lps;
    int32_t small;
    int64_t in_ls, in_qs;
    int32_t out_pad;
    ttl_divider_t div_out_row;
    int32_t out_plain;
    int32_t kc; /* staged tiles: q values per chunk (fc_tile_cfg_t.kc; 0: the default) */
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
    k.div_r = ttl_divider_make(k.small ? (uint32_t)R : 1u);
    k.div_lps = ttl_divider_make(k.small && lps > 0 ? (uint32_t)lps : 1u);
    k.in_ls = Q * R;
    k.in_qs = R;
    k.out_pad = 0;
    k.div_out_row = ttl_divider_make(1u);
    /* plain: (l / lps) bs + e is (l P + p) R + r when lps covers L or bs is a whole sample's lps P R */
    k.kc = 0;
    k.out_plain = k.small && bias == NULL && base == 0 && es == 1 && P > 0 && P <= INT32_MAX / R &&
                  L <= INT32_MAX / (P * R) && (lps >= L || bs == lps * P * R);
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

/* This thread's share of a stage into shared memory. A stage is spread over the CTA so that each thread's values
 * lie at a fixed stride in the stage (and, mostly, in the source): its addresses then advance by a constant per
 * value instead of each being worked out from a flat index (about 50 instructions a value in int64, several times
 * the multiply-adds a value feeds). Where the device has asynchronous copies (CTA_HAS_COPY_ASYNC) and `async` says
 * every source is in device memory, each value is one: all of a thread's copies are in flight together, and the
 * caller waits for them (CTA_COPY_WAIT) before the barrier that ends the stage. Otherwise (an older device, a
 * source in shared memory such as the fused kernel's merged core, a caller short of registers) the thread issues
 * BATCH independent loads before its first store, so that those loads overlap (a store in between would serialise
 * them: the compiler cannot tell that a generic source pointer does not alias the stage). */
#define FC_STAGE_BATCH 8
/* The direct tiles stage A alone, two or three values per thread: short batches keep their registers. */
#define FC_STAGE_BATCH_A 2

/* Values j < count: dst[j dst_step] = src[j src_step] for j < valid, zero for valid <= j < count. */
template <int BATCH = FC_STAGE_BATCH>
__host__ __device__ __forceinline__ void fc_stage_strided(int count, int valid, bool async, const float *src,
                                                          int64_t src_step, float *dst, int dst_step) {
    if (CTA_HAS_COPY_ASYNC && async) {
        CTA_NO_UNROLL
        for (int j = 0; j < count; ++j, src += src_step, dst += dst_step) {
            if (j < valid)
                CTA_COPY_ASYNC_F32(dst, src);
            else
                *dst = 0.0f;
        }
    } else {
        for (int j0 = 0; j0 < count; j0 += BATCH, src += BATCH * src_step, dst += BATCH * dst_step) {
            float v[BATCH];
            const float *s = src;
            CTA_UNROLL
            for (int u = 0; u < BATCH; ++u, s += src_step) v[u] = j0 + u < valid ? *s : 0.0f;
            CTA_UNROLL
            for (int u = 0; u < BATCH; ++u)
                if (j0 + u < count) dst[u * dst_step] = v[u];
        }
    }
}

/* fc_stage_strided in 16-byte groups (4 floats), as asynchronous copies: src, dst and both steps 16-byte aligned;
 * the caller checks CTA_HAS_COPY_ASYNC and that the sources are in device memory. */
__host__ __device__ __forceinline__ void fc_stage_strided_f4(int count, int valid, const float *src,
                                                             int64_t src_step, float *dst, int dst_step) {
    CTA_NO_UNROLL
    for (int j = 0; j < count; ++j, src += src_step, dst += dst_step) {
        float4 *d = reinterpret_cast<float4 *>(dst);
        if (j < valid)
            CTA_COPY_ASYNC_F4(d, reinterpret_cast<const float4 *>(src));
        else
            *d = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
}

/* Values j < count: dst[j dst_step] = *src(j), a zero where src(j) is NULL (sources at no fixed stride). */
template <typename Src>
__host__ __device__ __forceinline__ void fc_stage_gather(int count, bool async, Src src, float *dst, int dst_step) {
    if (CTA_HAS_COPY_ASYNC && async) {
        CTA_NO_UNROLL
        for (int j = 0; j < count; ++j, dst += dst_step) {
            const float *s = src(j);
            if (s == NULL)
                *dst = 0.0f;
            else
                CTA_COPY_ASYNC_F32(dst, s);
        }
    } else {
        for (int j0 = 0; j0 < count; j0 += FC_STAGE_BATCH, dst += FC_STAGE_BATCH * dst_step) {
            float v[FC_STAGE_BATCH];
            CTA_UNROLL
            for (int u = 0; u < FC_STAGE_BATCH; ++u) {
                const float *s = j0 + u < count ? src(j0 + u) : NULL;
                v[u] = s != NULL ? *s : 0.0f;
            }
            CTA_UNROLL
            for (int u = 0; u < FC_STAGE_BATCH; ++u)
                if (j0 + u < count) dst[u * dst_step] = v[u];
        }
    }
}

/* A thread's values of a stage whose flat index is i = major << minor_log | minor (minor_log <= 8): its first
 * one, its stride in `major` and how many of [0, majors) it takes (minor = the thread's own: tid mod 2^minor_log,
 * whole CTA strides apart). */
struct fc_stage_share {
    int minor, major0, major_step, step_log;
    __host__ __device__ __forceinline__ fc_stage_share(int minor_log)
        : minor(CTA_TID() & ((1 << minor_log) - 1)), major0(CTA_TID() >> minor_log),
          major_step(FC_THREADS >> minor_log), step_log(ttl_floor_log2(FC_THREADS) - minor_log) {}
    /* values of major in [major0, end) this thread takes */
    __host__ __device__ __forceinline__ int count(int end) const {
        return major0 < end ? (end - major0 + major_step - 1) >> step_log : 0;
    }
};

/* The row l of column c = l R + r: by the contraction's divider when `small`, in int64 otherwise. */
__host__ __device__ __forceinline__ int64_t fc_column_row(int64_t c, int32_t small, ttl_divider_t div_r,
                                                          int64_t R) {
    return small ? (int64_t)ttl_div((uint32_t)c, div_r) : c / R;
}

/* Offset of element e (< 2^31) of an output with `pad` floats of padding after every row (div_row: by its length).
 */
__host__ __device__ __forceinline__ int32_t fc_padded_offset(int32_t e, ttl_divider_t div_row, int32_t pad) {
    return e + (int32_t)ttl_div((uint32_t)e, div_row) * pad;
}

/* The output map of a contraction with its fields read once: read through the contraction, they would be reloaded
 * after every store into `out`, which might alias them. */
struct fc_out_map {
    float *out;
    const float *bias;
    int64_t P, R, lps, bs, base, es;
    int32_t small, out_pad, plain;
    ttl_divider_t div_r, div_lps, div_out_row;

    __host__ __device__ explicit fc_out_map(const fc_contraction &k)
        : out(k.out), bias(k.bias), P(k.P), R(k.R), lps(k.lps), bs(k.bs), base(k.base), es(k.es), small(k.small),
          out_pad(k.out_pad), plain(k.out_plain), div_r(k.div_r), div_lps(k.div_lps), div_out_row(k.div_out_row) {}

    /* The first `count` values of a plain map's column, v[i] at e0 + i estep (plus its padding where PADDED),
     * into `to`. */
    template <bool PADDED, int N>
    __host__ __device__ __forceinline__ void store_plain(float *to, int32_t e0, int32_t estep, int32_t count,
                                                         const float (&v)[N]) const {
        /* 4 consecutive values (a column of R = 1) in one 16-byte store where they can be */
        if constexpr (N == 4) {
            if (estep == 1 && count >= 4 && store_plain_4(to, e0, v)) return;
        }
        if constexpr (!PADDED) { /* one pointer walked down the column: fewer registers than N addresses */
            float *o = to + e0;
            CTA_UNROLL
            for (int i = 0; i < N; ++i, o += estep)
                if (count >= N || i < count) *o = v[i];
        } else {
            auto at = [&](int32_t e) { return fc_padded_offset(e, div_out_row, out_pad); };
            if (count >= N) {
                CTA_UNROLL
                for (int i = 0; i < N; ++i) to[at(e0 + i * estep)] = v[i];
            } else {
                CTA_UNROLL
                for (int i = 0; i < N; ++i)
                    if (i < count) to[at(e0 + i * estep)] = v[i];
            }
        }
    }

    /* v as one float4 at elements e0 .. e0 + 3 of a plain map where no padding falls between them and the
     * address is 16-byte aligned (an FFMA tile's 4 rows a thread at R = 1); false, storing nothing, otherwise. */
    __host__ __device__ __forceinline__ bool store_plain_4(float *to, int32_t e0, const float (&v)[4]) const {
        int32_t o = e0;
        if (out_pad > 0) {
            const int32_t row = (int32_t)ttl_div((uint32_t)e0, div_out_row);
            if ((int32_t)ttl_div((uint32_t)(e0 + 3), div_out_row) != row) return false;
            o += row * out_pad;
        }
        float *dst = to + o;
        if (reinterpret_cast<uintptr_t>(dst) % 16 != 0) return false;
        *reinterpret_cast<float4 *>(dst) = make_float4(v[0], v[1], v[2], v[3]);
        return true;
    }

    /* Stores v[i] as element (p0 + i pstep, c) of column c, for the rows below P, adding the bias. The map's
     * form is tested once per column, not per value: a plain map's offsets are e0 + i pstep R (int32) plus the
     * padding, stored without a bound test per value where the column's rows all exist, and into shared memory
     * as such where `out` is there (a generic store costs address instructions more); the general form works in
     * int64. */
    template <int N>
    __host__ __device__ __forceinline__ void store_column(int64_t c, int64_t p0, int pstep,
                                                          const float (&v)[N]) const {
        if (plain) {
            const int32_t rows = (int32_t)(P - p0);
            if (rows <= 0) return; /* a tile's rows past P: nothing to store (and e0 could overflow) */
            const int32_t count = (rows + pstep - 1) / pstep; /* values i with p0 + i pstep < P */
            const int32_t r32 = (int32_t)R, l = (int32_t)ttl_div((uint32_t)c, div_r);
            const int32_t e0 = (l * (int32_t)P + (int32_t)p0) * r32 + ((int32_t)c - l * r32);
#ifdef __CUDA_ARCH__
            if (__isShared(out)) { /* a fused intermediate: padded (a multiply by zero where it is not) */
                float *so = out;
                __builtin_assume(__isShared(so));
                store_plain<true>(so, e0, pstep * r32, count, v);
                return;
            }
#endif
            if (out_pad > 0)
                store_plain<true>(out, e0, pstep * r32, count, v);
            else
                store_plain<false>(out, e0, pstep * r32, count, v);
            return;
        }
        const int64_t l = fc_column_row(c, small, div_r, R), lb = fc_column_row(l, small, div_lps, lps);
        const int64_t lw = l - lb * lps, r = c - l * R;
        CTA_UNROLL
        for (int i = 0; i < N; ++i) {
            const int64_t p = p0 + i * pstep;
            if (p >= P) continue;
            const int64_t e = (lw * P + p) * R + r, o = lb * bs + base + e * es;
            float x = v[i];
            if (bias != NULL) x += bias[base + e * es];
            out[out_pad > 0 ? o + (int64_t)ttl_div((uint32_t)o, div_out_row) * out_pad : o] = x;
        }
    }
};

/* Whether fc_stage_b can copy 4 columns of B at a time: In and the stage 16-byte aligned, and runs of R a multiple
 * of 4 with whole groups of 4 floats between rows (a tile's columns start at a multiple of its width, a multiple
 * of 8, so a group of 4 columns never straddles two rows l of In, and lies wholly before or past the last). */
__host__ __device__ __forceinline__ bool fc_stage_b_in_groups(const fc_contraction &k, const float *Bs, int ldb) {
    return k.R % 4 == 0 && k.in_qs % 4 == 0 && k.in_ls % 4 == 0 && ldb % 4 == 0 &&
           reinterpret_cast<uintptr_t>(k.in) % 16 == 0 && reinterpret_cast<uintptr_t>(Bs) % 16 == 0;
}

/* Stages a chunk of B (q in [q0, q0 + kc), the tile's columns) into Bs[qq * ldb + cc], and zeros into the rows
 * qq in [kc, fill) (the tensor-core tile reads q 8 at a time). Asynchronous where `async_ok` and In is in device
 * memory: the caller waits (CTA_COPY_WAIT) before its barrier; then in 16-byte groups where they line up
 * (fc_stage_b_in_groups). */
__host__ __device__ __forceinline__ void fc_stage_b(const fc_contraction &k, const int64_t *colbase, float *Bs,
                                                    int cols, int ldb, int64_t q0, int kc, int fill,
                                                    bool async_ok) {
    const int cols_log = ttl_floor_log2(cols);
    const bool async = async_ok && CTA_IS_DEVICE_MEMORY(k.in);
    if (k.R >= 8 && CTA_HAS_COPY_ASYNC && async && fc_stage_b_in_groups(k, Bs, ldb)) {
        /* 16-byte copies of 4 columns, each thread down its group: a quarter as many copies as one float each */
        const fc_stage_share sh(cols_log - 2); /* minor: the group of 4 columns */
        const int cc = 4 * sh.minor;
        const int64_t base = colbase[cc];
        const int valid = base >= 0 ? sh.count(kc) : 0;
        fc_stage_strided_f4(sh.count(fill), valid, k.in + (valid > 0 ? base + (q0 + sh.major0) * k.in_qs : 0),
                            (int64_t)sh.major_step * k.in_qs, Bs + sh.major0 * ldb + cc, sh.major_step * ldb);
    } else if (k.R >= 8) {
        /* runs of r are contiguous in memory: column index fastest, each thread down its columns */
        const int per_thread = cols > FC_THREADS ? cols / FC_THREADS : 1; /* columns (cols <= 512: 1 or 2) */
        const fc_stage_share sh(cols_log < 8 ? cols_log : 8);             /* minor: the column (mod 256) */
        for (int m = 0; m < per_thread; ++m) {
            const int cc = sh.minor + m * FC_THREADS, q_first = sh.major0;
            const int64_t base = colbase[cc];
            const int valid = base >= 0 ? sh.count(kc) : 0;
            fc_stage_strided(sh.count(fill), valid, async, k.in + (valid > 0 ? base + (q0 + q_first) * k.in_qs : 0),
                             (int64_t)sh.major_step * k.in_qs, Bs + q_first * ldb + cc, sh.major_step * ldb);
        }
    } else { /* short runs of r: q fastest, which is contiguous when R == 1; a short last chunk is padded */
        const int kc_log = ttl_ceil_log2(fill);
        const fc_stage_share sh(kc_log); /* minor: this thread's q, major: its columns */
        const int qq = sh.minor;
        if (qq >= fill) return;
        const bool q_valid = qq < kc;
        const float *in_q = k.in + (q_valid ? (q0 + qq) * k.in_qs : 0);
        const int cc0 = sh.major0, cstep = sh.major_step;
        fc_stage_gather(
            sh.count(cols), async,
            [&](int j) -> const float * {
                const int64_t base = colbase[cc0 + j * cstep];
                return q_valid && base >= 0 ? in_q + base : NULL;
            },
            Bs + qq * ldb + cc0, cstep);
    }
}

/* Where column c = l R + r of B starts in In: l in_ls + r (q = 0). `small` as fc_column_row (a constant 1 where
 * the caller knows it, so that the int64 division drops out). */
__host__ __device__ __forceinline__ int64_t fc_column_offset(const fc_contraction &k, int64_t c, int32_t small) {
    const int64_t l = fc_column_row(c, small, k.div_r, k.R);
    return l * k.in_ls + (c - l * k.R);
}

/* Writes this tile's column offsets into In (colbase[cc] for column col0 + cc, -1 past the last column), after a
 * barrier: the previous tile's threads may still read the stage. */
__host__ __device__ __forceinline__ void fc_stage_colbase(const fc_contraction &k, int64_t *colbase, int cols,
                                                          int64_t col0) {
    const int64_t C = k.L * k.R;
    CTA_SYNC();
    for (int cc = CTA_TID(); cc < cols; cc += FC_THREADS) {
        const int64_t c = col0 + cc;
        colbase[cc] = c < C ? fc_column_offset(k, c, k.small) : -1;
    }
}

/* Stages a chunk of A (q in [q0, q0 + kc), rows [row0, row0 + rows), rows a power of two) into As[qq * lda + pp],
 * with zeros for rows p >= P and for qq in [kc, fill). Asynchronous where `async` and At is in device memory (not
 * the fused kernel's merged core): the caller waits (CTA_COPY_WAIT) before its barrier. The direct tiles stage A
 * alone, a few values per thread, in batches: beside their tiles the copy loop cost the fused kernel spills. */
__host__ __device__ __forceinline__ void fc_stage_a(const fc_contraction &k, float *As, int rows, int lda,
                                                    int64_t row0, int64_t q0, int kc, int fill, bool async) {
    const fc_stage_share sh(ttl_floor_log2(rows)); /* rows <= FC_MAX_ROWS: minor is the row, major the q */
    const int pp = sh.minor;
    const int valid = row0 + pp < k.P ? sh.count(kc) : 0;
    fc_stage_strided<FC_STAGE_BATCH_A>(sh.count(fill), valid, async && CTA_IS_DEVICE_MEMORY(k.at),
                                       k.at + (valid > 0 ? (q0 + sh.major0) * k.lda + row0 + pp : 0),
                                       (int64_t)sh.major_step * k.lda, As + sh.major0 * lda + pp,
                                       sh.major_step * lda);
}

/* Computes the tile of rows [row0, row0 + ROWS) and columns [col0, col0 + COLS) of the contraction. Every thread
 * of the CTA must call it with the same arguments (it holds barriers). `stage` is 16-byte aligned shared memory
 * of fc_tile_smem_bytes bytes. DIRECT needs k.small and In in shared memory. On return the tile is stored; the
 * stage may still be read by threads that have not returned, so the caller must not reuse it before the next
 * barrier (the routine itself starts with one before its first stage write). */
template <int TP, int TC, bool DIRECT>
__host__ __device__ void fc_tile_gemm(const fc_contraction &k, int wp_count, int64_t row0, int64_t col0,
                                      unsigned char *stage) {
    const fc_tile_cfg_t cfg = {TP, TC, wp_count, DIRECT, 0, k.kc};
    const int rows = fc_tile_rows(cfg), cols = fc_tile_cols(cfg);
    const int ldb = fc_tile_ldb_for(cfg, k.R);
    const int kch = fc_tile_kc(cfg);
    const fc_tile_stage st = fc_tile_stage_carve(cfg, stage);
    int64_t *colbase = st.colbase;
    float *As = st.As, *Bs = st.Bs;

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
            boff[t] = c < C ? (int)fc_column_offset(k, c, 1) : 0;
        }
    } else {
        fc_stage_colbase(k, colbase, cols, col0);
    }

    for (int64_t q0 = 0; q0 < k.Q; q0 += kch) {
        const int kc = (int)(k.Q - q0 < kch ? k.Q - q0 : kch);
        CTA_SYNC(); /* colbase written; the previous chunk (or tile) is consumed */
        fc_stage_a(k, As, rows, rows, row0, q0, kc, kc, !DIRECT);
        if constexpr (!DIRECT) {
            fc_stage_b(k, colbase, Bs, cols, ldb, q0, kc, kc, true);
            CTA_COPY_WAIT();
        }
        CTA_SYNC();
        const float *arow = As + wp * TP;
        const float *bcol = Bs + wc * 32 * TC + lane;
        const float *bq = k.in + q0 * k.in_qs; /* direct: row q of B, shifted by each column's offset */
        if constexpr (DIRECT) CTA_ASSUME_SHARED(bq);
        const int bstride = DIRECT ? (int)k.in_qs : ldb;
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
        float v[TP];
        CTA_UNROLL
        for (int i = 0; i < TP; ++i) v[i] = acc[i][t];
        map.store_column(c, row0 + wp * TP, 1, v);
    }
}

/* The tensor-core form of fc_tile_gemm (same contract and stage size, fc_tile_smem_bytes with mma = 1): warp w
 * computes rows [row0 + 16 MT (w % wp_count), + 16 MT) and columns [col0 + 8 NT (w / wp_count), + 8 NT) of the
 * tile, as MT x NT m16n8k8 products in 3xTF32 per 8 values of q. A is staged with rows lda = ROWS + 8 floats
 * apart, B (unless direct) with ldb = 8 (mod 32): the fragment loads are then free of bank conflicts. A chunk's
 * q range is rounded up to 8 with zeros in A and B (a zero times a NaN left in shared memory would be NaN). */
template <int MT, int NT, bool DIRECT>
__host__ __device__ void fc_tile_mma(const fc_contraction &k, int wp_count, int64_t row0, int64_t col0,
                                     unsigned char *stage) {
    const fc_tile_cfg_t cfg = {MT, NT, wp_count, DIRECT, 1, k.kc};
    const int rows = fc_tile_rows(cfg), cols = fc_tile_cols(cfg);
    const int lda = fc_tile_lda(cfg), ldb = fc_tile_ldb(cfg);
    const int kch = fc_tile_kc(cfg);
    const fc_tile_stage st = fc_tile_stage_carve(cfg, stage);
    int64_t *colbase = st.colbase;
    float *As = st.As, *Bs = st.Bs;

    const int tid = CTA_TID(), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    const int warp_row = (warp % wp_count) * 16 * MT, warp_col = (warp / wp_count) * 8 * NT;
    const int64_t C = k.L * k.R;

    float acc[MT][NT][4];
    CTA_UNROLL
    for (int i = 0; i < MT; ++i) {
        CTA_UNROLL
        for (int j = 0; j < NT; ++j) {
            CTA_UNROLL
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
        }
    }

    /* Staged chunks are asynchronous copies, except beside the widest tile, whose fragments leave the fused kernel
     * few registers: with the copy loop it spilled 12 bytes there, staging in batches 4 (ptxas -v). */
    constexpr bool kAsync = !DIRECT && MT * NT < 8;

    /* This lane's B column of each n tile (warp_col + 8 j + g), in its row t of a step: direct, its offset into
     * In (past the last column, column 0's: computed, never stored); staged, its place in the stage. */
    const int bstride = DIRECT ? (int)k.in_qs : ldb;
    int boff[NT];
    CTA_UNROLL
    for (int j = 0; j < NT; ++j) {
        if constexpr (DIRECT) {
            const int64_t c = col0 + warp_col + 8 * j + g;
            boff[j] = (c < C ? (int)fc_column_offset(k, c, 1) : 0) + t * bstride;
        } else {
            boff[j] = warp_col + 8 * j + g + t * bstride;
        }
    }
    if constexpr (!DIRECT) fc_stage_colbase(k, colbase, cols, col0);
    bool a_rows[MT][2]; /* every staged row of A is read (rows past P hold zeros) */
    CTA_UNROLL
    for (int i = 0; i < MT; ++i) a_rows[i][0] = a_rows[i][1] = true;

    for (int64_t q0 = 0; q0 < k.Q; q0 += kch) {
        const int kc = (int)(k.Q - q0 < kch ? k.Q - q0 : kch), kc8 = (kc + 7) & ~7;
        CTA_SYNC(); /* colbase written; the previous chunk (or tile) is consumed */
        fc_stage_a(k, As, rows, lda, row0, q0, kc, kc8, kAsync);
        if constexpr (!DIRECT) fc_stage_b(k, colbase, Bs, cols, ldb, q0, kc, kc8, kAsync);
        if constexpr (kAsync) CTA_COPY_WAIT();
        CTA_SYNC();
        const float *bq = k.in + q0 * k.in_qs; /* direct: row q0 of B, shifted by each column's offset */
        if constexpr (DIRECT) CTA_ASSUME_SHARED(bq);
        const float *bsrc = DIRECT ? bq : Bs; /* row kk of B at step kk, moved on 8 rows per step */
        /* Steps whose 8 rows all exist (a staged tile's rows kc .. kc8 hold zeros, so all of its steps); a direct
         * tile's last step past kc rows takes those as zeros (guarded). Two steps per iteration where the fragments
         * leave room (no spills): the next step's loads then issue while this step's products run. */
        const int kfull = DIRECT ? (kc & ~7) : kc8;
        int kk = 0;
#ifdef __CUDA_ARCH__
        constexpr int kStepsPerIteration = MT * NT <= 4 ? 2 : 1;
#pragma unroll(kStepsPerIteration)
#endif
        for (; kk < kfull; kk += 8) {
            mma_step_3xtf32<MT, NT, false, int>(acc, As + (kk + t) * lda + warp_row + g, lda, a_rows, bsrc, boff,
                                                4 * bstride, 8);
            bsrc += 8 * bstride;
        }
        if (DIRECT && kk < kc8)
            mma_step_3xtf32<MT, NT, true, int>(acc, As + (kk + t) * lda + warp_row + g, lda, a_rows, bsrc, boff,
                                               4 * bstride, kc - kk - t);
    }

    /* d[2 h + e] = D[g + 8 h][2 t + e]: rows warp_row + 16 i + 8 h + g, columns warp_col + 8 j + 2 t + e */
    CTA_UNROLL
    for (int j = 0; j < NT; ++j) {
        CTA_UNROLL
        for (int e = 0; e < 2; ++e) {
            const int64_t c = col0 + warp_col + 8 * j + 2 * t + e;
            if (c >= C) continue;
            const fc_out_map map(k);
            float v[2 * MT]; /* rows g + 8 n of the warp's rows, n = 2 i + h */
            CTA_UNROLL
            for (int i = 0; i < MT; ++i) {
                CTA_UNROLL
                for (int h = 0; h < 2; ++h) v[2 * i + h] = acc[i][j][2 * h + e];
            }
            map.store_column(c, row0 + warp_row + g, 8, v);
        }
    }
}

/* Either form of the tile for configuration (TP, TC, MMA) (compile time) and wp (run time). */
template <int TP, int TC, bool DIRECT, bool MMA>
__host__ __device__ __forceinline__ void fc_tile(const fc_contraction &k, int wp_count, int64_t row0, int64_t col0,
                                                 unsigned char *stage) {
    if constexpr (MMA)
        fc_tile_mma<TP, TC, DIRECT>(k, wp_count, row0, col0, stage);
    else
        fc_tile_gemm<TP, TC, DIRECT>(k, wp_count, row0, col0, stage);
}

/* Runs CALL(TP, TC, MMA) for the tile configuration's form and register tile; nothing for one that is not
 * instantiated. FFMA: tp in 1, 2, 4, 8 and tc in 1, 4; tensor cores: tp (16-row tiles) in 1, 2 and tc (8-column
 * tiles) in 2, 4. */
#define FC_TILE_DISPATCH(cfg, CALL)                                                                                \
    do {                                                                                                           \
        const int fc_key_ = ((cfg).mma ? 256 : 0) + (cfg).tp * 16 + (cfg).tc;                                      \
        switch (fc_key_) {                                                                                         \
        case 1 * 16 + 1: CALL(1, 1, false); break;                                                                 \
        case 2 * 16 + 1: CALL(2, 1, false); break;                                                                 \
        case 4 * 16 + 1: CALL(4, 1, false); break;                                                                 \
        case 8 * 16 + 1: CALL(8, 1, false); break;                                                                 \
        case 1 * 16 + 4: CALL(1, 4, false); break;                                                                 \
        case 2 * 16 + 4: CALL(2, 4, false); break;                                                                 \
        case 4 * 16 + 4: CALL(4, 4, false); break;                                                                 \
        case 8 * 16 + 4: CALL(8, 4, false); break;                                                                 \
        case 256 + 1 * 16 + 2: CALL(1, 2, true); break;                                                            \
        case 256 + 1 * 16 + 4: CALL(1, 4, true); break;                                                            \
        case 256 + 2 * 16 + 2: CALL(2, 2, true); break;                                                            \
        case 256 + 2 * 16 + 4: CALL(2, 4, true); break;                                                            \
        default: break;                                                                                            \
        }                                                                                                          \
    } while (0)

#endif /* TTL_CUDA_FC_TILE_CUH */
