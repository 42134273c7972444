/* cdiffusers generate: DDPM/DDIM pipelines from the command line. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/png.h"

#define CMD "generate"

static void help(void) {
    printf("usage: cdiffusers generate MODEL_DIR [options]\n"
           "\n"
           "Runs the model folder's pipeline (model_index.json: DDPMPipeline or DDIMPipeline)\n"
           "exactly as diffusers does, with numpy Generator(PCG64) noise as in mindone's\n"
           "reproducible pipelines, and prints abs_sum: np.abs(image).sum().\n"
           "\n"
           "options:\n"
           "  --pipeline auto|ddpm|ddim  pipeline class (auto: model_index.json); ddim converts the\n"
           "                             folder's scheduler with DDIMScheduler.from_config\n"
           "  --steps N                  num_inference_steps (default: ddpm 1000, ddim 50)\n"
           "  --eta E                    DDIM eta (default 0.0)\n"
           "  --batch-size B             images to make (default 1)\n"
           "  --seed S                   one seed: one generator for the whole batch; give B seeds for\n"
           "                             one generator per image; none: a seed from the OS is printed.\n"
           "                             S is a non-negative integer of any size, or [a,b,...]\n"
           "  --threads T                threads (default: all processors; results do not depend on it)\n"
           "  --variant NAME             weight file variant, e.g. fp16 (diffusion_pytorch_model.fp16.safetensors)\n"
           "  --out FILE                 .npy: float32 [B,H,W,C] in [0,1], exactly output_type=\"np\";\n"
           "                             .png: the image; a batch becomes one grid image\n"
           "  --grid RxC                 grid shape for a batch written as PNG (default near-square)\n"
           "  --separate                 with .png: one file per image, FILE-0.png, FILE-1.png, ...\n"
           "  --quiet                    no progress bar\n"
           "\n"
           "PNG files carry the generation parameters (JSON) in a text chunk named \"parameters\".\n");
}

static volatile sig_atomic_t g_interrupted = 0;
static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

typedef struct progress {
    int quiet;
} progress;

static int on_step(const cdf_step_info *si, void *user) {
    progress *p = user;
    if (!p->quiet && si->step >= 0) cli_progress("denoising", si->step + 1, si->num_steps);
    return g_interrupted ? 1 : 0;
}

/* Appends s to buf as a JSON string (quotes and escapes). */
static void json_str(char *buf, size_t n, const char *s) {
    size_t o = strlen(buf);
    if (o + 2 >= n) return;
    buf[o++] = '"';
    for (; *s && o + 8 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(buf + o, n - o, "\\u%04x", ch);
        } else {
            buf[o++] = (char)ch;
        }
    }
    buf[o++] = '"';
    buf[o] = 0;
}

static int write_png(const char *path, const cdf_image *img, const char *params) {
    const char *keys[2] = {"parameters", "Software"};
    const char *vals[2] = {params, "cdiffusers " CDF_VERSION_STRING};
    cdf_error err = {0};
    if (cdf_png_write(path, img, keys, vals, 2, &err)) cli_fail(CMD, &err);
    return 0;
}

int cmd_generate(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, CMD);
    const char *model = NULL, *out = NULL, *variant = NULL, *grid = NULL;
    const char *seeds[CLI_MAX_SEEDS];
    int nseeds = 0, quiet = 0, separate = 0;
    cdf_load_options lo = {CDF_PIPELINE_AUTO, NULL};
    cdf_generate_options go;
    cdf_generate_options_init(&go);
    go.threads = cli_default_threads();
    while (cli_next(&a)) {
        if (!a.name) {
            if (model) cli_usage_error(CMD, "unexpected argument '%s' (one MODEL_DIR only)", a.value);
            model = a.value;
        } else if (!strcmp(a.name, "help")) {
            help();
            return 0;
        } else if (!strcmp(a.name, "pipeline")) {
            const char *v = cli_value(&a);
            if (!strcmp(v, "auto")) lo.kind = CDF_PIPELINE_AUTO;
            else if (!strcmp(v, "ddpm")) lo.kind = CDF_PIPELINE_DDPM;
            else if (!strcmp(v, "ddim")) lo.kind = CDF_PIPELINE_DDIM;
            else cli_usage_error(CMD, "--pipeline must be auto, ddpm or ddim (got '%s')", v);
        } else if (!strcmp(a.name, "steps")) {
            go.num_inference_steps = (int)cli_parse_int(CMD, "--steps", cli_value(&a), 1, 1000000);
        } else if (!strcmp(a.name, "eta")) {
            go.eta = cli_parse_double(CMD, "--eta", cli_value(&a));
            if (go.eta < 0) cli_usage_error(CMD, "--eta must be >= 0");
        } else if (!strcmp(a.name, "batch-size")) {
            go.batch_size = (int)cli_parse_int(CMD, "--batch-size", cli_value(&a), 1, 4096);
        } else if (!strcmp(a.name, "seed")) {
            if (nseeds == CLI_MAX_SEEDS) cli_usage_error(CMD, "too many --seed options");
            seeds[nseeds++] = cli_value(&a);
        } else if (!strcmp(a.name, "threads")) {
            go.threads = (int)cli_parse_int(CMD, "--threads", cli_value(&a), 1, 1024);
        } else if (!strcmp(a.name, "variant")) {
            variant = cli_value(&a);
        } else if (!strcmp(a.name, "out")) {
            out = cli_value(&a);
        } else if (!strcmp(a.name, "grid")) {
            grid = cli_value(&a);
        } else if (!strcmp(a.name, "separate")) {
            separate = 1;
        } else if (!strcmp(a.name, "quiet")) {
            quiet = 1;
        } else {
            cli_usage_error(CMD, "unknown option --%s", a.name);
        }
    }
    if (!model) cli_usage_error(CMD, "MODEL_DIR is required");
    if (nseeds > 1 && nseeds != go.batch_size)
        cli_usage_error(CMD, "%d seeds given for a batch of %d: give one seed, or one per image", nseeds,
                        go.batch_size);
    int grid_r = 0, grid_c = 0;
    if (grid) {
        char *x = NULL;
        long r = strtol(grid, &x, 10);
        long c = x && (*x == 'x' || *x == 'X') ? strtol(x + 1, &x, 10) : 0;
        if (r < 1 || c < 1 || *x || r > 4096 || c > 4096)
            cli_usage_error(CMD, "--grid must look like 2x2 (got '%s')", grid);
        if (r * c < go.batch_size)
            cli_usage_error(CMD, "--grid %ldx%ld has fewer cells than the batch of %d", r, c, go.batch_size);
        grid_r = (int)r;
        grid_c = (int)c;
    }
    int is_png = 0;
    if (out) {
        if (cli_has_ext(out, ".png")) is_png = 1;
        else if (!cli_has_ext(out, ".npy")) cli_usage_error(CMD, "--out must end in .png or .npy (got '%s')", out);
    }
    if ((grid || separate) && !is_png) cli_usage_error(CMD, "--grid and --separate need a .png --out");
    lo.variant = variant;

    cdf_error err = {0};
    err.on_notice = cli_print_notice;
    cdf_pipeline *p = NULL;
    if (cdf_pipeline_load(model, &lo, &p, &err)) cli_fail(CMD, &err);

    cdf_generator *gens[CLI_MAX_SEEDS];
    for (int i = 0; i < nseeds; i++) gens[i] = cli_make_generator(CMD, seeds[i]);
    char os_seed[48] = "";
    progress prog = {quiet};
    go.on_step = on_step;
    go.on_step_user = &prog;
    go.output_type = CDF_OUTPUT_NP;
    signal(SIGINT, on_sigint);
    cdf_tensor img;
    cdf_status gs = cdf_pipeline_generate(p, &go, gens, (size_t)nseeds, &img, os_seed);
    if (gs) {
        cdf_error e2 = {0};
        snprintf(e2.msg, sizeof e2.msg, "%s", cdf_pipeline_last_error(p));
        e2.status = gs;
        cli_fail(CMD, &e2);
    }
    if (os_seed[0]) printf("seed: %s\n", os_seed);
    int64_t n = cdf_tensor_numel(&img);
    char sum[64];
    cli_format_f32(sum, sizeof sum, cdf_abs_sum_f32(img.data, (size_t)n));
    printf("abs_sum: %s\n", sum);

    if (out && !is_png) {
        if (cdf_npy_write(out, &img, &err)) cli_fail(CMD, &err);
    } else if (out) {
        int B = (int)img.shape[0], H = (int)img.shape[1], W = (int)img.shape[2], C = (int)img.shape[3];
        /* generation parameters, JSON */
        char params[16384] = "{\"model\":";
        json_str(params, sizeof params, model);
        size_t o = strlen(params);
        o += (size_t)snprintf(params + o, sizeof params - o,
                              ",\"pipeline\":\"%s\",\"scheduler\":\"%s\",\"scheduler_config\":%s,\"steps\":%d,"
                              "\"eta\":%.17g,\"batch_size\":%d,\"height\":%d,\"width\":%d,"
                              "\"generator\":\"numpy.random.Generator(PCG64)\",\"generator_mode\":\"%s\",\"seeds\":[",
                              cdf_pipeline_class_name(p), cdf_pipeline_scheduler_name(p),
                              cdf_pipeline_scheduler_json(p),
                              go.num_inference_steps ? go.num_inference_steps
                                                     : (cdf_pipeline_get_kind(p) == CDF_PIPELINE_DDIM ? 50 : 1000),
                              go.eta, B, H, W, nseeds > 1 ? "one per image" : "one for the batch");
        for (int i = 0; i < (nseeds ? nseeds : 1); i++) {
            if (i) strncat(params, ",", sizeof params - strlen(params) - 1);
            json_str(params, sizeof params, nseeds ? seeds[i] : os_seed);
        }
        o = strlen(params);
        snprintf(params + o, sizeof params - o, "],\"cdiffusers\":\"%s\"}", CDF_VERSION_STRING);
        cdf_image *ims = calloc((size_t)B, sizeof *ims);
        if (!ims) {
            fprintf(stderr, "cdiffusers generate: error: out of memory\n");
            return CLI_EXIT_FAIL;
        }
        for (int b = 0; b < B; b++)
            if (cdf_image_from_f32((const float *)img.data + (size_t)b * H * W * C, H, W, C, &ims[b], &err))
                cli_fail(CMD, &err);
        if (B == 1) {
            write_png(out, &ims[0], params);
        } else if (separate) {
            size_t L = strlen(out);
            for (int b = 0; b < B; b++) {
                char path[4200];
                snprintf(path, sizeof path, "%.*s-%d.png", (int)(L - 4), out, b);
                write_png(path, &ims[b], params);
            }
        } else {
            if (!grid_r) cdf_grid_shape_auto(B, &grid_r, &grid_c);
            cdf_image g;
            if (cdf_image_grid(ims, B, grid_r, grid_c, &g, &err)) cli_fail(CMD, &err);
            write_png(out, &g, params);
            cdf_image_free(&g);
        }
        for (int b = 0; b < B; b++) cdf_image_free(&ims[b]);
        free(ims);
    }
    cdf_tensor_free(&img);
    for (int i = 0; i < nseeds; i++) cdf_generator_free(gens[i]);
    cdf_pipeline_free(p);
    return 0;
}
