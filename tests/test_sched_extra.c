/* DDPM/DDIM schedulers against reference vectors made with the real diffusers
 * 0.32.2 schedulers on torch (tests/data/sched_extra, written by its gen.py):
 * torch float32 linspace, other beta schedules, timesteps of every spacing,
 * single steps for thresholding / variance types / prediction types / eta,
 * and config parsing + from_config conversion with unknown keys. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "io/json.h"
#include "schedulers/sched_internal.h"

static cJSON *g_manifest;

/* How many entries each list of sched_extra/manifest.json holds: every loop
 * checks it ran exactly that often, so an emptied or truncated manifest (or a
 * renamed key the loop then finds empty) fails instead of passing. */
enum {
    N_LINSPACE = 10,
    N_SCHEDULES = 6,
    N_TIMESTEPS = 352,
    N_TIMESTEPS_TRAILING = 6, /* lists with n+1 entries */
    N_STEP_CASES = 11,
    N_STEPS = 33, /* single steps over those cases */
    N_THRESHOLDS = 12,
    N_CONFIGS = 4,
};

static int setup(void **state) {
    (void)state;
    cdf_error err = {0};
    if (cdf_json_load(tu_data("sched_extra/manifest.json"), &g_manifest, &err) != CDF_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    cJSON_Delete(g_manifest);
    return 0;
}

static float *load_f32(const cJSON *desc, size_t *count) {
    *count = (size_t)cJSON_GetObjectItem(desc, "count")->valuedouble;
    float *p = tu_load_bin(tu_data("sched_extra/%s", cJSON_GetObjectItem(desc, "file")->valuestring), *count, 4);
    assert_non_null(p);
    return p;
}

/* Number of positions where a and b differ (NaN equals NaN); *maxrel: max relative difference. */
static size_t count_diff(const float *a, const float *b, size_t n, double *maxabs) {
    size_t d = 0;
    *maxabs = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) && isnan(b[i])) continue;
        if (memcmp(&a[i], &b[i], 4) != 0) {
            d++;
            double e = fabs((double)a[i] - (double)b[i]);
            if (!(e <= *maxabs)) *maxabs = e;
        }
    }
    return d;
}

static void parse_obj(const cJSON *obj, cdf_sched_config *cfg) {
    cdf_error err = {0};
    if (cdf_sched_config_parse(obj, "manifest", cfg, &err) != CDF_OK) fail_msg("%s", err.msg);
}

/* config object + _class_name -> parsed config */
static void parse_with_class(const cJSON *config, const char *cls, cdf_sched_config *cfg) {
    cJSON *obj = cJSON_Duplicate(config, 1);
    cJSON_AddStringToObject(obj, "_class_name", cls);
    parse_obj(obj, cfg);
    cJSON_Delete(obj);
}

static void test_linspace(void **state) {
    (void)state;
    const cJSON *it;
    int n = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(g_manifest, "linspace")) {
        size_t cnt;
        float *want = load_f32(it, &cnt);
        int64_t steps = (int64_t)cJSON_GetObjectItem(it, "steps")->valuedouble;
        assert_int_equal(cnt, (size_t)steps);
        float *got = malloc(cnt * 4);
        cdf_sched_linspace_f32((float)cJSON_GetObjectItem(it, "start")->valuedouble,
                               (float)cJSON_GetObjectItem(it, "end")->valuedouble, steps, got);
        assert_memory_equal(got, want, cnt * 4);
        free(got);
        free(want);
        n++;
    }
    assert_int_equal(n, N_LINSPACE);
}

static void test_schedules(void **state) {
    (void)state;
    const cJSON *it;
    int n = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(g_manifest, "schedules")) {
        const char *cls = cJSON_GetObjectItem(it, "class")->valuestring;
        const cJSON *config = cJSON_GetObjectItem(it, "config");
        cdf_sched_config cfg;
        parse_with_class(config, cls, &cfg);
        cdf_scheduler *s = NULL;
        cdf_error err = {0};
        assert_int_equal(cdf_scheduler_new(&cfg, &s, &err), CDF_OK);
        size_t nb, na;
        float *betas = load_f32(cJSON_GetObjectItem(it, "betas"), &nb);
        float *ac = load_f32(cJSON_GetObjectItem(it, "alphas_cumprod"), &na);
        assert_int_equal(nb, (size_t)cfg.num_train_timesteps);
        double eb, ea;
        size_t db = count_diff(cdf_scheduler_betas(s), betas, nb, &eb);
        size_t da = count_diff(cdf_scheduler_alphas_cumprod(s), ac, na, &ea);
        char *js = cdf_sched_config_to_json(&cfg);
        printf("  %s: betas %zu/%zu differ (max %.3g), alphas_cumprod %zu/%zu (max %.3g)\n", js, db, nb, eb, da, na,
               ea);
        cdf_free(js);
        /* sigmoid included: torch.sigmoid's SLEEF expf is reproduced (sched_fmath) */
        assert_int_equal(db, 0);
        assert_int_equal(da, 0);
        free(betas);
        free(ac);
        cdf_scheduler_free(s);
        cdf_sched_config_free(&cfg);
        n++;
    }
    assert_int_equal(n, N_SCHEDULES);
}

static void test_timesteps(void **state) {
    (void)state;
    const cJSON *it;
    int n_cases = 0, n_extra = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(g_manifest, "timesteps")) {
        const char *cls = cJSON_GetObjectItem(it, "class")->valuestring;
        cdf_sched_config cfg;
        cdf_sched_config_defaults(&cfg, strcmp(cls, "DDIMScheduler") == 0 ? CDF_SCHED_DDIM : CDF_SCHED_DDPM);
        cfg.num_train_timesteps = cJSON_GetObjectItem(it, "num_train_timesteps")->valueint;
        cfg.steps_offset = cJSON_GetObjectItem(it, "steps_offset")->valueint;
        snprintf(cfg.timestep_spacing, sizeof cfg.timestep_spacing, "%s",
                 cJSON_GetObjectItem(it, "timestep_spacing")->valuestring);
        int n = cJSON_GetObjectItem(it, "n")->valueint;
        cdf_scheduler *s = NULL;
        cdf_error err = {0};
        assert_int_equal(cdf_scheduler_new(&cfg, &s, &err), CDF_OK);
        if (cdf_scheduler_set_timesteps(s, n, &err) != CDF_OK) fail_msg("%s", err.msg);
        const cJSON *ts = cJSON_GetObjectItem(it, "timesteps");
        int len = cJSON_GetArraySize(ts);
        if (cdf_scheduler_num_timesteps(s) != len)
            fail_msg("%s T=%d n=%d %s: %d timesteps, want %d", cls, cfg.num_train_timesteps, n, cfg.timestep_spacing,
                     cdf_scheduler_num_timesteps(s), len);
        for (int i = 0; i < len; i++)
            if (cdf_scheduler_timestep(s, i) != (int64_t)cJSON_GetArrayItem(ts, i)->valuedouble)
                fail_msg("%s T=%d n=%d %s offset %d: timestep %d is %lld", cls, cfg.num_train_timesteps, n,
                         cfg.timestep_spacing, cfg.steps_offset, i, (long long)cdf_scheduler_timestep(s, i));
        n_extra += len != n;
        n_cases++;
        cdf_scheduler_free(s);
        cdf_sched_config_free(&cfg);
    }
    printf("  %d timestep lists, %d with n+1 entries (trailing)\n", n_cases, n_extra);
    assert_int_equal(n_cases, N_TIMESTEPS);
    assert_int_equal(n_extra, N_TIMESTEPS_TRAILING);
}

static void test_steps(void **state) {
    (void)state;
    const cJSON *c;
    int n_steps = 0, n_cases = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(g_manifest, "steps")) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        cdf_sched_config cfg;
        parse_with_class(cJSON_GetObjectItem(c, "config"), cJSON_GetObjectItem(c, "class")->valuestring, &cfg);
        cdf_scheduler *s = NULL;
        cdf_error err = {0};
        assert_int_equal(cdf_scheduler_new(&cfg, &s, &err), CDF_OK);
        assert_int_equal(cdf_scheduler_set_timesteps(s, cJSON_GetObjectItem(c, "num_inference_steps")->valueint, &err),
                         CDF_OK);
        const cJSON *ts = cJSON_GetObjectItem(c, "timesteps");
        assert_int_equal(cdf_scheduler_num_timesteps(s), cJSON_GetArraySize(ts));
        int B = cJSON_GetObjectItem(c, "batch")->valueint, C = cJSON_GetObjectItem(c, "channels")->valueint;
        int MC = cJSON_GetObjectItem(c, "model_channels")->valueint;
        int64_t sp = cJSON_GetObjectItem(c, "spatial")->valueint;
        const cJSON *uc = cJSON_GetObjectItem(c, "use_clipped_model_output");
        cdf_sched_step_opts o = {cJSON_GetObjectItem(c, "eta")->valuedouble,
                                 cJSON_IsNull(uc) ? -1 : cJSON_IsTrue(uc) ? 1 : 0};
        /* torch's SLEEF exp/log are reproduced: every path must be bit-exact */
        const cJSON *st;
        cJSON_ArrayForEach(st, cJSON_GetObjectItem(c, "steps")) {
            int i = cJSON_GetObjectItem(st, "index")->valueint;
            assert_true(cdf_scheduler_timestep(s, i) == (int64_t)cJSON_GetObjectItem(st, "timestep")->valuedouble);
            int needs = cJSON_IsTrue(cJSON_GetObjectItem(st, "needs_noise"));
            assert_int_equal(cdf_scheduler_step_needs_noise(s, i, &o), needs);
            size_t ns, nm, np, nz = 0;
            float *x = load_f32(cJSON_GetObjectItem(st, "sample"), &ns);
            float *m = load_f32(cJSON_GetObjectItem(st, "model_output"), &nm);
            float *want = load_f32(cJSON_GetObjectItem(st, "prev_sample"), &np);
            float *z = needs ? load_f32(cJSON_GetObjectItem(st, "noise"), &nz) : NULL;
            assert_int_equal(ns, (size_t)B * C * sp);
            assert_int_equal(nm, (size_t)B * MC * sp);
            float *got = malloc(ns * 4);
            memcpy(got, x, ns * 4);
            if (cdf_scheduler_step(s, i, m, MC, got, B, C, sp, z, &o, &err) != CDF_OK) fail_msg("%s", err.msg);
            double e;
            size_t d = count_diff(got, want, ns, &e);
            printf("  %-34s step %2d (t=%4lld): %3zu/%zu differ, max %.3g\n", name, i,
                   (long long)cdf_scheduler_timestep(s, i), d, ns, e);
            assert_int_equal(d, 0);
            /* batch invariance */
            for (int b = 0; b < B; b++) {
                size_t one = (size_t)C * sp;
                float *solo = malloc(one * 4);
                memcpy(solo, x + b * one, one * 4);
                assert_int_equal(cdf_scheduler_step(s, i, m + (size_t)b * MC * sp, MC, solo, 1, C, sp,
                                                    z ? z + b * one : NULL, &o, &err),
                                 CDF_OK);
                assert_memory_equal(solo, got + b * one, one * 4);
                free(solo);
            }
            free(got);
            free(x);
            free(m);
            free(want);
            free(z);
            n_steps++;
        }
        cdf_scheduler_free(s);
        cdf_sched_config_free(&cfg);
        n_cases++;
    }
    assert_int_equal(n_cases, N_STEP_CASES);
    assert_int_equal(n_steps, N_STEPS);
}

static void test_thresholds(void **state) {
    (void)state;
    const cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(g_manifest, "thresholds")) {
        int64_t n = cJSON_GetObjectItem(it, "n")->valueint;
        int rows = cJSON_GetObjectItem(it, "rows")->valueint;
        double ratio = cJSON_GetObjectItem(it, "ratio")->valuedouble;
        double smv = cJSON_GetObjectItem(it, "sample_max_value")->valuedouble;
        size_t ni, no;
        float *x = load_f32(cJSON_GetObjectItem(it, "input"), &ni);
        float *want = load_f32(cJSON_GetObjectItem(it, "output"), &no);
        assert_int_equal(ni, (size_t)rows * n);
        float *scratch = malloc((size_t)n * 4);
        for (int r = 0; r < rows; r++) cdf_sched_threshold(x + r * n, n, ratio, smv, scratch);
        double e;
        size_t d = count_diff(x, want, ni, &e);
        if (d) fail_msg("threshold case %d (n %lld, ratio %g): %zu values differ, max %.3g", k, (long long)n, ratio, d, e);
        free(scratch);
        free(x);
        free(want);
        k++;
    }
    assert_int_equal(k, N_THRESHOLDS);
}

static void count_notice(cdf_notice_level level, const char *msg, void *user) {
    (void)level;
    (void)msg;
    (*(int *)user)++;
}

static void assert_config_equals(const cdf_sched_config *cfg, const cJSON *want, const char *what) {
    char *js = cdf_sched_config_to_json(cfg);
    assert_non_null(js);
    cJSON *got = cJSON_Parse(js);
    assert_non_null(got);
    const cJSON *it;
    cJSON_ArrayForEach(it, want) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, it->string);
        if (!g || !cJSON_Compare(it, g, 1)) fail_msg("%s: key '%s' differs in %s", what, it->string, js);
    }
    cJSON_ArrayForEach(it, got) {
        if (strcmp(it->string, "_class_name") != 0 && !cJSON_GetObjectItemCaseSensitive(want, it->string))
            fail_msg("%s: extra key '%s' in %s", what, it->string, js);
    }
    cJSON_Delete(got);
    cdf_free(js);
}

static void test_configs(void **state) {
    (void)state;
    const cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(g_manifest, "configs")) {
        int notices = 0;
        cdf_error err = {0};
        err.on_notice = count_notice;
        err.notice_user = &notices;
        cdf_sched_config cfg;
        if (cdf_sched_config_parse(cJSON_GetObjectItem(c, "input"), "input", &cfg, &err) != CDF_OK)
            fail_msg("%s", err.msg);
        /* diffusers warns only about keys no compatible scheduler knows: "foo", "unknown_key" */
        assert_int_equal(notices, (k == 0 || k == 3) ? 1 : 0);
        assert_config_equals(&cfg, cJSON_GetObjectItem(c, "parsed"), "parsed");
        const char *to = cJSON_GetObjectItem(c, "converted_class")->valuestring;
        cdf_sched_config copy;
        assert_int_equal(cdf_sched_config_copy(&copy, &cfg, &err), CDF_OK);
        assert_int_equal(cdf_sched_config_convert(&cfg, strcmp(to, "DDIMScheduler") == 0 ? CDF_SCHED_DDIM : CDF_SCHED_DDPM,
                                                  &err),
                         CDF_OK);
        assert_string_equal(cdf_sched_kind_name(cfg.kind), to);
        assert_config_equals(&cfg, cJSON_GetObjectItem(c, "converted"), "converted");
        /* the copy is independent of the converted original */
        assert_config_equals(&copy, cJSON_GetObjectItem(c, "parsed"), "copy");
        cdf_sched_config_free(&copy);
        cdf_sched_config_free(&cfg);
        k++;
    }
    assert_int_equal(k, N_CONFIGS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linspace), cmocka_unit_test(test_schedules), cmocka_unit_test(test_timesteps),
        cmocka_unit_test(test_steps),    cmocka_unit_test(test_thresholds), cmocka_unit_test(test_configs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
