/* DDPM/DDIM scheduler error paths: invalid configs name file, field and value;
 * set_timesteps / step argument errors as diffusers raises them; notices for
 * unknown keys; out-of-memory at every allocation without leaks.  The base
 * config is the golden tiny_cifar scheduler_config.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "io/json.h"
#include "schedulers/scheduler.h"

static const char *k_path = "models/x/scheduler/scheduler_config.json";

/* The golden DDPM config with `patch` (a JSON object) merged over it. */
static cJSON *config_with(const char *patch) {
    char *text = tu_read_text(tu_data("ddpm/models/tiny_cifar/scheduler/scheduler_config.json"));
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    if (patch) {
        cJSON *p = cJSON_Parse(patch);
        assert_non_null(p);
        cJSON *it = p->child;
        while (it) {
            cJSON *next = it->next;
            cJSON_DetachItemViaPointer(p, it);
            cJSON_DeleteItemFromObjectCaseSensitive(root, it->string);
            cJSON_AddItemToObject(root, it->string, it);
            it = next;
        }
        cJSON_Delete(p);
    }
    return root;
}

/* Parsing the patched config fails with `status` and a message holding every needle. */
static void expect_parse_error(const char *patch, cdf_status status, const char *n1, const char *n2) {
    cJSON *root = config_with(patch);
    cdf_sched_config cfg;
    cdf_error err = {0};
    cdf_status st = cdf_sched_config_parse(root, k_path, &cfg, &err);
    if (st != status) fail_msg("patch %s: status %s, want %s (%s)", patch, cdf_status_name(st), cdf_status_name(status), err.msg);
    assert_int_equal(err.status, status);
    if (!strstr(err.msg, k_path) && status != CDF_OK) fail_msg("'%s' does not name the file", err.msg);
    if (n1 && !strstr(err.msg, n1)) fail_msg("'%s' does not mention '%s'", err.msg, n1);
    if (n2 && !strstr(err.msg, n2)) fail_msg("'%s' does not mention '%s'", err.msg, n2);
    cdf_sched_config_free(&cfg); /* zeroed on failure: harmless */
    cJSON_Delete(root);
}

static void parse_ok(const char *patch, cdf_sched_config *cfg) {
    cJSON *root = config_with(patch);
    cdf_error err = {0};
    if (cdf_sched_config_parse(root, k_path, cfg, &err) != CDF_OK) fail_msg("patch %s: %s", patch ? patch : "(none)", err.msg);
    cJSON_Delete(root);
}

static void test_config_errors(void **state) {
    (void)state;
    expect_parse_error("{\"beta_schedule\": \"cubic\"}", CDF_ERR_CONFIG, "beta_schedule", "cubic");
    expect_parse_error("{\"beta_schedule\": null}", CDF_ERR_CONFIG, "beta_schedule", NULL);
    expect_parse_error("{\"_class_name\": \"DDIMScheduler\", \"beta_schedule\": \"sigmoid\"}", CDF_ERR_CONFIG,
                       "beta_schedule", "sigmoid");
    expect_parse_error("{\"prediction_type\": \"noise\"}", CDF_ERR_CONFIG, "prediction_type", "noise");
    expect_parse_error("{\"prediction_type\": 3}", CDF_ERR_CONFIG, "prediction_type", "3");
    expect_parse_error("{\"timestep_spacing\": \"karras\"}", CDF_ERR_CONFIG, "timestep_spacing", "karras");
    expect_parse_error("{\"variance_type\": \"fixed_medium\"}", CDF_ERR_CONFIG, "variance_type", "fixed_medium");
    expect_parse_error("{\"num_train_timesteps\": 0}", CDF_ERR_CONFIG, "num_train_timesteps", "0");
    expect_parse_error("{\"num_train_timesteps\": -4}", CDF_ERR_CONFIG, "num_train_timesteps", "-4");
    expect_parse_error("{\"num_train_timesteps\": 10.5}", CDF_ERR_CONFIG, "num_train_timesteps", "10.5");
    expect_parse_error("{\"num_train_timesteps\": \"1000\"}", CDF_ERR_CONFIG, "num_train_timesteps", "1000");
    expect_parse_error("{\"trained_betas\": [0.1, 0.2]}", CDF_ERR_CONFIG, "trained_betas", "2");
    expect_parse_error("{\"trained_betas\": \"no\"}", CDF_ERR_CONFIG, "trained_betas", "no");
    expect_parse_error("{\"trained_betas\": [0.1, \"x\"], \"num_train_timesteps\": 2}", CDF_ERR_CONFIG,
                       "trained_betas", "[1]");
    expect_parse_error("{\"beta_start\": \"small\"}", CDF_ERR_CONFIG, "beta_start", "small");
    expect_parse_error("{\"clip_sample\": \"yes\"}", CDF_ERR_CONFIG, "clip_sample", "yes");
    expect_parse_error("{\"steps_offset\": 0.5}", CDF_ERR_CONFIG, "steps_offset", "0.5");
    expect_parse_error("{\"thresholding\": true, \"dynamic_thresholding_ratio\": 1.5}", CDF_ERR_CONFIG,
                       "dynamic_thresholding_ratio", "1.5");
    expect_parse_error("{\"_class_name\": \"KDPM2DiscreteScheduler\"}", CDF_ERR_UNSUPPORTED, "_class_name", "KDPM2DiscreteScheduler");
    expect_parse_error("{\"_class_name\": 7}", CDF_ERR_CONFIG, "_class_name", NULL);

    /* what diffusers accepts */
    cdf_sched_config cfg;
    /* trained_betas make beta_schedule irrelevant */
    parse_ok("{\"trained_betas\": [0.1, 0.2, 0.3], \"num_train_timesteps\": 3, \"beta_schedule\": \"cubic\"}", &cfg);
    assert_int_equal(cfg.n_trained_betas, 3);
    cdf_sched_config_free(&cfg);
    /* DDIM ignores variance_type (kept as a hidden key) */
    parse_ok("{\"_class_name\": \"DDIMScheduler\", \"variance_type\": \"whatever\"}", &cfg);
    assert_int_equal(cfg.kind, CDF_SCHED_DDIM);
    assert_true(cfg.given & CDF_SCHED_F_VARIANCE_TYPE);
    /* converting it to DDPM must now validate variance_type */
    cdf_error err = {0};
    assert_int_equal(cdf_sched_config_convert(&cfg, CDF_SCHED_DDPM, &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "variance_type"));
    cdf_sched_config_free(&cfg);
    /* the ratio is only checked when thresholding */
    parse_ok("{\"dynamic_thresholding_ratio\": 1.5}", &cfg);
    cdf_sched_config_free(&cfg);
    /* null flags are Python-falsy */
    parse_ok("{\"clip_sample\": null}", &cfg);
    assert_int_equal(cfg.clip_sample, 0);
    cdf_sched_config_free(&cfg);
    /* sigmoid DDPM converts to DDIM with an error naming the field */
    parse_ok("{\"beta_schedule\": \"sigmoid\"}", &cfg);
    assert_int_equal(cdf_sched_config_convert(&cfg, CDF_SCHED_DDIM, &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "beta_schedule"));
    assert_non_null(strstr(err.msg, "DDIMScheduler"));
    cdf_sched_config_free(&cfg);
}

static void test_convert_defaults(void **state) {
    (void)state;
    cdf_sched_config cfg;
    cdf_error err = {0};
    /* DDIMPipeline on a DDPM config: set_alpha_to_one takes DDIM's default (true) */
    parse_ok(NULL, &cfg);
    cfg.set_alpha_to_one = 0; /* a DDPM config never reads it: conversion must not inherit it */
    assert_false(cfg.given & CDF_SCHED_F_SET_ALPHA_TO_ONE);
    assert_int_equal(cdf_sched_config_convert(&cfg, CDF_SCHED_DDIM, &err), CDF_OK);
    assert_int_equal(cfg.set_alpha_to_one, 1);
    cdf_sched_config_free(&cfg);
    /* ... unless the file gave it */
    parse_ok("{\"set_alpha_to_one\": false}", &cfg);
    assert_int_equal(cdf_sched_config_convert(&cfg, CDF_SCHED_DDIM, &err), CDF_OK);
    assert_int_equal(cfg.set_alpha_to_one, 0);
    cdf_sched_config_free(&cfg);
    /* keys listed in _use_default_values count as not given */
    parse_ok("{\"set_alpha_to_one\": false, \"clip_sample\": false, \"_use_default_values\": [\"set_alpha_to_one\", "
             "\"clip_sample\"]}",
             &cfg);
    assert_int_equal(cfg.clip_sample, 1);
    assert_int_equal(cdf_sched_config_convert(&cfg, CDF_SCHED_DDIM, &err), CDF_OK);
    assert_int_equal(cfg.set_alpha_to_one, 1);
    cdf_sched_config_free(&cfg);
}

static void grab_notice(cdf_notice_level level, const char *msg, void *user) {
    (void)level;
    char *buf = user;
    strncat(buf, msg, 4000 - strlen(buf));
    strncat(buf, "\n", 4000 - strlen(buf));
}

static void test_notices(void **state) {
    (void)state;
    char notes[4096] = "";
    cJSON *root = config_with("{\"foo_bar\": 1, \"use_karras_sigmas\": true, \"solver_order\": 2}");
    cdf_sched_config cfg;
    cdf_error err = {0};
    err.on_notice = grab_notice;
    err.notice_user = notes;
    assert_int_equal(cdf_sched_config_parse(root, k_path, &cfg, &err), CDF_OK);
    assert_non_null(strstr(notes, "foo_bar"));
    assert_non_null(strstr(notes, k_path));
    assert_null(strstr(notes, "use_karras_sigmas")); /* other schedulers' keys are silent */
    assert_null(strstr(notes, "solver_order"));
    /* ... but kept in the config, as diffusers keeps them */
    char *js = cdf_sched_config_to_json(&cfg);
    assert_non_null(strstr(js, "\"use_karras_sigmas\":true"));
    assert_non_null(strstr(js, "\"foo_bar\":1"));
    cdf_free(js);
    cdf_sched_config_free(&cfg);
    cJSON_Delete(root);
}

static cdf_scheduler *sched_from(const char *patch, int steps) {
    cdf_sched_config cfg;
    parse_ok(patch, &cfg);
    cdf_scheduler *s = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_scheduler_new(&cfg, &s, &err), CDF_OK);
    cdf_sched_config_free(&cfg);
    if (steps > 0) assert_int_equal(cdf_scheduler_set_timesteps(s, steps, &err), CDF_OK);
    return s;
}

static void test_set_timesteps_errors(void **state) {
    (void)state;
    cdf_scheduler *s = sched_from(NULL, 0);
    cdf_error err = {0};
    assert_int_equal(cdf_scheduler_num_timesteps(s), 0);
    assert_int_equal(cdf_scheduler_set_timesteps(s, 0, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "num_inference_steps"));
    assert_int_equal(cdf_scheduler_set_timesteps(s, -3, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_scheduler_set_timesteps(s, 1001, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "1001"));
    assert_non_null(strstr(err.msg, "1000"));
    assert_int_equal(cdf_scheduler_num_timesteps(s), 0);
    assert_int_equal(cdf_scheduler_set_timesteps(s, 1000, &err), CDF_OK);
    assert_int_equal(cdf_scheduler_num_timesteps(s), 1000);
    assert_true(cdf_scheduler_timestep(s, 0) == 999 && cdf_scheduler_timestep(s, 999) == 0);
    cdf_scheduler_free(s);
    /* steps_offset 1 with n = T gives timestep T: diffusers fails indexing alphas_cumprod */
    s = sched_from("{\"steps_offset\": 1}", 0);
    assert_int_equal(cdf_scheduler_set_timesteps(s, 1000, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "steps_offset"));
    assert_int_equal(cdf_scheduler_set_timesteps(s, 999, &err), CDF_OK);
    cdf_scheduler_free(s);
}

static void test_step_errors(void **state) {
    (void)state;
    enum { C = 3, SP = 4 };
    float x[2 * C * SP], m[2 * 2 * C * SP], z[2 * C * SP];
    for (int i = 0; i < 2 * C * SP; i++) x[i] = z[i] = 0.25f * (float)(i % 7) - 0.5f;
    for (int i = 0; i < 4 * C * SP; i++) m[i] = 0.1f * (float)(i % 5);
    cdf_error err = {0};
    cdf_sched_step_opts o = {0.0, -1};
    cdf_scheduler *s = sched_from(NULL, 0);
    assert_int_equal(cdf_scheduler_step(s, 0, m, C, x, 1, C, SP, z, &o, &err), CDF_ERR_ARG); /* no set_timesteps */
    assert_non_null(strstr(err.msg, "set_timesteps"));
    assert_int_equal(cdf_scheduler_set_timesteps(s, 4, &err), CDF_OK);
    assert_int_equal(cdf_scheduler_step(s, 4, m, C, x, 1, C, SP, z, &o, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_scheduler_step(s, -1, m, C, x, 1, C, SP, z, &o, &err), CDF_ERR_ARG);
    assert_true(cdf_scheduler_step_needs_noise(s, 0, &o)); /* t = 750 > 0 */
    assert_false(cdf_scheduler_step_needs_noise(s, 3, &o)); /* t = 0 */
    assert_int_equal(cdf_scheduler_step(s, 0, m, C, x, 1, C, SP, NULL, &o, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "noise"));
    assert_int_equal(cdf_scheduler_step(s, 0, m, 2 * C, x, 1, C, SP, z, &o, &err), CDF_ERR_SHAPE);
    assert_int_equal(cdf_scheduler_step(s, 3, m, C, x, 1, C, SP, NULL, &o, &err), CDF_OK);
    cdf_scheduler_free(s);
    /* learned variance: 2C channels split; C channels work only where no noise is drawn */
    s = sched_from("{\"variance_type\": \"learned_range\"}", 4);
    assert_int_equal(cdf_scheduler_step(s, 0, m, C, x, 1, C, SP, z, &o, &err), CDF_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "learned_range"));
    assert_int_equal(cdf_scheduler_step(s, 0, m, 2 * C, x, 2, C, SP, z, &o, &err), CDF_OK);
    assert_int_equal(cdf_scheduler_step(s, 3, m, C, x, 1, C, SP, NULL, &o, &err), CDF_OK);
    cdf_scheduler_free(s);
    /* DDIM: eta > 0 needs noise; model channels must match */
    s = sched_from("{\"_class_name\": \"DDIMScheduler\"}", 4);
    o.eta = 0.5;
    assert_true(cdf_scheduler_step_needs_noise(s, 3, &o));
    assert_false(cdf_scheduler_step_needs_noise(s, 3, NULL));
    assert_int_equal(cdf_scheduler_step(s, 0, m, C, x, 1, C, SP, NULL, &o, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_scheduler_step(s, 0, m, 2 * C, x, 1, C, SP, z, &o, &err), CDF_ERR_SHAPE);
    assert_int_equal(cdf_scheduler_step(s, 0, m, C, x, 1, C, SP, z, &o, &err), CDF_OK);
    cdf_scheduler_free(s);
}

/* Allocator that fails the n-th allocation and counts live blocks. */
typedef struct fail_alloc {
    long calls, fail_at, live;
} fail_alloc;

static void *fa_malloc(size_t n, void *u) {
    fail_alloc *f = u;
    if (++f->calls == f->fail_at) return NULL;
    void *p = malloc(n);
    if (p) f->live++;
    return p;
}
static void *fa_realloc(void *p, size_t n, void *u) {
    fail_alloc *f = u;
    if (++f->calls == f->fail_at) return NULL;
    void *q = realloc(p, n);
    if (q && !p) f->live++;
    return q;
}
static void fa_free(void *p, void *u) {
    fail_alloc *f = u;
    if (p) f->live--;
    free(p);
}

/* parse + convert + new + set_timesteps + a thresholded step + to_json; returns the first failure. */
static cdf_status full_flow(const cJSON *root) {
    cdf_sched_config cfg;
    cdf_error err = {0};
    cdf_status st = cdf_sched_config_parse(root, k_path, &cfg, &err);
    if (st) return st;
    st = cdf_sched_config_convert(&cfg, CDF_SCHED_DDIM, &err);
    cdf_scheduler *s = NULL;
    if (!st) st = cdf_scheduler_new(&cfg, &s, &err);
    char *js = cdf_sched_config_to_json(&cfg);
    if (!st && !js) st = CDF_ERR_NOMEM;
    cdf_free(js);
    cdf_sched_config_free(&cfg);
    if (!st) st = cdf_scheduler_set_timesteps(s, 10, &err);
    if (!st) {
        float x[2 * 3 * 5], m[2 * 3 * 5];
        for (int i = 0; i < 30; i++) x[i] = m[i] = (float)(i % 9) - 4.0f;
        cdf_sched_step_opts o = {0.0, -1};
        st = cdf_scheduler_step(s, 0, m, 3, x, 2, 3, 5, NULL, &o, &err);
    }
    cdf_scheduler_free(s);
    return st;
}

static void test_out_of_memory(void **state) {
    (void)state;
    cJSON *dummy = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_json_parse("{}", 2, "x", &dummy, &err), CDF_OK); /* installs cJSON's hooks */
    cJSON_Delete(dummy);
    const char *patch = "{\"thresholding\": true, \"foo\": [1, 2], \"trained_betas\": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, "
                        "0.1, 0.2, 0.3, 0.4, 0.5, 0.6], \"num_train_timesteps\": 12, \"rescale_betas_zero_snr\": true, "
                        "\"set_alpha_to_one\": false}";
    cJSON *root = NULL;
    {
        cJSON *tmp = config_with(patch);
        char *text = cJSON_PrintUnformatted(tmp);
        cJSON_Delete(tmp);
        assert_int_equal(cdf_json_parse(text, strlen(text), "patched", &root, &err), CDF_OK);
        cJSON_free(text);
    }
    assert_int_equal(full_flow(root), CDF_OK);
    int failures = 0;
    for (long k = 1;; k++) {
        fail_alloc f = {0, k, 0};
        cdf_allocator a = {fa_malloc, fa_realloc, fa_free, &f};
        cdf_set_allocator(&a);
        cdf_status st = full_flow(root);
        cdf_set_allocator(NULL);
        if (f.live != 0) fail_msg("failing allocation %ld leaked %ld blocks", k, f.live);
        if (st == CDF_OK) {
            assert_true(k > f.calls); /* only succeeds once no allocation fails */
            break;
        }
        assert_int_equal(st, CDF_ERR_NOMEM);
        failures++;
    }
    assert_true(failures >= 8);
    cJSON_Delete(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),        cmocka_unit_test(test_convert_defaults),
        cmocka_unit_test(test_notices),              cmocka_unit_test(test_set_timesteps_errors),
        cmocka_unit_test(test_step_errors),          cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
