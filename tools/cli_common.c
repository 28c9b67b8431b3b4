/*
 * Helpers shared by the ttl subcommands: one-message error reporting, option parsing, the automatic choice of
 * TT modes, layer statistics from ttl_fc_stats/ttl_conv_stats, and JSON output through cJSON.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *cli_command = NULL;

// ---- messages ------------------------------------------------------------------------------------------------

static void vreport(const char *fmt, va_list ap) {
    if (cli_command)
        fprintf(stderr, "ttl %s: ", cli_command);
    else
        fprintf(stderr, "ttl: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    return CLI_FAILED;
}

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    return CLI_USAGE;
}

// ---- options -------------------------------------------------------------------------------------------------

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; ++i)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

int cli_option(const char **value, int *failed, const char *name, int argc, char **argv, int *i) {
    const size_t n = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, n) != 0) return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        cli_usage_error("option %s needs a value", name);
        *failed = 1;
        return 1;
    }
    *value = argv[++*i];
    return 1;
}

int cli_parse_double(double *out, const char *text, const char *option, double lo, double hi) {
    char *end;
    errno = 0;
    const double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v >= lo && v <= hi)) {
        cli_usage_error("%s expects a number in [%g, %g], not '%s'", option, lo, hi, text);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_int(int64_t *out, const char *text, const char *option, int64_t lo, int64_t hi) {
    char *end;
    errno = 0;
    const long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
        cli_usage_error("%s expects an integer in [%lld, %lld], not '%s'", option, (long long)lo, (long long)hi,
                        text);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_list(int64_t *out, int32_t *count, const char *text, const char *option, int32_t max, int32_t fill) {
    int32_t n = 0;
    const char *p = text;
    while (1) {
        char *end;
        errno = 0;
        const long long v = strtoll(p, &end, 10);
        if (errno != 0 || end == p || v < 0 || n == max || (*end != ',' && *end != '\0')) {
            cli_usage_error("%s expects up to %d comma-separated non-negative integers, not '%s'", option, max,
                            text);
            return 0;
        }
        out[n++] = v;
        if (*end == '\0') break;
        p = end + 1;
    }
    if (fill > 0 && n == 1)
        for (; n < fill; ++n) out[n] = out[0];
    *count = n;
    return 1;
}

// ---- files ---------------------------------------------------------------------------------------------------

ttl_file_t *cli_open(const char *path) {
    char msg[TTL_IO_MSG_LEN];
    ttl_file_t *file = NULL;
    if (ttl_file_open(&file, path, msg, sizeof msg) != TTL_STATUS_SUCCESS) {
        /* the library names the file only for I/O errors; say which file a format error is in */
        if (strstr(msg, path) != NULL)
            cli_error("%s", msg);
        else
            cli_error("%s: %s", path, msg);
        return NULL;
    }
    return file;
}

const char *cli_dense_name(char *buf, size_t len, const ttl_file_t *dense, const char *layer) {
    ttl_tensor_info_t info;
    snprintf(buf, len, "%s.weight", layer);
    if (ttl_file_find_tensor(&info, dense, buf, NULL, 0) == TTL_STATUS_SUCCESS) return buf;
    snprintf(buf, len, "%s", layer);
    return buf;
}

// ---- modes ---------------------------------------------------------------------------------------------------

/* The most cores (up to CLI_AUTO_MAX_CORES) for which every mode of the larger dimension is at least
 * CLI_AUTO_MIN_MODE; 1 when even two cores would give a smaller mode. */
int cli_auto_cores(int64_t out_dim, int64_t in_dim) {
    const int64_t larger = out_dim > in_dim ? out_dim : in_dim;
    for (int32_t d = CLI_AUTO_MAX_CORES; d >= 2; --d) {
        int64_t modes[TTL_MAX_CORES];
        if (ttl_factorize(modes, larger, d) != TTL_STATUS_SUCCESS) continue;
        if (modes[0] >= CLI_AUTO_MIN_MODE) return d; /* ascending: modes[0] is the smallest */
    }
    return 1;
}

int cli_choose_modes(int64_t *out_modes, int64_t *in_modes, int32_t *cores, int64_t out_dim, int64_t in_dim) {
    if (*cores == 0) *cores = cli_auto_cores(out_dim, in_dim);
    ttl_status_t st = ttl_factorize(out_modes, out_dim, *cores);
    if (st == TTL_STATUS_SUCCESS) st = ttl_factorize(in_modes, in_dim, *cores);
    if (st != TTL_STATUS_SUCCESS)
        return cli_error("cannot split %lld x %lld into %d modes: %s", (long long)out_dim, (long long)in_dim,
                         (int)*cores, ttl_status_string(st));
    return CLI_OK;
}

// ---- statistics ----------------------------------------------------------------------------------------------

int cli_layer_stats(cli_stats_t *s, const ttl_layer_info_t *layer) {
    memset(s, 0, sizeof(*s));
    ttl_status_t st;
    if (layer->kind == TTL_LAYER_FC) {
        ttl_fc_stats_t f;
        st = ttl_fc_stats(&f, &layer->fc, 1);
        if (st == TTL_STATUS_SUCCESS) {
            s->params = f.params, s->dense_params = f.dense_params, s->compression = f.compression;
            s->macs = f.macs_first_to_last < f.macs_last_to_first ? f.macs_first_to_last : f.macs_last_to_first;
            s->dense_macs = f.macs_dense;
        }
    } else {
        const ttl_conv_desc_t *d = &layer->conv;
        const int64_t eh = d->dilation_h * (d->kernel_h - 1) + 1, ew = d->dilation_w * (d->kernel_w - 1) + 1;
        ttl_conv_shape_t shape = {.batch = 1,
                                  .height = eh > CLI_CONV_IMAGE ? eh : CLI_CONV_IMAGE,
                                  .width = ew > CLI_CONV_IMAGE ? ew : CLI_CONV_IMAGE,
                                  .layout = TTL_LAYOUT_NCHW};
        ttl_conv_stats_t c;
        st = ttl_conv_stats(&c, d, &shape);
        if (st == TTL_STATUS_SUCCESS) {
            s->params = c.params, s->dense_params = c.dense_params, s->compression = c.compression;
            s->macs = c.macs_spatial_first < c.macs_channels_first ? c.macs_spatial_first : c.macs_channels_first;
            s->dense_macs = c.macs_dense;
        }
    }
    if (st != TTL_STATUS_SUCCESS) return cli_error("layer '%s': %s", layer->name, ttl_status_string(st));
    s->macs_ratio = s->dense_macs > 0 ? (double)s->macs / (double)s->dense_macs : 0.0;
    return CLI_OK;
}

// ---- output --------------------------------------------------------------------------------------------------

void cli_format_list(char *buf, size_t len, const int64_t *v, int32_t n) {
    size_t o = 0;
    buf[0] = '\0';
    for (int32_t i = 0; i < n && o < len; ++i)
        o += (size_t)snprintf(buf + o, len - o, i ? ",%lld" : "%lld", (long long)v[i]);
}

static cJSON *int_array(const int64_t *v, int32_t n) {
    cJSON *a = cJSON_CreateArray();
    for (int32_t i = 0; a && i < n; ++i) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

cJSON *cli_layer_json(const ttl_layer_info_t *layer, const cli_stats_t *s) {
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    const int fc = layer->kind == TTL_LAYER_FC;
    const int32_t d = fc ? layer->fc.num_cores : layer->conv.num_cores;
    cJSON_AddStringToObject(o, "name", layer->name);
    cJSON_AddStringToObject(o, "kind", fc ? "fc" : "conv");
    cJSON_AddItemToObject(o, "out_modes", int_array(fc ? layer->fc.out_modes : layer->conv.out_modes, d));
    cJSON_AddItemToObject(o, "in_modes", int_array(fc ? layer->fc.in_modes : layer->conv.in_modes, d));
    cJSON_AddItemToObject(o, "ranks", int_array(fc ? layer->fc.ranks : layer->conv.ranks, d + 1));
    if (!fc) {
        const ttl_conv_desc_t *c = &layer->conv;
        const int64_t kernel[2] = {c->kernel_h, c->kernel_w}, stride[2] = {c->stride_h, c->stride_w};
        const int64_t pad[2] = {c->pad_h, c->pad_w}, dil[2] = {c->dilation_h, c->dilation_w};
        cJSON_AddItemToObject(o, "kernel", int_array(kernel, 2));
        cJSON_AddItemToObject(o, "stride", int_array(stride, 2));
        cJSON_AddItemToObject(o, "padding", int_array(pad, 2));
        cJSON_AddItemToObject(o, "dilation", int_array(dil, 2));
    }
    cJSON_AddBoolToObject(o, "bias", layer->bias_count > 0);
    cJSON_AddNumberToObject(o, "params", (double)s->params);
    cJSON_AddNumberToObject(o, "dense_params", (double)s->dense_params);
    cJSON_AddNumberToObject(o, "compression", s->compression);
    cJSON_AddNumberToObject(o, "macs", (double)s->macs);
    cJSON_AddNumberToObject(o, "dense_macs", (double)s->dense_macs);
    cJSON_AddNumberToObject(o, "macs_ratio", s->macs_ratio);
    return o;
}

int cli_print_json(cJSON *json) {
    char *text = json ? cJSON_Print(json) : NULL;
    cJSON_Delete(json);
    if (text == NULL) return cli_error("out of memory printing JSON");
    puts(text);
    cJSON_free(text);
    return CLI_OK;
}
