/*
 * Internal validation helpers shared by every entry point (BLIS bli_check_* style): each returns a status, the
 * caller returns early on anything but SUCCESS. Checked arithmetic so that no size the library forms can wrap.
 */
#ifndef TTL_COMMON_CHECK_H
#define TTL_COMMON_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "ttl/ttl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Return the status of an expression from the enclosing function when it is not SUCCESS. */
#define TTL_TRY(expr)                                                                                              \
    do {                                                                                                           \
        ttl_status_t ttl_try_status_ = (expr);                                                                     \
        if (ttl_try_status_ != TTL_STATUS_SUCCESS) return ttl_try_status_;                                         \
    } while (0)

/* *out = a * b, OVERFLOW when it does not fit int64_t (operands are expected >= 0). */
static inline ttl_status_t ttl_mul_i64(int64_t *out, int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) return TTL_STATUS_OVERFLOW;
    *out = r;
    return TTL_STATUS_SUCCESS;
}

static inline ttl_status_t ttl_add_i64(int64_t *out, int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return TTL_STATUS_OVERFLOW;
    *out = r;
    return TTL_STATUS_SUCCESS;
}

/* Byte size of `count` elements of `elem` bytes, OVERFLOW when it does not fit size_t. */
static inline ttl_status_t ttl_bytes(size_t *out, int64_t count, size_t elem) {
    size_t r;
    if (count < 0) return TTL_STATUS_BAD_SIZE;
    if (__builtin_mul_overflow((size_t)count, elem, &r)) return TTL_STATUS_OVERFLOW;
    *out = r;
    return TTL_STATUS_SUCCESS;
}

/* Product of n entries of v, each required >= 1. */
static inline ttl_status_t ttl_product(int64_t *out, const int64_t *v, int32_t n) {
    int64_t p = 1;
    for (int32_t i = 0; i < n; ++i) {
        if (v[i] < 1) return TTL_STATUS_BAD_SIZE;
        if (ttl_mul_i64(&p, p, v[i]) != TTL_STATUS_SUCCESS) return TTL_STATUS_OVERFLOW;
    }
    *out = p;
    return TTL_STATUS_SUCCESS;
}

static inline int64_t ttl_min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t ttl_max_i64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Whether the byte ranges [a, a + a_bytes) and [b, b + b_bytes) share a byte (an empty range shares none). */
static inline int ttl_ranges_overlap(const void *a, size_t a_bytes, const void *b, size_t b_bytes) {
    const uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
    return a_bytes > 0 && b_bytes > 0 && pa < pb + b_bytes && pb < pa + a_bytes;
}

/* A forward call's output, input and workspace must be three separate buffers: the output and the workspace
 * are written while the input is still read (so in place is not allowed). */
static inline int ttl_forward_buffers_overlap(const void *y, size_t y_bytes, const void *x, size_t x_bytes,
                                              const void *ws, size_t ws_bytes) {
    return ttl_ranges_overlap(y, y_bytes, x, x_bytes) || ttl_ranges_overlap(ws, ws_bytes, x, x_bytes) ||
           ttl_ranges_overlap(ws, ws_bytes, y, y_bytes);
}

/* Workspace slices: carve aligned pieces out of one caller buffer. */
#define TTL_WS_ALIGN ((size_t)64)
static inline size_t ttl_align_up(size_t n) { return (n + TTL_WS_ALIGN - 1) & ~(TTL_WS_ALIGN - 1); }

/* Size of the channel-part TT-matrix of a conv descriptor seen as a TT-FC descriptor with left rank r_0:
 * the same modes and ranks, ranks[0] kept. Used by the conv algorithms and the cost formulas. */
void ttl_conv_channel_desc(ttl_fc_desc_t *fc, const ttl_conv_desc_t *conv);

/* Multiply-adds of a sequential contraction of a TT-matrix whose ranks[0] may exceed 1 (the extra left rank
 * is then an input index, as for the channel part of spatial-first TT-conv), per sample. */
ttl_status_t ttl_fc_macs_sequential(int64_t *macs, const ttl_fc_desc_t *desc, ttl_order_t order);

/* Multiply-adds of the channel TT-matrix of a valid conv descriptor per pixel, for algo SPATIAL_FIRST (per output
 * pixel, r_0 an input index) or CHANNELS_FIRST (per input pixel, r_0 an output index) in the given order; AUTO
 * gives the cheaper order's count. BAD_ARGUMENT for any other algo. */
ttl_status_t ttl_conv_channel_macs(int64_t *macs, const ttl_conv_desc_t *desc, ttl_algo_t algo, ttl_order_t order);

/* Bit of an algorithm in the `supported` mask of ttl_plan_choice_check. */
#define TTL_ALGO_BIT(algo) (1u << (unsigned)(algo))

/* Plan options every plan_create shares: BAD_ARGUMENT for an order or algorithm outside its enum, UNSUPPORTED for
 * a known algorithm whose bit is not in `supported` (it exists, but not for this layer kind or device). */
ttl_status_t ttl_plan_choice_check(ttl_algo_t algo, ttl_order_t order, unsigned supported);

/* Like ttl_fc_desc_check but ranks[0] may be any value >= 1 (channel part of a TT-conv). */
ttl_status_t ttl_fc_desc_check_left_rank(const ttl_fc_desc_t *desc);

#ifdef __cplusplus
}
#endif

#endif /* TTL_COMMON_CHECK_H */
