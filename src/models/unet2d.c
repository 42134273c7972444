#include "models/unet2d.h"

#include <math.h>
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

static int head_dim_for(const cdf_unet2d_config *c, int channels) {
    return c->attention_head_dim ? c->attention_head_dim : channels;
}

static cdf_status load_attns(cdf_loader *ld, const char *prefix, int n, int channels, const cdf_unet2d_config *c,
                             cdf_attn2d **out) {
    *out = cdf_calloc((size_t)n, sizeof **out);
    if (!*out) return cdf_error_set(ld->err, CDF_ERR_NOMEM, "out of memory loading %s", prefix);
    for (int i = 0; i < n; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s.attentions.%d", prefix, i);
        TRY(cdf_attn2d_load(ld, p, channels, head_dim_for(c, channels), c->norm_num_groups, (float)c->norm_eps, 1.0f,
                            &(*out)[i]));
    }
    return CDF_OK;
}

static cdf_status load_model(cdf_loader *ld, cdf_unet2d *m) {
    const cdf_unet2d_config *c = &m->cfg;
    float eps = (float)c->norm_eps;
    int c0 = c->block_out_channels[0], temb = c->time_embedding_dim, nb = c->num_blocks;
    TRY(cdf_conv2d_load(ld, "conv_in", c->in_channels, c0, 3, 1, 1, 1, &m->conv_in));
    if (c->time_embedding_type == CDF_TEMB_FOURIER) {
        int64_t s[1] = {c0};
        TRY(cdf_load_param(ld, "time_proj", "weight", 1, s, 0, &m->time_proj_weight));
        m->time_in_dim = 2 * c0;
    } else if (c->time_embedding_type == CDF_TEMB_LEARNED) {
        int64_t s[2] = {c->num_train_timesteps, c0};
        TRY(cdf_load_param(ld, "time_proj", "weight", 2, s, 0, &m->time_proj_weight));
        m->time_in_dim = c0;
    } else {
        m->time_in_dim = c0;
    }
    TRY(cdf_time_mlp_load(ld, "time_embedding", m->time_in_dim, temb, CDF_ACT_SILU, CDF_ACT_NONE,
                          &m->time_embedding));

    int out_ch = c0;
    for (int i = 0; i < nb; i++) {
        cdf_unet2d_down *d = &m->down[i];
        char p[64], q[192];
        snprintf(p, sizeof p, "down_blocks.%d", i);
        d->cin = out_ch;
        d->cout = out_ch = c->block_out_channels[i];
        d->nres = c->layers_per_block;
        d->resnets = cdf_calloc((size_t)d->nres, sizeof *d->resnets);
        if (!d->resnets) return cdf_error_set(ld->err, CDF_ERR_NOMEM, "out of memory loading %s", p);
        for (int r = 0; r < d->nres; r++) {
            snprintf(q, sizeof q, "%s.resnets.%d", p, r);
            TRY(cdf_resnet2d_load(ld, q, r == 0 ? d->cin : d->cout, d->cout, temb, c->norm_num_groups, eps, c->act_fn,
                                  c->scale_shift, 1.0f, 0, 0, &d->resnets[r]));
        }
        int is_attn = c->down_types[i] == CDF_BLOCK_ATTN;
        if (is_attn) TRY(load_attns(ld, p, d->nres, d->cout, c, &d->attentions));
        if (i < nb - 1) {
            snprintf(q, sizeof q, "%s.downsamplers.0", p);
            /* ResnetDownsampleBlock2D always, AttnDownBlock2D with downsample_type "resnet":
             * a ResnetBlock2D(down=True); DownBlock2D ignores downsample_type */
            if ((is_attn && c->downsample_resnet) || c->down_types[i] == CDF_BLOCK_RESNET) {
                d->down.kind = 2;
                TRY(cdf_resnet2d_load(ld, q, d->cout, d->cout, temb, c->norm_num_groups, eps, c->act_fn,
                                      c->scale_shift, 1.0f, 1, 0, &d->down.resnet));
            } else {
                char cq[256];
                snprintf(cq, sizeof cq, "%s.conv", q);
                d->down.kind = 1;
                d->down.pad = c->downsample_padding;
                TRY(cdf_conv2d_load(ld, cq, d->cout, d->cout, 3, 2, c->downsample_padding, 1, &d->down.conv));
            }
        }
    }
    int cm = c->block_out_channels[nb - 1];
    float msf = (float)c->mid_block_scale_factor;
    TRY(cdf_resnet2d_load(ld, "mid_block.resnets.0", cm, cm, temb, c->norm_num_groups, eps, c->act_fn, c->scale_shift,
                          msf, 0, 0, &m->mid_resnets[0]));
    m->mid_has_attn = c->add_attention;
    if (m->mid_has_attn) {
        int groups = c->attn_norm_num_groups ? c->attn_norm_num_groups : (c->scale_shift ? 0 : c->norm_num_groups);
        TRY(cdf_attn2d_load(ld, "mid_block.attentions.0", cm, head_dim_for(c, cm), groups, eps, msf, &m->mid_attn));
    }
    TRY(cdf_resnet2d_load(ld, "mid_block.resnets.1", cm, cm, temb, c->norm_num_groups, eps, c->act_fn, c->scale_shift,
                          msf, 0, 0, &m->mid_resnets[1]));

    int prev = cm;
    for (int i = 0; i < nb; i++) {
        cdf_unet2d_up *u = &m->up[i];
        char p[64], q[192];
        snprintf(p, sizeof p, "up_blocks.%d", i);
        int oc = c->block_out_channels[nb - 1 - i];
        int ic = c->block_out_channels[(i + 1 < nb ? nb - 2 - i : 0)];
        u->cout = oc;
        u->nres = c->layers_per_block + 1;
        u->resnets = cdf_calloc((size_t)u->nres, sizeof *u->resnets);
        if (!u->resnets) return cdf_error_set(ld->err, CDF_ERR_NOMEM, "out of memory loading %s", p);
        for (int r = 0; r < u->nres; r++) {
            int skip = r == u->nres - 1 ? ic : oc;
            int rin = r == 0 ? prev : oc;
            snprintf(q, sizeof q, "%s.resnets.%d", p, r);
            TRY(cdf_resnet2d_load(ld, q, rin + skip, oc, temb, c->norm_num_groups, eps, c->act_fn, c->scale_shift,
                                  1.0f, 0, 0, &u->resnets[r]));
        }
        int is_attn = c->up_types[i] == CDF_BLOCK_ATTN;
        if (is_attn) TRY(load_attns(ld, p, u->nres, oc, c, &u->attentions));
        if (i < nb - 1) {
            snprintf(q, sizeof q, "%s.upsamplers.0", p);
            if ((is_attn && c->upsample_resnet) || c->up_types[i] == CDF_BLOCK_RESNET) {
                u->up.kind = 2;
                TRY(cdf_resnet2d_load(ld, q, oc, oc, temb, c->norm_num_groups, eps, c->act_fn, c->scale_shift, 1.0f,
                                      0, 1, &u->up.resnet));
            } else {
                char cq[256];
                snprintf(cq, sizeof cq, "%s.conv", q);
                u->up.kind = 1;
                TRY(cdf_conv2d_load(ld, cq, oc, oc, 3, 1, 1, 1, &u->up.conv));
            }
        }
        prev = oc;
    }
    TRY(cdf_groupnorm_load(ld, "conv_norm_out", c->norm_num_groups, c0, eps, &m->conv_norm_out));
    TRY(cdf_conv2d_load(ld, "conv_out", c0, c->out_channels, 3, 1, 1, 1, &m->conv_out));
    return ld->record ? CDF_OK : cdf_weights_check_all_used(ld->w, ld->err);
}

void cdf_unet2d_free(cdf_unet2d *m) {
    if (!m) return;
    for (int i = 0; i < CDF_UNET2D_MAX_BLOCKS; i++) {
        cdf_free(m->down[i].resnets);
        cdf_free(m->down[i].attentions);
        cdf_free(m->up[i].resnets);
        cdf_free(m->up[i].attentions);
    }
    cdf_weights_close(m->weights);
    cdf_free(m);
}

static cdf_status parse_cfg(const cJSON *root, const char *path, void *cfg, cdf_error *err) {
    return cdf_unet2d_config_parse(root, path, (cdf_unet2d_config *)cfg, err);
}
static cdf_status walk_model(cdf_loader *ld, void *m) { return load_model(ld, (cdf_unet2d *)m); }
static void free_model(void *m) { cdf_unet2d_free((cdf_unet2d *)m); }

static const cdf_component_class k_unet2d_class = {"UNet2DModel", "unet",
    sizeof(cdf_unet2d), offsetof(cdf_unet2d, cfg), sizeof(cdf_unet2d_config),
    offsetof(cdf_unet2d, weights), 1, parse_cfg, walk_model, free_model};

cdf_status cdf_unet2d_load(const char *dir, const char *variant, cdf_unet2d **out, cdf_error *err) {
    void *m = NULL;
    cdf_status s = cdf_component_load(&k_unet2d_class, dir, variant, &m, err);
    *out = m;
    return s;
}

cdf_status cdf_unet2d_describe(const cdf_unet2d_config *cfg, cdf_param_record_fn fn, void *user, cdf_error *err) {
    return cdf_component_describe(&k_unet2d_class, cfg, fn, user, err);
}

cdf_status cdf_unet2d_time_proj(cdf_exec *ex, const cdf_unet2d *m, int64_t t, float *out) {
    const cdf_unet2d_config *c = &m->cfg;
    int c0 = c->block_out_channels[0];
    if (c->time_embedding_type == CDF_TEMB_POSITIONAL) {
        cdf_timestep_embedding((float)t, c0, c->flip_sin_to_cos, c->freq_shift, out);
        return CDF_OK;
    }
    const float *wt = cdf_param_f32(ex, &m->time_proj_weight, 3);
    if (!wt) return ex->err->status;
    if (c->time_embedding_type == CDF_TEMB_LEARNED) {
        if (t < 0 || t >= c->num_train_timesteps)
            return cdf_error_set(ex->err, CDF_ERR_ARG, "timestep %lld is outside the learned embedding table (0..%d)",
                                 (long long)t, c->num_train_timesteps - 1);
        memcpy(out, wt + (size_t)t * c0, sizeof(float) * (size_t)c0);
        return CDF_OK;
    }
    /* GaussianFourierProjection(log=True, flip_sin_to_cos=False): x = log(t); x*W*2*pi in float32 */
    float x = (float)log((double)t);
    float pi_f = (float)M_PI; /* np.pi as torch's float32 scalar operand */
    for (int k = 0; k < c0; k++) {
        float p = ((x * wt[k]) * 2.0f) * pi_f;
        out[k] = (float)sin((double)p);
        out[c0 + k] = (float)cos((double)p);
    }
    return CDF_OK;
}

cdf_status cdf_unet2d_forward(cdf_exec *ex, const cdf_unet2d *m, const float *sample, int batch, int h, int w,
                              int64_t t, float *out) {
    const cdf_unet2d_config *c = &m->cfg;
    cdf_status s = CDF_OK;
    int c0 = c->block_out_channels[0], nb = c->num_blocks, temb = c->time_embedding_dim;
    float *tp = NULL, *tp_b = NULL, *emb = NULL, *x_in = NULL, *cur = NULL, *tmp = NULL;
    cdf_skip_stack *st = cdf_calloc(1, sizeof *st);
    if (!st) return cdf_error_set(ex->err, CDF_ERR_NOMEM, "out of memory in UNet forward");
    int64_t hw = (int64_t)h * w;

    /* time embedding: identical rows for every image, computed per row */
    if (!(tp = cdf_buf(ex, (size_t)m->time_in_dim)) || !(tp_b = cdf_buf(ex, (size_t)batch * m->time_in_dim)) ||
        !(emb = cdf_buf(ex, (size_t)batch * temb)))
        goto oom;
    if ((s = cdf_unet2d_time_proj(ex, m, t, tp))) goto done;
    for (int b = 0; b < batch; b++) memcpy(tp_b + (size_t)b * m->time_in_dim, tp, sizeof(float) * m->time_in_dim);
    if ((s = cdf_time_mlp_forward(ex, &m->time_embedding, tp_b, batch, emb))) goto done;

    const float *xin = sample;
    if (c->center_input_sample) {
        size_t n = (size_t)batch * c->in_channels * hw;
        if (!(x_in = cdf_buf(ex, n))) goto oom;
        for (size_t i = 0; i < n; i++) x_in[i] = 2.0f * sample[i] - 1.0f;
        xin = x_in;
    }
    if (!(cur = cdf_buf(ex, (size_t)batch * c0 * hw))) goto oom;
    if ((s = cdf_conv2d_forward(ex, &m->conv_in, xin, batch, h, w, cur))) goto done;
    if ((s = cdf_skip_push(ex, st, cur, batch, c0, h, w))) goto done;

    int ch = c0;
    for (int i = 0; i < nb; i++) {
        const cdf_unet2d_down *d = &m->down[i];
        for (int r = 0; r < d->nres; r++) {
            if ((s = cdf_run_resnet(ex, &d->resnets[r], &cur, batch, &h, &w, emb))) goto done;
            ch = d->cout;
            if (d->attentions && (s = cdf_attn2d_forward(ex, &d->attentions[r], cur, batch, (int64_t)h * w))) goto done;
            if ((s = cdf_skip_push(ex, st, cur, batch, ch, h, w))) goto done;
        }
        if (d->down.kind) {
            int ho, wo;
            if ((s = cdf_downsample2d_forward(ex, &d->down, cur, batch, ch, h, w, emb, &tmp, &ho, &wo))) goto done;
            cdf_replace(&cur, tmp, &h, &w, ho, wo);
            tmp = NULL;
            if ((s = cdf_skip_push(ex, st, cur, batch, ch, h, w))) goto done;
        }
    }
    if ((s = cdf_run_resnet(ex, &m->mid_resnets[0], &cur, batch, &h, &w, emb))) goto done;
    if (m->mid_has_attn && (s = cdf_attn2d_forward(ex, &m->mid_attn, cur, batch, (int64_t)h * w))) goto done;
    if ((s = cdf_run_resnet(ex, &m->mid_resnets[1], &cur, batch, &h, &w, emb))) goto done;

    for (int i = 0; i < nb; i++) {
        const cdf_unet2d_up *u = &m->up[i];
        for (int r = 0; r < u->nres; r++) {
            int k = --st->n;
            if (st->h[k] != h || st->w[k] != w) {
                s = cdf_error_set(ex->err, CDF_ERR_SHAPE,
                                  "UNet skip connection of %dx%d does not match %dx%d: sample height and width "
                                  "must be divisible by %d",
                                  st->h[k], st->w[k], h, w, 1 << (nb - 1));
                st->n++;
                goto done;
            }
            float *cat = cdf_concat_channels(ex, cur, ch, st->buf[k], st->ch[k], batch, (int64_t)h * w);
            cdf_aligned_free(st->buf[k]);
            if (!cat) goto oom;
            cdf_aligned_free(cur);
            cur = cat;
            if ((s = cdf_run_resnet(ex, &u->resnets[r], &cur, batch, &h, &w, emb))) goto done;
            ch = u->cout;
            if (u->attentions && (s = cdf_attn2d_forward(ex, &u->attentions[r], cur, batch, (int64_t)h * w))) goto done;
        }
        if (u->up.kind) {
            int ho, wo;
            if ((s = cdf_upsample2d_forward(ex, &u->up, cur, batch, ch, h, w, emb, &tmp, &ho, &wo))) goto done;
            cdf_replace(&cur, tmp, &h, &w, ho, wo);
            tmp = NULL;
        }
    }
    if ((s = cdf_groupnorm_forward(ex, &m->conv_norm_out, cur, batch, (int64_t)h * w, CDF_ACT_SILU, cur))) goto done;
    if ((s = cdf_conv2d_forward(ex, &m->conv_out, cur, batch, h, w, out))) goto done;
    if (c->time_embedding_type == CDF_TEMB_FOURIER) {
        float tf = (float)t;
        size_t n = (size_t)batch * c->out_channels * h * w;
        for (size_t i = 0; i < n; i++) out[i] = out[i] / tf;
    }
    goto done;
oom:
    s = ex->err && ex->err->status ? ex->err->status : CDF_ERR_NOMEM;
done:
    cdf_skip_free(st);
    cdf_free(st);
    cdf_aligned_free(tp);
    cdf_aligned_free(tp_b);
    cdf_aligned_free(emb);
    cdf_aligned_free(x_in);
    cdf_aligned_free(cur);
    cdf_aligned_free(tmp);
    return s;
}
