// The DENSE algorithms' plan-time reconstruction of W (TT-FC) and K (TT-conv, both filter layouts) run on the CPU
// through the library's own schedule and element bodies (src/cuda/dense_reconstruct.cuh), split over an odd
// number of emulated threads, against the CPU reconstruction ttl_fc_reconstruct / ttl_conv_reconstruct (itself
// checked against the dense oracle in test_reference.cpp). What stays for the device: cuBLAS and cuDNN.
// Label cpu.
#include <gtest/gtest.h>

#if defined(TTL_WITH_CUDA) && __has_include(<cudnn.h>)
#define TTL_DENSE_EMULATION 1
#endif

#ifdef TTL_DENSE_EMULATION
#include <cmath>
#include <limits>
#include <vector>

#include "common/conv_cases.h"
#include "common/cta_emulator.h" // cta_emu::grid_thread
#include "common/test_util.h"
#include "cuda/dense_reconstruct.cuh"

namespace {

// A grid-stride kernel's threads, one after the other: every element must be written exactly once whatever the
// split, so the outputs start as NaN and an odd thread count leaves uneven shares. The threads run in shuffled
// order (cta_emu::grid_thread): no element may depend on another thread having run first.
constexpr int64_t kThreads = 7;

struct HostExec {
    ttl_status_t merge(float *out, const float *h, const float *g, int64_t rows, int64_t ra, int64_t cols) {
        for (int64_t i = 0; i < kThreads; ++i)
            fc_merge_core(out, h, g, rows, ra, cols, cta_emu::grid_thread(i, kThreads), kThreads);
        return TTL_STATUS_SUCCESS;
    }
    ttl_status_t permute(float *wt, const float *h, const fc_permute_shape &s) {
        for (int64_t i = 0; i < kThreads; ++i) fc_permute(wt, h, s, cta_emu::grid_thread(i, kThreads), kThreads);
        return TTL_STATUS_SUCCESS;
    }
    ttl_status_t step(float *out, const float *prev, const float *core, int64_t s_prev, int64_t c_prev, int64_t sk,
                      int64_t ck, int64_t khkw, int64_t ra, int64_t rb, int krsc) {
        for (int64_t i = 0; i < kThreads; ++i)
            conv_reconstruct_step(out, prev, core, s_prev, c_prev, sk, ck, khkw, ra, rb, krsc,
                                  cta_emu::grid_thread(i, kThreads), kThreads);
        return TTL_STATUS_SUCCESS;
    }
};

std::vector<float> nans(int64_t n) {
    return std::vector<float>(size_t(n), std::numeric_limits<float>::quiet_NaN());
}

struct FcShape {
    std::vector<int64_t> out_modes, in_modes, ranks;
};

const std::vector<FcShape> kFcShapes = {
    {{3}, {5}, {1, 1}},                                              // d = 1: the permute alone
    {{1}, {1}, {1, 1}},                                              // everything 1
    {{2, 3}, {3, 2}, {1, 1, 1}},                                     // rank 1
    {{3, 5}, {7, 2}, {1, 3, 1}},                                     // odd modes
    {{2, 1, 3}, {1, 5, 2}, {1, 2, 3, 1}},                            // modes 1
    {{4, 6, 2, 2}, {2, 8, 4, 16}, {1, 4, 5, 3, 1}},                  // d = 4
    {{2, 3, 2, 2, 2, 2}, {2, 2, 3, 1, 2, 2}, {1, 2, 2, 3, 2, 2, 1}}, // d = 6
    {{4, 6, 8, 8}, {8, 8, 8, 16}, {1, 40, 40, 40, 1}},               // CIFAR-10 TT-FC 8192 -> 1536, rank 40
};

TEST(DenseEmulation, FcReconstructionIsWTransposed) {
    const cta_emu::ScopedOrder shuffled(cta_emu::Order::kShuffled);
    for (const FcShape &f : kFcShapes) {
        const ttl_fc_desc_t d = ttl_test::fc_desc(f.out_modes, f.in_modes, f.ranks);
        SCOPED_TRACE(::testing::Message()
                     << "M " << d.out_features << " N " << d.in_features << " d " << d.num_cores);
        const auto cores = ttl_test::random_vector(ttl_test::fc_param_count(d), 7, 0.7f);
        int64_t offsets[TTL_MAX_CORES];
        for (int k = 0; k < d.num_cores; ++k) ASSERT_EQ(ttl_fc_core_offset(&offsets[k], &d, k), TTL_STATUS_SUCCESS);
        int64_t tmp_elems = 0;
        ASSERT_EQ(fc_reconstruct_tmp_elems(&tmp_elems, &d), TTL_STATUS_SUCCESS);
        auto tmp0 = nans(tmp_elems), tmp1 = nans(tmp_elems), wt = nans(d.out_features * d.in_features);
        HostExec exec;
        ASSERT_EQ(fc_reconstruct_schedule(wt.data(), tmp0.data(), tmp1.data(), &d, cores.data(), offsets, exec),
                  TTL_STATUS_SUCCESS);

        std::vector<float> W(size_t(d.out_features * d.in_features));
        ASSERT_EQ(ttl_fc_reconstruct(W.data(), &d, cores.data()), TTL_STATUS_SUCCESS);
        std::vector<float> want(W.size()); // W^T [N, M]
        for (int64_t i = 0; i < d.out_features; ++i)
            for (int64_t j = 0; j < d.in_features; ++j)
                want[size_t(j * d.out_features + i)] = W[size_t(i * d.in_features + j)];
        EXPECT_LE(ttl_test::rel_err(wt, want), 1e-5);
    }
}

TEST(DenseEmulation, ConvReconstructionIsKInBothFilterLayouts) {
    const cta_emu::ScopedOrder shuffled(cta_emu::Order::kShuffled);
    const auto &cases = ttl_test::cases();
    for (size_t ci = 0; ci < cases.size(); ++ci) {
        const ttl_conv_desc_t d = ttl_test::make_desc(cases[ci]);
        SCOPED_TRACE(cases[ci].name);
        if (int64_t(d.out_channels) * d.in_channels > (int64_t(1) << 20)) continue; // the 512-channel layer: 1 s
        const auto cores = ttl_test::random_vector(ttl_test::conv_param_count(d), 9, 0.7f);
        const int64_t S = d.out_channels, C = d.in_channels, khkw = d.kernel_h * d.kernel_w;
        std::vector<float> K(size_t(S * C * khkw));
        ASSERT_EQ(ttl_conv_reconstruct(K.data(), &d, cores.data()), TTL_STATUS_SUCCESS);
        int64_t tmp_elems = 0;
        ASSERT_EQ(conv_reconstruct_tmp_elems(&tmp_elems, &d), TTL_STATUS_SUCCESS);
        for (int nhwc : {0, 1}) {
            auto tmp0 = nans(tmp_elems), tmp1 = nans(tmp_elems), out = nans(S * C * khkw);
            HostExec exec;
            ASSERT_EQ(conv_reconstruct_schedule(out.data(), tmp0.data(), tmp1.data(), &d, cores.data(), nhwc, exec),
                      TTL_STATUS_SUCCESS);
            std::vector<float> want = K; // [S][C][kh kw]; NHWC wants [S][kh kw][C]
            if (nhwc)
                for (int64_t s = 0; s < S; ++s)
                    for (int64_t c = 0; c < C; ++c)
                        for (int64_t pq = 0; pq < khkw; ++pq)
                            want[size_t((s * khkw + pq) * C + c)] = K[size_t((s * C + c) * khkw + pq)];
            EXPECT_LE(ttl_test::rel_err(out, want), 1e-6) << (nhwc ? "nhwc" : "nchw");
        }
    }
}

} // namespace

#else

TEST(DenseEmulation, Skipped) { GTEST_SKIP() << "built without CUDA headers"; }

#endif
