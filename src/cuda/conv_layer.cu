/*
 * Device-resident TT-conv layer: validates the descriptor, uploads the packed cores and the bias once, and
 * precomputes what the kernels read (conv_internal.h explains the layouts):
 *  - the spatial core padded to [kh kw][r0pad] so that 4 consecutive r_0 filters load as one float4,
 *  - for SPATIAL_FIRST and CHANNELS_FIRST, in both core orders, the chain of per-step matrices At_k [I][Opad]
 *    (transposed, zero-padded) of the channel TT-matrix with r_0 merged into its first input / output mode.
 * All re-layouts are index permutations of the host cores, done here on the host.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda/conv_internal.h"
#include "cuda/plan_common.h"

// ---------------------------------------------------------------------------------------------------------------
// merged channel TT-matrix (host)
// ---------------------------------------------------------------------------------------------------------------

namespace {

// The channel TT-matrix of `desc` with r_0 merged into the first input mode (SF) or output mode (CF): modes
// m[k] (out), n[k] (in), ranks r[0] = 1 .. r[d] = 1, and the element [a][mm][j][c] of merged core k.
struct merged_tt {
    int32_t d = 0;
    int64_t m[TTL_MAX_CORES] = {}, n[TTL_MAX_CORES] = {}, r[TTL_MAX_CORES + 1] = {};
    const float *core[TTL_MAX_CORES] = {}; /* start of G_{k+1} in the packed host buffer */
    int64_t c1 = 1, s1 = 1, r1 = 1;        /* unmerged first-core modes and rank */
    int32_t variant = TTL_CONV_VARIANT_SF;

    float elem(int32_t k, int64_t a, int64_t mm, int64_t j, int64_t c) const {
        if (k == 0 && variant == TTL_CONV_VARIANT_SF) {
            /* G'_1[0][mm][(a0 c_1 + jj)][c] = G_1[a0][mm][jj][c]: the merged input index is a0-major */
            const int64_t a0 = j / c1, jj = j % c1;
            return core[0][((a0 * s1 + mm) * c1 + jj) * r1 + c];
        }
        /* CF's merged first core [1, (r_0 s_1), c_1, r_1] is G_1's own memory; later cores are unchanged */
        return core[k][((a * m[k] + mm) * n[k] + j) * r[k + 1] + c];
    }
};

merged_tt make_merged(const ttl_conv_desc_t &desc, const float *cores, int32_t variant) {
    merged_tt t;
    t.d = desc.num_cores;
    t.variant = variant;
    const int64_t r0 = desc.ranks[0];
    const float *g = cores + desc.kernel_h * desc.kernel_w * r0;
    for (int32_t k = 0; k < t.d; ++k) {
        t.core[k] = g;
        t.m[k] = desc.out_modes[k];
        t.n[k] = desc.in_modes[k];
        t.r[k] = desc.ranks[k];
        g += desc.ranks[k] * desc.out_modes[k] * desc.in_modes[k] * desc.ranks[k + 1];
    }
    t.r[t.d] = 1;
    t.c1 = desc.in_modes[0];
    t.s1 = desc.out_modes[0];
    t.r1 = desc.ranks[1];
    t.r[0] = 1;
    if (variant == TTL_CONV_VARIANT_SF)
        t.n[0] *= r0;
    else
        t.m[0] *= r0;
    return t;
}

// Step shapes of one order; false when a per-pixel size does not fit int32 (the TT kernels then cannot run).
bool plan_chain(ttl_conv_tt_chain_t *ch, const merged_tt &t, int32_t order_idx) {
    memset(ch, 0, sizeof(*ch));
    ch->num_steps = t.d;
    ch->slices = 1;
    int64_t in_size = 1, out_size = 1;
    for (int32_t k = 0; k < t.d; ++k) {
        if (ttl_mul_i64(&in_size, in_size, t.n[k]) != TTL_STATUS_SUCCESS) return false;
        if (ttl_mul_i64(&out_size, out_size, t.m[k]) != TTL_STATUS_SUCCESS) return false;
    }
    if (!ttl_fits_i32(in_size) || !ttl_fits_i32(out_size)) return false;
    int64_t max_state = ttl_max_i64(in_size, out_size), at = 0, macs = 0;
    for (int32_t e = 0; e < t.d; ++e) {
        /* execution step e contracts core k */
        const int32_t k = order_idx == TTL_CONV_ORDER_F2L ? e : t.d - 1 - e;
        int64_t L = 1, R = 1, I, O;
        if (order_idx == TTL_CONV_ORDER_F2L) {
            for (int32_t j = 0; j < k; ++j) L *= t.m[j];
            for (int32_t j = k + 1; j < t.d; ++j) R *= t.n[j];
            I = t.r[k] * t.n[k];
            O = t.m[k] * t.r[k + 1];
        } else {
            for (int32_t j = 0; j < k; ++j) L *= t.n[j];
            for (int32_t j = k + 1; j < t.d; ++j) R *= t.m[j];
            I = t.n[k] * t.r[k + 1];
            O = t.r[k] * t.m[k];
        }
        /* L, R are sub-products of in/out sizes (<= INT32_MAX); I, O are products of checked core sizes */
        int64_t s_in, s_out, step_macs;
        if (ttl_mul_i64(&s_in, L * R, I) != TTL_STATUS_SUCCESS) return false;
        if (ttl_mul_i64(&s_out, L * R, O) != TTL_STATUS_SUCCESS) return false;
        if (ttl_mul_i64(&step_macs, s_out, I) != TTL_STATUS_SUCCESS) return false;
        /* 8 mod 16: a multiple of 16 would put the tensor-core step's lanes t = 0..3 (rows t Opad apart) on
         * the same banks */
        int64_t opad = ttl_round_up_i64(O, TTL_CONV_OPAD);
        if (opad % 16 == 0) opad += TTL_CONV_OPAD;
        if (!ttl_fits_i32(s_in) || !ttl_fits_i32(s_out) || !ttl_fits_i32(opad) || !ttl_fits_i32(I)) return false;
        ttl_conv_tt_step_t *st = &ch->steps[e];
        st->L = (int32_t)L;
        st->I = (int32_t)I;
        st->O = (int32_t)O;
        st->Opad = (int32_t)opad;
        st->R = (int32_t)R;
        st->to = TTL_CONV_OPAD;
        st->at_offset = at;
        st->a_rows = 1;
        at += I * opad; /* a multiple of TTL_CONV_OPAD, so every At_k starts 32-byte aligned */
        macs += step_macs;
        max_state = ttl_max_i64(max_state, ttl_max_i64(s_in, s_out));
    }
    if (!ttl_fits_i32(max_state)) return false;
    ch->in_size = (int32_t)in_size;
    ch->out_size = (int32_t)out_size;
    ch->max_state = (int32_t)max_state;
    ch->at_floats = at;
    ch->macs = macs;
    return true;
}

// At_k[i][o] for every step, in execution order, zero-padded to Opad columns.
void fill_at(float *at, const ttl_conv_tt_chain_t &ch, const merged_tt &t, int32_t order_idx) {
    memset(at, 0, (size_t)ch.at_floats * sizeof(float));
    for (int32_t e = 0; e < t.d; ++e) {
        const int32_t k = order_idx == TTL_CONV_ORDER_F2L ? e : t.d - 1 - e;
        const ttl_conv_tt_step_t &st = ch.steps[e];
        float *a_k = at + st.at_offset;
        const int64_t ra = t.r[k], m = t.m[k], n = t.n[k], rb = t.r[k + 1];
        for (int64_t a = 0; a < ra; ++a)
            for (int64_t mm = 0; mm < m; ++mm)
                for (int64_t j = 0; j < n; ++j)
                    for (int64_t c = 0; c < rb; ++c) {
                        int64_t i, o;
                        if (order_idx == TTL_CONV_ORDER_F2L) {
                            i = a * n + j;   /* i = (r_{k-1}, n_k) */
                            o = mm * rb + c; /* o = (m_k, r_k) */
                        } else {
                            i = j * rb + c; /* i = (n_k, r_k) */
                            o = a * m + mm; /* o = (r_{k-1}, m_k) */
                        }
                        a_k[i * st.Opad + o] = t.elem(k, a, mm, j, c);
                    }
    }
}

void release(ttl_cuda_conv_layer_t *l) {
    cudaFree(l->d_cores);
    cudaFree(l->d_bias);
    cudaFree(l->d_g0);
    for (int v = 0; v < TTL_CONV_VARIANTS; ++v)
        for (int o = 0; o < TTL_CONV_ORDERS; ++o) cudaFree(l->d_at[v][o]);
    free(l);
}

// Uploads `count` floats to a new device buffer, ordered on `stream`; a copy from pageable memory may still be in
// flight when the call returns (its source is staged), so build() synchronises the stream at the end.
ttl_status_t upload(float **dst, const float *src, size_t count, cudaStream_t stream) {
    if (cudaMalloc((void **)dst, count * sizeof(float)) != cudaSuccess) {
        (void)cudaGetLastError(); /* a failed allocation must not surface at a later launch check */
        *dst = nullptr;
        return TTL_STATUS_OUT_OF_MEMORY;
    }
    TTL_CUDA_TRY(cudaMemcpyAsync(*dst, src, count * sizeof(float), cudaMemcpyHostToDevice, stream));
    return TTL_STATUS_SUCCESS;
}

ttl_status_t build(ttl_cuda_conv_layer_t *l, const float *cores, const float *bias) {
    const ttl_conv_desc_t &d = l->desc;
    cudaStream_t stream = l->handle->stream;
    TTL_TRY(upload(&l->d_cores, cores, (size_t)l->param_count, stream));
    if (bias != NULL) TTL_TRY(upload(&l->d_bias, bias, (size_t)d.out_channels, stream));
    float *g0 = NULL;
    TTL_TRY(ttl_conv_host_g0(&g0, &l->r0pad, &d, cores));
    if (g0 != NULL) {
        ttl_status_t st = upload(&l->d_g0, g0, (size_t)d.kernel_h * d.kernel_w * l->r0pad, stream);
        free(g0);
        TTL_TRY(st);
        float *at[TTL_CONV_VARIANTS][TTL_CONV_ORDERS] = {};
        TTL_TRY(ttl_conv_host_chains(l->chain, at, &d, cores));
        if (at[0][0] != NULL) {
            for (int32_t v = 0; v < TTL_CONV_VARIANTS; ++v)
                for (int32_t o = 0; o < TTL_CONV_ORDERS; ++o) {
                    if (st == TTL_STATUS_SUCCESS)
                        st = upload(&l->d_at[v][o], at[v][o], (size_t)l->chain[v][o].at_floats, stream);
                    free(at[v][o]);
                }
            TTL_TRY(st);
            l->tt_ok = 1;
        }
    }
    /* tt_ok stays 0 (DENSE only) when the TT re-layouts do not apply; either way the uploads land first */
    TTL_CUDA_TRY(cudaStreamSynchronize(stream));
    return TTL_STATUS_SUCCESS;
}

} // namespace

// ---------------------------------------------------------------------------------------------------------------
// host re-layouts (internal entry points)
// ---------------------------------------------------------------------------------------------------------------

extern "C" ttl_status_t ttl_conv_host_g0(float **g0, int32_t *r0pad, const ttl_conv_desc_t *desc,
                                         const float *cores) {
    *g0 = NULL;
    /* spatial core [kh kw][r_0] -> [kh kw][r0pad] */
    const int64_t khkw = desc->kernel_h * desc->kernel_w, r0 = desc->ranks[0];
    const int64_t pad = ttl_round_up_i64(r0, TTL_CONV_R0_BLOCK);
    if (!ttl_fits_i32(pad) || !ttl_fits_i32(desc->kernel_h) || !ttl_fits_i32(desc->kernel_w))
        return TTL_STATUS_SUCCESS;
    int64_t count;
    TTL_TRY(ttl_mul_i64(&count, khkw, pad));
    if (!ttl_fits_i32(count)) return TTL_STATUS_SUCCESS; /* the kernels index [kh kw][r0pad] with int */
    float *out = (float *)calloc((size_t)count, sizeof(float));
    if (out == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    for (int64_t pq = 0; pq < khkw; ++pq)
        for (int64_t a = 0; a < r0; ++a) out[pq * pad + a] = cores[pq * r0 + a];
    *g0 = out;
    *r0pad = (int32_t)pad;
    return TTL_STATUS_SUCCESS;
}

extern "C" ttl_status_t ttl_conv_host_chains(ttl_conv_tt_chain_t chain[TTL_CONV_VARIANTS][TTL_CONV_ORDERS],
                                             float *at[TTL_CONV_VARIANTS][TTL_CONV_ORDERS],
                                             const ttl_conv_desc_t *desc, const float *cores) {
    for (int32_t v = 0; v < TTL_CONV_VARIANTS; ++v)
        for (int32_t o = 0; o < TTL_CONV_ORDERS; ++o) at[v][o] = NULL;
    for (int32_t v = 0; v < TTL_CONV_VARIANTS; ++v) {
        const merged_tt t = make_merged(*desc, cores, v);
        for (int32_t o = 0; o < TTL_CONV_ORDERS; ++o)
            if (!plan_chain(&chain[v][o], t, o)) return TTL_STATUS_SUCCESS; /* no chains: DENSE only */
    }
    for (int32_t v = 0; v < TTL_CONV_VARIANTS; ++v) {
        const merged_tt t = make_merged(*desc, cores, v);
        for (int32_t o = 0; o < TTL_CONV_ORDERS; ++o) {
            at[v][o] = (float *)malloc((size_t)chain[v][o].at_floats * sizeof(float));
            if (at[v][o] == NULL) {
                for (int32_t w = 0; w < TTL_CONV_VARIANTS * TTL_CONV_ORDERS; ++w) {
                    free(at[w / TTL_CONV_ORDERS][w % TTL_CONV_ORDERS]);
                    at[w / TTL_CONV_ORDERS][w % TTL_CONV_ORDERS] = NULL;
                }
                return TTL_STATUS_OUT_OF_MEMORY;
            }
            fill_at(at[v][o], chain[v][o], t, o);
        }
    }
    return TTL_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// public entry points
// ---------------------------------------------------------------------------------------------------------------

extern "C" ttl_status_t ttl_cuda_conv_layer_create(ttl_cuda_conv_layer_t **layer, ttl_cuda_handle_t *handle,
                                                   const ttl_conv_desc_t *desc, const float *cores,
                                                   const float *bias) {
    if (layer == NULL || handle == NULL || desc == NULL || cores == NULL) return TTL_STATUS_NULL_POINTER;
    TTL_TRY(ttl_conv_desc_check(desc));
    int64_t params;
    TTL_TRY(ttl_conv_param_count(&params, desc));
    ttl_cuda_device_scope guard(handle);
    TTL_TRY(guard.status);

    ttl_cuda_conv_layer_t *l = (ttl_cuda_conv_layer_t *)calloc(1, sizeof(*l));
    if (l == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    l->handle = handle;
    l->desc = *desc;
    l->param_count = params;
    const ttl_status_t st = build(l, cores, bias);
    if (st != TTL_STATUS_SUCCESS) {
        release(l);
        return st;
    }
    *layer = l;
    return TTL_STATUS_SUCCESS;
}

extern "C" void ttl_cuda_conv_layer_destroy(ttl_cuda_conv_layer_t *layer) {
    if (layer == NULL) return;
    ttl_cuda_device_scope guard(layer->handle);
    release(layer);
}
