/* MT19937 state handling; see mt19937.h. */
#include "rng/mt19937.h"

#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu

static uint32_t twist(uint32_t u, uint32_t v) {
    return (((u & MT_UPPER) | (v & MT_LOWER)) >> 1) ^ ((v & 1u) ? MT_MATRIX_A : 0u);
}

static void next_state(cdf_mt19937 *m) {
    uint32_t *s = m->state;
    int k;
    for (k = 0; k < CDF_MT_N - MT_M; k++) s[k] = s[k + MT_M] ^ twist(s[k], s[k + 1]);
    for (; k < CDF_MT_N - 1; k++) s[k] = s[k + MT_M - CDF_MT_N] ^ twist(s[k], s[k + 1]);
    s[CDF_MT_N - 1] = s[MT_M - 1] ^ twist(s[CDF_MT_N - 1], s[0]);
    m->left = CDF_MT_N;
    m->next = 0;
}

void cdf_mt19937_seed(cdf_mt19937 *m, uint32_t seed) {
    m->state[0] = seed;
    for (uint32_t j = 1; j < CDF_MT_N; j++) m->state[j] = 1812433253u * (m->state[j - 1] ^ (m->state[j - 1] >> 30)) + j;
    m->left = 1;
    m->next = 0;
}

void cdf_mt19937_seed_array(cdf_mt19937 *m, const uint32_t *key, size_t n) {
    uint32_t *s = m->state;
    cdf_mt19937_seed(m, 19650218u);
    size_t i = 1, j = 0;
    for (size_t k = CDF_MT_N > n ? CDF_MT_N : n; k; k--) {
        s[i] = (s[i] ^ ((s[i - 1] ^ (s[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= CDF_MT_N) {
            s[0] = s[CDF_MT_N - 1];
            i = 1;
        }
        if (j >= n) j = 0;
    }
    for (size_t k = CDF_MT_N - 1; k; k--) {
        s[i] = (s[i] ^ ((s[i - 1] ^ (s[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= CDF_MT_N) {
            s[0] = s[CDF_MT_N - 1];
            i = 1;
        }
    }
    s[0] = 0x80000000u; /* non-zero initial array */
    m->left = 1;
    m->next = 0;
}

uint32_t cdf_mt19937_next(cdf_mt19937 *m) {
    if (--m->left == 0) next_state(m);
    uint32_t y = m->state[m->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

int cdf_mt19937_pos(const cdf_mt19937 *m) { return m->left <= 1 ? CDF_MT_N : (int)m->next; }

void cdf_mt19937_set_pos(cdf_mt19937 *m, int pos) {
    m->next = (uint32_t)pos;
    m->left = CDF_MT_N + 1 - pos; /* pos 624 -> left 1: twist first */
}

static uint32_t mt_u32(void *s) { return cdf_mt19937_next(s); }

static uint64_t mt_u64(void *s) {
    uint64_t hi = cdf_mt19937_next(s);
    return (hi << 32) | cdf_mt19937_next(s);
}

static double torch_double(void *s) { return (double)(mt_u64(s) & ((1ULL << 53) - 1)) * (1.0 / 9007199254740992.0); }

static double numpy_double(void *s) {
    int32_t a = (int32_t)(cdf_mt19937_next(s) >> 5), b = (int32_t)(cdf_mt19937_next(s) >> 6);
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

void cdf_mt19937_bitgen_torch(cdf_mt19937 *m, cdf_bitgen *bg) {
    bg->state = m;
    bg->next_u64 = mt_u64;
    bg->next_u32 = mt_u32;
    bg->next_double = torch_double;
}

void cdf_mt19937_bitgen_numpy(cdf_mt19937 *m, cdf_bitgen *bg) {
    bg->state = m;
    bg->next_u64 = mt_u64;
    bg->next_u32 = mt_u32;
    bg->next_double = numpy_double;
}
