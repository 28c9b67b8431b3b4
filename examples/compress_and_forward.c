/*
 * Compress a dense Linear weight W[M, N] with TT-SVD, then run the TT-FC forward on a batch and compare it with
 * the dense layer. Run: ./example_compress_and_forward
 *
 * The weight here is made to have low TT rank plus a little noise, as trained layers roughly do; a random
 * dense matrix has full TT rank and does not compress.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ttl/ttl.h"

#define CHECK(call)                                                                                                \
    do {                                                                                                           \
        ttl_status_t st_ = (call);                                                                                 \
        if (st_ != TTL_STATUS_SUCCESS) {                                                                           \
            fprintf(stderr, "%s:%d: %s -> %s\n", __FILE__, __LINE__, #call, ttl_status_string(st_));               \
            exit(1);                                                                                               \
        }                                                                                                          \
    } while (0)

static float uniform(unsigned *state) { /* small LCG: reproducible, no zeros */
    *state = *state * 1664525u + 1013904223u;
    return ((float)(*state >> 8) / 16777216.0f) * 1.8f - 0.9f + 0.05f;
}

int main(void) {
    enum { BATCH = 8 };
    /* W is [M, N] = [256, 1024]; modes chosen by the library. */
    ttl_fc_desc_t shape = {.out_features = 256, .in_features = 1024, .num_cores = 4};
    CHECK(ttl_factorize(shape.out_modes, shape.out_features, shape.num_cores));
    CHECK(ttl_factorize(shape.in_modes, shape.in_features, shape.num_cores));

    /* A dense weight of TT rank 3 plus 0.1% noise. */
    ttl_fc_desc_t truth = shape;
    for (int k = 0; k <= truth.num_cores; ++k) truth.ranks[k] = (k == 0 || k == truth.num_cores) ? 1 : 3;
    int64_t truth_params;
    CHECK(ttl_fc_param_count(&truth_params, &truth));
    unsigned rng = 42;
    float *truth_cores = malloc(sizeof(float) * (size_t)truth_params);
    for (int64_t i = 0; i < truth_params; ++i) truth_cores[i] = uniform(&rng);
    const int64_t M = shape.out_features, N = shape.in_features;
    float *W = malloc(sizeof(float) * (size_t)(M * N));
    CHECK(ttl_fc_reconstruct(W, &truth, truth_cores));
    for (int64_t i = 0; i < M * N; ++i) W[i] += 1e-3f * uniform(&rng) * fabsf(W[i]);

    /* Compress: relative error at most 1%, ranks at most 16. */
    ttl_compress_opts_t opts = {.eps = 1e-2, .max_rank = 16};
    ttl_fc_desc_t tt;
    float *cores = NULL;
    ttl_compress_report_t rep;
    CHECK(ttl_fc_compress(&tt, &cores, &rep, &shape, W, &opts));
    printf("TT-SVD: ranks");
    for (int k = 0; k <= tt.num_cores; ++k) printf(" %lld", (long long)tt.ranks[k]);
    printf(", %lld params (%.0fx smaller), relative error %.2e\n", (long long)rep.params,
           (double)(M * N) / (double)rep.params, rep.rel_err);

    /* Plan, query the workspace, run. */
    ttl_fc_plan_t *plan;
    CHECK(ttl_fc_plan_create(&plan, &tt, BATCH, NULL));
    ttl_plan_info_t info;
    CHECK(ttl_fc_plan_info(plan, &info));
    printf("plan: %s (%s order), %zu workspace bytes: %s\n", ttl_algo_name(info.algo), ttl_order_name(info.order),
           info.workspace_bytes, info.reason);
    void *ws = malloc(info.workspace_bytes ? info.workspace_bytes : 1);
    float *x = malloc(sizeof(float) * (size_t)(BATCH * N));
    float *y = malloc(sizeof(float) * (size_t)(BATCH * M));
    for (int64_t i = 0; i < BATCH * N; ++i) x[i] = uniform(&rng);
    CHECK(ttl_fc_forward(plan, y, x, cores, NULL, ws, info.workspace_bytes));

    /* Compare with the dense layer y = W x. */
    double num = 0, den = 0;
    for (int64_t b = 0; b < BATCH; ++b)
        for (int64_t i = 0; i < M; ++i) {
            double acc = 0;
            for (int64_t j = 0; j < N; ++j) acc += (double)W[i * N + j] * x[b * N + j];
            num += (y[b * M + i] - acc) * (y[b * M + i] - acc);
            den += acc * acc;
        }
    const double err = sqrt(num / den);
    printf("TT layer vs dense layer on a batch of %d: relative error %.2e\n", BATCH, err);

    ttl_fc_plan_destroy(plan);
    ttl_free(cores);
    free(ws), free(x), free(y), free(W), free(truth_cores);
    return err <= 2e-2 ? 0 : 1;
}
