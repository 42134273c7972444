/* Internals shared by the scheduler files (not part of the API). */
#ifndef CDF_SCHEDULERS_SCHED_INTERNAL_H
#define CDF_SCHEDULERS_SCHED_INTERNAL_H

#include <math.h>

#include "schedulers/sched_fmath.h"
#include "schedulers/scheduler.h"

/* Multistep / stateful bookkeeping of one run (reset by set_timesteps).
 * Every float* points into cdf_scheduler.state ([state_n] floats each,
 * state_n = batch * channels * spatial of the run). */
typedef struct sched_run {
    int calls;                 /* step() calls done since set_timesteps (stateful kinds) */
    int stepped;               /* any step() succeeded since set_timesteps (every kind) */
    /* PNDM */
    int counter;               /* self.counter */
    int n_ets;                 /* len(self.ets), <= 4 */
    float *ets[4];             /* ets[0] oldest */
    float *cur_sample;         /* valid when have_cur_sample */
    int have_cur_sample;
    float *cur_model_output;   /* PRK accumulator; has_cur_mo = 0 means the int 0 */
    int has_cur_mo;
    /* LMS */
    int n_deriv;               /* len(self.derivatives), <= 4 */
    float *deriv[4];           /* deriv[0] oldest */
    /* Heun */
    int second_order;          /* self.dt is not None */
    float dt;
    float *prev_derivative, *heun_sample;
    /* DPM-Solver / UniPC */
    int lower_order_nums;
    float *outputs[CDF_SCHED_MAX_SOLVER_ORDER]; /* model_outputs, [solver_order-1] newest */
    int n_outputs;             /* filled entries (others are None) */
    int this_order;            /* UniPC: order of the last predictor */
    float *last_sample;        /* UniPC: valid when have_last */
    int have_last;
} sched_run;

struct cdf_scheduler {
    cdf_sched_config cfg;       /* deep copy of the effective config */
    int T;                      /* num_train_timesteps */
    float *betas;               /* [T] float32, as torch computes them */
    float *alphas_cumprod;      /* [T] float32: cumprod(1 - betas), double accumulator (Euler/DPM/UniPC zero-SNR:
                                   last entry 2^-24) */
    float final_alpha_cumprod;  /* DDIM/PNDM: 1 when set_alpha_to_one, else alphas_cumprod[0] */
    int num_inference_steps;    /* n given to set_timesteps; 0 before */
    int n_timesteps;            /* len(scheduler.timesteps) of the full list */
    int begin;                  /* cdf_scheduler_set_begin_index: call index i is full index begin + i (0 after
                                   set_timesteps); the per-kind step bodies take full indices */
    int64_t *timesteps;         /* [n_timesteps] integer view (float timesteps truncated) */
    double *tvals;              /* [n_timesteps] the exact timestep values (int, float32 or float64) */
    float *sigmas;              /* [n_sigmas] scheduler.sigmas (sigma-based kinds), NULL otherwise */
    int n_sigmas;
    float init_sigma;           /* init_noise_sigma */
    int prev_timestep_none;     /* UnCLIP: step() gets no prev_timestep (t - 1), see cdf_scheduler_set_prev_timestep_none */
    int64_t state_n;            /* floats per state buffer (0: not allocated yet) */
    float *state;               /* [n_state_bufs * state_n] */
    sched_run run;
};

/* torch.linspace(start, end, steps, dtype=float32) on CPU (AVX2 build): out[steps]. */
void cdf_sched_linspace_f32(float start, float end, int64_t steps, float *out);
/* torch.cumprod of float32 on CPU: double accumulator rounded at each element; out may alias a. */
void cdf_sched_cumprod_f32(const float *a, float *out, int64_t n);
/* Fills betas[T] for cfg (trained_betas, beta_schedule, rescale_betas_zero_snr where the class has it). */
cdf_status cdf_sched_make_betas(const cdf_sched_config *cfg, float *betas, cdf_error *err);
/* numpy set_timesteps of DDPM/DDIM for n steps: *out cdf_malloc'd [*count]. */
cdf_status cdf_sched_make_timesteps(const cdf_sched_config *cfg, int n, int64_t **out, int *count, cdf_error *err);
/* numpy.arange(start, 0, -ratio) length and values rounded half-to-even (numpy fill semantics). */
int cdf_sched_arange_down_count(double start, double ratio);
void cdf_sched_arange_down_rint(double start, double ratio, int count, double *out);

/* set_timesteps(n) of every kind: fills s->timesteps / tvals / sigmas / init_sigma. */
cdf_status cdf_sched_build_timesteps(cdf_scheduler *s, int n, cdf_error *err);
/* sqrt((1 - ac) / ac) in float32 for t = 0..T-1: out[T]. */
void cdf_sched_train_sigmas(const cdf_scheduler *s, float *out);

/* diffusers' _threshold_sample for one batch element: x[n] in place; scratch[n]. */
void cdf_sched_threshold(float *x, int64_t n, double ratio, double max_value, float *scratch);
/* Work buffers of n floats each for dynamic thresholding (both NULL when
 * cfg->thresholding is off); `who` names the scheduler in the error. */
cdf_status cdf_sched_threshold_buffers(const cdf_sched_config *cfg, int64_t n, const char *who, float **x0buf,
                                       float **scratch, cdf_error *err);

/* The run's state buffers: nbufs x total floats, allocated at the first call,
 * CDF_ERR_SHAPE when a later call has another size. */
cdf_status cdf_sched_state(cdf_scheduler *s, int nbufs, int64_t total, cdf_error *err);

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

/* x0 prediction of DDPM/DDIM (float32, Python order of operations):
 * kind 0 epsilon (x - sb*m)/sa, 1 sample m, 2 v_prediction sa*x - sb*m. */
enum { CDF_SCHED_PRED_EPSILON = 0, CDF_SCHED_PRED_SAMPLE = 1, CDF_SCHED_PRED_V = 2, CDF_SCHED_PRED_FLOW = 3 };
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
/* learned_range noise scale of DDPM and UnCLIP for the variance value v:
 * frac = (v + 1) / 2; exp(0.5 * (frac * max_log + (1 - frac) * min_log)),
 * float32 in the Python order, torch.exp = SLEEF. */
static inline float cdf_sched_learned_range_std(float v, float min_log, float max_log) {
    float frac = v + 1.0f;
    frac = frac / 2.0f;
    float hi = frac * max_log;
    float lo = (1.0f - frac) * min_log;
    float var = hi + lo;
    return cdf_sleef_expf(0.5f * var);
}

/* prediction_type -> CDF_SCHED_PRED_* ("original_sample" counts as sample). */
int cdf_sched_pred_kind(const cdf_sched_config *cfg);

/* Thresholded x0 of one batch element: out[n] = _threshold_sample(pred_x0(x, m)); scratch[n]. */
static inline void cdf_sched_x0_thresholded(const cdf_sched_config *cfg, int pred, float sa, float sb,
                                            const float *x, const float *m, int64_t n, float *out, float *scratch) {
    for (int64_t k = 0; k < n; k++) out[k] = cdf_sched_pred_x0(pred, sa, sb, x[k], m[k]);
    cdf_sched_threshold(out, n, cfg->dynamic_thresholding_ratio, cfg->sample_max_value, scratch);
}

/* Per-kind step bodies (arguments already checked by cdf_scheduler_step;
 * n = channels * spatial elements per batch element). */
cdf_status cdf_ddpm_step(cdf_scheduler *s, int i, const float *model_out, int model_channels, float *sample,
                         int batch, int channels, int64_t spatial, const float *noise, cdf_error *err);
cdf_status cdf_ddim_step(cdf_scheduler *s, int i, const float *model_out, float *sample, int batch, int channels,
                         int64_t spatial, const float *noise, const cdf_sched_step_opts *o, cdf_error *err);
cdf_status cdf_pndm_step(cdf_scheduler *s, int i, const float *model_out, float *sample, int batch, int64_t n,
                         cdf_error *err);
cdf_status cdf_euler_step(cdf_scheduler *s, int i, const float *model_out, float *sample, int batch, int64_t n,
                          const float *noise, cdf_error *err);
cdf_status cdf_lms_step(cdf_scheduler *s, int i, const float *model_out, float *sample, int batch, int64_t n,
                        cdf_error *err);
cdf_status cdf_heun_step(cdf_scheduler *s, int i, const float *model_out, float *sample, int batch, int64_t n,
                         cdf_error *err);
cdf_status cdf_dpm_step(cdf_scheduler *s, int i, const float *model_out, int model_channels, float *sample, int batch,
                        int channels, int64_t spatial, const float *noise, cdf_error *err);
cdf_status cdf_unipc_step(cdf_scheduler *s, int i, const float *model_out, float *sample, int batch, int64_t n,
                          cdf_error *err);
/* prev_none: diffusers' step() called without prev_timestep (t - 1), else the next timestep. */
cdf_status cdf_unclip_step(cdf_scheduler *s, int i, const float *model_out, int model_channels, float *sample,
                           int batch, int channels, int64_t spatial, const float *noise, int prev_none,
                           cdf_error *err);

/* LMS: get_lms_coefficient(order, t, current_order) as scipy.integrate.quad
 * computes it over the float32 integrand torch evaluates. */
double cdf_lms_coefficient(const float *sigmas, int order, int t, int current_order);

#endif
