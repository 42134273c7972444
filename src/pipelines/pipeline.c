/* The pipeline front: model_index.json, component classes, dispatch to the
 * pipeline family, generator handling and outputs. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io/json.h"
#include "models/unet2d.h"
#include "pipelines/pipeline_internal.h"
#include "pipelines/postprocess.h"

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

cdf_status cdf_index_component(const cJSON *idx, const char *path, const char *key, int required, const char **cls,
                               cdf_error *err) {
    *cls = NULL;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(idx, key);
    if (!c || cJSON_IsNull(c) ||
        (cJSON_IsArray(c) && cJSON_GetArraySize(c) == 2 && cJSON_IsNull(cJSON_GetArrayItem(c, 1)))) {
        if (required) return cdf_error_set(err, CDF_ERR_MISSING, "%s: component '%s' is missing", path, key);
        return CDF_OK;
    }
    if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) != 2 || !cJSON_IsString(cJSON_GetArrayItem(c, 1)))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: component '%s' must be [library, class]", path, key);
    *cls = cJSON_GetArrayItem(c, 1)->valuestring;
    return CDF_OK;
}

cdf_status cdf_pipeline_load_scheduler(cdf_pipeline *p, const char *dir, cdf_error *err) {
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

static cdf_status resolve_kind(const char *cls, const char *path, cdf_pipeline_kind want, cdf_pipeline_kind *out,
                               cdf_error *err) {
    cdf_pipeline_kind k;
    if (strcmp(cls, "DDPMPipeline") == 0)
        k = CDF_PIPELINE_DDPM;
    else if (strcmp(cls, "DDIMPipeline") == 0)
        k = CDF_PIPELINE_DDIM;
    else if (strcmp(cls, "StableDiffusionPipeline") == 0)
        k = CDF_PIPELINE_SD;
    else
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: pipeline class \"%s\" is not supported (DDPMPipeline, DDIMPipeline, "
                             "StableDiffusionPipeline)",
                             path, cls);
    if (want == CDF_PIPELINE_AUTO) {
        *out = k;
    } else if ((want == CDF_PIPELINE_SD) != (k == CDF_PIPELINE_SD)) {
        return cdf_error_set(err, CDF_ERR_ARG, "%s: a %s folder cannot run as %s", path, cls,
                             want == CDF_PIPELINE_SD ? "StableDiffusionPipeline" : "a DDPM/DDIM pipeline");
    } else {
        *out = want;
    }
    return CDF_OK;
}

cdf_status cdf_pipeline_load(const char *model_dir, const cdf_load_options *opts, cdf_pipeline **out,
                             cdf_error *err) {
    *out = NULL;
    struct stat st;
    if (stat(model_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cdf_error_set(err, CDF_ERR_MISSING, "%s: model folder not found", model_dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/model_index.json", model_dir);
    cJSON *idx = NULL;
    TRY(cdf_json_load(path, &idx, err));
    cdf_pipeline *p = cdf_calloc(1, sizeof *p);
    if (!p) {
        cJSON_Delete(idx);
        return cdf_error_set(err, CDF_ERR_NOMEM, "out of memory loading %s", model_dir);
    }
    const char *cls = NULL, *variant = opts ? opts->variant : NULL;
    cdf_status s = cdf_json_get_string(idx, path, "_class_name", &cls, err);
    if (!s && !cls) s = cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '_class_name' is missing", path);
    if (!s) s = resolve_kind(cls, path, opts ? opts->kind : CDF_PIPELINE_AUTO, &p->kind, err);
    if (!s) {
        snprintf(p->class_name, sizeof p->class_name, "%s",
                 p->kind == CDF_PIPELINE_SD ? "StableDiffusionPipeline"
                                            : (p->kind == CDF_PIPELINE_DDIM ? "DDIMPipeline" : "DDPMPipeline"));
        s = p->kind == CDF_PIPELINE_SD ? cdf_sd_pipeline_load(p, model_dir, idx, path, variant, err)
                                       : cdf_unet2d_pipeline_load(p, model_dir, idx, path, variant, err);
    }
    cJSON_Delete(idx);
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
    cdf_sd_pipeline_unload(p);
    cdf_sched_config_free(&p->sched);
    cdf_free(p->sched_json);
    cdf_free(p);
}

const char *cdf_pipeline_last_error(const cdf_pipeline *p) { return p ? p->err.msg : "no pipeline"; }
cdf_pipeline_kind cdf_pipeline_get_kind(const cdf_pipeline *p) { return p->kind; }
const char *cdf_pipeline_class_name(const cdf_pipeline *p) { return p->class_name; }
const char *cdf_pipeline_scheduler_name(const cdf_pipeline *p) { return cdf_sched_kind_name(p->sched.kind); }
const char *cdf_pipeline_scheduler_json(const cdf_pipeline *p) { return p->sched_json; }

void cdf_generate_options_init(cdf_generate_options *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 1;
    o->use_clipped_model_output = -1;
    o->threads = 1;
    o->output_type = CDF_OUTPUT_NP;
    o->num_images_per_prompt = 1;
    o->guidance_scale = 7.5;
    o->use_karras_sigmas = -1;
}

int cdf_pipeline_batch_size(const cdf_pipeline *p, const cdf_generate_options *o) {
    if (p->kind != CDF_PIPELINE_SD) return o->batch_size;
    /* saturates instead of overflowing: the run refuses it (CDF_ERR_LIMIT) */
    if (o->num_images_per_prompt <= 0) return 0;
    if (o->num_prompts > (size_t)INT_MAX / (size_t)o->num_images_per_prompt) return INT_MAX;
    return (int)o->num_prompts * o->num_images_per_prompt;
}

void cdf_tensor_free(cdf_tensor *t) {
    if (!t) return;
    cdf_free(t->data);
    memset(t, 0, sizeof *t);
}

cdf_status cdf_pipeline_draw(cdf_generator *const *gens, size_t ngens, int batch, int c, int h, int w, float *out,
                             cdf_error *err) {
    int64_t shape[4] = {batch, c, h, w};
    return cdf_randn_tensor(gens, ngens, shape, 4, CDF_F32, out, err);
}

cdf_status cdf_pipeline_make_output(const cdf_generate_options *o, const float *sample, int batch, int c, int h,
                                    int w, cdf_tensor *images, cdf_error *err) {
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

cdf_status cdf_pipeline_make_scheduler(const cdf_pipeline *p, const cdf_generate_options *o, int steps,
                                       cdf_scheduler **out, cdf_error *err) {
    *out = NULL;
    cdf_sched_config cfg;
    TRY(cdf_sched_config_copy(&cfg, &p->sched, err));
    cdf_status s = CDF_OK;
    if (o->scheduler) {
        cdf_sched_kind k;
        s = cdf_sched_kind_from_name(o->scheduler, &k, err);
        if (!s && k != cfg.kind) s = cdf_sched_config_convert(&cfg, k, err);
    }
    if (!s && o->use_karras_sigmas >= 0)
        s = cdf_sched_config_set(&cfg, "use_karras_sigmas", o->use_karras_sigmas ? "true" : "false", err);
    if (!s) s = cdf_scheduler_new(&cfg, out, err);
    if (!s) s = cdf_scheduler_set_timesteps(*out, steps, err);
    if (s) {
        cdf_scheduler_free(*out);
        *out = NULL;
    }
    cdf_sched_config_free(&cfg);
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
    cdf_generator *own = NULL;
    if (ngens == 0) {
        char seed[48];
        cdf_status s = cdf_seed_from_os(seed, sizeof seed, &p->err);
        if (!s) s = cdf_generator_new(CDF_RNG_NUMPY, seed, &own, &p->err);
        if (s) return s;
        if (os_seed) snprintf(os_seed, 48, "%s", seed);
        gens = &own;
        ngens = 1;
    } else {
        if (!gens) return cdf_error_set(&p->err, CDF_ERR_ARG, "generator list is NULL");
        for (size_t i = 0; i < ngens; i++)
            if (!gens[i]) return cdf_error_set(&p->err, CDF_ERR_ARG, "generator %zu is NULL", i);
    }
    cdf_status s = p->kind == CDF_PIPELINE_SD ? cdf_sd_pipeline_run(p, o, gens, ngens, images, &p->err)
                                              : cdf_unet2d_pipeline_run(p, o, gens, ngens, images, &p->err);
    cdf_generator_free(own);
    return s;
}

void cdf_pipeline_sample_size(const cdf_pipeline *p, int *height, int *width, int *channels) {
    int h = 0, w = 0, c = 0;
    if (p->unet) {
        h = p->unet->cfg.sample_h;
        w = p->unet->cfg.sample_w;
        c = p->unet->cfg.in_channels;
    } else {
        cdf_sd_default_size(p, &h, &w, &c);
    }
    if (height) *height = h;
    if (width) *width = w;
    if (channels) *channels = c;
}

cdf_status cdf_pipeline_weights_hash(const cdf_pipeline *p, char *out, cdf_error *err) {
    uint64_t h = 0x6364696666757365ull; /* "cdiffuse" */
    if (p->unet) h = cdf_weights_hash(p->unet->weights, h);
    if (p->kind == CDF_PIPELINE_SD) h = cdf_sd_weights_hash(p, h);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    (void)err;
    return CDF_OK;
}
