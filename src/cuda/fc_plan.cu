/*
 * TT-FC plans on the GPU: validation, the choice of algorithm (named, cost model, or autotune), the workspace of
 * each algorithm, and the forward dispatch. The kernels live in fc_fused.cu, fc_sequential.cu, fc_blas.cu and
 * fc_dense.cu.
 *
 * AUTO without autotune estimates each applicable candidate (plan_common.h: launches, multiply-adds, bytes)
 * and keeps the cheapest, falling back to the next when creating it fails for lack of memory or support.
 * With autotune = 1 every candidate is created and timed once on temporary buffers; the fastest is kept.
 *
 * Forward: validates, returns INSUFFICIENT_WORKSPACE before touching anything, returns at once for batch 0, and
 * then only enqueues work on the handle's stream (no allocation, no synchronisation), so it can be captured in a
 * CUDA graph. Results are deterministic: every output is summed by one thread in a fixed order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/fc_internal.h"
#include "cuda/fc_tile.cuh"
#include "cuda/plan_common.h"

static const char *const REASON_NAMED = "named by the caller";
static const char *const REASON_BATCH0 = "batch 0: nothing to compute";
static const char *const REASON_FUSED = "cost model: one fused launch with intermediates on chip is cheapest";
static const char *const REASON_SEQ = "cost model: one libttl kernel per core is cheapest";
static const char *const REASON_BLAS = "cost model: one cuBLAS GEMM per core is cheapest";
static const char *const REASON_DENSE = "cost model: the dense GEMM is cheaper than the TT contraction here";
static const char *const REASON_TUNED = "autotune: fastest of the candidates timed at plan time";
/* The same where some of the plan's steps run on the tensor cores (allow_3xtf32). */
static const char *const REASON_NAMED_MMA = "named by the caller (3xTF32 tensor cores)";
static const char *const REASON_FUSED_MMA =
    "cost model: one fused launch with intermediates on chip is cheapest (3xTF32 tensor cores)";
static const char *const REASON_SEQ_MMA =
    "cost model: one libttl kernel per core is cheapest (3xTF32 tensor cores)";
static const char *const REASON_TUNED_MMA =
    "autotune: fastest of the candidates timed at plan time (3xTF32 tensor cores)";

/* Whether any step of a configured FUSED or SEQUENTIAL plan runs a tensor-core tile. */
static bool uses_mma(const ttl_cuda_fc_plan_t *p) {
    bool any = false;
    if (p->info.algo == TTL_ALGO_FUSED)
        for (int32_t i = 0; i < p->fused.params.num_steps; ++i)
            any = any || (p->fused.params.steps[i].tile.mma && !p->fused.params.steps[i].stream);
    if (p->info.algo == TTL_ALGO_SEQUENTIAL)
        for (int32_t i = 0; i < p->seq.num_steps; ++i) any = any || p->seq.steps[i].tile.mma;
    return any;
}

/* `reason`, or its tensor-core variant when the plan runs tensor-core tiles. */
static const char *reason_for(const ttl_cuda_fc_plan_t *p, const char *reason) {
    if (!uses_mma(p)) return reason;
    if (reason == REASON_NAMED) return REASON_NAMED_MMA;
    if (reason == REASON_FUSED) return REASON_FUSED_MMA;
    if (reason == REASON_SEQ) return REASON_SEQ_MMA;
    if (reason == REASON_TUNED) return REASON_TUNED_MMA;
    return reason;
}

// ---------------------------------------------------------------------------------------------------------------
// sequential steps and workspace
// ---------------------------------------------------------------------------------------------------------------

static ttl_order_t resolve_order(const ttl_fc_desc_t *d, ttl_order_t order) {
    if (order != TTL_ORDER_AUTO) return order;
    int64_t f = 0, l = 0;
    if (ttl_fc_macs_sequential(&f, d, TTL_ORDER_FIRST_TO_LAST) != TTL_STATUS_SUCCESS)
        return TTL_ORDER_LAST_TO_FIRST;
    if (ttl_fc_macs_sequential(&l, d, TTL_ORDER_LAST_TO_FIRST) != TTL_STATUS_SUCCESS)
        return TTL_ORDER_FIRST_TO_LAST;
    return l < f ? TTL_ORDER_LAST_TO_FIRST : TTL_ORDER_FIRST_TO_LAST;
}

/* Estimated time of the sequential schedule of `p`; SEQUENTIAL_BLAS also fills y with the bias first. */
static double sequential_estimate(const ttl_cuda_fc_plan_t *p, bool blas) {
    const double bias_fill = blas && p->layer->bias != NULL ? TTL_COST_LAUNCH_US : 0.0;
    return bias_fill + fc_seq_estimate(&p->seq, p->layer->handle, blas ? 1 : 0);
}

static double dense_estimate(const ttl_cuda_fc_layer_t *layer, int64_t batch, int32_t allow_tf32) {
    const double M = (double)layer->desc.out_features, N = (double)layer->desc.in_features, B = (double)batch;
    const double rate = allow_tf32 ? TTL_COST_TF32_MACS_PER_US : TTL_COST_SGEMM_MACS_PER_US;
    return TTL_COST_BLAS_CALL_US + (layer->bias != NULL ? TTL_COST_LAUNCH_US : 0.0) +
           fmax(B * M * N / rate, 4.0 * (M * N + B * N + B * M) / TTL_COST_DRAM_BYTES_PER_US);
}

// ---------------------------------------------------------------------------------------------------------------
// configuring one algorithm
// ---------------------------------------------------------------------------------------------------------------

/* Sets up `p` (layer, batch, allow_tf32 already set) for `algo` in `order`, with tensor-core tiles where `mma`
 * allows and the cost model prefers them. Allocates only for DENSE. */
static ttl_status_t configure(ttl_cuda_fc_plan_t *p, ttl_algo_t algo, ttl_order_t order, int32_t mma) {
    const ttl_fc_desc_t *d = &p->layer->desc;
    p->info.algo = algo;
    p->info.order = TTL_ORDER_AUTO;
    p->info.workspace_bytes = 0;
    p->info.persistent_bytes = 0;
    p->info.estimated_us = 0.0;
    memset(&p->seq, 0, sizeof(p->seq));
    int64_t per_sample = 0;
    switch (algo) {
    case TTL_ALGO_SEQUENTIAL:
    case TTL_ALGO_SEQUENTIAL_BLAS: {
        const ttl_order_t o = resolve_order(d, order);
        const int blas = algo == TTL_ALGO_SEQUENTIAL_BLAS;
        TTL_TRY(fc_seq_schedule_plan(&p->seq, p->layer, p->batch, o, blas, p->ws_limit, mma));
        TTL_TRY(blas ? fc_blas_check(&p->seq, d->out_features) : fc_sequential_check(&p->seq));
        p->info.workspace_bytes = p->seq.ws_bytes;
        p->info.order = o;
        TTL_TRY(ttl_fc_macs_sequential(&per_sample, d, o));
        break;
    }
    case TTL_ALGO_FUSED: {
        TTL_TRY(fc_fused_configure(&p->fused, p->layer, p->batch, order, mma));
        p->info.order = p->fused.params.order == FC_FTL ? TTL_ORDER_FIRST_TO_LAST : TTL_ORDER_LAST_TO_FIRST;
        /* info.macs follows the stats formula of that order (ttl.h); the kernel's own count, merged cores and
         * per-CTA recomputation included, is fused.macs */
        TTL_TRY(ttl_fc_macs_sequential(&per_sample, d, p->info.order));
        break;
    }
    case TTL_ALGO_DENSE: {
        if (p->batch > INT32_MAX) return TTL_STATUS_UNSUPPORTED;
        TTL_TRY(fc_dense_build(&p->wt, p->layer));
        TTL_TRY(ttl_bytes(&p->info.persistent_bytes, d->out_features * d->in_features, sizeof(float)));
        per_sample = d->out_features * d->in_features;
        break;
    }
    default: return TTL_STATUS_UNSUPPORTED;
    }
    TTL_TRY(ttl_mul_i64(&p->info.macs, per_sample, p->batch));
    switch (algo) {
    case TTL_ALGO_FUSED: p->info.estimated_us = p->fused.est_us; break;
    case TTL_ALGO_DENSE: p->info.estimated_us = dense_estimate(p->layer, p->batch, p->allow_tf32); break;
    default: p->info.estimated_us = sequential_estimate(p, algo == TTL_ALGO_SEQUENTIAL_BLAS); break;
    }
    return TTL_STATUS_SUCCESS;
}

static void release_resources(ttl_cuda_fc_plan_t *p) {
    if (p->wt != NULL) (void)cudaFree(p->wt);
    p->wt = NULL;
}

// ---------------------------------------------------------------------------------------------------------------
// forward dispatch (no validation)
// ---------------------------------------------------------------------------------------------------------------

static ttl_status_t dispatch(const ttl_cuda_fc_plan_t *p, float *y, const float *x, void *ws) {
    cudaStream_t stream = p->layer->handle->stream;
    unsigned char *w = (unsigned char *)ws;
    switch (p->info.algo) {
    case TTL_ALGO_FUSED: return fc_fused_run(&p->fused, y, x, stream);
    case TTL_ALGO_SEQUENTIAL: return fc_sequential_run(p, y, x, w, stream);
    case TTL_ALGO_SEQUENTIAL_BLAS: return fc_blas_run(p, y, x, w);
    case TTL_ALGO_DENSE: return fc_dense_run(p, y, x);
    default: return TTL_STATUS_UNSUPPORTED;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// AUTO: cost model and autotune
// ---------------------------------------------------------------------------------------------------------------

typedef struct candidate {
    ttl_algo_t algo;
    ttl_order_t order;
    int32_t mma; /* configure's `mma` */
    double est_us;
    const char *reason;
} candidate_t;

/* Most candidates list_candidates gives: FUSED and SEQUENTIAL in both orders, with and without tensor-core tiles,
 * SEQUENTIAL_BLAS in both orders, DENSE. */
#define FC_MAX_CANDIDATES 9

/* Applicable candidates with their estimates (DENSE is estimated without building it), cheapest first, in
 * c[0 .. *count). A named core order (want != AUTO) restricts the candidates that have one. Where tensor cores
 * are allowed, FUSED and SEQUENTIAL come with them and without (the FFMA forms for autotune to time; the model
 * prices both). OUT_OF_MEMORY when the scratch plan cannot be allocated. */
static ttl_status_t list_candidates(candidate_t *c, int32_t *count, const ttl_cuda_fc_plan_t *base,
                                    ttl_order_t want) {
    int32_t n = 0;
    ttl_cuda_fc_plan_t *tmp = (ttl_cuda_fc_plan_t *)calloc(1, sizeof(*tmp));
    if (tmp == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    tmp->layer = base->layer;
    tmp->batch = base->batch;
    tmp->allow_tf32 = base->allow_tf32;
    tmp->mma_ok = base->mma_ok;
    tmp->ws_limit = base->ws_limit;
    static const ttl_order_t orders[2] = {TTL_ORDER_FIRST_TO_LAST, TTL_ORDER_LAST_TO_FIRST};
    /* allowed, then off: at most FC_MAX_CANDIDATES (the test hook's FC_MMA_FORCED never reaches AUTO) */
    for (int32_t mma = base->mma_ok < FC_MMA_ALLOWED ? base->mma_ok : FC_MMA_ALLOWED; mma >= 0; --mma) {
        if (fc_fused_configure(&tmp->fused, base->layer, base->batch, want, mma) == TTL_STATUS_SUCCESS)
            c[n++] = candidate_t{TTL_ALGO_FUSED, want, mma, tmp->fused.est_us, REASON_FUSED};
        for (ttl_order_t o : orders) {
            if (want != TTL_ORDER_AUTO && o != want) continue;
            if (configure(tmp, TTL_ALGO_SEQUENTIAL, o, mma) == TTL_STATUS_SUCCESS)
                c[n++] = candidate_t{TTL_ALGO_SEQUENTIAL, o, mma, sequential_estimate(tmp, false), REASON_SEQ};
        }
    }
    for (ttl_order_t o : orders) {
        if (want != TTL_ORDER_AUTO && o != want) continue;
        if (configure(tmp, TTL_ALGO_SEQUENTIAL_BLAS, o, 0) == TTL_STATUS_SUCCESS)
            c[n++] = candidate_t{TTL_ALGO_SEQUENTIAL_BLAS, o, 0, sequential_estimate(tmp, true), REASON_BLAS};
    }
    const ttl_fc_desc_t *d = &base->layer->desc;
    if (d->out_features <= INT32_MAX && d->in_features <= INT32_MAX && base->batch <= INT32_MAX)
        c[n++] = candidate_t{TTL_ALGO_DENSE, TTL_ORDER_AUTO, 0,
                             dense_estimate(base->layer, base->batch, base->allow_tf32), REASON_DENSE};
    free(tmp);
    /* cheapest first (stable insertion sort: among equal estimates the tensor-core form, listed first, stays
     * first; at most FC_MAX_CANDIDATES entries) */
    for (int32_t i = 1; i < n; ++i)
        for (int32_t j = i; j > 0 && c[j].est_us < c[j - 1].est_us; --j) {
            const candidate_t t = c[j];
            c[j] = c[j - 1], c[j - 1] = t;
        }
    *count = n;
    return TTL_STATUS_SUCCESS;
}

/* Whether a candidate may be skipped when it cannot be created (the next one is tried instead). */
static bool skippable(ttl_status_t st) { return st == TTL_STATUS_UNSUPPORTED || st == TTL_STATUS_OUT_OF_MEMORY; }

static ttl_status_t choose_by_model(ttl_cuda_fc_plan_t *p, ttl_order_t want) {
    candidate_t c[FC_MAX_CANDIDATES];
    int32_t n = 0;
    TTL_TRY(list_candidates(c, &n, p, want));
    ttl_status_t st = TTL_STATUS_UNSUPPORTED;
    for (int32_t i = 0; i < n; ++i) {
        st = configure(p, c[i].algo, c[i].order, c[i].mma);
        if (st == TTL_STATUS_SUCCESS) {
            p->info.reason = reason_for(p, c[i].reason);
            return st;
        }
        release_resources(p);
        if (!skippable(st)) return st;
    }
    return st;
}

/* Device buffers of one autotune run. */
typedef struct tune_buffers {
    float *x, *y;
    void *ws;
    size_t ws_bytes;
} tune_buffers_t;

static ttl_status_t tune_alloc(tune_buffers_t *b, const ttl_cuda_fc_plan_t *p, size_t ws_bytes) {
    const ttl_fc_desc_t *d = &p->layer->desc;
    size_t xb, yb;
    TTL_TRY(ttl_bytes(&xb, p->batch * d->in_features, sizeof(float)));
    TTL_TRY(ttl_bytes(&yb, p->batch * d->out_features, sizeof(float)));
    if (cudaMalloc((void **)&b->x, xb) != cudaSuccess || cudaMalloc((void **)&b->y, yb) != cudaSuccess ||
        (ws_bytes > 0 && cudaMalloc(&b->ws, ws_bytes) != cudaSuccess)) {
        (void)cudaGetLastError();
        return TTL_STATUS_OUT_OF_MEMORY;
    }
    b->ws_bytes = ws_bytes;
    return fc_pattern_fill(b->x, p->batch * d->in_features, p->layer->handle->stream);
}

static void tune_free(tune_buffers_t *b) {
    if (b->x != NULL) (void)cudaFree(b->x);
    if (b->y != NULL) (void)cudaFree(b->y);
    if (b->ws != NULL) (void)cudaFree(b->ws);
    memset(b, 0, sizeof(*b));
}

static ttl_status_t choose_by_timing(ttl_cuda_fc_plan_t *p, ttl_order_t want) {
    candidate_t c[FC_MAX_CANDIDATES];
    int32_t n = 0;
    TTL_TRY(list_candidates(c, &n, p, want));
    /* DENSE needs M N floats of device memory for its W: only time it when that is a small part of what is free */
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        free_bytes = 0;
    }
    const double dense_bytes = 4.0 * (double)p->layer->desc.out_features * (double)p->layer->desc.in_features;
    ttl_cuda_fc_plan_t *trial = (ttl_cuda_fc_plan_t *)calloc(1, sizeof(*trial));
    if (trial == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    tune_buffers_t buf;
    memset(&buf, 0, sizeof(buf));
    bool have = false;
    float best_ms = 0.0f;
    ttl_status_t st = TTL_STATUS_SUCCESS, first_error = TTL_STATUS_SUCCESS;
    for (int32_t i = 0; i < n && st == TTL_STATUS_SUCCESS; ++i) {
        if (c[i].algo == TTL_ALGO_DENSE && dense_bytes > 0.25 * (double)free_bytes) continue;
        trial->layer = p->layer;
        trial->batch = p->batch;
        trial->allow_tf32 = p->allow_tf32;
        trial->mma_ok = p->mma_ok;
        trial->ws_limit = p->ws_limit;
        const ttl_status_t cs = configure(trial, c[i].algo, c[i].order, c[i].mma);
        if (cs != TTL_STATUS_SUCCESS) {
            release_resources(trial);
            if (skippable(cs)) continue;
            st = cs;
            break;
        }
        /* A candidate whose buffers do not fit or whose timed run fails is skipped (its error kept for the case
         * that none runs); the winner so far stays. */
        ttl_status_t ts = TTL_STATUS_SUCCESS;
        if (buf.x == NULL || trial->info.workspace_bytes > buf.ws_bytes) {
            tune_free(&buf);
            ts = tune_alloc(&buf, p, trial->info.workspace_bytes);
            if (ts != TTL_STATUS_SUCCESS) tune_free(&buf);
        }
        float ms = 0.0f;
        if (ts == TTL_STATUS_SUCCESS)
            ts = ttl_cuda_time_ms(&ms, p->layer->handle->stream, 3,
                                  [&]() { return dispatch(trial, buf.y, buf.x, buf.ws); });
        if (ts != TTL_STATUS_SUCCESS) {
            (void)cudaGetLastError();
            release_resources(trial);
            memset(trial, 0, sizeof(*trial));
            if (first_error == TTL_STATUS_SUCCESS) first_error = ts;
            continue;
        }
        if (!have || ms < best_ms) {
            release_resources(p);
            *p = *trial;
            p->info.reason = reason_for(p, REASON_TUNED);
            best_ms = ms;
            have = true;
        } else {
            release_resources(trial);
        }
        memset(trial, 0, sizeof(*trial));
    }
    tune_free(&buf);
    free(trial);
    if (st != TTL_STATUS_SUCCESS) {
        release_resources(p);
        return st;
    }
    if (!have) return first_error != TTL_STATUS_SUCCESS ? first_error : TTL_STATUS_UNSUPPORTED;
    return TTL_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// entry points
// ---------------------------------------------------------------------------------------------------------------

ttl_fc_test_overrides_t ttl_fc_test_overrides = {0};

extern "C" ttl_status_t ttl_cuda_fc_plan_create(ttl_cuda_fc_plan_t **plan, ttl_cuda_fc_layer_t *layer,
                                                int64_t batch, const ttl_cuda_plan_opts_t *opts) {
    if (plan == NULL || layer == NULL) return TTL_STATUS_NULL_POINTER;
    ttl_cuda_plan_opts_t o = {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, 0, 0, 0};
    if (opts != NULL) o = *opts;
    if (batch < 0) return TTL_STATUS_BAD_ARGUMENT;
    if ((o.autotune != 0 && o.autotune != 1) || (o.allow_tf32 != 0 && o.allow_tf32 != 1) ||
        (o.allow_3xtf32 != 0 && o.allow_3xtf32 != 1))
        return TTL_STATUS_BAD_ARGUMENT;
    const unsigned supported = TTL_ALGO_BIT(TTL_ALGO_AUTO) | TTL_ALGO_BIT(TTL_ALGO_SEQUENTIAL) |
                               TTL_ALGO_BIT(TTL_ALGO_SEQUENTIAL_BLAS) | TTL_ALGO_BIT(TTL_ALGO_FUSED) |
                               TTL_ALGO_BIT(TTL_ALGO_DENSE);
    TTL_TRY(ttl_plan_choice_check(o.algo, o.order, supported));
    ttl_cuda_device_scope scope(layer->handle);
    TTL_TRY(scope.status);

    ttl_cuda_fc_plan_t *p = (ttl_cuda_fc_plan_t *)calloc(1, sizeof(*p));
    if (p == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    p->layer = layer;
    p->batch = batch;
    p->allow_tf32 = o.allow_tf32;
    p->ws_limit = o.workspace_limit;
    ttl_status_t st = o.allow_3xtf32 ? fc_mma_usable(layer->handle, &p->mma_ok) : TTL_STATUS_SUCCESS;
    if (p->mma_ok && ttl_fc_test_overrides.force_mma && o.algo != TTL_ALGO_AUTO) p->mma_ok = FC_MMA_FORCED;
    if (st != TTL_STATUS_SUCCESS) {
        /* the device could not be queried: nothing to configure */
    } else if (o.algo != TTL_ALGO_AUTO) {
        st = configure(p, o.algo, o.order, p->mma_ok);
        p->info.reason = reason_for(p, REASON_NAMED);
    } else if (batch == 0) {
        st = configure(p, TTL_ALGO_SEQUENTIAL, o.order, 0);
        p->info.reason = REASON_BATCH0;
    } else if (o.autotune) {
        st = choose_by_timing(p, o.order);
    } else {
        st = choose_by_model(p, o.order);
    }
    if (batch == 0) p->info.estimated_us = 0.0;
    if (st != TTL_STATUS_SUCCESS) {
        release_resources(p);
        free(p);
        return st;
    }
    *plan = p;
    return TTL_STATUS_SUCCESS;
}

extern "C" ttl_status_t ttl_cuda_fc_plan_info(const ttl_cuda_fc_plan_t *plan, ttl_plan_info_t *info) {
    if (plan == NULL || info == NULL) return TTL_STATUS_NULL_POINTER;
    *info = plan->info;
    return TTL_STATUS_SUCCESS;
}

extern "C" void ttl_cuda_fc_plan_destroy(ttl_cuda_fc_plan_t *plan) {
    if (plan == NULL) return;
    ttl_cuda_device_scope scope(plan->layer->handle);
    release_resources(plan);
    free(plan);
}

extern "C" ttl_status_t ttl_cuda_fc_forward(const ttl_cuda_fc_plan_t *plan, float *y, const float *x, void *ws,
                                            size_t ws_bytes) {
    if (plan == NULL || y == NULL || x == NULL) return TTL_STATUS_NULL_POINTER;
    if (ws_bytes < plan->info.workspace_bytes) return TTL_STATUS_INSUFFICIENT_WORKSPACE;
    if (plan->info.workspace_bytes > 0 && ws == NULL) return TTL_STATUS_NULL_POINTER;
    if (plan->info.workspace_bytes > 0 && (uintptr_t)ws % TTL_CUDA_WS_BASE_ALIGN != 0)
        return TTL_STATUS_BAD_ARGUMENT;
    const ttl_fc_desc_t *d = &plan->layer->desc;
    if (ttl_forward_buffers_overlap(y, (size_t)(plan->batch * d->out_features) * sizeof(float), x,
                                    (size_t)(plan->batch * d->in_features) * sizeof(float), ws,
                                    plan->info.workspace_bytes))
        return TTL_STATUS_BAD_ARGUMENT;
    if (plan->batch == 0) return TTL_STATUS_SUCCESS;
    TTL_CUDA_REFUSE_PENDING_ERROR();
    ttl_cuda_device_scope scope(plan->layer->handle);
    TTL_TRY(scope.status);
    return dispatch(plan, y, x, ws);
}
