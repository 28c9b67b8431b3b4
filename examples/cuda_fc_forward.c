/*
 * A TT-FC layer on the GPU, as an inference server would hold one: the cores are uploaded once, a plan is made
 * per batch size (AUTO picks the algorithm), the workspace is allocated once from the plan's query, and forward
 * calls only enqueue work on the stream. The layer is VGG-16 FC6 (25088 -> 4096) at TT rank 4, 51,000x smaller
 * than the dense weight; it runs in strict fp32 and with the tensor cores allowed (3xTF32), each result checked
 * against the CPU reference. Run: ./example_cuda_fc_forward
 * (exits with 77, "skipped", when there is no CUDA device).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime_api.h>

#include "ttl/ttl.h"
#include "ttl/ttl_cuda.h"

#define CHECK(call)                                                                                                \
    do {                                                                                                           \
        ttl_status_t st_ = (call);                                                                                 \
        if (st_ != TTL_STATUS_SUCCESS) {                                                                           \
            fprintf(stderr, "%s:%d: %s -> %s\n", __FILE__, __LINE__, #call, ttl_status_string(st_));               \
            exit(1);                                                                                               \
        }                                                                                                          \
    } while (0)

#define CUDA_CHECK(call)                                                                                           \
    do {                                                                                                           \
        cudaError_t e_ = (call);                                                                                   \
        if (e_ != cudaSuccess) {                                                                                   \
            fprintf(stderr, "%s:%d: %s -> %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));               \
            exit(1);                                                                                               \
        }                                                                                                          \
    } while (0)

static float uniform(unsigned *state) { /* small LCG: reproducible, no zeros */
    *state = *state * 1664525u + 1013904223u;
    return ((float)(*state >> 8) / 16777216.0f) * 1.8f - 0.9f + 0.05f;
}

static float *random_floats(int64_t n, unsigned seed, float scale) {
    float *v = malloc((size_t)n * sizeof(float));
    if (v == NULL) exit(1);
    for (int64_t i = 0; i < n; ++i) v[i] = scale * uniform(&seed);
    return v;
}

int main(void) {
    int devices = 0;
    CHECK(ttl_cuda_device_count(&devices));
    if (devices == 0) {
        printf("no CUDA device: nothing to run\n");
        return 77;
    }
    enum { BATCH = 32 };
    const ttl_fc_desc_t desc = {.out_features = 4096,
                                .in_features = 25088,
                                .num_cores = 6,
                                .out_modes = {4, 4, 4, 4, 4, 4},
                                .in_modes = {2, 7, 8, 8, 7, 4},
                                .ranks = {1, 4, 4, 4, 4, 4, 1}};
    CHECK(ttl_fc_desc_check(&desc));
    int64_t params;
    CHECK(ttl_fc_param_count(&params, &desc));
    float *cores = random_floats(params, 1, 0.5f);
    float *bias = random_floats(desc.out_features, 2, 0.1f);
    float *x = random_floats(BATCH * desc.in_features, 3, 1.0f);
    float *y = malloc((size_t)(BATCH * desc.out_features) * sizeof(float));
    float *ref = malloc((size_t)(BATCH * desc.out_features) * sizeof(float));
    if (y == NULL || ref == NULL) return 1;

    /* Once per process: handle, layer (cores to the device), activation buffers; per batch size (and numerics
     * option) a plan and its workspace. */
    ttl_cuda_handle_t *handle;
    CHECK(ttl_cuda_create(&handle, 0));
    ttl_cuda_fc_layer_t *layer;
    CHECK(ttl_cuda_fc_layer_create(&layer, handle, &desc, cores, bias));
    float *d_x, *d_y;
    CUDA_CHECK(cudaMalloc((void **)&d_x, (size_t)(BATCH * desc.in_features) * sizeof(float)));
    CUDA_CHECK(cudaMalloc((void **)&d_y, (size_t)(BATCH * desc.out_features) * sizeof(float)));
    printf("VGG FC6 TT4: %lld parameters (%.0fx smaller than dense), batch %d\n", (long long)params,
           (double)desc.out_features * (double)desc.in_features / (double)params, BATCH);
    CHECK(ttl_fc_forward_ref(ref, &desc, cores, bias, x, BATCH)); /* the CPU reference defines the layer */

    /* AUTO in strict fp32 (NULL options), then AUTO with the TT steps allowed on the tensor cores in 3xTF32 (an
     * opt-in: errors a few times fp32's, on sm_80 and later; the plan's reason says where it is used) */
    const ttl_cuda_plan_opts_t tensor_cores = {.algo = TTL_ALGO_AUTO, .order = TTL_ORDER_AUTO, .allow_3xtf32 = 1};
    const ttl_cuda_plan_opts_t *runs[2] = {NULL, &tensor_cores};
    double worst = 0.0;
    for (int r = 0; r < 2; ++r) {
        ttl_cuda_fc_plan_t *plan;
        CHECK(ttl_cuda_fc_plan_create(&plan, layer, BATCH, runs[r]));
        ttl_plan_info_t info;
        CHECK(ttl_cuda_fc_plan_info(plan, &info));
        printf("plan: %s (%s), workspace %zu bytes, model %.1f us: %s\n", ttl_algo_name(info.algo),
               ttl_order_name(info.order), info.workspace_bytes, info.estimated_us, info.reason);
        void *ws = NULL;
        if (info.workspace_bytes > 0) CUDA_CHECK(cudaMalloc(&ws, info.workspace_bytes));

        /* Per request: copy in, forward (asynchronous, no allocation), copy out. */
        CUDA_CHECK(cudaMemcpy(d_x, x, (size_t)(BATCH * desc.in_features) * sizeof(float), cudaMemcpyHostToDevice));
        CHECK(ttl_cuda_fc_forward(plan, d_y, d_x, ws, info.workspace_bytes));
        CUDA_CHECK(cudaMemcpy(y, d_y, (size_t)(BATCH * desc.out_features) * sizeof(float), cudaMemcpyDeviceToHost));

        double num = 0.0, den = 0.0;
        for (int64_t i = 0; i < BATCH * desc.out_features; ++i) {
            num += ((double)y[i] - ref[i]) * ((double)y[i] - ref[i]);
            den += (double)ref[i] * ref[i];
        }
        const double rel = sqrt(num / (den > 0 ? den : 1.0));
        printf("  relative error vs the CPU reference: %.2e\n", rel);
        if (!(rel <= worst)) worst = rel; /* NaN counts as worst */
        cudaFree(ws);
        ttl_cuda_fc_plan_destroy(plan);
    }

    cudaFree(d_x);
    cudaFree(d_y);
    ttl_cuda_fc_layer_destroy(layer);
    ttl_cuda_destroy(handle);
    free(cores), free(bias), free(x), free(y), free(ref);
    return worst <= 1e-5 ? 0 : 1;
}
