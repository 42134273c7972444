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

/* 8 x 8 transpose: c[q] = (r[0][q], ..., r[7][q]) */
static inline void transpose8(const __m256 r[8], __m256 c[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    c[0] = _mm256_permute2f128_ps(u0, u4, 0x20), c[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    c[2] = _mm256_permute2f128_ps(u2, u6, 0x20), c[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    c[4] = _mm256_permute2f128_ps(u0, u4, 0x31), c[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    c[6] = _mm256_permute2f128_ps(u2, u6, 0x31), c[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

void cdf_gemm_interleave_avx2(const float *rows, int64_t ld, int width, int kc, float *d) {
    int p = 0;
    __m256 r[8], c[8];
    if (width == 16) {
        for (; p + 8 <= kc; p += 8) {
            for (int h = 0; h < 2; h++) {
                for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(rows + (h * 8 + i) * ld + p);
                transpose8(r, c);
                for (int q = 0; q < 8; q++) _mm256_storeu_ps(d + (p + q) * 16 + h * 8, c[q]);
            }
        }
    } else { /* width 6: rows 6 and 7 are zeros never stored */
        r[6] = r[7] = _mm256_setzero_ps();
        for (; p + 8 <= kc; p += 8) {
            for (int i = 0; i < 6; i++) r[i] = _mm256_loadu_ps(rows + i * ld + p);
            transpose8(r, c);
            /* 8-wide stores in order: each one's last two lanes are overwritten by the next */
            for (int q = 0; q < 7; q++) _mm256_storeu_ps(d + (p + q) * 6, c[q]);
            float *e = d + (p + 7) * 6;
            _mm_storeu_ps(e, _mm256_castps256_ps128(c[7]));
            _mm_storel_pi((__m64 *)(void *)(e + 4), _mm256_extractf128_ps(c[7], 1));
        }
    }
    for (; p < kc; p++)
        for (int i = 0; i < width; i++) d[p * width + i] = rows[i * ld + p];
}
