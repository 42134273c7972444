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

static volatile sig_atomic_t g_interrupted = 0;
static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

static int on_step(const cdf_step_info *si, void *user) {
    const out_opts *oo = user;
    if (!oo->quiet && si->step >= 0) cli_progress(si->stage_name ? si->stage_name : "denoising", si->step + 1, si->num_steps);
    return g_interrupted ? 1 : 0;
}

/* --dump-dir: each intermediate the pipeline hands over becomes DIR/NAME.npy. */
typedef struct dump_ctx {
    const char *cmd, *dir;
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
static void check_kind_options(const char *cmd, const gen_params *p, cdf_pipeline_kind kind) {
    int sd = kind == CDF_PIPELINE_SD, unclip = kind == CDF_PIPELINE_UNCLIP;
    const unsigned unclip_only = GP_SET_PRIOR_STEPS | GP_SET_DECODER_STEPS | GP_SET_SUPER_RES_STEPS |
                                 GP_SET_PRIOR_GUIDANCE | GP_SET_DECODER_GUIDANCE;
    const unsigned sd_only = GP_SET_GUIDANCE | GP_SET_RESCALE | GP_SET_HEIGHT | GP_SET_WIDTH | GP_SET_CLIP_SKIP |
                             GP_SET_SCHEDULER | GP_SET_KARRAS;
    if ((sd || unclip) && !p->nprompts)
        cli_usage_error(cmd, "a %s pipeline needs --prompt", unclip ? "UnCLIP" : "Stable Diffusion");
    if (!sd && !unclip && (p->nprompts || p->nnegatives || p->scheduler))
        cli_usage_error(cmd, "--prompt, --negative-prompt and --scheduler are for Stable Diffusion pipelines");
    if (!sd && (p->init_image || p->mask_image || (p->set & GP_SET_STRENGTH)))
        cli_usage_error(cmd, "--init-image, --mask-image and --strength are for Stable Diffusion pipelines");
    if ((p->set & GP_SET_STRENGTH) && !p->init_image) cli_usage_error(cmd, "--strength needs --init-image");
    if (p->mask_image && !p->init_image) cli_usage_error(cmd, "--mask-image needs --init-image");
    if (p->init_image && (p->set & (GP_SET_HEIGHT | GP_SET_WIDTH)))
        cli_usage_error(cmd, "--height and --width come from the --init-image picture");
    if (!unclip && ((p->set & unclip_only) || p->dump_dir))
        cli_usage_error(cmd, "--prior-steps, --decoder-steps, --super-res-steps, --prior-guidance-scale, "
                             "--decoder-guidance-scale and --dump-dir are for UnCLIP pipelines");
    if (unclip && ((p->set & (sd_only | GP_SET_STEPS | GP_SET_ETA | GP_SET_BATCH)) || p->nnegatives))
        cli_usage_error(cmd, "an UnCLIP pipeline takes --prior-steps, --decoder-steps, --super-res-steps and "
                             "--prior/--decoder-guidance-scale (not --steps, --guidance-scale, --negative-prompt, "
                             "--scheduler, --height/--width, --eta, --batch-size, --clip-skip)");
}

/* params plus the layout of this file ("grid": "RxC" for a grid, "image_index"
 * for one image of the batch), so that regenerate writes the same file. */
static void write_png(const char *cmd, const char *path, const cdf_image *img, cJSON *params, const char *grid,
                      int index) {
    cJSON_DeleteItemFromObjectCaseSensitive(params, "grid");
    cJSON_DeleteItemFromObjectCaseSensitive(params, "image_index");
    int ok = (!grid || cJSON_AddStringToObject(params, "grid", grid)) &&
             (index < 0 || cJSON_AddNumberToObject(params, "image_index", index));
    char *text = ok ? cJSON_PrintUnformatted(params) : NULL;
    if (!text) {
        fprintf(stderr, "cdiffusers %s: error: out of memory\n", cmd);
        exit(CLI_EXIT_FAIL);
    }
    const char *keys[2] = {"parameters", "Software"};
    const char *vals[2] = {text, "cdiffusers " CDF_VERSION_STRING};
    cdf_error err = {0};
    int rc = cdf_png_write(path, img, keys, vals, 2, &err);
    free(text);
    if (rc) cli_fail(cmd, &err);
}

static void write_images(const char *cmd, const out_opts *oo, const cdf_tensor *img, cJSON *params) {
    int B = (int)img->shape[0], H = (int)img->shape[1], W = (int)img->shape[2], C = (int)img->shape[3];
    cdf_error err = {0};
    if (oo->pick > B)
        cli_usage_error(cmd, "the image is number %d of its batch, but this run makes %d image(s)", oo->pick - 1, B);
    cdf_image *ims = calloc((size_t)B, sizeof *ims);
    if (!ims) {
        fprintf(stderr, "cdiffusers %s: error: out of memory\n", cmd);
        exit(CLI_EXIT_FAIL);
    }
    for (int b = 0; b < B; b++)
        if (cdf_image_from_f32((const float *)img->data + (size_t)b * H * W * C, H, W, C, &ims[b], &err))
            cli_fail(cmd, &err);
    if (oo->pick) {
        write_png(cmd, oo->out, &ims[oo->pick - 1], params, NULL, oo->pick - 1);
    } else if (B == 1) {
        write_png(cmd, oo->out, &ims[0], params, NULL, -1);
    } else if (oo->separate) {
        size_t L = strlen(oo->out);
        for (int b = 0; b < B; b++) {
            char path[4200];
            snprintf(path, sizeof path, "%.*s-%d.png", (int)(L - 4), oo->out, b);
            write_png(cmd, path, &ims[b], params, NULL, b);
        }
    } else {
        int r = oo->grid_r, c = oo->grid_c;
        if (!r) cdf_grid_shape_auto(B, &r, &c);
        if (r * c < B) cli_usage_error(cmd, "--grid %dx%d has fewer cells than the %d images", r, c, B);
        cdf_image g;
        if (cdf_image_grid(ims, B, r, c, &g, &err)) cli_fail(cmd, &err);
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%d", r, c);
        write_png(cmd, oo->out, &g, params, shape, -1);
        cdf_image_free(&g);
    }
    for (int b = 0; b < B; b++) cdf_image_free(&ims[b]);
    free(ims);
}

/* An input picture of an img2img / inpainting run: an 8-bit PNG (16-bit
 * ones refused: diffusers' image processor would see other values), its
 * file's SHA-256 into sha.  regenerate: a recorded path that is gone is
 * looked for by its file name beside the PNG; a picture whose SHA-256
 * differs from the recorded one is refused. */
static void load_picture(const char *cmd, const gen_params *p, const char **path, char beside[4096], const char *what,
                         const char *recorded_sha, cdf_image *img, char sha[65]) {
    cdf_error err = {0};
    if (p->png_dir && access(*path, R_OK) != 0) {
        const char *base = strrchr(*path, '/');
        snprintf(beside, 4096, "%s/%s", p->png_dir, base ? base + 1 : *path);
        if (access(beside, R_OK) == 0) *path = beside;
    }
    if (cdf_sha256_file(*path, sha, &err)) cli_fail(cmd, &err);
    if (recorded_sha && strcmp(recorded_sha, sha) != 0) {
        cdf_error_set(&err, CDF_ERR_ARG,
                      "%s: this %s is not the one the image was made with (SHA-256 %.12s..., the image records "
                      "%.12s...); use generate for a new picture",
                      *path, what, sha, recorded_sha);
        cli_fail(cmd, &err);
    }
    unsigned char head[26];
    FILE *f = fopen(*path, "rb");
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    if (got == sizeof head && !memcmp(head + 12, "IHDR", 4) && head[24] == 16) {
        cdf_error_set(&err, CDF_ERR_ARG, "%s: a 16-bit PNG; the %s must be an 8-bit PNG", *path, what);
        cli_fail(cmd, &err);
    }
    if (cdf_png_read(*path, img, &err)) cli_fail(cmd, &err);
}

int run_generation(const char *cmd, gen_params *p, const out_opts *oo, const char *expect_hash) {
    cdf_error err = {0};
    err.on_notice = cli_print_notice;
    cdf_load_options lo = {p->pipeline, p->variant};
    cdf_pipeline *pipe = NULL;
    if (cdf_pipeline_load(p->model, &lo, &pipe, &err)) cli_fail(cmd, &err);
    cdf_pipeline_kind kind = cdf_pipeline_get_kind(pipe);

    check_kind_options(cmd, p, kind);
    const int xl = !strcmp(cdf_pipeline_class_name(pipe), "StableDiffusionXLPipeline");
    if (!xl && (p->nprompts_2 || p->nnegatives_2 || (p->set & (GP_SET_ORIGINAL_SIZE | GP_SET_TARGET_SIZE | GP_SET_CROPS))))
        cli_usage_error(cmd, "--prompt-2, --negative-prompt-2, --original-size, --target-size and "
                             "--crops-coords-top-left are for Stable Diffusion XL pipelines");
    if (isnan(p->guidance)) p->guidance = xl ? 5.0 : 7.5; /* diffusers' defaults */
    cdf_generate_options o;
    gp_to_options(p, &o);
    cdf_image pic = {0};
    cdf_tensor init = {0};
    char init_path[4096], mask_path[4096]; /* regenerate: pictures found beside the PNG */
    if (p->init_image) {
        load_picture(cmd, p, &p->init_image, init_path, "init image", p->recorded_init_sha, &pic, p->init_sha);
        if (pic.channels != 3) {
            cdf_error_set(&err, CDF_ERR_ARG, "%s: the init image must be an 8-bit RGB PNG (this one has %d channels)",
                          p->init_image, pic.channels);
            cdf_image_free(&pic);
            cli_fail(cmd, &err);
        }
        init = (cdf_tensor){CDF_U8, 3, {pic.height, pic.width, 3}, pic.pixels};
        o.init_image = &init;
    }
    cdf_image mpic = {0};
    unsigned char *luma = NULL;
    cdf_tensor mask = {0};
    if (p->mask_image) {
        load_picture(cmd, p, &p->mask_image, mask_path, "mask", p->recorded_mask_sha, &mpic, p->mask_sha);
        if (!(luma = malloc((size_t)mpic.width * mpic.height))) {
            fprintf(stderr, "cdiffusers %s: error: out of memory\n", cmd);
            return CLI_EXIT_FAIL;
        }
        cdf_image_to_luma(&mpic, luma); /* PIL's mask.convert("L") */
        mask = (cdf_tensor){CDF_U8, 2, {mpic.height, mpic.width}, luma};
        o.mask_image = &mask;
    }
    int batch = cdf_pipeline_batch_size(pipe, &o);
    if (p->nseeds > 1 && p->nseeds != batch)
        cli_usage_error(cmd, "%d seeds given for a batch of %d images: give one seed, or one per image", p->nseeds,
                        batch);
    char os_seed[48] = "";
    if (!p->nseeds) {
        /* no seed: take one from the OS and say it, so the run can be repeated */
        cli_os_seed(cmd, &p->rng, os_seed, sizeof os_seed);
        p->seeds[p->nseeds++] = os_seed;
        printf("seed: %s\n", os_seed);
    }
    cdf_generator *gens[GP_MAX_LIST];
    for (int i = 0; i < p->nseeds; i++) gens[i] = cli_make_generator(cmd, &p->rng, p->seeds[i]);
    char hash[32] = "";
    if (oo->out || expect_hash) {
        if (cdf_pipeline_weights_hash(pipe, hash, &err)) cli_fail(cmd, &err);
        if (expect_hash && strcmp(expect_hash, hash) != 0)
            fprintf(stderr, "warning: the weights differ from those the image was made with (hash %s, image says %s)\n",
                    hash, expect_hash);
    }
    o.on_step = on_step;
    o.on_step_user = (void *)oo;
    dump_ctx dc = {cmd, p->dump_dir, {0}};
    if (p->dump_dir) {
        if (mkdir(p->dump_dir, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "cdiffusers %s: error: %s: cannot create the dump folder: %s\n", cmd, p->dump_dir,
                    strerror(errno));
            return CLI_EXIT_FAIL;
        }
        o.on_dump = on_dump;
        o.on_dump_user = &dc;
    }
    o.output_type = CDF_OUTPUT_NP;
    signal(SIGINT, on_sigint);
    cdf_tensor img;
    cdf_status gs = cdf_pipeline_generate(pipe, &o, gens, (size_t)p->nseeds, &img, NULL);
    if (gs && dc.err.status) cli_fail(cmd, &dc.err);
    if (gs) {
        cdf_error e2 = {0};
        snprintf(e2.msg, sizeof e2.msg, "%s", cdf_pipeline_last_error(pipe));
        e2.status = gs;
        cli_fail(cmd, &e2);
    }
    char sum[64];
    cli_format_f32(sum, sizeof sum, cdf_abs_sum_f32(img.data, (size_t)cdf_tensor_numel(&img)));
    printf("abs_sum: %s\n", sum);
    if (oo->out && !cli_has_ext(oo->out, ".png")) {
        if (cdf_npy_write(oo->out, &img, &err)) cli_fail(cmd, &err);
    } else if (oo->out) {
        if (!o.num_inference_steps) o.num_inference_steps = kind == CDF_PIPELINE_DDPM ? 1000 : 50;
        /* UnCLIPPipeline's defaults, recorded as the run used them */
        if (!o.prior_num_inference_steps) o.prior_num_inference_steps = 25;
        if (!o.decoder_num_inference_steps) o.decoder_num_inference_steps = 25;
        if (!o.super_res_num_inference_steps) o.super_res_num_inference_steps = 7;
        cJSON *params = gp_to_json(p, pipe, &o, (int)img.shape[1], (int)img.shape[2], os_seed, hash);
        if (!params) {
            fprintf(stderr, "cdiffusers %s: error: out of memory\n", cmd);
            return CLI_EXIT_FAIL;
        }
        write_images(cmd, oo, &img, params);
        cJSON_Delete(params);
    }
    cdf_tensor_free(&img);
    cdf_image_free(&pic);
    cdf_image_free(&mpic);
    free(luma);
    for (int i = 0; i < p->nseeds; i++) cdf_generator_free(gens[i]);
    cdf_pipeline_free(pipe);
    return 0;
}
