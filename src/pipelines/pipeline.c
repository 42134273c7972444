/* The pipeline front: model_index.json, component classes, dispatch to the
 * pipeline family, generator handling and outputs. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io/json.h"
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

cdf_status cdf_index_expect(const cJSON *idx, const char *path, const char *key, const char *const *ok,
                            cdf_error *err) {
    const char *cls = NULL;
    TRY(cdf_index_component(idx, path, key, 1, &cls, err));
    for (; *ok; ok++)
        if (strcmp(cls, *ok) == 0) return CDF_OK;
    return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: component '%s' of class \"%s\" is not supported", path, key,
                         cls);
}

cdf_status cdf_pipeline_load_scheduler(const char *dir, const char *sub, int convert, cdf_sched_config *cfg,
                                       char **json, cdf_error *err) {
    memset(cfg, 0, sizeof *cfg);
    if (json) *json = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/scheduler_config.json", dir, sub);
    cJSON *root = NULL;
    TRY(cdf_json_load(path, &root, err));
    cdf_status s = cdf_sched_config_parse(root, path, cfg, err);
    cJSON_Delete(root);
    if (s) return s;
    if (convert >= 0 && cfg->kind != (cdf_sched_kind)convert) TRY(cdf_sched_config_convert(cfg, (cdf_sched_kind)convert, err));
    if (json && !(*json = cdf_sched_config_to_json_ex(cfg, 1)))
        return cdf_error_set(err, CDF_ERR_NOMEM, "out of memory describing %s", path);
    return CDF_OK;
}

/* Every family, and through it every model_index.json class cdiffusers runs. */
static const cdf_pipeline_family *const k_families[] = {&cdf_family_unet2d, &cdf_family_sd, &cdf_family_unclip};
#define N_FAMILIES (sizeof k_families / sizeof k_families[0])

static const cdf_pipeline_class *find_class(const char *name, const cdf_pipeline_family **fam) {
    for (size_t f = 0; f < N_FAMILIES; f++)
        for (int i = 0; i < k_families[f]->n_classes; i++)
            if (strcmp(name, k_families[f]->classes[i].name) == 0) {
                *fam = k_families[f];
                return &k_families[f]->classes[i];
            }
    return NULL;
}

static const cdf_pipeline_class *find_kind(cdf_pipeline_kind k, const cdf_pipeline_family **fam) {
    for (size_t f = 0; f < N_FAMILIES; f++)
        for (int i = 0; i < k_families[f]->n_classes; i++)
            if (k_families[f]->classes[i].kind == k) {
                *fam = k_families[f];
                return &k_families[f]->classes[i];
            }
    return NULL;
}

/* The folder's class picks the family; a requested kind must belong to the
 * same family (a DDPMPipeline folder runs as DDIMPipeline, as diffusers
 * allows, but never as Stable Diffusion). */
static cdf_status resolve_class(const char *cls, const char *path, cdf_pipeline_kind want,
                                const cdf_pipeline_family **fam, const cdf_pipeline_class **out, cdf_error *err) {
    const cdf_pipeline_class *c = find_class(cls, fam);
    if (!c) {
        char list[512] = "";
        size_t used = 0;
        for (size_t f = 0; f < N_FAMILIES; f++)
            for (int i = 0; i < k_families[f]->n_classes && used < sizeof list; i++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "",
                                         k_families[f]->classes[i].name);
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: field '_class_name': pipeline class \"%s\" is not supported (%s)", path, cls, list);
    }
    *out = c;
    if (want == CDF_PIPELINE_AUTO || want == c->kind) return CDF_OK;
    const cdf_pipeline_family *wf = NULL;
    const cdf_pipeline_class *wc = find_kind(want, &wf);
    if (!wc) return cdf_error_set(err, CDF_ERR_ARG, "pipeline kind %d is not one cdiffusers knows", (int)want);
    if (wf != *fam) return cdf_error_set(err, CDF_ERR_ARG, "%s: a %s folder cannot run as %s", path, cls, wc->name);
    *out = wc;
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
    const cdf_pipeline_class *pc = NULL;
    cdf_status s = cdf_json_get_string(idx, path, "_class_name", &cls, err);
    if (!s && !cls) s = cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '_class_name' is missing", path);
    if (!s) s = resolve_class(cls, path, opts ? opts->kind : CDF_PIPELINE_AUTO, &p->family, &pc, err);
    if (!s) {
        p->kind = pc->kind;
        snprintf(p->class_name, sizeof p->class_name, "%s", pc->name);
        s = p->family->load(p, model_dir, idx, path, variant, err);
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
    if (p->family) p->family->free(p->state);
    cdf_free(p->sched_json);
    cdf_free(p);
}

const char *cdf_pipeline_last_error(const cdf_pipeline *p) { return p ? p->err.msg : "no pipeline"; }
cdf_pipeline_kind cdf_pipeline_get_kind(const cdf_pipeline *p) { return p->kind; }
const char *cdf_pipeline_class_name(const cdf_pipeline *p) { return p->class_name; }
const char *cdf_pipeline_scheduler_name(const cdf_pipeline *p) { return p->sched_name; }
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
    o->prior_guidance_scale = 4.0;
    o->decoder_guidance_scale = 8.0;
    o->strength = -1.0;
    o->text_cache = NULL;
}

int cdf_pipeline_batch_size(const cdf_pipeline *p, const cdf_generate_options *o) {
    cdf_generate_options def;
    if (!o) {
        cdf_generate_options_init(&def);
        o = &def;
    }
    return p->family->batch_size(o);
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

/* A scheduler config from JSON text; `what` names it in messages. */
static cdf_status sched_config_from_text(const char *text, const char *what, cdf_sched_config *cfg, cdf_error *err) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = NULL;
    TRY(cdf_json_parse(text, strlen(text), what, &root, err));
    cdf_status s = cdf_sched_config_parse(root, what, cfg, err);
    cJSON_Delete(root);
    return s;
}

cdf_status cdf_scheduler_config_from(const char *config_json, const char *class_name, const char *const *keys,
                                     const char *const *values, size_t n, char **out_json, cdf_error *err) {
    if (out_json) *out_json = NULL;
    if (!config_json || !out_json || (n && (!keys || !values)))
        return cdf_error_set(err, CDF_ERR_ARG, "cdf_scheduler_config_from: NULL argument");
    cdf_sched_config cfg;
    cdf_status s = sched_config_from_text(config_json, "scheduler config", &cfg, err);
    if (!s && class_name) {
        cdf_sched_kind k;
        s = cdf_sched_kind_from_name(class_name, &k, err);
        if (!s && k != cfg.kind) s = cdf_sched_config_convert(&cfg, k, err);
    }
    for (size_t i = 0; !s && i < n; i++) s = cdf_sched_config_set(&cfg, keys[i], values[i], err);
    /* the overrides together must make a valid scheduler, as the class's __init__ checks them */
    if (!s) s = cdf_sched_config_validate(&cfg, "from_config", err);
    if (!s && !(*out_json = cdf_sched_config_to_json_ex(&cfg, 1)))
        s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory describing the scheduler config");
    cdf_sched_config_free(&cfg);
    return s;
}

cdf_status cdf_pipeline_make_scheduler(const cdf_sched_config *base, const cdf_generate_options *o, int swap, int steps,
                                       cdf_scheduler **out, cdf_error *err) {
    *out = NULL;
    cdf_sched_config cfg;
    if (o->scheduler_config)
        TRY(sched_config_from_text(o->scheduler_config, "scheduler_config", &cfg, err));
    else
        TRY(cdf_sched_config_copy(&cfg, base, err));
    cdf_status s = CDF_OK;
    if (swap && o->scheduler) {
        cdf_sched_kind k;
        s = cdf_sched_kind_from_name(o->scheduler, &k, err);
        if (!s && k != cfg.kind) s = cdf_sched_config_convert(&cfg, k, err);
    }
    if (!s && swap && o->use_karras_sigmas >= 0)
        s = cdf_sched_config_set(&cfg, "use_karras_sigmas", o->use_karras_sigmas ? "true" : "false", err);
    if (!s) s = cdf_scheduler_new(&cfg, out, err);
    /* pipelines other than UnCLIPPipeline call step() without prev_timestep:
     * a swapped-in UnCLIPScheduler then steps to t - 1, as in diffusers */
    if (!s && swap) cdf_scheduler_set_prev_timestep_none(*out, 1);
    if (!s) s = cdf_scheduler_set_timesteps(*out, steps, err);
    if (s) {
        cdf_scheduler_free(*out);
        *out = NULL;
    }
    cdf_sched_config_free(&cfg);
    return s;
}

cdf_status cdf_pipeline_report_step(const cdf_generate_options *o, const cdf_step_info *si, cdf_error *err) {
    if (!o->on_step || !o->on_step(si, o->on_step_user)) return CDF_OK;
    const char *stage = si->stage_name ? si->stage_name : "", *sp = si->stage_name ? " " : "";
    if (si->step < 0) return cdf_error_set(err, CDF_ERR_INTERRUPTED, "interrupted before the first %s%sstep", stage, sp);
    return cdf_error_set(err, CDF_ERR_INTERRUPTED, "interrupted after %s%sstep %d of %d", stage, sp, si->step + 1,
                         si->num_steps);
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
    if (!cdf_precision_name(o->precision))
        return cdf_error_set(&p->err, CDF_ERR_ARG, "precision %d is neither fp32 (0) nor bf16 (1)", (int)o->precision);
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
    cdf_status s = p->family->run(p, o, gens, ngens, images, &p->err);
    cdf_generator_free(own);
    return s;
}

void cdf_pipeline_sample_size(const cdf_pipeline *p, int *height, int *width, int *channels) {
    int h = 0, w = 0, c = 0;
    p->family->default_size(p->state, &h, &w, &c);
    if (height) *height = h;
    if (width) *width = w;
    if (channels) *channels = c;
}

cdf_status cdf_pipeline_weights_hash(const cdf_pipeline *p, char *out, cdf_error *err) {
    uint64_t h = 0x6364696666757365ull; /* "cdiffuse" */
    h = p->family->weights_hash(p->state, h);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    (void)err;
    return CDF_OK;
}
