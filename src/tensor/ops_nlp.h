/* Float32 operators on token sequences (text encoders): activations are
 * row-major [rows, dim], one row per token.  Every operator treats rows (or
 * one sequence) independently with the same code path, and threads split
 * independent outputs only, so results never depend on the batch a sequence
 * is in or on the thread count. */
#ifndef CDF_TENSOR_OPS_NLP_H
#define CDF_TENSOR_OPS_NLP_H

#include "tensor/exec.h"

/* Feed-forward activations of transformers' ACT2FN that text encoders use. */
typedef enum cdf_ffn_act {
    CDF_FFN_QUICK_GELU = 0, /* "quick_gelu": x * sigmoid(1.702 x) */
    CDF_FFN_GELU,           /* "gelu": exact erf form */
    CDF_FFN_GELU_TANH       /* "gelu_new" / "gelu_pytorch_tanh": tanh approximation */
} cdf_ffn_act;

/* Maps a transformers hidden_act name to *out; -1 when this build does not
 * implement it (the caller names the field in its error). */
int cdf_ffn_act_from_name(const char *name, cdf_ffn_act *out);

/* Scalar form of the activation (what cdf_ffn_activate applies). */
float cdf_ffn_act_apply(cdf_ffn_act act, float v);

/* In place over x[n]. */
void cdf_ffn_activate(cdf_exec *ex, float *x, size_t n, cdf_ffn_act act);

/* LayerNorm over the last dimension: x, y: [rows, dim] (may alias); gamma,
 * beta: [dim].  Mean and (biased) variance in float64, two passes, fixed
 * order; then rstd = 1/sqrt(var + eps) and y = (x * rstd - mean * rstd) *
 * gamma + beta in float32, as torch's CPU kernel arranges it. */
void cdf_layer_norm_rows(cdf_exec *ex, const float *x, int64_t rows, int dim, double eps, const float *gamma,
                         const float *beta, float *y);

/* Embedding lookup: y[i, :] = table[ids[i], :] as float32.  table: [nrows,
 * dim] of dtype F32, F16, BF16 or F64 (the raw little-endian bytes, possibly
 * misaligned); ids: [n]; y: [n, dim].  An id outside [0, nrows) is
 * CDF_ERR_ARG naming the id and its index (nothing meaningful in y then). */
cdf_status cdf_embedding_rows(cdf_exec *ex, cdf_dtype dtype, const void *table, int64_t nrows, int dim,
                              const int64_t *ids, int n, float *y);

/* Causal softmax in place: x: [n, n] scores of one head; row i is the
 * softmax of x[i, 0..i] (cdf_softmax_row_ref) and x[i, i+1..n-1] become exactly 0 (what adding finfo.min gives). */
void cdf_causal_softmax_rows(cdf_exec *ex, float *x, int n);

/* Multi-head causal self-attention core for ONE sequence:
 * out[:, h*hd:(h+1)*hd] = softmax_causal(q_h k_h^T) v_h for each head h.
 * q, k, v, out: [seq, heads*hd] (q already scaled); scores: [seq, seq]
 * caller-owned work buffer. */
cdf_status cdf_causal_attention(cdf_exec *ex, const float *q, const float *k, const float *v, int seq, int heads, int hd,
                          float *scores, float *out);

/* y[i] += x[i] over n floats (residual connection). */
void cdf_add_inplace(cdf_exec *ex, float *y, const float *x, size_t n);

/* x[i] *= s over n floats. */
void cdf_scale_inplace(cdf_exec *ex, float *x, size_t n, float s);

#endif
