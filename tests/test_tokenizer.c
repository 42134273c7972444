/* CLIP tokenizer against the reference: the 300 golden strings of
 * tests/data/tokenizer (ids, content count, truncation flag, decoded text for
 * the ASCII ones), the token ids recorded in every SD pipeline case, and the
 * truncated-text warning of the long-prompt case. */
#include "testutil.h"
#include "sd_case.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/clip_tokenizer.h"

#define MAXLEN 77

static cdf_clip_tokenizer *load_golden(void) {
    cdf_error err = {0};
    cdf_clip_tokenizer *t = NULL;
    if (cdf_clip_tokenizer_load(tu_data("tokenizer"), &t, &err) != CDF_OK) fail_msg("load: %s", err.msg);
    assert_int_equal(cdf_clip_tokenizer_max_length(t), MAXLEN);
    assert_int_equal(cdf_clip_tokenizer_pad_id(t), 49407);
    assert_int_equal(cdf_clip_tokenizer_bos_id(t), 49406);
    assert_int_equal(cdf_clip_tokenizer_eos_id(t), 49407);
    return t;
}


/* "".join(tokens).replace("</w>", " ").strip() when every token character is
 * printable ASCII (bytes_to_unicode maps those bytes to themselves, so this is
 * the reference's decode); NULL otherwise.  Tokens from index `from`. */
static char *ascii_decode(const cJSON *tokens, int from) {
    size_t cap = 16;
    int n = cJSON_GetArraySize(tokens);
    for (int i = from; i < n; i++) cap += strlen(cJSON_GetArrayItem(tokens, i)->valuestring);
    char *o = malloc(cap);
    assert_non_null(o);
    size_t k = 0;
    for (int i = from; i < n; i++) {
        const char *s = cJSON_GetArrayItem(tokens, i)->valuestring;
        for (; *s; s++) {
            if (*s < 0x21 || *s > 0x7E) {
                free(o);
                return NULL;
            }
            if (strncmp(s, "</w>", 4) == 0) {
                o[k++] = ' ';
                s += 3;
            } else {
                o[k++] = *s;
            }
        }
    }
    while (k && o[k - 1] == ' ') k--;
    o[k] = 0;
    size_t a = 0;
    while (o[a] == ' ') a++;
    memmove(o, o + a, k - a + 1);
    return o;
}

static void test_golden_strings(void **state) {
    (void)state;
    cdf_clip_tokenizer *t = load_golden();
    char *all = tu_read_text(tu_data("tokenizer/tokenizer_golden.jsonl"));
    assert_non_null(all);
    int count = 0, bad = 0, n_trunc = 0, n_decoded = 0, n_dropped_checked = 0;
    for (char *line = all; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len == 0) {
            line += nl ? 1 : 0;
            if (!nl) break;
            continue;
        }
        char *clean = tu_drop_nul_escapes(line, len);
        assert_non_null(clean);
        cJSON *j = cJSON_Parse(clean);
        free(clean);
        assert_non_null(j);
        int idx = cJSON_GetObjectItem(j, "i")->valueint;
        const char *text = cJSON_GetObjectItem(j, "text")->valuestring;
        const cJSON *want = cJSON_GetObjectItem(j, "input_ids");
        int want_n = cJSON_GetObjectItem(j, "n_content_tokens")->valueint;
        int want_tr = cJSON_IsTrue(cJSON_GetObjectItem(j, "truncated"));
        const cJSON *bpe = cJSON_GetObjectItem(j, "bpe_tokens");
        assert_int_equal(cJSON_GetArraySize(want), MAXLEN);
        assert_int_equal(cJSON_GetArraySize(bpe), want_n);

        int64_t ids[MAXLEN];
        int nc = -1, tr = -1;
        char *dropped = NULL;
        cdf_error err = {0};
        if (cdf_clip_tokenize(t, text, ids, &nc, &tr, &dropped, &err) != CDF_OK)
            fail_msg("golden %d: %s", idx, err.msg);
        int first_diff = -1;
        for (int k = 0; k < MAXLEN && first_diff < 0; k++)
            if (ids[k] != (int64_t)cJSON_GetArrayItem(want, k)->valuedouble) first_diff = k;
        if (first_diff >= 0 || nc != want_n || tr != want_tr) {
            if (bad < 10)
                print_error("golden %d: first differing id at %d (got %lld), n_content %d/%d, truncated %d/%d: %.80s\n",
                            idx, first_diff, first_diff >= 0 ? (long long)ids[first_diff] : 0LL, nc, want_n, tr,
                            want_tr, text);
            bad++;
        }
        if ((dropped != NULL) != want_tr)
            fail_msg("golden %d: dropped text presence %d, truncated %d", idx, dropped != NULL, want_tr);

        /* decoding, for the strings whose tokens are all printable ASCII */
        char *want_text = ascii_decode(bpe, 0);
        if (want_text) {
            int64_t *content = NULL;
            size_t n = 0;
            if (cdf_clip_tokenizer_encode(t, text, &content, &n, &err) != CDF_OK)
                fail_msg("golden %d: %s", idx, err.msg);
            assert_int_equal(n, (size_t)want_n);
            char *got = NULL;
            if (cdf_clip_tokenizer_decode(t, content, n, &got, &err) != CDF_OK) fail_msg("golden %d: %s", idx, err.msg);
            if (strcmp(got, want_text) != 0) fail_msg("golden %d: decode \"%s\", want \"%s\"", idx, got, want_text);
            n_decoded++;
            cdf_free(got);
            cdf_free(content);
            free(want_text);
        }
        if (want_tr) {
            n_trunc++;
            char *want_drop = ascii_decode(bpe, MAXLEN - 2);
            if (want_drop) {
                if (strcmp(dropped, want_drop) != 0)
                    fail_msg("golden %d: dropped \"%s\", want \"%s\"", idx, dropped, want_drop);
                n_dropped_checked++;
                free(want_drop);
            }
        }
        cdf_free(dropped);
        cJSON_Delete(j);
        count++;
        if (!nl) break;
        line = nl + 1;
    }
    free(all);
    cdf_clip_tokenizer_free(t);
    if (bad) fail_msg("%d of %d golden strings differ", bad, count);
    print_message("%d golden strings: %d truncated (%d dropped texts checked), %d decoded\n", count, n_trunc,
                  n_dropped_checked, n_decoded);
    assert_int_equal(count, 300);
    /* the checks above exercised what they claim */
    assert_int_equal(n_trunc, 27);
    assert_int_equal(n_dropped_checked, 14);
    assert_int_equal(n_decoded, 155);
}

/* The rows of token_ids.<which> must be the tokenization of `texts`. */
static void check_rows(const cdf_clip_tokenizer *t, const char *name, const char *which, const cJSON *rows,
                       const char *const *texts, int n) {
    assert_int_equal(cJSON_GetArraySize(rows), n);
    for (int r = 0; r < n; r++) {
        const cJSON *row = cJSON_GetArrayItem(rows, r);
        assert_int_equal(cJSON_GetArraySize(row), MAXLEN);
        int64_t ids[MAXLEN];
        cdf_error err = {0};
        if (cdf_clip_tokenize(t, texts[r], ids, NULL, NULL, NULL, &err) != CDF_OK) fail_msg("%s: %s", name, err.msg);
        for (int k = 0; k < MAXLEN; k++)
            if (ids[k] != (int64_t)cJSON_GetArrayItem(row, k)->valuedouble)
                fail_msg("%s %s[%d]: id %d is %lld, want %.0f", name, which, r, k, (long long)ids[k],
                         cJSON_GetArrayItem(row, k)->valuedouble);
    }
}

/* Strings of a prompt / negative_prompt value (string, list, or absent -> "" per row). */
static int prompt_list(const cJSON *v, const char **out, int max, int n_default) {
    if (cJSON_IsString(v)) {
        out[0] = v->valuestring;
        return 1;
    }
    if (cJSON_IsArray(v)) {
        int n = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            assert_true(n < max && cJSON_IsString(it));
            out[n++] = it->valuestring;
        }
        return n;
    }
    for (int i = 0; i < n_default; i++) out[i] = "";
    return n_default;
}

/* Python's json writes -Infinity/Infinity/NaN (scheduler configs), which cJSON
 * rejects: turn such values (after ':', ',' or '[') into 0 in place (the
 * values are not used here). */
static void nonfinite_to_null(char *s) {
    static const char *const words[] = {"-Infinity", "Infinity", "NaN"};
    int in_str = 0;
    char prev = 0; /* last non-space character outside strings */
    for (char *p = s; *p; p++) {
        if (in_str) {
            if (*p == '\\' && p[1]) p++;
            else if (*p == '"') in_str = 0;
            continue;
        }
        if (*p == '"') {
            in_str = 1;
            prev = '"';
            continue;
        }
        if (prev == ':' || prev == ',' || prev == '[')
            for (int k = 0; k < 3; k++) {
                size_t n = strlen(words[k]);
                if (strncmp(p, words[k], n) == 0) {
                    p[0] = '0';
                    memset(p + 1, ' ', n - 1);
                    break;
                }
            }
        if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r') prev = *p;
    }
}

static void test_pipeline_case_ids(void **state) {
    (void)state;
    cdf_clip_tokenizer *t = load_golden();
    char names[64][256];
    const int n_dirs = case_names_in("sd", names, 64); /* exits unless all 19 cases are there */
    int n_cases = 0, n_uncond = 0;
    for (int ci = 0; ci < n_dirs; ci++) {
        const char *name = names[ci];
        char *txt = tu_read_text(tu_data("sd/cases/%s/case.json", name));
        if (!txt) fail_msg("sd/cases/%s/case.json: unreadable", name);
        nonfinite_to_null(txt);
        cJSON *c = cJSON_Parse(txt);
        free(txt);
        assert_non_null(c);
        const cJSON *call = cJSON_GetObjectItem(c, "call"), *tok = cJSON_GetObjectItem(c, "token_ids");
        const cJSON *kw = cJSON_GetObjectItem(call, "kwargs");
        const char *prompts[64], *negs[64];
        int np = prompt_list(cJSON_GetObjectItem(call, "prompt"), prompts, 64, 0);
        assert_true(np > 0);
        check_rows(t, name, "cond", cJSON_GetObjectItem(tok, "cond"), prompts, np);
        const cJSON *unc = cJSON_GetObjectItem(tok, "uncond");
        if (!cJSON_IsNull(unc)) {
            int nn = prompt_list(cJSON_GetObjectItem(kw, "negative_prompt"), negs, 64, np);
            if (nn == 1 && np > 1)
                for (int i = 1; i < np; i++) negs[i] = negs[0];
            check_rows(t, name, "uncond", unc, negs, np);
            n_uncond++;
        }
        cJSON_Delete(c);
        n_cases++;
    }
    cdf_clip_tokenizer_free(t);
    assert_int_equal(n_cases, 19);
    assert_int_equal(n_uncond, 18); /* every case but nocfg_gs1.0_pndm_10steps */
}

/* diffusers warns "The following part of your input was truncated because CLIP
 * can only handle sequences up to 77 tokens: <batch_decode(untruncated[:, 76:-1])>".
 * The long-prompt case repeats "a highly detailed castle," (5 tokens) 25
 * times: 15 repetitions fit, the rest is dropped and decodes with a space
 * before each comma (the "," token is a word of its own, "</w>" -> " "). */
static void test_long_prompt_dropped_text(void **state) {
    (void)state;
    cdf_clip_tokenizer *t = load_golden();
    char *txt = tu_read_text(tu_data("sd/cases/long_prompt_truncated/case.json"));
    assert_non_null(txt);
    cJSON *c = cJSON_Parse(txt);
    free(txt);
    assert_non_null(c);
    const char *prompt = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "call"), "prompt")->valuestring;
    const cJSON *cond = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "token_ids"), "cond"), 0);

    int64_t ids[MAXLEN];
    int nc = 0, tr = 0;
    char *dropped = NULL;
    cdf_error err = {0};
    if (cdf_clip_tokenize(t, prompt, ids, &nc, &tr, &dropped, &err) != CDF_OK) fail_msg("%s", err.msg);
    for (int k = 0; k < MAXLEN; k++) assert_int_equal(ids[k], (int64_t)cJSON_GetArrayItem(cond, k)->valuedouble);
    assert_int_equal(tr, 1);
    assert_non_null(dropped);

    /* expected: the prompt after its 15th ", ", with each "," written " ," */
    const char *tail = prompt;
    for (int k = 0; k < 15; k++) {
        tail = strstr(tail, ", ");
        assert_non_null(tail);
        tail += 2;
    }
    char want[4096];
    size_t w = 0;
    for (const char *p = tail; *p && w + 3 < sizeof want; p++) {
        if (*p == ',') want[w++] = ' ';
        want[w++] = *p;
    }
    want[w] = 0;
    assert_string_equal(dropped, want);
    /* and the counts agree: 75 kept + the dropped words and commas */
    int words = 0, commas = 0;
    for (const char *p = want; *p; p++) commas += *p == ',';
    for (const char *p = want; *p; p++) words += (*p != ' ' && *p != ',' && (p == want || p[-1] == ' '));
    assert_int_equal(nc, MAXLEN - 2 + words + commas);
    cdf_free(dropped);

    /* not truncated: no text */
    dropped = (char *)1;
    if (cdf_clip_tokenize(t, "a highly detailed castle", ids, &nc, &tr, &dropped, &err) != CDF_OK)
        fail_msg("%s", err.msg);
    assert_null(dropped);
    assert_int_equal(tr, 0);
    assert_int_equal(nc, 4);
    cJSON_Delete(c);
    cdf_clip_tokenizer_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_strings),
        cmocka_unit_test(test_pipeline_case_ids),
        cmocka_unit_test(test_long_prompt_dropped_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
