/* Memory-mapped safetensors reader with strict validation.
 * Format: u64 little-endian header length N, N bytes of UTF-8 JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
 * then the byte buffer, fully covered by the tensors (no holes, no overlap). */
#ifndef CDF_IO_SAFETENSORS_H
#define CDF_IO_SAFETENSORS_H

#include "cdiffusers/core.h"

/* Largest header accepted (the safetensors reference uses the same limit). */
#define CDF_ST_MAX_HEADER ((uint64_t)100000000)

typedef struct cdf_st_tensor {
    const char *name;              /* owned by the file object */
    cdf_dtype dtype;               /* F32, F16, BF16 (also F64, I64, I32, U8 accepted) */
    int ndim;                      /* 0..CDF_MAX_DIMS */
    int64_t shape[CDF_MAX_DIMS];   /* [ndim] */
    const unsigned char *data;     /* [nbytes] little-endian, points into the mmap; may be misaligned */
    size_t nbytes;                 /* numel * element size */
} cdf_st_tensor;

typedef struct cdf_st_file cdf_st_file;

/* Maps and validates the file at path; caller owns *out (cdf_st_close).
 * Errors: CDF_ERR_MISSING (no such file), CDF_ERR_IO, CDF_ERR_FORMAT (bad
 * layout/header, naming file and tensor), CDF_ERR_UNSUPPORTED (a valid
 * safetensors dtype this library does not handle), CDF_ERR_LIMIT, CDF_ERR_NOMEM. */
cdf_status cdf_st_open(const char *path, cdf_st_file **out, cdf_error *err);
/* Number of tensors. */
size_t cdf_st_count(const cdf_st_file *f);
/* Tensor i (0 <= i < count) in data-offset order; owned by f. */
const cdf_st_tensor *cdf_st_at(const cdf_st_file *f, size_t i);
/* Tensor by exact name (binary search) or NULL; owned by f. */
const cdf_st_tensor *cdf_st_find(const cdf_st_file *f, const char *name);
/* The path f was opened with; owned by f. */
const char *cdf_st_path(const cdf_st_file *f);
/* Value of key in "__metadata__", or NULL; owned by f. */
const char *cdf_st_metadata(const cdf_st_file *f, const char *key);
/* Unmaps and frees f (NULL is fine); every pointer obtained from f dies. */
void cdf_st_close(cdf_st_file *f);
/* Drops the file's mapped pages from the process's memory (MADV_DONTNEED on
 * the read-only mapping); the data stays valid and is read back from the file
 * on the next access.  For lowering peak memory between pipeline stages. */
void cdf_st_release_pages(const cdf_st_file *f);

/* Parses a safetensors dtype string ("F32", "BF16", ...); 0 on success,
 * -1 for a valid-but-unsupported safetensors dtype, -2 for an unknown string. */
int cdf_st_dtype_from_string(const char *s, cdf_dtype *out);

#endif
