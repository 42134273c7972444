/* UnCLIP's super-resolution UNets: UNet2DModel with ResnetDownsampleBlock2D /
 * ResnetUpsampleBlock2D and no mid-block attention (src/models/unet2d.c)
 * against diffusers 0.32.2:
 *  - forward of tiny-karlo-a's super_res_first and super_res_last on a seeded
 *    batch of 2 at t = 999 and t = 0, within the manifest's atol
 *    (tests/data/unclip_extra/gen_superres.py, live torch, float64 floors);
 *  - 1 vs 2 threads identical bytes; image k of the batch equals it alone;
 *  - the real karlo-v1-alpha super_res_first / super_res_last configs parse
 *    (super_res_last has sample_size null) and describe exactly diffusers'
 *    state_dict, names and shapes; so does the tiny config;
 *  - strict loading of these folders: a config that does not match the
 *    checkpoint (plain blocks, more layers, other widths) is refused naming
 *    the tensor and the shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "cdiffusers/rng.h"
#include "io/json.h"
#include "models/unet2d.h"

#define PIPE "unclip/pipelines/tiny-karlo-a"

static cJSON *load_json(const char *path) {
    char *text = tu_read_text(path);
    if (!text) fail_msg("cannot read %s", path);
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) fail_msg("cannot parse %s", path);
    return root;
}

static int json_int_at(const cJSON *arr, int i) { return (int)cJSON_GetArrayItem(arr, i)->valuedouble; }

static cdf_unet2d *load_model(const char *name) {
    cdf_error err = {0};
    cdf_unet2d *m = NULL;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", tu_data(PIPE "/%s", name));
    if (cdf_unet2d_load(dir, NULL, &m, &err) != CDF_OK) fail_msg("loading %s: %s", dir, err.msg);
    return m;
}

static void run_unet(const cdf_unet2d *m, int threads, const float *x, int batch, int h, int w, int64_t t,
                     float *out) {
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, threads, &err);
    cdf_status s = cdf_unet2d_forward(&ex, m, x, batch, h, w, t, out);
    cdf_exec_release(&ex);
    if (s) fail_msg("UNet forward (t %lld): %s", (long long)t, err.msg);
}

/* The sample of gen_superres.py: Generator(PCG64(seed)).standard_normal(shape) as float32. */
static float *make_sample(const cJSON *man, int *batch, int *ch, int *h, int *w) {
    const cJSON *smp = cJSON_GetObjectItem(man, "sample");
    const cJSON *sh = cJSON_GetObjectItem(smp, "shape");
    *batch = json_int_at(sh, 0);
    *ch = json_int_at(sh, 1);
    *h = json_int_at(sh, 2);
    *w = json_int_at(sh, 3);
    char seed[32];
    snprintf(seed, sizeof seed, "%d", (int)cJSON_GetObjectItem(smp, "seed")->valuedouble);
    size_t n = (size_t)*batch * *ch * *h * *w;
    cdf_error err = {0};
    cdf_generator *g = NULL;
    if (cdf_generator_new(CDF_RNG_NUMPY, seed, &g, &err) != CDF_OK) fail_msg("generator: %s", err.msg);
    double *d = malloc(n * sizeof(double));
    float *x = malloc(n * sizeof(float));
    assert_true(d && x);
    cdf_generator_standard_normal(g, d, n);
    cdf_generator_free(g);
    for (size_t i = 0; i < n; i++) x[i] = (float)d[i];
    free(d);
    const cJSON *fv = cJSON_GetObjectItem(smp, "first_values");
    assert_int_equal(cJSON_GetArraySize(fv), 4); /* the manifest's first 4 sample values */
    for (int i = 0; i < cJSON_GetArraySize(fv); i++)
        if (x[i] != (float)cJSON_GetArrayItem(fv, i)->valuedouble)
            fail_msg("regenerated sample[%d] = %.9g, the reference had %.9g", i, x[i],
                     cJSON_GetArrayItem(fv, i)->valuedouble);
    return x;
}

/* ---------------------------------------------------------- forward */

static void forward_matches_reference(void **state) {
    (void)state;
    cJSON *man = load_json(tu_data("unclip_extra/superres_manifest.json"));
    int B, C, h, w;
    float *x = make_sample(man, &B, &C, &h, &w);
    const cJSON *outs = cJSON_GetObjectItem(man, "outputs"), *o;
    int n = 0, seen_t0 = 0, seen_t999 = 0;
    cJSON_ArrayForEach(o, outs) {
        const char *model = cJSON_GetObjectItem(o, "model")->valuestring;
        int64_t t = (int64_t)cJSON_GetObjectItem(o, "t")->valuedouble;
        double atol = cJSON_GetObjectItem(o, "atol")->valuedouble;
        cdf_unet2d *m = load_model(model);
        assert_int_equal(m->cfg.in_channels, C);
        size_t ny = (size_t)B * m->cfg.out_channels * h * w;
        float *ref = tu_load_bin(tu_data("unclip_extra/%s", cJSON_GetObjectItem(o, "file")->valuestring), ny, 4);
        assert_non_null(ref);
        float *y = malloc(ny * sizeof(float));
        assert_non_null(y);
        run_unet(m, 2, x, B, h, w, t, y);
        double e = tu_max_abs_diff_f32(y, ref, ny);
        printf("%-16s t=%-3lld batch %d %dx%d: max err %.2e (atol %.1e, fp64 floor %.1e)\n", model, (long long)t, B,
               h, w, e, atol, cJSON_GetObjectItem(o, "noise_floor")->valuedouble);
        if (!(e <= atol)) fail_msg("%s t=%lld: error %.3e over %.1e", model, (long long)t, e, atol);
        seen_t0 += t == 0;
        seen_t999 += t == 999;
        n++;
        free(ref);
        free(y);
        cdf_unet2d_free(m);
    }
    assert_int_equal(n, 4);
    assert_int_equal(seen_t0, 2);
    assert_int_equal(seen_t999, 2);
    free(x);
    cJSON_Delete(man);
}

static void threads_and_batch_invariance(void **state) {
    (void)state;
    cJSON *man = load_json(tu_data("unclip_extra/superres_manifest.json"));
    int B, C, h, w;
    float *x = make_sample(man, &B, &C, &h, &w);
    static const char *const names[2] = {"super_res_first", "super_res_last"};
    for (int k = 0; k < 2; k++) {
        cdf_unet2d *m = load_model(names[k]);
        size_t per = (size_t)m->cfg.out_channels * h * w, ny = (size_t)B * per;
        float *y1 = malloc(ny * sizeof(float)), *y2 = malloc(ny * sizeof(float)), *one = malloc(per * sizeof(float));
        assert_true(y1 && y2 && one);
        run_unet(m, 1, x, B, h, w, 999, y1);
        run_unet(m, 2, x, B, h, w, 999, y2);
        assert_memory_equal(y1, y2, ny * sizeof(float));
        for (int b = 0; b < B; b++) {
            run_unet(m, 2, x + (size_t)b * C * h * w, 1, h, w, 999, one);
            assert_memory_equal(one, y1 + (size_t)b * per, per * sizeof(float));
        }
        free(y1);
        free(y2);
        free(one);
        cdf_unet2d_free(m);
    }
    free(x);
    cJSON_Delete(man);
}

/* ------------------------------------------------- configs and state_dict */

typedef struct rec_list {
    int n;
    char names[600][128];
    int ndim[600];
    int64_t shape[600][4];
} rec_list;

static cdf_status record(const char *name, int ndim, const int64_t *shape, void *user) {
    rec_list *l = user;
    if (l->n >= 600 || ndim > 4) return CDF_ERR_LIMIT;
    snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
    l->ndim[l->n] = ndim;
    for (int i = 0; i < ndim; i++) l->shape[l->n][i] = shape[i];
    l->n++;
    return CDF_OK;
}

static int g_notices;
static void count_notice(cdf_notice_level level, const char *msg, void *user) {
    (void)level;
    (void)user;
    printf("notice: %s\n", msg);
    g_notices++;
}

/* Parses config `cfg_path`, describes it and compares with the state_dict list
 * in `sd_path`, which holds `n_tensors` entries (an emptied list fails). */
static void check_describe(const char *cfg_path, const char *sd_path, int n_tensors, cdf_unet2d_config *cfg) {
    cdf_error err = {0};
    err.on_notice = count_notice;
    cJSON *cj = NULL;
    assert_int_equal(cdf_json_load(cfg_path, &cj, &err), CDF_OK);
    g_notices = 0;
    if (cdf_unet2d_config_parse(cj, cfg_path, cfg, &err) != CDF_OK) fail_msg("%s: %s", cfg_path, err.msg);
    cJSON_Delete(cj);
    assert_int_equal(g_notices, 0);
    rec_list *l = calloc(1, sizeof *l);
    assert_non_null(l);
    if (cdf_unet2d_describe(cfg, record, l, &err) != CDF_OK) fail_msg("describe %s: %s", cfg_path, err.msg);
    cJSON *sd = load_json(sd_path);
    const cJSON *ts = cJSON_GetObjectItem(sd, "tensors"), *t;
    assert_int_equal(cJSON_GetArraySize(ts), n_tensors);
    for (int i = 0; i < l->n; i++)
        for (int j = i + 1; j < l->n; j++)
            if (strcmp(l->names[i], l->names[j]) == 0) fail_msg("describe lists %s twice", l->names[i]);
    if (l->n != cJSON_GetArraySize(ts))
        fail_msg("%s: describe lists %d tensors, diffusers' state_dict has %d", cfg_path, l->n,
                 cJSON_GetArraySize(ts));
    cJSON_ArrayForEach(t, ts) {
        const char *name = cJSON_GetArrayItem(t, 0)->valuestring;
        const cJSON *shape = cJSON_GetArrayItem(t, 1);
        int k = 0;
        while (k < l->n && strcmp(l->names[k], name) != 0) k++;
        if (k == l->n) fail_msg("%s: describe lacks %s", cfg_path, name);
        assert_int_equal(l->ndim[k], cJSON_GetArraySize(shape));
        for (int i = 0; i < l->ndim[k]; i++)
            if (l->shape[k][i] != json_int_at(shape, i))
                fail_msg("%s: %s dim %d is %lld, diffusers has %d", cfg_path, name, i, (long long)l->shape[k][i],
                         json_int_at(shape, i));
    }
    printf("%s: %d tensors, names and shapes as diffusers'\n", cfg_path, l->n);
    cJSON_Delete(sd);
    free(l);
}

static void karlo_configs_describe_state_dict(void **state) {
    (void)state;
    char cfg_path[1024], sd_path[1024];
    cdf_unet2d_config cfg;
    /* the real configs in the repository's models/karlo */
    static const char *const names[2] = {"super_res_first", "super_res_last"};
    for (int k = 0; k < 2; k++) {
        snprintf(cfg_path, sizeof cfg_path, "%s", tu_data("../../models/karlo/%s/config.json", names[k]));
        snprintf(sd_path, sizeof sd_path, "%s", tu_data("unclip_extra/superres_state_dict_karlo.json"));
        check_describe(cfg_path, sd_path, 408, &cfg);
        assert_int_equal(cfg.num_blocks, 4);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(cfg.down_types[i], CDF_BLOCK_RESNET);
            assert_int_equal(cfg.up_types[i], CDF_BLOCK_RESNET);
        }
        assert_int_equal(cfg.layers_per_block, 3);
        assert_int_equal(cfg.in_channels, 6);
        assert_int_equal(cfg.add_attention, 0);
        assert_int_equal(cfg.time_embedding_dim, 1280);
        /* super_res_first: sample_size 256; super_res_last: null */
        assert_int_equal(cfg.sample_h, k == 0 ? 256 : 0);
        assert_int_equal(cfg.sample_w, k == 0 ? 256 : 0);
    }
    for (int k = 0; k < 2; k++) {
        snprintf(cfg_path, sizeof cfg_path, "%s", tu_data(PIPE "/%s/config.json", k ? "super_res_last" : "super_res_first"));
        snprintf(sd_path, sizeof sd_path, "%s", tu_data("unclip_extra/superres_state_dict_tiny.json"));
        check_describe(cfg_path, sd_path, 120, &cfg);
        assert_int_equal(cfg.sample_h, 64);
    }
}

/* ---------------------------------------------------------- strict loading */

static char g_tmp[1024];

static int setup(void **state) {
    (void)state;
    char *d = tu_tmpdir();
    if (!d) return -1;
    snprintf(g_tmp, sizeof g_tmp, "%s", d);
    free(d);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(g_tmp);
    return 0;
}

/* A copy of super_res_first whose config.json has `from` replaced by `to`. */
static const char *edited_copy(const char *name, const char *from, const char *to) {
    static char dir[1200];
    char src[1024], path[1400];
    snprintf(dir, sizeof dir, "%s/%s", g_tmp, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(src, sizeof src, "%s", tu_data(PIPE "/super_res_first"));
    char *cfg = tu_read_text(tu_data(PIPE "/super_res_first/config.json"));
    assert_non_null(cfg);
    char *p = strstr(cfg, from);
    if (!p) fail_msg("config.json lacks %s", from);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%.*s%s%s", (int)(p - cfg), cfg, to, p + strlen(from));
    fclose(f);
    free(cfg);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    char target[1200];
    snprintf(target, sizeof target, "%s/diffusion_pytorch_model.safetensors", src);
    assert_int_equal(symlink(target, path), 0);
    return dir;
}

static void expect_load_error(const char *dir, cdf_status want, const char *const *parts) {
    cdf_error err = {0};
    cdf_unet2d *m = NULL;
    cdf_status s = cdf_unet2d_load(dir, NULL, &m, &err);
    if (s != want) fail_msg("%s: status %s (%s), expected %s", dir, cdf_status_name(s), err.msg, cdf_status_name(want));
    assert_null(m);
    for (int i = 0; parts[i]; i++)
        if (!strstr(err.msg, parts[i])) fail_msg("error \"%s\" does not name \"%s\"", err.msg, parts[i]);
    printf("refused as expected: %s\n", err.msg);
}

static void strict_loading(void **state) {
    (void)state;
    /* plain DownBlock2D/UpBlock2D want conv resamplers: the resnet downsampler's tensors are unexpected */
    const char *d1 = edited_copy("plain_blocks", "\"ResnetDownsampleBlock2D\",\n    \"ResnetDownsampleBlock2D\"",
                                 "\"DownBlock2D\",\n    \"DownBlock2D\"");
    const char *const p1[] = {"down_blocks.0.downsamplers.0.conv", NULL};
    expect_load_error(d1, CDF_ERR_MISSING, p1);
    /* more layers per block: the checkpoint lacks the extra resnet */
    const char *d2 = edited_copy("more_layers", "\"layers_per_block\": 1", "\"layers_per_block\": 2");
    const char *const p2[] = {"down_blocks.0.resnets.1", NULL};
    expect_load_error(d2, CDF_ERR_MISSING, p2);
    /* wider blocks: shapes differ, named with expected and found */
    const char *d3 = edited_copy("wider", "\"block_out_channels\": [\n    16,\n    32\n  ]",
                                 "\"block_out_channels\": [\n    16,\n    24\n  ]");
    const char *const p3[] = {"diffusion_pytorch_model.safetensors", "down_blocks.1.resnets.0.conv1.weight",
                              "[32, 16, 3, 3]", "expected [24, 16, 3, 3]", NULL};
    expect_load_error(d3, CDF_ERR_SHAPE, p3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forward_matches_reference),
        cmocka_unit_test(threads_and_batch_invariance),
        cmocka_unit_test(karlo_configs_describe_state_dict),
        cmocka_unit_test(strict_loading),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
