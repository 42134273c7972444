#include <cjson/cJSON.h>

#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tu_data(const char *fmt, ...) {
    static char buf[4096];
    char rel[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(buf, sizeof buf, "%s/%s", CDF_TEST_DATA, rel);
    return buf;
}

void *tu_load_bin(const char *path, size_t count, size_t elsize) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    void *buf = malloc(count * elsize > 0 ? count * elsize : 1);
    size_t got = buf ? fread(buf, elsize, count, f) : 0;
    int extra = fgetc(f);
    fclose(f);
    if (got != count || extra != EOF) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *tu_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

double tu_max_abs_diff_f32(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

char *tu_tmpdir(void) {
    char tmpl[] = "/tmp/cdf_test_XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

void tu_rmtree(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

const char *tu_rng_golden(const char *folder, const char *file) {
    static char buf[4096];
    const char *root = getenv("CDF_RNG_GOLDEN_ROOT");
    if (root && *root)
        snprintf(buf, sizeof buf, "%s/%s/%s", root, folder, file);
    else
        snprintf(buf, sizeof buf, "%s", tu_data("%s/%s", folder, file));
    return buf;
}

void tu_expect_ran(const char *what, int n, int in_tree) {
    const char *root = getenv("CDF_RNG_GOLDEN_ROOT");
    if (root && *root) {
        if (n <= 0) fail_msg("%s: nothing ran from %s", what, root);
    } else if (n != in_tree) {
        fail_msg("%s: %d ran, tests/data holds %d", what, n, in_tree);
    }
}

uint64_t tu_mix64(uint64_t *state) {
    uint64_t x = *state += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

float tu_uniform_f32(uint64_t *state, float lo, float hi) {
    double u = (double)(tu_mix64(state) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}

float *tu_rand_f32(uint64_t *state, size_t n, float lo, float hi) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = tu_uniform_f32(state, lo, hi);
    return p;
}

cJSON *tu_parse_py_json(const char *text) {
    static const char *const words[3] = {"-Infinity", "Infinity", "NaN"};
    size_t n = strlen(text), j = 0;
    char *fixed = malloc(n * 2 + 1);
    if (!fixed) return NULL;
    for (size_t i = 0; i < n;) {
        int w = 0;
        while (w < 3 && strncmp(text + i, words[w], strlen(words[w])) != 0) w++;
        if (w < 3) {
            j += (size_t)sprintf(fixed + j, "\"%s\"", words[w]);
            i += strlen(words[w]);
        } else {
            fixed[j++] = text[i++];
        }
    }
    fixed[j] = 0;
    cJSON *r = cJSON_Parse(fixed);
    free(fixed);
    return r;
}

cJSON *tu_load_py_json(const char *path) {
    char *text = tu_read_text(path);
    if (!text) return NULL;
    cJSON *r = tu_parse_py_json(text);
    free(text);
    return r;
}

char *tu_drop_nul_escapes(const char *s, size_t n) {
    char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            if (i + 5 < n && memcmp(s + i + 1, "u0000", 5) == 0) {
                i += 5;
                continue;
            }
            o[k++] = s[i++]; /* keep an escape pair together ("\\u0000" is not NUL) */
        }
        o[k++] = s[i];
    }
    o[k] = 0;
    return o;
}

void tu_guided_f32(const float *rows, size_t n, double g, float *out) {
    for (size_t k = 0; k < n; k++) {
        const float u = rows[k], c = rows[n + k];
        float d = c - u;
        d = (float)g * d;
        out[k] = u + d;
    }
}
