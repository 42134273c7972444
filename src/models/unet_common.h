/* Pieces shared by the UNet forward passes: the skip-connection stack,
 * channel concatenation, and in-place replacement of the running activation. */
#ifndef CDF_MODELS_UNET_COMMON_H
#define CDF_MODELS_UNET_COMMON_H

#include "models/blocks2d.h"

#define CDF_SKIP_MAX 128

/* Skip connections of one forward pass, pushed on the way down. */
typedef struct cdf_skip_stack {
    float *buf[CDF_SKIP_MAX]; /* each [batch, ch[i], h[i], w[i]], owned */
    int ch[CDF_SKIP_MAX], h[CDF_SKIP_MAX], w[CDF_SKIP_MAX];
    int n;
} cdf_skip_stack;

/* Frees every buffer still on the stack. */
void cdf_skip_free(cdf_skip_stack *s);
/* Pushes a copy of x [batch, ch, h, w]. */
cdf_status cdf_skip_push(cdf_exec *ex, cdf_skip_stack *s, const float *x, int batch, int ch, int h, int w);
/* torch.cat([x, skip], dim=1) per image: new [batch, cx + cs, hw] buffer, or NULL (ex->err set). */
float *cdf_concat_channels(cdf_exec *ex, const float *x, int cx, const float *skip, int cs, int batch, int64_t hw);
/* *cur = resnet(*cur): the old buffer is freed, h and w updated. */
cdf_status cdf_run_resnet(cdf_exec *ex, const cdf_resnet2d *r, float **cur, int batch, int *h, int *w,
                          const float *emb);
/* *cur = y where y is a new buffer of size (h, w); frees the old one. */
void cdf_replace(float **cur, float *y, int *h, int *w, int nh, int nw);

#endif
