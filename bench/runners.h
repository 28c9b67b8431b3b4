/*
 * The options ttl-bench was started with, and the device runners main() dispatches to. Each runner times every
 * selected case x batch x algorithm and hands the rows to the report.
 */
#ifndef TTL_BENCH_RUNNERS_H
#define TTL_BENCH_RUNNERS_H

#include <stdint.h>

#include "report.h"

#define BENCH_MAX_PATTERNS 64

typedef struct bench_options {
    const char *suite_name;                   /* "quick" or "paper" */
    int suite_flag;                           /* BENCH_SUITE_* */
    const char *patterns[BENCH_MAX_PATTERNS]; /* --case names or prefixes */
    int num_patterns;
    int64_t batch;    /* --batch: overrides the suite's batches when > 0 */
    int max_repeats;  /* --repeats: cap on timed calls per row */
    double budget_s;  /* time budget per row after the minimum repeats */
    const char *algo; /* --algo: only the libttl rows of this name (the dense baseline always runs); NULL: all */
} bench_options_t;

/* CPU runner (OpenBLAS baselines). Returns the number of rows whose correctness check failed. */
int bench_cpu_run(const bench_options_t *opt, bench_report_t *report);
/* 1 when `name` is one of the CPU runner's libttl rows (--algo). */
int bench_cpu_algo_known(const char *name);

#ifdef TTL_WITH_CUDA
/* 1 when a CUDA device is usable. */
int bench_gpu_available(void);
/* GPU runner (cuBLAS / cuDNN baselines). Returns the number of rows whose correctness check failed. */
int bench_gpu_run(const bench_options_t *opt, bench_report_t *report);
/* 1 when `name` is one of the GPU runner's libttl rows (--algo). */
int bench_gpu_algo_known(const char *name);
#endif

#endif /* TTL_BENCH_RUNNERS_H */
