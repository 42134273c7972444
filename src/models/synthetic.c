#include "models/synthetic.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cdiffusers/rng.h"
#include "io/atomic.h"
#include "io/json.h"
#include "io/st_write.h"
#include "models/clip_text.h"
#include "models/prior_transformer.h"
#include "models/text_proj.h"
#include "models/unet2d.h"
#include "models/unet2d_cond.h"
#include "models/vae.h"
#include "tensor/half.h"

typedef struct tensor_list {
    cdf_st_entry *e; /* [n], names cdf_malloc'd */
    size_t n, cap;
    cdf_dtype dtype;
} tensor_list;

static cdf_status record(const char *name, int ndim, const int64_t *shape, void *user) {
    tensor_list *l = user;
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 256;
        cdf_st_entry *ne = cdf_realloc(l->e, nc * sizeof *ne);
        if (!ne) return CDF_ERR_NOMEM;
        l->e = ne;
        l->cap = nc;
    }
    cdf_st_entry *e = &l->e[l->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = cdf_strdup(name))) return CDF_ERR_NOMEM;
    e->dtype = l->dtype;
    e->ndim = ndim;
    memcpy(e->shape, shape, sizeof(int64_t) * (size_t)ndim);
    l->n++;
    return CDF_OK;
}

static void list_free(tensor_list *l) {
    for (size_t i = 0; i < l->n; i++) cdf_free((void *)l->e[i].name);
    cdf_free(l->e);
    l->e = NULL;
    l->n = l->cap = 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const cdf_st_entry *)a)->name, ((const cdf_st_entry *)b)->name);
}

typedef struct fill_state {
    cdf_generator *g;
    double *z; /* [chunk] */
} fill_state;

#define SYN_CHUNK 65536

/* The protocol: ndim >= 2: z / sqrt(fan_in); 1-D weight: 1 + 0.1 z; bias: 0.1 z. */
static cdf_status fill(size_t i, const cdf_st_entry *e, void *data, void *user, cdf_error *err) {
    (void)i;
    (void)err;
    fill_state *fs = user;
    size_t numel = 1;
    for (int d = 0; d < e->ndim; d++) numel *= (size_t)e->shape[d];
    size_t nlen = strlen(e->name);
    int is_weight = nlen >= 6 && strcmp(e->name + nlen - 6, "weight") == 0;
    double fan_sqrt = e->ndim >= 2 ? sqrt((double)(numel / (size_t)e->shape[0])) : 1.0;
    for (size_t off = 0; off < numel; off += SYN_CHUNK) {
        size_t len = numel - off < SYN_CHUNK ? numel - off : SYN_CHUNK;
        cdf_generator_standard_normal(fs->g, fs->z, len);
        for (size_t k = 0; k < len; k++) {
            double z = fs->z[k], v;
            if (e->ndim >= 2) {
                v = z / fan_sqrt;
            } else if (is_weight) {
                volatile double p = 0.1 * z; /* product rounded first: no FMA */
                v = 1.0 + p;
            } else {
                v = 0.1 * z;
            }
            float f = (float)v;
            if (e->dtype == CDF_F32)
                memcpy((char *)data + 4 * (off + k), &f, 4);
            else {
                uint16_t h = e->dtype == CDF_F16 ? cdf_f32_to_f16(f) : cdf_f32_to_bf16(f);
                memcpy((char *)data + 2 * (off + k), &h, 2);
            }
        }
    }
    return CDF_OK;
}

static cdf_status copy_file(const char *src, const char *dst, cdf_error *err) {
    FILE *in = fopen(src, "rb");
    if (!in) return cdf_error_set(err, CDF_ERR_MISSING, "%s: cannot open: %s", src, strerror(errno));
    cdf_atomic_file af;
    cdf_status s = cdf_atomic_open(dst, &af, err);
    if (s) {
        fclose(in);
        return s;
    }
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, k, af.fp) != k) break;
    int bad = ferror(in) || !feof(in);
    fclose(in);
    if (bad) {
        cdf_atomic_abort(&af);
        return cdf_error_set(err, CDF_ERR_IO, "%s: copy to %s failed", src, dst);
    }
    return cdf_atomic_commit(&af, err);
}

static cdf_status make_dir(const char *path, cdf_error *err) {
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return cdf_error_set(err, CDF_ERR_IO, "%s: cannot create folder: %s", path, strerror(errno));
    return CDF_OK;
}

static cdf_status join(char *out, size_t n, const char *a, const char *b, cdf_error *err) {
    int k = snprintf(out, n, "%s/%s", a, b);
    if (k < 0 || (size_t)k >= n) return cdf_error_set(err, CDF_ERR_ARG, "%s/%s: path too long", a, b);
    return CDF_OK;
}

/* Copies every regular file of folder src into dst (a tokenizer folder). */
static cdf_status copy_folder_files(const char *src, const char *dst, cdf_error *err) {
    DIR *d = opendir(src);
    if (!d) return cdf_error_set(err, CDF_ERR_MISSING, "%s: cannot open folder: %s", src, strerror(errno));
    cdf_status s = CDF_OK;
    int copied = 0;
    struct dirent *de;
    char a[4096], b[4096];
    while (!s && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        if ((s = join(a, sizeof a, src, de->d_name, err))) break;
        struct stat st;
        if (stat(a, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (!(s = join(b, sizeof b, dst, de->d_name, err))) s = copy_file(a, b, err);
        copied++;
    }
    closedir(d);
    if (!s && !copied) s = cdf_error_set(err, CDF_ERR_MISSING, "%s: folder has no files to copy", src);
    return s;
}

/* Each describable class: parse its config.json, list its state_dict. */
typedef cdf_status (*describe_fn)(const cJSON *root, const char *path, tensor_list *l, cdf_error *err);

/* One describe_fn per class: parse the config into its typed struct, then list. */
#define DESCRIBE(name, cfg_type, parse, describe)                                                \
    static cdf_status name(const cJSON *root, const char *path, tensor_list *l, cdf_error *err) { \
        cfg_type cfg;                                                                             \
        cdf_status s = parse(root, path, &cfg, err);                                              \
        return s ? s : describe(&cfg, record, l, err);                                            \
    }
DESCRIBE(desc_unet2d, cdf_unet2d_config, cdf_unet2d_config_parse, cdf_unet2d_describe)
DESCRIBE(desc_unet2d_cond, cdf_unet2d_cond_config, cdf_unet2d_cond_config_parse, cdf_unet2d_cond_describe)
DESCRIBE(desc_vae, cdf_vae_config, cdf_vae_config_parse, cdf_vae_describe)
/* transformers >= 4.31 registers text_model.embeddings.position_ids with
 * persistent=False, so CLIPTextModel's state_dict (and the golden SD files)
 * hold floating tensors only: nothing integer to write. */
DESCRIBE(desc_clip_text, cdf_clip_text_config, cdf_clip_text_config_parse, cdf_clip_text_describe)
DESCRIBE(desc_prior, cdf_prior_config, cdf_prior_config_parse, cdf_prior_describe)
DESCRIBE(desc_text_proj, cdf_text_proj_config, cdf_text_proj_config_parse, cdf_text_proj_describe)
#undef DESCRIBE

static const struct model_class {
    const char *cls;
    describe_fn describe;
} k_models[] = {
    {"UNet2DModel", desc_unet2d},
    {"UNet2DConditionModel", desc_unet2d_cond},
    {"AutoencoderKL", desc_vae},
    {"CLIPTextModel", desc_clip_text},
    {"CLIPTextModelWithProjection", desc_clip_text},
    {"PriorTransformer", desc_prior},
    {"UnCLIPTextProjModel", desc_text_proj},
};

/* Components a Stable Diffusion pipeline names but cdiffusers does not run
 * (the pipeline loader skips them too): nothing is written for them. */
static const char *const k_skipped[] = {"safety_checker", "feature_extractor", "image_encoder"};

enum comp_kind { COMP_SCHEDULER, COMP_TOKENIZER, COMP_MODEL };

typedef struct component {
    const char *key;      /* borrowed from the index */
    const char *library;  /* borrowed; "transformers" selects model.safetensors */
    enum comp_kind kind;
    tensor_list l;        /* COMP_MODEL: the state_dict, sorted by name */
} component;

static int is_tokenizer(const char *cls) { return strstr(cls, "Tokenizer") != NULL; }

/* Classifies one index entry; for a model, parses its config and lists its
 * state_dict (sorted), so every error comes before anything is written. */
static cdf_status plan_component(const char *config_dir, const char *idx_path, const cJSON *it, cdf_dtype dtype,
                                 component *c, int *skip, cdf_error *err) {
    *skip = 1;
    /* plain values such as "requires_safety_checker": true are not components */
    if (!it->string || it->string[0] == '_' || !cJSON_IsArray(it)) return CDF_OK;
    const cJSON *lib = cJSON_GetArrayItem(it, 0), *cls = cJSON_GetArrayItem(it, 1);
    if (!cls || cJSON_IsNull(cls)) return CDF_OK;
    if (!cJSON_IsString(cls) || (lib && !cJSON_IsString(lib) && !cJSON_IsNull(lib)))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: component '%s' must be [library, class]", idx_path, it->string);
    const char *cn = cls->valuestring;
    for (size_t i = 0; i < sizeof k_skipped / sizeof k_skipped[0]; i++)
        if (strcmp(it->string, k_skipped[i]) == 0) {
            cdf_notice(err, CDF_NOTICE_WARN, "%s: component '%s' (%s) is skipped: cdiffusers does not run it",
                       idx_path, it->string, cn);
            return CDF_OK;
        }
    memset(c, 0, sizeof *c);
    c->key = it->string;
    c->library = cJSON_IsString(lib) ? lib->valuestring : "";
    *skip = 0;
    char path[4096], sub[4096];
    cdf_status s = join(sub, sizeof sub, config_dir, c->key, err);
    if (s) return s;
    struct stat st;
    if (strstr(cn, "Scheduler")) {
        c->kind = COMP_SCHEDULER;
        if ((s = join(path, sizeof path, sub, "scheduler_config.json", err))) return s;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            return cdf_error_set(err, CDF_ERR_MISSING, "%s: missing (component '%s' of %s)", path, c->key, idx_path);
        return CDF_OK;
    }
    if (is_tokenizer(cn)) {
        c->kind = COMP_TOKENIZER;
        if (stat(sub, &st) != 0 || !S_ISDIR(st.st_mode))
            return cdf_error_set(err, CDF_ERR_MISSING, "%s: folder missing (component '%s' of %s)", sub, c->key,
                                 idx_path);
        return CDF_OK;
    }
    const struct model_class *mc = NULL;
    for (size_t i = 0; i < sizeof k_models / sizeof k_models[0]; i++)
        if (strcmp(cn, k_models[i].cls) == 0) mc = &k_models[i];
    if (!mc)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: component '%s' (%s): synthetic weights not supported yet",
                             idx_path, it->string, cn);
    c->kind = COMP_MODEL;
    c->l.dtype = dtype;
    s = join(path, sizeof path, sub, "config.json", err);
    cJSON *root = NULL;
    if (!s) s = cdf_json_load(path, &root, err);
    if (!s) s = mc->describe(root, path, &c->l, err);
    cJSON_Delete(root);
    if (s == CDF_ERR_NOMEM) cdf_error_set(err, s, "out of memory listing %s", path);
    if (!s) qsort(c->l.e, c->l.n, sizeof *c->l.e, by_name);
    return s;
}

/* Writes one model component's weights: a fresh Generator(PCG64(seed)) walks
 * the sorted state_dict. */
static cdf_status write_weights(const component *c, const char *out_path, const char *seed, cdf_error *err) {
    fill_state fs = {NULL, cdf_mallocn(SYN_CHUNK, sizeof(double))};
    cdf_status s = fs.z ? CDF_OK : cdf_error_set(err, CDF_ERR_NOMEM, "out of memory writing %s", out_path);
    if (!s) s = cdf_generator_new(CDF_RNG_NUMPY, seed, &fs.g, err);
    if (!s) s = cdf_st_write(out_path, c->l.e, c->l.n, fill, &fs, err);
    cdf_generator_free(fs.g);
    cdf_free(fs.z);
    return s;
}

static cdf_status write_component(const component *c, const char *config_dir, const char *out_dir, const char *seed,
                                  cdf_error *err) {
    char src[4096], dst[4096], a[4096], b[4096];
    cdf_status s = join(src, sizeof src, config_dir, c->key, err);
    if (!s) s = join(dst, sizeof dst, out_dir, c->key, err);
    if (!s) s = make_dir(dst, err);
    if (s) return s;
    switch (c->kind) {
    case COMP_SCHEDULER:
        if (!(s = join(a, sizeof a, src, "scheduler_config.json", err)) &&
            !(s = join(b, sizeof b, dst, "scheduler_config.json", err)))
            s = copy_file(a, b, err);
        return s;
    case COMP_TOKENIZER: return copy_folder_files(src, dst, err);
    case COMP_MODEL:
        if (!(s = join(a, sizeof a, src, "config.json", err)) && !(s = join(b, sizeof b, dst, "config.json", err)))
            s = copy_file(a, b, err);
        if (!s)
            s = join(b, sizeof b, dst,
                     strcmp(c->library, "transformers") == 0 ? "model.safetensors"
                                                             : "diffusion_pytorch_model.safetensors",
                     err);
        return s ? s : write_weights(c, b, seed, err);
    }
    return CDF_OK;
}

cdf_status cdf_make_synthetic(const char *config_dir, const char *out_dir, const char *seed, cdf_dtype dtype,
                              cdf_error *err) {
    if (dtype != CDF_F32 && dtype != CDF_F16 && dtype != CDF_BF16)
        return cdf_error_set(err, CDF_ERR_ARG, "synthetic weights must be f32, f16 or bf16");
    char src[4096], dst[4096];
    cdf_status s = join(src, sizeof src, config_dir, "model_index.json", err);
    cJSON *idx = NULL;
    if (!s) s = cdf_json_load(src, &idx, err);
    if (s) return s;
    int n = cJSON_GetArraySize(idx), nc = 0;
    component *comps = n > 0 ? cdf_calloc((size_t)n, sizeof *comps) : NULL;
    if (n > 0 && !comps) {
        cJSON_Delete(idx);
        return cdf_error_set(err, CDF_ERR_NOMEM, "out of memory reading %s", src);
    }
    /* First pass, before anything is written: every component must be one we can make. */
    const cJSON *it;
    cJSON_ArrayForEach(it, idx) {
        int skip = 1;
        s = plan_component(config_dir, src, it, dtype, &comps[nc], &skip, err);
        if (!skip) nc++; /* counted even on failure so its list is freed */
        if (s) goto done;
    }
    if ((s = make_dir(out_dir, err))) goto done;
    if ((s = join(dst, sizeof dst, out_dir, "model_index.json", err)) || (s = copy_file(src, dst, err))) goto done;
    for (int i = 0; i < nc && !s; i++) s = write_component(&comps[i], config_dir, out_dir, seed, err);
done:
    for (int i = 0; i < nc; i++) list_free(&comps[i].l);
    cdf_free(comps);
    cJSON_Delete(idx);
    return s;
}
