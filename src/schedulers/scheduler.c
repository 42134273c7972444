/* Scheduler object: schedule tables, set_timesteps, step dispatch. */
#include <limits.h>
#include <string.h>

#include "schedulers/sched_internal.h"

int cdf_sched_pred_kind(const cdf_sched_config *cfg) {
    if (strcmp(cfg->prediction_type, "sample") == 0) return CDF_SCHED_PRED_SAMPLE;
    if (strcmp(cfg->prediction_type, "v_prediction") == 0) return CDF_SCHED_PRED_V;
    return CDF_SCHED_PRED_EPSILON;
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
    s->final_alpha_cumprod = s->cfg.set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
    *out = s;
    return CDF_OK;
}

void cdf_scheduler_free(cdf_scheduler *s) {
    if (!s) return;
    cdf_sched_config_free(&s->cfg);
    cdf_free(s->betas);
    cdf_free(s->alphas_cumprod);
    cdf_free(s->timesteps);
    cdf_free(s);
}

cdf_status cdf_scheduler_set_timesteps(cdf_scheduler *s, int n, cdf_error *err) {
    if (n < 1)
        return cdf_error_set(err, CDF_ERR_ARG, "%s.set_timesteps: num_inference_steps must be at least 1, got %d",
                             cdf_sched_kind_name(s->cfg.kind), n);
    if (n > s->T)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "%s.set_timesteps: num_inference_steps: %d cannot be larger than num_train_timesteps: %d "
                             "as the unet model trained with this scheduler can only handle maximal %d timesteps",
                             cdf_sched_kind_name(s->cfg.kind), n, s->T, s->T);
    int64_t *ts = NULL;
    int count = 0;
    cdf_status st = cdf_sched_make_timesteps(&s->cfg, n, &ts, &count, err);
    if (st) return st;
    for (int i = 0; i < count; i++) {
        if (ts[i] < -(int64_t)s->T || ts[i] >= s->T) {
            int64_t bad = ts[i];
            cdf_free(ts);
            return cdf_error_set(err, CDF_ERR_ARG,
                                 "%s.set_timesteps: timestep %lld (num_inference_steps %d, steps_offset %d, "
                                 "timestep_spacing %s) is out of range for num_train_timesteps %d",
                                 cdf_sched_kind_name(s->cfg.kind), (long long)bad, n, s->cfg.steps_offset,
                                 s->cfg.timestep_spacing, s->T);
        }
    }
    cdf_free(s->timesteps);
    s->timesteps = ts;
    s->n_timesteps = count;
    s->num_inference_steps = n;
    return CDF_OK;
}

int cdf_scheduler_num_timesteps(const cdf_scheduler *s) { return s->n_timesteps; }

int64_t cdf_scheduler_timestep(const cdf_scheduler *s, int i) {
    if (i < 0 || i >= s->n_timesteps) return INT64_MIN;
    return s->timesteps[i];
}

float cdf_scheduler_init_noise_sigma(const cdf_scheduler *s) {
    (void)s;
    return 1.0f;
}

const cdf_sched_config *cdf_scheduler_config(const cdf_scheduler *s) { return &s->cfg; }
const float *cdf_scheduler_betas(const cdf_scheduler *s) { return s->betas; }
const float *cdf_scheduler_alphas_cumprod(const cdf_scheduler *s) { return s->alphas_cumprod; }

int cdf_scheduler_step_needs_noise(const cdf_scheduler *s, int i, const cdf_sched_step_opts *o) {
    if (i < 0 || i >= s->n_timesteps) return 0;
    if (s->cfg.kind == CDF_SCHED_DDPM) return s->timesteps[i] > 0;
    return o && o->eta > 0.0;
}

cdf_status cdf_scheduler_step(cdf_scheduler *s, int i, const float *model_out, int model_channels, float *sample,
                              int batch, int channels, int64_t spatial, const float *noise,
                              const cdf_sched_step_opts *o, cdf_error *err) {
    const char *cls = cdf_sched_kind_name(s->cfg.kind);
    if (!s->timesteps)
        return cdf_error_set(err, CDF_ERR_ARG, "%s.step: number of inference steps is not set, call set_timesteps first",
                             cls);
    if (i < 0 || i >= s->n_timesteps)
        return cdf_error_set(err, CDF_ERR_ARG, "%s.step: timestep index %d is out of range [0, %d)", cls, i,
                             s->n_timesteps);
    if (!model_out || !sample || batch < 0 || channels < 1 || spatial < 0)
        return cdf_error_set(err, CDF_ERR_ARG, "%s.step: invalid buffers or shape (batch %d, channels %d, spatial %lld)",
                             cls, batch, channels, (long long)spatial);
    const int needs = cdf_scheduler_step_needs_noise(s, i, o);
    if (needs && !noise)
        return cdf_error_set(err, CDF_ERR_ARG, "%s.step: step %d (timestep %lld) needs variance noise but none was given",
                             cls, i, (long long)s->timesteps[i]);
    if (s->cfg.kind == CDF_SCHED_DDPM)
        return cdf_ddpm_step(s, i, model_out, model_channels, sample, batch, channels, spatial, needs ? noise : NULL,
                             err);
    if (model_channels != channels)
        return cdf_error_set(err, CDF_ERR_SHAPE, "DDIMScheduler.step: model_output has %d channels, sample has %d",
                             model_channels, channels);
    return cdf_ddim_step(s, i, model_out, sample, batch, channels, spatial, needs ? noise : NULL, o, err);
}
