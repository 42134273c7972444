/* The float32 noise schedule (betas, alphas_cumprod) as torch 1.13 computes it
 * on CPU, and the timesteps of set_timesteps as numpy 1.24 computes them. */
#include <math.h>
#include <string.h>

#include "schedulers/sched_fmath.h"
#include "schedulers/sched_internal.h"

static int cdf_sched_owns_zsnr(cdf_sched_kind k) {
    return k == CDF_SCHED_DDPM || k == CDF_SCHED_DDIM || k == CDF_SCHED_EULER || k == CDF_SCHED_EULER_ANCESTRAL ||
           k == CDF_SCHED_DPMSOLVER_MULTISTEP || k == CDF_SCHED_UNIPC_MULTISTEP;
}

/* torch.linspace for float32 on CPU: step = (end-start)/(steps-1) in float;
 * blocks of 8 (AVX2 Vectorized::arange) while two blocks fit, each from a
 * base fma(step, i0, start) before the halfway point or fma(-step, steps-1-i0, end)
 * after it, then base + j*step; the remainder element by element. */
void cdf_sched_linspace_f32(float start, float end, int64_t steps, float *out) {
    if (steps <= 0) return;
    if (steps == 1) {
        out[0] = start;
        return;
    }
    const float step = (end - start) / (float)(steps - 1);
    const int64_t halfway = steps / 2;
    const int64_t nvec = steps - steps % 16;
    for (int64_t i0 = 0; i0 < nvec; i0 += 8) {
        float base = i0 < halfway ? fmaf(step, (float)i0, start) : fmaf(-step, (float)(steps - i0 - 1), end);
        for (int j = 0; j < 8; j++) {
            float d = (float)j * step;
            out[i0 + j] = base + d;
        }
    }
    for (int64_t i = nvec; i < steps; i++)
        out[i] = i < halfway ? fmaf(step, (float)i, start) : fmaf(-step, (float)(steps - i - 1), end);
}

void cdf_sched_cumprod_f32(const float *a, float *out, int64_t n) {
    double acc = 1.0;
    for (int64_t i = 0; i < n; i++) {
        acc *= (double)a[i];
        out[i] = (float)acc;
    }
}

/* diffusers betas_for_alpha_bar(T, 0.999, "cosine" / "exp"): Python floats, then float32. */
static double alpha_bar_cos(double t) {
    double c = cos((t + 0.008) / 1.008 * 3.141592653589793 / 2);
    return pow(c, 2.0);
}

static double alpha_bar_exp(double t) { return exp(t * -12.0); }

static void betas_alpha_bar(int T, double (*fn)(double), float *betas) {
    for (int i = 0; i < T; i++) {
        double t1 = (double)i / T;
        double t2 = (double)(i + 1) / T;
        double b = 1 - fn(t2) / fn(t1);
        if (0.999 < b) b = 0.999; /* Python min(b, 0.999): keeps b when NaN */
        betas[i] = (float)b;
    }
}

/* rescale_zero_terminal_snr on float32 tensors (arXiv 2305.08891, Algorithm 1). */
static void rescale_zero_snr(float *betas, int T, float *tmp) {
    for (int i = 0; i < T; i++) tmp[i] = 1.0f - betas[i];
    cdf_sched_cumprod_f32(tmp, tmp, T);
    for (int i = 0; i < T; i++) tmp[i] = sqrtf(tmp[i]);
    const float s0 = tmp[0], sT = tmp[T - 1];
    for (int i = 0; i < T; i++) tmp[i] = tmp[i] - sT;
    const float d = s0 - sT;
    const float scale = s0 / d;
    for (int i = 0; i < T; i++) tmp[i] = tmp[i] * scale;
    for (int i = 0; i < T; i++) tmp[i] = tmp[i] * tmp[i];
    /* alphas = cat(bar[0:1], bar[1:] / bar[:-1]); betas = 1 - alphas */
    for (int i = T - 1; i >= 1; i--) betas[i] = 1.0f - tmp[i] / tmp[i - 1];
    betas[0] = 1.0f - tmp[0];
}

cdf_status cdf_sched_make_betas(const cdf_sched_config *cfg, float *betas, cdf_error *err) {
    const int T = cfg->num_train_timesteps;
    if (cfg->trained_betas && cfg->kind != CDF_SCHED_UNCLIP) { /* UnCLIP has no trained_betas (hidden key) */
        for (int i = 0; i < T; i++) betas[i] = (float)cfg->trained_betas[i];
    } else if (strcmp(cfg->beta_schedule, "linear") == 0) {
        cdf_sched_linspace_f32((float)cfg->beta_start, (float)cfg->beta_end, T, betas);
    } else if (strcmp(cfg->beta_schedule, "scaled_linear") == 0) {
        cdf_sched_linspace_f32((float)pow(cfg->beta_start, 0.5), (float)pow(cfg->beta_end, 0.5), T, betas);
        for (int i = 0; i < T; i++) betas[i] = betas[i] * betas[i];
    } else if (strcmp(cfg->beta_schedule, "squaredcos_cap_v2") == 0) {
        betas_alpha_bar(T, alpha_bar_cos, betas);
    } else if (strcmp(cfg->beta_schedule, "exp") == 0 && cfg->kind == CDF_SCHED_HEUN) {
        betas_alpha_bar(T, alpha_bar_exp, betas);
    } else if (strcmp(cfg->beta_schedule, "sigmoid") == 0 && cfg->kind == CDF_SCHED_DDPM) {
        /* torch.sigmoid(linspace(-6, 6, T)) * (beta_end - beta_start) + beta_start: the
         * vectorized kernel (SLEEF exp, 16 floats per iteration) up to T - T % 16,
         * the scalar one (libm exp) on the tail */
        cdf_sched_linspace_f32(-6.0f, 6.0f, T, betas);
        const float range = (float)(cfg->beta_end - cfg->beta_start);
        const float start = (float)cfg->beta_start;
        const int nvec = T - T % 16;
        for (int i = 0; i < T; i++) {
            float e = i < nvec ? cdf_sleef_expf(0.0f - betas[i]) : expf(-betas[i]);
            float sg = 1.0f / (1.0f + e);
            sg = sg * range;
            betas[i] = sg + start;
        }
    } else {
        return cdf_error_set(err, CDF_ERR_CONFIG, "scheduler config: field 'beta_schedule': '%s' is not implemented for %s",
                             cfg->beta_schedule, cdf_sched_kind_name(cfg->kind));
    }
    /* only the classes whose __init__ has the flag read it (others keep it as a hidden key) */
    if (cfg->rescale_betas_zero_snr && cdf_sched_owns_zsnr(cfg->kind)) {
        float *tmp = cdf_mallocn((size_t)T, sizeof *tmp);
        if (!tmp) return cdf_error_set(err, CDF_ERR_NOMEM, "scheduler: out of memory for the schedule");
        rescale_zero_snr(betas, T, tmp);
        cdf_free(tmp);
    }
    return CDF_OK;
}

/* numpy.arange(start, 0, -ratio): length ceil(start / ratio); element k is
 * start + k*delta with delta = (start - ratio) - start (numpy's fill from the
 * first two elements); rounded half to even as np.round. */
int cdf_sched_arange_down_count(double start, double ratio) {
    double len = ceil((start - 0.0) / ratio);
    return len <= 0 ? 0 : (int)len;
}

void cdf_sched_arange_down_rint(double start, double ratio, int count, double *out) {
    double second = start + (-ratio);
    double delta = second - start;
    for (int k = 0; k < count; k++) {
        double v;
        if (k == 0)
            v = start;
        else if (k == 1)
            v = second;
        else {
            double kd = (double)k * delta;
            v = start + kd;
        }
        out[k] = rint(v);
    }
}

cdf_status cdf_sched_make_timesteps(const cdf_sched_config *cfg, int n, int64_t **out, int *count, cdf_error *err) {
    *out = NULL;
    *count = 0;
    const int T = cfg->num_train_timesteps;
    int len = n;
    if (strcmp(cfg->timestep_spacing, "trailing") == 0) len = cdf_sched_arange_down_count(T, (double)T / n);
    int64_t *ts = cdf_mallocn(len > 0 ? (size_t)len : 1, sizeof *ts);
    if (!ts) return cdf_error_set(err, CDF_ERR_NOMEM, "scheduler: out of memory for %d timesteps", len);
    if (strcmp(cfg->timestep_spacing, "linspace") == 0) {
        /* np.linspace(0, T-1, n).round()[::-1]: i*step, the last one exactly T-1 */
        double step = n > 1 ? (double)(T - 1) / (n - 1) : 0.0;
        for (int i = 0; i < n; i++) {
            double v = i == n - 1 && n > 1 ? (double)(T - 1) : (double)i * step;
            ts[n - 1 - i] = (int64_t)rint(v);
        }
    } else if (strcmp(cfg->timestep_spacing, "leading") == 0) {
        int64_t ratio = T / n;
        for (int i = 0; i < n; i++) ts[i] = (int64_t)(n - 1 - i) * ratio + cfg->steps_offset;
    } else if (strcmp(cfg->timestep_spacing, "trailing") == 0) {
        double *v = cdf_mallocn(len > 0 ? (size_t)len : 1, sizeof *v);
        if (!v) {
            cdf_free(ts);
            return cdf_error_set(err, CDF_ERR_NOMEM, "scheduler: out of memory for %d timesteps", len);
        }
        cdf_sched_arange_down_rint(T, (double)T / n, len, v);
        for (int k = 0; k < len; k++) ts[k] = (int64_t)v[k] - 1;
        cdf_free(v);
    } else {
        cdf_free(ts);
        return cdf_error_set(err, CDF_ERR_CONFIG, "scheduler config: field 'timestep_spacing': '%s' is not supported",
                             cfg->timestep_spacing);
    }
    *out = ts;
    *count = len;
    return CDF_OK;
}
