#include "batch_failures.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

/* Blocks until this process holds the whole file (F_WRLCK) or releases it. */
static int lock(batch_failures *f, short type, cli_err *e) {
    struct flock fl = {0};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    while (fcntl(f->fd, F_SETLKW, &fl) != 0) {
        if (errno == EINTR) continue;
        return cli_err_set(e, CLI_EXIT_FAIL, "%s: cannot lock: %s", f->path, strerror(errno));
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* The records of other shares (and lines that are not records) from the
 * file's text, in their order. */
static size_t keep_others(char *text, size_t len, long k, long n) {
    size_t out = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && text[j] != '\n') j++;
        size_t end = j < len ? j + 1 : j;
        int drop = 0;
        cJSON *r = j > i ? cJSON_ParseWithLength(text + i, j - i) : NULL;
        cJSON *line = r ? cJSON_GetObjectItemCaseSensitive(r, "line") : NULL;
        if (cJSON_IsNumber(line) && line->valuedouble >= 1 && line->valuedouble == (double)(long long)line->valuedouble)
            drop = ((long long)line->valuedouble - 1) % n == k;
        cJSON_Delete(r);
        if (!drop) {
            memmove(text + out, text + i, end - i);
            out += end - i;
        }
        i = end;
    }
    return out;
}

int batch_failures_open(batch_failures *f, const char *dir, long k, long n, cli_err *e) {
    snprintf(f->path, sizeof f->path, "%s/failures.jsonl", dir);
    f->fd = open(f->path, O_RDWR | O_CREAT, 0666);
    if (f->fd < 0) return cli_err_set(e, CLI_EXIT_FAIL, "%s: cannot open: %s", f->path, strerror(errno));
    if (lock(f, F_WRLCK, e)) goto fail;
    off_t size = lseek(f->fd, 0, SEEK_END);
    if (size < 0 || size > (off_t)1 << 30) {
        cli_err_set(e, CLI_EXIT_FAIL, "%s: cannot read it (or it is over 1 GiB)", f->path);
        goto fail;
    }
    char *text = malloc((size_t)size + 1);
    ssize_t got = text ? pread(f->fd, text, (size_t)size, 0) : -1;
    if (got != (ssize_t)size) {
        free(text);
        cli_err_set(e, CLI_EXIT_FAIL, "%s: cannot read it", f->path);
        goto fail;
    }
    size_t kept = keep_others(text, (size_t)size, k, n);
    int bad = kept != (size_t)size && (ftruncate(f->fd, 0) != 0 || lseek(f->fd, 0, SEEK_SET) != 0 ||
                                       write_all(f->fd, text, kept) != 0);
    free(text);
    if (bad) {
        cli_err_set(e, CLI_EXIT_FAIL, "%s: cannot rewrite it: %s", f->path, strerror(errno));
        goto fail;
    }
    if (lock(f, F_UNLCK, e)) goto fail;
    return 0;
fail:
    close(f->fd);
    f->fd = -1;
    return -1;
}

int batch_failures_add(batch_failures *f, long line, const char *id, const char *error, cli_err *e) {
    cJSON *r = cJSON_CreateObject();
    int ok = r && cJSON_AddNumberToObject(r, "line", (double)line) &&
             (id ? cJSON_AddStringToObject(r, "id", id) != NULL : cJSON_AddNullToObject(r, "id") != NULL) &&
             cJSON_AddStringToObject(r, "error", error);
    char *text = ok ? cJSON_PrintUnformatted(r) : NULL;
    cJSON_Delete(r);
    if (!text) return cli_err_set(e, CLI_EXIT_FAIL, "out of memory");
    size_t n = strlen(text);
    char *rec = realloc(text, n + 2);
    if (!rec) {
        free(text);
        return cli_err_set(e, CLI_EXIT_FAIL, "out of memory");
    }
    rec[n] = '\n';
    int rc = lock(f, F_WRLCK, e);
    if (!rc) {
        /* at the end as it is now, under the lock (another share may have added) */
        if (lseek(f->fd, 0, SEEK_END) < 0 || write_all(f->fd, rec, n + 1) != 0)
            rc = cli_err_set(e, CLI_EXIT_FAIL, "%s: cannot append: %s", f->path, strerror(errno));
        cli_err e2;
        if (lock(f, F_UNLCK, &e2) && !rc) rc = -1, *e = e2;
    }
    free(rec);
    return rc;
}

void batch_failures_close(batch_failures *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
}
