/* The text-encoder result cache (cdf_text_cache, public in
 * cdiffusers/pipeline.h) and the one way pipelines encode through it:
 * cdf_text_cache_fill looks up every prompt row, runs the encoder once on the
 * missing unique texts and stores what it made.  Rows of the CLIP text
 * forward are independent (row b alone gives the same bits, see
 * models/clip_text.h), so a row from the cache equals the row a full batch
 * would have given.
 *
 * An entry is keyed by: the load's identity (uid, drawn per pipeline load by
 * cdf_text_uid, and the encoder's address), which encoder (1 or 2), the
 * arithmetic (precision), the layer the call reads (clip_skip as the encoder
 * call takes it; -1 for a pooled output, which does not depend on it), pooled
 * or not, the floats per row and the exact text. */
#ifndef CDF_PIPELINES_TEXT_CACHE_H
#define CDF_PIPELINES_TEXT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "cdiffusers/pipeline.h"

#define CDF_TEXT_MAX_PARTS 2

/* One output of an encoder call, row by row. */
typedef struct cdf_text_part {
    int layer;    /* the layer selector of the call (clip_skip); -1 for a pooled output */
    int pooled;   /* 0: hidden states [seq, hidden]; 1: pooled text_embeds [projection_dim] */
    size_t n;     /* floats per row */
    float *out;   /* [rows, n], caller-owned */
} cdf_text_part;

/* Runs the encoder on n rows of ids [n, seq]: outs[p] is [n, parts[p].n]. */
typedef cdf_status (*cdf_text_forward_fn)(void *user, const int64_t *ids, int n, float *const *outs);

/* Where rows come from when the cache does not have them. */
typedef struct cdf_text_source {
    uint64_t uid;                /* the pipeline load (cdf_text_uid) */
    const void *encoder;         /* the encoder model (borrowed) */
    int which;                   /* 1: tokenizer / text_encoder; 2: tokenizer_2 / text_encoder_2 */
    int precision;               /* the forward's matrix-product arithmetic (cdf_precision: bf16 gives other bits;
                                    threads and kernel choice do not change them) */
    int seq;                     /* token ids per row */
    cdf_text_forward_fn forward;
    void *user;
} cdf_text_source;

/* A 64-bit identity for one pipeline load: OS random bits mixed with the
 * clock and salt (the state's address), so a later load at the same address
 * gets another one.  No global state. */
uint64_t cdf_text_uid(const void *salt);

/* Fills parts[p].out for rows texts[0 .. rows) whose token ids are ids
 * [rows, seq] (all borrowed).  c NULL: one forward of every row, exactly as
 * without a cache.  Otherwise each row's parts are looked up (hits and misses
 * counted); rows missing any part are encoded in one forward of their unique
 * texts, copied to every row with that text and stored in c (an entry that
 * cannot be allocated is not stored; LRU entries leave for new ones).
 * Errors: the forward's, CDF_ERR_NOMEM for the working arrays, CDF_ERR_ARG
 * for a bad nparts (1 .. CDF_TEXT_MAX_PARTS). */
cdf_status cdf_text_cache_fill(cdf_text_cache *c, const cdf_text_source *src, const char *const *texts,
                               const int64_t *ids, int rows, const cdf_text_part *parts, int nparts, cdf_error *err);

#endif
