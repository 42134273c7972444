/* UNet2DConditionModel (diffusers 0.32) as Stable Diffusion 1.x/2.x use it
 * (CrossAttnDownBlock2D / DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D /
 * CrossAttnUpBlock2D, Transformer2DModel with linear or 1x1-conv projections)
 * and as the UnCLIP (Karlo) decoder uses it (ResnetDownsampleBlock2D /
 * SimpleCrossAttnDownBlock2D, UNetMidBlock2DSimpleCrossAttn,
 * SimpleCrossAttnUpBlock2D / ResnetUpsampleBlock2D, class_embed_type
 * "identity", a cross-attention mask) and as Stable Diffusion XL uses it
 * (addition_embed_type "text_time": pooled text embeddings and 6 micro-
 * conditioning ids per row).  Weights are read-only views of the
 * mapped files. */
#ifndef CDF_MODELS_UNET2D_COND_H
#define CDF_MODELS_UNET2D_COND_H

#include "models/blocks2d.h"
#include "models/embeddings.h"
#include "models/simple_cross_attn.h"
#include "models/transformer2d.h"
#include "models/unet2d_cond_config.h"

typedef struct cdf_unetc_block {
    int type;                      /* cdf_unetc_block_type */
    int nres;
    cdf_resnet2d *resnets;         /* [nres] */
    cdf_transformer2d *attentions; /* [nres] (CDF_UNETC_CROSS) or NULL */
    cdf_simple_attn *sattn;        /* [nres] (CDF_UNETC_SIMPLE_CROSS) or NULL */
    cdf_resample2d sample;         /* kind 1: down stride-2 conv / up 2x (or sized) nearest + conv;
                                      kind 2: ResnetBlock2D(down=True / up=True); kind 0 absent */
    int cout;
} cdf_unetc_block;

typedef struct cdf_unet2d_cond {
    cdf_unet2d_cond_config cfg;
    cdf_weights *weights;          /* owned */
    cdf_conv2d conv_in;            /* in -> C0 */
    cdf_time_mlp time_embedding;   /* C0 -> temb -> temb */
    cdf_time_mlp add_embedding;    /* cfg.add_text_time: add_embed_in -> temb -> temb (Linear, SiLU, Linear) */
    cdf_unetc_block down[CDF_UNETC_MAX_BLOCKS];
    cdf_resnet2d mid_resnets[2];
    cdf_transformer2d mid_attn;    /* mid_type CDF_UNETC_MID_CROSS */
    cdf_simple_attn mid_sattn;     /* mid_type CDF_UNETC_MID_SIMPLE_CROSS */
    cdf_unetc_block up[CDF_UNETC_MAX_BLOCKS];
    cdf_groupnorm conv_norm_out;
    cdf_conv2d conv_out;           /* C0 -> out */
} cdf_unet2d_cond;

/* Loads a unet/ folder.  Caller frees with cdf_unet2d_cond_free. */
cdf_status cdf_unet2d_cond_load(const char *dir, const char *variant, cdf_unet2d_cond **out, cdf_error *err);
void cdf_unet2d_cond_free(cdf_unet2d_cond *m);
/* Lists the state_dict (names, shapes) of a config without weights. */
cdf_status cdf_unet2d_cond_describe(const cdf_unet2d_cond_config *cfg, cdf_param_record_fn fn, void *user,
                                    cdf_error *err);
/* out = unet(sample, t, ctx): sample [batch, in, h, w]; ctx [batch, seq,
 * cross_attention_dim]; out [batch, out, h, w]; t as float32 (diffusers feeds
 * float32 or int64 timesteps; both become float32 in the embedding).  All
 * borrowed; out is caller-allocated.  = cdf_unet2d_cond_forward_ext with
 * extra NULL (a model with class_embed_type "identity" needs the _ext form). */
cdf_status cdf_unet2d_cond_forward(cdf_exec *ex, const cdf_unet2d_cond *m, const float *sample, int batch, int h,
                                   int w, double t, const float *ctx, int seq, float *out);

/* Optional forward inputs (diffusers' class_labels and encoder_attention_mask). */
typedef struct cdf_unetc_extra {
    const float *class_labels; /* [batch, time_embedding_dim]: added to the time embedding (class_embed_type
                                  "identity"; required then, ignored without a class embedding), or NULL */
    const float *encoder_mask; /* [batch, seq]: 1 keep / 0 masked (encoder_attention_mask; the UNet turns it into
                                  the bias (1 - mask) * -10000 of the SimpleCrossAttn attentions), or NULL */
} cdf_unetc_extra;

/* cdf_unet2d_cond_forward with the extra inputs; extra may be NULL.  A mask
 * on a model with Transformer2DModel (CrossAttn) blocks is unsupported.
 * Same ownership as cdf_unet2d_cond_forward. */
cdf_status cdf_unet2d_cond_forward_ext(cdf_exec *ex, const cdf_unet2d_cond *m, const float *sample, int batch, int h,
                                       int w, double t, const float *ctx, int seq, const cdf_unetc_extra *extra,
                                       float *out);

/* cdf_unet2d_cond_forward with SDXL's added conditioning (diffusers'
 * added_cond_kwargs of addition_embed_type "text_time"): text_embeds
 * [batch, pooled] (pooled = cdf_unet2d_cond_pooled_dim) and time_ids
 * [batch, 6] (original_size, crops_coords_top_left, target_size), float32.
 * Both are required by a text_time model (CDF_ERR_ARG when NULL) and must be
 * NULL for any other model (cdf_unet2d_cond_forward passes NULLs).  Same
 * ownership as cdf_unet2d_cond_forward. */
cdf_status cdf_unet2d_cond_forward_added(cdf_exec *ex, const cdf_unet2d_cond *m, const float *sample, int batch, int h,
                                         int w, double t, const float *ctx, int seq, const float *text_embeds,
                                         const float *time_ids, float *out);

/* Width of text_embeds (projection_class_embeddings_input_dim - 6 x
 * addition_time_embed_dim) of a text_time model; 0 for any other. */
int cdf_unet2d_cond_pooled_dim(const cdf_unet2d_cond *m);

/* The input of add_embedding: out [batch, pooled + 6*D] = cat(text_embeds,
 * sinusoid(time_ids) flattened per row), float32 as diffusers computes it
 * (exposed for tests).  CDF_ERR_ARG without a text_time config or inputs. */
cdf_status cdf_unet2d_cond_add_embeds(const cdf_unet2d_cond *m, const float *text_embeds, const float *time_ids,
                                      int batch, float *out, cdf_error *err);

#endif
