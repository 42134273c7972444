/* UNet2DConditionModel in the UnCLIP (Karlo) decoder layout:
 *  - every golden case in tests/data/unclip/cases: the decoder's first call
 *    (decoder_latents_init, repeated [uncond; cond] with guidance; t = the
 *    first decoder timestep; context decoder_encoder_hidden_states;
 *    class_labels additive_clip_time_embeddings; mask = text_mask padded on
 *    the left with 4 ones) against decoder_unet0_output, plus batch and
 *    thread-count invariance;
 *  - tests/data/unclip_decoder/extra: a second tiny decoder made by
 *    gen_extra.py (only_cross_attention, resnet_skip_time_act,
 *    resnet_out_scale_factor, mid_block_scale_factor, a per-block
 *    attention_head_dim list, F16 weights) against its torch output;
 *  - cdf_unet2d_cond_describe against diffusers' state_dict (the tiny
 *    decoder's file and karlo-v1-alpha's full decoder listing);
 *  - strict loading (a misshapen tensor) and config / argument errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "io/safetensors.h"
#include "io/st_write.h"
#include "models/unet2d_cond.h"
#include "oom_alloc.h"
#include "sd_case.h"

static const char *decoder_dir(const cJSON *c) {
    static char buf[1400];
    snprintf(buf, sizeof buf, "%s/decoder", case_pipeline_in("unclip", c));
    return buf;
}

static cdf_unet2d_cond *load(const char *dir) {
    cdf_error err = {0};
    cdf_unet2d_cond *m = NULL;
    if (cdf_unet2d_cond_load(dir, NULL, &m, &err)) fail_msg("load %s: %s", dir, err.msg);
    return m;
}

static void run(const cdf_unet2d_cond *m, const float *x, int batch, int h, int w, double t, const float *ctx, int seq,
                const float *labels, const float *mask, int threads, float *out) {
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, threads, &err);
    cdf_unetc_extra extra = {labels, mask};
    cdf_status s = cdf_unet2d_cond_forward_ext(&ex, m, x, batch, h, w, t, ctx, seq, &extra, out);
    cdf_exec_release(&ex);
    if (s) fail_msg("forward: %s", err.msg);
}

/* The decoder's step-1 inputs of one golden case. */
typedef struct dec_in {
    int rows, h, w, seq, cross, temb;
    double t;
    float *x;      /* [rows, 3, h, w] */
    float *ctx;    /* [rows, seq, cross] */
    float *labels; /* [rows, temb] */
    float *mask;   /* [rows, seq] */
    float *ref;    /* [rows, 6, h, w] */
    size_t nout;
} dec_in;

static void dec_in_load(const char *dir, const cJSON *c, dec_in *d) {
    memset(d, 0, sizeof *d);
    const cJSON *res = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "call"), "resolved");
    int cfg = cJSON_IsTrue(cJSON_GetObjectItem(res, "do_classifier_free_guidance"));
    int b = sd_case_dim(c, "decoder_latents_init", 0), ch = sd_case_dim(c, "decoder_latents_init", 1);
    d->h = sd_case_dim(c, "decoder_latents_init", 2);
    d->w = sd_case_dim(c, "decoder_latents_init", 3);
    d->rows = cfg ? 2 * b : b;
    d->seq = sd_case_dim(c, "decoder_encoder_hidden_states", 1);
    d->cross = sd_case_dim(c, "decoder_encoder_hidden_states", 2);
    d->temb = sd_case_dim(c, "additive_clip_time_embeddings", 1);
    int ntext = sd_case_dim(c, "text_mask", 1);
    assert_int_equal(sd_case_dim(c, "decoder_unet0_output", 0), d->rows);
    assert_int_equal(sd_case_dim(c, "decoder_encoder_hidden_states", 0), d->rows);
    assert_int_equal(sd_case_dim(c, "text_mask", 0), d->rows);
    assert_true(ntext <= d->seq);
    d->t = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "timesteps"), "decoder"), 0)->valuedouble;
    size_t nlat, nctx, nlab;
    float *lat = sd_case_array(dir, c, "decoder_latents_init", &nlat);
    d->ctx = sd_case_array(dir, c, "decoder_encoder_hidden_states", &nctx);
    d->labels = sd_case_array(dir, c, "additive_clip_time_embeddings", &nlab);
    d->ref = sd_case_array(dir, c, "decoder_unet0_output", &d->nout);
    assert_non_null(lat);
    assert_non_null(d->ctx);
    assert_non_null(d->labels);
    assert_non_null(d->ref);
    assert_int_equal(nlat, (size_t)b * ch * d->h * d->w);
    /* latent_model_input = torch.cat([latents] * 2) with guidance */
    d->x = malloc(sizeof(float) * nlat * (size_t)(cfg ? 2 : 1));
    memcpy(d->x, lat, sizeof(float) * nlat);
    if (cfg) memcpy(d->x + nlat, lat, sizeof(float) * nlat);
    free(lat);
    /* decoder_text_mask = F.pad(text_mask, (clip_extra_context_tokens, 0), value=True) */
    size_t ntm;
    int64_t *tm = case_array_raw(dir, c, "text_mask", sizeof(int64_t), &ntm);
    assert_non_null(tm);
    assert_int_equal(ntm, (size_t)d->rows * ntext);
    int pad = d->seq - ntext;
    d->mask = malloc(sizeof(float) * (size_t)d->rows * d->seq);
    for (int r = 0; r < d->rows; r++)
        for (int j = 0; j < d->seq; j++)
            d->mask[(size_t)r * d->seq + j] = j < pad ? 1.0f : (float)tm[(size_t)r * ntext + j - pad];
    free(tm);
}

static void dec_in_free(dec_in *d) {
    free(d->x);
    free(d->ctx);
    free(d->labels);
    free(d->mask);
    free(d->ref);
}

static void golden_case(void **state) {
    const char *dir = *state;
    cJSON *c = sd_case_json(dir);
    assert_non_null(c);
    dec_in d;
    dec_in_load(dir, c, &d);
    cdf_unet2d_cond *m = load(decoder_dir(c));
    assert_int_equal(m->cfg.time_embedding_dim, d.temb);
    assert_int_equal(m->cfg.cross_attention_dim[0], d.cross);
    float *out = malloc(sizeof(float) * d.nout), *out1 = malloc(sizeof(float) * d.nout);
    run(m, d.x, d.rows, d.h, d.w, d.t, d.ctx, d.seq, d.labels, d.mask, 2, out);
    double e = tu_max_abs_diff_f32(out, d.ref, d.nout), tol = sd_case_atol(c, "decoder_unet0_output"), mx = 0;
    for (size_t i = 0; i < d.nout; i++) mx = fabs(d.ref[i]) > mx ? fabs(d.ref[i]) : mx;
    printf("%-24s decoder_unet0_output max err %.2e (%.1e of max_abs %.2f; tol %.1e)\n", strrchr(dir, '/') + 1, e,
           e / mx, mx, tol);
    assert_true(tol > 0);
    assert_true(e <= tol);
    /* thread count: 1 and 2 threads give the same bytes */
    run(m, d.x, d.rows, d.h, d.w, d.t, d.ctx, d.seq, d.labels, d.mask, 1, out1);
    assert_memory_equal(out, out1, sizeof(float) * d.nout);
    /* batch invariance: every row alone equals its batch slot bit for bit */
    size_t per = d.nout / (size_t)d.rows, pin = (size_t)3 * d.h * d.w;
    for (int k = 0; k < d.rows; k++) {
        run(m, d.x + k * pin, 1, d.h, d.w, d.t, d.ctx + (size_t)k * d.seq * d.cross, d.seq,
            d.labels + (size_t)k * d.temb, d.mask + (size_t)k * d.seq, 1, out1);
        assert_memory_equal(out1, out + k * per, per * sizeof(float));
    }
    free(out);
    free(out1);
    cdf_unet2d_cond_free(m);
    dec_in_free(&d);
    cJSON_Delete(c);
}

/* The extra decoder of gen_extra.py against its torch output. */
static void extra_decoder(void **state) {
    (void)state;
    char dir[1400];
    snprintf(dir, sizeof dir, "%s", tu_data("unclip_decoder/extra"));
    cJSON *c = sd_case_json(dir);
    assert_non_null(c);
    size_t nx, nctx, nlab, nout;
    float *x = sd_case_array(dir, c, "sample", &nx), *ctx = sd_case_array(dir, c, "ctx", &nctx);
    float *labels = sd_case_array(dir, c, "class_labels", &nlab), *ref = sd_case_array(dir, c, "output", &nout);
    assert_non_null(x);
    assert_non_null(ctx);
    assert_non_null(labels);
    assert_non_null(ref);
    int batch = sd_case_dim(c, "sample", 0), h = sd_case_dim(c, "sample", 2), w = sd_case_dim(c, "sample", 3);
    int seq = sd_case_dim(c, "ctx", 1);
    double t = cJSON_GetObjectItem(c, "timestep")->valuedouble;
    char mdir[1500];
    snprintf(mdir, sizeof mdir, "%s/decoder", dir);
    cdf_unet2d_cond *m = load(mdir);
    const cdf_unet2d_cond_config *k = &m->cfg;
    /* the features this model is there for */
    assert_true(k->skip_time_act && k->resnet_out_scale_factor == 2.0 && k->mid_block_scale_factor == 1.5);
    assert_true(!k->only_cross[0] && k->only_cross[1] && !k->mid_only_cross);
    assert_true(k->heads[0] != k->heads[1] && k->time_embedding_act != CDF_ACT_NONE);
    assert_int_equal(m->up[0].sattn[0].heads, k->block_out_channels[1] / k->heads[0]);
    float *out = malloc(sizeof(float) * nout), *one = malloc(sizeof(float) * nout);
    run(m, x, batch, h, w, t, ctx, seq, labels, NULL, 2, out);
    double e = tu_max_abs_diff_f32(out, ref, nout), mx = 0;
    for (size_t i = 0; i < nout; i++) mx = fabs(ref[i]) > mx ? fabs(ref[i]) : mx;
    printf("extra decoder            output max err %.2e (%.1e of max_abs %.2f; tol 1e-5 x max_abs)\n", e, e / mx, mx);
    assert_true(e <= 1e-5 * mx);
    size_t per = nout / (size_t)batch;
    run(m, x + nx / (size_t)batch, 1, h, w, t, ctx + nctx / (size_t)batch, seq, labels + nlab / (size_t)batch, NULL,
        1, one);
    assert_memory_equal(one, out + per, per * sizeof(float));
    free(out);
    free(one);
    free(x);
    free(ctx);
    free(labels);
    free(ref);
    cdf_unet2d_cond_free(m);
    cJSON_Delete(c);
}

/* ------------------------------------------------------------ state_dict */

typedef struct rec_list {
    int n, cap;
    char (*name)[CDF_NAME_MAX];
    int ndim[2048];
    int64_t shape[2048][4];
} rec_list;

static cdf_status record(const char *name, int ndim, const int64_t *shape, void *user) {
    rec_list *l = user;
    if (l->n >= 2048 || ndim > 4) return CDF_ERR_LIMIT;
    snprintf(l->name[l->n], CDF_NAME_MAX, "%s", name);
    l->ndim[l->n] = ndim;
    memcpy(l->shape[l->n], shape, sizeof(int64_t) * (size_t)ndim);
    l->n++;
    return CDF_OK;
}

static int rec_find(const rec_list *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->name[i], name) == 0) return i;
    return -1;
}

static rec_list *describe(const char *config_path) {
    char *txt = tu_read_text(config_path);
    assert_non_null(txt);
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    assert_non_null(root);
    cdf_error err = {0};
    cdf_unet2d_cond_config cfg;
    if (cdf_unet2d_cond_config_parse(root, config_path, &cfg, &err)) fail_msg("%s", err.msg);
    cJSON_Delete(root);
    rec_list *l = calloc(1, sizeof *l);
    l->name = calloc(2048, sizeof *l->name);
    if (cdf_unet2d_cond_describe(&cfg, record, l, &err)) fail_msg("describe: %s", err.msg);
    return l;
}

static void rec_free(rec_list *l) {
    free(l->name);
    free(l);
}

/* The tiny decoder's safetensors file is diffusers' state_dict: same names, same shapes. */
static void describe_tiny(void **state) {
    (void)state;
    rec_list *l = describe(tu_data("unclip/pipelines/tiny-karlo-a/decoder/config.json"));
    cdf_error err = {0};
    cdf_st_file *f = NULL;
    assert_int_equal(cdf_st_open(tu_data("unclip/pipelines/tiny-karlo-a/decoder/diffusion_pytorch_model.safetensors"),
                                 &f, &err),
                     CDF_OK);
    assert_int_equal((size_t)l->n, cdf_st_count(f));
    for (size_t i = 0; i < cdf_st_count(f); i++) {
        const cdf_st_tensor *t = cdf_st_at(f, i);
        int j = rec_find(l, t->name);
        if (j < 0) fail_msg("describe misses %s", t->name);
        assert_int_equal(l->ndim[j], t->ndim);
        assert_memory_equal(l->shape[j], t->shape, sizeof(int64_t) * (size_t)t->ndim);
    }
    printf("tiny decoder state_dict: %d tensors match\n", l->n);
    cdf_st_close(f);
    rec_free(l);
}

/* karlo-v1-alpha's decoder: diffusers' state_dict listing from gen_karlo_decoder_keys.py. */
static void describe_karlo(void **state) {
    (void)state;
    rec_list *l = describe(tu_data("../../models/karlo/decoder/config.json"));
    FILE *f = fopen(tu_data("unclip_decoder/karlo_decoder_state_dict.txt"), "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    int64_t params = 0;
    while (fgets(line, sizeof line, f)) {
        char name[CDF_NAME_MAX], dims[128];
        if (sscanf(line, "%255s %127s", name, dims) != 2) continue;
        int j = rec_find(l, name);
        if (j < 0) fail_msg("describe misses %s", name);
        int64_t sh[4];
        int nd = 0;
        for (char *tok = strtok(dims, ","); tok && nd < 4; tok = strtok(NULL, ",")) sh[nd++] = atoll(tok);
        if (nd != l->ndim[j] || memcmp(sh, l->shape[j], sizeof(int64_t) * (size_t)nd))
            fail_msg("%s: shape differs from diffusers'", name);
        int64_t e = 1;
        for (int d = 0; d < nd; d++) e *= sh[d];
        params += e;
        n++;
    }
    fclose(f);
    assert_int_equal(n, l->n);
    printf("karlo decoder state_dict: %d tensors, %lld parameters match\n", n, (long long)params);
    rec_free(l);
}

/* ---------------------------------------------------------------- errors */

typedef struct copy_ctx {
    cdf_st_file *src; /* the tiny decoder's weights, copied tensor by tensor */
} copy_ctx;

static cdf_status copy_fill(size_t i, const cdf_st_entry *e, void *data, void *user, cdf_error *err) {
    (void)e;
    (void)err;
    copy_ctx *c = user;
    const cdf_st_tensor *t = cdf_st_at(c->src, i);
    memcpy(data, t->data, t->nbytes);
    return CDF_OK;
}

static void misshapen_tensor(void **state) {
    (void)state;
    const char *bad = "mid_block.attentions.0.add_k_proj.weight";
    char *dir = tu_tmpdir(), path[1400], src[1400];
    cdf_error err = {0};
    copy_ctx c = {NULL};
    snprintf(src, sizeof src, "%s", tu_data("unclip/pipelines/tiny-karlo-a/decoder/diffusion_pytorch_model.safetensors"));
    assert_int_equal(cdf_st_open(src, &c.src, &err), CDF_OK);
    size_t n = cdf_st_count(c.src);
    cdf_st_entry *e = calloc(n, sizeof *e);
    int64_t want[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        const cdf_st_tensor *t = cdf_st_at(c.src, i);
        e[i].name = t->name;
        e[i].dtype = t->dtype;
        e[i].ndim = t->ndim;
        memcpy(e[i].shape, t->shape, sizeof t->shape);
        if (strcmp(t->name, bad) == 0) {
            assert_int_equal(t->ndim, 2);
            want[0] = t->shape[0];
            want[1] = t->shape[1];
            e[i].shape[0] = t->shape[1]; /* same bytes, transposed shape */
            e[i].shape[1] = t->shape[0];
        }
    }
    assert_true(want[0] != want[1]);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    if (cdf_st_write(path, e, n, copy_fill, &c, &err)) fail_msg("%s", err.msg);
    free(e);
    cdf_st_close(c.src);
    char *cfg = tu_read_text(tu_data("unclip/pipelines/tiny-karlo-a/decoder/config.json"));
    assert_non_null(cfg);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(cfg, f);
    fclose(f);
    free(cfg);
    cdf_unet2d_cond *m = NULL;
    assert_int_equal(cdf_unet2d_cond_load(dir, NULL, &m, &err), CDF_ERR_SHAPE);
    assert_null(m);
    printf("misshapen: %s\n", err.msg);
    char ws[64], fs[64];
    snprintf(ws, sizeof ws, "[%lld, %lld]", (long long)want[0], (long long)want[1]);
    snprintf(fs, sizeof fs, "[%lld, %lld]", (long long)want[1], (long long)want[0]);
    assert_non_null(strstr(err.msg, "diffusion_pytorch_model.safetensors"));
    assert_non_null(strstr(err.msg, bad));
    assert_non_null(strstr(err.msg, ws));
    assert_non_null(strstr(err.msg, fs));
    tu_rmtree(dir);
    free(dir);
}

/* The tiny decoder config with one field replaced (value: JSON text) must fail naming `expect`. */
static void config_error(const char *field, const char *value, cdf_status want, const char *expect) {
    char *txt = tu_read_text(tu_data("unclip/pipelines/tiny-karlo-a/decoder/config.json"));
    assert_non_null(txt);
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    assert_non_null(root);
    cJSON_ReplaceItemInObjectCaseSensitive(root, field, cJSON_Parse(value));
    cdf_error err = {0};
    cdf_unet2d_cond_config cfg;
    assert_int_equal(cdf_unet2d_cond_config_parse(root, "decoder/config.json", &cfg, &err), want);
    printf("%-28s %s\n", field, err.msg);
    assert_non_null(strstr(err.msg, "decoder/config.json"));
    assert_non_null(strstr(err.msg, expect));
    cJSON_Delete(root);
}

static void config_errors(void **state) {
    (void)state;
    config_error("class_embed_type", "\"timestep\"", CDF_ERR_UNSUPPORTED, "'class_embed_type' = \"timestep\"");
    config_error("class_embed_type", "\"projection\"", CDF_ERR_UNSUPPORTED, "'class_embed_type' = \"projection\"");
    config_error("mid_block_type", "\"UNetMidBlock2D\"", CDF_ERR_UNSUPPORTED, "'mid_block_type' = \"UNetMidBlock2D\"");
    config_error("down_block_types", "[\"ResnetDownsampleBlock2D\", \"AttnDownBlock2D\"]", CDF_ERR_UNSUPPORTED,
                 "'down_block_types'[1]: block type \"AttnDownBlock2D\"");
    config_error("up_block_types", "[\"SimpleCrossAttnUpBlock2D\", \"KUpBlock2D\"]", CDF_ERR_UNSUPPORTED,
                 "\"KUpBlock2D\"");
    config_error("cross_attention_norm", "\"group_norm\"", CDF_ERR_UNSUPPORTED, "'cross_attention_norm' = \"group_norm\"");
    config_error("resnet_out_scale_factor", "0", CDF_ERR_CONFIG, "'resnet_out_scale_factor'");
    config_error("resnet_skip_time_act", "\"yes\"", CDF_ERR_CONFIG, "'resnet_skip_time_act'");
    config_error("attention_head_dim", "64", CDF_ERR_CONFIG, "attention_head_dim[0] = 64");
    config_error("class_embeddings_concat", "true", CDF_ERR_UNSUPPORTED, "'class_embeddings_concat'");
    /* the real Karlo decoder config parses (layout only: no weights here) */
    char *txt = tu_read_text(tu_data("../../models/karlo/decoder/config.json"));
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    cdf_error err = {0};
    cdf_unet2d_cond_config cfg;
    assert_int_equal(cdf_unet2d_cond_config_parse(root, "karlo", &cfg, &err), CDF_OK);
    assert_true(cfg.class_embed_identity && cfg.scale_shift && cfg.mid_type == CDF_UNETC_MID_SIMPLE_CROSS);
    assert_int_equal(cfg.down_type[0], CDF_UNETC_RESNET);
    assert_int_equal(cfg.up_type[3], CDF_UNETC_RESNET);
    assert_int_equal(cfg.down_type[3], CDF_UNETC_SIMPLE_CROSS);
    assert_int_equal(cfg.time_embedding_dim, 1280);
    cJSON_Delete(root);
}

/* Forward arguments: class_labels are required by an "identity" model; a mask that diffusers cannot
 * broadcast (only_cross_attention blocks of the extra model, 5 context tokens, 16 spatial) is an error. */
static void argument_errors(void **state) {
    (void)state;
    cdf_unet2d_cond *m = load(tu_data("unclip/pipelines/tiny-karlo-a/decoder"));
    int h = 16, w = 16, seq = 81, cross = m->cfg.cross_attention_dim[0];
    float *x = calloc((size_t)3 * h * w, sizeof(float)), *ctx = calloc((size_t)seq * cross, sizeof(float));
    float *out = calloc((size_t)6 * h * w, sizeof(float));
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    assert_int_equal(cdf_unet2d_cond_forward(&ex, m, x, 1, h, w, 999, ctx, seq, out), CDF_ERR_ARG);
    printf("no class_labels: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "class_labels"));
    cdf_unet2d_cond_free(m);
    m = load(tu_data("unclip_decoder/extra/decoder"));
    int temb = m->cfg.time_embedding_dim;
    float *lab = calloc((size_t)temb, sizeof(float)), mask[5] = {1, 1, 1, 0, 0};
    cdf_unetc_extra extra = {lab, mask};
    assert_int_equal(cdf_unet2d_cond_forward_ext(&ex, m, x, 1, 8, 8, 999, ctx, 5, &extra, out), CDF_ERR_SHAPE);
    printf("only-cross mask: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "mask"));
    cdf_exec_release(&ex);
    cdf_unet2d_cond_free(m);
    free(lab);
    free(x);
    free(ctx);
    free(out);
}

/* -------------------------------------------------------- out of memory */

/* Load the tiny decoder and run one masked image through it. */
static cdf_status oom_flow(const dec_in *d, float *out, char *msg, size_t nmsg) {
    cdf_error err = {0};
    cdf_unet2d_cond *m = NULL;
    cdf_status s = cdf_unet2d_cond_load(tu_data("unclip/pipelines/tiny-karlo-a/decoder"), NULL, &m, &err);
    if (!s) {
        cdf_exec ex;
        cdf_exec_init(&ex, 1, &err);
        cdf_unetc_extra extra = {d->labels, d->mask};
        s = cdf_unet2d_cond_forward_ext(&ex, m, d->x, 1, d->h, d->w, d->t, d->ctx, d->seq, &extra, out);
        cdf_exec_release(&ex);
    }
    cdf_unet2d_cond_free(m);
    snprintf(msg, nmsg, "%s", err.msg);
    return s;
}

/* Every allocation of loading and of a forward pass, failed in turn: ERR_NOMEM with a message, nothing leaked. */
static void oom_sweep(void **state) {
    (void)state;
    const char *dir = tu_data("unclip/cases/one_prompt_one_gen");
    char cdir[1400], msg[sizeof ((cdf_error *)0)->msg];
    snprintf(cdir, sizeof cdir, "%s", dir);
    cJSON *c = sd_case_json(cdir);
    assert_non_null(c);
    dec_in d;
    dec_in_load(cdir, c, &d);
    size_t per = d.nout / (size_t)d.rows;
    float *ref = malloc(per * sizeof(float)), *out = malloc(per * sizeof(float));
    assert_int_equal(oom_flow(&d, ref, msg, sizeof msg), CDF_OK);
    tu_oom st;
    cdf_allocator a = tu_oom_allocator(&st);
    memset(&st, 0, sizeof st);
    cdf_set_allocator(&a);
    cdf_status s = oom_flow(&d, out, msg, sizeof msg);
    cdf_set_allocator(NULL);
    assert_int_equal(s, CDF_OK);
    assert_int_equal(st.live, 0);
    assert_memory_equal(out, ref, per * sizeof(float));
    long total = st.calls;
    for (long n = 1; n <= total; n++) {
        memset(&st, 0, sizeof st);
        st.fail_at = n;
        cdf_set_allocator(&a);
        s = oom_flow(&d, out, msg, sizeof msg);
        cdf_set_allocator(NULL);
        if (st.live != 0) fail_msg("allocation %ld failed: %ld blocks leaked (%s)", n, st.live, msg);
        if (st.failed != 1) fail_msg("allocation %ld was never made", n);
        if (s != CDF_ERR_NOMEM || !msg[0])
            fail_msg("allocation %ld of %ld failed: status %s (%s), expected ERR_NOMEM", n, total, cdf_status_name(s),
                     msg);
    }
    printf("oom sweep: %ld allocations, each failed once\n", total);
    free(ref);
    free(out);
    dec_in_free(&d);
    cJSON_Delete(c);
}

int main(void) {
    char **dirs;
    int n = case_list_in("unclip", &dirs);
    struct CMUnitTest *tests = calloc((size_t)n, sizeof *tests);
    for (int i = 0; i < n; i++) {
        tests[i].name = strrchr(dirs[i], '/') + 1;
        tests[i].test_func = golden_case;
        tests[i].initial_state = dirs[i];
    }
    int rc = _cmocka_run_group_tests("unet_karlo_decoder_golden", tests, (size_t)n, NULL, NULL);
    const struct CMUnitTest more[] = {
        cmocka_unit_test(extra_decoder),   cmocka_unit_test(describe_tiny),   cmocka_unit_test(describe_karlo),
        cmocka_unit_test(misshapen_tensor), cmocka_unit_test(config_errors), cmocka_unit_test(argument_errors),
        cmocka_unit_test(oom_sweep),
    };
    rc |= cmocka_run_group_tests_name("unet_karlo_decoder", more, NULL, NULL);
    for (int i = 0; i < n; i++) free(dirs[i]);
    free(dirs);
    free(tests);
    return rc;
}
