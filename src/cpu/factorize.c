/*
 * ttl_factorize: split a layer dimension into `count` TT modes.
 *
 * The answer is the lexicographically smallest non-increasing sequence of `count` factors of dim: it makes the
 * largest mode as small as possible, then the second largest, and so on, which favours balanced modes (1536
 * into 4 gives (8, 8, 6, 4), not (8, 8, 8, 3)). It is returned in ascending order.
 *
 * Exact depth-first search in that lexicographic order: position by position (largest first) try the divisors
 * of what is left in ascending order, so the first complete sequence found is the answer. A candidate d for the
 * largest of c remaining modes must satisfy d^c >= rest, and the rest/d left over must have no prime factor
 * above d and satisfy d^(c-1) >= rest/d; these prune nearly every dead end. Factorisation is by trial
 * division, fast for dims up to ~1e12.
 */
#include <stdlib.h>
#include <string.h>

#include "common/check.h"

/* An int64 has at most 15 distinct prime factors (2*3*5*...*47 > 2^63 takes 16). */
#define MAX_PRIMES 16

typedef struct factor_search {
    int64_t primes[MAX_PRIMES]; /* distinct prime factors of dim, ascending */
    int32_t num_primes;
    int64_t *divisors; /* every divisor of dim, ascending */
    int64_t num_divisors;
    int64_t modes[TTL_MAX_CORES]; /* the sequence being built, largest first */
} factor_search_t;

// ---------------------------------------------------------------------------------------------------------------
// Number theory helpers
// ---------------------------------------------------------------------------------------------------------------

/* d^c >= n, without overflow. */
static int power_at_least(int64_t d, int32_t c, int64_t n) {
    int64_t p = 1;
    for (int32_t i = 0; i < c; ++i) {
        if (p >= n / d + (n % d != 0)) return 1; /* p * d >= n, i.e. p >= ceil(n / d) */
        p *= d;
    }
    return p >= n;
}

static int64_t largest_prime_factor(const factor_search_t *fs, int64_t n) {
    for (int32_t i = fs->num_primes - 1; i >= 0; --i)
        if (n % fs->primes[i] == 0) return fs->primes[i];
    return 1;
}

static int compare_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Primes and all divisors of dim (sorted). */
static ttl_status_t factor(factor_search_t *fs, int64_t dim) {
    int32_t exps[MAX_PRIMES];
    int64_t rest = dim, num_divisors = 1;
    fs->num_primes = 0;
    for (int64_t p = 2; p <= rest / p; p += (p == 2) ? 1 : 2) {
        if (rest % p) continue;
        int32_t e = 0;
        while (rest % p == 0) rest /= p, ++e;
        fs->primes[fs->num_primes] = p;
        exps[fs->num_primes++] = e;
        num_divisors *= e + 1;
    }
    if (rest > 1) {
        fs->primes[fs->num_primes] = rest;
        exps[fs->num_primes++] = 1;
        num_divisors *= 2;
    }
    fs->divisors = malloc((size_t)num_divisors * sizeof(int64_t));
    if (fs->divisors == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    int64_t n = 1;
    fs->divisors[0] = 1;
    for (int32_t i = 0; i < fs->num_primes; ++i) {
        const int64_t base = n;
        int64_t pk = 1;
        for (int32_t e = 1; e <= exps[i]; ++e) {
            pk *= fs->primes[i];
            for (int64_t j = 0; j < base; ++j) fs->divisors[n++] = fs->divisors[j] * pk;
        }
    }
    qsort(fs->divisors, (size_t)n, sizeof(int64_t), compare_i64);
    fs->num_divisors = n;
    return TTL_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------------------------------

/* Fills modes[pos..pos+c-1] (non-increasing, each <= cap) with product rest; 0 when impossible. */
static int search(factor_search_t *fs, int32_t pos, int32_t c, int64_t rest, int64_t cap) {
    if (rest == 1) {
        for (int32_t i = 0; i < c; ++i) fs->modes[pos + i] = 1;
        return 1;
    }
    if (c == 0) return 0;
    /* First divisor d with d^c >= rest (the predicate grows with d). */
    int64_t lo = 0, hi = fs->num_divisors;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (power_at_least(fs->divisors[mid], c, rest))
            hi = mid;
        else
            lo = mid + 1;
    }
    for (int64_t i = lo; i < fs->num_divisors; ++i) {
        const int64_t d = fs->divisors[i];
        if (d > cap || d > rest) break;
        if (rest % d) continue;
        const int64_t q = rest / d;
        if (largest_prime_factor(fs, q) > d || !power_at_least(d, c - 1, q)) continue;
        fs->modes[pos] = d;
        if (search(fs, pos + 1, c - 1, q, d)) return 1;
    }
    return 0;
}

ttl_status_t ttl_factorize(int64_t *modes, int64_t dim, int32_t count) {
    if (modes == NULL) return TTL_STATUS_NULL_POINTER;
    if (dim < 1 || count < 1 || count > TTL_MAX_CORES) return TTL_STATUS_BAD_SIZE;
    factor_search_t fs;
    memset(&fs, 0, sizeof(fs));
    TTL_TRY(factor(&fs, dim));
    /* Always succeeds: (dim, 1, ..., 1) is a candidate. */
    const int found = search(&fs, 0, count, dim, dim);
    free(fs.divisors);
    if (!found) return TTL_STATUS_BAD_SIZE;
    for (int32_t i = 0; i < count; ++i) modes[i] = fs.modes[count - 1 - i];
    return TTL_STATUS_SUCCESS;
}
