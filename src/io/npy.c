/* NumPy .npy reader/writer.  The writer reproduces numpy.save byte for byte
 * (numpy 1.24: sorted keys, 21-digit growth padding of the first axis, the
 * whole prefix padded with spaces and a newline to a multiple of 64). */
#include "io/npy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io/atomic.h"

#define NPY_ALIGN 64
#define NPY_GROWTH_DIGITS 21 /* numpy's GROWTH_AXIS_MAX_DIGITS */

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static const char *npy_descr(cdf_dtype t) {
    switch (t) {
    case CDF_F32: return "<f4";
    case CDF_F64: return "<f8";
    case CDF_F16: return "<f2";
    case CDF_I64: return "<i8";
    case CDF_I32: return "<i4";
    case CDF_U8: return "|u1";
    case CDF_BF16: return NULL;
    }
    return NULL;
}

/* Element count and byte size of a shape, with checks; -1 on overflow/bad dims. */
static int shape_bytes(const int64_t *shape, int ndim, size_t elsize, size_t *numel, size_t *nbytes) {
    size_t n = 1;
    int zero = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] == 0) zero = 1;
    }
    if (zero) {
        *numel = *nbytes = 0;
        return 0;
    }
    for (int i = 0; i < ndim; i++) {
        if ((uint64_t)shape[i] > SIZE_MAX / n) return -1;
        n *= (size_t)shape[i];
    }
    if (n > SIZE_MAX / elsize) return -1;
    *numel = n;
    *nbytes = n * elsize;
    return 0;
}

/* Writes n elements of elsize bytes, little-endian, to fp; 0 on success. */
static int write_le(FILE *fp, const unsigned char *p, size_t n, size_t elsize) {
    if (host_is_little_endian() || elsize == 1) return fwrite(p, elsize, n, fp) == n ? 0 : -1;
    unsigned char buf[4096];
    size_t per = sizeof buf / elsize;
    while (n) {
        size_t m = n < per ? n : per;
        for (size_t i = 0; i < m; i++)
            for (size_t b = 0; b < elsize; b++) buf[i * elsize + b] = p[i * elsize + elsize - 1 - b];
        if (fwrite(buf, elsize, m, fp) != m) return -1;
        p += m * elsize;
        n -= m;
    }
    return 0;
}

cdf_status cdf_npy_write(const char *path, const cdf_tensor *t, cdf_error *err) {
    const char *descr = npy_descr(t->dtype);
    if (!descr)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: dtype %s cannot be stored in .npy", path,
                             cdf_dtype_name(t->dtype));
    if (t->ndim < 0 || t->ndim > CDF_MAX_DIMS)
        return cdf_error_set(err, CDF_ERR_ARG, "%s: tensor has %d dimensions", path, t->ndim);
    size_t elsize = cdf_dtype_size(t->dtype), numel, nbytes;
    if (shape_bytes(t->shape, t->ndim, elsize, &numel, &nbytes) != 0)
        return cdf_error_set(err, CDF_ERR_ARG, "%s: invalid or too large tensor shape", path);
    if (nbytes && !t->data) return cdf_error_set(err, CDF_ERR_ARG, "%s: tensor has no data", path);
    /* Header dict exactly as numpy formats it. */
    char hdr[512];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->ndim; i++)
        len += snprintf(hdr + len, sizeof hdr - (size_t)len, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    len += snprintf(hdr + len, sizeof hdr - (size_t)len, "%s), }", t->ndim == 1 ? "," : "");
    if (t->ndim > 0) {
        char first[32];
        int fl = snprintf(first, sizeof first, "%lld", (long long)t->shape[0]);
        for (int i = fl; i < NPY_GROWTH_DIGITS; i++) hdr[len++] = ' ';
    }
    /* prefix (magic 6 + version 2 + u16 length 2) + header + padding + '\n' */
    size_t hlen = (size_t)len + 1;
    size_t pad = NPY_ALIGN - ((10 + hlen) % NPY_ALIGN);
    size_t total = hlen + pad;
    unsigned char head[10 + 512 + NPY_ALIGN];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (unsigned char)(total & 0xFF);
    head[9] = (unsigned char)(total >> 8);
    memcpy(head + 10, hdr, (size_t)len);
    memset(head + 10 + len, ' ', pad);
    head[10 + total - 1] = '\n';

    cdf_atomic_file af;
    cdf_status s = cdf_atomic_open(path, &af, err);
    if (s != CDF_OK) return s;
    if (fwrite(head, 1, 10 + total, af.fp) != 10 + total || write_le(af.fp, t->data, numel, elsize) != 0) {
        int e = errno;
        cdf_atomic_abort(&af);
        return cdf_error_set(err, CDF_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    return cdf_atomic_commit(&af, err);
}

/* ---- reading: a strict parser for the header's Python dict literal ---- */

typedef struct npy_parser {
    const char *p, *end;
    const char *path;
    cdf_error *err;
} npy_parser;

static void skip_ws(npy_parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int eat(npy_parser *ps, char c) {
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return 1;
    }
    return 0;
}

/* Python string literal in '...' or "..." without escapes, into buf. */
static int parse_str(npy_parser *ps, char *buf, size_t cap) {
    skip_ws(ps);
    if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"')) return 0;
    char q = *ps->p++;
    size_t n = 0;
    while (ps->p < ps->end && *ps->p != q) {
        if (*ps->p == '\\' || n + 1 >= cap) return 0;
        buf[n++] = *ps->p++;
    }
    if (ps->p >= ps->end) return 0;
    ps->p++;
    buf[n] = 0;
    return 1;
}

static int parse_word(npy_parser *ps, const char *w) {
    skip_ws(ps);
    size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0) return 0;
    ps->p += n;
    return 1;
}

static cdf_status bad(npy_parser *ps, const char *what) {
    return cdf_error_set(ps->err, CDF_ERR_FORMAT, "%s: malformed .npy header: %s", ps->path, what);
}

/* "(d0, d1, ...)" with an optional trailing comma; "(d0,)" for one dim. */
static cdf_status parse_shape(npy_parser *ps, cdf_tensor *out) {
    if (!eat(ps, '(')) return bad(ps, "'shape' is not a tuple");
    out->ndim = 0;
    if (eat(ps, ')')) return CDF_OK;
    for (;;) {
        skip_ws(ps);
        int64_t v = 0;
        int digits = 0;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            if (++digits > 18) return bad(ps, "'shape' entry too large");
            v = v * 10 + (*ps->p++ - '0');
        }
        if (!digits) return bad(ps, "'shape' entries must be non-negative integers");
        if (out->ndim == CDF_MAX_DIMS)
            return cdf_error_set(ps->err, CDF_ERR_UNSUPPORTED, "%s: array has more than %d dimensions", ps->path,
                                 CDF_MAX_DIMS);
        out->shape[out->ndim++] = v;
        int comma = eat(ps, ',');
        if (eat(ps, ')')) {
            if (out->ndim == 1 && !comma) return bad(ps, "'shape' (n) is not a tuple (needs a comma)");
            return CDF_OK;
        }
        if (!comma) return bad(ps, "'shape' entries must be separated by commas");
    }
}

static cdf_status parse_descr(npy_parser *ps, cdf_tensor *out) {
    char d[32];
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '[')
        return cdf_error_set(ps->err, CDF_ERR_UNSUPPORTED, "%s: structured arrays are not supported", ps->path);
    if (!parse_str(ps, d, sizeof d)) return bad(ps, "'descr' is not a string");
    static const struct { const char *s; cdf_dtype t; } known[] = {
        {"<f4", CDF_F32}, {"<f8", CDF_F64}, {"<f2", CDF_F16}, {"<i8", CDF_I64},
        {"<i4", CDF_I32}, {"|u1", CDF_U8},  {"<u1", CDF_U8},  {">u1", CDF_U8},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(d, known[i].s) == 0) {
            out->dtype = known[i].t;
            return CDF_OK;
        }
    if (d[0] == '>')
        return cdf_error_set(ps->err, CDF_ERR_UNSUPPORTED,
                             "%s: big-endian data ('%s') is not supported; save it little-endian", ps->path, d);
    return cdf_error_set(ps->err, CDF_ERR_UNSUPPORTED,
                         "%s: dtype '%s' is not supported (float32/64/16, int64/32, uint8 are)", ps->path, d);
}

/* Parses the dict {'descr': ..., 'fortran_order': ..., 'shape': ...}. */
static cdf_status parse_header(npy_parser *ps, cdf_tensor *out) {
    int have_descr = 0, have_order = 0, have_shape = 0;
    cdf_status s;
    if (!eat(ps, '{')) return bad(ps, "does not start with '{'");
    while (!eat(ps, '}')) {
        char key[32];
        if (!parse_str(ps, key, sizeof key)) return bad(ps, "expected a quoted key");
        if (!eat(ps, ':')) return bad(ps, "expected ':' after a key");
        if (strcmp(key, "descr") == 0 && !have_descr++) {
            if ((s = parse_descr(ps, out)) != CDF_OK) return s;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order++) {
            if (parse_word(ps, "True"))
                return cdf_error_set(ps->err, CDF_ERR_UNSUPPORTED,
                                     "%s: fortran_order True is not supported; save a C-order array", ps->path);
            if (!parse_word(ps, "False")) return bad(ps, "'fortran_order' must be True or False");
        } else if (strcmp(key, "shape") == 0 && !have_shape++) {
            if ((s = parse_shape(ps, out)) != CDF_OK) return s;
        } else {
            return cdf_error_set(ps->err, CDF_ERR_FORMAT, "%s: malformed .npy header: unexpected or repeated key '%s'",
                                 ps->path, key);
        }
        if (!eat(ps, ',')) {
            if (!eat(ps, '}')) return bad(ps, "expected ',' or '}'");
            break;
        }
    }
    skip_ws(ps);
    if (ps->p != ps->end) return bad(ps, "trailing characters after the dict");
    if (!have_descr || !have_order || !have_shape) return bad(ps, "needs keys 'descr', 'fortran_order' and 'shape'");
    return CDF_OK;
}

cdf_status cdf_npy_read(const char *path, cdf_tensor *out, cdf_error *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return cdf_error_set(err, errno == ENOENT ? CDF_ERR_MISSING : CDF_ERR_IO, "%s: cannot open: %s", path,
                             strerror(errno));
    cdf_status s = CDF_OK;
    char *hdr = NULL;
    void *data = NULL;
    struct stat st;
    unsigned char pre[12];
    size_t prelen = 10, hlen = 0;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        s = cdf_error_set(err, CDF_ERR_IO, "%s: not a regular file", path);
    } else if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
    } else if (pre[6] < 1 || pre[6] > 3 || pre[7] != 0) {
        s = cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: .npy format version %d.%d is not supported", path, pre[6],
                          pre[7]);
    } else if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (fread(pre + 10, 1, 2, f) != 2) {
        s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: truncated .npy header", path);
    } else {
        prelen = 12;
        uint32_t h = (uint32_t)pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
        if (h > CDF_NPY_MAX_HEADER)
            s = cdf_error_set(err, CDF_ERR_LIMIT, "%s: .npy header of %lu bytes is over the %d-byte limit", path,
                              (unsigned long)h, CDF_NPY_MAX_HEADER);
        hlen = h;
    }
    if (s == CDF_OK) {
        hdr = cdf_malloc(hlen + 1);
        if (!hdr) s = cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", path);
        else if (fread(hdr, 1, hlen, f) != hlen) s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: truncated .npy header", path);
    }
    if (s == CDF_OK) {
        npy_parser ps = {hdr, hdr + hlen, path, err};
        s = parse_header(&ps, out);
    }
    size_t elsize = 0, numel = 0, nbytes = 0;
    if (s == CDF_OK) {
        elsize = cdf_dtype_size(out->dtype);
        if (shape_bytes(out->shape, out->ndim, elsize, &numel, &nbytes) != 0)
            s = cdf_error_set(err, CDF_ERR_LIMIT, "%s: array shape too large", path);
    }
    if (s == CDF_OK) {
        uint64_t have = (uint64_t)st.st_size - prelen - hlen;
        if ((uint64_t)st.st_size < prelen + hlen || have != nbytes)
            s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: %llu data bytes after the header, shape and dtype need %zu",
                              path, (unsigned long long)((uint64_t)st.st_size >= prelen + hlen ? have : 0), nbytes);
    }
    if (s == CDF_OK) {
        data = cdf_malloc(nbytes);
        if (!data) s = cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory for %zu bytes", path, nbytes);
        else if (fread(data, 1, nbytes, f) != nbytes) s = cdf_error_set(err, CDF_ERR_IO, "%s: short read", path);
    }
    fclose(f);
    cdf_free(hdr);
    if (s != CDF_OK) {
        cdf_free(data);
        memset(out, 0, sizeof *out);
        return s;
    }
    if (!host_is_little_endian() && elsize > 1) {
        unsigned char *p = data;
        for (size_t i = 0; i < numel; i++)
            for (size_t b = 0; b < elsize / 2; b++) {
                unsigned char tmp = p[i * elsize + b];
                p[i * elsize + b] = p[i * elsize + elsize - 1 - b];
                p[i * elsize + elsize - 1 - b] = tmp;
            }
    }
    out->data = data;
    return CDF_OK;
}
