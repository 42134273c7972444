/* DDIMScheduler.step (diffusers 0.32.2) with torch float32 semantics: the
 * per-step coefficients are 0-d float32 tensors (eta is rounded to float32
 * when it multiplies one), elementwise ops round in Python order. */
#include "schedulers/sched_internal.h"

cdf_status cdf_ddim_step(cdf_scheduler *s, int i, const float *model_out, float *sample, int batch, int channels,
                         int64_t spatial, const float *noise, const cdf_sched_step_opts *o, cdf_error *err) {
    const cdf_sched_config *cfg = &s->cfg;
    const double eta = o ? o->eta : 0.0;
    const int use_clipped = o && o->use_clipped_model_output > 0;
    const int64_t t = s->timesteps[i];
    /* prev_timestep = timestep - T // num_inference_steps, whatever the spacing */
    const int64_t prev_t = t - s->T / s->num_inference_steps;
    const float a_t = cdf_sched_ac(s, t);
    const float a_prev = prev_t >= 0 ? cdf_sched_ac(s, prev_t) : s->final_alpha_cumprod;
    const float b_t = 1.0f - a_t;
    const float sa = sqrtf(a_t), sb = sqrtf(b_t);
    /* _get_variance: (beta_prod_t_prev / beta_prod_t) * (1 - alpha_prod_t / alpha_prod_t_prev) */
    const float b_prev = 1.0f - a_prev;
    float var = b_prev / b_t;
    var = var * (1.0f - a_t / a_prev);
    const float std = (float)eta * sqrtf(var);
    float dir2 = 1.0f - a_prev;
    dir2 = dir2 - std * std;
    const float c_dir = sqrtf(dir2);   /* (1 - alpha_prod_t_prev - std_dev_t**2) ** 0.5 */
    const float c_x0 = sqrtf(a_prev); /* alpha_prod_t_prev ** 0.5 */
    const int pred = cdf_sched_pred_kind(cfg);
    const int64_t n = (int64_t)channels * spatial; /* elements per batch element */
    float *x0buf = NULL, *scratch = NULL;           /* [n] each, thresholding only */
    cdf_status ts = cdf_sched_threshold_buffers(cfg, n, "DDIMScheduler", &x0buf, &scratch, err);
    if (ts) return ts;
    const float lo = -(float)cfg->clip_sample_range, hi = (float)cfg->clip_sample_range;
    for (int b = 0; b < batch; b++) {
        float *x = sample + (int64_t)b * n;
        const float *m = model_out + (int64_t)b * n;
        const float *z = noise ? noise + (int64_t)b * n : NULL;
        if (x0buf) cdf_sched_x0_thresholded(cfg, pred, sa, sb, x, m, n, x0buf, scratch);
        for (int64_t k = 0; k < n; k++) {
            const float xk = x[k], mk = m[k];
            float x0 = x0buf ? x0buf[k] : cdf_sched_pred_x0(pred, sa, sb, xk, mk);
            float eps;
            if (pred == CDF_SCHED_PRED_EPSILON) {
                eps = mk;
            } else if (pred == CDF_SCHED_PRED_SAMPLE) {
                float u = sa * mk; /* from the unclipped x0 == model_output */
                u = xk - u;
                eps = u / sb;
            } else {
                float u = sa * mk;
                float v = sb * xk;
                eps = u + v;
            }
            if (!x0buf && cfg->clip_sample) x0 = cdf_sched_clampf(x0, lo, hi);
            if (use_clipped) {
                float u = sa * x0;
                u = xk - u;
                eps = u / sb;
            }
            float dir = c_dir * eps;
            float prev = c_x0 * x0;
            prev = prev + dir;
            if (z) {
                float w = std * z[k];
                prev = prev + w;
            }
            x[k] = prev;
        }
    }
    cdf_free(x0buf);
    cdf_free(scratch);
    return CDF_OK;
}
