/* Matrix multiply: OpenBLAS for speed, a plain reference kernel beside it
 * (the fast one is tested against it).  Row-major; every output element has
 * one fixed reduction order for a given (m, n, k), whatever the thread count. */
#ifndef CDF_TENSOR_GEMM_H
#define CDF_TENSOR_GEMM_H

#include "tensor/exec.h"

/* C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C.  op(X) is X or X^T
 * (trans_a / trans_b non-zero); lda/ldb/ldc are row strides of A, B, C as
 * stored.  Uses BLAS with ex->threads threads. */
void cdf_sgemm(const cdf_exec *ex, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
               int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* Same contract, plain loops: sum over k in increasing order in float32,
 * then alpha * sum + beta * C. */
void cdf_sgemm_ref(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc);

#endif
