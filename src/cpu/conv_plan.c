/*
 * TT-conv plans on the CPU: choose an algorithm once for a descriptor and activation shape, size the workspace
 * exactly, then run it as often as needed.
 *
 *   SPATIAL_FIRST   r_0 filters per input channel, then the channel TT per output pixel (conv_spatial_first.c)
 *   CHANNELS_FIRST  channel TT per input pixel, then a kh x kw conv over r_0 (conv_channels_first.c)
 *   DENSE           K rebuilt in float, then im2col and one GEMM of inner size C kh kw per chunk of output pixels
 *                   (conv_dense.c); K in the workspace on every call, or, with bound weights, once here into memory
 *                   the plan owns
 *   REFERENCE       ttl_conv_forward_ref, which allocates its own scratch
 *
 * AUTO without bound weights takes the fewest multiply-adds, DENSE paying the kernel reconstruction (it runs on
 * every call). With bound weights it takes the shortest estimated time: multiply-adds over the rates of
 * cpu_internal.h (the dense GEMM about three times the rate of both factorized orders), DENSE without the
 * reconstruction.
 *
 * The channel TT runs in the cheaper order for its algorithm unless the options name one. The multiply-adds are
 * counted on the schedule that runs: the left rank r_0 is an input index for spatial first and an output index
 * for channels first, and is carried through every step but the one that contracts or produces it.
 */
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "cpu/cpu_internal.h"

struct ttl_conv_plan {
    ttl_conv_geom_t geom;
    ttl_plan_info_t info;
    const float *bound_cores; /* the weights bound at creation, or NULL */
    ttl_conv_sf_t sf;         /* SPATIAL_FIRST */
    ttl_conv_cf_t cf;         /* CHANNELS_FIRST */
    ttl_conv_dense_t dn;      /* DENSE (holds K when bound) */
};

static const char REASON_REQUESTED[] = "requested by the caller";
static const char REASON_AUTO_SPATIAL[] = "fewest multiply-adds: spatial filters first, then the channel TT";
static const char REASON_AUTO_CHANNELS[] = "fewest multiply-adds: channel TT first, then the spatial filters";
static const char REASON_AUTO_DENSE[] = "fewest multiply-adds: rebuilding K and a dense convolution";
static const char REASON_BOUND_SPATIAL[] = "shortest estimated time: spatial filters first, then the channel TT";
static const char REASON_BOUND_CHANNELS[] = "shortest estimated time: channel TT first, then the spatial filters";
static const char REASON_BOUND_DENSE[] = "shortest estimated time: a dense convolution with K built at plan time";

// ---------------------------------------------------------------------------------------------------------------
// option checks
// ---------------------------------------------------------------------------------------------------------------

/* The algorithms a CPU conv plan runs; ttl_plan_choice_check gives BAD_ARGUMENT / UNSUPPORTED for the rest. */
static ttl_status_t check_conv_opts(const ttl_plan_opts_t *opts) {
    const unsigned supported = TTL_ALGO_BIT(TTL_ALGO_AUTO) | TTL_ALGO_BIT(TTL_ALGO_REFERENCE) |
                               TTL_ALGO_BIT(TTL_ALGO_SPATIAL_FIRST) | TTL_ALGO_BIT(TTL_ALGO_CHANNELS_FIRST) |
                               TTL_ALGO_BIT(TTL_ALGO_DENSE);
    return ttl_plan_choice_check(opts->algo, opts->order, supported);
}

// ---------------------------------------------------------------------------------------------------------------
// cost of each algorithm
// ---------------------------------------------------------------------------------------------------------------

/* out_px (kh kw r_0 C + channel TT per output pixel) */
static ttl_status_t spatial_first_macs(int64_t *macs, const ttl_conv_geom_t *g, const ttl_tt_seq_t *seq) {
    const ttl_conv_desc_t *d = &g->desc;
    int64_t per_px, out_px;
    TTL_TRY(ttl_mul_i64(&per_px, d->kernel_h * d->kernel_w * d->ranks[0], d->in_channels));
    TTL_TRY(ttl_add_i64(&per_px, per_px, seq->macs_per_row));
    TTL_TRY(ttl_mul_i64(&out_px, g->out_h * g->out_w, g->shape.batch));
    return ttl_mul_i64(macs, per_px, out_px);
}

/* in_px (channel TT per input pixel) + out_px kh kw r_0 S */
static ttl_status_t channels_first_macs(int64_t *macs, const ttl_conv_geom_t *g, const ttl_tt_seq_t *seq) {
    const ttl_conv_desc_t *d = &g->desc;
    int64_t in_px, out_px, a, b;
    TTL_TRY(ttl_mul_i64(&in_px, g->shape.height * g->shape.width, g->shape.batch));
    TTL_TRY(ttl_mul_i64(&out_px, g->out_h * g->out_w, g->shape.batch));
    TTL_TRY(ttl_mul_i64(&a, in_px, seq->macs_per_row));
    TTL_TRY(ttl_mul_i64(&b, d->kernel_h * d->kernel_w * d->ranks[0], d->out_channels));
    TTL_TRY(ttl_mul_i64(&b, b, out_px));
    return ttl_add_i64(macs, a, b);
}

// ---------------------------------------------------------------------------------------------------------------
// plan
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t ttl_conv_plan_create(ttl_conv_plan_t **plan, const ttl_conv_desc_t *desc,
                                  const ttl_conv_shape_t *shape, const ttl_plan_opts_t *opts) {
    if (plan == NULL) return TTL_STATUS_NULL_POINTER;
    ttl_conv_stats_t st;
    TTL_TRY(ttl_conv_stats(&st, desc, shape));
    const ttl_plan_opts_t defaults = {TTL_ALGO_AUTO, TTL_ORDER_AUTO, NULL};
    if (opts == NULL) opts = &defaults;
    TTL_TRY(check_conv_opts(opts));
    const float *bound = opts->cores;

    ttl_conv_plan_t p;
    memset(&p, 0, sizeof(p));
    p.geom.desc = *desc;
    p.geom.shape = *shape;
    p.geom.out_h = st.out_h;
    p.geom.out_w = st.out_w;
    p.bound_cores = bound;
    p.info.reason = REASON_REQUESTED;
    p.info.order = TTL_ORDER_AUTO;

    /* Cost every candidate on the schedule it would run; per call, DENSE runs the reconstruction only when the
     * plan does not hold K. */
    int64_t sf_macs = 0, cf_macs = 0, rebuild_macs;
    TTL_TRY(ttl_add_i64(&rebuild_macs, st.macs_dense, st.macs_reconstruct));
    const int64_t dense_macs = bound != NULL ? st.macs_dense : rebuild_macs;
    ttl_algo_t algo = opts->algo;
    if (algo == TTL_ALGO_AUTO || algo == TTL_ALGO_SPATIAL_FIRST) {
        TTL_TRY(ttl_conv_sf_init(&p.sf, &p.geom, opts->order));
        TTL_TRY(spatial_first_macs(&sf_macs, &p.geom, &p.sf.seq));
    }
    if (algo == TTL_ALGO_AUTO || algo == TTL_ALGO_CHANNELS_FIRST) {
        TTL_TRY(ttl_conv_cf_init(&p.cf, &p.geom, opts->order));
        TTL_TRY(channels_first_macs(&cf_macs, &p.geom, &p.cf.seq));
    }
    if (algo == TTL_ALGO_AUTO && bound == NULL) {
        /* Unbound: the multiply-add rule, as before binding existed (cpu_internal.h says why). */
        algo = TTL_ALGO_SPATIAL_FIRST;
        p.info.reason = REASON_AUTO_SPATIAL;
        if (cf_macs < sf_macs) algo = TTL_ALGO_CHANNELS_FIRST, p.info.reason = REASON_AUTO_CHANNELS;
        if (dense_macs < ttl_min_i64(sf_macs, cf_macs)) algo = TTL_ALGO_DENSE, p.info.reason = REASON_AUTO_DENSE;
    } else if (algo == TTL_ALGO_AUTO) {
        /* Both factorized orders run at the TT rate, so the cheaper of them is the one with fewer multiply-adds. */
        algo = TTL_ALGO_SPATIAL_FIRST;
        p.info.reason = REASON_BOUND_SPATIAL;
        if (cf_macs < sf_macs) algo = TTL_ALGO_CHANNELS_FIRST, p.info.reason = REASON_BOUND_CHANNELS;
        if (ttl_cpu_time(dense_macs, TTL_CPU_RATE_GEMM) <
            ttl_cpu_time(ttl_min_i64(sf_macs, cf_macs), TTL_CPU_RATE_TT))
            algo = TTL_ALGO_DENSE, p.info.reason = REASON_BOUND_DENSE;
    }
    p.info.algo = algo;
    switch (algo) {
    case TTL_ALGO_SPATIAL_FIRST:
        p.info.order = p.sf.seq.order;
        p.info.macs = sf_macs;
        p.info.workspace_bytes = p.sf.workspace_bytes;
        break;
    case TTL_ALGO_CHANNELS_FIRST:
        p.info.order = p.cf.seq.order;
        p.info.macs = cf_macs;
        p.info.workspace_bytes = p.cf.workspace_bytes;
        break;
    case TTL_ALGO_DENSE:
        TTL_TRY(ttl_conv_dense_init(&p.dn, &p.geom, bound));
        p.info.macs = dense_macs;
        p.info.workspace_bytes = p.dn.workspace_bytes;
        if (p.dn.kernel != NULL) p.info.persistent_bytes = (size_t)p.dn.kernel_elems * sizeof(float);
        break;
    default: /* REFERENCE: K in double, then the direct convolution, on every call */
        p.info.macs = rebuild_macs;
        break;
    }

    ttl_conv_plan_t *out = malloc(sizeof(*out));
    if (out == NULL) {
        ttl_conv_dense_fini(&p.dn);
        return TTL_STATUS_OUT_OF_MEMORY;
    }
    *out = p;
    *plan = out;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_conv_plan_info(const ttl_conv_plan_t *plan, ttl_plan_info_t *info) {
    if (plan == NULL || info == NULL) return TTL_STATUS_NULL_POINTER;
    *info = plan->info;
    return TTL_STATUS_SUCCESS;
}

void ttl_conv_plan_destroy(ttl_conv_plan_t *plan) {
    if (plan == NULL) return;
    ttl_conv_dense_fini(&plan->dn);
    free(plan);
}

// ---------------------------------------------------------------------------------------------------------------
// forward
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t ttl_conv_forward(const ttl_conv_plan_t *plan, float *y, const float *x, const float *cores,
                              const float *bias, void *ws, size_t ws_bytes) {
    if (plan == NULL || y == NULL || x == NULL || cores == NULL) return TTL_STATUS_NULL_POINTER;
    if (plan->bound_cores != NULL && cores != plan->bound_cores) return TTL_STATUS_BAD_ARGUMENT;
    if (plan->geom.shape.batch == 0) return TTL_STATUS_SUCCESS;
    if (ws_bytes < plan->info.workspace_bytes) return TTL_STATUS_INSUFFICIENT_WORKSPACE;
    if (ws == NULL && plan->info.workspace_bytes > 0) return TTL_STATUS_NULL_POINTER;
    const ttl_conv_geom_t *g = &plan->geom;
    const int64_t B = g->shape.batch;
    const size_t x_bytes = (size_t)(B * g->desc.in_channels * g->shape.height * g->shape.width) * sizeof(float);
    const size_t y_bytes = (size_t)(B * g->desc.out_channels * g->out_h * g->out_w) * sizeof(float);
    if (ttl_forward_buffers_overlap(y, y_bytes, x, x_bytes, ws, plan->info.workspace_bytes))
        return TTL_STATUS_BAD_ARGUMENT;
    switch (plan->info.algo) {
    case TTL_ALGO_SPATIAL_FIRST: ttl_conv_sf_run(&plan->sf, g, y, x, cores, bias, ws); return TTL_STATUS_SUCCESS;
    case TTL_ALGO_CHANNELS_FIRST: ttl_conv_cf_run(&plan->cf, g, y, x, cores, bias, ws); return TTL_STATUS_SUCCESS;
    case TTL_ALGO_DENSE: ttl_conv_dense_run(&plan->dn, g, y, x, cores, bias, ws); return TTL_STATUS_SUCCESS;
    default: return ttl_conv_forward_ref(y, &g->desc, cores, bias, x, &g->shape);
    }
}
