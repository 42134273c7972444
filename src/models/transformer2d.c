#include "models/transformer2d.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/blocks2d.h"
#include "tensor/attention.h"

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

static cdf_status attn_load(cdf_loader *ld, const char *prefix, int qdim, int kvdim, int heads, int dh,
                            cdf_attention_mod *m) {
    char p[CDF_NAME_MAX];
    int inner = heads * dh;
    m->heads = heads;
    m->dim_head = dh;
    m->query_dim = qdim;
    m->kv_dim = kvdim;
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "to_q"), qdim, inner, 0, &m->to_q));
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "to_k"), kvdim, inner, 0, &m->to_k));
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "to_v"), kvdim, inner, 0, &m->to_v));
    return cdf_linear_load(ld, cdf_join(p, prefix, "to_out.0"), inner, qdim, 1, &m->to_out);
}

/* y [n, qdim] = Attention(x [n, qdim], ctx [m, kv_dim]). */
static cdf_status attn_forward(cdf_exec *ex, const cdf_attention_mod *a, const float *x, int n, const float *ctx,
                               int mkv, float *y) {
    int inner = a->heads * a->dim_head;
    cdf_status s = CDF_OK;
    float *q = cdf_buf(ex, (size_t)n * inner), *k = cdf_buf(ex, (size_t)mkv * inner),
          *v = cdf_buf(ex, (size_t)mkv * inner), *o = cdf_buf(ex, (size_t)n * inner);
    if (!q || !k || !v || !o) {
        s = ex->err->status;
        goto done;
    }
    if ((s = cdf_linear_forward(ex, &a->to_q, x, n, q))) goto done;
    if ((s = cdf_linear_forward(ex, &a->to_k, ctx, mkv, k))) goto done;
    if ((s = cdf_linear_forward(ex, &a->to_v, ctx, mkv, v))) goto done;
    float scale = (float)pow((double)a->dim_head, -0.5);
    if ((s = cdf_attention(ex, q, inner, k, inner, v, inner, o, inner, n, mkv, a->heads, a->dim_head, scale, 0)))
        goto done;
    s = cdf_linear_forward(ex, &a->to_out, o, n, y);
done:
    cdf_aligned_free(q);
    cdf_aligned_free(k);
    cdf_aligned_free(v);
    cdf_aligned_free(o);
    return s;
}

static cdf_status block_load(cdf_loader *ld, const char *prefix, const cdf_transformer2d_spec *sp, int dim,
                             cdf_transformer_block *b) {
    char p[CDF_NAME_MAX];
    b->dim = dim;
    b->only_cross = sp->only_cross;
    b->ff_inner = 4 * dim;
    TRY(cdf_layernorm_load(ld, cdf_join(p, prefix, "norm1"), dim, 1e-5, 1, &b->norm1));
    TRY(attn_load(ld, cdf_join(p, prefix, "attn1"), dim, sp->only_cross ? sp->cross_dim : dim, sp->heads, sp->dim_head, &b->attn1));
    TRY(cdf_layernorm_load(ld, cdf_join(p, prefix, "norm2"), dim, 1e-5, 1, &b->norm2));
    TRY(attn_load(ld, cdf_join(p, prefix, "attn2"), dim, sp->cross_dim, sp->heads, sp->dim_head, &b->attn2));
    TRY(cdf_layernorm_load(ld, cdf_join(p, prefix, "norm3"), dim, 1e-5, 1, &b->norm3));
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "ff.net.0.proj"), dim, 2 * b->ff_inner, 1, &b->ff_proj));
    return cdf_linear_load(ld, cdf_join(p, prefix, "ff.net.2"), b->ff_inner, dim, 1, &b->ff_out);
}

cdf_status cdf_transformer2d_load(cdf_loader *ld, const char *prefix, const cdf_transformer2d_spec *sp,
                                  cdf_transformer2d *m) {
    char p[CDF_NAME_MAX];
    memset(m, 0, sizeof *m);
    m->in_channels = sp->in_channels;
    m->heads = sp->heads;
    m->dim_head = sp->dim_head;
    m->inner = sp->heads * sp->dim_head;
    m->cross_dim = sp->cross_dim;
    m->linear_proj = sp->linear_proj;
    TRY(cdf_groupnorm_load(ld, cdf_join(p, prefix, "norm"), sp->groups, sp->in_channels, 1e-6f, &m->norm));
    if (sp->linear_proj)
        TRY(cdf_linear_load(ld, cdf_join(p, prefix, "proj_in"), sp->in_channels, m->inner, 1, &m->proj_in_lin));
    else
        TRY(cdf_conv2d_load(ld, cdf_join(p, prefix, "proj_in"), sp->in_channels, m->inner, 1, 1, 0, 1, &m->proj_in_conv));
    m->blocks = cdf_calloc((size_t)sp->layers, sizeof *m->blocks);
    if (!m->blocks) return cdf_error_set(ld->err, CDF_ERR_NOMEM, "out of memory loading %s", prefix);
    m->nblocks = sp->layers;
    for (int i = 0; i < sp->layers; i++) {
        char q[32];
        snprintf(q, sizeof q, "transformer_blocks.%d", i);
        TRY(block_load(ld, cdf_join(p, prefix, q), sp, m->inner, &m->blocks[i]));
    }
    if (sp->linear_proj) return cdf_linear_load(ld, cdf_join(p, prefix, "proj_out"), m->inner, sp->in_channels, 1, &m->proj_out_lin);
    return cdf_conv2d_load(ld, cdf_join(p, prefix, "proj_out"), m->inner, sp->in_channels, 1, 1, 0, 1, &m->proj_out_conv);
}

void cdf_transformer2d_free(cdf_transformer2d *m) {
    if (m) cdf_free(m->blocks);
}

/* h [n, dim] += sublayer(norm(h)) for the three sublayers of one block. */
static cdf_status block_forward(cdf_exec *ex, const cdf_transformer_block *b, float *h, int n, const float *ctx,
                                int seq, float *nrm, float *tmp, float *ffh) {
    size_t nd = (size_t)n * b->dim;
    TRY(cdf_layernorm_forward(ex, &b->norm1, h, n, nrm));
    TRY(b->only_cross ? attn_forward(ex, &b->attn1, nrm, n, ctx, seq, tmp) : attn_forward(ex, &b->attn1, nrm, n, nrm, n, tmp));
    for (size_t i = 0; i < nd; i++) h[i] = tmp[i] + h[i];
    TRY(cdf_layernorm_forward(ex, &b->norm2, h, n, nrm));
    TRY(attn_forward(ex, &b->attn2, nrm, n, ctx, seq, tmp));
    for (size_t i = 0; i < nd; i++) h[i] = tmp[i] + h[i];
    TRY(cdf_layernorm_forward(ex, &b->norm3, h, n, nrm));
    TRY(cdf_linear_forward(ex, &b->ff_proj, nrm, n, ffh)); /* [n, 2*inner] */
    cdf_geglu(ex, ffh, n, b->ff_inner, ffh + (size_t)n * 2 * b->ff_inner); /* after the projection */
    TRY(cdf_linear_forward(ex, &b->ff_out, ffh + (size_t)n * 2 * b->ff_inner, n, tmp));
    for (size_t i = 0; i < nd; i++) h[i] = tmp[i] + h[i];
    return CDF_OK;
}

cdf_status cdf_transformer2d_forward(cdf_exec *ex, const cdf_transformer2d *m, float *x, int batch, int64_t hw,
                                     const float *ctx, int seq) {
    int c = m->in_channels, inner = m->inner, n = (int)hw;
    int ffi = m->nblocks ? m->blocks[0].ff_inner : 0;
    cdf_status s = CDF_OK;
    float *gn = cdf_buf(ex, (size_t)c * hw);                 /* [c, hw] */
    float *t1 = cdf_buf(ex, (size_t)(c > inner ? c : inner) * hw); /* [hw, max(c, inner)] */
    float *h = cdf_buf(ex, (size_t)inner * hw);              /* [hw, inner] */
    float *nrm = cdf_buf(ex, (size_t)inner * hw), *tmp = cdf_buf(ex, (size_t)inner * hw);
    float *ffh = cdf_buf(ex, (size_t)3 * ffi * hw);          /* [hw, 2*ffi] + [hw, ffi] */
    if (!gn || !t1 || !h || !nrm || !tmp || !ffh) {
        s = ex->err->status;
        goto done;
    }
    for (int b = 0; b < batch; b++) {
        float *xb = x + (size_t)b * c * hw;
        const float *cb = ctx + (size_t)b * seq * m->cross_dim;
        if ((s = cdf_groupnorm_forward(ex, &m->norm, xb, 1, hw, CDF_ACT_NONE, gn))) goto done;
        if (!m->linear_proj) {
            if ((s = cdf_conv2d_forward(ex, &m->proj_in_conv, gn, 1, 1, n, t1))) goto done; /* [inner, hw] */
            cdf_transpose(ex, t1, 1, inner, n, h);
        } else {
            cdf_transpose(ex, gn, 1, c, n, t1); /* [hw, c] */
            if ((s = cdf_linear_forward(ex, &m->proj_in_lin, t1, n, h))) goto done;
        }
        for (int i = 0; i < m->nblocks; i++)
            if ((s = block_forward(ex, &m->blocks[i], h, n, cb, seq, nrm, tmp, ffh))) goto done;
        if (!m->linear_proj) {
            cdf_transpose(ex, h, 1, n, inner, t1); /* [inner, hw] */
            if ((s = cdf_conv2d_forward(ex, &m->proj_out_conv, t1, 1, 1, n, gn))) goto done; /* [c, hw] */
        } else {
            if ((s = cdf_linear_forward(ex, &m->proj_out_lin, h, n, t1))) goto done; /* [hw, c] */
            cdf_transpose(ex, t1, 1, n, c, gn);
        }
        size_t tot = (size_t)c * hw;
        for (size_t i = 0; i < tot; i++) xb[i] = gn[i] + xb[i];
    }
done:
    cdf_aligned_free(gn);
    cdf_aligned_free(t1);
    cdf_aligned_free(h);
    cdf_aligned_free(nrm);
    cdf_aligned_free(tmp);
    cdf_aligned_free(ffh);
    return s;
}
