/* Image resizing as torch computes it on CPU float32. */
#ifndef CDF_TENSOR_RESIZE_H
#define CDF_TENSOR_RESIZE_H

#include "tensor/exec.h"

/* y [n, ho, wo] = antialiased bicubic resize of x [n, h, w] (n = batch * channels planes), as torch
   F.interpolate(..., mode="bicubic", align_corners=False, antialias=True) on CPU float32. Caller owns both.
   Torch 1.13's separable kernel, to the bit: a horizontal pass into [n, h, wo], then a vertical pass; each
   output is a fixed sum over a window of the input with PIL-style cubic weights (a = -0.5, support 2, scaled by
   in/out when downscaling, renormalised over the window clipped to the image).  Both passes always run, also
   for an unchanged size (as in torch, where NaN/Inf then spread to the neighbours).  Threads split planes only,
   so plane k's result does not depend on n or the thread count.  Sizes must be >= 1; x and y must not alias.
   Errors: CDF_ERR_ARG (bad size), CDF_ERR_LIMIT, CDF_ERR_NOMEM; y is then unspecified. */
cdf_status cdf_resize_bicubic_aa(cdf_exec *ex, const float *x, int64_t n, int h, int w, int ho, int wo, float *y,
                                 cdf_error *err);

#endif
