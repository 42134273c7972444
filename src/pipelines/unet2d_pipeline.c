/* DDPMPipeline / DDIMPipeline / PNDMPipeline (diffusers 0.32) over a UNet2DModel folder. */
#include <stdio.h>
#include <string.h>

#include "models/unet2d.h"
#include "pipelines/pipeline_internal.h"
#include "tensor/exec.h"

/* The family's own state, read-only after load. */
typedef struct unet2d_state {
    cdf_sched_config sched;       /* the folder's scheduler (DDIMPipeline / PNDMPipeline: converted to their class) */
    cdf_unet2d *unet;
} unet2d_state;

static void unet2d_free(void *state) {
    unet2d_state *st = state;
    if (!st) return;
    cdf_unet2d_free(st->unet);
    cdf_sched_config_free(&st->sched);
    cdf_free(st);
}

static cdf_status unet2d_load(cdf_pipeline *p, const char *dir, const cJSON *idx, const char *idx_path,
                              const char *variant, cdf_error *err) {
    const char *ucls = NULL, *scls = NULL;
    cdf_status s = cdf_index_component(idx, idx_path, "unet", 1, &ucls, err);
    if (!s) s = cdf_index_component(idx, idx_path, "scheduler", 1, &scls, err);
    if (s) return s;
    if (strcmp(ucls, "UNet2DModel") != 0)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: unet class \"%s\" is not supported by %s (UNet2DModel)",
                             idx_path, ucls, p->class_name);
    /* DDPMPipeline steps with a generator argument, which PNDMScheduler.step does not take */
    const int pndm_ok = p->kind != CDF_PIPELINE_DDPM;
    if (strcmp(scls, "DDPMScheduler") != 0 && strcmp(scls, "DDIMScheduler") != 0 &&
        !(pndm_ok && strcmp(scls, "PNDMScheduler") == 0))
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: scheduler class \"%s\" is not supported by %s (%s)",
                             idx_path, scls, p->class_name,
                             pndm_ok ? "DDPMScheduler, DDIMScheduler, PNDMScheduler" : "DDPMScheduler, DDIMScheduler");
    unet2d_state *st = cdf_calloc(1, sizeof *st);
    if (!st) return cdf_error_set(err, CDF_ERR_NOMEM, "out of memory loading %s", dir);
    p->state = st;
    /* DDIMPipeline and PNDMPipeline convert the folder's scheduler to their class in __init__ */
    const int convert = p->kind == CDF_PIPELINE_DDIM ? CDF_SCHED_DDIM : p->kind == CDF_PIPELINE_PNDM ? CDF_SCHED_PNDM : -1;
    if ((s = cdf_pipeline_load_scheduler(dir, "scheduler", convert, &st->sched, &p->sched_json, err))) return s;
    snprintf(p->sched_name, sizeof p->sched_name, "%s", cdf_sched_kind_name(st->sched.kind));
    if (st->sched.kind != CDF_SCHED_DDPM && st->sched.kind != CDF_SCHED_DDIM && st->sched.kind != CDF_SCHED_PNDM)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s/scheduler/scheduler_config.json: %s is not supported by %s (DDPMScheduler, "
                             "DDIMScheduler, PNDMScheduler)",
                             dir, cdf_sched_kind_name(st->sched.kind), p->class_name);
    if (p->kind == CDF_PIPELINE_DDPM && st->sched.kind == CDF_SCHED_PNDM)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: a PNDMScheduler folder runs as PNDMPipeline, not %s",
                             idx_path, p->class_name);
    char udir[4096];
    snprintf(udir, sizeof udir, "%s/unet", dir);
    return cdf_unet2d_load(udir, variant, &st->unet, err);
}

static uint64_t unet2d_weights_hash(const void *state, uint64_t h) {
    return cdf_weights_hash(((const unet2d_state *)state)->unet->weights, h);
}

/* The UNet's sample size and channels. */
static void unet2d_default_size(const void *state, int *h, int *w, int *c) {
    const cdf_unet2d_config *uc = &((const unet2d_state *)state)->unet->cfg;
    *h = uc->sample_h;
    *w = uc->sample_w;
    *c = uc->in_channels;
}

static int unet2d_batch_size(const cdf_generate_options *o) { return o->batch_size; }

static cdf_status unet2d_run(cdf_pipeline *p, const cdf_generate_options *o, cdf_generator *const *gens,
                             size_t ngens, cdf_tensor *images, cdf_error *err) {
    const unet2d_state *st = p->state;
    const cdf_unet2d_config *uc = &st->unet->cfg;
    int batch = o->batch_size, c = uc->in_channels, h = uc->sample_h, w = uc->sample_w;
    int steps = o->num_inference_steps ? o->num_inference_steps : (p->kind == CDF_PIPELINE_DDPM ? 1000 : 50);
    if (batch < 1) return cdf_error_set(err, CDF_ERR_ARG, "batch_size must be at least 1 (got %d)", batch);
    if (steps < 1) return cdf_error_set(err, CDF_ERR_ARG, "num_inference_steps must be at least 1 (got %d)", steps);
    if (ngens != 1 && ngens != (size_t)batch)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "You have passed a list of generators of length %zu, but requested an effective batch "
                             "size of %d. Make sure the batch size matches the length of the generators.",
                             ngens, batch);
    if (!h || !w) return cdf_error_set(err, CDF_ERR_CONFIG, "unet/config.json: sample_size is null; no image size");
    if (batch > CDF_PIPE_MAX_BATCH)
        return cdf_error_set(err, CDF_ERR_LIMIT, "batch_size %d is over the limit of %d images", batch,
                             CDF_PIPE_MAX_BATCH);
    if ((int64_t)h * w > CDF_PIPE_MAX_PIXELS)
        return cdf_error_set(err, CDF_ERR_LIMIT,
                             "unet/config.json: sample_size %d x %d is over the limit of %lld pixels per image", h, w,
                             (long long)CDF_PIPE_MAX_PIXELS);
    if (uc->out_channels != c && uc->out_channels != 2 * c)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "unet/config.json: out_channels %d must equal in_channels %d (or twice it for learned "
                             "variance)",
                             uc->out_channels, c);
    if (o->eta < 0.0) return cdf_error_set(err, CDF_ERR_ARG, "eta must be >= 0 (got %g)", o->eta);
    if (o->init_image || o->strength >= 0.0)
        return cdf_error_set(err, CDF_ERR_ARG, "%s takes no init_image or strength (Stable Diffusion only)",
                             p->class_name);
    if (o->scheduler) return cdf_error_set(err, CDF_ERR_ARG, "%s takes the folder's scheduler; no scheduler swap", p->class_name);
    size_t n = (size_t)batch * c * h * w, nm = (size_t)batch * uc->out_channels * h * w;
    cdf_exec ex;
    cdf_exec_init(&ex, o->threads, err);
    ex.derived_cap = CDF_EXEC_DERIVED_RUN; /* weights stay mapped for the run */
    ex.precision = o->precision;
    cdf_scheduler *sch = NULL;
    float *lat = NULL, *mo = NULL, *noise = NULL;
    cdf_status s = cdf_pipeline_make_scheduler(&st->sched, o, 0, steps, &sch, err);
    if (s) goto done;
    /* a scheduler_config in place of the folder's: DDIMPipeline steps DDIM, PNDMPipeline PNDM, DDPMPipeline
     * DDPM or DDIM (PNDMPipeline and DDPMPipeline call step(model_output, t, image) alike, so either takes the
     * other's three classes) */
    cdf_sched_kind sk = cdf_scheduler_config(sch)->kind;
    const int ok = p->kind == CDF_PIPELINE_DDIM ? sk == CDF_SCHED_DDIM
                                                : sk == CDF_SCHED_DDPM || sk == CDF_SCHED_DDIM || sk == CDF_SCHED_PNDM;
    if (!ok) {
        s = cdf_error_set(err, CDF_ERR_UNSUPPORTED, "scheduler_config: %s runs %s, not %s", p->class_name,
                          p->kind == CDF_PIPELINE_DDIM ? "DDIMScheduler" : "DDPMScheduler, DDIMScheduler or PNDMScheduler",
                          cdf_sched_kind_name(sk));
        goto done;
    }
    if (!(lat = cdf_mallocn(n, sizeof(float))) || !(mo = cdf_mallocn(nm, sizeof(float))) ||
        !(noise = cdf_mallocn(n, sizeof(float)))) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory for %d latents of %dx%dx%d", batch, c, h, w);
        goto done;
    }
    if ((s = cdf_pipeline_draw(gens, ngens, batch, c, h, w, lat, err))) goto done;
    /* init_noise_sigma is 1 for DDPM/DDIM: the latents are the noise itself */
    int nsteps = cdf_scheduler_num_timesteps(sch);
    cdf_step_info info = {-1, nsteps, 0, lat, NULL, NULL, batch, c, uc->out_channels, h, w, 0, 1, NULL};
    if ((s = cdf_pipeline_report_step(o, &info, err))) goto done;
    cdf_sched_step_opts so = {o->eta, o->use_clipped_model_output};
    /* DDPMPipeline calls step(model_output, t, image, generator=...): a DDIMScheduler there steps with eta 0 */
    if (p->kind != CDF_PIPELINE_DDIM) so.eta = 0.0, so.use_clipped_model_output = -1;
    for (int i = 0; i < nsteps; i++) {
        int64_t t = cdf_scheduler_timestep(sch, i);
        if ((s = cdf_unet2d_forward(&ex, st->unet, lat, batch, h, w, t, mo))) goto done;
        const float *nz = NULL;
        if (cdf_scheduler_step_needs_noise(sch, i, &so)) {
            if ((s = cdf_pipeline_draw(gens, ngens, batch, c, h, w, noise, err))) goto done;
            nz = noise;
        }
        if ((s = cdf_scheduler_step(sch, i, mo, uc->out_channels, lat, batch, c, (int64_t)h * w, nz, &so, err)))
            goto done;
        cdf_step_info si = {i, nsteps, t, lat, mo, nz, batch, c, uc->out_channels, h, w, 0, 1, NULL};
        if ((s = cdf_pipeline_report_step(o, &si, err))) goto done;
    }
    s = cdf_pipeline_make_output(o, lat, batch, c, h, w, images, err);
done:
    cdf_free(lat);
    cdf_free(mo);
    cdf_free(noise);
    cdf_scheduler_free(sch);
    if (o->work_gflop) *o->work_gflop = ex.gemm_flops * 1e-9;
    cdf_exec_release(&ex);
    return s;
}

static const cdf_pipeline_class k_unet2d_classes[] = {{"DDPMPipeline", CDF_PIPELINE_DDPM},
                                                      {"DDIMPipeline", CDF_PIPELINE_DDIM},
                                                      {"PNDMPipeline", CDF_PIPELINE_PNDM}};

const cdf_pipeline_family cdf_family_unet2d = {
    "DDPM/DDIM/PNDM", k_unet2d_classes, 3, unet2d_load, unet2d_run, unet2d_free, unet2d_weights_hash, unet2d_default_size,
    unet2d_batch_size,
};
