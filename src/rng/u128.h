/* 128-bit unsigned arithmetic for PCG64.  Native unsigned __int128 where the
 * compiler has it (gcc/clang), a portable 64x64->128 path otherwise; the
 * portable functions are always compiled so tests can compare both. */
#ifndef CDF_RNG_U128_H
#define CDF_RNG_U128_H

#include <stdint.h>

/* A 128-bit unsigned value as two 64-bit halves. */
typedef struct cdf_u128 {
    uint64_t hi, lo;
} cdf_u128;

static inline cdf_u128 cdf_u128_make(uint64_t hi, uint64_t lo) {
    cdf_u128 r;
    r.hi = hi;
    r.lo = lo;
    return r;
}

/* a + b mod 2^128. */
static inline cdf_u128 cdf_u128_add(cdf_u128 a, cdf_u128 b) {
    cdf_u128 r;
    r.lo = a.lo + b.lo;
    r.hi = a.hi + b.hi + (r.lo < a.lo);
    return r;
}

/* Full 64x64 -> 128 product from 32-bit limbs (no compiler extension). */
static inline cdf_u128 cdf_mul64x64_portable(uint64_t a, uint64_t b) {
    uint64_t a0 = a & 0xffffffffu, a1 = a >> 32;
    uint64_t b0 = b & 0xffffffffu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    /* middle column: carries out of bit 63 of the low word */
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    cdf_u128 r;
    r.lo = (mid << 32) | (p00 & 0xffffffffu);
    r.hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    return r;
}

/* a * b mod 2^128, portable path. */
static inline cdf_u128 cdf_u128_mul_portable(cdf_u128 a, cdf_u128 b) {
    cdf_u128 r = cdf_mul64x64_portable(a.lo, b.lo);
    r.hi += a.hi * b.lo + a.lo * b.hi;
    return r;
}

#if defined(__SIZEOF_INT128__) && !defined(CDF_FORCE_PORTABLE_U128)
#define CDF_HAVE_NATIVE_U128 1
__extension__ typedef unsigned __int128 cdf_native_u128;

/* a * b mod 2^128 with the compiler's 128-bit integers. */
static inline cdf_u128 cdf_u128_mul_native(cdf_u128 a, cdf_u128 b) {
    cdf_native_u128 x = ((cdf_native_u128)a.hi << 64) | a.lo;
    cdf_native_u128 y = ((cdf_native_u128)b.hi << 64) | b.lo;
    cdf_native_u128 p = x * y;
    return cdf_u128_make((uint64_t)(p >> 64), (uint64_t)p);
}
#define cdf_u128_mul cdf_u128_mul_native
#else
#define CDF_HAVE_NATIVE_U128 0
#define cdf_u128_mul cdf_u128_mul_portable
#endif

#endif
