/* Output post-processing shared by pipelines: (x / 2 + 0.5).clamp(0, 1),
 * NCHW -> NHWC, uint8 rounding, and numpy's pairwise abs-sum. */
#include "pipelines/postprocess.h"

#include <math.h>

#include "io/image.h"

void cdf_postprocess_nhwc(const float *x, int batch, int c, int h, int w, float *out) {
    for (int b = 0; b < batch; b++)
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < h * w; i++) {
                float v = x[((size_t)b * c + ch) * h * w + i] / 2.0f + 0.5f;
                v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
                out[((size_t)b * h * w + i) * c + ch] = v;
            }
}

void cdf_to_uint8(const float *x, size_t n, unsigned char *out) {
    for (size_t i = 0; i < n; i++) out[i] = cdf_u8_from_unit(x[i]);
}

/* numpy's pairwise_sum for float32 (8 accumulators, blocks of 128). */
static float pairwise(const float *a, size_t n) {
    if (n < 8) {
        float res = 0.0f;
        for (size_t i = 0; i < n; i++) res += fabsf(a[i]);
        return res;
    }
    if (n <= 128) {
        float r[8];
        for (int k = 0; k < 8; k++) r[k] = fabsf(a[k]);
        size_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int k = 0; k < 8; k++) r[k] += fabsf(a[i + k]);
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += fabsf(a[i]);
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise(a, n2) + pairwise(a + n2, n - n2);
}

/* numpy reduces a contiguous array through its buffered iterator: pairwise
 * within chunks of 8192 elements (the default buffer size), chunks added in
 * order to a float32 accumulator starting at the identity 0. */
float cdf_abs_sum_f32(const float *x, size_t n) {
    float acc = 0.0f;
    for (size_t off = 0; off < n; off += 8192) acc += pairwise(x + off, n - off < 8192 ? n - off : 8192);
    return acc;
}
