// ttl_factorize: the documented examples, and for every small (dim, count) a comparison with a brute-force
// enumeration of all factorisations (the answer is the lexicographically smallest non-increasing sequence:
// smallest largest mode, then smallest second largest, ...). Also large dims (speed) and invalid inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "common/test_util.h"

namespace {

std::vector<int64_t> factorize(int64_t dim, int32_t count) {
    std::vector<int64_t> modes(size_t(count), -7);
    EXPECT_EQ(ttl_factorize(modes.data(), dim, count), TTL_STATUS_SUCCESS) << dim << " into " << count;
    return modes;
}

// Every non-increasing sequence of `count` factors with product dim; returns the lexicographic minimum.
std::vector<int64_t> brute_force(int64_t dim, int32_t count) {
    std::vector<int64_t> best, cur;
    std::function<void(int64_t, int32_t, int64_t)> rec = [&](int64_t rest, int32_t c, int64_t cap) {
        if (c == 0) {
            if (rest == 1 && (best.empty() || cur < best)) best = cur;
            return;
        }
        for (int64_t d = 1; d <= std::min(rest, cap); ++d) {
            if (rest % d) continue;
            cur.push_back(d);
            rec(rest / d, c - 1, d);
            cur.pop_back();
        }
    };
    rec(dim, count, dim);
    std::reverse(best.begin(), best.end()); // ascending
    return best;
}

struct Example {
    int64_t dim;
    int32_t count;
    std::vector<int64_t> modes;
};

const std::vector<Example> kExamples = {
    {25088, 6, {4, 4, 4, 7, 7, 8}},
    {4096, 6, {4, 4, 4, 4, 4, 4}},
    {1536, 4, {4, 6, 8, 8}},
    {7, 3, {1, 1, 7}},
    {1, 4, {1, 1, 1, 1}},
    {8192, 4, {8, 8, 8, 16}},
    {512, 4, {4, 4, 4, 8}},
    {128, 3, {4, 4, 8}},
    {64, 3, {4, 4, 4}},
    {12, 1, {12}},
    {30, 5, {1, 1, 2, 3, 5}},
    {49, 2, {7, 7}},
};

} // namespace

TEST(Factorize, DocumentedExamples) {
    for (const auto &e : kExamples) EXPECT_EQ(factorize(e.dim, e.count), e.modes) << e.dim << " into " << e.count;
}

TEST(Factorize, MatchesBruteForce) {
    for (int64_t dim = 1; dim <= 720; ++dim)
        for (int32_t count = 1; count <= 5; ++count) {
            const auto got = factorize(dim, count);
            ASSERT_EQ(got, brute_force(dim, count)) << dim << " into " << count;
        }
    for (int64_t dim : {1024, 1536, 2048, 2310, 3000, 3072, 4096, 4608, 5040})
        for (int32_t count = 2; count <= 6; ++count)
            ASSERT_EQ(factorize(dim, count), brute_force(dim, count)) << dim << " into " << count;
}

TEST(Factorize, LargeDimsAreFastAndValid) {
    const auto start = std::chrono::steady_clock::now();
    for (int64_t dim : {int64_t(963761198400), int64_t(1) << 39, int64_t(999999999989), int64_t(1000000000000),
                        int64_t(7420738134810), int64_t(2) * 999999999989, int64_t(25088) * 4096})
        for (int32_t count : {1, 2, 3, 5, 7, 11, 16}) {
            const auto m = factorize(dim, count);
            int64_t prod = 1;
            for (auto v : m) prod *= v;
            EXPECT_EQ(prod, dim);
            EXPECT_TRUE(std::is_sorted(m.begin(), m.end()));
            EXPECT_GE(m.front(), 1);
        }
    EXPECT_EQ(factorize(int64_t(1) << 39, 13).back(), 8);
    EXPECT_EQ(factorize(999999999989, 4), (std::vector<int64_t>{1, 1, 1, 999999999989}));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(seconds, 2.0);
}

TEST(Factorize, InvalidInputsLeaveModesUntouched) {
    std::vector<int64_t> modes(TTL_MAX_CORES + 1, -7);
    const auto poison = modes;
    EXPECT_EQ(ttl_factorize(nullptr, 16, 2), TTL_STATUS_NULL_POINTER);
    EXPECT_EQ(ttl_factorize(modes.data(), 0, 2), TTL_STATUS_BAD_SIZE);
    EXPECT_EQ(ttl_factorize(modes.data(), -4, 2), TTL_STATUS_BAD_SIZE);
    EXPECT_EQ(ttl_factorize(modes.data(), 16, 0), TTL_STATUS_BAD_SIZE);
    EXPECT_EQ(ttl_factorize(modes.data(), 16, -1), TTL_STATUS_BAD_SIZE);
    EXPECT_EQ(ttl_factorize(modes.data(), 16, TTL_MAX_CORES + 1), TTL_STATUS_BAD_SIZE);
    EXPECT_EQ(modes, poison);
    EXPECT_EQ(ttl_factorize(modes.data(), 16, TTL_MAX_CORES), TTL_STATUS_SUCCESS);
    EXPECT_EQ(modes[TTL_MAX_CORES], -7); // writes exactly `count` entries
}
