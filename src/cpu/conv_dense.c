/*
 * TT-conv, dense: rebuild the kernel in float as K[kh kw, S, C] (tt_reconstruct.c with the spatial core as the
 * lead matrix), in the workspace on every call or, when the plan binds its weights, once at init into memory the
 * plan owns; then convolve with one GEMM per kernel tap on a shifted copy of the input ("im2col" one tap at a
 * time, so the buffer is [pixels, C] rather than [pixels, C kh kw]):
 *   NHWC: y[pixels, S] += X_pq[pixels, C] K_pq^T      (pixels over the whole batch)
 *   NCHW: y_b[S, pixels] += K_pq[S, C] X_pq[C, pixels]  (pixels within one image)
 * A 1x1, stride-1, unpadded convolution reads x in place: one plain GEMM.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "cpu/cpu_internal.h"

/* Output pixels per GEMM: bounds the shifted-input buffer to PIXEL_CHUNK * C floats. */
#define PIXEL_CHUNK ((int64_t)4096)

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
    s.chunk = ttl_min_i64(pixels, PIXEL_CHUNK);
    if (g->shape.batch > 0) {
        ttl_fc_desc_t chan;
        ttl_conv_channel_desc(&chan, d);
        const int64_t taps = d->kernel_h * d->kernel_w;
        TTL_TRY(ttl_mul_i64(&s.kernel_elems, d->out_channels * d->in_channels, taps));
        TTL_TRY(ttl_tt_chain_scratch(&s.chain_elems, &chan, taps));
        int64_t shifted = 0;
        if (!reads_in_place(d)) TTL_TRY(ttl_mul_i64(&shifted, s.chunk, d->in_channels));
        size_t kb, sb;
        TTL_TRY(ttl_bytes(&kb, s.kernel_elems, sizeof(float)));
        TTL_TRY(ttl_bytes(&sb, ttl_max_i64(s.chain_elems, shifted), sizeof(float)));
        /* BLAS takes int extents and leading dimensions */
        if (s.kernel_elems > INT32_MAX || g->shape.height * g->shape.width > INT32_MAX ||
            g->out_h * g->out_w > INT32_MAX)
            return TTL_STATUS_UNSUPPORTED;
        s.workspace_bytes = ttl_align_up(kb) + sb;
        if (bound_cores != NULL) { /* K lives in the plan; the chain's scratch is needed only here */
            TTL_TRY(ttl_bytes(&s.workspace_bytes, shifted, sizeof(float)));
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

// ---- shifted input ---------------------------------------------------------------------------------------------

/* NHWC: X[t, c] = x at the input position tap (p, q) of output pixel p0 + t (over the batch), 0 in the padding. */
static void shift_nhwc(float *X, const ttl_conv_geom_t *g, const float *x, int64_t p, int64_t q, int64_t p0,
                       int64_t count) {
    const ttl_conv_desc_t *d = &g->desc;
    const int64_t C = d->in_channels, H = g->shape.height, W = g->shape.width, OHW = g->out_h * g->out_w;
    for (int64_t t = 0; t < count; ++t) {
        const int64_t pix = p0 + t, b = pix / OHW, oh = pix % OHW / g->out_w, ow = pix % g->out_w;
        const int64_t ih = oh * d->stride_h - d->pad_h + p * d->dilation_h;
        const int64_t iw = ow * d->stride_w - d->pad_w + q * d->dilation_w;
        float *row = X + t * C;
        if (ih < 0 || ih >= H || iw < 0 || iw >= W)
            memset(row, 0, (size_t)C * sizeof(float));
        else
            memcpy(row, x + ((b * H + ih) * W + iw) * C, (size_t)C * sizeof(float));
    }
}

/* NCHW: X[c, t] = x_b[c, ih, iw] for output pixels p0 + t of image b, 0 in the padding. The pixels are taken one
 * output row at a time, so that each channel's copy is a contiguous run of X read with the stride of the conv. */
static void shift_nchw(float *X, const ttl_conv_geom_t *g, const float *xb, int64_t p, int64_t q, int64_t p0,
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
    const int64_t taps = d->kernel_h * d->kernel_w, OHW = g->out_h * g->out_w;
    const float *K = dn->kernel;
    float *scratch = (float *)ws; /* the shifted input */
    if (K == NULL) {              /* unbound: K first in the workspace, the chain's scratch after it */
        float *built = (float *)ws;
        scratch = (float *)((char *)ws + ttl_align_up((size_t)dn->kernel_elems * sizeof(float)));
        ttl_fc_desc_t chan;
        ttl_conv_channel_desc(&chan, d);
        ttl_tt_chain_run(built, &chan, cores + taps * d->ranks[0], cores, taps, scratch);
        K = built;
    }
    const int in_place = reads_in_place(d);

    if (g->shape.layout == TTL_LAYOUT_NHWC) {
        const int64_t pixels = g->shape.batch * OHW;
        for (int64_t p0 = 0; p0 < pixels; p0 += dn->chunk) {
            const int64_t count = ttl_min_i64(dn->chunk, pixels - p0);
            float *yc = y + p0 * S;
            for (int64_t t = 0; t < count; ++t) {
                if (bias != NULL)
                    memcpy(yc + t * S, bias, (size_t)S * sizeof(float));
                else
                    memset(yc + t * S, 0, (size_t)S * sizeof(float));
            }
            for (int64_t pq = 0; pq < taps; ++pq) {
                const float *X = x + p0 * C;
                if (!in_place) {
                    shift_nhwc(scratch, g, x, pq / d->kernel_w, pq % d->kernel_w, p0, count);
                    X = scratch;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)count, (int)S, (int)C, 1.0f, X, (int)C,
                            K + pq * S * C, (int)C, 1.0f, yc, (int)S);
            }
        }
        return;
    }
    for (int64_t b = 0; b < g->shape.batch; ++b) {
        const float *xb = x + b * C * H * W;
        float *yb = y + b * S * OHW;
        for (int64_t p0 = 0; p0 < OHW; p0 += dn->chunk) {
            const int64_t count = ttl_min_i64(dn->chunk, OHW - p0);
            for (int64_t s = 0; s < S; ++s) {
                const float v = bias != NULL ? bias[s] : 0.0f;
                for (int64_t t = 0; t < count; ++t) yb[s * OHW + p0 + t] = v;
            }
            for (int64_t pq = 0; pq < taps; ++pq) {
                const float *X = xb + p0;
                int64_t ldx = H * W;
                if (!in_place) {
                    shift_nchw(scratch, g, xb, pq / d->kernel_w, pq % d->kernel_w, p0, count);
                    X = scratch;
                    ldx = count;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)S, (int)count, (int)C, 1.0f,
                            K + pq * S * C, (int)C, X, (int)ldx, 1.0f, yb + p0, (int)OHW);
            }
        }
    }
}
