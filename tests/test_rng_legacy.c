/* numpy legacy RandomState golden data, bit for bit: every file listed in
 * tests/data/legacy_rng/manifest.json, driven by each entry's `python` call
 * sequence (int and list seeds, standard_normal, random_sample, raw words,
 * the float32/float16 casts), and each entry's state_after (position,
 * has_gauss, cached value).  Set CDF_RNG_GOLDEN_ROOT to check another set
 * in the same format.  Also the rejected seeds, the state get/set round trip
 * and randn_tensor's dtype rule (torch.from_numpy(x).to(dtype)). */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "rng/generator.h"
#include "tensor/half.h"

static const char *path_of(const char *file) { return tu_rng_golden("legacy_rng", file); }


static cJSON *load_manifest(void) {
    char *text = tu_read_text(path_of("manifest.json"));
    if (!text) fail_msg("cannot read %s", path_of("manifest.json"));
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) fail_msg("cannot parse the legacy_rng manifest");
    return j;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* RandomState(seed) or RandomState([list]) from the entry's seed field. */
static cdf_generator *make_from(const cJSON *seed) {
    cdf_generator *g = NULL;
    cdf_error err = {0};
    if (cJSON_IsArray(seed)) {
        const char *items[64];
        size_t n = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, seed) {
            assert_true(n < 64 && cJSON_IsString(it));
            items[n++] = it->valuestring;
        }
        if (cdf_generator_new_list(CDF_RNG_NUMPY_LEGACY, items, n, &g, &err) != CDF_OK) fail_msg("seed list: %s", err.msg);
    } else {
        assert_true(cJSON_IsString(seed));
        if (cdf_generator_new(CDF_RNG_NUMPY_LEGACY, seed->valuestring, &g, &err) != CDF_OK)
            fail_msg("seed %s: %s", seed->valuestring, err.msg);
    }
    return g;
}

static const char *parse_tuple(const char *p, int64_t *shape, int *ndim) {
    if (*p != '(') fail_msg("expected a shape tuple at \"%.40s\"", p);
    p++;
    *ndim = 0;
    while (*p && *p != ')') {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) fail_msg("bad shape at \"%.40s\"", p);
        assert_true(*ndim < CDF_MAX_DIMS);
        shape[(*ndim)++] = v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    if (*p != ')') fail_msg("unterminated shape");
    return p + 1;
}

static size_t numel_of(const int64_t *shape, int ndim) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

static void check_state_after(const cJSON *f, cdf_generator *g) {
    const cJSON *sa = cJSON_GetObjectItemCaseSensitive(f, "state_after");
    if (!sa) return;
    cdf_legacy_state st;
    cdf_error err = {0};
    assert_int_equal(cdf_generator_get_legacy_state(g, &st, &err), CDF_OK);
    assert_int_equal(st.pos, cJSON_GetObjectItemCaseSensitive(sa, "mt_pos")->valueint);
    assert_int_equal(st.has_gauss, cJSON_GetObjectItemCaseSensitive(sa, "has_gauss")->valueint);
    double want = strtod(cJSON_GetObjectItemCaseSensitive(sa, "cached_gaussian")->valuestring, NULL);
    assert_memory_equal(&st.cached_gaussian, &want, sizeof want);
}

static void run_entry(const cJSON *f) {
    const char *file = jstr(f, "file"), *python = jstr(f, "python");
    const cJSON *ci = cJSON_GetObjectItemCaseSensitive(f, "call_index");
    int target = cJSON_IsNumber(ci) ? ci->valueint : 0;
    size_t count = (size_t)cJSON_GetObjectItemCaseSensitive(f, "count")->valuedouble;
    size_t bytes = (size_t)cJSON_GetObjectItemCaseSensitive(f, "bytes")->valuedouble;
    unsigned char *want = tu_load_bin(path_of(file), bytes, 1);
    if (!want) fail_msg("%s: cannot read %zu bytes", file, bytes);
    char *text = strdup(python);
    char *hash = strstr(text, "  #");
    if (hash) *hash = 0;
    cdf_generator *g = NULL;
    int call = 0, compared = 0;
    char *save = NULL;
    for (char *stmt = strtok_r(text, ";", &save); stmt; stmt = strtok_r(NULL, ";", &save)) {
        while (*stmt == ' ') stmt++;
        if (!strncmp(stmt, "rs = np.random.RandomState(", 27)) {
            g = make_from(cJSON_GetObjectItemCaseSensitive(f, "seed"));
            continue;
        }
        int64_t shape[CDF_MAX_DIMS];
        int ndim = 0;
        unsigned char *got = NULL;
        size_t n = 0, got_bytes = 0;
        cdf_error err = {0};
        assert_non_null(g);
        if (!strncmp(stmt, "rs.standard_normal(", 19)) {
            const char *rest = parse_tuple(stmt + 19, shape, &ndim);
            n = numel_of(shape, ndim);
            double *x = malloc(8 * n + 8);
            assert_int_equal(cdf_randn_tensor(&g, 1, shape, ndim, CDF_F64, x, &err), CDF_OK);
            if (!strncmp(rest, ").astype(np.float16)", 20)) {
                /* numpy's astype: one rounding from float64 */
                got_bytes = 2 * n;
                got = malloc(got_bytes);
                for (size_t i = 0; i < n; i++) {
                    uint16_t h = cdf_f64_to_f16(x[i]);
                    memcpy(got + 2 * i, &h, 2);
                }
                free(x);
            } else if (!strncmp(rest, ").astype(np.float32)", 20)) {
                got_bytes = 4 * n;
                got = malloc(got_bytes);
                for (size_t i = 0; i < n; i++) {
                    float v = (float)x[i];
                    memcpy(got + 4 * i, &v, 4);
                }
                free(x);
            } else {
                got = (unsigned char *)x;
                got_bytes = 8 * n;
            }
        } else if (!strncmp(stmt, "rs.random_sample(", 17)) {
            parse_tuple(stmt + 17, shape, &ndim);
            n = numel_of(shape, ndim);
            got_bytes = 8 * n;
            got = malloc(got_bytes + 8);
            assert_int_equal(cdf_generator_rand(g, n, CDF_F64, got, &err), CDF_OK);
        } else if (!strncmp(stmt, "rs._bit_generator.random_raw(", 29)) {
            n = strtoull(stmt + 29, NULL, 10);
            got_bytes = 4 * n;
            got = malloc(got_bytes + 4);
            for (size_t i = 0; i < n; i++) {
                uint64_t w = cdf_generator_next_u64(g);
                assert_true(w <= 0xffffffffu);
                uint32_t w32 = (uint32_t)w;
                memcpy(got + 4 * i, &w32, 4);
            }
        } else {
            fail_msg("%s: statement not understood: \"%s\"", file, stmt);
        }
        if (call == target) {
            if (got_bytes != bytes) fail_msg("%s: %zu bytes, file has %zu", file, got_bytes, bytes);
            size_t es = bytes / count;
            for (size_t i = 0; i < count; i++)
                if (memcmp(got + i * es, want + i * es, es)) fail_msg("%s: element %zu of %zu differs", file, i, count);
            compared = 1;
            check_state_after(f, g);
        }
        free(got);
        call++;
    }
    if (!compared) fail_msg("%s: call %d never made", file, target);
    cdf_generator_free(g);
    free(text);
    free(want);
}

static void test_legacy_manifest_files(void **state) {
    (void)state;
    cJSON *m = load_manifest();
    const cJSON *f;
    int n = 0;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(m, "files")) {
        run_entry(f);
        n++;
    }
    print_message("legacy_rng: %d files bit-exact\n", n);
    tu_expect_ran("legacy_rng files", n, 63);
    cJSON_Delete(m);
}

/* rejected_seeds: ValueError in numpy, CDF_ERR_ARG here (never wrapped). */
static void test_legacy_rejected_seeds(void **state) {
    (void)state;
    cJSON *m = load_manifest();
    const cJSON *r;
    int n = 0;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(m, "rejected_seeds")) {
        cdf_generator *g = NULL;
        cdf_error err = {0};
        assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY_LEGACY, r->string, &g, &err), CDF_ERR_ARG);
        assert_null(g);
        assert_non_null(strstr(err.msg, r->string));
        assert_non_null(strstr(err.msg, "2**32 - 1"));
        cdf_seed_info info;
        assert_int_equal(cdf_rng_seed_info(CDF_RNG_NUMPY_LEGACY, r->string, &info, &err), CDF_ERR_ARG);
        /* the same seed inside a list is rejected too */
        const char *list[2] = {"1", r->string};
        assert_int_equal(cdf_generator_new_list(CDF_RNG_NUMPY_LEGACY, list, 2, &g, &err), CDF_ERR_ARG);
        assert_non_null(strstr(err.msg, "element 1"));
        n++;
    }
    tu_expect_ran("legacy_rng rejected_seeds", n, 5);
    /* the edges are accepted */
    cdf_generator *g = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY_LEGACY, "4294967295", &g, &err), CDF_OK);
    cdf_generator_free(g);
    assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY_LEGACY, "0", &g, &err), CDF_OK);
    cdf_generator_free(g);
    const char *bad[] = {"", "-", "1.5", "+3", " 7", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY_LEGACY, bad[i], &g, &err), CDF_ERR_ARG);
    cJSON_Delete(m);
}

/* A saved state continues the stream (cached normal included); RandomState(s)
 * differs from RandomState([s]); re-seeding restarts the stream. */
static void test_legacy_state_and_reseed(void **state) {
    (void)state;
    cdf_error err = {0};
    double *want = tu_load_bin(path_of("sn_f64_s42_31.bin"), 31, 8);
    assert_non_null(want);
    cdf_generator *g = NULL, *h = NULL;
    assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY_LEGACY, "42", &g, &err), CDF_OK);
    double a[31];
    cdf_generator_standard_normal(g, a, 5); /* odd count: a cached value is pending */
    cdf_legacy_state st;
    assert_int_equal(cdf_generator_get_legacy_state(g, &st, &err), CDF_OK);
    assert_int_equal(st.has_gauss, 1);
    assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY_LEGACY, "7", &h, &err), CDF_OK);
    assert_int_equal(cdf_generator_set_legacy_state(h, &st, &err), CDF_OK);
    cdf_generator_standard_normal(h, a + 5, 26);
    assert_memory_equal(a, want, 5 * 8);
    assert_memory_equal(a + 5, want + 5, 26 * 8);
    /* re-seed clears the cache and restarts */
    assert_int_equal(cdf_generator_reseed(h, "42", &err), CDF_OK);
    cdf_generator_standard_normal(h, a, 31);
    assert_memory_equal(a, want, sizeof a);
    cdf_legacy_state before, after;
    assert_int_equal(cdf_generator_get_legacy_state(h, &before, &err), CDF_OK);
    assert_int_equal(cdf_generator_reseed(h, "-1", &err), CDF_ERR_ARG);
    assert_int_equal(cdf_generator_get_legacy_state(h, &after, &err), CDF_OK);
    assert_memory_equal(&before, &after, sizeof before); /* a failed re-seed leaves g as it was */
    st.pos = 625;
    assert_int_equal(cdf_generator_set_legacy_state(h, &st, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_generator_get_torch_cpu_state(h, NULL, &err), CDF_ERR_ARG);
    cdf_torch_cpu_state ts;
    assert_int_equal(cdf_generator_get_torch_cpu_state(h, &ts, &err), CDF_ERR_UNSUPPORTED);
    /* the bit generator table: numpy's legacy doubles and raw words */
    double *rs = tu_load_bin(path_of("random_sample_f64_s42_64.bin"), 64, 8);
    uint32_t *raw = tu_load_bin(path_of("raw32_s42_1248.bin"), 1248, 4);
    assert_non_null(rs);
    assert_non_null(raw);
    assert_int_equal(cdf_generator_reseed(h, "42", &err), CDF_OK);
    const cdf_bitgen *bg = cdf_generator_bitgen(h);
    for (int i = 0; i < 64; i++) {
        double u = bg->next_double(bg->state);
        assert_memory_equal(&u, &rs[i], 8);
    }
    assert_int_equal(cdf_generator_reseed(h, "42", &err), CDF_OK);
    assert_int_equal(bg->next_u32(bg->state), raw[0]);
    assert_true(bg->next_u64(bg->state) == (((uint64_t)raw[1] << 32) | raw[2]));
    free(rs);
    free(raw);
    /* list seed [42] is init_by_array, not init_genrand(42) */
    const char *one[1] = {"42"};
    cdf_generator *l = NULL;
    assert_int_equal(cdf_generator_new_list(CDF_RNG_NUMPY_LEGACY, one, 1, &l, &err), CDF_OK);
    cdf_generator_standard_normal(l, a, 31);
    assert_memory_not_equal(a, want, sizeof a);
    cdf_generator_free(l);
    cdf_generator_free(h);
    cdf_generator_free(g);
    free(want);
}

/* randn_tensor's dtype rule is diffusers' tests' torch.from_numpy(x).to(dtype):
 * float32 is the golden cast; float16 goes through float32 (torch's double
 * rounding), so it differs from numpy's astype golden exactly where the two
 * roundings differ. */
static void test_legacy_randn_tensor_dtypes(void **state) {
    (void)state;
    const size_t n = 16384;
    int64_t shape[4] = {1, 4, 64, 64};
    double *x = tu_load_bin(path_of("sn_f64_s0_1x4x64x64.bin"), n, 8);
    float *f32 = tu_load_bin(path_of("sn_f64_s0_1x4x64x64.cast_float32.bin"), n, 4);
    uint16_t *f16 = tu_load_bin(path_of("sn_f64_s0_1x4x64x64.cast_float16.bin"), n, 2);
    assert_non_null(x);
    assert_non_null(f32);
    assert_non_null(f16);
    cdf_error err = {0};
    cdf_generator *g = NULL;
    float *gf = malloc(4 * n);
    uint16_t *gh = malloc(2 * n), *gb = malloc(2 * n);
    assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY_LEGACY, "0", &g, &err), CDF_OK);
    assert_int_equal(cdf_randn_tensor(&g, 1, shape, 4, CDF_F32, gf, &err), CDF_OK);
    assert_memory_equal(gf, f32, 4 * n);
    assert_int_equal(cdf_generator_reseed(g, "0", &err), CDF_OK);
    assert_int_equal(cdf_randn_tensor(&g, 1, shape, 4, CDF_F16, gh, &err), CDF_OK);
    assert_int_equal(cdf_generator_reseed(g, "0", &err), CDF_OK);
    assert_int_equal(cdf_randn_tensor(&g, 1, shape, 4, CDF_BF16, gb, &err), CDF_OK);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t via_f32 = cdf_f32_to_f16((float)x[i]);
        assert_int_equal(gh[i], via_f32);
        assert_int_equal(gb[i], cdf_f32_to_bf16((float)x[i]));
        if (gh[i] != f16[i]) {
            /* only a double-rounding case: numpy's one rounding differs from via-float32 */
            assert_int_equal(f16[i], cdf_f64_to_f16(x[i]));
            assert_int_not_equal(cdf_f64_to_f16(x[i]), via_f32);
            differ++;
        }
    }
    print_message("legacy float16: %zu of %zu elements differ between torch's cast and numpy's astype\n", differ, n);
    assert_true(differ < 8);
    cdf_generator_free(g);
    free(gf);
    free(gh);
    free(gb);
    free(x);
    free(f32);
    free(f16);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legacy_manifest_files),
        cmocka_unit_test(test_legacy_rejected_seeds),
        cmocka_unit_test(test_legacy_state_and_reseed),
        cmocka_unit_test(test_legacy_randn_tensor_dtypes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
