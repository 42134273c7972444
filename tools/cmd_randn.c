/* cdiffusers randn: the noise randn_tensor gives, as .npy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "io/npy.h"

#define CMD "randn"

static void help(void) {
    printf("usage: cdiffusers randn --seed S [--seed S]... --shape 2,3,32,32 [--dtype float64|float32|float16]\n"
           "                       [--rng KIND] [--gpu GPU] --out x.npy\n"
           "\n"
           "Writes exactly the noise mindone's randn_tensor gives: each generator is\n"
           "np.random.Generator(np.random.PCG64(S)); standard_normal is drawn in float64 in C order\n"
           "and cast to --dtype (default float32).  One --seed: one generator draws the whole shape.\n"
           "Several seeds: one generator per batch element (their count must equal the first\n"
           "dimension), each drawing a (1, ...) slice.  S is a non-negative integer of any size, or\n"
           "[a,b,...] for list entropy, as numpy accepts.\n"
           "--rng picks the generator kind: numpy (default), torch-cpu, torch-cpu-avx2, torch-cuda (with\n"
           "--gpu NAME or SMSxTHREADS), numpy-legacy; the noise is then exactly what diffusers' randn_tensor\n"
           "gives with that generator (torch kinds: torch.randn(shape, generator=g, dtype=dtype)).\n");
}

int cmd_randn(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, CMD);
    const char *seeds[CLI_MAX_SEEDS], *shape_s = NULL, *out = NULL;
    int nseeds = 0;
    cdf_dtype dt = CDF_F32;
    cli_rng rng = {CDF_RNG_NUMPY, NULL, {0, 0}};
    while (cli_next(&a)) {
        if (!a.name) cli_usage_error(CMD, "unexpected argument '%s'", a.value);
        if (!strcmp(a.name, "help")) {
            help();
            return 0;
        } else if (!strcmp(a.name, "seed")) {
            if (nseeds == CLI_MAX_SEEDS) cli_usage_error(CMD, "too many --seed options");
            seeds[nseeds++] = cli_value(&a);
        } else if (!strcmp(a.name, "rng")) {
            cli_rng_kind(CMD, &rng, cli_value(&a));
        } else if (!strcmp(a.name, "gpu")) {
            cli_rng_gpu(CMD, &rng, cli_value(&a));
        } else if (!strcmp(a.name, "shape")) {
            shape_s = cli_value(&a);
        } else if (!strcmp(a.name, "dtype")) {
            const char *v = cli_value(&a);
            if (!strcmp(v, "float64")) dt = CDF_F64;
            else if (!strcmp(v, "float32")) dt = CDF_F32;
            else if (!strcmp(v, "float16")) dt = CDF_F16;
            else cli_usage_error(CMD, "--dtype must be float64, float32 or float16 (got '%s')", v);
        } else if (!strcmp(a.name, "out")) {
            out = cli_value(&a);
        } else {
            cli_usage_error(CMD, "unknown option --%s", a.name);
        }
    }
    if (!nseeds) cli_usage_error(CMD, "at least one --seed is required");
    if (!shape_s) cli_usage_error(CMD, "--shape is required");
    if (!out) cli_usage_error(CMD, "--out is required");
    if (!cli_has_ext(out, ".npy")) cli_usage_error(CMD, "--out must end in .npy (got '%s')", out);
    cdf_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.ndim = cli_parse_shape(CMD, shape_s, t.shape, CDF_MAX_DIMS);
    if (nseeds > 1 && (int64_t)nseeds != t.shape[0])
        cli_usage_error(CMD, "%d seeds given but the first dimension is %lld: give one seed, or one per element",
                        nseeds, (long long)t.shape[0]);
    int64_t n = cdf_tensor_numel(&t);
    if (n > (1LL << 32)) cli_usage_error(CMD, "--shape %s has too many elements (limit 2^32)", shape_s);
    t.data = malloc((size_t)n * cdf_dtype_size(dt));
    if (!t.data) {
        fprintf(stderr, "cdiffusers randn: error: out of memory for %lld elements\n", (long long)n);
        return CLI_EXIT_FAIL;
    }
    cdf_generator *gens[CLI_MAX_SEEDS];
    for (int i = 0; i < nseeds; i++) gens[i] = cli_make_generator(CMD, &rng, seeds[i]);
    cdf_error err = {0};
    if (cdf_randn_tensor(gens, (size_t)nseeds, t.shape, t.ndim, dt, t.data, &err)) cli_fail(CMD, &err);
    if (cdf_npy_write(out, &t, &err)) cli_fail(CMD, &err);
    for (int i = 0; i < nseeds; i++) cdf_generator_free(gens[i]);
    free(t.data);
    return 0;
}
