/*
 * SEQUENTIAL TT-FC: one libttl kernel per core, y = W x + b on a batch, either core order.
 *
 * Step k computes Out[l, p, r] = sum_q A_k[p, q] In[l, q, r] with the shapes of fc_internal.h. Because the
 * working tensor is kept in the layout the next step reads, each kernel contracts and "permutes" in one pass:
 * there is no transpose kernel. Each CTA computes one tile of the step's output with the shared-memory tiled
 * routine of fc_tile.cuh (A and In staged a chunk of q at a time, a register tile per thread); the tile
 * shape is chosen per step from P, Q and the column count L R. The last step writes y and adds the bias.
 *
 * Workspace: the schedule (fc_internal.h, fc_seq_schedule_t) keeps it at most twice the larger of x and y where
 * it can: intermediates grow by r_k m_k / n_k per step (or r_k n_k / m_k), so for layers whose ranks exceed the
 * mode ratios (VGG FC6 TT4, first to last: 12x the activations at once) the first steps run per chunk of their
 * leading rows. Where even one unit per chunk does not fit (a single sample whose intermediate is larger than
 * the bound: the CIFAR-10 TT-FC layers at batch 1), the schedule with the least workspace is taken. FUSED keeps
 * all intermediates on chip instead.
 *
 * Variants: the tile configuration (tp x tc register tile, wp warps along P), instantiated for tp in 1, 2, 4, 8
 * and tc in 1, 4; with allow_3xtf32 also the tensor-core tiles (fc_tile_mma), where the cost model prefers them.
 */
#include "cuda/fc_tile.cuh"
#include "cuda/plan_common.h"

/* CUDA's limit on gridDim.y, which counts a step's row tiles. */
#define FC_SEQ_MAX_GRID_Y 65535

// ---------------------------------------------------------------------------------------------------------------
// kernel
// ---------------------------------------------------------------------------------------------------------------

template <int TP, int TC, bool MMA>
__global__ void __launch_bounds__(FC_THREADS) fc_seq_kernel(const fc_contraction k, int wp) {
    extern __shared__ __align__(16) unsigned char fc_seq_smem[];
    const fc_tile_cfg_t cfg = {TP, TC, wp, 0, MMA, 0};
    const int64_t row0 = (int64_t)blockIdx.y * fc_tile_rows(cfg);
    const int64_t col0 = (int64_t)blockIdx.x * fc_tile_cols(cfg);
    fc_tile<TP, TC, false, MMA>(k, wp, row0, col0, fc_seq_smem);
}

// ---------------------------------------------------------------------------------------------------------------
// launcher
// ---------------------------------------------------------------------------------------------------------------

static ttl_status_t launch_step(const fc_contraction &k, const fc_tile_cfg_t &cfg, dim3 grid, cudaStream_t stream) {
    const size_t smem = fc_tile_smem_bytes(cfg);
    bool launched = false;
#define FC_SEQ_LAUNCH(TP, TC, MMA)                                                                                 \
    fc_seq_kernel<TP, TC, MMA><<<grid, FC_THREADS, smem, stream>>>(k, cfg.wp);                                     \
    launched = true
    FC_TILE_DISPATCH(cfg, FC_SEQ_LAUNCH);
#undef FC_SEQ_LAUNCH
    if (!launched) return TTL_STATUS_BAD_ARGUMENT;
    TTL_CUDA_CHECK_LAUNCH();
    return TTL_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// internal entry points
// ---------------------------------------------------------------------------------------------------------------

/* Per-thread issue slots (one per instruction, a multiply-add being one) of one tile of a contraction with Q
 * values of q and R columns per row of L, and what they take on one SM:
 *  - inner loop, per q: tp x tc multiply-adds, fed by ceil(tp / 4) broadcast loads of A and tc loads of B from
 *    shared memory, all issued; shared memory serves one such warp-wide load per clock where the pipes issue four
 *    warp instructions, so a q costs max(tp tc + loads, 4 loads) slots: tiles below 8 x 4 wait on shared memory.
 *    A direct tile adds an address per load of B (its columns' offsets differ, the stage's are constants). The
 *    sm_90 code of the 8 x 4 tiles issues about 42 (staged) and 43 (direct) instructions a q, against 38 and 42;
 *  - tensor-core tiles, per 8 values of q: 4 tp loads of A and 2 tc of B (each `ways` wavefronts when a direct
 *    read has bank conflicts), each split in four instructions (mma_tf32.cuh; sm_90, about 11 on sm_80), and
 *    3 tp tc products of TTL_COST_MMA_TF32_SLOTS each on the tensor pipe: the longest of issue, shared memory
 *    and tensor pipe. The sm_90 code issues 55, 85 and 115 instructions per 8 q for the 1 x 2, 1 x 4 and 2 x 4
 *    tiles, against 54, 88 and 104;
 *  - staging, per chunk: (rows + cols) kc values spread over the CTA, FC_STAGE_SLOTS each (the sm_90 stage
 *    loops: 11 to 15 instructions a value, copy, pointer steps and bounds), only rows kc for a direct tile; B in
 *    16-byte copies where runs of R are a multiple of 4 (fc_stage_b_in_groups, with In aligned as an allocation
 *    is) and the tile stages asynchronously (not the widest tensor-core tile), FC_STAGE_GROUP_SLOTS each (about 20
 *    in the sm_90 loop); the B stage of short rows (R < 8) pads a short last chunk to a power of two (the
 *    tensor-core tile every chunk to a multiple of 8);
 *  - FC_CHUNK_SLOTS per chunk for its two barriers, and FC_STORE_SLOTS per output of the epilogue (a plain map's
 *    5 to 7 instructions a value; the last step's general map, about 45, is one step of many). */
#define FC_STAGE_SLOTS 12.0
#define FC_STAGE_GROUP_SLOTS 20.0
#define FC_CHUNK_SLOTS 100.0
#define FC_STORE_SLOTS 6.0
static double tile_slots(int64_t Q, int64_t R, fc_tile_cfg_t t, int ways) {
    const int rows = fc_tile_rows(t), kch = fc_tile_kc(t);
    const double cols = (double)fc_tile_staged_cols(t);
    const int64_t full = Q / kch, rest = Q - full * kch;
    const double chunks = (double)full + (rest > 0 ? 1.0 : 0.0);
    const int64_t last = t.mma ? (rest + 7) / 8 * 8 : rest; /* the tensor-core tile rounds q up to 8 */
    const double walked_q = (double)(full * kch + last);    /* q values the A stage and the products walk */
    double staged_q = walked_q; /* and the B stage, whose short rows (R < 8) pad a chunk to a power of two */
    if (R < 8 && last > 0) staged_q = (double)full * kch + (double)(1 << ttl_ceil_log2((int)last));
    /* 16-byte B copies: runs of R a multiple of 4, and asynchronous copies (all but the widest tensor-core tile) */
    const bool b_groups = R >= 8 && R % 4 == 0 && (!t.mma || t.tp * t.tc < 8);
    const double b_value = b_groups ? FC_STAGE_GROUP_SLOTS / 4.0 : FC_STAGE_SLOTS;
    const double staging = (FC_STAGE_SLOTS * rows * walked_q + b_value * cols * staged_q) / FC_THREADS;
    double inner;
    if (t.mma) {
        const double a = 4.0 * t.tp, b = 2.0 * t.tc, products = 3.0 * t.tp * t.tc;
        const double issue = 5.0 * (a + b) + (t.direct ? 2.0 * b : 0.0) + products;
        const double shared = 4.0 * (a + b * (ways > 1 ? ways : 1));
        const double per_k8 = fmax(issue, fmax(shared, products * TTL_COST_MMA_TF32_SLOTS));
        inner = walked_q / 8.0 * per_k8;
    } else {
        const double loads = (double)((t.tp + 3) / 4 + t.tc);
        const double issue = (double)t.tp * t.tc + loads + (t.direct ? t.tc : 0);
        inner = (double)Q * fmax(issue, 4.0 * loads);
    }
    const double outputs = t.mma ? 4.0 * t.tp * t.tc : (double)t.tp * t.tc; /* per thread */
    return inner + staging + FC_CHUNK_SLOTS * chunks + FC_STORE_SLOTS * outputs;
}

int64_t fc_tile_count(int64_t L, int64_t P, int64_t R, fc_tile_cfg_t t) {
    const int64_t rows = fc_tile_rows(t), cols = fc_tile_cols(t);
    return ((P + rows - 1) / rows) * ((L * R + cols - 1) / cols);
}

double fc_tile_us(int64_t Q, int64_t R, fc_tile_cfg_t t, int ways) {
    return tile_slots(Q, R, t, ways) * FC_THREADS / TTL_COST_SM_ISSUE_PER_US;
}

fc_tile_cfg_t fc_tile_choose(int64_t L, int64_t P, int64_t Q, int64_t R, int64_t parallel_ctas, int direct,
                             unsigned forms, int ways) {
    static const int tps[] = {1, 2, 4, 8}, tcs[] = {1, 4}, wps[] = {1, 2, 4, 8};
    static const int mma_tps[] = {1, 2}, mma_tcs[] = {2, 4};
    fc_tile_cfg_t best = {1, 1, 1, direct, 0, 0};
    double best_cost = -1.0;
    auto consider = [&](const fc_tile_cfg_t &t) {
        if (fc_tile_cols(t) > FC_MAX_COLS || fc_tile_rows(t) > FC_MAX_ROWS) return;
        const double tiles = (double)fc_tile_count(L, P, R, t);
        const double waves = ceil(tiles / (double)(parallel_ctas > 0 ? parallel_ctas : 1));
        const double cost = waves * tile_slots(Q, R, t, t.mma ? ways : 1);
        if (best_cost < 0 || cost < best_cost) best_cost = cost, best = t;
    };
    if (forms & FC_FORM_FFMA)
        for (int tc : tcs)
            for (int wp : wps)
                for (int tp : tps) consider(fc_tile_cfg_t{tp, tc, wp, direct, 0, 0});
    if (forms & FC_FORM_MMA)
        for (int tc : mma_tcs)
            for (int wp : wps)
                for (int tp : mma_tps) consider(fc_tile_cfg_t{tp, tc, wp, direct, 1, 0});
    return best;
}

/* Geometry of every step of `order` over the whole batch: L, P, Q, R, At and lda. */
static ttl_status_t seq_geometry(fc_seq_schedule_t *s, const ttl_cuda_fc_layer_t *layer, int64_t batch,
                                 ttl_order_t order) {
    const ttl_fc_desc_t *d = &layer->desc;
    const int32_t nc = d->num_cores;
    const int o = order == TTL_ORDER_FIRST_TO_LAST ? FC_FTL : FC_LTF;
    memset(s, 0, sizeof(*s));
    s->num_steps = nc;
    for (int32_t i = 0; i < nc; ++i) {
        const int32_t k = o == FC_FTL ? i : nc - 1 - i;
        int64_t lead = batch, trail = 1;
        fc_seq_step_t *st = &s->steps[i];
        if (o == FC_FTL) {
            for (int32_t j = 0; j < k; ++j) TTL_TRY(ttl_mul_i64(&lead, lead, d->out_modes[j]));
            for (int32_t j = k + 1; j < nc; ++j) trail *= d->in_modes[j];
            st->P = d->out_modes[k] * d->ranks[k + 1];
            st->Q = d->ranks[k] * d->in_modes[k];
        } else {
            for (int32_t j = 0; j < k; ++j) TTL_TRY(ttl_mul_i64(&lead, lead, d->in_modes[j]));
            for (int32_t j = k + 1; j < nc; ++j) trail *= d->out_modes[j];
            st->P = d->ranks[k] * d->out_modes[k];
            st->Q = d->in_modes[k] * d->ranks[k + 1];
        }
        st->L = lead;
        st->R = trail;
        st->at = layer->at[o] + layer->at_offset[o][k];
        st->lda = layer->at_lda[o][k];
        int64_t out_elems; /* every full intermediate must be countable */
        TTL_TRY(ttl_mul_i64(&out_elems, st->L, st->P));
        TTL_TRY(ttl_mul_i64(&out_elems, out_elems, st->R));
    }
    return TTL_STATUS_SUCCESS;
}

/* Buffers and workspace of the slicing (num_sliced, chunk_units) on a schedule whose geometry is set. The full
 * buffers: WS0 holds the outputs of steps t, t+2, ... and WS1 of t+1, t+3, ... (t = the last sliced step, or 0),
 * the last step writing y. The per-chunk buffers SL0 / SL1 (steps 0, 2, ... and 1, 3, ... before t) are live only
 * while WS1 is not, so they share its bytes: workspace = WS0 + max(WS1, SL0 + SL1). */
static ttl_status_t seq_slice(fc_seq_schedule_t *s, int32_t num_sliced, int64_t chunk_units) {
    const int32_t n = s->num_steps;
    if (num_sliced == 1) num_sliced = 0; /* one sliced step is the plain schedule */
    if (num_sliced < 0 || num_sliced > n) return TTL_STATUS_BAD_ARGUMENT;
    s->num_sliced = num_sliced;
    s->units = 0;
    for (int32_t i = 0; i < num_sliced; ++i)
        s->units = i == 0 ? s->steps[0].L : ttl_min_i64(s->units, s->steps[i].L);
    if (s->units == 0) num_sliced = 0, s->num_sliced = 0; /* batch 0: nothing to chunk */
    s->chunk_units = num_sliced > 0 ? ttl_max_i64(1, ttl_min_i64(chunk_units, s->units)) : 0;
    const int32_t t = num_sliced > 0 ? num_sliced - 1 : 0;
    int64_t elems[FC_NUM_BUFS] = {0};
    for (int32_t i = 0; i < n; ++i) {
        fc_seq_step_t *st = &s->steps[i];
        const bool sliced = i < num_sliced;
        st->unit_rows = sliced ? st->L / s->units : 0;
        if (i == 0)
            st->in_buf = FC_BUF_X;
        else if (i <= t)
            st->in_buf = ((i - 1) & 1) ? FC_BUF_SL1 : FC_BUF_SL0;
        else
            st->in_buf = ((i - 1 - t) & 1) ? FC_BUF_WS1 : FC_BUF_WS0;
        int64_t rows = st->L;
        if (i == n - 1) {
            st->out_buf = FC_BUF_Y;
        } else if (i < t) {
            st->out_buf = (i & 1) ? FC_BUF_SL1 : FC_BUF_SL0;
            rows = s->chunk_units * st->unit_rows;
        } else {
            st->out_buf = ((i - t) & 1) ? FC_BUF_WS1 : FC_BUF_WS0;
        }
        if (st->out_buf != FC_BUF_Y) {
            int64_t e;
            TTL_TRY(ttl_mul_i64(&e, rows, st->P));
            TTL_TRY(ttl_mul_i64(&e, e, st->R));
            elems[st->out_buf] = ttl_max_i64(elems[st->out_buf], e);
        }
    }
    size_t bytes[FC_NUM_BUFS];
    for (int b = FC_BUF_WS0; b < FC_NUM_BUFS; ++b) TTL_TRY(ttl_bytes(&bytes[b], elems[b], sizeof(float)));
    size_t cursor = 0, shared = 0;
    s->ws_offset[FC_BUF_WS0] = ttl_cuda_ws_take(&cursor, bytes[FC_BUF_WS0]);
    const size_t start = ttl_align_up(cursor);
    s->ws_offset[FC_BUF_WS1] = ttl_cuda_ws_take(&shared, bytes[FC_BUF_WS1]);
    const size_t ws1_end = shared;
    shared = 0;
    s->ws_offset[FC_BUF_SL0] = ttl_cuda_ws_take(&shared, bytes[FC_BUF_SL0]);
    s->ws_offset[FC_BUF_SL1] = ttl_cuda_ws_take(&shared, bytes[FC_BUF_SL1]);
    for (int b = FC_BUF_WS1; b < FC_NUM_BUFS; ++b) s->ws_offset[b] += start;
    const size_t total = start + (ws1_end > shared ? ws1_end : shared);
    bool any = false;
    for (int b = FC_BUF_WS0; b < FC_NUM_BUFS; ++b) any = any || bytes[b] > 0;
    s->ws_bytes = any ? total : 0;
    return TTL_STATUS_SUCCESS;
}

/* Tile configurations for the rows each launch covers. */
static void seq_tiles(fc_seq_schedule_t *s, const ttl_cuda_handle_t *h) {
    const int64_t ctas = 2 * ttl_max_i64(h->sm_count, 1);
    for (int32_t i = 0; i < s->num_steps; ++i) {
        fc_seq_step_t *st = &s->steps[i];
        const int64_t rows = i < s->num_sliced ? s->chunk_units * st->unit_rows : st->L;
        st->tile = fc_tile_choose(rows, st->P, st->Q, st->R, ctas, 0, fc_mma_forms(s->mma), 1);
    }
}

ttl_status_t fc_seq_schedule_fixed(fc_seq_schedule_t *s, const ttl_cuda_fc_layer_t *layer, int64_t batch,
                                   ttl_order_t order, int32_t num_sliced, int64_t chunk_units, int tiles, int mma) {
    TTL_TRY(seq_geometry(s, layer, batch, order));
    s->mma = mma;
    TTL_TRY(seq_slice(s, num_sliced, chunk_units));
    if (tiles) seq_tiles(s, layer->handle);
    return TTL_STATUS_SUCCESS;
}

/* Estimated time of one launch of step `st` on `L` rows: its tiles in waves of two CTAs per SM (cuBLAS: its
 * multiply-adds at the SGEMM-like rate of every SM), or the bytes it moves, whichever is longer. */
static double launch_estimate(const fc_seq_step_t *st, int64_t L, int blas, double sms) {
    const double bytes = 4.0 * ((double)L * st->R * (st->P + st->Q) + (double)st->P * st->Q);
    double compute_us;
    if (blas) {
        compute_us = (double)L * st->P * st->Q * st->R / (sms * TTL_COST_SM_MACS_PER_US);
    } else {
        const double tiles = (double)fc_tile_count(L, st->P, st->R, st->tile);
        const double per_sm = tiles < sms ? 1.0 : ceil(tiles / (2.0 * sms)) * 2.0; /* alone, or two sharing */
        compute_us = per_sm * fc_tile_us(st->Q, st->R, st->tile, 1);
    }
    return (blas ? TTL_COST_BLAS_CALL_US : TTL_COST_LAUNCH_US) +
           fmax(compute_us, bytes / TTL_COST_DRAM_BYTES_PER_US);
}

double fc_seq_estimate(const fc_seq_schedule_t *s, const ttl_cuda_handle_t *h, int blas) {
    const double sms = h->sm_count > 0 ? h->sm_count : 1;
    double us = 0.0;
    const int64_t full = s->num_sliced > 0 ? s->units / s->chunk_units : 0;
    const int64_t rest = s->num_sliced > 0 ? s->units - full * s->chunk_units : 0;
    for (int32_t i = 0; i < s->num_steps; ++i) {
        const fc_seq_step_t *st = &s->steps[i];
        if (i >= s->num_sliced) {
            us += launch_estimate(st, st->L, blas, sms);
            continue;
        }
        us += (double)full * launch_estimate(st, s->chunk_units * st->unit_rows, blas, sms);
        if (rest > 0) us += launch_estimate(st, rest * st->unit_rows, blas, sms);
    }
    return us;
}

/* Largest chunk (in units) whose workspace is at most `limit`, spread evenly over the chunks it needs; 0 when
 * even one unit per chunk needs more. */
static int64_t largest_chunk(fc_seq_schedule_t *s, int32_t num_sliced, size_t limit) {
    if (seq_slice(s, num_sliced, 1) != TTL_STATUS_SUCCESS || s->ws_bytes > limit) return 0;
    if (s->num_sliced == 0) return 1; /* nothing is chunked */
    int64_t lo = 1, hi = s->units;    /* workspace grows with the chunk: lo fits, find the last that does */
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo + 1) / 2;
        if (seq_slice(s, num_sliced, mid) == TTL_STATUS_SUCCESS && s->ws_bytes <= limit)
            lo = mid;
        else
            hi = mid - 1;
    }
    const int64_t chunks = (s->units + lo - 1) / lo;
    return (s->units + chunks - 1) / chunks;
}

ttl_status_t fc_seq_schedule_plan(fc_seq_schedule_t *out, const ttl_cuda_fc_layer_t *layer, int64_t batch,
                                  ttl_order_t order, int blas, size_t limit, int mma) {
    const ttl_fc_desc_t *d = &layer->desc;
    fc_seq_schedule_t s;
    TTL_TRY(seq_geometry(&s, layer, batch, order));
    s.mma = blas ? 0 : mma;
    /* the bound: the caller's, or twice the larger activation (saturated where that product overflows) */
    int64_t act = 0;
    size_t bound = SIZE_MAX;
    if (ttl_mul_i64(&act, batch, ttl_max_i64(d->in_features, d->out_features)) == TTL_STATUS_SUCCESS &&
        act <= (int64_t)(SIZE_MAX / (2 * sizeof(float))))
        bound = (size_t)act * 2 * sizeof(float);
    if (limit > 0) bound = limit;
    bool have_fit = false, have_least = false;
    double fit_us = 0.0, least_us = 0.0;
    fc_seq_schedule_t fit, least;
    ttl_status_t error = TTL_STATUS_UNSUPPORTED; /* why the last schedule could not be laid out */
    for (int32_t ns = 0; ns <= s.num_steps; ns = ns == 0 ? 2 : ns + 1) {
        /* with a fitting chunk, the fastest; otherwise the least workspace, in the largest chunks that keep it */
        int64_t chunk = largest_chunk(&s, ns, bound);
        const bool fits = chunk > 0;
        if (!fits) {
            if ((error = seq_slice(&s, ns, 1)) != TTL_STATUS_SUCCESS) continue;
            chunk = largest_chunk(&s, ns, s.ws_bytes);
        }
        if ((error = seq_slice(&s, ns, chunk)) != TTL_STATUS_SUCCESS) continue;
        seq_tiles(&s, layer->handle);
        const double us = fc_seq_estimate(&s, layer->handle, blas);
        if (fits && (!have_fit || us < fit_us)) fit = s, fit_us = us, have_fit = true;
        if (!fits &&
            (!have_least || s.ws_bytes < least.ws_bytes || (s.ws_bytes == least.ws_bytes && us < least_us)))
            least = s, least_us = us, have_least = true;
    }
    if (!have_fit && !have_least) return error;
    *out = have_fit ? fit : least;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t fc_sequential_check(const fc_seq_schedule_t *s) {
    for (int32_t i = 0; i < s->num_steps; ++i) {
        const fc_seq_step_t *st = &s->steps[i];
        const int64_t cols = fc_tile_cols(st->tile), rows = fc_tile_rows(st->tile);
        int64_t C;
        TTL_TRY(ttl_mul_i64(&C, st->L, st->R));
        if ((C + cols - 1) / cols > INT32_MAX || (st->P + rows - 1) / rows > FC_SEQ_MAX_GRID_Y)
            return TTL_STATUS_UNSUPPORTED;
    }
    return TTL_STATUS_SUCCESS;
}

int64_t fc_seq_num_launches(const fc_seq_schedule_t *s) {
    const int64_t chunks = s->num_sliced > 0 ? (s->units + s->chunk_units - 1) / s->chunk_units : 0;
    return chunks * s->num_sliced + (s->num_steps - s->num_sliced);
}

fc_seq_launch_t fc_seq_launch(const fc_seq_schedule_t *s, int64_t n, float *y, const float *x, unsigned char *ws) {
    float *bufs[FC_NUM_BUFS] = {NULL, y};
    for (int b = FC_BUF_WS0; b < FC_NUM_BUFS; ++b) bufs[b] = reinterpret_cast<float *>(ws + s->ws_offset[b]);
    const int64_t sliced_launches = fc_seq_num_launches(s) - (s->num_steps - s->num_sliced);
    fc_seq_launch_t l;
    int64_t unit0 = 0, units = 0;
    if (n < sliced_launches) {
        l.step = (int32_t)(n % s->num_sliced);
        unit0 = n / s->num_sliced * s->chunk_units;
        units = ttl_min_i64(s->chunk_units, s->units - unit0);
    } else {
        l.step = s->num_sliced + (int32_t)(n - sliced_launches);
    }
    const fc_seq_step_t *st = &s->steps[l.step];
    l.L = st->L;
    l.in = st->in_buf == FC_BUF_X ? x : bufs[st->in_buf];
    l.out = bufs[st->out_buf];
    if (l.step < s->num_sliced) { /* a chunk: rows [row0, row0 + L) of x and of the full output */
        const int64_t row0 = unit0 * st->unit_rows;
        l.L = units * st->unit_rows;
        if (st->in_buf == FC_BUF_X) l.in += row0 * st->Q * st->R;
        if (l.step == s->num_sliced - 1) l.out += row0 * st->P * st->R;
    }
    return l;
}

fc_contraction fc_seq_contraction(const ttl_cuda_fc_plan_t *plan, const fc_seq_launch_t &l) {
    const fc_seq_schedule_t *s = &plan->seq;
    const fc_seq_step_t *st = &s->steps[l.step];
    const bool last = l.step == s->num_steps - 1;
    /* intermediates are plain [L, P, R]; the last step's [L, P, R] is y [B, M] with L / B rows per sample */
    return fc_contraction_make(st->at, st->lda, l.in, l.out, last ? plan->layer->bias : NULL, l.L, st->P, st->Q,
                               st->R, last ? st->L / plan->batch : l.L, last ? plan->layer->desc.out_features : 0,
                               0, 1);
}

ttl_status_t fc_sequential_run(const ttl_cuda_fc_plan_t *plan, float *y, const float *x, unsigned char *ws,
                               cudaStream_t stream) {
    const int64_t launches = fc_seq_num_launches(&plan->seq);
    for (int64_t n = 0; n < launches; ++n) {
        const fc_seq_launch_t l = fc_seq_launch(&plan->seq, n, y, x, ws);
        const fc_seq_step_t *st = &plan->seq.steps[l.step];
        const int64_t cols = fc_tile_cols(st->tile), rows = fc_tile_rows(st->tile);
        const dim3 grid((unsigned)((l.L * st->R + cols - 1) / cols), (unsigned)((st->P + rows - 1) / rows), 1);
        TTL_TRY(launch_step(fc_seq_contraction(plan, l), st->tile, grid, stream));
    }
    return TTL_STATUS_SUCCESS;
}
