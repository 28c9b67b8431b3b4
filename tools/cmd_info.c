/*
 * ttl info FILE [--json]: the TT layers of a model file (kind, modes, ranks, parameters, compression and
 * multiply-adds against the dense layer) and a summary of its other tensors.
 */
#include <string.h>

#include "cli.h"

static void help(void) {
    printf("usage: ttl info FILE [--json]\n"
           "\n"
           "Lists the TT layers of FILE: kind, modes (out:in), ranks, parameters of the cores against the dense\n"
           "weight, compression, and multiply-adds of a forward pass against the dense layer (FC: per sample;\n"
           "conv: one %dx%d image; the cheaper factorised order). Biases are not counted: they are equal.\n"
           "\n"
           "  --json   print a JSON array, one object per layer: name, kind, out_modes, in_modes, ranks,\n"
           "           kernel/stride/padding/dilation (conv), bias, params, dense_params, compression, macs,\n"
           "           dense_macs, macs_ratio\n",
           CLI_CONV_IMAGE, CLI_CONV_IMAGE);
}

static void print_layer(const ttl_layer_info_t *l, const cli_stats_t *s) {
    const int fc = l->kind == TTL_LAYER_FC;
    const int32_t d = fc ? l->fc.num_cores : l->conv.num_cores;
    char out[256], in[256], ranks[256], shape[128];
    cli_format_list(out, sizeof out, fc ? l->fc.out_modes : l->conv.out_modes, d);
    cli_format_list(in, sizeof in, fc ? l->fc.in_modes : l->conv.in_modes, d);
    cli_format_list(ranks, sizeof ranks, fc ? l->fc.ranks : l->conv.ranks, d + 1);
    if (fc)
        snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)l->fc.out_features, (long long)l->fc.in_features);
    else
        snprintf(shape, sizeof shape, "[%lld, %lld, %lld, %lld] stride %lld,%lld pad %lld,%lld dil %lld,%lld",
                 (long long)l->conv.out_channels, (long long)l->conv.in_channels, (long long)l->conv.kernel_h,
                 (long long)l->conv.kernel_w, (long long)l->conv.stride_h, (long long)l->conv.stride_w,
                 (long long)l->conv.pad_h, (long long)l->conv.pad_w, (long long)l->conv.dilation_h,
                 (long long)l->conv.dilation_w);
    printf("%s  %s %s%s\n", l->name, fc ? "fc" : "conv", shape, l->bias_count > 0 ? " +bias" : "");
    printf("    modes %s:%s  ranks %s\n", out, in, ranks);
    printf("    params %lld -> %lld (%.2fx)  multiply-adds %lld -> %lld (%.3fx of dense)\n",
           (long long)s->dense_params, (long long)s->params, s->compression, (long long)s->dense_macs,
           (long long)s->macs, s->macs_ratio);
}

int cmd_info(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        help();
        return CLI_OK;
    }
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return cli_usage_error("unknown option '%s'", argv[i]);
        else if (path == NULL)
            path = argv[i];
        else
            return cli_usage_error("one FILE expected, got '%s' too", argv[i]);
    }
    if (path == NULL) return cli_usage_error("missing FILE (try 'ttl info --help')");
    ttl_file_t *file = cli_open(path);
    if (file == NULL) return CLI_FAILED;

    int64_t layers = 0, tensors = 0;
    ttl_file_layer_count(&layers, file);
    ttl_file_tensor_count(&tensors, file);
    cJSON *array = json ? cJSON_CreateArray() : NULL;
    int64_t params = 0, dense_params = 0, part_tensors = 0;
    int rc = CLI_OK;
    if (!json) printf("%s: %lld TT layers, %lld tensors\n", path, (long long)layers, (long long)tensors);
    for (int64_t i = 0; i < layers && rc == CLI_OK; ++i) {
        ttl_layer_info_t l;
        cli_stats_t s;
        ttl_file_layer_info(&l, file, i);
        if ((rc = cli_layer_stats(&s, &l)) != CLI_OK) break;
        params += s.params, dense_params += s.dense_params;
        part_tensors += (l.kind == TTL_LAYER_FC ? l.fc.num_cores : l.conv.num_cores + 1) + (l.bias_count > 0);
        if (json)
            cJSON_AddItemToArray(array, cli_layer_json(&l, &s));
        else
            print_layer(&l, &s);
    }
    if (rc == CLI_OK && json) {
        rc = cli_print_json(array);
        array = NULL;
    } else if (rc == CLI_OK) {
        if (layers > 0)
            printf("total: params %lld -> %lld (%.2fx) in %lld TT layers\n", (long long)dense_params,
                   (long long)params, params > 0 ? (double)dense_params / (double)params : 0.0, (long long)layers);
        printf("other tensors: %lld (kept dense)\n", (long long)(tensors - part_tensors));
    }
    cJSON_Delete(array);
    ttl_file_close(file);
    return rc;
}
