/* float16 / bfloat16 conversions: exhaustive float16 round trips, numpy's own
 * float64->float16 and float32->float16 results (golden table below), an
 * independent nearest-value oracle on random inputs, and the bulk converters
 * on misaligned buffers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "tensor/half.h"

/* numpy 1.24.2: np.array([d]).astype(np.float16) for these float64 bit patterns. */
static const struct {
    uint64_t d;
    uint16_t h;
} k_np_f64_to_f16[] = {
    {0x0000000000000000ULL, 0x0000}, /* 0.0 */
    {0x8000000000000000ULL, 0x8000}, /* -0.0 */
    {0x3ff0000000000000ULL, 0x3c00}, /* 1.0 */
    {0xbff0000000000000ULL, 0xbc00}, /* -1.0 */
    {0x40effc0000000000ULL, 0x7bff}, /* 65504.0 */
    {0x40effdffffffffffULL, 0x7bff}, /* 65519.99999999999 */
    {0x40effe0000000000ULL, 0x7c00}, /* 65520.0 */
    {0xc0effe0000000000ULL, 0xfc00}, /* -65520.0 */
    {0x7e37e43c8800759cULL, 0x7c00}, /* 1e+300 */
    {0x81a56e1fc2f8f359ULL, 0x8000}, /* -1e-300 */
    {0x3e70000000000000ULL, 0x0001}, /* 2^-24 */
    {0x3e60000000000000ULL, 0x0000}, /* 2^-25: tie to even zero */
    {0x3e60000000000001ULL, 0x0001}, /* just above 2^-25 */
    {0x3e68000000000000ULL, 0x0001}, /* 3 * 2^-26 */
    {0x3f10000000000000ULL, 0x0400}, /* 2^-14 */
    {0x3f0fffffffffffffULL, 0x0400},
    {0x3f0ffc0000000000ULL, 0x0400},
    {0x3f0ffe0000000000ULL, 0x0400},
    {0x3ff0020000000000ULL, 0x3c00}, /* 1 + 2^-11: tie to even */
    {0x3ff0060000000000ULL, 0x3c02}, /* 1 + 3 * 2^-11: tie to even (up) */
    {0x3ff0020000001000ULL, 0x3c01},
    {0x40a0020000000000ULL, 0x6800}, /* 2049 */
    {0x40a0060000000000ULL, 0x6802}, /* 2051 */
    {0x3fb999999999999aULL, 0x2e66}, /* 0.1 */
    {0xbfd5555555555555ULL, 0xb555}, /* -1/3 */
    {0x400921fb54442d18ULL, 0x4248}, /* pi */
    {0x3ff0040000000000ULL, 0x3c01},
    {0x7ff0000000000000ULL, 0x7c00}, /* inf */
    {0xfff0000000000000ULL, 0xfc00}, /* -inf */
    {0x3e78000000000000ULL, 0x0002},
    {0x3e84000000000000ULL, 0x0002},
    {0x3e6000001ad7f29bULL, 0x0001},
    {0xbe4138aa256f93d2ULL, 0x8000},
    {0xbf215bcfb702322bULL, 0x8857},
    {0xbfcfca504a3d846aULL, 0xb3f3},
    {0x3f7138b0178f5fd2ULL, 0x1c4e},
    {0x3ff22d3f20fc6f7bULL, 0x3c8b},
    {0x3ff18d92f947da6eULL, 0x3c63},
    {0xbfe1af496efd9acfULL, 0xb86c},
    {0xbe0af7004208e2ccULL, 0x8000},
    {0x40f247a93bb16125ULL, 0x7c00},
    {0x3fc4ecdb6947330cULL, 0x313b},
    {0x40a54f6021e00cb2ULL, 0x6954},
    {0xbee9dd62023b1631ULL, 0x80cf},
    {0xbf191ecf16591a1eULL, 0x8648},
    {0x40cf40186f154e7cULL, 0x73d0},
    {0x3e55c8ca4163cc2dULL, 0x0000},
    {0xbe1dc202752e8d8dULL, 0x8000},
    {0x3ff0020000400000ULL, 0x3c01}, /* via float32 this would tie and round down: single rounding matters */
    {0x3ff001ffffc00000ULL, 0x3c00},
    {0x7ff8000000000000ULL, 0x7e00}, /* NaN payloads */
    {0xfff0000000000001ULL, 0xfc01},
    {0x7ff0040000000000ULL, 0x7c01},
    {0x7ff0000000000400ULL, 0x7c01},
};

/* numpy 1.24.2: np.array([f], np.float32).astype(np.float16). */
static const struct {
    uint32_t f;
    uint16_t h;
} k_np_f32_to_f16[] = {
    {0x00000000u, 0x0000}, {0x80000000u, 0x8000}, {0x3f800000u, 0x3c00}, {0x477fe000u, 0x7bff},
    {0x477fefffu, 0x7bff}, {0x477ff000u, 0x7c00}, {0x33800000u, 0x0001}, {0x33000000u, 0x0000},
    {0x33000001u, 0x0001}, {0x33c00000u, 0x0002}, {0x38800000u, 0x0400}, {0x387fc000u, 0x03ff},
    {0x387fe000u, 0x0400}, {0x3f801000u, 0x3c00}, {0x3f803000u, 0x3c02}, {0x3f801001u, 0x3c01},
    {0x7f800000u, 0x7c00}, {0xff800000u, 0xfc00}, {0x7fc00000u, 0x7e00}, {0x7f800001u, 0x7c01},
    {0xff802000u, 0xfc01}, {0x7fa00000u, 0x7d00}, {0x00000001u, 0x0000}, {0x3dcccccdu, 0x2e66},
    {0xc0490fdbu, 0xc248}, {0x7f7fffffu, 0x7c00}, {0x38000000u, 0x0200}, {0x37ffffffu, 0x0200},
    {0x33800001u, 0x0001},
};

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double bits_to_double(uint64_t u) {
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Independent oracle: the float16 nearest to finite d (ties to even bits),
 * by binary search over the ordered positive half values. */
static uint16_t oracle_f64_to_f16(double d) {
    uint16_t sign = signbit(d) ? 0x8000u : 0;
    double a = fabs(d);
    if (a >= 65520.0) return sign | 0x7c00u; /* halfway between 65504 and 2^16 and beyond */
    /* largest h in [0, 0x7bff] with value(h) <= a */
    unsigned lo = 0, hi = 0x7bffu;
    while (lo < hi) {
        unsigned mid = (lo + hi + 1) / 2;
        if ((double)cdf_f16_to_f32((uint16_t)mid) <= a)
            lo = mid;
        else
            hi = mid - 1;
    }
    double v0 = cdf_f16_to_f32((uint16_t)lo);
    if (v0 == a) return sign | (uint16_t)lo;
    double v1 = lo == 0x7bffu ? 65536.0 : (double)cdf_f16_to_f32((uint16_t)(lo + 1));
    double midv = (v0 + v1) / 2; /* exact: few significant bits */
    unsigned r = a < midv ? lo : a > midv ? lo + 1 : ((lo & 1u) ? lo + 1 : lo);
    return sign | (uint16_t)r;
}

/* The float16 value table itself, spot-checked against known encodings. */
static void test_f16_to_f32_known(void **state) {
    (void)state;
    assert_true(cdf_f16_to_f32(0x3c00) == 1.0f);
    assert_true(cdf_f16_to_f32(0xc000) == -2.0f);
    assert_true(cdf_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(cdf_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(cdf_f16_to_f32(0x03ff) == 0x3ffp-24f);
    assert_true(cdf_f16_to_f32(0x0400) == 0x1p-14f);
    assert_true(cdf_f16_to_f32(0x3555) == 0x1.554p-2f);
    assert_true(isinf(cdf_f16_to_f32(0x7c00)) && cdf_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(cdf_f16_to_f32(0x7e00)) && isnan(cdf_f16_to_f32(0x7c01)));
    assert_int_equal(float_bits(cdf_f16_to_f32(0x8000)), 0x80000000u);
    assert_true(cdf_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(cdf_bf16_to_f32(0xc049) == -3.140625f);
}

/* All 65536 float16 patterns: f16 -> f32 -> f16 and f16 -> f64 -> f16 are the identity. */
static void test_f16_roundtrip_exhaustive(void **state) {
    (void)state;
    unsigned bad = 0;
    for (uint32_t h = 0; h < 65536u; h++) {
        float f = cdf_f16_to_f32((uint16_t)h);
        if (cdf_f32_to_f16(f) != h) bad++;
        /* float -> double quiets a signalling NaN, so NaNs need only stay NaNs of that sign */
        uint16_t via64 = cdf_f64_to_f16((double)f);
        if (isnan(f) ? ((via64 & 0x7fffu) <= 0x7c00u || (via64 & 0x8000u) != (h & 0x8000u)) : via64 != h) bad++;
        /* value order: positive halves increase with their bits */
        if (h > 0 && h < 0x7c00u && !(cdf_f16_to_f32((uint16_t)(h - 1)) < f)) bad++;
    }
    assert_int_equal(bad, 0);
}

static void test_f64_to_f16_numpy_golden(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof k_np_f64_to_f16 / sizeof k_np_f64_to_f16[0]; i++) {
        uint16_t got = cdf_f64_to_f16(bits_to_double(k_np_f64_to_f16[i].d));
        if (got != k_np_f64_to_f16[i].h)
            fail_msg("f64 0x%016llx: got 0x%04x want 0x%04x", (unsigned long long)k_np_f64_to_f16[i].d, got,
                     k_np_f64_to_f16[i].h);
    }
    for (size_t i = 0; i < sizeof k_np_f32_to_f16 / sizeof k_np_f32_to_f16[0]; i++) {
        uint16_t got = cdf_f32_to_f16(bits_float(k_np_f32_to_f16[i].f));
        if (got != k_np_f32_to_f16[i].h)
            fail_msg("f32 0x%08x: got 0x%04x want 0x%04x", k_np_f32_to_f16[i].f, got, k_np_f32_to_f16[i].h);
    }
}

/* Random doubles/floats over the whole float16 range (and beyond) vs the oracle,
 * plus every exact midpoint between neighbouring halves and its neighbours. */
static void test_f16_rounding_oracle(void **state) {
    (void)state;
    uint64_t s = 12345;
    unsigned bad = 0;
    for (int i = 0; i < 300000; i++) {
        uint64_t r = splitmix(&s);
        /* exponent in [2^-30, 2^17) so both subnormal and overflow cases appear */
        int e = (int)(r % 47) - 30;
        double d = ldexp(1.0 + (double)(splitmix(&s) >> 11) * 0x1p-53, e);
        if (r & (1ULL << 40)) d = -d;
        if (cdf_f64_to_f16(d) != oracle_f64_to_f16(d)) bad++;
        float f = (float)d;
        if (cdf_f32_to_f16(f) != oracle_f64_to_f16((double)f)) bad++;
    }
    for (uint32_t h = 0; h < 0x7bffu; h++) {
        double a = cdf_f16_to_f32((uint16_t)h), b = cdf_f16_to_f32((uint16_t)(h + 1));
        double mid = (a + b) / 2;
        double probes[3] = {mid, nextafter(mid, 0), nextafter(mid, 1e9)};
        for (int k = 0; k < 3; k++) {
            if (cdf_f64_to_f16(probes[k]) != oracle_f64_to_f16(probes[k])) bad++;
            if (cdf_f64_to_f16(-probes[k]) != oracle_f64_to_f16(-probes[k])) bad++;
            float pf = (float)probes[k];
            if (cdf_f32_to_f16(pf) != oracle_f64_to_f16(pf)) bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* bfloat16: every pattern round-trips; RNE against the two neighbours. */
static void test_bf16(void **state) {
    (void)state;
    unsigned bad = 0;
    for (uint32_t h = 0; h < 65536u; h++) {
        float f = cdf_bf16_to_f32((uint16_t)h);
        uint16_t back = cdf_f32_to_bf16(f);
        if (isnan(f)) {
            if (!isnan(cdf_bf16_to_f32(back)) || (back & 0x8000u) != (h & 0x8000u)) bad++;
        } else if (back != h) {
            bad++;
        }
    }
    uint64_t s = 99;
    for (int i = 0; i < 300000; i++) {
        uint32_t u = (uint32_t)splitmix(&s);
        float f = bits_float(u);
        if (isnan(f)) {
            if (!isnan(cdf_bf16_to_f32(cdf_f32_to_bf16(f)))) bad++;
            continue;
        }
        uint32_t lo = u & 0xffff0000u;
        double a = fabs((double)bits_float(lo));
        double x = fabs((double)f);
        uint16_t want;
        if ((lo & 0x7fffffffu) == 0x7f800000u) {
            want = (uint16_t)(lo >> 16); /* infinity */
        } else {
            /* next magnitude up (may be infinity: then use 2^128 as its value) */
            uint32_t up = lo + 0x10000u;
            double b = (up & 0x7fffffffu) == 0x7f800000u ? 0x1p128 : fabs((double)bits_float(up));
            double mid = (a + b) / 2;
            int take_up = x > mid || (x == mid && ((lo >> 16) & 1u));
            want = (uint16_t)((take_up ? up : lo) >> 16);
        }
        if (cdf_f32_to_bf16(f) != want) bad++;
    }
    assert_int_equal(cdf_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(cdf_f32_to_bf16(bits_float(0x3f808000u)), 0x3f80); /* tie, even stays */
    assert_int_equal(cdf_f32_to_bf16(bits_float(0x3f818000u)), 0x3f82); /* tie, odd goes up */
    assert_int_equal(cdf_f32_to_bf16(bits_float(0x7f7fffffu)), 0x7f80); /* FLT_MAX -> inf */
    assert_int_equal(cdf_f32_to_bf16(bits_float(0xffc00001u)), 0xffc0);
    assert_int_equal(bad, 0);
}

/* Bulk converters read misaligned sources and match the scalar helpers. */
static void test_bulk_convert_misaligned(void **state) {
    (void)state;
    enum { N = 37 };
    unsigned char raw[8 * N + 16];
    float dst[N], want[N];
    uint64_t s = 7;
    const cdf_dtype types[] = {CDF_F32, CDF_F16, CDF_BF16, CDF_F64, CDF_I64, CDF_I32, CDF_U8};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (size_t off = 0; off < 8; off++) {
            size_t es = cdf_dtype_size(types[t]);
            unsigned char *src = raw + off;
            for (size_t i = 0; i < N; i++) {
                uint64_t r = splitmix(&s);
                switch (types[t]) {
                case CDF_F32: { float v = (float)((int64_t)(r % 20001) - 10000) / 7.0f; memcpy(src + 4 * i, &v, 4); want[i] = v; break; }
                case CDF_F16: { uint16_t h = (uint16_t)(r & 0x7bffu); memcpy(src + 2 * i, &h, 2); want[i] = cdf_f16_to_f32(h); break; }
                case CDF_BF16: { uint16_t h = (uint16_t)(r & 0x7f7fu); memcpy(src + 2 * i, &h, 2); want[i] = bits_float((uint32_t)h << 16); break; }
                case CDF_F64: { double v = (double)(int64_t)(r % 1000003) / 3.0; memcpy(src + 8 * i, &v, 8); want[i] = (float)v; break; }
                case CDF_I64: { int64_t v = (int64_t)(r % 2000001) - 1000000; memcpy(src + 8 * i, &v, 8); want[i] = (float)v; break; }
                case CDF_I32: { int32_t v = (int32_t)(r % 2001) - 1000; memcpy(src + 4 * i, &v, 4); want[i] = (float)v; break; }
                case CDF_U8: { src[i] = (unsigned char)r; want[i] = (float)(unsigned char)r; break; }
                }
            }
            (void)es;
            cdf_convert_to_f32(types[t], src, dst, N);
            assert_memory_equal(dst, want, sizeof dst);
        }
    }
    /* and back from float32, misaligned destination */
    float src32[N];
    for (size_t i = 0; i < N; i++) src32[i] = (float)((int)i - 18) * 0.37f;
    for (size_t off = 1; off < 4; off++) {
        unsigned char *d = raw + off;
        assert_int_equal(cdf_convert_from_f32(CDF_F16, src32, d, N), 0);
        for (size_t i = 0; i < N; i++) {
            uint16_t h;
            memcpy(&h, d + 2 * i, 2);
            assert_int_equal(h, cdf_f32_to_f16(src32[i]));
        }
        assert_int_equal(cdf_convert_from_f32(CDF_BF16, src32, d, N), 0);
        for (size_t i = 0; i < N; i++) {
            uint16_t h;
            memcpy(&h, d + 2 * i, 2);
            assert_int_equal(h, cdf_f32_to_bf16(src32[i]));
        }
        assert_int_equal(cdf_convert_from_f32(CDF_F64, src32, d, N), 0);
        for (size_t i = 0; i < N; i++) {
            double v;
            memcpy(&v, d + 8 * i, 8);
            assert_true(v == (double)src32[i]);
        }
    }
    assert_int_equal(cdf_convert_from_f32(CDF_I32, src32, raw, N), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_to_f32_known),
        cmocka_unit_test(test_f16_roundtrip_exhaustive),
        cmocka_unit_test(test_f64_to_f16_numpy_golden),
        cmocka_unit_test(test_f16_rounding_oracle),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_bulk_convert_misaligned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
