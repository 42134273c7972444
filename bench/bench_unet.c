/* bench_unet: wall time of one UNet2DModel forward pass (internal API).
 *
 * usage: bench_unet UNET_DIR BATCH THREADS REPEATS TIMESTEP [--input X.npy] [--output Y.npy]
 *
 * Loads UNET_DIR (config.json + safetensors), runs one untimed warm-up
 * forward, then REPEATS timed forwards (CLOCK_MONOTONIC) and prints one JSON
 * line: {"impl":"cdiffusers","case":"unet_bB","reps":[...],"median":..,"min":..,...}.
 * The sample is a fixed pseudo-random [BATCH, in_channels, H, W] float32 array
 * (H, W = the config's sample_size) unless --input gives a float32 .npy of
 * that shape; --output writes the last forward's output as float32 .npy
 * (used by run.sh to check cdiffusers against PyTorch on the same input). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/npy.h"
#include "models/unet2d.h"
#include "tensor/exec.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v in place). */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Fills x[n] with a fixed sequence in [-1, 1) (64-bit LCG, top 24 bits). */
static void fill_sample(float *x, size_t n) {
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 40) / 8388608.0 - 1.0);
    }
}

static int parse_int(const char *s, const char *what, long lo, long *out) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo) {
        fprintf(stderr, "bench_unet: %s must be an integer >= %ld (got '%s')\n", what, lo, s);
        return 1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: bench_unet UNET_DIR BATCH THREADS REPEATS TIMESTEP [--input X.npy] [--output Y.npy]\n");
        return 2;
    }
    long batch, threads, reps, tstep;
    if (parse_int(argv[2], "BATCH", 1, &batch) || parse_int(argv[3], "THREADS", 1, &threads) ||
        parse_int(argv[4], "REPEATS", 1, &reps) || parse_int(argv[5], "TIMESTEP", 0, &tstep))
        return 2;
    const char *in_path = NULL, *out_path = NULL;
    for (int i = 6; i < argc; i++) {
        if (!strcmp(argv[i], "--input") && i + 1 < argc) {
            in_path = argv[++i];
        } else if (!strcmp(argv[i], "--output") && i + 1 < argc) {
            out_path = argv[++i];
        } else {
            fprintf(stderr, "bench_unet: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }

    cdf_error err = {0};
    cdf_unet2d *m = NULL;
    double t0 = now_s();
    if (cdf_unet2d_load(argv[1], NULL, &m, &err)) {
        fprintf(stderr, "bench_unet: %s\n", err.msg);
        return 1;
    }
    double load_s = now_s() - t0;
    int cin = m->cfg.in_channels, cout = m->cfg.out_channels, h = m->cfg.sample_h, w = m->cfg.sample_w;
    if (h < 1 || w < 1) h = w = 32;
    size_t nin = (size_t)batch * cin * h * w, nout = (size_t)batch * cout * h * w;
    float *sample = cdf_mallocn(nin, sizeof(float)); /* [batch, cin, h, w] */
    float *out = cdf_mallocn(nout, sizeof(float));   /* [batch, cout, h, w] */
    double *times = cdf_mallocn((size_t)reps, sizeof(double)); /* [reps] seconds */
    int rc = 1;
    if (!sample || !out || !times) {
        fprintf(stderr, "bench_unet: out of memory\n");
        goto done;
    }
    if (in_path) {
        cdf_tensor x = {0};
        if (cdf_npy_read(in_path, &x, &err)) {
            fprintf(stderr, "bench_unet: %s\n", err.msg);
            goto done;
        }
        int ok = x.dtype == CDF_F32 && (size_t)cdf_tensor_numel(&x) == nin;
        if (ok) memcpy(sample, x.data, nin * sizeof(float));
        cdf_free(x.data);
        if (!ok) {
            fprintf(stderr, "bench_unet: %s: expected float32 with %zu elements ([%ld,%d,%d,%d])\n", in_path, nin,
                    batch, cin, h, w);
            goto done;
        }
    } else {
        fill_sample(sample, nin);
    }

    cdf_exec ex;
    cdf_exec_init(&ex, (int)threads, &err);
    ex.derived_cap = CDF_EXEC_DERIVED_RUN; /* weights stay mapped for the run */
    cdf_status s = cdf_unet2d_forward(&ex, m, sample, (int)batch, h, w, tstep, out); /* warm-up */
    for (long r = 0; !s && r < reps; r++) {
        double a = now_s();
        s = cdf_unet2d_forward(&ex, m, sample, (int)batch, h, w, tstep, out);
        times[r] = now_s() - a;
    }
    cdf_exec_release(&ex);
    if (s) {
        fprintf(stderr, "bench_unet: forward: %s\n", err.msg);
        goto done;
    }
    if (out_path) {
        cdf_tensor y = {CDF_F32, 4, {batch, cout, h, w}, out};
        if (cdf_npy_write(out_path, &y, &err)) {
            fprintf(stderr, "bench_unet: %s\n", err.msg);
            goto done;
        }
    }
    printf("{\"impl\": \"cdiffusers\", \"case\": \"unet_b%ld\", \"reps\": [", batch);
    for (long r = 0; r < reps; r++) printf("%s%.4f", r ? ", " : "", times[r]);
    double mn = times[0];
    for (long r = 1; r < reps; r++) mn = times[r] < mn ? times[r] : mn;
    printf("], \"median\": %.4f, \"min\": %.4f, \"threads\": %ld, \"load_s\": %.3f}\n", median(times, (int)reps), mn,
           threads, load_s);
    rc = 0;
done:
    cdf_free(times);
    cdf_free(out);
    cdf_free(sample);
    cdf_unet2d_free(m);
    return rc;
}
