/* Uniform and standard normal draws matching numpy's Generator bit for bit.
 * The normal uses Marsaglia & Tsang's ziggurat with numpy's 256-layer tables:
 * layer 0 is the base strip (tail beyond r), layers 1..255 are rectangles whose
 * right parts (wedges) are accepted against exp(-x^2/2). */
#include "rng/distributions.h"

#include <math.h>

#include "rng/ziggurat_tables.h"

double cdf_dist_random(const cdf_bitgen *bg) { return bg->next_double(bg->state); }

float cdf_dist_random_f32(const cdf_bitgen *bg) {
    /* numpy 1.24: 24 bits, (u32 >> 8) * 2^-24 (later numpy versions differ) */
    return (float)(bg->next_u32(bg->state) >> 8) * (1.0f / 16777216.0f);
}

/* Tail beyond r (Marsaglia's exponential method); the sign comes from bit 8
 * of the |x| bits of the first word, as numpy does. */
static double normal_tail(const cdf_bitgen *bg, uint64_t rabs) {
    for (;;) {
        /* log1p(-u) = log(1 - u): never log(0) since u < 1 */
        double xx = -cdf_zig_nor_inv_r * log1p(-bg->next_double(bg->state));
        double yy = -log1p(-bg->next_double(bg->state));
        if (yy + yy > xx * xx) return ((rabs >> 8) & 1u) ? -(cdf_zig_nor_r + xx) : cdf_zig_nor_r + xx;
    }
}

double cdf_dist_standard_normal(const cdf_bitgen *bg) {
    for (;;) {
        /* word layout: bits 0..7 layer, bit 8 sign, bits 9..60 |x| mantissa */
        uint64_t r = bg->next_u64(bg->state);
        unsigned layer = (unsigned)(r & 0xffu);
        int negative = (int)((r >> 8) & 1u);
        uint64_t rabs = (r >> 9) & 0x000fffffffffffffULL;
        double x = (double)rabs * cdf_zig_wi_double[layer];
        if (negative) x = -x;
        if (rabs < cdf_zig_ki_double[layer]) return x; /* inside the rectangle */
        if (layer == 0) return normal_tail(bg, rabs);
        double lo = cdf_zig_fi_double[layer], hi = cdf_zig_fi_double[layer - 1];
        double y = (hi - lo) * bg->next_double(bg->state) + lo;
        if (y < exp(-0.5 * x * x)) return x; /* under the curve in the wedge */
        /* rejected: start over with a fresh word */
    }
}

static float normal_tail_f32(const cdf_bitgen *bg, uint32_t rabs) {
    for (;;) {
        float xx = -cdf_zig_nor_inv_r_f * log1pf(-cdf_dist_random_f32(bg));
        float yy = -log1pf(-cdf_dist_random_f32(bg));
        if (yy + yy > xx * xx) return ((rabs >> 8) & 1u) ? -(cdf_zig_nor_r_f + xx) : cdf_zig_nor_r_f + xx;
    }
}

float cdf_dist_standard_normal_f32(const cdf_bitgen *bg) {
    for (;;) {
        /* word layout: bits 0..7 layer, bit 8 sign, bits 9..31 |x| mantissa */
        uint32_t r = bg->next_u32(bg->state);
        unsigned layer = r & 0xffu;
        int negative = (int)((r >> 8) & 1u);
        uint32_t rabs = (r >> 9) & 0x007fffffu;
        float x = (float)rabs * cdf_zig_wi_float[layer];
        if (negative) x = -x;
        if (rabs < cdf_zig_ki_float[layer]) return x;
        if (layer == 0) return normal_tail_f32(bg, rabs);
        float lo = cdf_zig_fi_float[layer], hi = cdf_zig_fi_float[layer - 1];
        float y = (hi - lo) * cdf_dist_random_f32(bg) + lo;
        /* numpy compares the float wedge height with a double exp */
        double xd = (double)x;
        if ((double)y < exp(-0.5 * xd * xd)) return x;
    }
}

void cdf_dist_random_fill(const cdf_bitgen *bg, double *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = bg->next_double(bg->state);
}

void cdf_dist_standard_normal_fill(const cdf_bitgen *bg, double *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = cdf_dist_standard_normal(bg);
}

void cdf_dist_standard_normal_fill_f32(const cdf_bitgen *bg, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = cdf_dist_standard_normal_f32(bg);
}
