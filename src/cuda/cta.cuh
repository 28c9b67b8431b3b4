/*
 * Thread index and barrier of a CTA, for kernel bodies written as __host__ __device__ functions so that a CPU
 * test can run them with one fiber per CUDA thread (tests/common/cta_emulator.h). Under
 * CTA_HOST_EMULATION the includer provides cta_emu_thread_index(), cta_emu_barrier(),
 * cta_emu_check_aligned() and the warp-wide tensor-core product of mma_tf32.cuh; in the normal host pass the
 * bodies are never called.
 */
#ifndef TTL_CUDA_CTA_CUH
#define TTL_CUDA_CTA_CUH

#include <stdint.h>

#if defined(__CUDA_ARCH__)
#define CTA_TID() ((int)threadIdx.x)
#define CTA_SYNC() __syncthreads()
#elif defined(CTA_HOST_EMULATION)
#define CTA_TID() cta_emu_thread_index()
#define CTA_SYNC() cta_emu_barrier()
#else
#define CTA_TID() 0
#define CTA_SYNC() ((void)0)
#endif

/* The alignment a vector access relies on (a misaligned float2/float4 access traps on the device): checked in
 * every emulated run (the test counts violations, release builds included), by assert in other host runs,
 * not at all on the device. */
#if defined(__CUDA_ARCH__)
#define CTA_ASSERT_ALIGNED(p, bytes) ((void)0)
#elif defined(CTA_HOST_EMULATION)
#define CTA_ASSERT_ALIGNED(p, bytes) cta_emu_check_aligned((const void *)(p), (bytes))
#else
#include <assert.h>
#define CTA_ASSERT_ALIGNED(p, bytes) assert(((uintptr_t)(p) & ((bytes)-1)) == 0)
#endif

/* Loop unrolling for the device pass only (the host compiler does not know the pragma). */
#if defined(__CUDA_ARCH__)
#define CTA_UNROLL _Pragma("unroll")
#define CTA_UNROLL_BY_4 _Pragma("unroll 4")
#else
#define CTA_UNROLL
#define CTA_UNROLL_BY_4
#endif

/* Keeps a device function out of line (its own register allocation); a plain function on the host. */
#if defined(__CUDACC__)
#define CTA_NOINLINE __noinline__
#else
#define CTA_NOINLINE
#endif

#endif /* TTL_CUDA_CTA_CUH */
