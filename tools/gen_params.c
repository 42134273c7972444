#include "gen_params.h"

#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

void gp_init(gen_params *p) {
    memset(p, 0, sizeof *p);
    p->pipeline = CDF_PIPELINE_AUTO;
    p->batch_size = 1;
    p->nipp = 1;
    p->guidance = NAN; /* the pipeline's default: run_generation resolves it (7.5; SDXL 5.0) */
    p->karras = -1;
    p->prior_guidance = 4.0;
    p->decoder_guidance = 8.0;
    p->strength = -1.0;
    p->threads = cli_default_threads();
}

void gp_free(gen_params *p) {
    if (p->owned) cJSON_Delete(p->owned);
    p->owned = NULL;
}

static int push(const char **list, int *n, const char *v, const char *what, cli_err *e) {
    if (*n == GP_MAX_LIST) return cli_err_set(e, CLI_EXIT_USAGE, "too many %s options", what);
    list[(*n)++] = v;
    return 1;
}

/* An integer option into *dst (GP_SET_* bit into p->set). */
static int set_int(gen_params *p, unsigned bit, const char *what, const char *v, long long lo, long long hi, int *dst,
                   cli_err *e) {
    long long x;
    if (cli_try_int(what, v, lo, hi, &x, e)) return -1;
    p->set |= bit;
    *dst = (int)x;
    return 1;
}

/* A number option that must be >= 0 (and finite). */
static int set_scale(gen_params *p, unsigned bit, const char *what, const char *v, double *dst, cli_err *e) {
    if (cli_try_double(what, v, dst, e)) return -1;
    if (!(*dst >= 0 && *dst <= 1e30)) return cli_err_set(e, CLI_EXIT_USAGE, "%s must be >= 0 (got %g)", what, *dst);
    p->set |= bit;
    return 1;
}

/* The options, and whether each takes a value. */
static const struct {
    const char *name;
    int flag;
} k_options[] = {
    {"pipeline", 0}, {"steps", 0}, {"eta", 0}, {"batch-size", 0}, {"seed", 0}, {"threads", 0}, {"variant", 0},
    {"prompt", 0}, {"negative-prompt", 0}, {"num-images-per-prompt", 0}, {"guidance-scale", 0},
    {"guidance-rescale", 0}, {"height", 0}, {"width", 0}, {"clip-skip", 0}, {"scheduler", 0}, {"rng", 0},
    {"gpu", 0}, {"prior-steps", 0}, {"decoder-steps", 0}, {"super-res-steps", 0}, {"prior-guidance-scale", 0},
    {"decoder-guidance-scale", 0}, {"dump-dir", 0}, {"precision", 0}, {"prompt-2", 0}, {"negative-prompt-2", 0},
    {"original-size", 0}, {"target-size", 0}, {"crops-coords-top-left", 0}, {"init-image", 0}, {"mask-image", 0},
    {"strength", 0}, {"karras", 1}, {"no-karras", 1},
};

int gp_option_kind(const char *name) {
    for (size_t i = 0; i < sizeof k_options / sizeof k_options[0]; i++)
        if (!strcmp(name, k_options[i].name)) return k_options[i].flag ? 1 : 2;
    return 0;
}

int gp_set(gen_params *p, const char *n, const char *v, cli_err *e) {
    if (!gp_option_kind(n)) return 0;
    if (!strcmp(n, "pipeline")) {
        if (!strcmp(v, "auto")) p->pipeline = CDF_PIPELINE_AUTO;
        else if (!strcmp(v, "ddpm")) p->pipeline = CDF_PIPELINE_DDPM;
        else if (!strcmp(v, "ddim")) p->pipeline = CDF_PIPELINE_DDIM;
        else if (!strcmp(v, "pndm")) p->pipeline = CDF_PIPELINE_PNDM;
        else if (!strcmp(v, "sd")) p->pipeline = CDF_PIPELINE_SD;
        else if (!strcmp(v, "unclip")) p->pipeline = CDF_PIPELINE_UNCLIP;
        else return cli_err_set(e, CLI_EXIT_USAGE, "--pipeline must be auto, ddpm, ddim, pndm, sd or unclip (got '%s')", v);
        p->set |= GP_SET_PIPELINE;
    } else if (!strcmp(n, "steps")) {
        return set_int(p, GP_SET_STEPS, "--steps", v, 1, 1000000, &p->steps, e);
    } else if (!strcmp(n, "eta")) {
        if (cli_try_double("--eta", v, &p->eta, e)) return -1;
        if (p->eta < 0) return cli_err_set(e, CLI_EXIT_USAGE, "--eta must be >= 0");
        p->set |= GP_SET_ETA;
    } else if (!strcmp(n, "batch-size")) {
        return set_int(p, GP_SET_BATCH, "--batch-size", v, 1, 4096, &p->batch_size, e);
    } else if (!strcmp(n, "seed")) {
        return push(p->seeds, &p->nseeds, v, "--seed", e);
    } else if (!strcmp(n, "threads")) {
        return set_int(p, 0, "--threads", v, 1, 1024, &p->threads, e);
    } else if (!strcmp(n, "variant")) {
        p->set |= GP_SET_VARIANT;
        p->variant = v;
    } else if (!strcmp(n, "prompt")) {
        return push(p->prompts, &p->nprompts, v, "--prompt", e);
    } else if (!strcmp(n, "negative-prompt")) {
        return push(p->negatives, &p->nnegatives, v, "--negative-prompt", e);
    } else if (!strcmp(n, "num-images-per-prompt")) {
        return set_int(p, GP_SET_NIPP, "--num-images-per-prompt", v, 1, 4096, &p->nipp, e);
    } else if (!strcmp(n, "guidance-scale")) {
        if (cli_try_double("--guidance-scale", v, &p->guidance, e)) return -1;
        if (p->guidance < 0) return cli_err_set(e, CLI_EXIT_USAGE, "--guidance-scale must be >= 0 (got %g)", p->guidance);
        p->set |= GP_SET_GUIDANCE;
    } else if (!strcmp(n, "guidance-rescale")) {
        if (cli_try_double("--guidance-rescale", v, &p->guidance_rescale, e)) return -1;
        if (p->guidance_rescale < 0 || p->guidance_rescale > 1)
            return cli_err_set(e, CLI_EXIT_USAGE, "--guidance-rescale must be in [0, 1] (got %g)", p->guidance_rescale);
        p->set |= GP_SET_RESCALE;
    } else if (!strcmp(n, "height") || !strcmp(n, "width")) {
        int h = n[0] == 'h', *dst = h ? &p->height : &p->width;
        if (set_int(p, h ? GP_SET_HEIGHT : GP_SET_WIDTH, h ? "--height" : "--width", v, 1, 1 << 16, dst, e) < 0) return -1;
        if (*dst % 8) return cli_err_set(e, CLI_EXIT_USAGE, "--%s must be a multiple of 8 (got %d)", n, *dst);
    } else if (!strcmp(n, "clip-skip")) {
        return set_int(p, GP_SET_CLIP_SKIP, "--clip-skip", v, 0, 64, &p->clip_skip, e);
    } else if (!strcmp(n, "scheduler")) {
        p->set |= GP_SET_SCHEDULER;
        p->scheduler = v;
    } else if (!strcmp(n, "rng")) {
        if (cli_try_rng_kind(&p->rng, v, e)) return -1;
        p->set |= GP_SET_RNG;
    } else if (!strcmp(n, "gpu")) {
        if (cli_try_rng_gpu(&p->rng, v, e)) return -1;
        p->set |= GP_SET_RNG;
    } else if (!strcmp(n, "prior-steps")) {
        return set_int(p, GP_SET_PRIOR_STEPS, "--prior-steps", v, 2, 1000000, &p->prior_steps, e);
    } else if (!strcmp(n, "decoder-steps")) {
        return set_int(p, GP_SET_DECODER_STEPS, "--decoder-steps", v, 2, 1000000, &p->decoder_steps, e);
    } else if (!strcmp(n, "super-res-steps")) {
        return set_int(p, GP_SET_SUPER_RES_STEPS, "--super-res-steps", v, 2, 1000000, &p->super_res_steps, e);
    } else if (!strcmp(n, "prior-guidance-scale")) {
        return set_scale(p, GP_SET_PRIOR_GUIDANCE, "--prior-guidance-scale", v, &p->prior_guidance, e);
    } else if (!strcmp(n, "decoder-guidance-scale")) {
        return set_scale(p, GP_SET_DECODER_GUIDANCE, "--decoder-guidance-scale", v, &p->decoder_guidance, e);
    } else if (!strcmp(n, "dump-dir")) {
        p->dump_dir = v;
    } else if (!strcmp(n, "precision")) {
        if (cdf_precision_from_name(v, &p->precision))
            return cli_err_set(e, CLI_EXIT_USAGE, "--precision must be fp32 or bf16 (got \"%s\")", v);
        p->set |= GP_SET_PRECISION;
    } else if (!strcmp(n, "prompt-2")) {
        return push(p->prompts_2, &p->nprompts_2, v, "--prompt-2", e);
    } else if (!strcmp(n, "negative-prompt-2")) {
        return push(p->negatives_2, &p->nnegatives_2, v, "--negative-prompt-2", e);
    } else if (!strcmp(n, "original-size") || !strcmp(n, "target-size") || !strcmp(n, "crops-coords-top-left")) {
        int *dst = !strcmp(n, "original-size") ? p->original_size : !strcmp(n, "target-size") ? p->target_size : p->crops;
        int pair[2];
        char tail;
        if (sscanf(v, "%d,%d%c", &pair[0], &pair[1], &tail) != 2 || pair[0] < 0 || pair[1] < 0 || pair[0] > 1 << 20 ||
            pair[1] > 1 << 20)
            return cli_err_set(e, CLI_EXIT_USAGE, "--%s takes two non-negative integers A,B (got '%s')", n, v);
        memcpy(dst, pair, sizeof pair);
        p->set |= dst == p->original_size ? GP_SET_ORIGINAL_SIZE : dst == p->target_size ? GP_SET_TARGET_SIZE : GP_SET_CROPS;
    } else if (!strcmp(n, "init-image")) {
        p->set |= GP_SET_INIT_IMAGE;
        p->init_image = v;
    } else if (!strcmp(n, "mask-image")) {
        p->set |= GP_SET_MASK_IMAGE;
        p->mask_image = v;
    } else if (!strcmp(n, "strength")) {
        if (cli_try_double("--strength", v, &p->strength, e)) return -1;
        if (!(p->strength > 0 && p->strength <= 1))
            return cli_err_set(e, CLI_EXIT_USAGE, "--strength must be in (0, 1] (got %g)", p->strength);
        p->set |= GP_SET_STRENGTH;
    } else { /* karras, no-karras */
        p->set |= GP_SET_KARRAS;
        p->karras = !strcmp(n, "karras");
    }
    return 1;
}

int gp_option(gen_params *p, cli_args *a) {
    int kind = gp_option_kind(a->name);
    if (!kind) return 0;
    cli_err e;
    if (gp_set(p, a->name, kind == 2 ? cli_value(a) : NULL, &e) < 0) cli_exit(a->cmd, &e);
    return 1;
}

void gp_override(gen_params *d, const gen_params *s) {
    if (s->nprompts) memcpy(d->prompts, s->prompts, sizeof s->prompts), d->nprompts = s->nprompts;
    if (s->nnegatives) memcpy(d->negatives, s->negatives, sizeof s->negatives), d->nnegatives = s->nnegatives;
    if (s->nseeds) memcpy(d->seeds, s->seeds, sizeof s->seeds), d->nseeds = s->nseeds;
    if (s->nprompts_2) memcpy(d->prompts_2, s->prompts_2, sizeof s->prompts_2), d->nprompts_2 = s->nprompts_2;
    if (s->nnegatives_2)
        memcpy(d->negatives_2, s->negatives_2, sizeof s->negatives_2), d->nnegatives_2 = s->nnegatives_2;
    if (s->set & GP_SET_ORIGINAL_SIZE) memcpy(d->original_size, s->original_size, sizeof d->original_size);
    if (s->set & GP_SET_TARGET_SIZE) memcpy(d->target_size, s->target_size, sizeof d->target_size);
    if (s->set & GP_SET_CROPS) memcpy(d->crops, s->crops, sizeof d->crops);
    if (s->set & GP_SET_PIPELINE) d->pipeline = s->pipeline;
    if (s->set & GP_SET_STEPS) d->steps = s->steps;
    if (s->set & GP_SET_ETA) d->eta = s->eta;
    if (s->set & GP_SET_BATCH) d->batch_size = s->batch_size;
    if (s->set & GP_SET_NIPP) d->nipp = s->nipp;
    if (s->set & GP_SET_GUIDANCE) d->guidance = s->guidance;
    if (s->set & GP_SET_RESCALE) d->guidance_rescale = s->guidance_rescale;
    if (s->set & GP_SET_HEIGHT) d->height = s->height;
    if (s->set & GP_SET_WIDTH) d->width = s->width;
    if (s->set & GP_SET_CLIP_SKIP) d->clip_skip = s->clip_skip;
    if (s->set & GP_SET_SCHEDULER) d->scheduler = s->scheduler;
    if (s->set & GP_SET_KARRAS) d->karras = s->karras;
    if (s->set & GP_SET_PRECISION) d->precision = s->precision;
    if (s->set & GP_SET_VARIANT) d->variant = s->variant;
    if (s->set & GP_SET_RNG) d->rng = s->rng;
    if (s->set & GP_SET_PRIOR_STEPS) d->prior_steps = s->prior_steps;
    if (s->set & GP_SET_DECODER_STEPS) d->decoder_steps = s->decoder_steps;
    if (s->set & GP_SET_SUPER_RES_STEPS) d->super_res_steps = s->super_res_steps;
    if (s->set & GP_SET_PRIOR_GUIDANCE) d->prior_guidance = s->prior_guidance;
    if (s->set & GP_SET_DECODER_GUIDANCE) d->decoder_guidance = s->decoder_guidance;
    if (s->dump_dir) d->dump_dir = s->dump_dir;
    if (s->set & GP_SET_INIT_IMAGE) d->init_image = s->init_image;
    if ((s->set & GP_SET_INIT_IMAGE) && !(s->set & (GP_SET_HEIGHT | GP_SET_WIDTH)))
        d->height = d->width = 0; /* the picture gives the size */
    if (s->set & GP_SET_STRENGTH) d->strength = s->strength;
    if (s->set & GP_SET_MASK_IMAGE) d->mask_image = s->mask_image;
    d->threads = s->threads;
}

const char *gp_help(void) {
    return "generation options:\n"
           "  --pipeline auto|ddpm|ddim|pndm|sd|unclip   pipeline class (auto: model_index.json); ddim and\n"
           "                             pndm convert the folder's scheduler with X.from_config\n"
           "  --steps N                  num_inference_steps (default: ddpm 1000, ddim, pndm and sd 50)\n"
           "  --seed S                   one seed: one generator for the whole batch; one seed per image: one\n"
           "                             generator each; none: a seed from the OS is printed.  S is a\n"
           "                             non-negative integer of any size, or [a,b,...]\n"
           "  --eta E                    DDIM eta (default 0.0)\n"
           "  --batch-size B             DDPM/DDIM: images to make (default 1)\n"
           "  --rng KIND                 the generator each seed makes: numpy (np.random.Generator(PCG64),\n"
           "                             default), torch-cpu, torch-cpu-avx2 (torch.Generator(\"cpu\") on a CPU\n"
           "                             where torch used its scalar / AVX2 kernels), torch-cuda\n"
           "                             (torch.Generator(\"cuda\"), see --gpu), numpy-legacy (RandomState)\n"
           "  --gpu NAME|SMSxTHREADS     torch-cuda: the GPU whose noise to reproduce (a1111, h100-sxm, a100,\n"
           "                             rtx4090, ...; or its SM count and threads per SM)\n"
           "  --threads T                threads (default: all processors; results do not depend on it)\n"
           "  --precision fp32|bf16      matrix products in float32 (default), or with bfloat16 operands\n"
           "                             summed in float32 as AVX-512 BF16's vdpbf16ps does (faster where\n"
           "                             the CPU has it; a different image, still the same bytes each run)\n"
           "  --variant NAME             weight file variant, e.g. fp16 (*.fp16.safetensors)\n"
           "Stable Diffusion:\n"
           "  --prompt P                 the prompt; repeat for a list of prompts\n"
           "  --negative-prompt N        negative prompt; repeat for one per prompt\n"
           "  --num-images-per-prompt K  images per prompt (default 1)\n"
           "  --guidance-scale G         classifier-free guidance (default 7.5, SDXL 5.0; on when > 1)\n"
           "  --guidance-rescale R       guidance_rescale (default 0)\n"
           "  --height H, --width W      image size, multiples of 8 (default: UNet sample size x 8)\n"
           "  --clip-skip K              use the text encoder's K-th layer from the end (default 0: last)\n"
           "  --scheduler NAME           swap the scheduler class, keeping the folder's config\n"
           "                             (Scheduler.from_config): a diffusers class name such as\n"
           "                             EulerAncestralDiscreteScheduler, or ddim, pndm, euler, euler-a, lms,\n"
           "                             heun, dpm++2m, unipc, ddpm\n"
           "  --karras / --no-karras     use_karras_sigmas on / off\n"
           "  --init-image FILE.png      image-to-image (StableDiffusionImg2ImgPipeline): start from this 8-bit\n"
           "                             RGB picture, sides multiples of 8; the image has its size\n"
           "  --strength S               image-to-image: how much of the schedule runs, (0, 1] (default 0.8,\n"
           "                             inpainting 1.0): int(steps * S) steps, from the picture noised to\n"
           "                             that timestep\n"
           "  --mask-image FILE.png      inpainting (StableDiffusionInpaintPipeline) with --init-image: the\n"
           "                             mask, the picture's size, read as greyscale; pixels >= 128 are\n"
           "                             repainted.  A 9-channel inpainting UNet, or a regular UNet that\n"
           "                             blends the kept region back after every step\n"
           "Stable Diffusion XL (the options above, guidance default 5.0, and):\n"
           "  --prompt-2 P               text_encoder_2's prompt (default: --prompt); repeat for a list\n"
           "  --negative-prompt-2 N      text_encoder_2's negative prompt (default: --negative-prompt)\n"
           "                             With no --negative-prompt, the negative embeddings are zeros when\n"
           "                             model_index.json says force_zeros_for_empty_prompt; --negative-prompt \"\"\n"
           "                             encodes the empty prompt instead\n"
           "  --original-size H,W        micro-conditioning (default: the image size)\n"
           "  --target-size H,W          micro-conditioning (default: the image size)\n"
           "  --crops-coords-top-left Y,X  micro-conditioning (default 0,0)\n"
           "UnCLIP (Karlo; --prompt and --num-images-per-prompt as above):\n"
           "  --prior-steps N            prior_num_inference_steps (default 25; at least 2)\n"
           "  --decoder-steps N          decoder_num_inference_steps (default 25; at least 2)\n"
           "  --super-res-steps N        super_res_num_inference_steps (default 7; at least 2)\n"
           "  --prior-guidance-scale G   prior classifier-free guidance (default 4.0)\n"
           "  --decoder-guidance-scale G decoder classifier-free guidance (default 8.0); guidance runs when\n"
           "                             either scale is > 1\n"
           "  --dump-dir DIR             write every stage's inputs and outputs as DIR/NAME.npy (text\n"
           "                             embeddings, prior latents per step, image embeddings, decoder\n"
           "                             output, super-res input and output...): see docs/UNCLIP.md\n";
}

void gp_to_options(const gen_params *p, cdf_generate_options *o) {
    cdf_generate_options_init(o);
    o->batch_size = p->batch_size;
    o->num_inference_steps = p->steps;
    o->eta = p->eta;
    o->threads = p->threads;
    o->precision = p->precision;
    o->prompts = p->prompts;
    o->num_prompts = (size_t)p->nprompts;
    o->negative_prompts = p->nnegatives ? p->negatives : NULL;
    o->num_negative_prompts = (size_t)p->nnegatives;
    o->num_images_per_prompt = p->nipp;
    o->guidance_scale = p->guidance;
    o->guidance_rescale = p->guidance_rescale;
    o->height = p->height;
    o->width = p->width;
    o->clip_skip = p->clip_skip;
    o->scheduler = p->scheduler;
    o->use_karras_sigmas = p->karras;
    o->prior_num_inference_steps = p->prior_steps;
    o->decoder_num_inference_steps = p->decoder_steps;
    o->super_res_num_inference_steps = p->super_res_steps;
    o->prior_guidance_scale = p->prior_guidance;
    o->decoder_guidance_scale = p->decoder_guidance;
    o->strength = p->init_image ? p->strength : -1.0; /* the pictures themselves: run_generation reads them */
    o->prompts_2 = p->nprompts_2 ? p->prompts_2 : NULL;
    o->num_prompts_2 = (size_t)p->nprompts_2;
    o->negative_prompts_2 = p->nnegatives_2 ? p->negatives_2 : NULL;
    o->num_negative_prompts_2 = (size_t)p->nnegatives_2;
    memcpy(o->original_size, p->original_size, sizeof o->original_size);
    memcpy(o->target_size, p->target_size, sizeof o->target_size);
    memcpy(o->crops_coords_top_left, p->crops, sizeof o->crops_coords_top_left);
}

static void add_strings(cJSON *obj, const char *key, const char *const *v, int n) {
    cJSON *a = cJSON_AddArrayToObject(obj, key);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
}

cJSON *gp_to_json(const gen_params *p, const cdf_pipeline *pipe, const cdf_generate_options *o, int height, int width,
                 const char *os_seed, const char *weights_hash) {
    cJSON *j = cJSON_CreateObject();
    cdf_pipeline_kind kind = cdf_pipeline_get_kind(pipe);
    int sd = kind == CDF_PIPELINE_SD, unclip = kind == CDF_PIPELINE_UNCLIP;
    cJSON_AddStringToObject(j, "model", p->model);
    if (p->variant) cJSON_AddStringToObject(j, "variant", p->variant);
    cJSON_AddStringToObject(j, "pipeline", cdf_pipeline_class_name(pipe));
    cJSON_AddStringToObject(j, "scheduler", p->scheduler ? p->scheduler : cdf_pipeline_scheduler_name(pipe));
    cJSON *sc = cJSON_Parse(cdf_pipeline_scheduler_json(pipe));
    if (sc) cJSON_AddItemToObject(j, "folder_scheduler_config", sc);
    if (p->karras >= 0) cJSON_AddBoolToObject(j, "use_karras_sigmas", p->karras);
    if (unclip) {
        add_strings(j, "prompt", p->prompts, p->nprompts);
        cJSON_AddNumberToObject(j, "num_images_per_prompt", p->nipp);
        cJSON_AddNumberToObject(j, "prior_num_inference_steps", o->prior_num_inference_steps);
        cJSON_AddNumberToObject(j, "decoder_num_inference_steps", o->decoder_num_inference_steps);
        cJSON_AddNumberToObject(j, "super_res_num_inference_steps", o->super_res_num_inference_steps);
        cJSON_AddNumberToObject(j, "prior_guidance_scale", p->prior_guidance);
        cJSON_AddNumberToObject(j, "decoder_guidance_scale", p->decoder_guidance);
    } else if (sd) {
        add_strings(j, "prompt", p->prompts, p->nprompts);
        add_strings(j, "negative_prompt", p->negatives, p->nnegatives);
        cJSON_AddNumberToObject(j, "num_images_per_prompt", p->nipp);
        cJSON_AddNumberToObject(j, "guidance_scale", p->guidance);
        cJSON_AddNumberToObject(j, "guidance_rescale", p->guidance_rescale);
        cJSON_AddNumberToObject(j, "clip_skip", p->clip_skip);
        if (!strcmp(cdf_pipeline_class_name(pipe), "StableDiffusionXLPipeline")) {
            add_strings(j, "prompt_2", p->prompts_2, p->nprompts_2);
            add_strings(j, "negative_prompt_2", p->negatives_2, p->nnegatives_2);
            /* as the run resolved them: the image size where not given */
            const int *pairs[3] = {o->original_size, o->crops_coords_top_left, o->target_size};
            static const char *const keys[3] = {"original_size", "crops_coords_top_left", "target_size"};
            for (int k = 0; k < 3; k++) {
                int v[2] = {pairs[k][0], pairs[k][1]};
                if (k != 1 && !v[0] && !v[1]) v[0] = height, v[1] = width;
                cJSON *a = cJSON_AddArrayToObject(j, keys[k]);
                cJSON_AddItemToArray(a, cJSON_CreateNumber(v[0]));
                cJSON_AddItemToArray(a, cJSON_CreateNumber(v[1]));
            }
        }
        if (p->init_image) {
            cJSON_AddStringToObject(j, "init_image", p->init_image);
            cJSON_AddStringToObject(j, "init_image_sha256", p->init_sha);
            cJSON_AddNumberToObject(j, "strength", p->strength >= 0 ? p->strength : p->mask_image ? 1.0 : 0.8);
            if (p->mask_image) {
                cJSON_AddStringToObject(j, "mask_image", p->mask_image);
                cJSON_AddStringToObject(j, "mask_image_sha256", p->mask_sha);
            }
        }
    } else {
        cJSON_AddNumberToObject(j, "batch_size", p->batch_size);
    }
    if (!unclip) {
        cJSON_AddNumberToObject(j, "steps", o->num_inference_steps);
        cJSON_AddNumberToObject(j, "eta", p->eta);
    }
    cJSON_AddNumberToObject(j, "height", height);
    cJSON_AddNumberToObject(j, "width", width);
    cJSON_AddStringToObject(j, "precision", cdf_precision_name(p->precision));
    cJSON_AddStringToObject(j, "generator", cdf_rng_kind_name(p->rng.kind));
    if (p->rng.kind == CDF_RNG_TORCH_CUDA) {
        cJSON_AddNumberToObject(j, "gpu_sm_count", p->rng.cuda.sm_count);
        cJSON_AddNumberToObject(j, "gpu_threads_per_sm", p->rng.cuda.threads_per_sm);
        if (p->rng.gpu) cJSON_AddStringToObject(j, "gpu", p->rng.gpu);
    }
    cJSON_AddStringToObject(j, "generator_mode", p->nseeds > 1 ? "one per image" : "one for the batch");
    if (p->nseeds)
        add_strings(j, "seeds", p->seeds, p->nseeds);
    else
        add_strings(j, "seeds", &os_seed, 1);
    if (weights_hash) cJSON_AddStringToObject(j, "weights_hash", weights_hash);
    if (!cJSON_AddStringToObject(j, "cdiffusers", CDF_VERSION_STRING)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static int get_str(cJSON *j, const char *k, const char **out) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    if (!v || cJSON_IsNull(v)) return 1;
    if (!cJSON_IsString(v)) return 0;
    *out = v->valuestring;
    return 1;
}

static int get_num(cJSON *j, const char *k, double *out) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    if (!v || cJSON_IsNull(v)) return 1;
    if (!cJSON_IsNumber(v)) return 0;
    *out = v->valuedouble;
    return 1;
}

/* A whole number in [lo, hi] (absent or null: *out unchanged); 0 when it is
 * not one, so no out-of-range double is ever converted to int. */
static int get_int(cJSON *j, const char *k, double lo, double hi, int *out) {
    double d = 0;
    if (!get_num(j, k, &d)) return 0;
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    if (!v || cJSON_IsNull(v)) return 1;
    if (!(d >= lo && d <= hi) || d != (double)(long long)d) return 0;
    *out = (int)d;
    return 1;
}

/* An [a, b] pair of non-negative integers (absent: unchanged). */
static int get_pair(cJSON *j, const char *k, int out[2]) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    if (!v || cJSON_IsNull(v)) return 1;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2) return 0;
    for (int i = 0; i < 2; i++) {
        cJSON *e = cJSON_GetArrayItem(v, i);
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0 && e->valuedouble <= 1 << 20) ||
            e->valuedouble != (double)(int)e->valuedouble)
            return 0;
        out[i] = (int)e->valuedouble;
    }
    return 1;
}

static int get_list(cJSON *j, const char *k, const char **list, int *n) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k), *it;
    if (!v || cJSON_IsNull(v)) return 1;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > GP_MAX_LIST) return 0;
    *n = 0;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsString(it)) return 0;
        list[(*n)++] = it->valuestring;
    }
    return 1;
}

int gp_from_json(gen_params *p, const char *json, char *err, size_t errlen) {
    cJSON *j = cJSON_Parse(json);
    if (!j || !cJSON_IsObject(j)) {
        snprintf(err, errlen, "the parameters are not a JSON object");
        cJSON_Delete(j);
        return -1;
    }
    p->owned = j;
    const char *pipe = NULL, *sched = NULL;
    int steps = 0, h = 0, w = 0;
    cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "use_karras_sigmas");
    /* the same ranges as the command line options */
    int ok = get_str(j, "variant", &p->variant) && get_str(j, "pipeline", &pipe) && get_str(j, "scheduler", &sched) &&
             get_list(j, "prompt", p->prompts, &p->nprompts) &&
             get_list(j, "negative_prompt", p->negatives, &p->nnegatives) &&
             get_int(j, "num_images_per_prompt", 1, 4096, &p->nipp) && get_num(j, "guidance_scale", &p->guidance) &&
             get_num(j, "guidance_rescale", &p->guidance_rescale) && get_int(j, "clip_skip", 0, 64, &p->clip_skip) &&
             get_int(j, "batch_size", 1, 4096, &p->batch_size) && get_int(j, "steps", 1, 1000000, &steps) &&
             get_num(j, "eta", &p->eta) && get_int(j, "height", 0, 65536, &h) && get_int(j, "width", 0, 65536, &w) &&
             get_list(j, "seeds", p->seeds, &p->nseeds) &&
             get_int(j, "prior_num_inference_steps", 2, 1000000, &p->prior_steps) &&
             get_int(j, "decoder_num_inference_steps", 2, 1000000, &p->decoder_steps) &&
             get_int(j, "super_res_num_inference_steps", 2, 1000000, &p->super_res_steps) &&
             get_num(j, "prior_guidance_scale", &p->prior_guidance) &&
             get_num(j, "decoder_guidance_scale", &p->decoder_guidance) && get_str(j, "init_image", &p->init_image) &&
             get_str(j, "init_image_sha256", &p->recorded_init_sha) && get_num(j, "strength", &p->strength) &&
             get_str(j, "mask_image", &p->mask_image) && get_str(j, "mask_image_sha256", &p->recorded_mask_sha) &&
             get_list(j, "prompt_2", p->prompts_2, &p->nprompts_2) &&
             get_list(j, "negative_prompt_2", p->negatives_2, &p->nnegatives_2) &&
             get_pair(j, "original_size", p->original_size) && get_pair(j, "crops_coords_top_left", p->crops) &&
             get_pair(j, "target_size", p->target_size);
    if (!ok || !(isnan(p->guidance) || (p->guidance >= 0 && p->guidance <= 1e30)) || !(p->prior_guidance >= 0 && p->prior_guidance <= 1e30) ||
        !(p->decoder_guidance >= 0 && p->decoder_guidance <= 1e30) || !(p->guidance_rescale >= 0 && p->guidance_rescale <= 1) ||
        !(p->eta >= 0 && p->eta <= 1e30) || !(p->strength == -1.0 || (p->strength > 0 && p->strength <= 1))) {
        snprintf(err, errlen, "a parameter has the wrong type or is out of range");
        return -1;
    }
    const char *prec = NULL;
    if (!get_str(j, "precision", &prec) || (prec && cdf_precision_from_name(prec, &p->precision))) {
        snprintf(err, errlen, "precision must be \"fp32\" or \"bf16\"");
        return -1;
    }
    const char *gen = NULL;
    int sms = 0, tps = 0;
    if (!get_str(j, "generator", &gen) || !get_int(j, "gpu_sm_count", 0, 100000, &sms) ||
        !get_int(j, "gpu_threads_per_sm", 0, 100000, &tps) || !get_str(j, "gpu", &p->rng.gpu)) {
        snprintf(err, errlen, "the generator parameters have the wrong type");
        return -1;
    }
    if (gen) {
        cdf_error e = {0};
        if (cdf_rng_kind_parse(gen, &p->rng.kind, &e)) {
            snprintf(err, errlen, "%s", e.msg);
            return -1;
        }
    }
    p->rng.cuda.sm_count = (uint32_t)sms;
    p->rng.cuda.threads_per_sm = (uint32_t)tps;
    int is_unclip = pipe && !strcmp(pipe, "UnCLIPPipeline");
    if (!pipe || !p->nseeds || (!steps && !is_unclip) ||
        (is_unclip && (!p->prior_steps || !p->decoder_steps || !p->super_res_steps))) {
        snprintf(err, errlen, "the parameters lack the pipeline, seeds or steps");
        return -1;
    }
    if (!strcmp(pipe, "DDPMPipeline")) p->pipeline = CDF_PIPELINE_DDPM;
    else if (!strcmp(pipe, "DDIMPipeline")) p->pipeline = CDF_PIPELINE_DDIM;
    else if (!strcmp(pipe, "PNDMPipeline")) p->pipeline = CDF_PIPELINE_PNDM;
    else if (!strncmp(pipe, "StableDiffusion", 15)) p->pipeline = CDF_PIPELINE_SD; /* and its Img2Img, Inpaint, XL */
    else if (is_unclip) p->pipeline = CDF_PIPELINE_UNCLIP;
    else {
        snprintf(err, errlen, "unknown pipeline \"%s\"", pipe);
        return -1;
    }
    p->scheduler = p->pipeline == CDF_PIPELINE_SD ? sched : NULL;
    if (k && cJSON_IsBool(k)) p->karras = cJSON_IsTrue(k);
    p->steps = steps;
    if (p->pipeline == CDF_PIPELINE_SD) {
        p->height = h;
        p->width = w;
    }
    return 0;
}
