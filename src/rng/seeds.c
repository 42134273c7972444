/* Kind names, the seed rules of each kind (what Python accepts and how many
 * bits it uses), OS seeds, and the named GPUs of the torch CUDA kind. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rng/generator.h"
#include "rng/seedseq.h"

#if defined(__has_include)
#if __has_include(<sys/random.h>)
#include <sys/random.h>
#define CDF_HAVE_GETRANDOM 1
#endif
#endif

static const char *const kind_names[CDF_RNG_KIND_COUNT] = {"numpy", "torch-cpu", "torch-cpu-avx2", "torch-cuda",
                                                           "numpy-legacy"};

const char *cdf_rng_kind_name(cdf_rng_kind kind) {
    if ((unsigned)kind >= CDF_RNG_KIND_COUNT) return "unknown";
    return kind_names[kind];
}

cdf_status cdf_rng_kind_parse(const char *name, cdf_rng_kind *out, cdf_error *err) {
    if (!name || !out) return cdf_error_set(err, CDF_ERR_ARG, "rng kind: NULL name or output");
    for (int k = 0; k < CDF_RNG_KIND_COUNT; k++) {
        if (!strcmp(name, kind_names[k])) {
            *out = (cdf_rng_kind)k;
            return CDF_OK;
        }
    }
    return cdf_error_set(err, CDF_ERR_ARG,
                         "rng kind \"%.64s\": unknown (use numpy, torch-cpu, torch-cpu-avx2, torch-cuda or numpy-legacy)",
                         name);
}

cdf_status cdf_seed_parse_int(const char *seed, uint64_t max_neg_mag, uint64_t max_pos, const char *who,
                              uint64_t *value, int *negative, cdf_error *err) {
    if (!seed) return cdf_error_set(err, CDF_ERR_ARG, "seed: NULL seed string");
    const char *p = seed;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    size_t len = strlen(seed);
    if (!*p)
        return cdf_error_set(err, CDF_ERR_ARG, "seed \"%.64s\": expected a decimal integer (%s accepts %s%" PRIu64
                             " .. %" PRIu64 ")", seed, who, max_neg_mag ? "-" : "", max_neg_mag, max_pos);
    uint64_t mag = 0;
    int overflow = 0;
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9')
            return cdf_error_set(err, CDF_ERR_ARG,
                                 "seed \"%.64s%s\": expected a decimal integer (character %zu is '%c')", seed,
                                 len > 64 ? "..." : "", (size_t)(q - seed), *q);
        unsigned d = (unsigned)(*q - '0');
        if (mag > (UINT64_MAX - d) / 10)
            overflow = 1;
        else
            mag = mag * 10 + d;
    }
    uint64_t limit = neg ? max_neg_mag : max_pos;
    if (overflow || mag > limit) {
        if (neg && mag != 0 && max_neg_mag == 0)
            return cdf_error_set(err, CDF_ERR_ARG, "seed \"%.64s\": out of range: %s accepts 0 .. %" PRIu64, seed,
                                 who, max_pos);
        return cdf_error_set(err, CDF_ERR_ARG, "seed \"%.64s%s\": out of range: %s accepts %s%" PRIu64 " .. %" PRIu64,
                             seed, len > 64 ? "..." : "", who, max_neg_mag ? "-" : "", max_neg_mag, max_pos);
    }
    *value = neg ? (uint64_t)0 - mag : mag;
    *negative = neg && mag != 0;
    return CDF_OK;
}

#define TORCH_WHO_CPU "torch-cpu (torch's manual_seed, else RuntimeError: Overflow when unpacking long)"
#define TORCH_WHO_CUDA "torch-cuda (torch's manual_seed, else RuntimeError: Overflow when unpacking long)"
#define LEGACY_WHO "numpy-legacy (RandomState, else ValueError: Seed must be between 0 and 2**32 - 1)"

cdf_status cdf_rng_seed_info(cdf_rng_kind kind, const char *seed, cdf_seed_info *info, cdf_error *err) {
    if (!info) return cdf_error_set(err, CDF_ERR_ARG, "seed info: NULL output");
    memset(info, 0, sizeof *info);
    uint64_t v = 0;
    int neg = 0;
    cdf_status st;
    switch (kind) {
    case CDF_RNG_NUMPY: {
        uint32_t *words = NULL;
        size_t n = 0;
        st = cdf_seed_words_append(seed, &words, &n, err);
        if (st == CDF_OK) {
            info->initial_seed = words[0] | (n > 1 ? (uint64_t)words[1] << 32 : 0);
            info->used_seed = info->initial_seed;
        }
        cdf_free(words);
        return st;
    }
    case CDF_RNG_TORCH_CPU:
    case CDF_RNG_TORCH_CPU_AVX2:
    case CDF_RNG_TORCH_CUDA:
        st = cdf_seed_parse_int(seed, 1ULL << 63, UINT64_MAX, kind == CDF_RNG_TORCH_CUDA ? TORCH_WHO_CUDA : TORCH_WHO_CPU,
                                &v, &neg, err);
        if (st != CDF_OK) return st;
        info->initial_seed = v;
        info->used_seed = kind == CDF_RNG_TORCH_CUDA ? v : (v & 0xffffffffu);
        if (info->used_seed != v) {
            info->reduced = 1;
            snprintf(info->notice, sizeof info->notice,
                     "seed %.40s: %s uses only the low 32 bits of a seed; this is the noise of seed %" PRIu64, seed,
                     cdf_rng_kind_name(kind), info->used_seed);
        }
        return CDF_OK;
    case CDF_RNG_NUMPY_LEGACY:
        st = cdf_seed_parse_int(seed, 0, 0xffffffffu, LEGACY_WHO, &v, &neg, err);
        if (st != CDF_OK) return st;
        info->initial_seed = info->used_seed = v;
        return CDF_OK;
    }
    return cdf_error_set(err, CDF_ERR_ARG, "generator kind %d: unknown", (int)kind);
}

/* ---- OS seeds ---- */

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

static cdf_status os_seed(char *buf, size_t buflen, uint64_t mask, cdf_error *err) {
    if (!buf || buflen < 24) return cdf_error_set(err, CDF_ERR_ARG, "seed buffer: need at least 24 bytes, got %zu", buf ? buflen : 0);
    uint64_t v;
    if (read_os_random(&v, sizeof v) != 0)
        return cdf_error_set(err, CDF_ERR_IO, "/dev/urandom: cannot read random bytes for a seed");
    snprintf(buf, buflen, "%" PRIu64, v & mask);
    return CDF_OK;
}

cdf_status cdf_seed_from_os(char *buf, size_t buflen, cdf_error *err) { return os_seed(buf, buflen, UINT64_MAX, err); }

cdf_status cdf_seed_from_os_u32(char *buf, size_t buflen, cdf_error *err) {
    return os_seed(buf, buflen, 0xffffffffu, err);
}

/* ---- GPUs for torch-cuda: multiProcessorCount, maxThreadsPerMultiProcessor ---- */

static const struct {
    const char *name;
    uint32_t sm, tps;
    const char *desc;
} presets[] = {
    {"a1111", 0, 0, "AUTOMATIC1111's CPU imitation (\"NV\" source): unbounded grid"},
    {"h200", 132, 2048, "NVIDIA H200 (sm_90): 132 SMs x 2048 threads"},
    {"h100-sxm", 132, 2048, "NVIDIA H100 SXM (sm_90): 132 SMs x 2048 threads"},
    {"h100-pcie", 114, 2048, "NVIDIA H100 PCIe (sm_90): 114 SMs x 2048 threads"},
    {"a100", 108, 2048, "NVIDIA A100 (sm_80): 108 SMs x 2048 threads"},
    {"v100", 80, 2048, "NVIDIA V100 (sm_70): 80 SMs x 2048 threads"},
    {"l40s", 142, 1536, "NVIDIA L40S (sm_89): 142 SMs x 1536 threads"},
    {"l4", 58, 1536, "NVIDIA L4 (sm_89): 58 SMs x 1536 threads"},
    {"a10", 72, 1536, "NVIDIA A10 (sm_86): 72 SMs x 1536 threads"},
    {"t4", 40, 1024, "NVIDIA T4 (sm_75): 40 SMs x 1024 threads"},
    {"rtx4090", 128, 1536, "GeForce RTX 4090 (sm_89): 128 SMs x 1536 threads"},
    {"rtx4080", 76, 1536, "GeForce RTX 4080 (sm_89): 76 SMs x 1536 threads"},
    {"rtx4070ti", 60, 1536, "GeForce RTX 4070 Ti (sm_89): 60 SMs x 1536 threads"},
    {"rtx4070", 46, 1536, "GeForce RTX 4070 (sm_89): 46 SMs x 1536 threads"},
    {"rtx4060ti", 34, 1536, "GeForce RTX 4060 Ti (sm_89): 34 SMs x 1536 threads"},
    {"rtx4060", 24, 1536, "GeForce RTX 4060 (sm_89): 24 SMs x 1536 threads"},
    {"rtx3090", 82, 1536, "GeForce RTX 3090 (sm_86): 82 SMs x 1536 threads"},
    {"rtx3080", 68, 1536, "GeForce RTX 3080 10GB (sm_86): 68 SMs x 1536 threads"},
    {"rtx3070", 46, 1536, "GeForce RTX 3070 (sm_86): 46 SMs x 1536 threads"},
    {"rtx3060", 28, 1536, "GeForce RTX 3060 (sm_86): 28 SMs x 1536 threads"},
    {"rtx2080ti", 68, 1024, "GeForce RTX 2080 Ti (sm_75): 68 SMs x 1024 threads"},
    {"rtx2070", 36, 1024, "GeForce RTX 2070 (sm_75): 36 SMs x 1024 threads"},
    {"gtx1080ti", 28, 2048, "GeForce GTX 1080 Ti (sm_61): 28 SMs x 2048 threads"},
    {"gtx1070", 15, 2048, "GeForce GTX 1070 (sm_61): 15 SMs x 2048 threads"},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

cdf_status cdf_cuda_preset(const char *name, cdf_cuda_options *opt, cdf_error *err) {
    if (!name || !opt) return cdf_error_set(err, CDF_ERR_ARG, "GPU preset: NULL name or output");
    for (size_t i = 0; i < N_PRESETS; i++) {
        if (!strcmp(name, presets[i].name)) {
            opt->sm_count = presets[i].sm;
            opt->threads_per_sm = presets[i].tps;
            return CDF_OK;
        }
    }
    return cdf_error_set(err, CDF_ERR_ARG, "GPU \"%.64s\": unknown (known: a1111, h100-sxm, a100, rtx4090, rtx3090, "
                                           "t4, ...; or give the SM count)", name);
}

const char *cdf_cuda_preset_name(size_t i, const char **desc) {
    if (i >= N_PRESETS) return NULL;
    if (desc) *desc = presets[i].desc;
    return presets[i].name;
}
