/* CLIP tokenizer rules the 300 golden strings do not pin down, each written
 * as "A tokenizes exactly like B" where Python (str.lower, unicodedata 14,
 * the regex module, transformers' BasicTokenizer) defines A -> B, plus a
 * check that B' differs so the rule is observable; and the BPE merge order on
 * a hand-made vocabulary, with ids worked out by hand from the reference loop. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "text/clip_tokenizer.h"

#define MAXLEN 77

static cdf_clip_tokenizer *golden(void) {
    cdf_error err = {0};
    cdf_clip_tokenizer *t = NULL;
    if (cdf_clip_tokenizer_load(tu_data("tokenizer"), &t, &err) != CDF_OK) fail_msg("load: %s", err.msg);
    return t;
}

static void ids_of(const cdf_clip_tokenizer *t, const char *s, int64_t *ids, int *nc) {
    cdf_error err = {0};
    int tr;
    if (cdf_clip_tokenize(t, s, ids, nc, &tr, NULL, &err) != CDF_OK) fail_msg("\"%s\": %s", s, err.msg);
}

static int same(const cdf_clip_tokenizer *t, const char *a, const char *b) {
    int64_t x[MAXLEN], y[MAXLEN];
    int na, nb;
    ids_of(t, a, x, &na);
    ids_of(t, b, y, &nb);
    return na == nb && memcmp(x, y, sizeof x) == 0;
}

#define SAME(a, b) \
    do { if (!same(t, a, b)) fail_msg("\"%s\" should tokenize like \"%s\"", a, b); } while (0)
#define DIFF(a, b) \
    do { if (same(t, a, b)) fail_msg("\"%s\" and \"%s\" should differ", a, b); } while (0)

/* str.lower() per word: full mapping and Python's Final_Sigma rule. */
static void test_lowercase(void **state) {
    (void)state;
    cdf_clip_tokenizer *t = golden();
    SAME("HeLLo", "hello");
    SAME("\xce\x9f\xce\x94\xce\x9f\xce\xa3", "\xce\xbf\xce\xb4\xce\xbf\xcf\x82"); /* ΟΔΟΣ -> οδος (final ς) */
    DIFF("\xce\xbf\xce\xb4\xce\xbf\xcf\x82", "\xce\xbf\xce\xb4\xce\xbf\xcf\x83"); /* ς and σ tokenize differently */
    SAME("\xce\xa3\xce\x91", "\xcf\x83\xce\xb1");                                 /* ΣΑ -> σα */
    SAME("\xce\xa3", "\xcf\x83");                                                 /* lone Σ -> σ */
    SAME("\xce\x91\xce\xa3.", "\xce\xb1\xcf\x82.");                               /* ΑΣ. -> ας. ('.' ignorable) */
    SAME("\xce\x91\xce\xa3\xce\x91", "\xce\xb1\xcf\x83\xce\xb1");                 /* ΑΣΑ -> ασα */
    SAME("\xce\x91\xce\xa3 \xce\x91", "\xce\xb1\xcf\x82 \xce\xb1");               /* per word: final before a space */
    SAME("\xc4\xb0", "i\xcc\x87");                                                /* İ -> i + U+0307 */
    SAME("'S", "'s");
    cdf_clip_tokenizer_free(t);
}

/* BasicTokenizer._clean_text, CJK spacing, NFC, whitespace split. */
static void test_cleaning(void **state) {
    (void)state;
    cdf_clip_tokenizer *t = golden();
    SAME("a\xe2\x80\x8b" "b", "ab");       /* U+200B (Cf) deleted, no split */
    SAME("a\x1c" "b", "ab");               /* U+001C (Cc) deleted, although str.split() splits at it */
    DIFF("a\x1c" "b", "a b");
    SAME("a\xe3\x80\x80" "b", "a b");      /* U+3000 (Zs) -> space */
    SAME("a\xc2\xa0" "b", "a b");          /* U+00A0 (Zs) -> space */
    SAME("a\xe2\x80\xa8" "b", "a b");      /* U+2028 (Zl) kept, then split by str.split() */
    SAME("a\tb\r\nc", "a b c");
    SAME("\xe6\x9d\xb1\xe4\xba\xac", "\xe6\x9d\xb1 \xe4\xba\xac"); /* 東京 -> 東 京 */
    DIFF("\xe6\x9d\xb1\xe4\xba\xac", "\xe6\x9d\xb1\xe4\xba\xac" "x");
    SAME("e\xcc\x81", "\xc3\xa9");         /* NFC: e + U+0301 -> é */
    SAME("a\xef\xbf\xbd" "b", "ab");       /* U+FFFD deleted */
    cdf_clip_tokenizer_free(t);
}

/* Invalid UTF-8 decodes to U+FFFD (Python's "replace"), which is deleted. */
static void test_invalid_utf8(void **state) {
    (void)state;
    cdf_clip_tokenizer *t = golden();
    SAME("a\xff" "b", "ab");
    SAME("a\x80\x80" "b", "ab");
    SAME("\xed\xa0\x80x", "x");            /* UTF-8 of a surrogate */
    SAME("\xc0\xafx", "x");                /* overlong '/' */
    SAME("\xf4\x90\x80\x80x", "x");        /* past U+10FFFF */
    SAME("x\xf0\x9f\x98", "x");            /* truncated at the end */
    SAME("<|endo\xff" "ftext|>", "<|endoftext|>"); /* deleted before the regex sees the literal */
    int64_t ids[MAXLEN];
    int nc;
    ids_of(t, "\xc3", ids, &nc);
    assert_int_equal(nc, 0);
    assert_int_equal(ids[1], 49407);
    cdf_clip_tokenizer_free(t);
}

/* Literal special tokens: split out of the raw text (case-sensitive), or
 * matched by the regex after lower-casing and returned by the BPE cache. */
static void test_special_literals(void **state) {
    (void)state;
    cdf_clip_tokenizer *t = golden();
    int64_t ids[MAXLEN], x[MAXLEN], y[MAXLEN];
    int nc, nx, ny;
    ids_of(t, "<|EndOfText|>", ids, &nc);
    assert_int_equal(nc, 1);
    assert_int_equal(ids[1], 49407);
    ids_of(t, "<|STARTOFTEXT|>", ids, &nc);
    assert_int_equal(nc, 1);
    assert_int_equal(ids[1], 49406);
    ids_of(t, "x<|endoftext|>y", ids, &nc);
    ids_of(t, "x", x, &nx);
    ids_of(t, "y", y, &ny);
    assert_int_equal(nc, 3);
    assert_int_equal(nx, 1);
    assert_int_equal(ny, 1);
    assert_int_equal(ids[1], x[1]);
    assert_int_equal(ids[2], 49407);
    assert_int_equal(ids[3], y[1]);
    cdf_clip_tokenizer_free(t);
}

/* The regex under IGNORECASE: U+0345 matches no alternative and splits words;
 * 's' in the literals also matches U+017F (so "'ſ" is one pre-token). */
static void test_regex_quirks(void **state) {
    (void)state;
    cdf_clip_tokenizer *t = golden();
    SAME("a\xcd\x85" "b", "a b");
    DIFF("a\xcd\x85" "b", "ab");
    SAME("!\xcd\x85!", "! !");
    int64_t a[MAXLEN], b[MAXLEN], q[MAXLEN];
    int na, nb, nq;
    ids_of(t, "'\xc5\xbf", a, &na); /* one pre-token "'ſ": BPE of its bytes */
    ids_of(t, "\xc5\xbf", b, &nb);  /* "ſ" alone */
    ids_of(t, "'", q, &nq);         /* "'</w>" */
    assert_int_equal(nq, 1);
    assert_true(a[1] != q[1]);      /* the quote is not a word of its own ... */
    assert_int_equal(na, nb + 1);   /* ... it is a piece of "'ſ" that does not merge with ſ's bytes */
    assert_memory_equal(a + 2, b + 1, (size_t)nb * sizeof(int64_t));
    cdf_clip_tokenizer_free(t);
}

/* ---------------------------------------------------------- hand-made BPE */

static void write_file(const char *dir, const char *name, const char *content) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* ids: a0 b1 c2 a</w>3 b</w>4 c</w>5 ab6 aba7 <|startoftext|>8 <|endoftext|>9 aa10 bc</w>11 */
static const char *const TINY_VOCAB =
    "{\"a\":0,\"b\":1,\"c\":2,\"a</w>\":3,\"b</w>\":4,\"c</w>\":5,\"ab\":6,\"aba\":7,"
    "\"<|startoftext|>\":8,\"<|endoftext|>\":9,\"aa\":10,\"bc</w>\":11}";

static cdf_clip_tokenizer *tiny(const char *dir, const char *merges) {
    write_file(dir, "vocab.json", TINY_VOCAB);
    write_file(dir, "merges.txt", merges);
    cdf_error err = {0};
    cdf_clip_tokenizer *t = NULL;
    if (cdf_clip_tokenizer_load(dir, &t, &err) != CDF_OK) fail_msg("tiny load: %s", err.msg);
    return t;
}

static void expect_content(const cdf_clip_tokenizer *t, const char *text, const int64_t *want, int n) {
    int64_t ids[MAXLEN];
    int nc;
    ids_of(t, text, ids, &nc);
    if (nc != n) fail_msg("\"%s\": %d tokens, want %d", text, nc, n);
    for (int i = 0; i < n; i++)
        if (ids[1 + i] != want[i])
            fail_msg("\"%s\": token %d is %lld, want %lld", text, i, (long long)ids[1 + i], (long long)want[i]);
}

static void test_bpe_merge_order(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    /* rank 0 "ab a", rank 1 "a b".  "ababc" = a b a b c</w>: the reference
     * merges EVERY (a, b) before looking at (ab, a), so the result is
     * ab ab c</w>; merging one pair at a time would give aba b c</w>. */
    cdf_clip_tokenizer *t = tiny(dir, "#version: 0.2\nab a\na b\n");
    expect_content(t, "ababc", (const int64_t[]){6, 6, 5}, 3);
    /* "abac" = a b a c</w>: (a, b) -> ab a c</w>, then (ab, a) -> aba c</w> */
    expect_content(t, "abac", (const int64_t[]){7, 5}, 2);
    /* unknown symbols become unk (= <|endoftext|>, 9): "é" is two byte characters */
    expect_content(t, "\xc3\xa9", (const int64_t[]){9, 9}, 2);
    expect_content(t, "c", (const int64_t[]){5}, 1);
    cdf_clip_tokenizer_free(t);
    /* overlapping pairs merge left to right: "aaaa" = a a a a</w> -> aa a a</w>
     * (the (a, a) at 1 overlaps the merge at 0; (a, a</w>) is another pair) */
    t = tiny(dir, "#version: 0.2\na a\n");
    expect_content(t, "aaaa", (const int64_t[]){10, 0, 3}, 3);
    expect_content(t, "aaaaa", (const int64_t[]){10, 10, 3}, 3);
    cdf_clip_tokenizer_free(t);
    /* a repeated merge line keeps its last rank (Python's dict comprehension):
     * lines "a b", "b c</w>", "a b" rank (a, b) 2 and (b, c</w>) 1, so "abc" =
     * a b c</w> -> a bc</w>; keeping the first rank would give ab c</w>. */
    t = tiny(dir, "#version: 0.2\na b\nb c</w>\na b\n");
    expect_content(t, "abc", (const int64_t[]){0, 11}, 2);
    cdf_clip_tokenizer_free(t);
    t = tiny(dir, "#version: 0.2\na b\nb c</w>\n");
    expect_content(t, "abc", (const int64_t[]){6, 5}, 2);
    cdf_clip_tokenizer_free(t);
    tu_rmtree(dir);
    free(dir);
}

/* tokenizer/tokenizer_norm.jsonl: one normalisation rule per string (each
 * control/whitespace/format character between, before and after letters, and
 * alone; CJK, NFC, case and whitespace rules one at a time), content ids from
 * the reference tokenizer (gen_norm_cases.py). */
#define N_NORM_CASES 496
static void test_isolated_rules(void **state) {
    (void)state;
    cdf_clip_tokenizer *t = golden();
    char *all = tu_read_text(tu_data("tokenizer/tokenizer_norm.jsonl"));
    assert_non_null(all);
    int count = 0, bad = 0;
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *c = cJSON_Parse(line);
        if (!c) fail_msg("tokenizer_norm.jsonl line %d: bad JSON", count + 1);
        const char *rule = cJSON_GetStringValue(cJSON_GetObjectItem(c, "rule"));
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(c, "text"));
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        assert_true(rule && text && cJSON_IsArray(want));
        int64_t ids[MAXLEN];
        int nc, nw = cJSON_GetArraySize(want), ok;
        ids_of(t, text, ids, &nc);
        ok = nc == nw && ids[0] == 49406 && ids[nc + 1] == 49407;
        for (int k = 0; ok && k < nw; k++) ok = ids[1 + k] == (int64_t)cJSON_GetArrayItem(want, k)->valuedouble;
        if (!ok && bad++ < 10) {
            print_message("rule \"%s\": got %d ids:", rule, nc);
            for (int k = 0; k < nc; k++) print_message(" %lld", (long long)ids[1 + k]);
            print_message(" (reference %d)\n", nw);
        }
        count++;
        cJSON_Delete(c);
    }
    free(all);
    cdf_clip_tokenizer_free(t);
    if (bad) fail_msg("%d of %d isolated rules differ from the reference", bad, count);
    assert_int_equal(count, N_NORM_CASES);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lowercase),      cmocka_unit_test(test_cleaning),
        cmocka_unit_test(test_invalid_utf8),   cmocka_unit_test(test_special_literals),
        cmocka_unit_test(test_regex_quirks),   cmocka_unit_test(test_bpe_merge_order),
        cmocka_unit_test(test_isolated_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
