/* Every golden DDPM/DDIM case in tests/data/ddpm/cases (made with diffusers
 * 0.32 + torch + numpy) within the tolerances of its case.json; the initial
 * and per-step noise bit-exact.  New case folders are picked up as they are. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden_case.h"
#include "sd_case.h"

static char g_tmp[1024];

static double mean_abs_diff(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs((double)a[i] - (double)b[i]);
    return s / (double)n;
}

static void run_case(void **state) {
    const char *dir = *state;
    golden_case gc;
    assert_int_equal(golden_case_load(dir, g_tmp, &gc), 0);
    golden_run r;
    assert_int_equal(golden_case_run(&gc, 2, 0, 0, &r), 0);
    size_t n = r.n;
    float *noise = golden_case_file(&gc, "noise.bin", n);
    float *unet0 = golden_case_file(&gc, "unet_out0.bin", n);
    float *fin = golden_case_file(&gc, "final_sample.bin", n);
    float *img = golden_case_file(&gc, "image.bin", n);
    float *sn0 = golden_case_file(&gc, "step_noise0.bin", n);
    float *traj = golden_case_file(&gc, "trajectory.bin", (size_t)r.ntraj * n);
    assert_non_null(noise);
    assert_non_null(unet0);
    assert_non_null(fin);
    assert_non_null(img);
    assert_non_null(traj);
    /* noise: bitwise */
    assert_memory_equal(r.noise, noise, n * sizeof(float));
    if (sn0) {
        assert_non_null(r.step_noise0);
        assert_memory_equal(r.step_noise0, sn0, n * sizeof(float));
    } else {
        assert_null(r.step_noise0);
    }
    double e_unet = tu_max_abs_diff_f32(r.unet_out0, unet0, n);
    double e_t0 = tu_max_abs_diff_f32(r.traj, traj, n);
    double e_fin = tu_max_abs_diff_f32(r.final_sample, fin, n);
    double e_img = tu_max_abs_diff_f32(r.image, img, n);
    double e_mean = mean_abs_diff(r.image, img, n);
    double abs_sum = 0;
    for (size_t i = 0; i < n; i++) abs_sum += fabs((double)r.image[i]);
    double e_sum = fabs(abs_sum - gc.abs_sum_f64) / gc.abs_sum_f64;
    printf("%-32s unet_out0 %.2e (tol %.0e)  traj[0] %.2e  final %.2e (tol %.0e)  image %.2e (tol %.0e)  "
           "mean %.2e (tol %.0e)  abs_sum rel %.2e (tol %.0e)\n",
           gc.name, e_unet, gc.tol_unet, e_t0, e_fin, gc.tol_final, e_img, gc.tol_image, e_mean, gc.tol_mean, e_sum,
           gc.tol_abs_rtol);
    assert_true(e_unet <= gc.tol_unet);
    assert_true(e_fin <= gc.tol_final);
    assert_true(e_img <= gc.tol_image);
    assert_true(e_mean <= gc.tol_mean);
    assert_true(e_sum <= gc.tol_abs_rtol);
    free(noise);
    free(unet0);
    free(fin);
    free(img);
    free(sn0);
    free(traj);
    golden_run_free(&r);
}

int main(void) {
    char *tmp = tu_tmpdir();
    snprintf(g_tmp, sizeof g_tmp, "%s", tmp);
    char **dirs = NULL;
    int n = case_list_in("ddpm", &dirs);
    struct CMUnitTest *tests = calloc((size_t)n, sizeof *tests);
    for (int i = 0; i < n; i++) {
        tests[i].name = strrchr(dirs[i], '/') + 1;
        tests[i].test_func = run_case;
        tests[i].initial_state = dirs[i];
    }
    int rc = _cmocka_run_group_tests("golden_ddpm_cases", tests, (size_t)n, NULL, NULL);
    for (int i = 0; i < n; i++) free(dirs[i]);
    free(dirs);
    free(tests);
    tu_rmtree(tmp);
    free(tmp);
    return rc;
}
