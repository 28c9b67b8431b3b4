/*
 * Host timing for the CPU runner: a monotonic clock, medians, and an adaptive repeat loop (warm-up, then
 * repeats until a time budget is spent or a count is reached) so that slow rows do not dominate the suite.
 */
#ifndef TTL_BENCH_TIMER_H
#define TTL_BENCH_TIMER_H

/* Seconds on a monotonic clock. */
double bench_now(void);

/* Median of n values (sorts v in place); 0 when n is 0. */
double bench_median(double *v, int n);

/* How many times to run a timed call. */
typedef struct bench_repeat {
    int warmup;      /* untimed calls first */
    int min_repeats; /* at least this many timed calls */
    int max_repeats; /* at most this many */
    double budget_s; /* stop after min_repeats once this much time was spent timing */
} bench_repeat_t;

/* One call of the timed operation; `iter` lets it rotate among input buffers. Returns 0 on success. */
typedef int (*bench_call_fn)(void *ctx, int iter);

/* Runs fn as bench_repeat_t says and returns the median seconds per call in *median_s and the number of timed
 * calls in *repeats. Returns the first non-zero value fn returned, else 0. */
int bench_time_calls(double *median_s, int *repeats, bench_call_fn fn, void *ctx, const bench_repeat_t *rep);

#endif /* TTL_BENCH_TIMER_H */
