#include "models/simple_cross_attn.h"

#include <math.h>
#include <string.h>

#include "models/blocks2d.h"
#include "tensor/attention.h"

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

cdf_status cdf_simple_attn_load(cdf_loader *ld, const char *prefix, int channels, int dim_head, int cross_dim,
                                int groups, int only_cross, cdf_simple_attn *m) {
    char p[CDF_NAME_MAX];
    memset(m, 0, sizeof *m);
    if (dim_head < 1 || channels / dim_head < 1)
        return cdf_error_set(ld->err, CDF_ERR_CONFIG, "%s: %s: attention_head_dim %d exceeds %d channels", ld->what,
                             prefix, dim_head, channels);
    m->channels = channels;
    m->dim_head = dim_head;
    m->heads = channels / dim_head;
    m->inner = m->heads * dim_head;
    m->cross_dim = cross_dim;
    m->only_cross = only_cross;
    TRY(cdf_groupnorm_load(ld, cdf_join(p, prefix, "group_norm"), groups, channels, 1e-5f, &m->group_norm));
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "to_q"), channels, m->inner, 1, &m->to_q));
    if (!only_cross) {
        TRY(cdf_linear_load(ld, cdf_join(p, prefix, "to_k"), channels, m->inner, 1, &m->to_k));
        TRY(cdf_linear_load(ld, cdf_join(p, prefix, "to_v"), channels, m->inner, 1, &m->to_v));
    }
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "add_k_proj"), cross_dim, m->inner, 1, &m->add_k_proj));
    TRY(cdf_linear_load(ld, cdf_join(p, prefix, "add_v_proj"), cross_dim, m->inner, 1, &m->add_v_proj));
    return cdf_linear_load(ld, cdf_join(p, prefix, "to_out.0"), m->inner, channels, 1, &m->to_out);
}

cdf_status cdf_simple_attn_forward(cdf_exec *ex, const cdf_simple_attn *m, float *x, int batch, int64_t hw,
                                   const float *ctx, int seq, const float *bias) {
    int c = m->channels, inner = m->inner, n = (int)hw;
    if (hw < 1 || hw > (1 << 28) || seq < 1 || !ctx)
        return cdf_error_set(ex->err, CDF_ERR_ARG,
                             "SimpleCrossAttn attention needs a context and a non-empty feature map (seq %d, hw %lld)",
                             seq, (long long)hw);
    int nkv = m->only_cross ? seq : seq + n; /* keys: [context; spatial] */
    /* prepare_attention_mask pads the [seq] bias by target_length = hw zeros, unless seq == hw already */
    int blen = seq != n ? seq + n : seq;
    if (bias && blen != nkv && blen != 1)
        return cdf_error_set(ex->err, CDF_ERR_SHAPE,
                             "SimpleCrossAttn attention: the padded mask has %d entries for %d keys (%d context "
                             "tokens, %d spatial%s); diffusers cannot broadcast it either",
                             blen, nkv, seq, n, m->only_cross ? ", only_cross_attention" : "");
    cdf_status s = CDF_OK;
    float *gn = NULL, *ht = NULL, *q = NULL, *k = NULL, *v = NULL, *o = NULL, *proj = NULL, *brow = NULL;
    if (!(gn = cdf_buf(ex, (size_t)c * hw)) ||            /* [c, hw] */
        !(ht = cdf_buf(ex, (size_t)c * hw)) ||            /* [hw, c] */
        !(q = cdf_buf(ex, (size_t)inner * hw)) ||         /* [hw, inner] */
        !(k = cdf_buf(ex, (size_t)inner * nkv)) ||        /* [seq (+ hw), inner] */
        !(v = cdf_buf(ex, (size_t)inner * nkv)) ||        /* [seq (+ hw), inner] */
        !(o = cdf_buf(ex, (size_t)inner * hw)) ||         /* [hw, inner] */
        !(proj = cdf_buf(ex, (size_t)c * hw)) ||          /* [hw, c] */
        (bias && !(brow = cdf_buf(ex, (size_t)nkv)))) {   /* [nkv] */
        s = ex->err->status;
        goto done;
    }
    /* torch multiplies the q.k^T product by the float32 scale dim_head**-0.5 (baddbmm alpha) */
    float scale = (float)pow((double)m->dim_head, -0.5);
    for (int b = 0; b < batch; b++) {
        float *xb = x + (size_t)b * c * hw; /* [c, hw] */
        const float *cb = ctx + (size_t)b * seq * m->cross_dim; /* [seq, cross] */
        if ((s = cdf_groupnorm_forward(ex, &m->group_norm, xb, 1, hw, CDF_ACT_NONE, gn))) goto done;
        cdf_transpose(ex, gn, 1, c, n, ht);
        if ((s = cdf_linear_forward(ex, &m->to_q, ht, n, q))) goto done;
        if ((s = cdf_linear_forward(ex, &m->add_k_proj, cb, seq, k))) goto done;
        if ((s = cdf_linear_forward(ex, &m->add_v_proj, cb, seq, v))) goto done;
        if (!m->only_cross) {
            if ((s = cdf_linear_forward(ex, &m->to_k, ht, n, k + (size_t)seq * inner))) goto done;
            if ((s = cdf_linear_forward(ex, &m->to_v, ht, n, v + (size_t)seq * inner))) goto done;
        }
        if (brow) {
            const float *bb = bias + (size_t)b * seq;
            if (blen == 1 && nkv > 1) {
                for (int j = 0; j < nkv; j++) brow[j] = bb[0];
            } else {
                for (int j = 0; j < nkv; j++) brow[j] = j < seq ? bb[j] : 0.0f;
            }
        }
        if ((s = brow ? cdf_attention_masked(ex, q, inner, k, inner, v, inner, o, inner, n, nkv, m->heads, m->dim_head,
                                             scale, brow, 0)
                      : cdf_attention(ex, q, inner, k, inner, v, inner, o, inner, n, nkv, m->heads, m->dim_head, scale,
                                      0)))
            goto done;
        if ((s = cdf_linear_forward(ex, &m->to_out, o, n, proj))) goto done; /* [hw, c] */
        cdf_transpose(ex, proj, 1, n, c, gn);                                   /* gn: [c, hw] */
        int64_t tot = (int64_t)c * hw;
#pragma omp parallel for num_threads(cdf_exec_threads_for(ex, (double)tot)) schedule(static)
        for (int64_t i = 0; i < tot; i++) xb[i] = gn[i] + xb[i];
    }
done:
    cdf_aligned_free(gn);
    cdf_aligned_free(ht);
    cdf_aligned_free(q);
    cdf_aligned_free(k);
    cdf_aligned_free(v);
    cdf_aligned_free(o);
    cdf_aligned_free(proj);
    cdf_aligned_free(brow);
    return s;
}
