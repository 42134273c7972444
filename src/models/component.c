#include "models/component.h"

#include <stdio.h>
#include <string.h>

#include "io/json.h"

#define FIELD(m, off) ((void *)((char *)(m) + (off)))

cdf_status cdf_component_load(const cdf_component_class *cls, const char *dir, const char *variant, void **out,
                              cdf_error *err) {
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *root = NULL;
    cdf_status s = cdf_json_load(path, &root, err);
    if (s) return s;
    void *m = cdf_calloc(1, cls->size);
    if (!m) {
        cJSON_Delete(root);
        return cdf_error_set(err, CDF_ERR_NOMEM, "out of memory loading %s", dir);
    }
    s = cls->parse(root, path, FIELD(m, cls->cfg_offset), err);
    cJSON_Delete(root);
    cdf_weights **w = FIELD(m, cls->weights_offset);
    if (!s) s = cdf_weights_open_dir(dir, variant, w, err);
    if (!s) {
        cdf_loader ld = {*w, err, dir, cls->legacy_attention, NULL, NULL};
        s = cls->walk(&ld, m);
    }
    if (s) {
        cls->free(m);
        return s;
    }
    *out = m;
    return CDF_OK;
}

cdf_status cdf_component_describe(const cdf_component_class *cls, const void *cfg, cdf_param_record_fn fn,
                                  void *user, cdf_error *err) {
    void *m = cdf_calloc(1, cls->size);
    if (!m) return cdf_error_set(err, CDF_ERR_NOMEM, "out of memory describing a %s", cls->name);
    memcpy(FIELD(m, cls->cfg_offset), cfg, cls->cfg_size);
    cdf_loader ld = {NULL, err, cls->record_what, 0, fn, user};
    cdf_status s = cls->walk(&ld, m);
    cls->free(m);
    return s;
}
