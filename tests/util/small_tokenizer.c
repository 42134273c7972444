#include "small_tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/json.h"

/* Copies file `name` of folder src into folder dst. */
static void copy_file(const char *src, const char *dst, const char *name) {
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/%s", src, name);
    snprintf(b, sizeof b, "%s/%s", dst, name);
    FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

char *tu_small_tokenizer_copy(const char *model, const char *const *links, int merges_kept) {
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    char src[4096], p[4200], q[4200];
    snprintf(src, sizeof src, "%s", model);
    for (size_t i = 0; links[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", src, links[i]);
        snprintf(q, sizeof q, "%s/%s", dir, links[i]);
        assert_int_equal(symlink(p, q), 0);
    }
    snprintf(q, sizeof q, "%s/tokenizer", dir);
    assert_int_equal(mkdir(q, 0700), 0);
    snprintf(p, sizeof p, "%s/tokenizer", src);
    copy_file(p, q, "tokenizer_config.json");
    copy_file(p, q, "special_tokens_map.json");
    /* merges: the "#version" line and merges_kept more */
    snprintf(p, sizeof p, "%s/tokenizer/merges.txt", src);
    char *merges = tu_read_text(p);
    assert_non_null(merges);
    char *cut = merges;
    for (int line = 0; line <= merges_kept && cut; line++) cut = strchr(cut, '\n') ? strchr(cut, '\n') + 1 : NULL;
    assert_non_null(cut);
    *cut = 0;
    snprintf(p, sizeof p, "%s/tokenizer/merges.txt", dir);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(merges, f);
    assert_int_equal(fclose(f), 0);
    free(merges);
    /* vocab */
    snprintf(p, sizeof p, "%s/tokenizer/vocab.json", src);
    cJSON *v = NULL, *small = cJSON_CreateObject(), *it;
    cdf_error err = {0};
    assert_int_equal(cdf_json_load(p, &v, &err), CDF_OK);
    cJSON_ArrayForEach(it, v) {
        int id = (int)it->valuedouble;
        if (id < 512 + merges_kept || id >= 49406) cJSON_AddNumberToObject(small, it->string, id);
    }
    char *text = cJSON_PrintUnformatted(small);
    assert_non_null(text);
    snprintf(p, sizeof p, "%s/tokenizer/vocab.json", dir);
    f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    cJSON_free(text);
    cJSON_Delete(small);
    cJSON_Delete(v);
    return dir;
}

