#include "models/unet2d_cond.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "io/json.h"
#include "models/component.h"
#include "models/unet_common.h"

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

/* Where a block's attention parameters come from (see cdf_unet2d_cond_config.heads). */
typedef struct block_attn {
    cdf_transformer2d_spec sp; /* CDF_UNETC_CROSS */
    int dim_head, cross_dim, only_cross; /* CDF_UNETC_SIMPLE_CROSS */
} block_attn;

/* Resnet output scale and skip_time_act: only Resnet*sample / SimpleCrossAttn blocks get the config's. */
static int resnet_like(int type) { return type == CDF_UNETC_RESNET || type == CDF_UNETC_SIMPLE_CROSS; }

static cdf_status load_resnet(cdf_loader *ld, const char *name, const cdf_unet2d_cond_config *c, int cin, int cout,
                              float osf, int skip_time_act, int down, int up, cdf_resnet2d *r) {
    TRY(cdf_resnet2d_load(ld, name, cin, cout, c->time_embedding_dim, c->norm_num_groups, (float)c->norm_eps, c->act_fn,
                          c->scale_shift, osf, down, up, r));
    r->skip_time_act = skip_time_act;
    return CDF_OK;
}

/* Resnets (+ attentions) of one block: "<prefix>.resnets.N", "<prefix>.attentions.N". */
static cdf_status load_block_layers(cdf_loader *ld, const char *prefix, const cdf_unet2d_cond_config *c, int type,
                                    int nres, const int *res_in, int cout, const block_attn *ba, cdf_unetc_block *b) {
    char p[CDF_NAME_MAX], q[48];
    int rl = resnet_like(type);
    float osf = rl ? (float)c->resnet_out_scale_factor : 1.0f;
    b->type = type;
    b->nres = nres;
    b->cout = cout;
    b->resnets = cdf_calloc((size_t)nres, sizeof *b->resnets);
    if (!b->resnets) return cdf_error_set(ld->err, CDF_ERR_NOMEM, "out of memory loading %s", prefix);
    if (type == CDF_UNETC_CROSS && !(b->attentions = cdf_calloc((size_t)nres, sizeof *b->attentions)))
        return cdf_error_set(ld->err, CDF_ERR_NOMEM, "out of memory loading %s", prefix);
    if (type == CDF_UNETC_SIMPLE_CROSS && !(b->sattn = cdf_calloc((size_t)nres, sizeof *b->sattn)))
        return cdf_error_set(ld->err, CDF_ERR_NOMEM, "out of memory loading %s", prefix);
    for (int r = 0; r < nres; r++) {
        snprintf(q, sizeof q, "resnets.%d", r);
        TRY(load_resnet(ld, cdf_join(p, prefix, q), c, res_in[r], cout, osf, rl ? c->skip_time_act : 0, 0, 0,
                        &b->resnets[r]));
        snprintf(q, sizeof q, "attentions.%d", r);
        if (type == CDF_UNETC_CROSS) TRY(cdf_transformer2d_load(ld, cdf_join(p, prefix, q), &ba->sp, &b->attentions[r]));
        if (type == CDF_UNETC_SIMPLE_CROSS)
            TRY(cdf_simple_attn_load(ld, cdf_join(p, prefix, q), cout, ba->dim_head, ba->cross_dim, c->norm_num_groups,
                                     ba->only_cross, &b->sattn[r]));
    }
    return CDF_OK;
}

/* The block's down/up sampler "<prefix>.downsamplers.0" / "<prefix>.upsamplers.0". */
static cdf_status load_sampler(cdf_loader *ld, const char *prefix, const cdf_unet2d_cond_config *c, int down,
                               cdf_unetc_block *b) {
    char cq[CDF_NAME_MAX];
    int ch = b->cout;
    if (resnet_like(b->type)) {
        b->sample.kind = 2;
        return load_resnet(ld, cdf_join(cq, prefix, down ? "downsamplers.0" : "upsamplers.0"), c, ch, ch,
                           (float)c->resnet_out_scale_factor, c->skip_time_act, down, !down, &b->sample.resnet);
    }
    b->sample.kind = 1;
    if (down) {
        b->sample.pad = c->downsample_padding;
        return cdf_conv2d_load(ld, cdf_join(cq, prefix, "downsamplers.0.conv"), ch, ch, 3, 2, c->downsample_padding, 1,
                               &b->sample.conv);
    }
    return cdf_conv2d_load(ld, cdf_join(cq, prefix, "upsamplers.0.conv"), ch, ch, 3, 1, 1, 1, &b->sample.conv);
}

static cdf_transformer2d_spec spec_for(const cdf_unet2d_cond_config *c, int channels, int heads, int cross_dim,
                                       int layers, int only_cross) {
    cdf_transformer2d_spec sp = {channels, heads, channels / heads, layers, cross_dim, c->norm_num_groups,
                                 c->use_linear_projection, only_cross};
    return sp;
}

static cdf_status load_model(cdf_loader *ld, cdf_unet2d_cond *m) {
    const cdf_unet2d_cond_config *c = &m->cfg;
    int nb = c->num_blocks, c0 = c->block_out_channels[0], temb = c->time_embedding_dim;
    char p[CDF_NAME_MAX];
    TRY(cdf_conv2d_load(ld, "conv_in", c->in_channels, c0, c->conv_in_kernel, 1, (c->conv_in_kernel - 1) / 2, 1,
                        &m->conv_in));
    TRY(cdf_time_mlp_load(ld, "time_embedding", c0, temb, c->act_fn, c->timestep_post_act, &m->time_embedding));
    if (c->add_text_time) {
        /* TimestepEmbedding(projection_class_embeddings_input_dim, time_embed_dim): silu, no post act */
        cdf_status s = cdf_time_mlp_load(ld, "add_embedding", c->add_embed_in, temb, CDF_ACT_SILU, CDF_ACT_NONE,
                                         &m->add_embedding);
        if (s == CDF_ERR_SHAPE)
            return cdf_error_prefix(ld->err,
                                    "%s/config.json: field 'projection_class_embeddings_input_dim' = %d (pooled text "
                                    "dim + 6 x addition_time_embed_dim %d) does not fit the checkpoint",
                                    ld->what ? ld->what : "unet", c->add_embed_in, c->addition_time_embed_dim);
        if (s) return s;
    }
    int out_ch = c0, res_in[64];
    for (int i = 0; i < nb; i++) {
        cdf_unetc_block *d = &m->down[i];
        int in_ch = out_ch, n = c->layers_per_block[i];
        out_ch = c->block_out_channels[i];
        if (n > 63) return cdf_error_set(ld->err, CDF_ERR_LIMIT, "layers_per_block %d is too large", n);
        for (int r = 0; r < n; r++) res_in[r] = r == 0 ? in_ch : out_ch;
        block_attn ba = {spec_for(c, out_ch, c->heads[i], c->cross_attention_dim[i], c->transformer_layers[i],
                                  c->only_cross[i]),
                         c->heads[i], c->cross_attention_dim[i], c->only_cross[i]};
        snprintf(p, sizeof p, "down_blocks.%d", i);
        TRY(load_block_layers(ld, p, c, c->down_type[i], n, res_in, out_ch, &ba, d));
        if (i < nb - 1) TRY(load_sampler(ld, p, c, 1, d));
    }
    int cm = c->block_out_channels[nb - 1];
    if (c->has_mid) {
        float msf = (float)c->mid_block_scale_factor;
        int simple = c->mid_type == CDF_UNETC_MID_SIMPLE_CROSS, skip = simple ? c->skip_time_act : 0;
        TRY(load_resnet(ld, "mid_block.resnets.0", c, cm, cm, msf, skip, 0, 0, &m->mid_resnets[0]));
        if (simple) {
            TRY(cdf_simple_attn_load(ld, "mid_block.attentions.0", cm, c->heads[nb - 1], c->cross_attention_dim[nb - 1],
                                     c->norm_num_groups, c->mid_only_cross, &m->mid_sattn));
        } else {
            cdf_transformer2d_spec sp = spec_for(c, cm, c->heads[nb - 1], c->cross_attention_dim[nb - 1],
                                                 c->transformer_layers[nb - 1], 0);
            TRY(cdf_transformer2d_load(ld, "mid_block.attentions.0", &sp, &m->mid_attn));
        }
        TRY(load_resnet(ld, "mid_block.resnets.1", c, cm, cm, msf, skip, 0, 0, &m->mid_resnets[1]));
    }
    int prev = cm;
    for (int i = 0; i < nb; i++) {
        int k = nb - 1 - i; /* the down block this up block mirrors */
        int oc = c->block_out_channels[k];
        int ic = c->block_out_channels[k > 0 ? k - 1 : 0];
        int n = c->layers_per_block[k] + 1;
        if (n > 63) return cdf_error_set(ld->err, CDF_ERR_LIMIT, "layers_per_block %d is too large", n);
        for (int r = 0; r < n; r++) res_in[r] = (r == 0 ? prev : oc) + (r == n - 1 ? ic : oc);
        /* diffusers reverses heads, cross dims and only_cross for up blocks, but not attention_head_dim,
         * which SimpleCrossAttnUpBlock2D takes as its head dimension */
        block_attn ba = {spec_for(c, oc, c->heads[k], c->cross_attention_dim[k], c->transformer_layers[k],
                                  c->only_cross[k]),
                         c->heads[i], c->cross_attention_dim[k], c->only_cross[k]};
        snprintf(p, sizeof p, "up_blocks.%d", i);
        TRY(load_block_layers(ld, p, c, c->up_type[i], n, res_in, oc, &ba, &m->up[i]));
        if (i < nb - 1) TRY(load_sampler(ld, p, c, 0, &m->up[i]));
        prev = oc;
    }
    TRY(cdf_groupnorm_load(ld, "conv_norm_out", c->norm_num_groups, c0, (float)c->norm_eps, &m->conv_norm_out));
    TRY(cdf_conv2d_load(ld, "conv_out", c0, c->out_channels, c->conv_out_kernel, 1, (c->conv_out_kernel - 1) / 2, 1,
                        &m->conv_out));
    return ld->record ? CDF_OK : cdf_weights_check_all_used(ld->w, ld->err);
}

static void free_block(cdf_unetc_block *b) {
    if (b->attentions)
        for (int r = 0; r < b->nres; r++) cdf_transformer2d_free(&b->attentions[r]);
    cdf_free(b->attentions);
    cdf_free(b->sattn);
    cdf_free(b->resnets);
}

void cdf_unet2d_cond_free(cdf_unet2d_cond *m) {
    if (!m) return;
    for (int i = 0; i < CDF_UNETC_MAX_BLOCKS; i++) {
        free_block(&m->down[i]);
        free_block(&m->up[i]);
    }
    cdf_transformer2d_free(&m->mid_attn);
    cdf_weights_close(m->weights);
    cdf_free(m);
}

static cdf_status parse_cfg(const cJSON *root, const char *path, void *cfg, cdf_error *err) {
    return cdf_unet2d_cond_config_parse(root, path, (cdf_unet2d_cond_config *)cfg, err);
}
static cdf_status walk_model(cdf_loader *ld, void *m) { return load_model(ld, (cdf_unet2d_cond *)m); }
static void free_model(void *m) { cdf_unet2d_cond_free((cdf_unet2d_cond *)m); }

static const cdf_component_class k_unet2d_cond_class = {"UNet2DConditionModel", "unet",
    sizeof(cdf_unet2d_cond), offsetof(cdf_unet2d_cond, cfg), sizeof(cdf_unet2d_cond_config),
    offsetof(cdf_unet2d_cond, weights), 1, parse_cfg, walk_model, free_model};

cdf_status cdf_unet2d_cond_load(const char *dir, const char *variant, cdf_unet2d_cond **out, cdf_error *err) {
    void *m = NULL;
    cdf_status s = cdf_component_load(&k_unet2d_cond_class, dir, variant, &m, err);
    *out = m;
    return s;
}

cdf_status cdf_unet2d_cond_describe(const cdf_unet2d_cond_config *cfg, cdf_param_record_fn fn, void *user,
                                    cdf_error *err) {
    return cdf_component_describe(&k_unet2d_cond_class, cfg, fn, user, err);
}

/* Resnets and attentions of one block; pushes every output when down_st != NULL, pops the skips from up_st.
 * bias: [batch, seq] additive context-key bias of the SimpleCrossAttn attentions, or NULL. */
static cdf_status run_layers(cdf_exec *ex, const cdf_unetc_block *b, float **cur, int batch, int *h, int *w,
                             const float *emb, const float *ctx, int seq, const float *bias, cdf_skip_stack *down_st,
                             cdf_skip_stack *up_st) {
    for (int r = 0; r < b->nres; r++) {
        if (up_st) {
            int k = up_st->n - 1;
            if (k < 0 || up_st->h[k] != *h || up_st->w[k] != *w)
                return cdf_error_set(ex->err, CDF_ERR_SHAPE, "UNet skip connection does not match a %dx%d feature map",
                                     *h, *w);
            float *cat = cdf_concat_channels(ex, *cur, b->resnets[r].cin - up_st->ch[k], up_st->buf[k], up_st->ch[k],
                                             batch, (int64_t)*h * *w);
            if (!cat) return ex->err->status;
            cdf_aligned_free(up_st->buf[k]);
            up_st->n--;
            cdf_replace(cur, cat, h, w, *h, *w);
        }
        TRY(cdf_run_resnet(ex, &b->resnets[r], cur, batch, h, w, emb));
        if (b->attentions) TRY(cdf_transformer2d_forward(ex, &b->attentions[r], *cur, batch, (int64_t)*h * *w, ctx, seq));
        if (b->sattn) TRY(cdf_simple_attn_forward(ex, &b->sattn[r], *cur, batch, (int64_t)*h * *w, ctx, seq, bias));
        if (down_st) TRY(cdf_skip_push(ex, down_st, *cur, batch, b->cout, *h, *w));
    }
    return CDF_OK;
}

/* Any Transformer2DModel (CrossAttn) block: those take no mask here. */
static int has_transformer(const cdf_unet2d_cond_config *c) {
    if (c->mid_type == CDF_UNETC_MID_CROSS) return 1;
    for (int i = 0; i < c->num_blocks; i++)
        if (c->down_type[i] == CDF_UNETC_CROSS || c->up_type[i] == CDF_UNETC_CROSS) return 1;
    return 0;
}

cdf_status cdf_unet2d_cond_forward(cdf_exec *ex, const cdf_unet2d_cond *m, const float *sample, int batch, int h,
                                   int w, double t, const float *ctx, int seq, float *out) {
    return cdf_unet2d_cond_forward_ext(ex, m, sample, batch, h, w, t, ctx, seq, NULL, out);
}

static cdf_status forward_impl(cdf_exec *ex, const cdf_unet2d_cond *m, const float *sample, int batch, int h, int w,
                               double t, const float *ctx, int seq, const float *text_embeds, const float *time_ids,
                               const cdf_unetc_extra *extra, float *out);

int cdf_unet2d_cond_pooled_dim(const cdf_unet2d_cond *m) {
    return m && m->cfg.add_text_time ? m->cfg.add_embed_in - 6 * m->cfg.addition_time_embed_dim : 0;
}

cdf_status cdf_unet2d_cond_add_embeds(const cdf_unet2d_cond *m, const float *text_embeds, const float *time_ids,
                                      int batch, float *out, cdf_error *err) {
    if (!m || !m->cfg.add_text_time)
        return cdf_error_set(err, CDF_ERR_ARG, "UNet2DConditionModel: add_embeds needs addition_embed_type \"text_time\"");
    if (!text_embeds || !time_ids || !out || batch < 0)
        return cdf_error_set(err, CDF_ERR_ARG, "UNet2DConditionModel: add_embeds needs text_embeds, time_ids and out");
    const cdf_unet2d_cond_config *c = &m->cfg;
    int pooled = cdf_unet2d_cond_pooled_dim(m), d = c->addition_time_embed_dim, row = c->add_embed_in;
    for (int b = 0; b < batch; b++) {
        float *o = out + (size_t)b * row;
        for (int k = 0; k < pooled; k++) o[k] = text_embeds[(size_t)b * pooled + k];
        /* add_time_proj(time_ids.flatten()).reshape(rows, -1): one sinusoid of D per id, in id order */
        for (int j = 0; j < 6; j++)
            cdf_timestep_embedding(time_ids[(size_t)b * 6 + j], d, c->flip_sin_to_cos, c->freq_shift,
                                   o + pooled + (size_t)j * d);
    }
    return CDF_OK;
}

cdf_status cdf_unet2d_cond_forward_ext(cdf_exec *ex, const cdf_unet2d_cond *m, const float *sample, int batch, int h,
                                       int w, double t, const float *ctx, int seq, const cdf_unetc_extra *extra,
                                       float *out) {
    return forward_impl(ex, m, sample, batch, h, w, t, ctx, seq, NULL, NULL, extra, out);
}

cdf_status cdf_unet2d_cond_forward_added(cdf_exec *ex, const cdf_unet2d_cond *m, const float *sample, int batch, int h,
                                         int w, double t, const float *ctx, int seq, const float *text_embeds,
                                         const float *time_ids, float *out) {
    return forward_impl(ex, m, sample, batch, h, w, t, ctx, seq, text_embeds, time_ids, NULL, out);
}

/* The forward pass: extra, text_embeds and time_ids each optional (see the header). */
static cdf_status forward_impl(cdf_exec *ex, const cdf_unet2d_cond *m, const float *sample, int batch, int h, int w,
                               double t, const float *ctx, int seq, const float *text_embeds, const float *time_ids,
                               const cdf_unetc_extra *extra, float *out) {
    const cdf_unet2d_cond_config *c = &m->cfg;
    int nb = c->num_blocks, c0 = c->block_out_channels[0], temb = c->time_embedding_dim;
    const float *labels = extra ? extra->class_labels : NULL, *mask = extra ? extra->encoder_mask : NULL;
    if (c->class_embed_identity && !labels)
        return cdf_error_set(ex->err, CDF_ERR_ARG,
                             "UNet2DConditionModel: class_embed_type \"identity\" needs class_labels [batch, %d]", temb);
    if (c->add_text_time && (!text_embeds || !time_ids))
        return cdf_error_set(ex->err, CDF_ERR_ARG,
                             "UNet2DConditionModel: addition_embed_type \"text_time\" needs text_embeds [batch, %d] "
                             "and time_ids [batch, 6] (added_cond_kwargs); got %s",
                             cdf_unet2d_cond_pooled_dim(m),
                             !text_embeds && !time_ids ? "neither" : !text_embeds ? "no text_embeds" : "no time_ids");
    if (!c->add_text_time && (text_embeds || time_ids))
        return cdf_error_set(ex->err, CDF_ERR_ARG,
                             "UNet2DConditionModel: text_embeds/time_ids given but addition_embed_type is not "
                             "\"text_time\"");
    if (mask && has_transformer(c))
        return cdf_error_set(ex->err, CDF_ERR_UNSUPPORTED,
                             "UNet2DConditionModel: an encoder attention mask is only supported with SimpleCrossAttn "
                             "blocks, not with CrossAttn (Transformer2DModel) blocks");
    cdf_status s = CDF_OK;
    float *tp = NULL, *emb = NULL, *xin = NULL, *cur = NULL, *tmp = NULL, *bias = NULL;
    cdf_skip_stack *st = cdf_calloc(1, sizeof *st);
    if (!st) return cdf_error_set(ex->err, CDF_ERR_NOMEM, "out of memory in UNet forward");
    if (!(tp = cdf_buf(ex, (size_t)batch * c0)) || !(emb = cdf_buf(ex, (size_t)batch * temb))) goto oom;
    for (int b = 0; b < batch; b++) cdf_timestep_embedding((float)t, c0, c->flip_sin_to_cos, c->freq_shift, tp + (size_t)b * c0);
    if ((s = cdf_time_mlp_forward(ex, &m->time_embedding, tp, batch, emb))) goto done;
    if (c->class_embed_identity) {
        /* emb = emb + class_embedding(class_labels), nn.Identity, float32 */
        size_t ne = (size_t)batch * temb;
        for (size_t i = 0; i < ne; i++) emb[i] = emb[i] + labels[i];
    }
    if (c->add_text_time) {
        /* emb = emb + add_embedding(cat(text_embeds, add_time_proj(time_ids))), float32 */
        float *ae = cdf_buf(ex, (size_t)batch * c->add_embed_in), *aug = ae ? cdf_buf(ex, (size_t)batch * temb) : NULL;
        if (!aug) {
            cdf_aligned_free(ae);
            goto oom;
        }
        s = cdf_unet2d_cond_add_embeds(m, text_embeds, time_ids, batch, ae, ex->err);
        if (!s) s = cdf_time_mlp_forward(ex, &m->add_embedding, ae, batch, aug);
        if (!s)
            for (size_t i = 0, ne = (size_t)batch * temb; i < ne; i++) emb[i] = emb[i] + aug[i];
        cdf_aligned_free(ae);
        cdf_aligned_free(aug);
        if (s) goto done;
    }
    cdf_activate(ex, emb, (size_t)batch * temb, (cdf_act)c->time_embedding_act);
    if (mask) {
        /* (1 - mask.to(float32)) * -10000.0, per image [seq] (the attention pads it for the spatial keys) */
        size_t nm = (size_t)batch * (seq > 0 ? seq : 0);
        if (!(bias = cdf_buf(ex, nm ? nm : 1))) goto oom;
        for (size_t i = 0; i < nm; i++) bias[i] = (1.0f - mask[i]) * -10000.0f;
    }
    const float *x0 = sample;
    if (c->center_input_sample) {
        size_t n = (size_t)batch * c->in_channels * h * w;
        if (!(xin = cdf_buf(ex, n))) goto oom;
        for (size_t i = 0; i < n; i++) xin[i] = 2.0f * sample[i] - 1.0f;
        x0 = xin;
    }
    /* diffusers forwards the skip sizes to the upsamplers when h or w is not a multiple of 2^(blocks-1)
     * (conv upsamplers only: ResnetBlock2D(up=True) ignores it, and the next skip then does not fit) */
    int fwd_size = (h % (1 << (nb - 1))) || (w % (1 << (nb - 1)));
    if (!(cur = cdf_buf(ex, (size_t)batch * c0 * h * w))) goto oom;
    if ((s = cdf_conv2d_forward(ex, &m->conv_in, x0, batch, h, w, cur))) goto done;
    if ((s = cdf_skip_push(ex, st, cur, batch, c0, h, w))) goto done;
    for (int i = 0; i < nb; i++) {
        const cdf_unetc_block *d = &m->down[i];
        if ((s = run_layers(ex, d, &cur, batch, &h, &w, emb, ctx, seq, bias, st, NULL))) goto done;
        if (d->sample.kind) {
            int ho, wo;
            if ((s = cdf_downsample2d_forward(ex, &d->sample, cur, batch, d->cout, h, w, emb, &tmp, &ho, &wo))) goto done;
            cdf_replace(&cur, tmp, &h, &w, ho, wo);
            tmp = NULL;
            if ((s = cdf_skip_push(ex, st, cur, batch, d->cout, h, w))) goto done;
        }
    }
    int ch = c->block_out_channels[nb - 1];
    if (c->has_mid) {
        if ((s = cdf_run_resnet(ex, &m->mid_resnets[0], &cur, batch, &h, &w, emb))) goto done;
        if (c->mid_type == CDF_UNETC_MID_SIMPLE_CROSS)
            s = cdf_simple_attn_forward(ex, &m->mid_sattn, cur, batch, (int64_t)h * w, ctx, seq, bias);
        else
            s = cdf_transformer2d_forward(ex, &m->mid_attn, cur, batch, (int64_t)h * w, ctx, seq);
        if (s) goto done;
        if ((s = cdf_run_resnet(ex, &m->mid_resnets[1], &cur, batch, &h, &w, emb))) goto done;
    }
    for (int i = 0; i < nb; i++) {
        const cdf_unetc_block *u = &m->up[i];
        if ((s = run_layers(ex, u, &cur, batch, &h, &w, emb, ctx, seq, bias, NULL, st))) goto done;
        ch = u->cout;
        if (u->sample.kind == 2) {
            int ho, wo;
            if ((s = cdf_upsample2d_forward(ex, &u->sample, cur, batch, ch, h, w, emb, &tmp, &ho, &wo))) goto done;
            cdf_replace(&cur, tmp, &h, &w, ho, wo);
            tmp = NULL;
        } else if (u->sample.kind) {
            int oh = 2 * h, ow = 2 * w;
            if (fwd_size && st->n > 0) {
                oh = st->h[st->n - 1];
                ow = st->w[st->n - 1];
            }
            float *up = cdf_buf(ex, (size_t)batch * ch * oh * ow);
            if (!up) goto oom;
            cdf_upsample_nearest(ex, cur, batch, ch, h, w, oh, ow, up);
            cdf_replace(&cur, up, &h, &w, oh, ow);
            if (!(tmp = cdf_buf(ex, (size_t)batch * ch * oh * ow))) goto oom;
            if ((s = cdf_conv2d_forward(ex, &u->sample.conv, cur, batch, h, w, tmp))) goto done;
            cdf_replace(&cur, tmp, &h, &w, h, w);
            tmp = NULL;
        }
    }
    if ((s = cdf_groupnorm_forward(ex, &m->conv_norm_out, cur, batch, (int64_t)h * w, (cdf_act)c->act_fn, cur))) goto done;
    s = cdf_conv2d_forward(ex, &m->conv_out, cur, batch, h, w, out);
    goto done;
oom:
    s = ex->err && ex->err->status ? ex->err->status : CDF_ERR_NOMEM;
done:
    cdf_skip_free(st);
    cdf_free(st);
    cdf_aligned_free(tp);
    cdf_aligned_free(emb);
    cdf_aligned_free(xin);
    cdf_aligned_free(cur);
    cdf_aligned_free(tmp);
    cdf_aligned_free(bias);
    return s;
}
