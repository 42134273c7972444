/* Bit-exact scalar versions of torch's SLEEF float kernels (AVX2 + FMA build:
 * every "mla" is a fused multiply-add), numpy's SIMD float32 log, and
 * torch.linalg.solve through the same LAPACK routines torch calls.  Written
 * from the algorithms' descriptions (SLEEF 3.5 sleefsimdsp.c / df.h, numpy
 * 1.24 loops_exponent_log); no code copied. */
#include "schedulers/sched_fmath.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- double-float arithmetic (value = x + y) with FMA ---- */
typedef struct df2 {
    float x, y;
} df2;

static inline df2 df(float x, float y) {
    df2 r = {x, y};
    return r;
}
/* x + y, |x| >= |y| not required */
static inline df2 df_add2_ff(float x, float y) {
    float s = x + y, v = s - x;
    return df(s, (x - (s - v)) + (y - v));
}
static inline df2 df_add2_df_f(df2 x, float y) {
    float s = x.x + y, v = s - x.x;
    float t = (x.x - (s - v)) + (y - v);
    return df(s, t + x.y);
}
static inline df2 df_add2_df_df(df2 x, df2 y) {
    float s = x.x + y.x, v = s - x.x;
    float t = (x.x - (s - v)) + (y.x - v);
    return df(s, t + (x.y + y.y));
}
/* |x| >= |y| assumed (no error term for the reverse) */
static inline df2 df_add_df_df(df2 x, df2 y) {
    float s = x.x + y.x;
    return df(s, (((x.x - s) + y.x) + x.y) + y.y);
}
static inline df2 df_add_df_f(df2 x, float y) {
    float s = x.x + y;
    return df(s, ((x.x - s) + y) + x.y);
}
static inline df2 df_add_f_df(float x, df2 y) {
    float s = x + y.x;
    return df(s, ((x - s) + y.x) + y.y);
}
static inline df2 df_scale(df2 d, float s) { return df(d.x * s, d.y * s); }
static inline df2 df_mul_df_f(df2 x, float y) {
    float s = x.x * y;
    return df(s, fmaf(x.y, y, fmaf(x.x, y, -s)));
}
static inline df2 df_mul_df_df(df2 x, df2 y) {
    float s = x.x * y.x;
    return df(s, fmaf(x.x, y.y, fmaf(x.y, y.x, fmaf(x.x, y.x, -s))));
}
static inline df2 df_squ(df2 x) {
    float s = x.x * x.x;
    return df(s, fmaf(x.x + x.x, x.y, fmaf(x.x, x.x, -s)));
}
static inline df2 df_div(df2 n, df2 d) {
    float t = 1.0f / d.x;
    float s = n.x * t;
    float u = fmaf(t, n.x, -s);
    float v = fmaf(-d.y, t, fmaf(-d.x, t, 1.0f));
    return df(s, fmaf(s, v, fmaf(n.y, t, u)));
}

/* ---- integer helpers of SLEEF ---- */
static inline int rint_i(float x) {
    if (!(x > -2147483648.0f && x < 2147483648.0f)) return INT32_MIN; /* cvtps2dq's "integer indefinite" */
    return (int)rintf(x);
}
static inline float pow2i(int q) { return u2f((uint32_t)(q + 0x7f) << 23); }
static inline float ldexp2k(float d, int e) { return d * pow2i(e >> 1) * pow2i(e - (e >> 1)); }

#define L2Uf 0.693145751953125f
#define L2Lf 1.428606765330187045e-06f
#define R_LN2f 1.442695040888963407359924681001892137426645954152985934135449406931f

float cdf_sleef_logf(float d) {
    const int tiny = d < FLT_MIN;
    if (tiny) d = d * ((float)(INT64_C(1) << 32) * (float)(INT64_C(1) << 32));
    int e = (int)((f2u(d * (1.0f / 0.75f)) >> 23) & 0xff) - 0x7f;
    float m = u2f(f2u(d) + ((uint32_t)(-e) << 23));
    if (tiny) e -= 64;
    df2 s = df_mul_df_f(df(0.69314718246459960938f, -1.904654323148236017e-09f), (float)e);
    df2 x = df_div(df_add2_ff(-1.0f, m), df_add2_ff(1.0f, m));
    float x2 = x.x * x.x;
    float t = 0.3027294874e+0f;
    t = fmaf(t, x2, 0.3996108174e+0f);
    t = fmaf(t, x2, 0.6666694880e+0f);
    s = df_add_df_df(s, df_scale(x, 2.0f));
    s = df_add_df_f(s, x2 * x.x * t);
    float r = s.x + s.y;
    if (isinf(d) && d > 0) r = INFINITY;
    if (d < 0 || isnan(d)) r = NAN;
    if (d == 0) r = -INFINITY;
    return r;
}

float cdf_sleef_expf(float d) {
    int q = rint_i(d * R_LN2f);
    float s = fmaf((float)q, -L2Uf, d);
    s = fmaf((float)q, -L2Lf, s);
    float u = 0.000198527617612853646278381f;
    u = fmaf(u, s, 0.00139304355252534151077271f);
    u = fmaf(u, s, 0.00833336077630519866943359f);
    u = fmaf(u, s, 0.0416664853692054748535156f);
    u = fmaf(u, s, 0.166666671633720397949219f);
    u = fmaf(u, s, 0.5f);
    u = 1.0f + fmaf(s * s, u, s);
    u = ldexp2k(u, q);
    if (d < -104) u = 0.0f;
    if (100 < d) u = INFINITY;
    return u;
}

/* SLEEF's expk2f: exp(d) as a double-float. */
static df2 expk2f(df2 d) {
    float uf = (d.x + d.y) * R_LN2f;
    int q = rint_i(uf);
    df2 s = df_add2_df_f(d, (float)q * -L2Uf);
    s = df_add2_df_f(s, (float)q * -L2Lf);
    float u = +0.1980960224e-3f;
    u = fmaf(u, s.x, +0.1394256484e-2f);
    u = fmaf(u, s.x, +0.8333456703e-2f);
    u = fmaf(u, s.x, +0.4166637361e-1f);
    df2 t = df_add2_df_f(df_mul_df_f(s, u), +0.166666659414234244790680580464e+0f);
    t = df_add2_df_f(df_mul_df_df(s, t), 0.5f);
    t = df_add2_df_df(s, df_mul_df_df(df_squ(s), t));
    t = df_add_f_df(1.0f, t);
    t.x = ldexp2k(t.x, q);
    t.y = ldexp2k(t.y, q);
    if (d.x < -104) t.x = t.y = 0.0f;
    return t;
}

float cdf_sleef_expm1f(float a) {
    df2 d = df_add2_df_f(expk2f(df(a, 0.0f)), -1.0f);
    float x = d.x + d.y;
    if (a > 88.72283172607421875f) x = INFINITY;
    if (a < -16.635532333438687426013570f) x = -1.0f;
    if (a == 0.0f && signbit(a)) x = -0.0f;
    return x;
}

/* numpy's rational log(1+x) on [sqrt(1/2)-1, sqrt(2)-1], FMA Horner. */
float cdf_np_logf(float xin) {
    if (isnan(xin)) return NAN;
    if (xin < 0.0f) return -NAN;
    if (xin == 0.0f) return -INFINITY;
    if (isinf(xin)) return INFINITY;
    float x = xin, eadj = 0.0f;
    if (x < FLT_MIN) { /* denormal: scale by 2^100 */
        x = x * u2f(0x71800000u);
        eadj = 100.0f;
    }
    const uint32_t b = f2u(x);
    float exponent = (float)((int)(b >> 23) - 0x7e) - eadj;
    float m = u2f((b & 0x7fffffu) | (126u << 23)); /* [0.5, 1) */
    if (m <= 0.707106781186547524400844362104849039f) {
        m = m + m;
        exponent = exponent - 1.0f;
    }
    m = m - 1.0f;
    float num = fmaf(2.589979117907922693523e-02f, m, 3.808837741388407920751e-01f);
    num = fmaf(num, m, 1.480000633576506585156e+00f);
    num = fmaf(num, m, 2.112677543073053063722e+00f);
    num = fmaf(num, m, 9.999999999999998702752e-01f);
    num = fmaf(num, m, 0.0f);
    float den = fmaf(5.875095403124574342950e-03f, m, 1.546476374983906719538e-01f);
    den = fmaf(den, m, 9.864942958519418960339e-01f);
    den = fmaf(den, m, 2.453006071784736363091e+00f);
    den = fmaf(den, m, 2.612677543073109236779e+00f);
    den = fmaf(den, m, 1.0f);
    float poly = num / den;
    return fmaf(exponent, 0.693147180559945309417232121458176568f, poly);
}

/* LAPACK (OpenBLAS, linked by the library) as torch.linalg.solve calls it. */
extern void sgetrf_(const int *m, const int *n, float *a, const int *lda, int *ipiv, int *info);
extern void sgetrs_(const char *trans, const int *n, const int *nrhs, const float *a, const int *lda, const int *ipiv,
                    float *b, const int *ldb, int *info);

int cdf_sched_solve_f32(int n, const float *A, const float *b, float *x, int a_contiguous) {
    if (n < 1 || n > 8) return -1;
    if (n == 1) { /* getrf: nothing to eliminate; getrs: b / a */
        if (A[0] == 0.0f) return 1;
        x[0] = b[0] / A[0];
        return 0;
    }
    /* contiguous A: torch factors A^T (the row-major A read column-major) and
     * solves with trans 'T'; otherwise A copied column-major, trans 'N'. */
    float lu[64]; /* [n*n] column-major */
    int ipiv[8], info = 0, one = 1;
    if (a_contiguous)
        memcpy(lu, A, (size_t)n * n * sizeof(float));
    else
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) lu[i + j * n] = A[i * n + j];
    memcpy(x, b, (size_t)n * sizeof(float));
    sgetrf_(&n, &n, lu, &n, ipiv, &info);
    if (info != 0) return info;
    sgetrs_(a_contiguous ? "T" : "N", &n, &one, lu, &n, ipiv, x, &n, &info);
    return info;
}
