/* CLIP tokenizer folders from arbitrary files.  The input is split at
 * "\n####\n" into vocab.json, merges.txt, tokenizer_config.json and
 * special_tokens_map.json (parts that are not there: no such file).  A
 * tokenizer that loads must then tokenize and decode text (a fixed prompt
 * and the merges part as text) into well-formed rows. */
#include "fuzz_util.h"
#include "text/clip_tokenizer.h"

static void check_row(const cdf_clip_tokenizer *t, const char *text) {
    int L = cdf_clip_tokenizer_max_length(t);
    FZ_CHECK(L >= 2 && L <= 65536);
    int64_t *ids = calloc((size_t)L, sizeof *ids);
    if (!ids) abort();
    int nc = -1, tr = -1;
    char *dropped = NULL;
    cdf_error err = {0};
    cdf_status s = cdf_clip_tokenize(t, text, ids, &nc, &tr, &dropped, &err);
    FZ_CHECK_STATUS(s, err);
    if (s == CDF_OK) {
        FZ_CHECK(ids[0] == cdf_clip_tokenizer_bos_id(t));
        FZ_CHECK(nc >= 0 && (tr == 0 || tr == 1));
        FZ_CHECK(tr == (nc > L - 2));
        int keep = nc < L - 2 ? nc : L - 2;
        FZ_CHECK(ids[1 + keep] == cdf_clip_tokenizer_eos_id(t));
        for (int i = keep + 2; i < L; i++) FZ_CHECK(ids[i] == cdf_clip_tokenizer_pad_id(t));
        char *dec = NULL;
        cdf_error e2 = {0};
        s = cdf_clip_tokenizer_decode(t, ids, (size_t)L, &dec, &e2);
        FZ_CHECK_STATUS(s, e2);
        cdf_free(dec);
    }
    cdf_free(dropped);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[4] = {"vocab.json", "merges.txt", "tokenizer_config.json",
                                         "special_tokens_map.json"};
    const uint8_t *part[4];
    size_t len[4];
    int k = fz_split(data, size, part, len, 4);
    for (int i = 0; i < 4; i++) {
        const char *p = fz_path(i, names[i]);
        if (i < k) fz_write(p, part[i], len[i]);
        else unlink(p);
    }
    cdf_error err = {0};
    cdf_clip_tokenizer *t = NULL;
    cdf_status s = cdf_clip_tokenizer_load(fz_dir(), &t, &err);
    FZ_CHECK_STATUS(s, err);
    if (s != CDF_OK) {
        FZ_CHECK(t == NULL);
        return 0;
    }
    check_row(t, "a photo of an astronaut riding a horse on mars <|endoftext|> 123");
    char *text = fz_cstr(part[1], len[1] < 4096 ? len[1] : 4096);
    check_row(t, text);
    free(text);
    cdf_clip_tokenizer_free(t);
    return 0;
}
