/* Allocation-failure injection over a Stable Diffusion flow (libuv's
 * test-loop-oom style, as test_oom_pipeline.c does for DDIM): load the tiny
 * SD pipeline (model_index, scheduler, tokenizer, text encoder, UNet, VAE),
 * make a generator and run one step with classifier-free guidance on one
 * thread, failing allocation n.  Every injected failure must give
 * CDF_ERR_NOMEM with a message, no crash and no block left allocated.  The
 * run with the hook and no failure must start from the golden initial
 * latents of sd/cases/f16w_pndm_default and give the bytes of a run without
 * the hook.
 *
 * The real tokenizer's vocab.json (49408 entries) is a cJSON tree of ~10^5
 * allocations, so:
 *   oom_sweep_sd: every n, on a copy of tiny-sd15-b-f16 whose tokenizer keeps
 *     the first 2000 merges (vocab ids < 2512, plus the special tokens)
 *     (CDF_OOM_STRIDE=k: every k-th n of loading, for slow sanitizer builds);
 *   oom_sweep_sd_real_tokenizer: the folder as it is: every n of generation,
 *     and one n in LOAD_STRIDE during loading (CDF_OOM_FULL=1 in the
 *     environment: every n, which takes tens of minutes).
 * The tokenizer's own sweep (test_tokenizer_load.c) covers its loader fully. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdiffusers/pipeline.h"
#include "cdiffusers/rng.h"
#include "io/json.h"
#include "oom_alloc.h"
#include "small_tokenizer.h"

#define LOAD_STRIDE 1009
#define SMALL_MERGES 2000

#define N_LAT (4 * 8 * 8)
#define N_IMG (64 * 64 * 3)

typedef struct flow_result {
    cdf_status status;
    char msg[1024];
    int stage;            /* 0 load, 1 generator, 2 generate, 3 done */
    long load_calls;      /* allocations made by the end of loading */
    float latents[N_LAT]; /* initial latents seen by the step callback */
    int have_latents;
    float image[N_IMG];   /* NP output [1, 64, 64, 3] */
} flow_result;

static tu_oom *g_count; /* the hook's state while a flow runs under it, else NULL */

static int on_step(const cdf_step_info *si, void *user) {
    flow_result *r = user;
    if (si->step == -1 && si->batch * si->channels * si->height * si->width == N_LAT) {
        memcpy(r->latents, si->latents, sizeof r->latents);
        r->have_latents = 1;
    }
    return 0;
}

static void flow(const char *model, flow_result *r) {
    memset(r, 0, sizeof *r);
    cdf_error err = {0};
    cdf_pipeline *p = NULL;
    cdf_generator *g = NULL;
    cdf_tensor img;
    memset(&img, 0, sizeof img);
    cdf_load_options lo = {CDF_PIPELINE_SD, NULL};
    cdf_status s = cdf_pipeline_load(model, &lo, &p, &err);
    if (g_count) r->load_calls = g_count->calls;
    if (s) {
        assert_null(p);
        r->status = s;
        snprintf(r->msg, sizeof r->msg, "%s", err.msg);
        return;
    }
    r->stage = 1;
    s = cdf_generator_new(CDF_RNG_NUMPY, "0", &g, &err);
    if (s) {
        assert_null(g);
        r->status = s;
        snprintf(r->msg, sizeof r->msg, "%s", err.msg);
        cdf_pipeline_free(p);
        return;
    }
    r->stage = 2;
    const char *prompt = "Labrador in the style of Vermeer";
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.prompts = &prompt;
    o.num_prompts = 1;
    o.num_inference_steps = 1;
    o.guidance_scale = 7.5;
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
        assert_int_equal(cdf_tensor_numel(&img), N_IMG);
        memcpy(r->image, img.data, sizeof r->image);
    }
    cdf_tensor_free(&img);
    cdf_generator_free(g);
    cdf_pipeline_free(p);
}

static int want(long n, long load_calls, int stride) {
    return stride <= 1 || n > load_calls || n % stride == 0;
}

/* The sweep over `model`; stride 1: every allocation. */
static void sweep(const char *model, int stride, const char *what) {
    float *golden = tu_load_bin(tu_data("sd/cases/f16w_pndm_default/latents_init.f32.bin"), N_LAT, sizeof(float));
    assert_non_null(golden);

    static flow_result base, r;
    flow(model, &base);
    if (base.status) fail_msg("flow fails without injection: %s", base.msg);
    assert_true(base.have_latents);
    assert_memory_equal(base.latents, golden, sizeof base.latents);

    /* count the allocations of a clean run under the hook */
    tu_oom st;
    cdf_allocator a = tu_oom_allocator(&st);
    memset(&st, 0, sizeof st);
    g_count = &st;
    cdf_set_allocator(&a);
    flow(model, &r);
    cdf_set_allocator(NULL);
    g_count = NULL;
    if (r.status) fail_msg("flow with the hook and no failure: %s", r.msg);
    assert_int_equal(st.live, 0);
    assert_true(r.have_latents);
    assert_memory_equal(r.latents, golden, sizeof r.latents);
    assert_memory_equal(r.image, base.image, sizeof r.image);
    long total = st.calls, load_calls = r.load_calls;
    assert_true(load_calls > 0 && load_calls < total);

    long tried = 0, per_stage[3] = {0, 0, 0};
    for (long n = 1; n <= total; n++) {
        if (!want(n, load_calls, stride)) continue;
        memset(&st, 0, sizeof st);
        st.fail_at = n;
        g_count = &st;
        cdf_set_allocator(&a);
        flow(model, &r);
        cdf_set_allocator(NULL);
        g_count = NULL;
        tried++;
        if (st.live != 0)
            fail_msg("allocation %ld failed: %ld blocks leaked (status %s at stage %d: %s)", n, st.live,
                     cdf_status_name(r.status), r.stage, r.msg);
        if (st.failed != 1) fail_msg("allocation %ld was never made (the flow is not deterministic)", n);
        if (r.status != CDF_ERR_NOMEM)
            fail_msg("allocation %ld of %ld failed: status %s at stage %d (%s), expected ERR_NOMEM", n, total,
                     cdf_status_name(r.status), r.stage, r.msg);
        if (!r.msg[0]) fail_msg("allocation %ld failed: ERR_NOMEM without a message", n);
        per_stage[r.stage]++;
    }
    printf("%s: %ld allocations (%ld in loading); failed %ld of them: in load %ld, generator %ld, generate %ld\n",
           what, total, load_calls, tried, per_stage[0], per_stage[1], per_stage[2]);
    assert_true(per_stage[0] > 0);
    assert_true(per_stage[1] > 0);
    assert_true(per_stage[2] > 0);
    free(golden);
}

static void oom_sweep_sd(void **state) {
    (void)state;
    static const char *const links[] = {"model_index.json", "scheduler", "text_encoder", "unet", "vae", NULL};
    char *dir = tu_small_tokenizer_copy(tu_data("sd/pipelines/tiny-sd15-b-f16"), links, SMALL_MERGES);
    /* CDF_OOM_STRIDE=k: one allocation in k during loading (the sanitizer job's time budget) */
    const char *st = getenv("CDF_OOM_STRIDE");
    int stride = st ? atoi(st) : 1;
    if (stride < 1) stride = 1;
    sweep(dir, stride, stride == 1 ? "SD flow, small tokenizer, every allocation"
                                   : "SD flow, small tokenizer, every allocation of generation, a stride of loading");
    tu_rmtree(dir);
    free(dir);
}

static void oom_sweep_sd_real_tokenizer(void **state) {
    (void)state;
    const char *full_env = getenv("CDF_OOM_FULL");
    int full = full_env && full_env[0] == '1';
    char model[4096];
    snprintf(model, sizeof model, "%s", tu_data("sd/pipelines/tiny-sd15-b-f16"));
    sweep(model, full ? 1 : LOAD_STRIDE,
          full ? "SD flow, every allocation" : "SD flow, every allocation of generation, a stride of loading");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(oom_sweep_sd),
        cmocka_unit_test(oom_sweep_sd_real_tokenizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
