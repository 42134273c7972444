/* numpy.random.SeedSequence (pool_size 4, no spawn key) and the decimal seed
 * parsing of numpy's _coerce_to_uint32_array. */
#ifndef CDF_RNG_SEEDSEQ_H
#define CDF_RNG_SEEDSEQ_H

#include <stddef.h>
#include <stdint.h>

#include "cdiffusers/core.h"

#define CDF_SEEDSEQ_POOL_SIZE 4
/* Longest decimal seed accepted (digits); parsing is quadratic in length. */
#define CDF_SEED_MAX_DIGITS 100000

typedef struct cdf_seedseq {
    uint32_t pool[CDF_SEEDSEQ_POOL_SIZE]; /* [4] mixed entropy */
} cdf_seedseq;

/* Parses decimal non-negative integer `seed` into little-endian uint32 words
 * (0 -> one word 0), appended at words[*n...]; *words grows through
 * cdf_realloc, the caller frees it with cdf_free (also on error).
 * Non-digit or empty text is CDF_ERR_ARG naming the seed. */
cdf_status cdf_seed_words_append(const char *seed, uint32_t **words, size_t *n, cdf_error *err);

/* Mixes entropy[0..n) into ss->pool as SeedSequence(entropy) does. */
void cdf_seedseq_init(cdf_seedseq *ss, const uint32_t *entropy, size_t n);
/* generate_state(n, np.uint32) into out[n]. */
void cdf_seedseq_generate_u32(const cdf_seedseq *ss, uint32_t *out, size_t n);
/* generate_state(n, np.uint64) into out[n] (2n uint32 words paired little-endian). */
void cdf_seedseq_generate_u64(const cdf_seedseq *ss, uint64_t *out, size_t n);

#endif
