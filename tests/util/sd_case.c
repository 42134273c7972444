#include "sd_case.h"

#include "io/json.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *sd_case_json(const char *case_dir) {
    char p[1200];
    snprintf(p, sizeof p, "%s/case.json", case_dir);
    char *t = tu_read_text(p);
    if (!t) return NULL;
    cJSON *j = NULL;
    cdf_error err = {0};
    if (cdf_json_parse(t, strlen(t), p, &j, &err)) fprintf(stderr, "%s\n", err.msg); /* Python writes -Infinity */
    free(t);
    return j;
}

const char *case_pipeline_in(const char *family, const cJSON *c) {
    static char buf[1200];
    const cJSON *call = cJSON_GetObjectItem(c, "call");
    snprintf(buf, sizeof buf, "%s", tu_data("%s/%s", family, cJSON_GetObjectItem(call, "pipeline")->valuestring));
    return buf;
}

const char *sd_case_pipeline(const cJSON *c) { return case_pipeline_in("sd", c); }

static const cJSON *array_info(const cJSON *c, const char *key) {
    return cJSON_GetObjectItem(cJSON_GetObjectItem(c, "arrays"), key);
}

int sd_case_dim(const cJSON *c, const char *key, int d) {
    const cJSON *a = array_info(c, key);
    return a ? cJSON_GetArrayItem(cJSON_GetObjectItem(a, "shape"), d)->valueint : 0;
}

void *case_array_raw(const char *case_dir, const cJSON *c, const char *key, size_t elsize, size_t *n) {
    const cJSON *a = array_info(c, key);
    if (!a) return NULL;
    size_t cnt = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(a, "shape")) cnt *= (size_t)d->valueint;
    char p[1600];
    snprintf(p, sizeof p, "%s/%s", case_dir, cJSON_GetObjectItem(a, "file")->valuestring);
    if (n) *n = cnt;
    return tu_load_bin(p, cnt, elsize);
}

float *sd_case_array(const char *case_dir, const cJSON *c, const char *key, size_t *n) {
    return case_array_raw(case_dir, c, key, sizeof(float), n);
}

double sd_case_atol(const cJSON *c, const char *key) {
    const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "suggested_tolerance"), key);
    const cJSON *a = t ? cJSON_GetObjectItem(t, "atol") : NULL;
    return a ? a->valuedouble : 0.0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int sd_case_list(char ***out) { return case_list_in("sd", out); }

/* How many golden cases each family holds: a test that finds another number
 * (a missing or emptied folder, a case added without updating this) fails
 * instead of passing on what it did not run. */
static const struct { const char *family; int count; } k_case_counts[] = {
    {"ddpm", 11}, {"sd", 19}, {"unclip", 10}, {"sd_img2img", 12}, {"sdxl", 16},
};

int case_list_in(const char *family, char ***out) {
    int expect = -1;
    for (size_t i = 0; i < sizeof k_case_counts / sizeof k_case_counts[0]; i++)
        if (!strcmp(k_case_counts[i].family, family)) expect = k_case_counts[i].count;
    char root[1200];
    snprintf(root, sizeof root, "%s", tu_data("%s/cases", family));
    DIR *d = opendir(root);
    int n = 0, cap = 64;
    char **v = malloc(sizeof *v * (size_t)cap);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) v = realloc(v, sizeof *v * (size_t)(cap *= 2));
        size_t len = strlen(root) + strlen(e->d_name) + 2;
        v[n] = malloc(len);
        snprintf(v[n], len, "%s/%s", root, e->d_name);
        n++;
    }
    if (d) closedir(d);
    if (n != expect) {
        fprintf(stderr, "%s: %d golden cases found, %d expected (tests/util/sd_case.c k_case_counts)\n", root, n,
                expect);
        exit(1);
    }
    qsort(v, (size_t)n, sizeof *v, by_name);
    *out = v;
    return n;
}

int case_names_in(const char *family, char names[][256], int max) {
    char **dirs = NULL;
    int n = case_list_in(family, &dirs);
    if (n > max) {
        fprintf(stderr, "%s: %d cases, room for %d\n", family, n, max);
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        const char *base = strrchr(dirs[i], '/');
        snprintf(names[i], 256, "%s", base ? base + 1 : dirs[i]);
        free(dirs[i]);
    }
    free(dirs);
    return n;
}
