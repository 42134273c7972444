/* Stable Diffusion paths the golden cases do not cover (guidance_rescale,
 * clip_skip, DDIM eta > 0, Euler with Karras sigmas; torch.Generator("cpu")
 * noise with an ancestral scheduler), against images the real diffusers
 * pipeline made (tests/data/sd_extra, gen.py and gen_torch.py there). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "io/npy.h"
#include "testutil.h"

static cJSON *g_manifest, *g_torch;

/* sd_extra/manifest.json's cases (rescale, clipskip, eta_ddim, karras_euler) and
 * manifest_torch.json's (torch_list, torch_single): an emptied or truncated
 * manifest fails instead of running nothing. */
#define N_CASES 4
#define N_TORCH_CASES 2

static void extra_case(void **state) {
    const cJSON *c = *state, *common = cJSON_GetObjectItem(g_manifest, "common"), *it;
    const char *prompts[8], *negs[8];
    size_t np = 0, nn = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(common, "prompt")) prompts[np++] = it->valuestring;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(common, "negative_prompt")) negs[nn++] = it->valuestring;
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.threads = 2;
    o.prompts = prompts;
    o.num_prompts = np;
    o.negative_prompts = negs;
    o.num_negative_prompts = nn;
    o.num_inference_steps = cJSON_GetObjectItem(common, "num_inference_steps")->valueint;
    o.scheduler = cJSON_GetObjectItem(c, "scheduler")->valuestring;
    const cJSON *kw = cJSON_GetObjectItem(c, "kwargs"), *ov = cJSON_GetObjectItem(c, "overrides"), *v;
    if ((v = cJSON_GetObjectItem(kw, "guidance_rescale"))) o.guidance_rescale = v->valuedouble;
    if ((v = cJSON_GetObjectItem(kw, "guidance_scale"))) o.guidance_scale = v->valuedouble;
    if ((v = cJSON_GetObjectItem(kw, "clip_skip"))) o.clip_skip = v->valueint;
    if ((v = cJSON_GetObjectItem(kw, "eta"))) o.eta = v->valuedouble;
    if ((v = cJSON_GetObjectItem(ov, "use_karras_sigmas"))) o.use_karras_sigmas = cJSON_IsTrue(v);
    cdf_generator *gens[8];
    int ng = 0;
    cdf_error err = {0};
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(common, "seeds")) {
        char seed[32];
        snprintf(seed, sizeof seed, "%d", it->valueint);
        assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY, seed, &gens[ng++], &err), CDF_OK);
    }
    char pipe[1200];
    snprintf(pipe, sizeof pipe, "%s", tu_data("%s", cJSON_GetObjectItem(g_manifest, "pipeline")->valuestring));
    cdf_pipeline *p = NULL;
    assert_int_equal(cdf_pipeline_load(pipe, NULL, &p, &err), CDF_OK);
    cdf_tensor img, ref;
    cdf_status s = cdf_pipeline_generate(p, &o, gens, (size_t)ng, &img, NULL);
    if (s) fprintf(stderr, "%s\n", cdf_pipeline_last_error(p));
    assert_int_equal(s, CDF_OK);
    assert_int_equal(cdf_npy_read(tu_data("sd_extra/%s", cJSON_GetObjectItem(c, "file")->valuestring), &ref, &err),
                     CDF_OK);
    assert_int_equal(cdf_tensor_numel(&img), cdf_tensor_numel(&ref));
    double e = tu_max_abs_diff_f32(img.data, ref.data, (size_t)cdf_tensor_numel(&img));
    double tol = cJSON_GetObjectItem(c, "atol")->valuedouble;
    printf("%-14s image max err %.2e (tol %.0e)\n", cJSON_GetObjectItem(c, "name")->valuestring, e, tol);
    assert_true(e <= tol);
    cdf_free(ref.data);
    cdf_tensor_free(&img);
    for (int i = 0; i < ng; i++) cdf_generator_free(gens[i]);
    cdf_pipeline_free(p);
}

/* The same pipeline with torch CPU generators (one per image, or one for the batch). */
static void torch_case(void **state) {
    const cJSON *c = *state, *it;
    const char *prompt = cJSON_GetObjectItem(g_torch, "prompt")->valuestring;
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.threads = 2;
    o.prompts = &prompt;
    o.num_prompts = 1;
    o.num_images_per_prompt = cJSON_GetObjectItem(g_torch, "num_images_per_prompt")->valueint;
    o.num_inference_steps = cJSON_GetObjectItem(g_torch, "num_inference_steps")->valueint;
    o.scheduler = cJSON_GetObjectItem(g_torch, "scheduler")->valuestring;
    cdf_rng_kind kind;
    cdf_error err = {0};
    assert_int_equal(cdf_rng_kind_parse(cJSON_GetObjectItem(g_torch, "rng")->valuestring, &kind, &err), CDF_OK);
    cdf_generator *gens[8];
    int ng = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(c, "seeds")) {
        char seed[32];
        snprintf(seed, sizeof seed, "%d", it->valueint);
        assert_int_equal(cdf_generator_new(kind, seed, &gens[ng++], &err), CDF_OK);
    }
    char pipe[1200];
    snprintf(pipe, sizeof pipe, "%s", tu_data("%s", cJSON_GetObjectItem(g_torch, "pipeline")->valuestring));
    cdf_pipeline *p = NULL;
    assert_int_equal(cdf_pipeline_load(pipe, NULL, &p, &err), CDF_OK);
    cdf_tensor img, ref;
    assert_int_equal(cdf_pipeline_generate(p, &o, gens, (size_t)ng, &img, NULL), CDF_OK);
    assert_int_equal(cdf_npy_read(tu_data("sd_extra/%s", cJSON_GetObjectItem(c, "file")->valuestring), &ref, &err),
                     CDF_OK);
    assert_int_equal(cdf_tensor_numel(&img), cdf_tensor_numel(&ref));
    double e = tu_max_abs_diff_f32(img.data, ref.data, (size_t)cdf_tensor_numel(&img));
    double tol = cJSON_GetObjectItem(c, "atol")->valuedouble;
    printf("%-14s image max err %.2e (tol %.0e)\n", cJSON_GetObjectItem(c, "name")->valuestring, e, tol);
    assert_true(e <= tol);
    cdf_free(ref.data);
    cdf_tensor_free(&img);
    for (int i = 0; i < ng; i++) cdf_generator_free(gens[i]);
    cdf_pipeline_free(p);
}

int main(void) {
    cdf_error err = {0};
    if (cdf_json_load(tu_data("sd_extra/manifest.json"), &g_manifest, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (cdf_json_load(tu_data("sd_extra/manifest_torch.json"), &g_torch, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const cJSON *cases = cJSON_GetObjectItem(g_manifest, "cases"), *tcases = cJSON_GetObjectItem(g_torch, "cases"), *c;
    if (cJSON_GetArraySize(cases) != N_CASES || cJSON_GetArraySize(tcases) != N_TORCH_CASES) {
        fprintf(stderr, "sd_extra: %d + %d cases in the manifests, %d + %d expected\n", cJSON_GetArraySize(cases),
                cJSON_GetArraySize(tcases), N_CASES, N_TORCH_CASES);
        return 1;
    }
    int n = cJSON_GetArraySize(cases) + cJSON_GetArraySize(tcases), i = 0;
    struct CMUnitTest *tests = calloc((size_t)n, sizeof *tests);
    cJSON_ArrayForEach(c, cases) {
        tests[i].name = cJSON_GetObjectItem(c, "name")->valuestring;
        tests[i].test_func = extra_case;
        tests[i].initial_state = (void *)c;
        i++;
    }
    cJSON_ArrayForEach(c, tcases) {
        tests[i].name = cJSON_GetObjectItem(c, "name")->valuestring;
        tests[i].test_func = torch_case;
        tests[i].initial_state = (void *)c;
        i++;
    }
    int rc = _cmocka_run_group_tests("sd_extra", tests, (size_t)n, NULL, NULL);
    free(tests);
    cJSON_Delete(g_manifest);
    cJSON_Delete(g_torch);
    return rc;
}
