/*
 * The safetensors dtypes: names, sizes, and the conversions to float done on read (F16 and BF16 widen exactly;
 * F64 rounds to nearest). Bytes are decoded as little-endian whatever the host, and never read through
 * unaligned pointers.
 */
#include <string.h>

#include "io/io_internal.h"

static const struct {
    ttl_dtype_t dtype;
    const char *name;
    size_t size;
} dtype_table[] = {
    {TTL_DTYPE_F32, "F32", 4},         {TTL_DTYPE_F16, "F16", 2},         {TTL_DTYPE_BF16, "BF16", 2},
    {TTL_DTYPE_F64, "F64", 8},         {TTL_DTYPE_BOOL, "BOOL", 1},       {TTL_DTYPE_U8, "U8", 1},
    {TTL_DTYPE_I8, "I8", 1},           {TTL_DTYPE_I16, "I16", 2},         {TTL_DTYPE_U16, "U16", 2},
    {TTL_DTYPE_I32, "I32", 4},         {TTL_DTYPE_U32, "U32", 4},         {TTL_DTYPE_I64, "I64", 8},
    {TTL_DTYPE_U64, "U64", 8},         {TTL_DTYPE_F8_E4M3, "F8_E4M3", 1}, {TTL_DTYPE_F8_E5M2, "F8_E5M2", 1},
    {TTL_DTYPE_F8_E8M0, "F8_E8M0", 1},
};
#define DTYPE_COUNT (sizeof(dtype_table) / sizeof(dtype_table[0]))

const char *ttl_dtype_name(ttl_dtype_t dtype) {
    for (size_t i = 0; i < DTYPE_COUNT; ++i)
        if (dtype_table[i].dtype == dtype) return dtype_table[i].name;
    return "unknown";
}

size_t ttl_dtype_size(ttl_dtype_t dtype) {
    for (size_t i = 0; i < DTYPE_COUNT; ++i)
        if (dtype_table[i].dtype == dtype) return dtype_table[i].size;
    return 0;
}

int io_dtype_parse(ttl_dtype_t *dtype, const char *name) {
    for (size_t i = 0; i < DTYPE_COUNT; ++i)
        if (strcmp(dtype_table[i].name, name) == 0) {
            *dtype = dtype_table[i].dtype;
            return 1;
        }
    return 0;
}

int io_dtype_is_float(ttl_dtype_t dtype) {
    return dtype == TTL_DTYPE_F32 || dtype == TTL_DTYPE_F16 || dtype == TTL_DTYPE_BF16 || dtype == TTL_DTYPE_F64;
}

// ---- decoding ------------------------------------------------------------------------------------------------

static uint64_t load_le(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
}

static float bits_to_f32(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

/* IEEE half: 1 sign, 5 exponent (bias 15), 10 mantissa bits; subnormals, infinities and NaN kept. */
static float f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0) return bits_to_f32(sign);
        /* subnormal: renormalise into a float exponent */
        uint32_t e = 127 - 15 + 1;
        while ((mant & 0x400u) == 0) {
            mant <<= 1;
            --e;
        }
        return bits_to_f32(sign | (e << 23) | ((mant & 0x3ffu) << 13));
    }
    return bits_to_f32(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

void io_convert_to_f32(float *dst, const unsigned char *src, int64_t n, ttl_dtype_t dtype) {
    for (int64_t i = 0; i < n; ++i) {
        switch (dtype) {
        case TTL_DTYPE_F32: dst[i] = bits_to_f32((uint32_t)load_le(src + 4 * i, 4)); break;
        case TTL_DTYPE_F16: dst[i] = f16_to_f32((uint16_t)load_le(src + 2 * i, 2)); break;
        case TTL_DTYPE_BF16: dst[i] = bits_to_f32((uint32_t)load_le(src + 2 * i, 2) << 16); break;
        case TTL_DTYPE_F64: {
            const uint64_t bits = load_le(src + 8 * i, 8);
            double d;
            memcpy(&d, &bits, sizeof(d));
            dst[i] = (float)d;
            break;
        }
        default: dst[i] = 0.0f; break; /* callers pass float dtypes only */
        }
    }
}

void io_store_f32(unsigned char *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        uint32_t bits;
        memcpy(&bits, &src[i], sizeof(bits));
        for (int b = 0; b < 4; ++b) dst[4 * i + b] = (unsigned char)(bits >> (8 * b));
    }
}
