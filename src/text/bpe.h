/* Byte-level BPE model (GPT-2/CLIP style): interned symbol strings with their
 * vocab ids, merge ranks hashed by symbol pair, and the merge loop of
 * transformers' CLIPTokenizer.bpe().  Immutable after loading: encoding only
 * reads the model (scratch lives in a caller-owned cdf_bpe_work). */
#ifndef CDF_TEXT_BPE_H
#define CDF_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "cdiffusers/core.h"

#define CDF_BPE_NOSYM UINT32_MAX

/* One merge rule in the pair hash table. */
typedef struct cdf_bpe_pair {
    uint64_t key;    /* (left symbol << 32) | right symbol */
    uint32_t rank;   /* line index among the merges: lower merges first */
    uint32_t merged; /* symbol of left+right */
    uint8_t used;    /* slot occupied */
} cdf_bpe_pair;

typedef struct cdf_bpe_model {
    char *arena;           /* [arena_len] symbol strings back to back (UTF-8, no NULs added) */
    size_t arena_len, arena_cap;
    size_t *sym_off;       /* [n_sym] offset of symbol s in arena */
    uint32_t *sym_len;     /* [n_sym] byte length of symbol s */
    int64_t *sym_id;       /* [n_sym] vocab id of symbol s, -1 when it is not in the vocab */
    uint32_t n_sym, cap_sym;
    uint32_t *slots;       /* [slot_mask+1] string hash table: symbol + 1, 0 = empty */
    uint32_t slot_mask;
    cdf_bpe_pair *pairs;   /* [pair_mask+1] merge rules by symbol pair */
    uint32_t pair_mask, n_pairs;
    uint32_t byte_sym[256];     /* symbol of bytes_to_unicode(b), CDF_BPE_NOSYM when never seen */
    uint32_t byte_end_sym[256]; /* symbol of bytes_to_unicode(b) + "</w>" */
    uint32_t byte_char[256];    /* bytes_to_unicode(b): the code point standing for byte b */
} cdf_bpe_model;

/* Growable int64 array (token ids).  Zero-initialise; free with cdf_i64buf_free. */
typedef struct cdf_i64buf {
    int64_t *p; /* [cap], first n used */
    size_t n, cap;
} cdf_i64buf;
cdf_status cdf_i64buf_push(cdf_i64buf *b, int64_t v);
void cdf_i64buf_free(cdf_i64buf *b);

/* Scratch for cdf_bpe_encode, reusable across calls; zero-initialise, free with cdf_bpe_work_free. */
typedef struct cdf_bpe_work {
    uint32_t *sym;  /* [cap] symbol of node i */
    int32_t *prev;  /* [cap] previous live node, -1 none */
    int32_t *next;  /* [cap] next live node, -1 none */
    uint8_t *alive; /* [cap] */
    size_t cap;
    struct cdf_bpe_heap_item *heap, *batch; /* [hcap] candidate merges; one rank's batch */
    size_t hcap;
} cdf_bpe_work;
void cdf_bpe_work_free(cdf_bpe_work *w);

/* Sets up an empty model (byte_char filled, hash tables of the given expected sizes). */
cdf_status cdf_bpe_init(cdf_bpe_model *m, size_t n_strings_hint, size_t n_merges);
/* Frees everything the model owns (not m itself). */
void cdf_bpe_free(cdf_bpe_model *m);
/* Symbol of s[len] (created when new) in *sym. */
cdf_status cdf_bpe_intern(cdf_bpe_model *m, const char *s, size_t len, uint32_t *sym);
/* Symbol of s[len], CDF_BPE_NOSYM when unknown. */
uint32_t cdf_bpe_find(const cdf_bpe_model *m, const char *s, size_t len);
/* Adds merge rule a+b with the given rank; a rule already present takes the new
 * rank (Python's dict comprehension keeps the last line of a duplicate). */
cdf_status cdf_bpe_add_merge(cdf_bpe_model *m, const char *a, size_t alen, const char *b, size_t blen, uint32_t rank);
/* Fills byte_sym/byte_end_sym once all strings are interned. */
void cdf_bpe_finish(cdf_bpe_model *m);

/* BPE of one pre-token given as its UTF-8 bytes tok[n] (n >= 1): symbols are the
 * bytes' mapped characters with "</w>" glued to the last; the lowest-ranked
 * adjacent pair present is merged everywhere (left to right, non-overlapping),
 * repeatedly.  Appends each final symbol's vocab id (unk_id when the symbol is
 * not in the vocab) to out.  O(n log n) with a heap, same result as the
 * reference's rescan loop. */
cdf_status cdf_bpe_encode(const cdf_bpe_model *m, const unsigned char *tok, size_t n, int64_t unk_id, cdf_bpe_work *w,
                          cdf_i64buf *out);

#endif
