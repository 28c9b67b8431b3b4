/*
 * Output of ttl-bench: a run header (date, machine, commit, library version), one row per case x batch x
 * algorithm printed as a table on stdout, and optionally the same rows as JSON (cJSON) and as a Markdown table.
 * The CPU and GPU runners fill the same row record; fields a device does not measure stay NAN / 0 and are
 * printed as "-" and left out of the JSON.
 */
#ifndef TTL_BENCH_REPORT_H
#define TTL_BENCH_REPORT_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_TARGETS 6

/* One speed or size target of the issues, judged on this row. */
typedef struct bench_target {
    char name[48];   /* e.g. "speedup_vs_dense>=15" */
    double required; /* the bound */
    double measured; /* the value found */
    int higher_is_better;
    int met;
} bench_target_t;

typedef struct bench_row {
    const char *case_name;
    const char *op; /* "fc" or "conv" */
    char shape[96]; /* modes and ranks */
    int64_t batch;
    char algo[40];      /* "auto", "sequential_f2l", "dense", "openblas", "cublas", "cudnn", ... */
    char chosen[48];    /* what AUTO (or the plan) ran, e.g. "sequential/last_to_first" */
    const char *reason; /* GPU plans: why (ttl_plan_info_t.reason, static text); NULL otherwise */
    int supported;      /* 0: the plan refused (UNSUPPORTED): printed as n/a */
    double ms;          /* median milliseconds */
    double dense_ms;    /* the dense fp32 baseline of the same row (OpenBLAS / cuBLAS / cuDNN) */
    double tf32_ms;     /* GPU: the dense baseline with TF32 tensor cores; NAN on CPU */
    double speedup;     /* dense_ms / ms */
    double gflops;      /* 2 macs / time */
    double gbs;         /* bytes / time (GPU) */
    double roofline_ms; /* GPU: max(flops / sgemm peak, bytes / copy bandwidth) */
    double model_ms;    /* GPU: the plan's cost-model estimate (ttl_plan_info_t.estimated_us); NAN on CPU */
    int64_t macs;
    int64_t params;
    double compression;
    double rel_err;       /* vs the CPU reference on the checked samples */
    double rel_err_dense; /* GPU: vs the dense output on the whole batch; NAN on CPU */
    char check[48];       /* which samples were checked, e.g. "ref 2/100" */
    int repeats;
    size_t weight_bytes, workspace_bytes, persistent_bytes;
    int num_targets;
    bench_target_t targets[BENCH_MAX_TARGETS];
} bench_row_t;

/* A row with every measured field NAN and every count 0. */
void bench_row_init(bench_row_t *row);

/* Adds a target to a row: met when measured >= required (higher_is_better) or <= required. */
void bench_row_target(bench_row_t *row, const char *name, double required, double measured, int higher_is_better);

typedef struct bench_report bench_report_t;

/* Starts a report for `device` ("cpu" or "cuda"); json_path / md_path may be NULL. Prints the header. */
bench_report_t *bench_report_open(const char *device, const char *suite, const char *commit, const char *json_path,
                                  const char *md_path);

/* Header facts a runner adds (GPU name, measured ceilings, thread count): a string or a number. */
void bench_report_set_string(bench_report_t *r, const char *key, const char *value);
void bench_report_set_number(bench_report_t *r, const char *key, double value);

/* Prints the column titles (after the runner set its header facts). */
void bench_report_begin_table(bench_report_t *r);

/* Prints one row and records it. */
void bench_report_row(bench_report_t *r, const bench_row_t *row);

/* Prints the targets summary, writes the JSON and Markdown files, frees everything. Returns 0, or 1 when a file
 * could not be written. */
int bench_report_close(bench_report_t *r);

#endif /* TTL_BENCH_REPORT_H */
