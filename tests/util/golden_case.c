#include "golden_case.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "models/synthetic.h"

static double num(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

int golden_case_load(const char *case_dir, const char *tmp_root, golden_case *gc) {
    memset(gc, 0, sizeof *gc);
    snprintf(gc->dir, sizeof gc->dir, "%s", case_dir);
    char path[1200];
    snprintf(path, sizeof path, "%s/case.json", case_dir);
    char *txt = tu_read_text(path);
    if (!txt) return -1;
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    if (!j) return -1;
    snprintf(gc->name, sizeof gc->name, "%s", cJSON_GetObjectItem(j, "name")->valuestring);
    gc->ddim = strcmp(cJSON_GetObjectItem(j, "pipeline")->valuestring, "DDIMPipeline") == 0;
    const cJSON *call = cJSON_GetObjectItem(j, "call");
    gc->batch = (int)num(call, "batch_size", 1);
    gc->steps = (int)num(call, "num_inference_steps", gc->ddim ? 50 : 1000);
    gc->eta = num(call, "eta", 0.0);
    const cJSON *gen = cJSON_GetObjectItem(j, "generator");
    gc->gen_list = strcmp(cJSON_GetObjectItem(gen, "kind")->valuestring, "list") == 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(gen, "seeds")) {
        snprintf(gc->seeds[gc->nseeds++], sizeof gc->seeds[0], "%s", s->valuestring);
    }
    const cJSON *tol = cJSON_GetObjectItem(j, "tolerance");
    gc->tol_unet = num(tol, "unet_out0_atol", 0);
    gc->tol_image = num(tol, "image_atol", 0);
    gc->tol_mean = num(tol, "image_mean_abs_max", 0);
    gc->tol_final = num(tol, "final_sample_atol", 0);
    gc->tol_abs_rtol = num(tol, "abs_sum_rtol", 0);
    gc->abs_sum_f64 = num(j, "abs_sum_f64", 0);
    const cJSON *noise = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "files"), "noise");
    const cJSON *shape = cJSON_GetObjectItem(noise, "shape");
    gc->c = cJSON_GetArrayItem(shape, 1)->valueint;
    gc->h = cJSON_GetArrayItem(shape, 2)->valueint;
    gc->w = cJSON_GetArrayItem(shape, 3)->valueint;
    /* model: "shared/golden/ddpm/models/<name>" or ".../cifar10-full" (synthetic) */
    const char *model = cJSON_GetObjectItem(j, "model")->valuestring;
    const char *base = strrchr(model, '/');
    base = base ? base + 1 : model;
    const cJSON *wdesc = cJSON_GetObjectItem(j, "weights");
    const char *ws = wdesc && cJSON_IsString(wdesc) ? strstr(wdesc->valuestring, "weight_seed=") : NULL;
    int rc = 0;
    if (ws) {
        char seed[64];
        snprintf(seed, sizeof seed, "%lld", atoll(ws + strlen("weight_seed=")));
        snprintf(gc->model_dir, sizeof gc->model_dir, "%s/%s-seed%s", tmp_root, base, seed);
        struct stat st;
        snprintf(path, sizeof path, "%s/unet/diffusion_pytorch_model.safetensors", gc->model_dir);
        if (stat(path, &st) != 0) {
            cdf_error err = {0};
            if (cdf_make_synthetic(tu_data("ddpm/%s", base), gc->model_dir, seed, CDF_F32, &err)) {
                fprintf(stderr, "make_synthetic: %s\n", err.msg);
                rc = -1;
            }
        }
    } else {
        snprintf(gc->model_dir, sizeof gc->model_dir, "%s", tu_data("ddpm/models/%s", base));
    }
    cJSON_Delete(j);
    return rc;
}

typedef struct capture {
    golden_run *r;
    int steps;
} capture;

static int observe(const cdf_step_info *si, void *user) {
    capture *cp = user;
    golden_run *r = cp->r;
    size_t n = r->n;
    if (si->step < 0) {
        memcpy(r->noise, si->latents, n * sizeof(float));
        return 0;
    }
    if (si->step == 0) {
        /* model_out may carry 2x channels (learned variance): keep the first C */
        for (int b = 0; b < si->batch; b++)
            memcpy(r->unet_out0 + (size_t)b * n / si->batch,
                   si->model_out + (size_t)b * si->model_channels * si->height * si->width,
                   n / si->batch * sizeof(float));
    }
    if (si->variance_noise && !r->step_noise0) {
        r->step_noise0 = malloc(n * sizeof(float));
        memcpy(r->step_noise0, si->variance_noise, n * sizeof(float));
    }
    if (si->step < r->ntraj) memcpy(r->traj + (size_t)si->step * n, si->latents, n * sizeof(float));
    if (si->step == si->num_steps - 1) memcpy(r->final_sample, si->latents, n * sizeof(float));
    return 0;
}

int golden_case_run(const golden_case *gc, int threads, int first, int count, golden_run *out) {
    memset(out, 0, sizeof *out);
    int batch = count > 0 ? count : gc->batch;
    cdf_error err = {0};
    cdf_load_options lo = {gc->ddim ? CDF_PIPELINE_DDIM : CDF_PIPELINE_DDPM, NULL};
    cdf_pipeline *p = NULL;
    if (cdf_pipeline_load(gc->model_dir, &lo, &p, &err)) {
        fprintf(stderr, "load %s: %s\n", gc->model_dir, err.msg);
        return -1;
    }
    cdf_generator *gens[16];
    int ng = gc->gen_list ? batch : 1;
    for (int i = 0; i < ng; i++) {
        const char *seed = gc->seeds[gc->gen_list ? first + i : 0];
        if (cdf_generator_new(CDF_RNG_NUMPY, seed, &gens[i], &err)) return -1;
    }
    out->n = (size_t)batch * gc->c * gc->h * gc->w;
    out->ntraj = gc->steps < 10 ? gc->steps : 10;
    out->noise = malloc(out->n * sizeof(float));
    out->unet_out0 = malloc(out->n * sizeof(float));
    out->traj = malloc((size_t)out->ntraj * out->n * sizeof(float));
    out->final_sample = malloc(out->n * sizeof(float));
    capture cp = {out, gc->steps};
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.batch_size = batch;
    o.num_inference_steps = gc->steps;
    o.eta = gc->eta;
    o.threads = threads;
    o.on_step = observe;
    o.on_step_user = &cp;
    cdf_tensor img;
    int rc = 0;
    if (cdf_pipeline_generate(p, &o, gens, (size_t)ng, &img, NULL)) {
        fprintf(stderr, "generate: %s\n", cdf_pipeline_last_error(p));
        rc = -1;
    } else {
        out->image = malloc(out->n * sizeof(float));
        memcpy(out->image, img.data, out->n * sizeof(float));
        cdf_tensor_free(&img);
    }
    for (int i = 0; i < ng; i++) cdf_generator_free(gens[i]);
    cdf_pipeline_free(p);
    return rc;
}

void golden_run_free(golden_run *r) {
    free(r->noise);
    free(r->unet_out0);
    free(r->step_noise0);
    free(r->traj);
    free(r->final_sample);
    free(r->image);
    memset(r, 0, sizeof *r);
}

float *golden_case_file(const golden_case *gc, const char *file, size_t count) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", gc->dir, file);
    return tu_load_bin(path, count, sizeof(float));
}
