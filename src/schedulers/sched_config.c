/* scheduler_config.json for DDPMScheduler / DDIMScheduler with diffusers 0.32
 * ConfigMixin semantics: class defaults for missing keys, `_use_default_values`,
 * keys of compatible schedulers kept silently, unknown keys kept with a notice,
 * from_config conversion between the two classes, canonical JSON. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/json.h"
#include "schedulers/scheduler.h"

/* Init keys of every scheduler compatible with DDPM/DDIM
 * (KarrasDiffusionSchedulers): diffusers drops these without a warning when
 * the class does not use them.  "quantization_config" is dropped silently too. */
static const char *const k_compatible_keys[] = {
    "algorithm_type", "args", "beta_end", "beta_schedule", "beta_start", "clip_sample", "clip_sample_range",
    "disable_corrector", "dynamic_thresholding_ratio", "euler_at_final", "final_sigmas_type", "flow_shift",
    "interpolation_type", "lambda_min_clipped", "lower_order_final", "num_train_timesteps", "predict_x0",
    "prediction_type", "rescale_betas_zero_snr", "rho", "sample_max_value", "set_alpha_to_one", "sigma_data",
    "sigma_max", "sigma_min", "sigma_schedule", "skip_prk_steps", "solver_order", "solver_p", "solver_type",
    "steps_offset", "thresholding", "timestep_spacing", "timestep_type", "trained_betas", "use_beta_sigmas",
    "use_exponential_sigmas", "use_flow_sigmas", "use_karras_sigmas", "use_lu_lambdas", "variance_type",
    "quantization_config", NULL};

/* The fields this file models, with their bit. */
typedef struct field_def {
    const char *name;
    uint32_t bit;
} field_def;

static const field_def k_fields[] = {
    {"num_train_timesteps", CDF_SCHED_F_NUM_TRAIN_TIMESTEPS},
    {"beta_start", CDF_SCHED_F_BETA_START},
    {"beta_end", CDF_SCHED_F_BETA_END},
    {"beta_schedule", CDF_SCHED_F_BETA_SCHEDULE},
    {"trained_betas", CDF_SCHED_F_TRAINED_BETAS},
    {"variance_type", CDF_SCHED_F_VARIANCE_TYPE},
    {"clip_sample", CDF_SCHED_F_CLIP_SAMPLE},
    {"set_alpha_to_one", CDF_SCHED_F_SET_ALPHA_TO_ONE},
    {"steps_offset", CDF_SCHED_F_STEPS_OFFSET},
    {"prediction_type", CDF_SCHED_F_PREDICTION_TYPE},
    {"thresholding", CDF_SCHED_F_THRESHOLDING},
    {"dynamic_thresholding_ratio", CDF_SCHED_F_DYNAMIC_THRESHOLDING_RATIO},
    {"clip_sample_range", CDF_SCHED_F_CLIP_SAMPLE_RANGE},
    {"sample_max_value", CDF_SCHED_F_SAMPLE_MAX_VALUE},
    {"timestep_spacing", CDF_SCHED_F_TIMESTEP_SPACING},
    {"rescale_betas_zero_snr", CDF_SCHED_F_RESCALE_BETAS_ZERO_SNR},
};
#define N_FIELDS (sizeof k_fields / sizeof k_fields[0])

const char *cdf_sched_kind_name(cdf_sched_kind kind) {
    return kind == CDF_SCHED_DDIM ? "DDIMScheduler" : "DDPMScheduler";
}

/* The field a class does not have in its __init__ (kept only as a hidden key). */
static uint32_t foreign_bit(cdf_sched_kind kind) {
    return kind == CDF_SCHED_DDIM ? CDF_SCHED_F_VARIANCE_TYPE : CDF_SCHED_F_SET_ALPHA_TO_ONE;
}

void cdf_sched_config_defaults(cdf_sched_config *cfg, cdf_sched_kind kind) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->num_train_timesteps = 1000;
    cfg->beta_start = 0.0001;
    cfg->beta_end = 0.02;
    strcpy(cfg->beta_schedule, "linear");
    cfg->clip_sample = 1;
    cfg->clip_sample_range = 1.0;
    cfg->set_alpha_to_one = 1;
    cfg->steps_offset = 0;
    strcpy(cfg->prediction_type, "epsilon");
    cfg->thresholding = 0;
    cfg->dynamic_thresholding_ratio = 0.995;
    cfg->sample_max_value = 1.0;
    strcpy(cfg->timestep_spacing, "leading");
    cfg->rescale_betas_zero_snr = 0;
    strcpy(cfg->variance_type, "fixed_small");
}

void cdf_sched_config_free(cdf_sched_config *cfg) {
    if (!cfg) return;
    cdf_free(cfg->trained_betas);
    if (cfg->extra) cJSON_Delete(cfg->extra);
    memset(cfg, 0, sizeof *cfg);
}

cdf_status cdf_sched_config_copy(cdf_sched_config *dst, const cdf_sched_config *src, cdf_error *err) {
    *dst = *src;
    dst->trained_betas = NULL;
    dst->extra = NULL;
    if (src->trained_betas) {
        dst->trained_betas = cdf_mallocn(src->n_trained_betas ? src->n_trained_betas : 1, sizeof(double));
        if (!dst->trained_betas) goto nomem;
        if (src->n_trained_betas)
            memcpy(dst->trained_betas, src->trained_betas, src->n_trained_betas * sizeof(double));
    }
    if (src->extra) {
        dst->extra = cJSON_Duplicate(src->extra, 1);
        if (!dst->extra) goto nomem;
    }
    return CDF_OK;
nomem:
    cdf_sched_config_free(dst);
    return cdf_error_set(err, CDF_ERR_NOMEM, "scheduler config: out of memory copying");
}

/* Short printable form of a JSON value for messages. */
static void value_text(const cJSON *v, char *buf, size_t cap) {
    char *p = cJSON_PrintUnformatted(v);
    if (!p) {
        snprintf(buf, cap, "<value>");
        return;
    }
    size_t n = strlen(p);
    if (n >= cap) {
        snprintf(buf, cap, "%.*s...", (int)(cap - 4), p);
    } else {
        memcpy(buf, p, n + 1);
    }
    cJSON_free(p);
}

static cdf_status bad_type(const char *path, const char *key, const cJSON *v, const char *want, cdf_error *err) {
    char vt[80];
    value_text(v, vt, sizeof vt);
    return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be %s, got %s", path, key, want, vt);
}

/* Readers: leave the default when the key is absent, set the given bit when present. */
static cdf_status rd_number(const cJSON *o, const char *path, const char *key, uint32_t bit, double *out,
                            uint32_t *given, cdf_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return CDF_OK;
    if (!cJSON_IsNumber(v)) return bad_type(path, key, v, "a number", err);
    *out = v->valuedouble;
    *given |= bit;
    return CDF_OK;
}

static cdf_status rd_int(const cJSON *o, const char *path, const char *key, uint32_t bit, int *out,
                         uint32_t *given, cdf_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return CDF_OK;
    if (!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble || v->valuedouble < -2147483647.0 ||
        v->valuedouble > 2147483647.0)
        return bad_type(path, key, v, "an integer", err);
    *out = (int)v->valuedouble;
    *given |= bit;
    return CDF_OK;
}

/* Python truthiness of a JSON value: bools, null (false) and numbers. */
static cdf_status rd_bool(const cJSON *o, const char *path, const char *key, uint32_t bit, int *out,
                          uint32_t *given, cdf_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return CDF_OK;
    if (cJSON_IsBool(v))
        *out = cJSON_IsTrue(v) ? 1 : 0;
    else if (cJSON_IsNull(v))
        *out = 0;
    else if (cJSON_IsNumber(v))
        *out = v->valuedouble != 0.0;
    else
        return bad_type(path, key, v, "true or false", err);
    *given |= bit;
    return CDF_OK;
}

static cdf_status rd_string(const cJSON *o, const char *path, const char *key, uint32_t bit, char out[32],
                            uint32_t *given, int null_drops, cdf_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return CDF_OK;
    if (cJSON_IsNull(v) && null_drops) return CDF_OK;
    if (!cJSON_IsString(v)) return bad_type(path, key, v, "a string", err);
    if (strlen(v->valuestring) >= 32)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s': unknown value '%.60s'", path, key, v->valuestring);
    strcpy(out, v->valuestring);
    *given |= bit;
    return CDF_OK;
}

static cdf_status rd_betas(const cJSON *o, const char *path, cdf_sched_config *cfg, cdf_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "trained_betas");
    if (!v) return CDF_OK;
    cfg->given |= CDF_SCHED_F_TRAINED_BETAS;
    if (cJSON_IsNull(v)) return CDF_OK;
    if (!cJSON_IsArray(v)) return bad_type(path, "trained_betas", v, "null or an array of numbers", err);
    int n = cJSON_GetArraySize(v);
    double *b = cdf_mallocn(n > 0 ? (size_t)n : 1, sizeof *b);
    if (!b) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory reading 'trained_betas'", path);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsNumber(it)) {
            cdf_free(b);
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'trained_betas'[%d] must be a number", path, i);
        }
        b[i++] = it->valuedouble;
    }
    cfg->trained_betas = b;
    cfg->n_trained_betas = (size_t)n;
    return CDF_OK;
}

static int is_modelled(const char *key) {
    for (size_t i = 0; i < N_FIELDS; i++)
        if (strcmp(k_fields[i].name, key) == 0) return 1;
    return 0;
}

static int one_of(const char *v, const char *const *list) {
    for (; *list; list++)
        if (strcmp(v, *list) == 0) return 1;
    return 0;
}

cdf_status cdf_sched_config_validate(const cdf_sched_config *cfg, const char *path, cdf_error *err) {
    static const char *const schedules[] = {"linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid", NULL};
    static const char *const preds[] = {"epsilon", "sample", "v_prediction", NULL};
    static const char *const spacings[] = {"leading", "trailing", "linspace", NULL};
    static const char *const variances[] = {"fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log",
                                            "learned", "learned_range", NULL};
    const char *cls = cdf_sched_kind_name(cfg->kind);
    if (cfg->num_train_timesteps < 1 || cfg->num_train_timesteps > CDF_SCHED_MAX_TRAIN_TIMESTEPS)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'num_train_timesteps': value %d is not in [1, %d]", path,
                             cfg->num_train_timesteps, CDF_SCHED_MAX_TRAIN_TIMESTEPS);
    if (cfg->trained_betas) {
        if (cfg->n_trained_betas != (size_t)cfg->num_train_timesteps)
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s: field 'trained_betas': has %zu values but num_train_timesteps is %d", path,
                                 cfg->n_trained_betas, cfg->num_train_timesteps);
    } else {
        int ok = one_of(cfg->beta_schedule, schedules) &&
                 !(cfg->kind == CDF_SCHED_DDIM && strcmp(cfg->beta_schedule, "sigmoid") == 0);
        if (!ok)
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'beta_schedule': '%s' is not implemented for %s", path,
                                 cfg->beta_schedule, cls);
    }
    if (!one_of(cfg->prediction_type, preds))
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: field 'prediction_type': '%s' must be one of epsilon, sample or v_prediction", path,
                             cfg->prediction_type);
    if (!one_of(cfg->timestep_spacing, spacings))
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: field 'timestep_spacing': '%s' is not supported (linspace, leading or trailing)", path,
                             cfg->timestep_spacing);
    if (cfg->kind == CDF_SCHED_DDPM && !one_of(cfg->variance_type, variances))
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: field 'variance_type': '%s' is not one of fixed_small, fixed_small_log, fixed_large, "
                             "fixed_large_log, learned, learned_range",
                             path, cfg->variance_type);
    if (cfg->thresholding && !(cfg->dynamic_thresholding_ratio >= 0.0 && cfg->dynamic_thresholding_ratio <= 1.0))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'dynamic_thresholding_ratio': %g must be in [0, 1]", path,
                             cfg->dynamic_thresholding_ratio);
    return CDF_OK;
}

/* A copy of root without the keys named in its `_use_default_values` list
 * (diffusers treats them as not given), or NULL (*st set) on failure. */
static cJSON *drop_used_defaults(const cJSON *root, const char *path, cdf_status *st, cdf_error *err) {
    cJSON *copy = cJSON_Duplicate(root, 1);
    if (!copy) {
        *st = cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "_use_default_values");
    if (list && cJSON_IsArray(list)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, list) {
            if (cJSON_IsString(it)) cJSON_DeleteItemFromObjectCaseSensitive(copy, it->valuestring);
        }
    }
    *st = CDF_OK;
    return copy;
}

static cdf_status read_fields(const cJSON *o, const char *path, cdf_sched_config *c, cdf_error *err) {
    cdf_status s;
    uint32_t *g = &c->given;
    /* Null is only meaningful for trained_betas and the truthy flags; the
     * other class's string field may be null and is then dropped. */
    const int ddim = c->kind == CDF_SCHED_DDIM;
    if ((s = rd_int(o, path, "num_train_timesteps", CDF_SCHED_F_NUM_TRAIN_TIMESTEPS, &c->num_train_timesteps, g,
                    err)))
        return s;
    if ((s = rd_number(o, path, "beta_start", CDF_SCHED_F_BETA_START, &c->beta_start, g, err))) return s;
    if ((s = rd_number(o, path, "beta_end", CDF_SCHED_F_BETA_END, &c->beta_end, g, err))) return s;
    if ((s = rd_string(o, path, "beta_schedule", CDF_SCHED_F_BETA_SCHEDULE, c->beta_schedule, g, 0, err))) return s;
    if ((s = rd_betas(o, path, c, err))) return s;
    if ((s = rd_string(o, path, "variance_type", CDF_SCHED_F_VARIANCE_TYPE, c->variance_type, g, ddim, err)))
        return s;
    if ((s = rd_bool(o, path, "clip_sample", CDF_SCHED_F_CLIP_SAMPLE, &c->clip_sample, g, err))) return s;
    if ((s = rd_bool(o, path, "set_alpha_to_one", CDF_SCHED_F_SET_ALPHA_TO_ONE, &c->set_alpha_to_one, g, err)))
        return s;
    if ((s = rd_int(o, path, "steps_offset", CDF_SCHED_F_STEPS_OFFSET, &c->steps_offset, g, err))) return s;
    if ((s = rd_string(o, path, "prediction_type", CDF_SCHED_F_PREDICTION_TYPE, c->prediction_type, g, 0, err)))
        return s;
    if ((s = rd_bool(o, path, "thresholding", CDF_SCHED_F_THRESHOLDING, &c->thresholding, g, err))) return s;
    if ((s = rd_number(o, path, "dynamic_thresholding_ratio", CDF_SCHED_F_DYNAMIC_THRESHOLDING_RATIO,
                       &c->dynamic_thresholding_ratio, g, err)))
        return s;
    if ((s = rd_number(o, path, "clip_sample_range", CDF_SCHED_F_CLIP_SAMPLE_RANGE, &c->clip_sample_range, g, err)))
        return s;
    if ((s = rd_number(o, path, "sample_max_value", CDF_SCHED_F_SAMPLE_MAX_VALUE, &c->sample_max_value, g, err)))
        return s;
    if ((s = rd_string(o, path, "timestep_spacing", CDF_SCHED_F_TIMESTEP_SPACING, c->timestep_spacing, g, 0, err)))
        return s;
    if ((s = rd_bool(o, path, "rescale_betas_zero_snr", CDF_SCHED_F_RESCALE_BETAS_ZERO_SNR,
                     &c->rescale_betas_zero_snr, g, err)))
        return s;
    return CDF_OK;
}

/* Keeps every non-private key this file does not model (diffusers registers them as hidden config). */
static cdf_status keep_extra(const cJSON *o, const char *path, cdf_sched_config *c, cdf_error *err) {
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        if (!it->string || it->string[0] == '_' || is_modelled(it->string)) continue;
        if (!c->extra && !(c->extra = cJSON_CreateObject())) goto nomem;
        cJSON *dup = cJSON_Duplicate(it, 1);
        if (!dup) goto nomem;
        if (!cJSON_AddItemToObject(c->extra, it->string, dup)) {
            cJSON_Delete(dup);
            goto nomem;
        }
    }
    return CDF_OK;
nomem:
    return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", path);
}

cdf_status cdf_sched_config_parse(const cJSON *root, const char *path, cdf_sched_config *cfg, cdf_error *err) {
    memset(cfg, 0, sizeof *cfg);
    if (!cJSON_IsObject(root)) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: not a JSON object", path);
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(root, "_class_name");
    if (!cls) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '_class_name' is missing", path);
    if (!cJSON_IsString(cls)) return bad_type(path, "_class_name", cls, "a string", err);
    cdf_sched_kind kind;
    if (strcmp(cls->valuestring, "DDPMScheduler") == 0)
        kind = CDF_SCHED_DDPM;
    else if (strcmp(cls->valuestring, "DDIMScheduler") == 0)
        kind = CDF_SCHED_DDIM;
    else
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: field '_class_name': scheduler class '%.80s' is not supported (DDPMScheduler, "
                             "DDIMScheduler)",
                             path, cls->valuestring);
    cdf_sched_config_defaults(cfg, kind);
    cdf_status st;
    cJSON *o = drop_used_defaults(root, path, &st, err);
    if (!o) return st;
    st = read_fields(o, path, cfg, err);
    if (st == CDF_OK) st = keep_extra(o, path, cfg, err);
    if (st == CDF_OK) {
        cdf_json_notice_unknown(o, path, cdf_sched_kind_name(kind), k_compatible_keys, err);
        st = cdf_sched_config_validate(cfg, path, err);
    }
    cJSON_Delete(o);
    if (st != CDF_OK) cdf_sched_config_free(cfg);
    return st;
}

cdf_status cdf_sched_config_convert(cdf_sched_config *cfg, cdf_sched_kind to, cdf_error *err) {
    if (to != CDF_SCHED_DDPM && to != CDF_SCHED_DDIM)
        return cdf_error_set(err, CDF_ERR_ARG, "scheduler config: unknown scheduler kind %d", (int)to);
    if (cfg->kind != to) {
        cdf_sched_kind from = cfg->kind;
        cfg->kind = to;
        /* The new class's own field: its default unless the source config gave it. */
        uint32_t own = foreign_bit(from);
        if (!(cfg->given & own)) {
            cdf_sched_config d;
            cdf_sched_config_defaults(&d, to);
            if (to == CDF_SCHED_DDIM)
                cfg->set_alpha_to_one = d.set_alpha_to_one;
            else
                strcpy(cfg->variance_type, d.variance_type);
        }
    }
    char where[64];
    snprintf(where, sizeof where, "%s.from_config", cdf_sched_kind_name(to));
    return cdf_sched_config_validate(cfg, where, err);
}

/* ---- canonical JSON ---- */

static int add_field(cJSON *o, const cdf_sched_config *c, uint32_t bit) {
    cJSON *v = NULL;
    const char *name = NULL;
    for (size_t i = 0; i < N_FIELDS; i++)
        if (k_fields[i].bit == bit) name = k_fields[i].name;
    switch (bit) {
    case CDF_SCHED_F_NUM_TRAIN_TIMESTEPS: v = cJSON_CreateNumber(c->num_train_timesteps); break;
    case CDF_SCHED_F_BETA_START: v = cJSON_CreateNumber(c->beta_start); break;
    case CDF_SCHED_F_BETA_END: v = cJSON_CreateNumber(c->beta_end); break;
    case CDF_SCHED_F_BETA_SCHEDULE: v = cJSON_CreateString(c->beta_schedule); break;
    case CDF_SCHED_F_TRAINED_BETAS:
        if (c->trained_betas) {
            v = cJSON_CreateArray();
            for (size_t i = 0; v && i < c->n_trained_betas; i++) {
                cJSON *x = cJSON_CreateNumber(c->trained_betas[i]);
                if (!x || !cJSON_AddItemToArray(v, x)) {
                    cJSON_Delete(x);
                    cJSON_Delete(v);
                    v = NULL;
                }
            }
        } else {
            v = cJSON_CreateNull();
        }
        break;
    case CDF_SCHED_F_VARIANCE_TYPE: v = cJSON_CreateString(c->variance_type); break;
    case CDF_SCHED_F_CLIP_SAMPLE: v = cJSON_CreateBool(c->clip_sample); break;
    case CDF_SCHED_F_SET_ALPHA_TO_ONE: v = cJSON_CreateBool(c->set_alpha_to_one); break;
    case CDF_SCHED_F_STEPS_OFFSET: v = cJSON_CreateNumber(c->steps_offset); break;
    case CDF_SCHED_F_PREDICTION_TYPE: v = cJSON_CreateString(c->prediction_type); break;
    case CDF_SCHED_F_THRESHOLDING: v = cJSON_CreateBool(c->thresholding); break;
    case CDF_SCHED_F_DYNAMIC_THRESHOLDING_RATIO: v = cJSON_CreateNumber(c->dynamic_thresholding_ratio); break;
    case CDF_SCHED_F_CLIP_SAMPLE_RANGE: v = cJSON_CreateNumber(c->clip_sample_range); break;
    case CDF_SCHED_F_SAMPLE_MAX_VALUE: v = cJSON_CreateNumber(c->sample_max_value); break;
    case CDF_SCHED_F_TIMESTEP_SPACING: v = cJSON_CreateString(c->timestep_spacing); break;
    case CDF_SCHED_F_RESCALE_BETAS_ZERO_SNR: v = cJSON_CreateBool(c->rescale_betas_zero_snr); break;
    default: break;
    }
    if (!v || !name) return 0;
    if (!cJSON_AddItemToObject(o, name, v)) {
        cJSON_Delete(v);
        return 0;
    }
    return 1;
}

char *cdf_sched_config_to_json(const cdf_sched_config *cfg) {
    /* __init__ order of each class, then the other class's field when given. */
    static const uint32_t ddpm_order[] = {
        CDF_SCHED_F_NUM_TRAIN_TIMESTEPS, CDF_SCHED_F_BETA_START, CDF_SCHED_F_BETA_END,
        CDF_SCHED_F_BETA_SCHEDULE, CDF_SCHED_F_TRAINED_BETAS, CDF_SCHED_F_VARIANCE_TYPE,
        CDF_SCHED_F_CLIP_SAMPLE, CDF_SCHED_F_PREDICTION_TYPE, CDF_SCHED_F_THRESHOLDING,
        CDF_SCHED_F_DYNAMIC_THRESHOLDING_RATIO, CDF_SCHED_F_CLIP_SAMPLE_RANGE, CDF_SCHED_F_SAMPLE_MAX_VALUE,
        CDF_SCHED_F_TIMESTEP_SPACING, CDF_SCHED_F_STEPS_OFFSET, CDF_SCHED_F_RESCALE_BETAS_ZERO_SNR, 0};
    static const uint32_t ddim_order[] = {
        CDF_SCHED_F_NUM_TRAIN_TIMESTEPS, CDF_SCHED_F_BETA_START, CDF_SCHED_F_BETA_END,
        CDF_SCHED_F_BETA_SCHEDULE, CDF_SCHED_F_TRAINED_BETAS, CDF_SCHED_F_CLIP_SAMPLE,
        CDF_SCHED_F_SET_ALPHA_TO_ONE, CDF_SCHED_F_STEPS_OFFSET, CDF_SCHED_F_PREDICTION_TYPE,
        CDF_SCHED_F_THRESHOLDING, CDF_SCHED_F_DYNAMIC_THRESHOLDING_RATIO, CDF_SCHED_F_CLIP_SAMPLE_RANGE,
        CDF_SCHED_F_SAMPLE_MAX_VALUE, CDF_SCHED_F_TIMESTEP_SPACING, CDF_SCHED_F_RESCALE_BETAS_ZERO_SNR, 0};
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char *out = NULL;
    if (!cJSON_AddStringToObject(o, "_class_name", cdf_sched_kind_name(cfg->kind))) goto done;
    for (const uint32_t *b = cfg->kind == CDF_SCHED_DDIM ? ddim_order : ddpm_order; *b; b++)
        if (!add_field(o, cfg, *b)) goto done;
    uint32_t foreign = foreign_bit(cfg->kind);
    if ((cfg->given & foreign) && !add_field(o, cfg, foreign)) goto done;
    if (cfg->extra) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cfg->extra) {
            if (!it->string || cJSON_GetObjectItemCaseSensitive(o, it->string)) continue;
            cJSON *dup = cJSON_Duplicate(it, 1);
            if (!dup) goto done;
            if (!cJSON_AddItemToObject(o, it->string, dup)) {
                cJSON_Delete(dup);
                goto done;
            }
        }
    }
    char *printed = cJSON_PrintUnformatted(o);
    if (printed) {
        out = cdf_strdup(printed); /* the API promises cdf_malloc memory whatever cJSON's hooks are */
        cJSON_free(printed);
    }
done:
    cJSON_Delete(o);
    return out;
}
