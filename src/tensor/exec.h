/* Per-run execution state: thread count, error sink and grow-only scratch
 * buffers.  One per running pipeline; never shared between threads of
 * different runs.  Weights are not here (they are read-only and shareable). */
#ifndef CDF_TENSOR_EXEC_H
#define CDF_TENSOR_EXEC_H

#include "cdiffusers/core.h"

#define CDF_EXEC_SLOTS 6
#define CDF_SLOT_GEMM 4     /* cdf_gemm's packed panels (slots 0-3 belong to the callers) */
#define CDF_SLOT_WINOGRAD 5 /* cdf_conv3x3_winograd's transformed weights, inputs and products */

/* Which kernels to use: the best the CPU has, or the portable ones. */
typedef enum cdf_isa { CDF_ISA_AUTO = 0, CDF_ISA_SCALAR = 1 } cdf_isa;

/* CPU features the SIMD kernels need (cdf_exec_cpu). */
#define CDF_CPU_AVX2_FMA 2u /* AVX2 and FMA */
#define CDF_CPU_F16C 4u     /* F16C with AVX */

/* What a pipeline run lets cdf_exec_derived hold (bytes). */
#define CDF_EXEC_DERIVED_RUN ((size_t)256 << 20)

/* A buffer derived from weights, kept for the run (cdf_exec_derived). */
typedef struct cdf_derived {
    const void *key; /* the weights it was derived from */
    size_t n;        /* floats */
    float *data;     /* [n], cdf_aligned_alloc'd */
} cdf_derived;

typedef struct cdf_exec {
    int threads;                          /* >= 1; OpenMP loops use this many */
    cdf_isa isa;                          /* kernel choice (results are the same bytes either way) */
    cdf_precision precision;              /* GEMM arithmetic (fp32 default; bf16 changes results) */
    cdf_error *err;                       /* where failures are reported */
    float *scratch[CDF_EXEC_SLOTS];       /* slot buffers, 64-byte aligned, cdf_aligned_alloc'd */
    size_t scratch_cap[CDF_EXEC_SLOTS];   /* capacity of each slot in floats */
    volatile int *interrupt;              /* optional: set non-zero to stop at the next step */
    double gemm_flops;                    /* 2*m*n*k summed over cdf_gemm calls (a work counter for benchmarks) */
    unsigned cpu_features;                /* CDF_CPU_* bits | 1 once read (0: not yet); see cdf_exec_cpu */
    size_t derived_cap;                   /* bytes cdf_exec_derived may hold: 0 (the default) turns it off */
    size_t derived_bytes;                 /* bytes it holds */
    cdf_derived *derived;                 /* [nderived] */
    int nderived;
} cdf_exec;

/* Fills ex for `threads` threads reporting into err; no allocation. */
void cdf_exec_init(cdf_exec *ex, int threads, cdf_error *err);
/* Frees the scratch buffers (ex itself belongs to the caller). */
void cdf_exec_release(cdf_exec *ex);
/* Scratch slot `slot` with room for n floats (contents undefined); NULL and
 * CDF_ERR_NOMEM recorded in ex->err when it cannot grow. */
float *cdf_exec_scratch(cdf_exec *ex, int slot, size_t n);
/* A buffer of n floats derived from the weights at key (the Winograd
 * convolution's transformed weights), kept until cdf_exec_release: *out is
 * the one held under key (*fresh = 0) or a new one to fill (*fresh = 1),
 * or NULL when derived_cap is 0, when n more floats would pass it, or when
 * key holds a buffer of another size (the caller then computes into scratch
 * as usual: the same bytes either way).  CDF_OK, or CDF_ERR_NOMEM recorded
 * in ex->err.  Turn it on only for an exec whose weights stay mapped and
 * unchanged while it lives (a pipeline run). */
cdf_status cdf_exec_derived(cdf_exec *ex, const void *key, size_t n, float **out, int *fresh);
/* The CDF_CPU_* features kernels may use: none for CDF_ISA_SCALAR, else
 * what the CPU has (read once per exec, then cached in ex->cpu_features). */
unsigned cdf_exec_cpu(cdf_exec *ex);
/* Threads worth using for a loop of about `work` simple operations: 1 for
 * small loops (waking a team costs more than it saves), else ex->threads.
 * Results never depend on it: loops split independent outputs only. */
int cdf_exec_threads_for(const cdf_exec *ex, double work);

#endif
