/*
 * TT layers in a safetensors file: the metadata entry "ttl.layer.<name>" (a compact JSON object: kind, modes,
 * ranks, conv geometry, bias) and the tensors "<name>.tt_core.<k>", "<name>.tt_spatial" and "<name>.bias"
 * (docs/FORMAT.md). Checked at open: the format version, the descriptor (ttl_*_desc_check), every tensor
 * present with a float dtype, core ranks that chain from one tensor to the next, and shapes equal to what the
 * metadata describes. Afterwards a layer can always be read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/check.h"
#include "io/io_internal.h"

/* A layer's name and message context while it is checked. */
typedef struct layer_ctx {
    const char *name;    /* the layer name */
    char q[IO_NAME_LEN]; /* its quoted form */
    char *msg;
    size_t msg_len;
} layer_ctx_t;

// ---- the metadata JSON ---------------------------------------------------------------------------------------

/* An array of `count` integers in [0, 2^53] under `key`; count < 0 accepts 1..max entries and sets *count. */
static ttl_status_t get_ints(int64_t *out, int32_t *count, int32_t max, const cJSON *obj, const char *key,
                             layer_ctx_t *c) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
    const int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (n < 1 || n > max || (*count >= 0 && n != *count))
        return io_fail(c->msg, c->msg_len, TTL_STATUS_BAD_FILE,
                       "layer %s: metadata \"%s\" must be an array of %d integers", c->q, key,
                       *count >= 0 ? *count : max);
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        const double d = cJSON_IsNumber(v) ? v->valuedouble : -1.0;
        if (!(d >= 0 && d <= (double)IO_MAX_JSON_INT) || d != (double)(int64_t)d)
            return io_fail(c->msg, c->msg_len, TTL_STATUS_BAD_FILE,
                           "layer %s: metadata \"%s\" entry %d is not a non-negative integer", c->q, key, i);
        out[i++] = (int64_t)d;
    }
    *count = (int32_t)n;
    return TTL_STATUS_SUCCESS;
}

static ttl_status_t product(int64_t *out, const int64_t *modes, int32_t n, const char *key, layer_ctx_t *c) {
    if (ttl_product(out, modes, n) != TTL_STATUS_SUCCESS)
        return io_fail(c->msg, c->msg_len, TTL_STATUS_BAD_FILE,
                       "layer %s: metadata \"%s\" has a zero mode or a product that overflows", c->q, key);
    return TTL_STATUS_SUCCESS;
}

static ttl_status_t bad_desc(layer_ctx_t *c, ttl_status_t why) {
    return io_fail(c->msg, c->msg_len, TTL_STATUS_BAD_FILE, "layer %s: metadata describes no valid TT layer (%s)",
                   c->q, ttl_status_string(why));
}

/* Fills the layer's kind, descriptor, parameter count and bias flag from its parsed metadata object. */
static ttl_status_t layer_from_json(io_layer_t *layer, int *has_bias, const cJSON *obj, layer_ctx_t *c) {
    if (!cJSON_IsObject(obj))
        return io_fail(c->msg, c->msg_len, TTL_STATUS_BAD_FILE, "layer %s: metadata is not a JSON object", c->q);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    const int is_fc = cJSON_IsString(kind) && strcmp(kind->valuestring, "fc") == 0;
    const int is_conv = cJSON_IsString(kind) && strcmp(kind->valuestring, "conv") == 0;
    if (!is_fc && !is_conv)
        return io_fail(c->msg, c->msg_len, TTL_STATUS_BAD_FILE,
                       "layer %s: metadata \"kind\" must be \"fc\" or \"conv\"", c->q);
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(obj, "bias");
    if (bias != NULL && !cJSON_IsBool(bias))
        return io_fail(c->msg, c->msg_len, TTL_STATUS_BAD_FILE, "layer %s: metadata \"bias\" must be true or false",
                       c->q);
    *has_bias = cJSON_IsTrue(bias);

    int64_t out_modes[TTL_MAX_CORES], in_modes[TTL_MAX_CORES], ranks[TTL_MAX_CORES + 1];
    int32_t d = -1;
    TTL_TRY(get_ints(out_modes, &d, TTL_MAX_CORES, obj, "out_modes", c));
    int32_t d_in = d, d_ranks = d + 1;
    TTL_TRY(get_ints(in_modes, &d_in, TTL_MAX_CORES, obj, "in_modes", c));
    TTL_TRY(get_ints(ranks, &d_ranks, TTL_MAX_CORES + 1, obj, "ranks", c));
    int64_t out_dim = 0, in_dim = 0;
    TTL_TRY(product(&out_dim, out_modes, d, "out_modes", c));
    TTL_TRY(product(&in_dim, in_modes, d, "in_modes", c));
    const size_t mode_bytes = sizeof(int64_t) * (size_t)d, rank_bytes = sizeof(int64_t) * (size_t)(d + 1);

    ttl_status_t st;
    if (is_fc) {
        ttl_fc_desc_t *f = &layer->fc;
        layer->kind = TTL_LAYER_FC;
        f->out_features = out_dim, f->in_features = in_dim, f->num_cores = d;
        memcpy(f->out_modes, out_modes, mode_bytes);
        memcpy(f->in_modes, in_modes, mode_bytes);
        memcpy(f->ranks, ranks, rank_bytes);
        if ((st = ttl_fc_param_count(&layer->params, f)) != TTL_STATUS_SUCCESS) return bad_desc(c, st);
        layer->bias_count = *has_bias ? out_dim : 0;
        return TTL_STATUS_SUCCESS;
    }
    ttl_conv_desc_t *v = &layer->conv;
    layer->kind = TTL_LAYER_CONV;
    v->out_channels = out_dim, v->in_channels = in_dim, v->num_cores = d;
    memcpy(v->out_modes, out_modes, mode_bytes);
    memcpy(v->in_modes, in_modes, mode_bytes);
    memcpy(v->ranks, ranks, rank_bytes);
    int64_t pair[2];
    int32_t two = 2;
    TTL_TRY(get_ints(pair, &two, 2, obj, "kernel", c));
    v->kernel_h = pair[0], v->kernel_w = pair[1];
    TTL_TRY(get_ints(pair, &two, 2, obj, "stride", c));
    v->stride_h = pair[0], v->stride_w = pair[1];
    TTL_TRY(get_ints(pair, &two, 2, obj, "padding", c));
    v->pad_h = pair[0], v->pad_w = pair[1];
    TTL_TRY(get_ints(pair, &two, 2, obj, "dilation", c));
    v->dilation_h = pair[0], v->dilation_w = pair[1];
    if ((st = ttl_conv_desc_check(v)) != TTL_STATUS_SUCCESS) return bad_desc(c, st);
    if ((st = ttl_conv_param_count(&layer->params, v)) != TTL_STATUS_SUCCESS) return bad_desc(c, st);
    layer->bias_count = *has_bias ? out_dim : 0;
    return TTL_STATUS_SUCCESS;
}

// ---- the layer's tensors -------------------------------------------------------------------------------------

static void format_dims(char *buf, size_t len, const int64_t *shape, int32_t ndim) {
    size_t o = (size_t)snprintf(buf, len, "[");
    for (int32_t i = 0; i < ndim && o < len; ++i)
        o += (size_t)snprintf(buf + o, len - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

/* Finds tensor `name`, which must exist with a float dtype and `ndim` dimensions. */
static ttl_status_t find_part(int64_t *index, const struct ttl_file *file, const char *name, int32_t ndim,
                              layer_ctx_t *c) {
    char q[IO_NAME_LEN];
    const int64_t i = io_find_tensor(file, name);
    if (i < 0)
        return io_fail(c->msg, c->msg_len, TTL_STATUS_BAD_FILE, "layer %s: tensor %s is missing", c->q,
                       io_quote(q, name));
    const io_tensor_t *t = &file->tensors[i];
    if (!io_dtype_is_float(t->dtype))
        return io_fail(c->msg, c->msg_len, TTL_STATUS_BAD_FILE,
                       "layer %s: tensor %s has dtype %s, not a float type", c->q, io_quote(q, name),
                       ttl_dtype_name(t->dtype));
    if (t->ndim != ndim)
        return io_fail(c->msg, c->msg_len, TTL_STATUS_BAD_FILE,
                       "layer %s: tensor %s has %d dimensions, expected %d", c->q, io_quote(q, name), (int)t->ndim,
                       (int)ndim);
    *index = i;
    return TTL_STATUS_SUCCESS;
}

/* Locates the parts of a layer, then checks that ranks chain between neighbouring tensors, then that every
 * shape is what the descriptor says. */
static ttl_status_t check_parts(io_layer_t *layer, int has_bias, const struct ttl_file *file, layer_ctx_t *c) {
    const size_t name_len = strlen(c->name);
    char *buf = malloc(name_len + 32);
    if (buf == NULL) return io_fail(c->msg, c->msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory");
    const int conv = layer->kind == TTL_LAYER_CONV;
    const ttl_fc_desc_t *f = &layer->fc;
    ttl_fc_desc_t chan;
    if (conv) {
        ttl_conv_channel_desc(&chan, &layer->conv);
        f = &chan;
    }
    /* expected shapes, in packing order */
    int64_t expect[TTL_MAX_CORES + 1][4];
    int32_t ndims[TTL_MAX_CORES + 1];
    int32_t n = 0;
    ttl_status_t st = TTL_STATUS_SUCCESS;
    if (conv) {
        snprintf(buf, name_len + 32, "%s%s", c->name, IO_SPATIAL_SUFFIX);
        expect[0][0] = layer->conv.kernel_h, expect[0][1] = layer->conv.kernel_w,
        expect[0][2] = layer->conv.ranks[0];
        ndims[0] = 3;
        st = find_part(&layer->parts[n++], file, buf, 3, c);
    }
    for (int32_t k = 0; k < f->num_cores && st == TTL_STATUS_SUCCESS; ++k, ++n) {
        snprintf(buf, name_len + 32, "%s%s%d", c->name, IO_CORE_SUFFIX, (int)k);
        expect[n][0] = f->ranks[k], expect[n][1] = f->out_modes[k], expect[n][2] = f->in_modes[k];
        expect[n][3] = f->ranks[k + 1];
        ndims[n] = 4;
        st = find_part(&layer->parts[n], file, buf, 4, c);
    }
    layer->num_parts = n;
    layer->bias_tensor = -1;
    if (st == TTL_STATUS_SUCCESS && has_bias) {
        snprintf(buf, name_len + 32, "%s%s", c->name, IO_BIAS_SUFFIX);
        st = find_part(&layer->bias_tensor, file, buf, 1, c);
    }
    free(buf);
    TTL_TRY(st);

    char q1[IO_NAME_LEN], q2[IO_NAME_LEN], s1[IO_NAME_LEN], s2[IO_NAME_LEN];
    for (int32_t i = 1; i < n; ++i) {
        const io_tensor_t *a = &file->tensors[layer->parts[i - 1]], *b = &file->tensors[layer->parts[i]];
        if (a->shape[a->ndim - 1] != b->shape[0])
            return io_fail(c->msg, c->msg_len, TTL_STATUS_BAD_FILE,
                           "layer %s: ranks do not chain: %s ends with rank %lld but %s starts with rank %lld",
                           c->q, io_quote(q1, a->name), (long long)a->shape[a->ndim - 1], io_quote(q2, b->name),
                           (long long)b->shape[0]);
    }
    for (int32_t i = 0; i < n; ++i) {
        const io_tensor_t *t = &file->tensors[layer->parts[i]];
        if (memcmp(t->shape, expect[i], sizeof(int64_t) * (size_t)ndims[i]) != 0) {
            format_dims(s1, sizeof(s1), t->shape, t->ndim);
            format_dims(s2, sizeof(s2), expect[i], ndims[i]);
            return io_fail(c->msg, c->msg_len, TTL_STATUS_BAD_FILE,
                           "layer %s: tensor %s has shape %s but the metadata says %s", c->q, io_quote(q1, t->name),
                           s1, s2);
        }
    }
    if (has_bias) {
        const io_tensor_t *t = &file->tensors[layer->bias_tensor];
        if (t->shape[0] != layer->bias_count)
            return io_fail(c->msg, c->msg_len, TTL_STATUS_BAD_FILE,
                           "layer %s: tensor %s has shape [%lld] but the metadata says [%lld]", c->q,
                           io_quote(q1, t->name), (long long)t->shape[0], (long long)layer->bias_count);
    }
    return TTL_STATUS_SUCCESS;
}

// ---- all layers ----------------------------------------------------------------------------------------------

static int compare_layers(const void *a, const void *b) {
    return strcmp(((const io_layer_t *)a)->name, ((const io_layer_t *)b)->name);
}

static ttl_status_t check_version(const struct ttl_file *file, int64_t num_layers, char *msg, size_t msg_len) {
    const int64_t v = io_find_meta(file, IO_META_VERSION);
    if (v < 0) {
        if (num_layers == 0) return TTL_STATUS_SUCCESS; /* a plain dense file */
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "metadata has TT layers but no \"%s\"", IO_META_VERSION);
    }
    char expected[16], q[IO_NAME_LEN];
    snprintf(expected, sizeof(expected), "%d", TTL_IO_FORMAT_VERSION);
    if (strcmp(file->meta[2 * v + 1], expected) != 0)
        return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "unsupported %s %s (this libttl reads %s)",
                       IO_META_VERSION, io_quote(q, file->meta[2 * v + 1]), expected);
    return TTL_STATUS_SUCCESS;
}

ttl_status_t io_parse_layers(struct ttl_file *file, char *msg, size_t msg_len) {
    const size_t prefix = strlen(IO_META_LAYER_PREFIX);
    int64_t count = 0;
    for (int64_t i = 0; i < file->num_meta; ++i)
        if (strncmp(file->meta[2 * i], IO_META_LAYER_PREFIX, prefix) == 0) ++count;
    TTL_TRY(check_version(file, count, msg, msg_len));
    file->layers = calloc((size_t)count + 1, sizeof(io_layer_t));
    if (file->layers == NULL) return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < file->num_meta; ++i) {
        const char *key = file->meta[2 * i];
        if (strncmp(key, IO_META_LAYER_PREFIX, prefix) != 0) continue;
        layer_ctx_t c = {.name = key + prefix, .msg = msg, .msg_len = msg_len};
        io_quote(c.q, c.name);
        if (c.name[0] == '\0')
            return io_fail(msg, msg_len, TTL_STATUS_BAD_FILE, "metadata key \"%s\" names no layer", key);
        io_layer_t *layer = &file->layers[file->num_layers];
        int has_bias = 0;
        cJSON *obj = cJSON_Parse(file->meta[2 * i + 1]);
        ttl_status_t st = layer_from_json(layer, &has_bias, obj, &c);
        cJSON_Delete(obj);
        TTL_TRY(st);
        TTL_TRY(check_parts(layer, has_bias, file, &c));
        const size_t n = strlen(c.name) + 1;
        if ((layer->name = malloc(n)) == NULL)
            return io_fail(msg, msg_len, TTL_STATUS_OUT_OF_MEMORY, "out of memory");
        memcpy(layer->name, c.name, n);
        ++file->num_layers;
    }
    qsort(file->layers, (size_t)file->num_layers, sizeof(io_layer_t), compare_layers);
    return TTL_STATUS_SUCCESS;
}
