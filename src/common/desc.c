/*
 * Descriptor validation, packed-core offsets, parameter counts and the multiply-add formulas of every schedule
 * (docs/tt-layers.md sections 1 and 2). All arithmetic is checked: a descriptor that passes
 * ttl_*_desc_check can have its parameter count, dense size and offsets formed without overflow.
 */
#include <string.h>

#include "common/check.h"

/* ---------------------------------------------------------------------------------------------------------- */
/* Shared TT-matrix checks                                                                                      */
/* ---------------------------------------------------------------------------------------------------------- */

static ttl_status_t check_tt_matrix(const ttl_fc_desc_t *d, int require_unit_left_rank) {
    if (d == NULL) return TTL_STATUS_NULL_POINTER;
    if (d->num_cores < 1 || d->num_cores > TTL_MAX_CORES) return TTL_STATUS_BAD_SIZE;
    if (d->out_features < 1 || d->in_features < 1) return TTL_STATUS_BAD_SIZE;
    const int32_t n = d->num_cores;
    for (int32_t k = 0; k < n; ++k)
        if (d->out_modes[k] < 1 || d->in_modes[k] < 1) return TTL_STATUS_BAD_SIZE;
    for (int32_t k = 0; k <= n; ++k)
        if (d->ranks[k] < 1) return TTL_STATUS_BAD_SIZE;
    if ((require_unit_left_rank && d->ranks[0] != 1) || d->ranks[n] != 1) return TTL_STATUS_BAD_RANKS;
    int64_t m, nn;
    ttl_status_t st = ttl_product(&m, d->out_modes, n);
    if (st == TTL_STATUS_OVERFLOW) return TTL_STATUS_BAD_MODES; /* cannot equal an int64 dimension */
    TTL_TRY(st);
    st = ttl_product(&nn, d->in_modes, n);
    if (st == TTL_STATUS_OVERFLOW) return TTL_STATUS_BAD_MODES;
    TTL_TRY(st);
    if (m != d->out_features || nn != d->in_features) return TTL_STATUS_BAD_MODES;
    int64_t dense;
    TTL_TRY(ttl_mul_i64(&dense, m, nn));
    /* Parameter count, and every core's size, must fit. */
    int64_t total = 0;
    for (int32_t k = 0; k < n; ++k) {
        int64_t s = d->ranks[k];
        TTL_TRY(ttl_mul_i64(&s, s, d->out_modes[k]));
        TTL_TRY(ttl_mul_i64(&s, s, d->in_modes[k]));
        TTL_TRY(ttl_mul_i64(&s, s, d->ranks[k + 1]));
        TTL_TRY(ttl_add_i64(&total, total, s));
    }
    /* Byte sizes of the dense matrix and the cores must fit size_t too. */
    size_t bytes;
    TTL_TRY(ttl_bytes(&bytes, dense, sizeof(double)));
    TTL_TRY(ttl_bytes(&bytes, total, sizeof(double)));
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_fc_desc_check(const ttl_fc_desc_t *desc) { return check_tt_matrix(desc, 1); }

ttl_status_t ttl_fc_desc_check_left_rank(const ttl_fc_desc_t *desc) { return check_tt_matrix(desc, 0); }

void ttl_conv_channel_desc(ttl_fc_desc_t *fc, const ttl_conv_desc_t *conv) {
    memset(fc, 0, sizeof(*fc));
    fc->out_features = conv->out_channels;
    fc->in_features = conv->in_channels;
    fc->num_cores = conv->num_cores;
    const int32_t n = (conv->num_cores >= 1 && conv->num_cores <= TTL_MAX_CORES) ? conv->num_cores : 0;
    for (int32_t k = 0; k < n; ++k) {
        fc->out_modes[k] = conv->out_modes[k];
        fc->in_modes[k] = conv->in_modes[k];
    }
    for (int32_t k = 0; k <= n && k <= TTL_MAX_CORES; ++k) fc->ranks[k] = conv->ranks[k];
}

static ttl_status_t conv_params(int64_t *count, const ttl_conv_desc_t *desc);

ttl_status_t ttl_conv_desc_check(const ttl_conv_desc_t *desc) {
    if (desc == NULL) return TTL_STATUS_NULL_POINTER;
    if (desc->kernel_h < 1 || desc->kernel_w < 1 || desc->stride_h < 1 || desc->stride_w < 1 || desc->pad_h < 0 ||
        desc->pad_w < 0 || desc->dilation_h < 1 || desc->dilation_w < 1)
        return TTL_STATUS_BAD_SIZE;
    if (desc->num_cores < 1 || desc->num_cores > TTL_MAX_CORES) return TTL_STATUS_BAD_SIZE;
    ttl_fc_desc_t fc;
    ttl_conv_channel_desc(&fc, desc);
    TTL_TRY(check_tt_matrix(&fc, 0));
    /* Spatial core, dense kernel and the receptive field extent must all be formable. */
    int64_t khkw, spatial, dense, ext;
    TTL_TRY(ttl_mul_i64(&khkw, desc->kernel_h, desc->kernel_w));
    TTL_TRY(ttl_mul_i64(&spatial, khkw, desc->ranks[0]));
    TTL_TRY(ttl_mul_i64(&dense, desc->out_channels, desc->in_channels));
    TTL_TRY(ttl_mul_i64(&dense, dense, khkw));
    TTL_TRY(ttl_mul_i64(&ext, desc->dilation_h, desc->kernel_h));
    TTL_TRY(ttl_mul_i64(&ext, desc->dilation_w, desc->kernel_w));
    int64_t pad2;
    TTL_TRY(ttl_mul_i64(&pad2, desc->pad_h, 2));
    TTL_TRY(ttl_mul_i64(&pad2, desc->pad_w, 2));
    int64_t params;
    TTL_TRY(conv_params(&params, desc));
    size_t bytes;
    TTL_TRY(ttl_bytes(&bytes, dense, sizeof(double)));
    return TTL_STATUS_SUCCESS;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Geometry, counts and offsets                                                                                 */
/* ---------------------------------------------------------------------------------------------------------- */

static ttl_status_t out_extent(int64_t *out, int64_t in, int64_t k, int64_t s, int64_t p, int64_t dil) {
    /* (in + 2p - dil (k - 1) - 1) / s + 1, with every term checked. */
    int64_t padded, span;
    TTL_TRY(ttl_mul_i64(&padded, p, 2));
    TTL_TRY(ttl_add_i64(&padded, padded, in));
    TTL_TRY(ttl_mul_i64(&span, dil, k - 1));
    if (padded - 1 < span) return TTL_STATUS_BAD_SIZE;
    *out = (padded - 1 - span) / s + 1;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_conv_output_size(int64_t *out_h, int64_t *out_w, const ttl_conv_desc_t *desc, int64_t height,
                                  int64_t width) {
    if (out_h == NULL || out_w == NULL || desc == NULL) return TTL_STATUS_NULL_POINTER;
    TTL_TRY(ttl_conv_desc_check(desc));
    if (height < 1 || width < 1) return TTL_STATUS_BAD_SIZE;
    int64_t oh, ow;
    TTL_TRY(out_extent(&oh, height, desc->kernel_h, desc->stride_h, desc->pad_h, desc->dilation_h));
    TTL_TRY(out_extent(&ow, width, desc->kernel_w, desc->stride_w, desc->pad_w, desc->dilation_w));
    *out_h = oh;
    *out_w = ow;
    return TTL_STATUS_SUCCESS;
}

static int64_t core_size(const ttl_fc_desc_t *d, int32_t k) {
    return d->ranks[k] * d->out_modes[k] * d->in_modes[k] * d->ranks[k + 1];
}

ttl_status_t ttl_fc_param_count(int64_t *count, const ttl_fc_desc_t *desc) {
    if (count == NULL) return TTL_STATUS_NULL_POINTER;
    TTL_TRY(ttl_fc_desc_check(desc));
    int64_t total = 0;
    for (int32_t k = 0; k < desc->num_cores; ++k) total += core_size(desc, k);
    *count = total;
    return TTL_STATUS_SUCCESS;
}

/* kh kw r_0 + sum_k r_{k-1} s_k c_k r_k for a descriptor whose channel part passed check_tt_matrix. */
static ttl_status_t conv_params(int64_t *count, const ttl_conv_desc_t *desc) {
    ttl_fc_desc_t fc;
    ttl_conv_channel_desc(&fc, desc);
    int64_t total;
    TTL_TRY(ttl_mul_i64(&total, desc->kernel_h, desc->kernel_w));
    TTL_TRY(ttl_mul_i64(&total, total, desc->ranks[0]));
    for (int32_t k = 0; k < fc.num_cores; ++k) TTL_TRY(ttl_add_i64(&total, total, core_size(&fc, k)));
    *count = total;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_conv_param_count(int64_t *count, const ttl_conv_desc_t *desc) {
    if (count == NULL) return TTL_STATUS_NULL_POINTER;
    TTL_TRY(ttl_conv_desc_check(desc));
    return conv_params(count, desc);
}

ttl_status_t ttl_fc_core_offset(int64_t *offset, const ttl_fc_desc_t *desc, int32_t k) {
    if (offset == NULL) return TTL_STATUS_NULL_POINTER;
    TTL_TRY(ttl_fc_desc_check(desc));
    if (k < 0 || k >= desc->num_cores) return TTL_STATUS_BAD_ARGUMENT;
    int64_t off = 0;
    for (int32_t j = 0; j < k; ++j) off += core_size(desc, j);
    *offset = off;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_conv_core_offset(int64_t *offset, const ttl_conv_desc_t *desc, int32_t k) {
    if (offset == NULL) return TTL_STATUS_NULL_POINTER;
    TTL_TRY(ttl_conv_desc_check(desc));
    if (k < 0 || k > desc->num_cores) return TTL_STATUS_BAD_ARGUMENT;
    ttl_fc_desc_t fc;
    ttl_conv_channel_desc(&fc, desc);
    int64_t off = 0;
    if (k > 0) {
        off = desc->kernel_h * desc->kernel_w * desc->ranks[0];
        for (int32_t j = 0; j < k - 1; ++j) off += core_size(&fc, j);
    }
    *offset = off;
    return TTL_STATUS_SUCCESS;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Multiply-add formulas                                                                                        */
/* ---------------------------------------------------------------------------------------------------------- */

/* Step k (0-based) of first-to-last multiplies r_k r_{k+1} (m_0..m_k)(n_k..n_{d-1}) per sample, of last-to-first
 * r_k r_{k+1} (n_0..n_k)(m_k..m_{d-1}). A left rank r_0 > 1 is one more index of the data, carried through every
 * step except the one that contracts or produces it (step 0): a factor r_0 on the steps k >= 1 of last-to-first
 * when r_0 indexes the input (spatial-first TT-conv), of first-to-last when it indexes the output (channels
 * first). With r_0 = 1 both cases are the TT-FC formulas. */
static ttl_status_t tt_macs(int64_t *macs, const ttl_fc_desc_t *d, ttl_order_t order, int left_rank_is_output) {
    const int32_t n = d->num_cores;
    const int last_to_first = order == TTL_ORDER_LAST_TO_FIRST;
    int64_t total = 0;
    for (int32_t k = 0; k < n; ++k) {
        int64_t t;
        TTL_TRY(ttl_mul_i64(&t, d->ranks[k], d->ranks[k + 1]));
        for (int32_t j = 0; j < n; ++j) {
            const int before = j <= k, after = j >= k;
            int64_t f = 1;
            if (last_to_first) {
                if (before) f *= d->in_modes[j];
                if (after) f *= d->out_modes[j];
            } else {
                if (before) f *= d->out_modes[j];
                if (after) f *= d->in_modes[j];
            }
            TTL_TRY(ttl_mul_i64(&t, t, f));
        }
        const int carries_left_rank = last_to_first != left_rank_is_output;
        if (k >= 1 && carries_left_rank) TTL_TRY(ttl_mul_i64(&t, t, d->ranks[0]));
        TTL_TRY(ttl_add_i64(&total, total, t));
    }
    *macs = total;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_plan_choice_check(ttl_algo_t algo, ttl_order_t order, unsigned supported) {
    if (order != TTL_ORDER_AUTO && order != TTL_ORDER_FIRST_TO_LAST && order != TTL_ORDER_LAST_TO_FIRST)
        return TTL_STATUS_BAD_ARGUMENT;
    if ((int)algo < (int)TTL_ALGO_AUTO || (int)algo > (int)TTL_ALGO_DENSE) return TTL_STATUS_BAD_ARGUMENT;
    return (supported & TTL_ALGO_BIT(algo)) ? TTL_STATUS_SUCCESS : TTL_STATUS_UNSUPPORTED;
}

ttl_status_t ttl_fc_macs_sequential(int64_t *macs, const ttl_fc_desc_t *d, ttl_order_t order) {
    return tt_macs(macs, d, order, 0);
}

ttl_status_t ttl_conv_channel_macs(int64_t *macs, const ttl_conv_desc_t *desc, ttl_algo_t algo, ttl_order_t order) {
    if (algo != TTL_ALGO_SPATIAL_FIRST && algo != TTL_ALGO_CHANNELS_FIRST) return TTL_STATUS_BAD_ARGUMENT;
    ttl_fc_desc_t fc;
    ttl_conv_channel_desc(&fc, desc);
    const int left_rank_is_output = algo == TTL_ALGO_CHANNELS_FIRST;
    if (order != TTL_ORDER_AUTO) return tt_macs(macs, &fc, order, left_rank_is_output);
    int64_t f, l;
    TTL_TRY(tt_macs(&f, &fc, TTL_ORDER_FIRST_TO_LAST, left_rank_is_output));
    TTL_TRY(tt_macs(&l, &fc, TTL_ORDER_LAST_TO_FIRST, left_rank_is_output));
    *macs = ttl_min_i64(f, l);
    return TTL_STATUS_SUCCESS;
}

/* Building the dense matrix left to right from `first` leading rows: sum_{k>=1} first (prod_{j<k} m_j n_j)
 * r_k m_k n_k r_{k+1}, where `first` is 1 for FC and kh kw for conv (whose left rank r_0 is then contracted). */
static ttl_status_t macs_reconstruct(int64_t *macs, const ttl_fc_desc_t *d, int64_t first, int32_t k0) {
    int64_t total = 0, lead = first;
    for (int32_t k = 0; k < d->num_cores; ++k) {
        if (k >= k0) {
            int64_t t;
            TTL_TRY(ttl_mul_i64(&t, lead, d->ranks[k]));
            TTL_TRY(ttl_mul_i64(&t, t, d->out_modes[k] * d->in_modes[k]));
            TTL_TRY(ttl_mul_i64(&t, t, d->ranks[k + 1]));
            TTL_TRY(ttl_add_i64(&total, total, t));
        }
        TTL_TRY(ttl_mul_i64(&lead, lead, d->out_modes[k] * d->in_modes[k]));
    }
    *macs = total;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_fc_stats(ttl_fc_stats_t *stats, const ttl_fc_desc_t *desc, int64_t batch) {
    if (stats == NULL) return TTL_STATUS_NULL_POINTER;
    TTL_TRY(ttl_fc_desc_check(desc));
    if (batch < 0) return TTL_STATUS_BAD_ARGUMENT;
    ttl_fc_stats_t s;
    memset(&s, 0, sizeof(s));
    TTL_TRY(ttl_fc_param_count(&s.params, desc));
    s.dense_params = desc->out_features * desc->in_features;
    s.compression = (double)s.dense_params / (double)s.params;
    int64_t f, l;
    TTL_TRY(ttl_fc_macs_sequential(&f, desc, TTL_ORDER_FIRST_TO_LAST));
    TTL_TRY(ttl_fc_macs_sequential(&l, desc, TTL_ORDER_LAST_TO_FIRST));
    TTL_TRY(ttl_mul_i64(&s.macs_first_to_last, f, batch));
    TTL_TRY(ttl_mul_i64(&s.macs_last_to_first, l, batch));
    TTL_TRY(ttl_mul_i64(&s.macs_dense, s.dense_params, batch));
    TTL_TRY(macs_reconstruct(&s.macs_reconstruct, desc, 1, 1));
    *stats = s;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_conv_stats(ttl_conv_stats_t *stats, const ttl_conv_desc_t *desc, const ttl_conv_shape_t *shape) {
    if (stats == NULL || shape == NULL) return TTL_STATUS_NULL_POINTER;
    TTL_TRY(ttl_conv_desc_check(desc));
    if (shape->batch < 0) return TTL_STATUS_BAD_ARGUMENT;
    if (shape->layout != TTL_LAYOUT_NCHW && shape->layout != TTL_LAYOUT_NHWC) return TTL_STATUS_BAD_ARGUMENT;
    ttl_conv_stats_t s;
    memset(&s, 0, sizeof(s));
    TTL_TRY(ttl_conv_output_size(&s.out_h, &s.out_w, desc, shape->height, shape->width));
    TTL_TRY(ttl_conv_param_count(&s.params, desc));
    const int64_t khkw = desc->kernel_h * desc->kernel_w;
    s.dense_params = desc->out_channels * desc->in_channels * khkw;
    s.compression = (double)s.dense_params / (double)s.params;

    /* The channel TT-matrix in its cheaper order, per output pixel (r_0 an input index) for spatial first and
     * per input pixel (r_0 an output index) for channels first. */
    int64_t chan_sf, chan_cf, in_px, out_px, t;
    TTL_TRY(ttl_conv_channel_macs(&chan_sf, desc, TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO));
    TTL_TRY(ttl_conv_channel_macs(&chan_cf, desc, TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO));
    TTL_TRY(ttl_mul_i64(&in_px, shape->height, shape->width));
    TTL_TRY(ttl_mul_i64(&in_px, in_px, shape->batch));
    TTL_TRY(ttl_mul_i64(&out_px, s.out_h, s.out_w));
    TTL_TRY(ttl_mul_i64(&out_px, out_px, shape->batch));
    /* spatial first: per output pixel, kh kw r_0 C for the r_0 maps, then the channel TT */
    TTL_TRY(ttl_mul_i64(&t, khkw * desc->ranks[0], desc->in_channels));
    TTL_TRY(ttl_add_i64(&t, t, chan_sf));
    TTL_TRY(ttl_mul_i64(&s.macs_spatial_first, t, out_px));
    /* channels first: channel TT per input pixel, then kh kw r_0 S per output pixel */
    int64_t a, b;
    TTL_TRY(ttl_mul_i64(&a, chan_cf, in_px));
    TTL_TRY(ttl_mul_i64(&b, khkw * desc->ranks[0], desc->out_channels));
    TTL_TRY(ttl_mul_i64(&b, b, out_px));
    TTL_TRY(ttl_add_i64(&s.macs_channels_first, a, b));
    TTL_TRY(ttl_mul_i64(&s.macs_dense, s.dense_params, out_px));
    /* reconstruct: spatial core [kh kw, r_0] times the channel chain, left to right */
    ttl_fc_desc_t fc;
    ttl_conv_channel_desc(&fc, desc);
    TTL_TRY(macs_reconstruct(&s.macs_reconstruct, &fc, khkw, 0));
    *stats = s;
    return TTL_STATUS_SUCCESS;
}
