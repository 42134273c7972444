/* Distributions drawn through a cdf_bitgen table, bit-exact with numpy 1.24's
 * Generator (numpy/random/src/distributions/distributions.c semantics). */
#ifndef CDF_RNG_DISTRIBUTIONS_H
#define CDF_RNG_DISTRIBUTIONS_H

#include <stddef.h>

#include "rng/bitgen.h"

/* Generator.random(): next_double, in [0, 1). */
double cdf_dist_random(const cdf_bitgen *bg);
/* (next_u32 >> 8) * 2^-24, numpy 1.24's next_float (Generator.random(dtype=float32)). */
float cdf_dist_random_f32(const cdf_bitgen *bg);
/* One float64 standard normal (256-layer ziggurat, wedge and tail paths). */
double cdf_dist_standard_normal(const cdf_bitgen *bg);
/* One float32 standard normal (numpy's float32 ziggurat on next_u32). */
float cdf_dist_standard_normal_f32(const cdf_bitgen *bg);

/* Bulk forms, out[n] in draw order. */
void cdf_dist_random_fill(const cdf_bitgen *bg, double *out, size_t n);
void cdf_dist_standard_normal_fill(const cdf_bitgen *bg, double *out, size_t n);
void cdf_dist_standard_normal_fill_f32(const cdf_bitgen *bg, float *out, size_t n);

#endif
