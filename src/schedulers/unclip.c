/* UnCLIPScheduler.step (diffusers 0.32.2, Karlo's modified DDPM) with torch
 * float32 semantics: alphas_cumprod / betas entries and everything computed
 * from them are 0-d float32 tensors, every elementwise op rounds to float32 in
 * the order of the Python expression, torch.log / torch.exp are SLEEF's.
 *
 * Differences from DDPMScheduler.step: beta (and alpha) of a skipped step are
 * recomputed as 1 - abar_t / abar_prev (betas[t] only when prev == t - 1);
 * the learned_range variance mixes log(beta) and log(posterior variance)
 * without DDPM's 1e-20 clamp; prev_timestep comes from the caller. */
#include <string.h>

#include "schedulers/sched_internal.h"

/* The per-step scalars of step() and _get_variance(). */
typedef struct unclip_coefs {
    float sa, sb;           /* alpha_prod_t ** 0.5, beta_prod_t ** 0.5 */
    float c_x0, c_x;        /* pred_original_sample_coeff, current_sample_coeff */
    float std;              /* fixed_small_log: exp(0.5 * log(clamp(variance, min=1e-20))) */
    float min_log, max_log; /* learned_range: variance.log(), beta.log() */
} unclip_coefs;

static void unclip_coefficients(const cdf_scheduler *s, int64_t t, int64_t prev_t, unclip_coefs *c) {
    const float a_t = s->alphas_cumprod[t];
    const float a_prev = prev_t >= 0 ? s->alphas_cumprod[prev_t] : 1.0f; /* self.one */
    const float b_t = 1.0f - a_t;
    const float b_prev = 1.0f - a_prev;
    float beta, alpha;
    if (prev_t == t - 1) {
        beta = s->betas[t];
        alpha = 1.0f - s->betas[t]; /* self.alphas[t] */
    } else {
        beta = a_t / a_prev;
        beta = 1.0f - beta;
        alpha = 1.0f - beta;
    }
    c->sa = sqrtf(a_t); /* tensor ** 0.5 is torch.sqrt */
    c->sb = sqrtf(b_t);
    c->c_x0 = sqrtf(a_prev) * beta;
    c->c_x0 = c->c_x0 / b_t;
    c->c_x = sqrtf(alpha) * b_prev;
    c->c_x = c->c_x / b_t;
    /* _get_variance: beta_prod_t_prev / beta_prod_t * beta */
    float var = b_prev / b_t;
    var = var * beta;
    c->min_log = cdf_sleef_logf(var);
    c->max_log = cdf_sleef_logf(beta);
    float clamped = var;
    if (!(clamped != clamped) && clamped < 1e-20f) clamped = 1e-20f; /* torch.clamp(min=1e-20): NaN stays */
    c->std = cdf_sleef_expf(0.5f * cdf_sleef_logf(clamped));
}

cdf_status cdf_unclip_step(cdf_scheduler *s, int i, const float *model_out, int model_channels, float *sample,
                           int batch, int channels, int64_t spatial, const float *noise, int prev_none,
                           cdf_error *err) {
    const cdf_sched_config *cfg = &s->cfg;
    const int learned = strcmp(cfg->variance_type, "learned_range") == 0; /* else fixed_small_log (validated) */
    const int split = learned && model_channels == 2 * channels;
    if (!split && model_channels != channels)
        return cdf_error_set(err, CDF_ERR_SHAPE,
                             "UnCLIPScheduler.step: model_output has %d channels, expected %d%s (variance_type %s)",
                             model_channels, channels, learned ? " or twice that" : "", cfg->variance_type);
    if (learned && !split && noise) /* diffusers: None + 1 in _get_variance */
        return cdf_error_set(err, CDF_ERR_SHAPE,
                             "UnCLIPScheduler.step: variance_type learned_range needs the predicted variance at "
                             "timestep %lld: model_output must have %d channels, got %d",
                             (long long)s->timesteps[i], 2 * channels, model_channels);
    const int64_t t = s->timesteps[i];
    /* the pipeline passes timesteps[i + 1], and None (t - 1) at the last step */
    const int64_t prev_t = !prev_none && i + 1 < s->n_timesteps ? s->timesteps[i + 1] : t - 1;
    unclip_coefs c;
    unclip_coefficients(s, t, prev_t, &c);
    const int pred = cdf_sched_pred_kind(cfg);
    const float lo = -(float)cfg->clip_sample_range, hi = (float)cfg->clip_sample_range;
    const int64_t n = (int64_t)channels * spatial; /* elements per batch element */
    for (int b = 0; b < batch; b++) {
        float *x = sample + (int64_t)b * n;
        const float *m = model_out + (int64_t)b * model_channels * spatial;
        const float *pv = split ? m + n : NULL; /* predicted variance: the second half of the channels */
        const float *z = noise ? noise + (int64_t)b * n : NULL;
        for (int64_t k = 0; k < n; k++) {
            float x0 = cdf_sched_pred_x0(pred, c.sa, c.sb, x[k], m[k]);
            if (cfg->clip_sample) x0 = cdf_sched_clampf(x0, lo, hi);
            float p = c.c_x0 * x0;
            float q = c.c_x * x[k];
            float mean = p + q;
            if (!z) {
                x[k] = mean + 0.0f; /* + the int 0 */
                continue;
            }
            const float std = learned ? cdf_sched_learned_range_std(pv[k], c.min_log, c.max_log) : c.std;
            x[k] = mean + std * z[k];
        }
    }
    return CDF_OK;
}
