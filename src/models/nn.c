#include "models/nn.h"

#include <stdio.h>
#include <string.h>

#include "tensor/half.h"
#include "tensor/ops_nlp.h"

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int i = 0; i < ndim && o < n; i++) o += (size_t)snprintf(buf + o, n - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

const char *cdf_join(char *buf, const char *prefix, const char *name) {
    size_t lp = strlen(prefix), ln = strlen(name);
    if (lp > CDF_NAME_MAX - 2) lp = CDF_NAME_MAX - 2;
    memcpy(buf, prefix, lp);
    buf[lp] = '.';
    if (ln > CDF_NAME_MAX - 2 - lp) ln = CDF_NAME_MAX - 2 - lp;
    memcpy(buf + lp + 1, name, ln);
    buf[lp + 1 + ln] = '\0';
    return buf;
}

/* Old attention names used by checkpoints such as google/ddpm-cifar10-32:
 * when full is "<attn>.<new>.<leaf>" for a renamed module, writes
 * "<attn>.<old>.<leaf>" into alt and returns 1; else 0. */
static int legacy_name(const char *full, char *alt, size_t n) {
    static const char *const map[][2] = {{"to_q", "query"}, {"to_k", "key"}, {"to_v", "value"}, {"to_out.0", "proj_attn"}};
    const char *leaf = strrchr(full, '.');
    if (!leaf) return 0;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        size_t ln = strlen(map[i][0]);
        if ((size_t)(leaf - full) < ln) continue;
        const char *mod = leaf - ln;
        if (memcmp(mod, map[i][0], ln) != 0 || (mod > full && mod[-1] != '.')) continue;
        snprintf(alt, n, "%.*s%s%s", (int)(mod - full), full, map[i][1], leaf);
        return 1;
    }
    return 0;
}

cdf_status cdf_load_param(cdf_loader *ld, const char *prefix, const char *name, int ndim, const int64_t *shape,
                          int optional, cdf_param *out) {
    char full[512];
    snprintf(full, sizeof full, "%s%s%s", prefix, prefix[0] ? "." : "", name);
    out->t = NULL;
    if (ld->record) return optional ? CDF_OK : ld->record(full, ndim, shape, ld->record_user);
    out->t = cdf_weights_get(ld->w, full);
    if (!out->t && ld->legacy_attention) {
        /* "<attn>.to_q.weight" may be stored as "<attn>.query.weight" */
        char alt[512];
        if (legacy_name(full, alt, sizeof alt)) out->t = cdf_weights_get(ld->w, alt);
    }
    if (!out->t) {
        if (optional) return CDF_OK;
        char es[128];
        shape_str(es, sizeof es, ndim, shape);
        return cdf_error_set(ld->err, CDF_ERR_MISSING, "%s: missing tensor '%s' (expected shape %s)", ld->what, full,
                             es);
    }
    const cdf_st_tensor *t = out->t;
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char es[128], fs[128];
        shape_str(es, sizeof es, ndim, shape);
        shape_str(fs, sizeof fs, t->ndim, t->shape);
        return cdf_error_set(ld->err, CDF_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s",
                             cdf_weights_file_of(ld->w, t), t->name, fs, es);
    }
    if (t->dtype != CDF_F32 && t->dtype != CDF_F16 && t->dtype != CDF_BF16)
        return cdf_error_set(ld->err, CDF_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; F32, F16 or BF16 needed",
                             cdf_weights_file_of(ld->w, t), t->name, cdf_dtype_name(t->dtype));
    return CDF_OK;
}

const float *cdf_param_f32(cdf_exec *ex, const cdf_param *p, int slot) {
    const cdf_st_tensor *t = p->t;
    if (!t) return NULL;
    size_t n = t->nbytes / cdf_dtype_size(t->dtype);
    if (t->dtype == CDF_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) return (const float *)(const void *)t->data;
    float *dst = cdf_exec_scratch(ex, slot, n);
    if (!dst) return NULL;
    int64_t chunk = 1 << 16, nchunks = ((int64_t)n + chunk - 1) / chunk;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)n)) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        size_t off = (size_t)(c * chunk), len = (size_t)chunk;
        if (off + len > n) len = n - off;
        cdf_convert_to_f32(t->dtype, t->data + off * cdf_dtype_size(t->dtype), dst + off, len);
    }
    return dst;
}

cdf_status cdf_conv2d_load(cdf_loader *ld, const char *prefix, int cin, int cout, int k, int stride, int pad,
                           int has_bias, cdf_conv2d *m) {
    m->cin = cin;
    m->cout = cout;
    m->k = k;
    m->stride = stride;
    m->pad = pad;
    int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
    cdf_status s = cdf_load_param(ld, prefix, "weight", 4, ws, 0, &m->weight);
    if (s) return s;
    m->bias.t = NULL;
    if (has_bias) return cdf_load_param(ld, prefix, "bias", 1, bs, 0, &m->bias);
    return CDF_OK;
}

cdf_status cdf_linear_load(cdf_loader *ld, const char *prefix, int in, int out, int has_bias, cdf_linear *m) {
    m->in = in;
    m->out = out;
    int64_t ws[2] = {out, in}, bs[1] = {out};
    cdf_status s = cdf_load_param(ld, prefix, "weight", 2, ws, 0, &m->weight);
    if (s) return s;
    m->bias.t = NULL;
    if (has_bias) return cdf_load_param(ld, prefix, "bias", 1, bs, 0, &m->bias);
    return CDF_OK;
}

cdf_status cdf_groupnorm_load(cdf_loader *ld, const char *prefix, int groups, int channels, float eps,
                              cdf_groupnorm *m) {
    if (groups <= 0 || channels % groups != 0)
        return cdf_error_set(ld->err, CDF_ERR_CONFIG, "%s: %s: %d channels cannot be split into %d groups", ld->what,
                             prefix, channels, groups);
    m->groups = groups;
    m->channels = channels;
    m->eps = eps;
    int64_t s1[1] = {channels};
    cdf_status s = cdf_load_param(ld, prefix, "weight", 1, s1, 0, &m->weight);
    if (s) return s;
    return cdf_load_param(ld, prefix, "bias", 1, s1, 0, &m->bias);
}

cdf_status cdf_layernorm_load(cdf_loader *ld, const char *prefix, int dim, double eps, int affine, cdf_layernorm *m) {
    m->dim = dim;
    m->eps = eps;
    m->weight.t = m->bias.t = NULL;
    if (!affine)
        return cdf_error_set(ld->err, CDF_ERR_UNSUPPORTED, "%s: LayerNorm without elementwise affine is not supported",
                             prefix);
    int64_t s1[1] = {dim};
    cdf_status s = cdf_load_param(ld, prefix, "weight", 1, s1, 0, &m->weight);
    if (s) return s;
    return cdf_load_param(ld, prefix, "bias", 1, s1, 0, &m->bias);
}

static cdf_status nomem(cdf_exec *ex) { return ex->err && ex->err->status ? ex->err->status : CDF_ERR_NOMEM; }

cdf_status cdf_conv2d_forward_pad(cdf_exec *ex, const cdf_conv2d *m, const float *x, int batch, int h, int w,
                                  int pad_t, int pad_l, int pad_b, int pad_r, float *y) {
    const float *b = NULL;
    if (m->bias.t && !(b = cdf_param_f32(ex, &m->bias, 2))) return nomem(ex);
    return cdf_conv2d_any(ex, x, batch, m->cin, h, w, m->weight.t->data, m->weight.t->dtype, b, m->cout, m->k, m->k,
                          m->stride, pad_t, pad_l, pad_b, pad_r, y);
}

cdf_status cdf_conv2d_forward(cdf_exec *ex, const cdf_conv2d *m, const float *x, int batch, int h, int w, float *y) {
    return cdf_conv2d_forward_pad(ex, m, x, batch, h, w, m->pad, m->pad, m->pad, m->pad, y);
}

cdf_status cdf_linear_forward(cdf_exec *ex, const cdf_linear *m, const float *x, int rows, float *y) {
    const float *b = NULL;
    if (m->bias.t && !(b = cdf_param_f32(ex, &m->bias, 2))) return nomem(ex);
    return cdf_linear_any(ex, x, rows, m->in, m->weight.t->data, m->weight.t->dtype, b, m->out, y);
}

cdf_status cdf_groupnorm_forward(cdf_exec *ex, const cdf_groupnorm *m, const float *x, int batch, int64_t hw,
                                 cdf_act act, float *y) {
    const float *g = cdf_param_f32(ex, &m->weight, 0);
    if (!g) return nomem(ex);
    const float *b = cdf_param_f32(ex, &m->bias, 2);
    if (!b) return nomem(ex);
    cdf_group_norm(ex, x, batch, m->channels, hw, m->groups, m->eps, g, b, act, y);
    return CDF_OK;
}

cdf_status cdf_layernorm_forward(cdf_exec *ex, const cdf_layernorm *m, const float *x, int64_t rows, float *y) {
    const float *g = cdf_param_f32(ex, &m->weight, 0);
    if (!g) return nomem(ex);
    const float *b = cdf_param_f32(ex, &m->bias, 2);
    if (!b) return nomem(ex);
    cdf_layer_norm_rows(ex, x, rows, m->dim, m->eps, g, b, y);
    return CDF_OK;
}
