/* CLIPTextModel (text_encoder): prompt embeddings of every golden Stable
 * Diffusion case (tests/data/sd/cases, made with the transformers-CLIP
 * re-implementation in float32 torch) within the case's tolerance; clip_skip
 * against a float64 reference written here (itself checked against the
 * golden); batch invariance and thread-count invariance bitwise; strict
 * loading and config errors. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/json.h"
#include "models/clip_text.h"
#include "tensor/half.h"
#include "testutil.h"
#include "sd_case.h"

/* ------------------------------------------------------------------ helpers */

typedef struct notices {
    int n;
    char last[1024];
} notices;

static void on_notice(cdf_notice_level level, const char *msg, void *user) {
    (void)level;
    notices *ns = user;
    ns->n++;
    snprintf(ns->last, sizeof ns->last, "%s", msg);
}

static char g_tmp[1024];

/* One tensor of a hand-written safetensors file. */
typedef struct tent {
    char name[192];
    const char *dtype; /* "F32", "F16", "I64" ... */
    int ndim;
    int64_t shape[2];
    unsigned char *data; /* malloc'd */
    size_t nbytes;
} tent;

typedef struct tlist {
    tent t[256];
    int n;
} tlist;

static void tlist_free(tlist *l) {
    for (int i = 0; i < l->n; i++) free(l->t[i].data);
    l->n = 0;
}

static int write_st(const char *path, const tlist *l) {
    char *hdr = malloc(1 << 16);
    size_t o = 0, off = 0;
    o += (size_t)sprintf(hdr + o, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < l->n; i++) {
        const tent *t = &l->t[i];
        o += (size_t)sprintf(hdr + o, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, t->dtype);
        for (int d = 0; d < t->ndim; d++) o += (size_t)sprintf(hdr + o, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        o += (size_t)sprintf(hdr + o, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
        off += t->nbytes;
    }
    hdr[o++] = '}';
    while (o % 8) hdr[o++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return -1;
    }
    uint64_t n = o;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(n >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(hdr, 1, o, f);
    for (int i = 0; i < l->n; i++) fwrite(l->t[i].data, 1, l->t[i].nbytes, f);
    free(hdr);
    return fclose(f);
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(g_rng >> 11) / 4503599627370496.0 - 1.0;
}

typedef struct gen_ctx {
    tlist *l;
    int f16;
} gen_ctx;

/* describe callback: a random tensor of the recorded name and shape */
static cdf_status gen_tensor(const char *name, int ndim, const int64_t *shape, void *user) {
    gen_ctx *g = user;
    tent *t = &g->l->t[g->l->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        numel *= (size_t)shape[d];
    }
    int is_norm = strstr(name, "layer_norm") != NULL;
    int is_bias = strstr(name, ".bias") != NULL;
    double fan_in = ndim == 2 ? (double)shape[1] : 1.0;
    t->dtype = g->f16 ? "F16" : "F32";
    t->nbytes = numel * (g->f16 ? 2 : 4);
    t->data = malloc(t->nbytes);
    for (size_t i = 0; i < numel; i++) {
        double v;
        if (is_norm && !is_bias)
            v = 1.0 + 0.25 * urand();
        else if (is_bias)
            v = 0.1 * urand();
        else if (strstr(name, "embedding"))
            v = 0.5 * urand();
        else
            v = urand() * sqrt(3.0 / fan_in);
        if (g->f16) {
            uint16_t h = cdf_f32_to_f16((float)v);
            memcpy(t->data + 2 * i, &h, 2);
        } else {
            float f = (float)v;
            memcpy(t->data + 4 * i, &f, 4);
        }
    }
    return CDF_OK;
}

static const char *k_small_config =
    "{\"architectures\":[\"CLIPTextModel\"],\"hidden_act\":\"quick_gelu\",\"hidden_size\":32,"
    "\"intermediate_size\":40,\"layer_norm_eps\":1e-05,\"max_position_embeddings\":16,"
    "\"model_type\":\"clip_text_model\",\"num_attention_heads\":4,\"num_hidden_layers\":2,"
    "\"vocab_size\":100,\"torch_dtype\":\"float32\"}";

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(s, f);
    fclose(f);
}

/* Writes <dir>/config.json (text) and the tensors of the model it describes
 * into l (not yet written). */
static void make_model(const char *dir, const char *config, int f16, tlist *l) {
    char path[1200];
    snprintf(path, sizeof path, "mkdir -p '%s'", dir);
    assert_int_equal(system(path), 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, config);
    cdf_error err = {0};
    cJSON *root = NULL;
    assert_int_equal(cdf_json_parse(config, strlen(config), "config", &root, &err), CDF_OK);
    cdf_clip_text_config cfg;
    assert_int_equal(cdf_clip_text_config_parse(root, "config", &cfg, &err), CDF_OK);
    cJSON_Delete(root);
    gen_ctx g = {l, f16};
    l->n = 0;
    assert_int_equal(cdf_clip_text_describe(&cfg, gen_tensor, &g, &err), CDF_OK);
}

static void write_model(const char *dir, const tlist *l) {
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(write_st(path, l), 0);
}

static int find_tensor(const tlist *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->t[i].name, name) == 0) return i;
    return -1;
}

/* ------------------------------------------------- float64 reference model */

/* All weights of a loaded checkpoint as doubles, read independently of the
 * model code (by name from the safetensors file). */
typedef struct ref_model {
    cdf_weights *w;
    int hid, inter, layers, heads, maxpos, vocab, act_quick;
    double eps;
} ref_model;

static double *ref_get(ref_model *r, const char *name, size_t *n) {
    const cdf_st_tensor *t = cdf_weights_peek(r->w, name);
    assert_non_null(t);
    size_t cnt = t->nbytes / cdf_dtype_size(t->dtype);
    float *f = malloc(cnt * sizeof *f);
    double *d = malloc(cnt * sizeof *d);
    cdf_convert_to_f32(t->dtype, t->data, f, cnt);
    for (size_t i = 0; i < cnt; i++) d[i] = f[i];
    free(f);
    if (n) *n = cnt;
    return d;
}

static void ref_ln(ref_model *r, const char *prefix, const double *x, int seq, double *y) {
    char nm[256];
    snprintf(nm, sizeof nm, "%s.weight", prefix);
    double *g = ref_get(r, nm, NULL);
    snprintf(nm, sizeof nm, "%s.bias", prefix);
    double *b = ref_get(r, nm, NULL);
    for (int s = 0; s < seq; s++) {
        const double *xr = x + (size_t)s * r->hid;
        double m = 0, v = 0;
        for (int i = 0; i < r->hid; i++) m += xr[i];
        m /= r->hid;
        for (int i = 0; i < r->hid; i++) v += (xr[i] - m) * (xr[i] - m);
        v /= r->hid;
        for (int i = 0; i < r->hid; i++) y[(size_t)s * r->hid + i] = (xr[i] - m) / sqrt(v + r->eps) * g[i] + b[i];
    }
    free(g);
    free(b);
}

static void ref_linear(ref_model *r, const char *prefix, const double *x, int seq, int in, int out, double *y) {
    char nm[256];
    snprintf(nm, sizeof nm, "%s.weight", prefix);
    double *w = ref_get(r, nm, NULL);
    snprintf(nm, sizeof nm, "%s.bias", prefix);
    double *b = ref_get(r, nm, NULL);
    for (int s = 0; s < seq; s++)
        for (int o = 0; o < out; o++) {
            double acc = b[o];
            for (int i = 0; i < in; i++) acc += x[(size_t)s * in + i] * w[(size_t)o * in + i];
            y[(size_t)s * out + o] = acc;
        }
    free(w);
    free(b);
}

/* One sequence through the CLIP text transformer in float64. */
static void ref_forward(ref_model *r, const int64_t *ids, int seq, int clip_skip, double *out) {
    int H = r->hid, nh = r->heads, hd = H / nh;
    double *tok = ref_get(r, "text_model.embeddings.token_embedding.weight", NULL);
    double *pos = ref_get(r, "text_model.embeddings.position_embedding.weight", NULL);
    double *h = out, *a = malloc(sizeof(double) * seq * H), *q = malloc(sizeof(double) * seq * H),
           *k = malloc(sizeof(double) * seq * H), *v = malloc(sizeof(double) * seq * H),
           *o = malloc(sizeof(double) * seq * H), *t = malloc(sizeof(double) * seq * H),
           *f = malloc(sizeof(double) * seq * r->inter), *p = malloc(sizeof(double) * seq);
    for (int s = 0; s < seq; s++)
        for (int i = 0; i < H; i++) h[(size_t)s * H + i] = tok[(size_t)ids[s] * H + i] + pos[(size_t)s * H + i];
    for (int l = 0; l < r->layers - clip_skip; l++) {
        char pre[128], nm[192];
        snprintf(pre, sizeof pre, "text_model.encoder.layers.%d", l);
        snprintf(nm, sizeof nm, "%s.layer_norm1", pre);
        ref_ln(r, nm, h, seq, a);
        snprintf(nm, sizeof nm, "%s.self_attn.q_proj", pre);
        ref_linear(r, nm, a, seq, H, H, q);
        snprintf(nm, sizeof nm, "%s.self_attn.k_proj", pre);
        ref_linear(r, nm, a, seq, H, H, k);
        snprintf(nm, sizeof nm, "%s.self_attn.v_proj", pre);
        ref_linear(r, nm, a, seq, H, H, v);
        for (int hh = 0; hh < nh; hh++)
            for (int i = 0; i < seq; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= i; j++) {
                    double d = 0;
                    for (int c = 0; c < hd; c++) d += q[(size_t)i * H + hh * hd + c] * k[(size_t)j * H + hh * hd + c];
                    p[j] = d / sqrt((double)hd);
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j <= i; j++) sum += (p[j] = exp(p[j] - mx));
                for (int c = 0; c < hd; c++) {
                    double acc = 0;
                    for (int j = 0; j <= i; j++) acc += p[j] / sum * v[(size_t)j * H + hh * hd + c];
                    o[(size_t)i * H + hh * hd + c] = acc;
                }
            }
        snprintf(nm, sizeof nm, "%s.self_attn.out_proj", pre);
        ref_linear(r, nm, o, seq, H, H, t);
        for (int i = 0; i < seq * H; i++) h[i] += t[i];
        snprintf(nm, sizeof nm, "%s.layer_norm2", pre);
        ref_ln(r, nm, h, seq, a);
        snprintf(nm, sizeof nm, "%s.mlp.fc1", pre);
        ref_linear(r, nm, a, seq, H, r->inter, f);
        for (int i = 0; i < seq * r->inter; i++) {
            double x = f[i];
            f[i] = r->act_quick ? x / (1.0 + exp(-1.702 * x)) : 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
        }
        snprintf(nm, sizeof nm, "%s.mlp.fc2", pre);
        ref_linear(r, nm, f, seq, r->inter, H, t);
        for (int i = 0; i < seq * H; i++) h[i] += t[i];
    }
    memcpy(a, h, sizeof(double) * seq * H);
    ref_ln(r, "text_model.final_layer_norm", a, seq, h);
    free(tok);
    free(pos);
    free(a);
    free(q);
    free(k);
    free(v);
    free(o);
    free(t);
    free(f);
    free(p);
}

static void ref_open(ref_model *r, const char *dir, const cdf_clip_text *m) {
    cdf_error err = {0};
    assert_int_equal(cdf_weights_open_dir(dir, NULL, &r->w, &err), CDF_OK);
    const cdf_clip_text_config *c = cdf_clip_text_get_config(m);
    r->hid = c->hidden_size;
    r->inter = c->intermediate_size;
    r->layers = c->num_hidden_layers;
    r->heads = c->num_attention_heads;
    r->maxpos = c->max_position_embeddings;
    r->vocab = c->vocab_size;
    r->eps = c->layer_norm_eps;
    r->act_quick = c->hidden_act == CDF_FFN_QUICK_GELU;
}

/* ------------------------------------------------------------ golden cases */

typedef struct sd_case {
    char name[256];
    char pipeline[256]; /* e.g. "pipelines/tiny-sd15-a" */
    int n_cond, n_uncond, nipp, seq, hidden, rows;
    int64_t *ids;       /* [n_uncond + n_cond, seq]: uncond rows first */
    float *embeds;      /* [rows, seq, hidden] golden prompt_embeds */
    double atol;
} sd_case;

static int read_ids(const cJSON *a, int64_t *dst, int seq) {
    int n = cJSON_GetArraySize(a);
    for (int r = 0; r < n; r++) {
        const cJSON *row = cJSON_GetArrayItem(a, r);
        if (cJSON_GetArraySize(row) != seq) return -1;
        for (int s = 0; s < seq; s++) dst[(size_t)r * seq + s] = (int64_t)cJSON_GetArrayItem(row, s)->valuedouble;
    }
    return n;
}

static void case_load(const char *name, sd_case *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    char path[1200];
    snprintf(path, sizeof path, "%s", tu_data("sd/cases/%s/case.json", name));
    cJSON *root = NULL;
    cdf_error err = {0};
    char *text = tu_read_text(path);
    assert_non_null(text);
    /* Python's json writes Infinity (sigma_max of some schedulers); same-length stand-in strtod reads as inf */
    for (char *p = text; (p = strstr(p, "Infinity")) != NULL; p += 8) memcpy(p, "1e999999", 8);
    assert_int_equal(cdf_json_parse(text, strlen(text), path, &root, &err), CDF_OK);
    free(text);
    const cJSON *call = cJSON_GetObjectItem(root, "call");
    snprintf(c->pipeline, sizeof c->pipeline, "%s", cJSON_GetObjectItem(call, "pipeline")->valuestring);
    const cJSON *nipp = cJSON_GetObjectItem(cJSON_GetObjectItem(call, "kwargs"), "num_images_per_prompt");
    c->nipp = nipp ? nipp->valueint : 1;
    const cJSON *pe = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "arrays"), "prompt_embeds");
    const cJSON *shape = cJSON_GetObjectItem(pe, "shape");
    c->rows = cJSON_GetArrayItem(shape, 0)->valueint;
    c->seq = cJSON_GetArrayItem(shape, 1)->valueint;
    c->hidden = cJSON_GetArrayItem(shape, 2)->valueint;
    c->atol = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "suggested_tolerance"), "prompt_embeds"),
                                  "atol")->valuedouble;
    const cJSON *tid = cJSON_GetObjectItem(root, "token_ids");
    const cJSON *cond = cJSON_GetObjectItem(tid, "cond"), *unc = cJSON_GetObjectItem(tid, "uncond");
    c->n_cond = cJSON_GetArraySize(cond);
    c->n_uncond = unc && cJSON_IsArray(unc) ? cJSON_GetArraySize(unc) : 0;
    c->ids = malloc(sizeof(int64_t) * (size_t)(c->n_cond + c->n_uncond) * c->seq);
    if (c->n_uncond) assert_int_equal(read_ids(unc, c->ids, c->seq), c->n_uncond);
    assert_int_equal(read_ids(cond, c->ids + (size_t)c->n_uncond * c->seq, c->seq), c->n_cond);
    assert_int_equal(c->rows, (c->n_cond + c->n_uncond) * c->nipp);
    c->embeds = tu_load_bin(tu_data("sd/cases/%s/prompt_embeds.f32.bin", name), (size_t)c->rows * c->seq * c->hidden,
                            sizeof(float));
    assert_non_null(c->embeds);
    cJSON_Delete(root);
}

static void case_free(sd_case *c) {
    free(c->ids);
    free(c->embeds);
}

/* Encoder output rows (uncond prompts, then cond prompts) laid out like the
 * pipeline's prompt_embeds: each prompt repeated nipp times, [negative; positive]. */
static float *expand_rows(const sd_case *c, const float *enc) {
    size_t rs = (size_t)c->seq * c->hidden;
    float *e = malloc(sizeof(float) * c->rows * rs);
    int r = 0;
    for (int p = 0; p < c->n_uncond + c->n_cond; p++)
        for (int i = 0; i < c->nipp; i++) memcpy(e + (size_t)r++ * rs, enc + (size_t)p * rs, sizeof(float) * rs);
    return e;
}

static int list_cases(char names[][256], int max) { return case_names_in("sd", names, max); }

static void test_golden_cases(void **state) {
    (void)state;
    static char names[64][256];
    int n = list_cases(names, 64);
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 2, &err);
    int checked_f16 = 0, checked_f32 = 0;
    for (int i = 0; i < n; i++) {
        sd_case c;
        case_load(names[i], &c);
        char dir[1200];
        snprintf(dir, sizeof dir, "%s", tu_data("sd/%s/text_encoder", c.pipeline));
        cdf_clip_text *m = NULL;
        assert_int_equal(cdf_clip_text_load(dir, NULL, &m, &err), CDF_OK);
        assert_int_equal(cdf_clip_text_hidden_size(m), c.hidden);
        assert_int_equal(cdf_clip_text_max_positions(m), c.seq);
        int nb = c.n_uncond + c.n_cond;
        float *enc = malloc(sizeof(float) * (size_t)nb * c.seq * c.hidden);
        assert_int_equal(cdf_clip_text_forward(&ex, m, c.ids, nb, c.seq, 0, enc), CDF_OK);
        float *got = expand_rows(&c, enc);
        size_t total = (size_t)c.rows * c.seq * c.hidden;
        double e = tu_max_abs_diff_f32(got, c.embeds, total);
        printf("%-32s %-16s prompt_embeds [%d, %d, %d] max |err| %.3e (atol %.3e)\n", c.name, c.pipeline + 10, c.rows,
               c.seq, c.hidden, e, c.atol);
        assert_true(e <= c.atol);
        if (strstr(c.pipeline, "f16")) checked_f16++;
        else checked_f32++;
        free(enc);
        free(got);
        cdf_clip_text_free(m);
        case_free(&c);
    }
    assert_true(checked_f16 >= 2 && checked_f32 >= 10);
    cdf_exec_release(&ex);
}

/* clip_skip: the float64 reference (checked against the golden at clip_skip
 * 0) against the model at clip_skip 0..L, for both pipelines. */
static void check_clip_skip(const char *case_name) {
    sd_case c;
    case_load(case_name, &c);
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", tu_data("sd/%s/text_encoder", c.pipeline));
    cdf_error err = {0};
    cdf_clip_text *m = NULL;
    assert_int_equal(cdf_clip_text_load(dir, NULL, &m, &err), CDF_OK);
    ref_model r = {0};
    ref_open(&r, dir, m);
    size_t rs = (size_t)c.seq * c.hidden;
    double *ref = malloc(sizeof(double) * rs);
    float *got = malloc(sizeof(float) * rs), *refd = malloc(sizeof(float) * rs);
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    const int64_t *cond = c.ids + (size_t)c.n_uncond * c.seq; /* the first positive prompt */
    /* the reference itself reproduces the golden (first cond row sits at n_uncond * nipp) */
    ref_forward(&r, cond, c.seq, 0, ref);
    for (size_t i = 0; i < rs; i++) refd[i] = (float)ref[i];
    double e_ref = tu_max_abs_diff_f32(refd, c.embeds + (size_t)c.n_uncond * c.nipp * rs, rs);
    printf("%s: float64 reference vs golden %.3e (atol %.3e)\n", c.pipeline, e_ref, c.atol);
    assert_true(e_ref <= c.atol);
    double prev_diff = 0;
    for (int k = 0; k <= r.layers; k++) {
        ref_forward(&r, cond, c.seq, k, ref);
        for (size_t i = 0; i < rs; i++) refd[i] = (float)ref[i];
        assert_int_equal(cdf_clip_text_forward(&ex, m, cond, 1, c.seq, k, got), CDF_OK);
        double e = tu_max_abs_diff_f32(got, refd, rs);
        printf("%s: clip_skip %d vs float64 reference %.3e\n", c.pipeline, k, e);
        assert_true(e <= 1e-5);
        if (k) {
            /* skipping a layer really changes the result */
            double d = tu_max_abs_diff_f32(got, c.embeds + (size_t)c.n_uncond * c.nipp * rs, rs);
            assert_true(d > 1e-2);
            assert_true(d != prev_diff);
            prev_diff = d;
        }
    }
    /* a shorter sequence is the prefix of the longer one's causal result */
    ref_forward(&r, cond, 5, 0, ref);
    for (size_t i = 0; i < 5 * (size_t)c.hidden; i++) refd[i] = (float)ref[i];
    assert_int_equal(cdf_clip_text_forward(&ex, m, cond, 1, 5, 0, got), CDF_OK);
    assert_true(tu_max_abs_diff_f32(got, refd, 5 * (size_t)c.hidden) <= 1e-5);
    cdf_exec_release(&ex);
    cdf_weights_close(r.w);
    cdf_clip_text_free(m);
    free(ref);
    free(got);
    free(refd);
    case_free(&c);
}

static void test_clip_skip_f32(void **state) {
    (void)state;
    check_clip_skip("negative_prompt_ddim_8steps");
}

static void test_clip_skip_f16(void **state) {
    (void)state;
    check_clip_skip("f16w_pndm_default");
}

/* ---------------------------------------------- batch and thread invariance */

static void check_invariance(const char *dir, int vocab, int seq, int batch) {
    cdf_error err = {0};
    cdf_clip_text *m = NULL;
    assert_int_equal(cdf_clip_text_load(dir, NULL, &m, &err), CDF_OK);
    int hid = cdf_clip_text_hidden_size(m);
    int64_t *ids = malloc(sizeof(int64_t) * batch * seq);
    for (int i = 0; i < batch * seq; i++) ids[i] = (int64_t)((urand() + 1.0) * 0.5 * vocab) % vocab;
    size_t rs = (size_t)seq * hid;
    float *all2 = malloc(sizeof(float) * batch * rs), *all1 = malloc(sizeof(float) * batch * rs),
          *one = malloc(sizeof(float) * rs);
    cdf_exec ex1, ex2;
    cdf_exec_init(&ex1, 1, &err);
    cdf_exec_init(&ex2, 2, &err);
    assert_int_equal(cdf_clip_text_forward(&ex2, m, ids, batch, seq, 0, all2), CDF_OK);
    assert_int_equal(cdf_clip_text_forward(&ex1, m, ids, batch, seq, 0, all1), CDF_OK);
    assert_memory_equal(all1, all2, sizeof(float) * batch * rs);
    for (int b = 0; b < batch; b++) {
        assert_int_equal(cdf_clip_text_forward(&ex1, m, ids + (size_t)b * seq, 1, seq, 0, one), CDF_OK);
        assert_memory_equal(one, all2 + (size_t)b * rs, sizeof(float) * rs);
        assert_int_equal(cdf_clip_text_forward(&ex2, m, ids + (size_t)b * seq, 1, seq, 0, one), CDF_OK);
        assert_memory_equal(one, all2 + (size_t)b * rs, sizeof(float) * rs);
    }
    /* clip_skip 1 the same way */
    assert_int_equal(cdf_clip_text_forward(&ex2, m, ids, batch, seq, 1, all2), CDF_OK);
    assert_int_equal(cdf_clip_text_forward(&ex1, m, ids + (size_t)(batch - 1) * seq, 1, seq, 1, one), CDF_OK);
    assert_memory_equal(one, all2 + (size_t)(batch - 1) * rs, sizeof(float) * rs);
    /* and the rows really differ (the check is not vacuous) */
    assert_true(tu_max_abs_diff_f32(all2, all2 + rs, rs) > 1e-3);
    cdf_exec_release(&ex1);
    cdf_exec_release(&ex2);
    cdf_clip_text_free(m);
    free(ids);
    free(all1);
    free(all2);
    free(one);
}

static void test_invariance_golden_models(void **state) {
    (void)state;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", tu_data("sd/pipelines/tiny-sd15-a/text_encoder"));
    check_invariance(dir, 49408, 77, 3);
    snprintf(dir, sizeof dir, "%s", tu_data("sd/pipelines/tiny-sd15-b-f16/text_encoder"));
    check_invariance(dir, 49408, 77, 3);
}

/* A model wide enough that GEMMs, LayerNorm and activations run on 2 threads. */
static void test_invariance_wide_model(void **state) {
    (void)state;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/wide", g_tmp);
    static const char *cfg =
        "{\"hidden_act\":\"gelu\",\"hidden_size\":256,\"intermediate_size\":1024,\"max_position_embeddings\":77,"
        "\"num_attention_heads\":4,\"num_hidden_layers\":2,\"vocab_size\":500}";
    tlist *l = calloc(1, sizeof *l);
    make_model(dir, cfg, 1, l);
    write_model(dir, l);
    tlist_free(l);
    free(l);
    check_invariance(dir, 500, 77, 3);
    /* gelu (erf) agrees with the float64 reference as well */
    cdf_error err = {0};
    cdf_clip_text *m = NULL;
    assert_int_equal(cdf_clip_text_load(dir, NULL, &m, &err), CDF_OK);
    ref_model r = {0};
    ref_open(&r, dir, m);
    int64_t ids[77];
    for (int i = 0; i < 77; i++) ids[i] = (i * 37 + 11) % 500;
    double *ref = malloc(sizeof(double) * 77 * 256);
    float *refd = malloc(sizeof(float) * 77 * 256), *got = malloc(sizeof(float) * 77 * 256);
    ref_forward(&r, ids, 77, 0, ref);
    for (int i = 0; i < 77 * 256; i++) refd[i] = (float)ref[i];
    cdf_exec ex;
    cdf_exec_init(&ex, 2, &err);
    assert_int_equal(cdf_clip_text_forward(&ex, m, ids, 1, 77, 0, got), CDF_OK);
    double e = tu_max_abs_diff_f32(got, refd, 77 * 256);
    printf("wide gelu model vs float64 reference %.3e\n", e);
    assert_true(e <= 1e-4);
    cdf_exec_release(&ex);
    cdf_weights_close(r.w);
    cdf_clip_text_free(m);
    free(ref);
    free(refd);
    free(got);
}

/* ------------------------------------------------------------ strict loading */

static cdf_status try_load(const char *dir, const char *variant, cdf_error *err) {
    cdf_clip_text *m = (cdf_clip_text *)(uintptr_t)1;
    cdf_status s = cdf_clip_text_load(dir, variant, &m, err);
    if (s) assert_null(m);
    cdf_clip_text_free(m);
    return s;
}

static void test_strict_loading(void **state) {
    (void)state;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/strict", g_tmp);
    tlist *l = calloc(1, sizeof *l);
    cdf_error err = {0};
    notices ns = {0};
    err.on_notice = on_notice;
    err.notice_user = &ns;

    /* complete model loads */
    make_model(dir, k_small_config, 0, l);
    write_model(dir, l);
    assert_int_equal(try_load(dir, NULL, &err), CDF_OK);
    assert_int_equal(ns.n, 0);

    /* missing tensor */
    int i = find_tensor(l, "text_model.encoder.layers.1.mlp.fc2.bias");
    assert_true(i >= 0);
    tent saved = l->t[i];
    l->t[i] = l->t[l->n - 1];
    l->n--;
    write_model(dir, l);
    assert_int_equal(try_load(dir, NULL, &err), CDF_ERR_MISSING);
    assert_non_null(strstr(err.msg, "text_model.encoder.layers.1.mlp.fc2.bias"));
    assert_non_null(strstr(err.msg, "[32]"));
    l->t[l->n++] = l->t[i];
    l->t[i] = saved;

    /* wrong shape: fc1 as [48, 32] where the config says intermediate_size 40 */
    i = find_tensor(l, "text_model.encoder.layers.0.mlp.fc1.weight");
    tent orig = l->t[i];
    l->t[i].shape[0] = 48;
    l->t[i].nbytes = 48 * 32 * 4;
    l->t[i].data = calloc(48 * 32, 4);
    write_model(dir, l);
    assert_int_equal(try_load(dir, NULL, &err), CDF_ERR_SHAPE);
    printf("wrong shape: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "text_model.encoder.layers.0.mlp.fc1.weight"));
    assert_non_null(strstr(err.msg, "[48, 32]"));
    assert_non_null(strstr(err.msg, "expected [40, 32]"));
    assert_non_null(strstr(err.msg, "model.safetensors"));
    free(l->t[i].data);
    l->t[i] = orig;

    /* wrong token embedding width */
    i = find_tensor(l, "text_model.embeddings.token_embedding.weight");
    orig = l->t[i];
    l->t[i].shape[0] = 99;
    l->t[i].nbytes = 99 * 32 * 4;
    write_model(dir, l);
    assert_int_equal(try_load(dir, NULL, &err), CDF_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "expected [100, 32]"));
    l->t[i] = orig;

    /* an unexpected tensor */
    tent *x = &l->t[l->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "text_model.extra.weight");
    x->dtype = "F32";
    x->ndim = 1;
    x->shape[0] = 4;
    x->nbytes = 16;
    x->data = calloc(4, 4);
    write_model(dir, l);
    assert_int_equal(try_load(dir, NULL, &err), CDF_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "text_model.extra.weight"));

    /* position_ids: int64 [1, 16] holding 0..15 is accepted silently */
    snprintf(x->name, sizeof x->name, "text_model.embeddings.position_ids");
    x->dtype = "I64";
    x->ndim = 2;
    x->shape[0] = 1;
    x->shape[1] = 16;
    x->nbytes = 16 * 8;
    free(x->data);
    x->data = malloc(x->nbytes);
    for (int64_t k = 0; k < 16; k++) memcpy(x->data + 8 * k, &k, 8);
    write_model(dir, l);
    ns.n = 0;
    assert_int_equal(try_load(dir, NULL, &err), CDF_OK);
    assert_int_equal(ns.n, 0);
    /* ... and with wrong values a warning names it; the output is the same as without it */
    int64_t bad = 7;
    memcpy(x->data + 8 * 3, &bad, 8);
    write_model(dir, l);
    cdf_clip_text *m = NULL;
    assert_int_equal(cdf_clip_text_load(dir, NULL, &m, &err), CDF_OK);
    assert_int_equal(ns.n, 1);
    assert_non_null(strstr(ns.last, "position_ids"));
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    int64_t ids[16];
    for (int k = 0; k < 16; k++) ids[k] = (k * 7) % 100;
    float with_pid[16 * 32], without[16 * 32];
    assert_int_equal(cdf_clip_text_forward(&ex, m, ids, 1, 16, 0, with_pid), CDF_OK);
    cdf_clip_text_free(m);
    l->n--;
    free(x->data);
    write_model(dir, l);
    assert_int_equal(cdf_clip_text_load(dir, NULL, &m, &err), CDF_OK);
    assert_int_equal(cdf_clip_text_forward(&ex, m, ids, 1, 16, 0, without), CDF_OK);
    assert_memory_equal(with_pid, without, sizeof with_pid);

    /* bad inputs */
    ids[5] = 100;
    assert_int_equal(cdf_clip_text_forward(&ex, m, ids, 1, 16, 0, with_pid), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "100"));
    assert_non_null(strstr(err.msg, "[0, 5]"));
    ids[5] = -1;
    assert_int_equal(cdf_clip_text_forward(&ex, m, ids, 1, 16, 0, with_pid), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "-1"));
    ids[5] = 3;
    assert_int_equal(cdf_clip_text_forward(&ex, m, ids, 1, 17, 0, with_pid), CDF_ERR_ARG);
    assert_int_equal(cdf_clip_text_forward(&ex, m, ids, 1, 0, 0, with_pid), CDF_ERR_ARG);
    assert_int_equal(cdf_clip_text_forward(&ex, m, ids, 1, 16, 3, with_pid), CDF_ERR_ARG);
    assert_int_equal(cdf_clip_text_forward(&ex, m, ids, 1, 16, -1, with_pid), CDF_ERR_ARG);
    assert_int_equal(cdf_clip_text_forward(&ex, m, ids, 1, 16, 2, with_pid), CDF_OK); /* k = L: embeddings */
    cdf_exec_release(&ex);
    cdf_clip_text_free(m);

    /* variant: only model.fp16.safetensors present */
    char a[1300], b[1300];
    snprintf(a, sizeof a, "%s/model.safetensors", dir);
    snprintf(b, sizeof b, "%s/model.fp16.safetensors", dir);
    assert_int_equal(rename(a, b), 0);
    assert_int_equal(try_load(dir, NULL, &err), CDF_ERR_MISSING);
    assert_int_equal(try_load(dir, "fp16", &err), CDF_OK);

    /* CLIPTextModelWithProjection needs text_projection.weight [projection_dim, hidden] */
    static const char *proj_cfg =
        "{\"architectures\":[\"CLIPTextModelWithProjection\"],\"hidden_size\":32,\"intermediate_size\":40,"
        "\"max_position_embeddings\":16,\"num_attention_heads\":4,\"num_hidden_layers\":2,\"vocab_size\":100,"
        "\"projection_dim\":24}";
    snprintf(dir, sizeof dir, "%s/proj", g_tmp);
    tlist_free(l);
    make_model(dir, proj_cfg, 0, l);
    i = find_tensor(l, "text_projection.weight");
    assert_true(i >= 0);
    assert_true(l->t[i].shape[0] == 24 && l->t[i].shape[1] == 32);
    write_model(dir, l);
    assert_int_equal(try_load(dir, NULL, &err), CDF_OK);
    snprintf(a, sizeof a, "%s/config.json", dir);
    write_text(a, k_small_config); /* plain CLIPTextModel: text_projection is unexpected */
    assert_int_equal(try_load(dir, NULL, &err), CDF_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "text_projection.weight"));

    /* no config */
    snprintf(dir, sizeof dir, "%s/none", g_tmp);
    assert_int_equal(try_load(dir, NULL, &err), CDF_ERR_MISSING);
    tlist_free(l);
    free(l);
}

/* -------------------------------------------------------------------- config */

/* The real SD-1.5 text_encoder/config.json (runwayml) verbatim. */
static const char *k_sd15_config =
    "{\n"
    "  \"_name_or_path\": \"openai/clip-vit-large-patch14\",\n"
    "  \"architectures\": [\n"
    "    \"CLIPTextModel\"\n"
    "  ],\n"
    "  \"attention_dropout\": 0.0,\n"
    "  \"bos_token_id\": 0,\n"
    "  \"dropout\": 0.0,\n"
    "  \"eos_token_id\": 2,\n"
    "  \"hidden_act\": \"quick_gelu\",\n"
    "  \"hidden_size\": 768,\n"
    "  \"initializer_factor\": 1.0,\n"
    "  \"initializer_range\": 0.02,\n"
    "  \"intermediate_size\": 3072,\n"
    "  \"layer_norm_eps\": 1e-05,\n"
    "  \"max_position_embeddings\": 77,\n"
    "  \"model_type\": \"clip_text_model\",\n"
    "  \"num_attention_heads\": 12,\n"
    "  \"num_hidden_layers\": 12,\n"
    "  \"pad_token_id\": 1,\n"
    "  \"projection_dim\": 768,\n"
    "  \"torch_dtype\": \"float32\",\n"
    "  \"transformers_version\": \"4.22.0.dev0\",\n"
    "  \"vocab_size\": 49408\n"
    "}\n";

static cdf_status parse_cfg(const char *text, cdf_clip_text_config *cfg, cdf_error *err) {
    cJSON *root = NULL;
    cdf_status s = cdf_json_parse(text, strlen(text), "config.json", &root, err);
    if (s) return s;
    s = cdf_clip_text_config_parse(root, "config.json", cfg, err);
    cJSON_Delete(root);
    return s;
}

static void expect_cfg_error(const char *text, cdf_status want, const char *field) {
    cdf_error err = {0};
    cdf_clip_text_config cfg;
    assert_int_equal(parse_cfg(text, &cfg, &err), want);
    if (!strstr(err.msg, field)) printf("message without '%s': %s\n", field, err.msg);
    assert_non_null(strstr(err.msg, field));
}

static void test_config(void **state) {
    (void)state;
    cdf_error err = {0};
    notices ns = {0};
    err.on_notice = on_notice;
    err.notice_user = &ns;
    cdf_clip_text_config cfg;
    assert_int_equal(parse_cfg(k_sd15_config, &cfg, &err), CDF_OK);
    assert_int_equal(ns.n, 0);
    assert_int_equal(cfg.vocab_size, 49408);
    assert_int_equal(cfg.hidden_size, 768);
    assert_int_equal(cfg.intermediate_size, 3072);
    assert_int_equal(cfg.num_hidden_layers, 12);
    assert_int_equal(cfg.num_attention_heads, 12);
    assert_int_equal(cfg.max_position_embeddings, 77);
    assert_int_equal(cfg.projection_dim, 768);
    assert_int_equal(cfg.hidden_act, CDF_FFN_QUICK_GELU);
    assert_true(cfg.layer_norm_eps == 1e-5);
    assert_int_equal(cfg.eos_token_id, 2);
    assert_int_equal(cfg.with_projection, 0);

    /* the tiny pipelines' configs too */
    for (int p = 0; p < 2; p++) {
        char *t = tu_read_text(tu_data("sd/pipelines/%s/text_encoder/config.json", p ? "tiny-sd15-b-f16" : "tiny-sd15-a"));
        assert_non_null(t);
        assert_int_equal(parse_cfg(t, &cfg, &err), CDF_OK);
        assert_int_equal(cfg.intermediate_size, p ? 37 : 64);
        free(t);
    }
    assert_int_equal(ns.n, 0);

    /* defaults of CLIPTextConfig, and an unknown key gives a notice naming it */
    assert_int_equal(parse_cfg("{\"my_key\": 3}", &cfg, &err), CDF_OK);
    assert_int_equal(ns.n, 1);
    assert_non_null(strstr(ns.last, "my_key"));
    assert_int_equal(cfg.hidden_size, 512);
    assert_int_equal(cfg.intermediate_size, 2048);
    assert_int_equal(cfg.num_attention_heads, 8);
    assert_int_equal(cfg.num_hidden_layers, 12);
    assert_int_equal(cfg.bos_token_id, 49406);
    assert_int_equal(cfg.eos_token_id, 49407);
    /* generic PretrainedConfig keys are known */
    ns.n = 0;
    assert_int_equal(parse_cfg("{\"return_dict\": true, \"id2label\": {}, \"_commit_hash\": \"x\"}", &cfg, &err), CDF_OK);
    assert_int_equal(ns.n, 0);
    /* gelu variants */
    assert_int_equal(parse_cfg("{\"hidden_act\": \"gelu\"}", &cfg, &err), CDF_OK);
    assert_int_equal(cfg.hidden_act, CDF_FFN_GELU);
    assert_int_equal(parse_cfg("{\"hidden_act\": \"gelu_new\"}", &cfg, &err), CDF_OK);
    assert_int_equal(cfg.hidden_act, CDF_FFN_GELU_TANH);
    assert_int_equal(parse_cfg("{\"architectures\": [\"CLIPTextModelWithProjection\"]}", &cfg, &err), CDF_OK);
    assert_int_equal(cfg.with_projection, 1);

    expect_cfg_error("{\"hidden_act\": \"relu\"}", CDF_ERR_UNSUPPORTED, "hidden_act");
    expect_cfg_error("{\"hidden_act\": \"wobble\"}", CDF_ERR_CONFIG, "hidden_act");
    expect_cfg_error("{\"hidden_act\": 3}", CDF_ERR_CONFIG, "hidden_act");
    expect_cfg_error("{\"hidden_size\": 100, \"num_attention_heads\": 12}", CDF_ERR_CONFIG, "num_attention_heads");
    expect_cfg_error("{\"hidden_size\": 0}", CDF_ERR_CONFIG, "hidden_size");
    expect_cfg_error("{\"vocab_size\": 1.5}", CDF_ERR_CONFIG, "vocab_size");
    expect_cfg_error("{\"max_position_embeddings\": -1}", CDF_ERR_CONFIG, "max_position_embeddings");
    expect_cfg_error("{\"layer_norm_eps\": 0}", CDF_ERR_CONFIG, "layer_norm_eps");
    expect_cfg_error("{\"layer_norm_eps\": \"x\"}", CDF_ERR_CONFIG, "layer_norm_eps");
    expect_cfg_error("{\"architectures\": [\"CLIPVisionModel\"]}", CDF_ERR_UNSUPPORTED, "architectures");
    expect_cfg_error("{\"architectures\": \"CLIPTextModel\"}", CDF_ERR_CONFIG, "architectures");
    expect_cfg_error("{\"model_type\": \"clip\"}", CDF_ERR_UNSUPPORTED, "model_type");
    expect_cfg_error("{\"torch_dtype\": \"int8\"}", CDF_ERR_CONFIG, "torch_dtype");
    expect_cfg_error("{\"use_attention_mask\": true}", CDF_ERR_UNSUPPORTED, "use_attention_mask");
    expect_cfg_error("{\"eos_token_id\": \"a\"}", CDF_ERR_CONFIG, "eos_token_id");
    expect_cfg_error("[1]", CDF_ERR_CONFIG, "config.json");
}

/* -------------------------------------------------------------------- ops */

static void test_ops(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    /* quick_gelu and gelu at a few points against their float64 formulas */
    const float xs[] = {-6.0f, -1.5f, -0.3f, 0.0f, 0.25f, 1.0f, 3.75f};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        double x = xs[i];
        assert_true(fabs(cdf_ffn_act_apply(CDF_FFN_QUICK_GELU, xs[i]) - x / (1 + exp(-1.702 * x))) < 1e-6);
        assert_true(fabs(cdf_ffn_act_apply(CDF_FFN_GELU, xs[i]) - 0.5 * x * (1 + erf(x / sqrt(2.0)))) < 1e-6);
        double t = 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        assert_true(fabs(cdf_ffn_act_apply(CDF_FFN_GELU_TANH, xs[i]) - t) < 1e-6);
    }
    /* causal softmax: row i sums to 1 over 0..i, zeros after */
    float sc[16] = {1, 9, 9, 9, 0, 1, 9, 9, 2, 2, 2, 9, -1, 0, 1, 2};
    cdf_causal_softmax_rows(&ex, sc, 4);
    assert_true(sc[0] == 1.0f && sc[1] == 0.0f && sc[2] == 0.0f && sc[3] == 0.0f);
    assert_true(fabs(sc[4] - 1 / (1 + exp(1.0))) < 1e-7 && sc[6] == 0.0f && sc[7] == 0.0f);
    assert_true(fabs(sc[8] - 1 / 3.0) < 1e-7 && sc[11] == 0.0f);
    assert_true(fabs(sc[15] - exp(2.0) / (exp(-1.0) + 1 + exp(1.0) + exp(2.0))) < 1e-7);
    /* layer norm */
    float x[4] = {1, 2, 3, 4}, g[4] = {1, 1, 2, 1}, b[4] = {0, 0, 0, 1}, y[4];
    cdf_layer_norm_rows(&ex, x, 1, 4, 1e-5, g, b, y);
    double sd = sqrt(1.25 + 1e-5);
    assert_true(fabs(y[0] + 1.5 / sd) < 1e-6 && fabs(y[2] - 1.0 / sd) < 1e-6 && fabs(y[3] - (1.5 / sd + 1)) < 1e-6);
    /* embedding rows from F16 and out-of-range ids */
    uint16_t tab[6];
    for (int i = 0; i < 6; i++) tab[i] = cdf_f32_to_f16((float)i + 0.5f);
    int64_t ids[3] = {2, 0, 2};
    float e[6];
    assert_int_equal(cdf_embedding_rows(&ex, CDF_F16, tab, 3, 2, ids, 3, e), CDF_OK);
    assert_true(e[0] == 4.5f && e[1] == 5.5f && e[2] == 0.5f && e[5] == 5.5f);
    ids[1] = 3;
    assert_int_equal(cdf_embedding_rows(&ex, CDF_F16, tab, 3, 2, ids, 3, e), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "token id 3"));
    cdf_exec_release(&ex);
}

int main(void) {
    char *tmp = tu_tmpdir();
    if (!tmp) return 1;
    snprintf(g_tmp, sizeof g_tmp, "%s", tmp);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_golden_cases),
        cmocka_unit_test(test_clip_skip_f32),
        cmocka_unit_test(test_clip_skip_f16),
        cmocka_unit_test(test_invariance_golden_models),
        cmocka_unit_test(test_invariance_wide_model),
        cmocka_unit_test(test_strict_loading),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmtree(tmp);
    free(tmp);
    return rc;
}
