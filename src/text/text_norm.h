/* Text normalisation for the CLIP tokenizer: UTF-8 <-> code points, the
 * transformers BasicTokenizer path CLIPTokenizer takes without ftfy, and the
 * CLIP pre-tokenizer regex.  Unicode data comes from libunistring (Debian
 * libunistring-dev 1.0 = Unicode 14.0.0, the same database as Python 3.11's
 * unicodedata, which produced the golden expectations).  Only libunistring's
 * per-character lookups are used: they never allocate. */
#ifndef CDF_TEXT_NORM_H
#define CDF_TEXT_NORM_H

#include <stddef.h>
#include <stdint.h>

#include "cdiffusers/core.h"

/* Growable array of code points.  Zero-initialise; free with cdf_u32buf_free. */
typedef struct cdf_u32buf {
    uint32_t *p; /* [cap] code points, the first n in use */
    size_t n, cap;
} cdf_u32buf;

/* Makes room for `extra` more code points past n; CDF_ERR_NOMEM leaves b unchanged. */
cdf_status cdf_u32buf_reserve(cdf_u32buf *b, size_t extra);
/* Frees b's storage (b itself is the caller's) and zeroes it. */
void cdf_u32buf_free(cdf_u32buf *b);

/* Appends the code points of s[len] to out, decoding as Python's
 * bytes.decode("utf-8", errors) does: every maximal ill-formed subsequence
 * (Unicode's "maximal subpart" rule, which CPython follows; surrogates,
 * overlongs and values past U+10FFFF are ill-formed) becomes one U+FFFD when
 * replace is 1 ("replace") and is dropped when 0 ("ignore"). */
cdf_status cdf_utf8_decode(const unsigned char *s, size_t len, int replace, cdf_u32buf *out);
/* Offset of the first ill-formed UTF-8 sequence in s[len], len when there is none. */
size_t cdf_utf8_first_invalid(const unsigned char *s, size_t len);
/* Writes the Unicode scalar value c as UTF-8 into buf; returns its byte count (1..4). */
int cdf_utf8_put(uint32_t c, unsigned char buf[4]);
/* 1 when c is whitespace for Python's str.isspace()/str.split()/str.strip(). */
int cdf_py_isspace(uint32_t c);

/* transformers BasicTokenizer(do_lower_case=True, tokenize_chinese_chars=True,
 * strip_accents=False, do_split_on_punc=False).tokenize(text) followed by
 * " ".join(...), on in[n]:
 *   1. drop U+0000, U+FFFD and every general-category C character except
 *      \t \n \r; \t \n \r and category Zs become ' ';
 *   2. ' ' around each CJK ideograph (the eight BERT ranges);
 *   3. NFC;
 *   4. split on Python whitespace, str.lower() each word (full mapping:
 *      U+0130 -> "i\u0307"; U+03A3 -> final sigma U+03C2 in Python's
 *      Final_Sigma context inside the word, else U+03C3), join with ' '.
 * The result replaces out's contents; tmp is scratch (both caller-owned,
 * reusable across calls).  in must not alias out or tmp. */
cdf_status cdf_clip_basic_tokenize(const uint32_t *in, size_t n, cdf_u32buf *out, cdf_u32buf *tmp);

/* NFC of in[n] (canonical decomposition, canonical ordering, canonical
 * composition); replaces out's contents.  in must not alias out; it may lie in
 * scratch's storage (in is read completely before scratch is used). */
cdf_status cdf_nfc(const uint32_t *in, size_t n, cdf_u32buf *out, cdf_u32buf *scratch);

/* The CLIP pre-tokenizer: Python `regex` findall of
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * with IGNORECASE over text[n].  Finds the next match at or after *pos: returns
 * 1 with [*start, *end) and *pos = *end, or 0 when there is none.
 * IGNORECASE details reproduced (measured on the regex module): the letter
 * 's' of the literals also matches U+017F LATIN SMALL LETTER LONG S, and
 * U+0345 COMBINING GREEK YPOGEGRAMMENI (Mn, case-folds to a letter) matches
 * none of the alternatives, so findall skips it and it splits runs. */
int cdf_clip_pretoken_next(const uint32_t *text, size_t n, size_t *pos, size_t *start, size_t *end);

#endif
