/* The diffusers 0.32.2 schedulers of the DDPM, Stable Diffusion and UnCLIP
 * pipelines: DDPMScheduler, DDIMScheduler, PNDMScheduler, EulerDiscreteScheduler,
 * EulerAncestralDiscreteScheduler, LMSDiscreteScheduler, HeunDiscreteScheduler,
 * DPMSolverMultistepScheduler, UniPCMultistepScheduler and UnCLIPScheduler.
 *
 * Config parsing with ConfigMixin semantics (class defaults, hidden keys of
 * other classes, `_use_default_values`, from_config conversion and overrides),
 * the float32 schedule tables as torch computes them, set_timesteps (numpy
 * semantics), scale_model_input and scheduler.step with torch float32
 * semantics (torch's SLEEF exp/log/expm1 and numpy's SIMD float32 log are
 * reproduced), batch invariant.  The caller draws all noise. */
#ifndef CDF_SCHEDULERS_SCHEDULER_H
#define CDF_SCHEDULERS_SCHEDULER_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "cdiffusers/core.h"

typedef enum cdf_sched_kind {
    CDF_SCHED_DDPM = 0,
    CDF_SCHED_DDIM = 1,
    CDF_SCHED_PNDM,
    CDF_SCHED_EULER,
    CDF_SCHED_EULER_ANCESTRAL,
    CDF_SCHED_LMS,
    CDF_SCHED_HEUN,
    CDF_SCHED_DPMSOLVER_MULTISTEP,
    CDF_SCHED_UNIPC_MULTISTEP,
    CDF_SCHED_UNCLIP
} cdf_sched_kind;
#define CDF_SCHED_N_KINDS 10

/* One bit per modelled config field, set in cdf_sched_config.given when the
 * field was present in the source config (not a class default) or set by an
 * override: diffusers' `_use_default_values` bookkeeping turned around. */
#define CDF_SCHED_F_NUM_TRAIN_TIMESTEPS (UINT64_C(1) << 0)
#define CDF_SCHED_F_BETA_START (UINT64_C(1) << 1)
#define CDF_SCHED_F_BETA_END (UINT64_C(1) << 2)
#define CDF_SCHED_F_BETA_SCHEDULE (UINT64_C(1) << 3)
#define CDF_SCHED_F_TRAINED_BETAS (UINT64_C(1) << 4)
#define CDF_SCHED_F_CLIP_SAMPLE (UINT64_C(1) << 5)
#define CDF_SCHED_F_CLIP_SAMPLE_RANGE (UINT64_C(1) << 6)
#define CDF_SCHED_F_SET_ALPHA_TO_ONE (UINT64_C(1) << 7)
#define CDF_SCHED_F_STEPS_OFFSET (UINT64_C(1) << 8)
#define CDF_SCHED_F_PREDICTION_TYPE (UINT64_C(1) << 9)
#define CDF_SCHED_F_THRESHOLDING (UINT64_C(1) << 10)
#define CDF_SCHED_F_DYNAMIC_THRESHOLDING_RATIO (UINT64_C(1) << 11)
#define CDF_SCHED_F_SAMPLE_MAX_VALUE (UINT64_C(1) << 12)
#define CDF_SCHED_F_TIMESTEP_SPACING (UINT64_C(1) << 13)
#define CDF_SCHED_F_RESCALE_BETAS_ZERO_SNR (UINT64_C(1) << 14)
#define CDF_SCHED_F_VARIANCE_TYPE (UINT64_C(1) << 15)
#define CDF_SCHED_F_SKIP_PRK_STEPS (UINT64_C(1) << 16)
#define CDF_SCHED_F_INTERPOLATION_TYPE (UINT64_C(1) << 17)
#define CDF_SCHED_F_USE_KARRAS_SIGMAS (UINT64_C(1) << 18)
#define CDF_SCHED_F_USE_EXPONENTIAL_SIGMAS (UINT64_C(1) << 19)
#define CDF_SCHED_F_USE_BETA_SIGMAS (UINT64_C(1) << 20)
#define CDF_SCHED_F_SIGMA_MIN (UINT64_C(1) << 21)
#define CDF_SCHED_F_SIGMA_MAX (UINT64_C(1) << 22)
#define CDF_SCHED_F_TIMESTEP_TYPE (UINT64_C(1) << 23)
#define CDF_SCHED_F_FINAL_SIGMAS_TYPE (UINT64_C(1) << 24)
#define CDF_SCHED_F_SOLVER_ORDER (UINT64_C(1) << 25)
#define CDF_SCHED_F_ALGORITHM_TYPE (UINT64_C(1) << 26)
#define CDF_SCHED_F_SOLVER_TYPE (UINT64_C(1) << 27)
#define CDF_SCHED_F_LOWER_ORDER_FINAL (UINT64_C(1) << 28)
#define CDF_SCHED_F_EULER_AT_FINAL (UINT64_C(1) << 29)
#define CDF_SCHED_F_USE_LU_LAMBDAS (UINT64_C(1) << 30)
#define CDF_SCHED_F_USE_FLOW_SIGMAS (UINT64_C(1) << 31)
#define CDF_SCHED_F_FLOW_SHIFT (UINT64_C(1) << 32)
#define CDF_SCHED_F_LAMBDA_MIN_CLIPPED (UINT64_C(1) << 33)
#define CDF_SCHED_F_PREDICT_X0 (UINT64_C(1) << 34)
#define CDF_SCHED_F_DISABLE_CORRECTOR (UINT64_C(1) << 35)
#define CDF_SCHED_F_SOLVER_P (UINT64_C(1) << 36)

/* Largest num_train_timesteps accepted (the schedule tables are allocated). */
#define CDF_SCHED_MAX_TRAIN_TIMESTEPS (1 << 24)
/* Largest solver_order accepted (multistep history buffers are allocated). */
#define CDF_SCHED_MAX_SOLVER_ORDER 8

/* Every field of the ten classes.  A class reads only its own __init__
 * fields (and, like diffusers' hasattr(config, ...), sigma_min / sigma_max
 * when another class left them in the config); the others are hidden keys
 * kept for later conversions. */
typedef struct cdf_sched_config {
    cdf_sched_kind kind;            /* from _class_name */
    int num_train_timesteps;        /* T >= 1 */
    double beta_start, beta_end;
    char beta_schedule[32];         /* linear, scaled_linear, squaredcos_cap_v2; sigmoid (DDPM); exp (Heun);
                                       UnCLIP: squaredcos_cap_v2 only */
    double *trained_betas;          /* [n_trained_betas], owned (cdf_malloc), NULL if none */
    size_t n_trained_betas;
    int clip_sample;                /* bool: DDPM, DDIM, Heun, UnCLIP */
    double clip_sample_range;
    int set_alpha_to_one;           /* bool: DDIM, PNDM */
    int steps_offset;
    char prediction_type[32];       /* epsilon, sample, v_prediction (+ original_sample: Euler; flow_prediction:
                                       DPM-Solver++, UniPC); UnCLIP: epsilon, sample */
    int thresholding;               /* bool: DDPM, DDIM, DPM, UniPC */
    double dynamic_thresholding_ratio, sample_max_value;
    char timestep_spacing[32];      /* leading, trailing, linspace */
    int rescale_betas_zero_snr;     /* bool: DDPM, DDIM, Euler, Euler a, DPM, UniPC */
    char variance_type[32];         /* DDPM: fixed_small, fixed_small_log, fixed_large, fixed_large_log, learned,
                                       learned_range; DPM: learned, learned_range or anything else; "" = None;
                                       UnCLIP: fixed_small_log, learned_range */
    int skip_prk_steps;             /* bool: PNDM */
    char interpolation_type[32];    /* Euler: linear, log_linear */
    int use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas; /* bools: Euler, LMS, Heun, DPM, UniPC */
    double sigma_min, sigma_max;    /* Euler (NAN = None) */
    char timestep_type[32];         /* Euler: discrete, continuous */
    char final_sigmas_type[32];     /* Euler, DPM, UniPC: zero, sigma_min */
    int solver_order;               /* DPM, UniPC: 1..CDF_SCHED_MAX_SOLVER_ORDER */
    char algorithm_type[32];        /* DPM: dpmsolver++, dpmsolver, sde-dpmsolver++, sde-dpmsolver */
    char solver_type[32];           /* DPM: midpoint, heun; UniPC: bh1, bh2 */
    int lower_order_final;          /* bool: DPM, UniPC */
    int euler_at_final;             /* bool: DPM */
    int use_lu_lambdas;             /* bool: DPM */
    int use_flow_sigmas;            /* bool: DPM, UniPC */
    double flow_shift;              /* DPM, UniPC */
    double lambda_min_clipped;      /* DPM (-INFINITY by default) */
    int predict_x0;                 /* bool: UniPC */
    int *disable_corrector;         /* UniPC: [n_disable_corrector] step indices, owned; NULL when empty */
    size_t n_disable_corrector;
    /* UniPC's solver_p: only None is supported (no field). */
    uint64_t given;                 /* CDF_SCHED_F_* bits: fields present in the source config */
    cJSON *extra;                   /* owned object: other keys kept verbatim in the config as diffusers keeps
                                       them (other schedulers' keys, unknown keys); NULL if none */
} cdf_sched_config;

/* Class name ("EulerAncestralDiscreteScheduler") or short name ("ddpm", "ddim",
 * "pndm", "euler", "euler-a", "lms", "heun", "dpm++2m" (also "dpmpp-2m"),
 * "unipc"; UnCLIPScheduler has no short name) -> kind; CDF_ERR_ARG listing
 * the valid names otherwise. */
cdf_status cdf_sched_kind_from_name(const char *name, cdf_sched_kind *out, cdf_error *err);
/* Static diffusers class name of a kind ("DDPMScheduler", ...; "?" for an invalid kind). */
const char *cdf_sched_kind_name(cdf_sched_kind kind);

/* Fills cfg with the class defaults of `kind` (no field given, nothing owned). */
void cdf_sched_config_defaults(cdf_sched_config *cfg, cdf_sched_kind kind);

/* Parses scheduler_config.json (root already loaded; `path` names it in
 * messages) into *cfg, which the caller frees with cdf_sched_config_free; on
 * failure *cfg is left zeroed and owns nothing.  _class_name must be one of the
 * ten classes (others: CDF_ERR_UNSUPPORTED).  Missing fields take the class
 * defaults; keys listed in `_use_default_values` count as missing.  Invalid
 * values are CDF_ERR_CONFIG naming file, field and value.  Keys no compatible
 * diffusers scheduler knows raise a notice through err->on_notice. */
cdf_status cdf_sched_config_parse(const cJSON *root, const char *path, cdf_sched_config *cfg, cdf_error *err);

/* NewClass.from_config(old.config) in place: switches cfg->kind to `to`,
 * keeping every given field, giving the new class's own fields that were not
 * given its defaults, and keeping the old class's given fields as hidden keys
 * (its defaulted ones disappear, as in diffusers).  The new class's __init__
 * normalisations apply (DPM: algorithm_type deis -> dpmsolver++, solver_type
 * bh1/bh2/logrho -> midpoint; UniPC: midpoint/heun/logrho -> bh2).  Validates
 * the source config for its class first (overrides are checked together
 * there), then the result for the new class (CDF_ERR_CONFIG naming the field);
 * cfg is unchanged on failure. */
cdf_status cdf_sched_config_convert(cdf_sched_config *cfg, cdf_sched_kind to, cdf_error *err);

/* Overrides one field as from_config(**overrides) would, e.g.
 * ("use_karras_sigmas", "true"): json_value is JSON text (-Infinity/Infinity
 * accepted for numbers).  CDF_ERR_ARG naming the field when the class has no
 * such __init__ parameter, CDF_ERR_CONFIG (CDF_ERR_UNSUPPORTED for
 * use_beta_sigmas) naming field and value when the value is bad on its own;
 * cfg is unchanged on failure.  Combinations of fields (e.g. algorithm_type
 * dpmsolver with final_sigmas_type zero) are checked when the config is used:
 * cdf_sched_config_convert / cdf_scheduler_new / cdf_sched_config_validate. */
cdf_status cdf_sched_config_set(cdf_sched_config *cfg, const char *field, const char *json_value, cdf_error *err);

/* Deep copy of src into *dst (caller frees dst with cdf_sched_config_free). */
cdf_status cdf_sched_config_copy(cdf_sched_config *dst, const cdf_sched_config *src, cdf_error *err);

/* Frees what cfg owns and zeroes it; safe on a zeroed or defaults-filled config. */
void cdf_sched_config_free(cdf_sched_config *cfg);

/* Checks cfg for its class (the same checks as parse, including combinations
 * of fields); CDF_ERR_CONFIG names `path` and the field. */
cdf_status cdf_sched_config_validate(const cdf_sched_config *cfg, const char *path, cdf_error *err);

/* Canonical JSON (one line) of the effective config, as diffusers' scheduler.config
 * without private keys but with "_class_name" first: the class's __init__ fields
 * in signature order, then hidden keys.  -inf is written -Infinity (Python's
 * json).  Returns a cdf_malloc'd string the caller frees with cdf_free, or NULL
 * when out of memory. */
char *cdf_sched_config_to_json(const cdf_sched_config *cfg);
/* The same; defaults_list 1 adds diffusers' "_use_default_values" after the
 * class's fields (the fields that hold class defaults, absent when none do),
 * so that a later conversion gives them the new class's defaults as
 * diffusers' from_config does. */
char *cdf_sched_config_to_json_ex(const cdf_sched_config *cfg, int defaults_list);

typedef struct cdf_scheduler cdf_scheduler;

/* Builds the schedule of cfg (copied; cfg stays the caller's).  *out is owned
 * by the caller (cdf_scheduler_free).  Validates cfg like parse does. */
cdf_status cdf_scheduler_new(const cdf_sched_config *cfg, cdf_scheduler **out, cdf_error *err);
/* Frees s (NULL is fine). */
void cdf_scheduler_free(cdf_scheduler *s);

/* set_timesteps(n): also resets the multistep state.  CDF_ERR_ARG for n < 1,
 * n > num_train_timesteps, a produced timestep that cannot index the schedule
 * (steps_offset pushing it past T-1: diffusers fails on the first step there),
 * or a first timestep that repeats (diffusers would start at index 1 and fail
 * on the last step).  "trailing" can give n+1 timesteps (numpy arange
 * rounding) exactly as diffusers does; always use cdf_scheduler_num_timesteps.
 * UnCLIP: round(arange(n) * (T-1)/(n-1))[::-1] (numpy, half to even), n >= 2
 * (n = 1 divides by zero in diffusers: CDF_ERR_ARG) and n up to
 * CDF_SCHED_MAX_TRAIN_TIMESTEPS (n > T repeats timesteps, as diffusers does). */
cdf_status cdf_scheduler_set_timesteps(cdf_scheduler *s, int n, cdf_error *err);
/* Number of UNet calls after set_timesteps (0 before): len(scheduler.timesteps),
 * e.g. PNDM with skip_prk_steps N+1 (N+9 without), Heun 2N-1; after
 * cdf_scheduler_set_begin_index(begin) the remaining count n_full - begin. */
int cdf_scheduler_num_timesteps(const cdf_scheduler *s);
/* The scheduler class's `order` attribute: 2 for Heun, 1 for every other kind
 * (PNDM and the multistep solvers too).  img2img / inpainting slice the
 * timesteps at t_start * order. */
int cdf_scheduler_order(const cdf_scheduler *s);
/* img2img / inpainting strength: after set_timesteps(n), makes the run
 * diffusers' loop over `scheduler.timesteps[begin:]` with `begin = t_start *
 * cdf_scheduler_order(s)`.  From then on call index i of
 * cdf_scheduler_timestep, _timestep_value, _scale_model_input,
 * _step_needs_noise, _step and _add_noise means full-list index begin + i, and
 * cdf_scheduler_num_timesteps returns n_full - begin.  The scheduler then
 * behaves as diffusers does: Euler, Euler a, LMS, Heun, DPM-Solver and UniPC
 * as after their set_begin_index(begin) (step_index = begin + i for the sigmas;
 * LMS's derivative history, the DPM / UniPC histories and lower_order_nums
 * start empty; lower_order_final and UniPC's this_order / disable_corrector
 * look at the full list and full step index; Heun starts in its first-order
 * state whatever the parity of begin); PNDM, DDIM, DDPM and UnCLIP (no
 * begin index in diffusers) step the sliced list as given: PNDM's counter and
 * ets start from zero on it (its warm-up pair is the first two remaining
 * entries), its PRK table (skip_prk_steps false) stays the full one.  Only
 * stores an index: nothing is allocated, nothing is owned.  set_timesteps
 * resets it to 0; begin 0 is the plain run.  CDF_ERR_ARG (s unchanged) before
 * set_timesteps, after a step of this run, or for begin < 0 or
 * begin >= len(timesteps) (the message names both). */
cdf_status cdf_scheduler_set_begin_index(cdf_scheduler *s, int begin, cdf_error *err);
/* Timestep of call i as an int64 (integer schedulers: exact; float timesteps:
 * truncated toward zero as torch's .long()); INT64_MIN when i is out of range. */
int64_t cdf_scheduler_timestep(const cdf_scheduler *s, int i);
/* The timestep fed to the UNet at call i, exactly the value diffusers holds in
 * scheduler.timesteps: an integer (DDPM, DDIM, PNDM, DPM, UniPC, UnCLIP), a float32
 * (Euler, Euler a, LMS, Heun: e.g. 856.2857055664062) or, for LMS/Heun with
 * karras/exponential sigmas, a float64 (the UNet casts it to float32); NAN
 * when i is out of range. */
double cdf_scheduler_timestep_value(const cdf_scheduler *s, int i);
/* scheduler.init_noise_sigma as diffusers computes it (float32): 1 for DDPM,
 * DDIM, PNDM, DPM, UniPC, UnCLIP; max sigma (or sqrt(max^2+1) with "leading") else. */
float cdf_scheduler_init_noise_sigma(const cdf_scheduler *s);
/* scheduler.sigmas after set_timesteps (owned by s; NULL for DDPM/DDIM/PNDM/UnCLIP or
 * before set_timesteps); *n receives its length (0 when NULL). */
const float *cdf_scheduler_sigmas(const cdf_scheduler *s, int *n);
/* The effective config (owned by s, valid while s lives). */
const cdf_sched_config *cdf_scheduler_config(const cdf_scheduler *s);
/* The float32 tables (owned by s): betas and alphas_cumprod, [num_train_timesteps] each
 * (alphas_cumprod[T-1] = 2^-24 where rescale_betas_zero_snr makes Euler/DPM/UniPC override it). */
const float *cdf_scheduler_betas(const cdf_scheduler *s);
const float *cdf_scheduler_alphas_cumprod(const cdf_scheduler *s);

/* scale_model_input at call i: out = x / sqrt(sigma_i^2 + 1) for Euler, Euler a,
 * LMS and Heun (float32 as torch), a copy otherwise; n floats, in place allowed. */
void cdf_scheduler_scale_model_input(const cdf_scheduler *s, int i, const float *x, float *out, size_t n);

/* scheduler.add_noise(original_samples = x, noise, timesteps) for the
 * timestep of call index i (relative to the begin index, like every call
 * index): out = noisy samples, [batch, per_image] float32 each, all buffers
 * the caller's; out may alias x (or noise).  Elementwise in torch float32
 * order, so batch invariant.  Per kind:
 *  - DDPM, DDIM, PNDM, UnCLIP: sqrt(ac[t]) * x + sqrt(1 - ac[t]) * noise,
 *    t = cdf_scheduler_timestep(s, i) (torch's `** 0.5` is sqrt);
 *  - Euler, Euler a, LMS, Heun: x + noise * sigmas[begin + i] (no
 *    init_noise_sigma factor);
 *  - DPM-Solver, UniPC: alpha_t * x + sigma_t * noise with alpha_t =
 *    1 / sqrt(sigma^2 + 1), sigma_t = sigma * alpha_t (flow sigmas: 1 - sigma,
 *    sigma), sigma = sigmas[begin + i].
 * The sigma schedulers pick sigmas[begin_index] before the first step and
 * sigmas[step_index] after steps, never looking at the timestep value; both
 * equal sigmas[begin + i] when the pipeline passes the index of the timestep it
 * means: i = 0 for img2img's initial latents (latent_timestep =
 * timesteps[0], before any step) and i + 1 for the 4-channel inpainting blend
 * after step i (timesteps[i + 1], step_index already begin + i + 1).
 * i must be in [0, cdf_scheduler_num_timesteps(s)); otherwise (or before
 * set_timesteps) out is filled with NaN. */
void cdf_scheduler_add_noise(const cdf_scheduler *s, int i, const float *x, const float *noise, float *out, int batch,
                             int64_t per_image);

typedef struct cdf_sched_step_opts {
    double eta;                   /* DDIM: weight of the variance noise (pipeline default 0.0) */
    int use_clipped_model_output; /* DDIM; -1 = None (what the pipelines pass), 0 false, 1 true */
} cdf_sched_step_opts;

/* UnCLIP: the prev_timestep the pipeline passes to step().  none 0 (the default
 * after cdf_scheduler_new): the next entry of the timesteps, None (t - 1) at
 * the last call, as UnCLIPPipeline does; none 1: never passed, so t - 1 at every
 * call, as a DDPM / Stable Diffusion pipeline calls a swapped-in
 * UnCLIPScheduler (beta is then betas[t] and abar_prev abar[t-1] even across
 * skipped steps).  No effect on the other kinds; kept across set_timesteps. */
void cdf_scheduler_set_prev_timestep_none(cdf_scheduler *s, int none);

/* Whether step i draws noise, so the caller draws it (randn of the sample
 * shape, from the pipeline's generators, AFTER the UNet call of that step)
 * before calling step: DDPM and UnCLIP t > 0; DDIM eta > 0; Euler a always (also at the
 * last step, where it is multiplied by 0); DPM sde-dpmsolver(++) always.
 * o may be NULL (eta 0).  0 when i is out of range. */
int cdf_scheduler_step_needs_noise(const cdf_scheduler *s, int i, const cdf_sched_step_opts *o);

/* One scheduler.step for call index i; buffers stay the caller's.
 * model_out: [batch, model_channels, spatial] float32 (model_channels ==
 * channels; DDPM learned / learned_range and UnCLIP learned_range may pass
 * 2*channels, split like diffusers: the first half eps / x0, the second the
 * variance value v; UnCLIP learned_range with `channels` only works at t = 0,
 * like diffusers; UnCLIP's prev_timestep: cdf_scheduler_set_prev_timestep_none); DPM learned / learned_range with epsilon keeps the first 3 of
 * model_channels >= 3 when channels is 3); sample: [batch, channels, spatial]
 * float32, updated in place to prev_sample; noise: [batch, channels, spatial]
 * or NULL when not needed.  PNDM, LMS, Heun, DPM and UniPC keep state between
 * calls: call i = 0, 1, 2, ... in order with the same shape after
 * set_timesteps.  Batch invariant: element k alone gives identical bits.
 * Errors: CDF_ERR_ARG (no set_timesteps, i out of range or out of order,
 * missing noise), CDF_ERR_SHAPE (model_channels, shape changed between calls),
 * CDF_ERR_NOMEM (state or thresholding buffers). */
cdf_status cdf_scheduler_step(cdf_scheduler *s, int i, const float *model_out, int model_channels, float *sample,
                              int batch, int channels, int64_t spatial, const float *noise,
                              const cdf_sched_step_opts *o, cdf_error *err);

#endif
