/* Legacy RandomState draws; see legacy.h. */
#include "rng/legacy.h"

#include <math.h>

#include "rng/rng_math.h"

void cdf_legacy_seed(cdf_legacy *l, uint32_t seed) {
    cdf_mt19937_seed(&l->mt, seed);
    l->has_gauss = 0;
    l->gauss = 0.0;
}

void cdf_legacy_seed_array(cdf_legacy *l, const uint32_t *key, size_t n) {
    cdf_mt19937_seed_array(&l->mt, key, n);
    l->has_gauss = 0;
    l->gauss = 0.0;
}

double cdf_legacy_double(cdf_legacy *l) {
    int32_t a = (int32_t)(cdf_mt19937_next(&l->mt) >> 5);
    int32_t b = (int32_t)(cdf_mt19937_next(&l->mt) >> 6);
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

double cdf_legacy_gauss(cdf_legacy *l) {
    if (l->has_gauss) {
        double v = l->gauss;
        l->has_gauss = 0;
        l->gauss = 0.0;
        return v;
    }
    double x1, x2, r2;
    do {
        x1 = 2.0 * cdf_legacy_double(l) - 1.0;
        x2 = 2.0 * cdf_legacy_double(l) - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    double f = sqrt(-2.0 * cdf_rm_log(r2) / r2); /* polar Box-Muller */
    l->gauss = f * x1;
    l->has_gauss = 1;
    return f * x2;
}
