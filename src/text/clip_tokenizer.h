/* CLIP BPE tokenizer: transformers' slow CLIPTokenizer as Stable Diffusion
 * pipelines call it, `tokenizer(text, padding="max_length",
 * max_length=tokenizer.model_max_length, truncation=True).input_ids`, in the
 * configuration a plain `pip install diffusers transformers` gives: WITHOUT ftfy.
 *
 * Text pipeline (reproduced exactly; tests/data/tokenizer has 300 golden strings):
 *   1. added tokens (bos/eos/unk/pad contents, additional_special_tokens,
 *      added_tokens_decoder) are split out of the raw text first, exact and
 *      case-sensitive, longest match at the earliest position, and map
 *      straight to their ids;
 *   2. every other piece goes through transformers' BasicTokenizer fallback
 *      (text_norm.h): drop U+0000/U+FFFD/category C except \t\n\r, whitespace
 *      to ' ', spaces around CJK ideographs, NFC, split on whitespace,
 *      str.lower() per word, join with ' ';
 *   3. the CLIP regex (case-insensitive) cuts pre-tokens; a pre-token equal to
 *      "<|startoftext|>" / "<|endoftext|>" (e.g. from "<|EndOfText|>" after
 *      lower-casing) maps to that vocab entry as is; others are UTF-8 encoded,
 *      mapped byte -> unicode, and BPE-merged with "</w>" on the last symbol;
 *      symbols missing from the vocab become unk.
 *
 * What ftfy would change: OpenAI's CLIP simple_tokenizer runs
 * ftfy.fix_text, then html.unescape twice, collapses whitespace runs to ' '
 * and lower-cases the whole string; transformers' CLIPTokenizer, when ftfy is
 * importable, runs ftfy.fix_text, the whitespace collapse and lower() (no
 * html.unescape).  Neither deletes U+FFFD and category-C characters the way
 * BasicTokenizer does (ftfy removes only some control characters), neither
 * pads CJK ideographs with spaces (so U+6771 U+4EAC may BPE-merge together),
 * and ftfy repairs mojibake (U+00C3 U+00A9 -> U+00E9), uncurls quotes
 * (U+2019 -> "'", so "don\u2019t" splits as the 't contraction), expands Latin
 * ligatures and (in OpenAI's code) decodes HTML entities ("&amp;" -> "&").
 * For printable ASCII without entities all three agree.  The reference
 * (diffusers + transformers installed without ftfy) takes the BasicTokenizer
 * path, so this does too.
 *
 * Input bytes: the pipeline receives a Python str; a C caller passes bytes.
 * They are decoded like bytes.decode("utf-8", "replace"): each maximal
 * ill-formed subsequence becomes U+FFFD, which step 2 then deletes, so invalid
 * bytes vanish without splitting the word they sit in ("a\xFFb" -> "ab").
 * Any NUL-terminated string is accepted (up to CDF_CLIP_MAX_TEXT_BYTES).
 *
 * Unicode data: libunistring (Debian libunistring-dev 1.0, Unicode 14.0.0 =
 * Python 3.11's unicodedata that made the goldens); no ICU, no global state.
 *
 * Threads: a loaded tokenizer is immutable (no BPE cache); any number of
 * threads may tokenize with it at once.
 *
 * Config: vocab.json and merges.txt are required.  tokenizer_config.json and
 * special_tokens_map.json are read when present (the latter overrides the
 * former, as transformers' from_pretrained does): model_max_length (default
 * 77), bos_token (default "<|startoftext|>"), eos/unk/pad_token (default
 * "<|endoftext|>"), each a string or an AddedToken object {"content": ...};
 * errors ("replace" default, or "ignore": invalid UTF-8 in decode);
 * additional_special_tokens; added_tokens_decoder ({"id": {"content": ...}}).
 * do_lower_case is type-checked but, as in transformers (CLIPTokenizer builds
 * its BasicTokenizer with do_lower_case=True whatever the config says), has no
 * effect.  AddedToken lstrip/rstrip/normalized have no effect on CLIP ids
 * (whitespace is dropped anyway); single_word=true is CDF_ERR_UNSUPPORTED.
 * merges.txt is read as Python does: universal newlines, strip, the first line
 * (the "#version" header) skipped, at most 49152-256-2 = 48894 merges used;
 * a used line that is not exactly two whitespace-separated symbols is
 * CDF_ERR_FORMAT naming the line. */
#ifndef CDF_TEXT_CLIP_TOKENIZER_H
#define CDF_TEXT_CLIP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "cdiffusers/core.h"

/* Longest prompt accepted, in bytes (CDF_ERR_LIMIT past it). */
#define CDF_CLIP_MAX_TEXT_BYTES ((size_t)1 << 26)

typedef struct cdf_clip_tokenizer cdf_clip_tokenizer;

/* Loads the tokenizer folder dir (see above).  Missing vocab.json/merges.txt
 * -> CDF_ERR_MISSING naming the file; malformed file -> CDF_ERR_FORMAT naming
 * file and line/entry; bad config value or special token not in the vocab ->
 * CDF_ERR_CONFIG naming file and field.  Caller frees *out with cdf_clip_tokenizer_free. */
cdf_status cdf_clip_tokenizer_load(const char *dir, cdf_clip_tokenizer **out, cdf_error *err);
/* Frees t and everything it owns; NULL is ignored. */
void cdf_clip_tokenizer_free(cdf_clip_tokenizer *t);
/* model_max_length (77 for CLIP): the length of every cdf_clip_tokenize output. */
int cdf_clip_tokenizer_max_length(const cdf_clip_tokenizer *t);
/* Id of the pad token (49407 for SD 1.x), bos (49406) and eos (49407). */
int64_t cdf_clip_tokenizer_pad_id(const cdf_clip_tokenizer *t);
int64_t cdf_clip_tokenizer_bos_id(const cdf_clip_tokenizer *t);
int64_t cdf_clip_tokenizer_eos_id(const cdf_clip_tokenizer *t);

/* ids[max_length] (caller's buffer) = bos + content tokens (truncated to
 * max_length-2) + eos + pad tokens.  *n_content = content tokens before
 * truncation, *truncated = 1 when some were dropped (either pointer may be
 * NULL).  When dropped_text != NULL it receives NULL, or when truncated the
 * decoded removed tokens as diffusers' warning "The following part of your
 * input was truncated because CLIP can only handle sequences up to 77
 * tokens: ..." shows them (tokenizer.batch_decode of untruncated_ids[76:-1]);
 * the caller frees it with cdf_free.  Any byte string is accepted (see above). */
cdf_status cdf_clip_tokenize(const cdf_clip_tokenizer *t, const char *text, int64_t *ids, int *n_content,
                             int *truncated, char **dropped_text, cdf_error *err);

/* All content token ids of text (no bos/eos, no truncation) in *ids[*n]
 * (cdf_malloc'd, caller frees with cdf_free; NULL when *n is 0). */
cdf_status cdf_clip_tokenizer_encode(const cdf_clip_tokenizer *t, const char *text, int64_t **ids, size_t *n,
                                     cdf_error *err);

/* tokenizer.decode(ids) of the reference (skip_special_tokens=False): token
 * strings concatenated, mapped unicode -> byte (characters outside the byte
 * map pass through as UTF-8; added tokens outside the vocab as their
 * content), decoded as UTF-8 with the config's errors mode, "</w>" -> " ",
 * stripped.  An id with no token is CDF_ERR_ARG.  *out is NUL-terminated,
 * cdf_malloc'd, freed by the caller with cdf_free. */
cdf_status cdf_clip_tokenizer_decode(const cdf_clip_tokenizer *t, const int64_t *ids, size_t n, char **out,
                                     cdf_error *err);

#endif
