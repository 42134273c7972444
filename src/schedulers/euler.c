/* EulerDiscreteScheduler.step (s_churn 0: gamma 0, sigma_hat == sigma) and
 * EulerAncestralDiscreteScheduler.step (sigma_up / sigma_down split, noise
 * drawn at every step) of diffusers 0.32.2 in torch float32: the sigmas are
 * 0-dim float32 tensors, the sample is upcast to float32 (it already is). */
#include <string.h>

#include "schedulers/sched_internal.h"

cdf_status cdf_euler_step(cdf_scheduler *s, int i, const float *model_out, float *sample, int batch, int64_t n,
                          const float *noise, cdf_error *err) {
    (void)err;
    const int64_t total = (int64_t)batch * n;
    const int ancestral = s->cfg.kind == CDF_SCHED_EULER_ANCESTRAL;
    const int pred = cdf_sched_pred_kind(&s->cfg);
    const float sigma = s->sigmas[i];
    const float sigma_hat = sigma * 1.0f; /* sigma * (gamma + 1) */
    const float s2p1 = sigma * sigma + 1.0f;
    const float c_out = -sigma / sqrtf(s2p1);
    float dt, sigma_up = 0.0f;
    if (ancestral) {
        const float sf = sigma, st = s->sigmas[i + 1];
        const float st2 = st * st, sf2 = sf * sf;
        float u = sf2 - st2;
        u = st2 * u;
        u = u / sf2;
        sigma_up = sqrtf(u);
        float d = st2 - sigma_up * sigma_up;
        const float sigma_down = sqrtf(d);
        dt = sigma_down - sigma;
    } else {
        dt = s->sigmas[i + 1] - sigma_hat;
    }
    const float div = ancestral ? sigma : sigma_hat;
    for (int64_t k = 0; k < total; k++) {
        const float x = sample[k], m = model_out[k];
        float x0;
        if (pred == CDF_SCHED_PRED_EPSILON) {
            float t = (ancestral ? sigma : sigma_hat) * m;
            x0 = x - t;
        } else if (pred == CDF_SCHED_PRED_V) {
            float a = m * c_out;
            float b = x / s2p1;
            x0 = a + b;
        } else {
            x0 = m;
        }
        float d = x - x0;
        d = d / div;
        float prev = d * dt;
        prev = x + prev;
        if (ancestral) {
            float z = noise[k] * sigma_up;
            prev = prev + z;
        }
        sample[k] = prev;
    }
    return CDF_OK;
}
