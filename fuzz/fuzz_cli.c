/* The command line as the program parses it.  The CLI reports usage errors
 * by printing and calling exit(); this harness links with -Wl,--wrap=exit so
 * such an exit jumps back here instead (the error path is a normal outcome).
 * The first input byte picks what the rest is:
 *   0: NUL-separated argv for `generate`'s option loop (gp_option,
 *      out_option, out_check), then the library options made from them;
 *   1: the JSON text of a PNG "parameters" chunk (regenerate's gp_from_json),
 *      then generators for its seeds;
 *   2: NUL-separated values for the number, shape, seed and --gpu parsers. */
#include <setjmp.h>

#include "fuzz_util.h"
#include "gen_params.h"
#include "run_gen.h"

static jmp_buf g_jmp;
static int g_armed;

void __real_exit(int code);
void __wrap_exit(int code) {
    if (g_armed) longjmp(g_jmp, code + 1);
    __real_exit(code);
}

#define MAX_ARGS 64

/* Splits data at NUL bytes into argv[1..] (argv[0] = cmd); returns argc. */
static int make_argv(char *buf, size_t n, char **argv, const char *cmd) {
    int argc = 1;
    argv[0] = (char *)cmd;
    size_t start = 0;
    for (size_t i = 0; i <= n && argc < MAX_ARGS; i++)
        if (i == n || buf[i] == 0) {
            argv[argc++] = buf + start;
            start = i + 1;
        }
    return argc;
}

static void check_options(const gen_params *p) {
    cdf_generate_options o;
    gp_to_options(p, &o);
    FZ_CHECK(o.num_prompts <= GP_MAX_LIST && o.num_negative_prompts <= GP_MAX_LIST);
    FZ_CHECK(p->nseeds >= 0 && p->nseeds <= GP_MAX_LIST);
    FZ_CHECK(o.batch_size >= 1 && o.num_images_per_prompt >= 1);
    FZ_CHECK(o.num_inference_steps >= 0 && o.height >= 0 && o.width >= 0 && o.clip_skip >= 0);
    for (int i = 0; i < p->nprompts; i++) FZ_CHECK(p->prompts[i] != NULL);
}

static void argv_mode(char *buf, size_t n) {
    char *argv[MAX_ARGS + 1];
    int argc = make_argv(buf, n, argv, "generate");
    argv[argc] = NULL;
    gen_params p;
    gp_init(&p);
    out_opts oo = {0};
    cli_args a;
    cli_args_init(&a, argc, argv, "generate");
    if (setjmp(g_jmp)) return; /* a usage error */
    g_armed = 1;
    while (cli_next(&a)) {
        if (!a.name) {
            if (p.model) cli_usage_error("generate", "unexpected argument '%s'", a.value);
            p.model = a.value;
        } else if (!gp_option(&p, &a) && !out_option(&oo, &a)) {
            cli_usage_error("generate", "unknown option --%s", a.name);
        }
    }
    out_check("generate", &oo);
    g_armed = 0;
    check_options(&p);
}

static void json_mode(const char *text) {
    gen_params p;
    gp_init(&p);
    char msg[256];
    int rc = gp_from_json(&p, text, msg, sizeof msg);
    if (rc == 0) {
        check_options(&p);
        FZ_CHECK(p.steps >= 1 && p.nseeds >= 1);
        cdf_generator *g[4];
        volatile int made = 0;
        if (!setjmp(g_jmp)) {
            g_armed = 1;
            for (int i = 0; i < p.nseeds && i < 4; i++) g[made++] = cli_make_generator("regenerate", &p.rng, p.seeds[i]);
        }
        g_armed = 0;
        for (int i = 0; i < made; i++) cdf_generator_free(g[i]);
    } else {
        FZ_CHECK(memchr(msg, 0, sizeof msg) && msg[0]);
    }
    gp_free(&p);
}

static void values_mode(char *buf, size_t n) {
    char *v[MAX_ARGS + 1];
    int nv = make_argv(buf, n, v, "");
    for (int i = 1; i < nv; i++) {
        volatile int which = i % 6;
        if (setjmp(g_jmp)) {
            g_armed = 0;
            continue;
        }
        g_armed = 1;
        if (which == 0) {
            long long x = cli_parse_int("randn", "--steps", v[i], 1, 1000000);
            FZ_CHECK(x >= 1 && x <= 1000000);
        } else if (which == 1) {
            (void)cli_parse_double("randn", "--eta", v[i]);
        } else if (which == 2) {
            cdf_tensor t;
            memset(&t, 0, sizeof t);
            t.ndim = cli_parse_shape("randn", v[i], t.shape, CDF_MAX_DIMS);
            FZ_CHECK(t.ndim >= 1 && t.ndim <= CDF_MAX_DIMS);
            for (int d = 0; d < t.ndim; d++) FZ_CHECK(t.shape[d] >= 1);
            (void)cdf_tensor_numel(&t);
        } else if (which == 3) {
            cli_rng r = {CDF_RNG_NUMPY, NULL, {0, 0}};
            cli_rng_gpu("randn", &r, v[i]);
        } else {
            cli_rng r = {which == 4 ? CDF_RNG_NUMPY : CDF_RNG_TORCH_CPU, NULL, {0, 0}};
            cdf_generator *g = cli_make_generator("randn", &r, v[i]);
            g_armed = 0;
            cdf_generator_free(g);
        }
        g_armed = 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char *buf = fz_cstr(data + 1, size - 1);
    switch (data[0] % 3) {
    case 0: argv_mode(buf, size - 1); break;
    case 1: json_mode(buf); break;
    default: values_mode(buf, size - 1); break;
    }
    g_armed = 0;
    free(buf);
    return 0;
}
