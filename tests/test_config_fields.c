/* Every validated field of every config parser has a failing case.
 *
 * Each suite starts from a real config of tests/data (optionally with a few
 * fields merged over it first), checks that it parses, then, row by row,
 * puts ONE bad value into ONE field (or removes it) and parses again: the
 * parse must fail with the row's status and a message naming the file and
 * the field (or, for a cross-field check, the row's needle).  Parsers:
 * UNet2DModel, UNet2DConditionModel (SD and Karlo decoder layouts),
 * AutoencoderKL, CLIPTextConfig (with and without projection),
 * PriorTransformer, UnCLIPTextProjModel, the scheduler configs (DDPM, DDIM,
 * PNDM, Euler, DPM-Solver++, UniPC, UnCLIP) and model_index.json of every
 * pipeline family (through cdf_pipeline_load on a folder of links to the real
 * components: the unpatched index loads the whole pipeline).
 *
 * Values are JSON text ("Infinity" as Python writes it); DEL removes the
 * key; "NaN" puts a NaN number in the tree (no JSON text spells it, but the
 * parsers take trees).  A last table checks that a null bool is Python's
 * False, not the class default. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

#include "testutil.h"
#include "io/json.h"
#include "models/clip_text.h"
#include "models/prior_transformer.h"
#include "models/text_proj.h"
#include "models/unet2d_config.h"
#include "models/unet2d_cond_config.h"
#include "models/vae.h"
#include "schedulers/scheduler.h"

typedef enum parser_kind { K_UNET2D, K_UNETC, K_VAE, K_CLIP, K_PRIOR, K_TEXT_PROJ, K_SCHED, K_INDEX, K_N } parser_kind;
static const char *const k_kind_names[K_N] = {"UNet2DModel", "UNet2DConditionModel", "AutoencoderKL", "CLIPTextConfig",
                                              "PriorTransformer", "UnCLIPTextProjModel", "scheduler",
                                              "model_index.json"};

typedef struct row {
    const char *field;  /* top-level key patched */
    const char *value;  /* JSON text put there; DEL: the key removed */
    cdf_status want;
    const char *needle; /* what the message must name besides the file; NULL: field */
} row;

#define DEL NULL
#define CFG CDF_ERR_CONFIG
#define UNS CDF_ERR_UNSUPPORTED
#define MIS CDF_ERR_MISSING

typedef struct suite {
    parser_kind kind;
    const char *file; /* under tests/data */
    const char *base; /* JSON object merged over the file first; NULL: none */
    const row *rows;
    size_t n;
} suite;

#define SUITE(kind, file, base, rows) {kind, file, base, rows, sizeof rows / sizeof rows[0]}

/* ------------------------------------------------------------ UNet2DModel */

#define CIFAR "ddpm/models/tiny_cifar/unet/config.json" /* Down, AttnDown, Down, Down; [32, 64, 64, 64]; 32 groups */
static const row k_unet2d[] = {
    {"_class_name", "\"UNet2DConditionModel\"", UNS, NULL},
    {"_class_name", "5", CFG, NULL},
    {"sample_size", "0", CFG, NULL},
    {"sample_size", "65537", CFG, NULL},
    {"sample_size", "1.5", CFG, NULL},
    {"sample_size", "\"32\"", CFG, NULL},
    {"sample_size", "[32]", CFG, NULL},
    {"sample_size", "[32, 0]", CFG, NULL},
    {"sample_size", "[32, 65537]", CFG, NULL},
    {"in_channels", "0", CFG, NULL},
    {"in_channels", "4097", CFG, NULL},
    {"in_channels", "null", CFG, NULL},
    {"in_channels", "\"3\"", CFG, NULL},
    {"out_channels", "0", CFG, NULL},
    {"out_channels", "null", CFG, NULL},
    {"center_input_sample", "\"yes\"", CFG, NULL},
    {"center_input_sample", "1", CFG, NULL},
    {"time_embedding_type", "\"wavelet\"", CFG, NULL},
    {"time_embedding_type", "null", CFG, NULL},
    {"time_embedding_type", "5", CFG, NULL},
    {"time_embedding_type", "\"learned\"", CFG, "num_train_timesteps"},
    {"freq_shift", "\"1\"", CFG, NULL},
    {"freq_shift", "null", CFG, NULL},
    {"freq_shift", "Infinity", CFG, NULL},
    {"freq_shift", "NaN", CFG, NULL},
    {"flip_sin_to_cos", "\"no\"", CFG, NULL},
    {"down_block_types", "\"DownBlock2D\"", CFG, NULL},
    {"down_block_types", "[]", CFG, NULL},
    {"down_block_types", "null", CFG, NULL},
    {"down_block_types", "[\"DownBlock2D\",\"DownBlock2D\",\"DownBlock2D\",\"DownBlock2D\",\"DownBlock2D\","
                         "\"DownBlock2D\",\"DownBlock2D\",\"DownBlock2D\",\"DownBlock2D\"]", CFG, NULL},
    {"down_block_types", "[\"DownBlock2D\", 7, \"DownBlock2D\", \"DownBlock2D\"]", CFG, NULL},
    {"down_block_types", "[\"DownBlock2D\", \"FancyDownBlock2D\", \"DownBlock2D\", \"DownBlock2D\"]", CFG, NULL},
    {"down_block_types", "[\"DownBlock2D\", \"CrossAttnDownBlock2D\", \"DownBlock2D\", \"DownBlock2D\"]", UNS, NULL},
    {"down_block_types", "[\"DownBlock2D\", \"AttnDownBlock2D\", \"DownBlock2D\"]", CFG, "up_block_types"},
    {"up_block_types", "[\"UpBlock2D\", \"UpBlock2D\", \"FancyUpBlock2D\", \"UpBlock2D\"]", CFG, NULL},
    {"up_block_types", "[\"UpBlock2D\", \"UpBlock2D\", \"KUpBlock2D\", \"UpBlock2D\"]", UNS, NULL},
    {"up_block_types", "null", CFG, NULL},
    {"up_block_types", "{}", CFG, NULL},
    {"block_out_channels", "[32, 64, 64]", CFG, NULL},
    {"block_out_channels", "[32, 0, 64, 64]", CFG, NULL},
    {"block_out_channels", "[32, 64, 64, 65537]", CFG, NULL},
    {"block_out_channels", "[32, 64.5, 64, 64]", CFG, NULL},
    {"block_out_channels", "\"32\"", CFG, NULL},
    {"block_out_channels", "null", CFG, NULL},
    {"block_out_channels", "[32, 48, 64, 64]", CFG, "norm_num_groups"},
    {"layers_per_block", "0", CFG, NULL},
    {"layers_per_block", "65", CFG, NULL},
    {"layers_per_block", "null", CFG, NULL},
    {"layers_per_block", "\"2\"", CFG, NULL},
    {"mid_block_scale_factor", "0", CFG, NULL},
    {"mid_block_scale_factor", "Infinity", CFG, NULL},
    {"mid_block_scale_factor", "NaN", CFG, NULL},
    {"mid_block_scale_factor", "null", CFG, NULL},
    {"mid_block_scale_factor", "\"1\"", CFG, NULL},
    {"downsample_padding", "-1", CFG, NULL},
    {"downsample_padding", "17", CFG, NULL},
    {"downsample_padding", "null", CFG, NULL},
    {"downsample_type", "\"pool\"", CFG, NULL},
    {"upsample_type", "\"bilinear\"", CFG, NULL},
    {"dropout", "-0.5", CFG, NULL},
    {"dropout", "1.5", CFG, NULL},
    {"dropout", "null", CFG, NULL},
    {"dropout", "\"0\"", CFG, NULL},
    {"act_fn", "\"wiggle\"", CFG, NULL},
    {"act_fn", "null", CFG, NULL},
    {"act_fn", "3", CFG, NULL},
    {"attention_head_dim", "0", CFG, NULL},
    {"attention_head_dim", "65", CFG, NULL}, /* wider than the 64-channel attention block */
    {"attention_head_dim", "\"8\"", CFG, NULL},
    {"norm_num_groups", "null", UNS, NULL},
    {"norm_num_groups", "0", CFG, NULL},
    {"norm_num_groups", "65537", CFG, NULL},
    {"norm_num_groups", "3", CFG, NULL}, /* does not divide 32 */
    {"norm_num_groups", "\"32\"", CFG, NULL},
    {"attn_norm_num_groups", "0", CFG, NULL},
    {"attn_norm_num_groups", "3", CFG, NULL}, /* does not divide the mid block's 64 */
    {"norm_eps", "0", CFG, NULL},
    {"norm_eps", "-1e-6", CFG, NULL},
    {"norm_eps", "Infinity", CFG, NULL},
    {"norm_eps", "NaN", CFG, NULL},
    {"norm_eps", "null", CFG, NULL},
    {"norm_eps", "\"1e-6\"", CFG, NULL},
    {"resnet_time_scale_shift", "\"spatial\"", UNS, NULL},
    {"resnet_time_scale_shift", "\"wobble\"", CFG, NULL},
    {"resnet_time_scale_shift", "null", CFG, NULL},
    {"add_attention", "\"yes\"", CFG, NULL},
    {"class_embed_type", "\"timestep\"", UNS, NULL},
    {"class_embed_type", "3", CFG, NULL},
    {"num_class_embeds", "10", UNS, NULL},
    {"num_train_timesteps", "0", CFG, NULL},
    {"num_train_timesteps", "16777217", CFG, NULL},
    {"num_train_timesteps", "\"1000\"", CFG, NULL},
    {"time_embedding_dim", "0", CFG, NULL},
    {"time_embedding_dim", "1048577", CFG, NULL},
};
/* one group: an odd first width reaches the positional-embedding check */
static const row k_unet2d_g1[] = {
    {"block_out_channels", "[33, 64, 64, 64]", UNS, NULL},
};

/* --------------------------------------------------- UNet2DConditionModel */

#define SD "sd/pipelines/tiny-sd15-a"
#define KARLO "unclip/pipelines/tiny-karlo-a"
static const row k_unetc[] = {
    {"_class_name", "\"UNet2DModel\"", UNS, NULL},
    {"sample_size", "0", CFG, NULL},
    {"sample_size", "[8]", CFG, NULL},
    {"sample_size", "[8, 0]", CFG, NULL},
    {"sample_size", "\"8\"", CFG, NULL},
    {"in_channels", "0", CFG, NULL},
    {"in_channels", "1.5", CFG, NULL},
    {"in_channels", "null", CFG, NULL},
    {"out_channels", "1048577", CFG, NULL},
    {"out_channels", "null", CFG, NULL},
    {"center_input_sample", "\"no\"", CFG, NULL},
    {"flip_sin_to_cos", "1", CFG, NULL},
    {"freq_shift", "Infinity", CFG, NULL},
    {"freq_shift", "null", CFG, NULL},
    {"freq_shift", "\"0\"", CFG, NULL},
    {"down_block_types", "\"CrossAttnDownBlock2D\"", CFG, NULL},
    {"down_block_types", "[]", CFG, NULL},
    {"down_block_types", "null", CFG, NULL},
    {"down_block_types", "[\"CrossAttnDownBlock2D\", 1, \"CrossAttnDownBlock2D\", \"DownBlock2D\"]", CFG, NULL},
    {"down_block_types", "[\"CrossAttnDownBlock2D\", \"AttnDownBlock2D\", \"CrossAttnDownBlock2D\", \"DownBlock2D\"]",
     UNS, NULL},
    {"down_block_types", "[\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", \"DownBlock2D\"]", CFG,
     "up_block_types"},
    {"up_block_types", "[\"UpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"KUpBlock2D\"]", UNS, NULL},
    {"up_block_types", "null", CFG, NULL},
    {"mid_block_type", "\"UNetMidBlock2D\"", UNS, NULL},
    {"mid_block_type", "3", CFG, NULL},
    {"block_out_channels", "[32, 32, 32]", CFG, NULL},
    {"block_out_channels", "[32, 32, 32, 0]", CFG, NULL},
    {"block_out_channels", "[32, 32, 32, \"32\"]", CFG, NULL},
    {"block_out_channels", "null", CFG, NULL},
    {"block_out_channels", "[32, 32, 32, 36]", CFG, "norm_num_groups"},
    {"only_cross_attention", "\"yes\"", CFG, NULL},
    {"only_cross_attention", "[true, false]", CFG, NULL},
    {"only_cross_attention", "[false, false, false, 1]", CFG, NULL},
    {"only_cross_attention", "null", CFG, NULL},
    {"only_cross_attention", "true", UNS, NULL}, /* reaches the UNetMidBlock2DCrossAttn */
    {"mid_block_only_cross_attention", "true", UNS, NULL},
    {"mid_block_only_cross_attention", "\"x\"", CFG, NULL},
    {"layers_per_block", "0", CFG, NULL},
    {"layers_per_block", "[2, 2]", CFG, NULL},
    {"layers_per_block", "[[1], 1, 1, 1]", UNS, NULL},
    {"layers_per_block", "null", CFG, NULL},
    {"downsample_padding", "-1", CFG, NULL},
    {"downsample_padding", "null", CFG, NULL},
    {"mid_block_scale_factor", "0", CFG, NULL},
    {"mid_block_scale_factor", "Infinity", CFG, NULL},
    {"mid_block_scale_factor", "NaN", CFG, NULL},
    {"mid_block_scale_factor", "null", CFG, NULL},
    {"dropout", "-1", CFG, NULL},
    {"dropout", "2", CFG, NULL},
    {"dropout", "null", CFG, NULL},
    {"dropout", "\"0\"", CFG, NULL},
    {"act_fn", "\"wiggle\"", CFG, NULL},
    {"act_fn", "null", CFG, NULL},
    {"act_fn", "1", CFG, NULL},
    {"norm_num_groups", "null", UNS, NULL},
    {"norm_num_groups", "0", CFG, NULL},
    {"norm_num_groups", "3", CFG, NULL},
    {"norm_eps", "0", CFG, NULL},
    {"norm_eps", "-1", CFG, NULL},
    {"norm_eps", "Infinity", CFG, NULL},
    {"norm_eps", "null", CFG, NULL},
    {"norm_eps", "\"1e-5\"", CFG, NULL},
    {"cross_attention_dim", "0", CFG, NULL},
    {"cross_attention_dim", "[32, 32]", CFG, NULL},
    {"cross_attention_dim", "null", CFG, NULL},
    {"transformer_layers_per_block", "0", CFG, NULL},
    {"transformer_layers_per_block", "[[1, 1], 1, 1, 1]", UNS, NULL},
    {"transformer_layers_per_block", "null", CFG, NULL},
    {"reverse_transformer_layers_per_block", "[[1], [1], [1], [1]]", UNS, NULL},
    {"encoder_hid_dim", "32", UNS, NULL},
    {"encoder_hid_dim_type", "\"text_proj\"", UNS, NULL},
    {"attention_head_dim", "null", CFG, NULL},
    {"attention_head_dim", "0", CFG, NULL},
    {"attention_head_dim", "64", CFG, NULL}, /* 64 heads over 32 channels */
    {"attention_head_dim", "[8, 8]", CFG, NULL},
    {"num_attention_heads", "8", CFG, NULL},
    {"dual_cross_attention", "true", UNS, NULL},
    {"dual_cross_attention", "\"x\"", CFG, NULL},
    {"use_linear_projection", "\"x\"", CFG, NULL},
    {"class_embed_type", "\"timestep\"", UNS, NULL},
    {"class_embed_type", "1", CFG, NULL},
    {"addition_embed_type", "\"text\"", UNS, NULL},
    {"addition_time_embed_dim", "256", UNS, NULL},
    {"num_class_embeds", "10", UNS, NULL},
    {"upcast_attention", "\"x\"", CFG, NULL},
    {"resnet_time_scale_shift", "\"spatial\"", UNS, NULL},
    {"resnet_time_scale_shift", "null", UNS, NULL},
    {"resnet_skip_time_act", "2", CFG, NULL},
    {"resnet_out_scale_factor", "0", CFG, NULL},
    {"resnet_out_scale_factor", "Infinity", CFG, NULL},
    {"resnet_out_scale_factor", "null", CFG, NULL},
    {"time_embedding_type", "\"fourier\"", UNS, NULL},
    {"time_embedding_type", "null", CFG, NULL},
    {"time_embedding_dim", "0", CFG, NULL},
    {"time_embedding_dim", "\"64\"", CFG, NULL},
    {"time_embedding_act_fn", "\"wiggle\"", CFG, NULL},
    {"timestep_post_act", "\"wiggle\"", CFG, NULL},
    {"time_cond_proj_dim", "8", UNS, NULL},
    {"conv_in_kernel", "4", UNS, NULL},
    {"conv_in_kernel", "0", CFG, NULL},
    {"conv_in_kernel", "null", CFG, NULL},
    {"conv_out_kernel", "2", UNS, NULL},
    {"conv_out_kernel", "null", CFG, NULL},
    {"projection_class_embeddings_input_dim", "8", UNS, NULL},
    {"attention_type", "\"gated\"", UNS, NULL},
    {"class_embeddings_concat", "true", UNS, NULL},
    {"cross_attention_norm", "\"group_norm\"", UNS, NULL},
};
static const row k_unetc_g1[] = {
    {"block_out_channels", "[33, 32, 32, 32]", UNS, NULL}, /* odd first width (one group) */
};
/* Karlo decoder: ResnetDownsample + SimpleCrossAttn blocks, [16, 32], identity class embedding */
static const row k_unetc_karlo[] = {
    {"attention_head_dim", "33", CFG, NULL}, /* the head dimension of 32-channel SimpleCrossAttn blocks */
    {"resnet_out_scale_factor", "null", CFG, NULL},
    {"resnet_out_scale_factor", "NaN", CFG, NULL},
    {"mid_block_type", "\"UNetMidBlock2DSimpleCrossAttn2\"", UNS, NULL},
    {"class_embed_type", "\"projection\"", UNS, NULL},
};

/* ---------------------------------------------------------- AutoencoderKL */

static const row k_vae[] = {
    {"_class_name", "\"UNet2DModel\"", UNS, NULL},
    {"in_channels", "0", CFG, NULL},
    {"in_channels", "null", CFG, NULL},
    {"in_channels", "\"3\"", CFG, NULL},
    {"out_channels", "4097", CFG, NULL},
    {"down_block_types", "null", CFG, NULL},
    {"down_block_types", "\"DownEncoderBlock2D\"", CFG, NULL},
    {"down_block_types", "[]", CFG, NULL},
    {"down_block_types", "[\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"]", CFG, NULL},
    {"down_block_types", "[\"DownEncoderBlock2D\", \"DownBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"]",
     UNS, NULL},
    {"down_block_types", "[\"DownEncoderBlock2D\", \"Fancy\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"]", CFG,
     NULL},
    {"down_block_types", "[1, \"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"]", CFG, NULL},
    {"up_block_types", "null", CFG, NULL},
    {"up_block_types", "[\"UpDecoderBlock2D\"]", CFG, NULL},
    {"up_block_types", "[\"UpDecoderBlock2D\", \"UpBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]", UNS, NULL},
    {"block_out_channels", "null", CFG, NULL},
    {"block_out_channels", "[32, 32, 32, 0]", CFG, NULL},
    {"block_out_channels", "[32, 32, 32]", CFG, NULL},
    {"block_out_channels", "\"x\"", CFG, NULL},
    {"block_out_channels", "[32, 32, 32, 40]", CFG, "norm_num_groups"},
    {"layers_per_block", "0", CFG, NULL},
    {"layers_per_block", "null", CFG, NULL},
    {"act_fn", "null", CFG, NULL},
    {"act_fn", "\"wiggle\"", CFG, NULL},
    {"act_fn", "1", CFG, NULL},
    {"latent_channels", "0", CFG, NULL},
    {"latent_channels", "null", CFG, NULL},
    {"norm_num_groups", "0", CFG, NULL},
    {"norm_num_groups", "3", CFG, NULL},
    {"norm_num_groups", "null", CFG, NULL},
    {"sample_size", "0", CFG, NULL},
    {"sample_size", "[64, 0]", CFG, NULL},
    {"sample_size", "[]", CFG, NULL},
    {"sample_size", "\"64\"", CFG, NULL},
    {"scaling_factor", "0", CFG, NULL},
    {"scaling_factor", "null", CFG, NULL},
    {"scaling_factor", "Infinity", CFG, NULL},
    {"scaling_factor", "\"x\"", CFG, NULL},
    {"shift_factor", "Infinity", CFG, NULL},
    {"shift_factor", "\"x\"", CFG, NULL},
    {"latents_mean", "\"x\"", CFG, NULL},
    {"latents_mean", "[1, \"a\"]", CFG, NULL},
    {"latents_std", "3", CFG, NULL},
    {"force_upcast", "\"yes\"", CFG, NULL},
    {"use_quant_conv", "\"yes\"", CFG, NULL},
    {"use_post_quant_conv", "2", CFG, NULL},
    {"mid_block_add_attention", "\"x\"", CFG, NULL},
};

/* --------------------------------------------------------- CLIPTextConfig */

static const row k_clip[] = {
    {"architectures", "[\"CLIPVisionModel\"]", UNS, NULL},
    {"architectures", "\"CLIPTextModel\"", CFG, NULL},
    {"architectures", "[\"CLIPTextModel\", \"CLIPTextModel\"]", CFG, NULL},
    {"model_type", "\"clip_vision_model\"", UNS, NULL},
    {"model_type", "3", CFG, NULL},
    {"torch_dtype", "\"int8\"", CFG, NULL},
    {"use_attention_mask", "true", UNS, NULL},
    {"use_attention_mask", "\"x\"", CFG, NULL},
    {"vocab_size", "0", CFG, NULL},
    {"vocab_size", "16777217", CFG, NULL},
    {"vocab_size", "null", CFG, NULL},
    {"vocab_size", "\"49408\"", CFG, NULL},
    {"hidden_size", "0", CFG, NULL},
    {"hidden_size", "65537", CFG, NULL},
    {"hidden_size", "null", CFG, NULL},
    {"hidden_size", "30", CFG, "num_attention_heads"}, /* 4 heads */
    {"intermediate_size", "0", CFG, NULL},
    {"intermediate_size", "null", CFG, NULL},
    {"projection_dim", "0", CFG, NULL},
    {"num_hidden_layers", "-1", CFG, NULL},
    {"num_hidden_layers", "1025", CFG, NULL},
    {"num_hidden_layers", "null", CFG, NULL},
    {"num_attention_heads", "0", CFG, NULL},
    {"num_attention_heads", "3", CFG, NULL}, /* does not divide 32 */
    {"num_attention_heads", "null", CFG, NULL},
    {"max_position_embeddings", "0", CFG, NULL},
    {"max_position_embeddings", "null", CFG, NULL},
    {"hidden_act", "\"relu\"", UNS, NULL},
    {"hidden_act", "\"wiggle\"", CFG, NULL},
    {"hidden_act", "null", CFG, NULL},
    {"hidden_act", "3", CFG, NULL},
    {"layer_norm_eps", "0", CFG, NULL},
    {"layer_norm_eps", "-1", CFG, NULL},
    {"layer_norm_eps", "Infinity", CFG, NULL},
    {"layer_norm_eps", "NaN", CFG, NULL},
    {"layer_norm_eps", "null", CFG, NULL},
    {"layer_norm_eps", "\"x\"", CFG, NULL},
    {"attention_dropout", "\"x\"", CFG, NULL},
    {"dropout", "\"x\"", CFG, NULL},
    {"initializer_range", "\"x\"", CFG, NULL},
    {"initializer_factor", "\"x\"", CFG, NULL},
    {"pad_token_id", "1.5", CFG, NULL},
    {"bos_token_id", "\"x\"", CFG, NULL},
    {"eos_token_id", "2.5", CFG, NULL},
};
static const row k_clip_proj[] = {
    {"projection_dim", "null", CFG, NULL}, /* CLIPTextModelWithProjection builds text_projection from it */
    {"projection_dim", "65537", CFG, NULL},
};

/* ------------------------------------------ PriorTransformer, text_proj */

static const row k_prior[] = {
    {"_class_name", "\"UNet2DModel\"", UNS, NULL},
    {"num_attention_heads", "0", CFG, NULL},
    {"num_attention_heads", "4097", CFG, NULL},
    {"num_attention_heads", "null", CFG, NULL},
    {"attention_head_dim", "0", CFG, NULL},
    {"attention_head_dim", "null", CFG, NULL},
    {"attention_head_dim", "65536", CFG, NULL}, /* 2 heads: inner width past 2^16 */
    {"num_layers", "-1", CFG, NULL},
    {"num_layers", "null", CFG, NULL},
    {"embedding_dim", "0", CFG, NULL},
    {"embedding_dim", "null", CFG, NULL},
    {"num_embeddings", "0", CFG, NULL},
    {"num_embeddings", "null", CFG, NULL},
    {"additional_embeddings", "5", UNS, NULL},
    {"additional_embeddings", "-1", CFG, NULL},
    {"additional_embeddings", "null", CFG, NULL},
    {"dropout", "-1", CFG, NULL},
    {"dropout", "2", CFG, NULL},
    {"dropout", "null", CFG, NULL},
    {"dropout", "\"x\"", CFG, NULL},
    {"time_embed_act_fn", "\"wiggle\"", CFG, NULL},
    {"time_embed_act_fn", "null", CFG, NULL},
    {"time_embed_act_fn", "3", CFG, NULL},
    {"norm_in_type", "\"batch\"", CFG, NULL},
    {"norm_in_type", "3", CFG, NULL},
    {"embedding_proj_norm_type", "\"batch\"", CFG, NULL},
    {"encoder_hid_proj_type", "\"conv\"", CFG, NULL},
    {"added_emb_type", "\"x\"", CFG, NULL},
    {"added_emb_type", "null", UNS, "additional_embeddings"}, /* 4 extra tokens need the prd one */
    {"time_embed_dim", "-1", CFG, NULL},
    {"time_embed_dim", "\"x\"", CFG, NULL},
    {"embedding_proj_dim", "-1", CFG, NULL},
    {"clip_embed_dim", "65537", CFG, NULL},
};
static const row k_text_proj[] = {
    {"_class_name", "\"PriorTransformer\"", UNS, NULL},
    {"clip_extra_context_tokens", "0", CFG, NULL},
    {"clip_extra_context_tokens", "65537", CFG, NULL},
    {"clip_extra_context_tokens", "null", CFG, NULL},
    {"clip_extra_context_tokens", "\"4\"", CFG, NULL},
    {"clip_embeddings_dim", "0", CFG, NULL},
    {"clip_embeddings_dim", "null", CFG, NULL},
    {"time_embed_dim", DEL, CFG, NULL},
    {"time_embed_dim", "null", CFG, NULL},
    {"time_embed_dim", "0", CFG, NULL},
    {"cross_attention_dim", DEL, CFG, NULL},
    {"cross_attention_dim", "65537", CFG, NULL},
};
static const row k_text_proj_wide[] = {
    {"clip_extra_context_tokens", "300", CFG, NULL}, /* 300 x 65536 outputs */
};

/* ------------------------------------------------------------- schedulers */

#define DDPM_SCHED "ddpm/models/tiny_cifar/scheduler/scheduler_config.json"
static const row k_sched_ddpm[] = {
    {"_class_name", DEL, CFG, NULL},
    {"_class_name", "3", CFG, NULL},
    {"_class_name", "\"FooScheduler\"", UNS, NULL},
    {"num_train_timesteps", "0", CFG, NULL},
    {"num_train_timesteps", "16777217", CFG, NULL},
    {"num_train_timesteps", "10.5", CFG, NULL},
    {"num_train_timesteps", "\"1000\"", CFG, NULL},
    {"beta_start", "\"x\"", CFG, NULL},
    {"beta_end", "null", CFG, NULL},
    {"beta_schedule", "\"cubic\"", CFG, NULL},
    {"beta_schedule", "null", CFG, NULL},
    {"beta_schedule", "\"exp\"", CFG, NULL}, /* HeunDiscreteScheduler only */
    {"trained_betas", "[0.1, 0.2]", CFG, NULL},
    {"trained_betas", "\"x\"", CFG, NULL},
    {"trained_betas", "[0.1, \"x\"]", CFG, NULL},
    {"clip_sample", "\"yes\"", CFG, NULL},
    {"clip_sample_range", "\"x\"", CFG, NULL},
    {"prediction_type", "\"noise\"", CFG, NULL},
    {"prediction_type", "3", CFG, NULL},
    {"thresholding", "\"x\"", CFG, NULL},
    {"sample_max_value", "\"x\"", CFG, NULL},
    {"timestep_spacing", "\"karras\"", CFG, NULL},
    {"steps_offset", "0.5", CFG, NULL},
    {"rescale_betas_zero_snr", "\"x\"", CFG, NULL},
    {"variance_type", "\"fixed_medium\"", CFG, NULL},
    {"variance_type", "3", CFG, NULL},
};
static const row k_sched_ddpm_thr[] = {
    {"dynamic_thresholding_ratio", "1.5", CFG, NULL},
    {"dynamic_thresholding_ratio", "-0.1", CFG, NULL},
};
static const row k_sched_ddim[] = {
    {"beta_schedule", "\"sigmoid\"", CFG, NULL}, /* DDPMScheduler only */
    {"set_alpha_to_one", "\"x\"", CFG, NULL},
    {"prediction_type", "\"flow_prediction\"", CFG, NULL},
};
static const row k_sched_pndm[] = {
    {"prediction_type", "\"sample\"", CFG, NULL},
    {"skip_prk_steps", "\"x\"", CFG, NULL},
};
static const row k_sched_euler[] = {
    {"interpolation_type", "\"cubic\"", CFG, NULL},
    {"final_sigmas_type", "\"max\"", CFG, NULL},
    {"use_beta_sigmas", "true", UNS, NULL},
    {"use_karras_sigmas", "\"x\"", CFG, NULL},
    {"sigma_min", "\"x\"", CFG, NULL},
    {"timestep_type", "3", CFG, NULL},
};
static const row k_sched_euler_karras[] = {
    {"use_exponential_sigmas", "true", CFG, NULL},
};
static const row k_sched_dpm[] = {
    {"solver_order", "0", CFG, NULL},
    {"solver_order", "9", CFG, NULL},
    {"algorithm_type", "\"foo\"", CFG, NULL},
    {"solver_type", "\"foo\"", CFG, NULL},
    {"lower_order_final", "\"x\"", CFG, NULL},
    {"flow_shift", "\"x\"", CFG, NULL},
    {"lambda_min_clipped", "\"x\"", CFG, NULL},
    {"prediction_type", "\"original_sample\"", CFG, NULL},
};
static const row k_sched_dpm_plain[] = { /* algorithm_type dpmsolver, final_sigmas_type sigma_min */
    {"final_sigmas_type", "\"zero\"", CFG, NULL},
    {"prediction_type", "\"flow_prediction\"", CFG, NULL},
};
static const row k_sched_dpm_sde[] = { /* algorithm_type sde-dpmsolver */
    {"solver_order", "3", CFG, NULL},
};
static const row k_sched_unipc[] = { /* predict_x0 false */
    {"prediction_type", "\"flow_prediction\"", CFG, NULL},
    {"disable_corrector", "\"x\"", CFG, NULL},
    {"disable_corrector", "[1.5]", CFG, NULL},
    {"solver_p", "1", CFG, NULL},
    {"predict_x0", "\"x\"", CFG, NULL},
};
static const row k_sched_unclip[] = {
    {"beta_schedule", "\"linear\"", CFG, NULL},
    {"variance_type", "\"fixed_small\"", CFG, NULL},
    {"variance_type", "null", CFG, NULL},
    {"prediction_type", "\"v_prediction\"", CFG, NULL},
    {"clip_sample_range", "\"x\"", CFG, NULL},
    {"clip_sample", "[]", CFG, NULL},
};

/* ------------------------------------------------------- model_index.json */

static const row k_index_ddpm[] = {
    {"_class_name", DEL, CFG, NULL},
    {"_class_name", "3", CFG, NULL},
    {"_class_name", "\"FooPipeline\"", UNS, NULL},
    {"unet", "[\"diffusers\", \"UNet2DConditionModel\"]", UNS, NULL},
    {"unet", "null", MIS, NULL},
    {"unet", DEL, MIS, NULL},
    {"unet", "\"UNet2DModel\"", CFG, NULL},
    {"unet", "[\"diffusers\"]", CFG, NULL},
    {"unet", "[\"diffusers\", 3]", CFG, NULL},
    {"scheduler", "[\"diffusers\", \"PNDMScheduler\"]", UNS, NULL},
    {"scheduler", DEL, MIS, NULL},
};
static const row k_index_sd[] = {
    {"unet", "[\"diffusers\", \"UNet2DModel\"]", UNS, NULL},
    {"unet", "[null, null]", MIS, NULL},
    {"vae", "[\"diffusers\", \"AutoencoderTiny\"]", UNS, NULL},
    {"vae", DEL, MIS, NULL},
    {"text_encoder", "[\"transformers\", \"CLIPTextModelWithProjection\"]", UNS, NULL},
    {"text_encoder", "null", MIS, NULL},
    {"tokenizer", "[\"transformers\", \"T5Tokenizer\"]", UNS, NULL},
    {"tokenizer", "[\"transformers\", \"CLIPTokenizer\", \"x\"]", CFG, NULL},
    {"scheduler", DEL, MIS, NULL},
    {"scheduler", "{}", CFG, NULL},
    {"safety_checker", "\"x\"", CFG, NULL},
    {"feature_extractor", "[\"transformers\", 1]", CFG, NULL},
};
static const row k_index_unclip[] = {
    {"text_encoder", "[\"transformers\", \"CLIPTextModel\"]", UNS, NULL},
    {"tokenizer", "[\"transformers\", \"T5Tokenizer\"]", UNS, NULL},
    {"prior", "[\"diffusers\", \"PriorTransformerX\"]", UNS, NULL},
    {"prior", DEL, MIS, NULL},
    {"text_proj", "[\"unclip\", \"TextProj\"]", UNS, NULL},
    {"decoder", "[\"diffusers\", \"UNet2DModel\"]", UNS, NULL},
    {"super_res_first", "[\"diffusers\", \"UNet2DConditionModel\"]", UNS, NULL},
    {"super_res_last", "[\"diffusers\", \"UNet2DConditionModel\"]", UNS, NULL},
    {"prior_scheduler", "[\"diffusers\", \"DDPMScheduler\"]", UNS, NULL},
    {"decoder_scheduler", "[\"diffusers\", \"DDPMScheduler\"]", UNS, NULL},
    {"super_res_scheduler", "[\"diffusers\", \"DDPMScheduler\"]", UNS, NULL},
    {"super_res_scheduler", "null", MIS, NULL},
};

static const suite k_suites[] = {
    SUITE(K_UNET2D, CIFAR, NULL, k_unet2d),
    SUITE(K_UNET2D, CIFAR, "{\"norm_num_groups\": 1}", k_unet2d_g1),
    SUITE(K_UNETC, SD "/unet/config.json", NULL, k_unetc),
    SUITE(K_UNETC, SD "/unet/config.json", "{\"norm_num_groups\": 1}", k_unetc_g1),
    SUITE(K_UNETC, KARLO "/decoder/config.json", NULL, k_unetc_karlo),
    SUITE(K_VAE, SD "/vae/config.json", NULL, k_vae),
    SUITE(K_CLIP, SD "/text_encoder/config.json", NULL, k_clip),
    SUITE(K_CLIP, KARLO "/text_encoder/config.json", NULL, k_clip_proj),
    SUITE(K_PRIOR, KARLO "/prior/config.json", NULL, k_prior),
    SUITE(K_TEXT_PROJ, KARLO "/text_proj/config.json", NULL, k_text_proj),
    SUITE(K_TEXT_PROJ, KARLO "/text_proj/config.json", "{\"cross_attention_dim\": 65536}", k_text_proj_wide),
    SUITE(K_SCHED, DDPM_SCHED, NULL, k_sched_ddpm),
    SUITE(K_SCHED, DDPM_SCHED, "{\"thresholding\": true}", k_sched_ddpm_thr),
    SUITE(K_SCHED, DDPM_SCHED, "{\"_class_name\": \"DDIMScheduler\"}", k_sched_ddim),
    SUITE(K_SCHED, SD "/scheduler/scheduler_config.json", NULL, k_sched_pndm),
    SUITE(K_SCHED, SD "/scheduler/scheduler_config.json", "{\"_class_name\": \"EulerDiscreteScheduler\"}",
          k_sched_euler),
    SUITE(K_SCHED, SD "/scheduler/scheduler_config.json",
          "{\"_class_name\": \"EulerDiscreteScheduler\", \"use_karras_sigmas\": true}", k_sched_euler_karras),
    SUITE(K_SCHED, SD "/scheduler/scheduler_config.json", "{\"_class_name\": \"DPMSolverMultistepScheduler\"}",
          k_sched_dpm),
    SUITE(K_SCHED, SD "/scheduler/scheduler_config.json",
          "{\"_class_name\": \"DPMSolverMultistepScheduler\", \"algorithm_type\": \"dpmsolver\", "
          "\"final_sigmas_type\": \"sigma_min\"}",
          k_sched_dpm_plain),
    SUITE(K_SCHED, SD "/scheduler/scheduler_config.json",
          "{\"_class_name\": \"DPMSolverMultistepScheduler\", \"algorithm_type\": \"sde-dpmsolver\", "
          "\"final_sigmas_type\": \"sigma_min\"}",
          k_sched_dpm_sde),
    SUITE(K_SCHED, SD "/scheduler/scheduler_config.json",
          "{\"_class_name\": \"UniPCMultistepScheduler\", \"predict_x0\": false}", k_sched_unipc),
    SUITE(K_SCHED, KARLO "/prior_scheduler/scheduler_config.json", NULL, k_sched_unclip),
    SUITE(K_INDEX, "ddpm/models/tiny_cifar/model_index.json", NULL, k_index_ddpm),
    SUITE(K_INDEX, SD "/model_index.json", NULL, k_index_sd),
    SUITE(K_INDEX, KARLO "/model_index.json", NULL, k_index_unclip),
};

/* ------------------------------------------------------------------ driver */

/* JSON text to a value: cdf_json_parse reads Python's Infinity; "NaN" is a NaN number. */
static cJSON *value_of(const char *text) {
    if (strcmp(text, "NaN") == 0) return cJSON_CreateNumber(NAN);
    cJSON *v = NULL;
    cdf_error err = {0};
    if (cdf_json_parse(text, strlen(text), "row value", &v, &err)) fail_msg("row value %s: %s", text, err.msg);
    return v;
}

static void put(cJSON *obj, const char *key, cJSON *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    if (v) cJSON_AddItemToObject(obj, key, v);
}

/* The suite's config with `base` merged over it, then `field` set to `value` (DEL: removed; NULL field: as is). */
static cJSON *config_of(const suite *s, const char *field, const char *value) {
    char *text = tu_read_text(tu_data("%s", s->file));
    if (!text) fail_msg("cannot read %s", s->file);
    cJSON *root = NULL;
    cdf_error err = {0};
    if (cdf_json_parse(text, strlen(text), s->file, &root, &err)) fail_msg("%s", err.msg);
    free(text);
    if (s->base) {
        cJSON *b = value_of(s->base);
        while (b->child) {
            cJSON *it = cJSON_DetachItemViaPointer(b, b->child);
            put(root, it->string, it);
        }
        cJSON_Delete(b);
    }
    if (field) put(root, field, value ? value_of(value) : NULL);
    return root;
}

/* Every config type a parser fills; flags[] reads an int member through an offset. */
typedef union any_config {
    cdf_unet2d_config unet2d;
    cdf_unet2d_cond_config unetc;
    cdf_vae_config vae;
    cdf_clip_text_config clip;
    cdf_prior_config prior;
    cdf_text_proj_config text_proj;
} any_config;

/* A folder of links to the components beside `index` (its model_index.json is written per row). */
static char *link_pipeline(const char *index) {
    char src[4096];
    snprintf(src, sizeof src, "%s", tu_data("%s", index));
    *strrchr(src, '/') = 0;
    char *tmp = tu_tmpdir();
    assert_non_null(tmp);
    DIR *d = opendir(src);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "model_index.json") == 0) continue;
        char from[4400], to[4400];
        snprintf(from, sizeof from, "%s/%s", src, e->d_name);
        snprintf(to, sizeof to, "%s/%s", tmp, e->d_name);
        if (symlink(from, to) != 0) fail_msg("symlink %s", to);
    }
    closedir(d);
    return tmp;
}

/* Runs the suite's parser on root; `path` is the file name the parser reports (K_INDEX: the folder's index). */
static cdf_status parse(const suite *s, const cJSON *root, const char *path, const char *dir, any_config *out,
                        cdf_error *err) {
    switch (s->kind) {
    case K_UNET2D: return cdf_unet2d_config_parse(root, path, &out->unet2d, err);
    case K_UNETC: return cdf_unet2d_cond_config_parse(root, path, &out->unetc, err);
    case K_VAE: return cdf_vae_config_parse(root, path, &out->vae, err);
    case K_CLIP: return cdf_clip_text_config_parse(root, path, &out->clip, err);
    case K_PRIOR: return cdf_prior_config_parse(root, path, &out->prior, err);
    case K_TEXT_PROJ: return cdf_text_proj_config_parse(root, path, &out->text_proj, err);
    case K_SCHED: {
        cdf_sched_config c;
        cdf_status st = cdf_sched_config_parse(root, path, &c, err);
        cdf_sched_config_free(&c); /* zeroed on failure: harmless */
        return st;
    }
    case K_INDEX: {
        char *text = cJSON_Print(root);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        cJSON_free(text);
        cdf_pipeline *p = NULL;
        cdf_status st = cdf_pipeline_load(dir, NULL, &p, err);
        cdf_pipeline_free(p);
        return st;
    }
    case K_N: break;
    }
    return CDF_ERR_ARG;
}

/* Every suite of `kind`: the unpatched config parses; every row fails as it says.  Returns the rows run. */
static size_t run_kind(parser_kind kind) {
    size_t rows = 0;
    for (size_t si = 0; si < sizeof k_suites / sizeof k_suites[0]; si++) {
        const suite *s = &k_suites[si];
        if (s->kind != kind) continue;
        assert_true(s->n > 0);
        char *dir = kind == K_INDEX ? link_pipeline(s->file) : NULL;
        char path[4400];
        snprintf(path, sizeof path, "%s", dir ? dir : s->file);
        if (dir) strcat(path, "/model_index.json");
        any_config cfg;
        cdf_error err = {0};
        cJSON *root = config_of(s, NULL, NULL);
        if (parse(s, root, path, dir, &cfg, &err) != CDF_OK)
            fail_msg("%s (base %s) does not parse: %s", s->file, s->base ? s->base : "-", err.msg);
        cJSON_Delete(root);
        for (size_t i = 0; i < s->n; i++) {
            const row *r = &s->rows[i];
            const char *needle = r->needle ? r->needle : r->field;
            root = config_of(s, r->field, r->value);
            memset(&err, 0, sizeof err);
            cdf_status st = parse(s, root, path, dir, &cfg, &err);
            cJSON_Delete(root);
            if (st != r->want)
                fail_msg("%s: %s = %s: status %s, want %s (%s)", s->file, r->field, r->value ? r->value : "(removed)",
                         cdf_status_name(st), cdf_status_name(r->want), st ? err.msg : "parsed");
            if (!strstr(err.msg, path) || !strstr(err.msg, needle))
                fail_msg("%s: %s = %s: message '%s' does not name the file and '%s'", s->file, r->field,
                         r->value ? r->value : "(removed)", err.msg, needle);
            rows++;
        }
        if (dir) {
            tu_rmtree(dir);
            free(dir);
        }
    }
    printf("%s: %zu rows\n", k_kind_names[kind], rows);
    return rows;
}

#define KIND_TEST(name, kind)                 \
    static void name(void **state) {          \
        (void)state;                          \
        assert_true(run_kind(kind) > 0);      \
    }
KIND_TEST(unet2d_fields, K_UNET2D)
KIND_TEST(unet2d_cond_fields, K_UNETC)
KIND_TEST(vae_fields, K_VAE)
KIND_TEST(clip_text_fields, K_CLIP)
KIND_TEST(prior_fields, K_PRIOR)
KIND_TEST(text_proj_fields, K_TEXT_PROJ)
KIND_TEST(scheduler_fields, K_SCHED)
KIND_TEST(model_index_fields, K_INDEX)

/* A null bool is Python's False (diffusers tests `if x`), not the class default True. */
static void null_bools_are_false(void **state) {
    (void)state;
    static const struct {
        suite s;
        const char *field;
        size_t off;
    } flags[] = {
        {{K_UNET2D, CIFAR, NULL, NULL, 0}, "add_attention", offsetof(cdf_unet2d_config, add_attention)},
        {{K_UNET2D, KARLO "/super_res_first/config.json", NULL, NULL, 0}, "flip_sin_to_cos",
         offsetof(cdf_unet2d_config, flip_sin_to_cos)},
        {{K_UNETC, SD "/unet/config.json", NULL, NULL, 0}, "flip_sin_to_cos",
         offsetof(cdf_unet2d_cond_config, flip_sin_to_cos)},
        {{K_VAE, SD "/vae/config.json", NULL, NULL, 0}, "use_quant_conv", offsetof(cdf_vae_config, use_quant_conv)},
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        any_config cfg;
        cdf_error err = {0};
        for (int null = 0; null < 2; null++) {
            cJSON *root = config_of(&flags[i].s, null ? flags[i].field : NULL, "null");
            if (parse(&flags[i].s, root, flags[i].s.file, NULL, &cfg, &err)) fail_msg("%s", err.msg);
            cJSON_Delete(root);
            int v = *(const int *)((const char *)&cfg + flags[i].off);
            if (v != !null)
                fail_msg("%s: %s is %d with %s", flags[i].s.file, flags[i].field, v, null ? "null" : "the file's value");
        }
    }
}

/* A field the file leaves out takes the class default: CLIPTextConfig.hidden_act is
 * "quick_gelu" (not the "gelu" of newer CLIP-like configs). */
static void absent_fields_take_class_defaults(void **state) {
    (void)state;
    suite s = {K_CLIP, SD "/text_encoder/config.json", NULL, NULL, 0};
    any_config cfg;
    cdf_error err = {0};
    static const struct {
        const char *value; /* NULL: removed */
        cdf_ffn_act want;
    } rows[] = {{NULL, CDF_FFN_QUICK_GELU}, {"\"gelu\"", CDF_FFN_GELU}, {"\"quick_gelu\"", CDF_FFN_QUICK_GELU}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cJSON *root = config_of(&s, "hidden_act", rows[i].value);
        if (parse(&s, root, s.file, NULL, &cfg, &err)) fail_msg("%s", err.msg);
        cJSON_Delete(root);
        if (cfg.clip.hidden_act != rows[i].want)
            fail_msg("hidden_act %s: parsed as %d, want %d", rows[i].value ? rows[i].value : "absent",
                     (int)cfg.clip.hidden_act, (int)rows[i].want);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(absent_fields_take_class_defaults),
        cmocka_unit_test(unet2d_fields),    cmocka_unit_test(unet2d_cond_fields), cmocka_unit_test(vae_fields),
        cmocka_unit_test(clip_text_fields), cmocka_unit_test(prior_fields),       cmocka_unit_test(text_proj_fields),
        cmocka_unit_test(scheduler_fields), cmocka_unit_test(model_index_fields),
        cmocka_unit_test(null_bools_are_false),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
