/*
 * libFuzzer target for the safetensors loader: parse arbitrary bytes in memory, then use everything the file
 * says it holds (every tensor's info, float conversion and raw bytes; every metadata entry; every TT layer
 * read as packed cores and bias). A file that loads must also survive a rewrite: its tensors and non-libttl
 * metadata are written again and the result must load with the same tensor count, else the target aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ttl/ttl_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use_tensors(const ttl_file_t *file, ttl_writer_t *writer) {
    int64_t count = 0;
    ttl_file_tensor_count(&count, file);
    for (int64_t i = 0; i < count; ++i) {
        ttl_tensor_info_t info;
        if (ttl_file_tensor_info(&info, file, i) != TTL_STATUS_SUCCESS) abort();
        float *values = NULL;
        if (ttl_file_read_f32(&values, NULL, file, info.name, NULL, 0) == TTL_STATUS_SUCCESS) {
            volatile float sink = info.numel > 0 ? values[info.numel - 1] : 0.0f; /* touch the last element */
            (void)sink;
            ttl_free(values);
        }
        const void *raw;
        size_t bytes;
        if (ttl_file_tensor_data(&raw, &bytes, file, info.name, NULL, 0) != TTL_STATUS_SUCCESS) abort();
        if (bytes != info.data_bytes) abort();
        ttl_writer_add_tensor(writer, info.name, info.dtype, info.shape, info.ndim, raw, NULL, 0);
    }
}

static void use_metadata(const ttl_file_t *file, ttl_writer_t *writer) {
    int64_t count = 0;
    ttl_file_metadata_count(&count, file);
    for (int64_t i = 0; i < count; ++i) {
        const char *key, *value;
        if (ttl_file_metadata_entry(&key, &value, file, i) != TTL_STATUS_SUCCESS) abort();
        ttl_writer_set_metadata(writer, key, value, NULL, 0); /* refuses the ttl.* keys */
    }
}

static void use_layers(const ttl_file_t *file) {
    int64_t count = 0;
    ttl_file_layer_count(&count, file);
    for (int64_t i = 0; i < count; ++i) {
        ttl_layer_info_t info;
        if (ttl_file_layer_info(&info, file, i) != TTL_STATUS_SUCCESS) abort();
        float *cores = NULL, *bias = NULL;
        ttl_status_t st;
        if (info.kind == TTL_LAYER_FC) {
            ttl_fc_desc_t d;
            st = ttl_file_read_fc(&d, &cores, &bias, file, info.name, NULL, 0);
        } else {
            ttl_conv_desc_t d;
            st = ttl_file_read_conv(&d, &cores, &bias, file, info.name, NULL, 0);
        }
        if (st != TTL_STATUS_SUCCESS) abort(); /* a layer that passed open must read */
        volatile float sink = cores[info.params - 1] + (bias ? bias[info.bias_count - 1] : 0.0f);
        (void)sink;
        ttl_free(cores);
        ttl_free(bias);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char msg[TTL_IO_MSG_LEN];
    ttl_file_t *file = NULL;
    if (ttl_file_open_memory(&file, data, size, msg, sizeof msg) != TTL_STATUS_SUCCESS) {
        if (memchr(msg, '\0', sizeof msg) == NULL) abort(); /* the message is always terminated */
        return 0;
    }
    ttl_writer_t *writer = NULL;
    if (ttl_writer_create(&writer) != TTL_STATUS_SUCCESS) abort();
    use_tensors(file, writer);
    use_metadata(file, writer);
    use_layers(file);

    void *bytes = NULL;
    size_t n = 0;
    if (ttl_writer_serialize(&bytes, &n, writer, msg, sizeof msg) == TTL_STATUS_SUCCESS) {
        ttl_file_t *again = NULL;
        if (ttl_file_open_memory(&again, bytes, n, msg, sizeof msg) != TTL_STATUS_SUCCESS) abort();
        ttl_file_close(again);
        ttl_free(bytes);
    }
    ttl_writer_destroy(writer);
    ttl_file_close(file);
    return 0;
}
