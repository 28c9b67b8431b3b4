/*
 * Internal pieces shared by the CUDA sources: the handle's layout, and macros that turn every CUDA, cuBLAS and
 * cuDNN failure into a ttl_status_t (the library never exits on an error, unlike llm.c's cudaCheck).
 */
#ifndef TTL_CUDA_INTERNAL_H
#define TTL_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "common/check.h"
#include "ttl/ttl_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ttl_cuda_handle {
    int device;
    cudaStream_t stream;   /* where every forward call is enqueued */
    cublasHandle_t cublas; /* bound to `stream` */
    cudnnHandle_t cudnn;   /* bound to `stream` */
    void *cublas_ws;       /* cuBLAS's workspace (cublasSetWorkspace), owned */
    size_t cublas_ws_bytes;
    int sm_count;                /* multiprocessors, for persistent-grid sizing */
    size_t smem_per_block_optin; /* largest dynamic shared memory a block may opt in to */
    size_t l2_bytes;
};

/* Division by a divisor fixed per launch: ttl_divider_make / ttl_div in int_div.cuh. */
typedef struct ttl_divider {
    uint32_t m, shift;
} ttl_divider_t;

/* Return TTL_STATUS_CUDA_ERROR / _CUBLAS_ / _CUDNN_ from the enclosing function when a call fails. A failed CUDA
 * call's error is also cleared from the runtime's last-error slot, so that it cannot surface again at a later,
 * unrelated launch check (an error from a fault on the device stays: the context is lost). */
#define TTL_CUDA_TRY(call)                                                                                         \
    do {                                                                                                           \
        if ((call) != cudaSuccess) {                                                                               \
            (void)cudaGetLastError();                                                                              \
            return TTL_STATUS_CUDA_ERROR;                                                                          \
        }                                                                                                          \
    } while (0)
#define TTL_CUBLAS_TRY(call)                                                                                       \
    do {                                                                                                           \
        if ((call) != CUBLAS_STATUS_SUCCESS) return TTL_STATUS_CUBLAS_ERROR;                                       \
    } while (0)
#define TTL_CUDNN_TRY(call)                                                                                        \
    do {                                                                                                           \
        if ((call) != CUDNN_STATUS_SUCCESS) return TTL_STATUS_CUDNN_ERROR;                                         \
    } while (0)
/* After every kernel launch: a launch error (bad configuration, too much shared memory) becomes a status. */
#define TTL_CUDA_CHECK_LAUNCH() TTL_CUDA_TRY(cudaGetLastError())

/* At a forward's entry, before anything is queued. An error the runtime still holds from a call outside this
 * library (its own failed calls clear theirs) would otherwise surface at the forward's first launch check, after
 * part of the work was queued, and be cleared there. Instead the forward returns TTL_STATUS_CUDA_ERROR with
 * nothing queued and its output untouched, and the error stays for its owner to read. */
#define TTL_CUDA_REFUSE_PENDING_ERROR()                                                                            \
    do {                                                                                                           \
        if (cudaPeekAtLastError() != cudaSuccess) return TTL_STATUS_CUDA_ERROR;                                    \
    } while (0)

/* Makes `handle->device` current for the duration of a call (the caller's device is restored by the entry
 * point's scope guard in C++ sources, or explicitly). */
ttl_status_t ttl_cuda_activate(const ttl_cuda_handle_t *handle, int *previous_device);

/* Whether `kernel` can run TF32 tensor-core products (mma_tf32.cuh) on the handle's device: that needs sm_80, in
 * the device and in the code built for it (a build for an older target holds a trap there). */
ttl_status_t ttl_cuda_tf32_mma_usable(const ttl_cuda_handle_t *handle, const void *kernel, int32_t *usable);

#ifdef __cplusplus
}
#endif

#endif /* TTL_CUDA_INTERNAL_H */
