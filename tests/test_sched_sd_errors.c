/* Error paths of the SD schedulers: scheduler names, invalid config values
 * (messages name the field and the value), from_config overrides (unknown
 * fields, bad JSON, bad values, combinations checked when the config is
 * used), set_timesteps / step argument errors of the stateful schedulers, and
 * out-of-memory at every allocation of a full run of every class without
 * leaks.  The base config is SD-1.5's scheduler_config.json (PNDM). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "io/json.h"
#include "schedulers/scheduler.h"

static const char *k_path = "sd15/scheduler/scheduler_config.json";

/* The SD-1.5 config with `patch` (a JSON object) merged over it. */
static cJSON *config_with(const char *patch) {
    char *text = tu_read_text(tu_data("sd/pipelines/tiny-sd15-a/scheduler/scheduler_config.json"));
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

static void expect_parse_error(const char *patch, cdf_status status, const char *n1, const char *n2) {
    cJSON *root = config_with(patch);
    cdf_sched_config cfg;
    cdf_error err = {0};
    cdf_status st = cdf_sched_config_parse(root, k_path, &cfg, &err);
    if (st != status)
        fail_msg("patch %s: status %s, want %s (%s)", patch, cdf_status_name(st), cdf_status_name(status), err.msg);
    if (!strstr(err.msg, k_path)) fail_msg("'%s' does not name the file", err.msg);
    if (n1 && !strstr(err.msg, n1)) fail_msg("'%s' does not mention '%s'", err.msg, n1);
    if (n2 && !strstr(err.msg, n2)) fail_msg("'%s' does not mention '%s'", err.msg, n2);
    cdf_sched_config_free(&cfg);
    cJSON_Delete(root);
}

static void parse_ok(const char *patch, cdf_sched_config *cfg) {
    cJSON *root = config_with(patch);
    cdf_error err = {0};
    if (cdf_sched_config_parse(root, k_path, cfg, &err) != CDF_OK) fail_msg("patch %s: %s", patch ? patch : "-", err.msg);
    cJSON_Delete(root);
}

static void test_names(void **state) {
    (void)state;
    static const struct {
        const char *name;
        cdf_sched_kind kind;
    } ok[] = {{"ddpm", CDF_SCHED_DDPM},
              {"DDIMScheduler", CDF_SCHED_DDIM},
              {"pndm", CDF_SCHED_PNDM},
              {"Euler", CDF_SCHED_EULER},
              {"euler-a", CDF_SCHED_EULER_ANCESTRAL},
              {"EulerAncestralDiscreteScheduler", CDF_SCHED_EULER_ANCESTRAL},
              {"lms", CDF_SCHED_LMS},
              {"heun", CDF_SCHED_HEUN},
              {"dpm++2m", CDF_SCHED_DPMSOLVER_MULTISTEP},
              {"dpmpp-2m", CDF_SCHED_DPMSOLVER_MULTISTEP},
              {"DPMSolverMultistepScheduler", CDF_SCHED_DPMSOLVER_MULTISTEP},
              {"unipc", CDF_SCHED_UNIPC_MULTISTEP}};
    cdf_error err = {0};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cdf_sched_kind k = CDF_SCHED_DDPM;
        if (cdf_sched_kind_from_name(ok[i].name, &k, &err)) fail_msg("%s: %s", ok[i].name, err.msg);
        assert_int_equal(k, ok[i].kind);
    }
    for (int k = 0; k < CDF_SCHED_N_KINDS; k++) {
        cdf_sched_kind back;
        assert_int_equal(cdf_sched_kind_from_name(cdf_sched_kind_name((cdf_sched_kind)k), &back, &err), CDF_OK);
        assert_int_equal(back, k);
    }
    assert_string_equal(cdf_sched_kind_name(CDF_SCHED_UNIPC_MULTISTEP), "UniPCMultistepScheduler");
    assert_string_equal(cdf_sched_kind_name((cdf_sched_kind)42), "?");
    static const char *const bad[] = {"euler_a", "dpm++", "DPMSolverSinglestepScheduler", "", "eulerdiscretescheduler"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cdf_sched_kind k;
        assert_int_equal(cdf_sched_kind_from_name(bad[i], &k, &err), CDF_ERR_ARG);
        assert_non_null(strstr(err.msg, "euler-a"));
        assert_non_null(strstr(err.msg, "dpm++2m"));
        assert_non_null(strstr(err.msg, "UniPCMultistepScheduler"));
        if (bad[i][0]) assert_non_null(strstr(err.msg, bad[i]));
    }
    assert_int_equal(cdf_sched_kind_from_name(NULL, &(cdf_sched_kind){0}, &err), CDF_ERR_ARG);
}

static void test_config_values(void **state) {
    (void)state;
#define DPM "\"_class_name\": \"DPMSolverMultistepScheduler\""
#define UNI "\"_class_name\": \"UniPCMultistepScheduler\""
#define EUL "\"_class_name\": \"EulerDiscreteScheduler\""
    expect_parse_error("{" DPM ", \"algorithm_type\": \"dpm3\"}", CDF_ERR_CONFIG, "algorithm_type", "dpm3");
    expect_parse_error("{" DPM ", \"solver_type\": \"rk4\"}", CDF_ERR_CONFIG, "solver_type", "rk4");
    expect_parse_error("{" UNI ", \"solver_type\": \"rk4\"}", CDF_ERR_CONFIG, "solver_type", "bh1, bh2");
    expect_parse_error("{" DPM ", \"algorithm_type\": \"dpmsolver\"}", CDF_ERR_CONFIG, "final_sigmas_type", "dpmsolver");
    expect_parse_error("{" DPM ", \"algorithm_type\": \"deis\"}", CDF_ERR_CONFIG, "final_sigmas_type", "deis");
    expect_parse_error("{" DPM ", \"algorithm_type\": \"sde-dpmsolver\", \"final_sigmas_type\": \"sigma_min\", "
                       "\"solver_order\": 3}",
                       CDF_ERR_CONFIG, "solver_order", "3");
    expect_parse_error("{" DPM ", \"solver_order\": 0}", CDF_ERR_CONFIG, "solver_order", "0");
    expect_parse_error("{" UNI ", \"solver_order\": 9}", CDF_ERR_CONFIG, "solver_order", "9");
    expect_parse_error("{" DPM ", \"final_sigmas_type\": \"max\"}", CDF_ERR_CONFIG, "final_sigmas_type", "max");
    expect_parse_error("{" DPM ", \"lambda_min_clipped\": \"low\"}", CDF_ERR_CONFIG, "lambda_min_clipped", "low");
    expect_parse_error("{" DPM ", \"algorithm_type\": \"dpmsolver\", \"final_sigmas_type\": \"sigma_min\", "
                       "\"prediction_type\": \"flow_prediction\"}",
                       CDF_ERR_CONFIG, "prediction_type", "flow_prediction");
    expect_parse_error("{" UNI ", \"predict_x0\": false, \"prediction_type\": \"flow_prediction\"}", CDF_ERR_CONFIG,
                       "prediction_type", "predict_x0");
    expect_parse_error("{" UNI ", \"solver_p\": {\"x\": 1}}", CDF_ERR_CONFIG, "solver_p", "null");
    expect_parse_error("{" UNI ", \"disable_corrector\": [0, \"1\"]}", CDF_ERR_CONFIG, "disable_corrector", "[1]");
    expect_parse_error("{" UNI ", \"disable_corrector\": 2}", CDF_ERR_CONFIG, "disable_corrector", "2");
    expect_parse_error("{" EUL ", \"interpolation_type\": \"cubic\"}", CDF_ERR_CONFIG, "interpolation_type", "cubic");
    expect_parse_error("{" EUL ", \"use_karras_sigmas\": true, \"use_exponential_sigmas\": true}", CDF_ERR_CONFIG,
                       "use_karras_sigmas", "only one");
    expect_parse_error("{" EUL ", \"use_beta_sigmas\": true}", CDF_ERR_UNSUPPORTED, "use_beta_sigmas", "true");
    expect_parse_error("{" EUL ", \"sigma_min\": \"small\"}", CDF_ERR_CONFIG, "sigma_min", "small");
    expect_parse_error("{" EUL ", \"prediction_type\": \"noise\"}", CDF_ERR_CONFIG, "prediction_type", "noise");
    expect_parse_error("{\"prediction_type\": \"sample\"}", CDF_ERR_CONFIG, "prediction_type", "PNDMScheduler");
    expect_parse_error("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", \"prediction_type\": \"sample\"}",
                       CDF_ERR_CONFIG, "prediction_type", "sample");
    expect_parse_error("{\"_class_name\": \"HeunDiscreteScheduler\", \"beta_schedule\": \"sigmoid\"}", CDF_ERR_CONFIG,
                       "beta_schedule", "sigmoid");
    expect_parse_error("{\"_class_name\": \"LMSDiscreteScheduler\", \"beta_schedule\": \"exp\"}", CDF_ERR_CONFIG,
                       "beta_schedule", "exp");
    expect_parse_error("{\"skip_prk_steps\": \"yes\"}", CDF_ERR_CONFIG, "skip_prk_steps", "yes");
    expect_parse_error("{\"timestep_spacing\": \"karras\"}", CDF_ERR_CONFIG, "timestep_spacing", "karras");
    /* accepted as diffusers accepts them */
    cdf_sched_config cfg;
    parse_ok("{\"_class_name\": \"HeunDiscreteScheduler\", \"beta_schedule\": \"exp\"}", &cfg);
    cdf_sched_config_free(&cfg);
    parse_ok("{" DPM ", \"algorithm_type\": \"deis\", \"final_sigmas_type\": \"sigma_min\", \"solver_type\": \"bh2\", "
             "\"lambda_min_clipped\": \"-Infinity\", \"variance_type\": \"fixed_small\"}",
             &cfg);
    assert_string_equal(cfg.algorithm_type, "dpmsolver++"); /* __init__ rewrites */
    assert_string_equal(cfg.solver_type, "midpoint");
    char *js = cdf_sched_config_to_json(&cfg);
    assert_non_null(strstr(js, "\"lambda_min_clipped\":-Infinity"));
    cdf_free(js);
    cdf_sched_config_free(&cfg);
    /* another class's key of an odd type is kept verbatim, and read strictly when a class owns it */
    parse_ok("{\"solver_order\": \"two\"}", &cfg);
    js = cdf_sched_config_to_json(&cfg);
    assert_non_null(strstr(js, "\"solver_order\":\"two\""));
    cdf_free(js);
    cdf_error err = {0};
    assert_int_equal(cdf_sched_config_convert(&cfg, CDF_SCHED_UNIPC_MULTISTEP, &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "solver_order"));
    assert_int_equal(cfg.kind, CDF_SCHED_PNDM); /* unchanged on failure */
    assert_int_equal(cdf_sched_config_convert(&cfg, CDF_SCHED_EULER, &err), CDF_OK);
    cdf_sched_config_free(&cfg);
}

static void test_overrides(void **state) {
    (void)state;
    cdf_sched_config cfg;
    cdf_error err = {0};
    parse_ok(NULL, &cfg);
    assert_int_equal(cdf_sched_config_convert(&cfg, CDF_SCHED_EULER, &err), CDF_OK);
    char *before = cdf_sched_config_to_json(&cfg);
    /* not a parameter of the class */
    assert_int_equal(cdf_sched_config_set(&cfg, "solver_order", "3", &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "solver_order"));
    assert_non_null(strstr(err.msg, "EulerDiscreteScheduler"));
    assert_int_equal(cdf_sched_config_set(&cfg, "no_such_field", "1", &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "no_such_field"));
    /* bad JSON, wrong types, bad values */
    assert_int_equal(cdf_sched_config_set(&cfg, "use_karras_sigmas", "tru", &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "use_karras_sigmas"));
    assert_non_null(strstr(err.msg, "tru"));
    assert_int_equal(cdf_sched_config_set(&cfg, "use_karras_sigmas", "\"yes\"", &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "use_karras_sigmas"));
    assert_int_equal(cdf_sched_config_set(&cfg, "interpolation_type", "\"cubic\"", &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "cubic"));
    assert_int_equal(cdf_sched_config_set(&cfg, "num_train_timesteps", "0", &err), CDF_ERR_CONFIG);
    assert_int_equal(cdf_sched_config_set(&cfg, "use_beta_sigmas", "true", &err), CDF_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "use_beta_sigmas"));
    assert_int_equal(cdf_sched_config_set(&cfg, "prediction_type", "\"flow_prediction\"", &err), CDF_ERR_CONFIG);
    char *after = cdf_sched_config_to_json(&cfg);
    assert_string_equal(before, after); /* failed overrides leave the config alone */
    cdf_free(after);
    /* good ones */
    assert_int_equal(cdf_sched_config_set(&cfg, "use_karras_sigmas", "true", &err), CDF_OK);
    assert_int_equal(cdf_sched_config_set(&cfg, "sigma_max", "10.5", &err), CDF_OK);
    assert_int_equal(cfg.use_karras_sigmas, 1);
    assert_true(cfg.given & CDF_SCHED_F_USE_KARRAS_SIGMAS);
    /* combinations are checked when the config is used */
    assert_int_equal(cdf_sched_config_set(&cfg, "use_exponential_sigmas", "true", &err), CDF_OK);
    cdf_scheduler *s = NULL;
    assert_int_equal(cdf_scheduler_new(&cfg, &s, &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "use_exponential_sigmas"));
    assert_null(s);
    assert_int_equal(cdf_sched_config_convert(&cfg, CDF_SCHED_LMS, &err), CDF_ERR_CONFIG);
    assert_int_equal(cdf_sched_config_set(&cfg, "use_exponential_sigmas", "false", &err), CDF_OK);
    assert_int_equal(cdf_scheduler_new(&cfg, &s, &err), CDF_OK);
    cdf_scheduler_free(s);
    /* DPM: algorithm_type and final_sigmas_type given together, in either order */
    assert_int_equal(cdf_sched_config_convert(&cfg, CDF_SCHED_DPMSOLVER_MULTISTEP, &err), CDF_OK);
    assert_int_equal(cdf_sched_config_set(&cfg, "algorithm_type", "\"dpmsolver\"", &err), CDF_OK);
    assert_int_equal(cdf_scheduler_new(&cfg, &s, &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "final_sigmas_type"));
    assert_int_equal(cdf_sched_config_set(&cfg, "final_sigmas_type", "\"sigma_min\"", &err), CDF_OK);
    assert_int_equal(cdf_sched_config_set(&cfg, "lambda_min_clipped", "-Infinity", &err), CDF_OK);
    assert_int_equal(cdf_sched_config_set(&cfg, "algorithm_type", "\"sde-dpm\"", &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "sde-dpm"));
    assert_int_equal(cdf_scheduler_new(&cfg, &s, &err), CDF_OK);
    cdf_scheduler_free(s);
    /* hidden Euler keys stay in the DPM config */
    char *js = cdf_sched_config_to_json(&cfg);
    assert_non_null(strstr(js, "\"sigma_max\":10.5"));
    assert_null(strstr(js, "\"interpolation_type\"")); /* Euler's defaults vanish, as in diffusers */
    assert_non_null(strstr(js, "\"skip_prk_steps\":true"));
    cdf_free(js);
    cdf_free(before);
    cdf_sched_config_free(&cfg);
}

static void grab_notice(cdf_notice_level level, const char *msg, void *user) {
    (void)level;
    char *buf = user;
    strncat(buf, msg, 4000 - strlen(buf));
}

static void test_notices(void **state) {
    (void)state;
    char notes[4096] = "";
    cJSON *root = config_with("{\"_class_name\": \"UniPCMultistepScheduler\", \"zzz_key\": 3, \"rho\": 7.0, "
                              "\"euler_at_final\": true, \"skip_prk_steps\": true}");
    cdf_sched_config cfg;
    cdf_error err = {0};
    err.on_notice = grab_notice;
    err.notice_user = notes;
    assert_int_equal(cdf_sched_config_parse(root, k_path, &cfg, &err), CDF_OK);
    assert_non_null(strstr(notes, "zzz_key"));
    assert_null(strstr(notes, "rho"));
    assert_null(strstr(notes, "euler_at_final"));
    assert_null(strstr(notes, "skip_prk"));
    char *js = cdf_sched_config_to_json(&cfg);
    assert_non_null(strstr(js, "\"zzz_key\":3"));
    assert_non_null(strstr(js, "\"rho\":7"));
    cdf_free(js);
    cdf_sched_config_free(&cfg);
    cJSON_Delete(root);
}

static cdf_scheduler *sched(const char *patch, cdf_sched_kind kind, int steps) {
    cdf_sched_config cfg;
    parse_ok(patch, &cfg);
    cdf_error err = {0};
    if (cdf_sched_config_convert(&cfg, kind, &err)) fail_msg("%s", err.msg);
    cdf_scheduler *s = NULL;
    if (cdf_scheduler_new(&cfg, &s, &err)) fail_msg("%s", err.msg);
    cdf_sched_config_free(&cfg);
    if (steps > 0 && cdf_scheduler_set_timesteps(s, steps, &err)) fail_msg("%s", err.msg);
    return s;
}

static void test_set_timesteps_errors(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_scheduler *s = sched("{\"skip_prk_steps\": false}", CDF_SCHED_PNDM, 0);
    assert_int_equal(cdf_scheduler_set_timesteps(s, 3, &err), CDF_ERR_ARG); /* PRK needs 4 timesteps */
    assert_non_null(strstr(err.msg, "skip_prk_steps"));
    assert_int_equal(cdf_scheduler_num_timesteps(s), 0);
    assert_int_equal(cdf_scheduler_set_timesteps(s, 4, &err), CDF_OK);
    assert_int_equal(cdf_scheduler_num_timesteps(s), 4 + 9);
    cdf_scheduler_free(s);
    s = sched(NULL, CDF_SCHED_EULER, 0);
    assert_int_equal(cdf_scheduler_set_timesteps(s, 1001, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_scheduler_set_timesteps(s, 0, &err), CDF_ERR_ARG);
    assert_true(isnan(cdf_scheduler_timestep_value(s, 0)));
    assert_null(cdf_scheduler_sigmas(s, NULL));
    cdf_scheduler_free(s);
    /* sigma_max above the schedule: the first Karras timesteps all map to 999 */
    s = sched("{\"use_karras_sigmas\": true, \"sigma_max\": 100.0}", CDF_SCHED_EULER, 0);
    assert_int_equal(cdf_scheduler_set_timesteps(s, 10, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "repeat"));
    cdf_scheduler_free(s);
    /* PNDM leading with steps_offset 1 and n = T reaches timestep T */
    s = sched(NULL, CDF_SCHED_PNDM, 0);
    assert_int_equal(cdf_scheduler_set_timesteps(s, 1000, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "steps_offset"));
    cdf_scheduler_free(s);
}

static void test_step_errors(void **state) {
    (void)state;
    enum { C = 4, SP = 9, N = 2 * C * SP };
    float x[N], m[2 * N], z[N];
    for (int i = 0; i < N; i++) x[i] = z[i] = 0.25f * (float)(i % 7) - 0.5f;
    for (int i = 0; i < 2 * N; i++) m[i] = 0.1f * (float)(i % 5);
    cdf_error err = {0};
    cdf_sched_step_opts o = {0.0, -1};
    static const cdf_sched_kind stateful[] = {CDF_SCHED_PNDM, CDF_SCHED_LMS, CDF_SCHED_HEUN,
                                              CDF_SCHED_DPMSOLVER_MULTISTEP, CDF_SCHED_UNIPC_MULTISTEP};
    for (size_t k = 0; k < sizeof stateful / sizeof stateful[0]; k++) {
        cdf_scheduler *s = sched(NULL, stateful[k], 0);
        assert_int_equal(cdf_scheduler_step(s, 0, m, C, x, 2, C, SP, NULL, &o, &err), CDF_ERR_ARG);
        assert_non_null(strstr(err.msg, "set_timesteps"));
        assert_int_equal(cdf_scheduler_set_timesteps(s, 6, &err), CDF_OK);
        assert_int_equal(cdf_scheduler_step(s, 1, m, C, x, 2, C, SP, NULL, &o, &err), CDF_ERR_ARG);
        assert_non_null(strstr(err.msg, "order"));
        assert_int_equal(cdf_scheduler_step(s, 0, m, C, x, 2, C, SP, NULL, &o, &err), CDF_OK);
        /* the state keeps the batch shape of the run */
        assert_int_equal(cdf_scheduler_step(s, 1, m, C, x, 1, C, SP, NULL, &o, &err), CDF_ERR_SHAPE);
        assert_int_equal(cdf_scheduler_step(s, 1, m, 2 * C, x, 2, C, SP, NULL, &o, &err), CDF_ERR_SHAPE);
        assert_int_equal(cdf_scheduler_step(s, 1, m, C, x, 2, C, SP, NULL, &o, &err), CDF_OK);
        /* set_timesteps starts a new run (any shape) */
        assert_int_equal(cdf_scheduler_set_timesteps(s, 6, &err), CDF_OK);
        assert_int_equal(cdf_scheduler_step(s, 0, m, C, x, 1, C, SP, NULL, &o, &err), CDF_OK);
        cdf_scheduler_free(s);
    }
    /* Euler ancestral draws noise at every step, the last one included */
    cdf_scheduler *s = sched(NULL, CDF_SCHED_EULER_ANCESTRAL, 4);
    for (int i = 0; i < 4; i++) assert_true(cdf_scheduler_step_needs_noise(s, i, NULL));
    assert_false(cdf_scheduler_step_needs_noise(s, 4, NULL));
    assert_int_equal(cdf_scheduler_step(s, 3, m, C, x, 2, C, SP, NULL, &o, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "noise"));
    assert_int_equal(cdf_scheduler_step(s, 3, m, C, x, 2, C, SP, z, &o, &err), CDF_OK);
    assert_int_equal(cdf_scheduler_step(s, 0, m, C + 1, x, 2, C, SP, z, &o, &err), CDF_ERR_SHAPE);
    cdf_scheduler_free(s);
    s = sched(NULL, CDF_SCHED_EULER, 4);
    assert_false(cdf_scheduler_step_needs_noise(s, 0, NULL));
    cdf_scheduler_free(s);
    /* SDE DPM-Solver needs noise */
    s = sched("{\"algorithm_type\": \"sde-dpmsolver++\"}", CDF_SCHED_DPMSOLVER_MULTISTEP, 4);
    assert_true(cdf_scheduler_step_needs_noise(s, 3, NULL));
    assert_int_equal(cdf_scheduler_step(s, 0, m, C, x, 2, C, SP, NULL, &o, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_scheduler_step(s, 0, m, C, x, 2, C, SP, z, &o, &err), CDF_OK);
    cdf_scheduler_free(s);
    /* DPM learned variance: epsilon keeps the first 3 channels (RGB models only) */
    s = sched("{\"variance_type\": \"learned_range\"}", CDF_SCHED_DPMSOLVER_MULTISTEP, 4);
    assert_int_equal(cdf_scheduler_step(s, 0, m, 2 * C, x, 2, C, SP, NULL, &o, &err), CDF_ERR_SHAPE);
    assert_int_equal(cdf_scheduler_step(s, 0, m, 6, x, 2, 3, SP, NULL, &o, &err), CDF_OK);
    cdf_scheduler_free(s);
    /* scale_model_input: identity for the non-sigma schedulers, in place allowed */
    s = sched(NULL, CDF_SCHED_UNIPC_MULTISTEP, 4);
    float y[N];
    cdf_scheduler_scale_model_input(s, 0, x, y, N);
    assert_memory_equal(x, y, sizeof y);
    assert_true(cdf_scheduler_init_noise_sigma(s) == 1.0f);
    cdf_scheduler_free(s);
    s = sched(NULL, CDF_SCHED_LMS, 4);
    memcpy(y, x, sizeof y);
    cdf_scheduler_scale_model_input(s, 1, y, y, N);
    int nsig = 0;
    const float *sig = cdf_scheduler_sigmas(s, &nsig);
    assert_int_equal(nsig, 5);
    const float d = sqrtf(sig[1] * sig[1] + 1.0f);
    for (int i = 0; i < N; i++) assert_true(y[i] == x[i] / d);
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

/* parse + convert + override + new + set_timesteps + 3 steps + to_json. */
static cdf_status full_flow(const cJSON *root, cdf_sched_kind kind, const char *field, const char *value) {
    cdf_sched_config cfg;
    cdf_error err = {0};
    cdf_status st = cdf_sched_config_parse(root, k_path, &cfg, &err);
    if (st) return st;
    st = cdf_sched_config_convert(&cfg, kind, &err);
    if (!st && field) st = cdf_sched_config_set(&cfg, field, value, &err);
    cdf_scheduler *s = NULL;
    if (!st) st = cdf_scheduler_new(&cfg, &s, &err);
    char *js = cdf_sched_config_to_json(&cfg);
    if (!st && !js) st = CDF_ERR_NOMEM;
    cdf_free(js);
    cdf_sched_config_free(&cfg);
    if (!st) st = cdf_scheduler_set_timesteps(s, 6, &err);
    float x[2 * 4 * 5], m[2 * 4 * 5], z[2 * 4 * 5];
    for (int i = 0; i < 40; i++) x[i] = m[i] = z[i] = (float)(i % 9) * 0.25f - 1.0f;
    cdf_sched_step_opts o = {0.0, -1};
    for (int i = 0; i < 3 && !st; i++) st = cdf_scheduler_step(s, i, m, 4, x, 2, 4, 5, z, &o, &err);
    cdf_scheduler_free(s);
    return st;
}

static void test_out_of_memory(void **state) {
    (void)state;
    cJSON *dummy = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_json_parse("{}", 2, "x", &dummy, &err), CDF_OK); /* installs cJSON's hooks */
    cJSON_Delete(dummy);
    cJSON *root = NULL;
    {
        cJSON *tmp = config_with("{\"foo\": [1, 2], \"disable_corrector\": [1], \"thresholding\": true}");
        char *text = cJSON_PrintUnformatted(tmp);
        cJSON_Delete(tmp);
        assert_int_equal(cdf_json_parse(text, strlen(text), "patched", &root, &err), CDF_OK);
        cJSON_free(text);
    }
    static const struct {
        cdf_sched_kind kind;
        const char *field, *value;
    } flows[] = {{CDF_SCHED_PNDM, "skip_prk_steps", "false"},
                 {CDF_SCHED_EULER, "use_karras_sigmas", "true"},
                 {CDF_SCHED_EULER_ANCESTRAL, NULL, NULL},
                 {CDF_SCHED_LMS, NULL, NULL},
                 {CDF_SCHED_HEUN, NULL, NULL},
                 {CDF_SCHED_DPMSOLVER_MULTISTEP, "solver_order", "3"},
                 {CDF_SCHED_UNIPC_MULTISTEP, "solver_order", "3"}};
    for (size_t f = 0; f < sizeof flows / sizeof flows[0]; f++) {
        assert_int_equal(full_flow(root, flows[f].kind, flows[f].field, flows[f].value), CDF_OK);
        int failures = 0;
        for (long k = 1;; k++) {
            fail_alloc fa = {0, k, 0};
            cdf_allocator a = {fa_malloc, fa_realloc, fa_free, &fa};
            cdf_set_allocator(&a);
            cdf_status st = full_flow(root, flows[f].kind, flows[f].field, flows[f].value);
            cdf_set_allocator(NULL);
            if (fa.live != 0) fail_msg("%s: failing allocation %ld leaked %ld blocks", cdf_sched_kind_name(flows[f].kind), k, fa.live);
            if (st == CDF_OK) {
                assert_true(k > fa.calls);
                break;
            }
            if (st != CDF_ERR_NOMEM)
                fail_msg("%s: failing allocation %ld gave %s", cdf_sched_kind_name(flows[f].kind), k, cdf_status_name(st));
            failures++;
        }
        assert_true(failures >= 8);
    }
    cJSON_Delete(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),        cmocka_unit_test(test_config_values),
        cmocka_unit_test(test_overrides),    cmocka_unit_test(test_notices),
        cmocka_unit_test(test_set_timesteps_errors), cmocka_unit_test(test_step_errors),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
