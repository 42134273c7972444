#include "tensor/exec.h"

#if CDF_HAVE_X86
#include <cpuid.h>
#endif

void cdf_exec_init(cdf_exec *ex, int threads, cdf_error *err) {
    for (int i = 0; i < CDF_EXEC_SLOTS; i++) {
        ex->scratch[i] = NULL;
        ex->scratch_cap[i] = 0;
    }
    ex->threads = threads < 1 ? 1 : threads;
    ex->isa = CDF_ISA_AUTO;
    ex->precision = CDF_PRECISION_FP32;
    ex->err = err;
    ex->interrupt = NULL;
    ex->gemm_flops = 0.0;
    ex->cpu_features = 0;
    ex->derived_cap = ex->derived_bytes = 0;
    ex->derived = NULL;
    ex->nderived = 0;
}

void cdf_exec_release(cdf_exec *ex) {
    for (int i = 0; i < CDF_EXEC_SLOTS; i++) {
        cdf_aligned_free(ex->scratch[i]);
        ex->scratch[i] = NULL;
        ex->scratch_cap[i] = 0;
    }
    for (int i = 0; i < ex->nderived; i++) cdf_aligned_free(ex->derived[i].data);
    cdf_free(ex->derived);
    ex->derived = NULL;
    ex->nderived = 0;
    ex->derived_bytes = 0;
}

cdf_status cdf_exec_derived(cdf_exec *ex, const void *key, size_t n, float **out, int *fresh) {
    *out = NULL;
    *fresh = 0;
    for (int i = 0; i < ex->nderived; i++)
        if (ex->derived[i].key == key) {
            if (ex->derived[i].n == n) *out = ex->derived[i].data;
            return CDF_OK;
        }
    if (!ex->derived_cap || n > (ex->derived_cap - ex->derived_bytes) / sizeof(float)) return CDF_OK;
    cdf_derived *grown = cdf_realloc(ex->derived, (size_t)(ex->nderived + 1) * sizeof *grown);
    float *p = grown ? cdf_aligned_alloc(n * sizeof(float)) : NULL;
    if (grown) ex->derived = grown;
    if (!p) return cdf_error_set(ex->err, CDF_ERR_NOMEM, "out of memory for %zu bytes of transformed weights",
                                 n * sizeof(float));
    ex->derived[ex->nderived++] = (cdf_derived){key, n, p};
    ex->derived_bytes += n * sizeof(float);
    *out = p;
    *fresh = 1;
    return CDF_OK;
}

float *cdf_exec_scratch(cdf_exec *ex, int slot, size_t n) {
    if (slot < 0 || slot >= CDF_EXEC_SLOTS) {
        cdf_error_set(ex->err, CDF_ERR_INTERNAL, "scratch slot %d out of range", slot);
        return NULL;
    }
    if (n <= ex->scratch_cap[slot]) return ex->scratch[slot];
    if (n > SIZE_MAX / sizeof(float)) {
        cdf_error_set(ex->err, CDF_ERR_LIMIT, "scratch buffer of %zu floats is too large", n);
        return NULL;
    }
    float *p = cdf_aligned_alloc(n * sizeof(float));
    if (!p) {
        cdf_error_set(ex->err, CDF_ERR_NOMEM, "out of memory for a %zu-byte work buffer", n * sizeof(float));
        return NULL;
    }
    cdf_aligned_free(ex->scratch[slot]);
    ex->scratch[slot] = p;
    ex->scratch_cap[slot] = n;
    return p;
}

int cdf_exec_threads_for(const cdf_exec *ex, double work) { return work < 65536.0 ? 1 : ex->threads; }

#define CPU_READ 1u

unsigned cdf_exec_cpu(cdf_exec *ex) {
    if (!ex->cpu_features) {
        unsigned f = CPU_READ;
#if CDF_HAVE_X86
        unsigned a, b, c, d;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) f |= CDF_CPU_AVX2_FMA;
        /* F16C is CPUID.1:ECX bit 29: __builtin_cpu_supports does not know it in every compiler */
        if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) && __builtin_cpu_supports("avx")) f |= CDF_CPU_F16C;
#endif
        ex->cpu_features = f;
    }
    return ex->isa == CDF_ISA_SCALAR ? 0u : ex->cpu_features & ~CPU_READ;
}
