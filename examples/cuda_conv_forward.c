/*
 * A TT-conv layer on the GPU: a VGG-size 3x3 convolution 512 -> 512 channels at 14x14 with channel modes 8x8x8
 * and ranks 8 (269x fewer parameters than the dense kernel), NHWC activations. The plan is made once for the
 * shape; the workspace comes from the plan's query. workspace_limit allows it 64 MiB here, more than the default
 * (twice the larger activation), so the TT algorithms may run in fewer, larger chunks. Two plans run: AUTO in
 * strict fp32, and spatial first with its TT steps on the tensor cores in 3xTF32
 * (ttl_cuda_plan_opts_t.allow_3xtf32). Each output is checked against the CPU reference. Run:
 * ./example_cuda_conv_forward (exits with 77, "skipped", when there is no CUDA device).
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
    const ttl_conv_desc_t desc = {.out_channels = 512,
                                  .in_channels = 512,
                                  .kernel_h = 3,
                                  .kernel_w = 3,
                                  .stride_h = 1,
                                  .stride_w = 1,
                                  .pad_h = 1,
                                  .pad_w = 1,
                                  .dilation_h = 1,
                                  .dilation_w = 1,
                                  .num_cores = 3,
                                  .out_modes = {8, 8, 8},
                                  .in_modes = {8, 8, 8},
                                  .ranks = {8, 8, 8, 1}};
    const ttl_conv_shape_t shape = {.batch = 2, .height = 14, .width = 14, .layout = TTL_LAYOUT_NHWC};
    CHECK(ttl_conv_desc_check(&desc));
    int64_t params, oh, ow;
    CHECK(ttl_conv_param_count(&params, &desc));
    CHECK(ttl_conv_output_size(&oh, &ow, &desc, shape.height, shape.width));
    const int64_t nx = shape.batch * shape.height * shape.width * desc.in_channels;
    const int64_t ny = shape.batch * oh * ow * desc.out_channels;
    float *cores = random_floats(params, 1, 0.5f);
    float *bias = random_floats(desc.out_channels, 2, 0.1f);
    float *x = random_floats(nx, 3, 1.0f);
    float *y = malloc((size_t)ny * sizeof(float));
    float *ref = malloc((size_t)ny * sizeof(float));
    if (y == NULL || ref == NULL) return 1;

    CHECK(ttl_conv_forward_ref(ref, &desc, cores, bias, x, &shape));

    ttl_cuda_handle_t *handle;
    CHECK(ttl_cuda_create(&handle, 0));
    ttl_cuda_conv_layer_t *layer;
    CHECK(ttl_cuda_conv_layer_create(&layer, handle, &desc, cores, bias));
    printf("TT-conv 512 -> 512, 3x3, 14x14, ranks 8: %lld parameters (%.0fx fewer than dense)\n", (long long)params,
           (double)desc.out_channels * (double)desc.in_channels * 9.0 / (double)params);
    float *d_x, *d_y;
    CUDA_CHECK(cudaMalloc((void **)&d_x, (size_t)nx * sizeof(float)));
    CUDA_CHECK(cudaMalloc((void **)&d_y, (size_t)ny * sizeof(float)));
    CUDA_CHECK(cudaMemcpy(d_x, x, (size_t)nx * sizeof(float), cudaMemcpyHostToDevice));

    /* AUTO in strict fp32, then spatial first with its TT steps on the tensor cores in 3xTF32 (an opt-in: errors
     * a few times fp32's, on sm_80 and later; elsewhere the same FFMA kernels) */
    const ttl_cuda_plan_opts_t runs[2] = {
        {.algo = TTL_ALGO_AUTO, .order = TTL_ORDER_AUTO, .workspace_limit = 64u << 20},
        {.algo = TTL_ALGO_SPATIAL_FIRST, .order = TTL_ORDER_AUTO, .workspace_limit = 64u << 20, .allow_3xtf32 = 1}};
    double worst = 0.0;
    for (int r = 0; r < 2; ++r) {
        ttl_cuda_conv_plan_t *plan;
        CHECK(ttl_cuda_conv_plan_create(&plan, layer, &shape, &runs[r]));
        ttl_plan_info_t info;
        CHECK(ttl_cuda_conv_plan_info(plan, &info));
        printf("plan: %s (%s), workspace %zu bytes, K held %zu bytes, model %.1f us: %s\n",
               ttl_algo_name(info.algo), ttl_order_name(info.order), info.workspace_bytes, info.persistent_bytes,
               info.estimated_us, info.reason);
        void *ws = NULL;
        if (info.workspace_bytes > 0) CUDA_CHECK(cudaMalloc(&ws, info.workspace_bytes));
        CHECK(ttl_cuda_conv_forward(plan, d_y, d_x, ws, info.workspace_bytes));
        CUDA_CHECK(cudaMemcpy(y, d_y, (size_t)ny * sizeof(float), cudaMemcpyDeviceToHost));
        double num = 0.0, den = 0.0;
        for (int64_t i = 0; i < ny; ++i) {
            num += ((double)y[i] - ref[i]) * ((double)y[i] - ref[i]);
            den += (double)ref[i] * ref[i];
        }
        const double rel = sqrt(num / (den > 0 ? den : 1.0));
        printf("  relative error vs the CPU reference: %.2e\n", rel);
        if (!(rel <= worst)) worst = rel; /* NaN counts as worst */
        cudaFree(ws);
        ttl_cuda_conv_plan_destroy(plan);
    }

    cudaFree(d_x);
    cudaFree(d_y);
    ttl_cuda_conv_layer_destroy(layer);
    ttl_cuda_destroy(handle);
    free(cores), free(bias), free(x), free(y), free(ref);
    return worst <= 1e-5 ? 0 : 1;
}
