/* Allocation failure injection: every file-format entry point, failing the
 * k-th allocation for k = 0, 1, ... until the call succeeds, must return an
 * error cleanly (CDF_ERR_NOMEM) with nothing leaked and no file left. */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "io/npy.h"
#include "io/png.h"
#include "io/safetensors.h"
#include "io/weights.h"

/* Counting allocator: fails allocation number fail_at (0-based), counts live blocks. */
typedef struct alloc_state {
    long calls;
    long fail_at; /* -1: never */
    long live;
} alloc_state;

static void *a_malloc(size_t n, void *u) {
    alloc_state *s = u;
    if (s->calls++ == s->fail_at) return NULL;
    void *p = malloc(n);
    if (p) s->live++;
    return p;
}
static void *a_realloc(void *p, size_t n, void *u) {
    alloc_state *s = u;
    if (s->calls++ == s->fail_at) return NULL;
    void *q = realloc(p, n);
    if (q && !p) s->live++;
    return q;
}
static void a_free(void *p, void *u) {
    alloc_state *s = u;
    if (p) s->live--;
    free(p);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

typedef cdf_status (*op_fn)(const char *dir, cdf_error *err);

/* Counts the allocations op makes, then runs it once per allocation with
 * that one failing: each run returns CDF_OK (a tolerated failure) or
 * CDF_ERR_NOMEM, leaks nothing and leaves `entries` files in dir. */
static void sweep(const char *name, op_fn op, const char *dir, int entries) {
    alloc_state st = {0, -1, 0};
    cdf_allocator a = {a_malloc, a_realloc, a_free, &st};
    cdf_set_allocator(&a);
    cdf_error err0 = {0};
    cdf_status s0 = op(dir, &err0);
    cdf_set_allocator(NULL);
    if (s0 != CDF_OK) fail_msg("%s: fails without injection: %s", name, err0.msg);
    assert_int_equal(st.live, 0);
    long total = st.calls;
    assert_true(total > 0); /* the operation allocates, so the sweep tests something */
    int nomem = 0;
    for (long k = 0; k < total; k++) {
        st.calls = 0;
        st.fail_at = k;
        st.live = 0;
        cdf_set_allocator(&a);
        cdf_error err = {0};
        cdf_status s = op(dir, &err);
        cdf_set_allocator(NULL);
        if (st.live != 0) fail_msg("%s: fail at %ld: %ld blocks leaked (status %s)", name, k, st.live, cdf_status_name(s));
        if (count_entries(dir) != entries) fail_msg("%s: fail at %ld: files left behind", name, k);
        if (s == CDF_OK) continue;
        nomem++;
        /* cJSON reports allocation failure as a parse error (io/json.c says so) */
        int json_oom = s == CDF_ERR_FORMAT && strstr(err.msg, "invalid JSON");
        if (s != CDF_ERR_NOMEM && !json_oom)
            fail_msg("%s: fail at %ld: status %s: %s", name, k, cdf_status_name(s), err.msg);
    }
    assert_true(nomem > 0);
}

static cdf_status op_st_golden(const char *dir, cdf_error *err) {
    (void)dir;
    cdf_st_file *f = NULL;
    cdf_status s = cdf_st_open(tu_data("ddpm/models/tiny_xpred_linspace/unet/diffusion_pytorch_model.safetensors"),
                               &f, err);
    if (s == CDF_OK) {
        assert_int_equal(cdf_st_count(f), 142);
        cdf_st_close(f);
    }
    return s;
}

static void write_shards(const char *dir) {
    char path[4096];
    static const char *const files[2] = {"model-1.safetensors", "model-2.safetensors"};
    static const char *const headers[2] = {
        "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        "{\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *f = fopen(path, "wb");
        uint64_t hl = strlen(headers[i]);
        for (int b = 0; b < 8; b++) fputc((int)((hl >> (8 * b)) & 0xFF), f);
        fputs(headers[i], f);
        for (int b = 0; b < (i ? 4 : 8); b++) fputc(0, f);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *f = fopen(path, "wb");
    fputs("{\"weight_map\":{\"a\":\"model-1.safetensors\",\"b\":\"model-1.safetensors\",\"c\":\"model-2.safetensors\"}}",
          f);
    fclose(f);
}

static cdf_status op_weights_sharded(const char *dir, cdf_error *err) {
    cdf_weights *w = NULL;
    cdf_status s = cdf_weights_open_dir(dir, "fp16", &w, err);
    if (s == CDF_OK) {
        assert_int_equal(cdf_weights_count(w), 3);
        assert_non_null(cdf_weights_get(w, "c"));
        cdf_weights_close(w);
    }
    return s;
}

static cdf_status op_npy(const char *dir, cdf_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/t.npy", dir);
    const double v[3] = {1, 2, 3};
    cdf_tensor t = {CDF_F64, 1, {3}, (void *)v};
    cdf_status s = cdf_npy_write(path, &t, err);
    if (s != CDF_OK) return s;
    cdf_tensor r;
    s = cdf_npy_read(path, &r, err);
    if (s == CDF_OK) {
        assert_memory_equal(r.data, v, sizeof v);
        cdf_free(r.data);
    }
    remove(path);
    return s;
}

static cdf_status op_png(const char *dir, cdf_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/i.png", dir);
    float f[2 * 3 * 3];
    for (int i = 0; i < 18; i++) f[i] = (float)i / 17.0f;
    cdf_image img, grid;
    cdf_status s = cdf_image_from_f32(f, 2, 3, 3, &img, err);
    if (s != CDF_OK) return s;
    s = cdf_image_grid(&img, 1, 1, 2, &grid, err);
    cdf_image_free(&img);
    if (s != CDF_OK) return s;
    const char *keys[] = {"a", "b"};
    const char *vals[] = {"ascii", "\xc3\xa9t\xc3\xa9"};
    s = cdf_png_write(path, &grid, keys, vals, 2, err);
    cdf_image_free(&grid);
    if (s != CDF_OK) return s;
    cdf_image r;
    s = cdf_png_read(path, &r, err);
    if (s == CDF_OK) {
        assert_int_equal(r.width, 6);
        cdf_image_free(&r);
        char *v = NULL;
        s = cdf_png_read_text(path, "b", &v, err);
        if (s == CDF_OK) assert_string_equal(v, vals[1]);
        cdf_free(v);
    }
    remove(path);
    return s;
}

static void test_nomem(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    sweep("st_open", op_st_golden, dir, 0);
    sweep("npy", op_npy, dir, 0);
    sweep("png", op_png, dir, 0);
    write_shards(dir);
    sweep("weights", op_weights_sharded, dir, 3);
    tu_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
