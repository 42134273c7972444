/* UNet2DConditionModel as Stable Diffusion XL configures it (addition_embed_type
 * "text_time", transformer_layers_per_block per level, linear projections,
 * DownBlock2D first) against the golden first UNet call of every SDXL case:
 * unet0_input, unet0_timestep, prompt_embeds, pooled_prompt_embeds,
 * add_time_ids -> unet0_add_embeds, unet0_output.  Also 1 vs 2 threads, a
 * batch row alone, and configs / arguments that must be refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "models/unet2d_cond.h"
#include "sd_case.h"

static cdf_unet2d_cond *load_unet(const char *pipe) {
    char dir[1400];
    snprintf(dir, sizeof dir, "%s/unet", pipe);
    cdf_error err = {0};
    cdf_unet2d_cond *m = NULL;
    if (cdf_unet2d_cond_load(dir, NULL, &m, &err)) fprintf(stderr, "load %s: %s\n", dir, err.msg);
    return m;
}

static int run(const cdf_unet2d_cond *m, const float *x, int batch, int h, int w, double t, const float *ctx, int seq,
               const float *pooled, const float *ids, int threads, float *out) {
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, threads, &err);
    cdf_status s = cdf_unet2d_cond_forward_added(&ex, m, x, batch, h, w, t, ctx, seq, pooled, ids, out);
    if (s) fprintf(stderr, "forward: %s\n", err.msg);
    cdf_exec_release(&ex);
    return s ? -1 : 0;
}

static void golden_case(void **state) {
    const char *dir = *state;
    cJSON *c = sd_case_json(dir);
    assert_non_null(c);
    size_t nin, nctx, nout, npool, nids, nadd;
    float *x = sd_case_array(dir, c, "unet0_input", &nin);
    float *ctx = sd_case_array(dir, c, "prompt_embeds", &nctx);
    float *pooled = sd_case_array(dir, c, "pooled_prompt_embeds", &npool);
    float *ids = sd_case_array(dir, c, "add_time_ids", &nids);
    float *ref_add = sd_case_array(dir, c, "unet0_add_embeds", &nadd);
    float *ref = sd_case_array(dir, c, "unet0_output", &nout);
    assert_non_null(x);
    assert_non_null(ctx);
    assert_non_null(pooled);
    assert_non_null(ids);
    assert_non_null(ref_add);
    assert_non_null(ref);
    int batch = sd_case_dim(c, "unet0_input", 0), h = sd_case_dim(c, "unet0_input", 2),
        w = sd_case_dim(c, "unet0_input", 3), seq = sd_case_dim(c, "prompt_embeds", 1);
    assert_int_equal(sd_case_dim(c, "prompt_embeds", 0), batch);
    assert_int_equal(nids, (size_t)batch * 6);
    double t = cJSON_GetObjectItem(c, "unet0_timestep")->valuedouble;
    cdf_unet2d_cond *m = load_unet(case_pipeline_in("sdxl", c));
    assert_non_null(m);
    int pdim = cdf_unet2d_cond_pooled_dim(m);
    assert_int_equal(npool, (size_t)batch * pdim);
    assert_int_equal(nadd, (size_t)batch * m->cfg.add_embed_in);

    /* add_embedding's input */
    cdf_error err = {0};
    float *add = malloc(nadd * sizeof(float));
    assert_int_equal(cdf_unet2d_cond_add_embeds(m, pooled, ids, batch, add, &err), CDF_OK);
    double ea = tu_max_abs_diff_f32(add, ref_add, nadd), tola = sd_case_atol(c, "unet0_add_embeds");

    /* the forward pass, 2 threads, against the golden */
    float *out = malloc(nout * sizeof(float)), *out1 = malloc(nout * sizeof(float));
    assert_int_equal(run(m, x, batch, h, w, t, ctx, seq, pooled, ids, 2, out), 0);
    double e = tu_max_abs_diff_f32(out, ref, nout), tol = sd_case_atol(c, "unet0_output");
    printf("%-40s rows %d %dx%d  add_embeds max err %.2e (tol %.1e)  unet0_output max err %.2e (tol %.1e)\n",
           strrchr(dir, '/') + 1, batch, h, w, ea, tola, e, tol);
    assert_true(tola > 0 && tol > 0);
    assert_true(ea <= tola);
    assert_true(e <= tol);

    /* 1 thread: the same bytes */
    assert_int_equal(run(m, x, batch, h, w, t, ctx, seq, pooled, ids, 1, out1), 0);
    assert_memory_equal(out1, out, nout * sizeof(float));
    if (batch > 1) {
        /* the last row alone, 1 thread: bit-identical to its batch slot */
        int r = batch - 1;
        size_t per = nout / (size_t)batch, pin = nin / (size_t)batch, pctx = nctx / (size_t)batch;
        float one_add[512];
        assert_true((size_t)m->cfg.add_embed_in <= sizeof one_add / sizeof *one_add);
        assert_int_equal(cdf_unet2d_cond_add_embeds(m, pooled + (size_t)r * pdim, ids + (size_t)r * 6, 1, one_add, &err),
                         CDF_OK);
        assert_memory_equal(one_add, add + (size_t)r * m->cfg.add_embed_in, sizeof(float) * m->cfg.add_embed_in);
        assert_int_equal(run(m, x + r * pin, 1, h, w, t, ctx + r * pctx, seq, pooled + (size_t)r * pdim,
                             ids + (size_t)r * 6, 1, out1),
                         0);
        assert_memory_equal(out1, out + r * per, per * sizeof(float));
    }
    cdf_unet2d_cond_free(m);
    free(out);
    free(out1);
    free(add);
    free(x);
    free(ctx);
    free(pooled);
    free(ids);
    free(ref_add);
    free(ref);
    cJSON_Delete(c);
}

/* ---- refused configs and arguments ---- */

/* A unet folder in a temp dir: tiny-sdxl-a's weights (linked) and its config with key set to json (NULL: removed). */
static char *patched_unet(const char *key, const char *json) {
    char *dir = tu_tmpdir();
    char src[1400], dst[1400];
    snprintf(src, sizeof src, "%s", tu_data("sdxl/pipelines/tiny-sdxl-a/unet/diffusion_pytorch_model.safetensors"));
    snprintf(dst, sizeof dst, "%s/diffusion_pytorch_model.safetensors", dir);
    assert_int_equal(symlink(src, dst), 0);
    char *txt = tu_read_text(tu_data("sdxl/pipelines/tiny-sdxl-a/unet/config.json"));
    assert_non_null(txt);
    cJSON *cfg = cJSON_Parse(txt);
    free(txt);
    assert_non_null(cfg);
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, key);
    if (json) {
        cJSON *v = cJSON_Parse(json);
        assert_non_null(v);
        cJSON_AddItemToObject(cfg, key, v);
    }
    char *out = cJSON_Print(cfg);
    cJSON_Delete(cfg);
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    FILE *f = fopen(dst, "w");
    assert_non_null(f);
    fputs(out, f);
    fclose(f);
    cJSON_free(out);
    return dir;
}

static cdf_status load_patched(const char *key, const char *json, cdf_error *err) {
    char *dir = patched_unet(key, json);
    cdf_unet2d_cond *m = NULL;
    memset(err, 0, sizeof *err);
    cdf_status s = cdf_unet2d_cond_load(dir, NULL, &m, err);
    printf("  %s = %s -> %d: %s\n", key, json ? json : "(absent)", (int)s, s ? err->msg : "");
    cdf_unet2d_cond_free(m);
    tu_rmtree(dir);
    free(dir);
    return s;
}

static void bad_configs(void **state) {
    (void)state;
    cdf_error err;
    /* the unpatched copy loads */
    assert_int_equal(load_patched("use_linear_projection", "true", &err), CDF_OK);
    assert_int_equal(load_patched("transformer_layers_per_block", "[1, 2]", &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "transformer_layers_per_block"));
    assert_non_null(strstr(err.msg, "config.json"));
    /* right length, wrong counts: the checkpoint does not match (strict loading) */
    assert_int_not_equal(load_patched("transformer_layers_per_block", "[1, 2, 1]", &err), CDF_OK);
    assert_int_not_equal(load_patched("transformer_layers_per_block", "1", &err), CDF_OK);
    assert_int_equal(load_patched("addition_embed_type", "\"text\"", &err), CDF_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "addition_embed_type"));
    assert_int_equal(load_patched("addition_embed_type", "\"image\"", &err), CDF_ERR_UNSUPPORTED);
    assert_int_equal(load_patched("addition_time_embed_dim", "null", &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "addition_time_embed_dim"));
    assert_int_equal(load_patched("addition_time_embed_dim", NULL, &err), CDF_ERR_CONFIG);
    assert_int_equal(load_patched("addition_time_embed_dim", "0", &err), CDF_ERR_CONFIG);
    assert_int_equal(load_patched("projection_class_embeddings_input_dim", "null", &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "projection_class_embeddings_input_dim"));
    assert_int_equal(load_patched("projection_class_embeddings_input_dim", "48", &err), CDF_ERR_CONFIG);
    /* add_embedding.linear_1 is [temb, 60]: another width does not load */
    assert_int_not_equal(load_patched("projection_class_embeddings_input_dim", "61", &err), CDF_OK);
    assert_non_null(strstr(err.msg, "projection_class_embeddings_input_dim"));
    assert_non_null(strstr(err.msg, "add_embedding.linear_1.weight"));
    /* without text_time the add_embedding weights are left over (strict loading) */
    {
        char *dir = patched_unet("addition_embed_type", "null");
        char p[1400];
        snprintf(p, sizeof p, "%s/config.json", dir);
        char *txt = tu_read_text(p);
        cJSON *cfg = cJSON_Parse(txt);
        free(txt);
        cJSON_ReplaceItemInObjectCaseSensitive(cfg, "addition_time_embed_dim", cJSON_CreateNull());
        cJSON_ReplaceItemInObjectCaseSensitive(cfg, "projection_class_embeddings_input_dim", cJSON_CreateNull());
        char *o = cJSON_Print(cfg);
        cJSON_Delete(cfg);
        FILE *f = fopen(p, "w");
        fputs(o, f);
        fclose(f);
        cJSON_free(o);
        cdf_unet2d_cond *m = NULL;
        memset(&err, 0, sizeof err);
        cdf_status s = cdf_unet2d_cond_load(dir, NULL, &m, &err);
        printf("  no addition_embed_type -> %d: %s\n", (int)s, err.msg);
        assert_int_not_equal(s, CDF_OK);
        assert_non_null(strstr(err.msg, "add_embedding"));
        cdf_unet2d_cond_free(m);
        tu_rmtree(dir);
        free(dir);
    }
}

static void null_conditioning(void **state) {
    (void)state;
    cdf_unet2d_cond *m = load_unet(tu_data("sdxl/pipelines/tiny-sdxl-a"));
    assert_non_null(m);
    int pdim = cdf_unet2d_cond_pooled_dim(m);
    assert_int_equal(pdim, 12);
    assert_int_equal(m->cfg.addition_time_embed_dim, 8);
    assert_int_equal(m->cfg.add_embed_in, 60);
    int h = 8, w = 8, seq = 77, cd = m->cfg.cross_attention_dim[0];
    float *x = calloc((size_t)4 * h * w, sizeof(float)), *ctx = calloc((size_t)seq * cd, sizeof(float));
    float *out = calloc((size_t)4 * h * w, sizeof(float));
    float pooled[12] = {0}, ids[6] = {64, 64, 0, 0, 64, 64};
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    assert_int_equal(cdf_unet2d_cond_forward(&ex, m, x, 1, h, w, 500.0, ctx, seq, out), CDF_ERR_ARG);
    printf("  forward without conditioning: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "text_time"));
    memset(&err, 0, sizeof err);
    assert_int_equal(cdf_unet2d_cond_forward_added(&ex, m, x, 1, h, w, 500.0, ctx, seq, NULL, ids, out), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "text_embeds"));
    memset(&err, 0, sizeof err);
    assert_int_equal(cdf_unet2d_cond_forward_added(&ex, m, x, 1, h, w, 500.0, ctx, seq, pooled, NULL, out), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "time_ids"));
    memset(&err, 0, sizeof err);
    assert_int_equal(cdf_unet2d_cond_forward_added(&ex, m, x, 1, h, w, 500.0, ctx, seq, pooled, ids, out), CDF_OK);
    float add[60];
    assert_int_equal(cdf_unet2d_cond_add_embeds(m, NULL, ids, 1, add, &err), CDF_ERR_ARG);
    /* the time ids change the output (the added embedding reaches the blocks) */
    float *out2 = calloc((size_t)4 * h * w, sizeof(float));
    float ids2[6] = {1024, 1024, 0, 0, 1024, 1024};
    assert_int_equal(cdf_unet2d_cond_forward_added(&ex, m, x, 1, h, w, 500.0, ctx, seq, pooled, ids2, out2), CDF_OK);
    assert_true(tu_max_abs_diff_f32(out, out2, (size_t)4 * h * w) > 1e-3);
    cdf_exec_release(&ex);
    cdf_unet2d_cond_free(m);
    free(out2);
    free(x);
    free(ctx);
    free(out);
}

/* An SD (no addition embedding) UNet refuses SDXL conditioning. */
static void sd_refuses_added(void **state) {
    (void)state;
    char **dirs;
    int n = case_list_in("sd", &dirs);
    assert_true(n > 0);
    cJSON *c = sd_case_json(dirs[0]);
    cdf_unet2d_cond *m = load_unet(sd_case_pipeline(c));
    assert_non_null(m);
    assert_int_equal(cdf_unet2d_cond_pooled_dim(m), 0);
    int h = 8, w = 8, seq = 77, cd = m->cfg.cross_attention_dim[0];
    float *x = calloc((size_t)m->cfg.in_channels * h * w, sizeof(float)), *ctx = calloc((size_t)seq * cd, sizeof(float));
    float *out = calloc((size_t)m->cfg.out_channels * h * w, sizeof(float));
    float pooled[16] = {0}, ids[6] = {0}, add[64];
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    assert_int_equal(cdf_unet2d_cond_forward_added(&ex, m, x, 1, h, w, 500.0, ctx, seq, pooled, ids, out), CDF_ERR_ARG);
    memset(&err, 0, sizeof err);
    assert_int_equal(cdf_unet2d_cond_add_embeds(m, pooled, ids, 1, add, &err), CDF_ERR_ARG);
    cdf_exec_release(&ex);
    cdf_unet2d_cond_free(m);
    cJSON_Delete(c);
    for (int i = 0; i < n; i++) free(dirs[i]);
    free(dirs);
    free(x);
    free(ctx);
    free(out);
}

int main(void) {
    char **dirs;
    int n = case_list_in("sdxl", &dirs);
    struct CMUnitTest *tests = calloc((size_t)n + 3, sizeof *tests);
    for (int i = 0; i < n; i++) {
        tests[i].name = strrchr(dirs[i], '/') + 1;
        tests[i].test_func = golden_case;
        tests[i].initial_state = dirs[i];
    }
    tests[n].name = "bad_configs";
    tests[n].test_func = bad_configs;
    tests[n + 1].name = "null_conditioning";
    tests[n + 1].test_func = null_conditioning;
    tests[n + 2].name = "sd_refuses_added";
    tests[n + 2].test_func = sd_refuses_added;
    int rc = _cmocka_run_group_tests("unet_sdxl", tests, (size_t)n + 3, NULL, NULL);
    for (int i = 0; i < n; i++) free(dirs[i]);
    free(dirs);
    free(tests);
    return rc;
}
