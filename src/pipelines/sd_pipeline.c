/* StableDiffusionPipeline (diffusers 0.32) text-to-image for SD 1.x / 2.x:
 * CLIP tokenizer + text encoder, UNet2DConditionModel with classifier-free
 * guidance, any supported scheduler, AutoencoderKL decode; and
 * StableDiffusionImg2ImgPipeline when the options carry an init picture
 * (encoded and noised to the strength's first timestep, sd_image.c), and
 * StableDiffusionInpaintPipeline when they carry a mask too (a 9-channel
 * inpainting UNet, or a regular UNet blending the kept region back);
 * StableDiffusionXLPipeline text-to-image: two text encoders
 * (sdxl_text.c), the pooled embedding and the size micro-conditioning added
 * to the UNet's time embedding. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/clip_text.h"
#include "models/unet2d_cond.h"
#include "models/vae.h"
#include "io/json.h"
#include "pipelines/pipeline_internal.h"
#include "pipelines/sdxl_text.h"
#include "pipelines/text_cache.h"
#include "tensor/exec.h"
#include "text/clip_tokenizer.h"

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

/* The family's own state: components and the folder's scheduler config,
 * read-only after load. */
typedef struct sd_state {
    cdf_sched_config sched;       /* scheduler/scheduler_config.json */
    cdf_unet2d_cond *cunet;
    cdf_clip_text *text_encoder;
    cdf_clip_tokenizer *tokenizer;
    cdf_vae *vae;
    /* Stable Diffusion XL only (NULL / 0 otherwise): */
    cdf_clip_text *text_encoder_2;   /* CLIPTextModelWithProjection */
    cdf_clip_tokenizer *tokenizer_2; /* pads with "!" */
    int xl;                          /* StableDiffusionXLPipeline */
    int force_zeros;                 /* model_index.json force_zeros_for_empty_prompt (default true) */
    uint64_t text_uid;               /* this load's identity in text caches (cdf_text_uid) */
} sd_state;

static void sd_free(void *state) {
    sd_state *st = state;
    if (!st) return;
    cdf_unet2d_cond_free(st->cunet);
    cdf_clip_text_free(st->text_encoder);
    cdf_clip_tokenizer_free(st->tokenizer);
    cdf_clip_text_free(st->text_encoder_2);
    cdf_clip_tokenizer_free(st->tokenizer_2);
    cdf_vae_free(st->vae);
    cdf_sched_config_free(&st->sched);
    cdf_free(st);
}

static cdf_status sd_load(cdf_pipeline *p, const char *dir, const cJSON *idx, const char *idx_path,
                          const char *variant, cdf_error *err) {
    static const char *const unet_ok[] = {"UNet2DConditionModel", NULL};
    static const char *const vae_ok[] = {"AutoencoderKL", NULL};
    static const char *const te_ok[] = {"CLIPTextModel", NULL};
    static const char *const te2_ok[] = {"CLIPTextModelWithProjection", NULL};
    static const char *const tok_ok[] = {"CLIPTokenizer", "CLIPTokenizerFast", NULL};
    const char *cls = NULL;
    char sub[4096];
    const int xl = strcmp(p->class_name, "StableDiffusionXLPipeline") == 0;
    TRY(cdf_index_expect(idx, idx_path, "unet", unet_ok, err));
    TRY(cdf_index_expect(idx, idx_path, "vae", vae_ok, err));
    TRY(cdf_index_expect(idx, idx_path, "text_encoder", te_ok, err));
    TRY(cdf_index_expect(idx, idx_path, "tokenizer", tok_ok, err));
    int force_zeros = 1; /* StableDiffusionXLPipeline's __init__ default */
    if (xl) {
        TRY(cdf_index_expect(idx, idx_path, "text_encoder_2", te2_ok, err));
        TRY(cdf_index_expect(idx, idx_path, "tokenizer_2", tok_ok, err));
        TRY(cdf_json_get_flag(idx, idx_path, "force_zeros_for_empty_prompt", &force_zeros, err));
    }
    TRY(cdf_index_component(idx, idx_path, "scheduler", 1, &cls, err));
    static const char *const skipped[] = {"safety_checker", "feature_extractor", "image_encoder"};
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++) {
        TRY(cdf_index_component(idx, idx_path, skipped[i], 0, &cls, err));
        if (cls)
            cdf_notice(err, CDF_NOTICE_WARN, "%s: component '%s' (%s) is skipped: cdiffusers does not run it",
                       idx_path, skipped[i], cls);
    }
    sd_state *st = cdf_calloc(1, sizeof *st);
    if (!st) return cdf_error_set(err, CDF_ERR_NOMEM, "out of memory loading %s", dir);
    p->state = st;
    st->text_uid = cdf_text_uid(st);
    TRY(cdf_pipeline_load_scheduler(dir, "scheduler", -1, &st->sched, &p->sched_json, err));
    snprintf(p->sched_name, sizeof p->sched_name, "%s", cdf_sched_kind_name(st->sched.kind));
    snprintf(sub, sizeof sub, "%s/tokenizer", dir);
    TRY(cdf_clip_tokenizer_load(sub, &st->tokenizer, err));
    snprintf(sub, sizeof sub, "%s/text_encoder", dir);
    TRY(cdf_clip_text_load(sub, variant, &st->text_encoder, err));
    snprintf(sub, sizeof sub, "%s/unet", dir);
    TRY(cdf_unet2d_cond_load(sub, variant, &st->cunet, err));
    snprintf(sub, sizeof sub, "%s/vae", dir);
    TRY(cdf_vae_load(sub, variant, &st->vae, err));
    const cdf_unet2d_cond_config *uc = &st->cunet->cfg;
    int ctx_dim = cdf_clip_text_hidden_size(st->text_encoder);
    if (xl) {
        st->xl = 1;
        st->force_zeros = force_zeros;
        snprintf(sub, sizeof sub, "%s/tokenizer_2", dir);
        TRY(cdf_clip_tokenizer_load(sub, &st->tokenizer_2, err));
        snprintf(sub, sizeof sub, "%s/text_encoder_2", dir);
        TRY(cdf_clip_text_load(sub, variant, &st->text_encoder_2, err));
        cdf_sdxl_text t = {st->tokenizer, st->tokenizer_2, st->text_encoder, st->text_encoder_2};
        int proj = 0;
        TRY(cdf_sdxl_text_dims(&t, NULL, &ctx_dim, &proj, err));
        if (!uc->add_text_time)
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s/unet/config.json: field 'addition_embed_type' must be \"text_time\" for %s", dir,
                                 p->class_name);
        if (cdf_unet2d_cond_pooled_dim(st->cunet) != proj)
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s/unet/config.json: field 'projection_class_embeddings_input_dim' %d is not 6 x "
                                 "addition_time_embed_dim %d + text_encoder_2's projection_dim %d",
                                 dir, uc->add_embed_in, uc->addition_time_embed_dim, proj);
    }
    if (uc->cross_attention_dim[0] != ctx_dim)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s/unet/config.json: field 'cross_attention_dim' %d does not match the text encoder%s's "
                             "hidden_size %d",
                             dir, uc->cross_attention_dim[0], xl ? "s" : "", ctx_dim);
    const int lc = cdf_vae_latent_channels(st->vae);
    if (uc->in_channels != lc && uc->in_channels != 2 * lc + 1)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: unet in_channels %d is neither the vae latent_channels %d nor %d (an inpainting UNet: "
                             "latents, mask, masked-picture latents)",
                             dir, uc->in_channels, lc, 2 * lc + 1);
    if (uc->out_channels != lc)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: unet out_channels %d does not match the vae latent_channels %d",
                             dir, uc->out_channels, lc);
    return CDF_OK;
}

static uint64_t sd_weights_hash(const void *state, uint64_t h) {
    const sd_state *st = state;
    const cdf_weights *w[4] = {st->cunet->weights, cdf_clip_text_weights(st->text_encoder), cdf_vae_weights(st->vae),
                               st->text_encoder_2 ? cdf_clip_text_weights(st->text_encoder_2) : NULL};
    for (int i = 0; i < 4 && w[i]; i++) {
        h = cdf_weights_hash(w[i], h);
        cdf_weights_release_pages(w[i]); /* hashing read them all: do not keep them all resident */
    }
    return h;
}

/* UNet sample size times the VAE factor, and the VAE's output channels. */
static void sd_default_size(const void *state, int *h, int *w, int *c) {
    const sd_state *st = state;
    int f = cdf_vae_scale_factor(st->vae);
    *h = st->cunet->cfg.sample_h * f;
    *w = st->cunet->cfg.sample_w * f;
    *c = cdf_vae_out_channels(st->vae);
}

/* cdf_clip_text_forward as a cdf_text_forward_fn. */
typedef struct sd_forward_args {
    cdf_exec *ex;
    const cdf_clip_text *te;
    int seq, clip_skip;
} sd_forward_args;

static cdf_status sd_forward(void *user, const int64_t *ids, int n, float *const *outs) {
    const sd_forward_args *a = user;
    return cdf_clip_text_forward(a->ex, a->te, ids, n, a->seq, a->clip_skip, outs[0]);
}

/* One half of the rows: texts [B] encoded (through o->text_cache when set) with clip_skip, each row repeated nipp
 * times into dst [B * nipp, L, D]; ids [B, L] and emb [B, L, D] are scratch. */
static cdf_status encode_rows(cdf_exec *ex, const sd_state *p, const cdf_generate_options *o, const char *const *texts,
                              int B, int warn, int clip_skip, int64_t *ids, float *emb, float *dst, cdf_error *err) {
    const int nipp = o->num_images_per_prompt, L = cdf_clip_tokenizer_max_length(p->tokenizer);
    const size_t row = (size_t)L * cdf_clip_text_hidden_size(p->text_encoder);
    TRY(cdf_pipeline_tokenize(p->tokenizer, texts, B, warn, ids, NULL, err));
    sd_forward_args fa = {ex, p->text_encoder, L, clip_skip};
    const cdf_text_source src = {.uid = p->text_uid, .encoder = p->text_encoder, .which = 1,
                                 .precision = (int)ex->precision, .seq = L, .forward = sd_forward, .user = &fa};
    const cdf_text_part part = {clip_skip, 0, row, emb};
    TRY(cdf_text_cache_fill(o->text_cache, &src, texts, ids, B, &part, 1, err));
    for (int b = 0; b < B; b++)
        for (int k = 0; k < nipp; k++)
            memcpy(dst + ((size_t)b * nipp + k) * row, emb + (size_t)b * row, row * sizeof(float));
    return CDF_OK;
}

/* ctx rows: [negative x nipp per prompt; positive x nipp per prompt] (CFG) or positive only. */
static cdf_status encode_prompts(cdf_exec *ex, const sd_state *p, const cdf_generate_options *o, int cfg,
                                 float *ctx, int *seq_out, cdf_error *err) {
    int B = (int)o->num_prompts, nipp = o->num_images_per_prompt, L = cdf_clip_tokenizer_max_length(p->tokenizer);
    int D = cdf_clip_text_hidden_size(p->text_encoder);
    size_t row = (size_t)L * D;
    cdf_status s = CDF_OK;
    int64_t *ids = cdf_mallocn((size_t)B * L, sizeof *ids); /* [B, L] */
    float *emb = cdf_mallocn((size_t)B * row, sizeof *emb); /* [B, L, D] */
    const char **neg = cdf_calloc((size_t)B, sizeof *neg);  /* [B] */
    if (!ids || !emb || !neg) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory encoding %d prompts", B);
        goto done;
    }
    float *pos_dst = ctx + (cfg ? (size_t)B * nipp * row : 0);
    if ((s = encode_rows(ex, p, o, o->prompts, B, 1, o->clip_skip, ids, emb, pos_dst, err))) goto done;
    if (cfg) {
        for (int b = 0; b < B; b++) neg[b] = o->num_negative_prompts ? o->negative_prompts[b] : "";
        /* the negative prompt is encoded without clip_skip, as diffusers' encode_prompt does */
        if ((s = encode_rows(ex, p, o, neg, B, 0, 0, ids, emb, ctx, err))) goto done;
    }
    *seq_out = L;
done:
    cdf_free(ids);
    cdf_free(emb);
    cdf_free(neg);
    return s;
}

static cdf_status check_options(const cdf_generate_options *o, size_t ngens, int h, int w, cdf_error *err) {
    TRY(cdf_pipeline_check_prompts(o, ngens, err));
    if (h <= 0 || w <= 0 || h % 8 || w % 8)
        return cdf_error_set(err, CDF_ERR_ARG, "`height` and `width` have to be divisible by 8 but are %d and %d.", h, w);
    if (!(o->guidance_scale >= 0.0))
        return cdf_error_set(err, CDF_ERR_ARG, "guidance_scale must be >= 0 (got %g)", o->guidance_scale);
    if (!(o->guidance_rescale >= 0.0 && o->guidance_rescale <= 1.0))
        return cdf_error_set(err, CDF_ERR_ARG, "guidance_rescale must be in [0, 1] (got %g)", o->guidance_rescale);
    if (o->eta < 0.0) return cdf_error_set(err, CDF_ERR_ARG, "eta must be >= 0 (got %g)", o->eta);
    if (o->clip_skip < 0) return cdf_error_set(err, CDF_ERR_ARG, "clip_skip must be >= 0 (got %d)", o->clip_skip);
    if ((int64_t)h * w > CDF_PIPE_MAX_PIXELS)
        return cdf_error_set(err, CDF_ERR_LIMIT, "height x width = %d x %d is over the limit of %lld pixels", h, w,
                             (long long)CDF_PIPE_MAX_PIXELS);
    return CDF_OK;
}

/* noise_pred = u + g (c - u), then diffusers' rescale_noise_cfg when rescale > 0; per image. */
static void guide(const float *out, int total, size_t per, float g, double rescale, float *np) {
    cdf_pipeline_cfg(out, total, per, per, g, np, per);
    for (int b = 0; b < total; b++) {
        const float *c = out + ((size_t)total + b) * per;
        float *d = np + (size_t)b * per;
        if (rescale > 0.0) {
            /* std over (C, H, W) with Bessel's correction, as torch.std */
            double mt = 0, mc = 0, vt = 0, vc = 0;
            for (size_t i = 0; i < per; i++) mt += c[i], mc += d[i];
            mt /= (double)per, mc /= (double)per;
            for (size_t i = 0; i < per; i++) vt += (c[i] - mt) * (c[i] - mt), vc += (d[i] - mc) * (d[i] - mc);
            float st = (float)sqrt(vt / (double)(per - 1)), sc = (float)sqrt(vc / (double)(per - 1));
            float ratio = st / sc, r = (float)rescale, r1 = (float)(1.0 - rescale);
            for (size_t i = 0; i < per; i++) d[i] = r * (d[i] * ratio) + r1 * d[i];
        }
    }
}

/* What an image-to-image or inpainting run starts from (all NULL for text-to-image). */
typedef struct sd_start {
    int i2i, inpaint;       /* an init picture; and a mask */
    double strength;        /* the effective strength */
    float *pic;             /* [1, 3, H, W] the picture in [-1, 1] */
    float *image_latents;   /* [total, lc, h, w] scaled encoder samples (tiled) */
    float *noise0;          /* inpainting: [total, lc, h, w] the latents noise, kept for the blend */
    float *masked_latents;  /* inpainting: [lc, h, w] the masked picture's scaled encoder sample */
    float *mask_latent;     /* inpainting: [h, w] 0 keep / 1 repaint */
} sd_start;

static void start_free(sd_start *st) {
    cdf_free(st->pic);
    cdf_free(st->image_latents);
    cdf_free(st->noise0);
    cdf_free(st->masked_latents);
    cdf_free(st->mask_latent);
}

/* The options of an image-to-image / inpainting run, checked; H and W from the picture. */
static cdf_status start_options(const cdf_pipeline *pipe, const cdf_generate_options *o, int uin, int lc,
                                sd_start *st, int *H, int *W, cdf_error *err) {
    st->i2i = o->init_image != NULL;
    st->inpaint = o->mask_image != NULL;
    const int inpaint_class = strcmp(pipe->class_name, "StableDiffusionInpaintPipeline") == 0;
    if (st->inpaint && !st->i2i) return cdf_error_set(err, CDF_ERR_ARG, "mask_image needs an init_image");
    if (!st->inpaint && (uin != lc || inpaint_class))
        return cdf_error_set(err, CDF_ERR_ARG,
                             "%s (a UNet of %d input channels) needs an init_image and a mask_image",
                             pipe->class_name, uin);
    if (!st->i2i) {
        if (o->strength >= 0.0)
            return cdf_error_set(err, CDF_ERR_ARG, "strength is for image-to-image: give an init_image");
        if (strcmp(pipe->class_name, "StableDiffusionImg2ImgPipeline") == 0)
            return cdf_error_set(err, CDF_ERR_ARG, "StableDiffusionImg2ImgPipeline needs an init_image");
        return CDF_OK;
    }
    int ph, pw;
    TRY(cdf_sd_picture_dims(o->init_image, "init_image", &ph, &pw, err));
    if ((*H && *H != ph) || (*W && *W != pw))
        return cdf_error_set(err, CDF_ERR_ARG, "height x width %d x %d differs from the init_image's %d x %d", *H, *W,
                             ph, pw);
    *H = ph, *W = pw;
    if (st->inpaint) TRY(cdf_sd_mask_check(o->mask_image, ph, pw, err));
    st->strength = o->strength >= 0.0 ? o->strength : st->inpaint ? 1.0 : 0.8;
    if (!(st->strength > 0.0 && st->strength <= 1.0))
        return cdf_error_set(err, CDF_ERR_ARG, "The value of strength should in (0.0, 1.0] but is %g", st->strength);
    return CDF_OK;
}

/* prepare_latents (and inpainting's prepare_mask_latents), drawing from the
 * generators in diffusers' order, into lat [total, lc, h, w]:
 *   img2img: the picture encoded (a generator list: once per image, row i
 *     sampled with generator i; one generator: once, tiled), the latents
 *     noise, then add_noise(image latents, noise, timesteps[0]);
 *   inpainting: the picture encoded with generator 0 (only for a 4-channel
 *     UNet or strength < 1), the latents noise, the masked picture encoded
 *     with generator 0; then noise * init_noise_sigma at strength 1, else
 *     add_noise. */
static cdf_status start_latents(cdf_exec *ex, const sd_state *p, const cdf_generate_options *o,
                                cdf_generator *const *gens, size_t ngens, int total, int H, int W, int uin,
                                const cdf_scheduler *sch, sd_start *st, float *lat, cdf_error *err) {
    const int f = cdf_vae_scale_factor(p->vae), lc = cdf_vae_latent_channels(p->vae), h = H / f, w = W / f;
    const size_t per = (size_t)lc * h * w, n = (size_t)total * per;
    float *masked = NULL;
    cdf_status s = CDF_OK;
    if (!(st->pic = cdf_mallocn((size_t)3 * H * W, sizeof(float))) ||
        !(st->image_latents = cdf_mallocn(n, sizeof(float))) || !(st->noise0 = cdf_mallocn(n, sizeof(float))) ||
        (st->inpaint && (!(st->masked_latents = cdf_mallocn(per, sizeof(float))) ||
                         !(st->mask_latent = cdf_mallocn((size_t)h * w, sizeof(float))) ||
                         !(masked = cdf_mallocn((size_t)3 * H * W, sizeof(float)))))) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory for a %dx%d picture", H, W);
        goto done;
    }
    cdf_sd_picture_to_input(o->init_image, st->pic);
    const int strength_max = st->strength == 1.0;
    /* inpainting encodes the one-row picture with generator 0; img2img once per image with a list */
    const int need_image = !st->inpaint || uin == lc || !strength_max;
    const int erows = !st->inpaint && ngens > 1 ? total : 1;
    if (need_image) {
        if ((s = cdf_sd_encode_sample(ex, p->vae, st->pic, H, W, gens, erows, st->image_latents, err))) goto done;
        for (int r = erows; r < total; r++) memcpy(st->image_latents + (size_t)r * per, st->image_latents, per * sizeof(float));
    }
    if ((s = cdf_pipeline_draw(gens, ngens, total, lc, h, w, st->noise0, err))) goto done;
    if (st->inpaint) {
        cdf_sd_mask_prepare(o->mask_image, st->pic, H, W, f, masked, st->mask_latent);
        if ((s = cdf_sd_encode_sample(ex, p->vae, masked, H, W, gens, 1, st->masked_latents, err))) goto done;
    }
    if (st->inpaint && strength_max) {
        float sigma0 = cdf_scheduler_init_noise_sigma(sch);
        for (size_t i = 0; i < n; i++) lat[i] = st->noise0[i] * sigma0;
    } else {
        cdf_scheduler_add_noise(sch, 0, st->image_latents, st->noise0, lat, total, (int64_t)per);
    }
done:
    cdf_free(masked);
    return s;
}

/* The UNet input of one row: scale_model_input(latents), then for a
 * 9-channel inpainting UNet the mask and the masked picture's latents. */
static void unet_row(const cdf_scheduler *sch, int i, const float *lat, const sd_start *st, int uin, size_t per,
                     size_t hw, float *dst) {
    cdf_scheduler_scale_model_input(sch, i, lat, dst, per);
    if (uin == (int)(per / hw)) return;
    memcpy(dst + per, st->mask_latent, hw * sizeof(float));
    memcpy(dst + per + hw, st->masked_latents, per * sizeof(float));
}

/* 4-channel inpainting after step i of n: latents = (1 - m) * proper + m * latents,
 * proper = add_noise(image_latents, noise, timesteps[i + 1]) (the clean latents at the last step). */
static void blend(const cdf_scheduler *sch, int i, int n, const sd_start *st, int total, size_t per, size_t hw,
                  float *lat, float *tmp) {
    const float *proper = st->image_latents;
    if (i < n - 1) {
        cdf_scheduler_add_noise(sch, i + 1, st->image_latents, st->noise0, tmp, total, (int64_t)per);
        proper = tmp;
    }
    for (size_t k = 0; k < (size_t)total * per; k++) {
        float m = st->mask_latent[k % hw];
        lat[k] = (1.0f - m) * proper[k] + m * lat[k];
    }
}

static cdf_status sd_run(cdf_pipeline *pipe, const cdf_generate_options *o, cdf_generator *const *gens,
                         size_t ngens, cdf_tensor *images, cdf_error *err) {
    const sd_state *p = pipe->state;
    int H = o->height, W = o->width, C, f = cdf_vae_scale_factor(p->vae);
    int dh, dw;
    sd_default_size(p, &dh, &dw, &C);
    const int uin = p->cunet->cfg.in_channels, lc = cdf_vae_latent_channels(p->vae);
    const int xl_opts = o->num_prompts_2 || o->num_negative_prompts_2 || o->original_size[0] || o->original_size[1] ||
                        o->crops_coords_top_left[0] || o->crops_coords_top_left[1] || o->target_size[0] ||
                        o->target_size[1];
    if (!p->xl && xl_opts)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "prompt_2, negative_prompt_2, original_size, crops_coords_top_left and target_size are for "
                             "Stable Diffusion XL (this is %s)",
                             pipe->class_name);
    if (p->xl && (o->init_image || o->mask_image || o->strength >= 0.0))
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: image-to-image and inpainting are not supported for Stable Diffusion XL yet",
                             pipe->class_name);
    sd_start st = {0};
    TRY(start_options(pipe, o, uin, lc, &st, &H, &W, err));
    if (!H) H = dh;
    if (!W) W = dw;
    if (p->xl) {
        /* SDXL broadcasts one negative prompt to every prompt; cdf_sdxl_encode_prompt checks the lists */
        cdf_generate_options ox = *o;
        ox.num_negative_prompts = 0;
        TRY(check_options(&ox, ngens, H, W, err));
    } else {
        TRY(check_options(o, ngens, H, W, err));
    }
    int total = cdf_pipeline_prompt_batch(o), steps = o->num_inference_steps ? o->num_inference_steps : 50;
    if (steps < 1) return cdf_error_set(err, CDF_ERR_ARG, "num_inference_steps must be at least 1 (got %d)", steps);
    /* get_timesteps: init_timestep = min(int(N * strength), N), the loop starts at N - init_timestep */
    int init_timestep = st.i2i ? (int)((double)steps * st.strength) : steps;
    if (init_timestep > steps) init_timestep = steps;
    if (init_timestep < 1)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "strength %g of %d steps leaves no step to run (int(num_inference_steps * strength) is 0)",
                             st.strength, steps);
    int cfg = o->guidance_scale > 1.0, rows = cfg ? 2 * total : total;
    int h = H / f, w = W / f, seq = 0;
    int D = cdf_clip_text_hidden_size(p->text_encoder), L = cdf_clip_tokenizer_max_length(p->tokenizer), P = 0;
    const cdf_sdxl_text xt = {p->tokenizer, p->tokenizer_2, p->text_encoder, p->text_encoder_2};
    if (p->xl) TRY(cdf_sdxl_text_dims(&xt, &L, &D, &P, err));
    size_t hw = (size_t)h * w, per = (size_t)lc * hw, n = (size_t)total * per, in_per = (size_t)uin * hw;
    cdf_exec ex;
    cdf_exec_init(&ex, o->threads, err);
    ex.derived_cap = CDF_EXEC_DERIVED_RUN; /* weights stay mapped for the run */
    ex.precision = o->precision;
    cdf_scheduler *sch = NULL;
    float *ctx = NULL, *lat = NULL, *in = NULL, *out = NULL, *np = NULL, *noise = NULL, *z = NULL, *img = NULL;
    float *pooled = NULL, *time_ids = NULL; /* SDXL: [rows, P], [rows, 6] */
    cdf_status s = CDF_OK;
    if (!(ctx = cdf_mallocn((size_t)rows * L * D, sizeof(float))) || !(lat = cdf_mallocn(n, sizeof(float))) ||
        !(in = cdf_mallocn((size_t)rows * in_per, sizeof(float))) || !(out = cdf_mallocn((size_t)rows * per, sizeof(float))) ||
        !(np = cdf_mallocn(n, sizeof(float))) || !(noise = cdf_mallocn(n, sizeof(float)))) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory for %d latents of %dx%dx%d", total, lc, h, w);
        goto done;
    }
    if (p->xl) {
        if (!(pooled = cdf_mallocn((size_t)rows * P, sizeof(float))) || !(time_ids = cdf_mallocn((size_t)rows * 6, sizeof(float)))) {
            s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory for %d rows of added conditioning", rows);
            goto done;
        }
        cdf_sdxl_prompt_args a = {o->prompts, o->num_prompts, o->prompts_2, o->num_prompts_2, o->negative_prompts,
                                  o->num_negative_prompts, o->negative_prompts_2, o->num_negative_prompts_2,
                                  o->num_images_per_prompt, cfg, p->force_zeros, o->clip_skip};
        cdf_sdxl_text_out to = {ctx, pooled, NULL, NULL, NULL, NULL, 0};
        if ((s = cdf_sdxl_encode_prompt_cached(&ex, &xt, &a, o->text_cache, p->text_uid, &to, err))) goto done;
        seq = L;
        /* add_time_ids: original_size + crops_coords_top_left + target_size, the image size by default */
        const int *os = o->original_size, *cr = o->crops_coords_top_left, *ts = o->target_size;
        const float row6[6] = {(float)(os[0] || os[1] ? os[0] : H), (float)(os[0] || os[1] ? os[1] : W), (float)cr[0],
                               (float)cr[1], (float)(ts[0] || ts[1] ? ts[0] : H), (float)(ts[0] || ts[1] ? ts[1] : W)};
        for (int r = 0; r < rows; r++) memcpy(time_ids + (size_t)r * 6, row6, sizeof row6);
        cdf_weights_release_pages(cdf_clip_text_weights(p->text_encoder_2));
    } else if ((s = encode_prompts(&ex, p, o, cfg, ctx, &seq, err))) {
        goto done;
    }
    /* stage by stage, the weights of finished stages leave memory (they stay mapped) */
    cdf_weights_release_pages(cdf_clip_text_weights(p->text_encoder));
    if ((s = cdf_pipeline_make_scheduler(&p->sched, o, 1, steps, &sch, err))) goto done;
    if (st.i2i) {
        /* timesteps[t_start * order:], set_begin_index where the scheduler has one */
        if ((s = cdf_scheduler_set_begin_index(sch, (steps - init_timestep) * cdf_scheduler_order(sch), err)))
            goto done;
        if ((s = start_latents(&ex, p, o, gens, ngens, total, H, W, uin, sch, &st, lat, err))) goto done;
    } else if ((s = cdf_pipeline_draw(gens, ngens, total, lc, h, w, lat, err))) {
        goto done;
    }
    int nsteps = cdf_scheduler_num_timesteps(sch);
    cdf_step_info info = {-1, nsteps, 0, st.i2i ? st.noise0 : lat, NULL, NULL, total, lc, lc, h, w, 0, 1, NULL};
    if ((s = cdf_pipeline_report_step(o, &info, err))) goto done;
    if (!st.i2i) {
        float sigma0 = cdf_scheduler_init_noise_sigma(sch);
        for (size_t i = 0; i < n; i++) lat[i] = lat[i] * sigma0;
    }
    cdf_sched_step_opts so = {o->eta, o->use_clipped_model_output};
    float g = (float)o->guidance_scale;
    for (int i = 0; i < nsteps; i++) {
        double t = cdf_scheduler_timestep_value(sch, i);
        for (int r = 0; r < rows; r++) unet_row(sch, i, lat + (size_t)(r % total) * per, &st, uin, per, hw, in + (size_t)r * in_per);
        if ((s = cdf_unet2d_cond_forward_added(&ex, p->cunet, in, rows, h, w, t, ctx, seq, pooled, time_ids, out)))
            goto done;
        if (cfg)
            guide(out, total, per, g, o->guidance_rescale, np);
        else
            memcpy(np, out, n * sizeof(float));
        const float *nz = NULL;
        if (cdf_scheduler_step_needs_noise(sch, i, &so)) {
            if ((s = cdf_pipeline_draw(gens, ngens, total, lc, h, w, noise, err))) goto done;
            nz = noise;
        }
        if ((s = cdf_scheduler_step(sch, i, np, lc, lat, total, lc, (int64_t)hw, nz, &so, err))) goto done;
        if (st.inpaint && uin == lc) blend(sch, i, nsteps, &st, total, per, hw, lat, out);
        cdf_step_info si = {i, nsteps, (int64_t)t, lat, np, nz, total, lc, lc, h, w, 0, 1, NULL};
        if ((s = cdf_pipeline_report_step(o, &si, err))) goto done;
    }
    if (o->output_type == CDF_OUTPUT_SAMPLE) {
        s = cdf_pipeline_make_output(o, lat, total, lc, h, w, images, err);
        goto done;
    }
    cdf_weights_release_pages(p->cunet->weights);
    /* vae.decode(latents / scaling_factor) */
    float sf = cdf_vae_scaling_factor(p->vae);
    cdf_free(in), in = NULL;
    cdf_free(out), out = NULL;
    if (!(z = cdf_mallocn(n, sizeof(float))) || !(img = cdf_mallocn((size_t)total * C * H * W, sizeof(float)))) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory for %d images of %dx%d", total, H, W);
        goto done;
    }
    for (size_t i = 0; i < n; i++) z[i] = lat[i] / sf;
    if ((s = cdf_vae_decode(&ex, p->vae, z, total, h, w, img))) goto done;
    s = cdf_pipeline_make_output(o, img, total, C, H, W, images, err);
done:
    cdf_free(ctx);
    cdf_free(lat);
    cdf_free(in);
    cdf_free(out);
    cdf_free(np);
    cdf_free(noise);
    cdf_free(z);
    cdf_free(img);
    cdf_free(pooled);
    cdf_free(time_ids);
    start_free(&st);
    cdf_scheduler_free(sch);
    if (o->work_gflop) *o->work_gflop = ex.gemm_flops * 1e-9;
    cdf_exec_release(&ex);
    return s;
}

static const cdf_pipeline_class k_sd_classes[] = {{"StableDiffusionPipeline", CDF_PIPELINE_SD},
                                                  {"StableDiffusionImg2ImgPipeline", CDF_PIPELINE_SD},
                                                  {"StableDiffusionInpaintPipeline", CDF_PIPELINE_SD},
                                                  {"StableDiffusionXLPipeline", CDF_PIPELINE_SD}};

const cdf_pipeline_family cdf_family_sd = {
    "Stable Diffusion", k_sd_classes, 4, sd_load, sd_run, sd_free, sd_weights_hash, sd_default_size,
    cdf_pipeline_prompt_batch,
};
