/* UNet2DConditionModel against the golden first UNet call of every Stable
 * Diffusion case (unet0_input, prompt_embeds, unet0_timestep -> unet0_output),
 * plus batch invariance and thread-count invariance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/unet2d_cond.h"
#include "sd_case.h"

typedef struct run_out {
    float *out;
    size_t n;
} run_out;

static int run(const char *pipe, const float *x, int batch, int h, int w, double t, const float *ctx, int seq,
               int threads, float *out) {
    char dir[1400];
    snprintf(dir, sizeof dir, "%s/unet", pipe);
    cdf_error err = {0};
    cdf_unet2d_cond *m = NULL;
    if (cdf_unet2d_cond_load(dir, NULL, &m, &err)) {
        fprintf(stderr, "load: %s\n", err.msg);
        return -1;
    }
    cdf_exec ex;
    cdf_exec_init(&ex, threads, &err);
    cdf_status s = cdf_unet2d_cond_forward(&ex, m, x, batch, h, w, t, ctx, seq, out);
    if (s) fprintf(stderr, "forward: %s\n", err.msg);
    cdf_exec_release(&ex);
    cdf_unet2d_cond_free(m);
    return s ? -1 : 0;
}

static void golden_case(void **state) {
    const char *dir = *state;
    cJSON *c = sd_case_json(dir);
    assert_non_null(c);
    size_t nin, nctx, nout;
    float *x = sd_case_array(dir, c, "unet0_input", &nin);
    float *ctx = sd_case_array(dir, c, "prompt_embeds", &nctx);
    float *ref = sd_case_array(dir, c, "unet0_output", &nout);
    assert_non_null(x);
    assert_non_null(ctx);
    assert_non_null(ref);
    int batch = sd_case_dim(c, "unet0_input", 0), h = sd_case_dim(c, "unet0_input", 2),
        w = sd_case_dim(c, "unet0_input", 3), seq = sd_case_dim(c, "prompt_embeds", 1);
    double t = cJSON_GetObjectItem(c, "unet0_timestep")->valuedouble;
    float *out = malloc(nout * sizeof(float));
    assert_int_equal(run(sd_case_pipeline(c), x, batch, h, w, t, ctx, seq, 2, out), 0);
    double e = tu_max_abs_diff_f32(out, ref, nout), tol = sd_case_atol(c, "unet0_output");
    printf("%-32s unet0_output max err %.2e (tol %.1e)\n", strrchr(dir, '/') + 1, e, tol);
    assert_true(e <= tol);
    if (batch > 1) {
        /* the last image alone, with 1 thread: bit-identical to its batch slot */
        size_t per = nout / (size_t)batch, pin = nin / (size_t)batch, pctx = nctx / (size_t)batch;
        float *one = malloc(per * sizeof(float));
        assert_int_equal(run(sd_case_pipeline(c), x + (batch - 1) * pin, 1, h, w, t, ctx + (batch - 1) * pctx, seq, 1,
                             one),
                         0);
        assert_memory_equal(one, out + (batch - 1) * per, per * sizeof(float));
        free(one);
    }
    free(out);
    free(x);
    free(ctx);
    free(ref);
    cJSON_Delete(c);
}

int main(void) {
    char **dirs;
    int n = sd_case_list(&dirs);
    struct CMUnitTest *tests = calloc((size_t)n, sizeof *tests);
    for (int i = 0; i < n; i++) {
        tests[i].name = strrchr(dirs[i], '/') + 1;
        tests[i].test_func = golden_case;
        tests[i].initial_state = dirs[i];
    }
    int rc = _cmocka_run_group_tests("unet2d_cond_golden", tests, (size_t)n, NULL, NULL);
    for (int i = 0; i < n; i++) free(dirs[i]);
    free(dirs);
    free(tests);
    return rc;
}
