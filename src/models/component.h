/* The load steps every model component shares: read <dir>/config.json,
 * parse it into the model's config, open the weights (variants, shards),
 * walk the module tree strictly by checkpoint names; and the same walk in
 * record mode to list a config's state_dict without weights. */
#ifndef CDF_MODELS_COMPONENT_H
#define CDF_MODELS_COMPONENT_H

#include <cjson/cJSON.h>

#include "models/nn.h"

/* One model class.  The model struct is calloc'd with `size` bytes; its
 * parsed config sits at cfg_offset (cfg_size bytes) and its owned
 * cdf_weights pointer at weights_offset. */
typedef struct cdf_component_class {
    const char *name;                 /* "UNet2DModel" */
    const char *record_what;          /* folder name used in record mode ("unet") */
    size_t size, cfg_offset, cfg_size, weights_offset;
    int legacy_attention;             /* accept query/key/value/proj_attn names */
    cdf_status (*parse)(const cJSON *root, const char *path, void *cfg, cdf_error *err);
    cdf_status (*walk)(cdf_loader *ld, void *model);
    void (*free)(void *model);        /* frees what walk allocated, the weights and the model */
} cdf_component_class;

/* New model of cls from folder dir; caller frees it with cls->free. */
cdf_status cdf_component_load(const cdf_component_class *cls, const char *dir, const char *variant, void **out,
                              cdf_error *err);
/* Lists the state_dict of a model with config cfg through fn (no weights). */
cdf_status cdf_component_describe(const cdf_component_class *cls, const void *cfg, cdf_param_record_fn fn,
                                  void *user, cdf_error *err);

#endif
