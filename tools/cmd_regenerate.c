/* cdiffusers regenerate: the same image again from a PNG's parameters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/png.h"
#include "run_gen.h"

#define CMD "regenerate"

static void help(void) {
    printf("usage: cdiffusers regenerate IMAGE.png MODEL_DIR [--out FILE] [generation options]\n"
           "\n"
           "Reads the generation parameters a cdiffusers PNG carries (text chunk \"parameters\") and\n"
           "runs them again on MODEL_DIR: the same seeds, prompts, scheduler, steps, guidance and size\n"
           "give the same image, bit for bit on the same build and CPU.  Any generation option given\n"
           "here replaces the recorded one, e.g. --prompt to keep the picture's noise with a changed\n"
           "prompt.  A warning is printed when the weights differ from those recorded.\n"
           "A grid is written in its recorded shape, and a file written with --separate gives\n"
           "that one image of its batch again (the whole batch is generated, as the noise of an\n"
           "image depends on the draws before it); --grid or --separate choose another layout.\n"
           "Default output: IMAGE.regen.png.\n\n%s",
           gp_help());
}

int cmd_regenerate(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, CMD);
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    /* first pass: positionals and --help; the options are applied after the recorded ones */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return 0;
        }
    gen_params rec;
    gp_init(&rec);
    out_opts oo = {0};
    gen_params over;
    gp_init(&over);
    while (cli_next(&a)) {
        if (!a.name) {
            if (npos == 2) cli_usage_error(CMD, "unexpected argument '%s'", a.value);
            pos[npos++] = a.value;
        } else if (!out_option(&oo, &a) && !gp_option(&over, &a)) {
            cli_usage_error(CMD, "unknown option --%s", a.name);
        }
    }
    if (npos != 2) cli_usage_error(CMD, "IMAGE.png and MODEL_DIR are required");
    cdf_error err = {0};
    char *json = NULL;
    if (cdf_png_read_text(pos[0], "parameters", &json, &err)) {
        if (err.status == CDF_ERR_MISSING)
            snprintf(err.msg, sizeof err.msg, "%s: no cdiffusers generation parameters in this PNG", pos[0]);
        cli_fail(CMD, &err);
    }
    char msg[256];
    if (gp_from_json(&rec, json, msg, sizeof msg)) {
        fprintf(stderr, "cdiffusers %s: error: %s: %s\n", CMD, pos[0], msg);
        cdf_free(json);
        gp_free(&rec);
        return CLI_EXIT_FAIL;
    }
    const char *hash = NULL;
    int rec_r = 0, rec_c = 0;
    cJSON *h = cJSON_GetObjectItemCaseSensitive(rec.owned, "weights_hash");
    if (cJSON_IsString(h)) hash = h->valuestring;
    cdf_free(json);
    /* the recorded layout (a grid's shape, or which image of the batch a
     * --separate file holds), used for a PNG unless --grid or --separate
     * choose another */
    cJSON *grid = cJSON_GetObjectItemCaseSensitive(rec.owned, "grid");
    cJSON *index = cJSON_GetObjectItemCaseSensitive(rec.owned, "image_index");
    int bad_grid = grid && (!cJSON_IsString(grid) || out_parse_grid(grid->valuestring, &rec_r, &rec_c));
    int bad_index = index && !(cJSON_IsNumber(index) && index->valuedouble >= 0 && index->valuedouble < GP_MAX_LIST * 4096.0 &&
                               index->valuedouble == (double)(int)index->valuedouble);
    if (bad_grid || bad_index) {
        fprintf(stderr, "cdiffusers %s: error: %s: the recorded %s is not valid\n", CMD, pos[0],
                bad_grid ? "\"grid\" (RxC)" : "\"image_index\"");
        gp_free(&rec);
        return CLI_EXIT_FAIL;
    }
    rec.model = pos[1];
    gp_override(&rec, &over);
    /* recorded input pictures that moved are looked for beside the PNG */
    char png_dir[4096];
    const char *slash = strrchr(pos[0], '/');
    snprintf(png_dir, sizeof png_dir, "%.*s", slash ? (int)(slash - pos[0]) : 1, slash ? pos[0] : ".");
    rec.png_dir = png_dir;
    char defout[4200];
    if (!oo.out) {
        size_t L = strlen(pos[0]);
        snprintf(defout, sizeof defout, "%.*s.regen.png", (int)(L > 4 ? L - 4 : L), pos[0]);
        oo.out = defout;
    }
    if (!oo.grid_r && !oo.separate && cli_has_ext(oo.out, ".png")) {
        if (grid) {
            oo.grid_r = rec_r;
            oo.grid_c = rec_c;
        }
        if (index) oo.pick = (int)index->valuedouble + 1;
    }
    out_check(CMD, &oo);
    int rc = run_generation(CMD, &rec, &oo, hash);
    gp_free(&rec);
    return rc;
}
