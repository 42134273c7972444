/* Public generator handles: seeding for every kind (numpy's PCG64 entropy,
 * torch's manual_seed, RandomState's seedings), re-seeding, and the simple
 * draws.  State get/set is in generator_state.c, randn_tensor in randn.c. */
#include "rng/generator.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "rng/distributions.h"
#include "rng/seedseq.h"

/* Points g->bg at g's engine (after seeding or copying). */
static void bind_bitgen(cdf_generator *g) {
    switch (g->kind) {
    case CDF_RNG_NUMPY: cdf_pcg64_bitgen(&g->u.pcg, &g->bg); break;
    case CDF_RNG_TORCH_CPU:
    case CDF_RNG_TORCH_CPU_AVX2: cdf_mt19937_bitgen_torch(&g->u.tc.mt, &g->bg); break;
    case CDF_RNG_NUMPY_LEGACY: cdf_mt19937_bitgen_numpy(&g->u.lg.mt, &g->bg); break;
    case CDF_RNG_TORCH_CUDA: cdf_philox_bitgen(&g->ph, &g->bg); break;
    }
}

/* numpy: list entropy through SeedSequence into PCG64. */
static cdf_status seed_numpy(cdf_generator *g, const char *const *seeds, size_t n, cdf_error *err) {
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
    cdf_seedseq ss;
    cdf_seedseq_init(&ss, words, nwords);
    cdf_free(words);
    uint64_t s[4];
    cdf_seedseq_generate_u64(&ss, s, 4);
    cdf_pcg64_seed(&g->u.pcg, s);
    return CDF_OK;
}

/* numpy-legacy: one int seed -> init_genrand; a list -> init_by_array. */
static cdf_status seed_legacy(cdf_generator *g, const char *const *seeds, size_t n, int list, cdf_error *err) {
    uint32_t one;
    uint32_t *key = n == 1 ? &one : cdf_mallocn(n, sizeof *key); /* [n] init_by_array key */
    if (!key) return cdf_error_set(err, CDF_ERR_NOMEM, "numpy-legacy seed list: out of memory");
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        int neg;
        cdf_status st = cdf_seed_parse_int(seeds[i], 0, 0xffffffffu,
                                           "numpy-legacy (RandomState, else ValueError: Seed must be between 0 and "
                                           "2**32 - 1)",
                                           &v, &neg, err);
        if (st != CDF_OK) {
            if (key != &one) cdf_free(key);
            if (n > 1) cdf_error_prefix(err, "generator seed list element %zu", i);
            return st;
        }
        key[i] = (uint32_t)v;
    }
    if (list)
        cdf_legacy_seed_array(&g->u.lg, key, n);
    else
        cdf_legacy_seed(&g->u.lg, key[0]);
    if (key != &one) cdf_free(key);
    return CDF_OK;
}

/* Seeds a generator of g->kind (options already in place) from seeds[0..n);
 * list: the seeds came as a list.  Notices go to err. */
static cdf_status seed_into(cdf_generator *g, const char *const *seeds, size_t n, int list, cdf_error *err) {
    if (!seeds || n == 0) return cdf_error_set(err, CDF_ERR_ARG, "generator seed list: empty (need at least one seed)");
    for (size_t i = 0; i < n; i++)
        if (!seeds[i]) return cdf_error_set(err, CDF_ERR_ARG, "seed: NULL seed string");
    cdf_status st = CDF_OK;
    switch (g->kind) {
    case CDF_RNG_NUMPY: st = seed_numpy(g, seeds, n, err); break;
    case CDF_RNG_NUMPY_LEGACY: st = seed_legacy(g, seeds, n, list, err); break;
    case CDF_RNG_TORCH_CPU:
    case CDF_RNG_TORCH_CPU_AVX2:
    case CDF_RNG_TORCH_CUDA: {
        if (n != 1)
            return cdf_error_set(err, CDF_ERR_ARG, "%s seed list: torch generators take one integer seed, got %zu",
                                 cdf_rng_kind_name(g->kind), n);
        cdf_seed_info info;
        st = cdf_rng_seed_info(g->kind, seeds[0], &info, err);
        if (st != CDF_OK) return st;
        if (g->kind == CDF_RNG_TORCH_CUDA) {
            g->u.cu.seed = info.initial_seed;
            g->u.cu.offset = 0; /* manual_seed resets philox_offset_per_thread */
        } else {
            int avx2 = g->kind == CDF_RNG_TORCH_CPU_AVX2;
            cdf_torch_cpu_seed(&g->u.tc, info.initial_seed);
            g->u.tc.avx2 = avx2;
        }
        if (info.reduced) cdf_notice(err, CDF_NOTICE_WARN, "%s", info.notice);
        break;
    }
    }
    if (st != CDF_OK) return st;
    if (g->kind == CDF_RNG_TORCH_CUDA) cdf_philox_stream_init(&g->ph, g->u.cu.seed, 0, 0);
    bind_bitgen(g);
    return CDF_OK;
}

static cdf_status check_cuda_options(const cdf_cuda_options *opt, uint32_t *sm, uint32_t *tps, cdf_error *err) {
    *sm = opt ? opt->sm_count : 0;
    *tps = opt && opt->threads_per_sm ? opt->threads_per_sm : 2048;
    if (*tps < 256 || *tps > 4096 || *tps % 256 != 0)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "torch-cuda threads_per_sm %" PRIu32 ": must be a multiple of 256 in 256 .. 4096", *tps);
    if (*sm > 65536)
        return cdf_error_set(err, CDF_ERR_ARG, "torch-cuda sm_count %" PRIu32 ": at most 65536", *sm);
    return CDF_OK;
}

static cdf_status make(cdf_rng_kind kind, const char *const *seeds, size_t n, int list, const cdf_cuda_options *opt,
                       cdf_generator **out, cdf_error *err) {
    if (!out) return cdf_error_set(err, CDF_ERR_ARG, "generator: NULL output pointer");
    *out = NULL;
    if ((unsigned)kind >= CDF_RNG_KIND_COUNT) return cdf_error_set(err, CDF_ERR_ARG, "generator kind %d: unknown", (int)kind);
    uint32_t sm = 0, tps = 0;
    if (kind == CDF_RNG_TORCH_CUDA) {
        cdf_status st = check_cuda_options(opt, &sm, &tps, err);
        if (st != CDF_OK) return st;
    }
    cdf_generator *g = cdf_calloc(1, sizeof *g);
    if (!g) return cdf_error_set(err, CDF_ERR_NOMEM, "generator: out of memory");
    g->kind = kind;
    if (kind == CDF_RNG_TORCH_CUDA) {
        g->u.cu.sm_count = sm;
        g->u.cu.threads_per_sm = tps;
    }
    cdf_status st = seed_into(g, seeds, n, list, err);
    if (st != CDF_OK) {
        cdf_free(g);
        return st;
    }
    *out = g;
    return CDF_OK;
}

cdf_status cdf_generator_new_list(cdf_rng_kind kind, const char *const *seeds, size_t n, cdf_generator **out,
                                  cdf_error *err) {
    return make(kind, seeds, n, 1, NULL, out, err);
}

cdf_status cdf_generator_new(cdf_rng_kind kind, const char *seed, cdf_generator **out, cdf_error *err) {
    /* numpy: an int seed and the one-element list [seed] give the same entropy words */
    return make(kind, &seed, 1, 0, NULL, out, err);
}

cdf_status cdf_generator_new_torch_cuda(const char *seed, const cdf_cuda_options *opt, cdf_generator **out,
                                        cdf_error *err) {
    return make(CDF_RNG_TORCH_CUDA, &seed, 1, 0, opt, out, err);
}

cdf_status cdf_generator_reseed(cdf_generator *g, const char *seed, cdf_error *err) {
    if (!g) return cdf_error_set(err, CDF_ERR_ARG, "generator reseed: NULL generator");
    cdf_generator *tmp = cdf_malloc(sizeof *tmp); /* seeded aside: g stays unchanged on error */
    if (!tmp) return cdf_error_set(err, CDF_ERR_NOMEM, "generator reseed: out of memory");
    memcpy(tmp, g, sizeof *tmp);
    cdf_status st = seed_into(tmp, &seed, 1, 0, err);
    if (st == CDF_OK) {
        memcpy(g, tmp, sizeof *g);
        bind_bitgen(g); /* the table must point into g, not tmp */
    }
    cdf_free(tmp);
    return st;
}

void cdf_generator_free(cdf_generator *g) { cdf_free(g); }

cdf_rng_kind cdf_generator_kind(const cdf_generator *g) { return g ? g->kind : CDF_RNG_NUMPY; }

const cdf_bitgen *cdf_generator_bitgen(const cdf_generator *g) { return g ? &g->bg : NULL; }

/* ---- simple draws ---- */

static int is_torch_cpu(const cdf_generator *g) {
    return g->kind == CDF_RNG_TORCH_CPU || g->kind == CDF_RNG_TORCH_CPU_AVX2;
}

uint64_t cdf_generator_next_u64(cdf_generator *g) {
    if (!g) return 0;
    switch (g->kind) {
    case CDF_RNG_NUMPY: return g->bg.next_u64(g->bg.state);
    case CDF_RNG_TORCH_CPU:
    case CDF_RNG_TORCH_CPU_AVX2: return cdf_torch_cpu_random(&g->u.tc);
    case CDF_RNG_NUMPY_LEGACY: return cdf_mt19937_next(&g->u.lg.mt);
    case CDF_RNG_TORCH_CUDA: return 0;
    }
    return 0;
}

void cdf_generator_random(cdf_generator *g, double *out, size_t n) {
    if (!g || !out) return;
    if (g->kind == CDF_RNG_NUMPY) {
        cdf_dist_random_fill(&g->bg, out, n);
    } else if (is_torch_cpu(g)) {
        cdf_torch_cpu_rand(&g->u.tc, CDF_F64, out, n);
    } else if (g->kind == CDF_RNG_NUMPY_LEGACY) {
        for (size_t i = 0; i < n; i++) out[i] = cdf_legacy_double(&g->u.lg);
    } else {
        for (size_t i = 0; i < n; i++) out[i] = NAN;
    }
}

void cdf_generator_standard_normal(cdf_generator *g, double *out, size_t n) {
    if (!g || !out) return;
    if (g->kind == CDF_RNG_NUMPY) {
        cdf_dist_standard_normal_fill(&g->bg, out, n);
    } else if (is_torch_cpu(g)) {
        cdf_torch_cpu_randn(&g->u.tc, CDF_F64, out, n);
    } else if (g->kind == CDF_RNG_NUMPY_LEGACY) {
        for (size_t i = 0; i < n; i++) out[i] = cdf_legacy_gauss(&g->u.lg);
    } else {
        float *f = cdf_mallocn(n ? n : 1, sizeof *f); /* [n] the float32 noise */
        if (!f) {
            for (size_t i = 0; i < n; i++) out[i] = NAN;
            return;
        }
        cdf_torch_cuda_randn(&g->u.cu, f, n);
        for (size_t i = 0; i < n; i++) out[i] = f[i];
        cdf_free(f);
    }
}

void cdf_generator_standard_normal_f32(cdf_generator *g, float *out, size_t n) {
    if (!g || !out) return;
    if (g->kind == CDF_RNG_NUMPY) {
        cdf_dist_standard_normal_fill_f32(&g->bg, out, n);
        return;
    }
    int64_t shape[1] = {(int64_t)n};
    cdf_generator *gens[1] = {g};
    if (cdf_randn_tensor(gens, 1, shape, 1, CDF_F32, out, NULL) != CDF_OK)
        for (size_t i = 0; i < n; i++) out[i] = NAN;
}

cdf_status cdf_generator_rand(cdf_generator *g, size_t n, cdf_dtype dtype, void *out, cdf_error *err) {
    if (!g) return cdf_error_set(err, CDF_ERR_ARG, "rand: NULL generator");
    if (n > 0 && !out) return cdf_error_set(err, CDF_ERR_ARG, "rand: NULL output buffer");
    unsigned char *dst = out;
    if (is_torch_cpu(g)) {
        if (cdf_torch_cpu_rand(&g->u.tc, dtype, out, n) != 0)
            return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "rand: dtype %s (torch-cpu: float32, float64, float16 or bfloat16)",
                                 cdf_dtype_name(dtype));
        return CDF_OK;
    }
    if (g->kind == CDF_RNG_NUMPY && (dtype == CDF_F64 || dtype == CDF_F32)) {
        for (size_t i = 0; i < n; i++) {
            if (dtype == CDF_F64) {
                double v = cdf_dist_random(&g->bg);
                memcpy(dst + 8 * i, &v, 8);
            } else {
                float v = cdf_dist_random_f32(&g->bg);
                memcpy(dst + 4 * i, &v, 4);
            }
        }
        return CDF_OK;
    }
    if (g->kind == CDF_RNG_NUMPY_LEGACY && dtype == CDF_F64) {
        for (size_t i = 0; i < n; i++) {
            double v = cdf_legacy_double(&g->u.lg);
            memcpy(dst + 8 * i, &v, 8);
        }
        return CDF_OK;
    }
    return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "rand: dtype %s is not available for %s generators",
                         cdf_dtype_name(dtype), cdf_rng_kind_name(g->kind));
}
