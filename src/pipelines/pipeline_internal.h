/* What the pipeline front (pipeline.c) and the pipeline families share.
 *
 * A family is one file and one table entry (cdf_pipeline_family): the
 * model_index.json classes it accepts, and load / run / free / weights hash /
 * default size / batch size over its own private state, which the front keeps
 * behind one pointer and never looks into.  Steps several families take
 * (scheduler configs, the noise draw, prompt tokenizing and checks,
 * classifier-free guidance, the output) are the shared helpers below. */
#ifndef CDF_PIPELINES_INTERNAL_H
#define CDF_PIPELINES_INTERNAL_H

#include <cjson/cJSON.h>

#include "cdiffusers/pipeline.h"
#include "schedulers/scheduler.h"

typedef struct cdf_clip_tokenizer cdf_clip_tokenizer;
typedef struct cdf_vae cdf_vae;
typedef struct cdf_exec cdf_exec;
typedef struct cdf_pipeline_family cdf_pipeline_family;

struct cdf_pipeline {
    const cdf_pipeline_family *family;
    cdf_pipeline_kind kind;       /* resolved kind */
    char class_name[64];          /* "DDPMPipeline", "StableDiffusionPipeline", "UnCLIPPipeline", ... */
    char sched_name[64];          /* the scheduler class the run uses */
    char *sched_json;             /* its config as JSON text (owned) */
    void *state;                  /* the family's own: models, configs (read-only after load) */
    cdf_error err;                /* last error of a call on this handle */
};

/* One model_index.json class a family runs, and the kind it resolves to. */
typedef struct cdf_pipeline_class {
    const char *name;             /* "DDIMPipeline" */
    cdf_pipeline_kind kind;
} cdf_pipeline_class;

struct cdf_pipeline_family {
    const char *name;                       /* for messages: "Stable Diffusion" */
    const cdf_pipeline_class *classes;      /* [n_classes] */
    int n_classes;
    /* Loads the family's components from dir into p->state and fills
     * p->sched_name / p->sched_json.  On failure p->state may hold a partial
     * state: the front calls free on it. */
    cdf_status (*load)(cdf_pipeline *p, const char *dir, const cJSON *idx, const char *idx_path, const char *variant,
                       cdf_error *err);
    /* One generate call: gens already checked non-NULL (ngens >= 1). */
    cdf_status (*run)(cdf_pipeline *p, const cdf_generate_options *o, cdf_generator *const *gens, size_t ngens,
                      cdf_tensor *images, cdf_error *err);
    void (*free)(void *state);              /* NULL is fine */
    /* Folds every component's weights into h (names, dtypes, shapes, bytes). */
    uint64_t (*weights_hash)(const void *state, uint64_t h);
    /* Default output image height, width and channels. */
    void (*default_size)(const void *state, int *h, int *w, int *c);
    /* Images a call with o makes. */
    int (*batch_size)(const cdf_generate_options *o);
};

extern const cdf_pipeline_family cdf_family_unet2d;  /* unet2d_pipeline.c: DDPMPipeline, DDIMPipeline */
extern const cdf_pipeline_family cdf_family_sd;      /* sd_pipeline.c: StableDiffusionPipeline */
extern const cdf_pipeline_family cdf_family_unclip;  /* unclip_pipeline.c: UnCLIPPipeline */

/* Size limits of one generate call (CDF_ERR_LIMIT past them): images per
 * call, and pixels per image (16384 x 16384, as CDF_PNG_MAX_PIXELS), so no
 * config value or option can make a run's buffers overflow an index or ask
 * for terabytes. */
#define CDF_PIPE_MAX_BATCH 65536
#define CDF_PIPE_MAX_PIXELS ((int64_t)1 << 28)

/* ["library", "Class"] entry of model_index.json; NULL class when the entry is null/absent. */
cdf_status cdf_index_component(const cJSON *idx, const char *path, const char *key, int required, const char **cls,
                               cdf_error *err);
/* The model_index.json entry `key` must be present (required) with one of
 * the classes in ok (NULL-terminated); error names the file, key and class. */
cdf_status cdf_index_expect(const cJSON *idx, const char *path, const char *key, const char *const *ok,
                            cdf_error *err);
/* Loads <dir>/<sub>/scheduler_config.json into *cfg (caller frees with
 * cdf_sched_config_free, also on failure); convert >= 0 converts it to that
 * class (DDIMScheduler.from_config).  *json (may be NULL): its config as JSON
 * text, caller-owned (cdf_free). */
cdf_status cdf_pipeline_load_scheduler(const char *dir, const char *sub, int convert, cdf_sched_config *cfg,
                                       char **json, cdf_error *err);
/* The run's scheduler, with `steps` timesteps set: cfg, or o->scheduler_config
 * when the caller gave one.  swap (Stable
 * Diffusion): cfg converted to o->scheduler, o->use_karras_sigmas applied,
 * and steps taken without prev_timestep as StableDiffusionPipeline calls
 * step().  Caller owns *out (cdf_scheduler_free). */
cdf_status cdf_pipeline_make_scheduler(const cdf_sched_config *cfg, const cdf_generate_options *o, int swap, int steps,
                                       cdf_scheduler **out, cdf_error *err);

/* The initial/step noise draw: out [batch, c, h, w] float32, randn_tensor's
 * semantics (one generator: one draw of the whole shape; one per image:
 * (1, c, h, w) each). */
cdf_status cdf_pipeline_draw(cdf_generator *const *gens, size_t ngens, int batch, int c, int h, int w, float *out,
                             cdf_error *err);
/* The output tensor from a final sample [batch, c, h, w] in [-1, 1]. */
cdf_status cdf_pipeline_make_output(const cdf_generate_options *o, const float *sample, int batch, int c, int h,
                                    int w, cdf_tensor *images, cdf_error *err);
/* Calls o->on_step (if any); CDF_ERR_INTERRUPTED when it asks to stop. */
cdf_status cdf_pipeline_report_step(const cdf_generate_options *o, const cdf_step_info *si, cdf_error *err);

/* Prompt-driven families (SD, UnCLIP): num_prompts * num_images_per_prompt,
 * saturating at INT_MAX (the run refuses it). */
int cdf_pipeline_prompt_batch(const cdf_generate_options *o);
/* Checks the prompt list, negative prompts, num_images_per_prompt, the batch
 * limit and the generator count (1 or one per image) of a prompt-driven run. */
cdf_status cdf_pipeline_check_prompts(const cdf_generate_options *o, size_t ngens, cdf_error *err);
/* Token ids [n, max_length] of n texts; with warn, a notice for each
 * truncated prompt as diffusers prints it.  lens (may be NULL): [n] tokens
 * the tokenizer's attention mask covers (bos, content, eos). */
cdf_status cdf_pipeline_tokenize(const cdf_clip_tokenizer *tok, const char *const *texts, int n, int warn, int64_t *ids,
                                 int *lens, cdf_error *err);
/* Classifier-free guidance over `total` images of `per` elements each:
 * out[b] = u + g (c - u) with u = rows[b], c = rows[total + b] (rows are
 * [uncond; cond]), in float32 as torch computes it.  rows_stride is the
 * element distance between two rows (>= per: a model output whose first
 * `per` elements per image are guided, e.g. UnCLIP's eps channels). */
void cdf_pipeline_cfg(const float *rows, int total, size_t per, size_t rows_stride, float g, float *out,
                      size_t out_stride);

/* Stable Diffusion image-to-image (sd_image.c).  A picture option (uint8
 * [H, W, 3]) checked: H and W multiples of 8 (diffusers would resize), the
 * pixel limit; `what` names the option in messages. */
cdf_status cdf_sd_picture_dims(const cdf_tensor *img, const char *what, int *H, int *W, cdf_error *err);
/* The picture as the VAE takes it: x [1, 3, H, W] = 2 * float32(v / 255) - 1,
 * as diffusers' VaeImageProcessor computes it (no resize). */
void cdf_sd_picture_to_input(const cdf_tensor *img, float *x);
/* scaling_factor * vae.encode(x).latent_dist.sample(gens[r]) for r < rows:
 * latents [rows, latent_channels, H/f, W/f]; x [1, 3, H, W] is encoded once
 * (each row's moments are the same), each row draws (1, lc, h, w) from its
 * generator in order (a handle may repeat); std = exp(0.5 * clamp(logvar,
 * -30, 20)) with torch's float32 exp. */
/* mask_image checked: uint8 [H, W] or [H, W, 1], the picture's size. */
cdf_status cdf_sd_mask_check(const cdf_tensor *mask, int H, int W, cdf_error *err);
/* diffusers' inpainting mask rules: masked [1, 3, H, W] = pic * (binarized
 * mask < 0.5), the binarized mask being float32(v / 255) >= 0.5; mask_latent
 * [H/f, W/f] = the binarized mask at (f y, f x) (nearest interpolation). */
void cdf_sd_mask_prepare(const cdf_tensor *mask, const float *pic, int H, int W, int f, float *masked,
                         float *mask_latent);
cdf_status cdf_sd_encode_sample(cdf_exec *ex, const cdf_vae *vae, const float *x, int H, int W,
                                cdf_generator *const *gens, int rows, float *latents, cdf_error *err);

#endif
