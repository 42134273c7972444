/* The vector float math of src/tensor/vmath.h: SLEEF's expf, SiLU and the
 * row softmax, held to torch's bits (pinned values taken from torch 1.13's
 * torch.exp / F.silu / torch.softmax on an AVX2 CPU) and the AVX2 versions held to the
 * scalar definitions byte for byte, edge lanes and special values included. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/exec.h"
#include "tensor/ops.h"
#include "tensor/vmath.h"

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static uint64_t mix(uint64_t *s) {
    uint64_t x = *s += 0x9E3779B97F4A7C15ull; /* splitmix64 */
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
static float uniform(uint64_t *s, float lo, float hi) {
    return lo + (hi - lo) * (float)((double)(mix(s) >> 40) / 16777216.0);
}

#if CDF_HAVE_X86
/* whether this CPU runs the AVX2 paths (else says so) */
static int have_avx2(void) {
    cdf_exec ex;
    cdf_exec_init(&ex, 1, NULL);
    if (cdf_exec_cpu(&ex) & CDF_CPU_AVX2_FMA) return 1;
    print_message("no AVX2+FMA on this CPU: the vector path is not run here\n");
    return 0;
}

/* same bits, or both NaN */
static int same(float a, float b) { return f2u(a) == f2u(b) || (isnan(a) && isnan(b)); }
#endif

static void exp_matches_torch(void **state) {
    (void)state;
    /* {x, torch.exp(x)} as float32 bits: subnormal, tiny, ordinary, overflowing */
    static const uint32_t pinned[][2] = {
        {0xc2cf0000u, 0x00000001u}, {0xc2be8000u, 0x00000bfcu}, {0xc2af0000u, 0x006cb2bcu},
        {0xc2488000u, 0x1b4dc5eeu}, {0xc124cccdu, 0x380d1141u}, {0xbf800000u, 0x3ebc5ab2u},
        {0xbeb1758eu, 0x3f3503bau}, {0x3a83126fu, 0x3f8020c9u}, {0x3f400000u, 0x40077ceeu},
        {0x40200000u, 0x4142eb7fu}, {0x41a1999au, 0x4e0d485eu}, {0x42b10000u, 0x7f4cdcc4u},
        {0x42c7cccdu, 0x7f800000u},
    };
    for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; i++) {
        float got = cdf_expf_sleef(u2f(pinned[i][0]));
        if (f2u(got) != pinned[i][1])
            fail_msg("exp(%.9g) = %.9g (0x%08x), torch 0x%08x", u2f(pinned[i][0]), got, f2u(got), pinned[i][1]);
    }
    assert_true(cdf_expf_sleef(-INFINITY) == 0.0f);
    assert_true(cdf_expf_sleef(-104.5f) == 0.0f);
    assert_true(isinf(cdf_expf_sleef(100.5f)) && isinf(cdf_expf_sleef(INFINITY)));
    assert_true(isnan(cdf_expf_sleef(NAN)));
    assert_true(cdf_expf_sleef(0.0f) == 1.0f && cdf_expf_sleef(-0.0f) == 1.0f);
}

/* SLEEF's bound, 1 ulp of the float32 result, over the normal range */
static void exp_within_one_ulp(void **state) {
    (void)state;
    uint64_t s = 11;
    for (int i = 0; i < 2000000; i++) {
        float x = uniform(&s, -87.0f, 88.0f);
        double ref = exp((double)x);
        float got = cdf_expf_sleef(x);
        double ulp = ldexp(1.0, ilogb(ref) - 23);
        if (!(fabs((double)got - ref) <= ulp)) fail_msg("exp(%.9g) = %.9g, exact %.17g", x, got, ref);
    }
}

static void exp_vector_is_scalar(void **state) {
    (void)state;
#if CDF_HAVE_X86
    if (!have_avx2()) return;
    enum { N = 1 << 16 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    uint64_t s = 5;
    for (int i = 0; i < N; i++) x[i] = uniform(&s, -120.0f, 110.0f);
    static const float special[] = {INFINITY, -INFINITY, NAN, 0.0f, -0.0f, -104.0f, 100.0f, -87.33655f, 88.72284f,
                                    FLT_MIN, -FLT_MAX, FLT_MAX, 1e-30f};
    memcpy(x, special, sizeof special);
    for (int i = 0; i < 64; i++) x[100 + i] = u2f((uint32_t)mix(&s)); /* any bits: NaNs, huge, subnormal */
    /* every tail length: n = 0 .. 9 elements from an odd offset */
    for (int n = 0; n < 10; n++) {
        for (int i = 0; i < 16; i++) y[i] = -1.0f;
        cdf_expf_sleef_avx2(x + 3, y, n);
        for (int i = 0; i < 16; i++)
            if (!same(y[i], i < n ? cdf_expf_sleef(x[3 + i]) : -1.0f)) fail_msg("n %d: lane %d", n, i);
    }
    cdf_expf_sleef_avx2(x, y, N);
    for (int i = 0; i < N; i++)
        if (!same(y[i], cdf_expf_sleef(x[i])))
            fail_msg("exp(%.9g): AVX2 %.9g, scalar %.9g", x[i], y[i], cdf_expf_sleef(x[i]));
    free(x);
    free(y);
#else
    print_message("built without the x86 kernels\n");
#endif
}

static void silu_matches_torch(void **state) {
    (void)state;
    /* {x, F.silu(x)} as float32 bits */
    static const uint32_t pinned[][2] = {
        {0xc2b50000u, 0x80000000u}, {0xc1a20000u, 0xb30b9c94u}, {0xc0533333u, 0xbdf06782u}, {0xbf400000u, 0xbe766408u},
        {0xba83126fu, 0xba0301a8u}, {0x3ecccccdu, 0x3e7538f4u}, {0x3fd9999au, 0x3fb7fd06u}, {0x40c66666u, 0x40c5ff88u},
        {0x418f3333u, 0x418f3333u}, {0x42be0000u, 0x42be0000u}, {0x80000000u, 0x80000000u}, {0x012355e6u, 0x00a355e6u},
        {0x3dcccccdu, 0x3d57080fu}, {0x40000000u, 0x3fe17beau}, {0xc0a00000u, 0xbd0911d0u}, {0x42200000u, 0x42200000u},
    };
    enum { N = sizeof pinned / sizeof pinned[0] };
    float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = u2f(pinned[i][0]);
    static const cdf_isa isas[] = {CDF_ISA_AUTO, CDF_ISA_SCALAR};
    for (int k = 0; k < 2; k++) {
        cdf_exec ex;
        cdf_exec_init(&ex, 1, NULL);
        ex.isa = isas[k];
        memcpy(y, x, sizeof y);
        cdf_activate(&ex, y, N, CDF_ACT_SILU);
        for (int i = 0; i < N; i++)
            if (f2u(y[i]) != pinned[i][1])
                fail_msg("isa %d: silu(%.9g) = 0x%08x, torch 0x%08x", k, x[i], f2u(y[i]), pinned[i][1]);
    }
}

static void silu_vector_is_scalar(void **state) {
    (void)state;
#if CDF_HAVE_X86
    if (!have_avx2()) return;
    enum { N = 1 << 15 };
    float *x = malloc(N * sizeof *x), *y = malloc((N + 1) * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    uint64_t s = 21;
    for (int i = 0; i < N; i++) x[i] = uniform(&s, -110.0f, 110.0f);
    for (int i = 0; i < 64; i++) x[200 + i] = u2f((uint32_t)mix(&s)); /* any bits */
    for (int affine = 0; affine < 2; affine++)
        for (int n = N - 9; n <= N; n++) { /* every tail length */
            float sc = affine ? 0.37f : 1.0f, sh = affine ? -1.25f : 0.0f;
            y[n] = 7.0f;
            cdf_silu_avx2(x, y, n, affine, sc, sh);
            assert_true(y[n] == 7.0f);
            for (int i = 0; i < n; i++) {
                float want = cdf_silu_ref(affine ? x[i] * sc + sh : x[i]);
                if (!same(y[i], want)) fail_msg("affine %d n %d: silu lane %d AVX2 %.9g, scalar %.9g", affine, n, i, y[i], want);
            }
        }
    free(x);
    free(y);
#else
    print_message("built without the x86 kernels\n");
#endif
}

static void softmax_matches_torch(void **state) {
    (void)state;
    /* x_i = float32(sin(1.7 i) * 6) and torch.softmax(x, -1): 5 is one partial vector, 13 one and a half */
    static const uint32_t x13[] = {0x00000000u, 0x40be664fu, 0xbfc4416du, 0xc0b1c1a5u, 0x403dbd52u,
                                   0x40994f3du, 0xc086603eu, 0xc06d5d5au, 0x40a4f586u, 0x4018592fu,
                                   0xc0b8969cu, 0xbf64dccdu, 0x40bff5d2u};
    static const uint32_t y5[] = {0x3b221311u, 0x3f72f3efu, 0x3a0becb4u, 0x3720821cu, 0x3d44661bu};
    static const uint32_t y13[] = {0x3a6bb027u, 0x3eb0a68bu, 0x394b7a55u, 0x3669690cu, 0x3c8ecd1du,
                                   0x3dddb78bu, 0x37625d2bu, 0x37b8d3cbu, 0x3e1f8a94u, 0x3c1f3b76u,
                                   0x363c89d5u, 0x39c0cd3bu, 0x3eb97aa4u};
    static const cdf_isa isas[] = {CDF_ISA_AUTO, CDF_ISA_SCALAR};
    for (int k = 0; k < 2; k++) {
        cdf_exec ex;
        cdf_exec_init(&ex, 1, NULL);
        ex.isa = isas[k];
        float row[13];
        for (int n = 5; n <= 13; n += 8) {
            const uint32_t *want = n == 5 ? y5 : y13;
            for (int i = 0; i < n; i++) row[i] = u2f(x13[i]);
            cdf_softmax_rows(&ex, row, 1, n);
            for (int i = 0; i < n; i++)
                if (f2u(row[i]) != want[i])
                    fail_msg("isa %d width %d: y[%d] = 0x%08x, torch 0x%08x", k, n, i, f2u(row[i]), want[i]);
        }
    }
}

static void softmax_vector_is_scalar(void **state) {
    (void)state;
#if CDF_HAVE_X86
    if (!have_avx2()) return;
    enum { W = 4099 };
    float *x = malloc(W * sizeof *x), *a = malloc((W + 8) * sizeof *a), *b = malloc(W * sizeof *b);
    assert_non_null(x);
    assert_non_null(a);
    assert_non_null(b);
    uint64_t s = 9;
    int checked = 0;
    for (int n = 1; n <= W; n = n < 40 ? n + 1 : n * 2 + 1) {
        for (int kind = 0; kind < 4; kind++) {
            float spread = kind == 0 ? 1.0f : kind == 1 ? 30.0f : 300.0f;
            for (int i = 0; i < n; i++) x[i] = uniform(&s, -spread, spread);
            if (kind == 3) /* masked keys (causal / -inf masks), one key left */
                for (int i = 0; i < n; i++)
                    if (i != n / 2 && (mix(&s) & 1)) x[i] = -INFINITY;
            memcpy(a, x, (size_t)n * sizeof *a);
            a[n] = 12345.0f; /* the lane after the row is never written */
            memcpy(b, x, (size_t)n * sizeof *b);
            cdf_softmax_row_avx2(a, n);
            cdf_softmax_row_ref(b, n);
            assert_true(a[n] == 12345.0f);
            for (int i = 0; i < n; i++)
                if (!same(a[i], b[i])) fail_msg("width %d kind %d: y[%d] AVX2 %.9g, scalar %.9g", n, kind, i, a[i], b[i]);
            checked++;
        }
    }
    /* a NaN anywhere makes the row NaN on both paths */
    for (int i = 0; i < 20; i++) a[i] = b[i] = (float)i;
    a[13] = b[13] = NAN;
    cdf_softmax_row_avx2(a, 20);
    cdf_softmax_row_ref(b, 20);
    for (int i = 0; i < 20; i++) assert_true(isnan(a[i]) && isnan(b[i]));
    assert_int_equal(checked, 46 * 4); /* widths 1..40, then 81 .. 2623 */
    free(x);
    free(a);
    free(b);
#else
    print_message("built without the x86 kernels\n");
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exp_matches_torch),     cmocka_unit_test(exp_within_one_ulp),
        cmocka_unit_test(exp_vector_is_scalar),  cmocka_unit_test(softmax_matches_torch),
        cmocka_unit_test(softmax_vector_is_scalar), cmocka_unit_test(silu_matches_torch),
        cmocka_unit_test(silu_vector_is_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
