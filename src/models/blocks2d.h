/* UNet2D building blocks: ResnetBlock2D, the self-attention block
 * (diffusers Attention with group norm and residual), Downsample2D and
 * Upsample2D.  Activations are float32 [batch, channels, h, w]. */
#ifndef CDF_MODELS_BLOCKS2D_H
#define CDF_MODELS_BLOCKS2D_H

#include "models/nn.h"

typedef struct cdf_resnet2d {
    cdf_groupnorm norm1;       /* over cin */
    cdf_conv2d conv1;          /* cin -> cout, 3x3 */
    cdf_linear time_emb_proj;  /* temb -> cout (default) or 2*cout (scale_shift) */
    cdf_groupnorm norm2;       /* over cout */
    cdf_conv2d conv2;          /* cout -> cout, 3x3 */
    cdf_conv2d conv_shortcut;  /* cin -> cout, 1x1, when cin != cout */
    int has_shortcut;
    int scale_shift;           /* time_embedding_norm "scale_shift" */
    int down, up;              /* resnet-type resampling: avgpool 2x2 / nearest 2x */
    int act;                   /* cdf_act of the block (non_linearity) */
    int skip_time_act;         /* skip_time_act: temb goes to time_emb_proj without the activation (0 after load) */
    float output_scale_factor;
    int cin, cout, temb;       /* temb 0: no time embedding (time_emb_proj absent) */
} cdf_resnet2d;

typedef struct cdf_attn2d {
    cdf_groupnorm group_norm;  /* [channels], absent when has_norm == 0 */
    int has_norm;
    cdf_linear to_q, to_k, to_v; /* channels -> heads*dim_head */
    cdf_linear to_out;         /* heads*dim_head -> channels ("to_out.0") */
    int channels, heads, dim_head;
    float rescale_output_factor;
} cdf_attn2d;

typedef struct cdf_resample2d {
    int kind;                  /* 0 none, 1 conv, 2 resnet */
    cdf_conv2d conv;           /* kind 1: 3x3, stride 2 (down) or 1 (up) */
    cdf_resnet2d resnet;       /* kind 2 */
    int pad;                   /* down conv: 0 means pad (0,1,0,1) then no padding */
} cdf_resample2d;

/* Loads "<prefix>.norm1", ".conv1", ... with the given geometry.  temb 0:
 * no time embedding (diffusers temb_channels=None): no time_emb_proj, and
 * cdf_resnet2d_forward ignores its temb argument (may be NULL). */
cdf_status cdf_resnet2d_load(cdf_loader *ld, const char *prefix, int cin, int cout, int temb, int groups, float eps,
                             int act, int scale_shift, float output_scale_factor, int down, int up, cdf_resnet2d *m);
/* norm_groups 0: no group norm.  heads = channels / head_dim. */
cdf_status cdf_attn2d_load(cdf_loader *ld, const char *prefix, int channels, int head_dim, int norm_groups, float eps,
                           float rescale_output_factor, cdf_attn2d *m);

/* x: [batch, cin, h, w]; temb: [batch, temb]; *y: newly allocated
 * [batch, cout, ho, wo] (cdf_aligned_alloc; caller frees), ho and wo set. */
cdf_status cdf_resnet2d_forward(cdf_exec *ex, const cdf_resnet2d *m, const float *x, int batch, int h, int w,
                                const float *temb, float **y, int *ho, int *wo);
/* In place: x: [batch, channels, h*w]. */
cdf_status cdf_attn2d_forward(cdf_exec *ex, const cdf_attn2d *m, float *x, int batch, int64_t hw);

/* Downsample2D / resnet down: x [batch, c, h, w] -> *y new [batch, c, ho, wo]. */
cdf_status cdf_downsample2d_forward(cdf_exec *ex, const cdf_resample2d *m, const float *x, int batch, int c, int h,
                                    int w, const float *temb, float **y, int *ho, int *wo);
/* Upsample2D / resnet up: x [batch, c, h, w] -> *y new [batch, c, 2h, 2w]. */
cdf_status cdf_upsample2d_forward(cdf_exec *ex, const cdf_resample2d *m, const float *x, int batch, int c, int h,
                                  int w, const float *temb, float **y, int *ho, int *wo);

/* 64-byte aligned float buffer of n elements, or NULL with CDF_ERR_NOMEM in ex->err. */
float *cdf_buf(cdf_exec *ex, size_t n);

#endif
