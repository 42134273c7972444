/* Allocation-failure injection over the whole public flow, libuv style: a
 * counting allocator installed with cdf_set_allocator fails allocation n
 * (1-based) and the flow (pipeline load, generator, a 2-step generate, frees)
 * is run for n = 1, 2, 3, ... until a run makes fewer than n allocations.
 * Every injected failure must come back as CDF_ERR_NOMEM with a message,
 * without a crash, and with every block freed.  The run that completes must
 * start from the golden initial noise and give the bytes of a run made
 * without the hook.  Only the hook's allocations are counted (OpenBLAS and
 * libgomp allocate on their own), so the test runs single-threaded.
 * cJSON returns NULL both for malformed text and for a failed allocation;
 * io/json.c tells them apart, which the second test checks directly. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdiffusers/pipeline.h"
#include "cdiffusers/rng.h"
#include "io/json.h"
#include "oom_alloc.h"

#define N_PIX (3 * 16 * 16)

typedef struct flow_result {
    cdf_status status;
    char msg[1024];
    int stage;                 /* 0 load, 1 generator, 2 generate, 3 done */
    float noise[N_PIX];        /* initial latents seen by the step callback */
    int have_noise;
    float image[N_PIX];        /* NP output [1, 16, 16, 3] */
} flow_result;

static int on_step(const cdf_step_info *si, void *user) {
    flow_result *r = user;
    if (si->step == -1 && si->batch * si->channels * si->height * si->width == N_PIX) {
        memcpy(r->noise, si->latents, sizeof r->noise);
        r->have_noise = 1;
    }
    return 0;
}

/* The whole flow; everything it made is freed before it returns. */
static void flow(const char *model, flow_result *r) {
    memset(r, 0, sizeof *r);
    cdf_error err = {0};
    cdf_pipeline *p = NULL;
    cdf_generator *g = NULL;
    cdf_tensor img;
    memset(&img, 0, sizeof img);
    cdf_load_options lo = {CDF_PIPELINE_DDIM, NULL};
    cdf_status s = cdf_pipeline_load(model, &lo, &p, &err);
    if (s) {
        assert_null(p);
        r->status = s;
        snprintf(r->msg, sizeof r->msg, "%s", err.msg);
        return;
    }
    r->stage = 1;
    s = cdf_generator_new(CDF_RNG_NUMPY, "5", &g, &err);
    if (s) {
        assert_null(g);
        r->status = s;
        snprintf(r->msg, sizeof r->msg, "%s", err.msg);
        cdf_pipeline_free(p);
        return;
    }
    r->stage = 2;
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.num_inference_steps = 2;
    o.threads = 1;
    o.output_type = CDF_OUTPUT_NP;
    o.on_step = on_step;
    o.on_step_user = r;
    s = cdf_pipeline_generate(p, &o, &g, 1, &img, NULL);
    if (s) {
        assert_null(img.data);
        r->status = s;
        snprintf(r->msg, sizeof r->msg, "%s", cdf_pipeline_last_error(p));
    } else {
        r->stage = 3;
        assert_int_equal(img.dtype, CDF_F32);
        assert_int_equal(cdf_tensor_numel(&img), N_PIX);
        memcpy(r->image, img.data, sizeof r->image);
    }
    cdf_tensor_free(&img);
    cdf_generator_free(g);
    cdf_pipeline_free(p);
}

static void oom_sweep(void **state) {
    (void)state;
    char model[4096];
    snprintf(model, sizeof model, "%s", tu_data("ddpm/models/tiny_fourier_f16"));
    float *golden_noise = tu_load_bin(tu_data("ddpm/cases/ddim_fourier_offset1/noise.bin"), N_PIX, sizeof(float));
    assert_non_null(golden_noise);

    /* without the hook: the reference bytes, and the golden noise */
    static flow_result base, r;
    flow(model, &base);
    if (base.status) fail_msg("flow fails without injection: %s", base.msg);
    assert_true(base.have_noise);
    assert_memory_equal(base.noise, golden_noise, sizeof base.noise);

    tu_oom st;
    cdf_allocator a = tu_oom_allocator(&st);
    long n = 1, per_stage[3] = {0, 0, 0};
    for (;; n++) {
        memset(&st, 0, sizeof st);
        st.fail_at = n;
        cdf_set_allocator(&a);
        flow(model, &r);
        cdf_set_allocator(NULL);
        if (st.live != 0)
            fail_msg("allocation %ld failed: %ld blocks leaked (status %s at stage %d: %s)", n, st.live,
                     cdf_status_name(r.status), r.stage, r.msg);
        if (st.failed == 0) break; /* the flow made fewer than n allocations: it ran clean */
        if (r.status != CDF_ERR_NOMEM)
            fail_msg("allocation %ld of %ld failed: status %s at stage %d (%s), expected ERR_NOMEM", n, st.calls,
                     cdf_status_name(r.status), r.stage, r.msg);
        if (!r.msg[0]) fail_msg("allocation %ld failed: ERR_NOMEM without a message", n);
        per_stage[r.stage]++;
    }
    printf("%ld allocations in the flow: failures injected in load %ld, generator %ld, generate %ld\n", n - 1,
           per_stage[0], per_stage[1], per_stage[2]);
    /* the clean run under the hook */
    if (r.status != CDF_OK) fail_msg("flow with the hook and no failure: %s", r.msg);
    assert_int_equal(st.calls, n - 1);
    assert_true(r.have_noise);
    assert_memory_equal(r.noise, golden_noise, sizeof r.noise);
    assert_memory_equal(r.image, base.image, sizeof r.image);
    /* every stage allocates, so every stage's failure paths were exercised */
    assert_true(per_stage[0] > 0);
    assert_true(per_stage[1] > 0);
    assert_true(per_stage[2] > 0);
    free(golden_noise);
}

/* Well-formed JSON: every injected failure is ERR_NOMEM; malformed JSON is
 * ERR_FORMAT whether or not an allocation fails on the way. */
static void json_nomem_vs_format(void **state) {
    (void)state;
    static const char *const good[] = {
        "{\"a\": [1, -2.5e+3, 0, true, false, null], \"b\": {\"c\": \"x\\n\\u00e9\\ud83d\\ude00\\/\"}, \"d\": []}",
        "\xEF\xBB\xBF{\"k\": 1}",
        "  \"a top-level string\"  ",
        "[[[[{}]]], {\"\": [-0.5E-7, 12]}]",
        "\r\n\t-0\n",
    };
    static const char *const bad[] = {
        "", "   ", "{", "{\"a\":}", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "{a:1}", "[1 2]",
        "{\"a\":1 \"b\":2}", "[tru]", "nul", "[-]", "[.5]", "\"\\x\"", "\"\\u12\"", "\"\\udc00\"",
        "\"\\ud800\"", "\"\\ud800\\u0041\"", "\"abc", "[\"a\", {\"b\": [1, 2}]",
    };
    tu_oom st;
    cdf_allocator a = tu_oom_allocator(&st);
    for (size_t g = 0; g < sizeof good / sizeof good[0]; g++) {
        long nomem = 0;
        for (long n = 1;; n++) {
            memset(&st, 0, sizeof st);
            st.fail_at = n;
            cdf_set_allocator(&a);
            cJSON *root = NULL;
            cdf_error err = {0};
            cdf_status s = cdf_json_parse(good[g], strlen(good[g]), "good.json", &root, &err);
            cJSON_Delete(root);
            cdf_set_allocator(NULL);
            assert_int_equal(st.live, 0);
            if (st.failed == 0) {
                if (s != CDF_OK) fail_msg("good JSON %zu: %s", g, err.msg);
                break;
            }
            if (s != CDF_ERR_NOMEM)
                fail_msg("good JSON %zu, allocation %ld failed: %s (%s)", g, n, cdf_status_name(s), err.msg);
            assert_null(root);
            assert_non_null(strstr(err.msg, "good.json"));
            nomem++;
        }
        assert_true(nomem > 0);
    }
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        for (long n = 0;; n++) { /* n = 0: no failure injected */
            memset(&st, 0, sizeof st);
            st.fail_at = n;
            cdf_set_allocator(&a);
            cJSON *root = NULL;
            cdf_error err = {0};
            cdf_status s = cdf_json_parse(bad[b], strlen(bad[b]), "bad.json", &root, &err);
            cJSON_Delete(root);
            cdf_set_allocator(NULL);
            assert_int_equal(st.live, 0);
            if (s != CDF_ERR_FORMAT)
                fail_msg("malformed JSON \"%s\", allocation %ld failed: %s (%s)", bad[b], n, cdf_status_name(s),
                         err.msg);
            assert_non_null(strstr(err.msg, "invalid JSON"));
            if (n > 0 && st.failed == 0) break;
        }
    }
}

/* Without injected failures, no text is ever reported as out of memory:
 * random byte edits of real config files are either parsed or ERR_FORMAT. */
static void json_mutations_never_nomem(void **state) {
    (void)state;
    static const char *const files[] = {"ddpm/models/tiny_cifar/unet/config.json",
                                        "ddpm/models/tiny_fourier_f16/scheduler/scheduler_config.json",
                                        "ddpm/cases/ddim_2step_seed0/case.json"};
    static const char alphabet[] = "{}[]:,\"\\/0123456789-+.eEtrufalsn ubx\t\n";
    uint64_t seed = 88172645463325252ull;
    long parsed = 0, format = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char *orig = tu_read_text(tu_data("%s", files[f]));
        assert_non_null(orig);
        size_t len = strlen(orig);
        char *txt = malloc(len + 1);
        assert_non_null(txt);
        for (int it = 0; it < 2000; it++) {
            memcpy(txt, orig, len + 1);
            int edits = 1 + it % 3;
            for (int e = 0; e < edits; e++) {
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                size_t at = (size_t)(seed % len);
                txt[at] = alphabet[(seed >> 32) % (sizeof alphabet - 1)];
            }
            cJSON *root = NULL;
            cdf_error err = {0};
            cdf_status s = cdf_json_parse(txt, len, "mutated.json", &root, &err);
            cJSON_Delete(root);
            if (s == CDF_OK) parsed++;
            else if (s == CDF_ERR_FORMAT) format++;
            else fail_msg("mutated %s: %s (%s)\n%s", files[f], cdf_status_name(s), err.msg, txt);
        }
        free(txt);
        free(orig);
    }
    printf("mutated JSON: %ld parsed, %ld malformed\n", parsed, format);
    assert_true(parsed > 0);
    assert_true(format > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(oom_sweep),
        cmocka_unit_test(json_nomem_vs_format),
        cmocka_unit_test(json_mutations_never_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
