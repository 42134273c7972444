/* torch CUDA randn on the CPU; see torch_cuda.h.
 * Launch: block 256, grid = min(ceil(numel/256), sm_count * (threads_per_sm /
 * 256)), stride S = 256 * grid.  Thread t runs curand_init(seed, t, offset)
 * and, per iteration k, curand_normal4 (one Philox block, counter word 0 =
 * offset/4 + k): element k*4S + lane*S + t takes lane `lane` (x,y -> lanes 0,1;
 * z,w -> lanes 2,3).  The offset then grows by 4 * iterations. */
#include "rng/torch_cuda.h"

#include <math.h>

#include "rng/philox.h"
#include "rng/rng_math.h"

/* AUTOMATIC1111: np.float32(2.3283064e-10) and np.float32(2.3283064e-10 *
 * 6.2831855), widened to double; the halves are float halvings. */
static const double INV32 = 0x1p-32;
static const double INV32_2PI = 0x1.921fb6p-30;

void cdf_torch_cuda_box_muller(uint32_t x, uint32_t y, float *sin_part, float *cos_part) {
    double u = (double)x * INV32 + INV32 / 2;
    double v = (double)y * INV32_2PI + INV32_2PI / 2;
    double s = sqrt(-2.0 * cdf_rm_log(u));
    if (sin_part) *sin_part = (float)(s * cdf_rm_sin(v));
    if (cos_part) *cos_part = (float)(s * cdf_rm_cos(v));
}

uint64_t cdf_torch_cuda_stride(const cdf_torch_cuda *c, uint64_t numel) {
    uint64_t grid = (numel + CDF_CUDA_BLOCK - 1) / CDF_CUDA_BLOCK;
    if (c->sm_count) {
        uint64_t cap = (uint64_t)c->sm_count * (c->threads_per_sm / CDF_CUDA_BLOCK);
        if (cap < grid) grid = cap;
    }
    if (grid == 0) grid = 1;
    return grid * CDF_CUDA_BLOCK;
}

void cdf_torch_cuda_randn(cdf_torch_cuda *c, float *out, size_t n) {
    if (n == 0) return;
    uint64_t S = cdf_torch_cuda_stride(c, n);
    uint64_t iters = (n - 1) / (4 * S) + 1;
    uint32_t key[2] = {(uint32_t)c->seed, (uint32_t)(c->seed >> 32)}; /* [2] seed low, high */
    uint64_t base = c->offset / 4; /* torch keeps the offset a multiple of 4 */
    for (uint64_t k = 0; k < iters; k++) {
        uint64_t first = k * 4 * S;
        uint64_t threads = n - first < S ? n - first : S; /* threads with at least one element */
        for (uint64_t t = 0; t < threads; t++) {
            uint64_t cnt = base + k;
            uint32_t ctr[4] = {(uint32_t)cnt, (uint32_t)(cnt >> 32), (uint32_t)t, (uint32_t)(t >> 32)};
            uint32_t w[4]; /* [4] curand4(): lanes x, y, z, w */
            cdf_philox4x32_10(ctr, key, w);
            uint64_t e = first + t;
            uint64_t e1 = e + S, e2 = e + 2 * S, e3 = e + 3 * S;
            float s0, c0;
            cdf_torch_cuda_box_muller(w[0], w[1], &s0, e1 < n ? &c0 : NULL);
            out[e] = s0;
            if (e1 < n) out[e1] = c0;
            if (e2 < n) {
                float s1, c1;
                cdf_torch_cuda_box_muller(w[2], w[3], &s1, e3 < n ? &c1 : NULL);
                out[e2] = s1;
                if (e3 < n) out[e3] = c1;
            }
        }
    }
    c->offset += iters * 4;
}
