/* cdiffusers grid: make_image_grid for PNG files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "io/image.h"
#include "io/png.h"

#define CMD "grid"

static void help(void) {
    printf("usage: cdiffusers grid A.png B.png ... --rows R --cols C --out grid.png\n"
           "\n"
           "Tiles the images row by row like diffusers' make_image_grid (rows * cols must equal the\n"
           "number of images; all images the same size).  Without --rows/--cols a near-square\n"
           "shape is chosen and empty cells stay black.\n");
}

int cmd_grid(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, CMD);
    const char **files = calloc((size_t)argc, sizeof *files);
    int n = 0, rows = 0, cols = 0;
    const char *out = NULL;
    if (!files) return CLI_EXIT_FAIL;
    while (cli_next(&a)) {
        if (!a.name) files[n++] = a.value;
        else if (!strcmp(a.name, "help")) {
            help();
            free(files);
            return 0;
        } else if (!strcmp(a.name, "rows")) rows = (int)cli_parse_int(CMD, "--rows", cli_value(&a), 1, 4096);
        else if (!strcmp(a.name, "cols")) cols = (int)cli_parse_int(CMD, "--cols", cli_value(&a), 1, 4096);
        else if (!strcmp(a.name, "out")) out = cli_value(&a);
        else cli_usage_error(CMD, "unknown option --%s", a.name);
    }
    if (!n) cli_usage_error(CMD, "no input images");
    if (!out) cli_usage_error(CMD, "--out is required");
    if (!cli_has_ext(out, ".png")) cli_usage_error(CMD, "--out must end in .png (got '%s')", out);
    if ((rows == 0) != (cols == 0)) cli_usage_error(CMD, "give both --rows and --cols, or neither");
    if (rows && rows * cols != n)
        cli_usage_error(CMD, "--rows %d x --cols %d = %d cells but %d images were given", rows, cols, rows * cols, n);
    if (!rows) cdf_grid_shape_auto(n, &rows, &cols);
    cdf_image *ims = calloc((size_t)n, sizeof *ims);
    cdf_error err = {0};
    if (!ims) return CLI_EXIT_FAIL;
    for (int i = 0; i < n; i++)
        if (cdf_png_read(files[i], &ims[i], &err)) cli_fail(CMD, &err);
    cdf_image g;
    if (cdf_image_grid(ims, n, rows, cols, &g, &err)) cli_fail(CMD, &err);
    const char *keys[1] = {"Software"}, *vals[1] = {"cdiffusers " CDF_VERSION_STRING};
    if (cdf_png_write(out, &g, keys, vals, 1, &err)) cli_fail(CMD, &err);
    cdf_image_free(&g);
    for (int i = 0; i < n; i++) cdf_image_free(&ims[i]);
    free(ims);
    free(files);
    return 0;
}
