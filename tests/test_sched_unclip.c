/* UnCLIPScheduler (diffusers 0.32.2) against reference data:
 *  - the golden UnCLIP cases (tests/data/unclip/cases, discovered at run time):
 *    the timesteps of the three stages, and the decoder's first step fed the
 *    case's CFG-combined first UNet output, initial latents and step noise;
 *  - vectors of the real UnCLIPScheduler (tests/data/sched_extra/unclip, written
 *    by its gen_unclip.py): schedule tables, set_timesteps, single steps of every
 *    path, config parsing and from_config conversions;
 *  - config and argument errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sd_case.h"
#include "testutil.h"
#include "io/json.h"
#include "schedulers/sched_internal.h"

static cJSON *g_manifest; /* sched_extra/unclip/manifest.json */
static float *g_steps;    /* steps.f32.bin */
static float *g_sched;    /* schedule.f32.bin */

static const cJSON *item(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) fail_msg("manifest: key '%s' missing", key);
    return v;
}

/* A pack file named in the manifest (`section`: {"file", "count"}), malloc'd. */
static float *load_pack(const char *section) {
    const cJSON *d = item(g_manifest, section);
    return tu_load_bin(tu_data("sched_extra/unclip/%s", item(d, "file")->valuestring),
                       (size_t)item(d, "count")->valuedouble, 4);
}

static int setup(void **state) {
    (void)state;
    cdf_error err = {0};
    if (cdf_json_load(tu_data("sched_extra/unclip/manifest.json"), &g_manifest, &err) != CDF_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    g_sched = load_pack("schedule_file");
    g_steps = load_pack("steps_file");
    return g_sched && g_steps ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    cJSON_Delete(g_manifest);
    free(g_sched);
    free(g_steps);
    return 0;
}

/* Array of a pack: pointer into it, *count floats. */
static const float *packed(const float *pack, const cJSON *desc, size_t *count) {
    *count = (size_t)item(desc, "count")->valuedouble;
    return pack + (size_t)item(desc, "offset")->valuedouble;
}

/* Number of positions where a and b differ in bits (NaN equals NaN); *maxabs over them. */
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

static void parse_obj(const cJSON *obj, const char *what, cdf_sched_config *cfg) {
    cdf_error err = {0};
    if (cdf_sched_config_parse(obj, what, cfg, &err) != CDF_OK) fail_msg("%s", err.msg);
}

static void parse_unclip(const cJSON *config, cdf_sched_config *cfg) {
    cJSON *obj = cJSON_Duplicate(config, 1);
    cJSON_AddStringToObject(obj, "_class_name", "UnCLIPScheduler");
    parse_obj(obj, "manifest", cfg);
    cJSON_Delete(obj);
}

static cdf_scheduler *make(const cdf_sched_config *cfg, int n) {
    cdf_scheduler *s = NULL;
    cdf_error err = {0};
    if (cdf_scheduler_new(cfg, &s, &err) != CDF_OK) fail_msg("%s", err.msg);
    if (cdf_scheduler_set_timesteps(s, n, &err) != CDF_OK) fail_msg("%s", err.msg);
    return s;
}

/* ---- golden UnCLIP cases -------------------------------------------------- */

/* The case folder names under tests/data/unclip/cases, sorted; exits unless there are exactly as many as expected. */
static int list_cases(char names[][256], int max) { return case_names_in("unclip", names, max); }

static cJSON *load_case(const char *name) {
    cJSON *c = NULL;
    cdf_error err = {0};
    if (cdf_json_load(tu_data("unclip/cases/%s/case.json", name), &c, &err) != CDF_OK) fail_msg("%s", err.msg);
    return c;
}

static const char *const k_stages[3] = {"prior", "decoder", "super_res"};

/* Every stage's scheduler, from case.json's config and from the pipeline folder's
 * scheduler_config.json, gives case.json's timesteps. */
static void test_golden_timesteps(void **state) {
    (void)state;
    static char names[64][256];
    const int n = list_cases(names, 64);
    assert_true(n >= 5);
    for (int c = 0; c < n; c++) {
        cJSON *cj = load_case(names[c]);
        const cJSON *resolved = item(item(cj, "call"), "resolved");
        const char *pipe = item(item(cj, "call"), "pipeline")->valuestring;
        for (int st = 0; st < 3; st++) {
            char key[64], nkey[64];
            snprintf(key, sizeof key, "%s_scheduler", k_stages[st]);
            snprintf(nkey, sizeof nkey, "%s_num_inference_steps", k_stages[st]);
            const int steps = item(resolved, nkey)->valueint;
            const cJSON *want = item(item(cj, "timesteps"), k_stages[st]);
            for (int src = 0; src < 2; src++) {
                cdf_sched_config cfg;
                if (src == 0) {
                    parse_obj(item(item(cj, "scheduler_configs"), key), "case.json", &cfg);
                } else {
                    cJSON *root = NULL;
                    cdf_error err = {0};
                    const char *path = tu_data("unclip/%s/%s/scheduler_config.json", pipe, key);
                    if (cdf_json_load(path, &root, &err) != CDF_OK) fail_msg("%s", err.msg);
                    parse_obj(root, path, &cfg);
                    cJSON_Delete(root);
                }
                assert_int_equal(cfg.kind, CDF_SCHED_UNCLIP);
                cdf_scheduler *s = make(&cfg, steps);
                assert_int_equal(cdf_scheduler_num_timesteps(s), cJSON_GetArraySize(want));
                for (int i = 0; i < cdf_scheduler_num_timesteps(s); i++) {
                    assert_true(cdf_scheduler_timestep(s, i) == (int64_t)cJSON_GetArrayItem(want, i)->valuedouble);
                    assert_true(cdf_scheduler_timestep_value(s, i) == cJSON_GetArrayItem(want, i)->valuedouble);
                    assert_int_equal(cdf_scheduler_step_needs_noise(s, i, NULL), cdf_scheduler_timestep(s, i) > 0);
                }
                assert_true(cdf_scheduler_init_noise_sigma(s) == 1.0f);
                cdf_scheduler_free(s);
                cdf_sched_config_free(&cfg);
            }
        }
        printf("  %-20s timesteps of prior / decoder / super_res match\n", names[c]);
        cJSON_Delete(cj);
    }
}

static float *case_array(const char *name, const cJSON *cj, const char *array, size_t *count) {
    const cJSON *a = item(item(cj, "arrays"), array);
    size_t n = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, item(a, "shape")) n *= (size_t)d->valuedouble;
    float *p = tu_load_bin(tu_data("unclip/cases/%s/%s", name, item(a, "file")->valuestring), n, 4);
    assert_non_null(p);
    *count = n;
    return p;
}

/* Decoder step 0 of every case: model_output = CFG-combined decoder_unet0_output
 * (eps = u + g (c - u) on the first 3 channels, the variance channels of the
 * cond half), sample = decoder_latents_init, noise = decoder_noise_steps[0];
 * must give decoder_latents_steps[0]. */
static void test_golden_decoder_step(void **state) {
    (void)state;
    static char names[64][256];
    const int n = list_cases(names, 64);
    double worst = 0;
    for (int c = 0; c < n; c++) {
        cJSON *cj = load_case(names[c]);
        const cJSON *resolved = item(item(cj, "call"), "resolved");
        const int B = item(resolved, "batch_size")->valueint;
        const int cfg_on = cJSON_IsTrue(item(resolved, "do_classifier_free_guidance"));
        const float g = (float)item(resolved, "decoder_guidance_scale")->valuedouble;
        const int steps = item(resolved, "decoder_num_inference_steps")->valueint;
        size_t nu, nx, nz, ny;
        float *unet = case_array(names[c], cj, "decoder_unet0_output", &nu);
        float *x = case_array(names[c], cj, "decoder_latents_init", &nx);
        float *z = case_array(names[c], cj, "decoder_noise_steps", &nz);
        float *y = case_array(names[c], cj, "decoder_latents_steps", &ny);
        const int C = 3;
        const int64_t sp = (int64_t)(nx / ((size_t)B * C));
        assert_int_equal(nu, (size_t)(cfg_on ? 2 : 1) * B * 2 * C * sp);
        float *mo = malloc(sizeof(float) * (size_t)B * 2 * C * sp); /* [B, 2C, sp] */
        for (int b = 0; b < B; b++) {
            float *o = mo + (size_t)b * 2 * C * sp;
            if (!cfg_on) {
                memcpy(o, unet + (size_t)b * 2 * C * sp, sizeof(float) * 2 * C * sp);
                continue;
            }
            const float *u = unet + (size_t)b * 2 * C * sp, *t = unet + (size_t)(B + b) * 2 * C * sp;
            for (int64_t k = 0; k < C * sp; k++) {
                float d = t[k] - u[k];
                d = g * d;
                o[k] = u[k] + d;
            }
            memcpy(o + C * sp, t + C * sp, sizeof(float) * C * sp);
        }
        cdf_sched_config cfg;
        parse_obj(item(item(cj, "scheduler_configs"), "decoder_scheduler"), "case.json", &cfg);
        cdf_scheduler *s = make(&cfg, steps);
        assert_true(cdf_scheduler_step_needs_noise(s, 0, NULL));
        cdf_error err = {0};
        if (cdf_scheduler_step(s, 0, mo, 2 * C, x, B, C, sp, z, NULL, &err) != CDF_OK) fail_msg("%s", err.msg);
        double e;
        size_t d = count_diff(x, y, nx, &e); /* y's first block is step 0 */
        printf("  %-20s decoder step 0 (t=%lld, B=%d, cfg %d): %zu/%zu elements differ, max |err| %.3g\n", names[c],
               (long long)cdf_scheduler_timestep(s, 0), B, cfg_on, d, nx, e);
        if (e > worst) worst = e;
        /* identical float32 inputs and torch's operation order: bit-exact */
        assert_int_equal(d, 0);
        cdf_scheduler_free(s);
        cdf_sched_config_free(&cfg);
        free(mo);
        free(unet);
        free(x);
        free(z);
        free(y);
        cJSON_Delete(cj);
    }
    printf("  worst max |err| %.3g\n", worst);
}

/* ---- reference vectors ------------------------------------------------------- */

static void test_extra_schedules(void **state) {
    (void)state;
    const cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, item(g_manifest, "schedules")) {
        cdf_sched_config cfg;
        cdf_sched_config_defaults(&cfg, CDF_SCHED_UNCLIP);
        cfg.num_train_timesteps = item(it, "num_train_timesteps")->valueint;
        cdf_scheduler *s = NULL;
        cdf_error err = {0};
        assert_int_equal(cdf_scheduler_new(&cfg, &s, &err), CDF_OK);
        size_t nb, na;
        const float *betas = packed(g_sched, item(it, "betas"), &nb);
        const float *ac = packed(g_sched, item(it, "alphas_cumprod"), &na);
        assert_int_equal(nb, (size_t)cfg.num_train_timesteps);
        double eb, ea;
        size_t db = count_diff(cdf_scheduler_betas(s), betas, nb, &eb);
        size_t da = count_diff(cdf_scheduler_alphas_cumprod(s), ac, na, &ea);
        printf("  T=%d: betas %zu/%zu differ, alphas_cumprod %zu/%zu\n", cfg.num_train_timesteps, db, nb, da, na);
        assert_int_equal(db, 0);
        assert_int_equal(da, 0);
        cdf_scheduler_free(s);
        k++;
    }
    assert_int_equal(k, 3);
}

static void test_extra_timesteps(void **state) {
    (void)state;
    const cJSON *it;
    int k = 0, repeats = 0;
    cJSON_ArrayForEach(it, item(g_manifest, "timesteps")) {
        cdf_sched_config cfg;
        cdf_sched_config_defaults(&cfg, CDF_SCHED_UNCLIP);
        cfg.num_train_timesteps = item(it, "num_train_timesteps")->valueint;
        const int n = item(it, "n")->valueint;
        cdf_scheduler *s = make(&cfg, n);
        const cJSON *ts = item(it, "timesteps");
        assert_int_equal(cdf_scheduler_num_timesteps(s), cJSON_GetArraySize(ts));
        for (int i = 0; i < n; i++)
            if (cdf_scheduler_timestep(s, i) != (int64_t)cJSON_GetArrayItem(ts, i)->valuedouble)
                fail_msg("T=%d n=%d: timestep %d is %lld, want %lld", cfg.num_train_timesteps, n, i,
                         (long long)cdf_scheduler_timestep(s, i), (long long)cJSON_GetArrayItem(ts, i)->valuedouble);
        repeats += n > cfg.num_train_timesteps;
        cdf_scheduler_free(s);
        k++;
    }
    printf("  %d timestep lists (%d with n > T)\n", k, repeats);
    assert_true(k >= 60 && repeats >= 5);
}

static void test_extra_steps(void **state) {
    (void)state;
    const cJSON *c;
    int n_steps = 0, n_noise = 0;
    cJSON_ArrayForEach(c, item(g_manifest, "steps")) {
        const char *name = item(c, "name")->valuestring;
        cdf_sched_config cfg;
        parse_unclip(item(c, "config"), &cfg);
        cdf_scheduler *s = make(&cfg, item(c, "num_inference_steps")->valueint);
        const int B = item(c, "batch")->valueint, C = item(c, "channels")->valueint;
        const int MC = item(c, "model_channels")->valueint;
        const int64_t sp = item(c, "spatial")->valueint;
        cdf_scheduler_set_prev_timestep_none(s, cJSON_IsTrue(item(c, "prev_timestep_none")));
        cdf_sched_step_opts o = {0.0, -1};
        cdf_error err = {0};
        const cJSON *st;
        cJSON_ArrayForEach(st, item(c, "steps")) {
            const int i = item(st, "index")->valueint;
            assert_true(cdf_scheduler_timestep(s, i) == (int64_t)item(st, "timestep")->valuedouble);
            const int needs = cJSON_IsTrue(item(st, "needs_noise"));
            assert_int_equal(cdf_scheduler_step_needs_noise(s, i, &o), needs);
            size_t ns, nm, np, nz = 0;
            const float *x = packed(g_steps, item(st, "sample"), &ns);
            const float *m = packed(g_steps, item(st, "model_output"), &nm);
            const float *want = packed(g_steps, item(st, "prev_sample"), &np);
            const float *z = needs ? packed(g_steps, item(st, "noise"), &nz) : NULL;
            assert_int_equal(ns, (size_t)B * C * sp);
            assert_int_equal(nm, (size_t)B * MC * sp);
            assert_int_equal(np, ns);
            float *got = malloc(ns * 4);
            memcpy(got, x, ns * 4);
            if (cdf_scheduler_step(s, i, m, MC, got, B, C, sp, z, &o, &err) != CDF_OK) fail_msg("%s", err.msg);
            double e;
            size_t d = count_diff(got, want, ns, &e);
            const cJSON *pt = item(st, "prev_timestep");
            printf("  %-26s step %3d (t=%3lld, prev %4s): %zu/%zu differ, max %.3g\n", name, i,
                   (long long)cdf_scheduler_timestep(s, i), cJSON_IsNull(pt) ? "None" : "", d, ns, e);
            /* torch's float32 order and SLEEF log/exp are reproduced: bit-exact */
            assert_int_equal(d, 0);
            for (int b = 0; b < B; b++) { /* batch invariance */
                const size_t one = (size_t)C * sp;
                float *solo = malloc(one * 4);
                memcpy(solo, x + b * one, one * 4);
                assert_int_equal(cdf_scheduler_step(s, i, m + (size_t)b * MC * sp, MC, solo, 1, C, sp,
                                                    z ? z + b * one : NULL, &o, &err),
                                 CDF_OK);
                assert_memory_equal(solo, got + b * one, one * 4);
                free(solo);
            }
            free(got);
            n_steps++;
            n_noise += needs;
        }
        cdf_scheduler_free(s);
        cdf_sched_config_free(&cfg);
    }
    printf("  %d steps (%d with noise)\n", n_steps, n_noise);
    assert_true(n_steps >= 60 && n_noise >= 40);
}

static void count_notice(cdf_notice_level level, const char *msg, void *user) {
    (void)level;
    (void)msg;
    (*(int *)user)++;
}

/* The canonical JSON of cfg equals the public config `want` key for key. */
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
    /* JSON round trip: the printed config parses back to the same JSON */
    cdf_sched_config back;
    parse_obj(got, "printed", &back);
    char *js2 = cdf_sched_config_to_json(&back);
    assert_string_equal(js, js2);
    cdf_free(js2);
    cdf_sched_config_free(&back);
    cJSON_Delete(got);
    cdf_free(js);
}

static void test_extra_configs(void **state) {
    (void)state;
    const cJSON *c;
    int k = 0, n_err = 0;
    cJSON_ArrayForEach(c, item(g_manifest, "configs")) {
        int notices = 0;
        cdf_error err = {0};
        err.on_notice = count_notice;
        err.notice_user = &notices;
        cdf_sched_config cfg;
        if (cdf_sched_config_parse(item(c, "input"), "input", &cfg, &err) != CDF_OK) fail_msg("%s", err.msg);
        /* UnCLIPScheduler has no compatibles: diffusers warns once, naming every foreign key */
        assert_int_equal(notices > 0, item(c, "warnings")->valueint > 0);
        assert_config_equals(&cfg, item(c, "parsed"), "parsed");
        cdf_sched_kind to;
        assert_int_equal(cdf_sched_kind_from_name(item(c, "converted_class")->valuestring, &to, &err), CDF_OK);
        const cJSON *want_err = cJSON_GetObjectItem(c, "error");
        cdf_status st = cdf_sched_config_convert(&cfg, to, &err);
        if (want_err) {
            /* diffusers raises in __init__ (beta_schedule) or at the first step (variance / prediction type) */
            printf("  %s -> %s: %s\n    (diffusers: %s)\n", cdf_sched_kind_name(cfg.kind), cdf_sched_kind_name(to),
                   err.msg, want_err->valuestring);
            assert_int_equal(st, CDF_ERR_CONFIG);
            const char *field = strstr(want_err->valuestring, "beta_schedule")     ? "'beta_schedule'"
                                : strstr(want_err->valuestring, "variance_type")   ? "'variance_type'"
                                                                                  : "'prediction_type'";
            assert_non_null(strstr(err.msg, field));
            n_err++;
        } else {
            if (st != CDF_OK) fail_msg("%s", err.msg);
            assert_int_equal(cfg.kind, to);
            assert_config_equals(&cfg, item(c, "converted"), "converted");
        }
        cdf_sched_config_free(&cfg);
        k++;
    }
    assert_int_equal(k, 8);
    assert_int_equal(n_err, 3);
}

/* ---- errors -------------------------------------------------------------------- */

static cdf_status parse_text(const char *json, cdf_sched_config *cfg, cdf_error *err) {
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    cdf_status s = cdf_sched_config_parse(root, "scheduler_config.json", cfg, err);
    cJSON_Delete(root);
    return s;
}

static void expect_config_error(const char *json, const char *field) {
    cdf_sched_config cfg;
    cdf_error err = {0};
    assert_int_equal(parse_text(json, &cfg, &err), CDF_ERR_CONFIG);
    printf("  %s\n", err.msg);
    assert_non_null(strstr(err.msg, field));
    assert_non_null(strstr(err.msg, "scheduler_config.json"));
}

static void test_config_errors(void **state) {
    (void)state;
    expect_config_error("{\"_class_name\": \"UnCLIPScheduler\", \"variance_type\": \"fixed_small\"}", "'variance_type'");
    expect_config_error("{\"_class_name\": \"UnCLIPScheduler\", \"variance_type\": \"learned\"}", "'variance_type'");
    expect_config_error("{\"_class_name\": \"UnCLIPScheduler\", \"variance_type\": null}", "'variance_type'");
    expect_config_error("{\"_class_name\": \"UnCLIPScheduler\", \"beta_schedule\": \"linear\"}", "'beta_schedule'");
    expect_config_error("{\"_class_name\": \"UnCLIPScheduler\", \"beta_schedule\": \"scaled_linear\", "
                        "\"trained_betas\": [0.1, 0.2]}",
                        "'beta_schedule'");
    expect_config_error("{\"_class_name\": \"UnCLIPScheduler\", \"prediction_type\": \"v_prediction\"}",
                        "'prediction_type'");
    expect_config_error("{\"_class_name\": \"UnCLIPScheduler\", \"num_train_timesteps\": 0}", "'num_train_timesteps'");
    expect_config_error("{\"_class_name\": \"UnCLIPScheduler\", \"clip_sample_range\": \"big\"}", "'clip_sample_range'");
    /* overrides are checked too */
    cdf_sched_config cfg;
    cdf_error err = {0};
    cdf_sched_config_defaults(&cfg, CDF_SCHED_UNCLIP);
    assert_int_equal(cdf_sched_config_set(&cfg, "variance_type", "\"fixed_large\"", &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "'variance_type'"));
    assert_int_equal(cdf_sched_config_set(&cfg, "beta_start", "0.1", &err), CDF_ERR_ARG); /* not a parameter */
    assert_int_equal(cdf_sched_config_set(&cfg, "variance_type", "\"learned_range\"", &err), CDF_OK);
    /* the class name round trip; no short name */
    cdf_sched_kind k;
    assert_int_equal(cdf_sched_kind_from_name("UnCLIPScheduler", &k, &err), CDF_OK);
    assert_int_equal(k, CDF_SCHED_UNCLIP);
    assert_string_equal(cdf_sched_kind_name(CDF_SCHED_UNCLIP), "UnCLIPScheduler");
    /* trained_betas is a hidden key of UnCLIP: its length is not checked and the cosine schedule is used */
    cdf_sched_config tb;
    assert_int_equal(parse_text("{\"_class_name\": \"UnCLIPScheduler\", \"trained_betas\": [0.5, 0.5]}", &tb, &err),
                     CDF_OK);
    cdf_scheduler *s = make(&tb, 5);
    assert_true(cdf_scheduler_betas(s)[0] > 0.0f && cdf_scheduler_betas(s)[0] < 1e-4f);
    cdf_scheduler_free(s);
    cdf_sched_config_free(&tb);
    cdf_sched_config_free(&cfg);
}

static void test_argument_errors(void **state) {
    (void)state;
    cdf_sched_config cfg;
    cdf_sched_config_defaults(&cfg, CDF_SCHED_UNCLIP);
    strcpy(cfg.variance_type, "learned_range");
    cdf_scheduler *s = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_scheduler_new(&cfg, &s, &err), CDF_OK);
    /* n = 1 divides by zero in diffusers */
    const int bad[] = {1, 0, -3};
    for (int j = 0; j < 3; j++) {
        assert_int_equal(cdf_scheduler_set_timesteps(s, bad[j], &err), CDF_ERR_ARG);
        assert_non_null(strstr(err.msg, "num_inference_steps"));
        assert_int_equal(cdf_scheduler_num_timesteps(s), 0);
    }
    printf("  %s\n", err.msg);
    float x[2 * 3 * 4] = {0}, m[2 * 6 * 4] = {0}, z[2 * 3 * 4] = {0};
    assert_int_equal(cdf_scheduler_step(s, 0, m, 6, x, 2, 3, 4, z, NULL, &err), CDF_ERR_ARG); /* no set_timesteps */
    assert_int_equal(cdf_scheduler_set_timesteps(s, 3, &err), CDF_OK);
    assert_int_equal(cdf_scheduler_step(s, 0, m, 6, x, 2, 3, 4, NULL, NULL, &err), CDF_ERR_ARG); /* noise missing */
    assert_int_equal(cdf_scheduler_step(s, 0, m, 5, x, 2, 3, 4, z, NULL, &err), CDF_ERR_SHAPE);
    /* learned_range without the variance channels: fine at t = 0, an error where noise is added */
    assert_int_equal(cdf_scheduler_step(s, 0, m, 3, x, 2, 3, 4, z, NULL, &err), CDF_ERR_SHAPE);
    printf("  %s\n", err.msg);
    assert_int_equal(cdf_scheduler_step(s, 2, m, 3, x, 2, 3, 4, NULL, NULL, &err), CDF_OK);
    assert_int_equal(cdf_scheduler_step(s, 3, m, 6, x, 2, 3, 4, z, NULL, &err), CDF_ERR_ARG); /* out of range */
    cdf_scheduler_free(s);
    /* fixed_small_log takes C channels only */
    strcpy(cfg.variance_type, "fixed_small_log");
    s = make(&cfg, 3);
    assert_int_equal(cdf_scheduler_step(s, 0, m, 6, x, 2, 3, 4, z, NULL, &err), CDF_ERR_SHAPE);
    assert_int_equal(cdf_scheduler_step(s, 0, m, 3, x, 2, 3, 4, z, NULL, &err), CDF_OK);
    cdf_scheduler_free(s);
    /* n > T is accepted (diffusers repeats timesteps), within the allocation bound */
    cfg.num_train_timesteps = 4;
    s = make(&cfg, 9);
    assert_int_equal(cdf_scheduler_num_timesteps(s), 9);
    assert_int_equal(cdf_scheduler_set_timesteps(s, CDF_SCHED_MAX_TRAIN_TIMESTEPS + 1, &err), CDF_ERR_ARG);
    cdf_scheduler_free(s);
    cdf_sched_config_free(&cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_timesteps), cmocka_unit_test(test_golden_decoder_step),
        cmocka_unit_test(test_extra_schedules),  cmocka_unit_test(test_extra_timesteps),
        cmocka_unit_test(test_extra_steps),      cmocka_unit_test(test_extra_configs),
        cmocka_unit_test(test_config_errors),    cmocka_unit_test(test_argument_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
