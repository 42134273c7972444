/* AVX2 + FMA versions of src/tensor/vmath.h (compiled with -mavx2 -mfma;
 * called only after a run-time CPU check): lane for lane the bits of the
 * scalar definitions there. */
#include <immintrin.h>

#include "tensor/vmath.h"

static inline __m256 pow2i8(__m256i q) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(q, _mm256_set1_epi32(0x7f)), 23));
}

/* cdf_expf_sleef on 8 lanes */
static inline __m256 exp8(__m256 d) {
    __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(d, _mm256_set1_ps(CDF_VM_R_LN2)));
    __m256 qf = _mm256_cvtepi32_ps(q);
    __m256 s = _mm256_fmadd_ps(qf, _mm256_set1_ps(-CDF_VM_L2U), d);
    s = _mm256_fmadd_ps(qf, _mm256_set1_ps(-CDF_VM_L2L), s);
    __m256 u = _mm256_set1_ps(CDF_VM_EXP_C0);
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(CDF_VM_EXP_C1));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(CDF_VM_EXP_C2));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(CDF_VM_EXP_C3));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(CDF_VM_EXP_C4));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(CDF_VM_EXP_C5));
    u = _mm256_add_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_mul_ps(s, s), u, s));
    __m256i e1 = _mm256_srai_epi32(q, 1);
    u = _mm256_mul_ps(_mm256_mul_ps(u, pow2i8(e1)), pow2i8(_mm256_sub_epi32(q, e1)));
    u = _mm256_blendv_ps(u, _mm256_setzero_ps(), _mm256_cmp_ps(d, _mm256_set1_ps(-104.0f), _CMP_LT_OQ));
    return _mm256_blendv_ps(u, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(_mm256_set1_ps(100.0f), d, _CMP_LT_OQ));
}

/* the first r (< 8) lanes: load/store masks */
static inline __m256i tail_mask(int r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

void cdf_expf_sleef_avx2(const float *x, float *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, exp8(_mm256_maskload_ps(x + i, m)));
    }
}

static inline __m256 silu8(__m256 v) {
    __m256 e = exp8(_mm256_xor_ps(v, _mm256_set1_ps(-0.0f)));
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

void cdf_silu_avx2(const float *x, float *y, int64_t n, int affine, float scale, float shift) {
    __m256 sv = _mm256_set1_ps(scale), tv = _mm256_set1_ps(shift);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (affine) v = _mm256_add_ps(_mm256_mul_ps(v, sv), tv);
        _mm256_storeu_ps(y + i, silu8(v));
    }
    for (; i < n; i++) y[i] = cdf_silu_ref(affine ? x[i] * scale + shift : x[i]);
}

void cdf_softmax_row_avx2(float *row, int n) {
    int n8 = n & ~7, r = n - n8;
    __m256i tm = tail_mask(r);
    /* maximum: (x > m ? x : m) lane by lane, as the scalar loop; exact in any order without NaN */
    __m256 mv = _mm256_set1_ps(-INFINITY);
    for (int i = 0; i < n8; i += 8) mv = _mm256_max_ps(_mm256_loadu_ps(row + i), mv);
    float lanes[8];
    _mm256_storeu_ps(lanes, mv);
    float mx = -INFINITY;
    for (int l = 0; l < 8; l++) mx = lanes[l] > mx ? lanes[l] : mx;
    for (int i = n8; i < n; i++) mx = row[i] > mx ? row[i] : mx;
    __m256 mb = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    for (int i = 0; i < n8; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + i), mb));
        _mm256_storeu_ps(row + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (r) {
        /* masked-off lanes load 0, exp(0 - m) is then dropped by the zero blend */
        __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(row + n8, tm), mb));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(tm));
        _mm256_maskstore_ps(row + n8, tm, e);
        acc = _mm256_add_ps(acc, e);
    }
    /* ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)) */
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float sum = _mm_cvtss_f32(h);
    if (n < 8) /* one partial vector: its lanes left to right */
        for (int i = 1; i < n; i++) sum = i == 1 ? row[0] + row[1] : sum + row[i];
    __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (int i = 0; i < n8; i += 8) _mm256_storeu_ps(row + i, _mm256_mul_ps(_mm256_loadu_ps(row + i), inv));
    if (r) _mm256_maskstore_ps(row + n8, tm, _mm256_mul_ps(_mm256_maskload_ps(row + n8, tm), inv));
}
