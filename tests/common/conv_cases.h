// The TT-conv shapes both CUDA conv tests run (tests/gpu/test_cuda_conv.cpp on the device,
// tests/cpu/test_cuda_conv_emulation.cpp with the kernel bodies on the host): odd modes, rank 1, d = 1..4, one
// input or output channel, batch 1 and odd, stride 2, dilation 2, padding 0/1/2, 1x1/3x3/5x5 and non-square
// kernels, bias on/off, a CIFAR layer and a VGG-size 512 -> 512 layer; with random data and the CPU reference
// output per layout.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

#include "common/test_util.h"

namespace ttl_test {

struct ConvCase {
    const char *name;
    std::vector<int64_t> out_modes, in_modes, ranks;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    int64_t batch, height, width;
    bool bias;
};

inline const std::vector<ConvCase> &cases() {
    static const std::vector<ConvCase> list = {
        {"d1_1x1", {3}, {5}, {2, 1}, 1, 1, 1, 1, 0, 0, 1, 1, 1, 5, 4, true},
        {"odd_d2_3x3_pad1", {3, 5}, {5, 3}, {3, 2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 3, 7, 6, false},
        {"rank1_d3", {2, 3, 2}, {3, 2, 2}, {1, 1, 1, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 5, 5, true},
        {"d4", {2, 2, 3, 2}, {2, 3, 2, 2}, {3, 2, 3, 2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 6, 5, true},
        {"stride2", {4, 4}, {4, 2}, {4, 3, 1}, 3, 3, 2, 2, 1, 1, 1, 1, 2, 9, 8, false},
        {"dilation2_pad2", {3, 4}, {2, 5}, {5, 4, 1}, 3, 3, 1, 1, 2, 2, 2, 2, 2, 9, 9, true},
        {"k5x5_pad2", {4, 2}, {2, 4}, {6, 3, 1}, 5, 5, 1, 1, 2, 2, 1, 1, 1, 8, 7, false},
        {"k3x1_stride_1x2", {2, 3}, {3, 3}, {4, 2, 1}, 3, 1, 1, 2, 1, 0, 1, 1, 3, 6, 7, true},
        {"k1x5_dil_1x2", {3, 1, 3}, {2, 2, 2}, {2, 3, 2, 1}, 1, 5, 1, 1, 0, 2, 1, 2, 1, 4, 11, false},
        {"pad0_r0_9", {4, 4}, {4, 4}, {9, 5, 1}, 3, 3, 1, 1, 0, 0, 1, 1, 2, 6, 6, true},
        {"d1_5x5_stride2", {5}, {7}, {3, 1}, 5, 5, 2, 2, 1, 1, 1, 1, 1, 11, 9, true},
        {"batch5_1x1_stride2", {3, 3}, {3, 3}, {2, 2, 1}, 1, 1, 2, 2, 0, 0, 1, 1, 5, 7, 7, true},
        {"one_out_channel", {1, 1}, {3, 2}, {2, 2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 6, 5, true},
        {"one_in_channel_stride2", {2, 3}, {1, 1}, {3, 2, 1}, 3, 3, 2, 2, 1, 1, 1, 1, 3, 7, 6, false},
        {"padding_only_rows", {2}, {3}, {2, 1}, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 3, true},
        {"wide_input_1024", {2, 4, 4}, {16, 8, 8}, {8, 4, 4, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 6, 6, true},
        {"cifar_conv3.1_r16", {4, 8, 4}, {4, 8, 4}, {16, 16, 16, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 8, 8, true},
        {"vgg_512_14x14_r8", {8, 8, 8}, {8, 8, 8}, {8, 8, 8, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 14, 14, true},
    };
    return list;
}

inline ttl_conv_desc_t make_desc(const ConvCase &c) {
    return conv_desc(c.out_modes, c.in_modes, c.ranks, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw);
}

// Channels first holds U (r_0 S floats per input pixel) for at least the kh x kw input pixels one output pixel
// reads, clipped to the image: where that exceeds twice the larger activation (a tiny image, r_0 S much larger
// than C) the algorithm cannot keep to that bound, and its planner takes this least chunk (64-byte aligned).
inline size_t cf_least_u_bytes(const ttl_conv_desc_t &d, int64_t height, int64_t width) {
    const int64_t rows = std::min<int64_t>(height, (d.kernel_h - 1) * d.dilation_h + 1);
    const int64_t cols = std::min<int64_t>(width, (d.kernel_w - 1) * d.dilation_w + 1);
    const size_t bytes = size_t(rows * cols * d.ranks[0] * d.out_channels) * sizeof(float);
    return (bytes + 63) / 64 * 64;
}

inline int64_t out_extent(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
    return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

// Host data of a case and its CPU-reference output per layout, computed once per process (the 512-channel oracle
// takes a second).
struct CaseData {
    ttl_conv_desc_t desc;
    std::vector<float> cores, bias, x_nchw, x_nhwc;
    std::map<int, std::vector<float>> y_ref; /* by layout */
    int64_t oh = 0, ow = 0;
};

inline CaseData &case_data(size_t index) {
    static std::map<size_t, CaseData> cache;
    auto it = cache.find(index);
    if (it != cache.end()) return it->second;
    const ConvCase &c = cases()[index];
    CaseData d;
    d.desc = make_desc(c);
    d.cores = random_vector(conv_param_count(d.desc), 1000 + index);
    d.bias = random_vector(d.desc.out_channels, 2000 + index);
    const int64_t C = d.desc.in_channels, H = c.height, W = c.width, B = c.batch;
    d.x_nchw = random_vector(B * C * H * W, 3000 + index);
    d.x_nhwc.resize(d.x_nchw.size());
    for (int64_t b = 0; b < B; ++b)
        for (int64_t ch = 0; ch < C; ++ch)
            for (int64_t h = 0; h < H; ++h)
                for (int64_t w = 0; w < W; ++w)
                    d.x_nhwc[((b * H + h) * W + w) * C + ch] = d.x_nchw[((b * C + ch) * H + h) * W + w];
    d.oh = out_extent(H, c.kh, c.sh, c.ph, c.dh);
    d.ow = out_extent(W, c.kw, c.sw, c.pw, c.dw);
    const std::vector<double> K = oracle_conv_dense(d.desc, d.cores.data());
    for (int layout : {TTL_LAYOUT_NCHW, TTL_LAYOUT_NHWC}) {
        const ttl_conv_shape_t shape{B, H, W, ttl_layout_t(layout)};
        const float *x = layout == TTL_LAYOUT_NCHW ? d.x_nchw.data() : d.x_nhwc.data();
        const float *bias = c.bias ? d.bias.data() : nullptr;
        // The GPU is held to the CPU reference; the reference itself to the independent oracle.
        std::vector<float> ref(size_t(B * d.desc.out_channels * d.oh * d.ow));
        EXPECT_EQ(ttl_conv_forward_ref(ref.data(), &d.desc, d.cores.data(), bias, x, &shape), TTL_STATUS_SUCCESS);
        EXPECT_LE(rel_err(ref, to_float(oracle_conv_forward(K, d.desc, x, bias, shape))), 1e-6);
        d.y_ref[layout] = std::move(ref);
    }
    return cache.emplace(index, std::move(d)).first->second;
}

} // namespace ttl_test
