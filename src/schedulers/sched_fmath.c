/* Bit-exact scalar versions of torch's SLEEF float kernels (AVX2 + FMA build:
 * every "mla" is a fused multiply-add), numpy's SIMD float32 log, and
 * torch.linalg.solve as OpenBLAS 0.3.21's sgetrf_ / sgetrs_ compute it with
 * their AVX-512 kernels (plain C here: no BLAS call, the same bits on every
 * CPU).  Written from the algorithms' descriptions (SLEEF 3.5 sleefsimdsp.c /
 * df.h, numpy 1.24 loops_exponent_log, OpenBLAS getf2_k.c, getrs_single.c,
 * trsv_L.c / trsv_U.c and its x86_64 sdot / saxpy / sgemv_n kernels); no code
 * copied. */
#include "schedulers/sched_fmath.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tensor/vmath.h"

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

/* ---- integer helpers and constants of SLEEF (shared with the tensor kernels) ---- */
#define rint_i cdf_vm_rint_i
#define ldexp2k cdf_vm_ldexp2k
#define L2Uf CDF_VM_L2U
#define L2Lf CDF_VM_L2L
#define R_LN2f CDF_VM_R_LN2

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

float cdf_sleef_expf(float d) { return cdf_expf_sleef(d); }

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

/* ---- torch.linalg.solve: OpenBLAS 0.3.21 sgetrf_ + sgetrs_, written out ----
 * For n <= 8 OpenBLAS's sgetrf runs its unblocked sgetf2_k (left-looking:
 * column j gets the earlier interchanges, Crout dot products above the
 * diagonal, one gemv below it, then the pivot search and the scaling by
 * 1/pivot) and sgetrs runs two trsv solves (trans 'N': axpy form, 'T': dot
 * form).  The kernels' rounding is the only part that depends on the CPU:
 * the SkylakeX / Cooperlake / SapphireRapids (AVX-512) kernels fuse the
 * multiply-adds of the axpy, the gemv and the strided dot pair, the Haswell /
 * Zen kernels round each product.  We follow the AVX-512 kernels, the ones
 * the reference vectors came from, on every CPU; the unit-stride dot (sdot.c:
 * float products summed in double) is the same on all of them. */

/* sdot_k, strided x (stride incx), unit y: float pair sums fused as
 * fma(y0, x0, y1 * x1), accumulated in double, returned as float. */
static float ob_dot_strided(int len, const float *x, int incx, const float *y) {
    double dot = 0.0;
    int k = 0;
    for (; k + 1 < len; k += 2) {
        const float p1 = y[k + 1] * x[(k + 1) * incx];
        dot += (double)fmaf(y[k], x[k * incx], p1);
    }
    for (; k < len; k++) dot += (double)(y[k] * x[k * incx]);
    return (float)dot;
}

/* sdot_k, unit strides: float products summed in double, in order. */
static float ob_dot(int len, const float *x, const float *y) {
    double dot = 0.0;
    for (int k = 0; k < len; k++) dot += (double)(y[k] * x[k]);
    return (float)dot;
}

/* sgemv_n with alpha = -1: y[0..m) -= A[0..m, 0..ncol) x (A column-major,
 * leading dimension lda).  ncol != 4: the AVX-512 kernel (per row a fused
 * multiply-add chain from +0, then fma(acc, -1, y)); ncol == 4: the Haswell
 * 4x4 block on m & -4 rows (two fused chains, summed, negated, added) and
 * fused C loops on the rest. */
static void ob_gemv_n_minus(int m, int ncol, const float *a, int lda, const float *x, float *y) {
    if (m < 1 || ncol < 1) return;
    if (ncol != 4) {
        for (int r = 0; r < m; r++) {
            float acc = 0.0f;
            for (int k = 0; k < ncol; k++) acc = fmaf(a[k * lda + r], x[k], acc);
            y[r] = fmaf(acc, -1.0f, y[r]);
        }
        return;
    }
    int r = 0;
    for (; r < (m & ~3); r++) {
        float s0 = fmaf(a[r], x[0], 0.0f), s1 = fmaf(a[lda + r], x[1], 0.0f);
        s0 = fmaf(a[2 * lda + r], x[2], s0);
        s1 = fmaf(a[3 * lda + r], x[3], s1);
        float s = s1 + s0;
        s = s * -1.0f;
        y[r] = s + y[r];
    }
    for (; r < m; r++) {
        float t = 0.0f;
        for (int k = 0; k < 4; k++) t = fmaf(a[k * lda + r], x[k], t);
        y[r] = fmaf(-1.0f, t, y[r]);
    }
}

/* sgetf2_k on a column-major n x n matrix a (leading dimension n), in place:
 * unit lower L and U, ipiv[j] = 0-based row swapped with row j.  Returns 0,
 * or the 1-based column of the first zero pivot. */
static int ob_getf2(int n, float *a, int *ipiv) {
    int info = 0;
    for (int j = 0; j < n; j++) {
        float *c = a + (size_t)j * n; /* [n] column j */
        for (int i = 0; i < j; i++)
            if (ipiv[i] != i) {
                const float t = c[i];
                c[i] = c[ipiv[i]];
                c[ipiv[i]] = t;
            }
        for (int i = 1; i < j; i++) c[i] -= ob_dot_strided(i, a + i, n, c);
        ob_gemv_n_minus(n - j, j, a + j, n, c, c + j);
        int jp = j; /* isamax: first index of the largest |value| */
        float best = fabsf(c[j]);
        for (int r = j + 1; r < n; r++)
            if (fabsf(c[r]) > best) {
                best = fabsf(c[r]);
                jp = r;
            }
        ipiv[j] = jp;
        const float piv = c[jp];
        if (piv == 0.0f) {
            if (!info) info = j + 1;
            continue;
        }
        const float rcp = 1.0f / piv;
        if (jp != j)
            for (int k = 0; k <= j; k++) {
                const float t = a[j + k * n];
                a[j + k * n] = a[jp + k * n];
                a[jp + k * n] = t;
            }
        for (int r = j + 1; r < n; r++) c[r] = rcp * c[r];
    }
    return info;
}

int cdf_sched_solve_f32(int n, const float *A, const float *b, float *x, int a_contiguous) {
    if (n < 1 || n > 8) return -1;
    /* contiguous A: torch factors A^T (the row-major A read column-major) and
     * solves with trans 'T'; otherwise A copied column-major, trans 'N'. */
    float lu[64]; /* [n*n] column-major */
    int ipiv[8];
    if (a_contiguous)
        memcpy(lu, A, (size_t)n * n * sizeof(float));
    else
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) lu[i + j * n] = A[i * n + j];
    const int info = ob_getf2(n, lu, ipiv);
    if (info != 0) return info;
    memcpy(x, b, (size_t)n * sizeof(float));
    if (!a_contiguous) {
        /* slaswp forward, strsv NLU then NUN (axpy form, fused) */
        for (int i = 0; i < n; i++)
            if (ipiv[i] != i) {
                const float t = x[i];
                x[i] = x[ipiv[i]];
                x[ipiv[i]] = t;
            }
        for (int i = 0; i < n - 1; i++)
            for (int r = i + 1; r < n; r++) x[r] = fmaf(-x[i], lu[r + i * n], x[r]);
        for (int i = n - 1; i >= 0; i--) {
            x[i] = x[i] / lu[i + i * n];
            for (int r = 0; r < i; r++) x[r] = fmaf(-x[i], lu[r + i * n], x[r]);
        }
    } else {
        /* strsv TUN then TLU (dot form), slaswp backward */
        for (int i = 0; i < n; i++) {
            if (i > 0) x[i] -= ob_dot(i, lu + (size_t)i * n, x);
            x[i] = x[i] / lu[i + i * n];
        }
        for (int i = n - 2; i >= 0; i--) x[i] -= ob_dot(n - 1 - i, lu + (i + 1) + (size_t)i * n, x + i + 1);
        for (int i = n - 1; i >= 0; i--)
            if (ipiv[i] != i) {
                const float t = x[i];
                x[i] = x[ipiv[i]];
                x[ipiv[i]] = t;
            }
    }
    return 0;
}
