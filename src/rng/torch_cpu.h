/* torch's CPU generator (at::CPUGeneratorImpl, torch 1.13) and the draws
 * diffusers makes with it: torch.randn and torch.rand on CPU tensors. */
#ifndef CDF_RNG_TORCH_CPU_H
#define CDF_RNG_TORCH_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "cdiffusers/core.h"
#include "rng/mt19937.h"

typedef struct cdf_torch_cpu {
    cdf_mt19937 mt;         /* the engine */
    uint64_t initial_seed;  /* g.initial_seed() (full 64 bits; mt19937 sees the low 32) */
    int32_t seeded;         /* mt19937 seeded_ */
    int has_normal;         /* next_double_normal_sample_ valid */
    double normal;          /* the cached double normal (small-tensor path) */
    int has_float_normal;   /* next_float_normal_sample_ valid (round trips only) */
    float float_normal;
    int avx2;               /* 1: float32 numel >= 16 goes through the AVX2 kernel */
} cdf_torch_cpu;

/* manual_seed(seed) (seed already as uint64: two's complement for negatives):
 * mt19937 seeded with the low 32 bits, cached normals cleared. */
void cdf_torch_cpu_seed(cdf_torch_cpu *t, uint64_t seed);
/* random(), random64() (first word high). */
uint32_t cdf_torch_cpu_random(cdf_torch_cpu *t);
uint64_t cdf_torch_cpu_random64(cdf_torch_cpu *t);
/* at::normal_distribution<double>(0, 1) with the generator's cache. */
double cdf_torch_cpu_normal(cdf_torch_cpu *t);
/* torch.randn((n,), generator=g, dtype) into out[n] (F32, F64, F16 or BF16;
 * any alignment).  Returns 0, or -1 for another dtype (nothing drawn). */
int cdf_torch_cpu_randn(cdf_torch_cpu *t, cdf_dtype dtype, void *out, size_t n);
/* torch.rand((n,), generator=g, dtype) (F32, F64, F16, BF16); 0 or -1. */
int cdf_torch_cpu_rand(cdf_torch_cpu *t, cdf_dtype dtype, void *out, size_t n);

#endif
