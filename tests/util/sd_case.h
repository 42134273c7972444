/* Reading golden Stable Diffusion cases (tests/data/sd/cases/<name>/case.json). */
#ifndef CDF_TEST_SD_CASE_H
#define CDF_TEST_SD_CASE_H

#include <cjson/cJSON.h>

#include "testutil.h"

/* Parsed case.json (caller frees with cJSON_Delete); NULL when unreadable. */
cJSON *sd_case_json(const char *case_dir);
/* Pipeline folder of the case (static buffer). */
const char *sd_case_pipeline(const cJSON *c);
/* float32 array `key` of the case, with its element count in *n (malloc'd). */
float *sd_case_array(const char *case_dir, const cJSON *c, const char *key, size_t *n);
/* Shape dim d of array `key`. */
int sd_case_dim(const cJSON *c, const char *key, int d);
/* suggested_tolerance.<key>.atol */
double sd_case_atol(const cJSON *c, const char *key);
/* Every case folder under tests/data/sd/cases, sorted; returns count (paths malloc'd). */
int sd_case_list(char ***out);

#endif
