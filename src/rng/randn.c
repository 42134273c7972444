/* diffusers' randn_tensor for every generator kind: argument checks, the
 * list-of-generators slicing, and each kind's draw and dtype rule. */
#include <inttypes.h>
#include <string.h>

#include "rng/distributions.h"
#include "rng/generator.h"
#include "tensor/half.h"

/* Whether kind can produce dtype. */
static int kind_has_dtype(cdf_rng_kind kind, cdf_dtype dtype) {
    switch (kind) {
    case CDF_RNG_NUMPY: return dtype == CDF_F64 || dtype == CDF_F32 || dtype == CDF_F16;
    case CDF_RNG_TORCH_CPU:
    case CDF_RNG_TORCH_CPU_AVX2:
    case CDF_RNG_NUMPY_LEGACY: return dtype == CDF_F64 || dtype == CDF_F32 || dtype == CDF_F16 || dtype == CDF_BF16;
    case CDF_RNG_TORCH_CUDA: return dtype == CDF_F32 || dtype == CDF_F16 || dtype == CDF_BF16;
    }
    return 0;
}

static const char *kind_dtypes(cdf_rng_kind kind) {
    switch (kind) {
    case CDF_RNG_NUMPY: return "float64, float32 or float16";
    case CDF_RNG_TORCH_CUDA: return "float32, float16 or bfloat16 (float64 CUDA noise is not emulated)";
    default: return "float64, float32, float16 or bfloat16";
    }
}

/* numpy (mindone): float64 draws, one rounding to dtype. */
static void numpy_into(cdf_generator *g, cdf_dtype dtype, unsigned char *dst, size_t n) {
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

/* float32 value f stored as dtype (F32, F16, BF16: torch's casts from float). */
static void put_from_f32(cdf_dtype dtype, unsigned char *p, size_t i, float f) {
    if (dtype == CDF_F32) {
        memcpy(p + 4 * i, &f, 4);
    } else {
        uint16_t h = dtype == CDF_F16 ? cdf_f32_to_f16(f) : cdf_f32_to_bf16(f);
        memcpy(p + 2 * i, &h, 2);
    }
}

/* numpy-legacy: standard_normal in float64, then torch.from_numpy(x).to(dtype):
 * float64 kept, other dtypes through float32 as torch's double casts go. */
static void legacy_into(cdf_generator *g, cdf_dtype dtype, unsigned char *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double v = cdf_legacy_gauss(&g->u.lg);
        if (dtype == CDF_F64)
            memcpy(dst + 8 * i, &v, 8);
        else
            put_from_f32(dtype, dst, i, (float)v);
    }
}

cdf_status cdf_randn_tensor(cdf_generator *const *gens, size_t ngens, const int64_t *shape, int ndim, cdf_dtype dtype,
                            void *out, cdf_error *err) {
    if (!gens || ngens == 0) return cdf_error_set(err, CDF_ERR_ARG, "randn_tensor: no generator given");
    for (size_t i = 0; i < ngens; i++)
        if (!gens[i]) return cdf_error_set(err, CDF_ERR_ARG, "randn_tensor: generator %zu is NULL", i);
    if (ndim < 0 || ndim > CDF_MAX_DIMS || (ndim > 0 && !shape))
        return cdf_error_set(err, CDF_ERR_ARG, "randn_tensor: bad shape (ndim %d)", ndim);
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
    int any_cuda = 0;
    for (size_t i = 0; i < ngens; i++) {
        cdf_rng_kind k = gens[i]->kind;
        if ((unsigned)k >= CDF_RNG_KIND_COUNT)
            return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "randn_tensor: generator %zu has unknown kind %d", i, (int)k);
        if (!kind_has_dtype(k, dtype))
            return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "randn_tensor: dtype %s with a %s generator (want %s)",
                                 cdf_dtype_name(dtype), cdf_rng_kind_name(k), kind_dtypes(k));
        if (k == CDF_RNG_TORCH_CUDA) any_cuda = 1;
    }
    if (numel > 0 && !out) return cdf_error_set(err, CDF_ERR_ARG, "randn_tensor: NULL output buffer");
    if (numel == 0) return CDF_OK;
    size_t per = numel / ngens; /* elements per generator: the whole tensor, or one (1, ...) slice */
    float *tmp = NULL;          /* [per] torch-cuda float32 noise before the store */
    if (any_cuda) {
        tmp = cdf_mallocn(per, sizeof *tmp);
        if (!tmp) return cdf_error_set(err, CDF_ERR_NOMEM, "randn_tensor: out of memory (%zu floats)", per);
    }
    unsigned char *dst = out;
    size_t es = cdf_dtype_size(dtype);
    for (size_t i = 0; i < ngens; i++) {
        cdf_generator *g = gens[i];
        unsigned char *p = dst + i * per * es;
        switch (g->kind) {
        case CDF_RNG_NUMPY: numpy_into(g, dtype, p, per); break;
        case CDF_RNG_TORCH_CPU:
        case CDF_RNG_TORCH_CPU_AVX2: cdf_torch_cpu_randn(&g->u.tc, dtype, p, per); break;
        case CDF_RNG_NUMPY_LEGACY: legacy_into(g, dtype, p, per); break;
        case CDF_RNG_TORCH_CUDA:
            cdf_torch_cuda_randn(&g->u.cu, tmp, per);
            for (size_t j = 0; j < per; j++) put_from_f32(dtype, p, j, tmp[j]);
            break;
        }
    }
    cdf_free(tmp);
    return CDF_OK;
}
