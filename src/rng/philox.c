/* Philox4x32-10 block function and curand-style stream; see philox.h. */
#include "rng/philox.h"

#define PHILOX_M0 0xD2511F53u /* multiplies counter word 0 */
#define PHILOX_M1 0xCD9E8D57u /* multiplies counter word 2 */
#define PHILOX_W0 0x9E3779B9u /* key bumps (golden ratio, sqrt(3) - 1) */
#define PHILOX_W1 0xBB67AE85u

void cdf_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* ctr += n (128-bit, n < 2^64). */
static void ctr_add(uint32_t ctr[4], uint64_t n) {
    uint64_t lo = (uint64_t)ctr[0] + (uint32_t)n;
    uint64_t hi = (uint64_t)ctr[1] + (uint32_t)(n >> 32) + (lo >> 32);
    ctr[0] = (uint32_t)lo;
    ctr[1] = (uint32_t)hi;
    if (hi >> 32) {
        if (++ctr[2] == 0) ++ctr[3];
    }
}

void cdf_philox_stream_init(cdf_philox_stream *s, uint64_t seed, uint64_t subsequence, uint64_t offset) {
    s->key[0] = (uint32_t)seed;
    s->key[1] = (uint32_t)(seed >> 32);
    s->ctr[0] = s->ctr[1] = 0;
    s->ctr[2] = (uint32_t)subsequence;
    s->ctr[3] = (uint32_t)(subsequence >> 32);
    s->lane = (unsigned)(offset & 3u);
    ctr_add(s->ctr, offset >> 2);
    cdf_philox4x32_10(s->ctr, s->key, s->out);
}

uint32_t cdf_philox_stream_next(cdf_philox_stream *s) {
    uint32_t w = s->out[s->lane++];
    if (s->lane == 4) {
        ctr_add(s->ctr, 1);
        cdf_philox4x32_10(s->ctr, s->key, s->out);
        s->lane = 0;
    }
    return w;
}

void cdf_philox_stream_next4(cdf_philox_stream *s, uint32_t out[4]) {
    for (int i = 0; i < 4; i++) out[i] = cdf_philox_stream_next(s);
}

static uint32_t ph_u32(void *s) { return cdf_philox_stream_next(s); }

static uint64_t ph_u64(void *s) {
    uint64_t hi = cdf_philox_stream_next(s);
    return (hi << 32) | cdf_philox_stream_next(s);
}

static double ph_double(void *s) { return (double)(ph_u64(s) & ((1ULL << 53) - 1)) * (1.0 / 9007199254740992.0); }

void cdf_philox_bitgen(cdf_philox_stream *s, cdf_bitgen *bg) {
    bg->state = s;
    bg->next_u64 = ph_u64;
    bg->next_u32 = ph_u32;
    bg->next_double = ph_double;
}
