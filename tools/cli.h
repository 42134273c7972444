/* Shared pieces of the cdiffusers command line: argument scanning, number
 * parsing, error and progress printing.  Only tools/ code may exit. */
#ifndef CDF_TOOLS_CLI_H
#define CDF_TOOLS_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "cdiffusers.h"

#define CLI_MAX_SEEDS 1024

/* Exit codes: 0 ok, 1 runtime failure (bad files, models...), 2 usage error. */
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* Argument scanner over argv[1..argc): options "--name value" or
 * "--name=value", everything else positional. */
typedef struct cli_args {
    int argc;
    char **argv;
    int i;              /* next index */
    const char *name;   /* current option name without "--", or NULL for a positional */
    const char *value;  /* the option's "=value" part, or the positional itself */
    const char *cmd;    /* subcommand, for messages */
} cli_args;

void cli_args_init(cli_args *a, int argc, char **argv, const char *cmd);
/* Advances; 0 at the end. */
int cli_next(cli_args *a);
/* The current option's value (from "=v" or the next argument); exits with a
 * usage error when missing. */
const char *cli_value(cli_args *a);

/* Usage error: prints "cdiffusers CMD: error: ..." and a hint, exits 2. */
void cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3), noreturn))
#endif
    ;
/* Runtime error from a library status: prints one line, exits 1. */
void cli_fail(const char *cmd, const cdf_error *err)
#if defined(__GNUC__)
    __attribute__((noreturn))
#endif
    ;

/* Strict integer / double parsing; exits with a usage error naming `what`. */
long long cli_parse_int(const char *cmd, const char *what, const char *s, long long lo, long long hi);
double cli_parse_double(const char *cmd, const char *what, const char *s);
/* "2,3,32,32" -> shape; exits with a usage error on a bad string. */
int cli_parse_shape(const char *cmd, const char *s, int64_t *shape, int maxdims);

/* A seed argument: a non-negative decimal integer, or "[a,b,...]" list entropy. */
typedef struct cli_seed {
    const char *text;   /* as given */
} cli_seed;
/* The generator kind and (torch-cuda) GPU of a run. */
typedef struct cli_rng {
    cdf_rng_kind kind;       /* CDF_RNG_NUMPY unless --rng */
    const char *gpu;         /* --gpu text or NULL */
    cdf_cuda_options cuda;   /* from --gpu */
} cli_rng;

/* Parses --rng NAME / --gpu NAME|SMS[xTHREADS] into r (exits on bad text). */
void cli_rng_kind(const char *cmd, cli_rng *r, const char *name);
void cli_rng_gpu(const char *cmd, cli_rng *r, const char *text);
/* Makes a generator of r's kind from a seed argument (numpy: "[a,b]" is list
 * entropy); notices (fewer seed bits used) go to stderr; exits on a bad seed. */
cdf_generator *cli_make_generator(const char *cmd, const cli_rng *r, const char *seed_text);
/* A fresh seed from the OS valid for r's kind, into buf (>= 48 bytes). */
void cli_os_seed(const char *cmd, const cli_rng *r, char *buf, size_t len);

/* Notice printer for cdf_error.on_notice (stderr, one line each). */
void cli_print_notice(cdf_notice_level level, const char *msg, void *user);
/* Progress bar on stderr when it is a terminal. */
void cli_progress(const char *label, int done, int total);
/* Default thread count: online processors (at least 1). */
int cli_default_threads(void);
/* 1 if path ends with ext (case-insensitive), e.g. ".png". */
int cli_has_ext(const char *path, const char *ext);
/* Shortest decimal repr of a float32 that reads back exactly (numpy's repr). */
void cli_format_f32(char *buf, size_t n, float v);

int cmd_generate(int argc, char **argv);
int cmd_regenerate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_randn(int argc, char **argv);
int cmd_grid(int argc, char **argv);
int cmd_make_synthetic(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
