/* DDPMScheduler.step (diffusers 0.32.2) with torch float32 semantics: the
 * per-step coefficients are 0-d float32 tensors, every elementwise op rounds
 * to float32 in the order of the Python expression. */
#include <string.h>

#include "schedulers/sched_fmath.h"
#include "schedulers/sched_internal.h"

enum { VAR_FIXED_SMALL, VAR_FIXED_SMALL_LOG, VAR_FIXED_LARGE, VAR_FIXED_LARGE_LOG, VAR_LEARNED, VAR_LEARNED_RANGE };

static int variance_kind(const char *v) {
    if (strcmp(v, "fixed_small_log") == 0) return VAR_FIXED_SMALL_LOG;
    if (strcmp(v, "fixed_large") == 0) return VAR_FIXED_LARGE;
    if (strcmp(v, "fixed_large_log") == 0) return VAR_FIXED_LARGE_LOG;
    if (strcmp(v, "learned") == 0) return VAR_LEARNED;
    if (strcmp(v, "learned_range") == 0) return VAR_LEARNED_RANGE;
    return VAR_FIXED_SMALL;
}

/* previous_timestep(t) after set_timesteps: the entry after the first occurrence of t, or -1. */
static int64_t previous_timestep(const cdf_scheduler *s, int64_t t) {
    int j = 0;
    while (j < s->n_timesteps - 1 && s->timesteps[j] != t) j++;
    return j >= s->n_timesteps - 1 ? -1 : s->timesteps[j + 1];
}

/* The per-step scalars of step() and _get_variance(). */
typedef struct ddpm_coefs {
    float sa, sb;       /* alpha_prod_t ** 0.5, beta_prod_t ** 0.5 */
    float c_x0, c_x;    /* pred_original_sample_coeff, current_sample_coeff */
    float std;          /* noise scale for the fixed variance types */
    float min_log, max_log; /* learned_range: log(clamped variance), log(current_beta_t) */
} ddpm_coefs;

static void ddpm_coefficients(const cdf_scheduler *s, int64_t t, int vkind, ddpm_coefs *c) {
    const int64_t prev_t = previous_timestep(s, t);
    const float a_t = cdf_sched_ac(s, t);
    const float a_prev = prev_t >= 0 ? cdf_sched_ac(s, prev_t) : 1.0f;
    const float b_t = 1.0f - a_t;
    const float b_prev = 1.0f - a_prev;
    const float cur_alpha = a_t / a_prev;
    const float cur_beta = 1.0f - cur_alpha;
    c->sa = sqrtf(a_t);
    c->sb = sqrtf(b_t);
    c->c_x0 = sqrtf(a_prev) * cur_beta;
    c->c_x0 = c->c_x0 / b_t;
    c->c_x = sqrtf(cur_alpha) * b_prev;
    c->c_x = c->c_x / b_t;
    /* _get_variance: (1 - a_prev) / (1 - a_t) * current_beta_t, clamped to >= 1e-20 */
    float var = b_prev / b_t;
    var = var * cur_beta;
    if (!(var != var) && var < 1e-20f) var = 1e-20f;
    c->min_log = cdf_sleef_logf(var); /* torch.log: SLEEF */
    c->max_log = cdf_sleef_logf(cur_beta);
    switch (vkind) {
    case VAR_FIXED_SMALL_LOG: c->std = cdf_sleef_expf(0.5f * c->min_log); break;
    case VAR_FIXED_LARGE: c->std = sqrtf(cur_beta); break;
    case VAR_FIXED_LARGE_LOG: c->std = sqrtf(c->max_log); break; /* as diffusers: sqrt of a log */
    default: c->std = sqrtf(var); break;
    }
}

/* The noise term of element k: variance * z per variance type. */
static inline float noise_term(int vkind, const ddpm_coefs *c, const float *pv, int64_t k, float z) {
    if (vkind == VAR_LEARNED) return sqrtf(pv[k]) * z;
    if (vkind == VAR_LEARNED_RANGE) return cdf_sched_learned_range_std(pv[k], c->min_log, c->max_log) * z;
    return c->std * z;
}

cdf_status cdf_ddpm_step(cdf_scheduler *s, int i, const float *model_out, int model_channels, float *sample,
                         int batch, int channels, int64_t spatial, const float *noise, cdf_error *err) {
    const cdf_sched_config *cfg = &s->cfg;
    const int vkind = variance_kind(cfg->variance_type);
    const int learned = vkind == VAR_LEARNED || vkind == VAR_LEARNED_RANGE;
    const int split = learned && model_channels == 2 * channels;
    if (!split && model_channels != channels)
        return cdf_error_set(err, CDF_ERR_SHAPE,
                             "DDPMScheduler.step: model_output has %d channels, expected %d%s (variance_type %s)",
                             model_channels, channels, learned ? " or twice that" : "", cfg->variance_type);
    if (learned && !split && noise)
        return cdf_error_set(err, CDF_ERR_SHAPE,
                             "DDPMScheduler.step: variance_type %s needs the predicted variance: model_output must "
                             "have %d channels, got %d",
                             cfg->variance_type, 2 * channels, model_channels);
    const int64_t t = s->timesteps[i];
    ddpm_coefs c;
    ddpm_coefficients(s, t, vkind, &c);
    const int pred = cdf_sched_pred_kind(cfg);
    const int64_t n = (int64_t)channels * spatial; /* elements per batch element */
    float *x0buf = NULL, *scratch = NULL;           /* [n] each, thresholding only */
    cdf_status ts = cdf_sched_threshold_buffers(cfg, n, "DDPMScheduler", &x0buf, &scratch, err);
    if (ts) return ts;
    const float lo = -(float)cfg->clip_sample_range, hi = (float)cfg->clip_sample_range;
    for (int b = 0; b < batch; b++) {
        float *x = sample + (int64_t)b * n;
        const float *m = model_out + (int64_t)b * model_channels * spatial;
        const float *pv = split ? m + n : NULL; /* predicted variance: the second half of the channels */
        const float *z = noise ? noise + (int64_t)b * n : NULL;
        if (x0buf) cdf_sched_x0_thresholded(cfg, pred, c.sa, c.sb, x, m, n, x0buf, scratch);
        for (int64_t k = 0; k < n; k++) {
            float x0;
            if (x0buf) {
                x0 = x0buf[k];
            } else {
                x0 = cdf_sched_pred_x0(pred, c.sa, c.sb, x[k], m[k]);
                if (cfg->clip_sample) x0 = cdf_sched_clampf(x0, lo, hi);
            }
            float p = c.c_x0 * x0;
            float q = c.c_x * x[k];
            float mean = p + q;
            /* pred_prev_sample + variance, where variance is the int 0 without noise */
            x[k] = z ? mean + noise_term(vkind, &c, pv, k, z[k]) : mean + 0.0f;
        }
    }
    cdf_free(x0buf);
    cdf_free(scratch);
    return CDF_OK;
}
