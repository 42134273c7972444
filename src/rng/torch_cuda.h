/* torch's CUDA normal noise (aten/src/ATen/native/cuda/DistributionTemplates.h,
 * torch 1.13) computed on the CPU: Philox4x32-10 streams per CUDA thread,
 * torch's grid-stride element mapping and offsets, Box-Muller as
 * AUTOMATIC1111's rng_philox.py computes it (in double, then float32). */
#ifndef CDF_RNG_TORCH_CUDA_H
#define CDF_RNG_TORCH_CUDA_H

#include <stddef.h>
#include <stdint.h>

typedef struct cdf_torch_cuda {
    uint64_t seed;           /* Philox key (all 64 bits) */
    uint64_t offset;         /* philox_offset_per_thread: 32-bit draws per thread used so far */
    uint32_t sm_count;       /* multiProcessorCount; 0 = unbounded grid */
    uint32_t threads_per_sm; /* maxThreadsPerMultiProcessor (multiple of 256) */
} cdf_torch_cuda;

/* Threads per block in torch's distribution kernels. */
#define CDF_CUDA_BLOCK 256

/* Grid stride (threads launched) for numel elements. */
uint64_t cdf_torch_cuda_stride(const cdf_torch_cuda *c, uint64_t numel);
/* torch.randn((n,), device="cuda") float32 into out[n]; advances the offset by
 * torch's counter_offset (4 per element each thread yields per lane set). */
void cdf_torch_cuda_randn(cdf_torch_cuda *c, float *out, size_t n);
/* One Box-Muller pair from two Philox words, A1111's arithmetic:
 * lane 0 = s sin(v), lane 1 = s cos(v), each rounded to float. */
void cdf_torch_cuda_box_muller(uint32_t x, uint32_t y, float *sin_part, float *cos_part);

#endif
