/* Antialiased bicubic resize (src/tensor/resize.c) against torch 1.13's
 * F.interpolate(x, size, mode="bicubic", align_corners=False, antialias=True),
 * CPU float32:
 *  - every golden UnCLIP case (tests/data/unclip/cases): decoder_output ->
 *    image_upscaled, bit for bit;
 *  - tests/data/unclip_extra/resize_* (gen_resize.py, live torch): non-integer
 *    upscales, downscales with long windows, non-square and mixed sizes,
 *    1-pixel edges, an unchanged size, Inf / NaN / -0 inputs; bit for bit
 *    (NaN where torch has NaN);
 *  - thread-count and batch invariance (bitwise);
 *  - bad arguments, allocation failures without leaks. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "sd_case.h"
#include "io/json.h"
#include "oom_alloc.h"
#include "tensor/resize.h"

static cJSON *load_json(const char *path) {
    char *text = tu_read_text(path);
    if (!text) fail_msg("cannot read %s", path);
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) fail_msg("cannot parse %s", path);
    return root;
}

static int json_int_at(const cJSON *arr, int i) { return (int)cJSON_GetArrayItem(arr, i)->valuedouble; }

static void run_resize(int threads, const float *x, int64_t n, int h, int w, int ho, int wo, float *y) {
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, threads, &err);
    cdf_status s = cdf_resize_bicubic_aa(&ex, x, n, h, w, ho, wo, y, &err);
    cdf_exec_release(&ex);
    if (s) fail_msg("resize %dx%d -> %dx%d: %s", h, w, ho, wo, err.msg);
}

/* Elements whose bits differ (NaN counts as equal to NaN); *max_abs over the finite ones. */
static size_t count_diff(const float *a, const float *b, size_t n, double *max_abs) {
    size_t bad = 0;
    *max_abs = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) && isnan(b[i])) continue;
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            bad++;
            double d = fabs((double)a[i] - (double)b[i]);
            if (isfinite(d) && d > *max_abs) *max_abs = d;
        }
    }
    return bad;
}

/* ------------------------------------------------------ golden UnCLIP cases */

static void golden_upscale(void **state) {
    (void)state;
    char root[1024];
    snprintf(root, sizeof root, "%s", tu_data("unclip/cases"));
    static char names[64][256];
    int n = case_names_in("unclip", names, 64);
    for (int k = 0; k < n; k++) {
        char path[1400];
        snprintf(path, sizeof path, "%s/%.255s/case.json", root, names[k]);
        cJSON *cj = load_json(path);
        const cJSON *arr = cJSON_GetObjectItem(cj, "arrays");
        const cJSON *ds = cJSON_GetObjectItem(cJSON_GetObjectItem(arr, "decoder_output"), "shape");
        const cJSON *us = cJSON_GetObjectItem(cJSON_GetObjectItem(arr, "image_upscaled"), "shape");
        int B = json_int_at(ds, 0), C = json_int_at(ds, 1), h = json_int_at(ds, 2), w = json_int_at(ds, 3);
        int H = json_int_at(us, 2), W = json_int_at(us, 3);
        assert_int_equal(json_int_at(us, 0), B);
        assert_int_equal(json_int_at(us, 1), C);
        size_t nin = (size_t)B * C * h * w, nout = (size_t)B * C * H * W;
        snprintf(path, sizeof path, "%s/%.255s/decoder_output.f32.bin", root, names[k]);
        float *x = tu_load_bin(path, nin, 4);
        snprintf(path, sizeof path, "%s/%.255s/image_upscaled.f32.bin", root, names[k]);
        float *ref = tu_load_bin(path, nout, 4);
        assert_non_null(x);
        assert_non_null(ref);
        float *y = malloc(nout * sizeof(float));
        assert_non_null(y);
        run_resize(2, x, (int64_t)B * C, h, w, H, W, y);
        double e;
        size_t bad = count_diff(y, ref, nout, &e);
        printf("%-22s %dx%d -> %dx%d (%d planes): %zu of %zu elements differ, max err %.2e\n", names[k], h, w, H, W,
               B * C, bad, nout, e);
        if (bad) fail_msg("%s: image_upscaled differs from torch in %zu elements (max %.3e)", names[k], bad, e);
        free(x);
        free(ref);
        free(y);
        cJSON_Delete(cj);
    }
}

/* --------------------------------------------------- live-torch vectors */

static void extra_vectors(void **state) {
    (void)state;
    cJSON *man = load_json(tu_data("unclip_extra/resize_manifest.json"));
    const cJSON *cases = cJSON_GetObjectItem(man, "cases"), *c;
    int ncases = 0, nan_cases = 0;
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        const cJSON *sh = cJSON_GetObjectItem(c, "shape"), *os = cJSON_GetObjectItem(c, "out_size");
        int B = json_int_at(sh, 0), C = json_int_at(sh, 1), h = json_int_at(sh, 2), w = json_int_at(sh, 3);
        int ho = json_int_at(os, 0), wo = json_int_at(os, 1);
        size_t nin = (size_t)B * C * h * w, nout = (size_t)B * C * ho * wo;
        float *x = tu_load_bin(tu_data("unclip_extra/%s", cJSON_GetObjectItem(c, "x")->valuestring), nin, 4);
        float *ref = tu_load_bin(tu_data("unclip_extra/%s", cJSON_GetObjectItem(c, "y")->valuestring), nout, 4);
        if (!x || !ref) fail_msg("%s: cannot read its vectors", name);
        float *y = malloc(nout * sizeof(float));
        assert_non_null(y);
        run_resize(1, x, (int64_t)B * C, h, w, ho, wo, y);
        double e;
        size_t bad = count_diff(y, ref, nout, &e);
        size_t nan_ref = 0, nan_got = 0;
        for (size_t i = 0; i < nout; i++) {
            nan_ref += isnan(ref[i]) != 0;
            nan_got += isnan(y[i]) != 0;
        }
        printf("%-20s %3dx%-3d -> %3dx%-3d (%d planes): %zu of %zu differ, max err %.2e, NaN %zu/%zu\n", name, h, w,
               ho, wo, B * C, bad, nout, e, nan_got, nan_ref);
        assert_int_equal(nan_ref, (size_t)cJSON_GetObjectItem(c, "nan_count")->valuedouble);
        if (bad) fail_msg("%s: %zu elements differ from torch (max %.3e)", name, bad, e);
        nan_cases += nan_ref > 0;
        ncases++;
        free(x);
        free(ref);
        free(y);
    }
    assert_true(ncases >= 13);
    assert_true(nan_cases >= 1);
    cJSON_Delete(man);
}

/* ------------------------------------------------- threads and batching */

static void thread_and_batch_invariance(void **state) {
    (void)state;
    /* 8 planes 24x20 -> 70x61 (enough work for the threaded loop) and a downscale */
    static const int sizes[2][4] = {{24, 20, 70, 61}, {61, 70, 19, 23}};
    for (int s = 0; s < 2; s++) {
        int h = sizes[s][0], w = sizes[s][1], ho = sizes[s][2], wo = sizes[s][3], n = 8;
        size_t nin = (size_t)n * h * w, nout = (size_t)n * ho * wo, plane = (size_t)ho * wo;
        float *x = malloc(nin * sizeof(float)), *y1 = malloc(nout * sizeof(float)), *y2 = malloc(nout * sizeof(float));
        float *y4 = malloc(nout * sizeof(float)), *one = malloc(plane * sizeof(float));
        assert_true(x && y1 && y2 && y4 && one);
        for (size_t i = 0; i < nin; i++) x[i] = (float)sin(0.37 * (double)i) + 0.25f * (float)((i * 7919u) % 13u);
        run_resize(1, x, n, h, w, ho, wo, y1);
        run_resize(2, x, n, h, w, ho, wo, y2);
        run_resize(4, x, n, h, w, ho, wo, y4);
        assert_memory_equal(y1, y2, nout * sizeof(float));
        assert_memory_equal(y1, y4, nout * sizeof(float));
        for (int k = 0; k < n; k++) {
            run_resize(2, x + (size_t)k * h * w, 1, h, w, ho, wo, one);
            assert_memory_equal(one, y1 + (size_t)k * plane, plane * sizeof(float));
        }
        free(x);
        free(y1);
        free(y2);
        free(y4);
        free(one);
    }
}

/* ------------------------------------------------------------- errors */

static void bad_arguments(void **state) {
    (void)state;
    float x[4] = {1, 2, 3, 4}, y[16];
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    assert_int_equal(cdf_resize_bicubic_aa(&ex, x, 1, 0, 2, 2, 2, y, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "resize"));
    assert_int_equal(cdf_resize_bicubic_aa(&ex, x, 1, 2, 2, 2, 0, y, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_resize_bicubic_aa(&ex, x, -1, 2, 2, 2, 2, y, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_resize_bicubic_aa(&ex, NULL, 1, 2, 2, 2, 2, y, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_resize_bicubic_aa(&ex, x, 1, 2, 2, 2, 2, NULL, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_resize_bicubic_aa(&ex, x, 0, 2, 2, 4, 4, y, &err), CDF_OK); /* no planes: nothing to do */
    /* 1x1 -> 4x4 of a constant stays that constant (one tap, weight 1) */
    x[0] = 0.3f;
    assert_int_equal(cdf_resize_bicubic_aa(&ex, x, 1, 1, 1, 4, 4, y, &err), CDF_OK);
    for (int i = 0; i < 16; i++) assert_true(y[i] == 0.3f);
    cdf_exec_release(&ex);
}

static void allocation_failures(void **state) {
    (void)state;
    float x[6 * 5], y[3 * 9], ref[3 * 9];
    for (int i = 0; i < 30; i++) x[i] = (float)i * 0.1f - 1.0f;
    run_resize(1, x, 1, 6, 5, 3, 9, ref);
    tu_oom st;
    cdf_allocator a = tu_oom_allocator(&st);
    long k = 1;
    for (;; k++) {
        memset(&st, 0, sizeof st);
        st.fail_at = k;
        cdf_error err = {0};
        cdf_exec ex;
        cdf_exec_init(&ex, 1, &err);
        cdf_set_allocator(&a);
        cdf_status s = cdf_resize_bicubic_aa(&ex, x, 1, 6, 5, 3, 9, y, &err);
        cdf_exec_release(&ex);
        cdf_set_allocator(NULL);
        if (st.live != 0) fail_msg("allocation %ld failed: %ld blocks leaked", k, st.live);
        if (st.failed == 0) {
            assert_int_equal(s, CDF_OK);
            assert_memory_equal(y, ref, sizeof ref);
            break;
        }
        assert_int_equal(s, CDF_ERR_NOMEM);
        assert_non_null(strstr(err.msg, "resize"));
    }
    assert_true(k > 4); /* weights of both passes and the intermediate buffer */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_upscale),
        cmocka_unit_test(extra_vectors),
        cmocka_unit_test(thread_and_batch_invariance),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
