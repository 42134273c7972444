/* Reading golden pipeline cases (tests/data/<family>/cases/<name>/case.json:
 * sd, unclip): case.json, its raw arrays and suggested tolerances. */
#ifndef CDF_TEST_SD_CASE_H
#define CDF_TEST_SD_CASE_H

#include <cjson/cJSON.h>

#include "testutil.h"

/* Parsed case.json (caller frees with cJSON_Delete); NULL when unreadable. */
cJSON *sd_case_json(const char *case_dir);
/* Pipeline folder of an SD case (static buffer). */
const char *sd_case_pipeline(const cJSON *c);
/* Pipeline folder of a case of tests/data/<family> (static buffer). */
const char *case_pipeline_in(const char *family, const cJSON *c);
/* Raw array `key` of the case (elsize bytes per element), count in *n (malloc'd). */
void *case_array_raw(const char *case_dir, const cJSON *c, const char *key, size_t elsize, size_t *n);
/* float32 array `key` of the case, with its element count in *n (malloc'd). */
float *sd_case_array(const char *case_dir, const cJSON *c, const char *key, size_t *n);
/* Shape dim d of array `key`. */
int sd_case_dim(const cJSON *c, const char *key, int d);
/* suggested_tolerance.<key>.atol */
double sd_case_atol(const cJSON *c, const char *key);
/* Every case folder under tests/data/sd/cases, sorted; returns count (paths malloc'd). */
int sd_case_list(char ***out);
/* The same under tests/data/<family>/cases (ddpm, sd, unclip).  Exits
 * non-zero, with a message, when the folder does not hold exactly the number
 * of cases the family is known to have: a test never passes on zero cases. */
int case_list_in(const char *family, char ***out);
/* The case folder names (not paths) of the family, sorted, into names[max]; exits like case_list_in. */
int case_names_in(const char *family, char names[][256], int max);

#endif
