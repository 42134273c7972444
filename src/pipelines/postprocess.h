#ifndef CDF_PIPELINES_POSTPROCESS_H
#define CDF_PIPELINES_POSTPROCESS_H

#include "cdiffusers/pipeline.h"

/* x: [batch, c, h, w] sample -> out: [batch, h, w, c] of clamp(x / 2 + 0.5, 0, 1). */
void cdf_postprocess_nhwc(const float *x, int batch, int c, int h, int w, float *out);
/* out[i] = cdf_u8_from_unit(x[i]) (numpy_to_pil), for n values. */
void cdf_to_uint8(const float *x, size_t n, unsigned char *out);

#endif
