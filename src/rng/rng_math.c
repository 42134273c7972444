/* glibc-equivalent logf/sinf/cosf (own code after the algorithm of glibc's
 * sysdeps/ieee754/flt-32, which came from ARM's optimized-routines): x is
 * reduced exactly, a short polynomial is evaluated in double, and the result
 * is rounded once to float.  The constants below are that algorithm's
 * table and polynomial coefficients; the results must not change by one bit,
 * so the operation order is kept exactly (scalar code, no contraction). */
#include "rng/rng_math.h"

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

/* ---- logf: x = 2^k z, z in [0x3f330000 .. 2 * that) split into 16 pieces;
 * log(x) = log1p(z / c - 1) + log(c) + k ln2 with 1/c and log(c) tabulated. */

#define LOGF_OFF 0x3f330000u

static const double logf_invc[16] = {
    0x1.661ec79f8f3bep+0, 0x1.571ed4aaf883dp+0, 0x1.49539f0f010bp+0,  0x1.3c995b0b80385p+0,
    0x1.30d190c8864a5p+0, 0x1.25e227b0b8eap+0,  0x1.1bb4a4a1a343fp+0, 0x1.12358f08ae5bap+0,
    0x1.0953f419900a7p+0, 0x1p+0,               0x1.e608cfd9a47acp-1, 0x1.ca4b31f026aap-1,
    0x1.b2036576afce6p-1, 0x1.9c2d163a1aa2dp-1, 0x1.886e6037841edp-1, 0x1.767dcf5534862p-1,
};
static const double logf_logc[16] = {
    -0x1.57bf7808caadep-2, -0x1.2bef0a7c06ddbp-2, -0x1.01eae7f513a67p-2, -0x1.b31d8a68224e9p-3,
    -0x1.6574f0ac07758p-3, -0x1.1aa2bc79c81p-3,   -0x1.a4e76ce8c0e5ep-4, -0x1.1973c5a611cccp-4,
    -0x1.252f438e10c1ep-5, 0x0p+0,                0x1.aa5aa5df25984p-5,  0x1.c5e53aa362eb4p-4,
    0x1.526e57720db08p-3,  0x1.bc2860d22477p-3,   0x1.1058bc8a07ee1p-2,  0x1.4043057b6ee09p-2,
};
static const double logf_ln2 = 0x1.62e42fefa39efp-1;
/* log1p(r) ~ r + A2 r^2 + A1 r^3 + A0 r^4 */
static const double logf_a0 = -0x1.00ea348b88334p-2, logf_a1 = 0x1.5575b0be00b6ap-2, logf_a2 = -0x1.ffffef20a4123p-2;

float cdf_rm_logf(float x) {
    uint32_t ix = f2u(x);
    if (ix == 0x3f800000u) return 0.0f;
    if (ix - 0x00800000u >= 0x7f800000u - 0x00800000u) return logf(x); /* zero, subnormal, negative, inf, nan */
    uint32_t tmp = ix - LOGF_OFF;
    int i = (int)((tmp >> 19) % 16u);
    int k = (int32_t)tmp >> 23; /* arithmetic shift: the exponent relative to OFF */
    uint32_t iz = ix - (tmp & 0xff800000u);
    double z = (double)u2f(iz);
    double r = z * logf_invc[i] - 1.0;
    double y0 = logf_logc[i] + (double)k * logf_ln2;
    double r2 = r * r;
    double y = logf_a1 * r + logf_a2;
    y = logf_a0 * r2 + y;
    y = y * r2 + (y0 + r);
    return (float)y;
}

/* ---- sinf / cosf: |x| < pi/4 directly, |x| < 120 after one reduction by
 * pi/2 in double; quadrant n picks the polynomial and sign. */

typedef struct sincos_poly {
    double sign[4];           /* sign of the sine per quadrant */
    double hpi_inv;           /* 2/pi * 2^24 (quadrant lands in bits 24..31) */
    double hpi;               /* pi/2 */
    double c0, c1, c2, c3, c4; /* cosine polynomial (negated in entry 1) */
    double s1, s2, s3;        /* sine polynomial */
} sincos_poly;

static const sincos_poly sc_tab[2] = {
    {{1.0, -1.0, -1.0, 1.0},
     0x1.45F306DC9C883p+23,
     0x1.921FB54442D18p0,
     0x1p0,
     -0x1.ffffffd0c621cp-2,
     0x1.55553e1068f19p-5,
     -0x1.6c087e89a359dp-10,
     0x1.99343027bf8c3p-16,
     -0x1.555545995a603p-3,
     0x1.1107605230bc4p-7,
     -0x1.994eb3774cf24p-13},
    {{1.0, -1.0, -1.0, 1.0},
     0x1.45F306DC9C883p+23,
     0x1.921FB54442D18p0,
     -0x1p0,
     0x1.ffffffd0c621cp-2,
     -0x1.55553e1068f19p-5,
     0x1.6c087e89a359dp-10,
     -0x1.99343027bf8c3p-16,
     -0x1.555545995a603p-3,
     0x1.1107605230bc4p-7,
     -0x1.994eb3774cf24p-13},
};

/* Top 12 bits of |x| as float bits: exponent and 3 mantissa bits. */
static uint32_t abstop12(float x) { return (f2u(x) >> 20) & 0x7ffu; }

/* sin (n even) or cos (n odd) polynomial of x (x2 = x*x). */
static float sincos_eval(double x, double x2, const sincos_poly *p, int n) {
    if ((n & 1) == 0) {
        double x3 = x * x2;
        double s1 = p->s2 + x2 * p->s3;
        double x7 = x3 * x2;
        double s = x + x3 * p->s1;
        return (float)(s + x7 * s1);
    }
    double x4 = x2 * x2;
    double c2 = p->c3 + x2 * p->c4;
    double c1 = p->c0 + x2 * p->c1;
    double x6 = x4 * x2;
    double c = c1 + x4 * p->c2;
    return (float)(c + x6 * c2);
}

/* want_cos 0: sinf(y), 1: cosf(y). */
static float sincosf_one(float y, int want_cos) {
    double x = y;
    const sincos_poly *p = &sc_tab[0];
    if (abstop12(y) < abstop12((float)0x1.921FB54442D18p-1)) {
        if (abstop12(y) < abstop12(0x1p-12f)) return want_cos ? 1.0f : y;
        return sincos_eval(x, x * x, p, want_cos);
    }
    if (abstop12(y) < abstop12(120.0f)) {
        double r = x * p->hpi_inv;
        int n = ((int32_t)r + 0x800000) >> 24;
        x = x - n * p->hpi;
        double s = p->sign[n & 3];
        if (n & 2) p = &sc_tab[1];
        return sincos_eval(x * s, x * x, p, want_cos ? n ^ 1 : n);
    }
    return want_cos ? cosf(y) : sinf(y);
}

float cdf_rm_sinf(float x) { return sincosf_one(x, 0); }
float cdf_rm_cosf(float x) { return sincosf_one(x, 1); }

double cdf_rm_log(double x) { return log(x); }
double cdf_rm_sin(double x) { return sin(x); }
double cdf_rm_cos(double x) { return cos(x); }
