/* Atomic output: temporary file in the destination folder + rename. */
#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Frees the owned strings and resets af (the file must be closed already). */
static void af_reset(cdf_atomic_file *af) {
    cdf_free(af->path);
    cdf_free(af->tmp_path);
    af->fp = NULL;
    af->path = NULL;
    af->tmp_path = NULL;
}

/* Folder part of path ("." when it has none); cdf_malloc'd, NULL on no memory. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return cdf_strdup(".");
    size_t n = (size_t)(slash - path);
    if (n == 0) n = 1; /* "/name" -> "/" */
    char *d = cdf_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

/* Best effort: makes the rename durable; errors are ignored (some file
 * systems refuse fsync on folders). */
static void sync_dir(const char *path) {
    char *d = dir_of(path);
    if (!d) return;
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    cdf_free(d);
}

cdf_status cdf_atomic_open(const char *path, cdf_atomic_file *af, cdf_error *err) {
    af->fp = NULL;
    af->path = NULL;
    af->tmp_path = NULL;
    if (!path || !*path) return cdf_error_set(err, CDF_ERR_ARG, "atomic output: empty path");
    size_t plen = strlen(path);
    if (path[plen - 1] == '/') return cdf_error_set(err, CDF_ERR_ARG, "%s: output path names a folder", path);
    af->path = cdf_strdup(path);
    /* "<path>.<pid>.<nonce>.tmp": same folder, so rename stays atomic. */
    size_t tcap = plen + 64;
    af->tmp_path = cdf_malloc(tcap);
    if (!af->path || !af->tmp_path) {
        af_reset(af);
        return cdf_error_set(err, CDF_ERR_NOMEM, "%s: out of memory", path);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t nonce = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)af;
    int fd = -1;
    int last_errno = 0;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        nonce = nonce * 6364136223846793005u + 1442695040888963407u;
        snprintf(af->tmp_path, tcap, "%s.%ld.%08x.tmp", path, (long)getpid(), (unsigned)(nonce >> 32));
        fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        last_errno = errno;
        if (fd < 0 && last_errno != EEXIST) break;
    }
    if (fd < 0) {
        af_reset(af);
        return cdf_error_set(err, CDF_ERR_IO, "%s: cannot create output file: %s", path, strerror(last_errno));
    }
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        int e = errno;
        close(fd);
        unlink(af->tmp_path);
        af_reset(af);
        return cdf_error_set(err, CDF_ERR_IO, "%s: cannot open output stream: %s", path, strerror(e));
    }
    return CDF_OK;
}

cdf_status cdf_atomic_commit(cdf_atomic_file *af, cdf_error *err) {
    if (!af->fp) {
        af_reset(af);
        return cdf_error_set(err, CDF_ERR_ARG, "atomic output: commit on a file that is not open");
    }
    const char *what = NULL;
    int e = 0;
    if (ferror(af->fp)) {
        what = "write failed";
        e = EIO;
    } else if (fflush(af->fp) != 0) {
        what = "write failed";
        e = errno;
    } else if (fsync(fileno(af->fp)) != 0) {
        what = "fsync failed";
        e = errno;
    }
    int close_rc = fclose(af->fp);
    af->fp = NULL;
    if (!what && close_rc != 0) {
        what = "close failed";
        e = errno;
    }
    if (!what && rename(af->tmp_path, af->path) != 0) {
        what = "rename failed";
        e = errno;
    }
    if (what) {
        unlink(af->tmp_path);
        cdf_error_set(err, CDF_ERR_IO, "%s: %s: %s", af->path, what, strerror(e));
        af_reset(af);
        return CDF_ERR_IO;
    }
    sync_dir(af->path);
    af_reset(af);
    return CDF_OK;
}

void cdf_atomic_abort(cdf_atomic_file *af) {
    if (!af) return;
    if (af->fp) {
        fclose(af->fp);
        af->fp = NULL;
    }
    if (af->tmp_path) unlink(af->tmp_path);
    af_reset(af);
}
