/*
 * The CTA body of the FUSED TT-FC kernel (fc_fused.cu explains the algorithm): the per-CTA merged-core build and
 * the chain of contraction steps. Kept apart from the launcher so that a CPU test can run it with one fiber
 * per CUDA thread (CTA_HOST_EMULATION, see cta.cuh).
 */
#ifndef TTL_CUDA_FC_FUSED_CUH
#define TTL_CUDA_FC_FUSED_CUH

#include "cuda/fc_tile.cuh"

/* Builds the merged core of this CTA's split into H (At layout, [Q][h_lda]), using the two ping-pong buffers as
 * scratch. First to last: H[J_<p][a_p]; last to first: H[J_>=s][a_s]. Ends with a barrier. Out of line, like the
 * step tiles below, so that each gets a register allocation of its own. */
static __host__ __device__ CTA_NOINLINE void fc_build_merged(const fc_fused_params_t &prm, int64_t split,
                                                             float *sm) {
    float *cur = sm + prm.x_off[0], *nxt = sm + prm.x_off[1];
    float *H = sm + prm.h_off;
    const int tid = CTA_TID();
    const int64_t lda = prm.h_lda;
    if (tid == 0) cur[0] = 1.0f; /* the empty product, [1][1] */
    CTA_SYNC();
    if (prm.order == FC_FTL) {
        /* cur is [rows = N_<k][ra = r_k]; next [(row, j_k)][r_{k+1}] */
        int64_t rows = 1;
        int64_t ra = 1;
        for (int k = 0; k < prm.merged; ++k) {
            const int64_t m = prm.m[k], n = prm.n[k], rb = prm.r[k + 1];
            const int64_t ik = (split / prm.split_div[k]) % m;
            const float *g =
                prm.cores + prm.core_off[k] + ik * n * rb; /* G_k[a, ik, j, c] = g[a m n rb + j rb + c] */
            const int64_t width = n * rb, total = rows * width;
            for (int64_t e = tid; e < total; e += FC_THREADS) {
                const int64_t row = e / width, jc = e - row * width;
                float acc = 0.0f;
                for (int64_t a = 0; a < ra; ++a) acc = fmaf(cur[row * ra + a], g[a * m * n * rb + jc], acc);
                nxt[e] = acc;
            }
            CTA_SYNC();
            float *t = cur;
            cur = nxt, nxt = t;
            rows *= n;
            ra = rb;
        }
        for (int64_t e = tid; e < rows * lda; e += FC_THREADS) {
            const int64_t row = e / lda, a = e - row * lda;
            H[e] = a < ra ? cur[row * ra + a] : 0.0f;
        }
    } else {
        /* cur is [rb = r_{k+1}][cols = N_>k]; next [r_k][(j_k, col)] */
        int64_t cols = 1;
        int64_t rb = 1;
        for (int k = prm.num_cores - 1; k >= prm.num_cores - prm.merged; --k) {
            const int64_t m = prm.m[k], n = prm.n[k], ra = prm.r[k];
            const int64_t ik = (split / prm.split_div[k]) % m;
            const float *g = prm.cores + prm.core_off[k]; /* G_k[a, ik, j, c] = g[((a m + ik) n + j) rb + c] */
            const int64_t width = n * cols, total = ra * width;
            for (int64_t e = tid; e < total; e += FC_THREADS) {
                const int64_t a = e / width, jcol = e - a * width;
                const int64_t j = jcol / cols, col = jcol - j * cols;
                const float *gr = g + ((a * m + ik) * n + j) * rb;
                float acc = 0.0f;
                for (int64_t c = 0; c < rb; ++c) acc = fmaf(gr[c], cur[c * cols + col], acc);
                nxt[e] = acc;
            }
            CTA_SYNC();
            float *t = cur;
            cur = nxt, nxt = t;
            cols *= n;
            rb = ra;
        }
        for (int64_t e = tid; e < cols * lda; e += FC_THREADS) {
            const int64_t col = e / lda, a = e - col * lda;
            H[e] = a < rb ? cur[a * cols + col] : 0.0f;
        }
    }
    CTA_SYNC();
}

/* All tiles of one step, one after the other (each call holds barriers, so the loop is CTA-uniform). Out of line:
 * one kernel body holding all the tile variants spilled under its 128-register cap, while each variant on its
 * own needs at most 127 registers and spills nothing (ptxas -v). `k` is restrict: nothing writes it meanwhile, so
 * its fields need not be reloaded after each store into the stage. */
template <int TP, int TC, bool DIRECT, bool MMA>
__host__ __device__ CTA_NOINLINE void fc_fused_step_tiles(const fc_contraction &__restrict__ k, int wp,
                                                          unsigned char *stage) {
    const fc_tile_cfg_t cfg = {TP, TC, wp, DIRECT, MMA, 0};
    const int64_t rows = fc_tile_rows(cfg), cols = fc_tile_cols(cfg);
    const int64_t row_tiles = (k.P + rows - 1) / rows, col_tiles = (k.L * k.R + cols - 1) / cols;
    for (int64_t t = 0; t < row_tiles * col_tiles; ++t) {
        const int64_t rt = t % row_tiles, ct = t / row_tiles;
        fc_tile<TP, TC, DIRECT, MMA>(k, wp, rt * rows, ct * cols, stage);
    }
}

/* Longest reduction fc_stream_step takes; the values of x each thread holds in flight, in at most so many rows
 * (each row also holds 4 accumulators; more rows spill under the kernel's 128-register cap). */
#define FC_STREAM_MAX_Q 8
#define FC_STREAM_VALUES 32
#define FC_STREAM_MAX_ROWS 8

__host__ __device__ constexpr int fc_stream_rows(int qmax) {
    return FC_STREAM_VALUES / qmax < FC_STREAM_MAX_ROWS ? FC_STREAM_VALUES / qmax : FC_STREAM_MAX_ROWS;
}

/* Whether fc_stream_step can read each row of In whole in vector loads (fc_stream_load_row): rows of exactly QMAX
 * floats (2, 4 or 8), In aligned to the vector's width. */
template <int QMAX> __host__ __device__ __forceinline__ bool fc_stream_rows_wide(const fc_contraction &k) {
    constexpr uintptr_t width = QMAX >= 4 ? 16 : 8;
    return k.Q == QMAX && reinterpret_cast<uintptr_t>(k.in) % width == 0;
}

/* Row `l` of In (Q floats) into x, zeros past Q. WIDE (fc_stream_rows_wide): the row in QMAX / 4 16-byte loads (one
 * 8-byte load for QMAX = 2), which a warp issues over consecutive rows as whole sectors, where one float at a time
 * takes Q instructions, each touching a quarter of every sector it reads. x is read-only for the kernel (__ldg). */
template <int QMAX, bool WIDE>
__host__ __device__ __forceinline__ void fc_stream_load_row(float (&x)[QMAX], const float *in, int64_t l, int Q) {
    const float *row = in + l * Q;
    if constexpr (WIDE && QMAX == 2) {
        CTA_ASSERT_ALIGNED(row, 8);
#ifdef __CUDA_ARCH__
        const float2 v = __ldg(reinterpret_cast<const float2 *>(row));
#else
        const float2 v = *reinterpret_cast<const float2 *>(row);
#endif
        x[0] = v.x, x[1] = v.y;
    } else if constexpr (WIDE) {
        static_assert(QMAX % 4 == 0, "wide rows are whole float4 groups");
        CTA_UNROLL
        for (int h = 0; h < QMAX / 4; ++h) {
            CTA_ASSERT_ALIGNED(row + 4 * h, 16);
#ifdef __CUDA_ARCH__
            const float4 v = __ldg(reinterpret_cast<const float4 *>(row) + h);
#else
            const float4 v = reinterpret_cast<const float4 *>(row)[h];
#endif
            x[4 * h + 0] = v.x, x[4 * h + 1] = v.y, x[4 * h + 2] = v.z, x[4 * h + 3] = v.w;
        }
    } else {
        CTA_UNROLL
        for (int q = 0; q < QMAX; ++q) {
#ifdef __CUDA_ARCH__
            x[q] = q < Q ? __ldg(row + q) : 0.0f;
#else
            x[q] = q < Q ? row[q] : 0.0f;
#endif
        }
    }
}

/* fc_stream_step's output, a fused intermediate (fc_contraction.out_plain): value (l, p) at e = l P + p, after
 * every out_row of them out_pad of padding. fc_out_map::store_column's plain form with what the stream step knows
 * taken out: R = 1 (no column division), shared memory (no test of the address space), and the fields read once per
 * pass (`k` lives in the caller's local memory: a map built from it for each row cost 9 local loads a row). A
 * row's 4 values of p with no padding between them go to 4 consecutive floats (one 16-byte store where
 * aligned); else each finds its own padding. */
struct fc_stream_out {
    int32_t P, pad;
    ttl_divider_t div_row;

    __host__ __device__ explicit fc_stream_out(const fc_contraction &k)
        : P((int32_t)k.P), pad(k.out_pad), div_row(k.div_out_row) {}

    __host__ __device__ __forceinline__ int32_t row_of(int32_t e) const {
        return (int32_t)ttl_div((uint32_t)e, div_row);
    }
    __host__ __device__ __forceinline__ int32_t at(int32_t e) const {
        return pad == 0 ? e : fc_padded_offset(e, div_row, pad);
    }

    /* v[i] as value (l, p0 + i) into `to`, for i < count. Whether padding falls between the 4 values is tested by
     * the rows of the first and the last: tested by comparing the last one's address with the first's plus 3, or
     * with the first one's row worked out before the test, the compiler (nvcc 13.0) split the 16-byte store into
     * narrower ones (seen in the PTX: no st.shared.v4.f32 in fc_stream_step). */
    __host__ __device__ __forceinline__ void store(float *to, int32_t l, int32_t p0, int32_t count,
                                                   const float (&v)[4]) const {
        const int32_t e0 = l * P + p0;
        if (count >= 4 && (pad == 0 || row_of(e0) == row_of(e0 + 3))) { /* no padding between them */
            float *d = to + at(e0);
            if (reinterpret_cast<uintptr_t>(d) % 16 == 0) {
                CTA_ASSERT_ALIGNED(d, 16);
                *reinterpret_cast<float4 *>(d) = make_float4(v[0], v[1], v[2], v[3]);
            } else {
                d[0] = v[0], d[1] = v[1], d[2] = v[2], d[3] = v[3];
            }
            return;
        }
        CTA_UNROLL
        for (int i = 0; i < 4; ++i)
            if (i < count) to[at(e0 + i)] = v[i];
    }
};

/* One pass of fc_stream_step over rows l0 + u FC_THREADS + tid, u < ROWS, of In: every load of x issued before the
 * first multiply-add, then 4 values of p at a time. Rows at or past L load zeros and store nothing. */
template <int QMAX, int ROWS, bool WIDE>
__host__ __device__ __forceinline__ void fc_stream_pass(const fc_contraction &__restrict__ k, const float *As,
                                                        int64_t l0, int tid) {
    const int Q = (int)k.Q, lda = (int)k.lda, P = (int)k.P;
    const int64_t L = k.L;
    float *to = k.out;
    const fc_stream_out sout(k);
    float x[ROWS][QMAX];
    CTA_UNROLL
    for (int u = 0; u < ROWS; ++u) {
        const int64_t l = l0 + u * FC_THREADS + tid;
        if (l < L) {
            fc_stream_load_row<QMAX, WIDE>(x[u], k.in, l, Q);
        } else {
            CTA_UNROLL
            for (int q = 0; q < QMAX; ++q) x[u][q] = 0.0f;
        }
    }
    for (int p0 = 0; p0 < P; p0 += 4) { /* lda is a multiple of 4 (FC_AT_ALIGN), padded with zeros */
        float acc[ROWS][4];
        CTA_UNROLL
        for (int u = 0; u < ROWS; ++u) {
            CTA_UNROLL
            for (int j = 0; j < 4; ++j) acc[u][j] = 0.0f;
        }
        CTA_UNROLL
        for (int q = 0; q < QMAX; ++q) {
            if (q >= Q) break;
            float a[4];
            fc_load_rows<4>(a, As + q * lda + p0);
            CTA_UNROLL
            for (int u = 0; u < ROWS; ++u) {
                CTA_UNROLL
                for (int j = 0; j < 4; ++j) acc[u][j] = fmaf(a[j], x[u][q], acc[u][j]);
            }
        }
        CTA_UNROLL
        for (int u = 0; u < ROWS; ++u) {
            const int64_t l = l0 + u * FC_THREADS + tid;
            if (l >= L) continue;
            CTA_ASSUME_SHARED(to);                          /* a fused intermediate */
            sout.store(to, (int32_t)l, p0, P - p0, acc[u]); /* a plain map: l P < 2^31 */
        }
    }
}

/* The rows of fc_stream_step past its full passes (fewer than 2 FC_THREADS ROWS of them: it is called with half a
 * full pass's rows per thread): a pass of ROWS rows per thread where that many remain, then of ROWS / 2, ..., 1
 * (the last one partial; ROWS a power of two, so that these cover every row), so that the work done is the rows
 * there are (VGG FC6's 6,272 rows per sample at 8 per thread: three full passes and one of a row, where a fourth
 * full pass would run 2,048 rows' multiply-adds for 128). */
template <int QMAX, int ROWS, bool WIDE>
__host__ __device__ __forceinline__ void fc_stream_rest(const fc_contraction &__restrict__ k, const float *As,
                                                        int64_t l0, int tid) {
    if (k.L - l0 >= (int64_t)FC_THREADS * ROWS) {
        fc_stream_pass<QMAX, ROWS, WIDE>(k, As, l0, tid);
        l0 += (int64_t)FC_THREADS * ROWS;
    }
    if constexpr (ROWS > 1)
        fc_stream_rest<QMAX, ROWS / 2, WIDE>(k, As, l0, tid);
    else if (l0 < k.L)
        fc_stream_pass<QMAX, 1, WIDE>(k, As, l0, tid);
}

/* fc_stream_step's passes over all L rows, after A is staged. */
template <int QMAX, bool WIDE>
__host__ __device__ __forceinline__ void fc_stream_rows_all(const fc_contraction &__restrict__ k, const float *As,
                                                            int tid) {
    constexpr int ROWS = fc_stream_rows(QMAX);
    static_assert((ROWS & (ROWS - 1)) == 0, "fc_stream_rest halves the rows per thread down to one");
    constexpr int64_t kPass = (int64_t)FC_THREADS * ROWS;
    int64_t l0 = 0;
    for (; k.L - l0 >= kPass; l0 += kPass) fc_stream_pass<QMAX, ROWS, WIDE>(k, As, l0, tid);
    if (l0 < k.L) fc_stream_rest<QMAX, (ROWS > 1 ? ROWS / 2 : 1), WIDE>(k, As, l0, tid);
}

/* Out[l, p] = sum_q A[p, q] In[l Q + q] for a step whose columns are whole rows of In (R = 1) and whose reduction
 * is short (Q <= QMAX <= FC_STREAM_MAX_Q): the first step of the last-to-first order, x contracted with the last
 * core or the merged ones. A tile would stage every value of x for Q multiply-adds per output, behind two barriers
 * per tile; here each thread takes whole rows, fc_stream_rows(QMAX) of them at a time with all their loads
 * issued before the first multiply-add (fc_stream_pass; the rows past the full passes in smaller ones,
 * fc_stream_rest; each row in vector loads where the rows allow, fc_stream_rows_wide), A is staged once (Q lda
 * floats, fc_fused_plan checks they fit the stage), and the step has two barriers (the stage free, A staged). In is
 * x (device memory, rows of exactly Q floats); Out a fused intermediate in shared memory (out_plain: fc_fused_plan
 * never streams a chain's last step, whose output is y). Ends without a barrier, like fc_tile_gemm. */
template <int QMAX>
__host__ __device__ CTA_NOINLINE void fc_stream_step(const fc_contraction &__restrict__ k, unsigned char *stage) {
    float *As = reinterpret_cast<float *>(stage);
    const int tid = CTA_TID();
    CTA_SYNC(); /* the stage is free */
    for (int i = tid; i < (int)(k.Q * k.lda); i += FC_THREADS) As[i] = k.at[i];
    CTA_SYNC();
    if (fc_stream_rows_wide<QMAX>(k))
        fc_stream_rows_all<QMAX, true>(k, As, tid);
    else
        fc_stream_rows_all<QMAX, false>(k, As, tid);
}

/* The instantiation of fc_stream_step that runs a reduction of Q <= FC_STREAM_MAX_Q. */
__host__ __device__ constexpr int fc_stream_qmax(int64_t Q) { return Q <= 2 ? 2 : Q <= 4 ? 4 : FC_STREAM_MAX_Q; }

static inline __host__ __device__ void fc_fused_stream(const fc_contraction &k, unsigned char *stage) {
    switch (fc_stream_qmax(k.Q)) {
    case 2: fc_stream_step<2>(k, stage); break;
    case 4: fc_stream_step<4>(k, stage); break;
    default: fc_stream_step<FC_STREAM_MAX_Q>(k, stage); break;
    }
}

/* The work of CTA `block` (= tile * nsplit + split): samples [b0, b0 + bt) of split `split`. `smem` is the CTA's
 * dynamic shared memory (16-byte aligned). */
static inline __host__ __device__ void fc_fused_cta(const fc_fused_params_t &prm, int64_t block,
                                                    unsigned char *smem) {
    float *sm = reinterpret_cast<float *>(smem);
    const int64_t split = block % prm.nsplit, tile = block / prm.nsplit;
    const int64_t b0 = tile * prm.bt;
    const int64_t bt = prm.batch - b0 < prm.bt ? prm.batch - b0 : prm.bt;
    unsigned char *stage = smem + (size_t)prm.stage_off * sizeof(float);

    if (prm.merged > 0) fc_build_merged(prm, split, sm);

    for (int s = 0; s < prm.num_steps; ++s) {
        const fc_fused_step_t &st = prm.steps[s];
        const bool last = s == prm.num_steps - 1;
        fc_contraction k;
        k.at = st.a_is_merged ? sm + prm.h_off : st.at;
        k.lda = st.lda;
        k.in = s == 0 ? prm.x + b0 * prm.N : sm + prm.x_off[(s - 1) & 1];
        k.out = last ? prm.y + b0 * prm.M : sm + prm.x_off[s & 1];
        k.bias = last ? prm.bias : NULL;
        k.L = bt * st.lps, k.P = st.P, k.Q = st.Q, k.R = st.R;
        k.lps = last ? st.lps : (int64_t)prm.bt * st.lps; /* intermediates: one block of rows (any lps >= L) */
        k.bs = last ? prm.M : 0;
        k.base = last ? split * prm.split_mul : 0;
        k.es = last ? prm.out_es : 1;
        k.small = 1; /* fc_fused_plan checked bt lps R < 2^31 */
        k.div_r = st.div_r;
        k.div_lps = st.div_lps;
        k.in_ls = st.in_ls; /* intermediates: padded, read directly (st.tile.direct) */
        k.in_qs = st.in_qs;
        k.out_pad = st.out_pad;
        k.div_out_row = st.div_out_row;
        k.out_plain = !last; /* an intermediate in shared memory, [L, P, R] with padding, no bias */
        k.kc = st.tile.kc;
        /* No barrier needed between steps: fc_tile_gemm has one before it reads In or writes the stage, and step
         * s + 1 writes the buffer step s - 1 wrote (and step s read) only in its store phase, after its own
         * barriers. */
#define FC_FUSED_STEP(TP, TC, MMA)                                                                                 \
    if (st.tile.direct)                                                                                            \
        fc_fused_step_tiles<TP, TC, true, MMA>(k, st.tile.wp, stage);                                              \
    else                                                                                                           \
        fc_fused_step_tiles<TP, TC, false, MMA>(k, st.tile.wp, stage)
        if (st.stream)
            fc_fused_stream(k, stage);
        else
            FC_TILE_DISPATCH(st.tile, FC_FUSED_STEP);
#undef FC_FUSED_STEP
    }
}

#endif /* TTL_CUDA_FC_FUSED_CUH */
