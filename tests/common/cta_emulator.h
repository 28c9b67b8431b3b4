// Runs a CUDA kernel's CTA body on the CPU: one fiber (ucontext) per CUDA thread on the calling thread, switched
// at every __syncthreads and warp-wide tensor-core product (mma.sync), and a host buffer for shared memory
// (poisoned with NaN, with a guard zone after it). The kernel code is included with CTA_HOST_EMULATION defined
// (src/cuda/cta.cuh) and reaches the thread index, the barrier and the alignment check of its vector accesses
// through the hooks this header defines. Include it before the kernel headers. Asynchronous copies into shared
// memory (cp.async) land only when their thread waits for them: a read before the wait sees the poison. Fibers
// rather than threads: a barrier of 256 fibers costs 256 context switches in one process, not 256 kernel wake-ups.
//
// A fiber runs from one barrier to the next without interruption, in the order the scheduler resumes them
// (ScopedOrder): a kernel that reads in one barrier interval what another thread writes in the same interval (a
// missing __syncthreads) sees the write or not depending on that order. The kernels use no atomics, so a kernel
// free of such races gives bit-identical results in every order; a test runs it in several and compares.
#pragma once

#define CTA_HOST_EMULATION 1

#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include <vector_types.h>

namespace cta_emu {

// The order in which the fibers (or the threads of a grid-stride loop, grid_thread) run between two barriers.
// Shuffled draws a new permutation for every barrier interval.
enum class Order { kAscending, kDescending, kShuffled };

class ThreadOrder {
  public:
    void set(Order order, uint64_t seed) {
        order_ = order;
        state_ = seed * 0x9E3779B97F4A7C15ull + 1;
    }
    Order order() const { return order_; }
    // The n thread indices of the next interval, in this order.
    const std::vector<int> &next(int n) {
        perm_.resize(size_t(n));
        for (int i = 0; i < n; ++i) perm_[size_t(i)] = order_ == Order::kDescending ? n - 1 - i : i;
        if (order_ == Order::kShuffled)
            for (int i = n - 1; i > 0; --i) std::swap(perm_[size_t(i)], perm_[size_t(draw() % uint64_t(i + 1))]);
        return perm_;
    }

  private:
    uint64_t draw() { /* xorshift64* */
        state_ ^= state_ >> 12;
        state_ ^= state_ << 25;
        state_ ^= state_ >> 27;
        return state_ * 0x2545F4914F6CDD1Dull;
    }
    Order order_ = Order::kAscending;
    uint64_t state_ = 1;
    std::vector<int> perm_;
};

inline ThreadOrder &thread_order() {
    static ThreadOrder instance;
    return instance;
}

// Runs the emulator in `order` for the lifetime of the object (seed: the shuffled permutations').
class ScopedOrder {
  public:
    explicit ScopedOrder(Order order, uint64_t seed = 1) : saved_(thread_order().order()) {
        thread_order().set(order, seed);
    }
    ~ScopedOrder() { thread_order().set(saved_, 1); }
    ScopedOrder(const ScopedOrder &) = delete;
    ScopedOrder &operator=(const ScopedOrder &) = delete;

  private:
    Order saved_;
};

// Index of the i-th of n threads of a grid-stride loop run one thread after another (a kernel without barriers),
// in the current order: for (i = 0; i < n; ++i) kernel(grid_thread(i, n), n). Shuffled draws one permutation per
// loop (at i = 0).
inline int64_t grid_thread(int64_t i, int64_t n) {
    static std::vector<int> perm;
    if (i == 0) perm = thread_order().next(int(n));
    return perm[size_t(i)];
}

// Address ranges of the buffers that stand in for shared memory (GuardedBuffer of kind kShared, while alive): an
// asynchronous copy must go from outside them into them.
inline std::vector<std::pair<const unsigned char *, const unsigned char *>> &shared_ranges() {
    static std::vector<std::pair<const unsigned char *, const unsigned char *>> ranges;
    return ranges;
}
inline bool is_shared(const void *p) {
    const unsigned char *c = static_cast<const unsigned char *>(p);
    for (const auto &r : shared_ranges())
        if (c >= r.first && c < r.second) return true;
    return false;
}

// Whether the emulated device has asynchronous copies (cp.async, sm_80 and later; CTA_HAS_COPY_ASYNC): a test
// clears it to run the stage loops of older devices.
inline bool &copy_async_available() {
    static bool available = true;
    return available;
}

// Emulates a device with or without asynchronous copies for the lifetime of the object.
class ScopedAsyncCopies {
  public:
    explicit ScopedAsyncCopies(bool available) { copy_async_available() = available; }
    ~ScopedAsyncCopies() { copy_async_available() = true; }
    ScopedAsyncCopies(const ScopedAsyncCopies &) = delete;
    ScopedAsyncCopies &operator=(const ScopedAsyncCopies &) = delete;
};

// Asynchronous copies that broke a rule since the last reset: a destination outside shared memory, a source in
// it, or a copy its thread never waited for.
inline long &async_copy_errors() {
    static long count = 0;
    return count;
}

class FiberCta {
  public:
    static constexpr size_t kStackBytes = 256 * 1024;

    // Runs fn as one CTA of `threads` threads; false when the threads did not all pass the same barriers
    // (a divergent __syncthreads, or a warp whose lanes did not all reach the same warp-wide operation: undefined
    // on the device). A round resumes, in the current order, every fiber whose barrier has been reached by all it
    // waits for: the whole CTA for __syncthreads, its 32 lanes for a warp-wide operation (warp_barrier).
    bool run(int threads, const std::function<void()> &fn) {
        if (int(stacks_.size()) < threads) stacks_.resize(size_t(threads));
        fibers_.assign(size_t(threads), ucontext_t{});
        state_.assign(size_t(threads), kReady);
        mma_calls_.assign(size_t(threads), 0);
        mma_.assign(size_t((threads + 31) / 32), WarpMma{});
        pending_.assign(size_t(threads), {});
        job_ = &fn;
        bool consistent = true;
        std::vector<char> runnable(static_cast<size_t>(threads));
        for (;;) {
            int live = 0, at_cta = 0;
            for (int t = 0; t < threads; ++t) {
                live += state_[t] != kDone;
                at_cta += state_[t] == kWaiting;
            }
            if (live == 0) break;
            if (at_cta == live && live < threads) consistent = false; // some returned, others wait at a barrier
            bool any = false;
            for (int t = 0; t < threads; ++t) {
                bool r = state_[t] == kReady || (state_[t] == kWaiting && at_cta == live);
                if (state_[t] == kWarpWaiting) {
                    r = true;
                    for (int u = t / 32 * 32; u < std::min(threads, t / 32 * 32 + 32); ++u)
                        r &= state_[u] == kWarpWaiting;
                }
                runnable[size_t(t)] = r;
                any |= r;
            }
            if (!any) { // a barrier no one else will reach: the fibers are abandoned mid-kernel
                consistent = false;
                break;
            }
            order_ = thread_order().next(threads);
            for (int t : order_) {
                if (!runnable[size_t(t)]) continue;
                if (state_[t] == kReady) start(t);
                current_ = t;
                state_[t] = kRunning;
                swapcontext(&scheduler_, &fibers_[t]);
            }
        }
        job_ = nullptr;
        return consistent;
    }
    int thread_index() const { return current_; }
    // cp.async of one float: the source is read now, the destination written at the thread's wait.
    void copy_async(float *dst, const float *src) {
        if (!is_shared(dst) || is_shared(src)) ++async_copy_errors();
        if (size_t(current_) >= pending_.size()) pending_.resize(size_t(current_) + 1);
        pending_[size_t(current_)].push_back({dst, *src});
    }
    void copy_wait() {
        if (size_t(current_) >= pending_.size()) return;
        for (const auto &c : pending_[size_t(current_)]) *c.first = c.second;
        pending_[size_t(current_)].clear();
    }
    // The running fiber stops at the barrier; the scheduler resumes it once every fiber has reached it.
    void barrier() {
        state_[current_] = kWaiting;
        swapcontext(&fibers_[current_], &scheduler_);
    }
    // The same for the 32 lanes of the running fiber's warp (the rendezvous of a warp-wide instruction).
    void warp_barrier() {
        state_[current_] = kWarpWaiting;
        swapcontext(&fibers_[current_], &scheduler_);
    }

    // mma.sync.m16n8k8 (tf32 in, f32 accumulate) over the running fiber's warp: each lane posts its fragments, the
    // lanes meet, and each computes its four elements of D from everyone's posts. Posts alternate between two
    // slots, so a lane that runs ahead to its next product cannot overwrite what a slower one still reads.
    // Operands are truncated to TF32 (the hardware ignores the 13 low bits); their products are exact in fp32
    // and summed in fp32 over k in order (the hardware's summation order and rounding may differ in the last bit).
    void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
        mma_tiles(1, 1, false, d, a, nullptr, b, nullptr);
    }
    // mt x nt tiles of mma_tiles_3xtf32 (src/cuda/mma_tf32.cuh) in one rendezvous: acc [mt][nt][4], a_hi and
    // a_lo [mt][4], b_hi and b_lo [nt][2]; per tile lo hi, hi lo, then hi hi: each tile's order of sums on
    // the device (which runs each pass over all tiles before the next).
    void mma_tiles_3xtf32(int mt, int nt, float *acc, const uint32_t *a_hi, const uint32_t *a_lo,
                          const uint32_t *b_hi, const uint32_t *b_lo) {
        mma_tiles(mt, nt, true, acc, a_hi, a_lo, b_hi, b_lo);
    }

  private:
    static constexpr int kMaxMt = 2, kMaxNt = 4;
    struct Post {
        uint32_t a[2][kMaxMt][4], b[2][kMaxNt][2]; // [hi, lo][tile][register]
    };
    struct WarpMma {
        Post slot[2][32];
    };
    void mma_tiles(int mt, int nt, bool split, float *acc, const uint32_t *a_hi, const uint32_t *a_lo,
                   const uint32_t *b_hi, const uint32_t *b_lo) {
        if (mt > kMaxMt || nt > kMaxNt) std::abort(); // a tile set wider than a post holds: raise the bounds
        const int t = current_, lane = t % 32;
        Post &post = mma_[size_t(t / 32)].slot[mma_calls_[size_t(t)]++ % 2][lane];
        std::memcpy(post.a[0], a_hi, sizeof(uint32_t) * 4 * size_t(mt));
        std::memcpy(post.b[0], b_hi, sizeof(uint32_t) * 2 * size_t(nt));
        if (split) {
            std::memcpy(post.a[1], a_lo, sizeof(uint32_t) * 4 * size_t(mt));
            std::memcpy(post.b[1], b_lo, sizeof(uint32_t) * 2 * size_t(nt));
        }
        warp_barrier();
        const Post *posts = mma_[size_t(t / 32)].slot[(mma_calls_[size_t(t)] - 1) % 2];
        for (int i = 0; i < mt; ++i)
            for (int j = 0; j < nt; ++j) {
                float *d = acc + (i * nt + j) * 4;
                if (split) {
                    product(posts, lane, 1, i, 0, j, d);
                    product(posts, lane, 0, i, 1, j, d);
                }
                product(posts, lane, 0, i, 0, j, d);
            }
    }
    // d += A B for lane's four elements, A from the posts' a[ha][i], B from b[hb][j] (layout: mma_tf32.cuh).
    static void product(const Post *posts, int lane, int ha, int i, int hb, int j, float *d) {
        const int g = lane / 4, q = lane % 4;
        for (int r = 0; r < 4; ++r) {
            const int m = g + 8 * (r / 2), n = 2 * q + r % 2;
            float acc = d[r];
            for (int k = 0; k < 8; ++k) {
                const float av = tf32_value(posts[4 * (m % 8) + k % 4].a[ha][i][m / 8 + 2 * (k / 4)]);
                const float bv = tf32_value(posts[4 * n + k % 4].b[hb][j][k / 4]);
                acc += av * bv;
            }
            d[r] = acc;
        }
    }
    enum State { kReady, kRunning, kWaiting, kWarpWaiting, kDone };
    static float tf32_value(uint32_t bits) {
        bits &= 0xffffe000u;
        float v;
        std::memcpy(&v, &bits, sizeof(v));
        return v;
    }
    void start(int t) {
        if (!stacks_[t]) stacks_[t].reset(new char[kStackBytes]);
        getcontext(&fibers_[t]);
        fibers_[t].uc_stack.ss_sp = stacks_[t].get();
        fibers_[t].uc_stack.ss_size = kStackBytes;
        fibers_[t].uc_link = &scheduler_;
        makecontext(&fibers_[t], &FiberCta::entry, 0);
    }
    static void entry();
    std::vector<std::unique_ptr<char[]>> stacks_;
    std::vector<ucontext_t> fibers_;
    std::vector<State> state_;
    std::vector<int> order_;          // of this barrier interval
    std::vector<uint32_t> mma_calls_; // per fiber: products it has started, whose parity picks its post slot
    std::vector<WarpMma> mma_;        // per warp
    std::vector<std::vector<std::pair<float *, float>>> pending_; // per fiber: copies not yet waited for
    ucontext_t scheduler_{};
    const std::function<void()> *job_ = nullptr;
    int current_ = 0;
};

inline FiberCta &cta() {
    static FiberCta instance;
    return instance;
}

inline void FiberCta::entry() {
    FiberCta &c = cta();
    (*c.job_)();
    if (!c.pending_[size_t(c.current_)].empty()) ++async_copy_errors(); // never waited for: never landed
    c.state_[c.current_] = kDone;                                       // uc_link returns to the scheduler
}

// Vector accesses of emulated kernel code at an address not aligned to their width, since the last reset.
inline long &misaligned_accesses() {
    static long count = 0;
    return count;
}

// Table lookups of emulated kernel code outside their table (CTA_ASSERT_INDEX), since the last reset.
inline long &bad_indices() {
    static long count = 0;
    return count;
}

// Pointers emulated kernel code assumed to be in shared memory (CTA_ASSUME_SHARED) that were not, since the last
// reset.
inline long &not_shared() {
    static long count = 0;
    return count;
}

// Runs fn as one CTA of `threads` threads; false on a divergent barrier.
inline bool run_cta(int threads, const std::function<void()> &fn) { return cta().run(threads, fn); }

// Device memory stand-in (shared memory of one CTA, kShared, or a workspace): NaN-poisoned, 16-byte aligned,
// followed by a guard zone that must stay untouched.
class GuardedBuffer {
  public:
    static constexpr size_t kGuard = 256;
    enum Kind { kDevice, kShared };
    explicit GuardedBuffer(size_t bytes, Kind kind = kDevice)
        : storage_((bytes + kGuard) / sizeof(float4) + 1), bytes_(bytes), kind_(kind) {
        poison();
        if (kind_ == kShared) shared_ranges().push_back(range());
    }
    ~GuardedBuffer() {
        if (kind_ != kShared) return;
        auto &r = shared_ranges();
        r.erase(std::find(r.begin(), r.end(), range()));
    }
    GuardedBuffer(const GuardedBuffer &) = delete;
    GuardedBuffer &operator=(const GuardedBuffer &) = delete;
    unsigned char *data() { return reinterpret_cast<unsigned char *>(storage_.data()); }
    size_t bytes() const { return bytes_; }
    void poison() {
        float *f = reinterpret_cast<float *>(storage_.data());
        for (size_t i = 0; i < storage_.size() * 4; ++i) f[i] = std::numeric_limits<float>::quiet_NaN();
    }
    bool guard_intact() {
        const unsigned char *p = data();
        for (size_t i = (bytes_ + 3) / 4 * 4; i < storage_.size() * sizeof(float4); i += 4) {
            float v;
            std::memcpy(&v, p + i, 4);
            if (!std::isnan(v)) return false;
        }
        return true;
    }

  private:
    std::pair<const unsigned char *, const unsigned char *> range() {
        return {data(), data() + storage_.size() * sizeof(float4)};
    }
    std::vector<float4> storage_;
    size_t bytes_;
    Kind kind_;
};

} // namespace cta_emu

static inline int cta_emu_thread_index() { return cta_emu::cta().thread_index(); }
static inline void cta_emu_barrier() { cta_emu::cta().barrier(); }
static inline void cta_emu_mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    cta_emu::cta().mma_m16n8k8_tf32(d, a, b);
}
static inline void cta_emu_mma_tiles_3xtf32(int mt, int nt, float *acc, const uint32_t *a_hi, const uint32_t *a_lo,
                                            const uint32_t *b_hi, const uint32_t *b_lo) {
    cta_emu::cta().mma_tiles_3xtf32(mt, nt, acc, a_hi, a_lo, b_hi, b_lo);
}
static inline void cta_emu_check_aligned(const void *p, uintptr_t bytes) {
    if (reinterpret_cast<uintptr_t>(p) % bytes != 0) ++cta_emu::misaligned_accesses();
}
static inline void cta_emu_check_index(int64_t i, int64_t n) {
    if (i < 0 || i >= n) ++cta_emu::bad_indices();
}
static inline void cta_emu_check_shared(const void *p) {
    if (!cta_emu::is_shared(p)) ++cta_emu::not_shared();
}
static inline bool cta_emu_has_copy_async() { return cta_emu::copy_async_available(); }
static inline bool cta_emu_is_device_memory(const void *p) { return !cta_emu::is_shared(p); }
static inline void cta_emu_copy_async_f32(float *dst, const float *src) { cta_emu::cta().copy_async(dst, src); }
static inline void cta_emu_copy_async_f4(float4 *dst, const float4 *src) {
    cta_emu_check_aligned(dst, 16);
    cta_emu_check_aligned(src, 16);
    for (int e = 0; e < 4; ++e)
        cta_emu::cta().copy_async(reinterpret_cast<float *>(dst) + e, reinterpret_cast<const float *>(src) + e);
}
static inline void cta_emu_copy_wait() { cta_emu::cta().copy_wait(); }
