// TT-conv plans and forward on the CPU: every algorithm (SPATIAL_FIRST and CHANNELS_FIRST in both channel orders,
// DENSE, REFERENCE, AUTO) against the CPU reference, the reference against the independent dense oracle, over a
// list of geometries kept as data (kernels 1x1/3x3/5x5/non-square, stride, padding, dilation, NCHW/NHWC, bias or
// none, images larger than one pixel chunk or band); plan errors, plan_info contents, workspace handling and
// repeatability.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "common/plan_checks.h"
#include "common/test_util.h"

namespace {

using ttl_test::rel_err;

constexpr double kTol = 1e-5;
constexpr float kPoison = 12345.0f;

struct ConvCase {
    std::string name;
    std::vector<int64_t> out_modes, in_modes, ranks;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    int64_t batch, height, width;
    ttl_layout_t layout;
    bool bias;
};

constexpr ttl_layout_t NCHW = TTL_LAYOUT_NCHW;
constexpr ttl_layout_t NHWC = TTL_LAYOUT_NHWC;

const std::vector<ConvCase> kCases = {
    {"k1x1_nchw", {2, 3}, {3, 2}, {2, 3, 1}, 1, 1, 1, 1, 0, 0, 1, 1, 2, 5, 6, NCHW, true},
    {"k1x1_stride2_nhwc", {2, 3}, {3, 2}, {2, 3, 1}, 1, 1, 2, 2, 0, 0, 1, 1, 3, 5, 6, NHWC, false},
    {"k1x1_pad1_nchw", {5}, {7}, {3, 1}, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 3, NCHW, true},
    {"k3x3_pad1_nchw", {4, 2}, {2, 3}, {3, 2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 7, 7, NCHW, true},
    {"k3x3_pad1_nhwc", {4, 2}, {2, 3}, {3, 2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 6, 7, NHWC, true},
    {"k3x3_s2_p2_d2_nhwc", {2, 1, 3}, {1, 5, 2}, {4, 2, 3, 1}, 3, 3, 2, 2, 2, 2, 2, 2, 3, 9, 8, NHWC, true},
    {"k3x3_s2_p0_nchw_rank1", {2, 2, 2}, {2, 2, 2}, {1, 2, 2, 1}, 3, 3, 2, 2, 0, 0, 1, 1, 1, 9, 10, NCHW, false},
    {"k5x5_s2_p2_nchw", {3}, {5}, {2, 1}, 5, 5, 2, 2, 2, 2, 1, 1, 2, 11, 10, NCHW, false},
    {"k5x5_d2_nhwc", {3, 2}, {2, 2}, {5, 1, 1}, 5, 5, 1, 1, 2, 2, 2, 1, 1, 9, 12, NHWC, true},
    {"k3x1_nonsquare_nhwc", {2, 2, 2}, {2, 2, 2}, {1, 2, 2, 1}, 3, 1, 1, 2, 1, 0, 2, 1, 1, 8, 9, NHWC, false},
    {"k1x5_nonsquare_nchw",
     {1, 2, 3, 1},
     {2, 1, 1, 3},
     {3, 1, 2, 4, 1},
     1,
     5,
     2,
     1,
     0,
     2,
     1,
     2,
     2,
     6,
     7,
     NCHW,
     true},
    {"d6_nhwc",
     {1, 2, 1, 2, 1, 2},
     {2, 1, 2, 1, 2, 1},
     {2, 2, 3, 1, 2, 2, 1},
     3,
     3,
     1,
     1,
     1,
     1,
     1,
     1,
     1,
     5,
     5,
     NHWC,
     true},
    {"d5_primes_nchw",
     {3, 1, 2, 1, 5},
     {2, 3, 1, 5, 1},
     {2, 3, 1, 2, 2, 1},
     2,
     3,
     1,
     1,
     1,
     0,
     1,
     1,
     1,
     4,
     5,
     NCHW,
     true},
    // Larger than one pixel chunk of spatial-first (and than one band of channels-first for the 48x48 images).
    {"chunks_nchw", {2, 2}, {2, 2}, {2, 2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 3, 20, 20, NCHW, true},
    {"bands_nhwc", {4, 8}, {2, 2}, {4, 3, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 48, 48, NHWC, true},
    {"bands_s2_nchw", {4, 8}, {2, 2}, {4, 3, 1}, 3, 3, 2, 2, 1, 1, 1, 1, 1, 48, 47, NCHW, false},
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const ConvCase &c, std::ostream *os) { *os << c.name; }

struct Algo {
    const char *name;
    ttl_plan_opts_t opts;
};
const std::vector<Algo> kAlgos = {
    {"spatial_first_first_to_last", {TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST}},
    {"spatial_first_last_to_first", {TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_LAST_TO_FIRST}},
    {"spatial_first_auto_order", {TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO}},
    {"channels_first_first_to_last", {TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_FIRST_TO_LAST}},
    {"channels_first_last_to_first", {TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_LAST_TO_FIRST}},
    {"channels_first_auto_order", {TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO}},
    {"dense", {TTL_ALGO_DENSE, TTL_ORDER_AUTO}},
    {"reference", {TTL_ALGO_REFERENCE, TTL_ORDER_AUTO}},
    {"auto", {TTL_ALGO_AUTO, TTL_ORDER_AUTO}},
};

struct Problem {
    ttl_conv_desc_t desc;
    ttl_conv_shape_t shape;
    int64_t out_h, out_w;
    std::vector<float> cores, x, bias;
    const float *bias_ptr() const { return bias.empty() ? nullptr : bias.data(); }
    int64_t y_size() const { return shape.batch * desc.out_channels * out_h * out_w; }
};

Problem make_problem(const ConvCase &c) {
    Problem p;
    p.desc = ttl_test::conv_desc(c.out_modes, c.in_modes, c.ranks, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw);
    p.shape = {c.batch, c.height, c.width, c.layout};
    p.out_h = (c.height + 2 * c.ph - c.dh * (c.kh - 1) - 1) / c.sh + 1;
    p.out_w = (c.width + 2 * c.pw - c.dw * (c.kw - 1) - 1) / c.sw + 1;
    p.cores = ttl_test::random_vector(ttl_test::conv_param_count(p.desc), 21, 0.7f);
    p.x = ttl_test::random_vector(c.batch * p.desc.in_channels * c.height * c.width, 22);
    if (c.bias) p.bias = ttl_test::random_vector(p.desc.out_channels, 23);
    return p;
}

std::vector<float> reference_output(const Problem &p) {
    std::vector<float> y(size_t(p.y_size()));
    EXPECT_EQ(ttl_conv_forward_ref(y.data(), &p.desc, p.cores.data(), p.bias_ptr(), p.x.data(), &p.shape),
              TTL_STATUS_SUCCESS);
    return y;
}

// Multiply-adds of the channel TT-matrix per pixel, written out here from the shapes: step k (0-based) of
// first-to-last costs r_k r_{k+1} (s_0..s_k)(c_k..c_{d-1}), of last-to-first r_k r_{k+1} (c_0..c_k)(s_k..s_{d-1}),
// and the left rank r_0 rides along as one more index on every step k >= 1 of the order that does not start
// with it (last-to-first when it is an input index, first-to-last when it is an output index).
int64_t channel_macs(const ttl_conv_desc_t &d, bool left_rank_is_input, ttl_order_t order) {
    const bool ftl = order == TTL_ORDER_FIRST_TO_LAST;
    int64_t total = 0;
    for (int k = 0; k < d.num_cores; ++k) {
        int64_t t = d.ranks[k] * d.ranks[k + 1];
        for (int j = 0; j <= k; ++j) t *= ftl ? d.out_modes[j] : d.in_modes[j];
        for (int j = k; j < d.num_cores; ++j) t *= ftl ? d.in_modes[j] : d.out_modes[j];
        if (k >= 1 && ftl != left_rank_is_input) t *= d.ranks[0];
        total += t;
    }
    return total;
}

int64_t expected_macs(const Problem &p, const ttl_conv_stats_t &st, const ttl_plan_info_t &info) {
    const ttl_conv_desc_t &d = p.desc;
    const int64_t out_px = p.shape.batch * p.out_h * p.out_w,
                  in_px = p.shape.batch * p.shape.height * p.shape.width;
    const int64_t spatial = d.kernel_h * d.kernel_w * d.ranks[0];
    switch (info.algo) {
    case TTL_ALGO_SPATIAL_FIRST: return out_px * (spatial * d.in_channels + channel_macs(d, true, info.order));
    case TTL_ALGO_CHANNELS_FIRST:
        return in_px * channel_macs(d, false, info.order) + out_px * spatial * d.out_channels;
    default: return st.macs_dense + st.macs_reconstruct;
    }
}

ttl_status_t run_plan(const ttl_conv_plan_t *plan, const Problem &p, std::vector<float> &y) {
    ttl_plan_info_t info;
    EXPECT_EQ(ttl_conv_plan_info(plan, &info), TTL_STATUS_SUCCESS);
    std::vector<char> ws(info.workspace_bytes + 4);
    return ttl_conv_forward(plan, y.data(), p.x.data(), p.cores.data(), p.bias_ptr(), ws.data() + 4,
                            info.workspace_bytes);
}

// ---- every algorithm against the reference ----------------------------------------------------------------------

class ConvForward : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvForward, ReferenceMatchesOracle) {
    const Problem p = make_problem(GetParam());
    const auto K = ttl_test::oracle_conv_dense(p.desc, p.cores.data());
    const auto oracle =
        ttl_test::to_float(ttl_test::oracle_conv_forward(K, p.desc, p.x.data(), p.bias_ptr(), p.shape));
    EXPECT_LE(rel_err(reference_output(p), oracle), kTol);
}

TEST_P(ConvForward, EveryAlgorithmMatchesReference) {
    const Problem p = make_problem(GetParam());
    const auto ref = reference_output(p);
    ttl_conv_stats_t st;
    ASSERT_EQ(ttl_conv_stats(&st, &p.desc, &p.shape), TTL_STATUS_SUCCESS);
    std::vector<int64_t> candidate_macs;
    for (const Algo &a : kAlgos) {
        SCOPED_TRACE(a.name);
        ttl_conv_plan_t *plan = nullptr;
        ASSERT_EQ(ttl_conv_plan_create(&plan, &p.desc, &p.shape, &a.opts), TTL_STATUS_SUCCESS);
        ttl_plan_info_t info;
        ASSERT_EQ(ttl_conv_plan_info(plan, &info), TTL_STATUS_SUCCESS);
        ttl_test::expect_info_honours_request(info, a.opts);
        const bool factorized = info.algo == TTL_ALGO_SPATIAL_FIRST || info.algo == TTL_ALGO_CHANNELS_FIRST;
        EXPECT_EQ(info.order != TTL_ORDER_AUTO, factorized);
        EXPECT_EQ(info.macs, expected_macs(p, st, info));
        EXPECT_EQ(info.persistent_bytes, 0u);
        if (factorized || info.algo == TTL_ALGO_DENSE) EXPECT_GT(info.workspace_bytes, 0u);
        if (info.algo == TTL_ALGO_DENSE) EXPECT_GE(info.workspace_bytes, size_t(st.dense_params) * sizeof(float));
        // In its cheaper channel order each algorithm costs what the stats say.
        if (info.algo == TTL_ALGO_SPATIAL_FIRST && a.opts.order == TTL_ORDER_AUTO)
            EXPECT_EQ(info.macs, st.macs_spatial_first);
        if (info.algo == TTL_ALGO_CHANNELS_FIRST && a.opts.order == TTL_ORDER_AUTO)
            EXPECT_EQ(info.macs, st.macs_channels_first);
        if (a.opts.algo != TTL_ALGO_AUTO && a.opts.algo != TTL_ALGO_REFERENCE) candidate_macs.push_back(info.macs);
        if (a.opts.algo == TTL_ALGO_AUTO) {
            // AUTO takes the fewest multiply-adds of all the candidates planned above (both orders included).
            ASSERT_FALSE(candidate_macs.empty());
            EXPECT_EQ(info.macs, *std::min_element(candidate_macs.begin(), candidate_macs.end()));
            EXPECT_EQ(info.macs, std::min({st.macs_spatial_first, st.macs_channels_first,
                                           st.macs_dense + st.macs_reconstruct}));
        }

        ttl_test::expect_matches_and_repeats([&](std::vector<float> &y) { return run_plan(plan, p, y); }, ref, kTol,
                                             kPoison);
        ttl_conv_plan_destroy(plan);
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ConvForward, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<ConvCase> &info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------------------------

const ttl_conv_desc_t kDesc = ttl_test::conv_desc({2, 3}, {3, 2}, {2, 3, 1}, 3, 3, 1, 1, 1, 1);
const ttl_conv_shape_t kShape = {2, 5, 6, TTL_LAYOUT_NCHW};

ttl_status_t create_status(const ttl_conv_desc_t *desc, const ttl_conv_shape_t *shape,
                           const ttl_plan_opts_t *opts) {
    ttl_conv_plan_t *plan = nullptr;
    const ttl_status_t st = ttl_conv_plan_create(&plan, desc, shape, opts);
    EXPECT_EQ(plan == nullptr, st != TTL_STATUS_SUCCESS);
    ttl_conv_plan_destroy(plan);
    return st;
}

TEST(ConvPlan, CreateErrors) {
    int marker = 0;
    ttl_conv_plan_t *plan = reinterpret_cast<ttl_conv_plan_t *>(&marker), *untouched = plan;
    EXPECT_EQ(ttl_conv_plan_create(nullptr, &kDesc, &kShape, nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_plan_create(&plan, nullptr, &kShape, nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_plan_create(&plan, &kDesc, nullptr, nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(plan, untouched);

    ttl_conv_desc_t bad = kDesc;
    bad.in_channels = 5;
    EXPECT_EQ(create_status(&bad, &kShape, nullptr), TTL_STATUS_BAD_MODES);
    bad = kDesc;
    bad.ranks[2] = 2;
    EXPECT_EQ(create_status(&bad, &kShape, nullptr), TTL_STATUS_BAD_RANKS);
    bad = kDesc;
    bad.kernel_w = 0;
    EXPECT_EQ(create_status(&bad, &kShape, nullptr), TTL_STATUS_BAD_SIZE);
    bad = kDesc;
    bad.pad_h = 0;
    bad.kernel_h = 7; // larger than the image: no output rows
    EXPECT_EQ(create_status(&bad, &kShape, nullptr), TTL_STATUS_BAD_SIZE);

    ttl_conv_shape_t shape = kShape;
    shape.batch = -1;
    EXPECT_EQ(create_status(&kDesc, &shape, nullptr), TTL_STATUS_BAD_ARGUMENT);
    shape = kShape;
    shape.layout = static_cast<ttl_layout_t>(5);
    EXPECT_EQ(create_status(&kDesc, &shape, nullptr), TTL_STATUS_BAD_ARGUMENT);
    shape = kShape;
    shape.height = 0;
    EXPECT_EQ(create_status(&kDesc, &shape, nullptr), TTL_STATUS_BAD_SIZE);

    for (ttl_algo_t a : {TTL_ALGO_SEQUENTIAL, TTL_ALGO_SEQUENTIAL_BLAS, TTL_ALGO_FUSED}) {
        const ttl_plan_opts_t opts{a, TTL_ORDER_AUTO};
        EXPECT_EQ(create_status(&kDesc, &kShape, &opts), TTL_STATUS_UNSUPPORTED) << ttl_algo_name(a);
    }
    const ttl_plan_opts_t bad_algo{static_cast<ttl_algo_t>(42), TTL_ORDER_AUTO};
    EXPECT_EQ(create_status(&kDesc, &kShape, &bad_algo), TTL_STATUS_BAD_ARGUMENT);
    const ttl_plan_opts_t bad_order{TTL_ALGO_SPATIAL_FIRST, static_cast<ttl_order_t>(-3)};
    EXPECT_EQ(create_status(&kDesc, &kShape, &bad_order), TTL_STATUS_BAD_ARGUMENT);
}

TEST(ConvPlan, InfoErrors) {
    ttl_conv_plan_t *plan = nullptr;
    ASSERT_EQ(ttl_conv_plan_create(&plan, &kDesc, &kShape, nullptr), TTL_STATUS_SUCCESS);
    ttl_plan_info_t info;
    EXPECT_EQ(ttl_conv_plan_info(nullptr, &info), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_plan_info(plan, nullptr), TTL_STATUS_NULL_POINTER);
    ttl_conv_plan_destroy(plan);
    ttl_conv_plan_destroy(nullptr);
}

TEST(ConvPlan, ForwardErrorsLeaveOutputUntouched) {
    const Problem p =
        make_problem({"errors", {2, 3}, {3, 2}, {2, 3, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 5, 6, NCHW, true});
    for (ttl_algo_t a : {TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST, TTL_ALGO_DENSE}) {
        SCOPED_TRACE(ttl_algo_name(a));
        const ttl_plan_opts_t opts{a, TTL_ORDER_AUTO};
        ttl_conv_plan_t *plan = nullptr;
        ASSERT_EQ(ttl_conv_plan_create(&plan, &p.desc, &p.shape, &opts), TTL_STATUS_SUCCESS);
        ttl_plan_info_t info;
        ASSERT_EQ(ttl_conv_plan_info(plan, &info), TTL_STATUS_SUCCESS);
        ASSERT_GT(info.workspace_bytes, 0u);
        std::vector<char> ws(info.workspace_bytes);
        std::vector<float> y(size_t(p.y_size()), kPoison);
        const float *x = p.x.data(), *g = p.cores.data(), *b = p.bias_ptr();
        EXPECT_EQ(ttl_conv_forward(nullptr, y.data(), x, g, b, ws.data(), ws.size()), TTL_STATUS_NULL_POINTER);
        EXPECT_EQ(ttl_conv_forward(plan, nullptr, x, g, b, ws.data(), ws.size()), TTL_STATUS_NULL_POINTER);
        EXPECT_EQ(ttl_conv_forward(plan, y.data(), nullptr, g, b, ws.data(), ws.size()), TTL_STATUS_NULL_POINTER);
        EXPECT_EQ(ttl_conv_forward(plan, y.data(), x, nullptr, b, ws.data(), ws.size()), TTL_STATUS_NULL_POINTER);
        EXPECT_EQ(ttl_conv_forward(plan, y.data(), x, g, b, ws.data(), ws.size() - 1),
                  TTL_STATUS_INSUFFICIENT_WORKSPACE);
        EXPECT_EQ(ttl_conv_forward(plan, y.data(), x, g, b, nullptr, 0), TTL_STATUS_INSUFFICIENT_WORKSPACE);
        EXPECT_EQ(ttl_conv_forward(plan, y.data(), x, g, b, nullptr, ws.size()), TTL_STATUS_NULL_POINTER);
        for (float v : y) ASSERT_EQ(v, kPoison);
        EXPECT_EQ(ttl_conv_forward(plan, y.data(), x, g, nullptr, ws.data(), ws.size()), TTL_STATUS_SUCCESS);
        ttl_conv_plan_destroy(plan);
    }
}

TEST(ConvPlan, BatchZeroIsANoOp) {
    const Problem p =
        make_problem({"zero", {2, 3}, {3, 2}, {2, 3, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 5, 6, NHWC, true});
    ttl_conv_shape_t shape = p.shape;
    shape.batch = 0;
    for (const Algo &a : kAlgos) {
        SCOPED_TRACE(a.name);
        ttl_conv_plan_t *plan = nullptr;
        ASSERT_EQ(ttl_conv_plan_create(&plan, &p.desc, &shape, &a.opts), TTL_STATUS_SUCCESS);
        ttl_plan_info_t info;
        ASSERT_EQ(ttl_conv_plan_info(plan, &info), TTL_STATUS_SUCCESS);
        EXPECT_EQ(info.workspace_bytes, 0u);
        float y = kPoison;
        EXPECT_EQ(ttl_conv_forward(plan, &y, p.x.data(), p.cores.data(), p.bias_ptr(), nullptr, 0),
                  TTL_STATUS_SUCCESS);
        EXPECT_EQ(y, kPoison);
        ttl_conv_plan_destroy(plan);
    }
}

} // namespace
