/* StableDiffusionPipeline (diffusers 0.32) text-to-image for SD 1.x / 2.x:
 * CLIP tokenizer + text encoder, UNet2DConditionModel with classifier-free
 * guidance, any supported scheduler, AutoencoderKL decode. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/clip_text.h"
#include "models/unet2d_cond.h"
#include "models/vae.h"
#include "pipelines/pipeline_internal.h"
#include "tensor/exec.h"
#include "text/clip_tokenizer.h"

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

static cdf_status expect_class(const char *path, const char *key, const char *cls, const char *const *ok,
                               cdf_error *err) {
    for (; *ok; ok++)
        if (strcmp(cls, *ok) == 0) return CDF_OK;
    return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: component '%s' of class \"%s\" is not supported", path, key,
                         cls);
}

cdf_status cdf_sd_pipeline_load(cdf_pipeline *p, const char *dir, const cJSON *idx, const char *idx_path,
                                const char *variant, cdf_error *err) {
    static const char *const unet_ok[] = {"UNet2DConditionModel", NULL};
    static const char *const vae_ok[] = {"AutoencoderKL", NULL};
    static const char *const te_ok[] = {"CLIPTextModel", NULL};
    static const char *const tok_ok[] = {"CLIPTokenizer", "CLIPTokenizerFast", NULL};
    const char *cls = NULL;
    char sub[4096];
    TRY(cdf_index_component(idx, idx_path, "unet", 1, &cls, err));
    TRY(expect_class(idx_path, "unet", cls, unet_ok, err));
    TRY(cdf_index_component(idx, idx_path, "vae", 1, &cls, err));
    TRY(expect_class(idx_path, "vae", cls, vae_ok, err));
    TRY(cdf_index_component(idx, idx_path, "text_encoder", 1, &cls, err));
    TRY(expect_class(idx_path, "text_encoder", cls, te_ok, err));
    TRY(cdf_index_component(idx, idx_path, "tokenizer", 1, &cls, err));
    TRY(expect_class(idx_path, "tokenizer", cls, tok_ok, err));
    TRY(cdf_index_component(idx, idx_path, "scheduler", 1, &cls, err));
    static const char *const skipped[] = {"safety_checker", "feature_extractor", "image_encoder"};
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++) {
        TRY(cdf_index_component(idx, idx_path, skipped[i], 0, &cls, err));
        if (cls)
            cdf_notice(err, CDF_NOTICE_WARN, "%s: component '%s' (%s) is skipped: cdiffusers does not run it",
                       idx_path, skipped[i], cls);
    }
    TRY(cdf_pipeline_load_scheduler(p, dir, err));
    snprintf(sub, sizeof sub, "%s/tokenizer", dir);
    TRY(cdf_clip_tokenizer_load(sub, &p->tokenizer, err));
    snprintf(sub, sizeof sub, "%s/text_encoder", dir);
    TRY(cdf_clip_text_load(sub, variant, &p->text_encoder, err));
    snprintf(sub, sizeof sub, "%s/unet", dir);
    TRY(cdf_unet2d_cond_load(sub, variant, &p->cunet, err));
    snprintf(sub, sizeof sub, "%s/vae", dir);
    TRY(cdf_vae_load(sub, variant, &p->vae, err));
    const cdf_unet2d_cond_config *uc = &p->cunet->cfg;
    if (uc->cross_attention_dim[0] != cdf_clip_text_hidden_size(p->text_encoder))
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: unet cross_attention_dim %d does not match the text encoder's hidden_size %d", dir,
                             uc->cross_attention_dim[0], cdf_clip_text_hidden_size(p->text_encoder));
    if (uc->in_channels != cdf_vae_latent_channels(p->vae))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: unet in_channels %d does not match the vae latent_channels %d",
                             dir, uc->in_channels, cdf_vae_latent_channels(p->vae));
    return CDF_OK;
}

void cdf_sd_pipeline_unload(cdf_pipeline *p) {
    cdf_unet2d_cond_free(p->cunet);
    cdf_clip_text_free(p->text_encoder);
    cdf_clip_tokenizer_free(p->tokenizer);
    cdf_vae_free(p->vae);
    p->cunet = NULL;
    p->text_encoder = NULL;
    p->tokenizer = NULL;
    p->vae = NULL;
}

uint64_t cdf_sd_weights_hash(const cdf_pipeline *p, uint64_t h) {
    const cdf_weights *w[3] = {p->cunet->weights, cdf_clip_text_weights(p->text_encoder), cdf_vae_weights(p->vae)};
    for (int i = 0; i < 3; i++) {
        h = cdf_weights_hash(w[i], h);
        cdf_weights_release_pages(w[i]); /* hashing read them all: do not keep them all resident */
    }
    return h;
}

void cdf_sd_default_size(const cdf_pipeline *p, int *h, int *w, int *c) {
    int f = cdf_vae_scale_factor(p->vae);
    *h = p->cunet->cfg.sample_h * f;
    *w = p->cunet->cfg.sample_w * f;
    *c = cdf_vae_out_channels(p->vae);
}

/* Token ids [n, L] for n texts; warns about truncated prompts as diffusers does. */
static cdf_status tokenize(const cdf_pipeline *p, const char *const *texts, int n, int warn, int64_t *ids,
                           cdf_error *err) {
    int L = cdf_clip_tokenizer_max_length(p->tokenizer);
    for (int i = 0; i < n; i++) {
        int ncontent = 0, trunc = 0;
        char *dropped = NULL;
        TRY(cdf_clip_tokenize(p->tokenizer, texts[i], ids + (size_t)i * L, &ncontent, &trunc, warn ? &dropped : NULL,
                              err));
        if (trunc && warn)
            cdf_notice(err, CDF_NOTICE_WARN,
                       "The following part of your input was truncated because CLIP can only handle sequences up to "
                       "%d tokens: ['%s']",
                       L, dropped ? dropped : "");
        cdf_free(dropped);
    }
    return CDF_OK;
}

/* ctx rows: [negative x nipp per prompt; positive x nipp per prompt] (CFG) or positive only. */
static cdf_status encode_prompts(cdf_exec *ex, const cdf_pipeline *p, const cdf_generate_options *o, int cfg,
                                 float *ctx, int *seq_out, cdf_error *err) {
    int B = (int)o->num_prompts, nipp = o->num_images_per_prompt, L = cdf_clip_tokenizer_max_length(p->tokenizer);
    int D = cdf_clip_text_hidden_size(p->text_encoder);
    size_t row = (size_t)L * D;
    cdf_status s = CDF_OK;
    int64_t *ids = cdf_mallocn((size_t)B * L, sizeof *ids);
    float *emb = cdf_mallocn((size_t)B * row, sizeof *emb);
    const char **neg = cdf_calloc((size_t)B, sizeof *neg);
    if (!ids || !emb || !neg) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory encoding %d prompts", B);
        goto done;
    }
    float *pos_dst = ctx + (cfg ? (size_t)B * nipp * row : 0);
    if ((s = tokenize(p, o->prompts, B, 1, ids, err))) goto done;
    if ((s = cdf_clip_text_forward(ex, p->text_encoder, ids, B, L, o->clip_skip, emb))) goto done;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < nipp; k++) memcpy(pos_dst + ((size_t)b * nipp + k) * row, emb + (size_t)b * row, row * sizeof(float));
    if (cfg) {
        for (int b = 0; b < B; b++) neg[b] = o->num_negative_prompts ? o->negative_prompts[b] : "";
        /* the negative prompt is encoded without clip_skip, as diffusers' encode_prompt does */
        if ((s = tokenize(p, neg, B, 0, ids, err))) goto done;
        if ((s = cdf_clip_text_forward(ex, p->text_encoder, ids, B, L, 0, emb))) goto done;
        for (int b = 0; b < B; b++)
            for (int k = 0; k < nipp; k++) memcpy(ctx + ((size_t)b * nipp + k) * row, emb + (size_t)b * row, row * sizeof(float));
    }
    *seq_out = L;
done:
    cdf_free(ids);
    cdf_free(emb);
    cdf_free(neg);
    return s;
}

static cdf_status check_options(const cdf_pipeline *p, const cdf_generate_options *o, size_t ngens, int h, int w,
                                cdf_error *err) {
    if (!o->prompts || o->num_prompts == 0)
        return cdf_error_set(err, CDF_ERR_ARG, "prompt: the prompt list is empty (give at least one prompt)");
    for (size_t i = 0; i < o->num_prompts; i++)
        if (!o->prompts[i]) return cdf_error_set(err, CDF_ERR_ARG, "prompt %zu is NULL", i);
    if (o->num_images_per_prompt < 1)
        return cdf_error_set(err, CDF_ERR_ARG, "num_images_per_prompt must be at least 1 (got %d)",
                             o->num_images_per_prompt);
    if (o->num_negative_prompts && o->num_negative_prompts != o->num_prompts)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "negative_prompt has batch size %zu, but prompt has batch size %zu: give one negative "
                             "prompt per prompt",
                             o->num_negative_prompts, o->num_prompts);
    for (size_t i = 0; i < o->num_negative_prompts; i++)
        if (!o->negative_prompts[i]) return cdf_error_set(err, CDF_ERR_ARG, "negative prompt %zu is NULL", i);
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
    int total = cdf_pipeline_batch_size(p, o);
    if (total > CDF_PIPE_MAX_BATCH)
        return cdf_error_set(err, CDF_ERR_LIMIT, "%zu prompts x %d images per prompt is over the limit of %d images",
                             o->num_prompts, o->num_images_per_prompt, CDF_PIPE_MAX_BATCH);
    if (ngens != 1 && ngens != (size_t)total)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "You have passed a list of generators of length %zu, but requested an effective batch "
                             "size of %d. Make sure the batch size matches the length of the generators.",
                             ngens, total);
    return CDF_OK;
}

/* noise_pred = u + g (c - u), then diffusers' rescale_noise_cfg when rescale > 0; per image. */
static void guide(const float *out, int total, size_t per, float g, double rescale, float *np) {
    for (int b = 0; b < total; b++) {
        const float *u = out + (size_t)b * per, *c = out + ((size_t)total + b) * per;
        float *d = np + (size_t)b * per;
        for (size_t i = 0; i < per; i++) d[i] = u[i] + g * (c[i] - u[i]);
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

cdf_status cdf_sd_pipeline_run(cdf_pipeline *p, const cdf_generate_options *o, cdf_generator *const *gens,
                               size_t ngens, cdf_tensor *images, cdf_error *err) {
    int H = o->height, W = o->width, C, f = cdf_vae_scale_factor(p->vae);
    int dh, dw;
    cdf_sd_default_size(p, &dh, &dw, &C);
    if (!H) H = dh;
    if (!W) W = dw;
    TRY(check_options(p, o, ngens, H, W, err));
    int total = cdf_pipeline_batch_size(p, o), steps = o->num_inference_steps ? o->num_inference_steps : 50;
    if (steps < 1) return cdf_error_set(err, CDF_ERR_ARG, "num_inference_steps must be at least 1 (got %d)", steps);
    int cfg = o->guidance_scale > 1.0, rows = cfg ? 2 * total : total;
    int lc = p->cunet->cfg.in_channels, h = H / f, w = W / f, seq = 0;
    int D = cdf_clip_text_hidden_size(p->text_encoder), L = cdf_clip_tokenizer_max_length(p->tokenizer);
    size_t per = (size_t)lc * h * w, n = (size_t)total * per;
    cdf_exec ex;
    cdf_exec_init(&ex, o->threads, err);
    cdf_exec_apply_threads(&ex);
    cdf_scheduler *sch = NULL;
    float *ctx = NULL, *lat = NULL, *in = NULL, *out = NULL, *np = NULL, *noise = NULL, *z = NULL, *img = NULL;
    cdf_status s = CDF_OK;
    if (!(ctx = cdf_mallocn((size_t)rows * L * D, sizeof(float))) || !(lat = cdf_mallocn(n, sizeof(float))) ||
        !(in = cdf_mallocn((size_t)rows * per, sizeof(float))) || !(out = cdf_mallocn((size_t)rows * per, sizeof(float))) ||
        !(np = cdf_mallocn(n, sizeof(float))) || !(noise = cdf_mallocn(n, sizeof(float)))) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory for %d latents of %dx%dx%d", total, lc, h, w);
        goto done;
    }
    if ((s = encode_prompts(&ex, p, o, cfg, ctx, &seq, err))) goto done;
    /* stage by stage, the weights of finished stages leave memory (they stay mapped) */
    cdf_weights_release_pages(cdf_clip_text_weights(p->text_encoder));
    if ((s = cdf_pipeline_make_scheduler(p, o, steps, &sch, err))) goto done;
    if ((s = cdf_pipeline_draw(gens, ngens, total, lc, h, w, lat, err))) goto done;
    int nsteps = cdf_scheduler_num_timesteps(sch);
    cdf_step_info info = {-1, nsteps, 0, lat, NULL, NULL, total, lc, lc, h, w};
    if (o->on_step && o->on_step(&info, o->on_step_user)) {
        s = cdf_error_set(err, CDF_ERR_INTERRUPTED, "interrupted before the first step");
        goto done;
    }
    float sigma0 = cdf_scheduler_init_noise_sigma(sch);
    for (size_t i = 0; i < n; i++) lat[i] = lat[i] * sigma0;
    cdf_sched_step_opts so = {o->eta, o->use_clipped_model_output};
    float g = (float)o->guidance_scale;
    for (int i = 0; i < nsteps; i++) {
        double t = cdf_scheduler_timestep_value(sch, i);
        for (int r = 0; r < rows; r++) memcpy(in + (size_t)r * per, lat + (size_t)(r % total) * per, per * sizeof(float));
        cdf_scheduler_scale_model_input(sch, i, in, in, (size_t)rows * per);
        if ((s = cdf_unet2d_cond_forward(&ex, p->cunet, in, rows, h, w, t, ctx, seq, out))) goto done;
        if (cfg)
            guide(out, total, per, g, o->guidance_rescale, np);
        else
            memcpy(np, out, n * sizeof(float));
        const float *nz = NULL;
        if (cdf_scheduler_step_needs_noise(sch, i, &so)) {
            if ((s = cdf_pipeline_draw(gens, ngens, total, lc, h, w, noise, err))) goto done;
            nz = noise;
        }
        if ((s = cdf_scheduler_step(sch, i, np, lc, lat, total, lc, (int64_t)h * w, nz, &so, err))) goto done;
        cdf_step_info si = {i, nsteps, (int64_t)t, lat, np, nz, total, lc, lc, h, w};
        if (o->on_step && o->on_step(&si, o->on_step_user)) {
            s = cdf_error_set(err, CDF_ERR_INTERRUPTED, "interrupted after step %d of %d", i + 1, nsteps);
            goto done;
        }
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
    cdf_scheduler_free(sch);
    cdf_exec_release(&ex);
    return s;
}
