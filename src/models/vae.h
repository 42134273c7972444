/* AutoencoderKL (diffusers 0.32) as Stable Diffusion 1.x/2.x uses it:
 * Encoder (DownEncoderBlock2D stack, UNetMidBlock2D, conv_out to mean and
 * logvar), quant_conv, post_quant_conv and Decoder (UNetMidBlock2D,
 * UpDecoderBlock2D stack).  Weights are read-only mmap'd views; the model
 * holds no per-run state, so one loaded VAE can serve several runs.
 * Activations are float32 NCHW; images are processed one at a time, so an
 * image's result does not depend on the batch it is in, and peak memory is
 * that of one image. */
#ifndef CDF_MODELS_VAE_H
#define CDF_MODELS_VAE_H

#include <cjson/cJSON.h>

#include "models/nn.h"

#define CDF_VAE_MAX_BLOCKS 8

/* AutoencoderKL config.json, parsed strictly (diffusers' defaults for absent
 * keys, errors naming the field, notices for unknown keys). */
typedef struct cdf_vae_config {
    int in_channels, out_channels;  /* image channels (3, 3) */
    int num_blocks;                 /* len(block_out_channels) */
    int block_out_channels[CDF_VAE_MAX_BLOCKS];
    int layers_per_block;           /* encoder blocks have this many resnets, decoder blocks one more */
    int act_fn;                     /* cdf_act of the resnets (conv_act is always SiLU) */
    int latent_channels;
    int norm_num_groups;
    int sample_h, sample_w;         /* sample_size: int or [h, w] (tiling only; unused here) */
    double scaling_factor;
    int has_shift_factor;           /* shift_factor not null (SD3/Flux VAEs; SD pipelines ignore it) */
    double shift_factor;
    int has_latents_mean, has_latents_std; /* not null (SDXL-style pipelines; SD 1.x/2.x ignore them) */
    int force_upcast;               /* parsed; no effect: everything runs in float32 */
    int use_quant_conv, use_post_quant_conv;
    int mid_block_add_attention;
} cdf_vae_config;

/* Parses root (read from file `path`) into cfg.  CDF_ERR_CONFIG for bad or
 * inconsistent values, CDF_ERR_UNSUPPORTED for real diffusers values this
 * build does not run (other block types, other VAE classes); messages name
 * the file and field. */
cdf_status cdf_vae_config_parse(const cJSON *root, const char *path, cdf_vae_config *cfg, cdf_error *err);

typedef struct cdf_vae cdf_vae;

/* Loads a MODEL/vae-style folder `dir` (config.json + safetensors; variant
 * e.g. "fp16" or NULL).  Every checkpoint tensor must be used with its exact
 * shape (old query/key/value/proj_attn attention names are accepted).  Caller
 * owns *out and frees it with cdf_vae_free. */
cdf_status cdf_vae_load(const char *dir, const char *variant, cdf_vae **out, cdf_error *err);
/* The mapped weights (owned by m). */
const cdf_weights *cdf_vae_weights(const cdf_vae *m);
/* Frees m and unmaps its weights (NULL is fine). */
void cdf_vae_free(cdf_vae *m);

/* The parsed config; owned by m. */
const cdf_vae_config *cdf_vae_get_config(const cdf_vae *m);
/* config scaling_factor (0.18215 for SD 1.x). */
float cdf_vae_scaling_factor(const cdf_vae *m);
int cdf_vae_latent_channels(const cdf_vae *m);
/* 2 ** (len(block_out_channels) - 1): image pixels per latent pixel along each axis. */
int cdf_vae_scale_factor(const cdf_vae *m);
/* Channels of decoded images (config out_channels). */
int cdf_vae_out_channels(const cdf_vae *m);
/* Channels of images given to the encoder (config in_channels). */
int cdf_vae_in_channels(const cdf_vae *m);

/* vae.decode(z).sample.  z: [batch, latent_channels, h, w] (caller already
 * divided by scaling_factor; read only); out (caller's):
 * [batch, out_channels, h*f, w*f], f = cdf_vae_scale_factor: the raw decoder
 * output (about [-1, 1], not clamped).  Batch and thread-count invariant.
 * CDF_ERR_INTERRUPTED when ex->interrupt is set (checked between blocks). */
cdf_status cdf_vae_decode(cdf_exec *ex, const cdf_vae *m, const float *z, int batch, int h, int w, float *out);

/* The latent_dist parameters of vae.encode(x): encoder then quant_conv.
 * x: [batch, in_channels, H, W] (read only; images in [-1, 1]), H and W >= f;
 * moments (caller's): [batch, 2*latent_channels, H/f, W/f] (integer division,
 * as torch's strided convs floor), channels [0, lc) the mean, [lc, 2lc) the
 * logvar (not clamped).  Batch and thread-count invariant. */
cdf_status cdf_vae_encode(cdf_exec *ex, const cdf_vae *m, const float *x, int batch, int H, int W, float *moments);

/* Lists the state_dict of an AutoencoderKL with config cfg (every tensor name
 * and shape, in module order) through fn, without weights. */
cdf_status cdf_vae_describe(const cdf_vae_config *cfg, cdf_param_record_fn fn, void *user, cdf_error *err);

#endif
