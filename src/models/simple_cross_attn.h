/* The attention of diffusers' SimpleCrossAttn blocks (UnCLIP / Karlo
 * decoder): Attention(query_dim=C, cross_attention_dim=C, heads=C // dim_head,
 * dim_head, added_kv_proj_dim=cross, norm_num_groups, bias=True,
 * upcast_softmax=True, only_cross_attention) run by AttnAddedKVProcessor:
 * group-norm the spatial tokens, queries from them, keys/values =
 * [add_k/add_v_proj(context) (seq tokens); to_k/to_v(spatial) (HW tokens)]
 * (context only when only_cross), baddbmm(mask, q, k^T, alpha=dim_head^-0.5),
 * softmax, to_out.0, plus the residual. */
#ifndef CDF_MODELS_SIMPLE_CROSS_ATTN_H
#define CDF_MODELS_SIMPLE_CROSS_ATTN_H

#include "models/nn.h"

typedef struct cdf_simple_attn {
    cdf_groupnorm group_norm;  /* [channels], eps 1e-5 (Attention's default) */
    cdf_linear to_q;           /* channels -> inner */
    cdf_linear to_k, to_v;     /* channels -> inner; absent when only_cross */
    cdf_linear add_k_proj;     /* cross_dim -> inner */
    cdf_linear add_v_proj;     /* cross_dim -> inner */
    cdf_linear to_out;         /* inner -> channels ("to_out.0") */
    int channels, heads, dim_head, inner, cross_dim, only_cross;
} cdf_simple_attn;

/* Loads "<prefix>.group_norm", ".to_q", ... for `channels` spatial channels,
 * heads = channels / dim_head (floor, as diffusers), context width
 * cross_dim.  Weights stay views of the loader's files (nothing to free). */
cdf_status cdf_simple_attn_load(cdf_loader *ld, const char *prefix, int channels, int dim_head, int cross_dim,
                                int groups, int only_cross, cdf_simple_attn *m);

/* In place: x [batch, channels, hw] += attention output.  ctx: [batch, seq,
 * cross_dim].  bias: additive key bias [batch, seq] for the context tokens
 * (the UNet's (1 - mask) * -10000), or NULL; diffusers' prepare_attention_mask
 * pads it with hw zeros for the spatial keys (no padding when seq == hw).  A
 * padded bias whose length does not match the keys (only_cross, or seq == hw)
 * is the shape error diffusers raises there.  All borrowed. */
cdf_status cdf_simple_attn_forward(cdf_exec *ex, const cdf_simple_attn *m, float *x, int batch, int64_t hw,
                                   const float *ctx, int seq, const float *bias);

#endif
