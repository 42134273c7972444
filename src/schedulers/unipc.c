/* UniPCMultistepScheduler.step (diffusers 0.32.2): convert_model_output, the
 * UniC corrector on the previous step's result, then the UniP predictor, B(h)
 * variants bh1 / bh2, predict_x0 or noise prediction.  Scalars are 0-dim
 * float32 tensors (torch.log / torch.expm1: SLEEF), the rho coefficients come
 * from torch.linalg.solve (cdf_sched_solve_f32: OpenBLAS's LU as torch runs it
 * on AVX-512 CPUs, in plain C), and the einsum over K >= 2
 * history terms accumulates with fused multiply-adds as the BLAS kernel does
 * for SD-sized latents (K * numel >= 400; smaller tensors take torch's naive
 * bmm, which rounds each product). */
#include <string.h>

#include "schedulers/sched_fmath.h"
#include "schedulers/sched_internal.h"
#include "schedulers/sched_multistep.h"


/* torch.pow(x, e) for a small integer exponent on float32. */
static float tpow(float x, int e) {
    switch (e) {
    case 0: return 1.0f;
    case 1: return x;
    case 2: return x * x;
    case 3: return x * x * x;
    default: return (float)pow((double)x, (double)e);
    }
}

/* The B(h) coefficients of one update of order p: hh, h_phi_1, B_h and the
 * rhos (p-1 of them for the predictor, p for the corrector). */
typedef struct bh_coef {
    float hh, h_phi_1, B_h;
    float rhos[CDF_SCHED_MAX_SOLVER_ORDER];
    int nrhos;
} bh_coef;

static int bh_coefficients(int p, float h, const float *rk, int predict_x0, int bh2, int corrector, bh_coef *o) {
    float rks[CDF_SCHED_MAX_SOLVER_ORDER];
    for (int k = 0; k < p - 1; k++) rks[k] = rk[k];
    rks[p - 1] = 1.0f;
    o->hh = predict_x0 ? -h : h;
    o->h_phi_1 = cdf_sleef_expm1f(o->hh);
    float h_phi_k = o->h_phi_1 / o->hh - 1.0f;
    o->B_h = bh2 ? cdf_sleef_expm1f(o->hh) : o->hh;
    float R[CDF_SCHED_MAX_SOLVER_ORDER * CDF_SCHED_MAX_SOLVER_ORDER], b[CDF_SCHED_MAX_SOLVER_ORDER];
    long factorial = 1;
    for (int k = 1; k <= p; k++) {
        for (int j = 0; j < p; j++) R[(k - 1) * p + j] = tpow(rks[j], k - 1);
        float t = h_phi_k * (float)factorial;
        b[k - 1] = t / o->B_h;
        factorial *= k + 1;
        h_phi_k = h_phi_k / o->hh - (float)(1.0 / (double)factorial);
    }
    o->nrhos = 0;
    if (corrector) {
        if (p == 1) {
            o->rhos[0] = 0.5f;
            o->nrhos = 1;
            return 0;
        }
        o->nrhos = p;
        return cdf_sched_solve_f32(p, R, b, o->rhos, 1);
    }
    if (p == 1) return 0;
    o->nrhos = p - 1;
    if (p == 2) {
        o->rhos[0] = 0.5f;
        return 0;
    }
    float Rs[CDF_SCHED_MAX_SOLVER_ORDER * CDF_SCHED_MAX_SOLVER_ORDER]; /* R[:-1, :-1], not contiguous for torch */
    for (int r = 0; r < p - 1; r++)
        for (int c = 0; c < p - 1; c++) Rs[r * (p - 1) + c] = R[r * p + c];
    return cdf_sched_solve_f32(p - 1, Rs, b, o->rhos, 0);
}

/* einsum("k,bkc...->bc...", rho, D) at element k: D_j = (m_j - m0) / rk_j. */
static inline float history_sum(int K, const float *rho, float *const *mj, const float *rkv, const float *m0,
                                int64_t k) {
    float acc = 0.0f;
    for (int j = 0; j < K; j++) {
        float d = mj[j][k] - m0[k];
        d = d / rkv[j];
        acc = j == 0 ? rho[0] * d : fmaf(rho[j], d, acc);
    }
    return acc;
}

cdf_status cdf_unipc_step(cdf_scheduler *s, int i, const float *model_out, float *sample, int batch, int64_t n,
                          cdf_error *err) {
    const cdf_sched_config *c = &s->cfg;
    const int64_t total = (int64_t)batch * n;
    const int order_cfg = c->solver_order;
    /* model_outputs[order], a spare slot for the incoming output, last_sample */
    cdf_status st = cdf_sched_state(s, order_cfg + 2, total, err);
    if (st) return st;
    sched_run *r = &s->run;
    const int flow = c->use_flow_sigmas;
    const int px0 = c->predict_x0;
    const int bh2 = strcmp(c->solver_type, "bh2") == 0;
    const int pred = strcmp(c->prediction_type, "flow_prediction") == 0 ? CDF_SCHED_PRED_FLOW : cdf_sched_pred_kind(c);
    float *conv = s->state + (int64_t)order_cfg * total; /* [total] converted model output (spare slot) */
    float *last = r->last_sample;
    /* convert_model_output */
    const float sg = s->sigmas[i];
    const cdf_sched_asl a = cdf_sched_to_asl(sg, flow);
    for (int64_t k = 0; k < total; k++) {
        const float xk = sample[k], mk = model_out[k];
        conv[k] = cdf_sched_convert_output(px0, pred, a, sg, xk, mk);
    }
    if (px0 && c->thresholding) {
        float *x0buf = NULL, *scratch = NULL; /* [n] each */
        st = cdf_sched_threshold_buffers(c, n, "UniPCMultistepScheduler", &x0buf, &scratch, err);
        if (st) return st;
        for (int b = 0; b < batch; b++)
            cdf_sched_threshold(conv + (int64_t)b * n, n, c->dynamic_thresholding_ratio, c->sample_max_value, scratch);
        cdf_free(x0buf);
        cdf_free(scratch);
    }
    int disabled = 0;
    for (size_t j = 0; j < c->n_disable_corrector; j++) disabled |= c->disable_corrector[j] == i - 1;
    const int use_corrector = i > 0 && !disabled && r->have_last;
    float *const *mo = r->outputs; /* model_outputs, [order_cfg - 1] newest */
    if (use_corrector) {
        const int p = r->this_order;
        const cdf_sched_asl at = cdf_sched_to_asl(s->sigmas[i], flow), a0 = cdf_sched_to_asl(s->sigmas[i - 1], flow);
        const float h = at.lambda - a0.lambda;
        float rk[CDF_SCHED_MAX_SOLVER_ORDER];
        float *mj[CDF_SCHED_MAX_SOLVER_ORDER];
        for (int k = 1; k < p; k++) {
            const cdf_sched_asl ai = cdf_sched_to_asl(s->sigmas[i - (k + 1)], flow);
            rk[k - 1] = (ai.lambda - a0.lambda) / h;
            mj[k - 1] = mo[order_cfg - 1 - k];
        }
        bh_coef bc;
        if (bh_coefficients(p, h, rk, px0, bh2, 1, &bc))
            return cdf_error_set(err, CDF_ERR_ARG, "UniPCMultistepScheduler.step: singular corrector system at step %d", i);
        const float *m0 = mo[order_cfg - 1];
        const float cx = px0 ? at.sigma / a0.sigma : at.alpha / a0.alpha;
        const float cm = px0 ? at.alpha * bc.h_phi_1 : at.sigma * bc.h_phi_1;
        const float cb = px0 ? at.alpha * bc.B_h : at.sigma * bc.B_h;
        const float rc = bc.rhos[bc.nrhos - 1];
        for (int64_t k = 0; k < total; k++) {
            float u = cx * last[k];
            float w = cm * m0[k];
            u = u - w;
            float d1t = conv[k] - m0[k];
            d1t = rc * d1t;
            float corr = p > 1 ? history_sum(p - 1, bc.rhos, mj, rk, m0, k) + d1t : d1t + 0.0f;
            corr = cb * corr;
            sample[k] = u - corr;
        }
    }
    /* model_outputs shift; the converted output takes the last slot */
    float *drop = r->outputs[0];
    memmove(r->outputs, r->outputs + 1, (size_t)(order_cfg - 1) * sizeof(float *));
    r->outputs[order_cfg - 1] = conv;
    /* the dropped buffer becomes the spare for the next call */
    {
        /* conv lives in the spare region: swap it with the dropped buffer's region */
        memcpy(drop, conv, (size_t)total * sizeof(float));
        r->outputs[order_cfg - 1] = drop;
    }
    if (r->n_outputs < order_cfg) r->n_outputs++;
    int this_order = c->lower_order_final ? (order_cfg < s->n_timesteps - i ? order_cfg : s->n_timesteps - i)
                                          : order_cfg;
    if (this_order > r->lower_order_nums + 1) this_order = r->lower_order_nums + 1;
    r->this_order = this_order;
    memcpy(last, sample, (size_t)total * sizeof(float));
    r->have_last = 1;
    /* UniP */
    {
        const int p = this_order;
        const cdf_sched_asl at = cdf_sched_to_asl(s->sigmas[i + 1], flow), a0 = cdf_sched_to_asl(s->sigmas[i], flow);
        const float h = at.lambda - a0.lambda;
        float rk[CDF_SCHED_MAX_SOLVER_ORDER];
        float *mj[CDF_SCHED_MAX_SOLVER_ORDER];
        for (int k = 1; k < p; k++) {
            const cdf_sched_asl ai = cdf_sched_to_asl(s->sigmas[i - k], flow);
            rk[k - 1] = (ai.lambda - a0.lambda) / h;
            mj[k - 1] = mo[order_cfg - 1 - k];
        }
        bh_coef bc;
        if (bh_coefficients(p, h, rk, px0, bh2, 0, &bc))
            return cdf_error_set(err, CDF_ERR_ARG, "UniPCMultistepScheduler.step: singular predictor system at step %d", i);
        const float *m0 = mo[order_cfg - 1];
        const float cx = px0 ? at.sigma / a0.sigma : at.alpha / a0.alpha;
        const float cm = px0 ? at.alpha * bc.h_phi_1 : at.sigma * bc.h_phi_1;
        const float cb = px0 ? at.alpha * bc.B_h : at.sigma * bc.B_h;
        const float zero_term = cb * 0.0f;
        for (int64_t k = 0; k < total; k++) {
            float u = cx * sample[k];
            float w = cm * m0[k];
            u = u - w;
            float pr = p > 1 ? cb * history_sum(p - 1, bc.rhos, mj, rk, m0, k) : zero_term;
            sample[k] = u - pr;
        }
    }
    if (r->lower_order_nums < order_cfg) r->lower_order_nums++;
    return CDF_OK;
}
