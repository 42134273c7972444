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
