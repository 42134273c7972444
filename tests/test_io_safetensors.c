/* safetensors reader: golden model files and hand-built malformed files. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/json.h"
#include "io/safetensors.h"

/* Writes an 8-byte length (hlen_override when >= 0, else strlen(header)),
 * the header and data_len bytes of data (NULL: a 0,1,2,... pattern). */
static void write_st(const char *path, const char *header, long long hlen_override, const void *data,
                     size_t data_len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t hlen = hlen_override >= 0 ? (uint64_t)hlen_override : strlen(header);
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hlen >> (8 * i));
    assert_int_equal(fwrite(le, 1, 8, f), 8);
    assert_int_equal(fwrite(header, 1, strlen(header), f), strlen(header));
    for (size_t i = 0; i < data_len; i++) fputc(data ? ((const unsigned char *)data)[i] : (int)(i & 0xFF), f);
    fclose(f);
}

static char g_path[4096];

static const char *tmp_file(const char *dir, const char *name) {
    snprintf(g_path, sizeof g_path, "%s/%s", dir, name);
    return g_path;
}

/* Opens a hand-built file that must fail with `want`, its message naming the
 * file and each of the NULL-terminated `words`. */
static void expect_fail(const char *dir, const char *name, const char *header, long long hlen, size_t data_len,
                        cdf_status want, const char *w1, const char *w2) {
    const char *path = tmp_file(dir, name);
    write_st(path, header, hlen, NULL, data_len);
    cdf_st_file *f = (cdf_st_file *)1;
    cdf_error err = {0};
    cdf_status s = cdf_st_open(path, &f, &err);
    if (s != want) fprintf(stderr, "%s: got %s: %s\n", name, cdf_status_name(s), err.msg);
    assert_int_equal(s, want);
    assert_null(f);
    assert_int_equal(err.status, want);
    assert_non_null(strstr(err.msg, path));
    if (w1 && !strstr(err.msg, w1)) fail_msg("%s: message lacks '%s': %s", name, w1, err.msg);
    if (w2 && !strstr(err.msg, w2)) fail_msg("%s: message lacks '%s': %s", name, w2, err.msg);
}

/* Golden models: tensor count, dtype and parameter count from the manifest;
 * first bytes of conv_in.bias as read by Python's json/struct. */
static void test_golden_models(void **state) {
    (void)state;
    static const struct {
        const char *model;
        size_t count;
        size_t data_bytes;
        const char *bias_dtype;
        int bias_len;
        unsigned char bias_head[8];
    } cases[] = {
        {"tiny_cifar", 328, 4491526, "F16", 32, {0x82, 0xb1, 0xe4, 0xb5, 0xd8, 0x21, 0x2f, 0x33}},
        {"tiny_fourier_f16", 209, 508326, "F16", 16, {0}},
        {"tiny_heads_f16", 212, 2099110, "F16", 32, {0}},
        {"tiny_odd_bf16", 270, 1311494, "BF16", 16, {0x4a, 0x3c, 0x3b, 0xbe, 0x7c, 0x3e, 0x1f, 0xbd}},
        {"tiny_vpred_trailing", 144, 1795020, "F32", 32, {0x24, 0xd8, 0x3b, 0x3e, 0xc7, 0xc3, 0x32, 0x3e}},
        {"tiny_xpred_linspace", 142, 571334, "F16", 32, {0}},
    };
    char *manifest_text = tu_read_text(tu_data("ddpm/manifest.json"));
    assert_non_null(manifest_text);
    cJSON *manifest = cJSON_Parse(manifest_text);
    assert_non_null(manifest);
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(manifest, "models");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(models, cases[c].model);
        assert_non_null(m);
        const char *want_dtype = cJSON_GetObjectItemCaseSensitive(m, "weights_dtype")->valuestring;
        int64_t want_params = (int64_t)cJSON_GetObjectItemCaseSensitive(m, "params")->valuedouble;
        cdf_dtype dt;
        assert_int_equal(cdf_st_dtype_from_string(want_dtype, &dt), 0);
        assert_string_equal(want_dtype, cases[c].bias_dtype);

        const char *path = tu_data("ddpm/models/%s/unet/diffusion_pytorch_model.safetensors", cases[c].model);
        cdf_st_file *f = NULL;
        cdf_error err = {0};
        assert_int_equal(cdf_st_open(path, &f, &err), CDF_OK);
        assert_string_equal(cdf_st_path(f), path);
        assert_int_equal(cdf_st_count(f), cases[c].count);
        assert_string_equal(cdf_st_metadata(f, "format"), "pt");
        assert_null(cdf_st_metadata(f, "nope"));
        int64_t params = 0;
        size_t bytes = 0;
        const unsigned char *prev_end = NULL;
        for (size_t i = 0; i < cdf_st_count(f); i++) {
            const cdf_st_tensor *t = cdf_st_at(f, i);
            assert_int_equal(t->dtype, dt);
            int64_t numel = 1;
            for (int d = 0; d < t->ndim; d++) numel *= t->shape[d];
            params += numel;
            assert_int_equal(t->nbytes, (size_t)numel * cdf_dtype_size(dt));
            bytes += t->nbytes;
            if (prev_end) assert_ptr_equal(t->data, prev_end); /* data-offset order, no holes */
            prev_end = t->data + t->nbytes;
            assert_ptr_equal(cdf_st_find(f, t->name), t);
        }
        assert_null(cdf_st_at(f, cdf_st_count(f)));
        assert_int_equal(params, want_params);
        assert_int_equal(bytes, cases[c].data_bytes);
        const cdf_st_tensor *b = cdf_st_find(f, "conv_in.bias");
        assert_non_null(b);
        assert_ptr_equal(b, cdf_st_at(f, 0)); /* offsets [0, ...] */
        assert_int_equal(b->ndim, 1);
        assert_int_equal(b->shape[0], cases[c].bias_len);
        static const unsigned char zero[8];
        if (memcmp(cases[c].bias_head, zero, 8) != 0) assert_memory_equal(b->data, cases[c].bias_head, 8);
        const cdf_st_tensor *w = cdf_st_find(f, "conv_in.weight");
        assert_non_null(w);
        assert_int_equal(w->ndim, 4);
        assert_int_equal(w->shape[0], cases[c].bias_len);
        assert_int_equal(w->shape[2], 3);
        assert_null(cdf_st_find(f, "conv_in.bia"));
        assert_null(cdf_st_find(f, "zzz"));
        assert_null(cdf_st_find(f, ""));
        cdf_st_close(f);
    }
    /* tiny_cifar conv_in.weight: [32, 3, 3, 3] at data offset 64 (Python). */
    cdf_st_file *f = NULL;
    assert_int_equal(cdf_st_open(tu_data("ddpm/models/tiny_cifar/unet/diffusion_pytorch_model.safetensors"), &f, NULL),
                     CDF_OK);
    const cdf_st_tensor *w = cdf_st_find(f, "conv_in.weight");
    static const unsigned char head[8] = {0x1a, 0xb3, 0xbc, 0x20, 0x76, 0xb3, 0x67, 0x34};
    assert_memory_equal(w->data, head, 8);
    assert_ptr_equal(w->data, cdf_st_find(f, "conv_in.bias")->data + 64);
    cdf_st_close(f);
    cJSON_Delete(manifest);
    free(manifest_text);
}

static void test_missing_file(void **state) {
    (void)state;
    cdf_st_file *f = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_st_open("/nonexistent/x.safetensors", &f, &err), CDF_ERR_MISSING);
    assert_non_null(strstr(err.msg, "/nonexistent/x.safetensors"));
    cdf_st_close(NULL);
}

static void test_bad_files(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    /* shorter than 8 bytes */
    {
        const char *path = tmp_file(dir, "short.safetensors");
        FILE *fp = fopen(path, "wb");
        fwrite("\x05\x00\x00", 1, 3, fp);
        fclose(fp);
        cdf_st_file *f = NULL;
        cdf_error err = {0};
        assert_int_equal(cdf_st_open(path, &f, &err), CDF_ERR_FORMAT);
        assert_non_null(strstr(err.msg, path));
        assert_null(f);
    }
    const char *ok1 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_fail(dir, "pastend.st", ok1, 1000, 8, CDF_ERR_FORMAT, "past the end", NULL);
    expect_fail(dir, "notjson.st", "{not json at all}", -1, 0, CDF_ERR_FORMAT, "JSON", NULL);
    expect_fail(dir, "array.st", "[1, 2]", -1, 0, CDF_ERR_FORMAT, NULL, NULL);
    expect_fail(dir, "empty.st", "", -1, 0, CDF_ERR_FORMAT, NULL, NULL);
    expect_fail(dir, "trailing.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", -1, 8,
                CDF_ERR_FORMAT, "trailing", NULL);
    expect_fail(dir, "ctrl.st", "{\"a\x01\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8,
                CDF_ERR_FORMAT, NULL, NULL);
    expect_fail(dir, "dtype.st", "{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8,
                CDF_ERR_FORMAT, "'w'", "Q7");
    expect_fail(dir, "bool.st", "{\"w\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]}}", -1, 2,
                CDF_ERR_UNSUPPORTED, "'w'", "BOOL");
    expect_fail(dir, "nodtype.st", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8, CDF_ERR_FORMAT, "'w'",
                "dtype");
    expect_fail(dir, "negshape.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", -1, 8,
                CDF_ERR_FORMAT, "'w'", "shape");
    /* 2.5 truncated would be 2, which the 8 bytes fit: only the integer check refuses it */
    expect_fail(dir, "fracshape.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", -1, 8,
                CDF_ERR_FORMAT, "'w'", "shape");
    expect_fail(dir, "strshape.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", -1, 8,
                CDF_ERR_FORMAT, "'w'", "shape");
    expect_fail(dir, "dims.st",
                "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", -1, 1,
                CDF_ERR_FORMAT, "'w'", "dimensions");
    expect_fail(dir, "overflow.st",
                "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", -1, 8,
                CDF_ERR_FORMAT, "'w'", "overflow");
    expect_fail(dir, "offsets3.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", -1, 8,
                CDF_ERR_FORMAT, "'w'", "data_offsets");
    expect_fail(dir, "backwards.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", -1, 8,
                CDF_ERR_FORMAT, "'w'", "before");
    expect_fail(dir, "outside.st",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                -1, 12, CDF_ERR_FORMAT, "'w'", "past the end");
    expect_fail(dir, "size.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 8,
                CDF_ERR_FORMAT, "'w'", "12");
    /* a span longer than the shape needs (no hole, no overlap: only the size check sees it) */
    expect_fail(dir, "bigspan.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", -1, 8,
                CDF_ERR_FORMAT, "'w'", "needs 4");
    expect_fail(dir, "overlap.st",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                -1, 12, CDF_ERR_FORMAT, "'b'", "overlaps tensor 'a'");
    expect_fail(dir, "dup.st",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                -1, 16, CDF_ERR_FORMAT, "'a'", "twice");
    expect_fail(dir, "hole.st",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                -1, 12, CDF_ERR_FORMAT, "4..8", "'b'");
    expect_fail(dir, "hole0.st", "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", -1, 8,
                CDF_ERR_FORMAT, "0..4", "'b'");
    expect_fail(dir, "tailhole.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 9,
                CDF_ERR_FORMAT, "4..9", "'a'");
    expect_fail(dir, "meta.st", "{\"__metadata__\":{\"format\":3}}", -1, 0, CDF_ERR_FORMAT, "__metadata__", "format");
    expect_fail(dir, "entry.st", "{\"w\":[1,2]}", -1, 0, CDF_ERR_FORMAT, "'w'", NULL);
    /* header length over the limit (sparse file longer than the limit) */
    {
        const char *path = tmp_file(dir, "huge.st");
        write_st(path, "{}", (long long)CDF_ST_MAX_HEADER + 1, NULL, 0);
        assert_int_equal(truncate(path, (off_t)CDF_ST_MAX_HEADER + 64), 0);
        cdf_st_file *f = NULL;
        cdf_error err = {0};
        assert_int_equal(cdf_st_open(path, &f, &err), CDF_ERR_LIMIT);
        assert_non_null(strstr(err.msg, path));
        unlink(path);
    }
    tu_rmtree(dir);
    free(dir);
}

/* Data starting at an odd address: values read back with memcpy. */
static void test_misaligned_and_edge(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    const float fv[3] = {1.5f, -2.25f, 3.0e-5f};
    const double dv[2] = {-1.0 / 3.0, 6.02214076e23};
    const int64_t iv[1] = {-1234567890123LL};
    unsigned char data[12 + 16 + 8 + 2];
    memcpy(data, fv, 12);
    memcpy(data + 12, dv, 16);
    memcpy(data + 28, iv, 8);
    data[36] = 0x80; /* bf16 -0.0 */
    data[37] = 0x00; /* placed [36,38) as "h", little-endian 0x0080 */
    /* Header of odd length (padding spaces) puts the data at an odd offset. */
    char header[512];
    snprintf(header, sizeof header,
             "{\"__metadata__\":{\"k\":\"v\"},\"f\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
             "\"d\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[12,28]},"
             "\"i\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[28,36]},"
             "\"z\":{\"dtype\":\"I32\",\"shape\":[0,5],\"data_offsets\":[36,36]},"
             "\"h\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[36,38]}}");
    if (strlen(header) % 2 == 0) strcat(header, " ");
    const char *path = tmp_file(dir, "odd.safetensors");
    write_st(path, header, -1, data, sizeof data);
    cdf_st_file *f = NULL;
    cdf_error err = {0};
    assert_int_equal(cdf_st_open(path, &f, &err), CDF_OK);
    assert_int_equal(cdf_st_count(f), 5);
    assert_string_equal(cdf_st_metadata(f, "k"), "v");
    const cdf_st_tensor *t = cdf_st_find(f, "f");
    assert_true(((uintptr_t)t->data & 1u) == 1u);
    float fr[3];
    memcpy(fr, t->data, sizeof fr);
    assert_memory_equal(fr, fv, sizeof fr);
    t = cdf_st_find(f, "d");
    assert_int_equal(t->dtype, CDF_F64);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[1], 2);
    double dr[2];
    memcpy(dr, t->data, sizeof dr);
    assert_memory_equal(dr, dv, sizeof dr);
    t = cdf_st_find(f, "i");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->nbytes, 8);
    int64_t ir;
    memcpy(&ir, t->data, 8);
    assert_true(ir == iv[0]);
    t = cdf_st_find(f, "z");
    assert_int_equal(t->nbytes, 0);
    assert_int_equal(t->dtype, CDF_I32);
    t = cdf_st_find(f, "h");
    assert_int_equal(t->dtype, CDF_BF16);
    assert_int_equal(t->data[0], 0x80);
    /* offset order: f, d, i, then the empty z and h both at 36 (z ends first) */
    assert_string_equal(cdf_st_at(f, 0)->name, "f");
    assert_string_equal(cdf_st_at(f, 2)->name, "i");
    assert_string_equal(cdf_st_at(f, 3)->name, "z");
    assert_string_equal(cdf_st_at(f, 4)->name, "h");
    cdf_st_close(f);
    /* An empty header object and no data is a valid (empty) file. */
    path = tmp_file(dir, "empty_ok.safetensors");
    write_st(path, "{}        ", -1, NULL, 0);
    assert_int_equal(cdf_st_open(path, &f, &err), CDF_OK);
    assert_int_equal(cdf_st_count(f), 0);
    assert_null(cdf_st_find(f, "a"));
    cdf_st_close(f);
    tu_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_models),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_misaligned_and_edge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
