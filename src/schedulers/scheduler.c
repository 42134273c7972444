/* Scheduler object: schedule tables, set_timesteps, accessors, run state,
 * scale_model_input and step dispatch for the ten classes. */
#include <limits.h>
#include <string.h>

#include "schedulers/sched_fields.h"
#include "schedulers/sched_internal.h"
#include "schedulers/sched_multistep.h"

int cdf_sched_pred_kind(const cdf_sched_config *cfg) {
    if (strcmp(cfg->prediction_type, "sample") == 0 || strcmp(cfg->prediction_type, "original_sample") == 0)
        return CDF_SCHED_PRED_SAMPLE;
    if (strcmp(cfg->prediction_type, "v_prediction") == 0) return CDF_SCHED_PRED_V;
    if (strcmp(cfg->prediction_type, "flow_prediction") == 0) return CDF_SCHED_PRED_FLOW;
    return CDF_SCHED_PRED_EPSILON;
}

static int is_sigma_kind(cdf_sched_kind k) {
    return k == CDF_SCHED_EULER || k == CDF_SCHED_EULER_ANCESTRAL || k == CDF_SCHED_LMS || k == CDF_SCHED_HEUN;
}

/* Kinds whose step() keeps state between calls (calls must come in order). */
static int is_stateful(cdf_sched_kind k) {
    return k == CDF_SCHED_PNDM || k == CDF_SCHED_LMS || k == CDF_SCHED_HEUN || k == CDF_SCHED_DPMSOLVER_MULTISTEP ||
           k == CDF_SCHED_UNIPC_MULTISTEP;
}

cdf_status cdf_scheduler_new(const cdf_sched_config *cfg, cdf_scheduler **out, cdf_error *err) {
    *out = NULL;
    cdf_status st = cdf_sched_config_validate(cfg, cdf_sched_kind_name(cfg->kind), err);
    if (st) return st;
    cdf_scheduler *s = cdf_calloc(1, sizeof *s);
    if (!s) return cdf_error_set(err, CDF_ERR_NOMEM, "scheduler: out of memory");
    st = cdf_sched_config_copy(&s->cfg, cfg, err);
    if (st) {
        cdf_free(s);
        return st;
    }
    cdf_sched_config_normalize(&s->cfg);
    const int T = cfg->num_train_timesteps;
    s->T = T;
    s->betas = cdf_mallocn((size_t)T, sizeof *s->betas);
    s->alphas_cumprod = cdf_mallocn((size_t)T, sizeof *s->alphas_cumprod);
    if (!s->betas || !s->alphas_cumprod) {
        cdf_scheduler_free(s);
        return cdf_error_set(err, CDF_ERR_NOMEM, "scheduler: out of memory for a %d-step schedule", T);
    }
    st = cdf_sched_make_betas(&s->cfg, s->betas, err);
    if (st) {
        cdf_scheduler_free(s);
        return st;
    }
    /* alphas = 1.0 - betas (float32); alphas_cumprod = torch.cumprod(alphas) */
    for (int i = 0; i < T; i++) s->alphas_cumprod[i] = 1.0f - s->betas[i];
    cdf_sched_cumprod_f32(s->alphas_cumprod, s->alphas_cumprod, T);
    const cdf_sched_kind k = cfg->kind;
    if (cfg->rescale_betas_zero_snr && (k == CDF_SCHED_EULER || k == CDF_SCHED_EULER_ANCESTRAL ||
                                        k == CDF_SCHED_DPMSOLVER_MULTISTEP || k == CDF_SCHED_UNIPC_MULTISTEP))
        s->alphas_cumprod[T - 1] = 0x1p-24f; /* "close to 0 without being 0 so first sigma is not inf" */
    s->final_alpha_cumprod = s->cfg.set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
    s->init_sigma = 1.0f;
    *out = s;
    return CDF_OK;
}

static void clear_run(cdf_scheduler *s) {
    cdf_free(s->state);
    s->state = NULL;
    s->state_n = 0;
    memset(&s->run, 0, sizeof s->run);
}

void cdf_scheduler_free(cdf_scheduler *s) {
    if (!s) return;
    cdf_sched_config_free(&s->cfg);
    cdf_free(s->betas);
    cdf_free(s->alphas_cumprod);
    cdf_free(s->timesteps);
    cdf_free(s->tvals);
    cdf_free(s->sigmas);
    clear_run(s);
    cdf_free(s);
}

static void clear_timesteps(cdf_scheduler *s) {
    cdf_free(s->timesteps);
    cdf_free(s->tvals);
    cdf_free(s->sigmas);
    s->timesteps = NULL;
    s->tvals = NULL;
    s->sigmas = NULL;
    s->n_timesteps = s->n_sigmas = 0;
    s->begin = 0;
    s->num_inference_steps = 0;
    s->init_sigma = 1.0f;
}

cdf_status cdf_scheduler_set_timesteps(cdf_scheduler *s, int n, cdf_error *err) {
    const char *cls = cdf_sched_kind_name(s->cfg.kind);
    const cdf_sched_kind k = s->cfg.kind;
    if (k == CDF_SCHED_UNCLIP && n < 2) /* ZeroDivisionError in diffusers */
        return cdf_error_set(err, CDF_ERR_ARG,
                             "%s.set_timesteps: num_inference_steps must be at least 2, got %d (the step ratio is "
                             "(num_train_timesteps - 1) / (num_inference_steps - 1))",
                             cls, n);
    if (n < 1)
        return cdf_error_set(err, CDF_ERR_ARG, "%s.set_timesteps: num_inference_steps must be at least 1, got %d", cls,
                             n);
    /* UnCLIP accepts n > T (timesteps repeat, as in diffusers); the bound only limits the allocation */
    if (k == CDF_SCHED_UNCLIP && n > CDF_SCHED_MAX_TRAIN_TIMESTEPS)
        return cdf_error_set(err, CDF_ERR_ARG, "%s.set_timesteps: num_inference_steps %d is larger than %d", cls, n,
                             CDF_SCHED_MAX_TRAIN_TIMESTEPS);
    if (n > s->T && k != CDF_SCHED_UNCLIP)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "%s.set_timesteps: num_inference_steps: %d cannot be larger than num_train_timesteps: %d "
                             "as the unet model trained with this scheduler can only handle maximal %d timesteps",
                             cls, n, s->T, s->T);
    clear_timesteps(s);
    clear_run(s);
    s->num_inference_steps = n;
    cdf_status st = cdf_sched_build_timesteps(s, n, err);
    if (st) {
        clear_timesteps(s);
        return st;
    }
    if (k == CDF_SCHED_DDPM || k == CDF_SCHED_DDIM || k == CDF_SCHED_PNDM) {
        for (int i = 0; i < s->n_timesteps; i++) {
            if (s->timesteps[i] < -(int64_t)s->T || s->timesteps[i] >= s->T) {
                int64_t bad = s->timesteps[i];
                clear_timesteps(s);
                return cdf_error_set(err, CDF_ERR_ARG,
                                     "%s.set_timesteps: timestep %lld (num_inference_steps %d, steps_offset %d, "
                                     "timestep_spacing %s) is out of range for num_train_timesteps %d",
                                     cls, (long long)bad, n, s->cfg.steps_offset, s->cfg.timestep_spacing, s->T);
            }
        }
    } else if (s->n_timesteps > 1 && k != CDF_SCHED_UNCLIP) {
        /* index_for_timestep picks the second occurrence of a repeated first timestep */
        for (int i = 1; i < s->n_timesteps; i++)
            if (s->tvals[i] == s->tvals[0]) {
                double t0 = s->tvals[0];
                clear_timesteps(s);
                return cdf_error_set(err, CDF_ERR_ARG,
                                     "%s.set_timesteps: %d steps repeat the first timestep %g; diffusers would start "
                                     "at the second occurrence and fail on the last step (use fewer steps)",
                                     cls, n, t0);
            }
    }
    if (s->n_timesteps < 1 || (s->sigmas && s->n_sigmas < s->n_timesteps + 1)) {
        clear_timesteps(s);
        return cdf_error_set(err, CDF_ERR_ARG, "%s.set_timesteps: %d steps give no usable schedule", cls, n);
    }
    return CDF_OK;
}

int cdf_scheduler_num_timesteps(const cdf_scheduler *s) { return s->n_timesteps - s->begin; }

int cdf_scheduler_order(const cdf_scheduler *s) { return s->cfg.kind == CDF_SCHED_HEUN ? 2 : 1; }

cdf_status cdf_scheduler_set_begin_index(cdf_scheduler *s, int begin, cdf_error *err) {
    const char *cls = cdf_sched_kind_name(s->cfg.kind);
    if (!s->timesteps)
        return cdf_error_set(err, CDF_ERR_ARG, "%s.set_begin_index(%d): call set_timesteps first", cls, begin);
    if (s->run.stepped)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "%s.set_begin_index(%d): steps were already taken in this run (call it right after "
                             "set_timesteps)",
                             cls, begin);
    if (begin < 0 || begin >= s->n_timesteps)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "%s.set_begin_index: begin index %d is out of range: set_timesteps(%d) gave %d "
                             "timesteps, so it must be in [0, %d)",
                             cls, begin, s->num_inference_steps, s->n_timesteps, s->n_timesteps);
    s->begin = begin;
    return CDF_OK;
}

int64_t cdf_scheduler_timestep(const cdf_scheduler *s, int i) {
    if (i < 0 || i >= s->n_timesteps - s->begin) return INT64_MIN;
    return s->timesteps[s->begin + i];
}

double cdf_scheduler_timestep_value(const cdf_scheduler *s, int i) {
    if (i < 0 || i >= s->n_timesteps - s->begin) return NAN;
    return s->tvals[s->begin + i];
}

float cdf_scheduler_init_noise_sigma(const cdf_scheduler *s) { return s->init_sigma; }

void cdf_scheduler_set_prev_timestep_none(cdf_scheduler *s, int none) { s->prev_timestep_none = none != 0; }

const float *cdf_scheduler_sigmas(const cdf_scheduler *s, int *n) {
    if (n) *n = s->sigmas ? s->n_sigmas : 0;
    return s->sigmas;
}

const cdf_sched_config *cdf_scheduler_config(const cdf_scheduler *s) { return &s->cfg; }
const float *cdf_scheduler_betas(const cdf_scheduler *s) { return s->betas; }
const float *cdf_scheduler_alphas_cumprod(const cdf_scheduler *s) { return s->alphas_cumprod; }

void cdf_scheduler_scale_model_input(const cdf_scheduler *s, int i, const float *x, float *out, size_t n) {
    if (!is_sigma_kind(s->cfg.kind) || !s->sigmas || i < 0 || i >= s->n_timesteps - s->begin) {
        if (out != x) memmove(out, x, n * sizeof(float));
        return;
    }
    const float sigma = s->sigmas[s->begin + i];
    float d = sigma * sigma + 1.0f;
    d = sqrtf(d);
    for (size_t k = 0; k < n; k++) out[k] = x[k] / d;
}

int cdf_scheduler_step_needs_noise(const cdf_scheduler *s, int call, const cdf_sched_step_opts *o) {
    if (call < 0 || call >= s->n_timesteps - s->begin) return 0;
    const int i = s->begin + call; /* full index */
    switch (s->cfg.kind) {
    case CDF_SCHED_DDPM:
    case CDF_SCHED_UNCLIP: return s->timesteps[i] > 0;
    case CDF_SCHED_DDIM: return o && o->eta > 0.0;
    case CDF_SCHED_EULER_ANCESTRAL: return 1;
    case CDF_SCHED_DPMSOLVER_MULTISTEP:
        return strcmp(s->cfg.algorithm_type, "sde-dpmsolver++") == 0 ||
               strcmp(s->cfg.algorithm_type, "sde-dpmsolver") == 0;
    default: return 0;
    }
}

/* Points the run's buffers into the state block of nbufs x total floats. */
static void assign_state(cdf_scheduler *s) {
    sched_run *r = &s->run;
    float *b = s->state;
    const int64_t t = s->state_n;
    switch (s->cfg.kind) {
    case CDF_SCHED_PNDM:
        for (int j = 0; j < 4; j++) r->ets[j] = b + j * t;
        r->cur_sample = b + 4 * t;
        r->cur_model_output = b + 5 * t;
        break;
    case CDF_SCHED_LMS:
        for (int j = 0; j < 4; j++) r->deriv[j] = b + j * t;
        break;
    case CDF_SCHED_HEUN:
        r->prev_derivative = b;
        r->heun_sample = b + t;
        break;
    case CDF_SCHED_DPMSOLVER_MULTISTEP:
    case CDF_SCHED_UNIPC_MULTISTEP:
        for (int j = 0; j < s->cfg.solver_order; j++) r->outputs[j] = b + j * t;
        if (s->cfg.kind == CDF_SCHED_UNIPC_MULTISTEP) r->last_sample = b + (int64_t)(s->cfg.solver_order + 1) * t;
        break;
    default: break;
    }
}

cdf_status cdf_sched_state(cdf_scheduler *s, int nbufs, int64_t total, cdf_error *err) {
    const char *cls = cdf_sched_kind_name(s->cfg.kind);
    if (s->state) {
        if (s->state_n != total)
            return cdf_error_set(err, CDF_ERR_SHAPE,
                                 "%s.step: the sample has %lld elements but the previous steps of this run had %lld",
                                 cls, (long long)total, (long long)s->state_n);
        return CDF_OK;
    }
    const size_t per = total > 0 ? (size_t)total : 1; /* empty samples still get valid (unused) pointers */
    s->state = cdf_mallocn((size_t)nbufs * per, sizeof(float));
    if (!s->state)
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s.step: out of memory for %d state buffers of %lld floats", cls,
                             nbufs, (long long)total);
    s->state_n = total;
    assign_state(s);
    return CDF_OK;
}

/* The step of full index i (= begin + call index), arguments checked. */
static cdf_status step_full(cdf_scheduler *s, int i, const float *model_out, int model_channels, float *sample,
                            int batch, int channels, int64_t spatial, const float *noise, int needs,
                            const cdf_sched_step_opts *o, cdf_error *err) {
    const char *cls = cdf_sched_kind_name(s->cfg.kind);
    const cdf_sched_kind k = s->cfg.kind;
    if (k == CDF_SCHED_DDPM)
        return cdf_ddpm_step(s, i, model_out, model_channels, sample, batch, channels, spatial, needs ? noise : NULL,
                             err);
    if (k == CDF_SCHED_UNCLIP)
        return cdf_unclip_step(s, i, model_out, model_channels, sample, batch, channels, spatial, needs ? noise : NULL,
                               s->prev_timestep_none, err);
    if (k == CDF_SCHED_DPMSOLVER_MULTISTEP) {
        cdf_status st =
            cdf_dpm_step(s, i, model_out, model_channels, sample, batch, channels, spatial, needs ? noise : NULL, err);
        if (!st) s->run.calls++;
        return st;
    }
    if (model_channels != channels)
        return cdf_error_set(err, CDF_ERR_SHAPE, "%s.step: model_output has %d channels, sample has %d", cls,
                             model_channels, channels);
    const int64_t n = (int64_t)channels * spatial;
    cdf_status st;
    switch (k) {
    case CDF_SCHED_DDIM: return cdf_ddim_step(s, i, model_out, sample, batch, channels, spatial, needs ? noise : NULL, o, err);
    case CDF_SCHED_EULER:
    case CDF_SCHED_EULER_ANCESTRAL: return cdf_euler_step(s, i, model_out, sample, batch, n, noise, err);
    case CDF_SCHED_PNDM: st = cdf_pndm_step(s, i, model_out, sample, batch, n, err); break;
    case CDF_SCHED_LMS: st = cdf_lms_step(s, i, model_out, sample, batch, n, err); break;
    case CDF_SCHED_HEUN: st = cdf_heun_step(s, i, model_out, sample, batch, n, err); break;
    case CDF_SCHED_UNIPC_MULTISTEP: st = cdf_unipc_step(s, i, model_out, sample, batch, n, err); break;
    default: return cdf_error_set(err, CDF_ERR_INTERNAL, "%s.step: unknown scheduler kind", cls);
    }
    if (!st) s->run.calls++;
    return st;
}

cdf_status cdf_scheduler_step(cdf_scheduler *s, int i, const float *model_out, int model_channels, float *sample,
                              int batch, int channels, int64_t spatial, const float *noise,
                              const cdf_sched_step_opts *o, cdf_error *err) {
    const char *cls = cdf_sched_kind_name(s->cfg.kind);
    if (!s->timesteps)
        return cdf_error_set(err, CDF_ERR_ARG, "%s.step: number of inference steps is not set, call set_timesteps first",
                             cls);
    const int remaining = s->n_timesteps - s->begin;
    if (i < 0 || i >= remaining)
        return cdf_error_set(err, CDF_ERR_ARG, "%s.step: timestep index %d is out of range [0, %d)", cls, i, remaining);
    if (!model_out || !sample || batch < 0 || channels < 1 || spatial < 0)
        return cdf_error_set(err, CDF_ERR_ARG, "%s.step: invalid buffers or shape (batch %d, channels %d, spatial %lld)",
                             cls, batch, channels, (long long)spatial);
    if (is_stateful(s->cfg.kind) && i != s->run.calls)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "%s.step: call %d out of order: this multistep scheduler expects call %d next (call "
                             "set_timesteps to start a new run)",
                             cls, i, s->run.calls);
    const int needs = cdf_scheduler_step_needs_noise(s, i, o);
    if (needs && !noise)
        return cdf_error_set(err, CDF_ERR_ARG, "%s.step: step %d (timestep %g) needs variance noise but none was given",
                             cls, i, s->tvals[s->begin + i]);
    /* PNDM's counter / ets, LMS's derivatives, Heun's first-order state and the DPM / UniPC histories start
     * from zero at the begin index, as after diffusers' set_begin_index; the bodies index the full lists */
    cdf_status st = step_full(s, s->begin + i, model_out, model_channels, sample, batch, channels, spatial, noise,
                              needs, o, err);
    if (!st) s->run.stepped = 1;
    return st;
}

void cdf_scheduler_add_noise(const cdf_scheduler *s, int i, const float *x, const float *noise, float *out, int batch,
                             int64_t per_image) {
    const int64_t total = batch > 0 && per_image > 0 ? (int64_t)batch * per_image : 0;
    if (!s->timesteps || i < 0 || i >= s->n_timesteps - s->begin) {
        for (int64_t k = 0; k < total; k++) out[k] = NAN;
        return;
    }
    const int j = s->begin + i;
    switch (s->cfg.kind) {
    case CDF_SCHED_EULER:
    case CDF_SCHED_EULER_ANCESTRAL:
    case CDF_SCHED_LMS:
    case CDF_SCHED_HEUN: {
        /* original_samples + noise * sigma */
        const float sigma = s->sigmas[j];
        for (int64_t k = 0; k < total; k++) {
            float z = noise[k] * sigma;
            out[k] = x[k] + z;
        }
        return;
    }
    case CDF_SCHED_DPMSOLVER_MULTISTEP:
    case CDF_SCHED_UNIPC_MULTISTEP: {
        /* alpha_t * original_samples + sigma_t * noise, (alpha_t, sigma_t) = _sigma_to_alpha_sigma_t(sigma) */
        const cdf_sched_asl a = cdf_sched_to_asl(s->sigmas[j], s->cfg.use_flow_sigmas);
        for (int64_t k = 0; k < total; k++) {
            float p = a.alpha * x[k];
            float q = a.sigma * noise[k];
            out[k] = p + q;
        }
        return;
    }
    default: {
        /* DDPM, DDIM, PNDM, UnCLIP: alphas_cumprod[t] ** 0.5 * x + (1 - alphas_cumprod[t]) ** 0.5 * noise */
        const float ac = cdf_sched_ac(s, s->timesteps[j]);
        const float sa = sqrtf(ac), sb = sqrtf(1.0f - ac);
        for (int64_t k = 0; k < total; k++) {
            float p = sa * x[k];
            float q = sb * noise[k];
            out[k] = p + q;
        }
        return;
    }
    }
}
