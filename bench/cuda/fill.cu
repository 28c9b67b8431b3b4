/*
 * Device-side random fill for the GPU runner: each element is a hash of (seed, index), so the pools of
 * rotating inputs (hundreds of MB) are filled at memory speed, and the values never are zero.
 */
#include "gpu_util.h"

// ---- kernel -----------------------------------------------------------------------------------------------------

static __device__ uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static __global__ void fill_random_kernel(float *d, int64_t n, uint64_t seed, float scale) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const uint64_t r = mix64(seed + 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1));
        const float mag = 0.1f + 0.9f * (float)((r >> 11) & 0xFFFFFF) / (float)0xFFFFFF;
        d[i] = (r & 1) ? scale * mag : -scale * mag;
    }
}

// ---- launcher ---------------------------------------------------------------------------------------------------

void bench_gpu_fill_random(float *d, int64_t n, uint64_t seed, float scale, cudaStream_t stream) {
    if (n <= 0) return;
    const int threads = 256;
    const int64_t wanted = (n + threads - 1) / threads;
    const int blocks = (int)(wanted < 65536 ? wanted : 65536);
    fill_random_kernel<<<blocks, threads, 0, stream>>>(d, n, seed, scale);
    BENCH_CUDA(cudaGetLastError());
}
