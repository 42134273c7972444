/* PCG64 (pcg setseq_128_xsl_rr_64) exactly as numpy.random.PCG64. */
#ifndef CDF_RNG_PCG64_H
#define CDF_RNG_PCG64_H

#include <stdint.h>

#include "rng/bitgen.h"
#include "rng/u128.h"

typedef struct cdf_pcg64 {
    cdf_u128 state;    /* 128-bit LCG state */
    cdf_u128 inc;      /* 128-bit increment (odd after seeding) */
    int has_uint32;    /* 1 when uinteger holds a pending high half */
    uint32_t uinteger; /* buffered high half for next_u32 */
} cdf_pcg64;

/* Seeds p from s = SeedSequence.generate_state(4, np.uint64) as numpy does:
 * initstate = s[0]:s[1], initseq = s[2]:s[3]; clears the 32-bit buffer. */
void cdf_pcg64_seed(cdf_pcg64 *p, const uint64_t s[4]);
/* Next raw 64-bit output (state advances first, then XSL-RR of the new state). */
uint64_t cdf_pcg64_next_u64(cdf_pcg64 *p);
/* numpy's next_uint32: low half of a fresh word, its high half on the next call. */
uint32_t cdf_pcg64_next_u32(cdf_pcg64 *p);
/* (next_u64 >> 11) * 2^-53. */
double cdf_pcg64_next_double(cdf_pcg64 *p);
/* Fills bg with p's table (bg->state = p, not owned). */
void cdf_pcg64_bitgen(cdf_pcg64 *p, cdf_bitgen *bg);

#endif
