/* PCG64 state stepping and output, numpy-compatible. */
#include "rng/pcg64.h"

/* 0x2360ed051fc65da44385df649fccf645, the PCG default 128-bit multiplier. */
#define PCG_MULT_HI 0x2360ed051fc65da4ULL
#define PCG_MULT_LO 0x4385df649fccf645ULL

static void pcg_step(cdf_pcg64 *p) {
    p->state = cdf_u128_add(cdf_u128_mul(p->state, cdf_u128_make(PCG_MULT_HI, PCG_MULT_LO)), p->inc);
}

void cdf_pcg64_seed(cdf_pcg64 *p, const uint64_t s[4]) {
    cdf_u128 initstate = cdf_u128_make(s[0], s[1]);
    /* inc = (initseq << 1) | 1 */
    p->inc = cdf_u128_make((s[2] << 1) | (s[3] >> 63), (s[3] << 1) | 1u);
    p->state = cdf_u128_make(0, 0);
    pcg_step(p);
    p->state = cdf_u128_add(p->state, initstate);
    pcg_step(p);
    p->has_uint32 = 0;
    p->uinteger = 0;
}

uint64_t cdf_pcg64_next_u64(cdf_pcg64 *p) {
    pcg_step(p);
    uint64_t x = p->state.hi ^ p->state.lo;
    unsigned rot = (unsigned)(p->state.hi >> 58);
    return (x >> rot) | (x << ((64u - rot) & 63u));
}

uint32_t cdf_pcg64_next_u32(cdf_pcg64 *p) {
    if (p->has_uint32) {
        p->has_uint32 = 0;
        return p->uinteger;
    }
    uint64_t w = cdf_pcg64_next_u64(p);
    p->has_uint32 = 1;
    p->uinteger = (uint32_t)(w >> 32);
    return (uint32_t)w;
}

double cdf_pcg64_next_double(cdf_pcg64 *p) {
    return (double)(cdf_pcg64_next_u64(p) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t tbl_next_u64(void *s) { return cdf_pcg64_next_u64(s); }
static uint32_t tbl_next_u32(void *s) { return cdf_pcg64_next_u32(s); }
static double tbl_next_double(void *s) { return cdf_pcg64_next_double(s); }

void cdf_pcg64_bitgen(cdf_pcg64 *p, cdf_bitgen *bg) {
    bg->state = p;
    bg->next_u64 = tbl_next_u64;
    bg->next_u32 = tbl_next_u32;
    bg->next_double = tbl_next_double;
}
