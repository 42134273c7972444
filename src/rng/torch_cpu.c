/* torch CPU randn / rand (aten/src/ATen/native/cpu/DistributionTemplates.h,
 * core/DistributionsHelper.h, core/TransformationHelper.h, torch 1.13):
 *  - uniforms: the low 24 (float32), 53 (float64, of random64()), 11 (float16)
 *    or 8 (bfloat16) bits of the engine's words, times 2^-bits;
 *  - numel < 16: each element is normal_distribution<double>: Box-Muller in
 *    double (first uniform the angle), the sin half cached in the generator;
 *  - numel >= 16: normal_fill: n uniforms of the output dtype, each full block
 *    of 16 transformed (pairs at distance 8, the first 8 feed the radii), a
 *    ragged tail recomputed from 16 fresh uniforms over the last 16 elements;
 *    float32 uses the AVX2 kernel when the capability is AVX2. */
#include "rng/torch_cpu.h"

#include <math.h>
#include <string.h>

#include "rng/rng_math.h"
#include "rng/torch_avx2.h"
#include "tensor/half.h"

#define TWO_PI_D (2.0 * 3.14159265358979323846) /* c10::pi<double> doubled */

void cdf_torch_cpu_seed(cdf_torch_cpu *t, uint64_t seed) {
    t->initial_seed = seed;
    t->seeded = 1;
    cdf_mt19937_seed(&t->mt, (uint32_t)(seed & 0xffffffffu));
    t->has_normal = 0;
    t->normal = 0.0;
    t->has_float_normal = 0;
    t->float_normal = 0.0f;
}

uint32_t cdf_torch_cpu_random(cdf_torch_cpu *t) { return cdf_mt19937_next(&t->mt); }

uint64_t cdf_torch_cpu_random64(cdf_torch_cpu *t) {
    uint64_t hi = cdf_mt19937_next(&t->mt);
    return (hi << 32) | cdf_mt19937_next(&t->mt);
}

static double uniform_f64(cdf_torch_cpu *t) {
    return (double)(cdf_torch_cpu_random64(t) & ((1ULL << 53) - 1)) * (1.0 / 9007199254740992.0);
}
static float uniform_f32(cdf_torch_cpu *t) { return (float)(cdf_torch_cpu_random(t) & 0xffffffu) * 0x1p-24f; }
static float uniform_f16(cdf_torch_cpu *t) { return (float)(cdf_torch_cpu_random(t) & 0x7ffu) * 0x1p-11f; }
static float uniform_bf16(cdf_torch_cpu *t) { return (float)(cdf_torch_cpu_random(t) & 0xffu) * 0x1p-8f; }

double cdf_torch_cpu_normal(cdf_torch_cpu *t) {
    if (t->has_normal) {
        t->has_normal = 0;
        return t->normal * 1.0 + 0.0; /* transformation::normal: x * std + mean */
    }
    double u1 = uniform_f64(t);
    double u2 = uniform_f64(t);
    double r = sqrt(-2.0 * cdf_rm_log(1.0 - u2));
    double theta = TWO_PI_D * u1;
    t->normal = r * cdf_rm_sin(theta);
    t->has_normal = 1;
    return r * cdf_rm_cos(theta) * 1.0 + 0.0;
}

/* ---- normal_fill_16 per dtype (scalar kernels) ---- */

static void fill16_f64(double d[16]) {
    for (int j = 0; j < 8; j++) {
        double u1 = 1.0 - d[j];
        double u2 = d[j + 8];
        double radius = sqrt(-2.0 * cdf_rm_log(u1));
        double theta = TWO_PI_D * u2;
        d[j] = radius * cdf_rm_cos(theta) * 1.0 + 0.0;
        d[j + 8] = radius * cdf_rm_sin(theta) * 1.0 + 0.0;
    }
}

static void fill16_f32(float d[16]) {
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * cdf_rm_logf(u1));
        float theta = (float)(TWO_PI_D * (double)u2); /* 2.0f * pi<double> * u2: the product in double */
        d[j] = radius * cdf_rm_cosf(theta) * 1.0f + 0.0f;
        d[j + 8] = radius * cdf_rm_sinf(theta) * 1.0f + 0.0f;
    }
}

/* at::Half: every assignment rounds to binary16; arithmetic is float. */
static float to_half(float f) { return cdf_f16_to_f32(cdf_f32_to_f16(f)); }

static void fill16_f16(float d[16]) {
    for (int j = 0; j < 8; j++) {
        float u1 = to_half(1.0f - d[j]);
        float u2 = d[j + 8];
        float radius = to_half(sqrtf(-2.0f * cdf_rm_logf(u1)));
        float theta = to_half((float)(TWO_PI_D * (double)u2));
        d[j] = to_half(radius * cdf_rm_cosf(theta) * 1.0f + 0.0f);
        d[j + 8] = to_half(radius * cdf_rm_sinf(theta) * 1.0f + 0.0f);
    }
}

/* c10::BFloat16: assignments round to nearest even; BFloat16-math.h makes
 * log/cos/sin return BFloat16 and BFloat16 * BFloat16 rounds. */
static float to_bf16(float f) { return cdf_bf16_to_f32(cdf_f32_to_bf16(f)); }

static void fill16_bf16(float d[16]) {
    for (int j = 0; j < 8; j++) {
        float u1 = to_bf16(1.0f - d[j]);
        float u2 = d[j + 8];
        float lg = to_bf16(cdf_rm_logf(u1));
        float radius = to_bf16(sqrtf(to_bf16(-2.0f * lg)));
        float theta = to_bf16((float)(TWO_PI_D * (double)u2));
        float c = to_bf16(cdf_rm_cosf(theta)), s = to_bf16(cdf_rm_sinf(theta));
        d[j] = to_bf16(to_bf16(radius * c) * 1.0f + 0.0f);
        d[j + 8] = to_bf16(to_bf16(radius * s) * 1.0f + 0.0f);
    }
}

/* ---- storing ---- */

static void store(cdf_dtype dtype, unsigned char *dst, size_t i, double v) {
    switch (dtype) {
    case CDF_F64:
        memcpy(dst + 8 * i, &v, 8);
        break;
    case CDF_F32: {
        float f = (float)v;
        memcpy(dst + 4 * i, &f, 4);
        break;
    }
    case CDF_F16: {
        uint16_t h = cdf_f32_to_f16((float)v); /* static_cast<Half>(double): via float */
        memcpy(dst + 2 * i, &h, 2);
        break;
    }
    default: {
        uint16_t h = cdf_f32_to_bf16((float)v);
        memcpy(dst + 2 * i, &h, 2);
        break;
    }
    }
}

static double draw_uniform(cdf_torch_cpu *t, cdf_dtype dtype) {
    switch (dtype) {
    case CDF_F64: return uniform_f64(t);
    case CDF_F32: return uniform_f32(t);
    case CDF_F16: return uniform_f16(t);
    default: return uniform_bf16(t);
    }
}

/* 16 uniforms of dtype into b, transformed by dtype's kernel. */
static void block16(cdf_torch_cpu *t, cdf_dtype dtype, double b[16]) {
    if (dtype == CDF_F64) {
        for (int j = 0; j < 16; j++) b[j] = uniform_f64(t);
        fill16_f64(b);
        return;
    }
    float f[16]; /* [16] one block: uniforms, then normals */
    for (int j = 0; j < 16; j++) f[j] = (float)draw_uniform(t, dtype);
    if (dtype == CDF_F32) {
        if (t->avx2)
            cdf_torch_avx2_fill16(f);
        else
            fill16_f32(f);
    } else if (dtype == CDF_F16) {
        fill16_f16(f);
    } else {
        fill16_bf16(f);
    }
    for (int j = 0; j < 16; j++) b[j] = f[j]; /* exact: stored back as dtype below */
}

static int dtype_ok(cdf_dtype dtype) {
    return dtype == CDF_F32 || dtype == CDF_F64 || dtype == CDF_F16 || dtype == CDF_BF16;
}

int cdf_torch_cpu_randn(cdf_torch_cpu *t, cdf_dtype dtype, void *out, size_t n) {
    if (!dtype_ok(dtype)) return -1;
    unsigned char *dst = out;
    if (n < 16) {
        for (size_t i = 0; i < n; i++) store(dtype, dst, i, cdf_torch_cpu_normal(t));
        return 0;
    }
    /* normal_fill draws all n uniforms, then transforms the blocks: drawing
     * block by block consumes the same words in the same order. */
    double b[16]; /* [16] one transformed block */
    size_t full = n / 16 * 16;
    for (size_t i = 0; i < full; i += 16) {
        block16(t, dtype, b);
        for (int j = 0; j < 16; j++) store(dtype, dst, i + (size_t)j, b[j]);
    }
    if (n % 16 != 0) {
        for (size_t i = full; i < n; i++) (void)draw_uniform(t, dtype); /* overwritten by the recomputed tail */
        block16(t, dtype, b);
        for (int j = 0; j < 16; j++) store(dtype, dst, n - 16 + (size_t)j, b[j]);
    }
    return 0;
}

int cdf_torch_cpu_rand(cdf_torch_cpu *t, cdf_dtype dtype, void *out, size_t n) {
    if (!dtype_ok(dtype)) return -1;
    unsigned char *dst = out;
    for (size_t i = 0; i < n; i++) store(dtype, dst, i, draw_uniform(t, dtype));
    return 0;
}
