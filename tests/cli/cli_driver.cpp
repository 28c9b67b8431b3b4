// End-to-end driver for the ttl tool: `cli_driver TTL_BINARY WORK_DIR SCENARIO`. It writes a dense model file
// through the library (a Linear weight and a Conv2d kernel built from random TT cores of known ranks plus
// relative noise 1e-4, their bias, a small F16 weight, an I64 counter, user metadata), runs `ttl` on it and
// checks exit codes, stdout/stderr, the JSON of `info`/`verify` and the output file. Exit status 0 = pass.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "ttl/ttl_io.h"

using namespace ttl_test;

namespace {

std::string g_ttl, g_dir;
int g_failures = 0;

#define CHECK(cond, what)                                                                                          \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            std::cerr << "FAILED: " << what << "  [" #cond "] at line " << __LINE__ << "\n";                       \
            ++g_failures;                                                                                          \
        }                                                                                                          \
    } while (0)

struct Run {
    int status;
    std::string out, err;
};

std::string slurp(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Runs `ttl ARGS` with stdout and stderr captured in files of the work directory.
Run ttl(const std::string &args) {
    const std::string out = g_dir + "/stdout.txt", err = g_dir + "/stderr.txt";
    const std::string cmd = "'" + g_ttl + "' " + args + " >'" + out + "' 2>'" + err + "'";
    const int raw = std::system(cmd.c_str());
    Run r{WIFEXITED(raw) ? WEXITSTATUS(raw) : 128, slurp(out), slurp(err)};
    std::cout << "$ ttl " << args << "  -> " << r.status << "\n" << r.out << r.err;
    return r;
}

int lines(const std::string &s) {
    int n = 0;
    for (char c : s) n += c == '\n';
    return n;
}

std::string path(const std::string &name) { return g_dir + "/" + name; }
bool exists(const std::string &p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0;
}

// ---- the dense model -------------------------------------------------------------------------------------------

const int kCores = 3; // the automatic rule for these shapes (the larger side's modes stay >= 4)
const double kNoise = 1e-4;

struct Model {
    ttl_fc_desc_t fc;     // modes and ranks the Linear weight was built with
    ttl_conv_desc_t conv; // ... and the Conv2d kernel
    std::vector<float> W, K, fc_bias;
    std::vector<uint16_t> head; // F16 bits
    int64_t steps = 12345;
};

std::vector<int64_t> modes(int64_t dim) {
    std::vector<int64_t> m(kCores);
    if (ttl_factorize(m.data(), dim, kCores) != TTL_STATUS_SUCCESS) std::abort();
    return m;
}

// dense + noise of relative size kNoise
std::vector<float> noisy(const std::vector<double> &dense, uint64_t seed) {
    double norm = 0;
    for (double v : dense) norm += v * v;
    norm = std::sqrt(norm / double(dense.size()));
    const std::vector<float> noise = random_vector(int64_t(dense.size()), seed);
    std::vector<float> out(dense.size());
    for (size_t i = 0; i < dense.size(); ++i) out[i] = float(dense[i] + kNoise * norm * noise[i]);
    return out;
}

Model make_model() {
    Model m;
    m.fc = fc_desc(modes(64), modes(128), {1, 3, 3, 1});
    m.conv = conv_desc(modes(32), modes(64), {2, 3, 3, 1}, 3, 3);
    const std::vector<float> fc_cores = random_vector(fc_param_count(m.fc), 1);
    const std::vector<float> conv_cores = random_vector(conv_param_count(m.conv), 2);
    m.W = noisy(oracle_fc_dense(m.fc, fc_cores.data()), 3);
    m.K = noisy(oracle_conv_dense(m.conv, conv_cores.data()), 4);
    m.fc_bias = random_vector(64, 5);
    for (int i = 0; i < 15; ++i) m.head.push_back(uint16_t(0x3c00 + 17 * i)); // F16 around 1.0
    return m;
}

void write_dense(const Model &m, const std::string &file) {
    ttl_writer_t *w;
    char msg[TTL_IO_MSG_LEN] = "";
    if (ttl_writer_create(&w) != TTL_STATUS_SUCCESS) std::abort();
    const int64_t fc_shape[2] = {64, 128}, conv_shape[4] = {32, 64, 3, 3}, bias_shape[1] = {64},
                  head_shape[2] = {5, 3};
    bool ok =
        ttl_writer_add_tensor(w, "fc.weight", TTL_DTYPE_F32, fc_shape, 2, m.W.data(), msg, sizeof msg) == 0 &&
        ttl_writer_add_tensor(w, "fc.bias", TTL_DTYPE_F32, bias_shape, 1, m.fc_bias.data(), msg, sizeof msg) == 0 &&
        ttl_writer_add_tensor(w, "conv.weight", TTL_DTYPE_F32, conv_shape, 4, m.K.data(), msg, sizeof msg) == 0 &&
        ttl_writer_add_tensor(w, "head.weight", TTL_DTYPE_F16, head_shape, 2, m.head.data(), msg, sizeof msg) ==
            0 &&
        ttl_writer_add_tensor(w, "bn.num_batches_tracked", TTL_DTYPE_I64, nullptr, 0, &m.steps, msg, sizeof msg) ==
            0 &&
        ttl_writer_set_metadata(w, "format", "pt", msg, sizeof msg) == 0 &&
        ttl_writer_save(w, file.c_str(), msg, sizeof msg) == 0;
    ttl_writer_destroy(w);
    if (!ok) {
        std::cerr << "cannot write the dense model: " << msg << "\n";
        std::exit(1);
    }
}

// ---- JSON helpers ----------------------------------------------------------------------------------------------

std::vector<int64_t> ints(const cJSON *o, const char *key) {
    std::vector<int64_t> v;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key), *x;
    cJSON_ArrayForEach(x, a) v.push_back(int64_t(x->valuedouble));
    return v;
}
double num(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}
std::string str(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : "";
}
const cJSON *by_name(const cJSON *array, const std::string &name) {
    const cJSON *x;
    cJSON_ArrayForEach(x, array) if (str(x, "name") == name) return x;
    return nullptr;
}

template <class T> std::vector<int64_t> vec(const T *p, int n) { return std::vector<int64_t>(p, p + n); }

// ---- scenarios -------------------------------------------------------------------------------------------------

void scenario_compress_info_verify() {
    const Model m = make_model();
    const std::string dense = path("dense.safetensors"), tt = path("tt.safetensors");
    write_dense(m, dense);
    const double eps = 0.01;

    Run r = ttl("compress '" + dense + "' '" + tt + "' --eps " + std::to_string(eps));
    CHECK(r.status == 0, "compress succeeds");
    CHECK(r.err.empty(), "compress prints nothing on stderr when it is not a terminal");
    CHECK(r.out.find("rel_err") != std::string::npos && r.out.find("multiply-adds") != std::string::npos,
          "compress reports errors and multiply-adds");

    r = ttl("info '" + tt + "' --json");
    CHECK(r.status == 0, "info succeeds");
    cJSON *info = cJSON_Parse(r.out.c_str());
    CHECK(cJSON_IsArray(info) && cJSON_GetArraySize(info) == 2, "info lists two layers");
    const cJSON *fc = by_name(info, "fc"), *conv = by_name(info, "conv");
    CHECK(fc && conv, "layers 'fc' and 'conv'");
    if (fc && conv) {
        CHECK(str(fc, "kind") == "fc" && str(conv, "kind") == "conv", "kinds");
        CHECK(ints(fc, "out_modes") == vec(m.fc.out_modes, kCores), "fc out modes");
        CHECK(ints(fc, "in_modes") == vec(m.fc.in_modes, kCores), "fc in modes");
        CHECK(ints(fc, "ranks") == vec(m.fc.ranks, kCores + 1), "fc ranks are the generating ranks");
        CHECK(ints(conv, "ranks") == vec(m.conv.ranks, kCores + 1), "conv ranks are the generating ranks");
        CHECK(ints(conv, "kernel") == (std::vector<int64_t>{3, 3}), "conv kernel");
        CHECK(num(fc, "params") == double(fc_param_count(m.fc)), "fc params");
        CHECK(num(conv, "params") == double(conv_param_count(m.conv)), "conv params");
        CHECK(std::fabs(num(fc, "compression") - 64.0 * 128 / double(fc_param_count(m.fc))) < 1e-9,
              "fc compression");
        CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(fc, "bias")), "fc took fc.bias");
        CHECK(num(fc, "macs") > 0 && num(fc, "macs") < num(fc, "dense_macs"), "fc multiply-adds");
    }
    cJSON_Delete(info);

    r = ttl("info '" + tt + "'");
    CHECK(r.status == 0 && r.out.find("ranks 1,3,3,1") != std::string::npos, "info text shows ranks");

    r = ttl("verify '" + dense + "' '" + tt + "' --json");
    CHECK(r.status == 0, "verify succeeds");
    cJSON *ver = cJSON_Parse(r.out.c_str());
    CHECK(cJSON_IsArray(ver) && cJSON_GetArraySize(ver) == 2, "verify lists two layers");
    for (const char *name : {"fc", "conv"}) {
        const cJSON *l = by_name(ver, name);
        CHECK(l != nullptr, "verify has " << name);
        if (!l) continue;
        const double err = num(l, "rel_err");
        CHECK(err <= eps, name << " rel_err " << err << " within eps " << eps);
        CHECK(err > 0.1 * kNoise && err < 3 * kNoise, name << " rel_err " << err << " is at the noise level");
        CHECK(str(l, "dense_tensor") == std::string(name) + ".weight", "dense tensor name");
        CHECK(num(l, "compression") > 1, "compression reported");
    }
    if (const cJSON *l = by_name(ver, "fc")) CHECK(num(l, "bias_rel_err") == 0, "fc bias copied exactly");
    cJSON_Delete(ver);

    r = ttl("verify '" + dense + "' '" + tt + "' --max-err 1e-9");
    CHECK(r.status == 1 && lines(r.err) == 1, "verify --max-err fails with one message");

    // the output file through the library: copies exact, layers readable
    ttl_file_t *f = nullptr;
    char msg[TTL_IO_MSG_LEN] = "";
    CHECK(ttl_file_open(&f, tt.c_str(), msg, sizeof msg) == TTL_STATUS_SUCCESS, "output loads: " << msg);
    if (!f) return;
    const void *raw;
    size_t bytes;
    ttl_tensor_info_t ti;
    CHECK(ttl_file_find_tensor(&ti, f, "head.weight", msg, sizeof msg) == 0 && ti.dtype == TTL_DTYPE_F16,
          "small F16 weight kept dense, as F16");
    CHECK(ttl_file_tensor_data(&raw, &bytes, f, "head.weight", msg, sizeof msg) == 0 && bytes == 30 &&
              memcmp(raw, m.head.data(), 30) == 0,
          "F16 bytes copied");
    CHECK(ttl_file_tensor_data(&raw, &bytes, f, "bn.num_batches_tracked", msg, sizeof msg) == 0 && bytes == 8 &&
              memcmp(raw, &m.steps, 8) == 0,
          "I64 scalar copied");
    CHECK(ttl_file_find_tensor(&ti, f, "fc.weight", msg, sizeof msg) == TTL_STATUS_NOT_FOUND, "dense weight gone");
    const char *value = nullptr;
    CHECK(ttl_file_metadata_get(&value, f, "format") == 0 && std::string(value) == "pt", "metadata kept");
    ttl_fc_desc_t d;
    float *cores = nullptr, *bias = nullptr;
    CHECK(ttl_file_read_fc(&d, &cores, &bias, f, "fc", msg, sizeof msg) == 0 && bias != nullptr &&
              memcmp(bias, m.fc_bias.data(), 64 * sizeof(float)) == 0,
          "fc bias bit for bit");
    ttl_free(cores);
    ttl_free(bias);
    ttl_file_close(f);

    // compressing the TT file again keeps its layers and compresses nothing new
    const std::string again = path("again.safetensors");
    r = ttl("compress '" + tt + "' '" + again + "'");
    CHECK(r.status == 0, "compressing a TT file succeeds");
    r = ttl("verify '" + dense + "' '" + again + "' --max-err " + std::to_string(eps));
    CHECK(r.status == 0, "its layers are kept");
}

void scenario_forced_modes() {
    const Model m = make_model();
    const std::string dense = path("dense.safetensors"), tt = path("tt.safetensors");
    write_dense(m, dense);
    Run r = ttl("compress '" + dense + "' '" + tt + "' --tensor fc.weight --modes 8,8:16,8 --max-rank 2 --eps 0");
    CHECK(r.status == 0, "compress with forced modes succeeds");
    r = ttl("info '" + tt + "' --json");
    cJSON *info = cJSON_Parse(r.out.c_str());
    CHECK(cJSON_IsArray(info) && cJSON_GetArraySize(info) == 1, "one layer");
    if (const cJSON *fc = by_name(info, "fc")) {
        CHECK(ints(fc, "out_modes") == (std::vector<int64_t>{8, 8}), "forced out modes");
        CHECK(ints(fc, "in_modes") == (std::vector<int64_t>{16, 8}), "forced in modes");
        CHECK(ints(fc, "ranks") == (std::vector<int64_t>{1, 2, 1}), "rank capped at 2");
    }
    cJSON_Delete(info);
    r = ttl("verify '" + dense + "' '" + tt + "' --json");
    cJSON *ver = cJSON_Parse(r.out.c_str());
    if (const cJSON *fc = by_name(ver, "fc")) CHECK(num(fc, "rel_err") > 0.05, "a rank-2 cap costs accuracy");
    cJSON_Delete(ver);
    ttl_file_t *f = nullptr;
    char msg[TTL_IO_MSG_LEN];
    CHECK(ttl_file_open(&f, tt.c_str(), msg, sizeof msg) == 0, "output loads");
    ttl_tensor_info_t ti;
    CHECK(f && ttl_file_find_tensor(&ti, f, "conv.weight", msg, sizeof msg) == 0 && ti.ndim == 4,
          "the conv kernel not named by --tensor is copied dense");
    ttl_file_close(f);

    r = ttl("compress '" + dense + "' '" + path("x.safetensors") + "' --modes 4,4:4,4");
    CHECK(r.status == 1 && lines(r.err) == 1 && r.err.find("--modes") != std::string::npos,
          "modes that do not fit a tensor are an error");
    CHECK(!exists(path("x.safetensors")), "and nothing is written");
}

void scenario_errors() {
    const Model m = make_model();
    const std::string dense = path("dense.safetensors");
    write_dense(m, dense);
    const std::string missing = path("missing.safetensors");
    struct Case {
        std::string args;
        int status;
        std::string needle;
    };
    std::ofstream(path("garbage.safetensors")) << "not a model";
    const std::vector<Case> cases = {
        {"info '" + missing + "'", 1, "missing.safetensors"},
        {"info '" + path("garbage.safetensors") + "'", 1, "garbage.safetensors"},
        {"verify '" + dense + "' '" + missing + "'", 1, "missing.safetensors"},
        {"verify '" + dense + "' '" + dense + "'", 1, "no TT layers"},
        {"compress '" + missing + "' '" + path("out.safetensors") + "'", 1, "missing.safetensors"},
        {"compress '" + dense + "' '" + path("out.safetensors") + "' --tensor nope", 1, "'nope'"},
        {"compress '" + dense + "' '" + path("out.safetensors") + "' --tensor fc.bias", 1, "'fc.bias'"},
        {"compress '" + dense + "' '" + path("out.safetensors") + "' --tensor bn.num_batches_tracked", 1, "F32"},
        {"compress '" + dense + "' '" + path("no/such/dir/out.safetensors") + "'", 1, "out.safetensors"},
        {"compress '" + dense + "' '" + path("out.safetensors") + "' --eps 2", 2, "--eps"},
        {"compress '" + dense + "' '" + path("out.safetensors") + "' --modes 4,4", 2, "--modes"},
        {"compress '" + dense + "' '" + path("out.safetensors") + "' --bogus", 2, "--bogus"},
        {"compress '" + dense + "'", 2, "OUT"},
        {"info", 2, "FILE"},
        {"frobnicate", 2, "frobnicate"},
        {"", 2, "usage"},
    };
    for (const Case &c : cases) {
        const Run r = ttl(c.args);
        CHECK(r.status == c.status, "'ttl " << c.args << "' exits " << c.status << ", got " << r.status);
        if (c.args.empty()) continue; // the bare command prints its usage
        CHECK(lines(r.err) == 1, "'ttl " << c.args << "' prints one line on stderr");
        CHECK(r.err.find(c.needle) != std::string::npos, "'ttl " << c.args << "' mentions " << c.needle);
        CHECK(r.out.empty() || c.args.rfind("compress", 0) == 0, "nothing on stdout");
    }
    CHECK(!exists(path("out.safetensors")), "failed runs write no output");
}

void scenario_help() {
    for (const char *cmd : {"", "compress ", "info ", "verify "}) {
        const Run r = ttl(std::string(cmd) + "--help");
        CHECK(r.status == 0, "'ttl " << cmd << "--help' exits 0");
        CHECK(r.out.find("usage: ttl " + std::string(cmd)) != std::string::npos, "usage text for " << cmd);
        CHECK(r.err.empty(), "help prints nothing on stderr");
    }
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 4) {
        std::cerr << "usage: cli_driver TTL_BINARY WORK_DIR SCENARIO\n";
        return 2;
    }
    g_ttl = argv[1];
    g_dir = argv[2];
    const std::string scenario = argv[3];
    std::system(("rm -rf '" + g_dir + "' && mkdir -p '" + g_dir + "'").c_str());
    if (scenario == "compress_info_verify")
        scenario_compress_info_verify();
    else if (scenario == "forced_modes")
        scenario_forced_modes();
    else if (scenario == "errors")
        scenario_errors();
    else if (scenario == "help")
        scenario_help();
    else {
        std::cerr << "unknown scenario " << scenario << "\n";
        return 2;
    }
    std::cout << (g_failures ? "FAILED" : "PASSED") << " (" << g_failures << " failures)\n";
    return g_failures ? 1 : 0;
}
