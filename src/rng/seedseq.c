/* SeedSequence entropy mixing and state generation (numpy 1.24 semantics),
 * and decimal seed text to uint32 words. */
#include "rng/seedseq.h"

#include <string.h>

#define SS_INIT_A 0x43b0d7e5u
#define SS_MULT_A 0x931e8875u
#define SS_INIT_B 0x8b51f9ddu
#define SS_MULT_B 0x58f38dedu
#define SS_MIX_MULT_L 0xca01f9ddu
#define SS_MIX_MULT_R 0x4973f715u
#define SS_XSHIFT 16

cdf_status cdf_seed_words_append(const char *seed, uint32_t **words, size_t *n, cdf_error *err) {
    if (!seed) return cdf_error_set(err, CDF_ERR_ARG, "seed: NULL seed string");
    size_t len = strlen(seed);
    if (len == 0) return cdf_error_set(err, CDF_ERR_ARG, "seed \"\": empty seed, expected a non-negative decimal integer");
    for (size_t i = 0; i < len; i++) {
        if (seed[i] < '0' || seed[i] > '9')
            return cdf_error_set(err, CDF_ERR_ARG,
                                 "seed \"%.64s%s\": expected a non-negative decimal integer (character %zu is '%c')",
                                 seed, len > 64 ? "..." : "", i, seed[i]);
    }
    if (len > CDF_SEED_MAX_DIGITS)
        return cdf_error_set(err, CDF_ERR_LIMIT, "seed \"%.32s...\": %zu digits, at most %d accepted", seed, len,
                             CDF_SEED_MAX_DIGITS);
    /* 10^9 < 2^32, so every 9 digits need at most one word. */
    size_t cap = len / 9 + 2;
    uint32_t *num = cdf_mallocn(cap, sizeof *num); /* [cap] little-endian words of the value */
    if (!num) return cdf_error_set(err, CDF_ERR_NOMEM, "seed \"%.32s\": out of memory parsing it", seed);
    size_t used = 0;
    size_t pos = 0;
    while (pos < len) {
        /* Take up to 9 digits: num = num * 10^k + chunk. */
        size_t k = len - pos < 9 ? len - pos : 9;
        uint32_t chunk = 0, scale = 1;
        for (size_t j = 0; j < k; j++) {
            chunk = chunk * 10u + (uint32_t)(seed[pos + j] - '0');
            scale *= 10u;
        }
        pos += k;
        uint64_t carry = chunk;
        for (size_t w = 0; w < used; w++) {
            uint64_t t = (uint64_t)num[w] * scale + carry;
            num[w] = (uint32_t)t;
            carry = t >> 32;
        }
        if (carry) num[used++] = (uint32_t)carry;
    }
    if (used == 0) num[used++] = 0; /* numpy: 0 -> [0] */
    uint32_t *grown = cdf_realloc(*words, (*n + used) * sizeof *grown);
    if (!grown) {
        cdf_free(num);
        return cdf_error_set(err, CDF_ERR_NOMEM, "seed \"%.32s\": out of memory", seed);
    }
    memcpy(grown + *n, num, used * sizeof *num);
    *words = grown;
    *n += used;
    cdf_free(num);
    return CDF_OK;
}

/* hashmix: the multiplier evolves with every call. */
static uint32_t ss_hashmix(uint32_t value, uint32_t *hash_const) {
    value ^= *hash_const;
    *hash_const *= SS_MULT_A;
    value *= *hash_const;
    value ^= value >> SS_XSHIFT;
    return value;
}

static uint32_t ss_mix(uint32_t x, uint32_t y) {
    uint32_t r = SS_MIX_MULT_L * x - SS_MIX_MULT_R * y;
    r ^= r >> SS_XSHIFT;
    return r;
}

void cdf_seedseq_init(cdf_seedseq *ss, const uint32_t *entropy, size_t n) {
    uint32_t hc = SS_INIT_A;
    uint32_t *pool = ss->pool;
    for (size_t i = 0; i < CDF_SEEDSEQ_POOL_SIZE; i++) pool[i] = ss_hashmix(i < n ? entropy[i] : 0u, &hc);
    for (size_t s = 0; s < CDF_SEEDSEQ_POOL_SIZE; s++)
        for (size_t d = 0; d < CDF_SEEDSEQ_POOL_SIZE; d++)
            if (s != d) pool[d] = ss_mix(pool[d], ss_hashmix(pool[s], &hc));
    for (size_t s = CDF_SEEDSEQ_POOL_SIZE; s < n; s++)
        for (size_t d = 0; d < CDF_SEEDSEQ_POOL_SIZE; d++) pool[d] = ss_mix(pool[d], ss_hashmix(entropy[s], &hc));
}

void cdf_seedseq_generate_u32(const cdf_seedseq *ss, uint32_t *out, size_t n) {
    uint32_t hc = SS_INIT_B;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = ss->pool[i % CDF_SEEDSEQ_POOL_SIZE];
        v ^= hc;
        hc *= SS_MULT_B;
        v *= hc;
        v ^= v >> SS_XSHIFT;
        out[i] = v;
    }
}

void cdf_seedseq_generate_u64(const cdf_seedseq *ss, uint64_t *out, size_t n) {
    /* Same word stream as the uint32 form, taken two at a time (low word first). */
    uint32_t hc = SS_INIT_B;
    for (size_t i = 0; i < 2 * n; i++) {
        uint32_t v = ss->pool[i % CDF_SEEDSEQ_POOL_SIZE];
        v ^= hc;
        hc *= SS_MULT_B;
        v *= hc;
        v ^= v >> SS_XSHIFT;
        if (i % 2 == 0)
            out[i / 2] = v;
        else
            out[i / 2] |= (uint64_t)v << 32;
    }
}
