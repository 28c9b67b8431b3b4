/*
 * Benchmark data shared by the CPU and GPU runners: seeded random cores scaled so that activations stay O(1)
 * through the layer, random inputs (never zeros), relative errors, and allocation that exits on failure
 * (the bench, unlike the library, may stop with a message).
 */
#ifndef TTL_BENCH_DATA_H
#define TTL_BENCH_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "ttl/ttl.h"

/* 64-byte aligned, zero-filled memory of `bytes`; exits with a message when it fails. Free with free(). */
void *bench_alloc(size_t bytes);

/* Exits with a message naming `what` when status is not SUCCESS. */
void bench_check(ttl_status_t status, const char *what);

/* n values uniform in +-[0.1, 1] * scale from a seeded generator. */
void bench_fill_random(float *v, int64_t n, uint64_t seed, float scale);

/* Packed random cores of a TT-FC layer (ttl_fc_param_count floats), scaled so that y = W x has entries of
 * the size of x's: Var(W[i, j]) = 1 / N. */
float *bench_fc_cores(const ttl_fc_desc_t *desc, uint64_t seed);

/* The same for a TT-conv kernel: Var(K[s, c, p, q]) = 1 / (C kh kw). */
float *bench_conv_cores(const ttl_conv_desc_t *desc, uint64_t seed);

/* A seed derived from a case name, so every run of a case sees the same data. */
uint64_t bench_seed_of(const char *name);

/* ||a - b|| / ||b|| in double; INFINITY when anything is not finite. */
double bench_rel_err(const float *a, const float *b, int64_t n);

/* Inputs and outputs of the CPU reference on the first samples of a case, computed once per case: every timed
 * path gets these samples at the head of its input, and its output rows are compared with ref_y. */
typedef struct bench_reference {
    int64_t samples; /* 2, or 1 when a sample costs more than BENCH_REF_BIG_SAMPLE_MACS dense multiply-adds */
    float *x, *y;    /* [samples, x_sample], [samples, y_sample]; free with free() */
} bench_reference_t;
#define BENCH_REF_SAMPLES 2
#define BENCH_REF_BIG_SAMPLE_MACS 300000000LL

/* fc != NULL: a TT-FC case; else the TT-conv case `conv` on `shape` (its batch is replaced). */
bench_reference_t bench_reference(const ttl_fc_desc_t *fc, const ttl_conv_desc_t *conv,
                                  const ttl_conv_shape_t *shape, const float *cores, int64_t x_sample,
                                  int64_t y_sample, int64_t dense_macs_per_sample, uint64_t seed);

#endif /* TTL_BENCH_DATA_H */
