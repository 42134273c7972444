/* UNet2DModel loading (src/models/unet2d.h): checkpoints in the other layouts
 * diffusers accepts (legacy attention names, "fp16" variant files, sharded
 * sets) give bitwise the same forward pass as the golden folder, whose own
 * output is checked against the golden unet_out0; strict weight checking
 * (missing, extra, mis-shaped tensors) and config checking (unknown keys are
 * notices, unsupported values are errors naming field and value); half
 * precision weights are kept as stored. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/json.h"
#include "io/safetensors.h"
#include "io/st_write.h"
#include "io/weights.h"
#include "models/unet2d.h"

#define ST_NAME "diffusion_pytorch_model.safetensors"

static char g_tmp[1024];
static char g_model[1024];  /* tests/data/ddpm/models/tiny_cifar/unet */
static float *g_noise;      /* golden input [1, 3, 32, 32] */
static float *g_base;       /* forward of the golden folder on g_noise [1, 3, 32, 32] */
static int64_t g_t;         /* the golden case's first timestep */
#define G_C 3
#define G_H 32
#define G_W 32
#define G_N (G_C * G_H * G_W)

/* ---- files ---- */

static void path_join(char *out, size_t n, const char *a, const char *b) {
    int k = snprintf(out, n, "%s/%s", a, b);
    if (k < 0 || (size_t)k >= n) fail_msg("path too long: %s/%s", a, b);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
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

static long file_size(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

/* A fresh folder tmp/<name> holding the golden config.json (or `config` when not NULL). */
static void make_dir(const char *name, const char *config, char *dir, size_t n) {
    path_join(dir, n, g_tmp, name);
    assert_int_equal(mkdir(dir, 0777), 0);
    char p[2048];
    path_join(p, sizeof p, dir, "config.json");
    if (config)
        write_text(p, config);
    else {
        char src[2048];
        path_join(src, sizeof src, g_model, "config.json");
        copy_file(src, p);
    }
}

/* ---- safetensors rewriting through cdf_st_write ---- */

typedef struct out_tensor {
    char name[256];
    cdf_dtype dtype;
    int ndim;
    int64_t shape[CDF_MAX_DIMS];
    const unsigned char *data; /* nbytes of the tensor, or NULL: zeros */
} out_tensor;

typedef struct tensor_set {
    cdf_st_file *src; /* keeps data alive */
    out_tensor *t;    /* [n] (room for a few more) */
    size_t n;
} tensor_set;

static void set_load(const char *path, tensor_set *s) {
    cdf_error err = {0};
    assert_int_equal(cdf_st_open(path, &s->src, &err), CDF_OK);
    s->n = cdf_st_count(s->src);
    s->t = calloc(s->n + 8, sizeof *s->t);
    assert_non_null(s->t);
    for (size_t i = 0; i < s->n; i++) {
        const cdf_st_tensor *t = cdf_st_at(s->src, i);
        snprintf(s->t[i].name, sizeof s->t[i].name, "%s", t->name);
        s->t[i].dtype = t->dtype;
        s->t[i].ndim = t->ndim;
        memcpy(s->t[i].shape, t->shape, sizeof t->shape);
        s->t[i].data = t->data;
    }
}

static void set_free(tensor_set *s) {
    cdf_st_close(s->src);
    free(s->t);
}

static out_tensor *set_find(tensor_set *s, const char *name) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0) return &s->t[i];
    fail_msg("no tensor %s", name);
    return NULL;
}

static void set_remove(tensor_set *s, const char *name) {
    out_tensor *t = set_find(s, name);
    size_t i = (size_t)(t - s->t);
    memmove(&s->t[i], &s->t[i + 1], (s->n - i - 1) * sizeof *t);
    s->n--;
}

static out_tensor *set_add(tensor_set *s, const char *name, cdf_dtype dtype, int ndim, const int64_t *shape) {
    out_tensor *t = &s->t[s->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    return t;
}

static size_t tensor_bytes(const cdf_st_entry *e) {
    size_t b = cdf_dtype_size(e->dtype);
    for (int d = 0; d < e->ndim; d++) b *= (size_t)e->shape[d];
    return b;
}

static cdf_status fill_copy(size_t i, const cdf_st_entry *e, void *data, void *user, cdf_error *err) {
    (void)err;
    const out_tensor *const *src = user;
    size_t b = tensor_bytes(e);
    if (src[i]->data)
        memcpy(data, src[i]->data, b);
    else
        memset(data, 0, b);
    return CDF_OK;
}

/* Writes tensors ts[0..n) (in that order) to path. */
static void write_tensors(const char *path, const out_tensor *ts, size_t n) {
    cdf_st_entry *e = calloc(n ? n : 1, sizeof *e);
    const out_tensor **src = calloc(n ? n : 1, sizeof *src);
    assert_non_null(e);
    assert_non_null(src);
    for (size_t i = 0; i < n; i++) {
        e[i].name = ts[i].name;
        e[i].dtype = ts[i].dtype;
        e[i].ndim = ts[i].ndim;
        memcpy(e[i].shape, ts[i].shape, sizeof e[i].shape);
        src[i] = &ts[i];
    }
    cdf_error err = {0};
    if (cdf_st_write(path, e, n, fill_copy, src, &err) != CDF_OK) fail_msg("writing %s: %s", path, err.msg);
    free(e);
    free(src);
}

static void write_set(const char *dir, const char *file, const tensor_set *s) {
    char p[2048];
    path_join(p, sizeof p, dir, file);
    write_tensors(p, s->t, s->n);
}

/* Replaces every occurrence of `from` in s (a 256-byte name) with `to`; returns the count. */
static int replace_all(char *s, size_t cap, const char *from, const char *to) {
    int k = 0;
    char buf[256];
    char *p;
    size_t start = 0;
    while ((p = strstr(s + start, from))) {
        size_t at = (size_t)(p - s);
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)at, s, to, p + strlen(from));
        snprintf(s, cap, "%s", buf);
        start = at + strlen(to);
        k++;
    }
    return k;
}

/* ---- loading and running ---- */

static int g_notices;
static char g_notice_text[4096];

static void on_notice(cdf_notice_level level, const char *msg, void *user) {
    (void)level;
    (void)user;
    g_notices++;
    size_t len = strlen(g_notice_text);
    snprintf(g_notice_text + len, sizeof g_notice_text - len, "%s\n", msg);
}

/* Loads dir (variant may be NULL); the status, the error in *err. */
static cdf_status try_load(const char *dir, const char *variant, cdf_unet2d **m, cdf_error *err) {
    memset(err, 0, sizeof *err);
    err->on_notice = on_notice;
    g_notices = 0;
    g_notice_text[0] = 0;
    return cdf_unet2d_load(dir, variant, m, err);
}

/* The forward pass of the model in dir on the golden input (malloc'd). */
static float *run_dir(const char *dir, const char *variant) {
    cdf_unet2d *m = NULL;
    cdf_error err;
    if (try_load(dir, variant, &m, &err) != CDF_OK) fail_msg("loading %s: %s", dir, err.msg);
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    float *out = malloc(G_N * sizeof *out);
    assert_non_null(out);
    if (cdf_unet2d_forward(&ex, m, g_noise, 1, G_H, G_W, g_t, out) != CDF_OK) fail_msg("forward %s: %s", dir, err.msg);
    cdf_exec_release(&ex);
    cdf_unet2d_free(m);
    return out;
}

static void assert_same_as_base(const char *dir, const char *variant) {
    float *out = run_dir(dir, variant);
    if (memcmp(out, g_base, G_N * sizeof(float)) != 0)
        fail_msg("%s (variant %s): output differs from the golden folder's", dir, variant ? variant : "none");
    free(out);
}

static void expect_error(const char *dir, cdf_status want, const char *const *parts) {
    cdf_unet2d *m = NULL;
    cdf_error err;
    cdf_status s = try_load(dir, NULL, &m, &err);
    if (s != want) fail_msg("%s: status %s, expected %s (%s)", dir, cdf_status_name(s), cdf_status_name(want), err.msg);
    assert_null(m);
    assert_int_equal(err.status, want);
    for (; *parts; parts++)
        if (!strstr(err.msg, *parts)) fail_msg("%s: message \"%s\" does not name \"%s\"", dir, err.msg, *parts);
}

/* ---- tests ---- */

/* The golden folder itself reproduces the golden UNet output (the anchor of
 * every bitwise comparison below). */
static void golden_folder_matches_reference(void **state) {
    (void)state;
    char p[2048];
    snprintf(p, sizeof p, "%s", tu_data("ddpm/cases/ddim_2step_seed0/unet_out0.bin"));
    float *ref = tu_load_bin(p, G_N, sizeof(float));
    assert_non_null(ref);
    snprintf(p, sizeof p, "%s", tu_data("ddpm/cases/ddim_2step_seed0/case.json"));
    cJSON *cj = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_json_load(p, &cj, &err), CDF_OK);
    double tol = cJSON_GetObjectItem(cJSON_GetObjectItem(cj, "tolerance"), "unet_out0_atol")->valuedouble;
    cJSON_Delete(cj);
    double e = tu_max_abs_diff_f32(g_base, ref, G_N);
    printf("golden tiny_cifar unet_out0 at t=%lld: max abs diff %.3g (tol %.1g)\n", (long long)g_t, e, tol);
    assert_true(e <= tol);
    free(ref);
}

static void legacy_attention_names(void **state) {
    (void)state;
    char dir[2048], src[2048];
    make_dir("legacy", NULL, dir, sizeof dir);
    path_join(src, sizeof src, g_model, ST_NAME);
    tensor_set s;
    set_load(src, &s);
    int renamed = 0;
    for (size_t i = 0; i < s.n; i++) {
        char *nm = s.t[i].name;
        renamed += replace_all(nm, sizeof s.t[i].name, ".to_q.", ".query.");
        renamed += replace_all(nm, sizeof s.t[i].name, ".to_k.", ".key.");
        renamed += replace_all(nm, sizeof s.t[i].name, ".to_v.", ".value.");
        renamed += replace_all(nm, sizeof s.t[i].name, ".to_out.0.", ".proj_attn.");
    }
    /* tiny_cifar: 6 attention blocks (2 in down_blocks.1, 3 in up_blocks.2, 1 mid), 4 linears x 2 tensors */
    assert_int_equal(renamed, 48);
    write_set(dir, ST_NAME, &s);
    set_free(&s);
    /* the written file really holds only the old names */
    char p[2048];
    path_join(p, sizeof p, dir, ST_NAME);
    cdf_st_file *f = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_st_open(p, &f, &err), CDF_OK);
    assert_non_null(cdf_st_find(f, "mid_block.attentions.0.proj_attn.weight"));
    assert_non_null(cdf_st_find(f, "mid_block.attentions.0.query.bias"));
    assert_null(cdf_st_find(f, "mid_block.attentions.0.to_q.bias"));
    assert_null(cdf_st_find(f, "mid_block.attentions.0.to_out.0.weight"));
    cdf_st_close(f);
    assert_same_as_base(dir, NULL);
}

/* A tensor under both its old and its new name: the old copy is unused, an error. */
static void legacy_and_new_name_together(void **state) {
    (void)state;
    char dir[2048], src[2048];
    make_dir("legacy_dup", NULL, dir, sizeof dir);
    path_join(src, sizeof src, g_model, ST_NAME);
    tensor_set s;
    set_load(src, &s);
    out_tensor *q = set_find(&s, "mid_block.attentions.0.to_q.weight");
    out_tensor *d = set_add(&s, "mid_block.attentions.0.query.weight", q->dtype, q->ndim, q->shape);
    d->data = set_find(&s, "mid_block.attentions.0.to_q.weight")->data;
    write_set(dir, ST_NAME, &s);
    set_free(&s);
    static const char *const parts[] = {"mid_block.attentions.0.query.weight", "unexpected", ST_NAME, NULL};
    expect_error(dir, CDF_ERR_FORMAT, parts);
}

static void fp16_variant(void **state) {
    (void)state;
    char dir[2048], src[2048], dst[2048];
    path_join(src, sizeof src, g_model, ST_NAME);
    /* only the variant file */
    make_dir("variant_only", NULL, dir, sizeof dir);
    path_join(dst, sizeof dst, dir, "diffusion_pytorch_model.fp16.safetensors");
    copy_file(src, dst);
    assert_same_as_base(dir, "fp16");
    assert_int_equal(g_notices, 0);
    /* no variant asked: the plain names are the only ones tried, so nothing is found */
    cdf_unet2d *m = NULL;
    cdf_error err;
    assert_int_equal(try_load(dir, NULL, &m, &err), CDF_ERR_MISSING);
    assert_null(m);
    assert_non_null(strstr(err.msg, dir));
    assert_non_null(strstr(err.msg, "no weights found"));
    assert_non_null(strstr(err.msg, ST_NAME));
    assert_null(strstr(err.msg, "fp16"));

    /* both files, the plain one all zeros: the variant wins when asked for, the plain one otherwise */
    make_dir("variant_both", NULL, dir, sizeof dir);
    path_join(dst, sizeof dst, dir, "diffusion_pytorch_model.fp16.safetensors");
    copy_file(src, dst);
    tensor_set s;
    set_load(src, &s);
    for (size_t i = 0; i < s.n; i++) s.t[i].data = NULL;
    write_set(dir, ST_NAME, &s);
    set_free(&s);
    assert_same_as_base(dir, "fp16");
    float *zero_out = run_dir(dir, NULL);
    assert_true(memcmp(zero_out, g_base, G_N * sizeof(float)) != 0);
    for (int i = 0; i < G_N; i++) assert_true(zero_out[i] == 0.0f); /* conv_out of zeros */
    free(zero_out);

    /* a variant that is not there: the plain file, with a notice */
    make_dir("variant_absent", NULL, dir, sizeof dir);
    path_join(dst, sizeof dst, dir, ST_NAME);
    copy_file(src, dst);
    assert_same_as_base(dir, "bf16");
    assert_int_equal(g_notices, 1);
    assert_non_null(strstr(g_notice_text, "no 'bf16' variant"));
    assert_non_null(strstr(g_notice_text, ST_NAME));
}

static void write_index(const char *dir, const char *index_name, const tensor_set *s, size_t split,
                        const char *shard1, const char *shard2) {
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject(), *wm = cJSON_CreateObject();
    size_t total = 0;
    for (size_t i = 0; i < s->n; i++) {
        cdf_st_entry e = {s->t[i].name, s->t[i].dtype, s->t[i].ndim, {0}};
        memcpy(e.shape, s->t[i].shape, sizeof e.shape);
        total += tensor_bytes(&e);
        cJSON_AddStringToObject(wm, s->t[i].name, i < split ? shard1 : shard2);
    }
    cJSON_AddNumberToObject(meta, "total_size", (double)total);
    cJSON_AddItemToObject(root, "metadata", meta);
    cJSON_AddItemToObject(root, "weight_map", wm);
    char *txt = cJSON_Print(root);
    char p[2048];
    path_join(p, sizeof p, dir, index_name);
    write_text(p, txt);
    cJSON_free(txt);
    cJSON_Delete(root);
}

static void sharded(void **state) {
    (void)state;
    char dir[2048], src[2048], p[2048];
    path_join(src, sizeof src, g_model, ST_NAME);
    tensor_set s;
    set_load(src, &s);
    /* interleave the split so each shard holds tensors from all over the model */
    size_t n = s.n, split = 0;
    out_tensor *reordered = calloc(n, sizeof *reordered);
    assert_non_null(reordered);
    for (size_t i = 0; i < n; i += 2) reordered[split++] = s.t[i];
    size_t k = split;
    for (size_t i = 1; i < n; i += 2) reordered[k++] = s.t[i];
    memcpy(s.t, reordered, n * sizeof *reordered);
    free(reordered);
    static const char *const sh1 = "diffusion_pytorch_model-00001-of-00002.safetensors";
    static const char *const sh2 = "diffusion_pytorch_model-00002-of-00002.safetensors";

    make_dir("sharded", NULL, dir, sizeof dir);
    path_join(p, sizeof p, dir, sh1);
    write_tensors(p, s.t, split);
    path_join(p, sizeof p, dir, sh2);
    write_tensors(p, s.t + split, n - split);
    write_index(dir, "diffusion_pytorch_model.safetensors.index.json", &s, split, sh1, sh2);
    assert_same_as_base(dir, NULL);

    /* the fp16 variant of a sharded set (diffusers' index naming) */
    static const char *const v1 = "diffusion_pytorch_model-00001-of-00002.fp16.safetensors";
    static const char *const v2 = "diffusion_pytorch_model-00002-of-00002.fp16.safetensors";
    make_dir("sharded_fp16", NULL, dir, sizeof dir);
    path_join(p, sizeof p, dir, v1);
    write_tensors(p, s.t, split);
    path_join(p, sizeof p, dir, v2);
    write_tensors(p, s.t + split, n - split);
    write_index(dir, "diffusion_pytorch_model.safetensors.index.fp16.json", &s, split, v1, v2);
    assert_same_as_base(dir, "fp16");

    /* a shard missing one of the model's tensors, index consistent: the model reports it */
    make_dir("sharded_missing", NULL, dir, sizeof dir);
    tensor_set s2 = s;
    s2.t = calloc(n + 8, sizeof *s2.t);
    assert_non_null(s2.t);
    memcpy(s2.t, s.t, n * sizeof *s.t);
    char gone[256];
    snprintf(gone, sizeof gone, "%s", s2.t[n - 1].name);
    s2.n = n - 1;
    path_join(p, sizeof p, dir, sh1);
    write_tensors(p, s2.t, split);
    path_join(p, sizeof p, dir, sh2);
    write_tensors(p, s2.t + split, s2.n - split);
    write_index(dir, "diffusion_pytorch_model.safetensors.index.json", &s2, split, sh1, sh2);
    const char *const parts[] = {gone, "missing", NULL};
    expect_error(dir, CDF_ERR_MISSING, parts);
    free(s2.t);
    set_free(&s);
}

static void missing_tensor(void **state) {
    (void)state;
    static const struct {
        const char *name, *shape;
    } cases[] = {
        {"mid_block.resnets.0.conv1.weight", "[64, 64, 3, 3]"},
        {"down_blocks.1.attentions.0.to_q.weight", "[64, 64]"},
        {"time_embedding.linear_2.bias", "[128]"},
        {"conv_out.bias", "[3]"},
    };
    char src[2048];
    path_join(src, sizeof src, g_model, ST_NAME);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[2048], name[64];
        snprintf(name, sizeof name, "missing%zu", i);
        make_dir(name, NULL, dir, sizeof dir);
        tensor_set s;
        set_load(src, &s);
        set_remove(&s, cases[i].name);
        write_set(dir, ST_NAME, &s);
        set_free(&s);
        const char *const parts[] = {cases[i].name, cases[i].shape, "missing", NULL};
        expect_error(dir, CDF_ERR_MISSING, parts);
    }
}

static void extra_tensor(void **state) {
    (void)state;
    char dir[2048], src[2048];
    path_join(src, sizeof src, g_model, ST_NAME);
    make_dir("extra", NULL, dir, sizeof dir);
    tensor_set s;
    set_load(src, &s);
    int64_t sh[1] = {4};
    set_add(&s, "class_embedding.weight", CDF_F16, 1, sh);
    write_set(dir, ST_NAME, &s);
    set_free(&s);
    static const char *const parts[] = {"class_embedding.weight", "unexpected", ST_NAME, NULL};
    expect_error(dir, CDF_ERR_FORMAT, parts);
}

static void wrong_shape(void **state) {
    (void)state;
    static const struct {
        const char *name;
        int ndim;
        int64_t shape[4];
        const char *found, *expected;
    } cases[] = {
        {"conv_in.weight", 4, {32, 3, 1, 1}, "[32, 3, 1, 1]", "[32, 3, 3, 3]"},
        {"mid_block.attentions.0.to_k.weight", 2, {64, 32}, "[64, 32]", "[64, 64]"},
        {"conv_norm_out.bias", 2, {1, 32}, "[1, 32]", "[32]"},
    };
    char src[2048];
    path_join(src, sizeof src, g_model, ST_NAME);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[2048], name[64], file[2100];
        snprintf(name, sizeof name, "shape%zu", i);
        make_dir(name, NULL, dir, sizeof dir);
        tensor_set s;
        set_load(src, &s);
        out_tensor *t = set_find(&s, cases[i].name);
        t->ndim = cases[i].ndim;
        memcpy(t->shape, cases[i].shape, sizeof cases[i].shape);
        t->data = NULL;
        write_set(dir, ST_NAME, &s);
        set_free(&s);
        path_join(file, sizeof file, dir, ST_NAME);
        const char *const parts[] = {file, cases[i].name, cases[i].found, cases[i].expected, NULL};
        expect_error(dir, CDF_ERR_SHAPE, parts);
    }
}

static void wrong_dtype(void **state) {
    (void)state;
    char dir[2048], src[2048];
    path_join(src, sizeof src, g_model, ST_NAME);
    make_dir("dtype_f64", NULL, dir, sizeof dir);
    tensor_set s;
    set_load(src, &s);
    out_tensor *t = set_find(&s, "conv_in.bias");
    t->dtype = CDF_F64;
    t->data = NULL;
    write_set(dir, ST_NAME, &s);
    set_free(&s);
    static const char *const parts[] = {"conv_in.bias", "float64", NULL};
    expect_error(dir, CDF_ERR_UNSUPPORTED, parts);
}

/* The golden config with `insert` added after the opening brace and/or `from` replaced by `to`. */
static char *edited_config(const char *insert, const char *from, const char *to) {
    char p[2048];
    path_join(p, sizeof p, g_model, "config.json");
    char *txt = tu_read_text(p);
    assert_non_null(txt);
    size_t cap = strlen(txt) + 1024;
    char *out = malloc(cap);
    assert_non_null(out);
    const char *brace = strchr(txt, '{');
    assert_non_null(brace);
    snprintf(out, cap, "{%s%s", insert ? insert : "", brace + 1);
    if (from) {
        char *at = strstr(out, from);
        if (!at) fail_msg("config has no %s", from);
        char *rest = strdup(at + strlen(from));
        snprintf(at, cap - (size_t)(at - out), "%s%s", to, rest);
        free(rest);
    }
    free(txt);
    return out;
}

/* Weights of the golden folder next to a given config. */
static void make_model_with_config(const char *name, const char *config, char *dir, size_t n) {
    make_dir(name, config, dir, n);
    char src[2048], dst[2048];
    path_join(src, sizeof src, g_model, ST_NAME);
    path_join(dst, sizeof dst, dir, ST_NAME);
    copy_file(src, dst);
}

static void unknown_config_keys_are_notices(void **state) {
    (void)state;
    char *cfg = edited_config("\n \"my_future_option\": 3,\n \"another_new_key\": {\"a\": [1, 2]},", NULL, NULL);
    char dir[2048];
    make_model_with_config("unknown_keys", cfg, dir, sizeof dir);
    free(cfg);
    assert_same_as_base(dir, NULL);
    assert_int_equal(g_notices, 2);
    assert_non_null(strstr(g_notice_text, "'my_future_option'"));
    assert_non_null(strstr(g_notice_text, "'another_new_key'"));
    assert_non_null(strstr(g_notice_text, "config.json"));
    /* the golden config itself is all known keys ("_" keys are metadata) */
    assert_same_as_base(g_model, NULL);
    assert_int_equal(g_notices, 0);
}

static void unsupported_config_values(void **state) {
    (void)state;
    static const struct {
        const char *insert, *from, *to;
        cdf_status want;
        const char *field, *value;
    } cases[] = {
        {"\n \"class_embed_type\": \"timestep\",", NULL, NULL, CDF_ERR_UNSUPPORTED, "class_embed_type", "timestep"},
        {"\n \"resnet_time_scale_shift\": \"spatial\",", NULL, NULL, CDF_ERR_UNSUPPORTED, "resnet_time_scale_shift",
         "spatial"},
        {NULL, "\"act_fn\": \"silu\"", "\"act_fn\": \"leaky_relu\"", CDF_ERR_CONFIG, "act_fn", "leaky_relu"},
        {NULL, "\"DownBlock2D\",\n  \"AttnDownBlock2D\"", "\"SkipDownBlock2D\",\n  \"AttnDownBlock2D\"",
         CDF_ERR_UNSUPPORTED, "down_block_types", "SkipDownBlock2D"},
        {NULL, "\"time_embedding_type\": \"positional\"", "\"time_embedding_type\": \"sinusoidal\"", CDF_ERR_CONFIG,
         "time_embedding_type", "sinusoidal"},
        {"\n \"num_class_embeds\": 10,", NULL, NULL, CDF_ERR_UNSUPPORTED, "num_class_embeds", "class"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *cfg = edited_config(cases[i].insert, cases[i].from, cases[i].to);
        char dir[2048], name[64], file[2100];
        snprintf(name, sizeof name, "config%zu", i);
        make_model_with_config(name, cfg, dir, sizeof dir);
        free(cfg);
        path_join(file, sizeof file, dir, "config.json");
        const char *const parts[] = {file, cases[i].field, cases[i].value, NULL};
        expect_error(dir, cases[i].want, parts);
    }
}

/* f16 / bf16 weights are used in place: the loaded model's weights take
 * exactly the file's data bytes, 2 per parameter (manifest counts). */
static void half_weights_not_converted(void **state) {
    (void)state;
    static const struct {
        const char *model;
        cdf_dtype dtype;
        size_t params, tensors;
    } cases[] = {
        {"tiny_heads_f16", CDF_F16, 1049555, 212},
        {"tiny_odd_bf16", CDF_BF16, 655747, 270},
        {"tiny_cifar", CDF_F16, 2245763, 328},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[2048], file[2100];
        snprintf(dir, sizeof dir, "%s", tu_data("ddpm/models/%s/unet", cases[i].model));
        path_join(file, sizeof file, dir, ST_NAME);
        FILE *f = fopen(file, "rb");
        assert_non_null(f);
        unsigned char hl[8];
        assert_int_equal(fread(hl, 1, 8, f), 8);
        fclose(f);
        uint64_t header = 0;
        for (int b = 0; b < 8; b++) header |= (uint64_t)hl[b] << (8 * b);
        size_t data_bytes = (size_t)file_size(file) - 8 - (size_t)header;
        cdf_unet2d *m = NULL;
        cdf_error err;
        if (try_load(dir, NULL, &m, &err) != CDF_OK) fail_msg("%s: %s", dir, err.msg);
        assert_int_equal(cdf_weights_count(m->weights), cases[i].tensors);
        assert_int_equal(cdf_weights_nbytes(m->weights), data_bytes);
        assert_int_equal(cdf_weights_nbytes(m->weights), 2 * cases[i].params);
        for (size_t k = 0; k < cdf_weights_count(m->weights); k++)
            assert_int_equal(cdf_weights_at(m->weights, k)->dtype, cases[i].dtype);
        /* the model's parameters point at those tensors, not at converted copies */
        assert_ptr_equal(m->conv_in.weight.t, cdf_weights_peek(m->weights, "conv_in.weight"));
        assert_int_equal(m->conv_in.weight.t->dtype, cases[i].dtype);
        cdf_unet2d_free(m);
    }
}

static int setup(void **state) {
    (void)state;
    char *t = tu_tmpdir();
    if (!t) return -1;
    snprintf(g_tmp, sizeof g_tmp, "%s", t);
    free(t);
    snprintf(g_model, sizeof g_model, "%s", tu_data("ddpm/models/tiny_cifar/unet"));
    char p[2048];
    snprintf(p, sizeof p, "%s", tu_data("ddpm/cases/ddim_2step_seed0/noise.bin"));
    g_noise = tu_load_bin(p, G_N, sizeof(float));
    if (!g_noise) return -1;
    /* t: the case's first timestep */
    snprintf(p, sizeof p, "%s", tu_data("ddpm/cases/ddim_2step_seed0/case.json"));
    cJSON *cj = NULL;
    cdf_error err = {0};
    if (cdf_json_load(p, &cj, &err) != CDF_OK) return -1;
    const cJSON *ts = cJSON_GetObjectItem(cj, "timesteps");
    if (!cJSON_IsArray(ts)) return -1;
    g_t = (int64_t)cJSON_GetArrayItem(ts, 0)->valuedouble;
    cJSON_Delete(cj);
    g_base = run_dir(g_model, NULL);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(g_tmp);
    free(g_noise);
    free(g_base);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_folder_matches_reference),
        cmocka_unit_test(legacy_attention_names),
        cmocka_unit_test(legacy_and_new_name_together),
        cmocka_unit_test(fp16_variant),
        cmocka_unit_test(sharded),
        cmocka_unit_test(missing_tensor),
        cmocka_unit_test(extra_tensor),
        cmocka_unit_test(wrong_shape),
        cmocka_unit_test(wrong_dtype),
        cmocka_unit_test(unknown_config_keys_are_notices),
        cmocka_unit_test(unsupported_config_values),
        cmocka_unit_test(half_weights_not_converted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
