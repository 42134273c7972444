/* transformers' CLIPTextModel as Stable Diffusion uses it (text_encoder/:
 * config.json + model.safetensors): token + position embeddings, pre-LN
 * transformer layers with causal self-attention, final LayerNorm.  float32
 * compute; F16/BF16 weights stay in their dtype and are converted in kernels. */
#ifndef CDF_MODELS_CLIP_TEXT_H
#define CDF_MODELS_CLIP_TEXT_H

#include <cjson/cJSON.h>

#include "models/nn.h"
#include "tensor/ops_nlp.h"

typedef struct cdf_clip_text_config {
    int vocab_size;              /* 49408 */
    int hidden_size;             /* 512 */
    int intermediate_size;       /* 2048 */
    int num_hidden_layers;       /* 12 */
    int num_attention_heads;     /* 8; divides hidden_size */
    int max_position_embeddings; /* 77 */
    int projection_dim;          /* 512; only the shape of text_projection.weight */
    cdf_ffn_act hidden_act;      /* "quick_gelu" */
    double layer_norm_eps;       /* 1e-5 */
    int64_t bos_token_id, eos_token_id, pad_token_id; /* 49406, 49407, 1 (informational) */
    int with_projection;         /* architectures == ["CLIPTextModelWithProjection"] */
} cdf_clip_text_config;

/* Parses a CLIPTextConfig (transformers defaults for absent keys) from root
 * read from file `path`.  Unknown keys: a notice.  Bad values: CDF_ERR_CONFIG;
 * real transformers values this build does not implement (another
 * architecture or model_type, hidden_act "relu", use_attention_mask true):
 * CDF_ERR_UNSUPPORTED; both name the field. */
cdf_status cdf_clip_text_config_parse(const cJSON *root, const char *path, cdf_clip_text_config *cfg, cdf_error *err);

typedef struct cdf_clip_layer {
    cdf_layernorm layer_norm1;            /* [hidden] */
    cdf_linear q_proj, k_proj, v_proj;    /* hidden -> hidden, with bias */
    cdf_linear out_proj;                  /* hidden -> hidden */
    cdf_layernorm layer_norm2;            /* [hidden] */
    cdf_linear fc1;                       /* hidden -> intermediate */
    cdf_linear fc2;                       /* intermediate -> hidden */
} cdf_clip_layer;

typedef struct cdf_clip_text cdf_clip_text;

/* Loads <dir>/config.json and the weights (cdf_weights_open_dir rules,
 * variant e.g. "fp16" or NULL), strictly by checkpoint name: every tensor
 * present with its exact shape, none left over (text_model.embeddings.
 * position_ids may be absent; when present and not 0..P-1 a warning notice
 * says it is ignored, as transformers >= 4.31 ignores it).  Caller owns *out
 * (cdf_clip_text_free); *out is NULL on failure. */
cdf_status cdf_clip_text_load(const char *dir, const char *variant, cdf_clip_text **out, cdf_error *err);
/* Frees m and unmaps its weights (NULL is fine). */
void cdf_clip_text_free(cdf_clip_text *m);
/* hidden_size of the model (borrowed m). */
int cdf_clip_text_hidden_size(const cdf_clip_text *m);
/* max_position_embeddings: the longest sequence forward accepts. */
int cdf_clip_text_max_positions(const cdf_clip_text *m);
/* The mapped weights (owned by m). */
const cdf_weights *cdf_clip_text_weights(const cdf_clip_text *m);
/* The parsed config, owned by m. */
const cdf_clip_text_config *cdf_clip_text_get_config(const cdf_clip_text *m);

/* last_hidden_state after final_layer_norm (clip_skip 0), or with clip_skip
 * k in 1..num_hidden_layers: hidden_states[-(k+1)] (the output of layer
 * L-k; k = L is the embeddings) passed through final_layer_norm, as
 * diffusers' encode_prompt does.  ids: [batch, seq] (1 <= seq <=
 * max_position_embeddings); out: [batch, seq, hidden], caller-owned.  No
 * attention mask, causal mask only.  Each batch row is computed on its own
 * (row k alone gives identical bits) and results do not depend on
 * ex->threads.  Errors: CDF_ERR_ARG (bad shape, clip_skip, or a token id
 * outside the vocabulary, naming it), CDF_ERR_NOMEM. */
cdf_status cdf_clip_text_forward(cdf_exec *ex, const cdf_clip_text *m, const int64_t *ids, int batch, int seq,
                                 int clip_skip, float *out);

/* CLIPTextModelWithProjection: last_hidden_state (as cdf_clip_text_forward
 * with clip_skip 0) into hidden [batch, seq, hidden_size] and text_embeds =
 * text_projection(pooled) (no bias) into text_embeds [batch, projection_dim];
 * both caller-owned.  The pooled row of sequence b is taken as transformers
 * does: eos_token_id == 2 (legacy configs such as Karlo's) -> the first
 * position of the largest id (argmax of ids[b]); otherwise the first position
 * whose id == eos_token_id (position 0 when there is none).  Row b alone
 * gives identical bits; no dependence on ex->threads.  Errors: those of
 * cdf_clip_text_forward, CDF_ERR_ARG when the model has no text_projection
 * (config architectures is not CLIPTextModelWithProjection). */
cdf_status cdf_clip_text_forward_proj(cdf_exec *ex, const cdf_clip_text *m, const int64_t *ids, int batch, int seq,
                                      float *hidden, float *text_embeds);

/* What Stable Diffusion XL's encode_prompt takes, from one forward pass:
 * hidden [batch, seq, hidden_size] = hidden_states[-(clip_skip + 2)] (the
 * output of encoder layer L - 2 - clip_skip, numbered from 0; the embeddings
 * for clip_skip = L - 1), WITHOUT final_layer_norm; clip_skip in 0..L-1, 0 =
 * diffusers' None (hidden_states[-2]).  text_embeds: NULL, or [batch,
 * projection_dim] = text_projection(final_layer_norm(last layer)) at the
 * pooled position (as cdf_clip_text_forward_proj: identical bits), which
 * runs every layer.  Both caller-owned.  Row b alone gives identical bits;
 * no dependence on ex->threads.  Errors: those of cdf_clip_text_forward
 * (clip_skip range [0, L-1] here), CDF_ERR_ARG when text_embeds is asked of
 * a model without text_projection. */
cdf_status cdf_clip_text_forward_hidden(cdf_exec *ex, const cdf_clip_text *m, const int64_t *ids, int batch, int seq,
                                        int clip_skip, float *hidden, float *text_embeds);

/* Reports every tensor of a model with config cfg (name and shape, in
 * checkpoint order: embeddings, layers, final_layer_norm[, text_projection])
 * to fn without weights, for writing synthetic checkpoints. */
cdf_status cdf_clip_text_describe(const cdf_clip_text_config *cfg, cdf_param_record_fn fn, void *user,
                                  cdf_error *err);

#endif
