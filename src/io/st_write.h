/* Writing safetensors files (used by make-synthetic): the header is built
 * from the tensor list first, then the data is streamed tensor by tensor. */
#ifndef CDF_IO_ST_WRITE_H
#define CDF_IO_ST_WRITE_H

#include "cdiffusers/core.h"
#include "io/atomic.h"

typedef struct cdf_st_entry {
    const char *name;             /* borrowed */
    cdf_dtype dtype;              /* F32, F16 or BF16 */
    int ndim;
    int64_t shape[CDF_MAX_DIMS];
} cdf_st_entry;

/* Fills `data` (numel * dtype bytes, C order) for entry i; non-zero status aborts. */
typedef cdf_status (*cdf_st_fill_fn)(size_t i, const cdf_st_entry *e, void *data, void *user, cdf_error *err);

/* Writes n entries, in the given order, to path atomically (nothing is left
 * behind on failure).  Data offsets follow the same order, no gaps. */
cdf_status cdf_st_write(const char *path, const cdf_st_entry *entries, size_t n, cdf_st_fill_fn fill, void *user,
                        cdf_error *err);

#endif
