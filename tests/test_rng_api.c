/* Generator API behaviour: seed parsing and errors, numpy list entropy,
 * state get/set (continuing a stream from a saved state), 32-bit buffering,
 * randn_tensor generator-list semantics and dtypes, OS seeds, allocation
 * failures, and the portable 128-bit multiply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "rng/distributions.h"
#include "rng/generator.h"
#include "rng/seedseq.h"
#include "rng/u128.h"
#include "tensor/half.h"

static cdf_generator *make(const char *seed) {
    cdf_generator *g = NULL;
    cdf_error err = {0};
    if (cdf_generator_new(CDF_RNG_NUMPY, seed, &g, &err) != CDF_OK) fail_msg("seed %s: %s", seed, err.msg);
    return g;
}

static uint64_t *golden_u64(const char *file, size_t n) {
    uint64_t *v = tu_load_bin(tu_data("numpy_rng/%s", file), n, 8);
    assert_non_null(v);
    return v;
}

/* numpy 1.24.2: PCG64(<entropy>).random_raw(3) for list and huge seeds
 * (numpy's own output, recorded with /usr/bin/python3). */
static void test_list_and_huge_seeds_numpy(void **state) {
    (void)state;
    static const struct {
        const char *seeds[6];
        size_t n;
        uint32_t words[6];
        size_t nwords;
        uint64_t raw[3];
    } k[] = {
        {{"0", "0"}, 2, {0, 0}, 2, {0xa30febcfd9c2825fULL, 0x4510bdf882d9d721ULL, 0x0a7d3da94ecde8b8ULL}},
        {{"0", "0", "0", "0", "0"}, 5, {0, 0, 0, 0, 0}, 5,
         {0xf1645affcd5f76eeULL, 0x50fb78bc01675596ULL, 0xb8eb71a2c24c942dULL}},
        {{"0", "5", "18446744073709551616", "0"}, 4, {0, 5, 0, 0, 1, 0}, 6,
         {0x2fa90a2076e29ee5ULL, 0x317cb0f17e6aa6caULL, 0x020549ab35de85acULL}},
        {{"340282366920938463463374607431768211463"}, 1, {7, 0, 0, 0, 1}, 5,
         {0x7b076c1dae6ffa92ULL, 0x0f3e21c06626baa4ULL, 0x39022472712dca00ULL}},
        {{"1234567890123456789012345678901234567890"}, 1, {3460238034u, 2898026390u, 3235640248u, 2697535605u, 3}, 5,
         {0x40fba8c5de804508ULL, 0xc409075fa1f1fd9bULL, 0x9bf7723809364ee6ULL}},
        {{"00012"}, 1, {12}, 1, {0x4036081c9cd9cf38ULL, 0xf25e669ef91596a8ULL, 0x30774cfc107dc072ULL}},
        {{"18446744073709551616", "1"}, 2, {0, 0, 1, 1}, 4,
         {0xbef1bf0cf7cc476fULL, 0x24ef9ad8a45ffedcULL, 0xb1761aa78f4ef23dULL}},
    };
    for (size_t c = 0; c < sizeof k / sizeof k[0]; c++) {
        uint32_t *words = NULL;
        size_t nw = 0;
        cdf_error err = {0};
        for (size_t i = 0; i < k[c].n; i++) assert_int_equal(cdf_seed_words_append(k[c].seeds[i], &words, &nw, &err), CDF_OK);
        assert_int_equal(nw, k[c].nwords);
        assert_memory_equal(words, k[c].words, nw * sizeof *words);
        cdf_free(words);
        cdf_generator *g = NULL;
        assert_int_equal(cdf_generator_new_list(CDF_RNG_NUMPY, k[c].seeds, k[c].n, &g, &err), CDF_OK);
        for (int i = 0; i < 3; i++) assert_true(cdf_generator_next_u64(g) == k[c].raw[i]);
        cdf_generator_free(g);
    }
    /* PCG64(0) == PCG64([0, 0]) in numpy (short entropy is zero-padded by the hash) */
    cdf_generator *a = make("0");
    uint64_t *raw0 = golden_u64("seed_0.raw32_u64.bin", 32);
    assert_true(cdf_generator_next_u64(a) == raw0[0]);
    assert_true(raw0[0] == k[0].raw[0]);
    free(raw0);
    cdf_generator_free(a);
}

static void test_bad_seeds(void **state) {
    (void)state;
    const char *bad[] = {"-1", "", "12a", " 1", "+1", "1.0", "0x10", "1e5", "١"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cdf_generator *g = (cdf_generator *)1;
        cdf_error err = {0};
        assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY, bad[i], &g, &err), CDF_ERR_ARG);
        assert_null(g);
        assert_int_equal(err.status, CDF_ERR_ARG);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
        if (!strstr(err.msg, quoted)) fail_msg("message does not name seed %s: %s", quoted, err.msg);
    }
    /* a bad element in a list is named with its position */
    const char *list[] = {"1", "2", "-3"};
    cdf_generator *g = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_generator_new_list(CDF_RNG_NUMPY, list, 3, &g, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "element 2"));
    assert_non_null(strstr(err.msg, "\"-3\""));
    assert_int_equal(cdf_generator_new_list(CDF_RNG_NUMPY, list, 0, &g, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY, NULL, &g, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_generator_new((cdf_rng_kind)5, "1", &g, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY, "1", NULL, &err), CDF_ERR_ARG);
}

/* Saving the state mid-stream and restoring it replays the same draws, also
 * with a pending buffered 32-bit half; a golden state continues numpy's stream. */
static void test_state_get_set(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_generator *g = make("1234");
    double skip[37];
    cdf_generator_standard_normal(g, skip, 37);
    float one;
    cdf_generator_standard_normal_f32(g, &one, 1); /* leaves a buffered high half */
    cdf_pcg64_state st;
    assert_int_equal(cdf_generator_get_pcg64_state(g, &st, &err), CDF_OK);
    assert_int_equal(st.has_uint32, 1);
    float fa[50], fb[50];
    double da[50], db[50];
    cdf_generator_standard_normal_f32(g, fa, 50);
    cdf_generator_standard_normal(g, da, 50);
    cdf_generator *h = make("999");
    assert_int_equal(cdf_generator_set_pcg64_state(h, &st, &err), CDF_OK);
    cdf_generator_standard_normal_f32(h, fb, 50);
    cdf_generator_standard_normal(h, db, 50);
    assert_memory_equal(fa, fb, sizeof fa);
    assert_memory_equal(da, db, sizeof da);
    cdf_generator_free(h);
    cdf_generator_free(g);

    /* numpy's seeded state of seed 0 (golden) set into another generator gives seed 0's raw stream */
    uint64_t *st0 = golden_u64("seed_0.pcg64_state_u64.bin", 4);
    uint64_t *raw0 = golden_u64("seed_0.raw32_u64.bin", 32);
    g = make("77");
    cdf_pcg64_state s0 = {st0[0], st0[1], st0[2], st0[3], 0, 0};
    assert_int_equal(cdf_generator_set_pcg64_state(g, &s0, &err), CDF_OK);
    for (int i = 0; i < 32; i++) assert_true(cdf_generator_next_u64(g) == raw0[i]);
    /* 32-bit buffering: low half first, then the buffered high half */
    assert_int_equal(cdf_generator_set_pcg64_state(g, &s0, &err), CDF_OK);
    const cdf_bitgen *bg = cdf_generator_bitgen(g);
    assert_int_equal(bg->next_u32(bg->state), (uint32_t)raw0[0]);
    assert_int_equal(cdf_generator_get_pcg64_state(g, &st, &err), CDF_OK);
    assert_int_equal(st.has_uint32, 1);
    assert_int_equal(st.uinteger, (uint32_t)(raw0[0] >> 32));
    assert_int_equal(bg->next_u32(bg->state), (uint32_t)(raw0[0] >> 32));
    assert_int_equal(bg->next_u32(bg->state), (uint32_t)raw0[1]);
    /* 64-bit draws bypass the buffer and keep it pending */
    assert_true(cdf_generator_next_u64(g) == raw0[2]);
    assert_int_equal(bg->next_u32(bg->state), (uint32_t)(raw0[1] >> 32));
    free(st0);
    free(raw0);
    cdf_generator_free(g);
    assert_int_equal(cdf_generator_get_pcg64_state(NULL, &st, &err), CDF_ERR_ARG);
}

static size_t numel_of(const int64_t *shape, int ndim) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

/* [g] * 4 consumes one stream in turn (same as one generator drawing the
 * whole batch); four equally seeded handles give four equal slices. */
static void test_randn_generator_lists(void **state) {
    (void)state;
    cdf_error err = {0};
    const int64_t shape[4] = {4, 3, 8, 8};
    size_t n = numel_of(shape, 4), per = n / 4;
    double *same = malloc(n * 8), *whole = malloc(n * 8), *four = malloc(n * 8);
    cdf_generator *g = make("0");
    cdf_generator *rep[4] = {g, g, g, g};
    assert_int_equal(cdf_randn_tensor(rep, 4, shape, 4, CDF_F64, same, &err), CDF_OK);
    cdf_generator_free(g);
    g = make("0");
    assert_int_equal(cdf_randn_tensor(&g, 1, shape, 4, CDF_F64, whole, &err), CDF_OK);
    cdf_generator_free(g);
    cdf_generator *sep[4] = {make("0"), make("0"), make("0"), make("0")};
    assert_int_equal(cdf_randn_tensor(sep, 4, shape, 4, CDF_F64, four, &err), CDF_OK);
    for (int i = 0; i < 4; i++) cdf_generator_free(sep[i]);
    assert_memory_equal(same, whole, n * 8);
    for (int i = 1; i < 4; i++) {
        assert_memory_equal(four, four + i * per, per * 8);
        assert_memory_not_equal(same + i * per, four + i * per, per * 8);
    }
    assert_memory_equal(same, four, per * 8);
    /* golden: the first 768 draws of seed 0 */
    double *gold = tu_load_bin(tu_data("numpy_rng/seed_0.normal4096_f64.bin"), 4096, 8);
    assert_non_null(gold);
    assert_memory_equal(whole, gold, n * 8);
    free(gold);

    /* list length must match the batch size */
    cdf_generator *three[3] = {make("1"), make("2"), make("3")};
    err = (cdf_error){0};
    assert_int_equal(cdf_randn_tensor(three, 3, shape, 4, CDF_F32, same, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "3 generators"));
    const int64_t scalar_shape[1] = {3};
    assert_int_equal(cdf_randn_tensor(three, 3, scalar_shape, 0, CDF_F32, same, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_randn_tensor(three, 3, scalar_shape, 1, CDF_F32, same, &err), CDF_OK);
    cdf_generator *withnull[2] = {three[0], NULL};
    const int64_t two[1] = {2};
    assert_int_equal(cdf_randn_tensor(withnull, 2, two, 1, CDF_F32, same, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_randn_tensor(three, 0, two, 1, CDF_F32, same, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_randn_tensor(three, 1, two, 1, CDF_BF16, same, &err), CDF_ERR_UNSUPPORTED);
    const int64_t negdim[2] = {2, -1};
    assert_int_equal(cdf_randn_tensor(three, 1, negdim, 2, CDF_F32, same, &err), CDF_ERR_SHAPE);
    const int64_t huge[3] = {INT64_MAX, INT64_MAX, 2};
    assert_int_equal(cdf_randn_tensor(three, 1, huge, 3, CDF_F32, same, &err), CDF_ERR_LIMIT);
    const int64_t empty[2] = {0, 5};
    assert_int_equal(cdf_randn_tensor(three, 1, empty, 2, CDF_F32, NULL, &err), CDF_OK);
    for (int i = 0; i < 3; i++) cdf_generator_free(three[i]);
    free(same);
    free(whole);
    free(four);
}

/* F32 and F16 outputs are single roundings of the float64 draw. */
static void test_randn_dtypes(void **state) {
    (void)state;
    cdf_error err = {0};
    const int64_t shape[2] = {2, 1000};
    size_t n = 2000;
    double *d = malloc(n * 8);
    float *f = malloc(n * 4);
    unsigned char *h = malloc(n * 2 + 1);
    cdf_generator *a = make("42"), *b = make("42"), *c = make("42");
    assert_int_equal(cdf_randn_tensor(&a, 1, shape, 2, CDF_F64, d, &err), CDF_OK);
    assert_int_equal(cdf_randn_tensor(&b, 1, shape, 2, CDF_F32, f, &err), CDF_OK);
    assert_int_equal(cdf_randn_tensor(&c, 1, shape, 2, CDF_F16, h + 1, &err), CDF_OK); /* misaligned */
    float *gold32 = tu_load_bin(tu_data("numpy_rng/seed_42.normal4096_f64_cast_f32.bin"), 4096, 4);
    assert_non_null(gold32);
    assert_memory_equal(f, gold32, n * 4);
    free(gold32);
    for (size_t i = 0; i < n; i++) {
        uint16_t v;
        memcpy(&v, h + 1 + 2 * i, 2);
        assert_int_equal(v, cdf_f64_to_f16(d[i]));
    }
    cdf_generator_free(a);
    cdf_generator_free(b);
    cdf_generator_free(c);
    free(d);
    free(f);
    free(h);
}

static void test_seed_from_os(void **state) {
    (void)state;
    char a[32], b[32];
    cdf_error err = {0};
    assert_int_equal(cdf_seed_from_os(a, sizeof a, &err), CDF_OK);
    assert_int_equal(cdf_seed_from_os(b, sizeof b, &err), CDF_OK);
    assert_true(strlen(a) >= 1 && strlen(a) <= 20);
    assert_true(strspn(a, "0123456789") == strlen(a));
    assert_string_not_equal(a, b); /* 2^-64 chance of a false failure */
    cdf_generator *g = NULL;
    assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY, a, &g, &err), CDF_OK);
    cdf_generator_free(g);
    assert_int_equal(cdf_seed_from_os(a, 8, &err), CDF_ERR_ARG);
}

/* Allocation failures: every allocation made while creating a generator from
 * a list of big seeds fails in turn; each returns CDF_ERR_NOMEM leaking nothing. */
typedef struct alloc_count {
    long live, calls, fail_at;
} alloc_count;

static void *cnt_malloc(size_t n, void *u) {
    alloc_count *c = u;
    if (++c->calls == c->fail_at) return NULL;
    void *p = malloc(n);
    if (p) c->live++;
    return p;
}
static void *cnt_realloc(void *p, size_t n, void *u) {
    alloc_count *c = u;
    if (++c->calls == c->fail_at) return NULL;
    void *q = realloc(p, n);
    if (q && !p) c->live++;
    return q;
}
static void cnt_free(void *p, void *u) {
    alloc_count *c = u;
    if (p) c->live--;
    free(p);
}

static void test_alloc_failures(void **state) {
    (void)state;
    const char *seeds[] = {"123456789012345678901234567890", "7", "98765432109876543210"};
    alloc_count c = {0, 0, 0};
    cdf_allocator al = {cnt_malloc, cnt_realloc, cnt_free, &c};
    cdf_set_allocator(&al);
    long total;
    {
        cdf_generator *g = NULL;
        cdf_error err = {0};
        assert_int_equal(cdf_generator_new_list(CDF_RNG_NUMPY, seeds, 3, &g, &err), CDF_OK);
        cdf_generator_free(g);
        total = c.calls;
        assert_int_equal(c.live, 0);
    }
    assert_true(total >= 4);
    for (long k = 1; k <= total; k++) {
        c.calls = 0;
        c.fail_at = k;
        cdf_generator *g = (cdf_generator *)1;
        cdf_error err = {0};
        cdf_status st = cdf_generator_new_list(CDF_RNG_NUMPY, seeds, 3, &g, &err);
        assert_int_equal(st, CDF_ERR_NOMEM);
        assert_null(g);
        assert_int_equal(c.live, 0);
    }
    cdf_set_allocator(NULL);
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The portable 128-bit multiply against known products and the native one. */
static void test_u128_portable(void **state) {
    (void)state;
    cdf_u128 m = cdf_mul64x64_portable(UINT64_MAX, UINT64_MAX); /* (2^64-1)^2 = 2^128 - 2^65 + 1 */
    assert_true(m.hi == UINT64_MAX - 1 && m.lo == 1);
    m = cdf_u128_mul_portable(cdf_u128_make(1, 0), cdf_u128_make(1, 0)); /* 2^128 mod 2^128 */
    assert_true(m.hi == 0 && m.lo == 0);
    m = cdf_u128_mul_portable(cdf_u128_make(0, 0x100000000ULL), cdf_u128_make(0, 0x100000000ULL));
    assert_true(m.hi == 1 && m.lo == 0);
    cdf_u128 s = cdf_u128_add(cdf_u128_make(0, UINT64_MAX), cdf_u128_make(0, 1));
    assert_true(s.hi == 1 && s.lo == 0);
#if CDF_HAVE_NATIVE_U128
    uint64_t r = 1;
    for (int i = 0; i < 200000; i++) {
        cdf_u128 a = cdf_u128_make(splitmix(&r), splitmix(&r)), b = cdf_u128_make(splitmix(&r), splitmix(&r));
        if (i % 7 == 0) a.lo = UINT64_MAX;
        cdf_u128 p = cdf_u128_mul_portable(a, b), q = cdf_u128_mul_native(a, b);
        assert_true(p.hi == q.hi && p.lo == q.lo);
    }
#endif
}

/* Through the bit generator table: Generator.random() and next_double agree
 * with numpy's golden random(64). */
static void test_random_golden(void **state) {
    (void)state;
    double *gold = tu_load_bin(tu_data("numpy_rng/seed_9223372036854775813.random64_f64.bin"), 64, 8);
    assert_non_null(gold);
    cdf_generator *g = make("9223372036854775813");
    const cdf_bitgen *bg = cdf_generator_bitgen(g);
    double got[64];
    for (int i = 0; i < 32; i++) got[i] = cdf_dist_random(bg);
    cdf_generator_random(g, got + 32, 32);
    assert_memory_equal(got, gold, sizeof got);
    for (int i = 0; i < 64; i++) assert_true(got[i] >= 0.0 && got[i] < 1.0);
    free(gold);
    cdf_generator_free(g);
}

/* numpy 1.24's 24-bit next_float: Generator.random(dtype=float32), and a
 * float32 tail draw whose last bit depends on it (numpy 1.24.2 values). */
static void test_float32_uniform_numpy(void **state) {
    (void)state;
    static const uint32_t want_random_f32[5] = {0x3f59c282u, 0x3f230febu, 0x3f02d9d7u, 0x3e8a217au, 0x3e9d9bd0u};
    cdf_generator *g = make("0");
    const cdf_bitgen *bg = cdf_generator_bitgen(g);
    for (int i = 0; i < 5; i++) {
        float f = cdf_dist_random_f32(bg);
        uint32_t u;
        memcpy(&u, &f, 4);
        assert_int_equal(u, want_random_f32[i]);
    }
    cdf_generator_free(g);
    /* Generator(PCG64(257)).standard_normal(15904, dtype=np.float32)[15903] */
    g = make("257");
    float *v = malloc(15904 * sizeof *v);
    cdf_generator_standard_normal_f32(g, v, 15904);
    uint32_t u;
    memcpy(&u, &v[15903], 4);
    assert_int_equal(u, 0xc0765e09u);
    free(v);
    cdf_generator_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_and_huge_seeds_numpy),
        cmocka_unit_test(test_bad_seeds),
        cmocka_unit_test(test_state_get_set),
        cmocka_unit_test(test_randn_generator_lists),
        cmocka_unit_test(test_randn_dtypes),
        cmocka_unit_test(test_seed_from_os),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_u128_portable),
        cmocka_unit_test(test_random_golden),
        cmocka_unit_test(test_float32_uniform_numpy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
