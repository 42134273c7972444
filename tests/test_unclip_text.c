/* The text side of UnCLIP (Karlo): CLIPTextModelWithProjection, PriorTransformer
 * and UnCLIPTextProjModel against the golden UnCLIP cases (tests/data/unclip,
 * real diffusers 0.32.2 / torch float32) and the isolated reference vectors of
 * tests/data/unclip_models (gen.py there: the prior on golden inputs, variant
 * models with the non-Karlo options, state_dict listings); batch and thread
 * invariance bitwise; strict loading and config errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "io/st_write.h"
#include "models/clip_text.h"
#include "models/prior_transformer.h"
#include "models/text_proj.h"
#include "oom_alloc.h"
#include "sd_case.h"
#include "testutil.h"

/* ------------------------------------------------------------------ helpers */

static cJSON *load_json(const char *path) {
    cdf_error err = {0};
    cJSON *root = NULL;
    assert_int_equal(cdf_json_load(path, &root, &err), CDF_OK);
    return root;
}

static const cJSON *jget(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_non_null(v);
    return v;
}

/* Number of elements of a golden case array (arrays.<name>.shape); dims into shape[] when given. */
static size_t arr_count(const cJSON *c, const char *name, int *shape) {
    const cJSON *sh = jget(jget(jget(c, "arrays"), name), "shape");
    size_t n = 1;
    for (int i = 0; i < cJSON_GetArraySize(sh); i++) {
        int d = cJSON_GetArrayItem(sh, i)->valueint;
        if (shape) shape[i] = d;
        n *= (size_t)d;
    }
    return n;
}

static void *case_arr(const char *cname, const cJSON *c, const char *name, size_t elsize) {
    const char *file = jget(jget(jget(c, "arrays"), name), "file")->valuestring;
    void *p = tu_load_bin(tu_data("unclip/cases/%s/%s", cname, file), arr_count(c, name, NULL), elsize);
    assert_non_null(p);
    return p;
}

static double case_atol(const cJSON *c, const char *name) {
    return jget(jget(jget(c, "suggested_tolerance"), name), "atol")->valuedouble;
}

static int case_cfg(const cJSON *c) {
    return cJSON_IsTrue(jget(jget(jget(c, "call"), "resolved"), "do_classifier_free_guidance"));
}

/* The case folder names under tests/data/unclip/cases, sorted; exits unless there are exactly as many as expected. */
static int list_cases(char names[][256], int max) { return case_names_in("unclip", names, max); }

static cJSON *case_load(const char *name) { return load_json(tu_data("unclip/cases/%s/case.json", name)); }

static const char *pipe_dir(const char *component) {
    return tu_data("unclip/pipelines/tiny-karlo-a/%s", component);
}

/* Component folder of the pipeline a case ran on (call.pipeline). */
static const char *case_pipe_dir(const cJSON *c, const char *component) {
    return tu_data("unclip/%s/%s", jget(jget(c, "call"), "pipeline")->valuestring, component);
}

/* A float32 file of tests/data/unclip_models described by manifest entry e ({file, shape}). */
static void *model_arr(const cJSON *e, size_t elsize, size_t *count) {
    const cJSON *sh = jget(e, "shape");
    size_t n = 1;
    for (int i = 0; i < cJSON_GetArraySize(sh); i++) n *= (size_t)cJSON_GetArrayItem(sh, i)->valueint;
    void *p = tu_load_bin(tu_data("unclip_models/%s", jget(e, "file")->valuestring), n, elsize);
    assert_non_null(p);
    if (count) *count = n;
    return p;
}

static void exec2(cdf_exec *ex1, cdf_exec *ex2, cdf_error *err) {
    cdf_exec_init(ex1, 1, err);
    cdf_exec_init(ex2, 2, err);
}

/* --------------------------------------------- CLIPTextModelWithProjection */

/* Token rows as the pipeline encodes them: [uncond; cond], each prompt repeated num_images_per_prompt times. */
static int64_t *case_ids(const cJSON *c, int *rows) {
    const cJSON *tid = jget(c, "token_ids"), *cond = jget(tid, "cond"), *unc = jget(tid, "uncond");
    int nipp = jget(jget(jget(c, "call"), "resolved"), "num_images_per_prompt")->valueint;
    int np = cJSON_GetArraySize(cond), r = 0;
    const cJSON *groups[2] = {cJSON_IsArray(unc) ? unc : NULL, cond};
    *rows = (groups[0] ? 2 : 1) * np * nipp;
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)*rows * 77);
    for (int g = 0; g < 2; g++) {
        if (!groups[g]) continue;
        assert_int_equal(cJSON_GetArraySize(groups[g]), np);
        for (int p = 0; p < np; p++)
            for (int k = 0; k < nipp; k++, r++) {
                const cJSON *row = cJSON_GetArrayItem(groups[g], p);
                assert_int_equal(cJSON_GetArraySize(row), 77);
                for (int s = 0; s < 77; s++) ids[(size_t)r * 77 + s] = (int64_t)cJSON_GetArrayItem(row, s)->valuedouble;
            }
    }
    return ids;
}

static void test_clip_proj_golden(void **state) {
    (void)state;
    static char names[32][256];
    int n = list_cases(names, 32);
    assert_true(n >= 5);
    cdf_error err = {0};
    cdf_exec ex1, ex2;
    exec2(&ex1, &ex2, &err);
    for (int i = 0; i < n; i++) {
        cJSON *c = case_load(names[i]);
        cdf_clip_text *m = NULL;
        assert_int_equal(cdf_clip_text_load(case_pipe_dir(c, "text_encoder"), NULL, &m, &err), CDF_OK);
        const cdf_clip_text_config *cfg = cdf_clip_text_get_config(m);
        assert_true(cfg->with_projection);
        assert_int_equal(cfg->eos_token_id, 2);
        int hid = cfg->hidden_size, pd = cfg->projection_dim;
        int rows = 0;
        int64_t *ids = case_ids(c, &rows);
        assert_int_equal(arr_count(c, "prompt_embeds", NULL), (size_t)rows * pd);
        float *ge = case_arr(names[i], c, "prompt_embeds", 4), *gh = case_arr(names[i], c, "text_enc_hid_states", 4);
        float *h = malloc(sizeof(float) * rows * 77 * hid), *e = malloc(sizeof(float) * rows * pd);
        float *h1 = malloc(sizeof(float) * 77 * hid), *e1 = malloc(sizeof(float) * pd);
        assert_int_equal(cdf_clip_text_forward_proj(&ex2, m, ids, rows, 77, h, e), CDF_OK);
        double eh = tu_max_abs_diff_f32(h, gh, (size_t)rows * 77 * hid), ee = tu_max_abs_diff_f32(e, ge, (size_t)rows * pd);
        printf("%-20s text_enc_hid_states max |err| %.3e (atol %.3e), prompt_embeds %.3e (atol %.3e)\n", names[i], eh,
               case_atol(c, "text_enc_hid_states"), ee, case_atol(c, "prompt_embeds"));
        assert_true(eh <= case_atol(c, "text_enc_hid_states"));
        assert_true(ee <= case_atol(c, "prompt_embeds"));
        /* each row alone, on one thread: the same bits; the hidden states are cdf_clip_text_forward's */
        for (int r = 0; r < rows; r++) {
            assert_int_equal(cdf_clip_text_forward_proj(&ex1, m, ids + (size_t)r * 77, 1, 77, h1, e1), CDF_OK);
            assert_memory_equal(h1, h + (size_t)r * 77 * hid, sizeof(float) * 77 * hid);
            assert_memory_equal(e1, e + (size_t)r * pd, sizeof(float) * pd);
            assert_int_equal(cdf_clip_text_forward(&ex1, m, ids + (size_t)r * 77, 1, 77, 0, h1), CDF_OK);
            assert_memory_equal(h1, h + (size_t)r * 77 * hid, sizeof(float) * 77 * hid);
        }
        free(ids), free(ge), free(gh), free(h), free(e), free(h1), free(e1);
        cJSON_Delete(c);
        cdf_clip_text_free(m);
    }
    cdf_exec_release(&ex1);
    cdf_exec_release(&ex2);
}

/* text_embeds[j] = sum_i W[j, i] * hidden[pos, i] in float64 from the checkpoint tensor. */
static void ref_projection(const cdf_clip_text *m, const float *hrow, double *out) {
    const cdf_st_tensor *t = cdf_weights_peek(cdf_clip_text_weights(m), "text_projection.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, CDF_F32);
    int pd = (int)t->shape[0], hid = (int)t->shape[1];
    for (int j = 0; j < pd; j++) {
        double acc = 0;
        for (int i = 0; i < hid; i++) {
            float w;
            memcpy(&w, t->data + ((size_t)j * hid + i) * 4, 4);
            acc += (double)w * hrow[i];
        }
        out[j] = acc;
    }
}

/* Pooled position: argmax of the ids for eos_token_id 2; the first eos otherwise (a copy of the tiny
 * encoder with eos_token_id 320, so the two rules pick different tokens). */
static void test_clip_proj_pooling(void **state) {
    (void)state;
    char *tmp = tu_tmpdir(), cmd[4096], path[2048];
    snprintf(cmd, sizeof cmd, "cp '%s'/* '%s'/", pipe_dir("text_encoder"), tmp);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/config.json", tmp);
    cJSON *root = load_json(path);
    cJSON_ReplaceItemInObject(root, "eos_token_id", cJSON_CreateNumber(320));
    char *txt = cJSON_Print(root);
    FILE *f = fopen(path, "wb");
    fputs(txt, f);
    fclose(f);
    cJSON_free(txt);
    cJSON_Delete(root);
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    cdf_clip_text *legacy = NULL, *m = NULL;
    assert_int_equal(cdf_clip_text_load(pipe_dir("text_encoder"), NULL, &legacy, &err), CDF_OK);
    assert_int_equal(cdf_clip_text_load(tmp, NULL, &m, &err), CDF_OK);
    /* row 0: 320 at 3 and 7, max id 49407 at 9; row 1: no 320 (position 0), max at 2 (first of two) */
    int64_t ids[2][12] = {{49406, 5, 6, 320, 8, 9, 10, 320, 11, 49407, 0, 0},
                          {49406, 7, 49407, 5, 49407, 3, 0, 0, 0, 0, 0, 0}};
    float h[2 * 12 * 24], e[2 * 24];
    double ref[24];
    int want_legacy[2] = {9, 2}, want_eos[2] = {3, 0};
    for (int pass = 0; pass < 2; pass++) {
        const cdf_clip_text *mm = pass ? m : legacy;
        assert_int_equal(cdf_clip_text_forward_proj(&ex, mm, &ids[0][0], 2, 12, h, e), CDF_OK);
        for (int b = 0; b < 2; b++) {
            int pos = pass ? want_eos[b] : want_legacy[b];
            ref_projection(mm, h + ((size_t)b * 12 + pos) * 24, ref);
            for (int j = 0; j < 24; j++) assert_true(fabs(e[b * 24 + j] - ref[j]) <= 1e-5);
            /* and not the other rule's token */
            int other = pass ? want_legacy[b] : want_eos[b];
            ref_projection(mm, h + ((size_t)b * 12 + other) * 24, ref);
            /* written as a count, not an fmax reduction: gcc 12's aarch64 vectoriser fails on that loop */
            int far = 0;
            for (int j = 0; j < 24; j++) far += fabs(e[b * 24 + j] - ref[j]) > 1e-2;
            assert_true(far > 0);
        }
    }
    /* a CLIPTextModel (no text_projection) cannot */
    cdf_clip_text *plain = NULL;
    assert_int_equal(cdf_clip_text_load(tu_data("sd/pipelines/tiny-sd15-a/text_encoder"), NULL, &plain, &err), CDF_OK);
    assert_int_equal(cdf_clip_text_forward_proj(&ex, plain, &ids[0][0], 1, 12, h, e), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "text_projection"));
    cdf_clip_text_free(plain);
    cdf_clip_text_free(legacy);
    cdf_clip_text_free(m);
    cdf_exec_release(&ex);
    tu_rmtree(tmp);
    free(tmp);
}

/* ----------------------------------------------------- UnCLIPTextProjModel */

static void test_text_proj_golden(void **state) {
    (void)state;
    static char names[32][256];
    int n = list_cases(names, 32);
    cdf_error err = {0};
    cdf_exec ex1, ex2;
    exec2(&ex1, &ex2, &err);
    for (int i = 0; i < n; i++) {
        cJSON *c = case_load(names[i]);
        cdf_text_proj *m = NULL;
        assert_int_equal(cdf_text_proj_load(case_pipe_dir(c, "text_proj"), NULL, &m, &err), CDF_OK);
        const cdf_text_proj_config *tc = cdf_text_proj_get_config(m);
        int D = tc->clip_embeddings_dim, cross = tc->cross_attention_dim, te = tc->time_embed_dim;
        int ntok = tc->clip_extra_context_tokens + 77;
        int cfg = case_cfg(c), ish[2], hsh[3];
        arr_count(c, "image_embeddings", ish);
        arr_count(c, "decoder_encoder_hidden_states", hsh);
        int B = ish[0], rows = cfg ? 2 * B : B;
        assert_int_equal(hsh[0], rows);
        assert_int_equal(hsh[1], ntok);
        assert_int_equal(hsh[2], cross);
        float *img = case_arr(names[i], c, "image_embeddings", 4), *pe = case_arr(names[i], c, "prompt_embeds", 4),
              *th = case_arr(names[i], c, "text_enc_hid_states", 4),
              *gh = case_arr(names[i], c, "decoder_encoder_hidden_states", 4),
              *gt = case_arr(names[i], c, "additive_clip_time_embeddings", 4);
        size_t nh = (size_t)rows * ntok * cross, nt = (size_t)rows * te;
        float *oh = malloc(sizeof(float) * nh), *ot = malloc(sizeof(float) * nt);
        assert_int_equal(cdf_text_proj_forward(&ex2, m, img, B, cfg, pe, th, 77, oh, ot), CDF_OK);
        double eh = tu_max_abs_diff_f32(oh, gh, nh), et = tu_max_abs_diff_f32(ot, gt, nt);
        printf("%-20s decoder_encoder_hidden_states max |err| %.3e (atol %.3e), additive_clip_time_embeddings %.3e "
               "(atol %.3e)\n",
               names[i], eh, case_atol(c, "decoder_encoder_hidden_states"), et,
               case_atol(c, "additive_clip_time_embeddings"));
        assert_true(eh <= case_atol(c, "decoder_encoder_hidden_states"));
        assert_true(et <= case_atol(c, "additive_clip_time_embeddings"));
        /* image k alone ([uncond_k; cond_k] with guidance), one thread: the same bits */
        float *pe1 = malloc(sizeof(float) * 2 * D), *th1 = malloc(sizeof(float) * 2 * 77 * D);
        float *oh1 = malloc(sizeof(float) * 2 * ntok * cross), *ot1 = malloc(sizeof(float) * 2 * te);
        for (int k = 0; k < B; k++) {
            int src[2] = {k, B + k}, nr = cfg ? 2 : 1;
            if (!cfg) src[0] = k;
            for (int r = 0; r < nr; r++) {
                memcpy(pe1 + (size_t)r * D, pe + (size_t)src[r] * D, sizeof(float) * D);
                memcpy(th1 + (size_t)r * 77 * D, th + (size_t)src[r] * 77 * D, sizeof(float) * 77 * D);
            }
            assert_int_equal(cdf_text_proj_forward(&ex1, m, img + (size_t)k * D, 1, cfg, pe1, th1, 77, oh1, ot1), CDF_OK);
            for (int r = 0; r < nr; r++) {
                assert_memory_equal(oh1 + (size_t)r * ntok * cross, oh + (size_t)src[r] * ntok * cross,
                                    sizeof(float) * ntok * cross);
                assert_memory_equal(ot1 + (size_t)r * te, ot + (size_t)src[r] * te, sizeof(float) * te);
            }
        }
        free(img), free(pe), free(th), free(gh), free(gt), free(oh), free(ot), free(pe1), free(th1), free(oh1),
            free(ot1);
        cJSON_Delete(c);
        cdf_text_proj_free(m);
    }
    cdf_exec_release(&ex1);
    cdf_exec_release(&ex2);
}

/* 3 extra context tokens (the (B, cross, extra) permutation with extra != 4), with and without guidance. */
static void test_text_proj_variant(void **state) {
    (void)state;
    cJSON *man = load_json(tu_data("unclip_models/manifest.json"));
    const cJSON *v = jget(jget(man, "variants"), "tp");
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    cdf_text_proj *m = NULL;
    assert_int_equal(cdf_text_proj_load(tu_data("unclip_models/variant_tp"), NULL, &m, &err), CDF_OK);
    assert_int_equal(cdf_text_proj_get_config(m)->clip_extra_context_tokens, 3);
    float *img = model_arr(jget(v, "image"), 4, NULL);
    for (int cfg = 0; cfg < 2; cfg++) {
        const cJSON *r = jget(v, cfg ? "cfg" : "nocfg");
        size_t nh, nt;
        float *pe = model_arr(jget(r, "prompt"), 4, NULL), *th = model_arr(jget(r, "text"), 4, NULL),
              *gh = model_arr(jget(r, "hidden"), 4, &nh), *gt = model_arr(jget(r, "time"), 4, &nt);
        float *oh = malloc(sizeof(float) * nh), *ot = malloc(sizeof(float) * nt);
        assert_int_equal(cdf_text_proj_forward(&ex, m, img, 2, cfg, pe, th, 4, oh, ot), CDF_OK);
        double eh = tu_max_abs_diff_f32(oh, gh, nh), et = tu_max_abs_diff_f32(ot, gt, nt);
        printf("variant_tp cfg=%d: hidden max |err| %.3e, time %.3e (atol 1e-5)\n", cfg, eh, et);
        assert_true(eh <= 1e-5 && et <= 1e-5);
        free(pe), free(th), free(gh), free(gt), free(oh), free(ot);
    }
    free(img);
    cdf_text_proj_free(m);
    cdf_exec_release(&ex);
    cJSON_Delete(man);
}

/* ------------------------------------------------------- PriorTransformer */

/* pipe.prior on golden inputs (prompt_embeds, text_enc_hid_states, text_mask, the latents of a step, doubled
 * with guidance), with and without the mask; then each row alone and 1 vs 2 threads. */
static void test_prior_vectors(void **state) {
    (void)state;
    cJSON *man = load_json(tu_data("unclip_models/manifest.json"));
    const cJSON *vecs = jget(man, "prior_vectors");
    assert_true(cJSON_GetArraySize(vecs) >= 4);
    cdf_error err = {0};
    cdf_exec ex1, ex2;
    exec2(&ex1, &ex2, &err);
    cdf_prior *m = NULL;
    assert_int_equal(cdf_prior_load(pipe_dir("prior"), NULL, &m, &err), CDF_OK);
    int D = cdf_prior_embedding_dim(m), seq = cdf_prior_num_embeddings(m);
    assert_int_equal(cdf_prior_clip_embed_dim(m), D);
    const cJSON *e;
    cJSON_ArrayForEach(e, vecs) {
        const char *cname = jget(e, "case")->valuestring;
        cJSON *c = case_load(cname);
        int cfg = cJSON_IsTrue(jget(e, "cfg")), use_mask = cJSON_IsTrue(jget(e, "mask"));
        int si = jget(e, "step_index")->valueint, ish[2];
        double t = jget(e, "t")->valuedouble, atol = jget(e, "atol")->valuedouble;
        arr_count(c, "prior_latents_init", ish);
        int B = ish[0], rows = cfg ? 2 * B : B;
        float *lat = case_arr(cname, c, si ? "prior_latents_steps" : "prior_latents_init", 4);
        float *pe = case_arr(cname, c, "prompt_embeds", 4), *th = case_arr(cname, c, "text_enc_hid_states", 4);
        int64_t *mask = case_arr(cname, c, "text_mask", 8);
        float *lin = malloc(sizeof(float) * rows * D), *out = malloc(sizeof(float) * rows * D), one[64];
        assert_true(D <= 64);
        for (int r = 0; r < rows; r++)
            memcpy(lin + (size_t)r * D, lat + ((size_t)(si ? si - 1 : 0) * B + r % B) * D, sizeof(float) * D);
        size_t n;
        float *ref = model_arr(e, 4, &n);
        assert_int_equal(n, (size_t)rows * D);
        assert_int_equal(cdf_prior_forward(&ex2, m, lin, rows, t, pe, th, seq, use_mask ? mask : NULL, out), CDF_OK);
        double d = tu_max_abs_diff_f32(out, ref, n);
        printf("prior %-32s max |err| %.3e (atol %.3e)\n", jget(e, "file")->valuestring, d, atol);
        assert_true(d <= atol);
        for (int r = 0; r < rows; r++) {
            assert_int_equal(cdf_prior_forward(&ex1, m, lin + (size_t)r * D, 1, t, pe + (size_t)r * D,
                                               th + (size_t)r * seq * D, seq, use_mask ? mask + (size_t)r * seq : NULL,
                                               one),
                             CDF_OK);
            assert_memory_equal(one, out + (size_t)r * D, sizeof(float) * D);
        }
        free(lat), free(pe), free(th), free(mask), free(lin), free(out), free(ref);
        cJSON_Delete(c);
    }
    cdf_prior_free(m);
    cdf_exec_release(&ex1);
    cdf_exec_release(&ex2);
    cJSON_Delete(man);
}

/* image_embeddings = prior_latents_final * clip_std + clip_mean, exactly, for every case. */
static void test_prior_post_process_golden(void **state) {
    (void)state;
    static char names[32][256];
    int n = list_cases(names, 32);
    cdf_error err = {0};
    for (int i = 0; i < n; i++) {
        cJSON *c = case_load(names[i]);
        cdf_prior *m = NULL;
        assert_int_equal(cdf_prior_load(case_pipe_dir(c, "prior"), NULL, &m, &err), CDF_OK);
        int sh[2];
        size_t cnt = arr_count(c, "image_embeddings", sh);
        float *x = case_arr(names[i], c, "prior_latents_final", 4), *g = case_arr(names[i], c, "image_embeddings", 4);
        cdf_prior_post_process(m, x, sh[0]);
        assert_memory_equal(x, g, sizeof(float) * cnt);
        free(x), free(g);
        cJSON_Delete(c);
        cdf_prior_free(m);
    }
}

/* norm_in, embedding_proj_norm, gelu time act, own time/proj/clip dims (a); no prd token, no
 * encoder_hidden_states_proj (b); a text mask with holes. */
static void test_prior_variants(void **state) {
    (void)state;
    cJSON *man = load_json(tu_data("unclip_models/manifest.json"));
    const char *keys[2] = {"a", "b"};
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    for (int i = 0; i < 2; i++) {
        const cJSON *v = jget(jget(man, "variants"), keys[i]);
        cdf_prior *m = NULL;
        assert_int_equal(cdf_prior_load(tu_data("unclip_models/variant_%s", keys[i]), NULL, &m, &err), CDF_OK);
        const cdf_prior_config *pc = cdf_prior_get_config(m);
        assert_int_equal(pc->prd, i == 0);
        assert_int_equal(pc->encoder_hid_proj, i == 1 ? 0 : 1);
        assert_int_equal(pc->norm_in, i == 0);
        size_t no, np;
        float *lat = model_arr(jget(v, "latents"), 4, NULL), *pe = model_arr(jget(v, "proj"), 4, NULL),
              *enc = model_arr(jget(v, "enc"), 4, NULL), *ref = model_arr(jget(v, "out"), 4, &no),
              *post = model_arr(jget(v, "post"), 4, &np);
        int64_t *mask = model_arr(jget(v, "mask"), 8, NULL);
        float *out = malloc(sizeof(float) * no);
        assert_int_equal(cdf_prior_forward(&ex, m, lat, 2, jget(v, "t")->valuedouble, pe, enc,
                                           cdf_prior_num_embeddings(m), mask, out),
                         CDF_OK);
        double d = tu_max_abs_diff_f32(out, ref, no), atol = jget(v, "atol")->valuedouble;
        printf("prior variant_%s max |err| %.3e (atol %.3e)\n", keys[i], d, atol);
        assert_true(d <= atol);
        memcpy(out, ref, sizeof(float) * no);
        cdf_prior_post_process(m, out, 2);
        assert_true(tu_max_abs_diff_f32(out, post, np) <= 1e-6);
        free(lat), free(pe), free(enc), free(ref), free(post), free(mask), free(out);
        cdf_prior_free(m);
    }
    cdf_exec_release(&ex);
    cJSON_Delete(man);
}

/* ------------------------------------------- describe and synthetic models */

typedef struct rec_list {
    char names[512][160];
    int64_t shapes[512][4];
    int ndims[512], n;
} rec_list;

static cdf_status record(const char *name, int ndim, const int64_t *shape, void *user) {
    rec_list *l = user;
    assert_true(l->n < 512);
    snprintf(l->names[l->n], 160, "%s", name);
    l->ndims[l->n] = ndim;
    for (int d = 0; d < ndim; d++) l->shapes[l->n][d] = shape[d];
    l->n++;
    return CDF_OK;
}

static void check_listing(const rec_list *l, const cJSON *want, const char *what) {
    printf("%s: %d tensors\n", what, l->n);
    assert_int_equal(cJSON_GetArraySize(want), l->n);
    for (int i = 0; i < l->n; i++) {
        const cJSON *w = cJSON_GetArrayItem(want, i), *sh = cJSON_GetArrayItem(w, 1);
        if (strcmp(cJSON_GetArrayItem(w, 0)->valuestring, l->names[i]) != 0)
            fail_msg("%s: tensor %d is '%s', diffusers has '%s'", what, i, l->names[i],
                     cJSON_GetArrayItem(w, 0)->valuestring);
        assert_int_equal(cJSON_GetArraySize(sh), l->ndims[i]);
        for (int d = 0; d < l->ndims[i]; d++) assert_int_equal(cJSON_GetArrayItem(sh, d)->valueint, l->shapes[i][d]);
    }
}

static void parse_config_file(const char *path, int prior, void *cfg) {
    cJSON *root = load_json(path);
    cdf_error err = {0};
    if (prior)
        assert_int_equal(cdf_prior_config_parse(root, path, cfg, &err), CDF_OK);
    else
        assert_int_equal(cdf_text_proj_config_parse(root, path, cfg, &err), CDF_OK);
    cJSON_Delete(root);
}

/* describe lists exactly diffusers' state_dict() (names, order, shapes). */
static void test_describe_state_dicts(void **state) {
    (void)state;
    cJSON *sds = load_json(tu_data("unclip_models/state_dicts.json"));
    static const struct {
        const char *key, *config;
        int prior;
    } k[] = {{"tiny-karlo-a/prior", "unclip/pipelines/tiny-karlo-a/prior/config.json", 1},
             {"tiny-karlo-a/text_proj", "unclip/pipelines/tiny-karlo-a/text_proj/config.json", 0},
             {"variant_a", "unclip_models/variant_a/config.json", 1},
             {"variant_b", "unclip_models/variant_b/config.json", 1},
             {"variant_tp", "unclip_models/variant_tp/config.json", 0}};
    cdf_error err = {0};
    rec_list *l = calloc(1, sizeof *l);
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        cdf_prior_config pc;
        cdf_text_proj_config tc;
        parse_config_file(tu_data("%s", k[i].config), k[i].prior, k[i].prior ? (void *)&pc : (void *)&tc);
        l->n = 0;
        if (k[i].prior)
            assert_int_equal(cdf_prior_describe(&pc, record, l, &err), CDF_OK);
        else
            assert_int_equal(cdf_text_proj_describe(&tc, record, l, &err), CDF_OK);
        check_listing(l, jget(sds, k[i].key), k[i].key);
    }
    /* the real Karlo configs (copies): text_proj against diffusers; the prior (too large to build in Python)
     * by its known shapes */
    cdf_text_proj_config ktc;
    parse_config_file(tu_data("../../models/karlo/text_proj/config.json"), 0, &ktc);
    l->n = 0;
    assert_int_equal(cdf_text_proj_describe(&ktc, record, l, &err), CDF_OK);
    check_listing(l, jget(sds, "karlo/text_proj"), "karlo/text_proj");
    cdf_prior_config pc;
    parse_config_file(tu_data("../../models/karlo/prior/config.json"), 1, &pc);
    assert_int_equal(pc.inner, 2048);
    assert_int_equal(pc.time_embed_dim, 2048);
    assert_int_equal(pc.time_embed_act, CDF_ACT_SILU);
    assert_true(pc.prd && pc.encoder_hid_proj && !pc.norm_in && !pc.embedding_proj_norm);
    l->n = 0;
    assert_int_equal(cdf_prior_describe(&pc, record, l, &err), CDF_OK);
    assert_int_equal(l->n, 4 + 4 + 2 + 2 + 2 + 20 * 16 + 2 + 2);
    assert_string_equal(l->names[0], "positional_embedding");
    assert_int_equal(l->shapes[0][1], 81);
    assert_int_equal(l->shapes[0][2], 2048);
    assert_string_equal(l->names[l->n - 2], "proj_to_clip_embeddings.weight");
    assert_int_equal(l->shapes[l->n - 2][0], 768);
    free(l);
    cJSON_Delete(sds);
}

/* Writes <dir>/config.json and random weights for the prior it describes, all tensors but `skip` (a name),
 * with `bad` (a name) one row too long and `extra` (a name) added. */
typedef struct synth {
    rec_list l;
    uint64_t rng;
} synth;

static cdf_status fill(size_t i, const cdf_st_entry *e, void *data, void *user, cdf_error *err) {
    (void)i, (void)err;
    synth *s = user;
    size_t n = 1;
    for (int d = 0; d < e->ndim; d++) n *= (size_t)e->shape[d];
    double scale = e->ndim == 2 && e->shape[1] > 1 ? 1.0 / sqrt((double)e->shape[1]) : 0.5;
    int norm = strstr(e->name, "norm") && strstr(e->name, ".weight");
    for (size_t k = 0; k < n; k++) {
        s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(s->rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
        ((float *)data)[k] = (float)(norm ? 1.0 + 0.25 * u : (strcmp(e->name, "clip_std") == 0 ? 0.8 + 0.3 * u : scale * u * 1.7));
    }
    return CDF_OK;
}

static void write_prior(const char *dir, const char *config, const char *skip, const char *bad, const char *extra) {
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(config, f);
    fclose(f);
    cJSON *root = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_json_parse(config, strlen(config), "config", &root, &err), CDF_OK);
    cdf_prior_config pc;
    assert_int_equal(cdf_prior_config_parse(root, "config", &pc, &err), CDF_OK);
    cJSON_Delete(root);
    synth *s = calloc(1, sizeof *s);
    s->rng = 12345;
    assert_int_equal(cdf_prior_describe(&pc, record, &s->l, &err), CDF_OK);
    cdf_st_entry *ents = calloc((size_t)s->l.n + 1, sizeof *ents);
    size_t n = 0;
    for (int i = 0; i < s->l.n; i++) {
        if (skip && strcmp(s->l.names[i], skip) == 0) continue;
        cdf_st_entry *e = &ents[n++];
        e->name = s->l.names[i];
        e->dtype = CDF_F32;
        e->ndim = s->l.ndims[i];
        for (int d = 0; d < e->ndim; d++) e->shape[d] = s->l.shapes[i][d];
        if (bad && strcmp(e->name, bad) == 0) e->shape[0]++;
    }
    if (extra) ents[n++] = (cdf_st_entry){extra, CDF_F32, 1, {3}};
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    assert_int_equal(cdf_st_write(path, ents, n, fill, s, &err), CDF_OK);
    free(ents);
    free(s);
}

/* A prior wide enough that GEMMs, LayerNorms and activations run on 2 threads: same bits as 1 thread, and
 * each row alone. */
static void test_prior_thread_invariance(void **state) {
    (void)state;
    char *tmp = tu_tmpdir();
    write_prior(tmp,
                "{\"num_attention_heads\":4,\"attention_head_dim\":64,\"num_layers\":2,\"embedding_dim\":192,"
                "\"num_embeddings\":77,\"additional_embeddings\":4}",
                NULL, NULL, NULL);
    cdf_error err = {0};
    cdf_exec ex1, ex2;
    exec2(&ex1, &ex2, &err);
    cdf_prior *m = NULL;
    assert_int_equal(cdf_prior_load(tmp, NULL, &m, &err), CDF_OK);
    enum { B = 3, D = 192, S = 77 };
    float *lat = malloc(sizeof(float) * B * D), *pe = malloc(sizeof(float) * B * D),
          *enc = malloc(sizeof(float) * B * S * D), *o1 = malloc(sizeof(float) * B * D),
          *o2 = malloc(sizeof(float) * B * D), one[D];
    int64_t mask[B * S];
    for (int i = 0; i < B * D; i++) lat[i] = (float)sin(0.37 * i), pe[i] = (float)cos(0.11 * i);
    for (int i = 0; i < B * S * D; i++) enc[i] = (float)sin(0.013 * i + 1.0);
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) mask[b * S + s] = s < 5 + 20 * b;
    assert_int_equal(cdf_prior_forward(&ex1, m, lat, B, 749, pe, enc, S, mask, o1), CDF_OK);
    assert_int_equal(cdf_prior_forward(&ex2, m, lat, B, 749, pe, enc, S, mask, o2), CDF_OK);
    assert_memory_equal(o1, o2, sizeof(float) * B * D);
    for (int b = 0; b < B; b++) {
        assert_int_equal(cdf_prior_forward(&ex2, m, lat + b * D, 1, 749, pe + b * D, enc + (size_t)b * S * D, S,
                                           mask + b * S, one),
                         CDF_OK);
        assert_memory_equal(one, o1 + b * D, sizeof(float) * D);
    }
    assert_true(tu_max_abs_diff_f32(o1, o1 + D, D) > 1e-3); /* rows differ: not vacuous */
    free(lat), free(pe), free(enc), free(o1), free(o2);
    cdf_prior_free(m);
    cdf_exec_release(&ex1);
    cdf_exec_release(&ex2);
    tu_rmtree(tmp);
    free(tmp);
}

/* ------------------------------------------------------------ strict loading */

typedef struct notices {
    int n;
    char last[1024];
} notices;

static void on_notice(cdf_notice_level level, const char *msg, void *user) {
    (void)level;
    notices *ns = user;
    ns->n++;
    snprintf(ns->last, sizeof ns->last, "%s", msg);
}

static const char *k_small = "{\"_class_name\":\"PriorTransformer\",\"num_attention_heads\":2,\"attention_head_dim\":4,"
                             "\"num_layers\":1,\"embedding_dim\":6,\"num_embeddings\":5%s}";

static void expect_load(const char *dir, cdf_status want, const char *needle1, const char *needle2) {
    cdf_error err = {0};
    cdf_prior *m = (cdf_prior *)(uintptr_t)1;
    cdf_status s = cdf_prior_load(dir, NULL, &m, &err);
    printf("  -> %s\n", s ? err.msg : "ok");
    assert_int_equal(s, want);
    if (s) {
        assert_null(m);
        if (needle1) assert_non_null(strstr(err.msg, needle1));
        if (needle2) assert_non_null(strstr(err.msg, needle2));
    }
    cdf_prior_free(s ? NULL : m);
}

static void test_prior_strict_loading(void **state) {
    (void)state;
    char *tmp = tu_tmpdir(), cfg[1024];
    snprintf(cfg, sizeof cfg, k_small, "");
    write_prior(tmp, cfg, NULL, NULL, NULL);
    expect_load(tmp, CDF_OK, NULL, NULL);
    write_prior(tmp, cfg, "transformer_blocks.0.attn1.to_k.bias", NULL, NULL);
    expect_load(tmp, CDF_ERR_MISSING, "transformer_blocks.0.attn1.to_k.bias", "[8]");
    write_prior(tmp, cfg, NULL, "positional_embedding", NULL);
    expect_load(tmp, CDF_ERR_SHAPE, "positional_embedding", "[1, 9, 8]");
    write_prior(tmp, cfg, NULL, NULL, "norm_in.weight");
    expect_load(tmp, CDF_ERR_FORMAT, "norm_in.weight", NULL);
    /* config errors name the field; an unknown key is a notice */
    static const struct {
        const char *extra;
        cdf_status want;
        const char *field;
    } bad[] = {{",\"additional_embeddings\":5", CDF_ERR_UNSUPPORTED, "additional_embeddings"},
               {",\"added_emb_type\":null", CDF_ERR_UNSUPPORTED, "additional_embeddings"},
               {",\"norm_in_type\":\"batch\"", CDF_ERR_CONFIG, "norm_in_type"},
               {",\"time_embed_act_fn\":\"tanh\"", CDF_ERR_CONFIG, "time_embed_act_fn"},
               {",\"time_embed_dim\":-1", CDF_ERR_CONFIG, "time_embed_dim"},
               {",\"clip_embed_dim\":\"6\"", CDF_ERR_CONFIG, "clip_embed_dim"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char c2[1024];
        snprintf(c2, sizeof c2, k_small, bad[i].extra);
        cJSON *root = NULL;
        cdf_error err = {0};
        assert_int_equal(cdf_json_parse(c2, strlen(c2), "config.json", &root, &err), CDF_OK);
        cdf_prior_config pc;
        assert_int_equal(cdf_prior_config_parse(root, "config.json", &pc, &err), bad[i].want);
        assert_non_null(strstr(err.msg, bad[i].field));
        cJSON_Delete(root);
    }
    notices ns = {0};
    cdf_error err = {0};
    err.on_notice = on_notice;
    err.notice_user = &ns;
    snprintf(cfg, sizeof cfg, k_small, ",\"frobnicate\":1");
    cJSON *root = NULL;
    assert_int_equal(cdf_json_parse(cfg, strlen(cfg), "config.json", &root, &err), CDF_OK);
    cdf_prior_config pc;
    assert_int_equal(cdf_prior_config_parse(root, "config.json", &pc, &err), CDF_OK);
    assert_int_equal(ns.n, 1);
    assert_non_null(strstr(ns.last, "frobnicate"));
    cJSON_Delete(root);
    /* forward arguments */
    snprintf(cfg, sizeof cfg, k_small, "");
    write_prior(tmp, cfg, NULL, NULL, NULL);
    cdf_prior *m = NULL;
    assert_int_equal(cdf_prior_load(tmp, NULL, &m, &err), CDF_OK);
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    float x[64] = {0}, out[8];
    assert_int_equal(cdf_prior_forward(&ex, m, x, 1, 10, x, x, 4, NULL, out), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "num_embeddings"));
    cdf_exec_release(&ex);
    cdf_prior_free(m);
    /* text_proj: required fields */
    static const char *tp = "{\"clip_embeddings_dim\":6,\"time_embed_dim\":5}";
    assert_int_equal(cdf_json_parse(tp, strlen(tp), "config.json", &root, &err), CDF_OK);
    cdf_text_proj_config tc;
    assert_int_equal(cdf_text_proj_config_parse(root, "config.json", &tc, &err), CDF_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "cross_attention_dim"));
    cJSON_Delete(root);
    tu_rmtree(tmp);
    free(tmp);
}

/* text_proj: a tensor of the wrong shape is named with both shapes. */
static void test_text_proj_strict_loading(void **state) {
    (void)state;
    char *tmp = tu_tmpdir(), cmd[4096];
    snprintf(cmd, sizeof cmd, "cp '%s'/config.json '%s'/", pipe_dir("text_proj"), tmp);
    assert_int_equal(system(cmd), 0);
    /* the variant's weights under tiny-karlo-a's config: shapes differ */
    snprintf(cmd, sizeof cmd, "cp '%s'/diffusion_pytorch_model.safetensors '%s'/", tu_data("unclip_models/variant_tp"),
             tmp);
    assert_int_equal(system(cmd), 0);
    cdf_error err = {0};
    cdf_text_proj *m = (cdf_text_proj *)(uintptr_t)1;
    assert_int_equal(cdf_text_proj_load(tmp, NULL, &m, &err), CDF_ERR_SHAPE);
    printf("  -> %s\n", err.msg);
    assert_null(m);
    assert_non_null(strstr(err.msg, "learned_classifier_free_guidance_embeddings"));
    assert_non_null(strstr(err.msg, "[24]"));
    tu_rmtree(tmp);
    free(tmp);
}

/* ------------------------------------------------------- allocation failures */

/* Load and run the three models on the no_guidance_gs1 golden inputs; 0 or the first failure's status. */
typedef struct oom_run {
    cdf_status status;
    char msg[1024];
    float emb[24], prior[24], time[2 * 64]; /* time: [uncond; cond] */
} oom_run;

static void oom_flow(const int64_t *ids, const float *lat, const int64_t *mask, oom_run *r) {
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    cdf_clip_text *te = NULL;
    cdf_prior *pr = NULL;
    cdf_text_proj *tp = NULL;
    float *hid = malloc(sizeof(float) * 77 * 24), *dh = malloc(sizeof(float) * 2 * 81 * 40);
    cdf_status s = cdf_clip_text_load(pipe_dir("text_encoder"), NULL, &te, &err);
    if (!s) s = cdf_clip_text_forward_proj(&ex, te, ids, 1, 77, hid, r->emb);
    if (!s) s = cdf_prior_load(pipe_dir("prior"), NULL, &pr, &err);
    if (!s) s = cdf_prior_forward(&ex, pr, lat, 1, 999, r->emb, hid, 77, mask, r->prior);
    if (!s) cdf_prior_post_process(pr, r->prior, 1);
    if (!s) s = cdf_text_proj_load(pipe_dir("text_proj"), NULL, &tp, &err);
    if (!s) s = cdf_text_proj_forward(&ex, tp, r->prior, 1, 1, (float[48]){0}, (float[2 * 77 * 24]){0}, 77, dh, r->time);
    r->status = s;
    snprintf(r->msg, sizeof r->msg, "%s", s ? err.msg : "");
    cdf_text_proj_free(tp);
    cdf_prior_free(pr);
    cdf_clip_text_free(te);
    cdf_exec_release(&ex);
    free(hid);
    free(dh);
}

static void test_oom_sweep(void **state) {
    (void)state;
    cJSON *c = case_load("no_guidance_gs1");
    int rows = 0;
    int64_t *ids = case_ids(c, &rows);
    float *lat = case_arr("no_guidance_gs1", c, "prior_latents_init", 4);
    int64_t *mask = case_arr("no_guidance_gs1", c, "text_mask", 8);
    static oom_run base, r;
    oom_flow(ids, lat, mask, &base);
    if (base.status) fail_msg("flow fails without injection: %s", base.msg);
    tu_oom st;
    cdf_allocator a = tu_oom_allocator(&st);
    long n = 1;
    for (;; n++) {
        memset(&st, 0, sizeof st);
        st.fail_at = n;
        cdf_set_allocator(&a);
        oom_flow(ids, lat, mask, &r);
        cdf_set_allocator(NULL);
        if (st.live != 0) fail_msg("allocation %ld failed: %ld blocks leaked (%s)", n, st.live, r.msg);
        if (st.failed == 0) break;
        if (r.status != CDF_ERR_NOMEM)
            fail_msg("allocation %ld failed: status %s (%s), expected ERR_NOMEM", n, cdf_status_name(r.status), r.msg);
    }
    printf("%ld allocations, each failure reported as ERR_NOMEM without leaks\n", n - 1);
    assert_true(n > 20);
    assert_int_equal(r.status, CDF_OK);
    assert_memory_equal(r.emb, base.emb, sizeof r.emb);
    assert_memory_equal(r.prior, base.prior, sizeof r.prior);
    assert_memory_equal(r.time, base.time, sizeof r.time);
    free(ids), free(lat), free(mask);
    cJSON_Delete(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clip_proj_golden),
        cmocka_unit_test(test_clip_proj_pooling),
        cmocka_unit_test(test_text_proj_golden),
        cmocka_unit_test(test_text_proj_variant),
        cmocka_unit_test(test_prior_vectors),
        cmocka_unit_test(test_prior_post_process_golden),
        cmocka_unit_test(test_prior_variants),
        cmocka_unit_test(test_describe_state_dicts),
        cmocka_unit_test(test_prior_thread_invariance),
        cmocka_unit_test(test_prior_strict_loading),
        cmocka_unit_test(test_text_proj_strict_loading),
        cmocka_unit_test(test_oom_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
