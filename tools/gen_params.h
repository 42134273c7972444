/* The generation parameters of one run: filled from the command line
 * (generate) or from a PNG's "parameters" chunk (regenerate), turned into
 * library options, and written back as JSON into the PNG. */
#ifndef CDF_TOOLS_GEN_PARAMS_H
#define CDF_TOOLS_GEN_PARAMS_H

#include <cjson/cJSON.h>

#include "cli.h"

#define GP_MAX_LIST 256

enum {
    GP_SET_STEPS = 1u << 0, GP_SET_ETA = 1u << 1, GP_SET_BATCH = 1u << 2, GP_SET_NIPP = 1u << 3,
    GP_SET_GUIDANCE = 1u << 4, GP_SET_RESCALE = 1u << 5, GP_SET_HEIGHT = 1u << 6, GP_SET_WIDTH = 1u << 7,
    GP_SET_CLIP_SKIP = 1u << 8, GP_SET_SCHEDULER = 1u << 9, GP_SET_KARRAS = 1u << 10, GP_SET_VARIANT = 1u << 11,
    GP_SET_PIPELINE = 1u << 12, GP_SET_RNG = 1u << 13, GP_SET_PRIOR_STEPS = 1u << 14,
    GP_SET_DECODER_STEPS = 1u << 15, GP_SET_SUPER_RES_STEPS = 1u << 16, GP_SET_PRIOR_GUIDANCE = 1u << 17,
    GP_SET_DECODER_GUIDANCE = 1u << 18, GP_SET_PRECISION = 1u << 19, GP_SET_INIT_IMAGE = 1u << 20,
    GP_SET_STRENGTH = 1u << 21, GP_SET_MASK_IMAGE = 1u << 22, GP_SET_ORIGINAL_SIZE = 1u << 23,
    GP_SET_TARGET_SIZE = 1u << 24, GP_SET_CROPS = 1u << 25
};

typedef struct gen_params {
    const char *model;              /* MODEL_DIR */
    const char *variant;            /* weight variant or NULL */
    cdf_pipeline_kind pipeline;     /* requested pipeline (AUTO: model_index.json) */
    int steps;                      /* 0: pipeline default */
    double eta;
    int batch_size;                 /* DDPM/DDIM */
    const char *prompts[GP_MAX_LIST];
    int nprompts;
    const char *negatives[GP_MAX_LIST];
    int nnegatives;
    const char *prompts_2[GP_MAX_LIST];     /* SDXL: --prompt-2 */
    int nprompts_2;
    const char *negatives_2[GP_MAX_LIST];   /* SDXL: --negative-prompt-2 */
    int nnegatives_2;
    int original_size[2], target_size[2], crops[2]; /* SDXL micro-conditioning; {0, 0}: defaults */
    int nipp;                       /* num_images_per_prompt */
    double guidance, guidance_rescale;
    int height, width, clip_skip;
    const char *scheduler;          /* NULL: the folder's */
    int karras;                     /* -1 as configured, 0/1 */
    int prior_steps, decoder_steps, super_res_steps; /* UnCLIP; 0: 25, 25, 7 */
    double prior_guidance, decoder_guidance;         /* UnCLIP; 4.0, 8.0 */
    const char *dump_dir;           /* UnCLIP: every stage's intermediates as DIR/NAME.npy; NULL: none */
    const char *init_image;         /* SD image-to-image: the 8-bit RGB PNG to start from; NULL: text-to-image */
    double strength;                /* image-to-image; < 0: diffusers' default 0.8 */
    const char *mask_image;         /* inpainting: the mask PNG (white repaints); NULL: none */
    char init_sha[65];              /* the picture file's SHA-256 once run_generation read it */
    char mask_sha[65];              /* the mask file's */
    const char *recorded_init_sha;  /* regenerate: the SHA-256 the PNG recorded, or NULL */
    const char *recorded_mask_sha;
    const char *png_dir;            /* regenerate: the PNG's folder, where recorded pictures are looked for */
    const char *seeds[GP_MAX_LIST];
    int nseeds;
    cli_rng rng;                    /* --rng / --gpu */
    int threads;
    cdf_precision precision;        /* --precision (default fp32) */
    unsigned set;                   /* GP_SET_* bits: options given on the command line */
    cJSON *owned;                   /* strings parsed from JSON point into this */
} gen_params;

/* Defaults of diffusers' pipelines (guidance 7.5, one image per prompt...). */
void gp_init(gen_params *p);
void gp_free(gen_params *p);
/* 0: name (without "--") is not a generation option; 1: a flag (--karras,
 * --no-karras); 2: an option with a value. */
int gp_option_kind(const char *name);
/* Sets option name to value v (NULL for a flag; p keeps the pointer):
 * 1 done, 0 not a generation option, -1 a bad value (message in e). */
int gp_set(gen_params *p, const char *name, const char *v, cli_err *e);
/* Takes the current option of a if it is a generation option (exits on a
 * bad value); returns 0 when the option is not one. */
int gp_option(gen_params *p, cli_args *a);
/* The options help text shared by generate and regenerate. */
const char *gp_help(void);
/* Library options from p (pointers into p). */
void gp_to_options(const gen_params *p, cdf_generate_options *o);
/* Copies into dst every option given on src's command line (src->set and
 * non-empty lists): regenerate's overrides of the recorded parameters. */
void gp_override(gen_params *dst, const gen_params *src);
/* JSON for the PNG: p plus what the run resolved (pipeline, scheduler and
 * its config, size, seeds used, weights hash).  The caller owns the object
 * (cJSON_Delete); NULL when out of memory. */
cJSON *gp_to_json(const gen_params *p, const cdf_pipeline *pipe, const cdf_generate_options *o, int height, int width,
                 const char *os_seed, const char *weights_hash);
/* Fills p from such JSON; 0 on success, else a message in err. */
int gp_from_json(gen_params *p, const char *json, char *err, size_t errlen);

#endif
