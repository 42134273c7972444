/* Scalar half-precision conversions and bulk converters. */
#include "tensor/half.h"

#include <string.h>

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float cdf_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    if (e == 0) {
        /* zero or subnormal: m * 2^-24, exact in float */
        float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
    return bits_f32(sign | ((e - 15u + 127u) << 23) | (m << 13));
}


/* Rounds sig >> shift to nearest, ties to even (1 <= shift <= 63). */
static uint64_t shift_rne(uint64_t sig, unsigned shift) {
    uint64_t q = sig >> shift;
    uint64_t rem = sig & ((1ULL << shift) - 1u);
    uint64_t half = 1ULL << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return q;
}

/* Shared binary16 encoder: a finite non-zero magnitude sig * 2^(e - frac_bits)
 * with sig = 1.mantissa (frac_bits fraction bits), unbiased exponent e. */
static uint16_t encode_f16(uint16_t sign, int e, uint64_t sig, unsigned frac_bits) {
    if (e >= 16) return sign | 0x7c00u; /* >= 2^16: infinity */
    if (e >= -14) {
        /* normal: keep 10 fraction bits; a carry may bump the exponent (to inf at the top) */
        uint64_t q = shift_rne(sig, frac_bits - 10u); /* in [2^10, 2^11] */
        return (uint16_t)(sign + ((uint32_t)(e + 14) << 10) + (uint32_t)q);
    }
    /* subnormal: units of 2^-24, value = sig * 2^(e - frac_bits + 24) */
    int shift = (int)frac_bits - 24 - e;
    if (shift > (int)frac_bits + 1) return sign; /* below 2^-25: rounds to zero */
    return (uint16_t)(sign + (uint32_t)shift_rne(sig, (unsigned)shift));
}

uint16_t cdf_f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t e = (u >> 23) & 0xffu;
    uint32_t m = u & 0x7fffffu;
    if (e == 0xffu) {
        if (m == 0) return sign | 0x7c00u;
        uint16_t nan = (uint16_t)(0x7c00u + (m >> 13));
        return sign | (nan == 0x7c00u ? 0x7c01u : nan);
    }
    if (e == 0) return sign; /* float zero/subnormal (< 2^-126): zero */
    return encode_f16(sign, (int)e - 127, (1ULL << 23) | m, 23);
}

uint16_t cdf_f64_to_f16(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    uint16_t sign = (uint16_t)((u >> 48) & 0x8000u);
    uint32_t e = (uint32_t)((u >> 52) & 0x7ffu);
    uint64_t m = u & 0x000fffffffffffffULL;
    if (e == 0x7ffu) {
        if (m == 0) return sign | 0x7c00u;
        uint16_t nan = (uint16_t)(0x7c00u + (m >> 42));
        return sign | (nan == 0x7c00u ? 0x7c01u : nan);
    }
    if (e == 0) return sign; /* double zero/subnormal: zero */
    return encode_f16(sign, (int)e - 1023, (1ULL << 52) | m, 52);
}

void cdf_convert_to_f32(cdf_dtype src_dtype, const void *src, float *dst, size_t n) {
    const unsigned char *p = src; /* [n * elsize] bytes, any alignment */
    size_t i;
    switch (src_dtype) {
    case CDF_F32:
        memmove(dst, src, n * sizeof(float));
        return;
    case CDF_F16:
        for (i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = cdf_f16_to_f32(h);
        }
        return;
    case CDF_BF16:
        for (i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = cdf_bf16_to_f32(h);
        }
        return;
    case CDF_F64:
        for (i = 0; i < n; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            dst[i] = (float)v;
        }
        return;
    case CDF_I64:
        for (i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            dst[i] = (float)v;
        }
        return;
    case CDF_I32:
        for (i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            dst[i] = (float)v;
        }
        return;
    case CDF_U8:
        for (i = 0; i < n; i++) dst[i] = (float)p[i];
        return;
    }
    memset(dst, 0, n * sizeof(float));
}

int cdf_convert_from_f32(cdf_dtype dst_dtype, const float *src, void *dst, size_t n) {
    unsigned char *p = dst; /* [n * elsize] bytes, any alignment */
    size_t i;
    switch (dst_dtype) {
    case CDF_F32:
        memmove(dst, src, n * sizeof(float));
        return 0;
    case CDF_F16:
        for (i = 0; i < n; i++) {
            uint16_t h = cdf_f32_to_f16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return 0;
    case CDF_BF16:
        for (i = 0; i < n; i++) {
            uint16_t h = cdf_f32_to_bf16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return 0;
    case CDF_F64:
        for (i = 0; i < n; i++) {
            double v = src[i];
            memcpy(p + 8 * i, &v, 8);
        }
        return 0;
    default:
        return -1;
    }
}
