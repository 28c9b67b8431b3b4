// TT-conv plans and forward on the CPU: every algorithm (SPATIAL_FIRST and CHANNELS_FIRST in both channel orders,
// DENSE, REFERENCE, AUTO), with and without weights bound at plan time, against the CPU reference, the reference
// against the independent dense oracle, over a list of geometries kept as data (kernels 1x1/3x3/5x5/non-square,
// stride, padding, dilation, NCHW/NHWC, bias or none, images larger than one pixel chunk or band); plan errors,
// plan_info contents (AUTO's choice, exact workspace and persistent sizes), workspace handling and repeatability.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "common/plan_checks.h"
#include "common/test_util.h"
#include "cpu/cpu_internal.h"

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
    // One output channel (NCHW and NHWC are then the same memory for y) and one input channel (the same for x).
    {"s1_nchw", {1, 1}, {3, 2}, {2, 2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 6, 5, NCHW, true},
    {"s1_nhwc", {1, 1}, {3, 2}, {2, 2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 6, 5, NHWC, false},
    {"c1_s2_nhwc", {2, 3}, {1, 1}, {3, 2, 1}, 3, 3, 2, 2, 1, 1, 1, 1, 3, 7, 6, NHWC, true},
    // Larger than one pixel chunk of spatial-first (and than one band of channels-first for the 48x48 images).
    {"chunks_nchw", {2, 2}, {2, 2}, {2, 2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 3, 20, 20, NCHW, true},
    {"bands_nhwc", {4, 8}, {2, 2}, {4, 3, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 48, 48, NHWC, true},
    {"bands_s2_nchw", {4, 8}, {2, 2}, {4, 3, 1}, 3, 3, 2, 2, 1, 1, 1, 1, 1, 48, 47, NCHW, false},
    // More output pixels than one dense GEMM takes (4096), so a chunk starts in the middle of an output row.
    {"dense_chunks_nchw", {3}, {2}, {2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 70, 67, NCHW, true},
    {"dense_chunks_s2_d2_nhwc", {2}, {3}, {3, 1}, 3, 3, 2, 1, 2, 1, 2, 1, 3, 101, 59, NHWC, true},
    // Rows of C kh kw > 1024 floats: the im2col buffer's bound (2^22 floats) cuts the chunks below 4096 pixels,
    // 3640 here (a chunk crosses from one image into the next), 2621 for the 5x5 kernel.
    {"dense_im2col_nhwc", {1, 2, 1}, {4, 8, 4}, {2, 3, 2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 44, 44, NHWC, true},
    {"dense_im2col_5x5_nchw", {1, 2, 1}, {4, 4, 4}, {2, 2, 3, 1}, 5, 5, 1, 1, 2, 2, 1, 1, 1, 52, 52, NCHW, false},
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const ConvCase &c, std::ostream *os) { *os << c.name; }

struct Algo {
    const char *name;
    ttl_plan_opts_t opts;
};
const std::vector<Algo> kAlgos = {
    {"spatial_first_first_to_last", {TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, nullptr}},
    {"spatial_first_last_to_first", {TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_LAST_TO_FIRST, nullptr}},
    {"spatial_first_auto_order", {TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, nullptr}},
    {"channels_first_first_to_last", {TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_FIRST_TO_LAST, nullptr}},
    {"channels_first_last_to_first", {TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_LAST_TO_FIRST, nullptr}},
    {"channels_first_auto_order", {TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, nullptr}},
    {"dense", {TTL_ALGO_DENSE, TTL_ORDER_AUTO, nullptr}},
    {"reference", {TTL_ALGO_REFERENCE, TTL_ORDER_AUTO, nullptr}},
    {"auto", {TTL_ALGO_AUTO, TTL_ORDER_AUTO, nullptr}},
};

// The options `o` with `cores` bound (nullptr: unbound).
ttl_plan_opts_t with_cores(ttl_plan_opts_t o, const float *cores) {
    o.cores = cores;
    return o;
}

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

// A bound DENSE plan built K at creation, so its calls run the convolution alone; REFERENCE rebuilds K (in double)
// on every call either way.
int64_t expected_macs(const Problem &p, const ttl_conv_stats_t &st, const ttl_plan_info_t &info, bool bound) {
    const ttl_conv_desc_t &d = p.desc;
    const int64_t out_px = p.shape.batch * p.out_h * p.out_w,
                  in_px = p.shape.batch * p.shape.height * p.shape.width;
    const int64_t spatial = d.kernel_h * d.kernel_w * d.ranks[0];
    switch (info.algo) {
    case TTL_ALGO_SPATIAL_FIRST: return out_px * (spatial * d.in_channels + channel_macs(d, true, info.order));
    case TTL_ALGO_CHANNELS_FIRST:
        return in_px * channel_macs(d, false, info.order) + out_px * spatial * d.out_channels;
    case TTL_ALGO_DENSE: return bound ? st.macs_dense : st.macs_dense + st.macs_reconstruct;
    default: return st.macs_dense + st.macs_reconstruct;
    }
}

// Output pixels of one dense GEMM at most, and floats of its im2col buffer at most unless one pixel's row is longer
// (conv_dense.c's PIXEL_CHUNK and IM2COL_FLOATS).
constexpr int64_t kDensePixelChunk = 4096;
constexpr int64_t kDenseIm2colFloats = int64_t(1) << 22;

// The workspace of a bound DENSE plan: only the im2col buffer of one GEMM, [chunk, C kh kw] floats, where a chunk
// is at most kDensePixelChunk output pixels of one image (NCHW) or of the whole batch (NHWC), and at most as many
// as fit kDenseIm2colFloats (at least one); none when x is read in place (1x1, stride 1, no padding).
size_t bound_dense_workspace(const Problem &p) {
    const ttl_conv_desc_t &d = p.desc;
    if (d.kernel_h == 1 && d.kernel_w == 1 && d.stride_h == 1 && d.stride_w == 1 && d.pad_h == 0 && d.pad_w == 0)
        return 0;
    const int64_t row = d.in_channels * d.kernel_h * d.kernel_w;
    const int64_t pixels = p.out_h * p.out_w * (p.shape.layout == TTL_LAYOUT_NHWC ? p.shape.batch : 1);
    const int64_t chunk = std::min({pixels, kDensePixelChunk, std::max(int64_t(1), kDenseIm2colFloats / row)});
    return size_t(chunk * row) * sizeof(float);
}

// The workspace of an unbound DENSE plan: K (S C kh kw floats, rounded up to 64 bytes), then one region that holds
// the reconstruction's scratch and, once K is built, the im2col buffer: the larger of the two. The scratch is two
// buffers, each as large as the biggest partial product kh kw (s_1 c_1 .. s_k c_k) r_k and 16 floats more (64-byte
// alignment).
size_t unbound_dense_workspace(const Problem &p) {
    const ttl_conv_desc_t &d = p.desc;
    const int64_t taps = d.kernel_h * d.kernel_w;
    int64_t span = taps, biggest = 0;
    for (int k = 0; k < d.num_cores; ++k) {
        span *= d.out_modes[k] * d.in_modes[k];
        biggest = std::max(biggest, span * d.ranks[k + 1]);
    }
    const size_t chain = size_t(2 * (biggest + 16)) * sizeof(float);
    const size_t k_bytes = size_t(d.out_channels * d.in_channels * taps) * sizeof(float);
    return (k_bytes + 63) / 64 * 64 + std::max(chain, bound_dense_workspace(p));
}

// AUTO without bound weights: the fewest multiply-adds, DENSE paying the reconstruction; ties go to spatial first,
// then to the factorized orders.
ttl_algo_t multiply_add_choice(const ttl_conv_stats_t &st) {
    const int64_t tt = std::min(st.macs_spatial_first, st.macs_channels_first);
    if (st.macs_dense + st.macs_reconstruct < tt) return TTL_ALGO_DENSE;
    return st.macs_channels_first < st.macs_spatial_first ? TTL_ALGO_CHANNELS_FIRST : TTL_ALGO_SPATIAL_FIRST;
}

// AUTO with bound weights: the shortest estimated time by the rates of cpu_internal.h, DENSE without the
// reconstruction.
ttl_algo_t bound_choice(const ttl_conv_stats_t &st) {
    const int64_t tt = std::min(st.macs_spatial_first, st.macs_channels_first);
    if (double(st.macs_dense) / TTL_CPU_RATE_GEMM < double(tt) / TTL_CPU_RATE_TT) return TTL_ALGO_DENSE;
    return st.macs_channels_first < st.macs_spatial_first ? TTL_ALGO_CHANNELS_FIRST : TTL_ALGO_SPATIAL_FIRST;
}

ttl_plan_info_t plan_info(const ttl_conv_plan_t *plan) {
    ttl_plan_info_t info{};
    EXPECT_EQ(ttl_conv_plan_info(plan, &info), TTL_STATUS_SUCCESS);
    return info;
}

// Runs a plan with a workspace of exactly workspace_bytes, unaligned, poisoned and guarded on both sides.
ttl_status_t run_plan(const ttl_conv_plan_t *plan, const Problem &p, std::vector<float> &y) {
    ttl_test::GuardedWorkspace ws(plan_info(plan).workspace_bytes);
    const ttl_status_t st =
        ttl_conv_forward(plan, y.data(), p.x.data(), p.cores.data(), p.bias_ptr(), ws.data(), ws.size());
    EXPECT_TRUE(ws.guards_intact()) << "the forward call wrote outside its workspace";
    return st;
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
    const size_t k_bytes = size_t(st.dense_params) * sizeof(float);
    std::vector<int64_t> candidate_macs;
    for (const Algo &a : kAlgos) {
        ttl_plan_info_t unbound_info{};
        for (const bool bound : {false, true}) {
            SCOPED_TRACE(std::string(a.name) + (bound ? ", bound" : ", unbound"));
            const ttl_plan_opts_t opts = with_cores(a.opts, bound ? p.cores.data() : nullptr);
            ttl_conv_plan_t *plan = nullptr;
            ASSERT_EQ(ttl_conv_plan_create(&plan, &p.desc, &p.shape, &opts), TTL_STATUS_SUCCESS);
            const ttl_plan_info_t info = plan_info(plan);
            ttl_test::expect_info_honours_request(info, opts);
            const bool factorized = info.algo == TTL_ALGO_SPATIAL_FIRST || info.algo == TTL_ALGO_CHANNELS_FIRST;
            EXPECT_EQ(info.order != TTL_ORDER_AUTO, factorized);
            EXPECT_EQ(info.macs, expected_macs(p, st, info, bound));
            // Only a bound DENSE plan holds memory: K, exactly.
            EXPECT_EQ(info.persistent_bytes, bound && info.algo == TTL_ALGO_DENSE ? k_bytes : 0u);
            if (factorized) EXPECT_GT(info.workspace_bytes, 0u);
            if (info.algo == TTL_ALGO_DENSE)
                EXPECT_EQ(info.workspace_bytes, bound ? bound_dense_workspace(p) : unbound_dense_workspace(p));
            // In its cheaper channel order each algorithm costs what the stats say.
            if (info.algo == TTL_ALGO_SPATIAL_FIRST && a.opts.order == TTL_ORDER_AUTO)
                EXPECT_EQ(info.macs, st.macs_spatial_first);
            if (info.algo == TTL_ALGO_CHANNELS_FIRST && a.opts.order == TTL_ORDER_AUTO)
                EXPECT_EQ(info.macs, st.macs_channels_first);
            if (!bound && a.opts.algo != TTL_ALGO_AUTO && a.opts.algo != TTL_ALGO_REFERENCE)
                candidate_macs.push_back(info.macs);
            if (a.opts.algo == TTL_ALGO_AUTO) {
                EXPECT_EQ(info.algo, bound ? bound_choice(st) : multiply_add_choice(st));
                if (!bound) {
                    // AUTO takes the fewest multiply-adds of all the candidates planned above (both orders
                    // included).
                    ASSERT_FALSE(candidate_macs.empty());
                    EXPECT_EQ(info.macs, *std::min_element(candidate_macs.begin(), candidate_macs.end()));
                    EXPECT_EQ(info.macs, std::min({st.macs_spatial_first, st.macs_channels_first,
                                                   st.macs_dense + st.macs_reconstruct}));
                }
            } else if (bound) {
                // Binding changes nothing else; DENSE's workspace loses K (aligned) and the reconstruction's
                // scratch.
                EXPECT_EQ(info.algo, unbound_info.algo);
                EXPECT_EQ(info.order, unbound_info.order);
                if (info.algo == TTL_ALGO_DENSE)
                    EXPECT_GE(unbound_info.workspace_bytes, info.workspace_bytes + k_bytes);
                else
                    EXPECT_EQ(info.workspace_bytes, unbound_info.workspace_bytes);
            }
            if (!bound) unbound_info = info;

            ttl_test::expect_matches_and_repeats([&](std::vector<float> &y) { return run_plan(plan, p, y); }, ref,
                                                 kTol, kPoison);
            ttl_conv_plan_destroy(plan);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ConvForward, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<ConvCase> &info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------------------------
// AUTO: multiply-adds without bound weights, estimated time with them
// ---------------------------------------------------------------------------------------------------------------

// The paper's and the bench's larger layers (3x3, stride 1, padding 1, NCHW, batch 1), planned but never run.
const std::vector<ConvCase> kPlanOnlyCases = {
    // VGG-size 512 -> 512 at 14x14, rank 16: 438M multiply-adds spatial first, 462M dense (plus 47M to build K).
    {"vgg_conv5_512_r16", {8, 8, 8}, {8, 8, 8}, {16, 16, 16, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 14, 14, NCHW, false},
    {"vgg_conv5_512_r4", {8, 8, 8}, {8, 8, 8}, {4, 4, 4, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 14, 14, NCHW, false},
    {"vgg_conv3_256_r8", {4, 8, 8}, {4, 8, 8}, {8, 8, 8, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 28, 28, NCHW, false},
    {"cifar_conv2.2_r16", {4, 8, 4}, {4, 8, 4}, {16, 16, 16, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 16, 16, NCHW, false},
    // The naive 4-D TT: channel modes (1, C) and (S, 1), r_0 = 9.
    {"cifar_conv2.2_naive", {1, 128}, {128, 1}, {9, 64, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 16, 16, NCHW, false},
};

// One AUTO plan's info.
ttl_plan_info_t auto_info(const ttl_conv_desc_t &desc, const ttl_conv_shape_t &shape, const float *cores) {
    const ttl_plan_opts_t opts{TTL_ALGO_AUTO, TTL_ORDER_AUTO, cores};
    ttl_conv_plan_t *plan = nullptr;
    EXPECT_EQ(ttl_conv_plan_create(&plan, &desc, &shape, &opts), TTL_STATUS_SUCCESS);
    const ttl_plan_info_t info = plan ? plan_info(plan) : ttl_plan_info_t{};
    ttl_conv_plan_destroy(plan);
    return info;
}

TEST(ConvPlan, AutoWithBoundWeightsPicksDenseWhereTheGemmsAreFaster) {
    // 512 -> 512 3x3 at 14x14, rank 16: spatial first needs 438M multiply-adds, the dense convolution 462M (and
    // 47M more to build K). Unbound, AUTO takes spatial first; with K built once, the dense GEMMs' rate (about
    // twice the TT contractions') makes DENSE the faster by far: measured 8.3 ms against 15.9 ms on the bench.
    const Problem p = make_problem(kPlanOnlyCases[0]);
    ttl_plan_info_t info = auto_info(p.desc, p.shape, nullptr);
    EXPECT_EQ(info.algo, TTL_ALGO_SPATIAL_FIRST);
    info = auto_info(p.desc, p.shape, p.cores.data());
    EXPECT_EQ(info.algo, TTL_ALGO_DENSE);
    EXPECT_EQ(info.order, TTL_ORDER_AUTO);
    EXPECT_EQ(info.macs, 14 * 14 * 512 * 512 * 9);
    EXPECT_EQ(info.persistent_bytes, size_t(512 * 512 * 9) * sizeof(float));
    EXPECT_EQ(info.workspace_bytes, bound_dense_workspace(p));

    // Rank 4 at the same size stays factorized: 32M multiply-adds against 462M.
    const Problem r4 = make_problem(kPlanOnlyCases[1]);
    info = auto_info(r4.desc, r4.shape, r4.cores.data());
    EXPECT_EQ(info.algo, TTL_ALGO_SPATIAL_FIRST);
    EXPECT_EQ(info.persistent_bytes, 0u);
}

TEST(ConvPlan, BoundDenseChosenByAutoMatchesTheReference) {
    // A naive 4-D TT of a 32 -> 32 3x3 conv at 8x8 (channel modes (1, 32) and (32, 1), ranks 9, 16): 494K
    // multiply-adds factorized, 590K dense and 189K more to build K. Unbound, AUTO runs a factorized order;
    // bound, DENSE. Both match the reference.
    const Problem p =
        make_problem({"naive_32", {1, 32}, {32, 1}, {9, 16, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 8, 8, NCHW, true});
    ttl_conv_stats_t st;
    ASSERT_EQ(ttl_conv_stats(&st, &p.desc, &p.shape), TTL_STATUS_SUCCESS);
    ASSERT_NE(multiply_add_choice(st), TTL_ALGO_DENSE);
    const auto ref = reference_output(p);
    for (const bool bound : {false, true}) {
        SCOPED_TRACE(bound ? "bound" : "unbound");
        const ttl_plan_opts_t opts{TTL_ALGO_AUTO, TTL_ORDER_AUTO, bound ? p.cores.data() : nullptr};
        ttl_conv_plan_t *plan = nullptr;
        ASSERT_EQ(ttl_conv_plan_create(&plan, &p.desc, &p.shape, &opts), TTL_STATUS_SUCCESS);
        EXPECT_EQ(plan_info(plan).algo, bound ? TTL_ALGO_DENSE : multiply_add_choice(st));
        ttl_test::expect_matches_and_repeats([&](std::vector<float> &y) { return run_plan(plan, p, y); }, ref, kTol,
                                             kPoison);
        ttl_conv_plan_destroy(plan);
    }
}

TEST(ConvPlan, NullCoresKeepTheMultiplyAddChoice) {
    // Every geometry of the tables, at several batches: a NULL options pointer, value-initialised options and
    // {AUTO, AUTO, nullptr} all plan exactly what the multiply-add rule says, as before binding existed.
    std::vector<ConvCase> cases = kCases;
    cases.insert(cases.end(), kPlanOnlyCases.begin(), kPlanOnlyCases.end());
    const ttl_plan_opts_t value_initialised{};
    const ttl_plan_opts_t explicit_null{TTL_ALGO_AUTO, TTL_ORDER_AUTO, nullptr};
    for (const ConvCase &c : cases) {
        for (int64_t batch : {0, 1, 3, 8}) {
            SCOPED_TRACE(::testing::Message() << c.name << " batch " << batch);
            const ttl_conv_desc_t d = ttl_test::conv_desc(c.out_modes, c.in_modes, c.ranks, c.kh, c.kw, c.sh, c.sw,
                                                          c.ph, c.pw, c.dh, c.dw);
            const ttl_conv_shape_t shape{batch, c.height, c.width, c.layout};
            ttl_conv_stats_t st;
            ASSERT_EQ(ttl_conv_stats(&st, &d, &shape), TTL_STATUS_SUCCESS);
            std::vector<ttl_plan_info_t> infos;
            for (const ttl_plan_opts_t *o :
                 {static_cast<const ttl_plan_opts_t *>(nullptr), &value_initialised, &explicit_null}) {
                ttl_conv_plan_t *plan = nullptr;
                ASSERT_EQ(ttl_conv_plan_create(&plan, &d, &shape, o), TTL_STATUS_SUCCESS);
                infos.push_back(plan_info(plan));
                ttl_conv_plan_destroy(plan);
            }
            for (const ttl_plan_info_t &info : infos) {
                EXPECT_EQ(info.algo, multiply_add_choice(st));
                EXPECT_EQ(info.macs, std::min({st.macs_spatial_first, st.macs_channels_first,
                                               st.macs_dense + st.macs_reconstruct}));
                EXPECT_EQ(info.persistent_bytes, 0u);
                EXPECT_EQ(info.order, infos[0].order);
                EXPECT_EQ(info.workspace_bytes, infos[0].workspace_bytes);
                EXPECT_STREQ(info.reason, infos[0].reason);
            }
        }
    }
}

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
        const ttl_plan_opts_t opts{a, TTL_ORDER_AUTO, nullptr};
        EXPECT_EQ(create_status(&kDesc, &kShape, &opts), TTL_STATUS_UNSUPPORTED) << ttl_algo_name(a);
    }
    const ttl_plan_opts_t bad_algo{static_cast<ttl_algo_t>(42), TTL_ORDER_AUTO, nullptr};
    EXPECT_EQ(create_status(&kDesc, &kShape, &bad_algo), TTL_STATUS_BAD_ARGUMENT);
    const ttl_plan_opts_t bad_order{TTL_ALGO_SPATIAL_FIRST, static_cast<ttl_order_t>(-3), nullptr};
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
        const ttl_plan_opts_t opts{a, TTL_ORDER_AUTO, nullptr};
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
        // Overlapping buffers: in place, the workspace over y, the workspace over x.
        std::vector<float> io(std::max(p.x.size(), y.size()), kPoison);
        std::copy(p.x.begin(), p.x.end(), io.begin());
        const std::vector<float> io_before = io;
        EXPECT_EQ(ttl_conv_forward(plan, io.data(), io.data(), g, b, ws.data(), ws.size()),
                  TTL_STATUS_BAD_ARGUMENT);
        EXPECT_EQ(io, io_before) << "an in-place call wrote";
        std::vector<float> y_and_ws(y.size() + ws.size() / sizeof(float) + 1, kPoison);
        EXPECT_EQ(ttl_conv_forward(plan, y_and_ws.data(), x, g, b, y_and_ws.data() + y.size() - 1, ws.size()),
                  TTL_STATUS_BAD_ARGUMENT);
        for (float v : y_and_ws) ASSERT_EQ(v, kPoison);
        std::vector<float> x_and_ws(p.x.size() + ws.size() / sizeof(float) + 1, kPoison);
        std::copy(p.x.begin(), p.x.end(), x_and_ws.begin());
        EXPECT_EQ(ttl_conv_forward(plan, y.data(), x_and_ws.data(), g, b, x_and_ws.data() + 1, ws.size()),
                  TTL_STATUS_BAD_ARGUMENT);
        for (float v : y) ASSERT_EQ(v, kPoison);
        EXPECT_EQ(ttl_conv_forward(plan, y.data(), x, g, nullptr, ws.data(), ws.size()), TTL_STATUS_SUCCESS);
        ttl_conv_plan_destroy(plan);
    }
}

TEST(ConvPlan, BatchZeroIsANoOp) {
    const Problem p =
        make_problem({"zero", {2, 3}, {3, 2}, {2, 3, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 1, 5, 6, NHWC, true});
    const std::vector<float> copy = p.cores;
    ttl_conv_shape_t shape = p.shape;
    shape.batch = 0;
    for (const Algo &a : kAlgos) {
        for (const bool bound : {false, true}) {
            SCOPED_TRACE(std::string(a.name) + (bound ? ", bound" : ", unbound"));
            const ttl_plan_opts_t opts = with_cores(a.opts, bound ? p.cores.data() : nullptr);
            ttl_conv_plan_t *plan = nullptr;
            ASSERT_EQ(ttl_conv_plan_create(&plan, &p.desc, &shape, &opts), TTL_STATUS_SUCCESS);
            const ttl_plan_info_t info = plan_info(plan);
            EXPECT_EQ(info.workspace_bytes, 0u);
            EXPECT_EQ(info.persistent_bytes, 0u); // nothing is built for a batch that never runs
            float y = kPoison;
            EXPECT_EQ(ttl_conv_forward(plan, &y, p.x.data(), p.cores.data(), p.bias_ptr(), nullptr, 0),
                      TTL_STATUS_SUCCESS);
            EXPECT_EQ(ttl_conv_forward(plan, &y, p.x.data(), copy.data(), p.bias_ptr(), nullptr, 0),
                      bound ? TTL_STATUS_BAD_ARGUMENT : TTL_STATUS_SUCCESS);
            EXPECT_EQ(y, kPoison);
            ttl_conv_plan_destroy(plan);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// bound weights: the pointer contract
// ---------------------------------------------------------------------------------------------------------------

TEST(ConvPlan, BoundPlanRejectsOtherCoresAndLeavesOutputUntouched) {
    const Problem p =
        make_problem({"bound", {2, 3}, {3, 2}, {2, 3, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 5, 6, NCHW, true});
    const std::vector<float> copy = p.cores; // the same values at another address
    for (const Algo &a : kAlgos) {
        SCOPED_TRACE(a.name);
        const ttl_plan_opts_t opts = with_cores(a.opts, p.cores.data());
        ttl_conv_plan_t *plan = nullptr;
        ASSERT_EQ(ttl_conv_plan_create(&plan, &p.desc, &p.shape, &opts), TTL_STATUS_SUCCESS);
        ttl_test::GuardedWorkspace ws(plan_info(plan).workspace_bytes);
        std::vector<float> y(size_t(p.y_size()), kPoison);
        const float *x = p.x.data(), *b = p.bias_ptr();
        EXPECT_EQ(ttl_conv_forward(plan, y.data(), x, copy.data(), b, ws.data(), ws.size()),
                  TTL_STATUS_BAD_ARGUMENT);
        EXPECT_EQ(ttl_conv_forward(plan, y.data(), x, p.cores.data() + 1, b, ws.data(), ws.size()),
                  TTL_STATUS_BAD_ARGUMENT);
        EXPECT_EQ(ttl_conv_forward(plan, y.data(), x, nullptr, b, ws.data(), ws.size()), TTL_STATUS_NULL_POINTER);
        for (float v : y) ASSERT_EQ(v, kPoison);
        EXPECT_TRUE(ws.guards_intact());
        EXPECT_EQ(ttl_conv_forward(plan, y.data(), x, p.cores.data(), b, ws.data(), ws.size()), TTL_STATUS_SUCCESS);
        ttl_conv_plan_destroy(plan);

        // Unbound, the same plan takes whichever cores it is given.
        ASSERT_EQ(ttl_conv_plan_create(&plan, &p.desc, &p.shape, &a.opts), TTL_STATUS_SUCCESS);
        ttl_test::GuardedWorkspace ws2(plan_info(plan).workspace_bytes);
        EXPECT_EQ(ttl_conv_forward(plan, y.data(), x, copy.data(), b, ws2.data(), ws2.size()), TTL_STATUS_SUCCESS);
        ttl_conv_plan_destroy(plan);
    }
}

// K fits (2^28 floats, allocated but never touched) but the reconstruction's scratch (2^48 floats) cannot be
// allocated: a bound DENSE plan fails with OUT_OF_MEMORY, frees K and leaves *plan untouched.
TEST(ConvPlan, BoundDenseOutOfMemory) {
    if (ttl_test::kSanitized) GTEST_SKIP() << "sanitizer allocators abort instead of returning NULL";
    const int64_t mode = int64_t(1) << 14;
    const ttl_conv_desc_t d = ttl_test::conv_desc({mode, 1}, {mode, 1}, {1, int64_t(1) << 20, 1}, 1, 1);
    ASSERT_EQ(ttl_conv_desc_check(&d), TTL_STATUS_SUCCESS);
    const ttl_conv_shape_t shape{1, 1, 1, NCHW};
    const auto cores = ttl_test::random_vector(16, 9); // never read: allocation fails first
    const ttl_plan_opts_t opts{TTL_ALGO_DENSE, TTL_ORDER_AUTO, cores.data()};
    int marker = 0;
    ttl_conv_plan_t *plan = reinterpret_cast<ttl_conv_plan_t *>(&marker), *untouched = plan;
    EXPECT_EQ(ttl_conv_plan_create(&plan, &d, &shape, &opts), TTL_STATUS_OUT_OF_MEMORY);
    EXPECT_EQ(plan, untouched);
}

TEST(ConvPlan, BoundDenseKeepsTheWeightsItWasCreatedWith) {
    Problem p = make_problem({"kept", {4, 2}, {2, 3}, {3, 2, 1}, 3, 3, 1, 1, 1, 1, 1, 1, 2, 6, 7, NHWC, true});
    const auto ref = reference_output(p);
    const ttl_plan_opts_t opts{TTL_ALGO_DENSE, TTL_ORDER_AUTO, p.cores.data()};
    ttl_conv_plan_t *plan = nullptr;
    ASSERT_EQ(ttl_conv_plan_create(&plan, &p.desc, &p.shape, &opts), TTL_STATUS_SUCCESS);
    for (float &v : p.cores) v = -2.0f * v; // documented: a plan that cached K does not see this
    std::vector<float> y(size_t(p.y_size()), kPoison);
    ASSERT_EQ(run_plan(plan, p, y), TTL_STATUS_SUCCESS);
    EXPECT_LE(rel_err(y, ref), kTol);
    ttl_conv_plan_destroy(plan);
}

} // namespace
