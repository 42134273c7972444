/* UNet2DConditionModel config.json (diffusers 0.32) for Stable Diffusion 1.x
 * and 2.x: every field is read; values beyond what SD 1.x/2.x use are
 * rejected with an error naming the field and value. */
#ifndef CDF_MODELS_UNET2D_COND_CONFIG_H
#define CDF_MODELS_UNET2D_COND_CONFIG_H

#include <cjson/cJSON.h>

#include "cdiffusers/core.h"

#define CDF_UNETC_MAX_BLOCKS 8

typedef struct cdf_unet2d_cond_config {
    int sample_h, sample_w;           /* sample_size; 0 when null */
    int in_channels, out_channels;
    int center_input_sample, flip_sin_to_cos;
    double freq_shift;
    int num_blocks;
    int down_cross[CDF_UNETC_MAX_BLOCKS];   /* CrossAttnDownBlock2D (1) or DownBlock2D (0) */
    int up_cross[CDF_UNETC_MAX_BLOCKS];     /* CrossAttnUpBlock2D (1) or UpBlock2D (0) */
    int has_mid;                            /* mid_block_type UNetMidBlock2DCrossAttn (1) or null (0) */
    int only_cross[CDF_UNETC_MAX_BLOCKS];   /* per down block */
    int mid_only_cross;
    int block_out_channels[CDF_UNETC_MAX_BLOCKS];
    int layers_per_block[CDF_UNETC_MAX_BLOCKS];
    int downsample_padding;
    double mid_block_scale_factor;
    int act_fn;                             /* cdf_act */
    int norm_num_groups;
    double norm_eps;
    int cross_attention_dim[CDF_UNETC_MAX_BLOCKS];
    int transformer_layers[CDF_UNETC_MAX_BLOCKS];
    int heads[CDF_UNETC_MAX_BLOCKS];        /* attention_head_dim, which diffusers uses as the head count */
    int use_linear_projection, upcast_attention;
    int scale_shift;                        /* resnet_time_scale_shift */
    int time_embedding_dim;                 /* resolved */
    int time_embedding_act;                 /* cdf_act or CDF_ACT_NONE */
    int timestep_post_act;                  /* cdf_act or CDF_ACT_NONE */
    int conv_in_kernel, conv_out_kernel;
} cdf_unet2d_cond_config;

cdf_status cdf_unet2d_cond_config_parse(const cJSON *root, const char *path, cdf_unet2d_cond_config *cfg,
                                        cdf_error *err);

#endif
