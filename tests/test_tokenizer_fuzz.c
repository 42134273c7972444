/* CLIP tokenizer on arbitrary bytes: random byte strings, random (also
 * ill-formed) UTF-8, and mixtures of tricky pieces never fail or crash, always
 * give a well-formed row (bos, content, eos, pad) consistent with the content
 * count, and decode to valid UTF-8; threads sharing one tokenizer get the
 * same rows as a single thread (the object is read-only). */
#include "testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "text/clip_tokenizer.h"

#define MAXLEN 77
#define NSTR 3000
#define NTHREADS 4

static uint64_t rnd(uint64_t *s) { /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static size_t put_cp(uint32_t c, char *o) { /* UTF-8 encoder that also writes surrogates (ill-formed) */
    if (c < 0x80) return o[0] = (char)c, 1;
    if (c < 0x800) return o[0] = (char)(0xC0 | (c >> 6)), o[1] = (char)(0x80 | (c & 0x3F)), 2;
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12)), o[1] = (char)(0x80 | ((c >> 6) & 0x3F)), o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18)), o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F)), o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

static const char *const PIECES[] = {
    "<|endoftext|>", "<|startoftext|>", "<|EndOfText|>", "'s", "'LL", "\xc5\xbf", "\xcd\x85", "\xce\xa3",
    "\xc4\xb0", "e\xcc\x81", "\xe6\x9d\xb1\xe4\xba\xac", "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", "\xe2\x80\x8d",
    "\xef\xbf\xbd", "</w>", "  ", "\t", "\r\n", "a", "photo", "123", "!!", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80",
};

/* One random NUL-free string of at most cap-1 bytes into buf. */
static void gen(uint64_t *s, char *buf, size_t cap) {
    size_t n = 0;
    int mode = (int)(rnd(s) % 4);
    size_t len = mode == 3 ? 500 + rnd(s) % 3000 : rnd(s) % 300;
    if (len > cap - 8) len = cap - 8;
    while (n < len) {
        uint64_t r = rnd(s);
        if (mode == 0) {
            buf[n++] = (char)(1 + r % 255);
        } else if (mode == 1) {
            uint32_t c = (uint32_t)(r % 4 == 0 ? 1 + (r >> 8) % 0x7F : 1 + (r >> 8) % 0x10FFFF);
            if (n + 4 >= len) break;
            n += put_cp(c, buf + n);
        } else {
            const char *p = (r % 3 == 0 && mode == 2) ? NULL : PIECES[(r >> 8) % (sizeof PIECES / sizeof PIECES[0])];
            if (!p) {
                buf[n++] = (char)(1 + (r >> 16) % 255);
                continue;
            }
            size_t k = strlen(p);
            if (n + k + 1 >= len) break;
            memcpy(buf + n, p, k);
            n += k;
            if (mode == 3) buf[n++] = ' ';
        }
    }
    buf[n] = 0;
}

static int valid_utf8(const unsigned char *p) {
    while (*p) {
        unsigned b = *p++;
        int need = b < 0x80                 ? 0
                   : b >= 0xC2 && b <= 0xDF ? 1
                   : b >= 0xE0 && b <= 0xEF ? 2
                   : b >= 0xF0 && b <= 0xF4 ? 3
                                            : -1;
        if (need < 0) return 0;
        unsigned lo = b == 0xE0 ? 0xA0 : b == 0xF0 ? 0x90 : 0x80, hi = b == 0xED ? 0x9F : b == 0xF4 ? 0x8F : 0xBF;
        for (int k = 0; k < need; k++, p++) {
            if (*p < lo || *p > hi) return 0;
            lo = 0x80, hi = 0xBF;
        }
    }
    return 1;
}

static cdf_clip_tokenizer *golden(void) {
    cdf_error err = {0};
    cdf_clip_tokenizer *t = NULL;
    if (cdf_clip_tokenizer_load(tu_data("tokenizer"), &t, &err) != CDF_OK) fail_msg("load: %s", err.msg);
    return t;
}

static char (*strings)[4096];   /* [NSTR] the generated inputs */
static int64_t (*rows)[MAXLEN]; /* [NSTR] their rows, single-threaded */

static void test_random_bytes(void **state) {
    (void)state;
    cdf_clip_tokenizer *t = golden();
    strings = malloc(sizeof *strings * NSTR);
    rows = malloc(sizeof *rows * NSTR);
    assert_non_null(strings);
    assert_non_null(rows);
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    int n_trunc = 0, n_empty = 0;
    for (int i = 0; i < NSTR; i++) {
        gen(&seed, strings[i], sizeof strings[i]);
        const char *s = strings[i];
        int64_t *ids = rows[i];
        int nc = -1, tr = -1;
        char *dropped = NULL;
        cdf_error err = {0};
        if (cdf_clip_tokenize(t, s, ids, &nc, &tr, &dropped, &err) != CDF_OK) fail_msg("string %d: %s", i, err.msg);
        assert_true(nc >= 0);
        assert_int_equal(tr, nc > MAXLEN - 2);
        int keep = nc < MAXLEN - 2 ? nc : MAXLEN - 2;
        assert_int_equal(ids[0], 49406);
        for (int k = 1; k <= keep; k++) assert_true(ids[k] >= 0 && ids[k] < 49408);
        for (int k = keep + 1; k < MAXLEN; k++) assert_int_equal(ids[k], 49407); /* eos, then pad (= eos) */
        assert_int_equal(dropped != NULL, tr);
        if (dropped) {
            assert_true(valid_utf8((const unsigned char *)dropped));
            cdf_free(dropped);
            n_trunc++;
        }
        n_empty += nc == 0;
        int64_t *all = NULL;
        size_t n = 0;
        if (cdf_clip_tokenizer_encode(t, s, &all, &n, &err) != CDF_OK) fail_msg("string %d: %s", i, err.msg);
        assert_int_equal(n, (size_t)nc);
        if (keep) assert_memory_equal(all, ids + 1, (size_t)keep * sizeof *all);
        char *text = NULL;
        if (cdf_clip_tokenizer_decode(t, all, n, &text, &err) != CDF_OK) fail_msg("string %d: %s", i, err.msg);
        assert_true(valid_utf8((const unsigned char *)text));
        cdf_free(text);
        cdf_free(all);
    }
    assert_true(n_trunc > 100); /* the generator reaches the interesting cases */
    assert_true(n_empty > 10);
    /* any vocabulary ids decode (byte tokens may split characters: U+FFFD) */
    for (int i = 0; i < 200; i++) {
        int64_t ids[40];
        for (int k = 0; k < 40; k++) ids[k] = (int64_t)(rnd(&seed) % 49408);
        char *text = NULL;
        cdf_error err = {0};
        if (cdf_clip_tokenizer_decode(t, ids, 40, &text, &err) != CDF_OK) fail_msg("decode: %s", err.msg);
        assert_true(valid_utf8((const unsigned char *)text));
        cdf_free(text);
    }
    cdf_clip_tokenizer_free(t);
}

typedef struct job {
    const cdf_clip_tokenizer *t;
    int start, mismatches, failures;
} job;

static void *worker(void *arg) {
    job *j = arg;
    for (int k = 0; k < NSTR; k++) {
        int i = (j->start + k) % NSTR;
        int64_t ids[MAXLEN];
        cdf_error err = {0};
        if (cdf_clip_tokenize(j->t, strings[i], ids, NULL, NULL, NULL, &err) != CDF_OK) j->failures++;
        else if (memcmp(ids, rows[i], sizeof ids) != 0) j->mismatches++;
    }
    return NULL;
}

static void test_threads_share_tokenizer(void **state) {
    (void)state;
    assert_non_null(strings); /* filled by test_random_bytes */
    cdf_clip_tokenizer *t = golden();
    pthread_t th[NTHREADS];
    job jobs[NTHREADS];
    for (int k = 0; k < NTHREADS; k++) {
        jobs[k] = (job){t, k * (NSTR / NTHREADS), 0, 0};
        assert_int_equal(pthread_create(&th[k], NULL, worker, &jobs[k]), 0);
    }
    for (int k = 0; k < NTHREADS; k++) {
        pthread_join(th[k], NULL);
        assert_int_equal(jobs[k].failures, 0);
        assert_int_equal(jobs[k].mismatches, 0);
    }
    cdf_clip_tokenizer_free(t);
    free(strings);
    free(rows);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_threads_share_tokenizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
