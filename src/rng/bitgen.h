/* One small table per bit generator (PCG64, MT19937 as torch and as numpy's
 * RandomState draw it, curand's Philox4x32-10 stream): distributions draw only
 * through these pointers. */
#ifndef CDF_RNG_BITGEN_H
#define CDF_RNG_BITGEN_H

#include <stdint.h>

typedef struct cdf_bitgen {
    void *state;                        /* the generator's own state (not owned) */
    uint64_t (*next_u64)(void *state);  /* next raw 64-bit word */
    uint32_t (*next_u32)(void *state);  /* next 32 bits (numpy: low half, then buffered high half) */
    double (*next_double)(void *state); /* (next_u64 >> 11) * 2^-53, in [0, 1) */
} cdf_bitgen;

#endif
