/* CLIP tokenizer: encoding (added-token split, BasicTokenizer, regex, BPE),
 * padding/truncation as SD pipelines call it, and decoding.  See clip_tokenizer.h. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "text/clip_tokenizer_int.h"
#include "text/text_norm.h"

int cdf_clip_tokenizer_max_length(const cdf_clip_tokenizer *t) { return t ? t->max_length : 0; }
int64_t cdf_clip_tokenizer_pad_id(const cdf_clip_tokenizer *t) { return t ? t->pad_id : -1; }
int64_t cdf_clip_tokenizer_bos_id(const cdf_clip_tokenizer *t) { return t ? t->bos_id : -1; }
int64_t cdf_clip_tokenizer_eos_id(const cdf_clip_tokenizer *t) { return t ? t->eos_id : -1; }

/* Scratch of one encode call (the tokenizer itself stays read-only). */
typedef struct enc_state {
    cdf_u32buf raw;       /* the decoded input */
    cdf_u32buf words;     /* BasicTokenizer output of one piece */
    cdf_u32buf tmp;       /* its scratch */
    unsigned char *bytes; /* [bytes_cap] UTF-8 of one pre-token */
    size_t bytes_cap;
    cdf_bpe_work work;
    cdf_i64buf ids;       /* content ids so far */
} enc_state;

static void enc_free(enc_state *e) {
    cdf_u32buf_free(&e->raw);
    cdf_u32buf_free(&e->words);
    cdf_u32buf_free(&e->tmp);
    cdf_free(e->bytes);
    cdf_bpe_work_free(&e->work);
    cdf_i64buf_free(&e->ids);
}

static int equals_ascii(const uint32_t *p, size_t n, const char *lit) {
    size_t L = strlen(lit);
    if (n != L) return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)lit[i]) return 0;
    return 1;
}

/* CLIPTokenizer._tokenize + convert_tokens_to_ids of one piece p[n] between added tokens. */
static cdf_status tokenize_piece(const cdf_clip_tokenizer *t, enc_state *e, const uint32_t *p, size_t n) {
    if (cdf_clip_basic_tokenize(p, n, &e->words, &e->tmp) != CDF_OK) return CDF_ERR_NOMEM;
    const uint32_t *w = e->words.p;
    size_t m = e->words.n, pos = 0, a, b;
    while (cdf_clip_pretoken_next(w, m, &pos, &a, &b)) {
        int64_t lit = equals_ascii(w + a, b - a, "<|startoftext|>") ? t->sot_literal_id
                      : equals_ascii(w + a, b - a, "<|endoftext|>") ? t->eot_literal_id
                                                                     : -1;
        if (lit >= 0) { /* the BPE cache returns these two as they are */
            if (cdf_i64buf_push(&e->ids, lit) != CDF_OK) return CDF_ERR_NOMEM;
            continue;
        }
        if (4 * (b - a) > e->bytes_cap) {
            size_t cap = 4 * (b - a) + 64;
            unsigned char *nb = cdf_realloc(e->bytes, cap);
            if (!nb) return CDF_ERR_NOMEM;
            e->bytes = nb;
            e->bytes_cap = cap;
        }
        size_t k = 0;
        for (size_t i = a; i < b; i++) k += (size_t)cdf_utf8_put(w[i], e->bytes + k);
        cdf_status s = cdf_bpe_encode(&t->bpe, e->bytes, k, t->unk_id, &e->work, &e->ids);
        if (s != CDF_OK) return s;
    }
    return CDF_OK;
}

/* PreTrainedTokenizer.tokenize: added tokens split out first (longest match at
 * the earliest position), the pieces between them through _tokenize. */
static cdf_status encode_all(const cdf_clip_tokenizer *t, const char *text, enc_state *e, cdf_error *err) {
    size_t len = strlen(text);
    if (len > CDF_CLIP_MAX_TEXT_BYTES)
        return cdf_error_set(err, CDF_ERR_LIMIT, "clip tokenizer: prompt of %zu bytes is over the %zu-byte limit", len,
                             CDF_CLIP_MAX_TEXT_BYTES);
    cdf_status s = CDF_OK;
    if (cdf_utf8_decode((const unsigned char *)text, len, 1, &e->raw) != CDF_OK) goto nomem;
    const uint32_t *r = e->raw.p;
    size_t n = e->raw.n, seg = 0;
    for (size_t i = 0; i < n;) {
        size_t best = 0;
        int64_t best_id = 0;
        for (size_t k = 0; k < t->n_added; k++) {
            const cdf_clip_added *a = &t->added[k];
            if (a->len > best && a->len <= n - i && a->cp[0] == r[i] && memcmp(a->cp, r + i, a->len * 4) == 0)
                best = a->len, best_id = a->id;
        }
        if (!best) {
            i++;
            continue;
        }
        if (i > seg && (s = tokenize_piece(t, e, r + seg, i - seg)) != CDF_OK) goto fail;
        if (cdf_i64buf_push(&e->ids, best_id) != CDF_OK) goto nomem;
        i += best;
        seg = i;
    }
    if (n > seg && (s = tokenize_piece(t, e, r + seg, n - seg)) != CDF_OK) goto fail;
    return CDF_OK;
fail:
    if (s != CDF_ERR_NOMEM)
        return cdf_error_set(err, s, "clip tokenizer: a single pre-token is too long for BPE");
nomem:
    return cdf_error_set(err, CDF_ERR_NOMEM, "clip tokenizer: out of memory");
}

cdf_status cdf_clip_tokenizer_encode(const cdf_clip_tokenizer *t, const char *text, int64_t **ids, size_t *n,
                                     cdf_error *err) {
    if (ids) *ids = NULL;
    if (n) *n = 0;
    if (!t || !text || !ids || !n) return cdf_error_set(err, CDF_ERR_ARG, "cdf_clip_tokenizer_encode: NULL argument");
    enc_state e = {0};
    cdf_status s = encode_all(t, text, &e, err);
    if (s == CDF_OK) {
        *ids = e.ids.p;
        *n = e.ids.n;
        if (!e.ids.n) cdf_free(e.ids.p), *ids = NULL;
        e.ids.p = NULL;
    }
    enc_free(&e);
    return s;
}

cdf_status cdf_clip_tokenize(const cdf_clip_tokenizer *t, const char *text, int64_t *ids, int *n_content,
                             int *truncated, char **dropped_text, cdf_error *err) {
    if (dropped_text) *dropped_text = NULL;
    if (!t || !text || !ids) return cdf_error_set(err, CDF_ERR_ARG, "cdf_clip_tokenize: NULL argument");
    enc_state e = {0};
    cdf_status s = encode_all(t, text, &e, err);
    if (s != CDF_OK) {
        enc_free(&e);
        return s;
    }
    size_t L = (size_t)t->max_length, keep_max = L - 2, n = e.ids.n, keep = n < keep_max ? n : keep_max;
    ids[0] = t->bos_id;
    if (keep) memcpy(ids + 1, e.ids.p, keep * sizeof *ids);
    ids[1 + keep] = t->eos_id;
    for (size_t i = keep + 2; i < L; i++) ids[i] = t->pad_id;
    if (n_content) *n_content = n > INT_MAX ? INT_MAX : (int)n;
    if (truncated) *truncated = n > keep_max;
    /* diffusers: batch_decode(untruncated_ids[:, model_max_length - 1 : -1]) = content ids [L-2, n) */
    if (dropped_text && n > keep_max)
        s = cdf_clip_tokenizer_decode(t, e.ids.p + keep_max, n - keep_max, dropped_text, err);
    enc_free(&e);
    return s;
}

static const cdf_clip_dec *find_dec(const cdf_clip_tokenizer *t, int64_t id) {
    size_t lo = 0, hi = t->n_dec;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->dec[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < t->n_dec && t->dec[lo].id == id ? &t->dec[lo] : NULL;
}

/* Appends len bytes to the growable byte buffer. */
static int put_bytes(unsigned char **b, size_t *n, size_t *cap, const void *src, size_t len) {
    if (len > *cap - *n) {
        size_t c = *cap ? *cap : 256;
        while (c - *n < len) {
            if (c > SIZE_MAX / 2) return 0;
            c *= 2;
        }
        unsigned char *p = cdf_realloc(*b, c);
        if (!p) return 0;
        *b = p;
        *cap = c;
    }
    memcpy(*b + *n, src, len);
    *n += len;
    return 1;
}

cdf_status cdf_clip_tokenizer_decode(const cdf_clip_tokenizer *t, const int64_t *ids, size_t n, char **out,
                                     cdf_error *err) {
    if (out) *out = NULL;
    if (!t || !out || (!ids && n)) return cdf_error_set(err, CDF_ERR_ARG, "cdf_clip_tokenizer_decode: NULL argument");
    unsigned char *bytes = NULL;
    size_t nb = 0, cap = 0;
    cdf_u32buf u = {0};
    cdf_status s = CDF_OK;
    for (size_t i = 0; i < n; i++) {
        const cdf_clip_dec *d = find_dec(t, ids[i]);
        if (!d) {
            s = cdf_error_set(err, CDF_ERR_ARG, "clip tokenizer decode: id %lld (position %zu) has no token",
                              (long long)ids[i], i);
            goto done;
        }
        if (d->sym == CDF_BPE_NOSYM) { /* added token outside the vocab: its content as is */
            const char *c = t->added[d->added].content;
            if (!put_bytes(&bytes, &nb, &cap, c, strlen(c))) goto nomem;
            continue;
        }
        u.n = 0;
        const unsigned char *str = (const unsigned char *)t->bpe.arena + t->bpe.sym_off[d->sym];
        if (cdf_utf8_decode(str, t->bpe.sym_len[d->sym], 1, &u) != CDF_OK) goto nomem;
        for (size_t k = 0; k < u.n; k++) {
            uint32_t c = u.p[k];
            unsigned char tmp[4];
            int len = 1;
            if (c < 0x144 && t->byte_of[c] >= 0) tmp[0] = (unsigned char)t->byte_of[c];
            else len = cdf_utf8_put(c, tmp); /* not a byte character: passes through */
            if (!put_bytes(&bytes, &nb, &cap, tmp, (size_t)len)) goto nomem;
        }
    }
    u.n = 0;
    if (cdf_utf8_decode(bytes, nb, t->errors_replace, &u) != CDF_OK) goto nomem;
    size_t w = 0; /* .replace("</w>", " ") */
    for (size_t r = 0; r < u.n;) {
        if (r + 4 <= u.n && u.p[r] == '<' && u.p[r + 1] == '/' && u.p[r + 2] == 'w' && u.p[r + 3] == '>') {
            u.p[w++] = ' ';
            r += 4;
        } else {
            u.p[w++] = u.p[r++];
        }
    }
    size_t a = 0, b = w; /* .strip() */
    while (a < b && cdf_py_isspace(u.p[a])) a++;
    while (b > a && cdf_py_isspace(u.p[b - 1])) b--;
    char *txt = cdf_malloc(4 * (b - a) + 1);
    if (!txt) goto nomem;
    size_t k = 0;
    for (size_t i = a; i < b; i++) k += (size_t)cdf_utf8_put(u.p[i], (unsigned char *)txt + k);
    txt[k] = '\0';
    *out = txt;
    goto done;
nomem:
    s = cdf_error_set(err, CDF_ERR_NOMEM, "clip tokenizer decode: out of memory");
done:
    cdf_free(bytes);
    cdf_u32buf_free(&u);
    return s;
}
