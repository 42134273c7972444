/* Running a generation from gen_params and writing its outputs (.npy, PNG
 * with parameters, grids or numbered files); shared by generate and
 * regenerate. */
#ifndef CDF_TOOLS_RUN_GEN_H
#define CDF_TOOLS_RUN_GEN_H

#include "gen_params.h"

typedef struct out_opts {
    const char *out;     /* .png / .npy or NULL */
    int grid_r, grid_c;  /* 0: near-square */
    int separate;        /* numbered PNG files */
    int pick;            /* 1 + the index of the one image to write (regenerate of a --separate file); 0: all */
    int quiet;           /* no progress bar */
} out_opts;

/* "RxC" (both in 1..4096) into rows and columns; -1 when it is not that. */
int out_parse_grid(const char *g, int *rows, int *cols);
/* Parses the output options (--out, --grid, --separate, --quiet); 0 if not one. */
int out_option(out_opts *oo, cli_args *a);
/* Checks out/grid/separate together (usage errors exit). */
void out_check(const char *cmd, const out_opts *oo);
/* Loads the model, runs, prints "seed:" (OS seed) and "abs_sum:", writes
 * the output.  Returns the exit code (errors exit with a message). */
int run_generation(const char *cmd, gen_params *p, const out_opts *oo, const char *expect_hash);

#endif
