#include "io/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void *json_malloc(size_t n) { return cdf_malloc(n); }
static void json_free(void *p) { cdf_free(p); }

static void json_hooks(void) {
    cJSON_Hooks h = {json_malloc, json_free};
    cJSON_InitHooks(&h);
}

cdf_status cdf_json_parse(const char *buf, size_t len, const char *what, cJSON **out, cdf_error *err) {
    *out = NULL;
    json_hooks();
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        size_t off = end && end >= buf ? (size_t)(end - buf) : 0;
        /* cJSON reports NULL on allocation failure too; we cannot tell them apart
         * except by retrying: a parse error is deterministic. */
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: invalid JSON near byte %zu", what, off);
    }
    *out = root;
    return CDF_OK;
}

cdf_status cdf_json_load(const char *path, cJSON **out, cdf_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cdf_error_set(err, errno == ENOENT ? CDF_ERR_MISSING : CDF_ERR_IO, "%s: cannot open: %s", path,
                             strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cdf_error_set(err, CDF_ERR_IO, "%s: not a regular file", path);
    }
    if ((size_t)st.st_size > CDF_JSON_MAX_BYTES) {
        fclose(f);
        return cdf_error_set(err, CDF_ERR_LIMIT, "%s: JSON file of %lld bytes is over the %zu-byte limit", path,
                             (long long)st.st_size, CDF_JSON_MAX_BYTES);
    }
    size_t n = (size_t)st.st_size;
    char *buf = cdf_malloc(n + 1);
    if (!buf) {
        fclose(f);
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory reading JSON", path);
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) {
        cdf_free(buf);
        return cdf_error_set(err, CDF_ERR_IO, "%s: short read", path);
    }
    buf[n] = 0;
    cdf_status s = cdf_json_parse(buf, n, path, out, err);
    cdf_free(buf);
    return s;
}

int cdf_json_has(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v);
}

static const cJSON *field(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

static int as_int(const cJSON *v, int64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || floor(d) != d) return 0;
    *out = (int64_t)d;
    return 1;
}

cdf_status cdf_json_get_int(const cJSON *obj, const char *file, const char *key, int64_t *out, cdf_error *err) {
    const cJSON *v = field(obj, key);
    if (!v) return CDF_OK;
    if (!as_int(v, out)) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be an integer", file, key);
    return CDF_OK;
}

cdf_status cdf_json_get_double(const cJSON *obj, const char *file, const char *key, double *out, cdf_error *err) {
    const cJSON *v = field(obj, key);
    if (!v) return CDF_OK;
    if (!cJSON_IsNumber(v)) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be a number", file, key);
    *out = v->valuedouble;
    return CDF_OK;
}

cdf_status cdf_json_get_bool(const cJSON *obj, const char *file, const char *key, int *out, cdf_error *err) {
    const cJSON *v = field(obj, key);
    if (!v) return CDF_OK;
    if (!cJSON_IsBool(v)) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be true or false", file, key);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return CDF_OK;
}

cdf_status cdf_json_get_string(const cJSON *obj, const char *file, const char *key, const char **out,
                               cdf_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return CDF_OK;
    if (cJSON_IsNull(v)) {
        *out = NULL;
        return CDF_OK;
    }
    if (!cJSON_IsString(v)) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be a string", file, key);
    *out = v->valuestring;
    return CDF_OK;
}

cdf_status cdf_json_get_int_array(const cJSON *obj, const char *file, const char *key, int64_t **out, size_t *n,
                                  cdf_error *err) {
    *out = NULL;
    *n = 0;
    const cJSON *v = field(obj, key);
    if (!v) return CDF_OK;
    if (!cJSON_IsArray(v))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be an array of integers", file, key);
    int len = cJSON_GetArraySize(v);
    int64_t *a = cdf_mallocn((size_t)(len ? len : 1), sizeof *a);
    if (!a) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory reading '%s'", file, key);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!as_int(it, &a[i])) {
            cdf_free(a);
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s'[%d] must be an integer", file, key, i);
        }
        i++;
    }
    *out = a;
    *n = (size_t)len;
    return CDF_OK;
}

cdf_status cdf_json_get_double_array(const cJSON *obj, const char *file, const char *key, double **out, size_t *n,
                                     cdf_error *err) {
    *out = NULL;
    *n = 0;
    const cJSON *v = field(obj, key);
    if (!v) return CDF_OK;
    if (!cJSON_IsArray(v))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be an array of numbers", file, key);
    int len = cJSON_GetArraySize(v);
    double *a = cdf_mallocn((size_t)(len ? len : 1), sizeof *a);
    if (!a) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory reading '%s'", file, key);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsNumber(it)) {
            cdf_free(a);
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s'[%d] must be a number", file, key, i);
        }
        a[i++] = it->valuedouble;
    }
    *out = a;
    *n = (size_t)len;
    return CDF_OK;
}

void cdf_json_notice_unknown(const cJSON *obj, const char *file, const char *cls, const char *const *known,
                             cdf_error *err) {
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        if (!it->string || it->string[0] == '_') continue;
        int found = 0;
        for (const char *const *k = known; *k; k++)
            if (strcmp(*k, it->string) == 0) {
                found = 1;
                break;
            }
        if (!found)
            cdf_notice(err, CDF_NOTICE_INFO, "%s: config key '%s' is not expected by %s and will be ignored", file,
                       it->string, cls);
    }
}
