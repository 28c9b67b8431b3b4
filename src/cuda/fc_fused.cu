/*
 * FUSED TT-FC: y = W x + b with all d core contractions in one launch, intermediates in shared memory.
 *
 * Why it can be split over CTAs. In the first-to-last order, once cores 0..p-1 are contracted their out indices
 * i_0..i_{p-1} are never contracted again: they act as batch indices. So a CTA can fix them (one "split" value of
 * M_<p = m_0..m_{p-1}) and compute only its slice y[b, (i_0..i_{p-1}), :]. For that slice the first p cores
 * collapse into one small merged core
 *     H[(j_0..j_{p-1}), a_p] = G_0[0, i_0, j_0, :] G_1[:, i_1, j_1, :] ... G_{p-1}[:, i_{p-1}, j_{p-1}, a_p]
 * (N_<p x r_p values, built per CTA in shared memory), and the CTA runs
 *     step "merged":  T_p[b, a_p, J_>=p] = sum_{J<p} H[J<p, a_p] x[b, J<p, J>=p]       (reads x from memory)
 *     steps k = p..d-1 exactly as the sequential first-to-last steps, restricted to the slice   (shared memory)
 * and the last step writes its contiguous run of M_>=p outputs per sample. Symmetrically, in the last-to-first
 * order the CTA fixes the trailing out indices i_s..i_{d-1} (q = d - s merged cores), merges G_s..G_{d-1} into
 * H[a_s, J_>=s], contracts x over J_>=s, runs steps s-1..0, and writes y[b, i, split] with stride M_>=s.
 * Merging trades recomputation (x is read by every split CTA; the merged step costs r N per sample and CTA) for
 * intermediates small enough for shared memory and for more CTAs at small batches; p = 0 / q = 0 is the plain
 * sequential chain in one CTA. The planner (fc_fused_configure) tries both orders and every p (q), and the
 * samples per CTA, and keeps the cheapest by the cost model.
 *
 * Rule for "fits": per CTA, shared memory = merged core (N_<p x r_p padded) + two ping-pong buffers (each the
 * larger of bt times the per-sample intermediate it holds, rows padded, and the merged-core build scratch) + one
 * tile stage (FC_TILE_SMEM_MAX; the first step's may then grow into the room left, fused_long_chunks) must be at
 * most the device's per-block opt-in limit, with bt >= 1 samples; every per-CTA size must fit int32. When no order
 * and split qualify, FUSED is UNSUPPORTED.
 *
 * Shapes per CTA (bt samples, split index s): step i has L = bt * lps_i, and In [L, Q, R], Out [L, P, R] as in
 * fc_internal.h. Each step is a loop over the tiles of its output with the shared routine of fc_tile.cuh, which
 * also stages the cores (A) chunk by chunk in shared memory. The first step stages x chunk by chunk; every later
 * step reads its input straight from the ping-pong buffer (direct tiles), whose rows of Q R floats are padded by
 * up to 31 (fc_direct_pad) so that those reads are free of bank conflicts. A first step over whole rows of x with a
 * short reduction (last to first: R = 1, Q <= 8) may instead stream x (fc_stream_step), where the estimate says so
 * and the chain has a step after it (the stream step writes only the intermediate in shared memory).
 * Variants: first-to-last or last-to-first; merged count 0..d; the per-step register tile or streaming. With
 * allow_3xtf32, a step may take a tensor-core tile (fc_tile_mma) where the cost model prefers it; its input in
 * shared memory is then laid out for that tile's fragment reads (fc_mma_layout_choose: every run of R or every row
 * padded), which the step before writes through its output map.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include <algorithm>

#include "cuda/fc_fused.cuh"
#include "cuda/plan_common.h"

/* Column groups fc_mma_read_ways looks at, at most. */
#define FC_MMA_SCAN_GROUPS 256
/* Most samples one CTA takes; also bounds the planner's search over samples per CTA. */
#define FC_FUSED_MAX_BT 256

static_assert(sizeof(fc_fused_params_t) <= 4000, "fused kernel parameters must fit the 4 KB parameter space");

// ---------------------------------------------------------------------------------------------------------------
// kernel
// ---------------------------------------------------------------------------------------------------------------

/* One CTA per (sample tile, split); all the work is in fc_fused_cta (fc_fused.cuh). The planner counts on two
 * CTAs per multiprocessor (half the shared memory each), so registers are capped for that: 128 per thread. */
static __global__ void __launch_bounds__(FC_THREADS, 2)
    fc_fused_kernel(const __grid_constant__ fc_fused_params_t prm) {
    extern __shared__ __align__(16) unsigned char fc_fused_smem[];
    fc_fused_cta(prm, (int64_t)blockIdx.x, fc_fused_smem);
}

// ---------------------------------------------------------------------------------------------------------------
// planner (host)
// ---------------------------------------------------------------------------------------------------------------

/* Per-sample description of one (order, merged) choice before the samples per CTA are known. */
struct fused_shape {
    int32_t num_steps;
    fc_fused_step_t steps[TTL_MAX_CORES + 1];
    int64_t out_size[TTL_MAX_CORES + 1]; /* per-sample floats of each step's output */
    int64_t out_row[TTL_MAX_CORES + 1];  /* values of each step's output between two paddings (all but the last) */
    int64_t nsplit, split_mul, out_es;
    int64_t split_div[TTL_MAX_CORES];
    int64_t h_floats; /* merged core, padded */
    int32_t h_lda;
    int64_t build_floats; /* largest build scratch (0 without a merge) */
    int64_t build_macs;
    int32_t mma;                         /* FC_MMA_* */
    int32_t mma_ways[TTL_MAX_CORES + 1]; /* steps 1..: 0 for an FFMA layout, else its fc_mma_layout_t.ways */
};

/* A step of the chain (tile and dividers are chosen later, in fused_finish). */
static fc_fused_step_t fused_step(int64_t lps, int64_t P, int64_t Q, int64_t R, int64_t lda, int32_t a_is_merged,
                                  const float *at) {
    fc_fused_step_t st;
    memset(&st, 0, sizeof(st));
    st.lps = (int32_t)lps, st.P = (int32_t)P, st.Q = (int32_t)Q, st.R = (int32_t)R, st.lda = (int32_t)lda;
    st.a_is_merged = a_is_merged;
    st.at = at;
    st.tile = fc_tile_cfg_t{1, 1, 1, 0, 0, 0};
    st.in_ls = Q * R; /* padded by fused_pad_rows */
    st.in_qs = R;
    st.div_out_row = ttl_divider_make(1u);
    return st;
}

/* Appends the step that contracts core k of `order` (its re-laid At matrix from the layer) as
 * Out[lps, P, R] = At[P, Q] . In[lps, Q, R]; false when a size does not fit int32. */
static bool add_core_step(fused_shape *sh, int32_t *ns, int64_t lps, int64_t P, int64_t Q, int64_t R,
                          const ttl_cuda_fc_layer_t *layer, int order, int32_t k) {
    const int64_t lda = layer->at_lda[order][k];
    if (!ttl_fits_i32(lps) || !ttl_fits_i32(P) || !ttl_fits_i32(Q) || !ttl_fits_i32(R) || !ttl_fits_i32(lda))
        return false;
    sh->steps[*ns] = fused_step(lps, P, Q, R, lda, 0, layer->at[order] + layer->at_offset[order][k]);
    sh->out_size[(*ns)++] = lps * P * R;
    return true;
}

int32_t fc_direct_pad(int64_t Q, int64_t R) {
    const int64_t row = Q * R;
    /* the pad that makes in_ls = R (mod 32): then column c's bank is (c + q R) mod 32, distinct across a warp */
    const int32_t congruent = (int32_t)(((R - row) % 32 + 32) % 32);
    if (R % 32 == 0) return 0; /* a warp's 32 columns are one contiguous run of r */
    if (R > 64) return congruent;
    for (int32_t pad = 0; pad < congruent; ++pad) {
        bool distinct = true;
        for (int64_t w = 0; distinct && w < R; ++w) { /* the banks repeat after R warps of columns (l + 32) */
            uint32_t banks = 0;
            for (int64_t lane = 0; distinct && lane < 32; ++lane) {
                const int64_t c = 32 * w + lane, l = c / R, r = c - l * R;
                const uint32_t bit = 1u << ((l * (row + pad) + r) % 32);
                distinct = (banks & bit) == 0;
                banks |= bit;
            }
        }
        if (distinct) return pad;
    }
    return congruent;
}

/* fc_mma_read_ways, stopping once a group exceeds `give_up` ways (the result is then some value above it). */
static int32_t mma_read_ways_upto(int64_t R, int64_t qs, int64_t ls, int32_t give_up) {
    /* Column groups from c0 = 0 in steps of 8. With R a multiple of 8 each group is a run of r inside one row l,
     * and every group's banks are the first's shifted; otherwise the pattern repeats after 32 R columns (l + 32
     * moves every address by a multiple of 32). Beyond FC_MMA_SCAN_GROUPS groups the scan is cut (an estimate
     * then; it only prices bank conflicts). */
    const int64_t groups = R % 8 == 0 ? 1 : ttl_min_i64(4 * R, FC_MMA_SCAN_GROUPS);
    int32_t worst = 1;
    for (int64_t grp = 0; grp < groups && worst <= give_up; ++grp) {
        int64_t addr[32];
        for (int lane = 0; lane < 32; ++lane) {
            const int64_t c = 8 * grp + (lane >> 2), q = lane & 3, l = c / R;
            addr[lane] = l * ls + q * qs + (c - l * R);
        }
        std::sort(addr, addr + 32);
        int32_t per_bank[32] = {0};
        for (int lane = 0; lane < 32; ++lane)
            if (lane == 0 || addr[lane] != addr[lane - 1]) { /* each address once */
                const int32_t ways = ++per_bank[addr[lane] % 32];
                worst = ways > worst ? ways : worst;
            }
    }
    return worst;
}

int32_t fc_mma_read_ways(int64_t R, int64_t qs, int64_t ls) { return mma_read_ways_upto(R, qs, ls, 32); }

fc_mma_layout_t fc_mma_layout_choose(int64_t Q, int64_t R) {
    fc_mma_layout_t best = {Q * R, 0, R, Q * R, fc_mma_read_ways(R, R, Q * R)};
    int64_t best_extra = 0; /* floats of padding per row l */
    for (int64_t pad = 1; pad < 32 && best.ways > 1; ++pad) {
        const fc_mma_layout_t cand[2] = {{R, pad, R + pad, Q * (R + pad), 0}, {Q * R, pad, R, Q * R + pad, 0}};
        for (fc_mma_layout_t c : cand) {
            c.ways = mma_read_ways_upto(R, c.qs, c.ls, best.ways);
            const int64_t extra = c.ls - Q * R;
            if (c.ways < best.ways || (c.ways == best.ways && extra < best_extra)) best = c, best_extra = extra;
        }
    }
    return best;
}

/* Most samples per CTA the planner tries for `nsplit` CTAs per sample tile: as many as fit (up to FC_FUSED_MAX_BT),
 * but leave at least two CTAs per SM when the batch allows. */
static int64_t fused_bt_cap(int64_t batch, int64_t nsplit, int sm_count) {
    const int64_t b = ttl_max_i64(batch, 1);
    if (nsplit > INT32_MAX) return 1; /* unusable anyway (fc_fused_plan) */
    const int64_t fill = ttl_max_i64(1, b * nsplit / (2 * ttl_max_i64(sm_count, 1)));
    return ttl_min_i64(ttl_min_i64(b, FC_FUSED_MAX_BT), fill);
}

/* Cost of one step's best direct tile of `forms` over `bt` samples, for choosing its input's layout. */
static double fused_step_cost(const fc_fused_step_t *st, int64_t bt, unsigned forms, int ways) {
    const int64_t L = bt * st->lps;
    const fc_tile_cfg_t t = fc_tile_choose(L, st->P, st->Q, st->R, 1, 1, forms, ways);
    return (double)fc_tile_count(L, st->P, st->R, t) * fc_tile_us(st->Q, st->R, t, ways);
}

/* Pads every input in shared memory (steps 1..) for direct tiles: the step's in_ls and in_qs, the step before's
 * output map and per-sample output size. With tensor cores allowed, a step whose best tensor-core tile (on the
 * layout fc_mma_layout_choose gives) is estimated cheaper than its best FFMA tile, over `bt` samples (the most a
 * CTA may take; its layout's extra shared memory is priced by fc_fused_plan, which also tries the shape without
 * tensor cores), takes that layout and only tensor-core tiles (sh->mma_ways); with FC_MMA_FORCED every step does.
 * False when a padded size does not fit int32. */
static bool fused_pad_rows(fused_shape *sh, int64_t bt) {
    for (int32_t i = 1; i < sh->num_steps; ++i) {
        fc_fused_step_t *st = &sh->steps[i], *prev = &sh->steps[i - 1];
        const int64_t row = (int64_t)st->Q * st->R;
        int64_t out_row = row, pad = fc_direct_pad(st->Q, st->R), ls = row + pad, qs = st->R;
        sh->mma_ways[i] = 0;
        if (sh->mma) {
            const fc_mma_layout_t m = fc_mma_layout_choose(st->Q, st->R);
            const bool cheaper = sh->mma == FC_MMA_FORCED || fused_step_cost(st, bt, FC_FORM_MMA, m.ways) <
                                                                 fused_step_cost(st, bt, FC_FORM_FFMA, 1);
            if (ttl_fits_i32(m.ls) && cheaper)
                out_row = m.row, pad = m.pad, ls = m.ls, qs = m.qs, sh->mma_ways[i] = m.ways;
        }
        if (!ttl_fits_i32(ls)) return false;
        st->in_ls = ls;
        st->in_qs = qs;
        prev->out_pad = (int32_t)pad;
        prev->div_out_row = ttl_divider_make((uint32_t)out_row);
        sh->out_row[i - 1] = out_row;
        sh->out_size[i - 1] = (int64_t)st->lps * st->in_ls; /* both int32: no overflow */
    }
    return true;
}

/* Fills `sh` for `order` with `merged` cores merged and tiles as `mma` (FC_MMA_*) says, for a batch of `batch`;
 * false when a size does not fit int32 (then unusable). */
static bool fused_shape_make(fused_shape *sh, const ttl_cuda_fc_layer_t *layer, int order, int32_t merged,
                             int32_t mma, int64_t batch) {
    const ttl_fc_desc_t *d = &layer->desc;
    const int32_t nc = d->num_cores;
    const int64_t *m = d->out_modes, *n = d->in_modes, *r = d->ranks;
    memset(sh, 0, sizeof(*sh));
    sh->mma = mma;
    /* products over index ranges, all bounded by M or N (checked at layer creation) */
    auto prod = [](const int64_t *v, int32_t lo, int32_t hi) {
        int64_t p = 1;
        for (int32_t i = lo; i < hi; ++i) p *= v[i];
        return p;
    };
    int32_t ns = 0;
    if (order == FC_FTL) {
        const int32_t p = merged;
        sh->nsplit = prod(m, 0, p);
        sh->split_mul = prod(m, p, nc);
        sh->out_es = 1;
        for (int32_t k = 0; k < p; ++k) sh->split_div[k] = prod(m, k + 1, p);
        if (p > 0) {
            const int64_t Q = prod(n, 0, p), R = prod(n, p, nc), lda = ttl_round_up_i64(r[p], FC_AT_ALIGN);
            if (!ttl_fits_i32(Q) || !ttl_fits_i32(R) || !ttl_fits_i32(lda)) return false;
            sh->steps[ns] = fused_step(1, r[p], Q, R, lda, 1, NULL);
            sh->out_size[ns++] = r[p] * R;
            sh->h_floats = Q * lda;
            sh->h_lda = (int32_t)lda;
            for (int32_t k = 0; k < p; ++k) {
                const int64_t size = prod(n, 0, k + 1) * r[k + 1];
                sh->build_floats = ttl_max_i64(sh->build_floats, size);
                sh->build_macs += size * r[k];
            }
        }
        for (int32_t k = p; k < nc; ++k) {
            const int64_t lps = prod(m, p, k), P = m[k] * r[k + 1], Q = r[k] * n[k], R = prod(n, k + 1, nc);
            if (!add_core_step(sh, &ns, lps, P, Q, R, layer, FC_FTL, k)) return false;
        }
    } else {
        const int32_t s = nc - merged;
        sh->nsplit = prod(m, s, nc);
        sh->split_mul = 1;
        sh->out_es = prod(m, s, nc);
        for (int32_t k = s; k < nc; ++k) sh->split_div[k] = prod(m, k + 1, nc);
        if (merged > 0) {
            const int64_t lps = prod(n, 0, s), Q = prod(n, s, nc), lda = ttl_round_up_i64(r[s], FC_AT_ALIGN);
            if (!ttl_fits_i32(lps) || !ttl_fits_i32(Q) || !ttl_fits_i32(lda)) return false;
            sh->steps[ns] = fused_step(lps, r[s], Q, 1, lda, 1, NULL);
            sh->out_size[ns++] = lps * r[s];
            sh->h_floats = Q * lda;
            sh->h_lda = (int32_t)lda;
            for (int32_t k = nc - 1; k >= s; --k) {
                const int64_t size = r[k] * prod(n, k, nc);
                sh->build_floats = ttl_max_i64(sh->build_floats, size);
                sh->build_macs += size * r[k + 1];
            }
        }
        for (int32_t k = s - 1; k >= 0; --k) {
            const int64_t lps = prod(n, 0, k), P = r[k] * m[k], Q = n[k] * r[k + 1], R = prod(m, k + 1, s);
            if (!add_core_step(sh, &ns, lps, P, Q, R, layer, FC_LTF, k)) return false;
        }
    }
    sh->num_steps = ns;
    if (!fused_pad_rows(sh, fused_bt_cap(batch, sh->nsplit, layer->handle->sm_count))) return false;
    /* every output but the last lives in shared memory; the last one's per-sample size must index in int32 */
    for (int32_t i = 0; i < ns; ++i)
        if (!ttl_fits_i32(sh->out_size[i])) return false;
    return true;
}

/* Shared-memory layout (floats) for bt samples per CTA; returns the bytes. */
static size_t fused_layout(const fused_shape *sh, int64_t bt, int64_t *h_off, int64_t x_off[2],
                           int64_t *stage_off) {
    int64_t need[2] = {1, 1}; /* the build starts from one float in buffer 0 */
    for (int32_t i = 0; i + 1 < sh->num_steps; ++i) need[i & 1] = ttl_max_i64(need[i & 1], bt * sh->out_size[i]);
    need[0] = ttl_max_i64(need[0], sh->build_floats);
    need[1] = ttl_max_i64(need[1], sh->build_floats);
    *h_off = 0;
    x_off[0] = ttl_round_up_i64(sh->h_floats, FC_AT_ALIGN);
    x_off[1] = x_off[0] + ttl_round_up_i64(need[0], FC_AT_ALIGN);
    *stage_off = x_off[1] + ttl_round_up_i64(need[1], FC_AT_ALIGN);
    return (size_t)*stage_off * sizeof(float) + FC_TILE_SMEM_MAX;
}

/* Whether fc_stream_step can run a step (never a chain's last: it writes fused intermediates only), and its
 * estimated time on one SM in the instruction count of fc_tile_us, from its sm_90 code: per pass over the rows a
 * thread holds, the loads of x (a row of Q = 2, 4 or 8 in vector loads, fc_stream_load_row: an address and one
 * slot per vector, x taken as aligned as cudaMalloc gives it; else two slots per value), then for every 4 values
 * of p one broadcast load of A and 4 multiply-adds per row and q, and the row's 4 outputs (fc_stream_out): 22
 * slots with the row's bound test and the alignment's two predicated forms (one 16-byte store or four), 34 with
 * padding to find; where padding falls among them (about 3 groups in out_row unless groups and rows line up) 12
 * and 8 per value; a group of fewer than 4 values 8 and a store each (4, 8 where padded). The passes as the kernel
 * runs them (full ones, then fc_stream_rest's smaller ones); staging A once (10 per value over the CTA) and two
 * barriers. `out_row`: the values between two paddings of the output (fused_shape.out_row). */
static bool stream_fits(const fc_fused_step_t *s, bool last) {
    return !last && s->R == 1 && s->Q <= FC_STREAM_MAX_Q &&
           (size_t)s->Q * s->lda * sizeof(float) <= FC_TILE_SMEM_MAX;
}

static double stream_us(int64_t L, const fc_fused_step_t *s, int64_t out_row) {
    const int qmax = fc_stream_qmax(s->Q);
    const int64_t rows = fc_stream_rows(qmax);
    const double row_loads = s->Q == qmax ? 2.0 + (qmax + 3) / 4 : 2.0 * s->Q;
    const double pgroups = (double)((s->P + 3) / 4);
    const bool padded = s->out_pad > 0;
    /* groups with padding among their 4 values: none where groups and rows line up, else about 3 in out_row */
    const double straddling =
        !padded || (s->P % 4 == 0 && out_row % 4 == 0) ? 0.0 : fmin(1.0, 3.0 / (double)ttl_max_i64(out_row, 1));
    const double group = !padded ? 22.0 : 34.0 + straddling * (12.0 + 4.0 * 8.0 - 34.0);
    const double stores =
        (double)(s->P / 4) * group + (s->P % 4 != 0 ? 8.0 + (padded ? 8.0 : 4.0) * (s->P % 4) : 0.0);
    auto pass = [&](int64_t r) { return r * row_loads + pgroups * s->Q * (1.0 + 4.0 * r) + r * stores; };
    double slots = (double)(L / (FC_THREADS * rows)) * pass(rows) + 10.0 * s->Q * s->lda / FC_THREADS + 100.0;
    int64_t rest = L % (FC_THREADS * rows);
    for (int64_t r = rows / 2; r >= 1 && rest > 0; r /= 2) {
        if (rest >= FC_THREADS * r) slots += pass(r), rest -= FC_THREADS * r;
    }
    if (rest > 0) slots += pass(1);
    return slots * FC_THREADS / TTL_COST_SM_ISSUE_PER_US;
}

/* Shared memory one CTA may take: the opt-in limit, or half of it (less 1 KB reserved) where the plan counts on two
 * CTAs sharing an SM (two per SM, and more CTAs than SMs). */
static size_t fused_cta_budget(const ttl_cuda_handle_t *h, bool two_per_sm, int64_t grid) {
    const size_t optin = h->smem_per_block_optin;
    const bool shared = two_per_sm && grid > (int64_t)(h->sm_count > 0 ? h->sm_count : 1);
    return !shared ? optin : optin / 2 > 1024 ? optin / 2 - 1024 : 0;
}

/* The first step stages x chunk by chunk, a round trip to memory each, behind barriers: where the CTA's shared
 * memory has room to spare (its budget less what the layout with the standard FC_TILE_SMEM_MAX stage takes), its
 * chunks grow to the longest power of two of q that fits, up to the whole reduction (VGG FC6 at batch 1: one
 * chunk of 112 values of q instead of four of 32). Returns the CTA's shared memory with that stage. */
static size_t fused_long_chunks(fc_tile_cfg_t *t, int64_t Q, size_t smem, size_t budget) {
    if (t->direct) return smem;
    const int standard = fc_tile_kc(*t);
    const size_t rest = smem - FC_TILE_SMEM_MAX; /* fused_layout: everything but the stage */
    int best = 0;
    for (int kc = 2 * standard; kc <= FC_KC_MAX && kc / 2 < Q; kc *= 2) {
        fc_tile_cfg_t longer = *t;
        longer.kc = kc;
        if (rest + fc_tile_smem_bytes(longer) > budget) break;
        best = kc;
    }
    if (best == 0) return smem;
    t->kc = best;
    const size_t stage = fc_tile_smem_bytes(*t);
    return rest + (stage > FC_TILE_SMEM_MAX ? stage : FC_TILE_SMEM_MAX);
}

/* Completes a configuration for bt samples per CTA and estimates its time. */
static void fused_finish(fc_fused_config_t *cfg, const fused_shape *sh, const ttl_cuda_fc_layer_t *layer,
                         int64_t batch, int order, int32_t merged, int64_t bt, size_t smem, bool two_per_sm) {
    const ttl_fc_desc_t *d = &layer->desc;
    const ttl_cuda_handle_t *h = layer->handle;
    const int64_t grid = (ttl_max_i64(batch, 1) + bt - 1) / bt * sh->nsplit;
    fc_fused_params_t *p = &cfg->params;
    memset(p, 0, sizeof(*p));
    p->cores = layer->cores;
    p->bias = layer->bias;
    p->batch = batch;
    p->M = d->out_features;
    p->N = d->in_features;
    p->order = order;
    p->merged = merged;
    p->nsplit = (int32_t)sh->nsplit;
    p->bt = (int32_t)bt;
    p->num_steps = sh->num_steps;
    p->num_cores = d->num_cores;
    for (int32_t k = 0; k < d->num_cores; ++k) {
        p->m[k] = (int32_t)d->out_modes[k];
        p->n[k] = (int32_t)d->in_modes[k];
        p->core_off[k] = layer->core_offset[k];
        p->split_div[k] = sh->split_div[k] > 0 ? sh->split_div[k] : 1;
    }
    for (int32_t k = 0; k <= d->num_cores; ++k) p->r[k] = (int32_t)d->ranks[k];
    p->split_mul = sh->split_mul;
    p->out_es = sh->out_es;
    int64_t h_off, x_off[2], stage_off;
    (void)fused_layout(sh, bt, &h_off, x_off, &stage_off);
    p->h_off = (int32_t)h_off;
    p->h_lda = sh->h_lda;
    p->x_off[0] = (int32_t)x_off[0];
    p->x_off[1] = (int32_t)x_off[1];
    p->stage_off = (int32_t)stage_off;
    int64_t macs_cta = sh->build_macs;
    double steps_us = 0.0; /* the chain's tiles, one after the other */
    for (int32_t i = 0; i < sh->num_steps; ++i) {
        p->steps[i] = sh->steps[i];
        const fc_fused_step_t *s = &sh->steps[i];
        const int64_t L = bt * s->lps;
        /* direct from shared memory after the first step, in the form its input's layout was made for */
        const unsigned forms = i == 0 ? fc_mma_forms(sh->mma) : (sh->mma_ways[i] > 0 ? FC_FORM_MMA : FC_FORM_FFMA);
        const int ways = i == 0 ? 1 : sh->mma_ways[i];
        p->steps[i].tile = fc_tile_choose(L, s->P, s->Q, s->R, 1, i > 0, forms, ways);
        if (i == 0) smem = fused_long_chunks(&p->steps[0].tile, s->Q, smem, fused_cta_budget(h, two_per_sm, grid));
        p->steps[i].div_r = ttl_divider_make((uint32_t)s->R);
        p->steps[i].div_lps = ttl_divider_make((uint32_t)(i == sh->num_steps - 1 ? s->lps : L));
        macs_cta += L * s->P * s->Q * s->R;
        const double tiles_us =
            (double)fc_tile_count(L, s->P, s->R, p->steps[i].tile) * fc_tile_us(s->Q, s->R, p->steps[i].tile, ways);
        const double streamed_us = i == 0 && stream_fits(s, i == sh->num_steps - 1)
                                       ? stream_us(L, s, sh->out_row[i])
                                       : -1.0; /* x from device memory */
        p->steps[i].stream = streamed_us >= 0.0 && streamed_us < tiles_us;
        steps_us += p->steps[i].stream ? streamed_us : tiles_us;
    }
    cfg->grid = grid;
    cfg->smem_bytes = smem;
    cfg->macs = cfg->grid * macs_cta;
    /* Time: CTAs run in waves of (SMs x CTAs per SM); a CTA's time is its steps' tiles (fc_tile_us) and the
     * merged-core build plus streaming its x tile and writing its y slice at one SM's share of bandwidth; the whole
     * is at least the DRAM time of x and y. */
    const double sms = h->sm_count > 0 ? h->sm_count : 1;
    const double per_sm = two_per_sm ? 2.0 : 1.0;
    const double waves = ceil((double)cfg->grid / (sms * per_sm));
    const double sharing = fmin(per_sm, ceil((double)cfg->grid / sms));
    const double bytes_cta = 4.0 * (double)bt * ((double)d->in_features + (double)d->out_features / sh->nsplit);
    const double cta_us =
        steps_us + (double)sh->build_macs / TTL_COST_SM_MACS_PER_US + bytes_cta / TTL_COST_SM_L2_BYTES_PER_US;
    const double dram_us =
        4.0 * (double)batch * (double)(d->in_features + d->out_features) / TTL_COST_DRAM_BYTES_PER_US;
    cfg->est_us = TTL_COST_LAUNCH_US + fmax(waves * sharing * cta_us, dram_us);
}

// ---------------------------------------------------------------------------------------------------------------
// internal entry points
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t fc_fused_plan(fc_fused_config_t *cfg, const ttl_cuda_fc_layer_t *layer, int64_t batch,
                           ttl_order_t order, int32_t merged_only, int32_t mma) {
    const ttl_cuda_handle_t *h = layer->handle;
    const size_t budget = h->smem_per_block_optin;
    const size_t half = budget / 2 > 1024 ? budget / 2 - 1024 : 0; /* two CTAs per SM, 1 KB reserved each */
    const int64_t b = ttl_max_i64(batch, 1);
    bool found = false;
    fc_fused_config_t best, cand;
    memset(&best, 0, sizeof(best));
    /* with tensor cores allowed, each shape also without them: their layouts may cost samples per CTA */
    const int32_t forms[2] = {mma, FC_MMA_OFF};
    const int num_forms = mma == FC_MMA_ALLOWED ? 2 : 1;
    for (int o = 0; o < 2; ++o) {
        if ((o == FC_FTL && order == TTL_ORDER_LAST_TO_FIRST) || (o == FC_LTF && order == TTL_ORDER_FIRST_TO_LAST))
            continue;
        for (int32_t shape = 0; shape < (layer->desc.num_cores + 1) * num_forms; ++shape) {
            const int32_t merged = shape / num_forms;
            if (merged_only >= 0 && merged != merged_only) continue;
            fused_shape sh;
            if (!fused_shape_make(&sh, layer, o, merged, forms[shape % num_forms], batch)) continue;
            if (sh.nsplit > INT32_MAX) continue;
            const int64_t cap = fused_bt_cap(batch, sh.nsplit, h->sm_count);
            int64_t h_off, x_off[2], stage_off;
            int64_t bt = 0;
            bool two = false;
            for (int64_t t = cap; t >= 1; --t)
                if (fused_layout(&sh, t, &h_off, x_off, &stage_off) <= half) {
                    bt = t, two = true;
                    break;
                }
            if (bt == 0)
                for (int64_t t = cap; t >= 1; --t)
                    if (fused_layout(&sh, t, &h_off, x_off, &stage_off) <= budget) {
                        bt = t;
                        break;
                    }
            if (bt == 0) continue; /* does not fit even with one sample per CTA */
            const size_t smem = fused_layout(&sh, bt, &h_off, x_off, &stage_off);
            if (!ttl_fits_i32(stage_off)) continue;
            bool columns_fit = true; /* the tile divides columns in 32 bits (fc_contraction.small) */
            for (int32_t i = 0; i < sh.num_steps; ++i)
                columns_fit = columns_fit && bt * sh.steps[i].lps <= INT32_MAX / sh.steps[i].R;
            if (!columns_fit) continue;
            const int64_t grid = (b + bt - 1) / bt * sh.nsplit;
            if (grid > INT32_MAX) continue;
            fused_finish(&cand, &sh, layer, batch, o, merged, bt, smem, two);
            if (!found || cand.est_us < best.est_us || (cand.est_us == best.est_us && cand.macs < best.macs)) {
                best = cand;
                found = true;
            }
        }
    }
    if (!found) return TTL_STATUS_UNSUPPORTED;
    *cfg = best;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t fc_fused_configure(fc_fused_config_t *cfg, const ttl_cuda_fc_layer_t *layer, int64_t batch,
                                ttl_order_t order, int32_t mma) {
    fc_fused_config_t c;
    TTL_TRY(fc_fused_plan(&c, layer, batch, order, -1, mma));
    /* Opt in to the device's largest dynamic shared memory for every plan (idempotent, so plans that need
     * different sizes never undo each other). */
    TTL_CUDA_TRY(cudaFuncSetAttribute(fc_fused_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      (int)layer->handle->smem_per_block_optin));
    *cfg = c;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t fc_mma_usable(const ttl_cuda_handle_t *handle, int32_t *usable) {
    return ttl_cuda_tf32_mma_usable(handle, (const void *)fc_fused_kernel, usable);
}

ttl_status_t fc_fused_run(const fc_fused_config_t *cfg, float *y, const float *x, cudaStream_t stream) {
    fc_fused_params_t p = cfg->params;
    p.x = x;
    p.y = y;
    fc_fused_kernel<<<(unsigned)cfg->grid, FC_THREADS, cfg->smem_bytes, stream>>>(p);
    TTL_CUDA_CHECK_LAUNCH();
    return TTL_STATUS_SUCCESS;
}
