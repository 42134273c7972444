/* Which share of a manifest this process takes: --shard K/N, or where the
 * launcher says it stands (Slurm job arrays, Open MPI, MPICH/Hydra and Intel
 * MPI, Kubernetes indexed jobs).  No MPI library: only the environment. */
#ifndef CDF_TOOLS_BATCH_SHARE_H
#define CDF_TOOLS_BATCH_SHARE_H

#include "cli.h"

typedef struct batch_share {
    long k, n;        /* this process takes the lines whose 0-based index i has i mod n == k */
    char why[512];    /* what decided it, for the run's first line */
} batch_share;

/* shard: the --shard text or NULL; shard_count: --shard-count or 0.  An
 * array index (Slurm, Kubernetes) and a process rank (Open MPI, PMI) given
 * together make one share of count x size: k = index * size + rank. */
int batch_share_find(const char *shard, long shard_count, batch_share *s, cli_err *e);

#endif
