/*
 * Thread index and barrier of a CTA, for kernel bodies written as __host__ __device__ functions so that a CPU
 * test can run them with one fiber per CUDA thread (tests/common/cta_emulator.h). Under
 * CTA_HOST_EMULATION the includer provides cta_emu_thread_index(), cta_emu_barrier(),
 * cta_emu_check_aligned(), cta_emu_check_shared(), cta_emu_check_index(), the asynchronous copies below and the
 * warp-wide tensor-core product of mma_tf32.cuh;
 * in the normal host pass the bodies are never called.
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

/* A pointer the code relies on being in shared memory: the device compiler is told so (its accesses then compile
 * to shared-memory ones, without a generic address's instructions), every emulated run checks it
 * (cta_emu::not_shared), other host runs take it on trust. */
#if defined(__CUDA_ARCH__)
#define CTA_ASSUME_SHARED(p) __builtin_assume(__isShared(p))
#elif defined(CTA_HOST_EMULATION)
#define CTA_ASSUME_SHARED(p) cta_emu_check_shared((const void *)(p))
#else
#define CTA_ASSUME_SHARED(p) ((void)0)
#endif

/* An index a table lookup relies on being in [0, n) (past a shared-memory table a read is out of bounds on the
 * device, and garbage or a fault): counted in every emulated run (cta_emu::bad_indices), by assert in other host
 * runs, not at all on the device. */
#if defined(__CUDA_ARCH__)
#define CTA_ASSERT_INDEX(i, n) ((void)0)
#elif defined(CTA_HOST_EMULATION)
#define CTA_ASSERT_INDEX(i, n) cta_emu_check_index((int64_t)(i), (int64_t)(n))
#else
#define CTA_ASSERT_INDEX(i, n) assert((i) >= 0 && (i) < (n))
#endif

/* Copies of one float (or one 16-byte aligned float4) from device memory into shared memory that stay in flight
 * together until the thread waits (cp.async, sm_80 and later): a CTA staging a chunk issues all its copies at
 * once instead of a few loads per thread at a time, each batch waiting a full memory latency before the next,
 * and holds no registers for them.
 * CTA_COPY_ASYNC_F32 / _F4(dst, src): dst in shared memory, src in device memory (CTA_IS_DEVICE_MEMORY(src)); a
 * thread sees its copies only after CTA_COPY_WAIT(), and the others only after a barrier that follows it. Devices
 * before sm_80 and the host have no such copy: CTA_HAS_COPY_ASYNC is 0 and the stage loops batch plain loads
 * instead. The emulation (CTA_HOST_EMULATION) defers each copy to the thread's wait, so a read before the wait
 * sees the stage's poison. */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define CTA_HAS_COPY_ASYNC 1
#define CTA_IS_DEVICE_MEMORY(p) __isGlobal(p)
static __device__ __forceinline__ void cta_copy_async_f32(float *dst, const float *src) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"((unsigned)__cvta_generic_to_shared(dst)),
                 "l"(__cvta_generic_to_global(src))
                 : "memory");
}
static __device__ __forceinline__ void cta_copy_async_f4(float4 *dst, const float4 *src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"((unsigned)__cvta_generic_to_shared(dst)),
                 "l"(__cvta_generic_to_global(src))
                 : "memory");
}
#define CTA_COPY_ASYNC_F32(dst, src) cta_copy_async_f32((dst), (src))
#define CTA_COPY_ASYNC_F4(dst, src) cta_copy_async_f4((dst), (src))
#define CTA_COPY_WAIT() asm volatile("cp.async.wait_all;\n" ::: "memory")
#elif defined(CTA_HOST_EMULATION)
#define CTA_HAS_COPY_ASYNC cta_emu_has_copy_async() /* a test may emulate a device without them */
#define CTA_IS_DEVICE_MEMORY(p) cta_emu_is_device_memory((const void *)(p))
#define CTA_COPY_ASYNC_F32(dst, src) cta_emu_copy_async_f32((dst), (src))
#define CTA_COPY_ASYNC_F4(dst, src) cta_emu_copy_async_f4((dst), (src))
#define CTA_COPY_WAIT() cta_emu_copy_wait()
#else
#define CTA_HAS_COPY_ASYNC 0
#define CTA_IS_DEVICE_MEMORY(p) false
#define CTA_COPY_ASYNC_F32(dst, src) (*(dst) = *(src))
#define CTA_COPY_ASYNC_F4(dst, src) (*(dst) = *(src))
#define CTA_COPY_WAIT() ((void)0)
#endif

/* Loop unrolling for the device pass only (the host compiler does not know the pragma). */
#if defined(__CUDA_ARCH__)
#define CTA_UNROLL _Pragma("unroll")
#define CTA_UNROLL_BY_4 _Pragma("unroll 4")
#define CTA_NO_UNROLL _Pragma("unroll 1")
#else
#define CTA_UNROLL
#define CTA_UNROLL_BY_4
#define CTA_NO_UNROLL
#endif

/* Keeps a device function out of line (its own register allocation); a plain function on the host. */
#if defined(__CUDACC__)
#define CTA_NOINLINE __noinline__
#else
#define CTA_NOINLINE
#endif

#endif /* TTL_CUDA_CTA_CUH */
