/* Weights of one model component: one safetensors file or a sharded set
 * described by an index JSON, merged into one name-sorted table. */
#include "io/weights.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/json.h"

/* One tensor of the merged table. */
typedef struct w_entry {
    const cdf_st_tensor *t; /* owned by files[file] */
    size_t file;            /* index into files */
} w_entry;

struct cdf_weights {
    char *source;          /* single file or index path (cdf_malloc'd) */
    cdf_st_file **files;   /* [nfiles] */
    size_t nfiles;
    w_entry *all;          /* [n] file order, then data-offset order */
    size_t *by_name;       /* [n] indices into all, sorted by name */
    unsigned char *used;   /* [n] indexed like all */
    size_t n;
    size_t nbytes;
};

/* "<dir>/<name>", cdf_malloc'd; NULL on no memory. */
static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    int slash = a > 0 && dir[a - 1] != '/';
    char *p = cdf_malloc(a + (size_t)slash + b + 1);
    if (!p) return NULL;
    memcpy(p, dir, a);
    if (slash) p[a] = '/';
    memcpy(p + a + slash, name, b + 1);
    return p;
}

/* 1 when path exists (any type, so that a folder named like a file fails loudly on open). */
static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static cdf_weights *weights_new(const char *source) {
    cdf_weights *w = cdf_calloc(1, sizeof *w);
    if (!w) return NULL;
    w->source = cdf_strdup(source);
    if (!w->source) {
        cdf_free(w);
        return NULL;
    }
    return w;
}

void cdf_weights_close(cdf_weights *w) {
    if (!w) return;
    for (size_t i = 0; i < w->nfiles; i++) cdf_st_close(w->files[i]);
    cdf_free(w->files);
    cdf_free(w->all);
    cdf_free(w->by_name);
    cdf_free(w->used);
    cdf_free(w->source);
    cdf_free(w);
}

/* Insertion into the name index needs the table; qsort has no context
 * argument, so sort pointers to entries and convert. */
static int entry_ptr_cmp(const void *a, const void *b) {
    const w_entry *x = *(const w_entry *const *)a, *y = *(const w_entry *const *)b;
    return strcmp(x->t->name, y->t->name);
}

/* Builds all/by_name/used from w->files; duplicate names across files are an error. */
static cdf_status build_table(cdf_weights *w, cdf_error *err) {
    size_t n = 0;
    for (size_t f = 0; f < w->nfiles; f++) n += cdf_st_count(w->files[f]);
    w->all = cdf_calloc(n ? n : 1, sizeof *w->all);
    w->by_name = cdf_calloc(n ? n : 1, sizeof *w->by_name);
    w->used = cdf_calloc(n ? n : 1, 1);
    const w_entry **ptrs = cdf_calloc(n ? n : 1, sizeof *ptrs);
    if (!w->all || !w->by_name || !w->used || !ptrs) {
        cdf_free(ptrs);
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory indexing %zu tensors", w->source, n);
    }
    size_t k = 0;
    w->nbytes = 0;
    for (size_t f = 0; f < w->nfiles; f++)
        for (size_t i = 0; i < cdf_st_count(w->files[f]); i++) {
            w->all[k].t = cdf_st_at(w->files[f], i);
            w->all[k].file = f;
            w->nbytes += w->all[k].t->nbytes;
            ptrs[k] = &w->all[k];
            k++;
        }
    if (n > 1) qsort(ptrs, n, sizeof *ptrs, entry_ptr_cmp);
    for (size_t i = 0; i < n; i++) w->by_name[i] = (size_t)(ptrs[i] - w->all);
    cdf_status s = CDF_OK;
    for (size_t i = 1; i < n; i++)
        if (strcmp(ptrs[i - 1]->t->name, ptrs[i]->t->name) == 0) {
            s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: tensor '%s' is in both %s and %s", w->source,
                              ptrs[i]->t->name, cdf_st_path(w->files[ptrs[i - 1]->file]),
                              cdf_st_path(w->files[ptrs[i]->file]));
            break;
        }
    cdf_free(ptrs);
    w->n = n;
    return s;
}

cdf_status cdf_weights_open_file(const char *path, cdf_weights **out, cdf_error *err) {
    *out = NULL;
    cdf_weights *w = weights_new(path);
    if (!w) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", path);
    w->files = cdf_calloc(1, sizeof *w->files);
    if (!w->files) {
        cdf_weights_close(w);
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", path);
    }
    cdf_status s = cdf_st_open(path, &w->files[0], err);
    if (s == CDF_OK) {
        w->nfiles = 1;
        s = build_table(w, err);
    }
    if (s != CDF_OK) {
        cdf_weights_close(w);
        return s;
    }
    *out = w;
    return CDF_OK;
}

/* One weight_map entry during index validation. */
typedef struct map_entry {
    const char *name;  /* into the cJSON tree */
    const char *shard; /* into the cJSON tree */
    size_t file;       /* index into w->files */
} map_entry;

static int map_name_cmp(const void *a, const void *b) {
    return strcmp(((const map_entry *)a)->name, ((const map_entry *)b)->name);
}
static int str_ptr_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Finds name in the sorted map; NULL when absent. */
static const map_entry *map_find(const map_entry *m, size_t n, const char *name) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, m[mid].name);
        if (c == 0) return &m[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

/* Opens the shards listed by the parsed index and cross-checks them. */
static cdf_status open_shards(cdf_weights *w, const char *dir, const cJSON *wm, map_entry *map, size_t nmap,
                              cdf_error *err) {
    const char *idx = w->source;
    size_t k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, wm) {
        if (!cJSON_IsString(it))
            return cdf_error_set(err, CDF_ERR_FORMAT, "%s: weight_map entry '%s' is not a file name", idx, it->string);
        const char *sh = it->valuestring;
        if (!*sh || strchr(sh, '/') || strcmp(sh, ".") == 0 || strcmp(sh, "..") == 0)
            return cdf_error_set(err, CDF_ERR_FORMAT,
                                 "%s: weight_map entry '%s' names shard \"%s\", not a file in the same folder", idx,
                                 it->string, sh);
        map[k].name = it->string;
        map[k].shard = sh;
        k++;
    }
    if (nmap > 1) qsort(map, nmap, sizeof *map, map_name_cmp);
    for (size_t i = 1; i < nmap; i++)
        if (strcmp(map[i - 1].name, map[i].name) == 0)
            return cdf_error_set(err, CDF_ERR_FORMAT, "%s: weight_map lists tensor '%s' twice", idx, map[i].name);
    /* Unique shard names, sorted (the order diffusers loads them in). */
    const char **shards = cdf_calloc(nmap ? nmap : 1, sizeof *shards);
    if (!shards) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", idx);
    for (size_t i = 0; i < nmap; i++) shards[i] = map[i].shard;
    if (nmap > 1) qsort(shards, nmap, sizeof *shards, str_ptr_cmp);
    size_t nsh = 0;
    for (size_t i = 0; i < nmap; i++)
        if (nsh == 0 || strcmp(shards[nsh - 1], shards[i]) != 0) shards[nsh++] = shards[i];
    cdf_status s = CDF_OK;
    w->files = cdf_calloc(nsh ? nsh : 1, sizeof *w->files);
    if (!w->files) s = cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", idx);
    for (size_t i = 0; i < nsh && s == CDF_OK; i++) {
        char *p = join(dir, shards[i]);
        if (!p) {
            s = cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", idx);
            break;
        }
        s = cdf_st_open(p, &w->files[i], err);
        cdf_free(p);
        if (s == CDF_OK) w->nfiles = i + 1;
        else cdf_error_prefix(err, "%s: shard '%s'", idx, shards[i]);
    }
    /* Every mapped tensor is in its shard... */
    for (size_t i = 0; i < nmap && s == CDF_OK; i++) {
        size_t lo = 0, hi = nsh;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(shards[mid], map[i].shard) < 0) lo = mid + 1;
            else hi = mid;
        }
        map[i].file = lo;
        if (!cdf_st_find(w->files[lo], map[i].name))
            s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: tensor '%s' is mapped to %s but that shard lacks it", idx,
                              map[i].name, cdf_st_path(w->files[lo]));
    }
    /* ...and every shard tensor is mapped to its shard. */
    for (size_t f = 0; f < w->nfiles && s == CDF_OK; f++)
        for (size_t i = 0; i < cdf_st_count(w->files[f]) && s == CDF_OK; i++) {
            const char *name = cdf_st_at(w->files[f], i)->name;
            const map_entry *m = map_find(map, nmap, name);
            if (!m)
                s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: tensor '%s' is not listed in the weight_map of %s",
                                  cdf_st_path(w->files[f]), name, idx);
            else if (m->file != f)
                s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: tensor '%s' is also here but %s maps it to %s",
                                  cdf_st_path(w->files[f]), name, idx, m->shard);
        }
    cdf_free(shards);
    return s;
}

/* Opens a sharded set from its index file. */
static cdf_status open_index(const char *dir, const char *index_path, cdf_weights **out, cdf_error *err) {
    *out = NULL;
    cdf_weights *w = weights_new(index_path);
    if (!w) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", index_path);
    cJSON *root = NULL;
    map_entry *map = NULL;
    cdf_status s = cdf_json_load(index_path, &root, err);
    const cJSON *wm = NULL;
    if (s == CDF_OK) {
        wm = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
        if (!cJSON_IsObject(wm))
            s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: no 'weight_map' object in the shard index", index_path);
    }
    size_t nmap = 0;
    if (s == CDF_OK) {
        nmap = (size_t)cJSON_GetArraySize(wm);
        if (nmap == 0) s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: 'weight_map' is empty", index_path);
    }
    if (s == CDF_OK) {
        map = cdf_calloc(nmap, sizeof *map);
        if (!map) s = cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", index_path);
    }
    if (s == CDF_OK) s = open_shards(w, dir, wm, map, nmap, err);
    if (s == CDF_OK) s = build_table(w, err);
    cdf_free(map);
    cJSON_Delete(root);
    if (s != CDF_OK) {
        cdf_weights_close(w);
        return s;
    }
    *out = w;
    return CDF_OK;
}

#define W_MAX_CANDIDATES 10

cdf_status cdf_weights_open_dir(const char *dir, const char *variant, cdf_weights **out, cdf_error *err) {
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cdf_error_set(err, CDF_ERR_MISSING, "%s: weights folder not found", dir);
    if (variant && (!*variant || strlen(variant) > 64 || strchr(variant, '/')))
        return cdf_error_set(err, CDF_ERR_ARG, "%s: invalid weights variant \"%s\"", dir, variant);
    static const char *const bases[] = {"diffusion_pytorch_model", "model"};
    char names[W_MAX_CANDIDATES][160];
    int is_index[W_MAX_CANDIDATES], is_variant[W_MAX_CANDIDATES];
    int nc = 0;
    for (size_t b = 0; b < 2; b++) {
        const char *base = bases[b];
        if (variant) {
            snprintf(names[nc], sizeof names[nc], "%s.%s.safetensors", base, variant);
            is_index[nc] = 0, is_variant[nc++] = 1;
            snprintf(names[nc], sizeof names[nc], "%s.safetensors.index.%s.json", base, variant);
            is_index[nc] = 1, is_variant[nc++] = 1;
            snprintf(names[nc], sizeof names[nc], "%s.%s.safetensors.index.json", base, variant);
            is_index[nc] = 1, is_variant[nc++] = 1;
        }
        snprintf(names[nc], sizeof names[nc], "%s.safetensors", base);
        is_index[nc] = 0, is_variant[nc++] = 0;
        snprintf(names[nc], sizeof names[nc], "%s.safetensors.index.json", base);
        is_index[nc] = 1, is_variant[nc++] = 0;
    }
    for (int i = 0; i < nc; i++) {
        char *p = join(dir, names[i]);
        if (!p) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", dir);
        if (!exists(p)) {
            cdf_free(p);
            continue;
        }
        if (variant && !is_variant[i])
            cdf_notice(err, CDF_NOTICE_INFO, "%s: no '%s' variant of the weights, using %s", dir, variant, names[i]);
        cdf_status s = is_index[i] ? open_index(dir, p, out, err) : cdf_weights_open_file(p, out, err);
        cdf_free(p);
        return s;
    }
    /* Nothing usable: say whether only pickle checkpoints are there. */
    static const char *const pickles[] = {"diffusion_pytorch_model.bin", "diffusion_pytorch_model.bin.index.json",
                                          "pytorch_model.bin", "pytorch_model.bin.index.json", "model.bin"};
    for (size_t i = 0; i < sizeof pickles / sizeof pickles[0]; i++) {
        char *p = join(dir, pickles[i]);
        if (!p) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", dir);
        int found = exists(p);
        cdf_free(p);
        if (found)
            return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                                 "%s: only PyTorch pickle weights (%s) found; cdiffusers needs .safetensors files "
                                 "(re-save the model with safe_serialization=True)",
                                 dir, pickles[i]);
    }
    if (variant) {
        char vname[200];
        for (size_t b = 0; b < 2; b++) {
            snprintf(vname, sizeof vname, "%s.%s.bin", bases[b], variant);
            char *p = join(dir, vname);
            if (!p) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", dir);
            int found = exists(p);
            cdf_free(p);
            if (found)
                return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                                     "%s: only PyTorch pickle weights (%s) found; cdiffusers needs .safetensors files",
                                     dir, vname);
        }
    }
    char tried[900];
    size_t len = 0;
    tried[0] = 0;
    for (int i = 0; i < nc && len < sizeof tried; i++)
        len += (size_t)snprintf(tried + len, sizeof tried - len, "%s%s", i ? ", " : "", names[i]);
    return cdf_error_set(err, CDF_ERR_MISSING, "%s: no weights found (tried %s)", dir, tried);
}

/* Index into w->all of name, or n when absent. */
static size_t find_index(const cdf_weights *w, const char *name) {
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, w->all[w->by_name[mid]].t->name);
        if (c == 0) return w->by_name[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return w->n;
}

const cdf_st_tensor *cdf_weights_get(cdf_weights *w, const char *name) {
    size_t i = find_index(w, name);
    if (i == w->n) return NULL;
    w->used[i] = 1;
    return w->all[i].t;
}

const cdf_st_tensor *cdf_weights_peek(const cdf_weights *w, const char *name) {
    size_t i = find_index(w, name);
    return i == w->n ? NULL : w->all[i].t;
}

cdf_status cdf_weights_check_all_used(const cdf_weights *w, cdf_error *err) {
    size_t unused = 0, first = w->n;
    char list[700];
    size_t len = 0;
    list[0] = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (w->used[i]) continue;
        if (unused == 0) first = i;
        if (unused < 5 && len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s'%s'", unused ? ", " : "", w->all[i].t->name);
        unused++;
    }
    if (unused == 0) return CDF_OK;
    return cdf_error_set(err, CDF_ERR_FORMAT, "%s: %zu unexpected tensor%s not used by the model: %s%s",
                         cdf_st_path(w->files[w->all[first].file]), unused, unused == 1 ? "" : "s", list,
                         unused > 5 ? ", ..." : "");
}

size_t cdf_weights_count(const cdf_weights *w) { return w->n; }

const cdf_st_tensor *cdf_weights_at(const cdf_weights *w, size_t i) { return i < w->n ? w->all[i].t : NULL; }

const char *cdf_weights_file_of(const cdf_weights *w, const cdf_st_tensor *t) {
    if (!t) return NULL;
    size_t i = find_index(w, t->name);
    if (i == w->n || w->all[i].t != t) return NULL;
    return cdf_st_path(w->files[w->all[i].file]);
}

const char *cdf_weights_source(const cdf_weights *w) { return w->source; }

size_t cdf_weights_nbytes(const cdf_weights *w) { return w->nbytes; }

/* 64-bit mixing hash, 8 bytes at a time (the tail zero-padded); fixed for all builds. */
static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static uint64_t hash_bytes(uint64_t h, const unsigned char *p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        h = mix(h, v);
    }
    uint64_t tail = 0;
    memcpy(&tail, p + i, n - i);
    return mix(h, tail ^ ((uint64_t)(n - i) << 56));
}

uint64_t cdf_weights_hash(const cdf_weights *w, uint64_t h) {
    for (size_t k = 0; k < w->n; k++) {
        const cdf_st_tensor *t = w->all[w->by_name[k]].t;
        h = hash_bytes(h, (const unsigned char *)t->name, strlen(t->name));
        h = mix(h, (uint64_t)t->dtype);
        for (int d = 0; d < t->ndim; d++) h = mix(h, (uint64_t)t->shape[d]);
        h = hash_bytes(h, t->data, t->nbytes);
    }
    return h;
}

void cdf_weights_release_pages(const cdf_weights *w) {
    for (size_t i = 0; w && i < w->nfiles; i++) cdf_st_release_pages(w->files[i]);
}
