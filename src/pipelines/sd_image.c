/* The picture side of Stable Diffusion image-to-image and inpainting: an
 * 8-bit picture to the VAE's input range as diffusers' VaeImageProcessor
 * makes it, the binarized mask, the masked picture and the latent mask, and
 * vae.encode(x).latent_dist.sample(generator) * scaling_factor with the
 * pipeline's generators. */
#include <string.h>

#include "models/vae.h"
#include "pipelines/pipeline_internal.h"
#include "tensor/vmath.h"

cdf_status cdf_sd_picture_dims(const cdf_tensor *img, const char *what, int *H, int *W, cdf_error *err) {
    if (!img || !img->data) return cdf_error_set(err, CDF_ERR_ARG, "%s: no picture", what);
    if (img->dtype != CDF_U8 || img->ndim != 3 || img->shape[2] != 3)
        return cdf_error_set(err, CDF_ERR_ARG, "%s: must be uint8 [height, width, 3] (an 8-bit RGB picture)", what);
    int64_t h = img->shape[0], w = img->shape[1];
    if (h < 8 || w < 8 || h % 8 || w % 8 || h > 65536 || w > 65536)
        return cdf_error_set(err, CDF_ERR_ARG,
                             "%s: %lld x %lld pixels; height and width must be multiples of 8 (diffusers would "
                             "resize the picture; cdiffusers takes it as it is)",
                             what, (long long)h, (long long)w);
    if (h * w > CDF_PIPE_MAX_PIXELS)
        return cdf_error_set(err, CDF_ERR_LIMIT, "%s: %lld x %lld pixels is over the limit of %lld", what,
                             (long long)h, (long long)w, (long long)CDF_PIPE_MAX_PIXELS);
    *H = (int)h, *W = (int)w;
    return CDF_OK;
}

void cdf_sd_picture_to_input(const cdf_tensor *img, float *x) {
    const int H = (int)img->shape[0], W = (int)img->shape[1];
    const unsigned char *px = img->data;
    const size_t plane = (size_t)H * W;
    /* np.array(picture).astype(np.float32) / 255, then 2 * x - 1 in float32 */
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) {
            float v = (float)px[i * 3 + c] / 255.0f;
            x[c * plane + i] = 2.0f * v - 1.0f;
        }
}

cdf_status cdf_sd_encode_sample(cdf_exec *ex, const cdf_vae *vae, const float *x, int H, int W,
                                cdf_generator *const *gens, int rows, float *latents, cdf_error *err) {
    const int f = cdf_vae_scale_factor(vae), lc = cdf_vae_latent_channels(vae), h = H / f, w = W / f;
    const size_t per = (size_t)lc * h * w;
    float *mom = cdf_mallocn(2 * per, sizeof(float)), *draw = cdf_mallocn(per, sizeof(float));
    cdf_status s = CDF_OK;
    if (!mom || !draw) {
        s = cdf_error_set(err, CDF_ERR_NOMEM, "out of memory encoding a %dx%d picture", H, W);
        goto done;
    }
    /* the same picture gives the same moments on every row: encode once */
    if ((s = cdf_vae_encode(ex, vae, x, 1, H, W, mom))) goto done;
    const float sf = cdf_vae_scaling_factor(vae);
    for (int r = 0; r < rows; r++) {
        /* latent_dist.sample(generator): randn_tensor(mean.shape, generator) */
        if ((s = cdf_pipeline_draw(&gens[r], 1, 1, lc, h, w, draw, err))) goto done;
        float *dst = latents + (size_t)r * per;
        for (size_t i = 0; i < per; i++) {
            float lv = mom[per + i];
            lv = lv < -30.0f ? -30.0f : lv > 20.0f ? 20.0f : lv; /* torch.clamp(logvar, -30, 20) */
            float sd = cdf_expf_sleef(0.5f * lv);
            float smp = mom[i] + sd * draw[i];
            dst[i] = sf * smp;
        }
    }
done:
    cdf_free(mom);
    cdf_free(draw);
    return s;
}

cdf_status cdf_sd_mask_check(const cdf_tensor *mask, int H, int W, cdf_error *err) {
    if (!mask->data || mask->dtype != CDF_U8 || !(mask->ndim == 2 || (mask->ndim == 3 && mask->shape[2] == 1)))
        return cdf_error_set(err, CDF_ERR_ARG, "mask_image: must be uint8 [height, width] (an 8-bit greyscale picture)");
    if (mask->shape[0] != H || mask->shape[1] != W)
        return cdf_error_set(err, CDF_ERR_ARG, "mask_image: %lld x %lld pixels, the init_image has %d x %d",
                             (long long)mask->shape[0], (long long)mask->shape[1], H, W);
    return CDF_OK;
}

void cdf_sd_mask_prepare(const cdf_tensor *mask, const float *pic, int H, int W, int f, float *masked,
                         float *mask_latent) {
    const unsigned char *m = mask->data;
    const size_t plane = (size_t)H * W;
    /* binarized: float32(v / 255) >= 0.5 repaints; masked_image = image * (mask < 0.5) */
    for (size_t i = 0; i < plane; i++) {
        float keep = (float)m[i] / 255.0f < 0.5f ? 1.0f : 0.0f;
        for (int c = 0; c < 3; c++) masked[c * plane + i] = pic[c * plane + i] * keep;
    }
    /* F.interpolate(mask, (H/f, W/f)), nearest: the top-left pixel of each f x f block */
    const int h = H / f, w = W / f;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            mask_latent[(size_t)y * w + x] = (float)m[(size_t)y * f * W + (size_t)x * f] / 255.0f < 0.5f ? 0.0f : 1.0f;
}
