/* Memory-mapped safetensors reader: validates the header and the layout of
 * the byte buffer, never copies tensor data. */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/json.h"

struct cdf_st_file {
    char *path;                 /* cdf_malloc'd copy */
    void *map;                  /* [map_len] whole file, PROT_READ MAP_PRIVATE */
    size_t map_len;
    cdf_st_tensor *tensors;     /* [n] in data-offset order */
    const cdf_st_tensor **by_name; /* [n] sorted by strcmp(name) */
    size_t n;
    char *names;                /* arena holding tensor names and metadata strings */
    const char **meta_keys;     /* [nmeta] into names */
    const char **meta_vals;     /* [nmeta] into names */
    size_t nmeta;
};

/* Offsets of one tensor, kept while validating the layout. */
typedef struct st_span {
    uint64_t begin, end;
    const cdf_st_tensor *t;
} st_span;

int cdf_st_dtype_from_string(const char *s, cdf_dtype *out) {
    static const struct { const char *name; cdf_dtype t; } known[] = {
        {"F32", CDF_F32}, {"F16", CDF_F16}, {"BF16", CDF_BF16}, {"F64", CDF_F64},
        {"I64", CDF_I64}, {"I32", CDF_I32}, {"U8", CDF_U8},
    };
    static const char *const other[] = {"BOOL", "I8", "U16", "I16", "U32", "U64", "F8_E5M2", "F8_E4M3",
                                        "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(s, known[i].name) == 0) {
            *out = known[i].t;
            return 0;
        }
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (strcmp(s, other[i]) == 0) return -1;
    return -2;
}

/* 1 when buf[0..n) is valid UTF-8 without control characters other than
 * tab/CR/LF (JSON allows no others outside strings, and none inside). */
static int header_text_ok(const unsigned char *p, size_t n, size_t *bad_at) {
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') break;
            i++;
            continue;
        }
        size_t len;
        unsigned minv;
        if (c >= 0xC2 && c <= 0xDF) len = 2, minv = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, minv = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, minv = 0x10000;
        else break;
        if (n - i < len) break;
        unsigned v = c & (0x7Fu >> len);
        size_t k;
        for (k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) break;
            v = (v << 6) | (p[i + k] & 0x3Fu);
        }
        if (k < len || v < minv || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) break;
        i += len;
    }
    *bad_at = i;
    return i == n;
}

/* Offset just past the JSON object that starts at p[0] == '{' (strings and
 * escapes skipped), or n when it never closes. */
static size_t object_end(const char *p, size_t n) {
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0) return i + 1;
        }
    }
    return n;
}

/* Reads a JSON number that must be a non-negative integer <= 2^53. */
static int json_u53(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || floor(d) != d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int by_name_cmp(const void *a, const void *b) {
    const cdf_st_tensor *ta = *(const cdf_st_tensor *const *)a;
    const cdf_st_tensor *tb = *(const cdf_st_tensor *const *)b;
    return strcmp(ta->name, tb->name);
}

static int span_cmp(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->t->name, y->t->name);
}

/* Fills t from the JSON entry e of tensor `name`; the data pointer is set
 * later.  begin/end receive the data offsets. */
static cdf_status parse_entry(const char *path, const char *name, const cJSON *e, uint64_t data_len,
                              cdf_st_tensor *t, uint64_t *begin, uint64_t *end, cdf_error *err) {
    if (!cJSON_IsObject(e))
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", path, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd))
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: tensor '%s': 'dtype' missing or not a string", path, name);
    int dr = cdf_st_dtype_from_string(jd->valuestring, &t->dtype);
    if (dr == -1)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s is not supported", path, name,
                             jd->valuestring);
    if (dr != 0)
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: tensor '%s': unknown dtype \"%s\"", path, name,
                             jd->valuestring);
    if (!cJSON_IsArray(js))
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: tensor '%s': 'shape' missing or not an array", path, name);
    int nd = cJSON_GetArraySize(js);
    if (nd > CDF_MAX_DIMS)
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: tensor '%s': %d dimensions, at most %d supported", path, name,
                             nd, CDF_MAX_DIMS);
    t->ndim = nd;
    uint64_t elsize = cdf_dtype_size(t->dtype);
    uint64_t nbytes = elsize; /* numel * elsize, checked against overflow */
    int overflow = 0;
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, js) {
        uint64_t dim;
        if (!json_u53(it, &dim))
            return cdf_error_set(err, CDF_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer",
                                 path, name, i);
        t->shape[i++] = (int64_t)dim;
        if (dim == 0) nbytes = 0;
        else if (nbytes > UINT64_MAX / dim) overflow = 1;
        else nbytes *= dim;
    }
    for (; i < CDF_MAX_DIMS; i++) t->shape[i] = 0;
    if (overflow && nbytes != 0)
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: tensor '%s': element count times element size overflows",
                             path, name);
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_u53(cJSON_GetArrayItem(jo, 0), begin) ||
        !json_u53(cJSON_GetArrayItem(jo, 1), end))
        return cdf_error_set(err, CDF_ERR_FORMAT,
                             "%s: tensor '%s': 'data_offsets' must be [begin, end] of non-negative integers", path,
                             name);
    if (*begin > *end)
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before begin",
                             path, name, (unsigned long long)*begin, (unsigned long long)*end);
    if (*end > data_len)
        return cdf_error_set(err, CDF_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets [%llu, %llu] past the end of the %llu-byte data area",
                             path, name, (unsigned long long)*begin, (unsigned long long)*end,
                             (unsigned long long)data_len);
    if (*end - *begin != nbytes)
        return cdf_error_set(err, CDF_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but %s shape needs %llu",
                             path, name, (unsigned long long)*begin, (unsigned long long)*end,
                             (unsigned long long)(*end - *begin), jd->valuestring, (unsigned long long)nbytes);
    t->nbytes = (size_t)nbytes;
    return CDF_OK;
}

/* Copies s into the arena at *cursor; returns the copy. */
static const char *arena_put(char **cursor, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = *cursor;
    memcpy(d, s, n);
    *cursor += n;
    return d;
}

/* Checks "__metadata__" (string -> string) and counts its bytes. */
static cdf_status check_metadata(const char *path, const cJSON *m, size_t *count, size_t *bytes, cdf_error *err) {
    if (cJSON_IsNull(m)) return CDF_OK;
    if (!cJSON_IsObject(m))
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: '__metadata__' is not an object", path);
    const cJSON *it;
    cJSON_ArrayForEach(it, m) {
        if (!cJSON_IsString(it))
            return cdf_error_set(err, CDF_ERR_FORMAT, "%s: '__metadata__' value of '%s' is not a string", path,
                                 it->string);
        (*count)++;
        *bytes += strlen(it->string) + strlen(it->valuestring) + 2;
    }
    return CDF_OK;
}

/* Validates the JSON header and fills f's tables; f->map is set. */
static cdf_status parse_header(cdf_st_file *f, const char *hdr, size_t hlen, uint64_t data_len,
                               const unsigned char *data, cdf_error *err) {
    const char *path = f->path;
    size_t bad;
    if (hlen == 0 || hdr[0] != '{')
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: header does not start with '{' (not a safetensors file?)",
                             path);
    if (!header_text_ok((const unsigned char *)hdr, hlen, &bad))
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: header is not valid UTF-8 JSON text (byte %zu)", path, bad);
    size_t obj_end = object_end(hdr, hlen);
    for (size_t i = obj_end; i < hlen; i++)
        if (hdr[i] != ' ' && hdr[i] != '\t' && hdr[i] != '\n' && hdr[i] != '\r')
            return cdf_error_set(err, CDF_ERR_FORMAT, "%s: header has trailing data after the JSON object (byte %zu)",
                                 path, i);
    cJSON *root = NULL;
    cdf_status s = cdf_json_parse(hdr, hlen, "safetensors header", &root, err);
    if (s != CDF_OK) return cdf_error_prefix(err, "%s", path);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: safetensors header is not a JSON object", path);
    }
    /* Pass 1: count and size. */
    size_t n = 0, nmeta = 0, bytes = 0;
    int seen_meta = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        if (strcmp(it->string, "__metadata__") == 0) {
            if (seen_meta++) {
                cJSON_Delete(root);
                return cdf_error_set(err, CDF_ERR_FORMAT, "%s: '__metadata__' appears twice", path);
            }
            s = check_metadata(path, it, &nmeta, &bytes, err);
            if (s != CDF_OK) {
                cJSON_Delete(root);
                return s;
            }
            continue;
        }
        n++;
        bytes += strlen(it->string) + 1;
    }
    f->tensors = cdf_calloc(n ? n : 1, sizeof *f->tensors);
    f->by_name = cdf_calloc(n ? n : 1, sizeof *f->by_name);
    f->names = cdf_malloc(bytes ? bytes : 1);
    f->meta_keys = cdf_calloc(nmeta ? nmeta : 1, sizeof *f->meta_keys);
    f->meta_vals = cdf_calloc(nmeta ? nmeta : 1, sizeof *f->meta_vals);
    st_span *spans = cdf_calloc(n ? n : 1, sizeof *spans);
    if (!f->tensors || !f->by_name || !f->names || !f->meta_keys || !f->meta_vals || !spans) {
        cdf_free(spans);
        cJSON_Delete(root);
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory reading the header (%zu tensors)", path, n);
    }
    /* Pass 2: parse entries in header order into a scratch table. */
    char *cursor = f->names;
    size_t k = 0;
    cdf_st_tensor *tmp = cdf_calloc(n ? n : 1, sizeof *tmp);
    if (!tmp) {
        cdf_free(spans);
        cJSON_Delete(root);
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory reading the header", path);
    }
    cJSON_ArrayForEach(it, root) {
        if (strcmp(it->string, "__metadata__") == 0) {
            const cJSON *m;
            if (cJSON_IsObject(it)) cJSON_ArrayForEach(m, it) {
                f->meta_keys[f->nmeta] = arena_put(&cursor, m->string);
                f->meta_vals[f->nmeta] = arena_put(&cursor, m->valuestring);
                f->nmeta++;
            }
            continue;
        }
        const char *name = arena_put(&cursor, it->string);
        tmp[k].name = name;
        s = parse_entry(path, name, it, data_len, &tmp[k], &spans[k].begin, &spans[k].end, err);
        if (s != CDF_OK) break;
        spans[k].t = &tmp[k];
        k++;
    }
    cJSON_Delete(root);
    if (s == CDF_OK) {
        /* Duplicate names (JSON objects may repeat keys; cJSON keeps both). */
        for (size_t i = 0; i < n; i++) f->by_name[i] = &tmp[i];
        if (n > 1) qsort(f->by_name, n, sizeof *f->by_name, by_name_cmp);
        for (size_t i = 1; i < n; i++)
            if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0) {
                s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", path,
                                  f->by_name[i]->name);
                break;
            }
    }
    if (s == CDF_OK) {
        /* Layout: sorted by offset, each tensor starts where the previous ended. */
        if (n > 1) qsort(spans, n, sizeof *spans, span_cmp);
        uint64_t pos = 0;
        const char *prev = NULL;
        for (size_t i = 0; i < n && s == CDF_OK; i++) {
            if (spans[i].begin < pos)
                s = cdf_error_set(err, CDF_ERR_FORMAT,
                                  "%s: tensor '%s' (bytes %llu..%llu) overlaps tensor '%s' (ending at %llu)", path,
                                  spans[i].t->name, (unsigned long long)spans[i].begin,
                                  (unsigned long long)spans[i].end, prev, (unsigned long long)pos);
            else if (spans[i].begin > pos)
                s = cdf_error_set(err, CDF_ERR_FORMAT,
                                  "%s: bytes %llu..%llu of the data area belong to no tensor (gap before tensor '%s'%s%s%s)",
                                  path, (unsigned long long)pos, (unsigned long long)spans[i].begin,
                                  spans[i].t->name, prev ? ", after '" : "", prev ? prev : "", prev ? "'" : "");
            pos = spans[i].end;
            prev = spans[i].t->name;
        }
        if (s == CDF_OK && pos != data_len)
            s = cdf_error_set(err, CDF_ERR_FORMAT,
                              "%s: bytes %llu..%llu of the data area belong to no tensor (gap after %s%s%s)", path,
                              (unsigned long long)pos, (unsigned long long)data_len, prev ? "tensor '" : "",
                              prev ? prev : "the header", prev ? "'" : "");
    }
    if (s == CDF_OK) {
        for (size_t i = 0; i < n; i++) {
            f->tensors[i] = *spans[i].t;
            f->tensors[i].data = data + spans[i].begin;
        }
        for (size_t i = 0; i < n; i++) f->by_name[i] = &f->tensors[i];
        if (n > 1) qsort(f->by_name, n, sizeof *f->by_name, by_name_cmp);
        f->n = n;
    }
    cdf_free(tmp);
    cdf_free(spans);
    return s;
}

cdf_status cdf_st_open(const char *path, cdf_st_file **out, cdf_error *err) {
    *out = NULL;
    cdf_st_file *f = cdf_calloc(1, sizeof *f);
    if (!f || !(f->path = cdf_strdup(path))) {
        cdf_free(f);
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", path);
    }
    cdf_status s = CDF_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        cdf_st_close(f);
        return cdf_error_set(err, e == ENOENT ? CDF_ERR_MISSING : CDF_ERR_IO, "%s: cannot open: %s", path,
                             strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s = cdf_error_set(err, CDF_ERR_IO, "%s: not a regular file", path);
    } else if (st.st_size < 8) {
        s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: file is %lld bytes, too short for a safetensors header", path,
                          (long long)st.st_size);
    } else if ((uint64_t)st.st_size > SIZE_MAX) {
        s = cdf_error_set(err, CDF_ERR_LIMIT, "%s: file too large to map", path);
    } else {
        f->map_len = (size_t)st.st_size;
        f->map = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            int e = errno;
            f->map = NULL;
            s = cdf_error_set(err, e == ENOMEM ? CDF_ERR_NOMEM : CDF_ERR_IO, "%s: cannot map: %s", path, strerror(e));
        }
    }
    close(fd);
    if (s == CDF_OK) {
        const unsigned char *p = f->map;
        uint64_t hlen = 0;
        for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
        uint64_t avail = (uint64_t)f->map_len - 8;
        if (hlen > avail)
            s = cdf_error_set(err, CDF_ERR_FORMAT,
                              "%s: header length %llu is past the end of the file (%llu bytes after the length)",
                              path, (unsigned long long)hlen, (unsigned long long)avail);
        else if (hlen > CDF_ST_MAX_HEADER)
            s = cdf_error_set(err, CDF_ERR_LIMIT, "%s: header length %llu is over the %llu-byte limit", path,
                              (unsigned long long)hlen, (unsigned long long)CDF_ST_MAX_HEADER);
        else
            s = parse_header(f, (const char *)p + 8, (size_t)hlen, avail - hlen, p + 8 + hlen, err);
    }
    if (s != CDF_OK) {
        cdf_st_close(f);
        return s;
    }
    *out = f;
    return CDF_OK;
}

size_t cdf_st_count(const cdf_st_file *f) { return f->n; }

const cdf_st_tensor *cdf_st_at(const cdf_st_file *f, size_t i) { return i < f->n ? &f->tensors[i] : NULL; }

const cdf_st_tensor *cdf_st_find(const cdf_st_file *f, const char *name) {
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->by_name[mid]->name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

const char *cdf_st_path(const cdf_st_file *f) { return f->path; }

const char *cdf_st_metadata(const cdf_st_file *f, const char *key) {
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

void cdf_st_close(cdf_st_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_len);
    cdf_free(f->tensors);
    cdf_free(f->by_name);
    cdf_free(f->names);
    cdf_free(f->meta_keys);
    cdf_free(f->meta_vals);
    cdf_free(f->path);
    cdf_free(f);
}

void cdf_st_release_pages(const cdf_st_file *f) {
    /* Clean file-backed pages: the kernel drops them from this process and
     * faults them back in from the file if they are read again. */
    if (f && f->map && f->map_len) madvise(f->map, f->map_len, MADV_DONTNEED);
}
