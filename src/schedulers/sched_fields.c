/* The modelled scheduler config fields of the ten diffusers 0.32.2 classes:
 * table, __init__ orders, class defaults, JSON reading and writing. */
#include "schedulers/sched_fields.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define FLD(name, bit, type, member) {name, bit, type, offsetof(cdf_sched_config, member)}
#define FLD0(name, bit, type) {name, bit, type, 0}

const sched_field cdf_sched_fields[] = {
    FLD("num_train_timesteps", CDF_SCHED_F_NUM_TRAIN_TIMESTEPS, SF_INT, num_train_timesteps),
    FLD("beta_start", CDF_SCHED_F_BETA_START, SF_NUM, beta_start),
    FLD("beta_end", CDF_SCHED_F_BETA_END, SF_NUM, beta_end),
    FLD("beta_schedule", CDF_SCHED_F_BETA_SCHEDULE, SF_STR, beta_schedule),
    FLD0("trained_betas", CDF_SCHED_F_TRAINED_BETAS, SF_BETAS),
    FLD("clip_sample", CDF_SCHED_F_CLIP_SAMPLE, SF_BOOL, clip_sample),
    FLD("clip_sample_range", CDF_SCHED_F_CLIP_SAMPLE_RANGE, SF_NUM, clip_sample_range),
    FLD("set_alpha_to_one", CDF_SCHED_F_SET_ALPHA_TO_ONE, SF_BOOL, set_alpha_to_one),
    FLD("steps_offset", CDF_SCHED_F_STEPS_OFFSET, SF_INT, steps_offset),
    FLD("prediction_type", CDF_SCHED_F_PREDICTION_TYPE, SF_STR, prediction_type),
    FLD("thresholding", CDF_SCHED_F_THRESHOLDING, SF_BOOL, thresholding),
    FLD("dynamic_thresholding_ratio", CDF_SCHED_F_DYNAMIC_THRESHOLDING_RATIO, SF_NUM, dynamic_thresholding_ratio),
    FLD("sample_max_value", CDF_SCHED_F_SAMPLE_MAX_VALUE, SF_NUM, sample_max_value),
    FLD("timestep_spacing", CDF_SCHED_F_TIMESTEP_SPACING, SF_STR, timestep_spacing),
    FLD("rescale_betas_zero_snr", CDF_SCHED_F_RESCALE_BETAS_ZERO_SNR, SF_BOOL, rescale_betas_zero_snr),
    FLD("variance_type", CDF_SCHED_F_VARIANCE_TYPE, SF_STR_NULL, variance_type),
    FLD("skip_prk_steps", CDF_SCHED_F_SKIP_PRK_STEPS, SF_BOOL, skip_prk_steps),
    FLD("interpolation_type", CDF_SCHED_F_INTERPOLATION_TYPE, SF_STR, interpolation_type),
    FLD("use_karras_sigmas", CDF_SCHED_F_USE_KARRAS_SIGMAS, SF_BOOL, use_karras_sigmas),
    FLD("use_exponential_sigmas", CDF_SCHED_F_USE_EXPONENTIAL_SIGMAS, SF_BOOL, use_exponential_sigmas),
    FLD("use_beta_sigmas", CDF_SCHED_F_USE_BETA_SIGMAS, SF_BOOL, use_beta_sigmas),
    FLD("sigma_min", CDF_SCHED_F_SIGMA_MIN, SF_NUM_NULL, sigma_min),
    FLD("sigma_max", CDF_SCHED_F_SIGMA_MAX, SF_NUM_NULL, sigma_max),
    FLD("timestep_type", CDF_SCHED_F_TIMESTEP_TYPE, SF_STR, timestep_type),
    FLD("final_sigmas_type", CDF_SCHED_F_FINAL_SIGMAS_TYPE, SF_STR, final_sigmas_type),
    FLD("solver_order", CDF_SCHED_F_SOLVER_ORDER, SF_INT, solver_order),
    FLD("algorithm_type", CDF_SCHED_F_ALGORITHM_TYPE, SF_STR, algorithm_type),
    FLD("solver_type", CDF_SCHED_F_SOLVER_TYPE, SF_STR, solver_type),
    FLD("lower_order_final", CDF_SCHED_F_LOWER_ORDER_FINAL, SF_BOOL, lower_order_final),
    FLD("euler_at_final", CDF_SCHED_F_EULER_AT_FINAL, SF_BOOL, euler_at_final),
    FLD("use_lu_lambdas", CDF_SCHED_F_USE_LU_LAMBDAS, SF_BOOL, use_lu_lambdas),
    FLD("use_flow_sigmas", CDF_SCHED_F_USE_FLOW_SIGMAS, SF_BOOL, use_flow_sigmas),
    FLD("flow_shift", CDF_SCHED_F_FLOW_SHIFT, SF_NUM, flow_shift),
    FLD("lambda_min_clipped", CDF_SCHED_F_LAMBDA_MIN_CLIPPED, SF_NUM, lambda_min_clipped),
    FLD("predict_x0", CDF_SCHED_F_PREDICT_X0, SF_BOOL, predict_x0),
    FLD0("disable_corrector", CDF_SCHED_F_DISABLE_CORRECTOR, SF_INT_LIST),
    FLD0("solver_p", CDF_SCHED_F_SOLVER_P, SF_NONE),
};
const size_t cdf_sched_n_fields = sizeof cdf_sched_fields / sizeof cdf_sched_fields[0];

#define T_ CDF_SCHED_F_NUM_TRAIN_TIMESTEPS
#define BS_ CDF_SCHED_F_BETA_START
#define BE_ CDF_SCHED_F_BETA_END
#define SCH_ CDF_SCHED_F_BETA_SCHEDULE
#define TB_ CDF_SCHED_F_TRAINED_BETAS
#define PRED_ CDF_SCHED_F_PREDICTION_TYPE
#define SPACE_ CDF_SCHED_F_TIMESTEP_SPACING
#define OFF_ CDF_SCHED_F_STEPS_OFFSET
#define ZSNR_ CDF_SCHED_F_RESCALE_BETAS_ZERO_SNR
#define THR_ CDF_SCHED_F_THRESHOLDING, CDF_SCHED_F_DYNAMIC_THRESHOLDING_RATIO
#define SIG3_ CDF_SCHED_F_USE_KARRAS_SIGMAS, CDF_SCHED_F_USE_EXPONENTIAL_SIGMAS, CDF_SCHED_F_USE_BETA_SIGMAS

/* __init__ signatures of diffusers 0.32.2, in order. */
static const uint64_t k_ddpm[] = {T_, BS_, BE_, SCH_, TB_, CDF_SCHED_F_VARIANCE_TYPE, CDF_SCHED_F_CLIP_SAMPLE, PRED_,
                                  THR_, CDF_SCHED_F_CLIP_SAMPLE_RANGE, CDF_SCHED_F_SAMPLE_MAX_VALUE, SPACE_, OFF_,
                                  ZSNR_, 0};
static const uint64_t k_ddim[] = {T_, BS_, BE_, SCH_, TB_, CDF_SCHED_F_CLIP_SAMPLE, CDF_SCHED_F_SET_ALPHA_TO_ONE, OFF_,
                                  PRED_, THR_, CDF_SCHED_F_CLIP_SAMPLE_RANGE, CDF_SCHED_F_SAMPLE_MAX_VALUE, SPACE_,
                                  ZSNR_, 0};
static const uint64_t k_pndm[] = {T_, BS_, BE_, SCH_, TB_, CDF_SCHED_F_SKIP_PRK_STEPS, CDF_SCHED_F_SET_ALPHA_TO_ONE,
                                  PRED_, SPACE_, OFF_, 0};
static const uint64_t k_euler[] = {T_, BS_, BE_, SCH_, TB_, PRED_, CDF_SCHED_F_INTERPOLATION_TYPE, SIG3_,
                                   CDF_SCHED_F_SIGMA_MIN, CDF_SCHED_F_SIGMA_MAX, SPACE_, CDF_SCHED_F_TIMESTEP_TYPE,
                                   OFF_, ZSNR_, CDF_SCHED_F_FINAL_SIGMAS_TYPE, 0};
static const uint64_t k_euler_a[] = {T_, BS_, BE_, SCH_, TB_, PRED_, SPACE_, OFF_, ZSNR_, 0};
static const uint64_t k_lms[] = {T_, BS_, BE_, SCH_, TB_, SIG3_, PRED_, SPACE_, OFF_, 0};
static const uint64_t k_heun[] = {T_, BS_, BE_, SCH_, TB_, PRED_, SIG3_, CDF_SCHED_F_CLIP_SAMPLE,
                                  CDF_SCHED_F_CLIP_SAMPLE_RANGE, SPACE_, OFF_, 0};
static const uint64_t k_dpm[] = {T_, BS_, BE_, SCH_, TB_, CDF_SCHED_F_SOLVER_ORDER, PRED_, THR_,
                                 CDF_SCHED_F_SAMPLE_MAX_VALUE, CDF_SCHED_F_ALGORITHM_TYPE, CDF_SCHED_F_SOLVER_TYPE,
                                 CDF_SCHED_F_LOWER_ORDER_FINAL, CDF_SCHED_F_EULER_AT_FINAL, SIG3_,
                                 CDF_SCHED_F_USE_LU_LAMBDAS, CDF_SCHED_F_USE_FLOW_SIGMAS, CDF_SCHED_F_FLOW_SHIFT,
                                 CDF_SCHED_F_FINAL_SIGMAS_TYPE, CDF_SCHED_F_LAMBDA_MIN_CLIPPED,
                                 CDF_SCHED_F_VARIANCE_TYPE, SPACE_, OFF_, ZSNR_, 0};
static const uint64_t k_unipc[] = {T_, BS_, BE_, SCH_, TB_, CDF_SCHED_F_SOLVER_ORDER, PRED_, THR_,
                                   CDF_SCHED_F_SAMPLE_MAX_VALUE, CDF_SCHED_F_PREDICT_X0, CDF_SCHED_F_SOLVER_TYPE,
                                   CDF_SCHED_F_LOWER_ORDER_FINAL, CDF_SCHED_F_DISABLE_CORRECTOR, CDF_SCHED_F_SOLVER_P,
                                   SIG3_, CDF_SCHED_F_USE_FLOW_SIGMAS, CDF_SCHED_F_FLOW_SHIFT, SPACE_, OFF_,
                                   CDF_SCHED_F_FINAL_SIGMAS_TYPE, ZSNR_, 0};
static const uint64_t k_unclip[] = {T_, CDF_SCHED_F_VARIANCE_TYPE, CDF_SCHED_F_CLIP_SAMPLE,
                                    CDF_SCHED_F_CLIP_SAMPLE_RANGE, PRED_, SCH_, 0};

const uint64_t *cdf_sched_class_fields(cdf_sched_kind kind) {
    switch (kind) {
    case CDF_SCHED_DDPM: return k_ddpm;
    case CDF_SCHED_DDIM: return k_ddim;
    case CDF_SCHED_PNDM: return k_pndm;
    case CDF_SCHED_EULER: return k_euler;
    case CDF_SCHED_EULER_ANCESTRAL: return k_euler_a;
    case CDF_SCHED_LMS: return k_lms;
    case CDF_SCHED_HEUN: return k_heun;
    case CDF_SCHED_DPMSOLVER_MULTISTEP: return k_dpm;
    case CDF_SCHED_UNIPC_MULTISTEP: return k_unipc;
    case CDF_SCHED_UNCLIP: return k_unclip;
    }
    return k_ddpm;
}

int cdf_sched_owns(cdf_sched_kind kind, uint64_t bit) {
    for (const uint64_t *b = cdf_sched_class_fields(kind); *b; b++)
        if (*b == bit) return 1;
    return 0;
}

const sched_field *cdf_sched_field_by_name(const char *name) {
    for (size_t i = 0; i < cdf_sched_n_fields; i++)
        if (strcmp(cdf_sched_fields[i].name, name) == 0) return &cdf_sched_fields[i];
    return NULL;
}

const sched_field *cdf_sched_field_by_bit(uint64_t bit) {
    for (size_t i = 0; i < cdf_sched_n_fields; i++)
        if (cdf_sched_fields[i].bit == bit) return &cdf_sched_fields[i];
    return NULL;
}

void cdf_sched_config_defaults(cdf_sched_config *cfg, cdf_sched_kind kind) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->num_train_timesteps = 1000;
    cfg->beta_start = kind == CDF_SCHED_HEUN ? 0.00085 : 0.0001;
    cfg->beta_end = kind == CDF_SCHED_HEUN ? 0.012 : 0.02;
    strcpy(cfg->beta_schedule, kind == CDF_SCHED_UNCLIP ? "squaredcos_cap_v2" : "linear");
    cfg->clip_sample = kind != CDF_SCHED_HEUN;
    cfg->clip_sample_range = 1.0;
    cfg->set_alpha_to_one = kind == CDF_SCHED_DDIM;
    cfg->steps_offset = 0;
    strcpy(cfg->prediction_type, "epsilon");
    cfg->thresholding = 0;
    cfg->dynamic_thresholding_ratio = 0.995;
    cfg->sample_max_value = 1.0;
    strcpy(cfg->timestep_spacing,
           kind == CDF_SCHED_DDPM || kind == CDF_SCHED_DDIM || kind == CDF_SCHED_PNDM ? "leading" : "linspace");
    cfg->rescale_betas_zero_snr = 0;
    strcpy(cfg->variance_type, kind == CDF_SCHED_DPMSOLVER_MULTISTEP ? ""
                               : kind == CDF_SCHED_UNCLIP            ? "fixed_small_log"
                                                                     : "fixed_small");
    cfg->skip_prk_steps = 0;
    strcpy(cfg->interpolation_type, "linear");
    cfg->sigma_min = NAN;
    cfg->sigma_max = NAN;
    strcpy(cfg->timestep_type, "discrete");
    strcpy(cfg->final_sigmas_type, "zero");
    cfg->solver_order = 2;
    strcpy(cfg->algorithm_type, "dpmsolver++");
    strcpy(cfg->solver_type, kind == CDF_SCHED_UNIPC_MULTISTEP ? "bh2" : "midpoint");
    cfg->lower_order_final = 1;
    cfg->flow_shift = 1.0;
    cfg->lambda_min_clipped = -INFINITY;
    cfg->predict_x0 = 1;
}

void cdf_sched_value_text(const cJSON *v, char *buf, size_t cap) {
    char *p = cJSON_PrintUnformatted(v);
    if (!p) {
        snprintf(buf, cap, "<value>");
        return;
    }
    size_t n = strlen(p);
    if (n >= cap)
        snprintf(buf, cap, "%.*s...", (int)(cap - 4), p);
    else
        memcpy(buf, p, n + 1);
    cJSON_free(p);
}

static cdf_status bad_type(const char *path, const char *key, const cJSON *v, const char *want, cdf_error *err) {
    char vt[80];
    cdf_sched_value_text(v, vt, sizeof vt);
    return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be %s, got %s", path, key, want, vt);
}

/* Python json's non-finite literals, kept as strings where a file had to be rewritten for cJSON. */
static int nonfinite_string(const cJSON *v, double *out) {
    if (!cJSON_IsString(v)) return 0;
    if (strcmp(v->valuestring, "-Infinity") == 0) *out = -INFINITY;
    else if (strcmp(v->valuestring, "Infinity") == 0) *out = INFINITY;
    else return 0;
    return 1;
}

static int is_int_value(const cJSON *v) {
    return cJSON_IsNumber(v) && floor(v->valuedouble) == v->valuedouble && v->valuedouble >= -2147483647.0 &&
           v->valuedouble <= 2147483647.0;
}

cdf_status cdf_sched_field_read(const sched_field *f, const cJSON *v, const char *path, cdf_sched_config *c,
                                cdf_error *err) {
    char *base = (char *)c;
    switch (f->type) {
    case SF_INT:
        if (!is_int_value(v)) return bad_type(path, f->name, v, "an integer", err);
        *(int *)(base + f->off) = (int)v->valuedouble;
        break;
    case SF_NUM: {
        double d;
        if (cJSON_IsNumber(v))
            d = v->valuedouble;
        else if (!nonfinite_string(v, &d))
            return bad_type(path, f->name, v, "a number", err);
        *(double *)(base + f->off) = d;
        break;
    }
    case SF_NUM_NULL:
        if (cJSON_IsNull(v))
            *(double *)(base + f->off) = NAN;
        else if (cJSON_IsNumber(v))
            *(double *)(base + f->off) = v->valuedouble;
        else
            return bad_type(path, f->name, v, "a number or null", err);
        break;
    case SF_BOOL:
        if (cJSON_IsBool(v))
            *(int *)(base + f->off) = cJSON_IsTrue(v) ? 1 : 0;
        else if (cJSON_IsNull(v))
            *(int *)(base + f->off) = 0;
        else if (cJSON_IsNumber(v))
            *(int *)(base + f->off) = v->valuedouble != 0.0;
        else
            return bad_type(path, f->name, v, "true or false", err);
        break;
    case SF_STR:
    case SF_STR_NULL: {
        char *out = base + f->off;
        if (f->type == SF_STR_NULL && cJSON_IsNull(v)) {
            out[0] = 0;
            break;
        }
        if (!cJSON_IsString(v))
            return bad_type(path, f->name, v, f->type == SF_STR ? "a string" : "a string or null", err);
        if (strlen(v->valuestring) >= 32)
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s': unknown value '%.60s'", path, f->name,
                                 v->valuestring);
        strcpy(out, v->valuestring);
        break;
    }
    case SF_BETAS: {
        if (cJSON_IsNull(v)) {
            cdf_free(c->trained_betas);
            c->trained_betas = NULL;
            c->n_trained_betas = 0;
            break;
        }
        if (!cJSON_IsArray(v)) return bad_type(path, f->name, v, "null or an array of numbers", err);
        int n = cJSON_GetArraySize(v);
        double *b = cdf_mallocn(n > 0 ? (size_t)n : 1, sizeof *b);
        if (!b) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory reading '%s'", path, f->name);
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            if (!cJSON_IsNumber(it)) {
                cdf_free(b);
                return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s'[%d] must be a number", path, f->name, i);
            }
            b[i++] = it->valuedouble;
        }
        cdf_free(c->trained_betas);
        c->trained_betas = b;
        c->n_trained_betas = (size_t)n;
        break;
    }
    case SF_INT_LIST: {
        if (!cJSON_IsArray(v)) return bad_type(path, f->name, v, "an array of integers", err);
        int n = cJSON_GetArraySize(v);
        int *l = NULL;
        if (n > 0 && !(l = cdf_mallocn((size_t)n, sizeof *l)))
            return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory reading '%s'", path, f->name);
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            if (!is_int_value(it)) {
                cdf_free(l);
                return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s'[%d] must be an integer", path, f->name, i);
            }
            l[i++] = (int)it->valuedouble;
        }
        cdf_free(c->disable_corrector);
        c->disable_corrector = l;
        c->n_disable_corrector = (size_t)n;
        break;
    }
    case SF_NONE:
        if (!cJSON_IsNull(v))
            return bad_type(path, f->name, v, "null (a scheduler object for solver_p is not supported)", err);
        break;
    }
    c->given |= f->bit;
    return CDF_OK;
}

int cdf_sched_field_copy(const sched_field *f, cdf_sched_config *dst, const cdf_sched_config *src) {
    switch (f->type) {
    case SF_INT:
    case SF_BOOL: *(int *)((char *)dst + f->off) = *(const int *)((const char *)src + f->off); return 1;
    case SF_NUM:
    case SF_NUM_NULL: *(double *)((char *)dst + f->off) = *(const double *)((const char *)src + f->off); return 1;
    case SF_STR:
    case SF_STR_NULL: memcpy((char *)dst + f->off, (const char *)src + f->off, 32); return 1;
    case SF_BETAS: {
        double *b = NULL;
        if (src->trained_betas) {
            size_t n = src->n_trained_betas;
            if (!(b = cdf_mallocn(n ? n : 1, sizeof *b))) return 0;
            if (n) memcpy(b, src->trained_betas, n * sizeof *b);
        }
        cdf_free(dst->trained_betas);
        dst->trained_betas = b;
        dst->n_trained_betas = src->trained_betas ? src->n_trained_betas : 0;
        return 1;
    }
    case SF_INT_LIST: {
        int *l = NULL;
        if (src->n_disable_corrector) {
            if (!(l = cdf_mallocn(src->n_disable_corrector, sizeof *l))) return 0;
            memcpy(l, src->disable_corrector, src->n_disable_corrector * sizeof *l);
        }
        cdf_free(dst->disable_corrector);
        dst->disable_corrector = l;
        dst->n_disable_corrector = src->n_disable_corrector;
        return 1;
    }
    case SF_NONE: return 1;
    }
    return 1;
}

static cJSON *number_json(double d) {
    if (isinf(d)) return cJSON_CreateRaw(d < 0 ? "-Infinity" : "Infinity");
    if (isnan(d)) return cJSON_CreateRaw("NaN");
    return cJSON_CreateNumber(d);
}

cJSON *cdf_sched_field_json(const sched_field *f, const cdf_sched_config *c) {
    const char *base = (const char *)c;
    switch (f->type) {
    case SF_INT: return cJSON_CreateNumber(*(const int *)(base + f->off));
    case SF_BOOL: return cJSON_CreateBool(*(const int *)(base + f->off));
    case SF_NUM: return number_json(*(const double *)(base + f->off));
    case SF_NUM_NULL: {
        double d = *(const double *)(base + f->off);
        return isnan(d) ? cJSON_CreateNull() : number_json(d);
    }
    case SF_STR: return cJSON_CreateString(base + f->off);
    case SF_STR_NULL: return base[f->off] ? cJSON_CreateString(base + f->off) : cJSON_CreateNull();
    case SF_BETAS: {
        if (!c->trained_betas) return cJSON_CreateNull();
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; a && i < c->n_trained_betas; i++) {
            cJSON *x = cJSON_CreateNumber(c->trained_betas[i]);
            if (!x || !cJSON_AddItemToArray(a, x)) {
                cJSON_Delete(x);
                cJSON_Delete(a);
                a = NULL;
            }
        }
        return a;
    }
    case SF_INT_LIST: {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; a && i < c->n_disable_corrector; i++) {
            cJSON *x = cJSON_CreateNumber(c->disable_corrector[i]);
            if (!x || !cJSON_AddItemToArray(a, x)) {
                cJSON_Delete(x);
                cJSON_Delete(a);
                a = NULL;
            }
        }
        return a;
    }
    case SF_NONE: return cJSON_CreateNull();
    }
    return NULL;
}
