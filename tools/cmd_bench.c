/* cdiffusers bench: time one component (UNet, VAE decode, text encoder) or
 * a whole pipeline call of a model folder; one JSON line per timed rep. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "io/json.h"
#include "models/clip_text.h"
#include "models/unet2d.h"
#include "models/unet2d_cond.h"
#include "models/vae.h"
#include "tensor/exec.h"
#include "tensor/gemm.h"
#include "text/clip_tokenizer.h"

#define CMD "bench"

static void help(void) {
    printf("usage: cdiffusers bench MODEL_DIR --what unet|vae|vae-encode|text|pipeline [--batch B]\n"
           "                        [--height H --width W]\n"
           "                        [--steps N] [--reps N] [--threads T] [--precision fp32|bf16] [--prompt TEXT]\n"
           "\n"
           "Times one part of a diffusers folder: one untimed warm-up call, then --reps timed calls\n"
           "(default 3), each printed as one JSON line on stdout:\n"
           "  {\"what\", \"rep\", \"seconds\", \"gflop\", \"gflops\", \"peak_rss_mib\", \"threads\", \"batch\",\n"
           "   \"height\", \"width\", \"kernel\", \"precision\"}\n"
           "gflop is the matrix-product work of the call (2*m*n*k over every GEMM and convolution,\n"
           "a Winograd convolution counted as the direct product it replaces),\n"
           "gflops that work per second; peak_rss_mib the process's peak resident memory so far;\n"
           "height/width the input's spatial size (latents for a UNet or VAE decode, the image for a VAE\n"
           "encode or a pipeline).\n"
           "\n"
           "  --what unet      one UNet forward at timestep 500 on seeded noise: UNet2DModel, or\n"
           "                   UNet2DConditionModel with a seeded 77-token context (batch 2 is one\n"
           "                   classifier-free guidance step)\n"
           "  --what vae       one VAE decode of seeded latents\n"
           "  --what vae-encode one VAE encode (encoder and quant_conv: the latent distribution's\n"
           "                   moments) of a seeded picture, as image-to-image and inpainting run it\n"
           "  --what text      the text encoder on --batch copies of the tokenized --prompt\n"
           "  --what pipeline  one generate call, seed 0: --steps (default 20; UnCLIP: each of its\n"
           "                   three stages), --batch images, --prompt for Stable Diffusion and UnCLIP\n"
           "  --batch B        batch size (default 1; 2 for an SD UNet)\n"
           "  --height/--width image size in pixels (default: the model's sample size; latents are\n"
           "                   1/8 of it for the SD UNet and the VAE)\n"
           "  --threads T      threads (default: all processors); results never depend on it\n"
           "  --precision P    fp32 (default) or bf16: the matrix-product arithmetic (see generate --help)\n");
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* VmHWM of this process in MiB (0 when /proc is not there). */
static double peak_rss_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atof(line + 6);
    fclose(f);
    return kb / 1024.0;
}

typedef struct bench {
    const char *dir, *what, *prompt;
    int batch, height, width, steps, reps, threads;
    cdf_precision precision;
    cdf_exec ex;
    cdf_error err;
    /* the component under test and its buffers */
    cdf_unet2d *unet;
    cdf_unet2d_cond *cunet;
    cdf_vae *vae;
    int encode;                     /* --what vae-encode: vae runs the encoder */
    cdf_clip_text *text;
    cdf_pipeline *pipe;
    float *x, *ctx, *y; /* inputs and output of one call */
    int64_t *ids;
    int h, w, seq;      /* spatial size of the component's input; context length */
    double gflop;       /* work of the last call */
} bench;

static float *seeded(bench *b, size_t n, const char *seed) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    cdf_generator *g = NULL;
    if (!x || cdf_generator_new(CDF_RNG_NUMPY, seed, &g, &b->err)) {
        free(x);
        if (!b->err.status) cdf_error_set(&b->err, CDF_ERR_NOMEM, "out of memory for the bench inputs");
        return NULL;
    }
    cdf_generator_standard_normal_f32(g, x, n);
    cdf_generator_free(g);
    return x;
}

/* "_class_name" of DIR/unet/config.json into buf (empty when absent). */
static void unet_class(const char *dir, char *buf, size_t n) {
    char path[4200];
    snprintf(path, sizeof path, "%s/unet/config.json", dir);
    buf[0] = 0;
    cJSON *root = NULL;
    cdf_error err = {0};
    if (cdf_json_load(path, &root, &err)) return;
    cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "_class_name");
    if (cJSON_IsString(c)) snprintf(buf, n, "%s", c->valuestring);
    cJSON_Delete(root);
}

static cdf_status setup(bench *b) {
    char sub[4200], cls[128];
    if (!b->batch && strcmp(b->what, "unet")) b->batch = 1;
    if (!strcmp(b->what, "unet")) {
        unet_class(b->dir, cls, sizeof cls);
        snprintf(sub, sizeof sub, "%s/unet", b->dir);
        if (!strcmp(cls, "UNet2DConditionModel")) {
            if (cdf_unet2d_cond_load(sub, NULL, &b->cunet, &b->err)) return b->err.status;
            const cdf_unet2d_cond_config *c = &b->cunet->cfg;
            if (!b->batch) b->batch = 2; /* one classifier-free guidance step */
            b->h = b->height ? b->height / 8 : c->sample_h;
            b->w = b->width ? b->width / 8 : c->sample_w;
            b->seq = 77;
            size_t nx = (size_t)b->batch * c->in_channels * b->h * b->w;
            b->x = seeded(b, nx, "1");
            b->ctx = seeded(b, (size_t)b->batch * b->seq * c->cross_attention_dim[0], "2");
            b->y = malloc(sizeof(float) * (size_t)b->batch * c->out_channels * b->h * b->w);
        } else {
            if (cdf_unet2d_load(sub, NULL, &b->unet, &b->err)) return b->err.status;
            const cdf_unet2d_config *c = &b->unet->cfg;
            if (!b->batch) b->batch = 1;
            b->h = b->height ? b->height : c->sample_h;
            b->w = b->width ? b->width : c->sample_w;
            b->x = seeded(b, (size_t)b->batch * c->in_channels * b->h * b->w, "1");
            b->ctx = malloc(1);
            b->y = malloc(sizeof(float) * (size_t)b->batch * c->out_channels * b->h * b->w);
        }
    } else if (!strcmp(b->what, "vae")) {
        snprintf(sub, sizeof sub, "%s/vae", b->dir);
        if (cdf_vae_load(sub, NULL, &b->vae, &b->err)) return b->err.status;
        int f = cdf_vae_scale_factor(b->vae);
        b->h = (b->height ? b->height : 512) / f;
        b->w = (b->width ? b->width : 512) / f;
        b->x = seeded(b, (size_t)b->batch * cdf_vae_latent_channels(b->vae) * b->h * b->w, "1");
        b->ctx = malloc(1);
        b->y = malloc(sizeof(float) * (size_t)b->batch * cdf_vae_out_channels(b->vae) * b->h * f * b->w * f);
    } else if (!strcmp(b->what, "vae-encode")) {
        snprintf(sub, sizeof sub, "%s/vae", b->dir);
        if (cdf_vae_load(sub, NULL, &b->vae, &b->err)) return b->err.status;
        int f = cdf_vae_scale_factor(b->vae);
        b->encode = 1;
        b->h = b->height ? b->height : 512;
        b->w = b->width ? b->width : 512;
        b->x = seeded(b, (size_t)b->batch * cdf_vae_in_channels(b->vae) * b->h * b->w, "1");
        b->ctx = malloc(1);
        b->y = malloc(sizeof(float) * (size_t)b->batch * 2 * cdf_vae_latent_channels(b->vae) * (b->h / f) * (b->w / f));
    } else if (!strcmp(b->what, "text")) {
        cdf_clip_tokenizer *tok = NULL;
        snprintf(sub, sizeof sub, "%s/tokenizer", b->dir);
        if (cdf_clip_tokenizer_load(sub, &tok, &b->err)) return b->err.status;
        snprintf(sub, sizeof sub, "%s/text_encoder", b->dir);
        if (cdf_clip_text_load(sub, NULL, &b->text, &b->err)) {
            cdf_clip_tokenizer_free(tok);
            return b->err.status;
        }
        b->seq = cdf_clip_tokenizer_max_length(tok);
        b->ids = malloc(sizeof(int64_t) * (size_t)b->batch * b->seq);
        b->y = malloc(sizeof(float) * (size_t)b->batch * b->seq * cdf_clip_text_hidden_size(b->text));
        b->x = b->ctx = malloc(1);
        cdf_status s = b->ids ? cdf_clip_tokenize(tok, b->prompt, b->ids, NULL, NULL, NULL, &b->err) : CDF_ERR_NOMEM;
        for (int i = 1; !s && i < b->batch; i++) memcpy(b->ids + (size_t)i * b->seq, b->ids, sizeof(int64_t) * b->seq);
        cdf_clip_tokenizer_free(tok);
        if (s) return s;
    } else {
        cdf_load_options lo = {CDF_PIPELINE_AUTO, NULL};
        if (cdf_pipeline_load(b->dir, &lo, &b->pipe, &b->err)) return b->err.status;
        b->x = b->ctx = b->y = malloc(1);
    }
    if (!b->x || !b->ctx || !b->y)
        return b->err.status ? b->err.status
                             : cdf_error_set(&b->err, CDF_ERR_NOMEM, "out of memory for the bench buffers");
    return CDF_OK;
}

/* One timed-or-not call of the component; sets b->gflop. */
static cdf_status call(bench *b) {
    cdf_status s;
    b->ex.gemm_flops = 0;
    if (b->cunet) {
        s = cdf_unet2d_cond_forward(&b->ex, b->cunet, b->x, b->batch, b->h, b->w, 500.0, b->ctx, b->seq, b->y);
    } else if (b->unet) {
        s = cdf_unet2d_forward(&b->ex, b->unet, b->x, b->batch, b->h, b->w, 500, b->y);
    } else if (b->vae && b->encode) {
        s = cdf_vae_encode(&b->ex, b->vae, b->x, b->batch, b->h, b->w, b->y);
    } else if (b->vae) {
        s = cdf_vae_decode(&b->ex, b->vae, b->x, b->batch, b->h, b->w, b->y);
    } else if (b->text) {
        s = cdf_clip_text_forward(&b->ex, b->text, b->ids, b->batch, b->seq, 0, b->y);
    } else {
        cdf_generate_options o;
        cdf_generate_options_init(&o);
        const char *prompts[1] = {b->prompt};
        cdf_pipeline_kind kind = cdf_pipeline_get_kind(b->pipe);
        int text = kind == CDF_PIPELINE_SD || kind == CDF_PIPELINE_UNCLIP;
        o.threads = b->threads;
        o.precision = b->precision;
        o.num_inference_steps = b->steps;
        o.batch_size = b->batch;
        if (text) {
            o.prompts = prompts;
            o.num_prompts = 1;
            o.num_images_per_prompt = b->batch;
        }
        if (kind == CDF_PIPELINE_SD) {
            o.height = b->height;
            o.width = b->width;
        }
        if (kind == CDF_PIPELINE_UNCLIP) /* --steps for each of its three stages (at least 2) */
            o.prior_num_inference_steps = o.decoder_num_inference_steps = o.super_res_num_inference_steps =
                b->steps < 2 ? 2 : b->steps;
        double work = 0;
        o.work_gflop = &work;
        cdf_generator *g = NULL;
        cdf_tensor img;
        if ((s = cdf_generator_new(CDF_RNG_NUMPY, "0", &g, &b->err))) return s;
        s = cdf_pipeline_generate(b->pipe, &o, &g, 1, &img, NULL);
        cdf_generator_free(g);
        if (s) {
            snprintf(b->err.msg, sizeof b->err.msg, "%s", cdf_pipeline_last_error(b->pipe));
            b->err.status = s;
            return s;
        }
        b->h = (int)img.shape[1];
        b->w = (int)img.shape[2];
        cdf_tensor_free(&img);
        b->gflop = work;
        return CDF_OK;
    }
    b->gflop = b->ex.gemm_flops * 1e-9;
    return s;
}

static void cleanup(bench *b) {
    cdf_unet2d_free(b->unet);
    cdf_unet2d_cond_free(b->cunet);
    cdf_vae_free(b->vae);
    cdf_clip_text_free(b->text);
    cdf_pipeline_free(b->pipe);
    if (b->ctx != b->x) free(b->ctx);
    if (b->y != b->x) free(b->y);
    free(b->x);
    free(b->ids);
    cdf_exec_release(&b->ex);
}

int cmd_bench(int argc, char **argv) {
    bench b;
    memset(&b, 0, sizeof b);
    b.prompt = "a photograph of an astronaut riding a horse";
    b.reps = 3;
    b.steps = 20;
    b.threads = cli_default_threads();
    cli_args a;
    cli_args_init(&a, argc, argv, CMD);
    while (cli_next(&a)) {
        if (!a.name) {
            if (b.dir) cli_usage_error(CMD, "unexpected argument '%s'", a.value);
            b.dir = a.value;
        } else if (!strcmp(a.name, "help")) {
            help();
            return 0;
        } else if (!strcmp(a.name, "what")) {
            b.what = cli_value(&a);
        } else if (!strcmp(a.name, "batch")) {
            b.batch = (int)cli_parse_int(CMD, "--batch", cli_value(&a), 1, 4096);
        } else if (!strcmp(a.name, "height")) {
            b.height = (int)cli_parse_int(CMD, "--height", cli_value(&a), 8, 65536);
        } else if (!strcmp(a.name, "width")) {
            b.width = (int)cli_parse_int(CMD, "--width", cli_value(&a), 8, 65536);
        } else if (!strcmp(a.name, "steps")) {
            b.steps = (int)cli_parse_int(CMD, "--steps", cli_value(&a), 1, 1000000);
        } else if (!strcmp(a.name, "reps")) {
            b.reps = (int)cli_parse_int(CMD, "--reps", cli_value(&a), 1, 1000);
        } else if (!strcmp(a.name, "threads")) {
            b.threads = (int)cli_parse_int(CMD, "--threads", cli_value(&a), 1, 4096);
        } else if (!strcmp(a.name, "precision")) {
            const char *v = cli_value(&a);
            if (cdf_precision_from_name(v, &b.precision))
                cli_usage_error(CMD, "--precision must be fp32 or bf16 (got \"%s\")", v);
        } else if (!strcmp(a.name, "prompt")) {
            b.prompt = cli_value(&a);
        } else {
            cli_usage_error(CMD, "unknown option --%s", a.name);
        }
    }
    if (!b.dir) cli_usage_error(CMD, "MODEL_DIR is required");
    if (!b.what ||
        (strcmp(b.what, "unet") && strcmp(b.what, "vae") && strcmp(b.what, "vae-encode") && strcmp(b.what, "text") &&
         strcmp(b.what, "pipeline")))
        cli_usage_error(CMD, "--what must be unet, vae, vae-encode, text or pipeline");
    if ((b.height && b.height % 8) || (b.width && b.width % 8))
        cli_usage_error(CMD, "--height and --width must be multiples of 8");
    cdf_exec_init(&b.ex, b.threads, &b.err);
    b.ex.derived_cap = CDF_EXEC_DERIVED_RUN; /* weights stay mapped for the run */
    b.ex.precision = b.precision;
    if (setup(&b) || call(&b)) { /* the warm-up call also pages the weights in */
        cleanup(&b);
        cli_fail(CMD, &b.err);
    }
    for (int r = 0; r < b.reps; r++) {
        double t0 = now();
        if (call(&b)) {
            cleanup(&b);
            cli_fail(CMD, &b.err);
        }
        double sec = now() - t0;
        printf("{\"what\": \"%s\", \"rep\": %d, \"seconds\": %.4f, \"gflop\": %.3f, \"gflops\": %.2f, "
               "\"peak_rss_mib\": %.1f, \"threads\": %d, \"batch\": %d, \"height\": %d, \"width\": %d, "
               "\"kernel\": \"%s\", \"precision\": \"%s\"}\n",
               b.what, r, sec, b.gflop, sec > 0 ? b.gflop / sec : 0.0, peak_rss_mib(), b.threads, b.batch, b.h, b.w,
               cdf_gemm_kernel_name(&b.ex), cdf_precision_name(b.precision));
        fflush(stdout);
    }
    cleanup(&b);
    return 0;
}
