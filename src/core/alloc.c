/* The one place allocations go through; tests hook it to fail the n-th. */
#include "cdiffusers/core.h"

#include <stdlib.h>
#include <string.h>

static void *default_malloc(size_t n, void *u) { (void)u; return malloc(n); }
static void *default_realloc(void *p, size_t n, void *u) { (void)u; return realloc(p, n); }
static void default_free(void *p, void *u) { (void)u; free(p); }

/* Process-wide hook (like uv_replace_allocator): set before any object lives. */
static cdf_allocator g_alloc = {default_malloc, default_realloc, default_free, NULL};

void cdf_set_allocator(const cdf_allocator *a) {
    if (a && a->malloc_fn && a->realloc_fn && a->free_fn) {
        g_alloc = *a;
    } else {
        g_alloc.malloc_fn = default_malloc;
        g_alloc.realloc_fn = default_realloc;
        g_alloc.free_fn = default_free;
        g_alloc.user = NULL;
    }
}

void *cdf_malloc(size_t size) { return g_alloc.malloc_fn(size ? size : 1, g_alloc.user); }

void *cdf_mallocn(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    return cdf_malloc(n * size);
}

void *cdf_calloc(size_t n, size_t size) {
    void *p = cdf_mallocn(n, size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *cdf_realloc(void *p, size_t size) { return g_alloc.realloc_fn(p, size ? size : 1, g_alloc.user); }

void cdf_free(void *p) {
    if (p) g_alloc.free_fn(p, g_alloc.user);
}

char *cdf_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = cdf_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Over-allocate by 64 + a pointer and keep the raw pointer just below the block. */
void *cdf_aligned_alloc(size_t size) {
    if (size > SIZE_MAX - 64 - sizeof(void *)) return NULL;
    unsigned char *raw = cdf_malloc(size + 64 + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t a = ((uintptr_t)(raw + sizeof(void *)) + 63u) & ~(uintptr_t)63u;
    ((void **)a)[-1] = raw;
    return (void *)a;
}

void cdf_aligned_free(void *p) {
    if (p) cdf_free(((void **)p)[-1]);
}

size_t cdf_dtype_size(cdf_dtype t) {
    switch (t) {
    case CDF_F32: return 4;
    case CDF_F16: return 2;
    case CDF_BF16: return 2;
    case CDF_F64: return 8;
    case CDF_I64: return 8;
    case CDF_I32: return 4;
    case CDF_U8: return 1;
    }
    return 0;
}

const char *cdf_dtype_name(cdf_dtype t) {
    switch (t) {
    case CDF_F32: return "float32";
    case CDF_F16: return "float16";
    case CDF_BF16: return "bfloat16";
    case CDF_F64: return "float64";
    case CDF_I64: return "int64";
    case CDF_I32: return "int32";
    case CDF_U8: return "uint8";
    }
    return "unknown";
}

const char *cdf_precision_name(cdf_precision p) {
    switch (p) {
    case CDF_PRECISION_FP32: return "fp32";
    case CDF_PRECISION_BF16: return "bf16";
    }
    return NULL;
}

int cdf_precision_from_name(const char *name, cdf_precision *out) {
    if (!name) return -1;
    if (!strcmp(name, "fp32") || !strcmp(name, "float32")) {
        *out = CDF_PRECISION_FP32;
        return 0;
    }
    if (!strcmp(name, "bf16") || !strcmp(name, "bfloat16")) {
        *out = CDF_PRECISION_BF16;
        return 0;
    }
    return -1;
}

/* Never overflows: a product past INT64_MAX gives INT64_MAX (so size limits
 * still refuse it), a negative dimension gives -1 (an invalid tensor). */
int64_t cdf_tensor_numel(const cdf_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 0) return 0;
        if (t->shape[i] < 0) return -1;
    }
    for (int i = 0; i < t->ndim; i++) {
        if (n > INT64_MAX / t->shape[i]) return INT64_MAX;
        n *= t->shape[i];
    }
    return n;
}
