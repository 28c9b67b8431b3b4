/*
 * CPU runner: for each case and batch, every libttl CPU algorithm is checked against the reference
 * (ttl_*_forward_ref) and then timed beside the dense OpenBLAS baseline of the same layer, in the same run:
 *   FC:   W reconstructed once; cblas_sgemv at batch 1, cblas_sgemm (y = x W^T) above.
 *   conv: K reconstructed once; im2col + cblas_sgemm per image (the Caffe scheme), NCHW.
 * Correctness: the reference runs once per case on the first few samples (1 or 2: the reference is plain loops
 * in double, too slow for whole batches of the big layers); every timed path gets those samples at the head of
 * its first input buffer, and its output rows for them are compared. Inputs rotate among several buffers so
 * that the input is not always in cache. No bias: it is the same O(M) cost on both sides.
 * The AUTO and DENSE plans bind the cores at plan time, as a caller serving a fixed layer does: DENSE builds W/K
 * once, outside the timing, like the baseline, and AUTO weighs its candidates by estimated time. The factorized
 * algorithms run unbound (binding would not change what they do per call).
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "data.h"
#include "report.h"
#include "runners.h"
#include "timer.h"

// Relative error above which a row is reported as failing its check (fp32 paths agree to ~1e-6).
#define CHECK_TOLERANCE 1e-4
// Inputs rotate among buffers holding at least this many bytes together (above the last-level cache).
#define ROTATE_BYTES (64LL << 20)
#define MAX_BUFFERS 8

// ---- one case at one batch ----------------------------------------------------------------------------------

typedef struct cpu_problem {
    const bench_case_t *c;
    int is_fc;
    ttl_fc_desc_t fc;
    ttl_conv_desc_t conv;
    ttl_conv_shape_t shape; // conv: batch, size, NCHW
    int64_t batch;
    int64_t x_sample, y_sample; // floats per sample
    int64_t M, N;               // FC: out and in features; conv: S and C kh kw
    int64_t out_h, out_w;
    const float *cores;
    const float *dense; // reconstructed W [M, N] or K [S, C, kh, kw]
    float *x[MAX_BUFFERS];
    int nbuf;
    float *y;
    float *col; // conv im2col scratch [C kh kw, OH OW]
    const float *ref_x, *ref_y;
    int64_t ref_samples;
} cpu_problem_t;

// ---- dense OpenBLAS baselines -------------------------------------------------------------------------------

static void im2col_nchw(float *col, const float *x, const ttl_conv_desc_t *d, int64_t h, int64_t w, int64_t oh,
                        int64_t ow) {
    const int64_t kh = d->kernel_h, kw = d->kernel_w;
    for (int64_t c = 0; c < d->in_channels; ++c)
        for (int64_t p = 0; p < kh; ++p)
            for (int64_t q = 0; q < kw; ++q) {
                float *dst = col + ((c * kh + p) * kw + q) * oh * ow;
                const float *src = x + c * h * w;
                for (int64_t i = 0; i < oh; ++i) {
                    const int64_t hi = i * d->stride_h - d->pad_h + p * d->dilation_h;
                    for (int64_t j = 0; j < ow; ++j) {
                        const int64_t wj = j * d->stride_w - d->pad_w + q * d->dilation_w;
                        dst[i * ow + j] = (hi >= 0 && hi < h && wj >= 0 && wj < w) ? src[hi * w + wj] : 0.0f;
                    }
                }
            }
}

static int dense_call(void *ctx, int iter) {
    const cpu_problem_t *p = ctx;
    const float *x = p->x[iter % p->nbuf];
    if (p->is_fc) {
        const int M = (int)p->M, N = (int)p->N, B = (int)p->batch;
        if (B == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, M, N, 1.0f, p->dense, N, x, 1, 0.0f, p->y, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, M, N, 1.0f, x, N, p->dense, N, 0.0f, p->y, M);
        return 0;
    }
    const int S = (int)p->M, CKK = (int)p->N, OHW = (int)(p->out_h * p->out_w);
    for (int64_t b = 0; b < p->batch; ++b) {
        im2col_nchw(p->col, x + b * p->x_sample, &p->conv, p->shape.height, p->shape.width, p->out_h, p->out_w);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S, OHW, CKK, 1.0f, p->dense, CKK, p->col, OHW, 0.0f,
                    p->y + b * p->y_sample, OHW);
    }
    return 0;
}

// ---- libttl plans ---------------------------------------------------------------------------------------------

typedef struct plan_call {
    const cpu_problem_t *p;
    const ttl_fc_plan_t *fc;
    const ttl_conv_plan_t *conv;
    void *ws;
    size_t ws_bytes;
    ttl_status_t status; // of the first failing call
} plan_call_t;

static int plan_call(void *ctx, int iter) {
    plan_call_t *c = ctx;
    const cpu_problem_t *p = c->p;
    const float *x = p->x[iter % p->nbuf];
    c->status = c->fc ? ttl_fc_forward(c->fc, p->y, x, p->cores, NULL, c->ws, c->ws_bytes)
                      : ttl_conv_forward(c->conv, p->y, x, p->cores, NULL, c->ws, c->ws_bytes);
    return c->status != TTL_STATUS_SUCCESS;
}

typedef struct cpu_algo {
    const char *name;
    ttl_plan_opts_t opts;
    int bind; // 1: the plan binds the case's cores (opts.cores)
} cpu_algo_t;

static const cpu_algo_t k_fc_algos[] = {
    {"auto", {TTL_ALGO_AUTO, TTL_ORDER_AUTO, NULL}, 1},
    {"sequential_f2l", {TTL_ALGO_SEQUENTIAL, TTL_ORDER_FIRST_TO_LAST, NULL}, 0},
    {"sequential_l2f", {TTL_ALGO_SEQUENTIAL, TTL_ORDER_LAST_TO_FIRST, NULL}, 0},
    {"dense", {TTL_ALGO_DENSE, TTL_ORDER_AUTO, NULL}, 1},
};
static const cpu_algo_t k_conv_algos[] = {
    {"auto", {TTL_ALGO_AUTO, TTL_ORDER_AUTO, NULL}, 1},
    {"spatial_first", {TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, NULL}, 0},
    {"channels_first", {TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, NULL}, 0},
    {"dense", {TTL_ALGO_DENSE, TTL_ORDER_AUTO, NULL}, 1},
};

// ---- helpers ----------------------------------------------------------------------------------------------------

// Error of the first ref_samples output rows of p->y against the reference, and the check text of the row.
static double check_output(bench_row_t *row, const cpu_problem_t *p, int *failures) {
    const int64_t n = p->ref_samples < p->batch ? p->ref_samples : p->batch;
    const double err = bench_rel_err(p->y, p->ref_y, n * p->y_sample);
    const int ok = err <= CHECK_TOLERANCE;
    snprintf(row->check, sizeof row->check, "%sref %lld/%lld", ok ? "" : "FAIL ", (long long)n,
             (long long)p->batch);
    if (!ok) ++*failures;
    return err;
}

// No separate warm-up: the correctness call just before is one.
static void time_row(bench_row_t *row, const bench_options_t *opt, bench_call_fn fn, void *ctx) {
    const bench_repeat_t rep = {
        .warmup = 0, .min_repeats = 3, .max_repeats = opt->max_repeats, .budget_s = opt->budget_s};
    double median = 0.0;
    if (bench_time_calls(&median, &row->repeats, fn, ctx, &rep) != 0) {
        row->supported = 0;
        return;
    }
    row->ms = 1e3 * median;
}

static void fill_inputs(cpu_problem_t *p, uint64_t seed) {
    const int64_t x_count = p->batch * p->x_sample;
    const int64_t x_bytes = x_count * (int64_t)sizeof(float);
    p->nbuf = (int)((ROTATE_BYTES + x_bytes - 1) / x_bytes);
    if (p->nbuf > MAX_BUFFERS) p->nbuf = MAX_BUFFERS;
    if (p->nbuf < 1) p->nbuf = 1;
    for (int i = 0; i < p->nbuf; ++i) {
        p->x[i] = bench_alloc((size_t)x_bytes);
        bench_fill_random(p->x[i], x_count, seed + 1000u * (uint64_t)i, 1.0f);
    }
    // The reference samples head the first buffer: every check runs on buffer 0.
    const int64_t n = p->ref_samples < p->batch ? p->ref_samples : p->batch;
    memcpy(p->x[0], p->ref_x, (size_t)(n * p->x_sample) * sizeof(float));
}

static void free_inputs(cpu_problem_t *p) {
    for (int i = 0; i < p->nbuf; ++i) free(p->x[i]);
    p->nbuf = 0;
}

// Issue 2's target, judged on AUTO (what a caller gets): VGG FC6 TT4 at least 20x faster than OpenBLAS sgemv
// at batch 1 and 5x faster than sgemm at batch 100.
static void cpu_targets(bench_row_t *row, const cpu_problem_t *p) {
    if (strcmp(p->c->name, "vgg_fc6_tt4") != 0) return;
    if (p->batch == 1) bench_row_target(row, "x_openblas>=20", 20.0, row->speedup, 1);
    if (p->batch == 100) bench_row_target(row, "x_openblas>=5", 5.0, row->speedup, 1);
}

// Short names of the core orders for the algorithm column.
static const char *order_abbrev(ttl_order_t order) {
    return order == TTL_ORDER_FIRST_TO_LAST ? "f2l" : order == TTL_ORDER_LAST_TO_FIRST ? "l2f" : "auto";
}

// ---- one batch --------------------------------------------------------------------------------------------------

static void plan_create(plan_call_t *call, ttl_status_t *st, const cpu_problem_t *p, const ttl_plan_opts_t *o,
                        ttl_plan_info_t *info) {
    memset(call, 0, sizeof *call);
    call->p = p;
    if (p->is_fc) {
        ttl_fc_plan_t *plan = NULL;
        *st = ttl_fc_plan_create(&plan, &p->fc, p->batch, o);
        if (*st == TTL_STATUS_SUCCESS) *st = ttl_fc_plan_info(plan, info);
        call->fc = plan;
    } else {
        ttl_conv_plan_t *plan = NULL;
        *st = ttl_conv_plan_create(&plan, &p->conv, &p->shape, o);
        if (*st == TTL_STATUS_SUCCESS) *st = ttl_conv_plan_info(plan, info);
        call->conv = plan;
    }
}

static void plan_destroy(plan_call_t *call) {
    if (call->fc) ttl_fc_plan_destroy((ttl_fc_plan_t *)call->fc);
    if (call->conv) ttl_conv_plan_destroy((ttl_conv_plan_t *)call->conv);
    free(call->ws);
}

static void row_common(bench_row_t *row, const cpu_problem_t *p, int64_t params, double compression) {
    bench_row_init(row);
    row->case_name = p->c->name;
    row->op = p->is_fc ? "fc" : "conv";
    bench_case_shape_text(row->shape, (int)sizeof row->shape, p->c);
    row->batch = p->batch;
    row->params = params;
    row->compression = compression;
}

static int run_batch(cpu_problem_t *p, const bench_options_t *opt, bench_report_t *report, int64_t params,
                     double compression, int64_t dense_macs, uint64_t seed) {
    int failures = 0;
    fill_inputs(p, seed);

    // Dense baseline first: its time is every row's dense_ms.
    bench_row_t base;
    row_common(&base, p, params, compression);
    snprintf(base.algo, sizeof base.algo, "openblas");
    snprintf(base.chosen, sizeof base.chosen, "%s",
             p->is_fc ? (p->batch == 1 ? "sgemv" : "sgemm") : "im2col+sgemm");
    dense_call(p, 0);
    base.rel_err = check_output(&base, p, &failures);
    time_row(&base, opt, dense_call, p);
    base.dense_ms = base.ms;
    base.speedup = 1.0;
    base.macs = dense_macs;
    base.gflops = 2.0 * (double)dense_macs / (base.ms * 1e6);
    base.weight_bytes = (size_t)(p->M * p->N) * sizeof(float);
    bench_report_row(report, &base);

    const cpu_algo_t *algos = p->is_fc ? k_fc_algos : k_conv_algos;
    const int num_algos = p->is_fc ? (int)(sizeof k_fc_algos / sizeof k_fc_algos[0])
                                   : (int)(sizeof k_conv_algos / sizeof k_conv_algos[0]);
    for (int a = 0; a < num_algos; ++a) {
        if (opt->algo != NULL && strcmp(algos[a].name, opt->algo) != 0) continue;
        bench_row_t row;
        row_common(&row, p, params, compression);
        snprintf(row.algo, sizeof row.algo, "%s", algos[a].name);
        row.dense_ms = base.ms;

        plan_call_t call;
        ttl_plan_info_t info;
        ttl_status_t st;
        ttl_plan_opts_t opts = algos[a].opts;
        if (algos[a].bind) opts.cores = p->cores;
        plan_create(&call, &st, p, &opts, &info);
        if (st != TTL_STATUS_SUCCESS) {
            row.supported = 0;
            if (st != TTL_STATUS_UNSUPPORTED) {
                snprintf(row.check, sizeof row.check, "FAIL plan: %s", ttl_status_string(st));
                ++failures;
            }
            bench_report_row(report, &row);
            plan_destroy(&call);
            continue;
        }
        // What ran: AUTO's choice, or the core order a named algorithm picked for itself.
        if (algos[a].opts.algo == TTL_ALGO_AUTO)
            snprintf(row.chosen, sizeof row.chosen, "%s%s%s", ttl_algo_name(info.algo),
                     info.order != TTL_ORDER_AUTO ? "/" : "",
                     info.order != TTL_ORDER_AUTO ? order_abbrev(info.order) : "");
        else if (algos[a].opts.order == TTL_ORDER_AUTO && info.order != TTL_ORDER_AUTO)
            snprintf(row.chosen, sizeof row.chosen, "%s", order_abbrev(info.order));
        row.macs = info.macs;
        row.workspace_bytes = info.workspace_bytes;
        row.persistent_bytes = info.persistent_bytes;
        row.weight_bytes =
            info.algo == TTL_ALGO_DENSE ? (size_t)(p->M * p->N) * sizeof(float) : (size_t)params * sizeof(float);
        call.ws_bytes = info.workspace_bytes;
        call.ws = info.workspace_bytes ? bench_alloc(info.workspace_bytes) : NULL;

        // Check before timing.
        if (plan_call(&call, 0) != 0) {
            row.supported = 0;
            snprintf(row.check, sizeof row.check, "FAIL forward: %s", ttl_status_string(call.status));
            ++failures;
        } else {
            row.rel_err = check_output(&row, p, &failures);
            time_row(&row, opt, plan_call, &call);
            row.speedup = base.ms / row.ms;
            row.gflops = 2.0 * (double)info.macs / (row.ms * 1e6);
            if (algos[a].opts.algo == TTL_ALGO_AUTO) cpu_targets(&row, p);
        }
        bench_report_row(report, &row);
        plan_destroy(&call);
    }
    free_inputs(p);
    return failures;
}

// ---- one case ---------------------------------------------------------------------------------------------------

static int run_case(const bench_case_t *c, const bench_options_t *opt, bench_report_t *report) {
    cpu_problem_t p;
    memset(&p, 0, sizeof p);
    p.c = c;
    p.is_fc = c->op == BENCH_OP_FC;
    const uint64_t seed = bench_seed_of(c->name);
    int64_t params, dense_params, dense_macs_per_sample;
    double compression;
    float *cores, *dense;
    if (p.is_fc) {
        bench_case_fc_desc(&p.fc, c);
        ttl_fc_stats_t st;
        bench_check(ttl_fc_stats(&st, &p.fc, 1), "ttl_fc_stats");
        params = st.params, dense_params = st.dense_params, compression = st.compression;
        dense_macs_per_sample = st.macs_dense;
        p.M = p.fc.out_features, p.N = p.fc.in_features;
        p.x_sample = p.N, p.y_sample = p.M;
        cores = bench_fc_cores(&p.fc, seed);
        dense = bench_alloc((size_t)dense_params * sizeof(float));
        bench_check(ttl_fc_reconstruct(dense, &p.fc, cores), "ttl_fc_reconstruct");
    } else {
        bench_case_conv_desc(&p.conv, c);
        p.shape = (ttl_conv_shape_t){.batch = 1, .height = c->height, .width = c->width, .layout = TTL_LAYOUT_NCHW};
        ttl_conv_stats_t st;
        bench_check(ttl_conv_stats(&st, &p.conv, &p.shape), "ttl_conv_stats");
        params = st.params, dense_params = st.dense_params, compression = st.compression;
        dense_macs_per_sample = st.macs_dense;
        p.out_h = st.out_h, p.out_w = st.out_w;
        p.M = p.conv.out_channels, p.N = p.conv.in_channels * p.conv.kernel_h * p.conv.kernel_w;
        p.x_sample = p.conv.in_channels * c->height * c->width;
        p.y_sample = p.conv.out_channels * p.out_h * p.out_w;
        cores = bench_conv_cores(&p.conv, seed);
        dense = bench_alloc((size_t)dense_params * sizeof(float));
        bench_check(ttl_conv_reconstruct(dense, &p.conv, cores), "ttl_conv_reconstruct");
        p.col = bench_alloc((size_t)(p.N * p.out_h * p.out_w) * sizeof(float));
    }
    p.cores = cores;
    p.dense = dense;

    // The reference, once per case.
    const bench_reference_t ref = bench_reference(p.is_fc ? &p.fc : NULL, &p.conv, &p.shape, cores, p.x_sample,
                                                  p.y_sample, dense_macs_per_sample, seed);
    float *ref_x = ref.x, *ref_y = ref.y;
    p.ref_samples = ref.samples;
    p.ref_x = ref_x, p.ref_y = ref_y;

    int failures = 0;
    const int64_t single[2] = {opt->batch, 0};
    const int64_t *batches = opt->batch > 0 ? single : c->cpu_batches;
    for (int i = 0; i < BENCH_MAX_BATCHES && batches[i] > 0; ++i) {
        p.batch = batches[i];
        p.shape.batch = batches[i];
        p.y = bench_alloc((size_t)(p.batch * p.y_sample) * sizeof(float));
        failures += run_batch(&p, opt, report, params, compression, dense_macs_per_sample * p.batch, seed);
        free(p.y);
    }
    free(ref_x);
    free(ref_y);
    free(p.col);
    free(dense);
    free(cores);
    return failures;
}

int bench_cpu_run(const bench_options_t *opt, bench_report_t *report) {
    bench_report_set_number(report, "openblas_threads", openblas_get_num_threads());
    bench_report_set_string(report, "openblas", openblas_get_config());
    bench_report_begin_table(report);
    int count, failures = 0;
    const bench_case_t *cases = bench_cases(&count);
    for (int i = 0; i < count; ++i)
        if (bench_case_selected(&cases[i], opt->suite_flag, opt->patterns, opt->num_patterns))
            failures += run_case(&cases[i], opt, report);
    return failures;
}

int bench_cpu_algo_known(const char *name) {
    for (size_t i = 0; i < sizeof k_fc_algos / sizeof k_fc_algos[0]; ++i)
        if (strcmp(k_fc_algos[i].name, name) == 0) return 1;
    for (size_t i = 0; i < sizeof k_conv_algos / sizeof k_conv_algos[0]; ++i)
        if (strcmp(k_conv_algos[i].name, name) == 0) return 1;
    return 0;
}
