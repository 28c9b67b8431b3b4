/*
 * SEQUENTIAL TT-FC: one libttl kernel per core, y = W x + b on a batch, either core order.
 *
 * Step k computes Out[l, p, r] = sum_q A_k[p, q] In[l, q, r] with the shapes of fc_internal.h. Because the
 * working tensor is kept in the layout the next step reads, each kernel contracts and "permutes" in one pass:
 * there is no transpose kernel. Each CTA computes one tile of the step's output with the shared-memory tiled
 * routine of fc_tile.cuh (A and In staged a chunk of q at a time, a register tile per thread); the tile
 * shape is chosen per step from P, Q and the column count L R. The last step writes y and adds the bias.
 *
 * Workspace: two ping-pong buffers; step i (not the last) writes buffer i % 2, so buffer 0 holds the largest of
 * the outputs of steps 0, 2, 4, ... and buffer 1 of steps 1, 3, ... Intermediates grow by the factor r_k m_k / n_k
 * (or r_k n_k / m_k), so for layers with ranks above the mode ratio (VGG FC6 at rank 4: the first first-to-last
 * intermediate is 8x the input) the workspace exceeds 2x max(input, output): FUSED keeps those on chip instead.
 *
 * Variants: the tile configuration (tp x tc register tile, wp warps along P), instantiated for tp in 1, 2, 4, 8
 * and tc in 1, 4.
 */
#include "cuda/fc_tile.cuh"
#include "cuda/plan_common.h"

/* CUDA's limit on gridDim.y, which counts a step's row tiles. */
#define FC_SEQ_MAX_GRID_Y 65535

// ---------------------------------------------------------------------------------------------------------------
// kernel
// ---------------------------------------------------------------------------------------------------------------

template <int TP, int TC>
__global__ void __launch_bounds__(FC_THREADS) fc_seq_kernel(const fc_contraction k, int wp) {
    extern __shared__ __align__(16) unsigned char fc_seq_smem[];
    const int64_t row0 = (int64_t)blockIdx.y * fc_tile_rows(TP, wp);
    const int64_t col0 = (int64_t)blockIdx.x * fc_tile_cols(TC, wp);
    fc_tile_gemm<TP, TC>(k, wp, row0, col0, fc_seq_smem);
}

// ---------------------------------------------------------------------------------------------------------------
// launcher
// ---------------------------------------------------------------------------------------------------------------

/* Grid of one step: x over column tiles, y over row tiles. */
static void step_grid(dim3 *grid, const fc_seq_step_t *s) {
    const int64_t cols = fc_tile_cols(s->tile.tc, s->tile.wp), rows = fc_tile_rows(s->tile.tp, s->tile.wp);
    grid->x = (unsigned)((s->L * s->R + cols - 1) / cols);
    grid->y = (unsigned)((s->P + rows - 1) / rows);
    grid->z = 1;
}

static ttl_status_t launch_step(const fc_contraction &k, const fc_tile_cfg_t &cfg, dim3 grid, cudaStream_t stream) {
    const size_t smem = fc_tile_smem_bytes(cfg.tp, cfg.tc, cfg.wp);
    bool launched = false;
#define FC_SEQ_LAUNCH(TP, TC)                                                                                      \
    fc_seq_kernel<TP, TC><<<grid, FC_THREADS, smem, stream>>>(k, cfg.wp);                                          \
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

fc_tile_cfg_t fc_tile_choose(int64_t L, int64_t P, int64_t Q, int64_t R, int64_t parallel_ctas) {
    static const int tps[] = {1, 2, 4, 8}, tcs[] = {1, 4}, wps[] = {1, 2, 4, 8};
    const double C = (double)L * (double)R;
    fc_tile_cfg_t best = {1, 1, 1};
    double best_cost = -1.0;
    for (int tc : tcs)
        for (int wp : wps)
            for (int tp : tps) {
                const int rows = fc_tile_rows(tp, wp), cols = fc_tile_cols(tc, wp);
                if (cols > FC_MAX_COLS || rows > FC_MAX_ROWS) continue;
                const int kc = fc_tile_kc(tp, tc, wp);
                const double chunks = (double)((Q + kc - 1) / kc);
                const double tiles = ceil((double)P / rows) * ceil(C / cols);
                /* per tile and thread: kc fma per output and chunk, staging (about 4 fma worth per value), barriers
                 */
                const double per_tile =
                    chunks * (tp * tc * kc + 4.0 * (rows + cols) * kc / FC_THREADS + 100.0) + 4.0 * tp * tc;
                const double waves = ceil(tiles / (double)(parallel_ctas > 0 ? parallel_ctas : 1));
                const double cost = waves * per_tile;
                if (best_cost < 0 || cost < best_cost) best_cost = cost, best = fc_tile_cfg_t{tp, tc, wp};
            }
    return best;
}

ttl_status_t fc_sequential_plan(ttl_cuda_fc_plan_t *p, ttl_order_t order, int tiles) {
    const ttl_cuda_fc_layer_t *layer = p->layer;
    const ttl_fc_desc_t *d = &layer->desc;
    const int32_t nc = d->num_cores;
    const int o = order == TTL_ORDER_FIRST_TO_LAST ? FC_FTL : FC_LTF;
    int64_t ws_elems[2] = {0, 0};
    for (int32_t i = 0; i < nc; ++i) {
        const int32_t k = o == FC_FTL ? i : nc - 1 - i;
        int64_t lead = p->batch, trail = 1;
        fc_seq_step_t *s = &p->steps[i];
        memset(s, 0, sizeof(*s));
        if (o == FC_FTL) {
            for (int32_t j = 0; j < k; ++j) TTL_TRY(ttl_mul_i64(&lead, lead, d->out_modes[j]));
            for (int32_t j = k + 1; j < nc; ++j) trail *= d->in_modes[j];
            s->P = d->out_modes[k] * d->ranks[k + 1];
            s->Q = d->ranks[k] * d->in_modes[k];
        } else {
            for (int32_t j = 0; j < k; ++j) TTL_TRY(ttl_mul_i64(&lead, lead, d->in_modes[j]));
            for (int32_t j = k + 1; j < nc; ++j) trail *= d->out_modes[j];
            s->P = d->ranks[k] * d->out_modes[k];
            s->Q = d->in_modes[k] * d->ranks[k + 1];
        }
        s->L = lead;
        s->R = trail;
        s->at = layer->at[o] + layer->at_offset[o][k];
        s->lda = layer->at_lda[o][k];
        s->in_buf = i == 0 ? FC_BUF_X : (((i - 1) & 1) ? FC_BUF_WS1 : FC_BUF_WS0);
        s->out_buf = i == nc - 1 ? FC_BUF_Y : ((i & 1) ? FC_BUF_WS1 : FC_BUF_WS0);
        int64_t out_elems;
        TTL_TRY(ttl_mul_i64(&out_elems, s->L, s->P));
        TTL_TRY(ttl_mul_i64(&out_elems, out_elems, s->R));
        if (i != nc - 1) ws_elems[i & 1] = ttl_max_i64(ws_elems[i & 1], out_elems);
        if (tiles) {
            const ttl_cuda_handle_t *h = layer->handle;
            s->tile = fc_tile_choose(s->L, s->P, s->Q, s->R, 2 * (int64_t)ttl_max_i64(h->sm_count, 1));
        }
    }
    p->num_steps = nc;
    size_t b0, b1, cursor = 0;
    TTL_TRY(ttl_bytes(&b0, ws_elems[0], sizeof(float)));
    TTL_TRY(ttl_bytes(&b1, ws_elems[1], sizeof(float)));
    p->ws_offset[0] = ttl_cuda_ws_take(&cursor, b0);
    p->ws_offset[1] = ttl_cuda_ws_take(&cursor, b1);
    p->info.workspace_bytes = (b0 + b1) > 0 ? cursor : 0;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t fc_sequential_check(const fc_seq_step_t *steps, int32_t num_steps) {
    for (int32_t i = 0; i < num_steps; ++i) {
        const fc_seq_step_t *s = &steps[i];
        const int64_t cols = fc_tile_cols(s->tile.tc, s->tile.wp), rows = fc_tile_rows(s->tile.tp, s->tile.wp);
        int64_t C;
        TTL_TRY(ttl_mul_i64(&C, s->L, s->R));
        if ((C + cols - 1) / cols > INT32_MAX || (s->P + rows - 1) / rows > FC_SEQ_MAX_GRID_Y)
            return TTL_STATUS_UNSUPPORTED;
    }
    return TTL_STATUS_SUCCESS;
}

fc_contraction fc_seq_contraction(const ttl_cuda_fc_plan_t *plan, int32_t i, float *y, const float *x,
                                  unsigned char *ws) {
    const ttl_cuda_fc_layer_t *layer = plan->layer;
    float *bufs[4] = {NULL, y, NULL, NULL};
    bufs[FC_BUF_WS0] = reinterpret_cast<float *>(ws + plan->ws_offset[0]);
    bufs[FC_BUF_WS1] = reinterpret_cast<float *>(ws + plan->ws_offset[1]);
    const fc_seq_step_t *s = &plan->steps[i];
    const bool last = i == plan->num_steps - 1;
    fc_contraction k;
    k.at = s->at;
    k.lda = s->lda;
    k.in = s->in_buf == FC_BUF_X ? x : bufs[s->in_buf];
    k.out = bufs[s->out_buf];
    k.bias = last ? layer->bias : NULL;
    k.L = s->L, k.P = s->P, k.Q = s->Q, k.R = s->R;
    /* intermediates are plain [L, P, R]; the last step's [L, P, R] is y [B, M] with L / B rows per sample */
    k.lps = last ? s->L / plan->batch : s->L;
    k.bs = last ? layer->desc.out_features : 0;
    k.base = 0;
    k.es = 1;
    return k;
}

ttl_status_t fc_sequential_run(const ttl_cuda_fc_plan_t *plan, float *y, const float *x, unsigned char *ws,
                               cudaStream_t stream) {
    for (int32_t i = 0; i < plan->num_steps; ++i) {
        const fc_contraction k = fc_seq_contraction(plan, i, y, x, ws);
        dim3 grid;
        step_grid(&grid, &plan->steps[i]);
        TTL_TRY(launch_step(k, plan->steps[i].tile, grid, stream));
    }
    return TTL_STATUS_SUCCESS;
}
