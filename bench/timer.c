/*
 * Monotonic clock, medians and the adaptive repeat loop of the CPU runner. Medians rather than means, since a
 * shared two-core machine has outliers that only go one way.
 */
#define _POSIX_C_SOURCE 200809L
#include "timer.h"

#include <stdlib.h>
#include <time.h>

#define BENCH_MAX_SAMPLES 1000

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
    if (n <= 0) return 0.0;
    qsort(v, (size_t)n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int bench_time_calls(double *median_s, int *repeats, bench_call_fn fn, void *ctx, const bench_repeat_t *rep) {
    static double samples[BENCH_MAX_SAMPLES];
    int iter = 0;
    for (int i = 0; i < rep->warmup; ++i) {
        const int rc = fn(ctx, iter++);
        if (rc) return rc;
    }
    const int max_repeats = rep->max_repeats < BENCH_MAX_SAMPLES ? rep->max_repeats : BENCH_MAX_SAMPLES;
    const double start = bench_now();
    int n = 0;
    while (n < max_repeats) {
        const double t0 = bench_now();
        const int rc = fn(ctx, iter++);
        const double t1 = bench_now();
        if (rc) return rc;
        samples[n++] = t1 - t0;
        if (n >= rep->min_repeats && t1 - start >= rep->budget_s) break;
    }
    *median_s = bench_median(samples, n);
    *repeats = n;
    return 0;
}
