/* torch 1.13's normal_fill_16_AVX2 (aten/src/ATen/native/cpu/
 * DistributionTemplates.h with avx_mathfun.h's log256_ps / sincos256_ps),
 * one lane at a time, with the multiply-adds GCC fused when it compiled
 * libtorch_cpu (tests/data/RNG_TORCH_LEGACY.md lists the sequence). */
#ifndef CDF_RNG_TORCH_AVX2_H
#define CDF_RNG_TORCH_AVX2_H

/* d[16] holds 16 float32 uniforms in [0, 1); on return d[j] = r cos(t),
 * d[j + 8] = r sin(t) with r = sqrt(-2 log(1 - d[j])), t = 2pi d[j + 8]
 * (j = 0..7), bit for bit as the AVX2 kernel (mean 0, std 1). */
void cdf_torch_avx2_fill16(float d[16]);

/* The lane functions (exposed for tests): log256_ps and sincos256_ps. */
float cdf_avx_mathfun_log(float x);
void cdf_avx_mathfun_sincos(float x, float *s, float *c);

#endif
