/* torch CPU generator API behaviour: kind names, seed rules and the
 * fewer-bits notice, the small-tensor cached normal (kept across calls and
 * dtypes, cleared by re-seeding), state get/set (fields and torch's 5056-byte
 * get_state layout), diffusers' generator lists, dtype errors, and allocation
 * failures.  Expected values come from the torch golden vectors. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "rng/generator.h"

static float *golden_f32(const char *file, size_t n) {
    float *v = tu_load_bin(tu_data("torch_rng/%s", file), n, 4);
    if (!v) fail_msg("cannot read torch_rng/%s", file);
    return v;
}

static cdf_generator *make(cdf_rng_kind kind, const char *seed) {
    cdf_generator *g = NULL;
    cdf_error err = {0};
    if (cdf_generator_new(kind, seed, &g, &err) != CDF_OK) fail_msg("seed %s: %s", seed, err.msg);
    return g;
}

static void randn_f32(cdf_generator *g, size_t n, float *out) {
    int64_t shape[1] = {(int64_t)n};
    cdf_error err = {0};
    if (cdf_randn_tensor(&g, 1, shape, 1, CDF_F32, out, &err) != CDF_OK) fail_msg("randn: %s", err.msg);
}

static void test_kind_names(void **state) {
    (void)state;
    cdf_error err = {0};
    for (int k = 0; k < CDF_RNG_KIND_COUNT; k++) {
        cdf_rng_kind back = CDF_RNG_NUMPY;
        assert_int_equal(cdf_rng_kind_parse(cdf_rng_kind_name((cdf_rng_kind)k), &back, &err), CDF_OK);
        assert_int_equal(back, k);
    }
    assert_string_equal(cdf_rng_kind_name(CDF_RNG_TORCH_CPU_AVX2), "torch-cpu-avx2");
    assert_string_equal(cdf_rng_kind_name((cdf_rng_kind)9), "unknown");
    cdf_rng_kind k = CDF_RNG_TORCH_CUDA;
    assert_int_equal(cdf_rng_kind_parse("torch", &k, &err), CDF_ERR_ARG);
    assert_int_equal(k, CDF_RNG_TORCH_CUDA);
    assert_non_null(strstr(err.msg, "\"torch\""));
    assert_int_equal(cdf_rng_kind_parse("Torch-CPU", &k, &err), CDF_ERR_ARG);
}

typedef struct notices {
    int n;
    cdf_notice_level level;
    char last[512];
} notices;

static void on_notice(cdf_notice_level level, const char *msg, void *user) {
    notices *ns = user;
    ns->n++;
    ns->level = level;
    snprintf(ns->last, sizeof ns->last, "%s", msg);
}

/* torch: -2^63 .. 2^64-1, two's complement, low 32 bits; the notice when bits are dropped. */
static void test_seed_rules_and_notice(void **state) {
    (void)state;
    static const struct {
        const char *seed;
        cdf_status st;
        uint64_t initial, used;
        int reduced;
    } k[] = {
        {"0", CDF_OK, 0, 0, 0},
        {"4294967295", CDF_OK, 4294967295u, 4294967295u, 0},
        {"4294967296", CDF_OK, 4294967296ull, 0, 1},
        {"-1", CDF_OK, UINT64_MAX, 4294967295u, 1},
        {"-5", CDF_OK, UINT64_MAX - 4, 4294967291u, 1},
        {"-0", CDF_OK, 0, 0, 0},
        {"000042", CDF_OK, 42, 42, 0},
        {"18446744073709551615", CDF_OK, UINT64_MAX, 4294967295u, 1},
        {"18446744073709551616", CDF_ERR_ARG, 0, 0, 0},
        {"-9223372036854775808", CDF_OK, 9223372036854775808ull, 0, 1},
        {"-9223372036854775809", CDF_ERR_ARG, 0, 0, 0},
        {"99999999999999999999999999", CDF_ERR_ARG, 0, 0, 0},
        {"", CDF_ERR_ARG, 0, 0, 0},
        {"-", CDF_ERR_ARG, 0, 0, 0},
        {"+1", CDF_ERR_ARG, 0, 0, 0},
        {"1e3", CDF_ERR_ARG, 0, 0, 0},
        {" 1", CDF_ERR_ARG, 0, 0, 0},
        {"--1", CDF_ERR_ARG, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        for (int kind = CDF_RNG_TORCH_CPU; kind <= CDF_RNG_TORCH_CPU_AVX2; kind++) {
            notices ns = {0, 0, ""};
            cdf_error err = {0};
            err.on_notice = on_notice;
            err.notice_user = &ns;
            cdf_seed_info info;
            assert_int_equal(cdf_rng_seed_info((cdf_rng_kind)kind, k[i].seed, &info, &err), k[i].st);
            cdf_generator *g = NULL;
            assert_int_equal(cdf_generator_new((cdf_rng_kind)kind, k[i].seed, &g, &err), k[i].st);
            if (k[i].st != CDF_OK) {
                assert_null(g);
                assert_int_equal(ns.n, 0);
                char quoted[80];
                snprintf(quoted, sizeof quoted, "\"%s\"", k[i].seed);
                if (!strstr(err.msg, quoted)) fail_msg("message does not name %s: %s", quoted, err.msg);
                continue;
            }
            assert_true(info.initial_seed == k[i].initial);
            assert_true(info.used_seed == k[i].used);
            assert_int_equal(info.reduced, k[i].reduced);
            assert_int_equal(ns.n, k[i].reduced);
            if (k[i].reduced) {
                char used[32];
                snprintf(used, sizeof used, "seed %" PRIu64, k[i].used);
                assert_int_equal(ns.level, CDF_NOTICE_WARN);
                assert_string_equal(ns.last, info.notice);
                assert_non_null(strstr(ns.last, "low 32 bits"));
                assert_non_null(strstr(ns.last, used));
                assert_non_null(strstr(ns.last, k[i].seed));
            } else {
                assert_string_equal(info.notice, "");
            }
            /* the stream is the one of the used seed */
            char used_text[32];
            snprintf(used_text, sizeof used_text, "%" PRIu64, k[i].used);
            cdf_generator *h = make((cdf_rng_kind)kind, used_text);
            for (int w = 0; w < 8; w++) assert_true(cdf_generator_next_u64(g) == cdf_generator_next_u64(h));
            cdf_generator_free(h);
            cdf_generator_free(g);
        }
    }
    /* numpy and numpy-legacy never drop bits */
    cdf_seed_info info;
    cdf_error err = {0};
    assert_int_equal(cdf_rng_seed_info(CDF_RNG_NUMPY, "18446744073709551616", &info, &err), CDF_OK);
    assert_int_equal(info.reduced, 0);
    assert_int_equal(cdf_rng_seed_info(CDF_RNG_NUMPY, "-1", &info, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_rng_seed_info((cdf_rng_kind)7, "1", &info, &err), CDF_ERR_ARG);
    /* OS seeds parse for every kind */
    char buf[32];
    assert_int_equal(cdf_seed_from_os_u32(buf, sizeof buf, &err), CDF_OK);
    for (int kind = 0; kind < CDF_RNG_KIND_COUNT; kind++) {
        cdf_generator *g = make((cdf_rng_kind)kind, buf);
        cdf_generator_free(g);
    }
    assert_true(strtoull(buf, NULL, 10) <= 0xffffffffu);
    assert_int_equal(cdf_seed_from_os_u32(buf, 8, &err), CDF_ERR_ARG);
}

/* The small-tensor cache: seq_a (randn(7) twice), seq_b (float64 then
 * float32 share it), seq_c (the >= 16 path neither reads nor clears it),
 * seq_j (manual_seed clears it). */
static void test_cached_normal(void **state) {
    (void)state;
    cdf_error err = {0};
    float *a0 = golden_f32("seq_a_s0_randn7f32_randn7f32.call0.bin", 7);
    float *a1 = golden_f32("seq_a_s0_randn7f32_randn7f32.call1.bin", 7);
    float *c2 = golden_f32("seq_c_s0_randn7f32_randn16f32_randn1f32.call2.bin", 1);
    float *j1 = golden_f32("seq_j_s0_randn1f32_reseed_randn1f32.call1.bin", 1);
    for (int kind = CDF_RNG_TORCH_CPU; kind <= CDF_RNG_TORCH_CPU_AVX2; kind++) {
        cdf_generator *g = make((cdf_rng_kind)kind, "0");
        float x[16];
        randn_f32(g, 7, x);
        assert_memory_equal(x, a0, 28);
        cdf_torch_cpu_state st;
        assert_int_equal(cdf_generator_get_torch_cpu_state(g, &st, &err), CDF_OK);
        assert_int_equal(st.has_normal, 1); /* 7 is odd: one value cached */
        /* save, draw, restore: the same second call */
        randn_f32(g, 7, x);
        assert_memory_equal(x, a1, 28);
        assert_int_equal(cdf_generator_set_torch_cpu_state(g, &st, &err), CDF_OK);
        randn_f32(g, 7, x);
        assert_memory_equal(x, a1, 28);
        /* seq_c: randn(7), randn(16), randn(1): the last is the first call's cached value */
        assert_int_equal(cdf_generator_reseed(g, "0", &err), CDF_OK);
        randn_f32(g, 7, x);
        randn_f32(g, 16, x);
        randn_f32(g, 1, x);
        assert_memory_equal(x, c2, 4);
        /* seq_j: re-seeding clears the cache */
        randn_f32(g, 1, x);
        assert_int_equal(cdf_generator_reseed(g, "0", &err), CDF_OK);
        randn_f32(g, 1, x);
        assert_memory_equal(x, j1, 4);
        cdf_generator_free(g);
    }
    free(a0);
    free(a1);
    free(c2);
    free(j1);
}

/* g.get_state() bytes: the x86-64 layout of CPUGeneratorImplState. */
static void test_state_bytes(void **state) {
    (void)state;
    cdf_error err = {0};
    float *a1 = golden_f32("seq_a_s0_randn7f32_randn7f32.call1.bin", 7);
    cdf_generator *g = make(CDF_RNG_TORCH_CPU_AVX2, "-1");
    float x[7];
    randn_f32(g, 7, x);
    uint8_t b[CDF_TORCH_CPU_STATE_BYTES + 8];
    size_t w = 0;
    assert_int_equal(cdf_generator_get_torch_state_bytes(g, b, 100, &w, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_generator_get_torch_state_bytes(g, b, sizeof b, &w, &err), CDF_OK);
    assert_int_equal(w, 5056);
    cdf_torch_cpu_state st;
    assert_int_equal(cdf_generator_get_torch_cpu_state(g, &st, &err), CDF_OK);
    uint64_t seed;
    int32_t left, seeded, valid;
    uint64_t next, word5;
    double normal;
    memcpy(&seed, b, 8);
    memcpy(&left, b + 8, 4);
    memcpy(&seeded, b + 12, 4);
    memcpy(&next, b + 16, 8);
    memcpy(&word5, b + 24 + 5 * 8, 8);
    memcpy(&normal, b + 5024, 8);
    memcpy(&valid, b + 5040, 4);
    assert_true(seed == UINT64_MAX);
    assert_int_equal(left, st.left);
    assert_int_equal(seeded, 1);
    assert_int_equal(next, st.next);
    assert_int_equal(next, 16); /* 7 elements: 4 Box-Muller pairs of 4 words */
    assert_true(word5 == st.mt[5]);
    assert_int_equal(valid, 1);
    assert_memory_equal(&normal, &st.normal, 8);
    assert_int_equal(b[5052], 0); /* no float normal */
    /* round trip, then seed 0's state continues seed 0's golden seq_a */
    cdf_generator *h = make(CDF_RNG_TORCH_CPU, "123");
    assert_int_equal(cdf_generator_set_torch_state_bytes(h, b, 5056, &err), CDF_OK);
    uint8_t b2[CDF_TORCH_CPU_STATE_BYTES];
    assert_int_equal(cdf_generator_get_torch_state_bytes(h, b2, sizeof b2, &w, &err), CDF_OK);
    assert_memory_equal(b, b2, 5056);
    cdf_generator *z = make(CDF_RNG_TORCH_CPU, "0");
    randn_f32(z, 7, x);
    assert_int_equal(cdf_generator_get_torch_state_bytes(z, b, sizeof b, &w, &err), CDF_OK);
    assert_int_equal(cdf_generator_set_torch_state_bytes(h, b, 5056, &err), CDF_OK);
    randn_f32(h, 7, x);
    assert_memory_equal(x, a1, sizeof x);
    /* torch's checks: size and an invalid mt19937 state */
    assert_int_equal(cdf_generator_set_torch_state_bytes(h, b, 5000, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "5048"));
    int32_t bad_left = 0;
    memcpy(b + 8, &bad_left, 4);
    assert_int_equal(cdf_generator_set_torch_state_bytes(h, b, 5056, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "Invalid mt19937 state"));
    int32_t zero = 0, one = 1;
    memcpy(b + 8, &one, 4);
    memcpy(b + 12, &zero, 4);
    assert_int_equal(cdf_generator_set_torch_state_bytes(h, b, 5056, &err), CDF_ERR_ARG);
    /* the legacy 5048-byte layout: the cached value is rho * sin(2 pi x) */
    memcpy(b + 12, &one, 4);
    double rho = 2.0, xx = 0.25;
    memcpy(b + 5016, &xx, 8);
    memcpy(b + 5032, &rho, 8);
    assert_int_equal(cdf_generator_set_torch_state_bytes(h, b, 5048, &err), CDF_OK);
    assert_int_equal(cdf_generator_get_torch_cpu_state(h, &st, &err), CDF_OK);
    assert_int_equal(st.has_normal, 1);
    assert_true(st.normal == 2.0);
    /* other kinds have no torch CPU state */
    cdf_generator *np = make(CDF_RNG_NUMPY, "1");
    assert_int_equal(cdf_generator_get_torch_state_bytes(np, b, sizeof b, &w, &err), CDF_ERR_UNSUPPORTED);
    assert_int_equal(cdf_generator_set_torch_cpu_state(np, &st, &err), CDF_ERR_UNSUPPORTED);
    cdf_pcg64_state ps;
    assert_int_equal(cdf_generator_get_pcg64_state(g, &ps, &err), CDF_ERR_UNSUPPORTED);
    cdf_generator_free(np);
    cdf_generator_free(z);
    cdf_generator_free(h);
    cdf_generator_free(g);
    free(a1);
}

/* diffusers' randn_tensor: a list draws (1, ...) per generator ([g] * n is
 * one stream in turn); one generator draws the whole shape; kinds may mix. */
static void test_generator_lists(void **state) {
    (void)state;
    cdf_error err = {0};
    float *list = golden_f32("batch_list_0_1_2x7_f32.bin", 14);
    float *whole = golden_f32("randn_f32_s0_2x4x8x8.avx2.bin", 512);
    cdf_generator *g0 = make(CDF_RNG_TORCH_CPU_AVX2, "0"), *g1 = make(CDF_RNG_TORCH_CPU, "1");
    cdf_generator *gens[2] = {g0, g1};
    int64_t shape[2] = {2, 7};
    float x[512];
    assert_int_equal(cdf_randn_tensor(gens, 2, shape, 2, CDF_F32, x, &err), CDF_OK);
    assert_memory_equal(x, list, 14 * 4);
    /* [g] * 2 with seed 0: the second slice continues the stream (seq_a) */
    float *a1 = golden_f32("seq_a_s0_randn7f32_randn7f32.call1.bin", 7);
    assert_int_equal(cdf_generator_reseed(g0, "0", &err), CDF_OK);
    gens[1] = g0;
    assert_int_equal(cdf_randn_tensor(gens, 2, shape, 2, CDF_F32, x, &err), CDF_OK);
    assert_memory_equal(x, list, 7 * 4);
    assert_memory_equal(x + 7, a1, 7 * 4);
    /* one generator: the whole (2, 4, 8, 8) draw */
    assert_int_equal(cdf_generator_reseed(g0, "0", &err), CDF_OK);
    int64_t shape2[4] = {2, 4, 8, 8};
    assert_int_equal(cdf_randn_tensor(&g0, 1, shape2, 4, CDF_F32, x, &err), CDF_OK);
    assert_memory_equal(x, whole, sizeof x);
    /* mixed kinds: a numpy generator next to a torch one */
    cdf_generator *np = make(CDF_RNG_NUMPY, "0");
    gens[0] = np;
    gens[1] = g1;
    assert_int_equal(cdf_generator_reseed(g1, "1", &err), CDF_OK);
    assert_int_equal(cdf_randn_tensor(gens, 2, shape, 2, CDF_F32, x, &err), CDF_OK);
    assert_memory_equal(x + 7, list + 7, 7 * 4);
    /* errors draw nothing: bfloat16 with a numpy generator in the list */
    cdf_torch_cpu_state before, after;
    assert_int_equal(cdf_generator_get_torch_cpu_state(g1, &before, &err), CDF_OK);
    gens[0] = g1;
    gens[1] = np;
    assert_int_equal(cdf_randn_tensor(gens, 2, shape, 2, CDF_BF16, x, &err), CDF_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "numpy"));
    assert_int_equal(cdf_generator_get_torch_cpu_state(g1, &after, &err), CDF_OK);
    assert_memory_equal(&before, &after, sizeof before);
    int64_t shape3[2] = {3, 7}; /* 2 generators for a batch of 3 */
    assert_int_equal(cdf_randn_tensor(gens, 2, shape3, 2, CDF_F32, x, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_randn_tensor(&g1, 1, shape, 2, CDF_I32, x, &err), CDF_ERR_UNSUPPORTED);
    assert_int_equal(cdf_generator_rand(g1, 3, CDF_I64, x, &err), CDF_ERR_UNSUPPORTED);
    cdf_generator_free(np);
    cdf_generator_free(g0);
    cdf_generator_free(g1);
    free(list);
    free(whole);
    free(a1);
}

/* The simple draws per kind: torch.rand(float64), torch.randn(float64). */
static void test_simple_draws(void **state) {
    (void)state;
    double *r = tu_load_bin(tu_data("torch_rng/rand_f64_s42_64.bin"), 64, 8);
    double *n = tu_load_bin(tu_data("torch_rng/randn_f64_s42_31.bin"), 31, 8);
    float *nf = golden_f32("randn_f32_s42_31.avx2.bin", 31);
    assert_non_null(r);
    assert_non_null(n);
    cdf_generator *g = make(CDF_RNG_TORCH_CPU, "42");
    double x[64];
    cdf_generator_random(g, x, 64);
    assert_memory_equal(x, r, sizeof x);
    assert_int_equal(cdf_generator_reseed(g, "42", NULL), CDF_OK);
    cdf_generator_standard_normal(g, x, 31);
    assert_memory_equal(x, n, 31 * 8);
    cdf_generator *a = make(CDF_RNG_TORCH_CPU_AVX2, "42");
    float f[31];
    cdf_generator_standard_normal_f32(a, f, 31);
    assert_memory_equal(f, nf, sizeof f);
    /* the bit generator table gives torch's words and torch's float64 uniforms */
    assert_int_equal(cdf_generator_reseed(a, "42", NULL), CDF_OK);
    const cdf_bitgen *bg = cdf_generator_bitgen(a);
    assert_non_null(bg);
    for (int i = 0; i < 64; i++) {
        double u = bg->next_double(bg->state);
        assert_memory_equal(&u, &r[i], 8);
    }
    uint32_t *raw = tu_load_bin(tu_data("torch_rng/raw32_u32_s42_1300.bin"), 1300, 4);
    assert_non_null(raw);
    assert_int_equal(cdf_generator_reseed(a, "42", NULL), CDF_OK);
    assert_true(bg->next_u64(bg->state) == (((uint64_t)raw[0] << 32) | raw[1]));
    assert_int_equal(bg->next_u32(bg->state), raw[2]);
    free(raw);
    assert_null(cdf_generator_bitgen(NULL));
    assert_int_equal(cdf_generator_kind(a), CDF_RNG_TORCH_CPU_AVX2);
    cdf_generator_free(a);
    cdf_generator_free(g);
    free(r);
    free(n);
    free(nf);
}

/* ---- allocation failures ---- */

typedef struct alloc_state {
    long calls, fail_at, live;
} alloc_state;
static void *a_malloc(size_t n, void *u) {
    alloc_state *s = u;
    if (s->calls++ == s->fail_at) return NULL;
    void *p = malloc(n);
    if (p) s->live++;
    return p;
}
static void *a_realloc(void *p, size_t n, void *u) {
    alloc_state *s = u;
    if (s->calls++ == s->fail_at) return NULL;
    void *q = realloc(p, n);
    if (q && !p) s->live++;
    return q;
}
static void a_free(void *p, void *u) {
    alloc_state *s = u;
    if (p) s->live--;
    free(p);
}

/* Each entry point, with its k-th allocation failing, returns CDF_ERR_NOMEM
 * (or succeeds) and leaks nothing. */
static void test_nomem(void **state) {
    (void)state;
    for (int op = 0; op < 5; op++) {
        for (long k = 0;; k++) {
            alloc_state s = {0, k, 0};
            cdf_allocator al = {a_malloc, a_realloc, a_free, &s};
            cdf_set_allocator(&al);
            cdf_error err = {0};
            cdf_generator *g = NULL;
            cdf_status st = CDF_OK;
            const char *list[3] = {"1", "2", "3"};
            float x[8];
            int64_t shape[1] = {8};
            switch (op) {
            case 0: st = cdf_generator_new(CDF_RNG_TORCH_CPU, "5", &g, &err); break;
            case 1: st = cdf_generator_new_list(CDF_RNG_NUMPY_LEGACY, list, 3, &g, &err); break;
            case 2: st = cdf_generator_new_torch_cuda("5", NULL, &g, &err); break;
            case 3:
                st = cdf_generator_new(CDF_RNG_TORCH_CUDA, "5", &g, &err);
                if (st == CDF_OK) st = cdf_randn_tensor(&g, 1, shape, 1, CDF_F32, x, &err);
                break;
            default:
                st = cdf_generator_new(CDF_RNG_TORCH_CPU_AVX2, "5", &g, &err);
                if (st == CDF_OK) st = cdf_generator_reseed(g, "6", &err);
                break;
            }
            cdf_generator_free(g);
            cdf_set_allocator(NULL);
            assert_int_equal(s.live, 0);
            if (st == CDF_OK) break;
            assert_int_equal(st, CDF_ERR_NOMEM);
            assert_true(k < 10);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),     cmocka_unit_test(test_seed_rules_and_notice),
        cmocka_unit_test(test_cached_normal),  cmocka_unit_test(test_state_bytes),
        cmocka_unit_test(test_generator_lists), cmocka_unit_test(test_simple_draws),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
