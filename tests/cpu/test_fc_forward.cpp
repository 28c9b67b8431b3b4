// TT-FC plans and forward on the CPU: every algorithm (SEQUENTIAL in both core orders, DENSE, REFERENCE, AUTO),
// with and without weights bound at plan time, against the CPU reference, the reference against the independent
// dense oracle, over a list of shapes kept as data; plan errors, plan_info contents (AUTO's choice, exact
// workspace and persistent sizes), workspace handling and repeatability.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
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
// Poison for outputs that must stay untouched.
constexpr float kPoison = 12345.0f;

struct FcCase {
    std::string name;
    std::vector<int64_t> out_modes, in_modes, ranks;
    int64_t batch;
    bool bias;
};

// d = 1..6, uneven ranks including 1, modes including 1 and primes, batch 1 and odd sizes.
const std::vector<FcCase> kCases = {
    {"d1", {5}, {3}, {1, 1}, 4, true},
    {"d1_batch1", {7}, {11}, {1, 1}, 1, false},
    {"d2", {3, 4}, {5, 2}, {1, 3, 1}, 7, true},
    {"d2_unit_modes", {1, 6}, {5, 1}, {1, 2, 1}, 33, false},
    {"d3_primes", {3, 5, 7}, {2, 11, 3}, {1, 4, 2, 1}, 1, true},
    {"d3_rank1", {2, 3, 2}, {3, 2, 5}, {1, 1, 1, 1}, 7, true},
    {"d4_uneven", {3, 1, 5, 2}, {2, 7, 1, 3}, {1, 3, 2, 4, 1}, 33, true},
    {"d4_batch1", {2, 2, 3, 2}, {4, 3, 2, 2}, {1, 5, 1, 3, 1}, 1, false},
    {"d5", {2, 3, 1, 2, 2}, {3, 2, 2, 1, 5}, {1, 2, 3, 2, 2, 1}, 7, true},
    {"d6_vgg_like", {2, 2, 2, 2, 2, 2}, {2, 7, 2, 2, 7, 1}, {1, 4, 4, 4, 4, 4, 1}, 33, true},
    // Rows in more than one chunk (26 rows, then a single one).
    {"d3_several_chunks", {4, 6, 5}, {7, 9, 8}, {1, 32, 32, 1}, 27, true},
    {"d6_big_ranks", {1, 3, 2, 2, 3, 1}, {3, 1, 2, 2, 1, 3}, {1, 3, 9, 12, 9, 3, 1}, 5, false},
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const FcCase &c, std::ostream *os) { *os << c.name; }

struct Algo {
    const char *name;
    ttl_plan_opts_t opts;
};
const std::vector<Algo> kAlgos = {
    {"sequential_first_to_last", {TTL_ALGO_SEQUENTIAL, TTL_ORDER_FIRST_TO_LAST, nullptr}},
    {"sequential_last_to_first", {TTL_ALGO_SEQUENTIAL, TTL_ORDER_LAST_TO_FIRST, nullptr}},
    {"sequential_auto_order", {TTL_ALGO_SEQUENTIAL, TTL_ORDER_AUTO, nullptr}},
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
    ttl_fc_desc_t desc;
    int64_t batch;
    std::vector<float> cores, x, bias;
    const float *bias_ptr() const { return bias.empty() ? nullptr : bias.data(); }
    int64_t y_size() const { return batch * desc.out_features; }
};

Problem make_problem(const FcCase &c) {
    Problem p;
    p.desc = ttl_test::fc_desc(c.out_modes, c.in_modes, c.ranks);
    p.batch = c.batch;
    p.cores = ttl_test::random_vector(ttl_test::fc_param_count(p.desc), 11, 0.7f);
    p.x = ttl_test::random_vector(c.batch * p.desc.in_features, 12);
    if (c.bias) p.bias = ttl_test::random_vector(p.desc.out_features, 13);
    return p;
}

std::vector<float> reference_output(const Problem &p) {
    std::vector<float> y(size_t(p.y_size()));
    EXPECT_EQ(ttl_fc_forward_ref(y.data(), &p.desc, p.cores.data(), p.bias_ptr(), p.x.data(), p.batch),
              TTL_STATUS_SUCCESS);
    return y;
}

// The macs a plan must report for its algorithm and order, from the stats formulas. A bound DENSE plan built W
// at creation, so its calls run the GEMM alone; REFERENCE rebuilds W (in double) on every call either way.
int64_t expected_macs(const ttl_fc_stats_t &st, const ttl_plan_info_t &info, bool bound) {
    switch (info.algo) {
    case TTL_ALGO_SEQUENTIAL:
        return info.order == TTL_ORDER_FIRST_TO_LAST ? st.macs_first_to_last : st.macs_last_to_first;
    case TTL_ALGO_DENSE: return bound ? st.macs_dense : st.macs_dense + st.macs_reconstruct;
    default: return st.macs_dense + st.macs_reconstruct;
    }
}

// AUTO without bound weights: the fewest multiply-adds, DENSE paying the reconstruction; ties go to SEQUENTIAL.
ttl_algo_t multiply_add_choice(const ttl_fc_stats_t &st) {
    const int64_t seq = std::min(st.macs_first_to_last, st.macs_last_to_first);
    return seq <= st.macs_dense + st.macs_reconstruct ? TTL_ALGO_SEQUENTIAL : TTL_ALGO_DENSE;
}

// AUTO with bound weights: the shortest estimated time by the rates of cpu_internal.h (sgemv at batch 1, sgemm
// above), DENSE without the reconstruction; ties go to SEQUENTIAL.
ttl_algo_t bound_choice(const ttl_fc_stats_t &st, int64_t batch) {
    const double seq = double(std::min(st.macs_first_to_last, st.macs_last_to_first)) / TTL_CPU_RATE_TT;
    const double dense = double(st.macs_dense) / (batch == 1 ? TTL_CPU_RATE_GEMV : TTL_CPU_RATE_GEMM);
    return seq <= dense ? TTL_ALGO_SEQUENTIAL : TTL_ALGO_DENSE;
}

ttl_plan_info_t plan_info(const ttl_fc_plan_t *plan) {
    ttl_plan_info_t info{};
    EXPECT_EQ(ttl_fc_plan_info(plan, &info), TTL_STATUS_SUCCESS);
    return info;
}

// Runs a plan with a workspace of exactly workspace_bytes, unaligned, poisoned and guarded on both sides.
ttl_status_t run_plan(const ttl_fc_plan_t *plan, const Problem &p, std::vector<float> &y) {
    ttl_test::GuardedWorkspace ws(plan_info(plan).workspace_bytes);
    const ttl_status_t st =
        ttl_fc_forward(plan, y.data(), p.x.data(), p.cores.data(), p.bias_ptr(), ws.data(), ws.size());
    EXPECT_TRUE(ws.guards_intact()) << "the forward call wrote outside its workspace";
    return st;
}

// ---- every algorithm against the reference ----------------------------------------------------------------------

class FcForward : public ::testing::TestWithParam<FcCase> {};

TEST_P(FcForward, ReferenceMatchesOracle) {
    const Problem p = make_problem(GetParam());
    const auto W = ttl_test::oracle_fc_dense(p.desc, p.cores.data());
    const auto oracle = ttl_test::to_float(
        ttl_test::oracle_fc_forward(W, p.desc.out_features, p.desc.in_features, p.x.data(), p.bias_ptr(), p.batch));
    EXPECT_LE(rel_err(reference_output(p), oracle), kTol);
}

TEST_P(FcForward, EveryAlgorithmMatchesReference) {
    const Problem p = make_problem(GetParam());
    const auto ref = reference_output(p);
    ttl_fc_stats_t st;
    ASSERT_EQ(ttl_fc_stats(&st, &p.desc, p.batch), TTL_STATUS_SUCCESS);
    const size_t w_bytes = size_t(st.dense_params) * sizeof(float);
    for (const Algo &a : kAlgos) {
        ttl_plan_info_t unbound_info{};
        for (const bool bound : {false, true}) {
            SCOPED_TRACE(std::string(a.name) + (bound ? ", bound" : ", unbound"));
            const ttl_plan_opts_t opts = with_cores(a.opts, bound ? p.cores.data() : nullptr);
            ttl_fc_plan_t *plan = nullptr;
            ASSERT_EQ(ttl_fc_plan_create(&plan, &p.desc, p.batch, &opts), TTL_STATUS_SUCCESS);
            const ttl_plan_info_t info = plan_info(plan);
            ttl_test::expect_info_honours_request(info, opts);
            EXPECT_EQ(info.macs, expected_macs(st, info, bound));
            // Only a bound DENSE plan holds memory: W, exactly.
            EXPECT_EQ(info.persistent_bytes, bound && info.algo == TTL_ALGO_DENSE ? w_bytes : 0u);
            EXPECT_EQ(info.estimated_us, 0.0) << "CPU plans have no time model in microseconds";
            if (info.algo == TTL_ALGO_SEQUENTIAL) {
                EXPECT_NE(info.order, TTL_ORDER_AUTO);
                EXPECT_GT(info.workspace_bytes, 0u);
                if (a.opts.order == TTL_ORDER_AUTO)
                    EXPECT_EQ(info.macs, std::min(st.macs_first_to_last, st.macs_last_to_first));
            }
            if (info.algo == TTL_ALGO_DENSE) {
                if (bound) // W lives in the plan: the call is one GEMM on x and y
                    EXPECT_EQ(info.workspace_bytes, 0u);
                else
                    EXPECT_GE(info.workspace_bytes, w_bytes);
            }
            if (a.opts.algo == TTL_ALGO_AUTO) {
                EXPECT_EQ(info.algo, bound ? bound_choice(st, p.batch) : multiply_add_choice(st));
                if (!bound)
                    EXPECT_EQ(info.macs, std::min({st.macs_first_to_last, st.macs_last_to_first,
                                                   st.macs_dense + st.macs_reconstruct}));
            } else if (bound) {
                // Binding changes nothing else; DENSE's workspace loses W and the reconstruction's scratch.
                EXPECT_EQ(info.algo, unbound_info.algo);
                EXPECT_EQ(info.order, unbound_info.order);
                if (info.algo == TTL_ALGO_DENSE)
                    EXPECT_GE(unbound_info.workspace_bytes, info.workspace_bytes + w_bytes);
                else
                    EXPECT_EQ(info.workspace_bytes, unbound_info.workspace_bytes);
            }
            if (!bound) unbound_info = info;

            ttl_test::expect_matches_and_repeats([&](std::vector<float> &y) { return run_plan(plan, p, y); }, ref,
                                                 kTol, kPoison);
            ttl_fc_plan_destroy(plan);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, FcForward, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<FcCase> &info) { return info.param.name; });

// ---- AUTO: multiply-adds without bound weights, estimated time with them
// ------------------------------------------

TEST(FcPlan, AutoPicksSequentialForVggFc6AndDenseForTinyHighRank) {
    // VGG-16 FC6 TT4: sequential is orders of magnitude cheaper than rebuilding W.
    const ttl_fc_desc_t vgg = ttl_test::fc_desc({4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 4, 4, 4, 4, 4, 1});
    ttl_fc_plan_t *plan = nullptr;
    ttl_plan_info_t info;
    ASSERT_EQ(ttl_fc_plan_create(&plan, &vgg, 100, nullptr), TTL_STATUS_SUCCESS);
    ASSERT_EQ(ttl_fc_plan_info(plan, &info), TTL_STATUS_SUCCESS);
    EXPECT_EQ(info.algo, TTL_ALGO_SEQUENTIAL);
    EXPECT_EQ(info.order, TTL_ORDER_LAST_TO_FIRST);
    ttl_fc_plan_destroy(plan);

    // Full-rank 2-core TT of a 4x4 matrix with a big batch: the dense GEMM is cheaper.
    const ttl_fc_desc_t tiny = ttl_test::fc_desc({2, 2}, {2, 2}, {1, 4, 1});
    ASSERT_EQ(ttl_fc_plan_create(&plan, &tiny, 1000, nullptr), TTL_STATUS_SUCCESS);
    ASSERT_EQ(ttl_fc_plan_info(plan, &info), TTL_STATUS_SUCCESS);
    EXPECT_EQ(info.algo, TTL_ALGO_DENSE);
    EXPECT_EQ(info.order, TTL_ORDER_AUTO);
    ttl_fc_plan_destroy(plan);
}

// One AUTO plan's info.
ttl_plan_info_t auto_info(const ttl_fc_desc_t &desc, int64_t batch, const float *cores) {
    const ttl_plan_opts_t opts{TTL_ALGO_AUTO, TTL_ORDER_AUTO, cores};
    ttl_fc_plan_t *plan = nullptr;
    EXPECT_EQ(ttl_fc_plan_create(&plan, &desc, batch, &opts), TTL_STATUS_SUCCESS);
    const ttl_plan_info_t info = plan ? plan_info(plan) : ttl_plan_info_t{};
    ttl_fc_plan_destroy(plan);
    return info;
}

TEST(FcPlan, AutoWithBoundWeightsPicksDenseWhereTheGemmIsFaster) {
    // {4,4}x{4,4} at ranks {1,2,1}, batch 100: sequential and the dense GEMM are both 25,600 multiply-adds.
    // Unbound, DENSE also pays the reconstruction (512) on every call and loses; bound, it runs at the GEMM's rate
    // and wins.
    const ttl_fc_desc_t even = ttl_test::fc_desc({4, 4}, {4, 4}, {1, 2, 1});
    const auto cores = ttl_test::random_vector(ttl_test::fc_param_count(even), 5);
    ttl_plan_info_t info = auto_info(even, 100, nullptr);
    EXPECT_EQ(info.algo, TTL_ALGO_SEQUENTIAL);
    EXPECT_EQ(info.persistent_bytes, 0u);
    info = auto_info(even, 100, cores.data());
    EXPECT_EQ(info.algo, TTL_ALGO_DENSE);
    EXPECT_EQ(info.macs, 100 * 16 * 16);
    EXPECT_EQ(info.persistent_bytes, 16 * 16 * sizeof(float));
    EXPECT_EQ(info.workspace_bytes, 0u);

    // CIFAR-10 FC2 (1536 -> 512, ranks 30) at batch 1: 8.7M multiply-adds sequential against a 0.8M sgemv.
    const ttl_fc_desc_t fc2 = ttl_test::fc_desc({4, 4, 4, 8}, {4, 6, 8, 8}, {1, 30, 30, 30, 1});
    const auto fc2_cores = ttl_test::random_vector(ttl_test::fc_param_count(fc2), 6);
    EXPECT_EQ(auto_info(fc2, 1, nullptr).algo, TTL_ALGO_SEQUENTIAL);
    EXPECT_EQ(auto_info(fc2, 1, fc2_cores.data()).algo, TTL_ALGO_DENSE);

    // VGG-16 FC6 TT4 stays sequential: the dense product takes 28 times the contraction's multiply-adds.
    const ttl_fc_desc_t vgg = ttl_test::fc_desc({4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 4, 4, 4, 4, 4, 1});
    const auto vgg_cores = ttl_test::random_vector(ttl_test::fc_param_count(vgg), 7);
    for (int64_t batch : {1, 100}) {
        info = auto_info(vgg, batch, vgg_cores.data());
        EXPECT_EQ(info.algo, TTL_ALGO_SEQUENTIAL) << batch;
        EXPECT_EQ(info.order, TTL_ORDER_LAST_TO_FIRST) << batch;
        EXPECT_EQ(info.persistent_bytes, 0u) << batch;
    }
}

TEST(FcPlan, NullCoresKeepTheMultiplyAddChoice) {
    // Every shape of the table and the paper's layers, at several batches: a NULL options pointer,
    // value-initialised options and {AUTO, AUTO, nullptr} all plan exactly what the multiply-add rule says, as
    // before binding existed.
    std::vector<ttl_fc_desc_t> descs;
    for (const FcCase &c : kCases) descs.push_back(ttl_test::fc_desc(c.out_modes, c.in_modes, c.ranks));
    descs.push_back(ttl_test::fc_desc({4, 4}, {4, 4}, {1, 2, 1}));
    descs.push_back(ttl_test::fc_desc({4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 8, 8, 8, 8, 8, 1}));
    descs.push_back(ttl_test::fc_desc({4, 6, 8, 8}, {8, 8, 8, 16}, {1, 40, 40, 40, 1}));
    descs.push_back(ttl_test::fc_desc({4, 4, 4, 8}, {4, 6, 8, 8}, {1, 30, 30, 30, 1}));
    const ttl_plan_opts_t value_initialised{};
    const ttl_plan_opts_t explicit_null{TTL_ALGO_AUTO, TTL_ORDER_AUTO, nullptr};
    for (const ttl_fc_desc_t &d : descs) {
        for (int64_t batch : {0, 1, 7, 100}) {
            SCOPED_TRACE(::testing::Message() << "M " << d.out_features << " N " << d.in_features << " d "
                                              << d.num_cores << " batch " << batch);
            ttl_fc_stats_t st;
            ASSERT_EQ(ttl_fc_stats(&st, &d, batch), TTL_STATUS_SUCCESS);
            const ttl_algo_t expected = multiply_add_choice(st);
            std::vector<ttl_plan_info_t> infos;
            for (const ttl_plan_opts_t *o :
                 {static_cast<const ttl_plan_opts_t *>(nullptr), &value_initialised, &explicit_null}) {
                ttl_fc_plan_t *plan = nullptr;
                ASSERT_EQ(ttl_fc_plan_create(&plan, &d, batch, o), TTL_STATUS_SUCCESS);
                infos.push_back(plan_info(plan));
                ttl_fc_plan_destroy(plan);
            }
            for (const ttl_plan_info_t &info : infos) {
                EXPECT_EQ(info.algo, expected);
                EXPECT_EQ(info.macs, std::min({st.macs_first_to_last, st.macs_last_to_first,
                                               st.macs_dense + st.macs_reconstruct}));
                EXPECT_EQ(info.persistent_bytes, 0u);
                EXPECT_EQ(info.order, infos[0].order);
                EXPECT_EQ(info.workspace_bytes, infos[0].workspace_bytes);
                EXPECT_STREQ(info.reason, infos[0].reason);
            }
        }
    }
}

// ---- bound weights: the pointer contract
// --------------------------------------------------------------------------

TEST(FcPlan, BoundPlanRejectsOtherCoresAndLeavesOutputUntouched) {
    const Problem p = make_problem({"bound", {3, 4}, {5, 2}, {1, 3, 1}, 3, true});
    const std::vector<float> copy = p.cores; // the same values at another address
    for (const Algo &a : kAlgos) {
        SCOPED_TRACE(a.name);
        const ttl_plan_opts_t opts = with_cores(a.opts, p.cores.data());
        ttl_fc_plan_t *plan = nullptr;
        ASSERT_EQ(ttl_fc_plan_create(&plan, &p.desc, p.batch, &opts), TTL_STATUS_SUCCESS);
        ttl_test::GuardedWorkspace ws(plan_info(plan).workspace_bytes);
        std::vector<float> y(size_t(p.y_size()), kPoison);
        const float *x = p.x.data(), *b = p.bias_ptr();
        EXPECT_EQ(ttl_fc_forward(plan, y.data(), x, copy.data(), b, ws.data(), ws.size()), TTL_STATUS_BAD_ARGUMENT);
        EXPECT_EQ(ttl_fc_forward(plan, y.data(), x, p.cores.data() + 1, b, ws.data(), ws.size()),
                  TTL_STATUS_BAD_ARGUMENT);
        EXPECT_EQ(ttl_fc_forward(plan, y.data(), x, nullptr, b, ws.data(), ws.size()), TTL_STATUS_NULL_POINTER);
        for (float v : y) ASSERT_EQ(v, kPoison);
        EXPECT_TRUE(ws.guards_intact());
        EXPECT_EQ(ttl_fc_forward(plan, y.data(), x, p.cores.data(), b, ws.data(), ws.size()), TTL_STATUS_SUCCESS);
        ttl_fc_plan_destroy(plan);

        // Unbound, the same plan takes whichever cores it is given.
        ASSERT_EQ(ttl_fc_plan_create(&plan, &p.desc, p.batch, &a.opts), TTL_STATUS_SUCCESS);
        ttl_test::GuardedWorkspace ws2(plan_info(plan).workspace_bytes);
        EXPECT_EQ(ttl_fc_forward(plan, y.data(), x, copy.data(), b, ws2.data(), ws2.size()), TTL_STATUS_SUCCESS);
        ttl_fc_plan_destroy(plan);
    }
}

// W fits (2^28 floats, allocated but never touched) but the reconstruction's scratch (2^48 floats) cannot be
// allocated: a bound DENSE plan fails with OUT_OF_MEMORY, frees W and leaves *plan untouched.
TEST(FcPlan, BoundDenseOutOfMemory) {
    if (ttl_test::kSanitized) GTEST_SKIP() << "sanitizer allocators abort instead of returning NULL";
    const int64_t mode = int64_t(1) << 14;
    const ttl_fc_desc_t d = ttl_test::fc_desc({mode, 1}, {mode, 1}, {1, int64_t(1) << 20, 1});
    ASSERT_EQ(ttl_fc_desc_check(&d), TTL_STATUS_SUCCESS);
    const auto cores = ttl_test::random_vector(16, 8); // never read: allocation fails first
    const ttl_plan_opts_t opts{TTL_ALGO_DENSE, TTL_ORDER_AUTO, cores.data()};
    int marker = 0;
    ttl_fc_plan_t *plan = reinterpret_cast<ttl_fc_plan_t *>(&marker), *untouched = plan;
    EXPECT_EQ(ttl_fc_plan_create(&plan, &d, 1, &opts), TTL_STATUS_OUT_OF_MEMORY);
    EXPECT_EQ(plan, untouched);
}

TEST(FcPlan, BoundDenseKeepsTheWeightsItWasCreatedWith) {
    Problem p = make_problem({"kept", {3, 5}, {2, 7}, {1, 4, 1}, 5, true});
    const auto ref = reference_output(p);
    const ttl_plan_opts_t opts{TTL_ALGO_DENSE, TTL_ORDER_AUTO, p.cores.data()};
    ttl_fc_plan_t *plan = nullptr;
    ASSERT_EQ(ttl_fc_plan_create(&plan, &p.desc, p.batch, &opts), TTL_STATUS_SUCCESS);
    for (float &v : p.cores) v = -2.0f * v; // documented: a plan that cached W does not see this
    std::vector<float> y(size_t(p.y_size()), kPoison);
    ASSERT_EQ(run_plan(plan, p, y), TTL_STATUS_SUCCESS);
    EXPECT_LE(rel_err(y, ref), kTol);
    ttl_fc_plan_destroy(plan);
}

// ---------------------------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------------------------

const ttl_fc_desc_t kDesc = ttl_test::fc_desc({3, 4}, {5, 2}, {1, 3, 1});

ttl_status_t create_status(const ttl_fc_desc_t *desc, int64_t batch, const ttl_plan_opts_t *opts) {
    ttl_fc_plan_t *plan = nullptr;
    const ttl_status_t st = ttl_fc_plan_create(&plan, desc, batch, opts);
    EXPECT_EQ(plan == nullptr, st != TTL_STATUS_SUCCESS);
    ttl_fc_plan_destroy(plan);
    return st;
}

TEST(FcPlan, CreateErrors) {
    int marker = 0;
    ttl_fc_plan_t *plan = reinterpret_cast<ttl_fc_plan_t *>(&marker);
    EXPECT_EQ(ttl_fc_plan_create(nullptr, &kDesc, 1, nullptr), TTL_STATUS_NULL_POINTER);
    ttl_fc_plan_t *untouched = plan;
    EXPECT_EQ(ttl_fc_plan_create(&plan, nullptr, 1, nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(plan, untouched);
    EXPECT_EQ(ttl_fc_plan_create(&plan, &kDesc, -1, nullptr), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(plan, untouched);

    // Descriptor problems pass through with their own status.
    ttl_fc_desc_t bad = kDesc;
    bad.out_features = 13;
    EXPECT_EQ(create_status(&bad, 1, nullptr), TTL_STATUS_BAD_MODES);
    bad = kDesc;
    bad.ranks[0] = 2;
    EXPECT_EQ(create_status(&bad, 1, nullptr), TTL_STATUS_BAD_RANKS);
    bad = kDesc;
    bad.num_cores = 0;
    EXPECT_EQ(create_status(&bad, 1, nullptr), TTL_STATUS_BAD_SIZE);

    // Algorithms that exist but not for FC on the CPU, and values outside the enums.
    for (ttl_algo_t a :
         {TTL_ALGO_SEQUENTIAL_BLAS, TTL_ALGO_FUSED, TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST}) {
        const ttl_plan_opts_t opts{a, TTL_ORDER_AUTO, nullptr};
        EXPECT_EQ(create_status(&kDesc, 1, &opts), TTL_STATUS_UNSUPPORTED) << ttl_algo_name(a);
    }
    const ttl_plan_opts_t bad_algo{static_cast<ttl_algo_t>(99), TTL_ORDER_AUTO, nullptr};
    EXPECT_EQ(create_status(&kDesc, 1, &bad_algo), TTL_STATUS_BAD_ARGUMENT);
    const ttl_plan_opts_t negative_algo{static_cast<ttl_algo_t>(-1), TTL_ORDER_AUTO, nullptr};
    EXPECT_EQ(create_status(&kDesc, 1, &negative_algo), TTL_STATUS_BAD_ARGUMENT);
    const ttl_plan_opts_t bad_order{TTL_ALGO_SEQUENTIAL, static_cast<ttl_order_t>(7), nullptr};
    EXPECT_EQ(create_status(&kDesc, 1, &bad_order), TTL_STATUS_BAD_ARGUMENT);
}

TEST(FcPlan, InfoErrors) {
    ttl_fc_plan_t *plan = nullptr;
    ASSERT_EQ(ttl_fc_plan_create(&plan, &kDesc, 3, nullptr), TTL_STATUS_SUCCESS);
    ttl_plan_info_t info;
    EXPECT_EQ(ttl_fc_plan_info(nullptr, &info), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_fc_plan_info(plan, nullptr), TTL_STATUS_NULL_POINTER);
    ttl_fc_plan_destroy(plan);
    ttl_fc_plan_destroy(nullptr); // a no-op
}

TEST(FcPlan, ForwardErrorsLeaveOutputUntouched) {
    const FcCase c{"errors", {3, 4}, {5, 2}, {1, 3, 1}, 3, true};
    const Problem p = make_problem(c);
    for (ttl_algo_t a : {TTL_ALGO_SEQUENTIAL, TTL_ALGO_DENSE}) {
        SCOPED_TRACE(ttl_algo_name(a));
        const ttl_plan_opts_t opts{a, TTL_ORDER_AUTO, nullptr};
        ttl_fc_plan_t *plan = nullptr;
        ASSERT_EQ(ttl_fc_plan_create(&plan, &p.desc, p.batch, &opts), TTL_STATUS_SUCCESS);
        ttl_plan_info_t info;
        ASSERT_EQ(ttl_fc_plan_info(plan, &info), TTL_STATUS_SUCCESS);
        ASSERT_GT(info.workspace_bytes, 0u);
        std::vector<char> ws(info.workspace_bytes);
        std::vector<float> y(size_t(p.y_size()), kPoison);
        const float *x = p.x.data(), *g = p.cores.data(), *b = p.bias_ptr();
        EXPECT_EQ(ttl_fc_forward(nullptr, y.data(), x, g, b, ws.data(), ws.size()), TTL_STATUS_NULL_POINTER);
        EXPECT_EQ(ttl_fc_forward(plan, nullptr, x, g, b, ws.data(), ws.size()), TTL_STATUS_NULL_POINTER);
        EXPECT_EQ(ttl_fc_forward(plan, y.data(), nullptr, g, b, ws.data(), ws.size()), TTL_STATUS_NULL_POINTER);
        EXPECT_EQ(ttl_fc_forward(plan, y.data(), x, nullptr, b, ws.data(), ws.size()), TTL_STATUS_NULL_POINTER);
        EXPECT_EQ(ttl_fc_forward(plan, y.data(), x, g, b, ws.data(), ws.size() - 1),
                  TTL_STATUS_INSUFFICIENT_WORKSPACE);
        EXPECT_EQ(ttl_fc_forward(plan, y.data(), x, g, b, nullptr, 0), TTL_STATUS_INSUFFICIENT_WORKSPACE);
        EXPECT_EQ(ttl_fc_forward(plan, y.data(), x, g, b, nullptr, ws.size()), TTL_STATUS_NULL_POINTER);
        // Overlapping buffers: in place, the workspace over y, the workspace over x.
        std::vector<float> io(std::max(p.x.size(), y.size()), kPoison);
        std::copy(p.x.begin(), p.x.end(), io.begin());
        const std::vector<float> io_before = io;
        EXPECT_EQ(ttl_fc_forward(plan, io.data(), io.data(), g, b, ws.data(), ws.size()), TTL_STATUS_BAD_ARGUMENT);
        EXPECT_EQ(io, io_before) << "an in-place call wrote";
        std::vector<float> y_and_ws(y.size() + ws.size() / sizeof(float) + 1, kPoison);
        EXPECT_EQ(ttl_fc_forward(plan, y_and_ws.data(), x, g, b, y_and_ws.data() + y.size() - 1, ws.size()),
                  TTL_STATUS_BAD_ARGUMENT);
        for (float v : y_and_ws) ASSERT_EQ(v, kPoison);
        std::vector<float> x_and_ws(p.x.size() + ws.size() / sizeof(float) + 1, kPoison);
        std::copy(p.x.begin(), p.x.end(), x_and_ws.begin());
        EXPECT_EQ(ttl_fc_forward(plan, y.data(), x_and_ws.data(), g, b, x_and_ws.data() + 1, ws.size()),
                  TTL_STATUS_BAD_ARGUMENT);
        for (float v : y) ASSERT_EQ(v, kPoison);
        // Bias is optional.
        EXPECT_EQ(ttl_fc_forward(plan, y.data(), x, g, nullptr, ws.data(), ws.size()), TTL_STATUS_SUCCESS);
        ttl_fc_plan_destroy(plan);
    }
}

TEST(FcPlan, BatchZeroIsANoOp) {
    const Problem p = make_problem({"zero", {3, 4}, {5, 2}, {1, 3, 1}, 1, true});
    const std::vector<float> copy = p.cores;
    for (const Algo &a : kAlgos) {
        for (const bool bound : {false, true}) {
            SCOPED_TRACE(std::string(a.name) + (bound ? ", bound" : ", unbound"));
            const ttl_plan_opts_t opts = with_cores(a.opts, bound ? p.cores.data() : nullptr);
            ttl_fc_plan_t *plan = nullptr;
            ASSERT_EQ(ttl_fc_plan_create(&plan, &p.desc, 0, &opts), TTL_STATUS_SUCCESS);
            const ttl_plan_info_t info = plan_info(plan);
            EXPECT_EQ(info.workspace_bytes, 0u);
            EXPECT_EQ(info.persistent_bytes, 0u); // nothing is built for a batch that never runs
            if (info.algo == TTL_ALGO_SEQUENTIAL) EXPECT_EQ(info.macs, 0);
            float y = kPoison;
            EXPECT_EQ(ttl_fc_forward(plan, &y, p.x.data(), p.cores.data(), p.bias_ptr(), nullptr, 0),
                      TTL_STATUS_SUCCESS);
            EXPECT_EQ(ttl_fc_forward(plan, &y, p.x.data(), copy.data(), p.bias_ptr(), nullptr, 0),
                      bound ? TTL_STATUS_BAD_ARGUMENT : TTL_STATUS_SUCCESS);
            EXPECT_EQ(y, kPoison);
            ttl_fc_plan_destroy(plan);
        }
    }
}

} // namespace
