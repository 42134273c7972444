/* The scheduler side of StableDiffusionImg2ImgPipeline / StableDiffusionInpaintPipeline
 * (diffusers 0.32.2): cdf_scheduler_order, cdf_scheduler_set_begin_index and
 * cdf_scheduler_add_noise.
 *
 * Golden part (tests/data/sd_img2img/cases/<name>/case.json): the strength rule
 * (init_timestep = min(int(N * strength), N), t_start, begin = t_start * order),
 * the full and the sliced timesteps, the sigma table, the initial latents
 * (add_noise(image_latents, noise, timesteps[0]), or noise * init_noise_sigma
 * for inpainting at strength 1), the first UNet input (scale_model_input at the
 * begin index) and the first step (with the 4-channel inpainting blend
 * add_noise(image_latents, noise, timesteps[1]) after it).
 *
 * Synthetic part, for every scheduler kind: set_begin_index(0) changes nothing
 * (bytes); the argument checks; set_timesteps resets the begin index; add_noise
 * formulas, index mapping and aliasing; stateless kinds with begin b step as the
 * full run's index b + i; Heun starts in its first-order state (even and odd
 * begin); LMS's first step uses only the newest derivative with the
 * order-min(b + 1, 4) coefficient; DPM-Solver++ and UniPC start their
 * histories (and lower_order_nums) from zero. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "schedulers/sched_internal.h"
#include "schedulers/scheduler.h"

/* ---------------------------------------------------------------- helpers */

static const cJSON *item(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) fail_msg("missing key '%s'", k);
    return v;
}

/* arrays[name] of the case folder (NULL when absent); *count elements, *rows the first dimension. */
static float *load_array(const char *dir, const cJSON *arrays, const char *name, size_t *count, int *rows) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(arrays, name);
    if (!a) return NULL;
    size_t n = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, item(a, "shape")) n *= (size_t)d->valuedouble;
    float *p = tu_load_bin(tu_data("sd_img2img/%s/%s", dir, item(a, "file")->valuestring), n, 4);
    if (!p) fail_msg("%s: cannot read %s", dir, name);
    *count = n;
    if (rows) *rows = cJSON_GetArrayItem(item(a, "shape"), 0)->valueint;
    return p;
}

static double atol_of(const cJSON *cj, const char *name) {
    return item(item(item(cj, "suggested_tolerance"), name), "atol")->valuedouble;
}

static int has_begin_index(cdf_sched_kind k) {
    return k == CDF_SCHED_EULER || k == CDF_SCHED_EULER_ANCESTRAL || k == CDF_SCHED_LMS || k == CDF_SCHED_HEUN ||
           k == CDF_SCHED_DPMSOLVER_MULTISTEP || k == CDF_SCHED_UNIPC_MULTISTEP;
}

/* ---------------------------------------------------------------- golden cases */

#define N_CASES 12
/* sub-checks of the in-tree cases, counted so that a renamed key cannot skip them */
#define N_ADD_NOISE_INIT 10 /* img2img + inpaint at strength < 1 */
#define N_PURE_NOISE 2      /* inpaint at strength 1 */
#define N_BLEND 2           /* 4-channel inpainting */
#define N_STEP_NOISE 2      /* DDIM eta 0.5, Euler ancestral */
static int g_add_noise, g_pure, g_blend, g_step_noise;
static double g_max_init, g_max_step1;

static void run_case(const char *name, const char *dir) {
    cJSON *cj = tu_load_py_json(tu_data("sd_img2img/%s/case.json", dir));
    if (!cj) fail_msg("%s: cannot read case.json", name);
    const cJSON *call = item(cj, "call"), *sc = item(call, "scheduler"), *res = item(call, "resolved");
    const int inpaint = strcmp(item(call, "pipeline_class")->valuestring, "StableDiffusionInpaintPipeline") == 0;
    if (!inpaint) assert_string_equal(item(call, "pipeline_class")->valuestring, "StableDiffusionImg2ImgPipeline");
    const int unet_in = item(call, "unet_in_channels")->valueint;
    /* scheduler from the case's full config */
    cdf_sched_config cfg;
    cdf_error err = {0};
    if (cdf_sched_config_parse(item(sc, "config"), "case.json call.scheduler.config", &cfg, &err))
        fail_msg("%s: %s", name, err.msg);
    cdf_sched_kind kind;
    assert_int_equal(cdf_sched_kind_from_name(item(sc, "class")->valuestring, &kind, &err), CDF_OK);
    assert_int_equal(cfg.kind, kind);
    cdf_scheduler *s = NULL;
    if (cdf_scheduler_new(&cfg, &s, &err)) fail_msg("%s: %s", name, err.msg);
    /* strength rule */
    const int N = item(res, "num_inference_steps")->valueint;
    const double strength = item(res, "strength")->valuedouble;
    int init_timestep = (int)((double)N * strength);
    if (init_timestep > N) init_timestep = N;
    const int t_start = N - init_timestep > 0 ? N - init_timestep : 0;
    const int order = cdf_scheduler_order(s);
    assert_int_equal(order, item(cj, "scheduler_order")->valueint);
    const int begin = t_start * order;
    const cJSON *rule = item(cj, "strength_rule");
    assert_int_equal(init_timestep, item(rule, "init_timestep")->valueint);
    assert_int_equal(t_start, item(rule, "t_start")->valueint);
    assert_int_equal(begin, item(rule, "slice_from")->valueint);
    const cJSON *bi = item(rule, "begin_index");
    if (has_begin_index(kind)) {
        if (!cJSON_IsNumber(bi)) fail_msg("%s: begin_index should be a number", name);
        assert_int_equal(begin, bi->valueint);
    } else if (!cJSON_IsNull(bi)) {
        fail_msg("%s: %s has no set_begin_index, but begin_index is not null", name, cdf_sched_kind_name(kind));
    }
    /* full list, then the slice */
    if (cdf_scheduler_set_timesteps(s, N, &err)) fail_msg("%s: %s", name, err.msg);
    const cJSON *tf = item(cj, "timesteps_full"), *t;
    assert_int_equal(cdf_scheduler_num_timesteps(s), cJSON_GetArraySize(tf));
    int i = 0;
    cJSON_ArrayForEach(t, tf) {
        if (cdf_scheduler_timestep_value(s, i) != t->valuedouble)
            fail_msg("%s: full timestep %d is %.17g, want %.17g", name, i, cdf_scheduler_timestep_value(s, i),
                     t->valuedouble);
        i++;
    }
    if (cdf_scheduler_set_begin_index(s, begin, &err)) fail_msg("%s: %s", name, err.msg);
    const cJSON *ts = item(cj, "timesteps");
    const int T = cJSON_GetArraySize(ts);
    assert_int_equal(cdf_scheduler_num_timesteps(s), T);
    i = 0;
    cJSON_ArrayForEach(t, ts) {
        if (cdf_scheduler_timestep_value(s, i) != t->valuedouble)
            fail_msg("%s: timestep %d is %.17g, want %.17g", name, i, cdf_scheduler_timestep_value(s, i),
                     t->valuedouble);
        i++;
    }
    assert_true(isnan(cdf_scheduler_timestep_value(s, T)));
    assert_true(cdf_scheduler_timestep_value(s, 0) == item(rule, "latent_timestep")->valuedouble);
    const cJSON *sg = cJSON_GetObjectItemCaseSensitive(cj, "sigmas_full");
    if (sg && cJSON_IsArray(sg) && cJSON_GetArraySize(sg) > 0) {
        int nsig = 0;
        const float *sig = cdf_scheduler_sigmas(s, &nsig);
        assert_int_equal(nsig, cJSON_GetArraySize(sg));
        i = 0;
        cJSON_ArrayForEach(t, sg) {
            if (sig[i] != (float)t->valuedouble) fail_msg("%s: sigma %d is %.9g, want %.9g", name, i, sig[i], t->valuedouble);
            i++;
        }
    }
    const float init_sigma = cdf_scheduler_init_noise_sigma(s);
    assert_true(init_sigma == (float)item(cj, "init_noise_sigma")->valuedouble);
    /* every add_noise call of the reference is at the timestep our call index means: the initial latents at
     * call index 0, the blend after step i at call index i + 1 */
    const cJSON *calls = item(cj, "add_noise_calls");
    const int strength_max = inpaint && strength == 1.0;
    const int blend = inpaint && unet_in == 4;
    {
        int k = 0, first = strength_max ? 1 : 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, calls) {
            const cJSON *tt;
            cJSON_ArrayForEach(tt, item(c, "t")) {
                if (tt->valuedouble != cdf_scheduler_timestep_value(s, k + first))
                    fail_msg("%s: add_noise call %d at t %g, our call index %d is t %g", name, k, tt->valuedouble,
                             k + first, cdf_scheduler_timestep_value(s, k + first));
            }
            k++;
        }
        const int want = (strength_max ? 0 : 1) + (blend ? T - 1 : 0);
        assert_int_equal(k, want);
    }
    /* arrays */
    const cJSON *arrays = item(cj, "arrays");
    size_t n_il = 0, n_noise, n_init, n_in, n_out, n_step1, n_sn = 0, n_mask = 0;
    int e_rows = 0, B = 0, in_rows = 0, out_rows = 0;
    float *il = load_array(dir, arrays, "image_latents", &n_il, &e_rows);
    float *noise = load_array(dir, arrays, "noise", &n_noise, &B);
    float *lat_init = load_array(dir, arrays, "latents_init", &n_init, NULL);
    float *unet_in0 = load_array(dir, arrays, "unet0_input", &n_in, &in_rows);
    float *unet_out = load_array(dir, arrays, "unet0_output", &n_out, &out_rows);
    float *step1 = load_array(dir, arrays, "latents_step1", &n_step1, NULL);
    float *step_noise = load_array(dir, arrays, "step_noise", &n_sn, NULL);
    float *mask = load_array(dir, arrays, "mask_latent", &n_mask, NULL);
    assert_non_null(noise);
    assert_non_null(lat_init);
    assert_non_null(unet_in0);
    assert_non_null(unet_out);
    assert_non_null(step1);
    assert_int_equal(n_init, n_noise);
    assert_int_equal(n_step1, n_noise);
    const size_t per = n_noise / (size_t)B;
    const int C = 4;
    const int64_t sp = (int64_t)per / C;
    /* image latents tiled to B rows (E == 1) */
    float *tiled = NULL;
    if (il) {
        assert_true(e_rows == 1 || e_rows == B);
        assert_int_equal(n_il, (size_t)e_rows * per);
        tiled = malloc(n_noise * 4);
        for (int r = 0; r < B; r++) memcpy(tiled + (size_t)r * per, il + (size_t)(e_rows == 1 ? 0 : r) * per, per * 4);
    }
    /* initial latents */
    float *lat = malloc(n_noise * 4);
    double e_init;
    if (strength_max) {
        for (size_t k = 0; k < n_noise; k++) lat[k] = noise[k] * init_sigma;
        g_pure++;
    } else {
        if (!tiled) fail_msg("%s: image_latents missing", name);
        cdf_scheduler_add_noise(s, 0, tiled, noise, lat, B, (int64_t)per);
        /* in place gives the same bytes */
        float *alias = malloc(n_noise * 4);
        memcpy(alias, tiled, n_noise * 4);
        cdf_scheduler_add_noise(s, 0, alias, noise, alias, B, (int64_t)per);
        assert_memory_equal(alias, lat, n_noise * 4);
        free(alias);
        g_add_noise++;
    }
    e_init = tu_max_abs_diff_f32(lat, lat_init, n_noise);
    if (e_init > g_max_init) g_max_init = e_init;
    if (e_init > atol_of(cj, "latents_init"))
        fail_msg("%s: latents_init max error %.3g > atol %.3g", name, e_init, atol_of(cj, "latents_init"));
    /* first UNet input: the latent channels are scale_model_input(latents) at the begin index */
    const double gs = item(res, "guidance_scale")->valuedouble;
    const int cfg_on = gs > 1.0;
    assert_int_equal(in_rows, cfg_on ? 2 * B : B);
    assert_int_equal(n_in, (size_t)in_rows * unet_in * sp);
    double e_in = 0.0;
    {
        float *row = malloc(per * 4);
        for (int r = 0; r < in_rows; r++) {
            cdf_scheduler_scale_model_input(s, 0, lat_init + (size_t)(r % B) * per, row, per);
            double e = tu_max_abs_diff_f32(row, unet_in0 + (size_t)r * unet_in * sp, per);
            if (e > e_in) e_in = e;
        }
        free(row);
    }
    if (e_in > atol_of(cj, "unet0_input"))
        fail_msg("%s: unet0_input (latent channels) max error %.3g > atol %.3g", name, e_in, atol_of(cj, "unet0_input"));
    /* step 0 on the guided output, from latents_init */
    assert_int_equal(out_rows, cfg_on ? 2 * B : B);
    assert_int_equal(n_out, (size_t)out_rows * per);
    float *mo = malloc(n_noise * 4);
    if (cfg_on)
        tu_guided_f32(unet_out, n_noise, gs, mo);
    else
        memcpy(mo, unet_out, n_noise * 4);
    const cJSON *eta = cJSON_GetObjectItemCaseSensitive(item(call, "kwargs"), "eta");
    cdf_sched_step_opts o = {eta && cJSON_IsNumber(eta) ? eta->valuedouble : 0.0, -1};
    const int needs = cdf_scheduler_step_needs_noise(s, 0, &o);
    assert_int_equal(needs, step_noise != NULL);
    if (step_noise) {
        assert_int_equal(n_sn, (size_t)T * n_noise);
        g_step_noise++;
    }
    float *x = malloc(n_noise * 4);
    memcpy(x, lat_init, n_noise * 4);
    if (cdf_scheduler_step(s, 0, mo, C, x, B, C, sp, step_noise, &o, &err)) fail_msg("%s: %s", name, err.msg);
    if (blend) {
        /* latents = (1 - m) * add_noise(image_latents, noise, timesteps[1]) + m * latents (m: [1,1,h,w]) */
        if (!mask) fail_msg("%s: mask_latent missing", name);
        assert_int_equal(n_mask, (size_t)sp);
        assert_true(T > 1);
        float *proper = malloc(n_noise * 4);
        cdf_scheduler_add_noise(s, 1, tiled, noise, proper, B, (int64_t)per);
        for (size_t k = 0; k < n_noise; k++) {
            const float m = mask[k % (size_t)sp];
            float a = (1.0f - m) * proper[k];
            float b = m * x[k];
            x[k] = a + b;
        }
        free(proper);
        g_blend++;
    }
    double e_step = tu_max_abs_diff_f32(x, step1, n_noise);
    if (e_step > g_max_step1) g_max_step1 = e_step;
    printf("  %-36s %-32s begin %2d, %2d calls: latents_init max err %.3g, unet0_input %.3g, latents_step1 %.3g%s\n",
           name, cdf_sched_kind_name(kind), begin, T, e_init, e_in, e_step, blend ? " (after the blend)" : "");
    if (e_step > atol_of(cj, "latents_step1"))
        fail_msg("%s: latents_step1 max error %.3g > atol %.3g", name, e_step, atol_of(cj, "latents_step1"));
    free(x);
    free(mo);
    free(lat);
    free(tiled);
    free(il);
    free(noise);
    free(lat_init);
    free(unet_in0);
    free(unet_out);
    free(step1);
    free(step_noise);
    free(mask);
    cdf_scheduler_free(s);
    cdf_sched_config_free(&cfg);
    cJSON_Delete(cj);
}

static void test_golden_cases(void **state) {
    (void)state;
    cJSON *man = tu_load_py_json(tu_data("sd_img2img/manifest.json"));
    assert_non_null(man);
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, item(man, "cases")) {
        run_case(c->string, item(c, "dir")->valuestring);
        n++;
    }
    printf("  %d cases: latents_init max error %.3g, latents_step1 max error %.3g\n", n, g_max_init, g_max_step1);
    if (n < N_CASES) fail_msg("only %d golden cases ran, expected %d", n, N_CASES);
    assert_int_equal(g_add_noise, N_ADD_NOISE_INIT);
    assert_int_equal(g_pure, N_PURE_NOISE);
    assert_int_equal(g_blend, N_BLEND);
    assert_int_equal(g_step_noise, N_STEP_NOISE);
    cJSON_Delete(man);
}

/* ---------------------------------------------------------------- synthetic */

typedef struct kind_case {
    const char *label;
    cdf_sched_kind kind;
    const char *field, *value; /* one override, or NULL */
} kind_case;

static const kind_case k_kinds[] = {
    {"ddpm", CDF_SCHED_DDPM, NULL, NULL},
    {"ddim", CDF_SCHED_DDIM, NULL, NULL},
    {"pndm", CDF_SCHED_PNDM, "skip_prk_steps", "true"},
    {"pndm-prk", CDF_SCHED_PNDM, NULL, NULL},
    {"euler", CDF_SCHED_EULER, NULL, NULL},
    {"euler-a", CDF_SCHED_EULER_ANCESTRAL, NULL, NULL},
    {"lms", CDF_SCHED_LMS, NULL, NULL},
    {"heun", CDF_SCHED_HEUN, NULL, NULL},
    {"dpm++2m", CDF_SCHED_DPMSOLVER_MULTISTEP, NULL, NULL},
    {"dpm++2m-karras", CDF_SCHED_DPMSOLVER_MULTISTEP, "use_karras_sigmas", "true"},
    {"unipc", CDF_SCHED_UNIPC_MULTISTEP, NULL, NULL},
    {"unclip", CDF_SCHED_UNCLIP, NULL, NULL},
};
#define N_KINDS ((int)(sizeof k_kinds / sizeof k_kinds[0]))

#define SB 2  /* batch */
#define SC 4  /* channels */
#define SSP 6 /* spatial */
#define SN (SB * SC * SSP)
#define STEPS 10

static cdf_scheduler *make_sched(const kind_case *kc, const char *field2, const char *value2) {
    cdf_sched_config cfg;
    cdf_error err = {0};
    cdf_sched_config_defaults(&cfg, kc->kind);
    if (kc->kind != CDF_SCHED_UNCLIP) {
        /* Stable Diffusion's betas */
        assert_int_equal(cdf_sched_config_set(&cfg, "beta_schedule", "\"scaled_linear\"", &err), CDF_OK);
        assert_int_equal(cdf_sched_config_set(&cfg, "beta_start", "0.00085", &err), CDF_OK);
        assert_int_equal(cdf_sched_config_set(&cfg, "beta_end", "0.012", &err), CDF_OK);
    }
    if (kc->field && cdf_sched_config_set(&cfg, kc->field, kc->value, &err)) fail_msg("%s: %s", kc->label, err.msg);
    if (field2 && cdf_sched_config_set(&cfg, field2, value2, &err)) fail_msg("%s: %s", kc->label, err.msg);
    cdf_scheduler *s = NULL;
    if (cdf_scheduler_new(&cfg, &s, &err)) fail_msg("%s: %s", kc->label, err.msg);
    cdf_sched_config_free(&cfg);
    if (cdf_scheduler_set_timesteps(s, STEPS, &err)) fail_msg("%s: %s", kc->label, err.msg);
    return s;
}

/* Deterministic inputs of step j (model output, noise) and of the start (sample). */
static void inputs(int j, float *mo, float *noise) {
    uint64_t st = 0x5eed0000u + (uint64_t)j * 7919u;
    for (int k = 0; k < SN; k++) mo[k] = tu_uniform_f32(&st, -1.5f, 1.5f);
    for (int k = 0; k < SN; k++) noise[k] = tu_uniform_f32(&st, -2.0f, 2.0f);
}
static void start_sample(float *x, float scale) {
    uint64_t st = 0xabcdef12u;
    for (int k = 0; k < SN; k++) x[k] = tu_uniform_f32(&st, -1.0f, 1.0f) * scale;
}

static const cdf_sched_step_opts k_opts = {0.5, -1}; /* DDIM draws variance noise */

/* Runs calls 0..count-1 of s on x. */
static void run_steps(cdf_scheduler *s, int count, float *x, const char *label) {
    float mo[SN], z[SN];
    cdf_error err = {0};
    for (int i = 0; i < count; i++) {
        inputs(i, mo, z);
        if (cdf_scheduler_step(s, i, mo, SC, x, SB, SC, SSP, z, &k_opts, &err)) fail_msg("%s: %s", label, err.msg);
    }
}

/* set_begin_index(0) is the plain run, byte for byte, for every kind. */
static void test_begin_zero_identical(void **state) {
    (void)state;
    for (int c = 0; c < N_KINDS; c++) {
        const kind_case *kc = &k_kinds[c];
        cdf_scheduler *a = make_sched(kc, NULL, NULL), *b = make_sched(kc, NULL, NULL);
        cdf_error err = {0};
        assert_int_equal(cdf_scheduler_set_begin_index(b, 0, &err), CDF_OK);
        const int n = cdf_scheduler_num_timesteps(a);
        assert_int_equal(cdf_scheduler_num_timesteps(b), n);
        float xa[SN], xb[SN], mo[SN], z[SN], ia[SN], ib[SN], na[SN], nb[SN];
        start_sample(xa, cdf_scheduler_init_noise_sigma(a));
        memcpy(xb, xa, sizeof xa);
        for (int i = 0; i < n; i++) {
            inputs(i, mo, z);
            assert_true(cdf_scheduler_timestep_value(a, i) == cdf_scheduler_timestep_value(b, i));
            assert_true(cdf_scheduler_timestep(a, i) == cdf_scheduler_timestep(b, i));
            assert_int_equal(cdf_scheduler_step_needs_noise(a, i, &k_opts), cdf_scheduler_step_needs_noise(b, i, &k_opts));
            cdf_scheduler_scale_model_input(a, i, xa, ia, SN);
            cdf_scheduler_scale_model_input(b, i, xb, ib, SN);
            assert_memory_equal(ia, ib, sizeof ia);
            cdf_scheduler_add_noise(a, i, mo, z, na, SB, SC * SSP);
            cdf_scheduler_add_noise(b, i, mo, z, nb, SB, SC * SSP);
            assert_memory_equal(na, nb, sizeof na);
            if (cdf_scheduler_step(a, i, mo, SC, xa, SB, SC, SSP, z, &k_opts, &err)) fail_msg("%s: %s", kc->label, err.msg);
            if (cdf_scheduler_step(b, i, mo, SC, xb, SB, SC, SSP, z, &k_opts, &err)) fail_msg("%s: %s", kc->label, err.msg);
            if (memcmp(xa, xb, sizeof xa) != 0) fail_msg("%s: step %d differs with set_begin_index(0)", kc->label, i);
        }
        printf("  %-16s %-32s order %d, %2d calls: begin 0 identical\n", kc->label, cdf_sched_kind_name(kc->kind),
               cdf_scheduler_order(a), n);
        assert_int_equal(cdf_scheduler_order(a), kc->kind == CDF_SCHED_HEUN ? 2 : 1);
        cdf_scheduler_free(a);
        cdf_scheduler_free(b);
    }
}

/* Argument checks, messages, and set_timesteps resetting the begin index. */
static void test_begin_errors(void **state) {
    (void)state;
    for (int c = 0; c < N_KINDS; c++) {
        const kind_case *kc = &k_kinds[c];
        cdf_sched_config cfg;
        cdf_error err = {0};
        cdf_sched_config_defaults(&cfg, kc->kind);
        cdf_scheduler *s = NULL;
        assert_int_equal(cdf_scheduler_new(&cfg, &s, &err), CDF_OK);
        assert_int_equal(cdf_scheduler_set_begin_index(s, 0, &err), CDF_ERR_ARG); /* before set_timesteps */
        assert_int_equal(cdf_scheduler_num_timesteps(s), 0);
        cdf_scheduler_free(s);
        s = make_sched(kc, NULL, NULL);
        const int n = cdf_scheduler_num_timesteps(s);
        char want[64];
        assert_int_equal(cdf_scheduler_set_begin_index(s, n, &err), CDF_ERR_ARG);
        snprintf(want, sizeof want, "begin index %d", n);
        if (!strstr(err.msg, want)) fail_msg("%s: message '%s' does not name %s", kc->label, err.msg, want);
        snprintf(want, sizeof want, "gave %d timesteps", n);
        if (!strstr(err.msg, want)) fail_msg("%s: message '%s' does not name %s", kc->label, err.msg, want);
        assert_int_equal(cdf_scheduler_set_begin_index(s, n + 5, &err), CDF_ERR_ARG);
        assert_int_equal(cdf_scheduler_set_begin_index(s, -1, &err), CDF_ERR_ARG);
        assert_non_null(strstr(err.msg, "-1"));
        assert_int_equal(cdf_scheduler_num_timesteps(s), n); /* unchanged on failure */
        assert_int_equal(cdf_scheduler_set_begin_index(s, n - 1, &err), CDF_OK);
        assert_int_equal(cdf_scheduler_num_timesteps(s), 1);
        assert_int_equal(cdf_scheduler_set_begin_index(s, 3, &err), CDF_OK);
        assert_int_equal(cdf_scheduler_num_timesteps(s), n - 3);
        assert_true(isnan(cdf_scheduler_timestep_value(s, n - 3)));
        assert_true(cdf_scheduler_timestep(s, n - 3) == INT64_MIN);
        assert_true(isnan(cdf_scheduler_timestep_value(s, -1)));
        /* call indices past the remaining list are refused */
        float x[SN], mo[SN], z[SN], out[SN];
        start_sample(x, 1.0f);
        inputs(0, mo, z);
        assert_int_equal(cdf_scheduler_step(s, n - 3, mo, SC, x, SB, SC, SSP, z, &k_opts, &err), CDF_ERR_ARG);
        cdf_scheduler_add_noise(s, n - 3, x, z, out, SB, SC * SSP);
        for (int k = 0; k < SN; k++) assert_true(isnan(out[k]));
        cdf_scheduler_add_noise(s, -1, x, z, out, SB, SC * SSP);
        for (int k = 0; k < SN; k++) assert_true(isnan(out[k]));
        /* after a step the begin index is fixed for this run */
        run_steps(s, 1, x, kc->label);
        assert_int_equal(cdf_scheduler_set_begin_index(s, 0, &err), CDF_ERR_ARG);
        assert_int_equal(cdf_scheduler_num_timesteps(s), n - 3);
        /* set_timesteps resets it */
        assert_int_equal(cdf_scheduler_set_timesteps(s, STEPS, &err), CDF_OK);
        assert_int_equal(cdf_scheduler_num_timesteps(s), n);
        assert_int_equal(cdf_scheduler_set_begin_index(s, 2, &err), CDF_OK);
        assert_int_equal(cdf_scheduler_set_timesteps(s, STEPS, &err), CDF_OK);
        assert_int_equal(cdf_scheduler_num_timesteps(s), n);
        cdf_scheduler_free(s);
        cdf_sched_config_free(&cfg);
    }
}

/* add_noise: the formula per kind at full index begin + i, the mapping, aliasing, batch invariance. */
static void test_add_noise(void **state) {
    (void)state;
    for (int c = 0; c < N_KINDS; c++) {
        const kind_case *kc = &k_kinds[c];
        cdf_scheduler *full = make_sched(kc, NULL, NULL), *s = make_sched(kc, NULL, NULL);
        const int n = cdf_scheduler_num_timesteps(full);
        const int b = n / 2 + (kc->kind == CDF_SCHED_HEUN ? 0 : 1);
        cdf_error err = {0};
        assert_int_equal(cdf_scheduler_set_begin_index(s, b, &err), CDF_OK);
        int nsig = 0;
        const float *sig = cdf_scheduler_sigmas(full, &nsig);
        const float *ac = cdf_scheduler_alphas_cumprod(full);
        for (int i = 0; i < n - b; i++) {
            float x[SN], z[SN], out[SN], ref[SN], want[SN];
            inputs(100 + i, x, z);
            const int j = b + i;
            for (int k = 0; k < SN; k++) {
                switch (kc->kind) {
                case CDF_SCHED_EULER:
                case CDF_SCHED_EULER_ANCESTRAL:
                case CDF_SCHED_LMS:
                case CDF_SCHED_HEUN: {
                    float t = z[k] * sig[j];
                    want[k] = x[k] + t;
                    break;
                }
                case CDF_SCHED_DPMSOLVER_MULTISTEP:
                case CDF_SCHED_UNIPC_MULTISTEP: {
                    float d = sig[j] * sig[j] + 1.0f;
                    float alpha = 1.0f / sqrtf(d);
                    float sigma_t = sig[j] * alpha;
                    float p = alpha * x[k], q = sigma_t * z[k];
                    want[k] = p + q;
                    break;
                }
                default: {
                    const float a = ac[cdf_scheduler_timestep(full, j)];
                    float p = sqrtf(a) * x[k], q = sqrtf(1.0f - a) * z[k];
                    want[k] = p + q;
                    break;
                }
                }
            }
            cdf_scheduler_add_noise(s, i, x, z, out, SB, SC * SSP);
            cdf_scheduler_add_noise(full, j, x, z, ref, SB, SC * SSP);
            if (memcmp(out, want, sizeof out) != 0) fail_msg("%s: add_noise(%d) with begin %d is not the formula", kc->label, i, b);
            assert_memory_equal(out, ref, sizeof out);
            /* one image alone */
            float one[SC * SSP];
            cdf_scheduler_add_noise(s, i, x + SC * SSP, z + SC * SSP, one, 1, SC * SSP);
            assert_memory_equal(one, out + SC * SSP, sizeof one);
            /* out aliasing x */
            cdf_scheduler_add_noise(s, i, x, z, x, SB, SC * SSP);
            assert_memory_equal(x, out, sizeof out);
        }
        cdf_scheduler_free(full);
        cdf_scheduler_free(s);
    }
}

/* Stateless kinds: with begin b, call i is the full run's index b + i (steps, UNet scaling, noise need). */
static void test_begin_shift_stateless(void **state) {
    (void)state;
    const cdf_sched_kind kinds[] = {CDF_SCHED_DDPM, CDF_SCHED_DDIM, CDF_SCHED_EULER, CDF_SCHED_EULER_ANCESTRAL,
                                    CDF_SCHED_UNCLIP};
    for (int c = 0; c < N_KINDS; c++) {
        const kind_case *kc = &k_kinds[c];
        int stateless = 0;
        for (size_t q = 0; q < sizeof kinds / sizeof kinds[0]; q++) stateless |= kinds[q] == kc->kind;
        if (!stateless) continue;
        for (int b = 1; b < STEPS; b += 3) {
            cdf_scheduler *full = make_sched(kc, NULL, NULL), *s = make_sched(kc, NULL, NULL);
            cdf_error err = {0};
            assert_int_equal(cdf_scheduler_set_begin_index(s, b, &err), CDF_OK);
            const int n = cdf_scheduler_num_timesteps(full);
            assert_int_equal(cdf_scheduler_num_timesteps(s), n - b);
            float xa[SN], xb[SN], mo[SN], z[SN], ia[SN], ib[SN];
            start_sample(xa, 3.0f);
            memcpy(xb, xa, sizeof xa);
            for (int i = 0; i < n - b; i++) {
                inputs(i, mo, z);
                assert_true(cdf_scheduler_timestep(s, i) == cdf_scheduler_timestep(full, b + i));
                assert_int_equal(cdf_scheduler_step_needs_noise(s, i, &k_opts),
                                 cdf_scheduler_step_needs_noise(full, b + i, &k_opts));
                cdf_scheduler_scale_model_input(s, i, xa, ia, SN);
                cdf_scheduler_scale_model_input(full, b + i, xb, ib, SN);
                assert_memory_equal(ia, ib, sizeof ia);
                assert_int_equal(cdf_scheduler_step(s, i, mo, SC, xa, SB, SC, SSP, z, &k_opts, &err), CDF_OK);
                assert_int_equal(cdf_scheduler_step(full, b + i, mo, SC, xb, SB, SC, SSP, z, &k_opts, &err), CDF_OK);
                if (memcmp(xa, xb, sizeof xa) != 0) fail_msg("%s begin %d: call %d is not full step %d", kc->label, b, i, b + i);
            }
            cdf_scheduler_free(full);
            cdf_scheduler_free(s);
        }
    }
}

/* Heun after set_begin_index starts in the first-order state (dt None), as diffusers: even begin 2k
 * (the second copy of timestep k, what the pipelines use) steps sigmas[2k] -> sigmas[2k+1], then
 * corrects; odd begin (first copy) steps between the two equal copies (dt 0) and stays out of phase. */
static void test_heun_begin(void **state) {
    (void)state;
    const kind_case *kc = &k_kinds[7];
    assert_int_equal(kc->kind, CDF_SCHED_HEUN);
    for (int b = 1; b <= 8; b++) {
        cdf_scheduler *s = make_sched(kc, NULL, NULL);
        cdf_error err = {0};
        assert_int_equal(cdf_scheduler_set_begin_index(s, b, &err), CDF_OK);
        int nsig = 0;
        const float *sg = cdf_scheduler_sigmas(s, &nsig);
        assert_true(nsig > b + 1);
        float x[SN], x0[SN], mo[SN], z[SN], d1[SN], want[SN];
        start_sample(x, 4.0f);
        memcpy(x0, x, sizeof x);
        /* call 0: first order from sigmas[b] to sigmas[b + 1] (epsilon prediction) */
        inputs(0, mo, z);
        const float sigma = sg[b], next = sg[b + 1];
        const float dt = next - sigma;
        for (int k = 0; k < SN; k++) {
            float t = sigma * mo[k];
            float p = x[k] - t;
            float d = x[k] - p;
            d1[k] = d / sigma;
            float u = d1[k] * dt;
            want[k] = x[k] + u;
        }
        assert_int_equal(cdf_scheduler_step(s, 0, mo, SC, x, SB, SC, SSP, NULL, NULL, &err), CDF_OK);
        if (memcmp(x, want, sizeof x) != 0) fail_msg("heun begin %d: call 0 is not the first-order step", b);
        if (b % 2) assert_true(dt == 0.0f); /* odd begin: the two copies of one sigma */
        /* call 1: the correction with sigma_next = sigmas[b + 1] */
        inputs(1, mo, z);
        for (int k = 0; k < SN; k++) {
            float t = next * mo[k];
            float p = x[k] - t;
            float d = x[k] - p;
            d = d / next;
            float dd = d1[k] + d;
            dd = dd / 2.0f;
            float u = dd * dt;
            want[k] = x0[k] + u;
        }
        assert_int_equal(cdf_scheduler_step(s, 1, mo, SC, x, SB, SC, SSP, NULL, NULL, &err), CDF_OK);
        if (memcmp(x, want, sizeof x) != 0) fail_msg("heun begin %d: call 1 is not the second-order correction", b);
        cdf_scheduler_free(s);
    }
}

/* LMS after set_begin_index(b): step_index b, one derivative: prev = x + coeff * d with the
 * coefficient of order min(b + 1, 4) for the newest point (diffusers zips the longer coefficient
 * list with the one derivative it has). */
static void test_lms_begin(void **state) {
    (void)state;
    const kind_case *kc = &k_kinds[6];
    assert_int_equal(kc->kind, CDF_SCHED_LMS);
    for (int b = 0; b < STEPS; b++) {
        cdf_scheduler *s = make_sched(kc, NULL, NULL);
        cdf_error err = {0};
        assert_int_equal(cdf_scheduler_set_begin_index(s, b, &err), CDF_OK);
        int nsig = 0;
        const float *sg = cdf_scheduler_sigmas(s, &nsig);
        const int order = b + 1 < 4 ? b + 1 : 4;
        const float coeff = (float)cdf_lms_coefficient(sg, order, b, 0);
        float x[SN], mo[SN], z[SN], want[SN];
        start_sample(x, 5.0f);
        inputs(0, mo, z);
        for (int k = 0; k < SN; k++) {
            float t = sg[b] * mo[k];
            float p = x[k] - t;
            float d = x[k] - p;
            d = d / sg[b];
            float a = coeff * d;
            a = a + 0.0f;
            want[k] = x[k] + a;
        }
        assert_int_equal(cdf_scheduler_step(s, 0, mo, SC, x, SB, SC, SSP, NULL, NULL, &err), CDF_OK);
        if (memcmp(x, want, sizeof x) != 0) fail_msg("lms begin %d: first step", b);
        /* the rest of the run goes through */
        for (int i = 1; i < cdf_scheduler_num_timesteps(s); i++) {
            inputs(i, mo, z);
            assert_int_equal(cdf_scheduler_step(s, i, mo, SC, x, SB, SC, SSP, NULL, NULL, &err), CDF_OK);
        }
        for (int k = 0; k < SN; k++) assert_true(isfinite(x[k]));
        cdf_scheduler_free(s);
    }
}

/* DPM-Solver++ 2M (plain and Karras) and UniPC-bh2 order 2 with begin b: the first call is first
 * order with empty histories (lower_order_nums 0), i.e. the full run's step b of a solver_order 1
 * scheduler (UniPC: with the corrector off there) whatever came before it. */
static void test_multistep_begin(void **state) {
    (void)state;
    for (int c = 0; c < N_KINDS; c++) {
        const kind_case *kc = &k_kinds[c];
        if (kc->kind != CDF_SCHED_DPMSOLVER_MULTISTEP && kc->kind != CDF_SCHED_UNIPC_MULTISTEP) continue;
        for (int b = 1; b < STEPS - 1; b += 2) {
            cdf_scheduler *s = make_sched(kc, NULL, NULL);
            cdf_scheduler *o1;
            char dc[32];
            snprintf(dc, sizeof dc, "[%d]", b - 1);
            if (kc->kind == CDF_SCHED_UNIPC_MULTISTEP) {
                /* solver_order 1 and the corrector off at step b */
                cdf_sched_config cfg;
                cdf_error e2 = {0};
                cdf_sched_config_defaults(&cfg, kc->kind);
                assert_int_equal(cdf_sched_config_set(&cfg, "beta_schedule", "\"scaled_linear\"", &e2), CDF_OK);
                assert_int_equal(cdf_sched_config_set(&cfg, "beta_start", "0.00085", &e2), CDF_OK);
                assert_int_equal(cdf_sched_config_set(&cfg, "beta_end", "0.012", &e2), CDF_OK);
                assert_int_equal(cdf_sched_config_set(&cfg, "solver_order", "1", &e2), CDF_OK);
                if (cdf_sched_config_set(&cfg, "disable_corrector", dc, &e2)) fail_msg("%s", e2.msg);
                assert_int_equal(cdf_scheduler_new(&cfg, &o1, &e2), CDF_OK);
                assert_int_equal(cdf_scheduler_set_timesteps(o1, STEPS, &e2), CDF_OK);
                cdf_sched_config_free(&cfg);
            } else {
                o1 = make_sched(kc, "solver_order", "1");
            }
            cdf_error err = {0};
            assert_int_equal(cdf_scheduler_set_begin_index(s, b, &err), CDF_OK);
            float scratch[SN], x[SN], y[SN], mo[SN], z[SN];
            start_sample(scratch, 2.0f);
            run_steps(o1, b, scratch, kc->label); /* calls 0..b-1: only fill the history */
            start_sample(x, 2.0f);
            memcpy(y, x, sizeof x);
            inputs(0, mo, z);
            assert_int_equal(cdf_scheduler_step(s, 0, mo, SC, x, SB, SC, SSP, NULL, NULL, &err), CDF_OK);
            assert_int_equal(cdf_scheduler_step(o1, b, mo, SC, y, SB, SC, SSP, NULL, NULL, &err), CDF_OK);
            if (memcmp(x, y, sizeof x) != 0) fail_msg("%s begin %d: the first call is not first order at sigma %d", kc->label, b, b);
            /* the rest of the run goes through (second order from call 1, lower_order_final at the end) */
            for (int i = 1; i < cdf_scheduler_num_timesteps(s); i++) {
                inputs(i, mo, z);
                assert_int_equal(cdf_scheduler_step(s, i, mo, SC, x, SB, SC, SSP, NULL, NULL, &err), CDF_OK);
            }
            for (int k = 0; k < SN; k++) assert_true(isfinite(x[k]));
            cdf_scheduler_free(s);
            cdf_scheduler_free(o1);
        }
    }
}

/* PNDM's _get_prev_sample(x, t, prev, m) in float32 as pndm.c / diffusers (prev < 0: alphas_cumprod[0],
 * set_alpha_to_one being false by default). */
static void pndm_prev(const float *ac, int64_t t, int64_t prev, const float *x, const float *m, float *out) {
    const float a_t = ac[t], a_p = prev >= 0 ? ac[prev] : ac[0];
    const float b_t = 1.0f - a_t, b_p = 1.0f - a_p;
    const float sc = sqrtf(a_p / a_t);
    float q = a_t * b_t;
    q = q * a_p;
    float den = a_t * sqrtf(b_p);
    den = den + sqrtf(q);
    const float diff = a_p - a_t;
    for (int k = 0; k < SN; k++) {
        float u = sc * x[k];
        float v = diff * m[k];
        v = v / den;
        out[k] = u - v;
    }
}

/* PNDM (PLMS) on the sliced list, as diffusers' pipeline feeds it: the counter and ets start from
 * zero, so the first call is PLMS's first warm-up half (the model output as is, t -> t - T/N) and the
 * second the re-evaluation: (m1 + m0) / 2 applied to the first call's input sample, from the second
 * entry's value + T/N to the second entry's value (for the sliced [.., 701, 601, ..] that is
 * 701 -> 601; for a slice starting at the repeated 801 it is 901 -> 801). */
static void test_pndm_begin(void **state) {
    (void)state;
    const kind_case *kc = &k_kinds[2];
    assert_int_equal(kc->kind, CDF_SCHED_PNDM);
    const int64_t stride = 1000 / STEPS;
    for (int b = 1; b < STEPS; b++) {
        cdf_scheduler *s = make_sched(kc, NULL, NULL);
        cdf_error err = {0};
        assert_int_equal(cdf_scheduler_set_begin_index(s, b, &err), CDF_OK);
        assert_true(cdf_scheduler_num_timesteps(s) >= 2);
        const int64_t t = cdf_scheduler_timestep(s, 0), tn = cdf_scheduler_timestep(s, 1);
        const float *ac = cdf_scheduler_alphas_cumprod(s);
        float x[SN], x0[SN], mo[SN], mo1[SN], m[SN], z[SN], want[SN];
        start_sample(x, 1.0f);
        memcpy(x0, x, sizeof x);
        inputs(0, mo, z);
        pndm_prev(ac, t, t - stride, x0, mo, want);
        assert_int_equal(cdf_scheduler_step(s, 0, mo, SC, x, SB, SC, SSP, NULL, NULL, &err), CDF_OK);
        if (memcmp(x, want, sizeof x) != 0) fail_msg("pndm begin %d: the first call is not PLMS's first", b);
        inputs(1, mo1, z);
        for (int k = 0; k < SN; k++) {
            float a = mo1[k] + mo[k];
            m[k] = a / 2.0f;
        }
        pndm_prev(ac, tn + stride, tn, x0, m, want);
        assert_int_equal(cdf_scheduler_step(s, 1, mo1, SC, x, SB, SC, SSP, NULL, NULL, &err), CDF_OK);
        if (memcmp(x, want, sizeof x) != 0) fail_msg("pndm begin %d: the second call is not PLMS's re-evaluation", b);
        cdf_scheduler_free(s);
    }
}

/* ---------------------------------------------------------------- Python reference runs */

/* tests/data/sched_img2img (gen.py beside it): LMS, Heun, DPM-Solver++ 2M, UniPC (and Euler) converted
 * from SD-1.5's config, set_begin_index(t_start * order), the whole remaining run on seeded inputs:
 * add_noise before the first step, scale_model_input and the latents after every call, add_noise of
 * timesteps[1] after call 0 (the blend).  All bit-exact. */
#define N_REF_CASES 10

static float *ref_array(const cJSON *c, const char *key, size_t want) {
    const cJSON *a = item(c, key);
    size_t n = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, item(a, "shape")) n *= (size_t)d->valuedouble;
    assert_int_equal(n, want);
    float *p = tu_load_bin(tu_data("sched_img2img/%s", item(a, "file")->valuestring), n, 4);
    if (!p) fail_msg("cannot read %s", item(a, "file")->valuestring);
    return p;
}

static void test_python_reference(void **state) {
    (void)state;
    cJSON *man = tu_load_py_json(tu_data("sched_img2img/manifest.json"));
    assert_non_null(man);
    cJSON *root = tu_load_py_json(tu_data("sd/pipelines/tiny-sd15-a/scheduler/scheduler_config.json"));
    assert_non_null(root);
    const cJSON *shape = item(man, "shape");
    const int B = cJSON_GetArrayItem(shape, 0)->valueint, C = cJSON_GetArrayItem(shape, 1)->valueint;
    const int64_t sp = (int64_t)cJSON_GetArrayItem(shape, 2)->valueint * cJSON_GetArrayItem(shape, 3)->valueint;
    const size_t per = (size_t)C * (size_t)sp, n = (size_t)B * per;
    int ncases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, item(man, "cases")) {
        const char *name = c->string;
        cdf_sched_config cfg;
        cdf_error err = {0};
        if (cdf_sched_config_parse(root, "scheduler_config.json", &cfg, &err)) fail_msg("%s: %s", name, err.msg);
        cdf_sched_kind kind;
        assert_int_equal(cdf_sched_kind_from_name(item(c, "class")->valuestring, &kind, &err), CDF_OK);
        if (cdf_sched_config_convert(&cfg, kind, &err)) fail_msg("%s: %s", name, err.msg);
        const cJSON *ov;
        cJSON_ArrayForEach(ov, item(c, "from_config_overrides")) {
            char *v = cJSON_PrintUnformatted(ov);
            if (cdf_sched_config_set(&cfg, ov->string, v, &err)) fail_msg("%s: %s", name, err.msg);
            cJSON_free(v);
        }
        cdf_scheduler *s = NULL;
        if (cdf_scheduler_new(&cfg, &s, &err)) fail_msg("%s: %s", name, err.msg);
        const int N = item(c, "num_inference_steps")->valueint;
        const double strength = item(c, "strength")->valuedouble;
        int init_timestep = (int)((double)N * strength);
        if (init_timestep > N) init_timestep = N;
        const int t_start = N - init_timestep > 0 ? N - init_timestep : 0;
        const int begin = t_start * cdf_scheduler_order(s);
        assert_int_equal(cdf_scheduler_order(s), item(c, "order")->valueint);
        assert_int_equal(begin, item(c, "begin")->valueint);
        if (cdf_scheduler_set_timesteps(s, N, &err)) fail_msg("%s: %s", name, err.msg);
        assert_int_equal(cdf_scheduler_num_timesteps(s), cJSON_GetArraySize(item(c, "timesteps_full")));
        if (cdf_scheduler_set_begin_index(s, begin, &err)) fail_msg("%s: %s", name, err.msg);
        const int T = cdf_scheduler_num_timesteps(s);
        assert_int_equal(T, cJSON_GetArraySize(item(c, "timesteps")));
        int i = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, item(c, "timesteps")) {
            if (cdf_scheduler_timestep_value(s, i) != t->valuedouble)
                fail_msg("%s: timestep %d is %.17g, want %.17g", name, i, cdf_scheduler_timestep_value(s, i), t->valuedouble);
            i++;
        }
        float *x0 = ref_array(c, "x0", n), *noise = ref_array(c, "noise", n), *init = ref_array(c, "init", n);
        float *model = ref_array(c, "model", (size_t)T * n), *scaled = ref_array(c, "scaled", (size_t)T * n);
        float *latents = ref_array(c, "latents", (size_t)T * n), *blend1 = ref_array(c, "blend1", n);
        float *x = malloc(n * 4), *in = malloc(n * 4), *bl = malloc(n * 4);
        cdf_scheduler_add_noise(s, 0, x0, noise, x, B, (int64_t)per);
        double e_init = tu_max_abs_diff_f32(x, init, n), e_scaled = 0.0, e_lat = 0.0, e_blend = 0.0;
        memcpy(x, init, n * 4);
        for (i = 0; i < T; i++) {
            cdf_scheduler_scale_model_input(s, i, x, in, n);
            double e = tu_max_abs_diff_f32(in, scaled + (size_t)i * n, n);
            if (e > e_scaled) e_scaled = e;
            if (cdf_scheduler_step(s, i, model + (size_t)i * n, C, x, B, C, sp, NULL, NULL, &err))
                fail_msg("%s: %s", name, err.msg);
            e = tu_max_abs_diff_f32(x, latents + (size_t)i * n, n);
            if (e > e_lat) e_lat = e;
            if (i == 0) {
                cdf_scheduler_add_noise(s, 1, x0, noise, bl, B, (int64_t)per);
                e_blend = tu_max_abs_diff_f32(bl, blend1, n);
            }
            memcpy(x, latents + (size_t)i * n, n * 4); /* each call from the reference's previous latents */
        }
        printf("  %-22s %-30s begin %2d, %2d calls: add_noise %.3g, scale_model_input %.3g, steps %.3g, blend %.3g\n",
               name, cdf_sched_kind_name(kind), begin, T, e_init, e_scaled, e_lat, e_blend);
        if (e_init != 0.0 || e_scaled != 0.0 || e_lat != 0.0 || e_blend != 0.0)
            fail_msg("%s: not bit-exact against diffusers", name);
        free(x);
        free(in);
        free(bl);
        free(x0);
        free(noise);
        free(init);
        free(model);
        free(scaled);
        free(latents);
        free(blend1);
        cdf_scheduler_free(s);
        cdf_sched_config_free(&cfg);
        ncases++;
    }
    if (ncases < N_REF_CASES) fail_msg("only %d reference cases ran, expected %d", ncases, N_REF_CASES);
    cJSON_Delete(root);
    cJSON_Delete(man);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_cases),          cmocka_unit_test(test_begin_zero_identical),
        cmocka_unit_test(test_begin_errors),          cmocka_unit_test(test_add_noise),
        cmocka_unit_test(test_begin_shift_stateless), cmocka_unit_test(test_heun_begin),
        cmocka_unit_test(test_lms_begin),             cmocka_unit_test(test_multistep_begin),
        cmocka_unit_test(test_pndm_begin),            cmocka_unit_test(test_python_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
