/*
 * TT-conv forward without im2col or a reconstructed kernel: SPATIAL_FIRST and CHANNELS_FIRST
 * (docs/tt-layers.md, section 2; layouts in conv_internal.h).
 *
 *   x is [B, C, H, W] (NCHW) or [B, H, W, C] (NHWC); y is [B, S, OH, OW] or [B, OH, OW, S].
 *
 * SPATIAL_FIRST, per output pixel: Z[(a, c)] = sum_{p,q} G_0[p, q, a] x[c, oh sh - ph + p dh, ow sw - pw + q dw]
 * (r_0 C values), then the channel TT-matrix with r_0 merged into its first input mode maps Z to y[S] (+ bias).
 * CHANNELS_FIRST: the channel TT-matrix with r_0 merged into its first output mode maps x[C] at every input pixel
 * to U[(a, s)] (r_0 S values); then y[s] = sum_{p,q,a} G_0[p, q, a] U[ih, iw, a, s] (+ bias).
 *
 * Variants, simplest first:
 *  - unfused: a producer kernel (Z or the gathered x), one kernel per TT step, a sink kernel (y or U), over
 *    chunks of pixels whose two state buffers [state][chunk] live in the workspace (bounded by the plan);
 *  - fused (tt_fused_kernel): a persistent block takes tiles of P pixels and runs producer, every TT step and
 *    sink in shared memory, with the step matrices and the spatial core staged in shared memory once per block.
 *    Only x is read and only y (SF) or U (CF) is written: the r_0-times-larger Z never reaches device memory.
 *    Spatial first, first to last, may run the chain once per value of the last input mode (sliced, see
 *    conv_internal.h): the default where the whole state fits no block, and one of autotune's candidates.
 *  - CHANNELS_FIRST then runs cf_conv_kernel over U, in chunks of images / output rows so that U stays within
 *    the workspace bound.
 * Every step is out[l][o][rp] = sum_i At[i][o] in[l][i][rp] with rp = (r, pixel); a thread computes a TO x 4
 * register tile (TO consecutive o, 4 consecutive rp), reading TO/4 + 1 vectors per i. With allow_3xtf32 (sm_80
 * and later) a warp instead computes 16-row by 8-column tiles on the tensor cores in 3xTF32 (tt_step_mma,
 * mma_tf32.cuh), in both the fused and the chunked kernels; producers and sinks stay FFMA. The fused tensor-core
 * chain swizzles the states whose rows would put a fragment's lanes on the same banks (swizzle_states). Sums run
 * in a fixed order and no two threads write one element: results are bit-for-bit repeatable.
 */
#include <stdint.h>

#include "cuda/conv_tt.cuh"

namespace {

// ---------------------------------------------------------------------------------------------------------------
// kernels: the bodies of conv_tt.cuh over the grid
// ---------------------------------------------------------------------------------------------------------------

/* Registers are capped for two resident blocks per SM (128 per thread), which the planner may choose when the
 * shared memory allows it. */
template <int kVariant, bool kMma>
__global__ void __launch_bounds__(TTL_CONV_THREADS, 2)
    tt_fused_kernel(float *__restrict__ out, const float *__restrict__ x, const float *__restrict__ at_g,
                    const float *__restrict__ g0_g, const float *__restrict__ bias, const ttl_conv_tt_chain_t chain,
                    const ttl_conv_geom_t g, const ttl_conv_cf_chunk_t ch, int P, int64_t num_tiles) {
    extern __shared__ float4 smem_f4[];
    tt_fused_cta<kVariant, kMma>(out, x, at_g, g0_g, bias, chain, g, ch, P, num_tiles, blockIdx.x, gridDim.x,
                                 smem_f4);
}

// Unfused pieces over a chunk of P pixels starting at `first`, grid-stride loops.
template <int kVariant>
__global__ void __launch_bounds__(TTL_CONV_THREADS)
    tt_produce_kernel(float *__restrict__ buf, const float *__restrict__ x, const float *__restrict__ g0,
                      const ttl_conv_geom_t g, const ttl_conv_cf_chunk_t ch, int64_t first, int64_t P) {
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t nthr = (int64_t)gridDim.x * blockDim.x;
    if (kVariant == TTL_CONV_VARIANT_SF)
        produce_sf<int64_t>(buf, P, P, ttl_conv_state_layout_t{}, sf_pixels{g, first}, x, g0, g, tid, nthr);
    else
        produce_cf<int64_t>(buf, P, P, ttl_conv_state_layout_t{}, cf_pixels{ch, first}, x, g, tid, nthr);
}

template <bool kMma>
__global__ void __launch_bounds__(TTL_CONV_THREADS)
    tt_step_kernel(const float *__restrict__ at, const ttl_conv_tt_step_t st, const float *__restrict__ in,
                   float *__restrict__ out, int64_t P) {
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t nthr = (int64_t)gridDim.x * blockDim.x;
    tt_step_form<kMma, int64_t>(at, st, in, out, P, tid, nthr);
}

template <int kVariant>
__global__ void __launch_bounds__(TTL_CONV_THREADS)
    tt_sink_kernel(float *__restrict__ out, const float *__restrict__ buf, const float *__restrict__ bias,
                   const ttl_conv_geom_t g, const ttl_conv_cf_chunk_t ch, int64_t first, int64_t P,
                   int64_t out_size) {
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t nthr = (int64_t)gridDim.x * blockDim.x;
    if (kVariant == TTL_CONV_VARIANT_SF)
        sink_sf<int64_t>(buf, P, P, sf_pixels{g, first}, out, bias, g, tid, nthr);
    else
        sink_cf<int64_t>(buf, P, P, first, ch.npix, out_size, out, tid, nthr);
}

__global__ void __launch_bounds__(TTL_CONV_THREADS)
    cf_conv_kernel(float *__restrict__ y, const float *__restrict__ U, const float *__restrict__ g0,
                   const float *__restrict__ bias, const ttl_conv_geom_t g, const ttl_conv_cf_chunk_t ch) {
    cf_conv(y, U, g0, bias, g, ch, (int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x);
}

// ---------------------------------------------------------------------------------------------------------------
// launcher: the executor of conv_tt_schedule on a stream
// ---------------------------------------------------------------------------------------------------------------

int grid_for(int64_t items, int sm_count) {
    return ttl_cuda_grid_stride_blocks(items, TTL_CONV_THREADS, (int64_t)sm_count * 16);
}

struct stream_exec {
    const ttl_cuda_conv_plan_t *p;
    cudaStream_t stream;

    ttl_status_t fused(float *out, const float *x, const ttl_conv_cf_chunk_t &ch, int64_t npix) {
        const int64_t tiles = (npix + p->tile_px - 1) / p->tile_px;
        if (tiles == 0) return TTL_STATUS_SUCCESS;
        const int grid = (int)ttl_min_i64(tiles, p->max_blocks);
        if (p->variant == TTL_CONV_VARIANT_SF)
            p->mma ? launch_fused<TTL_CONV_VARIANT_SF, true>(out, x, ch, grid, tiles)
                   : launch_fused<TTL_CONV_VARIANT_SF, false>(out, x, ch, grid, tiles);
        else
            p->mma ? launch_fused<TTL_CONV_VARIANT_CF, true>(out, x, ch, grid, tiles)
                   : launch_fused<TTL_CONV_VARIANT_CF, false>(out, x, ch, grid, tiles);
        TTL_CUDA_CHECK_LAUNCH();
        return TTL_STATUS_SUCCESS;
    }
    template <int kVariant, bool kMma>
    void launch_fused(float *out, const float *x, const ttl_conv_cf_chunk_t &ch, int grid, int64_t tiles) {
        const ttl_cuda_conv_layer_t *l = p->layer;
        tt_fused_kernel<kVariant, kMma><<<grid, TTL_CONV_THREADS, p->fused_smem, stream>>>(
            out, x, p->d_at, l->d_g0, kVariant == TTL_CONV_VARIANT_SF ? l->d_bias : nullptr, p->chain, p->geom, ch,
            p->tile_px, tiles);
    }
    ttl_status_t produce(float *buf, const float *x, const ttl_conv_cf_chunk_t &ch, int64_t first, int64_t P) {
        const int grid = grid_for(p->chain.in_size * P, p->layer->handle->sm_count);
        if (p->variant == TTL_CONV_VARIANT_SF)
            tt_produce_kernel<TTL_CONV_VARIANT_SF>
                <<<grid, TTL_CONV_THREADS, 0, stream>>>(buf, x, p->layer->d_g0, p->geom, ch, first, P);
        else
            tt_produce_kernel<TTL_CONV_VARIANT_CF>
                <<<grid, TTL_CONV_THREADS, 0, stream>>>(buf, x, p->layer->d_g0, p->geom, ch, first, P);
        TTL_CUDA_CHECK_LAUNCH();
        return TTL_STATUS_SUCCESS;
    }
    ttl_status_t step(const ttl_conv_tt_step_t &st, const float *in, float *out, int64_t P) {
        const int grid = grid_for(tt_step_threads<int64_t>(st, P), p->layer->handle->sm_count);
        if (st.mma_mt > 0)
            tt_step_kernel<true><<<grid, TTL_CONV_THREADS, 0, stream>>>(p->d_at + st.at_offset, st, in, out, P);
        else
            tt_step_kernel<false><<<grid, TTL_CONV_THREADS, 0, stream>>>(p->d_at + st.at_offset, st, in, out, P);
        TTL_CUDA_CHECK_LAUNCH();
        return TTL_STATUS_SUCCESS;
    }
    ttl_status_t sink(float *out, const float *buf, const ttl_conv_cf_chunk_t &ch, int64_t first, int64_t P) {
        const int grid = grid_for(p->chain.out_size * P, p->layer->handle->sm_count);
        if (p->variant == TTL_CONV_VARIANT_SF)
            tt_sink_kernel<TTL_CONV_VARIANT_SF><<<grid, TTL_CONV_THREADS, 0, stream>>>(
                out, buf, p->layer->d_bias, p->geom, ch, first, P, p->chain.out_size);
        else
            tt_sink_kernel<TTL_CONV_VARIANT_CF><<<grid, TTL_CONV_THREADS, 0, stream>>>(
                out, buf, nullptr, p->geom, ch, first, P, p->chain.out_size);
        TTL_CUDA_CHECK_LAUNCH();
        return TTL_STATUS_SUCCESS;
    }
    ttl_status_t cf_conv(float *y, const float *U, const ttl_conv_cf_chunk_t &ch) {
        const ttl_conv_geom_t &g = p->geom;
        const int64_t items = ch.bc * ch.rb * ch.cw * g.S;
        cf_conv_kernel<<<grid_for(items, p->layer->handle->sm_count), TTL_CONV_THREADS, 0, stream>>>(
            y, U, p->layer->d_cores, p->layer->d_bias, g, ch);
        TTL_CUDA_CHECK_LAUNCH();
        return TTL_STATUS_SUCCESS;
    }
};

// ---------------------------------------------------------------------------------------------------------------
// planning helpers (host)
// ---------------------------------------------------------------------------------------------------------------

int32_t order_index(ttl_order_t order) {
    return order == TTL_ORDER_LAST_TO_FIRST ? TTL_CONV_ORDER_L2F : TTL_CONV_ORDER_F2L;
}

size_t fused_smem_bytes(const ttl_conv_tt_chain_t &chain, const ttl_conv_geom_t &g, int32_t variant, int64_t P) {
    const int64_t g0 = variant == TTL_CONV_VARIANT_SF ? (int64_t)g.kh * g.kw * g.r0pad : 0;
    const int64_t rows = 2 * (int64_t)chain.max_state + (chain.slices > 1 ? chain.out_size : 0);
    const int64_t floats = chain.at_floats + g0 + rows * fused_row_stride((int)P);
    return (size_t)floats * sizeof(float) + (size_t)P * sizeof(pixel_pos);
}

// The sliced form of a first-to-last spatial-first chain (conv_internal.h): every step but the last on R / n_d
// columns, the last on the r_{d-1} rows of one slice. False when the chain has one step or n_d is 1.
bool slice_chain(ttl_conv_tt_chain_t *chain, int64_t n_last) {
    const int32_t d = chain->num_steps;
    if (d < 2 || n_last < 2) return false;
    ttl_conv_tt_chain_t c = *chain;
    c.slices = (int32_t)n_last;
    int64_t max_state = c.in_size / n_last;
    for (int32_t k = 0; k + 1 < d; ++k) {
        ttl_conv_tt_step_t &st = c.steps[k];
        st.R = (int32_t)(st.R / n_last); /* n_d is the fastest factor of every earlier step's columns */
        max_state = ttl_max_i64(max_state, (int64_t)st.L * st.O * st.R);
    }
    ttl_conv_tt_step_t &lst = c.steps[d - 1];
    lst.I = (int32_t)(lst.I / n_last); /* i = (r_{d-1}, n_d): rows j, j + n_d, ... of At_d */
    lst.a_rows = (int32_t)n_last;
    c.max_state = (int32_t)max_state;
    *chain = c;
    return true;
}

// Register tile height of each step: fewest (rounds of the thread pool) x (tile height), ties to the taller tile
// (fewer shared-memory loads per multiply-add). With mma, the tensor-core tiles instead (choose_mma_tiles).
void choose_tiles(ttl_conv_tt_chain_t *chain, int64_t P, int64_t threads, bool mma) {
    for (int32_t k = 0; k < chain->num_steps; ++k) {
        ttl_conv_tt_step_t &st = chain->steps[k];
        if (mma) {
            choose_mma_tiles(&st, P);
            continue;
        }
        const int64_t n_items = (int64_t)st.L * (st.R * P / TTL_CONV_TN);
        int best = 8;
        int64_t best_cost = INT64_MAX;
        for (int to = 8; to >= 2; to /= 2) {
            const int64_t items = (st.O + to - 1) / to * n_items;
            const int64_t cost = (items + threads - 1) / threads * to;
            if (cost < best_cost) best_cost = cost, best = to;
        }
        st.to = best;
    }
}

// The fused tensor-core chain's state layouts for rows of ld floats per pixel (conv_tt.cuh, "swizzled states"):
// step k's input is swizzled where its rows, R_k ld floats, are a multiple of 16 floats, and its writer's rows
// split or merge into them. The producer's rows are single channels, R_0 to a row of the first step; step k - 1's
// rows (R_{k-1} ld floats) hold R_{k-1} / R_k rows of step k (first to last), or R_k / R_{k-1} of them make one
// (last to first, R_k / R_{k-1} dividing its O). Anything else stays plain.
void swizzle_states(ttl_conv_tt_chain_t *chain, int64_t ld) {
    for (int32_t k = 0; k < chain->num_steps; ++k) {
        ttl_conv_tt_step_t &st = chain->steps[k];
        ttl_conv_state_layout_t lay{};
        lay.swizzle = state_swizzle_for((int64_t)st.R * ld);
        if (k == 0) { /* split stays 0: producer_rows (conv_tt.cuh) counts on it */
            lay.div = ttl_divider_make((uint32_t)st.R);
        } else {
            const ttl_conv_tt_step_t &w = chain->steps[k - 1];
            if (w.R % st.R == 0) {
                lay.split = w.R / st.R;
                lay.l_rows = w.O * lay.split;
                lay.div = ttl_divider_make((uint32_t)(st.R * ld));
            } else if (st.R % w.R == 0 && w.O % (st.R / w.R) == 0) {
                lay.l_rows = w.O / (st.R / w.R);
                lay.div = ttl_divider_make((uint32_t)(st.R / w.R));
            } else {
                lay.swizzle = TTL_CONV_SWIZZLE_NONE;
            }
        }
        st.in_layout = lay.swizzle == TTL_CONV_SWIZZLE_NONE ? ttl_conv_state_layout_t{} : lay;
    }
}

/* One TF32 m16n8k8 product in the FFMA step's units of fused_tile_slots (a row of its TO x 4 tile: 4 FFMA). */
constexpr double kMmaSlots = TTL_COST_MMA_TF32_SLOTS / 4.0;

// Thread rounds of one fused tile of P pixels (state rows ld = fused_row_stride(P)), weighted by what an item of
// each phase does, over every slice: the producer's C P items (SF: kh kw r0pad multiply-adds each; CF: one copy),
// every step's items with the tiles choose_tiles gives this P (FFMA: TO x I multiply-adds per thread; MMA: a warp's
// ceil(I / 8) x 3 MT NT products), the sink's copies. Rounds, not items, because the CTA's 256 threads wait for
// each other at the barrier that ends every phase.
double fused_tile_slots(const ttl_conv_tt_chain_t &chain, const ttl_conv_geom_t &g, int32_t variant, int64_t P,
                        bool mma) {
    const int64_t ld = fused_row_stride((int)P), threads = TTL_CONV_THREADS;
    auto rounds = [&](int64_t items) { return (double)((items + threads - 1) / threads); };
    const double produce_item = variant == TTL_CONV_VARIANT_SF ? (double)g.kh * g.kw * g.r0pad : 1.0;
    double per_slice = rounds(g.C / chain.slices * P) * produce_item;
    ttl_conv_tt_chain_t c = chain;
    choose_tiles(&c, ld, threads, mma);
    for (int32_t k = 0; k < c.num_steps; ++k) {
        const ttl_conv_tt_step_t &st = c.steps[k];
        const double item =
            st.mma_mt > 0 ? (double)(st.I + 7) / 8 * 3 * st.mma_mt * st.mma_nt * kMmaSlots : (double)st.to * st.I;
        per_slice += rounds(tt_step_threads<int64_t>(st, ld)) * item;
    }
    return chain.slices * per_slice + rounds(chain.out_size * P);
}

/* A smaller fused tile is taken for a second resident block per multiprocessor when its work per pixel is within
 * this factor of the largest tile's: with one block per SM, every barrier drains the SM and the producer's loads
 * of x wait with nothing else to run; a second block's steps fill those gaps. */
constexpr double kTileCostSlack = 1.10;

size_t state_bytes(int64_t max_state, int64_t P) { return (size_t)max_state * (size_t)P * sizeof(float); }

size_t align_down(size_t n) { return n & ~(TTL_WS_ALIGN - 1); }

/* Largest workspace budget the planner works with (1 PiB): a caller's generous limit is cut to it. */
constexpr size_t kBudgetCap = (size_t)1 << 50;

/* Most kernel launches one forward may take (about a second of launch overhead alone): a workspace limit so tight
 * that the chunks would need more is refused at plan time, not planned as a forward of millions of launches. */
constexpr int64_t kMaxLaunches = (int64_t)1 << 18;

// Kernel launches of one forward (conv_tt_schedule): a fused run of the chain is one, a chunked one steps + 2 per
// chunk of chunk_px pixels; channels first adds its conv per chunk of U, whose cf_tt_px pixels (summed over its
// cf_chunks chunks) take at most cf_chunks + cf_tt_px / chunk_px chain chunks.
int64_t forward_launches(const ttl_cuda_conv_plan_t &p) {
    const int64_t per_chunk = p.chain.num_steps + 2;
    if (p.variant == TTL_CONV_VARIANT_SF)
        return p.fused ? 1 : per_chunk * ((p.geom.B * p.geom.OH * p.geom.OW + p.chunk_px - 1) / p.chunk_px);
    return p.cf_chunks + (p.fused ? p.cf_chunks : per_chunk * (p.cf_chunks + p.cf_tt_px / p.chunk_px));
}

// Channels first: the chunks of U within u_budget bytes: whole images if one fits, else bands of output rows,
// else (an image narrow in rows but wide in r_0 S) bands of output columns of one output row. One output pixel's
// U (kh x kw input pixels, r_0 S values each) is the least a chunk holds, even above the budget. Sets cf_bc,
// cf_rb, cf_cw, u_bytes, and the chain's pixel and chunk counts; *pix_max is the largest chunk's pixels.
ttl_status_t plan_cf_chunks(ttl_cuda_conv_plan_t *p, size_t u_budget, int64_t *pix_max) {
    const ttl_conv_geom_t &g = p->geom;
    const int64_t budget = (int64_t)align_down(u_budget);
    const int64_t span_h = (int64_t)(g.kh - 1) * g.dh + 1, span_w = (int64_t)(g.kw - 1) * g.dw + 1;
    /* U of one input pixel, of a column of a one-output-row band, of an image row, of that band, of an image */
    int64_t px_bytes, col_bytes, row_bytes, band_bytes, image_bytes;
    TTL_TRY(ttl_mul_i64(&px_bytes, (int64_t)g.r0 * g.S, (int64_t)sizeof(float)));
    const int64_t rows_image = ttl_min_i64(g.H, (g.OH - 1) * g.sh + span_h);
    const int64_t cols_image = ttl_min_i64(g.W, (g.OW - 1) * g.sw + span_w);
    const int64_t rows_band = ttl_min_i64(g.H, span_h);
    TTL_TRY(ttl_mul_i64(&row_bytes, cols_image, px_bytes));
    TTL_TRY(ttl_mul_i64(&image_bytes, rows_image, row_bytes));
    TTL_TRY(ttl_mul_i64(&col_bytes, rows_band, px_bytes));
    TTL_TRY(ttl_mul_i64(&band_bytes, rows_band, row_bytes));
    p->cf_bc = 1, p->cf_rb = g.OH, p->cf_cw = g.OW;
    int64_t rows = rows_image, cols = cols_image;
    if (image_bytes <= budget) {
        p->cf_bc = ttl_max_i64(1, ttl_min_i64(g.B, budget / ttl_max_i64(image_bytes, 1)));
    } else if (band_bytes <= budget) {
        const int64_t fit_rows = budget / row_bytes; /* >= span rows, < rows_image */
        p->cf_rb = ttl_max_i64(1, ttl_min_i64(g.OH, (fit_rows - span_h) / g.sh + 1));
        rows = ttl_min_i64(g.H, (p->cf_rb - 1) * g.sh + span_h);
    } else {
        const int64_t fit_cols = budget / col_bytes;
        p->cf_rb = 1;
        p->cf_cw = fit_cols >= span_w ? ttl_min_i64(g.OW, (fit_cols - span_w) / g.sw + 1) : 1;
        rows = rows_band;
        cols = ttl_min_i64(g.W, (p->cf_cw - 1) * g.sw + span_w);
    }
    int64_t pixels;
    TTL_TRY(ttl_mul_i64(&pixels, p->cf_bc * rows, cols));
    TTL_TRY(ttl_bytes(&p->u_bytes, pixels, (size_t)px_bytes));
    *pix_max = pixels;
    /* what the chain runs over: every chunk's input pixels (bands overlap by their halos) */
    p->cf_tt_px = 0;
    p->cf_chunks = 0;
    for (int64_t b0 = 0; b0 < g.B; b0 += p->cf_bc)
        for (int64_t oh0 = 0; oh0 < g.OH; oh0 += p->cf_rb)
            for (int64_t ow0 = 0; ow0 < g.OW; ow0 += p->cf_cw) {
                TTL_TRY(ttl_add_i64(&p->cf_tt_px, p->cf_tt_px, cf_chunk_at(*p, b0, oh0, ow0).npix));
                ++p->cf_chunks;
            }
    return TTL_STATUS_SUCCESS;
}

// Resident blocks per multiprocessor of the plan's fused kernel with `smem` bytes of dynamic shared memory (after
// opting in to the device's largest allowance).
template <int kVariant, bool kMma>
ttl_status_t fused_occupancy_of(const ttl_cuda_handle_t *h, size_t smem, int *blocks_per_sm) {
    TTL_CUDA_TRY(cudaFuncSetAttribute(tt_fused_kernel<kVariant, kMma>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      (int)h->smem_per_block_optin));
    TTL_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks_per_sm, tt_fused_kernel<kVariant, kMma>,
                                                               TTL_CONV_THREADS, smem));
    return TTL_STATUS_SUCCESS;
}

ttl_status_t device_fused_occupancy(const ttl_cuda_conv_plan_t *p, size_t smem, int *blocks_per_sm) {
    const ttl_cuda_handle_t *h = p->layer->handle;
    if (p->variant == TTL_CONV_VARIANT_SF)
        return p->mma ? fused_occupancy_of<TTL_CONV_VARIANT_SF, true>(h, smem, blocks_per_sm)
                      : fused_occupancy_of<TTL_CONV_VARIANT_SF, false>(h, smem, blocks_per_sm);
    return p->mma ? fused_occupancy_of<TTL_CONV_VARIANT_CF, true>(h, smem, blocks_per_sm)
                  : fused_occupancy_of<TTL_CONV_VARIANT_CF, false>(h, smem, blocks_per_sm);
}

} // namespace

// ---------------------------------------------------------------------------------------------------------------
// internal entry points
// ---------------------------------------------------------------------------------------------------------------

ttl_conv_tt_overrides_t ttl_conv_tt_test_overrides = {0, 0, 0};

extern "C" ttl_status_t ttl_conv_tt_plan(ttl_cuda_conv_plan_t *p, ttl_algo_t algo, ttl_order_t order,
                                         ttl_conv_fused_occupancy_fn occupancy) {
    const ttl_cuda_conv_layer_t *l = p->layer;
    const ttl_cuda_handle_t *h = l->handle;
    if (!l->tt_ok) return TTL_STATUS_UNSUPPORTED;
    const int32_t variant = algo == TTL_ALGO_SPATIAL_FIRST ? TTL_CONV_VARIANT_SF : TTL_CONV_VARIANT_CF;
    if (order == TTL_ORDER_AUTO)
        order = l->chain[variant][TTL_CONV_ORDER_F2L].macs <= l->chain[variant][TTL_CONV_ORDER_L2F].macs
                    ? TTL_ORDER_FIRST_TO_LAST
                    : TTL_ORDER_LAST_TO_FIRST;
    if (p->fused_form == TTL_CONV_FUSED_DEFAULT) p->fused_form = ttl_conv_tt_test_overrides.fused_form;
    bool sliced = p->fused_form == TTL_CONV_FUSED_SLICED;
    if (sliced && (variant != TTL_CONV_VARIANT_SF || order != TTL_ORDER_FIRST_TO_LAST))
        return TTL_STATUS_UNSUPPORTED; /* the form exists for spatial first, first to last */
    p->variant = variant;
    p->order_idx = order_index(order);
    p->chain = l->chain[variant][p->order_idx];
    p->d_at = l->d_at[variant][p->order_idx];
    const ttl_conv_geom_t &g = p->geom;
    const int64_t n_last = l->desc.in_modes[l->desc.num_cores - 1];
    if (sliced && !slice_chain(&p->chain, n_last)) return TTL_STATUS_UNSUPPORTED;

    /* Workspace bound for the non-dense algorithms: the caller's limit, or twice the larger activation. A
     * generous limit is cut to a size the chunk arithmetic (int64) handles and no chunking can use up. */
    size_t x_bytes, y_bytes;
    TTL_TRY(ttl_bytes(&x_bytes, g.B * g.C * g.H * g.W, sizeof(float)));
    TTL_TRY(ttl_bytes(&y_bytes, g.B * g.S * g.OH * g.OW, sizeof(float)));
    size_t budget = 2 * (x_bytes > y_bytes ? x_bytes : y_bytes);
    if (p->ws_limit > 0) budget = p->ws_limit < kBudgetCap ? p->ws_limit : kBudgetCap;

    /* fused is decided first since it changes the share of U; try it with the smallest tile */
    const size_t smem_min = fused_smem_bytes(p->chain, g, variant, TTL_CONV_TN);
    bool can_fuse = smem_min <= h->smem_per_block_optin && !ttl_conv_tt_test_overrides.force_unfused;
    if (sliced && !can_fuse) return TTL_STATUS_UNSUPPORTED; /* a form of the fused kernel only */
    /* A state too large for one fused block may fit when sliced, which beats the chunked kernels' round trips of
     * the whole state through device memory at every step. */
    const ttl_conv_tt_chain_t whole = p->chain;
    if (!can_fuse && p->fused_form == TTL_CONV_FUSED_DEFAULT && variant == TTL_CONV_VARIANT_SF &&
        order == TTL_ORDER_FIRST_TO_LAST && !ttl_conv_tt_test_overrides.force_unfused) {
        ttl_conv_tt_chain_t c = whole;
        if (slice_chain(&c, n_last) && fused_smem_bytes(c, g, variant, TTL_CONV_TN) <= h->smem_per_block_optin) {
            p->chain = c;
            sliced = can_fuse = true;
        }
    }
    int64_t pix_max = g.B * g.OH * g.OW; /* most pixels one run of the chain covers */
    if (variant == TTL_CONV_VARIANT_CF) TTL_TRY(plan_cf_chunks(p, can_fuse ? budget : budget / 2, &pix_max));
    if (pix_max < 1) pix_max = 1;

    size_t ws = 0;
    p->fused = 0;
    if (can_fuse) {
        /* Largest tile that fits, but no larger than spreads the pixels over every multiprocessor; then a smaller
         * one where that makes room for a second block per multiprocessor at the same work per pixel. */
        int64_t P = TTL_CONV_TN;
        const int64_t spread = (pix_max + h->sm_count - 1) / h->sm_count;
        while (P + TTL_CONV_TN <= TTL_CONV_MAX_TILE_PX && P < spread &&
               fused_smem_bytes(p->chain, g, variant, P + TTL_CONV_TN) <= h->smem_per_block_optin)
            P += TTL_CONV_TN;
        int blocks_per_sm = 0;
        TTL_TRY(occupancy(p, fused_smem_bytes(p->chain, g, variant, P), &blocks_per_sm));
        /* a smaller tile that lets two blocks share an SM, at no more work per pixel (kTileCostSlack) */
        if (blocks_per_sm == 1 && p->fused_form != TTL_CONV_FUSED_LARGEST_TILE) {
            const double per_px = fused_tile_slots(p->chain, g, variant, P, p->mma) / (double)P;
            for (int64_t t = P - TTL_CONV_TN; t >= TTL_CONV_TN; t -= TTL_CONV_TN) {
                int blocks = 0;
                TTL_TRY(occupancy(p, fused_smem_bytes(p->chain, g, variant, t), &blocks));
                if (blocks >= 2 &&
                    fused_tile_slots(p->chain, g, variant, t, p->mma) / (double)t <= kTileCostSlack * per_px) {
                    P = t, blocks_per_sm = blocks;
                    break;
                }
            }
        }
        const int64_t forced = ttl_conv_tt_test_overrides.tile_px;
        if (forced > 0 && forced % TTL_CONV_TN == 0 && forced <= TTL_CONV_MAX_TILE_PX &&
            fused_smem_bytes(p->chain, g, variant, forced) <= h->smem_per_block_optin) {
            P = forced;
            TTL_TRY(occupancy(p, fused_smem_bytes(p->chain, g, variant, P), &blocks_per_sm));
        }
        const size_t smem = fused_smem_bytes(p->chain, g, variant, P);
        if (blocks_per_sm > 0) {
            p->fused = 1;
            p->tile_px = (int32_t)P;
            p->fused_smem = smem;
            p->max_blocks = blocks_per_sm * h->sm_count;
            choose_tiles(&p->chain, fused_row_stride((int)P), TTL_CONV_THREADS,
                         p->mma); /* steps run over the padded rows */
            if (p->mma) swizzle_states(&p->chain, fused_row_stride((int)P));
        } else if (variant == TTL_CONV_VARIANT_CF) {
            TTL_TRY(plan_cf_chunks(p, budget / 2, &pix_max)); /* the state buffers take the other half */
        }
    }
    if (sliced && !p->fused) {
        if (p->fused_form == TTL_CONV_FUSED_SLICED) return TTL_STATUS_UNSUPPORTED;
        p->chain = whole; /* sliced by default, but the device cannot run the fused kernel: chunked, whole */
    }
    if (!p->fused) {
        /* Two state buffers of chunk_px pixels within the (remaining) budget; at least one float4 group. Sizes
         * are aligned down first so that aligning the slices up cannot cross the budget. */
        const size_t buf_budget = align_down(variant == TTL_CONV_VARIANT_CF ? budget / 4 : budget / 2);
        int64_t P = (int64_t)(buf_budget / state_bytes(p->chain.max_state, 1));
        P = P / TTL_CONV_TN * TTL_CONV_TN;
        const int64_t all = (pix_max + TTL_CONV_TN - 1) / TTL_CONV_TN * TTL_CONV_TN;
        P = ttl_max_i64(TTL_CONV_TN, ttl_min_i64(P, all));
        p->chunk_px = P;
        p->buf_bytes = state_bytes(p->chain.max_state, P);
        ws += 2 * ttl_align_up(p->buf_bytes);
        choose_tiles(&p->chain, P, (int64_t)h->sm_count * 16 * TTL_CONV_THREADS, p->mma);
    }
    if (variant == TTL_CONV_VARIANT_CF) ws += ttl_align_up(p->u_bytes);
    if (forward_launches(*p) > kMaxLaunches) return TTL_STATUS_INSUFFICIENT_WORKSPACE;
    p->info.workspace_bytes = ws;
    p->info.persistent_bytes = 0;
    p->info.algo = algo;
    p->info.order = order;

    /* Multiply-adds as run: SF B OH OW (kh kw r_0 C + chain); CF (input pixels of every chunk, halos counted
     * again) chain + B OH OW kh kw r_0 S. */
    const int64_t out_px = g.B * g.OH * g.OW, khkw = (int64_t)g.kh * g.kw;
    int64_t macs, t;
    if (variant == TTL_CONV_VARIANT_SF) {
        TTL_TRY(ttl_mul_i64(&t, khkw * g.r0, g.C));
        TTL_TRY(ttl_add_i64(&t, t, p->chain.macs));
        TTL_TRY(ttl_mul_i64(&macs, t, out_px));
    } else {
        int64_t a;
        TTL_TRY(ttl_mul_i64(&a, p->chain.macs, p->cf_tt_px));
        TTL_TRY(ttl_mul_i64(&t, khkw * g.r0, g.S));
        TTL_TRY(ttl_mul_i64(&t, t, out_px));
        TTL_TRY(ttl_add_i64(&macs, a, t));
    }
    p->info.macs = macs;
    return TTL_STATUS_SUCCESS;
}

extern "C" ttl_status_t ttl_conv_tt_setup(ttl_cuda_conv_plan_t *p, ttl_algo_t algo, ttl_order_t order) {
    if (p->mma) TTL_TRY(ttl_cuda_tf32_mma_usable(p->layer->handle, (const void *)tt_step_kernel<true>, &p->mma));
    return ttl_conv_tt_plan(p, algo, order, device_fused_occupancy);
}

extern "C" ttl_status_t ttl_conv_tt_forward(const ttl_cuda_conv_plan_t *p, cudaStream_t stream, float *y,
                                            const float *x, void *ws) {
    stream_exec exec{p, stream};
    return conv_tt_schedule(p, exec, y, x, ws);
}
