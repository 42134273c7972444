/* Reproducibility guarantees: identical bytes with 1, 2 and 3 threads, on a
 * second run, and image k of a per-image-seeded batch identical to the same
 * image made alone (batch invariance).  The thread checks include shapes
 * whose GEMMs span several output tiles with partial tiles at the edges (a
 * size that is no multiple of the tiles), where a tiling that followed the
 * thread count would change the reduction order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden_case.h"

static char g_tmp[1024];

static void load(const char *name, golden_case *gc) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", tu_data("ddpm/cases/%s", name));
    assert_int_equal(golden_case_load(dir, g_tmp, gc), 0);
}

static void assert_runs_equal(const golden_run *a, size_t off_a, const golden_run *b, size_t n) {
    assert_memory_equal(a->image + off_a, b->image, n * sizeof(float));
    assert_memory_equal(a->final_sample + off_a, b->final_sample, n * sizeof(float));
}

static void threads_1_2_3_and_rerun(void **state) {
    (void)state;
    golden_case gc;
    load("ddim_batch4_gen_list", &gc); /* attention, eta > 0, batch of 4 */
    golden_run r1, r2, r3, again;
    assert_int_equal(golden_case_run(&gc, 1, 0, 0, &r1), 0);
    assert_int_equal(golden_case_run(&gc, 2, 0, 0, &r2), 0);
    assert_int_equal(golden_case_run(&gc, 3, 0, 0, &r3), 0);
    assert_int_equal(golden_case_run(&gc, 2, 0, 0, &again), 0);
    assert_runs_equal(&r1, 0, &r2, r1.n);
    assert_runs_equal(&r1, 0, &r3, r1.n);
    assert_runs_equal(&r2, 0, &again, r2.n);
    assert_memory_equal(r1.unet_out0, r2.unet_out0, r1.n * sizeof(float));
    golden_run_free(&r1);
    golden_run_free(&r2);
    golden_run_free(&r3);
    golden_run_free(&again);
}

static void threads_full_size(void **state) {
    (void)state;
    golden_case gc;
    load("cifar10_full_ddim_2step_seed0", &gc); /* full-size layers: BLAS takes its threaded paths */
    golden_run r1, r2, r3;
    assert_int_equal(golden_case_run(&gc, 1, 0, 0, &r1), 0);
    assert_int_equal(golden_case_run(&gc, 2, 0, 0, &r2), 0);
    assert_int_equal(golden_case_run(&gc, 3, 0, 0, &r3), 0);
    assert_runs_equal(&r1, 0, &r2, r1.n);
    assert_runs_equal(&r1, 0, &r3, r1.n);
    golden_run_free(&r1);
    golden_run_free(&r2);
    golden_run_free(&r3);
}

/* Stable Diffusion at 152 x 152 (latents 19 x 19 = 361 positions): the UNet's
 * convolutions are 32 x 361 x 288 GEMMs (two column tiles, the second partial)
 * and the VAE's run at up to 152 x 152, all on the threaded tile path; the
 * attention runs over 361 tokens.  1, 2, 3 and 4 threads give the same bytes. */
static void threads_sd_odd_size(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_pipeline *p = NULL;
    if (cdf_pipeline_load(tu_data("sd/pipelines/tiny-sd15-a"), NULL, &p, &err)) fail_msg("%s", err.msg);
    const char *prompt = "a red cube on a table";
    float *first = NULL;
    size_t n = 0;
    for (int threads = 1; threads <= 4; threads++) {
        cdf_generator *g = NULL;
        if (cdf_generator_new(CDF_RNG_NUMPY, "7", &g, &err)) fail_msg("%s", err.msg);
        cdf_generate_options o;
        cdf_generate_options_init(&o);
        o.prompts = &prompt;
        o.num_prompts = 1;
        o.num_inference_steps = 2;
        o.height = o.width = 152;
        o.threads = threads;
        cdf_tensor img;
        if (cdf_pipeline_generate(p, &o, &g, 1, &img, NULL)) fail_msg("%s", cdf_pipeline_last_error(p));
        cdf_generator_free(g);
        assert_int_equal(img.shape[1], 152);
        size_t cnt = (size_t)img.shape[0] * img.shape[1] * img.shape[2] * img.shape[3];
        if (!first) {
            first = malloc(cnt * sizeof(float));
            memcpy(first, img.data, cnt * sizeof(float));
            n = cnt;
        } else {
            assert_int_equal(cnt, n);
            if (memcmp(first, img.data, n * sizeof(float)) != 0) fail_msg("1 vs %d threads differ", threads);
        }
        cdf_tensor_free(&img);
    }
    free(first);
    cdf_pipeline_free(p);
}

static void batch_slot_equals_alone(void **state) {
    (void)state;
    golden_case gc;
    load("ddim_batch4_gen_list", &gc);
    golden_run all;
    assert_int_equal(golden_case_run(&gc, 2, 0, 0, &all), 0);
    size_t per = all.n / (size_t)gc.batch;
    for (int k = 0; k < gc.batch; k++) {
        golden_run one;
        assert_int_equal(golden_case_run(&gc, 2, k, 1, &one), 0);
        assert_memory_equal(all.noise + k * per, one.noise, per * sizeof(float));
        assert_runs_equal(&all, k * per, &one, per);
        golden_run_free(&one);
    }
    golden_run_free(&all);
}

int main(void) {
    char *tmp = tu_tmpdir();
    snprintf(g_tmp, sizeof g_tmp, "%s", tmp);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(threads_1_2_3_and_rerun),
        cmocka_unit_test(batch_slot_equals_alone),
        cmocka_unit_test(threads_full_size),
        cmocka_unit_test(threads_sd_odd_size),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmtree(tmp);
    free(tmp);
    return rc;
}
