/* Pipelines as diffusers 0.32 runs them, with mindone's numpy-Generator
 * noise: DDPMPipeline, DDIMPipeline and PNDMPipeline on UNet2DModel folders,
 * StableDiffusionPipeline (SD 1.x / 2.x) for text-to-image, image-to-image
 * (StableDiffusionImg2ImgPipeline) and inpainting
 * (StableDiffusionInpaintPipeline), and UnCLIPPipeline (Karlo: prior,
 * decoder, two super-resolution UNets). */
#ifndef CDIFFUSERS_PIPELINE_H
#define CDIFFUSERS_PIPELINE_H

#include "cdiffusers/core.h"
#include "cdiffusers/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cdf_pipeline_kind {
    CDF_PIPELINE_AUTO = 0, /* model_index.json's _class_name */
    CDF_PIPELINE_DDPM = 1, /* DDPMPipeline: the folder's scheduler as it is */
    CDF_PIPELINE_DDIM = 2, /* DDIMPipeline: DDIMScheduler.from_config(folder's scheduler) */
    CDF_PIPELINE_SD = 3,   /* StableDiffusionPipeline */
    CDF_PIPELINE_UNCLIP = 4, /* UnCLIPPipeline */
    CDF_PIPELINE_PNDM = 5  /* PNDMPipeline: PNDMScheduler.from_config(folder's scheduler) on a UNet2DModel */
} cdf_pipeline_kind;

typedef enum cdf_output_type {
    CDF_OUTPUT_NP = 0,     /* float32 [batch, height, width, channels] in [0, 1] (output_type="np") */
    CDF_OUTPUT_PIL = 1,    /* uint8 [batch, height, width, channels], as numpy_to_pil rounds */
    CDF_OUTPUT_SAMPLE = 2  /* float32 [batch, channels, height, width]: the final sample (SD: the latents,
                              output_type="latent"), not post-processed */
} cdf_output_type;

typedef struct cdf_pipeline cdf_pipeline;

/* A cache of text-encoder results the caller owns and passes to generate
 * calls (cdf_generate_options.text_cache), so a prompt already encoded is not
 * encoded again: Stable Diffusion 1.x / 2.x (each prompt row's encoder output,
 * keyed by clip_skip and precision) and Stable Diffusion XL (each encoder's hidden states
 * and text_encoder_2's pooled embeds); UnCLIP does not use it.  Images are
 * bit-identical with and without it.  Entries belong to the loaded pipeline
 * that made them (one cache may serve several pipelines; a pipeline loaded
 * later never sees another load's entries, even at the same address).
 * Prompts are still tokenized on every call (truncation notices as without a
 * cache).  Not thread-safe: one cache must not be used by two calls at the
 * same time (one per thread, or a lock around the calls). */
typedef struct cdf_text_cache cdf_text_cache;
/* max_bytes: the most memory the cached embeddings may hold (least recently
 * used entries leave first; an entry counts its floats, its prompt text and
 * its bookkeeping; the index is extra); 0: a default of 256 MiB.  Caller owns
 * *out (cdf_text_cache_free). */
cdf_status cdf_text_cache_new(size_t max_bytes, cdf_text_cache **out, cdf_error *err);
/* Frees c and every entry (NULL is fine); no pipeline keeps a reference to it. */
void cdf_text_cache_free(cdf_text_cache *c);
/* Hits and misses since creation (c borrowed; NULL gives 0, 0; either
 * pointer may be NULL): one per prompt row and encoder output looked up: an
 * SD call looks up each prompt, and under guidance each negative prompt; SDXL
 * three outputs per row (text_encoder's hidden states, text_encoder_2's hidden
 * states, its pooled embeds), none for negatives it zeroes.  A text missing
 * from the cache counts a miss for every row that has it, and is encoded
 * once. */
void cdf_text_cache_stats(const cdf_text_cache *c, uint64_t *hits, uint64_t *misses);

typedef struct cdf_load_options {
    cdf_pipeline_kind kind; /* CDF_PIPELINE_AUTO by default */
    const char *variant;    /* weight file variant such as "fp16", or NULL */
} cdf_load_options;

/* Loads a diffusers model folder (model_index.json, unet/, scheduler/).
 * opts may be NULL.  Caller owns *out (cdf_pipeline_free).  Notices (unknown
 * config keys) go to err->on_notice. */
cdf_status cdf_pipeline_load(const char *model_dir, const cdf_load_options *opts, cdf_pipeline **out,
                             cdf_error *err);
/* Frees p and its mapped weights (NULL is fine). */
void cdf_pipeline_free(cdf_pipeline *p);
/* The last error message of a call on p (static storage inside p). */
const char *cdf_pipeline_last_error(const cdf_pipeline *p);
/* Resolved kind, the pipeline class name and the scheduler class name
 * (UnCLIP: "UnCLIPScheduler", the class of its three schedulers). */
cdf_pipeline_kind cdf_pipeline_get_kind(const cdf_pipeline *p);
const char *cdf_pipeline_class_name(const cdf_pipeline *p);
const char *cdf_pipeline_scheduler_name(const cdf_pipeline *p);
/* JSON text of the effective scheduler config (owned by p).  UnCLIP: an
 * object {"prior_scheduler": {...}, "decoder_scheduler": {...},
 * "super_res_scheduler": {...}}. */
const char *cdf_pipeline_scheduler_json(const cdf_pipeline *p);
/* Default output image size (DDPM/DDIM: the UNet sample size; SD: sample
 * size times the VAE factor; UnCLIP: the super-resolution UNet's sample
 * size) and its channel count. */
void cdf_pipeline_sample_size(const cdf_pipeline *p, int *height, int *width, int *channels);

/* What every denoising step reports (and step -1 for the initial noise). */
typedef struct cdf_step_info {
    int step;                   /* -1: the initial noise as drawn (before init_noise_sigma); 0..num_steps-1:
                                   after each scheduler.step */
    int num_steps;
    int64_t timestep;
    const float *latents;       /* step -1: the initial noise; else prev_sample [batch, c, h, w] */
    const float *model_out;     /* what the scheduler stepped with: the UNet output [batch, model_channels,
                                   h, w] (SD: after classifier-free guidance); NULL at step -1 */
    const float *variance_noise;/* the step's noise draw, or NULL */
    int batch, channels, model_channels, height, width;
    int stage;                  /* 0; UnCLIP: 0 prior (height = width = 1, channels = the embedding size),
                                   1 decoder, 2 super-resolution */
    int num_stages;             /* 1; UnCLIP 3 */
    const char *stage_name;     /* "denoising"; UnCLIP "prior", "decoder", "super-res" */
} cdf_step_info;
/* Return non-zero to stop the run (CDF_ERR_INTERRUPTED). */
typedef int (*cdf_step_fn)(const cdf_step_info *info, void *user);
/* A named intermediate of a run (UnCLIP: each stage's inputs and outputs,
 * see docs/UNCLIP.md), borrowed for the call only.  Return non-zero to stop
 * the run (CDF_ERR_INTERRUPTED). */
typedef int (*cdf_dump_fn)(const char *name, const cdf_tensor *t, void *user);

typedef struct cdf_generate_options {
    int batch_size;               /* >= 1 */
    int num_inference_steps;      /* 0: pipeline default (DDPM 1000, DDIM and PNDM 50) */
    double eta;                   /* DDIMPipeline and SD with DDIMScheduler (default 0.0); DDPMPipeline steps
                                     without it (eta 0), as diffusers' DDPMPipeline does */
    int use_clipped_model_output; /* DDIMPipeline: -1 None (default), 0 False, 1 True */
    int threads;                  /* 0: 1 thread */
    cdf_precision precision;      /* matrix-product arithmetic: CDF_PRECISION_FP32 (default) or _BF16 */
    cdf_output_type output_type;
    cdf_step_fn on_step;          /* optional */
    void *on_step_user;
    /* Stable Diffusion only (ignored by DDPM/DDIM; batch_size is then
     * num_prompts * num_images_per_prompt): */
    const char *const *prompts;   /* [num_prompts]: one prompt, or a list */
    size_t num_prompts;
    const char *const *negative_prompts; /* NULL/0: "" each; else 1 (with one prompt) or num_prompts */
    size_t num_negative_prompts;
    int num_images_per_prompt;    /* default 1 */
    double guidance_scale;        /* default 7.5; classifier-free guidance when > 1 */
    double guidance_rescale;      /* default 0.0 */
    int height, width;            /* 0: the UNet sample size times the VAE factor; multiples of 8 */
    int clip_skip;                /* 0: none */
    const char *scheduler;        /* NULL: the folder's; else a class or short name, made with from_config */
    int use_karras_sigmas;        /* -1: as configured; 0 or 1: override (from_config(..., use_karras_sigmas=)) */
    const char *scheduler_config; /* NULL: the folder's scheduler; else a scheduler config as JSON text (an object
                                     with "_class_name", such as cdf_scheduler_config_from makes) the run uses in
                                     its place: pipe.scheduler = X.from_config(...).  scheduler and
                                     use_karras_sigmas then apply to it.  DDPMPipeline and PNDMPipeline take
                                     DDPMScheduler, DDIMScheduler (stepped with eta 0) or PNDMScheduler,
                                     DDIMPipeline DDIMScheduler, SD every class; UnCLIP none. */
    /* UnCLIP only (prompts, num_images_per_prompt as for SD; guidance_scale,
     * num_inference_steps, height/width and the scheduler options do not apply): */
    int prior_num_inference_steps;     /* 0: 25; at least 2 */
    int decoder_num_inference_steps;   /* 0: 25; at least 2 */
    int super_res_num_inference_steps; /* 0: 7; at least 2 */
    double prior_guidance_scale;       /* default 4.0 */
    double decoder_guidance_scale;     /* default 8.0; guidance runs when either scale is > 1 */
    cdf_dump_fn on_dump;               /* optional: receives every stage's intermediates */
    void *on_dump_user;
    double *work_gflop;                /* optional: receives the call's matrix-product work in GFLOP
                                          (2*m*n*k summed over every GEMM and convolution), for benchmarks */
    /* Stable Diffusion image-to-image (StableDiffusionImg2ImgPipeline) when init_image is set: */
    const cdf_tensor *init_image; /* uint8 [H, W, 3] RGB (a PIL picture's layout), H and W multiples of 8: the
                                     picture the run starts from; the output has its size (height and width
                                     must be 0 or equal to it) */
    double strength;              /* how much of the schedule runs: init_timestep = min(int(N * strength), N)
                                     of the N steps; < 0: diffusers' default (0.8 img2img, 1.0 inpainting);
                                     else (0, 1] */
    /* ... and inpainting (StableDiffusionInpaintPipeline) when mask_image is set too: */
    const cdf_tensor *mask_image; /* uint8 [H, W] or [H, W, 1] (a PIL "L" picture), the init_image's size:
                                     values >= 128 are repainted, the rest kept.  A 9-channel inpainting UNet
                                     takes [latents, mask, masked-picture latents]; a regular 4-channel UNet
                                     blends the kept region back after every step */
    /* Stable Diffusion XL (StableDiffusionXLPipeline) only; its guidance default is 5.0, which the caller
     * sets (cdf_generate_options_init's 7.5 is SD's): */
    const char *const *prompts_2;          /* tokenizer_2 / text_encoder_2's prompts: NULL/0 the prompts; else 1
                                              (for every prompt) or num_prompts */
    size_t num_prompts_2;
    const char *const *negative_prompts_2; /* NULL/0: the negative prompts; else 1 or num_prompts */
    size_t num_negative_prompts_2;
    int original_size[2];                  /* (height, width) for the micro-conditioning; {0, 0}: the image's */
    int crops_coords_top_left[2];          /* (top, left); default {0, 0} */
    int target_size[2];                    /* (height, width); {0, 0}: the image's */
    cdf_text_cache *text_cache;            /* optional: borrowed for the call (SD and SDXL; UnCLIP ignores it); the
                                              call reads and adds entries (same bytes as without it) */
} cdf_generate_options;

/* SchedulerClass.from_config(config, **overrides) as diffusers computes it.
 * config_json: a scheduler config object with "_class_name" (keys of other
 * classes are kept, hidden, as diffusers keeps them); class_name: the class
 * made ("EulerDiscreteScheduler" or a short name such as "euler"; NULL: the
 * config's own class); keys[i] = values[i] (JSON text, such as "true" or
 * "\"trailing\"") set after the conversion, each one a parameter of that
 * class.  On success *out_json is the resulting config as JSON text (caller
 * frees it with cdf_free); errors name the field. */
cdf_status cdf_scheduler_config_from(const char *config_json, const char *class_name, const char *const *keys,
                                     const char *const *values, size_t n, char **out_json, cdf_error *err);

/* Defaults: batch 1, pipeline default steps, eta 0, threads 1, fp32, NP output, no init picture (strength -1),
 * SD: guidance 7.5, one image per prompt, folder scheduler; UnCLIP: prior
 * guidance 4.0, decoder guidance 8.0, steps 25/25/7. */
void cdf_generate_options_init(cdf_generate_options *o);

/* A hash of every weight tensor of the pipeline (names, dtypes, shapes and
 * bytes, in name order, component by component) as 16 hex digits in out
 * (at least 17 bytes): recorded in PNGs so regenerate can tell when weights
 * changed.  Reads all the weights once. */
cdf_status cdf_pipeline_weights_hash(const cdf_pipeline *p, char *out, cdf_error *err);

/* Images a call makes: batch_size, or for SD and UnCLIP num_prompts * num_images_per_prompt. */
int cdf_pipeline_batch_size(const cdf_pipeline *p, const cdf_generate_options *o);

/* Runs the pipeline.  gens: ngens == 1 one generator for the whole batch;
 * ngens == batch_size one per image (a handle may repeat: one stream used in
 * turn); ngens == 0 seeds one generator from the OS and writes its seed into
 * os_seed (at least 48 bytes; may be NULL otherwise).  The generators advance.
 * On success *images holds newly allocated data (free with cdf_tensor_free). */
cdf_status cdf_pipeline_generate(cdf_pipeline *p, const cdf_generate_options *o, cdf_generator *const *gens,
                                 size_t ngens, cdf_tensor *images, char *os_seed);

/* Frees t->data (allocated by the library) and clears t. */
void cdf_tensor_free(cdf_tensor *t);

/* numpy's np.abs(x).sum() for float32 x (pairwise summation, float32
 * accumulators), exactly as the reproducibility guide prints it. */
float cdf_abs_sum_f32(const float *x, size_t n);

#ifdef __cplusplus
}
#endif
#endif
