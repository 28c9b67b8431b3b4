/*
 * ttl verify DENSE TT [--json] [--max-err E]: rebuilds every TT layer of TT with ttl_fc_reconstruct /
 * ttl_conv_reconstruct and reports ||W - W_tt||_F / ||W||_F against the dense tensor of the same name in DENSE
 * ("<layer>.weight", else "<layer>"), and the bias error when both files hold a bias.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(void) {
    printf("usage: ttl verify DENSE.safetensors TT.safetensors [--json] [--max-err E]\n"
           "\n"
           "For every TT layer L of TT: reconstructs its dense weight and prints the relative error\n"
           "||W - W_tt||_F / ||W||_F against the tensor 'L.weight' (or 'L') of DENSE, and the bias error when\n"
           "both files hold 'L.bias'.\n"
           "\n"
           "  --json        print a JSON array, one object per layer: name, kind, dense_tensor, params,\n"
           "                dense_params, compression, rel_err, bias_rel_err (null without bias)\n"
           "  --max-err E   fail (exit status 1) when a layer's rel_err exceeds E\n");
}

static double rel_err(const float *a, const float *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double d = (double)a[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return sqrt(num / den);
}

/* Reconstructs layer l of tt and compares it with its dense tensor; *bias_err is NaN without biases. */
static int check_layer(double *err, double *bias_err, const char **dense_name, char *name_buf, size_t name_len,
                       const ttl_layer_info_t *l, const ttl_file_t *tt, const ttl_file_t *dense) {
    const int fc = l->kind == TTL_LAYER_FC;
    *dense_name = cli_dense_name(name_buf, name_len, dense, l->name);
    ttl_tensor_info_t info;
    char msg[TTL_IO_MSG_LEN];
    if (ttl_file_find_tensor(&info, dense, *dense_name, msg, sizeof msg) != TTL_STATUS_SUCCESS)
        return cli_error("layer '%s': the dense file has neither '%s.weight' nor '%s'", l->name, l->name, l->name);
    int64_t want[4];
    int32_t ndim;
    if (fc)
        want[0] = l->fc.out_features, want[1] = l->fc.in_features, ndim = 2;
    else
        want[0] = l->conv.out_channels, want[1] = l->conv.in_channels, want[2] = l->conv.kernel_h,
        want[3] = l->conv.kernel_w, ndim = 4;
    if (info.ndim != ndim || memcmp(info.shape, want, sizeof(int64_t) * (size_t)ndim) != 0) {
        char a[128], b[128];
        cli_format_list(a, sizeof a, info.shape, info.ndim);
        cli_format_list(b, sizeof b, want, ndim);
        return cli_error("layer '%s': dense tensor '%s' is [%s], the TT layer is [%s]", l->name, *dense_name, a, b);
    }
    float *W = NULL, *cores = NULL, *tt_bias = NULL, *dense_bias = NULL;
    float *R = malloc(sizeof(float) * (size_t)info.numel + 1);
    int rc = CLI_OK;
    ttl_status_t st = R ? TTL_STATUS_SUCCESS : TTL_STATUS_OUT_OF_MEMORY;
    if (st == TTL_STATUS_SUCCESS) st = ttl_file_read_f32(&W, NULL, dense, *dense_name, msg, sizeof msg);
    if (st == TTL_STATUS_SUCCESS) {
        ttl_fc_desc_t fd;
        ttl_conv_desc_t cd;
        st = fc ? ttl_file_read_fc(&fd, &cores, &tt_bias, tt, l->name, msg, sizeof msg)
                : ttl_file_read_conv(&cd, &cores, &tt_bias, tt, l->name, msg, sizeof msg);
        if (st == TTL_STATUS_SUCCESS) {
            st = fc ? ttl_fc_reconstruct(R, &fd, cores) : ttl_conv_reconstruct(R, &cd, cores);
            if (st != TTL_STATUS_SUCCESS) snprintf(msg, sizeof msg, "reconstruction: %s", ttl_status_string(st));
        }
    } else if (st == TTL_STATUS_OUT_OF_MEMORY) {
        snprintf(msg, sizeof msg, "out of memory");
    }
    if (st != TTL_STATUS_SUCCESS) {
        rc = cli_error("layer '%s': %s", l->name, msg);
    } else {
        *err = rel_err(R, W, info.numel);
        *bias_err = NAN;
        char bias_name[1024];
        snprintf(bias_name, sizeof bias_name, "%s.bias", l->name);
        int64_t n = 0;
        if (tt_bias != NULL &&
            ttl_file_read_f32(&dense_bias, &n, dense, bias_name, NULL, 0) == TTL_STATUS_SUCCESS &&
            n == l->bias_count)
            *bias_err = rel_err(tt_bias, dense_bias, n);
    }
    ttl_free(W);
    ttl_free(cores);
    ttl_free(tt_bias);
    ttl_free(dense_bias);
    free(R);
    return rc;
}

int cmd_verify(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return CLI_OK;
    }
    const char *paths[2] = {NULL, NULL};
    int json = 0, npaths = 0, failed = 0;
    double max_err = INFINITY;
    for (int i = 1; i < argc; ++i) {
        const char *v;
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (cli_option(&v, &failed, "--max-err", argc, argv, &i)) {
            if (failed || !cli_parse_double(&max_err, v, "--max-err", 0, INFINITY)) return CLI_USAGE;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return cli_usage_error("unknown option '%s'", argv[i]);
        else if (npaths < 2)
            paths[npaths++] = argv[i];
        else
            return cli_usage_error("two files expected, got '%s' too", argv[i]);
    }
    if (npaths < 2) return cli_usage_error("expected DENSE and TT files (try 'ttl verify --help')");
    ttl_file_t *dense = cli_open(paths[0]);
    if (dense == NULL) return CLI_FAILED;
    ttl_file_t *tt = cli_open(paths[1]);
    if (tt == NULL) {
        ttl_file_close(dense);
        return CLI_FAILED;
    }
    int64_t layers = 0;
    ttl_file_layer_count(&layers, tt);
    int rc = layers > 0 ? CLI_OK : cli_error("%s holds no TT layers", paths[1]);
    cJSON *array = json ? cJSON_CreateArray() : NULL;
    const char *worst = NULL;
    double worst_err = -1;
    for (int64_t i = 0; i < layers && rc == CLI_OK; ++i) {
        ttl_layer_info_t l;
        cli_stats_t s;
        double err = 0, bias_err = 0;
        const char *dense_name;
        char name_buf[1024];
        ttl_file_layer_info(&l, tt, i);
        if ((rc = cli_layer_stats(&s, &l)) != CLI_OK) break;
        if ((rc = check_layer(&err, &bias_err, &dense_name, name_buf, sizeof name_buf, &l, tt, dense)) != CLI_OK)
            break;
        if (err > worst_err) worst_err = err, worst = l.name;
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", l.name);
            cJSON_AddStringToObject(o, "kind", l.kind == TTL_LAYER_FC ? "fc" : "conv");
            cJSON_AddStringToObject(o, "dense_tensor", dense_name);
            cJSON_AddNumberToObject(o, "params", (double)s.params);
            cJSON_AddNumberToObject(o, "dense_params", (double)s.dense_params);
            cJSON_AddNumberToObject(o, "compression", s.compression);
            cJSON_AddNumberToObject(o, "rel_err", err);
            if (isnan(bias_err))
                cJSON_AddNullToObject(o, "bias_rel_err");
            else
                cJSON_AddNumberToObject(o, "bias_rel_err", bias_err);
            cJSON_AddItemToArray(array, o);
        } else {
            printf("%-32s %-4s vs %-32s rel_err %.3e", l.name, l.kind == TTL_LAYER_FC ? "fc" : "conv", dense_name,
                   err);
            if (!isnan(bias_err)) printf("  bias rel_err %.3e", bias_err);
            printf("  params %lld -> %lld (%.2fx)\n", (long long)s.dense_params, (long long)s.params,
                   s.compression);
        }
    }
    if (rc == CLI_OK && json) {
        rc = cli_print_json(array);
        array = NULL;
    }
    if (rc == CLI_OK && worst_err > max_err)
        rc = cli_error("layer '%s' has rel_err %.3e above --max-err %g", worst, worst_err, max_err);
    cJSON_Delete(array);
    ttl_file_close(tt);
    ttl_file_close(dense);
    return rc;
}
