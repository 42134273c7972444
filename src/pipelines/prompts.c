/* Steps the prompt-driven families (Stable Diffusion, UnCLIP) share: the
 * batch size, the checks of a call's prompts and generators, tokenizing
 * with diffusers' truncation warning, and classifier-free guidance. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "pipelines/pipeline_internal.h"
#include "text/clip_tokenizer.h"

int cdf_pipeline_prompt_batch(const cdf_generate_options *o) {
    /* saturates instead of overflowing: the run refuses it (CDF_ERR_LIMIT) */
    if (o->num_images_per_prompt <= 0) return 0;
    if (o->num_prompts > (size_t)INT_MAX / (size_t)o->num_images_per_prompt) return INT_MAX;
    return (int)o->num_prompts * o->num_images_per_prompt;
}

cdf_status cdf_pipeline_check_prompts(const cdf_generate_options *o, size_t ngens, cdf_error *err) {
    if (!o->prompts || o->num_prompts == 0)
        return cdf_error_set(err, CDF_ERR_ARG, "prompt: the prompt list is empty (give at least one prompt)");
    for (size_t i = 0; i < o->num_prompts; i++)
        if (!o->prompts[i]) return cdf_error_set(err, CDF_ERR_ARG, "prompt %zu is NULL", i);
    if (o->num_images_per_prompt < 1)
        return cdf_error_set(err, CDF_ERR_ARG, "num_images_per_prompt must be at least 1 (got %d)",
                             o->num_images_per_prompt);
    if (o->num_negative_prompts && o->num_negative_prompts != o->num_prompts)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "negative_prompt has batch size %zu, but prompt has batch size %zu: give one negative "
                             "prompt per prompt",
                             o->num_negative_prompts, o->num_prompts);
    for (size_t i = 0; i < o->num_negative_prompts; i++)
        if (!o->negative_prompts[i]) return cdf_error_set(err, CDF_ERR_ARG, "negative prompt %zu is NULL", i);
    int total = cdf_pipeline_prompt_batch(o);
    if (total > CDF_PIPE_MAX_BATCH)
        return cdf_error_set(err, CDF_ERR_LIMIT, "%zu prompts x %d images per prompt is over the limit of %d images",
                             o->num_prompts, o->num_images_per_prompt, CDF_PIPE_MAX_BATCH);
    if (ngens != 1 && ngens != (size_t)total)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "You have passed a list of generators of length %zu, but requested an effective batch "
                             "size of %d. Make sure the batch size matches the length of the generators.",
                             ngens, total);
    return CDF_OK;
}

cdf_status cdf_pipeline_tokenize(const cdf_clip_tokenizer *tok, const char *const *texts, int n, int warn, int64_t *ids,
                                 int *lens, cdf_error *err) {
    int L = cdf_clip_tokenizer_max_length(tok);
    for (int i = 0; i < n; i++) {
        int ncontent = 0, trunc = 0;
        char *dropped = NULL;
        cdf_status s =
            cdf_clip_tokenize(tok, texts[i], ids + (size_t)i * L, &ncontent, &trunc, warn ? &dropped : NULL, err);
        if (s) return s;
        if (trunc && warn)
            cdf_notice(err, CDF_NOTICE_WARN,
                       "The following part of your input was truncated because CLIP can only handle sequences up to "
                       "%d tokens: ['%s']",
                       L, dropped ? dropped : "");
        cdf_free(dropped);
        if (lens) lens[i] = (ncontent < L - 2 ? ncontent : L - 2) + 2; /* bos, content, eos */
    }
    return CDF_OK;
}

void cdf_pipeline_cfg(const float *rows, int total, size_t per, size_t rows_stride, float g, float *out,
                      size_t out_stride) {
    for (int b = 0; b < total; b++) {
        const float *u = rows + (size_t)b * rows_stride, *c = rows + ((size_t)total + b) * rows_stride;
        float *d = out + (size_t)b * out_stride;
        for (size_t i = 0; i < per; i++) d[i] = u[i] + g * (c[i] - u[i]);
    }
}
