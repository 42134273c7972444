/* Antialiased bicubic resize, bit-exact with torch 1.13's CPU float32 kernel
 * (aten/src/ATen/native/cpu/UpSampleKernel.cpp: separable_upsample_generic_Nd
 * with HelperInterpCubic's antialias weights).
 *
 * The float arithmetic is torch's as the released x86-64 build runs it (its
 * AVX2 kernels are compiled with -mfma, so GCC contracts a * b + c into fused
 * multiply-adds there); the explicit fma/fmaf calls below reproduce those
 * contractions, everything else is plain IEEE float / double arithmetic
 * (this file is compiled with -ffp-contract=off like the rest):
 *
 *   scale   = (float)in / out                              float
 *   support = scale >= 1 ? 2.0 * scale : 2.0               double, stored float
 *   center  = scale * (i + 0.5)                            double, stored float
 *   invscale= scale >= 1 ? 1.0 / scale : 1.0               double, stored float
 *   xmin    = max((int64)(center - support + 0.5), 0)      (center - support) float, + 0.5 double
 *   xmax    = min((int64)(center + support + 0.5), in)
 *   w_j     = filter((float)(((float)(j + xmin) - center + 0.5) * invscale))
 *   filter(x), x = |x| (float):
 *     x < 1:  ((a + 2.0) * x - (a + 3.0)) * x * x + 1      double (a = -0.5 a double literal), fused
 *     x < 2:  (((x - 5) * x + 8) * x - 4) * a              float with int literals, fused; then * -0.5
 *     else 0
 *   total   = sum of w_j in float, in order; w_j /= total (float) unless total == 0
 *   out     = x_0 * w_0, then for j = 1 .. xsize - 1 in order (float): the first
 *             4 * floor((xsize - 1) / 4) taps out = out + x_j * w_j with the
 *             product rounded (torch's loop body, unrolled by 4 and vectorised,
 *             is not fused), the remaining ones out = fmaf(x_j, w_j, out)
 *             (the scalar remainder loop, fused).  Upscaling windows have at
 *             most 4 taps, so they are all fused.
 *
 * The weights follow the source; which operations are fused, and the
 * blocks-of-4 rule of the sum, were established by experiment against
 * python3-torch 1.13.1 (x86-64, AVX2 dispatch: the build that made the golden
 * data) and hold bit for bit over hundreds of random sizes.  The same torch run
 * with ATEN_CPU_CAPABILITY=default (no FMA) differs by ~1 ulp in most elements.
 *
 * The horizontal pass (along w) runs first into [n, h, wo], then the vertical
 * one; both always run, also when a size is unchanged (identity weights
 * [-0, 1, -0], through which NaN and Inf spread as in torch).  This matches
 * torch bit for bit on the golden UnCLIP data and on the vectors of
 * tests/data/unclip_extra (see tests/test_resize.c). */
#include "tensor/resize.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Weights of one 1-D pass: output i reads in[xmin[i] .. xmin[i] + xsize[i]) with
 * weights wt[off[i] ..]. */
typedef struct aa_pass {
    int64_t *xmin;  /* [out] */
    int64_t *xsize; /* [out] */
    int64_t *off;   /* [out] start of output i's weights in wt */
    float *wt;      /* [sum of xsize] */
} aa_pass;

static float cubic_filter(float xf) {
    if (xf < 0.0f) xf = -xf;
    if (xf < 1.0f) {
        double x = xf;
        double t = fma(1.5, x, -2.5); /* (a + 2.0) * x - (a + 3.0) */
        return (float)fma(t * x, x, 1.0);
    }
    if (xf < 2.0f) {
        float t = fmaf(xf - 5.0f, xf, 8.0f);
        t = fmaf(t, xf, -4.0f);
        return (float)((double)t * -0.5);
    }
    return 0.0f;
}

static void pass_free(aa_pass *p) {
    cdf_free(p->xmin);
    cdf_free(p->xsize);
    cdf_free(p->off);
    cdf_free(p->wt);
    memset(p, 0, sizeof *p);
}

static cdf_status pass_init(aa_pass *p, int in, int out, cdf_error *err) {
    memset(p, 0, sizeof *p);
    float scale = (float)in / (float)out;
    float support = scale >= 1.0f ? (float)(2.0 * (double)scale) : 2.0f;
    float invscale = scale >= 1.0f ? (float)(1.0 / (double)scale) : 1.0f;
    /* every window holds at most min(in, ceil(support) * 2 + 1) taps */
    int64_t taps = (int64_t)ceilf(support) * 2 + 1;
    if (taps > in) taps = in;
    p->xmin = cdf_mallocn((size_t)out, sizeof *p->xmin);
    p->xsize = cdf_mallocn((size_t)out, sizeof *p->xsize);
    p->off = cdf_mallocn((size_t)out, sizeof *p->off);
    if ((uint64_t)taps > SIZE_MAX / sizeof(float) / (size_t)out) {
        pass_free(p);
        return cdf_error_set(err, CDF_ERR_LIMIT, "resize: %d -> %d needs too many weights", in, out);
    }
    p->wt = cdf_mallocn((size_t)out * (size_t)taps, sizeof *p->wt);
    if (!p->xmin || !p->xsize || !p->off || !p->wt) {
        pass_free(p);
        return cdf_error_set(err, CDF_ERR_NOMEM, "resize: out of memory for the %d -> %d weights", in, out);
    }
    int64_t pos = 0;
    for (int i = 0; i < out; i++) {
        float center = (float)((double)scale * (i + 0.5));
        int64_t xmin = (int64_t)((double)(center - support) + 0.5);
        if (xmin < 0) xmin = 0;
        int64_t xmax = (int64_t)((double)(center + support) + 0.5);
        if (xmax > in) xmax = in;
        int64_t xsize = xmax - xmin;
        if (xsize < 0) xsize = 0;
        if (xsize > taps) xsize = taps; /* cannot happen; keeps the buffer bound obvious */
        float *wp = p->wt + pos;
        float total = 0.0f;
        for (int64_t j = 0; j < xsize; j++) {
            float arg = (float)(((double)((float)(j + xmin) - center) + 0.5) * (double)invscale);
            float wv = cubic_filter(arg);
            wp[j] = wv;
            total += wv;
        }
        if (total != 0.0f)
            for (int64_t j = 0; j < xsize; j++) wp[j] /= total;
        p->xmin[i] = xmin;
        p->xsize[i] = xsize;
        p->off[i] = pos;
        pos += xsize;
    }
    return CDF_OK;
}

/* Taps 1 .. plain_end - 1 are added as rounded products, the rest fused (see the header comment). */
static inline int64_t plain_end(int64_t xsize) { return 1 + (xsize - 1) / 4 * 4; }

/* sum_j in[j] * w_j over one window, in order, as torch's loop computes it. */
static inline float tap_sum(const float *in, const float *wp, int64_t xsize) {
    if (xsize <= 0) return 0.0f;
    float acc = in[0] * wp[0];
    int64_t j = 1, pe = plain_end(xsize);
    for (; j < pe; j++) acc = acc + in[j] * wp[j];
    for (; j < xsize; j++) acc = fmaf(in[j], wp[j], acc);
    return acc;
}

cdf_status cdf_resize_bicubic_aa(cdf_exec *ex, const float *x, int64_t n, int h, int w, int ho, int wo, float *y,
                                 cdf_error *err) {
    if (!x || !y || n < 0 || h < 1 || w < 1 || ho < 1 || wo < 1)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "resize: invalid arguments (n %lld, %dx%d -> %dx%d; sizes must be >= 1, buffers non-NULL)",
                             (long long)n, h, w, ho, wo);
    if (n == 0) return CDF_OK;
    if ((uint64_t)n > SIZE_MAX / sizeof(float) / (size_t)h / (size_t)wo ||
        (uint64_t)n > SIZE_MAX / sizeof(float) / (size_t)ho / (size_t)wo)
        return cdf_error_set(err, CDF_ERR_LIMIT, "resize: %lld planes of %dx%d are too large", (long long)n, ho, wo);
    aa_pass ph, pv;
    cdf_status s = pass_init(&ph, w, wo, err);
    if (s) return s;
    if ((s = pass_init(&pv, h, ho, err))) {
        pass_free(&ph);
        return s;
    }
    size_t plane_t = (size_t)h * wo, plane_y = (size_t)ho * wo;
    float *tmp = cdf_aligned_alloc((size_t)n * plane_t * sizeof(float)); /* [n, h, wo] */
    if (!tmp) {
        pass_free(&ph);
        pass_free(&pv);
        return cdf_error_set(err, CDF_ERR_NOMEM, "resize: out of memory for a %lldx%dx%d buffer", (long long)n, h, wo);
    }
    int64_t taps_h = 0, taps_v = 0;
    for (int i = 0; i < wo; i++) taps_h += ph.xsize[i];
    for (int i = 0; i < ho; i++) taps_v += pv.xsize[i];
    double work = (double)n * ((double)h * (double)taps_h + (double)wo * (double)taps_v);
    int nthreads = ex ? cdf_exec_threads_for(ex, work) : 1;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t p = 0; p < n; p++) {
        const float *xp = x + (size_t)p * h * w;
        float *tp = tmp + (size_t)p * plane_t;
        float *yp = y + (size_t)p * plane_y;
        for (int r = 0; r < h; r++) {
            const float *xr = xp + (size_t)r * w;
            float *tr = tp + (size_t)r * wo;
            for (int o = 0; o < wo; o++) tr[o] = tap_sum(xr + ph.xmin[o], ph.wt + ph.off[o], ph.xsize[o]);
        }
        /* vertical: the same per-element sum as tap_sum, run row by row for locality */
        for (int o = 0; o < ho; o++) {
            const float *tr = tp + (size_t)pv.xmin[o] * wo, *wp = pv.wt + pv.off[o];
            float *yr = yp + (size_t)o * wo;
            int64_t xs = pv.xsize[o];
            if (xs <= 0) {
                memset(yr, 0, sizeof(float) * (size_t)wo);
                continue;
            }
            for (int c = 0; c < wo; c++) yr[c] = tr[c] * wp[0];
            int64_t pe = plain_end(xs);
            for (int64_t j = 1; j < xs; j++) {
                const float *trj = tr + (size_t)j * wo;
                float wj = wp[j];
                if (j < pe)
                    for (int c = 0; c < wo; c++) yr[c] = yr[c] + trj[c] * wj;
                else
                    for (int c = 0; c < wo; c++) yr[c] = fmaf(trj[c], wj, yr[c]);
            }
        }
    }
    cdf_aligned_free(tmp);
    pass_free(&ph);
    pass_free(&pv);
    return CDF_OK;
}
