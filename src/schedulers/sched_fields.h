/* The modelled scheduler config fields: one table (name, bit, JSON type,
 * storage), each class's __init__ order, class defaults, and per-field JSON
 * reading / writing.  Internal to src/schedulers. */
#ifndef CDF_SCHEDULERS_SCHED_FIELDS_H
#define CDF_SCHEDULERS_SCHED_FIELDS_H

#include "schedulers/scheduler.h"

typedef enum sched_ftype {
    SF_INT,      /* int */
    SF_NUM,      /* double; -Infinity / Infinity accepted (Python json) */
    SF_NUM_NULL, /* double or null (NAN) */
    SF_BOOL,     /* Python truthiness of bool / null / number */
    SF_STR,      /* char[32] */
    SF_STR_NULL, /* char[32] or null ("") */
    SF_BETAS,    /* trained_betas: null or array of numbers */
    SF_INT_LIST, /* disable_corrector: array of integers */
    SF_NONE      /* solver_p: only null */
} sched_ftype;

typedef struct sched_field {
    const char *name;
    uint64_t bit;
    sched_ftype type;
    size_t off; /* offset of the value in cdf_sched_config (SF_BETAS / SF_INT_LIST / SF_NONE: unused) */
} sched_field;

/* The table, n entries. */
extern const sched_field cdf_sched_fields[];
extern const size_t cdf_sched_n_fields;

/* Field by name or by bit; NULL when not modelled. */
const sched_field *cdf_sched_field_by_name(const char *name);
const sched_field *cdf_sched_field_by_bit(uint64_t bit);
/* The __init__ parameters of `kind` in signature order (0-terminated bit list). */
const uint64_t *cdf_sched_class_fields(cdf_sched_kind kind);
/* Whether `kind`'s __init__ has the field. */
int cdf_sched_owns(cdf_sched_kind kind, uint64_t bit);

/* Reads JSON value v into field f of c and sets its given bit.  CDF_ERR_CONFIG
 * "path: field 'name' must be ..., got ..." on a wrong type; CDF_ERR_NOMEM. */
cdf_status cdf_sched_field_read(const sched_field *f, const cJSON *v, const char *path, cdf_sched_config *c,
                                cdf_error *err);
/* Copies field f's value from src to dst (deep for owned arrays); 0 when out of memory. */
int cdf_sched_field_copy(const sched_field *f, cdf_sched_config *dst, const cdf_sched_config *src);
/* JSON value of field f in c (NULL when out of memory). */
cJSON *cdf_sched_field_json(const sched_field *f, const cdf_sched_config *c);
/* diffusers' __init__ rewrites (DPM: deis -> dpmsolver++, bh1/bh2/logrho -> midpoint; UniPC:
 * midpoint/heun/logrho -> bh2). */
void cdf_sched_config_normalize(cdf_sched_config *c);
/* Short printable form of a JSON value for messages. */
void cdf_sched_value_text(const cJSON *v, char *buf, size_t cap);

#endif
