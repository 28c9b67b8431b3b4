/*
 * The safetensors writer. Tensors (dense, or the parts of TT layers) are copied in as little-endian bytes and
 * written out in a fixed order: element size descending, then name, as Python's safetensors orders by dtype
 * for alignment; the "__metadata__" keys sorted by name. The JSON header is compact and padded with spaces to
 * a multiple of 8 bytes, as Python's safetensors pads it, so equal content gives byte-identical files.
 * Saving writes a temporary file in the target's directory and renames it over the target only once every
 * byte is written and synced: a failure leaves no partial file, and an existing file untouched.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/check.h"
#include "io/io_internal.h"

#define HEADER_ALIGN 8
#define TMP_SUFFIX ".tmp.XXXXXX"

typedef struct w_tensor {
    char *name;
    ttl_dtype_t dtype;
    int32_t ndim;
    int64_t shape[TTL_IO_MAX_DIMS];
    unsigned char *data;
    size_t bytes;
} w_tensor_t;

struct ttl_writer {
    w_tensor_t *tensors;
    int64_t num_tensors, cap_tensors;
    char **meta; /* key, value pairs */
    int64_t num_meta, cap_meta;
    int64_t num_layers;
};

static char *dup_string(const char *s) {
    const size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL) memcpy(d, s, n);
    return d;
}

static int valid_text(const char *s) { return io_utf8_valid((const unsigned char *)s, strlen(s)); }

// ---- create, destroy -----------------------------------------------------------------------------------------

ttl_status_t ttl_writer_create(ttl_writer_t **writer) {
    if (writer == NULL) return TTL_STATUS_NULL_POINTER;
    ttl_writer_t *w = calloc(1, sizeof(*w));
    if (w == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    *writer = w;
    return TTL_STATUS_SUCCESS;
}

static void pop_tensors(ttl_writer_t *w, int64_t keep) {
    while (w->num_tensors > keep) {
        w_tensor_t *t = &w->tensors[--w->num_tensors];
        free(t->name);
        free(t->data);
    }
}

void ttl_writer_destroy(ttl_writer_t *writer) {
    if (writer == NULL) return;
    pop_tensors(writer, 0);
    for (int64_t i = 0; i < 2 * writer->num_meta; ++i) free(writer->meta[i]);
    free(writer->tensors);
    free(writer->meta);
    free(writer);
}

// ---- adding tensors ------------------------------------------------------------------------------------------

static int has_tensor(const ttl_writer_t *w, const char *name) {
    for (int64_t i = 0; i < w->num_tensors; ++i)
        if (strcmp(w->tensors[i].name, name) == 0) return 1;
    return 0;
}

static ttl_status_t check_new_name(const ttl_writer_t *w, const char *name, char *msg, size_t msg_len) {
    char q[IO_NAME_LEN];
    if (name[0] == '\0') return io_fail(msg, msg_len, TTL_STATUS_BAD_ARGUMENT, "empty tensor name");
    if (!valid_text(name)) return io_fail(msg, msg_len, TTL_STATUS_BAD_ARGUMENT, "tensor name is not UTF-8 text");
    if (strcmp(name, "__metadata__") == 0)
        return io_fail(msg, msg_len, TTL_STATUS_BAD_ARGUMENT, "\"__metadata__\" cannot name a tensor");
    if (has_tensor(w, name))
        return io_fail(msg, msg_len, TTL_STATUS_BAD_ARGUMENT, "tensor %s is already in the writer",
                       io_quote(q, name));
    return TTL_STATUS_SUCCESS;
}

/* Appends a tensor whose data is already little-endian bytes (copied, or taken when `take` is set). */
static ttl_status_t push_tensor(ttl_writer_t *w, const char *name, ttl_dtype_t dtype, const int64_t *shape,
                                int32_t ndim, unsigned char *bytes, size_t nbytes) {
    if (w->num_tensors == w->cap_tensors) {
        const int64_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        w_tensor_t *grown = realloc(w->tensors, sizeof(w_tensor_t) * (size_t)cap);
        if (grown == NULL) return TTL_STATUS_OUT_OF_MEMORY;
        w->tensors = grown;
        w->cap_tensors = cap;
    }
    w_tensor_t *t = &w->tensors[w->num_tensors];
    memset(t, 0, sizeof(*t));
    t->name = dup_string(name);
    if (t->name == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim > 0) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    t->data = bytes;
    t->bytes = nbytes;
    ++w->num_tensors;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_writer_add_tensor(ttl_writer_t *writer, const char *name, ttl_dtype_t dtype, const int64_t *shape,
                                   int32_t ndim, const void *data, char *msg, size_t msg_len) {
    if (writer == NULL || name == NULL || (shape == NULL && ndim > 0))
        return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer passed to ttl_writer_add_tensor");
    TTL_TRY(check_new_name(writer, name, msg, msg_len));
    char q[IO_NAME_LEN];
    const size_t elem = ttl_dtype_size(dtype);
    if (elem == 0)
        return io_fail(msg, msg_len, TTL_STATUS_BAD_ARGUMENT, "tensor %s: unknown dtype", io_quote(q, name));
    if (ndim < 0 || ndim > TTL_IO_MAX_DIMS)
        return io_fail(msg, msg_len, TTL_STATUS_BAD_ARGUMENT, "tensor %s: %d dimensions, not 0..%d",
                       io_quote(q, name), (int)ndim, TTL_IO_MAX_DIMS);
    int64_t numel = 1;
    for (int32_t i = 0; i < ndim; ++i) {
        if (shape[i] < 0)
            return io_fail(msg, msg_len, TTL_STATUS_BAD_SIZE, "tensor %s: negative dimension", io_quote(q, name));
        if (ttl_mul_i64(&numel, numel, shape[i]) != TTL_STATUS_SUCCESS)
            return io_fail(msg, msg_len, TTL_STATUS_OVERFLOW, "tensor %s: element count overflows",
                           io_quote(q, name));
    }
    size_t nbytes;
    if (ttl_bytes(&nbytes, numel, elem) != TTL_STATUS_SUCCESS || nbytes > (size_t)IO_MAX_JSON_INT)
        return io_fail(msg, msg_len, TTL_STATUS_OVERFLOW, "tensor %s: byte size overflows", io_quote(q, name));
    if (data == NULL && nbytes > 0)
        return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "tensor %s: data is NULL", io_quote(q, name));
    unsigned char *copy = malloc(nbytes + 1);
    if (copy == NULL)
        return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory copying tensor %s",
                       io_quote(q, name));
    if (nbytes > 0) memcpy(copy, data, nbytes);
    if (push_tensor(writer, name, dtype, shape, ndim, copy, nbytes) != TTL_STATUS_SUCCESS) {
        free(copy);
        return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory adding tensor %s", io_quote(q, name));
    }
    return TTL_STATUS_SUCCESS;
}

// ---- metadata ------------------------------------------------------------------------------------------------

/* Sets key = value, replacing an existing value; reserved keys are the caller's business. */
static ttl_status_t put_meta(ttl_writer_t *w, const char *key, const char *value) {
    char *v = dup_string(value);
    if (v == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    for (int64_t i = 0; i < w->num_meta; ++i)
        if (strcmp(w->meta[2 * i], key) == 0) {
            free(w->meta[2 * i + 1]);
            w->meta[2 * i + 1] = v;
            return TTL_STATUS_SUCCESS;
        }
    if (w->num_meta == w->cap_meta) {
        const int64_t cap = w->cap_meta ? 2 * w->cap_meta : 8;
        char **grown = realloc(w->meta, 2 * sizeof(char *) * (size_t)cap);
        if (grown == NULL) {
            free(v);
            return TTL_STATUS_OUT_OF_MEMORY;
        }
        w->meta = grown;
        w->cap_meta = cap;
    }
    char *k = dup_string(key);
    if (k == NULL) {
        free(v);
        return TTL_STATUS_OUT_OF_MEMORY;
    }
    w->meta[2 * w->num_meta] = k;
    w->meta[2 * w->num_meta + 1] = v;
    ++w->num_meta;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_writer_set_metadata(ttl_writer_t *writer, const char *key, const char *value, char *msg,
                                     size_t msg_len) {
    if (writer == NULL || key == NULL || value == NULL)
        return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer passed to ttl_writer_set_metadata");
    char q[IO_NAME_LEN];
    if (strncmp(key, IO_META_RESERVED_PREFIX, strlen(IO_META_RESERVED_PREFIX)) == 0)
        return io_fail(msg, msg_len, TTL_STATUS_BAD_ARGUMENT, "metadata key %s is reserved for libttl",
                       io_quote(q, key));
    if (!valid_text(key) || !valid_text(value))
        return io_fail(msg, msg_len, TTL_STATUS_BAD_ARGUMENT, "metadata %s: key or value is not UTF-8 text",
                       io_quote(q, key));
    if (put_meta(writer, key, value) != TTL_STATUS_SUCCESS)
        return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory setting metadata %s",
                       io_quote(q, key));
    return TTL_STATUS_SUCCESS;
}

// ---- a growing text buffer -----------------------------------------------------------------------------------

typedef struct text {
    char *s;
    size_t len, cap;
    int failed; /* an allocation failed: the text is incomplete */
} text_t;

static void put_bytes(text_t *t, const char *s, size_t n) {
    if (t->failed) return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1) cap *= 2;
        char *grown = realloc(t->s, cap);
        if (grown == NULL) {
            t->failed = 1;
            return;
        }
        t->s = grown;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void put(text_t *t, const char *s) { put_bytes(t, s, strlen(s)); }

static void put_int(text_t *t, long long v) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", v);
    put(t, buf);
}

/* A JSON string literal: quotes, backslashes and control characters escaped, other bytes (UTF-8) as they are. */
static void put_json_string(text_t *t, const char *s) {
    put(t, "\"");
    for (; *s; ++s) {
        const unsigned char c = (unsigned char)*s;
        char esc[8];
        switch (c) {
        case '"': put(t, "\\\""); break;
        case '\\': put(t, "\\\\"); break;
        case '\n': put(t, "\\n"); break;
        case '\r': put(t, "\\r"); break;
        case '\t': put(t, "\\t"); break;
        case '\b': put(t, "\\b"); break;
        case '\f': put(t, "\\f"); break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                put(t, esc);
            } else {
                put_bytes(t, (const char *)s, 1);
            }
        }
    }
    put(t, "\"");
}

static void put_int_array(text_t *t, const int64_t *v, int32_t n) {
    put(t, "[");
    for (int32_t i = 0; i < n; ++i) {
        if (i) put(t, ",");
        put_int(t, (long long)v[i]);
    }
    put(t, "]");
}

// ---- TT layers -----------------------------------------------------------------------------------------------

/* The metadata JSON of a layer (docs/FORMAT.md): kind, modes, ranks, conv geometry, bias. */
static void layer_json(text_t *t, const ttl_fc_desc_t *f, const ttl_conv_desc_t *conv, int has_bias) {
    put(t, conv ? "{\"kind\":\"conv\",\"out_modes\":" : "{\"kind\":\"fc\",\"out_modes\":");
    put_int_array(t, f->out_modes, f->num_cores);
    put(t, ",\"in_modes\":");
    put_int_array(t, f->in_modes, f->num_cores);
    put(t, ",\"ranks\":");
    put_int_array(t, f->ranks, f->num_cores + 1);
    if (conv) {
        const int64_t kernel[2] = {conv->kernel_h, conv->kernel_w}, stride[2] = {conv->stride_h, conv->stride_w};
        const int64_t pad[2] = {conv->pad_h, conv->pad_w}, dil[2] = {conv->dilation_h, conv->dilation_w};
        put(t, ",\"kernel\":");
        put_int_array(t, kernel, 2);
        put(t, ",\"stride\":");
        put_int_array(t, stride, 2);
        put(t, ",\"padding\":");
        put_int_array(t, pad, 2);
        put(t, ",\"dilation\":");
        put_int_array(t, dil, 2);
    }
    put(t, has_bias ? ",\"bias\":true}" : ",\"bias\":false}");
}

/* Adds one part of a layer as an F32 tensor from `n` floats. */
static ttl_status_t push_f32(ttl_writer_t *w, const char *name, const int64_t *shape, int32_t ndim,
                             const float *src, int64_t n) {
    unsigned char *bytes = malloc(sizeof(float) * (size_t)n + 1);
    if (bytes == NULL) return TTL_STATUS_OUT_OF_MEMORY;
    io_store_f32(bytes, src, n);
    if (push_tensor(w, name, TTL_DTYPE_F32, shape, ndim, bytes, sizeof(float) * (size_t)n) != TTL_STATUS_SUCCESS) {
        free(bytes);
        return TTL_STATUS_OUT_OF_MEMORY;
    }
    return TTL_STATUS_SUCCESS;
}

/* Adds every part of a layer, or nothing: names are checked first, and an allocation failure rolls back. */
static ttl_status_t add_layer(ttl_writer_t *w, const char *name, const ttl_fc_desc_t *f,
                              const ttl_conv_desc_t *conv, const float *cores, const float *bias,
                              int64_t bias_count, char *msg, size_t msg_len) {
    char q[IO_NAME_LEN];
    if (name[0] == '\0' || !valid_text(name))
        return io_fail(msg, msg_len, TTL_STATUS_BAD_ARGUMENT, "layer name is empty or not UTF-8 text");
    const size_t cap = strlen(name) + 32 + strlen(IO_META_LAYER_PREFIX);
    char *buf = malloc(cap);
    if (buf == NULL) return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory");
    const int32_t parts = f->num_cores + (conv ? 1 : 0);
    ttl_status_t st = TTL_STATUS_SUCCESS;
    snprintf(buf, cap, "%s%s", IO_META_LAYER_PREFIX, name);
    for (int64_t i = 0; i < w->num_meta; ++i)
        if (strcmp(w->meta[2 * i], buf) == 0)
            st = io_fail(msg, msg_len, TTL_STATUS_BAD_ARGUMENT, "layer %s is already in the writer",
                         io_quote(q, name));
    for (int32_t p = 0; p <= parts && st == TTL_STATUS_SUCCESS; ++p) {
        if (p == parts && bias == NULL) break;
        if (p == parts)
            snprintf(buf, cap, "%s%s", name, IO_BIAS_SUFFIX);
        else if (conv && p == 0)
            snprintf(buf, cap, "%s%s", name, IO_SPATIAL_SUFFIX);
        else
            snprintf(buf, cap, "%s%s%d", name, IO_CORE_SUFFIX, (int)(p - (conv ? 1 : 0)));
        st = check_new_name(w, buf, msg, msg_len);
    }

    const int64_t keep = w->num_tensors;
    int64_t offset = 0;
    for (int32_t p = 0; p < parts && st == TTL_STATUS_SUCCESS; ++p) {
        int64_t shape[4];
        int32_t ndim = 4;
        if (conv && p == 0) {
            shape[0] = conv->kernel_h, shape[1] = conv->kernel_w, shape[2] = conv->ranks[0], ndim = 3;
            snprintf(buf, cap, "%s%s", name, IO_SPATIAL_SUFFIX);
        } else {
            const int32_t k = p - (conv ? 1 : 0);
            shape[0] = f->ranks[k], shape[1] = f->out_modes[k], shape[2] = f->in_modes[k],
            shape[3] = f->ranks[k + 1];
            snprintf(buf, cap, "%s%s%d", name, IO_CORE_SUFFIX, (int)k);
        }
        int64_t n = 1;
        for (int32_t i = 0; i < ndim; ++i) n *= shape[i]; /* fits: the descriptor was checked */
        st = push_f32(w, buf, shape, ndim, cores + offset, n);
        offset += n;
    }
    if (st == TTL_STATUS_SUCCESS && bias != NULL) {
        snprintf(buf, cap, "%s%s", name, IO_BIAS_SUFFIX);
        st = push_f32(w, buf, &bias_count, 1, bias, bias_count);
    }
    if (st == TTL_STATUS_SUCCESS) {
        text_t json = {0};
        layer_json(&json, f, conv, bias != NULL);
        snprintf(buf, cap, "%s%s", IO_META_LAYER_PREFIX, name);
        st = json.failed ? TTL_STATUS_OUT_OF_MEMORY : put_meta(w, buf, json.s);
        free(json.s);
    }
    free(buf);
    if (st == TTL_STATUS_OUT_OF_MEMORY) {
        pop_tensors(w, keep);
        return io_fail(msg, msg_len, st, "out of memory adding layer %s", io_quote(q, name));
    }
    if (st == TTL_STATUS_SUCCESS) ++w->num_layers;
    return st;
}

ttl_status_t ttl_writer_add_fc(ttl_writer_t *writer, const char *name, const ttl_fc_desc_t *desc,
                               const float *cores, const float *bias, char *msg, size_t msg_len) {
    if (writer == NULL || name == NULL || desc == NULL || cores == NULL)
        return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer passed to ttl_writer_add_fc");
    const ttl_status_t st = ttl_fc_desc_check(desc);
    char q[IO_NAME_LEN];
    if (st != TTL_STATUS_SUCCESS)
        return io_fail(msg, msg_len, st, "layer %s: invalid descriptor (%s)", io_quote(q, name),
                       ttl_status_string(st));
    return add_layer(writer, name, desc, NULL, cores, bias, desc->out_features, msg, msg_len);
}

ttl_status_t ttl_writer_add_conv(ttl_writer_t *writer, const char *name, const ttl_conv_desc_t *desc,
                                 const float *cores, const float *bias, char *msg, size_t msg_len) {
    if (writer == NULL || name == NULL || desc == NULL || cores == NULL)
        return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer passed to ttl_writer_add_conv");
    const ttl_status_t st = ttl_conv_desc_check(desc);
    char q[IO_NAME_LEN];
    if (st != TTL_STATUS_SUCCESS)
        return io_fail(msg, msg_len, st, "layer %s: invalid descriptor (%s)", io_quote(q, name),
                       ttl_status_string(st));
    ttl_fc_desc_t chan;
    ttl_conv_channel_desc(&chan, desc);
    return add_layer(writer, name, &chan, desc, cores, bias, desc->out_channels, msg, msg_len);
}

// ---- the header ----------------------------------------------------------------------------------------------

static int compare_tensors(const void *a, const void *b) {
    const w_tensor_t *x = *(const w_tensor_t *const *)a, *y = *(const w_tensor_t *const *)b;
    const size_t sx = ttl_dtype_size(x->dtype), sy = ttl_dtype_size(y->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int compare_meta(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The padded JSON header and the tensors in file order (a new array). */
static ttl_status_t build_header(text_t *header, const w_tensor_t ***order, const ttl_writer_t *w) {
    const w_tensor_t **ord = malloc(sizeof(*ord) * ((size_t)w->num_tensors + 1));
    char **meta = malloc(2 * sizeof(char *) * ((size_t)w->num_meta + 1));
    if (ord == NULL || meta == NULL) {
        free(ord);
        free(meta);
        return TTL_STATUS_OUT_OF_MEMORY;
    }
    for (int64_t i = 0; i < w->num_tensors; ++i) ord[i] = &w->tensors[i];
    qsort(ord, (size_t)w->num_tensors, sizeof(*ord), compare_tensors);
    int64_t nm = w->num_meta;
    if (nm > 0) memcpy(meta, w->meta, 2 * sizeof(char *) * (size_t)nm);
    char version[16];
    snprintf(version, sizeof(version), "%d", TTL_IO_FORMAT_VERSION);
    if (w->num_layers > 0) {
        meta[2 * nm] = IO_META_VERSION;
        meta[2 * nm + 1] = version;
        ++nm;
    }
    qsort(meta, (size_t)nm, 2 * sizeof(char *), compare_meta);

    text_t *t = header;
    put(t, "{");
    if (nm > 0) {
        put(t, "\"__metadata__\":{");
        for (int64_t i = 0; i < nm; ++i) {
            if (i) put(t, ",");
            put_json_string(t, meta[2 * i]);
            put(t, ":");
            put_json_string(t, meta[2 * i + 1]);
        }
        put(t, "}");
    }
    size_t offset = 0;
    for (int64_t i = 0; i < w->num_tensors; ++i) {
        const w_tensor_t *x = ord[i];
        if (nm > 0 || i > 0) put(t, ",");
        put_json_string(t, x->name);
        put(t, ":{\"dtype\":\"");
        put(t, ttl_dtype_name(x->dtype));
        put(t, "\",\"shape\":");
        put_int_array(t, x->shape, x->ndim);
        put(t, ",\"data_offsets\":[");
        put_int(t, (long long)offset);
        put(t, ",");
        put_int(t, (long long)(offset + x->bytes));
        put(t, "]}");
        offset += x->bytes;
    }
    put(t, "}");
    while (!t->failed && t->len % HEADER_ALIGN != 0) put(t, " ");
    free(meta);
    if (t->failed) {
        free(ord);
        return TTL_STATUS_OUT_OF_MEMORY;
    }
    *order = ord;
    return TTL_STATUS_SUCCESS;
}

static void store_le64(unsigned char out[8], uint64_t v) {
    for (int i = 0; i < 8; ++i) out[i] = (unsigned char)(v >> (8 * i));
}

// ---- output --------------------------------------------------------------------------------------------------

ttl_status_t ttl_writer_serialize(void **data, size_t *bytes, const ttl_writer_t *writer, char *msg,
                                  size_t msg_len) {
    if (data == NULL || bytes == NULL || writer == NULL)
        return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer passed to ttl_writer_serialize");
    text_t header = {0};
    const w_tensor_t **order;
    if (build_header(&header, &order, writer) != TTL_STATUS_SUCCESS) {
        free(header.s);
        return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory building the header");
    }
    size_t total = 8 + header.len;
    for (int64_t i = 0; i < writer->num_tensors; ++i) total += order[i]->bytes;
    unsigned char *out = malloc(total);
    if (out == NULL) {
        free(header.s);
        free(order);
        return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory for a file of %zu bytes", total);
    }
    store_le64(out, header.len);
    memcpy(out + 8, header.s, header.len);
    size_t o = 8 + header.len;
    for (int64_t i = 0; i < writer->num_tensors; ++i) {
        if (order[i]->bytes > 0) memcpy(out + o, order[i]->data, order[i]->bytes);
        o += order[i]->bytes;
    }
    free(header.s);
    free(order);
    *data = out;
    *bytes = total;
    return TTL_STATUS_SUCCESS;
}

/* Writes all n bytes, retrying short writes and interrupted calls. */
static int write_all(int fd, const void *p, size_t n) {
    const unsigned char *b = p;
    while (n > 0) {
        const ssize_t got = write(fd, b, n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 0;
        b += got;
        n -= (size_t)got;
    }
    return 1;
}

ttl_status_t ttl_writer_save(const ttl_writer_t *writer, const char *path, char *msg, size_t msg_len) {
    if (writer == NULL || path == NULL)
        return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer passed to ttl_writer_save");
    char q[IO_NAME_LEN];
    text_t header = {0};
    const w_tensor_t **order;
    if (build_header(&header, &order, writer) != TTL_STATUS_SUCCESS) {
        free(header.s);
        return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory building the header");
    }
    const size_t tmp_len = strlen(path) + sizeof(TMP_SUFFIX);
    char *tmp = malloc(tmp_len);
    if (tmp == NULL) {
        free(header.s);
        free(order);
        return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory");
    }
    snprintf(tmp, tmp_len, "%s%s", path, TMP_SUFFIX);

    ttl_status_t st = TTL_STATUS_SUCCESS;
    const int fd = mkstemp(tmp);
    if (fd < 0) {
        st = io_fail(msg, msg_len, TTL_STATUS_IO_ERROR, "cannot create a temporary file beside %s: %s",
                     io_quote(q, path), strerror(errno));
    } else {
        unsigned char len[8];
        store_le64(len, header.len);
        int ok = write_all(fd, len, sizeof(len)) && write_all(fd, header.s, header.len);
        for (int64_t i = 0; ok && i < writer->num_tensors; ++i) ok = write_all(fd, order[i]->data, order[i]->bytes);
        /* mkstemp makes the file private; a model file is as readable as any other */
        ok = ok && fchmod(fd, S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH) == 0 && fsync(fd) == 0;
        const int saved = errno;
        if (close(fd) != 0 && ok)
            ok = 0;
        else
            errno = saved;
        if (ok && rename(tmp, path) != 0) ok = 0;
        if (!ok) {
            st = io_fail(msg, msg_len, TTL_STATUS_IO_ERROR, "cannot write %s: %s", io_quote(q, path),
                         strerror(errno));
            unlink(tmp);
        }
    }
    free(tmp);
    free(header.s);
    free(order);
    return st;
}
