// safetensors model files: round trips (dense tensors of every float dtype, TT-FC and TT-conv layers with and
// without bias, compared bit for bit), the writer's bytes against a golden file made independently by
// tests/data/make_golden.py, every class of malformed input (status BAD_FILE and a message naming the tensor or
// layer and the problem, the output pointer untouched), and write failures that must leave no file behind.
#include <gtest/gtest.h>

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "ttl/ttl_io.h"

using namespace ttl_test;

namespace {

using Bytes = std::vector<unsigned char>;

ttl_file_t *const kPoison = reinterpret_cast<ttl_file_t *>(0x5a5a);

Bytes serialize(const ttl_writer_t *w) {
    void *data = nullptr;
    size_t n = 0;
    char msg[TTL_IO_MSG_LEN] = "";
    EXPECT_EQ(ttl_writer_serialize(&data, &n, w, msg, sizeof msg), TTL_STATUS_SUCCESS) << msg;
    Bytes out(static_cast<unsigned char *>(data), static_cast<unsigned char *>(data) + n);
    ttl_free(data);
    return out;
}

ttl_file_t *open_bytes(const Bytes &b) {
    ttl_file_t *f = nullptr;
    char msg[TTL_IO_MSG_LEN] = "";
    EXPECT_EQ(ttl_file_open_memory(&f, b.data(), b.size(), msg, sizeof msg), TTL_STATUS_SUCCESS) << msg;
    return f;
}

Bytes read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string &path, const Bytes &b) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char *>(b.data()), std::streamsize(b.size()));
}

bool exists(const std::string &path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
}

// A fresh directory under the system temporary directory, removed (with its files) at the end of the test.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/ttl_io_test_XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() {
        for (const auto &f : files()) unlink((path + "/" + f).c_str());
        rmdir(path.c_str());
    }
    std::vector<std::string> files() const {
        std::vector<std::string> out;
        if (DIR *d = opendir(path.c_str())) {
            while (dirent *e = readdir(d))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) out.push_back(e->d_name);
            closedir(d);
        }
        return out;
    }
};

// Bits of floats, for comparisons that must be exact (NaN-safe, -0 distinct).
std::vector<uint32_t> bits(const float *p, size_t n) {
    std::vector<uint32_t> b(n);
    if (n) memcpy(b.data(), p, n * 4);
    return b;
}

} // namespace

// ---------------------------------------------------------------------------------------------------------------
// Dense round trips
// ---------------------------------------------------------------------------------------------------------------

class DenseRoundTrip : public ::testing::TestWithParam<std::vector<int64_t>> {};

TEST_P(DenseRoundTrip, F32BitForBit) {
    const std::vector<int64_t> shape = GetParam();
    int64_t n = 1;
    for (auto s : shape) n *= s;
    std::vector<float> a = random_vector(n, 7), b = random_vector(n + 1, 8);
    ttl_writer_t *w;
    ASSERT_EQ(ttl_writer_create(&w), TTL_STATUS_SUCCESS);
    char msg[TTL_IO_MSG_LEN] = "";
    ASSERT_EQ(ttl_writer_add_tensor(w, "a", TTL_DTYPE_F32, shape.data(), int32_t(shape.size()), a.data(), msg,
                                    sizeof msg),
              TTL_STATUS_SUCCESS)
        << msg;
    const int64_t bshape[1] = {n + 1};
    ASSERT_EQ(ttl_writer_add_tensor(w, "b", TTL_DTYPE_F32, bshape, 1, b.data(), msg, sizeof msg),
              TTL_STATUS_SUCCESS);
    ASSERT_EQ(ttl_writer_set_metadata(w, "format", "pt", msg, sizeof msg), TTL_STATUS_SUCCESS);

    // through memory and through a file: the same bytes, the same content
    TempDir dir;
    const std::string path = dir.path + "/dense.safetensors";
    ASSERT_EQ(ttl_writer_save(w, path.c_str(), msg, sizeof msg), TTL_STATUS_SUCCESS) << msg;
    const Bytes mem = serialize(w);
    EXPECT_EQ(read_file(path), mem);
    EXPECT_EQ(dir.files().size(), 1u); // no temporary left behind
    ttl_writer_destroy(w);

    ttl_file_t *f = nullptr;
    ASSERT_EQ(ttl_file_open(&f, path.c_str(), msg, sizeof msg), TTL_STATUS_SUCCESS) << msg;
    ttl_tensor_info_t info;
    ASSERT_EQ(ttl_file_find_tensor(&info, f, "a", msg, sizeof msg), TTL_STATUS_SUCCESS);
    EXPECT_EQ(info.dtype, TTL_DTYPE_F32);
    ASSERT_EQ(info.ndim, int32_t(shape.size()));
    for (size_t i = 0; i < shape.size(); ++i) EXPECT_EQ(info.shape[i], shape[i]);
    EXPECT_EQ(info.numel, n);
    float *got = nullptr;
    int64_t count = -1;
    ASSERT_EQ(ttl_file_read_f32(&got, &count, f, "a", msg, sizeof msg), TTL_STATUS_SUCCESS);
    EXPECT_EQ(count, n);
    EXPECT_EQ(bits(got, size_t(n)), bits(a.data(), a.size()));
    ttl_free(got);
    ASSERT_EQ(ttl_file_read_f32(&got, &count, f, "b", msg, sizeof msg), TTL_STATUS_SUCCESS);
    EXPECT_EQ(bits(got, size_t(n + 1)), bits(b.data(), b.size()));
    ttl_free(got);
    const char *value = nullptr;
    ASSERT_EQ(ttl_file_metadata_get(&value, f, "format"), TTL_STATUS_SUCCESS);
    EXPECT_STREQ(value, "pt");
    int64_t layers = -1;
    ASSERT_EQ(ttl_file_layer_count(&layers, f), TTL_STATUS_SUCCESS);
    EXPECT_EQ(layers, 0);
    ttl_file_close(f);
}

INSTANTIATE_TEST_SUITE_P(Safetensors, DenseRoundTrip,
                         ::testing::Values(std::vector<int64_t>{}, std::vector<int64_t>{1}, std::vector<int64_t>{7},
                                           std::vector<int64_t>{3, 5}, std::vector<int64_t>{0, 4},
                                           std::vector<int64_t>{2, 3, 4, 5},
                                           std::vector<int64_t>{1, 1, 1, 1, 1, 2}));

// Hand-made bytes of each float dtype and the floats they must convert to, exactly.
struct Conversion {
    ttl_dtype_t dtype;
    Bytes bytes;
    std::vector<float> expect;
};

// Names the case by its dtype instead of dumping its bytes (which include uninitialised padding).
void PrintTo(const Conversion &c, std::ostream *os) { *os << ttl_dtype_name(c.dtype); }

class DtypeConversion : public ::testing::TestWithParam<Conversion> {};

TEST_P(DtypeConversion, ConvertsExactly) {
    const Conversion &c = GetParam();
    const int64_t n = int64_t(c.expect.size());
    ttl_writer_t *w;
    ASSERT_EQ(ttl_writer_create(&w), TTL_STATUS_SUCCESS);
    char msg[TTL_IO_MSG_LEN] = "";
    ASSERT_EQ(ttl_writer_add_tensor(w, "t", c.dtype, &n, 1, c.bytes.data(), msg, sizeof msg), TTL_STATUS_SUCCESS);
    ttl_file_t *f = open_bytes(serialize(w));
    ttl_writer_destroy(w);
    ASSERT_NE(f, nullptr);
    ttl_tensor_info_t info;
    ASSERT_EQ(ttl_file_tensor_info(&info, f, 0), TTL_STATUS_SUCCESS);
    EXPECT_EQ(info.dtype, c.dtype);
    EXPECT_EQ(info.data_bytes, c.bytes.size());
    float *got = nullptr;
    ASSERT_EQ(ttl_file_read_f32(&got, nullptr, f, "t", msg, sizeof msg), TTL_STATUS_SUCCESS);
    EXPECT_EQ(bits(got, size_t(n)), bits(c.expect.data(), c.expect.size()));
    ttl_free(got);
    const void *raw = nullptr;
    size_t raw_bytes = 0;
    ASSERT_EQ(ttl_file_tensor_data(&raw, &raw_bytes, f, "t", msg, sizeof msg), TTL_STATUS_SUCCESS);
    ASSERT_EQ(raw_bytes, c.bytes.size());
    EXPECT_EQ(memcmp(raw, c.bytes.data(), raw_bytes), 0);
    ttl_file_close(f);
}

INSTANTIATE_TEST_SUITE_P(
    Safetensors, DtypeConversion,
    ::testing::Values(
        // F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), 3 * 2^-16 (subnormal), -0, +Inf, 1/3 rounded
        Conversion{TTL_DTYPE_F16,
                   {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x03, 0x01, 0x00, 0x80, 0x00, 0x7c, 0x55, 0x35},
                   {1.0f, -2.0f, 65504.0f, 0x1p-24f, 0x103p-24f, -0.0f, INFINITY, 0x1.554p-2f}},
        // BF16: 1, -5, +Inf, the smallest subnormal 2^-133, 3.140625
        Conversion{TTL_DTYPE_BF16,
                   {0x80, 0x3f, 0xa0, 0xc0, 0x80, 0x7f, 0x01, 0x00, 0x49, 0x40},
                   {1.0f, -5.0f, INFINITY, 0x1p-133f, 3.140625f}},
        // F32 little-endian: 1.5, -0.25
        Conversion{TTL_DTYPE_F32, {0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x80, 0xbe}, {1.5f, -0.25f}},
        // F64: 0.1 rounds to the nearest float
        Conversion{TTL_DTYPE_F64, {0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f}, {0.1f}}));

TEST(Safetensors, NonFloatDtypesAreKeptButNotConverted) {
    const int64_t v[3] = {1, -2, 1LL << 40}, n = 3;
    ttl_writer_t *w;
    ASSERT_EQ(ttl_writer_create(&w), TTL_STATUS_SUCCESS);
    ASSERT_EQ(ttl_writer_add_tensor(w, "steps", TTL_DTYPE_I64, &n, 1, v, nullptr, 0), TTL_STATUS_SUCCESS);
    ttl_file_t *f = open_bytes(serialize(w));
    ttl_writer_destroy(w);
    char msg[TTL_IO_MSG_LEN] = "";
    float *got = reinterpret_cast<float *>(0x77);
    EXPECT_EQ(ttl_file_read_f32(&got, nullptr, f, "steps", msg, sizeof msg), TTL_STATUS_UNSUPPORTED);
    EXPECT_EQ(got, reinterpret_cast<float *>(0x77));
    EXPECT_NE(std::string(msg).find("'steps'"), std::string::npos) << msg;
    EXPECT_NE(std::string(msg).find("I64"), std::string::npos) << msg;
    const void *raw;
    size_t bytes;
    ASSERT_EQ(ttl_file_tensor_data(&raw, &bytes, f, "steps", msg, sizeof msg), TTL_STATUS_SUCCESS);
    ASSERT_EQ(bytes, sizeof v);
    EXPECT_EQ(memcmp(raw, v, sizeof v), 0);
    ttl_file_close(f);
}

// ---------------------------------------------------------------------------------------------------------------
// TT layers
// ---------------------------------------------------------------------------------------------------------------

struct FcCase {
    std::vector<int64_t> out_modes, in_modes, ranks;
    bool bias;
};

// Layer cases print as their modes and ranks rather than as raw bytes (which include uninitialised padding).
void print_modes(std::ostream *os, const char *label, const std::vector<int64_t> &v) {
    *os << label;
    for (size_t i = 0; i < v.size(); ++i) *os << (i ? "," : "") << v[i];
}
void PrintTo(const FcCase &c, std::ostream *os) {
    print_modes(os, "M=", c.out_modes);
    print_modes(os, " N=", c.in_modes);
    print_modes(os, " r=", c.ranks);
}

class FcLayerRoundTrip : public ::testing::TestWithParam<FcCase> {};

TEST_P(FcLayerRoundTrip, BitForBit) {
    const FcCase &c = GetParam();
    const ttl_fc_desc_t d = fc_desc(c.out_modes, c.in_modes, c.ranks);
    const std::vector<float> cores = random_vector(fc_param_count(d), 11);
    const std::vector<float> bias = random_vector(d.out_features, 12);
    ttl_writer_t *w;
    ASSERT_EQ(ttl_writer_create(&w), TTL_STATUS_SUCCESS);
    char msg[TTL_IO_MSG_LEN] = "";
    ASSERT_EQ(ttl_writer_add_fc(w, "model.fc1", &d, cores.data(), c.bias ? bias.data() : nullptr, msg, sizeof msg),
              TTL_STATUS_SUCCESS)
        << msg;
    ttl_file_t *f = open_bytes(serialize(w));
    ttl_writer_destroy(w);
    ASSERT_NE(f, nullptr);

    ttl_layer_info_t info;
    ASSERT_EQ(ttl_file_find_layer(&info, f, "model.fc1", msg, sizeof msg), TTL_STATUS_SUCCESS) << msg;
    EXPECT_EQ(info.kind, TTL_LAYER_FC);
    EXPECT_EQ(info.params, fc_param_count(d));
    EXPECT_EQ(info.bias_count, c.bias ? d.out_features : 0);
    ttl_fc_desc_t got{};
    float *got_cores = nullptr, *got_bias = reinterpret_cast<float *>(0x77);
    ASSERT_EQ(ttl_file_read_fc(&got, &got_cores, &got_bias, f, "model.fc1", msg, sizeof msg), TTL_STATUS_SUCCESS);
    EXPECT_EQ(memcmp(&got, &d, sizeof d), 0);
    EXPECT_EQ(memcmp(&info.fc, &d, sizeof d), 0);
    EXPECT_EQ(bits(got_cores, cores.size()), bits(cores.data(), cores.size()));
    if (c.bias) {
        ASSERT_NE(got_bias, nullptr);
        EXPECT_EQ(bits(got_bias, bias.size()), bits(bias.data(), bias.size()));
    } else {
        EXPECT_EQ(got_bias, nullptr);
    }
    ttl_free(got_cores);
    ttl_free(got_bias);
    // one tensor per core (+ bias), listed like any other tensor
    int64_t count = 0;
    ASSERT_EQ(ttl_file_tensor_count(&count, f), TTL_STATUS_SUCCESS);
    EXPECT_EQ(count, d.num_cores + (c.bias ? 1 : 0));
    ttl_conv_desc_t conv;
    float *conv_cores = reinterpret_cast<float *>(0x77);
    EXPECT_EQ(ttl_file_read_conv(&conv, &conv_cores, nullptr, f, "model.fc1", msg, sizeof msg),
              TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(conv_cores, reinterpret_cast<float *>(0x77));
    ttl_file_close(f);
}

INSTANTIATE_TEST_SUITE_P(Safetensors, FcLayerRoundTrip,
                         ::testing::Values(FcCase{{4}, {6}, {1, 1}, false}, FcCase{{2, 3}, {4, 2}, {1, 3, 1}, true},
                                           FcCase{{4, 4, 4}, {8, 8, 8}, {1, 4, 5, 1}, true},
                                           FcCase{{1, 2, 3, 2}, {3, 1, 2, 2}, {1, 2, 3, 2, 1}, false}));

struct ConvCase {
    std::vector<int64_t> out_modes, in_modes, ranks;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    bool bias;
};

void PrintTo(const ConvCase &c, std::ostream *os) {
    print_modes(os, "S=", c.out_modes);
    print_modes(os, " C=", c.in_modes);
    print_modes(os, " r=", c.ranks);
    *os << " k=" << c.kh << "x" << c.kw;
}

class ConvLayerRoundTrip : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvLayerRoundTrip, BitForBit) {
    const ConvCase &c = GetParam();
    const ttl_conv_desc_t d =
        conv_desc(c.out_modes, c.in_modes, c.ranks, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw);
    const std::vector<float> cores = random_vector(conv_param_count(d), 21);
    const std::vector<float> bias = random_vector(d.out_channels, 22);
    ttl_writer_t *w;
    ASSERT_EQ(ttl_writer_create(&w), TTL_STATUS_SUCCESS);
    char msg[TTL_IO_MSG_LEN] = "";
    ASSERT_EQ(ttl_writer_add_conv(w, "conv", &d, cores.data(), c.bias ? bias.data() : nullptr, msg, sizeof msg),
              TTL_STATUS_SUCCESS)
        << msg;
    ttl_file_t *f = open_bytes(serialize(w));
    ttl_writer_destroy(w);
    ASSERT_NE(f, nullptr);
    ttl_conv_desc_t got{};
    float *got_cores = nullptr, *got_bias = nullptr;
    ASSERT_EQ(ttl_file_read_conv(&got, &got_cores, &got_bias, f, "conv", msg, sizeof msg), TTL_STATUS_SUCCESS)
        << msg;
    EXPECT_EQ(memcmp(&got, &d, sizeof d), 0);
    EXPECT_EQ(bits(got_cores, cores.size()), bits(cores.data(), cores.size()));
    if (c.bias) {
        ASSERT_NE(got_bias, nullptr);
        EXPECT_EQ(bits(got_bias, bias.size()), bits(bias.data(), bias.size()));
    } else {
        EXPECT_EQ(got_bias, nullptr);
    }
    ttl_free(got_cores);
    ttl_free(got_bias);
    ttl_tensor_info_t spatial;
    ASSERT_EQ(ttl_file_find_tensor(&spatial, f, "conv.tt_spatial", msg, sizeof msg), TTL_STATUS_SUCCESS);
    EXPECT_EQ(spatial.ndim, 3);
    EXPECT_EQ(spatial.shape[2], d.ranks[0]);
    ttl_file_close(f);
}

INSTANTIATE_TEST_SUITE_P(Safetensors, ConvLayerRoundTrip,
                         ::testing::Values(ConvCase{{4}, {2}, {3, 1}, 3, 3, 1, 1, 1, 1, 1, 1, false},
                                           ConvCase{
                                               {4, 8, 4}, {4, 4, 4}, {5, 4, 3, 1}, 3, 3, 2, 2, 1, 1, 1, 1, true},
                                           ConvCase{{2, 2}, {3, 1}, {2, 2, 1}, 1, 5, 1, 3, 0, 2, 2, 1, true}));

// ---------------------------------------------------------------------------------------------------------------
// Golden file
// ---------------------------------------------------------------------------------------------------------------

namespace {

std::vector<float> golden_values(int n, int start) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) v[size_t(i)] = float(start + i + 1) / 4.0f * (i % 2 ? -1.0f : 1.0f);
    return v;
}

std::string data_dir() {
    const char *d = getenv("TTL_TEST_DATA");
    return d ? d : "";
}

} // namespace

TEST(Safetensors, WriterMatchesGoldenFile) {
    const std::string dir = data_dir();
    ASSERT_FALSE(dir.empty()) << "TTL_TEST_DATA is not set";
    const Bytes golden = read_file(dir + "/golden.safetensors");
    ASSERT_FALSE(golden.empty());

    // the content make_golden.py describes
    ttl_writer_t *w;
    ASSERT_EQ(ttl_writer_create(&w), TTL_STATUS_SUCCESS);
    char msg[TTL_IO_MSG_LEN] = "";
    const int64_t dense_shape[2] = {2, 3};
    const std::vector<float> dense = golden_values(6, 0);
    std::vector<float> fc_cores = golden_values(4, 10), fc_core1 = golden_values(12, 20);
    fc_cores.insert(fc_cores.end(), fc_core1.begin(), fc_core1.end());
    const std::vector<float> fc_bias = golden_values(4, 40);
    std::vector<float> conv_cores = golden_values(4, 50), conv_core0 = golden_values(8, 60);
    conv_cores.insert(conv_cores.end(), conv_core0.begin(), conv_core0.end());
    const ttl_fc_desc_t fc = fc_desc({2, 2}, {1, 3}, {1, 2, 1});
    const ttl_conv_desc_t conv = conv_desc({2}, {2}, {2, 1}, 1, 2, 1, 1, 0, 1, 1, 1);
    // added in another order than the file's: the writer orders them
    ASSERT_EQ(ttl_writer_add_fc(w, "fc", &fc, fc_cores.data(), fc_bias.data(), msg, sizeof msg),
              TTL_STATUS_SUCCESS);
    ASSERT_EQ(ttl_writer_add_tensor(w, "dense", TTL_DTYPE_F32, dense_shape, 2, dense.data(), msg, sizeof msg),
              TTL_STATUS_SUCCESS);
    ASSERT_EQ(ttl_writer_set_metadata(w, "format", "pt", msg, sizeof msg), TTL_STATUS_SUCCESS);
    ASSERT_EQ(ttl_writer_add_conv(w, "conv", &conv, conv_cores.data(), nullptr, msg, sizeof msg),
              TTL_STATUS_SUCCESS);
    const Bytes ours = serialize(w);
    ttl_writer_destroy(w);
    EXPECT_EQ(std::string(ours.begin(), ours.end()), std::string(golden.begin(), golden.end()));

    // and the golden file reads back as that content
    ttl_file_t *f = open_bytes(golden);
    ASSERT_NE(f, nullptr);
    int64_t layers = 0;
    ASSERT_EQ(ttl_file_layer_count(&layers, f), TTL_STATUS_SUCCESS);
    ASSERT_EQ(layers, 2);
    ttl_layer_info_t info;
    ASSERT_EQ(ttl_file_layer_info(&info, f, 0), TTL_STATUS_SUCCESS); // sorted by name
    EXPECT_STREQ(info.name, "conv");
    ttl_conv_desc_t cd;
    float *cores = nullptr, *bias = nullptr;
    ASSERT_EQ(ttl_file_read_conv(&cd, &cores, &bias, f, "conv", msg, sizeof msg), TTL_STATUS_SUCCESS);
    EXPECT_EQ(memcmp(&cd, &conv, sizeof cd), 0);
    EXPECT_EQ(bits(cores, conv_cores.size()), bits(conv_cores.data(), conv_cores.size()));
    EXPECT_EQ(bias, nullptr);
    ttl_free(cores);
    ttl_fc_desc_t fd;
    ASSERT_EQ(ttl_file_read_fc(&fd, &cores, &bias, f, "fc", msg, sizeof msg), TTL_STATUS_SUCCESS);
    EXPECT_EQ(memcmp(&fd, &fc, sizeof fd), 0);
    EXPECT_EQ(bits(cores, fc_cores.size()), bits(fc_cores.data(), fc_cores.size()));
    EXPECT_EQ(bits(bias, 4), bits(fc_bias.data(), 4));
    ttl_free(cores);
    ttl_free(bias);
    ttl_file_close(f);
}

// ---------------------------------------------------------------------------------------------------------------
// Malformed files
// ---------------------------------------------------------------------------------------------------------------

namespace {

// A file from a header text and a data buffer size; the header length is written as given unless overridden.
Bytes raw_file(const std::string &header, size_t data_bytes, int64_t length_override = -1) {
    const uint64_t n = length_override >= 0 ? uint64_t(length_override) : header.size();
    Bytes b(8);
    for (int i = 0; i < 8; ++i) b[size_t(i)] = static_cast<unsigned char>(n >> (8 * i));
    b.insert(b.end(), header.begin(), header.end());
    b.resize(b.size() + data_bytes, 0x3f);
    return b;
}

// The golden file's header with one substring replaced: well-formed except for that change.
std::string golden_header() {
    const Bytes g = read_file(data_dir() + "/golden.safetensors");
    if (g.size() < 8) return "";
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | g[size_t(i)];
    return std::string(g.begin() + 8, g.begin() + 8 + long(n));
}
size_t golden_data_bytes() {
    const Bytes g = read_file(data_dir() + "/golden.safetensors");
    return g.size() - 8 - golden_header().size();
}
Bytes golden_with(const std::string &from, const std::string &to, long data_delta = 0) {
    std::string h = golden_header();
    const size_t at = h.find(from);
    if (at == std::string::npos) return {};
    h.replace(at, from.size(), to);
    return raw_file(h, size_t(long(golden_data_bytes()) + data_delta));
}

} // namespace

struct Malformed {
    const char *label;
    Bytes (*make)();
    std::vector<std::string> message_has; // substrings the message must contain
};

void PrintTo(const Malformed &m, std::ostream *os) { *os << m.label; }

class MalformedFile : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedFile, IsRefusedWithAMessage) {
    const Malformed &m = GetParam();
    const Bytes b = m.make();
    ASSERT_FALSE(b.empty() && std::string(m.label) != "empty") << "test input not built";
    ttl_file_t *f = kPoison;
    char msg[TTL_IO_MSG_LEN] = "";
    EXPECT_EQ(ttl_file_open_memory(&f, b.data(), b.size(), msg, sizeof msg), TTL_STATUS_BAD_FILE) << m.label;
    EXPECT_EQ(f, kPoison);
    EXPECT_EQ(strchr(msg, '\n'), nullptr) << "one line: " << msg;
    for (const auto &s : m.message_has) EXPECT_NE(std::string(msg).find(s), std::string::npos) << msg;

    // the same through a file on disk
    TempDir dir;
    const std::string path = dir.path + "/bad.safetensors";
    write_file(path, b);
    char msg2[TTL_IO_MSG_LEN] = "";
    EXPECT_EQ(ttl_file_open(&f, path.c_str(), msg2, sizeof msg2), TTL_STATUS_BAD_FILE);
    EXPECT_EQ(f, kPoison);
    EXPECT_STREQ(msg, msg2);
}

namespace {
const std::string kTensorA = R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})";
}

INSTANTIATE_TEST_SUITE_P(
    Safetensors, MalformedFile,
    ::testing::Values(
        Malformed{"empty", [] { return Bytes{}; }, {"truncated"}},
        Malformed{"truncated_length",
                  [] {
                      return Bytes{0x10, 0, 0, 0};
                  },
                  {"truncated"}},
        Malformed{
            "length_past_end", [] { return raw_file("{}", 0, 1000); }, {"header length 1000", "past the end"}},
        Malformed{"length_over_limit", [] { return raw_file("{}", 0, int64_t(1) << 40); }, {"exceeds the limit"}},
        Malformed{"truncated_header", [] { return raw_file("{" + kTensorA + "}", 16, 40); }, {"not valid JSON"}},
        Malformed{"bad_json", [] { return raw_file(R"({"a":{"dtype":"F32",)", 0); }, {"not valid JSON"}},
        Malformed{"not_an_object", [] { return raw_file("[1, 2]", 0); }, {"start with '{'"}},
        Malformed{"trailing_garbage", [] { return raw_file("{}  x", 0); }, {"after its JSON"}},
        Malformed{"not_utf8", [] { return raw_file("{\"\xff\":1}", 0); }, {"UTF-8"}},
        Malformed{"nul_byte", [] { return raw_file(std::string("{}\0 ", 4), 0); }, {"UTF-8"}},
        Malformed{"entry_not_object", [] { return raw_file(R"({"a":[1]})", 0); }, {"'a'", "not a JSON object"}},
        Malformed{"unknown_dtype",
                  [] { return raw_file(R"({"a":{"dtype":"Q7","shape":[4],"data_offsets":[0,16]}})", 16); },
                  {"'a'", "unknown dtype 'Q7'"}},
        Malformed{"missing_shape",
                  [] { return raw_file(R"({"a":{"dtype":"F32","data_offsets":[0,16]}})", 16); },
                  {"'a'", "\"shape\""}},
        Malformed{"negative_shape",
                  [] { return raw_file(R"({"a":{"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]}})", 16); },
                  {"'a'", "negative dimension -2"}},
        Malformed{"fractional_shape",
                  [] { return raw_file(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,10]}})", 10); },
                  {"'a'", "not an integer"}},
        Malformed{"overflowing_shape",
                  [] {
                      return raw_file(
                          R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}})", 16);
                  },
                  {"'a'", "overflows"}},
        Malformed{
            "too_many_dims",
            [] {
                return raw_file(
                    R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})", 4);
            },
            {"'a'", "17 dimensions"}},
        Malformed{"offsets_not_pair",
                  [] { return raw_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", 16); },
                  {"'a'", "data_offsets"}},
        Malformed{"offsets_reversed",
                  [] { return raw_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", 8); },
                  {"'a'", "end before they begin"}},
        Malformed{"offsets_past_end", [] { return raw_file("{" + kTensorA + "}", 12); }, {"'a'", "past the end"}},
        Malformed{"size_mismatch",
                  [] { return raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16); },
                  {"'a'", "needs 12"}},
        Malformed{"overlap",
                  [] {
                      return raw_file("{" + kTensorA + R"(,"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                                      24);
                  },
                  {"'b'", "overlap", "'a'"}},
        Malformed{"gap",
                  [] {
                      return raw_file(
                          "{" + kTensorA + R"(,"b":{"dtype":"F32","shape":[4],"data_offsets":[20,36]}})", 36);
                  },
                  {"'b'", "gap of 4 bytes"}},
        Malformed{"uncovered_tail", [] { return raw_file("{" + kTensorA + "}", 20); }, {"4 bytes", "no tensor"}},
        Malformed{
            "duplicate_name", [] { return raw_file("{" + kTensorA + "," + kTensorA + "}", 16); }, {"'a'", "twice"}},
        Malformed{"metadata_not_string",
                  [] { return raw_file(R"({"__metadata__":{"k":1}})", 0); },
                  {"'k'", "not a string"}},
        Malformed{"metadata_not_object", [] { return raw_file(R"({"__metadata__":"x"})", 0); }, {"__metadata__"}},
        // TT layers: the golden file with one thing changed
        Malformed{"layer_rank_contradicts_shape",
                  [] { return golden_with(R"(\"ranks\":[1,2,1])", R"(\"ranks\":[1,3,1])"); },
                  {"layer 'fc'", "'fc.tt_core.0'", "[1, 2, 1, 2]", "metadata says [1, 2, 1, 3]"}},
        Malformed{"layer_modes_contradict_shape",
                  [] { return golden_with(R"(\"in_modes\":[1,3])", R"(\"in_modes\":[3,1])"); },
                  {"layer 'fc'", "'fc.tt_core.0'", "metadata says"}},
        Malformed{"layer_kernel_contradicts_shape",
                  [] { return golden_with(R"(\"kernel\":[1,2])", R"(\"kernel\":[2,1])"); },
                  {"layer 'conv'", "'conv.tt_spatial'", "metadata says [2, 1, 2]"}},
        Malformed{"ranks_do_not_chain",
                  [] {
                      return golden_with(R"("fc.tt_core.1":{"dtype":"F32","shape":[2,2,3,1])",
                                         R"("fc.tt_core.1":{"dtype":"F32","shape":[3,2,2,1])");
                  },
                  {"layer 'fc'", "ranks do not chain", "'fc.tt_core.0' ends with rank 2",
                   "'fc.tt_core.1' starts with rank 3"}},
        Malformed{"spatial_rank_does_not_chain",
                  [] {
                      return golden_with(R"("conv.tt_spatial":{"dtype":"F32","shape":[1,2,2])",
                                         R"("conv.tt_spatial":{"dtype":"F32","shape":[2,1,2])");
                  },
                  {"layer 'conv'", "metadata says [1, 2, 2]"}},
        Malformed{"layer_tensor_missing",
                  [] { return golden_with(R"("fc.tt_core.1":)", R"("fc.tt_core.7":)"); },
                  {"layer 'fc'", "'fc.tt_core.1' is missing"}},
        Malformed{"layer_bias_missing",
                  [] { return golden_with(R"("fc.bias":)", R"("fc.b":)"); },
                  {"layer 'fc'", "'fc.bias' is missing"}},
        Malformed{"layer_bad_kind",
                  [] { return golden_with(R"(\"kind\":\"fc\")", R"(\"kind\":\"lstm\")"); },
                  {"layer 'fc'", "\"kind\""}},
        Malformed{"layer_bad_json",
                  [] { return golden_with(R"({\"kind\":\"fc\")", R"({\"kind\":)"); },
                  {"layer 'fc'", "not a JSON object"}},
        Malformed{"layer_boundary_rank",
                  [] { return golden_with(R"(\"ranks\":[2,1],)", R"(\"ranks\":[2,2],)"); },
                  {"layer 'conv'", "no valid TT layer"}},
        Malformed{"layer_mode_count",
                  [] { return golden_with(R"(\"in_modes\":[1,3])", R"(\"in_modes\":[3])"); },
                  {"layer 'fc'", "\"in_modes\""}},
        Malformed{
            "layer_core_not_float",
            [] { return golden_with(R"("fc.tt_core.0":{"dtype":"F32")", R"("fc.tt_core.0":{"dtype":"I32")"); },
            {"layer 'fc'", "'fc.tt_core.0'", "I32"}},
        Malformed{"no_format_version",
                  [] { return golden_with(R"("ttl.format_version":"1",)", R"("ttl.format_versio":"1",)"); },
                  {"ttl.format_version"}},
        Malformed{"future_format_version",
                  [] { return golden_with(R"("ttl.format_version":"1",)", R"("ttl.format_version":"2",)"); },
                  {"unsupported", "'2'"}}));

TEST(Safetensors, GoldenEditsStillParseWhenUnchanged) {
    // the malformed-layer cases above edit a header that is otherwise valid: check that it is
    ASSERT_FALSE(data_dir().empty()) << "TTL_TEST_DATA is not set";
    const Bytes b = golden_with("\"format\":\"pt\"", "\"format\":\"pt\"");
    ASSERT_FALSE(b.empty());
    ttl_file_t *f = open_bytes(b);
    ASSERT_NE(f, nullptr);
    ttl_file_close(f);
}

TEST(Safetensors, MissingNamesAndFiles) {
    ttl_writer_t *w;
    ASSERT_EQ(ttl_writer_create(&w), TTL_STATUS_SUCCESS);
    ttl_file_t *f = open_bytes(serialize(w));
    ttl_writer_destroy(w);
    char msg[TTL_IO_MSG_LEN] = "";
    ttl_tensor_info_t info;
    EXPECT_EQ(ttl_file_find_tensor(&info, f, "nope", msg, sizeof msg), TTL_STATUS_NOT_FOUND);
    EXPECT_NE(std::string(msg).find("'nope'"), std::string::npos) << msg;
    ttl_layer_info_t layer;
    EXPECT_EQ(ttl_file_find_layer(&layer, f, "fc9", msg, sizeof msg), TTL_STATUS_NOT_FOUND);
    EXPECT_NE(std::string(msg).find("'fc9'"), std::string::npos) << msg;
    const char *value;
    EXPECT_EQ(ttl_file_metadata_get(&value, f, "format"), TTL_STATUS_NOT_FOUND);
    EXPECT_EQ(ttl_file_tensor_info(&info, f, 0), TTL_STATUS_BAD_ARGUMENT);
    ttl_file_close(f);

    ttl_file_t *g = kPoison;
    EXPECT_EQ(ttl_file_open(&g, "/nonexistent/dir/model.safetensors", msg, sizeof msg), TTL_STATUS_IO_ERROR);
    EXPECT_EQ(g, kPoison);
    EXPECT_NE(std::string(msg).find("'/nonexistent/dir/model.safetensors'"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------------------------
// Writer arguments and write failures
// ---------------------------------------------------------------------------------------------------------------

TEST(Safetensors, WriterRefusesBadArgumentsAndStaysUnchanged) {
    ttl_writer_t *w;
    ASSERT_EQ(ttl_writer_create(&w), TTL_STATUS_SUCCESS);
    const float x[4] = {1, 2, 3, 4};
    const int64_t n = 4;
    char msg[TTL_IO_MSG_LEN] = "";
    ASSERT_EQ(ttl_writer_add_tensor(w, "fc.tt_core.0", TTL_DTYPE_F32, &n, 1, x, msg, sizeof msg),
              TTL_STATUS_SUCCESS);
    const Bytes before = serialize(w);

    EXPECT_EQ(ttl_writer_add_tensor(w, "fc.tt_core.0", TTL_DTYPE_F32, &n, 1, x, msg, sizeof msg),
              TTL_STATUS_BAD_ARGUMENT);
    EXPECT_NE(std::string(msg).find("'fc.tt_core.0'"), std::string::npos) << msg;
    EXPECT_EQ(ttl_writer_add_tensor(w, "__metadata__", TTL_DTYPE_F32, &n, 1, x, msg, sizeof msg),
              TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(ttl_writer_add_tensor(w, "", TTL_DTYPE_F32, &n, 1, x, msg, sizeof msg), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(ttl_writer_add_tensor(w, "bad\xff", TTL_DTYPE_F32, &n, 1, x, msg, sizeof msg),
              TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(ttl_writer_add_tensor(w, "t", ttl_dtype_t(99), &n, 1, x, msg, sizeof msg), TTL_STATUS_BAD_ARGUMENT);
    const int64_t neg = -1;
    EXPECT_EQ(ttl_writer_add_tensor(w, "t", TTL_DTYPE_F32, &neg, 1, x, msg, sizeof msg), TTL_STATUS_BAD_SIZE);
    EXPECT_EQ(ttl_writer_set_metadata(w, "ttl.format_version", "7", msg, sizeof msg), TTL_STATUS_BAD_ARGUMENT);
    // a layer whose core name is taken adds nothing at all
    const ttl_fc_desc_t d = fc_desc({2, 2}, {1, 1}, {1, 1, 1});
    EXPECT_EQ(ttl_writer_add_fc(w, "fc", &d, x, nullptr, msg, sizeof msg), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_NE(std::string(msg).find("'fc.tt_core.0'"), std::string::npos) << msg;
    ttl_fc_desc_t bad = d;
    bad.ranks[0] = 2;
    EXPECT_EQ(ttl_writer_add_fc(w, "other", &bad, x, nullptr, msg, sizeof msg), TTL_STATUS_BAD_RANKS);
    EXPECT_EQ(serialize(w), before);

    // the same layer name twice
    ASSERT_EQ(ttl_writer_add_fc(w, "ok", &d, x, nullptr, msg, sizeof msg), TTL_STATUS_SUCCESS);
    const Bytes with_layer = serialize(w);
    EXPECT_EQ(ttl_writer_add_fc(w, "ok", &d, x, nullptr, msg, sizeof msg), TTL_STATUS_BAD_ARGUMENT);
    EXPECT_EQ(serialize(w), with_layer);
    ttl_writer_destroy(w);
}

namespace {

ttl_writer_t *small_writer(int64_t floats) {
    ttl_writer_t *w = nullptr;
    EXPECT_EQ(ttl_writer_create(&w), TTL_STATUS_SUCCESS);
    const std::vector<float> v = random_vector(floats, 3);
    EXPECT_EQ(ttl_writer_add_tensor(w, "w", TTL_DTYPE_F32, &floats, 1, v.data(), nullptr, 0), TTL_STATUS_SUCCESS);
    return w;
}

} // namespace

TEST(Safetensors, WriteIntoMissingDirectoryLeavesNothing) {
    ttl_writer_t *w = small_writer(8);
    char msg[TTL_IO_MSG_LEN] = "";
    TempDir dir;
    const std::string path = dir.path + "/no/such/dir/out.safetensors";
    EXPECT_EQ(ttl_writer_save(w, path.c_str(), msg, sizeof msg), TTL_STATUS_IO_ERROR);
    EXPECT_NE(std::string(msg).find("out.safetensors"), std::string::npos) << msg;
    EXPECT_FALSE(exists(path));
    EXPECT_TRUE(dir.files().empty());
    ttl_writer_destroy(w);
}

TEST(Safetensors, FailedWriteLeavesExistingFileUntouched) {
    // RLIMIT_FSIZE makes write() fail past a size, whoever runs the test (a read-only directory would not stop
    // root); SIGXFSZ is ignored so that the failure comes back as EFBIG.
    TempDir dir;
    const std::string path = dir.path + "/model.safetensors";
    const Bytes old = {'o', 'l', 'd', ' ', 'f', 'i', 'l', 'e'};
    write_file(path, old);
    ttl_writer_t *w = small_writer(4096);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit saved;
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
    struct rlimit small = saved;
    small.rlim_cur = 1024;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    char msg[TTL_IO_MSG_LEN] = "";
    const ttl_status_t st = ttl_writer_save(w, path.c_str(), msg, sizeof msg);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, old_handler);
    EXPECT_EQ(st, TTL_STATUS_IO_ERROR);
    EXPECT_NE(std::string(msg).find("model.safetensors"), std::string::npos) << msg;
    EXPECT_EQ(read_file(path), old);
    EXPECT_EQ(dir.files(), std::vector<std::string>{"model.safetensors"}); // the temporary file is gone
    ttl_writer_destroy(w);
}

TEST(Safetensors, FailedRenameLeavesNoTemporary) {
    // the target is a non-empty directory: everything is written, then rename() fails
    TempDir dir;
    const std::string target = dir.path + "/model.safetensors";
    ASSERT_EQ(mkdir(target.c_str(), 0755), 0);
    const std::string inside = target + "/keep";
    write_file(inside, {'k'});
    ttl_writer_t *w = small_writer(16);
    char msg[TTL_IO_MSG_LEN] = "";
    EXPECT_EQ(ttl_writer_save(w, target.c_str(), msg, sizeof msg), TTL_STATUS_IO_ERROR);
    EXPECT_EQ(dir.files(), std::vector<std::string>{"model.safetensors"});
    EXPECT_EQ(read_file(inside), Bytes{'k'});
    unlink(inside.c_str());
    rmdir(target.c_str());
    ttl_writer_destroy(w);
}

TEST(Safetensors, SaveReplacesAnExistingFile) {
    TempDir dir;
    const std::string path = dir.path + "/model.safetensors";
    write_file(path, {'o', 'l', 'd'});
    ttl_writer_t *w = small_writer(5);
    char msg[TTL_IO_MSG_LEN] = "";
    ASSERT_EQ(ttl_writer_save(w, path.c_str(), msg, sizeof msg), TTL_STATUS_SUCCESS) << msg;
    EXPECT_EQ(read_file(path), serialize(w));
    ttl_writer_destroy(w);
}
