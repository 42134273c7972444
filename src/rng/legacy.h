/* numpy's legacy RandomState (numpy 1.24: _mt19937.pyx legacy seeding,
 * random/src/legacy/legacy-distributions.c): MT19937 words, 53-bit doubles
 * from two words, and the polar Box-Muller normal with its cached value. */
#ifndef CDF_RNG_LEGACY_H
#define CDF_RNG_LEGACY_H

#include <stddef.h>

#include "rng/mt19937.h"

typedef struct cdf_legacy {
    cdf_mt19937 mt; /* the engine (numpy position = cdf_mt19937_pos) */
    int has_gauss;  /* a cached normal is pending */
    double gauss;   /* the cached normal (0.0 when none) */
} cdf_legacy;

/* RandomState(seed) for 0 <= seed < 2^32 (init_genrand), cache cleared. */
void cdf_legacy_seed(cdf_legacy *l, uint32_t seed);
/* RandomState([k0, k1, ...]) (init_by_array, n >= 1), cache cleared. */
void cdf_legacy_seed_array(cdf_legacy *l, const uint32_t *key, size_t n);
/* random_sample(): ((a >> 5) * 2^26 + (b >> 6)) / 2^53. */
double cdf_legacy_double(cdf_legacy *l);
/* standard_normal(): cached value first, else the polar method. */
double cdf_legacy_gauss(cdf_legacy *l);

#endif
