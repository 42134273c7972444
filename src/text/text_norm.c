/* UTF-8 codec, BasicTokenizer normalisation (clean, CJK spacing, NFC,
 * per-word lower-casing) and the CLIP pre-tokenizer scanner.  See text_norm.h. */
#include "text/text_norm.h"

#include <string.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>

cdf_status cdf_u32buf_reserve(cdf_u32buf *b, size_t extra) {
    if (extra <= b->cap - b->n) return CDF_OK;
    if (extra > SIZE_MAX / sizeof(uint32_t) - b->n) return CDF_ERR_NOMEM;
    size_t want = b->n + extra, cap = b->cap ? b->cap : 64;
    while (cap < want) cap = cap > SIZE_MAX / 2 / sizeof(uint32_t) ? want : cap * 2;
    uint32_t *p = cdf_realloc(b->p, cap * sizeof(uint32_t));
    if (!p) return CDF_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return CDF_OK;
}

void cdf_u32buf_free(cdf_u32buf *b) {
    cdf_free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* ------------------------------------------------------------------ UTF-8 */

/* Decodes the sequence starting at s[i]: returns the index past it and sets
 * *c to the code point, or to UINT32_MAX for a maximal ill-formed subpart. */
static size_t utf8_step(const unsigned char *s, size_t len, size_t i, uint32_t *c) {
    unsigned b = s[i];
    if (b < 0x80) {
        *c = b;
        return i + 1;
    }
    int need;
    uint32_t v;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the next continuation byte */
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1, v = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2, v = b & 0x0F;
        if (b == 0xE0) lo = 0xA0;      /* no overlongs */
        else if (b == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3, v = b & 0x07;
        if (b == 0xF0) lo = 0x90;      /* no overlongs */
        else if (b == 0xF4) hi = 0x8F; /* nothing past U+10FFFF */
    } else { /* stray continuation byte, C0/C1, F5..FF */
        *c = UINT32_MAX;
        return i + 1;
    }
    size_t j = i + 1;
    int k = 0;
    for (; k < need && j < len; k++, j++) {
        unsigned cb = s[j];
        if (cb < lo || cb > hi) break;
        lo = 0x80, hi = 0xBF;
        v = (v << 6) | (cb & 0x3F);
    }
    *c = k == need ? v : UINT32_MAX;
    return j;
}

cdf_status cdf_utf8_decode(const unsigned char *s, size_t len, int replace, cdf_u32buf *out) {
    if (len == 0) return CDF_OK; /* out->p may still be NULL: no pointer arithmetic on it */
    if (cdf_u32buf_reserve(out, len) != CDF_OK) return CDF_ERR_NOMEM; /* never more code points than bytes */
    uint32_t *o = out->p + out->n;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        i = utf8_step(s, len, i, &c);
        if (c != UINT32_MAX) *o++ = c;
        else if (replace) *o++ = 0xFFFD;
    }
    out->n = (size_t)(o - out->p);
    return CDF_OK;
}

size_t cdf_utf8_first_invalid(const unsigned char *s, size_t len) {
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t j = utf8_step(s, len, i, &c);
        if (c == UINT32_MAX) return i;
        i = j;
    }
    return len;
}

int cdf_utf8_put(uint32_t c, unsigned char buf[4]) {
    if (c < 0x80) {
        buf[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        buf[0] = (unsigned char)(0xC0 | (c >> 6));
        buf[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        buf[0] = (unsigned char)(0xE0 | (c >> 12));
        buf[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        buf[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    buf[0] = (unsigned char)(0xF0 | (c >> 18));
    buf[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    buf[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    buf[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* Python 3.11 Py_UNICODE_ISSPACE: bidi class WS/B/S or category Zs. */
int cdf_py_isspace(uint32_t c) {
    if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
    switch (c) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return 1;
    default:
        return c >= 0x2000 && c <= 0x200A;
    }
}

/* `regex` module \s: Python whitespace less U+001C..U+001F. */
static int regex_isspace(uint32_t c) { return cdf_py_isspace(c) && !(c >= 0x1C && c <= 0x1F); }

/* ------------------------------------------------------- BasicTokenizer */

/* BERT's "CJK Unified Ideographs" ranges (transformers _is_chinese_char). */
static int is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static cdf_status decompose_append(uint32_t c, cdf_u32buf *o, int depth) {
    ucs4_t d[UC_DECOMPOSITION_MAX_LENGTH];
    int k = (c >= 0xC0 && depth < 8) ? uc_canonical_decomposition(c, d) : -1;
    if (k < 0) {
        if (cdf_u32buf_reserve(o, 1) != CDF_OK) return CDF_ERR_NOMEM;
        o->p[o->n++] = c;
        return CDF_OK;
    }
    for (int i = 0; i < k; i++)
        if (decompose_append(d[i], o, depth + 1) != CDF_OK) return CDF_ERR_NOMEM;
    return CDF_OK;
}

/* Stable sort of a run of non-starters by combining class: insertion sort for
 * short runs, counting sort (through scratch) for long ones. */
static cdf_status sort_run(uint32_t *t, size_t n, cdf_u32buf *scratch) {
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            uint32_t c = t[i];
            int cc = uc_combining_class(c);
            size_t j = i;
            while (j > 0 && uc_combining_class(t[j - 1]) > cc) {
                t[j] = t[j - 1];
                j--;
            }
            t[j] = c;
        }
        return CDF_OK;
    }
    scratch->n = 0;
    if (cdf_u32buf_reserve(scratch, n) != CDF_OK) return CDF_ERR_NOMEM;
    size_t start[257] = {0};
    for (size_t i = 0; i < n; i++) start[uc_combining_class(t[i]) + 1]++;
    for (int k = 1; k <= 256; k++) start[k] += start[k - 1];
    for (size_t i = 0; i < n; i++) scratch->p[start[uc_combining_class(t[i])]++] = t[i];
    memcpy(t, scratch->p, n * sizeof *t);
    return CDF_OK;
}

cdf_status cdf_nfc(const uint32_t *in, size_t n, cdf_u32buf *out, cdf_u32buf *scratch) {
    out->n = 0;
    if (cdf_u32buf_reserve(out, n) != CDF_OK) return CDF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (decompose_append(in[i], out, 0) != CDF_OK) return CDF_ERR_NOMEM;
    uint32_t *t = out->p;
    size_t len = out->n;
    /* canonical ordering */
    for (size_t i = 0; i < len;) {
        if (uc_combining_class(t[i]) == 0) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < len && uc_combining_class(t[j]) != 0) j++;
        if (j - i > 1 && sort_run(t + i, j - i, scratch) != CDF_OK) return CDF_ERR_NOMEM;
        i = j;
    }
    /* canonical composition with the last starter, unless blocked */
    size_t w = 0, starter = 0;
    int have_starter = 0, last = 0; /* last: combining class of the last character kept */
    for (size_t r = 0; r < len; r++) {
        uint32_t c = t[r];
        int cc = uc_combining_class(c);
        if (have_starter && (last < cc || last == 0)) {
            ucs4_t comp = uc_composition(t[starter], c);
            if (comp) {
                t[starter] = comp;
                continue;
            }
        }
        if (cc == 0) {
            starter = w;
            have_starter = 1;
        }
        last = cc;
        t[w++] = c;
    }
    out->n = w;
    return CDF_OK;
}

/* Python's handle_capital_sigma: U+03A3 at w[i] is final when preceded by a
 * cased letter (skipping case-ignorables) and not followed by one. */
static int final_sigma(const uint32_t *w, size_t n, size_t i) {
    size_t j = i;
    uint32_t c = 0;
    int found = 0;
    while (j > 0) {
        c = w[--j];
        if (!uc_is_property_case_ignorable(c)) {
            found = 1;
            break;
        }
    }
    if (!found || !uc_is_property_cased(c)) return 0;
    for (j = i + 1; j < n; j++) {
        c = w[j];
        if (!uc_is_property_case_ignorable(c)) return !uc_is_property_cased(c);
    }
    return 1;
}

/* Appends Python's w.lower() (out has room for 2 per input code point). */
static void lower_word(const uint32_t *w, size_t n, cdf_u32buf *out) {
    uint32_t *o = out->p + out->n;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = w[i];
        if (c < 0x80) {
            *o++ = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        } else if (c == 0x3A3) {
            *o++ = final_sigma(w, n, i) ? 0x3C2 : 0x3C3;
        } else if (c == 0x130) { /* the only multi-character lowercase mapping */
            *o++ = 'i';
            *o++ = 0x307;
        } else {
            *o++ = uc_tolower(c);
        }
    }
    out->n = (size_t)(o - out->p);
}

cdf_status cdf_clip_basic_tokenize(const uint32_t *in, size_t n, cdf_u32buf *out, cdf_u32buf *tmp) {
    /* 1-2: _clean_text + _tokenize_chinese_chars into tmp */
    tmp->n = 0;
    if (n > SIZE_MAX / 4 || cdf_u32buf_reserve(tmp, 3 * n) != CDF_OK) return CDF_ERR_NOMEM;
    uint32_t *t = tmp->p;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c == 0 || c == 0xFFFD) continue;
        if (c == '\t' || c == '\n' || c == '\r' || c == ' ') {
            *t++ = ' ';
            continue;
        }
        if (c < 0x20 || (c >= 0x7F && uc_is_general_category_withtable(c, UC_CATEGORY_MASK_C))) continue;
        if (c >= 0x80 && uc_is_general_category_withtable(c, UC_CATEGORY_MASK_Zs)) {
            *t++ = ' ';
        } else if (c >= 0x3400 && is_cjk(c)) {
            *t++ = ' ';
            *t++ = c;
            *t++ = ' ';
        } else {
            *t++ = c;
        }
    }
    tmp->n = (size_t)(t - tmp->p);
    /* 3: NFC into out (tmp is read completely before it serves as scratch) */
    if (cdf_nfc(tmp->p, tmp->n, out, tmp) != CDF_OK) return CDF_ERR_NOMEM;
    /* swap: the NFC text goes to tmp, the words to out */
    cdf_u32buf s = *tmp;
    *tmp = *out;
    *out = s;
    out->n = 0;
    const uint32_t *x = tmp->p;
    size_t m = tmp->n;
    if (m > SIZE_MAX / 8 || cdf_u32buf_reserve(out, 2 * m + 1) != CDF_OK) return CDF_ERR_NOMEM;
    for (size_t i = 0; i < m;) {
        while (i < m && cdf_py_isspace(x[i])) i++;
        if (i >= m) break;
        size_t j = i;
        while (j < m && !cdf_py_isspace(x[j])) j++;
        if (out->n) out->p[out->n++] = ' ';
        lower_word(x + i, j - i, out);
        i = j;
    }
    return CDF_OK;
}

/* ---------------------------------------------------------- pre-tokenizer */

enum { PT_SPACE, PT_LETTER, PT_NUMBER, PT_OTHER, PT_NONE };

static int pt_class(uint32_t c) {
    if (c < 0x80) {
        if ((c | 32) >= 'a' && (c | 32) <= 'z') return PT_LETTER;
        if (c >= '0' && c <= '9') return PT_NUMBER;
        return regex_isspace(c) ? PT_SPACE : PT_OTHER;
    }
    if (regex_isspace(c)) return PT_SPACE;
    if (c == 0x345) return PT_NONE;
    if (uc_is_general_category_withtable(c, UC_CATEGORY_MASK_L)) return PT_LETTER;
    if (uc_is_general_category_withtable(c, UC_CATEGORY_MASK_N)) return PT_NUMBER;
    return PT_OTHER;
}

/* Case-insensitive match of code point t against the lower-case ASCII pattern char p. */
static int ci_eq(uint32_t t, char p) {
    if (t == (uint32_t)(unsigned char)p) return 1;
    if (p >= 'a' && p <= 'z' && t == (uint32_t)(p - 32)) return 1;
    return p == 's' && t == 0x17F;
}

static const char *const PT_LITERALS[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re",
                                          "'ve", "'m", "'ll", "'d"};

int cdf_clip_pretoken_next(const uint32_t *text, size_t n, size_t *pos, size_t *start, size_t *end) {
    for (size_t i = *pos; i < n; i++) {
        uint32_t c = text[i];
        if (c == '<' || c == '\'') {
            for (size_t k = 0; k < sizeof PT_LITERALS / sizeof PT_LITERALS[0]; k++) {
                const char *lit = PT_LITERALS[k];
                size_t L = strlen(lit), j = 0;
                while (j < L && i + j < n && ci_eq(text[i + j], lit[j])) j++;
                if (j == L) {
                    *start = i, *end = *pos = i + L;
                    return 1;
                }
            }
        }
        int cls = pt_class(c);
        if (cls == PT_SPACE || cls == PT_NONE) continue;
        size_t j = i + 1;
        if (cls != PT_NUMBER) /* [\p{L}]+ and [^\s\p{L}\p{N}]+ are runs; [\p{N}] is one character */
            while (j < n && pt_class(text[j]) == cls) j++;
        *start = i, *end = *pos = j;
        return 1;
    }
    *pos = n;
    return 0;
}
