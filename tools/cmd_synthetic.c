/* cdiffusers make-synthetic: seeded weights for a config folder. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "models/synthetic.h"

#define CMD "make-synthetic"

static void help(void) {
    printf("usage: cdiffusers make-synthetic CONFIG_DIR OUT_DIR --seed N [--dtype f32|f16|bf16]\n"
           "\n"
           "Copies a diffusers config folder (model_index.json, each component's config, scheduler and\n"
           "tokenizer files) to OUT_DIR and fills each model component (UNet2DModel,\n"
           "UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTextModelWithProjection,\n"
           "PriorTransformer, UnCLIPTextProjModel) with weights\n"
           "from the seeded protocol of SYNTHETIC_WEIGHTS.md: per component one\n"
           "np.random.Generator(PCG64(N)) walks the state_dict names in sorted order; conv/linear\n"
           "weights z/sqrt(fan_in), 1-D weights 1+0.1z, biases 0.1z, rounded to float32 (then to\n"
           "--dtype).  The result loads like a downloaded model, with no download.\n");
}

int cmd_make_synthetic(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, CMD);
    const char *pos[2] = {NULL, NULL}, *seed = NULL;
    int npos = 0;
    cdf_dtype dt = CDF_F32;
    while (cli_next(&a)) {
        if (!a.name) {
            if (npos == 2) cli_usage_error(CMD, "unexpected argument '%s'", a.value);
            pos[npos++] = a.value;
        } else if (!strcmp(a.name, "help")) {
            help();
            return 0;
        } else if (!strcmp(a.name, "seed")) {
            seed = cli_value(&a);
        } else if (!strcmp(a.name, "dtype")) {
            const char *v = cli_value(&a);
            if (!strcmp(v, "f32")) dt = CDF_F32;
            else if (!strcmp(v, "f16")) dt = CDF_F16;
            else if (!strcmp(v, "bf16")) dt = CDF_BF16;
            else cli_usage_error(CMD, "--dtype must be f32, f16 or bf16 (got '%s')", v);
        } else {
            cli_usage_error(CMD, "unknown option --%s", a.name);
        }
    }
    if (npos != 2) cli_usage_error(CMD, "CONFIG_DIR and OUT_DIR are required");
    if (!seed) cli_usage_error(CMD, "--seed is required");
    cdf_error err = {0};
    err.on_notice = cli_print_notice;
    if (cdf_make_synthetic(pos[0], pos[1], seed, dt, &err)) cli_fail(CMD, &err);
    fprintf(stderr, "wrote %s\n", pos[1]);
    return 0;
}
