/*
 * Shared pieces of the ttl command-line tool: error reporting (exactly one message per failure), option
 * parsing, the automatic choice of TT modes, per-layer statistics and JSON output. The library never prints;
 * this tool does, and exits with 0 on success, 1 on a failure, 2 on a usage error.
 */
#ifndef TTL_TOOLS_CLI_H
#define TTL_TOOLS_CLI_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "ttl/ttl.h"
#include "ttl/ttl_io.h"

#define CLI_OK 0
#define CLI_FAILED 1
#define CLI_USAGE 2

/* Conv multiply-adds are counted on one image of this height and width (or the kernel's extent if larger). */
#define CLI_CONV_IMAGE 32
/* Most cores the automatic mode choice uses, and the smallest mode it accepts on the larger side. */
#define CLI_AUTO_MAX_CORES 4
#define CLI_AUTO_MIN_MODE 4

/* The subcommand name used as the prefix of messages ("ttl compress: ..."). */
extern const char *cli_command;

/* Prints "ttl <command>: <message>" to stderr and returns CLI_FAILED (or CLI_USAGE for cli_usage_error). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 1 when arg is "--name" (value in the next argument, *i advanced) or "--name=value"; *value set. A missing
 * value is reported and *failed set. */
int cli_option(const char **value, int *failed, const char *name, int argc, char **argv, int *i);
/* Numbers and lists with range checks; 0 and a usage message on failure. */
int cli_parse_double(double *out, const char *text, const char *option, double lo, double hi);
int cli_parse_int(int64_t *out, const char *text, const char *option, int64_t lo, int64_t hi);
/* "a,b,c" into up to `max` positive integers; a single value is repeated to `fill` entries when fill > 0. */
int cli_parse_list(int64_t *out, int32_t *count, const char *text, const char *option, int32_t max, int32_t fill);
/* "--help" or "-h" among the arguments. */
int cli_wants_help(int argc, char **argv);

/* Opens a model file; on failure prints the library's message and returns NULL. */
ttl_file_t *cli_open(const char *path);

/* Modes of out x in: `cores` of each (0: the automatic rule, see cli_auto_cores); ascending, from
 * ttl_factorize. */
int cli_auto_cores(int64_t out_dim, int64_t in_dim);
int cli_choose_modes(int64_t *out_modes, int64_t *in_modes, int32_t *cores, int64_t out_dim, int64_t in_dim);

/* What a layer costs against its dense form. macs are per sample (FC) or per CLI_CONV_IMAGE image (conv), in
 * the cheaper of the factorised orders. */
typedef struct cli_stats {
    int64_t params, dense_params;
    double compression;
    int64_t macs, dense_macs;
    double macs_ratio; /* macs / dense_macs */
} cli_stats_t;
int cli_layer_stats(cli_stats_t *stats, const ttl_layer_info_t *layer);

/* A JSON description of a layer: name, kind, modes, ranks, geometry, bias, params, compression, macs. */
cJSON *cli_layer_json(const ttl_layer_info_t *layer, const cli_stats_t *stats);
/* Prints and frees a JSON value. */
int cli_print_json(cJSON *json);
/* "4,4,4" */
void cli_format_list(char *buf, size_t len, const int64_t *v, int32_t n);

/* Name of the dense tensor a layer replaces: "<layer>.weight" when the dense file has it, else "<layer>". */
const char *cli_dense_name(char *buf, size_t len, const ttl_file_t *dense, const char *layer);

int cmd_compress(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_verify(int argc, char **argv);

#endif /* TTL_TOOLS_CLI_H */
