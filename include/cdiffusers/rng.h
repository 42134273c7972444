/* Random generators bit-exact with Python's: numpy Generator(PCG64) now,
 * torch/Philox/legacy numpy later (issue: other generators).  Bit generators
 * sit behind one small table (src/rng/bitgen.h); distributions are apart. */
#ifndef CDIFFUSERS_RNG_H
#define CDIFFUSERS_RNG_H

#include "cdiffusers/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cdf_rng_kind {
    CDF_RNG_NUMPY = 0 /* np.random.Generator(np.random.PCG64(seed)) */
} cdf_rng_kind;

typedef struct cdf_generator cdf_generator;

/* numpy's bit_generator.state for PCG64 (the 128-bit values split in halves). */
typedef struct cdf_pcg64_state {
    uint64_t state_hi, state_lo; /* 'state': 128-bit LCG state */
    uint64_t inc_hi, inc_lo;     /* 'inc': 128-bit odd increment */
    int has_uint32;              /* 1 when a buffered high half is pending */
    uint32_t uinteger;           /* the buffered half */
} cdf_pcg64_state;

/* New generator seeded like Generator(PCG64(seed)) where `seed` is a decimal
 * non-negative integer of any size ("0", "12345678901234567890").  Caller owns
 * *out and frees it with cdf_generator_free. */
cdf_status cdf_generator_new(cdf_rng_kind kind, const char *seed, cdf_generator **out, cdf_error *err);
/* Same, with list entropy as numpy takes it: PCG64([s0, s1, ...]), each a
 * decimal non-negative integer string.  n >= 1. */
cdf_status cdf_generator_new_list(cdf_rng_kind kind, const char *const *seeds, size_t n,
                                  cdf_generator **out, cdf_error *err);
/* A fresh seed from the OS (getrandom / /dev/urandom), as decimal in buf
 * (at least 24 bytes) so the run can be repeated. */
cdf_status cdf_seed_from_os(char *buf, size_t buflen, cdf_error *err);
/* Frees g (NULL is fine). */
void cdf_generator_free(cdf_generator *g);
/* The kind g was made with. */
cdf_rng_kind cdf_generator_kind(const cdf_generator *g);

/* Full state get/set matching numpy's PCG64 bit_generator.state. */
cdf_status cdf_generator_get_pcg64_state(const cdf_generator *g, cdf_pcg64_state *st, cdf_error *err);
cdf_status cdf_generator_set_pcg64_state(cdf_generator *g, const cdf_pcg64_state *st, cdf_error *err);

/* bit_generator.random_raw(): the next raw 64-bit output. */
uint64_t cdf_generator_next_u64(cdf_generator *g);
/* Generator.random(n) into out (float64 in [0,1)). */
void cdf_generator_random(cdf_generator *g, double *out, size_t n);
/* Generator.standard_normal(n) float64 (256-layer ziggurat). */
void cdf_generator_standard_normal(cdf_generator *g, double *out, size_t n);
/* Generator.standard_normal(n, dtype=np.float32) (numpy's float32 ziggurat). */
void cdf_generator_standard_normal_f32(cdf_generator *g, float *out, size_t n);

/* mindone randn_tensor: draws `shape` (C order) in float64 and casts to dtype
 * (CDF_F64, CDF_F32 or CDF_F16, each a single rounding from float64).
 * gens[0..ngens): ngens == 1 draws the whole shape from gens[0]; otherwise
 * ngens must equal shape[0] and each generator draws a (1, ...) slice in
 * order.  The same handle may appear several times (one stream consumed in
 * turn, like Python's [g] * 4).  out holds numel * sizeof(dtype) bytes. */
cdf_status cdf_randn_tensor(cdf_generator *const *gens, size_t ngens, const int64_t *shape, int ndim,
                            cdf_dtype dtype, void *out, cdf_error *err);

#ifdef __cplusplus
}
#endif
#endif
