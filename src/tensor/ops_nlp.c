#include "tensor/ops_nlp.h"

#include <math.h>
#include <string.h>

#include "tensor/gemm.h"
#include "tensor/half.h"
#include "tensor/ops.h"

int cdf_ffn_act_from_name(const char *name, cdf_ffn_act *out) {
    if (!name) return -1;
    if (strcmp(name, "quick_gelu") == 0) {
        *out = CDF_FFN_QUICK_GELU;
    } else if (strcmp(name, "gelu") == 0) {
        *out = CDF_FFN_GELU;
    } else if (strcmp(name, "gelu_new") == 0 || strcmp(name, "gelu_pytorch_tanh") == 0) {
        *out = CDF_FFN_GELU_TANH;
    } else {
        return -1;
    }
    return 0;
}

float cdf_ffn_act_apply(cdf_ffn_act act, float v) {
    switch (act) {
    case CDF_FFN_QUICK_GELU: {
        /* torch: x * sigmoid(1.702 * x), the scalar taken as float32; sigmoid as its vector kernel */
        float z = 1.702f * v;
        return v * (1.0f / (1.0f + cdf_expf_sleef(-z)));
    }
    case CDF_FFN_GELU: return v * 0.5f * (1.0f + erff(v * (float)M_SQRT1_2));
    case CDF_FFN_GELU_TANH: {
        const float k_beta = (float)(M_SQRT2 * M_2_SQRTPI * 0.5), k_kappa = 0.044715f;
        float inner = k_beta * (v + k_kappa * (v * v * v));
        return 0.5f * v * (1.0f + tanhf(inner));
    }
    }
    return v;
}

void cdf_ffn_activate(cdf_exec *ex, float *x, size_t n, cdf_ffn_act act) {
    int64_t nn = (int64_t)n;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)nn * 8)) schedule(static)
    for (int64_t i = 0; i < nn; i++) x[i] = cdf_ffn_act_apply(act, x[i]);
}

void cdf_layer_norm_rows(cdf_exec *ex, const float *x, int64_t rows, int dim, double eps, const float *gamma,
                         const float *beta, float *y) {
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)rows * dim * 4)) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *yr = y + (size_t)r * dim;
        double s = 0.0;
        for (int i = 0; i < dim; i++) s += xr[i];
        double mean = s / dim;
        double v = 0.0;
        for (int i = 0; i < dim; i++) {
            double d = xr[i] - mean;
            v += d * d;
        }
        double var = v / dim;
        float rstd = (float)(1.0 / sqrt(var + eps));
        float shift = -rstd * (float)mean;
        for (int i = 0; i < dim; i++) yr[i] = (xr[i] * rstd + shift) * gamma[i] + beta[i];
    }
}

cdf_status cdf_embedding_rows(cdf_exec *ex, cdf_dtype dtype, const void *table, int64_t nrows, int dim,
                              const int64_t *ids, int n, float *y) {
    size_t es = cdf_dtype_size(dtype);
    if (dtype != CDF_F32 && dtype != CDF_F16 && dtype != CDF_BF16 && dtype != CDF_F64)
        return cdf_error_set(ex->err, CDF_ERR_UNSUPPORTED, "embedding table of dtype %s is not supported",
                             cdf_dtype_name(dtype));
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= nrows)
            return cdf_error_set(ex->err, CDF_ERR_ARG, "token id %lld (index %d) is outside the embedding table [0, %lld)",
                                 (long long)ids[i], i, (long long)nrows);
    const unsigned char *t = table;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)n * dim)) schedule(static)
    for (int i = 0; i < n; i++)
        cdf_convert_to_f32(dtype, t + (size_t)ids[i] * (size_t)dim * es, y + (size_t)i * dim, (size_t)dim);
    return CDF_OK;
}

void cdf_causal_softmax_rows(cdf_exec *ex, float *x, int n) {
    cdf_softmax_row_fn row_fn = cdf_softmax_row_kernel(ex);
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)n * n * 4)) schedule(static)
    for (int r = 0; r < n; r++) {
        float *row = x + (size_t)r * n;
        /* the masked keys' exp is 0: summing them into their lanes changes nothing */
        row_fn(row, r + 1);
        for (int i = r + 1; i < n; i++) row[i] = 0.0f;
    }
}

cdf_status cdf_causal_attention(cdf_exec *ex, const float *q, const float *k, const float *v, int seq, int heads, int hd,
                          float *scores, float *out) {
    int ld = heads * hd;
    for (int h = 0; h < heads; h++) {
        size_t off = (size_t)h * hd;
        /* scores: [seq, seq] = q_h k_h^T; the masked upper triangle is computed and then dropped */
        cdf_status s = cdf_sgemm(ex, 0, 1, seq, seq, hd, 1.0f, q + off, ld, k + off, ld, scores, seq);
        if (s) return s;
        cdf_causal_softmax_rows(ex, scores, seq);
        if ((s = cdf_sgemm(ex, 0, 0, seq, hd, seq, 1.0f, scores, seq, v + off, ld, out + off, ld))) return s;
    }
    return CDF_OK;
}

void cdf_add_inplace(cdf_exec *ex, float *y, const float *x, size_t n) {
    int64_t nn = (int64_t)n;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)nn)) schedule(static)
    for (int64_t i = 0; i < nn; i++) y[i] += x[i];
}

void cdf_scale_inplace(cdf_exec *ex, float *x, size_t n, float s) {
    int64_t nn = (int64_t)n;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)nn)) schedule(static)
    for (int64_t i = 0; i < nn; i++) x[i] *= s;
}
