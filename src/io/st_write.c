#include "io/st_write.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *st_dtype(cdf_dtype t) {
    switch (t) {
    case CDF_F32: return "F32";
    case CDF_F16: return "F16";
    case CDF_BF16: return "BF16";
    case CDF_F64: return "F64";
    case CDF_I64: return "I64";
    case CDF_I32: return "I32";
    case CDF_U8: return "U8";
    }
    return NULL;
}

static size_t entry_bytes(const cdf_st_entry *e) {
    size_t n = cdf_dtype_size(e->dtype);
    for (int d = 0; d < e->ndim; d++) n *= (size_t)e->shape[d];
    return n;
}

/* Appends printf output to a growing buffer; 0 on allocation failure. */
static int appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return 0;
        if (*buf && *len + (size_t)k < *cap) {
            *len += (size_t)k;
            return 1;
        }
        size_t nc = (*cap ? *cap * 2 : 4096) + (size_t)k;
        char *nb = cdf_realloc(*buf, nc);
        if (!nb) return 0;
        *buf = nb;
        *cap = nc;
    }
}

cdf_status cdf_st_write(const char *path, const cdf_st_entry *entries, size_t n, cdf_st_fill_fn fill, void *user,
                        cdf_error *err) {
    char *hdr = NULL;
    size_t len = 0, cap = 0, off = 0, maxb = 0;
    int ok = appendf(&hdr, &len, &cap, "{");
    for (size_t i = 0; ok && i < n; i++) {
        const cdf_st_entry *e = &entries[i];
        if (!st_dtype(e->dtype)) {
            cdf_free(hdr);
            return cdf_error_set(err, CDF_ERR_ARG, "%s: tensor '%s' has no safetensors dtype", path, e->name);
        }
        size_t b = entry_bytes(e);
        ok = appendf(&hdr, &len, &cap, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", e->name,
                     st_dtype(e->dtype));
        for (int d = 0; ok && d < e->ndim; d++) ok = appendf(&hdr, &len, &cap, d ? ",%lld" : "%lld", (long long)e->shape[d]);
        if (ok) ok = appendf(&hdr, &len, &cap, "],\"data_offsets\":[%zu,%zu]}", off, off + b);
        off += b;
        if (b > maxb) maxb = b;
    }
    if (ok) ok = appendf(&hdr, &len, &cap, "}");
    while (ok && len % 8) ok = appendf(&hdr, &len, &cap, " "); /* keep data 8-byte aligned */
    unsigned char *data = ok ? cdf_malloc(maxb) : NULL;
    if (!ok || !data) {
        cdf_free(hdr);
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory writing safetensors", path);
    }
    cdf_atomic_file af;
    cdf_status s = cdf_atomic_open(path, &af, err);
    if (s) goto done;
    unsigned char lenbuf[8];
    for (int k = 0; k < 8; k++) lenbuf[k] = (unsigned char)((uint64_t)len >> (8 * k));
    if (fwrite(lenbuf, 1, 8, af.fp) != 8 || fwrite(hdr, 1, len, af.fp) != len) goto ioerr;
    for (size_t i = 0; i < n; i++) {
        size_t b = entry_bytes(&entries[i]);
        if ((s = fill(i, &entries[i], data, user, err))) {
            cdf_atomic_abort(&af);
            goto done;
        }
        if (fwrite(data, 1, b, af.fp) != b) goto ioerr;
    }
    s = cdf_atomic_commit(&af, err);
    goto done;
ioerr:
    cdf_atomic_abort(&af);
    s = cdf_error_set(err, CDF_ERR_IO, "%s: write failed", path);
done:
    cdf_free(hdr);
    cdf_free(data);
    return s;
}
