/* What DPMSolverMultistepScheduler and UniPCMultistepScheduler share: the
 * (alpha_t, sigma_t, lambda_t) of a sigma, and convert_model_output for one
 * element, both in torch's float32 arithmetic. */
#ifndef CDF_SCHEDULERS_MULTISTEP_H
#define CDF_SCHEDULERS_MULTISTEP_H

#include <math.h>

#include "schedulers/sched_fmath.h"
#include "schedulers/sched_internal.h"

/* _sigma_to_alpha_sigma_t and lambda = log(alpha) - log(sigma). */
typedef struct cdf_sched_asl {
    float alpha, sigma, lambda;
} cdf_sched_asl;

static inline cdf_sched_asl cdf_sched_to_asl(float sigma, int flow) {
    cdf_sched_asl r;
    if (flow) {
        r.alpha = 1.0f - sigma;
        r.sigma = sigma;
    } else {
        float d = sigma * sigma + 1.0f;
        r.alpha = 1.0f / sqrtf(d);
        r.sigma = sigma * r.alpha;
    }
    r.lambda = cdf_sleef_logf(r.alpha) - cdf_sleef_logf(r.sigma);
    return r;
}

/* convert_model_output for one element: the x0 prediction (x0 != 0) or the
 * epsilon prediction, from sample xk and model output mk at sigma sg. */
static inline float cdf_sched_convert_output(int x0, int pred, cdf_sched_asl a, float sg, float xk, float mk) {
    if (x0) {
        if (pred == CDF_SCHED_PRED_EPSILON) {
            float t = a.sigma * mk;
            t = xk - t;
            return t / a.alpha;
        }
        if (pred == CDF_SCHED_PRED_SAMPLE) return mk;
        if (pred == CDF_SCHED_PRED_V) {
            float p = a.alpha * xk, q = a.sigma * mk;
            return p - q;
        }
        float t = sg * mk; /* flow prediction */
        return xk - t;
    }
    if (pred == CDF_SCHED_PRED_EPSILON) return mk;
    if (pred == CDF_SCHED_PRED_SAMPLE) {
        float t = a.alpha * mk;
        t = xk - t;
        return t / a.sigma;
    }
    float p = a.alpha * mk, q = a.sigma * xk;
    return p + q;
}

#endif
