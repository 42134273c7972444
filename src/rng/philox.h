/* Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as
 * easy as 1, 2, 3", SC'11) and curand's Philox stream state as torch's CUDA
 * kernels use it (curand_init(seed, subsequence, offset), curand, curand4). */
#ifndef CDF_RNG_PHILOX_H
#define CDF_RNG_PHILOX_H

#include <stdint.h>

#include "rng/bitgen.h"

/* out = Philox4x32-10(ctr, key): ten rounds, the key bumped between rounds. */
void cdf_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* curandStatePhilox4_32_10_t without the Box-Muller caches. */
typedef struct cdf_philox_stream {
    uint32_t ctr[4]; /* 128-bit counter, word 0 lowest */
    uint32_t key[2]; /* seed low, seed high */
    uint32_t out[4]; /* Philox output of ctr */
    unsigned lane;   /* curand's STATE: next word of out (0 .. 3) */
} cdf_philox_stream;

/* curand_init(seed, subsequence, offset): counter (0, 0, subsequence lo, hi),
 * then skipped ahead by offset 32-bit draws. */
void cdf_philox_stream_init(cdf_philox_stream *s, uint64_t seed, uint64_t subsequence, uint64_t offset);
/* curand(): next 32-bit word. */
uint32_t cdf_philox_stream_next(cdf_philox_stream *s);
/* curand4(): the next four words (a whole block when lane is 0). */
void cdf_philox_stream_next4(cdf_philox_stream *s, uint32_t out[4]);
/* Table over s: next_u32 = curand(), next_u64 = two words (first high),
 * next_double = low 53 bits of next_u64 * 2^-53. */
void cdf_philox_bitgen(cdf_philox_stream *s, cdf_bitgen *bg);

#endif
