/* The Winograd F(2x2, 3x3) convolution (src/tensor/winograd.h): the fast
 * path gives cdf_conv3x3_winograd_ref's bytes for any block sizes, thread
 * count, kernel and batch; it stays within a stated bound of the exact
 * convolution; cdf_conv2d_any takes it for the shapes it names and only in
 * float32 mode; transformed weights kept for a run give the same bytes. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/exec.h"
#include "tensor/half.h"
#include "tensor/ops.h"
#include "tensor/winograd.h"

typedef struct wcase {
    int batch, cin, h, w, cout, pt, pl, pb, pr, bias;
} wcase;

static const wcase cases[] = {
    {2, 5, 7, 9, 6, 1, 1, 1, 1, 1},      /* odd sizes: the last tiles hang over the edge */
    {1, 70, 6, 5, 3, 0, 0, 0, 0, 0},     /* valid convolution; cin crosses a summation block; no bias */
    {2, 3, 9, 8, 4, 2, 0, 1, 3, 1},      /* four different pads */
    {1, 2, 1, 1, 3, 1, 1, 1, 1, 1},      /* a 1x1 image */
    {3, 16, 33, 34, 20, 1, 1, 1, 1, 1},  /* several tile rows per chunk, three images */
    {1, 130, 10, 12, 9, 1, 1, 1, 1, 1},  /* three summation blocks, the last one short */
    {1, 300, 5, 6, 7, 1, 1, 1, 1, 1},    /* k past one GEMM k-block (256): one kernel call over all of it */
};

static int out_size(int n, int p0, int p1) { return n + p0 + p1 - 2; }

typedef struct wdata {
    float *x, *wt, *bias;
    size_t nx, nw, ny;
    int ho, wo;
} wdata;

static wdata make(const wcase *c, uint64_t *seed) {
    wdata d;
    d.ho = out_size(c->h, c->pt, c->pb);
    d.wo = out_size(c->w, c->pl, c->pr);
    d.nx = (size_t)c->batch * c->cin * c->h * c->w;
    d.nw = (size_t)c->cout * c->cin * 9;
    d.ny = (size_t)c->batch * c->cout * d.ho * d.wo;
    d.x = tu_rand_f32(seed, d.nx, -1.0f, 1.0f);
    d.wt = tu_rand_f32(seed, d.nw, -1.0f, 1.0f);
    d.bias = c->bias ? tu_rand_f32(seed, (size_t)c->cout, -0.5f, 0.5f) : NULL;
    return d;
}

static void drop(wdata *d) {
    free(d->x);
    free(d->wt);
    free(d->bias);
}

static float *nan_buf(size_t n) {
    float *p = malloc(n * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

/* The fast path against the reference, byte for byte: block sizes (one block and chunk, small
 * blocks, chunks that end inside a tile row or panel; with 2 threads, few chunks split each phase
 * over the threads, many go whole to each thread), 1 and 2 threads, the portable and the best
 * kernel, float32 and float16 weights (the reference reads the float16 values widened). */
static void fast_equals_ref(void **state) {
    (void)state;
    uint64_t seed = 11;
    static const int blocks[][2] = {{0, 0}, {8, 16}, {8, 5}, {3, 1}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const wcase *c = &cases[ci];
        wdata d = make(c, &seed);
        uint16_t *wh = malloc(d.nw * sizeof *wh);
        float *wr = malloc(d.nw * sizeof *wr); /* the float16 weights' values */
        assert_non_null(wh);
        assert_non_null(wr);
        assert_int_equal(cdf_convert_from_f32(CDF_F16, d.wt, wh, d.nw), 0);
        cdf_convert_to_f32(CDF_F16, wh, wr, d.nw);
        float *ref = nan_buf(d.ny), *ref16 = nan_buf(d.ny), *got = nan_buf(d.ny);
        cdf_conv3x3_winograd_ref(d.x, c->batch, c->cin, c->h, c->w, d.wt, d.bias, c->cout, c->pt, c->pl, c->pb, c->pr,
                                 ref);
        cdf_conv3x3_winograd_ref(d.x, c->batch, c->cin, c->h, c->w, wr, d.bias, c->cout, c->pt, c->pl, c->pb, c->pr,
                                 ref16);
        for (size_t bi = 0; bi < sizeof blocks / sizeof blocks[0]; bi++)
            for (int threads = 1; threads <= 2; threads++)
                for (int isa = 0; isa < 2; isa++)
                    for (int half = 0; half < 2; half++) {
                        cdf_error err = {0};
                        cdf_exec ex;
                        cdf_exec_init(&ex, threads, &err);
                        ex.isa = isa ? CDF_ISA_SCALAR : CDF_ISA_AUTO;
                        for (size_t i = 0; i < d.ny; i++) got[i] = NAN;
                        assert_int_equal(cdf_conv3x3_winograd_blocks(&ex, d.x, c->batch, c->cin, c->h, c->w,
                                                                     half ? (const void *)wh : (const void *)d.wt,
                                                                     half ? CDF_F16 : CDF_F32, d.bias, c->cout, c->pt,
                                                                     c->pl, c->pb, c->pr, blocks[bi][0], blocks[bi][1],
                                                                     got),
                                         CDF_OK);
                        cdf_exec_release(&ex);
                        if (memcmp(got, half ? ref16 : ref, d.ny * sizeof(float)) != 0)
                            fail_msg("case %zu, blocks %d,%d, %d threads, %s kernel, %s weights: differs from the "
                                     "reference",
                                     ci, blocks[bi][0], blocks[bi][1], threads, isa ? "portable" : "best",
                                     half ? "F16" : "F32");
                    }
        free(wh);
        free(wr);
        free(ref);
        free(ref16);
        free(got);
        drop(&d);
    }
}

/* Transformed weights kept in the exec (cdf_exec_derived): a second call reuses them and every
 * call gives the reference's bytes; another weight pointer gets its own entry; a cap too small
 * keeps none and changes nothing; a key asked for with another size is refused. */
static void kept_weights(void **state) {
    (void)state;
    uint64_t seed = 14;
    const wcase *c = &cases[4];
    wdata d = make(c, &seed);
    float *w2 = tu_rand_f32(&seed, d.nw, -1.0f, 1.0f);
    float *ref = nan_buf(d.ny), *ref2 = nan_buf(d.ny), *got = nan_buf(d.ny);
    cdf_conv3x3_winograd_ref(d.x, c->batch, c->cin, c->h, c->w, d.wt, d.bias, c->cout, c->pt, c->pl, c->pb, c->pr,
                             ref);
    cdf_conv3x3_winograd_ref(d.x, c->batch, c->cin, c->h, c->w, w2, d.bias, c->cout, c->pt, c->pl, c->pb, c->pr,
                             ref2);
    static const size_t caps[] = {(size_t)1 << 30, 1000};
    for (int k = 0; k < 2; k++) {
        cdf_error err = {0};
        cdf_exec ex;
        cdf_exec_init(&ex, 2, &err);
        ex.derived_cap = caps[k];
        for (int call = 0; call < 3; call++) {
            const float *wt = call == 1 ? w2 : d.wt;
            for (size_t i = 0; i < d.ny; i++) got[i] = NAN;
            assert_int_equal(cdf_conv3x3_winograd(&ex, d.x, c->batch, c->cin, c->h, c->w, wt, CDF_F32, d.bias,
                                                  c->cout, c->pt, c->pl, c->pb, c->pr, got),
                             CDF_OK);
            if (memcmp(got, call == 1 ? ref2 : ref, d.ny * sizeof(float)) != 0)
                fail_msg("cap %zu, call %d: differs from the reference", caps[k], call);
        }
        assert_int_equal(ex.nderived, k == 0 ? 2 : 0);
        if (k == 0) {
            int fresh = 1;
            float *kept = got;
            assert_int_equal(cdf_exec_derived(&ex, d.wt, 7, &kept, &fresh), CDF_OK); /* the key holds another size */
            assert_null(kept);
            assert_int_equal(fresh, 0);
        }
        cdf_exec_release(&ex);
        assert_int_equal(ex.nderived, 0);
    }
    free(w2);
    free(ref);
    free(ref2);
    free(got);
    drop(&d);
}

/* The reference against the exact convolution (cdf_conv2d_ref sums in float64): |error| <= (9 cin
 * + 4) eps times the convolution of |x|, |w|, |bias|, the bound the direct GEMM convolution keeps
 * (tests/test_ops.c): F(2x2, 3x3)'s transforms only add, subtract and halve. */
static void ref_near_exact(void **state) {
    (void)state;
    uint64_t seed = 12;
    double worst = 0.0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const wcase *c = &cases[ci];
        wdata d = make(c, &seed);
        float *got = nan_buf(d.ny), *exact = nan_buf(d.ny), *mag = nan_buf(d.ny);
        cdf_conv3x3_winograd_ref(d.x, c->batch, c->cin, c->h, c->w, d.wt, d.bias, c->cout, c->pt, c->pl, c->pb, c->pr,
                                 got);
        cdf_conv2d_ref(d.x, c->batch, c->cin, c->h, c->w, d.wt, d.bias, c->cout, 3, 3, 1, c->pt, c->pl, c->pb, c->pr,
                       exact);
        for (size_t i = 0; i < d.nx; i++) d.x[i] = fabsf(d.x[i]);
        for (size_t i = 0; i < d.nw; i++) d.wt[i] = fabsf(d.wt[i]);
        for (int i = 0; c->bias && i < c->cout; i++) d.bias[i] = fabsf(d.bias[i]);
        cdf_conv2d_ref(d.x, c->batch, c->cin, c->h, c->w, d.wt, d.bias, c->cout, 3, 3, 1, c->pt, c->pl, c->pb, c->pr,
                       mag);
        for (size_t i = 0; i < d.ny; i++) {
            double unit = (double)FLT_EPSILON * mag[i] + 1e-30, e = fabs((double)got[i] - exact[i]) / unit;
            if (!(e <= 9.0 * c->cin + 4.0))
                fail_msg("case %zu: y[%zu] = %.9g, exact %.9g: %.1f eps-units (bound %d)", ci, i, got[i], exact[i], e,
                         9 * c->cin + 4);
            if (e > worst) worst = e;
        }
        free(got);
        free(exact);
        free(mag);
        drop(&d);
    }
    print_message("worst error: %.2f eps-units of the |x| * |w| convolution\n", worst);
}

/* cdf_conv2d_any takes Winograd for the shapes cdf_winograd_applies names (in float32 mode only);
 * an image of a batch gives the same bytes alone. */
static void dispatch(void **state) {
    (void)state;
    uint64_t seed = 13;
    static const wcase big = {2, 8, 32, 33, 8, 1, 1, 1, 1, 1}, small = {1, 8, 7, 40, 8, 1, 1, 1, 1, 1};
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 2, &err);
    assert_true(cdf_winograd_applies(&ex, 8, 8, 3, 3, 1, 8, 8));
    assert_false(cdf_winograd_applies(&ex, 8, 8, 3, 3, 1, 7, 40));
    assert_false(cdf_winograd_applies(&ex, 8, 8, 3, 3, 1, 40, 7));
    assert_false(cdf_winograd_applies(&ex, 8, 8, 3, 3, 2, 32, 32));
    assert_false(cdf_winograd_applies(&ex, 7, 8, 3, 3, 1, 32, 32));
    assert_false(cdf_winograd_applies(&ex, 8, 7, 3, 3, 1, 32, 32));
    assert_false(cdf_winograd_applies(&ex, 8, 8, 1, 1, 1, 32, 32));
    const wcase *cs[2] = {&big, &small};
    for (int k = 0; k < 2; k++) {
        const wcase *c = cs[k];
        wdata d = make(c, &seed);
        float *got = nan_buf(d.ny), *ref = nan_buf(d.ny);
        assert_int_equal(cdf_conv2d_f32(&ex, d.x, c->batch, c->cin, c->h, c->w, d.wt, d.bias, c->cout, 3, 3, 1, c->pt,
                                        c->pl, c->pb, c->pr, got),
                         CDF_OK);
        cdf_conv3x3_winograd_ref(d.x, c->batch, c->cin, c->h, c->w, d.wt, d.bias, c->cout, c->pt, c->pl, c->pb, c->pr,
                                 ref);
        int same = memcmp(got, ref, d.ny * sizeof(float)) == 0;
        if (same != (c == &big))
            fail_msg("%s case: Winograd %s", c == &big ? "32x33" : "7x40", same ? "taken" : "not taken");
        size_t per_x = d.nx / c->batch, per_y = d.ny / c->batch;
        float *one = nan_buf(per_y);
        for (int b = 0; b < c->batch; b++) {
            assert_int_equal(cdf_conv2d_f32(&ex, d.x + b * per_x, 1, c->cin, c->h, c->w, d.wt, d.bias, c->cout, 3, 3, 1,
                                            c->pt, c->pl, c->pb, c->pr, one),
                             CDF_OK);
            assert_memory_equal(one, got + b * per_y, per_y * sizeof(float));
        }
        free(one);
        free(got);
        free(ref);
        drop(&d);
    }
    ex.precision = CDF_PRECISION_BF16;
    assert_false(cdf_winograd_applies(&ex, 8, 8, 3, 3, 1, 32, 32));
    cdf_exec_release(&ex);
}

/* Bad arguments give a message and no write. */
static void bad_arguments(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    float x[4] = {0}, w[9] = {0}, y[4] = {0};
    assert_int_equal(cdf_conv3x3_winograd(&ex, x, 1, 1, 2, 2, w, CDF_I64, NULL, 1, 1, 1, 1, 1, y), CDF_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "int64"));
    assert_int_equal(cdf_conv3x3_winograd(&ex, x, 1, 1, 1, 1, w, CDF_F32, NULL, 1, 0, 0, 0, 0, y), CDF_ERR_ARG);
    assert_int_equal(cdf_conv3x3_winograd_blocks(&ex, x, 1, 1, 2, 2, w, CDF_F32, NULL, 1, 1, 1, 1, 1, -1, 0, y),
                     CDF_ERR_ARG);
    cdf_exec_release(&ex);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fast_equals_ref),
        cmocka_unit_test(kept_weights),
        cmocka_unit_test(ref_near_exact),
        cmocka_unit_test(dispatch),
        cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
