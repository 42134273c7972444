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

/* An error a command reports instead of exiting at once (batch goes on with
 * the next job): the message and the exit code it would give. */
typedef struct cli_err {
    int code;        /* CLI_EXIT_USAGE or CLI_EXIT_FAIL */
    int hint;        /* print "(see 'cdiffusers CMD --help')" after it */
    char msg[1024];
} cli_err;
/* Sets e (code, printf message; the --help hint for a usage error); returns -1. */
int cli_err_set(cli_err *e, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* e from a library error (CDF_ERR_ARG exits as a usage error, without the hint); returns -1. */
int cli_err_from(cli_err *e, const cdf_error *err);
/* Prints e as cli_usage_error or cli_fail do and exits with its code. */
void cli_exit(const char *cmd, const cli_err *e)
#if defined(__GNUC__)
    __attribute__((noreturn))
#endif
    ;

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

/* Strict integer / double parsing into *v; -1 with a usage error in e naming `what`. */
int cli_try_int(const char *what, const char *s, long long lo, long long hi, long long *v, cli_err *e);
int cli_try_double(const char *what, const char *s, double *v, cli_err *e);
/* The same, exiting with a usage error. */
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

/* Parses --rng NAME / --gpu NAME|SMS[xTHREADS] into r; -1 with a usage error in e. */
int cli_try_rng_kind(cli_rng *r, const char *name, cli_err *e);
int cli_try_rng_gpu(cli_rng *r, const char *text, cli_err *e);
/* The same, exiting on bad text. */
void cli_rng_kind(const char *cmd, cli_rng *r, const char *name);
void cli_rng_gpu(const char *cmd, cli_rng *r, const char *text);
/* Makes a generator of r's kind from a seed argument (numpy: "[a,b]" is list
 * entropy) into *g; notices (fewer seed bits used) go to stderr; -1 with a
 * usage error in e on a bad seed. */
int cli_try_generator(const cli_rng *r, const char *seed_text, cdf_generator **g, cli_err *e);
/* The same, exiting on a bad seed. */
cdf_generator *cli_make_generator(const char *cmd, const cli_rng *r, const char *seed_text);
/* A fresh seed from the OS valid for r's kind, into buf (>= 48 bytes); -1 with e on failure. */
int cli_try_os_seed(const cli_rng *r, char *buf, size_t len, cli_err *e);

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
int cmd_batch(int argc, char **argv);

#endif
