/*
 * libttl model files: dense tensors and TT layers in safetensors files (the format is in docs/FORMAT.md of the
 * source tree). A file written here loads with Python's `safetensors` unchanged, and any safetensors file loads
 * here (dense tensors of every safetensors dtype; F32, F16, BF16 and F64 convert to float on read).
 *
 * Walk-through:
 *
 *     char msg[TTL_IO_MSG_LEN];
 *     ttl_file_t *file;
 *     if (ttl_file_open(&file, "model.safetensors", msg, sizeof msg) != TTL_STATUS_SUCCESS)
 *         fprintf(stderr, "%s\n", msg);                        // open: reads and validates the whole file
 *     ttl_layer_info_t layer;
 *     ttl_file_find_layer(&layer, file, "fc1", msg, sizeof msg);    // what the layer is (kind, descriptor)
 *     ttl_fc_desc_t desc; float *cores, *bias;
 *     ttl_file_read_fc(&desc, &cores, &bias, file, "fc1", msg, sizeof msg);  // packed cores as ttl.h expects
 *     ...ttl_fc_plan_create(&plan, &desc, batch, NULL)...
 *     ttl_free(cores); ttl_free(bias); ttl_file_close(file);
 *
 *     ttl_writer_t *w;
 *     ttl_writer_create(&w);
 *     ttl_writer_add_fc(w, "fc1", &desc, cores, bias, msg, sizeof msg);    // a TT layer (data copied)
 *     ttl_writer_add_tensor(w, "head.weight", TTL_DTYPE_F32, shape, 2, data, msg, sizeof msg);
 *     ttl_writer_save(w, "out.safetensors", msg, sizeof msg);   // temporary file, then rename()
 *     ttl_writer_destroy(w);
 *
 * Conventions:
 *  - Every function that can fail because of a file's content or the filesystem ends with (char *msg, size_t
 *    msg_len). On failure, a one-line message naming the tensor or layer and the problem is written there (at
 *    most msg_len bytes with the terminating NUL; msg may be NULL). On success msg is left untouched, like every
 *    other output.
 *  - ttl_file_open validates the whole file once: header length, UTF-8 and JSON, dtypes, shapes, data offsets
 *    (in range, sized numel * dtype size, no overlap, no gap, the buffer covered exactly), the format version and
 *    every TT layer (metadata against tensor shapes, ranks that chain). After a successful open, reads fail only
 *    for NOT_FOUND, a wrong kind or dtype, or OUT_OF_MEMORY. A malformed file gives TTL_STATUS_BAD_FILE; an
 *    unreadable one TTL_STATUS_IO_ERROR. Nothing is ever read out of bounds.
 *  - A file object keeps the whole file in memory and is immutable, so concurrent reads are safe.
 *  - Tensor data is little-endian, as safetensors specifies; raw data pointers may be unaligned.
 */
#ifndef TTL_TTL_IO_H
#define TTL_TTL_IO_H

#include <stddef.h>
#include <stdint.h>

#include "ttl/ttl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A message buffer of this size holds every message the library writes without truncation of its own text
 * (long tensor names are shortened in messages). */
#define TTL_IO_MSG_LEN 512
/* Most dimensions a tensor may have in a file libttl reads or writes. */
#define TTL_IO_MAX_DIMS 16
/* Largest JSON header accepted, in bytes (the limit of Python's safetensors). */
#define TTL_IO_MAX_HEADER_BYTES ((uint64_t)100000000)
/* The TT-layer format version this library writes and reads (metadata key "ttl.format_version"). */
#define TTL_IO_FORMAT_VERSION 1

/* ------------------------------------------------------------------------------------------------------------
 * Element types: the safetensors dtypes ("F32", "BF16", ...).
 * ------------------------------------------------------------------------------------------------------------ */

typedef enum ttl_dtype {
    TTL_DTYPE_F32 = 0,
    TTL_DTYPE_F16 = 1,
    TTL_DTYPE_BF16 = 2,
    TTL_DTYPE_F64 = 3,
    TTL_DTYPE_BOOL = 4,
    TTL_DTYPE_U8 = 5,
    TTL_DTYPE_I8 = 6,
    TTL_DTYPE_I16 = 7,
    TTL_DTYPE_U16 = 8,
    TTL_DTYPE_I32 = 9,
    TTL_DTYPE_U32 = 10,
    TTL_DTYPE_I64 = 11,
    TTL_DTYPE_U64 = 12,
    TTL_DTYPE_F8_E4M3 = 13,
    TTL_DTYPE_F8_E5M2 = 14,
    TTL_DTYPE_F8_E8M0 = 15,
} ttl_dtype_t;

/* The safetensors spelling ("F32"); "unknown" for values out of range. */
TTL_API const char *ttl_dtype_name(ttl_dtype_t dtype);
/* Bytes per element; 0 for values out of range. */
TTL_API size_t ttl_dtype_size(ttl_dtype_t dtype);

/* ------------------------------------------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------------------------------------------ */

typedef struct ttl_file ttl_file_t;

/* One tensor of a file. `name` is owned by the file and valid until ttl_file_close. */
typedef struct ttl_tensor_info {
    const char *name;
    ttl_dtype_t dtype;
    int32_t ndim;                   /* 0 for a scalar */
    int64_t shape[TTL_IO_MAX_DIMS]; /* entries past ndim are 0 */
    int64_t numel;                  /* product of the shape (1 for a scalar) */
    size_t data_bytes;              /* numel * ttl_dtype_size(dtype) */
} ttl_tensor_info_t;

typedef enum ttl_layer_kind {
    TTL_LAYER_FC = 0,   /* a TT-matrix: fc is valid */
    TTL_LAYER_CONV = 1, /* a TT-conv kernel: conv is valid */
} ttl_layer_kind_t;

/* One TT layer of a file. `name` is owned by the file and valid until ttl_file_close. */
typedef struct ttl_layer_info {
    const char *name;
    ttl_layer_kind_t kind;
    ttl_fc_desc_t fc;     /* kind == TTL_LAYER_FC; zero otherwise */
    ttl_conv_desc_t conv; /* kind == TTL_LAYER_CONV; zero otherwise */
    int64_t params;       /* floats in the packed core buffer (bias excluded) */
    int64_t bias_count;   /* M (or S) when the layer has a bias, else 0 */
} ttl_layer_info_t;

/* Reads and validates a whole file. */
TTL_API ttl_status_t ttl_file_open(ttl_file_t **file, const char *path, char *msg, size_t msg_len);
/* The same from `bytes` bytes in memory (copied: the caller's buffer may go away). */
TTL_API ttl_status_t ttl_file_open_memory(ttl_file_t **file, const void *data, size_t bytes, char *msg,
                                          size_t msg_len);
/* NULL is fine. */
TTL_API void ttl_file_close(ttl_file_t *file);

/* Tensors in file order (by data offset), index 0..count-1. Every tensor is listed, TT cores included. */
TTL_API ttl_status_t ttl_file_tensor_count(int64_t *count, const ttl_file_t *file);
TTL_API ttl_status_t ttl_file_tensor_info(ttl_tensor_info_t *info, const ttl_file_t *file, int64_t index);
/* NOT_FOUND when no tensor has that name. */
TTL_API ttl_status_t ttl_file_find_tensor(ttl_tensor_info_t *info, const ttl_file_t *file, const char *name,
                                          char *msg, size_t msg_len);

/* The tensor as a new float buffer of numel elements (free with ttl_free); F16, BF16 and F64 are converted.
 * UNSUPPORTED for other dtypes. *count (may be NULL) gets numel. */
TTL_API ttl_status_t ttl_file_read_f32(float **data, int64_t *count, const ttl_file_t *file, const char *name,
                                       char *msg, size_t msg_len);
/* The tensor's bytes as stored (little-endian, maybe unaligned), owned by the file: valid until close. */
TTL_API ttl_status_t ttl_file_tensor_data(const void **data, size_t *bytes, const ttl_file_t *file,
                                          const char *name, char *msg, size_t msg_len);

/* The "__metadata__" entries, sorted by key (the ttl.* keys included). Strings owned by the file. */
TTL_API ttl_status_t ttl_file_metadata_count(int64_t *count, const ttl_file_t *file);
TTL_API ttl_status_t ttl_file_metadata_entry(const char **key, const char **value, const ttl_file_t *file,
                                             int64_t index);
/* NOT_FOUND when the key is absent. */
TTL_API ttl_status_t ttl_file_metadata_get(const char **value, const ttl_file_t *file, const char *key);

/* TT layers sorted by name, index 0..count-1. */
TTL_API ttl_status_t ttl_file_layer_count(int64_t *count, const ttl_file_t *file);
TTL_API ttl_status_t ttl_file_layer_info(ttl_layer_info_t *info, const ttl_file_t *file, int64_t index);
/* NOT_FOUND when no layer has that name. */
TTL_API ttl_status_t ttl_file_find_layer(ttl_layer_info_t *info, const ttl_file_t *file, const char *name,
                                         char *msg, size_t msg_len);

/* A TT layer: its descriptor, a new packed core buffer (ttl.h packing; conv: spatial core first) and a new bias
 * buffer, NULL when the layer has none. Free both with ttl_free. `bias` may be NULL when not wanted.
 * NOT_FOUND when there is no such layer, BAD_ARGUMENT when it is of the other kind. */
TTL_API ttl_status_t ttl_file_read_fc(ttl_fc_desc_t *desc, float **cores, float **bias, const ttl_file_t *file,
                                      const char *name, char *msg, size_t msg_len);
TTL_API ttl_status_t ttl_file_read_conv(ttl_conv_desc_t *desc, float **cores, float **bias, const ttl_file_t *file,
                                        const char *name, char *msg, size_t msg_len);

/* ------------------------------------------------------------------------------------------------------------
 * Writing: collect tensors and layers (their data is copied), then save. Tensors are laid out by element size
 * (largest first) then name, the metadata keys by name, so the same content always gives the same bytes.
 * ------------------------------------------------------------------------------------------------------------ */

typedef struct ttl_writer ttl_writer_t;

TTL_API ttl_status_t ttl_writer_create(ttl_writer_t **writer);
/* NULL is fine. */
TTL_API void ttl_writer_destroy(ttl_writer_t *writer);

/* A dense tensor of `ndim` dimensions (0..TTL_IO_MAX_DIMS) holding prod(shape) elements of `dtype` at `data`
 * (little-endian; may be NULL when the tensor is empty). BAD_ARGUMENT for an empty, non-UTF-8 or already used
 * name, "__metadata__", an unknown dtype or ndim out of range; BAD_SIZE for a negative dimension; OVERFLOW when
 * the byte size does not fit. A failed add leaves the writer as it was (the layer adds below too). */
TTL_API ttl_status_t ttl_writer_add_tensor(ttl_writer_t *writer, const char *name, ttl_dtype_t dtype,
                                           const int64_t *shape, int32_t ndim, const void *data, char *msg,
                                           size_t msg_len);
/* A TT layer under `name`: tensors "<name>.tt_core.<k>" (and "<name>.tt_spatial" for conv) from the packed
 * `cores`, "<name>.bias" when bias is not NULL, and the metadata entry "ttl.layer.<name>". */
TTL_API ttl_status_t ttl_writer_add_fc(ttl_writer_t *writer, const char *name, const ttl_fc_desc_t *desc,
                                       const float *cores, const float *bias, char *msg, size_t msg_len);
TTL_API ttl_status_t ttl_writer_add_conv(ttl_writer_t *writer, const char *name, const ttl_conv_desc_t *desc,
                                         const float *cores, const float *bias, char *msg, size_t msg_len);
/* A "__metadata__" entry; a key set twice keeps the last value. The keys starting with "ttl." are libttl's
 * (BAD_ARGUMENT). */
TTL_API ttl_status_t ttl_writer_set_metadata(ttl_writer_t *writer, const char *key, const char *value, char *msg,
                                             size_t msg_len);

/* Writes the file: a temporary file in the same directory, then rename(), so on failure (IO_ERROR) no partial
 * file is left and an existing file at `path` is untouched. */
TTL_API ttl_status_t ttl_writer_save(const ttl_writer_t *writer, const char *path, char *msg, size_t msg_len);
/* The same bytes in a new buffer (free with ttl_free). */
TTL_API ttl_status_t ttl_writer_serialize(void **data, size_t *bytes, const ttl_writer_t *writer, char *msg,
                                          size_t msg_len);

#ifdef __cplusplus
}
#endif

#endif /* TTL_TTL_IO_H */
