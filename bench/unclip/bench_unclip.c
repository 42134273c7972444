/* bench_unclip: seconds per stage of one UnCLIPPipeline (Karlo) run, public API.
 *
 * usage: bench_unclip MODEL_DIR [--prompt P] [--seed S] [--prior-steps N] [--decoder-steps N]
 *                     [--super-res-steps N] [--threads T] [--dump DIR]
 *
 * Loads MODEL_DIR (an UnCLIPPipeline folder), then runs one generation with a
 * fresh numpy Generator(PCG64(S)) (default 0), prompt P (default "a big red
 * frog on a green leaf"), default guidance (prior 4.0, decoder 8.0),
 * output_type np.  No warm-up run: the workload is minutes long, and the
 * weights are memory-mapped, so their page-ins from the OS cache fall in the
 * stage that first reads them (bench/unclip/run.sh reads the files into the
 * cache before each run).
 *
 * Stage boundaries come from o->on_step timestamps (CLOCK_MONOTONIC):
 *   t0 = before cdf_pipeline_generate;  i0 = prior step -1 (initial noise drawn);
 *   e0, e1, e2 = the last step of stage 0 (prior), 1 (decoder), 2 (super-res);
 *   t_end = cdf_pipeline_generate returned.
 *   text = i0 - t0 (tokenizer + text encoder, cond and uncond rows)
 *   prior = e0 - i0 (prior loop)
 *   decoder = e1 - e0 (post_process_latents, text_proj, decoder noise, decoder loop)
 *   super_res = e2 - e1 (clamp, super-res noise, bicubic upscale, super-res loop)
 *   post = t_end - e2 (to [0,1] float32 [B,H,W,C])
 * and per loop the first step (from its step -1; it includes the page-ins of
 * the UNet's or prior's mapped weights) and the mean of the other steps (the
 * super-res loop's last step runs super_res_last, whose page-ins fall there).
 * The same boundaries are timed on the PyTorch side (torch_unclip.py).  At the
 * end of loading and of each stage the process's RSS (VmRSS) and its peak so
 * far (VmHWM, the counter /usr/bin/time -v reports) are recorded: the stage in
 * which the peak so far grows is where the process peak was reached.
 *
 * --dump DIR (made if missing) writes image_embeddings.npy [B, D], image_upscaled.npy (the
 * bicubic-upscaled decoder output, [B, 3, H, H]), prompt_embeds.npy [2B, D]
 * and image.npy [B, H, H, 3] (float32) for comparison with the PyTorch run.
 * It sets o->on_dump, which makes the library keep each loop's per-step
 * latents (a few MB of copies: negligible next to the stages' seconds).
 *
 * Prints one JSON line: {"impl": "cdiffusers", "case": "unclip_P_D_S", "load_s": ...,
 * "stages": {"text": s, "prior": s, ...}, "total": s, "loops": {"prior": {"steps": n, "first_step": s,
 * "rest_per_step": s}, ...}, "rss_at_end_mib": {...}, "peak_rss_so_far_mib": {...},
 * "abs_sum": np.abs(image).sum(), "threads": T}. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cdiffusers/pipeline.h"

#define N_STAGES 3

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Memory at a stage boundary, in MiB (-1 if unknown): VmRSS (now) and VmHWM
 * (the peak so far: the counter /usr/bin/time reports at exit). */
typedef struct rss_mark {
    double now, peak;
} rss_mark;

static rss_mark read_rss(void) {
    rss_mark m = {-1.0, -1.0};
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return m;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6)) m.now = strtod(line + 6, NULL) / 1024.0;
        if (!strncmp(line, "VmHWM:", 6)) m.peak = strtod(line + 6, NULL) / 1024.0;
    }
    fclose(f);
    return m;
}

/* What the step callback records. */
typedef struct timing {
    double init[N_STAGES];     /* [stage] time of step -1 */
    double first[N_STAGES];    /* [stage] time of step 0 */
    double last[N_STAGES];     /* [stage] time of the last step */
    rss_mark rss[N_STAGES + 2]; /* [text, prior, decoder, super_res, post]: at the end of each */
} timing;

static int on_step(const cdf_step_info *si, void *user) {
    timing *tm = user;
    if (si->stage < 0 || si->stage >= N_STAGES) return 0;
    double t = now_s();
    if (si->step < 0) {
        tm->init[si->stage] = t;
        if (si->stage == 0) tm->rss[0] = read_rss(); /* the text encoder's span ends */
    } else {
        if (si->step == 0) tm->first[si->stage] = t;
        if (si->step == si->num_steps - 1) {
            tm->last[si->stage] = t;
            tm->rss[1 + si->stage] = read_rss();
        }
    }
    return 0;
}

/* Writes a float32 C-order array as a .npy file (format 1.0). */
static int write_npy(const char *path, const float *data, const int64_t *shape, int ndim) {
    char dims[160] = "", hdr[256];
    size_t n = 1, off = 0;
    for (int i = 0; i < ndim; i++) {
        off += (size_t)snprintf(dims + off, sizeof dims - off, "%lld,%s", (long long)shape[i],
                                ndim > 1 && i < ndim - 1 ? " " : "");
        n *= (size_t)shape[i];
    }
    if (ndim > 1) dims[off - 1] = '\0'; /* "(a, b)" but "(a,)" */
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    int total = 10 + len + 1, pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    uint16_t hl = (uint16_t)(len + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    int bad = fwrite(pre, 1, 10, f) != 10 || fwrite(hdr, 1, (size_t)len, f) != (size_t)len;
    for (int i = 0; i < pad && !bad; i++) bad = fputc(' ', f) == EOF;
    bad = bad || fputc('\n', f) == EOF || fwrite(data, sizeof(float), n, f) != n;
    return fclose(f) || bad;
}

static const char *const k_dump_names[] = {"prompt_embeds", "image_embeddings", "image_upscaled", "image"};

static int on_dump(const char *name, const cdf_tensor *t, void *user) {
    const char *dir = user;
    for (size_t i = 0; i < sizeof k_dump_names / sizeof *k_dump_names; i++) {
        if (strcmp(name, k_dump_names[i]) || t->dtype != CDF_F32) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.npy", dir, name);
        if (write_npy(path, t->data, t->shape, t->ndim)) {
            fprintf(stderr, "bench_unclip: cannot write %s\n", path);
            return 1;
        }
    }
    return 0;
}

static int parse_int(const char *s, const char *what, long lo, long *out) {
    char *end = NULL;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || v < lo) {
        fprintf(stderr, "bench_unclip: %s must be an integer >= %ld (got '%s')\n", what, lo, s ? s : "");
        return 1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: bench_unclip MODEL_DIR [--prompt P] [--seed S] [--prior-steps N] [--decoder-steps N]\n"
                        "                    [--super-res-steps N] [--threads T] [--dump DIR]\n");
        return 2;
    }
    const char *model = argv[1], *prompt = "a big red frog on a green leaf", *seed = "0", *dump_dir = NULL;
    long steps[N_STAGES] = {25, 25, 7}, threads = 2;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--prompt") && v) prompt = v;
        else if (!strcmp(a, "--seed") && v) seed = v;
        else if (!strcmp(a, "--dump") && v) dump_dir = v;
        else if (!strcmp(a, "--prior-steps")) bad = parse_int(v, a, 2, &steps[0]);
        else if (!strcmp(a, "--decoder-steps")) bad = parse_int(v, a, 2, &steps[1]);
        else if (!strcmp(a, "--super-res-steps")) bad = parse_int(v, a, 2, &steps[2]);
        else if (!strcmp(a, "--threads")) bad = parse_int(v, a, 1, &threads);
        else {
            fprintf(stderr, "bench_unclip: unknown or incomplete option '%s'\n", a);
            return 2;
        }
        if (bad) return 2;
        i++;
    }

    cdf_error err = {0};
    cdf_pipeline *p = NULL;
    cdf_load_options lo = {CDF_PIPELINE_UNCLIP, NULL};
    double t = now_s();
    if (cdf_pipeline_load(model, &lo, &p, &err)) {
        fprintf(stderr, "bench_unclip: %s\n", err.msg);
        return 1;
    }
    double load_s = now_s() - t;
    rss_mark load_rss = read_rss();

    timing tm;
    memset(&tm, 0, sizeof tm);
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.prompts = &prompt;
    o.num_prompts = 1;
    o.prior_num_inference_steps = (int)steps[0];
    o.decoder_num_inference_steps = (int)steps[1];
    o.super_res_num_inference_steps = (int)steps[2];
    o.threads = (int)threads;
    o.output_type = CDF_OUTPUT_NP;
    o.on_step = on_step;
    o.on_step_user = &tm;
    if (dump_dir) {
        mkdir(dump_dir, 0777); /* may exist already; a failure shows when the first file is written */
        o.on_dump = on_dump;
        o.on_dump_user = (void *)dump_dir;
    }

    cdf_generator *g = NULL;
    if (cdf_generator_new(CDF_RNG_NUMPY, seed, &g, &err)) {
        fprintf(stderr, "bench_unclip: %s\n", err.msg);
        cdf_pipeline_free(p);
        return 1;
    }
    cdf_tensor img = {0};
    double t0 = now_s();
    cdf_status s = cdf_pipeline_generate(p, &o, &g, 1, &img, NULL);
    double t_end = now_s();
    tm.rss[N_STAGES + 1] = read_rss();
    int rc = 1;
    if (s) {
        fprintf(stderr, "bench_unclip: %s\n", cdf_pipeline_last_error(p));
    } else {
        static const char *const names[] = {"text", "prior", "decoder", "super_res", "post"};
        double sec[5] = {tm.init[0] - t0, tm.last[0] - tm.init[0], tm.last[1] - tm.last[0], tm.last[2] - tm.last[1],
                         t_end - tm.last[2]};
        float abs_sum = cdf_abs_sum_f32(img.data, (size_t)cdf_tensor_numel(&img));
        printf("{\"impl\": \"cdiffusers\", \"case\": \"unclip_%ld_%ld_%ld\", \"threads\": %ld, \"load_s\": %.3f, "
               "\"load_rss_mib\": %.0f, \"stages\": {",
               steps[0], steps[1], steps[2], threads, load_s, load_rss.now);
        for (int i = 0; i < 5; i++) printf("%s\"%s\": %.3f", i ? ", " : "", names[i], sec[i]);
        printf("}, \"total\": %.3f, \"loops\": {", t_end - t0);
        for (int i = 0; i < N_STAGES; i++)
            printf("%s\"%s\": {\"steps\": %ld, \"first_step\": %.3f, \"rest_per_step\": %.3f}", i ? ", " : "",
                   names[1 + i], steps[i], tm.first[i] - tm.init[i],
                   (tm.last[i] - tm.first[i]) / (double)(steps[i] - 1));
        printf("}, \"rss_at_end_mib\": {");
        for (int i = 0; i < 5; i++) printf("%s\"%s\": %.0f", i ? ", " : "", names[i], tm.rss[i].now);
        printf("}, \"peak_rss_so_far_mib\": {\"load\": %.0f", load_rss.peak);
        for (int i = 0; i < 5; i++) printf(", \"%s\": %.0f", names[i], tm.rss[i].peak);
        printf("}, \"abs_sum\": %.9g}\n", (double)abs_sum);
        rc = 0;
    }
    cdf_tensor_free(&img);
    cdf_generator_free(g);
    cdf_pipeline_free(p);
    return rc;
}
