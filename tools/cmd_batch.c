/* cdiffusers batch: a manifest of generate jobs, one model load per process,
 * sharded over launchers, resumable, failures recorded and skipped. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch_failures.h"
#include "batch_manifest.h"
#include "batch_share.h"
#include "io/atomic.h"
#include "io/png.h"

#define CMD "batch"

static void help(void) {
    printf("usage: cdiffusers batch MODEL_DIR JOBS.jsonl --out-dir DIR [options]\n"
           "\n"
           "Runs every job of JOBS.jsonl (one JSON object per line; blank lines and lines starting\n"
           "with # are skipped) on MODEL_DIR, loaded once.  Keys are generate's long options with\n"
           "underscores: prompt, negative_prompt, seed, rng, steps, guidance_scale, height, width,\n"
           "scheduler, karras (true/false), num_images_per_prompt, init_image, prompt_2, ... (see\n"
           "'cdiffusers generate --help'); a list value repeats the option (\"seed\": [1, 2]: one\n"
           "seed per image).  \"id\" names the output, DIR/ID.png (default: the line number), and\n"
           "\"grid\": \"RxC\" lays out a multi-image job.  Each file is exactly what\n"
           "'cdiffusers generate MODEL_DIR ... --out DIR/ID.png' writes for the same options.\n"
           "\n"
           "options:\n"
           "  --out-dir DIR        where the outputs and failures.jsonl go (made if missing)\n"
           "  --shard K/N          take the lines whose 0-based index i has i mod N == K.  Without it\n"
           "                       the share comes from the launcher: a Slurm job array\n"
           "                       (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT),\n"
           "                       Open MPI (OMPI_COMM_WORLD_RANK / _SIZE), MPICH/Hydra or Intel MPI\n"
           "                       (PMI_RANK / PMI_SIZE), a Kubernetes indexed job (JOB_COMPLETION_INDEX\n"
           "                       with --shard-count); otherwise the whole manifest\n"
           "  --shard-count N      the Kubernetes Job's completions, with JOB_COMPLETION_INDEX\n"
           "  --format png|npy     png (default), or DIR/ID.npy as --out ID.npy writes it, with its\n"
           "                       parameters in DIR/ID.json\n"
           "  --threads T          threads per process (default: all processors; results do not\n"
           "                       depend on it)\n"
           "  --variant NAME       weight file variant, e.g. fp16\n"
           "  --pipeline KIND      auto, ddpm, ddim, pndm, sd or unclip (as generate)\n"
           "  --quiet              no progress bar\n"
           "\n"
           "Resume: a job whose file exists with the same parameters is skipped; one whose file holds\n"
           "other parameters fails (nothing is overwritten).  Files are written atomically; Ctrl-C or\n"
           "SIGTERM stops at the next step and the same command finishes the rest later.  A job that\n"
           "cannot run (bad line, unknown key, bad value, repeated id...) is recorded in\n"
           "DIR/failures.jsonl as {\"line\": N, \"id\": ..., \"error\": ...} and the run goes on.\n"
           "The last line on stdout is 'done N, skipped M, failed F'.  Exit status: 0, 1 when a job\n"
           "failed or the model cannot be loaded, 2 for a usage error, 130/143 when interrupted.\n"
           "See docs/SCALE.md for Slurm, mpirun and Kubernetes.\n");
}

typedef struct batch_run {
    const char *model, *dir;
    int npy, threads, quiet;
    gen_params proc;        /* --variant, --pipeline */
    cdf_pipeline *pipe;
    cdf_text_cache *cache;  /* text-encoder results of the prompts seen so far */
    char hash[32];          /* the weights hash every output records */
    long done, skipped, failed;
} batch_run;

/* mkdir -p */
static int make_dirs(const char *dir, cli_err *e) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return cli_err_set(e, CLI_EXIT_USAGE, "--out-dir is too long");
    for (char *s = path + 1;; s++) {
        int last = !*s;
        if (*s == '/' || last) {
            *s = 0;
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return cli_err_set(e, CLI_EXIT_FAIL, "%s: cannot create the folder: %s", path, strerror(errno));
            if (last) break;
            *s = '/';
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_err_set(e, CLI_EXIT_FAIL, "%s: not a folder", dir);
    return 0;
}

/* Keys an output records that may differ between two runs of one job: the
 * model folder's and the pictures' paths (the weights hash and the
 * pictures' SHA-256 say what they held) and the version. */
static int ignored_key(const char *k, int any_seed) {
    return !strcmp(k, "model") || !strcmp(k, "init_image") || !strcmp(k, "mask_image") || !strcmp(k, "cdiffusers") ||
           (any_seed && (!strcmp(k, "seeds") || !strcmp(k, "generator_mode")));
}

/* 0 when rec (what the file records) matches exp (what this job would
 * record); else -1 naming the first key that differs in why. */
static int compare_params(const cJSON *rec, const cJSON *exp, int any_seed, char *why, size_t wn) {
    const cJSON *a, *b;
    for (int pass = 0; pass < 2; pass++) {
        const cJSON *x = pass ? rec : exp, *y = pass ? exp : rec;
        cJSON_ArrayForEach(a, x) {
            if (ignored_key(a->string, any_seed)) continue;
            b = cJSON_GetObjectItemCaseSensitive(y, a->string);
            if (b && cJSON_Compare(a, b, 1)) continue;
            char *va = cJSON_PrintUnformatted(pass ? a : b), *vb = cJSON_PrintUnformatted(pass ? b : a);
            snprintf(why, wn, "\"%s\": %.80s there, %.80s here", a->string, va ? va : "none", vb ? vb : "none");
            free(va);
            free(vb);
            return -1;
        }
    }
    return 0;
}

static int read_text_file(const char *path, char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char *t = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && n < (1L << 26) && fseek(f, 0, SEEK_SET) == 0 && (t = malloc((size_t)n + 1)) &&
        fread(t, 1, (size_t)n, f) == (size_t)n) {
        t[n] = 0;
        *out = t;
        fclose(f);
        return 0;
    }
    free(t);
    fclose(f);
    return -1;
}

/* An existing output: 1 when it holds this job (skip), -1 with e when it
 * holds something else. */
static int check_existing(const batch_run *r, const gen_job *j, const char *out, const char *side, cli_err *e) {
    char *text = NULL;
    int rc = -1;
    if (r->npy) {
        if (read_text_file(side, &text))
            return cli_err_set(e, CLI_EXIT_FAIL, "%s exists without its parameters %s: remove it to make it again", out, side);
    } else {
        cdf_error err = {0};
        if (cdf_png_read_text(out, "parameters", &text, &err))
            return cli_err_set(e, CLI_EXIT_FAIL, "%s exists and carries no cdiffusers parameters: remove it to make it again",
                               out);
    }
    cJSON *rec = cJSON_Parse(text);
    r->npy ? free(text) : cdf_free(text);
    cJSON *exp = NULL;
    if (r->npy) {
        exp = cJSON_Duplicate(j->params, 1);
    } else {
        int rows, cols;
        char grid[32];
        if (j->batch > 1 && out_grid_shape(j->oo, j->batch, &rows, &cols, e)) goto done;
        snprintf(grid, sizeof grid, "%dx%d", rows, cols);
        exp = gen_file_params(j, j->batch > 1 ? grid : NULL, -1);
    }
    char why[256];
    if (!rec || !exp)
        cli_err_set(e, CLI_EXIT_FAIL, "%s exists and its parameters cannot be read: remove it to make it again", out);
    else if (compare_params(rec, exp, j->os_seed[0] != 0, why, sizeof why))
        cli_err_set(e, CLI_EXIT_FAIL, "%s exists with other parameters (%s): remove it, or give this job another id", out,
                    why);
    else
        rc = 1;
done:
    cJSON_Delete(rec);
    cJSON_Delete(exp);
    return rc;
}

/* --format npy: the parameters go first into DIR/ID.json. */
static int write_side(const gen_job *j, const char *side, cli_err *e) {
    char *text = cJSON_PrintUnformatted(j->params);
    if (!text) return cli_err_set(e, CLI_EXIT_FAIL, "out of memory");
    cdf_atomic_file af = {0};
    cdf_error err = {0};
    int rc = 0;
    if (cdf_atomic_open(side, &af, &err) || fputs(text, af.fp) < 0 || fputc('\n', af.fp) < 0 ||
        cdf_atomic_commit(&af, &err)) {
        cdf_atomic_abort(&af);
        rc = err.msg[0] ? cli_err_from(e, &err) : cli_err_set(e, CLI_EXIT_FAIL, "%s: cannot write", side);
    }
    free(text);
    return rc;
}

/* One line's job: 0 made, 1 skipped, 2 interrupted, -1 failed (e). */
static int run_job(batch_run *r, const batch_line *l, const char *label, cli_err *e) {
    if (l->err[0]) return cli_err_set(e, CLI_EXIT_USAGE, "%s", l->err);
    gen_params p;
    gp_init(&p);
    p.model = r->model;
    p.variant = r->proc.variant;
    p.pipeline = r->proc.pipeline;
    p.threads = r->threads;
    out_opts oo = {0};
    oo.quiet = r->quiet;
    oo.progress_label = label;
    char out[4400], side[4400];
    snprintf(out, sizeof out, "%s/%s.%s", r->dir, l->id, r->npy ? "npy" : "png");
    snprintf(side, sizeof side, "%s/%s.json", r->dir, l->id);
    oo.out = out;
    cJSON *strings = cJSON_CreateArray();
    if (!strings) return cli_err_set(e, CLI_EXIT_FAIL, "out of memory");
    int rc = -1;
    gen_job j;
    if (batch_job_params(l->obj, &p, &oo, strings, e)) goto out;
    if (r->npy) oo.grid_r = oo.grid_c = 0; /* a PNG layout: the .npy holds the batch */
    if (gen_prepare(&j, CMD, r->pipe, r->hash, &p, &oo, e)) goto out;
    j.o.text_cache = r->cache;
    if (access(out, F_OK) == 0) {
        rc = check_existing(r, &j, out, side, e);
    } else if (!r->npy || !write_side(&j, side, e)) {
        cdf_tensor img;
        if (gen_run(&j, &img, e)) {
            rc = gen_interrupted() ? 2 : -1;
        } else {
            rc = gen_write(&j, &img, e) ? -1 : 0;
            cdf_tensor_free(&img);
        }
    }
    gen_job_free(&j);
out:
    cJSON_Delete(strings);
    return rc;
}

static void batch_option(batch_run *r, cli_args *a, const char **shard, long *shard_count) {
    cli_err e;
    if (!strcmp(a->name, "out-dir")) {
        r->dir = cli_value(a);
    } else if (!strcmp(a->name, "shard")) {
        *shard = cli_value(a);
    } else if (!strcmp(a->name, "shard-count")) {
        *shard_count = (long)cli_parse_int(CMD, "--shard-count", cli_value(a), 1, 1000000);
    } else if (!strcmp(a->name, "format")) {
        const char *f = cli_value(a);
        if (strcmp(f, "png") && strcmp(f, "npy")) cli_usage_error(CMD, "--format must be png or npy (got '%s')", f);
        r->npy = !strcmp(f, "npy");
    } else if (!strcmp(a->name, "threads")) {
        r->threads = (int)cli_parse_int(CMD, "--threads", cli_value(a), 1, 1024);
    } else if (!strcmp(a->name, "quiet")) {
        r->quiet = 1;
    } else if (!strcmp(a->name, "variant") || !strcmp(a->name, "pipeline")) {
        if (gp_set(&r->proc, a->name, cli_value(a), &e) < 0) cli_exit(CMD, &e);
    } else {
        cli_usage_error(CMD, "unknown option --%s (job options go in JOBS.jsonl)", a->name);
    }
}

int cmd_batch(int argc, char **argv) {
    batch_run r = {0};
    gp_init(&r.proc);
    r.threads = cli_default_threads();
    const char *pos[2] = {NULL, NULL}, *shard = NULL;
    long shard_count = 0;
    int npos = 0;
    cli_args a;
    cli_args_init(&a, argc, argv, CMD);
    while (cli_next(&a)) {
        if (a.name && !strcmp(a.name, "help")) {
            help();
            return 0;
        }
        if (a.name) {
            batch_option(&r, &a, &shard, &shard_count);
        } else {
            if (npos == 2) cli_usage_error(CMD, "unexpected argument '%s'", a.value);
            pos[npos++] = a.value;
        }
    }
    if (npos != 2) cli_usage_error(CMD, "MODEL_DIR and JOBS.jsonl are required");
    if (!r.dir) cli_usage_error(CMD, "--out-dir DIR is required");
    r.model = pos[0];
    cli_err e;
    batch_share sh;
    if (batch_share_find(shard, shard_count, &sh, &e)) cli_exit(CMD, &e);
    batch_manifest m;
    if (batch_manifest_read(pos[1], &m, &e)) cli_exit(CMD, &e);
    long jobs = 0, mine = 0;
    for (long i = 0; i < m.nlines; i++)
        if (!m.lines[i].blank) jobs++, mine += i % sh.n == sh.k;
    /* the model first: a missing or broken folder fails before any job */
    cdf_error err = {0};
    err.on_notice = cli_print_notice;
    cdf_load_options lo = {r.proc.pipeline, r.proc.variant};
    if (cdf_pipeline_load(r.model, &lo, &r.pipe, &err)) cli_fail(CMD, &err);
    if (cdf_pipeline_weights_hash(r.pipe, r.hash, &err) || cdf_text_cache_new(0, &r.cache, &err)) cli_fail(CMD, &err);
    batch_failures fl;
    if (make_dirs(r.dir, &e) || batch_failures_open(&fl, r.dir, sh.k, sh.n, &e)) cli_exit(CMD, &e);
    fprintf(stderr, "cdiffusers %s: share %ld/%ld (%s): %ld of %ld jobs\n", CMD, sh.k, sh.n, sh.why, mine, jobs);
    gen_catch_signals();
    long nth = 0;
    int stop = 0;
    for (long i = sh.k; i < m.nlines && !stop; i += sh.n) {
        const batch_line *l = &m.lines[i];
        if (l->blank) continue;
        if (gen_interrupted()) break;
        char label[64];
        snprintf(label, sizeof label, "job %ld/%ld", ++nth, mine);
        int rc = run_job(&r, l, label, &e);
        if (rc == 0) r.done++;
        else if (rc == 1) r.skipped++;
        else if (rc == 2) stop = 1;
        else {
            r.failed++;
            fprintf(stderr, "cdiffusers %s: line %ld%s%s%s: %s\n", CMD, l->line, l->id[0] ? " (id \"" : "", l->id,
                    l->id[0] ? "\")" : "", e.msg);
            cli_err e2;
            if (batch_failures_add(&fl, l->line, l->id[0] ? l->id : NULL, e.msg, &e2)) {
                fprintf(stderr, "cdiffusers %s: error: %s\n", CMD, e2.msg);
                stop = 1;
            }
        }
    }
    uint64_t hits = 0, misses = 0;
    cdf_text_cache_stats(r.cache, &hits, &misses);
    if (hits + misses)
        fprintf(stderr, "cdiffusers %s: text encoder: %llu of %llu prompt encodings reused\n", CMD,
                (unsigned long long)hits, (unsigned long long)(hits + misses));
    printf("done %ld, skipped %ld, failed %ld\n", r.done, r.skipped, r.failed);
    fflush(stdout);
    batch_failures_close(&fl);
    batch_manifest_free(&m);
    cdf_text_cache_free(r.cache);
    cdf_pipeline_free(r.pipe);
    int sig = gen_interrupted();
    if (sig) {
        fprintf(stderr, "cdiffusers %s: interrupted (%s): the same command finishes the remaining jobs\n", CMD,
                sig == SIGTERM ? "SIGTERM" : "SIGINT");
        return 128 + sig;
    }
    return r.failed || stop ? CLI_EXIT_FAIL : 0;
}
