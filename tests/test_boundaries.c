/* Boundaries a golden tolerance cannot see, pinned by exact comparisons:
 *  - classifier-free guidance runs only when the scale is > 1 (diffusers'
 *    do_classifier_free_guidance): at exactly 1.0 the negative prompt is never
 *    encoded, so scale 1.0 and 0.5 give identical bytes (running CFG at 1.0
 *    computes uncond + 1 * (cond - uncond), which rounds differently);
 *    UnCLIP: neither the prior nor the decoder scale above 1;
 *  - DDIM draws variance noise only when eta > 0: with eta = 0 the generator is
 *    left exactly where the initial noise left it, so two calls sharing one
 *    generator make the same bytes as one batch of two (numpy draws a batch
 *    as consecutive images); with eta > 0 they must not.
 *  - DDPM and UnCLIP draw variance noise only for steps with t > 0: after a
 *    call the generator stands exactly where drawing the initial noise plus
 *    one noise per such step leaves a fresh one (PCG64 state compared).
 * Each check also has its positive side (the option does change the bytes
 * past the boundary), so it cannot pass by ignoring the option. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct {
    float *data; /* the output, NP layout [batch, h, w, c] */
    size_t n;    /* elements */
} out_buf;

static cdf_pipeline *load(const char *rel, cdf_pipeline_kind kind) {
    cdf_error err = {0};
    cdf_load_options lo = {kind, NULL};
    cdf_pipeline *p = NULL;
    if (cdf_pipeline_load(tu_data("%s", rel), &lo, &p, &err)) fail_msg("%s: %s", rel, err.msg);
    return p;
}

/* Runs o with one numpy generator seeded `seed`, or with *shared when given
 * (which then advances); returns the output. */
static out_buf run(cdf_pipeline *p, const cdf_generate_options *o, const char *seed, cdf_generator *shared) {
    cdf_error err = {0};
    cdf_generator *g = shared;
    if (!g && cdf_generator_new(CDF_RNG_NUMPY, seed, &g, &err)) fail_msg("%s", err.msg);
    cdf_tensor t;
    if (cdf_pipeline_generate(p, o, &g, 1, &t, NULL)) fail_msg("%s", cdf_pipeline_last_error(p));
    if (!shared) cdf_generator_free(g);
    out_buf r = {NULL, (size_t)t.shape[0] * t.shape[1] * t.shape[2] * t.shape[3]};
    r.data = malloc(r.n * sizeof(float));
    memcpy(r.data, t.data, r.n * sizeof(float));
    cdf_tensor_free(&t);
    return r;
}

static int same(const out_buf *a, size_t off_a, const out_buf *b) {
    return off_a + b->n <= a->n && memcmp(a->data + off_a, b->data, b->n * sizeof(float)) == 0;
}

static void sd_options(cdf_generate_options *o, const char *const *prompt, const char *const *negative) {
    cdf_generate_options_init(o);
    o->prompts = prompt;
    o->num_prompts = 1;
    o->negative_prompts = negative;
    o->num_negative_prompts = negative ? 1 : 0;
    o->num_inference_steps = 2;
}

static void sd_guidance_one_is_off(void **state) {
    (void)state;
    cdf_pipeline *p = load("sd/pipelines/tiny-sd15-a", CDF_PIPELINE_AUTO);
    const char *prompt = "a photo of a cat", *neg = "blurry, dark";
    cdf_generate_options o;
    sd_options(&o, &prompt, &neg);
    o.guidance_scale = 1.0;
    out_buf at1 = run(p, &o, "3", NULL);
    o.guidance_scale = 0.5;
    out_buf at05 = run(p, &o, "3", NULL);
    o.guidance_scale = 1.0 + 1e-9; /* just past the boundary: guidance on, the negative prompt counts */
    out_buf past = run(p, &o, "3", NULL);
    if (!same(&at1, 0, &at05)) fail_msg("guidance 1.0 ran classifier-free guidance (differs from 0.5)");
    if (same(&at1, 0, &past)) fail_msg("guidance 1.0 + 1e-9 gave the bytes of guidance off");
    free(at1.data), free(at05.data), free(past.data);
    cdf_pipeline_free(p);
}

static void unclip_guidance_one_is_off(void **state) {
    (void)state;
    cdf_pipeline *p = load("unclip/pipelines/tiny-karlo-a", CDF_PIPELINE_AUTO);
    const char *prompt = "a red apple";
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.prompts = &prompt;
    o.num_prompts = 1;
    o.prior_num_inference_steps = o.decoder_num_inference_steps = o.super_res_num_inference_steps = 2;
    o.prior_guidance_scale = o.decoder_guidance_scale = 1.0;
    out_buf at1 = run(p, &o, "5", NULL);
    o.prior_guidance_scale = o.decoder_guidance_scale = 0.5;
    out_buf at05 = run(p, &o, "5", NULL);
    o.prior_guidance_scale = 1.0, o.decoder_guidance_scale = 1.5; /* either above 1: guidance on */
    out_buf dec = run(p, &o, "5", NULL);
    o.prior_guidance_scale = 1.5, o.decoder_guidance_scale = 1.0;
    out_buf pri = run(p, &o, "5", NULL);
    if (!same(&at1, 0, &at05)) fail_msg("prior/decoder guidance 1.0 ran classifier-free guidance");
    if (same(&at1, 0, &dec)) fail_msg("decoder guidance 1.5 gave the bytes of guidance off");
    if (same(&at1, 0, &pri)) fail_msg("prior guidance 1.5 gave the bytes of guidance off");
    if (same(&dec, 0, &pri)) fail_msg("prior and decoder guidance scales are not told apart");
    free(at1.data), free(at05.data), free(dec.data), free(pri.data);
    cdf_pipeline_free(p);
}

/* A batch of two with one generator vs two calls of one image sharing a
 * generator: equal when (and only when) nothing is drawn after the initial noise. */
static void eta_check(cdf_pipeline *p, cdf_generate_options *o, int batch_field_is_prompts) {
    cdf_error err = {0};
    const char *two[2];
    if (batch_field_is_prompts) {
        two[0] = two[1] = o->prompts[0];
    }
    for (int with_eta = 0; with_eta < 2; with_eta++) {
        o->eta = with_eta ? 0.5 : 0.0;
        cdf_generate_options ob = *o;
        if (batch_field_is_prompts) {
            ob.prompts = two;
            ob.num_prompts = 2;
        } else {
            ob.batch_size = 2;
        }
        out_buf both = run(p, &ob, "11", NULL);
        cdf_generator *g = NULL;
        if (cdf_generator_new(CDF_RNG_NUMPY, "11", &g, &err)) fail_msg("%s", err.msg);
        out_buf first = run(p, o, NULL, g), second = run(p, o, NULL, g);
        cdf_generator_free(g);
        if (with_eta == 0 && !(same(&both, 0, &first) && same(&both, first.n, &second)))
            fail_msg("eta 0 drew variance noise: two calls sharing a generator differ from a batch of two");
        /* eta > 0: the batch draws both images' noise before the first step's variance noise */
        if (with_eta == 1 && (same(&both, 0, &first) || same(&both, first.n, &second)))
            fail_msg("eta 0.5 drew no variance noise: two calls sharing a generator equal a batch of two");
        free(both.data), free(first.data), free(second.data);
    }
}

static void ddim_eta_zero_draws_nothing(void **state) {
    (void)state;
    cdf_pipeline *p = load("ddpm/models/tiny_cifar", CDF_PIPELINE_DDIM);
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.num_inference_steps = 3;
    eta_check(p, &o, 0);
    cdf_pipeline_free(p);
}

static void sd_ddim_eta_zero_draws_nothing(void **state) {
    (void)state;
    cdf_pipeline *p = load("sd/pipelines/tiny-sd15-a", CDF_PIPELINE_AUTO);
    const char *prompt = "a photo of a cat";
    cdf_generate_options o;
    sd_options(&o, &prompt, NULL);
    o.scheduler = "DDIMScheduler";
    eta_check(p, &o, 1);
    cdf_pipeline_free(p);
}

/* Counts, per call, the normals diffusers draws: each stage's initial noise
 * and one more noise for every step whose timestep is > 0. */
typedef struct {
    size_t draws;
} draw_count;

static int count_draws(const cdf_step_info *info, void *user) {
    draw_count *d = user;
    size_t n = (size_t)info->batch * info->channels * info->height * info->width;
    if (info->step < 0 || info->timestep > 0) d->draws += n; /* step -1: the stage's initial noise */
    return 0;
}

static void generator_position(cdf_pipeline *p, cdf_generate_options *o) {
    cdf_error err = {0};
    cdf_generator *g = NULL, *fresh = NULL;
    if (cdf_generator_new(CDF_RNG_NUMPY, "21", &g, &err) || cdf_generator_new(CDF_RNG_NUMPY, "21", &fresh, &err))
        fail_msg("%s", err.msg);
    draw_count d = {0};
    o->on_step = count_draws;
    o->on_step_user = &d;
    out_buf r = run(p, o, NULL, g);
    free(r.data);
    double *skip = malloc(d.draws * sizeof *skip);
    cdf_generator_standard_normal(fresh, skip, d.draws); /* float64 normals: numpy's randn_tensor draws */
    free(skip);
    cdf_pcg64_state a, b;
    if (cdf_generator_get_pcg64_state(g, &a, &err) || cdf_generator_get_pcg64_state(fresh, &b, &err))
        fail_msg("%s", err.msg);
    if (memcmp(&a, &b, sizeof a) != 0)
        fail_msg("the generator is not where %zu normals (the noise of every step with t > 0) leave it", d.draws);
    cdf_generator_free(g);
    cdf_generator_free(fresh);
}

static void ddpm_noise_only_while_t_positive(void **state) {
    (void)state;
    cdf_pipeline *p = load("ddpm/models/tiny_cifar", CDF_PIPELINE_AUTO);
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.num_inference_steps = 4;
    generator_position(p, &o);
    cdf_pipeline_free(p);
}

static void unclip_noise_only_while_t_positive(void **state) {
    (void)state;
    cdf_pipeline *p = load("unclip/pipelines/tiny-karlo-a", CDF_PIPELINE_AUTO);
    const char *prompt = "a red apple";
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.prompts = &prompt;
    o.num_prompts = 1;
    o.prior_num_inference_steps = 3, o.decoder_num_inference_steps = 2, o.super_res_num_inference_steps = 2;
    generator_position(p, &o);
    cdf_pipeline_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sd_guidance_one_is_off),
        cmocka_unit_test(unclip_guidance_one_is_off),
        cmocka_unit_test(ddim_eta_zero_draws_nothing),
        cmocka_unit_test(sd_ddim_eta_zero_draws_nothing),
        cmocka_unit_test(ddpm_noise_only_while_t_positive),
        cmocka_unit_test(unclip_noise_only_while_t_positive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
