#include "models/clip_text.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "io/json.h"
#include "models/component.h"
#include "models/blocks2d.h"
#include "tensor/half.h"

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

struct cdf_clip_text {
    cdf_clip_text_config cfg;
    cdf_weights *weights;        /* owned; NULL in describe mode */
    cdf_param token_embedding;   /* [vocab_size, hidden] */
    cdf_param position_embedding; /* [max_position_embeddings, hidden] */
    cdf_clip_layer *layers;      /* [num_hidden_layers] */
    cdf_layernorm final_layer_norm; /* [hidden] */
    cdf_param text_projection;   /* [projection_dim, hidden], CLIPTextModelWithProjection only */
};

#define TM "text_model"

/* Element i of an integer or float tensor as a double (for the position_ids check). */
static double elem_as_double(const cdf_st_tensor *t, size_t i) {
    const unsigned char *p = t->data + i * cdf_dtype_size(t->dtype);
    switch (t->dtype) {
    case CDF_I64: {
        int64_t v;
        memcpy(&v, p, sizeof v);
        return (double)v;
    }
    case CDF_I32: {
        int32_t v;
        memcpy(&v, p, sizeof v);
        return (double)v;
    }
    case CDF_U8: return (double)*p;
    default: {
        float v;
        cdf_convert_to_f32(t->dtype, p, &v, 1);
        return (double)v;
    }
    }
}

/* text_model.embeddings.position_ids: a buffer transformers < 4.31 saved and
 * later versions ignore on load (always arange).  Absent is fine; present, it
 * is marked used and anything but [1, P] / [P] holding 0..P-1 gets a warning. */
static void check_position_ids(cdf_loader *ld, int npos) {
    const cdf_st_tensor *t = cdf_weights_get(ld->w, TM ".embeddings.position_ids");
    if (!t) return;
    int shape_ok = (t->ndim == 2 && t->shape[0] == 1 && t->shape[1] == npos) || (t->ndim == 1 && t->shape[0] == npos);
    if (!shape_ok) {
        cdf_notice(ld->err, CDF_NOTICE_WARN,
                   "%s: tensor '%s' does not have shape [1, %d]; ignored (positions 0..%d are used, as in "
                   "transformers)",
                   cdf_weights_file_of(ld->w, t), t->name, npos, npos - 1);
        return;
    }
    for (int i = 0; i < npos; i++) {
        double v = elem_as_double(t, (size_t)i);
        if (v != (double)i) {
            cdf_notice(ld->err, CDF_NOTICE_WARN,
                       "%s: tensor '%s' holds %g at position %d (expected %d); ignored (positions 0..%d are used, as "
                       "in transformers)",
                       cdf_weights_file_of(ld->w, t), t->name, v, i, i, npos - 1);
            return;
        }
    }
}

static cdf_status load_model(cdf_loader *ld, cdf_clip_text *m) {
    const cdf_clip_text_config *c = &m->cfg;
    int hid = c->hidden_size, inter = c->intermediate_size;
    int64_t tok[2] = {c->vocab_size, hid}, pos[2] = {c->max_position_embeddings, hid};
    TRY(cdf_load_param(ld, TM ".embeddings", "token_embedding.weight", 2, tok, 0, &m->token_embedding));
    TRY(cdf_load_param(ld, TM ".embeddings", "position_embedding.weight", 2, pos, 0, &m->position_embedding));
    if (!ld->record) check_position_ids(ld, c->max_position_embeddings);
    if (c->num_hidden_layers > 0) {
        m->layers = cdf_calloc((size_t)c->num_hidden_layers, sizeof *m->layers);
        if (!m->layers) return cdf_error_set(ld->err, CDF_ERR_NOMEM, "out of memory loading %s", ld->what);
    }
    for (int l = 0; l < c->num_hidden_layers; l++) {
        cdf_clip_layer *L = &m->layers[l];
        char p[128], q[192];
        snprintf(p, sizeof p, TM ".encoder.layers.%d", l);
#define SUB(name) (snprintf(q, sizeof q, "%s.%s", p, name), q)
        /* transformers' state_dict order: self_attn (k, v, q, out), layer_norm1, mlp, layer_norm2 */
        TRY(cdf_linear_load(ld, SUB("self_attn.k_proj"), hid, hid, 1, &L->k_proj));
        TRY(cdf_linear_load(ld, SUB("self_attn.v_proj"), hid, hid, 1, &L->v_proj));
        TRY(cdf_linear_load(ld, SUB("self_attn.q_proj"), hid, hid, 1, &L->q_proj));
        TRY(cdf_linear_load(ld, SUB("self_attn.out_proj"), hid, hid, 1, &L->out_proj));
        TRY(cdf_layernorm_load(ld, SUB("layer_norm1"), hid, c->layer_norm_eps, 1, &L->layer_norm1));
        TRY(cdf_linear_load(ld, SUB("mlp.fc1"), hid, inter, 1, &L->fc1));
        TRY(cdf_linear_load(ld, SUB("mlp.fc2"), inter, hid, 1, &L->fc2));
        TRY(cdf_layernorm_load(ld, SUB("layer_norm2"), hid, c->layer_norm_eps, 1, &L->layer_norm2));
#undef SUB
    }
    TRY(cdf_layernorm_load(ld, TM ".final_layer_norm", hid, c->layer_norm_eps, 1, &m->final_layer_norm));
    if (c->with_projection) {
        int64_t s[2] = {c->projection_dim, hid};
        TRY(cdf_load_param(ld, "text_projection", "weight", 2, s, 0, &m->text_projection));
    }
    return ld->record ? CDF_OK : cdf_weights_check_all_used(ld->w, ld->err);
}

void cdf_clip_text_free(cdf_clip_text *m) {
    if (!m) return;
    cdf_free(m->layers);
    cdf_weights_close(m->weights);
    cdf_free(m);
}

static cdf_status parse_cfg(const cJSON *root, const char *path, void *cfg, cdf_error *err) {
    return cdf_clip_text_config_parse(root, path, (cdf_clip_text_config *)cfg, err);
}
static cdf_status walk_model(cdf_loader *ld, void *m) { return load_model(ld, (cdf_clip_text *)m); }
static void free_model(void *m) { cdf_clip_text_free((cdf_clip_text *)m); }

static const cdf_component_class k_clip_text_class = {"CLIPTextModel", "text_encoder",
    sizeof(cdf_clip_text), offsetof(cdf_clip_text, cfg), sizeof(cdf_clip_text_config),
    offsetof(cdf_clip_text, weights), 0, parse_cfg, walk_model, free_model};

cdf_status cdf_clip_text_load(const char *dir, const char *variant, cdf_clip_text **out, cdf_error *err) {
    void *m = NULL;
    cdf_status s = cdf_component_load(&k_clip_text_class, dir, variant, &m, err);
    *out = m;
    return s;
}

cdf_status cdf_clip_text_describe(const cdf_clip_text_config *cfg, cdf_param_record_fn fn, void *user,
                                  cdf_error *err) {
    return cdf_component_describe(&k_clip_text_class, cfg, fn, user, err);
}

int cdf_clip_text_hidden_size(const cdf_clip_text *m) { return m->cfg.hidden_size; }
int cdf_clip_text_max_positions(const cdf_clip_text *m) { return m->cfg.max_position_embeddings; }
const cdf_clip_text_config *cdf_clip_text_get_config(const cdf_clip_text *m) { return &m->cfg; }

static cdf_status nomem(cdf_exec *ex) { return ex->err && ex->err->status ? ex->err->status : CDF_ERR_NOMEM; }

/* Work buffers of one forward pass. */
typedef struct clip_work {
    float *a;      /* [batch, seq, hidden] normalised input of a sub-block */
    float *q, *k, *v; /* [batch, seq, hidden] */
    float *o;      /* [batch, seq, hidden] attention output, then projection output */
    float *f;      /* [batch, seq, intermediate] MLP hidden */
    float *sc;     /* [seq, seq] one head's scores */
} clip_work;

static void work_free(clip_work *w) {
    cdf_aligned_free(w->a);
    cdf_aligned_free(w->q);
    cdf_aligned_free(w->k);
    cdf_aligned_free(w->v);
    cdf_aligned_free(w->o);
    cdf_aligned_free(w->f);
    cdf_aligned_free(w->sc);
}

/* One CLIPEncoderLayer in place on h: [batch, seq, hidden]. */
static cdf_status layer_forward(cdf_exec *ex, const cdf_clip_text *m, const cdf_clip_layer *L, float *h, int batch,
                                int seq, clip_work *w) {
    const cdf_clip_text_config *c = &m->cfg;
    int hid = c->hidden_size, heads = c->num_attention_heads, hd = hid / heads;
    size_t n = (size_t)batch * seq * hid;
    /* CLIPAttention scales the q projection (a float32 multiply) before q k^T */
    float scale = (float)pow((double)hd, -0.5);
    TRY(cdf_layernorm_forward(ex, &L->layer_norm1, h, (int64_t)batch * seq, w->a));
    TRY(cdf_linear_forward(ex, &L->q_proj, w->a, batch * seq, w->q));
    cdf_scale_inplace(ex, w->q, n, scale);
    TRY(cdf_linear_forward(ex, &L->k_proj, w->a, batch * seq, w->k));
    TRY(cdf_linear_forward(ex, &L->v_proj, w->a, batch * seq, w->v));
    for (int b = 0; b < batch; b++) {
        size_t off = (size_t)b * seq * hid;
        TRY(cdf_causal_attention(ex, w->q + off, w->k + off, w->v + off, seq, heads, hd, w->sc, w->a + off));
    }
    TRY(cdf_linear_forward(ex, &L->out_proj, w->a, batch * seq, w->o));
    cdf_add_inplace(ex, h, w->o, n);
    TRY(cdf_layernorm_forward(ex, &L->layer_norm2, h, (int64_t)batch * seq, w->a));
    TRY(cdf_linear_forward(ex, &L->fc1, w->a, batch * seq, w->f));
    cdf_ffn_activate(ex, w->f, (size_t)batch * seq * c->intermediate_size, c->hidden_act);
    TRY(cdf_linear_forward(ex, &L->fc2, w->f, batch * seq, w->o));
    cdf_add_inplace(ex, h, w->o, n);
    return CDF_OK;
}

/* h[b, s, :] = token_embedding[ids[b, s]] + position_embedding[s]. */
static cdf_status embed(cdf_exec *ex, const cdf_clip_text *m, const int64_t *ids, int batch, int seq, float *h,
                        float *pos) {
    const cdf_clip_text_config *c = &m->cfg;
    int hid = c->hidden_size;
    for (int b = 0; b < batch; b++)
        for (int s = 0; s < seq; s++) {
            int64_t id = ids[(size_t)b * seq + s];
            if (id < 0 || id >= c->vocab_size)
                return cdf_error_set(ex->err, CDF_ERR_ARG,
                                     "text encoder: token id %lld at [%d, %d] is outside the vocabulary [0, %d)",
                                     (long long)id, b, s, c->vocab_size);
        }
    const cdf_st_tensor *tt = m->token_embedding.t, *pt = m->position_embedding.t;
    TRY(cdf_embedding_rows(ex, tt->dtype, tt->data, c->vocab_size, hid, ids, batch * seq, h));
    cdf_convert_to_f32(pt->dtype, pt->data, pos, (size_t)seq * hid); /* rows 0..seq-1 */
    for (int b = 0; b < batch; b++) cdf_add_inplace(ex, h + (size_t)b * seq * hid, pos, (size_t)seq * hid);
    return CDF_OK;
}

/* The shape checks every forward entry shares. */
static cdf_status check_forward(cdf_exec *ex, const cdf_clip_text_config *c, int batch, int seq) {
    if (batch < 0 || seq < 1 || seq > c->max_position_embeddings)
        return cdf_error_set(ex->err, CDF_ERR_ARG,
                             "text encoder: input of %d sequences of %d tokens (1..%d tokens per sequence supported)",
                             batch, seq, c->max_position_embeddings);
    return CDF_OK;
}

static cdf_status check_size(cdf_exec *ex, int batch, int seq) {
    if ((int64_t)batch * seq > (1 << 24))
        return cdf_error_set(ex->err, CDF_ERR_LIMIT, "text encoder: %d sequences of %d tokens are too many", batch, seq);
    return CDF_OK;
}

/* Embeddings, then the first num_hidden_layers - clip_skip encoder layers
 * on the residual stream h [batch, seq, hidden]; when snap != NULL, snap
 * [batch, seq, hidden] receives h after snap_at layers (hidden_states[snap_at]). */
static cdf_status run_layers(cdf_exec *ex, const cdf_clip_text *m, const int64_t *ids, int batch, int seq,
                             int clip_skip, float *h, int snap_at, float *snap) {
    const cdf_clip_text_config *c = &m->cfg;
    size_t n = (size_t)batch * seq * c->hidden_size;
    clip_work w = {0};
    cdf_status s = CDF_OK;
    if (!(w.a = cdf_buf(ex, n)) || !(w.q = cdf_buf(ex, n)) || !(w.k = cdf_buf(ex, n)) || !(w.v = cdf_buf(ex, n)) ||
        !(w.o = cdf_buf(ex, n)) || !(w.f = cdf_buf(ex, (size_t)batch * seq * c->intermediate_size)) ||
        !(w.sc = cdf_buf(ex, (size_t)seq * seq))) {
        s = nomem(ex);
        goto done;
    }
    if ((s = embed(ex, m, ids, batch, seq, h, w.a))) goto done;
    for (int l = 0; l < c->num_hidden_layers - clip_skip; l++) {
        if (snap && l == snap_at) memcpy(snap, h, n * sizeof(float));
        if (ex->interrupt && *ex->interrupt) {
            s = cdf_error_set(ex->err, CDF_ERR_INTERRUPTED, "text encoder: interrupted");
            goto done;
        }
        if ((s = layer_forward(ex, m, &m->layers[l], h, batch, seq, &w))) goto done;
    }
    if (snap && snap_at == c->num_hidden_layers - clip_skip) memcpy(snap, h, n * sizeof(float));
done:
    work_free(&w);
    return s;
}

cdf_status cdf_clip_text_forward(cdf_exec *ex, const cdf_clip_text *m, const int64_t *ids, int batch, int seq,
                                 int clip_skip, float *out) {
    const cdf_clip_text_config *c = &m->cfg;
    TRY(check_forward(ex, c, batch, seq));
    if (clip_skip < 0 || clip_skip > c->num_hidden_layers)
        return cdf_error_set(ex->err, CDF_ERR_ARG, "text encoder: clip_skip %d is outside [0, %d]", clip_skip,
                             c->num_hidden_layers);
    if (batch == 0) return CDF_OK;
    TRY(check_size(ex, batch, seq));
    if (!ids || !out) return cdf_error_set(ex->err, CDF_ERR_ARG, "text encoder: NULL token ids or output");
    /* out is the residual stream h: [batch, seq, hidden] */
    TRY(run_layers(ex, m, ids, batch, seq, clip_skip, out, -1, NULL));
    return cdf_layernorm_forward(ex, &m->final_layer_norm, out, (int64_t)batch * seq, out);
}

/* Position of the pooled (eos) token of one row of ids [seq], as transformers' CLIPTextTransformer. */
static int pooled_position(const cdf_clip_text_config *c, const int64_t *ids, int seq) {
    int pos = 0;
    if (c->eos_token_id == 2) { /* legacy: argmax of the ids (first of equal maxima) */
        for (int s = 1; s < seq; s++)
            if (ids[s] > ids[pos]) pos = s;
        return pos;
    }
    for (int s = 0; s < seq; s++)
        if (ids[s] == c->eos_token_id) return s;
    return 0; /* argmax of an all-false mask */
}

/* text_embeds[b] = text_projection(final[b, pooled position of ids[b]]) for final [batch, seq, hidden]. */
static cdf_status project_pooled(cdf_exec *ex, const cdf_clip_text *m, const int64_t *ids, int batch, int seq,
                                 const float *final, float *text_embeds) {
    const cdf_clip_text_config *c = &m->cfg;
    const cdf_st_tensor *w = m->text_projection.t; /* [projection_dim, hidden] */
    int hid = c->hidden_size;
    for (int b = 0; b < batch; b++) {
        int pos = pooled_position(c, ids + (size_t)b * seq, seq);
        TRY(cdf_linear_any(ex, final + ((size_t)b * seq + (size_t)pos) * hid, 1, hid, w->data, w->dtype, NULL,
                           c->projection_dim, text_embeds + (size_t)b * c->projection_dim));
    }
    return CDF_OK;
}

cdf_status cdf_clip_text_forward_proj(cdf_exec *ex, const cdf_clip_text *m, const int64_t *ids, int batch, int seq,
                                      float *hidden, float *text_embeds) {
    const cdf_clip_text_config *c = &m->cfg;
    if (!c->with_projection || !m->text_projection.t)
        return cdf_error_set(ex->err, CDF_ERR_ARG,
                             "text encoder: no text_projection (config architectures is not "
                             "CLIPTextModelWithProjection)");
    if (batch > 0 && !text_embeds) return cdf_error_set(ex->err, CDF_ERR_ARG, "text encoder: NULL text_embeds output");
    TRY(cdf_clip_text_forward(ex, m, ids, batch, seq, 0, hidden));
    if (batch == 0) return CDF_OK;
    return project_pooled(ex, m, ids, batch, seq, hidden, text_embeds);
}

cdf_status cdf_clip_text_forward_hidden(cdf_exec *ex, const cdf_clip_text *m, const int64_t *ids, int batch, int seq,
                                        int clip_skip, float *hidden, float *text_embeds) {
    const cdf_clip_text_config *c = &m->cfg;
    TRY(check_forward(ex, c, batch, seq));
    int L = c->num_hidden_layers;
    if (clip_skip < 0 || clip_skip > L - 1)
        return cdf_error_set(ex->err, CDF_ERR_ARG,
                             "text encoder: clip_skip %d is outside [0, %d] (hidden_states[-(clip_skip + 2)] of a "
                             "%d-layer encoder)",
                             clip_skip, L > 0 ? L - 1 : 0, L);
    if (text_embeds && (!c->with_projection || !m->text_projection.t))
        return cdf_error_set(ex->err, CDF_ERR_ARG,
                             "text encoder: text_embeds asked for, but the model has no text_projection (config "
                             "architectures is not CLIPTextModelWithProjection)");
    if (batch == 0) return CDF_OK;
    TRY(check_size(ex, batch, seq));
    if (!ids || !hidden) return cdf_error_set(ex->err, CDF_ERR_ARG, "text encoder: NULL token ids or output");
    int keep = L - 1 - clip_skip; /* hidden_states[keep]: the output of layer keep - 1 (0: the embeddings) */
    if (!text_embeds) return run_layers(ex, m, ids, batch, seq, clip_skip + 1, hidden, -1, NULL);
    size_t n = (size_t)batch * seq * c->hidden_size;
    float *h = cdf_buf(ex, n); /* [batch, seq, hidden] the residual stream through every layer */
    if (!h) return nomem(ex);
    cdf_status s = run_layers(ex, m, ids, batch, seq, 0, h, keep, hidden);
    if (!s) s = cdf_layernorm_forward(ex, &m->final_layer_norm, h, (int64_t)batch * seq, h);
    if (!s) s = project_pooled(ex, m, ids, batch, seq, h, text_embeds);
    cdf_aligned_free(h);
    return s;
}

const cdf_weights *cdf_clip_text_weights(const cdf_clip_text *m) { return m->weights; }
