#include "batch_manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The id of a line: a string usable as a file stem, a non-negative integer,
 * or by default the line number. */
static void line_id(batch_line *l) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(l->obj, "id");
    if (!v || cJSON_IsNull(v)) {
        snprintf(l->id, sizeof l->id, "%ld", l->line);
        return;
    }
    if (cJSON_IsNumber(v)) {
        if (!(v->valuedouble >= 0 && v->valuedouble < 9007199254740992.0) || v->valuedouble != (double)(long long)v->valuedouble) {
            snprintf(l->err, sizeof l->err, "\"id\" must be a string or a non-negative integer");
            return;
        }
        snprintf(l->id, sizeof l->id, "%lld", (long long)v->valuedouble);
        return;
    }
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    size_t n = s ? strlen(s) : 0;
    int ok = s && n >= 1 && n <= BATCH_ID_MAX && s[0] != '.';
    for (size_t i = 0; ok && i < n; i++) ok = (unsigned char)s[i] >= 0x20 && s[i] != '/' && s[i] != '\\' && s[i] != 0x7f;
    if (!ok) {
        snprintf(l->err, sizeof l->err,
                 "\"id\" must be a file stem: 1 to %d characters, no '/', '\\' or control characters, not starting with "
                 "'.'", BATCH_ID_MAX);
        return;
    }
    memcpy(l->id, s, n + 1);
}

static void parse_line(batch_line *l, const char *text, size_t len) {
    while (len && (text[len - 1] == '\r' || text[len - 1] == ' ' || text[len - 1] == '\t')) len--;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t')) i++;
    if (i == len || text[i] == '#') {
        l->blank = 1;
        return;
    }
    const char *end = NULL;
    l->obj = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!l->obj || end != text + len) {
        size_t at = l->obj ? (size_t)(end - text) : (cJSON_GetErrorPtr() ? (size_t)(cJSON_GetErrorPtr() - text) : 0);
        if (at > len) at = len;
        snprintf(l->err, sizeof l->err, "not one JSON object: parse error at column %zu", at + 1);
        cJSON_Delete(l->obj);
        l->obj = NULL;
        return;
    }
    if (!cJSON_IsObject(l->obj)) {
        snprintf(l->err, sizeof l->err, "not a JSON object");
        return;
    }
    line_id(l);
}

static int by_id(const void *a, const void *b) {
    const batch_line *x = *(batch_line *const *)a, *y = *(batch_line *const *)b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* A later line with an id already taken fails (one output file each). */
static int mark_repeats(batch_manifest *m, cli_err *e) {
    batch_line **v = malloc((size_t)(m->nlines ? m->nlines : 1) * sizeof *v);
    if (!v) return cli_err_set(e, CLI_EXIT_FAIL, "out of memory");
    long n = 0;
    for (long i = 0; i < m->nlines; i++)
        if (m->lines[i].id[0]) v[n++] = &m->lines[i];
    qsort(v, (size_t)n, sizeof *v, by_id);
    for (long i = 1; i < n; i++) {
        long first = i;
        while (first > 0 && !strcmp(v[first - 1]->id, v[i]->id)) first--;
        if (first != i && !v[i]->err[0])
            snprintf(v[i]->err, sizeof v[i]->err, "id \"%s\" is also line %ld's (each job writes its own file)", v[i]->id,
                     v[first]->line);
    }
    free(v);
    return 0;
}

int batch_manifest_read(const char *path, batch_manifest *m, cli_err *e) {
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f) return cli_err_set(e, CLI_EXIT_FAIL, "%s: cannot open the manifest: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 > cap) {
            char *t = cap < ((size_t)1 << 31) ? realloc(text, cap = cap * 2 + 65536) : NULL;
            if (!t) {
                free(text);
                fclose(f);
                return cli_err_set(e, CLI_EXIT_FAIL, "%s: out of memory reading the manifest (or over 2 GiB)", path);
            }
            text = t;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (!got) break;
    }
    int rd = ferror(f);
    fclose(f);
    long lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    if (len && text[len - 1] != '\n') lines++;
    m->lines = calloc((size_t)(lines ? lines : 1), sizeof *m->lines);
    if (rd || !m->lines) {
        free(text);
        free(m->lines);
        m->lines = NULL;
        return cli_err_set(e, CLI_EXIT_FAIL, "%s: %s", path, rd ? "cannot read the manifest" : "out of memory");
    }
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && text[j] != '\n') j++;
        batch_line *l = &m->lines[m->nlines++];
        l->line = m->nlines;
        parse_line(l, text + i, j - i);
        i = j + 1;
    }
    free(text);
    return mark_repeats(m, e);
}

void batch_manifest_free(batch_manifest *m) {
    for (long i = 0; i < m->nlines; i++) cJSON_Delete(m->lines[i].obj);
    free(m->lines);
    memset(m, 0, sizeof *m);
}

/* One scalar JSON value as option text: a string as it is, a number in its
 * shortest exact form (whole numbers as integers). */
static int scalar_text(const char *key, const cJSON *v, cJSON *strings, const char **out, cli_err *e) {
    if (cJSON_IsString(v)) {
        *out = v->valuestring;
        return 0;
    }
    if (!cJSON_IsNumber(v)) return cli_err_set(e, CLI_EXIT_USAGE, "\"%s\" must be a string or a number", key);
    char buf[64];
    double d = v->valuedouble;
    if (d == (double)(long long)d && d > -9007199254740992.0 && d < 9007199254740992.0)
        snprintf(buf, sizeof buf, "%lld", (long long)d);
    else if (!strcmp(key, "seed"))
        return cli_err_set(e, CLI_EXIT_USAGE, "\"seed\" %.17g is not a whole number below 2^53: give it as a string", d);
    else
        snprintf(buf, sizeof buf, "%.17g", d);
    cJSON *s = cJSON_CreateString(buf);
    if (!s || !cJSON_AddItemToArray(strings, s)) {
        cJSON_Delete(s);
        return cli_err_set(e, CLI_EXIT_FAIL, "out of memory");
    }
    *out = s->valuestring;
    return 0;
}

/* Sets option name from key's value: a flag from a boolean, a size pair
 * from [a, b], a list option from each element of an array. */
static int set_key(gen_params *p, const char *key, const char *name, const cJSON *v, cJSON *strings, cli_err *e) {
    static const char *const lists[] = {"prompt", "negative-prompt", "seed", "prompt-2", "negative-prompt-2"};
    static const char *const pairs[] = {"original-size", "target-size", "crops-coords-top-left"};
    int kind = gp_option_kind(name), list = 0, pair = 0;
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) list |= !strcmp(name, lists[i]);
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) pair |= !strcmp(name, pairs[i]);
    const char *text = NULL;
    if (kind == 1) {
        if (!cJSON_IsBool(v)) return cli_err_set(e, CLI_EXIT_USAGE, "\"%s\" must be true or false", key);
        /* karras: false is --no-karras (and no_karras: false is --karras) */
        const char *flag = cJSON_IsTrue(v) ? name : !strcmp(name, "karras") ? "no-karras" : "karras";
        return gp_set(p, flag, NULL, e) < 0 ? -1 : 0;
    }
    if (pair && cJSON_IsArray(v)) {
        const cJSON *a = cJSON_GetArrayItem(v, 0), *b = cJSON_GetArrayItem(v, 1);
        if (cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(a) || !cJSON_IsNumber(b))
            return cli_err_set(e, CLI_EXIT_USAGE, "\"%s\" must be [A, B] or \"A,B\"", key);
        char buf[80];
        snprintf(buf, sizeof buf, "%.17g,%.17g", a->valuedouble, b->valuedouble);
        cJSON *s = cJSON_CreateString(buf);
        if (!s || !cJSON_AddItemToArray(strings, s)) {
            cJSON_Delete(s);
            return cli_err_set(e, CLI_EXIT_FAIL, "out of memory");
        }
        text = s->valuestring;
    } else if (list && cJSON_IsArray(v)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            if (scalar_text(key, it, strings, &text, e) || gp_set(p, name, text, e) < 0) return -1;
        }
        return 0;
    } else if (scalar_text(key, v, strings, &text, e)) {
        return -1;
    }
    return gp_set(p, name, text, e) < 0 ? -1 : 0;
}

int batch_job_params(const cJSON *obj, gen_params *p, out_opts *oo, cJSON *strings, cli_err *e) {
    const cJSON *v;
    cJSON_ArrayForEach(v, obj) {
        const char *key = v->string;
        if (cJSON_GetObjectItemCaseSensitive(obj, key) != v)
            return cli_err_set(e, CLI_EXIT_USAGE, "key \"%.80s\" appears twice", key);
        if (!strcmp(key, "id") || cJSON_IsNull(v)) continue;
        if (!strcmp(key, "grid")) {
            if (!cJSON_IsString(v) || out_parse_grid(v->valuestring, &oo->grid_r, &oo->grid_c))
                return cli_err_set(e, CLI_EXIT_USAGE, "\"grid\" must look like \"2x2\"");
            continue;
        }
        char name[64];
        size_t n = strlen(key);
        if (n >= sizeof name || strchr(key, '-')) return cli_err_set(e, CLI_EXIT_USAGE, "unknown key \"%.80s\"", key);
        for (size_t i = 0; i <= n; i++) name[i] = key[i] == '_' ? '-' : key[i];
        if (!strcmp(name, "variant") || !strcmp(name, "pipeline") || !strcmp(name, "threads"))
            return cli_err_set(e, CLI_EXIT_USAGE, "\"%s\" is the same for every job: give --%s to batch", key, name);
        if (!strcmp(name, "dump-dir") || !gp_option_kind(name))
            return cli_err_set(e, CLI_EXIT_USAGE, "unknown key \"%.80s\"", key);
        if (set_key(p, key, name, v, strings, e)) {
            if (e->msg[0] != '"') { /* gp_set's message names the option: say the key too */
                char m[sizeof e->msg];
                snprintf(m, sizeof m, "\"%.80s\": %.900s", key, e->msg);
                memcpy(e->msg, m, sizeof m);
            }
            return -1;
        }
    }
    return 0;
}
