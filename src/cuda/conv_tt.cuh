/*
 * The TT-conv kernels' bodies and their schedule (conv_tt.cu explains the algorithms), kept apart from the
 * launchers so that a CPU test can run the same code: every per-item helper and the fused CTA body are
 * __host__ __device__ (one fiber per CUDA thread under CTA_HOST_EMULATION, see cta.cuh), and the order of
 * pieces a forward runs (chunks, producer, steps, sink, channels-first conv) is written once, over an executor
 * that either launches kernels (conv_tt.cu) or runs the bodies on the host
 * (tests/cpu/test_cuda_conv_emulation.cpp).
 */
#ifndef TTL_CUDA_CONV_TT_CUH
#define TTL_CUDA_CONV_TT_CUH

#include <stdint.h>

#include "cuda/conv_internal.h"
#include "cuda/cta.cuh"
#include "cuda/int_div.cuh"
#include "cuda/mma_tf32.cuh"
#include "cuda/plan_common.h"

static_assert(TTL_CONV_TN == 4, "tt_step loads and stores one float4 of consecutive pixel-minor outputs");
static_assert(TTL_CONV_OPAD % 8 == 0, "At rows must hold whole 8-wide register tiles");
static_assert(TTL_CONV_R0_BLOCK == 4, "produce_sf takes the spatial filters in float4 groups (8 or 4 at a time)");
static_assert(TTL_CONV_MAX_TILE_PX <= TTL_CONV_THREADS, "one thread decodes each pixel of a tile");
static_assert(TTL_CONV_MAX_TILE_PX % TTL_CONV_TN == 0, "tiles hold whole float4 groups");

#define TTL_CONV_HD __host__ __device__ __forceinline__

namespace {

// Read-only load (float or float4): through the non-coherent cache on the device.
template <class T> TTL_CONV_HD T load_ro(const T *p) {
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
// (may be negative: padding). CF: an input pixel (ih0, iw0) itself, the chunk's pixels numbered
// [bi][row][col] over its images, input rows and input columns. rem = oh OW + ow (SF only).
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

TTL_CONV_HD pixel_pos cf_pixel(const ttl_conv_cf_chunk_t &ch, int64_t cp) {
    pixel_pos p;
    const int64_t per_image = ch.nrows * ch.ncols;
    p.valid = cp < ch.npix;
    const int64_t bi = per_image > 0 ? cp / per_image : 0;
    const int64_t r = cp - bi * per_image;
    p.b = ch.b0 + bi;
    p.rem = 0;
    const int64_t row = ch.ncols > 0 ? r / ch.ncols : 0; /* ncols is 0 only for an empty chunk, never decoded */
    p.ih0 = ch.ih_lo + row;
    p.iw0 = ch.iw_lo + r - row * ch.ncols;
    p.pad_ = 0;
    return p;
}

// Pixel lookups: from shared memory (fused tiles, decoded once per tile) or decoded on the fly (chunks).
struct smem_pixels {
    const pixel_pos *pos;
    int64_t count;
    TTL_CONV_HD pixel_pos operator()(int64_t q) const {
        CTA_ASSERT_INDEX(q, count);
        return pos[q];
    }
};
struct sf_pixels {
    ttl_conv_geom_t g;
    int64_t first;
    TTL_CONV_HD pixel_pos operator()(int64_t q) const { return sf_pixel(g, first + q); }
};
struct cf_pixels {
    ttl_conv_cf_chunk_t ch;
    int64_t first;
    TTL_CONV_HD pixel_pos operator()(int64_t q) const { return cf_pixel(ch, first + q); }
};

TTL_CONV_HD int64_t x_index(const ttl_conv_geom_t &g, int64_t b, int64_t c, int64_t ih, int64_t iw) {
    return g.nhwc ? ((b * g.H + ih) * g.W + iw) * g.C + c : ((b * g.C + c) * g.H + ih) * g.W + iw;
}

// The work items w = tid, tid + nthr, ... of a [channels][P] producer or sink as (channel, pixel) pairs: pixel
// fastest for NCHW (neighbouring threads touch neighbouring activations of one plane), channel fastest for NHWC.
// One division for the first item, then a step of (nthr / len, nthr % len) with a carry per item: a division per
// item costs about 20 instructions, a fifth of a sink's item.
template <class Idx> struct item_walk {
    Idx major, minor, len, step_major, step_minor;
    int32_t nhwc;
    TTL_CONV_HD item_walk(Idx tid, Idx nthr, Idx channels, Idx P, int32_t nhwc_)
        : len(nhwc_ ? channels : P), nhwc(nhwc_) {
        if (len < 1) len = 1; /* no items: never walked */
        major = tid / len, minor = tid - major * len;
        step_major = nthr / len, step_minor = nthr - step_major * len;
    }
    TTL_CONV_HD Idx channel() const { return nhwc ? minor : major; }
    TTL_CONV_HD Idx pixel() const { return nhwc ? major : minor; }
    TTL_CONV_HD void next() {
        major += step_major, minor += step_minor;
        if (minor >= len) minor -= len, ++major;
    }
};

// ---------------------------------------------------------------------------------------------------------------
// swizzled states: conflict-free B fragments for the fused tensor-core steps
// ---------------------------------------------------------------------------------------------------------------

// A tensor-core step's lanes (g, t) read B at 8 consecutive columns of 4 consecutive rows (t, or t + 4, of the
// state's rows (l, i), R P floats long). When that length is a multiple of 16 floats the 4 rows' columns fall on
// the same 8 banks: 4- or 2-way conflicts on every B load. A fused tensor-core chain keeps such a state swizzled:
// the 8-float blocks of row rho are permuted, block b to b ^ state_xor(rho) / 8, so that any 4 consecutive rows
// reach 4 different groups of 8 banks:
//   TTL_CONV_SWIZZLE_4, rows a multiple of 32 floats: b ^ (rho & 3);
//   TTL_CONV_SWIZZLE_2, rows 16 floats mod 32:        b ^ ((rho >> 1) & 1), bank group 2 rho + that, mod 4.
// The XOR stays inside the row (a whole number of 32- or 16-float spans), 8-float blocks move whole (float2 and
// float4 accesses stay contiguous), and no memory is added. Rows of other lengths stay plain.
TTL_CONV_HD int state_swizzle_for(int64_t row_floats) {
    return row_floats % 32 == 0   ? TTL_CONV_SWIZZLE_4
           : row_floats % 16 == 0 ? TTL_CONV_SWIZZLE_2
                                  : TTL_CONV_SWIZZLE_NONE;
}

// The XOR of row rho as a shift and a mask, ((rho >> shift) & mask) << 3, worked out once where one swizzle is
// applied many times (a tensor-core step's epilogue) instead of testing its kind at every access.
struct state_xor_form {
    int shift, mask;
    TTL_CONV_HD explicit state_xor_form(int32_t swizzle)
        : shift(swizzle == TTL_CONV_SWIZZLE_2 ? 1 : 0), mask(swizzle == TTL_CONV_SWIZZLE_4   ? 3
                                                             : swizzle == TTL_CONV_SWIZZLE_2 ? 1
                                                                                             : 0) {}
    template <class Idx> TTL_CONV_HD Idx operator()(Idx rho) const { return ((rho >> shift) & (Idx)mask) << 3; }
};

template <class Idx> TTL_CONV_HD Idx state_xor(int32_t swizzle, Idx rho) { return state_xor_form(swizzle)(rho); }

// The writer's side. Its rows (l, o) hold the same floats in the same order as its reader's rows, cut differently:
// a writer row is `split` reader rows (first to last: R = n_{k+1} R'), or `div` writer rows make a reader row (last
// to first: R' = m_k R; the producer, whose rows are single channels). The reader row rho of writer element
// (l, o, c) is the sum of a part of (l, c) and a part of o, so that a tensor-core tile works out each part once per
// column and per row.
template <class Idx> TTL_CONV_HD Idx state_rho_of_column(const ttl_conv_state_layout_t &lay, Idx l, Idx c) {
    return l * lay.l_rows + (lay.split > 0 ? (Idx)ttl_div((uint32_t)c, lay.div) : 0);
}
template <class Idx> TTL_CONV_HD Idx state_rho_of_row(const ttl_conv_state_layout_t &lay, Idx o) {
    return lay.split > 0 ? o * lay.split : (Idx)ttl_div((uint32_t)o, lay.div);
}

// The producers' writes into the state: their rows are single channels of len floats (one l), R_1 of which make a
// row of the first step (swizzle_states: split 0, div R_1), so the reader row of row w is w / R_1 whatever the
// column. The divisor and the swizzle's form are worked out once per producer, so that each of an item's r_0
// writes costs its row's division, the XOR and the store (about 11 instructions in the sm_90 code, 16 in a partial
// group of filters with its existence tests; with every part worked out per write, about 30).
template <class Idx> struct producer_rows {
    Idx len;
    ttl_divider_t div;
    state_xor_form x;
    TTL_CONV_HD producer_rows(const ttl_conv_state_layout_t &lay, Idx len_)
        : len(len_), div(lay.div), x(lay.swizzle) {}
    TTL_CONV_HD Idx at(Idx w, Idx c) const {
        const Idx f = w * len + c;
        return x.mask == 0 ? f : f ^ x((Idx)ttl_div((uint32_t)w, div));
    }
};

// Element (row w, column c) of a producer's rows in the state.
template <class Idx> TTL_CONV_HD Idx state_at(const ttl_conv_state_layout_t &lay, Idx len, Idx w, Idx c) {
    return producer_rows<Idx>(lay, len).at(w, c);
}

// ---------------------------------------------------------------------------------------------------------------
// producers: fill the first state [in_size][P] of P pixels (pixel index q fastest)
// ---------------------------------------------------------------------------------------------------------------

// Taps whose x values one thread loads before it multiplies any of them: a 3 x 3 filter in one batch, so that its
// nine loads (L1 or L2 hits, mostly) are in flight together instead of one after another.
constexpr int kTapBatch = 9;

// acc[t] += G_0[tap][a0 + t] xv for the W filters from a0: gk is the tap's row of the padded spatial core at a0
// (16-byte aligned: r0pad and a0 are multiples of 4).
template <int W> TTL_CONV_HD void add_tap(float (&acc)[W], const float *gk, float xv) {
    CTA_ASSERT_ALIGNED(gk, 16);
    CTA_UNROLL
    for (int v = 0; v < W / 4; ++v) {
        const float4 gv = reinterpret_cast<const float4 *>(gk)[v];
        acc[4 * v + 0] = fmaf(gv.x, xv, acc[4 * v + 0]);
        acc[4 * v + 1] = fmaf(gv.y, xv, acc[4 * v + 1]);
        acc[4 * v + 2] = fmaf(gv.z, xv, acc[4 * v + 2]);
        acc[4 * v + 3] = fmaf(gv.w, xv, acc[4 * v + 3]);
    }
}

// The W (8 or 4) spatial filters a0 .. a0 + W - 1 at channel c of pixel pp: acc[t] = sum over taps of
// G_0[tap][a0 + t] x[c, tap]. g0a is g0 + a0 (16-byte aligned: r0pad and a0 are multiples of 4). Taps in the
// padding load zero and still multiply (adding zero): the sums run over the taps in order.
template <int W>
TTL_CONV_HD void spatial_filters(float (&acc)[W], const pixel_pos &pp, int64_t c, const float *__restrict__ x,
                                 const float *g0a, const ttl_conv_geom_t &g) {
    static_assert(W == 8 || W == 4, "whole float4 loads of the padded spatial core");
    CTA_UNROLL
    for (int t = 0; t < W; ++t) acc[t] = 0.0f;
    const int taps = g.kh * g.kw;
    int kp = 0, kq = 0; /* the next tap's filter row and column */
    for (int t0 = 0; t0 < taps; t0 += kTapBatch) {
        float xv[kTapBatch];
        CTA_UNROLL
        for (int j = 0; j < kTapBatch; ++j) {
            const int64_t ih = pp.ih0 + (int64_t)kp * g.dh, iw = pp.iw0 + (int64_t)kq * g.dw;
            const bool inside = t0 + j < taps && ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
            xv[j] = inside ? load_ro(x + x_index(g, pp.b, c, ih, iw)) : 0.0f;
            if (++kq == g.kw) kq = 0, ++kp;
        }
        CTA_UNROLL
        for (int j = 0; j < kTapBatch; ++j) {
            if (t0 + j >= taps) break;
            add_tap<W>(acc, g0a + (t0 + j) * g.r0pad, xv[j]);
        }
    }
}

// The nine x values a 3 x 3 filter reads at channel c of pixel pp (zeros in the padding), for every filter of the
// pixel: one base pointer per item and each tap an offset from its row and column (three bounds tests of each),
// where the general loop above works out every tap's int64 index and four bounds tests (about 20 instructions a
// tap, more than its multiply-adds).
TTL_CONV_HD void receptive_field_3x3(float (&xv)[9], const pixel_pos &pp, int64_t c, const float *__restrict__ x,
                                     const ttl_conv_geom_t &g) {
    const int64_t col_stride = g.nhwc ? g.C : 1, row_stride = g.W * col_stride;
    const float *base = x + x_index(g, pp.b, c, 0, 0);
    int64_t row_off[3], col_off[3];
    bool row_in[3], col_in[3];
    CTA_UNROLL
    for (int k = 0; k < 3; ++k) {
        const int64_t ih = pp.ih0 + (int64_t)k * g.dh, iw = pp.iw0 + (int64_t)k * g.dw;
        row_in[k] = ih >= 0 && ih < g.H;
        col_in[k] = iw >= 0 && iw < g.W;
        row_off[k] = ih * row_stride;
        col_off[k] = iw * col_stride;
    }
    CTA_UNROLL
    for (int kp = 0; kp < 3; ++kp) {
        CTA_UNROLL
        for (int kq = 0; kq < 3; ++kq)
            xv[3 * kp + kq] = row_in[kp] && col_in[kq] ? load_ro(base + row_off[kp] + col_off[kq]) : 0.0f;
    }
}

// spatial_filters for a 3 x 3 filter from its loaded receptive field: the same sums in the same order.
template <int W>
TTL_CONV_HD void spatial_filters_3x3(float (&acc)[W], const float (&xv)[9], const float *g0a, int32_t r0pad) {
    static_assert(W == 8 || W == 4, "whole float4 loads of the padded spatial core");
    CTA_UNROLL
    for (int t = 0; t < W; ++t) acc[t] = 0.0f;
    CTA_UNROLL
    for (int j = 0; j < 9; ++j) add_tap<W>(acc, g0a + j * r0pad, xv[j]);
}

// Stores the W filters of spatial_filters that exist (a0 + t < r_0) into rows (a0 + t) C + c of column q: all W
// without a test each where they all exist (every group but a partial last one). Two loops on purpose: written as
// one with the test `all || a0 + t < r_0`, ptxas keeps a test and branch per store.
template <int W, class Idx>
TTL_CONV_HD void store_filters(float *buf, const producer_rows<Idx> &rows, const float (&acc)[W], int32_t a0,
                               int32_t r0, Idx C, Idx c, Idx q) {
    if (a0 + W <= r0) {
        CTA_UNROLL
        for (int t = 0; t < W; ++t) buf[rows.at((Idx)(a0 + t) * C + c, q)] = acc[t];
        return;
    }
    CTA_UNROLL
    for (int t = 0; t < W; ++t)
        if (a0 + t < r0) buf[rows.at((Idx)(a0 + t) * C + c, q)] = acc[t];
}

// The r_0 values of item (c', q) into rows a C' + c' of column q: filters(acc, a0) computes filters a0 .. a0 + W -
// 1, 8 at a time, then 4 where r0pad leaves 4 (r_0 = 4 does no wasted multiply-adds); zeros for an invalid pixel.
template <class Idx, class Filters>
TTL_CONV_HD void produce_item(float *buf, const producer_rows<Idx> &rows, const ttl_conv_geom_t &g, Idx C, Idx cs,
                              Idx q, bool valid, Filters filters) {
    if (!valid) {
        for (int32_t a = 0; a < g.r0; ++a) buf[rows.at((Idx)a * C + cs, q)] = 0.0f;
        return;
    }
    for (int32_t a0 = 0; a0 < g.r0;) {
        if (g.r0pad - a0 >= 8) {
            float acc[8];
            filters(acc, a0);
            store_filters<8, Idx>(buf, rows, acc, a0, g.r0, C, cs, q);
            a0 += 8;
        } else {
            float acc[4];
            filters(acc, a0);
            store_filters<4, Idx>(buf, rows, acc, a0, g.r0, C, cs, q);
            a0 += 4;
        }
    }
}

// produce_sf for 3 x 3 filters (every layer of the paper), C' channels: a thread's items go kItems at a time,
// all their receptive fields loaded (18 loads in flight, one wait) before the filters of any, each field feeding
// all r_0 filters; the general loop waits once per item and per group of filters.
template <class Idx, class Pixels>
TTL_CONV_HD void produce_sf_3x3(float *buf, Idx P, Idx ld, const ttl_conv_state_layout_t &lay, Pixels pixels,
                                const float *__restrict__ x, const float *g0, const ttl_conv_geom_t &g, Idx tid,
                                Idx nthr, Idx C, int32_t slices, int32_t slice) {
    constexpr int kItems = 2;
    const Idx items = C * P;
    const producer_rows<Idx> rows(lay, ld);
    item_walk<Idx> it(tid, nthr, C, P, g.nhwc);
    for (Idx w0 = tid; w0 < items; w0 += kItems * nthr) {
        Idx cs[kItems], q[kItems];
        bool exists[kItems], valid[kItems];
        float xv[kItems][9];
        CTA_UNROLL
        for (int u = 0; u < kItems; ++u) {
            cs[u] = it.channel(), q[u] = it.pixel();
            it.next();
            exists[u] = w0 + u * nthr < items;
            valid[u] = false;
            if (!exists[u]) continue; /* NHWC: its pixel index is past the tile's */
            const pixel_pos pp = pixels(q[u]);
            valid[u] = pp.valid;
            if (valid[u]) receptive_field_3x3(xv[u], pp, cs[u] * slices + slice, x, g);
        }
        CTA_UNROLL
        for (int u = 0; u < kItems; ++u) {
            if (exists[u])
                produce_item<Idx>(buf, rows, g, C, cs[u], q[u], valid[u], [&](auto &acc, int32_t a0) {
                    spatial_filters_3x3(acc, xv[u], g0 + a0, g.r0pad);
                });
        }
    }
}

// SF: buf[(a C' + c') ld + q] = Z of pixel q < P at channel c = c' slices + slice (ld >= P: the row stride; rows
// laid out by lay, the first step's input layout; unsliced, C' = C and c = c'; sliced, the channels whose last
// mode index is `slice`). g0 is [kh kw][r0pad] (zero beyond r_0; r0pad a multiple of 4): the filters go 8 at a
// time, then 4 where r0pad leaves 4 (r_0 = 4 does no wasted multiply-adds). Invalid pixels get zeros. Items are
// (c', q) pairs, q fastest for NCHW (neighbouring ow read neighbouring x), c' fastest for NHWC.
template <class Idx, class Pixels>
TTL_CONV_HD void produce_sf(float *buf, Idx P, Idx ld, const ttl_conv_state_layout_t &lay, Pixels pixels,
                            const float *__restrict__ x, const float *g0, const ttl_conv_geom_t &g, Idx tid,
                            Idx nthr, int32_t slices = 1, int32_t slice = 0) {
    const Idx C = (Idx)g.C / slices; /* rows of one filter a in the state: C' */
    if (g.kh == 3 && g.kw == 3) {
        produce_sf_3x3<Idx>(buf, P, ld, lay, pixels, x, g0, g, tid, nthr, C, slices, slice);
        return;
    }
    const Idx items = C * P;
    const producer_rows<Idx> rows(lay, ld);
    item_walk<Idx> it(tid, nthr, C, P, g.nhwc);
    for (Idx w = tid; w < items; w += nthr, it.next()) {
        const Idx cs = it.channel(), q = it.pixel();
        const Idx c = cs * slices + slice; /* the channel of x */
        const pixel_pos pp = pixels(q);
        produce_item<Idx>(buf, rows, g, C, cs, q, pp.valid,
                          [&](auto &acc, int32_t a0) { spatial_filters(acc, pp, c, x, g0 + a0, g); });
    }
}

// CF: buf[c ld + q] = x at input pixel q < P (zeros for invalid pixels), rows laid out by lay.
template <class Idx, class Pixels>
TTL_CONV_HD void produce_cf(float *buf, Idx P, Idx ld, const ttl_conv_state_layout_t &lay, Pixels pixels,
                            const float *__restrict__ x, const ttl_conv_geom_t &g, Idx tid, Idx nthr) {
    const Idx C = (Idx)g.C;
    const Idx items = C * P;
    const producer_rows<Idx> rows(lay, ld);
    item_walk<Idx> it(tid, nthr, C, P, g.nhwc);
    for (Idx w = tid; w < items; w += nthr, it.next()) {
        const Idx c = it.channel(), q = it.pixel();
        const pixel_pos pp = pixels(q);
        buf[rows.at(c, q)] = pp.valid ? load_ro(x + x_index(g, pp.b, c, pp.ih0, pp.iw0)) : 0.0f;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// one TT step: out[l][o][rp] = sum_i At[i][o] in[l][i][rp], rp in [0, R P)
// ---------------------------------------------------------------------------------------------------------------

// TO consecutive floats of At into a, a[t] = p[t ^ swap] (swap: 0, or 4 for TO = 8, see tt_step).
template <int TO> struct vec_of;
template <> struct vec_of<8> {
    static TTL_CONV_HD void load(float (&a)[8], const float *p, int swap) {
        CTA_ASSERT_ALIGNED(p, 16);
        const float4 u = reinterpret_cast<const float4 *>(p)[swap >> 2],
                     v = reinterpret_cast<const float4 *>(p)[1 - (swap >> 2)];
        a[0] = u.x, a[1] = u.y, a[2] = u.z, a[3] = u.w, a[4] = v.x, a[5] = v.y, a[6] = v.z, a[7] = v.w;
    }
};
template <> struct vec_of<4> {
    static TTL_CONV_HD void load(float (&a)[4], const float *p, int) {
        CTA_ASSERT_ALIGNED(p, 16);
        const float4 u = reinterpret_cast<const float4 *>(p)[0];
        a[0] = u.x, a[1] = u.y, a[2] = u.z, a[3] = u.w;
    }
};
template <> struct vec_of<2> {
    static TTL_CONV_HD void load(float (&a)[2], const float *p, int) {
        CTA_ASSERT_ALIGNED(p, 8);
        const float2 u = reinterpret_cast<const float2 *>(p)[0];
        a[0] = u.x, a[1] = u.y;
    }
};

// The FFMA step's items: TO rows (row group og) by one float4 of columns (column group ng of l's R P columns).
// Items w run 2^shift column groups fastest, then row groups, then the rest of the columns:
//   w = ((t o_groups + og) << shift) + low,  ng over all L n_groups groups = (t << shift) + low.
// Shift 0 (row groups fastest): a quarter warp stores 8 rows og TO + t at one column group; where rows are a
// multiple of 32 floats (the VGG chains) those meet on the same 4 banks, 8 times over. Shift 3: a quarter warp
// stores 8 consecutive float4 of one row (the 32 banks once) and loads one At vector (broadcast) and 8 consecutive
// state vectors (also the 32 banks once); a warp holds 4 row groups. In the chunked kernels the same walk gives
// stores to device memory in runs of 128 contiguous bytes. A shift needs 2^shift to divide n_groups
// (a block of low never crosses l) and 32 >> shift to divide o_groups (a warp's items share t: one set of state
// vectors), else the next smaller one is taken. Counted over quarter warps and over whole warps, for 1..20 row
// groups and 1..40 column groups, no step's loads or stores take more wavefronts than with row groups fastest
// (tests/cpu: ConvFfmaWalk).
template <class Idx> TTL_CONV_HD int ffma_column_shift(Idx o_groups, Idx n_groups) {
    for (int s = 3; s > 0; --s)
        if ((n_groups & ((1 << s) - 1)) == 0 && o_groups % (32 >> s) == 0) return s;
    return 0;
}

template <class Idx> struct ffma_item {
    Idx og; /* row group: rows og TO .. og TO + TO - 1 */
    Idx l;  /* leading index of the state */
    Idx ng; /* column group of l: columns 4 ng .. 4 ng + 3 */
};

template <class Idx> TTL_CONV_HD ffma_item<Idx> ffma_item_at(Idx w, Idx o_groups, Idx n_groups, int shift) {
    const Idx rest = w >> shift, t = rest / o_groups;
    const Idx ng = (t << shift) + (w & (((Idx)1 << shift) - 1));
    const Idx l = ng / n_groups;
    return ffma_item<Idx>{rest - t * o_groups, l, ng - l * n_groups};
}

// TO = 8: threads load 8 floats each of At rows og TO .., so two threads of one access whose og differ by 4 (mod
// 32 floats) would reach the same banks. Half of them load their second float4 first (swap 4: a[t] is At row
// og TO + (t ^ 4)). Row groups fastest (shift 0), where a quarter warp holds 8 consecutive row groups: with 8 or
// more row groups the upper half of each quarter warp (w & 4), with 5 to 7 the groups og & 4; each float4 load
// then covers the 32 banks once where o_groups is below 8 or a multiple of 4, and twice at most elsewhere (three
// times in order). Column groups fastest (a warp holds 4, 8 or 16 row groups): the groups og & 4.
template <int TO, class Idx> TTL_CONV_HD int at_half_swap(Idx w, Idx og, Idx o_groups, int shift) {
    if (TO != 8) return 0;
    return (int)((shift == 0 && o_groups >= 8 ? w : og) & 4);
}

// Alignment: At_k starts at a multiple of 8 floats, rows are Opad (multiple of 8) floats, og TO is a multiple
// of TO: the TO-float load is aligned to TO floats. in/out offsets l I RP + i RP + rp0 and l O RP + o RP + rp0
// are multiples of 4 floats because P (hence RP) and rp0 are: every float4 is aligned on a 16-byte base.
// Bounds: og < ceil(O / TO) so og TO + TO <= roundup(O, TO) <= Opad; l < L, rp0 + 4 <= RP, i < I, and only
// o < O is loaded or stored in out: every access is inside At_k (row j + i a_rows < a_rows I, with j < a_rows),
// in [L][I][RP], out [L][O][RP].
// `at` points at the first At row the step reads (At_k, or row j of a sliced last step), rows a_rows Opad apart;
// accumulate adds into out instead of overwriting it (a sliced chain's last step after the first slice).
template <int TO, class Idx>
TTL_CONV_HD void tt_step(const float *at, const ttl_conv_tt_step_t &st, const float *in, float *out, Idx P, Idx tid,
                         Idx nthr, bool accumulate) {
    constexpr int TN = TTL_CONV_TN;
    const Idx RP = (Idx)st.R * P;
    const Idx n_groups = RP / TN; /* per l */
    const Idx o_groups = ((Idx)st.O + TO - 1) / TO;
    const Idx items = o_groups * (Idx)st.L * n_groups;
    const Idx I = st.I, a_step = (Idx)st.Opad * st.a_rows;
    const int shift = ffma_column_shift<Idx>(o_groups, n_groups);
    for (Idx w = tid; w < items; w += nthr) {
        const ffma_item<Idx> it = ffma_item_at<Idx>(w, o_groups, n_groups, shift);
        const Idx og = it.og, l = it.l, rp0 = it.ng * TN;
        const float *bp = in + l * I * RP + rp0;
        const float *ap = at + og * TO;
        float *op = out + l * (Idx)st.O * RP + rp0;
        const int swap = at_half_swap<TO, Idx>(w, og, o_groups, shift);
        float acc[TO][TN];
        CTA_UNROLL
        for (int t = 0; t < TO; ++t) {
            const Idx o = og * TO + (t ^ swap);
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (accumulate && o < (Idx)st.O) v = *reinterpret_cast<const float4 *>(op + o * RP);
            acc[t][0] = v.x, acc[t][1] = v.y, acc[t][2] = v.z, acc[t][3] = v.w;
        }
        CTA_UNROLL_BY_4
        for (Idx i = 0; i < I; ++i) {
            float a[TO];
            vec_of<TO>::load(a, ap, swap);
            CTA_ASSERT_ALIGNED(bp, 16);
            const float4 b = *reinterpret_cast<const float4 *>(bp);
            CTA_UNROLL
            for (int t = 0; t < TO; ++t) {
                acc[t][0] = fmaf(a[t], b.x, acc[t][0]);
                acc[t][1] = fmaf(a[t], b.y, acc[t][1]);
                acc[t][2] = fmaf(a[t], b.z, acc[t][2]);
                acc[t][3] = fmaf(a[t], b.w, acc[t][3]);
            }
            ap += a_step;
            bp += RP;
        }
        CTA_UNROLL
        for (int t = 0; t < TO; ++t) {
            const Idx o = og * TO + (t ^ swap);
            CTA_ASSERT_ALIGNED(op + o * RP, 16);
            if (o < (Idx)st.O)
                *reinterpret_cast<float4 *>(op + o * RP) = make_float4(acc[t][0], acc[t][1], acc[t][2], acc[t][3]);
        }
    }
}

// A tensor-core step's output row o in the parts its elements' offsets need: o RP, and the row's part of the reader
// row in the reader's layout lay (state_rho_of_row; 0 on plain states). Worked out once per row of a warp's tile.
template <class Idx> struct mma_out_row { Idx f, rho; };
template <class Idx>
TTL_CONV_HD mma_out_row<Idx> mma_out_row_of(const ttl_conv_state_layout_t &lay, Idx o, Idx RP) {
    return {o * RP, lay.swizzle == TTL_CONV_SWIZZLE_NONE ? (Idx)0 : state_rho_of_row<Idx>(lay, o)};
}

// Offset of a tensor-core step's output element in row `row` of the column whose d_off is l O RP + rp and d_rho its
// part of the reader's row (state_rho_of_column), with x the reader's swizzle.
template <class Idx> TTL_CONV_HD Idx mma_out_at(state_xor_form x, Idx d_off, Idx d_rho, mma_out_row<Idx> row) {
    return (d_off + row.f) ^ x(d_rho + row.rho);
}
template <class Idx>
TTL_CONV_HD Idx mma_out_at(const ttl_conv_state_layout_t &lay, Idx d_off, Idx d_rho, Idx o, Idx RP) {
    return mma_out_at<Idx>(state_xor_form(lay.swizzle), d_off, d_rho, mma_out_row_of<Idx>(lay, o, RP));
}

// Where lane t's B column n (in l = n / RP) starts: in[l][k][rp] of every row k = k0 + t + 4 r it reads is this
// plus k RP, the rows l I + k of a swizzled state sharing the XOR of row l I + t (k0 + 4 r is a multiple of 4).
template <class Idx> TTL_CONV_HD Idx mma_b_offset(const ttl_conv_tt_step_t &st, Idx RP, Idx n, Idx l, int t) {
    const Idx I = st.I;
    return l * I * RP + ((n - l * RP) ^ state_xor<Idx>(st.in_layout.swizzle, l * I + t));
}

// The same step on the tensor cores in 3xTF32 (mma_tf32.cuh), with the columns n = (l, rp) flattened (N = L RP:
// a step with few columns per l still fills the 8-wide tiles). A warp computes MT 16-row tiles of o by NT 8-column
// tiles of n, 8 values of i at a time; rows o >= O, columns n >= N and i >= I are taken as zero (not loaded) and
// not stored. Every lane of a warp runs the same items (the warp index, not the thread, strides the loop).
// Alignment: RP is even (P is a multiple of 4), so a lane's two columns 2t, 2t + 1 share l and start 8 bytes
// aligned: their float2 of out is aligned. Bank conflicts: lanes (g, t) read At at t a_step + g, on 32 distinct
// banks when Opad is 8 mod 16 (conv_layer.cu pads it so), and in on 32 distinct banks where the fused chain
// swizzles it (st.in_layout; the lane's rows l I + k0 + t + 4 r all share the XOR of row l I + t, k0 being a
// multiple of 8). out is written in its reader's layout out_lay (plain for the last step and the chunked kernels).
template <int MT, int NT, class Idx>
TTL_CONV_HD void tt_step_mma(const float *at, const ttl_conv_tt_step_t &st, const float *in, float *out, Idx P,
                             Idx tid, Idx nthr, bool accumulate, const ttl_conv_state_layout_t &out_lay) {
    const Idx RP = (Idx)st.R * P, N = (Idx)st.L * RP;
    const Idx I = st.I, O = st.O, a_step = (Idx)st.Opad * st.a_rows;
    const Idx m_blocks = (O + 16 * MT - 1) / (16 * MT), n_blocks = (N + 8 * NT - 1) / (8 * NT);
    const Idx items = m_blocks * n_blocks;
    const int lane = (int)(tid % 32), g = lane >> 2, t = lane & 3;
    const state_xor_form out_xor(out_lay.swizzle);
    for (Idx w = tid / 32; w < items; w += nthr / 32) {
        const Idx mb = w % m_blocks; /* o fastest: neighbouring warps read the same columns of in */
        const Idx o0 = mb * 16 * MT, n0 = (w / m_blocks) * 8 * NT;
        /* this lane's B column of each n tile (n0 + 8 j + g), where it is in row t (its block swizzled as row
         * l I + t's). A column past N reads column N - 1 instead: it only reaches D's column of its own, which is
         * not stored. */
        Idx b_off[NT];
        CTA_UNROLL
        for (int j = 0; j < NT; ++j) {
            const Idx n = n0 + 8 * j + g < N ? n0 + 8 * j + g : N - 1, l = n / RP;
            b_off[j] = mma_b_offset<Idx>(st, RP, n, l, t) + t * RP;
        }
        /* this lane's A rows o0 + 16 i + 8 h + g that exist */
        bool a_ok[MT][2];
        CTA_UNROLL
        for (int i = 0; i < MT; ++i) a_ok[i][0] = o0 + 16 * i + g < O, a_ok[i][1] = o0 + 16 * i + 8 + g < O;
        /* this lane's D elements: rows o0 + 16 i + g (+ 8) (those that exist: a_ok), columns n0 + 8 j + 2t (+ 1),
         * at out + mma_out_at(...) of the column's d_off (l O RP + rp) and d_rho (its part of the reader row) and
         * the row's parts. Each part is worked out once, so that an access costs about 10 instructions in the sm_90
         * code (an add, the XOR, its guard); worked out per access, testing the swizzle's kind, it cost about 25.
         */
        Idx d_off[NT], d_rho[NT];
        bool d_ok[NT];
        CTA_UNROLL
        for (int j = 0; j < NT; ++j) {
            const Idx n = n0 + 8 * j + 2 * t, l = n / RP;
            d_ok[j] = n < N;
            d_off[j] = l * O * RP + (n - l * RP);
            d_rho[j] = out_lay.swizzle != TTL_CONV_SWIZZLE_NONE && d_ok[j]
                           ? state_rho_of_column<Idx>(out_lay, l, n - l * RP)
                           : 0;
        }
        mma_out_row<Idx> d_row[MT][2];
        CTA_UNROLL
        for (int i = 0; i < MT; ++i) {
            CTA_UNROLL
            for (int h = 0; h < 2; ++h) d_row[i][h] = mma_out_row_of<Idx>(out_lay, o0 + 16 * i + 8 * h + g, RP);
        }
        float acc[MT][NT][4];
        CTA_UNROLL
        for (int j = 0; j < NT; ++j) {
            CTA_UNROLL
            for (int i = 0; i < MT; ++i) {
                CTA_UNROLL
                for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
            }
        }
        /* f(its float2 in out, its two accumulators) for each of this lane's D element pairs that exist */
        auto each_d = [&](auto &&f) {
            CTA_UNROLL
            for (int j = 0; j < NT; ++j) {
                CTA_UNROLL
                for (int i = 0; i < MT; ++i) {
                    CTA_UNROLL
                    for (int h = 0; h < 2; ++h) {
                        if (!d_ok[j] || !a_ok[i][h]) continue;
                        float *at_d = out + mma_out_at<Idx>(out_xor, d_off[j], d_rho[j], d_row[i][h]);
                        CTA_ASSERT_ALIGNED(at_d, 8);
                        f(*reinterpret_cast<float2 *>(at_d), acc[i][j][2 * h], acc[i][j][2 * h + 1]);
                    }
                }
            }
        };
        if (accumulate) each_d([](const float2 &v, float &a0, float &a1) { a0 = v.x, a1 = v.y; });
        /* steps of 8 values of i; only the last may reach past I (guarded) */
        const float *a = at + (Idx)t * a_step + o0 + g, *b = in;
        Idx k0 = 0;
        for (; k0 + 8 <= I; k0 += 8) {
            mma_step_3xtf32<MT, NT, false, Idx>(acc, a, a_step, a_ok, b, b_off, 4 * RP, 8);
            a += 8 * a_step;
            b += 8 * RP;
        }
        if (k0 < I) mma_step_3xtf32<MT, NT, true, Idx>(acc, a, a_step, a_ok, b, b_off, 4 * RP, I - k0 - t);
        each_d([](float2 &v, const float &a0, const float &a1) { v = make_float2(a0, a1); });
    }
}

// The MMA tiles a step takes (ttl_conv_tt_step_t.mma_mt, mma_nt): two 16-row tiles where O exceeds 16, four
// 8-column tiles where the columns fill them.
inline void choose_mma_tiles(ttl_conv_tt_step_t *st, int64_t P) {
    const int64_t N = (int64_t)st->L * st->R * P;
    st->mma_mt = (int16_t)(st->O > 16 ? 2 : 1);
    st->mma_nt = (int16_t)(N > 16 ? 4 : N > 8 ? 2 : 1);
}

// Threads that one step's items occupy: one per TO x 4 register tile, or a warp per MMA tile.
template <class Idx> TTL_CONV_HD Idx tt_step_threads(const ttl_conv_tt_step_t &st, Idx P) {
    if (st.mma_mt > 0) {
        const Idx N = (Idx)st.L * st.R * P;
        return ((Idx)st.O + 16 * st.mma_mt - 1) / (16 * st.mma_mt) * ((N + 8 * st.mma_nt - 1) / (8 * st.mma_nt)) *
               32;
    }
    return ((Idx)st.O + st.to - 1) / st.to * (Idx)st.L * ((Idx)st.R * P / TTL_CONV_TN);
}

// The step in the form the plan chose (ttl_conv_tt_step_t.to or mma_mt, mma_nt). The kernels are compiled per form
// (kMma): the tensor-core tiles need more registers than the FFMA ones, which would otherwise cost the FFMA kernels
// occupancy. out_lay: the layout of out (its reader's in_layout); only tensor-core chains have swizzled states, the
// FFMA form reads and writes plain rows.
template <int MT, class Idx>
TTL_CONV_HD void tt_step_mma_cols(const float *at, const ttl_conv_tt_step_t &st, const float *in, float *out, Idx P,
                                  Idx tid, Idx nthr, bool accumulate, const ttl_conv_state_layout_t &out_lay) {
    if (st.mma_nt == 4)
        tt_step_mma<MT, 4>(at, st, in, out, P, tid, nthr, accumulate, out_lay);
    else if (st.mma_nt == 2)
        tt_step_mma<MT, 2>(at, st, in, out, P, tid, nthr, accumulate, out_lay);
    else
        tt_step_mma<MT, 1>(at, st, in, out, P, tid, nthr, accumulate, out_lay);
}

template <class Idx>
TTL_CONV_HD void tt_step_mma_any(const float *at, const ttl_conv_tt_step_t &st, const float *in, float *out, Idx P,
                                 Idx tid, Idx nthr, bool accumulate, const ttl_conv_state_layout_t &out_lay) {
    if (st.mma_mt == 2)
        tt_step_mma_cols<2, Idx>(at, st, in, out, P, tid, nthr, accumulate, out_lay);
    else
        tt_step_mma_cols<1, Idx>(at, st, in, out, P, tid, nthr, accumulate, out_lay);
}

template <class Idx>
TTL_CONV_HD void tt_step_ffma_any(const float *at, const ttl_conv_tt_step_t &st, const float *in, float *out, Idx P,
                                  Idx tid, Idx nthr, bool accumulate) {
    if (st.to == 8)
        tt_step<8>(at, st, in, out, P, tid, nthr, accumulate);
    else if (st.to == 4)
        tt_step<4>(at, st, in, out, P, tid, nthr, accumulate);
    else
        tt_step<2>(at, st, in, out, P, tid, nthr, accumulate);
}

template <bool kMma, class Idx>
TTL_CONV_HD void tt_step_form(const float *at, const ttl_conv_tt_step_t &st, const float *in, float *out, Idx P,
                              Idx tid, Idx nthr, bool accumulate = false,
                              const ttl_conv_state_layout_t &out_lay = ttl_conv_state_layout_t{}) {
    if (kMma)
        tt_step_mma_any<Idx>(at, st, in, out, P, tid, nthr, accumulate, out_lay);
    else
        tt_step_ffma_any<Idx>(at, st, in, out, P, tid, nthr, accumulate);
}

// Either form, by the step's own fields, on plain states (host-side runs of the chunked kernels: the emulation
// tests).
template <class Idx>
TTL_CONV_HD void tt_step_any(const float *at, const ttl_conv_tt_step_t &st, const float *in, float *out, Idx P,
                             Idx tid, Idx nthr, bool accumulate = false) {
    if (st.mma_mt > 0)
        tt_step_mma_any<Idx>(at, st, in, out, P, tid, nthr, accumulate, ttl_conv_state_layout_t{});
    else
        tt_step_ffma_any<Idx>(at, st, in, out, P, tid, nthr, accumulate);
}

// ---------------------------------------------------------------------------------------------------------------
// sinks: read the last state [out_size][ld], pixels q < P
// ---------------------------------------------------------------------------------------------------------------

// SF: y at output pixel q, channel s, plus bias. Items q fastest for NCHW, s fastest for NHWC (coalesced y).
template <class Idx, class Pixels>
TTL_CONV_HD void sink_sf(const float *buf, Idx P, Idx ld, Pixels pixels, float *__restrict__ y,
                         const float *__restrict__ bias, const ttl_conv_geom_t &g, Idx tid, Idx nthr) {
    const Idx S = (Idx)g.S;
    const Idx items = S * P;
    const int64_t ohw = g.OH * g.OW;
    item_walk<Idx> it(tid, nthr, S, P, g.nhwc);
    for (Idx w = tid; w < items; w += nthr, it.next()) {
        const Idx s = it.channel(), q = it.pixel();
        const pixel_pos pp = pixels(q);
        if (!pp.valid) continue;
        const float v = buf[s * ld + q] + (bias != nullptr ? load_ro(bias + s) : 0.0f);
        const int64_t yi = g.nhwc ? (pp.b * ohw + pp.rem) * g.S + s : (pp.b * g.S + s) * ohw + pp.rem;
        y[yi] = v;
    }
}

// CF: U[cp][o] = state[o][q] for chunk pixel cp = first + q < npix, o = (a, s) in [0, r_0 S).
template <class Idx>
TTL_CONV_HD void sink_cf(const float *buf, Idx P, Idx ld, int64_t first, int64_t npix, Idx out_size,
                         float *__restrict__ U, Idx tid, Idx nthr) {
    const Idx items = out_size * P;
    item_walk<Idx> it(tid, nthr, out_size, P, 1); /* o fastest */
    for (Idx w = tid; w < items; w += nthr, it.next()) {
        const Idx q = it.pixel(), o = it.channel();
        const int64_t cp = first + q;
        if (cp < npix) U[cp * out_size + o] = buf[o * ld + q];
    }
}

// ---------------------------------------------------------------------------------------------------------------
// fused CTA body
// ---------------------------------------------------------------------------------------------------------------

// Row stride of a fused block's state for tiles of P pixels. With P a multiple of 16, rows P floats apart put the
// lanes that step along rows (the NHWC producers, the sinks, the steps' stores) on the same few shared-memory
// banks (up to 32-way conflicts); 4 more floats (still whole float4s) spread them. The steps then also compute
// the 4 padding columns, which nothing reads (each output column depends only on the same input column).
TTL_CONV_HD int fused_row_stride(int P) { return P % 16 == 0 ? P + 4 : P; }

// Shared memory of a fused block: At (chain.at_floats), the padded spatial core (SF: kh kw r0pad), two state
// buffers of max_state fused_row_stride(P) floats, a sliced chain's accumulator of out_size such rows, and P
// decoded pixel positions (fused_smem_bytes in conv_tt.cu sums the same). Block `block` of `grid` loops over tiles
// block, block + grid, ... of P pixels; out is y (SF) or U (CF). kMma: the chain's steps are tensor-core steps.
template <int kVariant, bool kMma>
TTL_CONV_HD void tt_fused_cta(float *__restrict__ out, const float *__restrict__ x, const float *__restrict__ at_g,
                              const float *__restrict__ g0_g, const float *__restrict__ bias,
                              const ttl_conv_tt_chain_t &chain, const ttl_conv_geom_t &g,
                              const ttl_conv_cf_chunk_t &ch, int P, int64_t num_tiles, int64_t block, int64_t grid,
                              float4 *smem) {
    float *s_at = reinterpret_cast<float *>(smem);
    const int g0_floats = kVariant == TTL_CONV_VARIANT_SF ? g.kh * g.kw * g.r0pad : 0;
    float *s_g0 = s_at + chain.at_floats;
    float *s_buf0 = s_g0 + g0_floats;
    const int ld = fused_row_stride(P);
    float *s_buf1 = s_buf0 + chain.max_state * ld;
    const int slices = kVariant == TTL_CONV_VARIANT_SF ? chain.slices : 1;
    float *s_acc = s_buf1 + chain.max_state * ld; /* sliced only */
    pixel_pos *s_pos = reinterpret_cast<pixel_pos *>(s_acc + (slices > 1 ? chain.out_size * ld : 0));
    const int tid = CTA_TID(), nthr = TTL_CONV_THREADS;

    /* at_floats (a multiple of 8) and g0_floats (of 4): whole float4 copies, all in flight at once where the
     * device has asynchronous copies (a dozen round trips to memory before the first tile otherwise) */
    auto copy4 = [](float4 *dst, const float4 *src) {
        if (CTA_HAS_COPY_ASYNC)
            CTA_COPY_ASYNC_F4(dst, src);
        else
            *dst = load_ro(src);
    };
    for (int64_t i = tid; i < chain.at_floats / 4; i += nthr)
        copy4(reinterpret_cast<float4 *>(s_at) + i, reinterpret_cast<const float4 *>(at_g) + i);
    for (int i = tid; i < g0_floats / 4; i += nthr)
        copy4(reinterpret_cast<float4 *>(s_g0) + i, reinterpret_cast<const float4 *>(g0_g) + i);
    CTA_COPY_WAIT(); /* this thread's copies landed; the first tile's barrier shows them to the others */

    const int last = chain.num_steps - 1;
    for (int64_t tile = block; tile < num_tiles; tile += grid) {
        const int64_t first = tile * P;
        if (tid < P)
            s_pos[tid] = kVariant == TTL_CONV_VARIANT_SF ? sf_pixel(g, first + tid) : cf_pixel(ch, first + tid);
        CTA_SYNC(); /* pixels decoded; on the first tile also the cores staged */
        const smem_pixels pixels{s_pos, P};
        float *result = s_acc;
        for (int j = 0; j < slices; ++j) {
            if (kVariant == TTL_CONV_VARIANT_SF)
                produce_sf<int>(s_buf0, P, ld, chain.steps[0].in_layout, pixels, x, s_g0, g, tid, nthr, slices, j);
            else
                produce_cf<int>(s_buf0, P, ld, chain.steps[0].in_layout, pixels, x, g, tid, nthr);
            CTA_SYNC();
            float *cur = s_buf0, *nxt = s_buf1;
            for (int k = 0; k < chain.num_steps; ++k) {
                const ttl_conv_tt_step_t st = chain.steps[k];
                const bool into_acc = slices > 1 && k == last; /* row j of At_d, summed over the slices */
                /* written as the next step reads it; the sinks and the accumulator read plain rows */
                const ttl_conv_state_layout_t out_lay =
                    k < last ? chain.steps[k + 1].in_layout : ttl_conv_state_layout_t{};
                tt_step_form<kMma, int>(s_at + st.at_offset + (into_acc ? j * st.Opad : 0), st, cur,
                                        into_acc ? s_acc : nxt, ld, tid, nthr, into_acc && j > 0,
                                        out_lay); /* all ld columns */
                CTA_SYNC();
                float *t = cur;
                cur = nxt;
                nxt = t;
            }
            if (slices == 1) result = cur;
        }
        if (kVariant == TTL_CONV_VARIANT_SF)
            sink_sf<int>(result, P, ld, pixels, out, bias, g, tid, nthr);
        else
            sink_cf<int>(result, P, ld, first, ch.npix, chain.out_size, out, tid, nthr);
        CTA_SYNC(); /* the next tile overwrites s_pos and s_buf0 */
    }
}

// ---------------------------------------------------------------------------------------------------------------
// channels-first second stage
// ---------------------------------------------------------------------------------------------------------------

// CF second stage: y[b, s, oh, ow] = bias[s] + sum_{p, q, a} G_0[p, q, a] U[bi][ih - ih_lo][iw - iw_lo][a][s]
// for the chunk's images, output rows and output columns. g0 is the packed spatial core [kh kw][r_0]. Items have
// s fastest: U reads and NHWC writes are coalesced. Every in-image (ih, iw) used satisfies ih_lo <= ih <
// ih_lo + nrows and iw_lo <= iw < iw_lo + ncols (the chunk's input rows and columns are all those its outputs
// read, clipped to the image), so U is read inside [bc][nrows][ncols][r_0 S].
TTL_CONV_HD void cf_conv(float *__restrict__ y, const float *__restrict__ U, const float *__restrict__ g0,
                         const float *__restrict__ bias, const ttl_conv_geom_t &g, const ttl_conv_cf_chunk_t &ch,
                         int64_t tid, int64_t nthr) {
    const int64_t items = ch.bc * ch.rb * ch.cw * g.S;
    const int64_t r0s = (int64_t)g.r0 * g.S;
    const int64_t ohw = g.OH * g.OW;
    for (int64_t w = tid; w < items; w += nthr) {
        const int64_t s = w % g.S;
        int64_t t = w / g.S;
        const int64_t owr = t % ch.cw;
        t /= ch.cw;
        const int64_t ohr = t % ch.rb;
        const int64_t bi = t / ch.rb;
        const int64_t b = ch.b0 + bi, oh = ch.oh0 + ohr, ow = ch.ow0 + owr;
        float acc = bias != nullptr ? load_ro(bias + s) : 0.0f;
        for (int32_t kp = 0; kp < g.kh; ++kp) {
            const int64_t ih = oh * g.sh - g.ph + (int64_t)kp * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            for (int32_t kq = 0; kq < g.kw; ++kq) {
                const int64_t iw = ow * g.sw - g.pw + (int64_t)kq * g.dw;
                if (iw < 0 || iw >= g.W) continue;
                const float *u = U + ((bi * ch.nrows + (ih - ch.ih_lo)) * ch.ncols + (iw - ch.iw_lo)) * r0s + s;
                const float *gk = g0 + (kp * g.kw + kq) * g.r0;
                for (int32_t a = 0; a < g.r0; ++a) acc = fmaf(load_ro(gk + a), load_ro(u + (int64_t)a * g.S), acc);
            }
        }
        const int64_t yi = g.nhwc ? ((b * g.OH + oh) * g.OW + ow) * g.S + s : (b * g.S + s) * ohw + oh * g.OW + ow;
        y[yi] = acc;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// channels-first chunks (host)
// ---------------------------------------------------------------------------------------------------------------

// The channels-first chunk of images [b0, b0 + cf_bc), output rows [oh0, oh0 + cf_rb) and columns
// [ow0, ow0 + cf_cw), clipped to the problem, with the input rows and columns its outputs read, clipped to the
// image (none for a band of padding only).
inline ttl_conv_cf_chunk_t cf_chunk_at(const ttl_cuda_conv_plan_t &p, int64_t b0, int64_t oh0, int64_t ow0) {
    const ttl_conv_geom_t &g = p.geom;
    const int64_t span_h = (int64_t)(g.kh - 1) * g.dh + 1, span_w = (int64_t)(g.kw - 1) * g.dw + 1;
    ttl_conv_cf_chunk_t ch;
    ch.b0 = b0;
    ch.bc = ttl_min_i64(p.cf_bc, g.B - b0);
    ch.oh0 = oh0;
    ch.rb = ttl_min_i64(p.cf_rb, g.OH - oh0);
    ch.ow0 = ow0;
    ch.cw = ttl_min_i64(p.cf_cw, g.OW - ow0);
    const int64_t h_lo = oh0 * g.sh - g.ph, h_hi = (oh0 + ch.rb - 1) * g.sh - g.ph + span_h;
    ch.ih_lo = ttl_max_i64(0, h_lo);
    ch.nrows = ttl_max_i64(0, ttl_min_i64(g.H, h_hi) - ch.ih_lo);
    const int64_t w_lo = ow0 * g.sw - g.pw, w_hi = (ow0 + ch.cw - 1) * g.sw - g.pw + span_w;
    ch.iw_lo = ttl_max_i64(0, w_lo);
    ch.ncols = ttl_max_i64(0, ttl_min_i64(g.W, w_hi) - ch.iw_lo);
    ch.npix = ch.bc * ch.nrows * ch.ncols;
    return ch;
}

// ---------------------------------------------------------------------------------------------------------------
// schedule
// ---------------------------------------------------------------------------------------------------------------

// One forward of a SPATIAL_FIRST or CHANNELS_FIRST plan (ttl_conv_tt_setup decided fused/unfused, tiles, chunks
// and the workspace). Exec runs the pieces, each over the work given, in stream order:
//   fused(out, x, chunk, npix)                  tiles of the fused body over pixels [0, npix)
//   produce(buf, x, chunk, first, P)            the first state of pixels [first, first + P)
//   step(st, in, out, P)                        one TT step over P pixels
//   sink(out, buf, chunk, first, P)             y (SF) or U (CF) from the last state
//   cf_conv(y, U, chunk)                        the channels-first kh x kw conv of one chunk
// each returning a status. The workspace is carved in the order ttl_conv_tt_setup counted it.
template <class Exec>
ttl_status_t conv_tt_schedule(const ttl_cuda_conv_plan_t *p, Exec &exec, float *y, const float *x, void *ws) {
    const ttl_conv_geom_t &g = p->geom;
    char *w = (char *)ws;
    size_t cursor = 0;
    float *buf0 = nullptr, *buf1 = nullptr;
    if (!p->fused) {
        buf0 = (float *)(w + ttl_cuda_ws_take(&cursor, p->buf_bytes));
        buf1 = (float *)(w + ttl_cuda_ws_take(&cursor, p->buf_bytes));
    }
    /* the TT chain over pixels [0, npix) of the SF output or of a CF chunk */
    auto chain_over = [&](float *out, const ttl_conv_cf_chunk_t &ch, int64_t npix) -> ttl_status_t {
        if (p->fused) return exec.fused(out, x, ch, npix);
        const int64_t P = p->chunk_px;
        for (int64_t first = 0; first < npix; first += P) {
            TTL_TRY(exec.produce(buf0, x, ch, first, P));
            float *cur = buf0, *nxt = buf1;
            for (int32_t k = 0; k < p->chain.num_steps; ++k) {
                TTL_TRY(exec.step(p->chain.steps[k], cur, nxt, P));
                float *t = cur;
                cur = nxt;
                nxt = t;
            }
            TTL_TRY(exec.sink(out, cur, ch, first, P));
        }
        return TTL_STATUS_SUCCESS;
    };
    if (p->variant == TTL_CONV_VARIANT_SF) return chain_over(y, ttl_conv_cf_chunk_t{}, g.B * g.OH * g.OW);
    float *U = (float *)(w + ttl_cuda_ws_take(&cursor, p->u_bytes));
    for (int64_t b0 = 0; b0 < g.B; b0 += p->cf_bc) {
        for (int64_t oh0 = 0; oh0 < g.OH; oh0 += p->cf_rb) {
            for (int64_t ow0 = 0; ow0 < g.OW; ow0 += p->cf_cw) {
                const ttl_conv_cf_chunk_t ch = cf_chunk_at(*p, b0, oh0, ow0);
                if (ch.npix > 0) TTL_TRY(chain_over(U, ch, ch.npix));
                TTL_TRY(exec.cf_conv(y, U, ch));
            }
        }
    }
    return TTL_STATUS_SUCCESS;
}

} // namespace

#endif /* TTL_CUDA_CONV_TT_CUH */
