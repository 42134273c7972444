/* The text side of Stable Diffusion XL: diffusers 0.32.2
 * StableDiffusionXLPipeline.encode_prompt for a batch of prompts, with two
 * tokenizers and two text encoders (internal; the SDXL pipeline calls it).
 *
 *   prompt_embeds = cat(text_encoder(ids).hidden_states[-(clip_skip + 2)],
 *                       text_encoder_2(ids_2).hidden_states[-(clip_skip + 2)], dim=-1)
 *   pooled        = text_encoder_2(ids_2).text_embeds
 *
 * (penultimate layer by default, no final LayerNorm; pooled = text_projection
 * of the final-LayerNormed last layer at the eos position).  The negative
 * prompts always use hidden_states[-2] (diffusers ignores clip_skip there).
 *
 * Prompt resolution, as diffusers (Python `or`, a one-element list standing
 * for a Python string):
 *   prompt_2          absent, or one "" -> prompt; one string -> every prompt;
 *                     else one per prompt (a "" in a longer list is kept);
 *   negative_prompt   absent = None: under CFG with force_zeros_for_empty_prompt
 *                     the negative half is exact zeros (no encoder pass, even
 *                     when negative_prompt_2 is given); otherwise "" per prompt;
 *                     an explicit "" is encoded; one string -> every prompt;
 *   negative_prompt_2 absent, or one "" -> negative_prompt; one string ->
 *                     every prompt.
 * Without CFG the negatives are ignored (not even checked, as in diffusers).
 * Extension over diffusers: a one-element prompt_2 list is broadcast to every
 * prompt (diffusers fails there with a tensor size mismatch). */
#ifndef CDF_PIPELINES_SDXL_TEXT_H
#define CDF_PIPELINES_SDXL_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "cdiffusers/pipeline.h"
#include "models/clip_text.h"
#include "text/clip_tokenizer.h"

/* The four text components of an SDXL pipeline (all borrowed, read-only). */
typedef struct cdf_sdxl_text {
    const cdf_clip_tokenizer *tokenizer;   /* tokenizer/: pads with <|endoftext|> */
    const cdf_clip_tokenizer *tokenizer_2; /* tokenizer_2/: pads with "!" (id 0) */
    const cdf_clip_text *text_encoder;     /* CLIPTextModel, hidden h1 */
    const cdf_clip_text *text_encoder_2;   /* CLIPTextModelWithProjection, hidden h2, projection_dim P */
} cdf_sdxl_text;

/* One encode_prompt call.  A list of count 0 is absent (NULL allowed). */
typedef struct cdf_sdxl_prompt_args {
    const char *const *prompts;            /* [num_prompts], num_prompts >= 1 */
    size_t num_prompts;
    const char *const *prompts_2;          /* [num_prompts_2]: 0, 1 or num_prompts */
    size_t num_prompts_2;
    const char *const *negative_prompts;   /* [num_negative_prompts]: 0, 1 or num_prompts */
    size_t num_negative_prompts;
    const char *const *negative_prompts_2; /* [num_negative_prompts_2]: 0, 1 or num_prompts */
    size_t num_negative_prompts_2;
    int num_images_per_prompt;             /* >= 1 */
    int do_classifier_free_guidance;       /* guidance_scale > 1 */
    int force_zeros_for_empty_prompt;      /* model_index.json */
    int clip_skip;                         /* 0 = None (hidden_states[-2]); k -> hidden_states[-(k + 2)] */
} cdf_sdxl_prompt_args;

/* What encode_prompt gives.  rows = num_prompts x num_images_per_prompt
 * (B), or 2B under CFG: rows [negative; positive], each prompt's row
 * repeated num_images_per_prompt times consecutively.  seq is the
 * tokenizers' model_max_length (77). */
typedef struct cdf_sdxl_text_out {
    float *prompt_embeds;   /* [rows, seq, h1 + h2], caller-owned, required */
    float *pooled;          /* [rows, P], caller-owned, required */
    int64_t *ids;           /* NULL or [num_prompts, seq]: tokenizer ids of the prompts */
    int64_t *ids_2;         /* NULL or [num_prompts, seq]: tokenizer_2 ids of the resolved prompt_2 */
    int64_t *neg_ids;       /* NULL or [num_prompts, seq]: written only when the negatives are encoded */
    int64_t *neg_ids_2;     /* NULL or [num_prompts, seq]: likewise, tokenizer_2 */
    int negative_zeroed;    /* set by the call: 1 when the negative half is zeros (no encoder pass) */
} cdf_sdxl_text_out;

/* Rows of prompt_embeds / pooled for a: B or 2B (0 when a is NULL or has no
 * prompts or num_images_per_prompt < 1; saturates at INT_MAX). */
int cdf_sdxl_text_rows(const cdf_sdxl_prompt_args *a);

/* Sizes of one output row (t borrowed): *seq (tokens), *dim = h1 + h2,
 * *proj = P; any pointer may be NULL.  Errors (CDF_ERR_ARG, naming the
 * component): a NULL component, tokenizers of different model_max_length, a
 * sequence longer than an encoder's positions, text_encoder_2 without
 * text_projection. */
cdf_status cdf_sdxl_text_dims(const cdf_sdxl_text *t, int *seq, int *dim, int *proj, cdf_error *err);

/* encode_prompt (see above) into out's caller-owned buffers; t and a
 * borrowed.  ex->err should be err (encoder errors are reported there).
 * Errors: CDF_ERR_ARG for those of cdf_sdxl_text_dims, no prompts, a NULL
 * prompt string, num_images_per_prompt < 1, clip_skip outside [0, L-1] of
 * either encoder, prompt_2 / negative_prompt / negative_prompt_2 lists whose
 * length is neither 1 nor num_prompts (the message gives both lengths, as
 * diffusers' ValueError does), NULL output buffers; CDF_ERR_LIMIT over
 * CDF_PIPE_MAX_BATCH images; the tokenizers' and encoders' errors. */
cdf_status cdf_sdxl_encode_prompt(cdf_exec *ex, const cdf_sdxl_text *t, const cdf_sdxl_prompt_args *a,
                                  cdf_sdxl_text_out *out, cdf_error *err);
/* The same through a text cache (borrowed; NULL: exactly the call above):
 * text_encoder's and text_encoder_2's hidden states per clip_skip and
 * text_encoder_2's pooled embeds (one entry whatever clip_skip) of each
 * resolved prompt text, keyed with uid, the components' load (cdf_text_uid).
 * The zeroed negative half looks nothing up.  Same bytes as without it. */
cdf_status cdf_sdxl_encode_prompt_cached(cdf_exec *ex, const cdf_sdxl_text *t, const cdf_sdxl_prompt_args *a,
                                         cdf_text_cache *cache, uint64_t uid, cdf_sdxl_text_out *out, cdf_error *err);

#endif
