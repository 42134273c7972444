/* DPMSolverMultistepScheduler.step (diffusers 0.32.2): convert_model_output,
 * model output history, first / second (midpoint, heun) / third order
 * updates for dpmsolver++, dpmsolver, sde-dpmsolver++ and sde-dpmsolver,
 * lower_order_final / euler_at_final.  Scalars are 0-dim float32 tensors:
 * torch.log / torch.exp are SLEEF's (sched_fmath), the rest IEEE float32 in
 * Python evaluation order. */
#include <string.h>

#include "schedulers/sched_fmath.h"
#include "schedulers/sched_internal.h"
#include "schedulers/sched_multistep.h"

enum { ALG_PP, ALG_DPM, ALG_SDE_PP, ALG_SDE };

static int alg_kind(const char *a) {
    if (strcmp(a, "dpmsolver") == 0) return ALG_DPM;
    if (strcmp(a, "sde-dpmsolver++") == 0) return ALG_SDE_PP;
    if (strcmp(a, "sde-dpmsolver") == 0) return ALG_SDE;
    return ALG_PP;
}


cdf_status cdf_dpm_step(cdf_scheduler *s, int i, const float *model_out, int model_channels, float *sample, int batch,
                        int channels, int64_t spatial, const float *noise, cdf_error *err) {
    const cdf_sched_config *c = &s->cfg;
    const int64_t n = (int64_t)channels * spatial, total = (int64_t)batch * n;
    const int alg = alg_kind(c->algorithm_type);
    const int plus = alg == ALG_PP || alg == ALG_SDE_PP;
    const int pred = strcmp(c->prediction_type, "flow_prediction") == 0 ? CDF_SCHED_PRED_FLOW : cdf_sched_pred_kind(c);
    const int learned = strcmp(c->variance_type, "learned") == 0 || strcmp(c->variance_type, "learned_range") == 0;
    const int slice3 = learned && pred == CDF_SCHED_PRED_EPSILON;
    if (model_channels != channels && !(slice3 && channels == 3 && model_channels >= 3))
        return cdf_error_set(err, CDF_ERR_SHAPE,
                             "DPMSolverMultistepScheduler.step: model_output has %d channels, sample has %d", model_channels,
                             channels);
    const int order_cfg = c->solver_order;
    cdf_status st = cdf_sched_state(s, order_cfg, total, err);
    if (st) return st;
    float *thr_x0 = NULL, *thr_scratch = NULL; /* [n] each */
    st = cdf_sched_threshold_buffers(c, n, "DPMSolverMultistepScheduler", &thr_x0, &thr_scratch, err);
    if (st) return st;
    sched_run *r = &s->run;
    const int nts = s->n_timesteps;
    const int lower_final = i == nts - 1 && (c->euler_at_final || (c->lower_order_final && nts < 15) ||
                                             strcmp(c->final_sigmas_type, "zero") == 0);
    const int lower_second = i == nts - 2 && c->lower_order_final && nts < 15;
    const int flow = c->use_flow_sigmas;
    /* convert_model_output into the slot model_outputs[0] leaves: shift, then fill [-1] */
    float *slot = r->outputs[0];
    memmove(r->outputs, r->outputs + 1, (size_t)(order_cfg - 1) * sizeof(float *));
    r->outputs[order_cfg - 1] = slot;
    if (r->n_outputs < order_cfg) r->n_outputs++;
    {
        const float sg = s->sigmas[i];
        const cdf_sched_asl a = cdf_sched_to_asl(sg, flow);
        for (int b = 0; b < batch; b++) {
            const float *x = sample + (int64_t)b * n;
            const float *m = model_out + (int64_t)b * model_channels * spatial;
            float *o = slot + (int64_t)b * n;
            for (int64_t k = 0; k < n; k++) {
                const float xk = x[k], mk = m[k];
                o[k] = cdf_sched_convert_output(plus, pred, a, sg, xk, mk);
            }
            if (c->thresholding) {
                if (plus) {
                    cdf_sched_threshold(o, n, c->dynamic_thresholding_ratio, c->sample_max_value, thr_scratch);
                } else { /* eps -> x0 -> threshold -> eps */
                    for (int64_t k = 0; k < n; k++) {
                        float t = a.sigma * o[k];
                        t = x[k] - t;
                        thr_x0[k] = t / a.alpha;
                    }
                    cdf_sched_threshold(thr_x0, n, c->dynamic_thresholding_ratio, c->sample_max_value, thr_scratch);
                    for (int64_t k = 0; k < n; k++) {
                        float t = a.alpha * thr_x0[k];
                        t = x[k] - t;
                        o[k] = t / a.sigma;
                    }
                }
            }
        }
    }
    cdf_free(thr_x0);
    cdf_free(thr_scratch);
    int ord;
    if (order_cfg == 1 || r->lower_order_nums < 1 || lower_final)
        ord = 1;
    else if (order_cfg == 2 || r->lower_order_nums < 2 || lower_second)
        ord = 2;
    else
        ord = 3;
    const cdf_sched_asl at = cdf_sched_to_asl(s->sigmas[i + 1], flow), a0 = cdf_sched_to_asl(s->sigmas[i], flow);
    const float h = at.lambda - a0.lambda;
    const int sde = alg == ALG_SDE_PP || alg == ALG_SDE;
    float cn = 0.0f; /* noise coefficient */
    if (alg == ALG_SDE_PP) {
        float e = cdf_sleef_expf(-2.0f * h);
        cn = at.sigma * sqrtf(1.0f - e);
    } else if (alg == ALG_SDE) {
        float e = cdf_sleef_expf(2.0f * h);
        cn = at.sigma * sqrtf(e - 1.0f);
    }
    const float emh = cdf_sleef_expf(-h), eh = cdf_sleef_expf(h), e2 = cdf_sleef_expf(-2.0f * h);
    float c0, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f;
    int s1 = -1, s2 = -1, s3 = -1; /* signs of the D0, D1, D2 terms */
    if (alg == ALG_SDE_PP) {
        c0 = (at.sigma / a0.sigma) * emh;
        c1 = at.alpha * (1.0f - e2);
        s1 = +1;
    } else if (plus) {
        c0 = at.sigma / a0.sigma;
        c1 = at.alpha * (emh - 1.0f);
    } else {
        c0 = at.alpha / a0.alpha;
        c1 = at.sigma * (eh - 1.0f);
        if (alg == ALG_SDE) c1 = 2.0f * c1;
    }
    const float *m0 = r->outputs[order_cfg - 1];
    const float *m1 = ord >= 2 ? r->outputs[order_cfg - 2] : NULL, *m2 = ord >= 3 ? r->outputs[order_cfg - 3] : NULL;
    float inv_r0 = 0.0f, inv_r1 = 0.0f, r_ratio = 0.0f, inv_rsum = 0.0f;
    if (ord == 2) {
        const cdf_sched_asl a1 = cdf_sched_to_asl(s->sigmas[i - 1], flow);
        const float h0 = a0.lambda - a1.lambda;
        const float r0 = h0 / h;
        inv_r0 = 1.0f / r0;
        const int midpoint = strcmp(c->solver_type, "midpoint") == 0;
        if (alg == ALG_PP) {
            c2 = midpoint ? 0.5f * c1 : at.alpha * ((emh - 1.0f) / h + 1.0f);
            s2 = midpoint ? -1 : +1;
        } else if (alg == ALG_DPM) {
            c2 = midpoint ? 0.5f * c1 : at.sigma * ((eh - 1.0f) / h - 1.0f);
        } else if (alg == ALG_SDE_PP) {
            c2 = midpoint ? 0.5f * c1 : at.alpha * ((1.0f - e2) / (-2.0f * h) + 1.0f);
            s2 = +1;
        } else {
            c2 = midpoint ? at.sigma * (eh - 1.0f) : 2.0f * (at.sigma * ((eh - 1.0f) / h - 1.0f));
        }
    } else if (ord == 3) {
        const cdf_sched_asl a1 = cdf_sched_to_asl(s->sigmas[i - 1], flow), a2 = cdf_sched_to_asl(s->sigmas[i - 2], flow);
        const float h0 = a0.lambda - a1.lambda, h1 = a1.lambda - a2.lambda;
        const float r0 = h0 / h, r1 = h1 / h;
        inv_r0 = 1.0f / r0;
        inv_r1 = 1.0f / r1;
        const float rs = r0 + r1;
        r_ratio = r0 / rs;
        inv_rsum = 1.0f / rs;
        if (alg == ALG_PP) {
            c2 = at.alpha * ((emh - 1.0f) / h + 1.0f);
            s2 = +1;
            float t = emh - 1.0f;
            t = t + h;
            t = t / (h * h);
            c3 = at.alpha * (t - 0.5f);
        } else if (alg == ALG_DPM) {
            c2 = at.sigma * ((eh - 1.0f) / h - 1.0f);
            float t = eh - 1.0f;
            t = t - h;
            t = t / (h * h);
            c3 = at.sigma * (t - 0.5f);
        } else { /* sde-dpmsolver++ */
            c2 = at.alpha * ((1.0f - e2) / (-2.0f * h) + 1.0f);
            s2 = +1;
            float t = 1.0f - e2;
            t = t - 2.0f * h;
            float h2 = 2.0f * h;
            t = t / (h2 * h2);
            c3 = at.alpha * (t - 0.5f);
            s3 = +1;
        }
    }
    for (int64_t k = 0; k < total; k++) {
        const float d0 = m0[k];
        float v = c0 * sample[k];
        float t1 = c1 * d0;
        v = s1 > 0 ? v + t1 : v - t1;
        if (ord == 2) {
            float d1 = m0[k] - m1[k];
            d1 = inv_r0 * d1;
            float t2 = c2 * d1;
            v = s2 > 0 ? v + t2 : v - t2;
        } else if (ord == 3) {
            float d10 = m0[k] - m1[k];
            d10 = inv_r0 * d10;
            float d11 = m1[k] - m2[k];
            d11 = inv_r1 * d11;
            float dd = d10 - d11;
            float d1 = r_ratio * dd;
            d1 = d10 + d1;
            float d2 = inv_rsum * dd;
            float t2 = c2 * d1;
            v = s2 > 0 ? v + t2 : v - t2;
            float t3 = c3 * d2;
            v = s3 > 0 ? v + t3 : v - t3;
        }
        if (sde) {
            float z = cn * noise[k];
            v = v + z;
        }
        sample[k] = v;
    }
    if (r->lower_order_nums < order_cfg) r->lower_order_nums++;
    return CDF_OK;
}
