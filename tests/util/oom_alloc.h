/* A counting allocator for allocation-failure tests (libuv's OOM style):
 * fails the fail_at-th allocation and counts the blocks still live. */
#ifndef CDF_TEST_OOM_ALLOC_H
#define CDF_TEST_OOM_ALLOC_H

#include "cdiffusers/core.h"

typedef struct tu_oom {
    long calls;   /* allocations so far (malloc and realloc) */
    long fail_at; /* 1-based index of the allocation to fail; 0: none */
    long failed;  /* how many were failed */
    long live;    /* blocks handed out and not yet freed */
} tu_oom;

/* The hook for cdf_set_allocator, counting into s. */
cdf_allocator tu_oom_allocator(tu_oom *s);

#endif
