#include "tensor/ops.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "tensor/gemm.h"
#include "tensor/winograd.h"

int cdf_act_from_name(const char *name) {
    if (!name) return -1;
    if (strcasecmp(name, "silu") == 0 || strcasecmp(name, "swish") == 0) return CDF_ACT_SILU;
    if (strcasecmp(name, "mish") == 0) return CDF_ACT_MISH;
    if (strcasecmp(name, "gelu") == 0) return CDF_ACT_GELU;
    if (strcasecmp(name, "relu") == 0) return CDF_ACT_RELU;
    return -1;
}

float cdf_act_apply(cdf_act act, float v) {
    switch (act) {
    case CDF_ACT_SILU: return cdf_silu_ref(v);
    case CDF_ACT_MISH: {
        /* torch: x * tanh(softplus(x)), softplus = log1p(exp(x)) (threshold 20) */
        float sp = v > 20.0f ? v : log1pf(expf(v));
        return v * tanhf(sp);
    }
    case CDF_ACT_GELU: return 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
    case CDF_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case CDF_ACT_NONE: break;
    }
    return v;
}

/* y[i] = act(x[i] * scale + shift), or act(x[i]) when !affine, with the vector SiLU where this exec has one */
static void act_run(unsigned cpu, const float *x, float *y, int64_t n, int affine, float scale, float shift,
                    cdf_act act) {
#if CDF_HAVE_X86
    if (act == CDF_ACT_SILU && (cpu & CDF_CPU_AVX2_FMA)) {
        cdf_silu_avx2(x, y, n, affine, scale, shift);
        return;
    }
#endif
    (void)cpu;
    if (affine)
        for (int64_t i = 0; i < n; i++) y[i] = cdf_act_apply(act, x[i] * scale + shift);
    else
        for (int64_t i = 0; i < n; i++) y[i] = cdf_act_apply(act, x[i]);
}

void cdf_activate(cdf_exec *ex, float *x, size_t n, cdf_act act) {
    if (act == CDF_ACT_NONE) return;
    unsigned cpu = cdf_exec_cpu(ex);
    int64_t nn = (int64_t)n, chunk = 4096, nchunks = (nn + chunk - 1) / chunk;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)nn * 8)) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t i0 = c * chunk, len = nn - i0 < chunk ? nn - i0 : chunk;
        act_run(cpu, x + i0, x + i0, len, 0, 1.0f, 0.0f, act);
    }
}

cdf_status cdf_conv2d_any(cdf_exec *ex, const float *x, int batch, int cin, int h, int w, const void *wt,
                          cdf_dtype wdt, const float *bias, int cout, int kh, int kw, int stride, int pad_t, int pad_l,
                          int pad_b, int pad_r, float *y) {
    int ho = (h + pad_t + pad_b - kh) / stride + 1;
    int wo = (w + pad_l + pad_r - kw) / stride + 1;
    int64_t hwo = (int64_t)ho * wo;
    int kdim = cin * kh * kw;
    int direct = (kh == 1 && kw == 1 && stride == 1 && pad_t == 0 && pad_l == 0 && pad_b == 0 && pad_r == 0);
    cdf_conv_geom g = {cin, h, w, kh, kw, stride, pad_t, pad_l, ho, wo, batch};
    if (cdf_winograd_applies(ex, cin, cout, kh, kw, stride, ho, wo))
        return cdf_conv3x3_winograd(ex, x, batch, cin, h, w, wt, wdt, bias, cout, pad_t, pad_l, pad_b, pad_r, y);
    cdf_gemm_operand a = {wt, wdt, 0, kdim, NULL};
    if (direct && batch == 1) { /* y [cout, h*w] = W [cout, cin] x [cin, h*w] (+ bias per row), x read as it is */
        cdf_gemm_operand xo = cdf_gemm_f32(x, hwo, 0);
        return cdf_gemm(ex, cout, (int)hwo, kdim, 1.0f, &a, &xo, bias, NULL, y, hwo);
    }
    /* y [batch][cout, ho*wo] = W [cout, kdim] x im2col(x) [kdim, batch*ho*wo] (+ bias per row): the images side
     * by side in one product, so the weight panels are packed once for the batch; each element keeps the
     * arithmetic it has alone */
    if ((int64_t)batch * hwo > INT32_MAX)
        return cdf_error_set(ex->err, CDF_ERR_LIMIT, "convolution of %d images of %lldx%lld pixels is too large", batch,
                             (long long)ho, (long long)wo);
    cdf_gemm_operand xo = {x, CDF_F32, 0, 0, &g};
    return cdf_gemm_blocked_c(ex, cout, (int)(batch * hwo), kdim, 1.0f, &a, &xo, bias, NULL, y, hwo, hwo,
                              (int64_t)cout * hwo);
}

cdf_status cdf_conv2d_f32(cdf_exec *ex, const float *x, int batch, int cin, int h, int w, const float *wt,
                          const float *bias, int cout, int kh, int kw, int stride, int pad_t, int pad_l, int pad_b,
                          int pad_r, float *y) {
    return cdf_conv2d_any(ex, x, batch, cin, h, w, wt, CDF_F32, bias, cout, kh, kw, stride, pad_t, pad_l, pad_b, pad_r,
                          y);
}

void cdf_conv2d_ref(const float *x, int batch, int cin, int h, int w, const float *wt, const float *bias, int cout,
                    int kh, int kw, int stride, int pad_t, int pad_l, int pad_b, int pad_r, float *y) {
    int ho = (h + pad_t + pad_b - kh) / stride + 1;
    int wo = (w + pad_l + pad_r - kw) / stride + 1;
    for (int b = 0; b < batch; b++)
        for (int co = 0; co < cout; co++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    double s = 0.0;
                    for (int ci = 0; ci < cin; ci++)
                        for (int ky = 0; ky < kh; ky++)
                            for (int kx = 0; kx < kw; kx++) {
                                int iy = oy * stride + ky - pad_t, ix = ox * stride + kx - pad_l;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                s += (double)x[(((size_t)b * cin + ci) * h + iy) * w + ix] *
                                     (double)wt[(((size_t)co * cin + ci) * kh + ky) * kw + kx];
                            }
                    if (bias) s += bias[co];
                    y[(((size_t)b * cout + co) * ho + oy) * wo + ox] = (float)s;
                }
}

void cdf_group_norm(cdf_exec *ex, const float *x, int batch, int channels, int64_t hw, int groups, float eps,
                    const float *gamma, const float *beta, cdf_act act, float *y) {
    int cpg = channels / groups;
    int total = batch * groups;
    unsigned cpu = cdf_exec_cpu(ex);
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)total * cpg * hw * 4)) schedule(static)
    for (int bg = 0; bg < total; bg++) {
        int b = bg / groups, g = bg % groups;
        size_t base = ((size_t)b * channels + (size_t)g * cpg) * (size_t)hw;
        size_t n = (size_t)cpg * (size_t)hw;
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += x[base + i];
        double mean = s / (double)n;
        double v = 0.0;
        for (size_t i = 0; i < n; i++) {
            double d = x[base + i] - mean;
            v += d * d;
        }
        float var = (float)(v / (double)n);
        float meanf = (float)mean;
        float rstd = 1.0f / sqrtf(var + eps);
        for (int c = 0; c < cpg; c++) {
            int ch = g * cpg + c;
            float scale = rstd * gamma[ch];
            float shift = beta[ch] - scale * meanf;
            const float *xs = x + base + (size_t)c * hw;
            float *ys = y + base + (size_t)c * hw;
            act_run(cpu, xs, ys, hw, 1, scale, shift, act);
        }
    }
}

cdf_status cdf_linear_any(cdf_exec *ex, const float *x, int rows, int in, const void *wt, cdf_dtype wdt,
                          const float *bias, int out, float *y) {
    cdf_gemm_operand xo = cdf_gemm_f32(x, in, 0), wo = {wt, wdt, 1, in, NULL};
    return cdf_gemm(ex, rows, out, in, 1.0f, &xo, &wo, NULL, bias, y, out);
}

void cdf_add_channel_bias(cdf_exec *ex, float *y, const float *v, int batch, int channels, int64_t hw) {
    int total = batch * channels;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)total * hw)) schedule(static)
    for (int bc = 0; bc < total; bc++) {
        float bv = v[bc];
        float *r = y + (size_t)bc * hw;
        for (int64_t i = 0; i < hw; i++) r[i] += bv;
    }
}

void cdf_upsample_nearest2x(cdf_exec *ex, const float *x, int batch, int c, int h, int w, float *y) {
    int total = batch * c;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)total * 4 * h * w)) schedule(static)
    for (int bc = 0; bc < total; bc++) {
        const float *xs = x + (size_t)bc * h * w;
        float *ys = y + (size_t)bc * 4 * h * w;
        for (int iy = 0; iy < 2 * h; iy++) {
            const float *xr = xs + (size_t)(iy / 2) * w;
            float *yr = ys + (size_t)iy * 2 * w;
            for (int ix = 0; ix < 2 * w; ix++) yr[ix] = xr[ix / 2];
        }
    }
}

void cdf_softmax_row_ref(float *row, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = row[i] > mx ? row[i] : mx;
    float lane[8] = {0};
    for (int i = 0; i < n; i++) {
        row[i] = cdf_expf_sleef(row[i] - mx);
        lane[i % 8] += row[i];
    }
    float s = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
    if (n < 8) /* one partial vector: its lanes left to right */
        for (int i = 1; i < n; i++) s = i == 1 ? lane[0] + lane[1] : s + lane[i];
    float inv = 1.0f / s;
    for (int i = 0; i < n; i++) row[i] *= inv;
}

cdf_softmax_row_fn cdf_softmax_row_kernel(cdf_exec *ex) {
#if CDF_HAVE_X86
    if (cdf_exec_cpu(ex) & CDF_CPU_AVX2_FMA) return cdf_softmax_row_avx2;
#endif
    (void)ex;
    return cdf_softmax_row_ref;
}

void cdf_softmax_rows(cdf_exec *ex, float *x, int rows, int n) {
    cdf_softmax_row_fn row_fn = cdf_softmax_row_kernel(ex);
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)rows * n * 8)) schedule(static)
    for (int r = 0; r < rows; r++) row_fn(x + (size_t)r * n, n);
}

void cdf_transpose(cdf_exec *ex, const float *x, int batch, int rows, int cols, float *y) {
    for (int b = 0; b < batch; b++) {
        const float *xb = x + (size_t)b * rows * cols;
        float *yb = y + (size_t)b * rows * cols;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)rows * cols)) schedule(static)
        for (int c = 0; c < cols; c++)
            for (int r = 0; r < rows; r++) yb[(size_t)c * rows + r] = xb[(size_t)r * cols + c];
    }
}

void cdf_geglu(cdf_exec *ex, const float *h, int rows, int inner, float *y) {
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)rows * inner * 8)) schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *hr = h + (size_t)r * 2 * inner;
        float *yr = y + (size_t)r * inner;
        for (int j = 0; j < inner; j++) yr[j] = hr[j] * cdf_act_apply(CDF_ACT_GELU, hr[inner + j]);
    }
}

void cdf_upsample_nearest(cdf_exec *ex, const float *x, int batch, int c, int h, int w, int oh, int ow, float *y) {
    float sy = (float)h / (float)oh, sx = (float)w / (float)ow;
    int total = batch * c;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)total * oh * ow)) schedule(static)
    for (int bc = 0; bc < total; bc++) {
        const float *xs = x + (size_t)bc * h * w;
        float *ys = y + (size_t)bc * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            int iy = (int)floorf((float)oy * sy);
            if (iy > h - 1) iy = h - 1;
            for (int ox = 0; ox < ow; ox++) {
                int ix = (int)floorf((float)ox * sx);
                if (ix > w - 1) ix = w - 1;
                ys[(size_t)oy * ow + ox] = xs[(size_t)iy * w + ix];
            }
        }
    }
}
