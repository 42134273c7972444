/* UnCLIPPipeline (diffusers 0.32, kakaobrain/karlo-v1-alpha): a CLIP text
 * encoder with projection, a PriorTransformer that turns the text into a CLIP
 * image embedding, UnCLIPTextProjModel + a decoder UNet2DConditionModel that
 * turn the embedding into a small image, and two super-resolution
 * UNet2DModels (the first for every step but the last) that take it to the
 * output size after torch's antialiased bicubic upscale.  Three
 * UnCLIPSchedulers; every noise draw comes from the run's generators in
 * diffusers' order: prior init, prior steps, decoder init, decoder steps,
 * super-res init, super-res steps.  Each stage's intermediates can be handed
 * to o->on_dump under the golden data's names (docs/UNCLIP.md). */
#include <stdio.h>
#include <string.h>

#include "models/clip_text.h"
#include "models/prior_transformer.h"
#include "models/text_proj.h"
#include "models/unet2d.h"
#include "models/unet2d_cond.h"
#include "pipelines/pipeline_internal.h"
#include "tensor/exec.h"
#include "tensor/resize.h"
#include "text/clip_tokenizer.h"

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

enum { SCH_PRIOR, SCH_DECODER, SCH_SUPER_RES, N_SCHED };
static const char *const k_sched_dirs[N_SCHED] = {"prior_scheduler", "decoder_scheduler", "super_res_scheduler"};
static const char *const k_stage_names[N_SCHED] = {"prior", "decoder", "super-res"};

/* The family's own state, read-only after load. */
typedef struct unclip_state {
    cdf_sched_config sched[N_SCHED];   /* the three UnCLIPScheduler configs */
    cdf_clip_tokenizer *tokenizer;     /* pads with "!" (id 0) in Karlo */
    cdf_clip_text *text_encoder;       /* CLIPTextModelWithProjection */
    cdf_prior *prior;
    cdf_text_proj *text_proj;
    cdf_unet2d_cond *decoder;          /* class_embed_type identity, learned-range output (2 x in channels) */
    cdf_unet2d *super_res_first;       /* every super-res step but the last */
    cdf_unet2d *super_res_last;        /* the last super-res step */
} unclip_state;

static void unclip_free(void *state) {
    unclip_state *st = state;
    if (!st) return;
    cdf_clip_tokenizer_free(st->tokenizer);
    cdf_clip_text_free(st->text_encoder);
    cdf_prior_free(st->prior);
    cdf_text_proj_free(st->text_proj);
    cdf_unet2d_cond_free(st->decoder);
    cdf_unet2d_free(st->super_res_first);
    cdf_unet2d_free(st->super_res_last);
    for (int i = 0; i < N_SCHED; i++) cdf_sched_config_free(&st->sched[i]);
    cdf_free(st);
}

/* Sizes that must agree between components, each error naming the files and fields. */
static cdf_status check_shapes(const unclip_state *st, const char *dir, cdf_error *err) {
    const cdf_clip_text_config *tc = cdf_clip_text_get_config(st->text_encoder);
    const cdf_prior_config *pc = cdf_prior_get_config(st->prior);
    const cdf_text_proj_config *jc = cdf_text_proj_get_config(st->text_proj);
    const cdf_unet2d_cond_config *dc = &st->decoder->cfg;
    if (!tc->with_projection)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s/text_encoder/config.json: field 'architectures' must be CLIPTextModelWithProjection "
                             "(UnCLIP needs text_embeds)",
                             dir);
    if (cdf_clip_tokenizer_max_length(st->tokenizer) != pc->num_embeddings)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: prior/config.json num_embeddings %d does not match the tokenizer's model_max_length %d",
                             dir, pc->num_embeddings, cdf_clip_tokenizer_max_length(st->tokenizer));
    if (tc->max_position_embeddings < pc->num_embeddings)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: text_encoder/config.json max_position_embeddings %d is shorter than prior/config.json "
                             "num_embeddings %d",
                             dir, tc->max_position_embeddings, pc->num_embeddings);
    if (tc->hidden_size != pc->embedding_dim)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: text_encoder/config.json hidden_size %d does not match prior/config.json embedding_dim %d",
                             dir, tc->hidden_size, pc->embedding_dim);
    if (tc->projection_dim != pc->embedding_proj_dim)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: text_encoder/config.json projection_dim %d does not match prior/config.json "
                             "embedding_proj_dim %d",
                             dir, tc->projection_dim, pc->embedding_proj_dim);
    if (pc->clip_embed_dim != pc->embedding_dim)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s/prior/config.json: clip_embed_dim %d must equal embedding_dim %d (the prior's output "
                             "is its next latents)",
                             dir, pc->clip_embed_dim, pc->embedding_dim);
    if (jc->clip_embeddings_dim != pc->clip_embed_dim || jc->clip_embeddings_dim != tc->projection_dim ||
        jc->clip_embeddings_dim != tc->hidden_size)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: text_proj/config.json clip_embeddings_dim %d does not match the prior's image "
                             "embedding (%d) and the text encoder's projection_dim (%d) and hidden_size (%d)",
                             dir, jc->clip_embeddings_dim, pc->clip_embed_dim, tc->projection_dim, tc->hidden_size);
    if (dc->cross_attention_dim[0] != jc->cross_attention_dim)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: decoder/config.json cross_attention_dim %d does not match text_proj/config.json "
                             "cross_attention_dim %d",
                             dir, dc->cross_attention_dim[0], jc->cross_attention_dim);
    if (dc->time_embedding_dim != jc->time_embed_dim)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: decoder time embedding width %d does not match text_proj/config.json time_embed_dim %d",
                             dir, dc->time_embedding_dim, jc->time_embed_dim);
    if (!dc->class_embed_identity)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s/decoder/config.json: field 'class_embed_type' must be \"identity\" for UnCLIP", dir);
    if (!dc->sample_h || dc->sample_h != dc->sample_w)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s/decoder/config.json: field 'sample_size' must be one integer",
                             dir);
    int c = dc->in_channels, learned = strcmp(st->sched[SCH_DECODER].variance_type, "learned_range") == 0;
    if (dc->out_channels != (learned ? 2 * c : c))
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s/decoder/config.json: out_channels %d must be %d (in_channels %d%s)", dir,
                             dc->out_channels, learned ? 2 * c : c, c,
                             learned ? ", twice for decoder_scheduler's learned_range variance" : "");
    const cdf_unet2d *sr[2] = {st->super_res_first, st->super_res_last};
    static const char *const sr_names[2] = {"super_res_first", "super_res_last"};
    for (int i = 0; i < 2; i++) {
        if (sr[i]->cfg.in_channels != 2 * c)
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s/%s/config.json: in_channels %d must be %d (the latents and the upscaled decoder "
                                 "image, %d channels each)",
                                 dir, sr_names[i], sr[i]->cfg.in_channels, 2 * c, c);
        if (sr[i]->cfg.out_channels != c)
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s/%s/config.json: out_channels %d must be %d (decoder in_channels)",
                                 dir, sr_names[i], sr[i]->cfg.out_channels, c);
    }
    if (!st->super_res_first->cfg.sample_h || st->super_res_first->cfg.sample_h != st->super_res_first->cfg.sample_w)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s/super_res_first/config.json: field 'sample_size' must be one integer (the output size)",
                             dir);
    return CDF_OK;
}

static cdf_status unclip_load(cdf_pipeline *p, const char *dir, const cJSON *idx, const char *idx_path,
                              const char *variant, cdf_error *err) {
    static const char *const te_ok[] = {"CLIPTextModelWithProjection", NULL};
    static const char *const tok_ok[] = {"CLIPTokenizer", "CLIPTokenizerFast", NULL};
    static const char *const prior_ok[] = {"PriorTransformer", NULL};
    static const char *const proj_ok[] = {"UnCLIPTextProjModel", NULL};
    static const char *const dec_ok[] = {"UNet2DConditionModel", NULL};
    static const char *const sr_ok[] = {"UNet2DModel", NULL};
    static const char *const sch_ok[] = {"UnCLIPScheduler", NULL};
    TRY(cdf_index_expect(idx, idx_path, "text_encoder", te_ok, err));
    TRY(cdf_index_expect(idx, idx_path, "tokenizer", tok_ok, err));
    TRY(cdf_index_expect(idx, idx_path, "prior", prior_ok, err));
    TRY(cdf_index_expect(idx, idx_path, "text_proj", proj_ok, err));
    TRY(cdf_index_expect(idx, idx_path, "decoder", dec_ok, err));
    TRY(cdf_index_expect(idx, idx_path, "super_res_first", sr_ok, err));
    TRY(cdf_index_expect(idx, idx_path, "super_res_last", sr_ok, err));
    for (int i = 0; i < N_SCHED; i++) TRY(cdf_index_expect(idx, idx_path, k_sched_dirs[i], sch_ok, err));
    unclip_state *st = cdf_calloc(1, sizeof *st);
    if (!st) return cdf_error_set(err, CDF_ERR_NOMEM, "out of memory loading %s", dir);
    p->state = st;
    cJSON *all = cJSON_CreateObject();
    if (!all) return cdf_error_set(err, CDF_ERR_NOMEM, "out of memory loading %s", dir);
    cdf_status s = CDF_OK;
    for (int i = 0; i < N_SCHED && !s; i++) {
        char *json = NULL;
        s = cdf_pipeline_load_scheduler(dir, k_sched_dirs[i], -1, &st->sched[i], &json, err);
        if (!s && st->sched[i].kind != CDF_SCHED_UNCLIP)
            s = cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s/%s/scheduler_config.json: %s is not supported by "
                                                        "UnCLIPPipeline (UnCLIPScheduler)",
                              dir, k_sched_dirs[i], cdf_sched_kind_name(st->sched[i].kind));
        cJSON *one = json ? cJSON_Parse(json) : NULL;
        cdf_free(json);
        if (!s && (!one || !cJSON_AddItemToObject(all, k_sched_dirs[i], one))) {
            cJSON_Delete(one);
            s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory describing %s", k_sched_dirs[i]);
        } else if (s) {
            cJSON_Delete(one);
        }
    }
    if (!s && !(p->sched_json = cJSON_PrintUnformatted(all)))
        s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory describing the schedulers of %s", dir);
    cJSON_Delete(all);
    if (s) return s;
    snprintf(p->sched_name, sizeof p->sched_name, "%s", cdf_sched_kind_name(CDF_SCHED_UNCLIP));
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/tokenizer", dir);
    TRY(cdf_clip_tokenizer_load(sub, &st->tokenizer, err));
    snprintf(sub, sizeof sub, "%s/text_encoder", dir);
    TRY(cdf_clip_text_load(sub, variant, &st->text_encoder, err));
    snprintf(sub, sizeof sub, "%s/prior", dir);
    TRY(cdf_prior_load(sub, variant, &st->prior, err));
    snprintf(sub, sizeof sub, "%s/text_proj", dir);
    TRY(cdf_text_proj_load(sub, variant, &st->text_proj, err));
    snprintf(sub, sizeof sub, "%s/decoder", dir);
    TRY(cdf_unet2d_cond_load(sub, variant, &st->decoder, err));
    snprintf(sub, sizeof sub, "%s/super_res_first", dir);
    TRY(cdf_unet2d_load(sub, variant, &st->super_res_first, err));
    snprintf(sub, sizeof sub, "%s/super_res_last", dir);
    TRY(cdf_unet2d_load(sub, variant, &st->super_res_last, err));
    return check_shapes(st, dir, err);
}

static uint64_t unclip_weights_hash(const void *state, uint64_t h) {
    const unclip_state *st = state;
    const cdf_weights *w[7] = {cdf_clip_text_weights(st->text_encoder), cdf_prior_weights(st->prior),
                               cdf_text_proj_weights(st->text_proj), st->decoder->weights,
                               st->super_res_first->weights, st->super_res_last->weights, NULL};
    for (int i = 0; w[i]; i++) {
        h = cdf_weights_hash(w[i], h);
        cdf_weights_release_pages(w[i]); /* hashing read them all: do not keep them all resident */
    }
    return h;
}

/* The super-resolution UNet's sample size; the decoder's image channels. */
static void unclip_default_size(const void *state, int *h, int *w, int *c) {
    const unclip_state *st = state;
    *h = st->super_res_first->cfg.sample_h;
    *w = st->super_res_first->cfg.sample_w;
    *c = st->decoder->cfg.in_channels;
}

/* ---- one run ---- */

/* What a run needs besides the state: its options, generators, threads, and
 * the batch layout (B images; R = 2B rows [uncond; cond] with guidance). */
typedef struct unclip_run {
    const unclip_state *st;
    const cdf_generate_options *o;
    cdf_generator *const *gens;
    size_t ngens;
    cdf_exec ex;
    int B, R, cfg;
    int steps[N_SCHED];
    cdf_error *err;
} unclip_run;

/* Hands a float32 array [d0, d1, ...] to o->on_dump. */
static cdf_status dump(const unclip_run *r, const char *name, cdf_dtype dt, const void *data, int ndim,
                       const int64_t *shape) {
    if (!r->o->on_dump) return CDF_OK;
    cdf_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    t.data = (void *)data;
    if (r->o->on_dump(name, &t, r->o->on_dump_user))
        return cdf_error_set(r->err, CDF_ERR_INTERRUPTED, "interrupted while handing over %s", name);
    return CDF_OK;
}

/* One denoising loop's per-step dumps, stacked as [steps, ...] (only when
 * o->on_dump is set). */
typedef struct step_stack {
    float *latents;   /* [steps, n] */
    float *noise;     /* [steps - 1, n]: drawn for t > 0 only */
    size_t n;
} step_stack;

static cdf_status stack_init(const unclip_run *r, step_stack *k, int steps, size_t n) {
    memset(k, 0, sizeof *k);
    if (!r->o->on_dump) return CDF_OK;
    k->n = n;
    if (!(k->latents = cdf_mallocn((size_t)steps * n, sizeof(float))) ||
        !(k->noise = cdf_mallocn((size_t)(steps > 1 ? steps - 1 : 1) * n, sizeof(float))))
        return cdf_error_set(r->err, CDF_ERR_NOMEM, "out of memory for the step dumps");
    return CDF_OK;
}

static void stack_free(step_stack *k) {
    cdf_free(k->latents);
    cdf_free(k->noise);
    memset(k, 0, sizeof *k);
}

/* Dumps "<stage>_latents_steps" [steps, shape...] and "<stage>_noise_steps". */
static cdf_status stack_dump(const unclip_run *r, const step_stack *k, const char *stage, int steps, int ndim,
                             const int64_t *shape) {
    if (!r->o->on_dump) return CDF_OK;
    int64_t sh[CDF_MAX_DIMS];
    char name[64];
    for (int i = 0; i < ndim; i++) sh[i + 1] = shape[i];
    sh[0] = steps;
    snprintf(name, sizeof name, "%s_latents_steps", stage);
    TRY(dump(r, name, CDF_F32, k->latents, ndim + 1, sh));
    sh[0] = steps - 1;
    snprintf(name, sizeof name, "%s_noise_steps", stage);
    return dump(r, name, CDF_F32, k->noise, ndim + 1, sh);
}

/* The scheduler of stage `which` with its timesteps set. */
static cdf_status make_sched(const unclip_run *r, int which, cdf_scheduler **out) {
    return cdf_pipeline_make_scheduler(&r->st->sched[which], r->o, 0, r->steps[which], out, r->err);
}

/* One scheduler step of a stage on lat [B, c, hw] with model output mo
 * [B, mc, hw], drawing the step noise when the scheduler asks for it; records
 * the step and reports it. */
static cdf_status stage_step(unclip_run *r, int stage, cdf_scheduler *sch, int i, const float *mo, int mc, float *lat,
                             int c, int h, int w, float *noise, step_stack *k) {
    cdf_sched_step_opts so = {0.0, -1};
    size_t n = (size_t)r->B * c * h * w;
    const float *nz = NULL;
    int nsteps = cdf_scheduler_num_timesteps(sch);
    if (cdf_scheduler_step_needs_noise(sch, i, &so)) {
        TRY(cdf_pipeline_draw(r->gens, r->ngens, r->B, c, h, w, noise, r->err));
        nz = noise;
        if (k->noise && i < nsteps - 1) memcpy(k->noise + (size_t)i * n, noise, n * sizeof(float));
    }
    TRY(cdf_scheduler_step(sch, i, mo, mc, lat, r->B, c, (int64_t)h * w, nz, &so, r->err));
    if (k->latents) memcpy(k->latents + (size_t)i * n, lat, n * sizeof(float));
    cdf_step_info si = {i, nsteps, cdf_scheduler_timestep(sch, i), lat, mo, nz, r->B, c, mc, h, w,
                        stage, N_SCHED, k_stage_names[stage]};
    return cdf_pipeline_report_step(r->o, &si, r->err);
}

/* The initial noise of a stage: lat [B, c, h, w] (init_noise_sigma is 1). */
static cdf_status stage_init(unclip_run *r, int stage, cdf_scheduler *sch, float *lat, int c, int h, int w,
                             const char *dump_name) {
    TRY(cdf_pipeline_draw(r->gens, r->ngens, r->B, c, h, w, lat, r->err));
    float sigma0 = cdf_scheduler_init_noise_sigma(sch);
    size_t n = (size_t)r->B * c * h * w;
    for (size_t i = 0; i < n; i++) lat[i] = lat[i] * sigma0;
    int64_t sh[4] = {r->B, c, h, w};
    TRY(dump(r, dump_name, CDF_F32, lat, h == 1 && w == 1 ? 2 : 4, sh));
    cdf_step_info si = {-1, cdf_scheduler_num_timesteps(sch), 0, lat, NULL, NULL, r->B, c, c, h, w,
                        stage, N_SCHED, k_stage_names[stage]};
    return cdf_pipeline_report_step(r->o, &si, r->err);
}

/* Text: ids and masks of the [uncond; cond] rows, CLIP hidden states and
 * projected embeddings.  mask [R, L] int64 (1 up to eos), emb [R, P],
 * hid [R, L, Ht]. */
static cdf_status encode_text(unclip_run *r, int64_t *mask, float *emb, float *hid) {
    const unclip_state *st = r->st;
    const cdf_generate_options *o = r->o;
    int np = (int)o->num_prompts, nipp = o->num_images_per_prompt, L = cdf_clip_tokenizer_max_length(st->tokenizer);
    const cdf_clip_text_config *tc = cdf_clip_text_get_config(st->text_encoder);
    int P = tc->projection_dim, Ht = tc->hidden_size;
    cdf_status s = CDF_OK;
    int64_t *ids = cdf_mallocn((size_t)np * L, sizeof *ids), *m1 = cdf_mallocn((size_t)np * L, sizeof *m1);
    float *e1 = cdf_mallocn((size_t)np * P, sizeof *e1), *h1 = cdf_mallocn((size_t)np * L * Ht, sizeof *h1);
    const char **empty = cdf_calloc((size_t)np, sizeof *empty);
    int *lens = cdf_mallocn((size_t)np, sizeof *lens);
    if (!ids || !m1 || !e1 || !h1 || !empty || !lens) {
        s = cdf_error_set(r->err, CDF_ERR_NOMEM, "out of memory encoding %d prompts", np);
        goto done;
    }
    for (int pass = r->cfg ? 0 : 1; pass < 2; pass++) {
        /* pass 0: the unconditional "" prompt per prompt (rows [0, B)); pass 1: the prompts */
        const char *const *texts = o->prompts;
        if (pass == 0) {
            for (int b = 0; b < np; b++) empty[b] = "";
            texts = empty;
        }
        if ((s = cdf_pipeline_tokenize(st->tokenizer, texts, np, pass, ids, lens, r->err))) goto done;
        for (int b = 0; b < np; b++)
            for (int j = 0; j < L; j++) m1[(size_t)b * L + j] = j < lens[b];
        if ((s = cdf_clip_text_forward_proj(&r->ex, st->text_encoder, ids, np, L, h1, e1))) goto done;
        int row0 = pass == 1 && r->cfg ? r->B : 0;
        for (int b = 0; b < np; b++)
            for (int k = 0; k < nipp; k++) {
                size_t row = (size_t)row0 + (size_t)b * nipp + k;
                memcpy(mask + row * L, m1 + (size_t)b * L, (size_t)L * sizeof *mask);
                memcpy(emb + row * P, e1 + (size_t)b * P, (size_t)P * sizeof *emb);
                memcpy(hid + row * L * Ht, h1 + (size_t)b * L * Ht, (size_t)L * Ht * sizeof *hid);
            }
    }
done:
    cdf_free(ids);
    cdf_free(m1);
    cdf_free(e1);
    cdf_free(h1);
    cdf_free(empty);
    cdf_free(lens);
    return s;
}

/* The prior loop: img [B, D] = post_process(latents after the last step). */
static cdf_status run_prior(unclip_run *r, const float *emb, const float *hid, const int64_t *mask, float *img) {
    const unclip_state *st = r->st;
    int B = r->B, R = r->R, D = cdf_prior_embedding_dim(st->prior), L = cdf_prior_num_embeddings(st->prior);
    size_t n = (size_t)B * D;
    cdf_scheduler *sch = NULL;
    step_stack k = {0};
    float *in = cdf_mallocn((size_t)R * D, sizeof(float)), *out = cdf_mallocn((size_t)R * D, sizeof(float));
    float *mo = cdf_mallocn(n, sizeof(float)), *noise = cdf_mallocn(n, sizeof(float));
    cdf_status s = CDF_OK;
    if (!in || !out || !mo || !noise) {
        s = cdf_error_set(r->err, CDF_ERR_NOMEM, "out of memory for %d prior latents of %d", B, D);
        goto done;
    }
    if ((s = make_sched(r, SCH_PRIOR, &sch)) || (s = stack_init(r, &k, r->steps[SCH_PRIOR], n))) goto done;
    if ((s = stage_init(r, 0, sch, img, D, 1, 1, "prior_latents_init"))) goto done;
    float g = (float)r->o->prior_guidance_scale;
    int nsteps = cdf_scheduler_num_timesteps(sch);
    for (int i = 0; i < nsteps; i++) {
        for (int row = 0; row < R; row++) memcpy(in + (size_t)row * D, img + (size_t)(row % B) * D, D * sizeof(float));
        if ((s = cdf_prior_forward(&r->ex, st->prior, in, R, (double)cdf_scheduler_timestep(sch, i), emb, hid, L, mask,
                                   out)))
            goto done;
        if (r->cfg)
            cdf_pipeline_cfg(out, B, (size_t)D, (size_t)D, g, mo, (size_t)D);
        else
            memcpy(mo, out, n * sizeof(float));
        if ((s = stage_step(r, 0, sch, i, mo, D, img, D, 1, 1, noise, &k))) goto done;
    }
    int64_t sh[2] = {B, D};
    if ((s = stack_dump(r, &k, "prior", nsteps, 2, sh)) || (s = dump(r, "prior_latents_final", CDF_F32, img, 2, sh)))
        goto done;
    cdf_prior_post_process(st->prior, img, B);
    s = dump(r, "image_embeddings", CDF_F32, img, 2, sh);
done:
    cdf_free(in);
    cdf_free(out);
    cdf_free(mo);
    cdf_free(noise);
    stack_free(&k);
    cdf_scheduler_free(sch);
    return s;
}

/* text_proj and the decoder loop: small [B, c, h, h] = clamp(latents, -1, 1). */
static cdf_status run_decoder(unclip_run *r, const float *img, const float *emb, const float *hid,
                              const int64_t *mask, float *small) {
    const unclip_state *st = r->st;
    const cdf_unet2d_cond_config *dc = &st->decoder->cfg;
    const cdf_text_proj_config *jc = cdf_text_proj_get_config(st->text_proj);
    int B = r->B, R = r->R, L = cdf_clip_tokenizer_max_length(st->tokenizer), X = jc->clip_extra_context_tokens;
    int S = X + L, cross = jc->cross_attention_dim, T = jc->time_embed_dim;
    int c = dc->in_channels, mc = dc->out_channels, h = dc->sample_h;
    size_t per = (size_t)c * h * h, n = (size_t)B * per, mper = (size_t)mc * h * h;
    cdf_scheduler *sch = NULL;
    step_stack k = {0};
    float *ctx = cdf_mallocn((size_t)R * S * cross, sizeof(float)); /* [R, X + L, cross] */
    float *tim = cdf_mallocn((size_t)R * T, sizeof(float));         /* [R, T]: class_labels */
    float *dmask = cdf_mallocn((size_t)R * S, sizeof(float));       /* [R, X + L]: 1 keep, 0 masked */
    float *in = cdf_mallocn((size_t)R * per, sizeof(float));        /* [R, c, h, h] */
    float *out = cdf_mallocn((size_t)R * mper, sizeof(float));      /* [R, mc, h, h] */
    float *mo = cdf_mallocn((size_t)B * mper, sizeof(float));       /* [B, mc, h, h]: guided eps + variance */
    float *noise = cdf_mallocn(n, sizeof(float));                   /* [B, c, h, h] */
    cdf_status s = CDF_OK;
    if (!ctx || !tim || !dmask || !in || !out || !mo || !noise) {
        s = cdf_error_set(r->err, CDF_ERR_NOMEM, "out of memory for %d decoder latents of %dx%dx%d", B, c, h, h);
        goto done;
    }
    if ((s = cdf_text_proj_forward(&r->ex, st->text_proj, img, B, r->cfg, emb, hid, L, ctx, tim))) goto done;
    int64_t shc[3] = {R, S, cross}, sht[2] = {R, T};
    if ((s = dump(r, "decoder_encoder_hidden_states", CDF_F32, ctx, 3, shc)) ||
        (s = dump(r, "additive_clip_time_embeddings", CDF_F32, tim, 2, sht)))
        goto done;
    /* F.pad(text_mask, (X, 0), value=True): the extra context tokens are always attended to */
    for (int row = 0; row < R; row++)
        for (int j = 0; j < S; j++) dmask[(size_t)row * S + j] = j < X ? 1.0f : (float)mask[(size_t)row * L + j - X];
    cdf_weights_release_pages(cdf_text_proj_weights(st->text_proj));
    if ((s = make_sched(r, SCH_DECODER, &sch)) || (s = stack_init(r, &k, r->steps[SCH_DECODER], n))) goto done;
    if ((s = stage_init(r, 1, sch, small, c, h, h, "decoder_latents_init"))) goto done;
    float g = (float)r->o->decoder_guidance_scale;
    cdf_unetc_extra extra = {tim, dmask};
    int nsteps = cdf_scheduler_num_timesteps(sch);
    for (int i = 0; i < nsteps; i++) {
        for (int row = 0; row < R; row++) memcpy(in + (size_t)row * per, small + (size_t)(row % B) * per, per * sizeof(float));
        double t = (double)cdf_scheduler_timestep(sch, i);
        if ((s = cdf_unet2d_cond_forward_ext(&r->ex, st->decoder, in, R, h, h, t, ctx, S, &extra, out))) goto done;
        if (i == 0) {
            int64_t sh[4] = {R, mc, h, h};
            if ((s = dump(r, "decoder_unet0_output", CDF_F32, out, 4, sh))) goto done;
        }
        if (r->cfg) {
            /* eps = u + g (c - u) on the first c channels; the variance channels from the cond half */
            cdf_pipeline_cfg(out, B, per, mper, g, mo, mper);
            for (int b = 0; b < B; b++)
                memcpy(mo + (size_t)b * mper + per, out + ((size_t)B + b) * mper + per, (mper - per) * sizeof(float));
        } else {
            memcpy(mo, out, (size_t)B * mper * sizeof(float));
        }
        if ((s = stage_step(r, 1, sch, i, mo, mc, small, c, h, h, noise, &k))) goto done;
    }
    int64_t sh[4] = {B, c, h, h};
    if ((s = stack_dump(r, &k, "decoder", nsteps, 4, sh))) goto done;
    for (size_t i = 0; i < n; i++) small[i] = small[i] < -1.0f ? -1.0f : (small[i] > 1.0f ? 1.0f : small[i]);
    s = dump(r, "decoder_output", CDF_F32, small, 4, sh);
done:
    cdf_free(ctx);
    cdf_free(tim);
    cdf_free(dmask);
    cdf_free(in);
    cdf_free(out);
    cdf_free(mo);
    cdf_free(noise);
    stack_free(&k);
    cdf_scheduler_free(sch);
    return s;
}

/* The upscale and the super-res loop: lat [B, c, H, H] = the final latents. */
static cdf_status run_super_res(unclip_run *r, const float *small, float *lat) {
    const unclip_state *st = r->st;
    int B = r->B, c = st->decoder->cfg.in_channels, h = st->decoder->cfg.sample_h;
    int H = st->super_res_first->cfg.sample_h;
    size_t per = (size_t)c * H * H, n = (size_t)B * per;
    cdf_scheduler *sch = NULL;
    step_stack k = {0};
    float *up = cdf_mallocn(n, sizeof(float));           /* [B, c, H, H]: the upscaled decoder image */
    float *in = cdf_mallocn(2 * n, sizeof(float));       /* [B, 2c, H, H]: cat([latents, up], dim=1) */
    float *mo = cdf_mallocn(n, sizeof(float));           /* [B, c, H, H] */
    float *noise = cdf_mallocn(n, sizeof(float));        /* [B, c, H, H] */
    cdf_status s = CDF_OK;
    if (!up || !in || !mo || !noise) {
        s = cdf_error_set(r->err, CDF_ERR_NOMEM, "out of memory for %d super-resolution latents of %dx%dx%d", B, c, H,
                          H);
        goto done;
    }
    if ((s = make_sched(r, SCH_SUPER_RES, &sch)) || (s = stack_init(r, &k, r->steps[SCH_SUPER_RES], n))) goto done;
    /* diffusers draws the super-res noise before the upscale */
    if ((s = stage_init(r, 2, sch, lat, c, H, H, "super_res_latents_init"))) goto done;
    if ((s = cdf_resize_bicubic_aa(&r->ex, small, (int64_t)B * c, h, h, H, H, up, r->err))) goto done;
    int64_t sh[4] = {B, c, H, H};
    if ((s = dump(r, "image_upscaled", CDF_F32, up, 4, sh))) goto done;
    /* the upscaled half of the UNet input is the same every step: placed once */
    for (int b = 0; b < B; b++) memcpy(in + (size_t)b * 2 * per + per, up + (size_t)b * per, per * sizeof(float));
    int nsteps = cdf_scheduler_num_timesteps(sch);
    for (int i = 0; i < nsteps; i++) {
        const cdf_unet2d *unet = i == nsteps - 1 ? st->super_res_last : st->super_res_first;
        for (int b = 0; b < B; b++) memcpy(in + (size_t)b * 2 * per, lat + (size_t)b * per, per * sizeof(float));
        if ((s = cdf_unet2d_forward(&r->ex, unet, in, B, H, H, cdf_scheduler_timestep(sch, i), mo))) goto done;
        if (i == nsteps - 2) cdf_weights_release_pages(st->super_res_first->weights);
        if ((s = stage_step(r, 2, sch, i, mo, c, lat, c, H, H, noise, &k))) goto done;
    }
    s = stack_dump(r, &k, "super_res", nsteps, 4, sh);
done:
    cdf_free(up);
    cdf_free(in);
    cdf_free(mo);
    cdf_free(noise);
    stack_free(&k);
    cdf_scheduler_free(sch);
    return s;
}

static cdf_status check_options(const cdf_generate_options *o, size_t ngens, const int *steps, cdf_error *err) {
    TRY(cdf_pipeline_check_prompts(o, ngens, err));
    if (o->num_negative_prompts)
        return cdf_error_set(err, CDF_ERR_ARG, "UnCLIPPipeline takes no negative prompt (its unconditional prompt is \"\")");
    if (o->init_image || o->strength >= 0.0)
        return cdf_error_set(err, CDF_ERR_ARG, "UnCLIPPipeline takes no init_image or strength");
    if (o->scheduler || o->scheduler_config || o->use_karras_sigmas >= 0)
        return cdf_error_set(err, CDF_ERR_ARG, "UnCLIPPipeline runs its folder's three UnCLIPSchedulers: no scheduler swap");
    static const char *const names[N_SCHED] = {"prior_num_inference_steps", "decoder_num_inference_steps",
                                               "super_res_num_inference_steps"};
    for (int i = 0; i < N_SCHED; i++)
        if (steps[i] < 2)
            return cdf_error_set(err, CDF_ERR_ARG,
                                 "%s must be at least 2 (got %d): UnCLIPScheduler spaces its timesteps by 999 / (n - 1)",
                                 names[i], steps[i]);
    if (!(o->prior_guidance_scale >= 0.0))
        return cdf_error_set(err, CDF_ERR_ARG, "prior_guidance_scale must be >= 0 (got %g)", o->prior_guidance_scale);
    if (!(o->decoder_guidance_scale >= 0.0))
        return cdf_error_set(err, CDF_ERR_ARG, "decoder_guidance_scale must be >= 0 (got %g)",
                             o->decoder_guidance_scale);
    return CDF_OK;
}

static cdf_status unclip_generate(cdf_pipeline *p, const cdf_generate_options *o, cdf_generator *const *gens,
                                  size_t ngens, cdf_tensor *images, cdf_error *err) {
    unclip_run r;
    memset(&r, 0, sizeof r);
    r.st = p->state;
    r.o = o;
    r.gens = gens;
    r.ngens = ngens;
    r.err = err;
    r.steps[SCH_PRIOR] = o->prior_num_inference_steps ? o->prior_num_inference_steps : 25;
    r.steps[SCH_DECODER] = o->decoder_num_inference_steps ? o->decoder_num_inference_steps : 25;
    r.steps[SCH_SUPER_RES] = o->super_res_num_inference_steps ? o->super_res_num_inference_steps : 7;
    TRY(check_options(o, ngens, r.steps, err));
    const unclip_state *st = r.st;
    r.B = cdf_pipeline_prompt_batch(o);
    r.cfg = o->prior_guidance_scale > 1.0 || o->decoder_guidance_scale > 1.0;
    r.R = r.cfg ? 2 * r.B : r.B;
    const cdf_clip_text_config *tc = cdf_clip_text_get_config(st->text_encoder);
    int L = cdf_clip_tokenizer_max_length(st->tokenizer), P = tc->projection_dim, Ht = tc->hidden_size;
    int D = cdf_prior_embedding_dim(st->prior), c = st->decoder->cfg.in_channels, h = st->decoder->cfg.sample_h;
    int H = st->super_res_first->cfg.sample_h;
    if ((int64_t)H * H > CDF_PIPE_MAX_PIXELS)
        return cdf_error_set(err, CDF_ERR_LIMIT, "super_res_first/config.json: sample_size %d is over the limit of "
                                                 "%lld pixels per image", H, (long long)CDF_PIPE_MAX_PIXELS);
    cdf_exec_init(&r.ex, o->threads, err);
    r.ex.derived_cap = CDF_EXEC_DERIVED_RUN; /* weights stay mapped for the run */
    r.ex.precision = o->precision;
    int64_t *mask = cdf_mallocn((size_t)r.R * L, sizeof *mask);   /* [R, L] */
    float *emb = cdf_mallocn((size_t)r.R * P, sizeof(float));     /* [R, P]: text_embeds */
    float *hid = cdf_mallocn((size_t)r.R * L * Ht, sizeof(float)); /* [R, L, Ht]: last_hidden_state */
    float *img = cdf_mallocn((size_t)r.B * D, sizeof(float));     /* [B, D]: prior latents, then image embeddings */
    float *small = cdf_mallocn((size_t)r.B * c * h * h, sizeof(float)); /* [B, c, h, h] */
    float *lat = cdf_mallocn((size_t)r.B * c * H * H, sizeof(float));   /* [B, c, H, H] */
    cdf_status s = CDF_OK;
    if (!mask || !emb || !hid || !img || !small || !lat) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory for a batch of %d images", r.B);
        goto done;
    }
    if ((s = encode_text(&r, mask, emb, hid))) goto done;
    cdf_weights_release_pages(cdf_clip_text_weights(st->text_encoder));
    int64_t shm[2] = {r.R, L}, she[2] = {r.R, P}, shh[3] = {r.R, L, Ht};
    if ((s = dump(&r, "text_mask", CDF_I64, mask, 2, shm)) || (s = dump(&r, "prompt_embeds", CDF_F32, emb, 2, she)) ||
        (s = dump(&r, "text_enc_hid_states", CDF_F32, hid, 3, shh)))
        goto done;
    if ((s = run_prior(&r, emb, hid, mask, img))) goto done;
    cdf_weights_release_pages(cdf_prior_weights(st->prior));
    if ((s = run_decoder(&r, img, emb, hid, mask, small))) goto done;
    cdf_weights_release_pages(st->decoder->weights);
    if ((s = run_super_res(&r, small, lat))) goto done;
    cdf_weights_release_pages(st->super_res_last->weights);
    if ((s = cdf_pipeline_make_output(o, lat, r.B, c, H, H, images, err))) goto done;
    if (o->output_type == CDF_OUTPUT_NP) {
        int64_t sh[4] = {r.B, H, H, c};
        s = dump(&r, "image", CDF_F32, images->data, 4, sh);
        if (s) cdf_tensor_free(images);
    }
done:
    cdf_free(mask);
    cdf_free(emb);
    cdf_free(hid);
    cdf_free(img);
    cdf_free(small);
    cdf_free(lat);
    if (o->work_gflop) *o->work_gflop = r.ex.gemm_flops * 1e-9;
    cdf_exec_release(&r.ex);
    return s;
}

static const cdf_pipeline_class k_unclip_classes[] = {{"UnCLIPPipeline", CDF_PIPELINE_UNCLIP}};

const cdf_pipeline_family cdf_family_unclip = {
    "UnCLIP", k_unclip_classes, 1, unclip_load, unclip_generate, unclip_free, unclip_weights_hash, unclip_default_size,
    cdf_pipeline_prompt_batch,
};
