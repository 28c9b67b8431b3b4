/*
 * Device-resident TT-FC layer: the packed cores and the bias uploaded once, plus the cores re-laid for the
 * contraction kernels (fc_internal.h), computed here on the host because this is not a hot path:
 *   first to last: At[q * lda + p], p = (i_k, a_{k+1}) (P = m_k r_{k+1}), q = (a_k, j_k) (Q = r_k n_k)
 *   last to first: At[q * lda + p], p = (a_k, i_k) (P = r_k m_k), q = (j_k, a_{k+1}) (Q = n_k r_{k+1})
 * both holding G_k[a_k, i_k, j_k, a_{k+1}], lda = P rounded up to FC_AT_ALIGN, the padding zero.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda/fc_internal.h"
#include "cuda/plan_common.h"

// ---------------------------------------------------------------------------------------------------------------
// host re-layout
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t fc_at_layout(int64_t *offset, int64_t *lda, int64_t *total, const ttl_fc_desc_t *d, int order) {
    int64_t off = 0;
    for (int32_t k = 0; k < d->num_cores; ++k) {
        const int64_t P = order == FC_FTL ? d->out_modes[k] * d->ranks[k + 1] : d->ranks[k] * d->out_modes[k];
        const int64_t Q = order == FC_FTL ? d->ranks[k] * d->in_modes[k] : d->in_modes[k] * d->ranks[k + 1];
        int64_t ld, size;
        TTL_TRY(ttl_add_i64(&ld, P, FC_AT_ALIGN - 1));
        ld = ld / FC_AT_ALIGN * FC_AT_ALIGN;
        TTL_TRY(ttl_mul_i64(&size, Q, ld));
        offset[k] = off;
        lda[k] = ld;
        TTL_TRY(ttl_add_i64(&off, off, size));
    }
    *total = off;
    return TTL_STATUS_SUCCESS;
}

void fc_at_fill(float *at, const int64_t *offset, const int64_t *lda, const ttl_fc_desc_t *d,
                const int64_t *core_offset, const float *cores, int order) {
    for (int32_t k = 0; k < d->num_cores; ++k) {
        const int64_t ra = d->ranks[k], m = d->out_modes[k], n = d->in_modes[k], rb = d->ranks[k + 1];
        const float *g = cores + core_offset[k];
        float *dst = at + offset[k];
        for (int64_t a = 0; a < ra; ++a)
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j)
                    for (int64_t c = 0; c < rb; ++c) {
                        const int64_t p = order == FC_FTL ? i * rb + c : a * m + i;
                        const int64_t q = order == FC_FTL ? a * n + j : j * rb + c;
                        dst[q * lda[k] + p] = g[((a * m + i) * n + j) * rb + c];
                    }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// entry points
// ---------------------------------------------------------------------------------------------------------------

static void layer_release(ttl_cuda_fc_layer_t *l) {
    if (l->cores != NULL) (void)cudaFree(l->cores);
    if (l->bias != NULL) (void)cudaFree(l->bias);
    for (int o = 0; o < 2; ++o)
        if (l->at[o] != NULL) (void)cudaFree(l->at[o]);
    free(l);
}

/* Uploads `count` floats to a new device buffer, ordered on `stream`. A copy from pageable memory may still be in
 * flight when the call returns: layer_fill synchronises the stream once at the end. */
static ttl_status_t upload(float **dst, const float *src, int64_t count, cudaStream_t stream) {
    size_t bytes;
    TTL_TRY(ttl_bytes(&bytes, count, sizeof(float)));
    if (cudaMalloc((void **)dst, bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        *dst = NULL;
        return TTL_STATUS_OUT_OF_MEMORY;
    }
    TTL_CUDA_TRY(cudaMemcpyAsync(*dst, src, bytes, cudaMemcpyHostToDevice, stream));
    return TTL_STATUS_SUCCESS;
}

static ttl_status_t layer_fill(ttl_cuda_fc_layer_t *l, const float *cores, const float *bias) {
    const ttl_fc_desc_t *d = &l->desc;
    int64_t params = 0;
    TTL_TRY(ttl_fc_param_count(&params, d));
    for (int32_t k = 0; k < d->num_cores; ++k) TTL_TRY(ttl_fc_core_offset(&l->core_offset[k], d, k));
    cudaStream_t stream = l->handle->stream;
    TTL_TRY(upload(&l->cores, cores, params, stream));
    if (bias != NULL) TTL_TRY(upload(&l->bias, bias, d->out_features, stream));
    for (int o = 0; o < 2; ++o) {
        int64_t total;
        TTL_TRY(fc_at_layout(l->at_offset[o], l->at_lda[o], &total, d, o));
        size_t bytes;
        TTL_TRY(ttl_bytes(&bytes, total, sizeof(float)));
        float *host = (float *)calloc((size_t)total, sizeof(float)); /* zero padding */
        if (host == NULL) return TTL_STATUS_OUT_OF_MEMORY;
        fc_at_fill(host, l->at_offset[o], l->at_lda[o], d, l->core_offset, cores, o);
        const ttl_status_t st = upload(&l->at[o], host, total, stream);
        free(host); /* a pageable source is staged before cudaMemcpyAsync returns */
        TTL_TRY(st);
    }
    TTL_CUDA_TRY(cudaStreamSynchronize(stream)); /* the layer is complete before any plan or forward reads it */
    return TTL_STATUS_SUCCESS;
}

extern "C" ttl_status_t ttl_cuda_fc_layer_create(ttl_cuda_fc_layer_t **layer, ttl_cuda_handle_t *handle,
                                                 const ttl_fc_desc_t *desc, const float *cores, const float *bias) {
    if (layer == NULL || handle == NULL || desc == NULL || cores == NULL) return TTL_STATUS_NULL_POINTER;
    TTL_TRY(ttl_fc_desc_check(desc));
    ttl_cuda_device_scope scope(handle);
    TTL_TRY(scope.status);
    ttl_cuda_fc_layer_t *l = (ttl_cuda_fc_layer_t *)calloc(1, sizeof(*l));
    if (l == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    l->handle = handle;
    l->desc = *desc;
    const ttl_status_t st = layer_fill(l, cores, bias);
    if (st != TTL_STATUS_SUCCESS) {
        layer_release(l);
        return st;
    }
    *layer = l;
    return TTL_STATUS_SUCCESS;
}

extern "C" void ttl_cuda_fc_layer_destroy(ttl_cuda_fc_layer_t *layer) {
    if (layer == NULL) return;
    ttl_cuda_device_scope scope(layer->handle);
    layer_release(layer);
}
