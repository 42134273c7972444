/* Internal layout of cdf_clip_tokenizer, shared by clip_tokenizer_load.c and
 * clip_tokenizer.c. */
#ifndef CDF_TEXT_CLIP_TOKENIZER_INT_H
#define CDF_TEXT_CLIP_TOKENIZER_INT_H

#include "text/bpe.h"
#include "text/clip_tokenizer.h"

/* A token split out of the raw text before normalisation. */
typedef struct cdf_clip_added {
    char *content;  /* NUL-terminated UTF-8 */
    uint32_t *cp;   /* [len] its code points */
    size_t len;
    int64_t id;
} cdf_clip_added;

/* Decoder entry: what an id decodes to. */
typedef struct cdf_clip_dec {
    int64_t id;
    uint32_t sym;   /* vocab symbol (byte-mapped string), or CDF_BPE_NOSYM for an added token outside the vocab */
    int32_t added;  /* index into added[] when sym is CDF_BPE_NOSYM, else -1 */
    uint32_t order; /* definition order: for an id defined twice the later wins */
} cdf_clip_dec;

struct cdf_clip_tokenizer {
    cdf_bpe_model bpe;       /* vocab symbols, merge ranks */
    int max_length;          /* model_max_length */
    int errors_replace;      /* decode: 1 "replace", 0 "ignore" */
    int64_t bos_id, eos_id, unk_id, pad_id;
    int64_t sot_literal_id;  /* id of the pre-token "<|startoftext|>" (the BPE cache entry), unk if not in vocab */
    int64_t eot_literal_id;  /* same for "<|endoftext|>" */
    cdf_clip_added *added;   /* [n_added] tokens split out of the raw text */
    size_t n_added;
    cdf_clip_dec *dec;       /* [n_dec] sorted by id, one entry per id */
    size_t n_dec;
    int16_t byte_of[0x144];  /* inverse bytes_to_unicode: code point -> byte, -1 when none */
};

#endif
