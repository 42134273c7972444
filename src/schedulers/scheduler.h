/* DDPMScheduler and DDIMScheduler of diffusers 0.32.2: config parsing with
 * from_config semantics, the float32 schedule (betas / alphas_cumprod as torch
 * computes them), set_timesteps (numpy semantics) and scheduler.step (torch
 * float32 semantics, batch invariant).  The caller draws the variance noise. */
#ifndef CDF_SCHEDULERS_SCHEDULER_H
#define CDF_SCHEDULERS_SCHEDULER_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "cdiffusers/core.h"

typedef enum cdf_sched_kind { CDF_SCHED_DDPM = 0, CDF_SCHED_DDIM = 1 } cdf_sched_kind;

/* One bit per config field, set in cdf_sched_config.given when the field was
 * present in the source config (not a class default).  This is diffusers'
 * `_use_default_values` bookkeeping turned around. */
enum {
    CDF_SCHED_F_NUM_TRAIN_TIMESTEPS = 1u << 0,
    CDF_SCHED_F_BETA_START = 1u << 1,
    CDF_SCHED_F_BETA_END = 1u << 2,
    CDF_SCHED_F_BETA_SCHEDULE = 1u << 3,
    CDF_SCHED_F_TRAINED_BETAS = 1u << 4,
    CDF_SCHED_F_CLIP_SAMPLE = 1u << 5,
    CDF_SCHED_F_CLIP_SAMPLE_RANGE = 1u << 6,
    CDF_SCHED_F_SET_ALPHA_TO_ONE = 1u << 7,
    CDF_SCHED_F_STEPS_OFFSET = 1u << 8,
    CDF_SCHED_F_PREDICTION_TYPE = 1u << 9,
    CDF_SCHED_F_THRESHOLDING = 1u << 10,
    CDF_SCHED_F_DYNAMIC_THRESHOLDING_RATIO = 1u << 11,
    CDF_SCHED_F_SAMPLE_MAX_VALUE = 1u << 12,
    CDF_SCHED_F_TIMESTEP_SPACING = 1u << 13,
    CDF_SCHED_F_RESCALE_BETAS_ZERO_SNR = 1u << 14,
    CDF_SCHED_F_VARIANCE_TYPE = 1u << 15
};

/* Largest num_train_timesteps accepted (the schedule tables are allocated). */
#define CDF_SCHED_MAX_TRAIN_TIMESTEPS (1 << 24)

typedef struct cdf_sched_config {
    cdf_sched_kind kind;            /* from _class_name */
    int num_train_timesteps;        /* T >= 1 */
    double beta_start, beta_end;
    char beta_schedule[32];         /* linear, scaled_linear, squaredcos_cap_v2, sigmoid (DDPM only) */
    double *trained_betas;          /* [n_trained_betas], owned (cdf_malloc), NULL if none */
    size_t n_trained_betas;
    int clip_sample;                /* bool */
    double clip_sample_range;
    int set_alpha_to_one;           /* DDIM field; kept for DDPM only when given (bool) */
    int steps_offset;
    char prediction_type[32];       /* epsilon, sample, v_prediction */
    int thresholding;               /* bool */
    double dynamic_thresholding_ratio, sample_max_value;
    char timestep_spacing[32];      /* leading, trailing, linspace */
    int rescale_betas_zero_snr;     /* bool */
    char variance_type[32];         /* DDPM field: fixed_small, fixed_small_log, fixed_large, fixed_large_log,
                                       learned, learned_range; kept for DDIM only when given */
    uint32_t given;                 /* CDF_SCHED_F_* bits: fields present in the source config */
    cJSON *extra;                   /* owned object: other keys kept verbatim in the config as diffusers keeps
                                       them (other schedulers' keys, unknown keys); NULL if none */
} cdf_sched_config;

/* Fills cfg with the class defaults of `kind` (no field given, nothing owned). */
void cdf_sched_config_defaults(cdf_sched_config *cfg, cdf_sched_kind kind);

/* Parses scheduler_config.json (root already loaded; `path` names it in
 * messages) into *cfg, which the caller frees with cdf_sched_config_free; on
 * failure *cfg is left zeroed and owns nothing.  _class_name must be DDPMScheduler or DDIMScheduler
 * (others: CDF_ERR_UNSUPPORTED).  Missing fields take the class defaults;
 * keys listed in `_use_default_values` count as missing.  Invalid values are
 * CDF_ERR_CONFIG naming file, field and value.  Keys no compatible diffusers
 * scheduler knows raise a notice through err->on_notice. */
cdf_status cdf_sched_config_parse(const cJSON *root, const char *path, cdf_sched_config *cfg, cdf_error *err);

/* NewClass.from_config(old.config) in place: switches cfg->kind to `to`,
 * keeping every shared field, giving the new class's own fields that were not
 * given their defaults (DDIM: set_alpha_to_one true; DDPM: variance_type
 * fixed_small) and keeping given fields of the old class as hidden keys.
 * Validates the result for the new class (CDF_ERR_CONFIG: e.g. sigmoid for DDIM). */
cdf_status cdf_sched_config_convert(cdf_sched_config *cfg, cdf_sched_kind to, cdf_error *err);

/* Deep copy of src into *dst (caller frees dst with cdf_sched_config_free). */
cdf_status cdf_sched_config_copy(cdf_sched_config *dst, const cdf_sched_config *src, cdf_error *err);

/* Frees what cfg owns and zeroes it; safe on a zeroed or defaults-filled config. */
void cdf_sched_config_free(cdf_sched_config *cfg);

/* Checks cfg for its class (the same checks as parse); CDF_ERR_CONFIG names `path` and the field. */
cdf_status cdf_sched_config_validate(const cdf_sched_config *cfg, const char *path, cdf_error *err);

/* Static diffusers class name of a kind ("DDPMScheduler" / "DDIMScheduler"). */
const char *cdf_sched_kind_name(cdf_sched_kind kind);

/* Canonical JSON (one line) of the effective config, as diffusers' scheduler.config
 * without private keys but with "_class_name" first; returns a cdf_malloc'd
 * string the caller frees with cdf_free, or NULL when out of memory. */
char *cdf_sched_config_to_json(const cdf_sched_config *cfg);

typedef struct cdf_scheduler cdf_scheduler;

/* Builds the schedule of cfg (copied; cfg stays the caller's).  *out is owned
 * by the caller (cdf_scheduler_free).  Validates cfg like parse does. */
cdf_status cdf_scheduler_new(const cdf_sched_config *cfg, cdf_scheduler **out, cdf_error *err);
/* Frees s (NULL is fine). */
void cdf_scheduler_free(cdf_scheduler *s);

/* set_timesteps(n): CDF_ERR_ARG for n < 1, n > num_train_timesteps, or a
 * produced timestep that cannot index the schedule (steps_offset pushing it
 * past T-1: diffusers fails on the first step there).  Note: "trailing" can
 * give n+1 timesteps (numpy arange rounding), the last being -1, exactly as
 * diffusers does; always use cdf_scheduler_num_timesteps. */
cdf_status cdf_scheduler_set_timesteps(cdf_scheduler *s, int n, cdf_error *err);
/* Number of timesteps after set_timesteps (0 before). */
int cdf_scheduler_num_timesteps(const cdf_scheduler *s);
/* Timestep i (0 <= i < num_timesteps) as the int64 the UNet receives; INT64_MIN when i is out of range. */
int64_t cdf_scheduler_timestep(const cdf_scheduler *s, int i);
/* The standard deviation of the initial noise: 1.0 for both classes. */
float cdf_scheduler_init_noise_sigma(const cdf_scheduler *s);
/* The effective config (owned by s, valid while s lives). */
const cdf_sched_config *cdf_scheduler_config(const cdf_scheduler *s);
/* The float32 tables (owned by s): betas and alphas_cumprod, [num_train_timesteps] each. */
const float *cdf_scheduler_betas(const cdf_scheduler *s);
const float *cdf_scheduler_alphas_cumprod(const cdf_scheduler *s);

typedef struct cdf_sched_step_opts {
    double eta;                   /* DDIM: weight of the variance noise (pipeline default 0.0) */
    int use_clipped_model_output; /* DDIM; -1 = None (what the pipelines pass), 0 false, 1 true */
} cdf_sched_step_opts;

/* Whether step i draws variance noise (DDPM: t > 0; DDIM: eta > 0), so the
 * caller draws it (randn of the sample shape, from the pipeline's generators,
 * AFTER the UNet call of that step) before calling step.  o may be NULL
 * (eta 0).  0 when i is out of range. */
int cdf_scheduler_step_needs_noise(const cdf_scheduler *s, int i, const cdf_sched_step_opts *o);

/* One scheduler.step for timestep index i; buffers stay the caller's.
 * model_out: [batch, model_channels, spatial] float32 (model_channels ==
 * channels, or 2*channels for DDPM learned / learned_range, split like
 * diffusers); sample: [batch, channels, spatial] float32, updated in place to
 * prev_sample; noise: [batch, channels, spatial] or NULL when not needed.
 * Batch invariant: element k alone gives identical bits.  Errors: CDF_ERR_ARG
 * (no set_timesteps, i out of range, missing noise), CDF_ERR_SHAPE (model_channels),
 * CDF_ERR_NOMEM (thresholding scratch). */
cdf_status cdf_scheduler_step(cdf_scheduler *s, int i, const float *model_out, int model_channels, float *sample,
                              int batch, int channels, int64_t spatial, const float *noise,
                              const cdf_sched_step_opts *o, cdf_error *err);

#endif
