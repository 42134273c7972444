/* DDPM/DDIM schedulers against the golden pipeline cases (tests/data/ddpm):
 * config parse + DDIMPipeline conversion vs effective_scheduler, timesteps,
 * the float32 linear schedule tables, the first step of every case computed
 * from the golden noise / unet_out0 / step_noise0, and batch invariance. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "sd_case.h"
#include "io/json.h"
#include "schedulers/scheduler.h"

#define MAX_CASES 64

static int list_cases(char names[][256]) { return case_names_in("ddpm", names, MAX_CASES); }

static cJSON *load_json(const char *path) {
    cJSON *root = NULL;
    cdf_error err = {0};
    if (cdf_json_load(path, &root, &err) != CDF_OK) fail_msg("%s", err.msg);
    return root;
}

static const char *case_model_name(const cJSON *c) {
    const char *model = cJSON_GetObjectItem(c, "model")->valuestring;
    const char *slash = strrchr(model, '/');
    return slash ? slash + 1 : model;
}

/* Parses the model folder's scheduler_config.json, converting to DDIM for DDIMPipeline. */
static void model_config(const cJSON *c, cdf_sched_config *cfg) {
    const char *model = case_model_name(c);
    char path[1024];
    if (strcmp(model, "cifar10-full") == 0)
        snprintf(path, sizeof path, "%s", tu_data("ddpm/cifar10-full/scheduler/scheduler_config.json"));
    else
        snprintf(path, sizeof path, "%s", tu_data("ddpm/models/%s/scheduler/scheduler_config.json", model));
    cJSON *root = load_json(path);
    cdf_error err = {0};
    if (cdf_sched_config_parse(root, path, cfg, &err) != CDF_OK) fail_msg("%s", err.msg);
    cJSON_Delete(root);
    assert_int_equal(cfg->kind, CDF_SCHED_DDPM);
    if (strcmp(cJSON_GetObjectItem(c, "pipeline")->valuestring, "DDIMPipeline") == 0) {
        if (cdf_sched_config_convert(cfg, CDF_SCHED_DDIM, &err) != CDF_OK) fail_msg("%s", err.msg);
    }
}

/* Parses effective_scheduler.config with _class_name set to its class. */
static void effective_config(const cJSON *c, cdf_sched_config *cfg) {
    const cJSON *eff = cJSON_GetObjectItem(c, "effective_scheduler");
    cJSON *obj = cJSON_Duplicate(cJSON_GetObjectItem(eff, "config"), 1);
    cJSON_AddStringToObject(obj, "_class_name", cJSON_GetObjectItem(eff, "class")->valuestring);
    cdf_error err = {0};
    if (cdf_sched_config_parse(obj, "effective_scheduler", cfg, &err) != CDF_OK) fail_msg("%s", err.msg);
    cJSON_Delete(obj);
}

/* Every key of `want` equals the same key of the config's canonical JSON and vice versa. */
static void assert_config_equals(const cdf_sched_config *cfg, const cJSON *want, const char *cls, const char *what) {
    char *js = cdf_sched_config_to_json(cfg);
    assert_non_null(js);
    cJSON *got = cJSON_Parse(js);
    assert_non_null(got);
    assert_string_equal(cJSON_GetObjectItem(got, "_class_name")->valuestring, cls);
    const cJSON *it;
    cJSON_ArrayForEach(it, want) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, it->string);
        if (!g) fail_msg("%s: key '%s' missing from %s", what, it->string, js);
        if (!cJSON_Compare(it, g, 1)) fail_msg("%s: key '%s' differs in %s", what, it->string, js);
        if (cJSON_IsNumber(it) && it->valuedouble != g->valuedouble)
            fail_msg("%s: key '%s' %.17g != %.17g", what, it->string, it->valuedouble, g->valuedouble);
    }
    cJSON_ArrayForEach(it, got) {
        if (strcmp(it->string, "_class_name") == 0) continue;
        if (!cJSON_GetObjectItemCaseSensitive(want, it->string))
            fail_msg("%s: extra key '%s' in %s", what, it->string, js);
    }
    cJSON_Delete(got);
    cdf_free(js);
}

static int call_int(const cJSON *c, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "call"), key);
    return v && cJSON_IsNumber(v) ? (int)v->valuedouble : def;
}

static double call_double(const cJSON *c, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "call"), key);
    return v && cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* num_inference_steps default of the pipeline: DDIMPipeline 50, DDPMPipeline 1000. */
static int pipeline_default_steps(const cJSON *c) {
    return strcmp(cJSON_GetObjectItem(c, "pipeline")->valuestring, "DDIMPipeline") == 0 ? 50 : 1000;
}

static cdf_scheduler *make_sched(const cdf_sched_config *cfg, int steps) {
    cdf_scheduler *s = NULL;
    cdf_error err = {0};
    if (cdf_scheduler_new(cfg, &s, &err) != CDF_OK) fail_msg("%s", err.msg);
    if (cdf_scheduler_set_timesteps(s, steps, &err) != CDF_OK) fail_msg("%s", err.msg);
    return s;
}

static void assert_timesteps(const cdf_scheduler *s, const cJSON *c, const char *what) {
    const cJSON *ts = cJSON_GetObjectItem(c, "timesteps");
    int n = cJSON_GetArraySize(ts);
    assert_int_equal(cdf_scheduler_num_timesteps(s), n);
    for (int i = 0; i < n; i++) {
        int64_t want = (int64_t)cJSON_GetArrayItem(ts, i)->valuedouble;
        if (cdf_scheduler_timestep(s, i) != want)
            fail_msg("%s: timestep %d is %lld, want %lld", what, i, (long long)cdf_scheduler_timestep(s, i),
                     (long long)want);
    }
    assert_true(cdf_scheduler_timestep(s, n) == INT64_MIN);
    assert_true(cdf_scheduler_timestep(s, -1) == INT64_MIN);
}

static void test_configs_and_timesteps(void **state) {
    (void)state;
    char names[MAX_CASES][256];
    int n = list_cases(names);
    for (int k = 0; k < n; k++) {
        cJSON *c = load_json(tu_data("ddpm/cases/%s/case.json", names[k]));
        const cJSON *eff = cJSON_GetObjectItem(c, "effective_scheduler");
        const char *cls = cJSON_GetObjectItem(eff, "class")->valuestring;
        int steps = call_int(c, "num_inference_steps", pipeline_default_steps(c));
        cdf_sched_config a, b;
        effective_config(c, &a);
        model_config(c, &b);
        assert_string_equal(cdf_sched_kind_name(a.kind), cls);
        assert_int_equal(a.kind, b.kind);
        assert_config_equals(&b, cJSON_GetObjectItem(eff, "config"), cls, names[k]);
        assert_config_equals(&a, cJSON_GetObjectItem(eff, "config"), cls, names[k]);
        cdf_scheduler *sa = make_sched(&a, steps), *sb = make_sched(&b, steps);
        assert_timesteps(sa, c, names[k]);
        assert_timesteps(sb, c, names[k]);
        assert_true(cdf_scheduler_init_noise_sigma(sa) == 1.0f);
        cdf_scheduler_free(sa);
        cdf_scheduler_free(sb);
        cdf_sched_config_free(&a);
        cdf_sched_config_free(&b);
        cJSON_Delete(c);
    }
}

static void test_linear_schedule_table(void **state) {
    (void)state;
    cJSON *js = load_json(tu_data("ddpm/schedule/schedule.json"));
    const cJSON *bj = cJSON_GetObjectItem(js, "betas"), *aj = cJSON_GetObjectItem(js, "alphas_cumprod");
    int n = (int)cJSON_GetObjectItem(bj, "count")->valuedouble;
    assert_int_equal(n, 1000);
    float *betas = tu_load_bin(tu_data("ddpm/schedule/%s", cJSON_GetObjectItem(bj, "file")->valuestring), n, 4);
    float *ac = tu_load_bin(tu_data("ddpm/schedule/%s", cJSON_GetObjectItem(aj, "file")->valuestring), n, 4);
    assert_non_null(betas);
    assert_non_null(ac);
    for (int kind = 0; kind < 2; kind++) {
        cdf_sched_config cfg;
        cdf_sched_config_defaults(&cfg, (cdf_sched_kind)kind); /* linear 1e-4..0.02, 1000 steps */
        cdf_scheduler *s = NULL;
        cdf_error err = {0};
        assert_int_equal(cdf_scheduler_new(&cfg, &s, &err), CDF_OK);
        /* bit-exact with torch's float32 linspace and double-accumulator cumprod */
        assert_memory_equal(cdf_scheduler_betas(s), betas, (size_t)n * 4);
        assert_memory_equal(cdf_scheduler_alphas_cumprod(s), ac, (size_t)n * 4);
        cdf_scheduler_free(s);
        cdf_sched_config_free(&cfg);
    }
    free(betas);
    free(ac);
    cJSON_Delete(js);
}

static float *load_case_bin(const cJSON *c, const char *name, const char *key, size_t *count) {
    const cJSON *f = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "files"), key);
    if (!f) return NULL;
    *count = (size_t)cJSON_GetObjectItem(f, "count")->valuedouble;
    float *p = tu_load_bin(tu_data("ddpm/cases/%s/%s", name, cJSON_GetObjectItem(f, "file")->valuestring), *count, 4);
    assert_non_null(p);
    return p;
}

static void test_first_step(void **state) {
    (void)state;
    char names[MAX_CASES][256];
    int n = list_cases(names);
    double worst = 0;
    for (int k = 0; k < n; k++) {
        cJSON *c = load_json(tu_data("ddpm/cases/%s/case.json", names[k]));
        cdf_sched_config cfg;
        model_config(c, &cfg);
        cdf_scheduler *s = make_sched(&cfg, call_int(c, "num_inference_steps", pipeline_default_steps(c)));
        size_t cnt = 0, cnt2 = 0, cnt3 = 0;
        float *x = load_case_bin(c, names[k], "noise", &cnt);
        float *m = load_case_bin(c, names[k], "unet_out0", &cnt2);
        float *traj = load_case_bin(c, names[k], "trajectory", &cnt3);
        size_t ncnt = 0;
        float *z = load_case_bin(c, names[k], "step_noise0", &ncnt);
        const cJSON *shape = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "files"), "noise"), "shape");
        int B = cJSON_GetArrayItem(shape, 0)->valueint, C = cJSON_GetArrayItem(shape, 1)->valueint;
        int64_t sp = (int64_t)cJSON_GetArrayItem(shape, 2)->valueint * cJSON_GetArrayItem(shape, 3)->valueint;
        assert_int_equal(cnt, (size_t)B * C * sp);
        assert_int_equal(cnt2, cnt);
        cdf_sched_step_opts o = {call_double(c, "eta", 0.0), -1};
        int needs = cdf_scheduler_step_needs_noise(s, 0, &o);
        assert_int_equal(needs, z != NULL); /* the golden run drew step noise exactly when we say so */
        if (z) assert_int_equal(ncnt, cnt);
        float *batch = malloc(cnt * 4);
        memcpy(batch, x, cnt * 4);
        cdf_error err = {0};
        if (cdf_scheduler_step(s, 0, m, C, batch, B, C, sp, z, &o, &err) != CDF_OK) fail_msg("%s", err.msg);
        double e = tu_max_abs_diff_f32(batch, traj, cnt);
        size_t ndiff = 0;
        for (size_t q = 0; q < cnt; q++) ndiff += memcmp(&batch[q], &traj[q], 4) != 0;
        printf("  %-32s first step max|err| %.3g (%zu of %zu values not bit-identical)\n", names[k], e, ndiff, cnt);
        if (e > worst) worst = e;
        assert_true(e <= 2e-6);
        assert_int_equal(ndiff, 0); /* IEEE float32 ops in torch's order: bit-exact */
        /* batch invariance: each element alone gives the same bits */
        for (int b = 0; b < B; b++) {
            size_t one = (size_t)C * sp;
            float *solo = malloc(one * 4);
            memcpy(solo, x + b * one, one * 4);
            assert_int_equal(cdf_scheduler_step(s, 0, m + b * one, C, solo, 1, C, sp, z ? z + b * one : NULL, &o, &err),
                             CDF_OK);
            assert_memory_equal(solo, batch + b * one, one * 4);
            free(solo);
        }
        free(batch);
        free(x);
        free(m);
        free(traj);
        free(z);
        cdf_scheduler_free(s);
        cdf_sched_config_free(&cfg);
        cJSON_Delete(c);
    }
    printf("  worst first-step error over the golden cases: %.3g\n", worst);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configs_and_timesteps),
        cmocka_unit_test(test_linear_schedule_table),
        cmocka_unit_test(test_first_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
