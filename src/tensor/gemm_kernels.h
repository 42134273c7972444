/* GEMM micro-kernels: one MR x NR tile of C from packed panels.  Internal to
 * src/tensor/gemm.c (and the tests that compare the kernels). */
#ifndef CDF_TENSOR_GEMM_KERNELS_H
#define CDF_TENSOR_GEMM_KERNELS_H

#include <stdint.h>

#include "tensor/gemm.h"

#define CDF_GEMM_MR 6  /* rows of a micro-tile */
#define CDF_GEMM_NR 16 /* columns of a micro-tile */

/* For i < MR, j < NR and each block of CDF_GEMM_SUM_BLOCK steps of p (kc is
 * a multiple of it, or the end of k): t = 0, then for each p of the block in
 * order t = fma(a[p*MR + i], b[p*NR + j], t) in float32; then c[i*ldc + j] =
 * t for the first block when `first`, else c[i*ldc + j] + t.  a: [kc, MR] and
 * b: [kc, NR] packed panels (b 32-byte aligned). */
typedef void (*cdf_gemm_kernel_fn)(int kc, const float *a, const float *b, float *c, int64_t ldc, int first);

/* Portable C (fmaf). */
void cdf_gemm_kernel_scalar(int kc, const float *a, const float *b, float *c, int64_t ldc, int first);
/* The same with every fma result and block sum flushed to a signed zero when tiny before rounding,
 * and a subnormal C read as zero (what the AVX2 kernel does under MXCSR FTZ | DAZ): bf16 mode on
 * the portable path. */
void cdf_gemm_kernel_scalar_bf16(int kc, const float *a, const float *b, float *c, int64_t ldc, int first);

/* The fp32 micro-kernel cdf_gemm uses for these CPU features (CDF_CPU_* bits): callers that
 * pack their own panels (src/tensor/winograd.c) call it directly. */
cdf_gemm_kernel_fn cdf_gemm_kernel_for(unsigned cpu);

/* n values of dtype dt (F32, F16 or BF16; any alignment) -> float32, exactly: F16C for float16
 * where cpu (CDF_CPU_* bits) has it, else the portable converters. */
void cdf_gemm_widen(unsigned cpu, cdf_dtype dt, const void *src, float *dst, int n);

#if CDF_HAVE_X86
/* AVX2 + FMA (src/tensor/gemm_x86.c); call only where the CPU has both. */
void cdf_gemm_kernel_avx2(int kc, const float *a, const float *b, float *c, int64_t ldc, int first);
/* A full panel: rows i < width (6 or 16, MR or NR) at rows + i * ld, kc values each -> d[p * width +
 * i] (the portable packing's bytes: data movement only); AVX2. */
void cdf_gemm_interleave_avx2(const float *rows, int64_t ld, int width, int kc, float *d);
/* n float16 values (any alignment) -> float32 with F16C (exact, as
 * cdf_f16_to_f32); call only where the CPU has F16C. */
void cdf_gemm_f16_to_f32_f16c(const void *src, float *dst, int n);
#endif

#endif
