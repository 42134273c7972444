/* scheduler_config.json with diffusers 0.32 ConfigMixin semantics for the ten
 * scheduler classes: class defaults for missing keys, `_use_default_values`,
 * keys of other classes kept as hidden keys, unknown keys kept with a notice,
 * from_config conversion and overrides, __init__ normalisations, validation,
 * canonical JSON. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "io/json.h"
#include "schedulers/sched_fields.h"

/* Init keys of every scheduler compatible with these classes
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

/* UnCLIPScheduler has no _compatibles: every key but its own __init__ fields
 * gets the "not expected" warning. */
static const char *const k_unclip_keys[] = {"num_train_timesteps", "variance_type",   "clip_sample",
                                            "clip_sample_range",   "prediction_type", "beta_schedule",
                                            "quantization_config", NULL};

static const struct {
    const char *cls, *short1, *short2;
} k_names[CDF_SCHED_N_KINDS] = {
    {"DDPMScheduler", "ddpm", NULL},
    {"DDIMScheduler", "ddim", NULL},
    {"PNDMScheduler", "pndm", NULL},
    {"EulerDiscreteScheduler", "euler", NULL},
    {"EulerAncestralDiscreteScheduler", "euler-a", NULL},
    {"LMSDiscreteScheduler", "lms", NULL},
    {"HeunDiscreteScheduler", "heun", NULL},
    {"DPMSolverMultistepScheduler", "dpm++2m", "dpmpp-2m"},
    {"UniPCMultistepScheduler", "unipc", NULL},
    {"UnCLIPScheduler", NULL, NULL}, /* only the UnCLIP pipelines use it: no short name */
};

const char *cdf_sched_kind_name(cdf_sched_kind kind) {
    if ((int)kind < 0 || (int)kind >= CDF_SCHED_N_KINDS) return "?";
    return k_names[kind].cls;
}

static int class_kind(const char *name, cdf_sched_kind *out) {
    for (int k = 0; k < CDF_SCHED_N_KINDS; k++)
        if (strcmp(name, k_names[k].cls) == 0) {
            *out = (cdf_sched_kind)k;
            return 1;
        }
    return 0;
}

cdf_status cdf_sched_kind_from_name(const char *name, cdf_sched_kind *out, cdf_error *err) {
    if (name && class_kind(name, out)) return CDF_OK;
    for (int k = 0; name && k < CDF_SCHED_N_KINDS; k++)
        if ((k_names[k].short1 && strcasecmp(name, k_names[k].short1) == 0) ||
            (k_names[k].short2 && strcasecmp(name, k_names[k].short2) == 0)) {
            *out = (cdf_sched_kind)k;
            return CDF_OK;
        }
    return cdf_error_set(err, CDF_ERR_ARG,
                         "scheduler '%.80s' is unknown: use ddpm, ddim, pndm, euler, euler-a, lms, heun, dpm++2m "
                         "(dpmpp-2m) or unipc, or a class name (DDPMScheduler, DDIMScheduler, PNDMScheduler, "
                         "EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, LMSDiscreteScheduler, "
                         "HeunDiscreteScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler, "
                         "UnCLIPScheduler)",
                         name ? name : "(null)");
}

void cdf_sched_config_free(cdf_sched_config *cfg) {
    if (!cfg) return;
    cdf_free(cfg->trained_betas);
    cdf_free(cfg->disable_corrector);
    if (cfg->extra) cJSON_Delete(cfg->extra);
    memset(cfg, 0, sizeof *cfg);
}

cdf_status cdf_sched_config_copy(cdf_sched_config *dst, const cdf_sched_config *src, cdf_error *err) {
    *dst = *src;
    dst->trained_betas = NULL;
    dst->disable_corrector = NULL;
    dst->extra = NULL;
    if (!cdf_sched_field_copy(cdf_sched_field_by_bit(CDF_SCHED_F_TRAINED_BETAS), dst, src)) goto nomem;
    if (!cdf_sched_field_copy(cdf_sched_field_by_bit(CDF_SCHED_F_DISABLE_CORRECTOR), dst, src)) goto nomem;
    if (src->extra && !(dst->extra = cJSON_Duplicate(src->extra, 1))) goto nomem;
    return CDF_OK;
nomem:
    cdf_sched_config_free(dst);
    return cdf_error_set(err, CDF_ERR_NOMEM, "scheduler config: out of memory copying");
}

static int one_of(const char *v, const char *const *list) {
    for (; *list; list++)
        if (strcmp(v, *list) == 0) return 1;
    return 0;
}

static cdf_status bad_value(const char *path, const char *field, const char *value, const char *cls,
                            const char *choices, cdf_error *err) {
    return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s': '%s' is not supported by %s (%s)", path, field, value,
                         cls, choices);
}

static int is_dpm_plus(const char *alg) { return strcmp(alg, "dpmsolver++") == 0 || strcmp(alg, "sde-dpmsolver++") == 0; }

/* The prediction types a class's step() can accept at all (cross-field limits in cross_checks). */
static const char *pred_choices(cdf_sched_kind k) {
    switch (k) {
    case CDF_SCHED_PNDM:
    case CDF_SCHED_EULER_ANCESTRAL: return "epsilon v_prediction";
    case CDF_SCHED_EULER: return "epsilon v_prediction sample original_sample";
    case CDF_SCHED_DPMSOLVER_MULTISTEP:
    case CDF_SCHED_UNIPC_MULTISTEP: return "epsilon sample v_prediction flow_prediction";
    case CDF_SCHED_UNCLIP: return "epsilon sample";
    default: return "epsilon sample v_prediction";
    }
}

static int word_in(const char *v, const char *words) {
    size_t n = strlen(v);
    for (const char *p = words; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static cdf_status bad_words(const char *path, const char *field, const char *value, const char *cls,
                            const char *words, cdf_error *err) {
    char choices[96];
    snprintf(choices, sizeof choices, "%s", words);
    for (char *p = choices; *p; p++)
        if (*p == ' ') *p = ',';
    return bad_value(path, field, value, cls, choices, err);
}

/* Checks of one field's value for the class, independent of the other fields
 * (what an override can be refused for on its own). */
static cdf_status check_field(const cdf_sched_config *c, uint64_t bit, const char *path, cdf_error *err) {
    const char *cls = cdf_sched_kind_name(c->kind);
    const cdf_sched_kind k = c->kind;
    static const char *const spacings[] = {"leading", "trailing", "linspace", NULL};
    static const char *const finals[] = {"zero", "sigma_min", NULL};
    if (bit == CDF_SCHED_F_NUM_TRAIN_TIMESTEPS) {
        if (c->num_train_timesteps < 1 || c->num_train_timesteps > CDF_SCHED_MAX_TRAIN_TIMESTEPS)
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'num_train_timesteps': value %d is not in [1, %d]",
                                 path, c->num_train_timesteps, CDF_SCHED_MAX_TRAIN_TIMESTEPS);
    } else if (bit == CDF_SCHED_F_BETA_SCHEDULE && k == CDF_SCHED_UNCLIP) {
        if (strcmp(c->beta_schedule, "squaredcos_cap_v2") != 0) /* ValueError in __init__ */
            return bad_value(path, "beta_schedule", c->beta_schedule, cls, "only squaredcos_cap_v2", err);
    } else if (bit == CDF_SCHED_F_BETA_SCHEDULE) {
        static const char *const common[] = {"linear", "scaled_linear", "squaredcos_cap_v2", NULL};
        int ok = c->trained_betas || one_of(c->beta_schedule, common) ||
                 (k == CDF_SCHED_DDPM && strcmp(c->beta_schedule, "sigmoid") == 0) ||
                 (k == CDF_SCHED_HEUN && strcmp(c->beta_schedule, "exp") == 0);
        if (!ok)
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'beta_schedule': '%s' is not implemented for %s", path,
                                 c->beta_schedule, cls);
    } else if (bit == CDF_SCHED_F_PREDICTION_TYPE) {
        if (!word_in(c->prediction_type, pred_choices(k)))
            return bad_words(path, "prediction_type", c->prediction_type, cls, pred_choices(k), err);
    } else if (bit == CDF_SCHED_F_TIMESTEP_SPACING) {
        if (!one_of(c->timestep_spacing, spacings))
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s: field 'timestep_spacing': '%s' is not supported (linspace, leading or trailing)",
                                 path, c->timestep_spacing);
    } else if (bit == CDF_SCHED_F_VARIANCE_TYPE && k == CDF_SCHED_DDPM) {
        static const char *const variances[] = {"fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log",
                                                "learned", "learned_range", "", NULL};
        if (!one_of(c->variance_type, variances))
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s: field 'variance_type': '%s' is not one of fixed_small, fixed_small_log, "
                                 "fixed_large, fixed_large_log, learned, learned_range",
                                 path, c->variance_type);
    } else if (bit == CDF_SCHED_F_VARIANCE_TYPE && k == CDF_SCHED_UNCLIP) {
        /* diffusers raises in step() at the first t > 0 for anything else */
        static const char *const variances[] = {"fixed_small_log", "learned_range", NULL};
        if (!one_of(c->variance_type, variances))
            return bad_value(path, "variance_type", c->variance_type[0] ? c->variance_type : "None", cls,
                             "fixed_small_log, learned_range", err);
    } else if (bit == CDF_SCHED_F_INTERPOLATION_TYPE) {
        static const char *const interps[] = {"linear", "log_linear", NULL};
        if (!one_of(c->interpolation_type, interps))
            return bad_value(path, "interpolation_type", c->interpolation_type, cls, "linear, log_linear", err);
    } else if (bit == CDF_SCHED_F_FINAL_SIGMAS_TYPE) {
        if (!one_of(c->final_sigmas_type, finals))
            return bad_value(path, "final_sigmas_type", c->final_sigmas_type, cls, "zero, sigma_min", err);
    } else if (bit == CDF_SCHED_F_USE_BETA_SIGMAS) {
        if (c->use_beta_sigmas)
            return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                                 "%s: field 'use_beta_sigmas': true is not supported (scipy.stats.beta.ppf sigmas)", path);
    } else if (bit == CDF_SCHED_F_SOLVER_ORDER) {
        if (c->solver_order < 1 || c->solver_order > CDF_SCHED_MAX_SOLVER_ORDER)
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'solver_order': %d is not in [1, %d]", path,
                                 c->solver_order, CDF_SCHED_MAX_SOLVER_ORDER);
    } else if (bit == CDF_SCHED_F_ALGORITHM_TYPE) {
        static const char *const algs[] = {"dpmsolver++", "dpmsolver", "sde-dpmsolver++", "sde-dpmsolver", "deis", NULL};
        if (!one_of(c->algorithm_type, algs))
            return bad_value(path, "algorithm_type", c->algorithm_type, cls,
                             "dpmsolver++, dpmsolver, sde-dpmsolver++, sde-dpmsolver", err);
    } else if (bit == CDF_SCHED_F_SOLVER_TYPE) {
        /* each class maps the other's names onto its default (register_to_config in __init__) */
        static const char *const solvers[] = {"midpoint", "heun", "logrho", "bh1", "bh2", NULL};
        if (!one_of(c->solver_type, solvers))
            return bad_value(path, "solver_type", c->solver_type, cls,
                             k == CDF_SCHED_UNIPC_MULTISTEP ? "bh1, bh2" : "midpoint, heun", err);
    }
    return CDF_OK;
}

/* Checks that involve several fields (diffusers' __init__ / set_timesteps / step errors). */
static cdf_status cross_checks(const cdf_sched_config *c, const char *path, cdf_error *err) {
    const char *cls = cdf_sched_kind_name(c->kind);
    const cdf_sched_kind k = c->kind;
    if (cdf_sched_owns(k, CDF_SCHED_F_TRAINED_BETAS) && c->trained_betas &&
        c->n_trained_betas != (size_t)c->num_train_timesteps)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: field 'trained_betas': has %zu values but num_train_timesteps is %d", path,
                             c->n_trained_betas, c->num_train_timesteps);
    if (cdf_sched_owns(k, CDF_SCHED_F_THRESHOLDING) && c->thresholding &&
        !(c->dynamic_thresholding_ratio >= 0.0 && c->dynamic_thresholding_ratio <= 1.0))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'dynamic_thresholding_ratio': %g must be in [0, 1]", path,
                             c->dynamic_thresholding_ratio);
    if (cdf_sched_owns(k, CDF_SCHED_F_USE_KARRAS_SIGMAS) &&
        c->use_karras_sigmas + c->use_exponential_sigmas + c->use_beta_sigmas > 1)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: fields 'use_karras_sigmas', 'use_exponential_sigmas', 'use_beta_sigmas': only one "
                             "of them can be true for %s",
                             path, cls);
    if (k == CDF_SCHED_DPMSOLVER_MULTISTEP) {
        if (!is_dpm_plus(c->algorithm_type) && strcmp(c->final_sigmas_type, "zero") == 0)
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s: field 'final_sigmas_type': 'zero' is not supported for algorithm_type '%s' "
                                 "(use 'sigma_min')",
                                 path, c->algorithm_type);
        if (strcmp(c->algorithm_type, "sde-dpmsolver") == 0 && c->solver_order >= 3)
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s: field 'solver_order': %d is not supported with algorithm_type 'sde-dpmsolver' "
                                 "(diffusers has no third-order update for it)",
                                 path, c->solver_order);
        if (!is_dpm_plus(c->algorithm_type) && strcmp(c->algorithm_type, "deis") != 0 &&
            strcmp(c->prediction_type, "flow_prediction") == 0)
            return bad_value(path, "prediction_type", c->prediction_type, cls,
                             "epsilon, sample, v_prediction with algorithm_type dpmsolver / sde-dpmsolver", err);
    }
    if (k == CDF_SCHED_UNIPC_MULTISTEP && !c->predict_x0 && strcmp(c->prediction_type, "flow_prediction") == 0)
        return bad_value(path, "prediction_type", c->prediction_type, cls,
                         "epsilon, sample, v_prediction with predict_x0 false", err);
    return CDF_OK;
}

cdf_status cdf_sched_config_validate(const cdf_sched_config *c, const char *path, cdf_error *err) {
    if ((int)c->kind < 0 || (int)c->kind >= CDF_SCHED_N_KINDS)
        return cdf_error_set(err, CDF_ERR_ARG, "%s: unknown scheduler kind %d", path, (int)c->kind);
    for (const uint64_t *b = cdf_sched_class_fields(c->kind); *b; b++) {
        cdf_status s = check_field(c, *b, path, err);
        if (s) return s;
    }
    return cross_checks(c, path, err);
}

/* register_to_config calls of the __init__ methods that rewrite a value
 * (applied whenever the config is used: conversion, scheduler, JSON). */
void cdf_sched_config_normalize(cdf_sched_config *c) {
    if (c->kind == CDF_SCHED_DPMSOLVER_MULTISTEP) {
        if (strcmp(c->algorithm_type, "deis") == 0) strcpy(c->algorithm_type, "dpmsolver++");
        if (strcmp(c->solver_type, "logrho") == 0 || strcmp(c->solver_type, "bh1") == 0 ||
            strcmp(c->solver_type, "bh2") == 0)
            strcpy(c->solver_type, "midpoint");
    } else if (c->kind == CDF_SCHED_UNIPC_MULTISTEP) {
        if (strcmp(c->solver_type, "midpoint") == 0 || strcmp(c->solver_type, "heun") == 0 ||
            strcmp(c->solver_type, "logrho") == 0)
            strcpy(c->solver_type, "bh2");
    }
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

static cdf_status add_extra(cdf_sched_config *c, const cJSON *it, const char *path, cdf_error *err) {
    if (!c->extra && !(c->extra = cJSON_CreateObject())) goto nomem;
    cJSON *dup = cJSON_Duplicate(it, 1);
    if (!dup) goto nomem;
    cJSON_DeleteItemFromObjectCaseSensitive(c->extra, it->string);
    if (!cJSON_AddItemToObject(c->extra, it->string, dup)) {
        cJSON_Delete(dup);
        goto nomem;
    }
    return CDF_OK;
nomem:
    return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", path);
}

/* Modelled keys into fields (strictly for the class's own fields; another
 * class's key of an unexpected type is kept verbatim), the rest into extra. */
static cdf_status read_keys(const cJSON *o, const char *path, cdf_sched_config *c, cdf_error *err) {
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        if (!it->string || it->string[0] == '_') continue;
        const sched_field *f = cdf_sched_field_by_name(it->string);
        if (f) {
            cdf_status s = cdf_sched_field_read(f, it, path, c, err);
            if (s == CDF_OK) continue;
            if (s != CDF_ERR_CONFIG || cdf_sched_owns(c->kind, f->bit)) return s;
        }
        cdf_status s = add_extra(c, it, path, err);
        if (s) return s;
    }
    return CDF_OK;
}

cdf_status cdf_sched_config_parse(const cJSON *root, const char *path, cdf_sched_config *cfg, cdf_error *err) {
    memset(cfg, 0, sizeof *cfg);
    if (!cJSON_IsObject(root)) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: not a JSON object", path);
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(root, "_class_name");
    if (!cls) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '_class_name' is missing", path);
    if (!cJSON_IsString(cls)) {
        char vt[80];
        cdf_sched_value_text(cls, vt, sizeof vt);
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '_class_name' must be a string, got %s", path, vt);
    }
    cdf_sched_kind kind;
    if (!class_kind(cls->valuestring, &kind))
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: field '_class_name': scheduler class '%.80s' is not supported (DDPMScheduler, "
                             "DDIMScheduler, PNDMScheduler, EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, "
                             "LMSDiscreteScheduler, HeunDiscreteScheduler, DPMSolverMultistepScheduler, "
                             "UniPCMultistepScheduler, UnCLIPScheduler)",
                             path, cls->valuestring);
    cdf_sched_config_defaults(cfg, kind);
    cdf_status st;
    cJSON *o = drop_used_defaults(root, path, &st, err);
    if (!o) return st;
    st = read_keys(o, path, cfg, err);
    if (st == CDF_OK) {
        cdf_json_notice_unknown(o, path, cdf_sched_kind_name(kind),
                                kind == CDF_SCHED_UNCLIP ? k_unclip_keys : k_compatible_keys, err);
        st = cdf_sched_config_validate(cfg, path, err);
    }
    cJSON_Delete(o);
    if (st == CDF_OK) cdf_sched_config_normalize(cfg);
    if (st != CDF_OK) cdf_sched_config_free(cfg);
    return st;
}

/* The class's own fields that were not given: a value kept verbatim in extra
 * (read strictly now), else the class default. */
static cdf_status adopt_fields(cdf_sched_config *c, const char *where, cdf_error *err) {
    cdf_sched_config d;
    cdf_sched_config_defaults(&d, c->kind);
    for (const uint64_t *b = cdf_sched_class_fields(c->kind); *b; b++) {
        if (c->given & *b) continue;
        const sched_field *f = cdf_sched_field_by_bit(*b);
        cJSON *kept = c->extra ? cJSON_GetObjectItemCaseSensitive(c->extra, f->name) : NULL;
        if (kept) {
            cdf_status s = cdf_sched_field_read(f, kept, where, c, err);
            if (s) return s;
            cJSON_DeleteItemFromObjectCaseSensitive(c->extra, f->name);
        } else if (!cdf_sched_field_copy(f, c, &d)) {
            return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", where);
        }
    }
    return CDF_OK;
}

cdf_status cdf_sched_config_convert(cdf_sched_config *cfg, cdf_sched_kind to, cdf_error *err) {
    if ((int)to < 0 || (int)to >= CDF_SCHED_N_KINDS)
        return cdf_error_set(err, CDF_ERR_ARG, "scheduler config: unknown scheduler kind %d", (int)to);
    char where[64];
    /* the source object must have existed: its config is valid and normalised */
    snprintf(where, sizeof where, "%s.config", cdf_sched_kind_name(cfg->kind));
    cdf_status s = cdf_sched_config_validate(cfg, where, err);
    if (s) return s;
    snprintf(where, sizeof where, "%s.from_config", cdf_sched_kind_name(to));
    cdf_sched_config c;
    s = cdf_sched_config_copy(&c, cfg, err);
    if (s) return s;
    cdf_sched_config_normalize(&c);
    c.kind = to;
    s = adopt_fields(&c, where, err);
    if (!s) s = cdf_sched_config_validate(&c, where, err);
    if (s) {
        cdf_sched_config_free(&c);
        return s;
    }
    cdf_sched_config_normalize(&c);
    cdf_sched_config_free(cfg);
    *cfg = c;
    return CDF_OK;
}

/* Non-allocating JSON syntax check of one value (to tell a syntax error from
 * cJSON running out of memory): returns the end of the value or NULL. */
static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static const char *json_value_end(const char *p, int depth) {
    p = skip_ws(p);
    if (depth > 64) return NULL;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++)
            if (*p == '\\' && !*++p) return NULL;
        return *p == '"' ? p + 1 : NULL;
    }
    if (*p == '[' || *p == '{') {
        const char close = *p == '[' ? ']' : '}';
        const int object = *p == '{';
        p = skip_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (object) {
                if (*p != '"' || !(p = json_value_end(p, depth + 1))) return NULL;
                p = skip_ws(p);
                if (*p++ != ':') return NULL;
            }
            if (!(p = json_value_end(p, depth + 1))) return NULL;
            p = skip_ws(p);
            if (*p == close) return p + 1;
            if (*p++ != ',') return NULL;
        }
    }
    static const char *const words[] = {"true", "false", "null", "-Infinity", "Infinity", "NaN", NULL};
    for (const char *const *w = words; *w; w++)
        if (strncmp(p, *w, strlen(*w)) == 0) return p + strlen(*w);
    const char *q = p;
    if (*q == '-') q++;
    if (!(*q >= '0' && *q <= '9')) return NULL;
    while ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' || *q == '-') q++;
    return q;
}

static int json_syntax_ok(const char *text) {
    const char *e = json_value_end(text, 0);
    return e && *skip_ws(e) == 0;
}

/* JSON text to a value; Python's -Infinity / Infinity / NaN become numbers. */
static cJSON *parse_value(const char *text) {
    while (*text == ' ' || *text == '\t') text++;
    if (strcmp(text, "-Infinity") == 0) return cJSON_CreateNumber(-INFINITY);
    if (strcmp(text, "Infinity") == 0) return cJSON_CreateNumber(INFINITY);
    if (strcmp(text, "NaN") == 0) return cJSON_CreateNumber(NAN);
    return cJSON_Parse(text);
}

cdf_status cdf_sched_config_set(cdf_sched_config *cfg, const char *field, const char *json_value, cdf_error *err) {
    const char *cls = cdf_sched_kind_name(cfg->kind);
    const sched_field *f = field ? cdf_sched_field_by_name(field) : NULL;
    if (!f || !cdf_sched_owns(cfg->kind, f->bit))
        return cdf_error_set(err, CDF_ERR_ARG, "%s.from_config: field '%s' is not a parameter of %s", cls,
                             field ? field : "(null)", cls);
    if (!json_value) return cdf_error_set(err, CDF_ERR_ARG, "%s.from_config: field '%s': no value", cls, field);
    char where[64];
    snprintf(where, sizeof where, "%s.from_config", cls);
    cJSON *v = parse_value(json_value);
    if (!v && json_syntax_ok(json_value))
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s: field '%s': out of memory", where, field);
    if (!v)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s': value '%.60s' is not valid JSON", where, field,
                             json_value);
    cdf_sched_config c;
    cdf_status s = cdf_sched_config_copy(&c, cfg, err);
    if (!s) s = cdf_sched_field_read(f, v, where, &c, err);
    cJSON_Delete(v);
    if (!s) {
        if (c.extra) cJSON_DeleteItemFromObjectCaseSensitive(c.extra, f->name);
        /* only this field's own domain: several overrides apply together, their
         * combination is checked when the config is used (scheduler, conversion) */
        s = check_field(&c, f->bit, where, err);
    }
    if (s) {
        cdf_sched_config_free(&c);
        return s;
    }
    cdf_sched_config_free(cfg);
    *cfg = c;
    return CDF_OK;
}

static int add_field(cJSON *o, const cdf_sched_config *c, const sched_field *f) {
    cJSON *v = cdf_sched_field_json(f, c);
    if (!v) return 0;
    if (!cJSON_AddItemToObject(o, f->name, v)) {
        cJSON_Delete(v);
        return 0;
    }
    return 1;
}

char *cdf_sched_config_to_json(const cdf_sched_config *config) { return cdf_sched_config_to_json_ex(config, 0); }

char *cdf_sched_config_to_json_ex(const cdf_sched_config *config, int defaults_list) {
    cdf_sched_config view = *config; /* shallow: only the normalised strings differ */
    cdf_sched_config_normalize(&view);
    const cdf_sched_config *cfg = &view;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char *out = NULL;
    if (!cJSON_AddStringToObject(o, "_class_name", cdf_sched_kind_name(cfg->kind))) goto done;
    for (const uint64_t *b = cdf_sched_class_fields(cfg->kind); *b; b++)
        if (!add_field(o, cfg, cdf_sched_field_by_bit(*b))) goto done;
    /* the class's fields that hold defaults, as diffusers lists them: a
     * conversion of this config gives them the new class's defaults */
    cJSON *defaulted = NULL;
    for (const uint64_t *b = cdf_sched_class_fields(cfg->kind); defaults_list && *b; b++) {
        if (cfg->given & *b) continue;
        if (!defaulted && !(defaulted = cJSON_AddArrayToObject(o, "_use_default_values"))) goto done;
        cJSON *name = cJSON_CreateString(cdf_sched_field_by_bit(*b)->name);
        if (!name) goto done;
        if (!cJSON_AddItemToArray(defaulted, name)) {
            cJSON_Delete(name);
            goto done;
        }
    }
    /* hidden keys: other classes' fields the source config gave */
    for (size_t i = 0; i < cdf_sched_n_fields; i++) {
        const sched_field *f = &cdf_sched_fields[i];
        if ((cfg->given & f->bit) && !cdf_sched_owns(cfg->kind, f->bit) && !add_field(o, cfg, f)) goto done;
    }
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
