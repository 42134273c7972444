/* diffusers' UnCLIPTextProjModel (UnCLIP / Karlo text_proj/: config.json +
 * diffusion_pytorch_model.safetensors): turns the prior's image embeddings
 * and the CLIP text outputs into the decoder's conditioning — additive time
 * embeddings (its class_labels) and the cross-attention context (extra
 * context tokens from the image embedding, then the LayerNormed projected
 * text hidden states). */
#ifndef CDF_MODELS_TEXT_PROJ_H
#define CDF_MODELS_TEXT_PROJ_H

#include <cjson/cJSON.h>

#include "models/nn.h"

typedef struct cdf_text_proj_config {
    int clip_extra_context_tokens; /* 4 */
    int clip_embeddings_dim;       /* 768: image / text embedding and text hidden width */
    int time_embed_dim;            /* required (Karlo 1280) */
    int cross_attention_dim;       /* required (Karlo 1536) */
} cdf_text_proj_config;

/* Parses an UnCLIPTextProjModel config.json (diffusers defaults for absent
 * optional keys; time_embed_dim and cross_attention_dim are required, as in
 * diffusers) from root read from file `path`.  Unknown keys: a notice.  Bad
 * or missing values: CDF_ERR_CONFIG naming the field. */
cdf_status cdf_text_proj_config_parse(const cJSON *root, const char *path, cdf_text_proj_config *cfg,
                                      cdf_error *err);

typedef struct cdf_text_proj cdf_text_proj;

/* Loads <dir>/config.json and the weights strictly by checkpoint name (every
 * tensor present with its exact shape, none left over).  Caller owns *out
 * (cdf_text_proj_free); *out is NULL on failure. */
cdf_status cdf_text_proj_load(const char *dir, const char *variant, cdf_text_proj **out, cdf_error *err);
/* Frees m and unmaps its weights (NULL is fine). */
void cdf_text_proj_free(cdf_text_proj *m);
/* The parsed config, owned by m. */
const cdf_text_proj_config *cdf_text_proj_get_config(const cdf_text_proj *m);
/* The mapped weights (owned by m). */
const cdf_weights *cdf_text_proj_weights(const cdf_text_proj *m);

/* UnCLIPTextProjModel.forward.  image_emb [batch, clip_embeddings_dim];
 * with cfg non-zero the rows are [learned_classifier_free_guidance_embeddings
 * x batch; image_emb] (uncond first), so rows = 2*batch, else rows = batch.
 * prompt_embeds [rows, clip_embeddings_dim]; text_hidden [rows, seq,
 * clip_embeddings_dim].  Outputs (caller-owned): out_hidden [rows,
 * clip_extra_context_tokens + seq, cross_attention_dim] = [extra tokens
 * (clip_extra_context_tokens_proj(img) viewed (rows, cross, extra) and
 * permuted: token j takes elements j, j+extra, ...), LayerNorm(
 * encoder_hidden_states_proj(text_hidden))]; out_time [rows, time_embed_dim]
 * = clip_image_embeddings_project_to_time_embeddings(img) +
 * embedding_proj(prompt_embeds).  Each row is computed on its own (the same
 * bits alone or in a batch); no dependence on ex->threads.  Errors:
 * CDF_ERR_ARG (shapes, NULL), CDF_ERR_NOMEM. */
cdf_status cdf_text_proj_forward(cdf_exec *ex, const cdf_text_proj *m, const float *image_emb, int batch, int cfg,
                                 const float *prompt_embeds, const float *text_hidden, int seq, float *out_hidden,
                                 float *out_time);

/* Reports every tensor of a model with config cfg (name and shape, in
 * diffusers' state_dict order) to fn without weights (make-synthetic). */
cdf_status cdf_text_proj_describe(const cdf_text_proj_config *cfg, cdf_param_record_fn fn, void *user,
                                  cdf_error *err);

#endif
