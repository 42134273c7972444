/* Running a generation from gen_params and writing its outputs (.npy, PNG
 * with parameters, grids or numbered files); shared by generate, regenerate
 * and batch.  The gen_* steps report errors in a cli_err instead of exiting,
 * so batch can record a job's failure and go on. */
#ifndef CDF_TOOLS_RUN_GEN_H
#define CDF_TOOLS_RUN_GEN_H

#include "gen_params.h"
#include "io/image.h"

typedef struct out_opts {
    const char *out;     /* .png / .npy or NULL */
    int grid_r, grid_c;  /* 0: near-square */
    int separate;        /* numbered PNG files */
    int pick;            /* 1 + the index of the one image to write (regenerate of a --separate file); 0: all */
    int quiet;           /* no progress bar */
    const char *progress_label; /* batch: "job 3/10" before the stage name on the bar; NULL: none */
} out_opts;

/* "RxC" (both in 1..4096) into rows and columns; -1 when it is not that. */
int out_parse_grid(const char *g, int *rows, int *cols);
/* Parses the output options (--out, --grid, --separate, --quiet); 0 if not one. */
int out_option(out_opts *oo, cli_args *a);
/* Checks out/grid/separate together (usage errors exit). */
void out_check(const char *cmd, const out_opts *oo);
/* The grid a PNG of B > 1 images (not --separate) is written as: --grid or near-square. */
int out_grid_shape(const out_opts *oo, int B, int *rows, int *cols, cli_err *e);

/* One generation made ready: options resolved, input pictures read, the
 * generators made, and the parameters its PNG will record. */
typedef struct gen_job {
    const char *cmd;
    cdf_pipeline *pipe;                /* borrowed */
    gen_params *p;                     /* borrowed; its seeds gain the OS seed when none was given */
    const out_opts *oo;                /* borrowed */
    cdf_generate_options o;            /* what the pipeline is called with */
    cdf_image pic, mpic;               /* the init picture and the mask picture as read */
    unsigned char *luma;               /* [H, W] the mask as greyscale */
    cdf_tensor init, mask;             /* views of pic and luma for o */
    char init_path[4096], mask_path[4096]; /* regenerate: pictures found beside the PNG */
    cdf_generator *gens[GP_MAX_LIST];  /* [ngens] one per seed */
    int ngens;
    int batch, height, width;          /* the images the run makes and their size */
    char os_seed[48];                  /* the seed taken from the OS when none was given, else "" */
    cJSON *params;                     /* the PNG's parameters without its layout (grid, image_index) */
    void *dump;                        /* --dump-dir state */
} gen_job;

/* Checks p against the loaded pipeline, reads the pictures, makes the
 * generators (a seed from the OS when none is given) and the parameters
 * (weights_hash: recorded when non-empty).  On error j holds nothing to free. */
int gen_prepare(gen_job *j, const char *cmd, cdf_pipeline *pipe, const char *weights_hash, gen_params *p,
                const out_opts *oo, cli_err *e);
/* Runs it: a progress bar unless quiet; stops at the next step once SIGINT
 * or SIGTERM came (gen_interrupted).  On success *img is the [B, H, W, C]
 * float32 images (cdf_tensor_free). */
int gen_run(gen_job *j, cdf_tensor *img, cli_err *e);
/* Writes img to oo->out (.npy, or PNG(s) with the parameters), atomically. */
int gen_write(gen_job *j, const cdf_tensor *img, cli_err *e);
void gen_job_free(gen_job *j);
/* The parameters a PNG of j's output records: j->params with the layout
 * grid ("RxC" or NULL) and index (>= 0: one image of the batch).  The
 * caller owns the object (cJSON_Delete); NULL when out of memory. */
cJSON *gen_file_params(const gen_job *j, const char *grid, int index);

/* Catches SIGINT and SIGTERM from now on: a run stops at its next step. */
void gen_catch_signals(void);
/* The signal caught (SIGINT, SIGTERM), or 0. */
int gen_interrupted(void);

/* generate / regenerate: loads the model, runs, prints "seed:" (OS seed)
 * and "abs_sum:", writes the output.  Returns the exit code (errors exit
 * with a message). */
int run_generation(const char *cmd, gen_params *p, const out_opts *oo, const char *expect_hash);

#endif
