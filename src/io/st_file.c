/*
 * Opening a model file (from a path or from memory), and the queries and reads on an opened file. All
 * checking happens at open (st_parse.c, st_layers.c); the reads below only look things up, convert to float
 * and pack TT cores in the order of ttl.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "io/io_internal.h"

// ---- open and close ------------------------------------------------------------------------------------------

/* Takes ownership of `bytes` (malloc'd, `size` long) and parses them. */
static ttl_status_t open_bytes(ttl_file_t **file, unsigned char *bytes, size_t size, char *msg, size_t msg_len) {
    struct ttl_file *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        free(bytes);
        return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory opening a file of %zu bytes", size);
    }
    f->bytes = bytes;
    f->size = size;
    const ttl_status_t st = io_parse(f, msg, msg_len);
    if (st != TTL_STATUS_SUCCESS) {
        io_file_free(f);
        return st;
    }
    *file = f;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_file_open_memory(ttl_file_t **file, const void *data, size_t bytes, char *msg, size_t msg_len) {
    if (file == NULL || (data == NULL && bytes > 0))
        return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer passed to ttl_file_open_memory");
    unsigned char *copy = malloc(bytes + 1);
    if (copy == NULL)
        return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory copying %zu bytes", bytes);
    if (bytes > 0) memcpy(copy, data, bytes);
    return open_bytes(file, copy, bytes, msg, msg_len);
}

ttl_status_t ttl_file_open(ttl_file_t **file, const char *path, char *msg, size_t msg_len) {
    if (file == NULL || path == NULL)
        return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer passed to ttl_file_open");
    char q[IO_NAME_LEN];
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return io_fail(msg, msg_len, TTL_STATUS_IO_ERROR, "cannot open %s: %s", io_quote(q, path), strerror(errno));
    /* read in growing chunks: works for pipes too and never trusts a size reported in advance */
    size_t cap = 1 << 16, size = 0;
    unsigned char *bytes = malloc(cap);
    ttl_status_t st = TTL_STATUS_SUCCESS;
    while (bytes != NULL) {
        if (size == cap) {
            unsigned char *grown = cap <= SIZE_MAX / 2 ? realloc(bytes, cap * 2) : NULL;
            if (grown == NULL) break;
            bytes = grown;
            cap *= 2;
        }
        const size_t got = fread(bytes + size, 1, cap - size, fp);
        size += got;
        if (got == 0) break;
    }
    if (bytes == NULL || (size == cap && !feof(fp) && !ferror(fp)))
        st = io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory reading %s", io_quote(q, path));
    else if (ferror(fp))
        st = io_fail(msg, msg_len, TTL_STATUS_IO_ERROR, "cannot read %s: %s", io_quote(q, path), strerror(errno));
    fclose(fp);
    if (st != TTL_STATUS_SUCCESS) {
        free(bytes);
        return st;
    }
    return open_bytes(file, bytes, size, msg, msg_len);
}

void ttl_file_close(ttl_file_t *file) { io_file_free(file); }

// ---- tensors -------------------------------------------------------------------------------------------------

static void fill_tensor_info(ttl_tensor_info_t *info, const io_tensor_t *t) {
    memset(info, 0, sizeof(*info));
    info->name = t->name;
    info->dtype = t->dtype;
    info->ndim = t->ndim;
    memcpy(info->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    info->numel = t->numel;
    info->data_bytes = t->end - t->begin;
}

ttl_status_t ttl_file_tensor_count(int64_t *count, const ttl_file_t *file) {
    if (count == NULL || file == NULL) return TTL_STATUS_NULL_POINTER;
    *count = file->num_tensors;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_file_tensor_info(ttl_tensor_info_t *info, const ttl_file_t *file, int64_t index) {
    if (info == NULL || file == NULL) return TTL_STATUS_NULL_POINTER;
    if (index < 0 || index >= file->num_tensors) return TTL_STATUS_BAD_ARGUMENT;
    fill_tensor_info(info, &file->tensors[index]);
    return TTL_STATUS_SUCCESS;
}

static ttl_status_t lookup(const io_tensor_t **t, const ttl_file_t *file, const char *name, char *msg,
                           size_t msg_len) {
    if (file == NULL || name == NULL) return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer");
    const int64_t i = io_find_tensor(file, name);
    char q[IO_NAME_LEN];
    if (i < 0) return io_fail(msg, msg_len, TTL_STATUS_NOT_FOUND, "no tensor named %s", io_quote(q, name));
    *t = &file->tensors[i];
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_file_find_tensor(ttl_tensor_info_t *info, const ttl_file_t *file, const char *name, char *msg,
                                  size_t msg_len) {
    if (info == NULL) return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer");
    const io_tensor_t *t = NULL;
    TTL_TRY(lookup(&t, file, name, msg, msg_len));
    fill_tensor_info(info, t);
    return TTL_STATUS_SUCCESS;
}

/* A new float copy of a float tensor. */
static ttl_status_t to_f32(float **out, const ttl_file_t *file, const io_tensor_t *t, char *msg, size_t msg_len) {
    char q[IO_NAME_LEN];
    if (!io_dtype_is_float(t->dtype))
        return io_fail(msg, msg_len, TTL_STATUS_UNSUPPORTED,
                       "tensor %s has dtype %s; only F32, F16, BF16 and F64 convert to float", io_quote(q, t->name),
                       ttl_dtype_name(t->dtype));
    float *buf = malloc(sizeof(float) * (size_t)t->numel + 1);
    if (buf == NULL)
        return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory reading tensor %s",
                       io_quote(q, t->name));
    io_convert_to_f32(buf, file->data + t->begin, t->numel, t->dtype);
    *out = buf;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_file_read_f32(float **data, int64_t *count, const ttl_file_t *file, const char *name, char *msg,
                               size_t msg_len) {
    if (data == NULL) return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer");
    const io_tensor_t *t = NULL;
    TTL_TRY(lookup(&t, file, name, msg, msg_len));
    /* numel * 4 fits: numel * dtype size was checked, and dtype size >= 2 for float dtypes */
    TTL_TRY(to_f32(data, file, t, msg, msg_len));
    if (count != NULL) *count = t->numel;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_file_tensor_data(const void **data, size_t *bytes, const ttl_file_t *file, const char *name,
                                  char *msg, size_t msg_len) {
    if (data == NULL || bytes == NULL) return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer");
    const io_tensor_t *t = NULL;
    TTL_TRY(lookup(&t, file, name, msg, msg_len));
    *data = file->data + t->begin;
    *bytes = t->end - t->begin;
    return TTL_STATUS_SUCCESS;
}

// ---- metadata ------------------------------------------------------------------------------------------------

ttl_status_t ttl_file_metadata_count(int64_t *count, const ttl_file_t *file) {
    if (count == NULL || file == NULL) return TTL_STATUS_NULL_POINTER;
    *count = file->num_meta;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_file_metadata_entry(const char **key, const char **value, const ttl_file_t *file, int64_t index) {
    if (key == NULL || value == NULL || file == NULL) return TTL_STATUS_NULL_POINTER;
    if (index < 0 || index >= file->num_meta) return TTL_STATUS_BAD_ARGUMENT;
    *key = file->meta[2 * index];
    *value = file->meta[2 * index + 1];
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_file_metadata_get(const char **value, const ttl_file_t *file, const char *key) {
    if (value == NULL || file == NULL || key == NULL) return TTL_STATUS_NULL_POINTER;
    const int64_t i = io_find_meta(file, key);
    if (i < 0) return TTL_STATUS_NOT_FOUND;
    *value = file->meta[2 * i + 1];
    return TTL_STATUS_SUCCESS;
}

// ---- layers --------------------------------------------------------------------------------------------------

static void fill_layer_info(ttl_layer_info_t *info, const io_layer_t *l) {
    memset(info, 0, sizeof(*info));
    info->name = l->name;
    info->kind = l->kind;
    if (l->kind == TTL_LAYER_FC)
        info->fc = l->fc;
    else
        info->conv = l->conv;
    info->params = l->params;
    info->bias_count = l->bias_count;
}

ttl_status_t ttl_file_layer_count(int64_t *count, const ttl_file_t *file) {
    if (count == NULL || file == NULL) return TTL_STATUS_NULL_POINTER;
    *count = file->num_layers;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_file_layer_info(ttl_layer_info_t *info, const ttl_file_t *file, int64_t index) {
    if (info == NULL || file == NULL) return TTL_STATUS_NULL_POINTER;
    if (index < 0 || index >= file->num_layers) return TTL_STATUS_BAD_ARGUMENT;
    fill_layer_info(info, &file->layers[index]);
    return TTL_STATUS_SUCCESS;
}

static ttl_status_t find_layer(const io_layer_t **layer, const ttl_file_t *file, const char *name, char *msg,
                               size_t msg_len) {
    if (file == NULL || name == NULL) return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer");
    int64_t lo = 0, hi = file->num_layers;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        const int c = strcmp(file->layers[mid].name, name);
        if (c == 0) {
            *layer = &file->layers[mid];
            return TTL_STATUS_SUCCESS;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    char q[IO_NAME_LEN];
    return io_fail(msg, msg_len, TTL_STATUS_NOT_FOUND, "no TT layer named %s", io_quote(q, name));
}

ttl_status_t ttl_file_find_layer(ttl_layer_info_t *info, const ttl_file_t *file, const char *name, char *msg,
                                 size_t msg_len) {
    if (info == NULL) return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer");
    const io_layer_t *l = NULL;
    TTL_TRY(find_layer(&l, file, name, msg, msg_len));
    fill_layer_info(info, l);
    return TTL_STATUS_SUCCESS;
}

/* The packed cores and the bias of a checked layer, as new buffers. */
static ttl_status_t read_layer(float **cores, float **bias, const ttl_file_t *file, const io_layer_t *l, char *msg,
                               size_t msg_len) {
    char q[IO_NAME_LEN];
    float *packed = malloc(sizeof(float) * (size_t)l->params + 1);
    float *b = NULL;
    if (bias != NULL && l->bias_tensor >= 0) b = malloc(sizeof(float) * (size_t)l->bias_count + 1);
    if (packed == NULL || (bias != NULL && l->bias_tensor >= 0 && b == NULL)) {
        free(packed);
        free(b);
        return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory reading layer %s",
                       io_quote(q, l->name));
    }
    int64_t offset = 0;
    for (int32_t i = 0; i < l->num_parts; ++i) {
        const io_tensor_t *t = &file->tensors[l->parts[i]];
        io_convert_to_f32(packed + offset, file->data + t->begin, t->numel, t->dtype);
        offset += t->numel;
    }
    if (b != NULL) {
        const io_tensor_t *t = &file->tensors[l->bias_tensor];
        io_convert_to_f32(b, file->data + t->begin, t->numel, t->dtype);
    }
    *cores = packed;
    if (bias != NULL) *bias = b;
    return TTL_STATUS_SUCCESS;
}

static ttl_status_t wrong_kind(const io_layer_t *l, char *msg, size_t msg_len) {
    char q[IO_NAME_LEN];
    return io_fail(msg, msg_len, TTL_STATUS_BAD_ARGUMENT, "layer %s is a %s layer", io_quote(q, l->name),
                   l->kind == TTL_LAYER_FC ? "fc" : "conv");
}

ttl_status_t ttl_file_read_fc(ttl_fc_desc_t *desc, float **cores, float **bias, const ttl_file_t *file,
                              const char *name, char *msg, size_t msg_len) {
    if (desc == NULL || cores == NULL) return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer");
    const io_layer_t *l = NULL;
    TTL_TRY(find_layer(&l, file, name, msg, msg_len));
    if (l->kind != TTL_LAYER_FC) return wrong_kind(l, msg, msg_len);
    TTL_TRY(read_layer(cores, bias, file, l, msg, msg_len));
    *desc = l->fc;
    return TTL_STATUS_SUCCESS;
}

ttl_status_t ttl_file_read_conv(ttl_conv_desc_t *desc, float **cores, float **bias, const ttl_file_t *file,
                                const char *name, char *msg, size_t msg_len) {
    if (desc == NULL || cores == NULL) return io_fail(msg, msg_len, TTL_STATUS_NULL_POINTER, "null pointer");
    const io_layer_t *l = NULL;
    TTL_TRY(find_layer(&l, file, name, msg, msg_len));
    if (l->kind != TTL_LAYER_CONV) return wrong_kind(l, msg, msg_len);
    TTL_TRY(read_layer(cores, bias, file, l, msg, msg_len));
    *desc = l->conv;
    return TTL_STATUS_SUCCESS;
}
