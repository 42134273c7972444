/* Library-internal view of a cdf_generator: its bit generator table, for
 * distributions and tests that need more than the public draws. */
#ifndef CDF_RNG_GENERATOR_H
#define CDF_RNG_GENERATOR_H

#include "cdiffusers/rng.h"
#include "rng/bitgen.h"

/* g's bit generator table (owned by g, valid while g lives); NULL for NULL g. */
const cdf_bitgen *cdf_generator_bitgen(const cdf_generator *g);

#endif
