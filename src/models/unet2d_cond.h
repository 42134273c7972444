/* UNet2DConditionModel (diffusers 0.32) as Stable Diffusion 1.x/2.x use it:
 * CrossAttnDownBlock2D / DownBlock2D, UNetMidBlock2DCrossAttn,
 * UpBlock2D / CrossAttnUpBlock2D, Transformer2DModel with linear or 1x1-conv
 * projections.  Weights are read-only views of the mapped files. */
#ifndef CDF_MODELS_UNET2D_COND_H
#define CDF_MODELS_UNET2D_COND_H

#include "models/blocks2d.h"
#include "models/embeddings.h"
#include "models/transformer2d.h"
#include "models/unet2d_cond_config.h"

typedef struct cdf_unetc_block {
    int nres;
    cdf_resnet2d *resnets;         /* [nres] */
    cdf_transformer2d *attentions; /* [nres] or NULL */
    cdf_resample2d sample;         /* down: stride-2 conv; up: 2x (or sized) nearest + conv; kind 0 absent */
    int cout;
} cdf_unetc_block;

typedef struct cdf_unet2d_cond {
    cdf_unet2d_cond_config cfg;
    cdf_weights *weights;          /* owned */
    cdf_conv2d conv_in;            /* in -> C0 */
    cdf_time_mlp time_embedding;   /* C0 -> temb -> temb */
    cdf_unetc_block down[CDF_UNETC_MAX_BLOCKS];
    cdf_resnet2d mid_resnets[2];
    cdf_transformer2d mid_attn;
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
 * float32 or int64 timesteps; both become float32 in the embedding). */
cdf_status cdf_unet2d_cond_forward(cdf_exec *ex, const cdf_unet2d_cond *m, const float *sample, int batch, int h,
                                   int w, double t, const float *ctx, int seq, float *out);

#endif
