/* A batch manifest (JOBS.jsonl): one JSON object per line, keys named like
 * generate's long options with underscores.  Read whole, each line's id
 * checked (and a repeated id refused) before any job runs. */
#ifndef CDF_TOOLS_BATCH_MANIFEST_H
#define CDF_TOOLS_BATCH_MANIFEST_H

#include "run_gen.h"

#define BATCH_ID_MAX 200

typedef struct batch_line {
    long line;                 /* 1-based line number */
    int blank;                 /* empty or a "#" comment: counted, not a job */
    cJSON *obj;                /* the line's object, or NULL when err says why it is none */
    char id[BATCH_ID_MAX + 1]; /* the output's file stem; "" when the line has no valid one */
    char err[600];             /* why this line cannot run, or "" */
} batch_line;

typedef struct batch_manifest {
    batch_line *lines;         /* [nlines] every line of the file */
    long nlines;
} batch_manifest;

/* Reads and parses path; a file that cannot be read is an error (exit 1),
 * a bad line only sets that line's err. */
int batch_manifest_read(const char *path, batch_manifest *m, cli_err *e);
void batch_manifest_free(batch_manifest *m);
/* A job's generation and layout options from its object into p (from
 * gp_init) and oo; strings made from JSON numbers are kept in strings (a
 * cJSON array the caller owns, alive as long as p). */
int batch_job_params(const cJSON *obj, gen_params *p, out_opts *oo, cJSON *strings, cli_err *e);

#endif
