/* Scalar emulation of torch's AVX2 normal kernel.  Every operation is a float
 * op rounded on its own, except the explicit fmaf() calls, which stand for the
 * vfmadd/vfnmadd instructions in libtorch_cpu 1.13 (GCC contracted the
 * Cephes-style source there).  fmaf is exact by the C standard, so the result
 * does not depend on the C library. */
#include "rng/torch_avx2.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Cephes logf polynomial and the ln2 split (avx_mathfun's constants). */
static const float LOG_P[9] = {7.0376836292E-2f,  -1.1514610310E-1f, 1.1676998740E-1f,
                               -1.2420140846E-1f, 1.4249322787E-1f,  -1.6668057665E-1f,
                               2.0000714765E-1f,  -2.4999993993E-1f, 3.3333331174E-1f};
#define LOG_Q1 (-2.12194440e-4f)
#define LOG_Q2 0.693359375f
#define SQRTHF 0.707106781186547524f

float cdf_avx_mathfun_log(float xin) {
    int invalid = !(xin > 0.0f); /* _CMP_LE_OS with 0 (NaN compares false there: keep it as computed) */
    if (xin != xin) invalid = 0;
    float x = xin < FLT_MIN ? FLT_MIN : xin; /* max_ps(x, min_norm_pos): NaN x gives min_norm_pos */
    if (xin != xin) x = FLT_MIN;
    uint32_t bits = f2u(x);
    int32_t ei = (int32_t)(bits >> 23) - 0x7f;
    x = u2f((bits & ~0x7f800000u) | f2u(0.5f)); /* mantissa, exponent of 0.5 */
    float e = (float)ei;
    e = e + 1.0f;
    uint32_t mask = x < SQRTHF ? 0xffffffffu : 0u;
    float tmp = u2f(f2u(x) & mask);
    x = x + -1.0f;
    e = e - u2f(f2u(1.0f) & mask);
    x = x + tmp;
    float z = x * x;
    float y = LOG_P[0];
    for (int k = 1; k < 9; k++) y = fmaf(y, x, LOG_P[k]);
    y = y * x;
    float eq1 = e * LOG_Q1;
    y = fmaf(y, z, eq1);
    y = fmaf(-z, 0.5f, y);
    x = x + y;
    x = fmaf(e, LOG_Q2, x);
    if (invalid) x = u2f(f2u(x) | 0xffffffffu); /* or with the all-ones mask: NaN */
    return x;
}

#define FOPI 1.27323954473516f /* 4/pi */
#define DP1 0.78515625f
#define DP2 2.4187564849853515625e-4f
#define DP3 3.77489497744594108e-8f
#define COS_P0 2.443315711809948E-005f
#define COS_P1 (-1.388731625493765E-003f)
#define COS_P2 4.166664568298827E-002f
#define SIN_P0 (-1.9515295891E-4f)
#define SIN_P1 8.3321608736E-3f
#define SIN_P2 (-1.6666654611E-1f)

void cdf_avx_mathfun_sincos(float xin, float *s_out, float *c_out) {
    uint32_t sign_sin = f2u(xin) & 0x80000000u;
    float x = u2f(f2u(xin) & 0x7fffffffu);
    float yf = x * FOPI;
    /* cvttps: truncation; out of range gives INT_MIN as the instruction does */
    int32_t j = (yf < 2147483648.0f && yf == yf) ? (int32_t)yf : INT32_MIN;
    j = (int32_t)(((uint32_t)j + 1u) & ~1u);
    float y = (float)j;
    uint32_t swap = ((uint32_t)j & 4u) << 29;
    int poly_sin = ((uint32_t)j & 2u) == 0; /* sin polynomial for the sine */
    x = fmaf(y, -DP1, x);
    x = fmaf(y, -DP2, x);
    x = fmaf(y, -DP3, x);
    uint32_t sign_cos = (~((uint32_t)j - 2u) & 4u) << 29;
    sign_sin ^= swap;
    float z = x * x;
    float c = fmaf(fmaf(COS_P0, z, COS_P1), z, COS_P2);
    c = c * z;
    float zh = z * 0.5f;
    c = fmaf(c, z, -zh);
    c = c + 1.0f;
    float s = fmaf(fmaf(SIN_P0, z, SIN_P1), z, SIN_P2);
    s = s * z;
    s = fmaf(s, x, x);
    /* select as the kernel does: masked halves added, the rest subtracted */
    float s_sel = poly_sin ? s : 0.0f;  /* and(mask, s) */
    float c_sel = poly_sin ? 0.0f : c;  /* andnot(mask, c) */
    float sin_v = c_sel + s_sel;
    float cos_v = (c - c_sel) + (s - s_sel);
    *s_out = u2f(f2u(sin_v) ^ sign_sin);
    *c_out = u2f(f2u(cos_v) ^ sign_cos);
}

void cdf_torch_avx2_fill16(float d[16]) {
    const float two_pi = (float)(2.0 * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float radius = sqrtf(-2.0f * cdf_avx_mathfun_log(u1));
        float theta = two_pi * d[j + 8];
        float st, ct;
        cdf_avx_mathfun_sincos(theta, &st, &ct);
        float n1 = radius * ct, n2 = radius * st;
        d[j] = fmaf(n1, 1.0f, 0.0f);
        d[j + 8] = fmaf(n2, 1.0f, 0.0f);
    }
}
