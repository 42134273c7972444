/* Dynamic thresholding (diffusers _threshold_sample) for one batch element:
 * s = torch.quantile(|x|, ratio) with torch 1.13's float32 arithmetic,
 * clamped to [1, sample_max_value]; x = clamp(x, -s, s) / s. */
#include <math.h>

#include "schedulers/sched_internal.h"

static void swapf(float *a, float *b) {
    float t = *a;
    *a = *b;
    *b = t;
}

/* Rearranges v[0..n) so that v[k] is the k-th smallest, v[<k] <= v[k] <= v[>k]
 * (no NaN in v).  Iterative quickselect with median-of-three pivots. */
static void select_kth(float *v, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (hi > lo) {
        int64_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo]) swapf(&v[mid], &v[lo]);
        if (v[hi] < v[lo]) swapf(&v[hi], &v[lo]);
        if (v[hi] < v[mid]) swapf(&v[hi], &v[mid]);
        const float pivot = v[mid];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (pivot < v[j]) j--;
            if (i <= j) {
                swapf(&v[i], &v[j]);
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

/* torch.quantile(x, q, interpolation="linear") of n >= 1 non-NaN values in v
 * (reordered): q becomes a float32 tensor, rank = q * (n-1) in float32,
 * weight = rank - floor(rank), then lerp(below, above, weight) which the
 * AVX2 build evaluates with a fused multiply-add. */
static float quantile_linear(float *v, int64_t n, double q) {
    const float qf = (float)q;
    const float rank = qf * (float)(n - 1);
    int64_t below = (int64_t)rank;
    int64_t above = (int64_t)ceilf(rank);
    if (below > n - 1) below = n - 1;
    if (above > n - 1) above = n - 1;
    const float w = rank - (float)below;
    select_kth(v, n, below);
    const float a = v[below];
    float b = a;
    if (above != below) {
        /* after the selection every element past `below` is >= a: take their minimum */
        b = v[below + 1];
        for (int64_t i = below + 2; i < n; i++)
            if (v[i] < b) b = v[i];
    }
    const float diff = b - a;
    if (fabsf(w) < 0.5f) return fmaf(w, diff, a);
    return fmaf(-diff, 1.0f - w, b);
}

void cdf_sched_threshold(float *x, int64_t n, double ratio, double max_value, float *scratch) {
    if (n <= 0) return;
    int has_nan = 0;
    for (int64_t i = 0; i < n; i++) {
        scratch[i] = fabsf(x[i]);
        if (x[i] != x[i]) has_nan = 1;
    }
    float q = has_nan ? NAN : quantile_linear(scratch, n, ratio);
    /* torch.clamp(s, min=1, max=sample_max_value) */
    const float s = cdf_sched_clampf(q, 1.0f, (float)max_value);
    const float ns = -s;
    for (int64_t i = 0; i < n; i++) {
        float c = x[i];
        if (s != s)
            c = s;
        else
            c = cdf_sched_clampf(c, ns, s);
        x[i] = c / s;
    }
}

cdf_status cdf_sched_threshold_buffers(const cdf_sched_config *cfg, int64_t n, const char *who, float **x0buf,
                                       float **scratch, cdf_error *err) {
    *x0buf = *scratch = NULL;
    if (!cfg->thresholding || n <= 0) return CDF_OK;
    *x0buf = cdf_mallocn((size_t)n, sizeof **x0buf);
    *scratch = cdf_mallocn((size_t)n, sizeof **scratch);
    if (*x0buf && *scratch) return CDF_OK;
    cdf_free(*x0buf);
    cdf_free(*scratch);
    *x0buf = *scratch = NULL;
    return cdf_error_set(err, CDF_ERR_NOMEM, "%s.step: out of memory for thresholding", who);
}
