/*
 * The CUDA handle: device binding, stream, and the cuBLAS/cuDNN handles every plan uses. Creating cuBLAS and
 * cuDNN handles is slow (tens of ms), so it happens once here, never on a forward call.
 *
 * cuBLAS gets a workspace the handle owns (cuBLAS's recommendation: 32 MiB on Hopper and later, 4 MiB before),
 * set again after every cublasSetStream (which resets it). Without one, cuBLAS allocates its own, and a call
 * captured into a CUDA graph would allocate a new workspace per captured graph.
 */
#include <stdlib.h>

#include "cuda/cuda_internal.h"
#include "cuda/plan_common.h"

// ---------------------------------------------------------------------------------------------------------------
// entry points
// ---------------------------------------------------------------------------------------------------------------

extern "C" ttl_status_t ttl_cuda_device_count(int *count) {
    if (count == NULL) return TTL_STATUS_NULL_POINTER;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* no driver / no device is not an error here: clear the sticky status */
        n = 0;
    }
    *count = n;
    return TTL_STATUS_SUCCESS;
}

extern "C" ttl_status_t ttl_cuda_activate(const ttl_cuda_handle_t *handle, int *previous_device) {
    int prev = 0;
    TTL_CUDA_TRY(cudaGetDevice(&prev));
    if (prev != handle->device) TTL_CUDA_TRY(cudaSetDevice(handle->device));
    if (previous_device != NULL) *previous_device = prev;
    return TTL_STATUS_SUCCESS;
}

extern "C" ttl_status_t ttl_cuda_tf32_mma_usable(const ttl_cuda_handle_t *handle, const void *kernel,
                                                 int32_t *usable) {
    int major = 0;
    cudaFuncAttributes attr;
    TTL_CUDA_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, handle->device));
    TTL_CUDA_TRY(cudaFuncGetAttributes(&attr, kernel));
    *usable = major >= 8 && attr.ptxVersion >= 80 && attr.binaryVersion >= 80;
    return TTL_STATUS_SUCCESS;
}

/* Destroys what was created; the handle's device must be current. */
static void release(ttl_cuda_handle_t *h) {
    if (h->cudnn != NULL) cudnnDestroy(h->cudnn);
    if (h->cublas != NULL) cublasDestroy(h->cublas);
    if (h->cublas_ws != NULL) (void)cudaFree(h->cublas_ws);
    free(h);
}

/* Binds cuBLAS and cuDNN to `stream`, cuBLAS with the handle's workspace. */
static ttl_status_t bind_stream(ttl_cuda_handle_t *h, cudaStream_t stream) {
    TTL_CUBLAS_TRY(cublasSetStream(h->cublas, stream));
    TTL_CUBLAS_TRY(cublasSetWorkspace(h->cublas, h->cublas_ws, h->cublas_ws_bytes));
    TTL_CUDNN_TRY(cudnnSetStream(h->cudnn, stream));
    return TTL_STATUS_SUCCESS;
}

extern "C" ttl_status_t ttl_cuda_create(ttl_cuda_handle_t **handle, int device) {
    if (handle == NULL) return TTL_STATUS_NULL_POINTER;
    int count = 0;
    TTL_TRY(ttl_cuda_device_count(&count));
    if (device < 0 || device >= count) return TTL_STATUS_NO_DEVICE;

    ttl_cuda_handle_t *h = (ttl_cuda_handle_t *)calloc(1, sizeof(*h));
    if (h == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    h->device = device;
    h->stream = 0;
    int prev = 0;
    ttl_status_t st = ttl_cuda_activate(h, &prev);
    const bool switched = st == TTL_STATUS_SUCCESS;
    cudaDeviceProp prop;
    if (st == TTL_STATUS_SUCCESS && cudaGetDeviceProperties(&prop, device) != cudaSuccess)
        st = TTL_STATUS_CUDA_ERROR;
    if (st == TTL_STATUS_SUCCESS) {
        h->sm_count = prop.multiProcessorCount;
        h->smem_per_block_optin = prop.sharedMemPerBlockOptin;
        h->l2_bytes = (size_t)prop.l2CacheSize;
        h->cublas_ws_bytes = (size_t)(prop.major >= 9 ? 32 : 4) << 20;
        if (cudaMalloc(&h->cublas_ws, h->cublas_ws_bytes) != cudaSuccess) {
            h->cublas_ws = NULL;
            st = TTL_STATUS_OUT_OF_MEMORY;
        }
    }
    if (st == TTL_STATUS_SUCCESS && cublasCreate(&h->cublas) != CUBLAS_STATUS_SUCCESS) st = TTL_STATUS_CUBLAS_ERROR;
    /* fp32 unless a plan asks otherwise (CUBLAS_DEFAULT_MATH runs SGEMM without TF32; PEDANTIC may pick slower
     * kernels); plans set the math mode they need before each call. */
    if (st == TTL_STATUS_SUCCESS && cublasSetMathMode(h->cublas, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS)
        st = TTL_STATUS_CUBLAS_ERROR;
    if (st == TTL_STATUS_SUCCESS && cudnnCreate(&h->cudnn) != CUDNN_STATUS_SUCCESS) st = TTL_STATUS_CUDNN_ERROR;
    if (st == TTL_STATUS_SUCCESS) st = bind_stream(h, h->stream);
    if (st != TTL_STATUS_SUCCESS) {
        (void)cudaGetLastError(); /* a failed call must not surface at a later launch check */
        release(h);               /* on the handle's device, before the caller's is restored */
    }
    if (switched && prev != device) (void)cudaSetDevice(prev);
    if (st != TTL_STATUS_SUCCESS) return st;
    *handle = h;
    return TTL_STATUS_SUCCESS;
}

extern "C" void ttl_cuda_destroy(ttl_cuda_handle_t *handle) {
    if (handle == NULL) return;
    int prev = 0;
    const int device = handle->device;
    const bool switched = ttl_cuda_activate(handle, &prev) == TTL_STATUS_SUCCESS;
    release(handle);
    if (switched && prev != device) (void)cudaSetDevice(prev);
}

extern "C" ttl_status_t ttl_cuda_set_stream(ttl_cuda_handle_t *handle, cudaStream_t stream) {
    if (handle == NULL) return TTL_STATUS_NULL_POINTER;
    if (stream == handle->stream) return TTL_STATUS_SUCCESS;
    ttl_cuda_device_scope scope(handle);
    TTL_TRY(scope.status);
    /* The cuBLAS workspace is one buffer: work still queued on the old stream must finish before the new stream
     * uses it. An event orders the two streams without blocking the host. */
    cudaEvent_t done = NULL;
    TTL_CUDA_TRY(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    ttl_status_t order = TTL_STATUS_SUCCESS;
    if (cudaEventRecord(done, handle->stream) != cudaSuccess ||
        cudaStreamWaitEvent(stream, done, 0) != cudaSuccess) {
        (void)cudaGetLastError();
        order = TTL_STATUS_CUDA_ERROR;
    }
    (void)cudaEventDestroy(done); /* the wait stays queued */
    TTL_TRY(order);
    const ttl_status_t st = bind_stream(handle, stream);
    if (st != TTL_STATUS_SUCCESS) {
        (void)bind_stream(handle, handle->stream); /* on error the handle keeps its old stream */
        return st;
    }
    handle->stream = stream;
    return TTL_STATUS_SUCCESS;
}

extern "C" ttl_status_t ttl_cuda_get_stream(const ttl_cuda_handle_t *handle, cudaStream_t *stream) {
    if (handle == NULL || stream == NULL) return TTL_STATUS_NULL_POINTER;
    *stream = handle->stream;
    return TTL_STATUS_SUCCESS;
}
