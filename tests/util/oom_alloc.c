#include "oom_alloc.h"

#include <stdlib.h>

static void *oom_malloc(size_t n, void *u) {
    tu_oom *s = u;
    if (++s->calls == s->fail_at) {
        s->failed++;
        return NULL;
    }
    void *p = malloc(n);
    if (p) s->live++;
    return p;
}

static void *oom_realloc(void *p, size_t n, void *u) {
    tu_oom *s = u;
    if (++s->calls == s->fail_at) {
        s->failed++;
        return NULL;
    }
    void *q = realloc(p, n);
    if (q && !p) s->live++;
    return q;
}

static void oom_free(void *p, void *u) {
    tu_oom *s = u;
    if (p) s->live--;
    free(p);
}

cdf_allocator tu_oom_allocator(tu_oom *s) {
    cdf_allocator a = {oom_malloc, oom_realloc, oom_free, s};
    return a;
}
