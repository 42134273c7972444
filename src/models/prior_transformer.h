/* diffusers' PriorTransformer (UnCLIP / Karlo prior, prior/: config.json +
 * diffusion_pytorch_model.safetensors): the image-embedding denoiser.  One
 * sequence per row: [encoder_hidden_states_proj(text hidden) x seq,
 * embedding_proj(text embeds), time embedding, proj_in(latents), prd token]
 * plus positional_embedding, BasicTransformerBlocks (LayerNorm,
 * self-attention with biases and an additive text + causal mask, LayerNorm,
 * GELU feed-forward), norm_out, proj_to_clip_embeddings of the last token.
 * float32 compute; F16/BF16 weights stay in their dtype. */
#ifndef CDF_MODELS_PRIOR_TRANSFORMER_H
#define CDF_MODELS_PRIOR_TRANSFORMER_H

#include <cjson/cJSON.h>

#include "models/nn.h"

typedef struct cdf_prior_config {
    int num_attention_heads;   /* 32 */
    int attention_head_dim;    /* 64 */
    int num_layers;            /* 20 */
    int embedding_dim;         /* 768: latents and text hidden width */
    int num_embeddings;        /* 77: text tokens */
    int additional_embeddings; /* 4: must be 3 + prd (proj, time, latents[, prd]) */
    cdf_act time_embed_act;    /* time_embed_act_fn "silu" */
    int norm_in;               /* norm_in_type "layer" (1) or null (0, default) */
    int embedding_proj_norm;   /* embedding_proj_norm_type "layer" (1) or null (0, default) */
    int encoder_hid_proj;      /* encoder_hid_proj_type "linear" (1, default) or null (0) */
    int prd;                   /* added_emb_type "prd" (1, default) or null (0) */
    int time_embed_dim;        /* null -> inner */
    int embedding_proj_dim;    /* null -> embedding_dim */
    int clip_embed_dim;        /* null -> embedding_dim: output width */
    int inner;                 /* derived: num_attention_heads * attention_head_dim */
} cdf_prior_config;

/* Parses a PriorTransformer config.json (diffusers defaults for absent keys)
 * from root read from file `path`.  Unknown keys: a notice.  Bad values:
 * CDF_ERR_CONFIG; values diffusers accepts but cannot run (additional_
 * embeddings other than 3 + prd): CDF_ERR_UNSUPPORTED; both name the field. */
cdf_status cdf_prior_config_parse(const cJSON *root, const char *path, cdf_prior_config *cfg, cdf_error *err);

typedef struct cdf_prior cdf_prior;

/* Loads <dir>/config.json and the weights (cdf_weights_open_dir rules,
 * variant or NULL) strictly by checkpoint name: every tensor present with its
 * exact shape, none left over.  Caller owns *out (cdf_prior_free); *out is
 * NULL on failure. */
cdf_status cdf_prior_load(const char *dir, const char *variant, cdf_prior **out, cdf_error *err);
/* Frees m and unmaps its weights (NULL is fine). */
void cdf_prior_free(cdf_prior *m);
/* The parsed config, owned by m. */
const cdf_prior_config *cdf_prior_get_config(const cdf_prior *m);
/* Width of the latents (embedding_dim). */
int cdf_prior_embedding_dim(const cdf_prior *m);
/* Width of the output and of clip_mean / clip_std (clip_embed_dim). */
int cdf_prior_clip_embed_dim(const cdf_prior *m);
/* Text tokens forward expects (num_embeddings). */
int cdf_prior_num_embeddings(const cdf_prior *m);
/* The mapped weights (owned by m). */
const cdf_weights *cdf_prior_weights(const cdf_prior *m);

/* predicted_image_embedding.  latents [batch, embedding_dim]; t the
 * timestep (taken as float32, as the long timestep's .float()); proj_emb
 * [batch, embedding_proj_dim] (the CLIP text_embeds); enc_hidden [batch,
 * seq, embedding_dim] (last_hidden_state; width inner when
 * encoder_hid_proj_type is null); text_mask [batch, seq] 0/1 (additive mask
 * (1 - mask) * -10000 on the text keys plus -10000 above the diagonal) or
 * NULL for no mask at all (diffusers' attention_mask None: not even the
 * causal one); out [batch, clip_embed_dim].  All borrowed / caller-owned.
 * seq must equal num_embeddings.  Row b alone gives identical bits; no
 * dependence on ex->threads.  Errors: CDF_ERR_ARG (shapes, NULL), CDF_ERR_NOMEM,
 * CDF_ERR_INTERRUPTED. */
cdf_status cdf_prior_forward(cdf_exec *ex, const cdf_prior *m, const float *latents, int batch, double t,
                             const float *proj_emb, const float *enc_hidden, int seq, const int64_t *text_mask,
                             float *out);

/* post_process_latents in place: x [batch, clip_embed_dim] -> x * clip_std +
 * clip_mean (float32 multiply, then add). */
void cdf_prior_post_process(const cdf_prior *m, float *x, int batch);

/* Reports every tensor of a model with config cfg (name and shape, in
 * diffusers' state_dict order) to fn without weights (make-synthetic). */
cdf_status cdf_prior_describe(const cdf_prior_config *cfg, cdf_param_record_fn fn, void *user, cdf_error *err);

#endif
