/* Float32 neural-network operators on NCHW activations.  An image's result
 * never depends on the batch it is in, and threads split independent outputs
 * only, so every element has one fixed reduction order. */
#ifndef CDF_TENSOR_OPS_H
#define CDF_TENSOR_OPS_H

#include "tensor/exec.h"
#include "tensor/vmath.h"

typedef enum cdf_act { CDF_ACT_NONE = 0, CDF_ACT_SILU, CDF_ACT_MISH, CDF_ACT_GELU, CDF_ACT_RELU } cdf_act;

/* Parses diffusers' get_activation names (swish, silu, mish, gelu, relu;
 * case-insensitive); -1 when unknown. */
int cdf_act_from_name(const char *name);

/* y = conv2d(x) per image, as one GEMM over the batch's implicit im2col
 * matrix (the images side by side; cdf_gemm's fma-chain contract, k =
 * cin*kh*kw in (ci, ky, kx) order, then + bias: an image's bytes do not
 * depend on the batch).  x: [batch, cin, h, w] float32; wt: [cout, cin, kh,
 * kw] of dtype wdt (F32, F16 or BF16, read as stored); bias: [cout] or NULL;
 * y: [batch, cout, ho, wo] with ho = (h + pad_t + pad_b - kh) / stride + 1
 * (likewise wo).  CDF_OK, or the GEMM's error (in ex->err). */
cdf_status cdf_conv2d_any(cdf_exec *ex, const float *x, int batch, int cin, int h, int w, const void *wt,
                          cdf_dtype wdt, const float *bias, int cout, int kh, int kw, int stride, int pad_t, int pad_l,
                          int pad_b, int pad_r, float *y);
/* cdf_conv2d_any with float32 weights. */
cdf_status cdf_conv2d_f32(cdf_exec *ex, const float *x, int batch, int cin, int h, int w, const float *wt,
                          const float *bias, int cout, int kh, int kw, int stride, int pad_t, int pad_l, int pad_b,
                          int pad_r, float *y);
/* Plain direct convolution with the same contract (reference for tests). */
void cdf_conv2d_ref(const float *x, int batch, int cin, int h, int w, const float *wt, const float *bias, int cout,
                    int kh, int kw, int stride, int pad_t, int pad_l, int pad_b, int pad_r, float *y);

/* GroupNorm per image: x, y: [batch, channels, hw] (may alias); gamma, beta:
 * [channels]; statistics in float64, then act applied. */
void cdf_group_norm(cdf_exec *ex, const float *x, int batch, int channels, int64_t hw, int groups, float eps,
                    const float *gamma, const float *beta, cdf_act act, float *y);

/* GEGLU: y[r, j] = h[r, j] * gelu(h[r, inner + j]) for h: [rows, 2*inner], y: [rows, inner]. */
void cdf_geglu(cdf_exec *ex, const float *h, int rows, int inner, float *y);

/* y = x @ w^T + bias.  x: [rows, in] float32; wt: [out, in] of dtype wdt
 * (F32, F16 or BF16); bias: [out] or NULL; y: [rows, out].  A row's result
 * never depends on the other rows (cdf_gemm's contract). */
cdf_status cdf_linear_any(cdf_exec *ex, const float *x, int rows, int in, const void *wt, cdf_dtype wdt,
                          const float *bias, int out, float *y);

/* In-place activation over n floats. */
void cdf_activate(cdf_exec *ex, float *x, size_t n, cdf_act act);
/* Scalar activation (the same formula cdf_activate uses). */
float cdf_act_apply(cdf_act act, float v);

/* y[b, c, :] += v[b, c] (per-channel broadcast).  y: [batch, channels, hw]; v: [batch, channels]. */
void cdf_add_channel_bias(cdf_exec *ex, float *y, const float *v, int batch, int channels, int64_t hw);

/* Nearest-neighbour 2x upsampling.  x: [batch, c, h, w]; y: [batch, c, 2h, 2w]. */
void cdf_upsample_nearest2x(cdf_exec *ex, const float *x, int batch, int c, int h, int w, float *y);

/* Nearest-neighbour resize as torch's F.interpolate(size=(oh, ow)):
 * source index floor(dst * (float)in / out), clamped.  x: [batch, c, h, w];
 * y: [batch, c, oh, ow]. */
void cdf_upsample_nearest(cdf_exec *ex, const float *x, int batch, int c, int h, int w, int oh, int ow, float *y);

/* Row softmax in place: x: [rows, n], n >= 1; each row as
 * cdf_softmax_row_ref defines it (torch's order of sums, SLEEF's exp). */
void cdf_softmax_rows(cdf_exec *ex, float *x, int rows, int n);
/* The row softmax for this exec's CPU (cdf_softmax_row_ref's bits on every path). */
cdf_softmax_row_fn cdf_softmax_row_kernel(cdf_exec *ex);

/* Transposes per image: x: [batch, rows, cols] -> y: [batch, cols, rows]. */
void cdf_transpose(cdf_exec *ex, const float *x, int batch, int rows, int cols, float *y);

#endif
