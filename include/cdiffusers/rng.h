/* Random generators bit-exact with the ones Python users seed: numpy's
 * Generator(PCG64), torch's CPU generator (scalar and AVX2 kernels), torch's
 * CUDA generator (Philox4x32-10, as AUTOMATIC1111 imitates it on the CPU) and
 * numpy's legacy RandomState.  Bit generators sit behind one small table
 * (src/rng/bitgen.h); distributions are apart.  docs/RNG.md says which kind a
 * user needs and what each one reproduces. */
#ifndef CDIFFUSERS_RNG_H
#define CDIFFUSERS_RNG_H

#include "cdiffusers/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cdf_rng_kind {
    CDF_RNG_NUMPY = 0,          /* np.random.Generator(np.random.PCG64(seed)) (mindone's randn_tensor) */
    CDF_RNG_TORCH_CPU = 1,      /* torch.Generator("cpu") with torch's scalar kernels (ATEN_CPU_CAPABILITY=default,
                                   x86 CPUs without AVX2, non-x86 CPUs) */
    CDF_RNG_TORCH_CPU_AVX2 = 2, /* torch.Generator("cpu") where torch runs its AVX2 kernels (x86 CPUs with AVX2 or
                                   AVX-512: the usual case for torch 1.x/2.x on a PC) */
    CDF_RNG_TORCH_CUDA = 3,     /* torch.Generator("cuda"): Philox4x32-10 with torch's offsets; float32 noise as
                                   AUTOMATIC1111's CPU imitation ("NV" source) computes it */
    CDF_RNG_NUMPY_LEGACY = 4    /* np.random.RandomState(seed): MT19937, polar Box-Muller with a cached value */
} cdf_rng_kind;
#define CDF_RNG_KIND_COUNT 5

/* Static CLI name of kind: "numpy", "torch-cpu", "torch-cpu-avx2", "torch-cuda",
 * "numpy-legacy"; "unknown" for any other value. */
const char *cdf_rng_kind_name(cdf_rng_kind kind);
/* Kind from its CLI name (exact, lower case); CDF_ERR_ARG naming the text and
 * the valid names otherwise.  *out is untouched on error. */
cdf_status cdf_rng_kind_parse(const char *name, cdf_rng_kind *out, cdf_error *err);

/* What a kind does with a seed (the rule Python applies, never a silent wrap).
 *   numpy:        any non-negative integer, all of its bits are used.
 *   torch-cpu(*): -2^63 .. 2^64-1 (torch's manual_seed); a negative seed is its
 *                 two's complement; only the low 32 bits seed mt19937.
 *   torch-cuda:   -2^63 .. 2^64-1; all 64 bits are the Philox key.
 *   numpy-legacy: 0 .. 2^32-1 (RandomState(seed)). */
typedef struct cdf_seed_info {
    uint64_t initial_seed; /* torch: g.initial_seed(); legacy: the seed; numpy: the seed's low 64 bits */
    uint64_t used_seed;    /* the value the bit generator is seeded with (torch-cpu: initial_seed & 0xffffffff) */
    int reduced;           /* 1 when fewer bits are used than the seed has: the stream equals the one of the
                              smaller seed used_seed (torch-cpu with a seed outside 0 .. 2^32-1) */
    char notice[200];      /* the sentence to show the user when reduced (else ""), e.g. "seed -1: torch-cpu
                              uses only the low 32 bits of a seed; this is the noise of seed 4294967295" */
} cdf_seed_info;
/* Checks seed (decimal text, optional '-' for the torch kinds) against kind's
 * accepted range and fills *info.  Out-of-range or malformed seeds are
 * CDF_ERR_ARG with a message naming the seed and the range. */
cdf_status cdf_rng_seed_info(cdf_rng_kind kind, const char *seed, cdf_seed_info *info, cdf_error *err);

typedef struct cdf_generator cdf_generator;

/* New generator of `kind` seeded with the decimal integer `seed` as Python
 * would seed it: Generator(PCG64(seed)), torch.Generator().manual_seed(seed),
 * torch.Generator("cuda").manual_seed(seed) (default cdf_cuda_options),
 * RandomState(seed).  Seeds outside the kind's range (see cdf_seed_info) are
 * CDF_ERR_ARG.  When the kind uses fewer bits than the seed has, the
 * sentence of cdf_seed_info.notice goes to err->on_notice (CDF_NOTICE_WARN).
 * Caller owns *out and frees it with cdf_generator_free. */
cdf_status cdf_generator_new(cdf_rng_kind kind, const char *seed, cdf_generator **out, cdf_error *err);
/* List seeds, n >= 1: numpy: PCG64([s0, s1, ...]) entropy; numpy-legacy:
 * RandomState([s0, ...]) (init_by_array, even for n == 1; each 0 .. 2^32-1).
 * The torch kinds take exactly one seed (n == 1, same as cdf_generator_new).
 * Caller owns *out. */
cdf_status cdf_generator_new_list(cdf_rng_kind kind, const char *const *seeds, size_t n,
                                  cdf_generator **out, cdf_error *err);

/* The GPU a torch CUDA generator imitates.  torch launches 256-thread blocks,
 * grid = min(ceil(numel / 256), sm_count * (threads_per_sm / 256)); when numel
 * exceeds 256 * grid, elements come from further Philox lanes and counters, so
 * the noise of large tensors depends on the GPU.  Below that size every GPU
 * gives the same noise, which is also AUTOMATIC1111's imitation. */
typedef struct cdf_cuda_options {
    uint32_t sm_count;       /* cudaDeviceProp.multiProcessorCount; 0 = unbounded grid (AUTOMATIC1111's
                                imitation: every element from its own thread's first value) */
    uint32_t threads_per_sm; /* cudaDeviceProp.maxThreadsPerMultiProcessor, 256 .. 4096 and a multiple of 256;
                                0 = 2048 */
} cdf_cuda_options;
/* Options for a named GPU ("a1111", "h100-sxm", "a100", "rtx4090", "rtx3090",
 * ..., see cdf_cuda_preset_name); CDF_ERR_ARG for an unknown name. */
cdf_status cdf_cuda_preset(const char *name, cdf_cuda_options *opt, cdf_error *err);
/* Name of preset i (0-based) for listings; NULL past the last one.  If
 * desc is not NULL it receives a static one-line description. */
const char *cdf_cuda_preset_name(size_t i, const char **desc);
/* torch.Generator("cuda").manual_seed(seed) on the GPU described by opt (NULL:
 * the defaults, all zero).  Caller owns *out. */
cdf_status cdf_generator_new_torch_cuda(const char *seed, const cdf_cuda_options *opt, cdf_generator **out,
                                        cdf_error *err);

/* Re-seeds g in place with its own kind and options (manual_seed /
 * RandomState.seed(seed)), clearing cached normals.  On error g is unchanged. */
cdf_status cdf_generator_reseed(cdf_generator *g, const char *seed, cdf_error *err);
/* A fresh seed from the OS (getrandom / /dev/urandom), as decimal in buf
 * (at least 24 bytes) so the run can be repeated.  Valid for every kind except
 * numpy-legacy, which needs cdf_seed_from_os_u32. */
cdf_status cdf_seed_from_os(char *buf, size_t buflen, cdf_error *err);
/* Same, below 2^32 (valid for every kind). */
cdf_status cdf_seed_from_os_u32(char *buf, size_t buflen, cdf_error *err);
/* Frees g (NULL is fine). */
void cdf_generator_free(cdf_generator *g);
/* The kind g was made with (CDF_RNG_NUMPY for NULL). */
cdf_rng_kind cdf_generator_kind(const cdf_generator *g);

/* numpy's bit_generator.state for PCG64 (the 128-bit values split in halves). */
typedef struct cdf_pcg64_state {
    uint64_t state_hi, state_lo; /* 'state': 128-bit LCG state */
    uint64_t inc_hi, inc_lo;     /* 'inc': 128-bit odd increment */
    int has_uint32;              /* 1 when a buffered high half is pending */
    uint32_t uinteger;           /* the buffered half */
} cdf_pcg64_state;
/* Full state get/set matching numpy's PCG64 bit_generator.state (numpy kind only). */
cdf_status cdf_generator_get_pcg64_state(const cdf_generator *g, cdf_pcg64_state *st, cdf_error *err);
cdf_status cdf_generator_set_pcg64_state(cdf_generator *g, const cdf_pcg64_state *st, cdf_error *err);

/* torch's CPU generator state (at::CPUGeneratorImpl): mt19937 data and the
 * cached normals (torch-cpu and torch-cpu-avx2). */
typedef struct cdf_torch_cpu_state {
    uint64_t initial_seed;  /* g.initial_seed() */
    uint32_t mt[624];       /* mt19937 state words */
    int32_t left;           /* mt19937 left_: 1 .. 624 (1: twist before the next word) */
    int32_t seeded;         /* mt19937 seeded_ (1 once seeded) */
    uint32_t next;          /* mt19937 next_: index of the next word, 0 .. 624 */
    int has_normal;         /* the cached double normal of the small-tensor path is valid */
    double normal;          /* that cached normal (next_double_normal_sample) */
    int has_float_normal;   /* next_float_normal_sample valid (never set by randn; kept for round trips) */
    float float_normal;
} cdf_torch_cpu_state;
cdf_status cdf_generator_get_torch_cpu_state(const cdf_generator *g, cdf_torch_cpu_state *st, cdf_error *err);
/* Rejects what torch's set_state rejects ("Invalid mt19937 state"). */
cdf_status cdf_generator_set_torch_cpu_state(cdf_generator *g, const cdf_torch_cpu_state *st, cdf_error *err);

/* torch's CUDA generator state: seed and Philox offset (counted in 32-bit
 * draws per thread; torch keeps it a multiple of 4). */
typedef struct cdf_philox_state {
    uint64_t seed;   /* g.initial_seed(): the Philox key */
    uint64_t offset; /* philox_offset_per_thread */
} cdf_philox_state;
cdf_status cdf_generator_get_philox_state(const cdf_generator *g, cdf_philox_state *st, cdf_error *err);
/* offset must be a multiple of 4, as torch asserts. */
cdf_status cdf_generator_set_philox_state(cdf_generator *g, const cdf_philox_state *st, cdf_error *err);

/* The byte tensors torch's g.get_state() returns: 5056 bytes for a CPU
 * generator (CPUGeneratorImplState, little-endian x86-64 layout), 816 for a
 * CUDA generator (800 bytes of 0xff, seed, offset). */
#define CDF_TORCH_CPU_STATE_BYTES 5056
#define CDF_TORCH_CPU_STATE_BYTES_LEGACY 5048
#define CDF_TORCH_CUDA_STATE_BYTES 816
/* Writes g.get_state() of a torch kind into buf[len]; len must be at least
 * the size above; *written (may be NULL) receives it. */
cdf_status cdf_generator_get_torch_state_bytes(const cdf_generator *g, uint8_t *buf, size_t len, size_t *written,
                                               cdf_error *err);
/* g.set_state(bytes): CPU kinds take 5056 (or the legacy 5048) bytes, the
 * CUDA kind 816 (or 808: no offset, offset 0); torch's checks apply. */
cdf_status cdf_generator_set_torch_state_bytes(cdf_generator *g, const uint8_t *buf, size_t len, cdf_error *err);

/* numpy RandomState.get_state(): ('MT19937', key, pos, has_gauss, cached_gaussian). */
typedef struct cdf_legacy_state {
    uint32_t key[624];      /* MT19937 key */
    int pos;                /* 0 .. 624 (624: twist before the next word) */
    int has_gauss;          /* a cached polar-method normal is pending */
    double cached_gaussian; /* that value (0.0 when none) */
} cdf_legacy_state;
cdf_status cdf_generator_get_legacy_state(const cdf_generator *g, cdf_legacy_state *st, cdf_error *err);
cdf_status cdf_generator_set_legacy_state(cdf_generator *g, const cdf_legacy_state *st, cdf_error *err);

/* The bit generator's raw output: numpy: PCG64 random_raw(); torch-cpu(*):
 * the next mt19937 word (torch's random()); numpy-legacy: random_raw() (one
 * mt19937 word); torch-cuda: 0 (no raw stream). */
uint64_t cdf_generator_next_u64(cdf_generator *g);
/* n uniforms in [0,1): numpy: Generator.random(n); torch-cpu(*):
 * torch.rand(n, dtype=float64); numpy-legacy: random_sample(n); torch-cuda:
 * NaN (not available). */
void cdf_generator_random(cdf_generator *g, double *out, size_t n);
/* n float64 normals: numpy: standard_normal(n) (ziggurat); torch-cpu(*):
 * torch.randn(n, dtype=float64); numpy-legacy: standard_normal(n);
 * torch-cuda: the float32 noise of cdf_randn_tensor, widened. */
void cdf_generator_standard_normal(cdf_generator *g, double *out, size_t n);
/* n float32 normals: numpy: standard_normal(n, dtype=np.float32) (its float32
 * ziggurat); the other kinds: cdf_randn_tensor of shape (n,) as float32. */
void cdf_generator_standard_normal_f32(cdf_generator *g, float *out, size_t n);
/* n uniforms in [0,1): torch.rand((n,), dtype=...) for the torch-cpu kinds
 * (F32, F64, F16 or BF16: 24, 53, 11 or 8 random bits), Generator.random (F64)
 * / random(dtype=np.float32) (F32) for numpy, random_sample (F64) for
 * numpy-legacy; CDF_ERR_UNSUPPORTED otherwise (torch-cuda, other dtypes).
 * out holds n * cdf_dtype_size(dtype) bytes (any alignment). */
cdf_status cdf_generator_rand(cdf_generator *g, size_t n, cdf_dtype dtype, void *out, cdf_error *err);

/* diffusers' randn_tensor, per generator kind (docs/RNG.md):
 *   numpy: mindone's: float64 standard_normal, cast to dtype in one rounding
 *     (CDF_F64, CDF_F32, CDF_F16).
 *   torch-cpu(*): torch.randn(shape, generator=g, dtype=dtype) on the CPU
 *     (CDF_F32, CDF_F64, CDF_F16, CDF_BF16), including the cached normal of
 *     tensors under 16 elements and the capability's float32 kernel.
 *   torch-cuda: torch.randn(..., device="cuda") float32 noise (CDF_F32;
 *     CDF_F16 / CDF_BF16 as torch casts it); CDF_F64 is CDF_ERR_UNSUPPORTED.
 *   numpy-legacy: RandomState.standard_normal(shape) then
 *     torch.from_numpy(x).to(dtype) as diffusers' tests do (CDF_F64; CDF_F32,
 *     CDF_F16 via float32 (torch's double rounding), CDF_BF16 via float32).
 * gens[0..ngens): ngens == 1 draws the whole shape from gens[0]; otherwise
 * ngens must equal shape[0] and each generator draws a (1, ...) slice in
 * order (diffusers' list of generators).  The same handle may appear several
 * times (one stream consumed in turn, like Python's [g] * 4).  Kinds may be
 * mixed.  Nothing is drawn when any argument is rejected.  out holds
 * numel * sizeof(dtype) bytes (any alignment). */
cdf_status cdf_randn_tensor(cdf_generator *const *gens, size_t ngens, const int64_t *shape, int ndim,
                            cdf_dtype dtype, void *out, cdf_error *err);

#ifdef __cplusplus
}
#endif
#endif
