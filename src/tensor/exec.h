/* Per-run execution state: thread count, error sink and grow-only scratch
 * buffers.  One per running pipeline; never shared between threads of
 * different runs.  Weights are not here (they are read-only and shareable). */
#ifndef CDF_TENSOR_EXEC_H
#define CDF_TENSOR_EXEC_H

#include "cdiffusers/core.h"

#define CDF_EXEC_SLOTS 5
#define CDF_SLOT_GEMM 4 /* cdf_gemm's packed panels (the other slots belong to the callers) */

/* Which GEMM micro-kernel to use: the best the CPU has, or the portable one. */
typedef enum cdf_isa { CDF_ISA_AUTO = 0, CDF_ISA_SCALAR = 1 } cdf_isa;

typedef struct cdf_exec {
    int threads;                          /* >= 1; OpenMP loops use this many */
    cdf_isa isa;                          /* GEMM kernel choice (results are the same bytes either way) */
    cdf_error *err;                       /* where failures are reported */
    float *scratch[CDF_EXEC_SLOTS];       /* slot buffers, 64-byte aligned, cdf_aligned_alloc'd */
    size_t scratch_cap[CDF_EXEC_SLOTS];   /* capacity of each slot in floats */
    volatile int *interrupt;              /* optional: set non-zero to stop at the next step */
    double gemm_flops;                    /* 2*m*n*k summed over cdf_gemm calls (a work counter for benchmarks) */
    unsigned cpu_features;                /* the GEMM kernels' CPU checks, read by the first cdf_gemm (0: not yet) */
} cdf_exec;

/* Fills ex for `threads` threads reporting into err; no allocation. */
void cdf_exec_init(cdf_exec *ex, int threads, cdf_error *err);
/* Frees the scratch buffers (ex itself belongs to the caller). */
void cdf_exec_release(cdf_exec *ex);
/* Scratch slot `slot` with room for n floats (contents undefined); NULL and
 * CDF_ERR_NOMEM recorded in ex->err when it cannot grow. */
float *cdf_exec_scratch(cdf_exec *ex, int slot, size_t n);
/* Threads worth using for a loop of about `work` simple operations: 1 for
 * small loops (waking a team costs more than it saves), else ex->threads.
 * Results never depend on it: loops split independent outputs only. */
int cdf_exec_threads_for(const cdf_exec *ex, double work);

#endif
