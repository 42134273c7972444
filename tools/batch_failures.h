/* DIR/failures.jsonl: one {"line": N, "id": ..., "error": ...} per failed
 * job.  Shares of one manifest may share the file: every change is made
 * under a POSIX record lock (fcntl), and a process first drops the records
 * of its own share's lines, so the file tells the last attempt of each. */
#ifndef CDF_TOOLS_BATCH_FAILURES_H
#define CDF_TOOLS_BATCH_FAILURES_H

#include "cli.h"

typedef struct batch_failures {
    int fd;            /* DIR/failures.jsonl, open for reading and writing */
    char path[4200];
} batch_failures;

/* Opens (creates) DIR/failures.jsonl and removes the records whose 1-based
 * "line" L has (L - 1) mod n == k; other lines are kept as they are. */
int batch_failures_open(batch_failures *f, const char *dir, long k, long n, cli_err *e);
/* Appends one record (id NULL: JSON null). */
int batch_failures_add(batch_failures *f, long line, const char *id, const char *error, cli_err *e);
void batch_failures_close(batch_failures *f);

#endif
