/*
 * CPU reference of the TT-conv layer: THIS FILE IS THE SPECIFICATION every faster path is tested against.
 *
 *     K[s, c, p, q] = G_0[p, q, :] . G_1[:, s_1, c_1, :] ... G_d[:, s_d, c_d, :]       K is [S, C, kh, kw]
 *     y[b, s, h, w] = sum_{c, p, q} K[s, c, p, q] x[b, c, h sh - ph + p dh, w sw - pw + q dw] + bias[s]
 *
 * (docs/tt-layers.md, section 2): cross-correlation, zero padding (x outside the image contributes nothing),
 * multi-indices s <-> (s_1..s_d), c <-> (c_1..c_d) row-major. The channel cores form a TT-matrix whose left
 * rank is r_0; its row s, T_s[a, c], comes from the row builder (reference_rows.c), and
 * K[s, c, p, q] = sum_a G_0[p, q, a] T_s[a, c]. Plain loops, every product and sum in double, rounded to float
 * once per output element. Each y element sums (c, p, q) in increasing row-major order and adds the bias last.
 * The kernel is built one output channel at a time, so memory is O(C kh kw + OH OW + builder) doubles.
 *
 * Arguments: reconstruction needs a valid descriptor and non-NULL K and cores. Forward validates the descriptor
 * first, then the shape (NULL: NULL_POINTER; layout not NCHW/NHWC or batch < 0: BAD_ARGUMENT; height, width or
 * output size < 1: BAD_SIZE); batch 0 then returns SUCCESS without reading or writing anything, so y, x and
 * cores may be NULL. Otherwise y, x and cores must be non-NULL; bias
 * may be NULL (no bias). All checks and allocations come before the first write, so on any error the output is
 * untouched.
 */
#include <stdlib.h>

#include "common/check.h"
#include "cpu/reference_rows.h"

// ---------------------------------------------------------------------------------------------------------------
// Kernel slices
// ---------------------------------------------------------------------------------------------------------------

/* ks[c, p, q] = sum_a G_0[p, q, a] T_s[a, c] for one output channel s; T_s is [r_0, C], ks is [C, kh kw]. */
static void kernel_slice(double *ks, const double *T, const float *spatial, int64_t C, int64_t khkw, int64_t r0) {
    for (int64_t c = 0; c < C; ++c)
        for (int64_t pq = 0; pq < khkw; ++pq) {
            double acc = 0.0;
            for (int64_t a = 0; a < r0; ++a) acc += (double)spatial[pq * r0 + a] * T[a * C + c];
            ks[c * khkw + pq] = acc;
        }
}

/* Builder for the channel TT-matrix (left rank r_0) and a [C, kh kw] slice buffer. */
typedef struct kernel_builder {
    ttl_fc_desc_t chan;
    ttl_ref_rows_t rows;
    double *slice;
} kernel_builder_t;

static ttl_status_t kernel_builder_init(kernel_builder_t *kb, const ttl_conv_desc_t *desc, const float *cores) {
    ttl_conv_channel_desc(&kb->chan, desc);
    const int64_t khkw = desc->kernel_h * desc->kernel_w; // checked by ttl_conv_desc_check
    size_t bytes;
    TTL_TRY(ttl_bytes(&bytes, desc->in_channels * khkw, sizeof(double)));
    kb->slice = malloc(bytes);
    if (kb->slice == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    const ttl_status_t st = ttl_ref_rows_init(&kb->rows, &kb->chan, cores + khkw * desc->ranks[0]);
    if (st != TTL_STATUS_SUCCESS) {
        free(kb->slice);
        return st;
    }
    return TTL_STATUS_SUCCESS;
}

static void kernel_builder_free(kernel_builder_t *kb) {
    ttl_ref_rows_free(&kb->rows);
    free(kb->slice);
}

/* K[s, :, :, :] in double, [C, kh, kw]; valid until the next call. */
static const double *kernel_builder_get(kernel_builder_t *kb, const ttl_conv_desc_t *desc, const float *cores,
                                        int64_t s) {
    const double *T = ttl_ref_rows_get(&kb->rows, s);
    kernel_slice(kb->slice, T, cores, desc->in_channels, desc->kernel_h * desc->kernel_w, desc->ranks[0]);
    return kb->slice;
}

// ---------------------------------------------------------------------------------------------------------------
// Reconstruction
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t ttl_conv_reconstruct(float *K, const ttl_conv_desc_t *desc, const float *cores) {
    TTL_TRY(ttl_conv_desc_check(desc));
    if (K == NULL || cores == NULL) return TTL_STATUS_NULL_POINTER;
    kernel_builder_t kb;
    TTL_TRY(kernel_builder_init(&kb, desc, cores));
    const int64_t per_s = desc->in_channels * desc->kernel_h * desc->kernel_w;
    for (int64_t s = 0; s < desc->out_channels; ++s) {
        const double *ks = kernel_builder_get(&kb, desc, cores, s);
        for (int64_t t = 0; t < per_s; ++t) K[s * per_s + t] = (float)ks[t];
    }
    kernel_builder_free(&kb);
    return TTL_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------------------------------

/* Outputs o in [*lo, *hi) whose input index o * stride + offset lies in [0, in). */
static void valid_range(int64_t *lo, int64_t *hi, int64_t out, int64_t in, int64_t stride, int64_t offset) {
    *lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    *hi = in - 1 - offset < 0 ? 0 : ttl_min_i64(out, (in - 1 - offset) / stride + 1);
}

/* Element strides of a [B, channels, height, width] activation in either layout. */
typedef struct strides {
    int64_t b, c, h, w;
} strides_t;

static strides_t layout_strides(ttl_layout_t layout, int64_t channels, int64_t height, int64_t width) {
    strides_t st;
    st.b = channels * height * width;
    if (layout == TTL_LAYOUT_NCHW) {
        st.c = height * width, st.h = width, st.w = 1;
    } else {
        st.c = 1, st.h = width * channels, st.w = channels;
    }
    return st;
}

/* One output plane y[b, s, :, :] into acc [OH, OW]: sum over (c, p, q) in increasing order. */
static void output_plane(double *acc, const double *ks, const float *x, const ttl_conv_desc_t *desc,
                         const ttl_conv_shape_t *shape, strides_t xs, int64_t b, int64_t OH, int64_t OW) {
    const int64_t kh = desc->kernel_h, kw = desc->kernel_w;
    for (int64_t t = 0; t < OH * OW; ++t) acc[t] = 0.0;
    for (int64_t c = 0; c < desc->in_channels; ++c)
        for (int64_t p = 0; p < kh; ++p) {
            const int64_t off_h = p * desc->dilation_h - desc->pad_h;
            int64_t oh_lo, oh_hi;
            valid_range(&oh_lo, &oh_hi, OH, shape->height, desc->stride_h, off_h);
            for (int64_t q = 0; q < kw; ++q) {
                const int64_t off_w = q * desc->dilation_w - desc->pad_w;
                int64_t ow_lo, ow_hi;
                valid_range(&ow_lo, &ow_hi, OW, shape->width, desc->stride_w, off_w);
                const double k = ks[(c * kh + p) * kw + q];
                for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
                    const float *xr = x + b * xs.b + c * xs.c + (oh * desc->stride_h + off_h) * xs.h;
                    double *ar = acc + oh * OW;
                    for (int64_t ow = ow_lo; ow < ow_hi; ++ow)
                        ar[ow] += k * (double)xr[(ow * desc->stride_w + off_w) * xs.w];
                }
            }
        }
}

ttl_status_t ttl_conv_forward_ref(float *y, const ttl_conv_desc_t *desc, const float *cores, const float *bias,
                                  const float *x, const ttl_conv_shape_t *shape) {
    TTL_TRY(ttl_conv_desc_check(desc));
    if (shape == NULL) return TTL_STATUS_NULL_POINTER;
    if (shape->layout != TTL_LAYOUT_NCHW && shape->layout != TTL_LAYOUT_NHWC) return TTL_STATUS_BAD_ARGUMENT;
    if (shape->batch < 0) return TTL_STATUS_BAD_ARGUMENT;
    int64_t OH, OW;
    TTL_TRY(ttl_conv_output_size(&OH, &OW, desc, shape->height, shape->width));
    if (shape->batch == 0) return TTL_STATUS_SUCCESS;
    if (y == NULL || x == NULL || cores == NULL) return TTL_STATUS_NULL_POINTER;
    const int64_t B = shape->batch, S = desc->out_channels, C = desc->in_channels;
    int64_t x_count, y_count, plane;
    TTL_TRY(ttl_mul_i64(&x_count, B, C));
    TTL_TRY(ttl_mul_i64(&x_count, x_count, shape->height));
    TTL_TRY(ttl_mul_i64(&x_count, x_count, shape->width));
    TTL_TRY(ttl_mul_i64(&plane, OH, OW));
    TTL_TRY(ttl_mul_i64(&y_count, B, S));
    TTL_TRY(ttl_mul_i64(&y_count, y_count, plane));
    size_t plane_bytes;
    TTL_TRY(ttl_bytes(&plane_bytes, plane, sizeof(double)));

    kernel_builder_t kb;
    TTL_TRY(kernel_builder_init(&kb, desc, cores));
    double *acc = malloc(plane_bytes);
    if (acc == NULL) {
        kernel_builder_free(&kb);
        return TTL_STATUS_OUT_OF_MEMORY;
    }

    const strides_t xs = layout_strides(shape->layout, C, shape->height, shape->width);
    const strides_t ys = layout_strides(shape->layout, S, OH, OW);
    for (int64_t s = 0; s < S; ++s) {
        const double *ks = kernel_builder_get(&kb, desc, cores, s);
        const double bias_s = bias != NULL ? (double)bias[s] : 0.0;
        for (int64_t b = 0; b < B; ++b) {
            output_plane(acc, ks, x, desc, shape, xs, b, OH, OW);
            for (int64_t oh = 0; oh < OH; ++oh)
                for (int64_t ow = 0; ow < OW; ++ow)
                    y[b * ys.b + s * ys.c + oh * ys.h + ow * ys.w] = (float)(acc[oh * OW + ow] + bias_s);
        }
    }

    free(acc);
    kernel_builder_free(&kb);
    return TTL_STATUS_SUCCESS;
}
