/* AutoencoderKL: loading by checkpoint names and the encoder / decoder
 * forward passes, one image at a time. */
#include "models/vae.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "io/json.h"
#include "models/component.h"
#include "models/blocks2d.h"

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

/* diffusers builds every VAE norm (resnets, attention, conv_norm_out) with eps 1e-6. */
#define VAE_EPS 1e-6f

/* UNetMidBlock2D without time embedding: resnet, optional attention, resnet. */
typedef struct vae_mid {
    cdf_resnet2d res[2];  /* c -> c */
    cdf_attn2d attn;      /* one head of width c, group norm, residual */
    int has_attn;
} vae_mid;

/* DownEncoderBlock2D (encoder) or UpDecoderBlock2D (decoder). */
typedef struct vae_block {
    int nres;
    cdf_resnet2d *resnets;   /* [nres] */
    cdf_resample2d resample; /* kind 0 when absent (last block) */
    int cin, cout;
} vae_block;

struct cdf_vae {
    cdf_vae_config cfg;
    cdf_weights *weights;         /* owned: the mapped files */
    /* encoder */
    cdf_conv2d enc_conv_in;       /* in_channels -> C[0] */
    vae_block enc_down[CDF_VAE_MAX_BLOCKS];
    vae_mid enc_mid;              /* C[n-1] */
    cdf_groupnorm enc_norm_out;   /* C[n-1] */
    cdf_conv2d enc_conv_out;      /* C[n-1] -> 2 * latent_channels */
    cdf_conv2d quant_conv;        /* 2lc -> 2lc, 1x1; absent unless use_quant_conv */
    /* decoder */
    cdf_conv2d post_quant_conv;   /* lc -> lc, 1x1; absent unless use_post_quant_conv */
    cdf_conv2d dec_conv_in;       /* latent_channels -> C[n-1] */
    vae_mid dec_mid;              /* C[n-1] */
    vae_block dec_up[CDF_VAE_MAX_BLOCKS];
    cdf_groupnorm dec_norm_out;   /* C[0] */
    cdf_conv2d dec_conv_out;      /* C[0] -> out_channels */
};

/* ---------------------------------------------------------------- loading */

static cdf_status load_mid(cdf_loader *ld, const char *prefix, const cdf_vae_config *c, int ch, vae_mid *m) {
    char p[256];
    for (int r = 0; r < 2; r++) {
        snprintf(p, sizeof p, "%s.resnets.%d", prefix, r);
        TRY(cdf_resnet2d_load(ld, p, ch, ch, 0, c->norm_num_groups, VAE_EPS, c->act_fn, 0, 1.0f, 0, 0, &m->res[r]));
        if (r == 0 && c->mid_block_add_attention) {
            /* attn_groups = resnet_groups ("default" time scale shift); heads = ch / ch = 1 */
            snprintf(p, sizeof p, "%s.attentions.0", prefix);
            TRY(cdf_attn2d_load(ld, p, ch, ch, c->norm_num_groups, VAE_EPS, 1.0f, &m->attn));
            m->has_attn = 1;
        }
    }
    return CDF_OK;
}

static cdf_status load_block(cdf_loader *ld, const char *prefix, const cdf_vae_config *c, int cin, int cout,
                             int nres, int down, int resample, vae_block *b) {
    char p[256];
    b->cin = cin;
    b->cout = cout;
    b->nres = nres;
    b->resnets = cdf_calloc((size_t)nres, sizeof *b->resnets);
    if (!b->resnets) return cdf_error_set(ld->err, CDF_ERR_NOMEM, "out of memory loading %s", prefix);
    for (int r = 0; r < nres; r++) {
        snprintf(p, sizeof p, "%s.resnets.%d", prefix, r);
        TRY(cdf_resnet2d_load(ld, p, r == 0 ? cin : cout, cout, 0, c->norm_num_groups, VAE_EPS, c->act_fn, 0, 1.0f, 0,
                              0, &b->resnets[r]));
    }
    if (!resample) return CDF_OK;
    b->resample.kind = 1;
    if (down) {
        /* Downsample2D(padding=0): pad (0, 1, 0, 1), then 3x3 stride 2 */
        snprintf(p, sizeof p, "%s.downsamplers.0.conv", prefix);
        b->resample.pad = 0;
        return cdf_conv2d_load(ld, p, cout, cout, 3, 2, 0, 1, &b->resample.conv);
    }
    snprintf(p, sizeof p, "%s.upsamplers.0.conv", prefix);
    return cdf_conv2d_load(ld, p, cout, cout, 3, 1, 1, 1, &b->resample.conv);
}

static cdf_status load_model(cdf_loader *ld, cdf_vae *m) {
    const cdf_vae_config *c = &m->cfg;
    int nb = c->num_blocks, lc = c->latent_channels;
    const int *boc = c->block_out_channels;
    int clast = boc[nb - 1];
    char p[64];

    TRY(cdf_conv2d_load(ld, "encoder.conv_in", c->in_channels, boc[0], 3, 1, 1, 1, &m->enc_conv_in));
    int ch = boc[0];
    for (int i = 0; i < nb; i++) {
        snprintf(p, sizeof p, "encoder.down_blocks.%d", i);
        TRY(load_block(ld, p, c, ch, boc[i], c->layers_per_block, 1, i < nb - 1, &m->enc_down[i]));
        ch = boc[i];
    }
    TRY(load_mid(ld, "encoder.mid_block", c, clast, &m->enc_mid));
    TRY(cdf_groupnorm_load(ld, "encoder.conv_norm_out", c->norm_num_groups, clast, VAE_EPS, &m->enc_norm_out));
    TRY(cdf_conv2d_load(ld, "encoder.conv_out", clast, 2 * lc, 3, 1, 1, 1, &m->enc_conv_out));

    TRY(cdf_conv2d_load(ld, "decoder.conv_in", lc, clast, 3, 1, 1, 1, &m->dec_conv_in));
    TRY(load_mid(ld, "decoder.mid_block", c, clast, &m->dec_mid));
    ch = clast;
    for (int i = 0; i < nb; i++) {
        int oc = boc[nb - 1 - i];
        snprintf(p, sizeof p, "decoder.up_blocks.%d", i);
        TRY(load_block(ld, p, c, ch, oc, c->layers_per_block + 1, 0, i < nb - 1, &m->dec_up[i]));
        ch = oc;
    }
    TRY(cdf_groupnorm_load(ld, "decoder.conv_norm_out", c->norm_num_groups, boc[0], VAE_EPS, &m->dec_norm_out));
    TRY(cdf_conv2d_load(ld, "decoder.conv_out", boc[0], c->out_channels, 3, 1, 1, 1, &m->dec_conv_out));

    if (c->use_quant_conv) TRY(cdf_conv2d_load(ld, "quant_conv", 2 * lc, 2 * lc, 1, 1, 0, 1, &m->quant_conv));
    if (c->use_post_quant_conv)
        TRY(cdf_conv2d_load(ld, "post_quant_conv", lc, lc, 1, 1, 0, 1, &m->post_quant_conv));
    return ld->record ? CDF_OK : cdf_weights_check_all_used(ld->w, ld->err);
}

void cdf_vae_free(cdf_vae *m) {
    if (!m) return;
    for (int i = 0; i < CDF_VAE_MAX_BLOCKS; i++) {
        cdf_free(m->enc_down[i].resnets);
        cdf_free(m->dec_up[i].resnets);
    }
    cdf_weights_close(m->weights);
    cdf_free(m);
}

static cdf_status parse_cfg(const cJSON *root, const char *path, void *cfg, cdf_error *err) {
    return cdf_vae_config_parse(root, path, (cdf_vae_config *)cfg, err);
}
static cdf_status walk_model(cdf_loader *ld, void *m) { return load_model(ld, (cdf_vae *)m); }
static void free_model(void *m) { cdf_vae_free((cdf_vae *)m); }

static const cdf_component_class k_vae_class = {"AutoencoderKL", "vae",
    sizeof(cdf_vae), offsetof(cdf_vae, cfg), sizeof(cdf_vae_config),
    offsetof(cdf_vae, weights), 1, parse_cfg, walk_model, free_model};

cdf_status cdf_vae_load(const char *dir, const char *variant, cdf_vae **out, cdf_error *err) {
    void *m = NULL;
    cdf_status s = cdf_component_load(&k_vae_class, dir, variant, &m, err);
    *out = m;
    return s;
}

cdf_status cdf_vae_describe(const cdf_vae_config *cfg, cdf_param_record_fn fn, void *user, cdf_error *err) {
    return cdf_component_describe(&k_vae_class, cfg, fn, user, err);
}

const cdf_vae_config *cdf_vae_get_config(const cdf_vae *m) { return &m->cfg; }
float cdf_vae_scaling_factor(const cdf_vae *m) { return (float)m->cfg.scaling_factor; }
int cdf_vae_latent_channels(const cdf_vae *m) { return m->cfg.latent_channels; }
int cdf_vae_scale_factor(const cdf_vae *m) { return 1 << (m->cfg.num_blocks - 1); }
int cdf_vae_out_channels(const cdf_vae *m) { return m->cfg.out_channels; }
int cdf_vae_in_channels(const cdf_vae *m) { return m->cfg.in_channels; }

/* ---------------------------------------------------------------- forward */

static cdf_status status_of(cdf_exec *ex) { return ex->err && ex->err->status ? ex->err->status : CDF_ERR_NOMEM; }

static cdf_status check_interrupt(cdf_exec *ex, const char *where) {
    if (ex->interrupt && *ex->interrupt)
        return cdf_error_set(ex->err, CDF_ERR_INTERRUPTED, "VAE %s interrupted", where);
    return CDF_OK;
}

/* Replaces *cur [1, cin, h, w] by resnet(*cur) [1, cout, h, w]. */
static cdf_status run_resnet(cdf_exec *ex, const cdf_resnet2d *r, float **cur, int h, int w) {
    float *y = NULL;
    int ho, wo;
    TRY(cdf_resnet2d_forward(ex, r, *cur, 1, h, w, NULL, &y, &ho, &wo));
    cdf_aligned_free(*cur);
    *cur = y;
    return CDF_OK;
}

/* *cur: [1, c, h, w] -> mid block -> same shape. */
static cdf_status run_mid(cdf_exec *ex, const vae_mid *m, float **cur, int h, int w) {
    TRY(run_resnet(ex, &m->res[0], cur, h, w));
    if (m->has_attn) TRY(cdf_attn2d_forward(ex, &m->attn, *cur, 1, (int64_t)h * w));
    return run_resnet(ex, &m->res[1], cur, h, w);
}

/* *cur: [1, b->cin, *h, *w] -> [1, b->cout, h', w'] (h, w updated). */
static cdf_status run_block(cdf_exec *ex, const vae_block *b, int down, float **cur, int *h, int *w) {
    for (int r = 0; r < b->nres; r++) TRY(run_resnet(ex, &b->resnets[r], cur, *h, *w));
    if (!b->resample.kind) return CDF_OK;
    float *y = NULL;
    int ho, wo;
    if (down)
        TRY(cdf_downsample2d_forward(ex, &b->resample, *cur, 1, b->cout, *h, *w, NULL, &y, &ho, &wo));
    else
        TRY(cdf_upsample2d_forward(ex, &b->resample, *cur, 1, b->cout, *h, *w, NULL, &y, &ho, &wo));
    cdf_aligned_free(*cur);
    *cur = y;
    *h = ho;
    *w = wo;
    return CDF_OK;
}

/* One image: z [lc, h, w] -> out [out_channels, h*f, w*f]. */
static cdf_status decode_one(cdf_exec *ex, const cdf_vae *m, const float *z, int h, int w, float *out) {
    const cdf_vae_config *c = &m->cfg;
    int nb = c->num_blocks, lc = c->latent_channels, clast = c->block_out_channels[nb - 1];
    cdf_status s = CDF_OK;
    float *zq = NULL, *cur = NULL;
    const float *zin = z;
    if (c->use_post_quant_conv) {
        if (!(zq = cdf_buf(ex, (size_t)lc * h * w))) return status_of(ex);
        if ((s = cdf_conv2d_forward(ex, &m->post_quant_conv, z, 1, h, w, zq))) goto done;
        zin = zq;
    }
    if (!(cur = cdf_buf(ex, (size_t)clast * h * w))) goto oom;
    if ((s = cdf_conv2d_forward(ex, &m->dec_conv_in, zin, 1, h, w, cur))) goto done;
    cdf_aligned_free(zq);
    zq = NULL;
    if ((s = run_mid(ex, &m->dec_mid, &cur, h, w))) goto done;
    for (int i = 0; i < nb; i++) {
        if ((s = check_interrupt(ex, "decode"))) goto done;
        if ((s = run_block(ex, &m->dec_up[i], 0, &cur, &h, &w))) goto done;
    }
    /* conv_act is nn.SiLU() whatever act_fn says */
    if ((s = cdf_groupnorm_forward(ex, &m->dec_norm_out, cur, 1, (int64_t)h * w, CDF_ACT_SILU, cur))) goto done;
    s = cdf_conv2d_forward(ex, &m->dec_conv_out, cur, 1, h, w, out);
    goto done;
oom:
    s = status_of(ex);
done:
    cdf_aligned_free(zq);
    cdf_aligned_free(cur);
    return s;
}

/* One image: x [in_channels, H, W] -> moments [2lc, H/f, W/f]. */
static cdf_status encode_one(cdf_exec *ex, const cdf_vae *m, const float *x, int h, int w, float *moments) {
    const cdf_vae_config *c = &m->cfg;
    int nb = c->num_blocks, lc = c->latent_channels;
    int ho = h / cdf_vae_scale_factor(m), wo = w / cdf_vae_scale_factor(m);
    cdf_status s = CDF_OK;
    float *cur = NULL, *e = NULL;
    if (!(cur = cdf_buf(ex, (size_t)c->block_out_channels[0] * h * w))) return status_of(ex);
    if ((s = cdf_conv2d_forward(ex, &m->enc_conv_in, x, 1, h, w, cur))) goto done;
    for (int i = 0; i < nb; i++) {
        if ((s = check_interrupt(ex, "encode"))) goto done;
        if ((s = run_block(ex, &m->enc_down[i], 1, &cur, &h, &w))) goto done;
    }
    if (h != ho || w != wo) {
        s = cdf_error_set(ex->err, CDF_ERR_INTERNAL, "VAE encoder produced %dx%d latents, expected %dx%d", h, w, ho, wo);
        goto done;
    }
    if ((s = run_mid(ex, &m->enc_mid, &cur, h, w))) goto done;
    if ((s = cdf_groupnorm_forward(ex, &m->enc_norm_out, cur, 1, (int64_t)h * w, CDF_ACT_SILU, cur))) goto done;
    if (!c->use_quant_conv) {
        s = cdf_conv2d_forward(ex, &m->enc_conv_out, cur, 1, h, w, moments);
        goto done;
    }
    if (!(e = cdf_buf(ex, (size_t)2 * lc * h * w))) {
        s = status_of(ex);
        goto done;
    }
    if ((s = cdf_conv2d_forward(ex, &m->enc_conv_out, cur, 1, h, w, e))) goto done;
    cdf_aligned_free(cur);
    cur = NULL;
    s = cdf_conv2d_forward(ex, &m->quant_conv, e, 1, h, w, moments);
done:
    cdf_aligned_free(cur);
    cdf_aligned_free(e);
    return s;
}

static cdf_status check_args(cdf_exec *ex, const void *in, const void *out, int batch, int h, int w, int min_hw,
                             const char *what) {
    if (!in || !out || batch < 1 || h < min_hw || w < min_hw || h > 65536 || w > 65536)
        return cdf_error_set(ex->err, CDF_ERR_ARG,
                             "VAE %s: bad arguments (batch %d, %dx%d; height and width must be %d..65536, buffers "
                             "non-NULL)",
                             what, batch, h, w, min_hw);
    return CDF_OK;
}

cdf_status cdf_vae_decode(cdf_exec *ex, const cdf_vae *m, const float *z, int batch, int h, int w, float *out) {
    TRY(check_args(ex, z, out, batch, h, w, 1, "decode"));
    int f = cdf_vae_scale_factor(m);
    if ((int64_t)h * f > 65536 || (int64_t)w * f > 65536)
        return cdf_error_set(ex->err, CDF_ERR_LIMIT, "VAE decode: %dx%d latents give images over 65536 pixels wide", h,
                             w);
    size_t zn = (size_t)m->cfg.latent_channels * h * w;
    size_t on = (size_t)m->cfg.out_channels * h * f * w * f;
    for (int b = 0; b < batch; b++) TRY(decode_one(ex, m, z + b * zn, h, w, out + b * on));
    return CDF_OK;
}

cdf_status cdf_vae_encode(cdf_exec *ex, const cdf_vae *m, const float *x, int batch, int H, int W, float *moments) {
    int f = cdf_vae_scale_factor(m);
    TRY(check_args(ex, x, moments, batch, H, W, f, "encode"));
    size_t xn = (size_t)m->cfg.in_channels * H * W;
    size_t mn = (size_t)2 * m->cfg.latent_channels * (H / f) * (W / f);
    for (int b = 0; b < batch; b++) TRY(encode_one(ex, m, x + b * xn, H, W, moments + b * mn));
    return CDF_OK;
}

const cdf_weights *cdf_vae_weights(const cdf_vae *m) { return m->weights; }
