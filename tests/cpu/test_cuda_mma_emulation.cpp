// The 3xTF32 tensor-core pieces on the CPU: TF32 rounding and splitting (src/cuda/mma_tf32.cuh), the emulated
// warp-wide mma.sync.m16n8k8 (tests/common/cta_emulator.h), and the TT-conv step built on them (tt_step_mma in
// src/cuda/conv_tt.cuh) against a double-precision product, on odd step shapes, every tile form, with and
// without accumulation, in every thread order. The fused and chunked TT-conv schedules with these steps are in
// test_cuda_conv_emulation.cpp; the device runs them in tests/gpu/test_cuda_conv.cpp. Label cpu.
#include <gtest/gtest.h>

#if defined(TTL_WITH_CUDA) && __has_include(<cudnn.h>)
#define TTL_MMA_EMULATION 1
#endif

#ifdef TTL_MMA_EMULATION
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common/cta_emulator.h" // before the kernel code: it defines CTA_HOST_EMULATION and the hooks
#include "common/test_util.h"
#include "common/thread_order_check.h"
#include "cuda/conv_tt.cuh"

using namespace ttl_test;

namespace {

float bits_to_float(uint32_t u) {
    float v;
    std::memcpy(&v, &u, sizeof(v));
    return v;
}
uint32_t float_to_bits(float v) {
    uint32_t u;
    std::memcpy(&u, &v, sizeof(u));
    return u;
}

// The host rounds as sm_90's cvt.rn.tf32.f32 does (sm_80's cvt.rna differs only on ties: away from zero).
TEST(Tf32, RoundsToNearestTiesToEven) {
    const float unit = std::ldexp(1.0f, -10); // TF32's last fraction bit at 1.0
    EXPECT_EQ(bits_to_float(tf32_round(1.0f)), 1.0f);
    EXPECT_EQ(bits_to_float(tf32_round(1.0f + unit / 4)), 1.0f);                      // below half: down
    EXPECT_EQ(bits_to_float(tf32_round(1.0f + unit / 2)), 1.0f);                      // a tie: to even (down)
    EXPECT_EQ(bits_to_float(tf32_round(1.0f + 3 * unit / 2)), 1.0f + 2 * unit);       // a tie: to even (up)
    EXPECT_EQ(bits_to_float(tf32_round(-(1.0f + 3 * unit / 2))), -(1.0f + 2 * unit)); // on both sides
    EXPECT_EQ(bits_to_float(tf32_round(1.0f + 3 * unit / 4)), 1.0f + unit);           // above half: up
    EXPECT_EQ(bits_to_float(tf32_round(2.0f - unit / 2)), 2.0f);                      // carries into the exponent
    EXPECT_EQ(bits_to_float(tf32_round(INFINITY)), INFINITY);
    EXPECT_TRUE(std::isnan(bits_to_float(tf32_round(bits_to_float(0x7f800001u))))) << "a NaN must not become Inf";
    EXPECT_EQ(float_to_bits(bits_to_float(tf32_round(0.3f))) & 0x1fffu, 0u) << "13 low bits cleared";
}

// hi + lo keeps v to 2^-22 of its size (the tail's own rounding), where one TF32 value keeps 2^-11.
TEST(Tf32, SplitKeepsTwentyTwoBits) {
    const std::vector<float> v = random_vector(10000, 11, 1000.0f);
    double worst_split = 0, worst_one = 0;
    for (float x : v) {
        uint32_t hi, lo;
        tf32_split(x, &hi, &lo);
        worst_split =
            std::max(worst_split, std::fabs(double(x) - bits_to_float(hi) - bits_to_float(lo)) / std::fabs(x));
        worst_one = std::max(worst_one, std::fabs(double(x) - bits_to_float(hi)) / std::fabs(x));
    }
    EXPECT_LE(worst_split, std::ldexp(1.0, -22));
    EXPECT_GT(worst_one, std::ldexp(1.0, -13)) << "one TF32 value alone should be far coarser";
}

// One warp's product D += A B with every lane's fragments taken from the PTX layout (mma_tf32.cuh), on values
// TF32 holds exactly: the emulated exchange must give the double product to fp32 rounding, in every lane order.
TEST(MmaEmulation, OneProductFollowsTheFragmentLayout) {
    std::vector<float> A = random_vector(16 * 8, 21), B = random_vector(8 * 8, 22), C = random_vector(16 * 8, 23);
    for (float &x : A) x = bits_to_float(tf32_round(x));
    for (float &x : B) x = bits_to_float(tf32_round(x));
    auto run = [&] {
        std::vector<float> D(16 * 8, std::numeric_limits<float>::quiet_NaN());
        const bool ok = cta_emu::run_cta(32, [&] {
            const int lane = cta_emu_thread_index(), g = lane / 4, t = lane % 4;
            const uint32_t a[4] = {float_to_bits(A[g * 8 + t]), float_to_bits(A[(g + 8) * 8 + t]),
                                   float_to_bits(A[g * 8 + t + 4]), float_to_bits(A[(g + 8) * 8 + t + 4])};
            const uint32_t b[2] = {float_to_bits(B[t * 8 + g]), float_to_bits(B[(t + 4) * 8 + g])};
            float d[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t],
                          C[(g + 8) * 8 + 2 * t + 1]};
            mma_m16n8k8_tf32(d, a, b);
            D[g * 8 + 2 * t] = d[0], D[g * 8 + 2 * t + 1] = d[1];
            D[(g + 8) * 8 + 2 * t] = d[2], D[(g + 8) * 8 + 2 * t + 1] = d[3];
        });
        EXPECT_TRUE(ok) << "every lane must reach the product";
        return D;
    };
    std::vector<float> ref(16 * 8);
    for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 8; ++n) {
            double s = C[m * 8 + n];
            for (int k = 0; k < 8; ++k) s += double(A[m * 8 + k]) * B[k * 8 + n];
            ref[m * 8 + n] = float(s);
        }
    EXPECT_LE(rel_err(run(), ref), 1e-6);
    expect_same_bits_in_every_order(run, 5, "one mma");
}

// The emulator runs a tile set of mma_tiles_3xtf32 in one rendezvous; the device runs its 3 MT NT products one by
// one. Both must give the same bits.
TEST(MmaEmulation, TileSetEqualsItsProductsOneByOne) {
    const std::vector<float> v = random_vector(32 * 64, 31);
    auto run = [&](bool one_by_one) {
        std::vector<float> out(32 * 32);
        EXPECT_TRUE(cta_emu::run_cta(32, [&] {
            const int lane = cta_emu_thread_index();
            const float *w = v.data() + lane * 64;
            uint32_t a_hi[2][4], a_lo[2][4], b_hi[4][2], b_lo[4][2];
            float acc[2][4][4];
            for (int i = 0; i < 2; ++i)
                for (int r = 0; r < 4; ++r) tf32_split(w[i * 4 + r], &a_hi[i][r], &a_lo[i][r]);
            for (int j = 0; j < 4; ++j)
                for (int r = 0; r < 2; ++r) tf32_split(w[8 + j * 2 + r], &b_hi[j][r], &b_lo[j][r]);
            for (int e = 0; e < 32; ++e) (&acc[0][0][0])[e] = w[16 + e];
            if (one_by_one) {
                for (int i = 0; i < 2; ++i)
                    for (int j = 0; j < 4; ++j) {
                        mma_m16n8k8_tf32(acc[i][j], a_lo[i], b_hi[j]);
                        mma_m16n8k8_tf32(acc[i][j], a_hi[i], b_lo[j]);
                        mma_m16n8k8_tf32(acc[i][j], a_hi[i], b_hi[j]);
                    }
            } else {
                mma_tiles_3xtf32<2, 4>(acc, a_hi, a_lo, b_hi, b_lo);
            }
            std::memcpy(out.data() + lane * 32, &acc[0][0][0], sizeof(acc));
        }));
        return out;
    };
    const std::vector<float> batched = run(false), single = run(true);
    EXPECT_EQ(std::memcmp(batched.data(), single.data(), batched.size() * sizeof(float)), 0);
}

// A lane that skips the product leaves its warp waiting: the emulator reports it instead of hanging.
TEST(MmaEmulation, ALaneMissingFromTheProductIsReported) {
    const bool ok = cta_emu::run_cta(32, [&] {
        float d[4] = {};
        const uint32_t a[4] = {}, b[2] = {};
        if (cta_emu_thread_index() != 7) mma_m16n8k8_tf32(d, a, b);
    });
    EXPECT_FALSE(ok);
}

// ---- the TT-conv step on the tensor cores ----------------------------------------------------------------------

struct StepShape {
    int32_t L, I, O, R, P, a_rows;
};

// Odd sizes in every dimension (tails of the 8-deep k loop, the 16-row and 8-column tiles, l boundaries inside a
// tile), the VGG rank-8 steps at 4-pixel tiles, and a sliced last step (rows a_rows apart).
const StepShape kShapes[] = {
    {1, 64, 64, 64, 4, 1}, {8, 64, 64, 8, 4, 1}, {64, 64, 8, 1, 4, 1}, {3, 5, 3, 1, 4, 1},   {2, 13, 17, 3, 8, 1},
    {5, 24, 33, 1, 4, 1},  {1, 9, 40, 7, 12, 1}, {7, 16, 16, 2, 4, 1}, {3, 10, 12, 5, 4, 3}, {1, 8, 8, 1, 4, 1},
};

// Runs the step with the given tiles over `threads` threads (whole warps) on a NaN-poisoned output; accumulate
// adds into `prior`.
std::vector<float> run_step(const StepShape &s, int mt, int nt, bool accumulate, const std::vector<float> &at,
                            int32_t opad, int row, const std::vector<float> &in, const std::vector<float> &prior,
                            int threads) {
    ttl_conv_tt_step_t st{};
    st.L = s.L, st.I = s.I, st.O = s.O, st.Opad = opad, st.R = s.R, st.to = 8, st.a_rows = s.a_rows;
    st.mma_mt = int16_t(mt), st.mma_nt = int16_t(nt);
    std::vector<float> out = accumulate ? prior : std::vector<float>(prior.size(), NAN);
    cta_emu::misaligned_accesses() = 0;
    const bool ok = cta_emu::run_cta(threads, [&] {
        tt_step_any<int>(at.data() + row * opad, st, in.data(), out.data(), s.P, cta_emu_thread_index(), threads,
                         accumulate);
    });
    EXPECT_TRUE(ok) << "warps diverged at a product";
    EXPECT_EQ(cta_emu::misaligned_accesses(), 0);
    return out;
}

TEST(MmaEmulation, TtStepMatchesADoubleProduct) {
    uint64_t seed = 100;
    for (const StepShape &s : kShapes) {
        int32_t opad = (s.O + 7) / 8 * 8;
        if (opad % 16 == 0) opad += 8; // as the layer lays At out
        const int64_t RP = int64_t(s.R) * s.P;
        const std::vector<float> at = random_vector(int64_t(s.I) * s.a_rows * opad, ++seed);
        const std::vector<float> in = random_vector(s.L * s.I * RP, ++seed);
        const std::vector<float> prior = random_vector(s.L * s.O * RP, ++seed);
        const int row = s.a_rows - 1; // the last slice's rows of At
        for (bool accumulate : {false, true}) {
            std::vector<float> ref(prior.size());
            for (int64_t l = 0; l < s.L; ++l)
                for (int64_t o = 0; o < s.O; ++o)
                    for (int64_t rp = 0; rp < RP; ++rp) {
                        double sum = accumulate ? prior[size_t((l * s.O + o) * RP + rp)] : 0.0;
                        for (int64_t i = 0; i < s.I; ++i)
                            sum += double(at[size_t((row + i * s.a_rows) * opad + o)]) *
                                   in[size_t((l * s.I + i) * RP + rp)];
                        ref[size_t((l * s.O + o) * RP + rp)] = float(sum);
                    }
            ttl_conv_tt_step_t chosen{};
            chosen.L = s.L, chosen.I = s.I, chosen.O = s.O, chosen.R = s.R;
            choose_mma_tiles(&chosen, s.P);
            for (int mt : {1, 2})
                for (int nt : {1, 2, 4}) {
                    const std::string what = "L " + std::to_string(s.L) + " I " + std::to_string(s.I) + " O " +
                                             std::to_string(s.O) + " R " + std::to_string(s.R) + " P " +
                                             std::to_string(s.P) + " tiles " + std::to_string(mt) + "x" +
                                             std::to_string(nt) + (accumulate ? " accumulate" : "");
                    SCOPED_TRACE(what);
                    auto run = [&] { return run_step(s, mt, nt, accumulate, at, opad, row, in, prior, 96); };
                    EXPECT_LE(rel_err(run(), ref), 1e-6); // every output written (no NaN left), 3xTF32-accurate
                    if (mt == chosen.mma_mt && nt == chosen.mma_nt)
                        expect_same_bits_in_every_order(run, int(seed), what);
                }
        }
    }
}

// 3xTF32 is what makes the tensor-core step fp32-accurate: the error of one TF32 pass would be ~1000 times larger.
TEST(MmaEmulation, ThreeProductsAreFarMoreAccurateThanOne) {
    const StepShape s{1, 64, 64, 8, 4, 1};
    const int32_t opad = 72;
    const int64_t RP = int64_t(s.R) * s.P;
    const std::vector<float> at = random_vector(int64_t(s.I) * opad, 7), in = random_vector(s.I * RP, 8);
    std::vector<float> ref(size_t(s.O * RP)), one(size_t(s.O * RP));
    for (int64_t o = 0; o < s.O; ++o)
        for (int64_t rp = 0; rp < RP; ++rp) {
            double sum = 0, sum_one = 0;
            for (int64_t i = 0; i < s.I; ++i) {
                const float a = at[size_t(i * opad + o)], b = in[size_t(i * RP + rp)];
                sum += double(a) * b;
                sum_one += double(bits_to_float(tf32_round(a))) * bits_to_float(tf32_round(b));
            }
            ref[size_t(o * RP + rp)] = float(sum);
            one[size_t(o * RP + rp)] = float(sum_one);
        }
    const double err3 = rel_err(run_step(s, 2, 4, false, at, opad, 0, in, ref, 64), ref);
    const double err1 = rel_err(one, ref);
    EXPECT_LE(err3, 1e-6);
    EXPECT_GT(err1, 100 * err3);
}

} // namespace

#else

TEST(MmaEmulation, Skipped) { GTEST_SKIP() << "built without CUDA headers"; }

#endif
