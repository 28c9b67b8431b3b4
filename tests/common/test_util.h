// Shared test helpers: seeded random data (never zeros), relative error, and an independent dense oracle that
// builds W and K element by element from the chain-of-matrices definition (tt-layers.md), in double, sharing no
// code with the library.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "ttl/ttl.h"

namespace ttl_test {

// Sanitizer allocators abort on absurd requests instead of returning NULL, so the out-of-memory tests skip there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// Uniform in [-1, -0.1] U [0.1, 1]: no zeros, so an unwritten or mis-indexed output cannot hide.
inline std::vector<float> random_vector(int64_t n, uint64_t seed, float scale = 1.0f) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> mag(0.1f, 1.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto &x : v) x = scale * (rng() & 1 ? mag(rng) : -mag(rng));
    return v;
}

// ||a - b|| / ||b|| in double; infinite when sizes differ or anything is not finite.
inline double rel_err(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
        const double d = double(a[i]) - double(b[i]);
        num += d * d;
        den += double(b[i]) * double(b[i]);
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return std::sqrt(num / den);
}
inline double rel_err(const std::vector<float> &a, const std::vector<float> &b) {
    return a.size() == b.size() ? rel_err(a.data(), b.data(), int64_t(a.size())) : INFINITY;
}

// Builds an FC descriptor from mode and rank lists (ranks has num_cores + 1 entries).
inline ttl_fc_desc_t fc_desc(const std::vector<int64_t> &out_modes, const std::vector<int64_t> &in_modes,
                             const std::vector<int64_t> &ranks) {
    ttl_fc_desc_t d{};
    d.num_cores = int32_t(out_modes.size());
    d.out_features = d.in_features = 1;
    for (size_t k = 0; k < out_modes.size(); ++k) {
        d.out_modes[k] = out_modes[k];
        d.in_modes[k] = in_modes[k];
        d.out_features *= out_modes[k];
        d.in_features *= in_modes[k];
    }
    for (size_t k = 0; k < ranks.size(); ++k) d.ranks[k] = ranks[k];
    return d;
}

// Conv descriptor with channel modes/ranks and geometry {kh, kw, sh, sw, ph, pw, dh, dw}.
inline ttl_conv_desc_t conv_desc(const std::vector<int64_t> &out_modes, const std::vector<int64_t> &in_modes,
                                 const std::vector<int64_t> &ranks, int64_t kh, int64_t kw, int64_t sh = 1,
                                 int64_t sw = 1, int64_t ph = 0, int64_t pw = 0, int64_t dh = 1, int64_t dw = 1) {
    ttl_conv_desc_t d{};
    d.num_cores = int32_t(out_modes.size());
    d.out_channels = d.in_channels = 1;
    for (size_t k = 0; k < out_modes.size(); ++k) {
        d.out_modes[k] = out_modes[k];
        d.in_modes[k] = in_modes[k];
        d.out_channels *= out_modes[k];
        d.in_channels *= in_modes[k];
    }
    for (size_t k = 0; k < ranks.size(); ++k) d.ranks[k] = ranks[k];
    d.kernel_h = kh, d.kernel_w = kw, d.stride_h = sh, d.stride_w = sw;
    d.pad_h = ph, d.pad_w = pw, d.dilation_h = dh, d.dilation_w = dw;
    return d;
}

// Packed-core size, computed here from the shapes (not by the library).
inline int64_t fc_param_count(const ttl_fc_desc_t &d) {
    int64_t n = 0;
    for (int k = 0; k < d.num_cores; ++k) n += d.ranks[k] * d.out_modes[k] * d.in_modes[k] * d.ranks[k + 1];
    return n;
}
inline int64_t conv_param_count(const ttl_conv_desc_t &d) {
    int64_t n = d.kernel_h * d.kernel_w * d.ranks[0];
    for (int k = 0; k < d.num_cores; ++k) n += d.ranks[k] * d.out_modes[k] * d.in_modes[k] * d.ranks[k + 1];
    return n;
}

// Oracle: W[i, j] as the product of the core slices G_k[:, i_k, j_k, :], a 1 x r_0 row vector times matrices.
// `left` is the row vector to start from (size ranks[0]).
inline double chain_element(const ttl_fc_desc_t &d, const float *cores, int64_t i, int64_t j,
                            const std::vector<double> &left) {
    std::vector<int64_t> ik(d.num_cores), jk(d.num_cores);
    for (int k = d.num_cores - 1; k >= 0; --k) {
        ik[k] = i % d.out_modes[k], i /= d.out_modes[k];
        jk[k] = j % d.in_modes[k], j /= d.in_modes[k];
    }
    std::vector<double> v = left;
    const float *g = cores;
    for (int k = 0; k < d.num_cores; ++k) {
        const int64_t ra = d.ranks[k], m = d.out_modes[k], n = d.in_modes[k], rb = d.ranks[k + 1];
        std::vector<double> w(size_t(rb), 0.0);
        for (int64_t a = 0; a < ra; ++a)
            for (int64_t c = 0; c < rb; ++c) w[c] += v[a] * g[((a * m + ik[k]) * n + jk[k]) * rb + c];
        v.swap(w);
        g += ra * m * n * rb;
    }
    return v[0];
}

// Oracle W[M, N] in double.
inline std::vector<double> oracle_fc_dense(const ttl_fc_desc_t &d, const float *cores) {
    std::vector<double> W(size_t(d.out_features * d.in_features));
    const std::vector<double> one{1.0};
    for (int64_t i = 0; i < d.out_features; ++i)
        for (int64_t j = 0; j < d.in_features; ++j) W[i * d.in_features + j] = chain_element(d, cores, i, j, one);
    return W;
}

// Oracle K[S, C, kh, kw] in double.
inline std::vector<double> oracle_conv_dense(const ttl_conv_desc_t &d, const float *cores) {
    ttl_fc_desc_t fc = fc_desc(std::vector<int64_t>(d.out_modes, d.out_modes + d.num_cores),
                               std::vector<int64_t>(d.in_modes, d.in_modes + d.num_cores),
                               std::vector<int64_t>(d.ranks, d.ranks + d.num_cores + 1));
    const int64_t r0 = d.ranks[0], khw = d.kernel_h * d.kernel_w;
    const float *chan = cores + khw * r0;
    std::vector<double> K(size_t(d.out_channels * d.in_channels * khw));
    std::vector<double> left(static_cast<size_t>(r0));
    for (int64_t pq = 0; pq < khw; ++pq) {
        for (int64_t a = 0; a < r0; ++a) left[a] = cores[pq * r0 + a];
        for (int64_t s = 0; s < d.out_channels; ++s)
            for (int64_t c = 0; c < d.in_channels; ++c)
                K[(s * d.in_channels + c) * khw + pq] = chain_element(fc, chan, s, c, left);
    }
    return K;
}

// Oracle y = W x + b, double.
inline std::vector<double> oracle_fc_forward(const std::vector<double> &W, int64_t M, int64_t N, const float *x,
                                             const float *bias, int64_t B) {
    std::vector<double> y(size_t(B * M));
    for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < M; ++i) {
            double acc = bias ? bias[i] : 0.0;
            for (int64_t j = 0; j < N; ++j) acc += W[i * N + j] * x[b * N + j];
            y[b * M + i] = acc;
        }
    return y;
}

// Oracle direct cross-correlation in double, NCHW or NHWC.
inline std::vector<double> oracle_conv_forward(const std::vector<double> &K, const ttl_conv_desc_t &d,
                                               const float *x, const float *bias, const ttl_conv_shape_t &sh) {
    const int64_t S = d.out_channels, C = d.in_channels, H = sh.height, Wd = sh.width;
    const int64_t OH = (H + 2 * d.pad_h - d.dilation_h * (d.kernel_h - 1) - 1) / d.stride_h + 1;
    const int64_t OW = (Wd + 2 * d.pad_w - d.dilation_w * (d.kernel_w - 1) - 1) / d.stride_w + 1;
    const bool nhwc = sh.layout == TTL_LAYOUT_NHWC;
    std::vector<double> y(size_t(sh.batch * S * OH * OW));
    for (int64_t b = 0; b < sh.batch; ++b)
        for (int64_t s = 0; s < S; ++s)
            for (int64_t oh = 0; oh < OH; ++oh)
                for (int64_t ow = 0; ow < OW; ++ow) {
                    double acc = bias ? bias[s] : 0.0;
                    for (int64_t c = 0; c < C; ++c)
                        for (int64_t p = 0; p < d.kernel_h; ++p)
                            for (int64_t q = 0; q < d.kernel_w; ++q) {
                                const int64_t ih = oh * d.stride_h - d.pad_h + p * d.dilation_h;
                                const int64_t iw = ow * d.stride_w - d.pad_w + q * d.dilation_w;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= Wd) continue;
                                const int64_t xi =
                                    nhwc ? ((b * H + ih) * Wd + iw) * C + c : ((b * C + c) * H + ih) * Wd + iw;
                                acc += K[((s * C + c) * d.kernel_h + p) * d.kernel_w + q] * x[xi];
                            }
                    const int64_t yi = nhwc ? ((b * OH + oh) * OW + ow) * S + s : ((b * S + s) * OH + oh) * OW + ow;
                    y[yi] = acc;
                }
    return y;
}

inline std::vector<float> to_float(const std::vector<double> &v) { return std::vector<float>(v.begin(), v.end()); }

} // namespace ttl_test
