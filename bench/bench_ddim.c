/* bench_ddim: wall time of a whole DDIMPipeline run (public API).
 *
 * usage: bench_ddim MODEL_DIR STEPS BATCH THREADS REPEATS [SEED]
 *
 * Loads MODEL_DIR as a DDIMPipeline (DDIMScheduler.from_config of the
 * folder's scheduler, as diffusers' DDIMPipeline does), runs one untimed
 * warm-up generation, then REPEATS timed ones (CLOCK_MONOTONIC), each with a
 * fresh numpy Generator(PCG64(SEED)) so every run is the same computation, and
 * prints one JSON line {"impl":"cdiffusers","case":"ddimS_bB","reps":[...],
 * "median":..,"min":..,"abs_sum":..}.  Timed: what DDIMPipeline.__call__
 * does with output_type="np": noise draw, all STEPS UNet forwards and
 * scheduler steps, and the [0,1] float32 [B,H,W,C] image; abs_sum is
 * np.abs(image).sum() of it, as `cdiffusers generate` prints it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdiffusers/pipeline.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int parse_int(const char *s, const char *what, long lo, long *out) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo) {
        fprintf(stderr, "bench_ddim: %s must be an integer >= %ld (got '%s')\n", what, lo, s);
        return 1;
    }
    *out = v;
    return 0;
}

/* One generation with a fresh generator seeded `seed`; *abs_sum gets
 * np.abs(sample).sum() of the result. */
static cdf_status run_once(cdf_pipeline *p, const cdf_generate_options *o, const char *seed, float *abs_sum,
                           cdf_error *err) {
    cdf_generator *g = NULL;
    cdf_status s = cdf_generator_new(CDF_RNG_NUMPY, seed, &g, err);
    if (s) return s;
    cdf_tensor img = {0};
    s = cdf_pipeline_generate(p, o, &g, 1, &img, NULL);
    if (s) {
        snprintf(err->msg, sizeof err->msg, "%s", cdf_pipeline_last_error(p));
    } else {
        *abs_sum = cdf_abs_sum_f32(img.data, (size_t)cdf_tensor_numel(&img));
    }
    cdf_tensor_free(&img);
    cdf_generator_free(g);
    return s;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: bench_ddim MODEL_DIR STEPS BATCH THREADS REPEATS [SEED]\n");
        return 2;
    }
    long steps, batch, threads, reps;
    if (parse_int(argv[2], "STEPS", 1, &steps) || parse_int(argv[3], "BATCH", 1, &batch) ||
        parse_int(argv[4], "THREADS", 1, &threads) || parse_int(argv[5], "REPEATS", 1, &reps))
        return 2;
    const char *seed = argc > 6 ? argv[6] : "0";

    cdf_error err = {0};
    cdf_pipeline *p = NULL;
    cdf_load_options lo = {CDF_PIPELINE_DDIM, NULL};
    double t0 = now_s();
    if (cdf_pipeline_load(argv[1], &lo, &p, &err)) {
        fprintf(stderr, "bench_ddim: %s\n", err.msg);
        return 1;
    }
    double load_s = now_s() - t0;
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.batch_size = (int)batch;
    o.num_inference_steps = (int)steps;
    o.threads = (int)threads;
    o.output_type = CDF_OUTPUT_NP;

    double *times = malloc((size_t)reps * sizeof *times); /* [reps] seconds */
    if (!times) {
        fprintf(stderr, "bench_ddim: out of memory\n");
        cdf_pipeline_free(p);
        return 1;
    }
    float abs_sum = 0.0f;
    cdf_status s = run_once(p, &o, seed, &abs_sum, &err); /* warm-up */
    for (long r = 0; !s && r < reps; r++) {
        double a = now_s();
        s = run_once(p, &o, seed, &abs_sum, &err);
        times[r] = now_s() - a;
    }
    int rc = 1;
    if (s) {
        fprintf(stderr, "bench_ddim: %s\n", err.msg);
    } else {
        printf("{\"impl\": \"cdiffusers\", \"case\": \"ddim%ld_b%ld\", \"reps\": [", steps, batch);
        for (long r = 0; r < reps; r++) printf("%s%.4f", r ? ", " : "", times[r]);
        qsort(times, (size_t)reps, sizeof *times, cmp_double);
        double med = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
        printf("], \"median\": %.4f, \"min\": %.4f, \"threads\": %ld, \"load_s\": %.3f, \"abs_sum\": %.9g}\n", med,
               times[0], threads, load_s, (double)abs_sum);
        rc = 0;
    }
    free(times);
    cdf_pipeline_free(p);
    return rc;
}
