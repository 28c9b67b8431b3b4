/*
 * The safetensors loader: checks every byte of the header before anything is trusted, with the rules of
 * Python's safetensors (8-byte little-endian header length, at most 100 MB and within the file; UTF-8 JSON
 * object starting with '{', trailing spaces allowed; known dtypes; shapes of non-negative integers whose
 * element count fits; data_offsets [begin, end] within the data buffer with end - begin = numel * dtype size;
 * tensors that tile the buffer exactly, no overlap, no gap; "__metadata__" a map of strings) plus unique names.
 * Every failure is TTL_STATUS_BAD_FILE with a message naming the tensor and the problem.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/check.h"
#include "io/io_internal.h"

#define HEADER_LENGTH_BYTES 8

// ---- small helpers -------------------------------------------------------------------------------------------

static char *dup_string(const char *s) {
    const size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL) memcpy(d, s, n);
    return d;
}

/* A JSON number that is an exact integer in [0, 2^53], else 0; a negative integer also sets *negative. */
static int json_uint(int64_t *out, int *negative, const cJSON *item) {
    *negative = 0;
    if (!cJSON_IsNumber(item)) return 0;
    const double d = item->valuedouble;
    if (!(d >= -(double)IO_MAX_JSON_INT && d <= (double)IO_MAX_JSON_INT)) return 0; /* NaN, Inf, huge */
    if (d != (double)(int64_t)d) return 0;
    if (d < 0) {
        *negative = 1;
        return 0;
    }
    *out = (int64_t)d;
    return 1;
}

/* "[2, 3, 4]" for messages. */
static void format_shape(char *buf, size_t len, const int64_t *shape, int32_t ndim) {
    size_t o = 0;
    o += (size_t)snprintf(buf, len, "[");
    for (int32_t i = 0; i < ndim && o < len; ++i)
        o += (size_t)snprintf(buf + o, len - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

// ---- one tensor entry ----------------------------------------------------------------------------------------

static ttl_status_t parse_tensor(io_tensor_t *t, const cJSON *entry, size_t data_size, char *msg, size_t msg_len) {
    char q[IO_NAME_LEN];
    const char *name = io_quote(q, entry->string);
    if (!cJSON_IsObject(entry))
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "tensor %s: entry is not a JSON object", name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!cJSON_IsString(dtype))
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "tensor %s: \"dtype\" is missing or not a string", name);
    if (!io_dtype_parse(&t->dtype, dtype->valuestring)) {
        char qd[IO_NAME_LEN];
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "tensor %s: unknown dtype %s", name,
                       io_quote(qd, dtype->valuestring));
    }

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!cJSON_IsArray(shape))
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "tensor %s: \"shape\" is missing or not an array", name);
    const int ndim = cJSON_GetArraySize(shape);
    if (ndim > TTL_IO_MAX_DIMS)
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "tensor %s: shape has %d dimensions, more than %d", name,
                       ndim, TTL_IO_MAX_DIMS);
    t->ndim = (int32_t)ndim;
    t->numel = 1;
    int overflow = 0, i = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        int negative;
        if (!json_uint(&t->shape[i], &negative, dim)) {
            if (negative)
                return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "tensor %s: negative dimension %.0f in shape",
                               name, dim->valuedouble);
            return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE,
                           "tensor %s: shape entry %d is not an integer in [0, 2^53]", name, i);
        }
        if (ttl_mul_i64(&t->numel, t->numel, t->shape[i]) != TTL_STATUS_SUCCESS) overflow = 1;
        ++i;
    }
    size_t bytes = 0;
    const size_t elem = ttl_dtype_size(t->dtype);
    /* a zero dimension makes the count 0 even after an overflowing prefix */
    for (int k = 0; k < ndim; ++k)
        if (t->shape[k] == 0) overflow = 0, t->numel = 0;
    if (overflow || ttl_bytes(&bytes, t->numel, elem) != TTL_STATUS_SUCCESS) {
        char s[IO_NAME_LEN * 2];
        format_shape(s, sizeof(s), t->shape, t->ndim);
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE,
                       "tensor %s: shape %s overflows: its byte size does not "
                       "fit 64 bits",
                       name, s);
    }

    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    int64_t begin = 0, end = 0;
    int neg_b = 0, neg_e = 0;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        !json_uint(&begin, &neg_b, cJSON_GetArrayItem(offsets, 0)) ||
        !json_uint(&end, &neg_e, cJSON_GetArrayItem(offsets, 1)))
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE,
                       "tensor %s: \"data_offsets\" must be two non-negative integers [begin, end]", name);
    if (end < begin)
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE,
                       "tensor %s: data_offsets [%lld, %lld] end before they begin", name, (long long)begin,
                       (long long)end);
    if ((uint64_t)end > (uint64_t)data_size)
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE,
                       "tensor %s: data_offsets [%lld, %lld] run past the end of the data buffer (%zu bytes)", name,
                       (long long)begin, (long long)end, data_size);
    if ((uint64_t)(end - begin) != (uint64_t)bytes) {
        char s[IO_NAME_LEN * 2];
        format_shape(s, sizeof(s), t->shape, t->ndim);
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE,
                       "tensor %s: data_offsets [%lld, %lld] hold %lld bytes but %s shape %s needs %zu", name,
                       (long long)begin, (long long)end, (long long)(end - begin), ttl_dtype_name(t->dtype), s,
                       bytes);
    }
    t->begin = (size_t)begin;
    t->end = (size_t)end;
    t->name = dup_string(entry->string);
    if (t->name == NULL) return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory reading the header");
    return TTL_STATUS_SUCCESS;
}

// ---- metadata ------------------------------------------------------------------------------------------------

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static ttl_status_t parse_metadata(struct ttl_file *file, const cJSON *meta, char *msg, size_t msg_len) {
    if (!cJSON_IsObject(meta))
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "\"__metadata__\" is not a JSON object of strings");
    const int n = cJSON_GetArraySize(meta);
    /* keys and values live in one array of pairs so that sorting keeps them together */
    char **pairs = calloc((size_t)n + 1, 2 * sizeof(char *));
    if (pairs == NULL) return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory reading the header");
    file->meta = pairs; /* freed through io_file_free */
    const cJSON *item;
    int i = 0;
    cJSON_ArrayForEach(item, meta) {
        char q[IO_NAME_LEN];
        if (!cJSON_IsString(item))
            return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "metadata %s: value is not a string",
                           io_quote(q, item->string));
        pairs[2 * i] = dup_string(item->string);
        pairs[2 * i + 1] = dup_string(item->valuestring);
        file->num_meta = i + 1;
        if (pairs[2 * i] == NULL || pairs[2 * i + 1] == NULL)
            return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory reading the header");
        ++i;
    }
    qsort(pairs, (size_t)n, 2 * sizeof(char *), compare_strings);
    for (int k = 1; k < n; ++k) {
        char q[IO_NAME_LEN];
        if (strcmp(pairs[2 * k - 2], pairs[2 * k]) == 0)
            return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "metadata key %s appears twice",
                           io_quote(q, pairs[2 * k]));
    }
    return TTL_STATUS_SUCCESS;
}

// ---- the whole header ----------------------------------------------------------------------------------------

static int compare_offsets(const void *a, const void *b) {
    const io_tensor_t *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int compare_tensor_names(const void *a, const void *b) {
    const io_tensor_t *x = *(const io_tensor_t *const *)a, *y = *(const io_tensor_t *const *)b;
    return strcmp(x->name, y->name);
}

static ttl_status_t check_tiling(const struct ttl_file *file, char *msg, size_t msg_len) {
    size_t expected = 0;
    for (int64_t i = 0; i < file->num_tensors; ++i) {
        const io_tensor_t *t = &file->tensors[i];
        char q[IO_NAME_LEN], p[IO_NAME_LEN];
        if (t->begin < expected)
            return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE,
                           "tensor %s: data_offsets [%zu, %zu] overlap tensor %s [%zu, %zu]", io_quote(q, t->name),
                           t->begin, t->end, io_quote(p, file->tensors[i - 1].name), file->tensors[i - 1].begin,
                           file->tensors[i - 1].end);
        if (t->begin > expected)
            return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE,
                           "tensor %s: data_offsets [%zu, %zu] leave a gap of %zu bytes before them",
                           io_quote(q, t->name), t->begin, t->end, t->begin - expected);
        expected = t->end;
    }
    if (expected != file->data_size)
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE,
                       "%zu bytes at the end of the data buffer (%zu bytes) belong to no tensor",
                       file->data_size - expected, file->data_size);
    return TTL_STATUS_SUCCESS;
}

static ttl_status_t parse_json(struct ttl_file *file, const cJSON *root, char *msg, size_t msg_len) {
    if (!cJSON_IsObject(root)) return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "header is not a JSON object");
    int64_t count = 0;
    const cJSON *item;
    const cJSON *meta = NULL;
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (meta != NULL) return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "\"__metadata__\" appears twice");
            meta = item;
        } else {
            ++count;
        }
    }
    if (meta != NULL) TTL_TRY(parse_metadata(file, meta, msg, msg_len));

    file->tensors = calloc((size_t)count + 1, sizeof(io_tensor_t));
    file->by_name = calloc((size_t)count + 1, sizeof(int64_t));
    io_tensor_t **order = calloc((size_t)count + 1, sizeof(io_tensor_t *));
    if (file->tensors == NULL || file->by_name == NULL || order == NULL) {
        free(order);
        return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory reading the header");
    }
    cJSON_ArrayForEach(item, root) {
        if (item == meta) continue;
        ttl_status_t st = parse_tensor(&file->tensors[file->num_tensors], item, file->data_size, msg, msg_len);
        if (st != TTL_STATUS_SUCCESS) {
            free(order);
            return st;
        }
        ++file->num_tensors;
    }
    qsort(file->tensors, (size_t)count, sizeof(io_tensor_t), compare_offsets);
    for (int64_t i = 0; i < count; ++i) order[i] = &file->tensors[i];
    qsort(order, (size_t)count, sizeof(io_tensor_t *), compare_tensor_names);
    for (int64_t i = 0; i < count; ++i) {
        file->by_name[i] = order[i] - file->tensors;
        char q[IO_NAME_LEN];
        if (i > 0 && strcmp(order[i - 1]->name, order[i]->name) == 0) {
            io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "tensor name %s appears twice", io_quote(q, order[i]->name));
            free(order);
            return TTL_STATUS_BAD_FILE;
        }
    }
    free(order);
    return check_tiling(file, msg, msg_len);
}

ttl_status_t io_parse(struct ttl_file *file, char *msg, size_t msg_len) {
    const unsigned char *b = file->bytes;
    if (file->size < HEADER_LENGTH_BYTES)
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE,
                       "truncated file: %zu bytes, fewer than the 8-byte header length", file->size);
    uint64_t n = 0;
    for (int i = HEADER_LENGTH_BYTES - 1; i >= 0; --i) n = (n << 8) | b[i];
    if (n > TTL_IO_MAX_HEADER_BYTES)
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "header length %llu exceeds the limit of %llu bytes",
                       (unsigned long long)n, (unsigned long long)TTL_IO_MAX_HEADER_BYTES);
    if (n > file->size - HEADER_LENGTH_BYTES)
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE,
                       "header length %llu runs past the end of the file (%zu bytes after the length)",
                       (unsigned long long)n, file->size - HEADER_LENGTH_BYTES);
    const char *header = (const char *)b + HEADER_LENGTH_BYTES;
    const size_t header_len = (size_t)n;
    file->data = b + HEADER_LENGTH_BYTES + header_len;
    file->data_size = file->size - HEADER_LENGTH_BYTES - header_len;
    if (!io_utf8_valid((const unsigned char *)header, header_len))
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "header is not valid UTF-8 text");
    if (header_len == 0 || header[0] != '{')
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "header does not start with '{'");

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(header, header_len, &end, 0);
    if (root == NULL) {
        const size_t at = (end != NULL && end >= header && end <= header + header_len) ? (size_t)(end - header) : 0;
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "header is not valid JSON (error near byte %zu of %zu)",
                       at, header_len);
    }
    for (const char *p = end; p < header + header_len; ++p)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE,
                           "header has bytes after its JSON object (at byte %zu)", (size_t)(p - header));
        }
    ttl_status_t st = parse_json(file, root, msg, msg_len);
    cJSON_Delete(root);
    TTL_TRY(st);
    return io_parse_layers(file, msg, msg_len);
}

// ---- lookup and teardown -------------------------------------------------------------------------------------

int64_t io_find_tensor(const struct ttl_file *file, const char *name) {
    int64_t lo = 0, hi = file->num_tensors;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        const int c = strcmp(file->tensors[file->by_name[mid]].name, name);
        if (c == 0) return file->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int64_t io_find_meta(const struct ttl_file *file, const char *key) {
    int64_t lo = 0, hi = file->num_meta;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        const int c = strcmp(file->meta[2 * mid], key);
        if (c == 0) return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

void io_file_free(struct ttl_file *file) {
    if (file == NULL) return;
    for (int64_t i = 0; i < file->num_tensors; ++i) free(file->tensors[i].name);
    for (int64_t i = 0; i < 2 * file->num_meta; ++i) free(file->meta[i]);
    for (int64_t i = 0; i < file->num_layers; ++i) free(file->layers[i].name);
    free(file->tensors);
    free(file->by_name);
    free(file->meta);
    free(file->layers);
    free(file->bytes);
    free(file);
}
