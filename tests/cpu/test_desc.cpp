// Descriptors, counts and cost formulas: ttl_*_desc_check statuses, parameter counts, packed-core offsets, conv
// output sizes, the multiply-add formulas of ttl_fc_stats/ttl_conv_stats against numbers worked out by hand
// here, the paper's configurations of docs/tt-layers.md, and the status/version/enum names.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "ttl/ttl.h"

using namespace ttl_test;

namespace {

constexpr int64_t kBig = int64_t(1) << 32;

// Parameters of a TT-matrix / TT-conv straight from the docs' formula, written independently of the library.
int64_t tt_params(const std::vector<int64_t> &out, const std::vector<int64_t> &in, const std::vector<int64_t> &r) {
    int64_t p = 0;
    for (size_t k = 0; k < out.size(); ++k) p += r[k] * out[k] * in[k] * r[k + 1];
    return p;
}

int64_t prod(const std::vector<int64_t> &v) {
    int64_t p = 1;
    for (int64_t x : v) p *= x;
    return p;
}

// ---------------------------------------------------------------------------------------------------------------
// Descriptor checks
// ---------------------------------------------------------------------------------------------------------------

struct FcCheck {
    const char *name;
    ttl_fc_desc_t desc;
    ttl_status_t status;
};

ttl_fc_desc_t fc_with(void (*mutate)(ttl_fc_desc_t &)) {
    ttl_fc_desc_t d = fc_desc({2, 3}, {4, 5}, {1, 3, 1});
    mutate(d);
    return d;
}

const std::vector<FcCheck> kFcChecks = {
    {"valid", fc_with([](ttl_fc_desc_t &) {}), TTL_STATUS_SUCCESS},
    {"one_core", fc_desc({7}, {11}, {1, 1}), TTL_STATUS_SUCCESS},
    {"max_cores", fc_desc(std::vector<int64_t>(16, 2), std::vector<int64_t>(16, 1), std::vector<int64_t>(17, 1)),
     TTL_STATUS_SUCCESS},
    {"unused_entries_ignored", fc_with([](ttl_fc_desc_t &d) { d.out_modes[5] = d.ranks[7] = -9; }),
     TTL_STATUS_SUCCESS},
    {"no_cores", fc_with([](ttl_fc_desc_t &d) { d.num_cores = 0; }), TTL_STATUS_BAD_SIZE},
    {"too_many_cores", fc_with([](ttl_fc_desc_t &d) { d.num_cores = 17; }), TTL_STATUS_BAD_SIZE},
    {"zero_out_features", fc_with([](ttl_fc_desc_t &d) { d.out_features = 0; }), TTL_STATUS_BAD_SIZE},
    {"negative_in_features", fc_with([](ttl_fc_desc_t &d) { d.in_features = -1; }), TTL_STATUS_BAD_SIZE},
    {"zero_mode", fc_with([](ttl_fc_desc_t &d) { d.in_modes[1] = 0; }), TTL_STATUS_BAD_SIZE},
    {"negative_rank", fc_with([](ttl_fc_desc_t &d) { d.ranks[1] = -3; }), TTL_STATUS_BAD_SIZE},
    {"modes_product", fc_with([](ttl_fc_desc_t &d) { d.out_modes[0] = 3; }), TTL_STATUS_BAD_MODES},
    {"modes_product_overflows", fc_with([](ttl_fc_desc_t &d) { d.in_modes[0] = d.in_modes[1] = kBig; }),
     TTL_STATUS_BAD_MODES},
    {"left_rank", fc_with([](ttl_fc_desc_t &d) { d.ranks[0] = 3; }), TTL_STATUS_BAD_RANKS},
    {"right_rank", fc_with([](ttl_fc_desc_t &d) { d.ranks[2] = 2; }), TTL_STATUS_BAD_RANKS},
    {"dense_overflows", fc_desc({kBig}, {kBig}, {1, 1}), TTL_STATUS_OVERFLOW},
    {"dense_bytes_overflow", fc_desc({int64_t(1) << 31}, {int64_t(1) << 31}, {1, 1}), TTL_STATUS_OVERFLOW},
    {"core_overflows", fc_with([](ttl_fc_desc_t &d) { d.ranks[1] = int64_t(1) << 60; }), TTL_STATUS_OVERFLOW},
};

void PrintTo(const FcCheck &c, std::ostream *os) { *os << c.name; }

class FcDescCheck : public ::testing::TestWithParam<FcCheck> {};

TEST_P(FcDescCheck, Status) {
    const FcCheck &c = GetParam();
    EXPECT_EQ(ttl_fc_desc_check(&c.desc), c.status);
    // Every function taking a descriptor reports the same problem and leaves its output alone.
    int64_t count = -7, offset = -7;
    EXPECT_EQ(ttl_fc_param_count(&count, &c.desc), c.status);
    EXPECT_EQ(ttl_fc_core_offset(&offset, &c.desc, 0), c.status);
    ttl_fc_stats_t st{};
    st.params = -7;
    EXPECT_EQ(ttl_fc_stats(&st, &c.desc, 1), c.status);
    if (c.status != TTL_STATUS_SUCCESS) {
        EXPECT_EQ(count, -7);
        EXPECT_EQ(offset, -7);
        EXPECT_EQ(st.params, -7);
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, FcDescCheck, ::testing::ValuesIn(kFcChecks),
                         [](const ::testing::TestParamInfo<FcCheck> &i) { return std::string(i.param.name); });

struct ConvCheck {
    const char *name;
    ttl_conv_desc_t desc;
    ttl_status_t status;
};

ttl_conv_desc_t conv_with(void (*mutate)(ttl_conv_desc_t &)) {
    ttl_conv_desc_t d = conv_desc({2, 3}, {4, 5}, {3, 2, 1}, 3, 3, 1, 1, 1, 1);
    mutate(d);
    return d;
}

const std::vector<ConvCheck> kConvChecks = {
    {"valid", conv_with([](ttl_conv_desc_t &) {}), TTL_STATUS_SUCCESS},
    {"spatial_rank_one", conv_with([](ttl_conv_desc_t &d) { d.ranks[0] = 1; }), TTL_STATUS_SUCCESS},
    {"zero_kernel_h", conv_with([](ttl_conv_desc_t &d) { d.kernel_h = 0; }), TTL_STATUS_BAD_SIZE},
    {"negative_kernel_w", conv_with([](ttl_conv_desc_t &d) { d.kernel_w = -3; }), TTL_STATUS_BAD_SIZE},
    {"zero_stride_w", conv_with([](ttl_conv_desc_t &d) { d.stride_w = 0; }), TTL_STATUS_BAD_SIZE},
    {"negative_pad_h", conv_with([](ttl_conv_desc_t &d) { d.pad_h = -1; }), TTL_STATUS_BAD_SIZE},
    {"zero_dilation_w", conv_with([](ttl_conv_desc_t &d) { d.dilation_w = 0; }), TTL_STATUS_BAD_SIZE},
    {"no_cores", conv_with([](ttl_conv_desc_t &d) { d.num_cores = 0; }), TTL_STATUS_BAD_SIZE},
    {"too_many_cores", conv_with([](ttl_conv_desc_t &d) { d.num_cores = 17; }), TTL_STATUS_BAD_SIZE},
    {"zero_out_channels", conv_with([](ttl_conv_desc_t &d) { d.out_channels = 0; }), TTL_STATUS_BAD_SIZE},
    {"zero_spatial_rank", conv_with([](ttl_conv_desc_t &d) { d.ranks[0] = 0; }), TTL_STATUS_BAD_SIZE},
    {"modes_product", conv_with([](ttl_conv_desc_t &d) { d.in_channels = 21; }), TTL_STATUS_BAD_MODES},
    {"right_rank", conv_with([](ttl_conv_desc_t &d) { d.ranks[2] = 4; }), TTL_STATUS_BAD_RANKS},
    {"kernel_overflows", conv_with([](ttl_conv_desc_t &d) { d.kernel_h = d.kernel_w = kBig; }),
     TTL_STATUS_OVERFLOW},
    {"spatial_core_overflows", conv_with([](ttl_conv_desc_t &d) {
         d.kernel_h = d.kernel_w = int64_t(1) << 30;
         d.ranks[0] = 16;
     }),
     TTL_STATUS_OVERFLOW},
    {"dilated_extent_overflows", conv_with([](ttl_conv_desc_t &d) { d.dilation_h = int64_t(1) << 62; }),
     TTL_STATUS_OVERFLOW},
    {"padding_overflows", conv_with([](ttl_conv_desc_t &d) { d.pad_w = int64_t(1) << 62; }), TTL_STATUS_OVERFLOW},
    {"dense_overflows", conv_desc({int64_t(1) << 30}, {int64_t(1) << 30}, {1, 1}, 4, 4), TTL_STATUS_OVERFLOW},
};

void PrintTo(const ConvCheck &c, std::ostream *os) { *os << c.name; }

class ConvDescCheck : public ::testing::TestWithParam<ConvCheck> {};

TEST_P(ConvDescCheck, Status) {
    const ConvCheck &c = GetParam();
    EXPECT_EQ(ttl_conv_desc_check(&c.desc), c.status);
    int64_t count = -7, offset = -7, oh = -7, ow = -7;
    EXPECT_EQ(ttl_conv_param_count(&count, &c.desc), c.status);
    EXPECT_EQ(ttl_conv_core_offset(&offset, &c.desc, 1), c.status);
    EXPECT_EQ(ttl_conv_output_size(&oh, &ow, &c.desc, 8, 8), c.status);
    const ttl_conv_shape_t shape{1, 8, 8, TTL_LAYOUT_NCHW};
    ttl_conv_stats_t st{};
    st.params = -7;
    EXPECT_EQ(ttl_conv_stats(&st, &c.desc, &shape), c.status);
    if (c.status != TTL_STATUS_SUCCESS) {
        EXPECT_EQ(count, -7);
        EXPECT_EQ(offset, -7);
        EXPECT_EQ(oh, -7);
        EXPECT_EQ(ow, -7);
        EXPECT_EQ(st.params, -7);
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, ConvDescCheck, ::testing::ValuesIn(kConvChecks),
                         [](const ::testing::TestParamInfo<ConvCheck> &i) { return std::string(i.param.name); });

TEST(DescNull, EveryEntryPoint) {
    const ttl_fc_desc_t fc = fc_desc({2, 3}, {4, 5}, {1, 3, 1});
    const ttl_conv_desc_t cv = conv_desc({2, 3}, {4, 5}, {3, 2, 1}, 3, 3);
    const ttl_conv_shape_t shape{1, 8, 8, TTL_LAYOUT_NCHW};
    int64_t v = 0, w = 0;
    ttl_fc_stats_t fs;
    ttl_conv_stats_t cs;
    EXPECT_EQ(ttl_fc_desc_check(nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_desc_check(nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_param_count(nullptr, &fc), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_param_count(&v, nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_param_count(nullptr, &cv), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_param_count(&v, nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_core_offset(nullptr, &fc, 0), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_core_offset(&v, nullptr, 0), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_core_offset(nullptr, &cv, 0), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_core_offset(&v, nullptr, 0), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_output_size(nullptr, &w, &cv, 8, 8), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_output_size(&v, nullptr, &cv, 8, 8), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_output_size(&v, &w, nullptr, 8, 8), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_stats(nullptr, &fc, 1), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_stats(&fs, nullptr, 1), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_stats(nullptr, &cv, &shape), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_stats(&cs, nullptr, &shape), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_stats(&cs, &cv, nullptr), TTL_STATUS_NULL_POINTER);
}

// ---------------------------------------------------------------------------------------------------------------
// Counts, offsets and output sizes
// ---------------------------------------------------------------------------------------------------------------

TEST(DescCounts, FcParamsAndOffsets) {
    // cores [1,2,4,3] = 24 and [3,3,5,1] = 45
    const ttl_fc_desc_t d = fc_desc({2, 3}, {4, 5}, {1, 3, 1});
    int64_t v = -1;
    ASSERT_EQ(ttl_fc_param_count(&v, &d), TTL_STATUS_SUCCESS);
    EXPECT_EQ(v, 69);
    ASSERT_EQ(ttl_fc_core_offset(&v, &d, 0), TTL_STATUS_SUCCESS);
    EXPECT_EQ(v, 0);
    ASSERT_EQ(ttl_fc_core_offset(&v, &d, 1), TTL_STATUS_SUCCESS);
    EXPECT_EQ(v, 24);
    v = -1;
    EXPECT_EQ(ttl_fc_core_offset(&v, &d, 2), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(ttl_fc_core_offset(&v, &d, -1), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(v, -1);
    // cores [1,2,3,2] = 12, [2,3,1,3] = 18, [3,2,4,1] = 24
    const ttl_fc_desc_t e = fc_desc({2, 3, 2}, {3, 1, 4}, {1, 2, 3, 1});
    const int64_t want[] = {0, 12, 30};
    for (int32_t k = 0; k < 3; ++k) {
        ASSERT_EQ(ttl_fc_core_offset(&v, &e, k), TTL_STATUS_SUCCESS);
        EXPECT_EQ(v, want[k]);
    }
    ASSERT_EQ(ttl_fc_param_count(&v, &e), TTL_STATUS_SUCCESS);
    EXPECT_EQ(v, 54);
}

TEST(DescCounts, ConvParamsAndOffsets) {
    // spatial [3,3,3] = 27, cores [3,2,4,2] = 48 and [2,3,5,1] = 30
    const ttl_conv_desc_t d = conv_desc({2, 3}, {4, 5}, {3, 2, 1}, 3, 3);
    int64_t v = -1;
    ASSERT_EQ(ttl_conv_param_count(&v, &d), TTL_STATUS_SUCCESS);
    EXPECT_EQ(v, 105);
    const int64_t want[] = {0, 27, 75};
    for (int32_t k = 0; k <= 2; ++k) {
        ASSERT_EQ(ttl_conv_core_offset(&v, &d, k), TTL_STATUS_SUCCESS);
        EXPECT_EQ(v, want[k]);
    }
    v = -1;
    EXPECT_EQ(ttl_conv_core_offset(&v, &d, 3), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(ttl_conv_core_offset(&v, &d, -1), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(v, -1);
    // non-square kernel: spatial [2,5,4] = 40, core [4,7,1,1] = 28
    const ttl_conv_desc_t e = conv_desc({7}, {1}, {4, 1}, 2, 5);
    ASSERT_EQ(ttl_conv_param_count(&v, &e), TTL_STATUS_SUCCESS);
    EXPECT_EQ(v, 68);
}

struct OutputSizeCase {
    int64_t in, k, s, p, dil;
    int64_t out; // 0: BAD_SIZE
};

// out = (in + 2p - dil (k - 1) - 1) / s + 1, worked out by hand.
const std::vector<OutputSizeCase> kOutputSizes = {
    {32, 3, 1, 1, 1, 32}, {32, 3, 2, 1, 1, 16}, {8, 3, 1, 0, 1, 6},     {6, 3, 1, 0, 1, 4},  {7, 3, 2, 0, 2, 2},
    {5, 5, 1, 0, 1, 1},   {4, 5, 1, 0, 1, 0},   {4, 5, 1, 1, 1, 2},     {1, 1, 1, 0, 1, 1},  {1, 1, 3, 2, 1, 2},
    {9, 3, 2, 2, 2, 5},   {5, 3, 1, 0, 3, 0},   {224, 7, 2, 3, 1, 112}, {10, 4, 3, 0, 1, 3},
};

TEST(DescCounts, ConvOutputSize) {
    for (const auto &c : kOutputSizes) {
        SCOPED_TRACE("in " + std::to_string(c.in) + " k " + std::to_string(c.k) + " s " + std::to_string(c.s) +
                     " p " + std::to_string(c.p) + " d " + std::to_string(c.dil));
        // height and width each get the case, with the other axis trivially valid (1x1 kernel, 3 pixels)
        ttl_conv_desc_t d = conv_desc({2}, {2}, {1, 1}, c.k, 1, c.s, 1, c.p, 0, c.dil, 1);
        int64_t oh = -1, ow = -1;
        ttl_status_t st = ttl_conv_output_size(&oh, &ow, &d, c.in, 3);
        if (c.out == 0) {
            EXPECT_EQ(st, TTL_STATUS_BAD_SIZE);
            EXPECT_EQ(oh, -1);
            EXPECT_EQ(ow, -1);
        } else {
            ASSERT_EQ(st, TTL_STATUS_SUCCESS);
            EXPECT_EQ(oh, c.out);
            EXPECT_EQ(ow, 3);
        }
        d = conv_desc({2}, {2}, {1, 1}, 1, c.k, 1, c.s, 0, c.p, 1, c.dil);
        oh = ow = -1;
        st = ttl_conv_output_size(&oh, &ow, &d, 3, c.in);
        if (c.out == 0) {
            EXPECT_EQ(st, TTL_STATUS_BAD_SIZE);
            EXPECT_EQ(ow, -1);
        } else {
            ASSERT_EQ(st, TTL_STATUS_SUCCESS);
            EXPECT_EQ(oh, 3);
            EXPECT_EQ(ow, c.out);
        }
    }
    const ttl_conv_desc_t d = conv_desc({2}, {2}, {1, 1}, 3, 3);
    int64_t oh = -1, ow = -1;
    EXPECT_EQ(ttl_conv_output_size(&oh, &ow, &d, 0, 5), TTL_STATUS_BAD_SIZE);
    EXPECT_EQ(ttl_conv_output_size(&oh, &ow, &d, 5, -1), TTL_STATUS_BAD_SIZE);
    EXPECT_EQ(ttl_conv_output_size(&oh, &ow, &d, int64_t(1) << 62, 5), TTL_STATUS_SUCCESS);
    EXPECT_EQ(oh, (int64_t(1) << 62) - 2);
    EXPECT_EQ(ttl_conv_output_size(&oh, &ow, &d, INT64_MAX, 5), TTL_STATUS_SUCCESS);
    EXPECT_EQ(oh, INT64_MAX - 2);
    ttl_conv_desc_t padded = conv_desc({2}, {2}, {1, 1}, 3, 3, 1, 1, 1, 1);
    oh = ow = -1;
    EXPECT_EQ(ttl_conv_output_size(&oh, &ow, &padded, INT64_MAX - 1, 5), TTL_STATUS_OVERFLOW);
    EXPECT_EQ(oh, -1);
}

// ---------------------------------------------------------------------------------------------------------------
// Multiply-add formulas, by hand
// ---------------------------------------------------------------------------------------------------------------

TEST(DescStats, FcTwoCores) {
    // out (2,3), in (4,5), ranks (1,3,1), B = 7
    // first to last: 1*3*2*(4*5) + 3*1*(2*3)*5 = 120 + 90 = 210 per sample
    // last to first: 3*1*(4*5)*3 + 1*3*4*(2*3) = 180 + 72 = 252 per sample
    // reconstruct: core 0 is the start; [m0 n0 = 8, r1 = 3] x [3, 15] = 360
    const ttl_fc_desc_t d = fc_desc({2, 3}, {4, 5}, {1, 3, 1});
    ttl_fc_stats_t s;
    ASSERT_EQ(ttl_fc_stats(&s, &d, 7), TTL_STATUS_SUCCESS);
    EXPECT_EQ(s.params, 69);
    EXPECT_EQ(s.dense_params, 120);
    EXPECT_DOUBLE_EQ(s.compression, 120.0 / 69.0);
    EXPECT_EQ(s.macs_first_to_last, 7 * 210);
    EXPECT_EQ(s.macs_last_to_first, 7 * 252);
    EXPECT_EQ(s.macs_dense, 7 * 120);
    EXPECT_EQ(s.macs_reconstruct, 360);
}

TEST(DescStats, FcThreeCores) {
    // out (2,3,2), in (3,1,4), ranks (1,2,3,1), B = 1
    // first to last: 1*2*2*(3*1*4) + 2*3*(2*3)*(1*4) + 3*1*(2*3*2)*4 = 48 + 144 + 144 = 336
    // last to first: 3*1*(3*1*4)*2 + 2*3*(3*1)*(3*2) + 1*2*3*(2*3*2) = 72 + 108 + 72 = 252
    // reconstruct: [6, 2] x [2, 3*1*3] = 108, then [18, 3] x [3, 2*4*1] = 432
    const ttl_fc_desc_t d = fc_desc({2, 3, 2}, {3, 1, 4}, {1, 2, 3, 1});
    ttl_fc_stats_t s;
    ASSERT_EQ(ttl_fc_stats(&s, &d, 1), TTL_STATUS_SUCCESS);
    EXPECT_EQ(s.params, 54);
    EXPECT_EQ(s.dense_params, 144);
    EXPECT_EQ(s.macs_first_to_last, 336);
    EXPECT_EQ(s.macs_last_to_first, 252);
    EXPECT_EQ(s.macs_dense, 144);
    EXPECT_EQ(s.macs_reconstruct, 540);
    // batch 0 costs nothing but the batch-independent reconstruction; batch < 0 is refused
    ASSERT_EQ(ttl_fc_stats(&s, &d, 0), TTL_STATUS_SUCCESS);
    EXPECT_EQ(s.macs_first_to_last, 0);
    EXPECT_EQ(s.macs_last_to_first, 0);
    EXPECT_EQ(s.macs_dense, 0);
    EXPECT_EQ(s.macs_reconstruct, 540);
    s.params = -7;
    EXPECT_EQ(ttl_fc_stats(&s, &d, -1), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(s.params, -7);
    EXPECT_EQ(ttl_fc_stats(&s, &d, INT64_MAX / 100), TTL_STATUS_OVERFLOW);
    EXPECT_EQ(s.params, -7);
}

// S = (2,3), C = (4,5), ranks (3,2,1), 3x3. Channel TT per pixel, r_0 = 3 carried as a data index:
//   spatial first (r_0 indexes the input):
//     first to last 3*2*2*(4*5) + 2*1*(2*3)*5          = 240 + 60        = 300
//     last to first 3 * 2*1*(4*5)*3 + 3*2*4*(2*3)        = 360 + 144       = 504   -> 300
//   channels first (r_0 indexes the output):
//     first to last 3*2*2*(4*5) + 3 * 2*1*(2*3)*5        = 240 + 180       = 420
//     last to first 2*1*(4*5)*3 + 3*2*4*(2*3)            = 120 + 144       = 264   -> 264
// spatial first per output pixel: 9*3*20 + 300 = 840; channels first: 264 per input pixel + 9*3*6 = 162 per
// output pixel. Reconstruct: [9, 3] x [3, 2*4*2] = 432, then [72, 2] x [2, 3*5] = 2160.
TEST(DescStats, ConvSmall) {
    const ttl_conv_desc_t d = conv_desc({2, 3}, {4, 5}, {3, 2, 1}, 3, 3, 1, 1, 1, 1);
    const ttl_conv_shape_t shape{2, 5, 5, TTL_LAYOUT_NHWC};
    ttl_conv_stats_t s;
    ASSERT_EQ(ttl_conv_stats(&s, &d, &shape), TTL_STATUS_SUCCESS);
    EXPECT_EQ(s.params, 105);
    EXPECT_EQ(s.dense_params, 1080);
    EXPECT_DOUBLE_EQ(s.compression, 1080.0 / 105.0);
    EXPECT_EQ(s.out_h, 5);
    EXPECT_EQ(s.out_w, 5);
    EXPECT_EQ(s.macs_spatial_first, 50 * 840);
    EXPECT_EQ(s.macs_channels_first, 50 * 264 + 50 * 162);
    EXPECT_EQ(s.macs_dense, 50 * 1080);
    EXPECT_EQ(s.macs_reconstruct, 432 + 2160);

    // stride 2: 3x3 outputs, channels first still pays its channel TT on all 5x5 inputs
    const ttl_conv_desc_t e = conv_desc({2, 3}, {4, 5}, {3, 2, 1}, 3, 3, 2, 2, 1, 1);
    ASSERT_EQ(ttl_conv_stats(&s, &e, &shape), TTL_STATUS_SUCCESS);
    EXPECT_EQ(s.out_h, 3);
    EXPECT_EQ(s.out_w, 3);
    EXPECT_EQ(s.macs_spatial_first, 18 * 840);
    EXPECT_EQ(s.macs_channels_first, 50 * 264 + 18 * 162);
    EXPECT_EQ(s.macs_dense, 18 * 1080);
}

TEST(DescStats, ConvShapeArguments) {
    const ttl_conv_desc_t d = conv_desc({2, 3}, {4, 5}, {3, 2, 1}, 3, 3);
    ttl_conv_stats_t s{};
    s.params = -7;
    ttl_conv_shape_t shape{-1, 5, 5, TTL_LAYOUT_NCHW};
    EXPECT_EQ(ttl_conv_stats(&s, &d, &shape), TTL_STATUS_BAD_ARGUMENT);
    shape = {1, 5, 5, ttl_layout_t(5)};
    EXPECT_EQ(ttl_conv_stats(&s, &d, &shape), TTL_STATUS_BAD_ARGUMENT);
    shape = {1, 2, 5, TTL_LAYOUT_NCHW}; // 3x3 does not fit 2 rows
    EXPECT_EQ(ttl_conv_stats(&s, &d, &shape), TTL_STATUS_BAD_SIZE);
    shape = {INT64_MAX / 4, 5, 5, TTL_LAYOUT_NCHW};
    EXPECT_EQ(ttl_conv_stats(&s, &d, &shape), TTL_STATUS_OVERFLOW);
    EXPECT_EQ(s.params, -7);
    shape = {0, 5, 5, TTL_LAYOUT_NCHW};
    ASSERT_EQ(ttl_conv_stats(&s, &d, &shape), TTL_STATUS_SUCCESS);
    EXPECT_EQ(s.macs_spatial_first, 0);
    EXPECT_EQ(s.macs_channels_first, 0);
    EXPECT_EQ(s.macs_dense, 0);
    EXPECT_EQ(s.macs_reconstruct, 432 + 2160);
}

// ---------------------------------------------------------------------------------------------------------------
// The paper's configurations (docs/tt-layers.md sections 2 and 4)
// ---------------------------------------------------------------------------------------------------------------

TEST(DescPaperConfigs, VggFc6) {
    const std::vector<int64_t> in = {2, 7, 8, 8, 7, 4}, out(6, 4);
    struct {
        int64_t rank, params, ratio;
    } const rows[] = {{4, 2016, 50972}, {2, 528, 194622}, {1, 144, 713614}};
    for (const auto &row : rows) {
        SCOPED_TRACE("TT" + std::to_string(row.rank));
        std::vector<int64_t> ranks(7, row.rank);
        ranks.front() = ranks.back() = 1;
        const ttl_fc_desc_t d = fc_desc(out, in, ranks);
        EXPECT_EQ(d.in_features, 25088);
        EXPECT_EQ(d.out_features, 4096);
        ttl_fc_stats_t s;
        ASSERT_EQ(ttl_fc_stats(&s, &d, 1), TTL_STATUS_SUCCESS);
        EXPECT_EQ(s.params, tt_params(out, in, ranks));
        EXPECT_EQ(s.params, row.params);
        EXPECT_EQ(s.dense_params, int64_t(25088) * 4096);
        EXPECT_EQ(std::lround(s.compression), row.ratio);
    }
}

TEST(DescPaperConfigs, TtConvExamples) {
    struct Example {
        std::vector<int64_t> modes, ranks;
        int64_t params, dense, per_pixel;
    };
    // per output pixel, spatial first: 9 r_0 C + channel TT first to last (r_0 an input index)
    //   C = 128: 9*16*128 + 16*16*4*128 + 16*16*(4*8)*(8*4) + 16*1*128*4 = 18432 + 131072 + 262144 + 8192
    //   C = 512: 9*8*512 + 8*8*8*512 + 8*8*(8*8)*(8*8) + 8*1*512*8      = 36864 + 262144 + 262144 + 32768
    const Example examples[] = {
        {{4, 8, 4}, {16, 16, 16, 1}, 20880, 147456, 419840},
        {{8, 8, 8}, {8, 8, 8, 1}, 8776, 2359296, 593920},
    };
    for (const auto &e : examples) {
        const ttl_conv_desc_t d = conv_desc(e.modes, e.modes, e.ranks, 3, 3);
        SCOPED_TRACE("C = S = " + std::to_string(d.in_channels));
        ttl_conv_stats_t s;
        const ttl_conv_shape_t one_pixel{1, 3, 3, TTL_LAYOUT_NCHW};
        ASSERT_EQ(ttl_conv_stats(&s, &d, &one_pixel), TTL_STATUS_SUCCESS);
        EXPECT_EQ(s.params, 9 * e.ranks[0] + tt_params(e.modes, e.modes, e.ranks));
        EXPECT_EQ(s.params, e.params);
        EXPECT_EQ(s.dense_params, e.dense);
        EXPECT_EQ(s.out_h * s.out_w, 1);
        EXPECT_EQ(s.macs_spatial_first, e.per_pixel);
        EXPECT_EQ(s.macs_dense, e.dense);
        // "about 420K" and "about 594K" multiply-adds per pixel; 7.1x and 269x compression
        EXPECT_NEAR(double(s.macs_spatial_first), e.per_pixel == 419840 ? 420e3 : 594e3, 1e3);
        EXPECT_NEAR(s.compression, e.params == 20880 ? 7.1 : 269.0, 0.05 * s.compression);
    }
}

TEST(DescPaperConfigs, CifarTtFc) {
    struct Layer {
        std::vector<int64_t> in, out;
        int64_t rank, params;
    };
    // 1*4*8*40 + 40*6*8*40 + 40*8*8*40 + 40*8*16*1 = 1280 + 76800 + 102400 + 5120
    // 1*4*4*30 + 30*4*6*30 + 30*4*8*30 + 30*8*8*1  = 480 + 21600 + 28800 + 1920
    const Layer layers[] = {{{8, 8, 8, 16}, {4, 6, 8, 8}, 40, 185600}, {{4, 6, 8, 8}, {4, 4, 4, 8}, 30, 52800}};
    for (const auto &l : layers) {
        const std::vector<int64_t> ranks = {1, l.rank, l.rank, l.rank, 1};
        const ttl_fc_desc_t d = fc_desc(l.out, l.in, ranks);
        ttl_fc_stats_t s;
        ASSERT_EQ(ttl_fc_stats(&s, &d, 1), TTL_STATUS_SUCCESS);
        const int64_t params = tt_params(l.out, l.in, ranks);
        EXPECT_EQ(params, l.params);
        EXPECT_EQ(s.params, params);
        EXPECT_EQ(s.dense_params, prod(l.in) * prod(l.out));
        EXPECT_DOUBLE_EQ(s.compression, double(prod(l.in) * prod(l.out)) / double(params));
    }
}

TEST(DescPaperConfigs, CifarTtConv) {
    const std::vector<int64_t> c64 = {4, 4, 4}, c128 = {4, 8, 4};
    const std::vector<std::vector<int64_t>> rank_sets = {
        {16, 16, 16, 1}, {22, 20, 20, 1}, {27, 22, 22, 1}, {23, 23, 23, 1}};
    // conv1.2 64->64, conv2.1 64->128, conv2.2 / conv3.x 128->128
    const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> layers = {
        {c64, c64}, {c64, c128}, {c128, c128}};
    for (const auto &r : rank_sets)
        for (const auto &[in, out] : layers) {
            const ttl_conv_desc_t d = conv_desc(out, in, r, 3, 3, 1, 1, 1, 1);
            SCOPED_TRACE(std::to_string(d.in_channels) + " -> " + std::to_string(d.out_channels) + " r0 " +
                         std::to_string(r[0]));
            const int64_t params = 9 * r[0] + tt_params(out, in, r);
            int64_t v;
            ASSERT_EQ(ttl_conv_param_count(&v, &d), TTL_STATUS_SUCCESS);
            EXPECT_EQ(v, params);
            ttl_conv_stats_t s;
            const ttl_conv_shape_t shape{1, 16, 16, TTL_LAYOUT_NHWC};
            ASSERT_EQ(ttl_conv_stats(&s, &d, &shape), TTL_STATUS_SUCCESS);
            EXPECT_EQ(s.dense_params, prod(in) * prod(out) * 9);
            EXPECT_DOUBLE_EQ(s.compression, double(prod(in) * prod(out) * 9) / double(params));
            EXPECT_EQ(s.macs_dense, s.dense_params * 256);
        }
    // One by hand: 64 -> 128 at [22,20,20,1]: 9*22 + 22*4*4*20 + 20*8*4*20 + 20*4*4*1 = 198 + 7040 + 12800 + 320
    int64_t v;
    const ttl_conv_desc_t d = conv_desc(c128, c64, {22, 20, 20, 1}, 3, 3);
    ASSERT_EQ(ttl_conv_param_count(&v, &d), TTL_STATUS_SUCCESS);
    EXPECT_EQ(v, 20358);
}

// ---------------------------------------------------------------------------------------------------------------
// Names and version
// ---------------------------------------------------------------------------------------------------------------

TEST(DescNames, StatusStrings) {
    std::set<std::string> seen;
    for (int s = TTL_STATUS_SUCCESS; s <= TTL_STATUS_NO_DEVICE; ++s) {
        const char *str = ttl_status_string(ttl_status_t(s));
        ASSERT_NE(str, nullptr) << s;
        EXPECT_GT(std::string(str).size(), 0u);
        EXPECT_TRUE(seen.insert(str).second) << "duplicate: " << str;
    }
    EXPECT_EQ(seen.size(), 18u);
    const char *unknown = ttl_status_string(ttl_status_t(1000));
    ASSERT_NE(unknown, nullptr);
    EXPECT_EQ(seen.count(unknown), 0u);
    ASSERT_NE(ttl_status_string(ttl_status_t(-1)), nullptr);
}

TEST(DescNames, Version) {
    const std::string want = std::to_string(TTL_VERSION_MAJOR) + "." + std::to_string(TTL_VERSION_MINOR) + "." +
                             std::to_string(TTL_VERSION_PATCH);
    ASSERT_NE(ttl_version(), nullptr);
    EXPECT_EQ(std::string(ttl_version()), want);
#ifdef TTL_WITH_CUDA
    EXPECT_EQ(ttl_has_cuda(), 1);
#else
    EXPECT_EQ(ttl_has_cuda(), 0);
#endif
    ttl_free(nullptr); // documented as fine
}

TEST(DescNames, AlgorithmsAndOrders) {
    const std::pair<ttl_algo_t, const char *> algos[] = {
        {TTL_ALGO_AUTO, "auto"},
        {TTL_ALGO_REFERENCE, "reference"},
        {TTL_ALGO_SEQUENTIAL, "sequential"},
        {TTL_ALGO_SEQUENTIAL_BLAS, "sequential_blas"},
        {TTL_ALGO_FUSED, "fused"},
        {TTL_ALGO_SPATIAL_FIRST, "spatial_first"},
        {TTL_ALGO_CHANNELS_FIRST, "channels_first"},
        {TTL_ALGO_DENSE, "dense"},
    };
    for (const auto &[algo, name] : algos) EXPECT_STREQ(ttl_algo_name(algo), name);
    EXPECT_STREQ(ttl_algo_name(ttl_algo_t(99)), "unknown");
    EXPECT_STREQ(ttl_order_name(TTL_ORDER_AUTO), "auto");
    EXPECT_STREQ(ttl_order_name(TTL_ORDER_FIRST_TO_LAST), "first_to_last");
    EXPECT_STREQ(ttl_order_name(TTL_ORDER_LAST_TO_FIRST), "last_to_first");
    EXPECT_STREQ(ttl_order_name(ttl_order_t(3)), "unknown");
}

} // namespace
