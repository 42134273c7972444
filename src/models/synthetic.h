/* Synthetic weights (golden SYNTHETIC_WEIGHTS.md): a seeded PCG64 normal
 * stream fills every tensor of a component's state_dict, walked in sorted
 * name order, so full-size models exist without a download. */
#ifndef CDF_MODELS_SYNTHETIC_H
#define CDF_MODELS_SYNTHETIC_H

#include "cdiffusers/core.h"

/* Copies the config folder config_dir (model_index.json and each component's
 * config) to out_dir and writes each model component's weights, drawn from
 * Generator(PCG64(seed)) per component, stored as dtype (CDF_F32, CDF_F16 or
 * CDF_BF16: the float32 value rounded to nearest even).  Components this
 * build cannot describe are CDF_ERR_UNSUPPORTED naming them. */
cdf_status cdf_make_synthetic(const char *config_dir, const char *out_dir, const char *seed, cdf_dtype dtype,
                              cdf_error *err);

#endif
