/*
 * TT-conv, channels first (docs/tt-layers.md section 2):
 *   Z[ih, iw, a, s] = channel TT-matrix applied to x[b, :, ih, iw] (its left rank r_0 an output index, folded
 *                     into the first output mode: core 1 is read as [1, (r_0 s_1), c_1, r_1], no re-layout)
 *   y[b, s, oh, ow] = sum_{p,q,a} G_0[p, q, a] Z[ih(p), iw(q), a, s] + bias[s]
 * one band of output rows of one image at a time: Z covers just the input rows the band reads, so the workspace
 * is bounded; when a whole image fits in the band budget, every input pixel is transformed once.
 */
#include <string.h>

#include "common/check.h"
#include "cpu/cpu_internal.h"

/* Floats of Z one band may hold. */
#define BAND_TARGET_ELEMS ((int64_t)1 << 18)

/* Input rows that output rows [oh0, oh0 + rows) read, before clipping to the image. */
static int64_t band_span(const ttl_conv_desc_t *d, int64_t rows) {
    return (rows - 1) * d->stride_h + (d->kernel_h - 1) * d->dilation_h + 1;
}

ttl_status_t ttl_conv_cf_init(ttl_conv_cf_t *cf, const ttl_conv_geom_t *g, ttl_order_t order) {
    ttl_conv_cf_t s;
    memset(&s, 0, sizeof(s));
    const ttl_conv_desc_t *d = &g->desc;
    const int64_t H = g->shape.height, W = g->shape.width;
    int64_t row_elems; /* Z floats per input row */
    TTL_TRY(ttl_mul_i64(&row_elems, W, d->ranks[0]));
    TTL_TRY(ttl_mul_i64(&row_elems, row_elems, d->out_channels));
    if (H * row_elems <= BAND_TARGET_ELEMS) {
        s.band_rows = g->out_h;
    } else { /* as many output rows as the budget allows, at least one */
        s.band_rows = 1;
        while (s.band_rows < g->out_h && band_span(d, s.band_rows + 1) * row_elems <= BAND_TARGET_ELEMS)
            ++s.band_rows;
    }
    s.band_in_rows = ttl_min_i64(H, band_span(d, s.band_rows));
    const int64_t band_pixels = g->shape.batch > 0 ? s.band_in_rows * W : 0;
    ttl_fc_desc_t chan;
    ttl_conv_channel_desc(&chan, d);
    TTL_TRY(ttl_tt_seq_init(&s.seq, &chan, TTL_LEFT_RANK_OUTPUT, order, band_pixels));
    if (band_pixels > 0) {
        int64_t z, stage = 0, acc = 0;
        TTL_TRY(ttl_mul_i64(&z, band_pixels, s.seq.merged.out_features)); /* [pixels, r_0 S] */
        if (g->shape.layout == TTL_LAYOUT_NCHW) {
            TTL_TRY(ttl_mul_i64(&stage, band_pixels, d->in_channels));
            acc = d->out_channels;
        }
        size_t zb, sb, ab;
        TTL_TRY(ttl_bytes(&zb, z, sizeof(float)));
        TTL_TRY(ttl_bytes(&sb, stage, sizeof(float)));
        TTL_TRY(ttl_bytes(&ab, acc, sizeof(float)));
        s.workspace_bytes = ttl_align_up(zb) + ttl_align_up(sb) + ttl_align_up(ab);
        if (__builtin_add_overflow(s.workspace_bytes, s.seq.workspace_bytes, &s.workspace_bytes))
            return TTL_STATUS_OVERFLOW;
    }
    *cf = s;
    return TTL_STATUS_SUCCESS;
}

// ---- the kh x kw convolution over r_0 ---------------------------------------------------------------------------

/* acc[s] = bias[s] + sum_{p,q,a} G_0[p, q, a] Z[ih - ih0, iw, a, s] for one output pixel. */
static void output_pixel(float *acc, const ttl_conv_geom_t *g, const float *Z, int64_t ih0, int64_t in_rows,
                         const float *G0, const float *bias, int64_t oh, int64_t ow) {
    const ttl_conv_desc_t *d = &g->desc;
    const int64_t S = d->out_channels, r0 = d->ranks[0], W = g->shape.width;
    if (bias != NULL)
        memcpy(acc, bias, (size_t)S * sizeof(float));
    else
        memset(acc, 0, (size_t)S * sizeof(float));
    for (int64_t p = 0; p < d->kernel_h; ++p) {
        const int64_t ih = oh * d->stride_h - d->pad_h + p * d->dilation_h - ih0;
        if (ih < 0 || ih >= in_rows) continue;
        for (int64_t q = 0; q < d->kernel_w; ++q) {
            const int64_t iw = ow * d->stride_w - d->pad_w + q * d->dilation_w;
            if (iw < 0 || iw >= W) continue;
            const float *z = Z + (ih * W + iw) * r0 * S;
            const float *taps = G0 + (p * d->kernel_w + q) * r0;
            for (int64_t a = 0; a < r0; ++a) {
                const float w = taps[a];
                const float *za = z + a * S;
                for (int64_t s = 0; s < S; ++s) acc[s] += w * za[s];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// entry
// ---------------------------------------------------------------------------------------------------------------

void ttl_conv_cf_run(const ttl_conv_cf_t *cf, const ttl_conv_geom_t *g, float *y, const float *x,
                     const float *cores, const float *bias, void *ws) {
    const ttl_conv_desc_t *d = &g->desc;
    const int64_t C = d->in_channels, S = d->out_channels, H = g->shape.height, W = g->shape.width;
    const int64_t OH = g->out_h, OW = g->out_w;
    const int nhwc = g->shape.layout == TTL_LAYOUT_NHWC;
    const float *G0 = cores, *chan = cores + d->kernel_h * d->kernel_w * d->ranks[0];
    const int64_t band_pixels = cf->band_in_rows * W;
    char *base = (char *)ws;
    float *Z = (float *)base;
    base += ttl_align_up((size_t)(band_pixels * cf->seq.merged.out_features) * sizeof(float));
    float *stage = (float *)base;
    base += ttl_align_up((size_t)(nhwc ? 0 : band_pixels * C) * sizeof(float));
    float *acc = (float *)base;
    base += ttl_align_up((size_t)(nhwc ? 0 : S) * sizeof(float));

    for (int64_t b = 0; b < g->shape.batch; ++b) {
        for (int64_t oh0 = 0; oh0 < OH; oh0 += cf->band_rows) {
            const int64_t oh1 = ttl_min_i64(OH, oh0 + cf->band_rows);
            /* input rows this band reads, clipped to the image (may be empty: all padding) */
            const int64_t ih0 = ttl_max_i64(0, oh0 * d->stride_h - d->pad_h);
            const int64_t ih1 = ttl_min_i64(H, (oh1 - 1) * d->stride_h - d->pad_h + band_span(d, 1));
            const int64_t in_rows = ttl_max_i64(0, ih1 - ih0);
            if (in_rows > 0) {
                const float *rows;
                if (nhwc) {
                    rows = x + (b * H + ih0) * W * C;
                } else { /* x[b, :, ih0..ih1, :] -> [pixel, C] */
                    const float *src = x + (b * C * H + ih0) * W;
                    const int64_t n = in_rows * W;
                    for (int64_t c = 0; c < C; ++c)
                        for (int64_t t = 0; t < n; ++t) stage[t * C + c] = src[c * H * W + t];
                    rows = stage;
                }
                ttl_tt_seq_run(&cf->seq, Z, rows, chan, NULL, in_rows * W, base);
            }
            for (int64_t oh = oh0; oh < oh1; ++oh)
                for (int64_t ow = 0; ow < OW; ++ow) {
                    if (nhwc) {
                        output_pixel(y + ((b * OH + oh) * OW + ow) * S, g, Z, ih0, in_rows, G0, bias, oh, ow);
                        continue;
                    }
                    output_pixel(acc, g, Z, ih0, in_rows, G0, bias, oh, ow);
                    float *dst = y + b * S * OH * OW + oh * OW + ow;
                    for (int64_t s = 0; s < S; ++s) dst[s * OH * OW] = acc[s];
                }
        }
    }
}
