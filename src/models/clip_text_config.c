#include <math.h>
#include <string.h>

#include "io/json.h"
#include "models/clip_text.h"

/* CLIPTextConfig's own fields, plus keys diffusers/transformers write beside them. */
static const char *const k_known[] = {
    "vocab_size", "hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers", "num_attention_heads",
    "max_position_embeddings", "hidden_act", "layer_norm_eps", "attention_dropout", "dropout", "initializer_range",
    "initializer_factor", "pad_token_id", "bos_token_id", "eos_token_id", "architectures", "model_type", "torch_dtype",
    "transformers_version", "use_attention_mask",
    /* generic PretrainedConfig attributes (a to_dict() of a nested text_config writes them all); they do not
     * change what CLIPTextModel computes for Stable Diffusion */
    "return_dict", "output_hidden_states", "output_attentions", "torchscript", "use_bfloat16", "tf_legacy_loss",
    "pruned_heads", "tie_word_embeddings", "chunk_size_feed_forward", "is_encoder_decoder", "is_decoder",
    "cross_attention_hidden_size", "add_cross_attention", "tie_encoder_decoder", "max_length", "min_length",
    "do_sample", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty", "temperature", "top_k",
    "top_p", "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences", "output_scores",
    "return_dict_in_generate", "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
    "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "finetuning_task", "id2label",
    "label2id", "tokenizer_class", "prefix", "sep_token_id", "decoder_start_token_id", "task_specific_params",
    "problem_type", NULL};

/* transformers ACT2FN names this build does not implement. */
static const char *const k_other_acts[] = {"gelu_10", "gelu_fast", "gelu_python", "gelu_accurate", "laplace",
                                           "leaky_relu", "linear", "mish", "relu", "relu2", "relu6", "sigmoid",
                                           "silu", "swish", "tanh", "prelu", NULL};

#define TRY(x)               \
    do {                     \
        cdf_status s_ = (x); \
        if (s_) return s_;   \
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

static int in_list(const char *s, const char *const *l) {
    for (; *l; l++)
        if (strcmp(s, *l) == 0) return 1;
    return 0;
}

static cdf_status parse_architectures(const cJSON *root, const char *path, cdf_clip_text_config *cfg,
                                      cdf_error *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (!a || cJSON_IsNull(a)) return CDF_OK;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 1 || !cJSON_IsString(cJSON_GetArrayItem(a, 0)))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'architectures' must be a list of one class name", path);
    const char *v = cJSON_GetArrayItem(a, 0)->valuestring;
    if (strcmp(v, "CLIPTextModel") == 0) return CDF_OK;
    if (strcmp(v, "CLIPTextModelWithProjection") == 0) {
        cfg->with_projection = 1;
        return CDF_OK;
    }
    return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                         "%s: field 'architectures' = [\"%s\"]: only CLIPTextModel and CLIPTextModelWithProjection "
                         "are supported",
                         path, v);
}

static cdf_status get_token_id(const cJSON *root, const char *path, const char *key, int64_t *out, cdf_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (it && cJSON_IsNull(it)) {
        *out = -1;
        return CDF_OK;
    }
    return cdf_json_get_int(root, path, key, out, err);
}

cdf_status cdf_clip_text_config_parse(const cJSON *root, const char *path, cdf_clip_text_config *cfg, cdf_error *err) {
    memset(cfg, 0, sizeof *cfg);
    if (!cJSON_IsObject(root)) return cdf_error_set(err, CDF_ERR_CONFIG, "%s: config must be a JSON object", path);
    cdf_json_notice_unknown(root, path, "CLIPTextConfig", k_known, err);
    TRY(parse_architectures(root, path, cfg, err));
    const char *mt = NULL;
    TRY(cdf_json_get_string(root, path, "model_type", &mt, err));
    if (mt && strcmp(mt, "clip_text_model") != 0)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED, "%s: field 'model_type' = \"%s\" is not \"clip_text_model\"",
                             path, mt);
    const char *td = NULL;
    TRY(cdf_json_get_string(root, path, "torch_dtype", &td, err));
    if (td && strcmp(td, "float32") != 0 && strcmp(td, "float16") != 0 && strcmp(td, "bfloat16") != 0)
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'torch_dtype' has unsupported value \"%s\"", path, td);
    int uam = 0;
    TRY(cdf_json_get_bool(root, path, "use_attention_mask", &uam, err));
    if (uam)
        return cdf_error_set(err, CDF_ERR_UNSUPPORTED,
                             "%s: field 'use_attention_mask' = true: padding attention masks are not supported", path);

    /* transformers passes null on as None, which the model's layers cannot be built from */
    static const char *const not_null[] = {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                           "num_attention_heads", "max_position_embeddings", "hidden_act",
                                           "layer_norm_eps", NULL};
    static const char *const not_null_proj[] = {"projection_dim", NULL};
    TRY(cdf_json_not_null(root, path, not_null, err));
    if (cfg->with_projection) TRY(cdf_json_not_null(root, path, not_null_proj, err));
    cfg->vocab_size = 49408;
    cfg->hidden_size = 512;
    cfg->intermediate_size = 2048;
    cfg->projection_dim = 512;
    cfg->num_hidden_layers = 12;
    cfg->num_attention_heads = 8;
    cfg->max_position_embeddings = 77;
    TRY(get_int32(root, path, "vocab_size", &cfg->vocab_size, 1, 1 << 24, err));
    TRY(get_int32(root, path, "hidden_size", &cfg->hidden_size, 1, 1 << 16, err));
    TRY(get_int32(root, path, "intermediate_size", &cfg->intermediate_size, 1, 1 << 20, err));
    TRY(get_int32(root, path, "projection_dim", &cfg->projection_dim, 1, 1 << 16, err));
    TRY(get_int32(root, path, "num_hidden_layers", &cfg->num_hidden_layers, 0, 1024, err));
    TRY(get_int32(root, path, "num_attention_heads", &cfg->num_attention_heads, 1, 1 << 16, err));
    TRY(get_int32(root, path, "max_position_embeddings", &cfg->max_position_embeddings, 1, 1 << 20, err));
    if (cfg->hidden_size % cfg->num_attention_heads != 0)
        return cdf_error_set(err, CDF_ERR_CONFIG,
                             "%s: field 'hidden_size' = %d is not divisible by field 'num_attention_heads' = %d", path,
                             cfg->hidden_size, cfg->num_attention_heads);

    const char *act = NULL;
    TRY(cdf_json_get_string(root, path, "hidden_act", &act, err));
    if (!act) act = "quick_gelu";
    if (cdf_ffn_act_from_name(act, &cfg->hidden_act) != 0)
        return cdf_error_set(err, in_list(act, k_other_acts) ? CDF_ERR_UNSUPPORTED : CDF_ERR_CONFIG,
                             "%s: field 'hidden_act' has unsupported value \"%s\" (quick_gelu, gelu, gelu_new, "
                             "gelu_pytorch_tanh are supported)",
                             path, act);
    cfg->layer_norm_eps = 1e-5;
    TRY(cdf_json_get_double(root, path, "layer_norm_eps", &cfg->layer_norm_eps, err));
    if (!(cfg->layer_norm_eps > 0.0) || !isfinite(cfg->layer_norm_eps))
        return cdf_error_set(err, CDF_ERR_CONFIG, "%s: field 'layer_norm_eps' must be a positive number", path);
    /* training-only fields: type-checked, no effect on inference */
    double ignored = 0.0;
    TRY(cdf_json_get_double(root, path, "attention_dropout", &ignored, err));
    TRY(cdf_json_get_double(root, path, "dropout", &ignored, err));
    TRY(cdf_json_get_double(root, path, "initializer_range", &ignored, err));
    TRY(cdf_json_get_double(root, path, "initializer_factor", &ignored, err));

    cfg->pad_token_id = 1;
    cfg->bos_token_id = 49406;
    cfg->eos_token_id = 49407;
    TRY(get_token_id(root, path, "pad_token_id", &cfg->pad_token_id, err));
    TRY(get_token_id(root, path, "bos_token_id", &cfg->bos_token_id, err));
    TRY(get_token_id(root, path, "eos_token_id", &cfg->eos_token_id, err));
    return CDF_OK;
}
