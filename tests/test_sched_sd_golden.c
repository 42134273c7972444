/* The Stable Diffusion schedulers against the golden SD pipeline cases
 * (tests/data/sd/cases/<name>/case.json, made with diffusers 0.32.2 + torch):
 * for every case, SD-1.5's PNDM scheduler_config.json converted with
 * XScheduler.from_config(config, **overrides) equals the case's full config;
 * timesteps (the exact values fed to the UNet), sigmas and init_noise_sigma
 * are identical; latents_init = noise_init * init_noise_sigma;
 * unet0_input = scale_model_input(cat([latents] * 2)) is identical; one
 * scheduler.step on the CFG-combined first UNet output (and the first
 * ancestral draw) reproduces latents_step1, also per batch element alone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "schedulers/scheduler.h"


static const cJSON *item(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) fail_msg("missing key '%s'", k);
    return v;
}

static float *load_array(const char *case_dir, const cJSON *arrays, const char *name, size_t *count) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(arrays, name);
    if (!a) return NULL;
    size_t n = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, item(a, "shape")) n *= (size_t)d->valuedouble;
    float *p = tu_load_bin(tu_data("sd/%s/%s", case_dir, item(a, "file")->valuestring), n, 4);
    assert_non_null(p);
    *count = n;
    return p;
}

/* Signed distance in float32 ulps. */
static long ulp_diff(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0) ia = INT32_MIN - ia;
    if (ib < 0) ib = INT32_MIN - ib;
    long d = (long)ia - (long)ib;
    return d < 0 ? -d : d;
}

/* Config equality as diffusers' dict (order-free; _diffusers_version is not modelled). */
static void assert_config(const cdf_sched_config *cfg, const cJSON *want, const char *what) {
    char *js = cdf_sched_config_to_json(cfg);
    assert_non_null(js);
    cJSON *got = tu_parse_py_json(js);
    if (!got) fail_msg("%s: unparsable config %s", what, js);
    const cJSON *it;
    cJSON_ArrayForEach(it, want) {
        if (strcmp(it->string, "_diffusers_version") == 0) continue;
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, it->string);
        if (!g || !cJSON_Compare(it, g, 1)) fail_msg("%s: key '%s' differs in %s", what, it->string, js);
    }
    cJSON_ArrayForEach(it, got) {
        if (!cJSON_GetObjectItemCaseSensitive(want, it->string)) fail_msg("%s: extra key '%s' in %s", what, it->string, js);
    }
    cJSON_Delete(got);
    cdf_free(js);
}

static double g_max_err = 0.0;
static long g_max_ulp = 0;
/* sd/manifest.json's cases, those with a sigmas list and those whose first
 * step draws noise: the optional parts are counted too, so a renamed key
 * cannot skip them silently. */
#define N_CASES 19
#define N_WITH_SIGMAS 9
#define N_WITH_STEP_NOISE 2
static int g_n_sigmas, g_n_step_noise;

static void run_case(const char *name, const char *dir) {
    cJSON *cj = tu_load_py_json(tu_data("sd/%s/case.json", dir));
    assert_non_null(cj);
    const cJSON *call = item(cj, "call"), *sc = item(call, "scheduler"), *res = item(call, "resolved");
    /* 1. config: SD-1.5 PNDM config -> class.from_config(config, **overrides) */
    cJSON *root = tu_load_py_json(tu_data("sd/%s/scheduler/scheduler_config.json", item(call, "pipeline")->valuestring));
    assert_non_null(root);
    cdf_sched_config cfg;
    cdf_error err = {0};
    if (cdf_sched_config_parse(root, "scheduler_config.json", &cfg, &err)) fail_msg("%s: %s", name, err.msg);
    cJSON_Delete(root);
    cdf_sched_kind kind;
    assert_int_equal(cdf_sched_kind_from_name(item(sc, "class")->valuestring, &kind, &err), CDF_OK);
    if (cdf_sched_config_convert(&cfg, kind, &err)) fail_msg("%s: %s", name, err.msg);
    const cJSON *ov;
    cJSON_ArrayForEach(ov, item(sc, "from_config_overrides")) {
        char *v = cJSON_PrintUnformatted(ov);
        if (cdf_sched_config_set(&cfg, ov->string, v, &err)) fail_msg("%s: %s", name, err.msg);
        cJSON_free(v);
    }
    assert_config(&cfg, item(sc, "config"), name);
    /* 2. set_timesteps */
    cdf_scheduler *s = NULL;
    if (cdf_scheduler_new(&cfg, &s, &err)) fail_msg("%s: %s", name, err.msg);
    const int steps = item(res, "num_inference_steps")->valueint;
    if (cdf_scheduler_set_timesteps(s, steps, &err)) fail_msg("%s: %s", name, err.msg);
    const cJSON *ts = item(cj, "timesteps");
    assert_int_equal(cdf_scheduler_num_timesteps(s), cJSON_GetArraySize(ts));
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, ts) {
        if (cdf_scheduler_timestep_value(s, i) != t->valuedouble)
            fail_msg("%s: timestep %d is %.17g, want %.17g", name, i, cdf_scheduler_timestep_value(s, i), t->valuedouble);
        i++;
    }
    const cJSON *sg = cJSON_GetObjectItemCaseSensitive(cj, "sigmas");
    int nsig = 0;
    const float *sig = cdf_scheduler_sigmas(s, &nsig);
    if (sg && cJSON_IsArray(sg) && cJSON_GetArraySize(sg) > 0) {
        assert_int_equal(nsig, cJSON_GetArraySize(sg));
        i = 0;
        cJSON_ArrayForEach(t, sg) {
            if (sig[i] != (float)t->valuedouble)
                fail_msg("%s: sigma %d is %.9g, want %.9g", name, i, sig[i], t->valuedouble);
            i++;
        }
        g_n_sigmas++;
    }
    const float init = cdf_scheduler_init_noise_sigma(s);
    if (init != (float)item(cj, "init_noise_sigma")->valuedouble)
        fail_msg("%s: init_noise_sigma %.9g, want %.9g", name, init, item(cj, "init_noise_sigma")->valuedouble);
    /* 3. arrays */
    const cJSON *arrays = item(cj, "arrays");
    size_t n_lat, n_noise, n_in, n_out, n_step1, n_sn = 0;
    float *noise0 = load_array(dir, arrays, "noise_init", &n_noise);
    float *lat = load_array(dir, arrays, "latents_init", &n_lat);
    float *unet_in = load_array(dir, arrays, "unet0_input", &n_in);
    float *unet_out = load_array(dir, arrays, "unet0_output", &n_out);
    float *step1 = load_array(dir, arrays, "latents_step1", &n_step1);
    float *step_noise = load_array(dir, arrays, "step_noise", &n_sn);
    assert_int_equal(n_noise, n_lat);
    for (size_t k = 0; k < n_lat; k++)
        if (noise0[k] * init != lat[k]) fail_msg("%s: latents_init[%zu] != noise_init * init_noise_sigma", name, k);
    const double gs = item(res, "guidance_scale")->valuedouble;
    const int cfg_on = gs > 1.0;
    const cJSON *shape = item(cJSON_GetObjectItemCaseSensitive(arrays, "latents_init"), "shape");
    const int batch = cJSON_GetArrayItem(shape, 0)->valueint, C = cJSON_GetArrayItem(shape, 1)->valueint;
    const int64_t sp = (int64_t)cJSON_GetArrayItem(shape, 2)->valueint * cJSON_GetArrayItem(shape, 3)->valueint;
    assert_int_equal(n_in, cfg_on ? 2 * n_lat : n_lat);
    float *in = malloc(n_in * 4);
    memcpy(in, lat, n_lat * 4);
    if (cfg_on) memcpy(in + n_lat, lat, n_lat * 4);
    cdf_scheduler_scale_model_input(s, 0, in, in, n_in);
    if (memcmp(in, unet_in, n_in * 4) != 0) {
        double e = tu_max_abs_diff_f32(in, unet_in, n_in);
        fail_msg("%s: unet0_input differs (max %.3g)", name, e);
    }
    /* 4. the first step on the guided noise prediction */
    float *mo = malloc(n_lat * 4);
    if (cfg_on)
        tu_guided_f32(unet_out, n_lat, gs, mo);
    else
        memcpy(mo, unet_out, n_lat * 4);
    cdf_sched_step_opts o = {0.0, -1};
    const int needs = cdf_scheduler_step_needs_noise(s, 0, &o);
    assert_int_equal(needs, step_noise != NULL);
    g_n_step_noise += needs;
    float *x = malloc(n_lat * 4);
    memcpy(x, lat, n_lat * 4);
    if (cdf_scheduler_step(s, 0, mo, C, x, batch, C, sp, step_noise, &o, &err)) fail_msg("%s: %s", name, err.msg);
    size_t ndiff = 0;
    long mu = 0;
    double me = 0.0;
    for (size_t k = 0; k < n_lat; k++) {
        if (x[k] != step1[k]) ndiff++;
        long u = ulp_diff(x[k], step1[k]);
        if (u > mu) mu = u;
        double e = fabs((double)x[k] - (double)step1[k]);
        if (e > me) me = e;
    }
    printf("  %-30s %-32s %2d calls: latents_step1 %zu/%zu differ, max %.3g (%ld ulp)\n", name,
           cdf_sched_kind_name(kind), cdf_scheduler_num_timesteps(s), ndiff, n_lat, me, mu);
    if (me > g_max_err) g_max_err = me;
    if (mu > g_max_ulp) g_max_ulp = mu;
    if (mu > 0) fail_msg("%s: latents_step1 is not bit-exact (max %.3g, %ld ulp)", name, me, mu);
    /* batch invariance: each element alone through a fresh scheduler */
    for (int b = 0; b < batch && batch > 1; b++) {
        cdf_scheduler *s1 = NULL;
        assert_int_equal(cdf_scheduler_new(&cfg, &s1, &err), CDF_OK);
        assert_int_equal(cdf_scheduler_set_timesteps(s1, steps, &err), CDF_OK);
        const size_t one = (size_t)C * sp;
        float *x1 = malloc(one * 4);
        memcpy(x1, lat + b * one, one * 4);
        assert_int_equal(cdf_scheduler_step(s1, 0, mo + b * one, C, x1, 1, C, sp, step_noise ? step_noise + b * one : NULL,
                                            &o, &err),
                         CDF_OK);
        assert_memory_equal(x1, x + b * one, one * 4);
        free(x1);
        cdf_scheduler_free(s1);
    }
    free(x);
    free(mo);
    free(in);
    free(noise0);
    free(lat);
    free(unet_in);
    free(unet_out);
    free(step1);
    free(step_noise);
    cdf_scheduler_free(s);
    cdf_sched_config_free(&cfg);
    cJSON_Delete(cj);
}

static void test_sd_cases(void **state) {
    (void)state;
    char *text = tu_read_text(tu_data("sd/manifest.json"));
    assert_non_null(text);
    cJSON *man = cJSON_Parse(text);
    free(text);
    assert_non_null(man);
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, item(man, "cases")) {
        run_case(c->string, item(c, "dir")->valuestring);
        n++;
    }
    printf("  %d cases; latents_step1 max error %.3g (%ld ulp)\n", n, g_max_err, g_max_ulp);
    assert_int_equal(n, N_CASES);
    assert_int_equal(g_n_sigmas, N_WITH_SIGMAS);
    assert_int_equal(g_n_step_noise, N_WITH_STEP_NOISE);
    cJSON_Delete(man);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sd_cases)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
