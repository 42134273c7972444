#include "run_gen.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"
#include "io/npy.h"
#include "io/png.h"
#include "io/sha256.h"

int out_parse_grid(const char *g, int *rows, int *cols) {
    char *x = NULL;
    long r = strtol(g, &x, 10);
    long c = x && (*x == 'x' || *x == 'X') ? strtol(x + 1, &x, 10) : 0;
    if (r < 1 || c < 1 || *x || r > 4096 || c > 4096) return -1;
    *rows = (int)r;
    *cols = (int)c;
    return 0;
}

int out_option(out_opts *oo, cli_args *a) {
    if (!strcmp(a->name, "out")) {
        oo->out = cli_value(a);
    } else if (!strcmp(a->name, "grid")) {
        const char *g = cli_value(a);
        if (out_parse_grid(g, &oo->grid_r, &oo->grid_c))
            cli_usage_error(a->cmd, "--grid must look like 2x2 (got '%s')", g);
    } else if (!strcmp(a->name, "separate")) {
        oo->separate = 1;
    } else if (!strcmp(a->name, "quiet")) {
        oo->quiet = 1;
    } else {
        return 0;
    }
    return 1;
}

void out_check(const char *cmd, const out_opts *oo) {
    int png = oo->out && cli_has_ext(oo->out, ".png");
    if (oo->out && !png && !cli_has_ext(oo->out, ".npy"))
        cli_usage_error(cmd, "--out must end in .png or .npy (got '%s')", oo->out);
    if ((oo->grid_r || oo->separate) && !png) cli_usage_error(cmd, "--grid and --separate need a .png --out");
}

int out_grid_shape(const out_opts *oo, int B, int *rows, int *cols, cli_err *e) {
    *rows = oo->grid_r;
    *cols = oo->grid_c;
    if (!*rows) cdf_grid_shape_auto(B, rows, cols);
    if ((long long)*rows * *cols < B)
        return cli_err_set(e, CLI_EXIT_USAGE, "--grid %dx%d has fewer cells than the %d images", *rows, *cols, B);
    return 0;
}

static volatile sig_atomic_t g_interrupted = 0;
static void on_signal(int sig) { g_interrupted = sig; }

void gen_catch_signals(void) {
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
}

int gen_interrupted(void) { return g_interrupted; }

static int on_step(const cdf_step_info *si, void *user) {
    const out_opts *oo = user;
    if (!oo->quiet && si->step >= 0) {
        char label[160];
        const char *stage = si->stage_name ? si->stage_name : "denoising";
        if (oo->progress_label) snprintf(label, sizeof label, "%s %s", oo->progress_label, stage);
        cli_progress(oo->progress_label ? label : stage, si->step + 1, si->num_steps);
    }
    return g_interrupted ? 1 : 0;
}

/* --dump-dir: each intermediate the pipeline hands over becomes DIR/NAME.npy. */
typedef struct dump_ctx {
    const char *dir;
    cdf_error err;
} dump_ctx;

static int on_dump(const char *name, const cdf_tensor *t, void *user) {
    dump_ctx *d = user;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.npy", d->dir, name);
    if (cdf_npy_write(path, t, &d->err)) return 1;
    return g_interrupted ? 1 : 0;
}

/* Which options a pipeline kind takes: a usage error for one given to another kind. */
static int check_kind_options(const gen_params *p, const cdf_pipeline *pipe, cli_err *e) {
    cdf_pipeline_kind kind = cdf_pipeline_get_kind(pipe);
    int sd = kind == CDF_PIPELINE_SD, unclip = kind == CDF_PIPELINE_UNCLIP;
    const unsigned unclip_only = GP_SET_PRIOR_STEPS | GP_SET_DECODER_STEPS | GP_SET_SUPER_RES_STEPS |
                                 GP_SET_PRIOR_GUIDANCE | GP_SET_DECODER_GUIDANCE;
    const unsigned sd_only = GP_SET_GUIDANCE | GP_SET_RESCALE | GP_SET_HEIGHT | GP_SET_WIDTH | GP_SET_CLIP_SKIP |
                             GP_SET_SCHEDULER | GP_SET_KARRAS;
    const int U = CLI_EXIT_USAGE;
    if ((sd || unclip) && !p->nprompts)
        return cli_err_set(e, U, "a %s pipeline needs --prompt", unclip ? "UnCLIP" : "Stable Diffusion");
    if (!sd && !unclip && (p->nprompts || p->nnegatives || p->scheduler))
        return cli_err_set(e, U, "--prompt, --negative-prompt and --scheduler are for Stable Diffusion pipelines");
    if (!sd && (p->init_image || p->mask_image || (p->set & GP_SET_STRENGTH)))
        return cli_err_set(e, U, "--init-image, --mask-image and --strength are for Stable Diffusion pipelines");
    if ((p->set & GP_SET_STRENGTH) && !p->init_image) return cli_err_set(e, U, "--strength needs --init-image");
    if (p->mask_image && !p->init_image) return cli_err_set(e, U, "--mask-image needs --init-image");
    if (p->init_image && (p->set & (GP_SET_HEIGHT | GP_SET_WIDTH)))
        return cli_err_set(e, U, "--height and --width come from the --init-image picture");
    if (!unclip && ((p->set & unclip_only) || p->dump_dir))
        return cli_err_set(e, U, "--prior-steps, --decoder-steps, --super-res-steps, --prior-guidance-scale, "
                                 "--decoder-guidance-scale and --dump-dir are for UnCLIP pipelines");
    if (unclip && ((p->set & (sd_only | GP_SET_STEPS | GP_SET_ETA | GP_SET_BATCH)) || p->nnegatives))
        return cli_err_set(e, U, "an UnCLIP pipeline takes --prior-steps, --decoder-steps, --super-res-steps and "
                                 "--prior/--decoder-guidance-scale (not --steps, --guidance-scale, --negative-prompt, "
                                 "--scheduler, --height/--width, --eta, --batch-size, --clip-skip)");
    const int xl = !strcmp(cdf_pipeline_class_name(pipe), "StableDiffusionXLPipeline");
    if (!xl && (p->nprompts_2 || p->nnegatives_2 || (p->set & (GP_SET_ORIGINAL_SIZE | GP_SET_TARGET_SIZE | GP_SET_CROPS))))
        return cli_err_set(e, U, "--prompt-2, --negative-prompt-2, --original-size, --target-size and "
                                 "--crops-coords-top-left are for Stable Diffusion XL pipelines");
    return 0;
}

/* An input picture of an img2img / inpainting run: an 8-bit PNG (16-bit
 * ones refused: diffusers' image processor would see other values), its
 * file's SHA-256 into sha.  regenerate: a recorded path that is gone is
 * looked for by its file name beside the PNG; a picture whose SHA-256
 * differs from the recorded one is refused. */
static int load_picture(const gen_params *p, const char **path, char beside[4096], const char *what,
                        const char *recorded_sha, cdf_image *img, char sha[65], cli_err *e) {
    cdf_error err = {0};
    if (p->png_dir && access(*path, R_OK) != 0) {
        const char *base = strrchr(*path, '/');
        snprintf(beside, 4096, "%s/%s", p->png_dir, base ? base + 1 : *path);
        if (access(beside, R_OK) == 0) *path = beside;
    }
    if (cdf_sha256_file(*path, sha, &err)) return cli_err_from(e, &err);
    if (recorded_sha && strcmp(recorded_sha, sha) != 0) {
        cdf_error_set(&err, CDF_ERR_ARG,
                      "%s: this %s is not the one the image was made with (SHA-256 %.12s..., the image records "
                      "%.12s...); use generate for a new picture",
                      *path, what, sha, recorded_sha);
        return cli_err_from(e, &err);
    }
    unsigned char head[26];
    FILE *f = fopen(*path, "rb");
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    if (got == sizeof head && !memcmp(head + 12, "IHDR", 4) && head[24] == 16) {
        cdf_error_set(&err, CDF_ERR_ARG, "%s: a 16-bit PNG; the %s must be an 8-bit PNG", *path, what);
        return cli_err_from(e, &err);
    }
    if (cdf_png_read(*path, img, &err)) return cli_err_from(e, &err);
    return 0;
}

static int load_pictures(gen_job *j, cli_err *e) {
    gen_params *p = j->p;
    if (p->init_image) {
        if (load_picture(p, &p->init_image, j->init_path, "init image", p->recorded_init_sha, &j->pic, p->init_sha, e))
            return -1;
        if (j->pic.channels != 3) {
            cdf_error err = {0};
            cdf_error_set(&err, CDF_ERR_ARG, "%s: the init image must be an 8-bit RGB PNG (this one has %d channels)",
                          p->init_image, j->pic.channels);
            return cli_err_from(e, &err);
        }
        j->init = (cdf_tensor){CDF_U8, 3, {j->pic.height, j->pic.width, 3}, j->pic.pixels};
        j->o.init_image = &j->init;
    }
    if (p->mask_image) {
        if (load_picture(p, &p->mask_image, j->mask_path, "mask", p->recorded_mask_sha, &j->mpic, p->mask_sha, e))
            return -1;
        if (!(j->luma = malloc((size_t)j->mpic.width * j->mpic.height)))
            return cli_err_set(e, CLI_EXIT_FAIL, "out of memory");
        cdf_image_to_luma(&j->mpic, j->luma); /* PIL's mask.convert("L") */
        j->mask = (cdf_tensor){CDF_U8, 2, {j->mpic.height, j->mpic.width}, j->luma};
        j->o.mask_image = &j->mask;
    }
    return 0;
}

static int prepare(gen_job *j, const char *weights_hash, cli_err *e) {
    gen_params *p = j->p;
    if (check_kind_options(p, j->pipe, e)) return -1;
    cdf_pipeline_kind kind = cdf_pipeline_get_kind(j->pipe);
    const int xl = !strcmp(cdf_pipeline_class_name(j->pipe), "StableDiffusionXLPipeline");
    if (isnan(p->guidance)) p->guidance = xl ? 5.0 : 7.5; /* diffusers' defaults */
    gp_to_options(p, &j->o);
    if (load_pictures(j, e)) return -1;
    j->batch = cdf_pipeline_batch_size(j->pipe, &j->o);
    if (p->nseeds > 1 && p->nseeds != j->batch)
        return cli_err_set(e, CLI_EXIT_USAGE, "%d seeds given for a batch of %d images: give one seed, or one per image",
                           p->nseeds, j->batch);
    if (!p->nseeds) {
        /* no seed: take one from the OS (the caller says it), so the run can be repeated */
        if (cli_try_os_seed(&p->rng, j->os_seed, sizeof j->os_seed, e)) return -1;
        p->seeds[p->nseeds++] = j->os_seed;
    }
    for (; j->ngens < p->nseeds; j->ngens++)
        if (cli_try_generator(&p->rng, p->seeds[j->ngens], &j->gens[j->ngens], e)) return -1;
    /* the size the run makes: the options', the init picture's, or the folder's */
    int h0, w0, c0;
    cdf_pipeline_sample_size(j->pipe, &h0, &w0, &c0);
    j->height = p->height ? p->height : j->o.init_image ? (int)j->init.shape[0] : h0;
    j->width = p->width ? p->width : j->o.init_image ? (int)j->init.shape[1] : w0;
    /* the defaults recorded as the run uses them (UnCLIPPipeline's 25, 25, 7) */
    cdf_generate_options rec = j->o;
    if (!rec.num_inference_steps) rec.num_inference_steps = kind == CDF_PIPELINE_DDPM ? 1000 : 50;
    if (!rec.prior_num_inference_steps) rec.prior_num_inference_steps = 25;
    if (!rec.decoder_num_inference_steps) rec.decoder_num_inference_steps = 25;
    if (!rec.super_res_num_inference_steps) rec.super_res_num_inference_steps = 7;
    j->params = gp_to_json(p, j->pipe, &rec, j->height, j->width, j->os_seed, weights_hash[0] ? weights_hash : NULL);
    if (!j->params) return cli_err_set(e, CLI_EXIT_FAIL, "out of memory");
    j->o.on_step = on_step;
    j->o.on_step_user = (void *)j->oo;
    j->o.output_type = CDF_OUTPUT_NP;
    if (p->dump_dir) {
        if (mkdir(p->dump_dir, 0777) != 0 && errno != EEXIST)
            return cli_err_set(e, CLI_EXIT_FAIL, "%s: cannot create the dump folder: %s", p->dump_dir, strerror(errno));
        dump_ctx *dc = calloc(1, sizeof *dc);
        if (!dc) return cli_err_set(e, CLI_EXIT_FAIL, "out of memory");
        dc->dir = p->dump_dir;
        j->dump = dc;
        j->o.on_dump = on_dump;
        j->o.on_dump_user = dc;
    }
    return 0;
}

int gen_prepare(gen_job *j, const char *cmd, cdf_pipeline *pipe, const char *weights_hash, gen_params *p,
                const out_opts *oo, cli_err *e) {
    memset(j, 0, sizeof *j);
    j->cmd = cmd;
    j->pipe = pipe;
    j->p = p;
    j->oo = oo;
    if (prepare(j, weights_hash, e)) {
        gen_job_free(j);
        return -1;
    }
    return 0;
}

int gen_run(gen_job *j, cdf_tensor *img, cli_err *e) {
    cdf_status gs = cdf_pipeline_generate(j->pipe, &j->o, j->gens, (size_t)j->ngens, img, NULL);
    dump_ctx *dc = j->dump;
    if (gs && dc && dc->err.status) return cli_err_from(e, &dc->err);
    if (gs) {
        cdf_error e2 = {0};
        snprintf(e2.msg, sizeof e2.msg, "%s", cdf_pipeline_last_error(j->pipe));
        e2.status = gs;
        return cli_err_from(e, &e2);
    }
    if (img->ndim != 4 || img->shape[0] != j->batch || img->shape[1] != j->height || img->shape[2] != j->width) {
        cdf_tensor_free(img);
        return cli_err_set(e, CLI_EXIT_FAIL, "internal error: the run made images of another size than foreseen");
    }
    return 0;
}

cJSON *gen_file_params(const gen_job *j, const char *grid, int index) {
    cJSON *c = cJSON_Duplicate(j->params, 1);
    if (!c) return NULL;
    if ((grid && !cJSON_AddStringToObject(c, "grid", grid)) || (index >= 0 && !cJSON_AddNumberToObject(c, "image_index", index))) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* The parameters plus the layout of this file ("grid": "RxC" for a grid,
 * "image_index" for one image of the batch), so that regenerate writes the
 * same file. */
static int write_png(const gen_job *j, const char *path, const cdf_image *img, const char *grid, int index, cli_err *e) {
    cJSON *params = gen_file_params(j, grid, index);
    char *text = params ? cJSON_PrintUnformatted(params) : NULL;
    cJSON_Delete(params);
    if (!text) return cli_err_set(e, CLI_EXIT_FAIL, "out of memory");
    const char *keys[2] = {"parameters", "Software"};
    const char *vals[2] = {text, "cdiffusers " CDF_VERSION_STRING};
    cdf_error err = {0};
    int rc = cdf_png_write(path, img, keys, vals, 2, &err);
    free(text);
    return rc ? cli_err_from(e, &err) : 0;
}

static int write_images(const gen_job *j, const cdf_tensor *img, cdf_image *ims, cli_err *e) {
    const out_opts *oo = j->oo;
    int B = (int)img->shape[0], H = (int)img->shape[1], W = (int)img->shape[2], C = (int)img->shape[3];
    cdf_error err = {0};
    if (oo->pick > B)
        return cli_err_set(e, CLI_EXIT_USAGE, "the image is number %d of its batch, but this run makes %d image(s)",
                           oo->pick - 1, B);
    for (int b = 0; b < B; b++)
        if (cdf_image_from_f32((const float *)img->data + (size_t)b * H * W * C, H, W, C, &ims[b], &err))
            return cli_err_from(e, &err);
    if (oo->pick) return write_png(j, oo->out, &ims[oo->pick - 1], NULL, oo->pick - 1, e);
    if (B == 1) return write_png(j, oo->out, &ims[0], NULL, -1, e);
    if (oo->separate) {
        size_t L = strlen(oo->out);
        for (int b = 0; b < B; b++) {
            char path[4200];
            snprintf(path, sizeof path, "%.*s-%d.png", (int)(L - 4), oo->out, b);
            if (write_png(j, path, &ims[b], NULL, b, e)) return -1;
        }
        return 0;
    }
    int r, c;
    if (out_grid_shape(oo, B, &r, &c, e)) return -1;
    cdf_image g;
    if (cdf_image_grid(ims, B, r, c, &g, &err)) return cli_err_from(e, &err);
    char shape[32];
    snprintf(shape, sizeof shape, "%dx%d", r, c);
    int rc = write_png(j, oo->out, &g, shape, -1, e);
    cdf_image_free(&g);
    return rc;
}

int gen_write(gen_job *j, const cdf_tensor *img, cli_err *e) {
    const char *out = j->oo->out;
    if (!out) return 0;
    if (!cli_has_ext(out, ".png")) {
        cdf_error err = {0};
        return cdf_npy_write(out, img, &err) ? cli_err_from(e, &err) : 0;
    }
    int B = (int)img->shape[0];
    cdf_image *ims = calloc((size_t)B, sizeof *ims);
    if (!ims) return cli_err_set(e, CLI_EXIT_FAIL, "out of memory");
    int rc = write_images(j, img, ims, e);
    for (int b = 0; b < B; b++) cdf_image_free(&ims[b]);
    free(ims);
    return rc;
}

void gen_job_free(gen_job *j) {
    cdf_image_free(&j->pic);
    cdf_image_free(&j->mpic);
    free(j->luma);
    for (int i = 0; i < j->ngens; i++) cdf_generator_free(j->gens[i]);
    cJSON_Delete(j->params);
    free(j->dump);
    memset(j, 0, sizeof *j);
}

int run_generation(const char *cmd, gen_params *p, const out_opts *oo, const char *expect_hash) {
    cdf_error err = {0};
    err.on_notice = cli_print_notice;
    cdf_load_options lo = {p->pipeline, p->variant};
    cdf_pipeline *pipe = NULL;
    if (cdf_pipeline_load(p->model, &lo, &pipe, &err)) cli_fail(cmd, &err);
    char hash[32] = "";
    if (oo->out || expect_hash) {
        if (cdf_pipeline_weights_hash(pipe, hash, &err)) cli_fail(cmd, &err);
        if (expect_hash && strcmp(expect_hash, hash) != 0)
            fprintf(stderr, "warning: the weights differ from those the image was made with (hash %s, image says %s)\n",
                    hash, expect_hash);
    }
    cli_err e;
    gen_job j;
    if (gen_prepare(&j, cmd, pipe, hash, p, oo, &e)) cli_exit(cmd, &e);
    if (j.os_seed[0]) printf("seed: %s\n", j.os_seed);
    gen_catch_signals();
    cdf_tensor img;
    if (gen_run(&j, &img, &e)) cli_exit(cmd, &e);
    char sum[64];
    cli_format_f32(sum, sizeof sum, cdf_abs_sum_f32(img.data, (size_t)cdf_tensor_numel(&img)));
    printf("abs_sum: %s\n", sum);
    if (gen_write(&j, &img, &e)) cli_exit(cmd, &e);
    cdf_tensor_free(&img);
    gen_job_free(&j);
    cdf_pipeline_free(pipe);
    return 0;
}
