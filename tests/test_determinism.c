/* Reproducibility guarantees: identical bytes with 1 and 2 threads, on a
 * second run, and image k of a per-image-seeded batch identical to the same
 * image made alone (batch invariance). */
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

static void threads_1_vs_2(void **state) {
    (void)state;
    golden_case gc;
    load("ddim_batch4_gen_list", &gc); /* attention, eta > 0, batch of 4 */
    golden_run r1, r2, r3;
    assert_int_equal(golden_case_run(&gc, 1, 0, 0, &r1), 0);
    assert_int_equal(golden_case_run(&gc, 2, 0, 0, &r2), 0);
    assert_int_equal(golden_case_run(&gc, 2, 0, 0, &r3), 0);
    assert_runs_equal(&r1, 0, &r2, r1.n);
    assert_runs_equal(&r2, 0, &r3, r2.n);
    assert_memory_equal(r1.unet_out0, r2.unet_out0, r1.n * sizeof(float));
    golden_run_free(&r1);
    golden_run_free(&r2);
    golden_run_free(&r3);
}

static void threads_full_size(void **state) {
    (void)state;
    golden_case gc;
    load("cifar10_full_ddim_2step_seed0", &gc); /* full-size layers: BLAS takes its threaded paths */
    golden_run r1, r2;
    assert_int_equal(golden_case_run(&gc, 1, 0, 0, &r1), 0);
    assert_int_equal(golden_case_run(&gc, 2, 0, 0, &r2), 0);
    assert_runs_equal(&r1, 0, &r2, r1.n);
    golden_run_free(&r1);
    golden_run_free(&r2);
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
        cmocka_unit_test(threads_1_vs_2),
        cmocka_unit_test(batch_slot_equals_alone),
        cmocka_unit_test(threads_full_size),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmtree(tmp);
    free(tmp);
    return rc;
}
