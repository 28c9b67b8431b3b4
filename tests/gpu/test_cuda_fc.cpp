// TT-FC on the GPU: every algorithm and core order against the CPU reference (ttl_fc_forward_ref), the reference
// against the independent oracle on small shapes, bit-for-bit repeatability, CUDA-graph capture, plan info, and
// every documented error status with its output left untouched. Label gpu; skips when no device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "common/test_util.h"
#include "cuda/fc_internal.h"
#include "ttl/ttl_cuda.h"

namespace {

// ---- helpers --------------------------------------------------------------------------------------------------

bool has_device() {
    int n = 0;
    return ttl_cuda_device_count(&n) == TTL_STATUS_SUCCESS && n > 0;
}

#define REQUIRE_DEVICE()                                                                                           \
    do {                                                                                                           \
        if (!has_device()) GTEST_SKIP() << "no CUDA device";                                                       \
    } while (0)

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

// A device buffer of floats (or raw bytes) freed on scope exit.
struct DeviceBuffer {
    void *ptr = nullptr;
    size_t bytes = 0;
    explicit DeviceBuffer(size_t b) : bytes(b) {
        if (b > 0 && cudaMalloc(&ptr, b) != cudaSuccess) ptr = nullptr;
    }
    ~DeviceBuffer() {
        if (ptr != nullptr) cudaFree(ptr);
    }
    DeviceBuffer(const DeviceBuffer &) = delete;
    float *f() const { return static_cast<float *>(ptr); }
};

std::vector<float> download(const float *d, size_t n) {
    std::vector<float> h(n);
    if (n > 0) EXPECT_EQ(cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
}

void upload(float *d, const std::vector<float> &h) {
    ASSERT_EQ(cudaMemcpy(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
}

// 0xFF bytes are a NaN: an element the forward does not write stays NaN and fails rel_err.
void poison(float *d, size_t n) { ASSERT_EQ(cudaMemset(d, 0xFF, n * sizeof(float)), cudaSuccess); }

struct Handle {
    ttl_cuda_handle_t *h = nullptr;
    Handle() { EXPECT_EQ(ttl_cuda_create(&h, 0), TTL_STATUS_SUCCESS); }
    ~Handle() { ttl_cuda_destroy(h); }
};

struct Layer {
    ttl_cuda_fc_layer_t *l = nullptr;
    Layer(ttl_cuda_handle_t *h, const ttl_fc_desc_t &d, const std::vector<float> &cores, const float *bias) {
        EXPECT_EQ(ttl_cuda_fc_layer_create(&l, h, &d, cores.data(), bias), TTL_STATUS_SUCCESS);
    }
    ~Layer() { ttl_cuda_fc_layer_destroy(l); }
};

struct Plan {
    ttl_cuda_fc_plan_t *p = nullptr;
    ~Plan() { ttl_cuda_fc_plan_destroy(p); }
};

ttl_cuda_plan_opts_t opts(ttl_algo_t algo, ttl_order_t order = TTL_ORDER_AUTO, int autotune = 0, size_t limit = 0,
                          int allow_3xtf32 = 0) {
    return ttl_cuda_plan_opts_t{algo, order, autotune, 0, limit, allow_3xtf32};
}

// Whether the device has TF32 tensor cores (sm_80 on); before, allow_3xtf32 changes nothing.
bool has_tf32_mma() {
    int device = 0, major = 0;
    return cudaGetDevice(&device) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess && major >= 8;
}

// ---- shapes (data) --------------------------------------------------------------------------------------------

struct FcCase {
    const char *name;
    std::vector<int64_t> out_modes, in_modes, ranks;
    int64_t batch;
    bool bias;
    bool fused_required; // FUSED must fit (else UNSUPPORTED is accepted)
    bool oracle;         // small enough to check the reference against the dense oracle
    bool ltf_bound;      // SEQUENTIAL(_BLAS) last to first must fit the workspace bound (2x the larger activation)
};

const std::vector<FcCase> kCases = {
    {"d1", {3}, {5}, {1, 1}, 1, true, true, true, false},
    {"ones", {1}, {1}, {1, 1}, 1, false, true, true, false},
    {"rank1", {2, 3}, {3, 2}, {1, 1, 1}, 3, true, true, true, false},
    {"odd_primes", {3, 5}, {7, 2}, {1, 3, 1}, 5, false, true, true, false},
    {"modes1", {2, 1, 3}, {1, 5, 2}, {1, 2, 3, 1}, 4, true, true, true, false},
    {"primes3", {5, 7, 3}, {3, 11, 2}, {1, 3, 2, 1}, 13, true, true, true, false},
    {"d4", {4, 6, 2, 2}, {2, 8, 4, 16}, {1, 4, 5, 3, 1}, 7, true, true, true, false},
    {"d5", {2, 2, 3, 2, 2}, {3, 2, 2, 2, 3}, {1, 2, 3, 2, 3, 1}, 9, true, true, true, false},
    {"d6", {2, 3, 2, 2, 2, 2}, {2, 2, 3, 1, 2, 2}, {1, 2, 2, 3, 2, 2, 1}, 2, false, true, true, false},
    {"d1_wide", {17}, {400}, {1, 1}, 33, true, false, true, false},
    {"vgg_fc6_tt4_b1", {4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 4, 4, 4, 4, 4, 1}, 1, true, true, false, true},
    {"vgg_fc6_tt4_b33", {4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 4, 4, 4, 4, 4, 1}, 33, true, true, false, true},
    {"vgg_fc6_tt1_b2", {4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 1, 1, 1, 1, 1, 1}, 2, false, true, false, true},
    {"vgg_fc6_tt8_b3", {4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 8, 8, 8, 8, 8, 1}, 3, true, true, false, true},
    {"cifar_fc1_tt40", {4, 6, 8, 8}, {8, 8, 8, 16}, {1, 40, 40, 40, 1}, 2, true, false, false, false},
    {"cifar_fc2_tt30", {4, 4, 4, 8}, {4, 6, 8, 8}, {1, 30, 30, 30, 1}, 3, true, false, false, false},
};

// Test names and failure messages show the case's name rather than its bytes.
void PrintTo(const FcCase &c, std::ostream *os) { *os << c.name; }

struct Variant {
    ttl_algo_t algo;
    ttl_order_t order;
    int autotune;
    size_t limit;         // ttl_cuda_plan_opts_t.workspace_limit
    int allow_3xtf32 = 0; // tensor-core tiles where the cost model prefers them
    int force_mma = 0;    // with allow_3xtf32: every tiled step on the tensor cores (ttl_fc_test_overrides)
};

const std::vector<Variant> kVariants = {
    {TTL_ALGO_FUSED, TTL_ORDER_AUTO, 0, 0},
    {TTL_ALGO_FUSED, TTL_ORDER_FIRST_TO_LAST, 0, 0},
    {TTL_ALGO_FUSED, TTL_ORDER_LAST_TO_FIRST, 0, 0},
    {TTL_ALGO_SEQUENTIAL, TTL_ORDER_FIRST_TO_LAST, 0, 0},
    {TTL_ALGO_SEQUENTIAL, TTL_ORDER_LAST_TO_FIRST, 0, 0},
    {TTL_ALGO_SEQUENTIAL, TTL_ORDER_AUTO, 0, 0},
    {TTL_ALGO_SEQUENTIAL_BLAS, TTL_ORDER_FIRST_TO_LAST, 0, 0},
    {TTL_ALGO_SEQUENTIAL_BLAS, TTL_ORDER_LAST_TO_FIRST, 0, 0},
    {TTL_ALGO_SEQUENTIAL, TTL_ORDER_FIRST_TO_LAST, 0, SIZE_MAX}, // unsliced: the fastest schedule
    {TTL_ALGO_SEQUENTIAL_BLAS, TTL_ORDER_LAST_TO_FIRST, 0, 1},   // sliced as finely as it goes
    {TTL_ALGO_DENSE, TTL_ORDER_AUTO, 0, 0},
    {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, 0},
    {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 1, 0},
    {TTL_ALGO_FUSED, TTL_ORDER_FIRST_TO_LAST, 0, 0, 1},
    {TTL_ALGO_FUSED, TTL_ORDER_LAST_TO_FIRST, 0, 0, 1},
    {TTL_ALGO_SEQUENTIAL, TTL_ORDER_FIRST_TO_LAST, 0, 0, 1},
    {TTL_ALGO_SEQUENTIAL, TTL_ORDER_LAST_TO_FIRST, 0, 0, 1},
    {TTL_ALGO_SEQUENTIAL, TTL_ORDER_LAST_TO_FIRST, 0, 1, 1}, // sliced as finely as it goes
    {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 0, 0, 1},
    {TTL_ALGO_AUTO, TTL_ORDER_AUTO, 1, 0, 1},
    // every tiled step on the tensor cores: the small shapes (and so the sanitizer runs) reach those tiles too
    {TTL_ALGO_FUSED, TTL_ORDER_FIRST_TO_LAST, 0, 0, 1, 1},
    {TTL_ALGO_FUSED, TTL_ORDER_LAST_TO_FIRST, 0, 0, 1, 1},
    {TTL_ALGO_SEQUENTIAL, TTL_ORDER_FIRST_TO_LAST, 0, 0, 1, 1},
    {TTL_ALGO_SEQUENTIAL, TTL_ORDER_LAST_TO_FIRST, 0, 0, 1, 1},
    {TTL_ALGO_SEQUENTIAL, TTL_ORDER_LAST_TO_FIRST, 0, 1, 1, 1},
};

std::string variant_name(const Variant &v) {
    return std::string(ttl_algo_name(v.algo)) + "/" + ttl_order_name(v.order) + (v.autotune ? "/autotune" : "") +
           (v.limit > 0 ? "/limit " + std::to_string(v.limit) : "") + (v.allow_3xtf32 ? "/3xtf32" : "") +
           (v.force_mma ? " forced" : "");
}

// Plan info must be consistent with what was asked.
void check_info(const ttl_plan_info_t &info, const Variant &v, const ttl_fc_desc_t &d, int64_t batch) {
    EXPECT_NE(info.algo, TTL_ALGO_AUTO);
    if (v.algo != TTL_ALGO_AUTO) EXPECT_EQ(info.algo, v.algo);
    EXPECT_NE(info.reason, nullptr);
    EXPECT_EQ(info.persistent_bytes > 0, info.algo == TTL_ALGO_DENSE);
    if (info.algo == TTL_ALGO_DENSE) {
        EXPECT_EQ(info.persistent_bytes, size_t(d.out_features * d.in_features) * sizeof(float));
        EXPECT_EQ(info.workspace_bytes, 0u);
        EXPECT_EQ(info.order, TTL_ORDER_AUTO);
    } else {
        EXPECT_TRUE(info.order == TTL_ORDER_FIRST_TO_LAST || info.order == TTL_ORDER_LAST_TO_FIRST);
        if (v.order != TTL_ORDER_AUTO && v.algo != TTL_ALGO_AUTO) EXPECT_EQ(info.order, v.order);
    }
    if (info.algo == TTL_ALGO_FUSED) EXPECT_EQ(info.workspace_bytes, 0u);
    if (batch > 0) EXPECT_GT(info.macs, 0);
    if (batch > 0) EXPECT_GT(info.estimated_us, 0.0) << "the cost model's estimate";
    if (batch == 0) EXPECT_EQ(info.estimated_us, 0.0);
    if (info.reason != nullptr && std::strstr(info.reason, "3xTF32") != nullptr)
        EXPECT_TRUE(v.allow_3xtf32 == 1 && has_tf32_mma()) << info.reason;
}

class CudaFc : public ::testing::TestWithParam<FcCase> {};

// Every algorithm and order: matches the reference within 1e-5, writes every output, repeats bit for bit.
TEST_P(CudaFc, EveryAlgorithmMatchesReference) {
    REQUIRE_DEVICE();
    const FcCase &c = GetParam();
    const ttl_fc_desc_t d = ttl_test::fc_desc(c.out_modes, c.in_modes, c.ranks);
    const auto cores = ttl_test::random_vector(ttl_test::fc_param_count(d), 101, 0.6f);
    const auto bias = ttl_test::random_vector(d.out_features, 102);
    const float *bias_ptr = c.bias ? bias.data() : nullptr;
    const auto x = ttl_test::random_vector(c.batch * d.in_features, 103);

    std::vector<float> ref(size_t(c.batch * d.out_features));
    ASSERT_EQ(ttl_fc_forward_ref(ref.data(), &d, cores.data(), bias_ptr, x.data(), c.batch), TTL_STATUS_SUCCESS);
    if (c.oracle) {
        const auto W = ttl_test::oracle_fc_dense(d, cores.data());
        const auto want =
            ttl_test::oracle_fc_forward(W, d.out_features, d.in_features, x.data(), bias_ptr, c.batch);
        EXPECT_LE(ttl_test::rel_err(ref, ttl_test::to_float(want)), 1e-6) << "reference vs oracle";
    }

    Handle h;
    ASSERT_NE(h.h, nullptr);
    Layer layer(h.h, d, cores, bias_ptr);
    ASSERT_NE(layer.l, nullptr);
    DeviceBuffer dx(x.size() * sizeof(float)), dy(ref.size() * sizeof(float));
    ASSERT_NE(dx.ptr, nullptr);
    ASSERT_NE(dy.ptr, nullptr);
    upload(dx.f(), x);

    for (const Variant &v : kVariants) {
        SCOPED_TRACE(variant_name(v));
        Plan plan;
        const ttl_cuda_plan_opts_t o = opts(v.algo, v.order, v.autotune, v.limit, v.allow_3xtf32);
        ttl_fc_test_overrides.force_mma = v.force_mma;
        const ttl_status_t st = ttl_cuda_fc_plan_create(&plan.p, layer.l, c.batch, &o);
        ttl_fc_test_overrides.force_mma = 0;
        if (v.algo == TTL_ALGO_FUSED && !c.fused_required && st == TTL_STATUS_UNSUPPORTED) continue;
        ASSERT_EQ(st, TTL_STATUS_SUCCESS) << ttl_status_string(st);
        ttl_plan_info_t info;
        ASSERT_EQ(ttl_cuda_fc_plan_info(plan.p, &info), TTL_STATUS_SUCCESS);
        check_info(info, v, d, c.batch);
        // the VGG layer's 16-row steps and the CIFAR layers' wide ones take tensor-core tiles (cost model)
        const bool big = std::strncmp(c.name, "vgg_fc6_tt4", 11) == 0 || std::strncmp(c.name, "cifar", 5) == 0;
        if (big && v.allow_3xtf32 && v.algo == TTL_ALGO_FUSED && st == TTL_STATUS_SUCCESS && has_tf32_mma())
            EXPECT_NE(std::strstr(info.reason, "3xTF32"), nullptr) << info.reason;
        if (v.force_mma && info.algo == TTL_ALGO_SEQUENTIAL && has_tf32_mma()) // every step is a tiled one
            EXPECT_NE(std::strstr(info.reason, "3xTF32"), nullptr) << info.reason;
        const bool sequential = info.algo == TTL_ALGO_SEQUENTIAL || info.algo == TTL_ALGO_SEQUENTIAL_BLAS;
        if (sequential && info.order == TTL_ORDER_LAST_TO_FIRST && c.ltf_bound && v.limit == 0)
            EXPECT_LE(info.workspace_bytes,
                      size_t(2 * c.batch * std::max(d.in_features, d.out_features)) * sizeof(float));
        DeviceBuffer ws(info.workspace_bytes);
        ASSERT_TRUE(info.workspace_bytes == 0 || ws.ptr != nullptr);

        poison(dy.f(), ref.size());
        ASSERT_EQ(ttl_cuda_fc_forward(plan.p, dy.f(), dx.f(), ws.ptr, info.workspace_bytes), TTL_STATUS_SUCCESS);
        CUDA_OK(cudaDeviceSynchronize());
        const auto y1 = download(dy.f(), ref.size());
        EXPECT_LE(ttl_test::rel_err(y1, ref), 1e-5) << "algo " << ttl_algo_name(info.algo);

        poison(dy.f(), ref.size());
        ASSERT_EQ(ttl_cuda_fc_forward(plan.p, dy.f(), dx.f(), ws.ptr, info.workspace_bytes), TTL_STATUS_SUCCESS);
        CUDA_OK(cudaDeviceSynchronize());
        const auto y2 = download(dy.f(), ref.size());
        EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)), 0) << "runs differ";

        // Activations need only float alignment (ttl_cuda.h): x and y one float past cudaMalloc's 256-byte
        // boundary, and the float before y stays untouched.
        DeviceBuffer x_shifted((x.size() + 1) * sizeof(float)), y_shifted((ref.size() + 1) * sizeof(float));
        ASSERT_TRUE(x_shifted.ptr != nullptr && y_shifted.ptr != nullptr);
        upload(x_shifted.f() + 1, x);
        poison(y_shifted.f(), ref.size() + 1);
        ASSERT_EQ(ttl_cuda_fc_forward(plan.p, y_shifted.f() + 1, x_shifted.f() + 1, ws.ptr, info.workspace_bytes),
                  TTL_STATUS_SUCCESS);
        CUDA_OK(cudaDeviceSynchronize());
        const auto shifted = download(y_shifted.f(), ref.size() + 1);
        EXPECT_TRUE(std::isnan(shifted[0])) << "wrote before y";
        EXPECT_LE(ttl_test::rel_err(std::vector<float>(shifted.begin() + 1, shifted.end()), ref), 1e-5)
            << "x and y 4 bytes off a 16-byte boundary";
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaFc, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<FcCase> &i) { return std::string(i.param.name); });

// ---- CUDA graph capture ---------------------------------------------------------------------------------------

TEST(CudaFcGraph, CaptureMatchesDirectRun) {
    REQUIRE_DEVICE();
    const ttl_fc_desc_t d = ttl_test::fc_desc({4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 4, 4, 4, 4, 4, 1});
    const int64_t batch = 5;
    const auto cores = ttl_test::random_vector(ttl_test::fc_param_count(d), 201, 0.6f);
    const auto bias = ttl_test::random_vector(d.out_features, 202);
    const auto x = ttl_test::random_vector(batch * d.in_features, 203);
    Handle h;
    cudaStream_t stream;
    CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    ASSERT_EQ(ttl_cuda_set_stream(h.h, stream), TTL_STATUS_SUCCESS);
    {
        Layer layer(h.h, d, cores, bias.data());
        DeviceBuffer dx(x.size() * sizeof(float)), dy(size_t(batch * d.out_features) * sizeof(float));
        upload(dx.f(), x);
        for (ttl_algo_t algo : {TTL_ALGO_FUSED, TTL_ALGO_SEQUENTIAL, TTL_ALGO_SEQUENTIAL_BLAS, TTL_ALGO_DENSE}) {
            SCOPED_TRACE(ttl_algo_name(algo));
            Plan plan;
            const ttl_cuda_plan_opts_t o = opts(algo);
            ASSERT_EQ(ttl_cuda_fc_plan_create(&plan.p, layer.l, batch, &o), TTL_STATUS_SUCCESS);
            ttl_plan_info_t info;
            ASSERT_EQ(ttl_cuda_fc_plan_info(plan.p, &info), TTL_STATUS_SUCCESS);
            DeviceBuffer ws(info.workspace_bytes);
            const size_t ny = size_t(batch * d.out_features);
            // direct run (also the warm-up of any lazily initialised library state)
            ASSERT_EQ(ttl_cuda_fc_forward(plan.p, dy.f(), dx.f(), ws.ptr, ws.bytes), TTL_STATUS_SUCCESS);
            CUDA_OK(cudaStreamSynchronize(stream));
            const auto direct = download(dy.f(), ny);
            poison(dy.f(), ny);
            cudaGraph_t graph = nullptr;
            CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
            const ttl_status_t st = ttl_cuda_fc_forward(plan.p, dy.f(), dx.f(), ws.ptr, ws.bytes);
            const cudaError_t end = cudaStreamEndCapture(stream, &graph);
            ASSERT_EQ(st, TTL_STATUS_SUCCESS);
            ASSERT_EQ(end, cudaSuccess);
            cudaGraphExec_t exec = nullptr;
            CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
            CUDA_OK(cudaGraphLaunch(exec, stream));
            CUDA_OK(cudaStreamSynchronize(stream));
            const auto replay = download(dy.f(), ny);
            EXPECT_EQ(std::memcmp(direct.data(), replay.data(), ny * sizeof(float)), 0);
            cudaGraphExecDestroy(exec);
            cudaGraphDestroy(graph);
        }
    }
    ASSERT_EQ(ttl_cuda_set_stream(h.h, 0), TTL_STATUS_SUCCESS);
    cudaStreamDestroy(stream);
}

// ---- errors ---------------------------------------------------------------------------------------------------

class CudaFcErrors : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!has_device()) GTEST_SKIP() << "no CUDA device";
        d = ttl_test::fc_desc({2, 3, 2}, {3, 2, 5}, {1, 3, 2, 1});
        cores = ttl_test::random_vector(ttl_test::fc_param_count(d), 301);
        handle = std::make_unique<Handle>();
        layer = std::make_unique<Layer>(handle->h, d, cores, nullptr);
        ASSERT_NE(layer->l, nullptr);
    }
    ttl_fc_desc_t d{};
    std::vector<float> cores;
    std::unique_ptr<Handle> handle;
    std::unique_ptr<Layer> layer;
};

TEST_F(CudaFcErrors, PlanCreateStatuses) {
    ttl_cuda_fc_plan_t *const sentinel = reinterpret_cast<ttl_cuda_fc_plan_t *>(0x1);
    ttl_cuda_fc_plan_t *p = sentinel;
    for (ttl_algo_t a : {TTL_ALGO_REFERENCE, TTL_ALGO_SPATIAL_FIRST, TTL_ALGO_CHANNELS_FIRST}) {
        const ttl_cuda_plan_opts_t o = opts(a);
        EXPECT_EQ(ttl_cuda_fc_plan_create(&p, layer->l, 4, &o), TTL_STATUS_UNSUPPORTED) << ttl_algo_name(a);
    }
    ttl_cuda_plan_opts_t o = opts(static_cast<ttl_algo_t>(99));
    EXPECT_EQ(ttl_cuda_fc_plan_create(&p, layer->l, 4, &o), TTL_STATUS_BAD_ARGUMENT);
    o = opts(TTL_ALGO_SEQUENTIAL, static_cast<ttl_order_t>(7));
    EXPECT_EQ(ttl_cuda_fc_plan_create(&p, layer->l, 4, &o), TTL_STATUS_BAD_ARGUMENT);
    o = opts(TTL_ALGO_AUTO, TTL_ORDER_AUTO, 2);
    EXPECT_EQ(ttl_cuda_fc_plan_create(&p, layer->l, 4, &o), TTL_STATUS_BAD_ARGUMENT);
    o = opts(TTL_ALGO_AUTO);
    o.allow_3xtf32 = -1;
    EXPECT_EQ(ttl_cuda_fc_plan_create(&p, layer->l, 4, &o), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(ttl_cuda_fc_plan_create(&p, layer->l, -1, nullptr), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(ttl_cuda_fc_plan_create(&p, nullptr, 4, nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_cuda_fc_plan_create(nullptr, layer->l, 4, nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(p, sentinel) << "plan written on failure";
    EXPECT_EQ(ttl_cuda_fc_plan_info(nullptr, nullptr), TTL_STATUS_NULL_POINTER);
}

TEST_F(CudaFcErrors, FusedThatDoesNotFitIsUnsupported) {
    // rank 512 between two 64 x 64 cores: every order and merge needs far more than a CTA's shared memory
    const ttl_fc_desc_t big = ttl_test::fc_desc({64, 64}, {64, 64}, {1, 512, 1});
    const auto big_cores = ttl_test::random_vector(ttl_test::fc_param_count(big), 302);
    Layer big_layer(handle->h, big, big_cores, nullptr);
    ASSERT_NE(big_layer.l, nullptr);
    ttl_cuda_fc_plan_t *p = nullptr;
    const ttl_cuda_plan_opts_t o = opts(TTL_ALGO_FUSED);
    EXPECT_EQ(ttl_cuda_fc_plan_create(&p, big_layer.l, 1, &o), TTL_STATUS_UNSUPPORTED);
    EXPECT_EQ(p, nullptr);
    // AUTO still finds something
    Plan plan;
    ASSERT_EQ(ttl_cuda_fc_plan_create(&plan.p, big_layer.l, 1, nullptr), TTL_STATUS_SUCCESS);
    ttl_plan_info_t info;
    ASSERT_EQ(ttl_cuda_fc_plan_info(plan.p, &info), TTL_STATUS_SUCCESS);
    EXPECT_NE(info.algo, TTL_ALGO_FUSED);
}

TEST_F(CudaFcErrors, ForwardStatusesLeaveOutputUntouched) {
    const int64_t batch = 3;
    Plan plan;
    const ttl_cuda_plan_opts_t o = opts(TTL_ALGO_SEQUENTIAL, TTL_ORDER_FIRST_TO_LAST);
    ASSERT_EQ(ttl_cuda_fc_plan_create(&plan.p, layer->l, batch, &o), TTL_STATUS_SUCCESS);
    ttl_plan_info_t info;
    ASSERT_EQ(ttl_cuda_fc_plan_info(plan.p, &info), TTL_STATUS_SUCCESS);
    ASSERT_GT(info.workspace_bytes, 0u);
    const size_t ny = size_t(batch * d.out_features);
    DeviceBuffer dx(size_t(batch * d.in_features) * sizeof(float)), dy(ny * sizeof(float)),
        ws(info.workspace_bytes + 16);
    upload(dx.f(), ttl_test::random_vector(batch * d.in_features, 303));
    const auto marker = ttl_test::random_vector(int64_t(ny), 304);
    upload(dy.f(), marker);

    EXPECT_EQ(ttl_cuda_fc_forward(plan.p, dy.f(), dx.f(), ws.ptr, info.workspace_bytes - 1),
              TTL_STATUS_INSUFFICIENT_WORKSPACE);
    EXPECT_EQ(ttl_cuda_fc_forward(plan.p, dy.f(), dx.f(), nullptr, 0), TTL_STATUS_INSUFFICIENT_WORKSPACE);
    EXPECT_EQ(ttl_cuda_fc_forward(plan.p, dy.f(), dx.f(), nullptr, info.workspace_bytes), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_cuda_fc_forward(nullptr, dy.f(), dx.f(), ws.ptr, info.workspace_bytes), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_cuda_fc_forward(plan.p, nullptr, dx.f(), ws.ptr, info.workspace_bytes), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_cuda_fc_forward(plan.p, dy.f(), nullptr, ws.ptr, info.workspace_bytes), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_cuda_fc_forward(plan.p, dy.f(), dx.f(), static_cast<char *>(ws.ptr) + 4, info.workspace_bytes),
              TTL_STATUS_BAD_ARGUMENT)
        << "a workspace that is not 16-byte aligned";
    // Overlapping buffers: y over x (in place), the workspace over y's tail (16-byte aligned, so only the overlap
    // is wrong).
    EXPECT_EQ(ttl_cuda_fc_forward(plan.p, dy.f(), static_cast<const float *>(dy.ptr), ws.ptr, info.workspace_bytes),
              TTL_STATUS_BAD_ARGUMENT);
    DeviceBuffer y_and_ws(ny * sizeof(float) + info.workspace_bytes);
    upload(y_and_ws.f(), marker);
    EXPECT_EQ(
        ttl_cuda_fc_forward(plan.p, y_and_ws.f(), dx.f(), y_and_ws.f() + (ny - 4) / 4 * 4, info.workspace_bytes),
        TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(std::memcmp(download(y_and_ws.f(), ny).data(), marker.data(), ny * sizeof(float)), 0);
    // An error the runtime still holds from the caller's own failed call: refused before any work, and the error
    // left for the caller to read.
    void *huge = nullptr;
    ASSERT_NE(cudaMalloc(&huge, size_t(1) << 62), cudaSuccess);
    EXPECT_EQ(ttl_cuda_fc_forward(plan.p, dy.f(), dx.f(), ws.ptr, info.workspace_bytes), TTL_STATUS_CUDA_ERROR);
    EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation) << "the caller's error, still there";
    CUDA_OK(cudaDeviceSynchronize());
    const auto after = download(dy.f(), ny);
    EXPECT_EQ(std::memcmp(after.data(), marker.data(), ny * sizeof(float)), 0) << "output touched";
    EXPECT_EQ(ttl_cuda_fc_forward(plan.p, dy.f(), dx.f(), ws.ptr, info.workspace_bytes), TTL_STATUS_SUCCESS)
        << "runs once the error is read";
}

TEST_F(CudaFcErrors, AutoHonoursANamedOrder) {
    for (ttl_order_t order : {TTL_ORDER_FIRST_TO_LAST, TTL_ORDER_LAST_TO_FIRST})
        for (int32_t autotune : {0, 1}) {
            Plan plan;
            ttl_cuda_plan_opts_t o = opts(TTL_ALGO_AUTO, order);
            o.autotune = autotune;
            ASSERT_EQ(ttl_cuda_fc_plan_create(&plan.p, layer->l, 5, &o), TTL_STATUS_SUCCESS);
            ttl_plan_info_t info;
            ASSERT_EQ(ttl_cuda_fc_plan_info(plan.p, &info), TTL_STATUS_SUCCESS);
            if (info.algo != TTL_ALGO_DENSE) EXPECT_EQ(info.order, order) << ttl_algo_name(info.algo);
        }
}

TEST_F(CudaFcErrors, BatchZeroIsANoOp) {
    for (ttl_algo_t a : {TTL_ALGO_AUTO, TTL_ALGO_FUSED, TTL_ALGO_SEQUENTIAL, TTL_ALGO_SEQUENTIAL_BLAS}) {
        Plan plan;
        const ttl_cuda_plan_opts_t o = opts(a);
        ASSERT_EQ(ttl_cuda_fc_plan_create(&plan.p, layer->l, 0, &o), TTL_STATUS_SUCCESS) << ttl_algo_name(a);
        ttl_plan_info_t info;
        ASSERT_EQ(ttl_cuda_fc_plan_info(plan.p, &info), TTL_STATUS_SUCCESS);
        EXPECT_EQ(info.workspace_bytes, 0u);
        EXPECT_EQ(info.macs, 0);
        float dummy = 0.0f;
        EXPECT_EQ(ttl_cuda_fc_forward(plan.p, &dummy, &dummy, nullptr, 0), TTL_STATUS_SUCCESS);
    }
}

TEST_F(CudaFcErrors, LayerCreateStatuses) {
    ttl_cuda_fc_layer_t *const sentinel = reinterpret_cast<ttl_cuda_fc_layer_t *>(0x1);
    ttl_cuda_fc_layer_t *l = sentinel;
    EXPECT_EQ(ttl_cuda_fc_layer_create(&l, handle->h, &d, nullptr, nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_cuda_fc_layer_create(&l, nullptr, &d, cores.data(), nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_cuda_fc_layer_create(&l, handle->h, nullptr, cores.data(), nullptr), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_cuda_fc_layer_create(nullptr, handle->h, &d, cores.data(), nullptr), TTL_STATUS_NULL_POINTER);
    ttl_fc_desc_t bad = d;
    bad.ranks[0] = 2;
    EXPECT_EQ(ttl_cuda_fc_layer_create(&l, handle->h, &bad, cores.data(), nullptr), TTL_STATUS_BAD_RANKS);
    bad = d;
    bad.in_features += 1;
    EXPECT_EQ(ttl_cuda_fc_layer_create(&l, handle->h, &bad, cores.data(), nullptr), TTL_STATUS_BAD_MODES);
    EXPECT_EQ(l, sentinel) << "layer written on failure";
}

// AUTO picks something that is not slower in principle: at VGG FC6 TT4 batch 1 the dense weight (411 MB) would
// dominate, so the TT paths must win there.
TEST(CudaFcAuto, VggBatch1IsNotDense) {
    REQUIRE_DEVICE();
    const ttl_fc_desc_t d = ttl_test::fc_desc({4, 4, 4, 4, 4, 4}, {2, 7, 8, 8, 7, 4}, {1, 4, 4, 4, 4, 4, 1});
    const auto cores = ttl_test::random_vector(ttl_test::fc_param_count(d), 401);
    Handle h;
    Layer layer(h.h, d, cores, nullptr);
    Plan plan;
    ASSERT_EQ(ttl_cuda_fc_plan_create(&plan.p, layer.l, 1, nullptr), TTL_STATUS_SUCCESS);
    ttl_plan_info_t info;
    ASSERT_EQ(ttl_cuda_fc_plan_info(plan.p, &info), TTL_STATUS_SUCCESS);
    EXPECT_NE(info.algo, TTL_ALGO_DENSE) << info.reason;
    EXPECT_EQ(info.persistent_bytes, 0u);
}

} // namespace
