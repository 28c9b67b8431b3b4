// TT-SVD compression and TT rounding (ttl_fc_compress, ttl_conv_compress, ttl_fc_round, ttl_conv_round).
//
// Every result is reconstructed with the independent dense oracle of test_util.h and compared with the input:
// full ranks recover it exactly; with eps > 0 the error is <= eps, shrinks with eps, and equals the reported
// rel_err; a max-rank cap is respected; rounding a TT with inflated ranks (two half copies, or zero padding)
// recovers the lower ranks. Invalid inputs return their status and leave every output untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/test_util.h"

using namespace ttl_test;

namespace {

constexpr double kFloatTol = 1e-5;  // fp32 reconstruction of an exact decomposition
constexpr double kReportTol = 1e-6; // reported vs measured relative error (the cores are stored in fp32)

// ---- generic TT view of a layer: modes N_k and ranks R_0..R_D, cores [R_k, N_k, R_{k+1}] packed --------------

struct TTShape {
    std::vector<int64_t> modes, ranks;
};

TTShape fc_tt_shape(const ttl_fc_desc_t &d) {
    TTShape s;
    for (int k = 0; k < d.num_cores; ++k) s.modes.push_back(d.out_modes[k] * d.in_modes[k]);
    s.ranks.assign(d.ranks, d.ranks + d.num_cores + 1);
    return s;
}

TTShape conv_tt_shape(const ttl_conv_desc_t &d) {
    TTShape s;
    s.modes.push_back(d.kernel_h * d.kernel_w);
    for (int k = 0; k < d.num_cores; ++k) s.modes.push_back(d.out_modes[k] * d.in_modes[k]);
    s.ranks.push_back(1);
    s.ranks.insert(s.ranks.end(), d.ranks, d.ranks + d.num_cores + 1);
    return s;
}

// Ranks of an exact TT-SVD: min(N_1..N_k, N_{k+1}..N_D).
std::vector<int64_t> full_ranks(const std::vector<int64_t> &modes) {
    std::vector<int64_t> r(modes.size() + 1, 1);
    for (size_t k = 1; k < modes.size(); ++k) {
        int64_t left = 1, right = 1;
        for (size_t j = 0; j < k; ++j) left *= modes[j];
        for (size_t j = k; j < modes.size(); ++j) right *= modes[j];
        r[k] = std::min(left, right);
    }
    return r;
}

// The same tensor with every inner rank doubled: two copies side by side, each last core halved.
std::vector<float> inflate_by_copies(const TTShape &s, const std::vector<float> &cores, TTShape *out) {
    const size_t D = s.modes.size();
    *out = s;
    for (size_t k = 1; k < D; ++k) out->ranks[k] = 2 * s.ranks[k];
    std::vector<float> res;
    const float *g = cores.data();
    for (size_t k = 0; k < D; ++k) {
        const int64_t ra = s.ranks[k], n = s.modes[k], rb = s.ranks[k + 1];
        const int64_t RA = out->ranks[k], RB = out->ranks[k + 1];
        std::vector<float> c(size_t(RA * n * RB), 0.0f);
        for (int copy = 0; copy < 2; ++copy) {
            const int64_t oa = (RA == ra) ? 0 : copy * ra, ob = (RB == rb) ? 0 : copy * rb;
            const float scale = (D > 1 && k == D - 1) ? 0.5f : 1.0f;
            for (int64_t a = 0; a < ra; ++a)
                for (int64_t x = 0; x < n; ++x)
                    for (int64_t b = 0; b < rb; ++b)
                        c[((oa + a) * n + x) * RB + ob + b] = scale * g[(a * n + x) * rb + b];
            if (D == 1) break;
        }
        res.insert(res.end(), c.begin(), c.end());
        g += ra * n * rb;
    }
    return res;
}

// The same tensor with `extra` zero rows/columns added to every inner rank.
std::vector<float> inflate_by_zeros(const TTShape &s, const std::vector<float> &cores, int64_t extra,
                                    TTShape *out) {
    const size_t D = s.modes.size();
    *out = s;
    for (size_t k = 1; k < D; ++k) out->ranks[k] = s.ranks[k] + extra;
    std::vector<float> res;
    const float *g = cores.data();
    for (size_t k = 0; k < D; ++k) {
        const int64_t ra = s.ranks[k], n = s.modes[k], rb = s.ranks[k + 1], RB = out->ranks[k + 1];
        std::vector<float> c(size_t(out->ranks[k] * n * RB), 0.0f);
        for (int64_t a = 0; a < ra; ++a)
            for (int64_t x = 0; x < n; ++x)
                for (int64_t b = 0; b < rb; ++b) c[(a * n + x) * RB + b] = g[(a * n + x) * rb + b];
        res.insert(res.end(), c.begin(), c.end());
        g += ra * n * rb;
    }
    return res;
}

void set_fc_ranks(ttl_fc_desc_t *d, const TTShape &s) {
    for (size_t k = 0; k < s.ranks.size(); ++k) d->ranks[k] = s.ranks[k];
}
void set_conv_ranks(ttl_conv_desc_t *d, const TTShape &s) {
    for (size_t k = 1; k < s.ranks.size(); ++k) d->ranks[k - 1] = s.ranks[k];
}

// ||A - ref|| / ||ref||, A in double (the oracle), ref in float (the input).
double measured(const std::vector<double> &A, const std::vector<float> &ref) {
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        num += (A[i] - ref[i]) * (A[i] - ref[i]);
        den += double(ref[i]) * ref[i];
    }
    return std::sqrt(num / den);
}
double measured(const std::vector<double> &A, const std::vector<double> &ref) {
    return measured(A, std::vector<float>(ref.begin(), ref.end()));
}

double frobenius(const std::vector<float> &v) {
    double s = 0;
    for (float x : v) s += double(x) * x;
    return std::sqrt(s);
}

// Dense + noise of relative size `noise`.
std::vector<float> add_noise(const std::vector<double> &dense, double noise, uint64_t seed) {
    std::vector<float> W = to_float(dense);
    auto n = random_vector(int64_t(W.size()), seed);
    const double scale = noise * frobenius(W) / frobenius(n);
    for (size_t i = 0; i < W.size(); ++i) W[i] = float(W[i] + scale * n[i]);
    return W;
}

// Owns the cores a compression call returns.
struct Cores {
    float *p = nullptr;
    ~Cores() { ttl_free(p); }
};

int64_t max_inner(const std::vector<int64_t> &ranks) {
    int64_t r = 1;
    for (size_t k = 1; k + 1 < ranks.size(); ++k) r = std::max(r, ranks[k]);
    return r;
}

const std::vector<double> kEpsDescending = {0.5, 0.2, 0.1, 0.03, 0.01, 3e-3, 1e-3, 3e-4, 1e-4, 0.0};

// ---- FC shapes: d = 1..5, modes including 1 and primes ----------------------------------------------------------

struct FcShape {
    std::vector<int64_t> out, in;
};

const std::vector<FcShape> kFcShapes = {
    {{3}, {5}},
    {{2, 3}, {4, 1}},
    {{7, 1}, {2, 5}},
    {{2, 1, 3}, {3, 5, 2}},
    {{4, 4, 4}, {4, 4, 4}},
    {{2, 2, 2, 2}, {3, 1, 2, 2}},
    {{1, 2, 3, 2, 2}, {2, 2, 1, 3, 2}},
};

std::vector<int64_t> uniform_ranks(size_t d, int64_t r) {
    std::vector<int64_t> ranks(d + 1, r);
    ranks.front() = ranks.back() = 1;
    return ranks;
}

class FcCompress : public ::testing::TestWithParam<FcShape> {
  protected:
    ttl_fc_desc_t shape() const { return fc_desc(GetParam().out, GetParam().in, uniform_ranks(d(), 1)); }
    size_t d() const { return GetParam().out.size(); }
    // A random TT of the given inner rank and its dense matrix.
    ttl_fc_desc_t random_tt(int64_t r, uint64_t seed, std::vector<float> *cores) const {
        ttl_fc_desc_t t = fc_desc(GetParam().out, GetParam().in, uniform_ranks(d(), r));
        *cores = random_vector(fc_param_count(t), seed);
        return t;
    }
};

// ---------------------------------------------------------------------------------------------------------------
// FC TT-SVD
// ---------------------------------------------------------------------------------------------------------------

TEST_P(FcCompress, FullRanksAreExact) {
    const ttl_fc_desc_t s = shape();
    const auto W = random_vector(s.out_features * s.in_features, 11);
    ttl_fc_desc_t t;
    Cores c;
    ttl_compress_report_t rep;
    const ttl_compress_opts_t opts{0.0, 0};
    ASSERT_EQ(ttl_fc_compress(&t, &c.p, &rep, &s, W.data(), &opts), TTL_STATUS_SUCCESS);
    const auto expect = full_ranks(fc_tt_shape(s).modes);
    EXPECT_EQ(std::vector<int64_t>(t.ranks, t.ranks + t.num_cores + 1), expect);
    EXPECT_EQ(t.out_features, s.out_features);
    EXPECT_EQ(t.in_features, s.in_features);
    EXPECT_EQ(t.num_cores, s.num_cores);
    EXPECT_EQ(ttl_fc_desc_check(&t), TTL_STATUS_SUCCESS);
    EXPECT_LE(measured(oracle_fc_dense(t, c.p), W), kFloatTol);
    EXPECT_EQ(rep.rel_err, 0.0);
    EXPECT_NEAR(rep.norm, frobenius(W), 1e-9 * frobenius(W));
    EXPECT_EQ(rep.params, fc_param_count(t));
    EXPECT_EQ(rep.max_rank, max_inner(expect));
}

TEST_P(FcCompress, ErrorWithinEpsAndShrinkingWithEps) {
    std::vector<float> g;
    const ttl_fc_desc_t truth = random_tt(2, 21, &g);
    const auto W = add_noise(oracle_fc_dense(truth, g.data()), 1e-3, 22);
    const ttl_fc_desc_t s = shape();
    double previous = INFINITY;
    for (double eps : kEpsDescending) {
        ttl_fc_desc_t t;
        Cores c;
        ttl_compress_report_t rep;
        const ttl_compress_opts_t opts{eps, 0};
        ASSERT_EQ(ttl_fc_compress(&t, &c.p, &rep, &s, W.data(), &opts), TTL_STATUS_SUCCESS);
        const double err = measured(oracle_fc_dense(t, c.p), W);
        EXPECT_LE(err, eps + kReportTol) << "eps " << eps;
        EXPECT_NEAR(rep.rel_err, err, kReportTol) << "eps " << eps;
        EXPECT_LE(err, previous + kReportTol) << "eps " << eps;
        previous = err;
        EXPECT_EQ(rep.params, fc_param_count(t));
        EXPECT_EQ(rep.max_rank, max_inner(std::vector<int64_t>(t.ranks, t.ranks + t.num_cores + 1)));
        // Noise is 1e-3 of the norm: at 10x that, TT-SVD finds (at most) the true ranks.
        if (eps == 0.01)
            for (int k = 0; k <= t.num_cores; ++k) EXPECT_LE(t.ranks[k], truth.ranks[k]) << "rank " << k;
    }
}

TEST_P(FcCompress, MaxRankCapIsRespected) {
    const ttl_fc_desc_t s = shape();
    const auto W = random_vector(s.out_features * s.in_features, 31);
    for (int64_t cap : {1, 2, 3}) {
        for (double eps : {0.0, 0.2}) {
            ttl_fc_desc_t t;
            Cores c;
            ttl_compress_report_t rep;
            const ttl_compress_opts_t opts{eps, cap};
            ASSERT_EQ(ttl_fc_compress(&t, &c.p, &rep, &s, W.data(), &opts), TTL_STATUS_SUCCESS);
            const std::vector<int64_t> ranks(t.ranks, t.ranks + t.num_cores + 1);
            for (int64_t r : ranks) EXPECT_LE(r, cap);
            EXPECT_EQ(rep.max_rank, max_inner(ranks));
            EXPECT_LE(rep.max_rank, cap);
            EXPECT_NEAR(rep.rel_err, measured(oracle_fc_dense(t, c.p), W), kReportTol);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// FC rounding
// ---------------------------------------------------------------------------------------------------------------

TEST_P(FcCompress, RoundingRecoversInflatedRanks) {
    std::vector<float> g;
    const ttl_fc_desc_t truth = random_tt(2, 41, &g);
    const auto dense = oracle_fc_dense(truth, g.data());
    const TTShape base = fc_tt_shape(truth);
    for (int how = 0; how < 2; ++how) {
        TTShape big;
        const auto cores = how == 0 ? inflate_by_copies(base, g, &big) : inflate_by_zeros(base, g, 3, &big);
        ttl_fc_desc_t in = truth;
        set_fc_ranks(&in, big);
        ASSERT_LE(measured(oracle_fc_dense(in, cores.data()), dense), kFloatTol); // the inflation is exact

        ttl_fc_desc_t t;
        Cores c;
        ttl_compress_report_t rep;
        const ttl_compress_opts_t opts{1e-5, 0};
        ASSERT_EQ(ttl_fc_round(&t, &c.p, &rep, &in, cores.data(), &opts), TTL_STATUS_SUCCESS);
        for (int k = 0; k <= t.num_cores; ++k) EXPECT_LE(t.ranks[k], truth.ranks[k]) << "rank " << k;
        EXPECT_LE(measured(oracle_fc_dense(t, c.p), dense), kFloatTol);
        EXPECT_LE(rep.rel_err, 1e-5);
        EXPECT_NEAR(rep.norm, frobenius(to_float(dense)), 1e-5 * rep.norm);
        EXPECT_EQ(rep.params, fc_param_count(t));
    }
}

TEST_P(FcCompress, RoundingErrorWithinEps) {
    std::vector<float> g;
    const ttl_fc_desc_t in = random_tt(5, 51, &g);
    const auto dense = oracle_fc_dense(in, g.data());
    double previous = INFINITY;
    for (double eps : kEpsDescending) {
        ttl_fc_desc_t t;
        Cores c;
        ttl_compress_report_t rep;
        const ttl_compress_opts_t opts{eps, 0};
        ASSERT_EQ(ttl_fc_round(&t, &c.p, &rep, &in, g.data(), &opts), TTL_STATUS_SUCCESS);
        const double err = measured(oracle_fc_dense(t, c.p), dense);
        EXPECT_LE(err, eps + kReportTol) << "eps " << eps;
        EXPECT_NEAR(rep.rel_err, err, kReportTol) << "eps " << eps;
        EXPECT_LE(err, previous + kReportTol) << "eps " << eps;
        previous = err;
        for (int k = 0; k <= t.num_cores; ++k) EXPECT_LE(t.ranks[k], in.ranks[k]);
    }
    // And with a cap.
    ttl_fc_desc_t t;
    Cores c;
    ttl_compress_report_t rep;
    const ttl_compress_opts_t opts{0.0, 2};
    ASSERT_EQ(ttl_fc_round(&t, &c.p, &rep, &in, g.data(), &opts), TTL_STATUS_SUCCESS);
    for (int k = 0; k <= t.num_cores; ++k) EXPECT_LE(t.ranks[k], 2);
    EXPECT_NEAR(rep.rel_err, measured(oracle_fc_dense(t, c.p), dense), kReportTol);
}

INSTANTIATE_TEST_SUITE_P(Shapes, FcCompress, ::testing::ValuesIn(kFcShapes));

// ---------------------------------------------------------------------------------------------------------------
// conv: several geometries
// ---------------------------------------------------------------------------------------------------------------

struct ConvShape {
    std::vector<int64_t> out, in;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
};

const std::vector<ConvShape> kConvShapes = {
    {{1}, {5}, 2, 2, 1, 1, 0, 0, 1, 1},
    {{2}, {3}, 3, 3, 1, 1, 1, 1, 1, 1},
    {{2, 3}, {2, 2}, 1, 1, 1, 1, 0, 0, 1, 1},
    {{4, 2}, {1, 3}, 1, 3, 2, 1, 1, 0, 2, 1},
    {{2, 1, 2}, {3, 2, 1}, 5, 2, 1, 2, 2, 1, 1, 3},
    {{2, 2, 1, 2}, {1, 2, 3, 2}, 3, 3, 2, 2, 1, 1, 1, 1},
};

class ConvCompress : public ::testing::TestWithParam<ConvShape> {
  protected:
    ttl_conv_desc_t desc(int64_t r) const {
        const auto &p = GetParam();
        std::vector<int64_t> ranks(p.out.size() + 1, r);
        ranks.back() = 1;
        return conv_desc(p.out, p.in, ranks, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw);
    }
    int64_t dense_size() const {
        const ttl_conv_desc_t d = desc(1);
        return d.out_channels * d.in_channels * d.kernel_h * d.kernel_w;
    }
};

TEST_P(ConvCompress, FullRanksAreExact) {
    const ttl_conv_desc_t s = desc(1);
    const auto K = random_vector(dense_size(), 61);
    ttl_conv_desc_t t;
    Cores c;
    ttl_compress_report_t rep;
    const ttl_compress_opts_t opts{0.0, 0};
    ASSERT_EQ(ttl_conv_compress(&t, &c.p, &rep, &s, K.data(), &opts), TTL_STATUS_SUCCESS);
    EXPECT_EQ(conv_tt_shape(t).ranks, full_ranks(conv_tt_shape(s).modes));
    EXPECT_EQ(ttl_conv_desc_check(&t), TTL_STATUS_SUCCESS);
    // Geometry comes from the shape.
    EXPECT_EQ(t.kernel_h, s.kernel_h);
    EXPECT_EQ(t.kernel_w, s.kernel_w);
    EXPECT_EQ(t.stride_h, s.stride_h);
    EXPECT_EQ(t.stride_w, s.stride_w);
    EXPECT_EQ(t.pad_h, s.pad_h);
    EXPECT_EQ(t.pad_w, s.pad_w);
    EXPECT_EQ(t.dilation_h, s.dilation_h);
    EXPECT_EQ(t.dilation_w, s.dilation_w);
    EXPECT_EQ(t.out_channels, s.out_channels);
    EXPECT_EQ(t.in_channels, s.in_channels);
    EXPECT_LE(measured(oracle_conv_dense(t, c.p), K), kFloatTol);
    EXPECT_EQ(rep.rel_err, 0.0);
    EXPECT_EQ(rep.params, conv_param_count(t));
    EXPECT_EQ(rep.max_rank, max_inner(conv_tt_shape(t).ranks));
}

TEST_P(ConvCompress, ErrorWithinEpsAndCapRespected) {
    const ttl_conv_desc_t truth = desc(2);
    const auto g = random_vector(conv_param_count(truth), 71);
    const auto K = add_noise(oracle_conv_dense(truth, g.data()), 1e-3, 72);
    const ttl_conv_desc_t s = desc(1);
    double previous = INFINITY;
    for (double eps : kEpsDescending) {
        ttl_conv_desc_t t;
        Cores c;
        ttl_compress_report_t rep;
        const ttl_compress_opts_t opts{eps, 0};
        ASSERT_EQ(ttl_conv_compress(&t, &c.p, &rep, &s, K.data(), &opts), TTL_STATUS_SUCCESS);
        const double err = measured(oracle_conv_dense(t, c.p), K);
        EXPECT_LE(err, eps + kReportTol) << "eps " << eps;
        EXPECT_NEAR(rep.rel_err, err, kReportTol) << "eps " << eps;
        EXPECT_LE(err, previous + kReportTol) << "eps " << eps;
        previous = err;
        if (eps == 0.01)
            for (int k = 0; k <= t.num_cores; ++k) EXPECT_LE(t.ranks[k], truth.ranks[k]) << "rank " << k;
    }
    ttl_conv_desc_t t;
    Cores c;
    ttl_compress_report_t rep;
    const ttl_compress_opts_t opts{0.0, 1};
    ASSERT_EQ(ttl_conv_compress(&t, &c.p, &rep, &s, K.data(), &opts), TTL_STATUS_SUCCESS);
    for (int k = 0; k <= t.num_cores; ++k) EXPECT_EQ(t.ranks[k], 1);
    EXPECT_EQ(rep.max_rank, 1);
    EXPECT_NEAR(rep.rel_err, measured(oracle_conv_dense(t, c.p), K), kReportTol);
}

TEST_P(ConvCompress, RoundingRecoversInflatedRanksAndKeepsEps) {
    const ttl_conv_desc_t truth = desc(2);
    const auto g = random_vector(conv_param_count(truth), 81);
    const auto dense = oracle_conv_dense(truth, g.data());
    const TTShape base = conv_tt_shape(truth);
    for (int how = 0; how < 2; ++how) {
        TTShape big;
        const auto cores = how == 0 ? inflate_by_copies(base, g, &big) : inflate_by_zeros(base, g, 2, &big);
        ttl_conv_desc_t in = truth;
        set_conv_ranks(&in, big);
        ASSERT_LE(measured(oracle_conv_dense(in, cores.data()), dense), kFloatTol);
        ttl_conv_desc_t t;
        Cores c;
        ttl_compress_report_t rep;
        const ttl_compress_opts_t opts{1e-5, 0};
        ASSERT_EQ(ttl_conv_round(&t, &c.p, &rep, &in, cores.data(), &opts), TTL_STATUS_SUCCESS);
        for (int k = 0; k <= t.num_cores; ++k) EXPECT_LE(t.ranks[k], truth.ranks[k]) << "rank " << k;
        EXPECT_LE(measured(oracle_conv_dense(t, c.p), dense), kFloatTol);
        EXPECT_EQ(t.stride_h, truth.stride_h);
        EXPECT_EQ(t.dilation_w, truth.dilation_w);
    }
    for (double eps : {0.3, 0.1, 0.01}) {
        ttl_conv_desc_t t;
        Cores c;
        ttl_compress_report_t rep;
        const ttl_compress_opts_t opts{eps, 0};
        ASSERT_EQ(ttl_conv_round(&t, &c.p, &rep, &truth, g.data(), &opts), TTL_STATUS_SUCCESS);
        const double err = measured(oracle_conv_dense(t, c.p), dense);
        EXPECT_LE(err, eps + kReportTol);
        EXPECT_NEAR(rep.rel_err, err, kReportTol);
    }
}

INSTANTIATE_TEST_SUITE_P(Geometries, ConvCompress, ::testing::ValuesIn(kConvShapes));

// ---------------------------------------------------------------------------------------------------------------
// special inputs
// ---------------------------------------------------------------------------------------------------------------

TEST(Compress, ZeroTensorGivesRankOneZeroCores) {
    const ttl_fc_desc_t s = fc_desc({2, 3, 2}, {2, 2, 3}, {1, 1, 1, 1});
    const std::vector<float> W(size_t(s.out_features * s.in_features), 0.0f);
    for (double eps : {0.0, 0.1}) {
        ttl_fc_desc_t t;
        Cores c;
        ttl_compress_report_t rep;
        const ttl_compress_opts_t opts{eps, 0};
        ASSERT_EQ(ttl_fc_compress(&t, &c.p, &rep, &s, W.data(), &opts), TTL_STATUS_SUCCESS);
        for (int k = 0; k <= t.num_cores; ++k) EXPECT_EQ(t.ranks[k], 1);
        EXPECT_EQ(rep.rel_err, 0.0);
        EXPECT_EQ(rep.norm, 0.0);
        EXPECT_EQ(rep.max_rank, 1);
        for (int64_t i = 0; i < fc_param_count(t); ++i) EXPECT_EQ(c.p[i], 0.0f);
    }
    // Rounding a zero TT.
    const ttl_fc_desc_t z = fc_desc({2, 3, 2}, {2, 2, 3}, {1, 3, 2, 1});
    const std::vector<float> zc(size_t(fc_param_count(z)), 0.0f);
    ttl_fc_desc_t t;
    Cores c;
    ttl_compress_report_t rep;
    const ttl_compress_opts_t opts{0.0, 0};
    ASSERT_EQ(ttl_fc_round(&t, &c.p, &rep, &z, zc.data(), &opts), TTL_STATUS_SUCCESS);
    for (int k = 0; k <= t.num_cores; ++k) EXPECT_EQ(t.ranks[k], 1);
    EXPECT_EQ(rep.rel_err, 0.0);
}

TEST(Compress, ReportMayBeNull) {
    const ttl_fc_desc_t s = fc_desc({2, 3}, {3, 2}, {1, 1, 1});
    const auto W = random_vector(36, 91);
    ttl_fc_desc_t t;
    Cores c;
    const ttl_compress_opts_t opts{0.1, 0};
    EXPECT_EQ(ttl_fc_compress(&t, &c.p, nullptr, &s, W.data(), &opts), TTL_STATUS_SUCCESS);
    ttl_fc_desc_t t2;
    Cores c2;
    EXPECT_EQ(ttl_fc_round(&t2, &c2.p, nullptr, &t, c.p, &opts), TTL_STATUS_SUCCESS);
}

// A layer big enough for the tall-thin SVD path (the 1536 -> 512 TT-FC of the paper), capped so the oracle is
// cheap.
TEST(Compress, PaperLayerWithRankCap) {
    const ttl_fc_desc_t s = fc_desc({4, 4, 4, 8}, {4, 6, 8, 8}, {1, 1, 1, 1, 1});
    std::vector<float> g;
    const ttl_fc_desc_t truth = fc_desc({4, 4, 4, 8}, {4, 6, 8, 8}, {1, 3, 3, 3, 1});
    g = random_vector(fc_param_count(truth), 95);
    const auto W = add_noise(oracle_fc_dense(truth, g.data()), 0.01, 96);
    ttl_fc_desc_t t;
    Cores c;
    ttl_compress_report_t rep;
    const ttl_compress_opts_t opts{0.05, 4};
    ASSERT_EQ(ttl_fc_compress(&t, &c.p, &rep, &s, W.data(), &opts), TTL_STATUS_SUCCESS);
    EXPECT_EQ(std::vector<int64_t>(t.ranks, t.ranks + 5), (std::vector<int64_t>{1, 3, 3, 3, 1}));
    const double err = measured(oracle_fc_dense(t, c.p), W);
    EXPECT_LE(err, 0.05);
    EXPECT_NEAR(rep.rel_err, err, kReportTol);
}

// TTL_MAX_CORES cores (conv: one more TT core, the spatial one), mostly modes of 1 so the oracle stays cheap.
TEST(Compress, MaxCores) {
    std::vector<int64_t> out(TTL_MAX_CORES, 1), in(TTL_MAX_CORES, 1);
    out[0] = out[5] = out[15] = 2;
    in[3] = in[9] = 2;
    in[12] = 3;
    const ttl_fc_desc_t s = fc_desc(out, in, uniform_ranks(TTL_MAX_CORES, 1));
    const auto W = random_vector(s.out_features * s.in_features, 131);
    for (double eps : {0.0, 0.1}) {
        ttl_fc_desc_t t;
        Cores c;
        ttl_compress_report_t rep;
        const ttl_compress_opts_t opts{eps, 0};
        ASSERT_EQ(ttl_fc_compress(&t, &c.p, &rep, &s, W.data(), &opts), TTL_STATUS_SUCCESS);
        const double err = measured(oracle_fc_dense(t, c.p), W);
        EXPECT_LE(err, std::max(eps, kFloatTol));
        EXPECT_NEAR(rep.rel_err, err, kReportTol);
        ttl_fc_desc_t r;
        Cores rc;
        ASSERT_EQ(ttl_fc_round(&r, &rc.p, &rep, &t, c.p, &opts), TTL_STATUS_SUCCESS);
        EXPECT_LE(measured(oracle_fc_dense(r, rc.p), W), eps + err + kReportTol);
    }
    const ttl_conv_desc_t cs = conv_desc(out, in, uniform_ranks(TTL_MAX_CORES, 1), 3, 2);
    const auto K = random_vector(cs.out_channels * cs.in_channels * 6, 132);
    ttl_conv_desc_t t;
    Cores c;
    ttl_compress_report_t rep;
    const ttl_compress_opts_t opts{0.0, 0};
    ASSERT_EQ(ttl_conv_compress(&t, &c.p, &rep, &cs, K.data(), &opts), TTL_STATUS_SUCCESS);
    EXPECT_LE(measured(oracle_conv_dense(t, c.p), K), kFloatTol);
    ttl_conv_desc_t r;
    Cores rc;
    ASSERT_EQ(ttl_conv_round(&r, &rc.p, &rep, &t, c.p, &opts), TTL_STATUS_SUCCESS);
    EXPECT_LE(measured(oracle_conv_dense(r, rc.p), K), kFloatTol);
}

// ---------------------------------------------------------------------------------------------------------------
// invalid inputs
// ---------------------------------------------------------------------------------------------------------------

// Poisoned outputs that a failing call must leave alone.
template <typename Desc> struct Outputs {
    Desc desc;
    float *cores = reinterpret_cast<float *>(uintptr_t(0x5151));
    ttl_compress_report_t rep;
    Outputs() {
        std::memset(&desc, 0x5a, sizeof(desc));
        std::memset(&rep, 0xa5, sizeof(rep));
    }
    bool untouched() const {
        Outputs fresh;
        return std::memcmp(&desc, &fresh.desc, sizeof(desc)) == 0 && cores == fresh.cores &&
               std::memcmp(&rep, &fresh.rep, sizeof(rep)) == 0;
    }
};

TEST(CompressInvalid, FcCompress) {
    const ttl_fc_desc_t s = fc_desc({2, 3}, {3, 2}, {1, 1, 1});
    const auto W = random_vector(36, 101);
    const ttl_compress_opts_t ok{0.1, 0};
    auto expect = [&](ttl_status_t want, const ttl_fc_desc_t *shape, const float *w, const ttl_compress_opts_t *o) {
        Outputs<ttl_fc_desc_t> out;
        EXPECT_EQ(ttl_fc_compress(&out.desc, &out.cores, &out.rep, shape, w, o), want);
        EXPECT_TRUE(out.untouched());
    };
    Outputs<ttl_fc_desc_t> out;
    EXPECT_EQ(ttl_fc_compress(nullptr, &out.cores, &out.rep, &s, W.data(), &ok), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_compress(&out.desc, nullptr, &out.rep, &s, W.data(), &ok), TTL_STATUS_NULL_POINTER);
    EXPECT_TRUE(out.untouched());
    expect(TTL_STATUS_NULL_POINTER, nullptr, W.data(), &ok);
    expect(TTL_STATUS_NULL_POINTER, &s, nullptr, &ok);
    expect(TTL_STATUS_NULL_POINTER, &s, W.data(), nullptr);

    ttl_fc_desc_t bad = s;
    bad.out_features = 7;
    expect(TTL_STATUS_BAD_MODES, &bad, W.data(), &ok);
    bad = s;
    bad.in_modes[1] = 0;
    expect(TTL_STATUS_BAD_SIZE, &bad, W.data(), &ok);
    bad = s;
    bad.num_cores = 0;
    expect(TTL_STATUS_BAD_SIZE, &bad, W.data(), &ok);
    bad = s;
    bad.num_cores = TTL_MAX_CORES + 1;
    expect(TTL_STATUS_BAD_SIZE, &bad, W.data(), &ok);
    bad = s;
    bad.ranks[1] = -3; // ranks are ignored
    Outputs<ttl_fc_desc_t> o2;
    EXPECT_EQ(ttl_fc_compress(&o2.desc, &o2.cores, &o2.rep, &bad, W.data(), &ok), TTL_STATUS_SUCCESS);
    ttl_free(o2.cores);

    for (double eps : {-0.1, 1.0, 2.0, double(NAN), double(INFINITY)}) {
        const ttl_compress_opts_t o{eps, 0};
        expect(TTL_STATUS_BAD_ARGUMENT, &s, W.data(), &o);
    }
    const ttl_compress_opts_t neg{0.1, -1};
    expect(TTL_STATUS_BAD_ARGUMENT, &s, W.data(), &neg);

    for (float poison : {NAN, INFINITY, -INFINITY}) {
        auto Wn = W;
        Wn[17] = poison;
        expect(TTL_STATUS_NUMERICAL, &s, Wn.data(), &ok);
    }
}

TEST(CompressInvalid, ConvCompress) {
    const ttl_conv_desc_t s = conv_desc({2, 2}, {3, 1}, {1, 1, 1}, 3, 3);
    const auto K = random_vector(4 * 3 * 9, 111);
    const ttl_compress_opts_t ok{0.0, 0};
    auto expect = [&](ttl_status_t want, const ttl_conv_desc_t *shape, const float *k,
                      const ttl_compress_opts_t *o) {
        Outputs<ttl_conv_desc_t> out;
        EXPECT_EQ(ttl_conv_compress(&out.desc, &out.cores, &out.rep, shape, k, o), want);
        EXPECT_TRUE(out.untouched());
    };
    Outputs<ttl_conv_desc_t> out;
    EXPECT_EQ(ttl_conv_compress(nullptr, &out.cores, &out.rep, &s, K.data(), &ok), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_compress(&out.desc, nullptr, &out.rep, &s, K.data(), &ok), TTL_STATUS_NULL_POINTER);
    EXPECT_TRUE(out.untouched());
    expect(TTL_STATUS_NULL_POINTER, nullptr, K.data(), &ok);
    expect(TTL_STATUS_NULL_POINTER, &s, nullptr, &ok);
    expect(TTL_STATUS_NULL_POINTER, &s, K.data(), nullptr);
    ttl_conv_desc_t bad = s;
    bad.in_channels = 4;
    expect(TTL_STATUS_BAD_MODES, &bad, K.data(), &ok);
    bad = s;
    bad.kernel_w = 0;
    expect(TTL_STATUS_BAD_SIZE, &bad, K.data(), &ok);
    bad = s;
    bad.stride_h = 0;
    expect(TTL_STATUS_BAD_SIZE, &bad, K.data(), &ok);
    const ttl_compress_opts_t big{1.0, 0}, neg{0.0, -2};
    expect(TTL_STATUS_BAD_ARGUMENT, &s, K.data(), &big);
    expect(TTL_STATUS_BAD_ARGUMENT, &s, K.data(), &neg);
    auto Kn = K;
    Kn.back() = NAN;
    expect(TTL_STATUS_NUMERICAL, &s, Kn.data(), &ok);
}

TEST(CompressInvalid, Round) {
    const ttl_fc_desc_t d = fc_desc({2, 3}, {3, 2}, {1, 2, 1});
    const auto g = random_vector(fc_param_count(d), 121);
    const ttl_compress_opts_t ok{0.1, 0};
    auto expect = [&](ttl_status_t want, const ttl_fc_desc_t *desc, const float *cores,
                      const ttl_compress_opts_t *o) {
        Outputs<ttl_fc_desc_t> out;
        EXPECT_EQ(ttl_fc_round(&out.desc, &out.cores, &out.rep, desc, cores, o), want);
        EXPECT_TRUE(out.untouched());
    };
    Outputs<ttl_fc_desc_t> out;
    EXPECT_EQ(ttl_fc_round(nullptr, &out.cores, &out.rep, &d, g.data(), &ok), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_round(&out.desc, nullptr, &out.rep, &d, g.data(), &ok), TTL_STATUS_NULL_POINTER);
    EXPECT_TRUE(out.untouched());
    expect(TTL_STATUS_NULL_POINTER, nullptr, g.data(), &ok);
    expect(TTL_STATUS_NULL_POINTER, &d, nullptr, &ok);
    expect(TTL_STATUS_NULL_POINTER, &d, g.data(), nullptr);
    ttl_fc_desc_t bad = d;
    bad.ranks[0] = 2;
    expect(TTL_STATUS_BAD_RANKS, &bad, g.data(), &ok);
    bad = d;
    bad.ranks[1] = 0;
    expect(TTL_STATUS_BAD_SIZE, &bad, g.data(), &ok);
    bad = d;
    bad.in_features = 5;
    expect(TTL_STATUS_BAD_MODES, &bad, g.data(), &ok);
    const ttl_compress_opts_t neg{-1e-3, 0}, negr{0.1, -1};
    expect(TTL_STATUS_BAD_ARGUMENT, &d, g.data(), &neg);
    expect(TTL_STATUS_BAD_ARGUMENT, &d, g.data(), &negr);
    auto gn = g;
    gn[3] = NAN;
    expect(TTL_STATUS_NUMERICAL, &d, gn.data(), &ok);

    // conv
    const ttl_conv_desc_t cd = conv_desc({2}, {3}, {2, 1}, 3, 1);
    const auto cg = random_vector(conv_param_count(cd), 122);
    Outputs<ttl_conv_desc_t> cout;
    EXPECT_EQ(ttl_conv_round(&cout.desc, &cout.cores, &cout.rep, nullptr, cg.data(), &ok), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_conv_round(&cout.desc, &cout.cores, &cout.rep, &cd, nullptr, &ok), TTL_STATUS_NULL_POINTER);
    ttl_conv_desc_t cbad = cd;
    cbad.ranks[1] = 2;
    EXPECT_EQ(ttl_conv_round(&cout.desc, &cout.cores, &cout.rep, &cbad, cg.data(), &ok), TTL_STATUS_BAD_RANKS);
    const ttl_compress_opts_t one{1.0, 0};
    EXPECT_EQ(ttl_conv_round(&cout.desc, &cout.cores, &cout.rep, &cd, cg.data(), &one), TTL_STATUS_BAD_ARGUMENT);
    auto cgn = cg;
    cgn[0] = INFINITY; // in the spatial core
    EXPECT_EQ(ttl_conv_round(&cout.desc, &cout.cores, &cout.rep, &cd, cgn.data(), &ok), TTL_STATUS_NUMERICAL);
    EXPECT_TRUE(cout.untouched());
}

} // namespace
