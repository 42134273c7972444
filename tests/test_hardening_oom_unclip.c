/* Allocation-failure injection over the UnCLIP pipeline (libuv's
 * test-loop-oom style, as test_hardening_oom_sd.c does for Stable
 * Diffusion), on tiny-karlo-a with guidance, two prompts, 2/2/2 steps and a
 * dump callback:
 *   oom_generate_every_allocation: the pipeline is loaded once; then every
 *     allocation of one generate call is failed in turn.  Each must give
 *     CDF_ERR_NOMEM with a message and leave no block allocated, and the call
 *     with the hook and no failure gives the bytes of a call without it;
 *   oom_load_every_allocation: loading fails at each of its allocations, on a
 *     copy whose tokenizer keeps 2000 merges (the real vocab.json alone is
 *     ~10^5 cJSON allocations; the tokenizer's own sweep is in
 *     test_tokenizer_load.c): NOMEM with a message, nothing leaked
 *     (CDF_OOM_STRIDE=k in the environment: every k-th one, for the slow
 *     sanitizer build). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdiffusers/pipeline.h"
#include "cdiffusers/rng.h"
#include "oom_alloc.h"
#include "small_tokenizer.h"

static const char *const k_prompts[2] = {"a red frog on a leaf", "an astronaut riding a horse"};

static int on_dump(const char *name, const cdf_tensor *t, void *user) {
    (void)name;
    (void)user;
    return t->data == NULL; /* every dump carries data */
}

static void options(cdf_generate_options *o) {
    cdf_generate_options_init(o);
    o->prompts = k_prompts;
    o->num_prompts = 2;
    o->prior_num_inference_steps = 2;
    o->decoder_num_inference_steps = 2;
    o->super_res_num_inference_steps = 2;
    o->threads = 1;
    o->on_dump = on_dump;
}

/* One generate call with generators [1, 2]; 0 on success, else the status
 * with the pipeline's message in msg. */
static cdf_status generate(cdf_pipeline *p, cdf_tensor *img, char *msg, size_t n) {
    cdf_generator *g[2] = {NULL, NULL};
    cdf_error err = {0};
    cdf_status s = cdf_generator_new(CDF_RNG_NUMPY, "1", &g[0], &err);
    if (!s) s = cdf_generator_new(CDF_RNG_NUMPY, "2", &g[1], &err);
    if (s) {
        snprintf(msg, n, "%s", err.msg);
    } else {
        cdf_generate_options o;
        options(&o);
        s = cdf_pipeline_generate(p, &o, g, 2, img, NULL);
        if (s) snprintf(msg, n, "%s", cdf_pipeline_last_error(p));
    }
    cdf_generator_free(g[0]);
    cdf_generator_free(g[1]);
    return s;
}

static void oom_generate_every_allocation(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_pipeline *p = NULL;
    if (cdf_pipeline_load(tu_data("unclip/pipelines/tiny-karlo-a"), NULL, &p, &err)) fail_msg("%s", err.msg);
    char msg[1024];
    cdf_tensor want, got;
    if (generate(p, &want, msg, sizeof msg)) fail_msg("%s", msg);

    tu_oom st;
    memset(&st, 0, sizeof st);
    cdf_allocator a = tu_oom_allocator(&st);
    cdf_set_allocator(&a);
    cdf_status s = generate(p, &got, msg, sizeof msg);
    long total = st.calls;
    if (!s) assert_memory_equal(want.data, got.data, (size_t)cdf_tensor_numel(&want) * sizeof(float));
    cdf_tensor_free(&got); /* under the hook: it was allocated there */
    cdf_set_allocator(NULL);
    if (s) fail_msg("generate with the hook and no failure: %s", msg);
    assert_int_equal(st.live, 0);

    for (long n = 1; n <= total; n++) {
        memset(&st, 0, sizeof st);
        st.fail_at = n;
        memset(&got, 0, sizeof got);
        cdf_set_allocator(&a);
        s = generate(p, &got, msg, sizeof msg);
        cdf_set_allocator(NULL);
        if (st.failed != 1) fail_msg("allocation %ld was never made (the call is not deterministic)", n);
        if (s != CDF_ERR_NOMEM)
            fail_msg("allocation %ld of %ld failed: status %s (%s), expected ERR_NOMEM", n, total, cdf_status_name(s),
                     msg);
        if (!msg[0]) fail_msg("allocation %ld failed: ERR_NOMEM without a message", n);
        assert_null(got.data);
        if (st.live != 0) fail_msg("allocation %ld failed: %ld blocks leaked (%s)", n, st.live, msg);
    }
    printf("generate: failed each of its %ld allocations\n", total);
    /* the pipeline is unharmed by the failed calls */
    if (generate(p, &got, msg, sizeof msg)) fail_msg("%s", msg);
    assert_memory_equal(want.data, got.data, (size_t)cdf_tensor_numel(&want) * sizeof(float));
    cdf_tensor_free(&got);
    cdf_tensor_free(&want);
    cdf_pipeline_free(p);
}

static void oom_load_every_allocation(void **state) {
    (void)state;
    static const char *const links[] = {"model_index.json", "prior_scheduler", "decoder_scheduler",
                                        "super_res_scheduler", "text_encoder", "prior", "text_proj", "decoder",
                                        "super_res_first", "super_res_last", NULL};
    char *dir = tu_small_tokenizer_copy(tu_data("unclip/pipelines/tiny-karlo-a"), links, 2000);
    tu_oom st;
    memset(&st, 0, sizeof st);
    cdf_allocator a = tu_oom_allocator(&st);
    cdf_error err = {0};
    cdf_pipeline *p = NULL;
    cdf_set_allocator(&a);
    cdf_status s = cdf_pipeline_load(dir, NULL, &p, &err);
    cdf_pipeline_free(p);
    cdf_set_allocator(NULL);
    if (s) fail_msg("%s", err.msg);
    assert_int_equal(st.live, 0);
    long total = st.calls, tried = 0;
    const char *se = getenv("CDF_OOM_STRIDE");
    long stride = se && atol(se) > 1 ? atol(se) : 1;
    for (long n = 1; n <= total; n++) {
        if (n % stride && n != total) continue;
        memset(&st, 0, sizeof st);
        st.fail_at = n;
        err = (cdf_error){0};
        p = NULL;
        cdf_set_allocator(&a);
        s = cdf_pipeline_load(dir, NULL, &p, &err);
        cdf_pipeline_free(p);
        cdf_set_allocator(NULL);
        tried++;
        if (s != CDF_ERR_NOMEM)
            fail_msg("load allocation %ld of %ld failed: status %s (%s), expected ERR_NOMEM", n, total,
                     cdf_status_name(s), err.msg);
        assert_null(p);
        if (!err.msg[0]) fail_msg("load allocation %ld failed without a message", n);
        if (st.live != 0) fail_msg("load allocation %ld failed: %ld blocks leaked (%s)", n, st.live, err.msg);
    }
    printf("load: %ld allocations, failed %ld of them\n", total, tried);
    assert_true(tried >= total / stride);
    tu_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(oom_generate_every_allocation),
        cmocka_unit_test(oom_load_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
