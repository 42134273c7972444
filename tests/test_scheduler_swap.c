/* The public scheduler-config calls the Python package stands on:
 * cdf_scheduler_config_from (X.from_config(config, **kwargs)) with diffusers'
 * _use_default_values rule, and cdf_generate_options.scheduler_config (a
 * swapped pipe.scheduler) in the SD and DDPM/DDIM pipelines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cdiffusers.h"
#include "testutil.h"

static const char *field_text(const char *json, const char *key, char *buf, size_t n) {
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    char *t = v ? cJSON_PrintUnformatted(v) : NULL;
    snprintf(buf, n, "%s", t ? t : "(absent)");
    cJSON_free(t);
    cJSON_Delete(o);
    return buf;
}

/* PNDM folder config (timestep_spacing not in the file) -> Euler: the
 * defaulted key takes Euler's default "linspace", as diffusers' from_config
 * gives; a given key ("steps_offset") carries over; overrides apply. */
static void test_config_from(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_pipeline *p = NULL;
    assert_int_equal(cdf_pipeline_load(tu_data("sd/pipelines/tiny-sd15-a"), NULL, &p, &err), CDF_OK);
    const char *folder = cdf_pipeline_scheduler_json(p);
    char buf[256];
    assert_string_equal(field_text(folder, "timestep_spacing", buf, sizeof buf), "\"leading\"");
    assert_non_null(strstr(field_text(folder, "_use_default_values", buf, sizeof buf), "\"timestep_spacing\""));
    char *out = NULL;
    assert_int_equal(cdf_scheduler_config_from(folder, "EulerDiscreteScheduler", NULL, NULL, 0, &out, &err), CDF_OK);
    assert_string_equal(field_text(out, "_class_name", buf, sizeof buf), "\"EulerDiscreteScheduler\"");
    assert_string_equal(field_text(out, "timestep_spacing", buf, sizeof buf), "\"linspace\"");
    assert_string_equal(field_text(out, "steps_offset", buf, sizeof buf), "1");
    assert_string_equal(field_text(out, "skip_prk_steps", buf, sizeof buf), "true"); /* kept hidden */
    /* overrides: given now, so no longer listed as defaults */
    const char *keys[] = {"use_karras_sigmas", "timestep_spacing"}, *vals[] = {"true", "\"trailing\""};
    char *out2 = NULL;
    assert_int_equal(cdf_scheduler_config_from(out, "euler", keys, vals, 2, &out2, &err), CDF_OK);
    assert_string_equal(field_text(out2, "use_karras_sigmas", buf, sizeof buf), "true");
    assert_string_equal(field_text(out2, "timestep_spacing", buf, sizeof buf), "\"trailing\"");
    assert_null(strstr(field_text(out2, "_use_default_values", buf, sizeof buf), "use_karras_sigmas"));
    /* a conversion back keeps what the user set and gives PNDM's own defaults */
    char *back = NULL;
    assert_int_equal(cdf_scheduler_config_from(out2, "PNDMScheduler", NULL, NULL, 0, &back, &err), CDF_OK);
    assert_string_equal(field_text(back, "timestep_spacing", buf, sizeof buf), "\"trailing\"");
    assert_string_equal(field_text(back, "use_karras_sigmas", buf, sizeof buf), "true"); /* hidden */
    /* errors name the field; nothing is returned */
    const char *bad_key[] = {"eta"}, *bad_val[] = {"1"};
    char *none = (char *)"untouched";
    assert_int_equal(cdf_scheduler_config_from(out, NULL, bad_key, bad_val, 1, &none, &err), CDF_ERR_ARG);
    assert_null(none);
    assert_non_null(strstr(err.msg, "'eta' is not a parameter of EulerDiscreteScheduler"));
    const char *sched_key[] = {"beta_schedule"}, *sched_val[] = {"\"cubic\""};
    assert_int_not_equal(cdf_scheduler_config_from(out, NULL, sched_key, sched_val, 1, &none, &err), CDF_OK);
    assert_non_null(strstr(err.msg, "beta_schedule"));
    assert_int_equal(cdf_scheduler_config_from(out, "NoSuchScheduler", NULL, NULL, 0, &none, &err), CDF_ERR_ARG);
    assert_int_not_equal(cdf_scheduler_config_from("{\"_class_name\": ", NULL, NULL, NULL, 0, &none, &err), CDF_OK);
    assert_int_equal(cdf_scheduler_config_from("{}", NULL, NULL, NULL, 0, &none, &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "_class_name"));
    assert_int_equal(cdf_scheduler_config_from(NULL, NULL, NULL, NULL, 0, &none, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_scheduler_config_from(out, NULL, NULL, NULL, 1, &none, &err), CDF_ERR_ARG);
    cdf_free(out);
    cdf_free(out2);
    cdf_free(back);
    cdf_pipeline_free(p);
}

static cdf_status run(cdf_pipeline *p, cdf_generate_options *o, const char *seed, cdf_tensor *img) {
    cdf_error err = {0};
    cdf_generator *g = NULL;
    assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY, seed, &g, &err), CDF_OK);
    cdf_status s = cdf_pipeline_generate(p, o, &g, 1, img, NULL);
    cdf_generator_free(g);
    return s;
}

/* SD: a scheduler_config of class X runs as the folder's config swapped to
 * X (same bytes); its own values count (karras differs). */
static void test_sd_swap(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_pipeline *p = NULL;
    assert_int_equal(cdf_pipeline_load(tu_data("sd/pipelines/tiny-sd15-a"), NULL, &p, &err), CDF_OK);
    const char *prompt = "a cat";
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.prompts = &prompt;
    o.num_prompts = 1;
    o.num_inference_steps = 3;
    o.scheduler = "euler";
    cdf_tensor a, b, c;
    assert_int_equal(run(p, &o, "4", &a), CDF_OK);
    char *euler = NULL;
    assert_int_equal(cdf_scheduler_config_from(cdf_pipeline_scheduler_json(p), "euler", NULL, NULL, 0, &euler, &err),
                     CDF_OK);
    o.scheduler = NULL;
    o.scheduler_config = euler;
    assert_int_equal(run(p, &o, "4", &b), CDF_OK);
    size_t n = (size_t)cdf_tensor_numel(&a);
    assert_memory_equal(a.data, b.data, n * sizeof(float));
    const char *k[] = {"use_karras_sigmas"}, *v[] = {"true"};
    char *karras = NULL;
    assert_int_equal(cdf_scheduler_config_from(euler, NULL, k, v, 1, &karras, &err), CDF_OK);
    o.scheduler_config = karras;
    assert_int_equal(run(p, &o, "4", &c), CDF_OK);
    assert_true(memcmp(a.data, c.data, n * sizeof(float)) != 0);
    cdf_tensor_free(&c);
    o.scheduler_config = "{\"_class_name\": \"EulerDiscreteScheduler\", \"beta_schedule\": \"cubic\"}";
    assert_int_not_equal(run(p, &o, "4", &c), CDF_OK);
    assert_non_null(strstr(cdf_pipeline_last_error(p), "scheduler_config"));
    assert_null(c.data);
    cdf_tensor_free(&a);
    cdf_tensor_free(&b);
    cdf_free(euler);
    cdf_free(karras);
    cdf_pipeline_free(p);
}

/* DDPMPipeline with a DDIMScheduler config = DDIMPipeline with eta 0 (DDPMPipeline
 * passes no eta, whatever the options say); DDIMPipeline takes DDIM only. */
static void test_unet2d_swap(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_pipeline *ddpm = NULL, *ddim = NULL;
    const char *dir = tu_data("ddpm/models/tiny_cifar");
    assert_int_equal(cdf_pipeline_load(dir, &(cdf_load_options){CDF_PIPELINE_DDPM, NULL}, &ddpm, &err), CDF_OK);
    assert_int_equal(cdf_pipeline_load(dir, &(cdf_load_options){CDF_PIPELINE_DDIM, NULL}, &ddim, &err), CDF_OK);
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.num_inference_steps = 3;
    cdf_tensor a, b;
    assert_int_equal(run(ddim, &o, "2", &a), CDF_OK);
    o.scheduler_config = cdf_pipeline_scheduler_json(ddim);
    o.eta = 0.7; /* not DDPMPipeline's */
    assert_int_equal(run(ddpm, &o, "2", &b), CDF_OK);
    assert_memory_equal(a.data, b.data, (size_t)cdf_tensor_numel(&a) * sizeof(float));
    cdf_tensor_free(&b);
    o.scheduler_config = cdf_pipeline_scheduler_json(ddpm); /* DDPMScheduler */
    assert_int_equal(run(ddim, &o, "2", &b), CDF_ERR_UNSUPPORTED);
    assert_non_null(strstr(cdf_pipeline_last_error(ddim), "DDIMPipeline runs DDIMScheduler, not DDPMScheduler"));
    char *euler = NULL;
    assert_int_equal(cdf_scheduler_config_from(o.scheduler_config, "euler", NULL, NULL, 0, &euler, &err), CDF_OK);
    o.scheduler_config = euler;
    assert_int_equal(run(ddpm, &o, "2", &b), CDF_ERR_UNSUPPORTED);
    assert_non_null(strstr(cdf_pipeline_last_error(ddpm), "DDPMScheduler, DDIMScheduler or PNDMScheduler"));
    cdf_free(euler);
    cdf_tensor_free(&a);
    cdf_pipeline_free(ddpm);
    cdf_pipeline_free(ddim);
}

/* UnCLIP keeps its three schedulers. */
static void test_unclip_no_swap(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_pipeline *p = NULL;
    assert_int_equal(cdf_pipeline_load(tu_data("unclip/pipelines/tiny-karlo-a"), NULL, &p, &err), CDF_OK);
    const char *prompt = "a frog";
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.prompts = &prompt;
    o.num_prompts = 1;
    o.scheduler_config = "{\"_class_name\": \"UnCLIPScheduler\"}";
    cdf_tensor img;
    assert_int_equal(run(p, &o, "0", &img), CDF_ERR_ARG);
    assert_non_null(strstr(cdf_pipeline_last_error(p), "no scheduler swap"));
    cdf_pipeline_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_from),
        cmocka_unit_test(test_sd_swap),
        cmocka_unit_test(test_unet2d_swap),
        cmocka_unit_test(test_unclip_no_swap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
