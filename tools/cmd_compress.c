/*
 * ttl compress IN OUT: TT-SVD (ttl_fc_compress / ttl_conv_compress) of the Linear weights [out, in] and
 * Conv2d kernels [S, C, kh, kw] of a dense safetensors file; every other tensor, the user metadata and any TT
 * layer already in IN are copied unchanged. A weight "<L>.weight" becomes the TT layer "<L>", and takes the
 * tensor "<L>.bias" as its bias when IN has one of the right shape.
 *
 * Automatic modes (unless --modes or --cores): d = the most cores, up to 4, for which ttl_factorize gives every
 * mode of the larger dimension at least 4 (4096 -> 8,8,8,8; 512 -> 4,4,4,8; 64 -> 4,4,4; 16 -> 4,4); both
 * dimensions are then factorised into d modes (ascending; 1s fill in on the smaller side). For conv the rule
 * applies to the channels S x C, and the spatial core gets its rank from the TT-SVD. With --all (the default),
 * a Linear weight whose rule gives one core (too small to factorise) is kept dense.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define DEFAULT_EPS 0.05
#define MAX_TARGETS 4096

static void help(void) {
    printf(
        "usage: ttl compress IN.safetensors OUT.safetensors [--tensor NAME ...|--all] [options]\n"
        "\n"
        "Compresses Linear weights [out, in] and Conv2d kernels [S, C, kh, kw] (F32, F16 or BF16) of IN into\n"
        "TT layers by TT-SVD and writes OUT; other tensors, the metadata and TT layers already in IN are\n"
        "copied. 'L.weight' becomes the TT layer 'L' (bias 'L.bias' when present).\n"
        "\n"
        "  --tensor NAME   compress this tensor (repeatable); it must be 2-D or 4-D\n"
        "  --all           compress every 2-D and 4-D float tensor (the default); Linear weights too small to\n"
        "                  factorise stay dense\n"
        "  --eps E         target relative error ||W - TT|| / ||W|| per layer, 0 <= E < 1 (default %g)\n"
        "  --max-rank R    cap on every TT rank (default: none)\n"
        "  --modes O:I     output and input modes, e.g. 4,4,4:8,8,8 (conv: channel modes S:C) for every\n"
        "                  compressed tensor (their products must match)\n"
        "  --cores D       number of cores (conv: channel cores) when modes are automatic; default: the most,\n"
        "                  up to %d, that keep every mode of the larger dimension >= %d\n"
        "  --stride S[,S]  conv geometry recorded in OUT (default 1); --padding P[,P] (default 0);\n"
        "  --dilation D[,D] (default 1). They do not change the compression, only the layer and its costs.\n"
        "  --progress      print a progress line on stderr (default: when stderr is a terminal)\n"
        "\n"
        "Prints per layer: parameters before -> after, compression, the achieved relative error, and the\n"
        "multiply-add ratio of the TT forward pass to the dense layer (FC: per sample; conv: one %dx%d image).\n",
        DEFAULT_EPS, CLI_AUTO_MAX_CORES, CLI_AUTO_MIN_MODE, CLI_CONV_IMAGE, CLI_CONV_IMAGE);
}

typedef struct options {
    const char *in, *out;
    const char *tensors[MAX_TARGETS];
    int num_tensors;
    int all;
    ttl_compress_opts_t compress;
    int32_t modes_count, cores;
    int64_t out_modes[TTL_MAX_CORES], in_modes[TTL_MAX_CORES];
    int64_t stride[2], padding[2], dilation[2];
    int progress;
} options_t;

// ---- arguments -----------------------------------------------------------------------------------------------

static int parse_modes(options_t *o, const char *text) {
    const char *colon = strchr(text, ':');
    char left[512];
    if (colon == NULL || (size_t)(colon - text) >= sizeof left)
        return cli_usage_error("--modes expects OUT_MODES:IN_MODES such as 4,4,4:8,8,8, not '%s'", text);
    memcpy(left, text, (size_t)(colon - text));
    left[colon - text] = '\0';
    int32_t n_out, n_in;
    if (!cli_parse_list(o->out_modes, &n_out, left, "--modes", TTL_MAX_CORES, 0) ||
        !cli_parse_list(o->in_modes, &n_in, colon + 1, "--modes", TTL_MAX_CORES, 0))
        return CLI_USAGE;
    if (n_out != n_in) return cli_usage_error("--modes: %d output modes but %d input modes", (int)n_out, (int)n_in);
    for (int32_t k = 0; k < n_out; ++k)
        if (o->out_modes[k] < 1 || o->in_modes[k] < 1) return cli_usage_error("--modes: modes must be >= 1");
    o->modes_count = n_out;
    return CLI_OK;
}

static int parse_pair(int64_t *pair, const char *text, const char *option, int64_t lo) {
    int32_t n;
    if (!cli_parse_list(pair, &n, text, option, 2, 2)) return CLI_USAGE;
    if (pair[0] < lo || pair[1] < lo) return cli_usage_error("%s values must be >= %lld", option, (long long)lo);
    return CLI_OK;
}

static int parse_args(options_t *o, int argc, char **argv) {
    memset(o, 0, sizeof(*o));
    o->compress.eps = DEFAULT_EPS;
    o->stride[0] = o->stride[1] = o->dilation[0] = o->dilation[1] = 1;
    o->progress = isatty(fileno(stderr));
    const char *files[2] = {NULL, NULL};
    int nfiles = 0, failed = 0;
    for (int i = 1; i < argc; ++i) {
        const char *v;
        int64_t n;
        if (strcmp(argv[i], "--all") == 0)
            o->all = 1;
        else if (strcmp(argv[i], "--progress") == 0)
            o->progress = 1;
        else if (cli_option(&v, &failed, "--tensor", argc, argv, &i)) {
            if (failed) return CLI_USAGE;
            if (o->num_tensors == MAX_TARGETS) return cli_usage_error("more than %d --tensor options", MAX_TARGETS);
            o->tensors[o->num_tensors++] = v;
        } else if (cli_option(&v, &failed, "--eps", argc, argv, &i)) {
            if (failed || !cli_parse_double(&o->compress.eps, v, "--eps", 0, 1)) return CLI_USAGE;
            if (o->compress.eps >= 1) return cli_usage_error("--eps must be below 1, not '%s'", v);
        } else if (cli_option(&v, &failed, "--max-rank", argc, argv, &i)) {
            if (failed || !cli_parse_int(&o->compress.max_rank, v, "--max-rank", 1, INT32_MAX)) return CLI_USAGE;
        } else if (cli_option(&v, &failed, "--cores", argc, argv, &i)) {
            if (failed || !cli_parse_int(&n, v, "--cores", 1, TTL_MAX_CORES)) return CLI_USAGE;
            o->cores = (int32_t)n;
        } else if (cli_option(&v, &failed, "--modes", argc, argv, &i)) {
            if (failed || parse_modes(o, v) != CLI_OK) return CLI_USAGE;
        } else if (cli_option(&v, &failed, "--stride", argc, argv, &i)) {
            if (failed || parse_pair(o->stride, v, "--stride", 1) != CLI_OK) return CLI_USAGE;
        } else if (cli_option(&v, &failed, "--padding", argc, argv, &i)) {
            if (failed || parse_pair(o->padding, v, "--padding", 0) != CLI_OK) return CLI_USAGE;
        } else if (cli_option(&v, &failed, "--dilation", argc, argv, &i)) {
            if (failed || parse_pair(o->dilation, v, "--dilation", 1) != CLI_OK) return CLI_USAGE;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error("unknown option '%s' (try 'ttl compress --help')", argv[i]);
        } else if (nfiles < 2) {
            files[nfiles++] = argv[i];
        } else {
            return cli_usage_error("two files expected, got '%s' too", argv[i]);
        }
    }
    if (nfiles < 2) return cli_usage_error("expected IN and OUT files (try 'ttl compress --help')");
    if (o->all && o->num_tensors > 0) return cli_usage_error("--all and --tensor exclude each other");
    if (o->modes_count > 0 && o->cores > 0) return cli_usage_error("--modes and --cores exclude each other");
    if (o->num_tensors == 0) o->all = 1;
    o->in = files[0];
    o->out = files[1];
    return CLI_OK;
}

// ---- what to compress ----------------------------------------------------------------------------------------

/* What becomes of each tensor of IN. */
enum role { ROLE_COPY = 0, ROLE_WEIGHT, ROLE_BIAS, ROLE_LAYER_PART };

typedef struct work {
    const options_t *opt;
    ttl_file_t *in;
    int64_t num_tensors;
    unsigned char *roles; /* per tensor index of IN */
    int64_t *bias_of;     /* for a weight: the index of its bias tensor, or -1 */
    ttl_writer_t *writer;
    int64_t params, dense_params, layers;
} work_t;

static int64_t tensor_index(const ttl_file_t *f, int64_t count, const char *name) {
    for (int64_t i = 0; i < count; ++i) {
        ttl_tensor_info_t t;
        ttl_file_tensor_info(&t, f, i);
        if (strcmp(t.name, name) == 0) return i;
    }
    return -1;
}

static int is_float(ttl_dtype_t d) { return d == TTL_DTYPE_F32 || d == TTL_DTYPE_F16 || d == TTL_DTYPE_BF16; }

/* The TT layer name of a weight: "<L>.weight" -> "<L>", else the name itself. */
static void layer_name(char *buf, size_t len, const char *weight) {
    const size_t n = strlen(weight), s = strlen(".weight");
    if (n > s && strcmp(weight + n - s, ".weight") == 0)
        snprintf(buf, len, "%.*s", (int)(n - s), weight);
    else
        snprintf(buf, len, "%s", weight);
}

/* Marks the tensors of the TT layers IN already holds: they are copied as layers. */
static void mark_existing_layers(work_t *w) {
    int64_t layers = 0;
    ttl_file_layer_count(&layers, w->in);
    for (int64_t i = 0; i < w->num_tensors; ++i) {
        ttl_tensor_info_t t;
        ttl_file_tensor_info(&t, w->in, i);
        for (int64_t j = 0; j < layers; ++j) {
            ttl_layer_info_t l;
            ttl_file_layer_info(&l, w->in, j);
            const size_t n = strlen(l.name);
            if (strncmp(t.name, l.name, n) != 0) continue;
            const char *rest = t.name + n;
            if (strncmp(rest, ".tt_core.", 9) == 0 || strcmp(rest, ".tt_spatial") == 0 ||
                (l.bias_count > 0 && strcmp(rest, ".bias") == 0))
                w->roles[i] = ROLE_LAYER_PART;
        }
    }
}

/* Whether tensor i can be compressed; *why says why not. */
static int compressible(const ttl_tensor_info_t *t, const char **why) {
    if (!is_float(t->dtype))
        *why = "is not F32, F16 or BF16";
    else if (t->ndim != 2 && t->ndim != 4)
        *why = "is neither 2-D [out, in] nor 4-D [S, C, kh, kw]";
    else if (t->numel == 0)
        *why = "is empty";
    else
        return 1;
    return 0;
}

static int select_targets(work_t *w) {
    const options_t *o = w->opt;
    if (!o->all) {
        for (int k = 0; k < o->num_tensors; ++k) {
            const int64_t i = tensor_index(w->in, w->num_tensors, o->tensors[k]);
            if (i < 0) return cli_error("%s has no tensor '%s'", o->in, o->tensors[k]);
            ttl_tensor_info_t t;
            const char *why;
            ttl_file_tensor_info(&t, w->in, i);
            if (w->roles[i] == ROLE_LAYER_PART)
                return cli_error("tensor '%s' is already part of a TT layer", o->tensors[k]);
            if (!compressible(&t, &why)) return cli_error("tensor '%s' %s", o->tensors[k], why);
            w->roles[i] = ROLE_WEIGHT;
        }
    } else {
        for (int64_t i = 0; i < w->num_tensors; ++i) {
            ttl_tensor_info_t t;
            const char *why;
            ttl_file_tensor_info(&t, w->in, i);
            if (w->roles[i] != ROLE_COPY || !compressible(&t, &why)) continue;
            /* Linear weights too small to factorise stay dense, unless modes are forced */
            if (t.ndim == 2 && o->modes_count == 0 && o->cores == 0 && cli_auto_cores(t.shape[0], t.shape[1]) < 2)
                continue;
            w->roles[i] = ROLE_WEIGHT;
        }
    }
    /* attach biases: "<L>.bias" of shape [out] */
    for (int64_t i = 0; i < w->num_tensors; ++i) {
        w->bias_of[i] = -1;
        if (w->roles[i] != ROLE_WEIGHT) continue;
        ttl_tensor_info_t t, b;
        char name[1024], bias[1100];
        ttl_file_tensor_info(&t, w->in, i);
        layer_name(name, sizeof name, t.name);
        snprintf(bias, sizeof bias, "%s.bias", name);
        const int64_t j = tensor_index(w->in, w->num_tensors, bias);
        if (j < 0) continue;
        ttl_file_tensor_info(&b, w->in, j);
        if (w->roles[j] != ROLE_COPY || !is_float(b.dtype) || b.ndim != 1 || b.shape[0] != t.shape[0]) continue;
        w->roles[j] = ROLE_BIAS;
        w->bias_of[i] = j;
    }
    return CLI_OK;
}

// ---- compressing one tensor ----------------------------------------------------------------------------------

static int modes_for(int64_t *out_modes, int64_t *in_modes, int32_t *cores, const options_t *o, const char *name,
                     int64_t out_dim, int64_t in_dim) {
    if (o->modes_count == 0) {
        *cores = o->cores;
        return cli_choose_modes(out_modes, in_modes, cores, out_dim, in_dim);
    }
    int64_t po = 1, pi = 1;
    for (int32_t k = 0; k < o->modes_count; ++k) po *= o->out_modes[k], pi *= o->in_modes[k];
    if (po != out_dim || pi != in_dim)
        return cli_error("--modes multiply to %lld x %lld, but tensor '%s' is %lld x %lld", (long long)po,
                         (long long)pi, name, (long long)out_dim, (long long)in_dim);
    memcpy(out_modes, o->out_modes, sizeof(int64_t) * (size_t)o->modes_count);
    memcpy(in_modes, o->in_modes, sizeof(int64_t) * (size_t)o->modes_count);
    *cores = o->modes_count;
    return CLI_OK;
}

static void print_layer(const char *weight, const ttl_layer_info_t *l, const cli_stats_t *s, double err) {
    const int fc = l->kind == TTL_LAYER_FC;
    const int32_t d = fc ? l->fc.num_cores : l->conv.num_cores;
    char out[256], in[256], ranks[256];
    cli_format_list(out, sizeof out, fc ? l->fc.out_modes : l->conv.out_modes, d);
    cli_format_list(in, sizeof in, fc ? l->fc.in_modes : l->conv.in_modes, d);
    cli_format_list(ranks, sizeof ranks, fc ? l->fc.ranks : l->conv.ranks, d + 1);
    printf("%s -> %s (%s%s)  modes %s:%s  ranks %s\n", weight, l->name, fc ? "fc" : "conv",
           l->bias_count ? " +bias" : "", out, in, ranks);
    printf("    params %lld -> %lld (%.2fx)  rel_err %.3e  multiply-adds %.4fx of dense\n",
           (long long)s->dense_params, (long long)s->params, s->compression, err, s->macs_ratio);
}

static int compress_one(work_t *w, int64_t index) {
    const options_t *o = w->opt;
    ttl_tensor_info_t t;
    ttl_file_tensor_info(&t, w->in, index);
    char name[1024], msg[TTL_IO_MSG_LEN];
    layer_name(name, sizeof name, t.name);
    ttl_layer_info_t existing;
    if (ttl_file_find_layer(&existing, w->in, name, NULL, 0) == TTL_STATUS_SUCCESS)
        return cli_error("tensor '%s': %s already has a TT layer named '%s'", t.name, o->in, name);

    float *W = NULL, *bias = NULL, *cores = NULL;
    ttl_compress_report_t report;
    ttl_layer_info_t layer;
    memset(&layer, 0, sizeof layer);
    layer.name = name;
    int rc = CLI_OK;
    ttl_status_t st = ttl_file_read_f32(&W, NULL, w->in, t.name, msg, sizeof msg);
    if (st == TTL_STATUS_SUCCESS && w->bias_of[index] >= 0) {
        ttl_tensor_info_t b;
        ttl_file_tensor_info(&b, w->in, w->bias_of[index]);
        st = ttl_file_read_f32(&bias, NULL, w->in, b.name, msg, sizeof msg);
    }
    if (st != TTL_STATUS_SUCCESS) {
        rc = cli_error("%s", msg);
        goto done;
    }
    if (t.ndim == 2) {
        ttl_fc_desc_t shape = {.out_features = t.shape[0], .in_features = t.shape[1]};
        if ((rc = modes_for(shape.out_modes, shape.in_modes, &shape.num_cores, o, t.name, t.shape[0], t.shape[1])))
            goto done;
        for (int32_t k = 0; k <= shape.num_cores; ++k) shape.ranks[k] = 1;
        layer.kind = TTL_LAYER_FC;
        st = ttl_fc_compress(&layer.fc, &cores, &report, &shape, W, &o->compress);
        if (st == TTL_STATUS_SUCCESS)
            st = ttl_writer_add_fc(w->writer, name, &layer.fc, cores, bias, msg, sizeof msg);
        else
            snprintf(msg, sizeof msg, "TT-SVD failed: %s", ttl_status_string(st));
        layer.bias_count = bias ? layer.fc.out_features : 0;
    } else {
        ttl_conv_desc_t shape = {.out_channels = t.shape[0],
                                 .in_channels = t.shape[1],
                                 .kernel_h = t.shape[2],
                                 .kernel_w = t.shape[3],
                                 .stride_h = o->stride[0],
                                 .stride_w = o->stride[1],
                                 .pad_h = o->padding[0],
                                 .pad_w = o->padding[1],
                                 .dilation_h = o->dilation[0],
                                 .dilation_w = o->dilation[1]};
        if ((rc = modes_for(shape.out_modes, shape.in_modes, &shape.num_cores, o, t.name, t.shape[0], t.shape[1])))
            goto done;
        for (int32_t k = 0; k <= shape.num_cores; ++k) shape.ranks[k] = 1;
        layer.kind = TTL_LAYER_CONV;
        st = ttl_conv_compress(&layer.conv, &cores, &report, &shape, W, &o->compress);
        if (st == TTL_STATUS_SUCCESS)
            st = ttl_writer_add_conv(w->writer, name, &layer.conv, cores, bias, msg, sizeof msg);
        else
            snprintf(msg, sizeof msg, "TT-SVD failed: %s", ttl_status_string(st));
        layer.bias_count = bias ? layer.conv.out_channels : 0;
    }
    if (st != TTL_STATUS_SUCCESS) {
        rc = cli_error("tensor '%s': %s", t.name, msg);
        goto done;
    }
    cli_stats_t s;
    if ((rc = cli_layer_stats(&s, &layer)) != CLI_OK) goto done;
    print_layer(t.name, &layer, &s, report.rel_err);
    w->params += s.params, w->dense_params += s.dense_params, ++w->layers;
done:
    ttl_free(W);
    ttl_free(bias);
    ttl_free(cores);
    return rc;
}

// ---- copying the rest ----------------------------------------------------------------------------------------

static int copy_existing_layers(work_t *w) {
    int64_t layers = 0;
    ttl_file_layer_count(&layers, w->in);
    for (int64_t i = 0; i < layers; ++i) {
        ttl_layer_info_t l;
        ttl_file_layer_info(&l, w->in, i);
        float *cores = NULL, *bias = NULL;
        char msg[TTL_IO_MSG_LEN];
        ttl_status_t st;
        if (l.kind == TTL_LAYER_FC) {
            ttl_fc_desc_t d;
            st = ttl_file_read_fc(&d, &cores, &bias, w->in, l.name, msg, sizeof msg);
            if (st == TTL_STATUS_SUCCESS)
                st = ttl_writer_add_fc(w->writer, l.name, &d, cores, bias, msg, sizeof msg);
        } else {
            ttl_conv_desc_t d;
            st = ttl_file_read_conv(&d, &cores, &bias, w->in, l.name, msg, sizeof msg);
            if (st == TTL_STATUS_SUCCESS)
                st = ttl_writer_add_conv(w->writer, l.name, &d, cores, bias, msg, sizeof msg);
        }
        ttl_free(cores);
        ttl_free(bias);
        if (st != TTL_STATUS_SUCCESS) return cli_error("copying TT layer '%s': %s", l.name, msg);
    }
    return CLI_OK;
}

static int copy_rest(work_t *w, int64_t *copied) {
    char msg[TTL_IO_MSG_LEN];
    *copied = 0;
    for (int64_t i = 0; i < w->num_tensors; ++i) {
        if (w->roles[i] != ROLE_COPY) continue;
        ttl_tensor_info_t t;
        const void *data;
        size_t bytes;
        ttl_file_tensor_info(&t, w->in, i);
        ttl_status_t st = ttl_file_tensor_data(&data, &bytes, w->in, t.name, msg, sizeof msg);
        if (st == TTL_STATUS_SUCCESS)
            st = ttl_writer_add_tensor(w->writer, t.name, t.dtype, t.shape, t.ndim, data, msg, sizeof msg);
        if (st != TTL_STATUS_SUCCESS) return cli_error("copying tensor '%s': %s", t.name, msg);
        ++*copied;
    }
    int64_t n = 0;
    ttl_file_metadata_count(&n, w->in);
    for (int64_t i = 0; i < n; ++i) {
        const char *key, *value;
        ttl_file_metadata_entry(&key, &value, w->in, i);
        if (strncmp(key, "ttl.", 4) == 0) continue; /* libttl's own keys are written by the writer */
        if (ttl_writer_set_metadata(w->writer, key, value, msg, sizeof msg) != TTL_STATUS_SUCCESS)
            return cli_error("copying metadata '%s': %s", key, msg);
    }
    return CLI_OK;
}

// ---- the command ---------------------------------------------------------------------------------------------

static int run(work_t *w) {
    const options_t *o = w->opt;
    int rc;
    if ((rc = select_targets(w)) != CLI_OK) return rc;
    int64_t targets = 0, done = 0, copied = 0;
    for (int64_t i = 0; i < w->num_tensors; ++i) targets += w->roles[i] == ROLE_WEIGHT;
    char cap[32] = "none";
    if (o->compress.max_rank > 0) snprintf(cap, sizeof cap, "%lld", (long long)o->compress.max_rank);
    printf("compressing %lld of %lld tensors of %s: eps %g, max rank %s; multiply-adds per sample (fc) or "
           "per %dx%d image (conv)\n",
           (long long)targets, (long long)w->num_tensors, o->in, o->compress.eps, cap, CLI_CONV_IMAGE,
           CLI_CONV_IMAGE);
    if ((rc = copy_existing_layers(w)) != CLI_OK) return rc;
    for (int64_t i = 0; i < w->num_tensors; ++i) {
        if (w->roles[i] != ROLE_WEIGHT) continue;
        if (o->progress) {
            ttl_tensor_info_t t;
            ttl_file_tensor_info(&t, w->in, i);
            fprintf(stderr, "\r[%lld/%lld] %s\033[K", (long long)(done + 1), (long long)targets, t.name);
            fflush(stderr);
        }
        fflush(stdout);
        rc = compress_one(w, i);
        if (o->progress) fprintf(stderr, "\r\033[K");
        if (rc != CLI_OK) return rc;
        ++done;
    }
    if ((rc = copy_rest(w, &copied)) != CLI_OK) return rc;
    char msg[TTL_IO_MSG_LEN];
    if (ttl_writer_save(w->writer, o->out, msg, sizeof msg) != TTL_STATUS_SUCCESS) return cli_error("%s", msg);
    printf("wrote %s: %lld TT layers, params %lld -> %lld (%.2fx), %lld tensors copied\n", o->out,
           (long long)w->layers, (long long)w->dense_params, (long long)w->params,
           w->params > 0 ? (double)w->dense_params / (double)w->params : 0.0, (long long)copied);
    return CLI_OK;
}

int cmd_compress(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return CLI_OK;
    }
    static options_t opt;
    int rc = parse_args(&opt, argc, argv);
    if (rc != CLI_OK) return rc;
    work_t w = {.opt = &opt};
    if ((w.in = cli_open(opt.in)) == NULL) return CLI_FAILED;
    ttl_file_tensor_count(&w.num_tensors, w.in);
    w.roles = calloc((size_t)w.num_tensors + 1, 1);
    w.bias_of = calloc((size_t)w.num_tensors + 1, sizeof(int64_t));
    if (w.roles == NULL || w.bias_of == NULL || ttl_writer_create(&w.writer) != TTL_STATUS_SUCCESS) {
        rc = cli_error("out of memory");
    } else {
        mark_existing_layers(&w);
        rc = run(&w);
    }
    ttl_writer_destroy(w.writer);
    free(w.roles);
    free(w.bias_of);
    ttl_file_close(w.in);
    return rc;
}
