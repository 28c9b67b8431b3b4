/*
 * SEQUENTIAL_BLAS TT-FC: the sequential schedule with one cuBLAS SGEMM per launch (one per core, or per core
 * and chunk where the schedule is sliced), the comparison point for the libttl kernels. Same schedule, layouts and
 * workspace as SEQUENTIAL (fc_internal.h): Out[l] = A In[l] for every l, with In[l] a Q x R and Out[l] a P x R
 * row-major matrix, so no permutation is needed between the calls.
 *
 * In cuBLAS's column-major terms a row-major [Q, R] block is an R x Q matrix with leading dimension R, and the
 * stored At[q * lda + p] is A itself (P x Q, leading dimension lda). Hence per step:
 *   R == 1: one SGEMM, Out^T (P x L) = A (P x Q) * In^T (Q x L)                 (N, N)
 *   R > 1:  strided-batched over l, Out[l]^T (R x P) = In[l]^T (R x Q) * A^T    (N, T), stride 0 for A.
 * The bias is written into y first and the last call accumulates onto it (beta = 1). fp32: the handle's math
 * mode is set to CUBLAS_DEFAULT_MATH (no TF32 for SGEMM) before the calls. No permute or helper kernel is needed.
 */
#include <limits.h>

#include "cuda/fc_internal.h"
#include "cuda/plan_common.h"

// ---------------------------------------------------------------------------------------------------------------
// launcher (one step)
// ---------------------------------------------------------------------------------------------------------------

static ttl_status_t blas_step(cublasHandle_t h, const fc_seq_step_t *s, const fc_seq_launch_t *l, float beta) {
    const float one = 1.0f;
    if (s->R == 1) {
        TTL_CUBLAS_TRY(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)s->P, (int)l->L, (int)s->Q, &one, s->at,
                                   (int)s->lda, l->in, (int)s->Q, &beta, l->out, (int)s->P));
    } else {
        TTL_CUBLAS_TRY(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_T, (int)s->R, (int)s->P, (int)s->Q, &one,
                                                 l->in, (int)s->R, (long long)(s->Q * s->R), s->at, (int)s->lda,
                                                 0LL, &beta, l->out, (int)s->R, (long long)(s->P * s->R),
                                                 (int)l->L));
    }
    return TTL_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// internal entry points
// ---------------------------------------------------------------------------------------------------------------

ttl_status_t fc_blas_check(const fc_seq_schedule_t *s, int64_t M) {
    if (M > INT_MAX) return TTL_STATUS_UNSUPPORTED;
    for (int32_t i = 0; i < s->num_steps; ++i) {
        const fc_seq_step_t *st = &s->steps[i];
        if (st->L > INT_MAX || st->P > INT_MAX || st->Q > INT_MAX || st->R > INT_MAX || st->lda > INT_MAX)
            return TTL_STATUS_UNSUPPORTED;
    }
    return TTL_STATUS_SUCCESS;
}

ttl_status_t fc_blas_run(const ttl_cuda_fc_plan_t *plan, float *y, const float *x, unsigned char *ws) {
    const ttl_cuda_fc_layer_t *layer = plan->layer;
    const ttl_cuda_handle_t *handle = layer->handle;
    TTL_CUBLAS_TRY(cublasSetMathMode(handle->cublas, CUBLAS_DEFAULT_MATH));
    const bool bias = layer->bias != NULL;
    if (bias) TTL_TRY(fc_bias_fill(y, layer->bias, plan->batch, layer->desc.out_features, handle->stream));
    const fc_seq_schedule_t *s = &plan->seq;
    const int64_t launches = fc_seq_num_launches(s);
    for (int64_t n = 0; n < launches; ++n) {
        const fc_seq_launch_t l = fc_seq_launch(s, n, y, x, ws);
        const bool last = l.step == s->num_steps - 1;
        TTL_TRY(blas_step(handle->cublas, &s->steps[l.step], &l, last && bias ? 1.0f : 0.0f));
    }
    return TTL_STATUS_SUCCESS;
}
