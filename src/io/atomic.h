/* Atomic output files: write to a temporary file in the destination folder,
 * then fsync and rename over the destination, so readers never see a
 * half-written file and a failed write leaves nothing behind. */
#ifndef CDF_IO_ATOMIC_H
#define CDF_IO_ATOMIC_H

#include <stdio.h>

#include "cdiffusers/core.h"

/* One output in progress.  All fields are owned by the struct; zero it or let
 * cdf_atomic_open fill it.  After commit or abort it is reset (fp == NULL). */
typedef struct cdf_atomic_file {
    FILE *fp;       /* write through this; NULL when not open */
    char *path;     /* final destination (cdf_malloc'd) */
    char *tmp_path; /* temporary file in the same folder (cdf_malloc'd) */
} cdf_atomic_file;

/* Creates a fresh temporary file next to `path` (mode 0666 minus umask) and
 * fills *af; on error *af is left closed and nothing exists on disk.
 * Unwritable folder -> CDF_ERR_IO naming path. */
cdf_status cdf_atomic_open(const char *path, cdf_atomic_file *af, cdf_error *err);
/* fflush + fsync + fclose + rename onto the destination; any failure removes
 * the temporary file and returns CDF_ERR_IO naming the path.  af is reset
 * either way. */
cdf_status cdf_atomic_commit(cdf_atomic_file *af, cdf_error *err);
/* Closes and removes the temporary file; safe on a reset or zeroed af. */
void cdf_atomic_abort(cdf_atomic_file *af);

#endif
