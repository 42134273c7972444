/* Elementwise float math shared by the scalar reference kernels and the SIMD
 * ones: each function here is the definition (plain C, explicit fmaf), and a
 * vector version must give the same bits lane by lane.
 *
 * cdf_expf_sleef is SLEEF 3.5's xexpf (u10, 1.0 ulp) with every "mla" fused,
 * as torch's float32 exp runs it on AVX2+FMA CPUs (Sleef_expf8_u10): torch's
 * softmax and exp use it, so matching it matches torch.  Written from the
 * algorithm's description; no code copied.  Internal to src/. */
#ifndef CDF_TENSOR_VMATH_H
#define CDF_TENSOR_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* SLEEF's range reduction constants: ln 2 split in two, 1/ln 2. */
#define CDF_VM_L2U 0.693145751953125f
#define CDF_VM_L2L 1.428606765330187045e-06f
#define CDF_VM_R_LN2 1.442695040888963407359924681001892137426645954152985934135449406931f

/* The polynomial of xexpf, highest degree first. */
#define CDF_VM_EXP_C0 0.000198527617612853646278381f
#define CDF_VM_EXP_C1 0.00139304355252534151077271f
#define CDF_VM_EXP_C2 0.00833336077630519866943359f
#define CDF_VM_EXP_C3 0.0416664853692054748535156f
#define CDF_VM_EXP_C4 0.166666671633720397949219f
#define CDF_VM_EXP_C5 0.5f

/* round to nearest even as cvtps2dq does: out of range or NaN -> INT32_MIN */
static inline int cdf_vm_rint_i(float x) {
    if (!(x > -2147483648.0f && x < 2147483648.0f)) return INT32_MIN;
    return (int)rintf(x);
}
/* 2^q for q in [-126, 127] (the bits of the exponent field, any q wraps as the vector shift does) */
static inline float cdf_vm_pow2i(int q) {
    uint32_t u = (uint32_t)(q + 0x7f) << 23;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* d * 2^e in two steps, so that e down to -252 reaches the subnormals */
static inline float cdf_vm_ldexp2k(float d, int e) { return d * cdf_vm_pow2i(e >> 1) * cdf_vm_pow2i(e - (e >> 1)); }

/* exp(d) as SLEEF xexpf: 0 below -104, +inf above 100, NaN stays NaN. */
static inline float cdf_expf_sleef(float d) {
    int q = cdf_vm_rint_i(d * CDF_VM_R_LN2);
    float s = fmaf((float)q, -CDF_VM_L2U, d);
    s = fmaf((float)q, -CDF_VM_L2L, s);
    float u = CDF_VM_EXP_C0;
    u = fmaf(u, s, CDF_VM_EXP_C1);
    u = fmaf(u, s, CDF_VM_EXP_C2);
    u = fmaf(u, s, CDF_VM_EXP_C3);
    u = fmaf(u, s, CDF_VM_EXP_C4);
    u = fmaf(u, s, CDF_VM_EXP_C5);
    u = 1.0f + fmaf(s * s, u, s);
    u = cdf_vm_ldexp2k(u, q);
    if (d < -104) u = 0.0f;
    if (100 < d) u = INFINITY;
    return u;
}

/* SiLU as torch's vectorised kernel computes it: v / (1 + exp(-v)). */
static inline float cdf_silu_ref(float v) { return v / (1.0f + cdf_expf_sleef(-v)); }

/* Softmax of one row in place, as torch's vectorised last-dim softmax sums
 * it: m = max (NaN ignored), e_i = exp(x_i - m), lane l of 8 sums the e_i
 * with i mod 8 = l in order, s = ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))
 * (n < 8: s = e_0 + e_1 + ... left to right), y_i = e_i * (1/s).  n >= 1.
 * Checked bit for bit against torch 1.13's torch.softmax(dim=-1) on AVX2. */
typedef void (*cdf_softmax_row_fn)(float *row, int n);

/* The definition in plain C (src/tensor/ops.c). */
void cdf_softmax_row_ref(float *row, int n);

#if CDF_HAVE_X86
/* AVX2 + FMA (src/tensor/vmath_x86.c): the same bits; call only where the CPU has both. */
void cdf_softmax_row_avx2(float *row, int n);
/* n values of cdf_expf_sleef(x[i]) -> y[i] (y may be x); AVX2 + FMA. */
void cdf_expf_sleef_avx2(const float *x, float *y, int n);
/* y[i] = cdf_silu_ref(x[i] * scale + shift) (the product and the sum each rounded), or with
 * affine 0 cdf_silu_ref(x[i]); y may be x; AVX2 + FMA. */
void cdf_silu_avx2(const float *x, float *y, int64_t n, int affine, float scale, float shift);
#endif

#endif
