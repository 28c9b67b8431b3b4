/*
 * Plan bookkeeping shared by the CUDA plans (FC and conv): a scope guard that makes the handle's device current
 * for the length of an entry point, workspace carving, the constants of the cost model AUTO uses, and event
 * timing for autotune. Host-side C++ only (included from .cu files).
 *
 * Cost model: every candidate's time is estimated as launches * launch cost + max(arithmetic time, memory time),
 * with memory in bytes through device memory and arithmetic in fp32 multiply-adds at a rate (cuBLAS, cuDNN) or,
 * for libttl's TT-FC tiles, in the instructions a tile issues (fc_tile_us). The rates are round numbers for an
 * H100 (fp32 FFMA about 33 T multiply-adds/s at peak, SGEMM about 26, copy about 3 TB/s) until a device run
 * calibrates them (scripts/model-check.py); autotune exists for when the model is wrong.
 */
#ifndef TTL_CUDA_PLAN_COMMON_H
#define TTL_CUDA_PLAN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "cuda/cuda_internal.h"

// ---------------------------------------------------------------------------------------------------------------
// cost model constants (microseconds, multiply-adds, bytes)
// ---------------------------------------------------------------------------------------------------------------

/* Cost of one kernel launch as seen between two events on one stream. */
#define TTL_COST_LAUNCH_US 3.0
/* A cuBLAS call costs a little more (heuristics, sometimes two kernels). */
#define TTL_COST_BLAS_CALL_US 5.0
/* Device-memory bandwidth a streaming kernel reaches, bytes per microsecond. */
#define TTL_COST_DRAM_BYTES_PER_US 2.5e6
/* What one SM reads from L2 per microsecond when a tile loop streams its input (about 64 B per clock). */
#define TTL_COST_SM_L2_BYTES_PER_US 1.0e5
/* fp32 multiply-adds per microsecond per SM of the per-step cuBLAS calls of SEQUENTIAL_BLAS (small, oddly shaped
 * products: about 40% of FFMA peak). */
#define TTL_COST_SM_MACS_PER_US 9.0e4
/* Thread instructions per microsecond per SM that libttl's tiled contractions issue: about 60% of the 4 x 32 per
 * clock an SM can issue at 1.7 GHz. fc_tile_us counts a tile's instructions (multiply-adds, the shared-memory
 * loads they wait on, staging, barriers), so the tile shape sets the multiply-add rate; the big 8 x 4 tiles come
 * to about 40% of FFMA peak. */
#define TTL_COST_SM_ISSUE_PER_US 1.3e5
/* Issue slots of those (per thread) one warp's m16n8k8 TF32 tensor-core product holds its SM for: 32 multiply-adds
 * per thread in the time of 8 FFMA, about half the H100's dense TF32 rate (mma.sync does not reach wgmma's).
 * 3xTF32 takes three, so its fp32 rate is about 1.3x FFMA's before the split and load overheads. A rough figure
 * until a device run measures it. */
#define TTL_COST_MMA_TF32_SLOTS 8.0
/* fp32 multiply-adds per microsecond of a large cuBLAS SGEMM on the whole chip, and with TF32 tensor cores (the
 * H100 anchors: SGEMM 51.7 TFLOP/s, TF32 357; VGG FC6 at batch 1024 runs dense at 2.55e7 and 1.87e8). */
#define TTL_COST_SGEMM_MACS_PER_US 2.5e7
#define TTL_COST_TF32_MACS_PER_US 1.8e8

// ---------------------------------------------------------------------------------------------------------------
// device scope guard
// ---------------------------------------------------------------------------------------------------------------

/* Makes the handle's device current and restores the caller's on scope exit. Check `status` after building. */
struct ttl_cuda_device_scope {
    int previous = 0;
    int device = 0;
    ttl_status_t status = TTL_STATUS_SUCCESS;
    explicit ttl_cuda_device_scope(const ttl_cuda_handle_t *handle) : device(handle->device) {
        status = ttl_cuda_activate(handle, &previous);
    }
    ~ttl_cuda_device_scope() {
        if (status == TTL_STATUS_SUCCESS && previous != device) (void)cudaSetDevice(previous);
    }
    ttl_cuda_device_scope(const ttl_cuda_device_scope &) = delete;
    ttl_cuda_device_scope &operator=(const ttl_cuda_device_scope &) = delete;
};

// ---------------------------------------------------------------------------------------------------------------
// integer helpers of the planners
// ---------------------------------------------------------------------------------------------------------------

/* Whether a size or index bound can be handed to a kernel that indexes with int32. */
static inline bool ttl_fits_i32(int64_t v) { return v >= 0 && v <= INT32_MAX; }
/* v rounded up to a multiple of `to` (v >= 0, to >= 1). */
static inline int64_t ttl_round_up_i64(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

/* Blocks of `threads` for a grid-stride loop over `items`: enough for one item per thread, at least one, at most
 * max_blocks (the loop covers the rest). */
static inline int ttl_cuda_grid_stride_blocks(int64_t items, int threads, int64_t max_blocks) {
    const int64_t blocks = (items + threads - 1) / threads;
    return (int)(blocks < 1 ? 1 : (blocks < max_blocks ? blocks : max_blocks));
}

// ---------------------------------------------------------------------------------------------------------------
// workspace carving
// ---------------------------------------------------------------------------------------------------------------

/* Forward calls require workspaces aligned to this many bytes (kernels load float4 from slices of it; every
 * slice offset is a multiple of TTL_WS_ALIGN). cudaMalloc returns 256-byte aligned memory. */
#define TTL_CUDA_WS_BASE_ALIGN ((uintptr_t)16)

/* Byte offset of the next slice of `bytes` after `*cursor` (TTL_WS_ALIGN-aligned); advances the cursor. */
static inline size_t ttl_cuda_ws_take(size_t *cursor, size_t bytes) {
    const size_t at = ttl_align_up(*cursor);
    *cursor = at + bytes;
    return at;
}

// ---------------------------------------------------------------------------------------------------------------
// event timing (plan time only)
// ---------------------------------------------------------------------------------------------------------------

/* Runs `fn(ctx)` once to warm up, then `reps` times between two events on `stream`; *ms is the mean time of
 * one run. Synchronises the stream: for plan-time autotune only, never on a forward path. */
template <typename Fn> static ttl_status_t ttl_cuda_time_ms(float *ms, cudaStream_t stream, int reps, Fn fn) {
    TTL_TRY(fn());
    cudaEvent_t start = NULL, stop = NULL;
    ttl_status_t st = TTL_STATUS_SUCCESS;
    if (cudaEventCreate(&start) != cudaSuccess || cudaEventCreate(&stop) != cudaSuccess) st = TTL_STATUS_CUDA_ERROR;
    if (st == TTL_STATUS_SUCCESS && cudaEventRecord(start, stream) != cudaSuccess) st = TTL_STATUS_CUDA_ERROR;
    for (int i = 0; i < reps && st == TTL_STATUS_SUCCESS; ++i) st = fn();
    if (st == TTL_STATUS_SUCCESS && cudaEventRecord(stop, stream) != cudaSuccess) st = TTL_STATUS_CUDA_ERROR;
    if (st == TTL_STATUS_SUCCESS && cudaEventSynchronize(stop) != cudaSuccess) st = TTL_STATUS_CUDA_ERROR;
    float total = 0.0f;
    if (st == TTL_STATUS_SUCCESS && cudaEventElapsedTime(&total, start, stop) != cudaSuccess)
        st = TTL_STATUS_CUDA_ERROR;
    if (start != NULL) (void)cudaEventDestroy(start);
    if (stop != NULL) (void)cudaEventDestroy(stop);
    if (st == TTL_STATUS_SUCCESS) *ms = total / (float)(reps > 0 ? reps : 1);
    return st;
}

#endif /* TTL_CUDA_PLAN_COMMON_H */
