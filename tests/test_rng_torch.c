/* torch CPU generator golden data, bit for bit: every file listed in
 * tests/data/torch_rng/manifest.json, driven by each entry's `python` call
 * sequence (seeding, torch.randn / torch.rand / raw words, re-seeding,
 * generator lists), so more vectors in the same format are checked without
 * code changes (set CDF_RNG_GOLDEN_ROOT to a folder holding torch_rng/ to
 * check another set).  Files with an .avx2 / .default suffix are checked with
 * the matching kind, the others with both.  Also the manifest's seed rules
 * and each entry's initial_seed / low32_seed. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "rng/generator.h"

static const char *path_of(const char *file) { return tu_rng_golden("torch_rng", file); }


static cJSON *load_manifest(void) {
    char *text = tu_read_text(path_of("manifest.json"));
    if (!text) fail_msg("cannot read %s", path_of("manifest.json"));
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) fail_msg("cannot parse the torch_rng manifest");
    return j;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cdf_generator *make(cdf_rng_kind kind, const char *seed) {
    cdf_generator *g = NULL;
    cdf_error err = {0};
    if (cdf_generator_new(kind, seed, &g, &err) != CDF_OK) fail_msg("%s seed %s: %s", cdf_rng_kind_name(kind), seed, err.msg);
    return g;
}

/* "(2, 4, 8, 8)" or "(7,)" at p -> shape; returns the character after ')'. */
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

static cdf_dtype stmt_dtype(const char *stmt) {
    const char *d = strstr(stmt, "dtype=torch.");
    if (!d) fail_msg("no dtype in \"%s\"", stmt);
    d += strlen("dtype=torch.");
    if (!strncmp(d, "float32", 7)) return CDF_F32;
    if (!strncmp(d, "float64", 7)) return CDF_F64;
    if (!strncmp(d, "float16", 7)) return CDF_F16;
    if (!strncmp(d, "bfloat16", 8)) return CDF_BF16;
    fail_msg("unknown dtype in \"%s\"", stmt);
    return CDF_F32;
}

static size_t numel_of(const int64_t *shape, int ndim) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

/* Runs the call sequence of manifest entry f with generators of `kind` and
 * compares call `call_index` (or the only call) with the file. */
static void run_entry(const cJSON *f, cdf_rng_kind kind, int *calls_checked) {
    const char *file = jstr(f, "file"), *python = jstr(f, "python"), *seed = jstr(f, "seed");
    assert_non_null(file);
    assert_non_null(python);
    const cJSON *ci = cJSON_GetObjectItemCaseSensitive(f, "call_index");
    int target = cJSON_IsNumber(ci) ? ci->valueint : 0;
    size_t count = (size_t)cJSON_GetObjectItemCaseSensitive(f, "count")->valuedouble;
    size_t bytes = (size_t)cJSON_GetObjectItemCaseSensitive(f, "bytes")->valuedouble;
    unsigned char *want = tu_load_bin(path_of(file), bytes, 1);
    if (!want) fail_msg("%s: cannot read %zu bytes", file, bytes);

    char *text = strdup(python);
    char *hash = strstr(text, "  #");
    if (hash) *hash = 0; /* trailing comment */
    cdf_generator *g = NULL, *gens[64];
    size_t ngens = 0;
    int call = 0, compared = 0;
    char *save = NULL;
    for (char *stmt = strtok_r(text, ";", &save); stmt; stmt = strtok_r(NULL, ";", &save)) {
        while (*stmt == ' ') stmt++;
        const char *mk = "g = torch.Generator().manual_seed(";
        if (!strncmp(stmt, mk, strlen(mk))) {
            char s[64];
            const char *a = stmt + strlen(mk);
            const char *b = strchr(a, ')');
            assert_non_null(b);
            snprintf(s, sizeof s, "%.*s", (int)(b - a), a);
            if (seed) assert_string_equal(s, seed);
            if (g) cdf_generator_free(g);
            g = make(kind, s);
            continue;
        }
        if (!strncmp(stmt, "gens = [torch.Generator().manual_seed(s) for s in seeds]", 56)) {
            const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(f, "seeds"), *it;
            cJSON_ArrayForEach(it, seeds) {
                assert_true(ngens < 64);
                gens[ngens++] = make(kind, it->valuestring);
            }
            continue;
        }
        if (!strncmp(stmt, "g.manual_seed(seed)", 19)) {
            cdf_error err = {0};
            assert_non_null(g);
            assert_int_equal(cdf_generator_reseed(g, seed, &err), CDF_OK);
            continue;
        }
        /* a drawing call */
        int64_t shape[CDF_MAX_DIMS];
        int ndim = 0;
        cdf_dtype dt = CDF_F32;
        unsigned char *got = NULL;
        size_t got_bytes = 0;
        cdf_error err = {0};
        if (!strncmp(stmt, "torch.randn(", 12) || !strncmp(stmt, "torch.rand(", 11)) {
            int is_randn = stmt[10] == 'n';
            parse_tuple(stmt + (is_randn ? 12 : 11), shape, &ndim);
            dt = stmt_dtype(stmt);
            got_bytes = numel_of(shape, ndim) * cdf_dtype_size(dt);
            got = malloc(got_bytes + 1);
            assert_non_null(g);
            if (is_randn)
                assert_int_equal(cdf_randn_tensor(&g, 1, shape, ndim, dt, got, &err), CDF_OK);
            else
                assert_int_equal(cdf_generator_rand(g, numel_of(shape, ndim), dt, got, &err), CDF_OK);
        } else if (!strncmp(stmt, "torch.randint(-2**31, 2**31, ", 29)) {
            parse_tuple(stmt + 29, shape, &ndim);
            size_t n = numel_of(shape, ndim);
            got_bytes = 4 * n;
            got = malloc(got_bytes + 1);
            for (size_t i = 0; i < n; i++) {
                uint32_t w = (uint32_t)cdf_generator_next_u64(g);
                memcpy(got + 4 * i, &w, 4);
            }
        } else if (!strncmp(stmt, "torch.cat([torch.randn(", 23)) {
            parse_tuple(stmt + 23, shape, &ndim);
            dt = stmt_dtype(stmt);
            const cJSON *fs = cJSON_GetObjectItemCaseSensitive(f, "shape"), *it;
            int fnd = 0;
            int64_t full[CDF_MAX_DIMS];
            cJSON_ArrayForEach(it, fs) full[fnd++] = (int64_t)it->valuedouble;
            assert_int_equal(fnd, ndim);
            assert_int_equal(full[0], (int64_t)ngens);
            got_bytes = numel_of(full, fnd) * cdf_dtype_size(dt);
            got = malloc(got_bytes + 1);
            assert_int_equal(cdf_randn_tensor(gens, ngens, full, fnd, dt, got, &err), CDF_OK);
        } else {
            fail_msg("%s: statement not understood: \"%s\"", file, stmt);
        }
        if (call == target) {
            if (got_bytes != bytes) fail_msg("%s: call %d gives %zu bytes, file has %zu", file, call, got_bytes, bytes);
            size_t es = bytes / count;
            for (size_t i = 0; i < count; i++) {
                if (memcmp(got + i * es, want + i * es, es)) {
                    uint64_t a = 0, b = 0;
                    memcpy(&a, got + i * es, es);
                    memcpy(&b, want + i * es, es);
                    fail_msg("%s (%s): element %zu of %zu differs: got bits 0x%" PRIx64 ", want 0x%" PRIx64, file,
                             cdf_rng_kind_name(kind), i, count, a, b);
                }
            }
            compared = 1;
        }
        free(got);
        call++;
    }
    if (!compared) fail_msg("%s: call %d never made", file, target);
    (*calls_checked)++;
    if (g) {
        /* initial_seed() as torch reports it */
        const char *is = jstr(f, "initial_seed");
        cdf_torch_cpu_state st;
        cdf_error err = {0};
        assert_int_equal(cdf_generator_get_torch_cpu_state(g, &st, &err), CDF_OK);
        if (is) assert_true(st.initial_seed == strtoull(is, NULL, 10));
        cdf_generator_free(g);
    }
    for (size_t i = 0; i < ngens; i++) cdf_generator_free(gens[i]);
    free(text);
    free(want);
}

static void test_torch_manifest_files(void **state) {
    (void)state;
    cJSON *m = load_manifest();
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files"), *f;
    int n_entries = 0, n_checked = 0, n_avx2 = 0, n_default = 0;
    cJSON_ArrayForEach(f, files) {
        const char *file = jstr(f, "file");
        n_entries++;
        if (strstr(file, ".avx2.bin")) {
            run_entry(f, CDF_RNG_TORCH_CPU_AVX2, &n_checked);
            n_avx2++;
        } else if (strstr(file, ".default.bin")) {
            run_entry(f, CDF_RNG_TORCH_CPU, &n_checked);
            n_default++;
        } else {
            run_entry(f, CDF_RNG_TORCH_CPU_AVX2, &n_checked);
            run_entry(f, CDF_RNG_TORCH_CPU, &n_checked);
        }
    }
    print_message("torch_rng: %d files (%d avx2, %d default), %d checks, all bit-exact\n", n_entries, n_avx2, n_default,
                  n_checked);
    assert_true(n_avx2 > 0 && n_default > 0);
    tu_expect_ran("torch_rng files", n_entries, 262);
    tu_expect_ran("torch_rng .avx2 files", n_avx2, 51);
    tu_expect_ran("torch_rng .default files", n_default, 51);
    tu_expect_ran("torch_rng checks", n_checked, 422); /* files without a capability suffix: both kinds */
    cJSON_Delete(m);
}

/* The manifest's seed_rules: accepted seeds give initial_seed() and the low
 * 32 bits torch seeds mt19937 with; rejected ones are errors. */
static void test_torch_seed_rules(void **state) {
    (void)state;
    cJSON *m = load_manifest();
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(m, "seed_rules"), *r;
    int n = 0;
    cJSON_ArrayForEach(r, rules) {
        const char *seed = r->string, *rule = r->valuestring;
        for (int k = CDF_RNG_TORCH_CPU; k <= CDF_RNG_TORCH_CPU_AVX2; k++) {
            cdf_seed_info info;
            cdf_error err = {0};
            cdf_status st = cdf_rng_seed_info((cdf_rng_kind)k, seed, &info, &err);
            cdf_generator *g = NULL;
            cdf_status st2 = cdf_generator_new((cdf_rng_kind)k, seed, &g, &err);
            if (!strncmp(rule, "accepted", 8)) {
                uint64_t init = 0, low = 0;
                const char *a = strstr(rule, "initial_seed()="), *b = strstr(rule, "seeded with ");
                assert_non_null(a);
                assert_non_null(b);
                init = strtoull(a + 15, NULL, 10);
                low = strtoull(b + 12, NULL, 10);
                assert_int_equal(st, CDF_OK);
                assert_int_equal(st2, CDF_OK);
                assert_true(info.initial_seed == init);
                assert_true(info.used_seed == low);
                assert_int_equal(info.reduced, init != low);
                cdf_torch_cpu_state ts;
                assert_int_equal(cdf_generator_get_torch_cpu_state(g, &ts, &err), CDF_OK);
                assert_true(ts.initial_seed == init);
                assert_int_equal(ts.mt[0], (uint32_t)low);
                cdf_generator_free(g);
            } else {
                assert_non_null(strstr(rule, "Overflow"));
                assert_int_equal(st, CDF_ERR_ARG);
                assert_int_equal(st2, CDF_ERR_ARG);
                assert_null(g);
                assert_non_null(strstr(err.msg, seed));
            }
            n++;
        }
    }
    tu_expect_ran("torch_rng seed_rules (x2 kinds)", n, 14);
    cJSON_Delete(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_manifest_files),
        cmocka_unit_test(test_torch_seed_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
