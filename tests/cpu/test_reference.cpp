// The CPU reference (the specification) against the independent dense oracle of test_util.h: reconstruction of
// W and K, and the forward passes, over shape lists kept as data; then every invalid input of the four entry
// points returns its status and leaves a poisoned output unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "ttl/ttl.h"

using namespace ttl_test;

namespace {

// Both sides compute in double and round to float once, so only float rounding separates them.
constexpr double kTol = 1e-6;

std::string join(const std::vector<int64_t> &v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "x" : "") + std::to_string(v[i]);
    return s;
}

// ---------------------------------------------------------------------------------------------------------------
// TT-FC: shapes
// ---------------------------------------------------------------------------------------------------------------

struct FcCase {
    std::vector<int64_t> out_modes, in_modes, ranks;
    int64_t batch;
    bool bias;
};

// d = 1..6, uneven ranks including 1, modes of 1 and primes, odd batches; M not a multiple of the row tile and
// batches above the batch tile, so partial tiles are exercised.
const std::vector<FcCase> kFcCases = {
    {{7}, {5}, {1, 1}, 1, true},
    {{1}, {1}, {1, 1}, 3, false},
    {{3, 5}, {2, 7}, {1, 4, 1}, 5, true},
    {{1, 11}, {13, 1}, {1, 1, 1}, 2, false},
    {{17, 3}, {5, 2}, {1, 3, 1}, 65, true},
    {{2, 3, 5}, {5, 3, 2}, {1, 3, 7, 1}, 1, true},
    {{4, 1, 3}, {1, 6, 2}, {1, 2, 5, 1}, 7, false},
    {{4, 4, 4}, {3, 5, 7}, {1, 9, 11, 1}, 33, true},
    {{2, 2, 3, 1}, {3, 1, 2, 5}, {1, 5, 2, 3, 1}, 3, true},
    {{1, 7, 1, 2}, {2, 1, 11, 1}, {1, 1, 6, 1, 1}, 9, false},
    {{2, 1, 3, 2, 1}, {1, 3, 2, 1, 5}, {1, 2, 3, 4, 2, 1}, 4, true},
    {{2, 1, 2, 1, 3, 1}, {1, 2, 3, 1, 1, 2}, {1, 3, 1, 4, 2, 5, 1}, 6, true},
    {{1, 2, 1, 2, 1, 2}, {2, 2, 1, 1, 2, 1}, {1, 2, 2, 3, 3, 2, 1}, 1, false},
};

std::string describe(const FcCase &c) {
    return "out" + join(c.out_modes) + "_in" + join(c.in_modes) + "_r" + join(c.ranks) + "_B" +
           std::to_string(c.batch) + (c.bias ? "_bias" : "");
}
void PrintTo(const FcCase &c, std::ostream *os) { *os << describe(c); }

class FcReference : public ::testing::TestWithParam<FcCase> {};

TEST_P(FcReference, ReconstructMatchesOracle) {
    const FcCase &c = GetParam();
    const ttl_fc_desc_t d = fc_desc(c.out_modes, c.in_modes, c.ranks);
    const auto cores = random_vector(fc_param_count(d), 11);
    std::vector<float> W(size_t(d.out_features * d.in_features), NAN);
    ASSERT_EQ(ttl_fc_reconstruct(W.data(), &d, cores.data()), TTL_STATUS_SUCCESS);
    EXPECT_LE(rel_err(W, to_float(oracle_fc_dense(d, cores.data()))), kTol);
}

TEST_P(FcReference, ForwardMatchesOracle) {
    const FcCase &c = GetParam();
    const ttl_fc_desc_t d = fc_desc(c.out_modes, c.in_modes, c.ranks);
    const auto cores = random_vector(fc_param_count(d), 12);
    const auto x = random_vector(c.batch * d.in_features, 13);
    const auto bias = random_vector(d.out_features, 14);
    const float *b = c.bias ? bias.data() : nullptr;
    std::vector<float> y(size_t(c.batch * d.out_features), NAN);
    ASSERT_EQ(ttl_fc_forward_ref(y.data(), &d, cores.data(), b, x.data(), c.batch), TTL_STATUS_SUCCESS);
    const auto W = oracle_fc_dense(d, cores.data());
    const auto want = oracle_fc_forward(W, d.out_features, d.in_features, x.data(), b, c.batch);
    EXPECT_LE(rel_err(y, to_float(want)), kTol);
}

INSTANTIATE_TEST_SUITE_P(Shapes, FcReference, ::testing::ValuesIn(kFcCases),
                         [](const ::testing::TestParamInfo<FcCase> &info) {
                             return "i" + std::to_string(info.index) + "_" + describe(info.param);
                         });

// ---------------------------------------------------------------------------------------------------------------
// TT-conv: shapes
// ---------------------------------------------------------------------------------------------------------------

struct ConvCase {
    std::vector<int64_t> out_modes, in_modes, ranks;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    int64_t batch, height, width;
    ttl_layout_t layout;
    bool bias;
};

constexpr ttl_layout_t NCHW = TTL_LAYOUT_NCHW, NHWC = TTL_LAYOUT_NHWC;

// Kernels 1x1, 3x3, 5x5, 3x1, 2x5; stride 1/2, padding 0/1/2, dilation 1/2; both layouts; r_0 from 1 to 5;
// d = 1..6; a padding wider than the kernel's reach (border outputs are bias only) and a 1x1 output.
const std::vector<ConvCase> kConvCases = {
    {{3}, {2}, {2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 5, 6, NCHW, true},
    {{3}, {2}, {2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 5, 6, NHWC, false},
    {{2, 3}, {4, 5}, {3, 2, 1}, 3, 3, 2, 2, 1, 1, 1, 1, 1, 7, 8, NCHW, true},
    {{2, 3}, {4, 5}, {3, 2, 1}, 5, 5, 1, 1, 2, 2, 1, 1, 2, 6, 5, NHWC, true},
    {{2, 1, 3}, {1, 3, 2}, {4, 3, 2, 1}, 1, 1, 1, 1, 0, 0, 1, 1, 3, 4, 3, NCHW, false},
    {{5}, {3}, {1, 1}, 3, 1, 2, 1, 2, 0, 2, 1, 2, 9, 4, NCHW, true},
    {{2, 2}, {3, 1}, {2, 3, 1}, 2, 5, 1, 2, 0, 2, 2, 1, 1, 6, 9, NHWC, true},
    {{7}, {2}, {3, 1}, 3, 3, 1, 1, 2, 2, 2, 2, 2, 6, 6, NCHW, false},
    {{3, 1}, {1, 5}, {2, 4, 1}, 3, 3, 2, 2, 0, 0, 2, 2, 1, 9, 10, NHWC, true},
    {{1, 2, 1, 3}, {3, 1, 2, 1}, {2, 2, 3, 2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 3, 3, NHWC, true},
    {{2, 3}, {3, 2}, {5, 3, 1}, 5, 5, 1, 1, 0, 0, 1, 1, 3, 5, 5, NCHW, true},
    {{4}, {3}, {2, 1}, 1, 1, 1, 1, 2, 2, 1, 1, 2, 3, 4, NCHW, true},
    {{4}, {3}, {2, 1}, 1, 1, 2, 1, 2, 1, 1, 1, 2, 3, 4, NHWC, true},
    {{2, 1, 2, 1, 2}, {1, 2, 1, 3, 1}, {2, 1, 3, 2, 2, 1}, 3, 3, 2, 1, 1, 0, 1, 2, 2, 5, 7, NCHW, true},
    {{1, 2, 1, 2, 1, 2}, {2, 1, 1, 2, 1, 1}, {3, 2, 1, 2, 3, 2, 1}, 5, 5, 2, 2, 2, 2, 2, 2, 1, 9, 8, NHWC, false},
    {{11}, {7}, {1, 1}, 2, 5, 2, 1, 1, 2, 1, 2, 1, 5, 9, NCHW, true},
    {{4, 4}, {2, 8}, {6, 5, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 8, 8, NCHW, true},
    {{4, 4}, {2, 8}, {6, 5, 1}, 3, 3, 2, 2, 1, 1, 1, 1, 2, 8, 8, NHWC, true},
    {{2, 5, 2}, {3, 2, 3}, {4, 3, 3, 1}, 5, 3, 1, 2, 2, 1, 1, 1, 1, 7, 6, NHWC, false},
};

ttl_conv_desc_t desc_of(const ConvCase &c) {
    return conv_desc(c.out_modes, c.in_modes, c.ranks, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw);
}

std::string describe(const ConvCase &c) {
    auto n = [](int64_t v) { return std::to_string(v); };
    return "S" + join(c.out_modes) + "_C" + join(c.in_modes) + "_r" + join(c.ranks) + "_k" + n(c.kh) + "x" +
           n(c.kw) + "_s" + n(c.sh) + n(c.sw) + "_p" + n(c.ph) + n(c.pw) + "_d" + n(c.dh) + n(c.dw) + "_B" +
           n(c.batch) + "_" + n(c.height) + "x" + n(c.width) + (c.layout == NCHW ? "_nchw" : "_nhwc") +
           (c.bias ? "_bias" : "");
}
void PrintTo(const ConvCase &c, std::ostream *os) { *os << describe(c); }

class ConvReference : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvReference, ReconstructMatchesOracle) {
    const ttl_conv_desc_t d = desc_of(GetParam());
    const auto cores = random_vector(conv_param_count(d), 21);
    std::vector<float> K(size_t(d.out_channels * d.in_channels * d.kernel_h * d.kernel_w), NAN);
    ASSERT_EQ(ttl_conv_reconstruct(K.data(), &d, cores.data()), TTL_STATUS_SUCCESS);
    EXPECT_LE(rel_err(K, to_float(oracle_conv_dense(d, cores.data()))), kTol);
}

TEST_P(ConvReference, ForwardMatchesOracle) {
    const ConvCase &c = GetParam();
    const ttl_conv_desc_t d = desc_of(c);
    const ttl_conv_shape_t shape{c.batch, c.height, c.width, c.layout};
    int64_t oh = 0, ow = 0;
    ASSERT_EQ(ttl_conv_output_size(&oh, &ow, &d, c.height, c.width), TTL_STATUS_SUCCESS);
    const auto cores = random_vector(conv_param_count(d), 22);
    const auto x = random_vector(c.batch * d.in_channels * c.height * c.width, 23);
    const auto bias = random_vector(d.out_channels, 24);
    const float *b = c.bias ? bias.data() : nullptr;
    std::vector<float> y(size_t(c.batch * d.out_channels * oh * ow), NAN);
    ASSERT_EQ(ttl_conv_forward_ref(y.data(), &d, cores.data(), b, x.data(), &shape), TTL_STATUS_SUCCESS);
    const auto want = oracle_conv_forward(oracle_conv_dense(d, cores.data()), d, x.data(), b, shape);
    EXPECT_LE(rel_err(y, to_float(want)), kTol);
}

INSTANTIATE_TEST_SUITE_P(Shapes, ConvReference, ::testing::ValuesIn(kConvCases),
                         [](const ::testing::TestParamInfo<ConvCase> &info) {
                             return "i" + std::to_string(info.index) + "_" + describe(info.param);
                         });

// The padding-only border of a 1x1 kernel with padding 2 is exactly the bias: no stray reads outside x.
TEST(ConvReference, PaddingBorderIsBias) {
    const ttl_conv_desc_t d = conv_desc({4}, {3}, {2, 1}, 1, 1, 1, 1, 2, 2);
    const ttl_conv_shape_t shape{1, 3, 4, NCHW};
    const auto cores = random_vector(conv_param_count(d), 31);
    const auto x = random_vector(3 * 3 * 4, 32);
    const auto bias = random_vector(4, 33);
    const int64_t OH = 7, OW = 8;
    std::vector<float> y(size_t(4 * OH * OW), NAN);
    ASSERT_EQ(ttl_conv_forward_ref(y.data(), &d, cores.data(), bias.data(), x.data(), &shape), TTL_STATUS_SUCCESS);
    for (int64_t s = 0; s < 4; ++s)
        for (int64_t h = 0; h < OH; ++h)
            for (int64_t w = 0; w < OW; ++w)
                if (h < 2 || h >= 5 || w < 2 || w >= 6)
                    EXPECT_EQ(y[size_t((s * OH + h) * OW + w)], bias[size_t(s)]);
}

// ---------------------------------------------------------------------------------------------------------------
// Invalid inputs: each returns its status and leaves the poisoned output as it was
// ---------------------------------------------------------------------------------------------------------------

constexpr int64_t kBig = int64_t(1) << 32;

// A poisoned output buffer large enough for every valid call below.
struct Poisoned {
    std::vector<float> buf = random_vector(4096, 99);
    const std::vector<float> orig = buf;
    float *data() { return buf.data(); }
    bool untouched() const { return std::memcmp(buf.data(), orig.data(), buf.size() * sizeof(float)) == 0; }
};

struct FcBad {
    const char *name;
    void (*mutate)(ttl_fc_desc_t &);
    ttl_status_t status;
};

const ttl_fc_desc_t kFcGood = fc_desc({2, 3}, {4, 5}, {1, 3, 1});

const std::vector<FcBad> kFcBad = {
    {"no_cores", [](ttl_fc_desc_t &d) { d.num_cores = 0; }, TTL_STATUS_BAD_SIZE},
    {"negative_cores", [](ttl_fc_desc_t &d) { d.num_cores = -1; }, TTL_STATUS_BAD_SIZE},
    {"too_many_cores", [](ttl_fc_desc_t &d) { d.num_cores = TTL_MAX_CORES + 1; }, TTL_STATUS_BAD_SIZE},
    {"zero_out_features", [](ttl_fc_desc_t &d) { d.out_features = 0; }, TTL_STATUS_BAD_SIZE},
    {"negative_in_features", [](ttl_fc_desc_t &d) { d.in_features = -20; }, TTL_STATUS_BAD_SIZE},
    {"zero_mode", [](ttl_fc_desc_t &d) { d.out_modes[1] = 0; }, TTL_STATUS_BAD_SIZE},
    {"negative_mode", [](ttl_fc_desc_t &d) { d.in_modes[0] = -4; }, TTL_STATUS_BAD_SIZE},
    {"zero_rank", [](ttl_fc_desc_t &d) { d.ranks[1] = 0; }, TTL_STATUS_BAD_SIZE},
    {"out_modes_product", [](ttl_fc_desc_t &d) { d.out_features = 7; }, TTL_STATUS_BAD_MODES},
    {"in_modes_product", [](ttl_fc_desc_t &d) { d.in_modes[1] = 6; }, TTL_STATUS_BAD_MODES},
    {"modes_product_overflows", [](ttl_fc_desc_t &d) { d.out_modes[0] = d.out_modes[1] = kBig; },
     TTL_STATUS_BAD_MODES},
    {"left_rank", [](ttl_fc_desc_t &d) { d.ranks[0] = 2; }, TTL_STATUS_BAD_RANKS},
    {"right_rank", [](ttl_fc_desc_t &d) { d.ranks[2] = 3; }, TTL_STATUS_BAD_RANKS},
    {"dense_size_overflows",
     [](ttl_fc_desc_t &d) {
         d = fc_desc({kBig, 1}, {kBig, 1}, {1, 1, 1});
     },
     TTL_STATUS_OVERFLOW},
    {"core_size_overflows", [](ttl_fc_desc_t &d) { d.ranks[1] = int64_t(1) << 61; }, TTL_STATUS_OVERFLOW},
};

void PrintTo(const FcBad &c, std::ostream *os) { *os << c.name; }

class FcReferenceInvalidDesc : public ::testing::TestWithParam<FcBad> {};

TEST_P(FcReferenceInvalidDesc, StatusAndOutputUntouched) {
    ttl_fc_desc_t d = kFcGood;
    GetParam().mutate(d);
    const auto cores = random_vector(1024, 41);
    const auto x = random_vector(1024, 42);
    Poisoned out;
    EXPECT_EQ(ttl_fc_desc_check(&d), GetParam().status);
    EXPECT_EQ(ttl_fc_reconstruct(out.data(), &d, cores.data()), GetParam().status);
    EXPECT_TRUE(out.untouched());
    EXPECT_EQ(ttl_fc_forward_ref(out.data(), &d, cores.data(), nullptr, x.data(), 2), GetParam().status);
    EXPECT_TRUE(out.untouched());
}

INSTANTIATE_TEST_SUITE_P(Cases, FcReferenceInvalidDesc, ::testing::ValuesIn(kFcBad),
                         [](const ::testing::TestParamInfo<FcBad> &info) { return std::string(info.param.name); });

TEST(FcReferenceInvalid, NullPointersAndBatch) {
    const ttl_fc_desc_t d = kFcGood;
    const auto cores = random_vector(fc_param_count(d), 51);
    const auto x = random_vector(2 * 20, 52);
    const auto bias = random_vector(6, 53);
    Poisoned out;
    EXPECT_EQ(ttl_fc_reconstruct(out.data(), nullptr, cores.data()), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_reconstruct(nullptr, &d, cores.data()), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_reconstruct(out.data(), &d, nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_forward_ref(out.data(), nullptr, cores.data(), bias.data(), x.data(), 2),
              TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_forward_ref(nullptr, &d, cores.data(), bias.data(), x.data(), 2), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_forward_ref(out.data(), &d, nullptr, bias.data(), x.data(), 2), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_forward_ref(out.data(), &d, cores.data(), bias.data(), nullptr, 2), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_forward_ref(out.data(), &d, cores.data(), bias.data(), x.data(), -1), TTL_STATUS_BAD_ARGUMENT);
    // batch * N does not fit int64 (x is never read: the size check comes first)
    EXPECT_EQ(ttl_fc_forward_ref(out.data(), &d, cores.data(), bias.data(), x.data(),
                                 std::numeric_limits<int64_t>::max() / 4),
              TTL_STATUS_OVERFLOW);
    EXPECT_TRUE(out.untouched());
    // batch 0 is a no-op: nothing read, nothing written, NULL pointers accepted
    EXPECT_EQ(ttl_fc_forward_ref(out.data(), &d, cores.data(), bias.data(), x.data(), 0), TTL_STATUS_SUCCESS);
    EXPECT_EQ(ttl_fc_forward_ref(nullptr, &d, nullptr, nullptr, nullptr, 0), TTL_STATUS_SUCCESS);
    EXPECT_TRUE(out.untouched());
    // ... but the descriptor is still validated
    ttl_fc_desc_t bad = d;
    bad.ranks[0] = 2;
    EXPECT_EQ(ttl_fc_forward_ref(nullptr, &bad, nullptr, nullptr, nullptr, 0), TTL_STATUS_BAD_RANKS);
}

// A valid descriptor whose row builder (N = 2^56 doubles) cannot be allocated. The outputs are never touched,
// so small buffers stand in for the (impossible) full-size ones.
TEST(FcReferenceInvalid, OutOfMemory) {
    if (kSanitized) GTEST_SKIP() << "sanitizer allocators abort instead of returning NULL";
    const int64_t half = int64_t(1) << 28;
    const ttl_fc_desc_t d = fc_desc({1, 1}, {half, half}, {1, 1, 1});
    ASSERT_EQ(ttl_fc_desc_check(&d), TTL_STATUS_SUCCESS);
    const auto cores = random_vector(16, 61); // never read: allocation fails first
    const auto x = random_vector(16, 62);
    Poisoned out;
    EXPECT_EQ(ttl_fc_reconstruct(out.data(), &d, cores.data()), TTL_STATUS_OUT_OF_MEMORY);
    EXPECT_EQ(ttl_fc_forward_ref(out.data(), &d, cores.data(), nullptr, x.data(), 1), TTL_STATUS_OUT_OF_MEMORY);
    EXPECT_TRUE(out.untouched());
}

struct ConvBad {
    const char *name;
    void (*mutate)(ttl_conv_desc_t &, ttl_conv_shape_t &);
    ttl_status_t status;
};

const ttl_conv_desc_t kConvGood = conv_desc({2, 3}, {4, 5}, {3, 2, 1}, 3, 3, 1, 1, 1, 1);
const ttl_conv_shape_t kShapeGood = {2, 5, 5, NCHW};

const std::vector<ConvBad> kConvBad = {
    {"zero_kernel", [](ttl_conv_desc_t &d, ttl_conv_shape_t &) { d.kernel_w = 0; }, TTL_STATUS_BAD_SIZE},
    {"zero_stride", [](ttl_conv_desc_t &d, ttl_conv_shape_t &) { d.stride_h = 0; }, TTL_STATUS_BAD_SIZE},
    {"negative_pad", [](ttl_conv_desc_t &d, ttl_conv_shape_t &) { d.pad_w = -1; }, TTL_STATUS_BAD_SIZE},
    {"zero_dilation", [](ttl_conv_desc_t &d, ttl_conv_shape_t &) { d.dilation_h = 0; }, TTL_STATUS_BAD_SIZE},
    {"no_cores", [](ttl_conv_desc_t &d, ttl_conv_shape_t &) { d.num_cores = 0; }, TTL_STATUS_BAD_SIZE},
    {"zero_spatial_rank", [](ttl_conv_desc_t &d, ttl_conv_shape_t &) { d.ranks[0] = 0; }, TTL_STATUS_BAD_SIZE},
    {"zero_channels", [](ttl_conv_desc_t &d, ttl_conv_shape_t &) { d.in_channels = 0; }, TTL_STATUS_BAD_SIZE},
    {"out_modes_product", [](ttl_conv_desc_t &d, ttl_conv_shape_t &) { d.out_modes[0] = 5; }, TTL_STATUS_BAD_MODES},
    {"modes_product_overflows",
     [](ttl_conv_desc_t &d, ttl_conv_shape_t &) { d.in_modes[0] = d.in_modes[1] = kBig; }, TTL_STATUS_BAD_MODES},
    {"right_rank", [](ttl_conv_desc_t &d, ttl_conv_shape_t &) { d.ranks[2] = 2; }, TTL_STATUS_BAD_RANKS},
    {"kernel_size_overflows", [](ttl_conv_desc_t &d, ttl_conv_shape_t &) { d.kernel_h = d.kernel_w = kBig; },
     TTL_STATUS_OVERFLOW},
    {"padding_overflows", [](ttl_conv_desc_t &d, ttl_conv_shape_t &) { d.pad_h = int64_t(1) << 62; },
     TTL_STATUS_OVERFLOW},
    {"bad_layout", [](ttl_conv_desc_t &, ttl_conv_shape_t &s) { s.layout = ttl_layout_t(2); },
     TTL_STATUS_BAD_ARGUMENT},
    {"negative_batch", [](ttl_conv_desc_t &, ttl_conv_shape_t &s) { s.batch = -1; }, TTL_STATUS_BAD_ARGUMENT},
    {"zero_height", [](ttl_conv_desc_t &, ttl_conv_shape_t &s) { s.height = 0; }, TTL_STATUS_BAD_SIZE},
    {"negative_width", [](ttl_conv_desc_t &, ttl_conv_shape_t &s) { s.width = -3; }, TTL_STATUS_BAD_SIZE},
    {"empty_output",
     [](ttl_conv_desc_t &d, ttl_conv_shape_t &) {
         d.kernel_h = 7; // 7 taps do not fit 5 rows
         d.pad_h = 0;
     },
     TTL_STATUS_BAD_SIZE},
    {"empty_output_dilated", [](ttl_conv_desc_t &d, ttl_conv_shape_t &) { d.dilation_w = 4; }, TTL_STATUS_BAD_SIZE},
    {"input_size_overflows", [](ttl_conv_desc_t &, ttl_conv_shape_t &s) { s.height = s.width = int64_t(1) << 30; },
     TTL_STATUS_OVERFLOW},
};

void PrintTo(const ConvBad &c, std::ostream *os) { *os << c.name; }

class ConvReferenceInvalidDesc : public ::testing::TestWithParam<ConvBad> {};

// Mutations of the shape affect only the forward pass; reconstruction sees the descriptor alone.
TEST_P(ConvReferenceInvalidDesc, StatusAndOutputUntouched) {
    ttl_conv_desc_t d = kConvGood;
    ttl_conv_shape_t shape = kShapeGood;
    GetParam().mutate(d, shape);
    const bool desc_bad = ttl_conv_desc_check(&d) != TTL_STATUS_SUCCESS;
    const auto cores = random_vector(1024, 71);
    const auto x = random_vector(1024, 72);
    Poisoned out;
    if (desc_bad) {
        EXPECT_EQ(ttl_conv_desc_check(&d), GetParam().status);
        EXPECT_EQ(ttl_conv_reconstruct(out.data(), &d, cores.data()), GetParam().status);
        EXPECT_TRUE(out.untouched());
    }
    EXPECT_EQ(ttl_conv_forward_ref(out.data(), &d, cores.data(), nullptr, x.data(), &shape), GetParam().status);
    EXPECT_TRUE(out.untouched());
}

INSTANTIATE_TEST_SUITE_P(Cases, ConvReferenceInvalidDesc, ::testing::ValuesIn(kConvBad),
                         [](const ::testing::TestParamInfo<ConvBad> &info) {
                             return std::string(info.param.name);
                         });

TEST(ConvReferenceInvalid, NullPointersAndBatch) {
    const ttl_conv_desc_t d = kConvGood;
    const ttl_conv_shape_t shape = kShapeGood;
    const auto cores = random_vector(conv_param_count(d), 81);
    const auto x = random_vector(2 * 20 * 25, 82);
    const auto bias = random_vector(6, 83);
    Poisoned out;
    EXPECT_EQ(ttl_conv_reconstruct(out.data(), nullptr, cores.data()), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_reconstruct(nullptr, &d, cores.data()), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_reconstruct(out.data(), &d, nullptr), TTL_STATUS_NULL_POINTER);
    const float *b = bias.data();
    EXPECT_EQ(ttl_conv_forward_ref(out.data(), nullptr, cores.data(), b, x.data(), &shape),
              TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_forward_ref(out.data(), &d, cores.data(), b, x.data(), nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_forward_ref(nullptr, &d, cores.data(), b, x.data(), &shape), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_forward_ref(out.data(), &d, nullptr, b, x.data(), &shape), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_forward_ref(out.data(), &d, cores.data(), b, nullptr, &shape), TTL_STATUS_NULL_POINTER);
    EXPECT_TRUE(out.untouched());
    ttl_conv_shape_t empty = shape;
    empty.batch = 0;
    EXPECT_EQ(ttl_conv_forward_ref(out.data(), &d, cores.data(), b, x.data(), &empty), TTL_STATUS_SUCCESS);
    EXPECT_EQ(ttl_conv_forward_ref(nullptr, &d, nullptr, nullptr, nullptr, &empty), TTL_STATUS_SUCCESS);
    EXPECT_TRUE(out.untouched());
    // batch 0 still validates the descriptor and the geometry
    empty.height = 0;
    EXPECT_EQ(ttl_conv_forward_ref(nullptr, &d, nullptr, nullptr, nullptr, &empty), TTL_STATUS_BAD_SIZE);
}

TEST(ConvReferenceInvalid, OutOfMemory) {
    if (kSanitized) GTEST_SKIP() << "sanitizer allocators abort instead of returning NULL";
    const int64_t half = int64_t(1) << 30;
    const ttl_conv_desc_t d = conv_desc({1, 1}, {half, half}, {1, 1, 1}, 1, 1);
    ASSERT_EQ(ttl_conv_desc_check(&d), TTL_STATUS_SUCCESS);
    const ttl_conv_shape_t shape{1, 1, 1, NCHW};
    const auto cores = random_vector(16, 91); // never read: allocation fails first
    const auto x = random_vector(16, 92);
    Poisoned out;
    EXPECT_EQ(ttl_conv_reconstruct(out.data(), &d, cores.data()), TTL_STATUS_OUT_OF_MEMORY);
    EXPECT_EQ(ttl_conv_forward_ref(out.data(), &d, cores.data(), nullptr, x.data(), &shape),
              TTL_STATUS_OUT_OF_MEMORY);
    EXPECT_TRUE(out.untouched());
}

} // namespace
