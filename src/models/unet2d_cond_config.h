/* UNet2DConditionModel config.json (diffusers 0.32): the Stable Diffusion
 * 1.x/2.x layouts (CrossAttn/plain blocks, Transformer2DModel) and the UnCLIP
 * (Karlo) decoder layout (Resnet*sample / SimpleCrossAttn blocks,
 * class_embed_type "identity") and the SDXL layout (addition_embed_type
 * "text_time").  Every field is read; values beyond those are
 * rejected with an error naming the field and value. */
#ifndef CDF_MODELS_UNET2D_COND_CONFIG_H
#define CDF_MODELS_UNET2D_COND_CONFIG_H

#include <cjson/cJSON.h>

#include "cdiffusers/core.h"

#define CDF_UNETC_MAX_BLOCKS 8

/* Block classes (the "UNetRes" prefix diffusers strips is accepted). */
typedef enum cdf_unetc_block_type {
    CDF_UNETC_PLAIN = 0,        /* DownBlock2D / UpBlock2D: resnets, conv down/upsampler */
    CDF_UNETC_CROSS = 1,        /* CrossAttnDownBlock2D / CrossAttnUpBlock2D: + Transformer2DModel */
    CDF_UNETC_RESNET = 2,       /* ResnetDownsampleBlock2D / ResnetUpsampleBlock2D: resnet down/upsampler */
    CDF_UNETC_SIMPLE_CROSS = 3  /* SimpleCrossAttnDownBlock2D / ...UpBlock2D: + added-KV attention, resnet sampler */
} cdf_unetc_block_type;

typedef enum cdf_unetc_mid_type {
    CDF_UNETC_MID_NONE = 0,        /* mid_block_type null */
    CDF_UNETC_MID_CROSS = 1,       /* UNetMidBlock2DCrossAttn */
    CDF_UNETC_MID_SIMPLE_CROSS = 2 /* UNetMidBlock2DSimpleCrossAttn */
} cdf_unetc_mid_type;

typedef struct cdf_unet2d_cond_config {
    int sample_h, sample_w;           /* sample_size; 0 when null */
    int in_channels, out_channels;
    int center_input_sample, flip_sin_to_cos;
    double freq_shift;
    int num_blocks;
    int down_type[CDF_UNETC_MAX_BLOCKS];    /* cdf_unetc_block_type: DownBlock2D, CrossAttnDownBlock2D,
                                               ResnetDownsampleBlock2D, SimpleCrossAttnDownBlock2D */
    int up_type[CDF_UNETC_MAX_BLOCKS];      /* cdf_unetc_block_type: UpBlock2D, CrossAttnUpBlock2D,
                                               ResnetUpsampleBlock2D, SimpleCrossAttnUpBlock2D */
    int has_mid;                            /* mid_type != CDF_UNETC_MID_NONE */
    int mid_type;                           /* cdf_unetc_mid_type */
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
    int heads[CDF_UNETC_MAX_BLOCKS];        /* attention_head_dim: the head COUNT of CrossAttn blocks (diffusers'
                                               naming quirk, reversed for up blocks) but the head DIMENSION of
                                               SimpleCrossAttn blocks (up block i takes entry i, not reversed) */
    int use_linear_projection, upcast_attention;
    int scale_shift;                        /* resnet_time_scale_shift */
    int skip_time_act;                      /* resnet_skip_time_act (Resnet* / SimpleCrossAttn blocks and mid) */
    double resnet_out_scale_factor;         /* output_scale_factor of Resnet* / SimpleCrossAttn block resnets */
    int class_embed_identity;               /* class_embed_type "identity" (1): emb = time_embedding(t) +
                                               class_labels; null (0): no class embedding, labels ignored */
    int time_embedding_dim;                 /* resolved */
    int time_embedding_act;                 /* cdf_act or CDF_ACT_NONE */
    int timestep_post_act;                  /* cdf_act or CDF_ACT_NONE */
    int conv_in_kernel, conv_out_kernel;
    int add_text_time;                      /* addition_embed_type "text_time" (SDXL): emb += add_embedding(cat(
                                               text_embeds, sinusoid(time_ids))); 0 when null */
    int addition_time_embed_dim;            /* D of each of the 6 time-id sinusoids (add_text_time only) */
    int add_embed_in;                       /* projection_class_embeddings_input_dim = pooled dim + 6 * D
                                               (add_text_time only) */
} cdf_unet2d_cond_config;

cdf_status cdf_unet2d_cond_config_parse(const cJSON *root, const char *path, cdf_unet2d_cond_config *cfg,
                                        cdf_error *err);

#endif
