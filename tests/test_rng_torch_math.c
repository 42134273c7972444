/* The float functions behind torch's scalar noise (rng_math.c: logf, sinf,
 * cosf after glibc's algorithm) against the C library that produced the
 * golden vectors, on every argument torch's kernels can pass them:
 *   logf(1 - u), u = k 2^-24 (float32 uniforms; the float16 / bfloat16 ones
 *   are a subset), and sinf/cosf of (float)(2pi u) and of its float16 and
 *   bfloat16 roundings.
 * Runs where the C library is glibc 2.28 .. 2.40 (the versions with this
 * algorithm); skipped elsewhere, where the golden vectors still pin the
 * results through test_rng_torch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "rng/rng_math.h"
#include "tensor/half.h"

#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

static int glibc_with_this_algorithm(void) {
#ifdef __GLIBC__
    int major = 0, minor = 0;
    if (sscanf(gnu_get_libc_version(), "%d.%d", &major, &minor) != 2) return 0;
    return major == 2 && minor >= 28 && minor <= 40;
#else
    return 0;
#endif
}

static int same(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static void test_reachable_arguments_match_glibc(void **state) {
    (void)state;
    const double two_pi = 2.0 * 3.14159265358979323846;
    long bad = 0, checked = 0;
    for (uint32_t k = 0; k < (1u << 24); k++) {
        float u = (float)k * 0x1p-24f;
        float u1 = 1.0f - u;
        if (!same(cdf_rm_logf(u1), logf(u1))) {
            if (bad++ < 5) print_message("logf(%a): %a, glibc %a\n", u1, cdf_rm_logf(u1), logf(u1));
        }
        float t = (float)(two_pi * (double)u);
        if (!same(cdf_rm_sinf(t), sinf(t)) || !same(cdf_rm_cosf(t), cosf(t))) {
            if (bad++ < 5) print_message("sinf/cosf(%a)\n", t);
        }
        checked += 3;
    }
    /* float16 and bfloat16 angles: (half)(float)(2pi u) with 11 / 8 bits */
    for (uint32_t k = 0; k < (1u << 11); k++) {
        float t16 = cdf_f16_to_f32(cdf_f32_to_f16((float)(two_pi * (double)((float)k * 0x1p-11f))));
        float tb = cdf_bf16_to_f32(cdf_f32_to_bf16((float)(two_pi * (double)((float)(k & 0xffu) * 0x1p-8f))));
        if (!same(cdf_rm_sinf(t16), sinf(t16)) || !same(cdf_rm_cosf(t16), cosf(t16)) ||
            !same(cdf_rm_sinf(tb), sinf(tb)) || !same(cdf_rm_cosf(tb), cosf(tb)))
            bad++;
        checked += 4;
    }
    print_message("%ld arguments, %ld differ from glibc %s\n", checked, bad,
#ifdef __GLIBC__
                  gnu_get_libc_version()
#else
                  "?"
#endif
    );
    assert_int_equal(bad, 0);
}

/* Spot values that glibc rounds differently from the correctly rounded
 * result (so a correctly rounded logf/sinf/cosf would break torch's bits):
 * the library must give glibc's value, fixed here as constants. */
static void test_known_glibc_roundings(void **state) {
    (void)state;
    static const struct {
        int fn; /* 0 logf, 1 sinf, 2 cosf */
        float x, want;
    } k[] = {
        {0, 0x1.fffffcp-1f, -0x1p-23f},           /* correctly rounded: -0x1.000002p-23 */
        {0, 0x1.ffe04cp-1f, -0x1.fb4fb4p-13f},    /* correctly rounded: -0x1.fb4fb6p-13 */
        {1, 0x1.4e9462p-7f, 0x1.4e92e6p-7f},      /* correctly rounded: 0x1.4e92e4p-7 */
        {2, 0x1.18d1dap-5f, 0x1.ffb3p-1f},        /* correctly rounded: 0x1.ffb2fep-1 */
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        float got = k[i].fn == 0 ? cdf_rm_logf(k[i].x) : k[i].fn == 1 ? cdf_rm_sinf(k[i].x) : cdf_rm_cosf(k[i].x);
        if (!same(got, k[i].want)) fail_msg("case %zu: %a, want %a", i, got, k[i].want);
    }
    assert_true(same(cdf_rm_logf(1.0f), 0.0f));
    assert_true(isinf(cdf_rm_logf(0.0f)) && cdf_rm_logf(0.0f) < 0);
    assert_true(same(cdf_rm_cosf(0.0f), 1.0f));
    assert_true(same(cdf_rm_sinf(0.0f), 0.0f));
}

int main(void) {
    const struct CMUnitTest known[] = {cmocka_unit_test(test_known_glibc_roundings)};
    const struct CMUnitTest all[] = {
        cmocka_unit_test(test_reachable_arguments_match_glibc),
        cmocka_unit_test(test_known_glibc_roundings),
    };
    if (!glibc_with_this_algorithm()) {
        /* the exhaustive comparison is the point of this test: without the C
         * library it compares against, it is a skip (77), not a pass */
        int rc = cmocka_run_group_tests(known, NULL, NULL);
        fprintf(stderr, "C library is not glibc 2.28 .. 2.40: exhaustive comparison skipped\n");
        return rc ? rc : 77;
    }
    return cmocka_run_group_tests(all, NULL, NULL);
}
