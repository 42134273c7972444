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

/* The family's own state: components and the folder's scheduler config,
 * read-only after load. */
typedef struct sd_state {
    cdf_sched_config sched;       /* scheduler/scheduler_config.json */
    cdf_unet2d_cond *cunet;
    cdf_clip_text *text_encoder;
    cdf_clip_tokenizer *tokenizer;
    cdf_vae *vae;
} sd_state;

static void sd_free(void *state) {
    sd_state *st = state;
    if (!st) return;
    cdf_unet2d_cond_free(st->cunet);
    cdf_clip_text_free(st->text_encoder);
    cdf_clip_tokenizer_free(st->tokenizer);
    cdf_vae_free(st->vae);
    cdf_sched_config_free(&st->sched);
    cdf_free(st);
}

static cdf_status sd_load(cdf_pipeline *p, const char *dir, const cJSON *idx, const char *idx_path,
                          const char *variant, cdf_error *err) {
    static const char *const unet_ok[] = {"UNet2DConditionModel", NULL};
    static const char *const vae_ok[] = {"AutoencoderKL", NULL};
    static const char *const te_ok[] = {"CLIPTextModel", NULL};
    static const char *const tok_ok[] = {"CLIPTokenizer", "CLIPTokenizerFast", NULL};
    const char *cls = NULL;
    char sub[4096];
    TRY(cdf_index_expect(idx, idx_path, "unet", unet_ok, err));
    TRY(cdf_index_expect(idx, idx_path, "vae", vae_ok, err));
    TRY(cdf_index_expect(idx, idx_path, "text_encoder", te_ok, err));
    TRY(cdf_index_expect(idx, idx_path, "tokenizer", tok_ok, err));
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
    if (uc->cross_attention_dim[0] != cdf_clip_text_hidden_size(st->text_encoder))
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: unet cross_attention_dim %d does not match the text encoder's hidden_size %d", dir,
                             uc->cross_attention_dim[0], cdf_clip_text_hidden_size(st->text_encoder));
    if (uc->in_channels != cdf_vae_latent_channels(st->vae))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: unet in_channels %d does not match the vae latent_channels %d",
                             dir, uc->in_channels, cdf_vae_latent_channels(st->vae));
    return CDF_OK;
}

static uint64_t sd_weights_hash(const void *state, uint64_t h) {
    const sd_state *st = state;
    const cdf_weights *w[3] = {st->cunet->weights, cdf_clip_text_weights(st->text_encoder), cdf_vae_weights(st->vae)};
    for (int i = 0; i < 3; i++) {
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

/* ctx rows: [negative x nipp per prompt; positive x nipp per prompt] (CFG) or positive only. */
static cdf_status encode_prompts(cdf_exec *ex, const sd_state *p, const cdf_generate_options *o, int cfg,
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
    if ((s = cdf_pipeline_tokenize(p->tokenizer, o->prompts, B, 1, ids, NULL, err))) goto done;
    if ((s = cdf_clip_text_forward(ex, p->text_encoder, ids, B, L, o->clip_skip, emb))) goto done;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < nipp; k++) memcpy(pos_dst + ((size_t)b * nipp + k) * row, emb + (size_t)b * row, row * sizeof(float));
    if (cfg) {
        for (int b = 0; b < B; b++) neg[b] = o->num_negative_prompts ? o->negative_prompts[b] : "";
        /* the negative prompt is encoded without clip_skip, as diffusers' encode_prompt does */
        if ((s = cdf_pipeline_tokenize(p->tokenizer, neg, B, 0, ids, NULL, err))) goto done;
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

static cdf_status sd_run(cdf_pipeline *pipe, const cdf_generate_options *o, cdf_generator *const *gens,
                         size_t ngens, cdf_tensor *images, cdf_error *err) {
    const sd_state *p = pipe->state;
    int H = o->height, W = o->width, C, f = cdf_vae_scale_factor(p->vae);
    int dh, dw;
    sd_default_size(p, &dh, &dw, &C);
    if (!H) H = dh;
    if (!W) W = dw;
    TRY(check_options(o, ngens, H, W, err));
    int total = cdf_pipeline_prompt_batch(o), steps = o->num_inference_steps ? o->num_inference_steps : 50;
    if (steps < 1) return cdf_error_set(err, CDF_ERR_ARG, "num_inference_steps must be at least 1 (got %d)", steps);
    int cfg = o->guidance_scale > 1.0, rows = cfg ? 2 * total : total;
    int lc = p->cunet->cfg.in_channels, h = H / f, w = W / f, seq = 0;
    int D = cdf_clip_text_hidden_size(p->text_encoder), L = cdf_clip_tokenizer_max_length(p->tokenizer);
    size_t per = (size_t)lc * h * w, n = (size_t)total * per;
    cdf_exec ex;
    cdf_exec_init(&ex, o->threads, err);
    ex.derived_cap = CDF_EXEC_DERIVED_RUN; /* weights stay mapped for the run */
    ex.precision = o->precision;
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
    if ((s = cdf_pipeline_make_scheduler(&p->sched, o, 1, steps, &sch, err))) goto done;
    if ((s = cdf_pipeline_draw(gens, ngens, total, lc, h, w, lat, err))) goto done;
    int nsteps = cdf_scheduler_num_timesteps(sch);
    cdf_step_info info = {-1, nsteps, 0, lat, NULL, NULL, total, lc, lc, h, w, 0, 1, NULL};
    if ((s = cdf_pipeline_report_step(o, &info, err))) goto done;
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
    cdf_scheduler_free(sch);
    if (o->work_gflop) *o->work_gflop = ex.gemm_flops * 1e-9;
    cdf_exec_release(&ex);
    return s;
}

static const cdf_pipeline_class k_sd_classes[] = {{"StableDiffusionPipeline", CDF_PIPELINE_SD}};

const cdf_pipeline_family cdf_family_sd = {
    "Stable Diffusion", k_sd_classes, 1, sd_load, sd_run, sd_free, sd_weights_hash, sd_default_size,
    cdf_pipeline_prompt_batch,
};
