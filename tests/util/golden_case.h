/* Loading a golden DDPM/DDIM case (tests/data/ddpm/cases/<name>/case.json)
 * and running it through the pipeline with every intermediate captured. */
#ifndef CDF_TEST_GOLDEN_CASE_H
#define CDF_TEST_GOLDEN_CASE_H

#include "testutil.h"

typedef struct golden_case {
    char dir[1024];       /* case folder */
    char model_dir[1024]; /* resolved model folder (synthetic weights made on demand) */
    char name[256];
    int ddim;             /* DDIMPipeline */
    int batch, steps;
    double eta;
    int gen_list;         /* one generator per image */
    int nseeds;
    char seeds[16][64];
    double tol_unet, tol_image, tol_mean, tol_final, tol_abs_rtol;
    double abs_sum_f64;
    int h, w, c;
} golden_case;

/* Captured run outputs (malloc'd). */
typedef struct golden_run {
    float *noise;       /* [B, C, H, W] */
    float *unet_out0;   /* [B, C, H, W] */
    float *step_noise0; /* [B, C, H, W] or NULL */
    float *traj;        /* [min(steps,10), B, C, H, W] */
    float *final_sample;/* [B, C, H, W] */
    float *image;       /* [B, H, W, C] */
    size_t n;           /* B*C*H*W */
    int ntraj;
} golden_run;

/* Parses case.json; returns 0 on success.  tmp_root: where synthetic models go. */
int golden_case_load(const char *case_dir, const char *tmp_root, golden_case *gc);
/* Runs the case with `threads` threads; only images [first, first+count) of
 * the case's generator list when count > 0 (batch invariance checks). */
int golden_case_run(const golden_case *gc, int threads, int first, int count, golden_run *out);
void golden_run_free(golden_run *r);
/* Loads a float32 golden file of the case. */
float *golden_case_file(const golden_case *gc, const char *file, size_t count);

#endif
