/* Helpers shared by the libFuzzer harnesses: a private tmpfs folder per
 * process (the readers under test take paths), and splitting one input into
 * several files. */
#ifndef CDF_FUZZ_UTIL_H
#define CDF_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The harness's folder: $CDF_FUZZ_TMP or /dev/shm (else /tmp), one per process. */
static inline const char *fz_dir(void) {
    static char dir[512];
    if (!dir[0]) {
        const char *base = getenv("CDF_FUZZ_TMP");
        struct stat st;
        if (!base) base = stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/cdf-fuzz-%ld", base, (long)getpid());
        mkdir(dir, 0700);
    }
    return dir;
}

/* Path of file `name` inside fz_dir() (static buffer per slot 0..3). */
static inline const char *fz_path(int slot, const char *name) {
    static char buf[4][640];
    snprintf(buf[slot & 3], sizeof buf[0], "%s/%s", fz_dir(), name);
    return buf[slot & 3];
}

/* Writes n bytes to path; aborts on a host error (that is not a finding). */
static inline void fz_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* Splits data at the separator "\n####\n" into at most max parts (the last
 * part takes the rest); returns the count.  Absent parts have length 0. */
static inline int fz_split(const uint8_t *data, size_t n, const uint8_t **part, size_t *len, int max) {
    static const char sep[] = "\n####\n";
    const size_t sl = sizeof sep - 1;
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i + sl <= n && k < max - 1; i++)
        if (memcmp(data + i, sep, sl) == 0) {
            part[k] = data + start;
            len[k++] = i - start;
            start = i + sl;
            i += sl - 1;
        }
    part[k] = data + start;
    len[k++] = n - start;
    for (int j = k; j < max; j++) part[j] = data + n, len[j] = 0;
    return k;
}

/* A NUL-terminated copy of data[0..n) from malloc (the caller frees it). */
static inline char *fz_cstr(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, data, n);
    s[n] = 0;
    return s;
}

#define FZ_CHECK(cond)                                                                \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* A failure must be recorded in err with a message; success leaves no error. */
#define FZ_CHECK_STATUS(s, err)                                                     \
    do {                                                                            \
        if ((s) != CDF_OK) {                                                        \
            FZ_CHECK((err).status == (s));                                          \
            FZ_CHECK((err).msg[0] != 0);                                            \
            FZ_CHECK(memchr((err).msg, 0, sizeof (err).msg) != NULL);               \
        }                                                                           \
    } while (0)

#endif
