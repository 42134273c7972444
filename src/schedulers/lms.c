/* LMSDiscreteScheduler.step (diffusers 0.32.2, order 4): derivative history
 * and the linear multistep coefficients.  get_lms_coefficient integrates the
 * Lagrange basis polynomial with scipy.integrate.quad (QUADPACK qagse,
 * epsrel 1e-4) over an integrand torch evaluates in float32; for these
 * polynomials qagse stops after its first 21-point Gauss-Kronrod rule, which
 * is reproduced here in the same order of operations (QK21 nodes and
 * weights: the published Kronrod constants). */
#include <string.h>

#include "schedulers/sched_internal.h"

static const double k_xgk[11] = {
    0.995657163025808080735527280689003, 0.973906528517171720077964012084452, 0.930157491355708226001207180059508,
    0.865063366688984510732096688423493, 0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
    0.562757134668604683339000099272694, 0.433395394129247190799265943165784, 0.294392862701460198131126603103866,
    0.148874338981631210884826001129720, 0.000000000000000000000000000000000};
static const double k_wgk[11] = {
    0.011694638867371874278064396062192, 0.032558162307964727478818972459390, 0.054755896574351996031381300244580,
    0.075039674810919952767043140916190, 0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
    0.123491976262065851077958109831074, 0.134709217311473325928054001771707, 0.142775938577060080797094273138717,
    0.147739104901338491374841515972068, 0.149445554002916905664936468389821};
static const double k_wg[5] = {0.066671344308688137593568809893332, 0.149451349150580593145776339657697,
                               0.219086362515982043995534934228163, 0.269266719309996355091226921569469,
                               0.295524224714752870173892994651338};

typedef struct lms_basis {
    const float *sigmas;
    int order, t, cur;
} lms_basis;

/* lms_derivative(tau): prod of (tau - s[t-k]) / (s[t-cur] - s[t-k]) in torch
 * float32 (tau rounded to float32 by the tensor op), 1.0 for order 1. */
static double basis(const lms_basis *b, double tau) {
    float prod = 1.0f;
    for (int k = 0; k < b->order; k++) {
        if (k == b->cur) continue;
        float num = (float)tau - b->sigmas[b->t - k];
        float den = b->sigmas[b->t - b->cur] - b->sigmas[b->t - k];
        prod = prod * (num / den);
    }
    return (double)prod;
}

/* QUADPACK dqk21 on [a, b]; returns result, *abserr, *resabs, *resasc as dqk21. */
static double qk21(const lms_basis *bs, double a, double b, double *abserr, double *resabs, double *resasc) {
    const double epmach = 2.220446049250313e-16, uflow = 2.2250738585072014e-308;
    const double centr = 0.5 * (a + b), hlgth = 0.5 * (b - a), dhlgth = fabs(hlgth);
    double fv1[10], fv2[10];
    double resg = 0.0;
    const double fc = basis(bs, centr);
    double resk = k_wgk[10] * fc;
    double rabs = fabs(resk);
    for (int j = 1; j <= 5; j++) {
        const int jtw = 2 * j - 1; /* 0-based index of Fortran's 2*j */
        const double absc = hlgth * k_xgk[jtw];
        const double f1 = basis(bs, centr - absc), f2 = basis(bs, centr + absc);
        fv1[jtw] = f1;
        fv2[jtw] = f2;
        const double fsum = f1 + f2;
        resg = resg + k_wg[j - 1] * fsum;
        resk = resk + k_wgk[jtw] * fsum;
        rabs = rabs + k_wgk[jtw] * (fabs(f1) + fabs(f2));
    }
    for (int j = 1; j <= 5; j++) {
        const int jtwm1 = 2 * j - 2; /* Fortran's 2*j-1 */
        const double absc = hlgth * k_xgk[jtwm1];
        const double f1 = basis(bs, centr - absc), f2 = basis(bs, centr + absc);
        fv1[jtwm1] = f1;
        fv2[jtwm1] = f2;
        const double fsum = f1 + f2;
        resk = resk + k_wgk[jtwm1] * fsum;
        rabs = rabs + k_wgk[jtwm1] * (fabs(f1) + fabs(f2));
    }
    const double reskh = resk * 0.5;
    double rasc = k_wgk[10] * fabs(fc - reskh);
    for (int j = 0; j < 10; j++) rasc = rasc + k_wgk[j] * (fabs(fv1[j] - reskh) + fabs(fv2[j] - reskh));
    const double result = resk * hlgth;
    rabs = rabs * dhlgth;
    rasc = rasc * dhlgth;
    double err = fabs((resk - resg) * hlgth);
    if (rasc != 0.0 && err != 0.0) {
        double r = pow(200.0 * err / rasc, 1.5);
        err = rasc * (1.0 < r ? 1.0 : r);
    }
    if (rabs > uflow / (50.0 * epmach)) {
        double e = epmach * 50.0 * rabs;
        err = e > err ? e : err;
    }
    *abserr = err;
    *resabs = rabs;
    *resasc = rasc;
    return result;
}

double cdf_lms_coefficient(const float *sigmas, int order, int t, int current_order) {
    lms_basis b = {sigmas, order, t, current_order};
    double abserr, resabs, resasc;
    /* qagse accepts its first rule when abserr <= max(epsabs, epsrel*|result|) and
     * abserr != resasc (or abserr == 0): always the case for these polynomials
     * of degree <= 3, which QK21 integrates exactly up to rounding. */
    return qk21(&b, (double)sigmas[t], (double)sigmas[t + 1], &abserr, &resabs, &resasc);
}

cdf_status cdf_lms_step(cdf_scheduler *s, int i, const float *model_out, float *sample, int batch, int64_t n,
                        cdf_error *err) {
    const int64_t total = (int64_t)batch * n;
    cdf_status st = cdf_sched_state(s, 5, total, err);
    if (st) return st;
    sched_run *r = &s->run;
    float *acc = s->state + 4 * total; /* [total] sum of coeff * derivative */
    const int pred = cdf_sched_pred_kind(&s->cfg);
    const float sigma = s->sigmas[i];
    const float s2p1 = sigma * sigma + 1.0f;
    const float c_out = -sigma / sqrtf(s2p1);
    /* derivatives.append(derivative); pop(0) past 4 */
    if (r->n_deriv == 4) {
        float *old = r->deriv[0];
        memmove(r->deriv, r->deriv + 1, 3 * sizeof(float *));
        r->deriv[3] = old;
        r->n_deriv = 3;
    }
    float *d = r->deriv[r->n_deriv++];
    for (int64_t k = 0; k < total; k++) {
        const float x = sample[k], m = model_out[k];
        float x0;
        if (pred == CDF_SCHED_PRED_EPSILON) {
            float t = sigma * m;
            x0 = x - t;
        } else if (pred == CDF_SCHED_PRED_V) {
            float a = m * c_out;
            float b = x / s2p1;
            x0 = a + b;
        } else {
            x0 = m;
        }
        float v = x - x0;
        d[k] = v / sigma;
    }
    const int order = i + 1 < 4 ? i + 1 : 4;
    float coeff[4];
    for (int c = 0; c < order; c++) coeff[c] = (float)cdf_lms_coefficient(s->sigmas, order, i, c);
    /* sum(coeff * derivative for coeff, derivative in zip(coeffs, reversed(derivatives))): 0 + t0 + t1 ... */
    const int pairs = order < r->n_deriv ? order : r->n_deriv;
    for (int64_t k = 0; k < total; k++) {
        float a = coeff[0] * r->deriv[r->n_deriv - 1][k];
        a = a + 0.0f;
        for (int c = 1; c < pairs; c++) {
            float t = coeff[c] * r->deriv[r->n_deriv - 1 - c][k];
            a = a + t;
        }
        acc[k] = a;
    }
    for (int64_t k = 0; k < total; k++) sample[k] = sample[k] + acc[k];
    return CDF_OK;
}
