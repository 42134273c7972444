/* DDPMPipeline / DDIMPipeline (diffusers 0.32) over a UNet2DModel folder. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cdiffusers/pipeline.h"
#include "io/json.h"
#include "models/unet2d.h"
#include "pipelines/postprocess.h"
#include "schedulers/scheduler.h"
#include "tensor/exec.h"

struct cdf_pipeline {
    cdf_pipeline_kind kind;       /* DDPM or DDIM (resolved) */
    char class_name[64];          /* "DDPMPipeline" / "DDIMPipeline" */
    cdf_unet2d *unet;             /* read-only weights + config */
    cdf_sched_config sched;       /* effective scheduler config */
    char *sched_json;             /* its JSON text */
    cdf_error err;                /* last error of a call on this handle */
};

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

/* Checks model_index.json's entry for a component: ["diffusers", class]. */
static cdf_status component_class(const cJSON *idx, const char *path, const char *key, const char **cls,
                                  cdf_error *err) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(idx, key);
    if (!c || cJSON_IsNull(c))
        return cdf_error_set(err, CDF_ERR_MISSING, "%s: component '%s' is missing", path, key);
    if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) != 2 || !cJSON_IsString(cJSON_GetArrayItem(c, 1)))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: component '%s' must be [library, class]", path, key);
    *cls = cJSON_GetArrayItem(c, 1)->valuestring;
    return CDF_OK;
}

static cdf_status load_index(cdf_pipeline *p, const char *dir, cdf_pipeline_kind want, cdf_error *err) {
    char path[4096];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cdf_error_set(err, CDF_ERR_MISSING, "%s: model folder not found", dir);
    snprintf(path, sizeof path, "%s/model_index.json", dir);
    cJSON *idx = NULL;
    TRY(cdf_json_load(path, &idx, err));
    cdf_status s = CDF_OK;
    const char *cls = NULL, *ucls = NULL, *scls = NULL;
    if ((s = cdf_json_get_string(idx, path, "_class_name", &cls, err))) goto done;
    if (!cls) {
        s = cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '_class_name' is missing", path);
        goto done;
    }
    if (want == CDF_PIPELINE_AUTO) {
        if (strcmp(cls, "DDPMPipeline") == 0)
            want = CDF_PIPELINE_DDPM;
        else if (strcmp(cls, "DDIMPipeline") == 0)
            want = CDF_PIPELINE_DDIM;
        else {
            s = cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                              "%s: pipeline class \"%s\" is not supported (DDPMPipeline, DDIMPipeline)", path, cls);
            goto done;
        }
    }
    p->kind = want;
    snprintf(p->class_name, sizeof p->class_name, "%s", want == CDF_PIPELINE_DDIM ? "DDIMPipeline" : "DDPMPipeline");
    if ((s = component_class(idx, path, "unet", &ucls, err))) goto done;
    if ((s = component_class(idx, path, "scheduler", &scls, err))) goto done;
    if (strcmp(ucls, "UNet2DModel") != 0) {
        s = cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: unet class \"%s\" is not supported by %s (UNet2DModel)", path,
                          ucls, p->class_name);
        goto done;
    }
    if (strcmp(scls, "DDPMScheduler") != 0 && strcmp(scls, "DDIMScheduler") != 0)
        s = cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                          "%s: scheduler class \"%s\" is not supported (DDPMScheduler, DDIMScheduler)", path, scls);
done:
    cJSON_Delete(idx);
    return s;
}

static cdf_status load_scheduler(cdf_pipeline *p, const char *dir, cdf_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/scheduler/scheduler_config.json", dir);
    cJSON *root = NULL;
    TRY(cdf_json_load(path, &root, err));
    cdf_status s = cdf_sched_config_parse(root, path, &p->sched, err);
    cJSON_Delete(root);
    if (s) return s;
    if (p->kind == CDF_PIPELINE_DDIM && p->sched.kind != CDF_SCHED_DDIM)
        TRY(cdf_sched_config_convert(&p->sched, CDF_SCHED_DDIM, err));
    p->sched_json = cdf_sched_config_to_json(&p->sched);
    if (!p->sched_json) return cdf_error_set(err, CDF_ERR_NOMEM, "out of memory describing the scheduler");
    return CDF_OK;
}

cdf_status cdf_pipeline_load(const char *model_dir, const cdf_load_options *opts, cdf_pipeline **out,
                             cdf_error *err) {
    *out = NULL;
    cdf_pipeline *p = cdf_calloc(1, sizeof *p);
    if (!p) return cdf_error_set(err, CDF_ERR_NOMEM, "out of memory loading %s", model_dir);
    cdf_pipeline_kind want = opts ? opts->kind : CDF_PIPELINE_AUTO;
    const char *variant = opts ? opts->variant : NULL;
    char udir[4096];
    snprintf(udir, sizeof udir, "%s/unet", model_dir);
    cdf_status s = load_index(p, model_dir, want, err);
    if (!s) s = load_scheduler(p, model_dir, err);
    if (!s) s = cdf_unet2d_load(udir, variant, &p->unet, err);
    if (s) {
        cdf_pipeline_free(p);
        return s;
    }
    if (err) p->err.on_notice = err->on_notice, p->err.notice_user = err->notice_user;
    *out = p;
    return CDF_OK;
}

void cdf_pipeline_free(cdf_pipeline *p) {
    if (!p) return;
    cdf_unet2d_free(p->unet);
    cdf_sched_config_free(&p->sched);
    cdf_free(p->sched_json);
    cdf_free(p);
}

const char *cdf_pipeline_last_error(const cdf_pipeline *p) { return p ? p->err.msg : "no pipeline"; }
cdf_pipeline_kind cdf_pipeline_get_kind(const cdf_pipeline *p) { return p->kind; }
const char *cdf_pipeline_class_name(const cdf_pipeline *p) { return p->class_name; }
const char *cdf_pipeline_scheduler_name(const cdf_pipeline *p) {
    return p->sched.kind == CDF_SCHED_DDIM ? "DDIMScheduler" : "DDPMScheduler";
}
const char *cdf_pipeline_scheduler_json(const cdf_pipeline *p) { return p->sched_json; }

void cdf_pipeline_sample_size(const cdf_pipeline *p, int *height, int *width, int *channels) {
    if (height) *height = p->unet->cfg.sample_h;
    if (width) *width = p->unet->cfg.sample_w;
    if (channels) *channels = p->unet->cfg.in_channels;
}

void cdf_generate_options_init(cdf_generate_options *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 1;
    o->use_clipped_model_output = -1;
    o->threads = 1;
    o->output_type = CDF_OUTPUT_NP;
}

void cdf_tensor_free(cdf_tensor *t) {
    if (!t) return;
    cdf_free(t->data);
    memset(t, 0, sizeof *t);
}

/* Draws [batch, c, h, w] float32 noise the way randn_tensor does. */
static cdf_status draw(cdf_generator *const *gens, size_t ngens, int batch, int c, int h, int w, float *out,
                       cdf_error *err) {
    int64_t shape[4] = {batch, c, h, w};
    return cdf_randn_tensor(gens, ngens, shape, 4, CDF_F32, out, err);
}

static cdf_status make_output(const cdf_generate_options *o, const float *sample, int batch, int c, int h, int w,
                              cdf_tensor *images, cdf_error *err) {
    size_t n = (size_t)batch * c * h * w;
    memset(images, 0, sizeof *images);
    images->ndim = 4;
    if (o->output_type == CDF_OUTPUT_SAMPLE) {
        images->dtype = CDF_F32;
        images->shape[0] = batch, images->shape[1] = c, images->shape[2] = h, images->shape[3] = w;
        if (!(images->data = cdf_mallocn(n, sizeof(float)))) goto oom;
        memcpy(images->data, sample, n * sizeof(float));
        return CDF_OK;
    }
    float *nhwc = cdf_mallocn(n, sizeof(float));
    if (!nhwc) goto oom;
    cdf_postprocess_nhwc(sample, batch, c, h, w, nhwc);
    images->shape[0] = batch, images->shape[1] = h, images->shape[2] = w, images->shape[3] = c;
    if (o->output_type == CDF_OUTPUT_PIL) {
        unsigned char *u8 = cdf_malloc(n);
        if (!u8) {
            cdf_free(nhwc);
            goto oom;
        }
        cdf_to_uint8(nhwc, n, u8);
        cdf_free(nhwc);
        images->dtype = CDF_U8;
        images->data = u8;
    } else {
        images->dtype = CDF_F32;
        images->data = nhwc;
    }
    return CDF_OK;
oom:
    return cdf_error_set(err, CDF_ERR_NOMEM, "out of memory for the output images");
}

static cdf_status run(cdf_pipeline *p, const cdf_generate_options *o, cdf_generator *const *gens, size_t ngens,
                      cdf_tensor *images, cdf_error *err) {
    const cdf_unet2d_config *uc = &p->unet->cfg;
    int batch = o->batch_size, c = uc->in_channels, h = uc->sample_h, w = uc->sample_w;
    int steps = o->num_inference_steps ? o->num_inference_steps : (p->kind == CDF_PIPELINE_DDIM ? 50 : 1000);
    if (batch < 1) return cdf_error_set(err, CDF_ERR_ARG, "batch_size must be at least 1 (got %d)", batch);
    if (steps < 1) return cdf_error_set(err, CDF_ERR_ARG, "num_inference_steps must be at least 1 (got %d)", steps);
    if (ngens != 1 && ngens != (size_t)batch)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "You have passed a list of generators of length %zu, but requested an effective batch "
                             "size of %d. Make sure the batch size matches the length of the generators.",
                             ngens, batch);
    if (!h || !w) return cdf_error_set(err, CDF_ERR_CONFIG, "unet/config.json: sample_size is null; no image size");
    if (uc->out_channels != c && uc->out_channels != 2 * c)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "unet/config.json: out_channels %d must equal in_channels %d (or twice it for learned "
                             "variance)",
                             uc->out_channels, c);
    if (o->eta < 0.0) return cdf_error_set(err, CDF_ERR_ARG, "eta must be >= 0 (got %g)", o->eta);
    size_t n = (size_t)batch * c * h * w, nm = (size_t)batch * uc->out_channels * h * w;
    cdf_exec ex;
    cdf_exec_init(&ex, o->threads, err);
    cdf_exec_apply_threads(&ex);
    cdf_scheduler *sch = NULL;
    float *lat = NULL, *mo = NULL, *noise = NULL;
    cdf_status s = cdf_scheduler_new(&p->sched, &sch, err);
    if (!s) s = cdf_scheduler_set_timesteps(sch, steps, err);
    if (s) goto done;
    if (!(lat = cdf_mallocn(n, sizeof(float))) || !(mo = cdf_mallocn(nm, sizeof(float))) ||
        !(noise = cdf_mallocn(n, sizeof(float)))) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory for %d latents of %dx%dx%d", batch, c, h, w);
        goto done;
    }
    if ((s = draw(gens, ngens, batch, c, h, w, lat, err))) goto done;
    /* init_noise_sigma is 1 for DDPM/DDIM: latents are the noise itself */
    int nsteps = cdf_scheduler_num_timesteps(sch);
    cdf_step_info info = {-1, nsteps, 0, lat, NULL, NULL, batch, c, uc->out_channels, h, w};
    if (o->on_step && o->on_step(&info, o->on_step_user)) {
        s = cdf_error_set(err, CDF_ERR_INTERRUPTED, "interrupted before the first step");
        goto done;
    }
    cdf_sched_step_opts so = {o->eta, o->use_clipped_model_output};
    for (int i = 0; i < nsteps; i++) {
        int64_t t = cdf_scheduler_timestep(sch, i);
        if ((s = cdf_unet2d_forward(&ex, p->unet, lat, batch, h, w, t, mo))) goto done;
        const float *nz = NULL;
        if (cdf_scheduler_step_needs_noise(sch, i, &so)) {
            if ((s = draw(gens, ngens, batch, c, h, w, noise, err))) goto done;
            nz = noise;
        }
        if ((s = cdf_scheduler_step(sch, i, mo, uc->out_channels, lat, batch, c, (int64_t)h * w, nz, &so, err)))
            goto done;
        cdf_step_info si = {i, nsteps, t, lat, mo, nz, batch, c, uc->out_channels, h, w};
        if (o->on_step && o->on_step(&si, o->on_step_user)) {
            s = cdf_error_set(err, CDF_ERR_INTERRUPTED, "interrupted after step %d of %d", i + 1, nsteps);
            goto done;
        }
    }
    s = make_output(o, lat, batch, c, h, w, images, err);
done:
    cdf_free(lat);
    cdf_free(mo);
    cdf_free(noise);
    cdf_scheduler_free(sch);
    cdf_exec_release(&ex);
    return s;
}

cdf_status cdf_pipeline_generate(cdf_pipeline *p, const cdf_generate_options *o, cdf_generator *const *gens,
                                 size_t ngens, cdf_tensor *images, char *os_seed) {
    cdf_error_clear(&p->err);
    memset(images, 0, sizeof *images);
    cdf_generate_options def;
    if (!o) {
        cdf_generate_options_init(&def);
        o = &def;
    }
    if (ngens == 0) {
        char seed[48];
        cdf_generator *g = NULL;
        cdf_status s = cdf_seed_from_os(seed, sizeof seed, &p->err);
        if (!s) s = cdf_generator_new(CDF_RNG_NUMPY, seed, &g, &p->err);
        if (s) return s;
        if (os_seed) snprintf(os_seed, 48, "%s", seed);
        s = run(p, o, &g, 1, images, &p->err);
        cdf_generator_free(g);
        return s;
    }
    if (!gens) return cdf_error_set(&p->err, CDF_ERR_ARG, "generator list is NULL");
    for (size_t i = 0; i < ngens; i++)
        if (!gens[i]) return cdf_error_set(&p->err, CDF_ERR_ARG, "generator %zu is NULL", i);
    return run(p, o, gens, ngens, images, &p->err);
}
