/* JSON files through cJSON (Debian libcjson), with typed getters whose errors
 * name the file and the field.  cJSON allocates through the cdf allocator. */
#ifndef CDF_IO_JSON_H
#define CDF_IO_JSON_H

#include <cjson/cJSON.h>

#include "cdiffusers/core.h"

/* Largest JSON file read (configs, indexes, tokenizer files). */
#define CDF_JSON_MAX_BYTES ((size_t)64 << 20)

/* Parses the file at path into *out (caller frees with cJSON_Delete).
 * Malformed text is CDF_ERR_FORMAT; running out of memory is CDF_ERR_NOMEM. */
cdf_status cdf_json_load(const char *path, cJSON **out, cdf_error *err);
/* Parses a buffer of len bytes (need not be NUL-terminated); `what` names it in errors. */
cdf_status cdf_json_parse(const char *buf, size_t len, const char *what, cJSON **out, cdf_error *err);

/* Typed field access on object `obj` read from file `file`.  A missing key
 * (or JSON null where `null_ok`) leaves *out at the default the caller put
 * there and returns CDF_OK; a present key of the wrong type or range is
 * CDF_ERR_CONFIG naming file, field and value. */
cdf_status cdf_json_get_int(const cJSON *obj, const char *file, const char *key, int64_t *out, cdf_error *err);
cdf_status cdf_json_get_double(const cJSON *obj, const char *file, const char *key, double *out, cdf_error *err);
cdf_status cdf_json_get_bool(const cJSON *obj, const char *file, const char *key, int *out, cdf_error *err);
/* *out points into obj (valid while obj lives); NULL when absent or null. */
cdf_status cdf_json_get_string(const cJSON *obj, const char *file, const char *key, const char **out, cdf_error *err);
/* Integer array: *out malloc'd (cdf_free), *n its length; absent -> *out NULL, *n 0. */
cdf_status cdf_json_get_int_array(const cJSON *obj, const char *file, const char *key, int64_t **out, size_t *n,
                                  cdf_error *err);
/* Array of numbers as doubles: as above. */
cdf_status cdf_json_get_double_array(const cJSON *obj, const char *file, const char *key, double **out, size_t *n,
                                     cdf_error *err);
/* 1 when key is present and not null. */
int cdf_json_has(const cJSON *obj, const char *key);
/* Fields the model class cannot be built from when they are JSON null
 * (diffusers/transformers pass None on to torch, which raises): the first
 * key of `keys` (NULL-terminated) present as null is CDF_ERR_CONFIG
 * "file: field 'key' must not be null".  Absent keys are fine (defaults). */
cdf_status cdf_json_not_null(const cJSON *obj, const char *file, const char *const *keys, cdf_error *err);
/* A bool field with Python truthiness, as diffusers tests `if x`: null is
 * false; absent keeps *out; anything but true/false/null is CDF_ERR_CONFIG. */
cdf_status cdf_json_get_flag(const cJSON *obj, const char *file, const char *key, int *out, cdf_error *err);

/* Emits a notice for every key of obj not in `known` (NULL-terminated) and not
 * starting with '_', as diffusers does for config keys a class ignores. */
void cdf_json_notice_unknown(const cJSON *obj, const char *file, const char *cls, const char *const *known,
                             cdf_error *err);
/* The opening checks of a diffusers model config.json: root must be an
 * object, '_class_name' (when present) must be cls (CDF_ERR_UNSUPPORTED
 * naming both), and unknown keys get a notice. */
cdf_status cdf_json_config_class(const cJSON *root, const char *file, const char *cls, const char *const *known,
                                 cdf_error *err);

#endif
