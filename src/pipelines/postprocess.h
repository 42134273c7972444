#ifndef CDF_PIPELINES_POSTPROCESS_H
#define CDF_PIPELINES_POSTPROCESS_H

#include "cdiffusers/pipeline.h"

/* x: [batch, c, h, w] sample -> out: [batch, h, w, c] of clamp(x / 2 + 0.5, 0, 1). */
void cdf_postprocess_nhwc(const float *x, int batch, int c, int h, int w, float *out);
/* out[i] = round_half_even(x[i] * 255) clamped to 0..255 (numpy_to_pil). */
void cdf_to_uint8(const float *x, size_t n, unsigned char *out);

#endif
