/*
 * TT-conv, dense: rebuild the kernel in float as K[S, kh kw, C] (tt_reconstruct.c with the spatial core as the
 * lead matrix), in the workspace on every call or, when the plan binds its weights, once at init into memory the
 * plan owns; then convolve with one GEMM of inner size kh kw C per chunk of output pixels, over an im2col buffer
 * X whose (tap, channel) index runs in K's order:
 *   NHWC: y[pixels, S] = X[pixels, (kh kw C)] K^T        (pixels over the whole batch)
 *   NCHW: y_b[S, pixels] = K[S, (kh kw C)] X[(kh kw C), pixels]  (pixels within one image)
 * A 1x1, stride-1, unpadded convolution reads x in place as X: one plain GEMM, no copy.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "cpu/cpu_internal.h"

/* Output pixels per GEMM: at most PIXEL_CHUNK, and no more than fit an im2col buffer of IM2COL_FLOATS floats
 * (16 MiB; at least one pixel, whatever its row length C kh kw). The float bound binds only above C kh kw = 1024
 * (a 3x3 conv of more than 113 input channels): NHWC, 512 -> 512 3x3 at 28x28 and batch 8 then needs 16 MiB
 * instead of 72 and ran about 3% slower; 4 MiB made it 20% slower, so the GEMMs stay wide. */
#define PIXEL_CHUNK ((int64_t)4096)
#define IM2COL_FLOATS ((int64_t)1 << 22)

static int reads_in_place(const ttl_conv_desc_t *d) {
    return d->kernel_h == 1 && d->kernel_w == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 &&
           d->pad_w == 0;
}

ttl_status_t ttl_conv_dense_init(ttl_conv_dense_t *dn, const ttl_conv_geom_t *g, const float *bound_cores) {
    ttl_conv_dense_t s;
    memset(&s, 0, sizeof(s));
    const ttl_conv_desc_t *d = &g->desc;
    int64_t pixels;
    TTL_TRY(ttl_mul_i64(&pixels, g->out_h, g->out_w));
    if (g->shape.layout == TTL_LAYOUT_NHWC) TTL_TRY(ttl_mul_i64(&pixels, pixels, g->shape.batch));
    if (g->shape.batch > 0) {
        ttl_fc_desc_t chan;
        ttl_conv_channel_desc(&chan, d);
        const int64_t taps = d->kernel_h * d->kernel_w;
        int64_t row; /* C kh kw: the GEMM's inner size, one pixel's im2col row */
        TTL_TRY(ttl_mul_i64(&row, d->in_channels, taps));
        TTL_TRY(ttl_mul_i64(&s.kernel_elems, d->out_channels, row));
        TTL_TRY(ttl_tt_chain_scratch(&s.chain_elems, &chan, taps));
        s.chunk = ttl_min_i64(ttl_min_i64(pixels, PIXEL_CHUNK), ttl_max_i64(1, IM2COL_FLOATS / row));
        if (!reads_in_place(d)) TTL_TRY(ttl_mul_i64(&s.im2col_elems, s.chunk, row));
        size_t kb, sb;
        TTL_TRY(ttl_bytes(&kb, s.kernel_elems, sizeof(float)));
        TTL_TRY(ttl_bytes(&sb, ttl_max_i64(s.chain_elems, s.im2col_elems), sizeof(float)));
        /* BLAS takes int extents and leading dimensions (C kh kw and S are at most kernel_elems) */
        if (s.kernel_elems > INT32_MAX || g->shape.height * g->shape.width > INT32_MAX ||
            g->out_h * g->out_w > INT32_MAX)
            return TTL_STATUS_UNSUPPORTED;
        s.workspace_bytes = ttl_align_up(kb) + sb;
        if (bound_cores != NULL) { /* K lives in the plan; the chain's scratch is needed only here */
            TTL_TRY(ttl_bytes(&s.workspace_bytes, s.im2col_elems, sizeof(float)));
            TTL_TRY(ttl_tt_chain_build(&s.kernel, &chan, bound_cores + taps * d->ranks[0], bound_cores, taps));
        }
    }
    *dn = s;
    return TTL_STATUS_SUCCESS;
}

void ttl_conv_dense_fini(ttl_conv_dense_t *dn) {
    free(dn->kernel);
    dn->kernel = NULL;
}

// ---- im2col ----------------------------------------------------------------------------------------------------

/* NHWC: X[t, (p q c)] = x at the input position of tap (p, q) for output pixel p0 + t (over the batch), 0 in the
 * padding. With no dilation along w, the kw taps of a kernel row that lies inside the image are one run of x. */
static void im2col_nhwc(float *X, const ttl_conv_geom_t *g, const float *x, int64_t p0, int64_t count) {
    const ttl_conv_desc_t *d = &g->desc;
    const int64_t C = d->in_channels, H = g->shape.height, W = g->shape.width, OHW = g->out_h * g->out_w;
    const int64_t kh = d->kernel_h, kw = d->kernel_w;
    const size_t tap_bytes = (size_t)C * sizeof(float);
    for (int64_t t = 0; t < count; ++t) {
        const int64_t pix = p0 + t, b = pix / OHW, oh = pix % OHW / g->out_w, ow = pix % g->out_w;
        const int64_t iw0 = ow * d->stride_w - d->pad_w; /* input column of tap q = 0 */
        const int64_t iw_last = iw0 + (kw - 1) * d->dilation_w;
        const float *xb = x + b * H * W * C;
        float *dst = X + t * kh * kw * C; /* the taps (p, 0..kw-1) */
        for (int64_t p = 0; p < kh; ++p, dst += kw * C) {
            const int64_t ih = oh * d->stride_h - d->pad_h + p * d->dilation_h;
            if (ih < 0 || ih >= H) {
                memset(dst, 0, (size_t)kw * tap_bytes);
                continue;
            }
            const float *xr = xb + ih * W * C;
            if (d->dilation_w == 1 && iw0 >= 0 && iw_last < W) {
                memcpy(dst, xr + iw0 * C, (size_t)kw * tap_bytes);
                continue;
            }
            for (int64_t q = 0; q < kw; ++q) {
                const int64_t iw = iw0 + q * d->dilation_w;
                if (iw < 0 || iw >= W)
                    memset(dst + q * C, 0, tap_bytes);
                else
                    memcpy(dst + q * C, xr + iw * C, tap_bytes);
            }
        }
    }
}

/* NCHW, one tap (p, q): X[c, t] = x_b[c, ih, iw] for output pixels p0 + t of image b, 0 in the padding; X holds
 * the C rows of this tap in the im2col buffer, each `count` long. The pixels are taken one output row at a time,
 * so that each channel's copy is a contiguous run of X read with the stride of the conv. */
static void im2col_nchw_tap(float *X, const ttl_conv_geom_t *g, const float *xb, int64_t p, int64_t q, int64_t p0,
                            int64_t count) {
    const ttl_conv_desc_t *d = &g->desc;
    const int64_t C = d->in_channels, H = g->shape.height, W = g->shape.width, sw = d->stride_w;
    for (int64_t t0 = 0; t0 < count;) {
        const int64_t oh = (p0 + t0) / g->out_w, ow0 = (p0 + t0) % g->out_w;
        const int64_t n = ttl_min_i64(g->out_w - ow0, count - t0); /* pixels of this output row */
        const int64_t ih = oh * d->stride_h - d->pad_h + p * d->dilation_h;
        const int64_t iw0 = ow0 * sw - d->pad_w + q * d->dilation_w; /* input column of pixel t0 */
        /* pixels t0 + i with lo <= i < hi read inside the image; the others are padding */
        int64_t lo = 0, hi = 0;
        if (ih >= 0 && ih < H && iw0 + (n - 1) * sw >= 0 && iw0 < W) {
            lo = iw0 < 0 ? (-iw0 + sw - 1) / sw : 0;
            hi = ttl_min_i64(n, (W - 1 - iw0) / sw + 1);
        }
        for (int64_t c = 0; c < C; ++c) {
            float *dst = X + c * count + t0;
            for (int64_t i = 0; i < lo; ++i) dst[i] = 0.0f;
            if (hi > lo) {
                const float *src = xb + (c * H + ih) * W;
                if (sw == 1)
                    memcpy(dst + lo, src + iw0 + lo, (size_t)(hi - lo) * sizeof(float));
                else
                    for (int64_t i = lo; i < hi; ++i) dst[i] = src[iw0 + i * sw];
            }
            for (int64_t i = ttl_max_i64(lo, hi); i < n; ++i) dst[i] = 0.0f;
        }
        t0 += n;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// entry
// ---------------------------------------------------------------------------------------------------------------

void ttl_conv_dense_run(const ttl_conv_dense_t *dn, const ttl_conv_geom_t *g, float *y, const float *x,
                        const float *cores, const float *bias, void *ws) {
    const ttl_conv_desc_t *d = &g->desc;
    const int64_t S = d->out_channels, C = d->in_channels, H = g->shape.height, W = g->shape.width;
    const int64_t taps = d->kernel_h * d->kernel_w, row = C * taps, OHW = g->out_h * g->out_w;
    const float *K = dn->kernel;
    float *col = (float *)ws; /* the im2col buffer */
    if (K == NULL) {          /* unbound: K first in the workspace; after it the chain's scratch, then im2col */
        float *built = (float *)ws;
        col = (float *)((char *)ws + ttl_align_up((size_t)dn->kernel_elems * sizeof(float)));
        ttl_fc_desc_t chan;
        ttl_conv_channel_desc(&chan, d);
        ttl_tt_chain_run(built, &chan, cores + taps * d->ranks[0], cores, taps, col);
        K = built;
    }
    const int in_place = reads_in_place(d);
    /* y starts as the bias (the GEMM adds to it) or is overwritten */
    const float beta = bias != NULL ? 1.0f : 0.0f;

    if (g->shape.layout == TTL_LAYOUT_NHWC) {
        const int64_t pixels = g->shape.batch * OHW;
        for (int64_t p0 = 0; p0 < pixels; p0 += dn->chunk) {
            const int64_t count = ttl_min_i64(dn->chunk, pixels - p0);
            float *yc = y + p0 * S;
            if (bias != NULL)
                for (int64_t t = 0; t < count; ++t) memcpy(yc + t * S, bias, (size_t)S * sizeof(float));
            const float *X = x + p0 * C;
            if (!in_place) {
                im2col_nhwc(col, g, x, p0, count);
                X = col;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)count, (int)S, (int)row, 1.0f, X, (int)row, K,
                        (int)row, beta, yc, (int)S);
        }
        return;
    }
    for (int64_t b = 0; b < g->shape.batch; ++b) {
        const float *xb = x + b * C * H * W;
        float *yb = y + b * S * OHW;
        for (int64_t p0 = 0; p0 < OHW; p0 += dn->chunk) {
            const int64_t count = ttl_min_i64(dn->chunk, OHW - p0);
            if (bias != NULL)
                for (int64_t s = 0; s < S; ++s)
                    for (int64_t t = 0; t < count; ++t) yb[s * OHW + p0 + t] = bias[s];
            const float *X = xb + p0;
            int64_t ldx = H * W;
            if (!in_place) {
                for (int64_t pq = 0; pq < taps; ++pq)
                    im2col_nchw_tap(col + pq * C * count, g, xb, pq / d->kernel_w, pq % d->kernel_w, p0, count);
                X = col;
                ldx = count;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)S, (int)count, (int)row, 1.0f, K, (int)row,
                        X, (int)ldx, beta, yb + p0, (int)OHW);
        }
    }
}
