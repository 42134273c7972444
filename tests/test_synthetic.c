/* cdf_make_synthetic (golden SYNTHETIC_WEIGHTS.md): the full-size
 * cifar10-full weights for seed 0 against the golden key list (names,
 * shapes, stream order, first4 bitwise, float64 sums); the f16 / bf16 options
 * against the float32 values rounded; unsupported components refused before
 * anything is written.  Stable Diffusion folders ("Other models"): for both
 * golden tiny SD pipelines, every component's tensor names, shapes and dtypes
 * equal the golden checkpoints', each component restarts the seed's stream
 * (checked against numpy's golden normals), the non-model files are copied,
 * and the result loads and runs. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/json.h"
#include "io/safetensors.h"
#include "models/synthetic.h"
#include "models/unet2d.h"
#include "cdiffusers/pipeline.h"
#include "tensor/half.h"

static char g_tmp[1024];

static void path_join(char *out, size_t n, const char *a, const char *b) {
    int k = snprintf(out, n, "%s/%s", a, b);
    if (k < 0 || (size_t)k >= n) fail_msg("path too long: %s/%s", a, b);
}

static int path_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static void copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    assert_non_null(in);
    FILE *out = fopen(dst, "wb");
    assert_non_null(out);
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, k, out), k);
    fclose(in);
    fclose(out);
}

static void assert_same_file(const char *a, const char *b) {
    char *x = tu_read_text(a), *y = tu_read_text(b);
    assert_non_null(x);
    if (!y) fail_msg("%s was not written", b);
    if (strcmp(x, y) != 0) fail_msg("%s differs from %s", b, a);
    free(x);
    free(y);
}

/* A config folder (model_index.json, unet/config.json, scheduler/...) copied from src to tmp/name;
 * model_index.json replaced by `index` when not NULL. */
static void copy_config_dir(const char *src, const char *name, const char *index, char *dir, size_t n) {
    char a[2048], b[2048];
    path_join(dir, n, g_tmp, name);
    assert_int_equal(mkdir(dir, 0777), 0);
    static const char *const sub[] = {"unet", "scheduler"};
    static const char *const files[] = {"unet/config.json", "scheduler/scheduler_config.json"};
    for (int i = 0; i < 2; i++) {
        path_join(a, sizeof a, dir, sub[i]);
        assert_int_equal(mkdir(a, 0777), 0);
        path_join(a, sizeof a, src, files[i]);
        path_join(b, sizeof b, dir, files[i]);
        copy_file(a, b);
    }
    path_join(b, sizeof b, dir, "model_index.json");
    if (index) {
        FILE *f = fopen(b, "wb");
        assert_non_null(f);
        fputs(index, f);
        fclose(f);
    } else {
        path_join(a, sizeof a, src, "model_index.json");
        copy_file(a, b);
    }
}

static cdf_st_file *open_st(const char *model_dir) {
    char p[2048];
    path_join(p, sizeof p, model_dir, "unet/diffusion_pytorch_model.safetensors");
    cdf_st_file *f = NULL;
    cdf_error err = {0};
    if (cdf_st_open(p, &f, &err) != CDF_OK) fail_msg("%s", err.msg);
    return f;
}

static void cifar10_full_seed0(void **state) {
    (void)state;
    char cfg[2048], out[2048], a[2048], b[2048];
    snprintf(cfg, sizeof cfg, "%s", tu_data("ddpm/cifar10-full"));
    path_join(out, sizeof out, g_tmp, "cifar10-full");
    cdf_error err = {0};
    if (cdf_make_synthetic(cfg, out, "0", CDF_F32, &err) != CDF_OK) fail_msg("%s", err.msg);
    static const char *const copied[] = {"model_index.json", "unet/config.json", "scheduler/scheduler_config.json"};
    for (int i = 0; i < 3; i++) {
        path_join(a, sizeof a, cfg, copied[i]);
        path_join(b, sizeof b, out, copied[i]);
        assert_same_file(a, b);
    }

    cJSON *keys = NULL;
    path_join(a, sizeof a, cfg, "synthetic_weights_seed0_keys.json");
    assert_int_equal(cdf_json_load(a, &keys, &err), CDF_OK);
    const cJSON *list = cJSON_GetObjectItem(keys, "tensors");
    int nkeys = cJSON_GetArraySize(list);
    assert_int_equal(nkeys, 328);
    assert_int_equal((int)cJSON_GetObjectItem(keys, "num_tensors")->valuedouble, 328);
    assert_int_equal((int)cJSON_GetObjectItem(keys, "weight_seed")->valuedouble, 0);

    cdf_st_file *f = open_st(out);
    assert_int_equal(cdf_st_count(f), (size_t)nkeys);
    int64_t params = 0;
    double worst = 0;
    for (int i = 0; i < nkeys; i++) {
        const cJSON *k = cJSON_GetArrayItem(list, i);
        const char *name = cJSON_GetObjectItem(k, "key")->valuestring;
        const cdf_st_tensor *t = cdf_st_find(f, name);
        if (!t) fail_msg("tensor %s is not in the synthetic file", name);
        /* the file's data order is the stream order: sorted names, offsets consecutive */
        assert_ptr_equal(cdf_st_at(f, (size_t)i), t);
        assert_int_equal((int64_t)cJSON_GetObjectItem(k, "stream_offset")->valuedouble, params);
        assert_int_equal(t->dtype, CDF_F32);
        const cJSON *shape = cJSON_GetObjectItem(k, "shape");
        assert_int_equal(t->ndim, cJSON_GetArraySize(shape));
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            assert_int_equal(t->shape[d], (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble);
            numel *= t->shape[d];
        }
        assert_int_equal(numel, (int64_t)cJSON_GetObjectItem(k, "numel")->valuedouble);
        assert_int_equal(t->nbytes, (size_t)numel * 4);
        params += numel;
        const float *v = (const float *)(const void *)t->data;
        const cJSON *f4 = cJSON_GetObjectItem(k, "first4");
        for (int j = 0; j < 4 && j < numel; j++) {
            float want = (float)cJSON_GetArrayItem(f4, j)->valuedouble;
            if (memcmp(&want, &v[j], sizeof want) != 0)
                fail_msg("%s[%d] = %.9g, golden %.9g", name, j, v[j], want);
        }
        double s = 0, ref = cJSON_GetObjectItem(k, "sum_f64")->valuedouble;
        for (int64_t j = 0; j < numel; j++) s += v[j];
        double rel = fabs(s - ref) / fabs(ref);
        if (!(rel <= 1e-9)) fail_msg("%s: sum %.17g, golden %.17g (relative %.3g)", name, s, ref, rel);
        if (rel > worst) worst = rel;
    }
    assert_int_equal(params, (int64_t)cJSON_GetObjectItem(keys, "num_params")->valuedouble);
    printf("328 tensors, %lld params; worst relative sum difference %.2e\n", (long long)params, worst);
    cdf_st_close(f);
    cJSON_Delete(keys);
}

static cdf_status describe_count(const char *name, int ndim, const int64_t *shape, void *user) {
    (void)name, (void)ndim, (void)shape;
    ++*(int *)user;
    return CDF_OK;
}

/* f16 / bf16 weights are the float32 weights rounded to nearest even; the
 * tensor list is the golden tiny model's state_dict. */
static void half_dtypes(void **state) {
    (void)state;
    char cfg[2048], outs[3][2048];
    copy_config_dir(tu_data("ddpm/models/tiny_fourier_f16"), "cfg_tiny", NULL, cfg, sizeof cfg);
    static const cdf_dtype dts[3] = {CDF_F32, CDF_F16, CDF_BF16};
    static const char *const names[3] = {"tiny_f32", "tiny_f16", "tiny_bf16"};
    cdf_st_file *f[3];
    for (int i = 0; i < 3; i++) {
        path_join(outs[i], sizeof outs[i], g_tmp, names[i]);
        cdf_error err = {0};
        if (cdf_make_synthetic(cfg, outs[i], "12345", dts[i], &err) != CDF_OK) fail_msg("%s", err.msg);
        f[i] = open_st(outs[i]);
    }
    /* the golden tiny model: same names and shapes */
    char p[2048];
    snprintf(p, sizeof p, "%s", tu_data("ddpm/models/tiny_fourier_f16/unet/diffusion_pytorch_model.safetensors"));
    cdf_st_file *g = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_st_open(p, &g, &err), CDF_OK);
    size_t n = cdf_st_count(g);
    assert_int_equal(n, 209);
    for (int i = 0; i < 3; i++) assert_int_equal(cdf_st_count(f[i]), n);
    size_t checked = 0;
    for (size_t k = 0; k < n; k++) {
        const cdf_st_tensor *gt = cdf_st_at(g, k);
        const cdf_st_tensor *t[3];
        for (int i = 0; i < 3; i++) {
            t[i] = cdf_st_find(f[i], gt->name);
            if (!t[i]) fail_msg("%s: no tensor %s", names[i], gt->name);
            assert_int_equal(t[i]->dtype, dts[i]);
            assert_int_equal(t[i]->ndim, gt->ndim);
            assert_memory_equal(t[i]->shape, gt->shape, sizeof(int64_t) * (size_t)gt->ndim);
        }
        size_t numel = t[0]->nbytes / 4;
        assert_int_equal(t[1]->nbytes, numel * 2);
        assert_int_equal(t[2]->nbytes, numel * 2);
        for (size_t j = 0; j < numel; j++) {
            float v;
            uint16_t h, bh;
            memcpy(&v, t[0]->data + 4 * j, 4);
            memcpy(&h, t[1]->data + 2 * j, 2);
            memcpy(&bh, t[2]->data + 2 * j, 2);
            if (h != cdf_f32_to_f16(v)) fail_msg("%s[%zu]: f16 bits %04x, float32 %.9g rounds to %04x", gt->name, j, h, v, cdf_f32_to_f16(v));
            if (bh != cdf_f32_to_bf16(v)) fail_msg("%s[%zu]: bf16 bits %04x, float32 %.9g rounds to %04x", gt->name, j, bh, v, cdf_f32_to_bf16(v));
            checked++;
        }
    }
    assert_int_equal(checked, 254163); /* manifest: tiny_fourier_f16 params */
    /* the describe list matches too (nothing written twice or left out) */
    cdf_unet2d *m = NULL;
    char udir[2100];
    for (int i = 0; i < 3; i++) {
        path_join(udir, sizeof udir, outs[i], "unet");
        if (cdf_unet2d_load(udir, NULL, &m, &err) != CDF_OK) fail_msg("%s: %s", names[i], err.msg);
        int count = 0;
        assert_int_equal(cdf_unet2d_describe(&m->cfg, describe_count, &count, &err), CDF_OK);
        assert_int_equal(count, 209);
        cdf_unet2d_free(m);
    }
    cdf_st_close(g);
    for (int i = 0; i < 3; i++) cdf_st_close(f[i]);
}

/* A seed changes the weights; the same seed gives the same bytes. */
static void seeds(void **state) {
    (void)state;
    char cfg[2048], a[2048], b[2048], c[2048];
    copy_config_dir(tu_data("ddpm/models/tiny_fourier_f16"), "cfg_seed", NULL, cfg, sizeof cfg);
    path_join(a, sizeof a, g_tmp, "seed_a");
    path_join(b, sizeof b, g_tmp, "seed_b");
    path_join(c, sizeof c, g_tmp, "seed_c");
    cdf_error err = {0};
    assert_int_equal(cdf_make_synthetic(cfg, a, "7", CDF_F32, &err), CDF_OK);
    assert_int_equal(cdf_make_synthetic(cfg, b, "7", CDF_F32, &err), CDF_OK);
    assert_int_equal(cdf_make_synthetic(cfg, c, "8", CDF_F32, &err), CDF_OK);
    cdf_st_file *fa = open_st(a), *fb = open_st(b), *fc = open_st(c);
    const cdf_st_tensor *ta = cdf_st_find(fa, "conv_in.weight"), *tb = cdf_st_find(fb, "conv_in.weight"),
                        *tc = cdf_st_find(fc, "conv_in.weight");
    assert_memory_equal(ta->data, tb->data, ta->nbytes);
    assert_true(memcmp(ta->data, tc->data, ta->nbytes) != 0);
    cdf_st_close(fa);
    cdf_st_close(fb);
    cdf_st_close(fc);
}

static void unsupported_component(void **state) {
    (void)state;
    static const char index[] = "{\n \"_class_name\": \"DDPMPipeline\",\n \"_diffusers_version\": \"0.1.1\",\n"
                                " \"scheduler\": [\"diffusers\", \"DDPMScheduler\"],\n"
                                " \"unet\": [\"diffusers\", \"UNet2DModel\"],\n"
                                " \"vqvae\": [\"diffusers\", \"VQModel\"]\n}\n";
    char cfg[2048], out[2048];
    copy_config_dir(tu_data("ddpm/cifar10-full"), "cfg_vae", index, cfg, sizeof cfg);
    path_join(out, sizeof out, g_tmp, "out_vae");
    cdf_error err = {0};
    assert_int_equal(cdf_make_synthetic(cfg, out, "0", CDF_F32, &err), CDF_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "'vqvae'"));
    assert_non_null(strstr(err.msg, "VQModel"));
    assert_non_null(strstr(err.msg, "model_index.json"));
    /* refused before anything is written: not even the output folder */
    if (path_exists(out)) fail_msg("%s was created by a refused call", out);

    /* an existing output folder stays empty */
    assert_int_equal(mkdir(out, 0777), 0);
    assert_int_equal(cdf_make_synthetic(cfg, out, "0", CDF_F32, &err), CDF_ERR_UNSUPPORTED);
    char p[2100];
    path_join(p, sizeof p, out, "model_index.json");
    assert_false(path_exists(p));
    path_join(p, sizeof p, out, "unet");
    assert_false(path_exists(p));

    /* dtypes other than f32 / f16 / bf16 */
    char out2[2048];
    path_join(out2, sizeof out2, g_tmp, "out_f64");
    assert_int_equal(cdf_make_synthetic(cfg, out2, "0", CDF_F64, &err), CDF_ERR_ARG);
    assert_false(path_exists(out2));
}

/* ---- Stable Diffusion folders ---- */

static const char *const k_sd_models[3] = {"unet", "vae", "text_encoder"};
static const char *const k_sd_files[3] = {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors",
                                          "model.safetensors"};
static const char *const k_tok_files[4] = {"merges.txt", "special_tokens_map.json", "tokenizer_config.json",
                                           "vocab.json"};

static void mkdir_in(const char *dir, const char *sub) {
    char p[2100];
    path_join(p, sizeof p, dir, sub);
    assert_int_equal(mkdir(p, 0777), 0);
}

static void copy_rel(const char *src_dir, const char *dst_dir, const char *rel) {
    char a[2100], b[2100];
    path_join(a, sizeof a, src_dir, rel);
    path_join(b, sizeof b, dst_dir, rel);
    copy_file(a, b);
}

/* The config files of a golden SD pipeline (no weights) in tmp/name; model_index.json replaced by index
 * when not NULL; the tokenizer folder left out when !with_tokenizer. */
static void copy_sd_config(const char *src, const char *name, const char *index, int with_tokenizer, char *dir,
                           size_t n) {
    char p[2100];
    path_join(dir, n, g_tmp, name);
    assert_int_equal(mkdir(dir, 0777), 0);
    for (int i = 0; i < 3; i++) {
        mkdir_in(dir, k_sd_models[i]);
        snprintf(p, sizeof p, "%s/config.json", k_sd_models[i]);
        copy_rel(src, dir, p);
    }
    mkdir_in(dir, "scheduler");
    copy_rel(src, dir, "scheduler/scheduler_config.json");
    if (with_tokenizer) {
        mkdir_in(dir, "tokenizer");
        for (int i = 0; i < 4; i++) {
            snprintf(p, sizeof p, "tokenizer/%s", k_tok_files[i]);
            copy_rel(src, dir, p);
        }
    }
    path_join(p, sizeof p, dir, "model_index.json");
    if (index) {
        FILE *f = fopen(p, "wb");
        assert_non_null(f);
        fputs(index, f);
        fclose(f);
    } else {
        copy_rel(src, dir, "model_index.json");
    }
}

/* The protocol's value for stream element z of tensor t (the rule by ndim and name). */
static float protocol_value(const cdf_st_tensor *t, double z) {
    if (t->ndim >= 2) {
        int64_t fan = 1;
        for (int d = 1; d < t->ndim; d++) fan *= t->shape[d];
        return (float)(z / sqrt((double)fan));
    }
    size_t nlen = strlen(t->name);
    if (nlen >= 6 && strcmp(t->name + nlen - 6, "weight") == 0) {
        volatile double p = 0.1 * z;
        return (float)(1.0 + p);
    }
    if (nlen >= 4 && strcmp(t->name + nlen - 4, "bias") == 0) return (float)(0.1 * z);
    fail_msg("%s: neither a weight nor a bias", t->name);
    return 0;
}

/* One component of the synthetic folder `out` against the golden checkpoint: same names, shapes and dtype
 * `dt`; data in sorted-name order; the first 4096 stream elements are numpy's golden normals for seed 0
 * (the component's own fresh generator).  Returns how many values were checked. */
static size_t check_sd_component(const char *golden, const char *out, int i, cdf_dtype dt, const double *z) {
    char a[2100], b[2100], rel[256];
    snprintf(rel, sizeof rel, "%s/%s", k_sd_models[i], k_sd_files[i]);
    path_join(a, sizeof a, golden, rel);
    path_join(b, sizeof b, out, rel);
    cdf_st_file *g = NULL, *f = NULL;
    cdf_error err = {0};
    if (cdf_st_open(a, &g, &err) || cdf_st_open(b, &f, &err)) fail_msg("%s", err.msg);
    size_t n = cdf_st_count(g);
    assert_true(n > 10);
    assert_int_equal(cdf_st_count(f), n);
    for (size_t k = 0; k < n; k++) {
        const cdf_st_tensor *gt = cdf_st_at(g, k), *t = cdf_st_find(f, gt->name);
        if (!t) fail_msg("%s: no tensor %s", b, gt->name);
        assert_int_equal(gt->dtype, dt);
        assert_int_equal(t->dtype, dt);
        assert_int_equal(t->ndim, gt->ndim);
        assert_memory_equal(t->shape, gt->shape, sizeof(int64_t) * (size_t)gt->ndim);
        assert_int_equal(t->nbytes, gt->nbytes);
    }
    size_t off = 0, checked = 0;
    for (size_t k = 0; k < n && off < 4096; k++) {
        const cdf_st_tensor *t = cdf_st_at(f, k);
        if (k) assert_true(strcmp(cdf_st_at(f, k - 1)->name, t->name) < 0);
        size_t numel = t->nbytes / cdf_dtype_size(dt);
        for (size_t j = 0; j < numel && off < 4096; j++, off++, checked++) {
            float want = protocol_value(t, z[off]);
            if (dt == CDF_F32) {
                float v;
                memcpy(&v, t->data + 4 * j, 4);
                if (memcmp(&v, &want, 4) != 0) fail_msg("%s[%zu] = %.9g, protocol %.9g", t->name, j, v, want);
            } else {
                uint16_t h;
                memcpy(&h, t->data + 2 * j, 2);
                if (h != cdf_f32_to_f16(want)) fail_msg("%s[%zu] = f16 %04x, protocol %.9g", t->name, j, h, want);
            }
        }
    }
    cdf_st_close(g);
    cdf_st_close(f);
    return checked;
}

/* The made folder loads as a StableDiffusionPipeline and runs 2 PNDM steps with CFG. */
static void run_sd(const char *dir) {
    cdf_error err = {0};
    cdf_pipeline *p = NULL;
    if (cdf_pipeline_load(dir, NULL, &p, &err)) fail_msg("%s: %s", dir, err.msg);
    cdf_generator *g = NULL;
    assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY, "0", &g, &err), CDF_OK);
    static const char *const prompt[1] = {"a cat"};
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.prompts = prompt;
    o.num_prompts = 1;
    o.num_inference_steps = 2;
    cdf_tensor img;
    if (cdf_pipeline_generate(p, &o, &g, 1, &img, NULL)) fail_msg("%s", cdf_pipeline_last_error(p));
    assert_int_equal(img.ndim, 4);
    assert_int_equal(img.shape[0], 1);
    assert_int_equal(img.shape[1], 64);
    assert_int_equal(img.shape[2], 64);
    assert_int_equal(img.shape[3], 3);
    const float *v = img.data;
    size_t n = (size_t)cdf_tensor_numel(&img);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(v[i] >= 0.0f && v[i] <= 1.0f)) fail_msg("image[%zu] = %g", i, v[i]);
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
    }
    assert_true(hi - lo > 0.01f); /* not a constant image */
    cdf_tensor_free(&img);
    cdf_generator_free(g);
    cdf_pipeline_free(p);
}

static void sd_tiny(const char *pipeline, const char *name, cdf_dtype dt) {
    char golden[2048], cfg[2048], out[2048], cname[64], a[2100], b[2100], rel[256];
    snprintf(golden, sizeof golden, "%s", tu_data("sd/pipelines/%s", pipeline));
    snprintf(cname, sizeof cname, "cfg_%s", name);
    copy_sd_config(golden, cname, NULL, 1, cfg, sizeof cfg);
    path_join(out, sizeof out, g_tmp, name);
    cdf_error err = {0};
    if (cdf_make_synthetic(cfg, out, "0", dt, &err) != CDF_OK) fail_msg("%s", err.msg);
    /* copied files, byte for byte */
    assert_same_file(tu_data("sd/pipelines/%s/model_index.json", pipeline), (path_join(b, sizeof b, out, "model_index.json"), b));
    for (int i = 0; i < 3; i++) {
        snprintf(rel, sizeof rel, "%s/config.json", k_sd_models[i]);
        path_join(a, sizeof a, golden, rel);
        path_join(b, sizeof b, out, rel);
        assert_same_file(a, b);
    }
    path_join(a, sizeof a, golden, "scheduler/scheduler_config.json");
    path_join(b, sizeof b, out, "scheduler/scheduler_config.json");
    assert_same_file(a, b);
    for (int i = 0; i < 4; i++) {
        snprintf(rel, sizeof rel, "tokenizer/%s", k_tok_files[i]);
        path_join(a, sizeof a, golden, rel);
        path_join(b, sizeof b, out, rel);
        assert_same_file(a, b);
    }
    /* null components (safety_checker, feature_extractor, image_encoder) get no folder */
    path_join(b, sizeof b, out, "safety_checker");
    assert_false(path_exists(b));
    double *z = tu_load_bin(tu_data("numpy_rng/seed_0.normal4096_f64.bin"), 4096, sizeof(double));
    assert_non_null(z);
    for (int i = 0; i < 3; i++) assert_int_equal(check_sd_component(golden, out, i, dt, z), 4096);
    free(z);
    run_sd(out);
}

static void sd_tiny_a_f32(void **state) {
    (void)state;
    sd_tiny("tiny-sd15-a", "sd_a", CDF_F32);
}

static void sd_tiny_b_f16(void **state) {
    (void)state;
    sd_tiny("tiny-sd15-b-f16", "sd_b", CDF_F16);
}

typedef struct notices {
    int n;
    char all[2048];
} notices;

static void on_notice(cdf_notice_level level, const char *msg, void *user) {
    (void)level;
    notices *ns = user;
    ns->n++;
    size_t len = strlen(ns->all);
    snprintf(ns->all + len, sizeof ns->all - len, "%s\n", msg);
}

/* SD-1.5's own model_index.json: safety_checker and feature_extractor are real classes without folders here;
 * they are skipped with a notice, plain values are ignored; missing files are refused before writing. */
static void sd_index_variants(void **state) {
    (void)state;
    static const char index[] =
        "{\"_class_name\": \"StableDiffusionPipeline\", \"_diffusers_version\": \"0.6.0\",\n"
        " \"feature_extractor\": [\"transformers\", \"CLIPImageProcessor\"],\n"
        " \"requires_safety_checker\": true,\n"
        " \"safety_checker\": [\"stable_diffusion\", \"StableDiffusionSafetyChecker\"],\n"
        " \"scheduler\": [\"diffusers\", \"PNDMScheduler\"],\n"
        " \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],\n"
        " \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"],\n"
        " \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],\n"
        " \"vae\": [\"diffusers\", \"AutoencoderKL\"]}\n";
    const char *golden = tu_data("sd/pipelines/tiny-sd15-b-f16");
    char g[2048], cfg[2048], out[2048], p[2100];
    snprintf(g, sizeof g, "%s", golden);
    copy_sd_config(g, "cfg_sd_index", index, 1, cfg, sizeof cfg);
    path_join(out, sizeof out, g_tmp, "sd_index");
    notices ns = {0, ""};
    cdf_error err = {0};
    err.on_notice = on_notice;
    err.notice_user = &ns;
    if (cdf_make_synthetic(cfg, out, "3", CDF_BF16, &err) != CDF_OK) fail_msg("%s", err.msg);
    assert_int_equal(ns.n, 2);
    assert_non_null(strstr(ns.all, "'safety_checker' (StableDiffusionSafetyChecker)"));
    assert_non_null(strstr(ns.all, "'feature_extractor' (CLIPImageProcessor)"));
    path_join(p, sizeof p, out, "safety_checker");
    assert_false(path_exists(p));
    path_join(p, sizeof p, out, "feature_extractor");
    assert_false(path_exists(p));
    path_join(p, sizeof p, out, "text_encoder/model.safetensors");
    cdf_st_file *f = NULL;
    if (cdf_st_open(p, &f, &err)) fail_msg("%s", err.msg);
    assert_int_equal(cdf_st_at(f, 0)->dtype, CDF_BF16);
    cdf_st_close(f);

    /* no tokenizer folder: refused before anything is written */
    char cfg2[2048], out2[2048];
    copy_sd_config(g, "cfg_sd_notok", NULL, 0, cfg2, sizeof cfg2);
    path_join(out2, sizeof out2, g_tmp, "sd_notok");
    cdf_error e2 = {0};
    assert_int_equal(cdf_make_synthetic(cfg2, out2, "0", CDF_F32, &e2), CDF_ERR_MISSING);
    assert_non_null(strstr(e2.msg, "tokenizer"));
    assert_false(path_exists(out2));

    /* a model config that does not parse: CDF_ERR_CONFIG naming the file, nothing written */
    path_join(p, sizeof p, cfg, "vae/config.json");
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    fputs("{\"_class_name\": \"AutoencoderKL\", \"layers_per_block\": \"two\"}\n", fp);
    fclose(fp);
    path_join(out2, sizeof out2, g_tmp, "sd_badvae");
    cdf_error e3 = {0};
    cdf_status s = cdf_make_synthetic(cfg, out2, "0", CDF_F32, &e3);
    if (s != CDF_ERR_CONFIG) fail_msg("status %d: %s", (int)s, e3.msg);
    assert_non_null(strstr(e3.msg, "vae/config.json"));
    assert_false(path_exists(out2));
}

static int setup(void **state) {
    (void)state;
    char *t = tu_tmpdir();
    if (!t) return -1;
    snprintf(g_tmp, sizeof g_tmp, "%s", t);
    free(t);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(g_tmp);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cifar10_full_seed0),
        cmocka_unit_test(half_dtypes),
        cmocka_unit_test(seeds),
        cmocka_unit_test(unsupported_component),
        cmocka_unit_test(sd_tiny_a_f32),
        cmocka_unit_test(sd_tiny_b_f16),
        cmocka_unit_test(sd_index_variants),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
