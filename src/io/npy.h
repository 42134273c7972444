/* NumPy .npy files (format 1.0 written exactly as numpy.save does; 1.0, 2.0
 * and 3.0 read), little-endian, C order. */
#ifndef CDF_IO_NPY_H
#define CDF_IO_NPY_H

#include "cdiffusers/core.h"

/* Largest header read (numpy's own default limit is 10000). */
#define CDF_NPY_MAX_HEADER 65536

/* Writes t (CDF_F32 '<f4', CDF_F64 '<f8', CDF_F16 '<f2', CDF_I64 '<i8',
 * CDF_I32 '<i4', CDF_U8 '|u1') atomically to path; t is only read.
 * BF16 -> CDF_ERR_UNSUPPORTED (numpy has no such dtype). */
cdf_status cdf_npy_write(const char *path, const cdf_tensor *t, cdf_error *err);
/* Reads path into *out; out->data is cdf_malloc'd and the caller frees it
 * with cdf_free (on error *out has data == NULL).  Rejects fortran_order
 * True, big-endian and unknown dtypes, more than CDF_MAX_DIMS dims, and files
 * whose size does not match the header exactly. */
cdf_status cdf_npy_read(const char *path, cdf_tensor *out, cdf_error *err);

#endif
