/* HeunDiscreteScheduler.step (diffusers 0.32.2): alternating first-order
 * (Euler) and second-order (Heun correction) calls over the interleaved
 * sigmas, torch float32. */
#include <string.h>

#include "schedulers/sched_internal.h"

cdf_status cdf_heun_step(cdf_scheduler *s, int i, const float *model_out, float *sample, int batch, int64_t n,
                         cdf_error *err) {
    const int64_t total = (int64_t)batch * n;
    cdf_status st = cdf_sched_state(s, 2, total, err);
    if (st) return st;
    sched_run *r = &s->run;
    const int first = !r->second_order;
    const float sigma = first ? s->sigmas[i] : s->sigmas[i - 1];
    const float sigma_next = first ? s->sigmas[i + 1] : s->sigmas[i];
    const float sigma_hat = sigma * (float)(0 + 1); /* gamma = 0 (int) */
    const float sin_ = first ? sigma_hat : sigma_next; /* sigma_input */
    const float s2p1 = sin_ * sin_ + 1.0f;
    const float c_out = -sin_ / sqrtf(s2p1);
    const int pred = cdf_sched_pred_kind(&s->cfg);
    const int clip = s->cfg.clip_sample;
    const float lo = -(float)s->cfg.clip_sample_range, hi = (float)s->cfg.clip_sample_range;
    const float div = first ? sigma_hat : sigma_next;
    const float dt = first ? sigma_next - sigma_hat : r->dt;
    for (int64_t k = 0; k < total; k++) {
        const float x = sample[k], m = model_out[k];
        float x0;
        if (pred == CDF_SCHED_PRED_EPSILON) {
            float t = sin_ * m;
            x0 = x - t;
        } else if (pred == CDF_SCHED_PRED_V) {
            float a = m * c_out;
            float b = x / s2p1;
            x0 = a + b;
        } else {
            x0 = m;
        }
        if (clip) x0 = cdf_sched_clampf(x0, lo, hi);
        float d = x - x0;
        d = d / div;
        if (first) {
            r->prev_derivative[k] = d;
            r->heun_sample[k] = x;
            float p = d * dt;
            sample[k] = x + p;
        } else {
            float dd = r->prev_derivative[k] + d;
            dd = dd / 2.0f;
            float p = dd * dt;
            sample[k] = r->heun_sample[k] + p;
        }
    }
    r->second_order = first;
    if (first) r->dt = dt;
    return CDF_OK;
}
