/*
 * Random data for the bench. Core scaling: with independent entries of variance v_k in core k, an entry of
 * the reconstructed W is a sum of prod(inner ranks) products, so Var(W) = prod_k v_k * prod(inner ranks).
 * Choosing v_k = 1 / (n_k r_k) for a core with input mode n_k and right rank r_k gives Var(W) = 1 / N, i.e.
 * outputs of the size of the inputs. The TT-conv spatial core counts as a core with input mode kh kw.
 */
#include "data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Variance of a value uniform in +-[0.1, 1]: (1 - 0.1^3) / (3 * 0.9).
#define UNIT_VARIANCE (0.999 / 2.7)
#define ALIGNMENT ((size_t)64)

void *bench_alloc(size_t bytes) {
    const size_t rounded = (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    void *p = aligned_alloc(ALIGNMENT, rounded ? rounded : ALIGNMENT);
    if (!p) {
        fprintf(stderr, "ttl-bench: out of memory allocating %zu bytes\n", bytes);
        exit(1);
    }
    memset(p, 0, rounded ? rounded : ALIGNMENT);
    return p;
}

void bench_check(ttl_status_t status, const char *what) {
    if (status == TTL_STATUS_SUCCESS) return;
    fprintf(stderr, "ttl-bench: %s failed: %s\n", what, ttl_status_string(status));
    exit(1);
}

// splitmix64: small, seedable, good enough for benchmark data.
static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void bench_fill_random(float *v, int64_t n, uint64_t seed, float scale) {
    uint64_t state = seed;
    for (int64_t i = 0; i < n; ++i) {
        const uint64_t r = next_random(&state);
        const float mag = 0.1f + 0.9f * (float)((r >> 11) & 0xFFFFFF) / (float)0xFFFFFF;
        v[i] = (r & 1) ? scale * mag : -scale * mag;
    }
}

// ---- cores ------------------------------------------------------------------------------------------------------

static float core_scale(int64_t in_mode, int64_t right_rank) {
    return (float)(1.0 / sqrt(UNIT_VARIANCE * (double)in_mode * (double)right_rank));
}

float *bench_fc_cores(const ttl_fc_desc_t *desc, uint64_t seed) {
    int64_t count;
    bench_check(ttl_fc_param_count(&count, desc), "ttl_fc_param_count");
    float *cores = bench_alloc((size_t)count * sizeof(float));
    for (int32_t k = 0; k < desc->num_cores; ++k) {
        int64_t offset;
        bench_check(ttl_fc_core_offset(&offset, desc, k), "ttl_fc_core_offset");
        const int64_t size = desc->ranks[k] * desc->out_modes[k] * desc->in_modes[k] * desc->ranks[k + 1];
        bench_fill_random(cores + offset, size, seed + (uint64_t)k,
                          core_scale(desc->in_modes[k], desc->ranks[k + 1]));
    }
    return cores;
}

float *bench_conv_cores(const ttl_conv_desc_t *desc, uint64_t seed) {
    int64_t count, offset;
    bench_check(ttl_conv_param_count(&count, desc), "ttl_conv_param_count");
    float *cores = bench_alloc((size_t)count * sizeof(float));
    const int64_t taps = desc->kernel_h * desc->kernel_w;
    bench_check(ttl_conv_core_offset(&offset, desc, 0), "ttl_conv_core_offset");
    bench_fill_random(cores + offset, taps * desc->ranks[0], seed, core_scale(taps, desc->ranks[0]));
    for (int32_t k = 0; k < desc->num_cores; ++k) {
        bench_check(ttl_conv_core_offset(&offset, desc, k + 1), "ttl_conv_core_offset");
        const int64_t size = desc->ranks[k] * desc->out_modes[k] * desc->in_modes[k] * desc->ranks[k + 1];
        bench_fill_random(cores + offset, size, seed + 1 + (uint64_t)k,
                          core_scale(desc->in_modes[k], desc->ranks[k + 1]));
    }
    return cores;
}

uint64_t bench_seed_of(const char *name) {
    uint64_t h = 1469598103934665603ull; // FNV-1a
    for (; *name; ++name) h = (h ^ (uint8_t)*name) * 1099511628211ull;
    return h;
}

// ---- errors -----------------------------------------------------------------------------------------------------

double bench_rel_err(const float *a, const float *b, int64_t n) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        const double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (den == 0.0) return num == 0.0 ? 0.0 : INFINITY;
    return sqrt(num / den);
}

bench_reference_t bench_reference(const ttl_fc_desc_t *fc, const ttl_conv_desc_t *conv,
                                  const ttl_conv_shape_t *shape, const float *cores, int64_t x_sample,
                                  int64_t y_sample, int64_t dense_macs_per_sample, uint64_t seed) {
    bench_reference_t r;
    r.samples = dense_macs_per_sample > BENCH_REF_BIG_SAMPLE_MACS ? 1 : BENCH_REF_SAMPLES;
    r.x = bench_alloc((size_t)(r.samples * x_sample) * sizeof(float));
    r.y = bench_alloc((size_t)(r.samples * y_sample) * sizeof(float));
    bench_fill_random(r.x, r.samples * x_sample, seed ^ 0x5EEDull, 1.0f);
    if (fc != NULL) {
        bench_check(ttl_fc_forward_ref(r.y, fc, cores, NULL, r.x, r.samples), "ttl_fc_forward_ref");
    } else {
        ttl_conv_shape_t s = *shape;
        s.batch = r.samples;
        bench_check(ttl_conv_forward_ref(r.y, conv, cores, NULL, r.x, &s), "ttl_conv_forward_ref");
    }
    return r;
}
