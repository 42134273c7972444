/* AutoencoderKL (src/models/vae.c) against diffusers 0.32.2:
 *  - decode: every golden SD case (tests/data/sd/cases) turns latents_final
 *    into its golden image within suggested_tolerance.image;
 *  - encode + raw decode: tests/data/vae_extra (gen.py, real diffusers on
 *    both tiny VAEs, incl. a 27x21 image) within the manifest's atol;
 *  - batch and thread-count invariance (bitwise);
 *  - the real SD-1.5 VAE config parses and describes exactly diffusers'
 *    state_dict (names and shapes);
 *  - strict loading: config errors, missing / extra / misshapen tensors,
 *    old attention names, bad arguments, out of memory without leaks. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "sd_case.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "io/st_write.h"
#include "models/vae.h"

static const char *k_pipes[2] = {"tiny-sd15-a", "tiny-sd15-b-f16"};

static cdf_vae *load_pipe_vae(const char *pipe) {
    cdf_error err = {0};
    cdf_vae *m = NULL;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", tu_data("sd/pipelines/%s/vae", pipe));
    if (cdf_vae_load(dir, NULL, &m, &err) != CDF_OK) fail_msg("loading %s: %s", dir, err.msg);
    return m;
}

/* Python's json writes -Infinity / Infinity / NaN (e.g. lambda_min_clipped in
 * case.json); cJSON does not read them: they become null here. */
static void sanitize_nonfinite(char *text) {
    static const char *const toks[] = {"-Infinity", "Infinity", "NaN"};
    for (int k = 0; k < 3; k++) {
        size_t tl = strlen(toks[k]);
        for (char *p = strstr(text, toks[k]); p; p = strstr(p + tl, toks[k])) {
            const char *q = p;
            while (q > text && (q[-1] == ' ' || q[-1] == '\n')) q--;
            if (q == text || (q[-1] != ':' && q[-1] != ',' && q[-1] != '[')) continue;
            memset(p, ' ', tl);
            memcpy(p, "null", 4);
        }
    }
}

static cJSON *load_json(const char *path) {
    char *text = tu_read_text(path);
    if (!text) fail_msg("cannot read %s", path);
    sanitize_nonfinite(text);
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) fail_msg("cannot parse %s", path);
    return root;
}

static int json_int_at(const cJSON *arr, int i) { return (int)cJSON_GetArrayItem(arr, i)->valuedouble; }

/* Runs decode or encode with `threads` threads; fails the test on error. */
static void run_vae(const cdf_vae *m, int threads, int encode, const float *in, int batch, int h, int w, float *out) {
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, threads, &err);
    cdf_status s = encode ? cdf_vae_encode(&ex, m, in, batch, h, w, out) : cdf_vae_decode(&ex, m, in, batch, h, w, out);
    cdf_exec_release(&ex);
    if (s) fail_msg("VAE %s: %s", encode ? "encode" : "decode", err.msg);
}

/* ------------------------------------------------------------ golden decode */

static void test_golden_decode(void **state) {
    (void)state;
    cdf_vae *vae[2] = {load_pipe_vae(k_pipes[0]), load_pipe_vae(k_pipes[1])};
    assert_int_equal(cdf_vae_scale_factor(vae[0]), 8);
    assert_int_equal(cdf_vae_latent_channels(vae[0]), 4);
    assert_int_equal(cdf_vae_out_channels(vae[1]), 3);
    assert_true(cdf_vae_scaling_factor(vae[1]) == 0.18215f);
    char root[1024];
    snprintf(root, sizeof root, "%s", tu_data("sd/cases"));
    static char names[64][256];
    int n = case_names_in("sd", names, 64);
    double worst[2] = {0, 0};
    int used[2] = {0, 0};
    for (int k = 0; k < n; k++) {
        char cdir[1400], path[1500];
        snprintf(cdir, sizeof cdir, "%s/%.255s", root, names[k]);
        snprintf(path, sizeof path, "%s/case.json", cdir);
        cJSON *cj = load_json(path);
        const char *pipe = cJSON_GetObjectItem(cJSON_GetObjectItem(cj, "call"), "pipeline")->valuestring;
        int pi = strstr(pipe, k_pipes[1]) ? 1 : 0;
        assert_non_null(strstr(pipe, k_pipes[pi]));
        const cJSON *arr = cJSON_GetObjectItem(cj, "arrays");
        const cJSON *ls = cJSON_GetObjectItem(cJSON_GetObjectItem(arr, "latents_final"), "shape");
        const cJSON *is = cJSON_GetObjectItem(cJSON_GetObjectItem(arr, "image"), "shape");
        int B = json_int_at(ls, 0), C = json_int_at(ls, 1), h = json_int_at(ls, 2), w = json_int_at(ls, 3);
        int H = json_int_at(is, 1), W = json_int_at(is, 2), OC = json_int_at(is, 3);
        double atol =
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cj, "suggested_tolerance"), "image"), "atol")
                ->valuedouble;
        assert_int_equal(C, cdf_vae_latent_channels(vae[pi]));
        assert_int_equal(H, h * 8);
        assert_int_equal(W, w * 8);
        assert_int_equal(OC, 3);
        size_t nz = (size_t)B * C * h * w, ni = (size_t)B * OC * H * W;
        snprintf(path, sizeof path, "%s/latents_final.f32.bin", cdir);
        float *lat = tu_load_bin(path, nz, 4);
        snprintf(path, sizeof path, "%s/image.f32.bin", cdir);
        float *img = tu_load_bin(path, ni, 4);
        assert_non_null(lat);
        assert_non_null(img);
        /* pipeline: vae.decode(latents / scaling_factor) (float32 division) */
        float sf = cdf_vae_scaling_factor(vae[pi]);
        for (size_t i = 0; i < nz; i++) lat[i] = lat[i] / sf;
        float *dec = malloc(ni * sizeof(float)), *nhwc = malloc(ni * sizeof(float));
        assert_non_null(dec);
        assert_non_null(nhwc);
        run_vae(vae[pi], 2, 0, lat, B, h, w, dec);
        /* (x / 2 + 0.5).clamp(0, 1), NCHW -> NHWC */
        for (int b = 0; b < B; b++)
            for (int c = 0; c < OC; c++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++) {
                        float v = dec[(((size_t)b * OC + c) * H + y) * W + x] / 2.0f + 0.5f;
                        v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
                        nhwc[(((size_t)b * H + y) * W + x) * OC + c] = v;
                    }
        double e = tu_max_abs_diff_f32(nhwc, img, ni);
        printf("%-30s %-16s B=%d %2dx%-3d image max err %.2e (atol %.0e)\n", names[k], k_pipes[pi], B, H, W, e, atol);
        if (!(e <= atol)) fail_msg("%s: image error %.3e over %.1e", names[k], e, atol);
        if (e > worst[pi]) worst[pi] = e;
        used[pi]++;
        free(lat);
        free(img);
        free(dec);
        free(nhwc);
        cJSON_Delete(cj);
    }
    printf("max image error: %s %.2e (%d cases), %s %.2e (%d cases)\n", k_pipes[0], worst[0], used[0], k_pipes[1],
           worst[1], used[1]);
    assert_true(used[0] > 0 && used[1] > 0);
    cdf_vae_free(vae[0]);
    cdf_vae_free(vae[1]);
}

/* ---------------------------------------------------- encoder / raw decode */

static float *extra_file(const cJSON *entry, size_t *count) {
    const char *file = cJSON_GetObjectItem(entry, "file")->valuestring;
    *count = (size_t)cJSON_GetObjectItem(entry, "count")->valuedouble;
    float *p = tu_load_bin(tu_data("vae_extra/%s", file), *count, 4);
    if (!p) fail_msg("cannot read vae_extra/%s", file);
    return p;
}

static void test_encode_and_raw_decode(void **state) {
    (void)state;
    cJSON *man = load_json(tu_data("vae_extra/manifest.json"));
    const cJSON *cases = cJSON_GetObjectItem(man, "cases"), *c;
    int ncases = 0;
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        const char *pipe = strstr(name, k_pipes[1]) ? k_pipes[1] : k_pipes[0];
        cdf_vae *m = load_pipe_vae(pipe);
        int B = (int)cJSON_GetObjectItem(c, "batch")->valuedouble;
        int H = (int)cJSON_GetObjectItem(c, "height")->valuedouble, W = (int)cJSON_GetObjectItem(c, "width")->valuedouble;
        int f = cdf_vae_scale_factor(m), lc = cdf_vae_latent_channels(m), h = H / f, w = W / f;
        size_t nx, nm, nd;
        float *x = extra_file(cJSON_GetObjectItem(c, "x"), &nx);
        float *mom = extra_file(cJSON_GetObjectItem(c, "moments"), &nm);
        float *dec = extra_file(cJSON_GetObjectItem(c, "decoded"), &nd);
        assert_int_equal(nx, (size_t)B * 3 * H * W);
        assert_int_equal(nm, (size_t)B * 2 * lc * h * w);
        assert_int_equal(nd, (size_t)B * 3 * h * f * w * f);
        const cJSON *atol = cJSON_GetObjectItem(c, "atol");
        double tol_m = cJSON_GetObjectItem(atol, "moments")->valuedouble;
        double tol_d = cJSON_GetObjectItem(atol, "decoded")->valuedouble;

        float *got = malloc(nm * sizeof(float));
        run_vae(m, 2, 1, x, B, H, W, got);
        double em = tu_max_abs_diff_f32(got, mom, nm);
        /* decode the golden posterior mean (channels [0, lc) of each image's moments) */
        float *z = malloc((size_t)B * lc * h * w * sizeof(float)), *out = malloc(nd * sizeof(float));
        for (int b = 0; b < B; b++)
            memcpy(z + (size_t)b * lc * h * w, mom + (size_t)b * 2 * lc * h * w, sizeof(float) * (size_t)lc * h * w);
        run_vae(m, 2, 0, z, B, h, w, out);
        double ed = tu_max_abs_diff_f32(out, dec, nd);
        printf("%-26s moments max err %.2e (atol %.1e)  decoded max err %.2e (atol %.1e)\n", name, em, tol_m, ed,
               tol_d);
        if (!(em <= tol_m)) fail_msg("%s: moments error %.3e over %.2e", name, em, tol_m);
        if (!(ed <= tol_d)) fail_msg("%s: decoded error %.3e over %.2e", name, ed, tol_d);
        free(got);
        free(z);
        free(out);
        free(x);
        free(mom);
        free(dec);
        cdf_vae_free(m);
        ncases++;
    }
    assert_int_equal(ncases, 3);
    cJSON_Delete(man);
}

/* ------------------------------------------------ batch / thread invariance */

static void test_invariance(void **state) {
    (void)state;
    cdf_vae *m = load_pipe_vae(k_pipes[1]);
    const int B = 4, C = 4, h = 8, w = 8, H = 64, W = 64;
    size_t nz = (size_t)C * h * w, ni = (size_t)3 * H * W;
    float *lat = tu_load_bin(tu_data("sd/cases/seeddoc_gen_seeds0to3_nipp4/latents_final.f32.bin"), B * nz, 4);
    assert_non_null(lat);
    for (size_t i = 0; i < B * nz; i++) lat[i] = lat[i] / 0.18215f;
    float *all = malloc(B * ni * sizeof(float)), *one = malloc(ni * sizeof(float));
    float *t1 = malloc(B * ni * sizeof(float));
    run_vae(m, 2, 0, lat, B, h, w, all);
    for (int b = 0; b < B; b++) {
        run_vae(m, 2, 0, lat + b * nz, 1, h, w, one);
        assert_memory_equal(one, all + b * ni, ni * sizeof(float));
    }
    run_vae(m, 1, 0, lat, B, h, w, t1);
    assert_memory_equal(t1, all, B * ni * sizeof(float));
    /* encoder: the decoded images back, as a batch, alone, with 1 thread */
    size_t nm = (size_t)8 * h * w;
    float *mall = malloc(B * nm * sizeof(float)), *mone = malloc(nm * sizeof(float)), *m1 = malloc(B * nm * sizeof(float));
    run_vae(m, 2, 1, all, B, H, W, mall);
    for (int b = 0; b < B; b++) {
        run_vae(m, 2, 1, all + b * ni, 1, H, W, mone);
        assert_memory_equal(mone, mall + b * nm, nm * sizeof(float));
    }
    run_vae(m, 1, 1, all, B, H, W, m1);
    assert_memory_equal(m1, mall, B * nm * sizeof(float));
    free(lat);
    free(all);
    free(one);
    free(t1);
    free(mall);
    free(mone);
    free(m1);
    cdf_vae_free(m);
}

/* ------------------------------------------------------- SD-1.5 structure */

typedef struct rec_list {
    int n;
    char names[400][128];
    int ndim[400];
    int64_t shape[400][4];
} rec_list;

static cdf_status record(const char *name, int ndim, const int64_t *shape, void *user) {
    rec_list *l = user;
    if (l->n >= 400 || ndim > 4) return CDF_ERR_LIMIT;
    snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
    l->ndim[l->n] = ndim;
    for (int i = 0; i < ndim; i++) l->shape[l->n][i] = shape[i];
    l->n++;
    return CDF_OK;
}

static void test_sd15_config(void **state) {
    (void)state;
    const char *path = tu_data("vae_extra/sd15_vae_config.json");
    char p[1024];
    snprintf(p, sizeof p, "%s", path);
    cJSON *root = load_json(p);
    cdf_vae_config cfg;
    cdf_error err = {0};
    if (cdf_vae_config_parse(root, p, &cfg, &err)) fail_msg("%s", err.msg);
    cJSON_Delete(root);
    static const int boc[4] = {128, 256, 512, 512};
    assert_int_equal(cfg.num_blocks, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(cfg.block_out_channels[i], boc[i]);
    assert_int_equal(cfg.layers_per_block, 2);
    assert_int_equal(cfg.latent_channels, 4);
    assert_int_equal(cfg.norm_num_groups, 32);
    assert_int_equal(cfg.sample_h, 512);
    assert_true(cfg.scaling_factor == 0.18215); /* the default: the 0.6.0 config has no such key */
    assert_false(cfg.has_shift_factor);
    assert_true(cfg.use_quant_conv && cfg.use_post_quant_conv && cfg.mid_block_add_attention);

    rec_list *l = calloc(1, sizeof *l);
    assert_int_equal(cdf_vae_describe(&cfg, record, l, &err), CDF_OK);
    cJSON *sd = load_json(tu_data("vae_extra/sd15_state_dict.json"));
    const cJSON *ts = cJSON_GetObjectItem(sd, "tensors"), *t;
    assert_int_equal(l->n, cJSON_GetArraySize(ts));
    assert_int_equal(l->n, 248);
    cJSON_ArrayForEach(t, ts) {
        const char *name = cJSON_GetArrayItem(t, 0)->valuestring;
        const cJSON *shape = cJSON_GetArrayItem(t, 1);
        int k = 0;
        while (k < l->n && strcmp(l->names[k], name) != 0) k++;
        if (k == l->n) fail_msg("describe lacks %s", name);
        assert_int_equal(l->ndim[k], cJSON_GetArraySize(shape));
        for (int i = 0; i < l->ndim[k]; i++)
            if (l->shape[k][i] != json_int_at(shape, i)) fail_msg("%s: dim %d differs", name, i);
    }
    cJSON_Delete(sd);
    free(l);
}

/* ---------------------------------------------------------- strict errors */

static char g_tmp[1024];

/* tmp/<name>/ with config.json = the tiny-sd15-a VAE config patched by
 * `patch` (JSON object merged over it; NULL keeps it) and the weights linked
 * (or written by the caller when link == 0). */
static const char *make_dir(const char *name, const char *patch, int link) {
    static char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", g_tmp, name);
    mkdir(dir, 0755);
    cJSON *root = load_json(tu_data("sd/pipelines/tiny-sd15-a/vae/config.json"));
    if (patch) {
        cJSON *pj = cJSON_Parse(patch);
        assert_non_null(pj);
        cJSON *it = pj->child;
        while (it) {
            cJSON *next = it->next;
            cJSON_DetachItemViaPointer(pj, it);
            cJSON_DeleteItemFromObjectCaseSensitive(root, it->string);
            cJSON_AddItemToObject(root, it->string, it);
            it = next;
        }
        cJSON_Delete(pj);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char path[1400];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    cJSON_free(text);
    if (link) {
        snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
        unlink(path);
        assert_int_equal(symlink(tu_data("sd/pipelines/tiny-sd15-a/vae/diffusion_pytorch_model.safetensors"), path), 0);
    }
    return dir;
}

static void expect_load_error(const char *name, const char *patch, cdf_status want, const char *n1, const char *n2) {
    const char *dir = make_dir(name, patch, 1);
    cdf_error err = {0};
    cdf_vae *m = NULL;
    cdf_status s = cdf_vae_load(dir, NULL, &m, &err);
    if (s != want) fail_msg("%s: status %s, want %s (%s)", name, cdf_status_name(s), cdf_status_name(want), err.msg);
    assert_null(m);
    if (n1 && !strstr(err.msg, n1)) fail_msg("%s: '%s' does not mention '%s'", name, err.msg, n1);
    if (n2 && !strstr(err.msg, n2)) fail_msg("%s: '%s' does not mention '%s'", name, err.msg, n2);
    printf("%-14s %s: %s\n", name, cdf_status_name(s), err.msg);
}

static void notice_count(cdf_notice_level level, const char *msg, void *user) {
    (void)level;
    if (strstr(msg, "norm_eps")) ++*(int *)user;
}

static void test_config_errors(void **state) {
    (void)state;
    expect_load_error("cls", "{\"_class_name\": \"AutoencoderTiny\"}", CDF_ERR_UNSUPPORTED, "AutoencoderTiny",
                      "config.json");
    expect_load_error("attnblock",
                      "{\"down_block_types\": [\"DownEncoderBlock2D\", \"AttnDownEncoderBlock2D\", "
                      "\"DownEncoderBlock2D\", \"DownEncoderBlock2D\"]}",
                      CDF_ERR_UNSUPPORTED, "down_block_types", "AttnDownEncoderBlock2D");
    expect_load_error("unknownblock",
                      "{\"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"Foo\", "
                      "\"UpDecoderBlock2D\"]}",
                      CDF_ERR_CONFIG, "up_block_types", "Foo");
    expect_load_error("nblocks", "{\"block_out_channels\": [32, 32, 32]}", CDF_ERR_CONFIG, "block_out_channels",
                      NULL);
    expect_load_error("groups", "{\"norm_num_groups\": 7}", CDF_ERR_CONFIG, "norm_num_groups", NULL);
    expect_load_error("act", "{\"act_fn\": \"tanhh\"}", CDF_ERR_CONFIG, "act_fn", "tanhh");
    expect_load_error("scaling", "{\"scaling_factor\": null}", CDF_ERR_CONFIG, "scaling_factor", NULL);
    expect_load_error("lpb", "{\"layers_per_block\": 0}", CDF_ERR_CONFIG, "layers_per_block", NULL);
    expect_load_error("stats", "{\"latents_mean\": [1, \"a\"]}", CDF_ERR_CONFIG, "latents_mean", NULL);
    /* config / weights disagreement: strict shapes, missing and unused tensors */
    expect_load_error("latent8", "{\"latent_channels\": 8}", CDF_ERR_SHAPE, "encoder.conv_out.weight", "[16, 32, 3, 3]");
    expect_load_error("lpb2", "{\"layers_per_block\": 2}", CDF_ERR_MISSING, "encoder.down_blocks.0.resnets.1.norm1.weight",
                      NULL);
    expect_load_error("noquant", "{\"use_quant_conv\": false}", CDF_ERR_FORMAT, "quant_conv", NULL);
    expect_load_error("noattn", "{\"mid_block_add_attention\": false}", CDF_ERR_FORMAT, "attentions.0", NULL);

    /* accepted: SD-style null / ignored fields, unknown keys with a notice */
    const char *dir = make_dir("ok", "{\"shift_factor\": 0.0609, \"force_upcast\": false, \"norm_eps\": 1e-6, "
                                     "\"latents_mean\": [0, 0, 0, 0], \"sample_size\": [64, 48]}",
                               1);
    int notices = 0;
    cdf_error err = {0};
    err.on_notice = notice_count;
    err.notice_user = &notices;
    cdf_vae *m = NULL;
    if (cdf_vae_load(dir, NULL, &m, &err)) fail_msg("%s", err.msg);
    assert_int_equal(notices, 1);
    const cdf_vae_config *cfg = cdf_vae_get_config(m);
    assert_true(cfg->has_shift_factor && cfg->shift_factor == 0.0609);
    assert_true(cfg->has_latents_mean && !cfg->has_latents_std);
    assert_int_equal(cfg->force_upcast, 0);
    assert_int_equal(cfg->sample_h, 64);
    assert_int_equal(cfg->sample_w, 48);

    /* argument errors */
    float z[4 * 2 * 2] = {0}, out[3 * 16 * 16], mom[8];
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    assert_int_equal(cdf_vae_decode(&ex, m, z, 0, 2, 2, out), CDF_ERR_ARG);
    assert_int_equal(cdf_vae_decode(&ex, m, NULL, 1, 2, 2, out), CDF_ERR_ARG);
    assert_int_equal(cdf_vae_encode(&ex, m, out, 1, 7, 16, mom), CDF_ERR_ARG); /* below the scale factor */
    assert_non_null(strstr(err.msg, "7x16"));
    volatile int stop = 1;
    ex.interrupt = &stop;
    assert_int_equal(cdf_vae_decode(&ex, m, z, 1, 2, 2, out), CDF_ERR_INTERRUPTED);
    cdf_exec_release(&ex);
    cdf_vae_free(m);
}

/* Writes the tiny-sd15-a VAE weights into dir with names mapped by rename()
 * (NULL: drop the tensor). */
typedef const char *(*rename_fn)(const char *name, char *buf, size_t n);

typedef struct copy_ctx {
    cdf_st_file *src;
    const cdf_st_tensor **from; /* [n] */
} copy_ctx;

static cdf_status copy_fill(size_t i, const cdf_st_entry *e, void *data, void *user, cdf_error *err) {
    (void)e;
    (void)err;
    copy_ctx *c = user;
    memcpy(data, c->from[i]->data, c->from[i]->nbytes);
    return CDF_OK;
}

static void write_weights(const char *dir, rename_fn rn) {
    cdf_error err = {0};
    copy_ctx c = {0};
    assert_int_equal(cdf_st_open(tu_data("sd/pipelines/tiny-sd15-a/vae/diffusion_pytorch_model.safetensors"), &c.src, &err),
                     CDF_OK);
    size_t n = cdf_st_count(c.src), k = 0;
    cdf_st_entry *e = calloc(n, sizeof *e);
    char(*names)[256] = calloc(n, sizeof *names);
    c.from = calloc(n, sizeof *c.from);
    for (size_t i = 0; i < n; i++) {
        const cdf_st_tensor *t = cdf_st_at(c.src, i);
        const char *nm = rn(t->name, names[k], sizeof names[k]);
        if (!nm) continue;
        e[k].name = nm;
        e[k].dtype = t->dtype;
        e[k].ndim = t->ndim;
        memcpy(e[k].shape, t->shape, sizeof t->shape);
        c.from[k++] = t;
    }
    char path[1400];
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    if (cdf_st_write(path, e, k, copy_fill, &c, &err)) fail_msg("%s", err.msg);
    cdf_st_close(c.src);
    free(e);
    free(names);
    free(c.from);
}

/* to_q/to_k/to_v/to_out.0 -> query/key/value/proj_attn (pre-0.14 checkpoints). */
static const char *legacy_rename(const char *name, char *buf, size_t n) {
    static const char *const map[][2] = {{".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."},
                                         {".to_out.0.", ".proj_attn."}};
    for (size_t i = 0; i < 4; i++) {
        const char *at = strstr(name, map[i][0]);
        if (at) {
            snprintf(buf, n, "%.*s%s%s", (int)(at - name), name, map[i][1], at + strlen(map[i][0]));
            return buf;
        }
    }
    snprintf(buf, n, "%s", name);
    return buf;
}

static const char *drop_rename(const char *name, char *buf, size_t n) {
    if (strcmp(name, "decoder.up_blocks.2.upsamplers.0.conv.bias") == 0) return NULL;
    snprintf(buf, n, "%s", name);
    return buf;
}

static void test_weights(void **state) {
    (void)state;
    cdf_vae *ref = load_pipe_vae(k_pipes[0]);
    const char *dir = make_dir("legacy", NULL, 0);
    write_weights(dir, legacy_rename);
    cdf_error err = {0};
    cdf_vae *m = NULL;
    if (cdf_vae_load(dir, NULL, &m, &err)) fail_msg("legacy names: %s", err.msg);
    float z[4 * 3 * 2], a[3 * 24 * 16], b[3 * 24 * 16];
    for (int i = 0; i < 24; i++) z[i] = sinf(0.7f * (float)i) * 3.0f;
    run_vae(ref, 1, 0, z, 1, 3, 2, a);
    run_vae(m, 1, 0, z, 1, 3, 2, b);
    assert_memory_equal(a, b, sizeof a);
    cdf_vae_free(m);
    cdf_vae_free(ref);

    dir = make_dir("dropped", NULL, 0);
    write_weights(dir, drop_rename);
    m = NULL;
    assert_int_equal(cdf_vae_load(dir, NULL, &m, &err), CDF_ERR_MISSING);
    assert_null(m);
    assert_non_null(strstr(err.msg, "decoder.up_blocks.2.upsamplers.0.conv.bias"));
    assert_non_null(strstr(err.msg, "[32]"));
    printf("dropped        %s\n", err.msg);
}

/* ---------------------------------------------------------- out of memory */

typedef struct fail_alloc {
    long calls, fail_at, live;
} fail_alloc;

static void *fa_malloc(size_t n, void *u) {
    fail_alloc *f = u;
    if (++f->calls == f->fail_at) return NULL;
    void *p = malloc(n);
    if (p) f->live++;
    return p;
}
static void *fa_realloc(void *p, size_t n, void *u) {
    fail_alloc *f = u;
    if (++f->calls == f->fail_at) return NULL;
    void *q = realloc(p, n);
    if (q && !p) f->live++;
    return q;
}
static void fa_free(void *p, void *u) {
    fail_alloc *f = u;
    if (p) f->live--;
    free(p);
}

/* Sweeps the allocations of op(ctx): each failing one gives CDF_ERR_NOMEM
 * with nothing leaked.  Every point when `dense` (or within 400 of either
 * end), else every 29th in the middle (the safetensors header parse, which
 * test_io_nomem sweeps fully).  Returns the number of points tried. */
typedef cdf_status (*op_fn)(void *ctx);

static int sweep(const char *what, op_fn op, void *ctx, int dense) {
    fail_alloc f0 = {0, -1, 0};
    cdf_allocator a0 = {fa_malloc, fa_realloc, fa_free, &f0};
    cdf_set_allocator(&a0);
    cdf_status s0 = op(ctx);
    cdf_set_allocator(NULL);
    assert_int_equal(s0, CDF_OK);
    assert_int_equal(f0.live, 0);
    long total = f0.calls;
    int tried = 0;
    for (long k = 1; k <= total; k++) {
        if (!dense && k > 400 && k < total - 400 && k % 29) continue;
        fail_alloc f = {0, k, 0};
        cdf_allocator a = {fa_malloc, fa_realloc, fa_free, &f};
        cdf_set_allocator(&a);
        cdf_status st = op(ctx);
        cdf_set_allocator(NULL);
        if (f.live != 0) fail_msg("%s: failing allocation %ld leaked %ld blocks", what, k, f.live);
        if (st != CDF_ERR_NOMEM) fail_msg("%s: failing allocation %ld: status %s", what, k, cdf_status_name(st));
        tried++;
    }
    printf("%s: out of memory at %d of %ld allocation points: clean\n", what, tried, total);
    return tried;
}

static cdf_status op_load(void *ctx) {
    cdf_error err = {0};
    cdf_vae *m = NULL;
    cdf_status s = cdf_vae_load(ctx, NULL, &m, &err);
    cdf_vae_free(m);
    /* cJSON reports allocation failure as a parse error (io/json.c says so):
     * config.json and the safetensors header */
    if (s == CDF_ERR_FORMAT && strstr(err.msg, "invalid JSON near byte")) return CDF_ERR_NOMEM;
    return s;
}

typedef struct fwd_ctx {
    const cdf_vae *m;
    float z[16], img[3 * 16 * 16], mom[8 * 2 * 2];
} fwd_ctx;

/* decode 2x2 latents + encode the 16x16 result; F16 weights go through scratch conversion */
static cdf_status op_forward(void *ctx) {
    fwd_ctx *c = ctx;
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    cdf_status s = cdf_vae_decode(&ex, c->m, c->z, 1, 2, 2, c->img);
    if (!s) s = cdf_vae_encode(&ex, c->m, c->img, 1, 16, 16, c->mom);
    cdf_exec_release(&ex);
    return s;
}

static void test_out_of_memory(void **state) {
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", tu_data("sd/pipelines/%s/vae", k_pipes[1]));
    assert_true(sweep("load", op_load, dir, 0) >= 20);
    fwd_ctx *c = calloc(1, sizeof *c);
    c->m = load_pipe_vae(k_pipes[1]);
    for (int i = 0; i < 16; i++) c->z[i] = cosf((float)i);
    assert_int_equal(op_forward(c), CDF_OK);
    float ref[8 * 2 * 2];
    memcpy(ref, c->mom, sizeof ref);
    assert_true(sweep("decode+encode", op_forward, c, 1) >= 50);
    assert_memory_equal(c->mom, ref, sizeof ref);
    cdf_vae_free((cdf_vae *)c->m);
    free(c);
}

int main(void) {
    char *tmp = tu_tmpdir();
    if (!tmp) return 1;
    snprintf(g_tmp, sizeof g_tmp, "%s", tmp);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_decode),  cmocka_unit_test(test_encode_and_raw_decode),
        cmocka_unit_test(test_invariance),     cmocka_unit_test(test_sd15_config),
        cmocka_unit_test(test_config_errors),  cmocka_unit_test(test_weights),
        cmocka_unit_test(test_out_of_memory),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmtree(tmp);
    free(tmp);
    return rc;
}
