/* PNDMPipeline (UNet2DModel + PNDMScheduler.from_config, the Runge-Kutta
 * warm-up included) on the golden cases of tests/data/ddpm/pndm (gen.py
 * there: diffusers with mindone's numpy noise): the image within the case
 * tolerance, the generators left in the reference's states, the folder
 * class resolved from model_index.json, 1 and 2 threads the same bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "testutil.h"

#define N_CASES 3
static const char *const k_cases[N_CASES] = {"pndm_prk_20step_seed0", "pndm_batch2_gen_list", "pndm_batch3_one_gen"};

/* A 128-bit value as the decimal text Python prints. */
static void u128_text(uint64_t hi, uint64_t lo, char *out) {
    unsigned __int128 v = ((unsigned __int128)hi << 64) | lo;
    char tmp[48];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = 0;
}

static void golden(void **state) {
    const char *name = *state;
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_data("ddpm/pndm/%s/case.json", name));
    cJSON *c = NULL;
    cdf_error err = {0};
    if (cdf_json_load(path, &c, &err)) fail_msg("%s", err.msg);
    cdf_pipeline *p = NULL;
    assert_int_equal(cdf_pipeline_load(tu_data("ddpm/pndm/tiny_pndm"), NULL, &p, &err), CDF_OK);
    assert_int_equal(cdf_pipeline_get_kind(p), CDF_PIPELINE_PNDM);
    assert_string_equal(cdf_pipeline_scheduler_name(p), "PNDMScheduler");
    const cJSON *call = cJSON_GetObjectItem(c, "call"), *g = cJSON_GetObjectItem(c, "generator"), *it;
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.num_inference_steps = cJSON_GetObjectItem(call, "num_inference_steps")->valueint;
    const cJSON *bs = cJSON_GetObjectItem(call, "batch_size");
    o.batch_size = bs ? bs->valueint : 1;
    cdf_generator *gens[8];
    int ng = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(g, "seeds")) assert_int_equal(
        cdf_generator_new(CDF_RNG_NUMPY, it->valuestring, &gens[ng++], &err), CDF_OK);
    cdf_tensor img, img1;
    o.threads = 2;
    assert_int_equal(cdf_pipeline_generate(p, &o, gens, (size_t)ng, &img, NULL), CDF_OK);
    /* the generators: where the reference left them */
    int i = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(c, "generator_states_after")) {
        cdf_pcg64_state st;
        char got[48];
        assert_int_equal(cdf_generator_get_pcg64_state(gens[i++], &st, &err), CDF_OK);
        u128_text(st.state_hi, st.state_lo, got);
        assert_string_equal(got, cJSON_GetObjectItem(it, "state")->valuestring);
        assert_int_equal(st.has_uint32, cJSON_GetObjectItem(it, "has_uint32")->valueint);
    }
    size_t n = (size_t)cdf_tensor_numel(&img);
    float *want = tu_load_bin(tu_data("ddpm/pndm/%s/image.bin", name), n, sizeof(float));
    assert_non_null(want);
    double e = tu_max_abs_diff_f32(img.data, want, n);
    double tol = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "tolerance"), "image_atol")->valuedouble;
    printf("%-24s image max err %.2e (tol %.1e)\n", name, e, tol);
    assert_true(e <= tol);
    /* 1 thread: the same bytes */
    for (int k = 0; k < ng; k++) cdf_generator_reseed(gens[k], cJSON_GetArrayItem(cJSON_GetObjectItem(g, "seeds"), k)->valuestring, &err);
    o.threads = 1;
    assert_int_equal(cdf_pipeline_generate(p, &o, gens, (size_t)ng, &img1, NULL), CDF_OK);
    assert_memory_equal(img.data, img1.data, n * sizeof(float));
    cdf_tensor_free(&img);
    cdf_tensor_free(&img1);
    free(want);
    for (int k = 0; k < ng; k++) cdf_generator_free(gens[k]);
    cdf_pipeline_free(p);
    cJSON_Delete(c);
}

int main(void) {
    struct CMUnitTest tests[N_CASES];
    for (int i = 0; i < N_CASES; i++) tests[i] = (struct CMUnitTest){k_cases[i], golden, NULL, NULL, (void *)k_cases[i]};
    return _cmocka_run_group_tests("pndm", tests, N_CASES, NULL, NULL);
}
