/* PNDMScheduler.step (diffusers 0.32.2): the Runge-Kutta warm-up (step_prk)
 * unless skip_prk_steps, then the linear multistep (step_plms) with its
 * counter / ets bookkeeping, in torch float32 (scalars 1/6, 1/3, 1/24 are
 * rounded to float32 as torch does for Python floats times a tensor). */
#include <string.h>

#include "schedulers/sched_internal.h"

/* _get_prev_sample over total elements (formula (9) of the PNDM paper). */
static void prev_sample(const cdf_scheduler *s, const float *x, int64_t t, int64_t prev_t, const float *mo,
                        int v_pred, float *out, int64_t total) {
    const float a_t = cdf_sched_ac(s, t);
    const float a_prev = prev_t >= 0 ? cdf_sched_ac(s, prev_t) : s->final_alpha_cumprod;
    const float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    const float sa = sqrtf(a_t), sb = sqrtf(b_t);
    const float sc = sqrtf(a_prev / a_t);
    float q = a_t * b_t;
    q = q * a_prev;
    float denom = a_t * sqrtf(b_prev);
    denom = denom + sqrtf(q);
    const float diff = a_prev - a_t;
    for (int64_t k = 0; k < total; k++) {
        float m = mo[k];
        if (v_pred) {
            float p = sa * m;
            float r = sb * x[k];
            m = p + r;
        }
        float u = sc * x[k];
        float v = diff * m;
        v = v / denom;
        out[k] = u - v;
    }
}

static int index_ok(const cdf_scheduler *s, int64_t t) { return t >= -(int64_t)s->T && t < s->T; }

cdf_status cdf_pndm_step(cdf_scheduler *s, int i, const float *model_out, float *sample, int batch, int64_t n,
                         cdf_error *err) {
    const int64_t total = (int64_t)batch * n;
    /* ets[4], cur_sample, cur_model_output, combined model output */
    cdf_status st = cdf_sched_state(s, 7, total, err);
    if (st) return st;
    sched_run *r = &s->run;
    float *mo = s->state + 6 * total; /* [total] combined model output of this call */
    const int64_t T = s->T, N = s->num_inference_steps;
    const int v_pred = strcmp(s->cfg.prediction_type, "v_prediction") == 0;
    int64_t t = s->timesteps[i], prev_t;
    const float *x = sample;
    if (!s->cfg.skip_prk_steps && r->counter < 12) {
        const int c = r->counter;
        prev_t = t - (c % 2 ? 0 : T / N / 2);
        t = s->timesteps[c / 4 * 4];
        const float sixth = (float)(1.0 / 6.0), third = (float)(1.0 / 3.0);
        float *cmo = r->cur_model_output;
        if (c % 4 == 0) {
            for (int64_t k = 0; k < total; k++) {
                float a = sixth * model_out[k];
                cmo[k] = r->has_cur_mo ? cmo[k] + a : a + 0.0f;
            }
            r->has_cur_mo = 1;
            memcpy(r->ets[r->n_ets++], model_out, (size_t)total * sizeof(float));
            memcpy(r->cur_sample, sample, (size_t)total * sizeof(float));
            r->have_cur_sample = 1;
            memcpy(mo, model_out, (size_t)total * sizeof(float));
        } else if (c % 4 == 1 || c % 4 == 2) {
            for (int64_t k = 0; k < total; k++) {
                float a = third * model_out[k];
                cmo[k] = r->has_cur_mo ? cmo[k] + a : a + 0.0f;
            }
            r->has_cur_mo = 1;
            memcpy(mo, model_out, (size_t)total * sizeof(float));
        } else {
            for (int64_t k = 0; k < total; k++) {
                float a = sixth * model_out[k];
                mo[k] = r->has_cur_mo ? cmo[k] + a : a + 0.0f;
            }
            r->has_cur_mo = 0;
        }
        if (r->have_cur_sample) x = r->cur_sample;
    } else {
        if (!s->cfg.skip_prk_steps && r->n_ets < 3)
            return cdf_error_set(err, CDF_ERR_ARG, "PNDMScheduler.step: the PLMS steps need 12 Runge-Kutta steps first");
        prev_t = t - T / N;
        if (r->counter != 1) {
            if (r->n_ets == 4) { /* ets = ets[-3:] */
                float *old = r->ets[0];
                memmove(r->ets, r->ets + 1, 3 * sizeof(float *));
                r->ets[3] = old;
                r->n_ets = 3;
            }
            memcpy(r->ets[r->n_ets++], model_out, (size_t)total * sizeof(float));
        } else {
            prev_t = t;
            t = t + T / N;
        }
        const int ne = r->n_ets;
        const float *e1 = ne >= 1 ? r->ets[ne - 1] : NULL, *e2 = ne >= 2 ? r->ets[ne - 2] : NULL;
        const float *e3 = ne >= 3 ? r->ets[ne - 3] : NULL, *e4 = ne >= 4 ? r->ets[ne - 4] : NULL;
        if (ne == 1 && r->counter == 0) {
            memcpy(mo, model_out, (size_t)total * sizeof(float));
            memcpy(r->cur_sample, sample, (size_t)total * sizeof(float));
            r->have_cur_sample = 1;
        } else if (ne == 1 && r->counter == 1) {
            for (int64_t k = 0; k < total; k++) {
                float a = model_out[k] + e1[k];
                mo[k] = a / 2.0f;
            }
            x = r->cur_sample; /* have_cur_sample was set by the first PLMS call */
            r->have_cur_sample = 0;
        } else if (ne == 2) {
            for (int64_t k = 0; k < total; k++) {
                float a = 3.0f * e1[k];
                a = a - e2[k];
                mo[k] = a / 2.0f;
            }
        } else if (ne == 3) {
            for (int64_t k = 0; k < total; k++) {
                float a = 23.0f * e1[k];
                float b = 16.0f * e2[k];
                a = a - b;
                float c = 5.0f * e3[k];
                a = a + c;
                mo[k] = a / 12.0f;
            }
        } else {
            const float c24 = (float)(1.0 / 24.0);
            for (int64_t k = 0; k < total; k++) {
                float a = 55.0f * e1[k];
                float b = 59.0f * e2[k];
                a = a - b;
                float c = 37.0f * e3[k];
                a = a + c;
                float d = 9.0f * e4[k];
                a = a - d;
                mo[k] = c24 * a;
            }
        }
    }
    if (!index_ok(s, t) || prev_t >= T)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "PNDMScheduler.step: timestep %lld / previous timestep %lld cannot index "
                             "alphas_cumprod of %lld entries (diffusers raises IndexError here)",
                             (long long)t, (long long)prev_t, (long long)T);
    prev_sample(s, x, t, prev_t, mo, v_pred, sample, total);
    r->counter++;
    return CDF_OK;
}
