#include "tensor/attention.h"

#include <math.h>

#include "tensor/gemm.h"
#include "tensor/ops.h"

/* The one attention loop: cdf_attention (mask NULL) and cdf_attention_masked. */
static cdf_status attention_core(cdf_exec *ex, const float *q, int ldq, const float *k, int ldk, const float *v,
                                 int ldv, float *out, int ldo, int nq, int nkv, int heads, int dh, float scale,
                                 int causal, const float *mask, int ldm) {
    int qb = nq < CDF_ATTN_QBLOCK ? nq : CDF_ATTN_QBLOCK;
    float *sc = cdf_exec_scratch(ex, 3, (size_t)qb * (size_t)nkv); /* [qb, nkv]: one head's score tile */
    if (!sc) return ex->err ? ex->err->status : CDF_ERR_NOMEM;
    for (int h = 0; h < heads; h++) {
        for (int i0 = 0; i0 < nq; i0 += qb) {
            int rows = nq - i0 < qb ? nq - i0 : qb;
            cdf_status s = cdf_sgemm(ex, 0, 1, rows, nkv, dh, scale, q + (size_t)i0 * ldq + (size_t)h * dh, ldq,
                                     k + (size_t)h * dh, ldk, sc, nkv);
            if (s) return s;
            if (causal) {
                for (int r = 0; r < rows; r++)
                    for (int j = i0 + r + 1; j < nkv; j++) sc[(size_t)r * nkv + j] = -INFINITY;
            }
            if (mask) {
                for (int r = 0; r < rows; r++) {
                    const float *mr = mask + (size_t)(i0 + r) * (size_t)ldm; /* ldm 0: one row for every query */
                    float *sr = sc + (size_t)r * nkv;
                    for (int j = 0; j < nkv; j++) sr[j] = sr[j] + mr[j];
                }
            }
            cdf_softmax_rows(ex, sc, rows, nkv);
            s = cdf_sgemm(ex, 0, 0, rows, dh, nkv, 1.0f, sc, nkv, v + (size_t)h * dh, ldv,
                          out + (size_t)i0 * ldo + (size_t)h * dh, ldo);
            if (s) return s;
        }
    }
    return CDF_OK;
}

cdf_status cdf_attention(cdf_exec *ex, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                         float *out, int ldo, int nq, int nkv, int heads, int dh, float scale, int causal) {
    return attention_core(ex, q, ldq, k, ldk, v, ldv, out, ldo, nq, nkv, heads, dh, scale, causal, NULL, 0);
}

cdf_status cdf_attention_masked(cdf_exec *ex, const float *q, int ldq, const float *k, int ldk, const float *v,
                                int ldv, float *out, int ldo, int nq, int nkv, int heads, int dh, float scale,
                                const float *mask, int ldm) {
    return attention_core(ex, q, ldq, k, ldk, v, ldv, out, ldo, nq, nkv, heads, dh, scale, 0, mask, ldm);
}
