/* SHA-256 against FIPS 180-4's examples and Python's hashlib on the
 * padding edges (55, 56, 63, 64, 119, 120 bytes); input fed whole and in
 * odd pieces; a file; a missing file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/sha256.h"
#include "testutil.h"

static void digest(const void *m, size_t n, size_t piece, char hex[65]) {
    cdf_sha256 c;
    cdf_sha256_init(&c);
    const char *p = m;
    for (size_t i = 0; i < n; i += piece) cdf_sha256_update(&c, p + i, n - i < piece ? n - i : piece);
    cdf_sha256_hex(&c, hex);
}

static void test_vectors(void **state) {
    (void)state;
    static const struct { size_t n; char fill; const char *text, *want; } v[] = {
        {0, 0, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {3, 0, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {56, 0, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {1000000, 'a', NULL, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
        {55, 'x', NULL, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"},
        {56, 'x', NULL, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"},
        {63, 'x', NULL, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"},
        {64, 'x', NULL, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"},
        {119, 'x', NULL, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c"},
        {120, 'x', NULL, "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *m = malloc(v[i].n + 1);
        if (v[i].text) memcpy(m, v[i].text, v[i].n);
        else memset(m, v[i].fill, v[i].n);
        static const size_t pieces[] = {1000000, 1, 7, 64, 65};
        for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
            char hex[65];
            digest(m, v[i].n, pieces[k], hex);
            assert_string_equal(hex, v[i].want);
        }
        free(m);
    }
}

static void test_file(void **state) {
    (void)state;
    char *dir = tu_tmpdir(), path[4096], hex[65];
    snprintf(path, sizeof path, "%s/f.bin", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 100000; i++) fputc('a', f);
    for (int i = 0; i < 900000; i++) fputc('a', f);
    fclose(f);
    cdf_error err = {0};
    assert_int_equal(cdf_sha256_file(path, hex, &err), CDF_OK);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    snprintf(path, sizeof path, "%s/missing.png", dir);
    assert_int_equal(cdf_sha256_file(path, hex, &err), CDF_ERR_IO);
    assert_non_null(strstr(err.msg, "missing.png"));
    tu_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_vectors), cmocka_unit_test(test_file)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
