// The race check of the emulation tests: a kernel run (emulated, tests/common/cta_emulator.h) in ascending, then
// descending and shuffled thread order must give the same bits. The kernels use no atomics, so only a thread
// reading in one barrier interval what another writes in it (a missing __syncthreads) can change them.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/cta_emulator.h"

namespace ttl_test {

// run() returns the output of one emulated run; `what` names it in a failure.
template <class Run> void expect_same_bits_in_every_order(const Run &run, uint64_t seed, const std::string &what) {
    const std::vector<float> ascending = run();
    for (cta_emu::Order order : {cta_emu::Order::kDescending, cta_emu::Order::kShuffled}) {
        const cta_emu::ScopedOrder scoped(order, seed);
        const std::vector<float> y = run();
        ASSERT_EQ(y.size(), ascending.size()) << what;
        EXPECT_EQ(std::memcmp(y.data(), ascending.data(), y.size() * sizeof(float)), 0)
            << what << ": " << (order == cta_emu::Order::kDescending ? "descending" : "shuffled") << " order";
    }
}

} // namespace ttl_test
