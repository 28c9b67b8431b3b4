/*
 * 3xTF32: fp32 matrix products on the tensor cores at close to fp32 accuracy (the TT-conv steps and TT-FC tiles
 * with ttl_cuda_plan_opts_t.allow_3xtf32). Each fp32 operand v is split into a TF32 head and the TF32 rounding of
 * the rest, v = hi + lo + O(2^-22 v); a b is then hi_a hi_b + hi_a lo_b + lo_a hi_b (the lo lo term, ~2^-22 a b, is
 * dropped), three tensor-core products summed in fp32. TF32 keeps 10 of fp32's 23 fraction bits, so one pass
 * (1xTF32) would carry errors near 2^-11.
 *
 * The one instruction is mma.sync.m16n8k8 (row.col, tf32 in, f32 accumulate), a warp-wide product D += A B of
 * A [16 x 8] and B [8 x 8]. Its register fragments (PTX ISA, "Matrix fragments for mma.m16n8k8", tf32), with
 * lane = 4 g + t (g = lane / 4 in [0, 8), t = lane % 4):
 *     a[0] = A[g][t]    a[1] = A[g + 8][t]    a[2] = A[g][t + 4]    a[3] = A[g + 8][t + 4]
 *     b[0] = B[t][g]    b[1] = B[t + 4][g]
 *     d[0] = D[g][2t]   d[1] = D[g][2t + 1]   d[2] = D[g + 8][2t]   d[3] = D[g + 8][2t + 1]
 * Under CTA_HOST_EMULATION the includer supplies cta_emu_mma_m16n8k8_tf32 and cta_emu_mma_tiles_3xtf32
 * (tests/common/cta_emulator.h), which exchange the 32 lanes' fragments between fibers by these same formulas.
 */
#ifndef TTL_CUDA_MMA_TF32_CUH
#define TTL_CUDA_MMA_TF32_CUH

#include <stdint.h>
#include <string.h>

#include "cuda/cta.cuh"

// v rounded to TF32 (10 fraction bits, to nearest) as an mma operand: an fp32 bit pattern whose 13 low fraction
// bits the tensor core ignores. sm_90 rounds ties to even in one instruction (cvt.rn.tf32.f32, an F2FP); sm_80 has
// only ties away from zero (cvt.rna.tf32.f32, which ptxas expands to five instructions); the bound, half a
// unit of TF32's last place, is the same. The host (the CTA emulator) rounds as sm_90 does. Inf stays Inf and NaN
// NaN (a payload held in the dropped bits alone would read as Inf).
__host__ __device__ __forceinline__ uint32_t tf32_operand(float v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    uint32_t r;
    asm("cvt.rn.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return r;
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return r;
#elif defined(__CUDA_ARCH__)
    return __float_as_uint(v); /* no TF32 before sm_80: never run (ttl_conv_tt_setup) */
#else
    uint32_t u;
    memcpy(&u, &v, sizeof(u));
    if ((u & 0x7f800000u) == 0x7f800000u) return (u & 0x007fffffu) != 0 ? 0x7fffffffu : u;
    return (u + 0x0fffu + ((u >> 13) & 1u)) & 0xffffe000u; /* to nearest, ties to even; may carry up to Inf */
#endif
}

// The same value with its 13 low bits cleared, so that it reads as that fp32 value (PTX leaves them unspecified).
__host__ __device__ __forceinline__ uint32_t tf32_round(float v) { return tf32_operand(v) & 0xffffe000u; }

__host__ __device__ __forceinline__ float tf32_as_float(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float v;
    memcpy(&v, &u, sizeof(v));
    return v;
#endif
}

// v = hi + lo + (at most 2^-22 |v| or so): hi its TF32 rounding, lo the TF32 rounding of the exact rest (an
// operand: its low bits are never read as fp32). Four instructions on sm_90, about eleven on sm_80.
__host__ __device__ __forceinline__ void tf32_split(float v, uint32_t *hi, uint32_t *lo) {
    *hi = tf32_round(v);
    *lo = tf32_operand(v - tf32_as_float(*hi));
}

// d += A B on one warp's fragments (layout above). Every lane of the warp must call it together.
__host__ __device__ __forceinline__ void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4],
                                                          const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif defined(__CUDA_ARCH__)
    (void)d, (void)a, (void)b;
    __trap(); /* no TF32 tensor cores before sm_80: plans never ask for them there (ttl_conv_tt_setup) */
#elif defined(CTA_HOST_EMULATION)
    cta_emu_mma_m16n8k8_tf32(d, a, b);
#else
    /* host pass of a device-only body: never called */
    (void)d, (void)a, (void)b;
#endif
}

// acc[i][j] += A_i B_j for MT x NT tiles of fp32 fragments split into (hi, lo) pairs: per tile the two small
// products first, then the large one. The three passes go over all the tiles in turn, so that consecutive products
// write different accumulators: a product waits on the one before it into the same tile, and the asm statements
// are kept in program order. Emulated as one rendezvous of the warp for all of them.
template <int MT, int NT>
__host__ __device__ __forceinline__ void
mma_tiles_3xtf32(float (&acc)[MT][NT][4], const uint32_t (&a_hi)[MT][4], const uint32_t (&a_lo)[MT][4],
                 const uint32_t (&b_hi)[NT][2], const uint32_t (&b_lo)[NT][2]) {
#if defined(CTA_HOST_EMULATION) && !defined(__CUDA_ARCH__)
    cta_emu_mma_tiles_3xtf32(MT, NT, &acc[0][0][0], &a_hi[0][0], &a_lo[0][0], &b_hi[0][0], &b_lo[0][0]);
#else
    CTA_UNROLL
    for (int i = 0; i < MT; ++i) {
        CTA_UNROLL
        for (int j = 0; j < NT; ++j) mma_m16n8k8_tf32(acc[i][j], a_lo[i], b_hi[j]);
    }
    CTA_UNROLL
    for (int i = 0; i < MT; ++i) {
        CTA_UNROLL
        for (int j = 0; j < NT; ++j) mma_m16n8k8_tf32(acc[i][j], a_hi[i], b_lo[j]);
    }
    CTA_UNROLL
    for (int i = 0; i < MT; ++i) {
        CTA_UNROLL
        for (int j = 0; j < NT; ++j) mma_m16n8k8_tf32(acc[i][j], a_hi[i], b_hi[j]);
    }
#endif
}

// One step of 8 values of k of a warp's MT x NT tiles (the TT-FC and TT-conv steps): lane (g, t) takes
// A[g + 8 (r & 1) + 16 i][t + 4 (r >> 1)] from a[4 (r >> 1) lda + 8 (r & 1) + 16 i] (a: the lane's row g in k row
// t) where a_ok[i][r & 1] says that row exists, and B[t + 4 r][g] of n tile j from b[b_off[j] + r b4] (b_off[j]:
// the lane's column in k row t); GUARD: k rows t + 4 r at or past `rows` are zeros (not read). Splits both and
// adds the products into acc.
template <int MT, int NT, bool GUARD, class Idx>
__host__ __device__ __forceinline__ void mma_step_3xtf32(float (&acc)[MT][NT][4], const float *a, Idx lda,
                                                         const bool (&a_ok)[MT][2], const float *b,
                                                         const Idx (&b_off)[NT], Idx b4, Idx rows) {
    uint32_t a_hi[MT][4], a_lo[MT][4], b_hi[NT][2], b_lo[NT][2];
    CTA_UNROLL
    for (int i = 0; i < MT; ++i) {
        CTA_UNROLL
        for (int r = 0; r < 4; ++r) {
            const bool ok = a_ok[i][r & 1] && (!GUARD || 4 * (r >> 1) < rows);
            const float v = ok ? a[4 * (r >> 1) * lda + 16 * i + 8 * (r & 1)] : 0.0f;
            tf32_split(v, &a_hi[i][r], &a_lo[i][r]);
        }
    }
    CTA_UNROLL
    for (int j = 0; j < NT; ++j) {
        CTA_UNROLL
        for (int r = 0; r < 2; ++r) {
            const float v = !GUARD || 4 * r < rows ? b[b_off[j] + r * b4] : 0.0f;
            tf32_split(v, &b_hi[j][r], &b_lo[j][r]);
        }
    }
    mma_tiles_3xtf32<MT, NT>(acc, a_hi, a_lo, b_hi, b_lo);
}

#endif /* TTL_CUDA_MMA_TF32_CUH */
