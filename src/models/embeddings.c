#include "models/embeddings.h"

#include <math.h>
#include <stdio.h>

#include "models/blocks2d.h"

void cdf_timestep_embedding(float t, int dim, int flip_sin_to_cos, double freq_shift, float *out) {
    /* exponent = (-ln(10000) * arange(half)) / (half - shift), all float32 */
    int half = dim / 2;
    float neg_log = (float)(-log(10000.0));
    float denom = (float)((double)half - freq_shift);
    for (int k = 0; k < half; k++) {
        float e = (neg_log * (float)k) / denom;
        float freq = (float)exp((double)e);
        float arg = t * freq;
        float sn = (float)sin((double)arg), cs = (float)cos((double)arg);
        out[flip_sin_to_cos ? half + k : k] = sn;
        out[flip_sin_to_cos ? k : half + k] = cs;
    }
    if (dim % 2) out[dim - 1] = 0.0f;
}

cdf_status cdf_time_mlp_load(cdf_loader *ld, const char *prefix, int in, int out, int act, int post_act,
                             cdf_time_mlp *m) {
    char p[256];
    m->act = act;
    m->post_act = post_act;
    snprintf(p, sizeof p, "%s.linear_1", prefix);
    cdf_status s = cdf_linear_load(ld, p, in, out, 1, &m->linear_1);
    if (s) return s;
    snprintf(p, sizeof p, "%s.linear_2", prefix);
    return cdf_linear_load(ld, p, out, out, 1, &m->linear_2);
}

cdf_status cdf_time_mlp_forward(cdf_exec *ex, const cdf_time_mlp *m, const float *x, int batch, float *y) {
    int out = m->linear_1.out;
    float *h = cdf_buf(ex, (size_t)batch * out);
    if (!h) return ex->err->status;
    cdf_status s = cdf_linear_forward(ex, &m->linear_1, x, batch, h);
    if (!s) {
        cdf_activate(ex, h, (size_t)batch * out, (cdf_act)m->act);
        s = cdf_linear_forward(ex, &m->linear_2, h, batch, y);
    }
    if (!s) cdf_activate(ex, y, (size_t)batch * out, (cdf_act)m->post_act);
    cdf_aligned_free(h);
    return s;
}
