// The TT-FC CUDA kernels' CTA bodies run on the CPU (tests/common/cta_emulator.h): one fiber per CUDA
// thread, a switch at every __syncthreads, and NaN-poisoned shared memory with a guard zone after it. This checks
// the kernels' indexing, tiling, merged-core build and planning on every machine, GPU or not; the GPU tests
// (tests/gpu/test_cuda_fc.cpp) then check the same code compiled for the device. Label cpu.
#include <gtest/gtest.h>

#if defined(TTL_WITH_CUDA) && __has_include(<cudnn.h>)
#define TTL_FC_EMULATION 1
#endif

#ifdef TTL_FC_EMULATION
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <utility>
#include <ostream>
#include <vector>

#include "common/cta_emulator.h" // before the kernel code: it defines CTA_HOST_EMULATION and the hooks
#include "common/test_util.h"
#include "common/thread_order_check.h"
#include "cuda/fc_fused.cuh"

namespace {

// ---- a layer in host memory, laid out as ttl_cuda_fc_layer_create would on the device -------------------------

struct HostLayer {
    ttl_cuda_handle_t handle{};
    ttl_cuda_fc_layer_t layer{};
    std::vector<float> cores, bias, at[2];
    HostLayer(const ttl_fc_desc_t &d, uint64_t seed, bool with_bias, int sm_count, size_t smem_optin) {
        handle.sm_count = sm_count;
        handle.smem_per_block_optin = smem_optin;
        layer.handle = &handle;
        layer.desc = d;
        cores = ttl_test::random_vector(ttl_test::fc_param_count(d), seed, 0.7f);
        if (with_bias) bias = ttl_test::random_vector(d.out_features, seed + 1);
        layer.cores = cores.data();
        layer.bias = with_bias ? bias.data() : nullptr;
        for (int k = 0; k < d.num_cores; ++k) EXPECT_EQ(ttl_fc_core_offset(&layer.core_offset[k], &d, k), 0);
        for (int o = 0; o < 2; ++o) {
            int64_t total = 0;
            EXPECT_EQ(fc_at_layout(layer.at_offset[o], layer.at_lda[o], &total, &d, o), TTL_STATUS_SUCCESS);
            at[o].assign(size_t(total), 0.0f);
            fc_at_fill(at[o].data(), layer.at_offset[o], layer.at_lda[o], &d, layer.core_offset, cores.data(), o);
            layer.at[o] = at[o].data();
        }
    }
    HostLayer(const HostLayer &) = delete;
};

std::vector<float> oracle(const HostLayer &h, const std::vector<float> &x, int64_t batch) {
    const ttl_fc_desc_t &d = h.layer.desc;
    const auto W = ttl_test::oracle_fc_dense(d, h.cores.data());
    return ttl_test::to_float(ttl_test::oracle_fc_forward(W, d.out_features, d.in_features, x.data(),
                                                          h.bias.empty() ? nullptr : h.bias.data(), batch));
}

// Emulated FUSED forward with a given configuration; false when the guard zone was written or a barrier diverged
// (and a failure where the kernel took a pointer outside shared memory to be in it).
bool run_fused(const fc_fused_config_t &cfg, float *y, const float *x) {
    fc_fused_params_t p = cfg.params;
    p.x = x;
    p.y = y;
    cta_emu::GuardedBuffer smem(cfg.smem_bytes, cta_emu::GuardedBuffer::kShared);
    cta_emu::not_shared() = 0;
    for (int64_t block = 0; block < cfg.grid; ++block) {
        smem.poison();
        if (!cta_emu::run_cta(FC_THREADS, [&] { fc_fused_cta(p, block, smem.data()); })) return false;
        if (!smem.guard_intact()) return false;
    }
    EXPECT_EQ(cta_emu::not_shared(), 0) << "a pointer the kernel takes to be in shared memory is not";
    return true;
}

// Emulated SEQUENTIAL forward of a plan whose schedule is set, launch by launch, on a NaN-poisoned workspace with
// a guard zone after it; false when a barrier diverged or shared memory or the workspace guard was written.
bool run_sequential(const ttl_cuda_fc_plan_t &plan, float *y, const float *x) {
    const size_t guard = 256;
    std::vector<float4> ws((plan.seq.ws_bytes + guard) / sizeof(float4) + 1);
    float *wf = reinterpret_cast<float *>(ws.data());
    std::fill(wf, wf + ws.size() * 4, std::numeric_limits<float>::quiet_NaN());
    unsigned char *w = reinterpret_cast<unsigned char *>(ws.data());
    const int64_t launches = fc_seq_num_launches(&plan.seq);
    for (int64_t n = 0; n < launches; ++n) {
        const fc_seq_launch_t l = fc_seq_launch(&plan.seq, n, y, x, w);
        const fc_contraction k = fc_seq_contraction(&plan, l);
        const fc_tile_cfg_t cfg = plan.seq.steps[l.step].tile;
        const int64_t rows = fc_tile_rows(cfg), cols = fc_tile_cols(cfg);
        cta_emu::GuardedBuffer smem(fc_tile_smem_bytes(cfg), cta_emu::GuardedBuffer::kShared);
        for (int64_t by = 0; by < (k.P + rows - 1) / rows; ++by)
            for (int64_t bx = 0; bx < (k.L * k.R + cols - 1) / cols; ++bx) {
                smem.poison();
                const bool consistent = cta_emu::run_cta(FC_THREADS, [&] {
#define EMU_TILE(TP, TC, MMA) fc_tile<TP, TC, false, MMA>(k, cfg.wp, by * rows, bx * cols, smem.data())
                    FC_TILE_DISPATCH(cfg, EMU_TILE);
#undef EMU_TILE
                });
                if (!consistent) return false;
                if (!smem.guard_intact()) return false;
            }
    }
    for (size_t i = plan.seq.ws_bytes / sizeof(float); i < ws.size() * 4; ++i)
        if (!std::isnan(wf[i])) return false;
    return true;
}

// A plan of the sequential algorithm over the host layer.
ttl_cuda_fc_plan_t host_plan(const HostLayer &h, int64_t batch) {
    ttl_cuda_fc_plan_t plan{};
    plan.layer = const_cast<ttl_cuda_fc_layer_t *>(&h.layer);
    plan.batch = batch;
    return plan;
}

// Twice the larger activation, in bytes: the workspace bound of the sequential schedule.
size_t activation_bound(const ttl_fc_desc_t &d, int64_t batch) {
    return size_t(2 * batch * std::max(d.in_features, d.out_features)) * sizeof(float);
}

// The least workspace any slicing of the schedule can have (one unit per chunk).
size_t least_workspace(const HostLayer &h, int64_t batch, ttl_order_t order) {
    size_t least = SIZE_MAX;
    for (int32_t ns = 0; ns <= h.layer.desc.num_cores; ++ns) {
        fc_seq_schedule_t s;
        EXPECT_EQ(fc_seq_schedule_fixed(&s, &h.layer, batch, order, ns, 1, 0, FC_MMA_OFF), TTL_STATUS_SUCCESS);
        least = std::min(least, s.ws_bytes);
    }
    return least;
}

// ---- shapes ---------------------------------------------------------------------------------------------------

struct Shape {
    std::vector<int64_t> out_modes, in_modes, ranks;
    int64_t batch;
    bool bias;
};

const std::vector<Shape> kShapes = {
    {{3}, {5}, {1, 1}, 2, true},                                               // d = 1
    {{1}, {1}, {1, 1}, 1, false},                                              // everything 1
    {{2, 3}, {3, 2}, {1, 1, 1}, 3, true},                                      // rank 1
    {{3, 5}, {7, 2}, {1, 3, 1}, 5, false},                                     // odd modes, primes
    {{2, 1, 3}, {1, 5, 2}, {1, 2, 3, 1}, 4, true},                             // modes 1
    {{4, 6, 2, 2}, {2, 8, 4, 16}, {1, 4, 5, 3, 1}, 1, true},                   // d = 4, mixed modes
    {{2, 2, 3, 2, 2}, {3, 2, 2, 2, 3}, {1, 2, 3, 2, 3, 1}, 7, true},           // d = 5
    {{2, 3, 2, 2, 2, 2}, {2, 2, 3, 1, 2, 2}, {1, 2, 2, 3, 2, 2, 1}, 2, false}, // d = 6
    {{17}, {40}, {1, 1}, 33, true},                                            // d = 1, many rows and columns
};

// Failure messages show the modes and batch rather than the bytes of the shape.
void PrintTo(const Shape &s, std::ostream *os) {
    *os << "d=" << s.out_modes.size() << " M_modes=";
    for (int64_t m : s.out_modes) *os << m << ",";
    *os << " N_modes=";
    for (int64_t n : s.in_modes) *os << n << ",";
    *os << " batch=" << s.batch;
}

// Also checks (and resets) the counts of misaligned vector accesses and of broken asynchronous copies of the
// emulated run.
void check(const std::vector<float> &y, const std::vector<float> &ref, const char *what, int detail) {
    const double err = ttl_test::rel_err(y, ref);
    EXPECT_LE(err, 1e-5) << what << " " << detail;
    EXPECT_EQ(cta_emu::misaligned_accesses(), 0)
        << what << " " << detail << ": vector accesses off their alignment";
    EXPECT_EQ(cta_emu::async_copy_errors(), 0)
        << what << " " << detail << ": asynchronous copies not from device into shared memory, or not waited for";
    cta_emu::misaligned_accesses() = 0;
    cta_emu::async_copy_errors() = 0;
}

// Outputs written with out_pad floats after every out_row (fc_contraction.out_pad, 0: plain): the buffer size for n
// elements, and the n elements read back with the count of pad slots written (the pads start as NaN).
int64_t padded_size(int64_t n, int64_t out_row, int64_t out_pad) { return n + (n - 1) / out_row * out_pad; }

std::vector<float> unpad(const std::vector<float> &out, int64_t n, int64_t out_row, int64_t out_pad,
                         int64_t *pads_written) {
    std::vector<float> got(static_cast<size_t>(n));
    *pads_written = 0;
    for (int64_t o = 0, e = 0; o < int64_t(out.size()); ++o) {
        if (o % (out_row + out_pad) >= out_row)
            *pads_written += !std::isnan(out[size_t(o)]);
        else if (e < n)
            got[size_t(e++)] = out[size_t(o)];
    }
    return got;
}

class FcEmulation : public ::testing::TestWithParam<Shape> {};

TEST_P(FcEmulation, SequentialBothOrders) {
    const Shape &s = GetParam();
    const ttl_fc_desc_t d = ttl_test::fc_desc(s.out_modes, s.in_modes, s.ranks);
    HostLayer h(d, 11, s.bias, 132, 227 * 1024);
    const auto x = ttl_test::random_vector(s.batch * d.in_features, 12);
    const auto ref = oracle(h, x, s.batch);
    for (bool async_copies : {true, false}) { // false: a device before sm_80, whose stages batch plain loads
        const cta_emu::ScopedAsyncCopies copies(async_copies);
        for (int mma : {FC_MMA_OFF, FC_MMA_FORCED})
            for (ttl_order_t order : {TTL_ORDER_FIRST_TO_LAST, TTL_ORDER_LAST_TO_FIRST}) {
                ttl_cuda_fc_plan_t plan = host_plan(h, s.batch);
                ASSERT_EQ(fc_seq_schedule_plan(&plan.seq, &h.layer, s.batch, order, 0, 0, mma), TTL_STATUS_SUCCESS);
                EXPECT_TRUE(plan.seq.ws_bytes <= activation_bound(d, s.batch) ||
                            plan.seq.ws_bytes == least_workspace(h, s.batch, order))
                    << "workspace " << plan.seq.ws_bytes << " over the bound and not the least";
                for (int32_t i = 0; i < plan.seq.num_steps; ++i) EXPECT_EQ(plan.seq.steps[i].tile.mma, mma > 0);
                std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
                ASSERT_TRUE(run_sequential(plan, y.data(), x.data()));
                check(y, ref, mma ? "sequential (tensor cores) async/order" : "sequential async/order",
                      int(async_copies) * 10 + int(order));
            }
    }
}

// Every slicing of the schedule (how many leading steps run per chunk, and chunks of 1, 2, 3 units and all of
// them), so the chunk offsets, the per-chunk buffers and the short last chunk are all exercised.
TEST_P(FcEmulation, SequentialEverySlicing) {
    const Shape &s = GetParam();
    const ttl_fc_desc_t d = ttl_test::fc_desc(s.out_modes, s.in_modes, s.ranks);
    HostLayer h(d, 13, s.bias, 3, 227 * 1024);
    const auto x = ttl_test::random_vector(s.batch * d.in_features, 14);
    const auto ref = oracle(h, x, s.batch);
    for (ttl_order_t order : {TTL_ORDER_FIRST_TO_LAST, TTL_ORDER_LAST_TO_FIRST})
        for (int32_t ns = 2; ns <= d.num_cores; ++ns)
            for (int64_t chunk : {int64_t(1), int64_t(2), int64_t(3), INT64_MAX}) {
                ttl_cuda_fc_plan_t plan = host_plan(h, s.batch);
                ASSERT_EQ(fc_seq_schedule_fixed(&plan.seq, &h.layer, s.batch, order, ns, chunk, 1, FC_MMA_OFF),
                          TTL_STATUS_SUCCESS);
                ASSERT_EQ(plan.seq.num_sliced, ns);
                std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
                ASSERT_TRUE(run_sequential(plan, y.data(), x.data())) << "guard written";
                check(y, ref, "sliced order/steps/chunk",
                      int(order) * 10000 + ns * 100 + int(std::min<int64_t>(chunk, 99)));
            }
}

// The VGG-16 FC6 cases of the GPU suite (tests/gpu/test_cuda_fc.cpp) whose last-to-first schedules must fit the
// bound there too.
TEST(FcEmulationSchedule, VggCasesOfTheGpuSuiteFitLastToFirst) {
    for (const auto &rb : {std::pair<int64_t, int64_t>{4, 1}, {4, 33}, {1, 2}, {8, 3}}) {
        const int64_t r = rb.first, batch = rb.second;
        const ttl_fc_desc_t d = ttl_test::fc_desc({4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, r, r, r, r, r, 1});
        HostLayer h(d, 17, false, 132, 227 * 1024);
        for (int blas : {0, 1}) {
            fc_seq_schedule_t s;
            ASSERT_EQ(fc_seq_schedule_plan(&s, &h.layer, batch, TTL_ORDER_LAST_TO_FIRST, blas, 0, FC_MMA_OFF),
                      TTL_STATUS_SUCCESS);
            EXPECT_LE(s.ws_bytes, activation_bound(d, batch)) << "rank " << r << " batch " << batch;
        }
    }
}

// Batch 0: every slicing degenerates to the plain schedule with no workspace and no launch of any size.
TEST(FcEmulationSchedule, BatchZeroPlansWithoutWork) {
    const ttl_fc_desc_t d = ttl_test::fc_desc({4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 4, 4, 4, 4, 4, 1});
    HostLayer h(d, 23, false, 132, 227 * 1024);
    for (ttl_order_t order : {TTL_ORDER_FIRST_TO_LAST, TTL_ORDER_LAST_TO_FIRST})
        for (size_t limit : {size_t(0), size_t(1), SIZE_MAX}) {
            fc_seq_schedule_t s;
            ASSERT_EQ(fc_seq_schedule_plan(&s, &h.layer, 0, order, 0, limit, FC_MMA_OFF), TTL_STATUS_SUCCESS);
            EXPECT_EQ(s.num_sliced, 0);
            EXPECT_EQ(s.ws_bytes, 0u);
            for (int32_t ns = 0; ns <= d.num_cores; ++ns) {
                ASSERT_EQ(fc_seq_schedule_fixed(&s, &h.layer, 0, order, ns, 1, 1, FC_MMA_OFF), TTL_STATUS_SUCCESS);
                EXPECT_EQ(s.num_sliced, 0);
            }
        }
}

// The caller's workspace limit replaces the bound: a generous one gives the plain schedule (fewest launches), a
// tight one slices further or, below what any slicing reaches, takes the least workspace.
TEST(FcEmulationSchedule, WorkspaceLimitIsHonoured) {
    const ttl_fc_desc_t d = ttl_test::fc_desc({4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 4, 4, 4, 4, 4, 1});
    HostLayer h(d, 19, false, 132, 227 * 1024);
    const int64_t batch = 16;
    const size_t bound = activation_bound(d, batch);
    for (ttl_order_t order : {TTL_ORDER_FIRST_TO_LAST, TTL_ORDER_LAST_TO_FIRST}) {
        const size_t least = least_workspace(h, batch, order);
        for (size_t limit : {SIZE_MAX, 4 * bound, bound, bound / 2, least, size_t(1)}) {
            fc_seq_schedule_t s;
            ASSERT_EQ(fc_seq_schedule_plan(&s, &h.layer, batch, order, 0, limit, FC_MMA_OFF), TTL_STATUS_SUCCESS);
            if (limit == SIZE_MAX) EXPECT_EQ(s.num_sliced, 0) << "order " << order;
            if (limit >= least)
                EXPECT_LE(s.ws_bytes, limit) << "order " << order << " limit " << limit;
            else
                EXPECT_EQ(s.ws_bytes, least) << "order " << order << " limit " << limit;
        }
    }
}

// VGG-16 FC6 at rank 4: unsliced, the first-to-last intermediates are 12.6x the larger activation and the
// last-to-first ones 6.3x. Last to first fits the bound at batch 1 by slicing; first to last can only slice
// whole samples, so it fits from batch 7 on and takes the least workspace below that.
TEST(FcEmulationSchedule, VggFc6Tt4MeetsTheBound) {
    const ttl_fc_desc_t d = ttl_test::fc_desc({4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 4, 4, 4, 4, 4, 1});
    HostLayer h(d, 15, true, 3, 227 * 1024); // 3 multiprocessors: large tiles, few emulated CTAs
    struct Want {
        ttl_order_t order;
        int64_t batch;
        bool fits;
    };
    for (const Want &w : {Want{TTL_ORDER_LAST_TO_FIRST, 1, true}, Want{TTL_ORDER_LAST_TO_FIRST, 3, true},
                          Want{TTL_ORDER_FIRST_TO_LAST, 2, false}, Want{TTL_ORDER_FIRST_TO_LAST, 8, true}}) {
        ttl_cuda_fc_plan_t plan = host_plan(h, w.batch);
        ASSERT_EQ(fc_seq_schedule_plan(&plan.seq, &h.layer, w.batch, w.order, 0, 0, FC_MMA_OFF),
                  TTL_STATUS_SUCCESS);
        const size_t bound = activation_bound(d, w.batch);
        if (w.fits) {
            EXPECT_LE(plan.seq.ws_bytes, bound) << "order " << w.order << " batch " << w.batch;
        } else {
            EXPECT_GT(plan.seq.ws_bytes, bound);
            EXPECT_EQ(plan.seq.ws_bytes, least_workspace(h, w.batch, w.order));
        }
        EXPECT_GT(plan.seq.num_sliced, 0) << "order " << w.order << " batch " << w.batch;
        const auto x = ttl_test::random_vector(w.batch * d.in_features, 16);
        // the CPU reference (whose dense oracle test is tests/cpu/test_reference.cpp): W here has 103 M entries
        std::vector<float> ref(size_t(w.batch * d.out_features));
        ASSERT_EQ(ttl_fc_forward_ref(ref.data(), &d, h.cores.data(), h.bias.data(), x.data(), w.batch),
                  TTL_STATUS_SUCCESS);
        std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
        ASSERT_TRUE(run_sequential(plan, y.data(), x.data()));
        check(y, ref, "vgg fc6 tt4 order", int(w.order));
    }
}

TEST_P(FcEmulation, FusedEveryOrderAndMerge) {
    const Shape &s = GetParam();
    const ttl_fc_desc_t d = ttl_test::fc_desc(s.out_modes, s.in_modes, s.ranks);
    // a small shared-memory budget forces several sample tiles and tiles per step; the large one the opposite
    // (both budgets only for d <= 3: each emulated CTA costs 256 fibers)
    std::vector<size_t> budgets = {size_t(60 * 1024)};
    if (d.num_cores <= 3) budgets.push_back(size_t(227 * 1024));
    for (size_t budget : budgets) {
        HostLayer h(d, 21, s.bias, 4, budget);
        const auto x = ttl_test::random_vector(s.batch * d.in_features, 22);
        const auto ref = oracle(h, x, s.batch);
        int ran = 0;
        for (int mma : {FC_MMA_OFF, FC_MMA_FORCED})
            for (ttl_order_t order : {TTL_ORDER_FIRST_TO_LAST, TTL_ORDER_LAST_TO_FIRST})
                for (int32_t merged = 0; merged <= d.num_cores; ++merged) {
                    fc_fused_config_t cfg;
                    const ttl_status_t st = fc_fused_plan(&cfg, &h.layer, s.batch, order, merged, mma);
                    if (st == TTL_STATUS_UNSUPPORTED) continue;
                    ASSERT_EQ(st, TTL_STATUS_SUCCESS);
                    ASSERT_LE(cfg.smem_bytes, budget);
                    for (int32_t i = 0; i < cfg.params.num_steps; ++i)
                        if (!cfg.params.steps[i].stream) EXPECT_EQ(cfg.params.steps[i].tile.mma, mma > 0);
                    // fc_stream_step writes fused intermediates only, never y
                    EXPECT_EQ(cfg.params.steps[cfg.params.num_steps - 1].stream, 0);
                    std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
                    ASSERT_TRUE(run_fused(cfg, y.data(), x.data())) << "shared memory guard written";
                    check(y, ref, mma ? "fused (tensor cores) order/merged" : "fused order/merged",
                          int(order) * 100 + merged);
                    ++ran;
                }
        EXPECT_GT(ran, 0) << "no fused configuration fits a " << budget << "-byte budget";
    }
}

// A device without asynchronous copies (before sm_80) stages every chunk in batches of plain loads: fused plans,
// both orders, no merge and every core merged, FFMA and tensor-core tiles, against the oracle (the sequential
// kernel: SequentialBothOrders).
TEST_P(FcEmulation, FusedStagesWithoutAsynchronousCopies) {
    const cta_emu::ScopedAsyncCopies no_async_copies(false);
    const Shape &s = GetParam();
    const ttl_fc_desc_t d = ttl_test::fc_desc(s.out_modes, s.in_modes, s.ranks);
    HostLayer h(d, 31, s.bias, 4, 60 * 1024);
    const auto x = ttl_test::random_vector(s.batch * d.in_features, 32);
    const auto ref = oracle(h, x, s.batch);
    for (int mma : {FC_MMA_OFF, FC_MMA_FORCED})
        for (ttl_order_t order : {TTL_ORDER_FIRST_TO_LAST, TTL_ORDER_LAST_TO_FIRST})
            for (int32_t merged : {0, d.num_cores}) {
                fc_fused_config_t cfg;
                const ttl_status_t st = fc_fused_plan(&cfg, &h.layer, s.batch, order, merged, mma);
                if (st == TTL_STATUS_UNSUPPORTED) continue;
                ASSERT_EQ(st, TTL_STATUS_SUCCESS);
                std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
                ASSERT_TRUE(run_fused(cfg, y.data(), x.data())) << "shared memory guard written";
                check(y, ref, "fused without asynchronous copies, mma/order/merged",
                      mma * 1000 + int(order) * 100 + merged);
            }
}

// Allowing tensor cores never loses a fused plan: the planner also tries every shape without them (their layouts
// can take more shared memory), so wherever the FFMA plan exists the allowed one does, estimated no slower. The
// test shapes and the paper's TT-FC layers, under several shared-memory budgets.
void expect_tensor_cores_never_lose(const ttl_fc_desc_t &d, std::initializer_list<int64_t> batches) {
    for (size_t budget : {size_t(24 * 1024), size_t(60 * 1024), size_t(100 * 1024), size_t(227 * 1024)}) {
        HostLayer h(d, 91, true, 132, budget);
        for (ttl_order_t order : {TTL_ORDER_AUTO, TTL_ORDER_FIRST_TO_LAST, TTL_ORDER_LAST_TO_FIRST})
            for (int64_t batch : batches) {
                fc_fused_config_t ffma, mma;
                if (fc_fused_plan(&ffma, &h.layer, batch, order, -1, FC_MMA_OFF) != TTL_STATUS_SUCCESS) continue;
                ASSERT_EQ(fc_fused_plan(&mma, &h.layer, batch, order, -1, FC_MMA_ALLOWED), TTL_STATUS_SUCCESS)
                    << "budget " << budget << " order " << order << " batch " << batch;
                EXPECT_LE(mma.est_us, ffma.est_us)
                    << "budget " << budget << " order " << order << " batch " << batch;
                EXPECT_LE(mma.smem_bytes, budget);
            }
    }
}

TEST_P(FcEmulation, TensorCoresAllowedNeverLoseAFusedPlan) {
    const Shape &s = GetParam();
    expect_tensor_cores_never_lose(ttl_test::fc_desc(s.out_modes, s.in_modes, s.ranks), {s.batch, 256});
}

TEST(FcEmulationFused, TensorCoresAllowedNeverLoseAPaperLayerPlan) {
    expect_tensor_cores_never_lose(ttl_test::fc_desc({4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 4, 4, 4, 4, 4, 1}),
                                   {1, 33, 1024});
    expect_tensor_cores_never_lose(ttl_test::fc_desc({4, 6, 8, 8}, {8, 8, 8, 16}, {1, 40, 40, 40, 1}),
                                   {1, 32, 1024});
    expect_tensor_cores_never_lose(ttl_test::fc_desc({4, 4, 4, 8}, {4, 6, 8, 8}, {1, 30, 30, 30, 1}),
                                   {1, 32, 1024});
}

// A missing barrier (a thread reading in one barrier interval what another writes in it) makes the result depend
// on the order the threads run in; the kernels use no atomics, so a race-free kernel gives the same bits in every
// order. The fused kernel (every merge, a 60 KB budget: several tiles per step) and the sequential schedule of
// both core orders, in descending and in shuffled order against the ascending run.
TEST_P(FcEmulation, SameBitsInEveryThreadOrder) {
    const Shape &s = GetParam();
    const ttl_fc_desc_t d = ttl_test::fc_desc(s.out_modes, s.in_modes, s.ranks);
    HostLayer h(d, 71, s.bias, 3, 60 * 1024);
    const auto x = ttl_test::random_vector(s.batch * d.in_features, 72);
    const size_t n = size_t(s.batch * d.out_features);
    // One emulated run's output; a run that wrote past its shared memory or diverged at a barrier fails the test.
    auto output_of = [&](const std::function<bool(float *)> &run, const std::string &what) {
        std::vector<float> y(n, std::numeric_limits<float>::quiet_NaN());
        EXPECT_TRUE(run(y.data())) << what;
        return y;
    };
    for (ttl_order_t order : {TTL_ORDER_FIRST_TO_LAST, TTL_ORDER_LAST_TO_FIRST}) {
        for (int32_t merged = 0; merged <= d.num_cores; ++merged) {
            fc_fused_config_t cfg;
            // tensor-core tiles for the plain chain (merged 0) too, whose steps all run tiles
            const int mma = merged == 0 ? FC_MMA_FORCED : FC_MMA_OFF;
            const ttl_status_t st = fc_fused_plan(&cfg, &h.layer, s.batch, order, merged, mma);
            if (st == TTL_STATUS_UNSUPPORTED) continue;
            ASSERT_EQ(st, TTL_STATUS_SUCCESS);
            const std::string what =
                "fused order/merged/mma " + std::to_string(int(order) * 100 + merged) + "/" + std::to_string(mma);
            ttl_test::expect_same_bits_in_every_order(
                [&] { return output_of([&](float *y) { return run_fused(cfg, y, x.data()); }, what); },
                uint64_t(merged) + 3, what);
        }
        for (int mma : {FC_MMA_OFF, FC_MMA_FORCED}) {
            ttl_cuda_fc_plan_t plan = host_plan(h, s.batch);
            ASSERT_EQ(fc_seq_schedule_plan(&plan.seq, &h.layer, s.batch, order, 0, 0, mma), TTL_STATUS_SUCCESS);
            const std::string what =
                "sequential order/mma " + std::to_string(int(order)) + "/" + std::to_string(mma);
            ttl_test::expect_same_bits_in_every_order(
                [&] { return output_of([&](float *y) { return run_sequential(plan, y, x.data()); }, what); }, 3,
                what);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, FcEmulation, ::testing::ValuesIn(kShapes));

// The fused kernel's intermediates have padded rows read by direct tiles: here the second step reads [L, Q, R] =
// [3, 6, 1] (q = (a_1, j_1)), whose stride 6 would put lanes 0 and 16 on one bank, so its rows take 7 floats.
TEST(FcEmulationFused, IntermediateRowsArePadded) {
    const ttl_fc_desc_t d = ttl_test::fc_desc({3, 5}, {7, 2}, {1, 3, 1});
    HostLayer h(d, 41, true, 4, 227 * 1024);
    const int64_t batch = 37;
    const auto x = ttl_test::random_vector(batch * d.in_features, 42);
    fc_fused_config_t cfg;
    ASSERT_EQ(fc_fused_plan(&cfg, &h.layer, batch, TTL_ORDER_FIRST_TO_LAST, 0, FC_MMA_OFF), TTL_STATUS_SUCCESS);
    ASSERT_EQ(cfg.params.num_steps, 2);
    EXPECT_EQ(cfg.params.steps[0].tile.direct, 0); // reads x from device memory
    EXPECT_EQ(cfg.params.steps[1].tile.direct, 1);
    EXPECT_EQ(cfg.params.steps[1].in_ls, 7);
    EXPECT_EQ(cfg.params.steps[0].out_pad, 1);
    EXPECT_EQ(cfg.params.steps[1].out_pad, 0); // writes y
    std::vector<float> y(size_t(batch * d.out_features), std::numeric_limits<float>::quiet_NaN());
    ASSERT_TRUE(run_fused(cfg, y.data(), x.data()));
    check(y, oracle(h, x, batch), "padded fused", 0);
}

// The VGG-16 FC6 TT4 layer with tensor-core tiles allowed: its 16-row steps (P = r m = 16) take them (at batch 1,
// where a step is a tile or two, at least one), on layouts whose fragment reads are conflict-free, the estimate
// drops below the FFMA plan's, and the emulated forward
// (batch 1, last to first, every tiled step on the tensor cores: padded runs of R included) matches the CPU
// reference.
TEST(FcEmulationFused, VggFc6TakesTensorCores) {
    const ttl_fc_desc_t d = ttl_test::fc_desc({4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 4, 4, 4, 4, 4, 1});
    HostLayer h(d, 81, true, 132, 227 * 1024);
    for (int64_t batch : {1, 33, 1024})
        for (ttl_order_t order : {TTL_ORDER_FIRST_TO_LAST, TTL_ORDER_LAST_TO_FIRST}) {
            fc_fused_config_t ffma, mma;
            ASSERT_EQ(fc_fused_plan(&ffma, &h.layer, batch, order, -1, FC_MMA_OFF), TTL_STATUS_SUCCESS);
            ASSERT_EQ(fc_fused_plan(&mma, &h.layer, batch, order, -1, FC_MMA_ALLOWED), TTL_STATUS_SUCCESS);
            EXPECT_LT(mma.est_us, ffma.est_us) << "batch " << batch << " order " << order;
            int tensor_steps = 0;
            for (int32_t i = 0; i < mma.params.num_steps; ++i) {
                const fc_fused_step_t &st = mma.params.steps[i];
                tensor_steps += st.tile.mma;
                if (!st.tile.mma || !st.tile.direct) continue;
                // the chooser's layout: conflict-free last to first; first to last, runs of R = 28 leave 2 ways
                const int32_t ways = fc_mma_read_ways(st.R, st.in_qs, st.in_ls);
                EXPECT_EQ(ways, fc_mma_layout_choose(st.Q, st.R).ways) << "step " << i;
                if (order == TTL_ORDER_LAST_TO_FIRST) EXPECT_EQ(ways, 1) << "step " << i;
            }
            EXPECT_GE(tensor_steps, batch == 1 ? 1 : 2) << "batch " << batch << " order " << order;
        }
    const int64_t batch = 1;
    const auto x = ttl_test::random_vector(batch * d.in_features, 82);
    std::vector<float> ref(size_t(batch * d.out_features));
    ASSERT_EQ(ttl_fc_forward_ref(ref.data(), &d, h.cores.data(), h.bias.data(), x.data(), batch),
              TTL_STATUS_SUCCESS);
    fc_fused_config_t cfg;
    ASSERT_EQ(fc_fused_plan(&cfg, &h.layer, batch, TTL_ORDER_LAST_TO_FIRST, -1, FC_MMA_FORCED), TTL_STATUS_SUCCESS);
    bool padded_runs = false;
    for (int32_t i = 1; i < cfg.params.num_steps; ++i)
        padded_runs = padded_runs || cfg.params.steps[i].in_qs > cfg.params.steps[i].R;
    EXPECT_TRUE(padded_runs) << "no step read runs of R padded for the tensor-core reads";
    std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
    ASSERT_TRUE(run_fused(cfg, y.data(), x.data()));
    check(y, ref, "vgg fc6 tt4 fused, tensor cores", 0);
}

// A first step that stages x takes longer chunks where the CTA's shared memory has room left (fused_long_chunks):
// VGG FC6 TT4 at batch 1 (64 CTAs on 132 SMs, one each) stages its 112 values of q in one chunk instead of four;
// with two CTAs to an SM, or a small opt-in limit, the stage stays within its share; and the long chunk gives the
// oracle's outputs, FFMA and tensor cores.
TEST(FcEmulationFused, FirstStepTakesLongChunksWhereSharedMemoryIsLeft) {
    const ttl_fc_desc_t d = ttl_test::fc_desc({4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 4, 4, 4, 4, 4, 1});
    HostLayer h(d, 85, true, 132, 227 * 1024);
    const int64_t batch = 1;
    const auto x = ttl_test::random_vector(batch * d.in_features, 86);
    const auto ref = oracle(h, x, batch);
    for (int32_t mma : {FC_MMA_OFF, FC_MMA_FORCED}) {
        fc_fused_config_t cfg;
        ASSERT_EQ(fc_fused_plan(&cfg, &h.layer, batch, TTL_ORDER_FIRST_TO_LAST, 3, mma), TTL_STATUS_SUCCESS);
        const fc_fused_step_t &first = cfg.params.steps[0];
        ASSERT_FALSE(first.tile.direct);
        ASSERT_EQ(first.Q, 112);
        EXPECT_EQ(first.tile.kc, 128) << "one chunk of the whole reduction";
        EXPECT_LE(cfg.smem_bytes, h.handle.smem_per_block_optin);
        EXPECT_LT(cfg.grid, 132);
        std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
        ASSERT_TRUE(run_fused(cfg, y.data(), x.data()));
        check(y, ref,
              mma ? "vgg fc6 tt4, first step in one chunk, tensor cores" : "vgg fc6 tt4, first step in one chunk",
              0);
    }
    // at most a standard stage's worth of shared memory to spare: the default chunks
    HostLayer tight(d, 85, true, 132, 60 * 1024);
    fc_fused_config_t cfg;
    ASSERT_EQ(fc_fused_plan(&cfg, &tight.layer, batch, TTL_ORDER_FIRST_TO_LAST, 3, FC_MMA_OFF), TTL_STATUS_SUCCESS);
    EXPECT_LE(cfg.smem_bytes, tight.handle.smem_per_block_optin);
    EXPECT_EQ(cfg.params.steps[0].tile.kc, 0);
    // more CTAs than SMs, planned two to an SM: each stays within half the SM's shared memory
    HostLayer few_sms(d, 85, true, 4, 227 * 1024);
    ASSERT_EQ(fc_fused_plan(&cfg, &few_sms.layer, batch, TTL_ORDER_FIRST_TO_LAST, 3, FC_MMA_OFF),
              TTL_STATUS_SUCCESS);
    ASSERT_GT(cfg.grid, 4);
    EXPECT_EQ(cfg.params.steps[0].tile.kc, 64) << "the longest chunk within half the SM";
    EXPECT_LE(cfg.smem_bytes, 227 * 1024 / 2 - 1024);
}

// fc_mma_layout_choose's layouts against an exhaustive count of the tensor-core tile's direct reads (every group
// of 8 columns over 64 rows of L, 4 values of q): the ways it reports are the true ones, its padding is of the
// documented form, and the step shapes of the paper's layers read conflict-free.
TEST(FcMmaLayout, WaysMatchAnExhaustiveCount) {
    auto exhaustive = [](int64_t R, int64_t qs, int64_t ls) {
        int32_t worst = 1;
        const int64_t C = 64 * R;
        for (int64_t c0 = 0; c0 + 8 <= C; c0 += 8) {
            std::vector<std::vector<int64_t>> banks(32);
            for (int lane = 0; lane < 32; ++lane) {
                const int64_t c = c0 + lane / 4, q = lane % 4, addr = (c / R) * ls + q * qs + c % R;
                auto &b = banks[size_t(addr % 32)];
                if (std::find(b.begin(), b.end(), addr) == b.end()) b.push_back(addr);
            }
            for (const auto &b : banks) worst = std::max(worst, int32_t(b.size()));
        }
        return worst;
    };
    for (int64_t Q : {1, 3, 7, 28, 32})
        for (int64_t R = 1; R <= 64; ++R) {
            const fc_mma_layout_t m = fc_mma_layout_choose(Q, R);
            ASSERT_TRUE(m.row == R || m.row == Q * R) << "Q " << Q << " R " << R;
            ASSERT_TRUE(m.pad >= 0 && m.pad < 32);
            EXPECT_EQ(m.qs, m.row == R && m.pad > 0 ? R + m.pad : R);
            EXPECT_EQ(m.ls, m.row == R ? Q * m.qs : Q * R + m.pad);
            EXPECT_EQ(m.ways, exhaustive(R, m.qs, m.ls)) << "Q " << Q << " R " << R;
            EXPECT_EQ(fc_mma_read_ways(R, m.qs, m.ls), m.ways);
            if (R % 8 == 0 || R == 1 || R == 2 || R == 4) EXPECT_EQ(m.ways, 1) << "Q " << Q << " R " << R;
        }
    // VGG FC6 and the CIFAR-10 TT-FC layers' steps (Q, R), both orders
    for (auto qr : std::vector<std::pair<int64_t, int64_t>>{
             {28, 1}, {32, 4}, {32, 16}, {28, 64}, {8, 256}, {32, 224}, {14, 1792}, {320, 1}, {240, 8}, {160, 64}})
        EXPECT_EQ(fc_mma_layout_choose(qr.first, qr.second).ways, 1) << qr.first << " " << qr.second;
}

// The streaming step (short reductions over whole rows of x) against plain loops: every Q it takes, rows of A
// that are not whole float4 groups (P = 6, 7, 13 end in groups of 2, 3, 1), and a fused intermediate's layouts
// (its only output: fc_stream_out): padding after every 7 values (a row's 4 values straddle it or miss 16-byte
// alignment: one store each), after every 8 (whole 16-byte stores for P = 8), none. L = 3,877 rows run full passes
// and every smaller pass of fc_stream_rest: at 8 rows a thread (Q <= 4), a full pass of 2,048 rows, then passes of
// 4, 2 and 1 rows a thread and a partial one of 37 rows; at 4 a thread (Q = 8), three full passes, then 2, 1 and
// the 37. x aligned (rows of Q = 2, 4, 8 read in vector loads) and one float off (read a float at a time).
TEST(FcEmulationStream, EveryShortReduction) {
    const int64_t L = 2048 + 1024 + 512 + 256 + 37;
    struct Layout {
        int64_t out_row, out_pad;
    };
    for (const Layout lay : {Layout{7, 3}, Layout{8, 4}, Layout{8, 0}})
        for (int64_t Q : {1, 2, 3, 4, 5, 8})
            for (int64_t P : {1, 6, 7, 8, 13})
                for (int64_t shift : {0, 1}) {
                    SCOPED_TRACE("Q " + std::to_string(Q) + " P " + std::to_string(P) + " x shifted " +
                                 std::to_string(shift) + " out_row " + std::to_string(lay.out_row) + " out_pad " +
                                 std::to_string(lay.out_pad));
                    const int64_t lda = (P + FC_AT_ALIGN - 1) / FC_AT_ALIGN * FC_AT_ALIGN;
                    auto at = ttl_test::random_vector(Q * lda, 51);
                    for (int64_t q = 0; q < Q; ++q)
                        for (int64_t p = P; p < lda; ++p) at[q * lda + p] = 0.0f;
                    const auto x_buf = ttl_test::random_vector(L * Q + 4, 52);
                    const size_t to_16 = (16 - reinterpret_cast<uintptr_t>(x_buf.data()) % 16) % 16 / sizeof(float);
                    const float *in = x_buf.data() + to_16 + shift;
                    fc_contraction k =
                        fc_contraction_make(at.data(), lda, in, nullptr, nullptr, L, P, Q, 1, L, 0, 0, 1);
                    ASSERT_EQ(k.out_plain, 1);
                    const bool wide = fc_stream_qmax(Q) == Q && shift == 0;
                    EXPECT_EQ(fc_stream_qmax(Q) == 2   ? fc_stream_rows_wide<2>(k)
                              : fc_stream_qmax(Q) == 4 ? fc_stream_rows_wide<4>(k)
                                                       : fc_stream_rows_wide<8>(k),
                              wide);
                    k.out_pad = int32_t(lay.out_pad);
                    k.div_out_row = ttl_divider_make(uint32_t(lay.out_row));
                    const int64_t n = L * P;
                    // the intermediate in shared memory (as in the fused kernel), NaN-poisoned, with a guard zone
                    const size_t out_floats = size_t(padded_size(n, lay.out_row, lay.out_pad));
                    cta_emu::GuardedBuffer out_buf(out_floats * sizeof(float), cta_emu::GuardedBuffer::kShared);
                    k.out = reinterpret_cast<float *>(out_buf.data());
                    cta_emu::GuardedBuffer smem(FC_TILE_SMEM_MAX, cta_emu::GuardedBuffer::kShared);
                    smem.poison();
                    cta_emu::not_shared() = 0;
                    ASSERT_TRUE(cta_emu::run_cta(FC_THREADS, [&] { fc_fused_stream(k, smem.data()); }));
                    ASSERT_TRUE(smem.guard_intact());
                    ASSERT_TRUE(out_buf.guard_intact());
                    EXPECT_EQ(cta_emu::not_shared(), 0);
                    const std::vector<float> out(k.out, k.out + out_floats);
                    int64_t pad_written = 0;
                    const std::vector<float> got = unpad(out, n, lay.out_row, lay.out_pad, &pad_written);
                    std::vector<float> ref(got.size());
                    for (int64_t l = 0; l < L; ++l)
                        for (int64_t p = 0; p < P; ++p) {
                            double acc = 0.0;
                            for (int64_t q = 0; q < Q; ++q) acc += double(at[q * lda + p]) * in[l * Q + q];
                            ref[size_t(l * P + p)] = float(acc);
                        }
                    EXPECT_EQ(pad_written, 0);
                    EXPECT_LE(ttl_test::rel_err(got, ref), 1e-6);
                    { // the same bits with the threads in reverse order (a race would change them)
                        const cta_emu::ScopedOrder descending(cta_emu::Order::kDescending);
                        out_buf.poison();
                        smem.poison();
                        ASSERT_TRUE(cta_emu::run_cta(FC_THREADS, [&] { fc_fused_stream(k, smem.data()); }));
                        ASSERT_TRUE(out_buf.guard_intact());
                        EXPECT_EQ(std::memcmp(k.out, out.data(), out.size() * sizeof(float)), 0)
                            << "descending thread order";
                    }
                    EXPECT_EQ(cta_emu::misaligned_accesses(), 0);
                    cta_emu::misaligned_accesses() = 0;
                }
}

// Last to first, the first step contracts x with the last core (Q = n_3 r_4 = 3) over 4,096 rows per sample: the
// planner streams it, and the whole layer matches the oracle.
TEST(FcEmulationFused, ShortFirstReductionStreams) {
    const ttl_fc_desc_t d = ttl_test::fc_desc({2, 3, 2, 2}, {16, 16, 16, 3}, {1, 3, 2, 3, 1});
    HostLayer h(d, 61, true, 4, 227 * 1024);
    const int64_t batch = 2;
    const auto x = ttl_test::random_vector(batch * d.in_features, 62);
    fc_fused_config_t cfg;
    ASSERT_EQ(fc_fused_plan(&cfg, &h.layer, batch, TTL_ORDER_LAST_TO_FIRST, 0, FC_MMA_OFF), TTL_STATUS_SUCCESS);
    EXPECT_EQ(cfg.params.steps[0].stream, 1);
    for (int32_t i = 1; i < cfg.params.num_steps; ++i) EXPECT_EQ(cfg.params.steps[i].stream, 0);
    std::vector<float> y(size_t(batch * d.out_features), std::numeric_limits<float>::quiet_NaN());
    ASSERT_TRUE(run_fused(cfg, y.data(), x.data()));
    check(y, oracle(h, x, batch), "streamed fused", 0);
}

// fc_direct_pad against the bank rule it promises, checked over two periods of columns and the first and last q.
TEST(FcDirectPad, EveryWarpReadHits32Banks) {
    std::vector<int64_t> rs;
    for (int64_t r = 1; r <= 100; ++r) rs.push_back(r);
    for (int64_t r : {127, 128, 224, 250, 1000, 1792, 4097}) rs.push_back(r);
    int64_t conflicts = 0, padded = 0;
    for (int64_t Q = 1; Q <= 40; ++Q)
        for (int64_t R : rs) {
            const int32_t pad = fc_direct_pad(Q, R);
            ASSERT_GE(pad, 0);
            ASSERT_LT(pad, 32);
            padded += pad > 0;
            const int64_t ls = Q * R + pad;
            for (int64_t q : {int64_t{0}, Q - 1})
                for (int64_t w = 0; w < 2 * R; ++w) {
                    bool seen[32] = {};
                    for (int64_t lane = 0; lane < 32; ++lane) {
                        const int64_t c = 32 * w + lane;
                        const int64_t bank = ((c / R) * ls + q * R + c % R) % 32;
                        conflicts += seen[bank];
                        seen[bank] = true;
                    }
                }
        }
    EXPECT_EQ(conflicts, 0);
    EXPECT_GT(padded, 0);
    EXPECT_EQ(fc_direct_pad(7, 32), 0); // whole warps inside one row need no pad
    EXPECT_EQ(fc_direct_pad(16, 1), 1); // an odd stride is enough for R = 1
}

// The tiles' division by an invariant (ttl_div) against the division operator: every n below 2^16 and, near
// multiples of d up to 2^31, the values where rounding would go wrong, for small, power-of-two and large d.
TEST(FcDivider, ExactBelow2To31) {
    std::vector<uint32_t> divisors;
    for (uint32_t d = 1; d <= 1200; ++d) divisors.push_back(d);
    for (uint32_t s = 0; s < 31; ++s) divisors.push_back(1u << s), divisors.push_back((1u << s) + 1);
    for (uint32_t d : {6272u, 25088u, 1000003u, 65535u, 65537u, 0x7fffffffu, 0x40000001u}) divisors.push_back(d);
    uint64_t state = 12345;
    for (int i = 0; i < 200; ++i) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        divisors.push_back(uint32_t(state >> 33) | 1u);
    }
    int64_t wrong = 0;
    for (uint32_t d : divisors) {
        const ttl_divider_t v = ttl_divider_make(d);
        for (uint32_t n = 0; n < (1u << 16); ++n) wrong += ttl_div(n, v) != n / d;
        for (uint64_t k = 1; k <= 0x7fffffffull / d; k = k < 64 ? k + 1 : k * 2 + 1) {
            const uint64_t at = k * d; // around a multiple of d
            for (uint64_t n = at - 1; n <= at + 1 && n <= 0x7fffffffull; ++n)
                wrong += ttl_div(uint32_t(n), v) != uint32_t(n) / d;
        }
        wrong += ttl_div(0x7fffffffu, v) != 0x7fffffffu / d;
    }
    EXPECT_EQ(wrong, 0);
}

// The plain output map (32-bit offsets, no bias) is taken exactly where it gives the general map's offsets: the
// intermediates and a bias-free last step of a sequential launch, not with a bias, a strided map or offsets of
// 2^31 or more.
TEST(FcContraction, PlainOutputMapOnlyWhereItHolds) {
    const float a = 0.0f, bias = 0.0f;
    auto make = [&](const float *b, int64_t L, int64_t P, int64_t R, int64_t lps, int64_t bs, int64_t base,
                    int64_t es) {
        return fc_contraction_make(&a, 8, &a, nullptr, b, L, P, 3, R, lps, bs, base, es);
    };
    EXPECT_EQ(make(nullptr, 10, 4, 6, 10, 0, 0, 1).out_plain, 1);     // an intermediate
    EXPECT_EQ(make(nullptr, 10, 4, 6, 5, 5 * 24, 0, 1).out_plain, 1); // y [B, M] of 2 samples of 5 rows
    EXPECT_EQ(make(&bias, 10, 4, 6, 10, 0, 0, 1).out_plain, 0);
    EXPECT_EQ(make(nullptr, 10, 4, 6, 5, 5 * 24 + 1, 0, 1).out_plain, 0); // samples further apart
    EXPECT_EQ(make(nullptr, 10, 4, 6, 10, 0, 3, 1).out_plain, 0);
    EXPECT_EQ(make(nullptr, 10, 4, 6, 10, 0, 0, 2).out_plain, 0);
    const int64_t big = (int64_t(1) << 31) / 24; // L P R just under and at 2^31
    EXPECT_EQ(make(nullptr, big - 1, 4, 6, big - 1, 0, 0, 1).out_plain, 1);
    EXPECT_EQ(make(nullptr, big + 1, 4, 6, big + 1, 0, 0, 1).out_plain, 0);
    EXPECT_EQ(make(nullptr, 2, int64_t(1) << 20, int64_t(1) << 12, 2, 0, 0, 1).out_plain, 0); // P R >= 2^31
}

// Every tile configuration of the shared routine, both forms (FFMA register tiles and 3xTF32 tensor-core tiles), on
// contractions with awkward sizes, against plain loops in double: short rows (q-fastest B stage) and long ones
// (column-fastest: in 16-byte groups where R is a multiple of 4 and In is aligned, R = 12 and 40, and one float at
// a time where In starts off its alignment), columns divided by ttl_div and in int64 (there through the general
// output map), and the direct tile reading padded In (rows of L padded; for the tensor-core layouts also every run
// of R) and writing padded rows of Out (as the fused intermediates).
class FcEmulationTile : public ::testing::TestWithParam<int64_t> {};

enum TileVariant { kStagedDivider, kStagedInt64, kDirect, kDirectPaddedQ, kStagedShiftedIn };
constexpr int kTileVariants = 5;

TEST_P(FcEmulationTile, EveryConfiguration) {
    const int64_t L = 5, P = 19, Q = 301, R = GetParam(); // Q > FC_KC_MAX: several chunks, the last one partial
    const int64_t lda = (P + FC_AT_ALIGN - 1) / FC_AT_ALIGN * FC_AT_ALIGN;
    auto at = ttl_test::random_vector(Q * lda, 31);
    for (int64_t q = 0; q < Q; ++q)
        for (int64_t p = P; p < lda; ++p) at[q * lda + p] = 0.0f;
    const int64_t in_pad = 5, q_pad = 3, out_row = 7, out_pad = 3; // the padded variants' layouts
    // In's layouts: element (l, q, r) at off + l ls + q qs + r
    struct Layout {
        int64_t ls, qs, off;
    };
    const Layout layouts[] = {{Q * R, R, 0},
                              {Q * R + in_pad, R, 0},
                              {Q * R + in_pad, R, 0},
                              {Q * (R + q_pad) + in_pad, R + q_pad, 0},
                              {Q * R, R, 1}};
    const auto in = ttl_test::random_vector(L * (Q * (R + q_pad) + in_pad) + 1, 32);
    auto reference = [&](const Layout &lay) {
        std::vector<float> ref(size_t(L * P * R));
        for (int64_t l = 0; l < L; ++l)
            for (int64_t p = 0; p < P; ++p)
                for (int64_t r = 0; r < R; ++r) {
                    double acc = 0;
                    for (int64_t q = 0; q < Q; ++q)
                        acc += double(at[q * lda + p]) * in[lay.off + l * lay.ls + q * lay.qs + r];
                    ref[(l * P + p) * R + r] = float(acc);
                }
        return ref;
    };
    std::vector<float> refs[kTileVariants];
    for (int v = 0; v < kTileVariants; ++v) refs[v] = reference(layouts[v]);
    std::vector<fc_tile_cfg_t> cfgs;
    for (int tp : {1, 2, 4, 8})
        for (int tc : {1, 4})
            for (int wp : {1, 2, 4, 8}) cfgs.push_back(fc_tile_cfg_t{tp, tc, wp, 0, 0, 0});
    for (int tp : {1, 2})
        for (int tc : {2, 4})
            for (int wp : {1, 2, 4}) cfgs.push_back(fc_tile_cfg_t{tp, tc, wp, 0, 1, 0});
    for (fc_tile_cfg_t cfg : cfgs)
        for (TileVariant variant : {kStagedDivider, kStagedInt64, kDirect, kDirectPaddedQ, kStagedShiftedIn}) {
            cfg.direct = variant == kDirect || variant == kDirectPaddedQ;
            if (fc_tile_cols(cfg) > FC_MAX_COLS || fc_tile_rows(cfg) > FC_MAX_ROWS) continue;
            ASSERT_LE(fc_tile_smem_bytes(cfg), size_t(FC_TILE_SMEM_MAX));
            fc_contraction k =
                fc_contraction_make(at.data(), lda, in.data(), nullptr, nullptr, L, P, Q, R, L, 0, 0, 1);
            ASSERT_TRUE(k.small);
            if (variant == kStagedInt64) k.small = 0, k.out_plain = 0; // and the general output map
            // a direct tile reads In from shared memory (the fused kernel's intermediate): In in a shared stand-in
            cta_emu::GuardedBuffer in_shared(cfg.direct ? in.size() * sizeof(float) : 0,
                                             cta_emu::GuardedBuffer::kShared);
            if (cfg.direct) std::memcpy(in_shared.data(), in.data(), in.size() * sizeof(float));
            k.in =
                (cfg.direct ? reinterpret_cast<const float *>(in_shared.data()) : in.data()) + layouts[variant].off;
            k.in_ls = layouts[variant].ls;
            k.in_qs = layouts[variant].qs;
            const auto &ref = refs[variant];
            if (cfg.direct) {
                k.out_pad = out_pad;
                k.div_out_row = ttl_divider_make(out_row);
            }
            const int64_t n = L * P * R, out_pad_used = cfg.direct ? out_pad : 0;
            std::vector<float> out(size_t(padded_size(n, out_row, out_pad_used)),
                                   std::numeric_limits<float>::quiet_NaN());
            k.out = out.data();
            const int64_t rows = fc_tile_rows(cfg), cols = fc_tile_cols(cfg);
            cta_emu::GuardedBuffer smem(fc_tile_smem_bytes(cfg), cta_emu::GuardedBuffer::kShared);
            cta_emu::not_shared() = 0;
            for (int64_t by = 0; by < (P + rows - 1) / rows; ++by)
                for (int64_t bx = 0; bx < (L * R + cols - 1) / cols; ++bx) {
                    smem.poison();
                    const bool consistent = cta_emu::run_cta(FC_THREADS, [&] {
#define EMU_TILE(TP, TC, MMA)                                                                                      \
    if (cfg.direct)                                                                                                \
        fc_tile<TP, TC, true, MMA>(k, cfg.wp, by * rows, bx * cols, smem.data());                                  \
    else                                                                                                           \
        fc_tile<TP, TC, false, MMA>(k, cfg.wp, by * rows, bx * cols, smem.data())
                        FC_TILE_DISPATCH(cfg, EMU_TILE);
#undef EMU_TILE
                    });
                    ASSERT_TRUE(consistent) << "divergent barrier";
                    ASSERT_TRUE(smem.guard_intact());
                }
            int64_t untouched_written = 0;
            const std::vector<float> got = unpad(out, n, out_row, out_pad_used, &untouched_written);
            const char *name[] = {"staged, divider", "staged, int64", "direct", "direct, padded q rows",
                                  "staged, In off its alignment"};
            const std::string what = std::string(cfg.mma ? "tensor cores " : "FFMA ") + std::to_string(cfg.tp) +
                                     "x" + std::to_string(cfg.tc) + " wp " + std::to_string(cfg.wp) + " " +
                                     name[variant];
            EXPECT_EQ(untouched_written, 0) << what;
            EXPECT_LE(ttl_test::rel_err(got, ref), 1e-6) << what;
            EXPECT_EQ(cta_emu::misaligned_accesses(), 0) << what;
            EXPECT_EQ(cta_emu::async_copy_errors(), 0) << what;
            EXPECT_EQ(cta_emu::not_shared(), 0) << what;
            cta_emu::misaligned_accesses() = 0;
            cta_emu::async_copy_errors() = 0;
            cta_emu::not_shared() = 0;
        }
}

INSTANTIATE_TEST_SUITE_P(Rows, FcEmulationTile,
                         ::testing::Values(int64_t{1}, int64_t{3}, int64_t{9}, int64_t{12}, int64_t{40}));

} // namespace

#else

TEST(FcEmulation, Skipped) { GTEST_SKIP() << "built without CUDA headers"; }

#endif
