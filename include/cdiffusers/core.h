/* cdiffusers core: status codes, error/notice sink, allocator hook, dtypes.
 * Every other public header includes this one. */
#ifndef CDIFFUSERS_CORE_H
#define CDIFFUSERS_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CDF_VERSION_MAJOR 0
#define CDF_VERSION_MINOR 1
#define CDF_VERSION_PATCH 0
#define CDF_VERSION_STRING "0.1.0"

/* One table for every status code: X(name, value, message). */
#define CDF_STATUS_TABLE(X)                                              \
    X(OK, 0, "ok")                                                       \
    X(ERR_NOMEM, 1, "out of memory")                                     \
    X(ERR_IO, 2, "I/O error")                                            \
    X(ERR_FORMAT, 3, "malformed file")                                   \
    X(ERR_CONFIG, 4, "invalid or unsupported config value")              \
    X(ERR_SHAPE, 5, "shape mismatch")                                    \
    X(ERR_MISSING, 6, "missing file or tensor")                          \
    X(ERR_ARG, 7, "invalid argument")                                    \
    X(ERR_UNSUPPORTED, 8, "unsupported feature")                         \
    X(ERR_INTERRUPTED, 9, "interrupted")                                 \
    X(ERR_LIMIT, 10, "size limit exceeded")                              \
    X(ERR_INTERNAL, 11, "internal error")

typedef enum cdf_status {
#define CDF_X_ENUM(name, value, msg) CDF_##name = value,
    CDF_STATUS_TABLE(CDF_X_ENUM)
#undef CDF_X_ENUM
} cdf_status;

/* Static string naming the code, e.g. "ERR_SHAPE"; never NULL. */
const char *cdf_status_name(cdf_status s);
/* Static one-line description of the code; never NULL. */
const char *cdf_status_message(cdf_status s);

/* Notice levels passed to a notice callback. */
typedef enum cdf_notice_level { CDF_NOTICE_INFO = 0, CDF_NOTICE_WARN = 1 } cdf_notice_level;
typedef void (*cdf_notice_fn)(cdf_notice_level level, const char *msg, void *user);

/* Error sink owned by the caller (stack or handle): the last error's code and
 * message, plus an optional callback receiving notices (unknown config keys,
 * skipped components...).  Zero-initialise it; all fields are plain data. */
typedef struct cdf_error {
    cdf_status status;   /* last failure, CDF_OK when none */
    char msg[1024];      /* NUL-terminated message naming file/tensor/field */
    cdf_notice_fn on_notice; /* may be NULL: notices are dropped */
    void *notice_user;
} cdf_error;

/* Records status and a printf-style message in e (e may be NULL); returns s. */
cdf_status cdf_error_set(cdf_error *e, cdf_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Prefixes the message already in e with "<prefix>: " (context on the way up); returns e->status. */
cdf_status cdf_error_prefix(cdf_error *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Sends a notice to e->on_notice if set; never fails. */
void cdf_notice(cdf_error *e, cdf_notice_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Clears e to CDF_OK with an empty message, keeping the notice callback. */
void cdf_error_clear(cdf_error *e);

/* Allocator hook.  Every allocation the library makes (its own and cJSON's,
 * libpng's) goes through these.  Functions must be thread-safe. */
typedef struct cdf_allocator {
    void *(*malloc_fn)(size_t size, void *user);
    void *(*realloc_fn)(void *ptr, size_t size, void *user);
    void (*free_fn)(void *ptr, void *user);
    void *user;
} cdf_allocator;

/* Installs a (copied) allocator; NULL restores malloc/realloc/free.  Call it
 * only while no cdiffusers object is alive. */
void cdf_set_allocator(const cdf_allocator *a);

/* Library allocation entry points (public so tools and tests share them).
 * cdf_calloc/cdf_mallocn check n*size for overflow and return NULL on it. */
void *cdf_malloc(size_t size);
void *cdf_calloc(size_t n, size_t size);
void *cdf_mallocn(size_t n, size_t size);
void *cdf_realloc(void *p, size_t size);
void cdf_free(void *p);
/* Copy of s in memory from cdf_malloc; caller frees with cdf_free. */
char *cdf_strdup(const char *s);
/* 64-byte aligned block from the hook; free with cdf_aligned_free only. */
void *cdf_aligned_alloc(size_t size);
void cdf_aligned_free(void *p);

/* Element types of tensors and weights. */
typedef enum cdf_dtype {
    CDF_F32 = 0,
    CDF_F16 = 1,
    CDF_BF16 = 2,
    CDF_F64 = 3,
    CDF_I64 = 4,
    CDF_I32 = 5,
    CDF_U8 = 6
} cdf_dtype;

/* Size in bytes of one element; 0 for an unknown value. */
size_t cdf_dtype_size(cdf_dtype t);
/* Static name ("float32", "float16", "bfloat16", ...). */
const char *cdf_dtype_name(cdf_dtype t);

/* Arithmetic of matrix products and convolutions.  FP32 (the default):
 * float32 operands, fused multiply-adds.  BF16: both operands rounded to
 * bfloat16 and summed in float32 pair by pair as the vdpbf16ps instruction
 * does (src/tensor/gemm.h has the exact contract); everything else float32. */
typedef enum cdf_precision { CDF_PRECISION_FP32 = 0, CDF_PRECISION_BF16 = 1 } cdf_precision;
/* Static name ("fp32", "bf16"); NULL for an unknown value. */
const char *cdf_precision_name(cdf_precision p);
/* Parses "fp32" / "bf16" (also "float32" / "bfloat16"); 0, or -1 when unknown. */
int cdf_precision_from_name(const char *name, cdf_precision *out);

#define CDF_MAX_DIMS 8

/* A dense C-order tensor.  Whoever fills `data` says who frees it. */
typedef struct cdf_tensor {
    cdf_dtype dtype;
    int ndim;
    int64_t shape[CDF_MAX_DIMS];
    void *data;
} cdf_tensor;

/* Number of elements (product of shape); 0 when any dim is 0. */
int64_t cdf_tensor_numel(const cdf_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
