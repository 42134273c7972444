/* StableDiffusionImg2ImgPipeline and StableDiffusionInpaintPipeline on every
 * golden case of tests/data/sd_img2img (img2img; inpainting with the
 * 9-channel inpainting UNet and with a regular UNet's blend): the picture
 * preprocessing, the binarized mask, the masked picture and the latent mask
 * exact, the encoder's sampled and scaled latents, the latents noise
 * bit-exact, the latents after every step, the image, all within the case
 * tolerances; 1 and 2 threads the same bytes; image k of an img2img
 * generator-list batch made alone is bit-identical; bad arguments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "io/png.h"
#include "models/vae.h"
#include "pipelines/pipeline_internal.h"
#include "sd_case.h"
#include "tensor/exec.h"

#define N_CASES 12

typedef struct capture {
    float *noise;      /* [B, 4, h, w]: step -1 */
    float *all_steps;  /* [T, B, 4, h, w] */
    size_t per;        /* B * 4 * h * w */
    int T, bad;
} capture;

static int observe(const cdf_step_info *si, void *user) {
    capture *c = user;
    size_t n = (size_t)si->batch * si->channels * si->height * si->width;
    if (n != c->per || si->step >= c->T) {
        c->bad = 1;
        return 1;
    }
    memcpy(si->step < 0 ? c->noise : c->all_steps + (size_t)si->step * n, si->latents, n * sizeof(float));
    return 0;
}

typedef struct i2i_call {
    const char *prompts[8], *negs[8];
    size_t nprompts, nnegs;
    char seeds[8][32];
    int nseeds, list;
    char *sched_json; /* the case's scheduler config (cdf_free) */
    cdf_image pic, mask_pic;
    unsigned char *luma; /* the mask as PIL's convert("L") gives it */
    cdf_tensor init, mask;
    cdf_generate_options o;
} i2i_call;

static void read_call(const char *dir, const cJSON *c, i2i_call *k) {
    memset(k, 0, sizeof *k);
    const cJSON *call = cJSON_GetObjectItem(c, "call"), *kw = cJSON_GetObjectItem(call, "kwargs"), *it, *v;
    const cJSON *pr = cJSON_GetObjectItem(call, "prompt");
    if (cJSON_IsString(pr)) k->prompts[k->nprompts++] = pr->valuestring;
    else cJSON_ArrayForEach(it, pr) k->prompts[k->nprompts++] = it->valuestring;
    const cJSON *neg = cJSON_GetObjectItem(kw, "negative_prompt");
    if (cJSON_IsString(neg)) k->negs[k->nnegs++] = neg->valuestring;
    else if (cJSON_IsArray(neg)) cJSON_ArrayForEach(it, neg) k->negs[k->nnegs++] = it->valuestring;
    const cJSON *g = cJSON_GetObjectItem(call, "generator"), *seeds = cJSON_GetObjectItem(g, "seeds");
    k->list = cJSON_IsTrue(cJSON_GetObjectItem(g, "list"));
    if (cJSON_IsArray(seeds)) cJSON_ArrayForEach(it, seeds) snprintf(k->seeds[k->nseeds++], 32, "%.0f", it->valuedouble);
    else snprintf(k->seeds[k->nseeds++], 32, "%.0f", seeds->valuedouble);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, cJSON_GetObjectItem(call, "init_image")->valuestring);
    cdf_error err = {0};
    if (cdf_png_read(path, &k->pic, &err)) fail_msg("%s", err.msg);
    assert_int_equal(k->pic.channels, 3);
    k->init.dtype = CDF_U8;
    k->init.ndim = 3;
    k->init.shape[0] = k->pic.height, k->init.shape[1] = k->pic.width, k->init.shape[2] = 3;
    k->init.data = k->pic.pixels;
    const cJSON *mk = cJSON_GetObjectItem(call, "mask_image");
    if (cJSON_IsString(mk)) {
        snprintf(path, sizeof path, "%s/%s", dir, mk->valuestring);
        if (cdf_png_read(path, &k->mask_pic, &err)) fail_msg("%s", err.msg); /* grey, read as RGB */
        k->luma = malloc((size_t)k->mask_pic.width * k->mask_pic.height);
        cdf_image_to_luma(&k->mask_pic, k->luma);
        k->mask.dtype = CDF_U8;
        k->mask.ndim = 2;
        k->mask.shape[0] = k->mask_pic.height, k->mask.shape[1] = k->mask_pic.width;
        k->mask.data = k->luma;
    }
    /* the case's scheduler: its class from the folder's config with the case's overrides */
    const cJSON *sch = cJSON_GetObjectItem(call, "scheduler"), *ov = cJSON_GetObjectItem(sch, "from_config_overrides");
    char *base = cJSON_PrintUnformatted(cJSON_GetObjectItem(sch, "config"));
    const char *keys[8], *vals[8];
    char *texts[8];
    size_t nov = 0;
    cJSON_ArrayForEach(it, ov) {
        keys[nov] = it->string;
        vals[nov] = texts[nov] = cJSON_PrintUnformatted(it);
        nov++;
    }
    if (cdf_scheduler_config_from(base, cJSON_GetObjectItem(sch, "class")->valuestring, keys, vals, nov,
                                  &k->sched_json, &err))
        fail_msg("%s", err.msg);
    for (size_t i = 0; i < nov; i++) cJSON_free(texts[i]);
    cJSON_free(base);
    cdf_generate_options *o = &k->o;
    cdf_generate_options_init(o);
    o->threads = 2;
    o->prompts = k->prompts;
    o->num_prompts = k->nprompts;
    o->negative_prompts = k->nnegs ? k->negs : NULL;
    o->num_negative_prompts = k->nnegs;
    o->scheduler_config = k->sched_json;
    o->init_image = &k->init;
    o->mask_image = k->mask.data ? &k->mask : NULL;
    if ((v = cJSON_GetObjectItem(kw, "strength"))) o->strength = v->valuedouble;
    if ((v = cJSON_GetObjectItem(kw, "num_inference_steps"))) o->num_inference_steps = v->valueint;
    if ((v = cJSON_GetObjectItem(kw, "guidance_scale"))) o->guidance_scale = v->valuedouble;
    if ((v = cJSON_GetObjectItem(kw, "eta"))) o->eta = v->valuedouble;
    if ((v = cJSON_GetObjectItem(kw, "num_images_per_prompt"))) o->num_images_per_prompt = v->valueint;
}

static void call_free(i2i_call *k) {
    cdf_free(k->sched_json);
    cdf_image_free(&k->pic);
    cdf_image_free(&k->mask_pic);
    free(k->luma);
}

/* Images [first, first+count) of the case (count 0: all), with the case's generators. */
static cdf_status run(cdf_pipeline *p, const i2i_call *k, int first, int count, int threads, capture *cap,
                      cdf_tensor *img) {
    cdf_generate_options o = k->o;
    o.threads = threads;
    cdf_error err = {0};
    cdf_generator *gens[8] = {0};
    int ng = k->list ? k->nseeds : 1, g0 = 0;
    if (count) {
        int nipp = o.num_images_per_prompt ? o.num_images_per_prompt : 1;
        o.prompts = &k->prompts[first / nipp];
        o.num_prompts = 1;
        o.negative_prompts = k->nnegs ? &k->negs[first / nipp] : NULL;
        o.num_negative_prompts = k->nnegs ? 1 : 0;
        o.num_images_per_prompt = 1;
        ng = 1;
        g0 = first;
    }
    for (int i = 0; i < ng; i++) assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY, k->seeds[g0 + i], &gens[i], &err), 0);
    o.on_step = cap ? observe : NULL;
    o.on_step_user = cap;
    cdf_status s = cdf_pipeline_generate(p, &o, gens, (size_t)ng, img, NULL);
    if (s) fprintf(stderr, "generate: %s\n", cdf_pipeline_last_error(p));
    for (int i = 0; i < ng; i++) cdf_generator_free(gens[i]);
    return s;
}

static int over(const char *name, const char *key, const float *got, const float *ref, size_t n, double tol) {
    double e = tu_max_abs_diff_f32(got, ref, n);
    printf("%-36s %-14s max err %.2e (tol %.1e)\n", name, key, e, tol);
    return e > tol;
}

static void golden(void **state) {
    const char *dir = *state, *name = strrchr(dir, '/') + 1;
    cJSON *c = sd_case_json(dir);
    assert_non_null(c);
    i2i_call k;
    read_call(dir, c, &k);
    cdf_error err = {0};
    cdf_pipeline *p = NULL;
    if (cdf_pipeline_load(case_pipeline_in("sd_img2img", c), NULL, &p, &err)) fail_msg("%s", err.msg);
    size_t nimg, nnoise, nsteps, npre, nlat;
    float *want_img = sd_case_array(dir, c, "image", &nimg), *want_noise = sd_case_array(dir, c, "noise", &nnoise);
    float *want_steps = sd_case_array(dir, c, "latents_all_steps", &nsteps);
    float *want_pre = sd_case_array(dir, c, "image_pre", &npre), *want_lat = NULL;
    nlat = 0;
    if (cJSON_GetObjectItem(cJSON_GetObjectItem(c, "arrays"), "enc_init_noise"))
        want_lat = sd_case_array(dir, c, "image_latents", &nlat);
    int T = sd_case_dim(c, "latents_all_steps", 0), B = sd_case_dim(c, "noise", 0);
    int H = sd_case_dim(c, "image_pre", 2), W = sd_case_dim(c, "image_pre", 3);
    int bad = 0;
    /* preprocessing: exact */
    float *pre = malloc(npre * sizeof(float));
    cdf_sd_picture_to_input(&k.init, pre);
    bad |= memcmp(pre, want_pre, npre * sizeof(float)) != 0;
    printf("%-36s %-14s %s\n", name, "image_pre", bad ? "DIFFERS" : "exact");
    /* inpainting: the binarized mask's masked picture and latent mask, exact */
    if (k.mask.data) {
        size_t nm, nml;
        float *want_masked = sd_case_array(dir, c, "masked_image", &nm), *want_ml = sd_case_array(dir, c, "mask_latent", &nml);
        float *masked = malloc(nm * sizeof(float)), *ml = malloc(nml * sizeof(float));
        cdf_sd_mask_prepare(&k.mask, pre, H, W, 8, masked, ml);
        int same = !memcmp(masked, want_masked, nm * sizeof(float)) && !memcmp(ml, want_ml, nml * sizeof(float));
        printf("%-36s %-14s %s\n", name, "mask", same ? "exact" : "DIFFERS");
        bad |= !same;
        free(masked), free(ml), free(want_masked), free(want_ml);
    }
    /* the encoder's sampled latents, E rows (one per generator of an img2img list, else one) */
    if (cJSON_GetObjectItem(cJSON_GetObjectItem(c, "arrays"), "enc_init_noise")) {
        cdf_exec ex;
        cdf_exec_init(&ex, 2, &err);
        int E = (int)(nlat / (nnoise / (size_t)B));
        cdf_generator *g[8] = {0};
        for (int i = 0; i < E; i++) assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY, k.seeds[i], &g[i], &err), 0);
        float *lat = malloc(nlat * sizeof(float));
        cdf_vae *v = NULL;
        char vdir[4096];
        snprintf(vdir, sizeof vdir, "%s/vae", case_pipeline_in("sd_img2img", c));
        assert_int_equal(cdf_vae_load(vdir, NULL, &v, &err), CDF_OK);
        assert_int_equal(cdf_sd_encode_sample(&ex, v, pre, H, W, g, E, lat, &err), CDF_OK);
        bad |= over(name, "image_latents", lat, want_lat, nlat, sd_case_atol(c, "image_latents"));
        cdf_vae_free(v);
        for (int i = 0; i < E; i++) cdf_generator_free(g[i]);
        free(lat);
        cdf_exec_release(&ex);
    }
    capture cap = {calloc(nnoise, sizeof(float)), calloc(nsteps, sizeof(float)), nnoise, T, 0};
    cdf_tensor img;
    assert_int_equal(run(p, &k, 0, 0, 2, &cap, &img), CDF_OK);
    assert_false(cap.bad);
    bad |= memcmp(cap.noise, want_noise, nnoise * sizeof(float)) != 0;
    printf("%-36s %-14s %s\n", name, "noise", memcmp(cap.noise, want_noise, nnoise * sizeof(float)) ? "DIFFERS" : "exact");
    bad |= over(name, "latents_step1", cap.all_steps, want_steps, nnoise, sd_case_atol(c, "latents_step1"));
    bad |= over(name, "latents_final", cap.all_steps + (size_t)(T - 1) * nnoise, want_steps + (size_t)(T - 1) * nnoise,
                nnoise, sd_case_atol(c, "latents_final"));
    assert_int_equal((size_t)cdf_tensor_numel(&img), nimg);
    bad |= over(name, "image", img.data, want_img, nimg, sd_case_atol(c, "image"));
    /* 1 thread: the same bytes; image 1 of a generator list alone: the same bytes */
    cdf_tensor one;
    assert_int_equal(run(p, &k, 0, 0, 1, NULL, &one), CDF_OK);
    bad |= memcmp(one.data, img.data, nimg * sizeof(float)) != 0;
    cdf_tensor_free(&one);
    if (k.list && B > 1 && !k.mask.data) { /* inpainting encodes with generator 0 for every image */
        assert_int_equal(run(p, &k, 1, 1, 2, NULL, &one), CDF_OK);
        size_t per = nimg / (size_t)B;
        int same = memcmp(one.data, (float *)img.data + per, per * sizeof(float)) == 0;
        printf("%-36s %-14s %s\n", name, "image 1 alone", same ? "same bytes" : "DIFFERS");
        bad |= !same;
        cdf_tensor_free(&one);
    }
    cdf_tensor_free(&img);
    free(pre);
    free(cap.noise);
    free(cap.all_steps);
    free(want_img);
    free(want_noise);
    free(want_steps);
    free(want_pre);
    free(want_lat);
    call_free(&k);
    cdf_pipeline_free(p);
    cJSON_Delete(c);
    assert_false(bad);
}

/* Bad arguments: one clear message each, no output. */
static void bad_args(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_pipeline *p = NULL, *u = NULL;
    assert_int_equal(cdf_pipeline_load(tu_data("sd/pipelines/tiny-sd15-a"), NULL, &p, &err), CDF_OK);
    assert_int_equal(cdf_pipeline_load(tu_data("ddpm/models/tiny_cifar"), NULL, &u, &err), CDF_OK);
    unsigned char px[24 * 16 * 3] = {0};
    cdf_tensor pic = {CDF_U8, 3, {16, 24, 3}, px};
    const char *prompt = "a cat";
    cdf_generator *g = NULL;
    assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY, "0", &g, &err), CDF_OK);
    struct {
        const char *what, *needle;
        double strength;
        int steps, h, w;
        cdf_tensor pic;
    } cases[] = {
        {"strength 0", "strength", 0.0, 4, 0, 0, pic},
        {"strength 1.5", "strength", 1.5, 4, 0, 0, pic},
        {"strength 0.1 of 4 steps", "leaves no step", 0.1, 4, 0, 0, pic},
        {"height differs", "differs from the init_image", 0.5, 4, 32, 0, pic},
        {"width not a multiple of 8", "multiples of 8", 0.5, 4, 0, 0, {CDF_U8, 3, {16, 20, 3}, px}},
        {"RGBA", "RGB", 0.5, 4, 0, 0, {CDF_U8, 3, {16, 16, 4}, px}},
        {"float picture", "uint8", 0.5, 4, 0, 0, {CDF_F32, 3, {16, 16, 3}, px}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cdf_generate_options o;
        cdf_generate_options_init(&o);
        o.prompts = &prompt;
        o.num_prompts = 1;
        o.init_image = &cases[i].pic;
        o.strength = cases[i].strength;
        o.num_inference_steps = cases[i].steps;
        o.height = cases[i].h;
        o.width = cases[i].w;
        cdf_tensor img;
        assert_int_equal(cdf_pipeline_generate(p, &o, &g, 1, &img, NULL), CDF_ERR_ARG);
        printf("%-28s %s\n", cases[i].what, cdf_pipeline_last_error(p));
        assert_non_null(strstr(cdf_pipeline_last_error(p), cases[i].needle));
        assert_null(img.data);
    }
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.prompts = &prompt;
    o.num_prompts = 1;
    o.strength = 0.5; /* without a picture */
    cdf_tensor img;
    assert_int_equal(cdf_pipeline_generate(p, &o, &g, 1, &img, NULL), CDF_ERR_ARG);
    assert_non_null(strstr(cdf_pipeline_last_error(p), "init_image"));
    cdf_generate_options_init(&o);
    o.init_image = &pic; /* DDPM takes none */
    assert_int_equal(cdf_pipeline_generate(u, &o, &g, 1, &img, NULL), CDF_ERR_ARG);
    assert_non_null(strstr(cdf_pipeline_last_error(u), "init_image"));
    cdf_generator_free(g);
    cdf_pipeline_free(p);
    cdf_pipeline_free(u);
}

int main(void) {
    char **dirs = NULL;
    int n = case_list_in("sd_img2img", &dirs);
    struct CMUnitTest *tests = calloc((size_t)n + 1, sizeof *tests);
    int m = 0;
    for (int i = 0; i < n; i++) {
        tests[m].name = strrchr(dirs[i], '/') + 1;
        tests[m].test_func = golden;
        tests[m].initial_state = dirs[i];
        m++;
    }
    if (m != N_CASES) {
        fprintf(stderr, "sd_img2img: %d cases, %d expected\n", m, N_CASES);
        return 1;
    }
    tests[m].name = "bad_args";
    tests[m].test_func = bad_args;
    m++;
    int rc = _cmocka_run_group_tests("sd_img2img", tests, (size_t)m, NULL, NULL);
    for (int i = 0; i < n; i++) free(dirs[i]);
    free(dirs);
    free(tests);
    return rc;
}
