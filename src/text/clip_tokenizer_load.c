/* Loading a CLIP tokenizer folder: vocab.json, merges.txt, tokenizer_config.json,
 * special_tokens_map.json.  See clip_tokenizer.h for the rules. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/json.h"
#include "text/clip_tokenizer_int.h"
#include "text/text_norm.h"

#define MERGES_MAX_BYTES ((size_t)64 << 20)
/* transformers reads merges.txt lines [1 : 49152 - 256 - 2 + 1]. */
#define CLIP_MAX_MERGES (49152 - 256 - 2)
#define MAX_MODEL_LENGTH 65536

enum { TK_BOS, TK_EOS, TK_UNK, TK_PAD, TK_N };
static const char *const TK_KEY[TK_N] = {"bos_token", "eos_token", "unk_token", "pad_token"};
static const char *const TK_DEFAULT[TK_N] = {"<|startoftext|>", "<|endoftext|>", "<|endoftext|>", "<|endoftext|>"};

/* One added token as configured: content, explicit id (-1: look it up in the vocab), origin. */
typedef struct added_spec {
    const char *content;
    int64_t id;
    const char *file;
    const char *field;
} added_spec;

/* Settings gathered from the optional config files (strings point into the JSON trees). */
typedef struct tok_config {
    const char *tok[TK_N];
    const char *tok_file[TK_N];
    int64_t max_length;
    int errors_replace;
    added_spec *extra; /* [n_extra] additional_special_tokens and added_tokens_decoder entries */
    size_t n_extra, cap_extra;
} tok_config;

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = cdf_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static cdf_status read_file(const char *path, unsigned char **buf, size_t *len, cdf_error *err) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cdf_error_set(err, errno == ENOENT ? CDF_ERR_MISSING : CDF_ERR_IO, "%s: cannot open: %s", path,
                             strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cdf_error_set(err, CDF_ERR_IO, "%s: not a regular file", path);
    }
    if ((size_t)st.st_size > MERGES_MAX_BYTES) {
        fclose(f);
        return cdf_error_set(err, CDF_ERR_LIMIT, "%s: %lld bytes is over the %zu-byte limit", path,
                             (long long)st.st_size, MERGES_MAX_BYTES);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *b = cdf_malloc(n + 1);
    if (!b) {
        fclose(f);
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(b, 1, n, f);
    fclose(f);
    if (got != n) {
        cdf_free(b);
        return cdf_error_set(err, CDF_ERR_IO, "%s: short read", path);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return CDF_OK;
}

/* Loads dir/name into *out when the file exists (*out NULL otherwise). */
static cdf_status load_optional_json(const char *dir, const char *name, cJSON **out, cdf_error *err) {
    *out = NULL;
    char *path = join_path(dir, name);
    if (!path) return cdf_error_set(err, CDF_ERR_NOMEM, "%s/%s: out of memory", dir, name);
    struct stat st;
    cdf_status s = CDF_OK;
    if (stat(path, &st) == 0 || errno != ENOENT) {
        s = cdf_json_load(path, out, err);
        if (s == CDF_OK && !cJSON_IsObject(*out)) {
            cJSON_Delete(*out);
            *out = NULL;
            s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: not a JSON object", path);
        }
    }
    cdf_free(path);
    return s;
}

/* Content of a token value: a string, or an AddedToken object {"content": ...}. */
static cdf_status token_content(const cJSON *v, const char *file, const char *field, const char **out,
                                cdf_error *err) {
    if (cJSON_IsString(v)) {
        *out = v->valuestring;
        return CDF_OK;
    }
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (!cJSON_IsString(c))
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s': AddedToken without a string 'content'", file,
                                 field);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "single_word")))
            return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: field '%s': single_word added tokens are not supported",
                                 file, field);
        *out = c->valuestring;
        return CDF_OK;
    }
    return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be a string or an AddedToken object", file,
                         field);
}

static cdf_status add_extra(tok_config *c, const char *content, int64_t id, const char *file, const char *field,
                            cdf_error *err) {
    if (c->n_extra == c->cap_extra) {
        size_t cap = c->cap_extra ? c->cap_extra * 2 : 8;
        added_spec *p = cdf_realloc(c->extra, cap * sizeof *p);
        if (!p) return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", file);
        c->extra = p;
        c->cap_extra = cap;
    }
    c->extra[c->n_extra++] = (added_spec){content, id, file, field};
    return CDF_OK;
}

/* bos/eos/unk/pad and additional_special_tokens of one config object. */
static cdf_status read_special_tokens(const cJSON *obj, const char *file, tok_config *c, cdf_error *err) {
    for (int k = 0; k < TK_N; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, TK_KEY[k]);
        if (!v) continue;
        if (cJSON_IsNull(v))
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' is null; the CLIP tokenizer needs it", file,
                                 TK_KEY[k]);
        cdf_status s = token_content(v, file, TK_KEY[k], &c->tok[k], err);
        if (s != CDF_OK) return s;
        c->tok_file[k] = file;
    }
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(obj, "additional_special_tokens");
    if (add && !cJSON_IsNull(add)) {
        if (!cJSON_IsArray(add))
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'additional_special_tokens' must be an array", file);
        /* a later file's list replaces an earlier one (transformers' init_kwargs update) */
        size_t keep = 0;
        for (size_t i = 0; i < c->n_extra; i++)
            if (strcmp(c->extra[i].field, "additional_special_tokens") != 0) c->extra[keep++] = c->extra[i];
        c->n_extra = keep;
        const cJSON *it;
        cJSON_ArrayForEach(it, add) {
            const char *content;
            cdf_status s = token_content(it, file, "additional_special_tokens", &content, err);
            if (s == CDF_OK) s = add_extra(c, content, -1, file, "additional_special_tokens", err);
            if (s != CDF_OK) return s;
        }
    }
    return CDF_OK;
}

static cdf_status read_tokenizer_config(const cJSON *obj, const char *file, tok_config *c, cdf_error *err) {
    cdf_status s = cdf_json_get_int(obj, file, "model_max_length", &c->max_length, err);
    if (s != CDF_OK) return s;
    if (c->max_length < 2 || c->max_length > MAX_MODEL_LENGTH)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'model_max_length' = %lld is outside [2, %d]", file,
                             (long long)c->max_length, MAX_MODEL_LENGTH);
    int lower = 1;
    if ((s = cdf_json_get_bool(obj, file, "do_lower_case", &lower, err)) != CDF_OK) return s;
    const char *errors = NULL;
    if ((s = cdf_json_get_string(obj, file, "errors", &errors, err)) != CDF_OK) return s;
    if (errors) {
        if (strcmp(errors, "replace") == 0) c->errors_replace = 1;
        else if (strcmp(errors, "ignore") == 0) c->errors_replace = 0;
        else
            return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                                 "%s: field 'errors' = \"%s\" (only \"replace\" and \"ignore\" are supported)", file,
                                 errors);
    }
    if ((s = read_special_tokens(obj, file, c, err)) != CDF_OK) return s;
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(obj, "added_tokens_decoder");
    if (dec && !cJSON_IsNull(dec)) {
        if (!cJSON_IsObject(dec))
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'added_tokens_decoder' must be an object", file);
        const cJSON *it;
        cJSON_ArrayForEach(it, dec) {
            char *end = NULL;
            errno = 0;
            long long id = strtoll(it->string ? it->string : "", &end, 10);
            if (!it->string || !it->string[0] || *end || errno || id < 0 || id > INT32_MAX)
                return cdf_error_set(err, CDF_ERR_CONFIG, "%s: added_tokens_decoder key \"%s\" is not a token id", file,
                                     it->string ? it->string : "");
            const char *content;
            if ((s = token_content(it, file, "added_tokens_decoder", &content, err)) != CDF_OK) return s;
            if ((s = add_extra(c, content, id, file, "added_tokens_decoder", err)) != CDF_OK) return s;
        }
    }
    return CDF_OK;
}

/* Interns every vocab entry with its id; the decoder gets one entry per key. */
static cdf_status read_vocab(const cJSON *vj, const char *file, cdf_clip_tokenizer *t, cdf_clip_dec *dec, size_t *n_dec,
                             cdf_error *err) {
    const cJSON *it;
    size_t i = 0;
    cJSON_ArrayForEach(it, vj) {
        double d = cJSON_IsNumber(it) ? it->valuedouble : -1.0;
        if ( !(d >= 0 && d <= INT32_MAX) || (double)(int64_t)d != d)
            return cdf_error_set(err, CDF_ERR_FORMAT, "%s: entry \"%s\": the id must be an integer in [0, 2^31)", file,
                                 it->string ? it->string : "");
        uint32_t sym;
        if (cdf_bpe_intern(&t->bpe, it->string, strlen(it->string), &sym) != CDF_OK)
            return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", file);
        t->bpe.sym_id[sym] = (int64_t)d; /* a repeated key keeps its last id, as json.load does */
        dec[i] = (cdf_clip_dec){(int64_t)d, sym, -1, (uint32_t)i};
        i++;
    }
    *n_dec = i;
    return CDF_OK;
}

static size_t count_lines_before(const unsigned char *b, size_t off) {
    size_t line = 1;
    for (size_t i = 0; i < off; i++)
        if (b[i] == '\n' || (b[i] == '\r' && (i + 1 >= off || b[i + 1] != '\n'))) line++;
    return line;
}

/* merges.txt as transformers reads it (see clip_tokenizer.h). */
static cdf_status read_merges(const unsigned char *buf, size_t len, const char *file, cdf_bpe_model *m,
                              cdf_error *err) {
    size_t bad = cdf_utf8_first_invalid(buf, len);
    if (bad < len)
        return cdf_error_set(err, CDF_ERR_FORMAT, "%s: line %zu: invalid UTF-8", file, count_lines_before(buf, bad));
    cdf_u32buf u = {0};
    unsigned char *part = NULL;
    cdf_status s = CDF_OK;
    if (cdf_utf8_decode(buf, len, 1, &u) != CDF_OK) goto nomem;
    size_t n = 0; /* universal newlines: \r\n and \r become \n */
    for (size_t r = 0; r < u.n; r++) {
        uint32_t c = u.p[r];
        if (c == '\r') {
            c = '\n';
            if (r + 1 < u.n && u.p[r + 1] == '\n') r++;
        }
        u.p[n++] = c;
    }
    size_t a = 0, b = n;
    while (a < b && cdf_py_isspace(u.p[a])) a++;
    while (b > a && cdf_py_isspace(u.p[b - 1])) b--;
    size_t line0 = 1;
    for (size_t i = 0; i < a; i++) line0 += u.p[i] == '\n';
    part = cdf_malloc(4 * (b - a) + 8);
    if (!part) goto nomem;
    size_t k = 0;
    for (size_t pos = a; pos <= b && k <= CLIP_MAX_MERGES; k++) {
        size_t e = pos;
        while (e < b && u.p[e] != '\n') e++;
        if (k >= 1) { /* line 0 is the "#version" header */
            size_t w[2][2], nw = 0; /* [start, end) of the two symbols */
            for (size_t i = pos; i < e;) {
                while (i < e && cdf_py_isspace(u.p[i])) i++;
                if (i >= e) break;
                size_t j = i;
                while (j < e && !cdf_py_isspace(u.p[j])) j++;
                if (nw < 2) w[nw][0] = i, w[nw][1] = j;
                nw++;
                i = j;
            }
            if (nw != 2) {
                s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: line %zu: expected two space-separated symbols, found %zu",
                                  file, line0 + k, nw);
                goto done;
            }
            size_t off[3] = {0};
            for (int q = 0; q < 2; q++) {
                size_t o = off[q];
                for (size_t i = w[q][0]; i < w[q][1]; i++) o += (size_t)cdf_utf8_put(u.p[i], part + o);
                off[q + 1] = o;
            }
            if (cdf_bpe_add_merge(m, (const char *)part, off[1], (const char *)part + off[1], off[2] - off[1],
                                  (uint32_t)(k - 1)) != CDF_OK)
                goto nomem;
        }
        pos = e + 1;
    }
    goto done;
nomem:
    s = cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", file);
done:
    cdf_u32buf_free(&u);
    cdf_free(part);
    return s;
}

void cdf_clip_tokenizer_free(cdf_clip_tokenizer *t) {
    if (!t) return;
    cdf_bpe_free(&t->bpe);
    for (size_t i = 0; i < t->n_added; i++) {
        cdf_free(t->added[i].content);
        cdf_free(t->added[i].cp);
    }
    cdf_free(t->added);
    cdf_free(t->dec);
    cdf_free(t);
}

/* Id of an added/special token: an explicit added_tokens_decoder id, else its vocab id. */
static cdf_status resolve_id(const cdf_clip_tokenizer *t, const tok_config *c, const char *content, const char *file,
                             const char *field, int64_t *id, cdf_error *err) {
    for (size_t i = c->n_extra; i-- > 0;)
        if (c->extra[i].id >= 0 && strcmp(c->extra[i].content, content) == 0) {
            *id = c->extra[i].id;
            return CDF_OK;
        }
    uint32_t sym = cdf_bpe_find(&t->bpe, content, strlen(content));
    if (sym == CDF_BPE_NOSYM || t->bpe.sym_id[sym] < 0)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: %s \"%s\" is not in vocab.json", file, field, content);
    *id = t->bpe.sym_id[sym];
    return CDF_OK;
}

static cdf_status add_split_token(cdf_clip_tokenizer *t, const char *content, int64_t id, cdf_error *err) {
    if (!content[0]) return CDF_OK; /* an empty token never splits anything */
    for (size_t i = 0; i < t->n_added; i++)
        if (strcmp(t->added[i].content, content) == 0) {
            t->added[i].id = id; /* the later definition wins */
            return CDF_OK;
        }
    cdf_clip_added *a = &t->added[t->n_added];
    cdf_u32buf u = {0};
    a->content = cdf_strdup(content);
    if (!a->content || cdf_utf8_decode((const unsigned char *)content, strlen(content), 1, &u) != CDF_OK) {
        cdf_free(a->content);
        cdf_u32buf_free(&u);
        return cdf_error_set(err, CDF_ERR_NOMEM, "tokenizer: out of memory");
    }
    a->cp = u.p;
    a->len = u.n;
    a->id = id;
    t->n_added++;
    return CDF_OK;
}

static int dec_cmp(const void *x, const void *y) {
    const cdf_clip_dec *a = x, *b = y;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* Sorts the decoder by id keeping one entry per id: the last defined (vocab
 * keys in file order, then added tokens) wins, like Python's {v: k} inversion. */
static void finish_decoder(cdf_clip_tokenizer *t) {
    qsort(t->dec, t->n_dec, sizeof *t->dec, dec_cmp);
    size_t w = 0;
    for (size_t i = 0; i < t->n_dec; i++)
        if (i + 1 == t->n_dec || t->dec[i + 1].id != t->dec[i].id) t->dec[w++] = t->dec[i];
    t->n_dec = w;
}

cdf_status cdf_clip_tokenizer_load(const char *dir, cdf_clip_tokenizer **out, cdf_error *err) {
    if (!out) return cdf_error_set(err, CDF_ERR_ARG, "cdf_clip_tokenizer_load: out is NULL");
    *out = NULL;
    if (!dir) return cdf_error_set(err, CDF_ERR_ARG, "cdf_clip_tokenizer_load: dir is NULL");
    cdf_status s = CDF_OK;
    cJSON *cfg = NULL, *map = NULL, *vj = NULL;
    char *vpath = NULL, *mpath = NULL;
    unsigned char *mbuf = NULL;
    size_t mlen = 0;
    tok_config c = {.max_length = 77, .errors_replace = 1};
    for (int k = 0; k < TK_N; k++) c.tok[k] = TK_DEFAULT[k], c.tok_file[k] = "tokenizer defaults";
    cdf_clip_tokenizer *t = cdf_calloc(1, sizeof *t);
    vpath = join_path(dir, "vocab.json");
    mpath = join_path(dir, "merges.txt");
    if (!t || !vpath || !mpath) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    if ((s = load_optional_json(dir, "tokenizer_config.json", &cfg, err)) != CDF_OK) goto fail;
    if ((s = load_optional_json(dir, "special_tokens_map.json", &map, err)) != CDF_OK) goto fail;
    if (cfg && (s = read_tokenizer_config(cfg, "tokenizer_config.json", &c, err)) != CDF_OK) goto fail;
    if (map && (s = read_special_tokens(map, "special_tokens_map.json", &c, err)) != CDF_OK) goto fail;
    t->max_length = (int)c.max_length;
    t->errors_replace = c.errors_replace;

    if ((s = cdf_json_load(vpath, &vj, err)) != CDF_OK) goto fail;
    if (!cJSON_IsObject(vj)) {
        s = cdf_error_set(err, CDF_ERR_FORMAT, "%s: not a JSON object", vpath);
        goto fail;
    }
    if ((s = read_file(mpath, &mbuf, &mlen, err)) != CDF_OK) goto fail;
    size_t n_vocab = (size_t)cJSON_GetArraySize(vj);
    size_t n_lines = 0;
    for (size_t i = 0; i < mlen; i++) n_lines += mbuf[i] == '\n';
    if (cdf_bpe_init(&t->bpe, n_vocab + 1024, n_lines < CLIP_MAX_MERGES ? n_lines + 1 : CLIP_MAX_MERGES) != CDF_OK) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    t->dec = cdf_mallocn(n_vocab + TK_N + c.n_extra, sizeof *t->dec); /* vocab + added tokens */
    t->added = cdf_mallocn(TK_N + c.n_extra, sizeof *t->added);
    if (!t->dec || !t->added) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    if ((s = read_vocab(vj, vpath, t, t->dec, &t->n_dec, err)) != CDF_OK) goto fail;
    if ((s = read_merges(mbuf, mlen, mpath, &t->bpe, err)) != CDF_OK) goto fail;
    cdf_bpe_finish(&t->bpe);

    /* special ids; the split list: bos, eos, unk, pad, then the extra tokens */
    int64_t *ids[TK_N] = {&t->bos_id, &t->eos_id, &t->unk_id, &t->pad_id};
    for (int k = 0; k < TK_N; k++) {
        if ((s = resolve_id(t, &c, c.tok[k], c.tok_file[k], TK_KEY[k], ids[k], err)) != CDF_OK) goto fail;
        if ((s = add_split_token(t, c.tok[k], *ids[k], err)) != CDF_OK) goto fail;
    }
    for (size_t i = 0; i < c.n_extra; i++) {
        int64_t id;
        if ((s = resolve_id(t, &c, c.extra[i].content, c.extra[i].file, c.extra[i].field, &id, err)) != CDF_OK)
            goto fail;
        if ((s = add_split_token(t, c.extra[i].content, id, err)) != CDF_OK) goto fail;
    }
    /* added tokens go to the decoder after the vocab: they win for their id */
    for (size_t i = 0; i < t->n_added; i++) {
        uint32_t sym = cdf_bpe_find(&t->bpe, t->added[i].content, strlen(t->added[i].content));
        int in_vocab = sym != CDF_BPE_NOSYM && t->bpe.sym_id[sym] == t->added[i].id;
        t->dec[t->n_dec] = (cdf_clip_dec){t->added[i].id, in_vocab ? sym : CDF_BPE_NOSYM, in_vocab ? -1 : (int32_t)i,
                                          (uint32_t)t->n_dec};
        t->n_dec++;
    }
    finish_decoder(t);
    /* the BPE cache entries {"<|startoftext|>": "<|startoftext|>", ...} */
    uint32_t sot = cdf_bpe_find(&t->bpe, "<|startoftext|>", 15), eot = cdf_bpe_find(&t->bpe, "<|endoftext|>", 13);
    t->sot_literal_id = sot != CDF_BPE_NOSYM && t->bpe.sym_id[sot] >= 0 ? t->bpe.sym_id[sot] : t->unk_id;
    t->eot_literal_id = eot != CDF_BPE_NOSYM && t->bpe.sym_id[eot] >= 0 ? t->bpe.sym_id[eot] : t->unk_id;
    for (int i = 0; i < 0x144; i++) t->byte_of[i] = -1;
    for (int b = 0; b < 256; b++) t->byte_of[t->bpe.byte_char[b]] = (int16_t)b;
    goto done;
fail:
    cdf_clip_tokenizer_free(t);
    t = NULL;
done:
    cJSON_Delete(cfg);
    cJSON_Delete(map);
    cJSON_Delete(vj);
    cdf_free(vpath);
    cdf_free(mpath);
    cdf_free(mbuf);
    cdf_free(c.extra);
    *out = t;
    return s;
}
