/* Component weights: golden folder, shards with an index, variants, errors. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/weights.h"

/* Writes a safetensors file of F32 1-D tensors names[i] with n[i] elements
 * each holding value base + i (built by hand, independent of the reader). */
static void write_f32_file(const char *dir, const char *file, const char *const *names, const int *n, int count,
                           float base) {
    char header[4096] = "{";
    size_t off = 0;
    for (int i = 0; i < count; i++) {
        char ent[256];
        snprintf(ent, sizeof ent, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                 i ? "," : "", names[i], n[i], off, off + (size_t)n[i] * 4);
        strcat(header, ent);
        off += (size_t)n[i] * 4;
    }
    strcat(header, "}");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t hl = strlen(header);
    for (int i = 0; i < 8; i++) fputc((int)((hl >> (8 * i)) & 0xFF), f);
    fputs(header, f);
    for (int i = 0; i < count; i++)
        for (int k = 0; k < n[i]; k++) {
            float v = base + (float)i;
            fwrite(&v, 4, 1, f);
        }
    fclose(f);
}

static void write_text(const char *dir, const char *file, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static float first_f32(const cdf_st_tensor *t) {
    float v;
    memcpy(&v, t->data, 4);
    return v;
}

static void test_golden_dir(void **state) {
    (void)state;
    const char *dir = tu_data("ddpm/models/tiny_cifar/unet");
    char dircopy[4096];
    snprintf(dircopy, sizeof dircopy, "%s", dir);
    cdf_weights *w = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_weights_open_dir(dircopy, NULL, &w, &err), CDF_OK);
    assert_int_equal(cdf_weights_count(w), 328);        /* Python json: 328 tensors */
    assert_int_equal(cdf_weights_nbytes(w), 4491526u);  /* 2245763 params * 2 bytes (manifest) */
    const cdf_st_tensor *t = cdf_weights_peek(w, "conv_in.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, CDF_F16);
    assert_non_null(strstr(cdf_weights_file_of(w, t), "unet/diffusion_pytorch_model.safetensors"));
    assert_null(cdf_weights_peek(w, "nope"));
    assert_null(cdf_weights_get(w, "nope"));
    /* peek does not mark: everything is still unused */
    assert_int_equal(cdf_weights_check_all_used(w, &err), CDF_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "diffusion_pytorch_model.safetensors"));
    assert_non_null(strstr(err.msg, "328 unexpected tensors"));
    for (size_t i = 0; i < cdf_weights_count(w); i++) {
        const cdf_st_tensor *a = cdf_weights_at(w, i);
        if (strcmp(a->name, "conv_out.bias") == 0) continue;
        assert_ptr_equal(cdf_weights_get(w, a->name), a);
    }
    assert_null(cdf_weights_at(w, cdf_weights_count(w)));
    cdf_error_clear(&err);
    assert_int_equal(cdf_weights_check_all_used(w, &err), CDF_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "1 unexpected tensor not used by the model: 'conv_out.bias'"));
    assert_non_null(cdf_weights_get(w, "conv_out.bias"));
    assert_int_equal(cdf_weights_check_all_used(w, &err), CDF_OK);
    cdf_st_tensor fake = *t;
    assert_null(cdf_weights_file_of(w, &fake));
    cdf_weights_close(w);
    cdf_weights_close(NULL);
}

static void test_sharded(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    const char *n1[] = {"a.weight", "b.bias"};
    const int c1[] = {3, 2};
    const char *n2[] = {"c.weight"};
    const int c2[] = {5};
    write_f32_file(dir, "diffusion_pytorch_model-00001-of-00002.safetensors", n1, c1, 2, 10.0f);
    write_f32_file(dir, "diffusion_pytorch_model-00002-of-00002.safetensors", n2, c2, 1, 20.0f);
    write_text(dir, "diffusion_pytorch_model.safetensors.index.json",
               "{\"metadata\":{\"total_size\":40},\"weight_map\":{"
               "\"c.weight\":\"diffusion_pytorch_model-00002-of-00002.safetensors\","
               "\"a.weight\":\"diffusion_pytorch_model-00001-of-00002.safetensors\","
               "\"b.bias\":\"diffusion_pytorch_model-00001-of-00002.safetensors\"}}");
    cdf_weights *w = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_weights_open_dir(dir, NULL, &w, &err), CDF_OK);
    assert_int_equal(cdf_weights_count(w), 3);
    assert_int_equal(cdf_weights_nbytes(w), 40);
    assert_non_null(strstr(cdf_weights_source(w), "diffusion_pytorch_model.safetensors.index.json"));
    const cdf_st_tensor *a = cdf_weights_get(w, "a.weight");
    const cdf_st_tensor *b = cdf_weights_get(w, "b.bias");
    const cdf_st_tensor *c = cdf_weights_get(w, "c.weight");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(first_f32(a) == 10.0f);
    assert_true(first_f32(b) == 11.0f);
    assert_true(first_f32(c) == 20.0f);
    assert_int_equal(c->shape[0], 5);
    assert_non_null(strstr(cdf_weights_file_of(w, a), "-00001-of-00002.safetensors"));
    assert_non_null(strstr(cdf_weights_file_of(w, c), "-00002-of-00002.safetensors"));
    /* order: shards sorted by file name */
    assert_ptr_equal(cdf_weights_at(w, 0), a);
    assert_ptr_equal(cdf_weights_at(w, 2), c);
    assert_int_equal(cdf_weights_check_all_used(w, &err), CDF_OK);
    cdf_weights_close(w);

    /* weight_map names a tensor its shard lacks */
    write_text(dir, "diffusion_pytorch_model.safetensors.index.json",
               "{\"weight_map\":{\"c.weight\":\"diffusion_pytorch_model-00002-of-00002.safetensors\","
               "\"a.weight\":\"diffusion_pytorch_model-00001-of-00002.safetensors\","
               "\"b.bias\":\"diffusion_pytorch_model-00001-of-00002.safetensors\","
               "\"ghost\":\"diffusion_pytorch_model-00002-of-00002.safetensors\"}}");
    assert_int_equal(cdf_weights_open_dir(dir, NULL, &w, &err), CDF_ERR_FORMAT);
    assert_null(w);
    assert_non_null(strstr(err.msg, "'ghost'"));
    assert_non_null(strstr(err.msg, "index.json"));
    /* a shard tensor missing from weight_map */
    write_text(dir, "diffusion_pytorch_model.safetensors.index.json",
               "{\"weight_map\":{\"c.weight\":\"diffusion_pytorch_model-00002-of-00002.safetensors\","
               "\"a.weight\":\"diffusion_pytorch_model-00001-of-00002.safetensors\"}}");
    assert_int_equal(cdf_weights_open_dir(dir, NULL, &w, &err), CDF_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "'b.bias'"));
    assert_non_null(strstr(err.msg, "-00001-of-00002.safetensors"));
    /* tensor mapped to the wrong shard */
    write_text(dir, "diffusion_pytorch_model.safetensors.index.json",
               "{\"weight_map\":{\"c.weight\":\"diffusion_pytorch_model-00001-of-00002.safetensors\","
               "\"a.weight\":\"diffusion_pytorch_model-00001-of-00002.safetensors\","
               "\"b.bias\":\"diffusion_pytorch_model-00001-of-00002.safetensors\"}}");
    assert_int_equal(cdf_weights_open_dir(dir, NULL, &w, &err), CDF_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "'c.weight'"));
    /* a tensor in two shards */
    const char *n3[] = {"c.weight", "a.weight"};
    const int c3[] = {5, 3};
    write_f32_file(dir, "diffusion_pytorch_model-00002-of-00002.safetensors", n3, c3, 2, 20.0f);
    write_text(dir, "diffusion_pytorch_model.safetensors.index.json",
               "{\"weight_map\":{\"a.weight\":\"diffusion_pytorch_model-00001-of-00002.safetensors\","
               "\"b.bias\":\"diffusion_pytorch_model-00001-of-00002.safetensors\"}}");
    /* only shard 1 is listed, so shard 2 is never opened */
    assert_int_equal(cdf_weights_open_dir(dir, NULL, &w, &err), CDF_OK);
    assert_int_equal(cdf_weights_count(w), 2);
    cdf_weights_close(w);
    /* listing shard 2 too makes a.weight appear twice */
    write_text(dir, "diffusion_pytorch_model.safetensors.index.json",
               "{\"weight_map\":{\"a.weight\":\"diffusion_pytorch_model-00001-of-00002.safetensors\","
               "\"b.bias\":\"diffusion_pytorch_model-00001-of-00002.safetensors\","
               "\"c.weight\":\"diffusion_pytorch_model-00002-of-00002.safetensors\"}}");
    assert_int_equal(cdf_weights_open_dir(dir, NULL, &w, &err), CDF_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "'a.weight'"));
    assert_non_null(strstr(err.msg, "-00002-of-00002.safetensors"));
    /* shard outside the folder, missing shard, no weight_map */
    write_text(dir, "diffusion_pytorch_model.safetensors.index.json", "{\"weight_map\":{\"a\":\"../x.safetensors\"}}");
    assert_int_equal(cdf_weights_open_dir(dir, NULL, &w, &err), CDF_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "../x.safetensors"));
    write_text(dir, "diffusion_pytorch_model.safetensors.index.json", "{\"weight_map\":{\"a\":\"gone.safetensors\"}}");
    assert_int_equal(cdf_weights_open_dir(dir, NULL, &w, &err), CDF_ERR_MISSING);
    assert_non_null(strstr(err.msg, "gone.safetensors"));
    write_text(dir, "diffusion_pytorch_model.safetensors.index.json", "{\"metadata\":{}}");
    assert_int_equal(cdf_weights_open_dir(dir, NULL, &w, &err), CDF_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "weight_map"));
    tu_rmtree(dir);
    free(dir);
}

static void count_notice(cdf_notice_level level, const char *msg, void *user) {
    (void)level;
    assert_non_null(strstr(msg, "bf16"));
    ++*(int *)user;
}

static void test_variants(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    const char *names[] = {"x"};
    const int n[] = {1};
    write_f32_file(dir, "diffusion_pytorch_model.safetensors", names, n, 1, 1.0f);
    write_f32_file(dir, "diffusion_pytorch_model.fp16.safetensors", names, n, 1, 2.0f);
    cdf_weights *w = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_weights_open_dir(dir, "fp16", &w, &err), CDF_OK);
    assert_true(first_f32(cdf_weights_peek(w, "x")) == 2.0f);
    assert_non_null(strstr(cdf_weights_source(w), "diffusion_pytorch_model.fp16.safetensors"));
    cdf_weights_close(w);
    assert_int_equal(cdf_weights_open_dir(dir, NULL, &w, &err), CDF_OK);
    assert_true(first_f32(cdf_weights_peek(w, "x")) == 1.0f);
    cdf_weights_close(w);
    /* requested variant absent: plain file, with a notice */
    int notices = 0;
    err.on_notice = count_notice;
    err.notice_user = &notices;
    assert_int_equal(cdf_weights_open_dir(dir, "bf16", &w, &err), CDF_OK);
    assert_int_equal(notices, 1);
    err.on_notice = NULL;
    assert_true(first_f32(cdf_weights_peek(w, "x")) == 1.0f);
    cdf_weights_close(w);
    assert_int_equal(cdf_weights_open_dir(dir, "a/b", &w, &err), CDF_ERR_ARG);

    /* sharded variant (diffusers naming) wins over the plain single file */
    write_f32_file(dir, "diffusion_pytorch_model.fp32-00001-of-00001.safetensors", names, n, 1, 3.0f);
    write_text(dir, "diffusion_pytorch_model.safetensors.index.fp32.json",
               "{\"weight_map\":{\"x\":\"diffusion_pytorch_model.fp32-00001-of-00001.safetensors\"}}");
    assert_int_equal(cdf_weights_open_dir(dir, "fp32", &w, &err), CDF_OK);
    assert_true(first_f32(cdf_weights_peek(w, "x")) == 3.0f);
    cdf_weights_close(w);
    /* legacy variant index naming */
    write_text(dir, "diffusion_pytorch_model.ema.safetensors.index.json",
               "{\"weight_map\":{\"x\":\"diffusion_pytorch_model.fp32-00001-of-00001.safetensors\"}}");
    assert_int_equal(cdf_weights_open_dir(dir, "ema", &w, &err), CDF_OK);
    assert_true(first_f32(cdf_weights_peek(w, "x")) == 3.0f);
    cdf_weights_close(w);
    tu_rmtree(dir);
    free(dir);

    /* transformers-style model.safetensors */
    dir = tu_tmpdir();
    write_f32_file(dir, "model.safetensors", names, n, 1, 4.0f);
    assert_int_equal(cdf_weights_open_dir(dir, "fp16", &w, &err), CDF_OK);
    assert_true(first_f32(cdf_weights_peek(w, "x")) == 4.0f);
    cdf_weights_close(w);
    tu_rmtree(dir);
    free(dir);
}

static void test_missing_and_pickle(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    cdf_weights *w = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_weights_open_dir(dir, "fp16", &w, &err), CDF_ERR_MISSING);
    assert_null(w);
    assert_non_null(strstr(err.msg, dir));
    assert_non_null(strstr(err.msg, "diffusion_pytorch_model.fp16.safetensors"));
    assert_non_null(strstr(err.msg, "diffusion_pytorch_model.safetensors"));
    assert_non_null(strstr(err.msg, "model.safetensors.index.json"));
    write_text(dir, "diffusion_pytorch_model.bin", "pickle");
    assert_int_equal(cdf_weights_open_dir(dir, NULL, &w, &err), CDF_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "safetensors"));
    assert_non_null(strstr(err.msg, "diffusion_pytorch_model.bin"));
    assert_int_equal(cdf_weights_open_dir("/nonexistent/unet", NULL, &w, &err), CDF_ERR_MISSING);
    assert_non_null(strstr(err.msg, "/nonexistent/unet"));
    assert_int_equal(cdf_weights_open_file("/nonexistent/x.safetensors", &w, &err), CDF_ERR_MISSING);
    tu_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_dir),
        cmocka_unit_test(test_sharded),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_missing_and_pickle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
