#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void cli_args_init(cli_args *a, int argc, char **argv, const char *cmd) {
    a->argc = argc;
    a->argv = argv;
    a->i = 1;
    a->name = NULL;
    a->value = NULL;
    a->cmd = cmd;
}

int cli_next(cli_args *a) {
    static char namebuf[64];
    if (a->i >= a->argc) return 0;
    const char *s = a->argv[a->i++];
    if (strncmp(s, "--", 2) == 0 && s[2]) {
        const char *eq = strchr(s, '=');
        size_t n = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
        if (n >= sizeof namebuf) cli_usage_error(a->cmd, "option '%s' is too long", s);
        memcpy(namebuf, s + 2, n);
        namebuf[n] = 0;
        a->name = namebuf;
        a->value = eq ? eq + 1 : NULL;
    } else if (s[0] == '-' && s[1] == 'h' && s[2] == 0) {
        a->name = "help";
        a->value = NULL;
    } else {
        a->name = NULL;
        a->value = s;
    }
    return 1;
}

const char *cli_value(cli_args *a) {
    if (a->value) return a->value;
    if (a->i >= a->argc) cli_usage_error(a->cmd, "option --%s needs a value", a->name);
    return a->argv[a->i++];
}

int cli_err_set(cli_err *e, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
    e->hint = code == CLI_EXIT_USAGE;
    return -1;
}

int cli_err_from(cli_err *e, const cdf_error *err) {
    cli_err_set(e, err->status == CDF_ERR_ARG ? CLI_EXIT_USAGE : CLI_EXIT_FAIL, "%s",
                err->msg[0] ? err->msg : cdf_status_message(err->status));
    e->hint = 0;
    return -1;
}

void cli_exit(const char *cmd, const cli_err *e) {
    fprintf(stderr, "cdiffusers %s: error: %s\n", cmd, e->msg);
    if (e->hint) fprintf(stderr, "(see 'cdiffusers %s --help')\n", cmd);
    exit(e->code);
}

void cli_usage_error(const char *cmd, const char *fmt, ...) {
    cli_err e = {CLI_EXIT_USAGE, 1, ""};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    cli_exit(cmd, &e);
}

void cli_fail(const char *cmd, const cdf_error *err) {
    cli_err e;
    cli_err_from(&e, err);
    cli_exit(cmd, &e);
}

int cli_try_int(const char *what, const char *s, long long lo, long long hi, long long *v, cli_err *e) {
    char *end = NULL;
    *v = strtoll(s, &end, 10);
    if (!*s || *end || *v < lo || *v > hi)
        return cli_err_set(e, CLI_EXIT_USAGE, "%s must be an integer in [%lld, %lld] (got '%s')", what, lo, hi, s);
    return 0;
}

int cli_try_double(const char *what, const char *s, double *v, cli_err *e) {
    char *end = NULL;
    *v = strtod(s, &end);
    if (!*s || *end || *v != *v) return cli_err_set(e, CLI_EXIT_USAGE, "%s must be a number (got '%s')", what, s);
    return 0;
}

long long cli_parse_int(const char *cmd, const char *what, const char *s, long long lo, long long hi) {
    long long v;
    cli_err e;
    if (cli_try_int(what, s, lo, hi, &v, &e)) cli_exit(cmd, &e);
    return v;
}

double cli_parse_double(const char *cmd, const char *what, const char *s) {
    double v;
    cli_err e;
    if (cli_try_double(what, s, &v, &e)) cli_exit(cmd, &e);
    return v;
}

int cli_parse_shape(const char *cmd, const char *s, int64_t *shape, int maxdims) {
    int n = 0;
    const char *p = s;
    if (!*p) cli_usage_error(cmd, "--shape is empty");
    while (*p) {
        char *end = NULL;
        if (*p < '0' || *p > '9') cli_usage_error(cmd, "bad --shape '%s': use comma-separated sizes like 2,3,32,32", s);
        long long v = strtoll(p, &end, 10);
        if (v < 1 || v > (1LL << 31)) cli_usage_error(cmd, "bad --shape '%s': each size must be 1..2^31", s);
        if (n == maxdims) cli_usage_error(cmd, "bad --shape '%s': at most %d dimensions", s, maxdims);
        shape[n++] = v;
        p = end;
        if (*p == ',') {
            p++;
            if (!*p) cli_usage_error(cmd, "bad --shape '%s': trailing comma", s);
        } else if (*p) {
            cli_usage_error(cmd, "bad --shape '%s': use comma-separated sizes like 2,3,32,32", s);
        }
    }
    return n;
}

int cli_try_rng_kind(cli_rng *r, const char *name, cli_err *e) {
    cdf_error err = {0};
    if (cdf_rng_kind_parse(name, &r->kind, &err)) return cli_err_set(e, CLI_EXIT_USAGE, "--rng: %s", err.msg);
    return 0;
}

int cli_try_rng_gpu(cli_rng *r, const char *text, cli_err *e) {
    cdf_error err = {0};
    r->gpu = text;
    if (text[0] >= '0' && text[0] <= '9') {
        char *x = NULL;
        unsigned long sms = strtoul(text, &x, 10), tps = 0;
        if (x && (*x == 'x' || *x == 'X')) tps = strtoul(x + 1, &x, 10);
        if (!x || *x || sms > 100000 || tps > 100000)
            return cli_err_set(e, CLI_EXIT_USAGE,
                               "--gpu must be a GPU name or SMS[xTHREADS] such as 132x2048 (got '%s')", text);
        r->cuda.sm_count = (uint32_t)sms;
        r->cuda.threads_per_sm = (uint32_t)tps;
        return 0;
    }
    if (cdf_cuda_preset(text, &r->cuda, &err)) return cli_err_set(e, CLI_EXIT_USAGE, "--gpu: %s", err.msg);
    return 0;
}

void cli_rng_kind(const char *cmd, cli_rng *r, const char *name) {
    cli_err e;
    if (cli_try_rng_kind(r, name, &e)) cli_exit(cmd, &e);
}

void cli_rng_gpu(const char *cmd, cli_rng *r, const char *text) {
    cli_err e;
    if (cli_try_rng_gpu(r, text, &e)) cli_exit(cmd, &e);
}

int cli_try_generator(const cli_rng *r, const char *seed_text, cdf_generator **g, cli_err *e) {
    cdf_error err = {0};
    err.on_notice = cli_print_notice;
    cdf_status s;
    *g = NULL;
    if (seed_text[0] == '[') {
        /* list entropy "[1,2,3]" */
        char buf[4096];
        if (strlen(seed_text) >= sizeof buf) return cli_err_set(e, CLI_EXIT_USAGE, "seed list '%.40s...' is too long", seed_text);
        snprintf(buf, sizeof buf, "%s", seed_text + 1);
        char *close = strrchr(buf, ']');
        if (!close || close[1]) return cli_err_set(e, CLI_EXIT_USAGE, "bad seed list '%s': use [a,b,c]", seed_text);
        *close = 0;
        const char *items[256];
        size_t n = 0;
        char *save = NULL;
        for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
            if (n == 256) return cli_err_set(e, CLI_EXIT_USAGE, "seed list '%s' is too long", seed_text);
            items[n++] = tok;
        }
        if (!n) return cli_err_set(e, CLI_EXIT_USAGE, "seed list '%s' is empty", seed_text);
        s = cdf_generator_new_list(r->kind, items, n, g, &err);
    } else if (r->kind == CDF_RNG_TORCH_CUDA) {
        s = cdf_generator_new_torch_cuda(seed_text, &r->cuda, g, &err);
    } else {
        s = cdf_generator_new(r->kind, seed_text, g, &err);
    }
    if (s) {
        cli_err_set(e, CLI_EXIT_USAGE, "%s", err.msg);
        e->hint = 0;
        return -1;
    }
    return 0;
}

cdf_generator *cli_make_generator(const char *cmd, const cli_rng *r, const char *seed_text) {
    cdf_generator *g = NULL;
    cli_err e;
    if (cli_try_generator(r, seed_text, &g, &e)) cli_exit(cmd, &e);
    return g;
}

int cli_try_os_seed(const cli_rng *r, char *buf, size_t len, cli_err *e) {
    cdf_error err = {0};
    cdf_status s = r->kind == CDF_RNG_NUMPY ? cdf_seed_from_os(buf, len, &err) : cdf_seed_from_os_u32(buf, len, &err);
    return s ? cli_err_from(e, &err) : 0;
}

void cli_print_notice(cdf_notice_level level, const char *msg, void *user) {
    (void)user;
    fprintf(stderr, "%s: %s\n", level == CDF_NOTICE_WARN ? "warning" : "notice", msg);
}

void cli_progress(const char *label, int done, int total) {
    if (!isatty(STDERR_FILENO) || total <= 0) return;
    int width = 30, fill = (int)((long long)done * width / total);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r%s [%s] %d/%d", label, bar, done, total);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
}

int cli_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 256 ? 256 : (int)n);
}

int cli_has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), e = strlen(ext);
    return n >= e && strcasecmp(path + n - e, ext) == 0;
}

void cli_format_f32(char *buf, size_t n, float v) {
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)v);
        if ((float)strtod(buf, NULL) == v) return;
    }
}
