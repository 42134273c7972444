#include "models/blocks2d.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor/attention.h"

float *cdf_buf(cdf_exec *ex, size_t n) {
    if (n > SIZE_MAX / sizeof(float)) {
        cdf_error_set(ex->err, CDF_ERR_LIMIT, "activation buffer of %zu floats is too large", n);
        return NULL;
    }
    float *p = cdf_aligned_alloc(n * sizeof(float));
    if (!p) cdf_error_set(ex->err, CDF_ERR_NOMEM, "out of memory for a %zu-byte activation", n * sizeof(float));
    return p;
}

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

cdf_status cdf_resnet2d_load(cdf_loader *ld, const char *prefix, int cin, int cout, int temb, int groups, float eps,
                             int act, int scale_shift, float output_scale_factor, int down, int up, cdf_resnet2d *m) {
    char p[CDF_NAME_MAX];
    memset(m, 0, sizeof *m);
    m->cin = cin;
    m->cout = cout;
    m->temb = temb;
    m->act = act;
    m->scale_shift = scale_shift;
    m->output_scale_factor = output_scale_factor;
    m->down = down;
    m->up = up;
    TRY(cdf_groupnorm_load(ld, cdf_join(p, prefix, "norm1"), groups, cin, eps, &m->norm1));
    TRY(cdf_conv2d_load(ld, cdf_join(p, prefix, "conv1"), cin, cout, 3, 1, 1, 1, &m->conv1));
    if (temb > 0) {
        TRY(cdf_linear_load(ld, cdf_join(p, prefix, "time_emb_proj"), temb, scale_shift ? 2 * cout : cout, 1,
                            &m->time_emb_proj));
    } else if (scale_shift) {
        return cdf_error_set(ld->err, CDF_ERR_CONFIG, "%s: %s: time_embedding_norm \"scale_shift\" needs a time embedding",
                             ld->what, prefix);
    }
    TRY(cdf_groupnorm_load(ld, cdf_join(p, prefix, "norm2"), groups, cout, eps, &m->norm2));
    TRY(cdf_conv2d_load(ld, cdf_join(p, prefix, "conv2"), cout, cout, 3, 1, 1, 1, &m->conv2));
    m->has_shortcut = cin != cout;
    if (m->has_shortcut) {
        TRY(cdf_conv2d_load(ld, cdf_join(p, prefix, "conv_shortcut"), cin, cout, 1, 1, 0, 1, &m->conv_shortcut));
    }
    return CDF_OK;
}

cdf_status cdf_attn2d_load(cdf_loader *ld, const char *prefix, int channels, int head_dim, int norm_groups, float eps,
                           float rescale_output_factor, cdf_attn2d *m) {
    char p[CDF_NAME_MAX];
    memset(m, 0, sizeof *m);
    m->channels = channels;
    m->dim_head = head_dim;
    m->heads = channels / head_dim;
    m->rescale_output_factor = rescale_output_factor;
    if (m->heads < 1)
        return cdf_error_set(ld->err, CDF_ERR_CONFIG, "%s: %s: attention head dim %d exceeds %d channels", ld->what,
                             prefix, head_dim, channels);
    int inner = m->heads * head_dim;
    m->has_norm = norm_groups > 0;
    if (m->has_norm) {
        TRY(cdf_groupnorm_load(ld, cdf_join(p, prefix, "group_norm"), norm_groups, channels, eps, &m->group_norm));
    }
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "to_q"), channels, inner, 1, &m->to_q));
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "to_k"), channels, inner, 1, &m->to_k));
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "to_v"), channels, inner, 1, &m->to_v));
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "to_out.0"), inner, channels, 1, &m->to_out));
    return CDF_OK;
}

/* AvgPool2d(2, 2): x [n, h, w] planes -> y [n, h/2, w/2]. */
static void avgpool2(cdf_exec *ex, const float *x, int planes, int h, int w, float *y) {
    int ho = h / 2, wo = w / 2;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)planes * h * w)) schedule(static)
    for (int pl = 0; pl < planes; pl++) {
        const float *xs = x + (size_t)pl * h * w;
        float *ys = y + (size_t)pl * ho * wo;
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                const float *r0 = xs + (size_t)(2 * oy) * w + 2 * ox, *r1 = r0 + w;
                float s = r0[0] + r0[1];
                s = s + r1[0];
                s = s + r1[1];
                ys[(size_t)oy * wo + ox] = s / 4.0f;
            }
    }
}

/* Resamples per the resnet's up/down flag; the new buffer goes to out, h and w are updated. */
static cdf_status resnet_resample(cdf_exec *ex, const cdf_resnet2d *m, const float *x, int batch, int c, int *h,
                                  int *w, float **out) {
    int ho = m->down ? *h / 2 : *h * 2, wo = m->down ? *w / 2 : *w * 2;
    float *y = cdf_buf(ex, (size_t)batch * c * ho * wo);
    if (!y) return ex->err->status;
    if (m->down)
        avgpool2(ex, x, batch * c, *h, *w, y);
    else
        cdf_upsample_nearest2x(ex, x, batch, c, *h, *w, y);
    *h = ho;
    *w = wo;
    *out = y;
    return CDF_OK;
}

cdf_status cdf_resnet2d_forward(cdf_exec *ex, const cdf_resnet2d *m, const float *x, int batch, int h, int w,
                                const float *temb, float **y, int *ho, int *wo) {
    cdf_status s = CDF_OK;
    float *h1 = NULL, *xr = NULL, *h2 = NULL, *t = NULL, *tact = NULL, *sc = NULL, *h3 = NULL;
    const float *xin = x;
    size_t n_in = (size_t)batch * m->cin * h * w;
    *y = NULL;
    if (!(h1 = cdf_buf(ex, n_in))) goto fail;
    if ((s = cdf_groupnorm_forward(ex, &m->norm1, x, batch, (int64_t)h * w, m->act, h1))) goto fail;
    if (m->down || m->up) {
        int hh = h, ww = w;
        float *h1r = NULL;
        if ((s = resnet_resample(ex, m, x, batch, m->cin, &hh, &ww, &xr))) goto fail;
        hh = h;
        ww = w;
        if ((s = resnet_resample(ex, m, h1, batch, m->cin, &hh, &ww, &h1r))) goto fail;
        cdf_aligned_free(h1);
        h1 = h1r;
        h = hh;
        w = ww;
        xin = xr;
    }
    int64_t hw = (int64_t)h * w;
    size_t n_out = (size_t)batch * m->cout * hw;
    if (!(h2 = cdf_buf(ex, n_out))) goto fail;
    if ((s = cdf_conv2d_forward(ex, &m->conv1, h1, batch, h, w, h2))) goto fail;
    cdf_aligned_free(h1);
    h1 = NULL;
    /* temb: nonlinearity then projection, one row per image (absent when m->temb == 0) */
    int tdim = m->time_emb_proj.out;
    if (m->temb > 0) {
        if (!(tact = cdf_buf(ex, (size_t)batch * m->temb)) || !(t = cdf_buf(ex, (size_t)batch * tdim))) goto fail;
        memcpy(tact, temb, sizeof(float) * (size_t)batch * m->temb);
        if (!m->skip_time_act) cdf_activate(ex, tact, (size_t)batch * m->temb, m->act);
        if ((s = cdf_linear_forward(ex, &m->time_emb_proj, tact, batch, t))) goto fail;
    }
    if (!m->scale_shift) {
        if (t) cdf_add_channel_bias(ex, h2, t, batch, m->cout, hw);
        if ((s = cdf_groupnorm_forward(ex, &m->norm2, h2, batch, hw, m->act, h2))) goto fail;
    } else {
        if ((s = cdf_groupnorm_forward(ex, &m->norm2, h2, batch, hw, CDF_ACT_NONE, h2))) goto fail;
        int total = batch * m->cout;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)total * hw)) schedule(static)
        for (int bc = 0; bc < total; bc++) {
            int b = bc / m->cout, c = bc % m->cout;
            float scale1 = 1.0f + t[(size_t)b * tdim + c];
            float shift = t[(size_t)b * tdim + m->cout + c];
            float *r = h2 + (size_t)bc * hw;
            for (int64_t i = 0; i < hw; i++) r[i] = cdf_act_apply((cdf_act)m->act, r[i] * scale1 + shift);
        }
    }
    if (!(h3 = cdf_buf(ex, n_out))) goto fail;
    if ((s = cdf_conv2d_forward(ex, &m->conv2, h2, batch, h, w, h3))) goto fail;
    cdf_aligned_free(h2); /* not needed past conv2: keep the peak low */
    h2 = NULL;
    const float *skip = xin;
    if (m->has_shortcut) {
        if (!(sc = cdf_buf(ex, n_out))) goto fail;
        if ((s = cdf_conv2d_forward(ex, &m->conv_shortcut, xin, batch, h, w, sc))) goto fail;
        skip = sc;
    }
    float osf = m->output_scale_factor;
    int64_t nn = (int64_t)n_out;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)nn)) schedule(static)
    for (int64_t i = 0; i < nn; i++) {
        float v = skip[i] + h3[i];
        h3[i] = osf == 1.0f ? v : v / osf;
    }
    *y = h3;
    h3 = NULL;
    *ho = h;
    *wo = w;
fail:
    if (!s && !*y) s = ex->err && ex->err->status ? ex->err->status : CDF_ERR_NOMEM;
    cdf_aligned_free(h1);
    cdf_aligned_free(xr);
    cdf_aligned_free(h2);
    cdf_aligned_free(t);
    cdf_aligned_free(tact);
    cdf_aligned_free(sc);
    cdf_aligned_free(h3);
    return s;
}

cdf_status cdf_attn2d_forward(cdf_exec *ex, const cdf_attn2d *m, float *x, int batch, int64_t hw) {
    cdf_status s = CDF_OK;
    int c = m->channels, inner = m->heads * m->dim_head, n = (int)hw;
    float *hn = NULL, *ht = NULL, *q = NULL, *k = NULL, *v = NULL, *o = NULL, *proj = NULL;
    if (!(hn = cdf_buf(ex, (size_t)c * hw)) || !(ht = cdf_buf(ex, (size_t)c * hw)) ||
        !(q = cdf_buf(ex, (size_t)inner * hw)) || !(k = cdf_buf(ex, (size_t)inner * hw)) ||
        !(v = cdf_buf(ex, (size_t)inner * hw)) || !(o = cdf_buf(ex, (size_t)inner * hw)) ||
        !(proj = cdf_buf(ex, (size_t)c * hw))) {
        s = ex->err->status;
        goto done;
    }
    /* torch multiplies the q.k^T product by the float32 scale dim_head**-0.5 */
    float scale = (float)pow((double)m->dim_head, -0.5);
    for (int b = 0; b < batch; b++) {
        float *xb = x + (size_t)b * c * hw; /* [c, hw] */
        if (m->has_norm) {
            if ((s = cdf_groupnorm_forward(ex, &m->group_norm, xb, 1, hw, CDF_ACT_NONE, hn))) goto done;
        } else {
            memcpy(hn, xb, sizeof(float) * (size_t)c * hw);
        }
        cdf_transpose(ex, hn, 1, c, n, ht); /* ht: [hw, c] */
        if ((s = cdf_linear_forward(ex, &m->to_q, ht, n, q))) goto done; /* [hw, inner] */
        if ((s = cdf_linear_forward(ex, &m->to_k, ht, n, k))) goto done;
        if ((s = cdf_linear_forward(ex, &m->to_v, ht, n, v))) goto done;
        if ((s = cdf_attention(ex, q, inner, k, inner, v, inner, o, inner, n, n, m->heads, m->dim_head, scale, 0)))
            goto done;
        if ((s = cdf_linear_forward(ex, &m->to_out, o, n, proj))) goto done; /* [hw, c] */
        cdf_transpose(ex, proj, 1, n, c, hn); /* hn: [c, hw] */
        float r = m->rescale_output_factor;
        int64_t tot = (int64_t)c * hw;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)tot)) schedule(static)
        for (int64_t i = 0; i < tot; i++) {
            float vv = hn[i] + xb[i];
            xb[i] = r == 1.0f ? vv : vv / r;
        }
    }
done:
    cdf_aligned_free(hn);
    cdf_aligned_free(ht);
    cdf_aligned_free(q);
    cdf_aligned_free(k);
    cdf_aligned_free(v);
    cdf_aligned_free(o);
    cdf_aligned_free(proj);
    return s;
}

cdf_status cdf_downsample2d_forward(cdf_exec *ex, const cdf_resample2d *m, const float *x, int batch, int c, int h,
                                    int w, const float *temb, float **y, int *ho, int *wo) {
    if (m->kind == 2) return cdf_resnet2d_forward(ex, &m->resnet, x, batch, h, w, temb, y, ho, wo);
    int pt = m->pad, pl = m->pad, pb = m->pad, pr = m->pad;
    if (m->pad == 0) pb = pr = 1; /* diffusers pads (0, 1, 0, 1) */
    *ho = (h + pt + pb - 3) / 2 + 1;
    *wo = (w + pl + pr - 3) / 2 + 1;
    if (*ho < 1 || *wo < 1)
        return cdf_error_set(ex->err, CDF_ERR_SHAPE, "downsampling a %dx%d feature map is not possible", h, w);
    *y = cdf_buf(ex, (size_t)batch * c * (*ho) * (*wo));
    if (!*y) return ex->err->status;
    cdf_status s = cdf_conv2d_forward_pad(ex, &m->conv, x, batch, h, w, pt, pl, pb, pr, *y);
    if (s) {
        cdf_aligned_free(*y);
        *y = NULL;
    }
    return s;
}

cdf_status cdf_upsample2d_forward(cdf_exec *ex, const cdf_resample2d *m, const float *x, int batch, int c, int h,
                                  int w, const float *temb, float **y, int *ho, int *wo) {
    if (m->kind == 2) return cdf_resnet2d_forward(ex, &m->resnet, x, batch, h, w, temb, y, ho, wo);
    *ho = 2 * h;
    *wo = 2 * w;
    float *up = cdf_buf(ex, (size_t)batch * c * 4 * h * w);
    if (!up) return ex->err->status;
    cdf_upsample_nearest2x(ex, x, batch, c, h, w, up);
    *y = cdf_buf(ex, (size_t)batch * c * 4 * h * w);
    cdf_status s = *y ? cdf_conv2d_forward(ex, &m->conv, up, batch, 2 * h, 2 * w, *y) : ex->err->status;
    cdf_aligned_free(up);
    if (s) {
        cdf_aligned_free(*y);
        *y = NULL;
    }
    return s;
}
