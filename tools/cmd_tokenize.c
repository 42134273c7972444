/* cdiffusers tokenize: the 77 ids a Stable Diffusion pipeline feeds its text encoder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "text/clip_tokenizer.h"

#define CMD "tokenize"

int cmd_tokenize(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, CMD);
    const char *pos[2] = {NULL, NULL};
    int npos = 0, which = 1;
    while (cli_next(&a)) {
        if (!a.name) {
            if (npos == 2) cli_usage_error(CMD, "unexpected argument '%s' (quote the text)", a.value);
            pos[npos++] = a.value;
        } else if (!strcmp(a.name, "help")) {
            printf("usage: cdiffusers tokenize MODEL_DIR TEXT [--tokenizer 1|2]\n\n"
                   "Prints the token ids the pipeline gives its text encoder for TEXT:\n"
                   "tokenizer(TEXT, padding=\"max_length\", max_length=77, truncation=True).input_ids,\n"
                   "space-separated on one line (MODEL_DIR/tokenizer, or MODEL_DIR itself when it holds\n"
                   "vocab.json).  --tokenizer 2: Stable Diffusion XL's MODEL_DIR/tokenizer_2 (pads with\n"
                   "\"!\", which is then a special token).  A truncated prompt is reported on stderr.\n");
            return 0;
        } else if (!strcmp(a.name, "tokenizer")) {
            which = (int)cli_parse_int(CMD, "--tokenizer", cli_value(&a), 1, 2);
        } else {
            cli_usage_error(CMD, "unknown option --%s", a.name);
        }
    }
    if (npos != 2) cli_usage_error(CMD, "MODEL_DIR and TEXT are required");
    char dir[4200];
    const char *sub = which == 2 ? "tokenizer_2" : "tokenizer";
    snprintf(dir, sizeof dir, "%s/%s/vocab.json", pos[0], sub);
    FILE *f = fopen(dir, "rb");
    if (f) {
        fclose(f);
        snprintf(dir, sizeof dir, "%s/%s", pos[0], sub);
    } else if (which == 2) {
        fprintf(stderr, "cdiffusers %s: error: %s/tokenizer_2: no second tokenizer (a Stable Diffusion XL folder has "
                        "one)\n", CMD, pos[0]);
        return CLI_EXIT_FAIL;
    } else {
        snprintf(dir, sizeof dir, "%s", pos[0]);
    }
    cdf_error err = {0};
    cdf_clip_tokenizer *t = NULL;
    if (cdf_clip_tokenizer_load(dir, &t, &err)) cli_fail(CMD, &err);
    int L = cdf_clip_tokenizer_max_length(t), ncontent = 0, trunc = 0;
    int64_t *ids = calloc((size_t)L, sizeof *ids);
    char *dropped = NULL;
    if (!ids) return CLI_EXIT_FAIL;
    if (cdf_clip_tokenize(t, pos[1], ids, &ncontent, &trunc, &dropped, &err)) cli_fail(CMD, &err);
    for (int i = 0; i < L; i++) printf(i ? " %lld" : "%lld", (long long)ids[i]);
    printf("\n");
    if (trunc)
        fprintf(stderr, "warning: %d tokens were cut to %d; dropped: %s\n", ncontent, L - 2, dropped ? dropped : "");
    cdf_free(dropped);
    free(ids);
    cdf_clip_tokenizer_free(t);
    return 0;
}
