#include "models/prior_transformer.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "io/json.h"
#include "models/blocks2d.h"
#include "models/component.h"
#include "models/embeddings.h"
#include "tensor/attention.h"
#include "tensor/half.h"
#include "tensor/ops_nlp.h"

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

/* ------------------------------------------------------------------ config */

static const char *const k_known[] = {
    "num_attention_heads", "attention_head_dim", "num_layers", "embedding_dim", "num_embeddings",
    "additional_embeddings", "dropout", "time_embed_act_fn", "norm_in_type", "embedding_proj_norm_type",
    "encoder_hid_proj_type", "added_emb_type", "time_embed_dim", "embedding_proj_dim", "clip_embed_dim", NULL};

/* Keys PriorTransformer cannot be built from when null (torch raises on None). */
static const char *const k_not_null[] = {"num_attention_heads", "attention_head_dim", "num_layers", "embedding_dim",
                                         "num_embeddings", "additional_embeddings", "dropout", NULL};

static cdf_status get_int32(const cJSON *root, const char *path, const char *key, int *out, int64_t lo, int64_t hi,
                            cdf_error *err) {
    int64_t v = *out;
    if (!cdf_json_has(root, key)) return CDF_OK; /* absent or null: keep the default */
    TRY(cdf_json_get_int(root, path, key, &v, err));
    if (v < lo || v > hi)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' = %lld is out of range [%lld, %lld]", path, key,
                             (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return CDF_OK;
}

/* A field that is either null or the one string `on` (*flag 1); absent keeps *flag. */
static cdf_status get_optional_type(const cJSON *root, const char *path, const char *key, const char *on, int *flag,
                                    cdf_error *err) {
    if (!cJSON_GetObjectItemCaseSensitive(root, key)) return CDF_OK;
    const char *v = NULL;
    TRY(cdf_json_get_string(root, path, key, &v, err));
    if (!v) {
        *flag = 0;
    } else if (strcmp(v, on) == 0) {
        *flag = 1;
    } else {
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' has unsupported value \"%s\" (\"%s\" or null)", path,
                             key, v, on);
    }
    return CDF_OK;
}

cdf_status cdf_prior_config_parse(const cJSON *root, const char *path, cdf_prior_config *cfg, cdf_error *err) {
    memset(cfg, 0, sizeof *cfg);
    TRY(cdf_json_config_class(root, path, "PriorTransformer", k_known, err));
    TRY(cdf_json_not_null(root, path, k_not_null, err));

    cfg->num_attention_heads = 32;
    cfg->attention_head_dim = 64;
    cfg->num_layers = 20;
    cfg->embedding_dim = 768;
    cfg->num_embeddings = 77;
    cfg->additional_embeddings = 4;
    TRY(get_int32(root, path, "num_attention_heads", &cfg->num_attention_heads, 1, 4096, err));
    TRY(get_int32(root, path, "attention_head_dim", &cfg->attention_head_dim, 1, 65536, err));
    TRY(get_int32(root, path, "num_layers", &cfg->num_layers, 0, 1024, err));
    TRY(get_int32(root, path, "embedding_dim", &cfg->embedding_dim, 1, 1 << 16, err));
    TRY(get_int32(root, path, "num_embeddings", &cfg->num_embeddings, 1, 1 << 16, err));
    TRY(get_int32(root, path, "additional_embeddings", &cfg->additional_embeddings, 0, 1 << 16, err));
    if ((int64_t)cfg->num_attention_heads * cfg->attention_head_dim > (1 << 16))
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: num_attention_heads * attention_head_dim = %lld is too large (at most %d)", path,
                             (long long)cfg->num_attention_heads * cfg->attention_head_dim, 1 << 16);
    cfg->inner = cfg->num_attention_heads * cfg->attention_head_dim;
    double dropout = 0.0;
    TRY(cdf_json_get_double(root, path, "dropout", &dropout, err)); /* training only */
    if (!(dropout >= 0.0 && dropout <= 1.0)) /* but torch.nn.Dropout raises */
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'dropout' = %g is not in [0, 1]", path, dropout);

    const char *act = "silu";
    TRY(cdf_json_get_string(root, path, "time_embed_act_fn", &act, err));
    int a = act ? cdf_act_from_name(act) : -1;
    if (a < 0)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: field 'time_embed_act_fn' has unsupported value \"%s\" (silu, swish, mish, gelu, "
                             "relu)",
                             path, act ? act : "null");
    cfg->time_embed_act = (cdf_act)a;

    cfg->encoder_hid_proj = 1;
    cfg->prd = 1;
    TRY(get_optional_type(root, path, "norm_in_type", "layer", &cfg->norm_in, err));
    TRY(get_optional_type(root, path, "embedding_proj_norm_type", "layer", &cfg->embedding_proj_norm, err));
    TRY(get_optional_type(root, path, "encoder_hid_proj_type", "linear", &cfg->encoder_hid_proj, err));
    TRY(get_optional_type(root, path, "added_emb_type", "prd", &cfg->prd, err));

    /* null (or absent) means derived, as diffusers' `x or default` (0 is falsy there too) */
    TRY(get_int32(root, path, "time_embed_dim", &cfg->time_embed_dim, 0, 1 << 20, err));
    TRY(get_int32(root, path, "embedding_proj_dim", &cfg->embedding_proj_dim, 0, 1 << 16, err));
    TRY(get_int32(root, path, "clip_embed_dim", &cfg->clip_embed_dim, 0, 1 << 16, err));
    if (!cfg->time_embed_dim) cfg->time_embed_dim = cfg->inner;
    if (!cfg->embedding_proj_dim) cfg->embedding_proj_dim = cfg->embedding_dim;
    if (!cfg->clip_embed_dim) cfg->clip_embed_dim = cfg->embedding_dim;

    /* The token sequence [text x num_embeddings, proj, time, latents(, prd)] must be exactly as long as
     * positional_embedding and the causal mask (num_embeddings + additional_embeddings); diffusers builds
     * other values but fails in forward. */
    if (cfg->additional_embeddings != 3 + cfg->prd)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: field 'additional_embeddings' = %d: with added_emb_type %s the sequence has %d extra "
                             "tokens; other values do not run in diffusers either",
                             path, cfg->additional_embeddings, cfg->prd ? "\"prd\"" : "null", 3 + cfg->prd);
    return CDF_OK;
}

/* ------------------------------------------------------------------- model */

typedef struct prior_block {
    cdf_layernorm norm1;                 /* [inner] */
    cdf_linear to_q, to_k, to_v;         /* inner -> inner, with bias */
    cdf_linear to_out;                   /* inner -> inner */
    cdf_layernorm norm3;                 /* [inner] */
    cdf_linear ff_proj;                  /* inner -> 4*inner (GELU, erf) */
    cdf_linear ff_out;                   /* 4*inner -> inner */
} prior_block;

struct cdf_prior {
    cdf_prior_config cfg;
    cdf_weights *weights;                  /* owned; NULL in describe mode */
    cdf_param positional_embedding;        /* [1, num_embeddings + additional_embeddings, inner] */
    cdf_param prd_embedding;               /* [1, 1, inner] (prd only) */
    cdf_param clip_mean, clip_std;         /* [1, clip_embed_dim] */
    cdf_time_mlp time_embedding;           /* inner -> time_embed_dim -> inner */
    cdf_linear proj_in;                    /* embedding_dim -> inner */
    cdf_layernorm embedding_proj_norm;     /* [embedding_proj_dim] (embedding_proj_norm only) */
    cdf_linear embedding_proj;             /* embedding_proj_dim -> inner */
    cdf_linear encoder_hidden_states_proj; /* embedding_dim -> inner (encoder_hid_proj only) */
    prior_block *blocks;                   /* [num_layers] */
    cdf_layernorm norm_in;                 /* [inner] (norm_in only) */
    cdf_layernorm norm_out;                /* [inner] */
    cdf_linear proj_to_clip_embeddings;    /* inner -> clip_embed_dim */
};

static cdf_status block_load(cdf_loader *ld, const char *prefix, int inner, prior_block *b) {
    char p[CDF_NAME_MAX];
    /* state_dict order: norm1, attn1 (to_q, to_k, to_v, to_out.0), norm3, ff */
    TRY(cdf_layernorm_load(ld, cdf_join(p, prefix, "norm1"), inner, 1e-5, 1, &b->norm1));
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "attn1.to_q"), inner, inner, 1, &b->to_q));
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "attn1.to_k"), inner, inner, 1, &b->to_k));
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "attn1.to_v"), inner, inner, 1, &b->to_v));
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "attn1.to_out.0"), inner, inner, 1, &b->to_out));
    TRY(cdf_layernorm_load(ld, cdf_join(p, prefix, "norm3"), inner, 1e-5, 1, &b->norm3));
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "ff.net.0.proj"), inner, 4 * inner, 1, &b->ff_proj));
    return cdf_linear_load(ld, cdf_join(p, prefix, "ff.net.2"), 4 * inner, inner, 1, &b->ff_out);
}

static cdf_status load_model(cdf_loader *ld, cdf_prior *m) {
    const cdf_prior_config *c = &m->cfg;
    int inner = c->inner;
    int64_t pos[3] = {1, c->num_embeddings + c->additional_embeddings, inner}, prd[3] = {1, 1, inner},
            clip[2] = {1, c->clip_embed_dim};
    /* diffusers' state_dict order: own parameters, then the submodules as registered */
    TRY(cdf_load_param(ld, "", "positional_embedding", 3, pos, 0, &m->positional_embedding));
    if (c->prd) TRY(cdf_load_param(ld, "", "prd_embedding", 3, prd, 0, &m->prd_embedding));
    TRY(cdf_load_param(ld, "", "clip_mean", 2, clip, 0, &m->clip_mean));
    TRY(cdf_load_param(ld, "", "clip_std", 2, clip, 0, &m->clip_std));
    m->time_embedding.act = (int)c->time_embed_act;
    m->time_embedding.post_act = CDF_ACT_NONE;
    TRY(cdf_linear_load(ld, "time_embedding.linear_1", inner, c->time_embed_dim, 1, &m->time_embedding.linear_1));
    TRY(cdf_linear_load(ld, "time_embedding.linear_2", c->time_embed_dim, inner, 1, &m->time_embedding.linear_2));
    TRY(cdf_linear_load(ld, "proj_in", c->embedding_dim, inner, 1, &m->proj_in));
    if (c->embedding_proj_norm)
        TRY(cdf_layernorm_load(ld, "embedding_proj_norm", c->embedding_proj_dim, 1e-5, 1, &m->embedding_proj_norm));
    TRY(cdf_linear_load(ld, "embedding_proj", c->embedding_proj_dim, inner, 1, &m->embedding_proj));
    if (c->encoder_hid_proj)
        TRY(cdf_linear_load(ld, "encoder_hidden_states_proj", c->embedding_dim, inner, 1,
                            &m->encoder_hidden_states_proj));
    if (c->num_layers > 0) {
        m->blocks = cdf_calloc((size_t)c->num_layers, sizeof *m->blocks);
        if (!m->blocks) return cdf_error_set(ld->err, CDF_ERR_NOMEM, "out of memory loading %s", ld->what);
    }
    for (int l = 0; l < c->num_layers; l++) {
        char p[64];
        snprintf(p, sizeof p, "transformer_blocks.%d", l);
        TRY(block_load(ld, p, inner, &m->blocks[l]));
    }
    if (c->norm_in) TRY(cdf_layernorm_load(ld, "norm_in", inner, 1e-5, 1, &m->norm_in));
    TRY(cdf_layernorm_load(ld, "norm_out", inner, 1e-5, 1, &m->norm_out));
    TRY(cdf_linear_load(ld, "proj_to_clip_embeddings", inner, c->clip_embed_dim, 1, &m->proj_to_clip_embeddings));
    return ld->record ? CDF_OK : cdf_weights_check_all_used(ld->w, ld->err);
}

void cdf_prior_free(cdf_prior *m) {
    if (!m) return;
    cdf_free(m->blocks);
    cdf_weights_close(m->weights);
    cdf_free(m);
}

static cdf_status parse_cfg(const cJSON *root, const char *path, void *cfg, cdf_error *err) {
    return cdf_prior_config_parse(root, path, (cdf_prior_config *)cfg, err);
}
static cdf_status walk_model(cdf_loader *ld, void *m) { return load_model(ld, (cdf_prior *)m); }
static void free_model(void *m) { cdf_prior_free((cdf_prior *)m); }

static const cdf_component_class k_prior_class = {"PriorTransformer", "prior", sizeof(cdf_prior),
    offsetof(cdf_prior, cfg), sizeof(cdf_prior_config), offsetof(cdf_prior, weights), 0, parse_cfg, walk_model,
    free_model};

cdf_status cdf_prior_load(const char *dir, const char *variant, cdf_prior **out, cdf_error *err) {
    void *m = NULL;
    cdf_status s = cdf_component_load(&k_prior_class, dir, variant, &m, err);
    *out = m;
    return s;
}

cdf_status cdf_prior_describe(const cdf_prior_config *cfg, cdf_param_record_fn fn, void *user, cdf_error *err) {
    return cdf_component_describe(&k_prior_class, cfg, fn, user, err);
}

const cdf_prior_config *cdf_prior_get_config(const cdf_prior *m) { return &m->cfg; }
int cdf_prior_embedding_dim(const cdf_prior *m) { return m->cfg.embedding_dim; }
int cdf_prior_clip_embed_dim(const cdf_prior *m) { return m->cfg.clip_embed_dim; }
int cdf_prior_num_embeddings(const cdf_prior *m) { return m->cfg.num_embeddings; }
const cdf_weights *cdf_prior_weights(const cdf_prior *m) { return m->weights; }

/* ----------------------------------------------------------------- forward */

static cdf_status nomem(cdf_exec *ex) { return ex->err && ex->err->status ? ex->err->status : CDF_ERR_NOMEM; }

/* For each of `batch` groups: y[g] [rows, out] = x[g] [rows, in] @ W^T + b;
 * groups xs / ys floats apart. */
static cdf_status linear_groups(cdf_exec *ex, const cdf_linear *lin, const float *x, size_t xs, int batch, int rows,
                                float *y, size_t ys) {
    for (int g = 0; g < batch; g++) {
        cdf_status s = cdf_linear_forward(ex, lin, x + (size_t)g * xs, rows, y + (size_t)g * ys);
        if (s) return s;
    }
    return CDF_OK;
}

/* Work buffers of one forward pass (T tokens per row). */
typedef struct prior_work {
    float *h;    /* [batch, T, inner] residual stream */
    float *nrm;  /* [batch, T, inner] normalised input of a sub-block */
    float *q, *k, *v; /* [batch, T, inner] */
    float *o;    /* [batch, T, inner] attention output, then sub-block output */
    float *ff;   /* [batch, T, 4*inner] feed-forward hidden */
    float *mask; /* [batch, T, T] additive attention mask (NULL without text_mask) */
    float *row;  /* [batch, max(inner, embedding_proj_dim, time_embed_dim)] per-row vectors */
} prior_work;

static void work_free(prior_work *w) {
    cdf_aligned_free(w->h);
    cdf_aligned_free(w->nrm);
    cdf_aligned_free(w->q);
    cdf_aligned_free(w->k);
    cdf_aligned_free(w->v);
    cdf_aligned_free(w->o);
    cdf_aligned_free(w->ff);
    cdf_aligned_free(w->mask);
    cdf_aligned_free(w->row);
}

/* mask[b] [T, T]: (1 - text_mask) * -10000 on the seq text keys, 0 on the
 * extra keys, plus -10000 above the diagonal (all float32, as diffusers). */
static void build_mask(const int64_t *text_mask, int batch, int seq, int T, float *mask) {
    for (int b = 0; b < batch; b++) {
        float *mb = mask + (size_t)b * T * T;
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) {
                float pad = j < seq ? (1.0f - (float)text_mask[(size_t)b * seq + j]) * -10000.0f : 0.0f;
                float causal = j > i ? -10000.0f : 0.0f;
                mb[(size_t)i * T + j] = pad + causal;
            }
    }
}

/* h [batch, T, inner] = the input tokens plus positional_embedding. */
static cdf_status embed_tokens(cdf_exec *ex, const cdf_prior *m, const float *latents, int batch, float t,
                               const float *proj_emb, const float *enc_hidden, int seq, int T, prior_work *w) {
    const cdf_prior_config *c = &m->cfg;
    int inner = c->inner;
    size_t tok = (size_t)T * inner;
    /* text tokens 0..seq-1 */
    if (c->encoder_hid_proj) {
        TRY(linear_groups(ex, &m->encoder_hidden_states_proj, enc_hidden, (size_t)seq * c->embedding_dim, batch, seq,
                          w->h, tok));
    } else {
        for (int b = 0; b < batch; b++)
            memcpy(w->h + (size_t)b * tok, enc_hidden + (size_t)b * seq * inner, (size_t)seq * inner * sizeof(float));
    }
    /* token seq: embedding_proj(proj_emb), one row at a time */
    const float *pe = proj_emb;
    if (c->embedding_proj_norm) {
        TRY(cdf_layernorm_forward(ex, &m->embedding_proj_norm, proj_emb, batch, w->row));
        pe = w->row;
    }
    TRY(cdf_linear_forward(ex, &m->embedding_proj, pe, batch, w->o)); /* [batch, inner] */
    for (int b = 0; b < batch; b++) memcpy(w->h + (size_t)b * tok + (size_t)seq * inner, w->o + (size_t)b * inner, inner * sizeof(float));
    /* token seq+1: time embedding (the same timestep for every row: computed once) */
    cdf_timestep_embedding(t, inner, 1, 0.0, w->row);
    TRY(cdf_time_mlp_forward(ex, &m->time_embedding, w->row, 1, w->o));
    for (int b = 0; b < batch; b++)
        memcpy(w->h + (size_t)b * tok + (size_t)(seq + 1) * inner, w->o, inner * sizeof(float));
    /* token seq+2: proj_in(latents) */
    TRY(cdf_linear_forward(ex, &m->proj_in, latents, batch, w->o));
    for (int b = 0; b < batch; b++)
        memcpy(w->h + (size_t)b * tok + (size_t)(seq + 2) * inner, w->o + (size_t)b * inner, inner * sizeof(float));
    /* token seq+3: prd_embedding */
    if (c->prd) {
        const float *prd = cdf_param_f32(ex, &m->prd_embedding, 0);
        if (!prd) return nomem(ex);
        for (int b = 0; b < batch; b++) memcpy(w->h + (size_t)b * tok + (size_t)(seq + 3) * inner, prd, inner * sizeof(float));
    }
    const float *pos = cdf_param_f32(ex, &m->positional_embedding, 0); /* [T, inner] */
    if (!pos) return nomem(ex);
    for (int b = 0; b < batch; b++) cdf_add_inplace(ex, w->h + (size_t)b * tok, pos, tok);
    return CDF_OK;
}

/* One BasicTransformerBlock (self-attention only) in place on w->h. */
static cdf_status block_forward(cdf_exec *ex, const cdf_prior *m, const prior_block *B, int batch, int T,
                                prior_work *w) {
    const cdf_prior_config *c = &m->cfg;
    int inner = c->inner, heads = c->num_attention_heads, hd = c->attention_head_dim;
    size_t tok = (size_t)T * inner, n = (size_t)batch * tok;
    float scale = (float)pow((double)hd, -0.5);
    TRY(cdf_layernorm_forward(ex, &B->norm1, w->h, (int64_t)batch * T, w->nrm));
    TRY(linear_groups(ex, &B->to_q, w->nrm, tok, batch, T, w->q, tok));
    TRY(linear_groups(ex, &B->to_k, w->nrm, tok, batch, T, w->k, tok));
    TRY(linear_groups(ex, &B->to_v, w->nrm, tok, batch, T, w->v, tok));
    for (int b = 0; b < batch; b++) {
        size_t off = (size_t)b * tok;
        const float *mb = w->mask ? w->mask + (size_t)b * T * T : NULL;
        TRY(cdf_attention_masked(ex, w->q + off, inner, w->k + off, inner, w->v + off, inner, w->nrm + off, inner, T,
                                 T, heads, hd, scale, mb, T));
    }
    TRY(linear_groups(ex, &B->to_out, w->nrm, tok, batch, T, w->o, tok));
    cdf_add_inplace(ex, w->h, w->o, n); /* attn_output + hidden_states */
    TRY(cdf_layernorm_forward(ex, &B->norm3, w->h, (int64_t)batch * T, w->nrm));
    TRY(linear_groups(ex, &B->ff_proj, w->nrm, tok, batch, T, w->ff, (size_t)T * 4 * inner));
    cdf_activate(ex, w->ff, (size_t)batch * T * 4 * inner, CDF_ACT_GELU);
    TRY(linear_groups(ex, &B->ff_out, w->ff, (size_t)T * 4 * inner, batch, T, w->o, tok));
    cdf_add_inplace(ex, w->h, w->o, n); /* ff_output + hidden_states */
    return CDF_OK;
}

cdf_status cdf_prior_forward(cdf_exec *ex, const cdf_prior *m, const float *latents, int batch, double t,
                             const float *proj_emb, const float *enc_hidden, int seq, const int64_t *text_mask,
                             float *out) {
    const cdf_prior_config *c = &m->cfg;
    if (batch < 0 || seq != c->num_embeddings)
        return cdf_error_set(ex->err, CDF_ERR_ARG,
                             "prior: input of %d rows of %d text tokens (the model takes exactly num_embeddings = %d)",
                             batch, seq, c->num_embeddings);
    if (batch == 0) return CDF_OK;
    if (batch > (1 << 16))
        return cdf_error_set(ex->err, CDF_ERR_LIMIT, "prior: %d rows are too many (at most %d)", batch, 1 << 16);
    if (!latents || !proj_emb || !enc_hidden || !out)
        return cdf_error_set(ex->err, CDF_ERR_ARG, "prior: NULL latents, proj_emb, enc_hidden or output");
    if (!isfinite(t)) return cdf_error_set(ex->err, CDF_ERR_ARG, "prior: timestep %g is not finite", t);
    int inner = c->inner, T = c->num_embeddings + c->additional_embeddings;
    size_t n = (size_t)batch * T * inner;
    int rw = inner;
    if (c->embedding_proj_dim > rw) rw = c->embedding_proj_dim;
    if (c->time_embed_dim > rw) rw = c->time_embed_dim;
    prior_work w = {0};
    cdf_status s = CDF_OK;
    if (!(w.h = cdf_buf(ex, n)) || !(w.nrm = cdf_buf(ex, n)) || !(w.q = cdf_buf(ex, n)) || !(w.k = cdf_buf(ex, n)) ||
        !(w.v = cdf_buf(ex, n)) || !(w.o = cdf_buf(ex, n)) || !(w.ff = cdf_buf(ex, 4 * n)) ||
        !(w.row = cdf_buf(ex, (size_t)batch * rw)) || (text_mask && !(w.mask = cdf_buf(ex, (size_t)batch * T * T)))) {
        s = nomem(ex);
        goto done;
    }
    if (text_mask) build_mask(text_mask, batch, seq, T, w.mask);
    if ((s = embed_tokens(ex, m, latents, batch, (float)t, proj_emb, enc_hidden, seq, T, &w))) goto done;
    if (c->norm_in && (s = cdf_layernorm_forward(ex, &m->norm_in, w.h, (int64_t)batch * T, w.h))) goto done;
    for (int l = 0; l < c->num_layers; l++) {
        if (ex->interrupt && *ex->interrupt) {
            s = cdf_error_set(ex->err, CDF_ERR_INTERRUPTED, "prior: interrupted");
            goto done;
        }
        if ((s = block_forward(ex, m, &m->blocks[l], batch, T, &w))) goto done;
    }
    /* norm_out and proj_to_clip_embeddings of the last token (prd, or the latents token without prd) */
    for (int b = 0; b < batch; b++)
        memcpy(w.nrm + (size_t)b * inner, w.h + ((size_t)b * T + (size_t)(T - 1)) * inner, inner * sizeof(float));
    if ((s = cdf_layernorm_forward(ex, &m->norm_out, w.nrm, batch, w.nrm))) goto done;
    s = cdf_linear_forward(ex, &m->proj_to_clip_embeddings, w.nrm, batch, out);
done:
    work_free(&w);
    return s;
}

void cdf_prior_post_process(const cdf_prior *m, float *x, int batch) {
    int d = m->cfg.clip_embed_dim;
    const cdf_st_tensor *ts = m->clip_std.t, *tm = m->clip_mean.t;
    size_t es = cdf_dtype_size(ts->dtype), em = cdf_dtype_size(tm->dtype);
    for (int j = 0; j < d; j++) {
        float sd, mn;
        cdf_convert_to_f32(ts->dtype, ts->data + (size_t)j * es, &sd, 1);
        cdf_convert_to_f32(tm->dtype, tm->data + (size_t)j * em, &mn, 1);
        for (int b = 0; b < batch; b++) {
            float *v = x + (size_t)b * d + j;
            *v = *v * sd + mn;
        }
    }
}
