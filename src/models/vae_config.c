/* AutoencoderKL config.json (diffusers 0.32) -> cdf_vae_config. */
#include <math.h>
#include <string.h>

#include "io/json.h"
#include "models/vae.h"
#include "tensor/ops.h"

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

static const char *const k_known[] = {
    "in_channels", "out_channels", "down_block_types", "up_block_types", "block_out_channels",
    "layers_per_block", "act_fn", "latent_channels", "norm_num_groups", "sample_size", "scaling_factor",
    "shift_factor", "latents_mean", "latents_std", "force_upcast", "use_quant_conv", "use_post_quant_conv",
    "mid_block_add_attention", NULL};

/* Block types diffusers' get_down_block / get_up_block know but this VAE does not run. */
static const char *const k_other_down[] = {"DownBlock2D", "ResnetDownsampleBlock2D", "AttnDownBlock2D",
                                           "CrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D", "SkipDownBlock2D",
                                           "AttnSkipDownBlock2D", "AttnDownEncoderBlock2D", "KDownBlock2D",
                                           "KCrossAttnDownBlock2D", NULL};
static const char *const k_other_up[] = {"UpBlock2D", "ResnetUpsampleBlock2D", "CrossAttnUpBlock2D",
                                         "SimpleCrossAttnUpBlock2D", "AttnUpBlock2D", "SkipUpBlock2D",
                                         "AttnSkipUpBlock2D", "AttnUpDecoderBlock2D", "KUpBlock2D",
                                         "KCrossAttnUpBlock2D", NULL};

static int in_list(const char *s, const char *const *l) {
    for (; *l; l++)
        if (strcmp(s, *l) == 0) return 1;
    return 0;
}

static int is_null(const cJSON *root, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    return v && cJSON_IsNull(v);
}

/* Fields diffusers cannot build a model from when they are null. */
static cdf_status not_null(const cJSON *root, const char *path, const char *key, cdf_error *err) {
    if (is_null(root, key))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must not be null", path, key);
    return CDF_OK;
}

static cdf_status get_int32(const cJSON *root, const char *path, const char *key, int *out, int64_t lo, int64_t hi,
                            cdf_error *err) {
    int64_t v = *out;
    TRY(not_null(root, path, key, err));
    TRY(cdf_json_get_int(root, path, key, &v, err));
    if (v < lo || v > hi)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' = %lld is out of range [%lld, %lld]", path, key,
                             (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return CDF_OK;
}

/* One list of block types: all must be `want` (after diffusers strips "UNetRes"). */
static cdf_status parse_blocks(const cJSON *root, const char *path, const char *key, const char *want,
                               const char *const *others, int *n, cdf_error *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!a) {
        *n = 1; /* default: (want,) */
        return CDF_OK;
    }
    if (!cJSON_IsArray(a))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be a list of block names", path, key);
    int cnt = cJSON_GetArraySize(a);
    if (cnt < 1 || cnt > CDF_VAE_MAX_BLOCKS)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' has %d entries (1..%d supported)", path, key, cnt,
                             CDF_VAE_MAX_BLOCKS);
    for (int i = 0; i < cnt; i++) {
        const cJSON *it = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsString(it))
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s'[%d] must be a string", path, key, i);
        const char *nm = it->valuestring;
        if (strncmp(nm, "UNetRes", 7) == 0) nm += 7;
        if (strcmp(nm, want) == 0) continue;
        if (in_list(nm, others))
            return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                                 "%s: field '%s'[%d]: block type \"%s\" is not supported in AutoencoderKL (only %s)",
                                 path, key, i, it->valuestring, want);
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s'[%d]: unknown block type \"%s\"", path, key, i,
                             it->valuestring);
    }
    *n = cnt;
    return CDF_OK;
}

/* null or a list of numbers (latents_mean / latents_std); *present set. */
static cdf_status parse_stats(const cJSON *root, const char *path, const char *key, int *present, cdf_error *err) {
    double *v = NULL;
    size_t n = 0;
    TRY(cdf_json_get_double_array(root, path, key, &v, &n, err));
    *present = v != NULL;
    cdf_free(v);
    return CDF_OK;
}

static cdf_status parse_sample_size(const cJSON *root, const char *path, cdf_vae_config *cfg, cdf_error *err) {
    const cJSON *ss = cJSON_GetObjectItemCaseSensitive(root, "sample_size");
    cfg->sample_h = cfg->sample_w = 32;
    if (!ss) return CDF_OK;
    if (cJSON_IsArray(ss)) {
        int64_t *v = NULL;
        size_t n = 0;
        TRY(cdf_json_get_int_array(root, path, "sample_size", &v, &n, err));
        int bad = n < 1 || v[0] < 1 || v[0] > 65536 || (n > 1 && (v[1] < 1 || v[1] > 65536));
        if (!bad) {
            cfg->sample_h = (int)v[0]; /* diffusers uses sample_size[0] for tiling */
            cfg->sample_w = (int)(n > 1 ? v[1] : v[0]);
        }
        cdf_free(v);
        if (bad) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'sample_size' must be an int or [height, width]", path);
        return CDF_OK;
    }
    TRY(get_int32(root, path, "sample_size", &cfg->sample_h, 1, 65536, err));
    cfg->sample_w = cfg->sample_h;
    return CDF_OK;
}

cdf_status cdf_vae_config_parse(const cJSON *root, const char *path, cdf_vae_config *cfg, cdf_error *err) {
    memset(cfg, 0, sizeof *cfg);
    TRY(cdf_json_config_class(root, path, "AutoencoderKL", k_known, err));

    cfg->in_channels = 3;
    cfg->out_channels = 3;
    TRY(get_int32(root, path, "in_channels", &cfg->in_channels, 1, 4096, err));
    TRY(get_int32(root, path, "out_channels", &cfg->out_channels, 1, 4096, err));
    int nd = 0, nu = 0;
    TRY(not_null(root, path, "down_block_types", err));
    TRY(not_null(root, path, "up_block_types", err));
    TRY(parse_blocks(root, path, "down_block_types", "DownEncoderBlock2D", k_other_down, &nd, err));
    TRY(parse_blocks(root, path, "up_block_types", "UpDecoderBlock2D", k_other_up, &nu, err));

    TRY(not_null(root, path, "block_out_channels", err));
    int64_t *boc = NULL;
    size_t nb = 0;
    TRY(cdf_json_get_int_array(root, path, "block_out_channels", &boc, &nb, err));
    if (!boc) {
        nb = 1;
        cfg->block_out_channels[0] = 64;
    } else {
        int bad = nb < 1 || nb > CDF_VAE_MAX_BLOCKS;
        for (size_t i = 0; !bad && i < nb; i++) {
            bad = boc[i] < 1 || boc[i] > 65536;
            if (!bad) cfg->block_out_channels[i] = (int)boc[i];
        }
        cdf_free(boc);
        if (bad)
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s: field 'block_out_channels' must hold 1..%d channel counts in [1, 65536]", path,
                                 CDF_VAE_MAX_BLOCKS);
    }
    cfg->num_blocks = (int)nb;
    if (nd != cfg->num_blocks || nu != cfg->num_blocks)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: %d down_block_types and %d up_block_types for %d block_out_channels (must be equal)",
                             path, nd, nu, cfg->num_blocks);

    cfg->layers_per_block = 1;
    TRY(get_int32(root, path, "layers_per_block", &cfg->layers_per_block, 1, 64, err));
    const char *act = "silu";
    TRY(not_null(root, path, "act_fn", err));
    TRY(cdf_json_get_string(root, path, "act_fn", &act, err));
    cfg->act_fn = cdf_act_from_name(act);
    if (cfg->act_fn < 0)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'act_fn' has unsupported value \"%s\"", path, act);
    cfg->latent_channels = 4;
    TRY(get_int32(root, path, "latent_channels", &cfg->latent_channels, 1, 4096, err));
    cfg->norm_num_groups = 32;
    TRY(get_int32(root, path, "norm_num_groups", &cfg->norm_num_groups, 1, 65536, err));
    TRY(parse_sample_size(root, path, cfg, err));

    cfg->scaling_factor = 0.18215;
    TRY(not_null(root, path, "scaling_factor", err));
    TRY(cdf_json_get_double(root, path, "scaling_factor", &cfg->scaling_factor, err));
    if (!(cfg->scaling_factor != 0.0) || !isfinite(cfg->scaling_factor))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'scaling_factor' must be a non-zero number", path);
    cfg->has_shift_factor = cdf_json_has(root, "shift_factor");
    TRY(cdf_json_get_double(root, path, "shift_factor", &cfg->shift_factor, err));
    if (cfg->has_shift_factor && !isfinite(cfg->shift_factor))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'shift_factor' must be a finite number or null", path);
    TRY(parse_stats(root, path, "latents_mean", &cfg->has_latents_mean, err));
    TRY(parse_stats(root, path, "latents_std", &cfg->has_latents_std, err));

    /* force_upcast (bool, typed float in diffusers) only makes fp16 pipelines
     * run the VAE in float32; this build always computes in float32. */
    cfg->force_upcast = 1;
    const cJSON *fu = cJSON_GetObjectItemCaseSensitive(root, "force_upcast");
    if (fu && cJSON_IsNumber(fu))
        cfg->force_upcast = fu->valuedouble != 0.0;
    else
        TRY(cdf_json_get_flag(root, path, "force_upcast", &cfg->force_upcast, err));
    cfg->use_quant_conv = cfg->use_post_quant_conv = cfg->mid_block_add_attention = 1;
    TRY(cdf_json_get_flag(root, path, "use_quant_conv", &cfg->use_quant_conv, err));
    TRY(cdf_json_get_flag(root, path, "use_post_quant_conv", &cfg->use_post_quant_conv, err));
    TRY(cdf_json_get_flag(root, path, "mid_block_add_attention", &cfg->mid_block_add_attention, err));

    /* Structural checks diffusers would hit as torch errors. */
    for (int i = 0; i < cfg->num_blocks; i++)
        if (cfg->block_out_channels[i] % cfg->norm_num_groups != 0)
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s: block_out_channels[%d] = %d is not divisible by norm_num_groups = %d", path, i,
                                 cfg->block_out_channels[i], cfg->norm_num_groups);
    return CDF_OK;
}
