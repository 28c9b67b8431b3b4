/*
 * TT-conv, spatial first (no im2col; TensorNet's tt_conv order, docs/tt-layers.md section 2):
 *   Z[pixel, a, c] = sum_{p,q} G_0[p, q, a] x[c, ih(p), iw(q)]   (r_0 filters per input channel; stride, padding
 *                                                                 and dilation apply here)
 *   y[pixel, :]    = channel TT-matrix applied to Z[pixel] (its left rank r_0 an input index) + bias
 * for `chunk` output pixels (over the whole batch) at a time, so the workspace does not grow with the image.
 * NHWC output rows are written by the engine directly; NCHW goes through a [chunk, S] staging buffer.
 */
#include <string.h>

#include "common/check.h"
#include "cpu/cpu_internal.h"

/* Output pixels per chunk: Z and the staging rows stay a few MB for typical channel counts. */
#define PIXEL_CHUNK ((int64_t)1024)

ttl_status_t ttl_conv_sf_init(ttl_conv_sf_t *sf, const ttl_conv_geom_t *g, ttl_order_t order) {
    ttl_conv_sf_t s;
    memset(&s, 0, sizeof(s));
    const ttl_conv_desc_t *d = &g->desc;
    int64_t pixels;
    TTL_TRY(ttl_mul_i64(&pixels, g->out_h, g->out_w));
    TTL_TRY(ttl_mul_i64(&pixels, pixels, g->shape.batch));
    s.chunk = ttl_min_i64(pixels, PIXEL_CHUNK);
    ttl_fc_desc_t chan;
    ttl_conv_channel_desc(&chan, d);
    TTL_TRY(ttl_tt_seq_init(&s.seq, &chan, TTL_LEFT_RANK_INPUT, order, s.chunk));
    if (s.chunk > 0) {
        int64_t z, stage = 0, gather = 0;
        TTL_TRY(ttl_mul_i64(&z, s.chunk, s.seq.merged.in_features)); /* [chunk, r_0 C] */
        if (g->shape.layout == TTL_LAYOUT_NCHW) {
            TTL_TRY(ttl_mul_i64(&stage, s.chunk, d->out_channels));
            gather = d->in_channels;
        }
        size_t zb, sb, gb;
        TTL_TRY(ttl_bytes(&zb, z, sizeof(float)));
        TTL_TRY(ttl_bytes(&sb, stage, sizeof(float)));
        TTL_TRY(ttl_bytes(&gb, gather, sizeof(float)));
        s.workspace_bytes = ttl_align_up(zb) + ttl_align_up(sb) + ttl_align_up(gb);
        if (__builtin_add_overflow(s.workspace_bytes, s.seq.workspace_bytes, &s.workspace_bytes))
            return TTL_STATUS_OVERFLOW;
    }
    *sf = s;
    return TTL_STATUS_SUCCESS;
}

// ---- the r_0 spatial filters -----------------------------------------------------------------------------------

/* Z for output pixels [p0, p0 + count) of the flattened (b, oh, ow) range. */
static void spatial_filters(float *Z, const ttl_conv_geom_t *g, const float *x, const float *G0, int64_t p0,
                            int64_t count, float *gather) {
    const ttl_conv_desc_t *d = &g->desc;
    const int64_t C = d->in_channels, r0 = d->ranks[0], H = g->shape.height, W = g->shape.width;
    const int64_t OHW = g->out_h * g->out_w;
    const int nhwc = g->shape.layout == TTL_LAYOUT_NHWC;
    memset(Z, 0, (size_t)(count * r0 * C) * sizeof(float));
    for (int64_t t = 0; t < count; ++t) {
        const int64_t pix = p0 + t, b = pix / OHW, oh = pix % OHW / g->out_w, ow = pix % g->out_w;
        float *z = Z + t * r0 * C;
        for (int64_t p = 0; p < d->kernel_h; ++p) {
            const int64_t ih = oh * d->stride_h - d->pad_h + p * d->dilation_h;
            if (ih < 0 || ih >= H) continue;
            for (int64_t q = 0; q < d->kernel_w; ++q) {
                const int64_t iw = ow * d->stride_w - d->pad_w + q * d->dilation_w;
                if (iw < 0 || iw >= W) continue;
                const float *xs;
                if (nhwc) {
                    xs = x + ((b * H + ih) * W + iw) * C;
                } else { /* gather the strided channel column once, reuse it for all r_0 filters */
                    const float *col = x + b * C * H * W + ih * W + iw;
                    for (int64_t c = 0; c < C; ++c) gather[c] = col[c * H * W];
                    xs = gather;
                }
                const float *taps = G0 + (p * d->kernel_w + q) * r0;
                for (int64_t a = 0; a < r0; ++a) {
                    const float w = taps[a];
                    float *za = z + a * C;
                    for (int64_t c = 0; c < C; ++c) za[c] += w * xs[c];
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// entry
// ---------------------------------------------------------------------------------------------------------------

void ttl_conv_sf_run(const ttl_conv_sf_t *sf, const ttl_conv_geom_t *g, float *y, const float *x,
                     const float *cores, const float *bias, void *ws) {
    const ttl_conv_desc_t *d = &g->desc;
    const int64_t S = d->out_channels, OHW = g->out_h * g->out_w, pixels = g->shape.batch * OHW;
    const int nhwc = g->shape.layout == TTL_LAYOUT_NHWC;
    const float *G0 = cores, *chan = cores + d->kernel_h * d->kernel_w * d->ranks[0];
    char *base = (char *)ws;
    float *Z = (float *)base;
    base += ttl_align_up((size_t)(sf->chunk * sf->seq.merged.in_features) * sizeof(float));
    float *stage = (float *)base;
    base += ttl_align_up((size_t)(nhwc ? 0 : sf->chunk * S) * sizeof(float));
    float *gather = (float *)base;
    base += ttl_align_up((size_t)(nhwc ? 0 : d->in_channels) * sizeof(float));

    for (int64_t p0 = 0; p0 < pixels; p0 += sf->chunk) {
        const int64_t count = ttl_min_i64(sf->chunk, pixels - p0);
        spatial_filters(Z, g, x, G0, p0, count, gather);
        if (nhwc) {
            ttl_tt_seq_run(&sf->seq, y + p0 * S, Z, chan, bias, count, base);
            continue;
        }
        ttl_tt_seq_run(&sf->seq, stage, Z, chan, NULL, count, base);
        /* [count, S] -> y[b, s, pixel], one run of pixels of the same image at a time */
        for (int64_t t0 = 0; t0 < count;) {
            const int64_t pix = p0 + t0, b = pix / OHW, in_img = pix % OHW;
            const int64_t run = ttl_min_i64(count - t0, OHW - in_img);
            for (int64_t s = 0; s < S; ++s) {
                float *dst = y + (b * S + s) * OHW + in_img;
                const float *src = stage + t0 * S + s;
                const float add = bias != NULL ? bias[s] : 0.0f;
                for (int64_t t = 0; t < run; ++t) dst[t] = src[t * S] + add;
            }
            t0 += run;
        }
    }
}
