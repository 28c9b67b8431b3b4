/* Status and enum names, version, build facts, and the deallocator for memory the library hands out. */
#include <stdlib.h>

#include "ttl/ttl.h"

#define TTL_STR2(x) #x
#define TTL_STR(x) TTL_STR2(x)

const char *ttl_status_string(ttl_status_t status) {
    switch (status) {
    case TTL_STATUS_SUCCESS: return "success";
    case TTL_STATUS_NULL_POINTER: return "null pointer";
    case TTL_STATUS_BAD_SIZE: return "bad size";
    case TTL_STATUS_BAD_MODES: return "modes do not multiply to the dimension";
    case TTL_STATUS_BAD_RANKS: return "ranks do not chain";
    case TTL_STATUS_OVERFLOW: return "size overflow";
    case TTL_STATUS_BAD_ARGUMENT: return "bad argument";
    case TTL_STATUS_UNSUPPORTED: return "unsupported";
    case TTL_STATUS_INSUFFICIENT_WORKSPACE: return "insufficient workspace";
    case TTL_STATUS_OUT_OF_MEMORY: return "out of memory";
    case TTL_STATUS_NUMERICAL: return "numerical failure";
    case TTL_STATUS_IO_ERROR: return "I/O error";
    case TTL_STATUS_BAD_FILE: return "malformed file";
    case TTL_STATUS_NOT_FOUND: return "not found";
    case TTL_STATUS_CUDA_ERROR: return "CUDA error";
    case TTL_STATUS_CUBLAS_ERROR: return "cuBLAS error";
    case TTL_STATUS_CUDNN_ERROR: return "cuDNN error";
    case TTL_STATUS_NO_DEVICE: return "no CUDA device";
    }
    return "unknown status";
}

const char *ttl_algo_name(ttl_algo_t algo) {
    switch (algo) {
    case TTL_ALGO_AUTO: return "auto";
    case TTL_ALGO_REFERENCE: return "reference";
    case TTL_ALGO_SEQUENTIAL: return "sequential";
    case TTL_ALGO_SEQUENTIAL_BLAS: return "sequential_blas";
    case TTL_ALGO_FUSED: return "fused";
    case TTL_ALGO_SPATIAL_FIRST: return "spatial_first";
    case TTL_ALGO_CHANNELS_FIRST: return "channels_first";
    case TTL_ALGO_DENSE: return "dense";
    }
    return "unknown";
}

const char *ttl_order_name(ttl_order_t order) {
    switch (order) {
    case TTL_ORDER_AUTO: return "auto";
    case TTL_ORDER_FIRST_TO_LAST: return "first_to_last";
    case TTL_ORDER_LAST_TO_FIRST: return "last_to_first";
    }
    return "unknown";
}

const char *ttl_version(void) {
    return TTL_STR(TTL_VERSION_MAJOR) "." TTL_STR(TTL_VERSION_MINOR) "." TTL_STR(TTL_VERSION_PATCH);
}

int ttl_has_cuda(void) {
#ifdef TTL_WITH_CUDA
    return 1;
#else
    return 0;
#endif
}

void ttl_free(void *ptr) { free(ptr); }
