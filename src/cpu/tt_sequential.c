/*
 * Sequential core contraction of a TT-matrix on OpenBLAS: y = W x (+ bias) with one GEMM per core and no
 * reconstruction of W, in either core order (docs/tt-layers.md section 1). The schedules are described in
 * cpu_internal.h (ttl_tt_seq_t); both read x and write y in place, so only the intermediates need scratch, and
 * each step's GEMM has exactly the multiply-adds of ttl_fc_macs_sequential.
 *
 * The left rank r_0 of a TT-conv's channel part is folded into the first mode (as an input index it joins n_1,
 * as an output index it joins m_1), so every schedule runs a TT-matrix with r_0 = 1.
 */
#include <cblas.h>
#include <string.h>

#include "common/check.h"
#include "cpu/cpu_internal.h"

/* Rows per chunk: one intermediate buffer holds about this many floats (1 MB), enough for the GEMMs to amortise
 * their call overhead, little enough to stay in cache between steps. */
#define CHUNK_TARGET_ELEMS ((int64_t)1 << 18)

/* Products m n k per sgemm call. OpenBLAS (0.3) runs calls below 65536 * 4 of them on the calling thread; the
 * contractions here are skinny and memory-bound, and handing each one to the thread pool cost more than it
 * gained (2x at batch 1 for VGG FC6, and erratic when the cores are shared), so the GEMMs are cut below it. */
#define GEMM_BLOCK_MNK ((int64_t)262144)

// ---- GEMM ------------------------------------------------------------------------------------------------------

/* C = A B (row-major, beta 0) in blocks of rows (split_rows) or columns of at most GEMM_BLOCK_MNK products. */
static void sgemm_blocked(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                          float *C, int64_t ldc, int split_rows) {
    const int64_t step = ttl_max_i64(1, GEMM_BLOCK_MNK / ((split_rows ? N : M) * K));
    const int64_t total = split_rows ? M : N;
    for (int64_t o = 0; o < total; o += step) {
        const int64_t len = ttl_min_i64(step, total - o);
        if (split_rows)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)len, (int)N, (int)K, 1.0f, A + o * lda,
                        (int)lda, B, (int)ldb, 0.0f, C + o * ldc, (int)ldc);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)len, (int)K, 1.0f, A, (int)lda,
                        B + o, (int)ldb, 0.0f, C + o, (int)ldc);
    }
}

// ---- planning --------------------------------------------------------------------------------------------------

static ttl_status_t merge_left_rank(ttl_fc_desc_t *merged, const ttl_fc_desc_t *desc, ttl_left_rank_role_t role) {
    *merged = *desc;
    const int64_t r0 = desc->ranks[0];
    merged->ranks[0] = 1;
    if (role == TTL_LEFT_RANK_INPUT) {
        TTL_TRY(ttl_mul_i64(&merged->in_modes[0], desc->in_modes[0], r0));
        TTL_TRY(ttl_mul_i64(&merged->in_features, desc->in_features, r0));
    } else if (role == TTL_LEFT_RANK_OUTPUT) {
        TTL_TRY(ttl_mul_i64(&merged->out_modes[0], desc->out_modes[0], r0));
        TTL_TRY(ttl_mul_i64(&merged->out_features, desc->out_features, r0));
    }
    return TTL_STATUS_SUCCESS;
}

/* Largest tensor, in floats per row, that a schedule holds: every step's input and output. */
static ttl_status_t largest_intermediate(int64_t *elems, const ttl_fc_desc_t *d) {
    const int32_t n = d->num_cores;
    int64_t best = ttl_max_i64(d->in_features, d->out_features);
    for (int32_t k = 0; k <= n; ++k) {
        /* after k cores in either order: r_k times the modes already produced and those still to consume */
        int64_t ftl = d->ranks[k], ltf = d->ranks[n - k];
        for (int32_t j = 0; j < n; ++j) {
            TTL_TRY(ttl_mul_i64(&ftl, ftl, j < k ? d->out_modes[j] : d->in_modes[j]));
            TTL_TRY(ttl_mul_i64(&ltf, ltf, j >= n - k ? d->out_modes[j] : d->in_modes[j]));
        }
        best = ttl_max_i64(best, ttl_max_i64(ftl, ltf));
    }
    *elems = best;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_tt_seq_init(ttl_tt_seq_t *seq, const ttl_fc_desc_t *desc, ttl_left_rank_role_t role,
                             ttl_order_t order, int64_t max_batch) {
    if (role == TTL_LEFT_RANK_NONE)
        TTL_TRY(ttl_fc_desc_check(desc));
    else
        TTL_TRY(ttl_fc_desc_check_left_rank(desc));
    if (max_batch < 0) return TTL_STATUS_BAD_ARGUMENT;
    ttl_tt_seq_t s;
    memset(&s, 0, sizeof(s));
    s.role = role;
    s.left_rank = desc->ranks[0];
    s.max_batch = max_batch;
    TTL_TRY(merge_left_rank(&s.merged, desc, role));

    int64_t ftl, ltf;
    TTL_TRY(ttl_fc_macs_sequential(&ftl, &s.merged, TTL_ORDER_FIRST_TO_LAST));
    TTL_TRY(ttl_fc_macs_sequential(&ltf, &s.merged, TTL_ORDER_LAST_TO_FIRST));
    if (order == TTL_ORDER_AUTO) order = ltf < ftl ? TTL_ORDER_LAST_TO_FIRST : TTL_ORDER_FIRST_TO_LAST;
    if (order != TTL_ORDER_FIRST_TO_LAST && order != TTL_ORDER_LAST_TO_FIRST) return TTL_STATUS_BAD_ARGUMENT;
    s.order = order;
    s.macs_per_row = order == TTL_ORDER_FIRST_TO_LAST ? ftl : ltf;

    TTL_TRY(largest_intermediate(&s.buf_elems, &s.merged));
    for (int32_t k = 0; k < s.merged.num_cores; ++k)
        s.core_elems += s.merged.ranks[k] * s.merged.out_modes[k] * s.merged.in_modes[k] * s.merged.ranks[k + 1];
    if (max_batch > 0) {
        s.chunk = ttl_max_i64(1, ttl_min_i64(max_batch, CHUNK_TARGET_ELEMS / s.buf_elems));
        size_t cores_bytes, buf_bytes;
        int64_t buf;
        TTL_TRY(ttl_mul_i64(&buf, s.chunk, s.buf_elems));
        TTL_TRY(ttl_bytes(&cores_bytes, s.core_elems, sizeof(float)));
        TTL_TRY(ttl_bytes(&buf_bytes, buf, sizeof(float)));
        if (buf_bytes > SIZE_MAX / 4) return TTL_STATUS_OVERFLOW;
        if (buf > INT32_MAX) return TTL_STATUS_UNSUPPORTED; /* BLAS takes int extents */
        s.workspace_bytes = ttl_align_up(cores_bytes) + 2 * ttl_align_up(buf_bytes);
    }
    *seq = s;
    return TTL_STATUS_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// core re-layout
// ---------------------------------------------------------------------------------------------------------------

/* Writes every core G_k[a, i, j, c] (original shapes) as the GEMM operand of its step, in merged indices:
 * first to last A_k[(c, i), (a, j)] (the core as [(r_k m_k), (r_{k-1} n_k)]), last to first A_k[(j, c), (i, a)]
 * (the core as [(n_k r_k), (m_k r_{k-1})]). */
static void relayout_cores(float *dst, const ttl_tt_seq_t *s, const float *cores) {
    const ttl_fc_desc_t *md = &s->merged;
    const int ftl = s->order == TTL_ORDER_FIRST_TO_LAST;
    for (int32_t k = 0; k < md->num_cores; ++k) {
        int64_t ra = md->ranks[k], m = md->out_modes[k], n = md->in_modes[k];
        const int64_t rb = md->ranks[k + 1], mm = m, nm = n, ram = ra;
        const int in_merge = k == 0 && s->role == TTL_LEFT_RANK_INPUT;
        const int out_merge = k == 0 && s->role == TTL_LEFT_RANK_OUTPUT;
        /* original extents of core 0 when r_0 was folded into a mode */
        if (in_merge) ra = s->left_rank, n = nm / s->left_rank;
        if (out_merge) ra = s->left_rank, m = mm / s->left_rank;
        const float *g = cores;
        for (int64_t a = 0; a < ra; ++a)
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j)
                    for (int64_t c = 0; c < rb; ++c) {
                        int64_t am = a, im = i, jm = j;
                        if (in_merge) am = 0, jm = a * n + j;
                        if (out_merge) am = 0, im = a * m + i;
                        const float v = g[((a * m + i) * n + j) * rb + c];
                        if (ftl)
                            dst[(c * mm + im) * (ram * nm) + am * nm + jm] = v;
                        else
                            dst[(jm * rb + c) * (mm * ram) + im * ram + am] = v;
                    }
        const int64_t size = ra * m * n * rb;
        cores += size;
        dst += size;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// one chunk of rows
// ---------------------------------------------------------------------------------------------------------------

/* Working tensor [r_{k-1}, n_k, n_{k+1}..n_d, b, m_1..m_{k-1}]; step k: one GEMM, then m_k moves to the end. */
static void run_first_to_last(const ttl_tt_seq_t *s, float *y, const float *x, const float *A, int64_t rows,
                              float *buf[2]) {
    const ttl_fc_desc_t *d = &s->merged;
    const int64_t N = d->in_features;
    const float *cur = x;
    int cur_buf = -1;
    if (rows > 1) { /* [b, N] -> [N, b] */
        ttl_swap_middle(buf[0], x, 1, rows, N, 1);
        cur = buf[0];
        cur_buf = 0;
    }
    int64_t size = rows * N;
    for (int32_t k = 0; k < d->num_cores; ++k) {
        const int64_t ra = d->ranks[k], rb = d->ranks[k + 1], m = d->out_modes[k], n = d->in_modes[k];
        const int64_t inner = ra * n, rest = size / inner;
        const int last = k == d->num_cores - 1;
        const int spare = cur_buf == 0 ? 1 : 0;
        const int in_place = m == 1 || rest == 1; /* moving m_k is then a no-op */
        float *out = in_place && last ? y : buf[spare];
        sgemm_blocked(rb * m, rest, inner, A, inner, cur, rest, out, rest, 0);
        if (in_place) {
            cur = out;
            cur_buf = spare;
        } else {
            const int next_buf = cur_buf >= 0 ? cur_buf : 1 - spare;
            float *next = last ? y : buf[next_buf];
            ttl_swap_middle(next, out, rb, m, rest, 1);
            cur = next;
            cur_buf = next_buf;
        }
        size = rb * m * rest;
        A += rb * m * inner;
    }
}

/* Working tensor [b, m_{k+1}..m_d, n_1..n_{k-1}, n_k, r_k]; step k: one GEMM, then m_k moves right after b. */
static void run_last_to_first(const ttl_tt_seq_t *s, float *y, const float *x, const float *A_all, int64_t rows,
                              float *buf[2]) {
    const ttl_fc_desc_t *d = &s->merged;
    const float *cur = x;
    int cur_buf = -1;
    int64_t size = rows * d->in_features;
    /* A_all holds the cores first to last; walk them from the end. */
    int64_t offset = s->core_elems;
    for (int32_t k = d->num_cores - 1; k >= 0; --k) {
        const int64_t ra = d->ranks[k], rb = d->ranks[k + 1], m = d->out_modes[k], n = d->in_modes[k];
        offset -= ra * m * n * rb;
        const float *A = A_all + offset;
        const int64_t inner = n * rb, cols = m * ra, total_rows = size / inner;
        const int64_t per_row = total_rows / rows; /* m_{k+1}..m_d n_1..n_{k-1} */
        const int last = k == 0;
        const int spare = cur_buf == 0 ? 1 : 0;
        const int in_place = m == 1 || per_row == 1;
        float *out = in_place && last ? y : buf[spare];
        sgemm_blocked(total_rows, cols, inner, cur, inner, A, cols, out, cols, 1);
        if (in_place) {
            cur = out;
            cur_buf = spare;
        } else {
            const int next_buf = cur_buf >= 0 ? cur_buf : 1 - spare;
            float *next = last ? y : buf[next_buf];
            ttl_swap_middle(next, out, rows, per_row, m, ra);
            cur = next;
            cur_buf = next_buf;
        }
        size = total_rows * cols;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// entry
// ---------------------------------------------------------------------------------------------------------------

void ttl_tt_seq_run(const ttl_tt_seq_t *s, float *y, const float *x, const float *cores, const float *bias,
                    int64_t batch, void *ws) {
    if (batch <= 0) return;
    char *base = (char *)ws;
    float *A = (float *)base;
    const size_t cores_bytes = ttl_align_up((size_t)s->core_elems * sizeof(float));
    const size_t buf_bytes = ttl_align_up((size_t)(s->chunk * s->buf_elems) * sizeof(float));
    float *buf[2] = {(float *)(base + cores_bytes), (float *)(base + cores_bytes + buf_bytes)};
    relayout_cores(A, s, cores);

    const int64_t N = s->merged.in_features, M = s->merged.out_features;
    for (int64_t b0 = 0; b0 < batch; b0 += s->chunk) {
        const int64_t rows = ttl_min_i64(s->chunk, batch - b0);
        if (s->order == TTL_ORDER_FIRST_TO_LAST)
            run_first_to_last(s, y + b0 * M, x + b0 * N, A, rows, buf);
        else
            run_last_to_first(s, y + b0 * M, x + b0 * N, A, rows, buf);
        ttl_add_bias_rows(y + b0 * M, bias, rows, M);
    }
}
