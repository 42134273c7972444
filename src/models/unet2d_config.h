/* UNet2DModel config.json (diffusers 0.32), parsed strictly: every field of
 * the class is honoured with diffusers' defaults, unsupported values are
 * errors naming the field, unknown keys get a notice. */
#ifndef CDF_MODELS_UNET2D_CONFIG_H
#define CDF_MODELS_UNET2D_CONFIG_H

#include <cjson/cJSON.h>

#include "cdiffusers/core.h"

#define CDF_UNET2D_MAX_BLOCKS 8

/* PLAIN: DownBlock2D / UpBlock2D; ATTN: AttnDownBlock2D / AttnUpBlock2D;
 * RESNET: ResnetDownsampleBlock2D / ResnetUpsampleBlock2D (plain resnets, the
 * resampler is a ResnetBlock2D with down=True / up=True whatever
 * downsample_type / upsample_type say). */
typedef enum cdf_block2d { CDF_BLOCK_PLAIN = 0, CDF_BLOCK_ATTN = 1, CDF_BLOCK_RESNET = 2 } cdf_block2d;
typedef enum cdf_time_emb { CDF_TEMB_POSITIONAL = 0, CDF_TEMB_FOURIER, CDF_TEMB_LEARNED } cdf_time_emb;

typedef struct cdf_unet2d_config {
    int sample_h, sample_w;     /* sample_size: int or [h, w]; 0 when null */
    int in_channels, out_channels;
    int center_input_sample;
    cdf_time_emb time_embedding_type;
    int time_embedding_dim;     /* resolved: time_embedding_dim or 4 * block_out_channels[0] */
    double freq_shift;
    int flip_sin_to_cos;
    int num_blocks;
    cdf_block2d down_types[CDF_UNET2D_MAX_BLOCKS]; /* DownBlock2D / AttnDownBlock2D / ResnetDownsampleBlock2D */
    cdf_block2d up_types[CDF_UNET2D_MAX_BLOCKS];   /* UpBlock2D / AttnUpBlock2D / ResnetUpsampleBlock2D */
    int block_out_channels[CDF_UNET2D_MAX_BLOCKS];
    int layers_per_block;
    double mid_block_scale_factor;
    int downsample_padding;
    int downsample_resnet;      /* downsample_type "resnet" (else "conv"); used by AttnDownBlock2D */
    int upsample_resnet;        /* upsample_type "resnet" (else "conv"); used by AttnUpBlock2D */
    double dropout;             /* inference: no effect */
    int act_fn;                 /* cdf_act */
    int attention_head_dim;     /* 0 when null: one head of the block's width */
    int norm_num_groups;
    int attn_norm_num_groups;   /* 0 when null */
    double norm_eps;
    int scale_shift;            /* resnet_time_scale_shift "scale_shift" (else "default") */
    int add_attention;
    int num_train_timesteps;    /* 0 when null; needed by "learned" */
} cdf_unet2d_config;

/* Parses root (from file `path`) into cfg.  Errors: CDF_ERR_CONFIG for bad or
 * inconsistent values, CDF_ERR_UNSUPPORTED for real diffusers values this
 * build does not implement; both name the field and value. */
cdf_status cdf_unet2d_config_parse(const cJSON *root, const char *path, cdf_unet2d_config *cfg, cdf_error *err);

#endif
