/* Synthetic weights (golden SYNTHETIC_WEIGHTS.md): a seeded PCG64 normal
 * stream fills every tensor of a component's state_dict, walked in sorted
 * name order, so full-size models exist without a download. */
#ifndef CDF_MODELS_SYNTHETIC_H
#define CDF_MODELS_SYNTHETIC_H

#include "cdiffusers/core.h"

/* Copies the config folder config_dir to out_dir and fills each model
 * component with seeded weights; writes only inside out_dir, owns nothing
 * after return.
 *   - model_index.json is copied verbatim;
 *   - model components (UNet2DModel, UNet2DConditionModel, AutoencoderKL,
 *     CLIPTextModel, CLIPTextModelWithProjection, PriorTransformer,
 *     UnCLIPTextProjModel): <key>/config.json copied, and the state_dict, sorted by
 *     name, drawn from a fresh Generator(PCG64(seed)) per component and stored
 *     as dtype (CDF_F32, CDF_F16 or CDF_BF16: the float32 value rounded to
 *     nearest even) in <key>/diffusion_pytorch_model.safetensors, or
 *     <key>/model.safetensors for the "transformers" library;
 *   - schedulers: <key>/scheduler_config.json copied; tokenizers: every
 *     regular file of <key>/ copied;
 *   - null components are skipped; safety_checker, feature_extractor and
 *     image_encoder are skipped with a notice (the pipelines do not run them).
 * Every config is parsed before anything is written: components of other
 * classes are CDF_ERR_UNSUPPORTED naming them, bad configs CDF_ERR_CONFIG,
 * missing files CDF_ERR_MISSING. */
cdf_status cdf_make_synthetic(const char *config_dir, const char *out_dir, const char *seed, cdf_dtype dtype,
                              cdf_error *err);

#endif
