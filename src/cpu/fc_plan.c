/*
 * TT-FC plans on the CPU: choose an algorithm once for a descriptor and batch, size the workspace exactly, then
 * run it as often as needed.
 *
 *   SEQUENTIAL  one GEMM per core (tt_sequential.c), either core order;
 *   DENSE       W rebuilt in float (tt_reconstruct.c), then one sgemm (sgemv for batch 1). Without bound weights
 *               W is rebuilt in the workspace on every call; with them, once here into memory the plan owns;
 *   REFERENCE   ttl_fc_forward_ref, which allocates its own scratch.
 *
 * AUTO without bound weights takes the fewest multiply-adds by the ttl_fc_stats formulas, DENSE paying the
 * reconstruction (it runs on every call). With bound weights it takes the shortest estimated time: multiply-adds
 * over the rates of cpu_internal.h (sgemm about three times the TT contractions' rate, sgemv two thirds), DENSE
 * without the reconstruction, which it no longer runs per call.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "cpu/cpu_internal.h"

struct ttl_fc_plan {
    ttl_fc_desc_t desc;
    int64_t batch;
    ttl_plan_info_t info;
    const float *bound_cores; /* the weights bound at creation, or NULL */
    ttl_tt_seq_t seq;         /* SEQUENTIAL */
    int64_t chain_elems;      /* DENSE, unbound: scratch floats of the reconstruction, after W */
    float *W;                 /* DENSE, bound: W [M, N] built at creation (owned) */
};

static const char REASON_REQUESTED[] = "requested by the caller";
static const char REASON_AUTO_SEQUENTIAL[] = "fewest multiply-adds: sequential core contraction";
static const char REASON_AUTO_DENSE[] = "fewest multiply-adds: rebuilding W and one dense GEMM";
static const char REASON_BOUND_SEQUENTIAL[] = "shortest estimated time: sequential core contraction";
static const char REASON_BOUND_DENSE[] = "shortest estimated time: one dense GEMM on W built at plan time";

// ---------------------------------------------------------------------------------------------------------------
// option checks
// ---------------------------------------------------------------------------------------------------------------

/* The algorithms a CPU FC plan runs; ttl_plan_choice_check gives BAD_ARGUMENT / UNSUPPORTED for the rest. */
static ttl_status_t check_fc_opts(const ttl_plan_opts_t *opts) {
    const unsigned supported = TTL_ALGO_BIT(TTL_ALGO_AUTO) | TTL_ALGO_BIT(TTL_ALGO_REFERENCE) |
                               TTL_ALGO_BIT(TTL_ALGO_SEQUENTIAL) | TTL_ALGO_BIT(TTL_ALGO_DENSE);
    return ttl_plan_choice_check(opts->algo, opts->order, supported);
}

// ---------------------------------------------------------------------------------------------------------------
// plan
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t ttl_fc_plan_create(ttl_fc_plan_t **plan, const ttl_fc_desc_t *desc, int64_t batch,
                                const ttl_plan_opts_t *opts) {
    if (plan == NULL) return TTL_STATUS_NULL_POINTER;
    ttl_fc_stats_t st;
    TTL_TRY(ttl_fc_stats(&st, desc, batch));
    const ttl_plan_opts_t defaults = {TTL_ALGO_AUTO, TTL_ORDER_AUTO, NULL};
    if (opts == NULL) opts = &defaults;
    TTL_TRY(check_fc_opts(opts));
    const float *bound = opts->cores;

    ttl_fc_plan_t p;
    memset(&p, 0, sizeof(p));
    p.desc = *desc;
    p.batch = batch;
    p.bound_cores = bound;
    p.info.reason = REASON_REQUESTED;
    p.info.order = TTL_ORDER_AUTO;

    /* Per call, DENSE runs the reconstruction only when the plan does not hold W. */
    int64_t rebuild_macs;
    TTL_TRY(ttl_add_i64(&rebuild_macs, st.macs_dense, st.macs_reconstruct));
    const int64_t dense_macs = bound != NULL ? st.macs_dense : rebuild_macs;
    ttl_algo_t algo = opts->algo;
    ttl_order_t order = opts->order;
    if (order == TTL_ORDER_AUTO)
        order = st.macs_last_to_first < st.macs_first_to_last ? TTL_ORDER_LAST_TO_FIRST : TTL_ORDER_FIRST_TO_LAST;
    const int64_t seq_macs = order == TTL_ORDER_FIRST_TO_LAST ? st.macs_first_to_last : st.macs_last_to_first;
    if (algo == TTL_ALGO_AUTO && bound == NULL) {
        /* Unbound: the multiply-add rule, as before binding existed (cpu_internal.h says why). */
        algo = seq_macs <= dense_macs ? TTL_ALGO_SEQUENTIAL : TTL_ALGO_DENSE;
        p.info.reason = algo == TTL_ALGO_SEQUENTIAL ? REASON_AUTO_SEQUENTIAL : REASON_AUTO_DENSE;
    } else if (algo == TTL_ALGO_AUTO) {
        const double dense_rate = batch == 1 ? TTL_CPU_RATE_GEMV : TTL_CPU_RATE_GEMM;
        const int seq = ttl_cpu_time(seq_macs, TTL_CPU_RATE_TT) <= ttl_cpu_time(dense_macs, dense_rate);
        algo = seq ? TTL_ALGO_SEQUENTIAL : TTL_ALGO_DENSE;
        p.info.reason = seq ? REASON_BOUND_SEQUENTIAL : REASON_BOUND_DENSE;
    }
    p.info.algo = algo;

    if (algo == TTL_ALGO_SEQUENTIAL) {
        TTL_TRY(ttl_tt_seq_init(&p.seq, desc, TTL_LEFT_RANK_NONE, order, batch));
        p.info.order = order;
        p.info.macs = seq_macs;
        p.info.workspace_bytes = p.seq.workspace_bytes;
    } else if (algo == TTL_ALGO_DENSE) {
        p.info.macs = dense_macs;
        if (batch > 0) {
            size_t w_bytes, chain_bytes, total;
            /* one core is W itself: nothing to chain */
            if (desc->num_cores > 1) TTL_TRY(ttl_tt_chain_scratch(&p.chain_elems, desc, 1));
            TTL_TRY(ttl_bytes(&w_bytes, st.dense_params, sizeof(float)));
            TTL_TRY(ttl_bytes(&chain_bytes, p.chain_elems, sizeof(float)));
            if (__builtin_add_overflow(ttl_align_up(w_bytes), chain_bytes, &total)) return TTL_STATUS_OVERFLOW;
            if (st.dense_params > INT32_MAX || batch > INT32_MAX) return TTL_STATUS_UNSUPPORTED; /* int extents */
            p.info.workspace_bytes = total;
            if (bound != NULL) { /* W lives in the plan: the call needs no workspace */
                p.info.workspace_bytes = 0;
                p.info.persistent_bytes = w_bytes;
            }
        }
    } else { /* REFERENCE: W in double, then the product, on every call */
        p.info.macs = rebuild_macs;
    }

    ttl_fc_plan_t *out = malloc(sizeof(*out));
    if (out == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    if (algo == TTL_ALGO_DENSE && bound != NULL && batch > 0) {
        const ttl_status_t built = ttl_tt_chain_build(&p.W, desc, bound, NULL, 1);
        if (built != TTL_STATUS_SUCCESS) {
            free(out);
            return built;
        }
    }
    *out = p;
    *plan = out;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_fc_plan_info(const ttl_fc_plan_t *plan, ttl_plan_info_t *info) {
    if (plan == NULL || info == NULL) return TTL_STATUS_NULL_POINTER;
    *info = plan->info;
    return TTL_STATUS_SUCCESS;
}

void ttl_fc_plan_destroy(ttl_fc_plan_t *plan) {
    if (plan == NULL) return;
    free(plan->W);
    free(plan);
}

// ---------------------------------------------------------------------------------------------------------------
// forward
// ---------------------------------------------------------------------------------------------------------------

static void dense_forward(const ttl_fc_plan_t *p, float *y, const float *x, const float *cores, const float *bias,
                          void *ws) {
    const int64_t M = p->desc.out_features, N = p->desc.in_features, B = p->batch;
    const float *W = p->W;
    if (W == NULL) { /* unbound: W first in the workspace, the chain's scratch after it */
        float *built = (float *)ws;
        float *scratch = (float *)((char *)ws + ttl_align_up((size_t)(M * N) * sizeof(float)));
        ttl_tt_chain_run(built, &p->desc, cores, NULL, 1, scratch);
        W = built;
    }
    float beta = 0.0f;
    if (bias != NULL) { /* y starts as the bias and the product accumulates onto it */
        for (int64_t b = 0; b < B; ++b) memcpy(y + b * M, bias, (size_t)M * sizeof(float));
        beta = 1.0f;
    }
    if (B == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)M, (int)N, 1.0f, W, (int)N, x, 1, beta, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)M, (int)N, 1.0f, x, (int)N, W, (int)N,
                    beta, y, (int)M);
}

ttl_status_t ttl_fc_forward(const ttl_fc_plan_t *plan, float *y, const float *x, const float *cores,
                            const float *bias, void *ws, size_t ws_bytes) {
    if (plan == NULL || y == NULL || x == NULL || cores == NULL) return TTL_STATUS_NULL_POINTER;
    if (plan->bound_cores != NULL && cores != plan->bound_cores) return TTL_STATUS_BAD_ARGUMENT;
    if (plan->batch == 0) return TTL_STATUS_SUCCESS;
    if (ws_bytes < plan->info.workspace_bytes) return TTL_STATUS_INSUFFICIENT_WORKSPACE;
    if (ws == NULL && plan->info.workspace_bytes > 0) return TTL_STATUS_NULL_POINTER;
    const size_t fl = sizeof(float);
    if (ttl_forward_buffers_overlap(y, (size_t)(plan->batch * plan->desc.out_features) * fl, x,
                                    (size_t)(plan->batch * plan->desc.in_features) * fl, ws,
                                    plan->info.workspace_bytes))
        return TTL_STATUS_BAD_ARGUMENT;
    switch (plan->info.algo) {
    case TTL_ALGO_SEQUENTIAL:
        ttl_tt_seq_run(&plan->seq, y, x, cores, bias, plan->batch, ws);
        return TTL_STATUS_SUCCESS;
    case TTL_ALGO_DENSE: dense_forward(plan, y, x, cores, bias, ws); return TTL_STATUS_SUCCESS;
    default: return ttl_fc_forward_ref(y, &plan->desc, cores, bias, x, plan->batch);
    }
}
