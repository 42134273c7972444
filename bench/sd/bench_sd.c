/* Stable Diffusion component timings through the internal API (not a test):
 * text encoding (CFG: negative + positive prompt, batch 2), one UNet CFG
 * forward (batch 2, 64x64 latents, 77x768 context) and one VAE decode
 * (64x64 latents -> 512x512 image).  Each stage: one untimed warm-up call
 * (it also pages the mmapped weights in), then --reps timed calls.
 *
 * usage: bench_sd MODEL_DIR [--threads T] [--reps N] [--stages text,unet,vae]
 *                          [--size PX] [--prompt P]
 * Prints one JSON line per stage: {stage, reps:[s...], median, min,
 * foreign_cpu_s:[...], rss_peak_mib, rss_anon_peak_mib, rss_file_peak_mib}.
 *   foreign_cpu_s: CPU seconds other processes used during each rep (from
 *     /proc/stat); well above ~1 s means the rep was slowed by other load.
 *   rss_*_peak_mib: the largest VmRSS / RssAnon / RssFile seen by a 20 ms
 *     sampler thread during the stage (RssFile: mmapped weights paged in;
 *     RssAnon: activations, scratch, converted weights).  ru_maxrss (whole
 *     process so far) is printed as rss_hwm_mib.
 * Built by bench/sd/run.sh against build/libcdiffusers.a. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cdiffusers/rng.h"
#include "models/clip_text.h"
#include "models/unet2d_cond.h"
#include "models/vae.h"
#include "tensor/exec.h"
#include "text/clip_tokenizer.h"

#define MAX_REPS 16

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double own_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Machine-wide busy CPU seconds (all processes), from /proc/stat. */
static double busy(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    unsigned long long v[8] = {0};
    int k = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]);
    fclose(f);
    if (k != 8) return 0;
    unsigned long long s = 0;
    for (int i = 0; i < 8; i++) s += v[i];
    return (double)(s - v[3] - v[4]) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- RSS sampler ---- */

typedef struct sampler {
    pthread_t th;
    pthread_mutex_t mu;
    int stop;
    long rss_kb, anon_kb, file_kb; /* peaks since the last reset */
} sampler;

static void read_status(long *rss, long *anon, long *file) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    *rss = *anon = *file = 0;
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6)) *rss = atol(line + 6);
        else if (!strncmp(line, "RssAnon:", 8)) *anon = atol(line + 8);
        else if (!strncmp(line, "RssFile:", 8)) *file = atol(line + 8);
    }
    fclose(f);
}

static void *sampler_main(void *arg) {
    sampler *s = arg;
    for (;;) {
        long r, a, f;
        read_status(&r, &a, &f);
        pthread_mutex_lock(&s->mu);
        if (r > s->rss_kb) s->rss_kb = r;
        if (a > s->anon_kb) s->anon_kb = a;
        if (f > s->file_kb) s->file_kb = f;
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop) return NULL;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void sampler_reset(sampler *s) {
    pthread_mutex_lock(&s->mu);
    s->rss_kb = s->anon_kb = s->file_kb = 0;
    pthread_mutex_unlock(&s->mu);
}

/* ---- reporting ---- */

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *stage, const double *t, const double *foreign, int n, double warm, sampler *s) {
    double sorted[MAX_REPS];
    memcpy(sorted, t, sizeof(double) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(double), cmp_d);
    double med = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long r, a, f;
    read_status(&r, &a, &f); /* a stage shorter than the sampling period still gets one sample */
    pthread_mutex_lock(&s->mu);
    if (r > s->rss_kb) s->rss_kb = r;
    if (a > s->anon_kb) s->anon_kb = a;
    if (f > s->file_kb) s->file_kb = f;
    printf("{\"stage\": \"%s\", \"warmup_s\": %.3f, \"reps\": [", stage, warm);
    for (int i = 0; i < n; i++) printf("%s%.3f", i ? ", " : "", t[i]);
    printf("], \"median\": %.3f, \"min\": %.3f, \"foreign_cpu_s\": [", med, sorted[0]);
    for (int i = 0; i < n; i++) printf("%s%.2f", i ? ", " : "", foreign[i]);
    printf("], \"rss_peak_mib\": %.0f, \"rss_anon_peak_mib\": %.0f, \"rss_file_peak_mib\": %.0f, "
           "\"rss_hwm_mib\": %.0f}\n",
           s->rss_kb / 1024.0, s->anon_kb / 1024.0, s->file_kb / 1024.0, ru.ru_maxrss / 1024.0);
    pthread_mutex_unlock(&s->mu);
    fflush(stdout);
}

/* ---- stages ---- */

typedef struct ctx {
    cdf_exec ex;
    cdf_error err;
    const char *dir;
    const char *prompt;
    int reps, lat; /* lat: latent side (size / 8) */
    float *text;   /* [2, 77, hidden]: negative, positive */
    int seq, hidden;
    sampler *smp;
} ctx;

typedef cdf_status (*stage_fn)(ctx *c, void *user);

/* Warm-up, then c->reps timed calls of fn. */
static int time_stage(ctx *c, const char *name, stage_fn fn, void *user) {
    double t[MAX_REPS], foreign[MAX_REPS];
    sampler_reset(c->smp);
    double t0 = now();
    if (fn(c, user)) return 1;
    double warm = now() - t0;
    for (int i = 0; i < c->reps; i++) {
        double b0 = busy(), c0 = own_cpu();
        t0 = now();
        if (fn(c, user)) return 1;
        t[i] = now() - t0;
        foreign[i] = (busy() - b0) - (own_cpu() - c0);
    }
    report(name, t, foreign, c->reps, warm, c->smp);
    return 0;
}

typedef struct text_job {
    cdf_clip_text *m;
    int64_t *ids; /* [2, seq] */
} text_job;

static cdf_status text_run(ctx *c, void *user) {
    text_job *j = user;
    return cdf_clip_text_forward(&c->ex, j->m, j->ids, 2, c->seq, 0, c->text);
}

typedef struct unet_job {
    cdf_unet2d_cond *m;
    float *x, *y; /* [2, 4, lat, lat] */
} unet_job;

static cdf_status unet_run(ctx *c, void *user) {
    unet_job *j = user;
    return cdf_unet2d_cond_forward(&c->ex, j->m, j->x, 2, c->lat, c->lat, 500.0, c->text, c->seq, j->y);
}

typedef struct vae_job {
    cdf_vae *m;
    float *z, *img; /* [1, 4, lat, lat], [1, 3, 8 lat, 8 lat] */
} vae_job;

static cdf_status vae_run(ctx *c, void *user) {
    vae_job *j = user;
    return cdf_vae_decode(&c->ex, j->m, j->z, 1, c->lat, c->lat, j->img);
}

static float *randn(size_t n, const char *seed, cdf_error *err) {
    cdf_generator *g = NULL;
    float *x = malloc(n * sizeof *x);
    if (!x || cdf_generator_new(CDF_RNG_NUMPY, seed, &g, err)) {
        free(x);
        return NULL;
    }
    cdf_generator_standard_normal_f32(g, x, n);
    cdf_generator_free(g);
    return x;
}

static int fail(ctx *c, const char *what) {
    fprintf(stderr, "bench_sd: %s: %s\n", what, c->err.msg);
    return 1;
}

static int has_stage(const char *list, const char *s) {
    size_t n = strlen(s);
    for (const char *p = list; (p = strstr(p, s)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: bench_sd MODEL_DIR [--threads T] [--reps N] [--stages text,unet,vae] [--size PX] "
                        "[--prompt P]\n");
        return 2;
    }
    ctx c;
    memset(&c, 0, sizeof c);
    c.dir = argv[1];
    c.prompt = "a photograph of an astronaut riding a horse";
    c.reps = 3;
    int threads = 2, size = 512;
    const char *stages = "text,unet,vae";
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) c.reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--stages")) stages = argv[i + 1];
        else if (!strcmp(argv[i], "--size")) size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--prompt")) c.prompt = argv[i + 1];
        else {
            fprintf(stderr, "bench_sd: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (c.reps < 1 || c.reps > MAX_REPS || threads < 1 || size < 8 || size % 8) {
        fprintf(stderr, "bench_sd: bad --reps (1..%d), --threads or --size (multiple of 8)\n", MAX_REPS);
        return 2;
    }
    c.lat = size / 8;
    sampler smp;
    memset(&smp, 0, sizeof smp);
    pthread_mutex_init(&smp.mu, NULL);
    pthread_create(&smp.th, NULL, sampler_main, &smp);
    c.smp = &smp;
    cdf_exec_init(&c.ex, threads, &c.err);
    char sub[4096];
    int rc = 0;

    /* Text encoder (always: the UNet needs the context). */
    text_job tj = {NULL, NULL};
    cdf_clip_tokenizer *tok = NULL;
    double t0 = now();
    snprintf(sub, sizeof sub, "%s/tokenizer", c.dir);
    if (cdf_clip_tokenizer_load(sub, &tok, &c.err)) return fail(&c, sub);
    snprintf(sub, sizeof sub, "%s/text_encoder", c.dir);
    if (cdf_clip_text_load(sub, NULL, &tj.m, &c.err)) return fail(&c, sub);
    c.seq = cdf_clip_tokenizer_max_length(tok);
    c.hidden = cdf_clip_text_hidden_size(tj.m);
    tj.ids = malloc(sizeof(int64_t) * 2 * (size_t)c.seq);
    c.text = malloc(sizeof(float) * 2 * (size_t)c.seq * (size_t)c.hidden);
    if (!tj.ids || !c.text) return 1;
    if (cdf_clip_tokenize(tok, "", tj.ids, NULL, NULL, NULL, &c.err) ||
        cdf_clip_tokenize(tok, c.prompt, tj.ids + c.seq, NULL, NULL, NULL, &c.err))
        return fail(&c, "tokenize");
    printf("{\"stage\": \"load_text\", \"s\": %.3f}\n", now() - t0);
    if (has_stage(stages, "text")) {
        if (time_stage(&c, "text_encode_b2", text_run, &tj)) return fail(&c, "text encoder");
    } else if (text_run(&c, &tj)) {
        return fail(&c, "text encoder");
    }
    cdf_clip_text_free(tj.m);
    cdf_clip_tokenizer_free(tok);

    if (has_stage(stages, "unet")) {
        unet_job uj = {NULL, NULL, NULL};
        t0 = now();
        snprintf(sub, sizeof sub, "%s/unet", c.dir);
        if (cdf_unet2d_cond_load(sub, NULL, &uj.m, &c.err)) return fail(&c, sub);
        printf("{\"stage\": \"load_unet\", \"s\": %.3f}\n", now() - t0);
        size_t n = 2 * 4 * (size_t)c.lat * (size_t)c.lat;
        uj.x = randn(n, "1", &c.err);
        uj.y = malloc(n * sizeof(float));
        if (!uj.x || !uj.y) return fail(&c, "inputs");
        if (time_stage(&c, "unet_cfg_b2", unet_run, &uj)) return fail(&c, "unet");
        cdf_unet2d_cond_free(uj.m);
        free(uj.x);
        free(uj.y);
    }

    if (has_stage(stages, "vae")) {
        vae_job vj = {NULL, NULL, NULL};
        t0 = now();
        snprintf(sub, sizeof sub, "%s/vae", c.dir);
        if (cdf_vae_load(sub, NULL, &vj.m, &c.err)) return fail(&c, sub);
        printf("{\"stage\": \"load_vae\", \"s\": %.3f}\n", now() - t0);
        size_t n = 4 * (size_t)c.lat * (size_t)c.lat;
        vj.z = randn(n, "2", &c.err);
        vj.img = malloc(3 * 64 * n / 4 * sizeof(float));
        if (!vj.z || !vj.img) return fail(&c, "inputs");
        if (time_stage(&c, "vae_decode", vae_run, &vj)) return fail(&c, "vae");
        cdf_vae_free(vj.m);
        free(vj.z);
        free(vj.img);
    }

    pthread_mutex_lock(&smp.mu);
    smp.stop = 1;
    pthread_mutex_unlock(&smp.mu);
    pthread_join(smp.th, NULL);
    cdf_exec_release(&c.ex);
    free(tj.ids);
    free(c.text);
    return rc;
}
