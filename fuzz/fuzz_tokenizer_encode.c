/* The real CLIP tokenizer (tests/data/tokenizer, CLIP ViT-L/14's vocab and
 * merges) on arbitrary bytes: tokenize, encode and decode never fail except
 * by size limit, rows are well formed, and encode agrees with tokenize. */
#include "fuzz_util.h"
#include "text/clip_tokenizer.h"

static cdf_clip_tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    cdf_error err = {0};
    const char *dir = getenv("CDF_FUZZ_TOKENIZER");
    if (!dir) dir = CDF_FUZZ_DATA "/tokenizer";
    if (cdf_clip_tokenizer_load(dir, &g_tok, &err)) {
        fprintf(stderr, "fuzz_tokenizer_encode: %s\n", err.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fz_cstr(data, size);
    int64_t ids[77];
    int nc = -1, tr = -1;
    char *dropped = NULL;
    cdf_error err = {0};
    cdf_status s = cdf_clip_tokenize(g_tok, text, ids, &nc, &tr, &dropped, &err);
    FZ_CHECK(s == CDF_OK);
    FZ_CHECK(ids[0] == 49406);
    int keep = nc < 75 ? nc : 75;
    FZ_CHECK(tr == (nc > 75));
    FZ_CHECK(ids[1 + keep] == 49407);
    for (int i = 1; i <= keep; i++) FZ_CHECK(ids[i] >= 0 && ids[i] < 49408);
    FZ_CHECK((dropped != NULL) == (tr == 1));
    int64_t *all = NULL;
    size_t n = 0;
    s = cdf_clip_tokenizer_encode(g_tok, text, &all, &n, &err);
    FZ_CHECK(s == CDF_OK);
    FZ_CHECK(n == (size_t)nc);
    FZ_CHECK(n == 0 || memcmp(all, ids + 1, (size_t)keep * sizeof *ids) == 0);
    char *dec = NULL;
    s = cdf_clip_tokenizer_decode(g_tok, all, n, &dec, &err);
    FZ_CHECK(s == CDF_OK && dec != NULL);
    /* decoding then tokenizing again is stable in length bounds only (BPE is
     * not a bijection); the decoded text must be a C string of bounded size */
    FZ_CHECK(strlen(dec) <= 8 * size + 64);
    cdf_free(dec);
    cdf_free(all);
    cdf_free(dropped);
    free(text);
    return 0;
}
