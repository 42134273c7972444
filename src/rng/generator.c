/* Public generator handles: numpy Generator(PCG64(seed)) seeding, state
 * get/set, draws, OS seeds and mindone's randn_tensor. */
#include "rng/generator.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rng/distributions.h"
#include "rng/pcg64.h"
#include "rng/seedseq.h"
#include "tensor/half.h"

#if defined(__has_include)
#if __has_include(<sys/random.h>)
#include <sys/random.h>
#define CDF_HAVE_GETRANDOM 1
#endif
#endif

struct cdf_generator {
    cdf_rng_kind kind;
    cdf_pcg64 pcg;  /* CDF_RNG_NUMPY state */
    cdf_bitgen bg;  /* table over pcg (bg.state points into this struct) */
};

cdf_status cdf_generator_new_list(cdf_rng_kind kind, const char *const *seeds, size_t n, cdf_generator **out,
                                  cdf_error *err) {
    if (!out) return cdf_error_set(err, CDF_ERR_ARG, "generator: NULL output pointer");
    *out = NULL;
    if (kind != CDF_RNG_NUMPY) return cdf_error_set(err, CDF_ERR_ARG, "generator kind %d: unknown", (int)kind);
    if (!seeds || n == 0) return cdf_error_set(err, CDF_ERR_ARG, "generator seed list: empty (need at least one seed)");
    uint32_t *words = NULL; /* [nwords] entropy, each seed's words concatenated */
    size_t nwords = 0;
    for (size_t i = 0; i < n; i++) {
        cdf_status st = cdf_seed_words_append(seeds[i], &words, &nwords, err);
        if (st != CDF_OK) {
            cdf_free(words);
            if (n > 1) cdf_error_prefix(err, "generator seed list element %zu", i);
            return st;
        }
    }
    cdf_generator *g = cdf_calloc(1, sizeof *g);
    if (!g) {
        cdf_free(words);
        return cdf_error_set(err, CDF_ERR_NOMEM, "generator: out of memory");
    }
    cdf_seedseq ss;
    cdf_seedseq_init(&ss, words, nwords);
    cdf_free(words);
    uint64_t s[4];
    cdf_seedseq_generate_u64(&ss, s, 4);
    g->kind = kind;
    cdf_pcg64_seed(&g->pcg, s);
    cdf_pcg64_bitgen(&g->pcg, &g->bg);
    *out = g;
    return CDF_OK;
}

cdf_status cdf_generator_new(cdf_rng_kind kind, const char *seed, cdf_generator **out, cdf_error *err) {
    /* numpy: an int seed and the one-element list [seed] give the same entropy words */
    return cdf_generator_new_list(kind, &seed, 1, out, err);
}

void cdf_generator_free(cdf_generator *g) { cdf_free(g); }

cdf_rng_kind cdf_generator_kind(const cdf_generator *g) { return g ? g->kind : CDF_RNG_NUMPY; }

const cdf_bitgen *cdf_generator_bitgen(const cdf_generator *g) { return g ? &g->bg : NULL; }

static int read_os_random(void *buf, size_t len) {
    unsigned char *p = buf;
    size_t got = 0;
#ifdef CDF_HAVE_GETRANDOM
    while (got < len) {
        ssize_t r = getrandom(p + got, len - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            break;
        }
        got += (size_t)r;
    }
    if (got == len) return 0;
    got = 0;
#endif
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f) return -1;
    got = fread(p, 1, len, f);
    fclose(f);
    return got == len ? 0 : -1;
}

cdf_status cdf_seed_from_os(char *buf, size_t buflen, cdf_error *err) {
    if (!buf || buflen < 24) return cdf_error_set(err, CDF_ERR_ARG, "seed buffer: need at least 24 bytes, got %zu", buf ? buflen : 0);
    uint64_t v;
    if (read_os_random(&v, sizeof v) != 0)
        return cdf_error_set(err, CDF_ERR_IO, "/dev/urandom: cannot read random bytes for a seed");
    snprintf(buf, buflen, "%" PRIu64, v);
    return CDF_OK;
}

cdf_status cdf_generator_get_pcg64_state(const cdf_generator *g, cdf_pcg64_state *st, cdf_error *err) {
    if (!g || !st) return cdf_error_set(err, CDF_ERR_ARG, "generator state: NULL generator or state");
    if (g->kind != CDF_RNG_NUMPY)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "generator state: kind %d is not PCG64", (int)g->kind);
    st->state_hi = g->pcg.state.hi;
    st->state_lo = g->pcg.state.lo;
    st->inc_hi = g->pcg.inc.hi;
    st->inc_lo = g->pcg.inc.lo;
    st->has_uint32 = g->pcg.has_uint32;
    st->uinteger = g->pcg.uinteger;
    return CDF_OK;
}

cdf_status cdf_generator_set_pcg64_state(cdf_generator *g, const cdf_pcg64_state *st, cdf_error *err) {
    if (!g || !st) return cdf_error_set(err, CDF_ERR_ARG, "generator state: NULL generator or state");
    if (g->kind != CDF_RNG_NUMPY)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "generator state: kind %d is not PCG64", (int)g->kind);
    /* numpy stores state and inc as given (even an even inc) */
    g->pcg.state = cdf_u128_make(st->state_hi, st->state_lo);
    g->pcg.inc = cdf_u128_make(st->inc_hi, st->inc_lo);
    g->pcg.has_uint32 = st->has_uint32 != 0;
    g->pcg.uinteger = st->uinteger;
    return CDF_OK;
}

uint64_t cdf_generator_next_u64(cdf_generator *g) { return g ? g->bg.next_u64(g->bg.state) : 0; }

void cdf_generator_random(cdf_generator *g, double *out, size_t n) {
    if (g && out) cdf_dist_random_fill(&g->bg, out, n);
}

void cdf_generator_standard_normal(cdf_generator *g, double *out, size_t n) {
    if (g && out) cdf_dist_standard_normal_fill(&g->bg, out, n);
}

void cdf_generator_standard_normal_f32(cdf_generator *g, float *out, size_t n) {
    if (g && out) cdf_dist_standard_normal_fill_f32(&g->bg, out, n);
}

/* Draws n float64 normals from g and stores them as dtype at dst (any alignment). */
static void randn_into(cdf_generator *g, cdf_dtype dtype, unsigned char *dst, size_t n) {
    double chunk[256]; /* [256] float64 draws awaiting the cast */
    size_t es = cdf_dtype_size(dtype);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < 256 ? n - done : 256;
        cdf_dist_standard_normal_fill(&g->bg, chunk, k);
        unsigned char *p = dst + done * es;
        for (size_t i = 0; i < k; i++) {
            if (dtype == CDF_F64) {
                memcpy(p + 8 * i, &chunk[i], 8);
            } else if (dtype == CDF_F32) {
                float f = (float)chunk[i];
                memcpy(p + 4 * i, &f, 4);
            } else {
                uint16_t h = cdf_f64_to_f16(chunk[i]);
                memcpy(p + 2 * i, &h, 2);
            }
        }
        done += k;
    }
}

cdf_status cdf_randn_tensor(cdf_generator *const *gens, size_t ngens, const int64_t *shape, int ndim, cdf_dtype dtype,
                            void *out, cdf_error *err) {
    if (!gens || ngens == 0) return cdf_error_set(err, CDF_ERR_ARG, "randn_tensor: no generator given");
    for (size_t i = 0; i < ngens; i++)
        if (!gens[i]) return cdf_error_set(err, CDF_ERR_ARG, "randn_tensor: generator %zu is NULL", i);
    if (ndim < 0 || ndim > CDF_MAX_DIMS || (ndim > 0 && !shape))
        return cdf_error_set(err, CDF_ERR_ARG, "randn_tensor: bad shape (ndim %d)", ndim);
    if (dtype != CDF_F64 && dtype != CDF_F32 && dtype != CDF_F16)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "randn_tensor: dtype %s (want float64, float32 or float16)",
                             cdf_dtype_name(dtype));
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return cdf_error_set(err, CDF_ERR_SHAPE, "randn_tensor: shape[%d] = %" PRId64 " is negative", d, shape[d]);
        if (shape[d] > 0 && numel > SIZE_MAX / 8 / (size_t)shape[d])
            return cdf_error_set(err, CDF_ERR_LIMIT, "randn_tensor: shape too large (dim %d)", d);
        numel *= (size_t)shape[d];
    }
    if (ngens != 1) {
        if (ndim == 0 || (uint64_t)shape[0] != (uint64_t)ngens)
            return cdf_error_set(err, CDF_ERR_ARG,
                                 "randn_tensor: %zu generators but batch size (shape[0]) is %" PRId64
                                 " (give one generator or one per batch entry)",
                                 ngens, ndim > 0 ? shape[0] : (int64_t)0);
    }
    if (numel > 0 && !out) return cdf_error_set(err, CDF_ERR_ARG, "randn_tensor: NULL output buffer");
    for (size_t i = 0; i < ngens; i++) {
        if (gens[i]->kind != CDF_RNG_NUMPY)
            return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "randn_tensor: generator %zu has unsupported kind %d", i,
                                 (int)gens[i]->kind);
    }
    if (numel == 0) return CDF_OK;
    size_t per = numel / ngens; /* elements per generator: the whole tensor, or one (1, ...) slice */
    unsigned char *dst = out;
    size_t es = cdf_dtype_size(dtype);
    for (size_t i = 0; i < ngens; i++) randn_into(gens[i], dtype, dst + i * per * es, per);
    return CDF_OK;
}
