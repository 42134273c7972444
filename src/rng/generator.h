/* Library-internal view of a cdf_generator: its kind's state and its bit
 * generator table, for distributions and tests that need more than the public
 * draws. */
#ifndef CDF_RNG_GENERATOR_H
#define CDF_RNG_GENERATOR_H

#include "cdiffusers/rng.h"
#include "rng/bitgen.h"
#include "rng/legacy.h"
#include "rng/pcg64.h"
#include "rng/philox.h"
#include "rng/torch_cpu.h"
#include "rng/torch_cuda.h"

struct cdf_generator {
    cdf_rng_kind kind;
    union {
        cdf_pcg64 pcg;       /* CDF_RNG_NUMPY */
        cdf_torch_cpu tc;    /* CDF_RNG_TORCH_CPU, CDF_RNG_TORCH_CPU_AVX2 */
        cdf_torch_cuda cu;   /* CDF_RNG_TORCH_CUDA */
        cdf_legacy lg;       /* CDF_RNG_NUMPY_LEGACY */
    } u;
    cdf_philox_stream ph;    /* torch-cuda only: subsequence 0 stream behind bg (internal/tests) */
    cdf_bitgen bg;           /* table over the kind's engine (bg.state points into this struct) */
};

/* g's bit generator table (owned by g, valid while g lives); NULL for NULL g.
 * numpy: PCG64; torch: mt19937 as torch draws it; numpy-legacy: mt19937 as
 * numpy draws it; torch-cuda: the Philox stream of CUDA thread 0 from offset 0
 * (independent of the generator's randn offset). */
const cdf_bitgen *cdf_generator_bitgen(const cdf_generator *g);

/* Parses a decimal seed with an optional '-' into its 64-bit two's
 * complement, checking the range min_neg .. max (magnitudes): torch uses
 * 2^63 / 2^64-1, legacy numpy 0 / 2^32-1.  *negative is set when the text has
 * a minus sign and a non-zero value.  CDF_ERR_ARG names the seed and what
 * `who` (e.g. "torch-cpu: torch's manual_seed") accepts. */
cdf_status cdf_seed_parse_int(const char *seed, uint64_t max_neg_mag, uint64_t max_pos, const char *who,
                              uint64_t *value, int *negative, cdf_error *err);

#endif
