/* cdiffusers command line: subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "cdiffusers %s - reproducible diffusion-model inference (diffusers-format models)\n"
            "\n"
            "usage: cdiffusers COMMAND [ARGS...]\n"
            "\n"
            "commands:\n"
            "  generate MODEL_DIR      run a pipeline (DDPM, DDIM, PNDM, Stable Diffusion, SDXL, UnCLIP) on a folder\n"
            "  regenerate IMAGE MODEL  make an image again from the parameters its PNG carries\n"
            "  batch MODEL JOBS.jsonl  a manifest of generate jobs: sharded (Slurm, MPI, Kubernetes), resumable\n"
            "  tokenize MODEL_DIR TEXT the 77 token ids Stable Diffusion's text encoder gets\n"
            "  randn                   write the noise randn_tensor gives for seeds and a shape (.npy)\n"
            "  grid A.png B.png ...    tile images into one grid image\n"
            "  make-synthetic CFG OUT  fill a config folder with seeded synthetic weights\n"
            "  bench MODEL_DIR         time a UNet, VAE, text encoder or pipeline call (JSON lines)\n"
            "  version                 print the version\n"
            "\n"
            "Run 'cdiffusers COMMAND --help' for a command's options.\n"
            "By default --seed S gives np.random.Generator(np.random.PCG64(S)); --rng picks torch's CPU\n"
            "or CUDA generators or numpy's legacy RandomState instead.\n",
            CDF_VERSION_STRING);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *c = argv[1];
    if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(c, "--version") || !strcmp(c, "version")) {
        printf("cdiffusers %s\n", CDF_VERSION_STRING);
        return 0;
    }
    if (!strcmp(c, "generate")) return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(c, "regenerate")) return cmd_regenerate(argc - 1, argv + 1);
    if (!strcmp(c, "batch")) return cmd_batch(argc - 1, argv + 1);
    if (!strcmp(c, "tokenize")) return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(c, "randn")) return cmd_randn(argc - 1, argv + 1);
    if (!strcmp(c, "grid")) return cmd_grid(argc - 1, argv + 1);
    if (!strcmp(c, "make-synthetic")) return cmd_make_synthetic(argc - 1, argv + 1);
    if (!strcmp(c, "bench")) return cmd_bench(argc - 1, argv + 1);
    fprintf(stderr, "cdiffusers: error: unknown command '%s'\n\n", c);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
