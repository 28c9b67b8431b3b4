/*
 * The benchmark suite as data: every layer the bench times, named as in the H100 anchor measurements
 * (shared reference anchors-h100.md), with its TT shape, geometry and the batches each device runs.
 * The paper's layers come from docs/tt-layers.md section 4; the VGG-size convolutions are the shapes where
 * TT-conv should beat dense. Nothing here runs anything: the runners read these records.
 */
#ifndef TTL_BENCH_CASES_H
#define TTL_BENCH_CASES_H

#include <stdint.h>

#include "ttl/ttl.h"

#define BENCH_MAX_CORES 8
#define BENCH_MAX_BATCHES 6

typedef enum bench_op { BENCH_OP_FC = 0, BENCH_OP_CONV = 1 } bench_op_t;

/* Which suites a case belongs to (bit flags). */
enum { BENCH_SUITE_QUICK = 1, BENCH_SUITE_PAPER = 2 };

typedef struct bench_case {
    const char *name;
    bench_op_t op;
    int suites;                             /* BENCH_SUITE_* flags */
    int32_t num_cores;                      /* d: TT-FC cores, or channel cores of a TT-conv */
    int64_t out_modes[BENCH_MAX_CORES];     /* m_k (FC) or s_k (conv) */
    int64_t in_modes[BENCH_MAX_CORES];      /* n_k (FC) or c_k (conv) */
    int64_t ranks[BENCH_MAX_CORES + 1];     /* FC: 1, r_1.., 1; conv: r_0 (spatial), r_1.., 1 */
    int64_t kernel, stride, pad;            /* conv only: square kernel, same on both axes */
    int64_t height, width;                  /* conv only: input spatial size */
    int64_t cpu_batches[BENCH_MAX_BATCHES]; /* zero-terminated */
    int64_t gpu_batches[BENCH_MAX_BATCHES]; /* zero-terminated */
    const char *note;                       /* where the shape comes from */
} bench_case_t;

/* All cases, in suite order. */
const bench_case_t *bench_cases(int *count);

/* Suite name ("quick", "paper") to its BENCH_SUITE_* flag; 0 when unknown. */
int bench_suite_flag(const char *name);

/* Case selection: with no patterns, the cases of the suite; otherwise every case (of any suite) whose name
 * equals a pattern or starts with it. */
int bench_case_selected(const bench_case_t *c, int suite_flag, const char *const *patterns, int num_patterns);

/* The library descriptors of a case (ranks and modes copied, features/channels multiplied out). */
void bench_case_fc_desc(ttl_fc_desc_t *desc, const bench_case_t *c);
void bench_case_conv_desc(ttl_conv_desc_t *desc, const bench_case_t *c);

/* Compact shape text for tables and JSON: "out modes x in modes r<ranks>", e.g. "4,8,4x4,8,4 r16" (the ranks
 * that may differ from 1: FC r_1..r_{d-1}, conv r_0..r_{d-1}; one number when they are all equal). */
void bench_case_shape_text(char *buf, int size, const bench_case_t *c);

#endif /* TTL_BENCH_CASES_H */
