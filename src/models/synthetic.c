#include "models/synthetic.h"

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
#include "models/unet2d.h"
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

static cdf_status synth_unet2d(const char *cfg_path, const char *out_path, const char *seed, cdf_dtype dtype,
                               cdf_error *err) {
    cJSON *root = NULL;
    cdf_status s = cdf_json_load(cfg_path, &root, err);
    if (s) return s;
    cdf_unet2d_config cfg;
    s = cdf_unet2d_config_parse(root, cfg_path, &cfg, err);
    cJSON_Delete(root);
    if (s) return s;
    tensor_list l = {NULL, 0, 0, dtype};
    fill_state fs = {NULL, NULL};
    s = cdf_unet2d_describe(&cfg, record, &l, err);
    if (s == CDF_ERR_NOMEM) cdf_error_set(err, s, "out of memory listing %s", cfg_path);
    if (!s) {
        qsort(l.e, l.n, sizeof *l.e, by_name);
        fs.z = cdf_mallocn(SYN_CHUNK, sizeof(double));
        if (!fs.z) s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory");
    }
    if (!s) s = cdf_generator_new(CDF_RNG_NUMPY, seed, &fs.g, err);
    if (!s) s = cdf_st_write(out_path, l.e, l.n, fill, &fs, err);
    cdf_generator_free(fs.g);
    cdf_free(fs.z);
    list_free(&l);
    return s;
}

cdf_status cdf_make_synthetic(const char *config_dir, const char *out_dir, const char *seed, cdf_dtype dtype,
                              cdf_error *err) {
    if (dtype != CDF_F32 && dtype != CDF_F16 && dtype != CDF_BF16)
        return cdf_error_set(err, CDF_ERR_ARG, "synthetic weights must be f32, f16 or bf16");
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/model_index.json", config_dir);
    cJSON *idx = NULL;
    cdf_status s = cdf_json_load(src, &idx, err);
    if (s) return s;
    /* First pass, before anything is written: every component must be one we can make. */
    const cJSON *it;
    cJSON_ArrayForEach(it, idx) {
        if (!it->string || it->string[0] == '_' || cJSON_IsNull(it)) continue;
        const cJSON *cls = cJSON_IsArray(it) ? cJSON_GetArrayItem(it, 1) : NULL;
        if (!cls || cJSON_IsNull(cls)) continue;
        if (!cJSON_IsString(cls)) {
            s = cdf_error_set(err, CDF_ERR_CONFIG, "%s: component '%s' must be [library, class]", src, it->string);
            goto done;
        }
        const char *c = cls->valuestring;
        int is_sched = strstr(c, "Scheduler") != NULL;
        if (!is_sched && strcmp(c, "UNet2DModel") != 0) {
            s = cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: component '%s' (%s): synthetic weights not supported yet",
                              src, it->string, c);
            goto done;
        }
    }
    if ((s = make_dir(out_dir, err))) goto done;
    snprintf(dst, sizeof dst, "%s/model_index.json", out_dir);
    if ((s = copy_file(src, dst, err))) goto done;
    cJSON_ArrayForEach(it, idx) {
        if (!it->string || it->string[0] == '_' || !cJSON_IsArray(it)) continue;
        const cJSON *cls = cJSON_GetArrayItem(it, 1);
        if (!cls || !cJSON_IsString(cls)) continue;
        snprintf(dst, sizeof dst, "%s/%s", out_dir, it->string);
        if ((s = make_dir(dst, err))) goto done;
        if (strstr(cls->valuestring, "Scheduler")) {
            snprintf(src, sizeof src, "%s/%s/scheduler_config.json", config_dir, it->string);
            snprintf(dst, sizeof dst, "%s/%s/scheduler_config.json", out_dir, it->string);
            if ((s = copy_file(src, dst, err))) goto done;
            continue;
        }
        snprintf(src, sizeof src, "%s/%s/config.json", config_dir, it->string);
        snprintf(dst, sizeof dst, "%s/%s/config.json", out_dir, it->string);
        if ((s = copy_file(src, dst, err))) goto done;
        snprintf(dst, sizeof dst, "%s/%s/diffusion_pytorch_model.safetensors", out_dir, it->string);
        if ((s = synth_unet2d(src, dst, seed, dtype, err))) goto done;
    }
done:
    cJSON_Delete(idx);
    return s;
}
