/* set_timesteps of the ten classes: timesteps (numpy), sigmas (np.interp in
 * float64, Karras / exponential / Lu / flow schedules, log-sigma
 * interpolation back to timesteps), init_noise_sigma.  numpy's float32 log
 * and torch's exp are reproduced (sched_fmath); float64 exp/log/pow use libm
 * (numpy's AVX512 float64 kernels can differ by 1 ulp in float64, which the
 * float32 results do not see). */
#include <float.h>
#include <string.h>

#include "schedulers/sched_fmath.h"
#include "schedulers/sched_internal.h"

void cdf_sched_train_sigmas(const cdf_scheduler *s, float *out) {
    for (int t = 0; t < s->T; t++) {
        float a = s->alphas_cumprod[t];
        float r = (1.0f - a) / a;
        out[t] = sqrtf(r);
    }
}

/* np.linspace(start, stop, num) in float64. */
static void np_linspace(double start, double stop, int num, double *out) {
    if (num <= 0) return;
    const double delta = stop - start;
    const int div = num - 1;
    if (div == 0) {
        out[0] = 0.0 * delta + start;
        return;
    }
    const double step = delta / div;
    for (int i = 0; i < num; i++) out[i] = step == 0.0 ? ((double)i / div) * delta + start : (double)i * step + start;
    out[num - 1] = stop;
}

/* np.interp(x, arange(n), fp) with float32 fp: numpy's binary search and
 * slope*(x - xp[j]) + fp[j] in float64. */
static double np_interp(double x, const float *fp, int n) {
    if (x != x) return x;
    if (x < 0.0) return fp[0];
    if (x > (double)(n - 1)) return fp[n - 1];
    if (x == (double)(n - 1)) return fp[n - 1];
    int j = (int)floor(x);
    if (j >= n - 1) j = n - 2;
    if ((double)j == x) return fp[j];
    const double slope = ((double)fp[j + 1] - (double)fp[j]) / 1.0;
    double r = slope * (x - (double)j) + (double)fp[j];
    if (r != r) {
        r = slope * (x - (double)(j + 1)) + (double)fp[j + 1];
        if (r != r && fp[j] == fp[j + 1]) r = fp[j];
    }
    return r;
}

/* diffusers _sigma_to_t with numpy 1.24 value-based casting: the float64
 * log-sigma meets the float32 log_sigmas table in float32, w is float32, t float64. */
static double sigma_to_t(double sigma, const float *log_sigmas, int T) {
    if (T < 2) return 0.0; /* numpy would index log_sigmas[-1]: meaningless with one training step */
    const double ls64 = log(sigma > 1e-10 ? sigma : (sigma != sigma ? sigma : 1e-10));
    const float ls = (float)ls64;
    /* cumsum(dists >= 0).argmax(): first index where the running count peaks */
    int count = 0, best = 0, best_i = 0;
    for (int j = 0; j < T; j++) {
        float d = ls - log_sigmas[j];
        count += d >= 0.0f;
        if (count > best) {
            best = count;
            best_i = j;
        }
    }
    int lo = best_i;
    if (lo > T - 2) lo = T - 2;
    const float low = log_sigmas[lo], high = log_sigmas[lo + 1];
    float num = low - ls;
    float den = low - high;
    float w = num / den;
    if (w < 0.0f) w = 0.0f; /* np.clip: NaN stays */
    if (w > 1.0f) w = 1.0f;
    const float omw = 1.0f - w;
    const double a = (double)omw * (double)lo;
    const double b = (double)w * (double)(lo + 1);
    return a + b;
}

/* Karras et al. (rho 7): numpy float64. */
static void karras(double smin, double smax, int n, double *out) {
    const double rho = 7.0;
    const double min_inv = pow(smin, 1.0 / rho), max_inv = pow(smax, 1.0 / rho);
    np_linspace(0.0, 1.0, n, out);
    for (int i = 0; i < n; i++) {
        double r = out[i] * (min_inv - max_inv);
        out[i] = pow(max_inv + r, rho);
    }
}

/* np.exp(np.linspace(math.log(smax), math.log(smin), n)). */
static void exponential(double smin, double smax, int n, double *out) {
    np_linspace(log(smax), log(smin), n, out);
    for (int i = 0; i < n; i++) out[i] = exp(out[i]);
}

/* Scratch of the builder. */
typedef struct build {
    int T, n;
    float *train;      /* [T] training sigmas (float32) */
    float *logs;       /* [T] np.log(train) (float32) */
    double *ts;        /* [cap] timesteps (float64 view) */
    double *sig;       /* [cap] sigmas before the final one (float64 view) */
    int nts, nsig;
    int ts_kind;       /* 0 float32, 1 float64, 2 int64 */
} build;

static int alloc_build(build *b, int T, int n) {
    memset(b, 0, sizeof *b);
    b->T = T;
    b->n = n;
    const size_t cap = (size_t)n + 16; /* PNDM with the Runge-Kutta warm-up: n + 9 calls */
    b->train = cdf_mallocn((size_t)T, sizeof(float));
    b->logs = cdf_mallocn((size_t)T, sizeof(float));
    b->ts = cdf_mallocn(cap, sizeof(double));
    b->sig = cdf_mallocn(cap, sizeof(double));
    return b->train && b->logs && b->ts && b->sig;
}

static void free_build(build *b) {
    cdf_free(b->train);
    cdf_free(b->logs);
    cdf_free(b->ts);
    cdf_free(b->sig);
}

/* Float32 timesteps of Euler / Euler a / LMS / Heun for the spacing. */
static int float_spacing(const cdf_sched_config *c, int T, int n, double *out) {
    if (strcmp(c->timestep_spacing, "linspace") == 0) {
        double *tmp = out;
        np_linspace(0.0, (double)(T - 1), n, tmp);
        for (int i = 0; i < n / 2; i++) {
            double t = tmp[i];
            tmp[i] = tmp[n - 1 - i];
            tmp[n - 1 - i] = t;
        }
        for (int i = 0; i < n; i++) out[i] = (float)out[i];
        return n;
    }
    if (strcmp(c->timestep_spacing, "leading") == 0) {
        const int64_t ratio = T / n;
        for (int i = 0; i < n; i++) {
            float v = (float)(double)((int64_t)(n - 1 - i) * ratio);
            out[i] = (double)(v + (float)c->steps_offset);
        }
        return n;
    }
    /* trailing: arange(T, 0, -T/n).round().astype(float32) - 1 */
    const int cnt = cdf_sched_arange_down_count(T, (double)T / n);
    cdf_sched_arange_down_rint(T, (double)T / n, cnt, out);
    for (int i = 0; i < cnt; i++) out[i] = (double)((float)out[i] - 1.0f);
    return cnt;
}

/* Integer timesteps of DPM / UniPC (last = num_train_timesteps - clipped). */
static int int_spacing(const cdf_sched_config *c, int T, int last, int n, double *out) {
    if (strcmp(c->timestep_spacing, "linspace") == 0) {
        double *tmp = cdf_mallocn((size_t)n + 1, sizeof *tmp);
        if (!tmp) return -1;
        np_linspace(0.0, (double)(last - 1), n + 1, tmp);
        for (int i = 0; i < n; i++) out[i] = rint(tmp[n - i]);
        cdf_free(tmp);
        return n;
    }
    if (strcmp(c->timestep_spacing, "leading") == 0) {
        const int64_t ratio = last / (n + 1);
        for (int i = 0; i < n; i++) out[i] = (double)((int64_t)(n - i) * ratio + c->steps_offset);
        return n;
    }
    const int cnt = cdf_sched_arange_down_count(last, (double)T / n);
    if (cnt > n + 1) return -2;
    cdf_sched_arange_down_rint(last, (double)T / n, cnt, out);
    for (int i = 0; i < cnt; i++) out[i] -= 1.0;
    return cnt;
}

static double config_or(double v, double fallback) { return v == v ? v : fallback; }

/* The float64 sigmas -> float32 table with the final sigma appended. */
static int finish_sigmas(cdf_scheduler *s, const build *b, double last) {
    s->n_sigmas = b->nsig + 1;
    s->sigmas = cdf_mallocn((size_t)s->n_sigmas, sizeof(float));
    if (!s->sigmas) return 0;
    for (int i = 0; i < b->nsig; i++) s->sigmas[i] = (float)b->sig[i];
    s->sigmas[b->nsig] = (float)last;
    return 1;
}

static float sigma_min_last(const cdf_scheduler *s) {
    float a = s->alphas_cumprod[0];
    float r = (1.0f - a) / a;
    return sqrtf(r);
}

/* Euler, Euler a, LMS, Heun. */
static cdf_status build_sigma_kind(cdf_scheduler *s, build *b) {
    const cdf_sched_config *c = &s->cfg;
    const int T = b->T, n = b->n;
    const int k = c->kind;
    b->nts = float_spacing(c, T, n, b->ts);
    b->ts_kind = 0;
    for (int i = 0; i < b->nts; i++) b->sig[i] = np_interp(b->ts[i], b->train, T);
    b->nsig = b->nts;
    if (k == CDF_SCHED_EULER && strcmp(c->interpolation_type, "log_linear") == 0) {
        /* torch.linspace(np.log(sigmas[-1]), np.log(sigmas[0]), n + 1).exp() in float32 */
        float *lin = cdf_mallocn((size_t)n + 1, sizeof *lin);
        if (!lin) return CDF_ERR_NOMEM;
        cdf_sched_linspace_f32(cdf_np_logf(b->train[T - 1]), cdf_np_logf(b->train[0]), n + 1, lin);
        for (int i = 0; i <= n; i++) b->sig[i] = cdf_sleef_expf(lin[i]);
        cdf_free(lin);
        b->nsig = n + 1;
    }
    const int has_sig = k != CDF_SCHED_EULER_ANCESTRAL;
    if (has_sig && (c->use_karras_sigmas || c->use_exponential_sigmas)) {
        double smin = b->sig[b->nsig - 1], smax = b->sig[0];
        if (!(k == CDF_SCHED_LMS && c->use_karras_sigmas)) { /* LMS's Karras ignores config sigma_min/max */
            smin = config_or(c->sigma_min, smin);
            smax = config_or(c->sigma_max, smax);
        }
        if (c->use_karras_sigmas)
            karras(smin, smax, n, b->sig);
        else
            exponential(smin, smax, n, b->sig);
        b->nsig = n;
        for (int i = 0; i < n; i++) b->ts[i] = sigma_to_t(b->sig[i], b->logs, T);
        b->nts = n;
        b->ts_kind = k == CDF_SCHED_EULER ? 0 : 1;
        if (k == CDF_SCHED_EULER)
            for (int i = 0; i < n; i++) b->ts[i] = (float)b->ts[i];
    }
    double last = 0.0;
    if (k == CDF_SCHED_EULER && strcmp(c->final_sigmas_type, "sigma_min") == 0) last = sigma_min_last(s);
    if (!finish_sigmas(s, b, last)) return CDF_ERR_NOMEM;
    if (k == CDF_SCHED_EULER && strcmp(c->timestep_type, "continuous") == 0 &&
        strcmp(c->prediction_type, "v_prediction") == 0) {
        b->nts = s->n_sigmas - 1;
        for (int i = 0; i < b->nts; i++) b->ts[i] = 0.25f * cdf_sleef_logf(s->sigmas[i]);
        b->ts_kind = 0;
    }
    return CDF_OK;
}

/* DPM-Solver multistep and UniPC. */
static cdf_status build_multistep(cdf_scheduler *s, build *b) {
    const cdf_sched_config *c = &s->cfg;
    const int T = b->T, n = b->n;
    const int dpm = c->kind == CDF_SCHED_DPMSOLVER_MULTISTEP;
    int last_t = T;
    if (dpm && c->lambda_min_clipped != -INFINITY) {
        /* searchsorted(flip(lambda_t), lambda_min_clipped) with float32 lambda_t = log(alpha_t) - log(sigma_t) */
        const float v = (float)c->lambda_min_clipped;
        int lo = 0, hi = T;
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            float ac = s->alphas_cumprod[T - 1 - mid];
            float lam = cdf_sleef_logf(sqrtf(ac)) - cdf_sleef_logf(sqrtf(1.0f - ac));
            if (lam < v)
                lo = mid + 1;
            else
                hi = mid;
        }
        last_t = T - lo;
    }
    b->nts = int_spacing(c, T, last_t, n, b->ts);
    if (b->nts < 0) return b->nts == -1 ? CDF_ERR_NOMEM : CDF_ERR_INTERNAL; /* -2: cannot happen (<= n + 1) */
    b->ts_kind = 2;
    double last = strcmp(c->final_sigmas_type, "sigma_min") == 0 ? sigma_min_last(s) : 0.0;
    const int sigma_min_final = strcmp(c->final_sigmas_type, "sigma_min") == 0;
    /* flip(train): in[0] = train[T-1], in[-1] = train[0] */
    if (c->use_karras_sigmas) {
        karras(config_or(c->sigma_min, b->train[0]), config_or(c->sigma_max, b->train[T - 1]), n, b->sig);
        b->nsig = b->nts = n;
        for (int i = 0; i < n; i++) b->ts[i] = rint(sigma_to_t(b->sig[i], b->logs, T));
        if (!dpm && sigma_min_final) last = b->sig[n - 1];
    } else if (dpm && c->use_lu_lambdas) {
        np_linspace(0.0, 1.0, n, b->sig);
        const double lmin = b->logs[0], lmax = b->logs[T - 1];
        for (int i = 0; i < n; i++) {
            double r = b->sig[i] * (lmin - lmax);
            b->sig[i] = exp(lmax + r);
        }
        b->nsig = b->nts = n;
        for (int i = 0; i < n; i++) b->ts[i] = rint(sigma_to_t(b->sig[i], b->logs, T));
    } else if (c->use_exponential_sigmas) {
        exponential(config_or(c->sigma_min, b->train[0]), config_or(c->sigma_max, b->train[T - 1]), n, b->sig);
        b->nsig = b->nts = n;
        for (int i = 0; i < n; i++) b->ts[i] = trunc(sigma_to_t(b->sig[i], b->logs, T));
        if (!dpm && sigma_min_final) last = b->sig[n - 1];
    } else if (c->use_flow_sigmas) {
        double *al = cdf_mallocn((size_t)n + 1, sizeof *al);
        if (!al) return CDF_ERR_NOMEM;
        np_linspace(1.0, 1.0 / T, n + 1, al);
        const double shift = c->flow_shift;
        for (int i = 0; i < n; i++) { /* flip(...)[:-1]: entries n..1 */
            double sg = 1.0 - al[n - i];
            double num = shift * sg;
            double den = 1.0 + (shift - 1.0) * sg;
            b->sig[i] = num / den;
        }
        cdf_free(al);
        b->nsig = b->nts = n;
        for (int i = 0; i < n; i++) b->ts[i] = trunc(b->sig[i] * T);
        if (!dpm && sigma_min_final) last = b->sig[n - 1];
    } else {
        for (int i = 0; i < b->nts; i++) b->sig[i] = np_interp(b->ts[i], b->train, T);
        b->nsig = b->nts;
    }
    return finish_sigmas(s, b, last) ? CDF_OK : CDF_ERR_NOMEM;
}

/* PNDM: prk_timesteps + plms_timesteps. */
static cdf_status build_pndm(cdf_scheduler *s, build *b, cdf_error *err) {
    const cdf_sched_config *c = &s->cfg;
    const int T = b->T, n = b->n;
    double *a = b->sig; /* ascending _timesteps, reusing the sigma scratch */
    int k;
    if (strcmp(c->timestep_spacing, "linspace") == 0) {
        np_linspace(0.0, (double)(T - 1), n, a);
        for (int i = 0; i < n; i++) a[i] = rint(a[i]);
        k = n;
    } else if (strcmp(c->timestep_spacing, "leading") == 0) {
        const int64_t ratio = T / n;
        for (int i = 0; i < n; i++) a[i] = (double)((int64_t)i * ratio + c->steps_offset);
        k = n;
    } else {
        k = cdf_sched_arange_down_count(T, (double)T / n);
        double *tmp = cdf_mallocn((size_t)k, sizeof *tmp);
        if (!tmp) return CDF_ERR_NOMEM;
        cdf_sched_arange_down_rint(T, (double)T / n, k, tmp);
        for (int i = 0; i < k; i++) a[i] = tmp[k - 1 - i] - 1.0;
        cdf_free(tmp);
    }
    int m = 0;
    if (c->skip_prk_steps) {
        /* concat(a[:-1], a[-2:-1], a[-1:])[::-1] */
        double *cat = cdf_mallocn((size_t)k + 1, sizeof *cat);
        if (!cat) return CDF_ERR_NOMEM;
        for (int i = 0; i < k - 1; i++) cat[m++] = a[i];
        if (k >= 2) cat[m++] = a[k - 2];
        cat[m++] = a[k - 1];
        for (int i = 0; i < m; i++) b->ts[i] = cat[m - 1 - i];
        cdf_free(cat);
    } else {
        if (k < 4)
            return cdf_error_set(err, CDF_ERR_ARG,
                                 "PNDMScheduler.set_timesteps: num_inference_steps %d gives %d timesteps; the "
                                 "Runge-Kutta warm-up (skip_prk_steps false) needs at least 4",
                                 n, k);
        const double h = (double)(T / n / 2);
        double prk8[8], prk14[14];
        for (int i = 0; i < 4; i++) {
            prk8[2 * i] = a[k - 4 + i];
            prk8[2 * i + 1] = a[k - 4 + i] + h;
        }
        for (int i = 0; i < 7; i++) prk14[2 * i] = prk14[2 * i + 1] = prk8[i];
        for (int i = 0; i < 12; i++) b->ts[m++] = prk14[12 - i]; /* [1:-1] reversed */
        for (int i = k - 4; i >= 0; i--) b->ts[m++] = a[i];     /* a[:-3][::-1] */
    }
    b->nts = m;
    b->ts_kind = 2;
    return CDF_OK;
}

/* Stores b's timesteps into s (int view, exact values). */
static int store_timesteps(cdf_scheduler *s, const build *b, int interleave) {
    const int cnt = interleave && b->nts > 0 ? 2 * b->nts - 1 : b->nts;
    s->timesteps = cdf_mallocn(cnt > 0 ? (size_t)cnt : 1, sizeof(int64_t));
    s->tvals = cdf_mallocn(cnt > 0 ? (size_t)cnt : 1, sizeof(double));
    if (!s->timesteps || !s->tvals) return 0;
    for (int i = 0, j = 0; i < b->nts; i++) {
        double v = b->ts_kind == 0 ? (double)(float)b->ts[i] : b->ts[i];
        int reps = interleave && i > 0 ? 2 : 1;
        for (int r = 0; r < reps; r++, j++) {
            s->tvals[j] = v;
            /* NaN, infinities and values past int64 give INT64_MIN, what torch's
             * .long() gives on x86 (a plain C cast would be undefined) */
            s->timesteps[j] = !(v > -9223372036854775808.0 && v < 9223372036854775808.0) ? INT64_MIN : (int64_t)v;
        }
    }
    s->n_timesteps = cnt;
    return 1;
}

/* Heun: cat(sigmas[:1], sigmas[1:-1].repeat_interleave(2), sigmas[-1:]). */
static int interleave_sigmas(cdf_scheduler *s) {
    const int n = s->n_sigmas;
    if (n < 2) return 1;
    float *o = cdf_mallocn((size_t)(2 * n - 2), sizeof *o);
    if (!o) return 0;
    int j = 0;
    o[j++] = s->sigmas[0];
    for (int i = 1; i < n - 1; i++) o[j++] = s->sigmas[i], o[j++] = s->sigmas[i];
    o[j++] = s->sigmas[n - 1];
    cdf_free(s->sigmas);
    s->sigmas = o;
    s->n_sigmas = j;
    return 1;
}

static void set_init_sigma(cdf_scheduler *s) {
    const int k = s->cfg.kind;
    s->init_sigma = 1.0f;
    if (k != CDF_SCHED_EULER && k != CDF_SCHED_EULER_ANCESTRAL && k != CDF_SCHED_LMS && k != CDF_SCHED_HEUN) return;
    float mx = s->sigmas[0];
    for (int i = 1; i < s->n_sigmas; i++) {
        if (s->sigmas[i] != s->sigmas[i]) { /* torch max propagates NaN */
            mx = s->sigmas[i];
            break;
        }
        if (s->sigmas[i] > mx) mx = s->sigmas[i];
    }
    if (strcmp(s->cfg.timestep_spacing, "linspace") == 0 || strcmp(s->cfg.timestep_spacing, "trailing") == 0) {
        s->init_sigma = mx;
    } else {
        float sq = mx * mx;
        s->init_sigma = sqrtf(sq + 1.0f);
    }
}

/* UnCLIPScheduler: step_ratio = (T - 1) / (n - 1) (Python float), then
 * (np.arange(0, n) * step_ratio).round()[::-1] in float64 (half to even). */
static cdf_status build_unclip(cdf_scheduler *s, int n, cdf_error *err) {
    if (n < 2) return cdf_error_set(err, CDF_ERR_INTERNAL, "UnCLIPScheduler.set_timesteps: %d steps", n);
    s->timesteps = cdf_mallocn((size_t)n, sizeof(int64_t));
    s->tvals = cdf_mallocn((size_t)n, sizeof(double));
    if (!s->timesteps || !s->tvals)
        return cdf_error_set(err, CDF_ERR_NOMEM, "UnCLIPScheduler.set_timesteps: out of memory for %d timesteps", n);
    const double ratio = (double)(s->T - 1) / (double)(n - 1);
    for (int k = 0; k < n; k++) {
        const double v = rint((double)k * ratio);
        s->timesteps[n - 1 - k] = (int64_t)v;
        s->tvals[n - 1 - k] = v;
    }
    s->n_timesteps = n;
    s->init_sigma = 1.0f;
    return CDF_OK;
}

cdf_status cdf_sched_build_timesteps(cdf_scheduler *s, int n, cdf_error *err) {
    const char *cls = cdf_sched_kind_name(s->cfg.kind);
    const int k = s->cfg.kind;
    if (k == CDF_SCHED_UNCLIP) return build_unclip(s, n, err);
    if (k == CDF_SCHED_DDPM || k == CDF_SCHED_DDIM) {
        int count = 0;
        cdf_status st = cdf_sched_make_timesteps(&s->cfg, n, &s->timesteps, &count, err);
        if (st) return st;
        s->n_timesteps = count;
        s->tvals = cdf_mallocn(count > 0 ? (size_t)count : 1, sizeof(double));
        if (!s->tvals) return cdf_error_set(err, CDF_ERR_NOMEM, "%s.set_timesteps: out of memory", cls);
        for (int i = 0; i < count; i++) s->tvals[i] = (double)s->timesteps[i];
        s->init_sigma = 1.0f;
        return CDF_OK;
    }
    build b;
    cdf_status st = CDF_OK;
    if (!alloc_build(&b, s->T, n)) {
        free_build(&b);
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s.set_timesteps: out of memory", cls);
    }
    cdf_sched_train_sigmas(s, b.train);
    for (int t = 0; t < s->T; t++) b.logs[t] = cdf_np_logf(b.train[t]);
    if (k == CDF_SCHED_PNDM)
        st = build_pndm(s, &b, err);
    else if (k == CDF_SCHED_DPMSOLVER_MULTISTEP || k == CDF_SCHED_UNIPC_MULTISTEP)
        st = build_multistep(s, &b);
    else
        st = build_sigma_kind(s, &b);
    if (st == CDF_OK && !store_timesteps(s, &b, k == CDF_SCHED_HEUN)) st = CDF_ERR_NOMEM;
    if (st == CDF_OK && k == CDF_SCHED_HEUN && !interleave_sigmas(s)) st = CDF_ERR_NOMEM;
    free_build(&b);
    if (st == CDF_ERR_NOMEM) return cdf_error_set(err, CDF_ERR_NOMEM, "%s.set_timesteps: out of memory", cls);
    if (st == CDF_ERR_INTERNAL)
        return cdf_error_set(err, CDF_ERR_INTERNAL, "%s.set_timesteps: unexpected timestep count for %d steps", cls, n);
    if (st) return st; /* build_pndm set err itself */
    if (k != CDF_SCHED_PNDM) set_init_sigma(s);
    else s->init_sigma = 1.0f;
    return CDF_OK;
}
