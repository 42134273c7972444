/* 3x3 stride-1 convolution by Winograd's minimal filtering F(4x4, 3x3)
 * (Lavin & Gray's matrices, points 0, +-1, +-2, infinity): each 4x4 output
 * tile is A^T [ (G g G^T) . (B^T d B) ] A over its 6x6 input window d, so the
 * 36 products per tile and channel pair replace 144 multiply-adds.
 *
 * The numeric contract, for any thread count, tiling or batch:
 *
 *     U[xi][co][ci] = float(G g G^T) of the float32 weights, in float64;
 *     V[xi][ci][t]  = B^T d B in float32 (rows first, then columns; the
 *                     1-D formulas in winograd.c), d the tile's zero-padded
 *                     input window;
 *     M[xi][co][t]  = sum over ci of U V under cdf_gemm's contract (k = cin);
 *     Y             = A^T M A in float32 (columns first, then rows),
 *                     + bias[co] when there is a bias;
 *
 * so an output element depends on its image and its place in its tile only
 * (tiles start at output row and column 0 of each image): the same bytes
 * alone or in a batch, on any thread count, from the AVX2 or the portable
 * GEMM kernel, and from cdf_conv3x3_winograd_ref.  Its error against the
 * exact convolution is larger than the direct GEMM's (the transforms scale
 * values by up to 8 and cancel): tests/test_ops.c states the bound it keeps. */
#ifndef CDF_TENSOR_WINOGRAD_H
#define CDF_TENSOR_WINOGRAD_H

#include "tensor/exec.h"

/* Whether cdf_conv2d_any computes a convolution of this per-image shape by
 * Winograd (in float32 mode): a 3x3 kernel at stride 1, an output of at
 * least 8x8 pixels and at least 8 input and output channels (smaller ones
 * spend more on the transforms than they save; measured in bench/README.md).
 * The batch size never enters: an image takes the same path alone or in a
 * batch. */
int cdf_winograd_applies(const cdf_exec *ex, int cin, int cout, int kh, int kw, int stride, int ho, int wo);

/* y = conv2d(x, wt, bias) with a 3x3 kernel, stride 1 and the given padding,
 * under the contract above.  x: [batch, cin, h, w] float32; wt: [cout, cin,
 * 3, 3] of dtype wdt (F32, F16 or BF16); bias: [cout] or NULL; y: [batch,
 * cout, ho, wo], ho = h + pad_t + pad_b - 2 (likewise wo), >= 1.  Uses
 * scratch slot CDF_SLOT_WINOGRAD and calls the GEMM's micro-kernel on its
 * own panels; CDF_OK, or
 * CDF_ERR_NOMEM / CDF_ERR_LIMIT / CDF_ERR_UNSUPPORTED recorded in ex->err. */
cdf_status cdf_conv3x3_winograd(cdf_exec *ex, const float *x, int batch, int cin, int h, int w, const void *wt,
                                cdf_dtype wdt, const float *bias, int cout, int pad_t, int pad_l, int pad_b, int pad_r,
                                float *y);

/* cdf_conv3x3_winograd with mb output channels per weight block and nt
 * tiles per chunk (0: the sizes it would choose, and the transformed
 * weights kept in the exec's cdf_exec_derived where it allows and the call
 * is small; the same bytes for any). */
cdf_status cdf_conv3x3_winograd_blocks(cdf_exec *ex, const float *x, int batch, int cin, int h, int w, const void *wt,
                                       cdf_dtype wdt, const float *bias, int cout, int pad_t, int pad_l, int pad_b,
                                       int pad_r, int mb, int nt, float *y);

/* The same contract as plain loops over one tile at a time, with float32
 * weights (the reference the fast path is tested against, byte for byte). */
void cdf_conv3x3_winograd_ref(const float *x, int batch, int cin, int h, int w, const float *wt, const float *bias,
                              int cout, int pad_t, int pad_l, int pad_b, int pad_r, float *y);

#endif
