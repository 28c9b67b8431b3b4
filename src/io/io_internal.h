/*
 * Internal pieces of the safetensors reader and writer: the parsed file, dtype helpers, the layer-name scheme
 * and the message helpers (every failure reports a status and a one-line message naming what is wrong).
 */
#ifndef TTL_IO_INTERNAL_H
#define TTL_IO_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "ttl/ttl_io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest integer a JSON number may hold here: above 2^53 doubles stop being exact. */
#define IO_MAX_JSON_INT ((int64_t)9007199254740992)
/* Room for a shortened, quoted name inside a message. */
#define IO_NAME_LEN 96

/* Suffixes of the tensors of a TT layer and the metadata keys (docs/FORMAT.md). */
#define IO_CORE_SUFFIX ".tt_core."
#define IO_SPATIAL_SUFFIX ".tt_spatial"
#define IO_BIAS_SUFFIX ".bias"
#define IO_META_VERSION "ttl.format_version"
#define IO_META_LAYER_PREFIX "ttl.layer."
#define IO_META_RESERVED_PREFIX "ttl."

/* ---------------------------------------------------------------------------------------------------------- */
/* The parsed file                                                                                              */
/* ---------------------------------------------------------------------------------------------------------- */

typedef struct io_tensor {
    char *name;
    ttl_dtype_t dtype;
    int32_t ndim;
    int64_t shape[TTL_IO_MAX_DIMS];
    int64_t numel;
    size_t begin, end; /* byte range in the data buffer (after the header) */
} io_tensor_t;

typedef struct io_layer {
    char *name;
    ttl_layer_kind_t kind;
    ttl_fc_desc_t fc;
    ttl_conv_desc_t conv;
    int64_t params;
    int64_t bias_count;
    int32_t num_parts;                /* tensors of the packed buffer: conv spatial core first */
    int64_t parts[TTL_MAX_CORES + 1]; /* their indices in ttl_file.tensors */
    int64_t bias_tensor;              /* index, or -1 */
} io_layer_t;

struct ttl_file {
    unsigned char *bytes; /* the whole file */
    size_t size;
    const unsigned char *data; /* the byte buffer after the header */
    size_t data_size;
    io_tensor_t *tensors; /* sorted by data offset */
    int64_t num_tensors;
    int64_t *by_name; /* tensor indices sorted by name */
    char **meta;      /* key, value, key, value, ... sorted by key */
    int64_t num_meta;
    io_layer_t *layers; /* sorted by name */
    int64_t num_layers;
};

/* Parses the header of file->bytes (size file->size) and fills every other field; the file frees what it got
 * on failure through io_file_free. */
ttl_status_t io_parse(struct ttl_file *file, char *msg, size_t msg_len);
/* Finds and checks the TT layers named in the metadata (after io_parse has filled tensors and metadata). */
ttl_status_t io_parse_layers(struct ttl_file *file, char *msg, size_t msg_len);
/* Frees what a file owns, including the file itself. */
void io_file_free(struct ttl_file *file);

/* Index of a tensor by name, or -1. */
int64_t io_find_tensor(const struct ttl_file *file, const char *name);
/* Index of a metadata key, or -1. */
int64_t io_find_meta(const struct ttl_file *file, const char *key);

/* ---------------------------------------------------------------------------------------------------------- */
/* Dtypes                                                                                                       */
/* ---------------------------------------------------------------------------------------------------------- */

/* The dtype spelled `name`; 0 when unknown. */
int io_dtype_parse(ttl_dtype_t *dtype, const char *name);
/* 1 for F32, F16, BF16 and F64, the dtypes that convert to float. */
int io_dtype_is_float(ttl_dtype_t dtype);
/* Converts n little-endian elements of a float dtype at src (maybe unaligned) to float. */
void io_convert_to_f32(float *dst, const unsigned char *src, int64_t n, ttl_dtype_t dtype);
/* Writes n floats as little-endian F32 bytes. */
void io_store_f32(unsigned char *dst, const float *src, int64_t n);

/* ---------------------------------------------------------------------------------------------------------- */
/* Messages                                                                                                     */
/* ---------------------------------------------------------------------------------------------------------- */

/* Writes a printf-style message to msg (if any) and returns `status`. */
ttl_status_t io_fail(char *msg, size_t msg_len, ttl_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A quoted, printable, shortened copy of a name for a message: 'name' or 'very_long_na...'. */
const char *io_quote(char buf[IO_NAME_LEN], const char *name);
/* 1 when the n bytes at s are valid UTF-8 (no NUL). */
int io_utf8_valid(const unsigned char *s, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* TTL_IO_INTERNAL_H */
