/* cdiffusers generate: DDPM/DDIM/PNDM, Stable Diffusion (text-to-image, image-to-image,
 * inpainting) and UnCLIP pipelines. */
#include <stdio.h>
#include <string.h>

#include "run_gen.h"

#define CMD "generate"

static void help(void) {
    printf("usage: cdiffusers generate MODEL_DIR [options]\n"
           "\n"
           "Runs the model folder's pipeline (model_index.json: DDPMPipeline, DDIMPipeline,\n"
           "PNDMPipeline, StableDiffusionPipeline and its Img2Img and Inpaint classes, or\n"
           "UnCLIPPipeline) exactly as diffusers does, with numpy\nGenerator(PCG64) noise as in "
           "mindone's reproducible pipelines, and prints abs_sum: np.abs(image).sum().\n"
           "\n%s"
           "output:\n"
           "  --out FILE                 .npy: float32 [B,H,W,C] in [0,1], exactly output_type=\"np\";\n"
           "                             .png: the image; a batch becomes one grid image\n"
           "  --grid RxC                 grid shape for a batch written as PNG (default near-square)\n"
           "  --separate                 with .png: one file per image, FILE-0.png, FILE-1.png, ...\n"
           "  --quiet                    no progress bar\n"
           "\n"
           "PNG files carry the generation parameters (JSON) in a text chunk named \"parameters\";\n"
           "'cdiffusers regenerate IMAGE.png MODEL_DIR' makes the same image again.\n",
           gp_help());
}

int cmd_generate(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, CMD);
    gen_params p;
    gp_init(&p);
    out_opts oo = {0};
    while (cli_next(&a)) {
        if (!a.name) {
            if (p.model) cli_usage_error(CMD, "unexpected argument '%s' (one MODEL_DIR only)", a.value);
            p.model = a.value;
        } else if (!strcmp(a.name, "help")) {
            help();
            return 0;
        } else if (!gp_option(&p, &a) && !out_option(&oo, &a)) {
            cli_usage_error(CMD, "unknown option --%s", a.name);
        }
    }
    if (!p.model) cli_usage_error(CMD, "MODEL_DIR is required");
    out_check(CMD, &oo);
    return run_generation(CMD, &p, &oo, NULL);
}
