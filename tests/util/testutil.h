/* Shared helpers for the cmocka tests: golden .bin loading and comparisons. */
#ifndef CDF_TESTUTIL_H
#define CDF_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cdiffusers.h"

/* Path under tests/data: returns a static buffer (not thread-safe). */
const char *tu_data(const char *fmt, ...);
/* Reads a raw golden .bin of exactly count*elsize bytes; malloc'd, or NULL. */
void *tu_load_bin(const char *path, size_t count, size_t elsize);
/* Reads a whole text file (NUL-terminated); malloc'd, or NULL. */
char *tu_read_text(const char *path);
/* max |a-b| over n floats. */
double tu_max_abs_diff_f32(const float *a, const float *b, size_t n);
/* A fresh empty temporary directory (malloc'd path); removed by tu_rmtree. */
char *tu_tmpdir(void);
void tu_rmtree(const char *path);

/* splitmix64: the next 64 bits of the stream *state (test data only). */
uint64_t tu_mix64(uint64_t *state);
/* One float uniform in [lo, hi) from *state. */
float tu_uniform_f32(uint64_t *state, float lo, float hi);
/* n such floats (malloc'd; fails the test when out of memory). */
float *tu_rand_f32(uint64_t *state, size_t n, float lo, float hi);

/* An RNG golden file: $CDF_RNG_GOLDEN_ROOT/<folder>/<file> when that is set
 * (a held-back golden set), else tests/data/<folder>/<file> (static buffer). */
const char *tu_rng_golden(const char *folder, const char *file);
/* A loop over golden data ran n times: exactly `in_tree` for tests/data (an
 * emptied or truncated manifest, or a renamed field the loop skips, fails);
 * a held-back set under CDF_RNG_GOLDEN_ROOT has its own size, but never none. */
void tu_expect_ran(const char *what, int n, int in_tree);

/* A malloc'd copy of the n-byte JSON text s without "\u0000" escapes (a C
 * string cannot hold U+0000, and the CLIP tokenizer deletes it anyway); an
 * escape pair stays together, so "\\u0000" is kept. */
char *tu_drop_nul_escapes(const char *s, size_t n);
/* Classifier-free guidance as diffusers computes it in float32, written
 * independently of the library: out[k] = u + g * (c - u) with u = rows[k],
 * c = rows[n + k] (rows [uncond; cond], n floats each). */
void tu_guided_f32(const float *rows, size_t n, double g, float *out);
/* JSON text as Python's json writes it, with -Infinity / Infinity / NaN
 * turned into the strings "-Infinity", "Infinity", "NaN" cJSON can read;
 * NULL when unparsable.  The caller frees the result with cJSON_Delete. */
struct cJSON *tu_parse_py_json(const char *text);
/* The same for a file (NULL when unreadable). */
struct cJSON *tu_load_py_json(const char *path);

#endif
