#include "batch_share.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARE_MAX 1000000L

/* A decimal integer in [lo, hi] from environment variable name; 0 when unset,
 * 1 when read, -1 with an error naming it. */
static int env_long(const char *name, long lo, long hi, long *v, cli_err *e) {
    const char *s = getenv(name);
    if (!s) return 0;
    char *end = NULL;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || x < lo || x > hi)
        return cli_err_set(e, CLI_EXIT_USAGE, "the environment variable %s=\"%s\" is not an integer in [%ld, %ld]", name,
                           s, lo, hi);
    *v = (long)x;
    return 1;
}

/* A rank and size pair of variables: 0 unset, 1 read, -1 error. */
static int env_rank(const char *rank_name, const char *size_name, long *rank, long *size, cli_err *e) {
    int r = env_long(rank_name, 0, SHARE_MAX - 1, rank, e);
    if (r <= 0) return r;
    int z = env_long(size_name, 1, SHARE_MAX, size, e);
    if (z < 0) return -1;
    if (!z) return cli_err_set(e, CLI_EXIT_USAGE, "%s is set but %s is not", rank_name, size_name);
    if (*rank >= *size)
        return cli_err_set(e, CLI_EXIT_USAGE, "%s=%ld is not below %s=%ld", rank_name, *rank, size_name, *size);
    return 1;
}

/* The array part: a Slurm job array task or a Kubernetes indexed job's pod. */
static int array_index(long shard_count, long *idx, long *count, char *why, size_t wn, cli_err *e) {
    long id = 0, min = 0, cnt = 0, step = 1;
    int r = env_long("SLURM_ARRAY_TASK_ID", 0, 1L << 30, &id, e);
    if (r < 0) return -1;
    if (r) {
        int m = env_long("SLURM_ARRAY_TASK_MIN", 0, 1L << 30, &min, e), c;
        if (m < 0 || (c = env_long("SLURM_ARRAY_TASK_COUNT", 1, SHARE_MAX, &cnt, e)) < 0 ||
            env_long("SLURM_ARRAY_TASK_STEP", 1, 1L << 30, &step, e) < 0)
            return -1;
        if (!m || !c)
            return cli_err_set(e, CLI_EXIT_USAGE,
                               "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_MIN or SLURM_ARRAY_TASK_COUNT is not");
        long max = 0, off = id - min;
        int x = env_long("SLURM_ARRAY_TASK_MAX", 0, 1L << 30, &max, e);
        if (x < 0) return -1;
        /* an evenly spaced array has (MAX - MIN) / STEP + 1 == COUNT; one with gaps would leave shares unrun */
        if (x && (max < min || (max - min) % step || (max - min) / step + 1 != cnt))
            return cli_err_set(e, CLI_EXIT_USAGE,
                               "the Slurm array is not evenly spaced (SLURM_ARRAY_TASK_MIN %ld, _MAX %ld, _STEP %ld, "
                               "_COUNT %ld): give --shard K/N for an array with gaps", min, max, step, cnt);
        if (off < 0 || off % step || off / step >= cnt)
            return cli_err_set(e, CLI_EXIT_USAGE,
                               "SLURM_ARRAY_TASK_ID=%ld is not task (ID - MIN) / STEP < COUNT of an evenly spaced array "
                               "(MIN %ld, STEP %ld, COUNT %ld): give --shard K/N for an array with gaps",
                               id, min, step, cnt);
        *idx = off / step;
        *count = cnt;
        if (step > 1)
            snprintf(why, wn, "(SLURM_ARRAY_TASK_ID=%ld - SLURM_ARRAY_TASK_MIN=%ld) / SLURM_ARRAY_TASK_STEP=%ld of "
                     "SLURM_ARRAY_TASK_COUNT=%ld", id, min, step, cnt);
        else
            snprintf(why, wn, "SLURM_ARRAY_TASK_ID=%ld - SLURM_ARRAY_TASK_MIN=%ld of SLURM_ARRAY_TASK_COUNT=%ld", id, min,
                     cnt);
        if (shard_count)
            return cli_err_set(e, CLI_EXIT_USAGE, "--shard-count is for Kubernetes indexed jobs; a Slurm array gives "
                                                  "its own count (SLURM_ARRAY_TASK_COUNT)");
        return 1;
    }
    r = env_long("JOB_COMPLETION_INDEX", 0, SHARE_MAX - 1, &id, e);
    if (r < 0) return -1;
    if (r) {
        if (!shard_count)
            return cli_err_set(e, CLI_EXIT_USAGE,
                               "JOB_COMPLETION_INDEX=%ld is set (a Kubernetes indexed job): give --shard-count N, the "
                               "Job's completions", id);
        if (id >= shard_count)
            return cli_err_set(e, CLI_EXIT_USAGE, "JOB_COMPLETION_INDEX=%ld is not below --shard-count %ld", id,
                               shard_count);
        *idx = id;
        *count = shard_count;
        snprintf(why, wn, "JOB_COMPLETION_INDEX=%ld of --shard-count %ld", id, shard_count);
        return 1;
    }
    if (shard_count)
        return cli_err_set(e, CLI_EXIT_USAGE, "--shard-count goes with JOB_COMPLETION_INDEX (a Kubernetes indexed "
                                              "job), which is not set; use --shard K/N");
    return 0;
}

int batch_share_find(const char *shard, long shard_count, batch_share *s, cli_err *e) {
    s->k = 0;
    s->n = 1;
    if (shard) {
        long long k, n;
        char *x = NULL;
        k = strtoll(shard, &x, 10);
        n = x && *x == '/' && x[1] ? strtoll(x + 1, &x, 10) : 0;
        if (shard[0] < '0' || shard[0] > '9' || *x || n < 1 || n > SHARE_MAX || k < 0 || k >= n)
            return cli_err_set(e, CLI_EXIT_USAGE, "--shard must be K/N with 0 <= K < N <= %ld (got '%s')", SHARE_MAX,
                               shard);
        if (shard_count) return cli_err_set(e, CLI_EXIT_USAGE, "--shard and --shard-count exclude each other");
        s->k = (long)k;
        s->n = (long)n;
        snprintf(s->why, sizeof s->why, "--shard %s", shard);
        return 0;
    }
    char awhy[200] = "", pwhy[200] = "";
    long idx = 0, count = 1, rank = 0, size = 1;
    int a = array_index(shard_count, &idx, &count, awhy, sizeof awhy, e);
    if (a < 0) return -1;
    int p = env_rank("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", &rank, &size, e);
    if (p < 0) return -1;
    if (p)
        snprintf(pwhy, sizeof pwhy, "OMPI_COMM_WORLD_RANK=%ld of OMPI_COMM_WORLD_SIZE=%ld", rank, size);
    else if ((p = env_rank("PMI_RANK", "PMI_SIZE", &rank, &size, e)) < 0)
        return -1;
    else if (p)
        snprintf(pwhy, sizeof pwhy, "PMI_RANK=%ld of PMI_SIZE=%ld", rank, size);
    if ((long long)count * size > SHARE_MAX)
        return cli_err_set(e, CLI_EXIT_USAGE, "%ld array tasks x %ld processes is over %ld shares", count, size, SHARE_MAX);
    s->k = idx * size + rank;
    s->n = count * size;
    if (a && p)
        snprintf(s->why, sizeof s->why, "%s, %s: share index x size + rank", awhy, pwhy);
    else if (a || p)
        snprintf(s->why, sizeof s->why, "%s", a ? awhy : pwhy);
    else
        snprintf(s->why, sizeof s->why, "no --shard and no launcher variables: the whole manifest");
    return 0;
}
