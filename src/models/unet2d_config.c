#include "models/unet2d_config.h"

#include <math.h>
#include <string.h>

#include "io/json.h"
#include "tensor/ops.h"

static const char *const k_known[] = {
    "sample_size", "in_channels", "out_channels", "center_input_sample", "time_embedding_type",
    "time_embedding_dim", "freq_shift", "flip_sin_to_cos", "down_block_types", "up_block_types",
    "block_out_channels", "layers_per_block", "mid_block_scale_factor", "downsample_padding", "downsample_type",
    "upsample_type", "dropout", "act_fn", "attention_head_dim", "norm_num_groups", "attn_norm_num_groups",
    "norm_eps", "resnet_time_scale_shift", "add_attention", "class_embed_type", "num_class_embeds",
    "num_train_timesteps", NULL};

/* Keys UNet2DModel cannot be built from when null (torch raises on None). */
static const char *const k_not_null[] = {
    "in_channels", "out_channels", "time_embedding_type", "freq_shift", "down_block_types", "up_block_types",
    "block_out_channels", "layers_per_block", "mid_block_scale_factor", "downsample_padding", "dropout", "act_fn",
    "norm_eps", "resnet_time_scale_shift", NULL};

/* Block types diffusers' get_down_block/get_up_block know but this build does not run. */
static const char *const k_other_down[] = {"CrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D",
                                           "SkipDownBlock2D", "AttnSkipDownBlock2D", "DownEncoderBlock2D",
                                           "AttnDownEncoderBlock2D", "KDownBlock2D", "KCrossAttnDownBlock2D", NULL};
static const char *const k_other_up[] = {"CrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D",
                                         "SkipUpBlock2D", "AttnSkipUpBlock2D", "UpDecoderBlock2D",
                                         "AttnUpDecoderBlock2D", "KUpBlock2D", "KCrossAttnUpBlock2D", NULL};

static int in_list(const char *s, const char *const *l) {
    for (; *l; l++)
        if (strcmp(s, *l) == 0) return 1;
    return 0;
}

static cdf_status parse_blocks(const cJSON *root, const char *path, const char *key, int down, cdf_block2d *out,
                               int *n, cdf_error *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    static const char *const def_down[] = {"DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"};
    static const char *const def_up[] = {"AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"};
    const char *names[CDF_UNET2D_MAX_BLOCKS];
    int cnt = 0;
    if (!a || cJSON_IsNull(a)) {
        for (int i = 0; i < 4; i++) names[i] = down ? def_down[i] : def_up[i];
        cnt = 4;
    } else {
        if (!cJSON_IsArray(a)) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be a list of block names", path, key);
        cnt = cJSON_GetArraySize(a);
        if (cnt < 1 || cnt > CDF_UNET2D_MAX_BLOCKS)
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' has %d entries (1..%d supported)", path, key, cnt,
                                 CDF_UNET2D_MAX_BLOCKS);
        for (int i = 0; i < cnt; i++) {
            const cJSON *it = cJSON_GetArrayItem(a, i);
            if (!cJSON_IsString(it)) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s'[%d] must be a string", path, key, i);
            names[i] = it->valuestring;
        }
    }
    for (int i = 0; i < cnt; i++) {
        const char *nm = names[i];
        if (strncmp(nm, "UNetRes", 7) == 0) nm += 7; /* diffusers strips this prefix */
        if (strcmp(nm, down ? "DownBlock2D" : "UpBlock2D") == 0)
            out[i] = CDF_BLOCK_PLAIN;
        else if (strcmp(nm, down ? "AttnDownBlock2D" : "AttnUpBlock2D") == 0)
            out[i] = CDF_BLOCK_ATTN;
        else if (strcmp(nm, down ? "ResnetDownsampleBlock2D" : "ResnetUpsampleBlock2D") == 0)
            out[i] = CDF_BLOCK_RESNET;
        else if (in_list(nm, down ? k_other_down : k_other_up))
            return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: field '%s'[%d]: block type \"%s\" is not supported yet",
                                 path, key, i, names[i]);
        else
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s'[%d]: unknown block type \"%s\"", path, key, i,
                                 names[i]);
    }
    *n = cnt;
    return CDF_OK;
}

static cdf_status get_choice(const cJSON *root, const char *path, const char *key, const char *def,
                             const char *const *choices, int *idx, cdf_error *err) {
    const char *v = def;
    cdf_status s = cdf_json_get_string(root, path, key, &v, err);
    if (s) return s;
    if (!v) v = def;
    for (int i = 0; choices[i]; i++)
        if (strcmp(v, choices[i]) == 0) {
            *idx = i;
            return CDF_OK;
        }
    return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' has unsupported value \"%s\"", path, key, v);
}

#define TRY(x)                  \
    do {                        \
        cdf_status s_ = (x);    \
        if (s_) return s_;      \
    } while (0)

static cdf_status get_int32(const cJSON *root, const char *path, const char *key, int *out, int64_t lo, int64_t hi,
                            cdf_error *err) {
    int64_t v = *out;
    if (!cdf_json_has(root, key)) return CDF_OK; /* keep the default */
    TRY(cdf_json_get_int(root, path, key, &v, err));
    if (v < lo || v > hi)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' = %lld is out of range [%lld, %lld]", path, key,
                             (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return CDF_OK;
}

cdf_status cdf_unet2d_config_parse(const cJSON *root, const char *path, cdf_unet2d_config *cfg, cdf_error *err) {
    memset(cfg, 0, sizeof *cfg);
    TRY(cdf_json_config_class(root, path, "UNet2DModel", k_known, err));
    TRY(cdf_json_not_null(root, path, k_not_null, err));

    /* sample_size: null, int, or [h, w] */
    const cJSON *ss = cJSON_GetObjectItemCaseSensitive(root, "sample_size");
    if (ss && cJSON_IsArray(ss)) {
        if (cJSON_GetArraySize(ss) != 2)
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'sample_size' must be an int or [height, width]", path);
        int64_t *v = NULL;
        size_t n = 0;
        TRY(cdf_json_get_int_array(root, path, "sample_size", &v, &n, err));
        cfg->sample_h = (int)v[0];
        cfg->sample_w = (int)v[1];
        int bad = v[0] < 1 || v[1] < 1 || v[0] > 65536 || v[1] > 65536;
        cdf_free(v);
        if (bad) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'sample_size' out of range", path);
    } else if (ss && !cJSON_IsNull(ss)) {
        TRY(get_int32(root, path, "sample_size", &cfg->sample_h, 1, 65536, err));
        cfg->sample_w = cfg->sample_h;
    }
    cfg->in_channels = 3;
    cfg->out_channels = 3;
    TRY(get_int32(root, path, "in_channels", &cfg->in_channels, 1, 4096, err));
    TRY(get_int32(root, path, "out_channels", &cfg->out_channels, 1, 4096, err));
    TRY(cdf_json_get_flag(root, path, "center_input_sample", &cfg->center_input_sample, err));
    static const char *const temb[] = {"positional", "fourier", "learned", NULL};
    int ti = 0;
    TRY(get_choice(root, path, "time_embedding_type", "positional", temb, &ti, err));
    cfg->time_embedding_type = (cdf_time_emb)ti;
    cfg->freq_shift = 0;
    TRY(cdf_json_get_double(root, path, "freq_shift", &cfg->freq_shift, err));
    if (!isfinite(cfg->freq_shift))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'freq_shift' must be a finite number", path);
    cfg->flip_sin_to_cos = 1;
    TRY(cdf_json_get_flag(root, path, "flip_sin_to_cos", &cfg->flip_sin_to_cos, err));

    int nd = 0, nu = 0;
    TRY(parse_blocks(root, path, "down_block_types", 1, cfg->down_types, &nd, err));
    TRY(parse_blocks(root, path, "up_block_types", 0, cfg->up_types, &nu, err));
    if (nd != nu)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: %d down_block_types but %d up_block_types (must be equal)", path,
                             nd, nu);
    cfg->num_blocks = nd;
    int64_t *boc = NULL;
    size_t nb = 0;
    TRY(cdf_json_get_int_array(root, path, "block_out_channels", &boc, &nb, err));
    if (!boc) {
        static const int def[4] = {224, 448, 672, 896};
        nb = 4;
        for (int i = 0; i < 4; i++) cfg->block_out_channels[i] = def[i];
    } else {
        for (size_t i = 0; i < nb && i < CDF_UNET2D_MAX_BLOCKS; i++) {
            if (boc[i] < 1 || boc[i] > 65536) {
                cdf_free(boc);
                return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'block_out_channels'[%zu] out of range", path, i);
            }
            cfg->block_out_channels[i] = (int)boc[i];
        }
        cdf_free(boc);
    }
    if ((int)nb != nd)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: %zu block_out_channels but %d down_block_types (must be equal)",
                             path, nb, nd);
    cfg->time_embedding_dim = 0;
    TRY(get_int32(root, path, "time_embedding_dim", &cfg->time_embedding_dim, 1, 1 << 20, err));
    if (!cfg->time_embedding_dim) cfg->time_embedding_dim = 4 * cfg->block_out_channels[0];
    cfg->layers_per_block = 2;
    TRY(get_int32(root, path, "layers_per_block", &cfg->layers_per_block, 1, 64, err));
    cfg->mid_block_scale_factor = 1.0;
    TRY(cdf_json_get_double(root, path, "mid_block_scale_factor", &cfg->mid_block_scale_factor, err));
    if (!(cfg->mid_block_scale_factor != 0.0) || !isfinite(cfg->mid_block_scale_factor))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'mid_block_scale_factor' must be a non-zero number", path);
    cfg->downsample_padding = 1;
    TRY(get_int32(root, path, "downsample_padding", &cfg->downsample_padding, 0, 16, err));
    static const char *const samp[] = {"conv", "resnet", NULL};
    TRY(get_choice(root, path, "downsample_type", "conv", samp, &cfg->downsample_resnet, err));
    TRY(get_choice(root, path, "upsample_type", "conv", samp, &cfg->upsample_resnet, err));
    TRY(cdf_json_get_double(root, path, "dropout", &cfg->dropout, err));
    if (!(cfg->dropout >= 0.0 && cfg->dropout <= 1.0)) /* torch.nn.Dropout raises */
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'dropout' = %g is not in [0, 1]", path, cfg->dropout);
    const char *act = "silu";
    TRY(cdf_json_get_string(root, path, "act_fn", &act, err));
    cfg->act_fn = cdf_act_from_name(act ? act : "silu");
    if (cfg->act_fn < 0) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'act_fn' has unsupported value \"%s\"", path, act);
    /* attention_head_dim: a missing key means 8, null means the block's width */
    const cJSON *ahd = cJSON_GetObjectItemCaseSensitive(root, "attention_head_dim");
    if (!ahd) {
        cfg->attention_head_dim = 8;
    } else if (cJSON_IsNull(ahd)) {
        cfg->attention_head_dim = 0;
    } else {
        TRY(get_int32(root, path, "attention_head_dim", &cfg->attention_head_dim, 1, 65536, err));
    }
    const cJSON *nng = cJSON_GetObjectItemCaseSensitive(root, "norm_num_groups");
    if (nng && cJSON_IsNull(nng))
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: field 'norm_num_groups' = null is not supported", path);
    cfg->norm_num_groups = 32;
    TRY(get_int32(root, path, "norm_num_groups", &cfg->norm_num_groups, 1, 65536, err));
    TRY(get_int32(root, path, "attn_norm_num_groups", &cfg->attn_norm_num_groups, 1, 65536, err));
    cfg->norm_eps = 1e-5;
    TRY(cdf_json_get_double(root, path, "norm_eps", &cfg->norm_eps, err));
    if (!(cfg->norm_eps > 0.0) || !isfinite(cfg->norm_eps))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'norm_eps' must be a positive finite number", path);
    static const char *const rts[] = {"default", "scale_shift", NULL};
    const char *rv = NULL;
    TRY(cdf_json_get_string(root, path, "resnet_time_scale_shift", &rv, err));
    if (rv && strcmp(rv, "spatial") == 0)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: field 'resnet_time_scale_shift' = \"spatial\" is not supported", path);
    TRY(get_choice(root, path, "resnet_time_scale_shift", "default", rts, &cfg->scale_shift, err));
    cfg->add_attention = 1;
    TRY(cdf_json_get_flag(root, path, "add_attention", &cfg->add_attention, err));
    const char *cet = NULL;
    TRY(cdf_json_get_string(root, path, "class_embed_type", &cet, err));
    if (cet)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: field 'class_embed_type' = \"%s\": class-conditional UNets need class labels, which "
                             "DDPM/DDIM pipelines do not pass",
                             path, cet);
    if (cdf_json_has(root, "num_class_embeds"))
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: field 'num_class_embeds' is set: class-conditional UNets are not supported", path);
    TRY(get_int32(root, path, "num_train_timesteps", &cfg->num_train_timesteps, 1, 1 << 24, err));
    if (cfg->time_embedding_type == CDF_TEMB_LEARNED && !cfg->num_train_timesteps)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: time_embedding_type \"learned\" needs field 'num_train_timesteps'", path);

    /* Structural checks diffusers would hit as torch errors. */
    for (int i = 0; i < nd; i++) {
        int c = cfg->block_out_channels[i];
        if (c % cfg->norm_num_groups != 0)
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s: block_out_channels[%d] = %d is not divisible by norm_num_groups = %d", path, i,
                                 c, cfg->norm_num_groups);
        if (cfg->attention_head_dim && (cfg->down_types[i] == CDF_BLOCK_ATTN || cfg->up_types[nd - 1 - i] == CDF_BLOCK_ATTN) &&
            c / cfg->attention_head_dim < 1)
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s: attention_head_dim = %d is larger than block_out_channels[%d] = %d", path,
                                 cfg->attention_head_dim, i, c);
    }
    /* the mid block's attention GroupNorm (nn.GroupNorm raises) */
    if (cfg->add_attention && cfg->attn_norm_num_groups && cfg->block_out_channels[nd - 1] % cfg->attn_norm_num_groups)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: field 'attn_norm_num_groups' = %d does not divide block_out_channels[%d] = %d", path,
                             cfg->attn_norm_num_groups, nd - 1, cfg->block_out_channels[nd - 1]);
    if (cfg->time_embedding_type == CDF_TEMB_POSITIONAL && cfg->block_out_channels[0] % 2)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: field 'block_out_channels'[0] = %d: a positional time embedding of odd width is not "
                             "supported",
                             path, cfg->block_out_channels[0]);
    return CDF_OK;
}
