/* Scalar reproductions of the float math torch 1.13 and numpy 1.24 use in the
 * schedulers, so that results match them bit for bit rather than libm:
 *  - torch.log / torch.exp / torch.expm1 on float32 tensors (any size, 0-dim
 *    included) go through SLEEF's u10 AVX2+FMA kernels (Sleef_logf8_u10, ...);
 *  - numpy's np.log on float32 arrays uses its AVX2/AVX512F rational
 *    approximation (max 3.83 ulp) on x86-64 machines with AVX2;
 *  - torch.linalg.solve of a small float32 system (UniPC's rho
 *    coefficients): OpenBLAS 0.3.21's getrf + getrs as torch calls them,
 *    written out in C with the rounding of its AVX-512 kernels (torch's own
 *    result depends on the CPU's OpenBLAS kernel; ours does not).
 * Internal to src/schedulers. */
#ifndef CDF_SCHEDULERS_SCHED_FMATH_H
#define CDF_SCHEDULERS_SCHED_FMATH_H

/* SLEEF xlogf_u1 (1.0 ulp), as torch.log on float32. */
float cdf_sleef_logf(float d);
/* SLEEF xexpf (1.0 ulp), as torch.exp on float32. */
float cdf_sleef_expf(float d);
/* SLEEF xexpm1f (1.0 ulp), as torch.expm1 on float32. */
float cdf_sleef_expm1f(float a);
/* numpy float32 log (SIMD path), as np.log on a float32 array or scalar. */
float cdf_np_logf(float x);

/* torch.linalg.solve(A, b) for a float32 n x n system, n <= 8: A row-major
 * [n*n], b [n], x [n] out (caller-owned; nothing allocated).  a_contiguous:
 * whether torch sees A contiguous (it then factors A^T and solves with trans
 * 'T'; a sliced R[:-1, :-1] is not contiguous: A itself, trans 'N').
 * Partial pivoting and operation order of OpenBLAS 0.3.21's sgetf2_k /
 * sgetrs, multiply-adds fused as its SkylakeX-class (AVX-512) kernels fuse
 * them: bit-identical to torch 1.13 on such CPUs and independent of the CPU
 * we run on (torch on Haswell / Zen kernels can differ by a few ulp).
 * Returns 0, -1 for n outside 1..8, or the 1-based index of a zero pivot
 * (singular: torch raises, x is then undefined). */
int cdf_sched_solve_f32(int n, const float *A, const float *b, float *x, int a_contiguous);

#endif
