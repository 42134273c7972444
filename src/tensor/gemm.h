/* Matrix multiply: own blocked, packed GEMM with a micro-kernel per ISA
 * (AVX2+FMA on x86-64, chosen at run time; a plain scalar kernel everywhere)
 * and a plain reference loop beside it.
 *
 * The one numeric contract, on every path and ISA, for any thread count,
 * tiling or batch:
 *
 *     for each block q of CDF_GEMM_SUM_BLOCK consecutive k (in order):
 *         t_q = 0;  for p in the block, in order:  t_q = fma(A[i,p], B[p,j], t_q)
 *     s = t_0 + t_1 + ... (left to right)                            (float32)
 *     C[i,j] = alpha * s  (+ row_bias[i])  (+ col_bias[j])             (each rounded)
 *
 * so every output element has one reduction order that depends on k only,
 * and the fast kernels give the same bytes as cdf_sgemm_ref.
 *
 * With ex->precision CDF_PRECISION_BF16, the arithmetic of the vdpbf16ps
 * instruction (Intel's definition: fused multiply-adds, inputs
 * denormals-are-zero, results flushed to zero when tiny before rounding):
 *
 *     a = bf16(A[i,p]), b = bf16(B[p,j]): a subnormal float32 becomes a zero
 *         of its sign, else the nearest bfloat16, ties to even;
 *     steps: for each pair of k (2q, 2q+1) the odd one first, then the even
 *         one (a missing odd k at the end of an odd k is a step with zeros);
 *     for each block of CDF_GEMM_SUM_BLOCK steps: t = 0; t = ftz(fma(a, b, t))
 *     s = t_0, then s = ftz(daz(s) + t_q) for the next blocks
 *     C[i,j] = alpha * s (+ row_bias[i]) (+ col_bias[j])  (no flushing)
 *
 * the same bytes from the AVX2 kernel (run under MXCSR FTZ | DAZ), the
 * portable kernel and cdf_sgemm_ref_bf16. */
#ifndef CDF_TENSOR_GEMM_H
#define CDF_TENSOR_GEMM_H

#include "tensor/exec.h"

/* The summation block of the contract below (part of the numerics: changing
 * it changes results).  64 keeps the error bound of a k-long sum near
 * (64 + k/64) ulps: k is up to 11520 in SD's UNet. */
#define CDF_GEMM_SUM_BLOCK 64

/* The geometry of a convolution whose input is read as its im2col matrix
 * B[p, j]: p = (ci*kh + ky)*kw + kx (k = cin*kh*kw rows), j = (b*ho + oy)*wo
 * + ox (n = batch*ho*wo columns: the images side by side); out-of-image taps
 * are 0. */
typedef struct cdf_conv_geom {
    int cin, h, w;             /* input images [batch, cin, h, w] */
    int kh, kw, stride;
    int pad_t, pad_l;          /* top/left padding (bottom/right follow from ho, wo) */
    int ho, wo;                /* output size */
    int batch;                 /* images side by side (the GEMM's n tells how many columns it reads) */
} cdf_conv_geom;

/* One GEMM operand, a logical [rows, cols] matrix:
 *  - conv == NULL: stored row-major as dtype (F32, F16 or BF16; any
 *    alignment); element (r, c) at data[r*ld + c], or at data[c*ld + r] when
 *    trans is set (stored transposed);
 *  - conv != NULL (B only): data is the float32 image [cin, h, w] and the
 *    operand is its im2col matrix (dtype, trans and ld unused). */
typedef struct cdf_gemm_operand {
    const void *data;
    cdf_dtype dtype;
    int trans;
    int64_t ld;
    const cdf_conv_geom *conv;
} cdf_gemm_operand;

/* A float32 matrix operand (the common case). */
static inline cdf_gemm_operand cdf_gemm_f32(const float *data, int64_t ld, int trans) {
    cdf_gemm_operand o = {data, CDF_F32, trans, ld, NULL};
    return o;
}

/* C[m, n] (row stride ldc) = alpha * A[m, k] B[k, n] (+ row_bias[m]) (+
 * col_bias[n]) under the contract above; biases may be NULL.  C must not
 * overlap the operands.  Uses ex->threads threads over output tiles and
 * scratch slot CDF_SLOT_GEMM for packed panels.  CDF_OK, or CDF_ERR_NOMEM /
 * CDF_ERR_LIMIT (recorded in ex->err) when the panels cannot be allocated,
 * or CDF_ERR_UNSUPPORTED for an operand dtype other than F32/F16/BF16. */
cdf_status cdf_gemm(cdf_exec *ex, int m, int n, int k, float alpha, const cdf_gemm_operand *a,
                    const cdf_gemm_operand *b, const float *row_bias, const float *col_bias, float *c, int64_t ldc);

/* cdf_gemm with C's columns in blocks of cols_per_block, block q stored from
 * c + q * block_stride (row stride ldc inside a block): a convolution over a
 * batch writes its [cout, batch*hw] product straight into NCHW images
 * (cols_per_block = hw, block_stride = cout*hw, ldc = hw).  The same
 * arithmetic per element as cdf_gemm. */
cdf_status cdf_gemm_blocked_c(cdf_exec *ex, int m, int n, int k, float alpha, const cdf_gemm_operand *a,
                              const cdf_gemm_operand *b, const float *row_bias, const float *col_bias, float *c,
                              int64_t ldc, int64_t cols_per_block, int64_t block_stride);

/* cdf_gemm on float32 matrices: C = alpha * op(A) op(B), op(X) = X or X^T
 * (trans_a / trans_b non-zero); lda/ldb/ldc are the row strides as stored. */
cdf_status cdf_sgemm(cdf_exec *ex, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                     int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc);

/* The same contract as plain loops over float32 matrices (the reference the
 * fast paths are tested against, byte for byte). */
void cdf_sgemm_ref(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float *c, int64_t ldc);

/* The bf16 contract above as plain loops (the reference of bf16 mode). */
void cdf_sgemm_ref_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float *c, int64_t ldc);

/* The micro-kernel cdf_gemm uses with this exec ("avx2" or "scalar"). */
const char *cdf_gemm_kernel_name(cdf_exec *ex);

#endif
