/* Internals shared by the DDPM/DDIM scheduler files (not part of the API). */
#ifndef CDF_SCHEDULERS_SCHED_INTERNAL_H
#define CDF_SCHEDULERS_SCHED_INTERNAL_H

#include <math.h>

#include "schedulers/scheduler.h"

struct cdf_scheduler {
    cdf_sched_config cfg;       /* deep copy of the effective config */
    int T;                      /* num_train_timesteps */
    float *betas;               /* [T] float32, as torch computes them */
    float *alphas_cumprod;      /* [T] float32: cumprod(1 - betas), double accumulator */
    float final_alpha_cumprod;  /* DDIM: 1 when set_alpha_to_one, else alphas_cumprod[0] */
    int num_inference_steps;    /* n given to set_timesteps; 0 before */
    int n_timesteps;            /* length of timesteps (n, or n+1 for some trailing cases) */
    int64_t *timesteps;         /* [n_timesteps] */
};

/* torch.linspace(start, end, steps, dtype=float32) on CPU (AVX2 build): out[steps]. */
void cdf_sched_linspace_f32(float start, float end, int64_t steps, float *out);
/* torch.cumprod of float32 on CPU: double accumulator rounded at each element; out may alias a. */
void cdf_sched_cumprod_f32(const float *a, float *out, int64_t n);
/* Fills betas[T] for cfg (trained_betas, beta_schedule, rescale_betas_zero_snr). */
cdf_status cdf_sched_make_betas(const cdf_sched_config *cfg, float *betas, cdf_error *err);
/* numpy set_timesteps of diffusers for n steps: *out cdf_malloc'd [*count]. */
cdf_status cdf_sched_make_timesteps(const cdf_sched_config *cfg, int n, int64_t **out, int *count, cdf_error *err);

/* diffusers' _threshold_sample for one batch element: x[n] in place; scratch[n]. */
void cdf_sched_threshold(float *x, int64_t n, double ratio, double max_value, float *scratch);
/* Work buffers of n floats each for dynamic thresholding (both NULL when
 * cfg->thresholding is off); `who` names the scheduler in the error. */
cdf_status cdf_sched_threshold_buffers(const cdf_sched_config *cfg, int64_t n, const char *who, float **x0buf,
                                       float **scratch, cdf_error *err);

/* alphas_cumprod[t] with python (torch) negative-index wrap; t already validated. */
static inline float cdf_sched_ac(const cdf_scheduler *s, int64_t t) {
    return s->alphas_cumprod[t < 0 ? t + s->T : t];
}

/* torch clamp(x, lo, hi) on float32: NaN propagates, hi wins when lo > hi. */
static inline float cdf_sched_clampf(float x, float lo, float hi) {
    if (x != x) return x;
    if (x < lo) x = lo;
    if (x > hi) x = hi;
    return x;
}

/* x0 prediction of both schedulers (float32, Python order of operations):
 * kind 0 epsilon (x - sb*m)/sa, 1 sample m, 2 v_prediction sa*x - sb*m. */
enum { CDF_SCHED_PRED_EPSILON = 0, CDF_SCHED_PRED_SAMPLE = 1, CDF_SCHED_PRED_V = 2 };
static inline float cdf_sched_pred_x0(int pred, float sa, float sb, float x, float m) {
    switch (pred) {
    case CDF_SCHED_PRED_EPSILON: {
        float t = sb * m;
        t = x - t;
        return t / sa;
    }
    case CDF_SCHED_PRED_SAMPLE:
        return m;
    default: {
        float a = sa * x;
        float b = sb * m;
        return a - b;
    }
    }
}
int cdf_sched_pred_kind(const cdf_sched_config *cfg);

/* Thresholded x0 of one batch element: out[n] = _threshold_sample(pred_x0(x, m)); scratch[n]. */
static inline void cdf_sched_x0_thresholded(const cdf_sched_config *cfg, int pred, float sa, float sb,
                                            const float *x, const float *m, int64_t n, float *out, float *scratch) {
    for (int64_t k = 0; k < n; k++) out[k] = cdf_sched_pred_x0(pred, sa, sb, x[k], m[k]);
    cdf_sched_threshold(out, n, cfg->dynamic_thresholding_ratio, cfg->sample_max_value, scratch);
}

/* Per-kind step bodies (arguments already checked by cdf_scheduler_step). */
cdf_status cdf_ddpm_step(cdf_scheduler *s, int i, const float *model_out, int model_channels, float *sample,
                         int batch, int channels, int64_t spatial, const float *noise, cdf_error *err);
cdf_status cdf_ddim_step(cdf_scheduler *s, int i, const float *model_out, float *sample, int batch, int channels,
                         int64_t spatial, const float *noise, const cdf_sched_step_opts *o, cdf_error *err);

#endif
