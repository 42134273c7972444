/* .npy writer/reader: headers byte-identical to numpy 1.24 np.save (strings
 * below were produced by numpy), round trips, strict header errors. */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/npy.h"

typedef struct npy_case {
    cdf_dtype dtype;
    int ndim;
    int64_t shape[8];
    size_t header_len;
    const char *header;
} npy_case;

/* np.save(np.zeros(shape, dtype)) header bytes (numpy 1.24.2). */
static const npy_case k_cases[] = {
    {CDF_F32, 2, {2, 3}, 128, "\223NUMPY\001\000v\000{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }                                                          \012"},
    {CDF_F64, 1, {5}, 128, "\223NUMPY\001\000v\000{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }                                                            \012"},
    {CDF_F16, 0, {0}, 128, "\223NUMPY\001\000v\000{'descr': '<f2', 'fortran_order': False, 'shape': (), }                                                              \012"},
    {CDF_I64, 4, {1, 2, 3, 4}, 128, "\223NUMPY\001\000v\000{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2, 3, 4), }                                                    \012"},
    {CDF_U8, 2, {0, 7}, 128, "\223NUMPY\001\000v\000{'descr': '|u1', 'fortran_order': False, 'shape': (0, 7), }                                                          \012"},
    {CDF_U8, 8, {1, 1, 1, 1, 1, 1, 1, 1}, 128, "\223NUMPY\001\000v\000{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1), }                                        \012"},
    {CDF_F64, 2, {12345, 0}, 128, "\223NUMPY\001\000v\000{'descr': '<f8', 'fortran_order': False, 'shape': (12345, 0), }                                                      \012"},
    {CDF_F32, 6, {0, 100, 100000, 100000, 1000, 1000}, 128, "\223NUMPY\001\000v\000{'descr': '<f4', 'fortran_order': False, 'shape': (0, 100, 100000, 100000, 1000, 1000), }                            \012"},
    {CDF_I32, 1, {3}, 128, "\223NUMPY\001\000v\000{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }                                                            \012"},
};

/* np.save(np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1) */
static const char k_f32_file[] = "\223NUMPY\001\000v\000{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }                                                          \012\000\000\200\277\000\000\000\277\000\000\000\000\000\000\000?\000\000\200?\000\000\300?";
#define K_F32_FILE_LEN 152
/* np.save(np.array([[1, -2], [3, 40000000000]], dtype=np.int64)) */
static const char k_i64_file[] = "\223NUMPY\001\000v\000{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }                                                          \012\001\000\000\000\000\000\000\000\376\377\377\377\377\377\377\377\003\000\000\000\000\000\000\000\000\220/P\011\000\000\000";
#define K_I64_FILE_LEN 160
/* np.save(np.array([0.1, -2.5, 65504], dtype=np.float16)) */
static const char k_f16_file[] = "\223NUMPY\001\000v\000{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }                                                            \012f.\000\301\377{";
#define K_F16_FILE_LEN 134

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Number of entries in dir besides . and .. */
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

static void test_headers_match_numpy(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/a.npy", dir);
    for (size_t c = 0; c < sizeof k_cases / sizeof k_cases[0]; c++) {
        const npy_case *k = &k_cases[c];
        cdf_tensor t = {k->dtype, k->ndim, {0}, NULL};
        memcpy(t.shape, k->shape, sizeof t.shape);
        int64_t numel = cdf_tensor_numel(&t);
        size_t nbytes = (size_t)numel * cdf_dtype_size(k->dtype);
        t.data = calloc(1, nbytes ? nbytes : 1);
        cdf_error err = {0};
        assert_int_equal(cdf_npy_write(path, &t, &err), CDF_OK);
        size_t len = 0;
        char *got = read_all(path, &len);
        assert_int_equal(len, k->header_len + nbytes);
        assert_int_equal(len % 64 == 0 || nbytes, 1);
        assert_memory_equal(got, k->header, k->header_len);
        free(got);
        cdf_tensor r;
        assert_int_equal(cdf_npy_read(path, &r, &err), CDF_OK);
        assert_int_equal(r.dtype, k->dtype);
        assert_int_equal(r.ndim, k->ndim);
        assert_memory_equal(r.shape, k->shape, sizeof(int64_t) * (size_t)k->ndim);
        if (nbytes) assert_memory_equal(r.data, t.data, nbytes);
        cdf_free(r.data);
        free(t.data);
    }
    assert_int_equal(count_entries(dir), 1); /* no temporary files left */
    tu_rmtree(dir);
    free(dir);
}

static void test_full_files(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/f.npy", dir);
    /* writing reproduces numpy's file, data included */
    const float fv[6] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f};
    cdf_tensor t = {CDF_F32, 2, {2, 3}, (void *)fv};
    cdf_error err = {0};
    assert_int_equal(cdf_npy_write(path, &t, &err), CDF_OK);
    size_t len;
    char *got = read_all(path, &len);
    assert_int_equal(len, K_F32_FILE_LEN);
    assert_memory_equal(got, k_f32_file, K_F32_FILE_LEN);
    free(got);
    const int64_t iv[4] = {1, -2, 3, 40000000000LL};
    cdf_tensor ti = {CDF_I64, 2, {2, 2}, (void *)iv};
    assert_int_equal(cdf_npy_write(path, &ti, &err), CDF_OK);
    got = read_all(path, &len);
    assert_int_equal(len, K_I64_FILE_LEN);
    assert_memory_equal(got, k_i64_file, K_I64_FILE_LEN);
    free(got);
    /* reading numpy's files */
    cdf_tensor r;
    write_bytes(path, k_f32_file, K_F32_FILE_LEN);
    assert_int_equal(cdf_npy_read(path, &r, &err), CDF_OK);
    assert_int_equal(r.dtype, CDF_F32);
    assert_int_equal(r.ndim, 2);
    assert_int_equal(r.shape[0], 2);
    assert_int_equal(r.shape[1], 3);
    assert_memory_equal(r.data, fv, sizeof fv);
    cdf_free(r.data);
    write_bytes(path, k_f16_file, K_F16_FILE_LEN);
    assert_int_equal(cdf_npy_read(path, &r, &err), CDF_OK);
    assert_int_equal(r.dtype, CDF_F16);
    assert_int_equal(r.ndim, 1);
    assert_int_equal(r.shape[0], 3);
    const uint16_t hv[3] = {0x2e66, 0xc100, 0x7bff}; /* float16 0.1, -2.5, 65504 */
    assert_memory_equal(r.data, hv, sizeof hv);
    cdf_free(r.data);
    /* BF16 has no numpy dtype */
    uint16_t b = 0;
    cdf_tensor tb = {CDF_BF16, 1, {1}, &b};
    assert_int_equal(cdf_npy_write(path, &tb, &err), CDF_ERR_UNSUPPORTED);
    tu_rmtree(dir);
    free(dir);
}

/* Writes prefix+header (v1.0, header padded by the caller or not) and n data bytes. */
static void write_npy_raw(const char *path, const char *header, size_t data_bytes) {
    size_t hl = strlen(header);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xFF), (unsigned char)(hl >> 8)};
    FILE *f = fopen(path, "wb");
    fwrite(pre, 1, 10, f);
    fwrite(header, 1, hl, f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
}

static void expect_read_fail(const char *path, const char *header, size_t data_bytes, cdf_status want,
                             const char *word) {
    write_npy_raw(path, header, data_bytes);
    cdf_tensor r = {CDF_F32, 3, {1, 2, 3}, (void *)1};
    cdf_error err = {0};
    cdf_status s = cdf_npy_read(path, &r, &err);
    if (s != want) fprintf(stderr, "header %s: got %s %s\n", header, cdf_status_name(s), err.msg);
    assert_int_equal(s, want);
    assert_null(r.data);
    assert_non_null(strstr(err.msg, path));
    if (word && !strstr(err.msg, word)) fail_msg("message lacks '%s': %s", word, err.msg);
}

static void test_read_errors(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/bad.npy", dir);
    /* accepted variations: key order, double quotes, no trailing comma */
    write_npy_raw(path, "{\"shape\": (2,), 'fortran_order': False, 'descr': '<i4'}\n", 8);
    cdf_tensor r;
    cdf_error err = {0};
    assert_int_equal(cdf_npy_read(path, &r, &err), CDF_OK);
    assert_int_equal(r.dtype, CDF_I32);
    assert_int_equal(r.shape[0], 2);
    cdf_free(r.data);
    expect_read_fail(path, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", 24, CDF_ERR_UNSUPPORTED,
                     "fortran_order");
    expect_read_fail(path, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }\n", 24, CDF_ERR_UNSUPPORTED,
                     "big-endian");
    expect_read_fail(path, "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }\n", 48, CDF_ERR_UNSUPPORTED,
                     "<c8");
    expect_read_fail(path, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }\n", 8,
                     CDF_ERR_UNSUPPORTED, "structured");
    expect_read_fail(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 20, CDF_ERR_FORMAT,
                     "need 24");
    expect_read_fail(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 28, CDF_ERR_FORMAT,
                     "need 24");
    expect_read_fail(path, "{'descr': '<f4', 'fortran_order': False}\n", 4, CDF_ERR_FORMAT, "shape");
    expect_read_fail(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}\n", 8,
                     CDF_ERR_FORMAT, "extra");
    expect_read_fail(path, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", 8,
                     CDF_ERR_FORMAT, "descr");
    expect_read_fail(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (2)}\n", 8, CDF_ERR_FORMAT, "tuple");
    expect_read_fail(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}\n", 8, CDF_ERR_FORMAT, "shape");
    expect_read_fail(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x\n", 8, CDF_ERR_FORMAT,
                     "trailing");
    expect_read_fail(path, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}\n", 8, CDF_ERR_FORMAT,
                     "fortran_order");
    expect_read_fail(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}\n", 4,
                     CDF_ERR_UNSUPPORTED, "dimensions");
    expect_read_fail(path,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (999999999999999999, 999999999999999999)}\n",
                     0, CDF_ERR_LIMIT, "large");
    /* bad magic, unsupported version, truncated, missing */
    write_bytes(path, "NOTNUMPY\x01\x00", 10);
    assert_int_equal(cdf_npy_read(path, &r, &err), CDF_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "magic"));
    write_bytes(path, "\x93NUMPY\x04\x00\x00\x00", 10);
    assert_int_equal(cdf_npy_read(path, &r, &err), CDF_ERR_UNSUPPORTED);
    write_bytes(path, k_f32_file, 40);
    assert_int_equal(cdf_npy_read(path, &r, &err), CDF_ERR_FORMAT);
    assert_int_equal(cdf_npy_read("/nonexistent/x.npy", &r, &err), CDF_ERR_MISSING);
    /* version 2.0 (4-byte length) is read */
    {
        const char *h = "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }\n";
        size_t hl = strlen(h);
        unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, (unsigned char)hl, 0, 0, 0};
        FILE *f = fopen(path, "wb");
        fwrite(pre, 1, 12, f);
        fwrite(h, 1, hl, f);
        fwrite("\x07\x08\x09", 1, 3, f);
        fclose(f);
        assert_int_equal(cdf_npy_read(path, &r, &err), CDF_OK);
        assert_int_equal(r.dtype, CDF_U8);
        assert_memory_equal(r.data, "\x07\x08\x09", 3);
        cdf_free(r.data);
    }
    tu_rmtree(dir);
    free(dir);
}

static void test_unwritable(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    char path[4096];
    float v = 1.0f;
    cdf_tensor t = {CDF_F32, 1, {1}, &v};
    cdf_error err = {0};
    snprintf(path, sizeof path, "%s/no/such/dir/x.npy", dir);
    assert_int_equal(cdf_npy_write(path, &t, &err), CDF_ERR_IO);
    assert_non_null(strstr(err.msg, path));
    /* parent is a regular file */
    snprintf(path, sizeof path, "%s/file", dir);
    write_bytes(path, "x", 1);
    snprintf(path, sizeof path, "%s/file/x.npy", dir);
    assert_int_equal(cdf_npy_write(path, &t, &err), CDF_ERR_IO);
    assert_non_null(strstr(err.msg, path));
    /* destination is a folder: the rename fails and the temporary file goes */
    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0777), 0);
    char keep[4200];
    snprintf(keep, sizeof keep, "%s/keep", path);
    write_bytes(keep, "k", 1);
    assert_int_equal(cdf_npy_write(path, &t, &err), CDF_ERR_IO);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(count_entries(dir), 2); /* "file" and "sub" only */
    /* bad tensors */
    cdf_tensor bad = {CDF_F32, 1, {-1}, &v};
    snprintf(path, sizeof path, "%s/ok.npy", dir);
    assert_int_equal(cdf_npy_write(path, &bad, &err), CDF_ERR_ARG);
    bad.shape[0] = 2;
    bad.data = NULL;
    assert_int_equal(cdf_npy_write(path, &bad, &err), CDF_ERR_ARG);
    assert_int_equal(count_entries(dir), 2);
    tu_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_match_numpy),
        cmocka_unit_test(test_full_files),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_unwritable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
