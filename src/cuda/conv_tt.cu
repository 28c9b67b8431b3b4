/*
 * TT-conv forward without im2col or a reconstructed kernel: SPATIAL_FIRST and CHANNELS_FIRST
 * (docs/tt-layers.md, section 2; layouts in conv_internal.h).
 *
 *   x is [B, C, H, W] (NCHW) or [B, H, W, C] (NHWC); y is [B, S, OH, OW] or [B, OH, OW, S].
 *
 * SPATIAL_FIRST, per output pixel: Z[(a, c)] = sum_{p,q} G_0[p, q, a] x[c, oh sh - ph + p dh, ow sw - pw + q dw]
 * (r_0 C values), then the channel TT-matrix with r_0 merged into its first input mode maps Z to y[S] (+ bias).
 * CHANNELS_FIRST: the channel TT-matrix with r_0 merged into its first output mode maps x[C] at every input pixel
 * to U[(a, s)] (r_0 S values); then y[s] = sum_{p,q,a} G_0[p, q, a] U[ih, iw, a, s] (+ bias).
 *
 * Variants, simplest first:
 *  - unfused: a producer kernel (Z or the gathered x), one kernel per TT step, a sink kernel (y or U), over
 *    chunks of pixels whose two state buffers [state][chunk] live in the workspace (bounded by the plan);
 *  - fused (tt_fused_kernel): a persistent block takes tiles of P pixels and runs producer, every TT step and
 *    sink in shared memory, with the step matrices and the spatial core staged in shared memory once per block.
 *    Only x is read and only y (SF) or U (CF) is written: the r_0-times-larger Z never reaches device memory.
 *  - CHANNELS_FIRST then runs cf_conv_kernel over U, in chunks of images / output rows so that U stays within
 *    the workspace bound.
 * Every step is out[l][o][rp] = sum_i At[i][o] in[l][i][rp] with rp = (r, pixel); a thread computes a TO x 4
 * register tile (TO consecutive o, 4 consecutive rp), reading TO/4 + 1 vectors per i. Sums run in a fixed order
 * and no two threads write one element: results are bit-for-bit repeatable.
 */
#include <assert.h>
#include <stdint.h>

#include "cuda/conv_internal.h"
#include "cuda/plan_common.h"

static_assert(TTL_CONV_TN == 4, "tt_step loads and stores one float4 of consecutive pixel-minor outputs");
static_assert(TTL_CONV_OPAD % 8 == 0, "At rows must hold whole 8-wide register tiles");
static_assert(TTL_CONV_R0_BLOCK == 8, "produce_sf accumulates 8 spatial filters at a time");
static_assert(TTL_CONV_MAX_TILE_PX <= TTL_CONV_THREADS, "one thread decodes each pixel of a tile");
static_assert(TTL_CONV_MAX_TILE_PX % TTL_CONV_TN == 0, "tiles hold whole float4 groups");

// The per-item helpers below are host-callable too, so that their index arithmetic can be exercised on a machine
// without a GPU; the kernels are thin loops around them.
#define TTL_CONV_HD __host__ __device__ __forceinline__

namespace {

// Host runs of the helpers check the alignment every vector access relies on (a misaligned vector access traps
// on the device). Compiled out on the device and in release builds.
#ifdef __CUDA_ARCH__
#define TTL_CONV_ASSERT_ALIGNED(p, bytes) ((void)0)
#else
#define TTL_CONV_ASSERT_ALIGNED(p, bytes) assert(((uintptr_t)(p) & ((bytes)-1)) == 0)
#endif

// Unrolling hints for the device pass only (the host compiler does not know the pragma).
#ifdef __CUDA_ARCH__
#define TTL_CONV_UNROLL _Pragma("unroll")
#define TTL_CONV_UNROLL_BY_4 _Pragma("unroll 4")
#else
#define TTL_CONV_UNROLL
#define TTL_CONV_UNROLL_BY_4
#endif

// Read-only load: through the non-coherent cache on the device.
TTL_CONV_HD float load_ro(const float *p) {
#ifdef __CUDA_ARCH__
    return __ldg(p);
#else
    return *p;
#endif
}

// ---------------------------------------------------------------------------------------------------------------
// pixels
// ---------------------------------------------------------------------------------------------------------------

// Where a pixel of a tile or chunk sits. SF: an output pixel, (ih0, iw0) the top-left of its receptive field
// (may be negative: padding). CF: an input pixel (ih0, iw0) itself. rem = oh OW + ow (SF only).
struct pixel_pos {
    int64_t b;
    int64_t rem;
    int64_t ih0, iw0;
    int32_t valid;
    int32_t pad_;
};

TTL_CONV_HD pixel_pos sf_pixel(const ttl_conv_geom_t &g, int64_t gp) {
    pixel_pos p;
    const int64_t ohw = g.OH * g.OW;
    p.valid = gp < g.B * ohw;
    p.b = gp / ohw;
    p.rem = gp - p.b * ohw;
    const int64_t oh = p.rem / g.OW, ow = p.rem - oh * g.OW;
    p.ih0 = oh * g.sh - g.ph;
    p.iw0 = ow * g.sw - g.pw;
    p.pad_ = 0;
    return p;
}

TTL_CONV_HD pixel_pos cf_pixel(const ttl_conv_geom_t &g, const ttl_conv_cf_chunk_t &ch, int64_t cp) {
    pixel_pos p;
    const int64_t per_image = ch.nrows * g.W;
    p.valid = cp < ch.npix;
    const int64_t bi = per_image > 0 ? cp / per_image : 0;
    const int64_t r = cp - bi * per_image;
    p.b = ch.b0 + bi;
    p.rem = 0;
    p.ih0 = ch.ih_lo + r / g.W;
    p.iw0 = r % g.W;
    p.pad_ = 0;
    return p;
}

// Pixel lookups: from shared memory (fused tiles, decoded once per tile) or decoded on the fly (chunks).
struct smem_pixels {
    const pixel_pos *pos;
    TTL_CONV_HD pixel_pos operator()(int64_t q) const { return pos[q]; }
};
struct sf_pixels {
    ttl_conv_geom_t g;
    int64_t first;
    TTL_CONV_HD pixel_pos operator()(int64_t q) const { return sf_pixel(g, first + q); }
};
struct cf_pixels {
    ttl_conv_geom_t g;
    ttl_conv_cf_chunk_t ch;
    int64_t first;
    TTL_CONV_HD pixel_pos operator()(int64_t q) const { return cf_pixel(g, ch, first + q); }
};

TTL_CONV_HD int64_t x_index(const ttl_conv_geom_t &g, int64_t b, int64_t c, int64_t ih, int64_t iw) {
    return g.nhwc ? ((b * g.H + ih) * g.W + iw) * g.C + c : ((b * g.C + c) * g.H + ih) * g.W + iw;
}

// Splits a work item w of a [channels][P] producer or sink into (channel, pixel): pixel fastest for NCHW
// (neighbouring threads touch neighbouring activations of one plane), channel fastest for NHWC.
template <class Idx> TTL_CONV_HD void split_item(Idx w, Idx channels, Idx P, int32_t nhwc, Idx *ch, Idx *q) {
    if (nhwc) {
        *q = w / channels;
        *ch = w - *q * channels;
    } else {
        *ch = w / P;
        *q = w - *ch * P;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// producers: fill the first state [in_size][P] of P pixels (pixel index q fastest)
// ---------------------------------------------------------------------------------------------------------------

// SF: buf[(a C + c) P + q] = Z of pixel q. g0 is [kh kw][r0pad] (zero beyond r_0). Invalid pixels get zeros.
// Items are (c, q) pairs, q fastest for NCHW (neighbouring ow read neighbouring x), c fastest for NHWC.
template <class Idx, class Pixels>
TTL_CONV_HD void produce_sf(float *buf, Idx P, Pixels pixels, const float *__restrict__ x, const float *g0,
                            const ttl_conv_geom_t &g, Idx tid, Idx nthr) {
    const Idx C = (Idx)g.C;
    const Idx items = C * P;
    for (Idx w = tid; w < items; w += nthr) {
        Idx c, q;
        split_item<Idx>(w, C, P, g.nhwc, &c, &q);
        const pixel_pos pp = pixels(q);
        for (int32_t a0 = 0; a0 < g.r0; a0 += TTL_CONV_R0_BLOCK) {
            float acc[TTL_CONV_R0_BLOCK];
            TTL_CONV_UNROLL
            for (int t = 0; t < TTL_CONV_R0_BLOCK; ++t) acc[t] = 0.0f;
            if (pp.valid) {
                for (int32_t kp = 0; kp < g.kh; ++kp) {
                    const int64_t ih = pp.ih0 + (int64_t)kp * g.dh;
                    if (ih < 0 || ih >= g.H) continue;
                    for (int32_t kq = 0; kq < g.kw; ++kq) {
                        const int64_t iw = pp.iw0 + (int64_t)kq * g.dw;
                        if (iw < 0 || iw >= g.W) continue;
                        const float xv = load_ro(x + x_index(g, pp.b, c, ih, iw));
                        /* a0 and r0pad are multiples of 8: two aligned float4 */
                        const float *gk = g0 + (kp * g.kw + kq) * g.r0pad + a0;
                        TTL_CONV_ASSERT_ALIGNED(gk, 16);
                        const float4 *gv = reinterpret_cast<const float4 *>(gk);
                        const float4 g_lo = gv[0], g_hi = gv[1];
                        acc[0] = fmaf(g_lo.x, xv, acc[0]);
                        acc[1] = fmaf(g_lo.y, xv, acc[1]);
                        acc[2] = fmaf(g_lo.z, xv, acc[2]);
                        acc[3] = fmaf(g_lo.w, xv, acc[3]);
                        acc[4] = fmaf(g_hi.x, xv, acc[4]);
                        acc[5] = fmaf(g_hi.y, xv, acc[5]);
                        acc[6] = fmaf(g_hi.z, xv, acc[6]);
                        acc[7] = fmaf(g_hi.w, xv, acc[7]);
                    }
                }
            }
            TTL_CONV_UNROLL
            for (int t = 0; t < TTL_CONV_R0_BLOCK; ++t)
                if (a0 + t < g.r0) buf[((Idx)(a0 + t) * C + c) * P + q] = acc[t];
        }
    }
}

// CF: buf[c P + q] = x at input pixel q (zeros for invalid pixels).
template <class Idx, class Pixels>
TTL_CONV_HD void produce_cf(float *buf, Idx P, Pixels pixels, const float *__restrict__ x, const ttl_conv_geom_t &g,
                            Idx tid, Idx nthr) {
    const Idx C = (Idx)g.C;
    const Idx items = C * P;
    for (Idx w = tid; w < items; w += nthr) {
        Idx c, q;
        split_item<Idx>(w, C, P, g.nhwc, &c, &q);
        const pixel_pos pp = pixels(q);
        buf[c * P + q] = pp.valid ? load_ro(x + x_index(g, pp.b, c, pp.ih0, pp.iw0)) : 0.0f;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// one TT step: out[l][o][rp] = sum_i At[i][o] in[l][i][rp], rp in [0, R P)
// ---------------------------------------------------------------------------------------------------------------

template <int TO> struct vec_of;
template <> struct vec_of<8> {
    static TTL_CONV_HD void load(float (&a)[8], const float *p) {
        TTL_CONV_ASSERT_ALIGNED(p, 16);
        const float4 u = reinterpret_cast<const float4 *>(p)[0], v = reinterpret_cast<const float4 *>(p)[1];
        a[0] = u.x, a[1] = u.y, a[2] = u.z, a[3] = u.w, a[4] = v.x, a[5] = v.y, a[6] = v.z, a[7] = v.w;
    }
};
template <> struct vec_of<4> {
    static TTL_CONV_HD void load(float (&a)[4], const float *p) {
        TTL_CONV_ASSERT_ALIGNED(p, 16);
        const float4 u = reinterpret_cast<const float4 *>(p)[0];
        a[0] = u.x, a[1] = u.y, a[2] = u.z, a[3] = u.w;
    }
};
template <> struct vec_of<2> {
    static TTL_CONV_HD void load(float (&a)[2], const float *p) {
        TTL_CONV_ASSERT_ALIGNED(p, 8);
        const float2 u = reinterpret_cast<const float2 *>(p)[0];
        a[0] = u.x, a[1] = u.y;
    }
};

// Alignment: At_k starts at a multiple of 8 floats, rows are Opad (multiple of 8) floats, og TO is a multiple
// of TO: the TO-float load is aligned to TO floats. in/out offsets l I RP + i RP + rp0 and l O RP + o RP + rp0
// are multiples of 4 floats because P (hence RP) and rp0 are: every float4 is aligned on a 16-byte base.
// Bounds: og < ceil(O / TO) so og TO + TO <= roundup(O, TO) <= Opad; l < L, rp0 + 4 <= RP, i < I, and only
// o < O is stored: every access is inside At_k [I][Opad], in [L][I][RP], out [L][O][RP].
template <int TO, class Idx>
TTL_CONV_HD void tt_step(const float *at, const ttl_conv_tt_step_t &st, const float *in, float *out, Idx P, Idx tid,
                         Idx nthr) {
    constexpr int TN = TTL_CONV_TN;
    const Idx RP = (Idx)st.R * P;
    const Idx n_groups = RP / TN; /* per l */
    const Idx o_groups = ((Idx)st.O + TO - 1) / TO;
    const Idx items = o_groups * (Idx)st.L * n_groups;
    const Idx I = st.I, Opad = st.Opad;
    for (Idx w = tid; w < items; w += nthr) {
        const Idx og = w % o_groups; /* o fastest: neighbouring threads share the in[] vector (broadcast) */
        const Idx ng = w / o_groups;
        const Idx l = ng / n_groups;
        const Idx rp0 = (ng - l * n_groups) * TN;
        const float *bp = in + l * I * RP + rp0;
        const float *ap = at + og * TO;
        float acc[TO][TN];
        TTL_CONV_UNROLL
        for (int t = 0; t < TO; ++t) {
            TTL_CONV_UNROLL
            for (int j = 0; j < TN; ++j) acc[t][j] = 0.0f;
        }
        TTL_CONV_UNROLL_BY_4
        for (Idx i = 0; i < I; ++i) {
            float a[TO];
            vec_of<TO>::load(a, ap);
            TTL_CONV_ASSERT_ALIGNED(bp, 16);
            const float4 b = *reinterpret_cast<const float4 *>(bp);
            TTL_CONV_UNROLL
            for (int t = 0; t < TO; ++t) {
                acc[t][0] = fmaf(a[t], b.x, acc[t][0]);
                acc[t][1] = fmaf(a[t], b.y, acc[t][1]);
                acc[t][2] = fmaf(a[t], b.z, acc[t][2]);
                acc[t][3] = fmaf(a[t], b.w, acc[t][3]);
            }
            ap += Opad;
            bp += RP;
        }
        float *op = out + l * (Idx)st.O * RP + rp0;
        TTL_CONV_UNROLL
        for (int t = 0; t < TO; ++t) {
            const Idx o = og * TO + t;
            TTL_CONV_ASSERT_ALIGNED(op + o * RP, 16);
            if (o < (Idx)st.O)
                *reinterpret_cast<float4 *>(op + o * RP) = make_float4(acc[t][0], acc[t][1], acc[t][2], acc[t][3]);
        }
    }
}

template <class Idx>
TTL_CONV_HD void tt_step_any(const float *at, const ttl_conv_tt_step_t &st, const float *in, float *out, Idx P,
                             Idx tid, Idx nthr) {
    if (st.to == 8)
        tt_step<8>(at, st, in, out, P, tid, nthr);
    else if (st.to == 4)
        tt_step<4>(at, st, in, out, P, tid, nthr);
    else
        tt_step<2>(at, st, in, out, P, tid, nthr);
}

// ---------------------------------------------------------------------------------------------------------------
// sinks: read the last state [out_size][P]
// ---------------------------------------------------------------------------------------------------------------

// SF: y at output pixel q, channel s, plus bias. Items q fastest for NCHW, s fastest for NHWC (coalesced y).
template <class Idx, class Pixels>
TTL_CONV_HD void sink_sf(const float *buf, Idx P, Pixels pixels, float *__restrict__ y,
                         const float *__restrict__ bias, const ttl_conv_geom_t &g, Idx tid, Idx nthr) {
    const Idx S = (Idx)g.S;
    const Idx items = S * P;
    const int64_t ohw = g.OH * g.OW;
    for (Idx w = tid; w < items; w += nthr) {
        Idx s, q;
        split_item<Idx>(w, S, P, g.nhwc, &s, &q);
        const pixel_pos pp = pixels(q);
        if (!pp.valid) continue;
        const float v = buf[s * P + q] + (bias != nullptr ? load_ro(bias + s) : 0.0f);
        const int64_t yi = g.nhwc ? (pp.b * ohw + pp.rem) * g.S + s : (pp.b * g.S + s) * ohw + pp.rem;
        y[yi] = v;
    }
}

// CF: U[cp][o] = state[o][q] for chunk pixel cp = first + q < npix, o = (a, s) in [0, r_0 S).
template <class Idx>
TTL_CONV_HD void sink_cf(const float *buf, Idx P, int64_t first, int64_t npix, Idx out_size, float *__restrict__ U,
                         Idx tid, Idx nthr) {
    const Idx items = out_size * P;
    for (Idx w = tid; w < items; w += nthr) {
        const Idx q = w / out_size;
        const Idx o = w - q * out_size;
        const int64_t cp = first + q;
        if (cp < npix) U[cp * out_size + o] = buf[o * P + q];
    }
}

// ---------------------------------------------------------------------------------------------------------------
// kernels
// ---------------------------------------------------------------------------------------------------------------

// Fused: a persistent block loops over tiles of P pixels. Shared memory: At (chain.at_floats), the padded spatial
// core (SF: kh kw r0pad), two state buffers of max_state P floats, and P decoded pixel positions.
// out is y (SF) or U (CF).
template <int kVariant>
__global__ void __launch_bounds__(TTL_CONV_THREADS, 1)
    tt_fused_kernel(float *__restrict__ out, const float *__restrict__ x, const float *__restrict__ at_g,
                    const float *__restrict__ g0_g, const float *__restrict__ bias, const ttl_conv_tt_chain_t chain,
                    const ttl_conv_geom_t g, const ttl_conv_cf_chunk_t ch, int P, int64_t num_tiles) {
    extern __shared__ float4 smem_f4[];
    float *s_at = reinterpret_cast<float *>(smem_f4);
    const int g0_floats = kVariant == TTL_CONV_VARIANT_SF ? g.kh * g.kw * g.r0pad : 0;
    float *s_g0 = s_at + chain.at_floats;
    float *s_buf0 = s_g0 + g0_floats;
    float *s_buf1 = s_buf0 + chain.max_state * P;
    pixel_pos *s_pos = reinterpret_cast<pixel_pos *>(s_buf1 + chain.max_state * P);
    const int tid = threadIdx.x, nthr = blockDim.x;

    /* at_floats and g0_floats are multiples of 8: whole float4 copies */
    for (int64_t i = tid; i < chain.at_floats / 4; i += nthr)
        reinterpret_cast<float4 *>(s_at)[i] = __ldg(reinterpret_cast<const float4 *>(at_g) + i);
    for (int i = tid; i < g0_floats / 4; i += nthr)
        reinterpret_cast<float4 *>(s_g0)[i] = __ldg(reinterpret_cast<const float4 *>(g0_g) + i);

    for (int64_t tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
        const int64_t first = tile * P;
        if (tid < P)
            s_pos[tid] = kVariant == TTL_CONV_VARIANT_SF ? sf_pixel(g, first + tid) : cf_pixel(g, ch, first + tid);
        __syncthreads(); /* pixels decoded; on the first tile also the cores staged */
        const smem_pixels pixels{s_pos};
        if (kVariant == TTL_CONV_VARIANT_SF)
            produce_sf<int>(s_buf0, P, pixels, x, s_g0, g, tid, nthr);
        else
            produce_cf<int>(s_buf0, P, pixels, x, g, tid, nthr);
        __syncthreads();
        float *cur = s_buf0, *nxt = s_buf1;
        for (int k = 0; k < chain.num_steps; ++k) {
            const ttl_conv_tt_step_t st = chain.steps[k];
            tt_step_any<int>(s_at + st.at_offset, st, cur, nxt, P, tid, nthr);
            __syncthreads();
            float *t = cur;
            cur = nxt;
            nxt = t;
        }
        if (kVariant == TTL_CONV_VARIANT_SF)
            sink_sf<int>(cur, P, pixels, out, bias, g, tid, nthr);
        else
            sink_cf<int>(cur, P, first, ch.npix, chain.out_size, out, tid, nthr);
        __syncthreads(); /* the next tile overwrites s_pos and s_buf0 */
    }
}

// Unfused pieces over a chunk of P pixels starting at `first`, grid-stride loops.
template <int kVariant>
__global__ void __launch_bounds__(TTL_CONV_THREADS)
    tt_produce_kernel(float *__restrict__ buf, const float *__restrict__ x, const float *__restrict__ g0,
                      const ttl_conv_geom_t g, const ttl_conv_cf_chunk_t ch, int64_t first, int64_t P) {
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t nthr = (int64_t)gridDim.x * blockDim.x;
    if (kVariant == TTL_CONV_VARIANT_SF)
        produce_sf<int64_t>(buf, P, sf_pixels{g, first}, x, g0, g, tid, nthr);
    else
        produce_cf<int64_t>(buf, P, cf_pixels{g, ch, first}, x, g, tid, nthr);
}

__global__ void __launch_bounds__(TTL_CONV_THREADS)
    tt_step_kernel(const float *__restrict__ at, const ttl_conv_tt_step_t st, const float *__restrict__ in,
                   float *__restrict__ out, int64_t P) {
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t nthr = (int64_t)gridDim.x * blockDim.x;
    tt_step_any<int64_t>(at, st, in, out, P, tid, nthr);
}

template <int kVariant>
__global__ void __launch_bounds__(TTL_CONV_THREADS)
    tt_sink_kernel(float *__restrict__ out, const float *__restrict__ buf, const float *__restrict__ bias,
                   const ttl_conv_geom_t g, const ttl_conv_cf_chunk_t ch, int64_t first, int64_t P,
                   int64_t out_size) {
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t nthr = (int64_t)gridDim.x * blockDim.x;
    if (kVariant == TTL_CONV_VARIANT_SF)
        sink_sf<int64_t>(buf, P, sf_pixels{g, first}, out, bias, g, tid, nthr);
    else
        sink_cf<int64_t>(buf, P, first, ch.npix, out_size, out, tid, nthr);
}

// CF second stage: y[b, s, oh, ow] = bias[s] + sum_{p, q, a} G_0[p, q, a] U[bi][ih - ih_lo][iw][a][s] for the
// chunk's images and output rows. g0 is the packed spatial core [kh kw][r_0]. Items have s fastest: U reads
// and NHWC writes are coalesced. Every ih used satisfies ih_lo <= ih < ih_lo + nrows (the chunk's rows are all
// rows its outputs read, clipped to the image), so U is read inside [bc][nrows][W][r_0 S].
TTL_CONV_HD void cf_conv(float *__restrict__ y, const float *__restrict__ U, const float *__restrict__ g0,
                         const float *__restrict__ bias, const ttl_conv_geom_t &g, const ttl_conv_cf_chunk_t &ch,
                         int64_t tid, int64_t nthr) {
    const int64_t items = ch.bc * ch.rb * g.OW * g.S;
    const int64_t r0s = (int64_t)g.r0 * g.S;
    const int64_t ohw = g.OH * g.OW;
    for (int64_t w = tid; w < items; w += nthr) {
        const int64_t s = w % g.S;
        int64_t t = w / g.S;
        const int64_t ow = t % g.OW;
        t /= g.OW;
        const int64_t ohr = t % ch.rb;
        const int64_t bi = t / ch.rb;
        const int64_t b = ch.b0 + bi, oh = ch.oh0 + ohr;
        float acc = bias != nullptr ? load_ro(bias + s) : 0.0f;
        for (int32_t kp = 0; kp < g.kh; ++kp) {
            const int64_t ih = oh * g.sh - g.ph + (int64_t)kp * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            for (int32_t kq = 0; kq < g.kw; ++kq) {
                const int64_t iw = ow * g.sw - g.pw + (int64_t)kq * g.dw;
                if (iw < 0 || iw >= g.W) continue;
                const float *u = U + ((bi * ch.nrows + (ih - ch.ih_lo)) * g.W + iw) * r0s + s;
                const float *gk = g0 + (kp * g.kw + kq) * g.r0;
                for (int32_t a = 0; a < g.r0; ++a) acc = fmaf(load_ro(gk + a), load_ro(u + (int64_t)a * g.S), acc);
            }
        }
        const int64_t yi = g.nhwc ? ((b * g.OH + oh) * g.OW + ow) * g.S + s : (b * g.S + s) * ohw + oh * g.OW + ow;
        y[yi] = acc;
    }
}

__global__ void __launch_bounds__(TTL_CONV_THREADS)
    cf_conv_kernel(float *__restrict__ y, const float *__restrict__ U, const float *__restrict__ g0,
                   const float *__restrict__ bias, const ttl_conv_geom_t g, const ttl_conv_cf_chunk_t ch) {
    cf_conv(y, U, g0, bias, g, ch, (int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x);
}

// ---------------------------------------------------------------------------------------------------------------
// launchers
// ---------------------------------------------------------------------------------------------------------------

int grid_for(int64_t items, int sm_count) {
    return ttl_cuda_grid_stride_blocks(items, TTL_CONV_THREADS, (int64_t)sm_count * 16);
}

ttl_status_t launch_fused(cudaStream_t stream, const ttl_cuda_conv_plan_t *p, float *out, const float *x,
                          const ttl_conv_cf_chunk_t &ch, int64_t npix) {
    const int64_t tiles = (npix + p->tile_px - 1) / p->tile_px;
    if (tiles == 0) return TTL_STATUS_SUCCESS;
    const int grid = (int)ttl_min_i64(tiles, p->max_blocks);
    const ttl_cuda_conv_layer_t *l = p->layer;
    if (p->variant == TTL_CONV_VARIANT_SF)
        tt_fused_kernel<TTL_CONV_VARIANT_SF><<<grid, TTL_CONV_THREADS, p->fused_smem, stream>>>(
            out, x, p->d_at, l->d_g0, l->d_bias, p->chain, p->geom, ch, p->tile_px, tiles);
    else
        tt_fused_kernel<TTL_CONV_VARIANT_CF><<<grid, TTL_CONV_THREADS, p->fused_smem, stream>>>(
            out, x, p->d_at, l->d_g0, nullptr, p->chain, p->geom, ch, p->tile_px, tiles);
    TTL_CUDA_CHECK_LAUNCH();
    return TTL_STATUS_SUCCESS;
}

// Unfused TT over pixels [0, npix) of the SF output or of a CF chunk, chunk_px at a time.
ttl_status_t launch_unfused(cudaStream_t stream, const ttl_cuda_conv_plan_t *p, float *out, const float *x,
                            float *buf0, float *buf1, const ttl_conv_cf_chunk_t &ch, int64_t npix) {
    const ttl_cuda_conv_layer_t *l = p->layer;
    const int sm = l->handle->sm_count;
    const int64_t P = p->chunk_px;
    const ttl_conv_tt_chain_t &chain = p->chain;
    for (int64_t first = 0; first < npix; first += P) {
        const int g_in = grid_for(chain.in_size * P, sm);
        if (p->variant == TTL_CONV_VARIANT_SF)
            tt_produce_kernel<TTL_CONV_VARIANT_SF>
                <<<g_in, TTL_CONV_THREADS, 0, stream>>>(buf0, x, l->d_g0, p->geom, ch, first, P);
        else
            tt_produce_kernel<TTL_CONV_VARIANT_CF>
                <<<g_in, TTL_CONV_THREADS, 0, stream>>>(buf0, x, l->d_g0, p->geom, ch, first, P);
        TTL_CUDA_CHECK_LAUNCH();
        float *cur = buf0, *nxt = buf1;
        for (int32_t k = 0; k < chain.num_steps; ++k) {
            const ttl_conv_tt_step_t &st = chain.steps[k];
            const int64_t items = (st.O + st.to - 1) / st.to * (int64_t)st.L * (st.R * P / TTL_CONV_TN);
            tt_step_kernel<<<grid_for(items, sm), TTL_CONV_THREADS, 0, stream>>>(p->d_at + st.at_offset, st, cur,
                                                                                 nxt, P);
            TTL_CUDA_CHECK_LAUNCH();
            float *t = cur;
            cur = nxt;
            nxt = t;
        }
        const int g_out = grid_for(chain.out_size * P, sm);
        if (p->variant == TTL_CONV_VARIANT_SF)
            tt_sink_kernel<TTL_CONV_VARIANT_SF><<<g_out, TTL_CONV_THREADS, 0, stream>>>(
                out, cur, l->d_bias, p->geom, ch, first, P, chain.out_size);
        else
            tt_sink_kernel<TTL_CONV_VARIANT_CF>
                <<<g_out, TTL_CONV_THREADS, 0, stream>>>(out, cur, nullptr, p->geom, ch, first, P, chain.out_size);
        TTL_CUDA_CHECK_LAUNCH();
    }
    return TTL_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// planning helpers (host)
// ---------------------------------------------------------------------------------------------------------------

int32_t order_index(ttl_order_t order) {
    return order == TTL_ORDER_LAST_TO_FIRST ? TTL_CONV_ORDER_L2F : TTL_CONV_ORDER_F2L;
}

size_t fused_smem_bytes(const ttl_conv_tt_chain_t &chain, const ttl_conv_geom_t &g, int32_t variant, int64_t P) {
    const int64_t g0 = variant == TTL_CONV_VARIANT_SF ? (int64_t)g.kh * g.kw * g.r0pad : 0;
    const int64_t floats = chain.at_floats + g0 + 2 * (int64_t)chain.max_state * P;
    return (size_t)floats * sizeof(float) + (size_t)P * sizeof(pixel_pos);
}

// Register tile height of each step: fewest (rounds of the thread pool) x (tile height), ties to the taller tile
// (fewer shared-memory loads per multiply-add).
void choose_tiles(ttl_conv_tt_chain_t *chain, int64_t P, int64_t threads) {
    for (int32_t k = 0; k < chain->num_steps; ++k) {
        ttl_conv_tt_step_t &st = chain->steps[k];
        const int64_t n_items = (int64_t)st.L * (st.R * P / TTL_CONV_TN);
        int best = 8;
        int64_t best_cost = INT64_MAX;
        for (int to = 8; to >= 2; to /= 2) {
            const int64_t items = (st.O + to - 1) / to * n_items;
            const int64_t cost = (items + threads - 1) / threads * to;
            if (cost < best_cost) best_cost = cost, best = to;
        }
        st.to = best;
    }
}

// The channels-first chunk of images [b0, b0 + cf_bc) and output rows [oh0, oh0 + cf_rb), clipped to the problem,
// with the input rows its outputs read, clipped to the image (none for a band of padding only).
ttl_conv_cf_chunk_t cf_chunk_at(const ttl_cuda_conv_plan_t &p, int64_t b0, int64_t oh0) {
    const ttl_conv_geom_t &g = p.geom;
    const int64_t span_h = (int64_t)(g.kh - 1) * g.dh + 1;
    ttl_conv_cf_chunk_t ch;
    ch.b0 = b0;
    ch.bc = ttl_min_i64(p.cf_bc, g.B - b0);
    ch.oh0 = oh0;
    ch.rb = ttl_min_i64(p.cf_rb, g.OH - oh0);
    const int64_t lo = oh0 * g.sh - g.ph, hi = (oh0 + ch.rb - 1) * g.sh - g.ph + span_h;
    ch.ih_lo = ttl_max_i64(0, lo);
    ch.nrows = ttl_max_i64(0, ttl_min_i64(g.H, hi) - ch.ih_lo);
    ch.npix = ch.bc * ch.nrows * g.W;
    return ch;
}

size_t state_bytes(int64_t max_state, int64_t P) { return (size_t)max_state * (size_t)P * sizeof(float); }

} // namespace

// ---------------------------------------------------------------------------------------------------------------
// internal entry points
// ---------------------------------------------------------------------------------------------------------------

ttl_conv_tt_overrides_t ttl_conv_tt_test_overrides = {0, 0};

extern "C" ttl_status_t ttl_conv_tt_setup(ttl_cuda_conv_plan_t *p, ttl_algo_t algo, ttl_order_t order) {
    const ttl_cuda_conv_layer_t *l = p->layer;
    const ttl_cuda_handle_t *h = l->handle;
    if (!l->tt_ok) return TTL_STATUS_UNSUPPORTED;
    const int32_t variant = algo == TTL_ALGO_SPATIAL_FIRST ? TTL_CONV_VARIANT_SF : TTL_CONV_VARIANT_CF;
    if (order == TTL_ORDER_AUTO)
        order = l->chain[variant][TTL_CONV_ORDER_F2L].macs <= l->chain[variant][TTL_CONV_ORDER_L2F].macs
                    ? TTL_ORDER_FIRST_TO_LAST
                    : TTL_ORDER_LAST_TO_FIRST;
    p->variant = variant;
    p->order_idx = order_index(order);
    p->chain = l->chain[variant][p->order_idx];
    p->d_at = l->d_at[variant][p->order_idx];
    const ttl_conv_geom_t &g = p->geom;

    /* Workspace bound for the non-dense algorithms: twice the larger activation. */
    size_t x_bytes, y_bytes;
    TTL_TRY(ttl_bytes(&x_bytes, g.B * g.C * g.H * g.W, sizeof(float)));
    TTL_TRY(ttl_bytes(&y_bytes, g.B * g.S * g.OH * g.OW, sizeof(float)));
    size_t budget = 2 * (x_bytes > y_bytes ? x_bytes : y_bytes);
    if (ttl_conv_tt_test_overrides.budget_bytes > 0) budget = ttl_conv_tt_test_overrides.budget_bytes;

    /* Channels first: chunk U by whole images, or by bands of output rows of one image. */
    const int64_t r0s = (int64_t)g.r0 * g.S;
    const int64_t span_h = (int64_t)(g.kh - 1) * g.dh + 1; /* input rows one output row reads */
    size_t u_budget = budget;
    int64_t rows_max = 0, pix_max = 0;
    /* fused is decided first since it changes the share of U; try it with the smallest tile */
    const size_t smem_min = fused_smem_bytes(p->chain, g, variant, TTL_CONV_TN);
    const bool can_fuse = smem_min <= h->smem_per_block_optin && !ttl_conv_tt_test_overrides.force_unfused;
    if (!can_fuse) u_budget = budget / 2;
    if (variant == TTL_CONV_VARIANT_CF) {
        const int64_t row_bytes = g.W * r0s * (int64_t)sizeof(float);
        const int64_t rows_image = ttl_min_i64(g.H, (g.OH - 1) * g.sh + span_h);
        const int64_t image_bytes = rows_image * row_bytes;
        if (image_bytes <= (int64_t)u_budget) {
            p->cf_rb = g.OH;
            p->cf_bc = ttl_max_i64(1, ttl_min_i64(g.B, (int64_t)u_budget / ttl_max_i64(image_bytes, 1)));
            rows_max = rows_image;
        } else {
            const int64_t fit_rows = (int64_t)u_budget / row_bytes; /* < rows_image */
            p->cf_bc = 1;
            p->cf_rb = ttl_max_i64(1, ttl_min_i64(g.OH, (fit_rows - span_h) / g.sh + 1));
            rows_max = ttl_min_i64(g.H, (p->cf_rb - 1) * g.sh + span_h);
        }
        pix_max = p->cf_bc * rows_max * g.W;
        TTL_TRY(ttl_bytes(&p->u_bytes, pix_max * r0s, sizeof(float)));
    } else {
        pix_max = g.B * g.OH * g.OW;
        p->u_bytes = 0;
    }
    if (pix_max < 1) pix_max = 1;

    size_t ws = 0;
    p->fused = 0;
    if (can_fuse) {
        /* Largest tile that fits, but no larger than spreads the pixels over every multiprocessor. */
        int64_t P = TTL_CONV_TN;
        const int64_t spread = (pix_max + h->sm_count - 1) / h->sm_count;
        while (P + TTL_CONV_TN <= TTL_CONV_MAX_TILE_PX && P < spread &&
               fused_smem_bytes(p->chain, g, variant, P + TTL_CONV_TN) <= h->smem_per_block_optin)
            P += TTL_CONV_TN;
        const size_t smem = fused_smem_bytes(p->chain, g, variant, P);
        int blocks_per_sm = 0;
        if (variant == TTL_CONV_VARIANT_SF) {
            TTL_CUDA_TRY(cudaFuncSetAttribute(tt_fused_kernel<TTL_CONV_VARIANT_SF>,
                                              cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              (int)h->smem_per_block_optin));
            TTL_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                &blocks_per_sm, tt_fused_kernel<TTL_CONV_VARIANT_SF>, TTL_CONV_THREADS, smem));
        } else {
            TTL_CUDA_TRY(cudaFuncSetAttribute(tt_fused_kernel<TTL_CONV_VARIANT_CF>,
                                              cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              (int)h->smem_per_block_optin));
            TTL_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                &blocks_per_sm, tt_fused_kernel<TTL_CONV_VARIANT_CF>, TTL_CONV_THREADS, smem));
        }
        if (blocks_per_sm > 0) {
            p->fused = 1;
            p->tile_px = (int32_t)P;
            p->fused_smem = smem;
            p->max_blocks = blocks_per_sm * h->sm_count;
            choose_tiles(&p->chain, P, TTL_CONV_THREADS);
        }
    }
    if (!p->fused) {
        /* Two state buffers of chunk_px pixels within the (remaining) budget; at least one float4 group. */
        const size_t buf_budget = variant == TTL_CONV_VARIANT_CF ? budget / 2 : budget;
        int64_t P = (int64_t)(buf_budget / (2 * state_bytes(p->chain.max_state, 1)));
        P = P / TTL_CONV_TN * TTL_CONV_TN;
        const int64_t all = (pix_max + TTL_CONV_TN - 1) / TTL_CONV_TN * TTL_CONV_TN;
        P = ttl_max_i64(TTL_CONV_TN, ttl_min_i64(P, all));
        p->chunk_px = P;
        p->buf_bytes = state_bytes(p->chain.max_state, P);
        ws += 2 * ttl_align_up(p->buf_bytes);
        choose_tiles(&p->chain, P, (int64_t)h->sm_count * 16 * TTL_CONV_THREADS);
    }
    if (variant == TTL_CONV_VARIANT_CF) ws += ttl_align_up(p->u_bytes);
    p->info.workspace_bytes = ws;
    p->info.persistent_bytes = 0;
    p->info.algo = algo;
    p->info.order = order;

    /* Multiply-adds as run: SF B OH OW (kh kw r_0 C + chain); CF B H W chain + B OH OW kh kw r_0 S. */
    const int64_t out_px = g.B * g.OH * g.OW, in_px = g.B * g.H * g.W, khkw = (int64_t)g.kh * g.kw;
    int64_t macs, t;
    if (variant == TTL_CONV_VARIANT_SF) {
        TTL_TRY(ttl_mul_i64(&t, khkw * g.r0, g.C));
        TTL_TRY(ttl_add_i64(&t, t, p->chain.macs));
        TTL_TRY(ttl_mul_i64(&macs, t, out_px));
    } else {
        int64_t a;
        TTL_TRY(ttl_mul_i64(&a, p->chain.macs, in_px));
        TTL_TRY(ttl_mul_i64(&t, khkw * g.r0, g.S));
        TTL_TRY(ttl_mul_i64(&t, t, out_px));
        TTL_TRY(ttl_add_i64(&macs, a, t));
    }
    p->info.macs = macs;
    return TTL_STATUS_SUCCESS;
}

extern "C" ttl_status_t ttl_conv_tt_forward(const ttl_cuda_conv_plan_t *p, cudaStream_t stream, float *y,
                                            const float *x, void *ws) {
    const ttl_conv_geom_t &g = p->geom;
    /* the same slices, in the same order, as ttl_conv_tt_setup counted */
    char *w = (char *)ws;
    size_t cursor = 0;
    float *buf0 = nullptr, *buf1 = nullptr, *U = nullptr;
    if (!p->fused) {
        buf0 = (float *)(w + ttl_cuda_ws_take(&cursor, p->buf_bytes));
        buf1 = (float *)(w + ttl_cuda_ws_take(&cursor, p->buf_bytes));
    }
    if (p->variant == TTL_CONV_VARIANT_SF) {
        const ttl_conv_cf_chunk_t none = {};
        const int64_t npix = g.B * g.OH * g.OW;
        return p->fused ? launch_fused(stream, p, y, x, none, npix)
                        : launch_unfused(stream, p, y, x, buf0, buf1, none, npix);
    }
    U = (float *)(w + ttl_cuda_ws_take(&cursor, p->u_bytes));
    const int sm = p->layer->handle->sm_count;
    for (int64_t b0 = 0; b0 < g.B; b0 += p->cf_bc) {
        for (int64_t oh0 = 0; oh0 < g.OH; oh0 += p->cf_rb) {
            const ttl_conv_cf_chunk_t ch = cf_chunk_at(*p, b0, oh0);
            if (ch.npix > 0) {
                if (p->fused)
                    TTL_TRY(launch_fused(stream, p, U, x, ch, ch.npix));
                else
                    TTL_TRY(launch_unfused(stream, p, U, x, buf0, buf1, ch, ch.npix));
            }
            const int64_t items = ch.bc * ch.rb * g.OW * g.S;
            cf_conv_kernel<<<grid_for(items, sm), TTL_CONV_THREADS, 0, stream>>>(y, U, p->layer->d_cores,
                                                                                 p->layer->d_bias, g, ch);
            TTL_CUDA_CHECK_LAUNCH();
        }
    }
    return TTL_STATUS_SUCCESS;
}
