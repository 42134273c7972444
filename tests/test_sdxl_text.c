/* The text side of StableDiffusionXLPipeline against tests/data/sdxl:
 * tokenizer_2 (pad "!" = id 0, split out as a special token) on the 314
 * golden strings, the two encoders (penultimate layer, pooled text_embeds)
 * and cdf_sdxl_encode_prompt's prompt resolution and CFG layout on the 16
 * golden cases (token ids exact, prompt_embeds / pooled within the cases'
 * tolerances, zeroed negatives exactly zero), and bad arguments. */
#include "testutil.h"
#include "sd_case.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/clip_text.h"
#include "pipelines/sdxl_text.h"
#include "tensor/exec.h"
#include "text/clip_tokenizer.h"

#define SEQ 77

static cdf_clip_tokenizer *load_tok(const char *pipe, const char *sub) {
    cdf_error err = {0};
    cdf_clip_tokenizer *t = NULL;
    if (cdf_clip_tokenizer_load(tu_data("sdxl/pipelines/%s/%s", pipe, sub), &t, &err) != CDF_OK)
        fail_msg("load %s/%s: %s", pipe, sub, err.msg);
    return t;
}

static cdf_clip_text *load_enc(const char *dir) {
    cdf_error err = {0};
    cdf_clip_text *m = NULL;
    if (cdf_clip_text_load(dir, NULL, &m, &err) != CDF_OK) fail_msg("load %s: %s", dir, err.msg);
    return m;
}


static void test_tokenizer_2_golden(void **state) {
    (void)state;
    cdf_clip_tokenizer *t2 = load_tok("tiny-sdxl-a", "tokenizer_2"), *t1 = load_tok("tiny-sdxl-a", "tokenizer");
    assert_int_equal(cdf_clip_tokenizer_pad_id(t2), 0);
    assert_int_equal(cdf_clip_tokenizer_pad_id(t1), 49407);
    assert_int_equal(cdf_clip_tokenizer_max_length(t2), SEQ);
    char *all = tu_read_text(tu_data("sdxl/tokenizer_2_golden.jsonl"));
    assert_non_null(all);
    int count = 0, bad = 0, n_differs = 0;
    for (char *line = all; *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (*line) {
            char *clean = tu_drop_nul_escapes(line, strlen(line));
            assert_non_null(clean);
            cJSON *j = cJSON_Parse(clean);
            free(clean);
            assert_non_null(j);
            int idx = cJSON_GetObjectItem(j, "i")->valueint;
            const char *text = cJSON_GetObjectItem(j, "text")->valuestring;
            const cJSON *want = cJSON_GetObjectItem(j, "input_ids");
            int want_n = cJSON_GetObjectItem(j, "n_content_tokens")->valueint;
            int want_tr = cJSON_IsTrue(cJSON_GetObjectItem(j, "truncated"));
            int differs = cJSON_IsTrue(cJSON_GetObjectItem(j, "content_differs_from_tokenizer"));
            assert_int_equal(cJSON_GetArraySize(want), SEQ);
            int64_t ids[SEQ], ids1[SEQ];
            int nc = -1, tr = -1;
            cdf_error err = {0};
            if (cdf_clip_tokenize(t2, text, ids, &nc, &tr, NULL, &err) != CDF_OK) fail_msg("golden %d: %s", idx, err.msg);
            if (cdf_clip_tokenize(t1, text, ids1, NULL, NULL, NULL, &err) != CDF_OK)
                fail_msg("golden %d: %s", idx, err.msg);
            int first_diff = -1;
            for (int k = 0; k < SEQ && first_diff < 0; k++)
                if (ids[k] != (int64_t)cJSON_GetArrayItem(want, k)->valuedouble) first_diff = k;
            /* tokenizer's bos, content, eos differ from tokenizer_2's exactly when the text holds a "!" */
            int d1 = 0, upto = 2 + (nc < SEQ - 2 ? nc : SEQ - 2);
            for (int k = 0; k < upto && !d1; k++) d1 = ids[k] != ids1[k];
            if (first_diff >= 0 || nc != want_n || tr != want_tr || d1 != differs) {
                if (bad < 10)
                    print_error("golden %d: first differing id at %d (got %lld), n_content %d/%d, truncated %d/%d, "
                                "differs from tokenizer %d/%d: %.80s\n",
                                idx, first_diff, first_diff >= 0 ? (long long)ids[first_diff] : 0LL, nc, want_n, tr,
                                want_tr, d1, differs, text);
                bad++;
            }
            n_differs += differs;
            cJSON_Delete(j);
            count++;
        }
        if (!nl) break;
        line = nl + 1;
    }
    free(all);
    cdf_clip_tokenizer_free(t1);
    cdf_clip_tokenizer_free(t2);
    if (bad) fail_msg("%d of %d tokenizer_2 golden strings differ", bad, count);
    print_message("%d tokenizer_2 golden strings, %d differ from tokenizer\n", count, n_differs);
    assert_int_equal(count, 314);
    assert_int_equal(n_differs, 57);
}

/* The components of one pipeline folder. */
typedef struct sdxl_parts {
    char pipe[512];
    cdf_clip_tokenizer *tok, *tok2;
    cdf_clip_text *te, *te2;
    cdf_sdxl_text t;
} sdxl_parts;

static void parts_load(sdxl_parts *p, const char *pipe_dir) {
    char d[1100];
    cdf_error err = {0};
    snprintf(p->pipe, sizeof p->pipe, "%s", pipe_dir);
    snprintf(d, sizeof d, "%s/tokenizer", pipe_dir);
    if (cdf_clip_tokenizer_load(d, &p->tok, &err) != CDF_OK) fail_msg("%s: %s", d, err.msg);
    snprintf(d, sizeof d, "%s/tokenizer_2", pipe_dir);
    if (cdf_clip_tokenizer_load(d, &p->tok2, &err) != CDF_OK) fail_msg("%s: %s", d, err.msg);
    snprintf(d, sizeof d, "%s/text_encoder", pipe_dir);
    p->te = load_enc(d);
    snprintf(d, sizeof d, "%s/text_encoder_2", pipe_dir);
    p->te2 = load_enc(d);
    p->t = (cdf_sdxl_text){p->tok, p->tok2, p->te, p->te2};
}

static void parts_free(sdxl_parts *p) {
    cdf_clip_tokenizer_free(p->tok);
    cdf_clip_tokenizer_free(p->tok2);
    cdf_clip_text_free(p->te);
    cdf_clip_text_free(p->te2);
    memset(p, 0, sizeof *p);
}

/* A prompt kwarg: absent -> 0, a string -> list of one, a list -> its strings (into out[max]). */
static size_t str_list(const cJSON *v, const char **out, size_t max) {
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsString(v)) {
        out[0] = v->valuestring;
        return 1;
    }
    assert_true(cJSON_IsArray(v));
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        assert_true(n < max && cJSON_IsString(it));
        out[n++] = it->valuestring;
    }
    return n;
}

/* token_ids.<which> (null or [np][77]) against got [np, 77] (NULL: must be null). */
static void check_ids(const char *name, const cJSON *tids, const char *which, const int64_t *got, int np) {
    const cJSON *rows = cJSON_GetObjectItem(tids, which);
    if (!got) {
        if (rows && !cJSON_IsNull(rows)) fail_msg("%s: token_ids.%s is not null but no encoder pass ran", name, which);
        return;
    }
    if (!cJSON_IsArray(rows)) fail_msg("%s: token_ids.%s is null but the negatives were encoded", name, which);
    assert_int_equal(cJSON_GetArraySize(rows), np);
    for (int r = 0; r < np; r++) {
        const cJSON *row = cJSON_GetArrayItem(rows, r);
        assert_int_equal(cJSON_GetArraySize(row), SEQ);
        for (int k = 0; k < SEQ; k++)
            if (got[(size_t)r * SEQ + k] != (int64_t)cJSON_GetArrayItem(row, k)->valuedouble)
                fail_msg("%s: token_ids.%s[%d][%d] is %lld, want %.0f", name, which, r, k,
                         (long long)got[(size_t)r * SEQ + k], cJSON_GetArrayItem(row, k)->valuedouble);
    }
}

static void test_golden_cases(void **state) {
    (void)state;
    char **dirs = NULL;
    int n = case_list_in("sdxl", &dirs);
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 2, &err);
    sdxl_parts parts = {0};
    int ran = 0, n_zeroed = 0, n_nocfg = 0, n_f16 = 0;
    for (int ci = 0; ci < n; ci++) {
        cJSON *c = sd_case_json(dirs[ci]);
        assert_non_null(c);
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        const cJSON *call = cJSON_GetObjectItem(c, "call"), *kw = cJSON_GetObjectItem(call, "kwargs");
        const cJSON *res = cJSON_GetObjectItem(call, "resolved"), *tids = cJSON_GetObjectItem(c, "token_ids");
        const char *pipe = case_pipeline_in("sdxl", c);
        if (strcmp(parts.pipe, pipe) != 0) {
            parts_free(&parts);
            parts_load(&parts, pipe);
        }
        const char *p1[16], *p2[16], *n1[16], *n2[16];
        cdf_sdxl_prompt_args a = {0};
        a.prompts = p1;
        a.num_prompts = str_list(cJSON_GetObjectItem(call, "prompt"), p1, 16);
        a.prompts_2 = p2;
        a.num_prompts_2 = str_list(cJSON_GetObjectItem(kw, "prompt_2"), p2, 16);
        a.negative_prompts = n1;
        a.num_negative_prompts = str_list(cJSON_GetObjectItem(kw, "negative_prompt"), n1, 16);
        a.negative_prompts_2 = n2;
        a.num_negative_prompts_2 = str_list(cJSON_GetObjectItem(kw, "negative_prompt_2"), n2, 16);
        const cJSON *nipp = cJSON_GetObjectItem(kw, "num_images_per_prompt");
        a.num_images_per_prompt = nipp ? nipp->valueint : 1;
        a.do_classifier_free_guidance = cJSON_IsTrue(cJSON_GetObjectItem(res, "do_classifier_free_guidance"));
        a.force_zeros_for_empty_prompt = cJSON_IsTrue(cJSON_GetObjectItem(res, "force_zeros_for_empty_prompt"));
        int np = (int)a.num_prompts, rows = cdf_sdxl_text_rows(&a), seq = 0, D = 0, P = 0;
        assert_int_equal(cdf_sdxl_text_dims(&parts.t, &seq, &D, &P, &err), CDF_OK);
        assert_int_equal(seq, SEQ);
        assert_int_equal(rows, sd_case_dim(c, "prompt_embeds", 0));
        assert_int_equal(D, sd_case_dim(c, "prompt_embeds", 2));
        assert_int_equal(P, sd_case_dim(c, "pooled_prompt_embeds", 1));
        assert_int_equal(P, cJSON_GetObjectItem(res, "text_encoder_2_projection_dim")->valueint);

        size_t ne = (size_t)rows * SEQ * D, npl = (size_t)rows * P, nw = 0;
        cdf_sdxl_text_out o = {0};
        o.prompt_embeds = malloc(ne * sizeof(float));
        o.pooled = malloc(npl * sizeof(float));
        int64_t *idbuf = malloc(4 * (size_t)np * SEQ * sizeof *idbuf);
        for (size_t i = 0; i < 4 * (size_t)np * SEQ; i++) idbuf[i] = -7;
        o.ids = idbuf, o.ids_2 = idbuf + np * SEQ, o.neg_ids = idbuf + 2 * np * SEQ, o.neg_ids_2 = idbuf + 3 * np * SEQ;
        if (cdf_sdxl_encode_prompt(&ex, &parts.t, &a, &o, &err) != CDF_OK) fail_msg("%s: %s", name, err.msg);

        int encoded_neg = a.do_classifier_free_guidance && !o.negative_zeroed;
        assert_int_equal(o.negative_zeroed, cJSON_IsTrue(cJSON_GetObjectItem(res, "negative_embeds_zeroed")));
        if (!encoded_neg) /* untouched */
            for (size_t i = 2 * (size_t)np * SEQ; i < 4 * (size_t)np * SEQ; i++) assert_true(idbuf[i] == -7);
        check_ids(name, tids, "cond", o.ids, np);
        check_ids(name, tids, "cond_2", o.ids_2, np);
        check_ids(name, tids, "uncond", encoded_neg ? o.neg_ids : NULL, np);
        check_ids(name, tids, "uncond_2", encoded_neg ? o.neg_ids_2 : NULL, np);

        float *want_e = sd_case_array(dirs[ci], c, "prompt_embeds", &nw);
        assert_int_equal(nw, ne);
        float *want_p = sd_case_array(dirs[ci], c, "pooled_prompt_embeds", &nw);
        assert_int_equal(nw, npl);
        double ae = sd_case_atol(c, "prompt_embeds"), ap = sd_case_atol(c, "pooled_prompt_embeds");
        double ee = tu_max_abs_diff_f32(o.prompt_embeds, want_e, ne);
        double ep = tu_max_abs_diff_f32(o.pooled, want_p, npl);
        printf("%-40s rows %d  prompt_embeds max |err| %.3e (atol %.1e)  pooled %.3e (atol %.1e)%s\n", name, rows, ee,
               ae, ep, ap, o.negative_zeroed ? "  [negative zeroed]" : "");
        if (!(ee <= ae)) fail_msg("%s: prompt_embeds max error %.3e over atol %.3e", name, ee, ae);
        if (!(ep <= ap)) fail_msg("%s: pooled max error %.3e over atol %.3e", name, ep, ap);
        if (o.negative_zeroed) {
            size_t half_e = ne / 2, half_p = npl / 2;
            for (size_t i = 0; i < half_e; i++)
                if (o.prompt_embeds[i] != 0.0f || want_e[i] != 0.0f) fail_msg("%s: zeroed prompt_embeds[%zu]", name, i);
            for (size_t i = 0; i < half_p; i++)
                if (o.pooled[i] != 0.0f || want_p[i] != 0.0f) fail_msg("%s: zeroed pooled[%zu]", name, i);
            n_zeroed++;
        }
        n_nocfg += !a.do_classifier_free_guidance;
        n_f16 += strstr(pipe, "f16") != NULL;
        free(want_e);
        free(want_p);
        free(o.prompt_embeds);
        free(o.pooled);
        free(idbuf);
        cJSON_Delete(c);
        free(dirs[ci]);
        ran++;
    }
    free(dirs);
    parts_free(&parts);
    cdf_exec_release(&ex);
    assert_int_equal(ran, 16);
    assert_true(n_zeroed >= 10 && n_nocfg >= 1 && n_f16 >= 2);
}

/* forward_hidden against forward_proj (same text_embeds bits), with and
 * without text_embeds (same hidden bits), and the negative half's
 * independence of clip_skip. */
static void test_encoder_consistency(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    sdxl_parts p = {0};
    parts_load(&p, tu_data("sdxl/pipelines/tiny-sdxl-b-f16"));
    int64_t ids[2 * SEQ];
    assert_int_equal(cdf_clip_tokenize(p.tok2, "a cat!", ids, NULL, NULL, NULL, &err), CDF_OK);
    assert_int_equal(cdf_clip_tokenize(p.tok2, "", ids + SEQ, NULL, NULL, NULL, &err), CDF_OK);
    int h = cdf_clip_text_hidden_size(p.te2), P = cdf_clip_text_get_config(p.te2)->projection_dim;
    float *a = malloc(sizeof(float) * 2 * SEQ * h), *b = malloc(sizeof(float) * 2 * SEQ * h);
    float pa[64], pb[64];
    assert_int_equal(cdf_clip_text_forward_hidden(&ex, p.te2, ids, 2, SEQ, 0, a, pa), CDF_OK);
    assert_int_equal(cdf_clip_text_forward_hidden(&ex, p.te2, ids, 2, SEQ, 0, b, NULL), CDF_OK);
    assert_memory_equal(a, b, sizeof(float) * 2 * SEQ * h);
    assert_int_equal(cdf_clip_text_forward_proj(&ex, p.te2, ids, 2, SEQ, b, pb), CDF_OK);
    assert_memory_equal(pa, pb, sizeof(float) * 2 * P);
    /* the final LayerNorm output differs from the penultimate layer */
    assert_true(memcmp(a, b, sizeof(float) * SEQ * h) != 0);
    /* errors */
    assert_int_equal(cdf_clip_text_forward_hidden(&ex, p.te2, ids, 1, SEQ, 2, a, NULL), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "clip_skip 2"));
    assert_int_equal(cdf_clip_text_forward_hidden(&ex, p.te2, ids, 1, SEQ, -1, a, NULL), CDF_ERR_ARG);
    assert_int_equal(cdf_clip_text_forward_hidden(&ex, p.te, ids, 1, SEQ, 0, a, pa), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "text_projection"));
    assert_int_equal(cdf_clip_text_forward_hidden(&ex, p.te2, ids, 1, SEQ + 1, 0, a, NULL), CDF_ERR_ARG);
    /* clip_skip 1 (te2 has 2 layers: hidden_states[-3] is the embeddings) changes the positive rows only */
    const char *pr[1] = {"a cat"}, *ng[1] = {"ugly"};
    cdf_sdxl_prompt_args args = {pr, 1, NULL, 0, ng, 1, NULL, 0, 1, 1, 0, 0};
    int D = 0, rows = cdf_sdxl_text_rows(&args);
    assert_int_equal(rows, 2);
    assert_int_equal(cdf_sdxl_text_dims(&p.t, NULL, &D, &P, &err), CDF_OK);
    size_t ne = (size_t)rows * SEQ * D;
    float *e0 = malloc(ne * sizeof(float)), *e1 = malloc(ne * sizeof(float));
    float q0[2 * 64], q1[2 * 64];
    cdf_sdxl_text_out o0 = {e0, q0, NULL, NULL, NULL, NULL, -1}, o1 = {e1, q1, NULL, NULL, NULL, NULL, -1};
    assert_int_equal(cdf_sdxl_encode_prompt(&ex, &p.t, &args, &o0, &err), CDF_OK);
    assert_int_equal(o0.negative_zeroed, 0);
    args.clip_skip = 1;
    assert_int_equal(cdf_sdxl_encode_prompt(&ex, &p.t, &args, &o1, &err), CDF_OK);
    assert_memory_equal(e0, e1, ne / 2 * sizeof(float));
    assert_true(memcmp(e0 + ne / 2, e1 + ne / 2, ne / 2 * sizeof(float)) != 0);
    assert_memory_equal(q0, q1, 2 * (size_t)P * sizeof(float)); /* pooled: always the last layer */
    args.clip_skip = 2; /* te1 has 3 layers, te2 2: [0, 1] */
    assert_int_equal(cdf_sdxl_encode_prompt(&ex, &p.t, &args, &o1, &err), CDF_ERR_ARG);
    assert_non_null(strstr(err.msg, "clip_skip 2"));
    free(e0);
    free(e1);
    free(a);
    free(b);
    parts_free(&p);
    cdf_exec_release(&ex);
}

/* Python `or` and broadcasting of one-element lists: results equal the explicit lists. */
static void test_resolution(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    sdxl_parts p = {0};
    parts_load(&p, tu_data("sdxl/pipelines/tiny-sdxl-a"));
    int D = 0, P = 0;
    assert_int_equal(cdf_sdxl_text_dims(&p.t, NULL, &D, &P, &err), CDF_OK);
    const char *pr[2] = {"a red car", "a boat"}, *empty[1] = {""}, *one[1] = {"ugly"}, *two[2] = {"ugly", "ugly"};
    const char *pr_as_2[2] = {"a red car", "a boat"}, *neg2[2] = {"ugly", "ugly"};
    size_t ne = (size_t)4 * SEQ * D;
    float *e[2], q[2][4 * 16];
    int64_t ids[2][4][2 * SEQ];
    for (int v = 0; v < 2; v++) {
        e[v] = malloc(ne * sizeof(float));
        /* v 0: prompt_2 [""] (falls back to prompt), negative ["ugly"] broadcast, negative_2 [""] -> negative;
         * v 1: the explicit lists */
        cdf_sdxl_prompt_args a = {pr, 2, v ? pr_as_2 : empty, v ? 2 : 1, v ? two : one, v ? 2 : 1,
                                  v ? neg2 : empty, v ? 2 : 1, 1, 1, 1, 0};
        cdf_sdxl_text_out o = {e[v], q[v], ids[v][0], ids[v][1], ids[v][2], ids[v][3], -1};
        assert_int_equal(cdf_sdxl_encode_prompt(&ex, &p.t, &a, &o, &err), CDF_OK);
        assert_int_equal(o.negative_zeroed, 0);
    }
    assert_memory_equal(ids[0], ids[1], sizeof ids[0]);
    assert_memory_equal(e[0], e[1], ne * sizeof(float));
    assert_memory_equal(q[0], q[1], 4 * (size_t)P * sizeof(float));
    /* an explicit "" negative is encoded (bos, eos, then padding: "!" = 0 in tokenizer_2) */
    cdf_sdxl_prompt_args a = {pr, 1, NULL, 0, empty, 1, NULL, 0, 2, 1, 1, 0};
    cdf_sdxl_text_out o = {e[0], q[0], NULL, NULL, ids[0][2], ids[0][3], -1};
    assert_int_equal(cdf_sdxl_encode_prompt(&ex, &p.t, &a, &o, &err), CDF_OK);
    assert_int_equal(o.negative_zeroed, 0);
    assert_true(ids[0][2][0] == 49406 && ids[0][2][1] == 49407 && ids[0][2][2] == 49407);
    assert_true(ids[0][3][0] == 49406 && ids[0][3][1] == 49407 && ids[0][3][2] == 0);
    /* negative_prompt_2 alone: still zeroed; without force_zeros: "" encoded */
    a = (cdf_sdxl_prompt_args){pr, 1, NULL, 0, NULL, 0, one, 1, 1, 1, 1, 0};
    assert_int_equal(cdf_sdxl_encode_prompt(&ex, &p.t, &a, &o, &err), CDF_OK);
    assert_int_equal(o.negative_zeroed, 1);
    a.force_zeros_for_empty_prompt = 0;
    assert_int_equal(cdf_sdxl_encode_prompt(&ex, &p.t, &a, &o, &err), CDF_OK);
    assert_int_equal(o.negative_zeroed, 0);
    assert_true(ids[0][2][1] == 49407 && ids[0][3][1] != 49407); /* negative_prompt "" , negative_prompt_2 "ugly" */
    free(e[0]);
    free(e[1]);
    parts_free(&p);
    cdf_exec_release(&ex);
}

static void expect_bad(cdf_exec *ex, const cdf_sdxl_text *t, const cdf_sdxl_prompt_args *a, cdf_sdxl_text_out *o,
                       cdf_status want, const char *part) {
    cdf_error err = {0};
    ex->err = &err;
    cdf_status s = cdf_sdxl_encode_prompt(ex, t, a, o, &err);
    if (s != want || !strstr(err.msg, part))
        fail_msg("got status %d \"%s\", want %d with \"%s\"", (int)s, err.msg, (int)want, part);
}

static void test_bad_arguments(void **state) {
    (void)state;
    cdf_error err = {0};
    cdf_exec ex;
    cdf_exec_init(&ex, 1, &err);
    sdxl_parts p = {0};
    parts_load(&p, tu_data("sdxl/pipelines/tiny-sdxl-a"));
    float *e = malloc(sizeof(float) * 8 * SEQ * 20), q[8 * 12];
    cdf_sdxl_text_out o = {e, q, NULL, NULL, NULL, NULL, 0};
    const char *pr[2] = {"a", "b"}, *three[3] = {"x", "y", "z"}, *withnull[2] = {"x", NULL};
    cdf_sdxl_prompt_args ok = {pr, 2, NULL, 0, NULL, 0, NULL, 0, 1, 1, 1, 0}, a;
    a = ok, a.num_prompts = 0;
    expect_bad(&ex, &p.t, &a, &o, CDF_ERR_ARG, "prompt list is empty");
    a = ok, a.prompts = withnull;
    expect_bad(&ex, &p.t, &a, &o, CDF_ERR_ARG, "prompt 1 is NULL");
    a = ok, a.num_images_per_prompt = 0;
    expect_bad(&ex, &p.t, &a, &o, CDF_ERR_ARG, "num_images_per_prompt");
    a = ok, a.num_images_per_prompt = 1 << 20;
    expect_bad(&ex, &p.t, &a, &o, CDF_ERR_LIMIT, "over the limit");
    a = ok, a.prompts_2 = three, a.num_prompts_2 = 3;
    expect_bad(&ex, &p.t, &a, &o, CDF_ERR_ARG, "`prompt_2` has batch size 3, but `prompt` has batch size 2");
    a = ok, a.negative_prompts = three, a.num_negative_prompts = 3;
    expect_bad(&ex, &p.t, &a, &o, CDF_ERR_ARG, "`negative_prompt` has batch size 3, but `prompt` has batch size 2");
    a = ok, a.negative_prompts = pr, a.num_negative_prompts = 2, a.negative_prompts_2 = three,
    a.num_negative_prompts_2 = 3;
    expect_bad(&ex, &p.t, &a, &o, CDF_ERR_ARG, "`negative_prompt_2` has batch size 3");
    a = ok, a.negative_prompts_2 = withnull, a.num_negative_prompts_2 = 2;
    expect_bad(&ex, &p.t, &a, &o, CDF_ERR_ARG, "negative_prompt_2 1 is NULL");
    a = ok, a.clip_skip = 2; /* te1 has 2 layers */
    expect_bad(&ex, &p.t, &a, &o, CDF_ERR_ARG, "clip_skip 2 is outside [0, 1]");
    a = ok, a.clip_skip = -1;
    expect_bad(&ex, &p.t, &a, &o, CDF_ERR_ARG, "clip_skip -1");
    cdf_sdxl_text_out no = {NULL, q, NULL, NULL, NULL, NULL, 0};
    expect_bad(&ex, &p.t, &ok, &no, CDF_ERR_ARG, "NULL prompt_embeds output");
    cdf_sdxl_text t = p.t;
    t.tokenizer_2 = NULL;
    expect_bad(&ex, &t, &ok, &o, CDF_ERR_ARG, "tokenizer_2 is NULL");
    t = p.t, t.text_encoder_2 = p.te; /* a CLIPTextModel: no projection */
    expect_bad(&ex, &t, &ok, &o, CDF_ERR_ARG, "not a CLIPTextModelWithProjection");
    /* without CFG, or with zeroed negatives, the negative lists are ignored as in diffusers */
    a = ok, a.do_classifier_free_guidance = 0, a.negative_prompts = three, a.num_negative_prompts = 3;
    ex.err = &err;
    assert_int_equal(cdf_sdxl_encode_prompt(&ex, &p.t, &a, &o, &err), CDF_OK);
    a = ok, a.negative_prompts_2 = three, a.num_negative_prompts_2 = 3;
    assert_int_equal(cdf_sdxl_encode_prompt(&ex, &p.t, &a, &o, &err), CDF_OK);
    assert_int_equal(o.negative_zeroed, 1);
    assert_int_equal(cdf_sdxl_text_rows(&a), 4);
    assert_int_equal(cdf_sdxl_text_rows(NULL), 0);
    free(e);
    parts_free(&p);
    cdf_exec_release(&ex);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer_2_golden),  cmocka_unit_test(test_golden_cases),
        cmocka_unit_test(test_encoder_consistency), cmocka_unit_test(test_resolution),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
