/* What the pipeline front (pipeline.c) and the pipeline families
 * (unet2d_pipeline.c, sd_pipeline.c) share. */
#ifndef CDF_PIPELINES_INTERNAL_H
#define CDF_PIPELINES_INTERNAL_H

#include <cjson/cJSON.h>

#include "cdiffusers/pipeline.h"
#include "schedulers/scheduler.h"

typedef struct cdf_unet2d cdf_unet2d;
typedef struct cdf_unet2d_cond cdf_unet2d_cond;
typedef struct cdf_clip_text cdf_clip_text;
typedef struct cdf_clip_tokenizer cdf_clip_tokenizer;
typedef struct cdf_vae cdf_vae;

struct cdf_pipeline {
    cdf_pipeline_kind kind;       /* DDPM, DDIM or SD (resolved) */
    char class_name[64];          /* "DDPMPipeline", "DDIMPipeline", "StableDiffusionPipeline" */
    cdf_sched_config sched;       /* the folder's scheduler config (DDIM pipeline: converted) */
    char *sched_json;             /* its JSON text */
    cdf_unet2d *unet;             /* DDPM/DDIM */
    cdf_unet2d_cond *cunet;       /* SD */
    cdf_clip_text *text_encoder;  /* SD */
    cdf_clip_tokenizer *tokenizer;/* SD */
    cdf_vae *vae;                 /* SD */
    cdf_error err;                /* last error of a call on this handle */
};

/* Size limits of one generate call (CDF_ERR_LIMIT past them): images per
 * call, and pixels per image (16384 x 16384, as CDF_PNG_MAX_PIXELS), so no
 * config value or option can make a run's buffers overflow an index or ask
 * for terabytes. */
#define CDF_PIPE_MAX_BATCH 65536
#define CDF_PIPE_MAX_PIXELS ((int64_t)1 << 28)

/* ["library", "Class"] entry of model_index.json; NULL class when the entry is null/absent. */
cdf_status cdf_index_component(const cJSON *idx, const char *path, const char *key, int required, const char **cls,
                               cdf_error *err);
/* Loads <dir>/scheduler/scheduler_config.json into p->sched (and p->sched_json). */
cdf_status cdf_pipeline_load_scheduler(cdf_pipeline *p, const char *dir, cdf_error *err);

cdf_status cdf_unet2d_pipeline_load(cdf_pipeline *p, const char *dir, const cJSON *idx, const char *idx_path,
                                    const char *variant, cdf_error *err);
cdf_status cdf_unet2d_pipeline_run(cdf_pipeline *p, const cdf_generate_options *o, cdf_generator *const *gens,
                                   size_t ngens, cdf_tensor *images, cdf_error *err);
cdf_status cdf_sd_pipeline_load(cdf_pipeline *p, const char *dir, const cJSON *idx, const char *idx_path,
                                const char *variant, cdf_error *err);
cdf_status cdf_sd_pipeline_run(cdf_pipeline *p, const cdf_generate_options *o, cdf_generator *const *gens,
                               size_t ngens, cdf_tensor *images, cdf_error *err);
void cdf_sd_pipeline_unload(cdf_pipeline *p);
/* Folds the SD components' weights (unet, text_encoder, vae) into h. */
uint64_t cdf_sd_weights_hash(const cdf_pipeline *p, uint64_t h);
/* SD default image size (UNet sample size times the VAE factor) and channels. */
void cdf_sd_default_size(const cdf_pipeline *p, int *h, int *w, int *c);

/* Shared by both families: the initial/step noise draw, and the output tensor
 * from a final sample [batch, c, h, w] (already decoded for SD). */
cdf_status cdf_pipeline_draw(cdf_generator *const *gens, size_t ngens, int batch, int c, int h, int w, float *out,
                             cdf_error *err);
cdf_status cdf_pipeline_make_output(const cdf_generate_options *o, const float *sample, int batch, int c, int h,
                                    int w, cdf_tensor *images, cdf_error *err);
/* The run's scheduler: the folder's config, converted to o->scheduler and
 * with o->use_karras_sigmas applied, with timesteps set. */
cdf_status cdf_pipeline_make_scheduler(const cdf_pipeline *p, const cdf_generate_options *o, int steps,
                                       cdf_scheduler **out, cdf_error *err);

#endif
