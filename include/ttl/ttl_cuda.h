/*
 * libttl GPU API: device-resident TT layers and forward plans on a CUDA stream.
 *
 * Walk-through (TT-FC on the GPU):
 *
 *     ttl_cuda_handle_t *h;
 *     ttl_cuda_create(&h, 0);                                   // device 0; owns cuBLAS and cuDNN handles
 *     ttl_cuda_set_stream(h, stream);                           // optional; default is the legacy stream
 *     ttl_cuda_fc_layer_t *layer;
 *     ttl_cuda_fc_layer_create(&layer, h, &desc, cores, bias);  // describe: cores (host memory) uploaded once
 *     ttl_cuda_fc_plan_t *plan;
 *     ttl_cuda_fc_plan_create(&plan, layer, batch, NULL);       // plan: AUTO picks the algorithm
 *     ttl_plan_info_t info;
 *     ttl_cuda_fc_plan_info(plan, &info);                       // query workspace
 *     cudaMalloc(&ws, info.workspace_bytes);
 *     ttl_cuda_fc_forward(plan, d_y, d_x, ws, info.workspace_bytes);  // run: no allocation, no host sync
 *     ttl_cuda_fc_plan_destroy(plan); ttl_cuda_fc_layer_destroy(layer); ttl_cuda_destroy(h);   // destroy
 *
 * All activations and workspaces are device pointers; shapes and layouts are those of ttl.h. Activations need
 * only float (4-byte) alignment; a workspace must be 16-byte aligned (cudaMalloc's always is), else the forward
 * call returns TTL_STATUS_BAD_ARGUMENT. Forward calls are asynchronous on the handle's stream, allocate nothing and
 * never synchronise the host, so they can be captured in a CUDA graph (with lazy module loading on a driver older
 * than CUDA 12.3, run a plan once before capturing it, as for cuBLAS and cuDNN: kernels load at first launch). A
 * forward called while the CUDA runtime still holds an unread error from an earlier call (cudaPeekAtLastError)
 * returns TTL_STATUS_CUDA_ERROR without queuing anything and leaves that error in place. A plan is bound to the
 * layer and handle it was created with; destroy plans before their layer, and layers before their handle. Calls on
 * one handle must not run concurrently from several host threads, and forwards of one handle (direct, or replayed
 * from captured graphs) must not run concurrently on several streams: they share the handle's cuBLAS workspace.
 * fp32 storage and accumulation throughout; TF32 is used only where ttl_cuda_plan_opts_t allows it.
 */
#ifndef TTL_TTL_CUDA_H
#define TTL_TTL_CUDA_H

#include <cuda_runtime_api.h>

#include "ttl/ttl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------------------
 * Handle
 * ------------------------------------------------------------------------------------------------------------ */

typedef struct ttl_cuda_handle ttl_cuda_handle_t;

/* Number of usable CUDA devices; 0 (with SUCCESS) when there is no driver or no device. */
TTL_API ttl_status_t ttl_cuda_device_count(int *count);

/* Binds to `device` (NO_DEVICE when it does not exist) and creates the cuBLAS and cuDNN handles, with a cuBLAS
 * workspace the handle owns (32 MiB on Hopper and later, 4 MiB before), so that cuBLAS allocates nothing in a
 * forward call, captured into a CUDA graph or not. */
TTL_API ttl_status_t ttl_cuda_create(ttl_cuda_handle_t **handle, int device);
TTL_API void ttl_cuda_destroy(ttl_cuda_handle_t *handle);
/* Later calls run on `stream`, ordered after the work already queued on the previous stream (an event, no host
 * synchronisation: the handle's cuBLAS workspace is shared by both). */
TTL_API ttl_status_t ttl_cuda_set_stream(ttl_cuda_handle_t *handle, cudaStream_t stream);
TTL_API ttl_status_t ttl_cuda_get_stream(const ttl_cuda_handle_t *handle, cudaStream_t *stream);

/* ------------------------------------------------------------------------------------------------------------
 * Plan options
 * ------------------------------------------------------------------------------------------------------------ */

typedef struct ttl_cuda_plan_opts {
    ttl_algo_t algo;    /* AUTO: cost model (multiply-adds, bytes, launches); or a named algorithm */
    ttl_order_t order;  /* for SEQUENTIAL / SEQUENTIAL_BLAS and the channel part of conv algorithms */
    int32_t autotune;   /* 1: with AUTO, time every applicable algorithm once at plan time, keep the fastest */
    int32_t allow_tf32; /* 1: the DENSE path may use TF32 tensor cores; 0 (default): strict fp32 */
    /* 0 (default): the TT algorithms keep their workspace to at most twice the larger of x and y (exceptions
     * below), DENSE conv takes cuDNN's fastest algorithm among those needing at most 512 MiB of scratch. Otherwise
     * every algorithm stays within this many bytes where it can: fewer, larger chunks when it is generous
     * (SIZE_MAX: the fastest schedules), smaller chunks or a cuDNN algorithm with less scratch when it is tight. */
    size_t workspace_limit;
    /* 1: the TT algorithms may run their contractions on TF32 tensor cores in 3xTF32: each fp32 operand split into
     * a TF32 head and tail, three products per pair summed in fp32, errors a few times fp32's (not 1xTF32's
     * 2^-11) but not bit-identical to the FFMA kernels (an infinite input value gives NaN where FFMA may give an
     * infinity). The TT-conv algorithms (SPATIAL_FIRST, CHANNELS_FIRST) run every channel TT step so; the TT-FC
     * algorithms FUSED and SEQUENTIAL the steps where the cost model prefers it (AUTO prices both forms). The
     * plan's reason then says "3xTF32 tensor cores". On devices before sm_80 it has no effect; SEQUENTIAL_BLAS
     * and DENSE ignore it. With autotune the FFMA forms are timed as well. 0 (default): FFMA only. */
    int32_t allow_3xtf32;
} ttl_cuda_plan_opts_t;

/* ------------------------------------------------------------------------------------------------------------
 * TT-FC
 * ------------------------------------------------------------------------------------------------------------ */

typedef struct ttl_cuda_fc_layer ttl_cuda_fc_layer_t;
typedef struct ttl_cuda_fc_plan ttl_cuda_fc_plan_t;

/* Copies the packed host cores (and bias [M], or NULL) to the handle's device. */
TTL_API ttl_status_t ttl_cuda_fc_layer_create(ttl_cuda_fc_layer_t **layer, ttl_cuda_handle_t *handle,
                                              const ttl_fc_desc_t *desc, const float *cores, const float *bias);
TTL_API void ttl_cuda_fc_layer_destroy(ttl_cuda_fc_layer_t *layer);

/* UNSUPPORTED when a named algorithm cannot run this shape (e.g. FUSED whose intermediate does not fit on
 * chip). DENSE reconstructs W on the device here; its bytes are reported as persistent_bytes. FUSED and DENSE
 * need no workspace. SEQUENTIAL and SEQUENTIAL_BLAS size theirs to at most twice the larger of x and y (or
 * opts->workspace_limit): where the intermediates are larger, their first steps run once per chunk of samples
 * (first to last) or of samples and leading input modes (last to first), at the price of more launches. The
 * exception is where the intermediates of one such unit alone exceed that bound: ranks well above the mode
 * ratios at small batches (the rank-30/40 CIFAR-10 TT-FC layers below batch 18-25; VGG FC6 TT4 first to last
 * below batch 7, where last to first fits). The plan then takes the least workspace it can. */
TTL_API ttl_status_t ttl_cuda_fc_plan_create(ttl_cuda_fc_plan_t **plan, ttl_cuda_fc_layer_t *layer, int64_t batch,
                                             const ttl_cuda_plan_opts_t *opts);
TTL_API ttl_status_t ttl_cuda_fc_plan_info(const ttl_cuda_fc_plan_t *plan, ttl_plan_info_t *info);
TTL_API void ttl_cuda_fc_plan_destroy(ttl_cuda_fc_plan_t *plan);
/* y is [B, M], x is [B, N] on the device; y, x and ws must not overlap (not in place): BAD_ARGUMENT. */
TTL_API ttl_status_t ttl_cuda_fc_forward(const ttl_cuda_fc_plan_t *plan, float *y, const float *x, void *ws,
                                         size_t ws_bytes);

/* ------------------------------------------------------------------------------------------------------------
 * TT-conv
 * ------------------------------------------------------------------------------------------------------------ */

typedef struct ttl_cuda_conv_layer ttl_cuda_conv_layer_t;
typedef struct ttl_cuda_conv_plan ttl_cuda_conv_plan_t;

TTL_API ttl_status_t ttl_cuda_conv_layer_create(ttl_cuda_conv_layer_t **layer, ttl_cuda_handle_t *handle,
                                                const ttl_conv_desc_t *desc, const float *cores, const float *bias);
TTL_API void ttl_cuda_conv_layer_destroy(ttl_cuda_conv_layer_t *layer);

/* DENSE reconstructs K on the device and asks cuDNN for its best forward algorithm once, here (within
 * opts->workspace_limit when one is set). SPATIAL_FIRST and CHANNELS_FIRST size their workspace to at most twice
 * the larger of x and y (or opts->workspace_limit): channels first works through the batch in chunks of images,
 * bands of output rows, or bands of output columns, whichever fits. The one exception is channels first where
 * the r_0 S values of the kh x kw input pixels one output pixel reads exceed that bound (tiny images, r_0 S much
 * larger than C); it then takes that least chunk. A workspace_limit so small that a forward would take more than
 * 2^18 kernel launches (about a second of launch overhead) gives INSUFFICIENT_WORKSPACE for that algorithm (AUTO
 * then runs another). */
TTL_API ttl_status_t ttl_cuda_conv_plan_create(ttl_cuda_conv_plan_t **plan, ttl_cuda_conv_layer_t *layer,
                                               const ttl_conv_shape_t *shape, const ttl_cuda_plan_opts_t *opts);
TTL_API ttl_status_t ttl_cuda_conv_plan_info(const ttl_cuda_conv_plan_t *plan, ttl_plan_info_t *info);
TTL_API void ttl_cuda_conv_plan_destroy(ttl_cuda_conv_plan_t *plan);
/* x and y in the plan's layout, on the device; y, x and ws must not overlap (BAD_ARGUMENT). */
TTL_API ttl_status_t ttl_cuda_conv_forward(const ttl_cuda_conv_plan_t *plan, float *y, const float *x, void *ws,
                                           size_t ws_bytes);

#ifdef __cplusplus
}
#endif

#endif /* TTL_TTL_CUDA_H */
