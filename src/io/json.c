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

/* Python's json module writes float('inf') as the bare tokens Infinity and
 * -Infinity (diffusers scheduler configs carry "lambda_min_clipped":
 * -Infinity).  Outside strings they are rewritten in place to 1e999 / -1e999,
 * which strtod reads as infinities; NaN has no such spelling: error. */
static cdf_status python_infinities(char *b, size_t len, const char *what, cdf_error *err) {
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = b[i];
        if (in_str) {
            if (ch == '\\') i++;
            else if (ch == '"') in_str = 0;
            continue;
        }
        if (ch == '"') {
            in_str = 1;
        } else if (ch == 'I' && len - i >= 8 && memcmp(b + i, "Infinity", 8) == 0) {
            memcpy(b + i, "1e999   ", 8);
            i += 7;
        } else if (ch == 'N' && len - i >= 3 && memcmp(b + i, "NaN", 3) == 0) {
            return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: NaN at byte %zu is not supported", what, i);
        }
    }
    return CDF_OK;
}

/* Scans the string starting at buf[*i] == '"' past its closing quote; 0 when
 * malformed.  Escapes as RFC 8259 and cJSON agree: \uXXXX with 4 hex digits,
 * a high surrogate only followed by \u and a low one, no lone low surrogate. */
static int scan_string(const char *buf, size_t len, size_t *i) {
    size_t k = *i + 1;
    for (;;) {
        if (k >= len) return 0;
        unsigned char c = (unsigned char)buf[k];
        if (c == '"') break;
        if (c < 0x20) return 0;
        if (c != '\\') {
            k++;
            continue;
        }
        if (k + 1 >= len) return 0;
        char e = buf[k + 1];
        if (e != 'u') {
            if (!strchr("\"\\/bfnrt", e) || e == 0) return 0;
            k += 2;
            continue;
        }
        unsigned code[2] = {0, 0};
        int units = 1;
        for (int u = 0; u < units; u++) {
            size_t at = k + 6 * (size_t)u;
            if (at + 6 > len || buf[at] != '\\' || buf[at + 1] != 'u') return 0;
            for (int d = 2; d < 6; d++) {
                char h = buf[at + (size_t)d];
                unsigned v = h >= '0' && h <= '9' ? (unsigned)(h - '0')
                           : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10)
                           : h >= 'A' && h <= 'F' ? (unsigned)(h - 'A' + 10) : 16u;
                if (v == 16u) return 0;
                code[u] = code[u] << 4 | v;
            }
            if (u == 0 && code[0] >= 0xDC00 && code[0] <= 0xDFFF) return 0;
            if (u == 0 && code[0] >= 0xD800 && code[0] <= 0xDBFF) units = 2;
            if (u == 1 && (code[1] < 0xDC00 || code[1] > 0xDFFF)) return 0;
        }
        k += 6 * (size_t)units;
    }
    *i = k + 1;
    return 1;
}

/* Scans an RFC 8259 number of at most 63 characters (cJSON reads numbers
 * through a 64-byte buffer); 0 when malformed. */
static int scan_number(const char *buf, size_t len, size_t *i) {
    size_t k = *i;
#define JDIGIT(j) ((j) < len && buf[j] >= '0' && buf[j] <= '9')
    if (k < len && buf[k] == '-') k++;
    if (!JDIGIT(k)) return 0;
    if (buf[k] == '0') k++;
    else while (JDIGIT(k)) k++;
    if (k < len && buf[k] == '.') {
        if (!JDIGIT(k + 1)) return 0;
        k++;
        while (JDIGIT(k)) k++;
    }
    if (k < len && (buf[k] == 'e' || buf[k] == 'E')) {
        k++;
        if (k < len && (buf[k] == '+' || buf[k] == '-')) k++;
        if (!JDIGIT(k)) return 0;
        while (JDIGIT(k)) k++;
    }
#undef JDIGIT
    if (k - *i > 63) return 0;
    *i = k;
    return 1;
}

#define JSON_CHECK_DEPTH 256

/* 1 when buf[0..len) starts with one JSON value that cJSON accepts given
 * memory (what follows it is ignored, as cJSON_ParseWithLengthOpts does).
 * Allocation-free and at least as strict as cJSON (RFC 8259 grammar,
 * nesting up to JSON_CHECK_DEPTH), so after a failed parse it tells running
 * out of memory from malformed text: cJSON returns NULL for both. */
static int json_well_formed(const char *buf, size_t len) {
    char kind[JSON_CHECK_DEPTH]; /* '[' or '{' per open container */
    int depth = 0;
    size_t i = 0;
    if (len > 4 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) i = 3; /* cJSON skips a UTF-8 BOM */
#define JSKIP() while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r')) i++
    enum { VALUE, KEY, AFTER } st = VALUE;
    for (;;) {
        JSKIP();
        if (i >= len) return 0;
        char c = buf[i];
        if (st == KEY) {
            if (c != '"' || !scan_string(buf, len, &i)) return 0;
            JSKIP();
            if (i >= len || buf[i] != ':') return 0;
            i++;
            st = VALUE;
        } else if (st == VALUE) {
            if (c == '[' || c == '{') {
                if (depth >= JSON_CHECK_DEPTH) return 0;
                kind[depth++] = c;
                i++;
                JSKIP();
                if (i < len && buf[i] == (c == '[' ? ']' : '}')) {
                    i++;
                    depth--;
                    st = AFTER;
                } else {
                    st = c == '[' ? VALUE : KEY;
                }
                continue;
            }
            if (c == '"') {
                if (!scan_string(buf, len, &i)) return 0;
            } else if (c == '-' && len - i >= 9 && memcmp(buf + i, "-Infinity", 9) == 0) {
                i += 9; /* Python's float('-inf'), accepted by cdf_json_parse */
            } else if (c == 'I' && len - i >= 8 && memcmp(buf + i, "Infinity", 8) == 0) {
                i += 8;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                if (!scan_number(buf, len, &i)) return 0;
            } else if (len - i >= 4 && (memcmp(buf + i, "true", 4) == 0 || memcmp(buf + i, "null", 4) == 0)) {
                i += 4;
            } else if (len - i >= 5 && memcmp(buf + i, "false", 5) == 0) {
                i += 5;
            } else {
                return 0;
            }
            st = AFTER;
        } else { /* AFTER a value */
            if (depth == 0) return 1;
            if (c == ',') {
                i++;
                st = kind[depth - 1] == '[' ? VALUE : KEY;
            } else if (c == (kind[depth - 1] == '[' ? ']' : '}')) {
                i++;
                depth--;
            } else {
                return 0;
            }
        }
        if (st == AFTER && depth == 0) return 1;
    }
#undef JSKIP
}

cdf_status cdf_json_parse(const char *buf, size_t len, const char *what, cJSON **out, cdf_error *err) {
    *out = NULL;
    json_hooks();
    char *copy = cdf_malloc(len + 1);
    if (!copy) {
        if (json_well_formed(buf, len)) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory parsing JSON", what);
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: invalid JSON", what);
    }
    memcpy(copy, buf, len);
    copy[len] = 0;
    cdf_status ps = python_infinities(copy, len, what, err);
    if (ps) {
        cdf_free(copy);
        return ps;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    size_t endoff = end && end >= copy ? (size_t)(end - copy) : 0;
    if (!root) {
        /* cJSON returns NULL on allocation failure too: well-formed text means memory ran out */
        int wf = json_well_formed(copy, len);
        cdf_free(copy);
        if (wf) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory parsing JSON", what);
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: invalid JSON near byte %zu", what, endoff);
    }
    cdf_free(copy);
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

cdf_status cdf_json_not_null(const cJSON *obj, const char *file, const char *const *keys, cdf_error *err) {
    for (; *keys; keys++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, *keys);
        if (v && cJSON_IsNull(v))
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must not be null", file, *keys);
    }
    return CDF_OK;
}

cdf_status cdf_json_get_flag(const cJSON *obj, const char *file, const char *key, int *out, cdf_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v && cJSON_IsNull(v)) {
        *out = 0;
        return CDF_OK;
    }
    return cdf_json_get_bool(obj, file, key, out, err);
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

cdf_status cdf_json_config_class(const cJSON *root, const char *file, const char *cls, const char *const *known,
                                 cdf_error *err) {
    if (!cJSON_IsObject(root)) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: config must be a JSON object", file);
    const char *got = NULL;
    cdf_status s = cdf_json_get_string(root, file, "_class_name", &got, err);
    if (s) return s;
    if (got && strcmp(got, cls) != 0)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: _class_name \"%s\" is not %s", file, got, cls);
    cdf_json_notice_unknown(root, file, cls, known, err);
    return CDF_OK;
}
