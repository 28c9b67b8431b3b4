// The TT-conv CUDA path on the CPU: the plans made by the library's own planner (ttl_conv_tt_plan, with an
// emulated device of few multiprocessors), run by the library's own schedule (conv_tt_schedule) over the kernel
// bodies of src/cuda/conv_tt.cuh executed on the host: the fused body as CTAs of one fiber per CUDA thread
// (tests/common/cta_emulator.h, NaN-poisoned shared memory with a guard zone), the grid-stride kernels as an odd
// number of threads run one after another. Every case of tests/common/conv_cases.h, both variants, both core
// orders, both layouts, fused and chunked, and budgets small enough to force many channels-first chunks; outputs
// and workspaces start as NaN, workspaces carry a guard zone. The GPU tests (tests/gpu/test_cuda_conv.cpp) then
// check the same code compiled for the device. Label cpu.
#include <gtest/gtest.h>

#if defined(TTL_WITH_CUDA) && __has_include(<cudnn.h>)
#define TTL_CONV_EMULATION 1
#endif

#ifdef TTL_CONV_EMULATION
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common/cta_emulator.h" // before the kernel code: it defines CTA_HOST_EMULATION and the hooks
#include "common/conv_cases.h"
#include "common/test_util.h"
#include "common/thread_order_check.h"
#include "cuda/conv_tt.cuh"

using namespace ttl_test;

namespace {

// ---- a layer in host memory, laid out as ttl_cuda_conv_layer_create would on the device -----------------------

ttl_status_t emulated_occupancy(const ttl_cuda_conv_plan_t *p, size_t smem, int *blocks_per_sm);

struct HostConvLayer {
    ttl_conv_fused_occupancy_fn occupancy = emulated_occupancy; // what the planner is told of resident blocks
    ttl_cuda_handle_t handle{};
    ttl_cuda_conv_layer_t layer{};
    float *g0 = nullptr;
    float *at[TTL_CONV_VARIANTS][TTL_CONV_ORDERS] = {};

    HostConvLayer(const CaseData &d, bool bias, int sm_count, size_t smem_optin) {
        handle.sm_count = sm_count;
        handle.smem_per_block_optin = smem_optin;
        layer.handle = &handle;
        layer.desc = d.desc;
        layer.param_count = int64_t(d.cores.size());
        layer.d_cores = const_cast<float *>(d.cores.data());
        layer.d_bias = bias ? const_cast<float *>(d.bias.data()) : nullptr;
        EXPECT_EQ(ttl_conv_host_g0(&g0, &layer.r0pad, &d.desc, d.cores.data()), TTL_STATUS_SUCCESS);
        layer.d_g0 = g0;
        EXPECT_EQ(ttl_conv_host_chains(layer.chain, at, &d.desc, d.cores.data()), TTL_STATUS_SUCCESS);
        for (int v = 0; v < TTL_CONV_VARIANTS; ++v)
            for (int o = 0; o < TTL_CONV_ORDERS; ++o) layer.d_at[v][o] = at[v][o];
        layer.tt_ok = g0 != nullptr && at[0][0] != nullptr;
    }
    ~HostConvLayer() {
        std::free(g0);
        for (auto &row : at)
            for (float *a : row) std::free(a);
    }
    HostConvLayer(const HostConvLayer &) = delete;
    HostConvLayer &operator=(const HostConvLayer &) = delete;
};

// The emulated device runs one resident fused block per multiprocessor whenever the shared memory fits.
ttl_status_t emulated_occupancy(const ttl_cuda_conv_plan_t *p, size_t smem, int *blocks_per_sm) {
    *blocks_per_sm = smem <= p->layer->handle->smem_per_block_optin ? 1 : 0;
    return TTL_STATUS_SUCCESS;
}

// An H100 by shared memory alone: 228 KB per multiprocessor, 1 KB of it reserved per block, and two blocks at
// most (the fused kernels' registers allow no more at 256 threads).
ttl_status_t h100_occupancy(const ttl_cuda_conv_plan_t *p, size_t smem, int *blocks_per_sm) {
    *blocks_per_sm =
        smem <= p->layer->handle->smem_per_block_optin ? std::min<int>(2, int(228 * 1024 / (smem + 1024))) : 0;
    return TTL_STATUS_SUCCESS;
}

// ---- the executor of conv_tt_schedule on the host --------------------------------------------------------------

constexpr int64_t kGridThreads = 37; // odd, so that grid-stride loops end mid-group
// The chunked tensor-core step's grid: 3 blocks of 2 warps (6 warps, so that its warp-stride loop ends mid-way).
constexpr int64_t kMmaGridBlocks = 3, kMmaBlockThreads = 64;
// The host runs a few hundred million multiply-adds a second: the big cases (a CIFAR layer, VGG 512 -> 512) run
// the modes below this many, the small cases every mode.
constexpr int64_t kMaxEmulatedMacs = 600'000'000;

struct HostExec {
    const ttl_cuda_conv_plan_t *p;
    bool fused_ok = true; // every block kept to its shared memory and passed its barriers together

    template <int kVariant>
    void fused_variant(float *out, const float *x, const ttl_conv_cf_chunk_t &ch, int64_t npix) {
        const int64_t tiles = (npix + p->tile_px - 1) / p->tile_px;
        const int64_t grid = std::min<int64_t>(tiles, p->max_blocks);
        const ttl_cuda_conv_layer_t *l = p->layer;
        const float *bias = kVariant == TTL_CONV_VARIANT_SF ? l->d_bias : nullptr;
        cta_emu::GuardedBuffer smem(p->fused_smem, cta_emu::GuardedBuffer::kShared);
        for (int64_t block = 0; block < grid; ++block) {
            smem.poison();
            fused_ok &= cta_emu::run_cta(TTL_CONV_THREADS, [&] {
                float4 *s = reinterpret_cast<float4 *>(smem.data());
                if (p->mma)
                    tt_fused_cta<kVariant, true>(out, x, p->d_at, l->d_g0, bias, p->chain, p->geom, ch, p->tile_px,
                                                 tiles, block, grid, s);
                else
                    tt_fused_cta<kVariant, false>(out, x, p->d_at, l->d_g0, bias, p->chain, p->geom, ch, p->tile_px,
                                                  tiles, block, grid, s);
            });
            fused_ok &= smem.guard_intact();
        }
    }
    ttl_status_t fused(float *out, const float *x, const ttl_conv_cf_chunk_t &ch, int64_t npix) {
        if (p->variant == TTL_CONV_VARIANT_SF)
            fused_variant<TTL_CONV_VARIANT_SF>(out, x, ch, npix);
        else
            fused_variant<TTL_CONV_VARIANT_CF>(out, x, ch, npix);
        return TTL_STATUS_SUCCESS;
    }
    ttl_status_t produce(float *buf, const float *x, const ttl_conv_cf_chunk_t &ch, int64_t first, int64_t P) {
        for (int64_t i = 0; i < kGridThreads; ++i) {
            const int64_t t = cta_emu::grid_thread(i, kGridThreads);
            if (p->variant == TTL_CONV_VARIANT_SF)
                produce_sf<int64_t>(buf, P, P, ttl_conv_state_layout_t{}, sf_pixels{p->geom, first}, x,
                                    p->layer->d_g0, p->geom, t, kGridThreads);
            else
                produce_cf<int64_t>(buf, P, P, ttl_conv_state_layout_t{}, cf_pixels{ch, first}, x, p->geom, t,
                                    kGridThreads);
        }
        return TTL_STATUS_SUCCESS;
    }
    ttl_status_t step(const ttl_conv_tt_step_t &st, const float *in, float *out, int64_t P) {
        if (st.mma_mt > 0) { // warp-wide products: blocks of fibers, whole warps
            for (int64_t block = 0; block < kMmaGridBlocks; ++block)
                fused_ok &= cta_emu::run_cta(kMmaBlockThreads, [&] {
                    tt_step_any<int64_t>(p->d_at + st.at_offset, st, in, out, P,
                                         block * kMmaBlockThreads + cta_emu_thread_index(),
                                         kMmaGridBlocks * kMmaBlockThreads);
                });
            return TTL_STATUS_SUCCESS;
        }
        for (int64_t i = 0; i < kGridThreads; ++i) {
            const int64_t t = cta_emu::grid_thread(i, kGridThreads);
            tt_step_any<int64_t>(p->d_at + st.at_offset, st, in, out, P, t, kGridThreads);
        }
        return TTL_STATUS_SUCCESS;
    }
    ttl_status_t sink(float *out, const float *buf, const ttl_conv_cf_chunk_t &ch, int64_t first, int64_t P) {
        for (int64_t i = 0; i < kGridThreads; ++i) {
            const int64_t t = cta_emu::grid_thread(i, kGridThreads);
            if (p->variant == TTL_CONV_VARIANT_SF)
                sink_sf<int64_t>(buf, P, P, sf_pixels{p->geom, first}, out, p->layer->d_bias, p->geom, t,
                                 kGridThreads);
            else
                sink_cf<int64_t>(buf, P, P, first, ch.npix, p->chain.out_size, out, t, kGridThreads);
        }
        return TTL_STATUS_SUCCESS;
    }
    ttl_status_t cf_conv(float *y, const float *U, const ttl_conv_cf_chunk_t &ch) {
        for (int64_t i = 0; i < kGridThreads; ++i) {
            const int64_t t = cta_emu::grid_thread(i, kGridThreads);
            ::cf_conv(y, U, p->layer->d_cores, p->layer->d_bias, p->geom, ch, t, kGridThreads);
        }
        return TTL_STATUS_SUCCESS;
    }
};

// ---- runs ------------------------------------------------------------------------------------------------------

struct Mode {
    const char *name;
    ttl_algo_t algo;
    ttl_order_t order;
    int force_unfused;
    size_t budget; // the plan's workspace limit; 0: the normal bound; 1: a quarter of one image; else these bytes
    int tile_px;   // > 0: the fused tile forced to this many pixels where it fits
    int fused_form = TTL_CONV_FUSED_DEFAULT; // the planner input ttl_cuda_conv_plan_t.fused_form
    int mma = 0;                             // TT steps in 3xTF32 on (emulated) tensor cores
};

const Mode kModes[] = {
    {"sf_auto", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 0, 0},
    {"cf_auto", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 0, 0, 0},
    {"sf_f2l", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0},
    {"sf_l2f", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_LAST_TO_FIRST, 0, 0, 0},
    {"cf_f2l", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0},
    {"cf_l2f", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_LAST_TO_FIRST, 0, 0, 0},
    {"sf_unfused_f2l", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, 1, 0, 0},
    {"sf_unfused_l2f", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_LAST_TO_FIRST, 1, 0, 0},
    {"cf_unfused_f2l", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_FIRST_TO_LAST, 1, 0, 0},
    {"cf_unfused_l2f", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_LAST_TO_FIRST, 1, 0, 0},
    {"sf_unfused_small_chunks", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 1, 1, 0},
    {"cf_small_chunks", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 0, 1, 0},
    {"cf_unfused_small_chunks", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 1, 1, 0},
    {"cf_unfused_one_pixel_chunks", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 1, 64, 0},
    {"sf_unfused_unlimited", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 1, SIZE_MAX, 0},
    {"cf_unfused_unlimited", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 1, SIZE_MAX, 0},
    {"sf_tile16", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 0, 16}, // padded state rows (fused_row_stride)
    {"cf_tile32", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 0, 0, 32},
    {"sf_largest_tile", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 0, 0, TTL_CONV_FUSED_LARGEST_TILE},
    // the chain once per value of the last input mode, the last step summing the slices (layers with d >= 2)
    {"sf_sliced", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, TTL_CONV_FUSED_SLICED},
    {"sf_sliced_tile16", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 16, TTL_CONV_FUSED_SLICED},
    // the tensor-core steps: both orders, fused (plain, padded rows, sliced) and chunked
    {"sf_f2l_mma", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, TTL_CONV_FUSED_DEFAULT, 1},
    {"sf_l2f_mma", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_LAST_TO_FIRST, 0, 0, 0, TTL_CONV_FUSED_DEFAULT, 1},
    {"cf_f2l_mma", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, TTL_CONV_FUSED_DEFAULT, 1},
    {"cf_l2f_mma", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_LAST_TO_FIRST, 0, 0, 0, TTL_CONV_FUSED_DEFAULT, 1},
    {"sf_tile16_mma", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 0, 16, TTL_CONV_FUSED_DEFAULT, 1},
    {"sf_sliced_mma", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, TTL_CONV_FUSED_SLICED, 1},
    {"sf_unfused_mma", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 1, 0, 0, TTL_CONV_FUSED_DEFAULT, 1},
    {"cf_unfused_small_chunks_mma", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 1, 1, 0, TTL_CONV_FUSED_DEFAULT, 1},
};

// The tensor-core steps switch fibers at every warp-wide product: those modes run on the smaller cases only.
constexpr int64_t kMaxEmulatedMmaMacs = 60'000'000;

// Plans mode m for case c over layer h (the test overrides set for it; ConvEmulation's TearDown resets them).
ttl_status_t plan_mode(ttl_cuda_conv_plan_t *p, HostConvLayer &h, const Mode &m, const ConvCase &c,
                       const ttl_conv_shape_t &shape, const ttl_conv_stats_t &stats) {
    ttl_conv_tt_test_overrides.force_unfused = m.force_unfused;
    ttl_conv_tt_test_overrides.tile_px = m.tile_px;
    p->layer = &h.layer;
    p->shape = shape;
    // a quarter of one image makes channels first take bands of output rows or columns; 64 bytes makes it take
    // one output pixel per chunk
    const size_t image_bytes = size_t(h.layer.desc.in_channels * c.height * c.width) * sizeof(float);
    p->ws_limit = m.budget == 1 ? std::max<size_t>(image_bytes / 4, 64) : m.budget;
    const ttl_status_t geom = ttl_conv_make_geom(&p->geom, &h.layer, &shape, &stats);
    if (geom != TTL_STATUS_SUCCESS) return geom;
    p->fused_form = m.fused_form;
    p->mma = m.mma;
    return ttl_conv_tt_plan(p, m.algo, m.order, h.occupancy);
}

// Runs plan p on the emulated device over input x: y (NaN at the start), with the run's own checks.
std::vector<float> run_plan(const ttl_cuda_conv_plan_t &p, const float *x, size_t y_size) {
    cta_emu::GuardedBuffer ws(p.info.workspace_bytes);
    std::vector<float> y(y_size, std::numeric_limits<float>::quiet_NaN());
    HostExec exec{&p};
    cta_emu::misaligned_accesses() = 0;
    cta_emu::async_copy_errors() = 0;
    cta_emu::bad_indices() = 0;
    EXPECT_EQ(conv_tt_schedule(&p, exec, y.data(), x, ws.data()), TTL_STATUS_SUCCESS);
    EXPECT_EQ(cta_emu::misaligned_accesses(), 0) << "vector accesses off their alignment";
    EXPECT_EQ(cta_emu::bad_indices(), 0) << "a lookup past its table (a block's decoded pixels)";
    EXPECT_EQ(cta_emu::async_copy_errors(), 0) << "asynchronous copies not from device into shared memory, or not "
                                                  "waited for";
    EXPECT_TRUE(exec.fused_ok) << "a fused block wrote past its shared memory or diverged at a barrier";
    EXPECT_TRUE(ws.guard_intact()) << "workspace written past workspace_bytes";
    return y;
}

struct Param {
    size_t case_index;
    int layout;
};

std::string param_name(const ::testing::TestParamInfo<Param> &info) {
    std::string n = cases()[info.param.case_index].name;
    for (char &c : n)
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
    return n + (info.param.layout == TTL_LAYOUT_NHWC ? "_nhwc" : "_nchw");
}

class ConvEmulation : public ::testing::TestWithParam<Param> {
  protected:
    void TearDown() override { ttl_conv_tt_test_overrides = ttl_conv_tt_overrides_t{0, 0, 0}; }
};

TEST_P(ConvEmulation, EveryVariantOrderAndChunking) {
    const ConvCase &c = cases()[GetParam().case_index];
    const int layout = GetParam().layout;
    const CaseData &d = case_data(GetParam().case_index);
    const ttl_conv_shape_t shape{c.batch, c.height, c.width, ttl_layout_t(layout)};
    ttl_conv_stats_t stats;
    ASSERT_EQ(ttl_conv_stats(&stats, &d.desc, &shape), TTL_STATUS_SUCCESS);
    const float *x = layout == TTL_LAYOUT_NCHW ? d.x_nchw.data() : d.x_nhwc.data();
    const std::vector<float> &ref = d.y_ref.at(layout);
    const size_t x_bytes = d.x_nchw.size() * sizeof(float), y_bytes = ref.size() * sizeof(float);

    auto run_mode = [&](HostConvLayer &h, const Mode &m) {
        SCOPED_TRACE(m.name);
        ttl_cuda_conv_plan_t p{};
        const ttl_status_t planned = plan_mode(&p, h, m, c, shape, stats);
        const int32_t d_cores = d.desc.num_cores;
        if (m.fused_form == TTL_CONV_FUSED_SLICED && (d_cores < 2 || d.desc.in_modes[d_cores - 1] < 2)) {
            EXPECT_EQ(planned, TTL_STATUS_UNSUPPORTED) << "no last input mode to slice over";
            return;
        }
        ASSERT_EQ(planned, TTL_STATUS_SUCCESS);
        if (m.fused_form == TTL_CONV_FUSED_SLICED) {
            EXPECT_EQ(p.fused, 1);
            EXPECT_EQ(p.chain.slices, d.desc.in_modes[d_cores - 1]);
        }
        if (m.force_unfused) EXPECT_EQ(p.fused, 0);
        if (m.tile_px > 0 && p.fused && 2 * size_t(p.chain.max_state) * (m.tile_px + 4) * sizeof(float) < 64 * 1024)
            EXPECT_EQ(p.tile_px, m.tile_px) << "a small state should take the forced tile";
        // What a caller gets from a named algorithm: within twice the larger activation (a forced core order
        // may need more: its intermediate can be many times the activations)
        if (m.order == TTL_ORDER_AUTO && m.budget == 0 && !m.force_unfused) {
            const size_t least =
                m.algo == TTL_ALGO_CHANNELS_FIRST ? cf_least_u_bytes(d.desc, c.height, c.width) : 0;
            EXPECT_LE(p.info.workspace_bytes, std::max(2 * std::max(x_bytes, y_bytes), least))
                << "workspace above twice the larger activation";
        }
        if (m.budget == 64) EXPECT_EQ(p.cf_rb * p.cf_cw, 1) << "one output pixel per chunk";
        if (m.budget == SIZE_MAX && m.algo == TTL_ALGO_CHANNELS_FIRST)
            EXPECT_EQ(p.cf_chunks, 1) << "an unlimited workspace still cut into chunks";
        if (m.budget == SIZE_MAX && m.algo == TTL_ALGO_SPATIAL_FIRST)
            EXPECT_GE(p.chunk_px, c.batch * d.oh * d.ow) << "an unlimited workspace still cut into chunks";

        for (int k = 0; k < p.chain.num_steps; ++k) {
            EXPECT_EQ(p.chain.steps[k].mma_mt > 0, m.mma == 1) << "step " << k << ": the form asked for";
            if (!p.fused || !m.mma) // the chunked kernels and the FFMA steps read and write plain rows
                EXPECT_EQ(p.chain.steps[k].in_layout.swizzle, TTL_CONV_SWIZZLE_NONE) << "step " << k;
        }
        // a forced bad order or halo-heavy chunking of a big layer
        if (p.info.macs > (m.mma ? kMaxEmulatedMmaMacs : kMaxEmulatedMacs)) return;
        const std::vector<float> y = run_plan(p, x, ref.size());
        EXPECT_LE(rel_err(y, ref), 1e-5) // 3xTF32 included: its products err by a few 2^-22
            << "mma " << m.mma << "fused " << p.fused << " tile_px " << p.tile_px << " chunk_px " << p.chunk_px
            << " cf_bc " << p.cf_bc << " cf_rb " << p.cf_rb << " cf_cw " << p.cf_cw;
    };

    // 3 multiprocessors: a persistent fused grid smaller than the tile count, so blocks loop over tiles
    HostConvLayer few_sms(d, c.bias, 3, 227 * 1024);
    ASSERT_TRUE(few_sms.layer.tt_ok);
    for (const Mode &m : kModes) run_mode(few_sms, m);
    // an H100's 132: the planner spreads pixels over every multiprocessor, so fused tiles get small, and may take
    // a smaller one for two blocks per multiprocessor
    HostConvLayer h100(d, c.bias, 132, 227 * 1024);
    h100.occupancy = h100_occupancy;
    for (const Mode &m : kModes)
        if (m.order == TTL_ORDER_AUTO && m.budget == 0 && !m.force_unfused && m.tile_px == 0) run_mode(h100, m);
    // a device without asynchronous copies (before sm_80): the fused blocks stage their cores with plain loads
    const cta_emu::ScopedAsyncCopies no_async_copies(false);
    SCOPED_TRACE("without asynchronous copies");
    for (const Mode &m : {kModes[0], kModes[1]}) run_mode(few_sms, m);
}

// A missing barrier in a fused block (or a grid-stride kernel reading what another of its threads writes) makes
// the result depend on the order the threads run in; the kernels use no atomics, so a race-free kernel gives the
// same bits in every order. Every fused form and tile, and the chunked kernels of both variants, in descending and
// in shuffled order against the ascending run (on the 3-multiprocessor device: blocks loop over tiles, so one
// tile's barriers meet the next's).
bool order_mode(const Mode &m) {
    if (m.budget == 1) return m.force_unfused; // sf_ and cf_unfused_small_chunks
    return m.budget == 0 && (m.order == TTL_ORDER_AUTO || m.fused_form == TTL_CONV_FUSED_SLICED);
}
constexpr int64_t kMaxOrderMacs = 60'000'000;

TEST_P(ConvEmulation, SameBitsInEveryThreadOrder) {
    const ConvCase &c = cases()[GetParam().case_index];
    const int layout = GetParam().layout;
    const ttl_conv_shape_t shape{c.batch, c.height, c.width, ttl_layout_t(layout)};
    const ttl_conv_desc_t desc = make_desc(c);
    ttl_conv_stats_t stats;
    ASSERT_EQ(ttl_conv_stats(&stats, &desc, &shape), TTL_STATUS_SUCCESS);
    if (std::min(stats.macs_spatial_first, stats.macs_channels_first) > kMaxOrderMacs) // before the oracle runs
        GTEST_SKIP() << "both variants above " << kMaxOrderMacs << " multiply-adds";
    const CaseData &d = case_data(GetParam().case_index);
    const float *x = layout == TTL_LAYOUT_NCHW ? d.x_nchw.data() : d.x_nhwc.data();
    const size_t y_size = d.y_ref.at(layout).size();
    HostConvLayer h(d, c.bias, 3, 227 * 1024);
    ASSERT_TRUE(h.layer.tt_ok);
    int runs = 0;
    for (const Mode &m : kModes) {
        if (!order_mode(m)) continue;
        SCOPED_TRACE(m.name);
        ttl_cuda_conv_plan_t p{};
        if (plan_mode(&p, h, m, c, shape, stats) != TTL_STATUS_SUCCESS || p.info.macs > kMaxOrderMacs) continue;
        expect_same_bits_in_every_order([&] { return run_plan(p, x, y_size); }, 7 + runs,
                                        "fused " + std::to_string(p.fused) + " tile_px " +
                                            std::to_string(p.tile_px) + " slices " +
                                            std::to_string(p.chain.slices));
        ++runs;
    }
    if (runs == 0) GTEST_SKIP() << "every mode above " << kMaxOrderMacs << " multiply-adds";
}

std::vector<Param> all_params() {
    std::vector<Param> v;
    for (size_t i = 0; i < cases().size(); ++i)
        for (int layout : {TTL_LAYOUT_NCHW, TTL_LAYOUT_NHWC}) v.push_back({i, layout});
    return v;
}

INSTANTIATE_TEST_SUITE_P(Cases, ConvEmulation, ::testing::ValuesIn(all_params()), param_name);

// ---- the fused tile's size, planned for the VGG 512 -> 512 layer at 14 x 14, batch 128 (no run) ----------------

struct TilePlan {
    int32_t fused, tile_px, max_blocks, slices;
    bool operator==(const TilePlan &o) const {
        return fused == o.fused && tile_px == o.tile_px && max_blocks == o.max_blocks && slices == o.slices;
    }
};

std::ostream &operator<<(std::ostream &os, const TilePlan &t) {
    return os << "{fused " << t.fused << ", tile_px " << t.tile_px << ", max_blocks " << t.max_blocks << ", slices "
              << t.slices << "}";
}

TilePlan plan_vgg_512(int64_t rank, ttl_algo_t algo, int32_t form = TTL_CONV_FUSED_DEFAULT,
                      ttl_conv_tt_chain_t *chain = nullptr, int32_t mma = 0) {
    CaseData d;
    d.desc = conv_desc({8, 8, 8}, {8, 8, 8}, {rank, rank, rank, 1}, 3, 3, 1, 1, 1, 1, 1, 1);
    d.cores = random_vector(conv_param_count(d.desc), 7);
    HostConvLayer h(d, false, 132, 227 * 1024);
    h.occupancy = h100_occupancy;
    const ttl_conv_shape_t shape{128, 14, 14, TTL_LAYOUT_NCHW};
    ttl_conv_stats_t stats;
    EXPECT_EQ(ttl_conv_stats(&stats, &d.desc, &shape), TTL_STATUS_SUCCESS);
    ttl_cuda_conv_plan_t p{};
    p.layer = &h.layer;
    p.shape = shape;
    p.fused_form = form;
    p.mma = mma;
    EXPECT_EQ(ttl_conv_make_geom(&p.geom, &h.layer, &shape, &stats), TTL_STATUS_SUCCESS);
    const ttl_order_t order = form == TTL_CONV_FUSED_SLICED ? TTL_ORDER_FIRST_TO_LAST : TTL_ORDER_AUTO;
    EXPECT_EQ(ttl_conv_tt_plan(&p, algo, order, h.occupancy), TTL_STATUS_SUCCESS);
    if (chain != nullptr) *chain = p.chain;
    return {p.fused, p.tile_px, p.max_blocks, p.chain.slices};
}

// Rank 4: 12-pixel tiles fit one block per SM, 4-pixel tiles two, and every step's items fill the block's threads
// either way: the planner takes the 4-pixel tile and two blocks. Rank 8: only 4-pixel tiles fit, one block.
TEST(ConvTilePlan, SmallerTileForASecondBlockAtTheSameWork) {
    for (ttl_algo_t algo : {TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST}) {
        EXPECT_EQ(plan_vgg_512(4, algo), (TilePlan{1, 4, 2 * 132, 1}));
        EXPECT_EQ(plan_vgg_512(8, algo), (TilePlan{1, 4, 132, 1}));
    }
}

// Sliced over its last input mode (8), the rank-8 chain's working state is 3 x 512 floats per pixel instead of
// 2 x 4,096: 12-pixel tiles with two blocks per SM. Rank 16 (8,192 floats per pixel) fits no fused block whole,
// so spatial first slices it by default rather than run the chunked kernels; channels first cannot slice.
TEST(ConvTilePlan, SlicedChainFitsLargerTilesAndRank16) {
    EXPECT_EQ(plan_vgg_512(8, TTL_ALGO_SPATIAL_FIRST, TTL_CONV_FUSED_SLICED), (TilePlan{1, 12, 2 * 132, 8}));
    const TilePlan r16 = plan_vgg_512(16, TTL_ALGO_SPATIAL_FIRST);
    EXPECT_EQ(r16.fused, 1);
    EXPECT_EQ(r16.slices, 8);
    const TilePlan r16_cf = plan_vgg_512(16, TTL_ALGO_CHANNELS_FIRST);
    EXPECT_EQ(r16_cf.fused, 0);
    EXPECT_EQ(r16_cf.slices, 1);
}

// A workspace limit of 64 bytes on the 512 -> 512 rank-8 layer at batch 1024, 56 x 56 would chunk a forward into
// millions of launches (4-pixel chunks spatial first, one output pixel per chunk channels first): refused with
// INSUFFICIENT_WORKSPACE. The default bound (twice the activations) plans both.
TEST(ConvTilePlan, ATinyWorkspaceLimitIsRefusedNotPlannedAsMillionsOfLaunches) {
    CaseData d;
    d.desc = conv_desc({8, 8, 8}, {8, 8, 8}, {8, 8, 8, 1}, 3, 3, 1, 1, 1, 1, 1, 1);
    d.cores = random_vector(conv_param_count(d.desc), 7);
    HostConvLayer h(d, false, 132, 227 * 1024);
    const ttl_conv_shape_t shape{1024, 56, 56, TTL_LAYOUT_NCHW};
    ttl_conv_stats_t stats;
    ASSERT_EQ(ttl_conv_stats(&stats, &d.desc, &shape), TTL_STATUS_SUCCESS);
    for (ttl_algo_t algo : {TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST})
        for (size_t limit : {size_t(64), size_t(0)}) {
            ttl_conv_tt_test_overrides.force_unfused = algo == TTL_ALGO_SPATIAL_FIRST; // SF fuses otherwise
            ttl_cuda_conv_plan_t p{};
            p.layer = &h.layer;
            p.shape = shape;
            p.ws_limit = limit;
            ASSERT_EQ(ttl_conv_make_geom(&p.geom, &h.layer, &shape, &stats), TTL_STATUS_SUCCESS);
            EXPECT_EQ(ttl_conv_tt_plan(&p, algo, TTL_ORDER_AUTO, h.occupancy),
                      limit == 64 ? TTL_STATUS_INSUFFICIENT_WORKSPACE : TTL_STATUS_SUCCESS)
                << ttl_algo_name(algo) << " limit " << limit;
            ttl_conv_tt_test_overrides = ttl_conv_tt_overrides_t{0, 0, 0};
        }
}

// The tensor-core steps need no more shared memory than the FFMA ones: the same tiles and blocks. Their warp
// tiles: two 16-row tiles for the 64-row steps, one for the last step's 8 rows (spatial first, first to last:
// O = s_3), four 8-column tiles everywhere (the columns n = (l, rp) of a 4-pixel tile number 256 in every step).
TEST(ConvTilePlan, TensorCoreStepsTakeTheSameTiles) {
    for (ttl_algo_t algo : {TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST})
        for (int64_t rank : {4, 8}) {
            ttl_conv_tt_chain_t chain{};
            EXPECT_EQ(plan_vgg_512(rank, algo, TTL_CONV_FUSED_DEFAULT, &chain, 1), plan_vgg_512(rank, algo));
            for (int k = 0; k < chain.num_steps; ++k) {
                const ttl_conv_tt_step_t &st = chain.steps[k];
                EXPECT_EQ(st.mma_mt, st.O > 16 ? 2 : 1) << "step " << k;
                EXPECT_EQ(st.mma_nt, 4) << "step " << k;
                EXPECT_EQ(st.Opad % 16, 8) << "step " << k << ": At rows on distinct banks for the fragments";
            }
        }
}

// ---- swizzled states of the fused tensor-core chains ------------------------------------------------------------

// Most distinct words one bank serves for a tensor-core B load (lanes (g, t): column n0 + g, row k0 + t + 4 r) of
// a step's input laid out by `swizzle` (conv_tt.cuh: row rho = l I + k of RP = R ld floats, its 8-float blocks
// XORed by state_xor), over every column tile and k of the step.
int b_fragment_ways(const ttl_conv_tt_step_t &st, int64_t ld, int32_t swizzle) {
    const int64_t RP = st.R * ld, N = st.L * RP;
    int worst = 1;
    for (int64_t n0 = 0; n0 < N; n0 += 8)
        for (int64_t k0 = 0; k0 < st.I; k0 += 8)
            for (int r = 0; r < 2; ++r) {
                std::vector<std::vector<int64_t>> bank(32);
                for (int lane = 0; lane < 32; ++lane) {
                    const int64_t n = n0 + lane / 4, k = k0 + lane % 4 + 4 * r;
                    if (n >= N || k >= st.I) continue;
                    const int64_t l = n / RP, rho = l * st.I + k;
                    const int64_t at = rho * RP + ((n - l * RP) ^ state_xor<int64_t>(swizzle, rho));
                    std::vector<int64_t> &b = bank[size_t(at % 32)];
                    if (std::find(b.begin(), b.end(), at) == b.end()) b.push_back(at);
                }
                for (const auto &b : bank) worst = std::max(worst, int(b.size()));
            }
    return worst;
}

// The planner swizzles the VGG 512 -> 512 layers' tensor-core states wherever their rows are a multiple of 16
// floats, and the B loads of those steps go from 2- or 4-way conflicts to none; the FFMA chains stay plain.
TEST(ConvSwizzle, TensorCoreStepsReadTheirInputWithoutBankConflicts) {
    int swizzled = 0;
    for (ttl_algo_t algo : {TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST})
        for (int64_t rank : {4, 8}) {
            SCOPED_TRACE(std::string(ttl_algo_name(algo)) + " rank " + std::to_string(rank));
            ttl_conv_tt_chain_t chain{}, ffma{};
            const TilePlan t = plan_vgg_512(rank, algo, TTL_CONV_FUSED_DEFAULT, &chain, 1);
            plan_vgg_512(rank, algo, TTL_CONV_FUSED_DEFAULT, &ffma, 0);
            const int64_t ld = fused_row_stride(t.tile_px);
            for (int k = 0; k < chain.num_steps; ++k) {
                const ttl_conv_tt_step_t &st = chain.steps[k];
                EXPECT_EQ(ffma.steps[k].in_layout.swizzle, TTL_CONV_SWIZZLE_NONE) << "step " << k;
                EXPECT_EQ(st.in_layout.swizzle, state_swizzle_for(st.R * ld)) << "step " << k;
                if (st.in_layout.swizzle == TTL_CONV_SWIZZLE_NONE) continue;
                ++swizzled;
                EXPECT_EQ(b_fragment_ways(st, ld, st.in_layout.swizzle), 1) << "step " << k;
                EXPECT_GE(b_fragment_ways(st, ld, TTL_CONV_SWIZZLE_NONE), 2) << "step " << k << " unswizzled";
            }
        }
    EXPECT_GE(swizzled, 8) << "the first two steps of each chain";
}

// Both swizzles remove the conflicts for any row length they are chosen for (rows of 16 to 512 floats, 1 to 64
// rows per l, column tiles straddling l), while plain rows of those lengths conflict.
TEST(ConvSwizzle, EitherSwizzleFitsEveryRowLengthItIsChosenFor) {
    for (int64_t RP = 16; RP <= 512; RP += 16)
        for (int64_t I : {1, 3, 8, 13, 64}) {
            ttl_conv_tt_step_t st{};
            st.L = 3, st.I = int32_t(I), st.R = 1;
            const int32_t swizzle = state_swizzle_for(RP);
            ASSERT_NE(swizzle, TTL_CONV_SWIZZLE_NONE);
            EXPECT_EQ(b_fragment_ways(st, RP, swizzle), 1) << "RP " << RP << " I " << I;
            if (I >= 4) EXPECT_GE(b_fragment_ways(st, RP, TTL_CONV_SWIZZLE_NONE), 2) << "RP " << RP << " I " << I;
        }
}

// Every writer of a swizzled state puts each element where its reader looks: for each element (l, o, c) of the
// step before (or channel row w, column c of the producer), state_at / mma_out_at against the reader's address of
// the same flat index, row rho = f / (R ld), column f % (R ld); and the reader's B loads (mma_b_offset) look there.
// The tensor-core chains of every test case, both variants and orders, sliced too, at every tile size that fits.
TEST(ConvSwizzle, WritersPutEveryElementWhereTheReaderLooks) {
    int checked[2] = {0, 0}; // writers that split their rows, and that merge them
    for (size_t ci = 0; ci < cases().size(); ++ci) {
        const ConvCase &c = cases()[ci];
        const CaseData &d = case_data(ci);
        HostConvLayer h(d, false, 3, 227 * 1024);
        ASSERT_TRUE(h.layer.tt_ok);
        for (ttl_algo_t algo : {TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST})
            for (ttl_order_t order : {TTL_ORDER_FIRST_TO_LAST, TTL_ORDER_LAST_TO_FIRST})
                for (int form : {TTL_CONV_FUSED_DEFAULT, TTL_CONV_FUSED_SLICED})
                    for (int tile = 4; tile <= TTL_CONV_MAX_TILE_PX; tile += 4) {
                        const Mode m{"", algo, order, 0, 0, tile, form, 1};
                        ttl_cuda_conv_plan_t p{};
                        const ttl_conv_shape_t shape{c.batch, c.height, c.width, TTL_LAYOUT_NCHW};
                        ttl_conv_stats_t stats;
                        ASSERT_EQ(ttl_conv_stats(&stats, &d.desc, &shape), TTL_STATUS_SUCCESS);
                        const ttl_status_t planned = plan_mode(&p, h, m, c, shape, stats);
                        ttl_conv_tt_test_overrides = ttl_conv_tt_overrides_t{0, 0, 0};
                        if (planned != TTL_STATUS_SUCCESS || !p.fused || p.tile_px != tile) continue;
                        const int64_t ld = fused_row_stride(p.tile_px);
                        for (int k = 0; k < p.chain.num_steps; ++k) {
                            const ttl_conv_tt_step_t &st = p.chain.steps[k];
                            const ttl_conv_state_layout_t &lay = st.in_layout;
                            if (lay.swizzle == TTL_CONV_SWIZZLE_NONE) continue;
                            const int64_t len = st.R * ld;
                            auto reader_at = [&](int64_t f) {
                                return f / len * len + ((f % len) ^ state_xor<int64_t>(lay.swizzle, f / len));
                            };
                            if (k == 0) { // the producer: rows of ld floats, in_size / slices of them
                                for (int64_t w = 0; w < p.chain.in_size / p.chain.slices; ++w)
                                    for (int64_t q = 0; q < ld; ++q)
                                        ASSERT_EQ(state_at<int64_t>(lay, ld, w, q), reader_at(w * ld + q))
                                            << c.name << " producer row " << w << " column " << q;
                                continue;
                            }
                            // the reader's B loads (mma_b_offset): lane t's column n, rows t + 4 r + k0
                            for (int64_t n = 0; n < st.L * len; ++n)
                                for (int t = 0; t < 4; ++t) {
                                    const int64_t l = n / len;
                                    const int64_t b = mma_b_offset<int64_t>(st, len, n, l, t);
                                    for (int64_t kk = t; kk < st.I; kk += 4)
                                        ASSERT_EQ(b + kk * len, reader_at((l * st.I + kk) * len + n - l * len))
                                            << c.name << " step " << k << " column " << n << " row " << kk;
                                }
                            const ttl_conv_tt_step_t &wr = p.chain.steps[k - 1];
                            const int64_t RPw = wr.R * ld;
                            ++checked[lay.split > 0 ? 0 : 1];
                            for (int64_t l = 0; l < wr.L; ++l)
                                for (int64_t c2 = 0; c2 < RPw; c2 += 2) // a lane's float2: even columns
                                    for (int64_t o = 0; o < wr.O; ++o) {
                                        const int64_t d_off = l * wr.O * RPw + c2;
                                        const int64_t d_rho = state_rho_of_column<int64_t>(lay, l, c2);
                                        ASSERT_EQ(mma_out_at<int64_t>(lay, d_off, d_rho, o, RPw),
                                                  reader_at(d_off + o * RPw))
                                            << c.name << " step " << k << " l " << l << " o " << o << " c " << c2;
                                    }
                        }
                    }
    }
    EXPECT_GT(checked[0], 0) << "no swizzled state written by a step that splits its rows";
    EXPECT_GT(checked[1], 0) << "no swizzled state written by a step that merges its rows";
}

// The fused tensor-core chains run on swizzled states give the reference's result, and the same bits as the same
// plan on plain states (the layout moves values, never the order of a sum): small cases whose tiles put rows of a
// multiple of 16 floats in both orders, sliced too, both layouts, so that both swizzles, both kinds of writer and
// the producers are run.
TEST(ConvSwizzle, SwizzledChainsGiveThePlainChainsBits) {
    int runs = 0, seen_swizzle[3] = {0, 0, 0}, seen_split = 0, seen_merge = 0, seen_producer = 0;
    for (const char *name : {"wide_input_1024", "d4", "pad0_r0_9"}) {
        size_t ci = 0;
        while (ci < cases().size() && std::string(cases()[ci].name) != name) ++ci;
        ASSERT_LT(ci, cases().size()) << name;
        const ConvCase &c = cases()[ci];
        const CaseData &d = case_data(ci);
        HostConvLayer h(d, c.bias, 3, 227 * 1024);
        ASSERT_TRUE(h.layer.tt_ok);
        for (int layout : {TTL_LAYOUT_NCHW, TTL_LAYOUT_NHWC})
            for (ttl_algo_t algo : {TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST})
                for (ttl_order_t order : {TTL_ORDER_FIRST_TO_LAST, TTL_ORDER_LAST_TO_FIRST})
                    for (int form : {TTL_CONV_FUSED_DEFAULT, TTL_CONV_FUSED_SLICED})
                        for (int tile : {4, 8, 12}) {
                            const Mode m{"", algo, order, 0, 0, tile, form, 1};
                            const ttl_conv_shape_t shape{c.batch, c.height, c.width, ttl_layout_t(layout)};
                            ttl_conv_stats_t stats;
                            ASSERT_EQ(ttl_conv_stats(&stats, &d.desc, &shape), TTL_STATUS_SUCCESS);
                            ttl_cuda_conv_plan_t p{};
                            const ttl_status_t planned = plan_mode(&p, h, m, c, shape, stats);
                            ttl_conv_tt_test_overrides = ttl_conv_tt_overrides_t{0, 0, 0};
                            if (planned != TTL_STATUS_SUCCESS || !p.fused || p.tile_px != tile) continue;
                            const float *x = layout == TTL_LAYOUT_NCHW ? d.x_nchw.data() : d.x_nhwc.data();
                            const std::vector<float> &ref = d.y_ref.at(layout);
                            ttl_cuda_conv_plan_t plain = p;
                            bool swizzled = false;
                            for (int k = 0; k < p.chain.num_steps; ++k) {
                                const ttl_conv_state_layout_t &lay = p.chain.steps[k].in_layout;
                                if (lay.swizzle == TTL_CONV_SWIZZLE_NONE) continue;
                                swizzled = true;
                                ++seen_swizzle[lay.swizzle];
                                if (k == 0)
                                    ++seen_producer;
                                else
                                    ++(lay.split > 0 ? seen_split : seen_merge);
                                plain.chain.steps[k].in_layout = ttl_conv_state_layout_t{};
                            }
                            if (!swizzled) continue;
                            SCOPED_TRACE(std::string(name) + " " + ttl_algo_name(algo) + " order " +
                                         std::to_string(order) + " form " + std::to_string(form) + " tile " +
                                         std::to_string(tile) + " layout " + std::to_string(layout));
                            const std::vector<float> y = run_plan(p, x, ref.size());
                            EXPECT_LE(rel_err(y, ref), 1e-5);
                            const std::vector<float> y_plain = run_plan(plain, x, ref.size());
                            EXPECT_EQ(0, std::memcmp(y.data(), y_plain.data(), y.size() * sizeof(float)))
                                << "swizzled and plain states differ";
                            ++runs;
                        }
    }
    EXPECT_GT(runs, 0);
    EXPECT_GT(seen_swizzle[TTL_CONV_SWIZZLE_4], 0);
    EXPECT_GT(seen_swizzle[TTL_CONV_SWIZZLE_2], 0);
    EXPECT_GT(seen_split, 0);
    EXPECT_GT(seen_merge, 0);
    EXPECT_GT(seen_producer, 0);
}

// The FFMA step's loads of At with row groups fastest (shift 0; TO = 8: two float4 per thread, items w of a
// 256-thread block, og = w mod o_groups):
// every quarter warp's float4 load reaches each bank once where o_groups is below 8 or a multiple of 4 (the paper's
// layers: O = m r of 32, 64, 128), at most twice elsewhere, and never more often than loading the halves in order.
TEST(ConvSwizzle, FfmaStepLoadsAtWithoutBankConflicts) {
    auto wavefronts = [](int64_t o_groups, bool swapped, int *worst) {
        int total = 0;
        *worst = 1;
        for (int64_t w0 = 0; w0 < TTL_CONV_THREADS; w0 += 8) // a quarter warp: items w0 .. w0 + 7
            for (int half = 0; half < 2; ++half) {
                std::vector<std::vector<int64_t>> bank(32);
                for (int64_t w = w0; w < w0 + 8; ++w) {
                    const int64_t og = w % o_groups;
                    const int swap = swapped ? at_half_swap<8, int64_t>(w, og, o_groups, 0) : 0;
                    const int64_t first = og * 8 + (half == 0 ? swap : 4 - swap); // this load's float4
                    for (int64_t f = first; f < first + 4; ++f) {
                        std::vector<int64_t> &b = bank[size_t(f % 32)];
                        if (std::find(b.begin(), b.end(), f) == b.end()) b.push_back(f);
                    }
                }
                int ways = 1;
                for (const auto &b : bank) ways = std::max(ways, int(b.size()));
                total += ways;
                *worst = std::max(*worst, ways);
            }
        return total;
    };
    for (int64_t o_groups = 1; o_groups <= 40; ++o_groups) {
        int worst = 0, worst_in_order = 0;
        const int total = wavefronts(o_groups, true, &worst);
        const int total_in_order = wavefronts(o_groups, false, &worst_in_order);
        EXPECT_EQ(worst, o_groups < 8 || o_groups % 4 == 0 ? 1 : 2) << o_groups << " row groups";
        EXPECT_LE(total, total_in_order) << o_groups << " row groups";
        if (o_groups >= 5 && o_groups % 8 != 0) EXPECT_LT(total, total_in_order) << o_groups << " row groups";
        if (o_groups % 8 == 0) EXPECT_EQ(worst_in_order, 2) << o_groups << " row groups, halves in order";
    }
}

// ---- the FFMA step's item walk ---------------------------------------------------------------------------------

// Shared-memory wavefronts of one FFMA step's accesses (TO-row by 4-column items of a 256-thread block, the walk
// of ffma_item_at at `shift`, the At half swap of at_half_swap): per access instruction, the most distinct words
// one bank serves, counted per phase of `phase` threads (8: quarter warps for 128-bit accesses, 16 for 64-bit;
// 32: a whole warp at once, the other bound). Loads are one value of i (TO / 4 float4 or one float2 of At, one
// float4 of the state), stores all TO rows; state rows RP = 4 n_groups floats, l strides I RP and O RP, the last
// row group cut at O.
struct Wavefronts {
    int64_t loads = 0, stores = 0;
    int worst_store = 0;
};

Wavefronts ffma_wavefronts(int TO, int64_t o_groups, int64_t n_groups, int64_t L, int64_t O, int shift, int phase) {
    const int64_t I = 64, RP = 4 * n_groups, items = o_groups * L * n_groups;
    Wavefronts wf;
    struct Access {
        int64_t w, first; // the thread's item, its access's first float
    };
    auto ways = [&](const std::vector<Access> &acc, int width) {
        int total = 0, worst = 0;
        const int per_phase = width == 2 ? std::min(phase * 2, 32) : phase; // 64-bit: half warps
        for (int p0 = 0; p0 < 32; p0 += per_phase) {
            int64_t words[32][32 * 4]; // per bank, the distinct words asked of it
            int count[32] = {0}, k = 0;
            for (const Access &a : acc) {
                if (a.w % 32 < p0 || a.w % 32 >= p0 + per_phase) continue;
                for (int64_t f = a.first; f < a.first + width; ++f) {
                    const size_t b = size_t(f % 32);
                    if (std::find(words[b], words[b] + count[b], f) == words[b] + count[b])
                        words[b][count[b]++] = f;
                    k = std::max(k, count[b]);
                }
            }
            total += k;
            worst = std::max(worst, k);
        }
        return std::make_pair(total, worst);
    };
    for (int64_t w0 = 0; w0 < items; w0 += 32) {
        std::vector<Access> a_lo, a_hi, state;
        std::vector<std::vector<Access>> store{size_t(TO)};
        for (int64_t w = w0; w < std::min(w0 + 32, items); ++w) {
            const ffma_item<int64_t> it = ffma_item_at<int64_t>(w, o_groups, n_groups, shift);
            const int swap = TO == 8 ? at_half_swap<8, int64_t>(w, it.og, o_groups, shift) : 0;
            a_lo.push_back({w, it.og * TO + swap});
            a_hi.push_back({w, it.og * TO + 4 - swap});
            state.push_back({w, it.l * I * RP + it.ng * 4});
            for (int t = 0; t < TO; ++t) {
                const int64_t o = it.og * TO + (t ^ swap);
                if (o < O) store[size_t(t)].push_back({w, it.l * O * RP + o * RP + it.ng * 4});
            }
        }
        wf.loads += ways(a_lo, TO == 2 ? 2 : 4).first + (TO == 8 ? ways(a_hi, 4).first : 0) + ways(state, 4).first;
        for (const auto &st : store) {
            const auto k = ways(st, 4);
            wf.stores += k.first;
            wf.worst_store = std::max(wf.worst_store, k.second);
        }
    }
    return wf;
}

// Every item w < o_groups L n_groups is one (row group, l, column group), each met once, at every shift the step
// may take.
TEST(ConvFfmaWalk, ItemsCoverEveryTileOnce) {
    for (int64_t o_groups = 1; o_groups <= 24; ++o_groups)
        for (int64_t n_groups = 1; n_groups <= 48; ++n_groups)
            for (int64_t L : {1, 3}) {
                const int shift = ffma_column_shift<int64_t>(o_groups, n_groups);
                ASSERT_EQ(n_groups % (int64_t(1) << shift), 0);
                std::vector<int> seen(size_t(o_groups * L * n_groups), 0);
                for (int64_t w = 0; w < o_groups * L * n_groups; ++w) {
                    const ffma_item<int64_t> it = ffma_item_at<int64_t>(w, o_groups, n_groups, shift);
                    ASSERT_TRUE(it.og >= 0 && it.og < o_groups && it.l >= 0 && it.l < L && it.ng >= 0 &&
                                it.ng < n_groups)
                        << o_groups << " x " << n_groups << " item " << w;
                    ++seen[size_t((it.l * n_groups + it.ng) * o_groups + it.og)];
                }
                EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), int64_t(seen.size()))
                    << o_groups << " row groups, " << n_groups << " column groups, L " << L;
            }
}

// The column-first walk never takes more load or store wavefronts than row groups fastest, counted per quarter
// (half) warp and per whole warp, for TO = 8, 4, 2, 1..20 row groups (the last one cut short too), 1..40 column
// groups and 1 or 3 values of l; it takes fewer stores wherever it moves at all.
TEST(ConvFfmaWalk, NeverMoreWavefrontsThanRowGroupsFastest) {
    int moved = 0;
    for (int TO : {8, 4, 2})
        for (int64_t o_groups = 1; o_groups <= 20; ++o_groups)
            for (int64_t n_groups = 1; n_groups <= 40; ++n_groups)
                for (int64_t L : {1, 3})
                    for (int64_t cut : {0, TO / 2}) {
                        const int64_t O = o_groups * TO - cut;
                        const int shift = ffma_column_shift<int64_t>(o_groups, n_groups);
                        for (int phase : {8, 32}) {
                            const Wavefronts by_rows = ffma_wavefronts(TO, o_groups, n_groups, L, O, 0, phase);
                            const Wavefronts walked = ffma_wavefronts(TO, o_groups, n_groups, L, O, shift, phase);
                            SCOPED_TRACE("TO " + std::to_string(TO) + ", " + std::to_string(o_groups) + " x " +
                                         std::to_string(n_groups) + ", L " + std::to_string(L) + ", O " +
                                         std::to_string(O) + ", phase " + std::to_string(phase));
                            EXPECT_LE(walked.loads, by_rows.loads);
                            EXPECT_LE(walked.stores, by_rows.stores);
                            if (shift > 0 && phase == 8 && o_groups > 1) EXPECT_LT(walked.stores, by_rows.stores);
                        }
                        moved += shift > 0;
                    }
    EXPECT_GT(moved, 500);
}

// The FFMA steps of the VGG 512 -> 512 chains at ranks 4 and 8 (spatial and channels first, 4-pixel tiles) whose
// rows are a multiple of 32 floats store without bank conflicts (8-way with row groups fastest) and load as
// before: 4 to 8 times fewer store wavefronts.
TEST(ConvFfmaWalk, VggStepsStoreWithoutBankConflicts) {
    int checked = 0;
    for (ttl_algo_t algo : {TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST})
        for (int64_t rank : {4, 8}) {
            ttl_conv_tt_chain_t chain{};
            const TilePlan t = plan_vgg_512(rank, algo, TTL_CONV_FUSED_DEFAULT, &chain, 0);
            const int64_t ld = fused_row_stride(t.tile_px);
            for (int k = 0; k < chain.num_steps; ++k) {
                const ttl_conv_tt_step_t &st = chain.steps[k];
                const int64_t o_groups = (st.O + st.to - 1) / st.to, n_groups = st.R * ld / 4;
                if (st.R * ld % 32 != 0) continue;
                SCOPED_TRACE(std::string(ttl_algo_name(algo)) + " rank " + std::to_string(rank) + " step " +
                             std::to_string(k));
                const int shift = ffma_column_shift<int64_t>(o_groups, n_groups);
                EXPECT_EQ(shift, 3);
                const Wavefronts by_rows = ffma_wavefronts(st.to, o_groups, n_groups, st.L, st.O, 0, 8);
                const Wavefronts walked = ffma_wavefronts(st.to, o_groups, n_groups, st.L, st.O, shift, 8);
                EXPECT_EQ(walked.worst_store, 1);
                EXPECT_EQ(by_rows.worst_store, std::min<int64_t>(o_groups, 8));
                EXPECT_EQ(walked.loads, by_rows.loads);
                EXPECT_LE(walked.stores * 4, by_rows.stores);
                ++checked;
            }
        }
    EXPECT_GE(checked, 6);
}

// The FFMA step against double loops, overwriting and accumulating into out, at every walk: row groups fastest
// with TO = 8 and more than 4 row groups (threads load and store their rows' halves swapped, see at_half_swap;
// O = 70 rows, 9 groups, not a multiple of the tile), and column groups fastest at shifts 3, 2 and 1 (TO = 8, 4
// and 2; last row groups cut short), at 1, 37 and 256 threads, so that grid-stride items start anywhere in a
// quarter warp.
TEST(ConvStep, FfmaStepOverwritesAndAccumulatesAtEveryWalk) {
    struct Shape {
        int to;
        int32_t L, I, O, Opad, R;
        int64_t P;
        int shift;
    };
    const Shape shapes[] = {
        {8, 3, 5, 70, 88, 2, 8, 0},  // 9 row groups, 4 column groups: row groups fastest, halves swapped
        {8, 3, 7, 30, 32, 8, 4, 3},  // 4 row groups, 8 column groups
        {8, 2, 6, 64, 64, 16, 4, 3}, // 8 row groups (swapped halves), 16 column groups
        {4, 3, 5, 31, 32, 1, 16, 2}, // 8 row groups, 4 column groups
        {2, 2, 9, 31, 32, 2, 4, 1},  // 16 row groups, 2 column groups
        {4, 2, 3, 12, 16, 3, 4, 0},  // 3 row groups, 3 column groups
    };
    for (const Shape &sh : shapes) {
        ttl_conv_tt_step_t st{};
        st.L = sh.L, st.I = sh.I, st.O = sh.O, st.Opad = sh.Opad, st.R = sh.R, st.to = sh.to, st.a_rows = 1;
        const int64_t P = sh.P, RP = st.R * P, o_groups = (st.O + sh.to - 1) / sh.to;
        ASSERT_EQ(ffma_column_shift<int64_t>(o_groups, RP / 4), sh.shift) << "TO " << sh.to << " O " << st.O;
        const std::vector<float> at = random_vector(size_t(st.I * st.Opad), 11);
        const std::vector<float> in = random_vector(size_t(st.L * st.I * RP), 12);
        const std::vector<float> out0 = random_vector(size_t(st.L * st.O * RP), 13);
        for (bool accumulate : {false, true})
            for (int64_t thr : {int64_t(1), int64_t(37), int64_t(256)}) {
                std::vector<float> out = out0;
                for (int64_t t = 0; t < thr; ++t) {
                    if (sh.to == 8)
                        tt_step<8, int64_t>(at.data(), st, in.data(), out.data(), P, t, thr, accumulate);
                    else if (sh.to == 4)
                        tt_step<4, int64_t>(at.data(), st, in.data(), out.data(), P, t, thr, accumulate);
                    else
                        tt_step<2, int64_t>(at.data(), st, in.data(), out.data(), P, t, thr, accumulate);
                }
                for (int64_t l = 0; l < st.L; ++l)
                    for (int64_t o = 0; o < st.O; ++o)
                        for (int64_t rp = 0; rp < RP; ++rp) {
                            double want = accumulate ? out0[size_t((l * st.O + o) * RP + rp)] : 0.0;
                            for (int64_t i = 0; i < st.I; ++i)
                                want += double(at[size_t(i * st.Opad + o)]) * in[size_t((l * st.I + i) * RP + rp)];
                            ASSERT_NEAR(out[size_t((l * st.O + o) * RP + rp)], want, 1e-5 * (1.0 + std::fabs(want)))
                                << "TO " << sh.to << " O " << st.O << " threads " << thr << " accumulate "
                                << accumulate << " l " << l << " o " << o << " rp " << rp;
                        }
            }
    }
}

} // namespace

#else

TEST(ConvEmulation, Skipped) { GTEST_SKIP() << "built without CUDA headers"; }

#endif
