/* cdf_gemm's one contract, byte for byte: every output element is
 * alpha * (an fmaf chain over k in increasing order) (+ row bias) (+ column
 * bias), whatever the micro-kernel (AVX2 or scalar), the thread count, the
 * tiling or the operand kinds (float32, float16 and bfloat16 matrices, either
 * stored transposed, strided views, a convolution's implicit im2col).  The
 * reference is cdf_sgemm_ref, itself checked against float64 sums. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/exec.h"
#include "tensor/gemm.h"
#include "tensor/half.h"

/* The precision every run below uses (bf16_* tests switch it). */
static cdf_precision g_prec = CDF_PRECISION_FP32;

/* Runs cdf_gemm with `threads` threads and kernel `isa`; returns its status. */
static cdf_status run(int threads, cdf_isa isa, int m, int n, int k, float alpha, const cdf_gemm_operand *a,
                      const cdf_gemm_operand *b, const float *rb, const float *cb, float *c, int64_t ldc) {
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, threads, &err);
    ex.isa = isa;
    ex.precision = g_prec;
    cdf_status s = cdf_gemm(&ex, m, n, k, alpha, a, b, rb, cb, c, ldc);
    cdf_exec_release(&ex);
    return s;
}

/* Every (threads, kernel) pair gives exactly `want` in C's m x n part and
 * leaves the padding columns (NaN) alone. */
static void expect_all_paths(const char *what, int m, int n, int k, float alpha, const cdf_gemm_operand *a,
                             const cdf_gemm_operand *b, const float *rb, const float *cb, const float *want,
                             int64_t ldc) {
    static const int threads[] = {1, 2, 3};
    static const cdf_isa isas[] = {CDF_ISA_AUTO, CDF_ISA_SCALAR};
    size_t nc = (size_t)m * (size_t)ldc;
    float *c = malloc(nc * sizeof *c);
    assert_non_null(c);
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < 2; i++) {
            for (size_t e = 0; e < nc; e++) c[e] = NAN;
            assert_int_equal(run(threads[t], isas[i], m, n, k, alpha, a, b, rb, cb, c, ldc), CDF_OK);
            for (int r = 0; r < m; r++) {
                if (memcmp(c + (size_t)r * ldc, want + (size_t)r * n, sizeof(float) * (size_t)n) != 0) {
                    int j = 0;
                    while (!memcmp(c + (size_t)r * ldc + j, want + (size_t)r * n + j, sizeof(float))) j++;
                    fail_msg("%s (m=%d n=%d k=%d), %d threads, %s kernel: C[%d,%d] = %.9g, reference %.9g", what, m,
                             n, k, threads[t], i ? "scalar" : "best", r, j, c[(size_t)r * ldc + j],
                             want[(size_t)r * n + j]);
                }
                for (int64_t j = n; j < ldc; j++)
                    if (!isnan(c[(size_t)r * ldc + j]))
                        fail_msg("%s: padding C[%d,%lld] written", what, r, (long long)j);
            }
        }
    free(c);
}

/* ---- float32 matrices against cdf_sgemm_ref (which is checked against float64) ---- */

typedef struct mcase {
    int ta, tb, m, n, k, pad_a, pad_b, pad_c;
    float alpha;
} mcase;

static const mcase CASES[] = {
    {0, 0, 1, 1, 1, 0, 0, 0, 1.0f},
    {0, 0, 1, 7, 13, 0, 0, 0, 1.0f},
    {0, 1, 5, 1, 33, 0, 0, 0, 1.0f},
    {1, 0, 3, 4, 1, 0, 0, 0, -0.5f},
    {0, 0, 37, 45, 29, 0, 0, 0, 1.0f},
    {0, 1, 37, 45, 29, 0, 0, 0, 0.125f},
    {1, 0, 37, 45, 29, 0, 0, 0, 1.0f},
    {1, 1, 37, 45, 29, 0, 0, 0, -1.7f},
    /* attention-head views of [rows, heads*dim] buffers */
    {0, 1, 64, 64, 8, 24, 24, 0, 0.35355339f},
    {0, 0, 64, 8, 64, 0, 24, 24, 1.0f},
    {1, 1, 19, 23, 17, 5, 3, 7, 2.0f},
    /* edges of the 6 x 16 micro-tiles and 144 x 256 tiles; k across 256-deep blocks */
    {0, 0, 6, 16, 256, 0, 0, 0, 1.0f},
    {0, 0, 7, 17, 257, 0, 0, 0, 1.0f},
    {0, 0, 143, 255, 16, 0, 0, 0, 1.0f},
    {0, 0, 145, 257, 40, 0, 0, 0, 1.0f},
    {0, 1, 257, 513, 24, 3, 5, 7, 0.5f},
    {1, 0, 300, 260, 520, 1, 2, 3, 1.0f},
    {1, 1, 131, 520, 33, 0, 0, 4, -1.0f},
    {0, 0, 200, 300, 777, 0, 0, 0, 1.0f},
    /* a full MC block of A with an odd k below KC (bf16 mode packs k + 1 rows per panel) */
    {0, 0, 300, 70, 33, 0, 0, 0, 1.0f},
};

static void ref_checked(const mcase *c, const float *a, int64_t lda, const float *b, int64_t ldb, float *want) {
    cdf_sgemm_ref(c->ta, c->tb, c->m, c->n, c->k, c->alpha, a, lda, b, ldb, want, c->n);
    /* the reference against float64: within k ulps of the magnitude sum */
    for (int i = 0; i < c->m; i += 1 + c->m / 7)
        for (int j = 0; j < c->n; j += 1 + c->n / 7) {
            double s = 0, mag = 0;
            for (int p = 0; p < c->k; p++) {
                double av = c->ta ? a[(int64_t)p * lda + i] : a[(int64_t)i * lda + p];
                double bv = c->tb ? b[(int64_t)j * ldb + p] : b[(int64_t)p * ldb + j];
                s += av * bv;
                mag += fabs(av * bv);
            }
            double tol = (c->k + 2) * (double)FLT_EPSILON * fabs((double)c->alpha) * mag + 1e-30;
            assert_true(fabs((double)want[(size_t)i * c->n + j] - c->alpha * s) <= tol);
        }
}

static void f32_matrices(void **state) {
    (void)state;
    uint64_t seed = 1;
    for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
        const mcase *c = &CASES[ci];
        int ar = c->ta ? c->k : c->m, ac = (c->ta ? c->m : c->k) + c->pad_a;
        int br = c->tb ? c->n : c->k, bc = (c->tb ? c->k : c->n) + c->pad_b;
        float *a = tu_rand_f32(&seed, (size_t)ar * ac, -1.0f, 1.0f);
        float *b = tu_rand_f32(&seed, (size_t)br * bc, -1.0f, 1.0f);
        float *want = malloc(sizeof(float) * (size_t)c->m * c->n);
        assert_non_null(want);
        ref_checked(c, a, ac, b, bc, want);
        cdf_gemm_operand oa = cdf_gemm_f32(a, ac, c->ta), ob = cdf_gemm_f32(b, bc, c->tb);
        char what[64];
        snprintf(what, sizeof what, "f32 case %zu ta=%d tb=%d", ci, c->ta, c->tb);
        expect_all_paths(what, c->m, c->n, c->k, c->alpha, &oa, &ob, NULL, NULL, want, c->n + c->pad_c);
        free(a);
        free(b);
        free(want);
    }
}

/* ---- float16 / bfloat16 operands read as stored: the same bytes as their float32 values ---- */

static void half_operands(void **state) {
    (void)state;
    static const cdf_dtype dts[] = {CDF_F16, CDF_BF16};
    uint64_t seed = 2;
    for (int di = 0; di < 2; di++)
        for (int trans = 0; trans < 2; trans++) {
            int m = 37, n = 70, k = 300;
            /* A [m, k] (or stored [k, m]) in half precision, B float32 */
            size_t na = (size_t)m * k, nb = (size_t)k * n;
            float *af = tu_rand_f32(&seed, na, -1.0f, 1.0f), *b = tu_rand_f32(&seed, nb, -1.0f, 1.0f);
            uint16_t *ah = malloc(na * 2 + 1); /* +1: read from an odd address below */
            assert_non_null(ah);
            unsigned char *odd = (unsigned char *)ah + 1;
            assert_int_equal(cdf_convert_from_f32(dts[di], af, odd, na), 0);
            cdf_convert_to_f32(dts[di], odd, af, na); /* af: the values the half matrix holds */
            float *want = malloc(sizeof(float) * (size_t)m * n);
            assert_non_null(want);
            cdf_sgemm_ref(trans, 0, m, n, k, 1.0f, af, trans ? m : k, b, n, want, n);
            cdf_gemm_operand oa = {odd, dts[di], trans, trans ? m : k, NULL}, ob = cdf_gemm_f32(b, n, 0);
            expect_all_paths(di ? "bf16 A" : "f16 A", m, n, k, 1.0f, &oa, &ob, NULL, NULL, want, n);
            /* the same half matrix as B^T (a linear layer's weight [out, in]) */
            float *x = tu_rand_f32(&seed, (size_t)9 * (trans ? m : k), -1.0f, 1.0f);
            if (!trans) {
                /* x [9, k] @ W^T where W = the half matrix [m, k] */
                float *want2 = malloc(sizeof(float) * 9 * (size_t)m);
                assert_non_null(want2);
                cdf_sgemm_ref(0, 1, 9, m, k, 1.0f, x, k, af, k, want2, m);
                cdf_gemm_operand ox = cdf_gemm_f32(x, k, 0), ow = {odd, dts[di], 1, k, NULL};
                expect_all_paths(di ? "bf16 B^T" : "f16 B^T", 9, m, k, 1.0f, &ox, &ow, NULL, NULL, want2, m);
                free(want2);
            }
            free(x);
            free(af);
            free(b);
            free(ah);
            free(want);
        }
}

/* ---- biases: alpha * s, then + row bias, then + column bias, each rounded ---- */

static void biases(void **state) {
    (void)state;
    uint64_t seed = 3;
    int m = 29, n = 41, k = 55;
    float *a = tu_rand_f32(&seed, (size_t)m * k, -1.0f, 1.0f), *b = tu_rand_f32(&seed, (size_t)k * n, -1.0f, 1.0f);
    float *rb = tu_rand_f32(&seed, (size_t)m, -1.0f, 1.0f), *cb = tu_rand_f32(&seed, (size_t)n, -1.0f, 1.0f);
    float *s = malloc(sizeof(float) * (size_t)m * n), *want = malloc(sizeof(float) * (size_t)m * n);
    assert_non_null(s);
    assert_non_null(want);
    cdf_gemm_operand oa = cdf_gemm_f32(a, k, 0), ob = cdf_gemm_f32(b, n, 0);
    for (int mode = 0; mode < 3; mode++) {
        const float *r = mode != 1 ? rb : NULL, *cl = mode != 0 ? cb : NULL;
        cdf_sgemm_ref(0, 0, m, n, k, 0.75f, a, k, b, n, s, n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float v = s[(size_t)i * n + j];
                if (r) v = v + r[i];
                if (cl) v = v + cl[j];
                want[(size_t)i * n + j] = v;
            }
        expect_all_paths(mode == 0 ? "row bias" : mode == 1 ? "column bias" : "both biases", m, n, k, 0.75f, &oa, &ob,
                         r, cl, want, n + 3);
    }
    /* k = 0: the sum is 0, so C = bias */
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) want[(size_t)i * n + j] = 0.0f * 2.0f + rb[i];
    expect_all_paths("k = 0", m, n, 0, 2.0f, &oa, &ob, rb, NULL, want, n);
    free(a);
    free(b);
    free(rb);
    free(cb);
    free(s);
    free(want);
}

/* ---- a convolution's implicit im2col B against an explicit one ---- */

typedef struct ccase {
    int cin, h, w, cout, kh, kw, stride, pt, pl, pb, pr;
} ccase;

static void im2col_operand(void **state) {
    (void)state;
    static const ccase cases[] = {
        {3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1},    /* rows shorter than a 16-wide panel */
        {4, 9, 40, 6, 3, 3, 1, 1, 1, 1, 1},   /* panels inside one row and across rows */
        {4, 18, 35, 6, 3, 3, 1, 1, 1, 1, 1},  /* the fast one-row copy at both image edges */
        {5, 16, 16, 7, 3, 3, 2, 0, 0, 1, 1},  /* Downsample2D: pad (0, 1, 0, 1), stride 2 */
        {3, 9, 8, 4, 3, 3, 2, 2, 0, 1, 3},    /* four different pads */
        {2, 5, 33, 3, 1, 1, 2, 0, 0, 0, 0},   /* 1x1 stride 2 */
        {3, 6, 20, 4, 2, 3, 1, 0, 2, 1, 0},   /* non-square kernel */
        {40, 12, 12, 8, 3, 3, 1, 1, 1, 1, 1}, /* k = 360: two k blocks */
        {2, 1, 1, 3, 3, 3, 1, 1, 1, 1, 1},    /* 1x1 image, 3x3 kernel */
    };
    uint64_t seed = 4;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const ccase *c = &cases[ci];
        int ho = (c->h + c->pt + c->pb - c->kh) / c->stride + 1, wo = (c->w + c->pl + c->pr - c->kw) / c->stride + 1;
        int k = c->cin * c->kh * c->kw, n = ho * wo;
        float *x = tu_rand_f32(&seed, (size_t)c->cin * c->h * c->w, -1.0f, 1.0f);
        float *wt = tu_rand_f32(&seed, (size_t)c->cout * k, -1.0f, 1.0f);
        float *col = malloc(sizeof(float) * (size_t)k * n), *want = malloc(sizeof(float) * (size_t)c->cout * n);
        assert_non_null(col);
        assert_non_null(want);
        for (int p = 0; p < k; p++) {
            int ci2 = p / (c->kh * c->kw), ky = (p / c->kw) % c->kh, kx = p % c->kw;
            for (int j = 0; j < n; j++) {
                int iy = (j / wo) * c->stride + ky - c->pt, ix = (j % wo) * c->stride + kx - c->pl;
                col[(size_t)p * n + j] =
                    iy >= 0 && iy < c->h && ix >= 0 && ix < c->w ? x[((size_t)ci2 * c->h + iy) * c->w + ix] : 0.0f;
            }
        }
        cdf_sgemm_ref(0, 0, c->cout, n, k, 1.0f, wt, k, col, n, want, n);
        cdf_conv_geom g = {c->cin, c->h, c->w, c->kh, c->kw, c->stride, c->pt, c->pl, ho, wo, 1};
        cdf_gemm_operand oa = cdf_gemm_f32(wt, k, 0), ob = {x, CDF_F32, 0, 0, &g};
        char what[64];
        snprintf(what, sizeof what, "im2col case %zu", ci);
        expect_all_paths(what, c->cout, n, k, 1.0f, &oa, &ob, NULL, NULL, want, n);
        free(x);
        free(wt);
        free(col);
        free(want);
    }
}

/* A batch of images side by side (columns (b, oy, ox)) with C in NCHW blocks: each image's bytes equal
 * the same image alone, panels and tiles straddling images included (hw not a multiple of 16). */
static void im2col_batched(void **state) {
    (void)state;
    static const ccase cases[] = {
        {3, 5, 7, 9, 3, 3, 1, 1, 1, 1, 1},   /* 35 pixels per image: every panel boundary moves */
        {2, 3, 4, 5, 3, 3, 1, 1, 1, 1, 1},   /* 12 pixels: a panel's first and last columns share a row, not an image */
        {4, 8, 8, 20, 3, 3, 1, 1, 1, 1, 1},  /* 64 pixels: panels inside images */
        {6, 9, 9, 7, 1, 1, 1, 0, 0, 0, 0},   /* a 1x1 convolution */
        {5, 16, 12, 6, 3, 3, 2, 0, 0, 1, 1}, /* stride 2 with Downsample2D's padding */
        {40, 6, 6, 150, 3, 3, 1, 1, 1, 1, 1},/* k = 360 and m > MC */
    };
    static const int threads[] = {1, 2, 3};
    uint64_t seed = 7;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int batch = 2; batch <= 3; batch++) {
            const ccase *c = &cases[ci];
            int ho = (c->h + c->pt + c->pb - c->kh) / c->stride + 1, wo = (c->w + c->pl + c->pr - c->kw) / c->stride + 1;
            int k = c->cin * c->kh * c->kw, hw = ho * wo;
            size_t img = (size_t)c->cin * c->h * c->w, out = (size_t)c->cout * hw;
            float *x = tu_rand_f32(&seed, img * batch, -1.0f, 1.0f);
            float *wt = tu_rand_f32(&seed, (size_t)c->cout * k, -1.0f, 1.0f);
            float *bias = tu_rand_f32(&seed, (size_t)c->cout, -1.0f, 1.0f);
            float *want = malloc(sizeof(float) * out * batch), *got = malloc(sizeof(float) * out * batch);
            assert_non_null(want);
            assert_non_null(got);
            cdf_gemm_operand oa = cdf_gemm_f32(wt, k, 0);
            for (int b = 0; b < batch; b++) { /* each image alone (checked against the reference above) */
                cdf_conv_geom g1 = {c->cin, c->h, c->w, c->kh, c->kw, c->stride, c->pt, c->pl, ho, wo, 1};
                cdf_gemm_operand ob = {x + b * img, CDF_F32, 0, 0, &g1};
                assert_int_equal(run(1, CDF_ISA_SCALAR, c->cout, hw, k, 1.0f, &oa, &ob, bias, NULL, want + b * out, hw),
                                 CDF_OK);
            }
            cdf_conv_geom g = {c->cin, c->h, c->w, c->kh, c->kw, c->stride, c->pt, c->pl, ho, wo, batch};
            cdf_gemm_operand ob = {x, CDF_F32, 0, 0, &g};
            for (int t = 0; t < 3; t++)
                for (int isa = 0; isa < 2; isa++) {
                    cdf_exec ex;
                    cdf_exec_init(&ex, threads[t], NULL);
                    ex.isa = isa ? CDF_ISA_SCALAR : CDF_ISA_AUTO;
                    for (size_t e = 0; e < out * batch; e++) got[e] = NAN;
                    assert_int_equal(cdf_gemm_blocked_c(&ex, c->cout, batch * hw, k, 1.0f, &oa, &ob, bias, NULL, got, hw,
                                                        hw, (int64_t)out),
                                     CDF_OK);
                    cdf_exec_release(&ex);
                    if (memcmp(got, want, sizeof(float) * out * batch) != 0)
                        fail_msg("batched im2col case %zu, batch %d, %d threads, isa %d: not each image's bytes", ci,
                                 batch, threads[t], isa);
                }
            free(x);
            free(wt);
            free(bias);
            free(want);
            free(got);
        }
}

/* ---- errors ---- */

static void bad_dtype(void **state) {
    (void)state;
    float a[4] = {1, 2, 3, 4}, c[4];
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    cdf_gemm_operand oa = {a, CDF_I32, 0, 2, NULL}, ob = cdf_gemm_f32(a, 2, 0);
    assert_int_equal(cdf_gemm(&ex, 2, 2, 2, 1.0f, &oa, &ob, NULL, NULL, c, 2), CDF_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "int32"));
    cdf_exec_release(&ex);
}

/* ---- bf16 mode: vdpbf16ps's arithmetic, the same bytes on every path ---- */

static float bf16_round(float x) { /* a subnormal input is zero, else nearest even (checked on pinned values) */
    if (fabsf(x) < FLT_MIN) return copysignf(0.0f, x);
    uint16_t h;
    assert_int_equal(cdf_convert_from_f32(CDF_BF16, &x, &h, 1), 0);
    float r;
    cdf_convert_to_f32(CDF_BF16, &h, &r, 1);
    return r;
}

static void bf16_matrices(void **state) {
    (void)state;
    uint64_t seed = 5;
    g_prec = CDF_PRECISION_BF16;
    for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
        const mcase *c = &CASES[ci];
        int ar = c->ta ? c->k : c->m, ac = (c->ta ? c->m : c->k) + c->pad_a;
        int br = c->tb ? c->n : c->k, bc = (c->tb ? c->k : c->n) + c->pad_b;
        float *a = tu_rand_f32(&seed, (size_t)ar * ac, -1.0f, 1.0f);
        float *b = tu_rand_f32(&seed, (size_t)br * bc, -1.0f, 1.0f);
        float *want = malloc(sizeof(float) * (size_t)c->m * c->n), *f32 = malloc(sizeof(float) * (size_t)c->m * c->n);
        assert_non_null(want);
        assert_non_null(f32);
        cdf_sgemm_ref_bf16(c->ta, c->tb, c->m, c->n, c->k, c->alpha, a, ac, b, bc, want, c->n);
        cdf_sgemm_ref(c->ta, c->tb, c->m, c->n, c->k, c->alpha, a, ac, b, bc, f32, c->n);
        /* the reference against float64 sums of the bfloat16 operands; and it is not the float32 result */
        int differs = 0;
        for (int i = 0; i < c->m; i++)
            for (int j = 0; j < c->n; j++) {
                double s = 0, mag = 0;
                for (int p = 0; p < c->k; p++) {
                    double av = bf16_round(c->ta ? a[(int64_t)p * ac + i] : a[(int64_t)i * ac + p]);
                    double bv = bf16_round(c->tb ? b[(int64_t)j * bc + p] : b[(int64_t)p * bc + j]);
                    s += av * bv;
                    mag += fabs(av * bv);
                }
                double tol = (c->k + 2) * (double)FLT_EPSILON * fabs((double)c->alpha) * mag + 1e-30;
                assert_true(fabs((double)want[(size_t)i * c->n + j] - c->alpha * s) <= tol);
                differs += want[(size_t)i * c->n + j] != f32[(size_t)i * c->n + j];
            }
        assert_true(differs > 0);
        cdf_gemm_operand oa = cdf_gemm_f32(a, ac, c->ta), ob = cdf_gemm_f32(b, bc, c->tb);
        char what[64];
        snprintf(what, sizeof what, "bf16 case %zu ta=%d tb=%d", ci, c->ta, c->tb);
        expect_all_paths(what, c->m, c->n, c->k, c->alpha, &oa, &ob, NULL, NULL, want, c->n + c->pad_c);
        free(a);
        free(b);
        free(want);
        free(f32);
    }
    g_prec = CDF_PRECISION_FP32;
}

/* Products and sums around FLT_MIN: the AVX2 kernel flushes in hardware (MXCSR), the portable one and
 * the reference in C; subnormal inputs, float16 weights, an odd k. */
static void bf16_tiny_values(void **state) {
    (void)state;
    uint64_t seed = 6;
    g_prec = CDF_PRECISION_BF16;
    int m = 20, n = 35, k = 131;
    float *a = tu_rand_f32(&seed, (size_t)m * k, -1.0f, 1.0f);
    float *b = tu_rand_f32(&seed, (size_t)k * n, -1.0f, 1.0f);
    for (size_t i = 0; i < (size_t)m * k; i++) {
        int kind = (int)(tu_mix64(&seed) % 4);
        if (kind == 0) a[i] *= FLT_MIN * 4.0f;     /* products near and below FLT_MIN */
        if (kind == 1) a[i] *= FLT_MIN * 0.5f;     /* subnormal inputs */
        if (kind == 2) a[i] *= 0x1p-100f;
    }
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] *= (float)(tu_mix64(&seed) % 3) == 0 ? 0x1p-30f : 1.0f;
    float *want = malloc(sizeof(float) * (size_t)m * n);
    assert_non_null(want);
    cdf_sgemm_ref_bf16(0, 0, m, n, k, 1.0f, a, k, b, n, want, n);
    int zeros = 0;
    for (int i = 0; i < m * n; i++) zeros += want[i] == 0.0f;
    cdf_gemm_operand oa = cdf_gemm_f32(a, k, 0), ob = cdf_gemm_f32(b, n, 0);
    expect_all_paths("bf16 tiny values", m, n, k, 1.0f, &oa, &ob, NULL, NULL, want, n);
    /* B as float16 (a weight stored in half precision): widened, then rounded to bfloat16 */
    uint16_t *bh = malloc(sizeof(uint16_t) * (size_t)k * n);
    assert_non_null(bh);
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] = tu_uniform_f32(&seed, -0.5f, 0.5f);
    assert_int_equal(cdf_convert_from_f32(CDF_F16, b, bh, (size_t)k * n), 0);
    cdf_convert_to_f32(CDF_F16, bh, b, (size_t)k * n);
    cdf_sgemm_ref_bf16(0, 0, m, n, k, 0.5f, a, k, b, n, want, n);
    cdf_gemm_operand oh = {bh, CDF_F16, 0, n, NULL};
    expect_all_paths("bf16 f16 B", m, n, k, 0.5f, &oa, &oh, NULL, NULL, want, n);
    /* every product near FLT_MIN: sums cross the subnormal range, many outputs flush to zero */
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = tu_uniform_f32(&seed, -0.5f, 0.5f) * FLT_MIN * 8.0f;
    cdf_sgemm_ref_bf16(0, 0, m, n, k, 1.0f, a, k, b, n, want, n);
    int zeros2 = 0, tiny = 0;
    for (int i = 0; i < m * n; i++) zeros2 += want[i] == 0.0f, tiny += fabsf(want[i]) < 4.0f * FLT_MIN;
    assert_true(zeros2 > 0 && tiny > zeros2);
    expect_all_paths("bf16 sums near FLT_MIN", m, n, k, 1.0f, &oa, &oh, NULL, NULL, want, n);
    print_message("bf16 tiny values: %d, then %d of %d outputs flushed to zero\n", zeros, zeros2, m * n);
    free(a);
    free(b);
    free(bh);
    free(want);
    g_prec = CDF_PRECISION_FP32;
}

static void kernel_named(void **state) {
    (void)state;
    cdf_exec ex;
    cdf_exec_init(&ex, 1, NULL);
    ex.isa = CDF_ISA_SCALAR;
    assert_string_equal(cdf_gemm_kernel_name(&ex), "scalar");
    ex.isa = CDF_ISA_AUTO;
    print_message("GEMM kernel on this CPU: %s\n", cdf_gemm_kernel_name(&ex));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(f32_matrices),   cmocka_unit_test(half_operands), cmocka_unit_test(biases),
        cmocka_unit_test(im2col_operand), cmocka_unit_test(bad_dtype),     cmocka_unit_test(kernel_named),
        cmocka_unit_test(bf16_matrices),  cmocka_unit_test(bf16_tiny_values), cmocka_unit_test(im2col_batched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
