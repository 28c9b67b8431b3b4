/*
 * Small device helpers of the GPU runner: error checks that stop the bench with a message (the library itself
 * never does this), and a device-side random fill so that large rotating input pools cost no host time.
 */
#ifndef TTL_BENCH_GPU_UTIL_H
#define TTL_BENCH_GPU_UTIL_H

#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_CUDA(call)                                                                                           \
    do {                                                                                                           \
        cudaError_t bench_err_ = (call);                                                                           \
        if (bench_err_ != cudaSuccess) {                                                                           \
            fprintf(stderr, "ttl-bench: %s:%d: %s: %s\n", __FILE__, __LINE__, #call,                               \
                    cudaGetErrorString(bench_err_));                                                               \
            exit(1);                                                                                               \
        }                                                                                                          \
    } while (0)

/* n floats uniform in +-[0.1, 1] * scale from a counter-based hash of (seed, index), on `stream`. */
void bench_gpu_fill_random(float *d, int64_t n, uint64_t seed, float scale, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* TTL_BENCH_GPU_UTIL_H */
