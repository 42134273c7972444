/* Transformer2DModel (continuous input) as the SD UNets use it:
 * GroupNorm, proj_in (1x1 conv or linear), BasicTransformerBlocks
 * (self-attention, cross-attention, GEGLU feed-forward, LayerNorm before
 * each, residual after each), proj_out, residual. */
#ifndef CDF_MODELS_TRANSFORMER2D_H
#define CDF_MODELS_TRANSFORMER2D_H

#include "models/nn.h"

/* diffusers Attention without group norm: to_q, to_k, to_v (no bias), to_out.0. */
typedef struct cdf_attention_mod {
    cdf_linear to_q;   /* query_dim -> heads*dim_head */
    cdf_linear to_k;   /* kv_dim -> heads*dim_head */
    cdf_linear to_v;   /* kv_dim -> heads*dim_head */
    cdf_linear to_out; /* heads*dim_head -> query_dim (bias) */
    int heads, dim_head, query_dim, kv_dim;
} cdf_attention_mod;

typedef struct cdf_transformer_block {
    cdf_layernorm norm1, norm2, norm3; /* [dim] each, eps 1e-5 */
    cdf_attention_mod attn1;           /* self (or cross when only_cross_attention) */
    cdf_attention_mod attn2;           /* cross-attention */
    cdf_linear ff_proj;                /* GEGLU: dim -> 2*ff_inner */
    cdf_linear ff_out;                 /* ff_inner -> dim */
    int only_cross, ff_inner, dim;
} cdf_transformer_block;

typedef struct cdf_transformer2d {
    cdf_groupnorm norm;              /* over in_channels, eps 1e-6 */
    int linear_proj;                 /* use_linear_projection */
    cdf_conv2d proj_in_conv;         /* in -> inner, 1x1 (linear_proj == 0) */
    cdf_linear proj_in_lin;          /* in -> inner (linear_proj == 1) */
    cdf_transformer_block *blocks;   /* [nblocks] */
    int nblocks;
    cdf_conv2d proj_out_conv;        /* inner -> in, 1x1 */
    cdf_linear proj_out_lin;         /* inner -> in */
    int in_channels, inner, heads, dim_head, cross_dim;
} cdf_transformer2d;

/* Geometry of one Transformer2DModel inside a UNet block. */
typedef struct cdf_transformer2d_spec {
    int in_channels, heads, dim_head, layers, cross_dim, groups;
    int linear_proj, only_cross;
} cdf_transformer2d_spec;

cdf_status cdf_transformer2d_load(cdf_loader *ld, const char *prefix, const cdf_transformer2d_spec *sp,
                                  cdf_transformer2d *m);
void cdf_transformer2d_free(cdf_transformer2d *m);
/* In place: x [batch, in_channels, hw]; ctx [batch, seq, cross_dim] (the
 * text embeddings), each image attending to its own row. */
cdf_status cdf_transformer2d_forward(cdf_exec *ex, const cdf_transformer2d *m, float *x, int batch, int64_t hw,
                                     const float *ctx, int seq);

#endif
