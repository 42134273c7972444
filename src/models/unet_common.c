#include "models/unet_common.h"

#include <string.h>

void cdf_skip_free(cdf_skip_stack *s) {
    for (int i = 0; i < s->n; i++) cdf_aligned_free(s->buf[i]);
    s->n = 0;
}

cdf_status cdf_skip_push(cdf_exec *ex, cdf_skip_stack *s, const float *x, int batch, int ch, int h, int w) {
    if (s->n >= CDF_SKIP_MAX) return cdf_error_set(ex->err, CDF_ERR_LIMIT, "too many skip connections");
    float *b = cdf_buf(ex, (size_t)batch * ch * h * w);
    if (!b) return ex->err->status;
    memcpy(b, x, sizeof(float) * (size_t)batch * ch * h * w);
    s->buf[s->n] = b;
    s->ch[s->n] = ch;
    s->h[s->n] = h;
    s->w[s->n] = w;
    s->n++;
    return CDF_OK;
}

float *cdf_concat_channels(cdf_exec *ex, const float *x, int cx, const float *skip, int cs, int batch, int64_t hw) {
    float *y = cdf_buf(ex, (size_t)batch * (cx + cs) * hw);
    if (!y) return NULL;
    for (int b = 0; b < batch; b++) {
        memcpy(y + (size_t)b * (cx + cs) * hw, x + (size_t)b * cx * hw, sizeof(float) * (size_t)cx * hw);
        memcpy(y + ((size_t)b * (cx + cs) + cx) * hw, skip + (size_t)b * cs * hw, sizeof(float) * (size_t)cs * hw);
    }
    return y;
}

void cdf_replace(float **cur, float *y, int *h, int *w, int nh, int nw) {
    cdf_aligned_free(*cur);
    *cur = y;
    *h = nh;
    *w = nw;
}

cdf_status cdf_run_resnet(cdf_exec *ex, const cdf_resnet2d *r, float **cur, int batch, int *h, int *w,
                          const float *emb) {
    float *y = NULL;
    int ho, wo;
    cdf_status s = cdf_resnet2d_forward(ex, r, *cur, batch, *h, *w, emb, &y, &ho, &wo);
    if (s) return s;
    cdf_replace(cur, y, h, w, ho, wo);
    return CDF_OK;
}
