/*
 * Integer helpers of the kernels' index arithmetic: binary logarithms, and division by a divisor fixed per launch
 * (a multiply-high, an add and a shift instead of the division routine, which costs about 20 instructions).
 * Host and device; the CTA emulator (tests/common/cta_emulator.h) runs the host forms.
 */
#ifndef TTL_CUDA_INT_DIV_CUH
#define TTL_CUDA_INT_DIV_CUH

#include <stdint.h>

#include "cuda/cuda_internal.h"

/* floor(log2 v) and ceil(log2 v), v >= 1. */
__host__ __device__ static inline int ttl_floor_log2(int v) {
#ifdef __CUDA_ARCH__
    return 31 - __clz(v);
#else
    return 31 - __builtin_clz((unsigned)v);
#endif
}
__host__ __device__ static inline int ttl_ceil_log2(int v) { return v <= 1 ? 0 : ttl_floor_log2(v - 1) + 1; }

/* Division of 0 <= n < 2^31 by a divisor 1 <= d < 2^31 (the round-up method of Granlund and Montgomery, as in
 * PyTorch's IntDivider): m = floor(2^32 (2^s - d) / d) + 1 < 2^32 with 2^s >= d > 2^(s-1). */
__host__ __device__ static inline ttl_divider_t ttl_divider_make(uint32_t d) {
    const uint32_t s = (uint32_t)ttl_ceil_log2((int)d);
    const uint64_t m = (((uint64_t)1 << 32) * (((uint64_t)1 << s) - d)) / d + 1;
    return ttl_divider_t{(uint32_t)m, s};
}

__host__ __device__ static inline uint32_t ttl_div(uint32_t n, ttl_divider_t v) {
#ifdef __CUDA_ARCH__
    const uint32_t t = __umulhi(n, v.m);
#else
    const uint32_t t = (uint32_t)(((uint64_t)n * v.m) >> 32);
#endif
    return (t + n) >> v.shift; /* t <= n < 2^31: no overflow */
}

#endif /* TTL_CUDA_INT_DIV_CUH */
