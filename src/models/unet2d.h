/* UNet2DModel (diffusers 0.32): config, read-only weights (mmap'd views) and
 * a forward pass over float32 NCHW samples.  The model holds no per-run state,
 * so one loaded model can serve several runs. */
#ifndef CDF_MODELS_UNET2D_H
#define CDF_MODELS_UNET2D_H

#include "models/blocks2d.h"
#include "models/embeddings.h"
#include "models/unet2d_config.h"

typedef struct cdf_unet2d_down {
    int nres;
    cdf_resnet2d *resnets;   /* [nres] */
    cdf_attn2d *attentions;  /* [nres] or NULL */
    cdf_resample2d down;     /* kind 0 when absent */
    int cin, cout;
} cdf_unet2d_down;

typedef struct cdf_unet2d_up {
    int nres;
    cdf_resnet2d *resnets;   /* [nres] */
    cdf_attn2d *attentions;  /* [nres] or NULL */
    cdf_resample2d up;       /* kind 0 when absent */
    int cout;
} cdf_unet2d_up;

typedef struct cdf_unet2d {
    cdf_unet2d_config cfg;
    cdf_weights *weights;       /* owned: the mapped files */
    cdf_conv2d conv_in;         /* in -> C0 */
    cdf_param time_proj_weight; /* fourier: [C0]; learned: [T, C0]; positional: absent */
    cdf_time_mlp time_embedding; /* tin -> temb -> temb */
    cdf_unet2d_down down[CDF_UNET2D_MAX_BLOCKS];
    cdf_resnet2d mid_resnets[2];
    cdf_attn2d mid_attn;
    int mid_has_attn;
    cdf_unet2d_up up[CDF_UNET2D_MAX_BLOCKS];
    cdf_groupnorm conv_norm_out;
    cdf_conv2d conv_out;        /* C0 -> out */
    int time_in_dim;            /* width of the time projection */
} cdf_unet2d;

/* Loads MODEL/unet-style folder `dir` (config.json + safetensors; variant
 * e.g. "fp16" or NULL).  Caller frees *out with cdf_unet2d_free. */
cdf_status cdf_unet2d_load(const char *dir, const char *variant, cdf_unet2d **out, cdf_error *err);
void cdf_unet2d_free(cdf_unet2d *m);

/* Lists the state_dict of a UNet2DModel with config cfg (every tensor name
 * and shape, in module order) through fn, without any weights. */
cdf_status cdf_unet2d_describe(const cdf_unet2d_config *cfg, cdf_param_record_fn fn, void *user, cdf_error *err);

/* out = unet(sample, t).  sample: [batch, in_channels, h, w]; out:
 * [batch, out_channels, h, w]; t: the timestep shared by the batch.  Each
 * image is computed the same way alone or in a batch. */
cdf_status cdf_unet2d_forward(cdf_exec *ex, const cdf_unet2d *m, const float *sample, int batch, int h, int w,
                              int64_t t, float *out);

/* The time projection (before TimestepEmbedding) for timestep t into
 * out[time_in_dim], float32 as diffusers computes it. */
cdf_status cdf_unet2d_time_proj(cdf_exec *ex, const cdf_unet2d *m, int64_t t, float *out);

#endif
