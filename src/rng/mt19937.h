/* MT19937 (Matsumoto & Nishimura 1998) with torch's bookkeeping (at::mt19937:
 * left_/next_) and both seedings Python uses: init_genrand (torch's
 * manual_seed on the low 32 bits, RandomState(int)) and init_by_array
 * (RandomState([ints])).  Two bit generator tables: torch's words and numpy
 * legacy's words. */
#ifndef CDF_RNG_MT19937_H
#define CDF_RNG_MT19937_H

#include <stddef.h>
#include <stdint.h>

#include "rng/bitgen.h"

#define CDF_MT_N 624

typedef struct cdf_mt19937 {
    uint32_t state[CDF_MT_N]; /* [624] state words */
    int32_t left;             /* torch left_: words left + 1; 1 = twist before the next word */
    uint32_t next;            /* torch next_: index of the next word to temper (0 .. 624) */
} cdf_mt19937;

/* init_genrand(seed): state[0] = seed, state[j] = 1812433253 * (s ^ s >> 30) + j;
 * left = 1, next = 0 (a twist comes first). */
void cdf_mt19937_seed(cdf_mt19937 *m, uint32_t seed);
/* init_by_array(key[0..n)), n >= 1 (the reference MT19937 routine numpy uses). */
void cdf_mt19937_seed_array(cdf_mt19937 *m, const uint32_t *key, size_t n);
/* Next tempered 32-bit word. */
uint32_t cdf_mt19937_next(cdf_mt19937 *m);
/* numpy's position (0 .. 624, 624 = twist first) of this state. */
int cdf_mt19937_pos(const cdf_mt19937 *m);
/* Sets the position numpy-style (0 <= pos <= 624). */
void cdf_mt19937_set_pos(cdf_mt19937 *m, int pos);

/* torch's CPUGeneratorImpl words: next_u32 = random(), next_u64 = random64()
 * (first word high), next_double = low 53 bits of random64() * 2^-53. */
void cdf_mt19937_bitgen_torch(cdf_mt19937 *m, cdf_bitgen *bg);
/* numpy's legacy words: next_u32 = one word, next_u64 = two words (first
 * high), next_double = ((a >> 5) * 2^26 + (b >> 6)) / 2^53. */
void cdf_mt19937_bitgen_numpy(cdf_mt19937 *m, cdf_bitgen *bg);

#endif
