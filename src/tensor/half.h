/* float16 / bfloat16 <-> float32 / float64 conversions (round to nearest even,
 * numpy-exact for float64 -> float16) and bulk converters to float32. */
#ifndef CDF_TENSOR_HALF_H
#define CDF_TENSOR_HALF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cdiffusers/core.h"

/* IEEE binary16 bits -> float (exact; NaN payload kept in the top mantissa bits). */
float cdf_f16_to_f32(uint16_t h);
/* bfloat16 bits -> float (exact). */
static inline float cdf_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* float -> binary16, round to nearest even; overflow -> inf; NaN stays NaN
 * (numpy's npy_floatbits_to_halfbits payload rule). */
uint16_t cdf_f32_to_f16(float f);
/* double -> binary16 in one rounding, nearest even, exactly as numpy's
 * float64 -> float16 astype (npy_doublebits_to_halfbits). */
uint16_t cdf_f64_to_f16(double d);
/* float -> bfloat16, round to nearest even; NaN stays NaN (sign and top
 * payload kept, quiet bit set). */
static inline uint16_t cdf_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* src[n] of src_dtype (any of F32, F16, BF16, F64, I64, I32, U8; src may be
 * misaligned) -> dst[n] float32.  An unknown dtype writes zeros.  Caller owns
 * both buffers. */
void cdf_convert_to_f32(cdf_dtype src_dtype, const void *src, float *dst, size_t n);
/* src[n] float32 -> dst[n] of dst_dtype (F32, F16, BF16 or F64; dst may be
 * misaligned); returns 0, or -1 (nothing written) for any other dtype.  Caller
 * owns both buffers. */
int cdf_convert_from_f32(cdf_dtype dst_dtype, const float *src, void *dst, size_t n);

#endif
