#include "models/unet2d_cond_config.h"

#include <math.h>
#include <string.h>

#include "io/json.h"
#include "tensor/ops.h"

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
    } while (0)

static const char *const k_known[] = {
    "sample_size", "in_channels", "out_channels", "center_input_sample", "flip_sin_to_cos", "freq_shift",
    "down_block_types", "mid_block_type", "up_block_types", "only_cross_attention", "block_out_channels",
    "layers_per_block", "downsample_padding", "mid_block_scale_factor", "dropout", "act_fn", "norm_num_groups",
    "norm_eps", "cross_attention_dim", "transformer_layers_per_block", "reverse_transformer_layers_per_block",
    "encoder_hid_dim", "encoder_hid_dim_type", "attention_head_dim", "num_attention_heads", "dual_cross_attention",
    "use_linear_projection", "class_embed_type", "addition_embed_type", "addition_time_embed_dim",
    "num_class_embeds", "upcast_attention", "resnet_time_scale_shift", "resnet_skip_time_act",
    "resnet_out_scale_factor", "time_embedding_type", "time_embedding_dim", "time_embedding_act_fn",
    "timestep_post_act", "time_cond_proj_dim", "conv_in_kernel", "conv_out_kernel",
    "projection_class_embeddings_input_dim", "attention_type", "class_embeddings_concat",
    "mid_block_only_cross_attention", "cross_attention_norm", "addition_embed_type_num_heads", NULL};

/* Keys UNet2DConditionModel cannot be built from when null (torch raises on None). */
static const char *const k_not_null[] = {
    "in_channels", "out_channels", "freq_shift", "down_block_types", "up_block_types", "block_out_channels",
    "only_cross_attention", "layers_per_block", "downsample_padding", "mid_block_scale_factor", "dropout", "act_fn",
    "norm_eps", "cross_attention_dim", "transformer_layers_per_block", "resnet_out_scale_factor",
    "time_embedding_type", "conv_in_kernel", "conv_out_kernel", NULL};

/* Fields SD 1.x/2.x leave at their default; another value is not supported. */
static cdf_status must_be_null(const cJSON *root, const char *path, const char *key, cdf_error *err) {
    if (!cdf_json_has(root, key)) return CDF_OK;
    char *txt = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(root, key));
    cdf_status s = cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: field '%s' = %s is not supported (only null)", path,
                                 key, txt ? txt : "?");
    cdf_free(txt);
    return s;
}

static cdf_status must_be_false(const cJSON *root, const char *path, const char *key, cdf_error *err) {
    int v = 0;
    TRY(cdf_json_get_bool(root, path, key, &v, err));
    if (v) return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: field '%s' = true is not supported", path, key);
    return CDF_OK;
}

/* An int or a list of n ints into out[n]; missing/null keeps out. */
static cdf_status int_or_list(const cJSON *root, const char *path, const char *key, int n, int *out, int lo,
                              cdf_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return CDF_OK;
    if (cJSON_IsNumber(v)) {
        int64_t x = 0;
        TRY(cdf_json_get_int(root, path, key, &x, err));
        if (x < lo || x > (1 << 20))
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' = %lld is out of range", path, key, (long long)x);
        for (int i = 0; i < n; i++) out[i] = (int)x;
        return CDF_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be an integer or a list of %d integers", path,
                             key, n);
    for (int i = 0; i < n; i++) {
        const cJSON *it = cJSON_GetArrayItem(v, i);
        if (cJSON_IsArray(it))
            return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: field '%s'[%d]: nested lists are not supported", path,
                                 key, i);
        if (!cJSON_IsNumber(it) || floor(it->valuedouble) != it->valuedouble || it->valuedouble < lo ||
            it->valuedouble > (1 << 20))
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s'[%d] must be an integer >= %d", path, key, i, lo);
        out[i] = (int)it->valuedouble;
    }
    return CDF_OK;
}

static cdf_status bool_or_list(const cJSON *root, const char *path, const char *key, int n, int *out,
                               cdf_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return CDF_OK;
    if (cJSON_IsBool(v)) {
        for (int i = 0; i < n; i++) out[i] = cJSON_IsTrue(v);
        return CDF_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be true/false or a list of %d of them", path,
                             key, n);
    for (int i = 0; i < n; i++) {
        const cJSON *it = cJSON_GetArrayItem(v, i);
        if (!cJSON_IsBool(it))
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s'[%d] must be true or false", path, key, i);
        out[i] = cJSON_IsTrue(it);
    }
    return CDF_OK;
}

/* down_block_types / up_block_types into cdf_unetc_block_type values; a
 * missing or null list is diffusers' SD default.  names: the four class
 * names in cdf_unetc_block_type order. */
static cdf_status block_types(const cJSON *root, const char *path, const char *key, const char *const names[4],
                              int down, int *out, int *n, cdf_error *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    static const char *const def_down[] = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                           "DownBlock2D"};
    static const char *const def_up[] = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
    int cnt = a && cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 4;
    if (a && !cJSON_IsNull(a) && !cJSON_IsArray(a))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' must be a list of block names", path, key);
    if (cnt < 1 || cnt > CDF_UNETC_MAX_BLOCKS)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' has %d entries (1..%d supported)", path, key, cnt,
                             CDF_UNETC_MAX_BLOCKS);
    for (int i = 0; i < cnt; i++) {
        const char *nm;
        if (a && cJSON_IsArray(a)) {
            const cJSON *it = cJSON_GetArrayItem(a, i);
            if (!cJSON_IsString(it))
                return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s'[%d] must be a string", path, key, i);
            nm = it->valuestring;
        } else {
            nm = down ? def_down[i] : def_up[i];
        }
        const char *base = strncmp(nm, "UNetRes", 7) == 0 ? nm + 7 : nm;
        int t = -1;
        for (int k = 0; k < 4 && t < 0; k++)
            if (strcmp(base, names[k]) == 0) t = k;
        if (t < 0)
            return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                                 "%s: field '%s'[%d]: block type \"%s\" is not supported (%s, %s, %s, %s)", path, key,
                                 i, nm, names[0], names[1], names[2], names[3]);
        out[i] = t;
    }
    *n = cnt;
    return CDF_OK;
}

static cdf_status act_field(const cJSON *root, const char *path, const char *key, const char *def, int *out,
                            cdf_error *err) {
    const char *v = def;
    TRY(cdf_json_get_string(root, path, key, &v, err));
    if (!v) {
        *out = CDF_ACT_NONE;
        return CDF_OK;
    }
    int a = cdf_act_from_name(v);
    if (a < 0) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field '%s' has unsupported value \"%s\"", path, key, v);
    *out = a;
    return CDF_OK;
}

static cdf_status string_is(const cJSON *root, const char *path, const char *key, const char *def, const char *want,
                            cdf_error *err) {
    const char *v = def;
    TRY(cdf_json_get_string(root, path, key, &v, err));
    if (v && strcmp(v, want) != 0)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: field '%s' = \"%s\" is not supported (\"%s\")", path, key,
                             v, want);
    return CDF_OK;
}

cdf_status cdf_unet2d_cond_config_parse(const cJSON *root, const char *path, cdf_unet2d_cond_config *c,
                                        cdf_error *err) {
    memset(c, 0, sizeof *c);
    TRY(cdf_json_config_class(root, path, "UNet2DConditionModel", k_known, err));
    TRY(cdf_json_not_null(root, path, k_not_null, err));

    const cJSON *ss = cJSON_GetObjectItemCaseSensitive(root, "sample_size");
    if (ss && cJSON_IsArray(ss)) {
        int hw[2] = {0, 0};
        TRY(int_or_list(root, path, "sample_size", 2, hw, 1, err));
        c->sample_h = hw[0];
        c->sample_w = hw[1];
    } else if (ss && !cJSON_IsNull(ss)) {
        int v = 0;
        TRY(int_or_list(root, path, "sample_size", 1, &v, 1, err));
        c->sample_h = c->sample_w = v;
    }
    c->in_channels = c->out_channels = 4;
    TRY(int_or_list(root, path, "in_channels", 1, &c->in_channels, 1, err));
    TRY(int_or_list(root, path, "out_channels", 1, &c->out_channels, 1, err));
    TRY(cdf_json_get_flag(root, path, "center_input_sample", &c->center_input_sample, err));
    c->flip_sin_to_cos = 1;
    TRY(cdf_json_get_flag(root, path, "flip_sin_to_cos", &c->flip_sin_to_cos, err));
    TRY(cdf_json_get_double(root, path, "freq_shift", &c->freq_shift, err));
    if (!isfinite(c->freq_shift))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'freq_shift' must be a finite number", path);

    int nd = 0, nu = 0;
    static const char *const down_names[4] = {"DownBlock2D", "CrossAttnDownBlock2D", "ResnetDownsampleBlock2D",
                                              "SimpleCrossAttnDownBlock2D"};
    static const char *const up_names[4] = {"UpBlock2D", "CrossAttnUpBlock2D", "ResnetUpsampleBlock2D",
                                            "SimpleCrossAttnUpBlock2D"};
    TRY(block_types(root, path, "down_block_types", down_names, 1, c->down_type, &nd, err));
    TRY(block_types(root, path, "up_block_types", up_names, 0, c->up_type, &nu, err));
    if (nd != nu)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: %d down_block_types but %d up_block_types (must be equal)", path,
                             nd, nu);
    c->num_blocks = nd;
    const char *mid = "UNetMidBlock2DCrossAttn";
    const cJSON *mj = cJSON_GetObjectItemCaseSensitive(root, "mid_block_type");
    if (mj && cJSON_IsNull(mj)) mid = NULL;
    else TRY(cdf_json_get_string(root, path, "mid_block_type", &mid, err));
    if (!mid) c->mid_type = CDF_UNETC_MID_NONE;
    else if (strcmp(mid, "UNetMidBlock2DCrossAttn") == 0) c->mid_type = CDF_UNETC_MID_CROSS;
    else if (strcmp(mid, "UNetMidBlock2DSimpleCrossAttn") == 0) c->mid_type = CDF_UNETC_MID_SIMPLE_CROSS;
    else
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: field 'mid_block_type' = \"%s\" is not supported (UNetMidBlock2DCrossAttn, "
                             "UNetMidBlock2DSimpleCrossAttn or null)",
                             path, mid);
    c->has_mid = c->mid_type != CDF_UNETC_MID_NONE;

    static const int def_boc[4] = {320, 640, 1280, 1280};
    const cJSON *boc = cJSON_GetObjectItemCaseSensitive(root, "block_out_channels");
    if (!boc || cJSON_IsNull(boc)) {
        if (nd != 4)
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: block_out_channels must be given for %d blocks", path, nd);
        memcpy(c->block_out_channels, def_boc, sizeof def_boc);
    } else {
        if (!cJSON_IsArray(boc) || cJSON_GetArraySize(boc) != nd)
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: block_out_channels must list %d channel counts (one per block)",
                                 path, nd);
        TRY(int_or_list(root, path, "block_out_channels", nd, c->block_out_channels, 1, err));
    }
    for (int i = 0; i < nd; i++) {
        c->layers_per_block[i] = 2;
        c->cross_attention_dim[i] = 1280;
        c->transformer_layers[i] = 1;
        c->heads[i] = 8;
    }
    TRY(bool_or_list(root, path, "only_cross_attention", nd, c->only_cross, err));
    int mid_oc = -1;
    const cJSON *moc = cJSON_GetObjectItemCaseSensitive(root, "mid_block_only_cross_attention");
    if (moc && !cJSON_IsNull(moc)) TRY(cdf_json_get_bool(root, path, "mid_block_only_cross_attention", &mid_oc, err));
    const cJSON *oca = cJSON_GetObjectItemCaseSensitive(root, "only_cross_attention");
    c->mid_only_cross = mid_oc >= 0 ? mid_oc : (oca && cJSON_IsBool(oca) ? cJSON_IsTrue(oca) : 0);
    if (c->mid_only_cross && c->mid_type == CDF_UNETC_MID_CROSS)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: field '%s' = true: only-cross-attention in UNetMidBlock2DCrossAttn is not supported",
                             path, mid_oc >= 0 ? "mid_block_only_cross_attention" : "only_cross_attention");
    TRY(int_or_list(root, path, "layers_per_block", nd, c->layers_per_block, 1, err));
    c->downsample_padding = 1;
    TRY(int_or_list(root, path, "downsample_padding", 1, &c->downsample_padding, 0, err));
    c->mid_block_scale_factor = 1.0;
    TRY(cdf_json_get_double(root, path, "mid_block_scale_factor", &c->mid_block_scale_factor, err));
    if (c->mid_block_scale_factor == 0.0 || !isfinite(c->mid_block_scale_factor))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'mid_block_scale_factor' must be a finite non-zero number",
                             path);
    double dropout = 0.0; /* inference: no effect, but torch.nn.Dropout raises outside [0, 1] */
    TRY(cdf_json_get_double(root, path, "dropout", &dropout, err));
    if (!(dropout >= 0.0 && dropout <= 1.0))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'dropout' = %g is not in [0, 1]", path, dropout);
    TRY(act_field(root, path, "act_fn", "silu", &c->act_fn, err)); /* null: refused above (k_not_null) */
    const cJSON *ng = cJSON_GetObjectItemCaseSensitive(root, "norm_num_groups");
    if (ng && cJSON_IsNull(ng))
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: field 'norm_num_groups' = null is not supported", path);
    c->norm_num_groups = 32;
    TRY(int_or_list(root, path, "norm_num_groups", 1, &c->norm_num_groups, 1, err));
    c->norm_eps = 1e-5;
    TRY(cdf_json_get_double(root, path, "norm_eps", &c->norm_eps, err));
    if (!(c->norm_eps > 0) || !isfinite(c->norm_eps))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'norm_eps' must be a positive finite number", path);
    TRY(int_or_list(root, path, "cross_attention_dim", nd, c->cross_attention_dim, 1, err));
    TRY(int_or_list(root, path, "transformer_layers_per_block", nd, c->transformer_layers, 1, err));
    TRY(must_be_null(root, path, "reverse_transformer_layers_per_block", err));
    TRY(must_be_null(root, path, "encoder_hid_dim", err));
    TRY(must_be_null(root, path, "encoder_hid_dim_type", err));
    const cJSON *ahd = cJSON_GetObjectItemCaseSensitive(root, "attention_head_dim");
    if (ahd && cJSON_IsNull(ahd))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'attention_head_dim' must not be null", path);
    if (cdf_json_has(root, "num_attention_heads"))
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: field 'num_attention_heads' must be null (diffusers rejects it for this class)", path);
    TRY(int_or_list(root, path, "attention_head_dim", nd, c->heads, 1, err));
    TRY(must_be_false(root, path, "dual_cross_attention", err));
    TRY(cdf_json_get_flag(root, path, "use_linear_projection", &c->use_linear_projection, err));
    const char *cet = NULL;
    TRY(cdf_json_get_string(root, path, "class_embed_type", &cet, err));
    if (cet && strcmp(cet, "identity") != 0)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: field 'class_embed_type' = \"%s\" is not supported (only null or \"identity\")", path,
                             cet);
    c->class_embed_identity = cet != NULL;
    const char *aet = NULL;
    TRY(cdf_json_get_string(root, path, "addition_embed_type", &aet, err));
    if (aet && strcmp(aet, "text_time") != 0)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: field 'addition_embed_type' = \"%s\" is not supported (only null or \"text_time\")",
                             path, aet);
    c->add_text_time = aet != NULL;
    if (c->add_text_time) {
        /* add_time_proj = Timesteps(addition_time_embed_dim, ...), add_embedding =
         * TimestepEmbedding(projection_class_embeddings_input_dim, time_embed_dim): both required */
        static const char *const req[] = {"addition_time_embed_dim", "projection_class_embeddings_input_dim"};
        for (int k = 0; k < 2; k++)
            if (!cdf_json_has(root, req[k]))
                return cdf_error_set(err, CDF_ERR_CONFIG,
                                     "%s: field '%s' must be set (an integer) with addition_embed_type \"text_time\"",
                                     path, req[k]);
        TRY(int_or_list(root, path, "addition_time_embed_dim", 1, &c->addition_time_embed_dim, 1, err));
        TRY(int_or_list(root, path, "projection_class_embeddings_input_dim", 1, &c->add_embed_in, 1, err));
        if (c->add_embed_in <= 6 * c->addition_time_embed_dim)
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s: field 'projection_class_embeddings_input_dim' = %d must exceed 6 x "
                                 "addition_time_embed_dim = %d (it is the pooled text dim + 6 x %d)",
                                 path, c->add_embed_in, 6 * c->addition_time_embed_dim, c->addition_time_embed_dim);
    } else {
        TRY(must_be_null(root, path, "addition_time_embed_dim", err));
    }
    /* diffusers builds a class nn.Embedding from num_class_embeds only when class_embed_type is null */
    if (!cet) TRY(must_be_null(root, path, "num_class_embeds", err));
    TRY(cdf_json_get_flag(root, path, "upcast_attention", &c->upcast_attention, err));
    const char *rts = "default";
    TRY(cdf_json_get_string(root, path, "resnet_time_scale_shift", &rts, err));
    if (!rts || (strcmp(rts, "default") && strcmp(rts, "scale_shift")))
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: field 'resnet_time_scale_shift' = \"%s\" is not supported",
                             path, rts ? rts : "null");
    c->scale_shift = strcmp(rts, "scale_shift") == 0;
    /* both only reach Resnet*sample / SimpleCrossAttn blocks (and skip_time_act the SimpleCrossAttn mid block) */
    TRY(cdf_json_get_flag(root, path, "resnet_skip_time_act", &c->skip_time_act, err));
    c->resnet_out_scale_factor = 1.0;
    TRY(cdf_json_get_double(root, path, "resnet_out_scale_factor", &c->resnet_out_scale_factor, err));
    if (c->resnet_out_scale_factor == 0.0 || !isfinite(c->resnet_out_scale_factor))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'resnet_out_scale_factor' = %g must be finite and non-zero",
                             path, c->resnet_out_scale_factor);
    TRY(string_is(root, path, "time_embedding_type", "positional", "positional", err));
    TRY(int_or_list(root, path, "time_embedding_dim", 1, &c->time_embedding_dim, 1, err));
    if (!c->time_embedding_dim) c->time_embedding_dim = 4 * c->block_out_channels[0];
    TRY(act_field(root, path, "time_embedding_act_fn", NULL, &c->time_embedding_act, err));
    TRY(act_field(root, path, "timestep_post_act", NULL, &c->timestep_post_act, err));
    TRY(must_be_null(root, path, "time_cond_proj_dim", err));
    c->conv_in_kernel = c->conv_out_kernel = 3;
    TRY(int_or_list(root, path, "conv_in_kernel", 1, &c->conv_in_kernel, 1, err));
    TRY(int_or_list(root, path, "conv_out_kernel", 1, &c->conv_out_kernel, 1, err));
    if (c->conv_in_kernel % 2 == 0 || c->conv_out_kernel % 2 == 0)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: even conv_in_kernel/conv_out_kernel are not supported", path);
    if (!c->add_text_time) TRY(must_be_null(root, path, "projection_class_embeddings_input_dim", err));
    TRY(string_is(root, path, "attention_type", "default", "default", err));
    TRY(must_be_false(root, path, "class_embeddings_concat", err));
    TRY(must_be_null(root, path, "cross_attention_norm", err));

    for (int i = 0; i < nd; i++) {
        int ch = c->block_out_channels[i];
        if (ch % c->norm_num_groups)
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s: block_out_channels[%d] = %d is not divisible by norm_num_groups = %d", path, i,
                                 ch, c->norm_num_groups);
        /* CrossAttn: heads[i] is a head count over ch channels (block i down, its mirror up, the mid block) */
        if ((c->down_type[i] == CDF_UNETC_CROSS || c->up_type[nd - 1 - i] == CDF_UNETC_CROSS ||
             (i == nd - 1 && c->mid_type == CDF_UNETC_MID_CROSS)) &&
            ch / c->heads[i] < 1)
            return cdf_error_set(err, CDF_ERR_CONFIG, "%s: attention_head_dim[%d] = %d heads exceeds %d channels", path,
                                 i, c->heads[i], ch);
        /* SimpleCrossAttn: heads[i] is the head dimension of down block i, of up block i (whose channels are
         * block_out_channels[nd-1-i]) and, for i = nd-1, of the mid block */
        int upch = c->block_out_channels[nd - 1 - i];
        if ((c->down_type[i] == CDF_UNETC_SIMPLE_CROSS && ch / c->heads[i] < 1) ||
            (c->up_type[i] == CDF_UNETC_SIMPLE_CROSS && upch / c->heads[i] < 1) ||
            (i == nd - 1 && c->mid_type == CDF_UNETC_MID_SIMPLE_CROSS && ch / c->heads[i] < 1))
            return cdf_error_set(err, CDF_ERR_CONFIG,
                                 "%s: attention_head_dim[%d] = %d (the head dimension of a SimpleCrossAttn block) "
                                 "exceeds its channels",
                                 path, i, c->heads[i]);
    }
    if (c->block_out_channels[0] % 2)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: odd block_out_channels[0] is not supported", path);
    return CDF_OK;
}
