/* Stable Diffusion XL encode_prompt: prompt resolution, both tokenizers,
 * both text encoders, the CFG layout.  See sdxl_text.h. */
#include "pipelines/sdxl_text.h"

#include <limits.h>
#include <string.h>

#include "pipelines/pipeline_internal.h"
#include "pipelines/text_cache.h"
#include "tensor/exec.h"

int cdf_sdxl_text_rows(const cdf_sdxl_prompt_args *a) {
    if (!a || a->num_prompts == 0 || a->num_images_per_prompt < 1) return 0;
    size_t m = a->do_classifier_free_guidance ? 2 : 1;
    if (a->num_prompts > (size_t)INT_MAX / m / (size_t)a->num_images_per_prompt) return INT_MAX;
    return (int)(a->num_prompts * m * (size_t)a->num_images_per_prompt);
}

cdf_status cdf_sdxl_text_dims(const cdf_sdxl_text *t, int *seq, int *dim, int *proj, cdf_error *err) {
    if (!t || !t->tokenizer || !t->tokenizer_2 || !t->text_encoder || !t->text_encoder_2)
        return cdf_error_set(err, CDF_ERR_ARG, "SDXL text: %s is NULL",
                             !t                    ? "the component set"
                             : !t->tokenizer       ? "tokenizer"
                             : !t->tokenizer_2     ? "tokenizer_2"
                             : !t->text_encoder    ? "text_encoder"
                                                   : "text_encoder_2");
    int L1 = cdf_clip_tokenizer_max_length(t->tokenizer), L2 = cdf_clip_tokenizer_max_length(t->tokenizer_2);
    if (L1 != L2)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "SDXL text: tokenizer model_max_length %d differs from tokenizer_2's %d (the two "
                             "encoders' outputs are concatenated per token)",
                             L1, L2);
    if (L1 > cdf_clip_text_max_positions(t->text_encoder) || L1 > cdf_clip_text_max_positions(t->text_encoder_2))
        return cdf_error_set(err, CDF_ERR_ARG,
                             "SDXL text: tokenizer model_max_length %d is over %s's max_position_embeddings %d", L1,
                             L1 > cdf_clip_text_max_positions(t->text_encoder) ? "text_encoder" : "text_encoder_2",
                             L1 > cdf_clip_text_max_positions(t->text_encoder)
                                 ? cdf_clip_text_max_positions(t->text_encoder)
                                 : cdf_clip_text_max_positions(t->text_encoder_2));
    const cdf_clip_text_config *c2 = cdf_clip_text_get_config(t->text_encoder_2);
    if (!c2->with_projection)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "SDXL text: text_encoder_2 is not a CLIPTextModelWithProjection (no text_projection "
                             "for the pooled embeds)");
    if (seq) *seq = L1;
    if (dim) *dim = cdf_clip_text_hidden_size(t->text_encoder) + cdf_clip_text_hidden_size(t->text_encoder_2);
    if (proj) *proj = c2->projection_dim;
    return CDF_OK;
}

/* Checks one optional string list: entries non-NULL; when check_len, its
 * length must be 0, 1 or np. */
static cdf_status check_list(const char *const *list, size_t n, size_t np, int check_len, const char *name,
                             cdf_error *err) {
    if (n && !list) return cdf_error_set(err, CDF_ERR_ARG, "SDXL text: %s has %zu entries but is NULL", name, n);
    for (size_t i = 0; i < n; i++)
        if (!list[i]) return cdf_error_set(err, CDF_ERR_ARG, "SDXL text: %s %zu is NULL", name, i);
    if (check_len && n > 1 && n != np)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "`%s` has batch size %zu, but `prompt` has batch size %zu. Please make sure that passed "
                             "`%s` matches the batch size of `prompt`.",
                             name, n, np, name);
    return CDF_OK;
}

/* Python `a or b` per prompt: a list of one stands for a string (its "" falls
 * back to fb[i]); a longer list is used as is; an absent one falls back. */
static const char *pick(const char *const *list, size_t n, size_t i, const char *fb) {
    if (n == 0) return fb;
    if (n == 1) return list[0][0] ? list[0] : fb;
    return list[i];
}

/* cdf_clip_text_forward_hidden as a cdf_text_forward_fn: outs[0] the hidden states, outs[1] (encoder 2) the
 * pooled text_embeds. */
typedef struct xl_forward_args {
    cdf_exec *ex;
    const cdf_clip_text *te;
    int seq, clip_skip, pooled;
} xl_forward_args;

static cdf_status xl_forward(void *user, const int64_t *ids, int n, float *const *outs) {
    const xl_forward_args *a = user;
    return cdf_clip_text_forward_hidden(a->ex, a->te, ids, n, a->seq, a->clip_skip, outs[0],
                                        a->pooled ? outs[1] : NULL);
}

/* The cache a call encodes through (NULL: none) and its components' load identity. */
typedef struct xl_cache_ctx {
    cdf_text_cache *cache; /* NULL: no cache */
    uint64_t uid;
} xl_cache_ctx;

/* Tokenizes texts with both tokenizers, runs both encoders (through the
 * cache when there is one) and writes rows [row0, row0 + np * nipp) of out;
 * the pooled rows too.  clip_skip as in cdf_clip_text_forward_hidden. */
static cdf_status encode_half(cdf_exec *ex, const cdf_sdxl_text *t, const xl_cache_ctx *cc, const char *const *t1,
                              const char *const *t2, int np, int nipp, int clip_skip, int warn, int seq, int h1,
                              int h2, int P, int64_t *ids1, int64_t *ids2, float *e1, float *e2, float *pool,
                              float *emb_out, float *pool_out, cdf_error *err) {
    cdf_status s;
    if ((s = cdf_pipeline_tokenize(t->tokenizer, t1, np, warn, ids1, NULL, err))) return s;
    if ((s = cdf_pipeline_tokenize(t->tokenizer_2, t2, np, warn, ids2, NULL, err))) return s;
    xl_forward_args f1 = {ex, t->text_encoder, seq, clip_skip, 0}, f2 = {ex, t->text_encoder_2, seq, clip_skip, 1};
    const cdf_text_source s1 = {.uid = cc->uid, .encoder = t->text_encoder, .which = 1,
                                .precision = (int)ex->precision, .seq = seq, .forward = xl_forward, .user = &f1};
    const cdf_text_source s2 = {.uid = cc->uid, .encoder = t->text_encoder_2, .which = 2,
                                .precision = (int)ex->precision, .seq = seq, .forward = xl_forward, .user = &f2};
    const cdf_text_part p1 = {clip_skip, 0, (size_t)seq * h1, e1};                /* e1 [np, seq, h1] */
    const cdf_text_part p2[2] = {{clip_skip, 0, (size_t)seq * h2, e2},           /* e2 [np, seq, h2] */
                                 {-1, 1, (size_t)P, pool}};                        /* pool [np, P] */
    if ((s = cdf_text_cache_fill(cc->cache, &s1, t1, ids1, np, &p1, 1, err))) return s;
    if ((s = cdf_text_cache_fill(cc->cache, &s2, t2, ids2, np, p2, 2, err))) return s;
    size_t D = (size_t)h1 + (size_t)h2;
    for (int i = 0; i < np; i++)
        for (int k = 0; k < nipp; k++) {
            size_t r = (size_t)i * nipp + k;
            float *dst = emb_out + r * seq * D;
            for (int q = 0; q < seq; q++) {
                memcpy(dst + (size_t)q * D, e1 + ((size_t)i * seq + q) * h1, (size_t)h1 * sizeof(float));
                memcpy(dst + (size_t)q * D + h1, e2 + ((size_t)i * seq + q) * h2, (size_t)h2 * sizeof(float));
            }
            memcpy(pool_out + r * P, pool + (size_t)i * P, (size_t)P * sizeof(float));
        }
    return CDF_OK;
}

cdf_status cdf_sdxl_encode_prompt(cdf_exec *ex, const cdf_sdxl_text *t, const cdf_sdxl_prompt_args *a,
                                  cdf_sdxl_text_out *out, cdf_error *err) {
    return cdf_sdxl_encode_prompt_cached(ex, t, a, NULL, 0, out, err);
}

cdf_status cdf_sdxl_encode_prompt_cached(cdf_exec *ex, const cdf_sdxl_text *t, const cdf_sdxl_prompt_args *a,
                                         cdf_text_cache *cache, uint64_t uid, cdf_sdxl_text_out *out, cdf_error *err) {
    const xl_cache_ctx cc = {cache, uid};
    int seq = 0, D = 0, P = 0;
    cdf_status s = cdf_sdxl_text_dims(t, &seq, &D, &P, err);
    if (s) return s;
    if (!ex || !a || !out) return cdf_error_set(err, CDF_ERR_ARG, "SDXL text: NULL exec, arguments or output");
    if (!a->prompts || a->num_prompts == 0)
        return cdf_error_set(err, CDF_ERR_ARG, "SDXL text: the prompt list is empty (give at least one prompt)");
    size_t np = a->num_prompts;
    for (size_t i = 0; i < np; i++)
        if (!a->prompts[i]) return cdf_error_set(err, CDF_ERR_ARG, "SDXL text: prompt %zu is NULL", i);
    if (a->num_images_per_prompt < 1)
        return cdf_error_set(err, CDF_ERR_ARG, "SDXL text: num_images_per_prompt must be at least 1 (got %d)",
                             a->num_images_per_prompt);
    if (np > (size_t)CDF_PIPE_MAX_BATCH / (size_t)a->num_images_per_prompt)
        return cdf_error_set(err, CDF_ERR_LIMIT, "SDXL text: %zu prompts x %d images per prompt is over the limit of %d "
                             "images", np, a->num_images_per_prompt, CDF_PIPE_MAX_BATCH);
    int cfg = a->do_classifier_free_guidance != 0;
    /* diffusers: zero_out_negative_prompt = negative_prompt is None and force_zeros_for_empty_prompt */
    int zeroed = cfg && a->num_negative_prompts == 0 && a->force_zeros_for_empty_prompt;
    int encode_neg = cfg && !zeroed;
    if ((s = check_list(a->prompts_2, a->num_prompts_2, np, 1, "prompt_2", err))) return s;
    if ((s = check_list(a->negative_prompts, a->num_negative_prompts, np, encode_neg, "negative_prompt", err))) return s;
    if ((s = check_list(a->negative_prompts_2, a->num_negative_prompts_2, np, encode_neg, "negative_prompt_2", err)))
        return s;
    int L1 = cdf_clip_text_get_config(t->text_encoder)->num_hidden_layers;
    int L2 = cdf_clip_text_get_config(t->text_encoder_2)->num_hidden_layers;
    int Lmin = L1 < L2 ? L1 : L2;
    if (a->clip_skip < 0 || a->clip_skip > Lmin - 1)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "SDXL text: clip_skip %d is outside [0, %d] (hidden_states[-(clip_skip + 2)] of "
                             "text_encoder with %d layers and text_encoder_2 with %d)",
                             a->clip_skip, Lmin > 0 ? Lmin - 1 : 0, L1, L2);
    if (!out->prompt_embeds || !out->pooled)
        return cdf_error_set(err, CDF_ERR_ARG, "SDXL text: NULL %s output", !out->prompt_embeds ? "prompt_embeds"
                                                                                                : "pooled");
    out->negative_zeroed = zeroed;

    int n = (int)np, nipp = a->num_images_per_prompt;
    int h1 = cdf_clip_text_hidden_size(t->text_encoder), h2 = cdf_clip_text_hidden_size(t->text_encoder_2);
    size_t B = np * (size_t)nipp, row = (size_t)seq * D;
    const char **t1 = cdf_calloc(np, sizeof *t1), **t2 = cdf_calloc(np, sizeof *t2);
    int64_t *ids1 = cdf_mallocn(np * seq, sizeof *ids1), *ids2 = cdf_mallocn(np * seq, sizeof *ids2);
    float *e1 = cdf_mallocn(np * seq * h1, sizeof *e1), *e2 = cdf_mallocn(np * seq * h2, sizeof *e2);
    float *pool = cdf_mallocn(np * P, sizeof *pool);
    if (!t1 || !t2 || !ids1 || !ids2 || !e1 || !e2 || !pool) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "SDXL text: out of memory encoding %zu prompts", np);
        goto done;
    }
    /* positive: prompt_2 = prompt_2 or prompt */
    for (size_t i = 0; i < np; i++) {
        t1[i] = a->prompts[i];
        t2[i] = pick(a->prompts_2, a->num_prompts_2, i, a->prompts[i]);
    }
    float *pos_emb = out->prompt_embeds + (cfg ? B * row : 0), *pos_pool = out->pooled + (cfg ? B * P : 0);
    if ((s = encode_half(ex, t, &cc, t1, t2, n, nipp, a->clip_skip, 1, seq, h1, h2, P, ids1, ids2, e1, e2, pool,
                         pos_emb, pos_pool, err)))
        goto done;
    if (out->ids) memcpy(out->ids, ids1, np * seq * sizeof *ids1);
    if (out->ids_2) memcpy(out->ids_2, ids2, np * seq * sizeof *ids2);
    if (zeroed) {
        memset(out->prompt_embeds, 0, B * row * sizeof(float));
        memset(out->pooled, 0, B * P * sizeof(float));
    } else if (encode_neg) {
        /* negative_prompt = negative_prompt or ""; negative_prompt_2 = negative_prompt_2 or negative_prompt */
        for (size_t i = 0; i < np; i++) {
            t1[i] = pick(a->negative_prompts, a->num_negative_prompts, i, "");
            t2[i] = pick(a->negative_prompts_2, a->num_negative_prompts_2, i, t1[i]);
        }
        /* no truncation warning and hidden_states[-2] whatever clip_skip, as diffusers */
        if ((s = encode_half(ex, t, &cc, t1, t2, n, nipp, 0, 0, seq, h1, h2, P, ids1, ids2, e1, e2, pool,
                             out->prompt_embeds, out->pooled, err)))
            goto done;
        if (out->neg_ids) memcpy(out->neg_ids, ids1, np * seq * sizeof *ids1);
        if (out->neg_ids_2) memcpy(out->neg_ids_2, ids2, np * seq * sizeof *ids2);
    }
done:
    cdf_free(t1);
    cdf_free(t2);
    cdf_free(ids1);
    cdf_free(ids2);
    cdf_free(e1);
    cdf_free(e2);
    cdf_free(pool);
    return s;
}
