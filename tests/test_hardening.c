/* Hardening regressions: every input the fuzzers (fuzz/) found a problem
 * with, as a fixed test, plus the size limits and the atomic-output promise.
 * The sanitizer job of .ci/run runs these under ASan+UBSan, which is what the
 * undefined-behaviour cases need to fail loudly. */
#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cdiffusers/pipeline.h"
#include "cdiffusers/rng.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/png.h"
#include "schedulers/scheduler.h"
#include "text/clip_tokenizer.h"

/* ---- an allocator that records the largest request and the live blocks ---- */

typedef struct big_state {
    size_t largest;
    long live;
} big_state;

static void *b_malloc(size_t n, void *u) {
    big_state *s = u;
    if (n > s->largest) s->largest = n;
    void *p = malloc(n);
    if (p) s->live++;
    return p;
}
static void *b_realloc(void *p, size_t n, void *u) {
    big_state *s = u;
    if (n > s->largest) s->largest = n;
    void *q = realloc(p, n);
    if (q && !p) s->live++;
    return q;
}
static void b_free(void *p, void *u) {
    big_state *s = u;
    if (p) s->live--;
    free(p);
}

#define SMALL_ALLOC ((size_t)128 << 20) /* what a hostile 200-byte file may make us allocate, at most */

/* ---- PNG bytes ---- */

static uint32_t crc32_of(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
    p[3] = (unsigned char)v;
}

/* Appends a chunk (declared length `len`, `n` bytes of data actually written, CRC over those). */
static size_t chunk(unsigned char *out, const char *type, uint32_t len, const unsigned char *data, size_t n) {
    put32(out, len);
    memcpy(out + 4, type, 4);
    if (n) memcpy(out + 8, data, n);
    put32(out + 8 + n, crc32_of(out + 4, n + 4));
    return 12 + n;
}

static size_t png_head(unsigned char *out, uint32_t w, uint32_t h) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    memcpy(out, sig, 8);
    unsigned char ihdr[13] = {0, 0, 0, 0, 0, 0, 0, 0, 8, 2, 0, 0, 0}; /* 8-bit RGB */
    put32(ihdr, w);
    put32(ihdr + 4, h);
    return 8 + chunk(out + 8, "IHDR", 13, ihdr, 13);
}

/* 1x1 RGB IDAT (zlib stream of the filter byte and 3 zero bytes) and IEND. */
static size_t png_tail(unsigned char *out) {
    static const unsigned char idat[] = {0x78, 0x9c, 0x63, 0x60, 0x60, 0x60, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01};
    size_t n = chunk(out, "IDAT", sizeof idat, idat, sizeof idat);
    return n + chunk(out + n, "IEND", 0, NULL, 0);
}

static void write_bytes(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* fuzz_png found: a zTXt chunk declaring 0x77000074 bytes in a 200-byte file
 * made libpng allocate (and clear) 2 GB before reading it. */
static void png_chunk_length_is_bounded(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/ztxt.png", dir);
    unsigned char b[512];
    size_t n = png_head(b, 1, 1);
    static const unsigned char z[] = "parameters\0\0x\x9c\x03\x00\x00\x00\x00\x01";
    n += chunk(b + n, "zTXt", 0x77000074u, z, sizeof z - 1);
    n += png_tail(b + n);
    write_bytes(path, b, n);
    big_state st = {0, 0};
    cdf_allocator a = {b_malloc, b_realloc, b_free, &st};
    cdf_set_allocator(&a);
    cdf_error err = {0};
    char *text = NULL;
    cdf_status s = cdf_png_read_text(path, "parameters", &text, &err);
    cdf_image img;
    cdf_error e2 = {0};
    cdf_status s2 = cdf_png_read(path, &img, &e2);
    cdf_set_allocator(NULL);
    assert_true(s == CDF_ERR_LIMIT || s == CDF_ERR_FORMAT);
    assert_null(text);
    assert_non_null(strstr(err.msg, path));
    assert_true(s2 == CDF_ERR_LIMIT || s2 == CDF_ERR_FORMAT);
    assert_null(img.pixels);
    assert_true(st.largest < SMALL_ALLOC);
    assert_int_equal(st.live, 0);
    tu_rmtree(dir);
    free(dir);
}

/* fuzz_png found: IHDR 64781 x 15621 in a 55-byte file made cdf_png_read
 * allocate 3 GB of pixels before decoding anything. */
static void png_pixel_count_is_bounded(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/big.png", dir);
    unsigned char b[256];
    size_t n = png_head(b, 64781, 15621);
    n += png_tail(b + n);
    write_bytes(path, b, n);
    big_state st = {0, 0};
    cdf_allocator a = {b_malloc, b_realloc, b_free, &st};
    cdf_set_allocator(&a);
    cdf_image img;
    cdf_error err = {0};
    cdf_status s = cdf_png_read(path, &img, &err);
    cdf_set_allocator(NULL);
    assert_int_equal(s, CDF_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "pixels"));
    assert_null(img.pixels);
    assert_true(st.largest < SMALL_ALLOC);
    assert_int_equal(st.live, 0);
    /* under the limit, the same truncated file is just malformed */
    n = png_head(b, 640, 480);
    n += png_tail(b + n);
    write_bytes(path, b, n);
    assert_int_equal(cdf_png_read(path, &img, &err), CDF_ERR_FORMAT);
    tu_rmtree(dir);
    free(dir);
}

/* fuzz_tokenizer_encode found: the empty prompt did pointer arithmetic on a
 * NULL buffer (UBSan: applying zero offset to null pointer). */
static void tokenizer_empty_prompt(void **state) {
    (void)state;
    cdf_clip_tokenizer *t = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_clip_tokenizer_load(tu_data("tokenizer"), &t, &err), CDF_OK);
    int64_t ids[77];
    int nc = -1, tr = -1;
    assert_int_equal(cdf_clip_tokenize(t, "", ids, &nc, &tr, NULL, &err), CDF_OK);
    assert_int_equal(nc, 0);
    assert_int_equal(tr, 0);
    /* tokenizer_golden.meta.json: bos 49406, eos = pad 49407 */
    assert_int_equal(ids[0], 49406);
    for (int i = 1; i < 77; i++) assert_int_equal(ids[i], 49407);
    int64_t *all = (int64_t *)1;
    size_t n = 99;
    assert_int_equal(cdf_clip_tokenizer_encode(t, "", &all, &n, &err), CDF_OK);
    assert_null(all);
    assert_int_equal(n, 0);
    cdf_clip_tokenizer_free(t);
}

/* fuzz_tokenizer_load found: a vocab.json whose first key is "" did the same
 * in the BPE symbol arena.  Such a vocab loads (json.load accepts it). */
static void tokenizer_empty_vocab_key(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    char p[4200];
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    const char *vocab = "{\"\": 0, \"a</w>\": 1, \"<|startoftext|>\": 2, \"<|endoftext|>\": 3}";
    write_bytes(p, (const unsigned char *)vocab, strlen(vocab));
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    write_bytes(p, (const unsigned char *)"#version: 0.2\n", 14);
    cdf_clip_tokenizer *t = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_clip_tokenizer_load(dir, &t, &err), CDF_OK);
    int64_t ids[77];
    int nc = -1;
    assert_int_equal(cdf_clip_tokenize(t, "a", ids, &nc, NULL, NULL, &err), CDF_OK);
    assert_int_equal(nc, 1);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 1); /* "a</w>" */
    assert_int_equal(ids[2], 3);
    cdf_clip_tokenizer_free(t);
    tu_rmtree(dir);
    free(dir);
}

/* fuzz_config found: an Euler config whose scaled_linear betas reach 0.912
 * gives infinite sigmas, so "continuous" timesteps 0.25 log(sigma) are
 * infinite, and their int64 view was a C cast of inf (undefined).  torch's
 * .long() of inf (and of NaN) on x86 is INT64_MIN; the float view stays inf. */
static void sched_infinite_timestep(void **state) {
    (void)state;
    static const char *cfgtext =
        "{\"_class_name\": \"EulerDiscreteScheduler\", \"num_train_timesteps\": 1000, \"beta_start\": 0.00085,"
        " \"beta_end\": 0.912, \"beta_schedule\": \"scaled_linear\", \"prediction_type\": \"v_prediction\","
        " \"timestep_spacing\": \"linspace\", \"timestep_type\": \"continuous\", \"steps_offset\": 1}";
    cJSON *root = cJSON_Parse(cfgtext);
    assert_non_null(root);
    cdf_sched_config cfg;
    cdf_error err = {0};
    assert_int_equal(cdf_sched_config_parse(root, "scheduler_config.json", &cfg, &err), CDF_OK);
    cJSON_Delete(root);
    cdf_scheduler *s = NULL;
    assert_int_equal(cdf_scheduler_new(&cfg, &s, &err), CDF_OK);
    /* two steps: sigmas [inf, 0.0291675, 0] (alphas_cumprod[999] underflows to 0 in float32) */
    assert_int_equal(cdf_scheduler_set_timesteps(s, 2, &err), CDF_OK);
    assert_int_equal(cdf_scheduler_num_timesteps(s), 2);
    double v = cdf_scheduler_timestep_value(s, 0);
    assert_true(v > 1e308);
    assert_true(cdf_scheduler_timestep(s, 0) == INT64_MIN);
    assert_true(cdf_scheduler_timestep(s, 1) == 0); /* 0.25 log(0.0291675) = -0.88 truncates to 0 */
    cdf_scheduler_free(s);
    cdf_sched_config_free(&cfg);
}

/* cdf_tensor_numel: zero dims give 0, products past INT64_MAX saturate
 * (cmd_randn compared such a product, overflowed, against its 2^32 limit). */
static void tensor_numel_never_overflows(void **state) {
    (void)state;
    cdf_tensor t;
    memset(&t, 0, sizeof t);
    t.ndim = 4;
    for (int i = 0; i < 4; i++) t.shape[i] = (int64_t)1 << 31;
    assert_true(cdf_tensor_numel(&t) == INT64_MAX);
    t.shape[3] = 0;
    assert_true(cdf_tensor_numel(&t) == 0);
    t.ndim = 2;
    t.shape[0] = 3, t.shape[1] = 5;
    assert_true(cdf_tensor_numel(&t) == 15);
    t.shape[1] = -5;
    assert_true(cdf_tensor_numel(&t) == -1);
    t.ndim = 0;
    assert_true(cdf_tensor_numel(&t) == 1);
}

/* ---- size limits of a run ---- */

static void copy_tree(const char *src, const char *dst) {
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && chmod -R u+w '%s'", src, dst, dst);
    assert_int_equal(system(cmd), 0);
}

static void set_sample_size(const char *config, int v) {
    cJSON *c = NULL;
    char *text = tu_read_text(config);
    assert_non_null(text);
    c = cJSON_Parse(text);
    free(text);
    assert_non_null(c);
    cJSON_ReplaceItemInObject(c, "sample_size", cJSON_CreateNumber(v));
    char *out = cJSON_Print(c);
    write_bytes(config, (const unsigned char *)out, strlen(out));
    cJSON_free(out);
    cJSON_Delete(c);
}

/* A UNet2DModel config with sample_size 65536 (the largest the config
 * accepts): the DDIM run is refused with CDF_ERR_LIMIT before any image
 * buffer is allocated (it would be 3 x 65536 x 65536 floats: 51 GB). */
static void pipeline_refuses_huge_sample(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    char model[4200], p[4300];
    snprintf(model, sizeof model, "%s/m", dir);
    copy_tree(tu_data("ddpm/models/tiny_fourier_f16"), model);
    snprintf(p, sizeof p, "%s/unet/config.json", model);
    set_sample_size(p, 65536);
    big_state st = {0, 0};
    cdf_allocator a = {b_malloc, b_realloc, b_free, &st};
    cdf_set_allocator(&a);
    cdf_error err = {0};
    cdf_pipeline *pipe = NULL;
    cdf_load_options lo = {CDF_PIPELINE_DDIM, NULL};
    cdf_status s = cdf_pipeline_load(model, &lo, &pipe, &err);
    cdf_generator *g = NULL;
    cdf_tensor img;
    memset(&img, 0, sizeof img);
    cdf_status gs = CDF_OK;
    if (s == CDF_OK) {
        assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY, "0", &g, &err), CDF_OK);
        cdf_generate_options o;
        cdf_generate_options_init(&o);
        o.num_inference_steps = 1;
        gs = cdf_pipeline_generate(pipe, &o, &g, 1, &img, NULL);
        if (gs) snprintf(err.msg, sizeof err.msg, "%s", cdf_pipeline_last_error(pipe));
        cdf_generator_free(g);
        cdf_pipeline_free(pipe);
    }
    cdf_set_allocator(NULL);
    assert_int_equal(s, CDF_OK);
    assert_int_equal(gs, CDF_ERR_LIMIT);
    assert_null(img.data);
    assert_non_null(strstr(err.msg, "sample_size"));
    assert_true(st.largest < SMALL_ALLOC);
    assert_int_equal(st.live, 0);
    tu_rmtree(dir);
    free(dir);
}

/* Stable Diffusion options past the limits: 65536 x 65536 images, and a
 * prompt count times images per prompt that overflows int. */
static void sd_refuses_huge_options(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_pipeline *pipe = NULL;
    cdf_load_options lo = {CDF_PIPELINE_SD, NULL};
    assert_int_equal(cdf_pipeline_load(tu_data("sd/pipelines/tiny-sd15-b-f16"), &lo, &pipe, &err), CDF_OK);
    cdf_generator *g = NULL;
    assert_int_equal(cdf_generator_new(CDF_RNG_NUMPY, "0", &g, &err), CDF_OK);
    const char *prompts[3] = {"a", "b", "c"};
    cdf_generate_options o;
    cdf_generate_options_init(&o);
    o.prompts = prompts;
    o.num_prompts = 3;
    o.num_inference_steps = 1;
    o.height = o.width = 65536;
    cdf_tensor img;
    memset(&img, 0, sizeof img);
    assert_int_equal(cdf_pipeline_generate(pipe, &o, &g, 1, &img, NULL), CDF_ERR_LIMIT);
    assert_non_null(strstr(cdf_pipeline_last_error(pipe), "pixels"));
    o.height = o.width = 64;
    o.num_images_per_prompt = 0x7FFFFFFF;
    assert_int_equal(cdf_pipeline_batch_size(pipe, &o), 0x7FFFFFFF);
    assert_int_equal(cdf_pipeline_generate(pipe, &o, &g, 1, &img, NULL), CDF_ERR_LIMIT);
    assert_non_null(strstr(cdf_pipeline_last_error(pipe), "images"));
    assert_null(img.data);
    cdf_generator_free(g);
    cdf_pipeline_free(pipe);
}

/* ---- atomic outputs ---- */

/* Names in dir other than "." and "..", as a count; the one that is not
 * `keep` (if any) into other[]. */
static int dir_entries(const char *dir, const char *keep, char *other, size_t cap) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    other[0] = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        n++;
        if (strcmp(e->d_name, keep) != 0) snprintf(other, cap, "%s", e->d_name);
    }
    closedir(d);
    return n;
}

/* Runs the writer for `kind` (0 .npy, 1 PNG) in a child whose file size
 * limit is `limit` bytes (SIGXFSZ ignored, so write() fails with EFBIG);
 * returns the child's status: 0 written, 1 clean error, else a crash. */
static int write_with_limit(const char *path, int kind, rlim_t limit) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {limit, limit};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(3);
        static float px[64 * 64 * 3];
        uint32_t r = 12345; /* noise, so the PNG does not compress below the limits tried */
        for (int i = 0; i < 64 * 64 * 3; i++) r = r * 1664525u + 1013904223u, px[i] = (float)(r >> 24) / 255.0f;
        cdf_error err = {0};
        cdf_status s;
        if (kind == 0) {
            cdf_tensor t = {CDF_F32, 4, {1, 64, 64, 3}, px};
            s = cdf_npy_write(path, &t, &err);
        } else {
            cdf_image img;
            if (cdf_image_from_f32(px, 64, 64, 3, &img, &err)) _exit(4);
            const char *k[1] = {"parameters"}, *v[1] = {"{\"seeds\": [\"7\"]}"};
            s = cdf_png_write(path, &img, k, v, 1, &err);
            cdf_image_free(&img);
        }
        if (s == CDF_OK) _exit(0);
        _exit(s == CDF_ERR_IO && strstr(err.msg, path) ? 1 : 5);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* A write that fails half-way (file size limit: as a full disk) returns a
 * clean CDF_ERR_IO naming the path, leaves no temporary file, and never
 * touches the good file already at the destination. */
static void failed_write_keeps_good_file(void **state) {
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        char *dir = tu_tmpdir();
        char path[4200], other[512];
        const char *name = kind ? "out.png" : "out.npy";
        snprintf(path, sizeof path, "%s/%s", dir, name);
        /* a good file first, written without limits */
        assert_int_equal(write_with_limit(path, kind, RLIM_INFINITY), 0);
        char *good = tu_read_text(path);
        assert_non_null(good);
        struct stat st0;
        assert_int_equal(stat(path, &st0), 0);
        assert_true(st0.st_size > 4096);
        /* then runs that fail after 0, 100 and 4096 bytes */
        static const rlim_t limits[] = {1, 100, 4096};
        for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
            assert_int_equal(write_with_limit(path, kind, limits[i]), 1);
            assert_int_equal(dir_entries(dir, name, other, sizeof other), 1);
            struct stat st1;
            assert_int_equal(stat(path, &st1), 0);
            assert_int_equal(st1.st_size, st0.st_size);
            char *now = tu_read_text(path);
            assert_non_null(now);
            assert_memory_equal(now, good, (size_t)st0.st_size);
            free(now);
        }
        /* and a failed write where there was no file leaves nothing */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(write_with_limit(path, kind, 100), 1);
        assert_int_equal(dir_entries(dir, name, other, sizeof other), 0);
        free(good);
        tu_rmtree(dir);
        free(dir);
    }
}

/* The rename at commit fails (the destination is a non-empty folder): the
 * error names the path and the temporary file is gone. */
static void failed_commit_leaves_nothing(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    char path[4200], inner[4300], other[512];
    snprintf(path, sizeof path, "%s/out.npy", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(inner, sizeof inner, "%s/keep", path);
    write_bytes(inner, (const unsigned char *)"x", 1);
    float v[4] = {1, 2, 3, 4};
    cdf_tensor t = {CDF_F32, 1, {4}, v};
    cdf_error err = {0};
    assert_int_equal(cdf_npy_write(path, &t, &err), CDF_ERR_IO);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(dir_entries(dir, "out.npy", other, sizeof other), 1);
    tu_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(png_chunk_length_is_bounded),
        cmocka_unit_test(png_pixel_count_is_bounded),
        cmocka_unit_test(tokenizer_empty_prompt),
        cmocka_unit_test(tokenizer_empty_vocab_key),
        cmocka_unit_test(sched_infinite_timestep),
        cmocka_unit_test(tensor_numel_never_overflows),
        cmocka_unit_test(pipeline_refuses_huge_sample),
        cmocka_unit_test(sd_refuses_huge_options),
        cmocka_unit_test(failed_write_keeps_good_file),
        cmocka_unit_test(failed_commit_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
