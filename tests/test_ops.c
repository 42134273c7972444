/* The fast float32 kernels (convolution as a GEMM over the implicit im2col,
 * group norm, softmax, upsampling, activations; the GEMM itself is in
 * test_gemm.c) against plain reference kernels and
 * double-precision formulas, plus the project's determinism guarantees at the
 * kernel level: bitwise identical results for 1, 2 and 3 threads, and image k
 * of a batch identical to the same image run alone. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/exec.h"
#include "tensor/gemm.h"
#include "tensor/ops.h"

/* ---- deterministic test data ---- */

static float *copy_buf(const float *src, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    memcpy(p, src, n * sizeof *p);
    return p;
}

/* ---- convolution ---- */

typedef struct conv_case {
    int batch, cin, h, w, cout, k, stride, pt, pl, pb, pr, bias;
} conv_case;

static int conv_out(int n, int p0, int p1, int k, int s) { return (n + p0 + p1 - k) / s + 1; }

static void conv_vs_ref(void **state) {
    (void)state;
    static const conv_case cases[] = {
        {3, 5, 7, 9, 6, 1, 1, 0, 0, 0, 0, 1},    /* 1x1: the direct GEMM path */
        {3, 5, 7, 9, 6, 1, 2, 0, 0, 0, 0, 1},    /* 1x1 stride 2 (im2col) */
        {3, 4, 7, 9, 5, 3, 1, 1, 1, 1, 1, 1},    /* 3x3 same padding, odd sizes */
        {3, 4, 9, 7, 5, 3, 2, 1, 1, 1, 1, 0},    /* 3x3 stride 2 symmetric, no bias */
        {3, 4, 8, 8, 5, 3, 2, 0, 0, 1, 1, 1},    /* Downsample2D padding=0: pad (0,1,0,1) */
        {3, 3, 7, 11, 4, 3, 2, 0, 0, 1, 1, 1},   /* asymmetric pad on odd sizes */
        {2, 3, 9, 8, 4, 3, 2, 2, 0, 1, 3, 1},    /* four different pads */
        {2, 3, 6, 9, 4, 3, 1, 0, 1, 2, 0, 1},
        {2, 6, 5, 5, 7, 3, 1, 0, 0, 0, 0, 1},    /* valid convolution */
        {1, 2, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1},    /* 1x1 image, 3x3 kernel */
        {1, 32, 16, 16, 64, 3, 1, 1, 1, 1, 1, 1},/* a UNet-like layer */
    };
    uint64_t r = 99;
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 2, &err);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const conv_case *c = &cases[ci];
        int ho = conv_out(c->h, c->pt, c->pb, c->k, c->stride), wo = conv_out(c->w, c->pl, c->pr, c->k, c->stride);
        size_t nx = (size_t)c->batch * c->cin * c->h * c->w, nw = (size_t)c->cout * c->cin * c->k * c->k;
        size_t ny = (size_t)c->batch * c->cout * ho * wo;
        float *x = tu_rand_f32(&r, nx, -1.0f, 1.0f), *wt = tu_rand_f32(&r, nw, -1.0f, 1.0f);
        float *bias = c->bias ? tu_rand_f32(&r, (size_t)c->cout, -0.5f, 0.5f) : NULL;
        float *yf = malloc(ny * sizeof *yf), *yr = malloc(ny * sizeof *yr), *ya = malloc(ny * sizeof *ya);
        assert_non_null(yf);
        assert_non_null(yr);
        assert_non_null(ya);
        for (size_t i = 0; i < ny; i++) yf[i] = NAN;
        assert_int_equal(cdf_conv2d_f32(&ex, x, c->batch, c->cin, c->h, c->w, wt, bias, c->cout, c->k, c->k,
                                        c->stride, c->pt, c->pl, c->pb, c->pr, yf),
                         CDF_OK);
        cdf_conv2d_ref(x, c->batch, c->cin, c->h, c->w, wt, bias, c->cout, c->k, c->k, c->stride, c->pt, c->pl, c->pb,
                       c->pr, yr);
        /* the error bound: the same convolution of |x|, |w|, |bias| */
        float *ax = copy_buf(x, nx), *aw = copy_buf(wt, nw), *ab = bias ? copy_buf(bias, (size_t)c->cout) : NULL;
        for (size_t i = 0; i < nx; i++) ax[i] = fabsf(ax[i]);
        for (size_t i = 0; i < nw; i++) aw[i] = fabsf(aw[i]);
        for (int i = 0; bias && i < c->cout; i++) ab[i] = fabsf(ab[i]);
        cdf_conv2d_ref(ax, c->batch, c->cin, c->h, c->w, aw, ab, c->cout, c->k, c->k, c->stride, c->pt, c->pl, c->pb,
                       c->pr, ya);
        int kdim = c->cin * c->k * c->k;
        for (size_t i = 0; i < ny; i++) {
            double tol = (kdim + 4) * (double)FLT_EPSILON * ya[i] + 1e-30;
            if (!(fabs((double)yf[i] - yr[i]) <= tol))
                fail_msg("conv case %zu (k=%d s=%d pad %d,%d,%d,%d): y[%zu] = %.9g, reference %.9g (tol %.3g)", ci,
                         c->k, c->stride, c->pt, c->pl, c->pb, c->pr, i, yf[i], yr[i], tol);
        }
        /* a spot check of the reference itself at one output element */
        {
            int b = c->batch - 1, co = c->cout - 1, oy = ho - 1, ox = wo - 1;
            double s = bias ? bias[co] : 0.0;
            for (int ci2 = 0; ci2 < c->cin; ci2++)
                for (int ky = 0; ky < c->k; ky++)
                    for (int kx = 0; kx < c->k; kx++) {
                        int iy = oy * c->stride + ky - c->pt, ix = ox * c->stride + kx - c->pl;
                        if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
                        s += (double)x[(((size_t)b * c->cin + ci2) * c->h + iy) * c->w + ix] *
                             wt[(((size_t)co * c->cin + ci2) * c->k + ky) * c->k + kx];
                    }
            size_t o = (((size_t)b * c->cout + co) * ho + oy) * wo + ox;
            assert_true(fabs(s - yr[o]) <= 1e-6 * (1.0 + fabs(s)));
        }
        free(x);
        free(wt);
        free(bias);
        free(yf);
        free(yr);
        free(ya);
        free(ax);
        free(aw);
        free(ab);
    }
    cdf_exec_release(&ex);
}

/* Image k of a batch is the same bytes as image k run alone; 1 and 2 threads agree. */
static void conv_batch_and_threads(void **state) {
    (void)state;
    static const conv_case cases[] = {
        {3, 32, 32, 32, 64, 3, 1, 1, 1, 1, 1, 1}, /* GEMM 64 x 1024 x 288: threaded tiles */
        {3, 64, 32, 32, 64, 3, 2, 0, 0, 1, 1, 1}, /* strided downsample, asymmetric pad */
        {3, 64, 33, 31, 128, 1, 1, 0, 0, 0, 0, 1},/* 1x1 shortcut, direct path */
        {3, 5, 7, 9, 6, 3, 1, 1, 1, 1, 1, 0},     /* small: single-thread path */
    };
    uint64_t r = 4242;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const conv_case *c = &cases[ci];
        int ho = conv_out(c->h, c->pt, c->pb, c->k, c->stride), wo = conv_out(c->w, c->pl, c->pr, c->k, c->stride);
        size_t per_x = (size_t)c->cin * c->h * c->w, per_y = (size_t)c->cout * ho * wo;
        float *x = tu_rand_f32(&r, per_x * c->batch, -1.0f, 1.0f);
        float *wt = tu_rand_f32(&r, (size_t)c->cout * c->cin * c->k * c->k, -0.2f, 0.2f);
        float *bias = c->bias ? tu_rand_f32(&r, (size_t)c->cout, -0.5f, 0.5f) : NULL;
        float *y[2];
        for (int t = 0; t < 2; t++) {
            cdf_error err = {0};
            cdf_exec ex;
            cdf_exec_init(&ex, t + 1, &err);
            y[t] = malloc(per_y * c->batch * sizeof(float));
            assert_non_null(y[t]);
            assert_int_equal(cdf_conv2d_f32(&ex, x, c->batch, c->cin, c->h, c->w, wt, bias, c->cout, c->k, c->k,
                                            c->stride, c->pt, c->pl, c->pb, c->pr, y[t]),
                             CDF_OK);
            cdf_exec_release(&ex);
        }
        if (memcmp(y[0], y[1], per_y * c->batch * sizeof(float)) != 0)
            fail_msg("conv case %zu: 1 vs 2 threads differ", ci);
        cdf_error err = {0};
        cdf_exec ex;
        cdf_exec_init(&ex, 2, &err);
        float *one = malloc(per_y * sizeof(float));
        assert_non_null(one);
        for (int b = 0; b < c->batch; b++) {
            assert_int_equal(cdf_conv2d_f32(&ex, x + (size_t)b * per_x, 1, c->cin, c->h, c->w, wt, bias, c->cout, c->k,
                                            c->k, c->stride, c->pt, c->pl, c->pb, c->pr, one),
                             CDF_OK);
            if (memcmp(one, y[0] + (size_t)b * per_y, per_y * sizeof(float)) != 0)
                fail_msg("conv case %zu: image %d of the batch differs from it run alone", ci, b);
        }
        cdf_exec_release(&ex);
        free(one);
        free(y[0]);
        free(y[1]);
        free(x);
        free(wt);
        free(bias);
    }
}

/* ---- activations (torch definitions, evaluated in double) ---- */

static double act_ref(cdf_act act, double x) {
    switch (act) {
    case CDF_ACT_SILU: return x / (1.0 + exp(-x));              /* x * sigmoid(x) */
    case CDF_ACT_MISH: return x * tanh(log1p(exp(x)));          /* x * tanh(softplus(x)) */
    case CDF_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); /* approximate="none" */
    case CDF_ACT_RELU: return x > 0 ? x : 0.0;
    case CDF_ACT_NONE: break;
    }
    return x;
}

/* Tolerance of a float evaluation: a few ulp of the value; gelu's
 * 1 + erf(x/sqrt 2) cancels for negative x (as in torch's float kernel), so
 * it gets an absolute term of a few ulp of x. */
static double act_tol(cdf_act act, double x, double ref) {
    double t = 8 * (double)FLT_EPSILON * fabs(ref) + 1e-37;
    if (act == CDF_ACT_GELU) t += 2 * (double)FLT_EPSILON * fabs(x);
    return t;
}

static float *act_inputs(size_t *n) {
    static const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-8f, -1e-8f, 0.5f, -0.5f, 1.0f, -1.0f,
                                    19.9f, 20.0f, 20.1f, -20.0f, 30.0f, -30.0f, 87.0f, -87.0f, 100.0f, -100.0f};
    size_t ns = sizeof special / sizeof special[0], ngrid = 12001, nr = 4000;
    float *x = malloc((ns + ngrid + nr) * sizeof *x);
    assert_non_null(x);
    memcpy(x, special, sizeof special);
    for (size_t i = 0; i < ngrid; i++) x[ns + i] = (float)(-30.0 + 60.0 * (double)i / (double)(ngrid - 1));
    uint64_t r = 5;
    for (size_t i = 0; i < nr; i++) x[ns + ngrid + i] = tu_uniform_f32(&r, -8.0f, 8.0f);
    *n = ns + ngrid + nr;
    return x;
}

static void activations_vs_double(void **state) {
    (void)state;
    static const cdf_act acts[] = {CDF_ACT_SILU, CDF_ACT_MISH, CDF_ACT_GELU, CDF_ACT_RELU};
    static const char *const names[] = {"silu", "mish", "gelu", "relu"};
    size_t n;
    float *x = act_inputs(&n);
    for (size_t a = 0; a < 4; a++) {
        float *y1 = copy_buf(x, n), *y2 = copy_buf(x, n);
        cdf_error err = {0};
        cdf_exec ex1, ex2;
        cdf_exec_init(&ex1, 1, &err);
        cdf_exec_init(&ex2, 2, &err);
        cdf_activate(&ex1, y1, n, acts[a]);
        cdf_activate(&ex2, y2, n, acts[a]);
        assert_memory_equal(y1, y2, n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            double ref = act_ref(acts[a], (double)x[i]);
            if (!(fabs((double)y1[i] - ref) <= act_tol(acts[a], x[i], ref)))
                fail_msg("%s(%.9g) = %.9g, double formula %.17g", names[a], x[i], y1[i], ref);
            float s = cdf_act_apply(acts[a], x[i]);
            assert_memory_equal(&s, &y1[i], sizeof s);
        }
        if (acts[a] == CDF_ACT_RELU)
            for (size_t i = 0; i < n; i++) assert_true(y1[i] == (x[i] > 0 ? x[i] : 0.0f));
        free(y1);
        free(y2);
    }
    /* CDF_ACT_NONE leaves the data alone */
    float *y = copy_buf(x, n);
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    cdf_activate(&ex, y, n, CDF_ACT_NONE);
    assert_memory_equal(x, y, n * sizeof(float));
    free(y);
    free(x);
    /* diffusers' get_activation names */
    assert_int_equal(cdf_act_from_name("silu"), CDF_ACT_SILU);
    assert_int_equal(cdf_act_from_name("swish"), CDF_ACT_SILU);
    assert_int_equal(cdf_act_from_name("SiLU"), CDF_ACT_SILU);
    assert_int_equal(cdf_act_from_name("mish"), CDF_ACT_MISH);
    assert_int_equal(cdf_act_from_name("gelu"), CDF_ACT_GELU);
    assert_int_equal(cdf_act_from_name("relu"), CDF_ACT_RELU);
    assert_int_equal(cdf_act_from_name("tanh"), -1);
    assert_int_equal(cdf_act_from_name(""), -1);
    assert_int_equal(cdf_act_from_name(NULL), -1);
}

/* ---- group norm ---- */

/* y: the double result; bound: |x*scale| + |mean*scale| + |beta| + |pre-activation|, the size of the
 * terms a float evaluation rounds (for the tolerance). */
static void group_norm_ref(const float *x, int batch, int channels, int64_t hw, int groups, double eps,
                           const float *gamma, const float *beta, cdf_act act, double *y, double *bound) {
    int cpg = channels / groups;
    for (int b = 0; b < batch; b++)
        for (int g = 0; g < groups; g++) {
            size_t base = ((size_t)b * channels + (size_t)g * cpg) * (size_t)hw, n = (size_t)cpg * (size_t)hw;
            double s = 0, v = 0;
            for (size_t i = 0; i < n; i++) s += x[base + i];
            double mean = s / (double)n;
            for (size_t i = 0; i < n; i++) v += (x[base + i] - mean) * (x[base + i] - mean);
            double rstd = 1.0 / sqrt(v / (double)n + eps); /* biased variance, as torch */
            for (int c = 0; c < cpg; c++) {
                int ch = g * cpg + c;
                for (int64_t i = 0; i < hw; i++) {
                    size_t o = base + (size_t)c * (size_t)hw + (size_t)i;
                    double sc = rstd * gamma[ch], pre = (x[o] - mean) * sc + beta[ch];
                    y[o] = act_ref(act, pre);
                    bound[o] = fabs(x[o] * sc) + fabs(mean * sc) + fabs((double)beta[ch]) + fabs(pre);
                }
            }
        }
}

static void group_norm_vs_double(void **state) {
    (void)state;
    typedef struct {
        int batch, channels, groups;
        int64_t hw;
        float eps, offset, scale;
    } gn_case;
    static const gn_case cases[] = {
        {2, 32, 8, 49, 1e-6f, 0.3f, 1.0f},
        {3, 64, 32, 16, 1e-5f, -2.0f, 3.0f},
        {1, 6, 3, 5, 1e-6f, 10.0f, 0.01f},   /* small variance next to a large mean */
        {2, 16, 16, 1, 1e-5f, 0.0f, 1.0f},   /* one value per group: var 0, output = beta */
        {1, 128, 32, 1024, 1e-6f, 0.1f, 2.0f},
        /* 131072 values near 1000 in one group: a float32 running sum drifts by many ulps of 1e8
         * (the statistics are float64 for this) */
        {1, 32, 1, 4096, 1e-6f, 1000.0f, 1.0f},
    };
    uint64_t r = 31337;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const gn_case *c = &cases[ci];
        size_t n = (size_t)c->batch * c->channels * (size_t)c->hw;
        float *x = tu_rand_f32(&r, n, -1.0f, 1.0f);
        for (size_t i = 0; i < n; i++) x[i] = c->offset + c->scale * x[i];
        float *gamma = tu_rand_f32(&r, (size_t)c->channels, 0.5f, 1.5f);
        float *beta = tu_rand_f32(&r, (size_t)c->channels, -0.5f, 0.5f);
        double *ref = malloc(n * sizeof *ref), *bound = malloc(n * sizeof *bound);
        assert_non_null(ref);
        assert_non_null(bound);
        for (int act = 0; act < 2; act++) {
            cdf_act a = act ? CDF_ACT_SILU : CDF_ACT_NONE;
            group_norm_ref(x, c->batch, c->channels, c->hw, c->groups, c->eps, gamma, beta, a, ref, bound);
            float *y1 = malloc(n * sizeof *y1), *y2 = copy_buf(x, n);
            assert_non_null(y1);
            cdf_error err = {0};
            cdf_exec ex1, ex2;
            cdf_exec_init(&ex1, 1, &err);
            cdf_exec_init(&ex2, 2, &err);
            cdf_group_norm(&ex1, x, c->batch, c->channels, c->hw, c->groups, c->eps, gamma, beta, a, y1);
            cdf_group_norm(&ex2, y2, c->batch, c->channels, c->hw, c->groups, c->eps, gamma, beta, a, y2); /* in place */
            assert_memory_equal(y1, y2, n * sizeof(float));
            for (size_t i = 0; i < n; i++) {
                /* float scale/shift (x * scale + shift): a few ulp of each rounded term */
                double tol = 8 * (double)FLT_EPSILON * bound[i] + 1e-30;
                if (!(fabs((double)y1[i] - ref[i]) <= tol))
                    fail_msg("group norm case %zu act %d: y[%zu] = %.9g, double reference %.9g", ci, act, i, y1[i],
                             ref[i]);
            }
            free(y1);
            free(y2);
        }
        free(ref);
        free(bound);
        free(x);
        free(gamma);
        free(beta);
    }
}

/* ---- softmax ---- */

static void softmax_vs_double(void **state) {
    (void)state;
    static const int widths[] = {1, 2, 7, 77, 256, 1024, 1089};
    uint64_t r = 8;
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        int rows = 6, n = widths[wi];
        size_t total = (size_t)rows * n;
        float *x = tu_rand_f32(&r, total, -1.0f, 1.0f);
        /* rows of growing spread, up to logits of +-30; the last up to +-100, past expf's
         * overflow at 88.7 (only subtracting the row maximum keeps it finite) */
        for (int row = 0; row < rows; row++)
            for (int i = 0; i < n; i++) x[(size_t)row * n + i] *= (float)(row < 5 ? 0.5 + 7.5 * row : 100.0);
        float *y1 = copy_buf(x, total), *y2 = copy_buf(x, total);
        cdf_error err = {0};
        cdf_exec ex1, ex2;
        cdf_exec_init(&ex1, 1, &err);
        cdf_exec_init(&ex2, 2, &err);
        cdf_softmax_rows(&ex1, y1, rows, n);
        cdf_softmax_rows(&ex2, y2, rows, n);
        assert_memory_equal(y1, y2, total * sizeof(float));
        for (int row = 0; row < rows; row++) {
            const float *xr = x + (size_t)row * n;
            double mx = xr[0], s = 0, ys = 0;
            for (int i = 1; i < n; i++) mx = xr[i] > mx ? xr[i] : mx;
            for (int i = 0; i < n; i++) s += exp((double)xr[i] - mx);
            for (int i = 0; i < n; i++) {
                double ref = exp((double)xr[i] - mx) / s, got = y1[(size_t)row * n + i];
                double tol = (n + fabs(xr[i] - mx) + 8) * (double)FLT_EPSILON * ref + 1e-45;
                if (!(fabs(got - ref) <= tol))
                    fail_msg("softmax width %d row %d: y[%d] = %.9g, double reference %.17g", n, row, i, got, ref);
                ys += got;
            }
            assert_true(fabs(ys - 1.0) <= (n + 4) * (double)FLT_EPSILON);
        }
        free(x);
        free(y1);
        free(y2);
    }
}

/* ---- upsampling ---- */

static void upsample_exact(void **state) {
    (void)state;
    static const int dims[][4] = {{2, 3, 5, 7}, {1, 1, 1, 1}, {3, 64, 8, 8}, {1, 2, 16, 3}};
    uint64_t r = 17;
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        int b = dims[di][0], c = dims[di][1], h = dims[di][2], w = dims[di][3];
        size_t nx = (size_t)b * c * h * w, ny = nx * 4;
        float *x = tu_rand_f32(&r, nx, -5.0f, 5.0f);
        x[0] = -0.0f;
        float *y1 = malloc(ny * sizeof *y1), *y2 = malloc(ny * sizeof *y2);
        assert_non_null(y1);
        assert_non_null(y2);
        cdf_error err = {0};
        cdf_exec ex1, ex2;
        cdf_exec_init(&ex1, 1, &err);
        cdf_exec_init(&ex2, 2, &err);
        cdf_upsample_nearest2x(&ex1, x, b, c, h, w, y1);
        cdf_upsample_nearest2x(&ex2, x, b, c, h, w, y2);
        assert_memory_equal(y1, y2, ny * sizeof(float));
        for (int p = 0; p < b * c; p++)
            for (int oy = 0; oy < 2 * h; oy++)
                for (int ox = 0; ox < 2 * w; ox++) {
                    const float *src = &x[((size_t)p * h + oy / 2) * w + ox / 2];
                    const float *dst = &y1[((size_t)p * 2 * h + oy) * 2 * w + ox];
                    if (memcmp(src, dst, sizeof(float)) != 0)
                        fail_msg("upsample %dx%dx%dx%d: y[%d, %d, %d] != x[%d, %d]", b, c, h, w, p, oy, ox, oy / 2,
                                 ox / 2);
                }
        free(x);
        free(y1);
        free(y2);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_vs_ref),
        cmocka_unit_test(conv_batch_and_threads),
        cmocka_unit_test(activations_vs_double),
        cmocka_unit_test(group_norm_vs_double),
        cmocka_unit_test(softmax_vs_double),
        cmocka_unit_test(upsample_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
