// TT-conv on the GPU: every algorithm (SPATIAL_FIRST and CHANNELS_FIRST in both core orders, fused and chunked,
// DENSE, AUTO, autotune), both layouts, against the CPU reference (itself checked against the independent dense
// oracle of test_util.h) on shapes kept as data (odd modes, rank 1, d = 1..4, batch 1 and odd, stride 2, dilation
// 2, padding 0/1/2, 1x1/3x3/5x5 and non-square kernels, bias on/off, a CIFAR layer and a VGG-size 512 -> 512
// layer). Outputs are poisoned before each run and must be fully written; repeat runs must match bit for bit; every
// invalid call returns its status and leaves outputs untouched. Skipped when no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "common/conv_cases.h"
#include "common/test_util.h"
#include "cuda/conv_internal.h"
#include "ttl/ttl_cuda.h"

using namespace ttl_test;

namespace {

// ---------------------------------------------------------------------------------------------------------------
// device helpers
// ---------------------------------------------------------------------------------------------------------------

struct DeviceBuffer {
    void *ptr = nullptr;
    size_t bytes = 0;
    explicit DeviceBuffer(size_t n) : bytes(n) {
        if (n > 0) EXPECT_EQ(cudaMalloc(&ptr, n), cudaSuccess);
    }
    ~DeviceBuffer() { cudaFree(ptr); }
    DeviceBuffer(const DeviceBuffer &) = delete;
    DeviceBuffer &operator=(const DeviceBuffer &) = delete;
    float *f() const { return static_cast<float *>(ptr); }
};

void upload(DeviceBuffer &dst, const std::vector<float> &src) {
    ASSERT_EQ(cudaMemcpy(dst.ptr, src.data(), src.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
}

std::vector<float> download(const DeviceBuffer &src, size_t count) {
    std::vector<float> v(count);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(v.data(), src.ptr, count * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return v;
}

// NaN everywhere: an element the forward call does not write makes rel_err infinite.
void poison(DeviceBuffer &b) { ASSERT_EQ(cudaMemset(b.ptr, 0xff, b.bytes), cudaSuccess); }

bool have_device() {
    int n = 0;
    return ttl_cuda_device_count(&n) == TTL_STATUS_SUCCESS && n > 0;
}

// Sets the planning test hook for one scope.
struct Overrides {
    explicit Overrides(int force_unfused, int tile_px = 0, int fused_form = TTL_CONV_FUSED_DEFAULT) {
        ttl_conv_tt_test_overrides.force_unfused = force_unfused;
        ttl_conv_tt_test_overrides.tile_px = tile_px;
        ttl_conv_tt_test_overrides.fused_form = fused_form;
    }
    ~Overrides() { ttl_conv_tt_test_overrides = ttl_conv_tt_overrides_t{0, 0, 0}; }
};

class CudaConv : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!have_device()) GTEST_SKIP() << "no CUDA device";
        ASSERT_EQ(ttl_cuda_create(&handle, 0), TTL_STATUS_SUCCESS);
    }
    void TearDown() override {
        if (layer != nullptr) ttl_cuda_conv_layer_destroy(layer);
        if (handle != nullptr) ttl_cuda_destroy(handle);
    }
    void make_layer(const CaseData &d, bool bias) {
        ASSERT_EQ(
            ttl_cuda_conv_layer_create(&layer, handle, &d.desc, d.cores.data(), bias ? d.bias.data() : nullptr),
            TTL_STATUS_SUCCESS);
    }
    ttl_cuda_handle_t *handle = nullptr;
    ttl_cuda_conv_layer_t *layer = nullptr;
};

// ---------------------------------------------------------------------------------------------------------------
// correctness of every algorithm and layout
// ---------------------------------------------------------------------------------------------------------------

struct Variant {
    const char *name;
    ttl_algo_t algo;
    ttl_order_t order;
    int autotune;
    int force_unfused;
    size_t limit; /* ttl_cuda_plan_opts_t.workspace_limit; 1 byte: the smallest chunks */
    int tile_px;  /* > 0: fused tiles forced to this many pixels where they fit (padded state rows) */
    int fused_form = TTL_CONV_FUSED_DEFAULT; /* TTL_CONV_FUSED_SLICED: the chain once per last input mode value */
    int allow_3xtf32 = 0;                    /* the TT steps on tensor cores where the device has them */
};

const Variant kVariants[] = {
    {"sf_f2l", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, 0},
    {"sf_l2f", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_LAST_TO_FIRST, 0, 0, 0, 0},
    {"cf_f2l", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, 0},
    {"cf_l2f", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_LAST_TO_FIRST, 0, 0, 0, 0},
    {"sf_unfused", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 1, 0, 0},
    {"cf_unfused", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 0, 1, 0, 0},
    {"sf_unfused_small_chunks", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 1, 1, 0},
    {"cf_small_chunks", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 0, 0, 1, 0},
    {"cf_unfused_small_chunks", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 0, 1, 1, 0},
    {"sf_unlimited", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 1, SIZE_MAX, 0},
    {"cf_unlimited", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 0, 0, SIZE_MAX, 0},
    {"sf_tile16", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 0, 0, 16},
    {"cf_tile32", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 0, 0, 0, 32},
    {"sf_sliced", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, 0, TTL_CONV_FUSED_SLICED},
    {"sf_sliced_tile16", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, 16, TTL_CONV_FUSED_SLICED},
    {"dense", TTL_ALGO_DENSE, TTL_ORDER_AUTO, 0, 0, 0, 0},
    {"dense_no_scratch", TTL_ALGO_DENSE, TTL_ORDER_AUTO, 0, 0, 1, 0},
    {"auto", TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, 0, 0, 0},
    {"autotune", TTL_ALGO_AUTO, TTL_ORDER_AUTO, 1, 0, 0, 0},
    {"sf_f2l_3xtf32", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, 0, TTL_CONV_FUSED_DEFAULT, 1},
    {"sf_l2f_3xtf32", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_LAST_TO_FIRST, 0, 0, 0, 0, TTL_CONV_FUSED_DEFAULT, 1},
    {"cf_f2l_3xtf32", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, 0, TTL_CONV_FUSED_DEFAULT, 1},
    {"cf_l2f_3xtf32", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_LAST_TO_FIRST, 0, 0, 0, 0, TTL_CONV_FUSED_DEFAULT, 1},
    {"sf_unfused_3xtf32", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 1, 0, 0, TTL_CONV_FUSED_DEFAULT, 1},
    {"cf_unfused_small_chunks_3xtf32", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_AUTO, 0, 1, 1, 0, TTL_CONV_FUSED_DEFAULT,
     1},
    {"sf_tile16_3xtf32", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 0, 0, 16, TTL_CONV_FUSED_DEFAULT, 1},
    {"sf_sliced_3xtf32", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, 0, TTL_CONV_FUSED_SLICED, 1},
    // small tiles: state rows (R ld floats) a multiple of 16 floats on more steps, which the tensor-core chains
    // swizzle (conv_tt.cuh)
    {"sf_f2l_tile4_3xtf32", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, 4, TTL_CONV_FUSED_DEFAULT, 1},
    {"sf_l2f_tile4_3xtf32", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_LAST_TO_FIRST, 0, 0, 0, 4, TTL_CONV_FUSED_DEFAULT, 1},
    {"cf_f2l_tile8_3xtf32", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, 8, TTL_CONV_FUSED_DEFAULT,
     1},
    {"cf_l2f_tile4_3xtf32", TTL_ALGO_CHANNELS_FIRST, TTL_ORDER_LAST_TO_FIRST, 0, 0, 0, 4, TTL_CONV_FUSED_DEFAULT,
     1},
    {"sf_sliced_tile4_3xtf32", TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_FIRST_TO_LAST, 0, 0, 0, 4, TTL_CONV_FUSED_SLICED,
     1},
    {"auto_3xtf32", TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, 0, 0, 0, TTL_CONV_FUSED_DEFAULT, 1},
    {"autotune_3xtf32", TTL_ALGO_AUTO, TTL_ORDER_AUTO, 1, 0, 0, 0, TTL_CONV_FUSED_DEFAULT, 1},
};

// One process per shape (CTest runs each test in its own process, and CUDA/cuDNN start-up dominates a small
// case): every layout and variant of a shape runs inside one test, each under its own trace.
class CudaConvForward : public CudaConv, public ::testing::WithParamInterface<size_t> {
  protected:
    void check(size_t ci, int layout, const Variant &v);
};

void CudaConvForward::check(size_t ci, int layout, const Variant &v) {
    const ConvCase &c = cases()[ci];
    CaseData &d = case_data(ci);
    const ttl_conv_shape_t shape{c.batch, c.height, c.width, ttl_layout_t(layout)};
    const ttl_cuda_plan_opts_t opts{v.algo, v.order, v.autotune, 0, v.limit, v.allow_3xtf32};
    ttl_cuda_conv_plan_t *plan = nullptr;
    {
        Overrides o(v.force_unfused, v.tile_px, v.fused_form);
        const ttl_status_t st = ttl_cuda_conv_plan_create(&plan, layer, &shape, &opts);
        const int32_t nc = d.desc.num_cores;
        if (v.fused_form == TTL_CONV_FUSED_SLICED && (nc < 2 || d.desc.in_modes[nc - 1] < 2)) {
            EXPECT_EQ(st, TTL_STATUS_UNSUPPORTED) << "no last input mode to slice over";
            return;
        }
        ASSERT_EQ(st, TTL_STATUS_SUCCESS);
    }
    ttl_plan_info_t info;
    ASSERT_EQ(ttl_cuda_conv_plan_info(plan, &info), TTL_STATUS_SUCCESS);
    EXPECT_NE(info.algo, TTL_ALGO_AUTO);
    if (v.algo != TTL_ALGO_AUTO) EXPECT_EQ(info.algo, v.algo);
    if (v.order != TTL_ORDER_AUTO) EXPECT_EQ(info.order, v.order);
    EXPECT_GT(info.macs, 0);
    EXPECT_GT(info.estimated_us, 0.0) << "the cost model's estimate";
    ASSERT_NE(info.reason, nullptr);
    EXPECT_GT(std::strlen(info.reason), 0u);
    int major = 0; // TF32 tensor cores from sm_80; before, allow_3xtf32 changes nothing
    ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
    if (v.algo == TTL_ALGO_SPATIAL_FIRST || v.algo == TTL_ALGO_CHANNELS_FIRST)
        EXPECT_EQ(std::strstr(info.reason, "3xTF32") != nullptr, v.allow_3xtf32 == 1 && major >= 8) << info.reason;
    const int64_t S = d.desc.out_channels, C = d.desc.in_channels;
    if (info.algo == TTL_ALGO_DENSE && v.limit > 0) EXPECT_LE(info.workspace_bytes, v.limit);
    if (info.algo == TTL_ALGO_DENSE)
        EXPECT_EQ(info.persistent_bytes, size_t(S * C * c.kh * c.kw) * sizeof(float));
    else
        EXPECT_EQ(info.persistent_bytes, 0u);

    const std::vector<float> &x_host = layout == TTL_LAYOUT_NCHW ? d.x_nchw : d.x_nhwc;
    const std::vector<float> &y_ref = d.y_ref[layout];
    DeviceBuffer x(x_host.size() * sizeof(float)), y(y_ref.size() * sizeof(float));
    DeviceBuffer ws(info.workspace_bytes);
    upload(x, x_host);
    poison(y);
    ASSERT_EQ(ttl_cuda_conv_forward(plan, y.f(), x.f(), ws.ptr, info.workspace_bytes), TTL_STATUS_SUCCESS);
    const std::vector<float> first = download(y, y_ref.size());
    EXPECT_LE(rel_err(first, y_ref), 1e-5) << "algo " << ttl_algo_name(info.algo);

    // A second run on a re-poisoned output (and a re-poisoned workspace) gives the same bits.
    poison(y);
    if (ws.bytes > 0) poison(ws);
    ASSERT_EQ(ttl_cuda_conv_forward(plan, y.f(), x.f(), ws.ptr, info.workspace_bytes), TTL_STATUS_SUCCESS);
    const std::vector<float> second = download(y, y_ref.size());
    EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)), 0);

    // Activations need only float alignment (ttl_cuda.h): x and y one float past cudaMalloc's 256-byte boundary,
    // and the float before y stays untouched.
    DeviceBuffer x_shifted((x_host.size() + 1) * sizeof(float)), y_shifted((y_ref.size() + 1) * sizeof(float));
    ASSERT_EQ(cudaMemcpy(x_shifted.f() + 1, x_host.data(), x_host.size() * sizeof(float), cudaMemcpyHostToDevice),
              cudaSuccess);
    poison(y_shifted);
    ASSERT_EQ(ttl_cuda_conv_forward(plan, y_shifted.f() + 1, x_shifted.f() + 1, ws.ptr, info.workspace_bytes),
              TTL_STATUS_SUCCESS);
    const std::vector<float> shifted = download(y_shifted, y_ref.size() + 1);
    EXPECT_TRUE(std::isnan(shifted[0])) << "wrote before y";
    EXPECT_LE(rel_err(std::vector<float>(shifted.begin() + 1, shifted.end()), y_ref), 1e-5)
        << "x and y 4 bytes off a 16-byte boundary";
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
    ttl_cuda_conv_plan_destroy(plan);
}

TEST_P(CudaConvForward, EveryAlgorithmMatchesOracleAndRepeats) {
    const size_t ci = GetParam();
    make_layer(case_data(ci), cases()[ci].bias);
    for (int layout : {int(TTL_LAYOUT_NCHW), int(TTL_LAYOUT_NHWC)})
        for (const Variant &v : kVariants) {
            SCOPED_TRACE(std::string(cases()[ci].name) + (layout == TTL_LAYOUT_NCHW ? " nchw " : " nhwc ") +
                         v.name);
            check(ci, layout, v);
        }
}

std::string param_name(const ::testing::TestParamInfo<size_t> &info) {
    std::string s = cases()[info.param].name;
    for (char &ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return s;
}

std::vector<size_t> indices(size_t n) {
    std::vector<size_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = i;
    return v;
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaConvForward, ::testing::ValuesIn(indices(cases().size())), param_name);

// ---------------------------------------------------------------------------------------------------------------
// plans: sizes, bounds, and bad requests
// ---------------------------------------------------------------------------------------------------------------

size_t case_index(const char *name) {
    for (size_t i = 0; i < cases().size(); ++i)
        if (std::string(cases()[i].name) == name) return i;
    return 0;
}

// The non-dense algorithms keep their workspace within twice the larger activation on the paper-size layers,
// except channels first where one output pixel's U (r_0 S floats for each of its kh x kw input pixels) is
// already larger (CIFAR 8x8 at batch 1, r_0 = 16): it then holds exactly that least chunk.
TEST_F(CudaConv, WorkspaceWithinTwiceTheActivations) {
    for (const char *name : {"cifar_conv3.1_r16", "vgg_512_14x14_r8"}) {
        const ConvCase &c = cases()[case_index(name)];
        const ttl_conv_desc_t desc = make_desc(c);
        const std::vector<float> cores = random_vector(conv_param_count(desc), 7);
        ttl_cuda_conv_layer_t *l = nullptr;
        ASSERT_EQ(ttl_cuda_conv_layer_create(&l, handle, &desc, cores.data(), nullptr), TTL_STATUS_SUCCESS);
        const size_t least_u = cf_least_u_bytes(desc, c.height, c.width);
        for (int64_t batch : {1, 32, 128}) {
            const ttl_conv_shape_t shape{batch, c.height, c.width, TTL_LAYOUT_NCHW};
            const size_t act = size_t(batch * desc.in_channels * c.height * c.width) * sizeof(float);
            for (ttl_algo_t algo : {TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST}) {
                const size_t bound = algo == TTL_ALGO_CHANNELS_FIRST ? std::max(2 * act, least_u) : 2 * act;
                const ttl_cuda_plan_opts_t opts{algo, TTL_ORDER_AUTO, 0, 0, 0};
                ttl_cuda_conv_plan_t *p = nullptr;
                ASSERT_EQ(ttl_cuda_conv_plan_create(&p, l, &shape, &opts), TTL_STATUS_SUCCESS);
                ttl_plan_info_t info;
                ASSERT_EQ(ttl_cuda_conv_plan_info(p, &info), TTL_STATUS_SUCCESS);
                EXPECT_LE(info.workspace_bytes, bound) << name << " batch " << batch << " " << ttl_algo_name(algo);
                ttl_cuda_conv_plan_destroy(p);
            }
        }
        ttl_cuda_conv_layer_destroy(l);
    }
}

TEST_F(CudaConv, BadPlansAreRejected) {
    CaseData &d = case_data(case_index("odd_d2_3x3_pad1"));
    make_layer(d, true);
    const ttl_conv_shape_t shape{2, 7, 6, TTL_LAYOUT_NCHW};
    ttl_cuda_conv_plan_t *const sentinel = reinterpret_cast<ttl_cuda_conv_plan_t *>(uintptr_t(0x1234));
    auto create = [&](ttl_cuda_plan_opts_t o, const ttl_conv_shape_t &s) {
        ttl_cuda_conv_plan_t *p = sentinel;
        const ttl_status_t st = ttl_cuda_conv_plan_create(&p, layer, &s, &o);
        EXPECT_EQ(p, sentinel) << "plan written on error";
        return st;
    };
    for (ttl_algo_t fc_only : {TTL_ALGO_SEQUENTIAL, TTL_ALGO_SEQUENTIAL_BLAS, TTL_ALGO_FUSED, TTL_ALGO_REFERENCE})
        EXPECT_EQ(create({fc_only, TTL_ORDER_AUTO, 0, 0, 0}, shape), TTL_STATUS_UNSUPPORTED)
            << ttl_algo_name(fc_only);
    EXPECT_EQ(create({ttl_algo_t(99), TTL_ORDER_AUTO, 0, 0, 0}, shape), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(create({TTL_ALGO_AUTO, ttl_order_t(7), 0, 0, 0}, shape), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(create({TTL_ALGO_AUTO, TTL_ORDER_AUTO, 2, 0, 0}, shape), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(create({TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, -1, 0}, shape), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(create({TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 0, 0, 2}, shape), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(create({TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, 0, 0}, {-1, 7, 6, TTL_LAYOUT_NCHW}),
              TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(create({TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, 0, 0}, {2, 7, 6, ttl_layout_t(5)}),
              TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(create({TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, 0, 0}, {2, 0, 6, TTL_LAYOUT_NCHW}), TTL_STATUS_BAD_SIZE);
    ttl_cuda_conv_plan_t *p = sentinel;
    EXPECT_EQ(ttl_cuda_conv_plan_create(nullptr, layer, &shape, nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_cuda_conv_plan_create(&p, nullptr, &shape, nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_cuda_conv_plan_create(&p, layer, nullptr, nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(p, sentinel);
    ttl_plan_info_t info;
    EXPECT_EQ(ttl_cuda_conv_plan_info(nullptr, &info), TTL_STATUS_NULL_POINTER);
    ttl_cuda_conv_plan_destroy(nullptr);
}

TEST_F(CudaConv, BadLayersAreRejected) {
    const ConvCase &c = cases()[case_index("stride2")];
    ttl_conv_desc_t desc = make_desc(c);
    const std::vector<float> cores = random_vector(conv_param_count(desc), 5);
    ttl_cuda_conv_layer_t *const sentinel = reinterpret_cast<ttl_cuda_conv_layer_t *>(uintptr_t(0x5678));
    ttl_cuda_conv_layer_t *l = sentinel;
    EXPECT_EQ(ttl_cuda_conv_layer_create(nullptr, handle, &desc, cores.data(), nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_cuda_conv_layer_create(&l, nullptr, &desc, cores.data(), nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_cuda_conv_layer_create(&l, handle, nullptr, cores.data(), nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_cuda_conv_layer_create(&l, handle, &desc, nullptr, nullptr), TTL_STATUS_NULL_POINTER);
    desc.ranks[desc.num_cores] = 2;
    EXPECT_EQ(ttl_cuda_conv_layer_create(&l, handle, &desc, cores.data(), nullptr), TTL_STATUS_BAD_RANKS);
    desc = make_desc(c);
    desc.out_channels += 1;
    EXPECT_EQ(ttl_cuda_conv_layer_create(&l, handle, &desc, cores.data(), nullptr), TTL_STATUS_BAD_MODES);
    EXPECT_EQ(l, sentinel);
    ttl_cuda_conv_layer_destroy(nullptr);
}

// Insufficient workspace and null pointers: the status, and the output left as it was.
TEST_F(CudaConv, ForwardRejectsBadCallsWithoutTouchingOutput) {
    const size_t ci = case_index("dilation2_pad2");
    const ConvCase &c = cases()[ci];
    CaseData &d = case_data(ci);
    make_layer(d, true);
    const ttl_conv_shape_t shape{c.batch, c.height, c.width, TTL_LAYOUT_NHWC};
    for (ttl_algo_t algo : {TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST, TTL_ALGO_DENSE}) {
        const ttl_cuda_plan_opts_t opts{algo, TTL_ORDER_AUTO, 0, 0, 0};
        ttl_cuda_conv_plan_t *plan = nullptr;
        {
            Overrides o(1); /* the chunked SF path needs a workspace too */
            ASSERT_EQ(ttl_cuda_conv_plan_create(&plan, layer, &shape, &opts), TTL_STATUS_SUCCESS);
        }
        ttl_plan_info_t info;
        ASSERT_EQ(ttl_cuda_conv_plan_info(plan, &info), TTL_STATUS_SUCCESS);
        const size_t ny = d.y_ref[TTL_LAYOUT_NHWC].size();
        DeviceBuffer x(d.x_nhwc.size() * sizeof(float)), y(ny * sizeof(float)), ws(info.workspace_bytes + 16);
        upload(x, d.x_nhwc);
        const std::vector<float> marker = random_vector(int64_t(ny), 99);
        upload(y, marker);
        if (info.workspace_bytes > 0 || algo != TTL_ALGO_DENSE) {
            ASSERT_GT(info.workspace_bytes, 0u) << ttl_algo_name(algo) << " should need a workspace on this shape";
            EXPECT_EQ(ttl_cuda_conv_forward(plan, y.f(), x.f(), ws.ptr, info.workspace_bytes - 1),
                      TTL_STATUS_INSUFFICIENT_WORKSPACE);
            EXPECT_EQ(ttl_cuda_conv_forward(plan, y.f(), x.f(), nullptr, info.workspace_bytes),
                      TTL_STATUS_NULL_POINTER);
            EXPECT_EQ(
                ttl_cuda_conv_forward(plan, y.f(), x.f(), static_cast<char *>(ws.ptr) + 4, info.workspace_bytes),
                TTL_STATUS_BAD_ARGUMENT);
        }
        EXPECT_EQ(ttl_cuda_conv_forward(nullptr, y.f(), x.f(), ws.ptr, ws.bytes), TTL_STATUS_NULL_POINTER);
        EXPECT_EQ(ttl_cuda_conv_forward(plan, nullptr, x.f(), ws.ptr, ws.bytes), TTL_STATUS_NULL_POINTER);
        EXPECT_EQ(ttl_cuda_conv_forward(plan, y.f(), nullptr, ws.ptr, ws.bytes), TTL_STATUS_NULL_POINTER);
        // Overlapping buffers: y over x (in place) and the workspace over y are refused before any work.
        EXPECT_EQ(ttl_cuda_conv_forward(plan, y.f(), y.f(), ws.ptr, ws.bytes), TTL_STATUS_BAD_ARGUMENT);
        if (info.workspace_bytes > 0)
            EXPECT_EQ(ttl_cuda_conv_forward(plan, y.f(), x.f(), y.f(), info.workspace_bytes),
                      TTL_STATUS_BAD_ARGUMENT);
        // An error the runtime still holds from the caller's own failed call: refused before any work, and the
        // error left for the caller to read.
        void *huge = nullptr;
        ASSERT_NE(cudaMalloc(&huge, size_t(1) << 62), cudaSuccess);
        EXPECT_EQ(ttl_cuda_conv_forward(plan, y.f(), x.f(), ws.ptr, ws.bytes), TTL_STATUS_CUDA_ERROR);
        EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation) << "the caller's error, still there";
        const std::vector<float> after = download(y, ny);
        EXPECT_EQ(std::memcmp(after.data(), marker.data(), ny * sizeof(float)), 0) << ttl_algo_name(algo);
        EXPECT_EQ(ttl_cuda_conv_forward(plan, y.f(), x.f(), ws.ptr, ws.bytes), TTL_STATUS_SUCCESS)
            << "runs once the error is read";
        ttl_cuda_conv_plan_destroy(plan);
    }
}

TEST_F(CudaConv, BatchZeroIsANoOp) {
    CaseData &d = case_data(case_index("stride2"));
    make_layer(d, false);
    const ttl_conv_shape_t shape{0, 9, 8, TTL_LAYOUT_NCHW};
    for (ttl_algo_t algo : {TTL_ALGO_AUTO, TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST, TTL_ALGO_DENSE}) {
        const ttl_cuda_plan_opts_t opts{algo, TTL_ORDER_AUTO, 1, 0, 0};
        ttl_cuda_conv_plan_t *plan = nullptr;
        ASSERT_EQ(ttl_cuda_conv_plan_create(&plan, layer, &shape, &opts), TTL_STATUS_SUCCESS);
        ttl_plan_info_t info;
        ASSERT_EQ(ttl_cuda_conv_plan_info(plan, &info), TTL_STATUS_SUCCESS);
        EXPECT_NE(info.algo, TTL_ALGO_AUTO);
        DeviceBuffer y(16), x(16), ws(info.workspace_bytes + 16);
        EXPECT_EQ(ttl_cuda_conv_forward(plan, y.f(), x.f(), ws.ptr, info.workspace_bytes), TTL_STATUS_SUCCESS);
        ttl_cuda_conv_plan_destroy(plan);
    }
}

// The forward call captures into a CUDA graph on a user stream (no allocation, no host synchronisation), and
// replaying the graph gives the oracle's result.
TEST_F(CudaConv, CapturesIntoAGraph) {
    const size_t ci = case_index("cifar_conv3.1_r16");
    const ConvCase &c = cases()[ci];
    CaseData &d = case_data(ci);
    make_layer(d, true);
    cudaStream_t stream;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(ttl_cuda_set_stream(handle, stream), TTL_STATUS_SUCCESS);
    const ttl_conv_shape_t shape{c.batch, c.height, c.width, TTL_LAYOUT_NCHW};
    for (ttl_algo_t algo : {TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST, TTL_ALGO_DENSE}) {
        const ttl_cuda_plan_opts_t opts{algo, TTL_ORDER_AUTO, 0, 0, 0};
        ttl_cuda_conv_plan_t *plan = nullptr;
        ASSERT_EQ(ttl_cuda_conv_plan_create(&plan, layer, &shape, &opts), TTL_STATUS_SUCCESS);
        ttl_plan_info_t info;
        ASSERT_EQ(ttl_cuda_conv_plan_info(plan, &info), TTL_STATUS_SUCCESS);
        const std::vector<float> &y_ref = d.y_ref[TTL_LAYOUT_NCHW];
        DeviceBuffer x(d.x_nchw.size() * sizeof(float)), y(y_ref.size() * sizeof(float)), ws(info.workspace_bytes);
        upload(x, d.x_nchw);
        poison(y);
        cudaGraph_t graph = nullptr;
        cudaGraphExec_t exec = nullptr;
        ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
        const ttl_status_t st = ttl_cuda_conv_forward(plan, y.f(), x.f(), ws.ptr, info.workspace_bytes);
        ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
        ASSERT_EQ(st, TTL_STATUS_SUCCESS) << ttl_algo_name(algo);
        ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
        ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        EXPECT_LE(rel_err(download(y, y_ref.size()), y_ref), 1e-5) << ttl_algo_name(algo);
        cudaGraphExecDestroy(exec);
        cudaGraphDestroy(graph);
        ttl_cuda_conv_plan_destroy(plan);
    }
    ASSERT_EQ(ttl_cuda_set_stream(handle, nullptr), TTL_STATUS_SUCCESS);
    cudaStreamDestroy(stream);
}

// On the VGG-size layer the cost model must not pick a TT order that loses (it may pick DENSE), and both TT
// orders report the multiply-adds of docs/tt-layers.md (594K per pixel before the spatial part is counted).
TEST_F(CudaConv, PlanInfoOnVggLayer) {
    const ConvCase &c = cases()[case_index("vgg_512_14x14_r8")];
    const ttl_conv_desc_t desc = make_desc(c);
    const std::vector<float> cores = random_vector(conv_param_count(desc), 11);
    ASSERT_EQ(ttl_cuda_conv_layer_create(&layer, handle, &desc, cores.data(), nullptr), TTL_STATUS_SUCCESS);
    const ttl_conv_shape_t shape{128, 14, 14, TTL_LAYOUT_NCHW};
    const ttl_cuda_plan_opts_t opts{TTL_ALGO_SPATIAL_FIRST, TTL_ORDER_AUTO, 0, 0, 0};
    ttl_cuda_conv_plan_t *plan = nullptr;
    ASSERT_EQ(ttl_cuda_conv_plan_create(&plan, layer, &shape, &opts), TTL_STATUS_SUCCESS);
    ttl_plan_info_t info;
    ASSERT_EQ(ttl_cuda_conv_plan_info(plan, &info), TTL_STATUS_SUCCESS);
    /* channel TT first to last: 8*8*4096 + 64*64*64 + 512*8*8 = 557056; spatial 9*8*512 = 36864 */
    EXPECT_EQ(info.order, TTL_ORDER_FIRST_TO_LAST);
    EXPECT_EQ(info.macs, int64_t(128) * 196 * (557056 + 36864));
    EXPECT_EQ(info.workspace_bytes, 0u) << "the fused kernel should fit this layer";
    ttl_cuda_conv_plan_destroy(plan);
}

// Timing of the speed targets (512 -> 512 at 14x14, modes (8,8,8), batch 128, ranks 8 and 4): every
// algorithm, median of event-timed runs after warm-up. Not a pass/fail test; run on a GPU with
//   gpu_test_cuda_conv --gtest_also_run_disabled_tests --gtest_filter='*Timing*'
TEST_F(CudaConv, DISABLED_TimingVgg512) {
    for (int64_t r : {8, 4}) {
        const ttl_conv_desc_t desc = conv_desc({8, 8, 8}, {8, 8, 8}, {r, r, r, 1}, 3, 3, 1, 1, 1, 1, 1, 1);
        const std::vector<float> cores = random_vector(conv_param_count(desc), 21, 0.3f);
        const std::vector<float> bias = random_vector(512, 22);
        ttl_cuda_conv_layer_t *l = nullptr;
        ASSERT_EQ(ttl_cuda_conv_layer_create(&l, handle, &desc, cores.data(), bias.data()), TTL_STATUS_SUCCESS);
        for (int layout : {int(TTL_LAYOUT_NCHW), int(TTL_LAYOUT_NHWC)}) {
            const ttl_conv_shape_t shape{128, 14, 14, ttl_layout_t(layout)};
            const size_t n = size_t(128) * 512 * 196;
            DeviceBuffer x(n * sizeof(float)), y(n * sizeof(float));
            upload(x, random_vector(int64_t(n), 23));
            double dense_ms = 0;
            for (ttl_algo_t algo :
                 {TTL_ALGO_DENSE, TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST, TTL_ALGO_AUTO}) {
                const ttl_cuda_plan_opts_t opts{algo, TTL_ORDER_AUTO, 0, 0, 0};
                ttl_cuda_conv_plan_t *p = nullptr;
                ASSERT_EQ(ttl_cuda_conv_plan_create(&p, l, &shape, &opts), TTL_STATUS_SUCCESS);
                ttl_plan_info_t info;
                ASSERT_EQ(ttl_cuda_conv_plan_info(p, &info), TTL_STATUS_SUCCESS);
                DeviceBuffer ws(info.workspace_bytes);
                for (int i = 0; i < 3; ++i)
                    ASSERT_EQ(ttl_cuda_conv_forward(p, y.f(), x.f(), ws.ptr, info.workspace_bytes),
                              TTL_STATUS_SUCCESS);
                cudaEvent_t a, b;
                ASSERT_EQ(cudaEventCreate(&a), cudaSuccess);
                ASSERT_EQ(cudaEventCreate(&b), cudaSuccess);
                std::vector<float> ms;
                for (int i = 0; i < 20; ++i) {
                    ASSERT_EQ(cudaEventRecord(a, 0), cudaSuccess);
                    ASSERT_EQ(ttl_cuda_conv_forward(p, y.f(), x.f(), ws.ptr, info.workspace_bytes),
                              TTL_STATUS_SUCCESS);
                    ASSERT_EQ(cudaEventRecord(b, 0), cudaSuccess);
                    ASSERT_EQ(cudaEventSynchronize(b), cudaSuccess);
                    float t = 0;
                    ASSERT_EQ(cudaEventElapsedTime(&t, a, b), cudaSuccess);
                    ms.push_back(t);
                }
                std::sort(ms.begin(), ms.end());
                const double med = ms[ms.size() / 2];
                if (algo == TTL_ALGO_DENSE) dense_ms = med;
                const double gflops = 2.0 * double(info.macs) / (med * 1e6);
                std::printf(
                    "rank %2lld %s %-15s -> %-15s %-14s %8.4f ms  %7.1f GFLOP/s  x%.2f vs dense  ws %zu B\n",
                    (long long)r, layout == TTL_LAYOUT_NCHW ? "nchw" : "nhwc", ttl_algo_name(algo),
                    ttl_algo_name(info.algo), ttl_order_name(info.order), med, gflops, dense_ms / med,
                    info.workspace_bytes);
                cudaEventDestroy(a);
                cudaEventDestroy(b);
                ttl_cuda_conv_plan_destroy(p);
            }
        }
        ttl_cuda_conv_layer_destroy(l);
    }
}

} // namespace
