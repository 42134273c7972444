#include "models/text_proj.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "io/json.h"
#include "models/blocks2d.h"
#include "models/component.h"

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

static const char *const k_known[] = {"clip_extra_context_tokens", "clip_embeddings_dim", "time_embed_dim",
                                      "cross_attention_dim", NULL};

/* required: absent or null is an error (diffusers' keyword-only arguments without a default). */
static cdf_status get_dim(const cJSON *root, const char *path, const char *key, int required, int *out,
                          cdf_error *err) {
    if (!cdf_json_has(root, key)) {
        if (required) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' is required", path, key);
        return CDF_OK;
    }
    int64_t v = 0;
    TRY(cdf_json_get_int(root, path, key, &v, err));
    if (v < 1 || v > (1 << 16))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' = %lld is out of range [1, %d]", path, key,
                             (long long)v, 1 << 16);
    *out = (int)v;
    return CDF_OK;
}

cdf_status cdf_text_proj_config_parse(const cJSON *root, const char *path, cdf_text_proj_config *cfg,
                                      cdf_error *err) {
    memset(cfg, 0, sizeof *cfg);
    TRY(cdf_json_config_class(root, path, "UnCLIPTextProjModel", k_known, err));
    static const char *const not_null[] = {"clip_extra_context_tokens", "clip_embeddings_dim", NULL};
    TRY(cdf_json_not_null(root, path, not_null, err)); /* None reaches torch.zeros / nn.Linear */
    cfg->clip_extra_context_tokens = 4;
    cfg->clip_embeddings_dim = 768;
    TRY(get_dim(root, path, "clip_extra_context_tokens", 0, &cfg->clip_extra_context_tokens, err));
    TRY(get_dim(root, path, "clip_embeddings_dim", 0, &cfg->clip_embeddings_dim, err));
    TRY(get_dim(root, path, "time_embed_dim", 1, &cfg->time_embed_dim, err));
    TRY(get_dim(root, path, "cross_attention_dim", 1, &cfg->cross_attention_dim, err));
    if ((int64_t)cfg->clip_extra_context_tokens * cfg->cross_attention_dim > (1 << 24))
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: clip_extra_context_tokens * cross_attention_dim = %lld is too large", path,
                             (long long)cfg->clip_extra_context_tokens * cfg->cross_attention_dim);
    return CDF_OK;
}

struct cdf_text_proj {
    cdf_text_proj_config cfg;
    cdf_weights *weights;                    /* owned; NULL in describe mode */
    cdf_param learned_cfg_embeddings;        /* [clip_embeddings_dim] learned_classifier_free_guidance_embeddings */
    cdf_linear embedding_proj;               /* clip_embeddings_dim -> time_embed_dim */
    cdf_linear image_to_time;                /* clip_image_embeddings_project_to_time_embeddings: same shape */
    cdf_linear extra_tokens_proj;            /* clip_extra_context_tokens_proj: clip -> extra * cross */
    cdf_linear encoder_hidden_states_proj;   /* clip_embeddings_dim -> cross_attention_dim */
    cdf_layernorm text_norm;                 /* text_encoder_hidden_states_norm [cross_attention_dim] */
};

static cdf_status load_model(cdf_loader *ld, cdf_text_proj *m) {
    const cdf_text_proj_config *c = &m->cfg;
    int clip = c->clip_embeddings_dim, cross = c->cross_attention_dim;
    int64_t ls[1] = {clip};
    TRY(cdf_load_param(ld, "", "learned_classifier_free_guidance_embeddings", 1, ls, 0, &m->learned_cfg_embeddings));
    TRY(cdf_linear_load(ld, "embedding_proj", clip, c->time_embed_dim, 1, &m->embedding_proj));
    TRY(cdf_linear_load(ld, "clip_image_embeddings_project_to_time_embeddings", clip, c->time_embed_dim, 1,
                        &m->image_to_time));
    TRY(cdf_linear_load(ld, "clip_extra_context_tokens_proj", clip, c->clip_extra_context_tokens * cross, 1,
                        &m->extra_tokens_proj));
    TRY(cdf_linear_load(ld, "encoder_hidden_states_proj", clip, cross, 1, &m->encoder_hidden_states_proj));
    TRY(cdf_layernorm_load(ld, "text_encoder_hidden_states_norm", cross, 1e-5, 1, &m->text_norm));
    return ld->record ? CDF_OK : cdf_weights_check_all_used(ld->w, ld->err);
}

void cdf_text_proj_free(cdf_text_proj *m) {
    if (!m) return;
    cdf_weights_close(m->weights);
    cdf_free(m);
}

static cdf_status parse_cfg(const cJSON *root, const char *path, void *cfg, cdf_error *err) {
    return cdf_text_proj_config_parse(root, path, (cdf_text_proj_config *)cfg, err);
}
static cdf_status walk_model(cdf_loader *ld, void *m) { return load_model(ld, (cdf_text_proj *)m); }
static void free_model(void *m) { cdf_text_proj_free((cdf_text_proj *)m); }

static const cdf_component_class k_text_proj_class = {"UnCLIPTextProjModel", "text_proj", sizeof(cdf_text_proj),
    offsetof(cdf_text_proj, cfg), sizeof(cdf_text_proj_config), offsetof(cdf_text_proj, weights), 0, parse_cfg,
    walk_model, free_model};

cdf_status cdf_text_proj_load(const char *dir, const char *variant, cdf_text_proj **out, cdf_error *err) {
    void *m = NULL;
    cdf_status s = cdf_component_load(&k_text_proj_class, dir, variant, &m, err);
    *out = m;
    return s;
}

cdf_status cdf_text_proj_describe(const cdf_text_proj_config *cfg, cdf_param_record_fn fn, void *user,
                                  cdf_error *err) {
    return cdf_component_describe(&k_text_proj_class, cfg, fn, user, err);
}

const cdf_text_proj_config *cdf_text_proj_get_config(const cdf_text_proj *m) { return &m->cfg; }
const cdf_weights *cdf_text_proj_weights(const cdf_text_proj *m) { return m->weights; }

static cdf_status nomem(cdf_exec *ex) { return ex->err && ex->err->status ? ex->err->status : CDF_ERR_NOMEM; }

cdf_status cdf_text_proj_forward(cdf_exec *ex, const cdf_text_proj *m, const float *image_emb, int batch, int cfg,
                                 const float *prompt_embeds, const float *text_hidden, int seq, float *out_hidden,
                                 float *out_time) {
    const cdf_text_proj_config *c = &m->cfg;
    if (batch < 0 || seq < 0 || batch > (1 << 16) || seq > (1 << 16))
        return cdf_error_set(ex->err, CDF_ERR_ARG, "text_proj: input of %d image embeddings and %d text tokens",
                             batch, seq);
    if (batch == 0) return CDF_OK;
    if (!image_emb || !prompt_embeds || (seq && !text_hidden) || !out_hidden || !out_time)
        return cdf_error_set(ex->err, CDF_ERR_ARG, "text_proj: NULL input or output");
    int rows = cfg ? 2 * batch : batch, clip = c->clip_embeddings_dim, cross = c->cross_attention_dim;
    int extra = c->clip_extra_context_tokens, ntok = extra + seq;
    cdf_status s = CDF_OK;
    float *img = cdf_buf(ex, (size_t)rows * clip);                 /* [rows, clip] image embeddings (cfg prefix) */
    float *tt = cdf_buf(ex, (size_t)rows * c->time_embed_dim);     /* [rows, time_embed_dim] */
    float *et = cdf_buf(ex, (size_t)rows * extra * cross);         /* [rows, cross, extra] as torch views it */
    if (!img || !tt || !et) {
        s = nomem(ex);
        goto done;
    }
    if (cfg) {
        const float *l = cdf_param_f32(ex, &m->learned_cfg_embeddings, 0); /* [clip]; copied before slot 0 is reused */
        if (!l) {
            s = nomem(ex);
            goto done;
        }
        for (int b = 0; b < batch; b++) memcpy(img + (size_t)b * clip, l, (size_t)clip * sizeof(float));
    }
    memcpy(img + (size_t)(rows - batch) * clip, image_emb, (size_t)batch * clip * sizeof(float));

    /* additive_clip_time_embeddings = image part + prompt part */
    if ((s = cdf_linear_forward(ex, &m->embedding_proj, prompt_embeds, rows, out_time))) goto done;
    if ((s = cdf_linear_forward(ex, &m->image_to_time, img, rows, tt))) goto done;
    size_t nt = (size_t)rows * c->time_embed_dim;
    for (size_t i = 0; i < nt; i++) out_time[i] = tt[i] + out_time[i];

    /* extra context tokens: [rows, extra*cross] read as (rows, cross, extra), permuted to (rows, extra, cross) */
    if ((s = cdf_linear_forward(ex, &m->extra_tokens_proj, img, rows, et))) goto done;
    for (int r = 0; r < rows; r++) {
        const float *er = et + (size_t)r * extra * cross;
        float *orow = out_hidden + (size_t)r * ntok * cross;
        for (int j = 0; j < extra; j++)
            for (int ch = 0; ch < cross; ch++) orow[(size_t)j * cross + ch] = er[(size_t)ch * extra + j];
    }
    if (seq == 0) goto done;
    /* text tokens: LayerNorm(encoder_hidden_states_proj(text_hidden)), one GEMM per row's sequence */
    for (int r = 0; r < rows; r++)
        if ((s = cdf_linear_forward(ex, &m->encoder_hidden_states_proj, text_hidden + (size_t)r * seq * clip, seq,
                                    out_hidden + ((size_t)r * ntok + extra) * cross)))
            goto done;
    for (int r = 0; r < rows; r++) {
        float *th = out_hidden + ((size_t)r * ntok + extra) * cross;
        if ((s = cdf_layernorm_forward(ex, &m->text_norm, th, seq, th))) goto done;
    }
done:
    cdf_aligned_free(img);
    cdf_aligned_free(tt);
    cdf_aligned_free(et);
    return s;
}
