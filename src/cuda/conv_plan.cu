/*
 * TT-conv GPU plans: validation, algorithm choice, and the forward entry point.
 *
 *   plan_create(layer, shape {B, H, W, layout}, opts) -> SPATIAL_FIRST | CHANNELS_FIRST | DENSE
 *   forward(plan, y, x, ws, ws_bytes): x [B, C, H, W] or [B, H, W, C] -> y [B, S, OH, OW] or [B, OH, OW, S]
 *
 * AUTO estimates each applicable algorithm's time from its multiply-adds, the bytes it moves and its launches
 * (constants below, from the H100 anchors) and takes the TT order only when it is clearly cheaper than cuDNN;
 * with autotune it times every applicable algorithm once on scratch buffers and keeps the fastest. Forward calls
 * only enqueue work on the handle's stream: no allocation, no host synchronisation.
 */
#include <stdint.h>
#include <stdlib.h>

#include "cuda/conv_internal.h"
#include "cuda/plan_common.h"

namespace {

// ---------------------------------------------------------------------------------------------------------------
// cost model
// ---------------------------------------------------------------------------------------------------------------

constexpr double kFp32Flops = 50e12;       /* SGEMM ceiling of an H100 (anchors: 51.7 TFLOP/s) */
constexpr double kBandwidth = 3.0e12;      /* device copy, bytes read + written per second */
constexpr double kLaunchSeconds = 4e-6;    /* per kernel launch in a stream */
constexpr double kDenseEfficiency = 0.9;   /* cuDNN's best fp32 algorithm, of the SGEMM ceiling */
constexpr double kWinogradGain = 2.25;     /* 3x3 stride-1 convs: cuDNN's Winograd/FFT algorithms multiply less */
constexpr double kFusedEfficiency = 0.55;  /* fused TT kernel: register-tiled products from shared memory (3xTF32
                                            * steps priced the same until a measured rate says otherwise) */
constexpr double kUnfusedEfficiency = 0.4; /* the chunked TT kernels */
constexpr double kTtMargin = 0.95;         /* a TT order is chosen only when estimated this much faster */
constexpr int kTuneRuns = 5;               /* timed runs per candidate in autotune, after one warm-up */

double seconds(double flops, double rate, double bytes, double launches) {
    return flops / rate + bytes / kBandwidth + launches * kLaunchSeconds;
}

double activation_bytes(const ttl_conv_geom_t &g) {
    return 4.0 * (double)(g.B * g.C * g.H * g.W + g.B * g.S * g.OH * g.OW);
}

double estimate_dense(const ttl_conv_geom_t &g) {
    const bool winograd = g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1;
    const double macs = (double)g.B * g.OH * g.OW * g.S * g.C * g.kh * g.kw;
    return seconds(2.0 * macs / (winograd ? kWinogradGain : 1.0), kFp32Flops * kDenseEfficiency,
                   activation_bytes(g) + 4.0 * g.S * g.C * g.kh * g.kw, 2);
}

double estimate_tt(const ttl_cuda_conv_plan_t &p) {
    const ttl_conv_geom_t &g = p.geom;
    const double rate = kFp32Flops * (p.fused ? kFusedEfficiency : kUnfusedEfficiency);
    double bytes = activation_bytes(g), launches;
    const double steps = p.chain.num_steps;
    const double tt_px = p.variant == TTL_CONV_VARIANT_SF ? (double)(g.B * g.OH * g.OW) : (double)p.cf_tt_px;
    if (!p.fused) bytes += 8.0 * (steps + 1) * p.chain.max_state * tt_px; /* state round trips */
    if (p.variant == TTL_CONV_VARIANT_SF) {
        launches = p.fused ? 1 : (steps + 2) * ((tt_px + p.chunk_px - 1) / p.chunk_px);
    } else {
        bytes += 8.0 * tt_px * g.r0 * g.S; /* U written and read */
        launches = (double)p.cf_chunks * (p.fused ? 2 : steps + 3);
    }
    return seconds(2.0 * (double)p.info.macs, rate, bytes, launches);
}

// ---------------------------------------------------------------------------------------------------------------
// plan construction
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t check_opts(const ttl_cuda_plan_opts_t &o) {
    if ((o.autotune != 0 && o.autotune != 1) || (o.allow_tf32 != 0 && o.allow_tf32 != 1) ||
        (o.allow_3xtf32 != 0 && o.allow_3xtf32 != 1))
        return TTL_STATUS_BAD_ARGUMENT;
    /* REFERENCE is CPU only; SEQUENTIAL, SEQUENTIAL_BLAS and FUSED are TT-FC algorithms */
    const unsigned supported = TTL_ALGO_BIT(TTL_ALGO_AUTO) | TTL_ALGO_BIT(TTL_ALGO_SPATIAL_FIRST) |
                               TTL_ALGO_BIT(TTL_ALGO_CHANNELS_FIRST) | TTL_ALGO_BIT(TTL_ALGO_DENSE);
    return ttl_plan_choice_check(o.algo, o.order, supported);
}

void destroy_plan(ttl_cuda_conv_plan_t *p) {
    if (p == nullptr) return;
    ttl_conv_dense_release(&p->dense);
    free(p);
}

// A plan for one named algorithm (SF, CF or DENSE); fused_form: TTL_CONV_FUSED_* (ttl_cuda_conv_plan_t); mma:
// the TT steps in 3xTF32 (-1: as the options allow).
ttl_status_t create_fixed(ttl_cuda_conv_plan_t **out, ttl_cuda_conv_layer_t *l, const ttl_conv_shape_t &shape,
                          const ttl_conv_geom_t &g, ttl_algo_t algo, const ttl_cuda_plan_opts_t &o,
                          int32_t fused_form = TTL_CONV_FUSED_DEFAULT, int32_t mma = -1) {
    ttl_cuda_conv_plan_t *p = (ttl_cuda_conv_plan_t *)calloc(1, sizeof(*p));
    if (p == nullptr) return TTL_STATUS_OUT_OF_MEMORY;
    p->layer = l;
    p->shape = shape;
    p->geom = g;
    p->ws_limit = o.workspace_limit;
    p->fused_form = fused_form;
    p->mma = mma >= 0 ? mma : o.allow_3xtf32;
    ttl_status_t st;
    if (algo == TTL_ALGO_DENSE) {
        st = ttl_conv_dense_setup(p, o.allow_tf32);
        p->info.reason = "requested: reconstruct K once, then cuDNN's fastest deterministic algorithm";
    } else {
        st = ttl_conv_tt_setup(p, algo, o.order); /* clears p->mma where the device has no TF32 tensor cores */
        if (algo == TTL_ALGO_SPATIAL_FIRST)
            p->info.reason = p->mma ? "requested: r_0 spatial filters per input channel, then the channel TT "
                                      "(3xTF32 tensor cores)"
                                    : "requested: r_0 spatial filters per input channel, then the channel TT";
        else
            p->info.reason = p->mma ? "requested: channel TT per input pixel, then a kh x kw conv over r_0 "
                                      "(3xTF32 tensor cores)"
                                    : "requested: channel TT per input pixel, then a kh x kw conv over r_0";
    }
    if (st != TTL_STATUS_SUCCESS) {
        destroy_plan(p);
        return st;
    }
    if (g.B > 0) p->info.estimated_us = 1e6 * (algo == TTL_ALGO_DENSE ? estimate_dense(g) : estimate_tt(*p));
    *out = p;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t run(const ttl_cuda_conv_plan_t *p, float *y, const float *x, void *ws) {
    if (p->info.algo == TTL_ALGO_DENSE) return ttl_conv_dense_forward(p, y, x, ws);
    return ttl_conv_tt_forward(p, p->layer->handle->stream, y, x, ws);
}

// Autotune: every algorithm that plans successfully is timed, and the other forms of the fused TT kernel: each
// order with its largest tile where the default took a smaller one for occupancy, and spatial first's sliced
// chain where the layer has one. The fastest is kept, the rest destroyed.
ttl_status_t autotune(ttl_cuda_conv_plan_t **out, ttl_cuda_conv_layer_t *l, const ttl_conv_shape_t &shape,
                      const ttl_conv_geom_t &g, const ttl_cuda_plan_opts_t &o) {
    struct candidate {
        ttl_algo_t algo;
        int32_t form;
        int base;    /* >= 0: the default-form candidate this one may repeat (the same tile, or no tensor cores) */
        int32_t mma; /* -1: as the options allow; 0: FFMA (timed beside the 3xTF32 forms when those are allowed) */
        const char *reason;
    };
    static const candidate kCand[] = {
        {TTL_ALGO_SPATIAL_FIRST, TTL_CONV_FUSED_DEFAULT, -1, -1, "autotune: the fastest measured at plan time"},
        {TTL_ALGO_CHANNELS_FIRST, TTL_CONV_FUSED_DEFAULT, -1, -1, "autotune: the fastest measured at plan time"},
        {TTL_ALGO_DENSE, TTL_CONV_FUSED_DEFAULT, -1, -1, "autotune: the fastest measured at plan time"},
        {TTL_ALGO_SPATIAL_FIRST, TTL_CONV_FUSED_LARGEST_TILE, 0, -1,
         "autotune: the fastest measured at plan time (largest fused tile)"},
        {TTL_ALGO_CHANNELS_FIRST, TTL_CONV_FUSED_LARGEST_TILE, 1, -1,
         "autotune: the fastest measured at plan time (largest fused tile)"},
        {TTL_ALGO_SPATIAL_FIRST, TTL_CONV_FUSED_SLICED, -1, -1,
         "autotune: the fastest measured at plan time (fused chain sliced over the last input mode)"},
        {TTL_ALGO_SPATIAL_FIRST, TTL_CONV_FUSED_DEFAULT, 0, 0,
         "autotune: the fastest measured at plan time (FFMA)"},
        {TTL_ALGO_CHANNELS_FIRST, TTL_CONV_FUSED_DEFAULT, 1, 0,
         "autotune: the fastest measured at plan time (FFMA)"},
    };
    constexpr int kCount = sizeof(kCand) / sizeof(kCand[0]);
    ttl_cuda_conv_plan_t *cand[kCount] = {};
    ttl_status_t first_error = TTL_STATUS_SUCCESS;
    size_t ws_bytes = 0;
    for (int i = 0; i < kCount; ++i) {
        if (kCand[i].mma == 0 && !o.allow_3xtf32) continue; /* the first candidates are these already */
        const ttl_status_t st = create_fixed(&cand[i], l, shape, g, kCand[i].algo, o, kCand[i].form, kCand[i].mma);
        if (st != TTL_STATUS_SUCCESS) {
            cand[i] = nullptr;
            /* the other fused forms are extras: a shape without them is no error */
            if (first_error == TTL_STATUS_SUCCESS && kCand[i].form == TTL_CONV_FUSED_DEFAULT) first_error = st;
            continue;
        }
        const ttl_cuda_conv_plan_t *dflt = kCand[i].base >= 0 ? cand[kCand[i].base] : nullptr;
        /* an FFMA form repeats its default where that has no tensor cores either (a device before sm_80) */
        const bool repeat = kCand[i].mma == 0
                                ? dflt != nullptr && !dflt->mma
                                : dflt == nullptr || !cand[i]->fused || cand[i]->tile_px == dflt->tile_px;
        if (kCand[i].base >= 0 && repeat) {
            destroy_plan(cand[i]); /* the same plan as the default one (or its default failed): not timed twice */
            cand[i] = nullptr;
            continue;
        }
        if (cand[i]->info.workspace_bytes > ws_bytes) ws_bytes = cand[i]->info.workspace_bytes;
    }
    size_t x_bytes, y_bytes;
    ttl_status_t st = ttl_bytes(&x_bytes, g.B * g.C * g.H * g.W, sizeof(float));
    if (st == TTL_STATUS_SUCCESS) st = ttl_bytes(&y_bytes, g.B * g.S * g.OH * g.OW, sizeof(float));
    void *x = nullptr, *y = nullptr, *ws = nullptr;
    if (st == TTL_STATUS_SUCCESS &&
        (cudaMalloc(&x, x_bytes) != cudaSuccess || cudaMalloc(&y, y_bytes) != cudaSuccess ||
         (ws_bytes > 0 && cudaMalloc(&ws, ws_bytes) != cudaSuccess))) {
        (void)cudaGetLastError(); /* a failed allocation must not surface at a later launch check */
        st = TTL_STATUS_OUT_OF_MEMORY;
    }
    if (st == TTL_STATUS_SUCCESS && cudaMemsetAsync(x, 0x3c, x_bytes, l->handle->stream) != cudaSuccess)
        st = TTL_STATUS_CUDA_ERROR;
    int best = -1;
    float best_ms = 0.0f;
    for (int i = 0; i < kCount && st == TTL_STATUS_SUCCESS; ++i) {
        if (cand[i] == nullptr) continue;
        float ms = 0.0f;
        const ttl_cuda_conv_plan_t *c = cand[i];
        const ttl_status_t run_st = ttl_cuda_time_ms(&ms, l->handle->stream, kTuneRuns,
                                                     [&] { return run(c, (float *)y, (const float *)x, ws); });
        if (run_st != TTL_STATUS_SUCCESS) { /* a candidate that fails to run is skipped, not fatal */
            (void)cudaGetLastError();
            if (first_error == TTL_STATUS_SUCCESS) first_error = run_st;
            continue;
        }
        if (best < 0 || ms < best_ms) best = i, best_ms = ms;
    }
    cudaFree(x);
    cudaFree(y);
    cudaFree(ws);
    if (st == TTL_STATUS_SUCCESS && best < 0)
        st = first_error != TTL_STATUS_SUCCESS ? first_error : TTL_STATUS_UNSUPPORTED;
    for (int i = 0; i < kCount; ++i)
        if (i != best || st != TTL_STATUS_SUCCESS) destroy_plan(cand[i]);
    TTL_TRY(st);
    cand[best]->info.reason = kCand[best].reason;
    *out = cand[best];
    return TTL_STATUS_SUCCESS;
}

// AUTO by the cost model: both TT orders are planned (cheap: no device memory), DENSE only if it wins.
ttl_status_t choose(ttl_cuda_conv_plan_t **out, ttl_cuda_conv_layer_t *l, const ttl_conv_shape_t &shape,
                    const ttl_conv_geom_t &g, const ttl_cuda_plan_opts_t &o) {
    ttl_cuda_conv_plan_t *sf = nullptr, *cf = nullptr, *tt = nullptr;
    if (create_fixed(&sf, l, shape, g, TTL_ALGO_SPATIAL_FIRST, o) != TTL_STATUS_SUCCESS) sf = nullptr;
    if (create_fixed(&cf, l, shape, g, TTL_ALGO_CHANNELS_FIRST, o) != TTL_STATUS_SUCCESS) cf = nullptr;
    const double t_sf = sf ? estimate_tt(*sf) : 0.0, t_cf = cf ? estimate_tt(*cf) : 0.0;
    if (sf != nullptr && (cf == nullptr || t_sf <= t_cf)) {
        tt = sf;
        destroy_plan(cf);
    } else {
        tt = cf;
        destroy_plan(sf);
    }
    if (g.B == 0 && tt != nullptr) {
        tt->info.reason = "batch 0: nothing to compute, no reconstruction needed";
        *out = tt;
        return TTL_STATUS_SUCCESS;
    }
    const double t_tt = tt == sf ? t_sf : t_cf;
    if (tt != nullptr && t_tt < kTtMargin * estimate_dense(g)) {
        tt->info.reason = tt->variant == TTL_CONV_VARIANT_SF
                              ? "cost model: spatial-first TT is estimated clearly faster than dense cuDNN"
                              : "cost model: channels-first TT is estimated clearly faster than dense cuDNN";
        *out = tt;
        return TTL_STATUS_SUCCESS;
    }
    ttl_cuda_conv_plan_t *dense = nullptr;
    const ttl_status_t st = create_fixed(&dense, l, shape, g, TTL_ALGO_DENSE, o);
    if (st == TTL_STATUS_SUCCESS) {
        destroy_plan(tt);
        dense->info.reason = "cost model: the TT orders cannot beat dense cuDNN on this shape";
        *out = dense;
        return TTL_STATUS_SUCCESS;
    }
    if (tt == nullptr) return st;
    tt->info.reason = "cost model: dense cuDNN preferred but unavailable here, TT used instead";
    *out = tt;
    return TTL_STATUS_SUCCESS;
}

} // namespace

// ---------------------------------------------------------------------------------------------------------------
// internal and public entry points
// ---------------------------------------------------------------------------------------------------------------

extern "C" ttl_status_t ttl_conv_make_geom(ttl_conv_geom_t *g, const ttl_cuda_conv_layer_t *l,
                                           const ttl_conv_shape_t *shape, const ttl_conv_stats_t *stats) {
    const ttl_conv_desc_t &d = l->desc;
    const ttl_conv_shape_t &s = *shape;
    const ttl_conv_stats_t &st = *stats;
    const int64_t small[] = {d.kernel_h, d.kernel_w,   d.stride_h,   d.stride_w, d.pad_h,
                             d.pad_w,    d.dilation_h, d.dilation_w, d.ranks[0], l->r0pad};
    for (int64_t v : small)
        if (!ttl_fits_i32(v)) return TTL_STATUS_UNSUPPORTED;
    /* every activation element index must fit int64 (checked products) */
    int64_t n;
    TTL_TRY(ttl_mul_i64(&n, s.batch, d.in_channels));
    TTL_TRY(ttl_mul_i64(&n, n, s.height));
    TTL_TRY(ttl_mul_i64(&n, n, s.width));
    TTL_TRY(ttl_mul_i64(&n, s.batch, d.out_channels));
    TTL_TRY(ttl_mul_i64(&n, n, st.out_h));
    TTL_TRY(ttl_mul_i64(&n, n, st.out_w));
    *g = ttl_conv_geom_t{};
    g->B = s.batch, g->C = d.in_channels, g->H = s.height, g->W = s.width;
    g->S = d.out_channels, g->OH = st.out_h, g->OW = st.out_w;
    g->kh = (int32_t)d.kernel_h, g->kw = (int32_t)d.kernel_w, g->sh = (int32_t)d.stride_h;
    g->sw = (int32_t)d.stride_w, g->ph = (int32_t)d.pad_h, g->pw = (int32_t)d.pad_w;
    g->dh = (int32_t)d.dilation_h, g->dw = (int32_t)d.dilation_w;
    g->r0 = (int32_t)d.ranks[0], g->r0pad = l->r0pad;
    g->nhwc = s.layout == TTL_LAYOUT_NHWC;
    return TTL_STATUS_SUCCESS;
}

extern "C" ttl_status_t ttl_cuda_conv_plan_create(ttl_cuda_conv_plan_t **plan, ttl_cuda_conv_layer_t *layer,
                                                  const ttl_conv_shape_t *shape, const ttl_cuda_plan_opts_t *opts) {
    if (plan == nullptr || layer == nullptr || shape == nullptr) return TTL_STATUS_NULL_POINTER;
    ttl_cuda_plan_opts_t o = {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, 0, 0, 0};
    if (opts != nullptr) o = *opts;
    TTL_TRY(check_opts(o));
    ttl_conv_stats_t stats;
    TTL_TRY(ttl_conv_stats(&stats, &layer->desc, shape)); /* batch >= 0, layout, sizes, output size */
    ttl_conv_geom_t g;
    TTL_TRY(ttl_conv_make_geom(&g, layer, shape, &stats));
    ttl_cuda_device_scope guard(layer->handle);
    TTL_TRY(guard.status);

    ttl_cuda_conv_plan_t *p = nullptr;
    if (o.algo != TTL_ALGO_AUTO)
        TTL_TRY(create_fixed(&p, layer, *shape, g, o.algo, o));
    else if (o.autotune && g.B > 0)
        TTL_TRY(autotune(&p, layer, *shape, g, o));
    else
        TTL_TRY(choose(&p, layer, *shape, g, o));
    *plan = p;
    return TTL_STATUS_SUCCESS;
}

extern "C" ttl_status_t ttl_cuda_conv_plan_info(const ttl_cuda_conv_plan_t *plan, ttl_plan_info_t *info) {
    if (plan == nullptr || info == nullptr) return TTL_STATUS_NULL_POINTER;
    *info = plan->info;
    return TTL_STATUS_SUCCESS;
}

extern "C" void ttl_cuda_conv_plan_destroy(ttl_cuda_conv_plan_t *plan) {
    if (plan == nullptr) return;
    ttl_cuda_device_scope guard(plan->layer->handle);
    destroy_plan(plan);
}

extern "C" ttl_status_t ttl_cuda_conv_forward(const ttl_cuda_conv_plan_t *plan, float *y, const float *x, void *ws,
                                              size_t ws_bytes) {
    if (plan == nullptr || y == nullptr || x == nullptr) return TTL_STATUS_NULL_POINTER;
    const size_t need = plan->info.workspace_bytes;
    if (ws_bytes < need) return TTL_STATUS_INSUFFICIENT_WORKSPACE;
    if (need > 0 && ws == nullptr) return TTL_STATUS_NULL_POINTER;
    if (need > 0 && (uintptr_t)ws % TTL_CUDA_WS_BASE_ALIGN != 0) return TTL_STATUS_BAD_ARGUMENT;
    const ttl_conv_geom_t &g = plan->geom;
    if (ttl_forward_buffers_overlap(y, (size_t)(g.B * g.S * g.OH * g.OW) * sizeof(float), x,
                                    (size_t)(g.B * g.C * g.H * g.W) * sizeof(float), ws, need))
        return TTL_STATUS_BAD_ARGUMENT;
    if (g.B == 0) return TTL_STATUS_SUCCESS;
    TTL_CUDA_REFUSE_PENDING_ERROR();
    ttl_cuda_device_scope guard(plan->layer->handle);
    TTL_TRY(guard.status);
    return run(plan, y, x, ws);
}
