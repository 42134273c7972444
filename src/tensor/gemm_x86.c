/* The AVX2 + FMA GEMM micro-kernel (compiled with -mavx2 -mfma; called only
 * after a run-time CPU check).  Twelve 8-float accumulators hold a 6 x 16
 * tile; each k step is one fused multiply-add per element, in order, and each
 * summation block's result is added to C: the scalar kernel's arithmetic. */
#include <immintrin.h>

#include "tensor/gemm_kernels.h"

#define ROW(i, lo, hi)                                      \
    do {                                                    \
        __m256 av = _mm256_broadcast_ss(a + (i));           \
        lo = _mm256_fmadd_ps(av, b0, lo);                   \
        hi = _mm256_fmadd_ps(av, b1, hi);                   \
    } while (0)

void cdf_gemm_kernel_avx2(int kc, const float *a, const float *b, float *c, int64_t ldc, int first) {
    __m256 c0l, c0h, c1l, c1h, c2l, c2h, c3l, c3h, c4l, c4h, c5l, c5h;
    float *c0 = c, *c1 = c + ldc, *c2 = c + 2 * ldc, *c3 = c + 3 * ldc, *c4 = c + 4 * ldc, *c5 = c + 5 * ldc;
    for (int q0 = 0; q0 < kc; q0 += CDF_GEMM_SUM_BLOCK) {
        int q1 = kc - q0 < CDF_GEMM_SUM_BLOCK ? kc : q0 + CDF_GEMM_SUM_BLOCK;
        c0l = c0h = c1l = c1h = c2l = c2h = c3l = c3h = c4l = c4h = c5l = c5h = _mm256_setzero_ps();
#pragma GCC unroll 4
        for (int p = q0; p < q1; p++) {
            __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
            ROW(0, c0l, c0h);
            ROW(1, c1l, c1h);
            ROW(2, c2l, c2h);
            ROW(3, c3l, c3h);
            ROW(4, c4l, c4h);
            ROW(5, c5l, c5h);
            a += CDF_GEMM_MR;
            b += CDF_GEMM_NR;
        }
        if (!first || q0 > 0) {
            c0l = _mm256_add_ps(_mm256_loadu_ps(c0), c0l), c0h = _mm256_add_ps(_mm256_loadu_ps(c0 + 8), c0h);
            c1l = _mm256_add_ps(_mm256_loadu_ps(c1), c1l), c1h = _mm256_add_ps(_mm256_loadu_ps(c1 + 8), c1h);
            c2l = _mm256_add_ps(_mm256_loadu_ps(c2), c2l), c2h = _mm256_add_ps(_mm256_loadu_ps(c2 + 8), c2h);
            c3l = _mm256_add_ps(_mm256_loadu_ps(c3), c3l), c3h = _mm256_add_ps(_mm256_loadu_ps(c3 + 8), c3h);
            c4l = _mm256_add_ps(_mm256_loadu_ps(c4), c4l), c4h = _mm256_add_ps(_mm256_loadu_ps(c4 + 8), c4h);
            c5l = _mm256_add_ps(_mm256_loadu_ps(c5), c5l), c5h = _mm256_add_ps(_mm256_loadu_ps(c5 + 8), c5h);
        }
        _mm256_storeu_ps(c0, c0l), _mm256_storeu_ps(c0 + 8, c0h);
        _mm256_storeu_ps(c1, c1l), _mm256_storeu_ps(c1 + 8, c1h);
        _mm256_storeu_ps(c2, c2l), _mm256_storeu_ps(c2 + 8, c2h);
        _mm256_storeu_ps(c3, c3l), _mm256_storeu_ps(c3 + 8, c3h);
        _mm256_storeu_ps(c4, c4l), _mm256_storeu_ps(c4 + 8, c4h);
        _mm256_storeu_ps(c5, c5l), _mm256_storeu_ps(c5 + 8, c5h);
    }
}

void cdf_gemm_f16_to_f32_f16c(const void *src, float *dst, int n) {
    const unsigned char *p = src;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p + 2 * i))));
    for (; i < n; i++) {
        unsigned short h;
        __builtin_memcpy(&h, p + 2 * i, 2);
        dst[i] = _cvtsh_ss(h);
    }
}
