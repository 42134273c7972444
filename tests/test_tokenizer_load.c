/* CLIP tokenizer folders: missing and malformed files, config handling
 * (defaults, overrides, model_max_length, pad token), argument checks, and
 * allocation-failure injection (every allocation of load + tokenize + decode). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/clip_tokenizer.h"

static void write_file(const char *dir, const char *name, const char *content) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void remove_file(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    remove(path);
}

/* ids: a0 b1 c2 a</w>3 b</w>4 c</w>5 ab6 aba7 <|startoftext|>8 <|endoftext|>9 abc</w>10 */
static const char *const VOCAB =
    "{\"a\":0,\"b\":1,\"c\":2,\"a</w>\":3,\"b</w>\":4,\"c</w>\":5,\"ab\":6,\"aba\":7,"
    "\"<|startoftext|>\":8,\"<|endoftext|>\":9,\"abc</w>\":10}";
static const char *const MERGES = "#version: 0.2\na b\nab c</w>\n";

static void write_tiny(const char *dir) {
    write_file(dir, "vocab.json", VOCAB);
    write_file(dir, "merges.txt", MERGES);
}

/* Loading dir fails with status s and a message containing each of the words. */
static void expect_load_error(const char *dir, cdf_status s, const char *w1, const char *w2) {
    cdf_error err = {0};
    cdf_clip_tokenizer *t = (cdf_clip_tokenizer *)&err; /* must be reset to NULL */
    cdf_status got = cdf_clip_tokenizer_load(dir, &t, &err);
    if (got != s) fail_msg("status %s, want %s: %s", cdf_status_name(got), cdf_status_name(s), err.msg);
    assert_null(t);
    if (w1 && !strstr(err.msg, w1)) fail_msg("message \"%s\" does not name \"%s\"", err.msg, w1);
    if (w2 && !strstr(err.msg, w2)) fail_msg("message \"%s\" does not name \"%s\"", err.msg, w2);
}

static cdf_clip_tokenizer *load_ok(const char *dir) {
    cdf_error err = {0};
    cdf_clip_tokenizer *t = NULL;
    if (cdf_clip_tokenizer_load(dir, &t, &err) != CDF_OK) fail_msg("load: %s", err.msg);
    return t;
}

static void test_missing_files(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    expect_load_error(dir, CDF_ERR_MISSING, "vocab.json", NULL);
    write_file(dir, "vocab.json", VOCAB);
    expect_load_error(dir, CDF_ERR_MISSING, "merges.txt", NULL);
    expect_load_error("/nonexistent/tokenizer", CDF_ERR_MISSING, "vocab.json", NULL);
    tu_rmtree(dir);
    free(dir);
}

static void test_malformed_files(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    write_tiny(dir);
    write_file(dir, "vocab.json", "{\"a\": 0,");
    expect_load_error(dir, CDF_ERR_FORMAT, "vocab.json", NULL);
    write_file(dir, "vocab.json", "[1, 2]");
    expect_load_error(dir, CDF_ERR_FORMAT, "vocab.json", NULL);
    write_file(dir, "vocab.json", "{\"a\": 0, \"zq\": \"x\"}");
    expect_load_error(dir, CDF_ERR_FORMAT, "vocab.json", "\"zq\"");
    write_file(dir, "vocab.json", "{\"a\": 0, \"zq\": -3}");
    expect_load_error(dir, CDF_ERR_FORMAT, "vocab.json", "\"zq\"");
    write_file(dir, "vocab.json", "{\"a\": 0, \"zq\": 1.5}");
    expect_load_error(dir, CDF_ERR_FORMAT, "vocab.json", "\"zq\"");
    write_file(dir, "vocab.json", VOCAB);
    write_file(dir, "merges.txt", "#version: 0.2\na b\nab c</w>\nx y z\n");
    expect_load_error(dir, CDF_ERR_FORMAT, "merges.txt", "line 4");
    write_file(dir, "merges.txt", "#version: 0.2\na b\n\nab c</w>\n");
    expect_load_error(dir, CDF_ERR_FORMAT, "merges.txt", "line 3");
    write_file(dir, "merges.txt", "#version: 0.2\na b\nab \xff\n");
    expect_load_error(dir, CDF_ERR_FORMAT, "merges.txt", "line 3");
    /* leading blank lines are stripped before the header line is skipped */
    write_file(dir, "merges.txt", "\n\n#version: 0.2\na b\nab\n");
    expect_load_error(dir, CDF_ERR_FORMAT, "merges.txt", "line 5");
    write_file(dir, "merges.txt", MERGES);
    write_file(dir, "tokenizer_config.json", "{\"model_max_length\": 77,,}");
    expect_load_error(dir, CDF_ERR_FORMAT, "tokenizer_config.json", NULL);
    write_file(dir, "tokenizer_config.json", "{}");
    write_file(dir, "special_tokens_map.json", "[]");
    expect_load_error(dir, CDF_ERR_FORMAT, "special_tokens_map.json", NULL);
    tu_rmtree(dir);
    free(dir);
}

static void test_bad_config_values(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    write_tiny(dir);
    static const struct {
        const char *json;
        cdf_status s;
        const char *w1, *w2;
    } cases[] = {
        {"{\"model_max_length\": \"77\"}", CDF_ERR_CONFIG, "tokenizer_config.json", "model_max_length"},
        {"{\"model_max_length\": 1}", CDF_ERR_CONFIG, "tokenizer_config.json", "model_max_length"},
        {"{\"model_max_length\": 1e30}", CDF_ERR_CONFIG, "tokenizer_config.json", "model_max_length"},
        {"{\"unk_token\": \"zzz\"}", CDF_ERR_CONFIG, "unk_token", "zzz"},
        {"{\"pad_token\": null}", CDF_ERR_CONFIG, "tokenizer_config.json", "pad_token"},
        {"{\"bos_token\": 3}", CDF_ERR_CONFIG, "tokenizer_config.json", "bos_token"},
        {"{\"eos_token\": {\"lstrip\": false}}", CDF_ERR_CONFIG, "tokenizer_config.json", "eos_token"},
        {"{\"eos_token\": {\"content\": \"<|endoftext|>\", \"single_word\": true}}", CDF_ERR_UNSUPPORTED,
         "tokenizer_config.json", "single_word"},
        {"{\"errors\": \"strict\"}", CDF_ERR_UNSUPPORTED, "tokenizer_config.json", "errors"},
        {"{\"do_lower_case\": \"yes\"}", CDF_ERR_CONFIG, "tokenizer_config.json", "do_lower_case"},
        {"{\"additional_special_tokens\": [\"<nope>\"]}", CDF_ERR_CONFIG, "additional_special_tokens", "<nope>"},
        {"{\"added_tokens_decoder\": {\"x1\": {\"content\": \"a\"}}}", CDF_ERR_CONFIG, "added_tokens_decoder", "x1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(dir, "tokenizer_config.json", cases[i].json);
        expect_load_error(dir, cases[i].s, cases[i].w1, cases[i].w2);
    }
    remove_file(dir, "tokenizer_config.json");
    write_file(dir, "special_tokens_map.json", "{\"pad_token\": \"qq\"}");
    expect_load_error(dir, CDF_ERR_CONFIG, "special_tokens_map.json", "qq");
    tu_rmtree(dir);
    free(dir);
}

/* content ids (after bos) of text, with n_content and the truncated flag */
static void tok(const cdf_clip_tokenizer *t, const char *text, int64_t *ids, int *nc, int *tr, char **dropped) {
    cdf_error err = {0};
    if (cdf_clip_tokenize(t, text, ids, nc, tr, dropped, &err) != CDF_OK) fail_msg("\"%s\": %s", text, err.msg);
}

static void test_defaults_and_overrides(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    write_tiny(dir);
    /* no config files: CLIP defaults */
    cdf_clip_tokenizer *t = load_ok(dir);
    assert_int_equal(cdf_clip_tokenizer_max_length(t), 77);
    assert_int_equal(cdf_clip_tokenizer_bos_id(t), 8);
    assert_int_equal(cdf_clip_tokenizer_eos_id(t), 9);
    assert_int_equal(cdf_clip_tokenizer_pad_id(t), 9);
    int64_t ids[77];
    int nc, tr;
    tok(t, "abc abc", ids, &nc, &tr, NULL); /* a b c</w> -> ab c</w> -> abc</w> */
    assert_int_equal(nc, 2);
    assert_int_equal(tr, 0);
    const int64_t want[6] = {8, 10, 10, 9, 9, 9};
    assert_memory_equal(ids, want, sizeof want);
    assert_int_equal(ids[76], 9);
    cdf_clip_tokenizer_free(t);

    /* model_max_length 5: bos + 3 + eos; the rest is reported and decoded */
    write_file(dir, "tokenizer_config.json", "{\"model_max_length\": 5, \"do_lower_case\": true}");
    t = load_ok(dir);
    assert_int_equal(cdf_clip_tokenizer_max_length(t), 5);
    char *dropped = NULL;
    /* abc</w> | a b</w> (no merge for (a, b</w>)) | abc</w> | ab a</w> | c</w> */
    tok(t, "abc ab abc aba c", ids, &nc, &tr, &dropped);
    assert_int_equal(nc, 1 + 2 + 1 + 2 + 1);
    assert_int_equal(tr, 1);
    const int64_t want5[5] = {8, 10, 0, 4, 9};
    assert_memory_equal(ids, want5, sizeof want5);
    assert_non_null(dropped);
    assert_string_equal(dropped, "abc aba c"); /* "abc</w>" "ab" "a</w>" "c</w>" */
    cdf_free(dropped);
    cdf_clip_tokenizer_free(t);

    /* special_tokens_map.json overrides tokenizer_config.json; the pad token is
     * split out of the text as an added token (as transformers does for SD 2's "!") */
    write_file(dir, "tokenizer_config.json", "{\"model_max_length\": 8, \"pad_token\": \"<|endoftext|>\"}");
    write_file(dir, "special_tokens_map.json", "{\"pad_token\": {\"content\": \"b\", \"lstrip\": false}}");
    t = load_ok(dir);
    assert_int_equal(cdf_clip_tokenizer_pad_id(t), 1);
    tok(t, "cab", ids, &nc, &tr, NULL); /* "ca" -> c a</w>, then the added token "b" */
    const int64_t want8[8] = {8, 2, 3, 1, 9, 1, 1, 1};
    assert_memory_equal(ids, want8, sizeof want8);
    cdf_clip_tokenizer_free(t);

    /* added_tokens_decoder adds a token outside the vocab; it decodes as its content */
    remove_file(dir, "special_tokens_map.json");
    write_file(dir, "tokenizer_config.json",
               "{\"added_tokens_decoder\": {\"8\": {\"content\": \"<|startoftext|>\"},"
               " \"11\": {\"content\": \"<cat-toy>\"}}}");
    t = load_ok(dir);
    tok(t, "a<cat-toy>c", ids, &nc, &tr, NULL);
    const int64_t wantx[5] = {8, 3, 11, 5, 9};
    assert_memory_equal(ids, wantx, sizeof wantx);
    char *text = NULL;
    cdf_error err = {0};
    if (cdf_clip_tokenizer_decode(t, ids + 1, 3, &text, &err) != CDF_OK) fail_msg("%s", err.msg);
    assert_string_equal(text, "a <cat-toy>c");
    cdf_free(text);
    cdf_clip_tokenizer_free(t);

    /* CRLF merges read like LF (Python's universal newlines) */
    remove_file(dir, "tokenizer_config.json");
    write_file(dir, "merges.txt", "#version: 0.2\r\na b\r\nab c</w>\r\n");
    t = load_ok(dir);
    tok(t, "abc", ids, &nc, &tr, NULL);
    assert_int_equal(nc, 1);
    assert_int_equal(ids[1], 10);
    cdf_clip_tokenizer_free(t);
    tu_rmtree(dir);
    free(dir);
}

/* transformers reads only merges.txt lines 1..48894: what follows is ignored. */
static void test_merge_limit(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    write_file(dir, "vocab.json", VOCAB);
    size_t n = 48894;
    char *m = malloc(32 + 4 * n + 64);
    assert_non_null(m);
    size_t k = (size_t)sprintf(m, "#version: 0.2\n");
    for (size_t i = 0; i < n; i++) k += (size_t)sprintf(m + k, "a b\n");
    sprintf(m + k, "not a merge line\n");
    write_file(dir, "merges.txt", m);
    cdf_clip_tokenizer *t = load_ok(dir);
    cdf_clip_tokenizer_free(t);
    m[k - 1] = ' '; /* the last counted line "a b" becomes "a b not a merge line" */
    write_file(dir, "merges.txt", m);
    expect_load_error(dir, CDF_ERR_FORMAT, "merges.txt", "line 48895");
    free(m);
    tu_rmtree(dir);
    free(dir);
}

static void test_arguments(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    write_tiny(dir);
    cdf_clip_tokenizer *t = load_ok(dir);
    cdf_error err = {0};
    int64_t ids[77];
    char *s = (char *)1;
    assert_int_equal(cdf_clip_tokenize(t, NULL, ids, NULL, NULL, &s, &err), CDF_ERR_ARG);
    assert_null(s);
    assert_int_equal(cdf_clip_tokenize(NULL, "a", ids, NULL, NULL, NULL, &err), CDF_ERR_ARG);
    assert_int_equal(cdf_clip_tokenize(t, "a", NULL, NULL, NULL, NULL, &err), CDF_ERR_ARG);
    cdf_clip_tokenizer *t2 = t;
    assert_int_equal(cdf_clip_tokenizer_load(NULL, &t2, &err), CDF_ERR_ARG);
    assert_null(t2);
    const int64_t bad[2] = {3, 12345};
    assert_int_equal(cdf_clip_tokenizer_decode(t, bad, 2, &s, &err), CDF_ERR_ARG);
    assert_null(s);
    assert_non_null(strstr(err.msg, "12345"));
    assert_int_equal(cdf_clip_tokenizer_decode(t, NULL, 0, &s, &err), CDF_OK);
    assert_string_equal(s, "");
    cdf_free(s);
    int64_t *all = (int64_t *)1;
    size_t n = 99;
    assert_int_equal(cdf_clip_tokenizer_encode(t, "  ", &all, &n, &err), CDF_OK);
    assert_null(all);
    assert_int_equal(n, 0);
    cdf_clip_tokenizer_free(t);
    cdf_clip_tokenizer_free(NULL);
    tu_rmtree(dir);
    free(dir);
}

/* ------------------------------------------------ allocation failures */

typedef struct alloc_state {
    long calls, fail_at, live;
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

/* load + tokenize with truncation (dropped text) + encode + decode */
static cdf_status op_all(const char *dir, cdf_error *err) {
    cdf_clip_tokenizer *t = NULL;
    cdf_status s = cdf_clip_tokenizer_load(dir, &t, err);
    if (s != CDF_OK) return s;
    int64_t ids[5];
    int nc, tr;
    char *dropped = NULL;
    s = cdf_clip_tokenize(t, "abc ab abc aba c <|endoftext|> \xc3\xa9", ids, &nc, &tr, &dropped, err);
    if (s == CDF_OK) {
        assert_int_equal(tr, 1);
        assert_non_null(dropped);
        cdf_free(dropped);
        int64_t *all = NULL;
        size_t n = 0;
        s = cdf_clip_tokenizer_encode(t, "abc ab", &all, &n, err);
        if (s == CDF_OK) {
            char *text = NULL;
            s = cdf_clip_tokenizer_decode(t, all, n, &text, err);
            if (s == CDF_OK) assert_string_equal(text, "abc ab");
            cdf_free(text);
            cdf_free(all);
        }
    }
    cdf_clip_tokenizer_free(t);
    return s;
}

static void test_nomem(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    write_tiny(dir);
    write_file(dir, "tokenizer_config.json", "{\"model_max_length\": 5, \"additional_special_tokens\": [\"aba\"]}");
    write_file(dir, "special_tokens_map.json", "{\"bos_token\": \"<|startoftext|>\"}");
    alloc_state st = {0, -1, 0};
    cdf_allocator a = {a_malloc, a_realloc, a_free, &st};
    cdf_set_allocator(&a);
    cdf_error err0 = {0};
    cdf_status s0 = op_all(dir, &err0);
    cdf_set_allocator(NULL);
    if (s0 != CDF_OK) fail_msg("fails without injection: %s", err0.msg);
    assert_int_equal(st.live, 0);
    long total = st.calls;
    assert_true(total > 20);
    for (long k = 0; k < total; k++) {
        st.calls = 0;
        st.fail_at = k;
        st.live = 0;
        cdf_set_allocator(&a);
        cdf_error err = {0};
        cdf_status s = op_all(dir, &err);
        cdf_set_allocator(NULL);
        if (st.live != 0) fail_msg("fail at %ld: %ld blocks leaked (%s: %s)", k, st.live, cdf_status_name(s), err.msg);
        int json_oom = s == CDF_ERR_FORMAT && strstr(err.msg, "invalid JSON"); /* cJSON reports OOM as a parse error */
        if (s != CDF_ERR_NOMEM && !json_oom)
            fail_msg("fail at %ld: status %s: %s", k, cdf_status_name(s), err.msg);
    }
    tu_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_files),          cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_bad_config_values),      cmocka_unit_test(test_defaults_and_overrides),
        cmocka_unit_test(test_merge_limit),            cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
