// GoogleTest checks shared by the CPU forward tests of both layer kinds: what every plan's info must say about
// the algorithm that was asked for, that a plan reproduces the reference, bit for bit on a second run, and a
// workspace of exactly the size a plan asks for, guarded on both sides.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "common/test_util.h"
#include "ttl/ttl.h"

namespace ttl_test {

// A concrete algorithm, the requested one (and order) when one was named, and a reason to show for it.
inline void expect_info_honours_request(const ttl_plan_info_t &info, const ttl_plan_opts_t &requested) {
    EXPECT_NE(info.algo, TTL_ALGO_AUTO);
    if (requested.algo != TTL_ALGO_AUTO) EXPECT_EQ(info.algo, requested.algo);
    if (requested.order != TTL_ORDER_AUTO) EXPECT_EQ(info.order, requested.order);
    ASSERT_NE(info.reason, nullptr);
    EXPECT_GT(std::strlen(info.reason), 0u);
}

// run(y) writes a forward result into y (sized like ref). It is run into two differently poisoned outputs: the
// first must match ref within tol, the second must equal the first bit for bit.
template <class Run>
void expect_matches_and_repeats(Run run, const std::vector<float> &ref, double tol, float poison) {
    std::vector<float> y(ref.size(), poison), again(ref.size(), -poison);
    ASSERT_EQ(run(y), TTL_STATUS_SUCCESS);
    EXPECT_LE(rel_err(y, ref), tol);
    ASSERT_EQ(run(again), TTL_STATUS_SUCCESS);
    EXPECT_EQ(std::memcmp(y.data(), again.data(), y.size() * sizeof(float)), 0) << "not repeatable";
}

// A workspace of exactly `bytes` for forward calls, at an offset that is not 64-byte aligned (no alignment may be
// assumed). Its contents start as all-ones bytes (NaN floats: scratch read before it is written shows up in the
// output), and guard bytes on both sides must survive every call. data() is nullptr when bytes is 0.
class GuardedWorkspace {
  public:
    explicit GuardedWorkspace(size_t bytes) : bytes_(bytes), buf_(kHead, kGuardByte) {
        buf_.insert(buf_.end(), bytes, kPoisonByte);
        buf_.insert(buf_.end(), kTail, kGuardByte);
    }
    void *data() { return bytes_ > 0 ? buf_.data() + kHead : nullptr; }
    size_t size() const { return bytes_; }
    bool guards_intact() const {
        for (size_t i = 0; i < kHead; ++i)
            if (buf_[i] != kGuardByte) return false;
        for (size_t i = kHead + bytes_; i < buf_.size(); ++i)
            if (buf_[i] != kGuardByte) return false;
        return true;
    }

  private:
    static constexpr size_t kHead = 4, kTail = 256;
    static constexpr unsigned char kGuardByte = 0xa5, kPoisonByte = 0xff;
    size_t bytes_;
    std::vector<unsigned char> buf_;
};

} // namespace ttl_test
