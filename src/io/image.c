/* Float to 8-bit conversion and image grids. */
#include "io/image.h"

#include <math.h>
#include <string.h>

unsigned char cdf_u8_from_unit(float x) {
    float p = x * 255.0f; /* one float32 multiply, as numpy does on a float32 array */
    if (!(p > 0.0f)) return 0; /* negatives, -0 and NaN */
    if (p >= 255.0f) return 255;
    float f = floorf(p);
    float d = p - f; /* exact: p < 2^24 */
    int v = (int)f;
    if (d > 0.5f || (d == 0.5f && (v & 1))) v++;
    return (unsigned char)v;
}

cdf_status cdf_image_from_f32(const float *nhwc, int height, int width, int channels, cdf_image *out,
                              cdf_error *err) {
    memset(out, 0, sizeof *out);
    if (!nhwc || height < 1 || width < 1 || (channels != 1 && channels != 3 && channels != 4))
        return cdf_error_set(err, CDF_ERR_ARG, "image: cannot convert a %dx%d image with %d channels", height, width,
                             channels);
    size_t n = (size_t)height * (size_t)width;
    if (n / (size_t)width != (size_t)height || n > SIZE_MAX / (size_t)channels)
        return cdf_error_set(err, CDF_ERR_LIMIT, "image: %dx%d image too large", height, width);
    n *= (size_t)channels;
    unsigned char *px = cdf_malloc(n); /* [height][width][channels] */
    if (!px) return cdf_error_set(err, CDF_ERR_NOMEM, "image: out of memory for a %dx%d image", height, width);
    for (size_t i = 0; i < n; i++) px[i] = cdf_u8_from_unit(nhwc[i]);
    out->width = width;
    out->height = height;
    out->channels = channels;
    out->pixels = px;
    return CDF_OK;
}

cdf_status cdf_image_grid(const cdf_image *imgs, int n, int rows, int cols, cdf_image *out, cdf_error *err) {
    memset(out, 0, sizeof *out);
    if (n < 1 || rows < 1 || cols < 1 || !imgs)
        return cdf_error_set(err, CDF_ERR_ARG, "image grid: %d images in %d rows x %d columns", n, rows, cols);
    if ((int64_t)rows * cols < n)
        return cdf_error_set(err, CDF_ERR_ARG, "image grid: %d images do not fit in %d rows x %d columns", n, rows,
                             cols);
    int w = imgs[0].width, h = imgs[0].height, c = imgs[0].channels;
    if (w < 1 || h < 1 || (c != 1 && c != 3 && c != 4) || !imgs[0].pixels)
        return cdf_error_set(err, CDF_ERR_ARG, "image grid: image 0 is empty or has %d channels", c);
    for (int i = 1; i < n; i++)
        if (imgs[i].width != w || imgs[i].height != h || imgs[i].channels != c || !imgs[i].pixels)
            return cdf_error_set(err, CDF_ERR_SHAPE,
                                 "image grid: image %d is %dx%d with %d channels, image 0 is %dx%d with %d", i,
                                 imgs[i].width, imgs[i].height, imgs[i].channels, w, h, c);
    int64_t gw = (int64_t)cols * w, gh = (int64_t)rows * h;
    /* no bigger than a PNG this library reads back (CDF_PNG_MAX_DIM, CDF_PNG_MAX_PIXELS) */
    if (gw > CDF_PNG_MAX_DIM || gh > CDF_PNG_MAX_DIM || (uint64_t)gw * (uint64_t)gh > CDF_PNG_MAX_PIXELS)
        return cdf_error_set(err, CDF_ERR_LIMIT, "image grid: %lldx%lld grid is over the limit of %zu pixels",
                             (long long)gw, (long long)gh, CDF_PNG_MAX_PIXELS);
    size_t row_bytes = (size_t)gw * (size_t)c;
    unsigned char *px = cdf_calloc((size_t)gh, row_bytes); /* [rows*h][cols*w][c] */
    if (!px) return cdf_error_set(err, CDF_ERR_NOMEM, "image grid: out of memory");
    if (c == 4) /* opaque black background */
        for (size_t i = 3; i < (size_t)gh * row_bytes; i += 4) px[i] = 255;
    size_t img_row = (size_t)w * (size_t)c;
    for (int i = 0; i < n; i++) {
        size_t x0 = (size_t)(i % cols) * img_row, y0 = (size_t)(i / cols) * (size_t)h;
        for (int y = 0; y < h; y++)
            memcpy(px + (y0 + (size_t)y) * row_bytes + x0, imgs[i].pixels + (size_t)y * img_row, img_row);
    }
    out->width = (int)gw;
    out->height = (int)gh;
    out->channels = c;
    out->pixels = px;
    return CDF_OK;
}

void cdf_grid_shape_auto(int n, int *rows, int *cols) {
    if (n < 1) {
        *rows = *cols = 0;
        return;
    }
    int r = (int)floor(sqrt((double)n));
    while ((int64_t)(r + 1) * (r + 1) <= n) r++; /* guard sqrt rounding */
    while ((int64_t)r * r > n) r--;
    int d = r;
    while (n % d != 0) d--;
    if (n / d <= 2 * d) {
        *rows = d;
        *cols = n / d;
    } else {
        *rows = r;
        *cols = (n + r - 1) / r;
    }
}

void cdf_image_to_luma(const cdf_image *img, unsigned char *out) {
    const size_t n = (size_t)img->width * img->height;
    const int c = img->channels;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *px = img->pixels + i * c;
        out[i] = c < 3 ? px[0] : (unsigned char)((px[0] * 19595u + px[1] * 38470u + px[2] * 7471u + 0x8000u) >> 16);
    }
}
